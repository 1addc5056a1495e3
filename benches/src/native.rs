//! The native reference: the guest `replay-mix` and `child-upper`
//! workflows (plugins/rust/test-workflows) written against the Temporal
//! Rust SDK (`temporalio-sdk` 1.1.1), and replay of the recorded fixture
//! histories through the SDK's worker on core's replay worker, fed as
//! `caisson::replay` feeds it (see [`NativeReplayer`] for why not the SDK's
//! `WorkflowReplayer`).
//!
//! The commands must match the ones Caisson sends for the guest
//! (`caisson-guest` builder defaults, translated by `host/src/bridge.rs`):
//!
//! * activity `echo`: start-to-close 60 s, no other timeout, no retry
//!   policy (the server's default), `TRY_CANCEL`, the workflow's task
//!   queue, activity id = the guest's handle number;
//! * timers: 1 ms per round; 30 s for the signal wait;
//! * child `child-upper`: id `{workflow id}-child-{i}`, the workflow's task
//!   queue, parent close policy `TERMINATE`, cancellation
//!   `WAIT_CANCELLATION_COMPLETED`, no timeouts or retry policy;
//! * signal `tick` to the workflow itself with the round number.
//!
//! One difference cannot be expressed in the SDK's API: the guest numbers
//! all its handles (activities, timers, signals, children) with one
//! counter, and core takes a timer's id from that number and checks it
//! when the timer fires, while the SDK numbers timers with a counter of
//! their own. See [`TimerIds`] for the two ways around it.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use temporalio_client::ClientOptions;
use temporalio_common::protos::coresdk::workflow_activation::WorkflowActivation;
use temporalio_common::protos::coresdk::workflow_activation::remove_from_cache::EvictionReason;
use temporalio_common::protos::coresdk::workflow_activation::workflow_activation_job::Variant;
use temporalio_common::worker::WorkerTaskTypes;
use temporalio_sdk::activities::{ActivityContext, ActivityDefinitions, ActivityError, ActivityImplementer, ExecutableActivity};
use temporalio_sdk::interceptors::WorkerInterceptor;
use temporalio_sdk::{
    ActivityOptions, CancellableFuture, ChildWorkflowOptions, ParentClosePolicy, SignalWorkflowOptions, SyncWorkflowContext, Worker,
    WorkerOptions, WorkflowContext, WorkflowResult,
};
use temporalio_sdk_core::replay::{HistoryFeeder, HistoryForReplay, ReplayWorkerInput};
use temporalio_sdk_core::{WorkerConfig, WorkerVersioningStrategy, init_replay_worker};
use temporalio_workflow::common::ActivityDefinition;
use temporalio_workflow::common::protos::temporal::api::history::v1::History;
use temporalio_workflow::common::protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_workflow::{workflow, workflow_methods};
use tokio::sync::Notify;

/// The `echo` activity of test-activities: only scheduled in replay (its
/// results come from the history), executed by the live native worker.
pub struct Echo;

impl ActivityDefinition for Echo {
    type Input = String;
    type Output = String;

    fn name(&self) -> &str {
        "echo"
    }
}

/// Serves [`Echo`] in a live worker (`src/bin/native_worker.rs`): written
/// out by hand rather than with the SDK's `#[activities]` macro, whose
/// expansion needs the `futures` crate as a direct dependency.
pub struct EchoActivities;

impl ExecutableActivity for Echo {
    type Implementer = EchoActivities;
    const REQUIRES_INSTANCE: bool = false;

    fn definition() -> Self {
        Echo
    }

    fn execute(
        _receiver: Option<Arc<EchoActivities>>,
        _ctx: ActivityContext,
        input: String,
    ) -> Pin<Box<dyn Future<Output = Result<String, ActivityError>> + Send + 'static>> {
        Box::pin(async move { Ok(input) })
    }
}

impl ActivityImplementer for EchoActivities {
    fn register_all(self: Arc<Self>, defs: &mut ActivityDefinitions) {
        defs.register_activity::<Echo>(self);
    }
}

/// How the native workflow gets the guest's timer ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerIds {
    /// Replay the recorded histories unchanged: before each timer, the
    /// workflow starts and at once cancels SDK timers until the SDK's timer
    /// counter reaches the guest's number. Core drops a timer cancelled in
    /// the activation that started it without a command or an event, so
    /// the history still matches; the cost is one extra timer start and
    /// cancel per skipped number (about one per round).
    Skip,
    /// Plain SDK code: timers numbered by the SDK's own counter. The
    /// recorded histories do not replay against it (core reports the
    /// timer id mismatch); renumbering their timers beforehand is not
    /// possible in general either, since a timer the workflow starts and
    /// cancels in one activation (the signal wait, when the signal is
    /// already there) leaves no event but takes an SDK number.
    Renumbered,
}

