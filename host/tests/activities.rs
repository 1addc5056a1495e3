//! Activity components: capabilities, heartbeats, cancellation, limits
//! (issue: activities). Each test starts its own dev server; activities
//! are invoked through `run-activity` of the test workflows, started with
//! the Temporal CLI.

mod support;

use serde_json::{Value as Json, json};
use std::path::Path;
use std::time::Duration;
use support::{Server, Worker, plugin, unique};

/// A copy of the hostile plugin in `dir` with `grants` as its manifest.
fn hostile_with(dir: &Path, grants: &str) -> String {
    let wasm = dir.join("hostile-activities.wasm");
    std::fs::copy(plugin("hostile-activities"), &wasm).unwrap();
    std::fs::write(dir.join("hostile-activities.toml"), grants).unwrap();
    wasm.display().to_string()
}

struct Env {
    server: Server,
    tq: String,
    worker: Worker,
}

impl Env {
    fn start(grants: &str, dir: &Path) -> Env {
        Self::start_with_env(grants, dir, &[])
    }

    fn start_with_env(grants: &str, dir: &Path, vars: &[(&str, &str)]) -> Env {
        let server = Server::start();
        let tq = unique("act");
        let args = [plugin("test-workflows").display().to_string(), hostile_with(dir, grants)];
        let worker = Worker::start_with_env(&server, &tq, &[&args[0], &args[1]], vars);
        Env { server, tq, worker }
    }

    /// Runs one activity through `run-activity`; the closing JSON.
    fn run(&self, activity: &str, args: Json, extra: Json) -> Json {
        let mut spec = json!({
            "activity_type": activity,
            "args": args.as_array().unwrap().iter().map(Json::to_string).collect::<Vec<_>>(),
            "start_to_close_ms": 20000,
            "retry": { "initial_interval_ms": 100, "backoff_coefficient": 1.0, "maximum_interval_ms": 100, "maximum_attempts": 1, "non_retryable": [] },
        });
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        self.server.execute(&self.tq, "run-activity", &[&spec.to_string()])
    }

    /// The activity's result, decoded from the workflow's JSON text result.
    fn ok(&self, activity: &str, args: Json) -> Json {
        let doc = self.run(activity, args.clone(), json!({}));
        assert_eq!(doc["status"], "COMPLETED", "{activity}({args}): {doc:#}");
        serde_json::from_str(doc["result"].as_str().unwrap()).unwrap()
    }

    /// The failure of a failed workflow.
    fn failed(&self, activity: &str, args: Json, extra: Json) -> Json {
        let doc = self.run(activity, args.clone(), extra);
        assert_eq!(doc["status"], "FAILED", "{activity}({args}): {doc:#}");
        doc["closeEvent"]["workflowExecutionFailedEventAttributes"]["failure"].clone()
    }
}

