//! Tries everything the activity sandbox must stop. Each function reports
//! what happened instead of assuming the sandbox holds.

wit_bindgen::generate!({
    world: "caisson-plugins:hostile-activities/hostile-activities",
    path: ["../../../wit/activity", "wit"],
    with: {
        "caisson:activity/types@0.1.0": caisson_guest::activity::bindings::caisson::activity::types,
        "caisson:activity/context@0.1.0": caisson_guest::activity::bindings::caisson::activity::context,
    },
    generate_all,
});

use caisson_guest::activity::{self as act, context};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

struct Hostile;

static CALLS: AtomicU32 = AtomicU32::new(0);

impl Guest for Hostile {
    fn read_file(path: String) -> Result<String, String> {
        std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))
    }

    fn write_file(path: String, content: String) -> Result<(), String> {
        std::fs::write(&path, content).map_err(|e| format!("{path}: {e}"))
    }

    fn env_var(name: String) -> Option<String> {
        std::env::var(name).ok()
    }

    fn alloc_mb(mb: u32) -> u32 {
        let mut chunks = Vec::new();
        for _ in 0..mb {
            let mut chunk = vec![0u8; 1 << 20];
            for page in chunk.chunks_mut(4096) {
                page[0] = 1;
            }
            chunks.push(chunk);
        }
        chunks.len() as u32
    }

    fn spin() -> u32 {
        let mut x: u32 = 0;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    fn recurse(depth: u64) -> u64 {
        // Small frames: the wasm call stack runs out before Rust's shadow
        // stack in linear memory does.
        if std::hint::black_box(true) { std::hint::black_box(Self::recurse(depth + 1)) + 1 } else { depth }
    }

    fn panics() -> String {
        panic!("hostile activity panics on purpose")
    }

    fn counter() -> u32 {
        CALLS.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn progress(total: u32) -> ProgressReport {
        let attempt = context::info().attempt;
        let resumed_from: u32 = act::last_heartbeat().unwrap_or(0);
        for done in resumed_from..total {
            std::thread::sleep(Duration::from_millis(100));
            act::heartbeat(&(done + 1));
            if attempt == 1 && done + 1 == 3 {
                // Stall without heartbeats: the heartbeat timeout fires.
                std::thread::sleep(Duration::from_secs(4));
                return ProgressReport { resumed_from, attempt, done: 3 };
            }
        }
        ProgressReport { resumed_from, attempt, done: total }
    }

    fn wait_cancel(cooperative: bool) -> String {
        loop {
            act::heartbeat(&"waiting");
            if cooperative && context::is_cancelled() {
                return "noticed cancellation".into();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_lines() -> String {
        println!("hello from stdout");
        eprintln!("hello from stderr");
        act::log("hello from the context log");
        "logged".into()
    }

    fn fail(error_type: String, non_retryable: bool) -> Result<String, act::ApplicationError> {
        let message = format!("failing with {error_type}");
        Err(if non_retryable { act::fatal(&error_type, message) } else { act::error(&error_type, message) })
    }
}

export!(Hostile);
