//! The activity runtime without a server: attempts run on a plugin with
//! exactly its grants, and what is not granted is denied.

mod common;

use caisson_runtime::activity::{ActivityPlugin, Attempt, AttemptOutcome};
use caisson_runtime::loader::Plugin;
use caisson_runtime::settings::{DirAccess, DirGrant, PluginSettings};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

fn hostile(settings: PluginSettings) -> Arc<ActivityPlugin> {
    match common::load(&common::loader(), "hostile-activities", settings) {
        Plugin::Activity(p) => p,
        Plugin::Workflow(_) => panic!("hostile-activities is an activity plugin"),
    }
}

fn attempt(activity_type: &str) -> Arc<Attempt> {
    common::attempt_of("hostile-activities", activity_type)
}

async fn run(plugin: &ActivityPlugin, activity_type: &str, args: Vec<serde_json::Value>) -> AttemptOutcome {
    plugin.run(activity_type, &args, attempt(activity_type)).await
}

#[tokio::test]
async fn a_granted_directory_is_readable_and_nothing_else_is() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("note.txt"), "granted").unwrap();
    let plugin = hostile(PluginSettings {
        dirs: vec![DirGrant { host: data.path().to_owned(), guest: "/data".into(), access: DirAccess::ReadOnly }],
        ..PluginSettings::default()
    });
    assert_eq!(run(&plugin, "read-file", vec![json!("/data/note.txt")]).await, AttemptOutcome::Completed(json!("granted")));
    for path in ["/data/../etc/passwd", "/etc/passwd", &data.path().join("note.txt").display().to_string()] {
        let outcome = run(&plugin, "read-file", vec![json!(path)]).await;
        assert!(matches!(&outcome, AttemptOutcome::Failed { .. }), "{path}: {outcome:?}");
    }
    // Read-only: writing fails in the guest and the host file is unchanged.
    let outcome = run(&plugin, "write-file", vec![json!("/data/note.txt"), json!("overwritten")]).await;
    assert!(matches!(&outcome, AttemptOutcome::Failed { .. }), "{outcome:?}");
    assert_eq!(std::fs::read_to_string(data.path().join("note.txt")).unwrap(), "granted");
}

#[tokio::test]
async fn only_listed_environment_variables_are_visible() {
    let plugin = hostile(PluginSettings { env: BTreeMap::from([("MODE".into(), "test".into())]), ..PluginSettings::default() });
    assert_eq!(run(&plugin, "env-var", vec![json!("MODE")]).await, AttemptOutcome::Completed(json!("test")));
    for name in ["HOME", "PATH", "CARGO_MANIFEST_DIR"] {
        assert_eq!(run(&plugin, "env-var", vec![json!(name)]).await, AttemptOutcome::Completed(json!(null)), "{name}");
    }
}

#[tokio::test]
async fn the_memory_limit_fails_the_attempt_not_the_host() {
    let plugin = hostile(PluginSettings { memory_mb: Some(16), ..PluginSettings::default() });
    let outcome = run(&plugin, "alloc-mb", vec![json!(64)]).await;
    assert!(
        matches!(&outcome, AttemptOutcome::Failed { error_type, message, .. } if error_type == "MemoryLimitExceeded" && message.contains("16 MiB")),
        "{outcome:?}"
    );
    assert_eq!(run(&plugin, "alloc-mb", vec![json!(4)]).await, AttemptOutcome::Completed(json!(4)));
}

#[tokio::test]
async fn every_attempt_gets_a_fresh_instance() {
    let plugin = hostile(PluginSettings::default());
    for _ in 0..3 {
        assert_eq!(run(&plugin, "counter", vec![]).await, AttemptOutcome::Completed(json!(1)));
    }
}

#[tokio::test]
async fn a_payload_that_does_not_fit_is_a_non_retryable_failure_naming_the_argument() {
    let plugin = hostile(PluginSettings::default());
    let outcome = run(&plugin, "alloc-mb", vec![json!("lots")]).await;
    assert!(
        matches!(&outcome, AttemptOutcome::Failed { error_type, non_retryable: true, message, .. } if error_type == "InvalidArgument" && message.contains("mb")),
        "{outcome:?}"
    );
}

fn test_activities(settings: PluginSettings) -> Arc<ActivityPlugin> {
    match common::load(&common::loader(), "test-activities", settings) {
        Plugin::Activity(p) => p,
        Plugin::Workflow(_) => panic!("test-activities is an activity plugin"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_concurrency_one_runs_four_attempts_one_after_another() {
    let plugin = test_activities(PluginSettings { max_concurrency: Some(1), ..PluginSettings::default() });
    let began = std::time::Instant::now();
    assert_eq!(run(&plugin, "sleep-ms", vec![json!(300)]).await, AttemptOutcome::Completed(json!(300)));
    let one = began.elapsed();
    let began = std::time::Instant::now();
    let (a, b, c, d) = tokio::join!(
        run(&plugin, "sleep-ms", vec![json!(300)]),
        run(&plugin, "sleep-ms", vec![json!(300)]),
        run(&plugin, "sleep-ms", vec![json!(300)]),
        run(&plugin, "sleep-ms", vec![json!(300)]),
    );
    let four = began.elapsed();
    for outcome in [a, b, c, d] {
        assert_eq!(outcome, AttemptOutcome::Completed(json!(300)));
    }
    // The bound: four attempts take (about) four times one.
    assert!(four >= one.mul_f64(3.5), "four attempts took {four:?}, one took {one:?}: they overlapped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_attempt_waiting_for_a_slot_honours_cancellation() {
    let plugin = test_activities(PluginSettings { max_concurrency: Some(1), ..PluginSettings::default() });
    let holder = attempt("sleep-ms");
    let waiting = attempt("sleep-ms");
    let args = [json!(60_000)];
    let first = plugin.run("sleep-ms", &args, holder.clone());
    let second = async {
        tokio::task::yield_now().await;
        waiting.cancellation.request();
        plugin.run("sleep-ms", &args, waiting.clone()).await
    };
    tokio::pin!(first);
    tokio::select! {
        outcome = &mut first => panic!("the slot holder ended first: {outcome:?}"),
        outcome = second => assert_eq!(outcome, AttemptOutcome::Cancelled),
    }
    holder.cancellation.request();
    assert_eq!(first.await, AttemptOutcome::Cancelled);
}
