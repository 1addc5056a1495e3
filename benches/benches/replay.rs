//! Replay throughput of Caisson: the recorded fixture histories
//! (`host/tests/fixtures/histories`, from real runs of test-workflows)
//! through core's replay worker and the live activation code path; the
//! same histories through the native Temporal Rust SDK's replayer and the
//! same workflow written natively (`caisson_benches::native`), in the same
//! run, with the ratio; 1,000 histories in one batch. (The cost of
//! starting a workflow instance: `--bench instance_start`.)
//!
//! Run: `cargo bench -p caisson-benches --bench replay --profile dev`
//! (build the plugins first: `cargo xtask plugins`).

use caisson::registry::Registry;
use caisson::replay::{RecordedHistory, ReplayOutcome, read_history, replay, replay_on};
use caisson_benches::caisson_binary;
use caisson_benches::native::{NativeReplayer, TimerIds};
use criterion::{Criterion, Throughput, criterion_group};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use temporalio_workflow::common::protos::temporal::api::history::v1::History;
use tokio::runtime::Runtime;

fn registry() -> Arc<Registry> {
    Arc::new(caisson_benches::registry_of("test-workflows", 1024))
}

const SIZES: [&str; 3] = ["small", "medium", "large"];

fn fixtures() -> Vec<(&'static str, RecordedHistory)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/tests/fixtures/histories");
    SIZES.iter().map(|size| (*size, read_history(&dir.join(format!("{size}.json"))).unwrap())).collect()
}

fn events(history: &RecordedHistory) -> u64 {
    history.history.events.len() as u64
}

/// Replays `batch` through Caisson (one replay worker); asserts that every
/// history replayed cleanly; the time it took.
fn caisson_batch(runtime: &Runtime, registry: &Arc<Registry>, batch: Vec<RecordedHistory>) -> Duration {
    let started = Instant::now();
    let outcomes = runtime.block_on(replay(registry.clone(), batch)).unwrap();
    let elapsed = started.elapsed();
    let bad: Vec<_> = outcomes.iter().enumerate().filter(|(_, o)| **o != ReplayOutcome::Ok).take(3).collect();
    assert!(bad.is_empty(), "{} histories, failures: {bad:?}", outcomes.len());
    elapsed
}

/// The same through the native SDK's replayer (one core replay worker);
/// it asserts that every history replayed cleanly and ran to its end.
fn native_batch(runtime: &Runtime, native: &NativeReplayer, batch: Vec<History>) -> Duration {
    let started = Instant::now();
    runtime.block_on(native.replay(batch)).unwrap();
    started.elapsed()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn rate(n: usize, time: Duration) -> f64 {
    n as f64 / time.as_secs_f64()
}

fn report(what: &str, size: &str, n: usize, events: u64, time: Duration) -> f64 {
    let histories = rate(n, time);
    println!(
        "{what} {size}: {n} histories of {events} events in {:.3} s (median of {RUNS}) = {histories:.0} histories/s, {:.0} events/s",
        time.as_secs_f64(),
        histories * events as f64
    );
    histories
}

/// Runs per same-run figure (the median is reported; runs of the
/// contenders alternate so that drift in the machine's load hits both).
const RUNS: usize = 7;

fn replay_throughput(c: &mut Criterion) {
    let registry = registry();
    // Core's replay worker runs tasks of its own: a multi-threaded runtime,
    // as in the worker.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let fixtures = fixtures();
    // The native reference replays the recorded histories unchanged (see
    // caisson_benches::native::TimerIds).
    let native = NativeReplayer::new(TimerIds::Skip);

    let mut group = c.benchmark_group("replay");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    for (size, history) in &fixtures {
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{size} ({} events) histories", events(history)), |b| {
            b.iter_custom(|iters| caisson_batch(&runtime, &registry, vec![history.clone(); iters as usize]));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("replay-native");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    for (size, history) in &fixtures {
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{size} ({} events) histories", events(history)), |b| {
            b.iter_custom(|iters| native_batch(&runtime, &native, native.copies(&history.history, iters as usize)));
        });
    }
    group.finish();

    // Same-run figures for the table: the same batch of N copies through
    // one replay worker each, runs alternating.
    for (size, history) in &fixtures {
        let events = events(history);
        let n = match *size {
            "small" => 500,
            "medium" => 200,
            _ => 40,
        };
        let (mut caisson, mut sdk) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            caisson.push(caisson_batch(&runtime, &registry, vec![history.clone(); n]));
            sdk.push(native_batch(&runtime, &native, native.copies(&history.history, n)));
        }
        // The ratio of each pair of neighbouring runs, then their median:
        // steadier than the ratio of the medians on a shared machine.
        let paired = |a: &[Duration], b: &[Duration]| {
            let mut r: Vec<f64> = a.iter().zip(b).map(|(a, b)| b.as_secs_f64() / a.as_secs_f64()).collect();
            r.sort_by(f64::total_cmp);
            (r[r.len() / 2], r[0], r[r.len() - 1])
        };
        let (ratio, low, high) = paired(&caisson, &sdk);
        let caisson = report("replay caisson", size, n, events, median(caisson));
        let sdk = report("replay native", size, n, events, median(sdk));
        println!(
            "ratio caisson/native {size}: {ratio:.2}x (caisson {caisson:.0} h/s, native {sdk:.0} h/s; \
             median of {RUNS} paired runs, range {low:.2}x-{high:.2}x)"
        );
    }

    // 1,000 medium histories in one batch: on one replay worker (core
    // replays them one after another, each run evicted at its end), and
    // dealt over two replay workers running at once (`replay_on`; native:
    // two halves side by side).
    let (_, medium) = fixtures.iter().find(|(size, _)| *size == "medium").unwrap();
    let n = 1000;
    let workers = 2;
    let (mut caisson, mut sdk, mut caisson_on, mut sdk_on) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        caisson.push(caisson_batch(&runtime, &registry, vec![medium.clone(); n]));
        sdk.push(native_batch(&runtime, &native, native.copies(&medium.history, n)));
        let started = Instant::now();
        let outcomes = runtime.block_on(replay_on(registry.clone(), vec![medium.clone(); n], workers)).unwrap();
        caisson_on.push(started.elapsed());
        assert!(outcomes.iter().all(|o| *o == ReplayOutcome::Ok), "replay_on: not every history replayed cleanly");
        let mut first = native.copies(&medium.history, n);
        let second = first.split_off(n / 2);
        let started = Instant::now();
        let (a, b) = runtime.block_on(async { tokio::join!(native.replay(first), native.replay(second)) });
        sdk_on.push(started.elapsed());
        a.and(b).unwrap();
    }
    for (what, times) in [
        ("in one batch, caisson", caisson),
        ("in one batch, native", sdk),
        ("on 2 replay workers at once, caisson", caisson_on),
        ("on 2 replay workers at once, native", sdk_on),
    ] {
        let time = median(times);
        println!(
            "1,000 histories {what} medium: {:.2} s (median of 3) = {:.0} histories/s, {:.0} events/s",
            time.as_secs_f64(),
            rate(n, time),
            rate(n, time) * events(medium) as f64
        );
    }
    cli_end_to_end(n);
}

