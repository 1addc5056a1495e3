//! One pass of a monitor, run by a Temporal schedule: fetch the task,
//! run its search, compare with what the previous pass saw, notify when
//! something changed, save what this pass saw. The state between passes lives with the
//! activities (a granted directory), so each scheduled run is short.

caisson_guest::workflow_bindings!("caisson-examples:monitor-workflow/monitor-workflow");

use caisson_guest::workflow::{self as wf, ActivityBuilder, Duration, RetryPolicy};

struct MonitorWorkflow;

/// A flaky search service is retried a few times within the pass; the
/// next scheduled pass is the retry after that.
fn activity(activity_type: &str) -> ActivityBuilder {
    wf::activity(activity_type).start_to_close(Duration::from_secs(10)).retry(
        RetryPolicy::default()
            .initial_interval(Duration::from_millis(500))
            .maximum_attempts(3)
            .non_retryable(&["UnknownTask", "InvalidTask", "OutboundDenied", "NotFound", "Misconfigured"]),
    )
}

impl Guest for MonitorWorkflow {
    fn monitor(input: MonitorInput) -> Result<MonitorReport, ApplicationError> {
        let task: Task = activity("fetch-task").arg(&input.task_id).call()?;
        let hits: Vec<Hit> = activity("search").arg(&task.query).call()?;
        let change: Change = activity("compare-with-previous").args((&task.id, &hits)).call()?;

        let changed = !change.added.is_empty() || !change.removed.is_empty();
        if changed && !change.first_run {
            let _: String = activity("notify").arg(&change).call()?;
        }
        // Only now: if the notification failed, the next pass sees the
        // same change and tries again.
        let _: String = activity("save-results").args((&task.id, &hits)).call()?;
        wf::log(&format!(
            "{}: {} hit(s){}",
            task.id,
            change.total,
            if change.first_run { ", first run".to_string() } else { format!(", {} new, {} gone", change.added.len(), change.removed.len()) }
        ));
        Ok(MonitorReport {
            task_id: task.id,
            query: task.query,
            total: change.total,
            added: change.added.into_iter().map(|h| h.title).collect(),
            removed: change.removed,
            notified: changed && !change.first_run,
        })
    }
}

export!(MonitorWorkflow);
