//! The activity runtime: one fresh instance per attempt, with exactly the
//! capabilities the plugin's manifest grants.
//!
//! Defaults, as in wasmtime's `WasiCtxBuilder`: no preopened directories,
//! no environment variables, no sockets, no name lookups; stdout and
//! stderr become log lines tagged with the attempt. A plugin gains a
//! directory only through `dirs`, a variable only through `env` or
//! `secrets`.

pub mod bindings;
pub mod outbound;

use crate::guest_log::{ErrorOutput, LineLog};
use crate::memory_budget::{BudgetedLimits, MemoryBudget, MemoryBudgetExhausted};
use crate::meter::SharedMeter;
use crate::payload;
use crate::plugin::{CallNowError, EntryPoint, PluginError, PluginSource, call_now, interface_export, typed_exports};
use crate::settings::{DirAccess, PluginSettings};
use bindings::{ActivityInfo, LogLevel};
use outbound::OutboundPolicy;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::types::Type;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker, ResourceTable, Val};
use wasmtime::{Store, Trap};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// How long a cancelled attempt may keep running before it is interrupted.
pub const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// How long `dynamic.declare` may take at load when the plugin sets no
/// `timeout`: a CPython or JS component starts in milliseconds.
const DECLARE_TIMEOUT: Duration = Duration::from_secs(10);

/// The export of guest libraries with run-time activity types.
const DYNAMIC_EXPORT: &str = "caisson:activity/dynamic@0.1.";

/// The store data of one activity attempt.
pub struct ActivityHost {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    egress: EgressHooks,
    table: ResourceTable,
    limits: BudgetedLimits,
    attempt: Arc<Attempt>,
    /// The guest's last words about an error, for the attempt's failure.
    errors: ErrorOutput,
}

impl WasiView for ActivityHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for ActivityHost {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { hooks: &mut self.egress, table: &mut self.table, ctx: &mut self.http }
    }
}

/// The `wasi:http` send hook: every outgoing request is checked against
/// the plugin's `allow_outbound` patterns (a redirect is a new request,
/// checked again); refused ones fail in the guest with
/// `error-code::http-request-denied`.
struct EgressHooks {
    policy: Arc<OutboundPolicy>,
    plugin: Arc<str>,
}

type SendResult = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>), HttpError>;

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let uri = request.uri();
        let allowed = self.policy.allows_http(uri.scheme_str().unwrap_or("http"), uri.host().unwrap_or_default(), uri.port_u16());
        if !allowed {
            tracing::warn!(plugin = &*self.plugin, "refused HTTP request to {uri}: not in the plugin's allow_outbound");
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>))
        })
    }
}

impl bindings::caisson::activity::types::Host for ActivityHost {}

impl bindings::caisson::activity::context::Host for ActivityHost {
    fn heartbeat(&mut self, details: Option<String>) {
        (self.attempt.heartbeat)(details);
    }
    fn last_heartbeat_details(&mut self) -> Option<String> {
        self.attempt.last_heartbeat_details.clone()
    }
    fn is_cancelled(&mut self) -> bool {
        self.attempt.cancellation.is_requested()
    }
    fn info(&mut self) -> ActivityInfo {
        self.attempt.info.clone()
    }
    fn log(&mut self, level: LogLevel, message: String) {
        if level == LogLevel::Error {
            self.errors.error_logged(&message);
        }
        self.attempt.log(level, &message);
    }
}

/// Temporal's request that an attempt stop: a flag the guest polls
/// (`is-cancelled`) and a wake-up for the host's grace-period timer.
#[derive(Debug, Default)]
pub struct Cancellation {
    requested: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Cancellation {
    /// Requests cancellation (idempotent).
    pub fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// True once cancellation was requested.
    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Resolves once cancellation is requested.
    pub async fn requested(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_requested() {
                return;
            }
            notified.await;
        }
    }
}

/// What the host knows about one attempt, and how it reports progress.
pub struct Attempt {
    /// Facts the guest can read.
    pub info: ActivityInfo,
    /// Heartbeat details of the previous attempt.
    pub last_heartbeat_details: Option<String>,
    /// Set when Temporal asks the attempt to stop.
    pub cancellation: Arc<Cancellation>,
    /// Sends a heartbeat (JSON details) to Temporal.
    pub heartbeat: Arc<dyn Fn(Option<String>) + Send + Sync>,
    /// Plugin name, for log lines.
    pub plugin: Arc<str>,
}

