// The workflow APIs of `@temporalio/workflow`, on the caisson:workflow
// context: activities, local activities, timers, conditions, children,
// external signals, handlers, patches, continue-as-new, memo and search
// attributes, info and logging. Names, options and behaviour follow the
// TypeScript SDK (packages/workflow/src/workflow.ts); README.md lists what
// differs.

import { ctx } from './host.js';
import { msToNumber, toWitMs } from './duration.js';
import { activityFailureFromWit, causeFromWit, childFailureFromWit } from './failures.js';
import { CancellationScope, registerSleepImplementation } from './scope.js';
import {
  ContinueAsNew,
  assertInWorkflowContext,
  dispatchBufferedSignals,
  dispatchBufferedUpdates,
  mutateWorkflowInfo,
  state,
} from './activator.js';
import { memoToWit, searchAttributesFromWit, searchAttributesToWit } from './search-attributes.js';

export const ActivityCancellationType = {
  ABANDON: 'ABANDON',
  TRY_CANCEL: 'TRY_CANCEL',
  WAIT_CANCELLATION_COMPLETED: 'WAIT_CANCELLATION_COMPLETED',
};

export const ChildWorkflowCancellationType = {
  ABANDON: 'ABANDON',
  TRY_CANCEL: 'TRY_CANCEL',
  WAIT_CANCELLATION_COMPLETED: 'WAIT_CANCELLATION_COMPLETED',
  WAIT_CANCELLATION_REQUESTED: 'WAIT_CANCELLATION_REQUESTED',
};

export const ParentClosePolicy = {
  TERMINATE: 'TERMINATE',
  ABANDON: 'ABANDON',
  REQUEST_CANCEL: 'REQUEST_CANCEL',
};

function json(value) {
  return JSON.stringify(value === undefined ? null : value);
}

function decode(text) {
  return JSON.parse(text);
}

// The SDK's enums have been numbers (protobuf) and strings; take both.
function cancellationTypeToWit(type, what) {
  switch (type) {
    case undefined:
    case null:
    case 'TRY_CANCEL':
    case 0:
      return 'try-cancel';
    case 'WAIT_CANCELLATION_COMPLETED':
    case 1:
      return 'wait-cancellation-completed';
    case 'ABANDON':
    case 2:
      return 'abandon';
    default:
      throw new TypeError(`${what}.cancellationType: ${JSON.stringify(type)} is not one of TRY_CANCEL, WAIT_CANCELLATION_COMPLETED, ABANDON`);
  }
}

function childCancellationTypeToWit(type) {
  switch (type) {
    case undefined:
    case null:
    case 'WAIT_CANCELLATION_COMPLETED':
    case 'WAIT_CANCELLATION_REQUESTED': // the WIT has no such type: wait for completion
    case 1:
    case 3:
      return 'wait-cancellation-completed';
    case 'TRY_CANCEL':
    case 2:
      return 'try-cancel';
    case 'ABANDON':
    case 0:
      return 'abandon';
    default:
      throw new TypeError(`child workflow cancellationType: ${JSON.stringify(type)} is not a ChildWorkflowCancellationType`);
  }
}

function parentClosePolicyToWit(policy) {
  switch (policy) {
    case undefined:
    case null:
    case 'TERMINATE':
    case 'PARENT_CLOSE_POLICY_TERMINATE':
    case 1:
      return 'terminate';
    case 'ABANDON':
    case 'PARENT_CLOSE_POLICY_ABANDON':
    case 2:
      return 'abandon';
    case 'REQUEST_CANCEL':
    case 'PARENT_CLOSE_POLICY_REQUEST_CANCEL':
    case 3:
      return 'request-cancel';
    default:
      throw new TypeError(`parentClosePolicy: ${JSON.stringify(policy)} is not a ParentClosePolicy`);
  }
}

function retryPolicyToWit(retry, what) {
  if (!retry) return undefined;
  const attempts = retry.maximumAttempts;
  if (attempts !== undefined && (!Number.isInteger(attempts) || attempts < 0)) {
    throw new TypeError(`${what}.retry.maximumAttempts: ${JSON.stringify(attempts)} is not a whole number (0 means unlimited)`);
  }
  return {
    initialIntervalMs: toWitMs(retry.initialInterval, `${what}.retry.initialInterval`),
    backoffCoefficient: retry.backoffCoefficient,
    maximumIntervalMs: toWitMs(retry.maximumInterval, `${what}.retry.maximumInterval`),
    maximumAttempts: attempts === Number.POSITIVE_INFINITY ? 0 : attempts,
    nonRetryableErrorTypes: retry.nonRetryableErrorTypes ?? [],
  };
}

