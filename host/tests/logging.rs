//! The worker's log as operators read it: `--log-format json`, and one
//! line per failed workflow task.

mod support;

use serde_json::Value as Json;
use std::time::Duration;
use support::{Server, Worker, plugin, unique};

#[test]
fn json_logs_carry_the_fields_and_a_failed_task_is_one_line() {
    let server = Server::start();
    let tq = unique("json-log");
    let (workflows, activities) = (plugin("test-workflows"), plugin("test-activities"));
    let worker =
        Worker::start(&server, &tq, &[&workflows.display().to_string(), &activities.display().to_string(), "--log-format", "json"]);
    let id = unique("panics");
    server.start_workflow(&tq, "panics", &id, &[]);
    let failure = server.task_failure(&id, Duration::from_secs(30));
    assert!(failure.contains("panicked"), "{failure}");
    worker.wait_for_log("workflow task failed", Duration::from_secs(10));
    // Temporal retries the task; let a retry or two be logged too.
    std::thread::sleep(Duration::from_millis(1500));

    let log = worker.log();
    let lines: Vec<Json> =
        log.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"))).collect();
    let polling = lines.iter().find(|l| l["message"] == "worker polling").unwrap_or_else(|| panic!("{log}"));
    assert_eq!((polling["tenant"].as_str(), polling["task_queue"].as_str()), (Some("default"), Some(tq.as_str())), "{polling}");
    assert!(polling["level"] == "INFO" && polling["timestamp"].is_string(), "{polling}");

    let failed: Vec<&Json> = lines.iter().filter(|l| l["message"].as_str().is_some_and(|m| m.contains("workflow task failed"))).collect();
    assert!(!failed.is_empty(), "{log}");
    for line in &failed {
        assert_eq!(line["level"], "WARN", "{line}");
        assert_eq!(line["tenant"], "default", "{line}");
        assert!(line["run_id"].as_str().is_some_and(|r| !r.is_empty()), "{line}");
        assert!(line["message"].as_str().unwrap().contains("test-workflows"), "the line names the plugin: {line}");
    }
    // Core's own dump of the same failure is folded into Caisson's line.
    assert!(!log.contains("Failing workflow task"), "{log}");
    let mentions = lines.iter().filter(|l| l.to_string().contains("panicked")).count();
    assert_eq!(mentions, failed.len(), "one line per failed task:\n{log}");
}
