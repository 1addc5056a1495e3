//! The native reference workflow replays every fixture history cleanly,
//! unchanged (timer numbers skipped); and
//! both harnesses of the replay bench replay every history of a batch to
//! its end.

use caisson::replay::{RecordedHistory, ReplayOutcome, read_history, replay};
use caisson_benches::native::{self, NativeReplayer, TimerIds};
use std::path::Path;
use std::sync::Arc;
use temporalio_workflow::common::protos::temporal::api::history::v1::history_event::Attributes;

fn fixture(size: &str) -> RecordedHistory {
    read_history(&Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../host/tests/fixtures/histories/{size}.json"))).unwrap()
}

/// The history with its last timer firing under an id nobody gave it:
/// replay goes wrong at the very end.
fn wrong_at_the_end(size: &str) -> RecordedHistory {
    let mut recorded = fixture(size);
    let last = recorded
        .history
        .events
        .iter_mut()
        .rev()
        .find_map(|e| match e.attributes.as_mut() {
            Some(Attributes::TimerFiredEventAttributes(a)) => Some(a),
            _ => None,
        })
        .unwrap();
    last.timer_id = "9999".into();
    recorded
}

#[tokio::test(flavor = "multi_thread")]
async fn fixtures_replay_natively() {
    for mode in [TimerIds::Skip] {
        let replayer = NativeReplayer::new(mode);
        for size in ["small", "medium", "large"] {
            let history = fixture(size).history;
            for n in [1, 2, 5] {
                replayer.replay(replayer.copies(&history, n)).await.unwrap_or_else(|e| panic!("{mode:?} {size} x{n}: {e}"));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mismatch_is_caught() {
    // The recorded timer numbers with the SDK's own numbering: core sees a
    // timer fire under an id the workflow did not give it.
    let replayer = NativeReplayer::new(TimerIds::Renumbered);
    let error = replayer.replay(native::copies(&fixture("small").history, 1)).await.unwrap_err();
    assert!(error.to_string().contains("Timer fired event did not have expected timer id"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_copy_in_a_batch_is_replayed_to_its_end() {
    let n = 20;
    let wrong = wrong_at_the_end("small");

    let replayer = NativeReplayer::new(TimerIds::Skip);
    let error = replayer.replay(replayer.copies(&wrong.history, n)).await.unwrap_err();
    assert!(error.to_string().starts_with(&format!("{n} histories, {n} failed")), "{error}");

    let registry = caisson_benches::registry_of("test-workflows", 64);
    let outcomes = replay(Arc::new(registry), vec![wrong; n]).await.unwrap();
    assert!(outcomes.iter().all(|o| matches!(o, ReplayOutcome::Nondeterminism(_))), "{outcomes:?}");
}
