//! Wasmtime engines and the on-disk cache of compiled components.
//!
//! Workflows and activities get different engines because they need
//! different code: workflows must compute the same bits on every replay
//! (NaN canonicalization, deterministic relaxed SIMD, no threads, fuel
//! metering for a deterministic budget), activities do not.
//!
//! Workers use wasmtime's pooling allocator (an instance starts in
//! microseconds in a pre-reserved slot); the pools are sized here from the
//! worker's settings, within the address space a process can reserve.
//! The compile cache lives in [`crate::compile_cache`] and is re-exported.

pub use crate::compile_cache::{CacheOutcome, ComponentCache, EngineError, LoadedComponent, default_cache_dir, sha256_hex};
use crate::policy::PluginKind;
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

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

/// Linear memories a component instance may have (a main module's and,
/// for some toolchains, an adapter's).
const MEMORIES_PER_INSTANCE: u64 = 2;
/// wasmtime's default reservation per linear memory on 64-bit hosts: with
/// 4 GiB (all a 32-bit memory can address) plus the guard, Cranelift emits
/// no bounds checks.
const FULL_RESERVATION: u64 = 4 << 30;
/// wasmtime's default guard region after a linear memory.
const FULL_GUARD: u64 = 32 << 20;
/// The guard after a memory once reservations are cut to the memory's
/// size (code then bounds-checks; the guard only saves checks on offsets).
const COMPACT_GUARD: u64 = 2 << 20;
/// Address space all pools together may reserve. x86_64 gives a process
/// 128 TiB; measured here, one mapping of ~80 TiB is the most a process
/// can get (the executable sits around 85 TiB), and the heap, thread
/// stacks and compiled code need the rest. 48 TiB leaves room for them.
pub const POOL_ADDRESS_SPACE: u64 = 48 << 40;
/// The largest linear memory of an instance when the pool can afford it
/// (also the ceiling before pools were sized from the settings).
const MAX_MEMORY: u64 = 1 << 30;
/// The least memory slot a cached workflow may get: a Rust workflow uses a
/// few hundred KiB of linear memory, a JavaScript one (componentize-js) a
/// few MiB; 64 MiB leaves them room to grow.
pub const MIN_WORKFLOW_MEMORY: u64 = 64 << 20;
/// Memory mappings (VMAs) one live instance costs the process: its fiber
/// stack and the stack's guard page (made at pool creation, for every
/// slot), its linear memory's accessible part and the rest of its slot,
/// and the copy-on-write image of its initial memory.
const MAPPINGS_PER_INSTANCE: u64 = 6;
/// Mappings the rest of the worker takes (code, heap, threads, sockets).
const MAPPINGS_OF_THE_HOST: u64 = 2000;

/// Core module instances one component may hold. A Rust component has
/// one to four; a CPython component (componentize-py: the interpreter,
/// libc, the WASI adapter and their shims, each an instance) about 35.
/// The limit is a counter, not memory: a generous one costs nothing.
const CORE_INSTANCES_PER_COMPONENT: u32 = 64;

/// Instances beyond the configured counts: replays for queries on evicted
/// workflows, and a new instance started before an evicted one is dropped.
const SLACK_INSTANCES: usize = 64;

/// Instance pooling limits, for workers (not for one-off `check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolingLimits {
    /// Component instances alive at once.
    pub instances: u32,
    /// Largest linear memory of one instance, in bytes.
    pub max_memory_bytes: usize,
    /// Address space reserved for each linear memory (at least
    /// `max_memory_bytes`; 4 GiB removes bounds checks from the code).
    pub memory_reservation: u64,
    /// Inaccessible bytes after each memory's reservation.
    pub memory_guard: u64,
}

impl PoolingLimits {
    /// `instances` slots with memories of up to `max_memory_bytes`, each in
    /// wasmtime's default 4 GiB reservation (no bounds checks).
    pub fn new(instances: u32, max_memory_bytes: usize) -> Self {
        PoolingLimits { instances, max_memory_bytes, memory_reservation: FULL_RESERVATION, memory_guard: FULL_GUARD }
    }

