"""Run workflows and activities in plain CPython, without a worker: the
unit tests of a workflow's logic.

``WorkflowEnvironment`` plays the Caisson host with virtual time (timers
fire as soon as nothing else can happen, like the SDK's time-skipping test
server)::

    env = WorkflowEnvironment(activities=[compose_greeting])   # or {"greet": fn}
    env.signal("approve", "alice", at=timedelta(hours=1))
    status = env.query("status", at=timedelta(minutes=5))
    assert env.run(GreetingWorkflow.run, "World") == "Hello, World!"
    assert status.result == "pending"

Activities run when they complete: at once, or after ``takes(delay, fn)``
of virtual time. Child workflows run in a nested environment. Every call
the workflow made of the host is in ``env.commands`` (compare two runs
to check determinism), its log lines in ``env.logs``.

``ActivityEnvironment`` runs an activity function with a test context
(``activity.info()``, heartbeats recorded, cancellation on demand), like
``temporalio.testing.ActivityEnvironment``.
"""
from __future__ import annotations

import heapq
import itertools
import json
import random as _random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from . import converter
from ._activity_runner import ActivityFailed, run_definition
from ._definition import ActivityDefinition, activity_definition_of, workflow_definition_of, workflows
from ._host import (
    AppError,
    CancelRequested,
    Completed,
    Failed,
    HostActivityInfo,
    HostWorkflowInfo,
    MemoEntry,
    QueryReceived,
    Resolved,
    SearchAttr,
    SignalReceived,
    UpdateReceived,
)
from ._scheduler import TaskFailure, WorkflowFailed, WorkflowRuntime
from .activity import Info as ActivityInfo
from .activity import _Context, _current
from .exceptions import ApplicationError, CancelledError

__all__ = [
    "WorkflowEnvironment",
    "ActivityEnvironment",
    "WorkflowFailureError",
    "WorkflowTaskFailedError",
    "WorkflowBlockedError",
    "ActivityTimeout",
    "takes",
]


class WorkflowFailureError(Exception):
    """The workflow failed (or ended cancelled: ``cause`` is then a
    `CancelledError`), as the client's ``WorkflowFailureError``."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"Workflow execution failed: {cause}")
        self._cause = cause

    @property
    def cause(self) -> BaseException:
        return self._cause


class WorkflowTaskFailedError(Exception):
    """The workflow task failed (an unexpected exception): a worker would
    retry it forever. ``text`` has the traceback."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class WorkflowBlockedError(Exception):
    """The workflow waits for something that never comes (no timer, no
    activity and no scripted signal is left)."""


class ActivityTimeout(BaseException):
    """Raise from a test activity to make it time out (``kind``:
    ``start-to-close``, ``schedule-to-close``, ``heartbeat``...). A
    BaseException, so the activity's own ``except Exception`` lets it out."""

    def __init__(self, kind: str = "start-to-close") -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass
class _Delayed:
    delay: timedelta
    fn: Callable


def takes(delay: Union[timedelta, float], fn: Callable) -> _Delayed:
    """A test activity that completes ``delay`` (virtual time) after it is
    scheduled; it can be cancelled meanwhile."""
    return _Delayed(delay if isinstance(delay, timedelta) else timedelta(seconds=delay), fn)


@dataclass
class QueryResult:
    """Filled when the scripted query is answered."""

    name: str
    answered: bool = False
    result: Any = None
    error: Optional[str] = None


@dataclass
class UpdateResult:
    """Filled when the scripted update is answered."""

    name: str
    accepted: bool = False
    rejected: Optional[AppError] = None
    completed: bool = False
    result: Any = None
    error: Optional[AppError] = None


