// Type declarations of caisson-workflow: the subset of `@temporalio/workflow`
// (and the `@temporalio/common` names it re-exports) that Caisson
// implements, with the SDK's names and shapes, so a workflow typed against
// the SDK type-checks against this package after its import line changes.
// The build does not type-check (it only erases types); run `tsc --noEmit`
// in the project for that.

/** Milliseconds, or a string in the `ms` package's format ('1 minute', '10s', '1.5h'). */
export type Duration = number | string;

export interface RetryPolicy {
  backoffCoefficient?: number;
  initialInterval?: Duration;
  maximumAttempts?: number;
  maximumInterval?: Duration;
  nonRetryableErrorTypes?: string[];
}

export interface Priority {
  priorityKey?: number;
  fairnessKey?: string;
  fairnessWeight?: number;
}

export declare const ActivityCancellationType: {
  readonly ABANDON: 'ABANDON';
  readonly TRY_CANCEL: 'TRY_CANCEL';
  readonly WAIT_CANCELLATION_COMPLETED: 'WAIT_CANCELLATION_COMPLETED';
};
export type ActivityCancellationType = (typeof ActivityCancellationType)[keyof typeof ActivityCancellationType];

export declare const ChildWorkflowCancellationType: {
  readonly ABANDON: 'ABANDON';
  readonly TRY_CANCEL: 'TRY_CANCEL';
  readonly WAIT_CANCELLATION_COMPLETED: 'WAIT_CANCELLATION_COMPLETED';
  readonly WAIT_CANCELLATION_REQUESTED: 'WAIT_CANCELLATION_REQUESTED';
};
export type ChildWorkflowCancellationType = (typeof ChildWorkflowCancellationType)[keyof typeof ChildWorkflowCancellationType];

export declare const ParentClosePolicy: {
  readonly TERMINATE: 'TERMINATE';
  readonly ABANDON: 'ABANDON';
  readonly REQUEST_CANCEL: 'REQUEST_CANCEL';
};
export type ParentClosePolicy = (typeof ParentClosePolicy)[keyof typeof ParentClosePolicy];

export interface ActivityOptions {
  activityId?: string;
  taskQueue?: string;
  heartbeatTimeout?: Duration;
  retry?: RetryPolicy;
  startToCloseTimeout?: Duration;
  scheduleToStartTimeout?: Duration;
  scheduleToCloseTimeout?: Duration;
  cancellationType?: ActivityCancellationType;
  summary?: string;
  priority?: Priority;
}

export interface LocalActivityOptions {
  retry?: RetryPolicy;
  startToCloseTimeout?: Duration;
  scheduleToStartTimeout?: Duration;
  scheduleToCloseTimeout?: Duration;
  localRetryThreshold?: Duration;
  cancellationType?: ActivityCancellationType;
  summary?: string;
}

export type ActivityFunction<P extends any[] = any[], R = any> = (...args: P) => Promise<R>;
export type UntypedActivities = Record<string, ActivityFunction>;
export declare const NotAnActivityMethod: unique symbol;

export type ActivityFunctionWithOptions<T extends ActivityFunction> = T & {
  executeWithOptions(options: ActivityOptions, args: Parameters<T>): Promise<Awaited<ReturnType<T>>>;
};
export type LocalActivityFunctionWithOptions<T extends ActivityFunction> = T & {
  executeWithOptions(options: LocalActivityOptions, args: Parameters<T>): Promise<Awaited<ReturnType<T>>>;
};
export type ActivityInterfaceFor<T> = {
  [K in keyof T]: T[K] extends ActivityFunction ? ActivityFunctionWithOptions<T[K]> : typeof NotAnActivityMethod;
};
export type LocalActivityInterfaceFor<T> = {
  [K in keyof T]: T[K] extends ActivityFunction ? LocalActivityFunctionWithOptions<T[K]> : typeof NotAnActivityMethod;
};

/** Activities as functions; each property is an activity type of that name. */
export declare function proxyActivities<A = UntypedActivities>(options: ActivityOptions): ActivityInterfaceFor<A>;
/** Local activities as functions (run by this worker, recorded as markers). */
export declare function proxyLocalActivities<A = UntypedActivities>(options: LocalActivityOptions): LocalActivityInterfaceFor<A>;

export interface TimerOptions {
  summary?: string;
}
/** A durable timer. */
export declare function sleep(ms: Duration, options?: TimerOptions): Promise<void>;

export declare function condition(fn: () => boolean, timeout: Duration, options?: TimerOptions): Promise<boolean>;
export declare function condition(fn: () => boolean): Promise<void>;

// ------------------------------------------------------------- messages

