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
    /// Attempts of this plugin's activities run at once.
    pub max_concurrency: Option<usize>,
    /// Task queue for this plugin's types, when not the worker's own.
    pub task_queue: Option<String>,
}

/// Reads a settings file.
pub fn read(path: &Path) -> Result<String, ManifestError> {
    std::fs::read_to_string(path).map_err(|source| ManifestError::Read { path: path.to_owned(), source })
}

/// Parses TOML; the error is one line: `line L, column C: what is wrong`.
pub fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, ManifestError> {
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
        for bad in ["", "30", "s", "3 s", "1y", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
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
