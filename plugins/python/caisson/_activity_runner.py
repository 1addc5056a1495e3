"""Runs one activity attempt: decodes its arguments, calls the function
(an ``async def`` one on `ActivityLoop`), encodes the result, and maps
exceptions to the attempt's application error.
"""
from __future__ import annotations

import asyncio
import asyncio.events
import collections
import heapq
import itertools
import time
import traceback
from datetime import datetime, timedelta, timezone
from typing import Any, Deque, List, Optional

from . import _failures, converter
from ._definition import activities
from ._host import AppError
from .activity import Info, _Context, _current
from .exceptions import ApplicationError, CancelledError


class ActivityFailed(Exception):
    """The attempt fails with ``error``."""

    def __init__(self, error: AppError) -> None:
        super().__init__(f"{error.error_type}: {error.message}")
        self.error = error


#: How often a waiting async activity checks for cancellation.
_CANCEL_POLL_S = 0.1


class ActivityLoop(asyncio.AbstractEventLoop):
    """A minimal real-time event loop for ``async def`` activities: ready
    callbacks, then the earliest timer (sleeping in short slices so that a
    cancellation request cancels the activity's task, raising
    ``asyncio.CancelledError`` at its ``await``, as in the SDK)."""

    def __init__(self, is_cancelled: Any, log: Any) -> None:
        self._ready: Deque[asyncio.Handle] = collections.deque()
        self._timers: List[Any] = []
        self._seq = itertools.count()
        self._is_cancelled = is_cancelled
        self._log = log

    def run_until_complete(self, coro: Any) -> Any:
        outer = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)
        try:
            task = self.create_task(coro)
            cancelled = False
            while not task.done():
                while self._ready:
                    h = self._ready.popleft()
                    if not h._cancelled:
                        h._run()
                if task.done():
                    break
                if not cancelled and self._is_cancelled():
                    cancelled = True
                    task.cancel()
                    continue
                while self._timers and self._timers[0][2]._cancelled:
                    heapq.heappop(self._timers)
                if self._timers and self._timers[0][0] <= self.time():
                    _, _, h = heapq.heappop(self._timers)
                    self._ready.append(h)
                    continue
                delay = _CANCEL_POLL_S if not self._timers else min(_CANCEL_POLL_S, self._timers[0][0] - self.time())
                time.sleep(max(0.0, delay))
            return task.result()
        finally:
            asyncio.events._set_running_loop(outer)

    def time(self) -> float:
        return time.monotonic()

    def call_soon(self, callback, *args, context=None):
        h = asyncio.Handle(callback, args, self, context)
        self._ready.append(h)
        return h

    call_soon_threadsafe = call_soon

    def call_later(self, delay, callback, *args, context=None):
        return self.call_at(self.time() + max(0.0, delay), callback, *args, context=context)

    def call_at(self, when, callback, *args, context=None):
        h = asyncio.TimerHandle(when, callback, args, self, context)
        heapq.heappush(self._timers, (when, next(self._seq), h))
        return h

    def _timer_handle_cancelled(self, handle) -> None:
        pass

    def create_future(self):
        return asyncio.Future(loop=self)

    def create_task(self, coro, *, name=None, context=None, **_kwargs):
        return asyncio.Task(coro, loop=self, name=name, context=context)

    def get_debug(self) -> bool:
        return False

    def is_running(self) -> bool:
        return True

    def is_closed(self) -> bool:
        return False

    def get_exception_handler(self):
        return None

    def call_exception_handler(self, context) -> None:
        exc = context.get("exception")
        text = context.get("message") or "Unhandled exception in activity event loop"
        if exc is not None:
            text += "\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
        self._log("error", text)

    def default_exception_handler(self, context) -> None:
        self.call_exception_handler(context)

    def run_in_executor(self, executor, func, *args):
        fut = self.create_future()
        try:
            fut.set_result(func(*args))
        except Exception as err:
            fut.set_exception(err)
        return fut


def _info(host: Any) -> Info:
    hi = host.info()
    now = datetime.now(timezone.utc)
    ms = lambda v: None if v is None else timedelta(milliseconds=v)  # noqa: E731
    return Info(
        activity_id=hi.activity_id,
        activity_type=hi.activity_type,
        attempt=hi.attempt,
        current_attempt_scheduled_time=now,
        heartbeat_details=_failures.details_from_json(host.last_heartbeat_details()),
        heartbeat_timeout=ms(hi.heartbeat_timeout_ms),
        is_local=False,
        namespace=hi.workflow_namespace,
        schedule_to_close_timeout=None,
        scheduled_time=now,
        start_to_close_timeout=ms(hi.start_to_close_timeout_ms),
        started_time=now,
        task_queue=hi.task_queue,
        task_token=b"",
        workflow_id=hi.workflow_id or None,
        workflow_namespace=hi.workflow_namespace or None,
        workflow_run_id=hi.workflow_run_id or None,
        workflow_type=hi.workflow_type or None,
    )


def run_activity(host: Any, activity_type: str, args: List[str]) -> str:
    """Runs ``activity_type`` with JSON ``args``: its JSON result, or
    `ActivityFailed`."""
    defn = activities.get(activity_type)
    if defn is None:
        known = ", ".join(sorted(k for k in activities if k)) or "none"
        raise ActivityFailed(AppError(f"no activity `{activity_type}` in this plugin (it serves: {known})", "NotFound", True))
    return run_definition(host, defn, activity_type, args)


def run_definition(host: Any, defn: Any, activity_type: str, args: List[str]) -> str:
    """Runs the activity of ``defn`` (see `run_activity`)."""
    params, _ = defn.hints()
    try:
        decoded = converter.decode_args(params, args, what=f"activity `{activity_type}`")
    except TypeError as err:
        raise ActivityFailed(AppError(str(err), "InvalidArgument", True)) from None
    info_cache: List[Info] = []

    def info() -> Info:
        if not info_cache:
            info_cache.append(_info(host))
        return info_cache[0]

    ctx = _Context(
        info=info,
        heartbeat=lambda *details: host.heartbeat(_failures.details_to_json(details)),
        is_cancelled=host.is_cancelled,
        host=host,
    )
    token = _current.set(ctx)
    try:
        if defn.is_async:
            result = ActivityLoop(host.is_cancelled, host.log).run_until_complete(defn.fn(*decoded))
        else:
            result = defn.fn(*decoded)
        try:
            return converter.encode(result)
        except (TypeError, ValueError) as err:
            raise ActivityFailed(
                AppError(f"activity `{activity_type}`: the result is not JSON-serializable: {err}", "InvalidResult", True)
            ) from None
    except ActivityFailed:
        raise
    except ApplicationError as err:
        raise ActivityFailed(_failures.to_app_error(err)) from None
    except (asyncio.CancelledError, CancelledError) as err:
        raise ActivityFailed(AppError(str(err) or "activity cancelled", "CancelledError", False)) from None
    except Exception as err:
        tb = "".join(traceback.format_exception(type(err), err, err.__traceback__)).rstrip()
        host.log("warn", f"activity {activity_type} failed: {type(err).__name__}: {err}\n{tb}")
        raise ActivityFailed(AppError(str(err) or type(err).__name__, type(err).__name__, False)) from None
    finally:
        _current.reset(token)
