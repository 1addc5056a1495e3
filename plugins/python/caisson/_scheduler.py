"""The workflow scheduler: a custom asyncio event loop over the host's one
blocking ``wait``.

Modelled on the Temporal Python SDK's ``_WorkflowInstanceImpl``
(``temporalio/worker/_workflow_instance.py``): the loop runs every ready
callback until none is left, checks the ``wait_condition`` predicates
(which may make more callbacks ready), and when nothing can run calls the
host's ``wait`` with every pending handle (activities, timers, children,
external signals). What ``wait`` returns is applied like the SDK applies
an activation job:

* a resolution resolves the future of its handle, waking whoever awaits it;
* a signal starts its handler as a new task (buffered while no handler is
  registered; dropped with a warning when its arguments do not decode);
* a query runs its handler at once, read-only, and is answered before the
  next ``wait``;
* an update is validated (only when the host says so: never on replay),
  accepted or rejected at once, and its handler runs as a new task that
  completes the update;
* a cancellation request cancels the run task, so an
  ``asyncio.CancelledError`` (or an ``ActivityError`` caused by a
  ``CancelledError``) surfaces at the awaiting call.

Timers (``asyncio.sleep``, ``asyncio.wait_for``, ``asyncio.timeout``,
``workflow.sleep``) are durable: ``call_later`` starts a host timer, and
``time()`` is workflow time. Awaiting an activity or child shields its
future from task cancellation and tells the host to cancel it instead, so
its outcome (by its cancellation type) decides what the workflow sees.

How a run ends: the run method's result completes the workflow; a
`FailureError` (``ApplicationError``, ``ActivityError``, ...) or an
``asyncio.TimeoutError`` fails it; ``continue_as_new`` raises
`ContinueAsNewError`, applied when it reaches the top; a cancellation
propagating after a cancellation request ends it cancelled; any other
exception fails the workflow *task* (`TaskFailure`), which Temporal
retries.
"""
from __future__ import annotations

import asyncio
import asyncio.events
import collections
import contextvars
import inspect
import random as _random_module
import traceback
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple

from . import _failures, converter
from ._definition import HandlerDefinition, WorkflowDefinition
from ._host import (
    AppError,
    CancelRequested,
    Completed,
    ContinueAsNewRequest,
    Failed,
    QueryReceived,
    Resolved,
    SignalReceived,
    UpdateReceived,
)
from .common import RawValue
from .exceptions import CancelledError, FailureError, is_cancelled_exception