/// `replay-mix`, natively.
#[workflow]
#[derive(Default)]
pub struct ReplayMix {
    /// `tick` signals received and not yet taken.
    ticks: u32,
    /// [`TimerIds::Renumbered`].
    renumbered: bool,
    /// Counts the runs that reached their end.
    completed: Arc<AtomicUsize>,
}

#[workflow_methods]
impl ReplayMix {
    /// Per round: `echo("round-{i}")` and a 1 ms timer, both awaited;
    /// every 10th round a `tick` signal to itself and a wait for it (30 s
    /// at most); every 25th round the child `child-upper("x")`. Returns the
    /// number of signal rounds.
    #[run(name = "replay-mix")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, rounds: u32) -> WorkflowResult<u32> {
        let me = ctx.workflow_id().to_owned();
        let mut ids = Numbering { skip: !ctx.state(|s| s.renumbered), ..Numbering::default() };
        let mut signals = 0;
        for i in 0..rounds {
            let activity_id = ids.next();
            let echo = ctx.execute_activity(
                Echo,
                format!("round-{i}"),
                ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60)).activity_id(activity_id.to_string()).build(),
            );
            ids.timer(ctx);
            let tick = ctx.timer(Duration::from_millis(1));
            let (echoed, _) = temporalio_sdk::workflows::join!(echo, tick);
            let _ = echoed;
            if i % 10 == 0 {
                ids.next();
                let sent = ctx.external_workflow(me.clone(), None).signal(ReplayMix::tick, i, SignalWorkflowOptions::default());
                let _ = sent.await;
                ids.timer(ctx);
                let mut wait = ctx.timer(Duration::from_secs(30));
                let arrived = temporalio_sdk::workflows::select! {
                    _ = ctx.wait_condition(|s| s.ticks > 0) => true,
                    _ = wait => false,
                };
                if arrived {
                    wait.cancel();
                    ctx.state_mut(|s| s.ticks -= 1);
                }
                signals += 1;
            }
            if i % 25 == 0 {
                ids.next();
                let options = ChildWorkflowOptions::builder()
                    .workflow_id(format!("{me}-child-{i}"))
                    .parent_close_policy(ParentClosePolicy::Terminate)
                    .build();
                if let Ok(started) = ctx.start_child_workflow(ChildUpper::run, "x".to_owned(), options).await {
                    let _ = started.result().await;
                }
            }
        }
        ctx.state(|s| s.completed.fetch_add(1, Ordering::Relaxed));
        Ok(signals)
    }

    /// A `tick` signal (the guest only counts them).
    #[signal(name = "tick")]
    pub fn tick(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _round: u32) {
        self.ticks += 1;
    }
}

/// The guest's handle numbers, and the SDK's timer numbers.
#[derive(Default)]
struct Numbering {
    /// The guest's last handle number.
    handle: u32,
    /// The SDK's last timer number.
    sdk_timer: u32,
    /// [`TimerIds::Skip`].
    skip: bool,
}

impl Numbering {
    /// The guest's number for its next activity, signal or child.
    fn next(&mut self) -> u32 {
        self.handle += 1;
        self.handle
    }

    /// Takes the guest's number for a timer that is about to start; in
    /// [`TimerIds::Skip`] mode, first burns SDK timer numbers (a timer
    /// started and cancelled at once) up to it.
    fn timer<W>(&mut self, ctx: &WorkflowContext<W>) {
        let id = self.next();
        if self.skip {
            while self.sdk_timer + 1 < id {
                self.sdk_timer += 1;
                ctx.timer(Duration::from_millis(1)).cancel();
            }
        }
        self.sdk_timer += 1;
    }
}

/// `child-upper`, natively (registered for completeness: replay only runs
/// the parent).
#[workflow]
#[derive(Default)]
pub struct ChildUpper;

#[workflow_methods]
impl ChildUpper {
    /// A 1 ms timer, then the argument in upper case.
    #[run(name = "child-upper")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, item: String) -> WorkflowResult<String> {
        ctx.timer(Duration::from_millis(1)).await;
        Ok(item.to_uppercase())
    }
}

const NAMESPACE: &str = "default";
const TASK_QUEUE: &str = "native-replay";

/// Replays histories through the SDK: its `Worker` (workflow registry,
/// executor, activation handling) on a core replay worker, fed the way
/// `caisson::replay` feeds core.
///
/// Not the SDK's own `WorkflowReplayer`: that one hands core its histories
/// as a stream that ends at once, and core's replay worker then shuts down
/// as soon as it runs out of histories to hand out, now and then before it
/// has replayed the last one; `WorkflowReplayer` reports such a history as
/// replayed cleanly (no eviction was seen for it, so no failure). Here, as
/// in `caisson::replay`, the stream stays open until the last history has
/// started, and every run must reach the end of its workflow.
pub struct NativeReplayer {
    mode: TimerIds,
}

impl NativeReplayer {
    /// A replayer for histories prepared with [`NativeReplayer::copies`].
    pub fn new(mode: TimerIds) -> Self {
        NativeReplayer { mode }
    }

