"""Workflows, with the API of ``temporalio.workflow``.

A workflow file ports by changing its imports::

    from caisson import workflow            # was: from temporalio import workflow
    from caisson.common import RetryPolicy  # was: from temporalio.common import RetryPolicy

    @workflow.defn
    class GreetingWorkflow:
        @workflow.run
        async def run(self, name: str) -> str:
            return await workflow.execute_activity(
                compose_greeting, name, start_to_close_timeout=timedelta(seconds=10))

Everything here runs inside the scheduler of ``caisson._scheduler`` (a
custom asyncio event loop on the host's blocking ``wait``), so plain
``asyncio`` works as in the SDK: ``asyncio.sleep`` is a durable timer,
``asyncio.gather`` runs activities in parallel, and a cancellation request
cancels the run task. What differs from the SDK, and why, is listed in
this package's README.
"""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import IntEnum
from random import Random
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from . import _failures, converter
from ._asyncio_tools import as_completed, wait
from ._definition import (
    HandlerDefinition,
    activity_definition_of,
    build_workflow_definition,
    register_workflow,
    workflow_definition_of,
)
from ._host import (
    ActivityRequest,
    ChildRequest,
    Completed,
    ContinueAsNewRequest,
    LocalActivityRequest,
    MemoEntry,
    PriorityRecord,
    RetryPolicyRecord,
    SearchAttr,
)
from ._logging import LoggerAdapter, make_logger
from ._scheduler import (
    ContinueAsNewError,
    NotInWorkflowEventLoopError,
    ReadOnlyContextError,
    WorkflowRuntime,
    current_update,
    maybe_current,
    timer_summary,
)
from ._scheduler import current as _rt
from .common import (
    Priority,
    RetryPolicy,
    SearchAttributeIndexedValueType,
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
    _FROM_WIT_KIND,
    _WIT_KIND,
)
from .exceptions import ApplicationError, FailureError

__all__ = [
    "defn", "init", "run", "signal", "query", "update",
    "execute_activity", "start_activity", "execute_activity_method", "start_activity_method",
    "execute_activity_class", "start_activity_class",
    "execute_local_activity", "start_local_activity", "execute_local_activity_method",
    "start_local_activity_method", "execute_local_activity_class", "start_local_activity_class",
    "execute_child_workflow", "start_child_workflow", "get_external_workflow_handle",
    "continue_as_new", "wait_condition", "sleep", "wait", "as_completed",
    "now", "time", "time_ns", "uuid4", "random", "info", "instance", "in_workflow", "logger",
    "patched", "deprecate_patch", "upsert_search_attributes", "upsert_memo", "memo", "memo_value",
    "all_handlers_finished", "current_update_info", "set_signal_handler", "set_query_handler",
    "set_update_handler", "get_signal_handler", "get_query_handler", "get_update_handler",
    "set_dynamic_signal_handler", "set_dynamic_query_handler", "set_dynamic_update_handler",
    "set_current_details", "get_current_details", "is_failure_exception", "cancellation_reason", "unsafe",
    "ActivityCancellationType", "ChildWorkflowCancellationType", "ParentClosePolicy", "HandlerUnfinishedPolicy",
    "ActivityHandle", "ChildWorkflowHandle", "ExternalWorkflowHandle", "Info", "ParentInfo", "UpdateInfo",
    "ContinueAsNewError", "ReadOnlyContextError", "NondeterminismError",
]


class NondeterminismError(Exception):
    """Raised by the SDK on non-determinism; with Caisson the host detects
    it and fails the task with Temporal's error (kept for imports)."""


class ActivityCancellationType(IntEnum):
    """What happens to an activity when the workflow cancels it."""

    TRY_CANCEL = 0
    WAIT_CANCELLATION_COMPLETED = 1
    ABANDON = 2


class ChildWorkflowCancellationType(IntEnum):
    """What happens to a child when the workflow cancels it."""

    ABANDON = 0
    TRY_CANCEL = 1
    WAIT_CANCELLATION_COMPLETED = 2
    WAIT_CANCELLATION_REQUESTED = 3


class ParentClosePolicy(IntEnum):
    """What happens to a child when its parent closes."""

    UNSPECIFIED = 0
    TERMINATE = 1
    ABANDON = 2
    REQUEST_CANCEL = 3


class HandlerUnfinishedPolicy(IntEnum):
    """Accepted for the SDK's signature; Caisson warns in either case."""

    WARN_AND_ABANDON = 1
    ABANDON = 2


_ACTIVITY_CANCELLATION = {
    ActivityCancellationType.TRY_CANCEL: "try_cancel",
    ActivityCancellationType.WAIT_CANCELLATION_COMPLETED: "wait_cancellation_completed",
    ActivityCancellationType.ABANDON: "abandon",
}
_CHILD_CANCELLATION = {
    ChildWorkflowCancellationType.ABANDON: "abandon",
    ChildWorkflowCancellationType.TRY_CANCEL: "try_cancel",
    ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED: "wait_cancellation_completed",
}
_PARENT_CLOSE = {
    ParentClosePolicy.UNSPECIFIED: "terminate",
    ParentClosePolicy.TERMINATE: "terminate",
    ParentClosePolicy.ABANDON: "abandon",
    ParentClosePolicy.REQUEST_CANCEL: "request_cancel",
}

