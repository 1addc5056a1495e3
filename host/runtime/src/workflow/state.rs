//! The deterministic heart of a workflow run: what the guest has started,
//! what history has resolved, and which event `wait` returns next.
//!
//! Pure logic, no wasmtime and no Temporal types, so every rule is unit
//! tested here. The host functions ([`super::host`]) call into it while
//! the guest runs; the driver ([`super::WorkflowRun`]) applies activation
//! jobs to it between runs.

use super::bindings::{
    ActivityOptions, ApplicationError, ChildWorkflowOptions, ContinueAsNewOptions, Event, Failure, LocalActivityOptions, MemoField,
    Outcome, Query, Resolution, SearchAttribute, Signal, Update, WorkflowInfo,
};
use std::collections::{HashMap, HashSet, VecDeque};

/// The query Temporal's CLI and UI send for a workflow's user metadata.
pub const METADATA_QUERY: &str = "__temporal_workflow_metadata";

/// A sequence number Temporal's core uses to match commands with results.
pub type Seq = u32;

/// What a handle refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleKind {
    /// A scheduled activity.
    Activity,
    /// A local activity (possibly between attempts, on a backoff timer).
    LocalActivity,
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
    /// Schedule a local activity (`attempt` and `original_schedule_time_ms`
    /// carry on after a backoff timer).
    ScheduleLocalActivity { seq: Seq, options: LocalActivityOptions, attempt: u32, original_schedule_time_ms: Option<u64> },
    /// Ask a local activity to cancel.
    RequestCancelLocalActivity { seq: Seq },
    /// Start a timer.
    StartTimer { seq: Seq, millis: u64, summary: Option<String> },
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
    /// Answer Temporal's `__temporal_workflow_metadata` query.
    RespondWithMetadata { query_id: String, current_details: String },
    /// Accept, reject or complete an update.
    UpdateResponse { protocol_instance_id: String, response: UpdateResponse },
    /// Set or remove search attributes.
    UpsertSearchAttributes { attributes: Vec<SearchAttribute> },
    /// Set or remove memo fields.
    ModifyMemo { fields: Vec<MemoField> },
    /// Complete the workflow with a JSON result.
    CompleteWorkflow { result: String },
    /// Fail the workflow with an application error.
    FailWorkflow { message: String, error_type: String, non_retryable: bool, details: Option<String> },
    /// End as cancelled.
    CancelWorkflow,
    /// Continue as a new run.
    ContinueAsNew { options: ContinueAsNewOptions },
}

/// How the workflow answered an update.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateResponse {
    /// Validated (or not asked to be): the caller waits for completion.
    Accepted,
    /// Refused before acceptance, or failed after it.
    Rejected(ApplicationError),
    /// Done, with a JSON result.
    Completed(String),
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
    /// A local activity's retry must wait `backoff_ms` on a durable timer,
    /// then run attempt `attempt`.
    LocalActivityBackoff { seq: Seq, attempt: u32, backoff_ms: u64, original_schedule_time_ms: Option<u64> },
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
    /// An update arrived (`protocol_instance_id` goes back in the response).
    Update { update: Update, protocol_instance_id: String },
    /// An update whose input could not be read: rejected at once.
    RejectUpdate { protocol_instance_id: String, message: String },
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
    /// `accept-update`, `reject-update` or `complete-update` with an id
    /// that is not in the state the call needs.
    #[error("{call} for update id `{id}`, which is not {expected}")]
    UpdateState {
        /// The context function called.
        call: &'static str,
        /// The update id.
        id: String,
        /// What the update should have been.
        expected: &'static str,
    },
    /// `end-cancelled` without a cancellation request.
    #[error("called end-cancelled, but nobody requested cancellation of this workflow")]
    EndCancelledUnrequested,
}

/// An update the workflow has received, by where it is in its life.
#[derive(Debug, Clone)]
struct OpenUpdate {
    name: String,
    protocol_instance_id: String,
    /// Delivered with `run-validator`: until the guest accepts or rejects
    /// it, the guest is running the update's validator.
    validating: bool,
}

