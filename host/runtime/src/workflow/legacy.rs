//! `caisson:workflow@0.1.0` served on top of the 0.2.0 context.
//!
//! A plugin built against 0.1.0 keeps loading: its context calls are
//! converted to their 0.2.0 counterparts (new fields take their empty
//! values) and the results back. 0.1.0 has no updates; a run of such a
//! plugin has `updates_supported = false`, so the host rejects updates
//! before they could reach `wait`. Its way of ending as cancelled — an
//! error of type `CancelledError` after a cancellation request — is kept
//! for it alone (see `WorkflowRun::completion`).

use super::bindings::{self as now, v0_1 as old};
use super::host::WorkflowHost;

fn retry_policy(p: old::RetryPolicy) -> now::RetryPolicy {
    now::RetryPolicy {
        initial_interval_ms: p.initial_interval_ms,
        backoff_coefficient: p.backoff_coefficient,
        maximum_interval_ms: p.maximum_interval_ms,
        maximum_attempts: p.maximum_attempts,
        non_retryable_error_types: p.non_retryable_error_types,
    }
}

fn cancellation_type(c: old::CancellationType) -> now::CancellationType {
    match c {
        old::CancellationType::WaitCancellationCompleted => now::CancellationType::WaitCancellationCompleted,
        old::CancellationType::TryCancel => now::CancellationType::TryCancel,
        old::CancellationType::Abandon => now::CancellationType::Abandon,
    }
}

fn application_error(e: now::ApplicationError) -> old::ApplicationError {
    old::ApplicationError { message: e.message, error_type: e.error_type, non_retryable: e.non_retryable, details: e.details }
}

fn outcome(o: now::Outcome) -> old::Outcome {
    match o {
        now::Outcome::Completed(json) => old::Outcome::Completed(json),
        now::Outcome::Failed(f) => old::Outcome::Failed(match f {
            now::Failure::Application(e) => old::Failure::Application(application_error(e)),
            now::Failure::Timeout(kind) => old::Failure::Timeout(kind),
            now::Failure::Cancelled(m) => old::Failure::Cancelled(m),
            now::Failure::Other(m) => old::Failure::Other(m),
        }),
    }
}

fn event(e: now::Event) -> wasmtime::Result<old::Event> {
    Ok(match e {
        now::Event::Resolved(r) => old::Event::Resolved(old::Resolution { handle: r.handle, outcome: outcome(r.outcome) }),
        now::Event::Signal(s) => old::Event::Signal(old::Signal { name: s.name, args: s.args }),
        now::Event::Query(q) => old::Event::Query(old::Query { id: q.id, name: q.name, args: q.args }),
        now::Event::CancelRequested => old::Event::CancelRequested,
        // `updates_supported` is false for these runs: updates are
        // rejected when they arrive and never queued for `wait`.
        now::Event::Update(u) => wasmtime::bail!("internal error: update `{}` queued for a caisson:workflow@0.1.0 plugin", u.name),
    })
}

fn log_level(l: old::LogLevel) -> now::LogLevel {
    match l {
        old::LogLevel::Trace => now::LogLevel::Trace,
        old::LogLevel::Debug => now::LogLevel::Debug,
        old::LogLevel::Info => now::LogLevel::Info,
        old::LogLevel::Warn => now::LogLevel::Warn,
        old::LogLevel::Error => now::LogLevel::Error,
    }
}

impl old::caisson::workflow::types::Host for WorkflowHost {}

impl old::caisson::workflow::context::Host for WorkflowHost {
    fn start_activity(&mut self, o: old::ActivityOptions) -> wasmtime::Result<u32> {
        let options = now::ActivityOptions {
            activity_type: o.activity_type,
            args: o.args,
            task_queue: o.task_queue,
            activity_id: o.activity_id,
            start_to_close_timeout_ms: o.start_to_close_timeout_ms,
            schedule_to_close_timeout_ms: o.schedule_to_close_timeout_ms,
            schedule_to_start_timeout_ms: o.schedule_to_start_timeout_ms,
            heartbeat_timeout_ms: o.heartbeat_timeout_ms,
            retry_policy: o.retry_policy.map(retry_policy),
            cancellation_type: cancellation_type(o.cancellation_type),
            summary: None,
            priority: None,
        };
        Ok(self.state().start_activity(options)?)
    }

