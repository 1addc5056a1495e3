//! Determinism, per guest language (issue #14 item 5): a workflow whose
//! commands depend on workflow time and the seeded randomness runs with
//! `--max-cached-workflows 0` (every workflow task replays the history
//! from the start in a fresh instance, so one differing command would be
//! a non-determinism task failure), and its recorded history then replays
//! a hundred times through `caisson replay`, each time issuing the
//! commands history holds.

mod support;

use serde_json::Value as Json;
use std::path::Path;
use support::{Server, Worker, plugin, unique};

fn p(name: &str) -> String {
    plugin(name).display().to_string()
}

/// Runs `workflow_type` to completion on a worker without a sticky cache
/// and checks that no workflow task failed on the way.
fn run_without_cache(server: &Server, plugins: &[&str], workflow_type: &str, inputs: &[&str]) -> (String, Json) {
    let tq = unique("det");
    let mut args: Vec<String> = plugins.iter().map(|n| p(n)).collect();
    args.extend(["--max-cached-workflows".into(), "0".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _worker = Worker::start(server, &tq, &args);
    let id = unique(workflow_type);
    let doc = server.execute_id(&tq, workflow_type, &id, inputs);
    assert_eq!(doc["status"], "COMPLETED", "{doc:#}");
    let failed: Vec<Json> = server.history(&id).into_iter().filter(|e| e["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_FAILED").collect();
    assert!(failed.is_empty(), "every task replayed from scratch and none differed: {failed:#?}");
    (id, doc)
}

/// Replays the recorded history of `id` 100 times with `plugin` and
/// checks every replay issued the recorded commands.
fn replays_a_hundred_times(server: &Server, plugin_name: &str, id: &str) {
    let history = server.temporal(&["workflow", "show", "--workflow-id", id, "-o", "json"]);
    assert!(history.status.success(), "{}", String::from_utf8_lossy(&history.stderr));
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for n in 0..100 {
        // `caisson replay` takes the workflow id from the file name.
        let folder = dir.path().join(n.to_string());
        std::fs::create_dir(&folder).unwrap();
        let file = folder.join(format!("{id}.json"));
        std::fs::write(&file, &history.stdout).unwrap();
        files.push(file);
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_caisson"))
        .args(["replay", "--plugin", &p(plugin_name)])
        .args(files.iter().map(|f| Path::new(f).as_os_str()))
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.contains("100 histories: 100 ok, 0 failed"), "{said}");
}

#[test]
fn a_rust_workflow_on_time_and_randomness_replays_identically() {
    let server = Server::start();
    let (id, doc) = run_without_cache(&server, &["test-workflows", "test-activities"], "chance", &["4"]);
    assert_eq!(doc["result"].as_array().map(Vec::len), Some(4), "{doc:#}");
    replays_a_hundred_times(&server, "test-workflows", &id);
}

#[test]
fn a_typescript_workflow_on_date_now_math_random_and_uuid4_replays_identically() {
    let server = Server::start();
    let (id, doc) = run_without_cache(&server, &["test-workflows-ts", "test-activities"], "randomness", &[]);
    assert_eq!(doc["result"]["same"], true, "values computed on replay equal the recorded ones: {doc:#}");
    replays_a_hundred_times(&server, "test-workflows-ts", &id);
}

#[test]
fn a_python_workflow_on_the_standard_librarys_time_and_randomness_replays_identically() {
    let server = Server::start();
    let (id, doc) = run_without_cache(&server, &["test-workflows-py", "test-activities"], "py-stdlib", &[]);
    let got = &doc["result"];
    // time.time() and datetime.now() are workflow time, not the host's.
    let (time, now) = (got["time"].as_f64().unwrap(), got["workflow_now"].as_f64().unwrap());
    assert!((now - time).abs() < 60.0 && time > 1.7e9, "{got:#}");
    assert_eq!(got["uuid"].as_str().map(str::len), Some(36), "{got:#}");
    // Threads, files and sockets fail inside the guest; nothing of the host's.
    assert!(got["thread"].as_str().unwrap().contains("thread"), "{got:#}");
    let file = got["file"].as_str().unwrap();
    assert!(file.starts_with("FileNotFoundError") || file.starts_with("PermissionError") || file.starts_with("OSError"), "{got:#}");
    assert_ne!(got["socket"], "no error", "{got:#}");
    assert_eq!(got["env"], serde_json::json!({}), "{got:#}");
    replays_a_hundred_times(&server, "test-workflows-py", &id);

    // asyncio timers, workflow.uuid4/random/now with a wait_condition timeout.
    let (id, _) = run_without_cache(&server, &["test-workflows-py", "test-activities"], "py-timers", &["50"]);
    replays_a_hundred_times(&server, "test-workflows-py", &id);
}

#[test]
fn a_typescript_workflow_gets_workflow_time_seeded_bytes_and_no_network() {
    let server = Server::start();
    let (id, doc) = run_without_cache(&server, &["test-workflows-ts", "test-activities"], "escapes", &[]);
    let got = &doc["result"];
    let (date, started) = (got["date"].as_f64().unwrap(), got["started"].as_f64().unwrap());
    assert!(date >= started && date - started < 60_000.0, "new Date() is workflow time: {got:#}");
    assert_ne!(got["bytes"], "0,0,0,0,0,0,0,0", "crypto.getRandomValues draws from the run's generator: {got:#}");
    assert!(got["fetch"].as_str().unwrap().contains("fetch cannot be used in Workflows"), "no network, and the error says so: {got:#}");
    replays_a_hundred_times(&server, "test-workflows-ts", &id);
}
