//! Workflow components on a real Temporal server (issue: workflows).
//! Each test starts its own dev server; workflows are started, signalled
//! and queried with the Temporal CLI, activities partly served by a plain
//! Python SDK worker.

mod support;

use serde_json::{Value as Json, json};
use std::time::{Duration, Instant};
use support::{PythonWorker, Server, Worker, plugin, unique};

fn p(name: &str) -> String {
    plugin(name).display().to_string()
}

fn status(doc: &Json) -> &str {
    doc["status"].as_str().unwrap_or_default()
}

fn failure(doc: &Json) -> &Json {
    &doc["closeEvent"]["workflowExecutionFailedEventAttributes"]["failure"]
}

fn spec(activity: &str, args: Json, task_queue: &str, extra: Json) -> String {
    let mut s = json!({ "activity_type": activity, "args": args.as_array().unwrap().iter().map(|a| a.to_string()).collect::<Vec<_>>(), "task_queue": task_queue });
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    s.to_string()
}

#[test]
fn activities_with_timeouts_retries_and_routing_to_a_python_worker() {
    let server = Server::start();
    let tq = unique("wf");
    let py_tq = unique("py");
    let _worker = Worker::start(&server, &tq, &[&p("test-workflows"), &p("test-activities")]);
    let _py = PythonWorker::start(&server, &py_tq);
    let retry = |attempts: u32| json!({ "retry": { "initial_interval_ms": 100, "backoff_coefficient": 2.0, "maximum_interval_ms": 400, "maximum_attempts": attempts, "non_retryable": ["Fatal"] }, "start_to_close_ms": 5000 });

    // JSON arguments, a task queue override, and retries with backoff until success.
    let started = Instant::now();
    let doc = server.execute(&tq, "run-activity", &[&spec("py-flaky", json!(["k1", 2]), &py_tq, retry(5))]);
    assert_eq!(status(&doc), "COMPLETED", "{doc:#}");
    let result: Json = serde_json::from_str(doc["result"].as_str().unwrap()).unwrap();
    assert_eq!(result, json!({"key": "k1", "attempt": 3}));
    assert!(started.elapsed() >= Duration::from_millis(300), "backoff 100 ms then 200 ms between attempts");

    // Maximum attempts.
    let doc = server.execute(&tq, "run-activity", &[&spec("py-flaky", json!(["k2", 9]), &py_tq, retry(2))]);
    assert_eq!(status(&doc), "FAILED", "{doc:#}");
    assert_eq!(failure(&doc)["applicationFailureInfo"]["type"], "Transient", "{doc:#}");
    assert!(failure(&doc)["message"].as_str().unwrap().contains("attempt 2 fails"), "{doc:#}");

    // Non-retryable error types: one attempt only.
    let doc = server.execute(&tq, "run-activity", &[&spec("py-fatal", json!([]), &py_tq, retry(5))]);
    assert_eq!(status(&doc), "FAILED", "{doc:#}");
    assert_eq!(failure(&doc)["applicationFailureInfo"]["type"], "Fatal", "{doc:#}");
    let id = doc["workflowId"].as_str().unwrap();
    let attempts: Vec<Json> = server.history(id).into_iter().filter_map(|e| e.get("activityTaskStartedEventAttributes").cloned()).collect();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["attempt"], 1);

    // Start-to-close, schedule-to-close and heartbeat timeouts.
    for (extra, kind) in [
        (
            json!({ "start_to_close_ms": 500, "retry": { "initial_interval_ms": 100, "backoff_coefficient": 1.0, "maximum_interval_ms": 100, "maximum_attempts": 1, "non_retryable": [] } }),
            "start-to-close",
        ),
        (json!({ "schedule_to_close_ms": 800 }), "schedule-to-close"),
        (
            json!({ "start_to_close_ms": 10000, "heartbeat_timeout_ms": 500, "retry": { "initial_interval_ms": 100, "backoff_coefficient": 1.0, "maximum_interval_ms": 100, "maximum_attempts": 1, "non_retryable": [] } }),
            "heartbeat",
        ),
    ] {
        let doc = server.execute(&tq, "run-activity", &[&spec("py-sleep", json!([3]), &py_tq, extra)]);
        assert_eq!(status(&doc), "FAILED", "{kind}: {doc:#}");
        assert_eq!(failure(&doc)["applicationFailureInfo"]["type"], "TimeoutError", "{kind}: {doc:#}");
        assert!(failure(&doc)["message"].as_str().unwrap().contains(kind), "{kind}: {doc:#}");
    }
}

