//! Plugin versions as Temporal Worker Deployment versions: a dropped-in
//! plugin never breaks a running workflow.
//!
//! A tenant's workflow plugins form a *plugin set*. Each set the worker
//! has loaded is served by its own sdk-core worker, declared to Temporal
//! as a version of the tenant's worker deployment, with a build id derived
//! from the plugins' content hashes ([`Registry::workflow_build_id`]).
//! Workflows are pinned by default: a run stays on the version it started
//! on until it closes, and new runs start on the current version. A plugin
//! that sets `versioning = "auto-upgrade"` moves its runs to the current
//! version at their next workflow task instead (for code using `patched`).
//!
//! The life of a version, driven by [`serve`]:
//!
//! 1. **current**: the set the plugin folders hold now. A changed set
//!    (a file dropped, replaced or removed) starts a new core worker for
//!    the new build id and makes it the deployment's current version.
//! 2. **draining**: an older version keeps polling, for its pinned runs
//!    and their activities, until Temporal reports it drained (no open
//!    pinned workflow).
//! 3. **drained**: its pollers stop and its plugins are unloaded.
//!
//! Each version's workflow plugins are copied into the [`VersionStore`]
//! while it serves, so a worker killed in the middle of a swap comes back
//! serving the versions its runs are pinned to, even though the folder
//! now holds only the new files; a drained version is deleted from it.
//!
//! Activity plugins are not part of a version: every version's worker
//! runs activities on the activity plugins loaded now, so a replaced
//! activity serves new attempts at once (attempts already running finish
//! on the old instance). Keep activity signatures compatible, or give an
//! incompatible activity a new name.
//!
//! A server without worker versioning answers the first call with an
//! error; the worker then logs one line saying how to enable it and
//! serves the tenant unversioned, as before.

use crate::metrics::VersionState;
use crate::registry::{LiveRegistry, LoadedPlugin, Registry};
use crate::worker::{PollingWorker, WorkflowSource};
use anyhow::Context as _;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use temporalio_client::Connection;
use temporalio_client::tonic;
use temporalio_common::protos::temporal::api::deployment::v1::WorkerDeploymentVersion as VersionProto;
use temporalio_common::protos::temporal::api::enums::v1::{RoutingConfigUpdateState, VersionDrainageStatus, WorkerDeploymentVersionStatus};
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    CountWorkflowExecutionsRequest, DescribeWorkerDeploymentRequest, DescribeWorkerDeploymentVersionRequest,
    SetWorkerDeploymentCurrentVersionRequest, SetWorkerDeploymentRampingVersionRequest,
};
use temporalio_common::worker::{VersioningBehavior, WorkerDeploymentOptions, WorkerDeploymentVersion};
use temporalio_sdk_core::WorkerVersioningStrategy;

/// How often the plugin set is compared with the current version's.
const SET_CHECK: Duration = Duration::from_millis(400);
/// How long a routing change may take to reach the task queues before
/// the worker goes on regardless (it is seconds at most).
pub const ROUTING_LIMIT: Duration = Duration::from_secs(10);
/// How often draining versions are asked about (and open runs counted).
pub const DRAIN_CHECK: Duration = Duration::from_secs(2);
/// How long a new version may take to become current: Temporal accepts
/// it only once the version's pollers have reached every task queue.
const PROMOTION_LIMIT: Duration = Duration::from_secs(60);

/// The dev-server options that turn worker versioning on (the default of
/// server 1.32, said explicitly), named in the one-line error when a
/// server has it off.
pub const DEV_SERVER_FLAGS: &[&str] = &[
    "--dynamic-config-value",
    "system.enableDeploymentVersions=true",
    "--dynamic-config-value",
    "frontend.workerVersioningWorkflowAPIs=true",
    "--dynamic-config-value",
    "frontend.workerVersioningDataAPIs=true",
];