/// An application error the host raises for the caller of an update.
fn rejection(error_type: &str, message: String) -> ApplicationError {
    ApplicationError { message, error_type: error_type.into(), non_retryable: true, details: None }
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

/// A local activity between its attempts.
#[derive(Debug, Clone)]
struct LocalActivityRun {
    options: LocalActivityOptions,
    /// The seq of the attempt or backoff timer now in flight.
    current: Seq,
    /// True while waiting on a backoff timer.
    in_backoff: bool,
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
    /// Updates not yet returned by `wait`.
    updates: VecDeque<(Update, String)>,
    /// Returned by `wait`, neither accepted nor rejected yet.
    unanswered_updates: HashMap<String, OpenUpdate>,
    /// Accepted, not completed yet.
    accepted_updates: HashMap<String, OpenUpdate>,
    /// False for plugins built against `caisson:workflow@0.1.0`, whose
    /// `wait` cannot deliver updates: the host rejects them at once.
    pub updates_supported: bool,
    /// Local activities: the handle the guest holds → its options and the
    /// seq of its current attempt (or backoff timer).
    local_activities: HashMap<u32, LocalActivityRun>,
    /// Seq of a local activity attempt or backoff timer → the guest's handle.
    local_seqs: HashMap<Seq, u32>,
    /// Backoff timer seq → (next attempt, original schedule time).
    pending_local_retries: HashMap<Seq, (u32, Option<u64>)>,
    /// The workflow's current details (`set-current-details`).
    pub current_details: String,
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
            updates: VecDeque::new(),
            unanswered_updates: HashMap::new(),
            accepted_updates: HashMap::new(),
            updates_supported: true,
            local_activities: HashMap::new(),
            local_seqs: HashMap::new(),
            pending_local_retries: HashMap::new(),
            current_details: String::new(),
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
            Job::FireTimer { seq } => match self.local_seqs.get(&seq).copied() {
                Some(handle) => self.retry_local_activity(handle, seq),
                None => self.resolve(seq, Outcome::Completed("null".into())),
            },
            Job::ResolveActivity { seq, outcome } => match self.local_seqs.remove(&seq) {
                Some(handle) => {
                    self.local_activities.remove(&handle);
                    self.resolve(handle, outcome)
                }
                None => self.resolve(seq, outcome),
            },
            Job::LocalActivityBackoff { seq, attempt, backoff_ms, original_schedule_time_ms } => {
                self.back_off_local_activity(seq, attempt, backoff_ms, original_schedule_time_ms)
            }
            Job::ResolveChild { seq, outcome } => self.resolve(seq, outcome),
            Job::ChildStartFailed { seq, failure } => self.resolve(seq, Outcome::Failed(failure)),
            Job::ChildStarted { .. } => {}
            Job::ResolveSignalExternal { seq, failure } => {
                self.resolve(seq, failure.map_or_else(|| Outcome::Completed("null".into()), Outcome::Failed))
            }
            Job::Signal(s) => self.signals.push_back(s),
            // Temporal's built-in metadata query (`temporal workflow
            // metadata`, the UI) is answered by the host from what the
            // workflow set with `set-current-details`: it never reaches the guest.
            Job::Query(q) if q.name == METADATA_QUERY => {
                self.commands.push(Command::RespondWithMetadata { query_id: q.id, current_details: self.current_details.clone() })
            }
            Job::Query(q) => self.queries.push_back(q),
            Job::RejectUpdate { protocol_instance_id, message } => self.commands.push(Command::UpdateResponse {
                protocol_instance_id,
                response: UpdateResponse::Rejected(rejection("InvalidArgument", message)),
            }),
            Job::Update { update, protocol_instance_id } => {
                if self.updates_supported && !self.closed {
                    self.updates.push_back((update, protocol_instance_id));
                } else {
                    let why = if self.closed {
                        format!("the workflow has already returned; update `{}` cannot be handled", update.name)
                    } else {
                        format!(
                            "this workflow's plugin was built against caisson:workflow@0.1.0, which has no updates: \
                             rebuild it against 0.2.0 to handle update `{}`",
                            update.name
                        )
                    };
                    self.commands.push(Command::UpdateResponse {
                        protocol_instance_id,
                        response: UpdateResponse::Rejected(rejection("UpdateNotHandled", why)),
                    });
                }
            }
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
    pub fn start_timer(&mut self, millis: u64, summary: Option<String>) -> Result<u32, GuestMisuse> {
        let seq = self.issue(HandleKind::Timer)?;
        self.commands.push(Command::StartTimer { seq, millis: millis.max(1), summary });
        Ok(seq)
    }

    /// `start-local-activity`. The handle is the seq of the first attempt;
    /// later attempts (after a backoff timer) get seqs of their own, mapped
    /// back to it.
    pub fn start_local_activity(&mut self, mut options: LocalActivityOptions) -> Result<u32, GuestMisuse> {
        let seq = self.issue(HandleKind::LocalActivity)?;
        if options.activity_id.as_deref().is_none_or(str::is_empty) {
            options.activity_id = Some(seq.to_string());
        }
        self.local_activities.insert(seq, LocalActivityRun { options: options.clone(), current: seq, in_backoff: false });
        self.local_seqs.insert(seq, seq);
        self.commands.push(Command::ScheduleLocalActivity { seq, options, attempt: 1, original_schedule_time_ms: None });
        Ok(seq)
    }

    /// Core asked for a backoff: a durable timer, then the next attempt.
    fn back_off_local_activity(&mut self, seq: Seq, attempt: u32, backoff_ms: u64, original_schedule_time_ms: Option<u64>) {
        let Some(handle) = self.local_seqs.remove(&seq) else { return };
        let timer = self.next_seq;
        self.next_seq += 1;
        self.local_seqs.insert(timer, handle);
        if let Some(run) = self.local_activities.get_mut(&handle) {
            run.current = timer;
            run.in_backoff = true;
            self.pending_local_retries.insert(timer, (attempt, original_schedule_time_ms));
        }
        self.commands.push(Command::StartTimer { seq: timer, millis: backoff_ms.max(1), summary: None });
    }

    /// The backoff timer fired: schedule the next attempt.
    fn retry_local_activity(&mut self, handle: u32, timer: Seq) {
        self.local_seqs.remove(&timer);
        let Some((attempt, original_schedule_time_ms)) = self.pending_local_retries.remove(&timer) else { return };
        let Some(run) = self.local_activities.get_mut(&handle) else { return };
        let seq = self.next_seq;
        self.next_seq += 1;
        run.current = seq;
        run.in_backoff = false;
        let options = run.options.clone();
        self.local_seqs.insert(seq, handle);
        self.commands.push(Command::ScheduleLocalActivity { seq, options, attempt, original_schedule_time_ms });
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
            HandleKind::LocalActivity => {
                let Some(run) = self.local_activities.get(&handle).cloned() else { return Ok(()) };
                if run.in_backoff {
                    // Between attempts: cancel the timer and resolve now.
                    self.local_activities.remove(&handle);
                    self.local_seqs.remove(&run.current);
                    self.pending_local_retries.remove(&run.current);
                    self.commands.push(Command::CancelTimer { seq: run.current });
                    self.resolve(handle, Outcome::Failed(Failure::Cancelled("local activity cancelled".into())));
                } else {
                    self.commands.push(Command::RequestCancelLocalActivity { seq: run.current });
                }
            }
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
        // An update must be accepted or rejected in the activation that
        // brought it: one the guest waited past unanswered is rejected.
        self.reject_unanswered_updates();
        if let Some((update, protocol_instance_id)) = self.updates.pop_front() {
            self.unanswered_updates.insert(
                update.id.clone(),
                OpenUpdate {
                    name: update.name.clone(),
                    protocol_instance_id: protocol_instance_id.clone(),
                    validating: update.run_validator,
                },
            );
            return Ok(Some(Event::Update(update)));
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

    /// `accept-update`.
    pub fn accept_update(&mut self, id: &str) -> Result<(), GuestMisuse> {
        let open = self.unanswered_updates.remove(id).ok_or_else(|| GuestMisuse::UpdateState {
            call: "accept-update",
            id: id.to_owned(),
            expected: "a received update awaiting acceptance",
        })?;
        self.commands
            .push(Command::UpdateResponse { protocol_instance_id: open.protocol_instance_id.clone(), response: UpdateResponse::Accepted });
        self.accepted_updates.insert(id.to_owned(), open);
        Ok(())
    }

    /// `reject-update`: refused before acceptance.
    pub fn reject_update(&mut self, id: &str, error: ApplicationError) -> Result<(), GuestMisuse> {
        let open = self.unanswered_updates.remove(id).ok_or_else(|| GuestMisuse::UpdateState {
            call: "reject-update",
            id: id.to_owned(),
            expected: "a received update awaiting acceptance",
        })?;
        self.commands
            .push(Command::UpdateResponse { protocol_instance_id: open.protocol_instance_id, response: UpdateResponse::Rejected(error) });
        Ok(())
    }

    /// `complete-update`: the accepted update's result or error.
    pub fn complete_update(&mut self, id: &str, result: Result<String, ApplicationError>) -> Result<(), GuestMisuse> {
        let open = self.accepted_updates.remove(id).ok_or_else(|| GuestMisuse::UpdateState {
            call: "complete-update",
            id: id.to_owned(),
            expected: "an accepted update",
        })?;
        let response = match result {
            Ok(json) => UpdateResponse::Completed(json),
            Err(error) => UpdateResponse::Rejected(error),
        };
        self.commands.push(Command::UpdateResponse { protocol_instance_id: open.protocol_instance_id, response });
        Ok(())
    }

    /// The guest trapped while validating updates (before accepting or
    /// rejecting them): the answer for this activation is their rejection
    /// alone, naming `cause`. Whatever else the guest commanded in this
    /// activation is dropped with its dead instance: nothing of it reached
    /// history, and the fresh instance that replays the history next does
    /// it again. The validator never runs on replay, so the trap cannot
    /// recur there. None when no update was being validated: then the trap
    /// is the task's failure.
    pub fn reject_updates_of_a_failed_validator(&mut self, cause: &str) -> Option<Vec<Command>> {
        if !self.unanswered_updates.values().any(|u| u.validating) {
            return None;
        }
        let rejections = std::mem::take(&mut self.unanswered_updates)
            .into_values()
            .map(|open| Command::UpdateResponse {
                response: UpdateResponse::Rejected(rejection(
                    "ValidatorFailed",
                    format!("the validator of update `{}` {cause}", open.name),
                )),
                protocol_instance_id: open.protocol_instance_id,
            })
            .collect();
        self.commands.clear();
        Some(rejections)
    }

    fn reject_unanswered_updates(&mut self) {
        for (_, open) in std::mem::take(&mut self.unanswered_updates) {
            let why = format!("the workflow waited without accepting or rejecting update `{}` (no handler for it?)", open.name);
            self.commands.push(Command::UpdateResponse {
                protocol_instance_id: open.protocol_instance_id,
                response: UpdateResponse::Rejected(rejection("UpdateNotHandled", why)),
            });
        }
    }

    /// Updates the guest can no longer answer (it returned): rejected, and
    /// accepted ones failed, so no caller waits forever.
    pub fn reject_remaining_updates(&mut self, why: &str) {
        self.reject_unanswered_updates();
        let undelivered: Vec<(String, String)> = self.updates.drain(..).map(|(u, p)| (u.name, p)).collect();
        let accepted: Vec<(String, String)> = self.accepted_updates.drain().map(|(_, o)| (o.name, o.protocol_instance_id)).collect();
        for (name, protocol_instance_id) in undelivered.into_iter().chain(accepted) {
            self.commands.push(Command::UpdateResponse {
                protocol_instance_id,
                response: UpdateResponse::Rejected(rejection("UpdateNotHandled", format!("{why}; update `{name}` was not completed"))),
            });
        }
    }

    /// `upsert-search-attributes`: recorded in workflow info at once.
    pub fn upsert_search_attributes(&mut self, attributes: Vec<SearchAttribute>) -> Result<(), GuestMisuse> {
        self.check_may_command()?;
        for attribute in &attributes {
            self.info.search_attributes.retain(|a| a.name != attribute.name);
            if attribute.value.is_some() {
                self.info.search_attributes.push(attribute.clone());
            }
        }
        self.commands.push(Command::UpsertSearchAttributes { attributes });
        Ok(())
    }

    /// `upsert-memo`: recorded in workflow info at once.
    pub fn upsert_memo(&mut self, fields: Vec<MemoField>) -> Result<(), GuestMisuse> {
        self.check_may_command()?;
        for field in &fields {
            self.info.memo.retain(|m| m.name != field.name);
            if field.value.is_some() {
                self.info.memo.push(field.clone());
            }
        }
        self.commands.push(Command::ModifyMemo { fields });
        Ok(())
    }

    /// `end-cancelled`: the run ends as cancelled.
    pub fn end_cancelled(&mut self) -> Result<(), GuestMisuse> {
        self.check_may_command()?;
        if !self.cancel_requested {
            return Err(GuestMisuse::EndCancelledUnrequested);
        }
        self.finish(Command::CancelWorkflow);
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
        self.finish(Command::ContinueAsNew { options });
        Ok(())
    }

    /// Adds the terminal command (the workflow function returned, or
    /// continued as new, or ended cancelled). Updates it can no longer
    /// answer are rejected first: the terminal command must come last.
    pub fn finish(&mut self, command: Command) {
        self.reject_remaining_updates("the workflow has ended");
        self.closed = true;
        self.commands.push(command);
    }

    /// The commands issued since the last call, with any query the guest
    /// left unanswered failed.
    pub fn take_commands(&mut self) -> Vec<Command> {
        self.fail_open_queries();
        self.reject_unanswered_updates();
        std::mem::take(&mut self.commands)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::bindings::{CancellationType, WorkflowInfo};

    fn info() -> WorkflowInfo {
        WorkflowInfo { task_queue: "q".into(), run_id: "r".into(), ..WorkflowInfo::first_attempt("t", "wf") }
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
            summary: None,
            priority: None,
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
        let t = s.start_timer(5, None).unwrap();
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
        assert_eq!(s.start_timer(1, None), Err(GuestMisuse::CommandDuringQuery("status".into())));
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
        let t = s.start_timer(1000, None).unwrap();
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
        s.continue_as_new(ContinueAsNewOptions {
            workflow_type: None,
            args: vec![],
            task_queue: None,
            memo: vec![],
            search_attributes: vec![],
        })
        .unwrap();
        assert_eq!(s.start_timer(1, None), Err(GuestMisuse::AfterContinueAsNew));
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
            memo: vec![],
            search_attributes: vec![],
            static_summary: None,
            static_details: None,
            priority: None,
        };
        assert!(s.start_child(child).is_err());
    }

    fn update(id: &str, name: &str) -> Job {
        Job::Update {
            update: Update { id: id.into(), name: name.into(), args: vec![], run_validator: true },
            protocol_instance_id: format!("p-{id}"),
        }
    }

    fn responses(commands: &[Command]) -> Vec<(String, UpdateResponse)> {
        commands
            .iter()
            .filter_map(|c| match c {
                Command::UpdateResponse { protocol_instance_id, response } => Some((protocol_instance_id.clone(), response.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn updates_are_accepted_then_completed_and_unanswered_ones_are_rejected() {
        let mut s = RunState::new(info(), 1);
        s.apply(update("u1", "approve"));
        s.apply(update("u2", "unknown"));
        assert!(matches!(s.next_event(&[]).unwrap(), Some(Event::Update(u)) if u.id == "u1" && u.run_validator));
        s.accept_update("u1").unwrap();
        assert!(matches!(s.next_event(&[]).unwrap(), Some(Event::Update(u)) if u.id == "u2"));
        // Waiting again without answering u2 rejects it, naming it.
        assert_eq!(s.next_event(&[]).unwrap(), None);
        s.complete_update("u1", Ok("\"approved\"".into())).unwrap();
        let answered = responses(&s.take_commands());
        assert_eq!(answered[0], ("p-u1".into(), UpdateResponse::Accepted));
        assert!(matches!(&answered[1], (p, UpdateResponse::Rejected(e)) if p == "p-u2" && e.message.contains("`unknown`")));
        assert_eq!(answered[2], ("p-u1".into(), UpdateResponse::Completed("\"approved\"".into())));
        assert!(matches!(s.complete_update("u1", Ok("1".into())), Err(GuestMisuse::UpdateState { .. })));
    }

    #[test]
    fn updates_for_a_legacy_or_finished_workflow_are_rejected_and_come_before_the_terminal_command() {
        let mut legacy = RunState::new(info(), 1);
        legacy.updates_supported = false;
        legacy.apply(update("u1", "approve"));
        assert!(matches!(&responses(&legacy.take_commands())[0].1, UpdateResponse::Rejected(e) if e.message.contains("0.1.0")));

        let mut s = RunState::new(info(), 1);
        s.apply(update("u1", "approve"));
        assert!(matches!(s.next_event(&[]).unwrap(), Some(Event::Update(_))));
        s.accept_update("u1").unwrap();
        s.apply(update("u2", "approve"));
        s.finish(Command::CompleteWorkflow { result: "null".into() });
        let commands = s.take_commands();
        assert_eq!(commands.last(), Some(&Command::CompleteWorkflow { result: "null".into() }));
        assert_eq!(responses(&commands).iter().filter(|(_, r)| matches!(r, UpdateResponse::Rejected(_))).count(), 2);
    }

    fn local(kind: &str) -> LocalActivityOptions {
        LocalActivityOptions {
            activity_type: kind.into(),
            args: vec![],
            activity_id: None,
            start_to_close_timeout_ms: Some(1000),
            schedule_to_close_timeout_ms: None,
            schedule_to_start_timeout_ms: None,
            retry_policy: None,
            local_retry_threshold_ms: None,
            cancellation_type: CancellationType::TryCancel,
            summary: None,
        }
    }

    #[test]
    fn a_local_activity_backoff_is_a_timer_then_a_new_attempt_resolving_the_same_handle() {
        let mut s = RunState::new(info(), 1);
        let h = s.start_local_activity(local("flaky")).unwrap();
        assert!(matches!(&s.take_commands()[..], [Command::ScheduleLocalActivity { seq, attempt: 1, .. }] if *seq == h));
        s.apply(Job::LocalActivityBackoff { seq: h, attempt: 3, backoff_ms: 90_000, original_schedule_time_ms: Some(5) });
        let timer = match &s.take_commands()[..] {
            [Command::StartTimer { seq, millis: 90_000, .. }] => *seq,
            other => panic!("{other:?}"),
        };
        assert_eq!(s.next_event(&[h]).unwrap(), None);
        s.apply(Job::FireTimer { seq: timer });
        let retry = match &s.take_commands()[..] {
            [Command::ScheduleLocalActivity { seq, attempt: 3, original_schedule_time_ms: Some(5), .. }] => *seq,
            other => panic!("{other:?}"),
        };
        assert_ne!(retry, h);
        s.apply(Job::ResolveActivity { seq: retry, outcome: done("\"ok\"") });
        assert_eq!(s.next_event(&[h]).unwrap(), Some(Event::Resolved(Resolution { handle: h, outcome: done("\"ok\"") })));
    }

    #[test]
    fn upserts_show_in_info_and_end_cancelled_needs_a_request() {
        let mut s = RunState::new(info(), 1);
        let status = |v: &str| SearchAttribute {
            name: "OrderStatus".into(),
            value: Some(crate::workflow::bindings::SearchAttributeValue::Keyword(v.into())),
        };
        s.upsert_search_attributes(vec![status("paid")]).unwrap();
        s.upsert_search_attributes(vec![status("shipped")]).unwrap();
        s.upsert_memo(vec![MemoField { name: "note".into(), value: Some("\"fragile\"".into()) }]).unwrap();
        assert_eq!(s.info.search_attributes, vec![status("shipped")]);
        assert_eq!(s.info.memo.len(), 1);
        s.upsert_memo(vec![MemoField { name: "note".into(), value: None }]).unwrap();
        assert!(s.info.memo.is_empty());
        assert_eq!(s.end_cancelled(), Err(GuestMisuse::EndCancelledUnrequested));
        s.apply(Job::Cancel);
        s.end_cancelled().unwrap();
        assert_eq!(s.take_commands().last(), Some(&Command::CancelWorkflow));
    }

    #[test]
    fn the_metadata_query_is_answered_by_the_host_with_the_current_details() {
        let mut s = RunState::new(info(), 1);
        s.current_details = "**waiting** for approval".into();
        s.apply(Job::Query(Query { id: "m1".into(), name: METADATA_QUERY.into(), args: vec![] }));
        assert_eq!(
            s.take_commands(),
            vec![Command::RespondWithMetadata { query_id: "m1".into(), current_details: "**waiting** for approval".into() }]
        );
        assert_eq!(s.next_event(&[]).unwrap(), None, "the guest never sees it");
    }
}
