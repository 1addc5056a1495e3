// The promise scheduler: runs one workflow on the host's one blocking
// `wait`, as the TypeScript SDK's Activator runs one on activation jobs.
//
// Loop: let every promise of the workflow (its function, signal and
// update handlers) run until all are blocked; unblock `condition`s whose
// predicate now holds and let them run too; then call `wait` with every
// pending handle (activities, timers, children, signals sent), and turn
// the event into the resolution or rejection of the matching promise, a
// handler call, a query answer or the cancellation of the root scope.
//
// "Until all are blocked" is the JS event loop's own notion: a macrotask
// (a zero-delay timer of the engine) runs only once the microtask queue is
// empty. componentize-js runs the event loop of an export that returns a
// promise until that promise settles, so `run` is an async export that
// awaits such a timer between `wait`s. The timer is due at once: its
// deadline is the monotonic clock's current reading, which in the virtual
// determinism mode is workflow time and stands still within an activation.

import { ctx } from './host.js';
import {
  ApplicationFailure,
  DeterminismViolationError,
  IllegalStateError,
  TemporalFailure,
  isCancellation,
  toWitApplicationError,
} from './failures.js';
import { RootCancellationScope, installScopePropagation, runInScope, setCurrentScope } from './scope.js';
import { memoFromWit, searchAttributesFromWit } from './search-attributes.js';

import { nativeSetTimeout, nativeThen } from './natives.js';

/** Thrown by `continueAsNew`; ends the run with a new one when it
 * propagates out of the workflow function (as in the TypeScript SDK). */
export class ContinueAsNew extends Error {
  constructor(command) {
    super('Workflow continued as new');
    this.command = command;
  }
  get name() {
    return 'ContinueAsNew';
  }
}

/** Everything the library knows about the run. One component instance runs
 * one workflow, so this is module state. */
export const state = {
  running: false,
  info: undefined,
  rootScope: undefined,
  /** handle -> { settle(outcome) } for everything started and not resolved. */
  completions: new Map(),
  /** seq -> { fn, resolve } for `condition`s whose predicate was false. */
  blockedConditions: new Map(),
  nextConditionSeq: 0,
  signalHandlers: new Map(),
  queryHandlers: new Map(),
  updateHandlers: new Map(),
  defaultSignalHandler: undefined,
  defaultQueryHandler: undefined,
  defaultUpdateHandler: undefined,
  bufferedSignals: [],
  bufferedUpdates: [],
  inProgressSignals: 0,
  inProgressUpdates: 0,
  cancelRequested: false,
  /** An unexpected error from a handler or a condition: fails the task. */
  taskError: undefined,
  /** A failure a handler threw on purpose: fails the workflow. */
  workflowFailure: undefined,
  currentDetails: '',
};

/** @internal Throws unless a workflow is running in this instance. */
export function assertInWorkflowContext(what) {
  if (!state.running) {
    throw new IllegalStateError(`${what} may only be used from a Workflow Execution (not at module load or after the workflow returned)`);
  }
}

function infoFromWit(wit) {
  const { legacy, typed } = searchAttributesFromWit(wit.searchAttributes);
  const startTime = new Date(Number(wit.startTimeMs));
  return {
    workflowId: wit.workflowId,
    runId: wit.runId,
    workflowType: wit.workflowType,
    taskQueue: wit.taskQueue,
    namespace: wit.namespace,
    attempt: wit.attempt,
    firstExecutionRunId: wit.continuedFromRunId ? undefined : wit.runId,
    continuedFromExecutionRunId: wit.continuedFromRunId ?? undefined,
    parent: wit.parentWorkflowId ? { workflowId: wit.parentWorkflowId, runId: undefined, namespace: wit.namespace } : undefined,
    memo: memoFromWit(wit.memo),
    searchAttributes: legacy,
    typedSearchAttributes: typed,
    startTime,
    runStartTime: startTime,
    unsafe: {
      get isReplaying() {
        return ctx.isReplaying();
      },
      now: () => Date.now(),
    },
  };
}

/** @internal Replaces the workflow info (after an upsert). */
export function mutateWorkflowInfo(fn) {
  state.info = fn(state.info);
}