# ====================================================================== decorators


def defn(
    cls: Optional[type] = None,
    *,
    name: Optional[str] = None,
    sandboxed: bool = True,
    dynamic: bool = False,
    failure_exception_types: Sequence[type] = (),
    versioning_behavior: Any = None,
) -> Any:
    """Decorator for a workflow class: ``@workflow.defn`` or
    ``@workflow.defn(name="OrderWorkflow")``. The type name defaults to the
    class name. ``sandboxed`` is accepted and ignored: every Caisson
    workflow runs in its own WebAssembly instance."""
    if dynamic:
        raise ValueError(
            "@workflow.defn(dynamic=True): dynamic workflows are not supported by Caisson "
            "(the worker registers the type names a plugin declares): give the workflow a name"
        )

    def decorate(c: type) -> type:
        if workflow_definition_of(c) is not None and workflow_definition_of(c).cls is c:
            raise ValueError(f"{c.__qualname__}: @workflow.defn applied twice")
        d = build_workflow_definition(
            c, name=name or c.__name__, failure_exception_types=failure_exception_types, description=None
        )
        setattr(c, "__caisson_workflow_definition", d)
        setattr(d.run_fn, "__caisson_workflow_definition", d)
        register_workflow(d)
        return c

    return decorate(cls) if cls is not None else decorate


def init(fn: Callable) -> Callable:
    """Decorator for ``__init__``: it takes the workflow's arguments (the
    same parameters as the run method)."""
    if fn.__name__ != "__init__":
        raise ValueError("@workflow.init may only be used on the __init__ method")
    setattr(fn, "__caisson_workflow_init", True)
    return fn


def run(fn: Callable) -> Callable:
    """Decorator for the one ``async`` run method of a workflow class."""
    if not inspect.iscoroutinefunction(fn):
        raise ValueError("Workflow run method must be an async function")
    if "<locals>" in fn.__qualname__:
        raise ValueError("Local classes unsupported, @workflow.run cannot be on a local class")
    setattr(fn, "__caisson_workflow_run", True)
    return fn


def _handler_decorator(kind: str, fn: Optional[Callable], name: Optional[str], dynamic: bool, description: Optional[str], **extra: Any):
    if name is not None and dynamic:
        raise RuntimeError("Cannot provide name and dynamic boolean")

    def decorate(f: Callable) -> Callable:
        if kind == "query" and inspect.iscoroutinefunction(f):
            raise ValueError(f"query {f.__name__} is an async function: query handlers must be plain functions")
        d = HandlerDefinition(kind=kind, name=None if dynamic else (name or f.__name__), fn=f, description=description, **extra)
        setattr(f, "__caisson_handler", d)
        if kind == "update":

            def validator(vf: Callable) -> Callable:
                if inspect.iscoroutinefunction(vf):
                    raise ValueError(f"update validator {vf.__name__} must be a plain (not async) function")
                d.validator = vf
                return vf

            setattr(f, "validator", validator)
        return f

    return decorate(fn) if fn is not None else decorate


def signal(fn: Optional[Callable] = None, *, name: Optional[str] = None, dynamic: bool = False,
           unfinished_policy: HandlerUnfinishedPolicy = HandlerUnfinishedPolicy.WARN_AND_ABANDON,
           description: Optional[str] = None) -> Any:
    """Decorator for a signal method (sync or async; its result is ignored)."""
    return _handler_decorator("signal", fn, name, dynamic, description, unfinished_policy=unfinished_policy)


def query(fn: Optional[Callable] = None, *, name: Optional[str] = None, dynamic: bool = False,
          description: Optional[str] = None) -> Any:
    """Decorator for a query method: a plain function that only reads."""
    return _handler_decorator("query", fn, name, dynamic, description)


def update(fn: Optional[Callable] = None, *, name: Optional[str] = None, dynamic: bool = False,
           unfinished_policy: HandlerUnfinishedPolicy = HandlerUnfinishedPolicy.WARN_AND_ABANDON,
           description: Optional[str] = None) -> Any:
    """Decorator for an update method (sync or async); add a validator with
    ``@my_update.validator`` (a plain function that raises to reject)."""
    return _handler_decorator("update", fn, name, dynamic, description, unfinished_policy=unfinished_policy)


# ====================================================================== info


@dataclass(frozen=True)
class ParentInfo:
    namespace: str
    run_id: str
    workflow_id: str


@dataclass(frozen=True)
class UpdateInfo:
    id: str
    name: str


