//! Versioned drop-in on a real Temporal server (worker versioning on): a
//! new workflow plugin set is a new worker deployment version, running
//! workflows stay on the version they started on, and a drained version
//! is unloaded.

mod support;

use serde_json::{Value as Json, json};
use std::path::Path;
use std::time::Duration;
use support::{Server, Worker, free_port, plugin, publish, unique};

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The build id Caisson derives for a set of workflow plugins.
fn build_id(workflow_plugins: &[&str]) -> String {
    let hashes: Vec<String> =
        workflow_plugins.iter().map(|name| caisson::engine::sha256_hex(&std::fs::read(plugin(name)).unwrap())).collect();
    caisson::registry::build_id(hashes.iter().map(String::as_str))
}

/// A folder with test-workflows (v1) and test-activities.
fn v1_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    publish(&plugin("test-workflows"), &dir.path().join("test-workflows.wasm"));
    publish(&plugin("test-activities"), &dir.path().join("test-activities.wasm"));
    dir
}

/// Waits until the run has finished its first activity (and so waits for
/// its `go` signal).
fn wait_past_first_activity(server: &Server, id: &str) {
    server.wait_for_event(id, "EVENT_TYPE_ACTIVITY_TASK_COMPLETED", Duration::from_secs(30));
}

fn workflow_task_failures(server: &Server, id: &str) -> Vec<Json> {
    server.history(id).into_iter().filter(|e| e["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_FAILED").collect()
}

/// The build ids of the versions that completed the run's workflow tasks.
fn completed_on(server: &Server, id: &str) -> Vec<String> {
    server
        .history(id)
        .iter()
        .filter_map(|e| e["workflowTaskCompletedEventAttributes"]["deploymentVersion"]["buildId"].as_str().map(str::to_owned))
        .collect()
}

fn plugins_listing(address: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_caisson")).args(["plugins", "--metrics", address]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The row of `caisson plugins` for a version.
fn version_row(listing: &str, build_id: &str) -> Option<String> {
    listing.lines().find(|l| l.contains(build_id)).map(str::to_owned)
}

/// Starts `n` swap runs and waits until each waits for its signal.
fn start_swaps(server: &Server, tq: &str, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|_| unique("swap")).collect();
    for id in &ids {
        server.start_workflow(tq, "swap", id, &[]);
    }
    for id in &ids {
        wait_past_first_activity(server, id);
    }
    ids
}

/// Signals each run and checks it finished on v1 without a task failure.
fn finish_on_v1(server: &Server, ids: &[String], v1: &str) {
    for id in ids {
        server.signal(id, "go");
    }
    for id in ids {
        let doc = server.result(id);
        assert_eq!(doc["status"], "COMPLETED", "{id}: {doc:#}");
        assert_eq!(doc["result"], json!("v1 V1 on v1"), "{id} ran on v2 code: {doc:#}");
        assert!(workflow_task_failures(server, id).is_empty(), "{id}: {:#?}", workflow_task_failures(server, id));
        assert!(completed_on(server, id).iter().all(|b| b == v1), "{id}: {:?}", completed_on(server, id));
    }
}

/// Starts a swap on the current version, lets it finish; its result.
fn new_swap(server: &Server, tq: &str) -> Json {
    let id = unique("swap-new");
    server.start_workflow(tq, "swap", &id, &[]);
    wait_past_first_activity(server, &id);
    server.signal(&id, "go");
    server.result(&id)["result"].clone()
}

#[test]
fn pinned_runs_finish_on_their_version_and_the_drained_version_is_unloaded() {
    let server = Server::start();
    let tq = unique("pinned");
    let dir = v1_folder();
    let state = tempfile::tempdir().unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let worker = Worker::start_with_env(
        &server,
        &tq,
        &["--watch", &s(dir.path()), "--metrics-address", &address],
        &[("CAISSON_STATE_DIR", &s(state.path()))],
    );
    let (v1, v2) = (build_id(&["test-workflows"]), build_id(&["test-workflows-v2"]));
    assert!(worker.log().contains(&format!("version=\"{tq}:{v1}\"")) || worker.log().contains(&v1), "{}", worker.log());

    let ids = start_swaps(&server, &tq, 10);
    // An incompatible v2: it runs `upper` before `echo`, without `patched`.
    publish(&plugin("test-workflows-v2"), &dir.path().join("test-workflows.wasm"));
    worker.wait_for_log(&format!("plugin set version {v2} is current; version {v1} drains"), Duration::from_secs(30));
    let listing = plugins_listing(&address);
    assert!(version_row(&listing, &v2).is_some_and(|r| r.contains("current")), "{listing}");
    assert!(version_row(&listing, &v1).is_some_and(|r| r.contains("draining")), "{listing}");
    // Both versions are kept while they serve.
    let kept = state.path().join("versions/default").join(&tq);
    assert!(kept.join(&v1).join("test-workflows.wasm").is_file() && kept.join(&v2).is_dir(), "{}", s(&kept));

    // Every v1 run finishes on v1: no non-determinism, no failed task.
    finish_on_v1(&server, &ids, &v1);
    // New runs take v2.
    assert_eq!(new_swap(&server, &tq), json!("V2 v2 on v2"));

    // The last v1 run has closed: Temporal reports v1 drained, and the
    // worker stops its pollers and unloads it.
    worker.wait_for_log(&format!("version {v1} drained"), Duration::from_secs(60));
    let listing = plugins_listing(&address);
    assert!(version_row(&listing, &v1).is_some_and(|r| r.contains("drained")), "{listing}");
    assert!(!kept.join(&v1).exists(), "a drained version is not kept");
    assert_eq!(new_swap(&server, &tq), json!("V2 v2 on v2"));
}

#[test]
fn a_worker_killed_in_the_middle_of_a_swap_serves_the_pinned_runs_again() {
    let server = Server::start();
    let tq = unique("killed");
    let dir = v1_folder();
    let state = tempfile::tempdir().unwrap();
    let env = [("CAISSON_STATE_DIR", s(state.path()))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut worker = Worker::start_with_env(&server, &tq, &["--watch", &s(dir.path())], &env);
    let (v1, v2) = (build_id(&["test-workflows"]), build_id(&["test-workflows-v2"]));
    let ids = start_swaps(&server, &tq, 5);

    publish(&plugin("test-workflows-v2"), &dir.path().join("test-workflows.wasm"));
    worker.wait_for_log(&format!("plugin set version {v2} is current"), Duration::from_secs(30));
    worker.kill();

    // The folder holds only v2 now; the restarted worker serves v1 again
    // from its kept copy, for the runs pinned to it.
    let worker = Worker::start_with_env(&server, &tq, &["--watch", &s(dir.path())], &env);
    assert!(worker.log().contains(&format!("version {v1} serves its pinned runs again")), "{}", worker.log());
    finish_on_v1(&server, &ids, &v1);
    assert_eq!(new_swap(&server, &tq), json!("V2 v2 on v2"));
    worker.wait_for_log(&format!("version {v1} drained"), Duration::from_secs(60));
}

#[test]
fn two_tenants_each_have_their_own_deployment() {
    let server = Server::start();
    let (a, b) = (unique("acme"), unique("beta"));
    let (dir_a, dir_b) = (v1_folder(), v1_folder());
    let manifest_dir = tempfile::tempdir().unwrap();
    let manifest = manifest_dir.path().join("caisson.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[tenant]]\nname = \"acme\"\ntask_queue = \"{a}\"\nplugin_dir = \"{}\"\n\n\
             [[tenant]]\nname = \"beta\"\ntask_queue = \"{b}\"\ndeployment = \"beta-plugins\"\nplugin_dir = \"{}\"\n",
            s(dir_a.path()),
            s(dir_b.path())
        ),
    )
    .unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let worker = Worker::start(&server, &a, &["--manifest", &s(&manifest), "--metrics-address", &address]);
    worker.wait_for_log("tenant=beta", Duration::from_secs(30));
    let (v1, v2) = (build_id(&["test-workflows"]), build_id(&["test-workflows-v2"]));
    let ids_b = start_swaps(&server, &b, 2);
    // Only beta gets v2.
    publish(&plugin("test-workflows-v2"), &dir_b.path().join("test-workflows.wasm"));
    worker.wait_for_log(&format!("plugin set version {v2} is current"), Duration::from_secs(30));
    let listing = plugins_listing(&address);
    let row = |tenant: &str, deployment: &str, build: &str| {
        listing.lines().any(|l| l.starts_with(tenant) && l.contains(deployment) && l.contains(build) && l.contains("current"))
    };
    assert!(row("acme", &a, &v1), "acme's deployment is its task queue, on v1:\n{listing}");
    assert!(row("beta", "beta-plugins", &v2), "beta's named deployment is on v2:\n{listing}");
    assert_eq!(new_swap(&server, &a), json!("v1 V1 on v1"));
    assert_eq!(new_swap(&server, &b), json!("V2 v2 on v2"));
    finish_on_v1(&server, &ids_b, &v1);
}

#[test]
fn an_auto_upgrade_plugin_moves_its_running_workflows_to_the_new_version() {
    let server = Server::start();
    let tq = unique("upgrade");
    let dir = v1_folder();
    std::fs::write(dir.path().join("test-workflows.toml"), "versioning = \"auto-upgrade\"\n").unwrap();
    let worker = Worker::start(&server, &tq, &["--watch", &s(dir.path())]);
    let (v1, v2) = (build_id(&["test-workflows"]), build_id(&["test-workflows-v2"]));
    let id = unique("upgradable");
    server.start_workflow(&tq, "upgradable", &id, &[]);
    wait_past_first_activity(&server, &id);

    publish(&plugin("test-workflows-v2"), &dir.path().join("test-workflows.wasm"));
    worker.wait_for_log(&format!("plugin set version {v2} is current"), Duration::from_secs(30));
    server.signal(&id, "go");
    let doc = server.result(&id);
    // Started on v1 (`echo`), finished by v2's code at its next task.
    assert_eq!(doc["result"], json!("v1 then v2"), "{doc:#}");
    let on = completed_on(&server, &id);
    assert_eq!((on.first(), on.last()), (Some(&v1), Some(&v2)), "{on:?}");
    assert!(workflow_task_failures(&server, &id).is_empty());
}

#[test]
fn a_set_that_drops_workflow_types_is_not_promoted() {
    let server = Server::start();
    let tq = unique("dropped");
    let dir = v1_folder();
    publish(&plugin("hello-workflow"), &dir.path().join("hello-workflow.wasm"));
    publish(&plugin("greet-activity"), &dir.path().join("greet-activity.wasm"));
    let worker = Worker::start(&server, &tq, &["--watch", &s(dir.path())]);
    std::fs::remove_file(dir.path().join("hello-workflow.wasm")).unwrap();
    worker.wait_for_log("not promoted: it drops workflow type(s) ", Duration::from_secs(10));
    let line = worker.log().lines().find(|l| l.contains("not promoted")).unwrap().to_owned();
    assert!(line.contains("hello") && line.contains("--allow-type-removal"), "{line}");
    // The current version still serves every type.
    assert_eq!(server.execute(&tq, "hello", &["\"ada\""])["status"], "COMPLETED");

    // `versioning` is a workflow plugin's setting: an activity plugin
    // asking for it is refused, saying why.
    std::fs::write(dir.path().join("extra.toml"), "versioning = \"pinned\"\n").unwrap();
    publish(&plugin("greet-activity"), &dir.path().join("extra.wasm"));
    worker.wait_for_log("extra.wasm not loaded", Duration::from_secs(10));
    let line = worker.log().lines().find(|l| l.contains("extra.wasm not loaded")).unwrap().to_owned();
    assert!(line.contains("versioning = \"pinned\" is for workflow plugins"), "{line}");
}

#[test]
fn the_operator_can_force_a_set_that_drops_types() {
    let server = Server::start();
    let tq = unique("forced");
    let dir = v1_folder();
    publish(&plugin("hello-workflow"), &dir.path().join("hello-workflow.wasm"));
    let worker = Worker::start(&server, &tq, &["--watch", &s(dir.path()), "--allow-type-removal"]);
    std::fs::remove_file(dir.path().join("hello-workflow.wasm")).unwrap();
    worker.wait_for_log(&format!("plugin set version {} is current", build_id(&["test-workflows"])), Duration::from_secs(30));
    assert!(!worker.log().contains("not promoted"), "{}", worker.log());
    assert_eq!(new_swap(&server, &tq), json!("v1 V1 on v1"));
}

#[test]
fn a_server_without_worker_versioning_gets_one_line_and_unversioned_serving() {
    let server = Server::start_with(&["--dynamic-config-value", "system.enableDeploymentVersions=false"]);
    let tq = unique("unversioned");
    let dir = v1_folder();
    let worker = Worker::start(&server, &tq, &["--watch", &s(dir.path())]);
    let log = worker.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("does not have worker versioning enabled")).collect();
    assert_eq!(lines.len(), 1, "{}", worker.log());
    assert!(lines[0].contains("system.enableDeploymentVersions=true") && lines[0].contains("--no-versioning"), "{}", lines[0]);
    assert!(worker.log().contains("version=\"unversioned\""), "{}", worker.log());
    assert_eq!(new_swap(&server, &tq), json!("v1 V1 on v1"));
}

