// Helpers for Caisson workflows written in JavaScript: the counterpart of
// the Rust `caisson-guest` crate, reading like the Temporal TypeScript SDK.
//
//   import { activity, sleep, condition, signal, onQuery } from 'caisson-guest';
//
//   const receipt = activity('charge', order).startToClose(30_000).retry({ maximumAttempts: 3 }).call();
//   sleep(3 * 24 * 3600 * 1000);                      // a durable timer
//   const approved = condition(() => decided, 60_000);  // true unless it timed out
//
// Every wait here is one blocking call into the host (`wait`): signals that
// arrive meanwhile are buffered, queries are answered with the handlers
// registered by `onQuery`, and cancellation is remembered.
//
// A JavaScript workflow needs `determinism = "virtual"` in its NAME.toml:
// the JS engine imports clocks and randomness, which the host then feeds
// from workflow history (so `Date.now()` is workflow time and
// `Math.random()` replays the same numbers).
//
// A package (package.json, versioned with caisson:workflow): a plugin imports
// it by name. componentize-js resolves no package names, so `caisson build`
// stages the plugin's sources with this folder beside them and rewrites
// the `caisson-guest` specifier to a relative path. `caisson new` vendors
// the folder into a standalone project.

import * as ctx from 'caisson:workflow/context@0.2.0';

const inbox = new Map(); // signal name -> [args (decoded JSON values)]
const queryHandlers = new Map(); // query name -> handler(...args)
let cancelRequested = false;

/** Why an activity, child or timer did not produce a value. Thrown by
 * `Handle.result()`; uncaught, it fails the workflow with the activity's
 * error type (its `payload` is the workflow's `application-error`). */
export class StepError extends Error {
  constructor(failure) {
    const app = failure.tag === 'application' ? failure.val : undefined;
    const message = app ? app.message : `${failure.tag}: ${failure.val}`;
    super(message);
    this.failure = failure;
    this.type = app ? app.errorType : { timeout: 'TimeoutError', cancelled: 'CancelledError' }[failure.tag] ?? 'StepFailed';
    this.payload = { message, errorType: this.type, nonRetryable: app ? app.nonRetryable : false, details: app?.details };
  }
}

/** Throw one to fail the workflow with an error type clients can match. */
export class ApplicationFailure extends Error {
  constructor(message, type = 'Error', { nonRetryable = true, details } = {}) {
    super(message);
    this.payload = { message, errorType: type, nonRetryable, details: details === undefined ? undefined : JSON.stringify(details) };
  }
}

function answerQuery(query) {
  let answer;
  try {
    answer = { tag: 'ok', val: JSON.stringify(handleQuery(query.name, query.args) ?? null) };
  } catch (e) {
    answer = { tag: 'err', val: String(e?.message ?? e) };
  }
  ctx.respondQuery(query.id, answer);
}

const updateHandlers = new Map();

/** Registers an update handler: `onUpdate('approve', (who) => ..., { validator })`.
 * The handler gets the decoded arguments and may start work and wait; its
 * return value goes back to the caller, a thrown error rejects the update.
 * A validator that throws rejects the update before it is accepted (never
 * run on replay; no trace in history). */
export function onUpdate(name, handler, { validator } = {}) {
  updateHandlers.set(name, { handler, validator });
}

function applicationError(e, type) {
  return { message: String(e?.message ?? e), errorType: e?.type ?? type, nonRetryable: true, details: undefined };
}

function answerUpdate(update) {
  const registered = updateHandlers.get(update.name);
  if (!registered) {
    const known = [...updateHandlers.keys()].join(', ');
    ctx.rejectUpdate(update.id, applicationError(`this workflow has no handler for update \`${update.name}\` (it handles: ${known})`, 'UpdateNotHandled'));
    return;
  }
  let args;
  try {
    args = update.args.map((a) => JSON.parse(a));
    if (update.runValidator && registered.validator) registered.validator(...args);
  } catch (e) {
    ctx.rejectUpdate(update.id, applicationError(e, 'ValidationError'));
    return;
  }
  ctx.acceptUpdate(update.id);
  try {
    const result = registered.handler(...args);
    ctx.completeUpdate(update.id, { tag: 'ok', val: JSON.stringify(result ?? null) });
  } catch (e) {
    ctx.completeUpdate(update.id, { tag: 'err', val: applicationError(e, 'UpdateFailed') });
  }
}

