//! OpenTelemetry traces: a worker exporting to a collector (over gRPC and
//! over HTTP) joins the traces of a Python SDK client and worker that use
//! the SDK's `TracingInterceptor`, and a collector that is down costs
//! nothing but a warning.

#[path = "support/otlp.rs"]
mod otlp;
mod support;

use otlp::{Collector, Span, names};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{Server, Worker, plugin, python_bin, unique};

fn one<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let found: Vec<&Span> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "expected one `{name}` span, got {}: {:#?}", found.len(), names(spans));
    found[0]
}

fn all<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn traced_worker(server: &Server, queue: &str, env: &[(&str, &str)]) -> Worker {
    let plugins = [plugin("test-workflows"), plugin("test-activities")];
    let args: Vec<&str> = plugins.iter().map(|p| p.to_str().unwrap()).chain(["--no-versioning"]).collect();
    let mut env = env.to_vec();
    // Export each span batch within a fifth of a second (default 5 s).
    env.push(("OTEL_BSP_SCHEDULE_DELAY", "200"));
    Worker::start_with_env(server, queue, &args, &env)
}

/// A Python SDK client starts `traced` on Caisson with its tracing
/// interceptor; the run signals, schedules an activity on Caisson, one on
/// a Python SDK worker, a local activity and a child. Everything lands in
/// the client's trace, linked parent to child across both SDK processes
/// and the worker, with Caisson's attributes; core's metrics arrive too.
#[test]
fn a_python_client_trace_runs_through_a_caisson_workflow_its_activities_and_its_child() {
    let server = Server::start();
    let collector = Collector::grpc();
    let queue = unique("traced");
    let python_queue = unique("traced-py");
    let worker = traced_worker(&server, &queue, &[("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint)]);
    assert!(worker.log().contains("exporting traces over OTLP"), "{}", worker.log());

    let id = unique("traced-run");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/py_traced.py");
    let out = std::process::Command::new(python_bin()).arg(script).args([&server.address, &queue, &python_queue, &id]).output().unwrap();
    assert!(
        out.status.success(),
        "python client failed ({}):\n{}{}\n--- worker ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        worker.log()
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the client prints JSON");
    assert_eq!(printed["result"], "here REMOTE! local CHILD", "{printed}");
    let python: Vec<Span> = printed["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Span {
            name: s["name"].as_str().unwrap().into(),
            trace_id: s["trace_id"].as_str().unwrap().into(),
            span_id: s["span_id"].as_str().unwrap().into(),
            parent_span_id: s["parent_span_id"].as_str().unwrap().into(),
            attributes: Default::default(),
            links: vec![],
            events: vec![],
            error: false,
            status_message: String::new(),
            service: "python".into(),
        })
        .collect();
    let start = one(&python, "StartWorkflow:traced");
    let signal = one(&python, "SignalWorkflow:go");
    let remote_run = one(&python, "RunActivity:shout");

    let caisson = collector.wait_for("the whole run's spans", Duration::from_secs(30), |spans| {
        ["CompleteWorkflow:traced", "CompleteWorkflow:child-upper", "RunActivity:echo"].iter().all(|n| spans.iter().any(|s| &s.name == n))
            && spans.iter().filter(|s| s.name == "RunActivity:echo").count() == 2
    });
    let trace = &start.trace_id;
    for span in caisson.iter().filter(|s| s.attributes.get("temporalWorkflowID").is_some_and(|w| w.starts_with(&id))) {
        assert_eq!(&span.trace_id, trace, "`{}` is not in the client's trace", span.name);
        assert_eq!(span.service, "caisson");
    }
    // The run's spans hang under the client's StartWorkflow span, as the
    // SDKs' own workflow spans do.
    let run = one(&caisson, "RunWorkflow:traced");
    assert_eq!(run.parent_span_id, start.span_id);
    let tasks = all(&caisson, "WorkflowTask:traced");
    assert!(tasks.len() >= 3, "{:#?}", names(&caisson));
    for task in &tasks {
        assert_eq!(task.parent_span_id, start.span_id);
        assert_eq!(task.attributes["caisson.plugin"], "test-workflows");
        assert_eq!(task.attributes["caisson.plugin.sha256"].len(), 64);
        assert_eq!(task.attributes["caisson.tenant"], "default");
        assert_eq!(task.attributes["temporalWorkflowID"], id);
        assert!(!task.attributes["temporalRunID"].is_empty());
        assert_eq!(task.attributes["temporal.replaying"], "false");
    }
    // The guest's log line is an event of the task that logged it.
    assert_eq!(tasks.iter().filter(|t| t.events.iter().any(|e| e == "traced: go received")).count(), 1, "{tasks:#?}");
    let handled = one(&caisson, "HandleSignal:go");
    assert_eq!(handled.links, vec![signal.span_id.clone()], "the signal span links to the sender's");

    // An activity on a Python SDK worker continues from Caisson's
    // StartActivity span, through the header.
    let shout = one(&caisson, "StartActivity:shout");
    assert_eq!(shout.parent_span_id, start.span_id);
    assert_eq!(remote_run.parent_span_id, shout.span_id);
    assert_eq!(&remote_run.trace_id, trace);

    // Caisson's own activities (one remote, one local) do the same.
    let starts: Vec<&str> = all(&caisson, "StartActivity:echo").iter().map(|s| s.span_id.as_str()).collect();
    assert_eq!(starts.len(), 2);
    for attempt in all(&caisson, "RunActivity:echo") {
        assert!(starts.contains(&attempt.parent_span_id.as_str()), "RunActivity:echo under {}", attempt.parent_span_id);
        assert_eq!(attempt.attributes["caisson.plugin"], "test-activities");
        assert_eq!(attempt.attributes["temporal.activity.type"], "echo");
        assert_eq!(attempt.attributes["temporal.activity.attempt"], "1");
        assert!(!attempt.error);
    }

    // The child's run continues from StartChildWorkflow.
    let child_start = one(&caisson, "StartChildWorkflow:child-upper");
    assert_eq!(one(&caisson, "RunWorkflow:child-upper").parent_span_id, child_start.span_id);
    assert_eq!(one(&caisson, "CompleteWorkflow:traced").parent_span_id, start.span_id);

    // Core's metrics go to the same collector.
    let started = Instant::now();
    while !collector.metrics().iter().any(|m| m.contains("workflow")) {
        assert!(started.elapsed() < Duration::from_secs(30), "no workflow metrics over OTLP: {:?}", collector.metrics());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Over OTLP/HTTP, a run started without trace context (by the CLI) gets a
/// root span of its own; with no cache every task replays the run's past,
/// and those replayed tasks are marked while nothing else is reported twice.
#[test]
fn a_run_without_trace_context_gets_one_root_and_its_replays_are_marked() {
    let server = Server::start();
    let collector = Collector::http();
    let queue = unique("traced-http");
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint.as_str()), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")];
    let plugins = [plugin("test-workflows"), plugin("test-activities")];
    let args: Vec<&str> = plugins.iter().map(|p| p.to_str().unwrap()).chain(["--no-versioning", "--max-cached-workflows", "0"]).collect();
    let mut env = env.to_vec();
    env.push(("OTEL_BSP_SCHEDULE_DELAY", "200"));
    let _worker = Worker::start_with_env(&server, &queue, &args, &env);

    let id = unique("parallel");
    let doc = server.execute_id(&queue, "parallel", &id, &["3"]);
    assert_eq!(doc["result"], serde_json::json!(["item-0", "item-1", "item-2"]), "{doc:#}");
    let spans = collector.wait_for("the run's spans", Duration::from_secs(30), |spans| {
        spans.iter().any(|s| s.name == "CompleteWorkflow:parallel") && spans.iter().filter(|s| s.name == "RunActivity:echo").count() == 3
    });
    let root = one(&spans, "RunWorkflow:parallel");
    assert_eq!(root.parent_span_id, "", "a run started without context is a root");
    let tasks = all(&spans, "WorkflowTask:parallel");
    for span in spans.iter().filter(|s| s.attributes.get("temporalWorkflowID") == Some(&id)) {
        assert_eq!(span.trace_id, root.trace_id, "`{}` is not in the run's trace", span.name);
    }
    for task in &tasks {
        assert_eq!(task.parent_span_id, root.span_id);
    }
    assert!(tasks.iter().any(|t| t.attributes["temporal.replaying"] == "true"), "no replayed task among {tasks:#?}");
    assert_eq!(all(&spans, "StartActivity:echo").len(), 3, "a replay reports no command twice: {:#?}", names(&spans));

    // A query is answered in a span of the run's trace; a failed run's
    // completion is an error.
    let expense = unique("expense");
    server.start_workflow(&queue, "expense-approval", &expense, &[r#"{"id": "e1", "amount": 12.5, "timeout_ms": 600000}"#]);
    let out = server.temporal(&["workflow", "query", "--workflow-id", &expense, "--name", "get-status"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let failed = unique("fail-with");
    server.start_workflow(&queue, "fail-with", &failed, &[r#""Refused""#, r#""no funds""#]);
    let spans = collector.wait_for("the query and the failure", Duration::from_secs(30), |spans| {
        spans.iter().any(|s| s.name == "HandleQuery:get-status") && spans.iter().any(|s| s.name == "CompleteWorkflow:fail-with")
    });
    let query = one(&spans, "HandleQuery:get-status");
    let root = one(&spans, "RunWorkflow:expense-approval");
    assert_eq!((&query.trace_id, &query.parent_span_id), (&root.trace_id, &root.span_id));
    let completion = one(&spans, "CompleteWorkflow:fail-with");
    assert!(completion.error && completion.status_message == "no funds", "{completion:#?}");
}

/// A collector that is down: workflows run as before, spans are dropped,
/// and the worker says so once, not once per batch.
#[test]
fn a_collector_that_is_down_never_fails_or_slows_a_workflow() {
    let server = Server::start();
    let closed = format!("http://127.0.0.1:{}", support::free_port());
    let queue = unique("traced-down");
    let worker = traced_worker(&server, &queue, &[("OTEL_EXPORTER_OTLP_ENDPOINT", &closed)]);
    let started = Instant::now();
    for i in 0..3 {
        let doc = server.execute_id(&queue, "parallel", &unique(&format!("down-{i}")), &["4"]);
        assert_eq!(doc["result"].as_array().map(Vec::len), Some(4), "{doc:#}");
    }
    assert!(started.elapsed() < Duration::from_secs(30), "three small workflows took {:?}", started.elapsed());
    worker.wait_for_log("OTLP trace export to", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    let warnings = worker.log().matches("OTLP trace export to").count();
    assert_eq!(warnings, 1, "one warning a minute, not one per batch:\n{}", worker.log());
    assert!(!worker.log().contains("panicked"), "{}", worker.log());
}

/// A malformed endpoint or protocol stops the worker at start, naming the
/// variable.
#[test]
fn a_malformed_otlp_setting_is_refused_at_start() {
    let server = Server::start();
    for (env, expected) in [
        (("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317"), "OTEL_EXPORTER_OTLP_ENDPOINT"),
        (("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"), "OTEL_EXPORTER_OTLP_PROTOCOL"),
    ] {
        let mut command = Worker::command();
        command.env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317").env(env.0, env.1);
        command.args(["worker", "--address", &server.address, "--task-queue", "refused", plugin("test-activities").to_str().unwrap()]);
        let mut worker = Worker::spawn_command(command);
        let status = worker.wait_exit(Duration::from_secs(30));
        assert!(!status.success() && worker.log().contains(expected), "{}", worker.log());
    }
}
