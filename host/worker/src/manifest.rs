//! The worker manifest (`caisson.toml`): connection, tuning, tenants and
//! plugins.
//!
//! ```toml
//! [temporal]                  # or TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE / TEMPORAL_API_KEY
//! address = "localhost:7233"
//! namespace = "default"
//! task_queue = "orders"
//!
//! [[plugin]]
//! path = "plugins/order_saga.wasm"   # kind inferred from its imports
//!
//! [[plugin]]
//! path = "plugins/payments.wasm"
//! allow_outbound = ["http://127.0.0.1:8080"]
//! memory_mb = 64
//! ```
//!
//! A plugin's own keys (grants and limits) are
//! [`caisson_runtime::settings::PluginSettings`], re-exported here.

pub use caisson_runtime::settings::{DirAccess, DirGrant, ManifestError, PluginSettings, parse_duration};
use caisson_runtime::settings::{duration_str, parse, read};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Connection settings for the Temporal server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemporalSettings {
    /// `host:port` of the frontend; default `localhost:7233`.
    pub address: Option<String>,
    /// Namespace; default `default`.
    pub namespace: Option<String>,
    /// Task queue this worker polls; default `caisson`.
    pub task_queue: Option<String>,
    /// API key sent as a bearer token (Temporal Cloud).
    pub api_key: Option<String>,
    /// TLS settings; TLS is on when this table is present or an API key is set.
    pub tls: Option<TlsSettings>,
}

/// TLS client settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file with the server's CA certificate (default: system roots).
    pub server_ca_cert: Option<PathBuf>,
    /// PEM client certificate for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// PEM client private key for mutual TLS.
    pub client_key: Option<PathBuf>,
    /// Server name to verify, when it differs from the address host.
    pub server_name: Option<String>,
}

/// Worker tuning.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// Running workflows kept in memory between tasks (sticky cache).
    pub max_cached_workflows: usize,
    /// Workflow tasks processed at once.
    pub max_concurrent_workflow_tasks: usize,
    /// Activity attempts run at once.
    pub max_concurrent_activities: usize,
    /// Grace period for in-flight work on shutdown: activities still
    /// running when it ends are cancelled, workflow tasks are handed back.
    #[serde(with = "duration_str")]
    pub shutdown_grace: Duration,
    /// Where to serve Prometheus metrics (`host:port`); off when absent.
    pub metrics_address: Option<std::net::SocketAddr>,
    /// MiB of linear memory all instances of this worker may hold together
    /// (every tenant's). Absent: 75% of the machine's (or cgroup's) memory,
    /// so one burst of big activities fails retryably instead of getting the
    /// worker OOM-killed. Must be at least 1.
    pub memory_budget_mb: Option<u64>,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            max_cached_workflows: 1000,
            max_concurrent_workflow_tasks: 100,
            max_concurrent_activities: 100,
            shutdown_grace: Duration::from_secs(10),
            metrics_address: None,
            memory_budget_mb: None,
        }
    }
}

/// A worker manifest: connection, tuning and plugins.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerManifest {
    /// Where the Temporal server is.
    #[serde(default)]
    pub temporal: TemporalSettings,
    /// Worker tuning.
    #[serde(default)]
    pub worker: WorkerSettings,
    /// The plugins to load.
    #[serde(default)]
    pub plugin: Vec<PluginSettings>,
    /// Tenants served by this worker process, each on its own namespace
    /// and task queue. When there are none, the `[temporal]` endpoint and
    /// the `[[plugin]]` entries form one tenant named `default`.
    #[serde(default)]
    pub tenant: Vec<TenantSettings>,
}

/// One tenant: a namespace + task queue with its own plugins, the most
/// its plugins may be granted, and its share of the worker.
///
/// ```toml
/// [[tenant]]
/// name = "acme"
/// task_queue = "acme"                # default: the tenant's name
/// plugin_dir = "tenants/acme"        # watched: drop NAME.wasm (+ NAME.toml) in
/// max_concurrent_workflow_tasks = 4
/// max_concurrent_activities = 4
/// max_cached_workflows = 200
///
/// [tenant.limits]                    # ceilings on what NAME.toml may grant
/// allow_dirs = ["data/acme"]         # granted dirs must lie inside these
/// allow_outbound = ["http://127.0.0.1:*"]
/// allow_secrets = []
/// memory_mb = 64
/// fuel = 1000000000
/// timeout = "30s"
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// Names the tenant in logs, metrics and `caisson plugins`.
    pub name: String,
    /// Namespace; default: the `[temporal]` namespace.
    pub namespace: Option<String>,
    /// Task queue; default: the tenant's name.
    pub task_queue: Option<String>,
    /// A folder watched for plugins (`NAME.wasm` + optional `NAME.toml`).
    pub plugin_dir: Option<PathBuf>,
    /// Plugins listed explicitly.
    #[serde(default)]
    pub plugin: Vec<PluginSettings>,
    /// Workflow tasks of this tenant processed at once.
    pub max_concurrent_workflow_tasks: Option<usize>,
    /// Activity attempts of this tenant run at once.
    pub max_concurrent_activities: Option<usize>,
    /// This tenant's share of the sticky cache (running workflows kept in memory).
    pub max_cached_workflows: Option<usize>,
    /// Ceilings on what this tenant's plugins may be granted.
    #[serde(default)]
    pub limits: TenantLimits,
}

