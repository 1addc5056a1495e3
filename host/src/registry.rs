//! The plugins a worker serves, by workflow and activity type.

use crate::activity::{ActivityHost, ActivityPlugin, activity_linker};
use crate::manifest::PluginSettings;
use crate::plugin::{Engines, PluginError, PluginSource};
use crate::policy::PluginKind;
use crate::workflow::{WorkflowHost, WorkflowPlugin, workflow_linker};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::component::Linker;

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
    #[error("cannot set up the {0} linker: {1}")]
    Linker(PluginKind, String),
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
}

/// Workflow and activity types → the plugins that implement them.
pub struct Registry {
    engines: Engines,
    workflow_linker: Linker<WorkflowHost>,
    activity_linker: Linker<ActivityHost>,
    workflows: BTreeMap<String, Arc<WorkflowPlugin>>,
    activities: BTreeMap<String, Arc<ActivityPlugin>>,
    loaded: Vec<LoadedPlugin>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("loaded", &self.loaded).finish()
    }
}

impl Registry {
    /// An empty registry compiling with `engines`.
    pub fn new(engines: Engines) -> Result<Self, RegistryError> {
        let workflow_linker =
            workflow_linker(&engines.workflow).map_err(|e| RegistryError::Linker(PluginKind::Workflow, format!("{e:#}")))?;
        let activity_linker =
            activity_linker(&engines.activity).map_err(|e| RegistryError::Linker(PluginKind::Activity, format!("{e:#}")))?;
        Ok(Registry {
            engines,
            workflow_linker,
            activity_linker,
            workflows: BTreeMap::new(),
            activities: BTreeMap::new(),
            loaded: Vec::new(),
        })
    }

    /// Reads, judges, compiles and registers one plugin.
    pub fn load(&mut self, path: &Path, settings: PluginSettings) -> Result<&LoadedPlugin, RegistryError> {
        let source = PluginSource::read(path, settings)?;
        if let Some(refusal) = source.refusal() {
            return Err(refusal.into());
        }
        let compiled = self.engines.compile(&source)?;
        let (kind, types) = match source.kind {
            PluginKind::Workflow => {
                let plugin = Arc::new(WorkflowPlugin::new(&source, &compiled.component, compiled.sha256.clone(), &self.workflow_linker)?);
                let types: Vec<String> = plugin.workflow_types().map(str::to_owned).collect();
                register(&mut self.workflows, &plugin, &types, PluginKind::Workflow, |p| p.name.to_string())?;
                (PluginKind::Workflow, types)
            }
            PluginKind::Activity => {
                let plugin = Arc::new(ActivityPlugin::new(&source, &compiled.component, compiled.sha256.clone(), &self.activity_linker)?);
                let types: Vec<String> = plugin.activity_types().map(str::to_owned).collect();
                register(&mut self.activities, &plugin, &types, PluginKind::Activity, |p| p.name.to_string())?;
                (PluginKind::Activity, types)
            }
        };
        let entry = LoadedPlugin { name: source.name.clone(), path: path.to_owned(), kind, sha256: compiled.sha256, types };
        self.loaded.push(entry);
        Ok(self.loaded.last().expect("just pushed"))
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
