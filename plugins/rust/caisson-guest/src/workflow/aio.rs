//! Async workflows: activities, local activities, timers, children,
//! signals and conditions as futures, on a small single-threaded
//! executor that lives inside the guest.
//!
//! ```ignore
//! use caisson_guest::workflow::{self as wf, aio, Duration};
//!
//! fn order(id: String) -> Result<String, wf::ApplicationError> {
//!     aio::run(async move {
//!         // A second workflow task beside this one: it serves `note` signals.
//!         let notes = aio::spawn(async {
//!             let mut notes = Vec::new();
//!             while let Ok(note) = wf::signal::<String>("note").next().await {
//!                 notes.push(note);
//!             }
//!             notes
//!         });
//!         let (charged, shipped) = aio::join2(
//!             wf::activity("charge").arg(&id).execute::<String>(),
//!             wf::activity("ship").arg(&id).execute::<String>(),
//!         ).await;
//!         // A race: the loser is dropped, and dropping a step cancels it.
//!         match aio::select2(wf::activity("confirm").execute::<String>(), aio::sleep(Duration::from_secs(30))).await {
//!             aio::Either::Left(confirmed) => { confirmed?; }
//!             aio::Either::Right(_) => wf::warn("not confirmed within 30 s"),
//!         }
//!         Ok(format!("{} {}", charged?, shipped?))
//!     })
//! }
//! ```
//!
//! # How it runs
//!
//! The host has one blocking call, `wait`. [`run`] polls every task
//! (the workflow function's future, the tasks it [`spawn`]s, update and
//! signal handlers) until all of them are pending, re-checks the pending
//! [`condition`]s while that changes anything, then calls `wait` once
//! with every handle some task awaits. The event it returns wakes the
//! tasks it concerns: a resolution wakes the tasks awaiting that handle;
//! a signal, update or cancellation request wakes handlers and
//! conditions; a query is answered at once by the [`super::on_query`]
//! handlers. The order in which tasks run depends on history only, so
//! replay issues the same commands. This is how the Temporal Python SDK
//! drives `asyncio` tasks and how the TypeScript SDK resolves promises.
//!
//! Starting work never blocks: `execute()` schedules the activity (or
//! timer, or child) when it is called, and the returned [`Step`] resolves
//! with its result. **Dropping a step that has not finished cancels it**
//! (by its cancellation type), as dropping a future cancels it in Rust:
//! the losers of [`select2`] and [`first_of`] are cancelled that way, and
//! so is a step still unawaited when the function that holds it returns.
//! [`Step::detach`] gives a step up without cancelling it (fire and
//! forget).
//!
//! # Cancellation
//!
//! When the workflow is asked to cancel, the workflow function's task and
//! every task it spawned see it once, at the futures they are awaiting
//! (or the next ones they await): an activity, timer or child is
//! cancelled by its cancellation type and its step resolves with
//! `Err(StepError::Failed(Failure::Cancelled(..)))`; a condition or
//! signal wait resolves with that error at once. Let it propagate with
//! `?` and the run ends CANCELED (the conversion to `ApplicationError`
//! calls [`super::end_cancelled`]); or catch it and compensate inside
//! [`shielded`], where nothing is cancelled. Update and signal handlers
//! are not cancelled (as in the SDKs, they are not part of the
//! workflow's main work).
//!
//! Inside [`run`], use these futures, not the blocking calls (`call()`,
//! `wait_all`, `sleep`...): a blocking call stops every task until it
//! returns.

