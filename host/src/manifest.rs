//! The worker manifest (`caisson.toml`) and per-plugin grants.
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
//! dirs = [{ host = "./data/receipts", guest = "/receipts", access = "read-write" }]
//! env = { MODE = "test" }
//! memory_mb = 64
//! timeout = "30s"
//! ```
//!
//! A plugin may instead sit in a folder as `NAME.wasm` with its grants in
//! `NAME.toml` beside it (the same keys as a `[[plugin]]` entry, without
//! `path`). Everything not granted is denied: no directories, no network,
//! no environment variables.

use crate::policy::{DeterminismMode, PluginKind};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a manifest could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The manifest file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("{path}: {message}")]
    Parse {
        /// The manifest file.
        path: PathBuf,
        /// The parser's message, naming the line and key.
        message: String,
    },
}

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
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            max_cached_workflows: 1000,
            max_concurrent_workflow_tasks: 100,
            max_concurrent_activities: 100,
            shutdown_grace: Duration::from_secs(10),
            metrics_address: None,
        }
    }
}

/// Read-only or read-write access to a granted directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DirAccess {
    /// Read files and list directories only (the default).
    #[default]
    ReadOnly,
    /// Also create, write, rename and delete.
    ReadWrite,
}

/// A host directory made visible to an activity at a guest path.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// Directory on the host (relative paths are relative to the manifest).
    pub host: PathBuf,
    /// Where the guest sees it, e.g. `/data`.
    pub guest: String,
    /// Access mode; read-only unless stated.
    #[serde(default)]
    pub access: DirAccess,
}

/// A plugin's kind, grants and limits. All capabilities default to none.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    /// The component file (only in a worker manifest's `[[plugin]]`).
    pub path: Option<PathBuf>,
    /// Workflow or activity; inferred from the imports when absent.
    pub kind: Option<PluginKind>,
    /// Workflows: `strict` (default) or `virtual` (replay-safe stand-ins
    /// for clocks, random, files and network).
    #[serde(default)]
    pub determinism: DeterminismMode,
    /// Activities: host directories granted to the guest.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// Activities: `scheme://host:port` patterns the guest may reach.
    #[serde(default)]
    pub allow_outbound: Vec<String>,
    /// Activities: environment variables given to the guest.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Activities: names of host environment variables copied in (secrets).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Linear memory limit per instance, in MiB.
    pub memory_mb: Option<u64>,
    /// Wall-clock limit per activity attempt (on top of Temporal's timeouts).
    #[serde(default, with = "duration_str::option")]
    pub timeout: Option<Duration>,
    /// Fuel (roughly, wasm instructions) per workflow activation or activity attempt.
    pub fuel: Option<u64>,
    /// Attempts of this plugin's activities run at once.
    pub max_concurrency: Option<usize>,
    /// Task queue for this plugin's types, when not the worker's own.
    pub task_queue: Option<String>,
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

fn read(path: &Path) -> Result<String, ManifestError> {
    std::fs::read_to_string(path).map_err(|source| ManifestError::Read { path: path.to_owned(), source })
}

/// Parses TOML; the error is one line: `line L, column C: what is wrong`.
fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, ManifestError> {
    toml::from_str(text).map_err(|e| {
        let position = e.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rfind('\n').map_or(before.len(), |nl| before.len() - nl - 1) + 1;
            format!("line {line}, column {column}: ")
        });
        ManifestError::Parse {
            path: path.to_owned(),
            message: format!("{}{}", position.unwrap_or_default(), e.message().trim_end().replace('\n', " ")),
        }
    })
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

impl PluginSettings {
    /// Reads the grants beside a plugin: `NAME.toml` for `NAME.wasm`.
    /// No such file means no grants.
    pub fn for_component(wasm: &Path) -> Result<Self, ManifestError> {
        let sidecar = Self::sidecar_path(wasm);
        if !sidecar.exists() {
            return Ok(PluginSettings::default());
        }
        let mut settings: PluginSettings = parse(&sidecar, &read(&sidecar)?)?;
        settings.resolve_paths(wasm.parent().unwrap_or(Path::new(".")));
        Ok(settings)
    }

    /// `NAME.toml` beside `NAME.wasm`.
    pub fn sidecar_path(wasm: &Path) -> PathBuf {
        wasm.with_extension("toml")
    }

    fn resolve_paths(&mut self, base: &Path) {
        if let Some(p) = &self.path
            && p.is_relative()
        {
            self.path = Some(base.join(p));
        }
        for d in &mut self.dirs {
            if d.host.is_relative() {
                d.host = base.join(&d.host);
            }
        }
    }
}

/// Parses `250ms`, `30s`, `5m`, `2h`, `7d` (and sums like `1h30m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration `{text}`: use a number with a unit, e.g. 500ms, 30s, 5m, 2h, 7d");
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            "d" => Duration::from_secs(n * 86400),
            _ => return Err(bad()),
        };
        total += unit;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Serde adapters for human durations in TOML.
mod duration_str {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s).map_err(serde::de::Error::custom)
    }

    pub mod option {
        use super::*;
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            let s = String::deserialize(d)?;
            super::super::parse_duration(&s).map(Some).map_err(serde::de::Error::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        for bad in ["", "30", "s", "3 s", "1y", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

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

    #[test]
    fn unknown_keys_are_errors_that_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("p.wasm");
        std::fs::write(dir.path().join("p.toml"), "allow_outbund = [\"x\"]\n").unwrap();
        let err = PluginSettings::for_component(&wasm).unwrap_err().to_string();
        assert!(err.contains("p.toml") && err.contains("allow_outbund"), "{err}");
        std::fs::write(dir.path().join("p.toml"), "determinism = \"virtual\"\n").unwrap();
        assert_eq!(PluginSettings::for_component(&wasm).unwrap().determinism, DeterminismMode::Virtual);
        std::fs::write(dir.path().join("p.toml"), "determinism = \"loose\"\n").unwrap();
        let err = PluginSettings::for_component(&wasm).unwrap_err().to_string();
        assert!(err.contains("loose") && err.contains("virtual"), "{err}");
    }
}
