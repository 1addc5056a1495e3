//! The native reference: the guest `replay-mix` and `child-upper`
//! workflows (plugins/rust/test-workflows) written against the Temporal
//! Rust SDK (`temporalio-sdk` 1.1.1), and replay of the recorded fixture
//! histories through the SDK's own `WorkflowReplayer` (core's replay
//! worker underneath, as for Caisson).
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
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use temporalio_sdk::{
    ActivityOptions, CancellableFuture, ChildWorkflowOptions, ParentClosePolicy, SignalWorkflowOptions,
    SyncWorkflowContext, WorkflowContext, WorkflowResult,
};
use temporalio_workflow::common::ActivityDefinition;
use temporalio_workflow::common::protos::temporal::api::history::v1::History;
use temporalio_workflow::common::protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_workflow::{workflow, workflow_methods};

/// The `echo` activity of test-activities (only scheduled here: replay
/// takes its results from the history).
pub struct Echo;

impl ActivityDefinition for Echo {
    type Input = String;
    type Output = String;

    fn name(&self) -> &str {
        "echo"
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
    /// Renumber the timers in the history (`TimerStarted` / `TimerFired`)
    /// to the SDK's own numbering beforehand ([`renumber_timers`]): the
    /// workflow is then plain SDK code and does no extra work.
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
                ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60))
                    .activity_id(activity_id.to_string())
                    .build(),
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

/// The SDK's replayer with both workflows registered, for one way of
/// numbering timers.
pub struct NativeReplayer {
    replayer: WorkflowReplayer,
    mode: TimerIds,
    completed: Arc<AtomicUsize>,
}

impl NativeReplayer {
    /// A replayer for histories prepared with [`NativeReplayer::copies`].
    pub fn new(mode: TimerIds) -> Self {
        let completed = Arc::new(AtomicUsize::new(0));
        let counter = completed.clone();
        let renumbered = mode == TimerIds::Renumbered;
        let options = WorkflowReplayerOptions::new()
            .register_workflow_with_factory::<ReplayMix, _>(move || ReplayMix {
                ticks: 0,
                renumbered,
                completed: counter.clone(),
            })
            .unwrap()
            .register_workflow::<ChildUpper>()
            .unwrap()
            .build();
        NativeReplayer { replayer: WorkflowReplayer::new(options).unwrap(), mode, completed }
    }

    /// `n` copies of a recorded history, ready for [`NativeReplayer::replay`]:
    /// each with a run id of its own (core's replayer tells histories apart
    /// by run id, as in `caisson::replay`), their timers renumbered in
    /// [`TimerIds::Renumbered`] mode.
    pub fn copies(&self, history: &History, n: usize) -> Vec<History> {
        let history = match self.mode {
            TimerIds::Skip => history.clone(),
            TimerIds::Renumbered => renumber_timers(history),
        };
        copies(&history, n)
    }

    /// Replays `histories` through one SDK replayer (one core replay
    /// worker) and fails unless every one replayed cleanly and ran to its
    /// end.
    pub async fn replay(&self, histories: Vec<History>) -> anyhow::Result<()> {
        let n = histories.len();
        let before = self.completed.load(Ordering::Relaxed);
        let results = self.replayer.replay_workflows(histories.into_iter().map(Into::into)).await?;
        let failures: Vec<_> = results.iter().filter_map(|r| r.replay_failure.as_ref()).take(3).collect();
        anyhow::ensure!(failures.is_empty(), "{n} histories, failures: {failures:?}");
        let completed = self.completed.load(Ordering::Relaxed) - before;
        anyhow::ensure!(completed == n, "{n} histories, only {completed} replayed to their end");
        Ok(())
    }
}

/// Renumbers the timers of a `replay-mix` history the way the SDK numbers
/// them (1, 2, ... in the order they were started), for
/// [`TimerIds::Renumbered`].
pub fn renumber_timers(history: &History) -> History {
    let mut history = history.clone();
    let mut ids = std::collections::HashMap::new();
    for event in &mut history.events {
        match event.attributes.as_mut() {
            Some(Attributes::TimerStartedEventAttributes(a)) => {
                let n = ids.len() + 1;
                a.timer_id = ids.entry(a.timer_id.clone()).or_insert(n).to_string();
            }
            Some(Attributes::TimerFiredEventAttributes(a)) => a.timer_id = ids[&a.timer_id].to_string(),
            Some(Attributes::TimerCanceledEventAttributes(a)) => a.timer_id = ids[&a.timer_id].to_string(),
            _ => {}
        }
    }
    history
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