use super::{
    ActivityBuilder, ApplicationError, ChildBuilder, Event, Failure, Handle, INBOX, LocalActivityBuilder, LogLevel, Outcome, SignalChannel,
    StepError, context, decode, fatal, handle_query, ms, to_json,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::time::Duration;

type TaskId = usize;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// One workflow task: a future polled by the executor.
struct Task {
    future: Option<BoxFuture<()>>,
    /// The workflow function's task and tasks it spawned: a cancellation
    /// request reaches them. Handlers are not cancellable.
    cancellable: bool,
    /// A cancellation request this task has not seen yet.
    cancel_pending: bool,
    done: bool,
}

type AsyncUpdateStart = Rc<dyn Fn(&[String]) -> Result<BoxFuture<Result<String, ApplicationError>>, ApplicationError>>;
type AsyncUpdateValidator = Rc<dyn Fn(&[String]) -> Result<(), ApplicationError>>;
type AsyncSignalStart = Rc<dyn Fn(&[String]) -> Result<BoxFuture<()>, String>>;

#[derive(Default)]
struct Executor {
    running: bool,
    /// Indexed by task id; ids are never reused within a run.
    tasks: Vec<Task>,
    /// Outcomes returned by `wait`, by handle.
    resolved: BTreeMap<u32, Outcome>,
    /// Tasks awaiting each unresolved handle.
    handle_waiters: BTreeMap<u32, Vec<Waker>>,
    /// Tasks awaiting a condition: re-polled after anything happened.
    condition_waiters: Vec<Waker>,
    updates: BTreeMap<String, (AsyncUpdateValidator, AsyncUpdateStart)>,
    signals: BTreeMap<String, AsyncSignalStart>,
    /// Set while the run ends: dropping unfinished steps then cancels
    /// nothing (the workflow has completed).
    shutting_down: bool,
}

thread_local! {
    static EXEC: RefCell<Executor> = RefCell::new(Executor::default());
    static READY: RefCell<VecDeque<TaskId>> = const { RefCell::new(VecDeque::new()) };
    /// Something was woken or spawned since the flag was last cleared.
    static WOKEN: Cell<bool> = const { Cell::new(false) };
    /// A condition became true since the flag was last cleared.
    static CONDITION_MET: Cell<bool> = const { Cell::new(false) };
    /// The task being polled has a cancellation to see.
    static CANCEL_NOW: Cell<bool> = const { Cell::new(false) };
    /// A future of the task being polled acted on its cancellation.
    static CANCEL_SEEN: Cell<bool> = const { Cell::new(false) };
    /// A step cancelled with the workflow completed anyway: the task
    /// keeps its cancellation for its next await.
    static CANCEL_REARM: Cell<bool> = const { Cell::new(false) };
    /// Depth of [`shielded`] futures being polled.
    static SHIELD: Cell<u32> = const { Cell::new(0) };
}

// The waker of task `id` carries the id as its data pointer and pushes it
// onto the ready queue. The guest has one thread (wasm32 without
// threads), so the thread-local queue is the only one.
fn waker_of(id: TaskId) -> Waker {
    fn clone(data: *const ()) -> RawWaker {
        RawWaker::new(data, &VTABLE)
    }
    fn wake(data: *const ()) {
        READY.with(|r| r.borrow_mut().push_back(data as usize));
        WOKEN.set(true);
    }
    fn drop(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);
    // SAFETY: the data is a plain integer, never dereferenced; the vtable
    // functions only touch this thread's ready queue.
    unsafe { Waker::from_raw(RawWaker::new(id as *const (), &VTABLE)) }
}

fn register(waiters: &mut Vec<Waker>, waker: &Waker) {
    if !waiters.iter().any(|w| w.will_wake(waker)) {
        waiters.push(waker.clone());
    }
}

/// True when the task being polled must see its cancellation now (outside
/// [`shielded`]); the caller acts on it.
fn take_cancellation() -> bool {
    if CANCEL_NOW.get() && SHIELD.get() == 0 {
        CANCEL_SEEN.set(true);
        true
    } else {
        false
    }
}

fn cancelled_error(why: &str) -> StepError {
    StepError::Failed(Failure::Cancelled(why.into()))
}

fn spawn_task(future: BoxFuture<()>, cancellable: bool) -> TaskId {
    let id = EXEC.with(|e| {
        let mut e = e.borrow_mut();
        assert!(e.running, "caisson_guest::workflow::aio: spawn and handlers need a running aio::run (call it in the workflow function)");
        e.tasks.push(Task { future: Some(future), cancellable, cancel_pending: false, done: false });
        e.tasks.len() - 1
    });
    READY.with(|r| r.borrow_mut().push_back(id));
    WOKEN.set(true);
    id
}

/// Polls task `id` once. False when it was already finished (a stale wake).
fn poll_task(id: TaskId) -> bool {
    let taken = EXEC.with(|e| {
        let mut e = e.borrow_mut();
        let task = &mut e.tasks[id];
        if task.done { None } else { task.future.take().map(|f| (f, task.cancel_pending)) }
    });
    let Some((mut future, cancel)) = taken else { return false };
    CANCEL_NOW.set(cancel);
    CANCEL_SEEN.set(false);
    CANCEL_REARM.set(false);
    SHIELD.set(0);
    let waker = waker_of(id);
    let poll = future.as_mut().poll(&mut Context::from_waker(&waker));
    CANCEL_NOW.set(false);
    let finished = EXEC.with(|e| {
        let mut e = e.borrow_mut();
        let task = &mut e.tasks[id];
        if CANCEL_SEEN.get() {
            task.cancel_pending = false;
        }
        if CANCEL_REARM.get() {
            task.cancel_pending = true;
        }
        match poll {
            Poll::Ready(()) => {
                task.done = true;
                Some(future)
            }
            Poll::Pending => {
                task.future = Some(future);
                None
            }
        }
    });
    // A finished future is dropped here, outside the executor's borrow
    // (dropping the steps left inside it cancels them).
    drop(finished);
    true
}

fn poll_ready_tasks() -> bool {
    let mut polled = false;
    while let Some(id) = READY.with(|r| r.borrow_mut().pop_front()) {
        polled |= poll_task(id);
    }
    polled
}

/// Runs `workflow` (the workflow function's body as a future) with the
/// tasks it spawns until it completes; its output. Call it once, from the
/// exported workflow function:
///
/// ```ignore
/// fn my_workflow(input: Input) -> Result<Output, ApplicationError> {
///     aio::run(my_async_workflow(input))
/// }
/// ```
///
/// The run ends when `workflow` completes, as in the SDKs: tasks still
/// pending are dropped (without cancelling their work: the workflow has
/// completed). Panics in the guest are logged at error level (see
/// [`super::report_panics`]).
pub fn run<F>(workflow: F) -> F::Output
where
    F: Future + 'static,
    F::Output: 'static,
{
    super::report_panics();
    EXEC.with(|e| {
        let mut e = e.borrow_mut();
        assert!(!e.running, "caisson_guest::workflow::aio::run is already running (call it once, in the workflow function)");
        e.running = true;
    });
    let output: Rc<RefCell<Option<F::Output>>> = Rc::new(RefCell::new(None));
    let slot = output.clone();
    spawn_task(Box::pin(async move { *slot.borrow_mut() = Some(workflow.await) }), true);
    let mut changed = true;
    loop {
        changed |= poll_ready_tasks();
        if let Some(done) = output.borrow_mut().take() {
            shut_down();
            return done;
        }
        if changed && recheck_conditions() {
            continue;
        }
        changed = wait_for_event();
    }
}

/// Re-polls the tasks awaiting conditions; true when that changed
/// anything (a condition held, or a task was woken or spawned).
fn recheck_conditions() -> bool {
    let waiters = EXEC.with(|e| std::mem::take(&mut e.borrow_mut().condition_waiters));
    if waiters.is_empty() {
        return false;
    }
    for w in waiters {
        w.wake();
    }
    WOKEN.set(false);
    CONDITION_MET.set(false);
    poll_ready_tasks();
    WOKEN.replace(false) | CONDITION_MET.replace(false)
}

fn shut_down() {
    let futures: Vec<BoxFuture<()>> = EXEC.with(|e| {
        let mut e = e.borrow_mut();
        e.shutting_down = true;
        e.tasks.iter_mut().filter_map(|t| t.future.take()).collect()
    });
    drop(futures);
    READY.with(|r| r.borrow_mut().clear());
    EXEC.with(|e| {
        let mut e = e.borrow_mut();
        let (updates, signals) = (std::mem::take(&mut e.updates), std::mem::take(&mut e.signals));
        *e = Executor { updates, signals, ..Executor::default() };
    });
}

/// Calls the host's `wait` with every awaited handle and applies the
/// event. True when the event may have changed what tasks see (anything
/// but a query).
fn wait_for_event() -> bool {
    let handles: Vec<u32> = EXEC.with(|e| e.borrow().handle_waiters.keys().copied().collect());
    match context::wait(&handles) {
        Event::Resolved(r) => {
            let waiters = EXEC.with(|e| {
                let mut e = e.borrow_mut();
                e.resolved.insert(r.handle, r.outcome);
                e.handle_waiters.remove(&r.handle).unwrap_or_default()
            });
            waiters.into_iter().for_each(Waker::wake);
        }
        Event::Signal(s) => {
            let handler = EXEC.with(|e| e.borrow().signals.get(&s.name).cloned());
            match handler {
                Some(start) => start_signal_handler(&s.name, &start, &s.args),
                None => INBOX.with(|i| i.borrow_mut().signals.entry(s.name).or_default().push_back(s.args)),
            }
        }
        Event::Query(q) => {
            let answer = handle_query(&q.name, &q.args);
            context::respond_query(&q.id, answer.as_ref().map(String::as_str).map_err(String::as_str));
            return false;
        }
        Event::Update(u) => dispatch_update(u),
        Event::CancelRequested => {
            INBOX.with(|i| i.borrow_mut().cancel_requested = true);
            let woken: Vec<TaskId> = EXEC.with(|e| {
                let mut e = e.borrow_mut();
                let mut woken = Vec::new();
                for (id, task) in e.tasks.iter_mut().enumerate() {
                    if task.cancellable && !task.done {
                        task.cancel_pending = true;
                        woken.push(id);
                    }
                }
                woken
            });
            woken.into_iter().for_each(|id| waker_of(id).wake());
        }
    }
    true
}

fn start_signal_handler(name: &str, start: &AsyncSignalStart, args: &[String]) {
    match start(args) {
        Ok(future) => {
            spawn_task(future, false);
        }
        Err(e) => context::log(LogLevel::Warn, &format!("dropping signal `{name}`: {e}")),
    }
}

fn dispatch_update(update: super::bindings::caisson::workflow::types::Update) {
    let registered = EXEC.with(|e| e.borrow().updates.get(&update.name).cloned());
    let Some((validate, start)) = registered else {
        let known_sync = INBOX.with(|i| i.borrow().updates.contains_key(&update.name));
        if known_sync {
            return super::handle_update(update);
        }
        let mut known: Vec<String> = INBOX.with(|i| i.borrow().updates.keys().cloned().collect());
        known.extend(EXEC.with(|e| e.borrow().updates.keys().cloned().collect::<Vec<_>>()));
        known.sort();
        let error = fatal(
            "UpdateNotHandled",
            format!("this workflow has no handler for update `{}` (it handles: {})", update.name, known.join(", ")),
        );
        context::reject_update(&update.id, &error);
        return;
    };
    if update.run_validator
        && let Err(error) = validate(&update.args)
    {
        context::reject_update(&update.id, &error);
        return;
    }
    let future = match start(&update.args) {
        Ok(future) => future,
        Err(error) => {
            context::reject_update(&update.id, &error);
            return;
        }
    };
    context::accept_update(&update.id);
    let id = update.id;
    spawn_task(
        Box::pin(async move {
            let answer = future.await;
            context::complete_update(&id, answer.as_ref().map(String::as_str));
        }),
        false,
    );
}

/// Registers an async update handler: `aio::on_update("approve", |who:
/// String| async move { ... })`. Each accepted update runs as a task of
/// its own (not cancelled with the workflow), may await anything, and
/// its result goes back to the caller. An update whose argument does not
/// decode as `A` is rejected, naming the update and the field.
pub fn on_update<A, R, Fut>(name: &str, handler: impl Fn(A) -> Fut + 'static)
where
    A: DeserializeOwned + 'static,
    R: Serialize,
    Fut: Future<Output = Result<R, ApplicationError>> + 'static,
{
    on_update_validated(name, |_: &A| Ok(()), handler);
}

/// [`on_update`] with a validator, run before the update is accepted
/// (never on replay): its error rejects the update, and history keeps no
/// trace of it.
pub fn on_update_validated<A, R, Fut>(
    name: &str,
    validator: impl Fn(&A) -> Result<(), ApplicationError> + 'static,
    handler: impl Fn(A) -> Fut + 'static,
) where
    A: DeserializeOwned + 'static,
    R: Serialize,
    Fut: Future<Output = Result<R, ApplicationError>> + 'static,
{
    let update = name.to_owned();
    let decode_arg = Rc::new(move |args: &[String]| -> Result<A, ApplicationError> {
        let first = args.first().map(String::as_str).unwrap_or("null");
        serde_json::from_str(first).map_err(|e| fatal("InvalidArgument", format!("update `{update}`: {e} in {first}")))
    });
    let for_validator = decode_arg.clone();
    let validate: AsyncUpdateValidator = Rc::new(move |args| validator(&for_validator(args)?));
    let start: AsyncUpdateStart = Rc::new(move |args| {
        let future = handler(decode_arg(args)?);
        Ok(Box::pin(async move {
            let result = future.await?;
            serde_json::to_string(&result).map_err(|e| fatal("EncodeError", e.to_string()))
        }) as BoxFuture<_>)
    });
    EXEC.with(|e| e.borrow_mut().updates.insert(name.to_owned(), (validate, start)));
}

/// Registers an async signal handler: each `name` signal runs
/// `handler(argument)` as a task of its own (not cancelled with the
/// workflow), as the SDKs run signal handlers. Signals that arrived
/// before the handler was registered are handed to it at once, in
/// arrival order. A signal whose argument does not decode as `A` is
/// dropped with a warning naming it. Without a handler, signals are
/// buffered for [`SignalChannel::next`].
pub fn on_signal<A, Fut>(name: &str, handler: impl Fn(A) -> Fut + 'static)
where
    A: DeserializeOwned + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let start: AsyncSignalStart = Rc::new(move |args| {
        let first = args.first().map(String::as_str).unwrap_or("null");
        let arg: A = serde_json::from_str(first).map_err(|e| format!("its argument {first} does not decode: {e}"))?;
        Ok(Box::pin(handler(arg)) as BoxFuture<()>)
    });
    EXEC.with(|e| e.borrow_mut().signals.insert(name.to_owned(), start.clone()));
    let buffered: Vec<Vec<String>> = INBOX.with(|i| i.borrow_mut().signals.remove(name).map(Vec::from).unwrap_or_default());
    for args in buffered {
        start_signal_handler(name, &start, &args);
    }
}

/// Starts `future` as a workflow task of its own, beside the others; its
/// output through the returned [`JoinHandle`]. Spawned tasks see the
/// workflow's cancellation like the workflow function's task does. Only
/// inside [`run`].
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let state = Rc::new(RefCell::new(JoinState { output: None, waker: None }));
    let shared = state.clone();
    spawn_task(
        Box::pin(async move {
            let output = future.await;
            let waker = {
                let mut s = shared.borrow_mut();
                s.output = Some(output);
                s.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }),
        true,
    );
    JoinHandle { state }
}

struct JoinState<T> {
    output: Option<T>,
    waker: Option<Waker>,
}

/// A spawned task's output: await it. Awaiting is not a cancellation
/// point (the task sees the cancellation itself). Dropping the handle
/// leaves the task running.
pub struct JoinHandle<T> {
    state: Rc<RefCell<JoinState<T>>>,
}

impl<T> JoinHandle<T> {
    /// True once the task has finished (its output is waiting).
    pub fn is_finished(&self) -> bool {
        self.state.borrow().output.is_some()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut s = self.state.borrow_mut();
        match s.output.take() {
            Some(output) => Poll::Ready(output),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Something started (activity, local activity, timer, child, external
/// signal) as a future: resolves with its result decoded as `T`.
///
/// Dropping it before it resolved cancels the work (by its cancellation
/// type). Get the raw [`Handle`] with [`Step::handle`].
#[must_use = "a step does nothing useful unless awaited; dropping it cancels it"]
pub struct Step<T> {
    handle: u32,
    /// Cancelled because the workflow was asked to cancel: however it
    /// ends (but completed), the step reports a cancellation.
    cancelled_with_workflow: bool,
    finished: bool,
    _type: PhantomData<fn() -> T>,
}

/// The future of a started handle (see [`Step`]).
pub fn step<T: DeserializeOwned>(handle: Handle) -> Step<T> {
    Step { handle: handle.0, cancelled_with_workflow: false, finished: false, _type: PhantomData }
}

impl<T> Step<T> {
    /// The handle (to cancel it explicitly, say).
    pub fn handle(&self) -> Handle {
        Handle(self.handle)
    }

    /// Requests cancellation now; the step then resolves by the work's
    /// cancellation type (a timer at once).
    pub fn cancel(&self) {
        context::cancel(self.handle);
    }

    /// Lets the work go on without awaiting it (fire and forget: a signal
    /// to another workflow, an abandoned child): the step is given up
    /// without cancelling it. The handle can still be waited on.
    pub fn detach(mut self) -> Handle {
        self.finished = true;
        EXEC.with(|e| e.borrow_mut().handle_waiters.remove(&self.handle));
        Handle(self.handle)
    }
}

impl<T: DeserializeOwned> Future for Step<T> {
    type Output = Result<T, StepError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.finished {
            panic!("caisson_guest::workflow::aio::Step polled after it resolved");
        }
        let outcome = EXEC.with(|e| e.borrow().resolved.get(&this.handle).cloned());
        let Some(outcome) = outcome else {
            if !this.cancelled_with_workflow && take_cancellation() {
                this.cancelled_with_workflow = true;
                context::cancel(this.handle);
            }
            EXEC.with(|e| register(e.borrow_mut().handle_waiters.entry(this.handle).or_default(), cx.waker()));
            return Poll::Pending;
        };
        this.finished = true;
        EXEC.with(|e| e.borrow_mut().resolved.remove(&this.handle));
        Poll::Ready(match outcome {
            Outcome::Completed(json) => {
                if this.cancelled_with_workflow {
                    // It completed anyway: the task keeps its cancellation.
                    CANCEL_REARM.set(true);
                }
                decode(json)
            }
            Outcome::Failed(Failure::Cancelled(m)) => Err(StepError::Failed(Failure::Cancelled(m))),
            Outcome::Failed(f) if this.cancelled_with_workflow => {
                let why = match f {
                    Failure::Application(e) => e.message,
                    Failure::Timeout(m) | Failure::Other(m) | Failure::Cancelled(m) => m,
                };
                Err(cancelled_error(&format!("cancelled with the workflow ({why})")))
            }
            Outcome::Failed(f) => Err(StepError::Failed(f)),
        })
    }
}

impl<T> Drop for Step<T> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let cancel = EXEC.with(|e| {
            let mut e = e.borrow_mut();
            e.handle_waiters.remove(&self.handle);
            !e.shutting_down && e.running
        });
        if cancel && !self.cancelled_with_workflow {
            context::cancel(self.handle);
        }
    }
}

impl ActivityBuilder {
    /// Schedules the activity; the future of its result (see [`Step`]).
    pub fn execute<T: DeserializeOwned>(self) -> Step<T> {
        step(self.start())
    }
}

impl LocalActivityBuilder {
    /// Schedules the local activity; the future of its result.
    pub fn execute<T: DeserializeOwned>(self) -> Step<T> {
        step(self.start())
    }
}

impl ChildBuilder {
    /// Starts the child workflow; the future of its result.
    pub fn execute<T: DeserializeOwned>(self) -> Step<T> {
        step(self.start())
    }
}

/// A durable timer as a future: `aio::sleep(Duration::from_secs(60)).await?`.
/// Dropping it before it fires cancels the timer.
pub fn sleep(duration: Duration) -> Step<()> {
    step(Handle(context::start_timer(ms(duration), None)))
}

/// [`sleep`] with a summary shown for the timer in the Temporal UI.
pub fn sleep_with_summary(duration: Duration, summary: &str) -> Step<()> {
    step(Handle(context::start_timer(ms(duration), Some(summary))))
}

/// Signals another workflow; resolves once delivered.
pub fn signal_external<A: Serialize + ?Sized>(workflow_id: &str, signal_name: &str, arg: &A) -> Step<()> {
    step(Handle(context::signal_external_workflow(workflow_id, signal_name, &[to_json(arg)])))
}

/// Resolves with `f()`'s value once it returns `Some`, re-checked
/// whenever something happened (a task ran, a signal or update arrived);
/// `Err(Cancelled)` when the workflow is asked to cancel meanwhile
/// (outside [`shielded`]).
pub fn until<T, F: FnMut() -> Option<T>>(f: F) -> Until<F> {
    Until { f }
}

/// See [`until`].
pub struct Until<F> {
    f: F,
}

impl<T, F: FnMut() -> Option<T> + Unpin> Future for Until<F> {
    type Output = Result<T, StepError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(value) = (this.f)() {
            CONDITION_MET.set(true);
            return Poll::Ready(Ok(value));
        }
        if take_cancellation() {
            return Poll::Ready(Err(cancelled_error("the workflow was asked to cancel")));
        }
        EXEC.with(|e| register(&mut e.borrow_mut().condition_waiters, cx.waker()));
        Poll::Pending
    }
}

/// Resolves once `condition` holds (like the SDKs' `wait_condition` /
/// `condition`), re-checked whenever something happened.
pub fn condition<F: FnMut() -> bool + Unpin>(mut condition: F) -> Until<impl FnMut() -> Option<()> + Unpin> {
    until(move || condition().then_some(()))
}

/// [`condition`] with a timeout (a durable timer): `Ok(true)` when the
/// condition held, `Ok(false)` when the time ran out.
pub async fn condition_timeout<F: FnMut() -> bool + Unpin>(condition_fn: F, timeout: Duration) -> Result<bool, StepError> {
    match select2(condition(condition_fn), sleep(timeout)).await {
        Either::Left(held) => held.map(|()| true),
        Either::Right(fired) => fired.map(|()| false),
    }
}

impl<T: DeserializeOwned> SignalChannel<T> {
    /// The next signal on this channel as a future (signals are buffered
    /// in arrival order). `Err(Cancelled)` when the workflow is asked to
    /// cancel meanwhile. Only inside [`run`].
    pub fn next(&self) -> Until<impl FnMut() -> Option<T> + Unpin + '_> {
        until(move || self.try_recv())
    }
}

/// Polls `future` so that the workflow's cancellation does not reach the
/// futures inside: compensation and cleanup after a cancellation, like
/// the SDKs' shielded (non-cancellable) scopes.
pub fn shielded<F: Future>(future: F) -> Shielded<F> {
    Shielded { future: Box::pin(future) }
}

/// See [`shielded`].
pub struct Shielded<F> {
    future: Pin<Box<F>>,
}

impl<F: Future> Future for Shielded<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        SHIELD.set(SHIELD.get() + 1);
        let poll = self.future.as_mut().poll(cx);
        SHIELD.set(SHIELD.get() - 1);
        poll
    }
}