/** Waits once; a resolution of one of `ids`, or undefined after handling
 * a signal, query or cancellation. */
function waitOnce(ids) {
  const event = ctx.wait(ids);
  switch (event.tag) {
    case 'resolved':
      return event.val;
    case 'signal': {
      const { name, args } = event.val;
      let decoded;
      try {
        decoded = args.map((a) => JSON.parse(a));
      } catch (e) {
        // Any client can send any payload: drop this signal, keep the workflow.
        ctx.log('warn', `dropping signal \`${name}\`: its arguments do not decode: ${e?.message ?? e}`);
        return undefined;
      }
      if (!inbox.has(name)) inbox.set(name, []);
      inbox.get(name).push(decoded);
      return undefined;
    }
    case 'query':
      answerQuery(event.val);
      return undefined;
    case 'update':
      answerUpdate(event.val);
      return undefined;
    case 'cancel-requested':
      cancelRequested = true;
      return undefined;
  }
  return undefined;
}

function settle(outcome) {
  if (outcome.tag === 'completed') return JSON.parse(outcome.val);
  throw new StepError(outcome.val);
}

/** Something started: an activity, a timer or a child workflow. */
export class Handle {
  constructor(id) {
    this.id = id;
  }
  /** Waits for it; its (JSON-decoded) result, or throws a StepError. */
  result() {
    for (;;) {
      const resolution = waitOnce([this.id]);
      if (resolution) return settle(resolution.outcome);
    }
  }
  /** Requests cancellation. */
  cancel() {
    ctx.cancel(this.id);
  }
}

const ms = (value) => (value === undefined || value === null ? undefined : BigInt(value));

/** Builds an activity call: `activity('send-email', message).startToClose(10_000).call()`. */
export function activity(type, ...args) {
  return new ActivityBuilder(type).args(...args);
}

class ActivityBuilder {
  constructor(type) {
    this.options = {
      activityType: type,
      args: [],
      taskQueue: undefined,
      activityId: undefined,
      startToCloseTimeoutMs: 60_000n,
      scheduleToCloseTimeoutMs: undefined,
      scheduleToStartTimeoutMs: undefined,
      heartbeatTimeoutMs: undefined,
      retryPolicy: undefined,
      cancellationType: 'try-cancel',
      summary: undefined,
      priority: undefined,
    };
  }
  /** Adds arguments (each becomes one JSON payload). */
  args(...values) {
    this.options.args.push(...values.map((v) => JSON.stringify(v ?? null)));
    return this;
  }
  /** Limit for one attempt, in ms (default 60 s). */
  startToClose(timeoutMs) {
    this.options.startToCloseTimeoutMs = ms(timeoutMs);
    return this;
  }
  /** Limit for all attempts together, in ms. */
  scheduleToClose(timeoutMs) {
    this.options.scheduleToCloseTimeoutMs = ms(timeoutMs);
    return this;
  }
  /** Maximum time between heartbeats, in ms. */
  heartbeatTimeout(timeoutMs) {
    this.options.heartbeatTimeoutMs = ms(timeoutMs);
    return this;
  }
  /** Routes the activity to another task queue. */
  taskQueue(queue) {
    this.options.taskQueue = queue;
    return this;
  }
  /** `{ initialIntervalMs, backoffCoefficient, maximumIntervalMs, maximumAttempts, nonRetryableErrorTypes }`. */
  retry(policy) {
    this.options.retryPolicy = {
      initialIntervalMs: ms(policy.initialIntervalMs),
      backoffCoefficient: policy.backoffCoefficient,
      maximumIntervalMs: ms(policy.maximumIntervalMs),
      maximumAttempts: policy.maximumAttempts,
      nonRetryableErrorTypes: policy.nonRetryableErrorTypes ?? [],
    };
    return this;
  }
  /** Schedules it; never blocks. */
  start() {
    return new Handle(ctx.startActivity(this.options));
  }
  /** Schedules it and waits for its result. */
  call() {
    return this.start().result();
  }
}

