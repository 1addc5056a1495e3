//! A tenant's payload codec applied to Temporal's protos: every payload of
//! an activation or activity task is decoded before the bridge reads it,
//! every payload of a completion or heartbeat encoded before core sends
//! it, as the SDKs do with their `PayloadCodec`.
//!
//! The walk is `temporalio-common`'s generated payload visitor, so no
//! field is forgotten when the protos grow: workflow arguments, signal,
//! query and update inputs, activity and child results, failures'
//! details, memos, last completion results, continue-as-new and child
//! arguments, query and update responses, heartbeat details. Two kinds of
//! payload are left as they are, as the Python SDK leaves them by default:
//! search attributes (the server indexes them) and headers (interceptors'
//! context, e.g. tracing). A failure's `encoded_attributes` are passed
//! through the codec like any payload (Caisson writes none; decoding one a
//! client encoded restores it).
//!
//! One codec call per message (an activation, a completion, a task): all
//! its payloads go together. Without a codec nothing is walked: the hooks
//! return at once.

use crate::bridge;
use caisson_runtime::activity::AttemptOutcome;
use caisson_runtime::codec::{Codec, CodecError, Operation, Payload as CodecPayload};
use futures::FutureExt as _;
use futures::future::BoxFuture;
use temporalio_common::data_converters::PayloadConversionError;
use temporalio_common::payload_visitor::{AsyncPayloadVisitor, PayloadField, PayloadFieldData, PayloadVisitable};
use temporalio_common::protos::coresdk::workflow_activation::WorkflowActivation;
use temporalio_common::protos::coresdk::workflow_completion::WorkflowActivationCompletion;
use temporalio_common::protos::coresdk::{ActivityHeartbeat, ActivityTaskCompletion};
use temporalio_common::protos::temporal::api::common::v1::Payload;
use temporalio_common::protos::temporal::api::failure::v1::Failure;

/// The failure type of an activity attempt whose payloads the codec
/// could not decode or encode (retryable: a fixed key or codec helps).
pub const CODEC_ERROR_TYPE: &str = "PayloadCodecError";

/// Decodes every payload of `message` in place.
pub fn decode<M: PayloadVisitable>(codec: &Codec, message: &mut M) -> Result<(), CodecError> {
    apply(codec, Operation::Decode, message)
}

/// Encodes every payload of `message` in place.
pub fn encode<M: PayloadVisitable>(codec: &Codec, message: &mut M) -> Result<(), CodecError> {
    apply(codec, Operation::Encode, message)
}

/// One workflow activation through the codec: decoded, processed by
/// `process`, its completion encoded. A codec failure either way fails the
/// workflow task (Temporal retries it) with the codec's message; the
/// worker goes on. Without a codec this is `process(activation)`.
pub fn activation(
    codec: Option<&Codec>,
    mut activation: WorkflowActivation,
    process: impl FnOnce(WorkflowActivation) -> WorkflowActivationCompletion,
) -> WorkflowActivationCompletion {
    let Some(codec) = codec else { return process(activation) };
    let run_id = activation.run_id.clone();
    if let Err(e) = decode(codec, &mut activation) {
        return failed_task(run_id, e);
    }
    let mut completion = process(activation);
    match encode(codec, &mut completion) {
        Ok(()) => completion,
        Err(e) => failed_task(run_id, e),
    }
}

fn failed_task(run_id: String, e: CodecError) -> WorkflowActivationCompletion {
    tracing::warn!(run_id = %run_id, "workflow task failed: {e}");
    WorkflowActivationCompletion::fail(run_id, Failure { message: e.to_string(), ..Default::default() }, None)
}

/// The outcome of an attempt whose input the codec could not decode.
pub fn attempt_failed(e: CodecError) -> AttemptOutcome {
    AttemptOutcome::Failed { message: e.to_string(), error_type: CODEC_ERROR_TYPE.into(), non_retryable: false, details: None }
}

/// Encodes an activity completion; when the codec fails, the attempt
/// fails instead (retryably, naming the codec).
pub fn encode_completion(codec: Option<&Codec>, completion: &mut ActivityTaskCompletion) {
    let Some(codec) = codec else { return };
    if let Err(e) = encode(codec, completion) {
        tracing::warn!("activity attempt failed: {e}");
        completion.result = Some(bridge::activity_result(attempt_failed(e)));
    }
}

