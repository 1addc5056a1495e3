//! The workflow context as host functions, and the replay-safe WASI
//! stand-ins of the virtual determinism mode.

use super::bindings::{self, Event, LogLevel, Outcome, caisson::workflow::context};
use super::state::RunState;
use crate::guest_log::{ErrorOutput, LineLog};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The store data of a workflow instance.
pub struct WorkflowHost {
    /// Shared with the driver, which applies jobs while the guest is suspended.
    pub(crate) run: Arc<Mutex<RunState>>,
    /// Plugin name, for log lines.
    pub(crate) plugin: Arc<str>,
    /// Set when `wait` returns: the driver's call hook then refills fuel,
    /// so the budget is per activation, not per run.
    pub(crate) refuel: bool,
    /// When the guest last started running (an activation or a query):
    /// the wall-clock deadline counts from here.
    pub(crate) activation_started: std::time::Instant,
    /// Linear-memory ceiling (the plugin's `memory_mb`) and the worker's
    /// memory budget.
    pub(crate) limits: crate::memory_budget::BudgetedLimits,
    /// The guest's last words about an error, for task failures.
    pub(crate) errors: ErrorOutput,
    wasi: Option<WasiCtx>,
    table: ResourceTable,
}

impl WorkflowHost {
    /// Store data for a run. Its WASI context (virtual mode only: clocks
    /// on workflow time, randomness from the run's seeded generator) is
    /// built on the guest's first WASI call, so a strict-mode run, which
    /// makes none, does not pay for it.
    pub fn new(run: Arc<Mutex<RunState>>, plugin: Arc<str>) -> Self {
        WorkflowHost {
            run,
            plugin,
            refuel: false,
            activation_started: std::time::Instant::now(),
            limits: crate::memory_budget::BudgetedLimits::new(None, crate::memory_budget::MemoryBudget::unlimited()),
            errors: ErrorOutput::default(),
            wasi: None,
            table: ResourceTable::new(),
        }
    }

    /// `; its last error output: ...` for a failure message, or nothing.
    pub(crate) fn guest_error_suffix(&self) -> String {
        self.errors.suffix()
    }

    /// Everything the guest said about its error (a traceback), if anything.
    pub(crate) fn guest_error_output(&self) -> Option<String> {
        self.errors.text()
    }

    fn virtual_wasi(run: &Arc<Mutex<RunState>>, plugin: &Arc<str>, errors: &ErrorOutput) -> WasiCtx {
        let mut wasi = WasiCtx::builder();
        wasi.wall_clock(WorkflowClock(run.clone()))
            .monotonic_clock(WorkflowClock(run.clone()))
            .secure_random(WorkflowRandom(run.clone()))
            .insecure_random(WorkflowRandom(run.clone()))
            .insecure_random_seed(0)
            .stdout(replay_aware_log(run, plugin, LogLevel::Info, None))
            .stderr(replay_aware_log(run, plugin, LogLevel::Warn, Some(errors.clone())));
        wasi.build()
    }
}

impl WasiView for WorkflowHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let (run, plugin, errors) = (&self.run, &self.plugin, &self.errors);
        let ctx = self.wasi.get_or_insert_with(|| Self::virtual_wasi(run, plugin, errors));
        WasiCtxView { ctx, table: &mut self.table }
    }
}

impl bindings::caisson::workflow::types::Host for WorkflowHost {}

impl context::Host for WorkflowHost {
    fn start_activity(&mut self, options: bindings::ActivityOptions) -> wasmtime::Result<u32> {
        Ok(self.state().start_activity(options)?)
    }

    fn start_local_activity(&mut self, options: bindings::LocalActivityOptions) -> wasmtime::Result<u32> {
        Ok(self.state().start_local_activity(options)?)
    }

    fn start_timer(&mut self, duration: u64, summary: Option<String>) -> wasmtime::Result<u32> {
        Ok(self.state().start_timer(duration, summary)?)
    }

    fn start_child_workflow(&mut self, options: bindings::ChildWorkflowOptions) -> wasmtime::Result<u32> {
        Ok(self.state().start_child(options)?)
    }

    fn signal_external_workflow(&mut self, workflow_id: String, signal_name: String, args: Vec<String>) -> wasmtime::Result<u32> {
        Ok(self.state().signal_external(workflow_id, signal_name, args)?)
    }

