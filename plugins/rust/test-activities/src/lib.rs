//! Small activities used by the host's integration tests.

wit_bindgen::generate!({
    world: "caisson-plugins:test-activities/test-activities",
    path: ["../../../wit/activity", "wit"],
    with: {
        "caisson:activity/types@0.1.0": caisson_guest::activity::bindings::caisson::activity::types,
        "caisson:activity/context@0.1.0": caisson_guest::activity::bindings::caisson::activity::context,
    },
    generate_all,
});

use caisson_guest::activity as act;

struct TestActivities;

impl Guest for TestActivities {
    fn echo(value: String) -> String {
        value
    }

    fn upper(value: String) -> String {
        value.to_uppercase()
    }

    fn sleep_ms(ms: u64) -> u64 {
        let mut left = ms;
        while left > 0 && !act::context::is_cancelled() {
            let step = left.min(20);
            std::thread::sleep(std::time::Duration::from_millis(step));
            left -= step;
        }
        ms
    }

    fn step(name: String, fail: bool) -> Result<String, ApplicationError> {
        act::log(&format!("saga step {name}"));
        if fail { Err(act::fatal("StepFailed", format!("{name} failed"))) } else { Ok(format!("{name}: ok")) }
    }

    fn fail_until(succeed_at: u32) -> Result<u32, ApplicationError> {
        let attempt = act::info().attempt;
        if attempt < succeed_at { Err(act::error("Flaky", format!("attempt {attempt} fails"))) } else { Ok(attempt) }
    }
}

export!(TestActivities);
