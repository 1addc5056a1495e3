//! The workflow runtime without a server: hand-written jobs in, commands
//! out. What Temporal would do between activations is played by the test.

mod common;

use caisson_runtime::loader::Plugin;
use caisson_runtime::settings::PluginSettings;
use caisson_runtime::workflow::bindings::{Failure, Outcome, Query, Signal};
use caisson_runtime::workflow::state::{Command, Job};
use caisson_runtime::workflow::{Activation, WorkflowPlugin, WorkflowRun};
use std::sync::Arc;

fn workflows(settings: PluginSettings) -> Arc<WorkflowPlugin> {
    match common::load(&common::loader(), "test-workflows", settings) {
        Plugin::Workflow(p) => p,
        Plugin::Activity(_) => panic!("test-workflows is a workflow plugin"),
    }
}

use common::request;

fn start(plugin: &Arc<WorkflowPlugin>, workflow_type: &str, args: Vec<serde_json::Value>) -> WorkflowRun {
    WorkflowRun::start(plugin.clone(), request(workflow_type, args)).unwrap()
}

fn activation(now_ms: u64, jobs: Vec<Job>) -> Activation {
    Activation { now_ms, is_replaying: false, jobs }
}

fn scheduled(commands: &[Command]) -> Vec<(u32, String, Vec<String>)> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::ScheduleActivity { seq, options } => Some((*seq, options.activity_type.clone(), options.args.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn parallel_activities_are_scheduled_at_once_and_their_results_complete_the_run() {
    let plugin = workflows(PluginSettings::default());
    let mut run = start(&plugin, "parallel", vec![serde_json::json!(3)]);
    let first = run.activate(activation(1_000, vec![])).unwrap();
    let activities = scheduled(&first);
    assert_eq!(activities.len(), 3, "{first:?}");
    assert!(activities.iter().all(|(_, ty, _)| ty == "echo"));
    assert_eq!(activities[1].2, vec!["\"item-1\"".to_owned()]);

    // Resolve them out of order: the result keeps the workflow's order.
    let resolve = |seq: u32, text: &str| Job::ResolveActivity { seq, outcome: Outcome::Completed(format!("\"{text}\"")) };
    let (a, b, c) = (activities[0].0, activities[1].0, activities[2].0);
    let second = run.activate(activation(2_000, vec![resolve(c, "C"), resolve(a, "A")])).unwrap();
    assert!(second.is_empty(), "still waiting for one activity: {second:?}");
    let last = run.activate(activation(3_000, vec![resolve(b, "B")])).unwrap();
    assert_eq!(last, vec![Command::CompleteWorkflow { result: r#"["A","B","C"]"#.into() }]);
}

#[test]
fn queries_are_answered_from_a_waiting_workflow_and_signals_decide_it() {
    let plugin = workflows(PluginSettings::default());
    let request = serde_json::json!({ "id": "E-1", "amount": 12.5, "timeout_ms": 60_000 });
    let mut run = start(&plugin, "expense-approval", vec![request]);
    let first = run.activate(activation(1_000, vec![])).unwrap();
    assert!(matches!(first.as_slice(), [Command::StartTimer { millis: 60_000, .. }]), "{first:?}");

    let query = Query { id: "q1".into(), name: "get-status".into(), args: vec![] };
    let answered = run.activate(activation(1_500, vec![Job::Query(query)])).unwrap();
    assert_eq!(
        answered,
        vec![Command::RespondToQuery { query_id: "q1".into(), answer: Ok(r#"{"decided_by":null,"state":"pending"}"#.into()) }]
    );

    let approve = Signal { name: "approve".into(), args: vec!["\"alice\"".into()] };
    let done = run.activate(activation(2_000, vec![Job::Signal(approve)])).unwrap();
    assert!(matches!(done.first(), Some(Command::CancelTimer { .. })), "the timeout timer is cancelled: {done:?}");
    assert_eq!(done.last(), Some(&Command::CompleteWorkflow { result: r#"{"decided_by":"alice","state":"approved"}"#.into() }));
}

#[test]
fn the_same_jobs_give_the_same_commands_on_every_run() {
    let plugin = workflows(PluginSettings::default());
    let play = || {
        let mut run = start(&plugin, "replay-mix", vec![serde_json::json!(3)]);
        let mut transcript = Vec::new();
        let mut jobs = vec![];
        for step in 0..20u64 {
            let commands = run.activate(activation(1_000 + step, std::mem::take(&mut jobs))).unwrap();
            for command in &commands {
                match command {
                    Command::ScheduleActivity { seq, .. } => {
                        jobs.push(Job::ResolveActivity { seq: *seq, outcome: Outcome::Completed("\"ok\"".into()) })
                    }
                    Command::StartTimer { seq, .. } => jobs.push(Job::FireTimer { seq: *seq }),
                    Command::SignalExternal { seq, signal_name, args, .. } => {
                        jobs.push(Job::ResolveSignalExternal { seq: *seq, failure: None });
                        jobs.push(Job::Signal(Signal { name: signal_name.clone(), args: args.clone() }));
                    }
                    Command::StartChild { seq, .. } => {
                        jobs.push(Job::ChildStarted { seq: *seq });
                        jobs.push(Job::ResolveChild { seq: *seq, outcome: Outcome::Completed("\"CHILD\"".into()) });
                    }
                    _ => {}
                }
            }
            let closed = commands.iter().any(Command::is_terminal);
            transcript.push(commands);
            if closed {
                break;
            }
        }
        transcript
    };
    let first = play();
    assert!(first.last().is_some_and(|c| c.iter().any(Command::is_terminal)), "the run completes: {first:?}");
    assert_eq!(first, play());
}

#[test]
fn a_failed_activity_reaches_the_guest_as_a_failure_value() {
    let plugin = workflows(PluginSettings::default());
    let mut run = start(&plugin, "saga", vec![serde_json::json!({ "id": "O-1", "fail_at": null })]);
    let first = run.activate(activation(1_000, vec![])).unwrap();
    let (seq, ty, _) = scheduled(&first).remove(0);
    assert_eq!(ty, "step");
    let failure = Failure::Other("the warehouse is closed".into());
    let next = run.activate(activation(2_000, vec![Job::ResolveActivity { seq, outcome: Outcome::Failed(failure) }])).unwrap();
    assert!(matches!(next.last(), Some(Command::FailWorkflow { message, .. }) if message.contains("warehouse")), "{next:?}");
}

#[test]
fn an_infinite_loop_fails_its_task_by_fuel_naming_the_plugin() {
    let plugin = workflows(PluginSettings { fuel: Some(5_000_000), ..PluginSettings::default() });
    let mut run = start(&plugin, "spin", vec![]);
    let failure = run.activate(activation(1_000, vec![])).unwrap_err();
    assert!(failure.message.contains("plugin test-workflows") && failure.message.contains("ran out of fuel"), "{failure}");
}

#[test]
fn a_guest_panic_fails_only_its_task() {
    let plugin = workflows(PluginSettings::default());
    let failure = start(&plugin, "panics", vec![]).activate(activation(1_000, vec![])).unwrap_err();
    assert!(failure.message.contains("panicked"), "{failure}");
    // The plugin goes on serving other runs.
    let ok = start(&plugin, "parallel", vec![serde_json::json!(1)]).activate(activation(1_000, vec![])).unwrap();
    assert_eq!(scheduled(&ok).len(), 1);
}

#[test]
fn unknown_types_and_bad_arguments_are_task_failures_naming_the_cause() {
    let plugin = workflows(PluginSettings::default());
    let unknown = WorkflowRun::start(plugin.clone(), request("nope", vec![])).unwrap_err();
    assert!(unknown.message.contains("no workflow type `nope`") && unknown.message.contains("parallel"), "{unknown}");
    let bad = WorkflowRun::start(plugin, request("parallel", vec![serde_json::json!("three")])).unwrap_err();
    assert!(bad.message.contains("workflow `parallel`"), "{bad}");
}
