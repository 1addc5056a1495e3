//! The workflow runtime: activations in, commands out.
//!
//! Each running workflow is one component instance whose exported
//! function runs on a wasmtime fiber. The guest calls `wait` when it needs
//! history to move on; the host suspends the fiber there and reports the
//! commands issued so far. The next activation's jobs are applied to the
//! run's [`state::RunState`] and the fiber is resumed. This module knows
//! nothing of Temporal's protos: the worker crate's bridge translates.

pub mod bindings;
mod declarations;
mod host;
mod legacy;
pub mod state;

use crate::meter::SharedMeter;
use crate::payload::{self, ArgsError};
use crate::plugin::{CallNowError, EntryPoint, PluginError, PluginSource, call_now, interface_export, typed_exports};
use bindings::WorkflowInfo;
pub use declarations::{HandlerDeclaration, HandlerKind, WorkflowDeclaration};
pub use host::WorkflowHost;
use state::{Command, GuestMisuse, Job, RunState};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use wasmtime::component::types::Type;
use wasmtime::component::{Component, ComponentExportIndex, HasSelf, Instance, InstancePre, Linker, Val};
use wasmtime::{CallHook, Engine, Store, Trap};

/// Fuel per activation when the manifest sets none: about a second of
/// guest computation, far more than deciding the next commands needs.
pub const DEFAULT_FUEL: u64 = 2_000_000_000;
/// Wall-clock backstop per activation, in epoch ticks (see [`crate::engine::EPOCH_TICK`]).
pub const DEFAULT_DEADLINE_TICKS: u64 = 500;

/// Builds the linker for workflows: the workflow context, harmless WASI
/// (stdio, streams, exit) and the replay-safe stand-ins for clocks,
/// randomness, files (none) and sockets (all refused) that virtual mode
/// uses. Strict-mode plugins were refused at load if they import any of
/// the latter, so linking them here gives them nothing.
pub fn workflow_linker(engine: &Engine) -> wasmtime::Result<Linker<WorkflowHost>> {
    let mut linker = Linker::new(engine);
    bindings::Imports::add_to_linker::<_, HasSelf<_>>(&mut linker, |h| h)?;
    bindings::v0_1::Imports::add_to_linker::<_, HasSelf<_>>(&mut linker, |h| h)?;
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    host::link_due_timers(&mut linker)?;
    Ok(linker)
}

/// Export names the host looks for (any patch release of 0.2).
const DYNAMIC_EXPORT: &str = "caisson:workflow/dynamic@0.2.";
const DECLARATIONS_EXPORT: &str = "caisson:workflow/declarations@0.2.";
const QUERIES_EXPORT: &str = "caisson:workflow/queries@";

/// A loaded workflow plugin, ready to instantiate runs in microseconds.
pub struct WorkflowPlugin {
    /// Plugin name (file stem).
    pub name: Arc<str>,
    /// SHA-256 of the component: its version.
    pub sha256: String,
    pre: InstancePre<WorkflowHost>,
    types: BTreeMap<String, EntryPoint>,
    /// What the plugin's `declarations` export said, if it has one.
    declarations: Vec<WorkflowDeclaration>,
    query_handler: Option<ComponentExportIndex>,
    /// Built against `caisson:workflow@0.1.0` (no updates; `CancelledError`
    /// ends a cancelled run).
    legacy: bool,
    unknown_fields: payload::UnknownFields,
    fuel: u64,
    deadline_ticks: u64,
    memory_mb: Option<u64>,
    /// How its running workflows meet a new version of the plugin set
    /// (its `versioning` setting; the worker reports it to Temporal).
    pub versioning: crate::settings::Versioning,
    /// Where this plugin's task, fuel and instantiation figures go.
    pub meters: SharedMeter,
    /// The worker-wide budget each run's memory is reserved from.
    pub memory_budget: crate::memory_budget::MemoryBudget,
}

impl std::fmt::Debug for WorkflowPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowPlugin").field("name", &self.name).field("types", &self.types.keys()).finish()
    }
}

