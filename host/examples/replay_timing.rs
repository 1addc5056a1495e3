use caisson::engine::{ComponentCache, EngineOptions, PoolingLimits, default_cache_dir, start_epoch_ticker};
use caisson::manifest::PluginSettings;
use caisson::plugin::Engines;
use caisson::registry::Registry;
use caisson::replay::{ReplayOutcome, read_history, replay};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let size = args.get(1).cloned().unwrap_or("medium".into());
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200);
    let threads: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let options = EngineOptions { pooling: Some(PoolingLimits { instances: 1024, max_memory_bytes: 64 << 20 }) };
    let engines = Engines::new(&options, ComponentCache::new(default_cache_dir())).unwrap();
    start_epoch_ticker(&[&engines.workflow, &engines.activity]);
    let mut registry = Registry::new(engines).unwrap();
    registry.load(&root.join("build/plugins/test-workflows.wasm"), PluginSettings::default()).unwrap();
    let registry = Arc::new(registry);
    let rt = if threads == 0 {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().unwrap()
    };
    {
        use caisson::workflow::bindings::WorkflowInfo;
        use caisson::workflow::{Activation, StartRequest, WorkflowRun};
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
        for _ in 0..2 {
            let t = Instant::now();
            for _ in 0..n {
                let mut run = WorkflowRun::start(plugin.clone(), request.clone()).unwrap();
                let commands = run.activate(Activation::default()).unwrap();
                assert_eq!(commands.len(), 1);
            }
            println!("instance start: {:.1} us", t.elapsed().as_secs_f64() / n as f64 * 1e6);
        }
    }
    if size == "none" {
        return;
    }
    let history = read_history(&root.join(format!("host/tests/fixtures/histories/{size}.json"))).unwrap();
    for round in 0..3 {
        let batch = vec![history.clone(); n];
        let t = Instant::now();
        let out = rt.block_on(replay(registry.clone(), batch)).unwrap();
        let e = t.elapsed();
        assert!(out.iter().all(|o| matches!(o, ReplayOutcome::Ok)));
        println!("round {round}: {n} {size} in {:.3}s = {:.0} h/s", e.as_secs_f64(), n as f64 / e.as_secs_f64());
    }
}
