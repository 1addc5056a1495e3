//! A workflow that breaks determinism on purpose: it reads the real clock.
//! Caisson refuses to load it unless its manifest opts in to virtual time.

wit_bindgen::generate!({
    world: "caisson-plugins:clock-workflow/clock-workflow",
    path: ["../../../wit/workflow", "wit"],
    generate_all,
});

struct ClockWorkflow;

impl Guest for ClockWorkflow {
    fn what_time() -> u64 {
        caisson::workflow::context::log(caisson::workflow::context::LogLevel::Info, "reading the clock");
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

export!(ClockWorkflow);
