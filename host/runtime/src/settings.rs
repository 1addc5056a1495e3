//! A plugin's grants and limits: a `[[plugin]]` entry of a worker
//! manifest, or the `NAME.toml` beside `NAME.wasm`.
//!
//! ```toml
//! allow_outbound = ["http://127.0.0.1:8080"]
//! dirs = [{ host = "./data/receipts", guest = "/receipts", access = "read-write" }]
//! env = { MODE = "test" }
//! memory_mb = 64
//! timeout = "30s"
//! ```
//!
//! Everything not granted is denied: no directories, no network, no
//! environment variables.

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
    /// A key has a value outside what Caisson accepts.
    #[error("{path}: {source}")]
    Setting {
        /// The manifest file.
        path: PathBuf,
        /// The key, its value and the accepted range.
        source: SettingError,
    },
}

/// A setting Caisson refuses: `plugin[2].memory_mb = 0: must be between 1
/// and 4096 (MiB)`. Settings are checked when they are read, so a limit
/// that could only fail every task later (a zero timeout, no memory) or
/// overflow the host's arithmetic (a timeout of centuries) stops the
/// worker at start with the key to fix, never a task at run time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} = {value}: {expected}")]
pub struct SettingError {
    /// The dotted key path (`tenant[0].limits.fuel`), or the flag
    /// (`--shutdown-grace`), or the environment variable.
    pub key: String,
    /// The value as given.
    pub value: String,
    /// What is accepted instead, and how to fix it.
    pub expected: String,
}

/// The accepted ranges, in one place (the README's manifest section
/// lists them).
pub mod limits {
    use std::time::Duration;

    /// `memory_mb`: linear memory per instance, MiB.
    pub const MEMORY_MB: (u64, u64) = (1, 4096);
    /// `fuel`: per workflow activation. Below a few thousand units not
    /// even a guest's start-up fits.
    pub const FUEL: (u64, u64) = (10_000, 1_000_000_000_000_000);
    /// `timeout`: per activity attempt or workflow activation.
    pub const TIMEOUT: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(7 * 86_400));
    /// `max_concurrency`: attempts of one plugin at once.
    pub const MAX_CONCURRENCY: (u64, u64) = (1, 10_000);
    /// `[worker] memory_budget_mb`: all instances' linear memory, in MiB.
    pub const MEMORY_BUDGET_MB: (u64, u64) = (16, 16 << 20);
    /// `max_cached_workflows`: 0 turns the sticky cache off.
    pub const MAX_CACHED_WORKFLOWS: (u64, u64) = (0, 100_000);
    /// `max_concurrent_workflow_tasks`: sdk-core needs two (one sticky
    /// poll, one normal).
    pub const MAX_CONCURRENT_WORKFLOW_TASKS: (u64, u64) = (2, 10_000);
    /// `max_concurrent_activities`.
    pub const MAX_CONCURRENT_ACTIVITIES: (u64, u64) = (1, 10_000);
    /// `shutdown_grace`.
    pub const SHUTDOWN_GRACE: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(3600));
    /// Any duration written in a setting: beyond this it is a typo, and
    /// `Instant + d` would overflow.
    pub const DURATION_MAX: Duration = Duration::from_secs(10 * 365 * 86_400);
}

/// Checks that `value` lies in `range` (inclusive); `unit` follows the
/// numbers in the message.
pub fn check_range(key: &str, value: u64, (min, max): (u64, u64), unit: &str) -> Result<(), SettingError> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    let unit = if unit.is_empty() { String::new() } else { format!(" ({unit})") };
    Err(SettingError { key: key.to_owned(), value: value.to_string(), expected: format!("must be between {min} and {max}{unit}") })
}

/// Checks that a duration lies in `range` (inclusive).
pub fn check_duration(key: &str, value: Duration, (min, max): (Duration, Duration)) -> Result<(), SettingError> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    Err(SettingError {
        key: key.to_owned(),
        value: format!("\"{}\"", format_duration(value)),
        expected: format!("must be between {} and {}", format_duration(min), format_duration(max)),
    })
}

/// Checks that a text setting is not empty.
pub fn check_not_empty(key: &str, value: &str, what: &str) -> Result<(), SettingError> {
    if value.trim().is_empty() {
        return Err(SettingError { key: key.to_owned(), value: format!("{value:?}"), expected: format!("must be {what}") });
    }
    Ok(())
}

/// A duration the way settings write it: `250ms`, `30s`, `1h30m`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [("d", 86_400_000u128), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

