"""Temporal's exceptions, with the meaning `temporalio.exceptions` gives them.

A workflow raises `ApplicationError` (or lets an `ActivityError`,
`ChildWorkflowError`, `CancelledError` or `TimeoutError` escape) to fail
the *workflow*; any other exception fails the workflow *task*, which
Temporal retries, so a fixed plugin can resume the run. Activities raise
`ApplicationError(non_retryable=True)` to stop retries.

The classes carry the same constructor arguments and properties as the
SDK's; what Caisson's WIT cannot transport (event ids, identity, retry
state) is set to neutral values (0, "", None).
"""
from __future__ import annotations

import asyncio
from datetime import timedelta
from enum import IntEnum
from typing import Any, Optional, Sequence

__all__ = [
    "TemporalError",
    "FailureError",
    "WorkflowAlreadyStartedError",
    "ApplicationErrorCategory",
    "ApplicationError",
    "CancelledError",
    "TerminatedError",
    "TimeoutType",
    "TimeoutError",
    "ServerError",
    "RetryState",
    "ActivityError",
    "ChildWorkflowError",
    "is_cancelled_exception",
]


class TemporalError(Exception):
    """Base for all Temporal exceptions."""

    @property
    def cause(self) -> Optional[BaseException]:
        """Cause of the exception (the same as ``__cause__``)."""
        return self.__cause__


class FailureError(TemporalError):
    """Base for run-time failures of workflows and activities. Raising one
    out of a workflow fails the workflow, not its task."""

    def __init__(self, message: str, *, exc_args: Optional[tuple] = None) -> None:
        super().__init__(*(exc_args if exc_args is not None else (message,)))
        self._message = message

    @property
    def message(self) -> str:
        """The message."""
        return self._message


class WorkflowAlreadyStartedError(FailureError):
    """A child workflow could not start because its id is in use."""

    def __init__(self, workflow_id: str, workflow_type: str, *, run_id: Optional[str] = None) -> None:
        super().__init__("Workflow execution already started")
        self.workflow_id = workflow_id
        self.workflow_type = workflow_type
        self.run_id = run_id


class ApplicationErrorCategory(IntEnum):
    """Severity category of an application error (logging and metrics)."""

    UNSPECIFIED = 0
    BENIGN = 1


class ApplicationError(FailureError):
    """An error the application raises on purpose.

    ``type`` is what retry policies' ``non_retryable_error_types`` and
    clients match on; ``details`` travel as JSON (one value as itself,
    several as a JSON array: Caisson's WIT carries one details document).
    """

    def __init__(
        self,
        message: str,
        *details: Any,
        type: Optional[str] = None,
        non_retryable: bool = False,
        next_retry_delay: Optional[timedelta] = None,
        category: ApplicationErrorCategory = ApplicationErrorCategory.UNSPECIFIED,
    ) -> None:
        super().__init__(message, exc_args=(message if not type else f"{type}: {message}",))
        self._details = details
        self._type = type
        self._non_retryable = non_retryable
        self._next_retry_delay = next_retry_delay
        self._category = category

    @property
    def details(self) -> Sequence[Any]:
        """User-defined details."""
        return self._details

    @property
    def type(self) -> Optional[str]:
        """The error type, e.g. ``InsufficientFunds``."""
        return self._type

    @property
    def non_retryable(self) -> bool:
        """True when the error was raised as non-retryable."""
        return self._non_retryable

    @property
    def next_retry_delay(self) -> Optional[timedelta]:
        """Requested delay before the next retry (not transported by Caisson)."""
        return self._next_retry_delay

    @property
    def category(self) -> ApplicationErrorCategory:
        """Severity category."""
        return self._category


class CancelledError(FailureError):
    """Cancellation of a workflow, activity or child workflow."""

    def __init__(self, message: str = "Cancelled", *details: Any) -> None:
        super().__init__(message)
        self._details = details

    @property
    def details(self) -> Sequence[Any]:
        """User-defined details."""
        return self._details


class TerminatedError(FailureError):
    """A child workflow was terminated."""

    def __init__(self, message: str, *details: Any) -> None:
        super().__init__(message)
        self._details = details

    @property
    def details(self) -> Sequence[Any]:
        """User-defined details."""
        return self._details


class TimeoutType(IntEnum):
    """Which timeout fired."""

    START_TO_CLOSE = 1
    SCHEDULE_TO_START = 2
    SCHEDULE_TO_CLOSE = 3
    HEARTBEAT = 4


