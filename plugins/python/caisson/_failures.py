"""Exceptions to and from Caisson's failure records.

Caisson's WIT carries the innermost application error of a failure
(message, type, non-retryable, details) or a timeout / cancellation /
other reason. Outbound, an `ApplicationError` keeps its fields; an
`ActivityError` or `ChildWorkflowError` escaping a workflow is reported
with its cause's type and a message naming both; other exceptions (in
activities) become retryable errors typed by their class name, as the
SDK's failure converter does. Inbound, a resolution becomes the SDK's
exception chain: ``ActivityError`` / ``ChildWorkflowError`` caused by an
``ApplicationError``, ``TimeoutError``, ``CancelledError`` or
``TerminatedError``.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any, Optional, Sequence

from . import converter
from ._host import AppError, Failed
from .exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    FailureError,
    TerminatedError,
    TimeoutError,
    WorkflowAlreadyStartedError,
    _TIMEOUT_TYPES,
)


def details_to_json(details: Sequence[Any]) -> Optional[str]:
    """One details document: none, the single value, or an array of several."""
    if not details:
        return None
    return converter.encode(details[0] if len(details) == 1 else list(details))


def details_from_json(text: Optional[str]) -> tuple:
    if text is None:
        return ()
    try:
        return (json.loads(text),)
    except ValueError:
        return (text,)


def _innermost(err: BaseException) -> BaseException:
    seen = set()
    while isinstance(err, (ActivityError, ChildWorkflowError)) and err.__cause__ is not None and id(err) not in seen:
        seen.add(id(err))
        err = err.__cause__
    return err


def to_app_error(err: BaseException) -> AppError:
    """The application error reported for ``err``."""
    if isinstance(err, ApplicationError):
        return AppError(err.message, err.type or "", err.non_retryable, details_to_json(err.details))
    inner = _innermost(err)
    if inner is not err:
        base = to_app_error(inner)
        outer = err.message if isinstance(err, FailureError) else str(err)
        return AppError(f"{outer}: {base.message}", base.error_type, base.non_retryable, base.details)
    if isinstance(err, asyncio.CancelledError):
        return AppError(str(err) or "Cancelled", "CancelledError", True, None)
    if isinstance(err, CancelledError):
        return AppError(err.message, "CancelledError", True, details_to_json(err.details))
    if isinstance(err, TimeoutError):
        return AppError(err.message, "TimeoutError", False, None)
    if isinstance(err, FailureError):
        return AppError(err.message, type(err).__name__, False, None)
    if isinstance(err, asyncio.TimeoutError):  # also builtins.TimeoutError on 3.11+
        return AppError(str(err) or "timed out", "TimeoutError", False, None)
    return AppError(str(err) or type(err).__name__, type(err).__name__, False, None)


def _cause(f: Failed) -> FailureError:
    if f.kind == "application" and f.error is not None:
        e = f.error
        return ApplicationError(e.message, *details_from_json(e.details), type=e.error_type or None, non_retryable=e.non_retryable)
    if f.kind == "timeout":
        return TimeoutError(f"{f.message} timeout", type=_TIMEOUT_TYPES.get(f.message), last_heartbeat_details=[])
    if f.kind == "cancelled":
        return CancelledError(f.message or "Cancelled")
    return ApplicationError(f.message or "failed", type=None)


def activity_failure(f: Failed, *, activity_type: str, activity_id: str) -> ActivityError:
    """``ActivityError`` with the reason as its cause, as the SDK raises it."""
    err = ActivityError("Activity task failed", activity_type=activity_type, activity_id=activity_id)
    err.__cause__ = _cause(f)
    return err


def child_failure(f: Failed, *, namespace: str, workflow_id: str, workflow_type: str) -> FailureError:
    """``ChildWorkflowError`` with its cause, or `WorkflowAlreadyStartedError`
    when the child could not start because its id is taken."""
    if f.kind == "other" and "could not start" in f.message and "AlreadyExists" in f.message:
        return WorkflowAlreadyStartedError(workflow_id, workflow_type)
    err = ChildWorkflowError(
        "Child Workflow execution failed", namespace=namespace, workflow_id=workflow_id, workflow_type=workflow_type
    )
    err.__cause__ = TerminatedError(f.message) if f.kind == "other" else _cause(f)
    return err