/// `memory_mb` in bytes, saturating (a validated value never saturates).
pub fn mib_to_bytes(mb: u64) -> usize {
    usize::try_from(mb).ok().and_then(|mb| mb.checked_mul(1 << 20)).unwrap_or(usize::MAX)
}

fn key(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") }
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
    /// Refuse JSON arguments with fields the WIT record does not have
    /// (default: ignore them, so a client adding a field breaks nothing).
    #[serde(default)]
    pub strict_payloads: bool,
    /// Activities: attempts of this plugin run at once in this worker
    /// (further attempts wait for a free slot).
    pub max_concurrency: Option<usize>,
    /// Not supported: read only to refuse it with the way to do it (a
    /// plugin is served on its tenant's task queue).
    pub task_queue: Option<String>,
    /// Workflows: what happens to a running workflow when a new version
    /// of the plugin set is dropped in (Temporal Worker Deployment
    /// Versioning). `pinned` (the default) keeps it on the version it
    /// started on until it closes; `auto-upgrade` moves it to the new
    /// version at its next workflow task, for code that guards its
    /// changes with `patched`.
    pub versioning: Option<Versioning>,
}

/// A payload codec: the `[codec]` table of a worker manifest (top level,
/// or a `[tenant.codec]` of its own, which replaces it for that tenant).
///
/// ```toml
/// [codec]
/// path = "codecs/aes-gcm-codec.wasm"
/// secrets = ["CAISSON_CODEC_KEY"]
/// env = { CODEC_KEY_ID = "test-key-id" }
/// ```
///
/// A codec gets nothing else: no directories, no network, only these
/// variables (see `caisson:codec`'s world).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodecSettings {
    /// The codec component (world `caisson:codec/codec`); relative to the manifest.
    pub path: PathBuf,
    /// Environment variables given to the codec.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Names of host environment variables copied in (its key). Each must
    /// be set when the worker starts.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Linear memory limit per call, in MiB (default 128).
    pub memory_mb: Option<u64>,
    /// Wall-clock limit per call (default 5s): a workflow task waits for it.
    #[serde(default, with = "duration_str::option")]
    pub timeout: Option<Duration>,
}

impl CodecSettings {
    /// Checks the keys; `prefix` is `codec` or `tenant[i].codec`.
    pub fn validate(&self, prefix: &str) -> Result<(), SettingError> {
        check_not_empty(
            &key(prefix, "path"),
            &self.path.to_string_lossy(),
            "the codec component's file, e.g. \"codecs/aes-gcm-codec.wasm\"",
        )?;
        if let Some(mb) = self.memory_mb {
            check_range(&key(prefix, "memory_mb"), mb, limits::MEMORY_MB, "MiB")?;
        }
        if let Some(timeout) = self.timeout {
            check_duration(&key(prefix, "timeout"), timeout, limits::TIMEOUT)?;
        }
        check_variable_names(prefix, &self.env, &self.secrets)
    }

    /// Makes the component path relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        if self.path.is_relative() {
            self.path = base.join(&self.path);
        }
    }
}

/// Environment variable names a host can set: non-empty, without `=` or NUL.
fn check_variable_names(prefix: &str, env: &BTreeMap<String, String>, secrets: &[String]) -> Result<(), SettingError> {
    for name in env.keys().chain(secrets) {
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            let which = if env.contains_key(name) { "env" } else { "secrets" };
            return Err(SettingError {
                key: key(prefix, which),
                value: format!("{name:?}"),
                expected: "variable names must be non-empty, without `=` or NUL".into(),
            });
        }
    }
    Ok(())
}

/// How a workflow plugin's running workflows meet a new version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Versioning {
    /// Stay on the version the run started on until it closes.
    #[default]
    Pinned,
    /// Move to the current version at the next workflow task.
    AutoUpgrade,
}

impl std::fmt::Display for Versioning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Versioning::Pinned => "pinned",
            Versioning::AutoUpgrade => "auto-upgrade",
        })
    }
}

/// Reads a settings file.
pub fn read(path: &Path) -> Result<String, ManifestError> {
    std::fs::read_to_string(path).map_err(|source| ManifestError::Read { path: path.to_owned(), source })
}

/// Parses TOML; the error is one line naming the position and the dotted
/// key: `line L, column C: plugin[2].memory_mb: what is wrong`.
pub fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, ManifestError> {
    let deserializer = match toml::Deserializer::parse(text) {
        Ok(d) => d,
        Err(e) => return Err(parse_error(path, text, &e, "")),
    };
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        let key = if key == "." || key.is_empty() { String::new() } else { format!("{key}: ") };
        parse_error(path, text, e.inner(), &key)
    })
}