impl WorkflowPlugin {
    /// Pre-links a compiled workflow component and, if it exports
    /// `declarations`, asks it what it declares (in an instance of its
    /// own, bounded like an activation).
    pub fn new(source: &PluginSource, component: &Component, sha256: String, linker: &Linker<WorkflowHost>) -> Result<Self, PluginError> {
        if let Some(refusal) = source.refusal() {
            return Err(refusal);
        }
        let engine = linker.engine();
        let refuse = |message: String| PluginError::Refused { path: source.path.clone(), message };
        let pre = linker.instantiate_pre(component).map_err(|e| refuse(format!("{e:#}")))?;
        let ty = component.component_type();
        let query_handler = interface_export(component, engine, QUERIES_EXPORT, "handle");
        let legacy = ty.imports(engine).any(|(name, _)| name.starts_with("caisson:workflow/context@0.1."));
        let mut plugin = WorkflowPlugin {
            name: source.name.as_str().into(),
            sha256,
            pre,
            types: typed_exports(component, engine).into_iter().map(|(name, t)| (name, EntryPoint::Typed(t))).collect(),
            declarations: Vec::new(),
            query_handler,
            legacy,
            unknown_fields: if source.settings.strict_payloads { payload::UnknownFields::Refuse } else { payload::UnknownFields::Ignore },
            meters: crate::meter::unmetered(),
            memory_budget: crate::memory_budget::MemoryBudget::unlimited(),
            memory_mb: source.settings.memory_mb,
            versioning: source.settings.versioning.unwrap_or_default(),
            fuel: source.settings.fuel.unwrap_or(DEFAULT_FUEL),
            deadline_ticks: source.settings.timeout.map_or(DEFAULT_DEADLINE_TICKS, |t| {
                u64::try_from(t.as_millis() / crate::engine::EPOCH_TICK.as_millis()).unwrap_or(u64::MAX).max(1)
            }),
        };
        let dynamic = interface_export(component, engine, DYNAMIC_EXPORT, "run");
        let declare = interface_export(component, engine, DECLARATIONS_EXPORT, "declare");
        if let Some(declare) = declare {
            plugin.declarations =
                plugin.declare(declare).map_err(|e| refuse(format!("its `caisson:workflow/declarations` export: {e}")))?;
        }
        match (dynamic, declare) {
            (Some(run), Some(_)) => {
                for d in &plugin.declarations {
                    if plugin.types.contains_key(&d.name) {
                        return Err(refuse(format!("workflow type `{}` is both an exported function and declared for `dynamic`", d.name)));
                    }
                }
                let declared: Vec<String> = plugin.declarations.iter().map(|d| d.name.clone()).collect();
                plugin.types.extend(declared.into_iter().map(|name| (name, EntryPoint::Dynamic(run))));
            }
            (Some(_), None) => {
                return Err(refuse(
                    "it exports caisson:workflow/dynamic but not caisson:workflow/declarations, so its workflow types cannot be known. \
                     Fix: build it against the world caisson:workflow/dynamic-workflows"
                        .into(),
                ));
            }
            (None, _) => {}
        }
        Ok(plugin)
    }

    /// Calls `declarations.declare` in a throw-away instance.
    fn declare(&self, export: ComponentExportIndex) -> Result<Vec<WorkflowDeclaration>, String> {
        let info = WorkflowInfo::first_attempt("", &format!("(loading {})", self.name));
        let state = Arc::new(Mutex::new(RunState::new(info, 0)));
        let mut store = self.store(state).map_err(|e| format!("{e:#}"))?;
        let results = call_now(&mut store, &self.pre, export, &[], 1).map_err(|e| match e {
            CallNowError::Trapped(e) => describe_trap(&e, self.fuel) + &store.data().guest_error_suffix(),
            CallNowError::Blocked => "`declare` blocked (it may not wait on anything)".into(),
        })?;
        declarations::from_val(&results[0])
    }

