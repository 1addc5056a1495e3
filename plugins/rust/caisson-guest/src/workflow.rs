//! Helpers for workflow plugins: builders for activities, local
//! activities, timers and children; `wait_all` / `wait_any`; signal
//! channels; query and update handlers registered once and answered from
//! any wait; `wait_condition`; memo and search attributes; cancellation
//! the way the Temporal SDKs do it.
//!
//! Every wait in this module answers queries and updates with the
//! registered handlers and buffers signals, so workflow code only sees
//! what it asked for.
//!
//! For workflows that run several things at once (a handler beside a
//! loop, races, `join`), [`aio`] has the same calls as futures on a small
//! executor inside the guest; this module's calls block.
//!
//! Cancellation: when the workflow is asked to cancel, the wait in
//! progress (or the next one) cancels what it waits on, by each handle's
//! cancellation type, and the call returns `Err(StepError::Failed(
//! Failure::Cancelled(..)))`. Let that error propagate with `?` out of the
//! workflow function and the run ends CANCELED (the conversion to
//! `ApplicationError` calls [`end_cancelled`]); or catch it, compensate
//! inside [`shielded`] (work there is not cancelled), then call
//! [`end_cancelled`].

pub mod aio;

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::rc::Rc;
use std::collections::{BTreeMap, VecDeque};
pub use std::time::Duration;

/// Bindings of `caisson:workflow/imports` and the optional queries export.
pub mod bindings {
    wit_bindgen::generate!({
        inline: "package caisson-guest:workflow;
            world guest {
                include caisson:workflow/imports@0.2.0;
                use caisson:workflow/types@0.2.0.{application-error};
            }",
        path: "wit/workflow",
        world: "caisson-guest:workflow/guest",
        generate_all,
        generate_unused_types: true,
    });
}

pub use bindings::caisson::workflow::context;
pub use bindings::caisson::workflow::types::{
    ActivityOptions, ApplicationError, CancellationType, ChildWorkflowOptions, ContinueAsNewOptions, Event, Failure,
    LocalActivityOptions, LogLevel, MemoField, Outcome, ParentClosePolicy, Priority, SearchAttribute, SearchAttributeValue,
    WorkflowInfo,
};

/// Why a step of a workflow did not produce a value.
#[derive(Debug, Clone)]
pub enum StepError {
    /// The activity, child or timer failed (or was cancelled, or timed out).
    Failed(Failure),
    /// The result did not deserialize into the expected type.
    Decode(String),
}

impl StepError {
    /// As an application error, for returning from the workflow.
    pub fn into_application_error(self) -> ApplicationError {
        match self {
            StepError::Failed(Failure::Application(e)) => e,
            StepError::Failed(Failure::Timeout(kind)) => error("TimeoutError", format!("timed out ({kind})")),
            StepError::Failed(Failure::Cancelled(m)) => error("CancelledError", m),
            StepError::Failed(Failure::Other(m)) => error("StepFailed", m),
            StepError::Decode(m) => fatal("DecodeError", m),
        }
    }

    /// The application error type, if the failure is an application error.
    pub fn error_type(&self) -> Option<&str> {
        match self {
            StepError::Failed(Failure::Application(e)) => Some(&e.error_type),
            _ => None,
        }
    }
}

impl StepError {
    /// True when the step ended because it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, StepError::Failed(Failure::Cancelled(_)))
    }

    /// True when the step ended because a timeout fired (an activity's or
    /// local activity's start-to-close, schedule-to-close, heartbeat...,
    /// a child's run or execution timeout) and no retry was left.
    pub fn is_timeout(&self) -> bool {
        matches!(self, StepError::Failed(Failure::Timeout(_)))
    }

    /// Which timeout fired (`start-to-close`, `schedule-to-start`,
    /// `schedule-to-close`, `heartbeat`), when the step timed out.
    pub fn timeout_kind(&self) -> Option<&str> {
        match self {
            StepError::Failed(Failure::Timeout(kind)) => Some(kind),
            _ => None,
        }
    }
}

/// Propagating a step's error out of the workflow function (`?`) fails
/// the workflow with it, except a cancellation after the workflow was
/// asked to cancel: that ends the run as CANCELED, as in the Temporal
/// SDKs, through [`end_cancelled`].
impl From<StepError> for ApplicationError {
    fn from(e: StepError) -> Self {
        if e.is_cancelled() && cancel_requested() {
            end_cancelled();
        }
        e.into_application_error()
    }
}

/// Ends the run as cancelled (status CANCELED). Call it once the workflow
/// has compensated what it needed to. Never returns.
pub fn end_cancelled() -> ! {
    context::end_cancelled();
    unreachable!("end-cancelled does not return")
}