/// Dev-server options that make a version's drainage known within
/// seconds of its last pinned run closing (the server's default is three
/// minutes for each), so a drained version is unloaded at once in
/// development. Values are JSON: a bare number is seconds.
pub const DEV_SERVER_FAST_DRAINAGE: &[&str] = &[
    "--dynamic-config-value",
    "matching.wv.VersionDrainageStatusVisibilityGracePeriod=1",
    "--dynamic-config-value",
    "matching.wv.VersionDrainageStatusRefreshInterval=1",
];

/// A deployment name Temporal accepts, from a task queue's name: the
/// server refuses `.` and `:` in deployment names.
pub fn deployment_name_for(task_queue: &str) -> String {
    task_queue.replace(['.', ':'], "-")
}

/// What a tenant's versions are served with.
#[derive(Debug, Clone)]
pub struct VersioningOptions {
    /// The worker deployment's name (default: the task queue's).
    pub deployment: String,
    /// Where versions are kept while they serve.
    pub store: VersionStore,
    /// Promote a set that drops workflow types the current one serves.
    pub allow_type_removal: bool,
    /// Make each new plugin set current as soon as it serves (default);
    /// when false, a new set only registers, and the operator ramps and
    /// promotes it (`caisson deployment`).
    pub auto_promote: bool,
    /// Build ids kept serving even when drained (and served again after
    /// a restart while their copy is kept): older versions run side by
    /// side on purpose, to ramp between or roll back to.
    pub keep: Vec<String>,
}

/// Why a deployment call failed.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// The server has worker versioning switched off.
    #[error(
        "the Temporal server at {address} does not have worker versioning enabled ({message}); plugins are served \
         unversioned, so a replaced workflow plugin serves running workflows at their next task. To pin runs to their \
         version, enable it (dev server: `temporal server start-dev --dynamic-config-value \
         system.enableDeploymentVersions=true`; `caisson dev` does this), or pass --no-versioning to silence this"
    )]
    NotEnabled {
        /// The frontend.
        address: String,
        /// The server's words.
        message: String,
    },
    /// Any other failure of the call.
    #[error("{call}: {status}")]
    Call {
        /// What was asked.
        call: &'static str,
        /// The server's answer.
        status: Box<tonic::Status>,
    },
}

/// The deployment calls Caisson makes, on one namespace and deployment.
#[derive(Clone)]
pub struct Deployment {
    connection: Connection,
    namespace: String,
    name: String,
    address: String,
    identity: String,
}

impl std::fmt::Debug for Deployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployment").field("namespace", &self.namespace).field("name", &self.name).finish()
    }
}

/// A version's status as the server reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerVersionState {
    /// Current, ramping, draining, drained...
    pub status: WorkerDeploymentVersionStatus,
    /// Drained: no open pinned workflow is left on it.
    pub drained: bool,
}

impl Deployment {
    /// Calls about deployment `name` in `namespace` over `connection`.
    pub fn new(connection: Connection, namespace: &str, name: &str, address: &str) -> Self {
        let identity = format!("{}@caisson", std::process::id());
        Deployment { connection, namespace: namespace.into(), name: name.into(), address: address.into(), identity }
    }

