// Plain code: `node --test` runs it without the worker.
export function greeting(name) {
  return `Hello, ${name}!`;
}
