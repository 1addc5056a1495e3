//! The worker: connects to Temporal through sdk-core, polls workflow
//! activations and activity tasks, and runs them on the plugins.

use crate::activation_thread;
use crate::bridge::{self, Incoming};
use crate::manifest::{TemporalSettings, Versioning, WorkerSettings};
use crate::metrics::Metrics;
use crate::registry::{LiveRegistry, Registry};
use crate::traces;
use crate::versioning::{Deployment, DeploymentError, VersionedTenant, VersioningOptions};
use crate::watch::PluginFolder;
use anyhow::Context as _;
use caisson_runtime::activity::{Attempt, AttemptOutcome, Cancellation};
use caisson_runtime::codec::Codec;
use caisson_runtime::workflow::WorkflowRun;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use temporalio_client::envconfig::LoadClientConfigProfileOptions;
use temporalio_client::{ClientOptions, ClientTlsOptions, Connection, ConnectionOptions, GrpcCompression, TlsOptions};
use temporalio_common::protos::coresdk::activity_task::{ActivityTask, activity_task};
use temporalio_common::protos::coresdk::workflow_activation::WorkflowActivation;
use temporalio_common::protos::coresdk::workflow_completion::{
    self as workflow_completion, WorkflowActivationCompletion, workflow_activation_completion,
};
use temporalio_common::protos::coresdk::{ActivityHeartbeat, ActivityTaskCompletion};
use temporalio_common::protos::temporal::api::enums::v1::VersioningBehavior;
use temporalio_common::protos::temporal::api::failure::v1::Failure;
use temporalio_common::worker::WorkerTaskTypes;
use temporalio_sdk_core::{CoreRuntime, PollError, RuntimeOptions, Url, Worker, WorkerConfig, WorkerVersioningStrategy, init_worker};

/// Where to connect and which queue to poll. Precedence: command-line
/// flags and the manifest's `[temporal]` table, then Temporal's
/// environment configuration (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`,
/// `TEMPORAL_API_KEY`, `TEMPORAL_TLS_*`, and the profile selected by
/// `TEMPORAL_PROFILE` in `temporal.toml`), then `localhost:7233`,
/// namespace `default`, task queue `caisson`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `host:port` (or a URL).
    pub address: String,
    /// Namespace.
    pub namespace: String,
    /// Task queue.
    pub task_queue: String,
    /// API key, if any.
    pub api_key: Option<String>,
    /// TLS, when on.
    pub tls: Option<TlsOptions>,
    /// Fairness key for activities and children that set none: a
    /// tenant's name, so that tenants sharing a queue get fair shares.
    pub fairness_key: Option<String>,
    /// Served as a worker deployment version: each completion carries its
    /// run's versioning behaviour (pinned, or the plugin's auto-upgrade).
    pub versioned: bool,
}

impl Endpoint {
    /// Resolves the endpoint; fails on an unreadable TLS file or an
    /// invalid Temporal config profile.
    pub fn resolve(settings: &TemporalSettings) -> anyhow::Result<Self> {
        check_environment()?;
        let (profile, client) = ClientOptions::load_from_config(LoadClientConfigProfileOptions::default())
            .map_err(|e| anyhow::anyhow!("{}: {e:?}", environment_culprit(&format!("{e:?}"))))?;
        let profile_address = profile.target.host_str().map(|h| format!("{h}:{}", profile.target.port_or_known_default().unwrap_or(7233)));
        let tls = match &settings.tls {
            Some(t) => Some(tls_options(t)?),
            None => profile.tls_options.clone().or_else(|| settings.api_key.as_ref().map(|_| TlsOptions::builder().build())),
        };
        Ok(Endpoint {
            address: settings.address.clone().or(profile_address).unwrap_or_else(|| "localhost:7233".into()),
            namespace: settings.namespace.clone().unwrap_or(client.namespace),
            task_queue: settings
                .task_queue
                .clone()
                .or_else(|| std::env::var("TEMPORAL_TASK_QUEUE").ok().filter(|q| !q.is_empty()))
                .unwrap_or_else(|| "caisson".into()),
            api_key: settings.api_key.clone().or(profile.api_key),
            tls,
            fairness_key: None,
            versioned: false,
        })
    }

    /// The URL sdk-core connects to.
    pub fn url(&self) -> anyhow::Result<Url> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let text = if self.address.contains("://") { self.address.clone() } else { format!("{scheme}://{}", self.address) };
        Url::parse(&text).with_context(|| format!("invalid Temporal address `{}`", self.address))
    }
}

/// Refuses what Temporal's environment configuration would silently
/// ignore: a boolean variable that is not a boolean.
fn check_environment() -> anyhow::Result<()> {
    for name in ["TEMPORAL_TLS", "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION"] {
        if let Some(value) = std::env::var_os(name) {
            let text = value.to_string_lossy();
            anyhow::ensure!(
                ["true", "false", "1", "0", ""].contains(&text.to_ascii_lowercase().as_str()),
                "environment variable {name} = {text:?}: must be true or false"
            );
        }
    }
    Ok(())
}