impl Attempt {
    fn log(&self, level: LogLevel, message: &str) {
        let (plugin, activity_type, workflow_id, attempt) =
            (&*self.plugin, &self.info.activity_type, &self.info.workflow_id, self.info.attempt);
        match level {
            LogLevel::Trace => {
                tracing::trace!(target: "activity", plugin, activity_type, workflow_id, attempt, "{message}")
            }
            LogLevel::Debug => {
                tracing::debug!(target: "activity", plugin, activity_type, workflow_id, attempt, "{message}")
            }
            LogLevel::Info => {
                tracing::info!(target: "activity", plugin, activity_type, workflow_id, attempt, "{message}")
            }
            LogLevel::Warn => {
                tracing::warn!(target: "activity", plugin, activity_type, workflow_id, attempt, "{message}")
            }
            LogLevel::Error => {
                tracing::error!(target: "activity", plugin, activity_type, workflow_id, attempt, "{message}")
            }
        }
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    /// Returned a result (JSON).
    Completed(serde_json::Value),
    /// Failed: an application error, a trap, a limit, a bad payload.
    Failed {
        /// One line for humans.
        message: String,
        /// Type clients and retry policies match on.
        error_type: String,
        /// True when retrying cannot help.
        non_retryable: bool,
        /// Structured details (JSON), if any.
        details: Option<String>,
    },
    /// Stopped because cancellation was requested.
    Cancelled,
}

impl AttemptOutcome {
    fn failed(message: String, error_type: &str, non_retryable: bool) -> Self {
        AttemptOutcome::Failed { message, error_type: error_type.into(), non_retryable, details: None }
    }
}

/// Builds the linker for activities: WASI (whose reach the per-attempt
/// `WasiCtx` limits to the grants) and the activity context.
pub fn activity_linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<ActivityHost>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    bindings::Imports::add_to_linker::<_, HasSelf<_>>(&mut linker, |h| h)?;
    Ok(linker)
}

/// A loaded activity plugin.
pub struct ActivityPlugin {
    /// Plugin name (file stem).
    pub name: Arc<str>,
    /// SHA-256 of the component: its version.
    pub sha256: String,
    pre: InstancePre<ActivityHost>,
    types: BTreeMap<String, EntryPoint>,
    settings: PluginSettings,
    outbound: Arc<OutboundPolicy>,
    /// Attempts of this plugin allowed to run at once (`max_concurrency`);
    /// `None`: as many as the worker takes.
    permits: Option<Arc<tokio::sync::Semaphore>>,
    /// Where this plugin's attempt and instantiation figures go.
    pub meters: SharedMeter,
    /// The worker-wide budget each attempt's memory is reserved from.
    pub memory_budget: MemoryBudget,
}

impl std::fmt::Debug for ActivityPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivityPlugin").field("name", &self.name).field("types", &self.types.keys()).finish()
    }
}

impl ActivityPlugin {
    /// Pre-links a compiled activity component and checks its grants.
    pub fn new(source: &PluginSource, component: &Component, sha256: String, linker: &Linker<ActivityHost>) -> Result<Self, PluginError> {
        let refuse = |message: String| PluginError::Refused { path: source.path.clone(), message };
        for dir in &source.settings.dirs {
            if !dir.host.is_dir() {
                return Err(refuse(format!("granted directory {} does not exist", dir.host.display())));
            }
        }
        for name in &source.settings.secrets {
            if std::env::var_os(name).is_none() {
                return Err(refuse(format!("secret `{name}` is not set in the worker's environment")));
            }
        }
        let outbound = Arc::new(OutboundPolicy::parse(&source.settings.allow_outbound).map_err(|e| refuse(e.to_string()))?);
        let pre = linker.instantiate_pre(component).map_err(|e| refuse(format!("{e:#}")))?;
        let types = typed_exports(component, linker.engine()).into_iter().map(|(name, t)| (name, EntryPoint::Typed(t))).collect();
        let mut plugin = ActivityPlugin {
            name: source.name.as_str().into(),
            sha256,
            pre,
            types,
            settings: source.settings.clone(),
            outbound,
            permits: source.settings.max_concurrency.map(|n| Arc::new(tokio::sync::Semaphore::new(n))),
            meters: crate::meter::unmetered(),
            memory_budget: MemoryBudget::unlimited(),
        };
        let engine = linker.engine();
        if let (Some(declare), Some(run)) =
            (interface_export(component, engine, DYNAMIC_EXPORT, "declare"), interface_export(component, engine, DYNAMIC_EXPORT, "run"))
        {
            for name in plugin.declare(declare).map_err(|e| refuse(format!("its `caisson:activity/dynamic` export: {e}")))? {
                if plugin.types.insert(name.clone(), EntryPoint::Dynamic(run)).is_some() {
                    return Err(refuse(format!("activity type `{name}` is both an exported function and declared by `dynamic`")));
                }
            }
        }
        Ok(plugin)
    }