    /// The deployment's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn classify(&self, call: &'static str, status: tonic::Status) -> DeploymentError {
        let message = status.message().to_owned();
        let lower = message.to_ascii_lowercase();
        // Server 1.32 with versioning off: PermissionDenied "Worker
        // Deployment Versions are disabled on this namespace."
        let off = status.code() == tonic::Code::Unimplemented
            || (status.code() == tonic::Code::PermissionDenied && (lower.contains("disabled") || lower.contains("not enabled")));
        if off {
            DeploymentError::NotEnabled { address: self.address.clone(), message }
        } else {
            DeploymentError::Call { call, status: Box::new(status) }
        }
    }

    fn version(&self, build_id: &str) -> VersionProto {
        VersionProto { deployment_name: self.name.clone(), build_id: build_id.into() }
    }

    /// The server's view of one version; `None` when it does not know it.
    pub async fn describe(&self, build_id: &str) -> Result<Option<ServerVersionState>, DeploymentError> {
        let request = DescribeWorkerDeploymentVersionRequest {
            namespace: self.namespace.clone(),
            deployment_version: Some(self.version(build_id)),
            ..Default::default()
        };
        match self.connection.workflow_service().describe_worker_deployment_version(tonic::Request::new(request)).await {
            Ok(response) => {
                let info = response.into_inner().worker_deployment_version_info.unwrap_or_default();
                let drained = info.drainage_info.as_ref().is_some_and(|d| d.status() == VersionDrainageStatus::Drained)
                    || info.status() == WorkerDeploymentVersionStatus::Drained;
                Ok(Some(ServerVersionState { status: info.status(), drained }))
            }
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(self.classify("describing a worker deployment version", status)),
        }
    }

    /// Asks whether the server speaks worker versioning at all.
    pub async fn probe(&self) -> Result<(), DeploymentError> {
        self.describe("caisson-probe").await.map(drop)
    }

    /// Makes `build_id` the deployment's current version.
    pub async fn set_current(&self, build_id: &str) -> Result<(), DeploymentError> {
        let request = SetWorkerDeploymentCurrentVersionRequest {
            namespace: self.namespace.clone(),
            deployment_name: self.name.clone(),
            build_id: build_id.into(),
            identity: self.identity.clone(),
            ..Default::default()
        };
        self.connection
            .workflow_service()
            .set_worker_deployment_current_version(tonic::Request::new(request))
            .await
            .map(drop)
            .map_err(|s| self.classify("setting the current worker deployment version", s))
    }

    /// Whether a routing change has reached every task queue of the
    /// deployment (Temporal applies it asynchronously after the call).
    pub async fn routing_settled(&self) -> Result<bool, DeploymentError> {
        let request = DescribeWorkerDeploymentRequest { namespace: self.namespace.clone(), deployment_name: self.name.clone() };
        let response = self
            .connection
            .workflow_service()
            .describe_worker_deployment(tonic::Request::new(request))
            .await
            .map_err(|s| self.classify("describing a worker deployment", s))?;
        let info = response.into_inner().worker_deployment_info.unwrap_or_default();
        Ok(info.routing_config_update_state() != RoutingConfigUpdateState::InProgress)
    }

    /// Waits (up to `limit`) until a routing change has reached the task
    /// queues, so the next task of every run sees it: an auto-upgrade run
    /// moves at once, and a new run starts where it now should.
    pub async fn wait_for_routing(&self, limit: Duration) -> Result<(), DeploymentError> {
        let started = Instant::now();
        while !self.routing_settled().await? && started.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Sends `percentage` % of new runs to `build_id` (0 stops the ramp).
    pub async fn set_ramping(&self, build_id: &str, percentage: f32) -> Result<(), DeploymentError> {
        let request = SetWorkerDeploymentRampingVersionRequest {
            namespace: self.namespace.clone(),
            deployment_name: self.name.clone(),
            build_id: build_id.into(),
            percentage,
            identity: self.identity.clone(),
            ..Default::default()
        };
        self.connection
            .workflow_service()
            .set_worker_deployment_ramping_version(tonic::Request::new(request))
            .await
            .map(drop)
            .map_err(|s| self.classify("setting the ramping worker deployment version", s))
    }

    /// Open workflows whose runs are on `build_id` (from visibility, so a
    /// second or so behind).
    pub async fn open_workflows(&self, build_id: &str) -> Result<u64, DeploymentError> {
        let query =
            format!("TemporalWorkerDeploymentVersion = '{}:{build_id}' AND ExecutionStatus = 'Running'", self.name.replace('\'', "\\'"));
        let request = CountWorkflowExecutionsRequest { namespace: self.namespace.clone(), query };
        self.connection
            .workflow_service()
            .count_workflow_executions(tonic::Request::new(request))
            .await
            .map(|r| r.into_inner().count.max(0) as u64)
            .map_err(|s| self.classify("counting open workflows", s))
    }
}

