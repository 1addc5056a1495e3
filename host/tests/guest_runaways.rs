//! Python and TypeScript workflows that run away (issue #14): one stuck in
//! an infinite loop runs out of the activation's fuel, one eating memory
//! hits its plugin's `memory_mb` (items 6 and "bad input"). Either fails
//! only its own workflow task, with a message naming the plugin, the
//! workflow and the cause, and the worker goes on serving: a quiet
//! workflow beside it completes while the runaway's task keeps failing.

mod support;

use std::path::Path;
use std::time::Duration;
use support::{Server, Worker, plugin, unique};

fn runaway_is_stopped_by_fuel(plugin_name: &str, spin: &str, quiet: &str, quiet_input: &str) {
    let server = Server::start();
    let tq = unique("spin");
    let plugins: Vec<String> = [plugin_name, "test-activities", "greet-activity"].iter().map(|n| plugin(n).display().to_string()).collect();
    let _worker = Worker::start(&server, &tq, &plugins.iter().map(String::as_str).collect::<Vec<_>>());
    let id = unique(spin);
    server.start_workflow(&tq, spin, &id, &[]);
    let message = server.task_failure(&id, Duration::from_secs(120));
    assert!(
        message.contains(&format!("plugin {plugin_name} (workflow {id})")) && message.contains("ran out of fuel"),
        "the failure names the plugin, the workflow and the cause: {message}"
    );
    let doc = server.execute(&tq, quiet, &[quiet_input]);
    assert_eq!(doc["status"], "COMPLETED", "the worker keeps serving: {doc:#}");
    server.temporal(&["workflow", "terminate", "--workflow-id", &id, "--reason", "test over"]);
}

#[test]
fn a_python_infinite_loop_fails_its_task_and_the_worker_goes_on() {
    runaway_is_stopped_by_fuel("test-workflows-py", "py-spin", "py-greeting", r#""Ada""#);
}

#[test]
fn a_typescript_infinite_loop_fails_its_task_and_the_worker_goes_on() {
    runaway_is_stopped_by_fuel("test-workflows-ts", "spin", "parallel", r#"["a","b"]"#);
}

/// `plugin_name` copied into `dir` with a manifest of its own: its usual
/// grants plus `memory_mb`.
fn with_memory_limit(dir: &Path, plugin_name: &str, memory_mb: u64) -> String {
    let built = plugin(plugin_name);
    let wasm = dir.join(built.file_name().unwrap());
    std::fs::copy(&built, &wasm).unwrap();
    let grants = std::fs::read_to_string(built.with_extension("toml")).unwrap_or_default();
    std::fs::write(wasm.with_extension("toml"), format!("{grants}\nmemory_mb = {memory_mb}\n")).unwrap();
    wasm.display().to_string()
}

fn hog_is_stopped_at_its_memory_limit(plugin_name: &str, hog: &str, quiet: &str, quiet_input: &str) {
    let server = Server::start();
    let tq = unique("hog");
    let dir = tempfile::tempdir().unwrap();
    let limited = with_memory_limit(dir.path(), plugin_name, 128);
    let others: Vec<String> = ["test-activities", "greet-activity"].iter().map(|n| plugin(n).display().to_string()).collect();
    let _worker = Worker::start(&server, &tq, &[&limited, &others[0], &others[1]]);
    let id = unique(hog);
    server.start_workflow(&tq, hog, &id, &[]);
    let message = server.task_failure(&id, Duration::from_secs(120));
    assert!(
        message.contains(&format!("plugin {plugin_name} (workflow {id})")) && message.contains("exceeded its memory limit of 128 MiB"),
        "the failure names the plugin, the workflow and the limit: {message}"
    );
    // Temporal retries the hog's task (each retry eats to the limit again)
    // while a quiet workflow of the same plugin runs beside it, in the
    // same worker, to completion.
    let doc = server.execute(&tq, quiet, &[quiet_input]);
    assert_eq!(doc["status"], "COMPLETED", "the worker keeps serving: {doc:#}");
    let history = server.history(&id);
    let failed_tasks = history.iter().filter(|e| e["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_FAILED").count();
    assert!(failed_tasks >= 1 && history.iter().all(|e| e["eventType"] != "EVENT_TYPE_WORKFLOW_EXECUTION_FAILED"),
        "only the hog's tasks fail; the workflow itself stays open for a fix: {history:#?}");
    server.temporal(&["workflow", "terminate", "--workflow-id", &id, "--reason", "test over"]);
}

#[test]
fn a_python_workflow_eating_memory_fails_its_task_at_the_limit_and_the_worker_goes_on() {
    hog_is_stopped_at_its_memory_limit("test-workflows-py", "py-hog", "py-greeting", r#""Ada""#);
}

#[test]
fn a_typescript_workflow_eating_memory_fails_its_task_at_the_limit_and_the_worker_goes_on() {
    hog_is_stopped_at_its_memory_limit("test-workflows-ts", "hog", "parallel", r#"["a","b"]"#);
}
