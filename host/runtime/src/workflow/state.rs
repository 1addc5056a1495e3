//! The deterministic heart of a workflow run: what the guest has started,
//! what history has resolved, and which event `wait` returns next.
//!
//! Pure logic, no wasmtime and no Temporal types, so every rule is unit
//! tested here. The host functions ([`super::host`]) call into it while
//! the guest runs; the driver ([`super::WorkflowRun`]) applies activation
//! jobs to it between runs.

use super::bindings::{
    ActivityOptions, ChildWorkflowOptions, ContinueAsNewOptions, Event, Failure, Outcome, Query, Resolution, Signal, WorkflowInfo,
};
use std::collections::{HashMap, HashSet, VecDeque};

/// A sequence number Temporal's core uses to match commands with results.
pub type Seq = u32;

/// What a handle refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleKind {
    /// A scheduled activity.
    Activity,
    /// A durable timer.
    Timer,
    /// A child workflow.
    Child,
    /// A signal to another workflow.
    SignalExternal,
}

/// A command for Temporal, in Caisson's own terms (the bridge translates).
/// `seq` matches a command with its resolution; other fields mirror
/// Temporal's command of the same name.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Schedule an activity.
    ScheduleActivity { seq: Seq, options: ActivityOptions },
    /// Start a timer.
    StartTimer { seq: Seq, millis: u64 },
    /// Cancel a timer.
    CancelTimer { seq: Seq },
    /// Ask an activity to cancel.
    RequestCancelActivity { seq: Seq },
    /// Start a child workflow.
    StartChild { seq: Seq, workflow_id: String, options: ChildWorkflowOptions },
    /// Cancel a child workflow.
    CancelChild { seq: Seq },
    /// Signal another workflow.
    SignalExternal { seq: Seq, workflow_id: String, signal_name: String, args: Vec<String> },
    /// Cancel an unsent external signal.
    CancelSignalExternal { seq: Seq },
    /// Record that a patch is in effect.
    SetPatchMarker { patch_id: String, deprecated: bool },
    /// Answer a query.
    RespondToQuery { query_id: String, answer: Result<String, String> },
    /// Complete the workflow with a JSON result.
    CompleteWorkflow { result: String },
    /// Fail the workflow with an application error.
    FailWorkflow { message: String, error_type: String, non_retryable: bool, details: Option<String> },
    /// End as cancelled.
    CancelWorkflow,
    /// Continue as a new run.
    ContinueAsNew { options: ContinueAsNewOptions },
}

impl Command {
    /// True for commands that close the run.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Command::CompleteWorkflow { .. } | Command::FailWorkflow { .. } | Command::CancelWorkflow | Command::ContinueAsNew { .. }
        )
    }
}

/// A job of an activation, in Caisson's own terms. Fields mirror core's
/// job of the same name.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// A timer fired.
    FireTimer { seq: Seq },
    /// An activity finished.
    ResolveActivity { seq: Seq, outcome: Outcome },
    /// A child workflow could not start.
    ChildStartFailed { seq: Seq, failure: Failure },
    /// A child workflow started.
    ChildStarted { seq: Seq },
    /// A child workflow closed.
    ResolveChild { seq: Seq, outcome: Outcome },
    /// An external signal was delivered (or failed).
    ResolveSignalExternal { seq: Seq, failure: Option<Failure> },
    /// A signal arrived.
    Signal(Signal),
    /// A query arrived.
    Query(Query),
    /// Cancellation of the workflow was requested.
    Cancel,
    /// History says this patch was applied.
    NotifyHasPatch { patch_id: String },
    /// The randomness seed changed (reset).
    UpdateRandomSeed { seed: u64 },
}

/// A guest error the host turns into a trap, failing the workflow task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuestMisuse {
    /// `wait` or `poll` on a handle that was never returned.
    #[error("waited on handle {0}, which this workflow never started")]
    UnknownHandle(u32),
    /// A command while answering a query.
    #[error("started work while answering query `{0}`: queries must not change workflow state")]
    CommandDuringQuery(String),
    /// `respond-query` with an id that is not open.
    #[error("answered query id `{0}`, which is not an open query")]
    UnknownQuery(String),
    /// A call after `continue-as-new`.
    #[error("called the workflow context after continue-as-new")]
    AfterContinueAsNew,
}

/// SplitMix64: tiny, fast, and the same sequence on every replay.
#[derive(Debug, Clone)]
pub struct DeterministicRng(u64);