    /// Calls `dynamic.declare` in a throw-away instance with nothing
    /// granted, bounded by the plugin's timeout (10 s without one) and
    /// memory limit.
    fn declare(&self, export: wasmtime::component::ComponentExportIndex) -> Result<Vec<String>, String> {
        let attempt = Arc::new(Attempt {
            info: ActivityInfo {
                activity_id: String::new(),
                activity_type: "(declarations)".into(),
                task_queue: String::new(),
                workflow_namespace: String::new(),
                workflow_type: String::new(),
                workflow_id: format!("(loading {})", self.name),
                workflow_run_id: String::new(),
                attempt: 1,
                start_to_close_timeout_ms: None,
                heartbeat_timeout_ms: None,
            },
            last_heartbeat_details: None,
            cancellation: Arc::default(),
            heartbeat: Arc::new(|_| {}),
            plugin: self.name.clone(),
        });
        let mut wasi = WasiCtx::builder();
        let errors = ErrorOutput::default();
        let stderr = errors.clone();
        wasi.stderr(LineLog::new(Arc::new(move |l: &str| stderr.stderr_line(l))));
        let mut store = self.store(wasi.build(), attempt, errors);
        let limit = self.settings.timeout.unwrap_or(DECLARE_TIMEOUT);
        store.set_epoch_deadline(u64::try_from(limit.as_millis() / crate::engine::EPOCH_TICK.as_millis()).unwrap_or(u64::MAX).max(1));
        store.epoch_deadline_trap();
        let results = call_now(&mut store, &self.pre, export, &[], 1).map_err(|e| match e {
            CallNowError::Trapped(e) => describe_failure(&e, self.settings.memory_mb) + &store.data().errors.suffix(),
            CallNowError::Blocked => "`declare` blocked (it may not wait on anything)".into(),
        })?;
        let Val::List(names) = &results[0] else { return Err(format!("`declare` returned {:?}, not a list", results[0])) };
        let mut declared = Vec::with_capacity(names.len());
        for name in names {
            match name {
                Val::String(n) if n.is_empty() => return Err("`declare` returned an empty activity type name".into()),
                Val::String(n) if declared.contains(n) => return Err(format!("`declare` returned activity type `{n}` twice")),
                Val::String(n) => declared.push(n.clone()),
                other => return Err(format!("`declare` returned {other:?} where a name belongs")),
            }
        }
        Ok(declared)
    }

    /// A store for one instance, with the plugin's memory limit within the
    /// worker's budget.
    fn store(&self, wasi: WasiCtx, attempt: Arc<Attempt>, errors: ErrorOutput) -> Store<ActivityHost> {
        let limits = BudgetedLimits::new(self.settings.memory_mb.map(crate::settings::mib_to_bytes), self.memory_budget.clone());
        let host = ActivityHost {
            wasi,
            http: WasiHttpCtx::new(),
            egress: EgressHooks { policy: self.outbound.clone(), plugin: self.name.clone() },
            table: ResourceTable::new(),
            limits,
            attempt,
            errors,
        };
        let mut store = Store::new(self.pre.engine(), host);
        store.limiter(|h| &mut h.limits);
        store
    }

    /// True when its activity types run through the `dynamic` export.
    pub fn is_dynamic(&self) -> bool {
        self.types.values().any(|e| matches!(e, EntryPoint::Dynamic(_)))
    }

    /// The activity types this plugin exports.
    pub fn activity_types(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }

    /// The plugin's own wall-clock limit per attempt, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.settings.timeout
    }

    fn wasi_ctx(&self, attempt: &Arc<Attempt>, errors: &ErrorOutput) -> Result<WasiCtx, String> {
        let mut wasi = WasiCtx::builder();
        for grant in &self.settings.dirs {
            let perms = match grant.access {
                DirAccess::ReadOnly => FsPerms::ReadOnly,
                DirAccess::ReadWrite => FsPerms::ReadWrite,
            };
            wasi.preopened_dir(&grant.host, &grant.guest, perms)
                .map_err(|e| format!("cannot open granted directory {}: {e:#}", grant.host.display()))?;
        }
        for (k, v) in &self.settings.env {
            wasi.env(k, v);
        }
        for name in &self.settings.secrets {
            if let Ok(value) = std::env::var(name) {
                wasi.env(name, value);
            }
        }
        if !self.outbound.is_empty() {
            let policy = self.outbound.clone();
            let plugin = self.name.clone();
            wasi.allow_tcp(true).allow_udp(true).allow_ip_name_lookup(self.outbound.names_hosts()).socket_addr_check(move |addr, usage| {
                let allowed = match usage {
                    SocketAddrUse::TcpConnect => policy.allows_socket("tcp", addr),
                    SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => policy.allows_socket("udp", addr),
                    // Clients bind to an unspecified local address; nothing listens.
                    SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => addr.ip().is_unspecified() && addr.port() == 0,
                    SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => false,
                };
                if !allowed {
                    tracing::warn!(plugin = &*plugin, "refused socket {usage:?} to {addr}: not in the plugin's allow_outbound");
                }
                Box::pin(std::future::ready(allowed))
            });
        }
        let out = attempt.clone();
        let (err, stderr) = (attempt.clone(), errors.clone());
        wasi.stdout(LineLog::new(Arc::new(move |l: &str| out.log(LogLevel::Info, l)))).stderr(LineLog::new(Arc::new(move |l: &str| {
            stderr.stderr_line(l);
            err.log(LogLevel::Warn, l)
        })));
        Ok(wasi.build())
    }

    /// Runs one attempt of `activity_type` in a fresh instance, once one
    /// of the plugin's `max_concurrency` permits is free. While it waits
    /// for a permit, a cancellation request ends the attempt (and the
    /// caller's deadline, which wraps this future, still applies); the
    /// plugin's own `timeout` counts from when it starts running.
    pub async fn run(&self, activity_type: &str, args: &[serde_json::Value], attempt: Arc<Attempt>) -> AttemptOutcome {
        let _permit = match &self.permits {
            Some(permits) => tokio::select! {
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(p) => Some(p),
                    Err(_) => return AttemptOutcome::failed(format!("plugin {}: unloaded", self.name), "HostError", false),
                },
                _ = attempt.cancellation.requested() => return AttemptOutcome::Cancelled,
            },
            None => None,
        };
        self.run_now(activity_type, args, attempt).await
    }

    async fn run_now(&self, activity_type: &str, args: &[serde_json::Value], attempt: Arc<Attempt>) -> AttemptOutcome {
        let Some(at) = self.types.get(activity_type) else {
            let known: Vec<&str> = self.activity_types().collect();
            return AttemptOutcome::failed(
                format!("plugin {} has no activity type `{activity_type}` (it exports: {})", self.name, known.join(", ")),
                "NotFoundError",
                true,
            );
        };
        let unknown = if self.settings.strict_payloads { payload::UnknownFields::Refuse } else { payload::UnknownFields::Ignore };
        let params = match at.params(activity_type, args, unknown) {
            Ok(p) => p,
            Err(e) => {
                return AttemptOutcome::failed(format!("plugin {}: activity `{activity_type}`: {e}", self.name), "InvalidArgument", true);
            }
        };
        let errors = ErrorOutput::default();
        let wasi = match self.wasi_ctx(&attempt, &errors) {
            Ok(w) => w,
            Err(message) => {
                return AttemptOutcome::failed(format!("plugin {}: {message}", self.name), "CapabilityError", false);
            }
        };
        let mut store = self.store(wasi, attempt.clone(), errors.clone());
        // Yield to the executor every epoch tick: a CPU-bound guest then
        // still honours timeouts and cancellation.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let results_len = at.results_len();
        let export = at.export();
        let call = async {
            let began = std::time::Instant::now();
            let instance = self.pre.instantiate_async(&mut store).await?;
            self.meters.instantiated(began.elapsed());
            let func =
                instance.get_func(&mut store, export).ok_or_else(|| wasmtime::format_err!("the export vanished after instantiation"))?;
            let mut results = vec![Val::Bool(false); results_len];
            func.call_async(&mut store, &params, &mut results).await?;
            Ok::<_, wasmtime::Error>(results)
        };
        let cancellation = attempt.cancellation.clone();
        let grace_expired = async {
            cancellation.requested().await;
            tokio::time::sleep(CANCEL_GRACE).await;
        };
        let plugin_limit = async {
            match self.settings.timeout {
                Some(limit) => tokio::time::sleep(limit).await,
                None => std::future::pending().await,
            }
        };
        let result = tokio::select! {
            r = call => r,
            _ = grace_expired => return AttemptOutcome::Cancelled,
            _ = plugin_limit => {
                let limit = self.settings.timeout.unwrap_or_default();
                return AttemptOutcome::failed(
                    format!("plugin {}: activity `{activity_type}` ran past the plugin's timeout of {limit:?}", self.name),
                    "TimeoutError",
                    false,
                );
            }
        };
        if attempt.cancellation.is_requested() {
            return AttemptOutcome::Cancelled;
        }
        match result {
            Ok(results) => self.outcome(at, results),
            Err(e) => AttemptOutcome::Failed {
                message: format!(
                    "plugin {}: activity `{activity_type}` {}{}",
                    self.name,
                    describe_failure(&e, self.settings.memory_mb),
                    errors.suffix()
                ),
                error_type: failure_type(&e).into(),
                non_retryable: false,
                details: None,
            },
        }
    }

    fn outcome(&self, at: &EntryPoint, results: Vec<Val>) -> AttemptOutcome {
        let Some(result) = results.into_iter().next() else {
            return AttemptOutcome::Completed(serde_json::Value::Null);
        };
        let typed_result = match at {
            EntryPoint::Typed(t) => t.result.as_ref(),
            EntryPoint::Dynamic(_) => {
                return match result {
                    Val::Result(Ok(Some(v))) => match *v {
                        Val::String(text) => match crate::plugin::dynamic_json(&text) {
                            Ok(json) => AttemptOutcome::Completed(json),
                            Err(e) => AttemptOutcome::failed(format!("plugin {}: {e}", self.name), "InvalidResult", true),
                        },
                        other => AttemptOutcome::Completed(payload::val_to_json(&other)),
                    },
                    Val::Result(Err(e)) => self.application_failure(e.as_deref()),
                    other => AttemptOutcome::Completed(payload::val_to_json(&other)),
                };
            }
        };
        match (result, typed_result) {
            (Val::Result(Ok(v)), Some(Type::Result(_))) => {
                AttemptOutcome::Completed(v.map_or(serde_json::Value::Null, |v| payload::val_to_json(&v)))
            }
            (Val::Result(Err(e)), Some(Type::Result(_))) => self.application_failure(e.as_deref()),
            (v, _) => AttemptOutcome::Completed(payload::val_to_json(&v)),
        }
    }

    /// An attempt that returned an application error.
    fn application_failure(&self, value: Option<&Val>) -> AttemptOutcome {
        let error = crate::workflow::application_error(value);
        let error_type = if error.error_type == "WorkflowError" { "ActivityError".into() } else { error.error_type };
        AttemptOutcome::Failed { message: error.message, error_type, non_retryable: error.non_retryable, details: error.details }
    }
}