    /// A store for one instance of this plugin: its fuel per activation,
    /// its memory limit within the worker's budget, and the wall-clock
    /// backstop counted from the start of each activation.
    fn store(&self, state: Arc<Mutex<RunState>>) -> wasmtime::Result<Store<WorkflowHost>> {
        let mut store = Store::new(self.pre.engine(), WorkflowHost::new(state, self.name.clone()));
        store.set_fuel(self.fuel)?;
        store.data_mut().limits =
            crate::memory_budget::BudgetedLimits::new(self.memory_mb.map(crate::settings::mib_to_bytes), self.memory_budget.clone());
        store.limiter(|host| &mut host.limits);
        // The wall-clock backstop counts from the start of the activation,
        // not from the last deadline: a workflow suspended in `wait` for a
        // week is not late when it resumes.
        let budget = crate::engine::EPOCH_TICK.saturating_mul(u32::try_from(self.deadline_ticks).unwrap_or(u32::MAX));
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |store| {
            if store.data().activation_started.elapsed() > budget {
                Err(Trap::Interrupt.into())
            } else {
                Ok(wasmtime::UpdateDeadline::Continue(1))
            }
        });
        Ok(store)
    }

    /// What the plugin declared through its `declarations` export (empty
    /// without one).
    pub fn declarations(&self) -> &[WorkflowDeclaration] {
        &self.declarations
    }

    /// True when its workflow types run through the `dynamic` export.
    pub fn is_dynamic(&self) -> bool {
        self.types.values().any(|e| matches!(e, EntryPoint::Dynamic(_)))
    }

    /// The workflow types this plugin exports.
    pub fn workflow_types(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }

    /// The `caisson:workflow` version the plugin was built against.
    pub fn wit_version(&self) -> &'static str {
        if self.legacy { "0.1.0" } else { "0.2.0" }
    }
}

/// An activation in Caisson's terms.
#[derive(Debug, Clone, Default)]
pub struct Activation {
    /// Workflow time, ms since the epoch.
    pub now_ms: u64,
    /// True while replaying history.
    pub is_replaying: bool,
    /// What happened, in core's order.
    pub jobs: Vec<Job>,
}

/// Why a workflow task failed (the workflow itself goes on; Temporal
/// retries the task). Always names the plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TaskFailure {
    /// One line naming the plugin and the cause.
    pub message: String,
    /// What the guest printed or logged about the error (a traceback), for
    /// the failure's stack trace in Temporal.
    pub stack_trace: Option<String>,
}

/// What a run started with.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// The workflow type (export name).
    pub workflow_type: String,
    /// Arguments as JSON.
    pub args: Vec<serde_json::Value>,
    /// Facts about the run.
    pub info: WorkflowInfo,
    /// Temporal's randomness seed.
    pub randomness_seed: u64,
}

type MainCall = Pin<Box<dyn Future<Output = (Store<WorkflowHost>, wasmtime::Result<(Instance, Vec<Val>)>)> + Send>>;

enum Phase {
    /// The workflow function is running (suspended in `wait` between activations).
    Running(MainCall),
    /// The workflow function returned; the instance answers late queries.
    Returned { store: Store<WorkflowHost>, instance: Instance },
    /// Trapped or closed: nothing more runs in this instance.
    Dead,
}

/// One running workflow: its instance and its state.
pub struct WorkflowRun {
    plugin: Arc<WorkflowPlugin>,
    state: Arc<Mutex<RunState>>,
    phase: Phase,
    workflow_type: EntryPoint,
    /// Fuel left at the guest's last host call (so, in `wait`): what the
    /// activation consumed is the budget minus this.
    fuel_left: Arc<AtomicU64>,
    /// Nanoseconds the instantiation took, once; taken by the first activation.
    instantiation_ns: Arc<AtomicU64>,
}

impl std::fmt::Debug for WorkflowRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowRun").field("plugin", &self.plugin.name).finish()
    }
}

