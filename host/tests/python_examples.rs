//! The Temporal Python SDK ports of `examples/python/` on a real dev
//! server (issue #14, item 4). Each test runs one port twice, driven by
//! the same Temporal CLI commands: on a `caisson worker` serving its
//! workflow and activity plugins, and on a plain Temporal Python SDK
//! worker running the very same `workflow.py` and `activities.py` with
//! their import lines changed back (`examples/python/sdk_worker.py`).
//! Both must give the same results: the ports differ from SDK code by
//! their imports only.

mod support;

use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Script, Server, Worker, attempts_of, http_get_json, plugin, python_bin, scheduled_activities, unique};

/// `examples/python/NAME`.
fn port_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python").join(name)
}

/// `examples/NAME` (the Rust examples' helper servers and data).
fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name)
}

fn p(name: &str) -> String {
    plugin(name).display().to_string()
}

/// A built plugin copied into `dir` with `grants` as its `NAME.toml`
/// (tests grant their own temporary directories and ports).
fn plugin_with_grants(dir: &Path, name: &str, grants: &str) -> String {
    let wasm = dir.join(format!("{name}.wasm"));
    std::fs::copy(plugin(name), &wasm).unwrap();
    std::fs::write(dir.join(format!("{name}.toml")), grants).unwrap();
    wasm.display().to_string()
}

/// The port of a server script's URL (`http://127.0.0.1:PORT`).
fn port_of(url: &str) -> &str {
    url.rsplit(':').next().unwrap()
}

/// A port served by a plain Temporal Python SDK worker on `task_queue`,
/// with `env` as its activities' configuration (what the plugin's
/// manifest grants on Caisson).
fn sdk_worker(server: &Server, scenario: &str, task_queue: &str, env: &[(&str, &str)]) -> Script {
    let folder = port_dir(scenario).display().to_string();
    let script = port_dir("sdk_worker.py");
    let worker = Script::start_with_env(&script, &[&folder, "--address", &server.address, "--task-queue", task_queue], env);
    assert_eq!(worker.ready, "ready", "the Python SDK worker for {scenario} did not start");
    worker
}

fn status(doc: &Json) -> &str {
    doc["status"].as_str().unwrap_or_default()
}

/// A workflow's JSON result, from `temporal workflow execute/result -o json`.
fn result(doc: &Json) -> Json {
    assert_eq!(status(doc), "COMPLETED", "{doc:#}");
    doc["result"].clone()
}

/// The failure a run closed with (as JSON text: its message, type and
/// causes).
fn failure_text(doc: &Json) -> String {
    assert_eq!(status(doc), "FAILED", "{doc:#}");
    doc["closeEvent"]["workflowExecutionFailedEventAttributes"]["failure"].to_string()
}

/// `temporal workflow query -o json`: the first value of the answer.
fn query(server: &Server, id: &str, name: &str) -> Json {
    let out = server.temporal(&["workflow", "query", "-o", "json", "--workflow-id", id, "--name", name]);
    assert!(out.status.success(), "query {name} failed: {}", String::from_utf8_lossy(&out.stderr));
    support::first_json(&out)["queryResult"][0].clone()
}