/// The environment variable (or profile) an env-config error is about,
/// with its value, so the one-line error names what to fix.
fn environment_culprit(error: &str) -> String {
    let lower = error.to_ascii_lowercase();
    let name = [
        ("profile", "TEMPORAL_PROFILE"),
        ("address", "TEMPORAL_ADDRESS"),
        ("namespace", "TEMPORAL_NAMESPACE"),
        ("api key", "TEMPORAL_API_KEY"),
        ("tls", "TEMPORAL_TLS"),
        ("config file", "TEMPORAL_CONFIG_FILE"),
    ]
    .into_iter()
    .find(|(word, _)| lower.contains(word))
    .map(|(_, name)| name);
    // A file that cannot be read: the path variable that names a missing file.
    let missing_file = || {
        ["TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "TEMPORAL_CONFIG_FILE"]
            .into_iter()
            .find_map(|n| std::env::var(n).ok().filter(|v| !std::path::Path::new(v).is_file()).map(|v| (n, v)))
    };
    match name.and_then(|n| std::env::var(n).ok().map(|v| (n, v))).or_else(missing_file) {
        Some((name, value)) => format!("environment variable {name} = {value:?}"),
        None => "reading Temporal's environment configuration (TEMPORAL_* variables, temporal.toml profile)".into(),
    }
}

fn tls_options(t: &crate::manifest::TlsSettings) -> anyhow::Result<TlsOptions> {
    let read = |setting: &str, p: &std::path::PathBuf| {
        std::fs::read(p).with_context(|| format!("reading [temporal.tls] {setting} {}", p.display()))
    };
    let client = match (&t.client_cert, &t.client_key) {
        (Some(cert), Some(key)) => {
            Some(ClientTlsOptions::builder().client_cert(read("client_cert", cert)?).client_private_key(read("client_key", key)?).build())
        }
        (None, None) => None,
        _ => anyhow::bail!("[temporal.tls] needs both client_cert and client_key for mutual TLS, or neither"),
    };
    let ca = t.server_ca_cert.as_ref().map(|p| read("server_ca_cert", p)).transpose()?;
    Ok(TlsOptions::builder().maybe_server_root_ca_cert(ca).maybe_domain(t.server_name.clone()).maybe_client_tls_options(client).build())
}

/// Connects to the server.
pub async fn connect(endpoint: &Endpoint) -> anyhow::Result<Connection> {
    let identity = format!("{}@{}-caisson", std::process::id(), hostname());
    let url = endpoint.url()?;
    // gzip saves bandwidth on a network and only costs CPU on loopback
    // (3-4 % of a busy worker's time against a local dev server).
    let compression = if is_loopback(&url) { GrpcCompression::None } else { GrpcCompression::Gzip };
    let options = ConnectionOptions::new(url)
        .identity(identity)
        .maybe_api_key(endpoint.api_key.clone())
        .maybe_tls_options(endpoint.tls.clone())
        .grpc_compression(compression)
        .build();
    Connection::connect(options).await.map_err(|e| connect_error(e, endpoint))
}

/// Why the worker could not connect, in one line: for a TLS failure, its
/// innermost cause (once: tonic nests it and prints it twice) and the
/// setting to look at.
fn connect_error(e: temporalio_client::errors::ClientConnectError, endpoint: &Endpoint) -> anyhow::Error {
    let mut cause: &dyn std::error::Error = match &e {
        temporalio_client::errors::ClientConnectError::SystemInfoCallError(status) => status,
        other => other,
    };
    while let Some(source) = cause.source() {
        cause = source;
    }
    let cause = cause.to_string();
    // The server refused the client's certificate (or its lack of
    // one): in TLS 1.3 the client sees the handshake go through and
    // its first call lose the connection, with or without the alert.
    let refused_client = matches!(&e, temporalio_client::errors::ClientConnectError::SystemInfoCallError(status)
        if std::error::Error::source(status).is_some())
        || ["CertificateRequired", "BadCertificate", "UnknownCA", "CertificateUnknown"].iter().any(|a| cause.contains(a));
    let error = anyhow::Error::new(e);
    let unreachable = || format!("cannot reach the Temporal server at {} (is it running? `caisson dev` starts one)", endpoint.address);
    let Some(tls) = &endpoint.tls else { return error.context(unreachable()) };
    let hint = if cause.contains("expired") {
        "the server's certificate has expired"
    } else if cause.contains("NotValidForName") || cause.contains("not valid for name") {
        "the server's certificate is not for this host name (set server_name to a name it is for)"
    } else if cause.contains("invalid peer certificate") && tls.server_root_ca_cert.is_some() {
        "the server's certificate is not signed by the CA in server_ca_cert"
    } else if cause.contains("invalid peer certificate") {
        "the server's certificate is not signed by a CA this system trusts (set server_ca_cert)"
    } else if cause.contains("InvalidContentType") || cause.contains("corrupt message") {
        "the server does not speak TLS there: a plaintext endpoint? (TLS is on through [temporal.tls], an API key or TEMPORAL_TLS*)"
    } else if refused_client && tls.client_tls_options.is_none() {
        "the server refused the connection: does it require a client certificate (client_cert and client_key)?"
    } else if refused_client {
        "the server refused the connection: does it accept the client certificate in client_cert?"
    } else {
        return error.context(unreachable());
    };
    anyhow::anyhow!("TLS connection to the Temporal server at {} failed: {cause}: {hint}", endpoint.address)
}

/// True for `localhost` and loopback addresses (127.0.0.0/8, ::1).
fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else { return false };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "localhost".into())
}