fn parse_error(path: &Path, text: &str, e: &toml::de::Error, key: &str) -> ManifestError {
    let position = e.span().map(|span| {
        let mut start = span.start.min(text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let before = &text[..start];
        let line = before.matches('\n').count() + 1;
        let column = before.rfind('\n').map_or(before.chars().count(), |nl| before[nl + 1..].chars().count()) + 1;
        format!("line {line}, column {column}: ")
    });
    ManifestError::Parse {
        path: path.to_owned(),
        message: format!("{}{key}{}", position.unwrap_or_default(), e.message().trim_end().replace('\n', " ")),
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
        settings.validate("").map_err(|source| ManifestError::Setting { path: sidecar.clone(), source })?;
        settings.resolve_paths(wasm.parent().unwrap_or(Path::new(".")));
        Ok(settings)
    }

    /// Checks every key against [`limits`]; `prefix` is the entry's dotted
    /// path (`plugin[2]`, `tenant[0].plugin[1]`, or empty for `NAME.toml`).
    pub fn validate(&self, prefix: &str) -> Result<(), SettingError> {
        if let Some(mb) = self.memory_mb {
            check_range(&key(prefix, "memory_mb"), mb, limits::MEMORY_MB, "MiB")?;
        }
        if let Some(fuel) = self.fuel {
            check_range(&key(prefix, "fuel"), fuel, limits::FUEL, "units per activation")?;
        }
        if let Some(timeout) = self.timeout {
            check_duration(&key(prefix, "timeout"), timeout, limits::TIMEOUT)?;
        }
        if let Some(n) = self.max_concurrency {
            check_range(&key(prefix, "max_concurrency"), n as u64, limits::MAX_CONCURRENCY, "attempts at once")?;
        }
        if let Some(queue) = &self.task_queue {
            return Err(SettingError {
                key: key(prefix, "task_queue"),
                value: format!("{queue:?}"),
                expected: "a plugin has no task queue of its own: serve it from a [[tenant]] with task_queue = \"...\" \
                           (or run another `caisson worker --task-queue ...`)"
                    .into(),
            });
        }
        for (i, grant) in self.dirs.iter().enumerate() {
            if !grant.guest.starts_with('/') {
                return Err(SettingError {
                    key: format!("{}[{i}].guest", key(prefix, "dirs")),
                    value: format!("{:?}", grant.guest),
                    expected: "must be an absolute guest path, e.g. \"/data\"".into(),
                });
            }
        }
        check_variable_names(prefix, &self.env, &self.secrets)
    }

    /// `NAME.toml` beside `NAME.wasm`.
    pub fn sidecar_path(wasm: &Path) -> PathBuf {
        wasm.with_extension("toml")
    }

    /// Makes the plugin path and granted directories relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
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

/// Parses `250ms`, `30s`, `5m`, `2h`, `7d` (and sums like `1h30m`), up
/// to [`limits::DURATION_MAX`]: every step is checked, so no text can
/// overflow the host's arithmetic.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration `{text}`: use a number with a unit, e.g. 500ms, 30s, 5m, 2h, 7d");
    let too_long = || format!("duration `{text}` is too long: at most {}", format_duration(limits::DURATION_MAX));
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
        let n: u64 = rest[..digits].parse().map_err(|_| too_long())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let seconds = |per: u64| n.checked_mul(per).map(Duration::from_secs);
        let unit = match &rest[..unit_len] {
            "ms" => Some(Duration::from_millis(n)),
            "s" => seconds(1),
            "m" => seconds(60),
            "h" => seconds(3600),
            "d" => seconds(86_400),
            _ => return Err(bad()),
        };
        total = unit.and_then(|u| total.checked_add(u)).filter(|t| *t <= limits::DURATION_MAX).ok_or_else(too_long)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Serde adapters for human durations in TOML
/// (`#[serde(with = "duration_str")]`).
pub mod duration_str {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    /// A required duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s).map_err(serde::de::Error::custom)
    }

    /// An optional duration.
    pub mod option {
        use super::*;
        /// An optional duration.
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
        for bad in ["", "30", "s", "3 s", "1y", "-1s", "1é", "999999999999999999999s", "18446744073709551615d", "3651d", "3650d1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("3651d").unwrap_err().contains("too long"));
        assert_eq!(parse_duration("3650d"), Ok(limits::DURATION_MAX));
        assert_eq!(format_duration(Duration::from_millis(5_400_250)), "1h30m250ms");
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
