//! A lengthened `long-history` of 50,000 events (what the long-history
//! bench times) is a valid history: it replays cleanly on test-workflows,
//! and one whose last activity is scheduled under another type does not.

use caisson::replay::{RecordedHistory, ReplayOutcome, history_from_json, replay_on, validate};
use caisson_benches::long_history::{lengthen, rounds_for};
use std::sync::Arc;

fn lengthened(events: usize, edit: impl FnOnce(&mut serde_json::Value)) -> RecordedHistory {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/tests/fixtures/histories/long-history.json");
    let recorded: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut history = lengthen(&recorded, rounds_for(events));
    edit(&mut history);
    let history = history_from_json(&history.to_string()).unwrap();
    let workflow_type = validate(&history).unwrap();
    RecordedHistory { name: format!("{events} events"), history, workflow_type, workflow_id: "long-history".into(), build_id: None }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_history_of_50_000_events_replays_cleanly_and_a_changed_one_does_not() {
    let registry = Arc::new(caisson_benches::registry_of("test-workflows", 8));
    let good = lengthened(50_000, |_| {});
    assert!(good.history.events.len() >= 49_990, "{}", good.history.events.len());
    let changed = lengthened(50_000, |h| {
        let last_scheduled =
            h["events"].as_array_mut().unwrap().iter_mut().rev().find(|e| e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED").unwrap();
        last_scheduled["activityTaskScheduledEventAttributes"]["activityType"]["name"] = "upper".into();
    });
    let outcomes = replay_on(registry, vec![good, changed], 2).await.unwrap();
    assert_eq!(outcomes[0], ReplayOutcome::Ok);
    assert!(matches!(&outcomes[1], ReplayOutcome::Nondeterminism(m) if m.contains("upper")), "{:?}", outcomes[1]);
}
