//! Drop-in plugins and multi-tenant workers on a real Temporal server
//! (issue: drop-in plugins and sandboxed multi-tenant workers).

mod support;

use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{Server, Worker, free_port, plugin, publish, unique};

fn status(doc: &Json) -> &str {
    doc["status"].as_str().unwrap_or_default()
}

fn result(doc: &Json) -> Json {
    doc["result"].clone()
}

/// What the activity returned, from a `run-activity` workflow's result.
fn activity_result(doc: &Json) -> Json {
    serde_json::from_str(doc["result"].as_str().unwrap_or_else(|| panic!("no result: {doc:#}"))).unwrap()
}

fn spec(activity: &str, args: Json, task_queue: &str, extra: Json) -> String {
    let mut s = json!({
        "activity_type": activity,
        "args": args.as_array().unwrap().iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "task_queue": task_queue,
        "start_to_close_ms": 20000,
    });
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    s.to_string()
}

fn once() -> Json {
    json!({ "retry": { "initial_interval_ms": 100, "backoff_coefficient": 2.0, "maximum_interval_ms": 400, "maximum_attempts": 1, "non_retryable": [] } })
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn temporal_json(server: &Server, args: &[&str]) -> Json {
    support::first_json(&server.temporal(args))
}

#[test]
fn dropped_plugins_are_served_within_two_seconds_and_broken_ones_are_reported() {
    let server = Server::start();
    let tq = unique("drop");
    let dir = tempfile::tempdir().unwrap();
    let worker = Worker::start(&server, &tq, &["--watch", &s(dir.path())]);

    // A copy in progress (a chunk every 150 ms, slower than a scan) is
    // not loaded before it is complete.
    let bytes = std::fs::read(plugin("test-activities")).unwrap();
    {
        use std::io::Write;
        let mut file = std::fs::File::create(dir.path().join("test-activities.wasm")).unwrap();
        for chunk in bytes.chunks(bytes.len() / 10 + 1) {
            file.write_all(chunk).unwrap();
            file.flush().unwrap();
            std::thread::sleep(Duration::from_millis(150));
        }
    }
    worker.wait_for_log("plugin test-activities added", Duration::from_secs(3));
    assert!(!worker.log().contains("test-activities.wasm not loaded"), "loaded half a file:\n{}", worker.log());

    // Published by rename: served within 2 s.
    let dropped = Instant::now();
    publish(&plugin("test-workflows"), &dir.path().join("test-workflows.wasm"));
    worker.wait_for_log("plugin test-workflows added", Duration::from_secs(2));
    let registered_in = dropped.elapsed();
    let doc = server.execute(&tq, "parallel", &["3"]);
    assert_eq!(status(&doc), "COMPLETED", "{doc:#}");
    assert_eq!(result(&doc), json!(["item-0", "item-1", "item-2"]));
    eprintln!("registered {registered_in:?} after the drop");

    // Invalid and refused plugins are reported by file and reason and not
    // registered; the worker keeps serving.
    std::fs::write(dir.path().join("broken.wasm"), b"\0asm but not really").unwrap();
    publish(&plugin("clock-workflow"), &dir.path().join("clock-workflow.wasm"));
    worker.wait_for_log("broken.wasm not loaded", Duration::from_secs(3));
    worker.wait_for_log("clock-workflow.wasm not loaded", Duration::from_secs(3));
    let log = worker.log();
    let refusal = log.lines().find(|l| l.contains("clock-workflow.wasm not loaded")).unwrap();
    assert!(refusal.contains("wasi:clocks/wall-clock"), "{refusal}");
    let doc = server.execute(&tq, "parallel", &["2"]);
    assert_eq!(status(&doc), "COMPLETED", "{doc:#}");
}

#[test]
fn replaced_plugins_are_versioned_by_hash_and_never_silently_wrong() {
    let server = Server::start();
    let tq = unique("replace");
    let dir = tempfile::tempdir().unwrap();
    publish(&plugin("test-workflows"), &dir.path().join("test-workflows.wasm"));
    publish(&plugin("test-activities"), &dir.path().join("test-activities.wasm"));
    // Unversioned (versioned serving keeps runs on their version: see
    // versioning.rs), and no cache: every task replays from history on
    // the version loaded now.
    let worker = Worker::start(&server, &tq, &["--watch", &s(dir.path()), "--max-cached-workflows", "0", "--no-versioning"]);
    let (versioned, changed) = (unique("versioned"), unique("changed"));
    server.start_workflow(&tq, "versioned", &versioned, &[]);
    server.start_workflow(&tq, "changed", &changed, &[]);
    server.wait_for_event(&versioned, "EVENT_TYPE_TIMER_STARTED", Duration::from_secs(20));
    server.wait_for_event(&changed, "EVENT_TYPE_TIMER_STARTED", Duration::from_secs(20));

    publish(&plugin("test-workflows-v2"), &dir.path().join("test-workflows.wasm"));
    worker.wait_for_log("plugin test-workflows replaced: sha256 ", Duration::from_secs(3));

    // Patched code replays the old history correctly...
    let doc = temporal_json(&server, &["workflow", "result", "-o", "json", "--workflow-id", &versioned]);
    assert_eq!(status(&doc), "COMPLETED", "{doc:#}");
    assert_eq!(result(&doc), json!("v1 done"));
    // ...changed code fails the task with core's non-determinism message.
    let message = server.task_failure(&changed, Duration::from_secs(20));
    assert!(message.contains("does not match"), "{message}");
    // New runs take the new code.
    let doc = server.execute(&tq, "versioned", &[]);
    assert_eq!(result(&doc), json!("V2 done"));
}

#[test]
fn removed_plugins_drain_in_flight_work_then_stop_taking_new_work() {
    let server = Server::start();
    let tq = unique("remove");
    let dir = tempfile::tempdir().unwrap();
    publish(&plugin("test-workflows"), &dir.path().join("test-workflows.wasm"));
    publish(&plugin("test-activities"), &dir.path().join("test-activities.wasm"));
    let worker = Worker::start(&server, &tq, &["--watch", &s(dir.path())]);

    let in_flight = unique("in-flight");
    server.start_workflow(&tq, "run-activity", &in_flight, &[&spec("sleep-ms", json!([2500]), &tq, json!({}))]);
    std::thread::sleep(Duration::from_millis(1000));
    std::fs::remove_file(dir.path().join("test-activities.wasm")).unwrap();
    worker.wait_for_log("plugin test-activities removed", Duration::from_secs(2));
    let doc = server.result(&in_flight);
    assert_eq!(status(&doc), "COMPLETED", "the attempt in flight finishes: {doc:#}");
    assert_eq!(activity_result(&doc), json!(2500));

    // New work for its types is not taken (retryably: another worker, or
    // the plugin coming back, can serve it).
    let after = unique("after");
    server.start_workflow(&tq, "run-activity", &after, &[&spec("echo", json!(["back"]), &tq, json!({}))]);
    let started = Instant::now();
    let failure = loop {
        let described = temporal_json(&server, &["workflow", "describe", "-o", "json", "--workflow-id", &after]);
        if let Some(message) = described["pendingActivities"][0]["lastFailure"]["message"].as_str() {
            break message.to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no failed attempt: {described:#}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(failure.contains("no plugin serves activity type `echo`"), "{failure}");
    publish(&plugin("test-activities"), &dir.path().join("test-activities.wasm"));
    let doc = server.result(&after);
    assert_eq!(activity_result(&doc), json!("back"), "served again once the plugin is back: {doc:#}");
}

/// Two tenants in one worker process.
struct Tenants {
    _root: tempfile::TempDir,
    manifest: PathBuf,
    alpha_tq: String,
    beta_tq: String,
    beta_data: PathBuf,
}

fn two_tenants() -> Tenants {
    let root = tempfile::tempdir().unwrap();
    let (alpha_tq, beta_tq) = (unique("alpha"), unique("beta"));
    let dir = |p: &str| {
        let d = root.path().join(p);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let (alpha_plugins, beta_plugins, alpha_data, beta_data) =
        (dir("alpha/plugins"), dir("beta/plugins"), dir("alpha/data"), dir("beta/data"));
    std::fs::write(alpha_data.join("note.txt"), "alpha's note").unwrap();
    std::fs::write(beta_data.join("secret.txt"), "beta's secret").unwrap();
    publish(&plugin("test-workflows"), &alpha_plugins.join("test-workflows.wasm"));
    publish(&plugin("hostile-activities"), &alpha_plugins.join("hostile-activities.wasm"));
    std::fs::write(
        alpha_plugins.join("hostile-activities.toml"),
        format!("dirs = [{{ host = \"{}\", guest = \"/data\" }}]\n", s(&alpha_data)),
    )
    .unwrap();
    // Alpha asks for beta's folder and a host it was not given: refused.
    publish(&plugin("greet-activity"), &alpha_plugins.join("greet-activity.wasm"));
    std::fs::write(alpha_plugins.join("greet-activity.toml"), format!("dirs = [{{ host = \"{}\", guest = \"/b\" }}]\n", s(&beta_data)))
        .unwrap();
    publish(&plugin("net-activities"), &alpha_plugins.join("net-activities.wasm"));
    std::fs::write(alpha_plugins.join("net-activities.toml"), "allow_outbound = [\"http://127.0.0.1:9\"]\n").unwrap();
    publish(&plugin("test-workflows"), &beta_plugins.join("test-workflows.wasm"));
    publish(&plugin("test-activities"), &beta_plugins.join("test-activities.wasm"));
    let manifest = root.path().join("caisson.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"
[[tenant]]
name = "alpha"
task_queue = "{alpha_tq}"
plugin_dir = "alpha/plugins"
max_concurrent_activities = 3
max_cached_workflows = 50
[tenant.limits]
allow_dirs = ["alpha/data"]
memory_mb = 32
timeout = "4s"

[[tenant]]
name = "beta"
task_queue = "{beta_tq}"
plugin_dir = "beta/plugins"
[tenant.limits]
allow_dirs = ["beta/data"]
allow_outbound = ["http://127.0.0.1:9"]
"#
        ),
    )
    .unwrap();
    Tenants { _root: root, manifest, alpha_tq, beta_tq, beta_data }
}

#[test]
fn tenants_cannot_reach_each_other_or_slow_each_other_down() {
    let server = Server::start();
    let t = two_tenants();
    let worker = Worker::start(&server, "unused", &["--manifest", &s(&t.manifest)]);
    let log = worker.log();
    for (plugin, needle) in [
        ("greet-activity", format!("the directory {}: it is outside the tenant's allow_dirs", s(&t.beta_data))),
        ("net-activities", "to reach `http://127.0.0.1:9`: not covered by the tenant's allow_outbound (none)".to_owned()),
    ] {
        let line = log.lines().find(|l| l.contains(&format!("{plugin}.wasm not loaded"))).unwrap_or_else(|| panic!("{log}"));
        assert!(line.contains("tenant `alpha` does not allow plugin") && line.contains(&needle), "{line}");
    }

    // Alpha sees its own folder, not beta's.
    let doc = server.execute(&t.alpha_tq, "run-activity", &[&spec("read-file", json!(["/data/note.txt"]), &t.alpha_tq, once())]);
    assert_eq!(activity_result(&doc), json!("alpha's note"), "{doc:#}");
    let beta_secret = s(&t.beta_data.join("secret.txt"));
    for path in [beta_secret.as_str(), "/data/../beta/data/secret.txt", "../../beta/data/secret.txt"] {
        let doc = server.execute(&t.alpha_tq, "run-activity", &[&spec("read-file", json!([path]), &t.alpha_tq, once())]);
        assert_eq!(status(&doc), "FAILED", "alpha read {path}: {doc:#}");
        assert!(!doc.to_string().contains("beta's secret"));
    }

    // Alpha runs three infinite loops and a memory bomb at once; beta's
    // workflows stay within the bound.
    let hogs: Vec<String> = (0..3).map(|i| format!("{}-spin-{i}", t.alpha_tq)).collect();
    for id in &hogs {
        server.start_workflow(&t.alpha_tq, "run-activity", id, &[&spec("spin", json!([]), &t.alpha_tq, once())]);
    }
    let bomb = format!("{}-bomb", t.alpha_tq);
    server.start_workflow(&t.alpha_tq, "run-activity", &bomb, &[&spec("alloc-mb", json!([512]), &t.alpha_tq, once())]);
    std::thread::sleep(Duration::from_millis(500));
    let mut slowest = Duration::ZERO;
    for _ in 0..3 {
        let started = Instant::now();
        let doc = server.execute(&t.beta_tq, "parallel", &["5"]);
        slowest = slowest.max(started.elapsed());
        assert_eq!(status(&doc), "COMPLETED", "{doc:#}");
    }
    eprintln!("beta's slowest 5-activity workflow while alpha hogs the worker: {slowest:?}");
    assert!(slowest < Duration::from_secs(3), "beta was slowed to {slowest:?}");

    // Alpha's failures are alpha's: its loops hit alpha's 4 s ceiling, its
    // bomb alpha's 32 MiB.
    for id in &hogs {
        let doc = server.result(id);
        assert_eq!(status(&doc), "FAILED", "{doc:#}");
        assert!(doc.to_string().contains("timeout of 4s"), "{doc:#}");
    }
    let doc = server.result(&bomb);
    assert!(doc.to_string().contains("memory limit of 32 MiB"), "{doc:#}");
    let listed = server.temporal(&["workflow", "list", "-o", "json", "--query", "ExecutionStatus = 'Failed'"]);
    let failed = String::from_utf8_lossy(&listed.stdout);
    assert!(!failed.contains(&t.beta_tq), "a beta workflow failed: {failed}");
}

#[test]
fn two_workers_share_a_queue_and_a_sigkill_loses_nothing() {
    let server = Server::start();
    let tq = unique("pair");
    let plugins = [s(&plugin("test-workflows")), s(&plugin("test-activities"))];
    let args: Vec<&str> = plugins.iter().map(String::as_str).collect();
    let mut first = Worker::start(&server, &tq, &args);
    let second = Worker::start(&server, &tq, &args);
    let ids: Vec<String> = (0..16).map(|i| format!("{tq}-{i}")).collect();
    for id in &ids {
        server.start_workflow(&tq, "versioned", id, &[]);
    }
    for id in &ids {
        server.wait_for_event(id, "EVENT_TYPE_TIMER_STARTED", Duration::from_secs(30));
    }
    let identity_of = |id: &str| -> Vec<String> {
        server
            .history(id)
            .iter()
            .filter(|e| e["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_COMPLETED")
            .filter_map(|e| e["workflowTaskCompletedEventAttributes"]["identity"].as_str().map(str::to_owned))
            .collect()
    };
    let served_by: Vec<String> = ids.iter().flat_map(|id| identity_of(id)).collect();
    let (a, b) = (format!("{}@", first.pid()), format!("{}@", second.pid()));
    assert!(served_by.iter().any(|i| i.starts_with(&a)) && served_by.iter().any(|i| i.starts_with(&b)), "not shared: {served_by:?}");

    first.kill();
    for id in &ids {
        let doc = server.result(id);
        assert_eq!(status(&doc), "COMPLETED", "{id}: {doc:#}");
        assert_eq!(result(&doc), json!("v1 done"));
    }
    assert!(ids.iter().any(|id| identity_of(id).last().is_some_and(|i| i.starts_with(&b))));
}

fn sigterm(worker: &Worker) {
    let status = std::process::Command::new("kill").args(["-TERM", &worker.pid().to_string()]).status().unwrap();
    assert!(status.success());
}

#[test]
fn sigterm_finishes_in_flight_work_within_the_grace_period_and_exits_zero() {
    let server = Server::start();
    let tq = unique("term");
    let plugins = [s(&plugin("test-workflows")), s(&plugin("test-activities"))];
    let mut worker = Worker::start(&server, &tq, &[&plugins[0], &plugins[1], "--shutdown-grace", "10s"]);
    let id = unique("finishing");
    server.start_workflow(&tq, "run-activity", &id, &[&spec("sleep-ms", json!([2000]), &tq, json!({}))]);
    std::thread::sleep(Duration::from_millis(800));
    sigterm(&worker);
    let exit = worker.wait_exit(Duration::from_secs(20));
    assert!(exit.success(), "{exit:?}\n{}", worker.log());
    assert!(worker.log().contains("shutting down"));
    assert!(
        server.history(&id).iter().any(|e| e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_COMPLETED"),
        "the attempt in flight completed before exit"
    );
    // The workflow goes on with the next worker.
    let _next = Worker::start(&server, &tq, &[&plugins[0], &plugins[1]]);
    assert_eq!(activity_result(&server.result(&id)), json!(2000));

    // With a short grace period, a long attempt is cancelled, and the
    // worker still exits 0 promptly.
    let tq = unique("term-short");
    let mut worker = Worker::start(&server, &tq, &[&plugins[0], &plugins[1], "--shutdown-grace", "1s"]);
    let id = unique("cut-short");
    server.start_workflow(&tq, "run-activity", &id, &[&spec("sleep-ms", json!([60000]), &tq, json!({}))]);
    std::thread::sleep(Duration::from_millis(800));
    let signalled = Instant::now();
    sigterm(&worker);
    let exit = worker.wait_exit(Duration::from_secs(20));
    assert!(exit.success(), "{exit:?}\n{}", worker.log());
    assert!(signalled.elapsed() < Duration::from_secs(8), "took {:?}", signalled.elapsed());
}

#[test]
fn metrics_and_the_plugins_command_show_what_is_served() {
    let server = Server::start();
    let tq = unique("metrics");
    let dir = tempfile::tempdir().unwrap();
    publish(&plugin("test-workflows"), &dir.path().join("test-workflows.wasm"));
    publish(&plugin("test-activities"), &dir.path().join("test-activities.wasm"));
    let address = format!("127.0.0.1:{}", free_port());
    let worker = Worker::start(&server, &tq, &["--watch", &s(dir.path()), "--metrics-address", &address]);
    let doc = server.execute(&tq, "parallel", &["2"]);
    assert_eq!(status(&doc), "COMPLETED");
    let metrics = caisson::metrics::scrape(&address).unwrap();
    for needle in [
        "caisson_workflow_tasks{",
        "caisson_activity_tasks{",
        "caisson_fuel_used{",
        "caisson_instantiation_duration_bucket{",
        "plugin=\"test-activities\"",
        "tenant=\"default\"",
        "temporal_workflow_task_execution_latency",
    ] {
        assert!(metrics.contains(needle), "no {needle} in:\n{metrics}");
    }
    let tasks = metrics
        .lines()
        .find(|l| l.starts_with("caisson_activity_tasks{") && l.contains("test-activities"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap();
    assert_eq!(tasks, 2.0);

    let plugins = |_: ()| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_caisson")).args(["plugins", "--metrics", &address]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let sha = |name: &str| caisson::engine::sha256_hex(&std::fs::read(plugin(name)).unwrap());
    let listing = plugins(());
    let row = listing.lines().find(|l| l.contains("test-workflows")).unwrap_or_else(|| panic!("{listing}"));
    assert!(row.starts_with("default") && row.contains("workflow") && row.contains(&sha("test-workflows")[..12]), "{listing}");
    assert!(row.contains("parallel") && row.contains("versioned"), "{row}");
    publish(&plugin("test-workflows-v2"), &dir.path().join("test-workflows.wasm"));
    worker.wait_for_log("plugin test-workflows replaced", Duration::from_secs(3));
    // The plugin table (the version table below it is versioning.rs's).
    let listing = plugins(());
    let plugin_rows = listing.split("\n\n").next().unwrap();
    assert!(plugin_rows.contains(&sha("test-workflows-v2")[..12]) && !plugin_rows.contains(&sha("test-workflows")[..12]), "{listing}");
}
