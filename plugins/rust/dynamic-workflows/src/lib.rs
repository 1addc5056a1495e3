//! Workflow types declared at run time, the way the Python and
//! JavaScript guest libraries declare theirs: the host learns the names
//! from `declarations.declare` and runs them through `dynamic.run` with
//! JSON arguments. For the host's tests; each type exercises one path.

wit_bindgen::generate!({
    world: "caisson-plugins:dynamic-workflows/dynamic-workflows",
    path: ["../../../wit/workflow", "wit"],
    generate_all,
});

use caisson::workflow::context;
use caisson::workflow::types::{ActivityOptions, ApplicationError, CancellationType, Event, LogLevel, Outcome};
use exports::caisson::workflow::declarations::{self, Handler, HandlerKind, WorkflowType};
use exports::caisson::workflow::{dynamic, queries};

struct DynamicWorkflows;

fn error(message: &str, error_type: &str) -> ApplicationError {
    ApplicationError { message: message.into(), error_type: error_type.into(), non_retryable: true, details: None }
}

impl declarations::Guest for DynamicWorkflows {
    fn declare() -> Vec<WorkflowType> {
        let handler = |name: &str, kind| Handler { name: name.into(), kind, has_validator: false, description: None };
        vec![
            WorkflowType {
                name: "DynEcho".into(),
                handlers: vec![handler("poke", HandlerKind::Signal), handler("state", HandlerKind::Query)],
                description: Some("returns its arguments as a JSON array".into()),
            },
            WorkflowType { name: "DynGreet".into(), handlers: vec![], description: Some("greets through the dyn-greet activity".into()) },
            WorkflowType { name: "DynFail".into(), handlers: vec![], description: None },
            WorkflowType { name: "DynPanic".into(), handlers: vec![], description: None },
            WorkflowType { name: "DynNotJson".into(), handlers: vec![], description: None },
        ]
    }
}

impl dynamic::Guest for DynamicWorkflows {
    fn run(workflow_type: String, args: Vec<String>) -> Result<String, ApplicationError> {
        match workflow_type.as_str() {
            "DynEcho" => Ok(format!("[{}]", args.join(","))),
            "DynGreet" => {
                let handle = context::start_activity(&ActivityOptions {
                    activity_type: "dyn-greet".into(),
                    args,
                    task_queue: None,
                    activity_id: None,
                    start_to_close_timeout_ms: Some(10_000),
                    schedule_to_close_timeout_ms: None,
                    schedule_to_start_timeout_ms: None,
                    heartbeat_timeout_ms: None,
                    retry_policy: None,
                    cancellation_type: CancellationType::TryCancel,
                    summary: None,
                    priority: None,
                });
                loop {
                    if let Event::Resolved(r) = context::wait(&[handle]) {
                        return match r.outcome {
                            Outcome::Completed(json) => Ok(json),
                            Outcome::Failed(f) => Err(error(&format!("dyn-greet failed: {f:?}"), "GreetFailed")),
                        };
                    }
                }
            }
            "DynFail" => Err(error("failed on purpose", "DynFailure")),
            "DynPanic" => {
                context::log(LogLevel::Error, "Traceback (most recent call last):\n  in DynPanic\nRuntimeError: boom");
                panic!("boom")
            }
            "DynNotJson" => Ok("not json".into()),
            other => Err(error(&format!("no workflow type {other}"), "NotFound")),
        }
    }
}

impl queries::Guest for DynamicWorkflows {
    fn handle(name: String, _args: Vec<String>) -> Result<String, String> {
        Err(format!("no query {name} after the run"))
    }
}

export!(DynamicWorkflows);
