//! The runnable examples of `examples/` on a real Temporal dev server
//! (issue #5). Each test runs one example the way its README does: the
//! plugins built by `cargo xtask plugins`, a `caisson worker`, and the
//! stock Temporal CLI (or the Python SDK) as the client. The examples'
//! helper servers (search service, mock LLM, Python SDK worker) are the
//! Python scripts kept in the example folders.

mod support;

use serde_json::{Value as Json, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{Server, Worker, payload_values, plugin, python_bin, unique};

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

/// The activity types scheduled in a history, in order.
fn scheduled_activities(history: &[Json]) -> Vec<String> {
    history
        .iter()
        .filter_map(|e| e.get("activityTaskScheduledEventAttributes"))
        .map(|a| a["activityType"]["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The attempt numbers of the started events of activity `activity_type`.
fn attempts_of(history: &[Json], activity_type: &str) -> Vec<u64> {
    let scheduled: Vec<String> = history
        .iter()
        .filter(|e| e["activityTaskScheduledEventAttributes"]["activityType"]["name"] == activity_type)
        .map(|e| e["eventId"].as_str().unwrap_or_default().to_owned())
        .collect();
    history
        .iter()
        .filter_map(|e| e.get("activityTaskStartedEventAttributes"))
        .filter(|a| scheduled.iter().any(|id| a["scheduledEventId"].as_str() == Some(id.as_str())))
        .map(|a| a["attempt"].as_u64().unwrap_or(1))
        .collect()
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

/// `temporal workflow signal`.
fn signal(server: &Server, id: &str, name: &str, input: &str) {
    let out = server.temporal(&["workflow", "signal", "--workflow-id", id, "--name", name, "--input", input]);
    assert!(out.status.success(), "signal {name} failed: {}", String::from_utf8_lossy(&out.stderr));
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
}

// ---------------------------------------------------------- expense approval

#[test]
fn expense_approval_waits_for_a_human_with_queries_and_a_timeout() {
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

    // Approved: queried while waiting, paid, queried after completion.
    let id = unique("expense-approved");
    server.start_workflow(&tq, "expense-approval", &id, &[&expense("E-1", 3_600_000)]);
    let pending = wait_pending(&id);
    assert_eq!(pending, json!({"id": "E-1", "state": "pending", "approver": null, "comment": null, "payment_id": null}));
    signal(&server, &id, "approve", r#"{"approver": "carol", "comment": "enjoy the conference"}"#);
    let done = result(&server.result(&id));
    assert_eq!(
        done,
        json!({"id": "E-1", "state": "paid", "approver": "carol", "comment": "enjoy the conference", "payment_id": "PAY-E-1-12050"})
    );
    assert_eq!(query(&server, &id, "status"), done, "the closed workflow still answers");
    let history = server.history(&id);
    assert_eq!(scheduled_activities(&history), ["create-expense", "request-approval", "pay-expense", "notify-employee"]);
    let signals: Vec<&Json> = history.iter().filter_map(|e| e.get("workflowExecutionSignaledEventAttributes")).collect();
    assert_eq!(signals.len(), 1);
    assert_eq!(signals[0]["signalName"], "approve");

    // Rejected: no payment.
    let id = unique("expense-rejected");
    server.start_workflow(&tq, "expense-approval", &id, &[&expense("E-2", 3_600_000)]);
    wait_pending(&id);
    signal(&server, &id, "reject", r#"{"approver": "dave", "comment": "not in budget"}"#);
    let done = result(&server.result(&id));
    assert_eq!((done["state"].as_str(), done["approver"].as_str()), (Some("rejected"), Some("dave")));
    assert_eq!(scheduled_activities(&server.history(&id)), ["create-expense", "request-approval", "notify-employee"]);

    // Nobody decides: the durable timer rejects it.
    let id = unique("expense-timeout");
    let started = Instant::now();
    let doc = server.execute_id(&tq, "expense-approval", &id, &[&expense("E-3", 1500)]);
    assert_eq!(result(&doc)["state"], "timed_out");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let history = server.history(&id);
    assert!(history.iter().any(|e| e["eventType"] == "EVENT_TYPE_TIMER_FIRED"), "the timeout is a durable timer");

    // An invalid expense fails at once, non-retryable.
    let doc = server.execute(
        &tq,
        "expense-approval",
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
