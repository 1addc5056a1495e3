//! Shared set-up for the runtime's own tests: the plugins `make test`
//! builds (`cargo xtask plugins` → build/plugins) loaded with a private
//! compile cache, no Temporal server anywhere.

use caisson_runtime::engine::{ComponentCache, EngineOptions, default_cache_dir, start_epoch_ticker};
use caisson_runtime::loader::{Plugin, PluginLoader};
use caisson_runtime::meter::unmetered;
use caisson_runtime::plugin::Engines;
use caisson_runtime::settings::PluginSettings;
use std::path::PathBuf;

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