    /// The same slots with reservations cut to the memory's size: far less
    /// address space per instance, for bounds checks in the code.
    fn compact(instances: u32, max_memory_bytes: u64) -> Self {
        PoolingLimits {
            instances,
            max_memory_bytes: max_memory_bytes as usize,
            memory_reservation: max_memory_bytes,
            memory_guard: COMPACT_GUARD,
        }
    }

    /// Address space the pool's memories reserve, in bytes.
    pub fn address_space(&self) -> u64 {
        (u64::from(self.instances) * MEMORIES_PER_INSTANCE).saturating_mul(self.memory_reservation + self.memory_guard)
    }
}

/// Settings that shape the engines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineOptions {
    /// The workflow engine's instance pool; on-demand instances when absent.
    pub workflow_pool: Option<PoolingLimits>,
    /// The activity engine's instance pool; on-demand instances when absent.
    pub activity_pool: Option<PoolingLimits>,
}

impl EngineOptions {
    /// The same pool shape for both engines (benchmarks).
    pub fn pooled(limits: PoolingLimits) -> Self {
        EngineOptions { workflow_pool: Some(limits), activity_pool: Some(limits) }
    }

    /// The pool of `kind`'s engine.
    pub fn pool(&self, kind: PluginKind) -> Option<&PoolingLimits> {
        match kind {
            PluginKind::Workflow => self.workflow_pool.as_ref(),
            PluginKind::Activity => self.activity_pool.as_ref(),
        }
    }

    /// Pools for a worker holding `cached_workflows` workflows (its sticky
    /// cache, summed over tenants) and running `concurrent_activities`
    /// attempts at once.
    ///
    /// Each pool slot reserves address space for its largest memory up
    /// front. When 4 GiB reservations for every slot fit in
    /// [`POOL_ADDRESS_SPACE`] (the default 1,000 workflows do) that is what
    /// the engines get; otherwise activities keep 1 GiB memories and each
    /// workflow slot gets the largest power of two that fits (1 GiB for
    /// 10,000 workflows, 256 MiB for 50,000), down to
    /// [`MIN_WORKFLOW_MEMORY`]. Less than that is refused, naming the
    /// setting and the address space it would need.
    pub fn for_worker(cached_workflows: usize, concurrent_activities: usize) -> Result<Self, PoolSizingError> {
        let max_map_count = std::fs::read_to_string("/proc/sys/vm/max_map_count").ok().and_then(|s| s.trim().parse().ok());
        Self::for_worker_within(cached_workflows, concurrent_activities, max_map_count)
    }

