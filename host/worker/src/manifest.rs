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

pub use caisson_runtime::settings::{
    CodecSettings, DirAccess, DirGrant, ManifestError, PluginSettings, SettingError, Versioning, limits, parse_duration,
};
use caisson_runtime::settings::{check_duration, check_not_empty, check_range, duration_str, parse, read};
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
    /// `auto` (default): serve each workflow plugin set as a Temporal
    /// worker deployment version when the server has worker versioning on
    /// (running workflows stay on the version they started on); `off`:
    /// unversioned, a replaced plugin serves every run's next task.
    pub versioning: VersioningMode,
    /// The worker deployment's name; default: the task queue's name.
    pub deployment: Option<String>,
    /// Build ids of plugin set versions to keep serving when drained
    /// (side by side with the current one, to ramp to or roll back to).
    pub keep_versions: Vec<String>,
    /// Where versions are kept while their runs are open, so that a
    /// restarted worker serves them again; default `$CAISSON_STATE_DIR`,
    /// else `$XDG_STATE_HOME/caisson`, else `~/.local/state/caisson`.
    pub state_dir: Option<PathBuf>,
    /// OpenTelemetry collector to export traces (and, unless
    /// `metrics_address` serves Prometheus, metrics) to, e.g.
    /// `http://127.0.0.1:4317`; default `OTEL_EXPORTER_OTLP_ENDPOINT`, off
    /// when neither is set.
    pub otlp_endpoint: Option<String>,
    /// `grpc` (default) or `http/protobuf`; default
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub otlp_protocol: Option<crate::traces::OtlpProtocol>,
}

/// Whether plugin sets are served as worker deployment versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VersioningMode {
    /// When the server supports it.
    #[default]
    Auto,
    /// Never.
    Off,
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
            versioning: VersioningMode::Auto,
            deployment: None,
            keep_versions: Vec::new(),
            state_dir: None,
            otlp_endpoint: None,
            otlp_protocol: None,
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
    /// The payload codec of every tenant that names none of its own.
    pub codec: Option<CodecSettings>,
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
    /// Its worker deployment's name; default: its task queue's.
    pub deployment: Option<String>,
    /// Build ids of its versions to keep serving when drained.
    #[serde(default)]
    pub keep_versions: Vec<String>,
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
    /// This tenant's payload codec, instead of the top-level `[codec]`
    /// (its secrets must be in `limits.allow_secrets`).
    pub codec: Option<CodecSettings>,
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

/// A worker deployment name Temporal accepts: not empty, without `.` or
/// `:` (the server refuses them).
pub fn check_deployment_name(key: &str, name: &str) -> Result<(), SettingError> {
    check_not_empty(key, name, "a worker deployment name")?;
    if name.contains(['.', ':']) {
        return Err(SettingError {
            key: key.to_owned(),
            value: format!("{name:?}"),
            expected: "a worker deployment name without `.` or `:` (Temporal refuses them), e.g. \"orders-plugins\"".into(),
        });
    }
    Ok(())
}

