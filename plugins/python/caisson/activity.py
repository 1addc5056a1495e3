"""Activities, with the API of ``temporalio.activity``.

::

    from caisson import activity             # was: from temporalio import activity

    @activity.defn
    def compose_greeting(input: ComposeGreetingInput) -> str:
        activity.logger.info("Running activity with parameter %s" % input)
        return f"{input.greeting}, {input.name}!"

Sync and ``async def`` activities both work (an async one runs on a small
event loop with real time, so ``asyncio.sleep`` really sleeps). Raise
``ApplicationError(..., non_retryable=True)`` to stop retries; any other
exception fails the attempt as a retryable error typed by its class name.
An activity reaches only what its plugin's manifest grants.
"""
from __future__ import annotations

import contextvars
import inspect
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Optional, Sequence

from . import _failures, converter
from ._definition import ActivityDefinition, register_activity
from ._logging import LoggerAdapter, make_logger
from .common import Priority, RetryPolicy

__all__ = [
    "defn",
    "Info",
    "info",
    "in_activity",
    "heartbeat",
    "is_cancelled",
    "logger",
    "payload_converter",
    "raise_complete_async",
]


def defn(fn: Optional[Callable] = None, *, name: Optional[str] = None, no_thread_cancel_exception: bool = False,
         dynamic: bool = False) -> Any:
    """Decorator for an activity function (sync or async): ``@activity.defn``
    or ``@activity.defn(name="charge-card")``. The type name defaults to the
    function name."""
    if dynamic:
        raise ValueError(
            "@activity.defn(dynamic=True): dynamic activities are not supported by Caisson "
            "(the worker registers the type names a plugin declares): give the activity a name"
        )

    def decorate(f: Callable) -> Callable:
        if hasattr(f, "__caisson_activity_definition"):
            raise ValueError("Function already contains activity definition")
        if not callable(f):
            raise TypeError("Activity is not callable")
        for p in inspect.signature(f).parameters.values():
            if p.kind == inspect.Parameter.KEYWORD_ONLY:
                raise TypeError("Activity cannot have keyword-only arguments")
        d = ActivityDefinition(
            name=name or f.__name__,
            fn=f,
            is_async=inspect.iscoroutinefunction(f) or inspect.iscoroutinefunction(getattr(f, "__call__", None)),
        )
        setattr(f, "__caisson_activity_definition", d)
        register_activity(d)
        return f

    return decorate(fn) if fn is not None else decorate


@dataclass(frozen=True)
class Info:
    """Facts about the running attempt (``activity.info()``). Fields the
    Caisson host does not report: ``scheduled_time`` and
    ``current_attempt_scheduled_time`` are the attempt's start,
    ``schedule_to_close_timeout`` and ``retry_policy`` are None,
    ``is_local`` is False, ``task_token`` is empty."""

    activity_id: str
    activity_type: str
    attempt: int
    current_attempt_scheduled_time: datetime
    heartbeat_details: Sequence[Any]
    heartbeat_timeout: Optional[timedelta]
    is_local: bool
    namespace: str
    schedule_to_close_timeout: Optional[timedelta]
    scheduled_time: datetime
    start_to_close_timeout: Optional[timedelta]
    started_time: datetime
    task_queue: str
    task_token: bytes
    workflow_id: Optional[str]
    workflow_namespace: Optional[str]
    workflow_run_id: Optional[str]
    workflow_type: Optional[str]
    priority: Priority = field(default_factory=Priority)
    retry_policy: Optional[RetryPolicy] = None

    @property
    def in_workflow(self) -> bool:
        return self.workflow_id is not None


@dataclass
class _Context:
    """The running attempt: its info, and how to heartbeat and check for
    cancellation (the host's, or a test environment's)."""

    info: Callable[[], Info]
    heartbeat: Callable[..., None]
    is_cancelled: Callable[[], bool]
    host: Any = None


_current: contextvars.ContextVar[Optional[_Context]] = contextvars.ContextVar("caisson_activity", default=None)


def _context() -> _Context:
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("Not in activity context")
    return ctx


def in_activity() -> bool:
    """True inside an activity."""
    return _current.get() is not None


def info() -> Info:
    """Facts about this attempt."""
    return _context().info()


def heartbeat(*details: Any) -> None:
    """Records progress; ``details`` reach the next attempt as
    ``info().heartbeat_details`` (one value as itself, several as a list:
    Caisson's WIT carries one details document)."""
    _context().heartbeat(*details)


def is_cancelled() -> bool:
    """True once cancellation was requested: return (or raise) promptly."""
    return _context().is_cancelled()


def payload_converter() -> Any:
    """The JSON converter (``caisson.converter``)."""
    return converter


def raise_complete_async() -> None:
    raise NotImplementedError("asynchronous activity completion is not supported by Caisson")


def _host_of_current() -> Any:
    ctx = _current.get()
    return ctx.host if ctx is not None else None


logger = LoggerAdapter(make_logger("caisson.activity", _host_of_current))
"""A logger whose lines reach the worker log, tagged with the activity."""


def _details_json(details: Sequence[Any]) -> Optional[str]:
    return _failures.details_to_json(details)
