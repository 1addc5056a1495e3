//! Shared set-up for the runtime's own tests: the plugins `make test`
//! builds (`cargo xtask plugins` → build/plugins) loaded with a private
//! compile cache, no Temporal server anywhere. Each test target uses
//! part of it.
#![allow(dead_code)]

use caisson_runtime::activity::bindings::ActivityInfo;
use caisson_runtime::activity::{Attempt, Cancellation};
use caisson_runtime::engine::{ComponentCache, EngineOptions, default_cache_dir, start_epoch_ticker};
use caisson_runtime::loader::{Plugin, PluginLoader};
use caisson_runtime::meter::unmetered;
use caisson_runtime::plugin::Engines;
use caisson_runtime::settings::PluginSettings;
use caisson_runtime::workflow::StartRequest;
use caisson_runtime::workflow::bindings::WorkflowInfo;
use std::path::PathBuf;
use std::sync::Arc;

/// `build/plugins/NAME.wasm` of this checkout.
pub fn built_plugin(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../build/plugins").join(format!("{name}.wasm"));
    assert!(path.exists(), "{} is missing: build the plugins first with `cargo xtask plugins`", path.display());
    path
}

/// A loader with a ticking epoch (the wall-clock backstop needs it).
pub fn loader() -> PluginLoader {
    let engines = Engines::new(&EngineOptions::default(), ComponentCache::new(default_cache_dir())).unwrap();
    start_epoch_ticker(&[&engines.workflow, &engines.activity]);
    PluginLoader::new(engines).unwrap()
}

/// Loads `build/plugins/NAME.wasm` with `settings`.
pub fn load(loader: &PluginLoader, name: &str, settings: PluginSettings) -> Plugin {
    loader.load(&built_plugin(name), settings, |_| unmetered()).unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

/// Facts about a first run of `workflow_type`.
pub fn info(workflow_type: &str) -> WorkflowInfo {
    WorkflowInfo {
        task_queue: "runtime-tests".into(),
        run_id: "run-1".into(),
        ..WorkflowInfo::first_attempt(workflow_type, &format!("{workflow_type}-1"))
    }
}

/// A start of `workflow_type` with `args`.
pub fn request(workflow_type: &str, args: Vec<serde_json::Value>) -> StartRequest {
    StartRequest { workflow_type: workflow_type.into(), args, info: info(workflow_type), randomness_seed: 7 }
}

/// An attempt of `activity_type` of `plugin`, as the worker would start one.
pub fn attempt_of(plugin: &str, activity_type: &str) -> Arc<Attempt> {
    Arc::new(Attempt {
        info: ActivityInfo {
            activity_id: "1".into(),
            activity_type: activity_type.into(),
            task_queue: "runtime-tests".into(),
            workflow_namespace: "default".into(),
            workflow_type: "w".into(),
            workflow_id: "w-1".into(),
            workflow_run_id: "r-1".into(),
            attempt: 1,
            start_to_close_timeout_ms: None,
            heartbeat_timeout_ms: None,
        },
        last_heartbeat_details: None,
        cancellation: Arc::new(Cancellation::default()),
        heartbeat: Arc::new(|_| {}),
        plugin: plugin.into(),
    })
}
