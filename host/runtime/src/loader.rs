//! From a plugin file to something that serves types: read and judge it
//! ([`crate::plugin`]), compile it (or take it from the compile cache,
//! [`crate::engine`]), and pre-link it against the workflow or activity
//! imports. The worker keeps one loader per tenant and never touches a
//! wasmtime linker itself.

use crate::activity::{ActivityHost, ActivityPlugin, activity_linker};
use crate::meter::SharedMeter;
use crate::plugin::{Engines, PluginError, PluginSource};
use crate::policy::PluginKind;
use crate::settings::PluginSettings;
use crate::workflow::{WorkflowHost, WorkflowPlugin, workflow_linker};
use std::path::Path;
use std::sync::Arc;
use wasmtime::component::Linker;

/// Wasmtime could not set up the imports plugins link against (a bug, or
/// an engine configured without a needed feature).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the {kind} linker: {message}")]
pub struct LinkerError {
    /// Which linker.
    pub kind: PluginKind,
    /// Wasmtime's message.
    pub message: String,
}

/// Loads plugins with one pair of engines and linkers. Cloning is cheap.
#[derive(Clone)]
pub struct PluginLoader {
    engines: Engines,
    workflow_linker: Linker<WorkflowHost>,
    activity_linker: Linker<ActivityHost>,
}

impl std::fmt::Debug for PluginLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginLoader").finish_non_exhaustive()
    }
}

/// A loaded plugin, ready to instantiate.
#[derive(Debug, Clone)]
pub enum Plugin {
    /// Exports workflow types.
    Workflow(Arc<WorkflowPlugin>),
    /// Exports activity types.
    Activity(Arc<ActivityPlugin>),
}

impl Plugin {
    /// Plugin name (file stem).
    pub fn name(&self) -> &str {
        match self {
            Plugin::Workflow(p) => &p.name,
            Plugin::Activity(p) => &p.name,
        }
    }

    /// SHA-256 of the component: its version.
    pub fn sha256(&self) -> &str {
        match self {
            Plugin::Workflow(p) => &p.sha256,
            Plugin::Activity(p) => &p.sha256,
        }
    }

    /// Workflow or activity.
    pub fn kind(&self) -> PluginKind {
        match self {
            Plugin::Workflow(_) => PluginKind::Workflow,
            Plugin::Activity(_) => PluginKind::Activity,
        }
    }

    /// The types it serves, sorted.
    pub fn types(&self) -> Vec<String> {
        match self {
            Plugin::Workflow(p) => p.workflow_types().map(str::to_owned).collect(),
            Plugin::Activity(p) => p.activity_types().map(str::to_owned).collect(),
        }
    }
}

impl PluginLoader {
    /// Linkers for both kinds on `engines`.
    pub fn new(engines: Engines) -> Result<Self, LinkerError> {
        let linker_error = |kind| move |e: wasmtime::Error| LinkerError { kind, message: format!("{e:#}") };
        let workflow_linker = workflow_linker(&engines.workflow).map_err(linker_error(PluginKind::Workflow))?;
        let activity_linker = activity_linker(&engines.activity).map_err(linker_error(PluginKind::Activity))?;
        Ok(PluginLoader { engines, workflow_linker, activity_linker })
    }

    /// The engines plugins are compiled with.
    pub fn engines(&self) -> &Engines {
        &self.engines
    }

    /// Reads, judges, compiles and pre-links one plugin. `meter` gives the
    /// plugin (named by its file stem) somewhere to report its figures.
    pub fn load(&self, path: &Path, settings: PluginSettings, meter: impl FnOnce(&str) -> SharedMeter) -> Result<Plugin, PluginError> {
        let source = PluginSource::read(path, settings)?;
        if let Some(refusal) = source.refusal() {
            return Err(refusal);
        }
        let compiled = self.engines.compile(&source)?;
        Ok(match source.kind {
            PluginKind::Workflow => {
                let mut plugin = WorkflowPlugin::new(&source, &compiled.component, compiled.sha256, &self.workflow_linker)?;
                plugin.meters = meter(&source.name);
                plugin.memory_budget = self.engines.memory_budget.clone();
                Plugin::Workflow(Arc::new(plugin))
            }
            PluginKind::Activity => {
                let mut plugin = ActivityPlugin::new(&source, &compiled.component, compiled.sha256, &self.activity_linker)?;
                plugin.meters = meter(&source.name);
                plugin.memory_budget = self.engines.memory_budget.clone();
                Plugin::Activity(Arc::new(plugin))
            }
        })
    }
}
