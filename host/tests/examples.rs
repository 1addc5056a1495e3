//! The runnable examples of `examples/` on a real Temporal dev server
//! (issue #5). Each test runs one example the way its README does: the
//! plugins built by `cargo xtask plugins`, a `caisson worker`, and the
//! stock Temporal CLI (or the Python SDK) as the client. The examples'
//! helper servers (search service, mock LLM, Python SDK worker) are the
//! Python scripts kept in the example folders.

mod support;

use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Script, Server, Worker, attempts_of, http_get_json, payload_values, plugin, python_bin, scheduled_activities, unique};

fn p(name: &str) -> String {
    plugin(name).display().to_string()
}

/// `examples/NAME`.
fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name)
}

fn status(doc: &Json) -> &str {
    doc["status"].as_str().unwrap_or_default()
}

fn failure(doc: &Json) -> &Json {
    &doc["closeEvent"]["workflowExecutionFailedEventAttributes"]["failure"]
}

/// A built plugin copied into `dir` with `grants` as its `NAME.toml`
/// (tests grant their own temporary directories and ports).
fn plugin_with_grants(dir: &Path, name: &str, grants: &str) -> String {
    let wasm = dir.join(format!("{name}.wasm"));
    std::fs::copy(plugin(name), &wasm).unwrap();
    std::fs::write(dir.join(format!("{name}.toml")), grants).unwrap();
    wasm.display().to_string()
}

/// A workflow's JSON result, from `temporal workflow execute/result -o json`.
fn result(doc: &Json) -> Json {
    assert_eq!(status(doc), "COMPLETED", "{doc:#}");
    doc["result"].clone()
}

/// `temporal workflow query -o json`: the first value of the answer.
fn query(server: &Server, id: &str, name: &str) -> Json {
    let out = server.temporal(&["workflow", "query", "-o", "json", "--workflow-id", id, "--name", name]);
    assert!(out.status.success(), "query {name} failed: {}", String::from_utf8_lossy(&out.stderr));
    support::first_json(&out)["queryResult"][0].clone()
}