/** Records a failure of a handler: a Temporal failure (or continue-as-new)
 * ends the workflow as the TypeScript SDK does; anything else fails the
 * workflow task. */
function handleWorkflowFailure(error) {
  if (error instanceof TemporalFailure || error instanceof ContinueAsNew) {
    state.workflowFailure ??= error;
  } else {
    state.taskError ??= error;
  }
}

function decodeArgs(args, what) {
  return args.map((text, i) => {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new TypeError(`${what}: argument ${i} is not JSON: ${e?.message ?? e}`);
    }
  });
}

function settlePromise(promise, onFulfilled, onRejected) {
  nativeThen.call(Promise.resolve(promise), onFulfilled, onRejected);
}

function call(fn, args) {
  try {
    return Promise.resolve(runInScope(state.rootScope, fn, ...args));
  } catch (e) {
    return Promise.reject(e);
  }
}

// ------------------------------------------------------------- signals

function invokeSignal(name, args) {
  const handler = state.signalHandlers.get(name)?.handler;
  const run = handler ? () => call(handler, args) : () => call(state.defaultSignalHandler, [name, ...args]);
  state.inProgressSignals++;
  settlePromise(
    run(),
    () => state.inProgressSignals--,
    (e) => {
      state.inProgressSignals--;
      handleWorkflowFailure(e);
    }
  );
}

function signalWorkflow(signal) {
  if (!state.signalHandlers.has(signal.name) && !state.defaultSignalHandler) {
    state.bufferedSignals.push(signal);
    return;
  }
  invokeSignal(signal.name, signal.args);
}

/** @internal Runs the buffered signals a new handler takes (from setHandler). */
export function dispatchBufferedSignals() {
  const buffered = state.bufferedSignals;
  while (buffered.length) {
    const i = state.defaultSignalHandler ? 0 : buffered.findIndex((s) => state.signalHandlers.has(s.name));
    if (i === -1) break;
    const [signal] = buffered.splice(i, 1);
    invokeSignal(signal.name, signal.args);
  }
}

// ------------------------------------------------------------- updates

function doUpdate(update) {
  const registered = state.updateHandlers.get(update.name);
  const entry =
    registered ?? (state.defaultUpdateHandler ? { handler: state.defaultUpdateHandler.bind(undefined, update.name), validator: undefined } : undefined);
  if (!entry) {
    state.bufferedUpdates.push(update);
    return;
  }
  let args;
  try {
    args = decodeArgs(update.args, `update \`${update.name}\``);
    if (update.runValidator && entry.validator) runInScope(state.rootScope, entry.validator, ...args);
  } catch (e) {
    ctx.rejectUpdate(update.id, toWitApplicationError(e));
    return;
  }
  ctx.acceptUpdate(update.id);
  state.inProgressUpdates++;
  settlePromise(
    call(entry.handler, args),
    (result) => {
      state.inProgressUpdates--;
      ctx.completeUpdate(update.id, { tag: 'ok', val: JSON.stringify(result === undefined ? null : result) });
    },
    (e) => {
      state.inProgressUpdates--;
      if (e instanceof TemporalFailure) ctx.completeUpdate(update.id, { tag: 'err', val: toWitApplicationError(e) });
      else handleWorkflowFailure(e);
    }
  );
}

/** @internal Runs the buffered updates a new handler takes (from setHandler). */
export function dispatchBufferedUpdates() {
  const buffered = state.bufferedUpdates;
  while (buffered.length) {
    const i = state.defaultUpdateHandler ? 0 : buffered.findIndex((u) => state.updateHandlers.has(u.name));
    if (i === -1) break;
    const [update] = buffered.splice(i, 1);
    doUpdate(update);
  }
}

/** Updates no handler took by the end of the activation are rejected
 * (the host would reject them when the workflow waits again). */
function rejectBufferedUpdates() {
  for (const update of state.bufferedUpdates.splice(0)) {
    const known = [...state.updateHandlers.keys()].join(', ') || 'none';
    ctx.rejectUpdate(
      update.id,
      toWitApplicationError(ApplicationFailure.nonRetryable(`No registered handler for update: ${update.name} (registered: ${known})`, 'UpdateNotHandled'))
    );
  }
}

// ------------------------------------------------------------- queries