/// Logs every panic of this guest at error level before it traps (the
/// trap itself only says "panicked"), so the worker log and the workflow
/// task failure can say why: e.g. std's clock, which wasm32-unknown-unknown
/// does not have, panics with "time not implemented on this platform".
/// [`aio::run`], every blocking wait and every update registration call
/// it, so a workflow rarely needs to. Idempotent.
pub fn report_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let message = info.payload_as_str().unwrap_or("(no message)");
            let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
            context::log(LogLevel::Error, &format!("workflow panicked{at}: {message}"));
        }));
    });
}

/// An application error (retryable).
pub fn error(error_type: &str, message: impl Into<String>) -> ApplicationError {
    ApplicationError { message: message.into(), error_type: error_type.into(), non_retryable: false, details: None }
}

/// A non-retryable application error.
pub fn fatal(error_type: &str, message: impl Into<String>) -> ApplicationError {
    ApplicationError { non_retryable: true, ..error(error_type, message) }
}

/// Something started: an activity, a timer, a child, a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handle(pub u32);

impl Handle {
    /// Waits for this one to finish; its JSON result.
    pub fn join_json(self) -> Result<String, StepError> {
        wait_any(&[self]).1
    }

    /// Waits and deserializes the result.
    pub fn join<T: DeserializeOwned>(self) -> Result<T, StepError> {
        decode(self.join_json()?)
    }

    /// Requests cancellation.
    pub fn cancel(self) {
        context::cancel(self.0);
    }
}

fn decode<T: DeserializeOwned>(json: String) -> Result<T, StepError> {
    serde_json::from_str(&json).map_err(|e| StepError::Decode(format!("{e} in {json}")))
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("argument serializes to JSON")
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// A retry policy; unset fields take the server's defaults.
#[derive(Debug, Clone, Default)]
pub struct RetryPolicy(bindings::caisson::workflow::types::RetryPolicy);

impl RetryPolicy {
    /// Delay before the first retry.
    pub fn initial_interval(mut self, d: Duration) -> Self {
        self.0.initial_interval_ms = Some(ms(d));
        self
    }
    /// Multiplier for each further delay.
    pub fn backoff_coefficient(mut self, c: f64) -> Self {
        self.0.backoff_coefficient = Some(c);
        self
    }
    /// Upper bound on the delay.
    pub fn maximum_interval(mut self, d: Duration) -> Self {
        self.0.maximum_interval_ms = Some(ms(d));
        self
    }
    /// Attempts in all, including the first.
    pub fn maximum_attempts(mut self, n: u32) -> Self {
        self.0.maximum_attempts = Some(n);
        self
    }
    /// Error types that are never retried.
    pub fn non_retryable(mut self, types: &[&str]) -> Self {
        self.0.non_retryable_error_types = types.iter().map(|t| t.to_string()).collect();
        self
    }
}

impl Default for bindings::caisson::workflow::types::RetryPolicy {
    fn default() -> Self {
        Self {
            initial_interval_ms: None,
            backoff_coefficient: None,
            maximum_interval_ms: None,
            maximum_attempts: None,
            non_retryable_error_types: vec![],
        }
    }
}

/// Builds an activity call: `activity("charge").arg(&x).start_to_close(..).call()`.
pub fn activity(activity_type: &str) -> ActivityBuilder {
    ActivityBuilder(ActivityOptions {
        activity_type: activity_type.into(),
        args: vec![],
        task_queue: None,
        activity_id: None,
        start_to_close_timeout_ms: Some(60_000),
        schedule_to_close_timeout_ms: None,
        schedule_to_start_timeout_ms: None,
        heartbeat_timeout_ms: None,
        retry_policy: None,
        cancellation_type: CancellationType::TryCancel,
        summary: None,
        priority: None,
    })
}

/// See [`activity`].
#[derive(Debug, Clone)]
pub struct ActivityBuilder(ActivityOptions);

impl ActivityBuilder {
    /// Adds an argument (serialized to JSON).
    pub fn arg<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        self.0.args.push(to_json(value));
        self
    }
    /// Adds several arguments at once: `.args((&order, &card))`.
    pub fn args<A: IntoArgs>(mut self, values: A) -> Self {
        self.0.args.extend(values.into_args());
        self
    }
    /// Routes to another task queue.
    pub fn task_queue(mut self, q: &str) -> Self {
        self.0.task_queue = Some(q.into());
        self
    }
    /// Sets the activity id.
    pub fn id(mut self, id: &str) -> Self {
        self.0.activity_id = Some(id.into());
        self
    }
    /// Limit for one attempt (default 60 s).
    pub fn start_to_close(mut self, d: Duration) -> Self {
        self.0.start_to_close_timeout_ms = Some(ms(d));
        self
    }
    /// Limit for all attempts.
    pub fn schedule_to_close(mut self, d: Duration) -> Self {
        self.0.schedule_to_close_timeout_ms = Some(ms(d));
        self
    }
    /// Limit for waiting in the queue.
    pub fn schedule_to_start(mut self, d: Duration) -> Self {
        self.0.schedule_to_start_timeout_ms = Some(ms(d));
        self
    }
    /// Maximum time between heartbeats.
    pub fn heartbeat_timeout(mut self, d: Duration) -> Self {
        self.0.heartbeat_timeout_ms = Some(ms(d));
        self
    }
    /// Retry policy.
    pub fn retry(mut self, p: RetryPolicy) -> Self {
        self.0.retry_policy = Some(p.0);
        self
    }
    /// What cancelling it does.
    pub fn cancellation(mut self, c: CancellationType) -> Self {
        self.0.cancellation_type = c;
        self
    }
    /// One line shown for it in the Temporal UI.
    pub fn summary(mut self, s: &str) -> Self {
        self.0.summary = Some(s.into());
        self
    }
    /// Priority (1 is highest) and fairness key of its task.
    pub fn priority(mut self, priority_key: Option<u32>, fairness_key: Option<&str>) -> Self {
        self.0.priority = Some(Priority { priority_key, fairness_key: fairness_key.map(str::to_owned), fairness_weight: None });
        self
    }
    /// Schedules it; never blocks.
    pub fn start(self) -> Handle {
        Handle(context::start_activity(&self.0))
    }
    /// Schedules it and waits for its result.
    pub fn call<T: DeserializeOwned>(self) -> Result<T, StepError> {
        self.start().join()
    }
}