export interface SignalDefinition<Args extends any[] = [], Name extends string = string> {
  type: 'signal';
  name: Name;
  __Args?: Args;
}
export interface QueryDefinition<Ret, Args extends any[] = [], Name extends string = string> {
  type: 'query';
  name: Name;
  __Args?: Args;
  __Ret?: Ret;
}
export interface UpdateDefinition<Ret, Args extends any[] = [], Name extends string = string> {
  type: 'update';
  name: Name;
  __Args?: Args;
  __Ret?: Ret;
}

export declare function defineSignal<Args extends any[] = [], Name extends string = string>(name: Name): SignalDefinition<Args, Name>;
export declare function defineQuery<Ret, Args extends any[] = [], Name extends string = string>(name: Name): QueryDefinition<Ret, Args, Name>;
export declare function defineUpdate<Ret, Args extends any[] = [], Name extends string = string>(name: Name): UpdateDefinition<Ret, Args, Name>;

export interface QueryHandlerOptions {
  description?: string;
}
export interface SignalHandlerOptions {
  description?: string;
}
export interface UpdateHandlerOptions<Args extends any[]> {
  /** Runs before the update is accepted (not on replay); throw to reject it. Synchronous. */
  validator?: (...args: Args) => void;
  description?: string;
}

export declare function setHandler<Ret, Args extends any[]>(
  def: QueryDefinition<Ret, Args>,
  handler: ((...args: Args) => Ret) | undefined,
  options?: QueryHandlerOptions
): void;
export declare function setHandler<Args extends any[]>(
  def: SignalDefinition<Args>,
  handler: ((...args: Args) => void | Promise<void>) | undefined,
  options?: SignalHandlerOptions
): void;
export declare function setHandler<Ret, Args extends any[]>(
  def: UpdateDefinition<Ret, Args>,
  handler: ((...args: Args) => Ret | Promise<Ret>) | undefined,
  options?: UpdateHandlerOptions<Args>
): void;

export declare function setDefaultSignalHandler(handler: ((signalName: string, ...args: unknown[]) => void | Promise<void>) | undefined): void;
export declare function setDefaultQueryHandler(handler: ((queryName: string, ...args: unknown[]) => unknown) | undefined): void;
export declare function setDefaultUpdateHandler(handler: ((updateName: string, ...args: unknown[]) => unknown) | undefined): void;
export declare function allHandlersFinished(): boolean;

// --------------------------------------------------------------- children

export type Workflow = (...args: any[]) => any;
export type WorkflowResultType<T extends Workflow> = ReturnType<T> extends Promise<infer R> ? R : ReturnType<T>;

export interface ChildWorkflowOptions {
  args?: unknown[];
  workflowId?: string;
  taskQueue?: string;
  cancellationType?: ChildWorkflowCancellationType;
  parentClosePolicy?: ParentClosePolicy;
  workflowExecutionTimeout?: Duration;
  workflowRunTimeout?: Duration;
  retry?: RetryPolicy;
  memo?: Record<string, unknown>;
  searchAttributes?: SearchAttributes;
  typedSearchAttributes?: SearchAttributePair[];
  staticSummary?: string;
  staticDetails?: string;
  priority?: Priority;
}
export type ChildWorkflowOptionsFor<T extends Workflow> = Omit<ChildWorkflowOptions, 'args'> &
  (Parameters<T> extends [] ? { args?: [] } : { args: Parameters<T> });

export interface ChildWorkflowHandle<T extends Workflow> {
  readonly workflowId: string;
  /** Not known in Caisson (the WIT has no start event): undefined. */
  readonly firstExecutionRunId: string | undefined;
  result(): Promise<WorkflowResultType<T>>;
  signal<Args extends any[]>(def: SignalDefinition<Args> | string, ...args: Args): Promise<void>;
}
export interface ExternalWorkflowHandle {
  readonly workflowId: string;
  readonly runId?: string;
  signal<Args extends any[]>(def: SignalDefinition<Args> | string, ...args: Args): Promise<void>;
  /** Not supported by caisson:workflow@0.2.0: rejects. */
  cancel(): Promise<void>;
}

export declare function startChild<T extends Workflow>(workflowTypeOrFunc: string | T, options?: ChildWorkflowOptionsFor<T>): Promise<ChildWorkflowHandle<T>>;
export declare function executeChild<T extends Workflow>(workflowTypeOrFunc: string | T, options?: ChildWorkflowOptionsFor<T>): Promise<WorkflowResultType<T>>;
export declare function getExternalWorkflowHandle(workflowId: string, runId?: string): ExternalWorkflowHandle;

// ------------------------------------------------------------ cancellation