/// The most a tenant's plugins may be granted. A plugin asking for more is
/// refused (named, with the grant at fault); limits it leaves out are set
/// to the ceiling. Nothing listed means nothing allowed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantLimits {
    /// Host folders under which granted `dirs` must lie.
    #[serde(default)]
    pub allow_dirs: Vec<PathBuf>,
    /// Patterns that must cover each plugin `allow_outbound` pattern.
    #[serde(default)]
    pub allow_outbound: Vec<String>,
    /// Host environment variables plugins may copy in as `secrets`.
    #[serde(default)]
    pub allow_secrets: Vec<String>,
    /// Most linear memory per instance, in MiB.
    pub memory_mb: Option<u64>,
    /// Most fuel per workflow activation.
    pub fuel: Option<u64>,
    /// Longest wall-clock time per activity attempt or workflow activation.
    #[serde(default, with = "duration_str::option")]
    pub timeout: Option<Duration>,
}

impl WorkerManifest {
    /// Reads a worker manifest; plugin paths and granted directories are
    /// made relative to the manifest's folder.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let mut manifest: WorkerManifest = parse(path, &read(path)?)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for plugin in &mut manifest.plugin {
            if plugin.path.is_none() {
                return Err(ManifestError::Parse {
                    path: path.to_owned(),
                    message: "a [[plugin]] entry lacks `path = \"....wasm\"`".into(),
                });
            }
            plugin.resolve_paths(base);
        }
        let mut names = std::collections::BTreeSet::new();
        for tenant in &mut manifest.tenant {
            if !names.insert(tenant.name.clone()) {
                return Err(ManifestError::Parse {
                    path: path.to_owned(),
                    message: format!("two [[tenant]] entries are named `{}`", tenant.name),
                });
            }
            if let Some(dir) = &tenant.plugin_dir
                && dir.is_relative()
            {
                tenant.plugin_dir = Some(base.join(dir));
            }
            for plugin in &mut tenant.plugin {
                if plugin.path.is_none() {
                    return Err(ManifestError::Parse {
                        path: path.to_owned(),
                        message: format!("a [[tenant.plugin]] entry of tenant `{}` lacks `path = \"....wasm\"`", tenant.name),
                    });
                }
                plugin.resolve_paths(base);
            }
            for dir in &mut tenant.limits.allow_dirs {
                if dir.is_relative() {
                    *dir = base.join(&*dir);
                }
            }
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use caisson_runtime::policy::DeterminismMode;

    #[test]
    fn worker_manifest_with_defaults_denied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("caisson.toml");
        std::fs::write(
            &path,
            r#"
            [temporal]
            address = "localhost:7233"
            task_queue = "orders"

            [[plugin]]
            path = "saga.wasm"

            [[plugin]]
            path = "pay.wasm"
            allow_outbound = ["http://127.0.0.1:8080"]
            dirs = [{ host = "data", guest = "/data", access = "read-write" }]
            env = { MODE = "test" }
            timeout = "30s"
            "#,
        )
        .unwrap();
        let m = WorkerManifest::load(&path).unwrap();
        assert_eq!(m.temporal.task_queue.as_deref(), Some("orders"));
        let saga = &m.plugin[0];
        assert_eq!(saga.path.as_deref(), Some(dir.path().join("saga.wasm").as_path()));
        assert!(saga.dirs.is_empty() && saga.allow_outbound.is_empty() && saga.env.is_empty());
        assert_eq!(saga.determinism, DeterminismMode::Strict);
        let pay = &m.plugin[1];
        assert_eq!(pay.dirs[0].host, dir.path().join("data"));
        assert_eq!(pay.dirs[0].access, DirAccess::ReadWrite);
        assert_eq!(pay.timeout, Some(Duration::from_secs(30)));
    }
}