/// Arguments given together: a tuple of serializable values (`()`,
/// `(a,)`, `(a, b)`, … up to six), each one JSON document.
pub trait IntoArgs {
    /// The arguments as JSON documents.
    fn into_args(self) -> Vec<String>;
}

impl IntoArgs for () {
    fn into_args(self) -> Vec<String> {
        vec![]
    }
}

macro_rules! tuple_args {
    ($($name:ident),+) => {
        impl<$($name: Serialize),+> IntoArgs for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_args(self) -> Vec<String> {
                let ($($name,)+) = self;
                vec![$(to_json(&$name)),+]
            }
        }
    };
}
tuple_args!(A);
tuple_args!(A, B);
tuple_args!(A, B, C);
tuple_args!(A, B, C, D);
tuple_args!(A, B, C, D, E);
tuple_args!(A, B, C, D, E, F);

/// Compensations for a saga: register an undo step after each step that
/// succeeded; on failure, [`Saga::compensate`] runs them newest first.
///
/// ```ignore
/// let mut saga = wf::Saga::new();
/// let reservation: Reservation = wf::activity("reserve-inventory").arg(&order).call()?;
/// saga.add(wf::activity("release-inventory").arg(&reservation));
/// if let Err(e) = wf::activity("charge-payment").arg(&order).call::<Receipt>() {
///     saga.compensate();
///     return Err(e.into());
/// }
/// ```
#[derive(Debug, Default)]
pub struct Saga {
    steps: Vec<ActivityBuilder>,
}

impl Saga {
    /// No compensations yet.
    pub fn new() -> Self {
        Saga::default()
    }

    /// Registers the undo of a step that succeeded.
    pub fn add(&mut self, compensation: ActivityBuilder) {
        self.steps.push(compensation);
    }

    /// The registered compensations' activity types, oldest first.
    pub fn pending(&self) -> Vec<String> {
        self.steps.iter().map(|s| s.0.activity_type.clone()).collect()
    }

    /// Runs the compensations newest first, one after the other, each to
    /// completion (with its own retry policy). Returns `(activity type,
    /// outcome)` per compensation in the order they ran; a failed
    /// compensation does not stop the others.
    pub fn compensate(&mut self) -> Vec<(String, Result<String, StepError>)> {
        let mut ran = Vec::new();
        while let Some(step) = self.steps.pop() {
            let name = step.0.activity_type.clone();
            ran.push((name, step.start().join_json()));
        }
        ran
    }
}

/// Builds a child workflow: `child("process-item").arg(&x).call()`.
pub fn child(workflow_type: &str) -> ChildBuilder {
    ChildBuilder(ChildWorkflowOptions {
        workflow_type: workflow_type.into(),
        args: vec![],
        workflow_id: None,
        task_queue: None,
        execution_timeout_ms: None,
        run_timeout_ms: None,
        retry_policy: None,
        parent_close_policy: ParentClosePolicy::Terminate,
        cancellation_type: CancellationType::WaitCancellationCompleted,
        memo: vec![],
        search_attributes: vec![],
        static_summary: None,
        static_details: None,
        priority: None,
    })
}