export interface CancellationScopeOptions {
  timeout?: Duration;
  cancellable: boolean;
  parent?: CancellationScope;
}
export declare class CancellationScope {
  constructor(options?: CancellationScopeOptions);
  readonly cancellable: boolean;
  readonly parent?: CancellationScope;
  /** Rejects with a CancelledFailure when the scope is cancelled. */
  readonly cancelRequested: Promise<never>;
  get consideredCancelled(): boolean;
  run<T>(fn: () => Promise<T>): Promise<T>;
  cancel(): void;
  static current(): CancellationScope;
  static cancellable<T>(fn: () => Promise<T>): Promise<T>;
  static nonCancellable<T>(fn: () => Promise<T>): Promise<T>;
  static withTimeout<T>(timeout: Duration, fn: () => Promise<T>): Promise<T>;
}
export declare class RootCancellationScope extends CancellationScope {}

export declare class Trigger<T> implements PromiseLike<T> {
  readonly resolve: (value: T | PromiseLike<T>) => void;
  readonly reject: (reason?: any) => void;
  then<TResult1 = T, TResult2 = never>(
    onfulfilled?: ((value: T) => TResult1 | PromiseLike<TResult1>) | null,
    onrejected?: ((reason: any) => TResult2 | PromiseLike<TResult2>) | null
  ): PromiseLike<TResult1 | TResult2>;
}

// ------------------------------------------------------------- failures

export declare class TemporalFailure extends Error {
  readonly cause?: Error;
  constructor(message?: string | null, cause?: Error);
}
export interface ApplicationFailureOptions {
  message?: string;
  type?: string;
  nonRetryable?: boolean;
  details?: unknown[];
  nextRetryDelay?: Duration;
  cause?: Error;
}
export declare class ApplicationFailure extends TemporalFailure {
  readonly type?: string | null;
  readonly nonRetryable?: boolean | null;
  readonly details?: unknown[] | null;
  constructor(message?: string | null, type?: string | null, nonRetryable?: boolean | null, details?: unknown[] | null, cause?: Error);
  static create(options: ApplicationFailureOptions): ApplicationFailure;
  static retryable(message?: string | null, type?: string | null, ...details: unknown[]): ApplicationFailure;
  static nonRetryable(message?: string | null, type?: string | null, ...details: unknown[]): ApplicationFailure;
  static fromError(error: unknown, overrides?: ApplicationFailureOptions): ApplicationFailure;
}
export declare class CancelledFailure extends TemporalFailure {
  readonly details: unknown[];
  constructor(message: string | undefined, details?: unknown[], cause?: Error);
}
export declare class TerminatedFailure extends TemporalFailure {}
export declare class ServerFailure extends TemporalFailure {
  readonly nonRetryable: boolean;
}
export declare const TimeoutType: {
  readonly START_TO_CLOSE: 'START_TO_CLOSE';
  readonly SCHEDULE_TO_START: 'SCHEDULE_TO_START';
  readonly SCHEDULE_TO_CLOSE: 'SCHEDULE_TO_CLOSE';
  readonly HEARTBEAT: 'HEARTBEAT';
};
export type TimeoutType = (typeof TimeoutType)[keyof typeof TimeoutType];
export declare const RetryState: {
  readonly IN_PROGRESS: 'IN_PROGRESS';
  readonly NON_RETRYABLE_FAILURE: 'NON_RETRYABLE_FAILURE';
  readonly TIMEOUT: 'TIMEOUT';
  readonly MAXIMUM_ATTEMPTS_REACHED: 'MAXIMUM_ATTEMPTS_REACHED';
  readonly RETRY_POLICY_NOT_SET: 'RETRY_POLICY_NOT_SET';
  readonly INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR';
  readonly CANCEL_REQUESTED: 'CANCEL_REQUESTED';
};
export type RetryState = (typeof RetryState)[keyof typeof RetryState];
export declare class TimeoutFailure extends TemporalFailure {
  readonly lastHeartbeatDetails: unknown;
  readonly timeoutType: TimeoutType;
}
export declare class ActivityFailure extends TemporalFailure {
  readonly activityType: string;
  readonly activityId: string | undefined;
  readonly retryState: RetryState;
  readonly identity: string | undefined;
}
export interface WorkflowExecution {
  workflowId: string;
  runId?: string;
}
export declare class ChildWorkflowFailure extends TemporalFailure {
  readonly namespace: string | undefined;
  readonly execution: WorkflowExecution;
  readonly workflowType: string;
  readonly retryState: RetryState;
}
export declare class WorkflowExecutionAlreadyStartedError extends TemporalFailure {
  readonly workflowId: string;
  readonly workflowType: string;
}
export declare class WorkflowError extends Error {}
export declare class IllegalStateError extends WorkflowError {}
export declare class DeterminismViolationError extends WorkflowError {}
export declare function isCancellation(err: unknown): boolean;
export declare function ensureApplicationFailure(error: unknown): ApplicationFailure;
export declare function ensureTemporalFailure(error: unknown): TemporalFailure;
export declare function rootCause(error: unknown): string | undefined;

