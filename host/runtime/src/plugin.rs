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
        if self.kind == PluginKind::Activity
            && let Some(versioning) = self.settings.versioning
        {
            return Some(PluginError::Refused {
                path: self.path.clone(),
                message: format!(
                    "versioning = \"{versioning}\" is for workflow plugins; an activity attempt always runs on the activity \
                     plugin loaded when it starts. Remove the key"
                ),
            });
        }
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

/// How the host calls into a workflow or activity type.
#[derive(Debug, Clone)]
pub(crate) enum EntryPoint {
    /// An exported function whose WIT signature types the arguments and
    /// the result (converted from and to JSON by [`crate::payload`]).
    Typed(TypedExport),
    /// `run(type, args)` of the plugin's `dynamic` export: a guest library
    /// whose types are defined at run time gets the type name and the
    /// arguments as JSON text, and returns `result<json, application-error>`.
    Dynamic(wasmtime::component::ComponentExportIndex),
}

impl EntryPoint {
    /// The parameters to call the entry with for `type_name` and `args`.
    pub(crate) fn params(
        &self,
        type_name: &str,
        args: &[serde_json::Value],
        unknown: crate::payload::UnknownFields,
    ) -> Result<Vec<wasmtime::component::Val>, crate::payload::ArgsError> {
        use wasmtime::component::Val;
        match self {
            EntryPoint::Typed(t) => crate::payload::args_to_vals_with(args, &t.params, unknown),
            EntryPoint::Dynamic(_) => {
                Ok(vec![Val::String(type_name.to_owned()), Val::List(args.iter().map(|a| Val::String(a.to_string())).collect())])
            }
        }
    }

    /// The export to call.
    pub(crate) fn export(&self) -> wasmtime::component::ComponentExportIndex {
        match self {
            EntryPoint::Typed(t) => t.export,
            EntryPoint::Dynamic(run) => *run,
        }
    }

    /// How many results the call returns (0 or 1).
    pub(crate) fn results_len(&self) -> usize {
        match self {
            EntryPoint::Typed(t) => usize::from(t.result.is_some()),
            EntryPoint::Dynamic(_) => 1,
        }
    }
}

/// Function `func` of the exported interface whose name starts with
/// `interface_prefix` (e.g. `caisson:workflow/dynamic@0.2.`), if the
/// component exports it.
pub(crate) fn interface_export(
    component: &wasmtime::component::Component,
    engine: &Engine,
    interface_prefix: &str,
    func: &str,
) -> Option<wasmtime::component::ComponentExportIndex> {
    use wasmtime::component::types::ComponentItem;
    component
        .component_type()
        .exports(engine)
        .find(|(name, ext)| matches!(ext.ty, ComponentItem::ComponentInstance(_)) && name.starts_with(interface_prefix))
        .and_then(|(name, _)| component.get_export_index(None, name))
        .and_then(|iface| component.get_export_index(Some(&iface), func))
}

/// The JSON text a dynamic entry returned, checked: the guest library
/// promises one JSON document, and a malformed one must not reach
/// Temporal as a payload no client can decode.
pub(crate) fn dynamic_json(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("returned a result that is not JSON ({e}): {}", crate::payload::excerpt(text)))
}

/// Instantiates `pre` in `store` and calls `export` once, to completion,
/// without an executor: for the calls a host makes at load (`declare`),
/// which must not wait on anything. A guest that blocks (on `wait`, a
/// socket, a stream) gets [`CallNowError::Blocked`].
pub(crate) fn call_now<T: Send + 'static>(
    store: &mut wasmtime::Store<T>,
    pre: &wasmtime::component::InstancePre<T>,
    export: wasmtime::component::ComponentExportIndex,
    params: &[wasmtime::component::Val],
    results_len: usize,
) -> Result<Vec<wasmtime::component::Val>, CallNowError> {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let call = async {
        let instance = pre.instantiate_async(&mut *store).await?;
        let func =
            instance.get_func(&mut *store, export).ok_or_else(|| wasmtime::format_err!("the export vanished after instantiation"))?;
        let mut results = vec![wasmtime::component::Val::Bool(false); results_len];
        func.call_async(&mut *store, params, &mut results).await?;
        Ok::<_, wasmtime::Error>(results)
    };
    match std::pin::pin!(call).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(results)) => Ok(results),
        Poll::Ready(Err(e)) => Err(CallNowError::Trapped(e)),
        Poll::Pending => Err(CallNowError::Blocked),
    }
}

/// Why a [`call_now`] call did not return.
#[derive(Debug)]
pub(crate) enum CallNowError {
    /// The guest trapped (or ran out of fuel or time).
    Trapped(wasmtime::Error),
    /// The guest waited on something.
    Blocked,
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
