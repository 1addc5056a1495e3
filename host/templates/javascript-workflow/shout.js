// Plain code: `node --test` runs it without the worker.
export function shout(greeting) {
  return `${greeting} (from {{name}})`;
}