/** Answers query `name` with the registered handlers: its value, or throws. */
export function handleQuery(name, argTexts) {
  const args = decodeArgs(argTexts, `query \`${name}\``);
  const entry = state.queryHandlers.get(name);
  let result;
  if (entry) result = entry.handler(...args);
  else if (state.defaultQueryHandler) result = state.defaultQueryHandler(name, ...args);
  else {
    const known = [...state.queryHandlers.keys()].join(', ');
    throw new ReferenceError(`Workflow did not register a handler for ${name}. Registered queries: [${known}]`);
  }
  if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
    throw new DeterminismViolationError(`query handler ${name} returned a Promise: query handlers must be synchronous`);
  }
  return JSON.stringify(result === undefined ? null : result);
}

function answerQuery(query) {
  let answer;
  try {
    answer = { tag: 'ok', val: handleQuery(query.name, query.args) };
  } catch (e) {
    answer = { tag: 'err', val: String(e?.message ?? e) };
  }
  ctx.respondQuery(query.id, answer);
}

// ------------------------------------------------------------ the loop

function dispatch(event) {
  switch (event.tag) {
    case 'resolved': {
      const { handle, outcome } = event.val;
      const completion = state.completions.get(handle);
      if (!completion) return;
      state.completions.delete(handle);
      completion.settle(outcome);
      return;
    }
    case 'signal': {
      const { name, args } = event.val;
      let decoded;
      try {
        decoded = decodeArgs(args, `signal \`${name}\``);
      } catch (e) {
        // Any client can send any payload: drop this signal, keep the workflow.
        ctx.log('warn', `dropping signal \`${name}\`: ${e?.message ?? e}`);
        return;
      }
      signalWorkflow({ name, args: decoded });
      return;
    }
    case 'query':
      answerQuery(event.val);
      return;
    case 'update':
      doUpdate(event.val);
      return;
    case 'cancel-requested':
      state.cancelRequested = true;
      state.rootScope.cancel();
      return;
  }
}

/** One macrotask of the engine's event loop: every microtask queued before
 * has run when it fires. */
function macrotask() {
  return new Promise((resolve) => nativeSetTimeout(resolve, 0));
}

/** Resolves the blocked conditions whose predicate holds; true if any did. */
function unblockConditions() {
  let unblocked = false;
  for (const [seq, { fn, resolve }] of state.blockedConditions) {
    let holds;
    try {
      holds = fn();
    } catch (e) {
      state.taskError ??= e;
      return false;
    }
    if (holds) {
      state.blockedConditions.delete(seq);
      resolve();
      unblocked = true;
    }
  }
  return unblocked;
}

/** Lets every promise run until all are blocked on the host. */
async function runUntilBlocked() {
  do {
    await macrotask();
  } while (state.taskError === undefined && unblockConditions());
}

/** Logs the error with its stack at error level, then traps: the
 * workflow task fails and Temporal retries it, as the TypeScript SDK does
 * with an unexpected error. The log line ends with the error itself
 * (`TypeError: ...`), after the stack: the host puts the whole line in the
 * task failure's stack trace and its last line in the failure message. */
function failWorkflowTask(error) {
  let described;
  if (error instanceof Error) {
    const frames = String(error.stack ?? '')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => `  ${l}`);
    described = [`workflow task failed at:`, ...frames, `${error.name}: ${error.message}`].join('\n');
  } else {
    described = `workflow task failed: non-Error thrown: ${safeString(error)}`;
  }
  ctx.log('error', described);
  return trap(described);
}

/** @internal Ends the export with a trap whose stderr report is `message`.
 *
 * componentize-js turns anything an export returning `result<_, E>`
 * throws into its `err` (the thrown value's `payload`, or the value
 * itself: its `instanceof Error` check sees the bindings' realm, not the
 * workflow's), so a plain error would become an `application-error`
 * missing its fields, which traps with a confusing lowering message. A
 * `payload` getter that throws makes the bindings' promise reject instead:
 * the engine prints `message` and its stack to stderr and aborts. */
export function trap(message) {
  const error = new Error(message);
  throw Object.defineProperty({}, 'payload', {
    get() {
      throw error;
    },
  });
}

