//! Replay time against history length, and `caisson replay --jobs`
//! against CPUs (issue #18 item 6).
//!
//! 1. Histories of `long-history` from 1,000 to 50,000 events (made from a
//!    real recording, `caisson_benches::long_history`), each written as
//!    an exported JSON file and replayed (a) in process: read and parse
//!    the file, replay it on one replay worker; (b) by `caisson replay
//!    --jobs 1 FILE`, what a user runs. Time per event should not grow
//!    with the length: the line `per-event cost, 50,000 / 1,000 events`
//!    is that ratio (1.0 is linear).
//! 2. `caisson replay --jobs 1` and `--jobs 2` on 500 copies of the
//!    medium fixture: the speed-up from a second CPU.
//!
//! Run: `cargo bench -p caisson-benches --bench long_history --profile dev`
//! (build the plugins first: `cargo xtask plugins`, and `cargo build -p
//! caisson`); pin with `taskset` to count CPUs.

use caisson::replay::{ReplayOutcome, read_history, replay};
use caisson_benches::caisson_binary;
use caisson_benches::long_history::{lengthen, rounds_for};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SIZES: [usize; 5] = [1_000, 5_000, 10_000, 25_000, 50_000];
const RUNS: usize = 3;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../host/tests/fixtures/histories/{name}.json"))
}

/// Runs `caisson replay` with `args` and the files, checks that all of
/// them replayed, and returns how long it took.
fn cli(args: &[&str], files: &[PathBuf]) -> Duration {
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/plugins/test-workflows.wasm");
    let started = Instant::now();
    let out =
        Command::new(caisson_binary()).arg("replay").args(args).arg("-p").arg(&plugin).args(files).output().expect("run caisson replay");
    let elapsed = started.elapsed();
    let printed = String::from_utf8_lossy(&out.stdout);
    let n = files.len();
    assert!(
        printed.contains(&format!("{n} histories: {n} ok, 0 failed")),
        "caisson replay: {printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn main() {
    let dir = std::env::temp_dir().join(format!("caisson-bench-long-{}", std::process::id()));
    let recorded: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("long-history")).unwrap()).unwrap();
    let registry = Arc::new(caisson_benches::registry_of("test-workflows", 64));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();

    println!("replay time against history length (`long-history`, 7 events a round: an activity, a signal, a workflow task)");
    let mut per_event = Vec::new();
    for target in SIZES {
        let history = lengthen(&recorded, rounds_for(target));
        let events = history["events"].as_array().unwrap().len();
        // The file's stem is the workflow id the history was recorded under.
        let file = dir.join(target.to_string()).join("long-history.json");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, serde_json::to_vec(&history).unwrap()).unwrap();
        let size_mb = std::fs::metadata(&file).unwrap().len() as f64 / 1e6;

        let mut library = Vec::new();
        let mut parse = Vec::new();
        for _ in 0..RUNS {
            let started = Instant::now();
            let recorded = read_history(&file).unwrap();
            parse.push(started.elapsed());
            let outcomes = runtime.block_on(replay(registry.clone(), vec![recorded])).unwrap();
            library.push(started.elapsed());
            assert_eq!(outcomes, [ReplayOutcome::Ok], "{events} events");
        }
        let end_to_end = median((0..RUNS).map(|_| cli(&["--jobs", "1"], std::slice::from_ref(&file))).collect());
        let (library, parse) = (median(library), median(parse));
        let us = |d: Duration| d.as_secs_f64() * 1e6 / events as f64;
        println!(
            "{events:>6} events ({size_mb:.1} MB of JSON): in process {:>7.1} ms ({:.2} µs/event; parsing {:.1} ms), `caisson replay --jobs 1` {:>7.1} ms ({:.2} µs/event)",
            library.as_secs_f64() * 1e3,
            us(library),
            parse.as_secs_f64() * 1e3,
            end_to_end.as_secs_f64() * 1e3,
            us(end_to_end),
        );
        per_event.push((events, us(library), us(end_to_end)));
    }
    let (first, last) = (per_event[0], per_event[per_event.len() - 1]);
    println!(
        "per-event cost, {} / {} events: in process {:.2}x, `caisson replay` {:.2}x (1.00x is linear; the CLI's fixed start-up weighs on the short one)",
        last.0,
        first.0,
        last.1 / first.1,
        last.2 / first.2
    );

    println!(
        "`caisson replay --jobs N` on 500 copies of the medium fixture ({} CPUs here)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let files: Vec<PathBuf> = (0..500)
        .map(|i| {
            let copy = dir.join(format!("medium-{i:03}")).join("medium.json");
            std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
            std::fs::copy(fixture("medium"), &copy).unwrap();
            copy
        })
        .collect();
    let mut one = None;
    for jobs in ["1", "2"] {
        let time = median((0..RUNS).map(|_| cli(&["--jobs", jobs], &files)).collect());
        let base = *one.get_or_insert(time);
        println!(
            "--jobs {jobs}: {:.2} s (median of {RUNS}) = {:.0} histories/s, {:.2}x --jobs 1",
            time.as_secs_f64(),
            files.len() as f64 / time.as_secs_f64(),
            base.as_secs_f64() / time.as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