    fn cancel(&mut self, handle: u32) -> wasmtime::Result<()> {
        Ok(self.state().cancel(handle)?)
    }

    async fn wait(&mut self, handles: Vec<u32>) -> wasmtime::Result<Event> {
        self.wait_event(handles).await
    }

    fn accept_update(&mut self, id: String) -> wasmtime::Result<()> {
        Ok(self.state().accept_update(&id)?)
    }

    fn reject_update(&mut self, id: String, error: bindings::ApplicationError) -> wasmtime::Result<()> {
        Ok(self.state().reject_update(&id, error)?)
    }

    fn complete_update(&mut self, id: String, result: Result<String, bindings::ApplicationError>) -> wasmtime::Result<()> {
        Ok(self.state().complete_update(&id, result)?)
    }

    fn upsert_search_attributes(&mut self, attributes: Vec<bindings::SearchAttribute>) -> wasmtime::Result<()> {
        Ok(self.state().upsert_search_attributes(attributes)?)
    }

    fn upsert_memo(&mut self, fields: Vec<bindings::MemoField>) -> wasmtime::Result<()> {
        Ok(self.state().upsert_memo(fields)?)
    }

    fn set_current_details(&mut self, details: String) -> wasmtime::Result<()> {
        self.state().current_details = details;
        Ok(())
    }

    async fn end_cancelled(&mut self) -> wasmtime::Result<()> {
        {
            let mut state = self.state();
            state.end_cancelled()?;
            state.waiting = true;
        }
        // Never returns: the run is over, and the driver drops the instance.
        std::future::pending::<()>().await;
        Ok(())
    }

    fn poll(&mut self, handle: u32) -> wasmtime::Result<Option<Outcome>> {
        Ok(self.state().poll(handle)?)
    }

    fn respond_query(&mut self, id: String, answer: Result<String, String>) -> wasmtime::Result<()> {
        Ok(self.state().respond_query(&id, answer)?)
    }

    fn is_cancel_requested(&mut self) -> wasmtime::Result<bool> {
        Ok(self.state().is_cancel_requested())
    }

    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(self.state().now_ms)
    }

    fn random_u64(&mut self) -> wasmtime::Result<u64> {
        Ok(self.state().rng.next_u64())
    }

    fn patched(&mut self, patch_id: String) -> wasmtime::Result<bool> {
        Ok(self.state().patched(&patch_id, false))
    }

    fn deprecate_patch(&mut self, patch_id: String) -> wasmtime::Result<()> {
        self.state().patched(&patch_id, true);
        Ok(())
    }

    fn info(&mut self) -> wasmtime::Result<bindings::WorkflowInfo> {
        Ok(self.state().info.clone())
    }

    fn is_replaying(&mut self) -> wasmtime::Result<bool> {
        Ok(self.state().is_replaying)
    }

    fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        self.log_message(level, &message);
        Ok(())
    }

    async fn continue_as_new(&mut self, options: bindings::ContinueAsNewOptions) -> wasmtime::Result<()> {
        self.end_with_continue_as_new(options).await
    }
}

impl WorkflowHost {
    /// `wait`, for every WIT version.
    pub(crate) async fn wait_event(&mut self, handles: Vec<u32>) -> wasmtime::Result<Event> {
        let run = self.run.clone();
        // Pending suspends the guest's fiber; the driver polls again after
        // it has applied the next activation's jobs.
        let event = std::future::poll_fn(|_| {
            let mut state = run.lock().unwrap_or_else(|e| e.into_inner());
            let next = state.next_event(&handles);
            state.waiting = matches!(next, Ok(None));
            match next {
                Ok(Some(event)) => Poll::Ready(Ok(event)),
                Ok(None) => Poll::Pending,
                Err(misuse) => Poll::Ready(Err(misuse)),
            }
        })
        .await?;
        self.refuel = true;
        self.activation_started = std::time::Instant::now();
        Ok(event)
    }

    /// `log`, for every WIT version: dropped while replaying.
    pub(crate) fn log_message(&self, level: LogLevel, message: &str) {
        if level == LogLevel::Error {
            self.errors.error_logged(message);
        }
        let state = self.state();
        if !state.is_replaying {
            log_line(level, &self.plugin, &state.info.workflow_id, message);
        }
    }