class _RunEnded(BaseException):
    def __init__(self, kind: str, request: Any = None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.request = request


def _seconds(at: Union[None, float, timedelta]) -> float:
    if at is None:
        return 0.0
    return at.total_seconds() if isinstance(at, timedelta) else float(at)


class _FakeWorkflowHost:
    """The host of one run, in virtual time."""

    def __init__(self, env: "WorkflowEnvironment", workflow_type: str, workflow_id: str, run_id: str, parent: Optional[str]) -> None:
        self.env = env
        self.now = env._now_ms
        self.workflow_type = workflow_type
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.parent = parent
        self._rng = _random.Random(f"{env.seed}:{workflow_id}:{run_id}")
        self._handles = itertools.count(1)
        self._seq = itertools.count()
        # (time ms, 0 for inbound / 1 for resolutions, seq, event, handle)
        self._queue: List[tuple] = []
        self._pending: Dict[int, Callable[[], Any]] = {}
        self._cancellation: Dict[int, str] = {}
        self._open_queries: Dict[str, QueryResult] = {}
        self._open_updates: Dict[str, UpdateResult] = {}
        self._updates: Dict[str, UpdateResult] = {}
        self.cancel_requested = False
        self.memo = dict(env._memo)
        self.search_attributes = {a.name: a for a in env._search_attributes}
        for at, kind, payload in env._inbound:
            self._push(env._start_ms + int(at * 1000), 0, (kind, payload), None)

    def _push(self, when: int, prio: int, event: Any, handle: Optional[int]) -> None:
        heapq.heappush(self._queue, (when, prio, next(self._seq), event, handle))

    def _record(self, *command: Any) -> None:
        self.env.commands.append(command)

    # --- starting work
    def _resolve_later(self, handle: int, delay_ms: int, produce: Callable[[], Any], cancellation: str = "try_cancel") -> None:
        self._pending[handle] = produce
        self._cancellation[handle] = cancellation
        self._push(self.now + delay_ms, 1, None, handle)

    def start_activity(self, r: Any) -> int:
        h = next(self._handles)
        self._record("start_activity", r.activity_type, tuple(r.args))
        delay, produce = self.env._activity(r.activity_type, r.args, self, r)
        self._resolve_later(h, delay, produce, r.cancellation_type)
        return h

    def start_local_activity(self, r: Any) -> int:
        h = next(self._handles)
        self._record("start_local_activity", r.activity_type, tuple(r.args))
        delay, produce = self.env._activity(r.activity_type, r.args, self, r)
        self._resolve_later(h, delay, produce, r.cancellation_type)
        return h

    def start_timer(self, duration_ms: int, summary: Optional[str]) -> int:
        h = next(self._handles)
        self._record("start_timer", duration_ms, summary)
        self._resolve_later(h, duration_ms, lambda: Completed("null"))
        return h

    def start_child_workflow(self, r: Any) -> int:
        h = next(self._handles)
        self._record("start_child_workflow", r.workflow_type, r.workflow_id, tuple(r.args))
        # Run when waited on: outside the parent's task step.
        self._resolve_later(h, 0, lambda: self.env._run_child(r, self), r.cancellation_type)
        return h

    def signal_external_workflow(self, workflow_id: str, signal_name: str, args: List[str]) -> int:
        h = next(self._handles)
        self._record("signal_external_workflow", workflow_id, signal_name, tuple(args))
        self.env.external_signals.append((workflow_id, signal_name, [json.loads(a) for a in args]))
        self._resolve_later(h, 0, lambda: Completed("null"))
        return h

    def cancel(self, handle: int) -> None:
        self._record("cancel", handle)
        if handle in self._pending:
            del self._pending[handle]
            # Cancellation types all resolve at once here: the fake confirms
            # cancellations immediately.
            self._push(self.now, 1, Resolved(handle, Failed("cancelled", "cancelled")), handle)

    # --- waiting
    def wait(self, handles: List[int]) -> Any:
        assert not self._open_queries, f"the workflow waited without answering queries {list(self._open_queries)}"
        assert not self._open_updates, f"the workflow waited without accepting or rejecting updates {list(self._open_updates)}"
        waited = set(handles)
        while self._queue:
            when, prio, _, event, handle = heapq.heappop(self._queue)
            if handle is not None:
                if isinstance(event, Resolved):
                    pass  # a cancellation's resolution
                elif handle in self._pending:
                    produce = self._pending.pop(handle)
                    self.now = max(self.now, when)
                    event = Resolved(handle, produce())
                else:
                    continue  # cancelled meanwhile
                if handle not in waited:
                    continue
                self.now = max(self.now, when)
                return event
            self.now = max(self.now, when)
            kind, payload = event
            if kind == "signal":
                return SignalReceived(payload[0], [converter.encode(a) for a in payload[1]])
            if kind == "query":
                qid = f"q{next(self._seq)}"
                self._open_queries[qid] = payload[2]
                return QueryReceived(qid, payload[0], [converter.encode(a) for a in payload[1]])
            if kind == "update":
                uid = f"u{next(self._seq)}"
                self._open_updates[uid] = payload[2]
                self._updates[uid] = payload[2]
                return UpdateReceived(uid, payload[0], [converter.encode(a) for a in payload[1]], not payload[3])
            if kind == "cancel":
                self.cancel_requested = True
                return CancelRequested()
        raise WorkflowBlockedError(
            f"workflow {self.workflow_type} ({self.workflow_id}) waits for a signal, update or condition that never comes "
            f"(no timer, activity or scripted event is left)"
        )

    # --- answers
    def respond_query(self, id: str, answer: Optional[str], error: Optional[str] = None) -> None:
        q = self._open_queries.pop(id)
        q.answered = True
        q.result = None if answer is None else json.loads(answer)
        q.error = error

    def accept_update(self, id: str) -> None:
        self._record("accept_update", id)
        self._open_updates.pop(id).accepted = True

    def reject_update(self, id: str, error: AppError) -> None:
        self._open_updates.pop(id).rejected = error

    def complete_update(self, id: str, result: Optional[str], error: Optional[AppError] = None) -> None:
        self._record("complete_update", id)
        u = self._updates[id]
        assert u.accepted, f"update {id} completed before it was accepted"
        u.completed = True
        u.result = None if result is None else json.loads(result)
        u.error = error

    # --- state
    def upsert_search_attributes(self, attributes: List[SearchAttr]) -> None:
        self._record("upsert_search_attributes", tuple((a.name, a.kind, json.dumps(a.value)) for a in attributes))
        for a in attributes:
            if a.value is None:
                self.search_attributes.pop(a.name, None)
            else:
                self.search_attributes[a.name] = a

    def upsert_memo(self, fields: List[MemoEntry]) -> None:
        self._record("upsert_memo", tuple((m.name, m.value) for m in fields))
        for m in fields:
            if m.value is None:
                self.memo.pop(m.name, None)
            else:
                self.memo[m.name] = m.value

    def set_current_details(self, details: str) -> None:
        self.env.current_details = details

    def end_cancelled(self) -> None:
        assert self.cancel_requested, "end-cancelled without a cancellation request fails the task"
        raise _RunEnded("cancelled")

    def is_cancel_requested(self) -> bool:
        return self.cancel_requested

    def now_ms(self) -> int:
        return self.now

    def random_u64(self) -> int:
        return self._rng.getrandbits(64)

    def patched(self, patch_id: str) -> bool:
        self._record("patched", patch_id)
        return patch_id not in self.env.unpatched

    def deprecate_patch(self, patch_id: str) -> None:
        self._record("deprecate_patch", patch_id)

    def info(self) -> HostWorkflowInfo:
        return HostWorkflowInfo(
            namespace=self.env.namespace,
            task_queue=self.env.task_queue,
            workflow_type=self.workflow_type,
            workflow_id=self.workflow_id,
            run_id=self.run_id,
            attempt=1,
            continued_from_run_id=self.env._continued_from,
            parent_workflow_id=self.parent,
            memo=[MemoEntry(k, v) for k, v in self.memo.items()],
            search_attributes=list(self.search_attributes.values()),
            start_time_ms=self.env._start_ms,
        )

    def is_replaying(self) -> bool:
        return False

    def log(self, level: str, message: str) -> None:
        self.env.logs.append((level, message))

    def continue_as_new(self, r: Any) -> None:
        self._record("continue_as_new", r.workflow_type, tuple(r.args))
        raise _RunEnded("continue_as_new", r)


def _as_json(value: Any) -> str:
    return converter.encode(value)


class WorkflowEnvironment:
    """A Caisson host in plain CPython for one workflow (see the module doc)."""

    def __init__(
        self,
        *,
        activities: Union[Mapping[str, Any], Sequence[Any]] = (),
        start_time: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc),
        workflow_id: str = "test-workflow",
        namespace: str = "default",
        task_queue: str = "test",
        memo: Optional[Mapping[str, Any]] = None,
        search_attributes: Sequence[SearchAttr] = (),
        seed: int = 0,
        unpatched: Sequence[str] = (),
        max_continue_as_new: int = 100,
    ) -> None:
        self._activities: Dict[str, Any] = {}
        items = activities.items() if isinstance(activities, Mapping) else [(None, a) for a in activities]
        for name, fn in items:
            target = fn.fn if isinstance(fn, _Delayed) else fn
            d = activity_definition_of(target)
            self._activities[name or (d.name if d else target.__name__)] = fn
        self._start_ms = int(start_time.timestamp() * 1000)
        self._now_ms = self._start_ms
        self.workflow_id = workflow_id
        self.namespace = namespace
        self.task_queue = task_queue
        self._memo = {k: _as_json(v) for k, v in (memo or {}).items()}
        self._search_attributes = list(search_attributes)
        self.seed = seed
        self.unpatched = set(unpatched)
        self.max_continue_as_new = max_continue_as_new
        self._inbound: List[tuple] = []
        self._continued_from: Optional[str] = None
        self._parent: Optional[str] = None
        #: Every call the workflow made of the host, in order.
        self.commands: List[tuple] = []
        #: (level, message) of every line the workflow logged.
        self.logs: List[tuple] = []
        #: (workflow id, signal, args) sent to other workflows.
        self.external_signals: List[tuple] = []
        #: The continue-as-new runs: (workflow type, args) of each.
        self.continued_as_new: List[tuple] = []
        self.current_details = ""
        self.children: List["WorkflowEnvironment"] = []
        self.last_runtime: Optional[WorkflowRuntime] = None

    # --- scripted inbound events (delivered at `at` after the start)
    def signal(self, name: str, *args: Any, at: Union[None, float, timedelta] = None) -> None:
        self._inbound.append((_seconds(at), "signal", (name, list(args))))

    def query(self, name: str, *args: Any, at: Union[None, float, timedelta] = None) -> QueryResult:
        result = QueryResult(name)
        self._inbound.append((_seconds(at), "query", (name, list(args), result)))
        return result

    def update(self, name: str, *args: Any, at: Union[None, float, timedelta] = None, replaying: bool = False) -> UpdateResult:
        """An update; with ``replaying=True`` it arrives as on replay (the
        validator is not run)."""
        result = UpdateResult(name)
        self._inbound.append((_seconds(at), "update", (name, list(args), result, replaying)))
        return result

    def cancel(self, *, at: Union[None, float, timedelta] = None) -> None:
        self._inbound.append((_seconds(at), "cancel", None))

    # --- running
    def run(self, workflow: Any, *args: Any, workflow_type: Optional[str] = None) -> Any:
        """Runs the workflow (its class, ``Class.run`` or type name) with
        ``args``; returns its result decoded by the run method's return
        hint, following continue-as-new. Raises `WorkflowFailureError`,
        `WorkflowTaskFailedError` or `WorkflowBlockedError`."""
        defn = workflow_definition_of(workflow) if not isinstance(workflow, str) else workflows.get(workflow)
        if defn is None:
            raise ValueError(f"{workflow!r} is not a @workflow.defn class (or its run method, or a registered type name)")
        json_args = [_as_json(a) for a in args]
        run_number = 0
        while True:
            run_number += 1
            run_id = f"{self.workflow_id}-run-{run_number}"
            host = _FakeWorkflowHost(self, defn.name, self.workflow_id, run_id, self._parent)
            runtime = WorkflowRuntime(defn, host)
            self.last_runtime = runtime
            try:
                result = runtime.run(json_args)
            except WorkflowFailed as failed:
                e = failed.error
                raise WorkflowFailureError(
                    ApplicationError(e.message, *(() if e.details is None else (json.loads(e.details),)),
                                     type=e.error_type or None, non_retryable=e.non_retryable)
                ) from None
            except TaskFailure as failure:
                raise WorkflowTaskFailedError(failure.text) from None
            except _RunEnded as ended:
                if ended.kind == "cancelled":
                    raise WorkflowFailureError(CancelledError("Workflow cancelled")) from None
                r = ended.request
                self.continued_as_new.append((r.workflow_type or defn.name, [json.loads(a) for a in r.args]))
                if run_number > self.max_continue_as_new:
                    raise WorkflowBlockedError(f"more than {self.max_continue_as_new} continue-as-new runs") from None
                if r.workflow_type:
                    defn = workflows[r.workflow_type]
                json_args = list(r.args)
                for m in r.memo:
                    self._memo[m.name] = m.value
                self._continued_from = run_id
                self._now_ms = host.now
                self._inbound = []
                continue
            self._now_ms = host.now
            _, ret = defn.hints()
            return converter.decode(result, converter.optional_hint(ret), what="workflow result")

    def query_after(self, name: str, *args: Any) -> Any:
        """Answers a query from the state the last run left (as the worker
        does for a closed workflow)."""
        import asyncio.events

        rt = self.last_runtime
        assert rt is not None, "run the workflow first"
        asyncio.events._set_running_loop(rt)
        try:
            return json.loads(rt.answer_query(name, [_as_json(a) for a in args]))
        finally:
            asyncio.events._set_running_loop(None)

    # --- what the fake host runs
    def _activity(self, name: str, args: List[str], host: _FakeWorkflowHost, request: Any):
        fn = self._activities.get(name)
        if fn is None:
            err = AppError(f"no activity `{name}` in this test environment (it has: {', '.join(sorted(self._activities)) or 'none'})",
                           "NotFound", True)
            return 0, lambda: Failed("application", err.message, err)
        delay = 0
        if isinstance(fn, _Delayed):
            delay = int(fn.delay.total_seconds() * 1000)
            fn = fn.fn
        d = activity_definition_of(fn) or ActivityDefinition(name=name, fn=fn, is_async=__import__("inspect").iscoroutinefunction(fn))
        attempt_host = _FakeActivityHost(name, host, request)

        def produce() -> Any:
            try:
                return Completed(run_definition(attempt_host, d, name, args))
            except ActivityFailed as failed:
                return Failed("application", failed.error.message, failed.error)
            except ActivityTimeout as t:
                return Failed("timeout", t.kind)

        return delay, produce

    def _run_child(self, r: Any, parent: _FakeWorkflowHost) -> Any:
        defn = workflows.get(r.workflow_type)
        if defn is None:
            return Failed("other", f"child workflow {r.workflow_id} ({r.workflow_type}) could not start: no such workflow type in the test")
        child = WorkflowEnvironment(
            activities=self._activities, workflow_id=r.workflow_id, namespace=self.namespace,
            task_queue=r.task_queue or self.task_queue, seed=self.seed,
            start_time=datetime.fromtimestamp(parent.now / 1000, timezone.utc),
        )
        child._memo = {m.name: m.value for m in r.memo if m.value is not None}
        child._parent = parent.workflow_id
        child._search_attributes = list(r.search_attributes)
        self.children.append(child)
        try:
            result = child.run(defn.run_fn, *[json.loads(a) for a in r.args])
            return Completed(_as_json(result))
        except WorkflowFailureError as failure:
            cause = failure.cause
            if isinstance(cause, CancelledError):
                return Failed("cancelled", cause.message)
            e = AppError(cause.message, cause.type or "", cause.non_retryable, None)  # type: ignore[union-attr]
            return Failed("application", e.message, e)