    /// `n` copies of a recorded history, ready for [`NativeReplayer::replay`]:
    /// each with a run id of its own (core's replayer tells histories apart
    /// by run id, as in `caisson::replay`).
    pub fn copies(&self, history: &History, n: usize) -> Vec<History> {
        copies(history, n)
    }

    /// Replays `histories`, in order, through one replay worker; fails
    /// unless every one replayed cleanly and its workflow ran to its end.
    pub async fn replay(&self, histories: Vec<History>) -> anyhow::Result<()> {
        let n = histories.len();
        let completed = Arc::new(AtomicUsize::new(0));
        let observer = Observer { expected: n, state: Arc::default(), all_started: Arc::default() };
        let (state, all_started) = (observer.state.clone(), observer.all_started.clone());

        let config = WorkerConfig::builder()
            .namespace(NAMESPACE)
            .task_queue(TASK_QUEUE)
            .task_types(WorkerTaskTypes::workflow_only())
            .versioning_strategy(WorkerVersioningStrategy::None { build_id: TASK_QUEUE.into() })
            .max_cached_workflows(1_usize)
            .build()
            .map_err(anyhow::Error::msg)?;
        let (feeder, stream) = HistoryFeeder::new(1);
        let core = init_replay_worker(ReplayWorkerInput::new(config, stream))?;
        let renumbered = self.mode == TimerIds::Renumbered;
        let counter = completed.clone();
        let options = WorkerOptions::new(TASK_QUEUE)
            .register_workflow_with_factory::<ReplayMix, _>(move || ReplayMix { ticks: 0, renumbered, completed: counter.clone() })?
            .register_workflow::<ChildUpper>()?
            .worker_interceptor(observer)
            .build();
        let mut worker = Worker::new_from_core_options(Arc::new(core), ClientOptions::new(NAMESPACE).build(), options)?;

        let feeding = async move {
            for history in histories {
                let workflow_id = workflow_id(&history);
                if feeder.feed(HistoryForReplay::new(history, workflow_id)).await.is_err() {
                    return;
                }
            }
            // Ending the stream lets core shut the replay worker down,
            // dropping what it has not started yet.
            all_started.notified().await;
        };
        let run = worker.run();
        tokio::pin!(run);
        tokio::select! {
            result = &mut run => result?,
            () = feeding => run.await?,
        }

        let state = state.lock().unwrap();
        let failures = &state.failures;
        anyhow::ensure!(failures.is_empty(), "{n} histories, {} failed: {:?}", failures.len(), &failures[..failures.len().min(3)]);
        let completed = completed.load(Ordering::Relaxed);
        anyhow::ensure!(completed == n, "{n} histories, {} started, only {completed} replayed to their end", state.started);
        Ok(())
    }
}

/// The workflow id a history replays under: the one its start event
/// records (the fixtures' file stems), as `caisson::replay` does.
fn workflow_id(history: &History) -> String {
    match history.events.first().and_then(|e| e.attributes.as_ref()) {
        Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) if !a.workflow_id.is_empty() => a.workflow_id.clone(),
        _ => "replay".to_owned(),
    }
}

#[derive(Default)]
struct ObserverState {
    started: usize,
    runs: HashSet<String>,
    failures: Vec<String>,
}

/// Sees every activation before the SDK runs it: counts the runs started
/// and judges each eviction the way the SDK's `WorkflowReplayer` does.
struct Observer {
    expected: usize,
    state: Arc<Mutex<ObserverState>>,
    all_started: Arc<Notify>,
}

#[async_trait::async_trait(?Send)]
impl WorkerInterceptor for Observer {
    async fn on_workflow_activation(&self, activation: &WorkflowActivation) -> Result<(), anyhow::Error> {
        let mut state = self.state.lock().unwrap();
        for job in &activation.jobs {
            match &job.variant {
                Some(Variant::InitializeWorkflow(_)) if state.runs.insert(activation.run_id.clone()) => {
                    state.started += 1;
                    if state.started == self.expected {
                        self.all_started.notify_one();
                    }
                }
                Some(Variant::RemoveFromCache(evict)) => match evict.reason() {
                    EvictionReason::CacheFull | EvictionReason::LangRequested => {}
                    reason => state.failures.push(format!("{reason:?}: {}", evict.message)),
                },
                _ => {}
            }
        }
        Ok(())
    }
}

/// `n` copies of `history`, each with a run id of its own.
pub fn copies(history: &History, n: usize) -> Vec<History> {
    let mut seen = HashSet::new();
    (0..n)
        .map(|i| {
            let mut h = history.clone();
            if let Some(Attributes::WorkflowExecutionStartedEventAttributes(started)) =
                h.events.first_mut().and_then(|e| e.attributes.as_mut())
                && !seen.insert(started.original_execution_run_id.clone())
            {
                started.original_execution_run_id = format!("{}-replay-{i}", started.original_execution_run_id);
            }
            h
        })
        .collect()
}