/// See [`child`].
#[derive(Debug, Clone)]
pub struct ChildBuilder(ChildWorkflowOptions);

impl ChildBuilder {
    /// Adds an argument.
    pub fn arg<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        self.0.args.push(to_json(value));
        self
    }
    /// Adds several arguments at once (a tuple).
    pub fn args<A: IntoArgs>(mut self, values: A) -> Self {
        self.0.args.extend(values.into_args());
        self
    }
    /// Limit for the whole child execution.
    pub fn execution_timeout(mut self, d: Duration) -> Self {
        self.0.execution_timeout_ms = Some(ms(d));
        self
    }
    /// What happens to the child when this workflow closes.
    pub fn parent_close_policy(mut self, p: ParentClosePolicy) -> Self {
        self.0.parent_close_policy = p;
        self
    }
    /// Sets the child's workflow id.
    pub fn id(mut self, id: &str) -> Self {
        self.0.workflow_id = Some(id.into());
        self
    }
    /// Runs the child on another task queue.
    pub fn task_queue(mut self, q: &str) -> Self {
        self.0.task_queue = Some(q.into());
        self
    }
    /// A memo field the child starts with.
    pub fn memo<T: Serialize + ?Sized>(mut self, name: &str, value: &T) -> Self {
        self.0.memo.push(MemoField { name: name.into(), value: Some(to_json(value)) });
        self
    }
    /// A search attribute the child starts with (see [`keyword`] and friends).
    pub fn search_attribute(mut self, attribute: SearchAttribute) -> Self {
        self.0.search_attributes.push(attribute);
        self
    }
    /// The child's summary in the Temporal UI.
    pub fn summary(mut self, s: &str) -> Self {
        self.0.static_summary = Some(s.into());
        self
    }
    /// Priority (1 is highest) and fairness key of the child's tasks.
    pub fn priority(mut self, priority_key: Option<u32>, fairness_key: Option<&str>) -> Self {
        self.0.priority = Some(Priority { priority_key, fairness_key: fairness_key.map(str::to_owned), fairness_weight: None });
        self
    }
    /// What cancelling it does.
    pub fn cancellation(mut self, c: CancellationType) -> Self {
        self.0.cancellation_type = c;
        self
    }
    /// Starts it; never blocks.
    pub fn start(self) -> Handle {
        Handle(context::start_child_workflow(&self.0))
    }
    /// Starts it and waits for its result.
    pub fn call<T: DeserializeOwned>(self) -> Result<T, StepError> {
        self.start().join()
    }
}

/// A durable timer.
pub fn timer(d: Duration) -> Handle {
    Handle(context::start_timer(ms(d), None))
}

/// A durable timer with a summary shown in the Temporal UI.
pub fn timer_with_summary(d: Duration, summary: &str) -> Handle {
    Handle(context::start_timer(ms(d), Some(summary)))
}

/// Builds a local activity: `local_activity("validate").arg(&x).call()`.
/// It runs in this worker, on the same activity plugins and grants, and
/// is recorded in history as a marker; use it for short work.
pub fn local_activity(activity_type: &str) -> LocalActivityBuilder {
    LocalActivityBuilder(LocalActivityOptions {
        activity_type: activity_type.into(),
        args: vec![],
        activity_id: None,
        start_to_close_timeout_ms: Some(10_000),
        schedule_to_close_timeout_ms: None,
        schedule_to_start_timeout_ms: None,
        retry_policy: None,
        local_retry_threshold_ms: None,
        cancellation_type: CancellationType::TryCancel,
        summary: None,
    })
}

/// See [`local_activity`].
#[derive(Debug, Clone)]
pub struct LocalActivityBuilder(LocalActivityOptions);

