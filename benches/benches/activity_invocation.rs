//! Host-side overhead of one activity invocation: instantiate (pooling
//! allocator, pre-linked `InstancePre`), convert the JSON argument, call,
//! convert the result, drop the store. The plugin is the tiny Rust
//! `test-activities` component; its `echo` does no work of its own.
//!
//! Run: `cargo bench -p caisson-benches --bench activity_invocation`
//! (build the plugins first: `cargo xtask plugins`).

use caisson::activity::bindings::ActivityInfo;
use caisson::activity::{Attempt, AttemptOutcome};
use caisson::registry::Registry;
use criterion::{Criterion, criterion_group};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn setup() -> (tokio::runtime::Runtime, Registry, Arc<Attempt>) {
    let registry = caisson_benches::registry_of("test-activities", 256);
    let attempt = Arc::new(Attempt {
        info: ActivityInfo {
            activity_id: "1".into(),
            activity_type: "echo".into(),
            task_queue: "bench".into(),
            workflow_namespace: "default".into(),
            workflow_type: "bench".into(),
            workflow_id: "bench".into(),
            workflow_run_id: "run".into(),
            attempt: 1,
            start_to_close_timeout_ms: None,
            heartbeat_timeout_ms: None,
        },
        last_heartbeat_details: None,
        cancellation: Arc::default(),
        heartbeat: Arc::new(|_| {}),
        plugin: "test-activities".into(),
    });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    (runtime, registry, attempt)
}

fn invocation(c: &mut Criterion) {
    let (runtime, registry, attempt) = setup();
    let plugin = registry.activity("echo").unwrap().clone();
    let args = [serde_json::json!("hello")];
    let outcome = runtime.block_on(plugin.run("echo", &args, attempt.clone()));
    assert_eq!(outcome, AttemptOutcome::Completed(serde_json::json!("hello")));
    c.bench_function("activity invocation (echo)", |b| {
        b.iter(|| runtime.block_on(plugin.run("echo", &args, attempt.clone())));
    });
}

/// p50 and p99 over many single invocations (criterion reports means).
fn percentiles() {
    let (runtime, registry, attempt) = setup();
    let plugin = registry.activity("echo").unwrap().clone();
    let args = [serde_json::json!("hello")];
    for _ in 0..1_000 {
        runtime.block_on(plugin.run("echo", &args, attempt.clone()));
    }
    let mut samples: Vec<Duration> = (0..20_000)
        .map(|_| {
            let t = Instant::now();
            runtime.block_on(plugin.run("echo", &args, attempt.clone()));
            t.elapsed()
        })
        .collect();
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "activity invocation (echo), {} samples: p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        samples.len(),
        at(0.50).as_secs_f64() * 1e6,
        at(0.90).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        samples[samples.len() - 1].as_secs_f64() * 1e6
    );
}

criterion_group!(benches, invocation);

fn main() {
    benches();
    percentiles();
    Criterion::default().configure_from_args().final_summary();
}