/// A build id Caisson gives a plugin set version: `caisson-` and 16
/// lowercase hex digits (`caisson plugins` lists them).
pub fn check_build_id(key: &str, id: &str) -> Result<(), SettingError> {
    let hex = id.strip_prefix("caisson-").filter(|h| h.len() == 16 && h.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    if hex.is_none() {
        return Err(SettingError {
            key: key.to_owned(),
            value: format!("{id:?}"),
            expected: "must be a plugin set build id as `caisson plugins` lists it, e.g. \"caisson-3f0c9a1d2b7e4c55\"".into(),
        });
    }
    Ok(())
}

impl TemporalSettings {
    /// Checks the keys under `prefix` (`temporal`): set ones are not empty.
    pub fn validate(&self, prefix: &str) -> Result<(), SettingError> {
        for (name, value, what) in [
            ("address", &self.address, "a host:port, e.g. \"localhost:7233\""),
            ("namespace", &self.namespace, "a namespace name"),
            ("task_queue", &self.task_queue, "a task queue name"),
        ] {
            if let Some(v) = value {
                check_not_empty(&format!("{prefix}.{name}"), v, what)?;
            }
        }
        Ok(())
    }
}

impl WorkerSettings {
    /// Checks every key against [`limits`]; `prefix` is `worker`.
    pub fn validate(&self, prefix: &str) -> Result<(), SettingError> {
        check_range(&format!("{prefix}.max_cached_workflows"), self.max_cached_workflows as u64, limits::MAX_CACHED_WORKFLOWS, "")?;
        check_range(
            &format!("{prefix}.max_concurrent_workflow_tasks"),
            self.max_concurrent_workflow_tasks as u64,
            limits::MAX_CONCURRENT_WORKFLOW_TASKS,
            "",
        )?;
        check_range(
            &format!("{prefix}.max_concurrent_activities"),
            self.max_concurrent_activities as u64,
            limits::MAX_CONCURRENT_ACTIVITIES,
            "",
        )?;
        if let Some(mb) = self.memory_budget_mb {
            check_range(&format!("{prefix}.memory_budget_mb"), mb, limits::MEMORY_BUDGET_MB, "MiB")?;
        }
        if let Some(d) = &self.deployment {
            check_deployment_name(&format!("{prefix}.deployment"), d)?;
        }
        for (i, id) in self.keep_versions.iter().enumerate() {
            check_build_id(&format!("{prefix}.keep_versions[{i}]"), id)?;
        }
        check_duration(&format!("{prefix}.shutdown_grace"), self.shutdown_grace, limits::SHUTDOWN_GRACE)
    }
}

impl TenantSettings {
    /// Checks the tenant's keys, its plugins' and its limits; `prefix` is
    /// `tenant[i]`.
    pub fn validate(&self, prefix: &str) -> Result<(), SettingError> {
        let valid_name = !self.name.is_empty() && self.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !valid_name {
            return Err(SettingError {
                key: format!("{prefix}.name"),
                value: format!("{:?}", self.name),
                expected: "must be a non-empty name of letters, digits, `-`, `_` or `.` (it labels logs and metrics)".into(),
            });
        }
        if let Some(n) = &self.namespace {
            check_not_empty(&format!("{prefix}.namespace"), n, "a namespace name")?;
        }
        if let Some(q) = &self.task_queue {
            check_not_empty(&format!("{prefix}.task_queue"), q, "a task queue name")?;
        }
        if let Some(d) = &self.deployment {
            check_deployment_name(&format!("{prefix}.deployment"), d)?;
        }
        for (i, id) in self.keep_versions.iter().enumerate() {
            check_build_id(&format!("{prefix}.keep_versions[{i}]"), id)?;
        }
        for (name, value, range) in [
            ("max_cached_workflows", self.max_cached_workflows, limits::MAX_CACHED_WORKFLOWS),
            ("max_concurrent_workflow_tasks", self.max_concurrent_workflow_tasks, limits::MAX_CONCURRENT_WORKFLOW_TASKS),
            ("max_concurrent_activities", self.max_concurrent_activities, limits::MAX_CONCURRENT_ACTIVITIES),
        ] {
            if let Some(v) = value {
                check_range(&format!("{prefix}.{name}"), v as u64, range, "")?;
            }
        }
        for (i, plugin) in self.plugin.iter().enumerate() {
            plugin.validate(&format!("{prefix}.plugin[{i}]"))?;
        }
        if let Some(codec) = &self.codec {
            codec.validate(&format!("{prefix}.codec"))?;
        }
        self.limits.validate(&format!("{prefix}.limits"))
    }
}

impl TenantLimits {
    /// Checks the ceilings against the same ranges as plugin limits.
    pub fn validate(&self, prefix: &str) -> Result<(), SettingError> {
        if let Some(mb) = self.memory_mb {
            check_range(&format!("{prefix}.memory_mb"), mb, limits::MEMORY_MB, "MiB")?;
        }
        if let Some(fuel) = self.fuel {
            check_range(&format!("{prefix}.fuel"), fuel, limits::FUEL, "units per activation")?;
        }
        if let Some(timeout) = self.timeout {
            check_duration(&format!("{prefix}.timeout"), timeout, limits::TIMEOUT)?;
        }
        Ok(())
    }
}

impl WorkerManifest {
    /// The codec tenant `tenant` (a `[[tenant]]` entry, or `None` for the
    /// default tenant) uses: its own `[tenant.codec]`, else the top-level
    /// `[codec]`.
    pub fn codec_for<'a>(&'a self, tenant: Option<&'a TenantSettings>) -> Option<&'a CodecSettings> {
        tenant.and_then(|t| t.codec.as_ref()).or(self.codec.as_ref())
    }

    /// Checks every key of the manifest; the error names the first bad
    /// one by its dotted path.
    pub fn validate(&self) -> Result<(), SettingError> {
        self.temporal.validate("temporal")?;
        self.worker.validate("worker")?;
        for (i, plugin) in self.plugin.iter().enumerate() {
            plugin.validate(&format!("plugin[{i}]"))?;
        }
        for (i, tenant) in self.tenant.iter().enumerate() {
            tenant.validate(&format!("tenant[{i}]"))?;
        }
        if let Some(codec) = &self.codec {
            codec.validate("codec")?;
        }
        Ok(())
    }

    /// Reads a worker manifest; plugin paths and granted directories are
    /// made relative to the manifest's folder.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = read(path)?;
        Self::from_toml(path, &text)
    }

    /// Parses and checks a manifest's text; `path` names it in errors and
    /// anchors relative paths.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, ManifestError> {
        let mut manifest: WorkerManifest = parse(path, text)?;
        manifest.validate().map_err(|source| ManifestError::Setting { path: path.to_owned(), source })?;
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(codec) = &mut manifest.codec {
            codec.resolve_paths(base);
        }
        for (i, plugin) in manifest.plugin.iter_mut().enumerate() {
            if plugin.path.is_none() {
                return Err(ManifestError::Parse {
                    path: path.to_owned(),
                    message: format!("plugin[{i}].path: missing: a [[plugin]] entry needs `path = \"....wasm\"`"),
                });
            }
            plugin.resolve_paths(base);
        }
        let mut names = std::collections::BTreeSet::new();
        for (t, tenant) in manifest.tenant.iter_mut().enumerate() {
            if !names.insert(tenant.name.clone()) {
                return Err(ManifestError::Parse {
                    path: path.to_owned(),
                    message: format!("tenant[{t}].name = {:?}: two [[tenant]] entries have this name", tenant.name),
                });
            }
            if let Some(dir) = &tenant.plugin_dir
                && dir.is_relative()
            {
                tenant.plugin_dir = Some(base.join(dir));
            }
            if let Some(codec) = &mut tenant.codec {
                codec.resolve_paths(base);
            }
            for (i, plugin) in tenant.plugin.iter_mut().enumerate() {
                if plugin.path.is_none() {
                    return Err(ManifestError::Parse {
                        path: path.to_owned(),
                        message: format!(
                            "tenant[{t}].plugin[{i}].path: missing: a [[tenant.plugin]] entry of tenant `{}` needs `path = \"....wasm\"`",
                            tenant.name
                        ),
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

    fn load_error(text: &str) -> String {
        WorkerManifest::from_toml(Path::new("caisson.toml"), text).unwrap_err().to_string()
    }

    #[test]
    fn every_bad_setting_is_one_line_naming_the_file_key_value_and_range() {
        let entries = "[[plugin]]\npath = \"a.wasm\"\n[[plugin]]\npath = \"b.wasm\"\n[[plugin]]\npath = \"c.wasm\"\n";
        for (text, needle) in [
            (format!("{entries}memory_mb = 0\n"), "caisson.toml: plugin[2].memory_mb = 0: must be between 1 and 4096 (MiB)"),
            (format!("{entries}fuel = 0\n"), "plugin[2].fuel = 0: must be between"),
            (format!("{entries}timeout = \"0s\"\n"), "plugin[2].timeout = \"0s\": must be between 10ms and 7d"),
            (format!("{entries}max_concurrency = 0\n"), "plugin[2].max_concurrency = 0: must be between 1 and 10000"),
            (
                format!("{entries}task_queue = \"x\"\n"),
                "plugin[2].task_queue = \"x\": a plugin has no task queue of its own: serve it from a [[tenant]]",
            ),
            (format!("{entries}memory_mb = \"64\"\n"), "plugin[2].memory_mb: invalid type: string \"64\", expected u64"),
            (format!("{entries}timeout = \"99999999999999d\"\n"), "plugin[2].timeout: duration `99999999999999d` is too long"),
            (
                format!("{entries}dirs = [{{ host = \".\", guest = \"data\" }}]\n"),
                "plugin[2].dirs[0].guest = \"data\": must be an absolute",
            ),
            (
                "[worker]\nshutdown_grace = \"100000000000000000h\"\n".into(),
                "worker.shutdown_grace: duration `100000000000000000h` is too long",
            ),
            ("[worker]\nshutdown_grace = \"2h\"\n".into(), "worker.shutdown_grace = \"2h\": must be between 0s and 1h"),
            ("[worker]\nmax_concurrent_activities = 0\n".into(), "worker.max_concurrent_activities = 0: must be between 1"),
            (
                "[worker]\nmax_cached_workflows = 18446744073709551615\n".into(),
                "worker.max_cached_workflows = 18446744073709551615: must be between 0 and 100000",
            ),
            ("[worker]\nmetrics_address = \"localhost\"\n".into(), "worker.metrics_address: invalid socket address syntax"),
            (
                "[worker]\notlp_protocol = \"http/json\"\n".into(),
                "worker.otlp_protocol: unknown variant `http/json`, expected `grpc` or `http/protobuf`",
            ),
            ("[temporal]\ntask_queue = \"\"\n".into(), "temporal.task_queue = \"\": must be a task queue name"),
            (
                "[[tenant]]\nname = \"a\"\n[[tenant]]\nname = \"b\"\n[tenant.limits]\nmemory_mb = 0\n".into(),
                "tenant[1].limits.memory_mb = 0",
            ),
            (
                "[[tenant]]\nname = \"a\"\nmax_concurrent_workflow_tasks = 1\n".into(),
                "tenant[0].max_concurrent_workflow_tasks = 1: must be between 2",
            ),
            ("[[tenant]]\nname = \"a\"\n[[tenant.plugin]]\npath = \"x.wasm\"\nfuel = 1\n".into(), "tenant[0].plugin[0].fuel = 1"),
            ("[[tenant]]\nname = \"\"\n".into(), "tenant[0].name = \"\": must be a non-empty name"),
        ] {
            let err = load_error(&text);
            assert!(err.contains(needle), "{text}\n=> {err}\n(expected {needle})");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }
}