/** A durable timer. */
export function timer(durationMs) {
  return new Handle(ctx.startTimer(BigInt(durationMs), undefined));
}

/** Sleeps durably: the worker may restart meanwhile. */
export function sleep(durationMs) {
  timer(durationMs).result();
}

/** Waits for all handles; their results in order (throws the first failure). */
export function waitAll(handles) {
  const outcomes = new Map();
  let pending = handles.map((h) => h.id);
  while (pending.length) {
    const resolution = waitOnce(pending);
    if (resolution) {
      outcomes.set(resolution.handle, resolution.outcome);
      pending = pending.filter((id) => id !== resolution.handle);
    }
  }
  return handles.map((h) => settle(outcomes.get(h.id)));
}

/** Waits for the first handle; `[index, result]`. */
export function waitAny(handles) {
  const ids = handles.map((h) => h.id);
  for (;;) {
    const resolution = waitOnce(ids);
    if (resolution) return [ids.indexOf(resolution.handle), settle(resolution.outcome)];
  }
}

/** Waits until `predicate()` holds (checked after every signal, query and
 * timer) or `timeoutMs` passes; true when it held. */
export function condition(predicate, timeoutMs) {
  const deadline = timeoutMs === undefined ? undefined : ctx.startTimer(BigInt(timeoutMs), undefined);
  for (;;) {
    if (predicate()) {
      if (deadline !== undefined) ctx.cancel(deadline);
      return true;
    }
    const resolution = waitOnce(deadline === undefined ? [] : [deadline]);
    if (resolution && resolution.handle === deadline) return predicate();
  }
}

/** Registers a query handler (answered from every wait, and after the
 * workflow returned when the plugin exports `queries` with `handleQuery`). */
export function onQuery(name, handler) {
  queryHandlers.set(name, handler);
}

/** Answers a query (its arguments JSON text) with the registered
 * handlers: the handler's value, or throws. */
export function handleQuery(name, args) {
  const handler = queryHandlers.get(name);
  if (!handler) throw `unknown query \`${name}\``;
  return handler(...args.map((a) => JSON.parse(a)));
}

/** The export for `caisson:workflow/queries`: `export const queries = queryExport;` */
export const queryExport = {
  handle(name, args) {
    return JSON.stringify(handleQuery(name, args) ?? null);
  },
};

/** The signals named `name`: `tryRecv()` takes the oldest one's first
 * argument (or undefined), `recv()` waits for one. */
export function signal(name) {
  return {
    tryRecv() {
      const queue = inbox.get(name);
      return queue && queue.length ? queue.shift()[0] : undefined;
    },
    recv() {
      let got;
      condition(() => (got = this.tryRecv()) !== undefined);
      return got;
    },
    pending() {
      return inbox.get(name)?.length ?? 0;
    },
  };
}

/** True once cancellation of this workflow was requested. */
export function isCancelRequested() {
  return cancelRequested || ctx.isCancelRequested();
}

/** Facts about this run (workflowId, runId, attempt, ...). */
export function workflowInfo() {
  return ctx.info();
}

/** Workflow time as a Date (the same as `new Date()` in virtual mode). */
export function now() {
  return new Date(Number(ctx.nowMs()));
}

/** Logs to the worker's log (silent while replaying). */
export function log(message, level = 'info') {
  ctx.log(level, message);
}

/** Ends this run and starts a new one with `args`. Never returns. */
export function continueAsNew(...args) {
  ctx.continueAsNew({ workflowType: undefined, args: args.map((a) => JSON.stringify(a)), taskQueue: undefined, memo: [], searchAttributes: [] });
  throw new Error('continue-as-new returned');
}