function priorityToWit(priority) {
  if (!priority) return undefined;
  return {
    priorityKey: priority.priorityKey,
    fairnessKey: priority.fairnessKey,
    fairnessWeight: priority.fairnessWeight,
  };
}

function validateActivityOptions(options, what) {
  if (options === undefined || options === null) throw new TypeError(`${what}: options must be defined`);
  if (options.scheduleToCloseTimeout === undefined && options.startToCloseTimeout === undefined) {
    throw new TypeError(`${what}: Required either scheduleToCloseTimeout or startToCloseTimeout`);
  }
}

/** Registers the completion of `handle` and, in a cancellable scope, asks
 * the host to cancel it when the scope is cancelled; the promise settles
 * when the host resolves the handle (per its cancellation type). */
function track(scope, handle, settle) {
  state.completions.set(handle, { settle });
  if (scope.cancellable) {
    scope.cancelRequested.catch(() => {
      if (state.completions.has(handle)) ctx.cancel(handle);
    });
  }
}

// --------------------------------------------------------- activities

function scheduleActivity(activityType, args, options) {
  assertInWorkflowContext('proxyActivities functions');
  const what = `activity ${activityType}`;
  validateActivityOptions(options, what);
  const witOptions = {
    activityType,
    args: args.map(json),
    taskQueue: options.taskQueue,
    activityId: options.activityId,
    startToCloseTimeoutMs: toWitMs(options.startToCloseTimeout, `${what}.startToCloseTimeout`),
    scheduleToCloseTimeoutMs: toWitMs(options.scheduleToCloseTimeout, `${what}.scheduleToCloseTimeout`),
    scheduleToStartTimeoutMs: toWitMs(options.scheduleToStartTimeout, `${what}.scheduleToStartTimeout`),
    heartbeatTimeoutMs: toWitMs(options.heartbeatTimeout, `${what}.heartbeatTimeout`),
    retryPolicy: retryPolicyToWit(options.retry, what),
    cancellationType: cancellationTypeToWit(options.cancellationType, what),
    summary: options.summary,
    priority: priorityToWit(options.priority),
  };
  return new Promise((resolve, reject) => {
    const scope = CancellationScope.current();
    if (scope.consideredCancelled) {
      scope.cancelRequested.catch(reject);
      return;
    }
    const handle = ctx.startActivity(witOptions);
    const activityId = options.activityId ?? String(handle);
    track(scope, handle, (outcome) =>
      outcome.tag === 'completed' ? resolve(decode(outcome.val)) : reject(activityFailureFromWit(outcome.val, activityType, activityId))
    );
  });
}

function scheduleLocalActivity(activityType, args, options) {
  assertInWorkflowContext('proxyLocalActivities functions');
  const what = `local activity ${activityType}`;
  validateActivityOptions(options, what);
  const witOptions = {
    activityType,
    args: args.map(json),
    activityId: undefined,
    startToCloseTimeoutMs: toWitMs(options.startToCloseTimeout, `${what}.startToCloseTimeout`),
    scheduleToCloseTimeoutMs: toWitMs(options.scheduleToCloseTimeout, `${what}.scheduleToCloseTimeout`),
    scheduleToStartTimeoutMs: toWitMs(options.scheduleToStartTimeout, `${what}.scheduleToStartTimeout`),
    retryPolicy: retryPolicyToWit(options.retry, what),
    localRetryThresholdMs: toWitMs(options.localRetryThreshold, `${what}.localRetryThreshold`),
    cancellationType: cancellationTypeToWit(options.cancellationType, what),
    summary: options.summary,
  };
  return new Promise((resolve, reject) => {
    const scope = CancellationScope.current();
    if (scope.consideredCancelled) {
      scope.cancelRequested.catch(reject);
      return;
    }
    // Backoffs longer than localRetryThreshold become a timer and a new
    // attempt inside the host: the handle resolves once, at the end.
    const handle = ctx.startLocalActivity(witOptions);
    track(scope, handle, (outcome) =>
      outcome.tag === 'completed' ? resolve(decode(outcome.val)) : reject(activityFailureFromWit(outcome.val, activityType, String(handle)))
    );
  });
}

function deepMerge(base, override) {
  const out = { ...base };
  for (const [k, v] of Object.entries(override ?? {})) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && base?.[k] && typeof base[k] === 'object' ? deepMerge(base[k], v) : v;
  }
  return out;
}