/// One tenant as a worker serves it: a namespace + task queue, its
/// plugins, and its share of the process.
#[derive(Debug)]
pub struct Tenant {
    /// Names the tenant in logs and metrics.
    pub name: String,
    /// Server, namespace and task queue.
    pub endpoint: Endpoint,
    /// Cache share and concurrency limits.
    pub settings: WorkerSettings,
    /// Its plugins, changing as its folders do.
    pub registry: Arc<LiveRegistry>,
    /// Folders watched for plugins (already loaded once).
    pub folders: Vec<PluginFolder>,
    /// Serve plugin sets as worker deployment versions (when the server
    /// has worker versioning on); `None`: unversioned.
    pub versioning: Option<VersioningOptions>,
    /// The payload codec applied to everything it sends and receives.
    pub codec: Option<Arc<Codec>>,
}

impl Tenant {
    /// Whether to poll for workflow and activity tasks. A tenant with a
    /// watched folder polls for both, since plugins may arrive later.
    fn task_types(&self) -> WorkerTaskTypes {
        let registry = self.registry.snapshot();
        let watched = !self.folders.is_empty();
        WorkerTaskTypes {
            enable_workflows: watched || registry.workflow_types().next().is_some(),
            enable_local_activities: watched || registry.workflow_types().next().is_some(),
            enable_remote_activities: watched || registry.activity_types().next().is_some(),
            enable_nexus: false,
        }
    }
}

/// Core's metrics and Caisson's, served together, and the trace export.
pub struct Telemetry {
    /// Caisson's per-plugin instruments (no-op when metrics are off).
    pub metrics: Metrics,
    meter: Option<Arc<dyn temporalio_common::telemetry::metrics::CoreMeter>>,
    /// Where Prometheus can scrape, when on.
    pub address: Option<std::net::SocketAddr>,
    /// Flushes the spans still queued when the worker stops.
    _traces: Option<traces::ExportGuard>,
}

impl Telemetry {
    /// Starts the Prometheus endpoint at `address` and the OTLP export
    /// (must be called inside a tokio runtime). Metrics go to Prometheus
    /// when it has an address, else over OTLP; neither: nothing is
    /// recorded.
    pub fn start(address: Option<std::net::SocketAddr>, otlp: Option<&traces::OtlpExport>) -> anyhow::Result<Self> {
        let traces = otlp.map(traces::install).transpose().context("exporting traces over OTLP")?;
        let (meter, address): (Arc<dyn temporalio_common::telemetry::metrics::CoreMeter>, _) = match (address, otlp) {
            (Some(address), _) => {
                let server = temporalio_common::telemetry::start_prometheus_metric_exporter(
                    temporalio_common::telemetry::PrometheusExporterOptions::builder().socket_addr(address).build(),
                )
                .with_context(|| format!("serving metrics on {address}"))?;
                tracing::info!("Prometheus metrics on http://{}/metrics", server.bound_addr);
                (server.meter.clone(), Some(server.bound_addr))
            }
            (None, Some(otlp)) => {
                let protocol = match otlp.protocol {
                    traces::OtlpProtocol::Grpc => temporalio_common::telemetry::OtlpProtocol::Grpc,
                    traces::OtlpProtocol::HttpProtobuf => temporalio_common::telemetry::OtlpProtocol::Http,
                };
                let url = Url::parse(&otlp.signal_url("metrics")).context("the OTLP metrics URL")?;
                let options = temporalio_common::telemetry::OtelCollectorOptions::builder()
                    .url(url)
                    .protocol(protocol)
                    .headers(otlp.headers.clone())
                    .metric_periodicity(Duration::from_secs(10))
                    .build();
                let meter = temporalio_common::telemetry::build_otlp_metric_exporter(options).context("exporting metrics over OTLP")?;
                (Arc::new(meter), None)
            }
            (None, None) => return Ok(Telemetry { metrics: Metrics::default(), meter: None, address: None, _traces: traces }),
        };
        Ok(Telemetry { metrics: Metrics::new(meter.clone()), meter: Some(meter), address, _traces: traces })
    }
}

/// Where a core worker takes its workflow plugins from.
#[derive(Clone)]
pub enum WorkflowSource {
    /// The tenant's plugins as they are now: a replaced plugin serves the
    /// next task of every run (unversioned serving).
    Live(Arc<LiveRegistry>),
    /// One version's plugin set, fixed for the worker's life.
    Fixed(Arc<Registry>),
}

impl WorkflowSource {
    fn snapshot(&self) -> Arc<Registry> {
        match self {
            WorkflowSource::Live(live) => live.snapshot(),
            WorkflowSource::Fixed(registry) => registry.clone(),
        }
    }
}

