//! Python workflows and activities with the Temporal SDK's API
//! (`plugins/python/caisson`) on a real dev server: the test plugins
//! `test-workflows-py` and `test-activities-py`, next to the Rust test
//! activities, a Python SDK worker on another task queue, and the ported
//! SDK sample run on both Caisson and the Python SDK.

mod support;

use serde_json::{Value as Json, json};
use std::path::Path;
use std::time::Duration;
use support::{PythonWorker, Server, Worker, payload_values, plugin, unique};

fn p(name: &str) -> String {
    plugin(name).display().to_string()
}

/// The decoded result of a completed run.
fn completed(doc: &Json) -> Json {
    assert_eq!(doc["status"], "COMPLETED", "{doc:#}");
    match &doc["result"] {
        Json::String(s) => serde_json::from_str(s).unwrap_or(Json::String(s.clone())),
        other => other.clone(),
    }
}

/// The Python plugins with the Rust activities they call.
fn plugins(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> =
        ["test-workflows-py", "test-activities-py", "test-activities", "greet-activity"].iter().map(|n| p(n)).collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn start_worker(server: &Server, tq: &str, extra: &[&str]) -> Worker {
    let args = plugins(extra);
    Worker::start(server, tq, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn update(server: &Server, id: &str, name: &str, input: &str) -> (bool, String) {
    let out = server.temporal(&["workflow", "update", "execute", "--workflow-id", id, "--name", name, "--input", input]);
    (out.status.success(), support::printed(&out))
}

fn query(server: &Server, id: &str, name: &str) -> String {
    let out = server.temporal(&["workflow", "query", "--workflow-id", id, "--name", name]);
    assert!(out.status.success(), "query {name}: {}", support::printed(&out));
    support::printed(&out)
}

fn event_types(server: &Server, id: &str) -> Vec<String> {
    server.history(id).iter().map(|e| e["eventType"].as_str().unwrap_or_default().to_owned()).collect()
}

/// The activity types scheduled in a history, in order.
fn scheduled_activities(server: &Server, id: &str) -> Vec<String> {
    server
        .history(id)
        .iter()
        .filter(|e| e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED")
        .map(|e| e["activityTaskScheduledEventAttributes"]["activityType"]["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn wait_for_running_activity(server: &Server, id: &str) {
    for _ in 0..150 {
        let out = support::printed(&server.temporal(&["workflow", "describe", "--workflow-id", id, "-o", "json"]));
        if out.contains("PENDING_ACTIVITY_STATE_STARTED") || out.contains("PENDING_ACTIVITY_STATE_SCHEDULED") {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("no activity of {id} pending within 30 s");
}

#[test]
fn greeting_parallel_work_timers_local_activities_children_and_failures_replayed_from_scratch() {
    let server = Server::start();
    let tq = unique("py");
    // No sticky cache: every workflow task replays the run from the start,
    // so whatever the workflows draw (now, uuid4, random) must replay.
    let _worker = start_worker(&server, &tq, &["--max-cached-workflows", "0"]);

    assert_eq!(completed(&server.execute(&tq, "py-greeting", &["\"Ada\""])), "Hello, Ada!");

    let parallel = completed(&server.execute(&tq, "py-parallel", &[r#"["a", "b", "c"]"#]));
    assert_eq!(parallel["upper"], json!(["A", "B", "C"]), "{parallel}");
    assert_eq!(parallel["echoed"], json!(["aa", "bb", "cc"]), "workflow.wait keeps the order of the tasks: {parallel}");
    assert_eq!(parallel["pending"], 0);
    // as_completed yields whichever echo the server completed first.
    assert!(["a", "b", "c"].contains(&parallel["first"].as_str().unwrap_or_default()), "{parallel}");

    let id = unique("py-timers");
    let timers = completed(&server.execute_id(&tq, "py-timers", &id, &["300"]));
    assert_eq!(timers["timed_out"], true, "{timers}");
    assert!(timers["elapsed_ms"].as_u64().unwrap() >= 900, "three 300 ms durable timers: {timers}");
    assert_eq!(timers["patched"], true);
    // What the first task drew went to `echo` (recorded in history); the
    // last task, a replay from scratch, returned the same values.
    let history = server.history(&id);
    let scheduled = history.iter().find(|e| e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED").expect("echo scheduled");
    let echoed = payload_values(&scheduled["activityTaskScheduledEventAttributes"]["input"]);
    let drawn = &timers["drawn"];
    for key in ["uuid", "random", "now"] {
        let value = drawn[key].to_string();
        let value = value.trim_matches('"');
        assert!(echoed[0].as_str().unwrap().contains(value), "{key} {value} was drawn differently on replay: {echoed:?}");
    }
    let timer_events = history.iter().filter(|e| e["eventType"] == "EVENT_TYPE_TIMER_STARTED").count();
    assert_eq!(timer_events, 3, "asyncio.sleep, workflow.sleep and the condition's timeout are durable timers");

    let local = completed(&server.execute(&tq, "py-local", &["\"hi\""]));
    assert_eq!(local, json!({"attempt": 3, "echoed": "hi"}), "the local activity failed twice, then succeeded");

    let parent = unique("py-parent");
    let children = completed(&server.execute_id(&tq, "py-parent", &parent, &["2"]));
    assert_eq!(children[0], json!({"n": 0, "memo": {"index": 0}, "parent": parent}));
    assert_eq!(children[1], json!({"n": 2, "memo": {"index": 1}, "parent": parent}));
    assert_eq!(children[2], json!({"n": 200, "memo": {"by": "name"}, "parent": parent}));
    let describe =
        support::printed(&server.temporal(&["workflow", "describe", "--workflow-id", &format!("{parent}-child-1"), "-o", "json"]));
    assert!(describe.contains("index"), "the child shows its memo: {describe}");

    // The ported SDK sample: its workflow here, its activity in test-activities-py.
    assert_eq!(completed(&server.execute(&tq, "GreetingWorkflow", &["\"World\""])), "Hello, World!");
    let sdk = completed(&server.execute(&tq, "py-sdk-activities", &["3"]));
    assert_eq!(sdk, json!({"beats": 3, "attempt": 3, "refused": {"type": "Refused", "non_retryable": true}}));

    let failed = server.execute(&tq, "py-fails", &["\"application\""]);
    assert_eq!(failed["status"], "FAILED", "{failed:#}");
    let failure = failed["closeEvent"]["workflowExecutionFailedEventAttributes"]["failure"].to_string();
    assert!(failure.contains("BadOrder") && failure.contains("order is bad"), "{failure}");
    let failed = server.execute(&tq, "py-fails", &["\"activity\""]);
    assert_eq!(failed["status"], "FAILED", "{failed:#}");
    let failure = failed["closeEvent"]["workflowExecutionFailedEventAttributes"]["failure"].to_string();
    assert!(failure.contains("StepFailed") && failure.contains("Activity task failed"), "{failure}");
}

#[test]
fn signals_queries_also_after_completion_and_updates_with_a_validator() {
    let server = Server::start();
    let tq = unique("py-approval");
    let _worker = start_worker(&server, &tq, &["--max-cached-workflows", "0"]);
    let id = unique("py-approval");
    server.start_workflow(&tq, "py-approval", &id, &["100"]);

    assert!(query(&server, &id, "status").contains("pending"));
    let (ok, out) = update(&server, &id, "set-amount", "0");
    assert!(!ok && out.contains("amount 0.0 must be positive"), "the validator's message reaches the client: {out}");
    let (ok, out) = update(&server, &id, "no-such-update", "1");
    assert!(!ok && out.contains("no-such-update"), "{out}");
    let (ok, out) = update(&server, &id, "set-amount", "250");
    assert!(ok && out.contains("250"), "the handler ran an activity and returned: {out}");
    for (name, input) in [("comment", "\"looks fine\""), ("approve", "\"alice\"")] {
        let out = server.temporal(&["workflow", "signal", "--workflow-id", &id, "--name", name, "--input", input]);
        assert!(out.status.success(), "{}", support::printed(&out));
    }
    let result = completed(&server.result(&id));
    assert_eq!(result["amount"].as_f64(), Some(250.0), "{result}");
    assert_eq!(result["approver"], "alice");
    assert_eq!(result["state"], "approved");
    assert_eq!(result["comments"], json!(["looks fine"]));
    let after = query(&server, &id, "status");
    assert!(after.contains("approved") && after.contains("alice"), "queries are answered after completion: {after}");
    let all = serde_json::to_string(&server.history(&id)).unwrap();
    assert!(!all.contains("InvalidAmount"), "the rejected update left no trace");
}

#[test]
fn cancellation_compensates_in_a_shielded_activity_and_ends_canceled() {
    let server = Server::start();
    let tq = unique("py-cancel");
    let _worker = start_worker(&server, &tq, &[]);

    let id = unique("py-cancellable");
    server.start_workflow(&tq, "py-cancellable", &id, &["600000"]);
    wait_for_running_activity(&server, &id);
    let out = server.temporal(&["workflow", "cancel", "--workflow-id", &id]);
    assert!(out.status.success(), "{}", support::printed(&out));
    let doc = server.result(&id);
    assert_eq!(doc["status"], "CANCELED", "{doc:#}");
    assert_eq!(scheduled_activities(&server, &id), ["sleep-ms", "step"], "the compensation ran after the cancellation");
    let types = event_types(&server, &id);
    assert!(types.contains(&"EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED".to_owned()), "{types:?}");
    assert!(types.contains(&"EVENT_TYPE_ACTIVITY_TASK_COMPLETED".to_owned()), "the compensation completed: {types:?}");

    let id = unique("py-cancellable-timer");
    server.start_workflow(&tq, "py-cancellable-timer", &id, &["3600"]);
    server.wait_for_event(&id, "EVENT_TYPE_TIMER_STARTED", Duration::from_secs(60));
    assert!(server.temporal(&["workflow", "cancel", "--workflow-id", &id]).status.success());
    let doc = server.result(&id);
    assert_eq!(doc["status"], "CANCELED", "{doc:#}");
    assert_eq!(scheduled_activities(&server, &id), ["step"]);
    assert!(event_types(&server, &id).contains(&"EVENT_TYPE_TIMER_CANCELED".to_owned()));
}

#[test]
fn search_attributes_and_memo_upserted_across_continue_as_new() {
    let server = Server::start();
    let out = server.temporal(&["operator", "search-attribute", "create", "--name", "OrderStatus", "--type", "Keyword"]);
    assert!(out.status.success(), "{}", support::printed(&out));
    let tq = unique("py-upserts");
    let _worker = start_worker(&server, &tq, &[]);
    let id = unique("py-upserts");
    let result = completed(&server.execute_id(&tq, "py-upserts", &id, &["0"]));
    assert_eq!(result, json!({"round": 2, "memo": {"note": "upserted", "round": 2}, "status": "round-2", "continued": true}));
    let mut found = String::new();
    for _ in 0..50 {
        found = support::printed(&server.temporal(&["workflow", "list", "--query", "OrderStatus=\"round-2\""]));
        if found.contains(&id) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(found.contains(&id), "the upserted search attribute finds the workflow: {found}");
    let describe = support::printed(&server.temporal(&["workflow", "describe", "--workflow-id", &id, "-o", "json"]));
    assert!(describe.contains("upserted"), "describe shows the upserted memo: {describe}");
}

#[test]
fn an_unexpected_exception_fails_the_task_with_its_traceback_and_the_workflow_stays_running() {
    let server = Server::start();
    let tq = unique("py-buggy");
    let worker = start_worker(&server, &tq, &[]);
    let id = unique("py-buggy");
    server.start_workflow(&tq, "py-buggy", &id, &[]);
    let out = server.temporal(&["workflow", "signal", "--workflow-id", &id, "--name", "take", "--input", "\"pear\""]);
    assert!(out.status.success(), "{}", support::printed(&out));
    // The failure's message ends with the exception, its stack trace is
    // the Python traceback (what `temporal workflow show` prints).
    let event = server.wait_for_event(&id, "EVENT_TYPE_WORKFLOW_TASK_FAILED", Duration::from_secs(60));
    let failure = &event["workflowTaskFailedEventAttributes"]["failure"];
    let message = failure["message"].as_str().unwrap_or_default();
    assert!(message.contains("KeyError: 'pear'"), "{failure:#}");
    let trace = failure["stackTrace"].as_str().unwrap_or_default();
    for needle in ["workflow py-buggy task failed", "Traceback (most recent call last)", "workflows.py", "in take"] {
        assert!(trace.contains(needle), "the task failure has the traceback ({needle}): {failure:#}");
    }
    worker.wait_for_log("KeyError: 'pear'", Duration::from_secs(30));
    let describe = support::printed(&server.temporal(&["workflow", "describe", "--workflow-id", &id, "-o", "json"]));
    assert!(describe.contains("WORKFLOW_EXECUTION_STATUS_RUNNING"), "the workflow is not failed: {describe}");
    // The worker goes on serving other workflows.
    assert_eq!(completed(&server.execute(&tq, "py-greeting", &["\"Bo\""])), "Hello, Bo!");
    let _ = server.temporal(&["workflow", "terminate", "--workflow-id", &id, "--reason", "test over"]);
}

#[test]
fn activities_on_another_task_queue_served_by_a_python_sdk_worker() {
    let server = Server::start();
    let tq = unique("py-cross");
    let py_tq = unique("py-sdk");
    let _worker = start_worker(&server, &tq, &[]);
    let _py = PythonWorker::start(&server, &py_tq);
    let result = completed(&server.execute(&tq, "py-cross-queue", &[&Json::String(py_tq.clone()).to_string()]));
    assert_eq!(result, json!({"flaky": {"key": "k", "attempt": 3}, "fatal": {"type": "Fatal", "message": "fatal problem"}}));
}

#[test]
fn the_ported_sdk_sample_gives_the_same_result_on_the_python_sdk() {
    let server = Server::start();
    let tq = unique("py-sample");
    let _worker = start_worker(&server, &tq, &[]);
    let on_caisson = completed(&server.execute(&tq, "GreetingWorkflow", &["\"World\""]));

    // The same file with its import line changed back, on the Python SDK.
    let sample =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/python/sdk_samples/hello_activity.py")).unwrap();
    assert!(sample.contains("from caisson import activity, workflow"));
    let original = sample.replace("from caisson import activity, workflow", "from temporalio import activity, workflow");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("hello_activity.py"), original).unwrap();
    let runner = r#"
import asyncio, sys, uuid
from temporalio.client import Client
from temporalio.worker import Worker
from hello_activity import GreetingWorkflow, compose_greeting

async def main(address, tq):
    client = await Client.connect(address)
    async with Worker(client, task_queue=tq, workflows=[GreetingWorkflow], activities=[compose_greeting]):
        print(await client.execute_workflow(GreetingWorkflow.run, "World", id=str(uuid.uuid4()), task_queue=tq))

asyncio.run(main(*sys.argv[1:]))
"#;
    let out = support::python_client_in(Some(tmp.path()), runner, &[&server.address, &unique("sdk-sample")]);
    assert!(out.status.success(), "{}", support::printed(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), on_caisson.as_str().unwrap());
}