/// `temporal workflow signal`.
fn signal(server: &Server, id: &str, name: &str, input: &str) {
    let out = server.temporal(&["workflow", "signal", "--workflow-id", id, "--name", name, "--input", input]);
    assert!(out.status.success(), "signal {name} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// `temporal workflow update execute --name decide -o json`: (accepted, output).
fn decide(server: &Server, id: &str, input: &str) -> (bool, String) {
    let out = server.temporal(&["workflow", "update", "execute", "-o", "json", "--workflow-id", id, "--name", "decide", "--input", input]);
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn event_types(history: &[Json]) -> Vec<String> {
    history.iter().map(|e| e["eventType"].as_str().unwrap_or_default().to_owned()).collect()
}

/// Milliseconds since the epoch of an RFC 3339 UTC timestamp
/// (`2026-11-22T07:13:31.692716711Z`).
fn rfc3339_millis(t: &str) -> i64 {
    let (date, time) = t.split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let time = time.trim_end_matches('Z');
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let h: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let ms: i64 = format!("{frac:0<3}")[..3].parse().unwrap();
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    (days * 86400 + h[0] * 3600 + h[1] * 60 + h[2]) * 1000 + ms
}

// ------------------------------------------------------------------ research

/// Grants for py-research-activities: the mock LLM at `llm` and nothing
/// else (a `tcp://` pattern naming `localhost`: urllib connects through
/// sockets and resolves the name first), the knowledge base read-only.
fn research_grants(llm: &str) -> String {
    let port = port_of(llm);
    format!(
        "allow_outbound = [\"tcp://localhost:{port}\"]\nenv = {{ LLM_URL = \"http://localhost:{port}/v1/chat/completions\", KB_DIR = \"/kb\" }}\n\
         dirs = [{{ host = {:?}, guest = \"/kb\" }}]\n",
        example("research").join("kb").display().to_string()
    )
}

/// The mock LLM: overloaded for its first `fail_first` requests, each
/// answer streamed in chunks 250 ms apart.
fn mock_llm(fail_first: u32) -> Script {
    Script::start(
        &example("research").join("mock_llm.py"),
        &["--port", "0", "--fail-first", &fail_first.to_string(), "--chunk-delay", "0.25"],
    )
}

/// One research run against a fresh mock LLM that fails twice: the report,
/// with the retries, heartbeats and parallel searches checked in history.
fn research_run(server: &Server, tq: &str, llm: &Script) -> Json {
    let id = unique("py-research");
    let report = result(&server.execute_id(tq, "ResearchWorkflow", &id, &[r#"{"topic": "WebAssembly plugins"}"#]));
    assert_eq!(report["topic"], "WebAssembly plugins");
    assert_eq!(report["questions"].as_array().map(Vec::len), Some(3), "{report:#}");
    let sources: Vec<&str> = report["sources"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(sources.contains(&"kb/webassembly-components.md") && sources.contains(&"kb/durable-execution.md"), "{sources:?}");
    let summary = report["summary"].as_str().unwrap();
    assert!(summary.starts_with("Report: WebAssembly plugins.") && summary.contains("kb/capability-sandboxing.md"), "{summary}");
    assert_eq!(report["llm_attempts"], 4, "two LLM calls, the first on its third attempt: {report:#}");
    assert_eq!(http_get_json(&format!("{}/stats", llm.url())), json!({"requests": 4, "failed": 2}));

    let history = server.history(&id);
    let scheduled = scheduled_activities(&history);
    assert_eq!(scheduled.iter().filter(|a| *a == "search_knowledge_base").count(), 3, "{scheduled:?}");
    assert_eq!(attempts_of(&history, "llm_complete"), [3, 1], "the plan succeeded on its third (last allowed) attempt");
    let retried = history.iter().filter_map(|e| e.get("activityTaskStartedEventAttributes")).find(|a| a["attempt"] == 3).unwrap();
    assert_eq!(retried["lastFailure"]["applicationFailureInfo"]["type"], "LlmUnavailable", "{retried:#}");
    let llm_calls: Vec<&Json> =
        history.iter().filter(|e| e["activityTaskScheduledEventAttributes"]["activityType"]["name"] == "llm_complete").collect();
    let options = &llm_calls[0]["activityTaskScheduledEventAttributes"];
    assert_eq!(options["heartbeatTimeout"], "2s", "{options:#}");
    assert_eq!(options["retryPolicy"]["maximumAttempts"], 3, "{options:#}");
    // The summary streams for longer than the heartbeat timeout: only the
    // per-chunk heartbeats keep the attempt alive.
    let summary_call = llm_calls[1];
    let completed = history
        .iter()
        .find(|e| e["activityTaskCompletedEventAttributes"]["scheduledEventId"] == summary_call["eventId"])
        .expect("the summary completed");
    let took = rfc3339_millis(completed["eventTime"].as_str().unwrap()) - rfc3339_millis(summary_call["eventTime"].as_str().unwrap());
    assert!(took > 2500, "the summary took {took} ms, not longer than its 2 s heartbeat timeout");
    assert_eq!(query(server, &id, "status")["stage"], "done");
    report
}

/// The LLM stays overloaded: after three attempts the workflow fails.
fn research_gives_up(server: &Server, tq: &str) -> String {
    let id = unique("py-research-overloaded");
    let failure = failure_text(&server.execute_id(tq, "ResearchWorkflow", &id, &[r#"{"topic": "durable execution"}"#]));
    assert!(failure.contains("LlmUnavailable") && failure.contains("HTTP 503"), "{failure}");
    assert_eq!(attempts_of(&server.history(&id), "llm_complete"), [3], "RetryPolicy(maximum_attempts=3)");
    failure
}

#[test]
fn python_research_retries_the_llm_three_times_and_heartbeats_while_it_streams() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();

    let (llm, overloaded) = (mock_llm(2), mock_llm(100));
    let caisson = |tq: &str, llm: &Script, sub: &str| {
        let sub = dir.path().join(sub);
        std::fs::create_dir(&sub).unwrap();
        let activities = plugin_with_grants(&sub, "py-research-activities", &research_grants(&llm.url()));
        Worker::start(&server, tq, &[&p("py-research-workflow"), &activities])
    };
    let (tq, tq_overloaded) = (unique("py-research"), unique("py-research-overloaded"));
    let on_caisson = {
        let _worker = caisson(&tq, &llm, "ok");
        research_run(&server, &tq, &llm)
    };
    {
        let _worker = caisson(&tq_overloaded, &overloaded, "overloaded");
        research_gives_up(&server, &tq_overloaded);
    }

    // The same files on the Python SDK, against fresh mocks.
    let kb = example("research").join("kb").display().to_string();
    let (llm, overloaded) = (mock_llm(2), mock_llm(100));
    let sdk = |tq: &str, llm: &Script| {
        let url = format!("{}/v1/chat/completions", llm.url());
        sdk_worker(&server, "research", tq, &[("LLM_URL", &url), ("KB_DIR", &kb)])
    };
    let (tq, tq_overloaded) = (unique("sdk-research"), unique("sdk-research-overloaded"));
    let on_sdk = {
        let _worker = sdk(&tq, &llm);
        research_run(&server, &tq, &llm)
    };
    {
        let _worker = sdk(&tq_overloaded, &overloaded);
        research_gives_up(&server, &tq_overloaded);
    }
    assert_eq!(on_caisson, on_sdk, "the same report on Caisson and on the Python SDK");
}

// ---------------------------------------------------------------- monitoring

/// Closed runs of `MonitorWorkflow` on `task_queue`, oldest first:
/// (workflow id, run id).
fn completed_runs(server: &Server, task_queue: &str) -> Vec<(String, String)> {
    let query = format!("WorkflowType = 'MonitorWorkflow' AND TaskQueue = '{task_queue}' AND ExecutionStatus = 'Completed'");
    let out = server.temporal(&["workflow", "list", "-o", "json", "--query", &query]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut runs: Vec<(String, String, String)> = serde_json::Deserializer::from_str(&text)
        .into_iter::<Json>()
        .filter_map(Result::ok)
        .flat_map(|doc| if let Json::Array(items) = doc { items } else { vec![doc] })
        .map(|e| {
            let s = |v: &Json| v.as_str().unwrap_or_default().to_owned();
            (s(&e["startTime"]), s(&e["execution"]["workflowId"]), s(&e["execution"]["runId"]))
        })
        .collect();
    runs.sort();
    runs.into_iter().map(|(_, id, run)| (id, run)).collect()
}

/// Waits for a completed run not in `seen` whose result satisfies
/// `wanted`; its workflow id and result (every run looked at joins `seen`).
fn wait_for_run(server: &Server, task_queue: &str, seen: &mut Vec<String>, wanted: impl Fn(&Json) -> bool) -> (String, Json) {
    let started = Instant::now();
    let mut results = Vec::new();
    loop {
        for (id, run) in completed_runs(server, task_queue) {
            if seen.contains(&run) {
                continue;
            }
            seen.push(run.clone());
            let doc = support::first_json(&server.temporal(&["workflow", "result", "-o", "json", "--workflow-id", &id, "--run-id", &run]));
            let value = result(&doc);
            if wanted(&value) {
                return (id, value);
            }
            results.push(value);
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no wanted MonitorWorkflow run within 60 s; results: {results:#?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A search service on a fresh copy of the example's data, with its own
/// state folder for the activities, under `dir`.
struct SearchService {
    server: Script,
    data: PathBuf,
    state: PathBuf,
}

fn search_service(dir: &Path) -> SearchService {
    std::fs::create_dir_all(dir).unwrap();
    let data = dir.join("search-data.json");
    std::fs::copy(example("monitoring").join("search-data.json"), &data).unwrap();
    let state = dir.join("state");
    std::fs::create_dir(&state).unwrap();
    let server = Script::start(&example("monitoring").join("search_server.py"), &["--port", "0", "--data", data.to_str().unwrap()]);
    SearchService { server, data, state }
}

/// A schedule runs the monitor every 2 s: a baseline pass, a document
/// added (the next pass notifies), a quiet pass; then the schedule is
/// deleted. The three passes' results.
fn monitoring_passes(server: &Server, tq: &str, service: &SearchService) -> Vec<Json> {
    let schedule_id = unique("py-wasm-news-monitor");
    let out = server.temporal(&[
        "schedule",
        "create",
        "--schedule-id",
        &schedule_id,
        "--interval",
        "2s",
        "--overlap-policy",
        "Skip",
        "--task-queue",
        tq,
        "--type",
        "MonitorWorkflow",
        "--workflow-id",
        &schedule_id,
        "--input",
        r#"{"task_id": "wasm-news"}"#,
    ]);
    assert!(out.status.success(), "schedule create: {}", String::from_utf8_lossy(&out.stderr));
    let mut seen = Vec::new();

    let (first_id, first) = wait_for_run(server, tq, &mut seen, |_| true);
    assert_eq!((first["total"].as_u64(), first["notified"].as_bool()), (Some(2), Some(false)), "{first}");
    assert!(first_id.starts_with(&schedule_id), "started by the schedule: {first_id}");
    assert!(service.state.join("wasm-news.json").is_file(), "the state is kept in the state folder");

    let mut docs: Json = serde_json::from_slice(&std::fs::read(&service.data).unwrap()).unwrap();
    docs["documents"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "d4", "title": "WebAssembly for durable workflows", "url": "https://example.com/d4"}));
    std::fs::write(&service.data, docs.to_string()).unwrap();
    let (changed_id, changed) = wait_for_run(server, tq, &mut seen, |r| r["notified"] == true);
    let url = service.server.url();
    let notifications = http_get_json(&format!("{url}/notifications"));
    assert_eq!(notifications.as_array().map(Vec::len), Some(1), "one change, one notification: {notifications}");
    assert_eq!(notifications[0]["task_id"], "wasm-news");
    assert_eq!(notifications[0]["added"][0]["id"], "d4", "{notifications}");
    assert_eq!(scheduled_activities(&server.history(&changed_id)), ["fetch_task", "search", "compare_with_previous", "notify"]);
    let stored: Json = serde_json::from_slice(&std::fs::read(service.state.join("wasm-news.json")).unwrap()).unwrap();
    assert_eq!(stored.as_array().map(Vec::len), Some(3), "{stored}");

    let (quiet_id, quiet) = wait_for_run(server, tq, &mut seen, |_| true);
    assert_eq!(scheduled_activities(&server.history(&quiet_id)), ["fetch_task", "search", "compare_with_previous"], "no change, no notify");

    let out = server.temporal(&["schedule", "delete", "--schedule-id", &schedule_id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!server.temporal(&["schedule", "describe", "--schedule-id", &schedule_id]).status.success());
    vec![first, changed, quiet]
}

#[test]
fn python_monitoring_runs_from_a_schedule_and_notifies_on_change() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();

    let service = search_service(&dir.path().join("caisson"));
    let url = service.server.url();
    let port = port_of(&url);
    // The search service only (by name: urllib resolves before it
    // connects), its address in the environment, one folder for the state.
    let grants = format!(
        "allow_outbound = [\"tcp://localhost:{port}\"]\nenv = {{ SEARCH_SERVICE = \"http://localhost:{port}\", STATE_DIR = \"/state\" }}\n\
         dirs = [{{ host = {:?}, guest = \"/state\", access = \"read-write\" }}]\n",
        service.state.display().to_string()
    );
    let activities = plugin_with_grants(dir.path(), "py-monitor-activities", &grants);
    let tq = unique("py-monitor");
    let on_caisson = {
        let _worker = Worker::start(&server, &tq, &[&p("py-monitor-workflow"), &activities]);
        monitoring_passes(&server, &tq, &service)
    };
    // (The CLI prints an empty list as null; the payload holds [].)
    let report = |total: u32, added: Json, notified: bool| json!({"task_id": "wasm-news", "query": "webassembly", "total": total, "added": added, "removed": null, "notified": notified});
    assert_eq!(
        on_caisson,
        [report(2, Json::Null, false), report(3, json!(["WebAssembly for durable workflows"]), true), report(3, Json::Null, false)]
    );

    let service = search_service(&dir.path().join("sdk"));
    let (url, state) = (service.server.url(), service.state.display().to_string());
    let tq = unique("sdk-monitor");
    let on_sdk = {
        let _worker = sdk_worker(&server, "monitoring", &tq, &[("SEARCH_SERVICE", &url), ("STATE_DIR", &state)]);
        monitoring_passes(&server, &tq, &service)
    };
    assert_eq!(on_caisson, on_sdk, "the same passes on Caisson and on the Python SDK");
}

// ---------------------------------------------------------------- order saga

fn order(id: &str, card: &str, address: &str, sku: &str) -> String {
    json!({"id": id, "customer": "ada", "lines": [{"sku": sku, "quantity": 2}], "amount_cents": 4999, "card": card, "address": address})
        .to_string()
}

/// Every path of the saga: paid, a flaky card (retried), a declined card,
/// an address nobody ships to, an item out of stock, and an order
/// cancelled while it waits for the carrier. Each outcome with the
/// activities it scheduled.
fn saga_paths(server: &Server, tq: &str) -> Vec<Json> {
    let mut outcomes = Vec::new();
    for (name, card, address, sku) in [
        ("A-1", "4242-4242-4242-4242", "1 Main St", "book-42"),
        ("A-2", "4242-4242-4242-4242", "nowhere", "book-42"),
        ("A-3", "4242-flaky", "1 Main St", "book-42"),
        ("A-4", "4000-0000-0000-0002", "1 Main St", "book-42"),
        ("A-6", "4242-4242-4242-4242", "1 Main St", "sold-out-lamp"),
    ] {
        let id = unique(&format!("py-order-{name}"));
        let doc = server.execute_id(tq, "OrderSagaWorkflow", &id, &[&order(name, card, address, sku)]);
        let history = server.history(&id);
        let outcome = if status(&doc) == "COMPLETED" {
            doc["result"].clone()
        } else {
            let failure = &doc["closeEvent"]["workflowExecutionFailedEventAttributes"]["failure"];
            json!({"message": failure["message"], "type": failure["applicationFailureInfo"]["type"],
                   "details": failure["applicationFailureInfo"]["details"]})
        };
        outcomes.push(json!({"order": name, "status": status(&doc), "outcome": outcome,
                             "activities": scheduled_activities(&history), "charge_attempts": attempts_of(&history, "charge_payment")}));
    }

    // Cancelled while waiting for the pickup: the timer is cancelled, both
    // compensations run to completion, the run ends CANCELED.
    let id = unique("py-order-A-5");
    let mut input: Json = serde_json::from_str(&order("A-5", "4242-4242-4242-4242", "1 Main St", "book-42")).unwrap();
    input["pickup_after_ms"] = json!(3_600_000);
    server.start_workflow(tq, "OrderSagaWorkflow", &id, &[&input.to_string()]);
    let timer = server.wait_for_event(&id, "EVENT_TYPE_TIMER_STARTED", Duration::from_secs(60));
    assert!(timer["userMetadata"]["summary"]["data"].is_string(), "the timer has its summary: {timer:#}");
    let out = server.temporal(&["workflow", "cancel", "--workflow-id", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = server.result(&id);
    assert_eq!(status(&doc), "CANCELED", "{doc:#}");
    let history = server.history(&id);
    let types = event_types(&history);
    let at = |t: &str| types.iter().position(|x| x == t).unwrap_or_else(|| panic!("no {t}: {types:?}"));
    assert!(at("EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED") < at("EVENT_TYPE_TIMER_CANCELED"), "{types:?}");
    assert_eq!(types.iter().filter(|t| *t == "EVENT_TYPE_ACTIVITY_TASK_COMPLETED").count(), 4, "two steps, two compensations: {types:?}");
    outcomes.push(json!({"order": "A-5", "status": status(&doc), "activities": scheduled_activities(&history)}));
    outcomes
}

#[test]
fn python_order_saga_compensates_failures_and_cancellation() {
    let server = Server::start();
    let tq = unique("py-orders");
    let on_caisson = {
        let _worker = Worker::start(&server, &tq, &[&p("py-order-workflow"), &p("py-order-activities")]);
        saga_paths(&server, &tq)
    };
    let by_order = |name: &str| on_caisson.iter().find(|o| o["order"] == name).unwrap().clone();
    assert_eq!(
        by_order("A-1")["outcome"],
        json!({"order_id": "A-1", "payment_id": "P-864A5106", "reservation_id": "R-A0AA60A6", "tracking_number": "TRK-A8BCEDED"}),
        "the ids of the Rust example's activities"
    );
    let unshippable = by_order("A-2");
    assert_eq!(
        unshippable["outcome"],
        json!({"message": "ship_order failed: no carrier delivers to `nowhere`; compensated: [refund_payment, release_inventory]",
               "type": "ShippingUnavailable",
               "details": [{"failed_step": "ship_order", "compensated": ["refund_payment", "release_inventory"]}]})
    );
    assert_eq!(
        unshippable["activities"],
        json!(["reserve_inventory", "charge_payment", "ship_order", "refund_payment", "release_inventory"]),
        "compensated newest first"
    );
    assert_eq!(by_order("A-3")["charge_attempts"], json!([2]), "the flaky gateway is retried");
    assert_eq!(by_order("A-4")["outcome"]["type"], "CardDeclined");
    assert_eq!(by_order("A-4")["activities"], json!(["reserve_inventory", "charge_payment", "release_inventory"]));
    assert_eq!(by_order("A-6")["activities"], json!(["reserve_inventory"]), "nothing to undo");
    assert_eq!(by_order("A-5")["status"], "CANCELED");
    assert_eq!(by_order("A-5")["activities"], json!(["reserve_inventory", "charge_payment", "refund_payment", "release_inventory"]));

    let tq = unique("sdk-orders");
    let on_sdk = {
        let _worker = sdk_worker(&server, "order-saga", &tq, &[]);
        saga_paths(&server, &tq)
    };
    assert_eq!(on_caisson, on_sdk, "the same outcomes on Caisson and on the Python SDK");
}

// ---------------------------------------------------------- expense approval

fn expense(id: &str, timeout_ms: u64) -> String {
    json!({"id": id, "employee": "ada", "amount_cents": 12050, "description": "conference ticket", "approval_timeout_ms": timeout_ms})
        .to_string()
}

fn wait_pending(server: &Server, id: &str) -> Json {
    let started = Instant::now();
    loop {
        let s = query(server, id, "status");
        if s["state"] == "pending" {
            return s;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{id} never became pending: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The expense paths: a note and a refused self-approval, then an accepted
/// decision; two approvers at once; a withdrawal; the deadline; an
/// invalid expense. The statuses that must match between runtimes.
fn expense_paths(server: &Server, tq: &str) -> Vec<Json> {
    let mut statuses = Vec::new();

    let id = unique("py-expense-approved");
    server.start_workflow(tq, "ExpenseWorkflow", &id, &[&expense("E-1", 3_600_000)]);
    statuses.push(wait_pending(server, &id));
    signal(server, &id, "add_note", r#""receipt attached""#);
    let (ok, out) = decide(server, &id, r#"{"approver": "ada", "approved": true}"#);
    assert!(!ok && out.contains("ada filed expense E-1 and cannot decide on it"), "a self-approval is refused: {out}");
    let (ok, out) = decide(server, &id, r#"{"approver": "carol", "approved": true, "comment": "enjoy"}"#);
    assert!(ok, "{out}");
    let returned: Json = serde_json::Deserializer::from_str(&out).into_iter().next().and_then(Result::ok).unwrap_or_default();
    statuses.push(returned["result"].clone());
    let done = result(&server.result(&id));
    assert_eq!(query(server, &id, "status"), done, "the closed workflow still answers");
    statuses.push(done);
    let history = server.history(&id);
    assert_eq!(scheduled_activities(&history), ["create_expense", "request_approval", "pay_expense", "notify_employee"]);
    let accepted: Vec<&Json> = history.iter().filter_map(|e| e.get("workflowExecutionUpdateAcceptedEventAttributes")).collect();
    assert_eq!(accepted.len(), 1, "only the valid decision is in history");
    assert!(!serde_json::to_string(&history).unwrap().contains("SelfApproval"), "the refusal left no trace");

    // Two approvers decide at once (the Python SDK client): one decision
    // is accepted, the second is refused naming the first.
    let id = unique("py-expense-raced");
    server.start_workflow(tq, "ExpenseWorkflow", &id, &[&expense("E-2", 3_600_000)]);
    wait_pending(server, &id);
    let winner = support::two_approvers_decide_at_once(server, &id, "E-2");
    let by = winner["approver"].as_str().unwrap();
    assert_eq!(result(&server.result(&id))["approver"].as_str(), Some(by));

    // Withdrawn by the employee (a signal): nothing is paid.
    let id = unique("py-expense-withdrawn");
    server.start_workflow(tq, "ExpenseWorkflow", &id, &[&expense("E-5", 3_600_000)]);
    wait_pending(server, &id);
    signal(server, &id, "withdraw", r#""plans changed""#);
    statuses.push(result(&server.result(&id)));
    assert_eq!(scheduled_activities(&server.history(&id)), ["create_expense", "request_approval", "notify_employee"]);

    // Nobody decides: the durable timer ends the wait.
    let id = unique("py-expense-timeout");
    statuses.push(result(&server.execute_id(tq, "ExpenseWorkflow", &id, &[&expense("E-3", 1500)])));
    assert!(event_types(&server.history(&id)).contains(&"EVENT_TYPE_TIMER_FIRED".to_owned()), "the deadline is a durable timer");

    // An invalid expense fails at once, not retried.
    let id = unique("py-expense-invalid");
    let input = r#"{"id": "E-4", "employee": "ada", "amount_cents": 0, "description": "", "approval_timeout_ms": 1000}"#;
    let failure = failure_text(&server.execute_id(tq, "ExpenseWorkflow", &id, &[input]));
    assert!(failure.contains("InvalidExpense") && failure.contains("expense E-4 needs an amount and a description"), "{failure}");
    assert_eq!(attempts_of(&server.history(&id), "create_expense"), [1]);
    statuses
}

#[test]
fn python_expense_approval_with_a_validated_update_signals_and_queries() {
    let server = Server::start();
    let tq = unique("py-expenses");
    let on_caisson = {
        let _worker = Worker::start(&server, &tq, &[&p("py-expense-workflow"), &p("py-expense-activities")]);
        expense_paths(&server, &tq)
    };
    let status = |state: &str, approver: Json, comment: Json, payment: Json, notes: Json| json!({"id": "E-1", "state": state, "approver": approver, "comment": comment, "payment_id": payment, "notes": notes});
    // (The CLI prints an empty list as null; the payload holds [].)
    assert_eq!(on_caisson[0], status("pending", Json::Null, Json::Null, Json::Null, Json::Null));
    assert_eq!(
        on_caisson[1],
        status("approved", json!("carol"), json!("enjoy"), Json::Null, json!(["receipt attached"])),
        "the update's answer"
    );
    assert_eq!(on_caisson[2], status("paid", json!("carol"), json!("enjoy"), json!("PAY-E-1-12050"), json!(["receipt attached"])));
    assert_eq!((on_caisson[3]["state"].as_str(), on_caisson[3]["comment"].as_str()), (Some("withdrawn"), Some("plans changed")));
    assert_eq!(on_caisson[4]["state"], "timed_out");

    let tq = unique("sdk-expenses");
    let on_sdk = {
        let _worker = sdk_worker(&server, "expense-approval", &tq, &[]);
        expense_paths(&server, &tq)
    };
    assert_eq!(on_caisson, on_sdk, "the same statuses on Caisson and on the Python SDK");
}

// ---------------------------------------------------------- the diffs

/// Every port (a folder of `examples/python/` with a `workflow.py`)
/// differs from its Temporal SDK version by import lines only, each
/// `from temporalio...` becoming `from caisson...`, and its README shows
/// that diff as `sdk_worker.py --print-diff` prints it.
#[test]
fn each_port_differs_from_its_sdk_version_by_its_imports_as_its_readme_shows() {
    let mut ports: Vec<PathBuf> =
        std::fs::read_dir(port_dir("")).unwrap().flatten().map(|e| e.path()).filter(|p| p.join("workflow.py").is_file()).collect();
    ports.sort();
    let names: Vec<String> = ports.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["expense-approval", "monitoring", "order-saga", "research"]);
    for port in &ports {
        let out = Command::new(python_bin()).arg(port_dir("sdk_worker.py")).arg(port).arg("--print-diff").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let diff = String::from_utf8_lossy(&out.stdout).into_owned();
        let changed = |sign: char| -> Vec<String> {
            diff.lines()
                .filter(|l| l.starts_with(sign) && !l.starts_with("+++") && !l.starts_with("---"))
                .map(|l| l[1..].to_owned())
                .collect()
        };
        let (removed, added) = (changed('-'), changed('+'));
        assert!(!removed.is_empty(), "{}: no `# was:` line", port.display());
        assert!(removed.iter().all(|l| l.starts_with("from temporalio")), "{}: only imports are changed back:\n{diff}", port.display());
        let expected: Vec<String> = removed.iter().map(|l| l.replacen("from temporalio", "from caisson", 1)).collect();
        assert_eq!(added, expected, "{}: each import names the same thing in caisson", port.display());
        let readme = std::fs::read_to_string(port.join("README.md")).unwrap();
        assert!(readme.contains(&diff), "{}/README.md does not show the current diff:\n{diff}", port.display());
    }
}