@dataclass(frozen=True)
class Info:
    """Facts about the running workflow (``workflow.info()``). Fields the
    Caisson host does not report hold neutral values: ``cron_schedule``,
    the timeouts and ``retry_policy`` are None, ``headers`` is empty,
    ``first_execution_run_id`` and ``original_execution_run_id`` are the
    run id, ``parent.run_id`` is ""."""

    attempt: int
    continued_run_id: Optional[str]
    cron_schedule: Optional[str]
    execution_timeout: Optional[timedelta]
    first_execution_run_id: str
    headers: Mapping[str, Any]
    namespace: str
    original_execution_run_id: str
    parent: Optional[ParentInfo]
    priority: Priority
    raw_memo: Mapping[str, str]
    retry_policy: Optional[RetryPolicy]
    root: Any
    run_id: str
    run_timeout: Optional[timedelta]
    search_attributes: Mapping[str, List[Any]]
    start_time: datetime
    task_queue: str
    task_timeout: timedelta
    typed_search_attributes: TypedSearchAttributes
    workflow_id: str
    workflow_start_time: datetime
    workflow_type: str

    def get_current_history_length(self) -> int:
        raise NotImplementedError("Caisson does not report the history length")

    def get_current_history_size(self) -> int:
        raise NotImplementedError("Caisson does not report the history size")

    def is_continue_as_new_suggested(self) -> bool:
        """Always False: Caisson does not report the server's suggestion."""
        return False


def _sa_value_from_host(a: SearchAttr) -> Any:
    if a.kind == "datetime" and isinstance(a.value, str):
        try:
            return datetime.fromisoformat(a.value.replace("Z", "+00:00"))
        except ValueError:
            return a.value
    return a.value


def _state(rt: WorkflowRuntime) -> Dict[str, Any]:
    """The run's memo and search attributes, read from the host once and
    kept up to date by the upserts."""
    state = getattr(rt, "_caisson_state", None)
    if state is None:
        hi = rt.host.info()
        state = {
            "host_info": hi,
            "memo": {m.name: m.value for m in hi.memo if m.value is not None},
            "search_attributes": {a.name: a for a in hi.search_attributes if a.value is not None},
        }
        rt._caisson_state = state  # type: ignore[attr-defined]
    return state


def info() -> Info:
    """Facts about this run."""
    rt = _rt()
    cached = getattr(rt, "_caisson_info", None)
    if cached is not None:
        return cached
    st = _state(rt)
    hi = st["host_info"]
    start = datetime.fromtimestamp(hi.start_time_ms / 1000.0, timezone.utc)
    pairs = []
    untyped: Dict[str, List[Any]] = {}
    for a in st["search_attributes"].values():
        value = _sa_value_from_host(a)
        pairs.append(SearchAttributePair(SearchAttributeKey(a.name, _FROM_WIT_KIND[a.kind]), value))
        untyped[a.name] = list(value) if isinstance(value, list) else [value]
    result = Info(
        attempt=hi.attempt,
        continued_run_id=hi.continued_from_run_id,
        cron_schedule=None,
        execution_timeout=None,
        first_execution_run_id=hi.run_id,
        headers={},
        namespace=hi.namespace,
        original_execution_run_id=hi.run_id,
        parent=ParentInfo(hi.namespace, "", hi.parent_workflow_id) if hi.parent_workflow_id else None,
        priority=Priority.default,  # type: ignore[attr-defined]
        raw_memo=dict(st["memo"]),
        retry_policy=None,
        root=None,
        run_id=hi.run_id,
        run_timeout=None,
        search_attributes=untyped,
        start_time=start,
        task_queue=hi.task_queue,
        task_timeout=timedelta(seconds=10),
        typed_search_attributes=TypedSearchAttributes(pairs),
        workflow_id=hi.workflow_id,
        workflow_start_time=start,
        workflow_type=hi.workflow_type,
    )
    rt._caisson_info = result  # type: ignore[attr-defined]
    return result


def instance() -> Any:
    """The running workflow object."""
    return _rt().object


def in_workflow() -> bool:
    """True inside a workflow."""
    return maybe_current() is not None


def now() -> datetime:
    """Workflow time, in UTC (the same on every replay)."""
    return _rt().now()


def time() -> float:
    """Workflow time in seconds since the epoch."""
    return _rt().time()


def time_ns() -> int:
    """Workflow time in nanoseconds since the epoch."""
    return _rt().host.now_ms() * 1_000_000


def random() -> Random:
    """A random generator seeded by Temporal for this run: replays draw
    the same numbers."""
    return _rt().random  # type: ignore[return-value]


def uuid4():
    """A v4 UUID from ``random()``: the same on every replay."""
    return _rt().uuid4()


def patched(id: str) -> bool:
    """True when running code after change ``id``; False while replaying
    a history made before it."""
    return _rt().patched(id, deprecated=False)


def deprecate_patch(id: str) -> None:
    """Marks patch ``id`` deprecated: no history without it remains."""
    _rt().patched(id, deprecated=True)


def all_handlers_finished() -> bool:
    """True when no signal or update handler is running (wait for it
    before returning: ``await workflow.wait_condition(workflow.all_handlers_finished)``)."""
    return _rt().all_handlers_finished()


def current_update_info() -> Optional[UpdateInfo]:
    """The update the calling handler (or a task it started) handles."""
    u = current_update.get()
    return UpdateInfo(id=u[0], name=u[1]) if u else None


def cancellation_reason() -> Optional[str]:
    """"" once cancellation was requested (Caisson does not carry the
    reason), else None."""
    return "" if _rt().cancel_requested else None


def is_failure_exception(err: BaseException) -> bool:
    """Whether ``err`` would fail the workflow (rather than its task)."""
    return _rt().is_failure_exception(err)


