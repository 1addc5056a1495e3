//! A Python or TypeScript workflow stuck in an infinite loop (issue #14,
//! bad input): the activation's fuel runs out, the workflow task fails
//! with a message naming the plugin and the workflow, and the worker goes
//! on serving: another workflow completes beside it.

mod support;

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
