// The failure classes of `@temporalio/common` (TemporalFailure and its
// subclasses), and their conversion to and from the WIT `failure` and
// `application-error` of caisson:workflow.
//
// What crosses the WIT is flatter than Temporal's failure chain: an
// activity or child failure arrives as the innermost application error,
// a timeout, a cancellation or "other"; the guest rebuilds the SDK's shape
// (ActivityFailure with an ApplicationFailure, TimeoutFailure or
// CancelledFailure as `cause`) so `err.cause instanceof ...` checks port.

/** Base class of every failure Temporal knows about. */
export class TemporalFailure extends Error {
  constructor(message, cause) {
    super(message ?? undefined);
    this.cause = cause;
  }
  get name() {
    return this.constructor.name;
  }
}

/** A failure the application raises on purpose: thrown from a workflow it
 * fails the workflow (not just the task); from an activity it arrives as
 * the `cause` of an ActivityFailure. */
export class ApplicationFailure extends TemporalFailure {
  constructor(message, type, nonRetryable, details, cause, nextRetryDelay, category) {
    super(message, cause);
    this.type = type ?? undefined;
    this.nonRetryable = nonRetryable ?? false;
    this.details = details ?? undefined;
    this.nextRetryDelay = nextRetryDelay ?? undefined;
    this.category = category ?? undefined;
  }
  static create({ message, type, nonRetryable = false, details, nextRetryDelay, cause, category } = {}) {
    return new this(message, type, nonRetryable, details, cause, nextRetryDelay, category);
  }
  static retryable(message, type, ...details) {
    return new this(message, type ?? 'Error', false, details);
  }
  static nonRetryable(message, type, ...details) {
    return new this(message, type ?? 'Error', true, details);
  }
  static fromError(error, overrides) {
    const failure = ensureApplicationFailure(error);
    Object.assign(failure, overrides);
    return failure;
  }
}

/** Something was cancelled: an activity, timer, child, or the workflow. */
export class CancelledFailure extends TemporalFailure {
  constructor(message, details = [], cause) {
    super(message, cause);
    this.details = details;
  }
}

export class TerminatedFailure extends TemporalFailure {}

export class ServerFailure extends TemporalFailure {
  constructor(message, nonRetryable, cause) {
    super(message, cause);
    this.nonRetryable = nonRetryable;
  }
}

export const TimeoutType = {
  START_TO_CLOSE: 'START_TO_CLOSE',
  SCHEDULE_TO_START: 'SCHEDULE_TO_START',
  SCHEDULE_TO_CLOSE: 'SCHEDULE_TO_CLOSE',
  HEARTBEAT: 'HEARTBEAT',
};

export const RetryState = {
  IN_PROGRESS: 'IN_PROGRESS',
  NON_RETRYABLE_FAILURE: 'NON_RETRYABLE_FAILURE',
  TIMEOUT: 'TIMEOUT',
  MAXIMUM_ATTEMPTS_REACHED: 'MAXIMUM_ATTEMPTS_REACHED',
  RETRY_POLICY_NOT_SET: 'RETRY_POLICY_NOT_SET',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
  CANCEL_REQUESTED: 'CANCEL_REQUESTED',
};

export class TimeoutFailure extends TemporalFailure {
  constructor(message, lastHeartbeatDetails, timeoutType) {
    super(message);
    this.lastHeartbeatDetails = lastHeartbeatDetails;
    this.timeoutType = timeoutType;
  }
}

/** An activity failed; `cause` says why. */
export class ActivityFailure extends TemporalFailure {
  constructor(message, activityType, activityId, retryState, identity, cause) {
    super(message, cause);
    this.activityType = activityType;
    this.activityId = activityId;
    this.retryState = retryState;
    this.identity = identity;
  }
}

/** A child workflow failed; `cause` says why. */
export class ChildWorkflowFailure extends TemporalFailure {
  constructor(namespace, execution, workflowType, retryState, cause) {
    super('Child Workflow execution failed', cause);
    this.namespace = namespace;
    this.execution = execution;
    this.workflowType = workflowType;
    this.retryState = retryState;
  }
}

export class WorkflowExecutionAlreadyStartedError extends TemporalFailure {
  constructor(message, workflowId, workflowType) {
    super(message);
    this.workflowId = workflowId;
    this.workflowType = workflowType;
  }
}

/** Errors of the workflow library itself (misuse, a broken invariant). */
export class WorkflowError extends Error {
  get name() {
    return this.constructor.name;
  }
}
export class IllegalStateError extends WorkflowError {}
export class DeterminismViolationError extends WorkflowError {}

/** True for a CancelledFailure, or an activity/child failure caused by one:
 * what a cancelled workflow sees at the call it was waiting on. */
