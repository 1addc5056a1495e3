//! The plugins a worker serves, by workflow and activity type.

use crate::manifest::PluginSettings;
use crate::metrics::Metrics;
use crate::tenant::{Admission, AdmissionError};
use caisson_runtime::activity::ActivityPlugin;
use caisson_runtime::loader::{LinkerError, Plugin, PluginLoader};
use caisson_runtime::plugin::{Engines, PluginError};
use caisson_runtime::policy::PluginKind;
use caisson_runtime::workflow::WorkflowPlugin;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// Why a set of plugins cannot be served together.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A plugin could not be loaded.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// Two plugins export the same type.
    #[error("{kind} type `{name}` is exported by both {first} and {second}: rename one export or serve them on different task queues")]
    Duplicate {
        /// Workflow or activity.
        kind: PluginKind,
        /// The type name.
        name: String,
        /// The plugin loaded first.
        first: String,
        /// The plugin loaded second.
        second: String,
    },
    /// Wasmtime could not set up linking.
    #[error(transparent)]
    Linker(#[from] LinkerError),
}

/// A summary line per loaded plugin.
#[derive(Debug, Clone)]
pub struct LoadedPlugin {
    /// File stem.
    pub name: String,
    /// Where it came from.
    pub path: PathBuf,
    /// Workflow or activity.
    pub kind: PluginKind,
    /// SHA-256 of the component.
    pub sha256: String,
    /// The types it serves.
    pub types: Vec<String>,
    /// Its grants file (`NAME.toml`), when it has one: kept with the
    /// component when a version is stored.
    pub sidecar: Option<PathBuf>,
}

/// Workflow and activity types → the plugins that implement them.
///
/// Cloning is cheap (the plugins are shared): a [`LiveRegistry`] changes
/// by building a modified clone and swapping it in.
#[derive(Clone)]
pub struct Registry {
    loader: PluginLoader,
    workflows: BTreeMap<String, Arc<WorkflowPlugin>>,
    activities: BTreeMap<String, Arc<ActivityPlugin>>,
    loaded: Vec<LoadedPlugin>,
    tenant: String,
    metrics: Metrics,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("loaded", &self.loaded).finish()
    }
}

impl Registry {
    /// An empty registry compiling with `engines`.
    pub fn new(engines: Engines) -> Result<Self, RegistryError> {
        Ok(Registry {
            loader: PluginLoader::new(engines)?,
            workflows: BTreeMap::new(),
            activities: BTreeMap::new(),
            loaded: Vec::new(),
            tenant: "default".into(),
            metrics: Metrics::default(),
        })
    }

    /// Labels this registry's plugins with `tenant` and records their
    /// figures in `metrics`.
    pub fn with_metrics(mut self, tenant: &str, metrics: Metrics) -> Self {
        self.tenant = tenant.to_owned();
        self.metrics = metrics;
        self
    }

    /// The tenant whose plugins these are.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Where this registry's figures are recorded.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Reads, judges, compiles and registers one plugin.
    pub fn load(&mut self, path: &Path, settings: PluginSettings) -> Result<&LoadedPlugin, RegistryError> {
        let (metrics, tenant) = (&self.metrics, &self.tenant);
        let sidecar = Some(PluginSettings::sidecar_path(path)).filter(|p| settings.path.is_none() && p.is_file());
        let plugin = self.loader.load(path, settings, |name| Arc::new(metrics.for_plugin(tenant, name)))?;
        let types = plugin.types();
        match &plugin {
            Plugin::Workflow(p) => register(&mut self.workflows, p, &types, PluginKind::Workflow, |p| p.name.to_string())?,
            Plugin::Activity(p) => register(&mut self.activities, p, &types, PluginKind::Activity, |p| p.name.to_string())?,
        }
        let entry = LoadedPlugin {
            name: plugin.name().to_owned(),
            path: path.to_owned(),
            kind: plugin.kind(),
            sha256: plugin.sha256().to_owned(),
            types,
            sidecar,
        };
        self.metrics.plugin_loaded(&self.tenant, &entry, true);
        self.loaded.push(entry);
        Ok(self.loaded.last().expect("just pushed"))
    }

    /// Stops serving the plugin named `name` (file stem). Work already
    /// holding it (cached workflow runs, running attempts) goes on with it.
    pub fn unload(&mut self, name: &str) -> Option<LoadedPlugin> {
        let index = self.loaded.iter().position(|p| p.name == name)?;
        let entry = self.loaded.remove(index);
        self.workflows.retain(|_, p| &*p.name != name);
        self.activities.retain(|_, p| &*p.name != name);
        self.metrics.plugin_loaded(&self.tenant, &entry, false);
        Some(entry)
    }

    /// The loaded plugin named `name`.
    pub fn get(&self, name: &str) -> Option<&LoadedPlugin> {
        self.loaded.iter().find(|p| p.name == name)
    }