/// `temporal workflow update execute --name decide`: (succeeded, output).
fn decide(server: &Server, id: &str, input: &str) -> (bool, String) {
    let out = server.temporal(&["workflow", "update", "execute", "-o", "json", "--workflow-id", id, "--name", "decide", "--input", input]);
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// `temporal workflow signal`.
fn signal(server: &Server, id: &str, name: &str, input: &str) {
    let out = server.temporal(&["workflow", "signal", "--workflow-id", id, "--name", name, "--input", input]);
    assert!(out.status.success(), "signal {name} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A list in a result printed by the Temporal CLI, which shows an empty
/// array as `null` (the payload itself holds `[]`).
fn list(value: &Json) -> Vec<Json> {
    value.as_array().cloned().unwrap_or_default()
}

// ---------------------------------------------------------------- order saga

#[test]
fn order_saga_compensates_failed_orders() {
    let server = Server::start();
    let tq = unique("orders");
    let _worker = Worker::start(&server, &tq, &[&p("order-workflow"), &p("order-activities")]);
    let order = |id: &str, card: &str, address: &str| {
        json!({
            "id": id, "customer": "ada", "amount_cents": 4999, "card": card, "address": address,
            "lines": [{"sku": "book-42", "quantity": 2}, {"sku": "pen-7", "quantity": 1}],
        })
        .to_string()
    };

    // Every step succeeds.
    let id = unique("order-ok");
    let doc = server.execute_id(&tq, "order-saga", &id, &[&order("A-1", "4242-4242-4242-4242", "1 Main St")]);
    let receipt = result(&doc);
    assert_eq!(receipt["order_id"], "A-1", "{receipt}");
    assert!(receipt["tracking_number"].as_str().unwrap().starts_with("TRK-"), "{receipt}");
    assert_eq!(scheduled_activities(&server.history(&id)), ["reserve-inventory", "charge-payment", "ship-order"]);

    // The gateway times out once: the retry policy charges on attempt 2.
    let id = unique("order-flaky");
    let doc = server.execute_id(&tq, "order-saga", &id, &[&order("A-2", "4242-flaky", "1 Main St")]);
    result(&doc);
    assert_eq!(attempts_of(&server.history(&id), "charge-payment"), [2], "the started event records the last attempt");

    // The card is declined: release the inventory, nothing to refund.
    let id = unique("order-declined");
    let doc = server.execute_id(&tq, "order-saga", &id, &[&order("A-3", "4000-0000-0000-0002", "1 Main St")]);
    assert_eq!(status(&doc), "FAILED", "{doc:#}");
    assert_eq!(failure(&doc)["applicationFailureInfo"]["type"], "CardDeclined", "{doc:#}");
    assert_eq!(scheduled_activities(&server.history(&id)), ["reserve-inventory", "charge-payment", "release-inventory"]);
    assert_eq!(attempts_of(&server.history(&id), "charge-payment"), [1], "CardDeclined is not retried");

    // Shipping fails: refund, then release (newest first).
    let id = unique("order-unshippable");
    let doc = server.execute_id(&tq, "order-saga", &id, &[&order("A-4", "4242-4242-4242-4242", "nowhere")]);
    assert_eq!(status(&doc), "FAILED", "{doc:#}");
    let f = failure(&doc);
    assert_eq!(f["applicationFailureInfo"]["type"], "ShippingUnavailable", "{doc:#}");
    assert_eq!(
        f["applicationFailureInfo"]["details"][0],
        json!({"failed_step": "ship-order", "compensated": ["refund-payment", "release-inventory"]}),
        "{doc:#}"
    );
    assert_eq!(
        scheduled_activities(&server.history(&id)),
        ["reserve-inventory", "charge-payment", "ship-order", "refund-payment", "release-inventory"]
    );

    // Cancelled while waiting for the carrier: the pickup timer is
    // cancelled, the payment refunded and the inventory released, and the
    // workflow ends CANCELED.
    let id = unique("order-cancelled");
    let mut waiting = serde_json::from_str::<Json>(&order("A-5", "4242-4242-4242-4242", "1 Main St")).unwrap();
    waiting["pickup_after_ms"] = json!(3_600_000);
    server.start_workflow(&tq, "order-saga", &id, &[&waiting.to_string()]);
    server.wait_for_event(&id, "EVENT_TYPE_TIMER_STARTED", Duration::from_secs(30));
    let out = server.temporal(&["workflow", "cancel", "--workflow-id", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = server.result(&id);
    assert_eq!(status(&doc), "CANCELED", "{doc:#}");
    let history = server.history(&id);
    assert_eq!(scheduled_activities(&history), ["reserve-inventory", "charge-payment", "refund-payment", "release-inventory"]);
    assert!(history.iter().any(|e| e["eventType"] == "EVENT_TYPE_TIMER_CANCELED"), "the pickup timer was cancelled");
    let completed = history.iter().filter(|e| e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_COMPLETED").count();
    assert_eq!(completed, 4, "both compensations ran to completion");
}

// ---------------------------------------------------------- expense approval

#[test]
fn expense_approval_is_decided_by_a_validated_update_with_queries_and_a_timeout() {
    let server = Server::start();
    let tq = unique("expenses");
    let _worker = Worker::start(&server, &tq, &[&p("expense-workflow"), &p("expense-activities")]);
    let expense = |id: &str, timeout_ms: u64| {
        json!({"id": id, "employee": "ada", "amount_cents": 12050, "description": "conference ticket", "approval_timeout_ms": timeout_ms})
            .to_string()
    };
    let wait_pending = |id: &str| {
        let started = Instant::now();
        loop {
            let s = query(&server, id, "status");
            if s["state"] == "pending" {
                return s;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{id} never became pending: {s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    // Refused, then approved: the validator refuses a self-approval (no
    // trace in history); the accepted decision returns the new status;
    // the expense is paid and still answers queries after completion.
    let id = unique("expense-approved");
    server.start_workflow(&tq, "process-expense", &id, &[&expense("E-1", 3_600_000)]);
    let pending = wait_pending(&id);
    assert_eq!(pending, json!({"id": "E-1", "state": "pending", "approver": null, "comment": null, "payment_id": null}));
    let (ok, out) = decide(&server, &id, r#"{"approver": "ada", "approved": true}"#);
    assert!(!ok && out.contains("ada filed expense E-1 and cannot decide on it"), "a self-approval is refused: {out}");
    let (ok, out) = decide(&server, &id, r#"{"approver": "carol", "approved": true, "comment": "enjoy the conference"}"#);
    assert!(ok, "{out}");
    let returned: Json = serde_json::Deserializer::from_str(&out).into_iter().next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(
        returned["result"],
        json!({"id": "E-1", "state": "approved", "approver": "carol", "comment": "enjoy the conference", "payment_id": null}),
        "the update returns the new status: {out}"
    );
    let done = result(&server.result(&id));
    assert_eq!(
        done,
        json!({"id": "E-1", "state": "paid", "approver": "carol", "comment": "enjoy the conference", "payment_id": "PAY-E-1-12050"})
    );
    assert_eq!(query(&server, &id, "status"), done, "the closed workflow still answers");
    let history = server.history(&id);
    assert_eq!(scheduled_activities(&history), ["create-expense", "request-approval", "pay-expense", "notify-employee"]);
    let accepted: Vec<&Json> = history.iter().filter_map(|e| e.get("workflowExecutionUpdateAcceptedEventAttributes")).collect();
    assert_eq!(accepted.len(), 1, "only the valid decision is in history");
    assert_eq!(accepted[0]["acceptedRequest"]["input"]["name"], "decide");
    assert!(!serde_json::to_string(&history).unwrap().contains("SelfApproval"), "the refusal left no trace");

    // Two approvers decide at once (the Python SDK client): one decision
    // is accepted, the second is refused naming the first.
    let id = unique("expense-raced");
    server.start_workflow(&tq, "process-expense", &id, &[&expense("E-2", 3_600_000)]);
    wait_pending(&id);
    let winner = support::two_approvers_decide_at_once(&server, &id, "E-2");
    let by = winner["approver"].as_str().unwrap();
    let done = result(&server.result(&id));
    assert_eq!(done["approver"].as_str(), Some(by), "{done}");
    let expected_activities: &[&str] = if winner["state"] == "approved" {
        &["create-expense", "request-approval", "pay-expense", "notify-employee"]
    } else {
        &["create-expense", "request-approval", "notify-employee"]
    };
    assert_eq!(scheduled_activities(&server.history(&id)), expected_activities, "{done}");

    // Rejected: no payment.
    let id = unique("expense-rejected");
    server.start_workflow(&tq, "process-expense", &id, &[&expense("E-5", 3_600_000)]);
    wait_pending(&id);
    let (ok, out) = decide(&server, &id, r#"{"approver": "dave", "approved": false, "comment": "not in budget"}"#);
    assert!(ok && out.contains(r#""state": "rejected""#), "{out}");
    let done = result(&server.result(&id));
    assert_eq!((done["state"].as_str(), done["approver"].as_str()), (Some("rejected"), Some("dave")));
    assert_eq!(scheduled_activities(&server.history(&id)), ["create-expense", "request-approval", "notify-employee"]);

    // Nobody decides: the durable timer rejects it.
    let id = unique("expense-timeout");
    let started = Instant::now();
    let doc = server.execute_id(&tq, "process-expense", &id, &[&expense("E-3", 1500)]);
    assert_eq!(result(&doc)["state"], "timed_out");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let history = server.history(&id);
    assert!(history.iter().any(|e| e["eventType"] == "EVENT_TYPE_TIMER_FIRED"), "the timeout is a durable timer");

    // An invalid expense fails at once, non-retryable.
    let doc = server.execute(
        &tq,
        "process-expense",
        &[r#"{"id": "E-4", "employee": "ada", "amount_cents": 0, "description": "", "approval_timeout_ms": 1000}"#],
    );
    assert_eq!(status(&doc), "FAILED", "{doc:#}");
    assert_eq!(failure(&doc)["applicationFailureInfo"]["type"], "InvalidExpense", "{doc:#}");
}

// ---------------------------------------------------------------- onboarding

/// The e-mails in an outbox directory: (file stem, subject), sorted by name.
fn outbox(dir: &Path) -> Vec<(String, Json)> {
    let mut mails: Vec<(String, Json)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()))
        .collect();
    mails.sort_by(|a, b| a.0.cmp(&b.0));
    mails
}

#[test]
fn onboarding_javascript_workflow_sleeps_durably_between_python_emails() {
    let server = Server::start();
    let tq = unique("onboarding");
    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().join("outbox");
    std::fs::create_dir(&mail_dir).unwrap();
    let email = plugin_with_grants(
        dir.path(),
        "email-activities",
        &format!("dirs = [{{ host = {:?}, guest = \"/outbox\", access = \"read-write\" }}]\n", mail_dir.display().to_string()),
    );
    // The JS workflow with its own NAME.toml: determinism = "virtual".
    let _worker = Worker::start(&server, &tq, &[&p("onboarding-workflow"), &email]);
    let employee = |id: &str, email: &str, follow_up_ms: u64| {
        json!({"id": id, "name": "Ada", "email": email, "follow_up_after_ms": follow_up_ms}).to_string()
    };

    // Activated during the sleep: first-week tips.
    let id = unique("onboard-ada");
    server.start_workflow(&tq, "onboard-employee", &id, &[&employee("emp-1", "ada@example.com", 3000)]);
    server.wait_for_event(&id, "EVENT_TYPE_TIMER_STARTED", Duration::from_secs(60));
    let waiting = query(&server, &id, "status");
    assert_eq!(waiting["stage"], "waiting", "{waiting}");
    assert_eq!(waiting["emails_sent"].as_array().unwrap().len(), 1, "{waiting}");
    assert!(waiting["follow_up_at"].as_str().unwrap().starts_with("20"), "workflow time as an ISO date: {waiting}");
    signal(&server, &id, "account-activated", "{}");
    let done = result(&server.result(&id));
    assert_eq!(done["employee_id"], "emp-1");
    assert_eq!(done["activated"], true, "{done}");
    let sent: Vec<String> = done["emails_sent"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_owned()).collect();
    assert_eq!(sent.len(), 2, "{done}");
    assert_eq!(query(&server, &id, "status")["stage"], "done", "queried after completion");
    let history = server.history(&id);
    let timer = history.iter().find_map(|e| e.get("timerStartedEventAttributes")).unwrap();
    assert_eq!(timer["startToFireTimeout"], "3s", "the sleep is a durable timer: {timer}");
    assert!(history.iter().any(|e| e["eventType"] == "EVENT_TYPE_TIMER_FIRED"));
    assert_eq!(scheduled_activities(&history), ["send-email", "send-email"]);
    let mails = outbox(&mail_dir);
    assert_eq!(mails.iter().map(|m| m.0.clone()).collect::<Vec<_>>(), sent, "the Python activity wrote both messages");
    assert_eq!(mails[0].1["subject"], "Welcome to the team, Ada!");
    assert_eq!(mails[1].1["subject"], "Tips for your first week");
    assert_eq!(mails[1].1["to"], "ada@example.com");

    // Never activated: a reminder.
    let id = unique("onboard-bob");
    let doc = server.execute_id(&tq, "onboard-employee", &id, &[&employee("emp-2", "bob@example.com", 1000)]);
    let done = result(&doc);
    assert_eq!(done["activated"], false);
    let mail = outbox(&mail_dir).into_iter().find(|m| m.0 == done["emails_sent"][1]).unwrap();
    assert_eq!(mail.1["subject"], "Reminder: activate your account");

    // Errors: the JS workflow's ApplicationFailure, and the Python activity's
    // non-retryable InvalidAddress (one attempt) failing the workflow.
    let doc = server.execute(&tq, "onboard-employee", &[&employee("emp-3", "no-address", 1000)]);
    assert_eq!(status(&doc), "FAILED", "{doc:#}");
    assert_eq!(failure(&doc)["applicationFailureInfo"]["type"], "InvalidEmployee", "{doc:#}");
    let id = unique("onboard-bad");
    let doc = server.execute_id(&tq, "onboard-employee", &id, &[&employee("emp-4", "x@y", 1000)]);
    assert_eq!(status(&doc), "FAILED", "{doc:#}");
    assert_eq!(failure(&doc)["applicationFailureInfo"]["type"], "InvalidAddress", "{doc:#}");
    assert_eq!(attempts_of(&server.history(&id), "send-email"), [1]);
}

// ---------------------------------------------------------------- monitoring

/// Closed runs of `workflow_type`, oldest first: (workflow id, run id).
fn completed_runs(server: &Server, workflow_type: &str) -> Vec<(String, String)> {
    let query = format!("WorkflowType = '{workflow_type}' AND ExecutionStatus = 'Completed'");
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

/// Waits for a completed run of `workflow_type` not in `seen` whose result
/// satisfies `wanted`; returns its workflow id and result (every run
/// looked at joins `seen`).
fn wait_for_run(server: &Server, workflow_type: &str, seen: &mut Vec<String>, wanted: impl Fn(&Json) -> bool) -> (String, Json) {
    let started = Instant::now();
    let mut results = Vec::new();
    loop {
        for (id, run) in completed_runs(server, workflow_type) {
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
        assert!(started.elapsed() < Duration::from_secs(40), "no wanted {workflow_type} run within 40 s; results: {results:#?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn monitoring_runs_from_a_schedule_that_is_created_updated_and_deleted() {
    let server = Server::start();
    let tq = unique("monitor");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("search-data.json");
    std::fs::copy(example("monitoring").join("search-data.json"), &data).unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let search = Script::start(&example("monitoring").join("search_server.py"), &["--port", "0", "--data", data.to_str().unwrap()]);
    let url = search.url();
    // Exactly the search service on the network, its address in the
    // environment, one directory for the state.
    let activities = plugin_with_grants(
        dir.path(),
        "monitor-activities",
        &format!(
            "allow_outbound = [{url:?}]\nenv = {{ SEARCH_SERVICE = {url:?} }}\ndirs = [{{ host = {:?}, guest = \"/state\", access = \"read-write\" }}]\n",
            state.display().to_string()
        ),
    );
    let _worker = Worker::start(&server, &tq, &[&p("monitor-workflow"), &activities]);
    let schedule_id = unique("wasm-news-monitor");
    let schedule = |verb: &str, task: &str, every: &str| {
        let input = format!(r#"{{"task_id": "{task}"}}"#);
        let out = server.temporal(&[
            "schedule",
            verb,
            "--schedule-id",
            &schedule_id,
            "--interval",
            every,
            "--overlap-policy",
            "Skip",
            "--task-queue",
            &tq,
            "--type",
            "monitor",
            "--workflow-id",
            &schedule_id,
            "--input",
            &input,
        ]);
        assert!(out.status.success(), "schedule {verb}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let mut seen = Vec::new();

    // Created: the first pass records the baseline, notifies nobody.
    schedule("create", "wasm-news", "2s");
    let (_, first) = wait_for_run(&server, "monitor", &mut seen, |_| true);
    assert_eq!(
        (first["task_id"].as_str(), first["total"].as_u64(), first["notified"].as_bool()),
        (Some("wasm-news"), Some(2), Some(false)),
        "{first}"
    );
    assert!(state.join("wasm-news.json").is_file(), "the state is kept in the granted directory");

    // A new document appears: the next pass notices and notifies.
    let mut docs: Json = serde_json::from_slice(&std::fs::read(&data).unwrap()).unwrap();
    docs["documents"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "d4", "title": "WebAssembly for durable workflows", "url": "https://example.com/d4"}));
    std::fs::write(&data, docs.to_string()).unwrap();
    let (changed_id, changed) = wait_for_run(&server, "monitor", &mut seen, |r| r["notified"] == true);
    assert_eq!(list(&changed["added"]), [json!("WebAssembly for durable workflows")], "{changed}");
    assert_eq!(changed["total"], 3);
    let notifications = http_get_json(&format!("{url}/notifications"));
    assert_eq!(notifications.as_array().unwrap().len(), 1, "one change, one notification: {notifications}");
    assert_eq!(notifications[0]["task_id"], "wasm-news");
    assert_eq!(notifications[0]["added"][0]["id"], "d4", "{notifications}");
    assert_eq!(
        scheduled_activities(&server.history(&changed_id)),
        ["fetch-task", "search", "compare-with-previous", "notify", "save-results"]
    );
    let stored: Json = serde_json::from_slice(&std::fs::read(state.join("wasm-news.json")).unwrap()).unwrap();
    assert_eq!(stored.as_array().unwrap().len(), 3);

    // Updated: another task, another interval.
    schedule("update", "temporal-news", "3s");
    let described = support::first_json(&server.temporal(&["schedule", "describe", "-o", "json", "--schedule-id", &schedule_id]));
    assert_eq!(described["schedule"]["spec"]["interval"][0]["interval"], "3s", "{described:#}");
    assert_eq!(payload_values(&described["schedule"]["action"]["startWorkflow"]["input"]), [json!({"task_id": "temporal-news"})]);
    let (other_id, other) = wait_for_run(&server, "monitor", &mut seen, |r| r["task_id"] == "temporal-news");
    assert_eq!((other["total"].as_u64(), other["notified"].as_bool()), (Some(1), Some(false)), "{other}");
    assert_eq!(scheduled_activities(&server.history(&other_id)), ["fetch-task", "search", "compare-with-previous", "save-results"]);

    // Deleted: gone from the list, and no further runs.
    let out = server.temporal(&["schedule", "delete", "--schedule-id", &schedule_id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!server.temporal(&["schedule", "describe", "--schedule-id", &schedule_id]).status.success());
    let listed = server.temporal(&["schedule", "list", "-o", "json"]);
    assert!(!String::from_utf8_lossy(&listed.stdout).contains(&schedule_id));
    std::thread::sleep(Duration::from_millis(500));
    let runs = completed_runs(&server, "monitor").len();
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(completed_runs(&server, "monitor").len(), runs, "no run after the schedule was deleted");
}

// ------------------------------------------------------------------ research

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

/// Grants for research-activities: the mock LLM at `llm` and nothing else,
/// the example's knowledge base read-only.
fn research_grants(llm: &str) -> String {
    let origin = llm.trim_end_matches('/');
    format!(
        "allow_outbound = [{origin:?}]\nenv = {{ LLM_URL = \"{origin}/v1/chat/completions\" }}\ndirs = [{{ host = {:?}, guest = \"/kb\" }}]\n",
        example("research").join("kb").display().to_string()
    )
}

#[test]
fn research_orchestration_with_llm_retries_heartbeats_and_human_review() {
    let server = Server::start();
    let tq = unique("research");
    let dir = tempfile::tempdir().unwrap();
    // The mock LLM is overloaded for its first two requests and streams
    // each answer in chunks 100 ms apart.
    let llm = Script::start(&example("research").join("mock_llm.py"), &["--port", "0", "--fail-first", "2", "--chunk-delay", "0.1"]);
    let activities = plugin_with_grants(dir.path(), "research-activities", &research_grants(&llm.url()));
    let _worker = Worker::start(&server, &tq, &[&p("research-workflow"), &activities]);

    // Driven end to end by the example's Python SDK starter: start, follow
    // the status query, request changes once, approve, read the report.
    let id = unique("research");
    let out = Command::new(python_bin())
        .arg(example("research").join("starter.py"))
        .args(["--address", &server.address, "--task-queue", &tq, "--workflow-id", &id])
        .args(["--topic", "WebAssembly plugins", "--feedback", "mention fuel limits", "--reviewer", "ada"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "starter.py failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: Json = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(report["topic"], "WebAssembly plugins");
    assert_eq!(report["approved_by"], "ada");
    assert_eq!(report["revisions"], 1);
    assert_eq!(report["questions"].as_array().unwrap().len(), 3, "{report:#}");
    let sources: Vec<&str> = report["sources"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(sources.contains(&"kb/webassembly-components.md") && sources.contains(&"kb/capability-sandboxing.md"), "{sources:?}");
    let text = report["report"].as_str().unwrap();
    assert!(text.starts_with("Report: WebAssembly plugins.") && text.contains("kb/durable-execution.md"), "{text}");
    assert_eq!(report["llm_attempts"], 6, "four LLM calls, the first one on its third attempt");
    assert!(stdout.contains("revised:   Revised draft on WebAssembly plugins, addressing: mention fuel limits."), "{stdout}");
    assert_eq!(http_get_json(&format!("{}/stats", llm.url())), json!({"requests": 6, "failed": 2}));

    let history = server.history(&id);
    let scheduled = scheduled_activities(&history);
    assert_eq!(scheduled.iter().filter(|a| *a == "search-knowledge-base").count(), 3, "{scheduled:?}");
    assert_eq!(scheduled.iter().filter(|a| *a == "llm-complete").count(), 4, "plan, draft, revise, synthesize: {scheduled:?}");
    assert_eq!(attempts_of(&history, "llm-complete"), [3, 1, 1, 1]);
    let retried = history.iter().filter_map(|e| e.get("activityTaskStartedEventAttributes")).find(|a| a["attempt"] == 3).unwrap();
    assert_eq!(retried["lastFailure"]["applicationFailureInfo"]["type"], "LlmUnavailable", "{retried:#}");
    let signals: Vec<&str> = history
        .iter()
        .filter_map(|e| e.get("workflowExecutionSignaledEventAttributes"))
        .map(|s| s["signalName"].as_str().unwrap())
        .collect();
    assert_eq!(signals, ["request-changes", "approve"]);
    // The synthesis streams for longer than the 1 s heartbeat timeout:
    // only the per-chunk heartbeats keep the attempt alive.
    let synthesis =
        history.iter().rev().find(|e| e["activityTaskScheduledEventAttributes"]["activityType"]["name"] == "llm-complete").unwrap();
    let completed = history
        .iter()
        .find(|e| e["activityTaskCompletedEventAttributes"]["scheduledEventId"] == synthesis["eventId"])
        .expect("the synthesis completed");
    let took = rfc3339_millis(completed["eventTime"].as_str().unwrap()) - rfc3339_millis(synthesis["eventTime"].as_str().unwrap());
    assert!(took > 1200, "the synthesis took {took} ms, not longer than the heartbeat timeout");
    assert_eq!(synthesis["activityTaskScheduledEventAttributes"]["heartbeatTimeout"], "1s");
    assert_eq!(query(&server, &id, "status")["stage"], "done");

    // Nobody reviews: the durable review deadline fails the workflow.
    let doc = server.execute(&tq, "research", &[r#"{"topic": "durable execution", "review_timeout_ms": 1000}"#]);
    assert_eq!(status(&doc), "FAILED", "{doc:#}");
    assert_eq!(failure(&doc)["applicationFailureInfo"]["type"], "ReviewTimeout", "{doc:#}");
}

// --------------------------------------------------------------------- batch

#[test]
fn batch_processes_pages_as_children_in_parallel_with_continue_as_new() {
    let server = Server::start();
    let tq = unique("batch");
    let _worker = Worker::start(&server, &tq, &[&p("batch-workflow"), &p("batch-activities")]);
    let items = ["Alpha", "Beta", "Gamma", "Delta", "bad-item", "Epsilon", "Zeta", "Eta", "Theta", "Iota"];
    let job = json!({"items": items, "page_size": 4, "offset": 0, "totals": null}).to_string();

    let id = unique("batch");
    server.start_workflow(&tq, "process-batch", &id, &[&job]);
    let progress = query(&server, &id, "progress");
    assert_eq!(progress["total"], 10, "{progress}");
    let summary = result(&server.result(&id));
    let chars: usize = items.iter().filter(|i| !i.starts_with("bad")).map(|i| i.len()).sum();
    assert_eq!(summary, json!({"processed": 9, "failed": ["bad-item"], "pages": 3, "total_chars": chars}));
    assert_eq!(query(&server, &id, "progress"), json!({"offset": 10, "total": 10, "processed": 9, "failed": ["bad-item"], "pages": 3}));

    // One run per page: two continued as new, the last one completed.
    let out = server.temporal(&["workflow", "list", "-o", "json", "--query", &format!("WorkflowId = '{id}'")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW").count(), 2, "{text}");
    assert_eq!(text.matches("WORKFLOW_EXECUTION_STATUS_COMPLETED").count(), 1, "{text}");

    // Each page is a child workflow whose items were all scheduled in
    // one workflow task: in parallel.
    for (n, expected) in [(1, &items[0..4]), (2, &items[4..8]), (3, &items[8..10])] {
        let page_id = format!("{id}-page-{n}");
        let history = server.history(&page_id);
        let started = &history[0]["workflowExecutionStartedEventAttributes"];
        assert_eq!(started["parentWorkflowExecution"]["workflowId"], id.as_str(), "{page_id} is a child of the batch");
        let scheduled: Vec<&Json> = history.iter().filter_map(|e| e.get("activityTaskScheduledEventAttributes")).collect();
        let tasks: std::collections::BTreeSet<&str> =
            scheduled.iter().map(|a| a["workflowTaskCompletedEventId"].as_str().unwrap()).collect();
        assert_eq!(scheduled.len(), expected.len(), "{page_id}");
        assert_eq!(tasks.len(), 1, "{page_id}: all items scheduled at once");
        let inputs: Vec<Json> = scheduled.iter().map(|a| payload_values(&a["input"])[0].clone()).collect();
        assert_eq!(inputs, expected.iter().map(|i| json!(i)).collect::<Vec<_>>());
        let page = result(&server.result(&page_id));
        assert_eq!(page["number"], n);
    }
    let page2 = result(&server.result(&format!("{id}-page-2")));
    assert_eq!(list(&page2["failed"]), [json!("bad-item")]);
    assert_eq!(page2["results"][0]["normalized"], "epsilon");
}

// ------------------------------------------------------------------ polyglot

#[test]
fn polyglot_workflow_calls_rust_javascript_python_and_a_python_sdk_worker() {
    let server = Server::start();
    let tq = unique("polyglot");
    let legacy_tq = unique("polyglot-legacy");
    let legacy = Script::start(&example("polyglot").join("legacy_worker.py"), &["--address", &server.address, "--task-queue", &legacy_tq]);
    assert_eq!(legacy.ready, "ready");
    let worker = Worker::start(&server, &tq, &[&p("polyglot-workflow"), &p("text-rs"), &p("text-js"), &p("text-py")]);

    let text = "Durable workflows replay history. Workflows call activities, and activities do the work! \
                Plugins run sandboxed: plugins reach only what is granted.";
    let title = "Plugins & <Durable> Workflows";
    let id = unique("text-report");
    let doc = server.execute_id(&tq, "text-report", &id, &[&json!({"title": title, "text": text, "archive_queue": legacy_tq}).to_string()]);
    let report = result(&doc);

    // Rust.
    assert_eq!(report["stats"], json!({"words": 21, "sentences": 3, "chars": text.chars().count(), "longest_word": "activities"}));
    // Python.
    let keywords: Vec<(String, u64)> =
        list(&report["keywords"]).iter().map(|k| (k["word"].as_str().unwrap().to_owned(), k["count"].as_u64().unwrap())).collect();
    let expected = [("workflows", 2), ("activities", 2), ("plugins", 2), ("durable", 1), ("replay", 1)];
    assert_eq!(keywords, expected.map(|(w, c)| (w.to_owned(), c)));
    // JavaScript.
    assert_eq!(report["slug"], "plugins-durable-workflows");
    let html = report["html"].as_str().unwrap();
    assert!(html.starts_with(r#"<article id="plugins-durable-workflows">"#), "{html}");
    assert!(html.contains("<h1>Plugins &amp; &lt;Durable&gt; Workflows</h1>"), "escaped: {html}");
    assert!(html.contains("21 words in 3 sentences") && html.contains("<li>workflows <small>×2</small></li>"), "{html}");
    // The Python SDK worker, on its own task queue.
    assert_eq!(report["archive"]["worker"], "temporalio-python");
    assert!(report["archive"]["archive_id"].as_str().unwrap().starts_with("ARCH-"), "{report:#}");

    let history = server.history(&id);
    let queues: Vec<(String, String)> = history
        .iter()
        .filter_map(|e| e.get("activityTaskScheduledEventAttributes"))
        .map(|a| (a["activityType"]["name"].as_str().unwrap().to_owned(), a["taskQueue"]["name"].as_str().unwrap().to_owned()))
        .collect();
    let on = |q: &str| q.to_owned();
    assert_eq!(
        queues,
        [
            ("word-stats".into(), on(&tq)),
            ("top-keywords".into(), on(&tq)),
            ("slugify".into(), on(&tq)),
            ("render-html".into(), on(&tq)),
            ("archive-report".into(), on(&legacy_tq)),
        ]
    );
    // Each activity ran in its own language's plugin.
    let log = worker.log();
    for (plugin, line) in [("text-rs", "(Rust)"), ("text-py", "(Python)"), ("text-js", "(JavaScript)")] {
        assert!(log.lines().any(|l| l.contains(line) && l.contains(&format!("plugin=\"{plugin}\""))), "{plugin}: {log}");
    }
}
