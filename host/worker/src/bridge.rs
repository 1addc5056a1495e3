//! The activation → completion boundary: Temporal core's protos on one
//! side, Caisson's workflow and activity runtimes on the other. Nothing
//! else in the host translates protos.

use caisson_runtime::activity::AttemptOutcome;
use caisson_runtime::payload::{self, ENCODING_KEY, JSON_PLAIN};
use caisson_runtime::workflow::bindings::{self as wit, CancellationType, ParentClosePolicy};
use caisson_runtime::workflow::state::{Command, Job, UpdateResponse};
use caisson_runtime::workflow::{Activation, StartRequest};
use prost_wkt_types::{Duration as ProtoDuration, Timestamp};
use serde_json::Value as Json;
use std::collections::HashMap;
use temporalio_common::protos::coresdk::activity_result::{ActivityExecutionResult, activity_resolution};
use temporalio_common::protos::coresdk::child_workflow::{self as child, ChildWorkflowCancellationType, child_workflow_result};
use temporalio_common::protos::coresdk::common::NamespacedWorkflowExecution;
use temporalio_common::protos::coresdk::workflow_activation::{
    WorkflowActivation, resolve_child_workflow_execution_start, workflow_activation_job::Variant as JobVariant,
};
use temporalio_common::protos::coresdk::workflow_commands::{
    self as cmd, ActivityCancellationType, QueryResult, QuerySuccess, query_result, signal_external_workflow_execution,
    workflow_command::Variant as CommandVariant,
};
use temporalio_common::protos::temporal::api::common::v1::{Memo, Payload, Payloads, Priority, RetryPolicy, SearchAttributes};
use temporalio_common::protos::temporal::api::failure::v1::{ApplicationFailureInfo, Failure, failure::FailureInfo};
use temporalio_common::protos::temporal::api::sdk::v1::UserMetadata;

