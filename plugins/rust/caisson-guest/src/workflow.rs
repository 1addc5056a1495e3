//! Helpers for workflow plugins: builders for activities, timers and
//! children; `wait_all` / `wait_any`; signal channels; query handlers
//! registered once and answered from any wait; `wait_condition`.
//!
//! Every wait in this module answers queries with the registered handlers
//! and buffers signals, so workflow code only sees what it asked for.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
pub use std::time::Duration;

/// Bindings of `caisson:workflow/imports` and the optional queries export.
pub mod bindings {
    wit_bindgen::generate!({
        inline: "package caisson-guest:workflow;
            world guest {
                include caisson:workflow/imports@0.1.0;
                use caisson:workflow/types@0.1.0.{application-error};
            }",
        path: "wit/workflow",
        world: "caisson-guest:workflow/guest",
        generate_all,
        generate_unused_types: true,
    });
}

pub use bindings::caisson::workflow::context;
pub use bindings::caisson::workflow::types::{
    ActivityOptions, ApplicationError, CancellationType, ChildWorkflowOptions, ContinueAsNewOptions, Event, Failure, LogLevel,
    Outcome, ParentClosePolicy, WorkflowInfo,
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

impl From<StepError> for ApplicationError {
    fn from(e: StepError) -> Self {
        e.into_application_error()
    }
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
    Handle(context::start_timer(ms(d)))
}

/// Sleeps durably (survives worker restarts).
pub fn sleep(d: Duration) -> Result<(), StepError> {
    timer(d).join_json().map(drop)
}

type QueryHandler = Box<dyn Fn(&[String]) -> Result<String, String>>;

#[derive(Default)]
struct Inbox {
    signals: BTreeMap<String, VecDeque<Vec<String>>>,
    queries: BTreeMap<String, QueryHandler>,
    cancel_requested: bool,
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

/// Takes the oldest buffered signal named `name` (its JSON arguments).
pub fn take_signal(name: &str) -> Option<Vec<String>> {
    INBOX.with(|i| i.borrow_mut().signals.get_mut(name).and_then(VecDeque::pop_front))
}

/// Takes the oldest signal named `name` and deserializes its first argument.
pub fn take_signal_as<T: DeserializeOwned>(name: &str) -> Option<T> {
    take_signal(name).map(|args| args.first().and_then(|a| serde_json::from_str(a).ok())).and_then(|v| v)
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
    /// signal whose argument does not decode as `T` is dropped (and logged).
    pub fn try_recv(&self) -> Option<T> {
        loop {
            let args = take_signal(&self.name)?;
            let first = args.first().map(String::as_str).unwrap_or("null");
            match serde_json::from_str(first) {
                Ok(value) => return Some(value),
                Err(e) => context::log(LogLevel::Warn, &format!("dropping signal `{}`: {e} in {first}", self.name)),
            }
        }
    }

    /// Waits for the next signal (answering queries meanwhile).
    pub fn recv(&self) -> T {
        let mut got = None;
        wait_condition(|| {
            got = got.take().or_else(|| self.try_recv());
            got.is_some()
        }, None);
        got.expect("wait_condition returns once a signal arrived")
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
        Event::CancelRequested => {
            INBOX.with(|i| i.borrow_mut().cancel_requested = true);
            None
        }
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
        if let Some((h, o)) = wait_once(&raw) {
            let index = raw.iter().position(|x| *x == h).expect("wait returns an awaited handle");
            return (index, outcome(o));
        }
    }
}

/// Waits for all of `handles`; results in the same order.
pub fn wait_all(handles: &[Handle]) -> Vec<Result<String, StepError>> {
    let mut results: Vec<Option<Result<String, StepError>>> = vec![None; handles.len()];
    let mut pending: Vec<u32> = handles.iter().map(|h| h.0).collect();
    while !pending.is_empty() {
        if let Some((h, o)) = wait_once(&pending) {
            pending.retain(|x| *x != h);
            for (i, handle) in handles.iter().enumerate() {
                if handle.0 == h {
                    results[i] = Some(outcome(o.clone()));
                }
            }
        }
    }
    results.into_iter().map(|r| r.expect("every handle resolved")).collect()
}

/// Waits until `condition` holds (re-checked after every signal, query
/// and resolution), or `timeout` passes. True when the condition held.
pub fn wait_condition(mut condition: impl FnMut() -> bool, timeout: Option<Duration>) -> bool {
    let timer = timeout.map(timer);
    loop {
        if condition() {
            if let Some(t) = timer {
                t.cancel();
            }
            return true;
        }
        let handles: Vec<u32> = timer.iter().map(|t| t.0).collect();
        if let Some((h, _)) = wait_once(&handles) {
            if Some(Handle(h)) == timer {
                return condition();
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
    context::continue_as_new(&ContinueAsNewOptions { workflow_type: None, args: vec![to_json(args)], task_queue: None });
    unreachable!("continue-as-new does not return")
}