// ---------------------------------------------- search attributes and memo

export type SearchAttributeValue = string[] | number[] | boolean[] | Date[];
export type SearchAttributes = Record<string, SearchAttributeValue | Readonly<SearchAttributeValue> | undefined>;
export declare const SearchAttributeType: {
  readonly TEXT: 'TEXT';
  readonly KEYWORD: 'KEYWORD';
  readonly INT: 'INT';
  readonly DOUBLE: 'DOUBLE';
  readonly BOOL: 'BOOL';
  readonly DATETIME: 'DATETIME';
  readonly KEYWORD_LIST: 'KEYWORD_LIST';
};
export type SearchAttributeType = (typeof SearchAttributeType)[keyof typeof SearchAttributeType];
interface IndexedValueTypeMapping {
  TEXT: string;
  KEYWORD: string;
  INT: number;
  DOUBLE: number;
  BOOL: boolean;
  DATETIME: Date;
  KEYWORD_LIST: string[];
}
export interface SearchAttributeKey<T extends SearchAttributeType> {
  name: string;
  type: T;
}
export declare function defineSearchAttributeKey<T extends SearchAttributeType>(name: string, type: T): SearchAttributeKey<T>;
export type SearchAttributePair = {
  [T in SearchAttributeType]: { key: SearchAttributeKey<T>; value: IndexedValueTypeMapping[T] };
}[SearchAttributeType];
export type SearchAttributeUpdatePair = {
  [T in SearchAttributeType]: { key: SearchAttributeKey<T>; value: IndexedValueTypeMapping[T] | null };
}[SearchAttributeType];
export declare class TypedSearchAttributes {
  get<T extends SearchAttributeType>(key: SearchAttributeKey<T>): IndexedValueTypeMapping[T] | undefined;
  getAll(): SearchAttributePair[];
}
export declare function upsertSearchAttributes(searchAttributes: SearchAttributes | SearchAttributeUpdatePair[]): void;
export declare function upsertMemo(memo: Record<string, unknown>): void;

// ------------------------------------------------------- info and the rest

export interface ParentWorkflowInfo {
  workflowId: string;
  runId?: string;
  namespace: string;
}
export interface WorkflowInfo {
  readonly workflowId: string;
  readonly runId: string;
  readonly workflowType: string;
  readonly taskQueue: string;
  readonly namespace: string;
  readonly attempt: number;
  readonly firstExecutionRunId?: string;
  readonly continuedFromExecutionRunId?: string;
  readonly parent?: ParentWorkflowInfo;
  readonly memo?: Record<string, unknown>;
  readonly searchAttributes: SearchAttributes;
  readonly typedSearchAttributes: TypedSearchAttributes;
  readonly startTime: Date;
  readonly runStartTime: Date;
  readonly unsafe: { readonly isReplaying: boolean; now(): number };
}
export declare function workflowInfo(): WorkflowInfo;
export declare function inWorkflowContext(): boolean;
/** A UUID v4 from the run's seeded generator (replay-safe). */
export declare function uuid4(): string;
export declare function patched(patchId: string): boolean;
export declare function deprecatePatch(patchId: string): void;

export interface ContinueAsNewOptions {
  workflowType?: string;
  taskQueue?: string;
  memo?: Record<string, unknown>;
  searchAttributes?: SearchAttributes;
  typedSearchAttributes?: SearchAttributePair[];
}
export declare class ContinueAsNew extends Error {}
export declare function makeContinueAsNewFunc<F extends Workflow>(options?: ContinueAsNewOptions): (...args: Parameters<F>) => Promise<never>;
export declare function continueAsNew<F extends Workflow>(...args: Parameters<F>): Promise<never>;

export declare function getCurrentDetails(): string;
export declare function setCurrentDetails(details: string): void;

export interface WorkflowLogger {
  trace(message: string, attrs?: Record<string, unknown>): void;
  debug(message: string, attrs?: Record<string, unknown>): void;
  info(message: string, attrs?: Record<string, unknown>): void;
  warn(message: string, attrs?: Record<string, unknown>): void;
  error(message: string, attrs?: Record<string, unknown>): void;
}
/** Lines go to the worker log, tagged with the workflow; dropped while replaying. */
export declare const log: WorkflowLogger;

export declare function msToNumber(value: Duration): number;

/** @internal Used by the build's `await` rewrite (see lib/scope.js). */
export declare function __caisson_suspend<T>(value: T): Promise<unknown>;
/** @internal */
export declare function __caisson_resume(settled: unknown): any;
