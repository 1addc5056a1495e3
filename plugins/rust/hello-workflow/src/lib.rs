//! The smallest useful workflow: a durable timer, then one activity.

wit_bindgen::generate!({
    world: "caisson-plugins:hello-workflow/hello-workflow",
    path: ["../../../wit/frozen/workflow@0.1.0", "wit"],
    generate_all,
});

use caisson::workflow::context;
use caisson::workflow::types::{ActivityOptions, CancellationType, Event, Failure, Outcome};

struct HelloWorkflow;

impl Guest for HelloWorkflow {
    fn hello(name: String) -> Result<String, ApplicationError> {
        context::log(context::LogLevel::Info, &format!("hello workflow started for {name}"));
        let timer = context::start_timer(10);
        wait_for(timer)?;
        let greeting = context::start_activity(&ActivityOptions {
            activity_type: "greet".into(),
            args: vec![serde_json::to_string(&name).unwrap()],
            task_queue: None,
            activity_id: None,
            start_to_close_timeout_ms: Some(10_000),
            schedule_to_close_timeout_ms: None,
            schedule_to_start_timeout_ms: None,
            heartbeat_timeout_ms: None,
            retry_policy: None,
            cancellation_type: CancellationType::TryCancel,
        });
        let json = wait_for(greeting)?;
        serde_json::from_str(&json).map_err(|e| ApplicationError {
            message: format!("greet returned something that is not a string: {e}"),
            error_type: "BadActivityResult".into(),
            non_retryable: true,
            details: None,
        })
    }
}

/// Waits for one handle, ignoring signals and failing on anything but success.
fn wait_for(handle: context::Handle) -> Result<String, ApplicationError> {
    loop {
        match context::wait(&[handle]) {
            Event::Resolved(r) => {
                return match r.outcome {
                    Outcome::Completed(json) => Ok(json),
                    Outcome::Failed(Failure::Application(e)) => Err(e),
                    Outcome::Failed(other) => Err(ApplicationError {
                        message: format!("{other:?}"),
                        error_type: "StepFailed".into(),
                        non_retryable: true,
                        details: None,
                    }),
                };
            }
            Event::Query(q) => context::respond_query(&q.id, Err("hello has no queries")),
            Event::Signal(_) | Event::CancelRequested => {}
        }
    }
}

export!(HelloWorkflow);