impl LocalActivityBuilder {
    /// Adds an argument (serialized to JSON).
    pub fn arg<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        self.0.args.push(to_json(value));
        self
    }
    /// Adds several arguments at once (a tuple).
    pub fn args<A: IntoArgs>(mut self, values: A) -> Self {
        self.0.args.extend(values.into_args());
        self
    }
    /// Limit for one attempt (default 10 s).
    pub fn start_to_close(mut self, d: Duration) -> Self {
        self.0.start_to_close_timeout_ms = Some(ms(d));
        self
    }
    /// Limit for all attempts and backoffs together.
    pub fn schedule_to_close(mut self, d: Duration) -> Self {
        self.0.schedule_to_close_timeout_ms = Some(ms(d));
        self
    }
    /// Retry policy.
    pub fn retry(mut self, p: RetryPolicy) -> Self {
        self.0.retry_policy = Some(p.0);
        self
    }
    /// Backoffs longer than this become a durable timer (default 60 s).
    pub fn local_retry_threshold(mut self, d: Duration) -> Self {
        self.0.local_retry_threshold_ms = Some(ms(d));
        self
    }
    /// One line shown for it in the Temporal UI.
    pub fn summary(mut self, s: &str) -> Self {
        self.0.summary = Some(s.into());
        self
    }
    /// Schedules it; never blocks.
    pub fn start(self) -> Handle {
        Handle(context::start_local_activity(&self.0))
    }
    /// Schedules it and waits for its result.
    pub fn call<T: DeserializeOwned>(self) -> Result<T, StepError> {
        self.start().join()
    }
}

/// Sleeps durably (survives worker restarts).
pub fn sleep(d: Duration) -> Result<(), StepError> {
    timer(d).join_json().map(drop)
}

type QueryHandler = Box<dyn Fn(&[String]) -> Result<String, String>>;
type UpdateValidator = Rc<dyn Fn(&[String]) -> Result<(), ApplicationError>>;
type UpdateHandler = Rc<dyn Fn(&[String]) -> Result<String, ApplicationError>>;

#[derive(Default)]
struct Inbox {
    signals: BTreeMap<String, VecDeque<Vec<String>>>,
    queries: BTreeMap<String, QueryHandler>,
    updates: BTreeMap<String, (UpdateValidator, UpdateHandler)>,
    cancel_requested: bool,
    /// A cancellation request not yet acted on by a wait.
    cancel_unhandled: bool,
    /// Depth of [`shielded`] scopes: inside, waits do not cancel.
    shield: u32,
    /// Handles cancelled because the workflow was asked to cancel: however
    /// they end (a timeout racing the cancellation, say), the wait reports
    /// them as cancelled, so the cancellation reaches the workflow code.
    cancelled_by_request: std::collections::BTreeSet<u32>,
}

thread_local! {
    static INBOX: RefCell<Inbox> = RefCell::new(Inbox::default());
}

/// Registers a query handler, answered from every wait and after the
/// workflow returned (through [`handle_query`]).
pub fn on_query<T: Serialize>(name: &str, handler: impl Fn(&[String]) -> T + 'static) {
    INBOX.with(|i| {
        i.borrow_mut()
            .queries
            .insert(name.to_owned(), Box::new(move |args| serde_json::to_string(&handler(args)).map_err(|e| e.to_string())));
    });
}

/// Answers a query with the registered handlers. A plugin that exports
/// `caisson:workflow/queries` forwards its `handle` here.
pub fn handle_query(name: &str, args: &[String]) -> Result<String, String> {
    INBOX.with(|i| match i.borrow().queries.get(name) {
        Some(h) => h(args),
        None => Err(format!("unknown query `{name}`")),
    })
}