    /// The plugin serving a workflow type.
    pub fn workflow(&self, workflow_type: &str) -> Option<&Arc<WorkflowPlugin>> {
        self.workflows.get(workflow_type)
    }

    /// The plugin serving an activity type.
    pub fn activity(&self, activity_type: &str) -> Option<&Arc<ActivityPlugin>> {
        self.activities.get(activity_type)
    }

    /// All workflow types served.
    pub fn workflow_types(&self) -> impl Iterator<Item = &str> {
        self.workflows.keys().map(String::as_str)
    }

    /// All activity types served.
    pub fn activity_types(&self) -> impl Iterator<Item = &str> {
        self.activities.keys().map(String::as_str)
    }

    /// What is loaded.
    pub fn loaded(&self) -> &[LoadedPlugin] {
        &self.loaded
    }

    /// The workflow plugins, in name order.
    pub fn workflow_plugins(&self) -> impl Iterator<Item = &LoadedPlugin> {
        let mut plugins: Vec<&LoadedPlugin> = self.loaded.iter().filter(|p| p.kind == PluginKind::Workflow).collect();
        plugins.sort_by(|a, b| a.name.cmp(&b.name));
        plugins.into_iter()
    }

    /// The build id of this registry's workflow plugin set: derived from
    /// their content hashes alone, so the same files give the same id on
    /// every worker and after every restart, whatever they are named.
    /// Activity plugins are not part of it (see [`crate::versioning`]).
    pub fn workflow_build_id(&self) -> String {
        build_id(self.workflow_plugins().map(|p| p.sha256.as_str()))
    }
}

/// The build id of a set of workflow plugins, from their SHA-256 hashes
/// (in any order): `caisson-` and 16 hex digits.
pub fn build_id<'a>(hashes: impl IntoIterator<Item = &'a str>) -> String {
    use sha2::Digest as _;
    let mut hashes: Vec<&str> = hashes.into_iter().collect();
    hashes.sort_unstable();
    let digest = sha2::Sha256::digest(hashes.join("\n").as_bytes());
    format!("caisson-{}", &hex::encode(digest)[..16])
}

/// A registry that changes while the worker runs (a watched plugin
/// folder): readers take a [`snapshot`](LiveRegistry::snapshot) per task,
/// writers build a modified copy and swap it in, so a task never sees a
/// half-applied change.
#[derive(Debug)]
pub struct LiveRegistry {
    current: RwLock<Arc<Registry>>,
    /// Serializes writers (loads compile for a while; readers don't wait).
    writer: Mutex<()>,
    admission: Admission,
}

impl LiveRegistry {
    /// Starts from `registry`; plugins added later are checked against `admission`.
    pub fn new(registry: Registry, admission: Admission) -> Self {
        LiveRegistry { current: RwLock::new(Arc::new(registry)), writer: Mutex::new(()), admission }
    }

    /// The plugins as they are now.
    pub fn snapshot(&self) -> Arc<Registry> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The tenant's ceiling.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// Loads (or replaces, by file stem) the plugin at `path`. On any
    /// error the previous version, if any, keeps serving.
    pub fn load(&self, path: &Path, settings: PluginSettings) -> Result<LoadedPlugin, LoadError> {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let name = caisson_runtime::plugin::plugin_name(path);
        let settings = self.admission.admit(&name, settings)?;
        let mut next = (*self.snapshot()).clone();
        let previous = next.unload(&name);
        let loaded = match next.load(path, settings) {
            Ok(l) => l.clone(),
            Err(e) => {
                if let Some(previous) = &previous {
                    // `unload` on the copy marked it as gone; it is not.
                    next.metrics.plugin_loaded(&next.tenant, previous, true);
                }
                return Err(e.into());
            }
        };
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        Ok(loaded)
    }

    /// Stops serving the plugin named `name`.
    pub fn unload(&self, name: &str) -> Option<LoadedPlugin> {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = (*self.snapshot()).clone();
        let removed = next.unload(name)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        Some(removed)
    }
}

/// Why a plugin was not added to a live registry.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The tenant's ceiling does not allow its grants.
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    /// It failed to load or clashes with another plugin.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Adds `plugin` under each of `types`, unless another plugin serves one
/// of them already (then nothing is added).
fn register<P>(
    map: &mut BTreeMap<String, Arc<P>>,
    plugin: &Arc<P>,
    types: &[String],
    kind: PluginKind,
    name_of: impl Fn(&P) -> String,
) -> Result<(), RegistryError> {
    if let Some((t, other)) = types.iter().find_map(|t| map.get(t).map(|other| (t, other))) {
        return Err(RegistryError::Duplicate { kind, name: t.clone(), first: name_of(other), second: name_of(plugin) });
    }
    for t in types {
        map.insert(t.clone(), plugin.clone());
    }
    Ok(())
}