function activityProxy(options, schedule, what) {
  validateActivityOptions(options, what);
  return new Proxy(
    {},
    {
      get(_, activityType) {
        if (typeof activityType !== 'string') {
          throw new TypeError(`Only strings are supported for Activity types, got: ${String(activityType)}`);
        }
        function activityProxyFunction(...args) {
          return schedule(activityType, args, options);
        }
        activityProxyFunction.executeWithOptions = (overrides, args) => schedule(activityType, args, deepMerge(options, overrides));
        return activityProxyFunction;
      },
    }
  );
}

/** Activities as functions: `const { greet } = proxyActivities<typeof acts>({ startToCloseTimeout: '1 minute' })`.
 * Each property is an activity type of that name. */
export function proxyActivities(options) {
  return activityProxy(options, scheduleActivity, 'proxyActivities');
}

/** Local activities as functions (run in this worker, recorded as markers). */
export function proxyLocalActivities(options) {
  return activityProxy(options, scheduleLocalActivity, 'proxyLocalActivities');
}

// -------------------------------------------------- timers, conditions

/** A durable timer: the worker may restart meanwhile. */
export function sleep(ms, options) {
  assertInWorkflowContext('sleep');
  const durationMs = Math.max(1, msToNumber(ms, 'sleep duration'));
  return new Promise((resolve, reject) => {
    const scope = CancellationScope.current();
    if (scope.consideredCancelled) {
      scope.cancelRequested.catch(reject);
      return;
    }
    const handle = ctx.startTimer(BigInt(Math.round(durationMs)), options?.summary);
    state.completions.set(handle, {
      settle: (outcome) => (outcome.tag === 'completed' ? resolve() : reject(causeFromWit(outcome.val))),
    });
    if (scope.cancellable) {
      scope.cancelRequested.catch((err) => {
        // A cancelled timer resolves at once on the host: stop waiting on it.
        if (!state.completions.delete(handle)) return;
        ctx.cancel(handle);
        reject(err);
      });
    }
  });
}
registerSleepImplementation(sleep);

function conditionInner(fn) {
  return new Promise((resolve, reject) => {
    const scope = CancellationScope.current();
    if (scope.consideredCancelled) {
      scope.cancelRequested.catch(reject);
      return;
    }
    const seq = state.nextConditionSeq++;
    if (scope.cancellable) {
      scope.cancelRequested.catch((err) => {
        state.blockedConditions.delete(seq);
        reject(err);
      });
    }
    if (fn()) {
      resolve();
      return;
    }
    state.blockedConditions.set(seq, { fn, resolve });
  });
}

/** Waits until `fn()` is true (checked whenever the workflow's promises are
 * all blocked). With a timeout: true if it held, false if the timeout
 * passed first. */
export function condition(fn, timeout, options) {
  assertInWorkflowContext('condition');
  if (typeof timeout === 'number' || typeof timeout === 'string') {
    const scope = new CancellationScope({ cancellable: true });
    return scope.run(() =>
      Promise.race([sleep(timeout, options).then(() => false), conditionInner(fn).then(() => true)]).finally(() => scope.cancel())
    );
  }
  return conditionInner(fn);
}

// ------------------------------------------------------ child workflows

function workflowTypeOf(typeOrFunc) {
  if (typeof typeOrFunc === 'string') return typeOrFunc;
  if (typeof typeOrFunc === 'function' && typeOrFunc.name) return typeOrFunc.name;
  throw new TypeError('child workflow: give the workflow type as a string or the workflow function itself');
}

function startChildInternal(typeOrFunc, options = {}) {
  assertInWorkflowContext('startChild/executeChild');
  const workflowType = workflowTypeOf(typeOrFunc);
  const workflowId = options.workflowId ?? uuid4();
  const what = `child workflow ${workflowType}`;
  const witOptions = {
    workflowType,
    args: (options.args ?? []).map(json),
    workflowId,
    taskQueue: options.taskQueue,
    executionTimeoutMs: toWitMs(options.workflowExecutionTimeout, `${what}.workflowExecutionTimeout`),
    runTimeoutMs: toWitMs(options.workflowRunTimeout, `${what}.workflowRunTimeout`),
    retryPolicy: retryPolicyToWit(options.retry, what),
    parentClosePolicy: parentClosePolicyToWit(options.parentClosePolicy),
    cancellationType: childCancellationTypeToWit(options.cancellationType),
    memo: memoToWit(options.memo),
    searchAttributes: [...searchAttributesToWit(options.searchAttributes), ...searchAttributesToWit(options.typedSearchAttributes)],
    staticSummary: options.staticSummary,
    staticDetails: options.staticDetails,
    priority: priorityToWit(options.priority),
  };
  const completed = new Promise((resolve, reject) => {
    const scope = CancellationScope.current();
    if (scope.consideredCancelled) {
      scope.cancelRequested.catch(reject);
      return;
    }
    const handle = ctx.startChildWorkflow(witOptions);
    track(scope, handle, (outcome) =>
      outcome.tag === 'completed'
        ? resolve(decode(outcome.val))
        : reject(childFailureFromWit(outcome.val, state.info.namespace, workflowId, workflowType))
    );
  });
  // The result may never be awaited (startChild without result()).
  completed.catch(() => undefined);
  return { workflowId, completed };
}