    /// [`EngineOptions::for_worker`] on a kernel allowing `max_map_count`
    /// mappings per process (`vm.max_map_count`; unknown: not checked).
    /// Each instance costs a few mappings (see [`MAPPINGS_PER_INSTANCE`]),
    /// so Debian's default of 65,530 holds about 10,000 cached workflows.
    pub fn for_worker_within(
        cached_workflows: usize,
        concurrent_activities: usize,
        max_map_count: Option<u64>,
    ) -> Result<Self, PoolSizingError> {
        let instances = (cached_workflows as u64).saturating_add(concurrent_activities as u64).saturating_add(2 * SLACK_INSTANCES as u64);
        let needs = instances.saturating_mul(MAPPINGS_PER_INSTANCE).saturating_add(MAPPINGS_OF_THE_HOST);
        if let Some(allowed) = max_map_count
            && needs > allowed
        {
            return Err(PoolSizingError::TooManyMappings { workflows: cached_workflows, needs, allowed });
        }
        let slots = |n: usize| u32::try_from(n.saturating_add(SLACK_INSTANCES)).unwrap_or(u32::MAX);
        let (workflows, activities) = (slots(cached_workflows), slots(concurrent_activities));
        let full_workflows = PoolingLimits::new(workflows, MAX_MEMORY as usize);
        let full_activities = PoolingLimits::new(activities, MAX_MEMORY as usize);
        if full_workflows.address_space().saturating_add(full_activities.address_space()) <= POOL_ADDRESS_SPACE {
            return Ok(EngineOptions { workflow_pool: Some(full_workflows), activity_pool: Some(full_activities) });
        }
        // Activities first: they are few, and an attempt may need its gigabyte.
        let activity_pool = if full_activities.address_space() <= POOL_ADDRESS_SPACE / 8 {
            full_activities
        } else {
            PoolingLimits::compact(activities, MAX_MEMORY)
        };
        if activity_pool.address_space() > POOL_ADDRESS_SPACE / 2 {
            return Err(PoolSizingError::TooManyActivities { activities: concurrent_activities, needs: activity_pool.address_space() });
        }
        let left = POOL_ADDRESS_SPACE - activity_pool.address_space();
        let workflow_memories = u64::from(workflows) * MEMORIES_PER_INSTANCE;
        let per_memory = (left / workflow_memories).saturating_sub(COMPACT_GUARD);
        let memory = if per_memory == 0 { 0 } else { MAX_MEMORY.min(1 << per_memory.ilog2()) };
        if memory < MIN_WORKFLOW_MEMORY {
            let per_workflow = MEMORIES_PER_INSTANCE * (MIN_WORKFLOW_MEMORY + COMPACT_GUARD);
            return Err(PoolSizingError::TooManyWorkflows {
                workflows: cached_workflows,
                needs: u64::from(workflows).saturating_mul(per_workflow),
                most: usize::try_from(left / per_workflow).unwrap_or(usize::MAX).saturating_sub(SLACK_INSTANCES),
            });
        }
        Ok(EngineOptions { workflow_pool: Some(PoolingLimits::compact(workflows, memory)), activity_pool: Some(activity_pool) })
    }
}