/// What a user runs: `caisson replay` on `n` exported JSON files of the
/// medium history (process start, engine, plugin from the compile cache,
/// reading and parsing the files, replay, verdicts), on one and on two
/// replay workers; then the Python SDK's `Replayer` reading the same
/// files (sandboxed), when the setup's venv is there. Same run as the
/// library figures above, which leave parsing out.
fn cli_end_to_end(n: usize) {
    let dir = std::env::temp_dir().join(format!("caisson-bench-cli-{}", std::process::id()));
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/tests/fixtures/histories/medium.json");
    // The file's stem is the workflow id the history was recorded under.
    let files: Vec<std::path::PathBuf> = (0..n)
        .map(|i| {
            let copy = dir.join(format!("{i:04}"));
            std::fs::create_dir_all(&copy).unwrap();
            std::fs::copy(&fixture, copy.join("medium.json")).unwrap();
            copy.join("medium.json")
        })
        .collect();
    let caisson = caisson_binary();
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/plugins/test-workflows.wasm");
    for jobs in ["1", "2"] {
        let mut times = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            let out = std::process::Command::new(&caisson)
                .args(["replay", "--jobs", jobs, "-p"])
                .arg(&plugin)
                .args(&files)
                .output()
                .expect("run caisson replay");
            times.push(started.elapsed());
            let printed = String::from_utf8_lossy(&out.stdout);
            assert!(printed.contains(&format!("{n} histories: {n} ok, 0 failed")), "caisson replay: {printed}");
        }
        let time = median(times);
        println!(
            "1,000 histories through `caisson replay --jobs {jobs}` (files in, verdicts out) medium: {:.2} s (median of 3) = {:.0} histories/s",
            time.as_secs_f64(),
            rate(n, time)
        );
    }
    let python = caisson_home().join("venv/bin/python");
    if python.exists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python_replay.py");
        let out = std::process::Command::new(python)
            .arg(script)
            .arg("--files")
            .arg(&dir)
            .args(["--modes", "sandboxed", "--runs", "3"])
            .output()
            .expect("run benches/python_replay.py");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        assert!(out.status.success(), "python_replay.py --files: {}", String::from_utf8_lossy(&out.stderr));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Where `scripts/setup` installs tools: `$CAISSON_HOME` or `~/.cache/caisson`.
fn caisson_home() -> std::path::PathBuf {
    std::env::var_os("CAISSON_HOME")
        .map(Into::into)
        .unwrap_or_else(|| Path::new(&std::env::var_os("HOME").unwrap_or_default()).join(".cache/caisson"))
}

criterion_group!(benches, replay_throughput);

fn main() {
    benches();
    criterion::Criterion::default().configure_from_args().final_summary();
}
