//! The Temporal workflow surface of `caisson:workflow@0.2.0` on a real
//! server: updates (validators, handlers that run activities, update with
//! start, replays), memo and search attributes, local activities,
//! cancellation as the SDKs do it, payload evolution, and plugins built
//! against 0.1.0 next to 0.2.0 ones.

mod support;

use serde_json::{Value as Json, json};
use std::time::Duration;
use support::{Server, Worker, plugin, unique};

/// `caisson replay --plugin PLUGIN FILES...`: (exit code, output).
fn replay(plugin_name: &str, files: &[std::path::PathBuf]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_caisson"))
        .args(["replay", "--plugin", &p(plugin_name)])
        .args(files)
        .output()
        .expect("run caisson replay");
    (out.status.code().unwrap_or(-1), support::printed(&out))
}

/// Writes `temporal workflow show -o json` of `id` into `dir/ID.json`.
fn record_history(server: &Server, id: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let out = server.temporal(&["workflow", "show", "-o", "json", "--workflow-id", id]);
    assert!(out.status.success(), "{}", support::printed(&out));
    let file = dir.join(format!("{id}.json"));
    std::fs::write(&file, &out.stdout).unwrap();
    file
}

fn p(name: &str) -> String {
    plugin(name).display().to_string()
}

/// `temporal workflow update execute`: (succeeded, stdout + stderr).
fn update(server: &Server, id: &str, name: &str, input: &str) -> (bool, String) {
    let out = server.temporal(&["workflow", "update", "execute", "--workflow-id", id, "--name", name, "--input", input]);
    (out.status.success(), support::printed(&out))
}