/// Registers an update handler: `on_update("approve", |who: String| ...)`.
/// The handler gets the update's first argument, decoded as `A` (an
/// update whose argument does not decode is rejected, naming the field),
/// may start work and wait, and its result goes back to the caller.
pub fn on_update<A, R>(name: &str, handler: impl Fn(A) -> Result<R, ApplicationError> + 'static)
where
    A: DeserializeOwned + 'static,
    R: Serialize,
{
    on_update_validated(name, |_: &A| Ok(()), handler);
}

/// [`on_update`] with a validator, run before the update is accepted
/// (never on replay). A validator's error rejects the update: the caller
/// gets it, and history keeps no trace of the update.
pub fn on_update_validated<A, R>(
    name: &str,
    validator: impl Fn(&A) -> Result<(), ApplicationError> + 'static,
    handler: impl Fn(A) -> Result<R, ApplicationError> + 'static,
) where
    A: DeserializeOwned + 'static,
    R: Serialize,
{
    report_panics();
    let update = name.to_owned();
    let decode = move |args: &[String]| -> Result<A, ApplicationError> {
        let first = args.first().map(String::as_str).unwrap_or("null");
        serde_json::from_str(first).map_err(|e| fatal("InvalidArgument", format!("update `{update}`: {e} in {first}")))
    };
    let decode = Rc::new(decode);
    let for_validator = decode.clone();
    let validate: UpdateValidator = Rc::new(move |args| validator(&for_validator(args)?));
    let handle: UpdateHandler = Rc::new(move |args| {
        let result = handler(decode(args)?)?;
        serde_json::to_string(&result).map_err(|e| fatal("EncodeError", e.to_string()))
    });
    INBOX.with(|i| i.borrow_mut().updates.insert(name.to_owned(), (validate, handle)));
}

fn handle_update(update: bindings::caisson::workflow::types::Update) {
    let registered = INBOX.with(|i| i.borrow().updates.get(&update.name).cloned());
    let Some((validate, handle)) = registered else {
        let known = INBOX.with(|i| i.borrow().updates.keys().cloned().collect::<Vec<_>>().join(", "));
        let error = fatal("UpdateNotHandled", format!("this workflow has no handler for update `{}` (it handles: {known})", update.name));
        context::reject_update(&update.id, &error);
        return;
    };
    if update.run_validator {
        if let Err(error) = validate(&update.args) {
            context::reject_update(&update.id, &error);
            return;
        }
    }
    context::accept_update(&update.id);
    let result = handle(&update.args);
    context::complete_update(&update.id, result.as_ref().map(String::as_str).map_err(|e| e));
}

/// Runs `work` so that a cancellation request does not cancel it: the
/// waits inside go on (use it for compensations and cleanup after the
/// workflow was cancelled, like the SDKs' shielded scopes).
pub fn shielded<T>(work: impl FnOnce() -> T) -> T {
    INBOX.with(|i| i.borrow_mut().shield += 1);
    let result = work();
    INBOX.with(|i| i.borrow_mut().shield -= 1);
    result
}

/// Sets or replaces search attributes (see [`keyword`], [`int`], ...),
/// queryable with `temporal workflow list --query` once this workflow
/// task completes.
pub fn upsert_search_attributes(attributes: &[SearchAttribute]) {
    context::upsert_search_attributes(attributes);
}

/// Sets a memo field (any JSON).
pub fn upsert_memo<T: Serialize + ?Sized>(name: &str, value: &T) {
    context::upsert_memo(&[MemoField { name: name.into(), value: Some(to_json(value)) }]);
}

/// Removes a memo field.
pub fn remove_memo(name: &str) {
    context::upsert_memo(&[MemoField { name: name.into(), value: None }]);
}

/// A memo field of this run (as started, and upserted since), decoded.
pub fn memo<T: DeserializeOwned>(name: &str) -> Option<T> {
    info().memo.into_iter().find(|m| m.name == name).and_then(|m| m.value).and_then(|json| serde_json::from_str(&json).ok())
}

/// A search attribute of this run (as started, and upserted since).
pub fn search_attribute(name: &str) -> Option<SearchAttributeValue> {
    info().search_attributes.into_iter().find(|a| a.name == name).and_then(|a| a.value)
}

/// A `Keyword` search attribute.
pub fn keyword(name: &str, value: &str) -> SearchAttribute {
    SearchAttribute { name: name.into(), value: Some(SearchAttributeValue::Keyword(value.into())) }
}

/// A `Text` search attribute.
pub fn text(name: &str, value: &str) -> SearchAttribute {
    SearchAttribute { name: name.into(), value: Some(SearchAttributeValue::Text(value.into())) }
}

/// An `Int` search attribute.
pub fn int(name: &str, value: i64) -> SearchAttribute {
    SearchAttribute { name: name.into(), value: Some(SearchAttributeValue::Int(value)) }
}

/// A `Double` search attribute.
pub fn double(name: &str, value: f64) -> SearchAttribute {
    SearchAttribute { name: name.into(), value: Some(SearchAttributeValue::Double(value)) }
}

/// A `Bool` search attribute.
pub fn boolean(name: &str, value: bool) -> SearchAttribute {
    SearchAttribute { name: name.into(), value: Some(SearchAttributeValue::Bool(value)) }
}

/// A `Datetime` search attribute (RFC 3339, e.g. `2026-11-27T10:00:00Z`).
pub fn datetime(name: &str, rfc3339: &str) -> SearchAttribute {
    SearchAttribute { name: name.into(), value: Some(SearchAttributeValue::Datetime(rfc3339.into())) }
}

/// A `KeywordList` search attribute.
pub fn keyword_list(name: &str, values: &[&str]) -> SearchAttribute {
    SearchAttribute {
        name: name.into(),
        value: Some(SearchAttributeValue::KeywordList(values.iter().map(|v| v.to_string()).collect())),
    }
}

/// Unsets a search attribute (in an upsert).
pub fn unset(name: &str) -> SearchAttribute {
    SearchAttribute { name: name.into(), value: None }
}

/// The workflow's current details (markdown), shown in the Temporal UI.
pub fn set_current_details(details: &str) {
    context::set_current_details(details);
}

/// Takes the oldest buffered signal named `name` (its JSON arguments).
pub fn take_signal(name: &str) -> Option<Vec<String>> {
    INBOX.with(|i| i.borrow_mut().signals.get_mut(name).and_then(VecDeque::pop_front))
}

/// Takes the oldest signal named `name` whose first argument decodes as
/// `T`. A signal that does not (any client can send any payload) is
/// dropped with a warning naming it and the decoding error, so one bad
/// signal never hides the good ones behind it.
pub fn take_signal_as<T: DeserializeOwned>(name: &str) -> Option<T> {
    loop {
        let args = take_signal(name)?;
        let first = args.first().map(String::as_str).unwrap_or("null");
        match serde_json::from_str(first) {
            Ok(value) => return Some(value),
            Err(e) => context::log(LogLevel::Warn, &format!("dropping signal `{name}`: its argument {first} does not decode: {e}")),
        }
    }
}

/// A typed view of the signals named `name`: `signal::<Decision>("decide")`.
/// Signals are buffered from the first wait on, in arrival order, whether
/// or not a channel exists yet.
pub fn signal<T: DeserializeOwned>(name: &str) -> SignalChannel<T> {
    SignalChannel { name: name.to_owned(), _type: std::marker::PhantomData }
}

/// See [`signal`].
#[derive(Debug, Clone)]
pub struct SignalChannel<T> {
    name: String,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> SignalChannel<T> {
    /// The oldest buffered signal's first argument, if one arrived. A
    /// signal whose argument does not decode as `T` is dropped with a
    /// warning (see [`take_signal_as`]).
    pub fn try_recv(&self) -> Option<T> {
        take_signal_as(&self.name)
    }

    /// Waits for the next signal (answering queries meanwhile). A
    /// cancellation request meanwhile ends the run as cancelled; use
    /// [`SignalChannel::recv_cancellable`] to handle it instead.
    pub fn recv(&self) -> T {
        match self.recv_cancellable() {
            Ok(value) => value,
            Err(_) => end_cancelled(),
        }
    }

    /// Waits for the next signal, or a cancellation request.
    pub fn recv_cancellable(&self) -> Result<T, StepError> {
        let mut got = None;
        wait_condition_cancellable(
            || {
                got = got.take().or_else(|| self.try_recv());
                got.is_some()
            },
            None,
        )?;
        Ok(got.expect("wait_condition returns once a signal arrived"))
    }

    /// Waits for the next signal for at most `timeout` (a durable timer).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<T> {
        let mut got = None;
        wait_condition(|| {
            got = got.take().or_else(|| self.try_recv());
            got.is_some()
        }, Some(timeout));
        got
    }
}

/// A random number from the run's seeded generator (same on replay).
pub fn random_u64() -> u64 {
    context::random_u64()
}

/// True once cancellation of this workflow was requested.
pub fn cancel_requested() -> bool {
    INBOX.with(|i| i.borrow().cancel_requested) || context::is_cancel_requested()
}

/// Waits once: answers queries, buffers signals; returns a resolution of
/// one of `handles`, or `None` when a signal or cancellation arrived.
fn wait_once(handles: &[u32]) -> Option<(u32, Outcome)> {
    report_panics();
    match context::wait(handles) {
        Event::Resolved(r) => Some((r.handle, r.outcome)),
        Event::Signal(s) => {
            INBOX.with(|i| i.borrow_mut().signals.entry(s.name).or_default().push_back(s.args));
            None
        }
        Event::Query(q) => {
            let answer = handle_query(&q.name, &q.args);
            context::respond_query(&q.id, answer.as_ref().map(String::as_str).map_err(String::as_str));
            None
        }
        Event::Update(u) => {
            handle_update(u);
            None
        }
        Event::CancelRequested => {
            INBOX.with(|i| {
                let mut inbox = i.borrow_mut();
                inbox.cancel_requested = true;
                inbox.cancel_unhandled = true;
            });
            None
        }
    }
}

/// Called by every wait before and after waiting: once per cancellation
/// request, outside [`shielded`], cancels what the wait is waiting on (by
/// each handle's cancellation type). Their resolutions then arrive as
/// cancelled failures.
fn cancel_if_requested(handles: &[u32]) {
    let act = INBOX.with(|i| {
        let mut inbox = i.borrow_mut();
        let act = inbox.cancel_unhandled && inbox.shield == 0 && !handles.is_empty();
        if act {
            inbox.cancel_unhandled = false;
        }
        act
    });
    if act {
        for &h in handles {
            context::cancel(h);
        }
        INBOX.with(|i| i.borrow_mut().cancelled_by_request.extend(handles.iter().copied()));
    }
}

/// A handle's outcome as the workflow sees it (see `cancelled_by_request`).
fn seen(handle: u32, o: Outcome) -> Outcome {
    match o {
        Outcome::Failed(Failure::Application(e)) if INBOX.with(|i| i.borrow().cancelled_by_request.contains(&handle)) => {
            Outcome::Failed(Failure::Cancelled(format!("cancelled with the workflow ({})", e.message)))
        }
        Outcome::Failed(Failure::Timeout(kind) | Failure::Other(kind)) if INBOX.with(|i| i.borrow().cancelled_by_request.contains(&handle)) => {
            Outcome::Failed(Failure::Cancelled(format!("cancelled with the workflow ({kind})")))
        }
        other => other,
    }
}

fn outcome(o: Outcome) -> Result<String, StepError> {
    match o {
        Outcome::Completed(json) => Ok(json),
        Outcome::Failed(f) => Err(StepError::Failed(f)),
    }
}

/// Waits for the first of `handles`; its index and result.
pub fn wait_any(handles: &[Handle]) -> (usize, Result<String, StepError>) {
    let raw: Vec<u32> = handles.iter().map(|h| h.0).collect();
    loop {
        cancel_if_requested(&raw);
        if let Some((h, o)) = wait_once(&raw) {
            let index = raw.iter().position(|x| *x == h).expect("wait returns an awaited handle");
            return (index, outcome(seen(h, o)));
        }
    }
}

/// Waits for all of `handles`; results in the same order.
pub fn wait_all(handles: &[Handle]) -> Vec<Result<String, StepError>> {
    let mut results: Vec<Option<Result<String, StepError>>> = vec![None; handles.len()];
    let mut pending: Vec<u32> = handles.iter().map(|h| h.0).collect();
    while !pending.is_empty() {
        cancel_if_requested(&pending);
        if let Some((h, o)) = wait_once(&pending) {
            pending.retain(|x| *x != h);
            for (i, handle) in handles.iter().enumerate() {
                if handle.0 == h {
                    results[i] = Some(outcome(seen(h, o.clone())));
                }
            }
        }
    }
    results.into_iter().map(|r| r.expect("every handle resolved")).collect()
}

/// Waits until `condition` holds (re-checked after every signal, query,
/// update and resolution), or `timeout` passes. True when the condition
/// held. A cancellation request (outside [`shielded`]) ends the wait
/// with false; check [`cancel_requested`], or use
/// [`wait_condition_cancellable`].
pub fn wait_condition(condition: impl FnMut() -> bool, timeout: Option<Duration>) -> bool {
    wait_condition_cancellable(condition, timeout).unwrap_or(false)
}

/// [`wait_condition`] that reports a cancellation request as
/// `Err(StepError::Failed(Failure::Cancelled))`, which `?` turns into
/// the end of a cancelled run.
pub fn wait_condition_cancellable(mut condition: impl FnMut() -> bool, timeout: Option<Duration>) -> Result<bool, StepError> {
    let timer = timeout.map(timer);
    loop {
        if condition() {
            if let Some(t) = timer {
                t.cancel();
            }
            return Ok(true);
        }
        let cancelled = INBOX.with(|i| {
            let mut inbox = i.borrow_mut();
            let cancelled = inbox.cancel_unhandled && inbox.shield == 0;
            if cancelled {
                inbox.cancel_unhandled = false;
            }
            cancelled
        });
        if cancelled {
            if let Some(t) = timer {
                t.cancel();
            }
            return Err(StepError::Failed(Failure::Cancelled("the workflow was asked to cancel".into())));
        }
        let handles: Vec<u32> = timer.iter().map(|t| t.0).collect();
        if let Some((h, _)) = wait_once(&handles) {
            if Some(Handle(h)) == timer {
                return Ok(condition());
            }
        }
    }
}

/// Versioning: true for new code, false when replaying an older history.
pub fn patched(id: &str) -> bool {
    context::patched(id)
}

/// Workflow time, ms since the Unix epoch.
pub fn now_ms() -> u64 {
    context::now_ms()
}

/// Facts about this run.
pub fn info() -> WorkflowInfo {
    context::info()
}

/// Logs at info level (silent while replaying).
pub fn log(message: &str) {
    context::log(LogLevel::Info, message);
}

/// Logs a warning (silent while replaying).
pub fn warn(message: &str) {
    context::log(LogLevel::Warn, message);
}

/// Ends this run and continues as a new one with `args`. Never returns.
pub fn continue_as_new<T: Serialize + ?Sized>(args: &T) -> ! {
    context::continue_as_new(&ContinueAsNewOptions {
        workflow_type: None,
        args: vec![to_json(args)],
        task_queue: None,
        memo: vec![],
        search_attributes: vec![],
    });
    unreachable!("continue-as-new does not return")
}