/// Where a tenant's versions are kept while they serve:
/// `ROOT/NAMESPACE/DEPLOYMENT/BUILD_ID/NAME.wasm` (and `NAME.toml`).
#[derive(Debug, Clone)]
pub struct VersionStore {
    dir: PathBuf,
}

impl VersionStore {
    /// The default root: `$CAISSON_STATE_DIR`, else
    /// `$XDG_STATE_HOME/caisson`, else `~/.local/state/caisson`.
    pub fn default_root() -> PathBuf {
        if let Some(dir) = std::env::var_os("CAISSON_STATE_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join("caisson");
        }
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local/state/caisson")
    }

    /// The store of one deployment under `root`.
    pub fn new(root: &Path, namespace: &str, deployment: &str) -> Self {
        // One path segment, never `.` or `..`.
        let safe = |s: &str| {
            let name: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
            if name.chars().all(|c| c == '.') { format!("_{name}") } else { name }
        };
        VersionStore { dir: root.join("versions").join(safe(namespace)).join(safe(deployment)) }
    }

    /// The folder of one version.
    pub fn version_dir(&self, build_id: &str) -> PathBuf {
        self.dir.join(build_id)
    }

    /// Copies a version's workflow plugins (and their grants files) in,
    /// unless they are there already. Written to a dot-folder and renamed,
    /// so a killed worker never leaves half a version.
    pub fn keep(&self, build_id: &str, plugins: &[&LoadedPlugin]) -> std::io::Result<()> {
        let target = self.version_dir(build_id);
        if target.is_dir() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)?;
        let staging = self.dir.join(format!(".{build_id}.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging)?;
        for plugin in plugins {
            std::fs::copy(&plugin.path, staging.join(format!("{}.wasm", plugin.name)))?;
            if let Some(sidecar) = &plugin.sidecar {
                std::fs::copy(sidecar, staging.join(format!("{}.toml", plugin.name)))?;
            }
        }
        match std::fs::rename(&staging, &target) {
            Ok(()) => Ok(()),
            Err(_) if target.is_dir() => std::fs::remove_dir_all(&staging),
            Err(e) => Err(e),
        }
    }

    /// The build ids kept, sorted.
    pub fn stored(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut ids: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.'))
            .collect();
        ids.sort();
        ids
    }

    /// Deletes a drained version.
    pub fn forget(&self, build_id: &str) {
        let _ = std::fs::remove_dir_all(self.version_dir(build_id));
    }
}

/// A registry whose workflow plugins are those kept for `build_id`, and
/// whose activity plugins are the tenant's (activities are not versioned).
fn registry_from_store(live: &LiveRegistry, store: &VersionStore, build_id: &str) -> anyhow::Result<Registry> {
    let mut registry = (*live.snapshot()).clone();
    let workflow_names: Vec<String> = registry.workflow_plugins().map(|p| p.name.clone()).collect();
    for name in workflow_names {
        registry.unload(&name);
    }
    let dir = store.version_dir(build_id);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading kept version {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    files.sort();
    for path in files {
        let settings = crate::manifest::PluginSettings::for_component(&path)?;
        let name = caisson_runtime::plugin::plugin_name(&path);
        let settings = live.admission().admit(&name, settings)?;
        registry.load(&path, settings).with_context(|| format!("loading kept version {build_id}"))?;
    }
    let actual = registry.workflow_build_id();
    anyhow::ensure!(actual == build_id, "kept version {} holds plugins of build id {actual}", dir.display());
    Ok(registry)
}

/// One version a tenant serves.
struct ServedVersion {
    build_id: String,
    registry: Arc<Registry>,
    worker: PollingWorker,
    status: VersionState,
    open: Option<u64>,
}

/// What one tenant needs to serve its versions.
pub struct VersionedTenant {
    /// Names the tenant in logs and metrics.
    pub name: String,
    /// Its plugins, changing as its folders do.
    pub registry: Arc<LiveRegistry>,
    /// Deployment name, store, promotion rule.
    pub options: VersioningOptions,
    /// Starts the core worker of one version (its strategy, its plugins).
    pub start: Box<dyn Fn(WorkerVersioningStrategy, WorkflowSource) -> StartFuture + Send + Sync>,
    /// Graceful shutdown period of each version's worker.
    pub grace: Duration,
}

/// A version's worker, starting.
pub type StartFuture = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<PollingWorker>> + Send>>;

fn strategy(deployment: &str, build_id: &str) -> WorkerVersioningStrategy {
    let version = WorkerDeploymentVersion::builder().deployment_name(deployment).build_id(build_id).build();
    WorkerVersioningStrategy::WorkerDeploymentBased(
        WorkerDeploymentOptions::new(version).use_worker_versioning(true).default_versioning_behavior(VersioningBehavior::Pinned).build(),
    )
}

/// Serves a tenant's plugin sets as deployment versions until `stop`
/// becomes true, then shuts every version's worker down.
///
/// `ready` is called once the current version is current on the server
/// (the tenant then takes new runs).
pub async fn serve(
    tenant: VersionedTenant,
    deployment: Deployment,
    mut stop: tokio::sync::watch::Receiver<bool>,
    ready: impl FnOnce(&str),
) -> anyhow::Result<()> {
    let store = &tenant.options.store;
    let mut versions: Vec<ServedVersion> = Vec::new();
    let snapshot = tenant.registry.snapshot();
    let current_id = snapshot.workflow_build_id();

    // Versions kept by an earlier run of this worker whose pinned runs may
    // still be open: serve them again until Temporal says they drained.
    for build_id in store.stored().into_iter().filter(|id| *id != current_id) {
        let kept_on_purpose = tenant.options.keep.contains(&build_id);
        match deployment.describe(&build_id).await {
            Ok(state) if kept_on_purpose || state.is_some_and(|s| !s.drained) => {
                let registry = match registry_from_store(&tenant.registry, store, &build_id) {
                    Ok(r) => Arc::new(r),
                    Err(e) => {
                        tracing::warn!(tenant = %tenant.name, "version {build_id} cannot be served again: {e:#}");
                        continue;
                    }
                };
                let worker = (tenant.start)(strategy(deployment.name(), &build_id), WorkflowSource::Fixed(registry.clone())).await?;
                tracing::info!(tenant = %tenant.name, deployment = deployment.name(), "version {build_id} serves its pinned runs again (kept in {})", store.version_dir(&build_id).display());
                versions.push(ServedVersion { build_id, registry, worker, status: VersionState::Draining, open: None });
            }
            Ok(_) => {
                tracing::info!(tenant = %tenant.name, "version {build_id} is drained (or unknown to the server): deleting the kept copy");
                store.forget(&build_id);
            }
            Err(e) => return Err(e.into()),
        }
    }

    // With manual promotion, a restarted worker keeps the version the
    // operator made current, if it serves it.
    let mut current = None;
    if !tenant.options.auto_promote {
        for v in &versions {
            if let Ok(Some(state)) = deployment.describe(&v.build_id).await
                && state.status == WorkerDeploymentVersionStatus::Current
            {
                current = Some(v.build_id.clone());
            }
        }
        if let Ok(Some(state)) = deployment.describe(&current_id).await
            && state.status == WorkerDeploymentVersionStatus::Current
        {
            current = Some(current_id.clone());
        }
    }
    let mut seen = snapshot.clone();
    let mut current = match current {
        Some(id) => {
            register(&tenant, &deployment, snapshot, &mut versions).await?;
            set_statuses(&tenant, &deployment, &id, &mut versions);
            id
        }
        None => promote(&tenant, &deployment, snapshot, &mut versions).await?,
    };
    ready(&current);
    // The newest plugin set acted on (registered, and current unless
    // promotion is manual), and the last one refused.
    let mut latest = current_id;
    let mut refused: Option<String> = None;
    let mut last_check = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SET_CHECK) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        // The folder's plugins change rarely: hash them only when they did.
        let snapshot = tenant.registry.snapshot();
        let candidate = if Arc::ptr_eq(&snapshot, &seen) {
            latest.clone()
        } else {
            seen = snapshot.clone();
            snapshot.workflow_build_id()
        };
        if candidate != latest && refused.as_deref() != Some(candidate.as_str()) {
            let serving = versions.iter().find(|v| v.build_id == current).map(|v| v.registry.clone());
            let removed: Vec<String> = match &serving {
                Some(old) => {
                    let new: BTreeSet<&str> = snapshot.workflow_types().collect();
                    old.workflow_types().filter(|t| !new.contains(t)).map(str::to_owned).collect()
                }
                None => Vec::new(),
            };
            if !removed.is_empty() && !tenant.options.allow_type_removal {
                tracing::error!(
                    tenant = %tenant.name,
                    deployment = deployment.name(),
                    "plugin set version {candidate} not promoted: it drops workflow type(s) {} that the current version \
                     {current} serves, so new runs of them would find no worker. Restore them, or restart the worker with \
                     --allow-type-removal to promote it anyway; version {current} stays current",
                    removed.join(", ")
                );
                refused = Some(candidate);
                continue;
            }
            let acted = if tenant.options.auto_promote {
                promote(&tenant, &deployment, snapshot, &mut versions).await.map(|id| {
                    tracing::info!(
                        tenant = %tenant.name,
                        deployment = deployment.name(),
                        "plugin set version {id} is current; version {current} drains: its pinned runs finish on it"
                    );
                    current = id.clone();
                    id
                })
            } else {
                register(&tenant, &deployment, snapshot, &mut versions).await.map(|id| {
                    tracing::info!(
                        tenant = %tenant.name,
                        deployment = deployment.name(),
                        "plugin set version {id} registered, not current (manual promotion): ramp it with `caisson \
                         deployment ramp --deployment {} {id} PERCENT`, promote it with `caisson deployment promote \
                         --deployment {} {id}`; version {current} stays current",
                        deployment.name(),
                        deployment.name()
                    );
                    set_statuses(&tenant, &deployment, &current, &mut versions);
                    id
                })
            };
            match acted {
                Ok(id) => {
                    latest = id;
                    refused = None;
                }
                Err(e) => {
                    tracing::error!(tenant = %tenant.name, "plugin set version {candidate} could not be served: {e:#}");
                    refused = Some(candidate);
                }
            }
        }
        if last_check.elapsed() >= DRAIN_CHECK {
            last_check = Instant::now();
            check_versions(&tenant, &deployment, &mut current, &latest, &mut versions).await;
        }
    }
    tracing::info!(tenant = %tenant.name, "stopping {} version worker(s)", versions.len());
    for v in &versions {
        v.worker.initiate_shutdown();
    }
    for v in versions {
        v.worker.finish(&tenant.name, tenant.grace).await?;
    }
    Ok(())
}