function safeString(value) {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

let nativeMathRandom;

/** Workflow-safe globals, as the TypeScript SDK's sandbox installs them.
 * `Date` needs nothing: in the virtual determinism mode the host's clock
 * is workflow time. */
function installGlobals(sleep, CancellationScope) {
  nativeMathRandom ??= Math.random;
  // The run's seeded generator (the same numbers on every replay).
  Math.random = () => Number(ctx.randomU64() >> 11n) / 9007199254740992;
  globalThis.WeakRef = function WeakRef() {
    throw new DeterminismViolationError('WeakRef cannot be used in Workflows because GC is non-deterministic');
  };
  globalThis.FinalizationRegistry = function FinalizationRegistry() {
    throw new DeterminismViolationError('FinalizationRegistry cannot be used in Workflows because GC is non-deterministic');
  };
  // No network in a workflow: the engine's fetch would trap deep inside
  // its stubbed wasi:http (the host links none), failing the task with no
  // reason given. Say why, as an error the workflow can catch.
  globalThis.fetch = () => {
    throw new DeterminismViolationError('fetch cannot be used in Workflows: the network is not deterministic; call an activity');
  };
  // setTimeout is a durable timer, as in the TypeScript SDK.
  const timeoutScopes = new Map();
  let nextTimeoutId = 1;
  globalThis.setTimeout = (cb, ms = 0, ...args) => {
    const id = nextTimeoutId++;
    const scope = new CancellationScope({ cancellable: true });
    timeoutScopes.set(id, scope);
    settlePromise(
      scope.run(() => sleep(Math.max(1, Number(ms) || 0))),
      () => {
        timeoutScopes.delete(id);
        cb(...args);
      },
      () => timeoutScopes.delete(id)
    );
    return id;
  };
  globalThis.clearTimeout = (id) => {
    const scope = timeoutScopes.get(id);
    if (scope) {
      timeoutScopes.delete(id);
      scope.cancel();
    }
  };
}

/** What the run ended with, as `dynamic.run` returns it. */
function finish(outcome) {
  state.running = false;
  if (outcome.ok) {
    try {
      return JSON.stringify(outcome.value === undefined ? null : outcome.value);
    } catch (e) {
      return failWorkflowTask(new TypeError(`the workflow's result is not JSON (${e?.message ?? e})`));
    }
  }
  const error = outcome.error;
  if (error instanceof ContinueAsNew) {
    ctx.continueAsNew(error.command);
    throw new IllegalStateError('continue-as-new returned');
  }
  if (state.cancelRequested && isCancellation(error)) {
    ctx.endCancelled();
    throw new IllegalStateError('end-cancelled returned');
  }
  if (error instanceof TemporalFailure) {
    // componentize-js returns a thrown value's `payload` as the `err` of
    // `result<json, application-error>`: the workflow fails with it.
    throw { payload: toWitApplicationError(error) };
  }
  return failWorkflowTask(error);
}

/** @internal Runs workflow function `fn` (type `workflowType`) with its
 * JSON arguments to the end: `dynamic.run`. */
export async function runWorkflow(fn, workflowType, argTexts, { sleep, CancellationScope }) {
  installScopePropagation();
  installGlobals(sleep, CancellationScope);
  state.running = true;
  state.info = infoFromWit(ctx.info());
  state.rootScope = new RootCancellationScope();
  setCurrentScope(state.rootScope);

  let outcome;
  let main;
  try {
    const args = decodeArgs(argTexts, `workflow \`${workflowType}\``);
    main = call(fn, args);
  } catch (e) {
    main = Promise.reject(e);
  }
  settlePromise(
    main,
    (value) => (outcome ??= { ok: true, value }),
    (error) => (outcome ??= { ok: false, error })
  );
  for (;;) {
    await runUntilBlocked();
    if (state.taskError !== undefined) {
      state.running = false;
      return failWorkflowTask(state.taskError);
    }
    if (state.workflowFailure !== undefined) outcome ??= { ok: false, error: state.workflowFailure };
    rejectBufferedUpdates();
    if (outcome) return finish(outcome);
    const event = ctx.wait([...state.completions.keys()]);
    setCurrentScope(state.rootScope);
    dispatch(event);
  }
}