#[test]
fn filesystem_grants_hold_against_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let (ro, rw, outside) = (dir.path().join("ro"), dir.path().join("rw"), dir.path().join("outside"));
    for d in [&ro, &rw, &outside] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(ro.join("hello.txt"), "granted content").unwrap();
    std::fs::write(outside.join("secret.txt"), "TOP SECRET").unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), ro.join("link-out")).unwrap();
    std::os::unix::fs::symlink("../outside/secret.txt", ro.join("relative-link-out")).unwrap();
    let grants = format!(
        "dirs = [{{ host = \"{}\", guest = \"/ro\" }}, {{ host = \"{}\", guest = \"/rw\", access = \"read-write\" }}]\n",
        ro.display(),
        rw.display()
    );
    let env = Env::start(&grants, dir.path());

    // What is granted works. (An `err` return fails the attempt.)
    assert_eq!(env.ok("read-file", json!(["/ro/hello.txt"])), json!("granted content"));
    assert_eq!(env.ok("write-file", json!(["/rw/out.txt", "written"])), json!(null));
    assert_eq!(std::fs::read_to_string(rw.join("out.txt")).unwrap(), "written");

    // Escapes fail inside the guest, with an error it can see.
    for path in [
        "/ro/../outside/secret.txt",
        "/ro/../../outside/secret.txt",
        "/rw/../outside/secret.txt",
        &format!("{}", outside.join("secret.txt").display()),
        "/etc/passwd",
        "/ro/link-out",
        "/ro/relative-link-out",
        "secret.txt",
    ] {
        let failure = env.failed("read-file", json!([path]), json!({}));
        let message = failure["message"].as_str().unwrap();
        assert!(message.contains(path), "{path} must not be readable: {failure:#}");
        assert!(!failure.to_string().contains("TOP SECRET"), "{path} leaked: {failure:#}");
    }
    // Writes to the read-only grant and outside the grants fail; the host sees nothing written.
    for path in ["/ro/new.txt", "/ro/../outside/new.txt", "/outside/new.txt", "/rw/../new.txt"] {
        let failure = env.failed("write-file", json!([path, "x"]), json!({}));
        assert!(failure["message"].as_str().unwrap().contains(path), "{path} must not be writable: {failure:#}");
    }
    assert!(!ro.join("new.txt").exists() && !outside.join("new.txt").exists() && !dir.path().join("new.txt").exists());
    assert_eq!(std::fs::read_to_string(outside.join("secret.txt")).unwrap(), "TOP SECRET");

    // No grant at all: nothing is readable.
    let bare = tempfile::tempdir().unwrap();
    let tq = unique("bare");
    let _bare = Worker::start(&env.server, &tq, &[&plugin("test-workflows").display().to_string(), &hostile_with(bare.path(), "")]);
    let spec = json!({"activity_type": "read-file", "args": ["\"/ro/hello.txt\""], "start_to_close_ms": 10000,
        "retry": { "initial_interval_ms": 100, "backoff_coefficient": 1.0, "maximum_interval_ms": 100, "maximum_attempts": 1, "non_retryable": [] }});
    let doc = env.server.execute(&tq, "run-activity", &[&spec.to_string()]);
    assert_eq!(doc["status"], "FAILED", "{doc:#}");

    // The worker kept serving throughout.
    assert_eq!(env.ok("read-file", json!(["/ro/hello.txt"])), json!("granted content"));
}

#[test]
fn environment_holds_only_listed_variables_and_named_secrets() {
    let dir = tempfile::tempdir().unwrap();
    // The worker's own environment has HOME and PATH, and the secret.
    let env = Env::start_with_env(
        "env = { MODE = \"test\" }\nsecrets = [\"CAISSON_TEST_SECRET\"]\n",
        dir.path(),
        &[("CAISSON_TEST_SECRET", "s3cr3t")],
    );
    assert_eq!(env.ok("env-var", json!(["MODE"])), json!("test"));
    assert_eq!(env.ok("env-var", json!(["CAISSON_TEST_SECRET"])), json!("s3cr3t"));
    assert_eq!(env.ok("env-var", json!(["HOME"])), json!(null));
    assert_eq!(env.ok("env-var", json!(["PATH"])), json!(null));
}