/// One sdk-core worker polling a task queue, with its workflow and
/// activity loops.
pub struct PollingWorker {
    core: Arc<Worker>,
    workflows: tokio::task::JoinHandle<anyhow::Result<()>>,
    activities: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl std::fmt::Debug for PollingWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollingWorker").finish_non_exhaustive()
    }
}

/// What a tenant's core workers are built from.
#[derive(Clone)]
struct WorkerTemplate {
    runtime: Arc<CoreRuntime>,
    connection: Connection,
    name: String,
    endpoint: Endpoint,
    settings: WorkerSettings,
    task_types: WorkerTaskTypes,
    activities: Arc<LiveRegistry>,
    codec: Option<Arc<Codec>>,
}

impl WorkerTemplate {
    /// Starts a core worker that declares `versioning` and takes its
    /// workflow plugins from `workflows`; checks the namespace first.
    async fn start(&self, versioning: WorkerVersioningStrategy, workflows: WorkflowSource) -> anyhow::Result<PollingWorker> {
        let settings = &self.settings;
        let versioned = matches!(versioning, WorkerVersioningStrategy::WorkerDeploymentBased(_));
        let config = WorkerConfig::builder()
            .namespace(self.endpoint.namespace.clone())
            .task_queue(self.endpoint.task_queue.clone())
            .task_types(self.task_types)
            .versioning_strategy(versioning)
            .max_cached_workflows(settings.max_cached_workflows)
            .max_outstanding_workflow_tasks(settings.max_concurrent_workflow_tasks.max(2))
            .max_outstanding_activities(settings.max_concurrent_activities.max(1))
            .graceful_shutdown_period(settings.shutdown_grace)
            .build()
            .map_err(anyhow::Error::msg)?;
        let worker = Arc::new(init_worker(&self.runtime, config, self.connection.clone()).context("starting the sdk-core worker")?);
        worker.validate().await.with_context(|| format!("tenant `{}`: checking namespace `{}`", self.name, self.endpoint.namespace))?;
        let endpoint = Endpoint { versioned, ..self.endpoint.clone() };
        let workflow_loop = tokio::spawn(workflow_loop(worker.clone(), workflows, endpoint, self.codec.clone()));
        let activity_loop =
            tokio::spawn(activity_loop(worker.clone(), self.activities.clone(), self.endpoint.task_queue.clone(), self.codec.clone()));
        Ok(PollingWorker { core: worker, workflows: workflow_loop, activities: activity_loop })
    }
}

impl PollingWorker {
    /// Stops polling for new tasks.
    pub fn initiate_shutdown(&self) {
        self.core.initiate_shutdown();
    }

    /// Lets in-flight work finish within `grace` (activities still running
    /// then are cancelled) and releases the core worker.
    pub async fn finish(self, tenant: &str, grace: Duration) -> anyhow::Result<()> {
        self.core.initiate_shutdown();
        // Core cancels activities still running when the grace period
        // ends; a guest then has CANCEL_GRACE to return.
        let limit = grace + caisson_runtime::activity::CANCEL_GRACE + Duration::from_secs(5);
        let (workflows, activities) = (self.workflows, self.activities);
        match tokio::time::timeout(limit, async { tokio::join!(workflows, activities) }).await {
            Ok((w, a)) => {
                w.context("workflow loop panicked")??;
                a.context("activity loop panicked")??;
            }
            Err(_) => {
                tracing::warn!(tenant, "in-flight work did not finish within {limit:?}; stopping anyway")
            }
        }
        if let Ok(worker) = Arc::try_unwrap(self.core) {
            worker.finalize_shutdown().await;
        }
        Ok(())
    }
}

