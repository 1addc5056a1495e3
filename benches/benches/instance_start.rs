//! The cost of starting a workflow instance: instantiate a Rust workflow
//! (test-workflows' `sleep`) through its pre-linked `InstancePre` in a
//! pooled slot and run it to its first `wait`; and of evicting one that
//! waits.
//!
//! Run: `cargo bench -p caisson-benches --bench instance_start --profile dev`
//! (build the plugins first: `cargo xtask plugins`); prefix `taskset -c 0`
//! for one CPU.

use caisson::registry::Registry;
use caisson::workflow::bindings::WorkflowInfo;
use caisson::workflow::{Activation, StartRequest, WorkflowRun};
use criterion::{BatchSize, Criterion, criterion_group};
use std::sync::Arc;

fn registry() -> Arc<Registry> {
    Arc::new(caisson_benches::registry_of("test-workflows", 1024))
}

fn instantiation(c: &mut Criterion) {
    let registry = registry();
    let plugin = registry.workflow("sleep").unwrap().clone();
    let request = StartRequest {
        workflow_type: "sleep".into(),
        args: vec![serde_json::json!(1000)],
        info: WorkflowInfo { task_queue: "bench".into(), run_id: "run".into(), ..WorkflowInfo::first_attempt("sleep", "bench") },
        randomness_seed: 7,
    };
    let start = || {
        let mut run = WorkflowRun::start(plugin.clone(), request.clone()).unwrap();
        let commands = run.activate(Activation::default()).unwrap();
        assert_eq!(commands.len(), 1);
        run
    };
    // Instantiation proper: runs are dropped outside the timed region, in
    // batches that fit the pool of instances.
    c.bench_function("workflow instance: instantiate and run to the first wait", |b| {
        b.iter_batched(|| (), |()| start(), BatchSize::NumIterations(256))
    });
    // Eviction of a suspended run (its fiber unwound, its slot returned).
    c.bench_function("workflow instance: start, then evict while it waits", |b| b.iter(|| drop(start())));
}

criterion_group!(benches, instantiation);

fn main() {
    benches();
    criterion::Criterion::default().configure_from_args().final_summary();
}