class _FakeActivityHost:
    def __init__(self, name: str, parent: Optional[_FakeWorkflowHost], request: Any) -> None:
        self.name = name
        self.parent = parent
        self.request = request
        self.heartbeats: List[Optional[str]] = []

    def heartbeat(self, details: Optional[str]) -> None:
        self.heartbeats.append(details)

    def last_heartbeat_details(self) -> Optional[str]:
        return None

    def is_cancelled(self) -> bool:
        return False

    def info(self) -> HostActivityInfo:
        p = self.parent
        return HostActivityInfo(
            activity_id="1", activity_type=self.name, task_queue=p.env.task_queue if p else "test",
            workflow_namespace=p.env.namespace if p else "default", workflow_type=p.workflow_type if p else "",
            workflow_id=p.workflow_id if p else "", workflow_run_id=p.run_id if p else "", attempt=1,
            start_to_close_timeout_ms=getattr(self.request, "start_to_close_timeout_ms", None),
            heartbeat_timeout_ms=getattr(self.request, "heartbeat_timeout_ms", None),
        )

    def log(self, level: str, message: str) -> None:
        if self.parent is not None:
            self.parent.env.logs.append((level, message))


class ActivityEnvironment:
    """Runs activity functions with a test context, as the SDK's
    ``ActivityEnvironment``: ``env.run(fn, *args)`` calls it (awaiting an
    ``async def`` one); heartbeats go to ``on_heartbeat``; ``cancel()``
    makes ``activity.is_cancelled()`` true."""

    def __init__(self, info: Optional[ActivityInfo] = None) -> None:
        now = datetime.now(timezone.utc)
        self.info = info or ActivityInfo(
            activity_id="test", activity_type="unknown", attempt=1, current_attempt_scheduled_time=now,
            heartbeat_details=[], heartbeat_timeout=None, is_local=False, namespace="default",
            schedule_to_close_timeout=None, scheduled_time=now, start_to_close_timeout=timedelta(seconds=10),
            started_time=now, task_queue="test", task_token=b"", workflow_id="test", workflow_namespace="default",
            workflow_run_id="test-run", workflow_type="test",
        )
        self.on_heartbeat: Callable[..., None] = lambda *details: None
        self._cancelled = False
        self.logs: List[tuple] = []

    def cancel(self) -> None:
        self._cancelled = True

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))

    def run(self, fn: Callable, *args: Any) -> Any:
        import inspect

        from ._activity_runner import ActivityLoop

        d = activity_definition_of(fn)
        info = replace(self.info, activity_type=d.name) if d and d.name else self.info
        ctx = _Context(info=lambda: info, heartbeat=lambda *details: self.on_heartbeat(*details),
                       is_cancelled=lambda: self._cancelled, host=self)
        token = _current.set(ctx)
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                async def wrapper() -> Any:
                    return await result

                result = ActivityLoop(lambda: self._cancelled, self.log).run_until_complete(wrapper())
            return result
        finally:
            _current.reset(token)