/// One of two outputs: see [`select2`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Either<A, B> {
    /// The first future finished first.
    Left(A),
    /// The second future finished first.
    Right(B),
}

/// The output of whichever of `a` and `b` finishes first (`a` when both
/// are ready in the same round). The other is dropped, which cancels the
/// steps inside it.
pub fn select2<A: Future, B: Future>(a: A, b: B) -> Select2<A, B> {
    Select2 { a: Box::pin(a), b: Box::pin(b) }
}

/// See [`select2`].
pub struct Select2<A, B> {
    a: Pin<Box<A>>,
    b: Pin<Box<B>>,
}

impl<A: Future, B: Future> Future for Select2<A, B> {
    type Output = Either<A::Output, B::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(a) = self.a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(a));
        }
        if let Poll::Ready(b) = self.b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(b));
        }
        Poll::Pending
    }
}

/// The index and output of the first of `futures` to finish (the lowest
/// index among those ready in the same round); the others are dropped,
/// which cancels the steps inside them. Panics on an empty list.
pub fn first_of<F: Future>(futures: Vec<F>) -> FirstOf<F> {
    assert!(!futures.is_empty(), "first_of needs at least one future");
    FirstOf { futures: futures.into_iter().map(Box::pin).collect() }
}

/// See [`first_of`].
pub struct FirstOf<F> {
    futures: Vec<Pin<Box<F>>>,
}

