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
