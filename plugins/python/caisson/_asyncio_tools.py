"""Deterministic ``wait`` and ``as_completed`` for workflows.

``asyncio.wait`` returns *sets*, whose iteration order follows object
hashes, not the order of the work: iterating them could issue commands in
a different order on replay. These return lists in the order given, like
the SDK's ``workflow.wait`` / ``workflow.as_completed`` (both adapted from
CPython's asyncio.tasks, with the set changed to a list).
"""
from __future__ import annotations

import asyncio
from typing import Any, Iterable, Iterator, List, Optional, Tuple


def _release_waiter(waiter: asyncio.Future, *_args: Any) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def wait(
    fs: Iterable, *, timeout: Optional[float] = None, return_when: str = asyncio.ALL_COMPLETED
) -> Tuple[List, List]:
    """``asyncio.wait`` returning ``(done, pending)`` as lists in input order."""
    if asyncio.isfuture(fs) or asyncio.iscoroutine(fs):
        raise TypeError(f"expect an iterable of tasks or futures, not {type(fs).__name__}")
    fs = list(fs)
    if not fs:
        raise ValueError("the sequence of tasks/futures must not be empty")
    if return_when not in (asyncio.FIRST_COMPLETED, asyncio.FIRST_EXCEPTION, asyncio.ALL_COMPLETED):
        raise ValueError(f"invalid return_when value: {return_when}")
    if any(asyncio.iscoroutine(f) for f in fs):
        raise TypeError("passing coroutines is forbidden: create tasks with asyncio.create_task")
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    timeout_handle = loop.call_later(timeout, _release_waiter, waiter) if timeout is not None else None
    counter = len(fs)

    def on_completion(f: asyncio.Future) -> None:
        nonlocal counter
        counter -= 1
        if (
            counter <= 0
            or return_when == asyncio.FIRST_COMPLETED
            or (return_when == asyncio.FIRST_EXCEPTION and not f.cancelled() and f.exception() is not None)
        ):
            if timeout_handle is not None:
                timeout_handle.cancel()
            if not waiter.done():
                waiter.set_result(None)

    for f in fs:
        f.add_done_callback(on_completion)
    try:
        await waiter
    finally:
        if timeout_handle is not None:
            timeout_handle.cancel()
        for f in fs:
            f.remove_done_callback(on_completion)
    done = [f for f in fs if f.done()]
    pending = [f for f in fs if not f.done()]
    return done, pending


def as_completed(fs: Iterable, *, timeout: Optional[float] = None) -> Iterator:
    """``asyncio.as_completed`` with its bookkeeping in a list."""
    if asyncio.isfuture(fs) or asyncio.iscoroutine(fs):
        raise TypeError(f"expect an iterable of futures, not {type(fs).__name__}")
    loop = asyncio.get_running_loop()
    done: asyncio.Queue = asyncio.Queue()
    todo: List[asyncio.Future] = [asyncio.ensure_future(f, loop=loop) for f in list(fs)]
    timeout_handle = None

    def on_timeout() -> None:
        for f in todo:
            f.remove_done_callback(on_completion)
            done.put_nowait(None)
        todo.clear()

    def on_completion(f: asyncio.Future) -> None:
        if not todo:
            return
        todo.remove(f)
        done.put_nowait(f)
        if not todo and timeout_handle is not None:
            timeout_handle.cancel()

    async def wait_for_one() -> Any:
        f = await done.get()
        if f is None:
            raise asyncio.TimeoutError
        return f.result()

    for f in todo:
        f.add_done_callback(on_completion)
    if todo and timeout is not None:
        timeout_handle = loop.call_later(timeout, on_timeout)
    for _ in range(len(todo)):
        yield wait_for_one()