/// Starts the worker of `snapshot`'s plugin set unless it runs already,
/// and keeps its plugins in the store. Returns its build id.
async fn register(
    tenant: &VersionedTenant,
    deployment: &Deployment,
    snapshot: Arc<Registry>,
    versions: &mut Vec<ServedVersion>,
) -> anyhow::Result<String> {
    let build_id = snapshot.workflow_build_id();
    let plugins: Vec<&LoadedPlugin> = snapshot.workflow_plugins().collect();
    if let Err(e) = tenant.options.store.keep(&build_id, &plugins) {
        tracing::warn!(
            tenant = %tenant.name,
            "cannot keep version {build_id} in {}: {e}; if this worker is killed before its runs close, they wait for it",
            tenant.options.store.version_dir(&build_id).display()
        );
    }
    if !versions.iter().any(|v| v.build_id == build_id) {
        let worker = (tenant.start)(strategy(deployment.name(), &build_id), WorkflowSource::Fixed(snapshot.clone())).await?;
        versions.push(ServedVersion { build_id: build_id.clone(), registry: snapshot, worker, status: VersionState::Inactive, open: None });
    }
    Ok(build_id)
}

/// Registers `snapshot`'s plugin set and makes it current on the server.
/// The version that was current becomes draining.
async fn promote(
    tenant: &VersionedTenant,
    deployment: &Deployment,
    snapshot: Arc<Registry>,
    versions: &mut Vec<ServedVersion>,
) -> anyhow::Result<String> {
    let build_id = register(tenant, deployment, snapshot, versions).await?;
    // The server accepts a version as current once its pollers have
    // reached it; until then it answers that the version has no pollers.
    let started = Instant::now();
    loop {
        match deployment.set_current(&build_id).await {
            Ok(()) => {
                deployment.wait_for_routing(ROUTING_LIMIT).await?;
                break;
            }
            Err(e @ DeploymentError::NotEnabled { .. }) => return Err(e.into()),
            Err(e) if started.elapsed() > PROMOTION_LIMIT => {
                return Err(anyhow::Error::new(e).context(format!("version {build_id} did not become current within {PROMOTION_LIMIT:?}")));
            }
            Err(e) => tracing::debug!("version {build_id} not current yet: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    set_statuses(tenant, deployment, &build_id, versions);
    Ok(build_id)
}

/// Marks `current` current and every other version draining, unless it
/// never served (inactive).
fn set_statuses(tenant: &VersionedTenant, deployment: &Deployment, current: &str, versions: &mut [ServedVersion]) {
    for v in versions.iter_mut() {
        v.status = if v.build_id == current {
            VersionState::Current
        } else if v.status == VersionState::Inactive {
            VersionState::Inactive
        } else {
            VersionState::Draining
        };
        report(tenant, deployment, v);
    }
}

/// Asks the server about every version (an operator may have ramped or
/// promoted one), counts their open runs, and unloads drained ones.
async fn check_versions(
    tenant: &VersionedTenant,
    deployment: &Deployment,
    current: &mut String,
    latest: &str,
    versions: &mut Vec<ServedVersion>,
) {
    let mut drained = Vec::new();
    for (i, v) in versions.iter_mut().enumerate() {
        v.open = deployment.open_workflows(&v.build_id).await.ok();
        match deployment.describe(&v.build_id).await {
            Ok(Some(state)) => {
                v.status = match state.status {
                    _ if state.drained => VersionState::Drained,
                    WorkerDeploymentVersionStatus::Current => {
                        if *current != v.build_id {
                            tracing::info!(tenant = %tenant.name, deployment = deployment.name(), "version {} is current now (was {current})", v.build_id);
                            *current = v.build_id.clone();
                        }
                        VersionState::Current
                    }
                    WorkerDeploymentVersionStatus::Ramping => VersionState::Ramping,
                    WorkerDeploymentVersionStatus::Draining => VersionState::Draining,
                    _ => VersionState::Inactive,
                };
                // The newest set stays loaded until something replaces
                // it, and a version kept on purpose stays loaded.
                let keep = v.build_id == latest || v.build_id == *current || tenant.options.keep.contains(&v.build_id);
                if v.status == VersionState::Drained && !keep {
                    drained.push(i);
                }
            }
            Ok(None) => {}
            Err(e) => tracing::debug!("asking about version {}: {e}", v.build_id),
        }
        report(tenant, deployment, v);
    }
    for i in drained.into_iter().rev() {
        let mut v = versions.remove(i);
        v.open = Some(0);
        report(tenant, deployment, &v);
        v.worker.initiate_shutdown();
        let (name, grace, store) = (tenant.name.clone(), tenant.grace, tenant.options.store.clone());
        let plugins: Vec<String> = v.registry.workflow_plugins().map(|p| format!("{} ({})", p.name, &p.sha256[..12])).collect();
        tracing::info!(
            tenant = %tenant.name,
            deployment = deployment.name(),
            "version {} drained: no open pinned runs; its pollers stop and its plugins are unloaded: {}",
            v.build_id,
            plugins.join(", ")
        );
        store.forget(&v.build_id);
        tokio::spawn(async move {
            if let Err(e) = v.worker.finish(&name, grace).await {
                tracing::warn!(tenant = %name, "stopping drained version {}: {e:#}", v.build_id);
            }
        });
    }
}

fn report(tenant: &VersionedTenant, deployment: &Deployment, v: &ServedVersion) {
    v.registry.metrics().version_status(&tenant.name, deployment.name(), &v.build_id, v.status, v.open, &v.registry);
}

#[cfg(test)]
mod tests {
    use super::*;
    use caisson_runtime::policy::PluginKind;

    fn loaded(dir: &Path, name: &str, bytes: &[u8], sidecar: Option<&str>) -> LoadedPlugin {
        let path = dir.join(format!("{name}.wasm"));
        std::fs::write(&path, bytes).unwrap();
        let sidecar = sidecar.map(|text| {
            let p = dir.join(format!("{name}.toml"));
            std::fs::write(&p, text).unwrap();
            p
        });
        LoadedPlugin { name: name.into(), path, kind: PluginKind::Workflow, sha256: "00".repeat(32), types: vec![], sidecar }
    }

    #[test]
    fn a_kept_version_holds_its_plugins_and_grants_until_forgotten() {
        let source = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let store = VersionStore::new(root.path(), "default", "orders");
        let a = loaded(source.path(), "saga", b"v1 bytes", Some("versioning = \"auto-upgrade\"\n"));
        let b = loaded(source.path(), "approval", b"other", None);
        store.keep("caisson-1", &[&a, &b]).unwrap();
        let kept = root.path().join("versions/default/orders/caisson-1");
        assert_eq!(std::fs::read(kept.join("saga.wasm")).unwrap(), b"v1 bytes");
        assert!(kept.join("saga.toml").is_file() && kept.join("approval.wasm").is_file() && !kept.join("approval.toml").exists());
        // Keeping again changes nothing, even if the folder's file changed.
        std::fs::write(&a.path, b"v2 bytes").unwrap();
        store.keep("caisson-1", &[&a]).unwrap();
        assert_eq!(std::fs::read(kept.join("saga.wasm")).unwrap(), b"v1 bytes");
        store.keep("caisson-2", &[&a]).unwrap();
        // A staging folder left by a killed worker is not a version.
        std::fs::create_dir_all(root.path().join("versions/default/orders/.caisson-3.123")).unwrap();
        assert_eq!(store.stored(), ["caisson-1", "caisson-2"]);
        store.forget("caisson-1");
        assert_eq!(store.stored(), ["caisson-2"]);
    }

    #[test]
    fn store_paths_never_leave_the_root() {
        let root = tempfile::tempdir().unwrap();
        let store = VersionStore::new(root.path(), "../etc", "a/b");
        assert!(store.version_dir("x").starts_with(root.path().join("versions")));
        assert_eq!(store.version_dir("x"), root.path().join("versions/.._etc/a_b/x"));
        let dots = VersionStore::new(root.path(), "..", ".");
        assert_eq!(dots.version_dir("x"), root.path().join("versions/_../_./x"));
    }

    #[test]
    fn deployment_names_come_from_task_queues_without_dots_or_colons() {
        assert_eq!(deployment_name_for("orders.v1:eu"), "orders-v1-eu");
        assert_eq!(deployment_name_for("orders"), "orders");
        assert!(crate::manifest::check_deployment_name("--deployment", "orders-plugins").is_ok());
        let err = crate::manifest::check_deployment_name("tenant[0].deployment", "orders.v1").unwrap_err().to_string();
        assert!(err.contains("tenant[0].deployment") && err.contains("without `.` or `:`"), "{err}");
        assert!(crate::manifest::check_deployment_name("--deployment", "").is_err());
    }

    #[test]
    fn a_build_id_depends_on_the_hashes_not_their_order() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let id = crate::registry::build_id([a.as_str(), b.as_str()]);
        assert_eq!(id, crate::registry::build_id([b.as_str(), a.as_str()]));
        assert_ne!(id, crate::registry::build_id([a.as_str()]));
        assert!(id.starts_with("caisson-") && id.len() == "caisson-".len() + 16, "{id}");
    }
}