class TaskFailure(Exception):
    """The workflow task fails (Temporal retries it); ``text`` has the
    traceback of the exception that caused it."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class WorkflowFailed(Exception):
    """The workflow fails with ``error``."""

    def __init__(self, error: AppError) -> None:
        super().__init__(f"{error.error_type}: {error.message}")
        self.error = error


class ReadOnlyContextError(Exception):
    """A query handler or update validator tried to change the workflow
    (start work, sleep, upsert): they must only read."""


class NotInWorkflowEventLoopError(RuntimeError):
    """A workflow function was called outside a workflow."""


class ContinueAsNewError(BaseException):
    """Raised by ``workflow.continue_as_new``; do not catch it. A
    BaseException (as in the SDK) so ``except Exception`` lets it through."""

    def __init__(self, request: ContinueAsNewRequest) -> None:
        super().__init__("Continue as new")
        self.request = request


class _TimerHandle(asyncio.TimerHandle):
    """A callback due after a durable timer (``host_handle``), or at once
    for a zero delay (``host_handle`` None)."""

    def __init__(self, when, callback, args, loop, context, host_handle: Optional[int]) -> None:
        super().__init__(when, callback, args, loop, context)
        self.host_handle = host_handle


#: Summary of the timer the next ``call_later`` starts (``wait_condition``'s
#: ``timeout_summary``), as the SDK passes it through a context variable.
timer_summary: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("caisson_timer_summary", default=None)

#: The update the current task handles (``workflow.current_update_info``).
current_update: contextvars.ContextVar[Optional[Tuple[str, str]]] = contextvars.ContextVar("caisson_update", default=None)


async def _shield_await(fut: asyncio.Future) -> Any:
    """Awaits ``fut`` without cancelling it when the awaiting task is
    cancelled (the SDK's shield, without asyncio.shield's log noise)."""
    await asyncio.wait([fut])
    return fut.result()


def current() -> "WorkflowRuntime":
    """The runtime of the workflow running now."""
    loop = asyncio.events._get_running_loop()
    if isinstance(loop, WorkflowRuntime):
        return loop
    raise NotInWorkflowEventLoopError("Not in workflow event loop (this function only works inside a workflow)")


def maybe_current() -> Optional["WorkflowRuntime"]:
    loop = asyncio.events._get_running_loop()
    return loop if isinstance(loop, WorkflowRuntime) else None


@dataclass
class _Outcome:
    kind: str  # completed | failed | cancelled | continue_as_new
    result: Optional[str] = None
    error: Optional[BaseException] = None
    request: Optional[ContinueAsNewRequest] = None


class WorkflowRuntime(asyncio.AbstractEventLoop):
    """One workflow run: its event loop, its handlers and its state."""

    def __init__(self, defn: WorkflowDefinition, host: Any) -> None:
        self.defn = defn
        self.host = host
        self._ready: Deque[asyncio.Handle] = collections.deque()
        # Host handle -> what to do with its outcome.
        self._pending: Dict[int, Callable[[Any], None]] = {}
        self._conditions: List[Tuple[Callable[[], bool], asyncio.Future]] = []
        # Strong references: asyncio keeps only weak ones to tasks.
        self._tasks: Set[asyncio.Task] = set()
        self._primary: Optional[asyncio.Task] = None
        self.object: Any = None
        self._read_only: Optional[str] = None
        self.cancel_requested = False
        self._task_error: Optional[BaseException] = None
        self._outcome: Optional[_Outcome] = None
        self.signals: Dict[Optional[str], HandlerDefinition] = dict(defn.signals)
        self.queries: Dict[Optional[str], HandlerDefinition] = dict(defn.queries)
        self.updates: Dict[Optional[str], HandlerDefinition] = dict(defn.updates)
        self._buffered_signals: Dict[str, List[List[str]]] = {}
        self._signals_in_progress = 0
        self.updates_in_progress: Dict[str, str] = {}
        self._exception_handler: Optional[Callable] = None
        self._patches: Dict[str, bool] = {}
        self.random: Optional[_random_module.Random] = None
        self._info: Any = None
        self.current_details = ""

    # ------------------------------------------------------------ driving

    def run(self, args: List[str]) -> str:
        """Runs the workflow to its end; returns the result (JSON) or
        raises `WorkflowFailed` / `TaskFailure`. Continue-as-new and the
        cancelled end call the host, which does not return."""
        outer = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)
        try:
            self.random = _random_module.Random(self.host.random_u64())
            params, _ = self.defn.hints()
            try:
                decoded = converter.decode_args(params, args, what=f"workflow `{self.defn.name}`")
            except TypeError as err:
                raise TaskFailure(str(err)) from None
            self._primary = self.create_task(self._run_top(self._main(decoded), primary=True), name="run")
            while True:
                self._run_until_blocked()
                if self._outcome is not None:
                    return self._finish(self._outcome)
                self._apply(self.host.wait(list(self._pending)))
        finally:
            asyncio.events._set_running_loop(outer)

    async def _main(self, args: List[Any]) -> Any:
        cls = self.defn.cls
        self.object = cls(*args) if self.defn.init_takes_args else cls()
        return await self.defn.run_fn(self.object, *args)

    def _run_until_blocked(self) -> None:
        while True:
            while self._ready:
                handle = self._ready.popleft()
                if handle._cancelled:
                    continue
                handle._run()
                if self._task_error is not None:
                    raise TaskFailure(self._describe(self._task_error))
                if self._outcome is not None:
                    return
            if not self._check_conditions():
                return

    def _check_conditions(self) -> bool:
        """Resolves the futures of true conditions; True when any was."""
        woke = False
        remaining = []
        for fn, fut in self._conditions:
            if fut.done():
                continue
            try:
                hit = fn()
            except Exception as err:  # the waiter raises it (a task failure unless caught)
                fut.set_exception(err)
                woke = True
                continue
            if hit:
                fut.set_result(True)
                woke = True
            else:
                remaining.append((fn, fut))
        self._conditions = remaining
        return woke

    def _apply(self, event: Any) -> None:
        if isinstance(event, Resolved):
            resolve = self._pending.pop(event.handle, None)
            if resolve is not None:
                resolve(event.outcome)
        elif isinstance(event, SignalReceived):
            self._apply_signal(event.name, event.args)
        elif isinstance(event, QueryReceived):
            self._apply_query(event)
        elif isinstance(event, UpdateReceived):
            self._apply_update(event)
        elif isinstance(event, CancelRequested):
            self.cancel_requested = True
            if self._primary is not None and not self._primary.done():
                # Deferred as the SDK does, so the cancellation lands at the
                # run task's next await rather than in the middle of a step.
                self.call_soon(self._primary.cancel)
        else:  # pragma: no cover (the host's variants are all above)
            raise TaskFailure(f"unknown event from the host: {event!r}")

    async def _run_top(self, coro: Any, *, primary: bool) -> None:
        """The run method or a signal handler, with the SDK's top-level
        exception rules."""
        try:
            result = await coro
            if primary:
                try:
                    encoded = converter.encode(result)
                except (TypeError, ValueError) as err:
                    self._task_error = TypeError(f"the result of workflow `{self.defn.name}` is not JSON-serializable: {err}")
                    return
                self._set_outcome(_Outcome("completed", result=encoded))
        except ContinueAsNewError as err:
            self._set_outcome(_Outcome("continue_as_new", request=err.request))
        except (Exception, asyncio.CancelledError) as err:
            if self.cancel_requested and is_cancelled_exception(err):
                self._set_outcome(_Outcome("cancelled"))
            elif self.is_failure_exception(err):
                self._set_outcome(_Outcome("failed", error=err))
            else:
                self._task_error = err

    def _set_outcome(self, outcome: _Outcome) -> None:
        if self._outcome is None:
            self._outcome = outcome

    def is_failure_exception(self, err: BaseException) -> bool:
        """Whether ``err`` fails the workflow (else: the task)."""
        return isinstance(err, (FailureError, asyncio.CancelledError, asyncio.TimeoutError)) or any(
            isinstance(err, t) for t in self.defn.failure_exception_types
        )

    def _finish(self, outcome: _Outcome) -> str:
        if self.updates_in_progress:
            names = ", ".join(sorted(set(self.updates_in_progress.values())))
            self.host.log(
                "warn",
                f"workflow {self.defn.name} finished while update handlers are still running ({names}): "
                "their callers get an error; wait for workflow.all_handlers_finished before returning",
            )
        if outcome.kind == "completed":
            return outcome.result  # type: ignore[return-value]
        if outcome.kind == "failed":
            raise WorkflowFailed(_failures.to_app_error(outcome.error))  # type: ignore[arg-type]
        if outcome.kind == "cancelled":
            self.host.end_cancelled()
            raise TaskFailure("the host returned from end-cancelled")
        self.host.continue_as_new(outcome.request)
        raise TaskFailure("the host returned from continue-as-new")

    def _describe(self, err: BaseException) -> str:
        tb = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        return f"workflow {self.defn.name} task failed: {type(err).__name__}: {err}\n{tb.rstrip()}"

    # ------------------------------------------------------------ signals, queries, updates

    def _call_handler(self, defn: HandlerDefinition, name: str, args: List[Any]) -> Any:
        call_args = [name, [RawValue(a) for a in args]] if defn.is_dynamic else args
        if defn.is_method:
            return defn.fn(self.object, *call_args)
        return defn.fn(*call_args)

    def _decode_handler_args(self, defn: HandlerDefinition, name: str, args: List[str]) -> List[Any]:
        if defn.is_dynamic:
            return list(args)
        params, _ = defn.hints()
        return converter.decode_args(params, args, what=f"{defn.kind} `{name}`")

    def _apply_signal(self, name: str, args: List[str]) -> None:
        defn = self.signals.get(name) or self.signals.get(None)
        if defn is None:
            self._buffered_signals.setdefault(name, []).append(list(args))
            return
        self._start_signal(defn, name, args)

    def _start_signal(self, defn: HandlerDefinition, name: str, args: List[str]) -> None:
        try:
            decoded = self._decode_handler_args(defn, name, args)
        except TypeError as err:
            self.host.log("warn", f"workflow {self.defn.name}: dropping signal `{name}`: {err}")
            return

        async def run_signal() -> None:
            result = self._call_handler(defn, name, decoded)
            if inspect.isawaitable(result):
                await result

        self._signals_in_progress += 1
        task = self.create_task(self._run_top(run_signal(), primary=False), name=f"signal: {name}")
        task.add_done_callback(lambda _t: self._signal_done())

    def _signal_done(self) -> None:
        self._signals_in_progress -= 1

    def replay_buffered_signals(self, name: Optional[str]) -> None:
        """Delivers signals that arrived before a handler for them was set."""
        for signal_name in list(self._buffered_signals):
            if name is not None and signal_name != name:
                continue
            defn = self.signals.get(signal_name) or self.signals.get(None)
            if defn is None:
                continue
            for args in self._buffered_signals.pop(signal_name):
                self._start_signal(defn, signal_name, args)

    def _apply_query(self, q: QueryReceived) -> None:
        try:
            answer = self.answer_query(q.name, q.args)
        except Exception as err:
            self.host.respond_query(q.id, None, f"{type(err).__name__}: {err}" if not isinstance(err, FailureError) else err.message)
            return
        self.host.respond_query(q.id, answer, None)

    def answer_query(self, name: str, args: List[str]) -> str:
        """Runs query ``name`` read-only and returns its JSON answer."""
        if name == "__stack_trace":
            return converter.encode(self.stack_trace())
        defn = self.queries.get(name) or self.queries.get(None)
        if defn is None:
            known = " ".join(sorted(k for k in self.queries if k))
            raise KeyError(f"Query handler for '{name}' expected but not found, known queries: [{known}]")
        decoded = self._decode_handler_args(defn, name, args)
        with self._read_only_as(f"query `{name}`"):
            result = self._call_handler(defn, name, decoded)
        if inspect.iscoroutine(result):
            result.close()
            raise TypeError(f"query `{name}` is an async function: query handlers must be plain functions")
        return converter.encode(result)

    def _apply_update(self, u: UpdateReceived) -> None:
        defn = self.updates.get(u.name) or self.updates.get(None)
        if defn is None:
            known = " ".join(sorted(k for k in self.updates if k))
            self.host.reject_update(
                u.id,
                AppError(
                    f"Update handler for '{u.name}' expected but not found, and there is no dynamic handler. known updates: [{known}]",
                    "NotFound",
                    True,
                ),
            )
            return
        try:
            decoded = self._decode_handler_args(defn, u.name, u.args)
        except TypeError as err:
            self.host.reject_update(u.id, AppError(str(err), "InvalidArgument", True))
            return
        if u.run_validator and defn.validator is not None:
            try:
                with self._read_only_as(f"the validator of update `{u.name}`"):
                    call_args = [u.name, [RawValue(a) for a in decoded]] if defn.is_dynamic else decoded
                    if defn.is_method:
                        defn.validator(self.object, *call_args)
                    else:
                        defn.validator(*call_args)
            except ReadOnlyContextError as err:
                raise TaskFailure(self._describe(err)) from None
            except Exception as err:
                self.host.reject_update(u.id, _failures.to_app_error(err))
                return
            # Decoded again so that a validator mutating its arguments
            # cannot change what the handler sees (as the SDK does).
            decoded = self._decode_handler_args(defn, u.name, u.args)
        self.host.accept_update(u.id)
        self.updates_in_progress[u.id] = u.name

        async def run_update() -> None:
            try:
                result = self._call_handler(defn, u.name, decoded)
                if inspect.isawaitable(result):
                    result = await result
                try:
                    encoded = converter.encode(result)
                except (TypeError, ValueError) as err:
                    self._task_error = TypeError(f"the result of update `{u.name}` is not JSON-serializable: {err}")
                    return
                self.host.complete_update(u.id, encoded, None)
            except ContinueAsNewError:
                self._task_error = RuntimeError(f"update `{u.name}` called continue_as_new: only the run method may")
            except (Exception, asyncio.CancelledError) as err:
                if isinstance(err, asyncio.CancelledError):
                    err = CancelledError(f"Cancellation raised within update {err}".rstrip())
                if self.is_failure_exception(err):
                    self.host.complete_update(u.id, None, _failures.to_app_error(err))
                else:
                    self._task_error = err
            finally:
                self.updates_in_progress.pop(u.id, None)

        ctx = contextvars.copy_context()
        ctx.run(current_update.set, (u.id, u.name))
        self.create_task(run_update(), name=f"update: {u.name}", context=ctx)

    def stack_trace(self) -> str:
        """Where each task of the workflow waits (the ``__stack_trace`` query)."""
        stacks = []
        for task in list(self._tasks):
            # Down the chain of awaits (task.get_stack() stops at the
            # task's own coroutine).
            frames = []
            coro = task.get_coro()
            while coro is not None:
                frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
                if frame is None:
                    break
                frames.append(traceback.FrameSummary(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name, line=""))
                coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
            stacks.append(f"Stack for {task.get_name()} (most recent call last):\n" + "".join(traceback.format_list(frames)))
        return "\n\n".join(stacks)

    # ------------------------------------------------------------ read-only scopes

    class _ReadOnly:
        def __init__(self, rt: "WorkflowRuntime", what: str) -> None:
            self.rt, self.what, self.prev = rt, what, None

        def __enter__(self) -> None:
            self.prev = self.rt._read_only
            self.rt._read_only = self.what

        def __exit__(self, *exc: Any) -> None:
            self.rt._read_only = self.prev

    def _read_only_as(self, what: str) -> "_ReadOnly":
        return WorkflowRuntime._ReadOnly(self, what)

    def assert_writable(self, action: str) -> None:
        if self._read_only is not None:
            raise ReadOnlyContextError(f"{self._read_only} may not {action}: queries and update validators only read")

    # ------------------------------------------------------------ operations on host handles

    def await_operation(self, fut: asyncio.Future, request_cancel: Callable[[], None]):
        """Awaits ``fut`` (a host handle's result); cancelling the awaiting
        task asks the host to cancel the work instead, and the handle's
        outcome (per its cancellation type) is what the caller gets."""

        async def awaiting() -> Any:
            sent = False
            while True:
                try:
                    return await _shield_await(fut)
                except asyncio.CancelledError:
                    if fut.done():
                        raise
                    if not sent:
                        sent = True
                        request_cancel()
                    task = asyncio.current_task()
                    if task is not None and hasattr(task, "uncancel"):
                        task.uncancel()

        return awaiting()

    def watch(self, handle: int, resolve: Callable[[Any], None]) -> None:
        """Calls ``resolve(outcome)`` when ``handle`` resolves."""
        self._pending[handle] = resolve

    def cancel_handle(self, handle: int) -> None:
        """Asks the host to cancel ``handle`` (ignored once resolved)."""
        if handle in self._pending:
            self.host.cancel(handle)

    def decode_result(self, outcome: Completed, hint: Any, what: str) -> Any:
        return converter.decode(outcome.result, converter.optional_hint(hint), what=what)

    # ------------------------------------------------------------ workflow facts

    def patched(self, patch_id: str, deprecated: bool) -> bool:
        if deprecated:
            self.host.deprecate_patch(patch_id)
            return True
        if patch_id not in self._patches:
            self._patches[patch_id] = self.host.patched(patch_id)
        return self._patches[patch_id]

    def uuid4(self) -> uuid.UUID:
        return uuid.UUID(bytes=self.random.getrandbits(128).to_bytes(16, "big"), version=4)  # type: ignore[union-attr]

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), timezone.utc)

    def all_handlers_finished(self) -> bool:
        return not self.updates_in_progress and self._signals_in_progress == 0

    # ------------------------------------------------------------ asyncio.AbstractEventLoop

    def time(self) -> float:
        return self.host.now_ms() / 1000.0

    def call_soon(self, callback, *args, context=None):
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(self, callback, *args, context=None):
        return self.call_soon(callback, *args, context=context)

    def call_later(self, delay, callback, *args, context=None):
        return self.start_timer(delay, callback, args, context, timer_summary.get())

    def call_at(self, when, callback, *args, context=None):
        # asyncio.timeout / wait_for (3.12+) compute `when` from time();
        # rounded to milliseconds after the subtraction, as the SDK does.
        return self.call_later(round(when - self.time(), 3), callback, *args, context=context)

    def start_timer(self, delay: float, callback, args, context, summary: Optional[str]) -> _TimerHandle:
        """A durable timer for ``delay`` seconds (at least 1 ms); a zero or
        negative delay runs the callback at once without a timer."""
        self.assert_writable("start a timer")
        if delay is None or delay <= 0:
            handle = _TimerHandle(self.time(), callback, args, self, context, None)
            self._ready.append(handle)
            return handle
        ms = max(1, int(round(delay * 1000)))
        host_handle = self.host.start_timer(ms, summary)
        handle = _TimerHandle(self.time() + delay, callback, args, self, context, host_handle)

        def fired(outcome: Any) -> None:
            if isinstance(outcome, Completed) and not handle._cancelled:
                self._ready.append(handle)

        self.watch(host_handle, fired)
        return handle

    def _timer_handle_cancelled(self, handle) -> None:
        host_handle = getattr(handle, "host_handle", None)
        if host_handle is not None and self._pending.pop(host_handle, None) is not None:
            self.host.cancel(host_handle)

    def create_future(self) -> asyncio.Future:
        return asyncio.Future(loop=self)

    def create_task(self, coro, *, name=None, context=None, **_kwargs) -> asyncio.Task:
        self.assert_writable("start a task")
        task = asyncio.Task(coro, loop=self, name=name, context=context)
        self.register_task(task)
        return task

    def register_task(self, task: asyncio.Task) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if hasattr(task, "_log_destroy_pending"):
            task._log_destroy_pending = False

    def get_task_factory(self):
        return None

    def set_task_factory(self, factory) -> None:
        raise NotImplementedError("workflows cannot set a task factory")

    def get_exception_handler(self):
        return self._exception_handler

    def set_exception_handler(self, handler) -> None:
        self._exception_handler = handler

    def default_exception_handler(self, context: Dict[str, Any]) -> None:
        message = context.get("message") or "Unhandled exception in workflow event loop"
        exc = context.get("exception")
        if exc is not None:
            message += "\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
        self.host.log("error", f"workflow {self.defn.name}: {message}")

    def call_exception_handler(self, context: Dict[str, Any]) -> None:
        if self._exception_handler is None:
            self.default_exception_handler(context)
        else:
            try:
                self._exception_handler(self, context)
            except Exception as err:
                self.default_exception_handler({"message": "Unhandled error in exception handler", "exception": err})

    def get_debug(self) -> bool:
        return False

    def set_debug(self, enabled: bool) -> None:
        pass

    def is_running(self) -> bool:
        return True

    def is_closed(self) -> bool:
        return False

    def run_in_executor(self, executor, func, *args):
        raise NotImplementedError("workflows cannot run threads: call an activity instead")