impl<F: Future> Future for FirstOf<F> {
    type Output = (usize, F::Output);
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        for (i, f) in self.futures.iter_mut().enumerate() {
            if let Poll::Ready(output) = f.as_mut().poll(cx) {
                return Poll::Ready((i, output));
            }
        }
        Poll::Pending
    }
}

/// Both outputs, once both futures have finished.
pub fn join2<A: Future, B: Future>(a: A, b: B) -> Join2<A, B> {
    Join2 { a: MaybeDone::Running(Box::pin(a)), b: MaybeDone::Running(Box::pin(b)) }
}

/// See [`join2`].
pub struct Join2<A: Future, B: Future> {
    a: MaybeDone<A>,
    b: MaybeDone<B>,
}

enum MaybeDone<F: Future> {
    Running(Pin<Box<F>>),
    Done(Option<F::Output>),
}

impl<F: Future> MaybeDone<F> {
    /// Polls it if still running; true once done.
    fn poll_done(&mut self, cx: &mut Context<'_>) -> bool {
        if let MaybeDone::Running(f) = self {
            match f.as_mut().poll(cx) {
                Poll::Ready(output) => *self = MaybeDone::Done(Some(output)),
                Poll::Pending => return false,
            }
        }
        true
    }

    fn take(&mut self) -> F::Output {
        match self {
            MaybeDone::Done(output) => output.take().expect("output taken once"),
            MaybeDone::Running(_) => unreachable!("taken before done"),
        }
    }
}

// MaybeDone pins its future in a box, so it is Unpin whatever F is.
impl<F: Future> Unpin for MaybeDone<F> {}

impl<A: Future, B: Future> Future for Join2<A, B> {
    type Output = (A::Output, B::Output);
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let a = this.a.poll_done(cx);
        let b = this.b.poll_done(cx);
        if a && b { Poll::Ready((this.a.take(), this.b.take())) } else { Poll::Pending }
    }
}

/// Every output, in the order of `futures`, once all have finished (the
/// SDKs' `gather` / `Promise.all`).
pub fn join_all<F: Future>(futures: Vec<F>) -> JoinAll<F> {
    JoinAll { futures: futures.into_iter().map(|f| MaybeDone::Running(Box::pin(f))).collect() }
}

/// See [`join_all`].
pub struct JoinAll<F: Future> {
    futures: Vec<MaybeDone<F>>,
}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut all = true;
        for f in self.futures.iter_mut() {
            all &= f.poll_done(cx);
        }
        if all { Poll::Ready(self.futures.iter_mut().map(MaybeDone::take).collect()) } else { Poll::Pending }
    }
}
