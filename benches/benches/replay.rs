//! Replay throughput of Caisson: the recorded fixture histories
//! (`host/tests/fixtures/histories`, from real runs of test-workflows)
//! through core's replay worker and the live activation code path; and
//! the cost of starting a workflow instance.
//!
//! Run: `cargo bench -p caisson-benches --bench replay --profile dev`
//! (build the plugins first: `cargo xtask plugins`).

use caisson::engine::{ComponentCache, EngineOptions, PoolingLimits, default_cache_dir, start_epoch_ticker};
use caisson::manifest::PluginSettings;
use caisson::plugin::Engines;
use caisson::registry::Registry;
use caisson::replay::{ReplayOutcome, read_history, replay};
use caisson::workflow::bindings::WorkflowInfo;
use caisson::workflow::{Activation, StartRequest, WorkflowRun};
use criterion::{Criterion, Throughput, criterion_group};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn registry() -> Arc<Registry> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let wasm = root.join("build/plugins/test-workflows.wasm");
    assert!(wasm.exists(), "build the plugins first: cargo xtask plugins");
    let options = EngineOptions { pooling: Some(PoolingLimits { instances: 1024, max_memory_bytes: 64 << 20 }) };
    let engines = Engines::new(&options, ComponentCache::new(default_cache_dir())).unwrap();
    start_epoch_ticker(&[&engines.workflow, &engines.activity]);
    let mut registry = Registry::new(engines).unwrap();
    registry.load(&wasm, PluginSettings::default()).unwrap();
    Arc::new(registry)
}

fn replay_throughput(c: &mut Criterion) {
    let registry = registry();
    // Core's replay worker runs tasks of its own: a multi-threaded runtime,
    // as in the worker.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/tests/fixtures/histories");
    let mut group = c.benchmark_group("replay");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    for size in ["small", "medium", "large"] {
        let history = read_history(&fixtures.join(format!("{size}.json"))).unwrap();
        let events = history.history.events.len() as u64;
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{size} ({events} events) histories"), |b| {
            b.iter_custom(|iters| {
                let batch = vec![history.clone(); iters as usize];
                let started = Instant::now();
                let outcomes = runtime.block_on(replay(registry.clone(), batch)).unwrap();
                let elapsed = started.elapsed();
                let bad: Vec<_> = outcomes.iter().enumerate().filter(|(_, o)| **o != ReplayOutcome::Ok).take(3).collect();
                assert!(bad.is_empty(), "{} histories, failures: {bad:?}", outcomes.len());
                elapsed
            });
        });
        // Events per second, in the same run, for the table.
        let n = if events > 1000 { 20 } else { 200 };
        let batch = vec![history.clone(); n];
        let started = Instant::now();
        runtime.block_on(replay(registry.clone(), batch)).unwrap();
        let secs = started.elapsed().as_secs_f64();
        println!("replay {size}: {n} histories of {events} events in {secs:.2} s = {:.0} histories/s, {:.0} events/s", n as f64 / secs, (n as u64 * events) as f64 / secs);
    }
    group.finish();
}

fn instantiation(c: &mut Criterion) {
    let registry = registry();
    let plugin = registry.workflow("sleep").unwrap().clone();
    let request = StartRequest {
        workflow_type: "sleep".into(),
        args: vec![serde_json::json!(1000)],
        info: WorkflowInfo {
            namespace: "default".into(),
            task_queue: "bench".into(),
            workflow_type: "sleep".into(),
            workflow_id: "bench".into(),
            run_id: "run".into(),
            attempt: 1,
            continued_from_run_id: None,
            parent_workflow_id: None,
        },
        randomness_seed: 7,
    };
    c.bench_function("workflow instance: instantiate and run to the first wait", |b| {
        b.iter(|| {
            let mut run = WorkflowRun::start(plugin.clone(), request.clone()).unwrap();
            let commands = run.activate(Activation::default()).unwrap();
            assert_eq!(commands.len(), 1);
        });
    });
}

criterion_group!(benches, replay_throughput, instantiation);

fn main() {
    benches();
    criterion::Criterion::default().configure_from_args().final_summary();
}