def set_current_details(description: str) -> None:
    """The run's current details (markdown), shown in the UI."""
    rt = _rt()
    rt.assert_writable("set current details")
    rt.current_details = description
    rt.host.set_current_details(description)


def get_current_details() -> str:
    return _rt().current_details


# ====================================================================== memo and search attributes


def memo() -> Mapping[str, Any]:
    """The memo, decoded without type hints."""
    return {k: json.loads(v) for k, v in _state(_rt())["memo"].items()}


_unset: Any = object()


def memo_value(key: str, default: Any = _unset, *, type_hint: Optional[type] = None) -> Any:
    """One memo value, converted into ``type_hint``; ``default`` (or a
    ``KeyError``) when absent."""
    raw = _state(_rt())["memo"].get(key)
    if raw is None:
        if default is _unset:
            raise KeyError(f"Memo does not have a value for key {key}")
        return default
    return converter.decode(raw, type_hint, what=f"memo `{key}`")


def upsert_memo(updates: Mapping[str, Any]) -> None:
    """Sets memo fields (a None value removes the field)."""
    rt = _rt()
    rt.assert_writable("upsert the memo")
    entries = [MemoEntry(k, None if v is None else converter.encode(v)) for k, v in updates.items()]
    rt.host.upsert_memo(entries)
    st = _state(rt)
    for e in entries:
        if e.value is None:
            st["memo"].pop(e.name, None)
        else:
            st["memo"][e.name] = e.value
    rt._caisson_info = None  # type: ignore[attr-defined]