    /// `continue-as-new`, for every WIT version. Never returns.
    pub(crate) async fn end_with_continue_as_new(&mut self, options: bindings::ContinueAsNewOptions) -> wasmtime::Result<()> {
        {
            let mut state = self.state();
            state.continue_as_new(options)?;
            state.waiting = true;
        }
        // Never returns: the run is over, and the driver drops the instance.
        std::future::pending::<()>().await;
        Ok(())
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, RunState> {
        // A poisoned lock means a host panic mid-call; the state is still
        // the best information there is.
        self.run.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Guest output as log lines, dropped while replaying (but still
/// recorded in `errors`, for a failure report, when given).
fn replay_aware_log(run: &Arc<Mutex<RunState>>, plugin: &Arc<str>, level: LogLevel, errors: Option<ErrorOutput>) -> LineLog {
    let (run, plugin) = (run.clone(), plugin.clone());
    LineLog::new(Arc::new(move |line: &str| {
        if let Some(errors) = &errors {
            errors.stderr_line(line);
        }
        let state = run.lock().unwrap_or_else(|e| e.into_inner());
        if !state.is_replaying {
            log_line(level, &plugin, &state.info.workflow_id, line);
        }
    }))
}

/// Emits one guest log line at its level.
pub(crate) fn log_line(level: LogLevel, plugin: &str, workflow_id: &str, message: &str) {
    match level {
        LogLevel::Trace => tracing::trace!(target: "workflow", plugin, workflow_id, "{message}"),
        LogLevel::Debug => tracing::debug!(target: "workflow", plugin, workflow_id, "{message}"),
        LogLevel::Info => tracing::info!(target: "workflow", plugin, workflow_id, "{message}"),
        LogLevel::Warn => tracing::warn!(target: "workflow", plugin, workflow_id, "{message}"),
        LogLevel::Error => tracing::error!(target: "workflow", plugin, workflow_id, "{message}"),
    }
}

/// Makes `wasi:clocks/monotonic-clock`'s timers due at once in
/// workflows. Workflow time stands still within an activation (it is the
/// time history recorded for the task), so a timer on it would never
/// fire; and a guest may block only in `wait`. A JavaScript engine's event
/// loop (`setTimeout(f, 0)`, promise jobs run between timer polls) or
/// Python's `time.sleep` thus run on without waiting, and durable waits
/// go through the context's timers, as they must.
pub(crate) fn link_due_timers(linker: &mut wasmtime::component::Linker<WorkflowHost>) -> wasmtime::Result<()> {
    use wasmtime::StoreContextMut;
    use wasmtime::component::Resource;
    use wasmtime_wasi::p2::DynPollable;
    fn due(mut store: StoreContextMut<'_, WorkflowHost>) -> wasmtime::Result<(Resource<DynPollable>,)> {
        let table = &mut store.data_mut().table;
        let timer = table.push(DueTimer)?;
        Ok((wasmtime_wasi::p2::subscribe(table, timer)?,))
    }
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap("subscribe-duration", |store: StoreContextMut<'_, WorkflowHost>, (_,): (u64,)| due(store))?;
    clock.func_wrap("subscribe-instant", |store: StoreContextMut<'_, WorkflowHost>, (_,): (u64,)| due(store))?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The monotonic clock interface as wasmtime-wasi defines it (imports of
/// earlier 0.2 releases resolve to it).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// A timer that is already due.
struct DueTimer;

#[wasmtime_wasi::async_trait]
impl wasmtime_wasi::p2::Pollable for DueTimer {
    async fn ready(&mut self) {}
}

/// `wasi:clocks` in virtual mode: workflow time from the activation.
struct WorkflowClock(Arc<Mutex<RunState>>);

impl WorkflowClock {
    fn now_ms(&self) -> u64 {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).now_ms
    }
}

impl wasmtime_wasi::HostWallClock for WorkflowClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        Duration::from_millis(self.now_ms())
    }
}

impl wasmtime_wasi::HostMonotonicClock for WorkflowClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }
    fn now(&self) -> u64 {
        self.now_ms().saturating_mul(1_000_000)
    }
}

/// `wasi:random` in virtual mode: the run's seeded generator.
struct WorkflowRandom(Arc<Mutex<RunState>>);

impl rand_core::TryRng for WorkflowRandom {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0.lock().unwrap_or_else(|e| e.into_inner()).rng.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}