impl WorkflowRun {
    /// Prepares a run; the guest starts on the first [`WorkflowRun::activate`].
    pub fn start(plugin: Arc<WorkflowPlugin>, request: StartRequest) -> Result<Self, TaskFailure> {
        let fail = |message: String| TaskFailure { message: format!("plugin {}: {message}", plugin.name), stack_trace: None };
        let Some(wt) = plugin.types.get(&request.workflow_type).cloned() else {
            let known: Vec<&str> = plugin.workflow_types().collect();
            return Err(fail(format!("no workflow type `{}` (it exports: {})", request.workflow_type, known.join(", "))));
        };
        let params = wt
            .params(&request.workflow_type, &request.args, plugin.unknown_fields)
            .map_err(|e: ArgsError| fail(format!("workflow `{}`: {e}", request.workflow_type)))?;
        let mut run_state = RunState::new(request.info, request.randomness_seed);
        run_state.updates_supported = !plugin.legacy;
        let state = Arc::new(Mutex::new(run_state));
        let fuel = plugin.fuel;
        let mut store = plugin.store(state.clone()).map_err(|e| fail(format!("{e:#}")))?;
        // Each time `wait` returns, the guest starts on a new activation:
        // give it a fresh fuel budget.
        let fuel_left = Arc::new(AtomicU64::new(fuel));
        let left = fuel_left.clone();
        store.call_hook(move |mut store, hook| {
            match hook {
                CallHook::CallingHost => left.store(store.get_fuel()?, Ordering::Relaxed),
                CallHook::ReturningFromHost if store.data().refuel => {
                    store.data_mut().refuel = false;
                    store.set_fuel(fuel)?;
                }
                _ => {}
            }
            Ok(())
        });
        let pre = plugin.pre.clone();
        let export = wt.export();
        let results_len = wt.results_len();
        let instantiation_ns = Arc::new(AtomicU64::new(0));
        let instantiated = instantiation_ns.clone();
        let main: MainCall = Box::pin(async move {
            let outcome = async {
                let began = std::time::Instant::now();
                let instance = pre.instantiate_async(&mut store).await?;
                instantiated.store(began.elapsed().as_nanos().max(1) as u64, Ordering::Relaxed);
                let func = instance
                    .get_func(&mut store, export)
                    .ok_or_else(|| wasmtime::format_err!("the export vanished after instantiation"))?;
                let mut results = vec![Val::Bool(false); results_len];
                func.call_async(&mut store, &params, &mut results).await?;
                Ok((instance, results))
            }
            .await;
            (store, outcome)
        });
        Ok(WorkflowRun { plugin, state, phase: Phase::Running(main), workflow_type: wt, fuel_left, instantiation_ns })
    }

    /// True once the instance has trapped: it can run nothing more, and
    /// the worker must have core evict the run (its history then replays
    /// into a fresh instance) even if this activation completed.
    pub fn is_dead(&self) -> bool {
        matches!(self.phase, Phase::Dead)
    }

    /// The plugin running this workflow.
    pub fn plugin(&self) -> &Arc<WorkflowPlugin> {
        &self.plugin
    }

    /// The workflow id of this run.
    pub fn workflow_id(&self) -> String {
        self.lock().info.workflow_id.clone()
    }

    /// Applies an activation and runs the guest until it waits or returns.
    /// Returns the commands for Temporal, or a task failure.
    pub fn activate(&mut self, activation: Activation) -> Result<Vec<Command>, TaskFailure> {
        let outcome = self.run_activation(activation);
        let meters = &self.plugin.meters;
        let instantiation = self.instantiation_ns.swap(0, Ordering::Relaxed);
        if instantiation > 0 {
            meters.instantiated(std::time::Duration::from_nanos(instantiation));
        }
        let left = self.fuel_left.swap(self.plugin.fuel, Ordering::Relaxed);
        meters.workflow_task(outcome.is_err(), self.plugin.fuel.saturating_sub(left));
        outcome
    }