def _sa_records(attributes: Any) -> List[SearchAttr]:
    records = []
    if isinstance(attributes, TypedSearchAttributes):
        attributes = [SearchAttributeUpdate(p.key, p.value) for p in attributes]
    if isinstance(attributes, Mapping):  # the SDK's deprecated untyped form
        for name, values in attributes.items():
            values = list(values) if isinstance(values, (list, tuple)) else [values]
            if not values:
                records.append(SearchAttr(name, "keyword", None))
            elif len(values) > 1:
                records.append(SearchAttr(name, "keyword_list", [str(v) for v in values]))
            else:
                v = values[0]
                kind = ("bool" if isinstance(v, bool) else "int" if isinstance(v, int) else "double" if isinstance(v, float)
                        else "datetime" if isinstance(v, datetime) else "keyword")
                records.append(SearchAttr(name, kind, v.isoformat() if isinstance(v, datetime) else v))
        return records
    for u in attributes:
        if isinstance(u, SearchAttributePair):
            u = SearchAttributeUpdate(u.key, u.value)
        if not isinstance(u, SearchAttributeUpdate):
            raise TypeError(f"search attributes: expected key.value_set(...) updates, found {type(u).__name__}")
        kind = _WIT_KIND[u.key.indexed_value_type]
        value = u.value
        if value is not None:
            if kind == "datetime":
                if not isinstance(value, datetime):
                    raise TypeError(f"search attribute {u.key.name}: expected datetime, found {type(value).__name__}")
                value = (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()
            elif kind == "keyword_list":
                value = [str(v) for v in value]
            elif kind == "double":
                value = float(value)
        records.append(SearchAttr(u.key.name, kind, value))
    return records


def upsert_search_attributes(attributes: Any) -> None:
    """Sets or removes search attributes: ``[KEY.value_set(v), KEY.value_unset()]``
    (or the deprecated ``{"Name": [value]}`` form, typed by the value)."""
    if not attributes:
        return
    rt = _rt()
    rt.assert_writable("upsert search attributes")
    records = _sa_records(attributes)
    rt.host.upsert_search_attributes(records)
    st = _state(rt)
    for r in records:
        if r.value is None:
            st["search_attributes"].pop(r.name, None)
        else:
            st["search_attributes"][r.name] = r
    rt._caisson_info = None  # type: ignore[attr-defined]


# ====================================================================== timers and conditions


def _seconds(d: Union[float, timedelta, None]) -> Optional[float]:
    return d.total_seconds() if isinstance(d, timedelta) else d


async def sleep(duration: Union[float, timedelta], *, summary: Optional[str] = None) -> None:
    """A durable timer (``asyncio.sleep`` is one too); ``summary`` is shown
    for it in the UI."""
    rt = _rt()
    fut = rt.create_future()
    handle = rt.start_timer(_seconds(duration) or 0.0, lambda: fut.done() or fut.set_result(None), (), None, summary)
    fut.add_done_callback(lambda f: handle.cancel() if f.cancelled() else None)
    await fut


async def wait_condition(fn: Callable[[], bool], *, timeout: Union[float, timedelta, None] = None,
                         timeout_summary: Optional[str] = None) -> None:
    """Waits until ``fn()`` is true (checked whenever the workflow has run
    everything it can); raises ``asyncio.TimeoutError`` after ``timeout``
    (a durable timer)."""
    rt = _rt()
    rt.assert_writable("wait for a condition")
    fut = rt.create_future()
    rt._conditions.append((fn, fut))
    if timeout is None:
        await fut
        return
    # The summary reaches the timer wait_for starts (the only one started
    # while this await runs, since `fut` is a plain future).
    token = timer_summary.set(timeout_summary)
    try:
        await asyncio.wait_for(fut, _seconds(timeout))
    finally:
        timer_summary.reset(token)


# ====================================================================== activities


def _args(arg: Any, args: Sequence[Any]) -> List[Any]:
    if arg is not _unset:
        if args:
            raise ValueError("Cannot have arg and args")
        return [arg]
    return list(args)


def _ms(d: Optional[timedelta], what: str) -> Optional[int]:
    if d is None:
        return None
    if not isinstance(d, timedelta):
        raise TypeError(f"{what}: expected a timedelta, found {type(d).__name__}")
    return int(round(d.total_seconds() * 1000))


def _retry(p: Optional[RetryPolicy]) -> Optional[RetryPolicyRecord]:
    if p is None:
        return None
    p._validate()
    return RetryPolicyRecord(
        initial_interval_ms=_ms(p.initial_interval, "retry_policy.initial_interval"),
        backoff_coefficient=p.backoff_coefficient,
        maximum_interval_ms=_ms(p.maximum_interval or p.initial_interval * 100, "retry_policy.maximum_interval"),
        maximum_attempts=p.maximum_attempts,
        non_retryable_error_types=list(p.non_retryable_error_types or []),
    )


def _priority(p: Optional[Priority]) -> Optional[PriorityRecord]:
    if p is None or (p.priority_key is None and p.fairness_key is None and p.fairness_weight is None):
        return None
    return PriorityRecord(p.priority_key, p.fairness_key, p.fairness_weight)


def _activity_name(activity: Any, result_type: Optional[type]) -> tuple:
    if isinstance(activity, str):
        return activity, result_type
    if callable(activity):
        d = activity_definition_of(activity)
        if d is None:
            raise TypeError(f"Activity {getattr(activity, '__name__', activity)} missing attributes, was it decorated with @activity.defn?")
        if d.name is None:
            raise ValueError("Cannot invoke dynamic activity explicitly")
        return d.name, result_type if result_type is not None else d.hints()[1]
    raise TypeError("Activity must be a string or callable")


class ActivityHandle(asyncio.Task):
    """What ``start_activity`` returns: an ``asyncio.Task`` of the result.
    ``cancel()`` asks the host to cancel the activity."""

    def __init__(self, coro: Any, *, loop: WorkflowRuntime, name: str, host_handle: int) -> None:
        super().__init__(coro, loop=loop, name=name)
        self._caisson_loop = loop
        self._host_handle = host_handle
        self._started = False

    def cancel(self, msg: Any = None) -> bool:
        # Not started yet: the coroutine would never see the cancellation,
        # so the host is told here.
        if not self._started and not self.done():
            self._caisson_loop.cancel_handle(self._host_handle)
        return super().cancel(msg)


def _start_activity(rt: WorkflowRuntime, name: str, ret: Any, start: Callable[[], int], label: str) -> ActivityHandle:
    rt.assert_writable(f"start {label} `{name}`")
    fut = rt.create_future()
    host_handle = start()
    activity_id = str(host_handle)

    def resolve(outcome: Any) -> None:
        if fut.done():
            return
        if isinstance(outcome, Completed):
            try:
                fut.set_result(rt.decode_result(outcome, ret, f"result of activity `{name}`"))
            except TypeError as err:
                fut.set_exception(err)
        else:
            fut.set_exception(_failures.activity_failure(outcome, activity_type=name, activity_id=activity_id))

    rt.watch(host_handle, resolve)
    handle: Optional[ActivityHandle] = None

    async def run_activity() -> Any:
        handle._started = True  # type: ignore[union-attr]
        return await rt.await_operation(fut, lambda: rt.cancel_handle(host_handle))

    handle = ActivityHandle(run_activity(), loop=rt, name=f"{label}: {name}", host_handle=host_handle)
    rt.register_task(handle)
    return handle


def start_activity(
    activity: Any,
    arg: Any = _unset,
    *,
    args: Sequence[Any] = (),
    task_queue: Optional[str] = None,
    result_type: Optional[type] = None,
    schedule_to_close_timeout: Optional[timedelta] = None,
    schedule_to_start_timeout: Optional[timedelta] = None,
    start_to_close_timeout: Optional[timedelta] = None,
    heartbeat_timeout: Optional[timedelta] = None,
    retry_policy: Optional[RetryPolicy] = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: Optional[str] = None,
    versioning_intent: Any = None,
    summary: Optional[str] = None,
    priority: Priority = Priority.default,  # type: ignore[attr-defined]
) -> ActivityHandle:
    """Schedules an activity (by ``@activity.defn`` function or by name) and
    returns its handle, a task of its result. At least one of
    ``start_to_close_timeout`` and ``schedule_to_close_timeout`` is required."""
    rt = _rt()
    name, ret = _activity_name(activity, result_type)
    if not start_to_close_timeout and not schedule_to_close_timeout:
        raise ValueError("Activity must have start_to_close_timeout or schedule_to_close_timeout")
    request = ActivityRequest(
        activity_type=name,
        args=[converter.encode(a) for a in _args(arg, args)],
        task_queue=task_queue,
        activity_id=activity_id,
        start_to_close_timeout_ms=_ms(start_to_close_timeout, "start_to_close_timeout"),
        schedule_to_close_timeout_ms=_ms(schedule_to_close_timeout, "schedule_to_close_timeout"),
        schedule_to_start_timeout_ms=_ms(schedule_to_start_timeout, "schedule_to_start_timeout"),
        heartbeat_timeout_ms=_ms(heartbeat_timeout, "heartbeat_timeout"),
        retry_policy=_retry(retry_policy),
        cancellation_type=_ACTIVITY_CANCELLATION[ActivityCancellationType(cancellation_type)],
        summary=summary,
        priority=_priority(priority),
    )
    return _start_activity(rt, name, ret, lambda: rt.host.start_activity(request), "activity")


async def execute_activity(activity: Any, arg: Any = _unset, **kwargs: Any) -> Any:
    """``await start_activity(...)``: the activity's result."""
    return await start_activity(activity, arg, **kwargs)


def start_local_activity(
    activity: Any,
    arg: Any = _unset,
    *,
    args: Sequence[Any] = (),
    result_type: Optional[type] = None,
    schedule_to_close_timeout: Optional[timedelta] = None,
    schedule_to_start_timeout: Optional[timedelta] = None,
    start_to_close_timeout: Optional[timedelta] = None,
    retry_policy: Optional[RetryPolicy] = None,
    local_retry_threshold: Optional[timedelta] = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: Optional[str] = None,
    summary: Optional[str] = None,
) -> ActivityHandle:
    """Runs an activity as a local activity (in this worker, recorded as a
    marker); served by the worker's activity plugins."""
    rt = _rt()
    name, ret = _activity_name(activity, result_type)
    if not start_to_close_timeout and not schedule_to_close_timeout:
        raise ValueError("Activity must have start_to_close_timeout or schedule_to_close_timeout")
    request = LocalActivityRequest(
        activity_type=name,
        args=[converter.encode(a) for a in _args(arg, args)],
        activity_id=activity_id,
        start_to_close_timeout_ms=_ms(start_to_close_timeout, "start_to_close_timeout"),
        schedule_to_close_timeout_ms=_ms(schedule_to_close_timeout, "schedule_to_close_timeout"),
        schedule_to_start_timeout_ms=_ms(schedule_to_start_timeout, "schedule_to_start_timeout"),
        retry_policy=_retry(retry_policy),
        local_retry_threshold_ms=_ms(local_retry_threshold, "local_retry_threshold"),
        cancellation_type=_ACTIVITY_CANCELLATION[ActivityCancellationType(cancellation_type)],
        summary=summary,
    )
    return _start_activity(rt, name, ret, lambda: rt.host.start_local_activity(request), "local activity")


async def execute_local_activity(activity: Any, arg: Any = _unset, **kwargs: Any) -> Any:
    """``await start_local_activity(...)``."""
    return await start_local_activity(activity, arg, **kwargs)


# Methods of activity classes are passed bound or unbound; both carry the
# definition, so the method and class forms are the same functions.
start_activity_method = start_activity
execute_activity_method = execute_activity
start_activity_class = start_activity
execute_activity_class = execute_activity
start_local_activity_method = start_local_activity
execute_local_activity_method = execute_local_activity
start_local_activity_class = start_local_activity
execute_local_activity_class = execute_local_activity


# ====================================================================== child and external workflows


class ChildWorkflowHandle(asyncio.Task):
    """What ``start_child_workflow`` returns: a task of the child's result,
    with its ``id`` and ``signal``. ``first_execution_run_id`` is None:
    Caisson does not report the child's run id."""

    def __init__(self, coro: Any, *, loop: WorkflowRuntime, name: str, workflow_id: str, host_handle: int) -> None:
        super().__init__(coro, loop=loop, name=name)
        self._caisson_loop = loop
        self._id = workflow_id
        self._host_handle = host_handle
        self._started = False

    @property
    def id(self) -> str:
        return self._id

    @property
    def first_execution_run_id(self) -> Optional[str]:
        return None

    async def signal(self, signal: Any, arg: Any = _unset, *, args: Sequence[Any] = ()) -> None:
        """Signals the child."""
        await _signal_external(self._id, signal, _args(arg, args))

    def cancel(self, msg: Any = None) -> bool:
        if not self._started and not self.done():
            self._caisson_loop.cancel_handle(self._host_handle)
        return super().cancel(msg)


def _workflow_name(workflow: Any, result_type: Optional[type]) -> tuple:
    if isinstance(workflow, str):
        return workflow, result_type
    d = workflow_definition_of(workflow)
    if d is None:
        raise TypeError(f"{getattr(workflow, '__qualname__', workflow)}: not a workflow (pass MyWorkflow.run or a type name)")
    return d.name, result_type if result_type is not None else d.hints()[1]


def _memo_entries(m: Optional[Mapping[str, Any]]) -> List[MemoEntry]:
    return [MemoEntry(k, converter.encode(v)) for k, v in (m or {}).items() if v is not None]


def _unsupported(what: str, value: Any, default: Any = None) -> None:
    if value is not None and value != default:
        raise NotImplementedError(f"{what} is not supported by Caisson's workflow context (caisson:workflow@0.2.0)")


async def start_child_workflow(
    workflow: Any,
    arg: Any = _unset,
    *,
    args: Sequence[Any] = (),
    id: Optional[str] = None,
    task_queue: Optional[str] = None,
    result_type: Optional[type] = None,
    cancellation_type: ChildWorkflowCancellationType = ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
    parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE,
    execution_timeout: Optional[timedelta] = None,
    run_timeout: Optional[timedelta] = None,
    task_timeout: Optional[timedelta] = None,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    retry_policy: Optional[RetryPolicy] = None,
    cron_schedule: str = "",
    memo: Optional[Mapping[str, Any]] = None,
    search_attributes: Any = None,
    versioning_intent: Any = None,
    static_summary: Optional[str] = None,
    static_details: Optional[str] = None,
    priority: Priority = Priority.default,  # type: ignore[attr-defined]
) -> ChildWorkflowHandle:
    """Starts a child workflow (``MyWorkflow.run`` or a type name) and
    returns its handle (await it for the result). The id defaults to a
    ``workflow.uuid4()``, as in the SDK."""
    rt = _rt()
    rt.assert_writable("start a child workflow")
    name, ret = _workflow_name(workflow, result_type)
    _unsupported("start_child_workflow(task_timeout=...)", task_timeout)
    _unsupported("start_child_workflow(id_reuse_policy=...)", id_reuse_policy, WorkflowIDReusePolicy.ALLOW_DUPLICATE)
    _unsupported("start_child_workflow(cron_schedule=...)", cron_schedule or None)
    cancellation_type = ChildWorkflowCancellationType(cancellation_type)
    if cancellation_type not in _CHILD_CANCELLATION:
        raise NotImplementedError(f"child cancellation_type {cancellation_type.name} is not supported by Caisson")
    child_id = id or str(rt.uuid4())
    request = ChildRequest(
        workflow_type=name,
        args=[converter.encode(a) for a in _args(arg, args)],
        workflow_id=child_id,
        task_queue=task_queue,
        execution_timeout_ms=_ms(execution_timeout, "execution_timeout"),
        run_timeout_ms=_ms(run_timeout, "run_timeout"),
        retry_policy=_retry(retry_policy),
        parent_close_policy=_PARENT_CLOSE[ParentClosePolicy(parent_close_policy)],
        cancellation_type=_CHILD_CANCELLATION[cancellation_type],
        memo=_memo_entries(memo),
        search_attributes=_sa_records(search_attributes) if search_attributes else [],
        static_summary=static_summary,
        static_details=static_details,
        priority=_priority(priority),
    )
    fut = rt.create_future()
    host_handle = rt.host.start_child_workflow(request)
    namespace = _state(rt)["host_info"].namespace

    def resolve(outcome: Any) -> None:
        if fut.done():
            return
        if isinstance(outcome, Completed):
            try:
                fut.set_result(rt.decode_result(outcome, ret, f"result of child workflow `{name}`"))
            except TypeError as err:
                fut.set_exception(err)
        else:
            fut.set_exception(_failures.child_failure(outcome, namespace=namespace, workflow_id=child_id, workflow_type=name))

    rt.watch(host_handle, resolve)
    handle: Optional[ChildWorkflowHandle] = None

    async def run_child() -> Any:
        handle._started = True  # type: ignore[union-attr]
        return await rt.await_operation(fut, lambda: rt.cancel_handle(host_handle))

    handle = ChildWorkflowHandle(run_child(), loop=rt, name=f"child: {name}", workflow_id=child_id, host_handle=host_handle)
    rt.register_task(handle)
    return handle


async def execute_child_workflow(workflow: Any, arg: Any = _unset, **kwargs: Any) -> Any:
    """Starts a child workflow and waits for its result."""
    handle = await start_child_workflow(workflow, arg, **kwargs)
    return await handle


def _signal_name(signal: Any) -> str:
    if isinstance(signal, str):
        return signal
    d = getattr(signal, "__caisson_handler", None)
    if d is None or d.kind != "signal" or d.name is None:
        raise TypeError("signal: pass a signal name or a @workflow.signal method")
    return d.name


async def _signal_external(workflow_id: str, signal: Any, args: List[Any]) -> None:
    rt = _rt()
    rt.assert_writable("signal a workflow")
    name = _signal_name(signal)
    fut = rt.create_future()
    host_handle = rt.host.signal_external_workflow(workflow_id, name, [converter.encode(a) for a in args])

    def resolve(outcome: Any) -> None:
        if fut.done():
            return
        if isinstance(outcome, Completed):
            fut.set_result(None)
        else:
            fut.set_exception(_failures._cause(outcome))

    rt.watch(host_handle, resolve)
    await rt.await_operation(fut, lambda: rt.cancel_handle(host_handle))


class ExternalWorkflowHandle:
    """Another workflow, to signal (``get_external_workflow_handle``)."""

    def __init__(self, id: str, run_id: Optional[str]) -> None:
        self._id = id
        self._run_id = run_id

    @property
    def id(self) -> str:
        return self._id

    @property
    def run_id(self) -> Optional[str]:
        return self._run_id

    async def signal(self, signal: Any, arg: Any = _unset, *, args: Sequence[Any] = ()) -> None:
        """Signals the workflow (its latest run: Caisson's context takes no run id)."""
        await _signal_external(self._id, signal, _args(arg, args))

    async def cancel(self) -> None:
        raise NotImplementedError("cancelling an external workflow is not supported by Caisson's workflow context")


def get_external_workflow_handle(workflow_id: str, *, run_id: Optional[str] = None) -> ExternalWorkflowHandle:
    """A handle to signal another workflow."""
    _rt()
    return ExternalWorkflowHandle(workflow_id, run_id)


def get_external_workflow_handle_for(workflow: Any, workflow_id: str, *, run_id: Optional[str] = None) -> ExternalWorkflowHandle:
    return get_external_workflow_handle(workflow_id, run_id=run_id)


# ====================================================================== continue-as-new


def continue_as_new(
    arg: Any = _unset,
    *,
    args: Sequence[Any] = (),
    workflow: Any = None,
    task_queue: Optional[str] = None,
    run_timeout: Optional[timedelta] = None,
    task_timeout: Optional[timedelta] = None,
    backoff_start_interval: Optional[timedelta] = None,
    retry_policy: Optional[RetryPolicy] = None,
    memo: Optional[Mapping[str, Any]] = None,
    search_attributes: Any = None,
    versioning_intent: Any = None,
) -> None:
    """Ends this run and starts a new one with fresh history (raises
    `ContinueAsNewError`, which must not be caught). Memo and search
    attributes not given are kept."""
    rt = _rt()
    rt.assert_writable("continue as new")
    _unsupported("continue_as_new(run_timeout=...)", run_timeout)
    _unsupported("continue_as_new(task_timeout=...)", task_timeout)
    _unsupported("continue_as_new(backoff_start_interval=...)", backoff_start_interval)
    _unsupported("continue_as_new(retry_policy=...)", retry_policy)
    name = None if workflow is None else _workflow_name(workflow, None)[0]
    raise ContinueAsNewError(
        ContinueAsNewRequest(
            workflow_type=name,
            args=[converter.encode(a) for a in _args(arg, args)],
            task_queue=task_queue,
            memo=_memo_entries(memo),
            search_attributes=_sa_records(search_attributes) if search_attributes else [],
        )
    )


# ====================================================================== handlers set at run time


def _set_handler(kind: str, name: Optional[str], handler: Optional[Callable], validator: Optional[Callable] = None) -> None:
    rt = _rt()
    table = {"signal": rt.signals, "query": rt.queries, "update": rt.updates}[kind]
    if handler is None:
        table.pop(name, None)
        return
    table[name] = HandlerDefinition(kind=kind, name=name, fn=handler, validator=validator, is_method=False)
    if kind == "signal":
        rt.replay_buffered_signals(name)


def set_signal_handler(name: str, handler: Optional[Callable]) -> None:
    """Sets (or with None removes) the handler of signal ``name``; signals
    that arrived before it are delivered to it."""
    _set_handler("signal", name, handler)


def set_dynamic_signal_handler(handler: Optional[Callable]) -> None:
    """The handler of signals without one: ``handler(name, args: Sequence[RawValue])``."""
    _set_handler("signal", None, handler)


def set_query_handler(name: str, handler: Optional[Callable]) -> None:
    _set_handler("query", name, handler)


def set_dynamic_query_handler(handler: Optional[Callable]) -> None:
    _set_handler("query", None, handler)


def set_update_handler(name: str, handler: Optional[Callable], *, validator: Optional[Callable] = None) -> None:
    _set_handler("update", name, handler, validator)


def set_dynamic_update_handler(handler: Optional[Callable], *, validator: Optional[Callable] = None) -> None:
    _set_handler("update", None, handler, validator)


def _get_handler(kind: str, name: Optional[str]) -> Optional[Callable]:
    rt = _rt()
    d = {"signal": rt.signals, "query": rt.queries, "update": rt.updates}[kind].get(name)
    if d is None:
        return None
    return d.fn.__get__(rt.object) if d.is_method else d.fn


def get_signal_handler(name: str) -> Optional[Callable]:
    return _get_handler("signal", name)


def get_query_handler(name: str) -> Optional[Callable]:
    return _get_handler("query", name)


def get_update_handler(name: str) -> Optional[Callable]:
    return _get_handler("update", name)


# ====================================================================== logging and unsafe


def _host_of_current() -> Any:
    rt = maybe_current()
    return rt.host if rt is not None else None


logger = LoggerAdapter(make_logger("caisson.workflow", _host_of_current))
"""A logger whose lines reach the worker log, tagged with the workflow
(lines logged while replaying are dropped by the worker)."""


class unsafe:
    """The SDK's escape hatches. Caisson has no import sandbox (each
    workflow is a WebAssembly instance), so the import helpers do nothing."""

    @staticmethod
    def is_replaying() -> bool:
        """True while the worker replays history."""
        return _rt().host.is_replaying()

    @staticmethod
    def is_sandboxed() -> bool:
        return False

    @staticmethod
    def in_sandbox() -> bool:
        return False

    @staticmethod
    @contextlib.contextmanager
    def imports_passed_through() -> Iterator[None]:
        yield

    @staticmethod
    @contextlib.contextmanager
    def sandbox_unrestricted() -> Iterator[None]:
        yield

    @staticmethod
    def is_read_only() -> bool:
        return _rt()._read_only is not None