/// Waits until the workflow has an activity running on a worker (history
/// records ACTIVITY_TASK_STARTED only when a retried activity closes, so
/// `describe` is the place to look).
fn wait_for_running_activity(server: &Server, id: &str) {
    for _ in 0..100 {
        let out = support::printed(&server.temporal(&["workflow", "describe", "--workflow-id", id, "-o", "json"]));
        if out.contains("PENDING_ACTIVITY_STATE_STARTED") {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("no activity of {id} started within 20 s");
}

fn event_types(server: &Server, id: &str) -> Vec<String> {
    server.history(id).iter().map(|e| e["eventType"].as_str().unwrap_or_default().to_owned()).collect()
}

#[test]
fn updates_are_validated_accepted_completed_and_survive_replays() {
    let server = Server::start();
    let tq = unique("upd");
    // No sticky cache: every workflow task replays the history from the
    // start, so validators must not run again and handlers must replay.
    let _worker = Worker::start(
        &server,
        &tq,
        &[&p("test-workflows"), &p("test-activities"), &p("hello-workflow"), &p("greet-activity"), "--max-cached-workflows", "0"],
    );
    let id = unique("approval");
    server.start_workflow(&tq, "update-approval", &id, &["100"]);

    let (ok, out) = update(&server, &id, "set-amount", "0");
    assert!(!ok && out.contains("amount 0 is not between 0 and 10000"), "the validator's message reaches the client: {out}");
    let (ok, out) = update(&server, &id, "set-amount", "\"lots\"");
    assert!(!ok && out.contains("update `set-amount`") && out.contains("expected f64"), "an undecodable argument names the update: {out}");
    let (ok, out) = update(&server, &id, "set-amount", "13");
    assert!(!ok && out.contains("the validator of update `set-amount` panicked") && out.contains("unlucky amount"), "{out}");
    let (ok, out) = update(&server, &id, "no-such-update", "1");
    assert!(!ok && out.contains("no handler for update `no-such-update`"), "{out}");
    let (ok, out) = update(&server, &id, "set-amount", "250");
    assert!(ok && out.contains("250"), "{out}");
    let (ok, out) = update(&server, &id, "charge", "\"A-1\"");
    assert!(ok && out.contains("charged-A-1"), "the handler ran an activity before completing: {out}");
    let (ok, out) = update(&server, &id, "approve", "\"alice\"");
    assert!(ok && out.contains("approved") && out.contains("alice"), "{out}");

    let doc = server.result(&id);
    assert_eq!(doc["status"], "COMPLETED", "{doc:#}");
    assert!(doc["result"].to_string().contains("approved by alice for 250"), "{doc:#}");
    let history = server.history(&id);
    let accepted = history.iter().filter(|e| e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED").count();
    assert_eq!(accepted, 3, "three updates accepted; the rejected ones leave no trace");
    let all = serde_json::to_string(&history).unwrap();
    assert!(!all.contains("InvalidAmount") && !all.contains("no-such-update"), "rejections are not in history");
    assert!(all.contains("ACTIVITY_TASK_SCHEDULED"), "the charge handler's activity is in history");
    assert!(!all.contains("WORKFLOW_TASK_FAILED"), "the trapping validator failed only its update: {all}");

    // A plugin built against caisson:workflow@0.1.0 on the same worker:
    // it runs, and updates to it are rejected with a message saying why.
    let hello = unique("hello");
    server.start_workflow(&tq, "hello", &hello, &["\"legacy\""]);
    let (ok, out) = update(&server, &hello, "approve", "\"x\"");
    assert!(!ok && out.contains("0.1.0"), "{out}");
    let doc = server.result(&hello);
    assert_eq!(doc["status"], "COMPLETED", "{doc:#}");
}

#[test]
fn update_with_start_from_the_python_sdk() {
    let server = Server::start();
    let tq = unique("uws");
    let _worker = Worker::start(&server, &tq, &[&p("test-workflows"), &p("test-activities")]);
    let id = unique("uws");
    let script = r#"
import asyncio, sys
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

async def main(address, tq, wid):
    client = await Client.connect(address)
    start = WithStartWorkflowOperation("update-approval", 300.0, id=wid, task_queue=tq,
                                       id_conflict_policy=WorkflowIDConflictPolicy.FAIL)
    amount = await client.execute_update_with_start_workflow("set-amount", 400.0, start_workflow_operation=start)
    handle = await start.workflow_handle()
    status = await handle.execute_update("approve", "bob")
    print("AMOUNT", amount)
    print("STATUS", status)
    print("RESULT", await handle.result())

asyncio.run(main(*sys.argv[1:]))
"#;
    let out = support::python_client(script, &[&server.address, &tq, &id]);
    let printed = support::printed(&out);
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains("AMOUNT 400"), "{printed}");
    assert!(printed.contains("RESULT approved by bob for 400"), "{printed}");
}

#[test]
fn search_attributes_and_memo_are_upserted_and_given_to_children() {
    let server = Server::start();
    let created = server.temporal(&["operator", "search-attribute", "create", "--name", "OrderStatus", "--type", "Keyword"]);
    assert!(created.status.success(), "{}", support::printed(&created));
    let tq = unique("sa");
    let _worker = Worker::start(&server, &tq, &[&p("test-workflows"), &p("test-activities")]);
    let id = unique("order");
    let doc = server.execute_id(&tq, "search-and-memo", &id, &["\"shipped\""]);
    assert_eq!(doc["status"], "COMPLETED", "{doc:#}");
    let result: Json = serde_json::from_str(doc["result"].as_str().unwrap()).unwrap();
    assert_eq!(result, json!({ "status": "shipped", "note": { "fragile": true }, "child": "MEMO" }), "info() reads back the upserts");

    // Visibility is eventually consistent: poll the list for a while.
    let query = "OrderStatus=\"shipped\"";
    let mut listed = String::new();
    for _ in 0..50 {
        listed = support::printed(&server.temporal(&["workflow", "list", "--query", query, "-o", "json"]));
        if listed.contains(&id) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(listed.contains(&id), "`temporal workflow list --query {query}` finds it: {listed}");

    // The current details set by the workflow, through Temporal's metadata query.
    let metadata = support::printed(&server.temporal(&["workflow", "metadata", "--workflow-id", &id]));
    assert!(metadata.contains("order **shipped**"), "`temporal workflow metadata` shows the current details: {metadata}");

    let describe = |wid: &str| support::printed(&server.temporal(&["workflow", "describe", "--workflow-id", wid, "-o", "json"]));
    let parent = describe(&id);
    assert!(parent.contains("note") && parent.contains("fragile"), "describe shows the upserted memo: {parent}");
    // The Python SDK client's describe() reads the same upserts.
    let script = r#"
import asyncio, json, os, sys
from temporalio.client import Client

async def main(address, wid):
    client = await Client.connect(address)
    described = await client.get_workflow_handle(wid).describe()
    print("MEMO", json.dumps(await described.memo(), sort_keys=True))
    print("SEARCH", json.dumps({p.key.name: p.value for p in described.typed_search_attributes}, sort_keys=True))

asyncio.run(main(*sys.argv[1:]))
"#;
    let out = support::python_client(script, &[&server.address, &id]);
    let printed = support::printed(&out);
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains(r#"MEMO {"note": {"fragile": true}}"#), "describe() shows the upserted memo: {printed}");
    assert!(printed.contains(r#""OrderStatus": "shipped""#), "describe() shows the upserted search attribute: {printed}");

    let child = describe(&format!("{id}-child"));
    assert!(child.contains("parent") && child.contains(&id), "the child was started with a memo: {child}");
    assert!(child.contains("upper-cases a word"), "the child's summary is its user metadata: {child}");
}

#[test]
fn local_activities_retry_with_backoff_and_are_markers_in_history() {
    let server = Server::start();
    let tq = unique("la");
    let _worker = Worker::start(&server, &tq, &[&p("test-workflows"), &p("test-activities")]);
    let id = unique("local");
    let doc = server.execute_id(&tq, "local-flaky", &id, &["3", "5000"]);
    assert_eq!(doc["status"], "COMPLETED", "{doc:#}");
    assert_eq!(doc["result"], json!(3), "fails twice, succeeds at attempt 3: {doc:#}");
    let types = event_types(&server, &id);
    assert!(types.contains(&"EVENT_TYPE_MARKER_RECORDED".to_owned()), "{types:?}");
    assert!(!types.contains(&"EVENT_TYPE_ACTIVITY_TASK_SCHEDULED".to_owned()), "no remote activity: {types:?}");

    // Never succeeding within 5 attempts: the workflow sees the failure.
    let doc = server.execute(&tq, "local-flaky", &["9", "5000"]);
    assert_eq!(doc["status"], "FAILED", "{doc:#}");
    assert!(doc.to_string().contains("attempt 5 fails"), "{doc:#}");
}

#[test]
fn cancelling_a_workflow_cancels_what_it_waits_on_and_ends_it_cancelled() {
    let server = Server::start();
    let tq = unique("cancel");
    let _worker = Worker::start(&server, &tq, &[&p("test-workflows"), &p("test-activities"), &p("hostile-activities")]);

    let id = unique("wait");
    server.start_workflow(&tq, "cancellable-wait", &id, &[]);
    wait_for_running_activity(&server, &id);
    let out = server.temporal(&["workflow", "cancel", "--workflow-id", &id]);
    assert!(out.status.success(), "{}", support::printed(&out));
    let doc = server.result(&id);
    assert_eq!(doc["status"], "CANCELED", "{doc:#}");
    let types = event_types(&server, &id);
    assert!(types.contains(&"EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED".to_owned()), "{types:?}");
    assert!(types.contains(&"EVENT_TYPE_ACTIVITY_TASK_CANCELED".to_owned()), "the in-flight activity was cancelled: {types:?}");

    // A saga that catches the cancellation, compensates with work that is
    // not cancelled, then ends cancelled.
    let id = unique("saga");
    server.start_workflow(&tq, "cancellable-saga", &id, &[]);
    wait_for_running_activity(&server, &id);
    // The reserve step has completed; wait for the long one to run.
    server.wait_for_event(&id, "EVENT_TYPE_ACTIVITY_TASK_COMPLETED", Duration::from_secs(20));
    wait_for_running_activity(&server, &id);
    let out = server.temporal(&["workflow", "cancel", "--workflow-id", &id]);
    assert!(out.status.success(), "{}", support::printed(&out));
    let doc = server.result(&id);
    assert_eq!(doc["status"], "CANCELED", "{doc:#}");
    let types = event_types(&server, &id);
    let requested = types.iter().position(|t| t == "EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED").expect("cancel requested");
    let compensation = types.iter().rposition(|t| t == "EVENT_TYPE_ACTIVITY_TASK_COMPLETED").expect("an activity completed");
    assert!(compensation > requested, "the shielded compensation ran to completion after the request: {types:?}");
}

#[test]
fn a_client_adding_a_field_to_an_argument_breaks_nothing() {
    let server = Server::start();
    let tq = unique("evolve");
    let _worker = Worker::start(&server, &tq, &[&p("test-workflows"), &p("test-activities")]);
    let doc = server.execute(&tq, "expense-approval", &[r#"{"id": "E-9", "amount": 5, "timeout_ms": 1, "currency": "EUR"}"#]);
    assert_eq!(doc["status"], "COMPLETED", "an unknown field is ignored: {doc:#}");
}

#[test]
fn a_local_activity_timeout_is_told_apart_and_marker_histories_replay() {
    let server = Server::start();
    let tq = unique("lat");
    let _worker = Worker::start(&server, &tq, &[&p("test-workflows"), &p("test-activities")]);

    // Past its start-to-close (one attempt): the workflow sees a timeout,
    // named, not an application failure.
    let timed_out = unique("la-timeout");
    let doc = server.execute_id(&tq, "local-timeout", &timed_out, &["5000", "300"]);
    assert_eq!(doc["status"], "COMPLETED", "{doc:#}");
    assert_eq!(doc["result"], "timed out: start-to-close", "{doc:#}");
    let in_time = unique("la-in-time");
    let doc = server.execute_id(&tq, "local-timeout", &in_time, &["10", "5000"]);
    assert_eq!(doc["result"], "completed after 10 ms", "{doc:#}");
    let flaky = unique("la-flaky");
    let doc = server.execute_id(&tq, "local-flaky", &flaky, &["3", "5000"]);
    assert_eq!(doc["result"], json!(3), "{doc:#}");

    // The recorded histories carry local-activity markers and replay.
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for id in [&timed_out, &in_time, &flaky] {
        assert!(event_types(&server, id).contains(&"EVENT_TYPE_MARKER_RECORDED".to_owned()), "{id} has a marker");
        files.push(record_history(&server, id, dir.path()));
    }
    let (code, out) = replay("test-workflows", &files[..1]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 histories: 1 ok, 0 failed"), "{out}");
    let (code, out) = replay("test-workflows", &files);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("3 histories: 3 ok, 0 failed"), "{out}");
}

#[test]
fn a_malformed_upsert_fails_the_workflow_task_with_the_servers_reason_and_the_worker_keeps_serving() {
    let server = Server::start();
    let created = server.temporal(&["operator", "search-attribute", "create", "--name", "OrderStatus", "--type", "Keyword"]);
    assert!(created.status.success(), "{}", support::printed(&created));
    let tq = unique("badsa");
    let _worker = Worker::start(&server, &tq, &[&p("test-workflows"), &p("test-activities")]);
    // Temporal's own words, e.g. `BadSearchAttributes: Namespace default
    // has no mapping defined for search attribute NoSuchAttribute`.
    for (case, reason) in [
        ("unknown", "has no mapping defined for search attribute NoSuchAttribute"),
        ("wrong-type", "invalid value for search attribute OrderStatus of type Keyword: 7"),
    ] {
        let id = unique(case);
        server.start_workflow(&tq, "bad-upsert", &id, &[&format!("\"{case}\"")]);
        let message = server.task_failure(&id, Duration::from_secs(60));
        eprintln!("{case}: the workflow task failed with: {message}");
        assert!(message.starts_with("BadSearchAttributes: ") && message.contains(reason), "{case}: the server's reason: {message}");
        server.temporal(&["workflow", "terminate", "--workflow-id", &id]);
    }
    let doc = server.execute(&tq, "sleep", &["10"]);
    assert_eq!(doc["result"], "slept 10 ms", "the worker keeps serving: {doc:#}");
}

#[test]
fn priority_and_fairness_keys_are_in_history_for_an_activity_and_a_child() {
    let server = Server::start();
    let tq = unique("prio");
    let _worker = Worker::start(&server, &tq, &[&p("test-workflows"), &p("test-activities")]);
    let id = unique("prio");
    let doc = server.execute_id(&tq, "prioritized", &id, &[]);
    assert_eq!(doc["result"], "p P", "{doc:#}");
    let history = server.history(&id);
    let activity = history.iter().find_map(|e| e.get("activityTaskScheduledEventAttributes")).expect("an activity");
    assert_eq!(activity["priority"]["priorityKey"], 2, "{activity:#}");
    assert_eq!(activity["priority"]["fairnessKey"], "tenant-a", "{activity:#}");
    let child = history.iter().find_map(|e| e.get("startChildWorkflowExecutionInitiatedEventAttributes")).expect("a child");
    assert_eq!(child["priority"]["priorityKey"], 4, "{child:#}");
    assert_eq!(child["priority"]["fairnessKey"], "tenant-b", "{child:#}");
}

/// `temporal workflow signal`.
fn signal(server: &Server, id: &str, name: &str, input: &str) {
    let out = server.temporal(&["workflow", "signal", "--workflow-id", id, "--name", name, "--input", input]);
    assert!(out.status.success(), "signal {name}: {}", support::printed(&out));
}

#[test]
fn async_workflow_tasks_run_side_by_side_race_timers_and_replay_from_scratch() {
    let server = Server::start();
    let tq = unique("aio");
    // No sticky cache: every workflow task replays the history from the
    // start through a fresh instance, executor and all.
    let _worker = Worker::start(
        &server,
        &tq,
        &[&p("test-workflows"), &p("test-activities"), &p("hostile-activities"), "--max-cached-workflows", "0"],
    );
    let id = unique("aio-mix");
    server.start_workflow(&tq, "async-mix", &id, &["3"]);
    signal(&server, &id, "note", "\"a\"");
    let (ok, out) = update(&server, &id, "add-item", "\"\"");
    assert!(!ok && out.contains("an item needs a name"), "the async handler's validator rejects: {out}");
    signal(&server, &id, "note", "\"b\"");
    let (ok, out) = update(&server, &id, "add-item", "\"pen\"");
    assert!(ok && out.contains('1'), "the async update handler ran an activity and returned the count: {out}");
    signal(&server, &id, "note", "\"stop\"");

    let doc = server.result(&id);
    assert_eq!(doc["status"], "COMPLETED", "{doc:#}");
    let result: Json = serde_json::from_str(doc["result"].as_str().unwrap()).unwrap();
    assert_eq!(
        result,
        json!({
            "echoed": ["round-0", "round-1", "round-2", "left", "right", "KID", "local"],
            "races": ["timer", "activity", "moment"],
            "items": ["PEN"],
            "notes": ["a", "b"],
        }),
        "the loop, the races, the update and the signal task all did their part"
    );
    let types = event_types(&server, &id);
    assert!(types.contains(&"EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED".to_owned()), "the losing activity was cancelled: {types:?}");
    let cancelled_timers = types.iter().filter(|t| *t == "EVENT_TYPE_TIMER_CANCELED").count();
    assert_eq!(cancelled_timers, 2, "the losing hour-long timers were cancelled: {types:?}");
    assert!(types.contains(&"EVENT_TYPE_MARKER_RECORDED".to_owned()), "the local activity's marker: {types:?}");
    assert!(types.contains(&"EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED".to_owned()), "{types:?}");

    let dir = tempfile::tempdir().unwrap();
    let history = record_history(&server, &id, dir.path());
    let (code, out) = replay("test-workflows", &[history]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 histories: 1 ok, 0 failed"), "{out}");
}

#[test]
fn async_cancellation_reaches_every_task_and_a_shielded_compensation_completes() {
    let server = Server::start();
    let tq = unique("aio-cancel");
    let _worker = Worker::start(
        &server,
        &tq,
        &[&p("test-workflows"), &p("test-activities"), &p("hostile-activities"), "--max-cached-workflows", "0"],
    );
    let id = unique("aio-saga");
    server.start_workflow(&tq, "async-cancel-saga", &id, &[]);
    server.wait_for_event(&id, "EVENT_TYPE_ACTIVITY_TASK_COMPLETED", Duration::from_secs(20));
    wait_for_running_activity(&server, &id);
    let out = server.temporal(&["workflow", "cancel", "--workflow-id", &id]);
    assert!(out.status.success(), "{}", support::printed(&out));
    let doc = server.result(&id);
    assert_eq!(doc["status"], "CANCELED", "{doc:#}");

    let history = server.history(&id);
    let types = event_types(&server, &id);
    assert!(types.contains(&"EVENT_TYPE_ACTIVITY_TASK_CANCELED".to_owned()), "the awaited activity was cancelled: {types:?}");
    let requested = types.iter().position(|t| t == "EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED").expect("cancel requested");
    let compensation = history
        .iter()
        .position(|e| {
            e["activityTaskScheduledEventAttributes"]["activityType"]["name"] == "step"
                && support::payload_values(&e["activityTaskScheduledEventAttributes"]["input"]).first()
                    == Some(&json!("release (side-task-cancelled)"))
        })
        .expect("the compensation names what the spawned task saw: the cancellation");
    assert!(compensation > requested, "{types:?}");
    let completed = types.iter().rposition(|t| t == "EVENT_TYPE_ACTIVITY_TASK_COMPLETED").unwrap();
    assert!(completed > compensation, "the shielded compensation ran to completion: {types:?}");
}
