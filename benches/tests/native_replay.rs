//! The native reference workflow replays every fixture history cleanly,
//! unchanged (timer numbers skipped) and with its timers renumbered.

use caisson::replay::read_history;
use caisson_benches::native::{self, NativeReplayer, TimerIds};
use std::path::Path;

fn fixture(size: &str) -> caisson::replay::RecordedHistory {
    read_history(&Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../host/tests/fixtures/histories/{size}.json"))).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn fixtures_replay_natively() {
    for mode in [TimerIds::Skip, TimerIds::Renumbered] {
        let replayer = NativeReplayer::new(mode);
        for size in ["small", "medium", "large"] {
            let history = fixture(size).history;
            replayer.replay(replayer.copies(&history, 3)).await.unwrap_or_else(|e| panic!("{mode:?} {size}: {e}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mismatch_is_caught() {
    // The recorded timer numbers with the SDK's own numbering: core sees a
    // timer fire under an id the workflow did not give it.
    let replayer = NativeReplayer::new(TimerIds::Renumbered);
    let history = fixture("small").history;
    let error = replayer.replay(native::copies(&history, 1)).await.unwrap_err();
    assert!(error.to_string().contains("Timer fired event did not have expected timer id"), "{error}");
}