/** Starts a child workflow and returns its handle (`result()`, `signal()`). */
export async function startChild(typeOrFunc, options) {
  const { workflowId, completed } = startChildInternal(typeOrFunc, options);
  return {
    workflowId,
    firstExecutionRunId: undefined,
    result: () => completed,
    signal: (def, ...args) => signalExternal(workflowId, def, args),
  };
}

/** Starts a child workflow and waits for its result. */
export function executeChild(typeOrFunc, options) {
  return startChildInternal(typeOrFunc, options).completed;
}

function signalExternal(workflowId, def, args) {
  assertInWorkflowContext('signal');
  const signalName = typeof def === 'string' ? def : def.name;
  return new Promise((resolve, reject) => {
    const scope = CancellationScope.current();
    if (scope.consideredCancelled) {
      scope.cancelRequested.catch(reject);
      return;
    }
    const handle = ctx.signalExternalWorkflow(workflowId, signalName, args.map(json));
    state.completions.set(handle, {
      settle: (outcome) => (outcome.tag === 'completed' ? resolve() : reject(causeFromWit(outcome.val))),
    });
  });
}

/** A handle to another workflow: `signal()` it. (Cancelling another
 * workflow is not in caisson:workflow@0.2.0.) */
export function getExternalWorkflowHandle(workflowId, runId) {
  return {
    workflowId,
    runId,
    signal: (def, ...args) => signalExternal(workflowId, def, args),
    cancel: () =>
      Promise.reject(new TypeError('cancelling an external workflow is not supported by caisson:workflow@0.2.0: signal it to stop instead')),
  };
}

// ------------------------------------------------------------ messages

export function defineSignal(name) {
  return { type: 'signal', name };
}

export function defineQuery(name) {
  return { type: 'query', name };
}

export function defineUpdate(name) {
  return { type: 'update', name };
}

function checkHandler(handler) {
  if (handler !== undefined && handler !== null && typeof handler !== 'function') {
    throw new TypeError(`Expected handler to be either a function or 'undefined'. Got: '${typeof handler}'`);
  }
  return typeof handler === 'function';
}

/** Sets (or with `undefined` removes) the handler of a signal, query or
 * update definition. Update options: `{ validator, description }`. */
export function setHandler(def, handler, options) {
  assertInWorkflowContext('setHandler');
  const set = checkHandler(handler);
  const description = options?.description;
  switch (def?.type) {
    case 'update':
      if (set) {
        state.updateHandlers.set(def.name, { handler, validator: options?.validator, description });
        dispatchBufferedUpdates();
      } else state.updateHandlers.delete(def.name);
      return;
    case 'signal':
      if (set) {
        state.signalHandlers.set(def.name, { handler, description });
        dispatchBufferedSignals();
      } else state.signalHandlers.delete(def.name);
      return;
    case 'query':
      if (set) state.queryHandlers.set(def.name, { handler, description });
      else state.queryHandlers.delete(def.name);
      return;
    default:
      throw new TypeError(`Invalid definition type: ${def?.type} (use defineSignal, defineQuery or defineUpdate)`);
  }
}

export function setDefaultSignalHandler(handler) {
  assertInWorkflowContext('setDefaultSignalHandler');
  state.defaultSignalHandler = checkHandler(handler) ? handler : undefined;
  if (handler) dispatchBufferedSignals();
}

export function setDefaultUpdateHandler(handler) {
  assertInWorkflowContext('setDefaultUpdateHandler');
  state.defaultUpdateHandler = checkHandler(handler) ? handler : undefined;
  if (handler) dispatchBufferedUpdates();
}

export function setDefaultQueryHandler(handler) {
  assertInWorkflowContext('setDefaultQueryHandler');
  state.defaultQueryHandler = checkHandler(handler) ? handler : undefined;
}

