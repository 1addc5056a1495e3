"""One pass of a monitor, run by a Temporal schedule: fetch the task, run
its search, compare with what the previous pass saw, and notify when
something changed.

Plain Temporal Python SDK code; on Caisson only the imports differ (see
README.md). The state between passes lives with the activities (a
folder), so each scheduled run is short.
"""
from dataclasses import dataclass
from datetime import timedelta
from typing import List

from caisson import workflow  # was: from temporalio import workflow
from caisson.common import RetryPolicy  # was: from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities import CompareInput, compare_with_previous, fetch_task, notify, search

#: A flaky service is retried a few times within the pass; the next
#: scheduled pass is the retry after that.
SERVICE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    maximum_attempts=3,
    non_retryable_error_types=["NotFound", "InvalidTask", "Misconfigured"],
)

#: The change is already recorded (the comparison saved this pass's hits,
#: and its result is in the workflow's history): the notification is
#: retried until the service takes it, for up to an hour.
NOTIFY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


@dataclass
class MonitorInput:
    task_id: str


@dataclass
class MonitorReport:
    task_id: str
    query: str
    total: int
    added: List[str]
    removed: List[str]
    notified: bool


@workflow.defn
class MonitorWorkflow:
    @workflow.run
    async def run(self, input: MonitorInput) -> MonitorReport:
        task = await workflow.execute_activity(
            fetch_task, input.task_id, start_to_close_timeout=timedelta(seconds=10), retry_policy=SERVICE_RETRY
        )
        hits = await workflow.execute_activity(
            search, task.query, start_to_close_timeout=timedelta(seconds=10), retry_policy=SERVICE_RETRY
        )
        change = await workflow.execute_activity(
            compare_with_previous,
            CompareInput(task_id=task.id, hits=hits),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=SERVICE_RETRY,
        )

        changed = bool(change.added or change.removed) and not change.first_run
        if changed:
            await workflow.execute_activity(
                notify,
                change,
                start_to_close_timeout=timedelta(seconds=10),
                schedule_to_close_timeout=timedelta(hours=1),
                retry_policy=NOTIFY_RETRY,
            )
        workflow.logger.info(
            "%s: %d hit(s)%s", task.id, change.total,
            ", first run" if change.first_run else f", {len(change.added)} new, {len(change.removed)} gone",
        )
        return MonitorReport(
            task_id=task.id,
            query=task.query,
            total=change.total,
            added=[h.title for h in change.added],
            removed=change.removed,
            notified=changed,
        )
