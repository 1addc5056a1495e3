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

/// Serves `plugin` (a path) with activities, starts `runaway`, and checks
/// that its workflow task fails naming `plugin_name`, the workflow and
/// `cause`, and that `quiet` (of the same plugin) completes beside it
/// while Temporal keeps retrying the runaway's task; the runaway itself
/// never fails as a workflow (its task stays open for a fix).
fn runaway_fails_only_its_task(plugin: &str, plugin_name: &str, runaway: &str, cause: &str, quiet: &str, quiet_input: &str) {
    let server = Server::start();
    let tq = unique("runaway");
    let activities: Vec<String> = ["test-activities", "greet-activity"].iter().map(|n| support::plugin(n).display().to_string()).collect();
    let _worker = Worker::start(&server, &tq, &[plugin, &activities[0], &activities[1]]);
    let id = unique(runaway);
    server.start_workflow(&tq, runaway, &id, &[]);
    let message = server.task_failure(&id, Duration::from_secs(120));
    assert!(
        message.contains(&format!("plugin {plugin_name} (workflow {id})")) && message.contains(cause),
        "the failure names the plugin, the workflow and `{cause}`: {message}"
    );
    let doc = server.execute(&tq, quiet, &[quiet_input]);
    assert_eq!(doc["status"], "COMPLETED", "the worker keeps serving: {doc:#}");
    let history = server.history(&id);
    assert!(
        history.iter().all(|e| e["eventType"] != "EVENT_TYPE_WORKFLOW_EXECUTION_FAILED"),
        "only the runaway's tasks fail, not the workflow: {history:#?}"
    );
    server.temporal(&["workflow", "terminate", "--workflow-id", &id, "--reason", "test over"]);
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

const FUEL: &str = "ran out of fuel";
const MEMORY: &str = "exceeded its memory limit of 128 MiB";

#[test]
fn a_python_infinite_loop_fails_its_task_and_the_worker_goes_on() {
    let py = plugin("test-workflows-py").display().to_string();
    runaway_fails_only_its_task(&py, "test-workflows-py", "py-spin", FUEL, "py-greeting", r#""Ada""#);
}

#[test]
fn a_typescript_infinite_loop_fails_its_task_and_the_worker_goes_on() {
    let ts = plugin("test-workflows-ts").display().to_string();
    runaway_fails_only_its_task(&ts, "test-workflows-ts", "spin", FUEL, "parallel", r#"["a","b"]"#);
}

#[test]
fn a_python_workflow_eating_memory_fails_its_task_at_the_limit_and_the_worker_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let py = with_memory_limit(dir.path(), "test-workflows-py", 128);
    runaway_fails_only_its_task(&py, "test-workflows-py", "py-hog", MEMORY, "py-greeting", r#""Ada""#);
}

#[test]
fn a_typescript_workflow_eating_memory_fails_its_task_at_the_limit_and_the_worker_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let ts = with_memory_limit(dir.path(), "test-workflows-ts", 128);
    runaway_fails_only_its_task(&ts, "test-workflows-ts", "hog", MEMORY, "parallel", r#"["a","b"]"#);
}