#[test]
fn durable_timer_survives_a_worker_restart() {
    let server = Server::start();
    let tq = unique("wf");
    let id = unique("sleepy");
    let mut worker = Worker::start(&server, &tq, &[&p("test-workflows")]);
    server.start_workflow(&tq, "sleep", &id, &["5000"]);
    server.wait_for_event(&id, "EVENT_TYPE_TIMER_STARTED", Duration::from_secs(20));
    worker.kill();
    std::thread::sleep(Duration::from_secs(1));
    let _worker = Worker::start(&server, &tq, &[&p("test-workflows")]);
    let doc = server.result(&id);
    assert_eq!(status(&doc), "COMPLETED", "{doc:#}");
    assert_eq!(doc["result"], "slept 5000 ms");
}

#[test]
fn expense_approval_with_signals_queries_and_a_timeout() {
    let server = Server::start();
    let tq = unique("wf");
    // A short wall-clock budget per activation: waiting far longer than it
    // between activations must not count against the workflow.
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("test-workflows.wasm");
    std::fs::copy(plugin("test-workflows"), &wasm).unwrap();
    std::fs::write(dir.path().join("test-workflows.toml"), "timeout = \"300ms\"\n").unwrap();
    let _worker = Worker::start(&server, &tq, &[wasm.to_str().unwrap()]);
    let query = |id: &str| -> Json {
        let out = server.temporal(&["workflow", "query", "-o", "json", "--workflow-id", id, "--name", "get-status"]);
        let doc = support::first_json(&out);
        doc["queryResult"][0].clone()
    };

    // Approved: queried while waiting and after completion.
    let id = unique("expense");
    server.start_workflow(&tq, "expense-approval", &id, &[r#"{"id":"e1","amount":120.5,"timeout_ms":60000}"#]);
    assert_eq!(query(&id), json!({"state": "pending", "decided_by": null}));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(query(&id), json!({"state": "pending", "decided_by": null}), "queried after waiting longer than the budget");
    let out = server.temporal(&["workflow", "signal", "--workflow-id", &id, "--name", "approve", "--input", r#""alice""#]);
    assert!(out.status.success());
    let doc = server.result(&id);
    assert_eq!(doc["result"], json!({"state": "approved", "decided_by": "alice"}), "{doc:#}");
    assert_eq!(query(&id), json!({"state": "approved", "decided_by": "alice"}));

    // Rejected.
    let id = unique("expense");
    server.start_workflow(&tq, "expense-approval", &id, &[r#"{"id":"e2","amount":9000,"timeout_ms":60000}"#]);
    server.temporal(&["workflow", "signal", "--workflow-id", &id, "--name", "reject", "--input", r#""bob""#]);
    assert_eq!(server.result(&id)["result"], json!({"state": "rejected", "decided_by": "bob"}));

    // Nobody decides: the (short) timeout auto-rejects.
    let id = unique("expense");
    server.start_workflow(&tq, "expense-approval", &id, &[r#"{"id":"e3","amount":1,"timeout_ms":1500}"#]);
    assert_eq!(server.result(&id)["result"], json!({"state": "auto_rejected", "decided_by": null}));
    assert_eq!(query(&id), json!({"state": "auto_rejected", "decided_by": null}));
}

#[test]
fn poison_signals_are_dropped_and_a_good_one_still_completes_the_workflow() {
    let server = Server::start();
    let tq = unique("wf");
    let metrics = format!("127.0.0.1:{}", support::free_port());
    let worker = Worker::start(&server, &tq, &[&p("test-workflows"), "--metrics-address", &metrics]);
    let id = unique("expense-poison");
    server.start_workflow(&tq, "expense-approval", &id, &[r#"{"id":"e1","amount":10,"timeout_ms":600000}"#]);
    // Each poison form, then a good one, as raw payloads from the Python
    // SDK (the CLI refuses to send what is not JSON).
    let script = r#"
import asyncio, base64, json, sys
from temporalio.client import Client
from temporalio.common import RawValue
from temporalio.api.common.v1 import Payload
async def main():
    client = await Client.connect(sys.argv[1])
    handle = client.get_workflow_handle(sys.argv[2])
    for encoding, data in json.loads(sys.argv[3]):
        await handle.signal("approve", RawValue(Payload(metadata={"encoding": encoding.encode()}, data=base64.b64decode(data))))
asyncio.run(main())
"#;
    let signals = json!([
        ["json/plain", "//79"],             // 0xff 0xfe 0xfd: not UTF-8
        ["json/plain", "bm90IGpzb24geyI="], // `not json {"`
        ["binary/plain", "aGVsbG8="],
        ["binary/protobuf", "CgNmb28="],
        ["json/plain", "eyJ4IjoxfQ=="], // {"x":1}: JSON, but the handler takes a string
        ["json/plain", "ImFsaWNlIg=="], // "alice"
    ]);
    let out = support::python_client(script, &[&server.address, &id, &signals.to_string()]);
    assert!(out.status.success(), "sending signals: {}", String::from_utf8_lossy(&out.stderr));

    let doc = server.result(&id);
    assert_eq!(doc["result"], json!({"state": "approved", "decided_by": "alice"}), "{doc:#}");
    let history = server.history(&id);
    assert!(!history.iter().any(|e| e["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_FAILED"), "no task may fail: {history:#?}");
    assert_eq!(history.iter().filter(|e| e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED").count(), 6);

    // The host dropped the four undecodable ones, naming workflow, handler
    // and cause, and counted them; the guest library dropped the mis-shaped one.
    worker.wait_for_log("dropping signal `approve`", Duration::from_secs(10));
    let log = worker.log();
    let host_drops: Vec<&str> = log.lines().filter(|l| l.contains("WARN") && l.contains("dropped signal `approve`")).collect();
    assert_eq!(host_drops.len(), 4, "{log}");
    for (line, cause) in host_drops.iter().zip(["not UTF-8", "invalid JSON", "binary/plain", "binary/protobuf"]) {
        assert!(line.contains(&id) && line.contains(cause), "{line}");
    }
    assert!(log.lines().any(|l| l.contains("WARN") && l.contains("dropping signal `approve`") && l.contains("invalid type: map")), "{log}");
    let text = caisson::metrics::scrape(&metrics).unwrap();
    let dropped = text
        .lines()
        .find(|l| l.starts_with("caisson_inputs_dropped{") && l.contains("handler=\"approve\"") && l.contains("kind=\"signal\""))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert_eq!(dropped, Some(4.0), "{text}");
}

#[test]
fn parallel_activities_children_continue_as_new_cancellation_and_failure() {
    let server = Server::start();
    let tq = unique("wf");
    let _worker = Worker::start(&server, &tq, &[&p("test-workflows"), &p("test-activities")]);

    let doc = server.execute(&tq, "parallel", &["5"]);
    assert_eq!(doc["result"], json!(["item-0", "item-1", "item-2", "item-3", "item-4"]), "{doc:#}");

    let doc = server.execute(&tq, "race", &[]);
    assert_eq!(doc["result"], "fast", "{doc:#}");

    let id = unique("parent");
    let doc = server.execute_id(&tq, "parent", &id, &[r#"["a","b","c"]"#]);
    assert_eq!(doc["result"], json!(["A", "B", "C"]), "{doc:#}");
    let children = server.history(&id).iter().filter(|e| e["eventType"] == "EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED").count();
    assert_eq!(children, 3);

    let id = unique("count");
    let doc = server.execute_id(&tq, "count-to", &id, &[r#"{"current":0,"target":3}"#]);
    assert_eq!(doc["result"], 3, "{doc:#}");
    let runs = server.temporal(&["workflow", "list", "-o", "json", "--query", &format!("WorkflowId = '{id}'")]);
    let text = String::from_utf8_lossy(&runs.stdout);
    assert_eq!(text.matches("WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW").count(), 3, "{text}");

    let id = unique("cancel");
    server.start_workflow(&tq, "wait-for-cancel", &id, &[]);
    server.wait_for_event(&id, "EVENT_TYPE_WORKFLOW_TASK_COMPLETED", Duration::from_secs(20));
    assert!(server.temporal(&["workflow", "cancel", "--workflow-id", &id]).status.success());
    let doc = server.result(&id);
    assert_eq!(status(&doc), "CANCELED", "{doc:#}");

    let doc = server.execute(&tq, "fail-with", &[r#""InsufficientFunds""#, r#""balance too low""#]);
    assert_eq!(status(&doc), "FAILED");
    let f = failure(&doc);
    assert_eq!(f["message"], "balance too low");
    assert_eq!(f["applicationFailureInfo"]["type"], "InsufficientFunds");
    assert_eq!(f["applicationFailureInfo"]["nonRetryable"], true);
    assert_eq!(f["applicationFailureInfo"]["details"][0], json!({"hint": "details survive"}));
}

#[test]
fn saga_compensates_in_reverse_order() {
    let server = Server::start();
    let tq = unique("wf");
    let _worker = Worker::start(&server, &tq, &[&p("test-workflows"), &p("test-activities")]);

    let doc = server.execute(&tq, "saga", &[r#"{"id":"ok"}"#]);
    assert_eq!(doc["result"], json!(["reserve-inventory: ok", "charge-payment: ok", "ship-order: ok"]));

    let id = unique("saga");
    let doc = server.execute_id(&tq, "saga", &id, &[r#"{"id":"o2","fail_at":"ship-order"}"#]);
    assert_eq!(status(&doc), "FAILED", "{doc:#}");
    assert_eq!(failure(&doc)["applicationFailureInfo"]["type"], "StepFailed");
    let steps: Vec<String> = server
        .history(&id)
        .iter()
        .filter_map(|e| e.get("activityTaskScheduledEventAttributes"))
        .map(|a| support::payload_values(&a["input"])[0].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(steps, ["reserve-inventory", "charge-payment", "ship-order", "refund-payment", "release-inventory"]);
}

#[test]
fn determinism_refusal_virtual_mode_silent_replay_logs_and_runaway_loops() {
    let server = Server::start();
    let tq = unique("wf");

    // A workflow importing the clock is refused at load, naming the import.
    let mut refused = Worker::spawn(&server, &tq, &[&p("clock-workflow")]);
    let status_code = refused.wait_exit(Duration::from_secs(60));
    assert!(!status_code.success());
    let log = refused.log();
    assert!(log.contains("wasi:clocks/wall-clock") && log.contains("determinism = \"virtual\""), "{log}");

    // Opted in to virtual mode, it reads workflow time, not the host clock.
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("clock-workflow.wasm");
    std::fs::copy(plugin("clock-workflow"), &wasm).unwrap();
    std::fs::write(dir.path().join("clock-workflow.toml"), "determinism = \"virtual\"\n").unwrap();
    // No cache: every activation replays the history from the start.
    let worker = Worker::start(
        &server,
        &tq,
        &[wasm.to_str().unwrap(), &p("hello-workflow"), &p("greet-activity"), &p("test-workflows"), "--max-cached-workflows", "0"],
    );
    let id = unique("clock");
    let doc = server.execute_id(&tq, "what-time", &id, &[]);
    assert_eq!(status(&doc), "COMPLETED", "{doc:#}");
    let history = server.history(&id);
    let task_started = history.iter().find(|e| e["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_STARTED").unwrap();
    let workflow_time = rfc3339_millis(task_started["eventTime"].as_str().unwrap());
    let returned = doc["result"].as_u64().unwrap();
    assert!(returned.abs_diff(workflow_time) < 1000, "virtual clock {returned} vs workflow task time {workflow_time}");

    // Logging is silent during replay: with no cache, hello replays at
    // each of its three activations, yet logs its start once.
    let doc = server.execute(&tq, "hello", &[r#""Replay""#]);
    assert_eq!(doc["result"], "Hello, Replay!", "{doc:#}");
    assert_eq!(worker.log().matches("hello workflow started for Replay").count(), 1, "{}", worker.log());

    // An infinite loop fails its workflow task with a clear message, and
    // the worker keeps serving other workflows.
    let spin = unique("spin");
    server.start_workflow(&tq, "spin", &spin, &[]);
    let message = server.task_failure(&spin, Duration::from_secs(60));
    assert!(message.contains("test-workflows") && message.contains("ran out of fuel"), "{message}");
    let doc = server.execute(&tq, "sleep", &["10"]);
    assert_eq!(doc["result"], "slept 10 ms");
    server.temporal(&["workflow", "terminate", "--workflow-id", &spin]);
}

/// Milliseconds since the epoch of an RFC 3339 UTC timestamp.
fn rfc3339_millis(t: &str) -> u64 {
    // 2026-11-22T07:13:31.692716711Z
    let (date, time) = t.split_once('T').unwrap();
    let mut d = date.split('-').map(|x| x.parse::<i64>().unwrap());
    let (y, m, day) = (d.next().unwrap(), d.next().unwrap(), d.next().unwrap());
    let time = time.trim_end_matches('Z');
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut h = hms.split(':').map(|x| x.parse::<i64>().unwrap());
    let (hh, mm, ss) = (h.next().unwrap(), h.next().unwrap(), h.next().unwrap());
    let ms: i64 = format!("{frac:0<3}")[..3].parse().unwrap();
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    ((days * 86400 + hh * 3600 + mm * 60 + ss) * 1000 + ms) as u64
}

#[test]
fn cache_of_one_with_twenty_concurrent_workflows_and_non_determinism() {
    let server = Server::start();
    let tq = unique("wf");
    let _worker = Worker::start(&server, &tq, &[&p("test-workflows"), &p("test-activities"), "--max-cached-workflows", "1"]);
    let ids: Vec<String> = (0..20).map(|i| unique(&format!("par{i}"))).collect();
    for id in &ids {
        server.start_workflow(&tq, "parallel", id, &["3"]);
    }
    for id in &ids {
        let doc = server.result(id);
        assert_eq!(doc["result"], json!(["item-0", "item-1", "item-2"]), "{id}: {doc:#}");
    }

    // A changed plugin issuing different commands: non-determinism, with
    // the expected and the actual command in the message. Unversioned: a
    // versioned worker would serve the run on v1 again (versioning.rs).
    let tq = unique("nde");
    let id = unique("changed");
    let mut v1 = Worker::start(&server, &tq, &[&p("test-workflows"), &p("test-activities"), "--no-versioning"]);
    server.start_workflow(&tq, "changed", &id, &[]);
    server.wait_for_event(&id, "EVENT_TYPE_TIMER_STARTED", Duration::from_secs(20));
    v1.kill();
    let _v2 = Worker::start(&server, &tq, &[&p("test-workflows-v2"), &p("test-activities"), "--no-versioning"]);
    let message = server.task_failure(&id, Duration::from_secs(30));
    assert!(message.contains("echo") && message.contains("upper"), "{message}");
    server.temporal(&["workflow", "terminate", "--workflow-id", &id]);
}

#[test]
fn patched_lets_changed_code_replay_old_histories() {
    let server = Server::start();
    let tq = unique("wf");
    let old = unique("versioned-old");
    let mut v1 = Worker::start(&server, &tq, &[&p("test-workflows"), &p("test-activities")]);
    server.start_workflow(&tq, "versioned", &old, &[]);
    server.wait_for_event(&old, "EVENT_TYPE_TIMER_STARTED", Duration::from_secs(20));
    v1.kill();
    let _v2 = Worker::start(&server, &tq, &[&p("test-workflows-v2"), &p("test-activities")]);
    assert_eq!(server.result(&old)["result"], "v1 done", "the old history replays on the old branch");
    let doc = server.execute(&tq, "versioned", &[]);
    assert_eq!(doc["result"], "V2 done", "new executions take the new branch: {doc:#}");
}

#[test]
fn bad_guests_fail_only_their_own_workflow_task() {
    let server = Server::start();
    let tq = unique("wf");
    let _worker = Worker::start(&server, &tq, &[&p("test-workflows"), &p("test-activities")]);
    let cases = [
        ("panics", vec![], "panicked"),
        ("bad-return", vec![], "out of range for `char`"),
        ("sleep", vec![r#""soon""#], "argument `ms` expected u64, found string"),
        ("sleep", vec!["1", "2"], "2 arguments given, but the function takes 1"),
        ("no-such-type", vec![], "no plugin serves workflow type `no-such-type`"),
    ];
    let mut ids = Vec::new();
    for (workflow_type, inputs, _) in &cases {
        let id = unique(workflow_type);
        server.start_workflow(&tq, workflow_type, &id, inputs);
        ids.push(id);
    }
    for ((workflow_type, _, expected), id) in cases.iter().zip(&ids) {
        let message = server.task_failure(id, Duration::from_secs(30));
        assert!(message.contains(expected), "{workflow_type}: {message}");
        if *workflow_type != "no-such-type" {
            assert!(message.contains("plugin test-workflows"), "{workflow_type}: {message}");
        }
    }
    let doc = server.execute(&tq, "parallel", &["2"]);
    assert_eq!(doc["result"], json!(["item-0", "item-1"]), "the worker keeps serving");
    for id in ids {
        server.temporal(&["workflow", "terminate", "--workflow-id", &id]);
    }
}

/// Types declared at run time (the `dynamic` exports the Python and
/// JavaScript guest libraries build on), served by a worker: a declared
/// workflow calls a declared activity, an application error fails the
/// workflow, and a trap fails only the task, with what the guest logged
/// as the failure's stack trace in history.
#[test]
fn declared_workflow_and_activity_types_run_on_a_server() {
    let server = Server::start();
    let tq = unique("dyn");
    let _worker = Worker::start(&server, &tq, &[&p("dynamic-workflows"), &p("dynamic-activities")]);

    let doc = server.execute(&tq, "DynGreet", &[r#""Ada""#]);
    assert_eq!(status(&doc), "COMPLETED", "{doc:#}");
    assert_eq!(doc["result"], "Hello, Ada! (dynamic)", "{doc:#}");

    let doc = server.execute(&tq, "DynFail", &[]);
    assert_eq!(status(&doc), "FAILED", "{doc:#}");
    assert_eq!(failure(&doc)["applicationFailureInfo"]["type"], "DynFailure", "{doc:#}");

    let id = unique("dyn-panic");
    server.start_workflow(&tq, "DynPanic", &id, &[]);
    let task_failed = server.wait_for_event(&id, "EVENT_TYPE_WORKFLOW_TASK_FAILED", Duration::from_secs(20));
    let failure = &task_failed["workflowTaskFailedEventAttributes"]["failure"];
    assert!(failure["message"].as_str().unwrap().ends_with("its last error output: RuntimeError: boom"), "{task_failed:#}");
    assert!(failure["stackTrace"].as_str().unwrap().contains("in DynPanic"), "{task_failed:#}");
    server.temporal(&["workflow", "terminate", "--workflow-id", &id, "--reason", "test over"]);
}

#[test]
fn a_rust_workflow_reaching_for_std_files_threads_sockets_or_the_clock_gets_an_error_never_the_host() {
    let server = Server::start();
    let tq = unique("wf");
    let worker = Worker::start(&server, &tq, &[&p("test-workflows")]);
    // wasm32-unknown-unknown has no file system, threads, sockets or
    // environment: std says so, and the host links none of them.
    let doc = server.execute(&tq, "std-escapes", &[]);
    assert_eq!(status(&doc), "COMPLETED", "{doc:#}");
    let said: Json = serde_json::from_str(doc["result"].as_str().unwrap()).unwrap();
    for what in ["file", "thread", "socket"] {
        let message = said[what].as_str().unwrap_or_default();
        assert!(message.starts_with("error:") && message.contains("not supported"), "{what}: {said}");
    }
    assert!(said["env"].as_str().unwrap_or_default().starts_with("error:"), "no host environment: {said}");

    // std's clock panics on this target: the workflow task fails (and is
    // retried by Temporal) with the panic, and the log says why.
    let id = unique("std-clock");
    server.start_workflow(&tq, "std-clock", &id, &[]);
    let message = server.task_failure(&id, Duration::from_secs(60));
    assert!(message.contains("panicked") && message.contains("plugin test-workflows"), "{message}");
    assert!(message.contains("time not implemented on this platform"), "the task failure says why: {message}");
    worker.wait_for_log("workflow panicked at", Duration::from_secs(30));
    let logged = worker.log();
    let line = logged.lines().find(|l| l.contains("workflow panicked at")).unwrap();
    assert!(line.contains("time not implemented on this platform"), "the panic, on one log line: {line}");
    server.temporal(&["workflow", "terminate", "--workflow-id", &id]);
}
