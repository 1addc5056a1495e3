//! Benchmarks live in `benches/`; see README.md. The library holds what
//! they share: the native Temporal Rust SDK reference workflow, and the
//! setup of a registry over a built plugin.

pub mod long_history;
pub mod native;

use caisson::engine::{ComponentCache, EngineOptions, PoolingLimits, default_cache_dir, start_epoch_ticker};
use caisson::manifest::PluginSettings;
use caisson::plugin::Engines;
use caisson::registry::Registry;
use std::path::Path;

/// A registry serving `build/plugins/PLUGIN.wasm` (compiled through the
/// compile cache), with a pool of `instances` instances, as a worker has.
pub fn registry_of(plugin: &str, instances: u32) -> Registry {
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../build/plugins/{plugin}.wasm"));
    assert!(wasm.exists(), "build the plugins first: cargo xtask plugins");
    let options = EngineOptions::pooled(PoolingLimits::new(instances, 64 << 20));
    let engines = Engines::new(&options, ComponentCache::new(default_cache_dir())).unwrap();
    start_epoch_ticker(&[&engines.workflow, &engines.activity]);
    let mut registry = Registry::new(engines).unwrap();
    registry.load(&wasm, PluginSettings::default()).unwrap();
    registry
}

/// The `caisson` binary of this build (`CAISSON_BIN` overrides): the
/// bench runs from `TARGET/PROFILE/deps`, the binary is in `TARGET/PROFILE`.
pub fn caisson_binary() -> std::path::PathBuf {
    if let Some(bin) = std::env::var_os("CAISSON_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(Path::parent).unwrap().join("caisson");
    assert!(bin.exists(), "{} is missing: `cargo build -p caisson` first (or set CAISSON_BIN)", bin.display());
    bin
}