/// A heartbeat with encoded details, or `None` (logged) when the codec
/// fails: the heartbeat is dropped, the attempt goes on.
pub fn encode_heartbeat(codec: Option<&Codec>, mut heartbeat: ActivityHeartbeat) -> Option<ActivityHeartbeat> {
    let Some(codec) = codec else { return Some(heartbeat) };
    match encode(codec, &mut heartbeat) {
        Ok(()) => Some(heartbeat),
        Err(e) => {
            tracing::warn!("heartbeat dropped: {e}");
            None
        }
    }
}

/// Every payload of `message` through one codec call: a walk takes them
/// out (in the visitor's order), the codec codes them all at once (one
/// instance per message, not one per field), a second walk puts them back
/// in the same order.
fn apply<M: PayloadVisitable>(codec: &Codec, operation: Operation, message: &mut M) -> Result<(), CodecError> {
    let fail = |message: String| CodecError::Call { codec: codec.name().to_owned(), operation, message };
    let mut take = Visitor::Take(Vec::new());
    walk(message, &mut take).map_err(fail)?;
    let Visitor::Take(taken) = take else { unreachable!("the take walk only takes") };
    if taken.is_empty() {
        return Ok(());
    }
    let coded = match operation {
        Operation::Encode => codec.encode(taken)?,
        Operation::Decode => codec.decode(taken)?,
    };
    walk(message, &mut Visitor::Put(coded.into_iter())).map_err(fail)
}

fn walk<M: PayloadVisitable>(message: &mut M, visitor: &mut Visitor) -> Result<(), String> {
    // The visitor never waits, so the walk completes in one poll.
    match message.visit_payloads_mut(visitor).now_or_never() {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("the payload walk did not complete".into()),
    }
}

/// Search attributes and headers stay as they are.
fn passed_over(path: &str) -> bool {
    let path = path.to_ascii_lowercase();
    path.contains("header") || path.contains("searchattributes") || path.contains("search_attributes")
}

/// One of the two walks of [`apply`].
enum Visitor {
    /// Takes each payload out, leaving it empty.
    Take(Vec<CodecPayload>),
    /// Puts the coded payloads back (the codec returned one for each).
    Put(std::vec::IntoIter<CodecPayload>),
}

impl Visitor {
    fn field(&mut self, field: PayloadField<'_>) -> Result<(), PayloadConversionError> {
        if passed_over(field.path) {
            return Ok(());
        }
        let payloads: &mut [Payload] = match field.data {
            PayloadFieldData::Single(p) => std::slice::from_mut(p),
            PayloadFieldData::Repeated(ps) => ps,
            PayloadFieldData::Payloads(ps) => &mut ps.payloads,
        };
        for p in payloads {
            match self {
                Visitor::Take(taken) => taken.push(CodecPayload {
                    metadata: std::mem::take(&mut p.metadata).into_iter().collect(),
                    data: std::mem::take(&mut p.data),
                }),
                Visitor::Put(coded) => {
                    let c = coded.next().ok_or(PayloadConversionError::WrongEncoding)?;
                    p.metadata = c.metadata.into_iter().collect();
                    p.data = c.data;
                }
            }
        }
        Ok(())
    }
}

impl AsyncPayloadVisitor for Visitor {
    fn visit<'a>(&'a mut self, field: PayloadField<'a>) -> BoxFuture<'a, Result<(), PayloadConversionError>> {
        Box::pin(std::future::ready(self.field(field)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_search_attributes_are_passed_over_and_the_rest_coded() {
        for path in [
            "coresdk.workflow_activation.InitializeWorkflow.headers",
            "coresdk.activity_task.Start.header_fields",
            "temporal.api.common.v1.Header.fields",
            "temporal.api.common.v1.SearchAttributes.indexed_fields",
        ] {
            assert!(passed_over(path), "{path}");
        }
        for path in [
            "coresdk.workflow_activation.InitializeWorkflow.arguments",
            "coresdk.ActivityHeartbeat.details",
            "temporal.api.common.v1.Memo.fields",
            "coresdk.workflow_commands.QuerySuccess.response",
        ] {
            assert!(!passed_over(path), "{path}");
        }
    }
}