/// A JSON text as a `json/plain` payload.
pub fn json_payload(json: &str) -> Payload {
    Payload {
        metadata: [(ENCODING_KEY.to_owned(), JSON_PLAIN.to_vec())].into_iter().collect(),
        data: json.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// A payload as JSON, or why it is not `json/plain`.
pub fn payload_json(p: &Payload) -> Result<Json, String> {
    payload::decode_payload(p.metadata.get(ENCODING_KEY).map(Vec::as_slice), &p.data)
}

/// A payload as JSON text for the guest. `json/plain` data is passed on
/// as it is (the guest parses it; parsing and re-printing it here would
/// do the work twice on every resolution of every replay).
fn payload_text(p: &Payload) -> Result<String, String> {
    match p.metadata.get(ENCODING_KEY).map(Vec::as_slice) {
        Some(b"json/plain") | None => String::from_utf8(p.data.clone()).map_err(|_| "json/plain payload is not UTF-8".to_owned()),
        _ => payload_json(p).map(|j| j.to_string()),
    }
}

fn payload_texts(ps: &[Payload]) -> Result<Vec<String>, String> {
    ps.iter().map(payload_text).collect()
}

/// A handler's input as JSON texts the guest can parse, or why not. Unlike
/// resolutions (written by the workflow's own code or SDK), inputs come
/// from any client, so `json/plain` data is checked to be JSON here rather
/// than left to fail inside the guest.
fn input_texts(ps: &[Payload]) -> Result<Vec<String>, String> {
    ps.iter()
        .enumerate()
        .map(|(i, p)| {
            let text = payload_text(p).map_err(|e| format!("argument {i}: {e}"))?;
            serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(|e| format!("argument {i}: invalid JSON: {e}"))?;
            Ok(text)
        })
        .collect()
}

fn millis(ms: Option<u64>) -> Option<ProtoDuration> {
    ms.map(|ms| ProtoDuration { seconds: (ms / 1000) as i64, nanos: ((ms % 1000) * 1_000_000) as i32 })
}

fn timestamp_ms(ts: &Option<Timestamp>) -> u64 {
    ts.as_ref().map_or(0, |t| (t.seconds.max(0) as u64).saturating_mul(1000).saturating_add((t.nanos.max(0) as u64) / 1_000_000))
}

/// An application failure proto.
pub fn application_failure(message: &str, error_type: &str, non_retryable: bool, details: Option<&str>) -> Failure {
    Failure {
        message: message.to_owned(),
        source: "caisson".into(),
        failure_info: Some(FailureInfo::ApplicationFailureInfo(ApplicationFailureInfo {
            r#type: error_type.to_owned(),
            non_retryable,
            details: details.map(|d| Payloads { payloads: vec![json_payload(d)] }),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// The innermost application failure, or what else ended the work.
pub fn failure_to_wit(f: &Failure) -> wit::Failure {
    let mut cur = f;
    while let Some(cause) = cur.cause.as_deref() {
        cur = cause;
    }
    match &cur.failure_info {
        Some(FailureInfo::ApplicationFailureInfo(info)) => wit::Failure::Application(wit::ApplicationError {
            message: cur.message.clone(),
            error_type: info.r#type.clone(),
            non_retryable: info.non_retryable,
            details: info.details.as_ref().and_then(|d| d.payloads.first()).and_then(|p| payload_text(p).ok()),
        }),
        Some(FailureInfo::TimeoutFailureInfo(info)) => {
            let kind = match info.timeout_type {
                1 => "start-to-close",
                2 => "schedule-to-start",
                3 => "schedule-to-close",
                4 => "heartbeat",
                _ => "unspecified",
            };
            wit::Failure::Timeout(kind.into())
        }
        Some(FailureInfo::CanceledFailureInfo(_)) => wit::Failure::Cancelled(cur.message.clone()),
        _ => wit::Failure::Other(if cur.message.is_empty() { f.message.clone() } else { cur.message.clone() }),
    }
}

/// How an activity or a child workflow ended, in core's terms.
enum Ended<'a> {
    Completed(Option<&'a Payload>),
    Failed(Option<&'a Failure>),
    Cancelled(Option<&'a Failure>),
    Missing,
}

/// The guest's view of how `what` ended.
fn outcome(what: &str, ended: Ended<'_>) -> Result<wit::Outcome, String> {
    Ok(match ended {
        Ended::Completed(result) => {
            wit::Outcome::Completed(result.map_or(Ok("null".into()), payload_text).map_err(|e| format!("{what} result: {e}"))?)
        }
        Ended::Failed(f) => wit::Outcome::Failed(f.map_or_else(|| wit::Failure::Other(format!("{what} failed")), failure_to_wit)),
        Ended::Cancelled(f) => {
            wit::Outcome::Failed(wit::Failure::Cancelled(f.map_or_else(|| format!("{what} cancelled"), |f| f.message.clone())))
        }
        Ended::Missing => wit::Outcome::Failed(wit::Failure::Other(format!("{what} resolved without a result"))),
    })
}

/// Which kind of handler an undecodable input was meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A signal: dropped, as the Temporal SDKs drop an undecodable signal.
    Signal,
}

impl InputKind {
    /// The metric label and log word.
    pub fn as_str(self) -> &'static str {
        match self {
            InputKind::Signal => "signal",
        }
    }
}

/// An input that could not be decoded for the workflow and was left out of
/// the activation. One bad client must not wedge a workflow: the input is
/// reported (WARN and `caisson_inputs_dropped`) and the rest of the
/// activation goes on. Updates, when they exist, take the same path with
/// their own kind and are answered with a rejection instead of silence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedInput {
    /// Signal (later: update).
    pub kind: InputKind,
    /// The handler's name (signal name).
    pub handler: String,
    /// Why it could not be decoded.
    pub cause: String,
}

/// What core's activation means for the runtime.
#[derive(Debug)]
pub enum Incoming {
    /// Drop the run's instance; answer with an empty completion.
    Evict {
        /// Why core evicted it.
        reason: String,
    },
    /// A new run (possibly a replay from the start), plus further jobs.
    Start(Box<StartRequest>, Activation),
    /// Jobs for a running workflow.
    Continue(Activation),
}

/// Translates an activation. Undecodable signal inputs are left out and
/// listed in the second value; `Err` names any other undecodable payload
/// (those come from the workflow's own history and fail the task).
pub fn incoming(act: &WorkflowActivation, namespace: &str, task_queue: &str) -> Result<(Incoming, Vec<DroppedInput>), String> {
    let mut dropped = Vec::new();
    let mut activation = Activation { now_ms: timestamp_ms(&act.timestamp), is_replaying: act.is_replaying, jobs: vec![] };
    let mut start = None;
    for job in &act.jobs {
        let Some(variant) = &job.variant else { continue };
        let next = match variant {
            JobVariant::RemoveFromCache(r) => {
                return Ok((Incoming::Evict { reason: format!("{:?}: {}", r.reason(), r.message) }, dropped));
            }
            JobVariant::InitializeWorkflow(init) => {
                let args = init
                    .arguments
                    .iter()
                    .enumerate()
                    .map(|(i, p)| payload_json(p).map_err(|e| format!("workflow argument {i}: {e}")))
                    .collect::<Result<Vec<_>, _>>()?;
                start = Some(StartRequest {
                    workflow_type: init.workflow_type.clone(),
                    args,
                    randomness_seed: init.randomness_seed,
                    info: wit::WorkflowInfo {
                        namespace: namespace.to_owned(),
                        task_queue: task_queue.to_owned(),
                        workflow_type: init.workflow_type.clone(),
                        workflow_id: init.workflow_id.clone(),
                        run_id: act.run_id.clone(),
                        attempt: init.attempt.max(1) as u32,
                        continued_from_run_id: Some(init.continued_from_execution_run_id.clone()).filter(|s| !s.is_empty()),
                        parent_workflow_id: init.parent_workflow_info.as_ref().map(|p| p.workflow_id.clone()),
                        memo: init.memo.as_ref().map(|m| memo_from_proto(&m.fields)).unwrap_or_default(),
                        search_attributes: init
                            .search_attributes
                            .as_ref()
                            .map(|s| search_attributes_from_proto(&s.indexed_fields))
                            .unwrap_or_default(),
                        start_time_ms: timestamp_ms(&init.start_time),
                    },
                });
                continue;
            }
            JobVariant::FireTimer(t) => Job::FireTimer { seq: t.seq },
            JobVariant::UpdateRandomSeed(s) => Job::UpdateRandomSeed { seed: s.randomness_seed },
            JobVariant::QueryWorkflow(q) => Job::Query(wit::Query {
                id: q.query_id.clone(),
                name: q.query_type.clone(),
                args: payload_texts(&q.arguments).map_err(|e| format!("query `{}`: {e}", q.query_type))?,
            }),
            JobVariant::CancelWorkflow(_) => Job::Cancel,
            JobVariant::SignalWorkflow(s) => match input_texts(&s.input) {
                Ok(args) => Job::Signal(wit::Signal { name: s.signal_name.clone(), args }),
                Err(cause) => {
                    dropped.push(DroppedInput { kind: InputKind::Signal, handler: s.signal_name.clone(), cause });
                    continue;
                }
            },
            JobVariant::ResolveActivity(r) => {
                let ended = match r.result.as_ref().and_then(|res| res.status.as_ref()) {
                    Some(activity_resolution::Status::Completed(ok)) => Ended::Completed(ok.result.as_ref()),
                    Some(activity_resolution::Status::Failed(f)) => Ended::Failed(f.failure.as_ref()),
                    Some(activity_resolution::Status::Cancelled(c)) => Ended::Cancelled(c.failure.as_ref()),
                    Some(activity_resolution::Status::Backoff(b)) => {
                        activation.jobs.push(Job::LocalActivityBackoff {
                            seq: r.seq,
                            attempt: b.attempt,
                            backoff_ms: b.backoff_duration.as_ref().map_or(0, |d| {
                                (d.seconds.max(0) as u64).saturating_mul(1000).saturating_add(d.nanos.max(0) as u64 / 1_000_000)
                            }),
                            original_schedule_time_ms: b.original_schedule_time.as_ref().map(|t| timestamp_ms(&Some(*t))),
                        });
                        continue;
                    }
                    None => Ended::Missing,
                };
                Job::ResolveActivity { seq: r.seq, outcome: outcome("activity", ended)? }
            }
            JobVariant::NotifyHasPatch(p) => Job::NotifyHasPatch { patch_id: p.patch_id.clone() },
            JobVariant::ResolveChildWorkflowExecutionStart(r) => match &r.status {
                Some(resolve_child_workflow_execution_start::Status::Succeeded(_)) => Job::ChildStarted { seq: r.seq },
                Some(resolve_child_workflow_execution_start::Status::Failed(f)) => Job::ChildStartFailed {
                    seq: r.seq,
                    failure: wit::Failure::Other(format!(
                        "child workflow {} ({}) could not start: {:?}",
                        f.workflow_id,
                        f.workflow_type,
                        f.cause()
                    )),
                },
                Some(resolve_child_workflow_execution_start::Status::Cancelled(c)) => Job::ChildStartFailed {
                    seq: r.seq,
                    failure: wit::Failure::Cancelled(c.failure.as_ref().map_or_else(String::new, |f| f.message.clone())),
                },
                None => continue,
            },
            JobVariant::ResolveChildWorkflowExecution(r) => {
                let ended = match r.result.as_ref().and_then(|res| res.status.as_ref()) {
                    Some(child_workflow_result::Status::Completed(ok)) => Ended::Completed(ok.result.as_ref()),
                    Some(child_workflow_result::Status::Failed(f)) => Ended::Failed(f.failure.as_ref()),
                    Some(child_workflow_result::Status::Cancelled(c)) => Ended::Cancelled(c.failure.as_ref()),
                    None => Ended::Missing,
                };
                Job::ResolveChild { seq: r.seq, outcome: outcome("child workflow", ended)? }
            }
            JobVariant::ResolveSignalExternalWorkflow(r) => {
                Job::ResolveSignalExternal { seq: r.seq, failure: r.failure.as_ref().map(failure_to_wit) }
            }
            // Not issued by Caisson workflows: nothing to resolve.
            JobVariant::DoUpdate(u) => match payload_texts(&u.input) {
                Ok(args) => Job::Update {
                    update: wit::Update { id: u.id.clone(), name: u.name.clone(), args, run_validator: u.run_validator },
                    protocol_instance_id: u.protocol_instance_id.clone(),
                },
                // An input the workflow could not read is rejected, never
                // the whole activation failed: a client cannot wedge a run.
                Err(e) => Job::RejectUpdate {
                    protocol_instance_id: u.protocol_instance_id.clone(),
                    message: format!("update `{}`: its input cannot be read ({e})", u.name),
                },
            },
            JobVariant::ResolveRequestCancelExternalWorkflow(_)
            | JobVariant::ResolveNexusOperationStart(_)
            | JobVariant::ResolveNexusOperation(_) => continue,
        };
        activation.jobs.push(next);
    }
    let incoming = match start {
        Some(request) => Incoming::Start(Box::new(request), activation),
        None => Incoming::Continue(activation),
    };
    Ok((incoming, dropped))
}

fn retry_policy(p: &Option<wit::RetryPolicy>) -> Option<RetryPolicy> {
    p.as_ref().map(|p| RetryPolicy {
        initial_interval: millis(p.initial_interval_ms),
        backoff_coefficient: p.backoff_coefficient.unwrap_or(0.0),
        maximum_interval: millis(p.maximum_interval_ms),
        maximum_attempts: p.maximum_attempts.map_or(0, |n| n as i32),
        non_retryable_error_types: p.non_retryable_error_types.clone(),
    })
}

fn payloads(args: &[String]) -> Vec<Payload> {
    args.iter().map(|a| json_payload(a)).collect()
}

/// Where the commands of one tenant's workflows go.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    /// The namespace (children and external signals stay in it).
    pub namespace: &'a str,
    /// Work without an explicit task queue goes to the workflow's own.
    pub task_queue: &'a str,
    /// The fairness key of activities and children that set none: the
    /// tenant's name in a multi-tenant worker, so tenants share fairly.
    pub fairness_key: Option<&'a str>,
}

/// Translates commands for core, with their user metadata (summaries).
pub fn outgoing(commands: Vec<Command>, to: Destination<'_>) -> Vec<cmd::WorkflowCommand> {
    let (namespace, task_queue) = (to.namespace, to.task_queue);
    let queue = |q: Option<String>| q.filter(|q| !q.is_empty()).unwrap_or_else(|| task_queue.to_owned());
    let priority = |p: Option<wit::Priority>| {
        let fairness = |key: Option<String>| key.or_else(|| to.fairness_key.map(str::to_owned)).unwrap_or_default();
        match p {
            Some(p) => Some(Priority {
                priority_key: p.priority_key.map_or(0, |k| k.min(i32::MAX as u32) as i32),
                fairness_key: fairness(p.fairness_key),
                fairness_weight: p.fairness_weight.unwrap_or(0.0),
            }),
            None => to.fairness_key.map(|key| Priority { fairness_key: key.to_owned(), ..Default::default() }),
        }
    };
    commands
        .into_iter()
        .map(|c| {
            let summary = match &c {
                Command::ScheduleActivity { options, .. } => options.summary.clone(),
                Command::ScheduleLocalActivity { options, .. } => options.summary.clone(),
                Command::StartTimer { summary, .. } => summary.clone(),
                Command::StartChild { options, .. } => options.static_summary.clone(),
                _ => None,
            };
            let details = match &c {
                Command::StartChild { options, .. } => options.static_details.clone(),
                _ => None,
            };
            let user_metadata = (summary.is_some() || details.is_some()).then(|| UserMetadata {
                summary: summary.map(|s| json_payload(&Json::String(s).to_string())),
                details: details.map(|d| json_payload(&Json::String(d).to_string())),
            });
            cmd::WorkflowCommand { variant: Some(command(c, namespace, &queue, &priority)), user_metadata, ..Default::default() }
        })
        .collect()
}

fn command(
    c: Command,
    namespace: &str,
    queue: &impl Fn(Option<String>) -> String,
    priority: &impl Fn(Option<wit::Priority>) -> Option<Priority>,
) -> CommandVariant {
    let activity_cancellation = |c: CancellationType| {
        let c = match c {
            CancellationType::TryCancel => ActivityCancellationType::TryCancel,
            CancellationType::WaitCancellationCompleted => ActivityCancellationType::WaitCancellationCompleted,
            CancellationType::Abandon => ActivityCancellationType::Abandon,
        };
        c as i32
    };
    match c {
        Command::ScheduleLocalActivity { seq, options: o, attempt, original_schedule_time_ms } => {
            CommandVariant::ScheduleLocalActivity(cmd::ScheduleLocalActivity {
                seq,
                activity_id: o.activity_id.unwrap_or_else(|| seq.to_string()),
                activity_type: o.activity_type,
                attempt,
                original_schedule_time: original_schedule_time_ms.map(timestamp),
                arguments: payloads(&o.args),
                schedule_to_close_timeout: millis(o.schedule_to_close_timeout_ms),
                schedule_to_start_timeout: millis(o.schedule_to_start_timeout_ms),
                start_to_close_timeout: millis(o.start_to_close_timeout_ms),
                retry_policy: retry_policy(&o.retry_policy),
                local_retry_threshold: millis(o.local_retry_threshold_ms),
                cancellation_type: activity_cancellation(o.cancellation_type),
                ..Default::default()
            })
        }
        Command::RequestCancelLocalActivity { seq } => CommandVariant::RequestCancelLocalActivity(cmd::RequestCancelLocalActivity { seq }),
        Command::RespondWithMetadata { query_id, current_details } => {
            // A `temporal.api.sdk.v1.WorkflowMetadata` in proto3 JSON, as
            // the SDKs answer it, so the CLI and the UI can decode it.
            let json = serde_json::json!({ "currentDetails": current_details }).to_string();
            let mut response = json_payload(&json);
            response.metadata.insert(ENCODING_KEY.to_owned(), b"json/protobuf".to_vec());
            response.metadata.insert("messageType".to_owned(), b"temporal.api.sdk.v1.WorkflowMetadata".to_vec());
            CommandVariant::RespondToQuery(QueryResult {
                query_id,
                variant: Some(query_result::Variant::Succeeded(QuerySuccess { response: Some(response) })),
            })
        }
        Command::UpdateResponse { protocol_instance_id, response } => CommandVariant::UpdateResponse(cmd::UpdateResponse {
            protocol_instance_id,
            response: Some(match response {
                UpdateResponse::Accepted => cmd::update_response::Response::Accepted(()),
                UpdateResponse::Rejected(e) => cmd::update_response::Response::Rejected(application_failure(
                    &e.message,
                    &e.error_type,
                    e.non_retryable,
                    e.details.as_deref(),
                )),
                UpdateResponse::Completed(json) => cmd::update_response::Response::Completed(json_payload(&json)),
            }),
        }),
        Command::UpsertSearchAttributes { attributes } => {
            CommandVariant::UpsertWorkflowSearchAttributes(cmd::UpsertWorkflowSearchAttributes {
                search_attributes: Some(SearchAttributes { indexed_fields: search_attributes_to_proto(&attributes) }),
            })
        }
        Command::ModifyMemo { fields } => CommandVariant::ModifyWorkflowProperties(cmd::ModifyWorkflowProperties {
            upserted_memo: Some(Memo { fields: memo_to_proto(&fields) }),
        }),
        Command::ScheduleActivity { seq, options: o } => CommandVariant::ScheduleActivity(cmd::ScheduleActivity {
            seq,
            activity_id: o.activity_id.unwrap_or_else(|| seq.to_string()),
            activity_type: o.activity_type,
            task_queue: queue(o.task_queue),
            arguments: payloads(&o.args),
            schedule_to_close_timeout: millis(o.schedule_to_close_timeout_ms),
            schedule_to_start_timeout: millis(o.schedule_to_start_timeout_ms),
            start_to_close_timeout: millis(o.start_to_close_timeout_ms),
            heartbeat_timeout: millis(o.heartbeat_timeout_ms),
            retry_policy: retry_policy(&o.retry_policy),
            cancellation_type: activity_cancellation(o.cancellation_type),
            priority: priority(o.priority),
            ..Default::default()
        }),
        Command::StartTimer { seq, millis: ms, .. } => {
            CommandVariant::StartTimer(cmd::StartTimer { seq, start_to_fire_timeout: millis(Some(ms)) })
        }
        Command::CancelTimer { seq } => CommandVariant::CancelTimer(cmd::CancelTimer { seq }),
        Command::RequestCancelActivity { seq } => CommandVariant::RequestCancelActivity(cmd::RequestCancelActivity { seq }),
        Command::StartChild { seq, workflow_id, options: o } => {
            CommandVariant::StartChildWorkflowExecution(cmd::StartChildWorkflowExecution {
                seq,
                namespace: namespace.to_owned(),
                workflow_id,
                workflow_type: o.workflow_type,
                task_queue: queue(o.task_queue),
                input: payloads(&o.args),
                workflow_execution_timeout: millis(o.execution_timeout_ms),
                workflow_run_timeout: millis(o.run_timeout_ms),
                retry_policy: retry_policy(&o.retry_policy),
                parent_close_policy: match o.parent_close_policy {
                    ParentClosePolicy::Terminate => child::ParentClosePolicy::Terminate,
                    ParentClosePolicy::Abandon => child::ParentClosePolicy::Abandon,
                    ParentClosePolicy::RequestCancel => child::ParentClosePolicy::RequestCancel,
                } as i32,
                cancellation_type: match o.cancellation_type {
                    CancellationType::TryCancel => ChildWorkflowCancellationType::TryCancel,
                    CancellationType::WaitCancellationCompleted => ChildWorkflowCancellationType::WaitCancellationCompleted,
                    CancellationType::Abandon => ChildWorkflowCancellationType::Abandon,
                } as i32,
                memo: memo_to_proto(&o.memo),
                search_attributes: (!o.search_attributes.is_empty())
                    .then(|| SearchAttributes { indexed_fields: search_attributes_to_proto(&o.search_attributes) }),
                priority: priority(o.priority),
                ..Default::default()
            })
        }
        Command::CancelChild { seq } => CommandVariant::CancelChildWorkflowExecution(cmd::CancelChildWorkflowExecution {
            child_workflow_seq: seq,
            reason: "cancelled by the parent workflow".into(),
        }),
        Command::SignalExternal { seq, workflow_id, signal_name, args } => {
            CommandVariant::SignalExternalWorkflowExecution(cmd::SignalExternalWorkflowExecution {
                seq,
                target: Some(signal_external_workflow_execution::Target::WorkflowExecution(NamespacedWorkflowExecution {
                    namespace: namespace.to_owned(),
                    workflow_id,
                    run_id: String::new(),
                })),
                signal_name,
                args: payloads(&args),
                ..Default::default()
            })
        }
        Command::CancelSignalExternal { seq } => CommandVariant::CancelSignalWorkflow(cmd::CancelSignalWorkflow { seq }),
        Command::SetPatchMarker { patch_id, deprecated } => CommandVariant::SetPatchMarker(cmd::SetPatchMarker { patch_id, deprecated }),
        Command::RespondToQuery { query_id, answer } => CommandVariant::RespondToQuery(QueryResult {
            query_id,
            variant: Some(match answer {
                Ok(json) => query_result::Variant::Succeeded(QuerySuccess { response: Some(json_payload(&json)) }),
                Err(message) => query_result::Variant::Failed(Failure { message, ..Default::default() }),
            }),
        }),
        Command::CompleteWorkflow { result } => {
            CommandVariant::CompleteWorkflowExecution(cmd::CompleteWorkflowExecution { result: Some(json_payload(&result)) })
        }
        Command::FailWorkflow { message, error_type, non_retryable, details } => {
            CommandVariant::FailWorkflowExecution(cmd::FailWorkflowExecution {
                failure: Some(application_failure(&message, &error_type, non_retryable, details.as_deref())),
            })
        }
        Command::CancelWorkflow => CommandVariant::CancelWorkflowExecution(cmd::CancelWorkflowExecution { details: None }),
        Command::ContinueAsNew { options } => CommandVariant::ContinueAsNewWorkflowExecution(cmd::ContinueAsNewWorkflowExecution {
            workflow_type: options.workflow_type.unwrap_or_default(),
            task_queue: queue(options.task_queue),
            arguments: payloads(&options.args),
            memo: memo_to_proto(&options.memo),
            search_attributes: (!options.search_attributes.is_empty())
                .then(|| SearchAttributes { indexed_fields: search_attributes_to_proto(&options.search_attributes) }),
            ..Default::default()
        }),
    }
}

fn timestamp(ms: u64) -> Timestamp {
    Timestamp { seconds: (ms / 1000) as i64, nanos: ((ms % 1000) * 1_000_000) as i32 }
}

/// Memo fields as Temporal's payload map (JSON; a removed field is an
/// empty payload, which the server deletes).
fn memo_to_proto(fields: &[wit::MemoField]) -> HashMap<String, Payload> {
    fields
        .iter()
        .map(|f| {
            let payload = match &f.value {
                Some(json) => json_payload(json),
                None => null_payload(),
            };
            (f.name.clone(), payload)
        })
        .collect()
}

fn memo_from_proto(fields: &HashMap<String, Payload>) -> Vec<wit::MemoField> {
    let mut memo: Vec<wit::MemoField> =
        fields.iter().map(|(name, p)| wit::MemoField { name: name.clone(), value: payload_text(p).ok() }).collect();
    memo.sort_by(|a, b| a.name.cmp(&b.name));
    memo
}

/// The `binary/null` payload SDKs send to remove a memo field or unset a
/// search attribute.
fn null_payload() -> Payload {
    Payload { metadata: [(ENCODING_KEY.to_owned(), b"binary/null".to_vec())].into_iter().collect(), ..Default::default() }
}

/// Search attributes as Temporal's payloads: JSON with the type in the
/// `type` metadata, as every SDK writes them.
fn search_attributes_to_proto(attributes: &[wit::SearchAttribute]) -> HashMap<String, Payload> {
    use wit::SearchAttributeValue as V;
    attributes
        .iter()
        .map(|a| {
            let payload = match &a.value {
                None => null_payload(),
                Some(value) => {
                    let (json, kind) = match value {
                        V::Keyword(s) => (Json::String(s.clone()), "Keyword"),
                        V::Text(s) => (Json::String(s.clone()), "Text"),
                        V::Int(i) => (Json::from(*i), "Int"),
                        V::Double(f) => (serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number), "Double"),
                        V::Bool(b) => (Json::Bool(*b), "Bool"),
                        V::Datetime(s) => (Json::String(s.clone()), "Datetime"),
                        V::KeywordList(l) => (Json::from(l.clone()), "KeywordList"),
                    };
                    let mut p = json_payload(&json.to_string());
                    p.metadata.insert("type".into(), kind.as_bytes().to_vec());
                    p
                }
            };
            (a.name.clone(), payload)
        })
        .collect()
}

/// Search attributes from Temporal's payloads, typed by their `type`
/// metadata (or, without it, by the JSON value's shape).
fn search_attributes_from_proto(fields: &HashMap<String, Payload>) -> Vec<wit::SearchAttribute> {
    use wit::SearchAttributeValue as V;
    let mut attributes: Vec<wit::SearchAttribute> = fields
        .iter()
        .filter_map(|(name, p)| {
            let json = payload_json(p).ok()?;
            let kind = p.metadata.get("type").map(|t| String::from_utf8_lossy(t).into_owned()).unwrap_or_default();
            let value = match (kind.as_str(), &json) {
                (_, Json::Null) => return None,
                ("Text", Json::String(s)) => V::Text(s.clone()),
                ("Datetime", Json::String(s)) => V::Datetime(s.clone()),
                ("Keyword" | "", Json::String(s)) => V::Keyword(s.clone()),
                ("Double", Json::Number(n)) => V::Double(n.as_f64()?),
                (_, Json::Number(n)) if n.is_i64() => V::Int(n.as_i64()?),
                (_, Json::Number(n)) => V::Double(n.as_f64()?),
                (_, Json::Bool(b)) => V::Bool(*b),
                (_, Json::Array(items)) => V::KeywordList(items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect()),
                (_, Json::String(s)) => V::Keyword(s.clone()),
                (_, Json::Object(_)) => return None,
            };
            Some(wit::SearchAttribute { name: name.clone(), value: Some(value) })
        })
        .collect();
    attributes.sort_by(|a, b| a.name.cmp(&b.name));
    attributes
}

/// An attempt's outcome as core's activity result.
pub fn activity_result(outcome: AttemptOutcome) -> ActivityExecutionResult {
    match outcome {
        AttemptOutcome::Completed(json) => ActivityExecutionResult::ok(json_payload(&json.to_string())),
        AttemptOutcome::Failed { message, error_type, non_retryable, details } => {
            ActivityExecutionResult::fail(application_failure(&message, &error_type, non_retryable, details.as_deref()))
        }
        AttemptOutcome::Cancelled => ActivityExecutionResult::cancel_from_details(None),
    }
}