/// Runs every tenant's worker until `shutdown` resolves, then stops
/// polling, lets in-flight work finish within each tenant's
/// `shutdown_grace` (activities still running then are cancelled) and
/// returns.
pub async fn run(tenants: Vec<Tenant>, telemetry: Telemetry, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    anyhow::ensure!(!tenants.is_empty(), "no tenants to serve");
    let telemetry_options = temporalio_common::telemetry::TelemetryOptions::builder().maybe_metrics(telemetry.meter.clone()).build();
    let runtime = Arc::new(CoreRuntime::new_assume_tokio(
        RuntimeOptions::builder().telemetry_options(telemetry_options).heartbeat_interval(None).build().map_err(anyhow::Error::msg)?,
    )?);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut unversioned = Vec::new();
    let mut versioned = Vec::new();
    let mut watchers = Vec::new();
    for tenant in tenants {
        let task_types = tenant.task_types();
        anyhow::ensure!(
            task_types.enable_workflows || task_types.enable_remote_activities,
            "tenant `{}` has no plugins to serve",
            tenant.name
        );
        let mut connection = connect(&tenant.endpoint).await?;
        connection.identity_mut().push_str(&format!("/{}", tenant.name));
        let template = WorkerTemplate {
            runtime: runtime.clone(),
            connection: connection.clone(),
            name: tenant.name.clone(),
            endpoint: tenant.endpoint.clone(),
            settings: tenant.settings.clone(),
            task_types,
            activities: tenant.registry.clone(),
            codec: tenant.codec.clone(),
        };
        let deployment = match &tenant.versioning {
            Some(options) if task_types.enable_workflows => {
                let deployment =
                    Deployment::new(connection.clone(), &tenant.endpoint.namespace, &options.deployment, &tenant.endpoint.address);
                match deployment.probe().await {
                    Ok(()) => Some((deployment, options.clone())),
                    Err(e @ DeploymentError::NotEnabled { .. }) => {
                        tracing::warn!(tenant = %tenant.name, "{e}");
                        None
                    }
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("tenant `{}`: asking about worker deployment `{}`", tenant.name, options.deployment));
                    }
                }
            }
            _ => None,
        };
        let registry = tenant.registry.snapshot();
        let announce = {
            let (name, endpoint) = (tenant.name.clone(), tenant.endpoint.clone());
            let workflows: Vec<String> = registry.workflow_types().map(str::to_owned).collect();
            let activities: Vec<String> = registry.activity_types().map(str::to_owned).collect();
            let watching: Vec<String> = tenant.folders.iter().map(|f| f.dir().display().to_string()).collect();
            move |version: &str| {
                tracing::info!(
                    tenant = %name,
                    address = %endpoint.address,
                    namespace = %endpoint.namespace,
                    task_queue = %endpoint.task_queue,
                    version,
                    workflows = ?workflows,
                    activities = ?activities,
                    watching = ?watching,
                    "worker polling"
                )
            }
        };
        watchers.extend(tenant.folders.into_iter().map(|f| tokio::spawn(f.watch())));
        match deployment {
            Some((deployment, options)) => {
                let grace = tenant.settings.shutdown_grace;
                let versioned_tenant = VersionedTenant {
                    name: tenant.name.clone(),
                    registry: tenant.registry.clone(),
                    options,
                    start: Box::new(move |strategy, workflows| {
                        let template = template.clone();
                        Box::pin(async move { template.start(strategy, workflows).await })
                    }),
                    grace,
                };
                // The tenant counts as started once its current version is
                // current on the server: until then new runs would not reach it.
                let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
                let serving =
                    tokio::spawn(crate::versioning::serve(versioned_tenant, deployment.clone(), stop_rx.clone(), move |build_id| {
                        announce(&format!("{}:{build_id}", deployment.name()));
                        let _ = ready_tx.send(());
                    }));
                if ready_rx.await.is_err() {
                    // `serve` ended before its version was current: its error says why.
                    serving.await.context("versioned tenant panicked")??;
                    anyhow::bail!("tenant `{}` stopped before serving", tenant.name);
                }
                versioned.push((tenant.name, serving));
            }
            None => {
                let worker = template.start(unversioned_strategy(), WorkflowSource::Live(tenant.registry.clone())).await?;
                announce("unversioned");
                unversioned.push((tenant.name, worker, tenant.settings.shutdown_grace));
            }
        }
    }
    shutdown.await;
    tracing::info!("shutting down: no new tasks; finishing in-flight work");
    let _ = stop_tx.send(true);
    watchers.iter().for_each(|w| w.abort());
    for (_, worker, _) in &unversioned {
        worker.initiate_shutdown();
    }
    for (name, worker, grace) in unversioned {
        worker.finish(&name, grace).await?;
    }
    for (name, serving) in versioned {
        serving.await.with_context(|| format!("tenant `{name}`: versioned serving panicked"))??;
    }
    tracing::info!("worker stopped");
    Ok(())
}

/// The build id an unversioned worker reports (identification only).
fn unversioned_strategy() -> WorkerVersioningStrategy {
    WorkerVersioningStrategy::None { build_id: format!("caisson-{}", env!("CARGO_PKG_VERSION")) }
}

/// Runs this worker holds between their activations, by run id.
type Runs = Arc<Mutex<HashMap<String, WorkflowRun>>>;