    fn run_activation(&mut self, activation: Activation) -> Result<Vec<Command>, TaskFailure> {
        let query_only = !activation.jobs.is_empty() && activation.jobs.iter().all(|j| matches!(j, Job::Query(_)));
        {
            let mut state = self.lock();
            state.now_ms = activation.now_ms;
            state.is_replaying = activation.is_replaying;
            for job in activation.jobs {
                state.apply(job);
            }
        }
        if let Phase::Running(main) = &mut self.phase {
            match main.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Pending => {
                    if !self.lock().waiting {
                        self.phase = Phase::Dead;
                        return Err(self.fail(
                            "the workflow blocked outside `wait` (on a WASI clock, stream or socket?); \
                             use context timers and activities instead"
                                .into(),
                        ));
                    }
                }
                Poll::Ready((store, Ok((instance, results)))) => {
                    let command = match self.completion(results) {
                        Ok(command) => command,
                        Err(message) => {
                            self.phase = Phase::Dead;
                            return Err(self.fail(message));
                        }
                    };
                    self.lock().finish(command);
                    self.phase = Phase::Returned { store, instance };
                }
                Poll::Ready((store, Err(e))) => {
                    self.phase = Phase::Dead;
                    let cause = describe_trap(&e, self.plugin.fuel) + &store.data().guest_error_suffix();
                    let rejected = self.lock().reject_updates_of_a_failed_validator(&cause);
                    if let Some(rejections) = rejected {
                        // Only the update fails; the worker evicts this
                        // dead instance (see `is_dead`).
                        tracing::warn!(plugin = &*self.plugin.name, workflow_id = %self.workflow_id(), "update rejected: its validator {cause}");
                        return Ok(rejections);
                    }
                    let mut failure = self.fail(cause);
                    failure.stack_trace = store.data().guest_error_output();
                    return Err(failure);
                }
            }
        }
        let late_queries = self.lock().take_undelivered_queries();
        for query in late_queries {
            let answer = self.answer_late_query(&query);
            let mut state = self.lock();
            state.open_queries_push(query);
            state.respond_query_unchecked(answer);
        }
        let commands = self.lock().take_commands();
        if query_only && commands.iter().any(|c| !matches!(c, Command::RespondToQuery { .. } | Command::RespondWithMetadata { .. })) {
            return Err(self.fail("changed workflow state while answering a query".into()));
        }
        Ok(commands)
    }

    /// Answers a query that arrived after the workflow function returned,
    /// through the plugin's `caisson:workflow/queries` export.
    fn answer_late_query(&mut self, query: &bindings::Query) -> Result<String, String> {
        let Phase::Returned { store, instance } = &mut self.phase else {
            return Err(format!("workflow of plugin {} is not running; query `{}` cannot be answered", self.plugin.name, query.name));
        };
        let Some(index) = &self.plugin.query_handler else {
            return Err(format!(
                "the workflow has returned and plugin {} exports no caisson:workflow/queries handler for query `{}`",
                self.plugin.name, query.name
            ));
        };
        let Some(func) = instance.get_func(&mut *store, index) else {
            return Err("query handler export missing".into());
        };
        store.data_mut().activation_started = std::time::Instant::now();
        if let Err(e) = store.set_fuel(self.plugin.fuel) {
            return Err(format!("{e:#}"));
        }
        let params = [Val::String(query.name.clone()), Val::List(query.args.iter().map(|a| Val::String(a.clone())).collect())];
        let mut results = [Val::Bool(false)];
        let polled = {
            let mut call = std::pin::pin!(func.call_async(&mut *store, &params, &mut results));
            call.as_mut().poll(&mut Context::from_waker(Waker::noop()))
        };
        match polled {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => {
                return Err(format!("query handler of plugin {} failed: {}", self.plugin.name, describe_trap(&e, self.plugin.fuel)));
            }
            Poll::Pending => {
                return Err(format!("query handler of plugin {} blocked", self.plugin.name));
            }
        }
        match &results[0] {
            Val::Result(Ok(Some(v))) => match &**v {
                Val::String(json) => Ok(json.clone()),
                other => Ok(payload::val_to_json(other).to_string()),
            },
            Val::Result(Err(Some(e))) => match &**e {
                Val::String(msg) => Err(msg.clone()),
                other => Err(payload::val_to_json(other).to_string()),
            },
            other => Err(format!("query handler returned {other:?}")),
        }
    }

    /// The command that closes the run, from the workflow function's
    /// result; an error when a dynamic entry returned text that is not JSON.
    fn completion(&self, results: Vec<Val>) -> Result<Command, String> {
        let Some(result) = results.into_iter().next() else {
            return Ok(Command::CompleteWorkflow { result: "null".into() });
        };
        let typed_result = match &self.workflow_type {
            EntryPoint::Typed(t) => t.result.as_ref(),
            EntryPoint::Dynamic(_) => None,
        };
        Ok(match (result, typed_result) {
            (Val::Result(Ok(Some(v))), None) if matches!(self.workflow_type, EntryPoint::Dynamic(_)) => match *v {
                Val::String(text) => Command::CompleteWorkflow { result: crate::plugin::dynamic_json(&text)?.to_string() },
                other => Command::CompleteWorkflow { result: payload::val_to_json(&other).to_string() },
            },
            (Val::Result(Ok(v)), Some(Type::Result(_))) => {
                Command::CompleteWorkflow { result: v.map_or(serde_json::Value::Null, |v| payload::val_to_json(&v)).to_string() }
            }
            (Val::Result(Err(e)), Some(Type::Result(_))) => self.failure(e.as_deref()),
            (Val::Result(Err(e)), None) if matches!(self.workflow_type, EntryPoint::Dynamic(_)) => self.failure(e.as_deref()),
            (v, _) => Command::CompleteWorkflow { result: payload::val_to_json(&v).to_string() },
        })
    }

    /// The command for a workflow function that returned an error.
    fn failure(&self, value: Option<&Val>) -> Command {
        let error = application_error(value);
        // Plugins of caisson:workflow@0.1.0 end cancelled this way;
        // 0.2.0 has `end-cancelled`.
        if self.plugin.legacy && self.lock().is_cancel_requested() && error.error_type == "CancelledError" {
            Command::CancelWorkflow
        } else {
            Command::FailWorkflow {
                message: error.message,
                error_type: error.error_type,
                non_retryable: error.non_retryable,
                details: error.details,
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, message: String) -> TaskFailure {
        let wf = self.lock().info.workflow_id.clone();
        TaskFailure { message: format!("plugin {} (workflow {wf}): {message}", self.plugin.name), stack_trace: None }
    }
}

/// An application error read from whatever error value a workflow
/// returned: the `application-error` record, any record with a
/// `message`, a string, or anything else as JSON.
pub fn application_error(value: Option<&Val>) -> bindings::ApplicationError {
    let mut error =
        bindings::ApplicationError { message: String::new(), error_type: "WorkflowError".into(), non_retryable: false, details: None };
    match value {
        Some(Val::Record(fields)) if fields.iter().any(|(k, _)| k == "message") => {
            for (k, v) in fields {
                match (k.as_str(), v) {
                    ("message", Val::String(s)) => error.message = s.clone(),
                    ("error-type", Val::String(s)) if !s.is_empty() => error.error_type = s.clone(),
                    ("non-retryable", Val::Bool(b)) => error.non_retryable = *b,
                    ("details", Val::Option(Some(d))) => {
                        error.details = Some(match &**d {
                            Val::String(s) => s.clone(),
                            other => payload::val_to_json(other).to_string(),
                        })
                    }
                    _ => {}
                }
            }
        }
        Some(Val::String(s)) => error.message = s.clone(),
        Some(Val::Enum(s)) | Some(Val::Variant(s, None)) => {
            error.message = s.clone();
            error.error_type = s.clone();
        }
        Some(other) => error.message = payload::val_to_json(other).to_string(),
        None => error.message = "the workflow returned an error".into(),
    }
    error
}

/// One line saying why a guest stopped.
pub fn describe_trap(e: &wasmtime::Error, fuel: u64) -> String {
    if let Some(misuse) = e.downcast_ref::<GuestMisuse>() {
        return format!("misused the workflow context: {misuse}");
    }
    if let Some(exceeded) = e.downcast_ref::<crate::memory_budget::MemoryLimitExceeded>() {
        return exceeded.to_string();
    }
    if let Some(exhausted) = e.downcast_ref::<crate::memory_budget::MemoryBudgetExhausted>() {
        return format!("failed: {exhausted}");
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => format!(
            "ran out of fuel ({fuel} units in one activation): an infinite loop? Raise `fuel` in the plugin's manifest if the work is real"
        ),
        Some(Trap::Interrupt) => "ran past its wall-clock deadline for one activation (an infinite loop?)".into(),
        Some(Trap::StackOverflow) => "overflowed its stack (unbounded recursion?)".into(),
        Some(Trap::UnreachableCodeReached) => format!("panicked (wasm `unreachable` executed{})", innermost_frame(e)),
        Some(trap) => format!("trapped: {trap}{}", innermost_frame(e)),
        None => format!("failed: {}", e.root_cause()),
    }
}

/// ` in FUNCTION`, from the wasm backtrace, when there is one.
fn innermost_frame(e: &wasmtime::Error) -> String {
    e.downcast_ref::<wasmtime::WasmBacktrace>()
        .and_then(|bt| bt.frames().iter().find_map(|f| f.func_name().map(str::to_owned)))
        .map(|name| format!(" in {name}"))
        .unwrap_or_default()
}
