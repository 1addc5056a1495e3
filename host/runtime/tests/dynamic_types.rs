//! Plugins whose types are declared at run time (the `declarations` and
//! `dynamic` exports that the Python and JavaScript guest libraries use),
//! without a server: the types are learnt at load, each start runs
//! `dynamic.run` with the JSON arguments, and what the guest returns or
//! says before trapping reaches the commands and failures.

mod common;

use caisson_runtime::activity::{ActivityPlugin, Attempt, AttemptOutcome};
use caisson_runtime::loader::Plugin;
use caisson_runtime::settings::PluginSettings;
use caisson_runtime::workflow::bindings::Outcome;
use caisson_runtime::workflow::state::{Command, Job};
use caisson_runtime::workflow::{Activation, HandlerKind, WorkflowPlugin, WorkflowRun};
use serde_json::json;
use std::sync::Arc;

fn workflows() -> Arc<WorkflowPlugin> {
    match common::load(&common::loader(), "dynamic-workflows", PluginSettings::default()) {
        Plugin::Workflow(p) => p,
        Plugin::Activity(_) => panic!("dynamic-workflows is a workflow plugin"),
    }
}

fn activities() -> Arc<ActivityPlugin> {
    match common::load(&common::loader(), "dynamic-activities", PluginSettings::default()) {
        Plugin::Activity(p) => p,
        Plugin::Workflow(_) => panic!("dynamic-activities is an activity plugin"),
    }
}

fn start(plugin: &Arc<WorkflowPlugin>, workflow_type: &str, args: Vec<serde_json::Value>) -> WorkflowRun {
    let request = common::request(workflow_type, args);
    WorkflowRun::start(plugin.clone(), request).unwrap()
}

fn activate(run: &mut WorkflowRun, jobs: Vec<Job>) -> Result<Vec<Command>, caisson_runtime::workflow::TaskFailure> {
    run.activate(Activation { now_ms: 1_000, is_replaying: false, jobs })
}

#[test]
fn declared_workflow_types_are_served_with_their_handlers() {
    let plugin = workflows();
    let types: Vec<&str> = plugin.workflow_types().collect();
    assert_eq!(types, ["DynEcho", "DynFail", "DynGreet", "DynNotJson", "DynPanic"]);
    assert!(plugin.is_dynamic());
    let echo = plugin.declarations().iter().find(|d| d.name == "DynEcho").unwrap();
    let kinds: Vec<(HandlerKind, &str)> = echo.handlers.iter().map(|h| (h.kind, h.name.as_str())).collect();
    assert_eq!(kinds, [(HandlerKind::Signal, "poke"), (HandlerKind::Query, "state")]);
}

#[test]
fn a_dynamic_workflow_gets_its_arguments_as_json_and_its_result_completes_the_run() {
    let plugin = workflows();
    let mut run = start(&plugin, "DynEcho", vec![json!({"id": 7, "extra": [1, 2]}), json!("two")]);
    let commands = activate(&mut run, vec![]).unwrap();
    assert_eq!(commands, vec![Command::CompleteWorkflow { result: r#"[{"extra":[1,2],"id":7},"two"]"#.into() }]);
}

#[test]
fn a_dynamic_workflow_schedules_activities_and_fails_with_its_application_error() {
    let plugin = workflows();
    let mut run = start(&plugin, "DynGreet", vec![json!("Ada")]);
    let first = activate(&mut run, vec![]).unwrap();
    let Some(Command::ScheduleActivity { seq, options }) = first.first() else { panic!("{first:?}") };
    assert_eq!((options.activity_type.as_str(), options.args.clone()), ("dyn-greet", vec![r#""Ada""#.to_owned()]));
    let done = activate(&mut run, vec![Job::ResolveActivity { seq: *seq, outcome: Outcome::Completed(r#""hi Ada""#.into()) }]).unwrap();
    assert_eq!(done, vec![Command::CompleteWorkflow { result: r#""hi Ada""#.into() }]);

    let mut failing = start(&plugin, "DynFail", vec![]);
    match activate(&mut failing, vec![]).unwrap().as_slice() {
        [Command::FailWorkflow { message, error_type, non_retryable: true, .. }] => {
            assert_eq!((message.as_str(), error_type.as_str()), ("failed on purpose", "DynFailure"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_trap_fails_the_task_with_what_the_guest_logged_and_a_non_json_result_is_refused() {
    let plugin = workflows();
    let failure = activate(&mut start(&plugin, "DynPanic", vec![]), vec![]).unwrap_err();
    assert!(failure.message.contains("plugin dynamic-workflows (workflow DynPanic-1): panicked"), "{}", failure.message);
    assert!(failure.message.ends_with("its last error output: RuntimeError: boom"), "{}", failure.message);
    assert!(failure.stack_trace.as_deref().unwrap().starts_with("Traceback (most recent call last):"), "{failure:?}");

    let failure = activate(&mut start(&plugin, "DynNotJson", vec![]), vec![]).unwrap_err();
    assert!(failure.message.contains("returned a result that is not JSON"), "{}", failure.message);
    assert!(failure.message.contains("not json"), "{}", failure.message);
}

fn attempt(activity_type: &str) -> Arc<Attempt> {
    common::attempt_of("dynamic-activities", activity_type)
}

#[tokio::test]
async fn declared_activity_types_run_with_json_and_report_their_errors() {
    let plugin = activities();
    assert_eq!(plugin.activity_types().collect::<Vec<_>>(), ["dyn-fail", "dyn-greet", "dyn-traceback"]);
    assert!(plugin.is_dynamic());
    let greeted = plugin.run("dyn-greet", &[json!("Ada")], attempt("dyn-greet")).await;
    assert_eq!(greeted, AttemptOutcome::Completed(json!("Hello, Ada! (dynamic)")));
    let declined = plugin.run("dyn-fail", &[], attempt("dyn-fail")).await;
    assert_eq!(
        declined,
        AttemptOutcome::Failed {
            message: "declined".into(),
            error_type: "Declined".into(),
            non_retryable: true,
            details: Some(r#"{"code":7}"#.into())
        }
    );
    match plugin.run("dyn-traceback", &[], attempt("dyn-traceback")).await {
        AttemptOutcome::Failed { message, .. } => {
            assert!(message.ends_with("its last error output: ValueError: bad input"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}
