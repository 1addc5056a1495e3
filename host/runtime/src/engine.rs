//! Wasmtime engines and the on-disk cache of compiled components.
//!
//! Workflows and activities get different engines because they need
//! different code: workflows must compute the same bits on every replay
//! (NaN canonicalization, deterministic relaxed SIMD, no threads, fuel
//! metering for a deterministic budget), activities do not.
//!
//! Compiling a 12 MB JavaScript component takes seconds; the cache keeps
//! the compiled artifact keyed by the component's SHA-256 and the engine's
//! compatibility hash, so a restart loads it in milliseconds.

use crate::policy::PluginKind;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Why a component could not be compiled or cached.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine configuration is invalid.
    #[error("cannot create the wasmtime engine: {0:#}")]
    Config(wasmtime::Error),
    /// Wasmtime rejected the component.
    #[error("cannot compile: {0:#}")]
    Compile(wasmtime::Error),
    /// The compile cache could not be written (compilation itself worked).
    #[error("cannot write the compile cache at {path}: {source}")]
    CacheWrite {
        /// The cache file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// How often the epoch ticker advances every engine's epoch. Deadlines
/// are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Starts a thread that advances the engines' epochs every [`EPOCH_TICK`],
/// the wall-clock backstop for guests that never yield. It stops when
/// all the engines are dropped.
pub fn start_epoch_ticker(engines: &[&Engine]) {
    let weak: Vec<_> = engines.iter().map(|e| e.weak()).collect();
    std::thread::Builder::new()
        .name("caisson-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                let mut alive = false;
                for engine in weak.iter().filter_map(|w| w.upgrade()) {
                    engine.increment_epoch();
                    alive = true;
                }
                if !alive {
                    break;
                }
            }
        })
        .expect("spawn the epoch ticker thread");
}

/// Instance pooling limits, for workers (not for one-off `check`).
#[derive(Debug, Clone, Copy)]
pub struct PoolingLimits {
    /// Component instances alive at once (cached workflows + running activities).
    pub instances: u32,
    /// Largest linear memory of one instance, in bytes.
    pub max_memory_bytes: usize,
}

/// Settings that shape the engines.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineOptions {
    /// Use the pooling allocator (instantiation in ~1 µs instead of ~9 µs).
    pub pooling: Option<PoolingLimits>,
}

/// Builds the engine for one kind of plugin.
pub fn build_engine(kind: PluginKind, options: &EngineOptions) -> Result<Engine, EngineError> {
    let mut config = Config::new();
    // Component-model async would route every call through the concurrent
    // path (slower calls, slower store drops); Caisson suspends guests on
    // fibers through plain async host functions instead.
    config.concurrency_support(false);
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.wasm_threads(false);
    config.shared_memory(false);
    match kind {
        PluginKind::Workflow => {
            config.cranelift_nan_canonicalization(true);
            config.relaxed_simd_deterministic(true);
            config.consume_fuel(true);
        }
        PluginKind::Activity => {}
    }
    if let Some(limits) = options.pooling {
        // A slot's memory is reset for its next instance. With
        // `pagemap_scan` (Linux 6.7+) wasmtime finds the pages the last
        // instance dirtied and memsets just those (up to 2 MiB), instead of
        // `madvise` + TLB shootdown + a page fault per page on next use:
        // instance start + teardown went from ~31 µs to ~22 µs. Older
        // kernels fall back to keeping 64 KiB resident.
        let pagemap = PoolingAllocationConfig::is_pagemap_scan_available();
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(limits.instances)
            .total_core_instances(limits.instances * 4)
            .total_memories(limits.instances * 2)
            .total_tables(limits.instances * 4)
            .total_stacks(limits.instances)
            .max_memories_per_component(2)
            .max_memory_size(limits.max_memory_bytes)
            .linear_memory_keep_resident(if pagemap { 2 << 20 } else { 64 << 10 })
            .table_keep_resident(16 << 10)
            .pagemap_scan(if pagemap { wasmtime::Enabled::Yes } else { wasmtime::Enabled::No });
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Engine::new(&config).map_err(EngineError::Config)
}

/// Where compiled components are kept: `$CAISSON_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/caisson/compiled`, else `~/.cache/caisson/compiled`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CAISSON_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("caisson/compiled")
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a previously compiled artifact.
    Hit,
    /// Compiled now (and stored, when a cache is in use).
    Compiled,
}

/// A loaded component and how long that took.
#[derive(Debug, Clone)]
pub struct LoadedComponent {
    /// The compiled component.
    pub component: Component,
    /// SHA-256 of the component bytes, hex: its version identity.
    pub sha256: String,
    /// From the cache or freshly compiled.
    pub outcome: CacheOutcome,
    /// Time spent compiling or deserializing.
    pub elapsed: Duration,
}

/// Compiles components through a content-addressed disk cache.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
}