/** True when no signal or update handler is still running. */
export function allHandlersFinished() {
  return state.inProgressSignals === 0 && state.inProgressUpdates === 0;
}

// ------------------------------------------------------- the rest

export function workflowInfo() {
  assertInWorkflowContext('workflowInfo');
  return state.info;
}

export function inWorkflowContext() {
  return state.running;
}

/** A random UUID v4 from the run's seeded generator (replay-safe). */
export function uuid4() {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, BigInt.asUintN(64, ctx.randomU64()));
  view.setBigUint64(8, BigInt.asUintN(64, ctx.randomU64()));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function patched(patchId) {
  assertInWorkflowContext('patched');
  return ctx.patched(patchId);
}

export function deprecatePatch(patchId) {
  assertInWorkflowContext('deprecatePatch');
  ctx.deprecatePatch(patchId);
}

/** A function that continues this workflow as new with its arguments. */
export function makeContinueAsNewFunc(options = {}) {
  assertInWorkflowContext('makeContinueAsNewFunc');
  return (...args) =>
    Promise.reject(
      new ContinueAsNew({
        workflowType: options.workflowType,
        args: args.map(json),
        taskQueue: options.taskQueue,
        memo: memoToWit(options.memo),
        searchAttributes: [...searchAttributesToWit(options.searchAttributes), ...searchAttributesToWit(options.typedSearchAttributes)],
      })
    );
}

/** Ends this run and starts a new one with `args`: `await continueAsNew<typeof wf>(...)`. */
export function continueAsNew(...args) {
  return makeContinueAsNewFunc()(...args);
}

export function upsertSearchAttributes(searchAttributes) {
  assertInWorkflowContext('upsertSearchAttributes');
  if (searchAttributes === undefined || searchAttributes === null) throw new TypeError('searchAttributes must be a non-null SearchAttributes');
  const wit = searchAttributesToWit(searchAttributes);
  ctx.upsertSearchAttributes(wit);
  mutateWorkflowInfo((info) => {
    const { legacy, typed } = searchAttributesFromWit(wit.filter((a) => a.value));
    const removed = new Set(wit.filter((a) => !a.value).map((a) => a.name));
    const searchAttributesNow = Object.fromEntries(Object.entries({ ...info.searchAttributes, ...legacy }).filter(([k]) => !removed.has(k)));
    const typedNow = info.typedSearchAttributes.updateCopy([
      ...typed.getAll(),
      ...[...removed].map((name) => ({ key: { name }, value: null })),
    ]);
    return { ...info, searchAttributes: searchAttributesNow, typedSearchAttributes: typedNow };
  });
}

export function upsertMemo(memo) {
  assertInWorkflowContext('upsertMemo');
  if (memo === undefined || memo === null) throw new TypeError('memo must be a non-null Record');
  ctx.upsertMemo(memoToWit(memo));
  mutateWorkflowInfo((info) => ({
    ...info,
    memo: Object.fromEntries(Object.entries({ ...info.memo, ...memo }).filter(([, v]) => v !== undefined && v !== null)),
  }));
}

export function getCurrentDetails() {
  return state.currentDetails;
}

export function setCurrentDetails(details) {
  assertInWorkflowContext('setCurrentDetails');
  state.currentDetails = details;
  ctx.setCurrentDetails(details);
}

function format(message, attrs) {
  if (attrs === undefined) return String(message);
  try {
    return `${message} ${JSON.stringify(attrs)}`;
  } catch {
    return `${message} ${String(attrs)}`;
  }
}

/** The workflow logger: lines go to the worker log, tagged with the
 * workflow, and are dropped while replaying (each appears once). */
export const log = {
  trace: (message, attrs) => ctx.log('trace', format(message, attrs)),
  debug: (message, attrs) => ctx.log('debug', format(message, attrs)),
  info: (message, attrs) => ctx.log('info', format(message, attrs)),
  warn: (message, attrs) => ctx.log('warn', format(message, attrs)),
  error: (message, attrs) => ctx.log('error', format(message, attrs)),
};

/** A promise the workflow resolves by hand; rejected with the scope's
 * CancelledFailure when the scope it was made in is cancelled. */
export class Trigger {
  constructor() {
    this.promise = new Promise((resolve, reject) => {
      const scope = CancellationScope.current();
      if (scope.cancellable) scope.cancelRequested.catch(reject);
      this.resolve = resolve;
      this.reject = reject;
    });
    this.promise.catch(() => undefined);
  }
  then(onFulfilled, onRejected) {
    return this.promise.then(onFulfilled, onRejected);
  }
}