/// The failure type Temporal shows for a trap or limit.
fn failure_type(e: &wasmtime::Error) -> &'static str {
    if e.downcast_ref::<MemoryBudgetExhausted>().is_some() {
        return "ResourceExhausted";
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => "StackOverflow",
        Some(Trap::UnreachableCodeReached) => "GuestPanic",
        Some(Trap::Interrupt) | Some(Trap::OutOfFuel) => "CpuLimitExceeded",
        Some(_) => "GuestTrap",
        None if e.root_cause().to_string().contains("memory") => "MemoryLimitExceeded",
        None => "HostError",
    }
}

fn describe_failure(e: &wasmtime::Error, memory_mb: Option<u64>) -> String {
    let first = e.root_cause().to_string();
    if let Some(exhausted) = e.downcast_ref::<MemoryBudgetExhausted>() {
        return format!("failed: {exhausted}");
    }
    if let Some(exceeded) = e.downcast_ref::<crate::memory_budget::MemoryLimitExceeded>() {
        return exceeded.to_string();
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => "overflowed its stack (unbounded recursion?)".into(),
        Some(Trap::UnreachableCodeReached) => format!("panicked or hit `unreachable`: {first}"),
        Some(t) => format!("trapped: {t}"),
        None if first.contains("memory") && memory_mb.is_some() => {
            format!("exceeded its memory limit of {} MiB: {first}", memory_mb.unwrap_or_default())
        }
        None => format!("failed: {first}"),
    }
}