impl ComponentCache {
    /// A cache in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        ComponentCache { dir: Some(dir) }
    }

    /// No caching: always compile.
    pub fn disabled() -> Self {
        ComponentCache { dir: None }
    }

    /// The compiled form of `bytes` for `engine`. `label` names the plugin
    /// in progress messages.
    pub fn load(&self, engine: &Engine, bytes: &[u8], label: &str) -> Result<LoadedComponent, EngineError> {
        let started = Instant::now();
        let sha256 = sha256_hex(bytes);
        let Some(dir) = &self.dir else {
            let component = with_progress(label, bytes.len(), started, || Component::new(engine, bytes)).map_err(EngineError::Compile)?;
            return Ok(LoadedComponent { component, sha256, outcome: CacheOutcome::Compiled, elapsed: started.elapsed() });
        };
        let path = dir.join(format!("{sha256}-{:016x}.cwasm", engine_fingerprint(engine)));
        if path.exists() {
            match deserialize_cached(engine, &path) {
                Ok(component) => {
                    return Ok(LoadedComponent { component, sha256, outcome: CacheOutcome::Hit, elapsed: started.elapsed() });
                }
                Err(e) => tracing::warn!("{label}: ignoring unreadable cache entry {}: {e:#}", path.display()),
            }
        }
        let artifact = with_progress(label, bytes.len(), started, || engine.precompile_component(bytes)).map_err(EngineError::Compile)?;
        store_atomically(&path, &artifact)?;
        let component = deserialize_cached(engine, &path).map_err(EngineError::Compile)?;
        let elapsed = started.elapsed();
        Ok(LoadedComponent { component, sha256, outcome: CacheOutcome::Compiled, elapsed })
    }
}

/// Runs a compile, telling the log about it when the component is big:
/// Cranelift gives no progress callback, so a line every few seconds says
/// the compile is still going and a big plugin does not look hung.
fn with_progress<T>(label: &str, size: usize, started: Instant, compile: impl FnOnce() -> T) -> T {
    if size <= 1 << 20 {
        return compile();
    }
    tracing::info!("{label}: compiling {:.1} MB (cached afterwards)…", size as f64 / 1e6);
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let label_owned = label.to_owned();
    let progress = std::thread::spawn(move || {
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(Duration::from_secs(3)) {
            tracing::info!("{label_owned}: still compiling ({}s)…", started.elapsed().as_secs());
        }
    });
    let result = compile();
    drop(done);
    let _ = progress.join();
    tracing::info!("{label}: compiled in {:.1}s", started.elapsed().as_secs_f64());
    result
}

/// A component's version identity: the SHA-256 of its bytes, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A stable number for the engine's code-affecting settings and version.
fn engine_fingerprint(engine: &Engine) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    h.finish()
}

/// Writes to a temporary file in the same folder, then renames, so a
/// reader never sees half an artifact.
fn store_atomically(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    let err = |source| EngineError::CacheWrite { path: path.to_owned(), source };
    let dir = path.parent().expect("cache path has a folder");
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = dir.join(format!(".{}.{}.tmp", path.file_name().unwrap().to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[allow(unsafe_code)]
fn deserialize_cached(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime requires that the file be an artifact produced by
    // `precompile_component` of a compatible engine. Only this module writes
    // the cache folder, atomically, under a name derived from the source's
    // hash and the engine's compatibility hash; wasmtime additionally checks
    // the artifact's header against the engine before using it.
    unsafe { Component::deserialize_file(engine, path) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `f32.add` of a NaN carrying a payload: the workflow engine must
    /// return the one canonical NaN, so the bits are the same on every
    /// machine and every replay.
    fn nan_bits(kind: PluginKind) -> u32 {
        let engine = build_engine(kind, &EngineOptions::default()).unwrap();
        let module = wasmtime::Module::new(
            &engine,
            r#"(module (func (export "f") (result i32)
                (i32.reinterpret_f32 (f32.add (f32.reinterpret_i32 (i32.const 0x7fa00001)) (f32.const 0)))))"#,
        )
        .unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        if kind == PluginKind::Workflow {
            store.set_fuel(1_000_000).unwrap();
        }
        store.set_epoch_deadline(1_000);
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        instance.get_typed_func::<(), u32>(&mut store, "f").unwrap().call(&mut store, ()).unwrap()
    }

    #[test]
    fn workflows_canonicalize_nans_and_activities_do_not_need_to() {
        assert_eq!(nan_bits(PluginKind::Workflow), 0x7fc0_0000);
        assert_ne!(nan_bits(PluginKind::Activity), 0x7fc0_0000, "the payload survives without canonicalization");
    }

    #[test]
    fn workflows_run_out_of_fuel_deterministically() {
        let engine = build_engine(PluginKind::Workflow, &EngineOptions::default()).unwrap();
        let module = wasmtime::Module::new(&engine, r#"(module (func (export "spin") (loop (br 0))))"#).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        store.set_fuel(10_000).unwrap();
        store.set_epoch_deadline(1_000);
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let err = instance.get_typed_func::<(), ()>(&mut store, "spin").unwrap().call(&mut store, ()).unwrap_err();
        assert_eq!(err.downcast_ref::<wasmtime::Trap>(), Some(&wasmtime::Trap::OutOfFuel));
    }
}
