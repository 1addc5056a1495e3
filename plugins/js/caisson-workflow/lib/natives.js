// The engine's own `setTimeout` and `Promise.prototype.then`, taken before
// the library replaces them for the workflow (setTimeout becomes a durable
// timer, then-callbacks carry the cancellation scope). Kept under global
// symbols so a second copy of the library in the same engine (the Node
// tests load one per test) still finds the engine's, not the first copy's.
const SET_TIMEOUT = Symbol.for('caisson-workflow.nativeSetTimeout');
const THEN = Symbol.for('caisson-workflow.nativeThen');

globalThis[SET_TIMEOUT] ??= globalThis.setTimeout;
globalThis[THEN] ??= Promise.prototype.then;

export const nativeSetTimeout = globalThis[SET_TIMEOUT];
export const nativeThen = globalThis[THEN];
