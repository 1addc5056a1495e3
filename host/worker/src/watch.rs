//! A watched plugin folder: plugins added, replaced and removed while the
//! worker runs.
//!
//! The folder is scanned every [`SCAN_INTERVAL`]. A `NAME.wasm` (with its
//! optional `NAME.toml`) is acted on once its size and modification time
//! (and the sidecar's) are the same on two scans in a row, so a file still
//! being copied is not loaded early; writing to a dotfile and renaming it
//! into place is the safest way to publish. Then:
//!
//! * new: loaded and registered; its types are served from the next task;
//! * changed (the `.wasm` or its `.toml`): the new version, identified by
//!   its SHA-256, replaces the old one for new work. Cached workflow runs
//!   keep the instance they started with; a run replayed later uses the
//!   new version, and core reports a non-determinism error if its commands
//!   differ from history, so a replaced plugin is never silently wrong;
//! * gone: its types are no longer served; work in flight finishes.
//!
//! A plugin that fails validation is logged (file and reason) and not
//! registered; the previous version of it, if any, keeps serving.

use crate::manifest::PluginSettings;
use crate::registry::{LiveRegistry, LoadedPlugin};
use caisson_runtime::plugin::plugin_name;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How often the folder is looked at. A dropped plugin is served within
/// two intervals plus its compile time.
pub const SCAN_INTERVAL: Duration = Duration::from_millis(400);

/// Size and modification time of a plugin and its sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    wasm: (u64, SystemTime),
    sidecar: Option<(u64, SystemTime)>,
}

#[derive(Debug)]
struct Seen {
    fingerprint: Fingerprint,
    /// The fingerprint last acted on (loaded or reported).
    acted: Option<Fingerprint>,
}

/// One watched folder feeding one tenant's registry.
#[derive(Debug)]
pub struct PluginFolder {
    dir: PathBuf,
    registry: Arc<LiveRegistry>,
    seen: HashMap<PathBuf, Seen>,
}

/// What a scan did, for logs and tests.
#[derive(Debug)]
pub enum Change {
    /// A plugin was loaded; `replaced` is the version it replaced.
    Loaded {
        /// What now serves.
        plugin: LoadedPlugin,
        /// The version before, if any.
        replaced: Option<LoadedPlugin>,
    },
    /// A plugin could not be loaded.
    Rejected {
        /// The file.
        path: PathBuf,
        /// Why, in one line.
        reason: String,
    },
    /// A plugin's file is gone.
    Removed(LoadedPlugin),
}

impl PluginFolder {
    /// Watches `dir` for `registry`.
    pub fn new(dir: PathBuf, registry: Arc<LiveRegistry>) -> Self {
        PluginFolder { dir, registry, seen: HashMap::new() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads what the folder holds now, without waiting for files to
    /// settle (used at startup, before polling begins).
    pub fn load_now(&mut self) -> std::io::Result<Vec<Change>> {
        self.scan(true)
    }

    /// Scans until the task is dropped, logging every change.
    pub async fn watch(mut self) {
        let mut ticker = tokio::time::interval(SCAN_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            // Loading compiles, which takes a while for a big component.
            let (folder, changes) = tokio::task::spawn_blocking(move || {
                let changes = self.scan(false);
                (self, changes)
            })
            .await
            .expect("plugin folder scan panicked");
            self = folder;
            if let Err(e) = changes {
                tracing::warn!("plugin folder {}: cannot read it: {e}", self.dir.display());
            }
        }
    }

    fn scan(&mut self, settle_now: bool) -> std::io::Result<Vec<Change>> {
        let mut present = HashMap::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden || path.extension().is_none_or(|x| x != "wasm") {
                continue;
            }
            if let Some(fingerprint) = fingerprint(&path) {
                present.insert(path, fingerprint);
            }
        }
        let mut changes = Vec::new();
        let gone: Vec<PathBuf> = self.seen.keys().filter(|p| !present.contains_key(*p)).cloned().collect();
        for path in gone {
            self.seen.remove(&path);
            if let Some(removed) = self.registry.unload(&plugin_name(&path)) {
                changes.push(Change::Removed(removed));
            }
        }
        let mut ready: Vec<PathBuf> = Vec::new();
        for (path, fingerprint) in present {
            let settled = match self.seen.get_mut(&path) {
                Some(seen) => {
                    let unchanged = seen.fingerprint == fingerprint;
                    seen.fingerprint = fingerprint.clone();
                    settle_now || unchanged
                }
                None => {
                    self.seen.insert(path.clone(), Seen { fingerprint: fingerprint.clone(), acted: None });
                    settle_now
                }
            };
            let seen = self.seen.get_mut(&path).expect("just recorded");
            if settled && seen.acted.as_ref() != Some(&fingerprint) {
                seen.acted = Some(fingerprint);
                ready.push(path);
            }
        }
        ready.sort();
        for path in ready {
            changes.push(self.load(&path));
        }
        for change in &changes {
            self.log(change);
        }
        Ok(changes)
    }

    fn load(&self, path: &Path) -> Change {
        let before = self.registry.snapshot().get(&plugin_name(path)).cloned();
        let loaded = PluginSettings::for_component(path)
            .map_err(|e| e.to_string())
            .and_then(|settings| self.registry.load(path, settings).map_err(|e| e.to_string()));
        match loaded {
            Ok(plugin) => Change::Loaded { plugin, replaced: before },
            Err(reason) => Change::Rejected { path: path.to_owned(), reason },
        }
    }

    fn log(&self, change: &Change) {
        let tenant = self.registry.admission().tenant();
        match change {
            Change::Loaded { plugin, replaced: None } => tracing::info!(
                tenant,
                "plugin {} added from {}: {} {} (sha256 {})",
                plugin.name,
                self.dir.display(),
                plugin.kind,
                plugin.types.join(", "),
                short(&plugin.sha256)
            ),
            Change::Loaded { plugin, replaced: Some(old) } => tracing::info!(
                tenant,
                "plugin {} replaced: sha256 {} → {} ({}); running workflows keep their version until replayed",
                plugin.name,
                short(&old.sha256),
                short(&plugin.sha256),
                plugin.types.join(", ")
            ),
            Change::Rejected { path, reason } => {
                tracing::warn!(tenant, "plugin {} not loaded: {reason}", path.display())
            }
            Change::Removed(plugin) => tracing::info!(
                tenant,
                "plugin {} removed: no new work for {}; work in flight finishes",
                plugin.name,
                plugin.types.join(", ")
            ),
        }
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

fn fingerprint(wasm: &Path) -> Option<Fingerprint> {
    let stat = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
    Some(Fingerprint { wasm: stat(wasm)?, sidecar: stat(&PluginSettings::sidecar_path(wasm)) })
}