export function isCancellation(err) {
  return (
    err instanceof CancelledFailure ||
    ((err instanceof ActivityFailure || err instanceof ChildWorkflowFailure) && err.cause instanceof CancelledFailure)
  );
}

export function ensureApplicationFailure(error) {
  if (error instanceof ApplicationFailure) return error;
  const isRecord = typeof error === 'object' && error !== null;
  const message = (isRecord && String(error.message)) || String(error);
  const type = (isRecord && (error.constructor?.name ?? error.name)) || undefined;
  const failure = ApplicationFailure.create({ message, type, nonRetryable: false });
  failure.stack = (isRecord && String(error.stack)) || '';
  return failure;
}

export function ensureTemporalFailure(err) {
  return err instanceof TemporalFailure ? err : ensureApplicationFailure(err);
}

/** The message of the innermost cause. */
export function rootCause(error) {
  if (error instanceof TemporalFailure) return error.cause ? rootCause(error.cause) : error.message;
  return typeof error === 'object' && error !== null ? error.message : String(error);
}

function decodeDetails(details) {
  if (details === undefined || details === null) return undefined;
  // One payload crosses the WIT; the TypeScript SDK's details are a list
  // (one payload each), so it is the list's only element.
  try {
    return [JSON.parse(details)];
  } catch {
    return [details];
  }
}

const TIMEOUT_TYPES = {
  'start-to-close': TimeoutType.START_TO_CLOSE,
  'schedule-to-start': TimeoutType.SCHEDULE_TO_START,
  'schedule-to-close': TimeoutType.SCHEDULE_TO_CLOSE,
  heartbeat: TimeoutType.HEARTBEAT,
};

/** The SDK error for a WIT `failure` (the cause, without the activity or
 * child wrapper). */
export function causeFromWit(failure) {
  switch (failure.tag) {
    case 'application': {
      const app = failure.val;
      return new ApplicationFailure(app.message, app.errorType, app.nonRetryable, decodeDetails(app.details));
    }
    case 'timeout':
      return new TimeoutFailure(`${failure.val} timeout`, undefined, TIMEOUT_TYPES[failure.val] ?? failure.val);
    case 'cancelled':
      return new CancelledFailure(failure.val || 'Cancelled');
    default:
      return new TerminatedFailure(failure.val);
  }
}

function retryStateOf(cause) {
  if (cause instanceof CancelledFailure) return RetryState.CANCEL_REQUESTED;
  if (cause instanceof TimeoutFailure) return RetryState.TIMEOUT;
  if (cause instanceof ApplicationFailure && cause.nonRetryable) return RetryState.NON_RETRYABLE_FAILURE;
  return RetryState.MAXIMUM_ATTEMPTS_REACHED;
}

export function activityFailureFromWit(failure, activityType, activityId) {
  const cause = causeFromWit(failure);
  return new ActivityFailure('Activity task failed', activityType, activityId, retryStateOf(cause), undefined, cause);
}

export function childFailureFromWit(failure, namespace, workflowId, workflowType) {
  const cause = causeFromWit(failure);
  return new ChildWorkflowFailure(namespace, { workflowId, runId: undefined }, workflowType, retryStateOf(cause), cause);
}

/** The WIT `application-error` that fails a workflow (or an update) with
 * `error`: an ApplicationFailure keeps its type, message and details; a
 * wrapper (ActivityFailure, ChildWorkflowFailure) reports its message and
 * its cause's, with the innermost ApplicationFailure's type, so retry
 * policies and clients match on the activity's error type. */
export function toWitApplicationError(error) {
  const failure = ensureTemporalFailure(error);
  const messages = [];
  let innermost = failure;
  for (let f = failure; f; f = f.cause) {
    if (f.message) messages.push(f.message);
    innermost = f;
  }
  const app = [failure, ...causes(failure)].find((f) => f instanceof ApplicationFailure);
  const type = app?.type ?? innermost.constructor?.name ?? 'Error';
  const details = app?.details;
  return {
    message: messages.join(': '),
    errorType: type || 'Error',
    nonRetryable: app ? Boolean(app.nonRetryable) : false,
    details: encodeDetails(details),
  };
}

/** One JSON payload for the SDK's list of details: its only element, or
 * the list when there are several (the WIT carries one payload). */
function encodeDetails(details) {
  if (details === undefined || details === null) return undefined;
  if (!Array.isArray(details)) return JSON.stringify(details);
  if (details.length === 0) return undefined;
  return JSON.stringify(details.length === 1 ? details[0] : details);
}

function causes(failure) {
  const out = [];
  for (let f = failure.cause; f; f = f.cause) out.push(f);
  return out;
}