/// Polls workflow activations and runs each on its own thread
/// ([`crate::activation_thread`]), so that activations of different runs
/// do not wait behind each other. A guest runs synchronously until it
/// reaches `wait` or exhausts its fuel (about a second at the default
/// 2e9), and on one shared loop each runaway used to hold up every other
/// run of the tenant for that long.
///
/// The bound: an activation starts as soon as core hands it out (core
/// admits up to the tenant's `max_concurrent_workflow_tasks` workflow
/// tasks, default 100; only when runaways hold every one of them does new
/// work queue, for at most one fuel budget). A runaway runs at normal
/// priority for [`crate::activation_thread::DEMOTE_AFTER`] (50 ms), then
/// at nice 19, so any number of runaways delays a healthy activation by at
/// most about 50 ms per runaway that started within the same 50 ms on
/// the same CPU, and by a few percent of CPU after that.
///
/// Core hands out at most one activation per run at a time (an eviction
/// is an activation too), so the run is taken out of the map while it is
/// activated and put back before its completion is sent: the next
/// activation for it, which core issues only after that completion, finds
/// it there.
async fn workflow_loop(worker: Arc<Worker>, registry: WorkflowSource, endpoint: Endpoint, codec: Option<Arc<Codec>>) -> anyhow::Result<()> {
    let runs: Runs = Arc::default();
    let endpoint = Arc::new(endpoint);
    loop {
        let activation = match worker.poll_workflow_activation().await {
            Ok(a) => a,
            Err(PollError::ShutDown) => return Ok(()),
            Err(e) => return Err(e).context("polling workflow activations"),
        };
        let run_id = activation.run_id.clone();
        let held = lock(&runs).remove(&run_id);
        let (worker, registry, endpoint, runs, codec) =
            (worker.clone(), registry.snapshot(), endpoint.clone(), runs.clone(), codec.clone());
        tokio::spawn(async move {
            let activated = {
                let run_id = run_id.clone();
                activation_thread::run(move || {
                    let mut one: HashMap<String, WorkflowRun> = held.map(|run| (run_id.clone(), run)).into_iter().collect();
                    let completion = crate::codec::activation(codec.as_deref(), activation, |activation| {
                        process_activation(&registry, &mut one, activation, &endpoint)
                    });
                    // An instance that trapped but still completed its
                    // activation (a failed update validator) cannot run on.
                    let dead = one.get(&run_id).is_some_and(WorkflowRun::is_dead);
                    if let Some(run) = one.remove(&run_id).filter(|_| !dead) {
                        lock(&runs).insert(run_id, run);
                    }
                    (completion, dead)
                })
                .await
            };
            // Without a completion core would wait for this run forever;
            // after a failure it evicts the run (lost with the thread).
            let (completion, evict) = activated.unwrap_or_else(|e| {
                let message = e.to_string();
                tracing::error!(run_id = %run_id, "{message}");
                (WorkflowActivationCompletion::fail(run_id.clone(), Failure { message, ..Default::default() }, None), false)
            });
            if let Err(e) = worker.complete_workflow_activation(completion).await {
                tracing::error!("completing a workflow activation: {e}");
            }
            if evict {
                // Core replays the history into a fresh instance at the
                // run's next workflow task.
                worker.request_workflow_eviction(&run_id);
            }
        });
    }
}

/// One activation in, exactly one completion out (traced when traces are
/// exported).
pub fn process_activation(
    registry: &Registry,
    runs: &mut HashMap<String, WorkflowRun>,
    activation: WorkflowActivation,
    endpoint: &Endpoint,
) -> WorkflowActivationCompletion {
    let Some(task) = traces::WorkflowTask::begin(&activation, registry.tenant()) else {
        return activate(registry, runs, activation, endpoint);
    };
    let mut completion = {
        let _current = task.attach();
        activate(registry, runs, activation, endpoint)
    };
    let plugin = runs.get(&completion.run_id).map(|run| run.plugin().clone());
    task.finish(&mut completion, plugin.as_ref().map(|p| (&*p.name, p.sha256.as_str())));
    completion
}

fn activate(
    registry: &Registry,
    runs: &mut HashMap<String, WorkflowRun>,
    activation: WorkflowActivation,
    endpoint: &Endpoint,
) -> WorkflowActivationCompletion {
    let run_id = activation.run_id.clone();
    let fail_traced = |runs: &mut HashMap<String, WorkflowRun>, message: String, stack_trace: Option<String>| {
        runs.remove(&run_id);
        match &stack_trace {
            Some(trace) => tracing::warn!(tenant = registry.tenant(), run_id = %run_id, "workflow task failed: {message}\n{trace}"),
            None => tracing::warn!(tenant = registry.tenant(), run_id = %run_id, "workflow task failed: {message}"),
        }
        WorkflowActivationCompletion::fail(
            run_id.clone(),
            Failure { message, stack_trace: stack_trace.unwrap_or_default(), ..Default::default() },
            None,
        )
    };
    let fail = |runs: &mut HashMap<String, WorkflowRun>, message: String| fail_traced(runs, message, None);
    let (incoming, dropped) = match bridge::incoming(&activation, &endpoint.namespace, &endpoint.task_queue) {
        Ok(i) => i,
        Err(e) => return fail(runs, format!("malformed activation: {e}")),
    };
    if !dropped.is_empty() {
        let (plugin, workflow_id) = match &incoming {
            Incoming::Start(request, _) => {
                (registry.workflow(&request.workflow_type).map(|p| p.name.to_string()), request.info.workflow_id.clone())
            }
            _ => runs.get(&run_id).map_or((None, String::new()), |run| (Some(run.plugin().name.to_string()), run.workflow_id())),
        };
        let plugin = plugin.unwrap_or_else(|| "unknown".into());
        for input in &dropped {
            report_dropped(registry, &plugin, &workflow_id, &run_id, activation.is_replaying, input);
        }
    }
    let activation = match incoming {
        Incoming::Evict { reason } => {
            tracing::debug!(run_id = %run_id, "evicted: {reason}");
            runs.remove(&run_id);
            return WorkflowActivationCompletion::empty(run_id);
        }
        Incoming::Start(request, activation) => {
            let Some(plugin) = registry.workflow(&request.workflow_type) else {
                let known: Vec<&str> = registry.workflow_types().collect();
                return fail(
                    runs,
                    format!("no plugin serves workflow type `{}` (this worker serves: {})", request.workflow_type, known.join(", ")),
                );
            };
            match WorkflowRun::start(plugin.clone(), *request) {
                Ok(run) => {
                    runs.insert(run_id.clone(), run);
                }
                Err(e) => return fail(runs, e.message),
            }
            activation
        }
        Incoming::Continue(activation) => activation,
    };
    let Some(run) = runs.get_mut(&run_id) else {
        return fail(runs, "activation for a run this worker does not hold (it failed earlier)".into());
    };
    match run.activate(activation) {
        Ok(commands) => {
            let to = bridge::Destination {
                namespace: &endpoint.namespace,
                task_queue: &endpoint.task_queue,
                fairness_key: endpoint.fairness_key.as_deref(),
            };
            // Pinned is the versioned worker's default; only an
            // auto-upgrade plugin says otherwise.
            let versioning_behavior = match run.plugin().versioning {
                Versioning::AutoUpgrade if endpoint.versioned => VersioningBehavior::AutoUpgrade,
                _ => VersioningBehavior::Unspecified,
            };
            WorkflowActivationCompletion {
                run_id,
                status: Some(workflow_activation_completion::Status::Successful(workflow_completion::Success {
                    commands: bridge::outgoing(commands, to),
                    versioning_behavior: versioning_behavior.into(),
                    ..Default::default()
                })),
                ..Default::default()
            }
        }
        Err(e) => fail_traced(runs, e.message, e.stack_trace),
    }
}

