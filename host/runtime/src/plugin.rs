//! A plugin as read from disk: bytes, contract, grants and verdict.
//!
//! Reading a plugin never compiles it; [`crate::engine`] does that, so
//! `caisson check` can report a refused workflow's every problem at once.

use crate::engine::{self, ComponentCache, EngineError, EngineOptions, LoadedComponent};
use crate::inspect::{self, ComponentContract, InspectError};
use crate::policy::{self, PluginKind, Verdict};
use crate::settings::{ManifestError, PluginSettings};
use std::path::{Path, PathBuf};
use wasmtime::Engine;

/// Why a plugin cannot be used. Every variant names the plugin file.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The plugin file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a usable component.
    #[error("{}: {source}", path.display())]
    Inspect {
        /// The plugin file.
        path: PathBuf,
        /// What is wrong with it.
        source: InspectError,
    },
    /// Its manifest (`NAME.toml`) is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A workflow that imports what the host will not link.
    #[error("{}: refused: {message}", path.display())]
    Refused {
        /// The plugin file.
        path: PathBuf,
        /// Each offending import and the fix.
        message: String,
    },
    /// Wasmtime could not compile it.
    #[error("{}: {source}", path.display())]
    Compile {
        /// The plugin file.
        path: PathBuf,
        /// The compiler's error.
        source: EngineError,
    },
}

/// A plugin read and classified, not yet compiled.
#[derive(Debug, Clone)]
pub struct PluginSource {
    /// Short name: the file name without `.wasm`.
    pub name: String,
    /// Where it was read from.
    pub path: PathBuf,
    /// The component bytes.
    pub bytes: std::sync::Arc<[u8]>,
    /// Grants and limits.
    pub settings: PluginSettings,
    /// Imports and exports.
    pub contract: ComponentContract,
    /// Workflow or activity (manifest's `kind`, else inferred).
    pub kind: PluginKind,
    /// For workflows, the determinism verdict.
    pub verdict: Option<Verdict>,
}

impl PluginSource {
    /// Reads and classifies the component at `path` with the given grants.
    pub fn read(path: &Path, settings: PluginSettings) -> Result<Self, PluginError> {
        let bytes = std::fs::read(path).map_err(|source| PluginError::Read { path: path.to_owned(), source })?;
        let contract = inspect::inspect(&bytes).map_err(|source| PluginError::Inspect { path: path.to_owned(), source })?;
        let kind = settings.kind.unwrap_or(contract.kind);
        let verdict = (kind == PluginKind::Workflow)
            .then(|| policy::judge_workflow(contract.imports.iter().map(String::as_str), settings.determinism));
        let name = plugin_name(path);
        Ok(PluginSource { name, path: path.to_owned(), bytes: bytes.into(), settings, contract, kind, verdict })
    }

    /// Reads the component and its `NAME.toml` grants, if any.
    pub fn read_with_sidecar(path: &Path) -> Result<Self, PluginError> {
        Self::read(path, PluginSettings::for_component(path)?)
    }

    /// The refusal, if this is a workflow the host will not run.
    pub fn refusal(&self) -> Option<PluginError> {
        let Some(Verdict::Refused(offences)) = &self.verdict else {
            return None;
        };
        let list: Vec<String> = offences
            .iter()
            .map(|o| match o.reason {
                Some(r) => format!("{} ({r})", o.import),
                None => format!("{} (not provided to workflows)", o.import),
            })
            .collect();
        let hint = match &self.settings.path {
            Some(_) => "its [[plugin]] entry".to_owned(),
            None => format!("{}", PluginSettings::sidecar_path(&self.path).display()),
        };
        Some(PluginError::Refused {
            path: self.path.clone(),
            message: format!("a workflow may not import {}. Fix: {}", list.join(", "), policy::refusal_advice(offences, &hint)),
        })
    }
}

/// A plugin's name: its file name without `.wasm`.
pub fn plugin_name(path: &Path) -> String {
    path.file_stem().map_or_else(|| "plugin".into(), |s| s.to_string_lossy().into_owned())
}

/// One engine per kind of plugin, sharing a compile cache.
#[derive(Debug, Clone)]
pub struct Engines {
    /// Engine for workflow components (deterministic settings, fuel).
    pub workflow: Engine,
    /// Engine for activity components.
    pub activity: Engine,
    /// Where compiled components are kept.
    pub cache: ComponentCache,
    /// The pools the engines were built with.
    pub options: EngineOptions,
    /// What all instances' linear memories may hold together (unlimited
    /// unless the worker sets one).
    pub memory_budget: crate::memory_budget::MemoryBudget,
}

impl Engines {
    /// Builds both engines.
    pub fn new(options: &EngineOptions, cache: ComponentCache) -> Result<Self, EngineError> {
        Ok(Engines {
            workflow: engine::build_engine(PluginKind::Workflow, options)?,
            activity: engine::build_engine(PluginKind::Activity, options)?,
            cache,
            options: *options,
            memory_budget: crate::memory_budget::MemoryBudget::unlimited(),
        })
    }

    /// The engine for `kind`.
    pub fn for_kind(&self, kind: PluginKind) -> &Engine {
        match kind {
            PluginKind::Workflow => &self.workflow,
            PluginKind::Activity => &self.activity,
        }
    }

    /// Compiles (or loads from cache) a plugin. A `memory_mb` larger than
    /// the memory slot of its engine's pool is refused here: the memory
    /// could never grow that far.
    pub fn compile(&self, plugin: &PluginSource) -> Result<LoadedComponent, PluginError> {
        if let (Some(mb), Some(pool)) = (plugin.settings.memory_mb, self.options.pool(plugin.kind))
            && mb.saturating_mul(1 << 20) > pool.max_memory_bytes as u64
        {
            return Err(PluginError::Refused {
                path: plugin.path.clone(),
                message: format!(
                    "memory_mb = {mb} is more than the {} MiB each instance can have in this worker's instance pool (sized from \
                     [worker] max_cached_workflows and max_concurrent_activities). Fix: lower memory_mb, or max_cached_workflows",
                    pool.max_memory_bytes >> 20
                ),
            });
        }
        self.cache
            .load(self.for_kind(plugin.kind), &plugin.bytes, &plugin.name)
            .map_err(|source| PluginError::Compile { path: plugin.path.clone(), source })
    }
}

/// An exported function: a workflow or activity type.
#[derive(Debug, Clone)]
pub(crate) struct TypedExport {
    /// Where to find it in an instance.
    pub export: wasmtime::component::ComponentExportIndex,
    /// Parameter names and types (for JSON → WIT).
    pub params: Vec<(String, wasmtime::component::types::Type)>,
    /// Result type, if any (for WIT → JSON).
    pub result: Option<wasmtime::component::types::Type>,
}

/// The component's exported functions by name.
pub(crate) fn typed_exports(
    component: &wasmtime::component::Component,
    engine: &Engine,
) -> std::collections::BTreeMap<String, TypedExport> {
    use wasmtime::component::types::ComponentItem;
    let ty = component.component_type();
    ty.exports(engine)
        .filter_map(|(name, ext)| match ext.ty {
            ComponentItem::ComponentFunc(f) => Some((
                name.to_owned(),
                TypedExport {
                    export: component.get_export_index(None, name).expect("listed export exists"),
                    params: f.params().map(|(n, t)| (n.to_owned(), t)).collect(),
                    result: f.results().next(),
                },
            )),
            _ => None,
        })
        .collect()
}
