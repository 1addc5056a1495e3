// caisson-workflow: the `@temporalio/workflow` API for Caisson workflows.
// A TypeScript or JavaScript workflow written for the Temporal TypeScript
// SDK ports by changing its import:
//
//   import { proxyActivities, sleep, defineSignal, setHandler, condition } from 'caisson-workflow';
//
// Every exported function of the plugin's module is a workflow type; the
// workflow runs on the caisson:workflow context of the host (see
// README.md for what is supported and what differs from the SDK).

export {
  ActivityFailure,
  ApplicationFailure,
  CancelledFailure,
  ChildWorkflowFailure,
  DeterminismViolationError,
  IllegalStateError,
  RetryState,
  ServerFailure,
  TemporalFailure,
  TerminatedFailure,
  TimeoutFailure,
  TimeoutType,
  WorkflowError,
  WorkflowExecutionAlreadyStartedError,
  ensureApplicationFailure,
  ensureTemporalFailure,
  isCancellation,
  rootCause,
} from './lib/failures.js';
export { CancellationScope, RootCancellationScope, __caisson_resume, __caisson_suspend } from './lib/scope.js';
export { ContinueAsNew } from './lib/activator.js';
export {
  ActivityCancellationType,
  ChildWorkflowCancellationType,
  ParentClosePolicy,
  Trigger,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  deprecatePatch,
  executeChild,
  getCurrentDetails,
  getExternalWorkflowHandle,
  inWorkflowContext,
  log,
  makeContinueAsNewFunc,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setDefaultQueryHandler,
  setDefaultSignalHandler,
  setDefaultUpdateHandler,
  setHandler,
  sleep,
  startChild,
  upsertMemo,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from './lib/workflow.js';
export { SearchAttributeType, TypedSearchAttributes, defineSearchAttributeKey } from './lib/search-attributes.js';
export { msToNumber } from './lib/duration.js';