#[test]
fn heartbeats_reach_the_server_and_the_next_attempt_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start("", dir.path());
    let spec = json!({
        "activity_type": "progress",
        "args": ["6"],
        "start_to_close_ms": 30000,
        "heartbeat_timeout_ms": 1000,
        "retry": { "initial_interval_ms": 100, "backoff_coefficient": 1.0, "maximum_interval_ms": 100, "maximum_attempts": 3, "non_retryable": [] },
    });
    let id = unique("progress");
    env.server.start_workflow(&env.tq, "run-activity", &id, &[&spec.to_string()]);
    // While attempt 1 runs, the server holds its heartbeat details.
    let started = std::time::Instant::now();
    let details = loop {
        let doc = support::first_json(&env.server.temporal(&["workflow", "describe", "-o", "json", "--workflow-id", &id]));
        let details = &doc["pendingActivities"][0]["heartbeatDetails"];
        if !details.is_null() {
            break support::payload_values(details);
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no heartbeat details: {doc:#}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(details[0].as_u64().is_some_and(|n| (1..=3).contains(&n)), "{details:?}");
    // Attempt 1 stalls, the heartbeat timeout fails it, attempt 2 resumes at 3.
    let doc = env.server.result(&id);
    assert_eq!(doc["status"], "COMPLETED", "{doc:#}");
    let report: Json = serde_json::from_str(doc["result"].as_str().unwrap()).unwrap();
    assert_eq!(report, json!({"resumed_from": 3, "attempt": 2, "done": 6}));
}

#[test]
fn cancellation_is_seen_by_the_guest_or_enforced_after_a_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start("", dir.path());
    for cooperative in ["true", "false"] {
        let id = unique("cancel");
        let doc = env.server.execute_id(&env.tq, "cancel-activity", &id, &[cooperative]);
        assert_eq!(doc["result"], "cancelled", "cooperative={cooperative}: {doc:#}");
        let cancelled = env.server.history(&id).iter().any(|e| e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_CANCELED");
        assert!(cancelled, "cooperative={cooperative}: the server records the activity as cancelled");
    }
}

#[test]
fn limits_traps_and_panics_become_clear_failures_and_retries_follow_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start("memory_mb = 32\n", dir.path());

    let f = env.failed("alloc-mb", json!([64]), json!({}));
    assert_eq!(f["applicationFailureInfo"]["type"], "MemoryLimitExceeded", "{f:#}");
    assert!(f["message"].as_str().unwrap().contains("memory limit of 32 MiB"), "{f:#}");
    assert_eq!(env.ok("alloc-mb", json!([8])), json!(8), "a modest allocation still works");

    let f = env.failed("spin", json!([]), json!({"start_to_close_ms": 1500}));
    assert_eq!(f["applicationFailureInfo"]["type"], "TimeoutError", "{f:#}");

    let f = env.failed("recurse", json!([0]), json!({}));
    assert_eq!(f["applicationFailureInfo"]["type"], "StackOverflow", "{f:#}");

    // A panic: retried as the policy says (3 attempts), then the workflow sees it.
    let retry3 = json!({"retry": { "initial_interval_ms": 100, "backoff_coefficient": 1.0, "maximum_interval_ms": 100, "maximum_attempts": 3, "non_retryable": ["Fatal"] }});
    let id = unique("panics");
    let spec = json!({"activity_type": "panics", "args": [], "start_to_close_ms": 10000, "retry": retry3["retry"]});
    let doc = env.server.execute_id(&env.tq, "run-activity", &id, &[&spec.to_string()]);
    let f = &doc["closeEvent"]["workflowExecutionFailedEventAttributes"]["failure"];
    assert_eq!(f["applicationFailureInfo"]["type"], "GuestPanic", "{doc:#}");
    let attempts = env.server.history(&id).iter().filter_map(|e| e["activityTaskStartedEventAttributes"]["attempt"].as_u64()).max();
    assert_eq!(attempts, Some(3));
    env.worker.wait_for_log("hostile activity panics on purpose", Duration::from_secs(5));

    // Non-retryable error types from the policy, and non-retryable errors from the guest.
    for (args, extra) in [(json!(["Fatal", false]), retry3.clone()), (json!(["Whatever", true]), retry3.clone())] {
        let id = unique("fail");
        let spec = json!({"activity_type": "fail", "args": args.as_array().unwrap().iter().map(Json::to_string).collect::<Vec<_>>(), "start_to_close_ms": 10000, "retry": extra["retry"]});
        env.server.execute_id(&env.tq, "run-activity", &id, &[&spec.to_string()]);
        let attempts = env.server.history(&id).iter().filter(|e| e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_STARTED").count();
        assert_eq!(attempts, 1, "{args}");
    }

    // The worker survived all of it.
    assert_eq!(env.ok("counter", json!([])), json!(1));
}

#[test]
fn each_attempt_gets_a_fresh_instance_and_logs_are_tagged() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start("", dir.path());
    for _ in 0..3 {
        assert_eq!(env.ok("counter", json!([])), json!(1), "no state survives between attempts");
    }
    let doc = env.run("log-lines", json!([]), json!({}));
    let workflow_id = doc["workflowId"].as_str().unwrap();
    for line in ["hello from stdout", "hello from stderr", "hello from the context log"] {
        env.worker.wait_for_log(line, Duration::from_secs(5));
        let log = env.worker.log();
        let tagged = log.lines().find(|l| l.contains(line)).unwrap();
        assert!(
            tagged.contains("activity_type=\"log-lines\"")
                && tagged.contains(&format!("workflow_id=\"{workflow_id}\""))
                && tagged.contains("attempt=1"),
            "{tagged}"
        );
    }
}

#[test]
fn arguments_that_do_not_fit_fail_the_attempt_without_retries() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start("", dir.path());
    let f = env.failed("alloc-mb", json!(["lots"]), json!({"retry": { "initial_interval_ms": 100, "backoff_coefficient": 1.0, "maximum_interval_ms": 100, "maximum_attempts": 5, "non_retryable": [] }}));
    assert_eq!(f["applicationFailureInfo"]["type"], "InvalidArgument", "{f:#}");
    let message = f["message"].as_str().unwrap();
    assert!(message.contains("argument `mb`") && message.contains("expected u32") && message.contains("hostile-activities"), "{message}");
}
