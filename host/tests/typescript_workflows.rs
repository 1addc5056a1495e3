//! TypeScript workflows on caisson-workflow (the `@temporalio/workflow`
//! API) on a real dev server: `plugins/js/test-workflows-ts`, whose
//! exported functions are workflow types run through the `dynamic`
//! export, calling the Rust test activities. Each test serves the plugin
//! from one worker and drives it with the Temporal CLI.

mod support;

use serde_json::{Value as Json, json};
use std::time::Duration;
use support::{Server, Worker, plugin, unique};

fn p(name: &str) -> String {
    plugin(name).display().to_string()
}

/// The plugins every test serves, plus `extra` flags.
fn worker(server: &Server, tq: &str, extra: &[&str]) -> Worker {
    let plugins = [p("test-workflows-ts"), p("test-activities"), p("hostile-activities"), p("greet-activity")];
    let mut args: Vec<&str> = plugins.iter().map(String::as_str).collect();
    args.extend(extra);
    Worker::start(server, tq, &args)
}

/// The result of a completed run, decoded.
fn completed(doc: &Json) -> Json {
    assert_eq!(doc["status"], "COMPLETED", "{doc:#}");
    match &doc["result"] {
        Json::String(s) => serde_json::from_str(s).unwrap_or_else(|_| Json::String(s.clone())),
        other => other.clone(),
    }
}

fn event_types(server: &Server, id: &str) -> Vec<String> {
    server.history(id).iter().map(|e| e["eventType"].as_str().unwrap_or_default().to_owned()).collect()
}

fn query(server: &Server, id: &str, name: &str) -> String {
    support::printed(&server.temporal(&["workflow", "query", "--workflow-id", id, "--name", name]))
}

/// `temporal workflow update execute`: (succeeded, stdout + stderr).
fn update(server: &Server, id: &str, name: &str, input: &str) -> (bool, String) {
    let out = server.temporal(&["workflow", "update", "execute", "--workflow-id", id, "--name", name, "--input", input]);
    (out.status.success(), support::printed(&out))
}