/// Logs and counts an input left out of an activation. A replay meets the
/// same input again: it was reported when it first arrived, so a replay
/// only logs it at debug level.
fn report_dropped(registry: &Registry, plugin: &str, workflow_id: &str, run_id: &str, replaying: bool, input: &bridge::DroppedInput) {
    let (kind, handler, cause) = (input.kind.as_str(), &input.handler, &input.cause);
    if replaying {
        tracing::debug!(tenant = registry.tenant(), plugin, workflow_id, run_id, "replay: {kind} `{handler}` dropped again: {cause}");
        return;
    }
    tracing::warn!(
        tenant = registry.tenant(),
        plugin,
        workflow_id,
        run_id,
        "dropped {kind} `{handler}`: its input cannot be decoded ({cause}); the workflow goes on without it"
    );
    registry.metrics().input_dropped(registry.tenant(), plugin, handler, kind);
}

type Running = Arc<Mutex<HashMap<Vec<u8>, Arc<Cancellation>>>>;

async fn activity_loop(
    worker: Arc<Worker>,
    registry: Arc<LiveRegistry>,
    task_queue: String,
    codec: Option<Arc<Codec>>,
) -> anyhow::Result<()> {
    let running: Running = Arc::default();
    loop {
        let task = match worker.poll_activity_task().await {
            Ok(t) => t,
            Err(PollError::ShutDown) => return Ok(()),
            Err(e) => return Err(e).context("polling activity tasks"),
        };
        let ActivityTask { task_token, variant } = task;
        match variant {
            Some(activity_task::Variant::Start(mut start)) => {
                let cancellation = Arc::new(Cancellation::default());
                lock(&running).insert(task_token.clone(), cancellation.clone());
                let (worker, registry, running, task_queue, codec) =
                    (worker.clone(), registry.snapshot(), running.clone(), task_queue.clone(), codec.clone());
                tokio::spawn(async move {
                    let span = traces::ActivityAttempt::begin(&start, &registry, &task_queue);
                    let attempt = async {
                        match codec.as_deref().map_or(Ok(()), |c| crate::codec::decode(c, &mut start)) {
                            Ok(()) => run_attempt(&worker, &registry, &task_queue, &task_token, start, cancellation, codec.clone()).await,
                            Err(e) => crate::codec::attempt_failed(e),
                        }
                    };
                    let outcome = match span {
                        Some(span) => {
                            let outcome = span.instrument(attempt).await;
                            span.finish(&outcome);
                            outcome
                        }
                        None => attempt.await,
                    };
                    lock(&running).remove(&task_token);
                    let mut completion = ActivityTaskCompletion { task_token, result: Some(bridge::activity_result(outcome)) };
                    crate::codec::encode_completion(codec.as_deref(), &mut completion);
                    if let Err(e) = worker.complete_activity_task(completion).await {
                        tracing::error!("completing an activity task: {e}");
                    }
                });
            }
            Some(activity_task::Variant::Cancel(cancel)) => {
                if let Some(cancellation) = lock(&running).get(&task_token) {
                    tracing::info!("activity cancellation requested ({:?})", cancel.reason());
                    cancellation.request();
                }
            }
            None => {}
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn run_attempt(
    worker: &Arc<Worker>,
    registry: &Registry,
    task_queue: &str,
    task_token: &[u8],
    start: temporalio_common::protos::coresdk::activity_task::Start,
    cancellation: Arc<Cancellation>,
    codec: Option<Arc<Codec>>,
) -> AttemptOutcome {
    let failed = |message: String, error_type: &str| AttemptOutcome::Failed {
        message,
        error_type: error_type.into(),
        non_retryable: true,
        details: None,
    };
    let Some(plugin) = registry.activity(&start.activity_type) else {
        let known: Vec<&str> = registry.activity_types().collect();
        // Retryable: the plugin may be dropped into a watched folder, or
        // be served by another worker on this queue.
        return AttemptOutcome::Failed {
            message: format!("no plugin serves activity type `{}` (this worker serves: {})", start.activity_type, known.join(", ")),
            error_type: "NotFoundError".into(),
            non_retryable: false,
            details: None,
        };
    };
    let decoded: Result<Vec<serde_json::Value>, String> =
        start.input.iter().enumerate().map(|(i, p)| bridge::payload_json(p).map_err(|e| format!("argument {i}: {e}"))).collect();
    let args = match decoded {
        Ok(a) => a,
        Err(e) => {
            return failed(format!("plugin {}: activity `{}`: {e}", plugin.name, start.activity_type), "InvalidArgument");
        }
    };
    let last_heartbeat_details = start.heartbeat_details.first().and_then(|p| bridge::payload_json(p).ok()).map(|j| j.to_string());
    let ms = |d: &Option<prost_wkt_types::Duration>| {
        d.as_ref().map(|d| (d.seconds.max(0) as u64).saturating_mul(1000).saturating_add((d.nanos.max(0) as u64) / 1_000_000))
    };
    let execution = start.workflow_execution.clone().unwrap_or_default();
    let heartbeat = {
        let (worker, token, local) = (worker.clone(), task_token.to_vec(), start.is_local);
        Arc::new(move |details: Option<String>| {
            // Local activities have no heartbeats in Temporal: their
            // progress lives in this worker only.
            if local {
                return;
            }
            let heartbeat =
                ActivityHeartbeat { task_token: token.clone(), details: details.iter().map(|d| bridge::json_payload(d)).collect() };
            if let Some(heartbeat) = crate::codec::encode_heartbeat(codec.as_deref(), heartbeat) {
                worker.record_activity_heartbeat(heartbeat);
            }
        })
    };
    let attempt = Arc::new(Attempt {
        info: caisson_runtime::activity::bindings::ActivityInfo {
            activity_id: start.activity_id.clone(),
            activity_type: start.activity_type.clone(),
            task_queue: task_queue.to_owned(),
            workflow_namespace: start.workflow_namespace.clone(),
            workflow_type: start.workflow_type.clone(),
            workflow_id: execution.workflow_id,
            workflow_run_id: execution.run_id,
            attempt: start.attempt,
            start_to_close_timeout_ms: ms(&start.start_to_close_timeout),
            heartbeat_timeout_ms: ms(&start.heartbeat_timeout),
        },
        last_heartbeat_details,
        cancellation,
        heartbeat,
        plugin: plugin.name.clone(),
    });
    // Temporal tells a worker that an attempt timed out only through a
    // heartbeat response; stop running it ourselves once start-to-close
    // has passed (the server has already failed the attempt by then).
    let deadline =
        ms(&start.start_to_close_timeout).map_or(Duration::MAX, |ms| Duration::from_millis(ms).saturating_add(Duration::from_secs(1)));
    let outcome = match tokio::time::timeout(deadline, plugin.run(&start.activity_type, &args, attempt)).await {
        Ok(outcome) => outcome,
        Err(_) => AttemptOutcome::Failed {
            message: format!("plugin {}: activity `{}` ran past its start-to-close timeout", plugin.name, start.activity_type),
            error_type: "TimeoutError".into(),
            non_retryable: false,
            details: None,
        },
    };
    plugin.meters.activity_task(matches!(outcome, AttemptOutcome::Failed { .. }));
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_endpoints_go_uncompressed() {
        let loopback = |address: &str| is_loopback(&Url::parse(address).unwrap());
        assert!(loopback("http://localhost:7233") && loopback("http://127.0.0.1:7233") && loopback("http://127.8.0.3:7233"));
        assert!(loopback("http://[::1]:7233"));
        assert!(
            !loopback("https://orders.tmprl.cloud:7233") && !loopback("http://10.0.0.5:7233") && !loopback("http://[2001:db8::1]:7233")
        );
    }

    #[test]
    fn endpoint_precedence_flags_then_environment_then_defaults() {
        let explicit = TemporalSettings {
            address: Some("temporal.example:7233".into()),
            namespace: Some("orders".into()),
            task_queue: Some("payments".into()),
            api_key: None,
            tls: None,
        };
        let e = Endpoint::resolve(&explicit).unwrap();
        assert_eq!((e.address.as_str(), e.namespace.as_str(), e.task_queue.as_str()), ("temporal.example:7233", "orders", "payments"));
        assert_eq!(e.url().unwrap().as_str(), "http://temporal.example:7233/");
        assert!(e.tls.is_none());
        let with_key = TemporalSettings { api_key: Some("secret".into()), ..explicit };
        let e = Endpoint::resolve(&with_key).unwrap();
        assert!(e.tls.is_some(), "an API key turns TLS on");
        assert!(e.url().unwrap().as_str().starts_with("https://"));
        let bad_tls = TemporalSettings {
            tls: Some(crate::manifest::TlsSettings { client_cert: Some("/nonexistent.pem".into()), ..Default::default() }),
            ..TemporalSettings::default()
        };
        let err = Endpoint::resolve(&bad_tls).unwrap_err().to_string();
        assert!(err.contains("client_key"), "{err}");
    }
}
