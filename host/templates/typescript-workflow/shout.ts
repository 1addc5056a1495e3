// Plain code, no workflow API: `npm test` compiles it and runs its test
// with `node --test`, without a worker.
export function shout(greeting: string): string {
  return `${greeting} (from {{name}})`;
}
