// A simulated caisson:workflow context for the library's Node tests: the
// same functions and value shapes as the WIT (componentize-js's mapping:
// records as camelCase objects, variants as { tag, val }, u64 as BigInt),
// with a tiny in-memory "server" behind `wait`:
//
// * activities run at once through `world.activities[type](...args)`
//   (throw `{ errorType, message }` to fail an attempt; `world.attempts`
//   counts them);
// * timers fire in order of their due time, advancing workflow time;
// * children complete through `world.children[type](...args)`;
// * `world.onWait(n, handles)` may return an event (signal, query, update,
//   cancel-requested) to deliver on the n-th wait instead.
//
// It checks what the real host checks that matters here: waits name only
// handles it gave out, a query is answered before the next wait.

export const world = {};

export function reset(options = {}) {
  Object.assign(world, {
    activities: {},
    /** Activity types that never finish unless cancelled. */
    hold: new Set(),
    children: {},
    onWait: () => undefined,
    commands: [],
    logs: [],
    queryAnswers: new Map(),
    updates: new Map(),
    nowMs: 1_700_000_000_000n,
    seed: 42n,
    waits: 0,
    attempts: {},
    pending: new Map(),
    nextHandle: 1,
    unansweredQuery: undefined,
    cancelRequested: false,
    info: {
      namespace: 'default',
      taskQueue: 'tests',
      workflowType: 'wf',
      workflowId: 'wf-1',
      runId: 'run-1',
      attempt: 1,
      continuedFromRunId: undefined,
      parentWorkflowId: undefined,
      memo: [],
      searchAttributes: [],
      startTimeMs: 1_700_000_000_000n,
    },
    ...options,
  });
}
reset();

/** Thrown by continueAsNew / endCancelled: the run ends there. */
export class RunEnded extends Error {
  constructor(how, detail) {
    super(`run ended: ${how}`);
    this.how = how;
    this.detail = detail;
  }
}

function handle(kind, options) {
  const h = world.nextHandle++;
  world.pending.set(h, { kind, options, due: kind === 'timer' ? world.nowMs + options : undefined, seq: h });
  world.commands.push({ kind, handle: h, options });
  return h;
}

export const startActivity = (options) => handle('activity', options);
export const startLocalActivity = (options) => handle('local-activity', options);
export const startTimer = (duration, summary) => handle('timer', duration);
export const startChildWorkflow = (options) => handle('child', options);
export const signalExternalWorkflow = (workflowId, signalName, args) => handle('signal-external', { workflowId, signalName, args });

export function cancel(h) {
  const p = world.pending.get(h);
  world.commands.push({ kind: 'cancel', handle: h });
  if (!p) return;
  p.cancelled = true;
}

function runActivity(p) {
  const type = p.options.activityType;
  const impl = world.activities[type];
  if (!impl) return { tag: 'failed', val: { tag: 'application', val: { message: `no activity ${type}`, errorType: 'NotFound', nonRetryable: true } } };
  const max = p.options.retryPolicy?.maximumAttempts || 10;
  for (let attempt = 1; ; attempt++) {
    world.attempts[type] = (world.attempts[type] ?? 0) + 1;
    try {
      return { tag: 'completed', val: JSON.stringify(impl(...p.options.args.map((a) => JSON.parse(a))) ?? null) };
    } catch (e) {
      const nonRetryable = p.options.retryPolicy?.nonRetryableErrorTypes?.includes(e.errorType);
      if (attempt >= max || nonRetryable) {
        return { tag: 'failed', val: { tag: 'application', val: { message: e.message, errorType: e.errorType ?? 'Error', nonRetryable: false, details: undefined } } };
      }
    }
  }
}

function resolve(h) {
  const p = world.pending.get(h);
  world.pending.delete(h);
  let outcome;
  if (p.cancelled) outcome = { tag: 'failed', val: { tag: 'cancelled', val: 'cancelled' } };
  else if (p.kind === 'activity' || p.kind === 'local-activity') outcome = runActivity(p);
  else if (p.kind === 'timer') {
    if (p.due > world.nowMs) world.nowMs = p.due;
    outcome = { tag: 'completed', val: 'null' };
  } else if (p.kind === 'child') {
    const impl = world.children[p.options.workflowType];
    outcome = impl
      ? { tag: 'completed', val: JSON.stringify(impl(...p.options.args.map((a) => JSON.parse(a))) ?? null) }
      : { tag: 'failed', val: { tag: 'other', val: 'no such child' } };
  } else outcome = { tag: 'completed', val: 'null' };
  return { tag: 'resolved', val: { handle: h, outcome } };
}

export function wait(handles) {
  if (world.unansweredQuery) throw new Error(`waited before answering query ${world.unansweredQuery}`);
  for (const h of handles) if (!world.pending.has(h)) throw new Error(`wait on unknown or resolved handle ${h}`);
  const n = world.waits++;
  if (n > 1000) throw new Error('more than 1000 waits: the workflow spins');
  const event = world.onWait(n, handles);
  if (event) {
    if (event.tag === 'query') world.unansweredQuery = event.val.id;
    if (event.tag === 'cancel-requested') world.cancelRequested = true;
    return event;
  }
  // Cancelled handles resolve first, then non-timers, then the earliest timer.
  const held = (h) => world.hold.has(world.pending.get(h).options?.activityType);
  const ready =
    handles.find((h) => world.pending.get(h).cancelled) ??
    handles.find((h) => world.pending.get(h).kind !== 'timer' && !held(h)) ??
    [...handles].filter((h) => world.pending.get(h).kind === 'timer').sort((a, b) => Number(world.pending.get(a).due - world.pending.get(b).due))[0];
  if (ready === undefined) throw new Error('the workflow waits on nothing and no event is scripted: it would block forever');
  return resolve(ready);
}

export function poll() {
  return undefined;
}
export function respondQuery(id, answer) {
  world.unansweredQuery = undefined;
  world.queryAnswers.set(id, answer);
}
export const acceptUpdate = (id) => world.updates.set(id, { accepted: true });
export const rejectUpdate = (id, error) => world.updates.set(id, { rejected: error });
export function completeUpdate(id, answer) {
  world.updates.set(id, { ...world.updates.get(id), completed: answer });
}
export const upsertSearchAttributes = (attributes) => world.commands.push({ kind: 'upsert-search-attributes', attributes });
export const upsertMemo = (fields) => world.commands.push({ kind: 'upsert-memo', fields });
export const setCurrentDetails = (details) => world.commands.push({ kind: 'details', details });
export function endCancelled() {
  if (!world.cancelRequested) throw new Error('end-cancelled without a cancellation request');
  throw new RunEnded('cancelled');
}
export const isCancelRequested = () => world.cancelRequested;
export const nowMs = () => world.nowMs;
export function randomU64() {
  // xorshift64: a fixed sequence per seed, like the host's seeded generator.
  let x = world.seed;
  x ^= (x << 13n) & 0xffffffffffffffffn;
  x ^= x >> 7n;
  x ^= (x << 17n) & 0xffffffffffffffffn;
  world.seed = x;
  return x;
}
export const patched = (id) => true;
export const deprecatePatch = (id) => {};
export const info = () => world.info;
export const isReplaying = () => false;
export const log = (level, message) => world.logs.push({ level, message });
export function continueAsNew(options) {
  throw new RunEnded('continue-as-new', options);
}