fn wait_for_running_activity(server: &Server, id: &str) {
    for _ in 0..150 {
        let out = support::printed(&server.temporal(&["workflow", "describe", "--workflow-id", id, "-o", "json"]));
        if out.contains("PENDING_ACTIVITY_STATE_STARTED") {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("no activity of {id} started within 30 s");
}

#[test]
fn activities_retries_parallel_work_timers_children_and_local_activities() {
    let server = Server::start();
    let tq = unique("ts");
    let _worker = worker(&server, &tq, &[]);

    // proxyActivities calling a Rust activity that fails twice: Temporal retries it.
    assert_eq!(completed(&server.execute(&tq, "retried", &["3"])), json!(3));
    // Promise.all: the activities are scheduled in one workflow task.
    let id = unique("parallel");
    let doc = server.execute_id(&tq, "parallel", &id, &[r#"["a", "b", "c"]"#]);
    assert_eq!(completed(&doc), json!(["A", "B", "C"]));
    let types = event_types(&server, &id);
    let first_completed = types.iter().position(|t| t == "EVENT_TYPE_WORKFLOW_TASK_COMPLETED").unwrap();
    let scheduled_at_once = types[first_completed..].iter().take(4).filter(|t| *t == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED").count();
    assert_eq!(scheduled_at_once, 3, "all three were scheduled by the first task: {types:?}");

    // sleep and condition with a timeout.
    assert_eq!(completed(&server.execute(&tq, "timers", &[])), json!({ "timedOut": true, "held": true }));

    // executeChild with a memo, and startChild's handle.
    let id = unique("parent");
    let doc = server.execute_id(&tq, "parent", &id, &[r#""word""#]);
    let result = completed(&doc);
    assert_eq!(result["first"], json!({ "word": "WORD", "memo": { "from": "parent", "word": "word" }, "parent": id }), "{result:#}");
    assert_eq!(result["second"]["word"], "WORD2", "{result:#}");
    let child = support::printed(&server.temporal(&["workflow", "describe", "--workflow-id", &format!("{id}-child"), "-o", "json"]));
    assert!(child.contains("from") && child.contains("parent"), "the child was started with the memo: {child}");

    // A local activity failing twice, then succeeding: markers, no remote activity.
    let id = unique("local");
    assert_eq!(completed(&server.execute_id(&tq, "localFlaky", &id, &["3"])), json!(3));
    let types = event_types(&server, &id);
    assert!(types.contains(&"EVENT_TYPE_MARKER_RECORDED".to_owned()), "{types:?}");
    assert!(!types.contains(&"EVENT_TYPE_ACTIVITY_TASK_SCHEDULED".to_owned()), "{types:?}");

    // An activity's failure, uncaught, fails the workflow with its error type.
    let doc = server.execute(&tq, "failingStep", &[]);
    assert_eq!(doc["status"], "FAILED", "{doc:#}");
    assert!(doc.to_string().contains("StepFailed") && doc.to_string().contains("charge failed"), "{doc:#}");

    // temporalio/samples-typescript hello-world, ported by its import line.
    assert_eq!(completed(&server.execute(&tq, "example", &[r#""Temporal""#])), json!("Hello, Temporal!"));
}

#[test]
fn signals_queries_and_updates_with_validators_also_on_replay() {
    let server = Server::start();
    let tq = unique("ts-msg");
    // No sticky cache: every task replays from the start; validators must
    // not run again, handlers must replay.
    let _worker = worker(&server, &tq, &["--max-cached-workflows", "0"]);
    let id = unique("approval");
    server.start_workflow(&tq, "approval", &id, &["100"]);

    let (ok, out) = update(&server, &id, "setAmount", "-5");
    assert!(!ok && out.contains("amount -5 must be positive"), "the validator's message reaches the client: {out}");
    let (ok, out) = update(&server, &id, "setAmount", "250");
    assert!(ok && out.contains("250"), "{out}");
    let (ok, out) = update(&server, &id, "audit", r#""checked""#);
    assert!(ok && out.contains("CHECKED"), "the update handler ran an activity: {out}");
    let (ok, out) = update(&server, &id, "nope", "1");
    assert!(!ok && out.contains("nope"), "an unknown update is rejected naming it: {out}");
    let status = query(&server, &id, "status");
    assert!(status.contains("pending") && status.contains("250") && status.contains("CHECKED"), "{status}");

    let out = server.temporal(&["workflow", "signal", "--workflow-id", &id, "--name", "approve", "--input", r#""carol""#]);
    assert!(out.status.success(), "{}", support::printed(&out));
    assert_eq!(completed(&server.result(&id)), json!("approved by carol for 250"));
    let status = query(&server, &id, "status");
    assert!(status.contains("approved") && status.contains("carol"), "queried after completion: {status}");
    let types = event_types(&server, &id);
    assert!(!types.iter().any(|t| t.contains("UPDATE") && t.contains("REJECTED")), "a rejected update leaves no trace: {types:?}");

    // temporalio/samples-typescript signals-queries, ported by its import line.
    let id = unique("blocked");
    server.start_workflow(&tq, "unblockOrCancel", &id, &[]);
    assert!(query(&server, &id, "isBlocked").contains("true"));
    let out = server.temporal(&["workflow", "signal", "--workflow-id", &id, "--name", "unblock"]);
    assert!(out.status.success(), "{}", support::printed(&out));
    assert_eq!(server.result(&id)["status"], "COMPLETED");
    assert!(query(&server, &id, "isBlocked").contains("false"));
    let id = unique("cancelled");
    server.start_workflow(&tq, "unblockOrCancel", &id, &[]);
    assert!(query(&server, &id, "isBlocked").contains("true"));
    let out = server.temporal(&["workflow", "cancel", "--workflow-id", &id]);
    assert!(out.status.success(), "{}", support::printed(&out));
    assert_eq!(server.result(&id)["status"], "CANCELED", "the sample rethrows the CancelledFailure");
}

#[test]
fn search_attributes_and_memo_are_upserted() {
    let server = Server::start();
    let created = server.temporal(&["operator", "search-attribute", "create", "--name", "OrderStatus", "--type", "Keyword"]);
    assert!(created.status.success(), "{}", support::printed(&created));
    let tq = unique("ts-sa");
    let _worker = worker(&server, &tq, &[]);
    let id = unique("order");
    let result = completed(&server.execute_id(&tq, "searchAndMemo", &id, &[r#""shipped""#]));
    assert_eq!(
        result,
        json!({ "status": "shipped", "legacy": ["shipped"], "memo": { "note": { "fragile": true }, "stage": "shipped" } }),
        "workflowInfo() reads back the upserts"
    );
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
    let describe = support::printed(&server.temporal(&["workflow", "describe", "--workflow-id", &id, "-o", "json"]));
    assert!(describe.contains("fragile"), "describe shows the upserted memo: {describe}");
}

#[test]
fn a_cancelled_saga_compensates_in_a_non_cancellable_scope_then_ends_cancelled() {
    let server = Server::start();
    let tq = unique("ts-cancel");
    let _worker = worker(&server, &tq, &[]);
    let id = unique("saga");
    server.start_workflow(&tq, "cancellableSaga", &id, &[]);
    server.wait_for_event(&id, "EVENT_TYPE_ACTIVITY_TASK_COMPLETED", Duration::from_secs(60));
    wait_for_running_activity(&server, &id);
    let out = server.temporal(&["workflow", "cancel", "--workflow-id", &id]);
    assert!(out.status.success(), "{}", support::printed(&out));
    let doc = server.result(&id);
    assert_eq!(doc["status"], "CANCELED", "{doc:#}");
    let types = event_types(&server, &id);
    assert!(types.contains(&"EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED".to_owned()), "{types:?}");
    assert!(types.contains(&"EVENT_TYPE_ACTIVITY_TASK_CANCELED".to_owned()), "the in-flight activity was cancelled: {types:?}");
    let requested = types.iter().position(|t| t == "EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED").expect("cancel requested");
    let completed_after: usize = types[requested..].iter().filter(|t| *t == "EVENT_TYPE_ACTIVITY_TASK_COMPLETED").count();
    assert_eq!(completed_after, 2, "both compensations (across an await) ran after the request: {types:?}");
}

#[test]
fn replays_are_deterministic_and_failures_fail_the_task_or_the_workflow() {
    let server = Server::start();
    let tq = unique("ts-replay");
    let worker = worker(&server, &tq, &["--max-cached-workflows", "0"]);

    // Date.now(), Math.random(), uuid4() computed again on every replay
    // equal the values recorded in history on the first run.
    let id = unique("randomness");
    let result = completed(&server.execute_id(&tq, "randomness", &id, &[]));
    assert_eq!(result["same"], json!(true), "{result:#}");
    // The same history replayed offline by `caisson replay`, twice in one
    // process (two fresh instances): the same commands.
    let history = server.temporal(&["workflow", "show", "--workflow-id", &id, "-o", "json"]);
    assert!(history.status.success(), "{}", support::printed(&history));
    let dir = tempfile::tempdir().unwrap();
    for n in 0..2 {
        std::fs::write(dir.path().join(format!("randomness-{n}.json")), &history.stdout).unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_caisson"))
        .args(["replay", "--plugin", &p("test-workflows-ts")])
        .arg(dir.path())
        .output()
        .unwrap();
    let replayed = support::printed(&out);
    assert!(out.status.success() && replayed.matches("ok ").count() == 2, "caisson replay: {replayed}");

    // continueAsNew: three new runs, the last one returns.
    let id = unique("countdown");
    let doc = server.execute_id(&tq, "countdown", &id, &["0", "3"]);
    assert_eq!(completed(&doc), json!(3));

    // ApplicationFailure fails the workflow with its type.
    let doc = server.execute(&tq, "refuses", &[r#""no stock""#]);
    assert_eq!(doc["status"], "FAILED", "{doc:#}");
    assert!(doc.to_string().contains("Refused") && doc.to_string().contains("refused: no stock"), "{doc:#}");

    // An unexpected error fails the workflow task (Temporal retries it),
    // with the error and its stack in the failure and the worker log.
    let id = unique("broken");
    server.start_workflow(&tq, "broken", &id, &[]);
    let event = server.wait_for_event(&id, "EVENT_TYPE_WORKFLOW_TASK_FAILED", Duration::from_secs(60));
    let failure = &event["workflowTaskFailedEventAttributes"]["failure"];
    let message = failure["message"].as_str().unwrap_or_default();
    let stack = failure["stackTrace"].as_str().unwrap_or_default();
    assert!(message.contains("TypeError: can't access property \"field\""), "the task failure's message is the error: {failure:#}");
    assert!(stack.contains("broken@index.js"), "its stack trace names the workflow function: {failure:#}");
    worker.wait_for_log("workflow task failed at:", Duration::from_secs(30));
    let out = server.temporal(&["workflow", "terminate", "--workflow-id", &id]);
    assert!(out.status.success(), "{}", support::printed(&out));
}