#: Caisson's names of timeouts (WIT `failure::timeout`) to the SDK's enum.
_TIMEOUT_TYPES = {
    "start-to-close": TimeoutType.START_TO_CLOSE,
    "schedule-to-start": TimeoutType.SCHEDULE_TO_START,
    "schedule-to-close": TimeoutType.SCHEDULE_TO_CLOSE,
    "heartbeat": TimeoutType.HEARTBEAT,
}


class TimeoutError(FailureError):  # noqa: A001 (the SDK's name)
    """An activity or child workflow timed out."""

    def __init__(self, message: str, *, type: Optional[TimeoutType], last_heartbeat_details: Sequence[Any]) -> None:
        super().__init__(message)
        self._type = type
        self._last_heartbeat_details = last_heartbeat_details

    @property
    def type(self) -> Optional[TimeoutType]:
        """Which timeout."""
        return self._type

    @property
    def last_heartbeat_details(self) -> Sequence[Any]:
        """Last heartbeat details (not transported by Caisson: empty)."""
        return self._last_heartbeat_details


class ServerError(FailureError):
    """An error that originated in the Temporal server."""

    def __init__(self, message: str, *, non_retryable: bool = False) -> None:
        super().__init__(message)
        self._non_retryable = non_retryable

    @property
    def non_retryable(self) -> bool:
        """Whether this error is non-retryable."""
        return self._non_retryable


class RetryState(IntEnum):
    """Retry state of a failed activity or child (Caisson reports None)."""

    IN_PROGRESS = 1
    NON_RETRYABLE_FAILURE = 2
    TIMEOUT = 3
    MAXIMUM_ATTEMPTS_REACHED = 4
    RETRY_POLICY_NOT_SET = 5
    INTERNAL_SERVER_ERROR = 6
    CANCEL_REQUESTED = 7


class ActivityError(FailureError):
    """An activity failed; the reason is its ``cause`` (an
    `ApplicationError`, `TimeoutError` or `CancelledError`)."""

    def __init__(
        self,
        message: str,
        *,
        scheduled_event_id: int = 0,
        started_event_id: int = 0,
        identity: str = "",
        activity_type: str,
        activity_id: str,
        retry_state: Optional[RetryState] = None,
    ) -> None:
        super().__init__(message)
        self._scheduled_event_id = scheduled_event_id
        self._started_event_id = started_event_id
        self._identity = identity
        self._activity_type = activity_type
        self._activity_id = activity_id
        self._retry_state = retry_state

    @property
    def scheduled_event_id(self) -> int:
        return self._scheduled_event_id

    @property
    def started_event_id(self) -> int:
        return self._started_event_id

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def activity_type(self) -> str:
        return self._activity_type

    @property
    def activity_id(self) -> str:
        return self._activity_id

    @property
    def retry_state(self) -> Optional[RetryState]:
        return self._retry_state


class ChildWorkflowError(FailureError):
    """A child workflow failed; the reason is its ``cause``."""

    def __init__(
        self,
        message: str,
        *,
        namespace: str,
        workflow_id: str,
        run_id: str = "",
        workflow_type: str,
        initiated_event_id: int = 0,
        started_event_id: int = 0,
        retry_state: Optional[RetryState] = None,
    ) -> None:
        super().__init__(message)
        self._namespace = namespace
        self._workflow_id = workflow_id
        self._run_id = run_id
        self._workflow_type = workflow_type
        self._initiated_event_id = initiated_event_id
        self._started_event_id = started_event_id
        self._retry_state = retry_state

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def workflow_id(self) -> str:
        return self._workflow_id

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def workflow_type(self) -> str:
        return self._workflow_type

    @property
    def initiated_event_id(self) -> int:
        return self._initiated_event_id

    @property
    def started_event_id(self) -> int:
        return self._started_event_id

    @property
    def retry_state(self) -> Optional[RetryState]:
        return self._retry_state


def is_cancelled_exception(exception: BaseException) -> bool:
    """True for a cancellation: `asyncio.CancelledError`, `CancelledError`,
    or an `ActivityError` / `ChildWorkflowError` caused by one."""
    return (
        isinstance(exception, (asyncio.CancelledError, CancelledError))
        or (isinstance(exception, (ActivityError, ChildWorkflowError)) and isinstance(exception.cause, CancelledError))
    )