#[test]
fn replay_picks_each_historys_version_from_its_build_id() {
    let server = Server::start();
    let tq = unique("replay-versions");
    let dir = v1_folder();
    let worker = Worker::start(&server, &tq, &["--watch", &s(dir.path())]);
    let ids = start_swaps(&server, &tq, 1);
    let v2 = build_id(&["test-workflows-v2"]);
    publish(&plugin("test-workflows-v2"), &dir.path().join("test-workflows.wasm"));
    worker.wait_for_log(&format!("plugin set version {v2} is current"), Duration::from_secs(30));
    finish_on_v1(&server, &ids, &build_id(&["test-workflows"]));
    let id_v2 = unique("swap-v2");
    server.start_workflow(&tq, "swap", &id_v2, &[]);
    wait_past_first_activity(&server, &id_v2);
    server.signal(&id_v2, "go");
    server.result(&id_v2);

    let histories = tempfile::tempdir().unwrap();
    for (id, name) in [(&ids[0], "on-v1"), (&id_v2, "on-v2")] {
        let out = server.temporal(&["workflow", "show", "-o", "json", "--workflow-id", id]);
        std::fs::write(histories.path().join(format!("{name}.json")), out.stdout).unwrap();
    }
    let versions = tempfile::tempdir().unwrap();
    for (folder, file) in [("one", "test-workflows"), ("two", "test-workflows-v2")] {
        std::fs::create_dir(versions.path().join(folder)).unwrap();
        std::fs::copy(plugin(file), versions.path().join(folder).join("test-workflows.wasm")).unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_caisson"))
        .args(["replay", "--plugin-dir", &s(versions.path()), &s(histories.path())])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{printed}{}", String::from_utf8_lossy(&out.stderr));
    let line = |name: &str| printed.lines().find(|l| l.contains(name)).unwrap_or_default().to_owned();
    assert!(line("on-v1.json").starts_with("ok") && line("on-v1.json").contains(&build_id(&["test-workflows"])), "{printed}");
    assert!(line("on-v2.json").starts_with("ok") && line("on-v2.json").contains(&v2), "{printed}");
    assert!(printed.contains("2 histories: 2 ok, 0 failed"), "{printed}");

    // Replayed on the wrong version, v1's history is non-deterministic.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_caisson"))
        .args(["replay", "--plugin", &s(&plugin("test-workflows-v2")), &s(&histories.path().join("on-v1.json"))])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

fn caisson(args: &[&str], server: &Server) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_caisson")).args(args).args(["--address", &server.address]).output().unwrap();
    assert!(out.status.success(), "caisson {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn with_manual_promotion_a_new_set_is_ramped_then_promoted_by_the_operator() {
    let server = Server::start();
    let tq = unique("ramp");
    let dir = v1_folder();
    let address = format!("127.0.0.1:{}", free_port());
    let worker = Worker::start(&server, &tq, &["--watch", &s(dir.path()), "--manual-promotion", "--metrics-address", &address]);
    let (v1, v2) = (build_id(&["test-workflows"]), build_id(&["test-workflows-v2"]));
    let pinned = start_swaps(&server, &tq, 1);

    publish(&plugin("test-workflows-v2"), &dir.path().join("test-workflows.wasm"));
    worker.wait_for_log(&format!("plugin set version {v2} registered, not current"), Duration::from_secs(30));
    // Registered but not routed to: new runs still start on v1.
    assert_eq!(new_swap(&server, &tq), json!("v1 V1 on v1"));

    // A ramp of 100 % sends every new run to v2, v1 stays current.
    let said = caisson(&["deployment", "ramp", "--deployment", &tq, &v2, "100"], &server);
    assert!(said.contains(&format!("version {v2} takes 100% of new runs")), "{said}");
    assert_eq!(new_swap(&server, &tq), json!("V2 v2 on v2"));
    let ramping = || version_row(&plugins_listing(&address), &v2).is_some_and(|r| r.contains("ramping"));
    let started = std::time::Instant::now();
    while !ramping() {
        assert!(started.elapsed() < Duration::from_secs(20), "{}", plugins_listing(&address));
        std::thread::sleep(Duration::from_millis(300));
    }

    let said = caisson(&["deployment", "promote", "--deployment", &tq, &v2], &server);
    assert!(said.contains(&format!("version {v2} is current")), "{said}");
    worker.wait_for_log(&format!("version {v2} is current now (was {v1})"), Duration::from_secs(20));
    finish_on_v1(&server, &pinned, &v1);
    worker.wait_for_log(&format!("version {v1} drained"), Duration::from_secs(60));

    // Refused: a percentage out of range, a deployment name Temporal refuses.
    for (args, needle) in [
        (vec!["deployment", "ramp", "--deployment", tq.as_str(), v2.as_str(), "150"], "between 0 and 100"),
        (vec!["deployment", "promote", "--deployment", "a.b", v2.as_str()], "without `.` or `:`"),
    ] {
        let out =
            std::process::Command::new(env!("CARGO_BIN_EXE_caisson")).args(&args).args(["--address", &server.address]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn a_version_kept_on_purpose_stays_loaded_when_drained_for_a_rollback() {
    let server = Server::start();
    let tq = unique("keep");
    let dir = v1_folder();
    let address = format!("127.0.0.1:{}", free_port());
    let (v1, v2) = (build_id(&["test-workflows"]), build_id(&["test-workflows-v2"]));
    let worker = Worker::start(&server, &tq, &["--watch", &s(dir.path()), "--keep-version", &v1, "--metrics-address", &address]);
    let pinned = start_swaps(&server, &tq, 1);
    publish(&plugin("test-workflows-v2"), &dir.path().join("test-workflows.wasm"));
    worker.wait_for_log(&format!("plugin set version {v2} is current"), Duration::from_secs(30));
    finish_on_v1(&server, &pinned, &v1);
    // Temporal reports v1 drained; the worker keeps serving it.
    let started = std::time::Instant::now();
    while !version_row(&plugins_listing(&address), &v1).is_some_and(|r| r.contains("drained")) {
        assert!(started.elapsed() < Duration::from_secs(60), "{}", plugins_listing(&address));
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(!worker.log().contains(&format!("version {v1} drained")), "{}", worker.log());
    // Roll back: v1 is current again and takes new runs at once.
    caisson(&["deployment", "promote", "--deployment", &tq, &v1], &server);
    assert_eq!(new_swap(&server, &tq), json!("v1 V1 on v1"));

    let mut refused = Worker::spawn(&server, &unique("keep-bad"), &[&s(dir.path()), "--keep-version", "v1"]);
    assert!(!refused.wait_exit(Duration::from_secs(30)).success());
    assert!(refused.log().contains("--keep-version = \"v1\": must be a plugin set build id"), "{}", refused.log());
}