impl DeterministicRng {
    /// A generator seeded by Temporal's randomness seed.
    pub fn new(seed: u64) -> Self {
        DeterministicRng(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Everything the workflow context knows about one run.
#[derive(Debug)]
pub struct RunState {
    /// Facts about the run.
    pub info: WorkflowInfo,
    /// Workflow time of the current activation, ms since the epoch.
    pub now_ms: u64,
    /// True while history is being replayed.
    pub is_replaying: bool,
    /// Seeded randomness.
    pub rng: DeterministicRng,
    next_seq: Seq,
    handles: HashMap<u32, HandleKind>,
    resolved: HashMap<u32, Outcome>,
    /// Resolved, not yet returned by `wait`, in resolution order.
    fresh: VecDeque<u32>,
    signals: VecDeque<Signal>,
    queries: VecDeque<Query>,
    open_queries: Vec<Query>,
    cancel_requested: bool,
    cancel_delivered: bool,
    patches_in_history: HashSet<String>,
    patches_decided: HashMap<String, bool>,
    commands: Vec<Command>,
    /// Set by `continue-as-new`: nothing may follow.
    pub closed: bool,
    /// True while the guest is suspended in `wait`.
    pub waiting: bool,
}

impl RunState {
    /// A new run.
    pub fn new(info: WorkflowInfo, seed: u64) -> Self {
        RunState {
            info,
            now_ms: 0,
            is_replaying: false,
            rng: DeterministicRng::new(seed),
            next_seq: 1,
            handles: HashMap::new(),
            resolved: HashMap::new(),
            fresh: VecDeque::new(),
            signals: VecDeque::new(),
            queries: VecDeque::new(),
            open_queries: Vec::new(),
            cancel_requested: false,
            cancel_delivered: false,
            patches_in_history: HashSet::new(),
            patches_decided: HashMap::new(),
            commands: Vec::new(),
            closed: false,
            waiting: false,
        }
    }

    /// Applies one job from an activation.
    pub fn apply(&mut self, job: Job) {
        match job {
            Job::FireTimer { seq } => self.resolve(seq, Outcome::Completed("null".into())),
            Job::ResolveActivity { seq, outcome } | Job::ResolveChild { seq, outcome } => self.resolve(seq, outcome),
            Job::ChildStartFailed { seq, failure } => self.resolve(seq, Outcome::Failed(failure)),
            Job::ChildStarted { .. } => {}
            Job::ResolveSignalExternal { seq, failure } => {
                self.resolve(seq, failure.map_or_else(|| Outcome::Completed("null".into()), Outcome::Failed))
            }
            Job::Signal(s) => self.signals.push_back(s),
            Job::Query(q) => self.queries.push_back(q),
            Job::Cancel => self.cancel_requested = true,
            Job::NotifyHasPatch { patch_id } => {
                self.patches_in_history.insert(patch_id);
            }
            Job::UpdateRandomSeed { seed } => self.rng = DeterministicRng::new(seed),
        }
    }

    fn resolve(&mut self, seq: Seq, outcome: Outcome) {
        // A handle resolves once; a second resolution (e.g. a timer fired
        // after the workflow cancelled it) is ignored.
        if self.handles.contains_key(&seq) && !self.resolved.contains_key(&seq) {
            self.resolved.insert(seq, outcome);
            self.fresh.push_back(seq);
        }
    }

    fn issue(&mut self, kind: HandleKind) -> Result<Seq, GuestMisuse> {
        self.check_may_command()?;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.handles.insert(seq, kind);
        Ok(seq)
    }

    fn check_may_command(&self) -> Result<(), GuestMisuse> {
        if self.closed {
            return Err(GuestMisuse::AfterContinueAsNew);
        }
        if let Some(q) = self.open_queries.first() {
            return Err(GuestMisuse::CommandDuringQuery(q.name.clone()));
        }
        Ok(())
    }

    /// `start-activity`.
    pub fn start_activity(&mut self, mut options: ActivityOptions) -> Result<u32, GuestMisuse> {
        let seq = self.issue(HandleKind::Activity)?;
        if options.activity_id.as_deref().is_none_or(str::is_empty) {
            options.activity_id = Some(seq.to_string());
        }
        self.commands.push(Command::ScheduleActivity { seq, options });
        Ok(seq)
    }

    /// `start-timer`.
    pub fn start_timer(&mut self, millis: u64) -> Result<u32, GuestMisuse> {
        let seq = self.issue(HandleKind::Timer)?;
        self.commands.push(Command::StartTimer { seq, millis: millis.max(1) });
        Ok(seq)
    }

    /// `start-child-workflow`.
    pub fn start_child(&mut self, options: ChildWorkflowOptions) -> Result<u32, GuestMisuse> {
        let seq = self.issue(HandleKind::Child)?;
        let workflow_id =
            options.workflow_id.clone().filter(|id| !id.is_empty()).unwrap_or_else(|| format!("{}-child-{seq}", self.info.workflow_id));
        self.commands.push(Command::StartChild { seq, workflow_id, options });
        Ok(seq)
    }

    /// `signal-external-workflow`.
    pub fn signal_external(&mut self, workflow_id: String, signal_name: String, args: Vec<String>) -> Result<u32, GuestMisuse> {
        let seq = self.issue(HandleKind::SignalExternal)?;
        self.commands.push(Command::SignalExternal { seq, workflow_id, signal_name, args });
        Ok(seq)
    }

    /// `cancel`: a timer resolves at once; others per their cancellation type.
    pub fn cancel(&mut self, handle: u32) -> Result<(), GuestMisuse> {
        self.check_may_command()?;
        let Some(kind) = self.handles.get(&handle).copied() else { return Ok(()) };
        if self.resolved.contains_key(&handle) {
            return Ok(());
        }
        match kind {
            HandleKind::Timer => {
                self.commands.push(Command::CancelTimer { seq: handle });
                self.resolve(handle, Outcome::Failed(Failure::Cancelled("timer cancelled".into())));
            }
            HandleKind::Activity => self.commands.push(Command::RequestCancelActivity { seq: handle }),
            HandleKind::Child => self.commands.push(Command::CancelChild { seq: handle }),
            HandleKind::SignalExternal => self.commands.push(Command::CancelSignalExternal { seq: handle }),
        }
        Ok(())
    }

    /// The next event for `wait(handles)`, or `None` to block.
    /// Queries first, then signals, then a cancellation request, then the
    /// earliest-resolved awaited handle, then an awaited handle that was
    /// already returned once.
    pub fn next_event(&mut self, handles: &[u32]) -> Result<Option<Event>, GuestMisuse> {
        if let Some(&unknown) = handles.iter().find(|h| !self.handles.contains_key(h)) {
            return Err(GuestMisuse::UnknownHandle(unknown));
        }
        if let Some(q) = self.queries.pop_front() {
            self.open_queries.push(q.clone());
            return Ok(Some(Event::Query(q)));
        }
        if !self.open_queries.is_empty() {
            // The guest waited again without answering: the host answers
            // for it (see `take_commands`) and does not block on it.
            self.fail_open_queries();
        }
        if let Some(s) = self.signals.pop_front() {
            return Ok(Some(Event::Signal(s)));
        }
        if self.cancel_requested && !self.cancel_delivered {
            self.cancel_delivered = true;
            return Ok(Some(Event::CancelRequested));
        }
        if let Some(pos) = self.fresh.iter().position(|h| handles.contains(h)) {
            let handle = self.fresh.remove(pos).expect("position is in range");
            return Ok(Some(Event::Resolved(Resolution { handle, outcome: self.resolved[&handle].clone() })));
        }
        if let Some(&handle) = handles.iter().find(|h| self.resolved.contains_key(h)) {
            return Ok(Some(Event::Resolved(Resolution { handle, outcome: self.resolved[&handle].clone() })));
        }
        Ok(None)
    }

    /// `poll`.
    pub fn poll(&self, handle: u32) -> Result<Option<Outcome>, GuestMisuse> {
        if !self.handles.contains_key(&handle) {
            return Err(GuestMisuse::UnknownHandle(handle));
        }
        Ok(self.resolved.get(&handle).cloned())
    }

    /// `respond-query`.
    pub fn respond_query(&mut self, id: &str, answer: Result<String, String>) -> Result<(), GuestMisuse> {
        let pos = self.open_queries.iter().position(|q| q.id == id).ok_or_else(|| GuestMisuse::UnknownQuery(id.to_owned()))?;
        self.open_queries.remove(pos);
        self.commands.push(Command::RespondToQuery { query_id: id.to_owned(), answer });
        Ok(())
    }

    fn fail_open_queries(&mut self) {
        for q in std::mem::take(&mut self.open_queries) {
            self.commands
                .push(Command::RespondToQuery { query_id: q.id, answer: Err(format!("the workflow did not answer query `{}`", q.name)) });
        }
    }

    /// Queries the guest has not received (it returned, or never waited).
    pub fn take_undelivered_queries(&mut self) -> Vec<Query> {
        self.queries.drain(..).collect()
    }

    /// Opens a query that the host answers itself (after the workflow returned).
    pub fn open_queries_push(&mut self, query: Query) {
        self.open_queries.push(query);
    }

    /// Answers the most recently opened query.
    pub fn respond_query_unchecked(&mut self, answer: Result<String, String>) {
        if let Some(q) = self.open_queries.pop() {
            self.commands.push(Command::RespondToQuery { query_id: q.id, answer });
        }
    }

    /// `is-cancel-requested`.
    pub fn is_cancel_requested(&self) -> bool {
        self.cancel_requested
    }

    /// `patched`: true for new code; false when replaying a history from
    /// before the patch. Decided once per id and run.
    pub fn patched(&mut self, patch_id: &str, deprecated: bool) -> bool {
        if let Some(&decided) = self.patches_decided.get(patch_id) {
            return decided;
        }
        let active = deprecated || self.patches_in_history.contains(patch_id) || !self.is_replaying;
        self.patches_decided.insert(patch_id.to_owned(), active);
        if active {
            self.commands.push(Command::SetPatchMarker { patch_id: patch_id.to_owned(), deprecated });
        }
        active
    }

    /// `continue-as-new`.
    pub fn continue_as_new(&mut self, options: ContinueAsNewOptions) -> Result<(), GuestMisuse> {
        self.check_may_command()?;
        self.commands.push(Command::ContinueAsNew { options });
        self.closed = true;
        Ok(())
    }

    /// Adds a terminal command (completion of the workflow function).
    pub fn finish(&mut self, command: Command) {
        self.closed = true;
        self.commands.push(command);
    }

    /// The commands issued since the last call, with any query the guest
    /// left unanswered failed.
    pub fn take_commands(&mut self) -> Vec<Command> {
        self.fail_open_queries();
        std::mem::take(&mut self.commands)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::bindings::{CancellationType, WorkflowInfo};

    fn info() -> WorkflowInfo {
        WorkflowInfo {
            namespace: "default".into(),
            task_queue: "q".into(),
            workflow_type: "t".into(),
            workflow_id: "wf".into(),
            run_id: "r".into(),
            attempt: 1,
            continued_from_run_id: None,
            parent_workflow_id: None,
        }
    }

    fn activity(kind: &str) -> ActivityOptions {
        ActivityOptions {
            activity_type: kind.into(),
            args: vec![],
            task_queue: None,
            activity_id: None,
            start_to_close_timeout_ms: Some(1000),
            schedule_to_close_timeout_ms: None,
            schedule_to_start_timeout_ms: None,
            heartbeat_timeout_ms: None,
            retry_policy: None,
            cancellation_type: CancellationType::TryCancel,
        }
    }

    fn done(json: &str) -> Outcome {
        Outcome::Completed(json.into())
    }

    #[test]
    fn handles_resolve_in_history_order_and_wait_any_returns_the_first() {
        let mut s = RunState::new(info(), 1);
        let a = s.start_activity(activity("a")).unwrap();
        let b = s.start_activity(activity("b")).unwrap();
        let cmds = s.take_commands();
        assert_eq!(cmds.len(), 2);
        assert!(matches!(&cmds[0], Command::ScheduleActivity { seq, options } if *seq == a && options.activity_id.as_deref() == Some("1")));
        assert_eq!(s.next_event(&[a, b]).unwrap(), None);
        s.apply(Job::ResolveActivity { seq: b, outcome: done("2") });
        s.apply(Job::ResolveActivity { seq: a, outcome: done("1") });
        assert_eq!(s.next_event(&[a, b]).unwrap(), Some(Event::Resolved(Resolution { handle: b, outcome: done("2") })));
        assert_eq!(s.next_event(&[a, b]).unwrap(), Some(Event::Resolved(Resolution { handle: a, outcome: done("1") })));
        // Waiting again on a returned handle gives the same outcome at once.
        assert_eq!(s.next_event(&[a]).unwrap(), Some(Event::Resolved(Resolution { handle: a, outcome: done("1") })));
        assert_eq!(s.poll(b).unwrap(), Some(done("2")));
    }

    #[test]
    fn signals_and_queries_come_before_resolutions_and_cancellation_once() {
        let mut s = RunState::new(info(), 1);
        let t = s.start_timer(5).unwrap();
        s.apply(Job::FireTimer { seq: t });
        s.apply(Job::Signal(Signal { name: "approve".into(), args: vec![] }));
        s.apply(Job::Cancel);
        s.apply(Job::Query(Query { id: "q1".into(), name: "status".into(), args: vec![] }));
        assert!(matches!(s.next_event(&[t]).unwrap(), Some(Event::Query(_))));
        s.respond_query("q1", Ok("\"waiting\"".into())).unwrap();
        assert!(matches!(s.next_event(&[t]).unwrap(), Some(Event::Signal(sig)) if sig.name == "approve"));
        assert_eq!(s.next_event(&[t]).unwrap(), Some(Event::CancelRequested));
        assert!(matches!(s.next_event(&[t]).unwrap(), Some(Event::Resolved(_))));
        assert!(s.is_cancel_requested());
    }

    #[test]
    fn commands_while_answering_a_query_are_refused_and_unanswered_queries_fail() {
        let mut s = RunState::new(info(), 1);
        s.apply(Job::Query(Query { id: "q1".into(), name: "status".into(), args: vec![] }));
        assert!(matches!(s.next_event(&[]).unwrap(), Some(Event::Query(_))));
        assert_eq!(s.start_timer(1), Err(GuestMisuse::CommandDuringQuery("status".into())));
        assert_eq!(s.respond_query("nope", Ok("1".into())), Err(GuestMisuse::UnknownQuery("nope".into())));
        // Waiting again without answering: the host fails the query.
        assert_eq!(s.next_event(&[]).unwrap(), None);
        let cmds = s.take_commands();
        assert!(matches!(&cmds[..], [Command::RespondToQuery { answer: Err(msg), .. }] if msg.contains("did not answer")));
    }

    #[test]
    fn unknown_handles_are_misuse() {
        let mut s = RunState::new(info(), 1);
        assert_eq!(s.next_event(&[42]), Err(GuestMisuse::UnknownHandle(42)));
        assert_eq!(s.poll(7), Err(GuestMisuse::UnknownHandle(7)));
    }

    #[test]
    fn cancelling_a_timer_resolves_it_and_ignores_a_late_fire() {
        let mut s = RunState::new(info(), 1);
        let t = s.start_timer(1000).unwrap();
        s.cancel(t).unwrap();
        s.apply(Job::FireTimer { seq: t });
        assert!(matches!(
            s.next_event(&[t]).unwrap(),
            Some(Event::Resolved(Resolution { outcome: Outcome::Failed(Failure::Cancelled(_)), .. }))
        ));
        let cmds = s.take_commands();
        assert!(matches!(cmds.last(), Some(Command::CancelTimer { .. })));
    }

    #[test]
    fn patches_follow_history_when_replaying() {
        let mut s = RunState::new(info(), 1);
        s.is_replaying = true;
        assert!(!s.patched("v2", false), "an old history without the marker runs old code");
        assert!(!s.patched("v2", false), "decided once");
        let mut s = RunState::new(info(), 1);
        s.is_replaying = true;
        s.apply(Job::NotifyHasPatch { patch_id: "v2".into() });
        assert!(s.patched("v2", false));
        let mut s = RunState::new(info(), 1);
        assert!(s.patched("v2", false), "new executions run new code");
        assert_eq!(s.take_commands(), vec![Command::SetPatchMarker { patch_id: "v2".into(), deprecated: false }]);
    }

    #[test]
    fn randomness_is_a_function_of_the_seed() {
        let mut a = RunState::new(info(), 7);
        let mut b = RunState::new(info(), 7);
        let xs: Vec<u64> = (0..4).map(|_| a.rng.next_u64()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.rng.next_u64()).collect();
        assert_eq!(xs, ys);
        b.apply(Job::UpdateRandomSeed { seed: 8 });
        assert_ne!(a.rng.next_u64(), b.rng.next_u64());
    }

    #[test]
    fn nothing_after_continue_as_new() {
        let mut s = RunState::new(info(), 1);
        s.continue_as_new(ContinueAsNewOptions { workflow_type: None, args: vec![], task_queue: None }).unwrap();
        assert_eq!(s.start_timer(1), Err(GuestMisuse::AfterContinueAsNew));
        let child = ChildWorkflowOptions {
            workflow_type: "c".into(),
            args: vec![],
            workflow_id: None,
            task_queue: None,
            execution_timeout_ms: None,
            run_timeout_ms: None,
            retry_policy: None,
            parent_close_policy: crate::workflow::bindings::ParentClosePolicy::Terminate,
            cancellation_type: CancellationType::WaitCancellationCompleted,
        };
        assert!(s.start_child(child).is_err());
    }
}