/// A worker configuration whose instance pools cannot be reserved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolSizingError {
    /// Too many cached workflows.
    #[error(
        "[worker] max_cached_workflows = {workflows} (summed over tenants) is more than one worker can hold: each cached workflow \
         reserves at least {min} MiB of address space per memory, {needs_tib:.1} TiB in all, and a worker's pools may reserve \
         {budget} TiB. Fix: set max_cached_workflows to at most {most}, or run more workers",
        min = MIN_WORKFLOW_MEMORY >> 20,
        needs_tib = *needs as f64 / (1u64 << 40) as f64,
        budget = POOL_ADDRESS_SPACE >> 40
    )]
    TooManyWorkflows {
        /// The setting's value.
        workflows: usize,
        /// Address space it would need, in bytes.
        needs: u64,
        /// The most that fits.
        most: usize,
    },
    /// More instances than the kernel lets a process map.
    #[error(
        "[worker] max_cached_workflows = {workflows} (summed over tenants) needs about {needs} memory mappings (a fiber stack \
         and a linear memory per cached workflow), more than this kernel's vm.max_map_count = {allowed}. Fix: raise it \
         (`sysctl -w vm.max_map_count={suggest}`, or in /etc/sysctl.d), or lower max_cached_workflows",
        suggest = needs.next_power_of_two().max(262_144)
    )]
    TooManyMappings {
        /// The setting's value.
        workflows: usize,
        /// Mappings the pools would take, about.
        needs: u64,
        /// The kernel's `vm.max_map_count`.
        allowed: u64,
    },
    /// Too many concurrent activities.
    #[error(
        "[worker] max_concurrent_activities = {activities} (summed over tenants) needs {needs_tib:.1} TiB of address space for \
         1 GiB activity memories, more than half of the {budget} TiB a worker's pools may reserve. Fix: lower \
         max_concurrent_activities, or run more workers",
        needs_tib = *needs as f64 / (1u64 << 40) as f64,
        budget = POOL_ADDRESS_SPACE >> 40
    )]
    TooManyActivities {
        /// The setting's value.
        activities: usize,
        /// Address space it would need, in bytes.
        needs: u64,
    },
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
    if let Some(limits) = options.pool(kind) {
        // A slot's memory is reset for its next instance. With
        // `pagemap_scan` (Linux 6.7+) wasmtime finds the pages the last
        // instance dirtied and memsets just those (up to 2 MiB), instead of
        // `madvise` + TLB shootdown + a page fault per page on next use:
        // instance start + teardown went from ~31 µs to ~22 µs. Older
        // kernels fall back to keeping 64 KiB resident.
        let pagemap = PoolingAllocationConfig::is_pagemap_scan_available();
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(limits.instances)
            .total_core_instances(limits.instances.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
            .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
            .total_memories(limits.instances.saturating_mul(MEMORIES_PER_INSTANCE as u32))
            .total_tables(limits.instances.saturating_mul(4))
            .total_stacks(limits.instances)
            .max_memories_per_component(MEMORIES_PER_INSTANCE as u32)
            .max_memory_size(limits.max_memory_bytes)
            .linear_memory_keep_resident(if pagemap { 2 << 20 } else { 64 << 10 })
            .table_keep_resident(16 << 10)
            .pagemap_scan(if pagemap { wasmtime::Enabled::Yes } else { wasmtime::Enabled::No });
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        config.memory_reservation(limits.memory_reservation).memory_guard_size(limits.memory_guard);
    }
    Engine::new(&config).map_err(EngineError::Config)
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

    #[test]
    fn the_default_worker_keeps_full_reservations() {
        let options = EngineOptions::for_worker_within(1000, 100, None).unwrap();
        assert_eq!(options.workflow_pool, Some(PoolingLimits::new(1064, 1 << 30)));
        assert_eq!(options.activity_pool, Some(PoolingLimits::new(164, 1 << 30)));
    }

    #[test]
    fn big_sticky_caches_get_smaller_workflow_slots_within_the_address_space() {
        for (cached, memory) in [(10_000, 1u64 << 30), (50_000, 256 << 20), (300_000, 64 << 20)] {
            let options = EngineOptions::for_worker_within(cached, 100, None).unwrap();
            let workflows = options.workflow_pool.unwrap();
            assert_eq!(workflows.max_memory_bytes as u64, memory, "{cached} cached workflows");
            assert_eq!(workflows.memory_reservation, memory);
            let total = workflows.address_space() + options.activity_pool.unwrap().address_space();
            assert!(total <= POOL_ADDRESS_SPACE, "{cached}: {total:#x}");
        }
    }

    #[test]
    fn an_impossible_sticky_cache_is_refused_naming_the_setting_and_the_memory() {
        for cached in [1_000_000, usize::MAX] {
            let err = EngineOptions::for_worker_within(cached, 100, None).unwrap_err().to_string();
            assert!(err.contains(&format!("max_cached_workflows = {cached}")), "{err}");
            assert!(err.contains("TiB in all") && err.contains("at most 3"), "{err}");
        }
        let err = EngineOptions::for_worker_within(1000, 50_000_000, None).unwrap_err().to_string();
        assert!(err.contains("max_concurrent_activities = 50000000"), "{err}");
    }

    #[test]
    fn a_sticky_cache_the_kernel_cannot_map_is_refused_naming_both_settings() {
        let err = EngineOptions::for_worker_within(50_000, 100, Some(65_530)).unwrap_err().to_string();
        assert!(err.contains("max_cached_workflows = 50000") && err.contains("vm.max_map_count = 65530"), "{err}");
        assert!(err.contains("sysctl -w vm.max_map_count=524288"), "{err}");
        EngineOptions::for_worker_within(50_000, 100, Some(1 << 20)).unwrap();
        EngineOptions::for_worker_within(10_000, 100, Some(65_530)).unwrap();
    }

    #[test]
    fn an_engine_with_a_compact_pool_for_10000_workflows_can_be_built() {
        let options = EngineOptions::for_worker_within(10_000, 100, None).unwrap();
        assert!(options.workflow_pool.unwrap().memory_reservation < FULL_RESERVATION);
        build_engine(PluginKind::Workflow, &options).unwrap();
    }
}