    fn start_timer(&mut self, duration: u64) -> wasmtime::Result<u32> {
        Ok(self.state().start_timer(duration, None)?)
    }

    fn start_child_workflow(&mut self, o: old::ChildWorkflowOptions) -> wasmtime::Result<u32> {
        let options = now::ChildWorkflowOptions {
            workflow_type: o.workflow_type,
            args: o.args,
            workflow_id: o.workflow_id,
            task_queue: o.task_queue,
            execution_timeout_ms: o.execution_timeout_ms,
            run_timeout_ms: o.run_timeout_ms,
            retry_policy: o.retry_policy.map(retry_policy),
            parent_close_policy: match o.parent_close_policy {
                old::ParentClosePolicy::Terminate => now::ParentClosePolicy::Terminate,
                old::ParentClosePolicy::Abandon => now::ParentClosePolicy::Abandon,
                old::ParentClosePolicy::RequestCancel => now::ParentClosePolicy::RequestCancel,
            },
            cancellation_type: cancellation_type(o.cancellation_type),
            memo: vec![],
            search_attributes: vec![],
            static_summary: None,
            static_details: None,
            priority: None,
        };
        Ok(self.state().start_child(options)?)
    }

    fn signal_external_workflow(&mut self, workflow_id: String, signal_name: String, args: Vec<String>) -> wasmtime::Result<u32> {
        Ok(self.state().signal_external(workflow_id, signal_name, args)?)
    }

    fn cancel(&mut self, handle: u32) -> wasmtime::Result<()> {
        Ok(self.state().cancel(handle)?)
    }

    async fn wait(&mut self, handles: Vec<u32>) -> wasmtime::Result<old::Event> {
        event(self.wait_event(handles).await?)
    }

    fn poll(&mut self, handle: u32) -> wasmtime::Result<Option<old::Outcome>> {
        Ok(self.state().poll(handle)?.map(outcome))
    }

    fn respond_query(&mut self, id: String, answer: Result<String, String>) -> wasmtime::Result<()> {
        Ok(self.state().respond_query(&id, answer)?)
    }

    fn is_cancel_requested(&mut self) -> wasmtime::Result<bool> {
        Ok(self.state().is_cancel_requested())
    }

    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(self.state().now_ms)
    }

    fn random_u64(&mut self) -> wasmtime::Result<u64> {
        Ok(self.state().rng.next_u64())
    }

    fn patched(&mut self, patch_id: String) -> wasmtime::Result<bool> {
        Ok(self.state().patched(&patch_id, false))
    }

    fn deprecate_patch(&mut self, patch_id: String) -> wasmtime::Result<()> {
        self.state().patched(&patch_id, true);
        Ok(())
    }

    fn info(&mut self) -> wasmtime::Result<old::WorkflowInfo> {
        let info = self.state().info.clone();
        Ok(old::WorkflowInfo {
            namespace: info.namespace,
            task_queue: info.task_queue,
            workflow_type: info.workflow_type,
            workflow_id: info.workflow_id,
            run_id: info.run_id,
            attempt: info.attempt,
            continued_from_run_id: info.continued_from_run_id,
            parent_workflow_id: info.parent_workflow_id,
        })
    }

    fn is_replaying(&mut self) -> wasmtime::Result<bool> {
        Ok(self.state().is_replaying)
    }

    fn log(&mut self, level: old::LogLevel, message: String) -> wasmtime::Result<()> {
        self.log_message(log_level(level), &message);
        Ok(())
    }

    async fn continue_as_new(&mut self, o: old::ContinueAsNewOptions) -> wasmtime::Result<()> {
        let options = now::ContinueAsNewOptions {
            workflow_type: o.workflow_type,
            args: o.args,
            task_queue: o.task_queue,
            memo: vec![],
            search_attributes: vec![],
        };
        self.end_with_continue_as_new(options).await
    }
}
