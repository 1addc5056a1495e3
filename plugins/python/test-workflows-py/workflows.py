"""Python workflows covering the API of ``caisson.workflow``, one type per
feature, for the integration tests (host/tests/python_workflows.rs) and
the plain-CPython tests (plugins/python/tests/test_workflows.py).

They call the Rust test activities (plugins/rust/test-activities:
``echo``, ``upper``, ``sleep-ms``, ``step``, ``fail-until``), the Rust
``greet`` activity, and ``py-flaky`` / ``py-fatal`` of a Python SDK
worker on another task queue.
"""
import asyncio
import datetime as dt
import json
import os
import random
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import List, Optional

from caisson import workflow
from caisson.common import RetryPolicy, SearchAttributeKey
from caisson.exceptions import ActivityError, ApplicationError, is_cancelled_exception
from sdk_samples.activities import attempts_until, beat, refuse

SHORT = timedelta(seconds=10)
FAST_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_interval=timedelta(milliseconds=200))
ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")


@workflow.defn(name="py-greeting")
class Greeting:
    """Calls the Rust `greet` activity."""

    @workflow.run
    async def run(self, name: str) -> str:
        workflow.logger.info("greeting %s", name)
        return await workflow.execute_activity("greet", name, start_to_close_timeout=SHORT, summary=f"greet {name}")


@workflow.defn(name="py-parallel")
class Parallel:
    """asyncio.gather, tasks with workflow.wait, and as_completed."""

    @workflow.run
    async def run(self, words: List[str]) -> dict:
        upper = await asyncio.gather(
            *(workflow.execute_activity("upper", w, start_to_close_timeout=SHORT) for w in words)
        )
        tasks = [asyncio.create_task(self.echo_twice(w)) for w in words]
        done, pending = await workflow.wait(tasks)
        first = None
        for next_done in workflow.as_completed(
            [workflow.start_activity("echo", w, start_to_close_timeout=SHORT) for w in words]
        ):
            first = await next_done
            break
        return {"upper": upper, "echoed": [t.result() for t in done], "pending": len(pending), "first": first}

    async def echo_twice(self, word: str) -> str:
        once = await workflow.execute_activity("echo", word, start_to_close_timeout=SHORT)
        return once + once


@workflow.defn(name="py-timers")
class Timers:
    """Durable timers, a condition that times out, and the replay-safe
    values: the values drawn first are sent to `echo` (recorded in
    history) and returned at the end, so a test can check that a replay
    from scratch drew the same ones."""

    def __init__(self) -> None:
        self.poked = False

    @workflow.run
    async def run(self, ms: int) -> dict:
        drawn = {
            "uuid": str(workflow.uuid4()),
            "random": workflow.random().randint(0, 1_000_000_000),
            "now": workflow.now().isoformat(),
        }
        await workflow.execute_activity("echo", str(drawn), start_to_close_timeout=SHORT)
        started = workflow.time()
        await asyncio.sleep(ms / 1000)
        await workflow.sleep(timedelta(milliseconds=ms), summary="second nap")
        timed_out = False
        try:
            await workflow.wait_condition(lambda: self.poked, timeout=timedelta(milliseconds=ms), timeout_summary="poke or not")
        except asyncio.TimeoutError:
            timed_out = True
        return {
            "drawn": drawn,
            "elapsed_ms": round((workflow.time() - started) * 1000),
            "timed_out": timed_out,
            "patched": workflow.patched("timers-v2"),
        }

    @workflow.signal
    def poke(self) -> None:
        self.poked = True


@dataclass
class Approval:
    amount: float
    approver: Optional[str] = None
    state: str = "pending"
    comments: List[str] = field(default_factory=list)


def _attempt(action) -> str:
    """What the guest sees when it tries `action`: its error, or none."""
    try:
        action()
        return "no error"
    except BaseException as e:  # noqa: BLE001 (the test wants any error, by name)
        return f"{type(e).__name__}: {e}"


@workflow.defn(name="py-stdlib")
class Stdlib:
    """What Python's standard library gives a workflow: time and randomness
    are replay-safe (workflow time, the run's seeded generator), threads,
    files and sockets fail inside the guest, the environment is empty.
    The values drawn go to `echo` (recorded in history) so that a replay
    that drew others would issue a different command."""

    @workflow.run
    async def run(self) -> dict:
        drawn = {
            "time": time.time(),
            "datetime": dt.datetime.now(dt.timezone.utc).isoformat(),
            "uuid": str(uuid.uuid4()),
            "urandom": os.urandom(8).hex(),
            "random": random.random(),
        }
        await workflow.execute_activity("echo", json.dumps(drawn), start_to_close_timeout=SHORT)
        drawn["workflow_now"] = workflow.now().timestamp()
        drawn["thread"] = _attempt(lambda: threading.Thread(target=lambda: None).start())
        drawn["file"] = _attempt(lambda: open("/etc/passwd").read())
        drawn["socket"] = _attempt(lambda: socket.create_connection(("127.0.0.1", 7233), timeout=1))
        drawn["env"] = dict(os.environ)
        return drawn


@workflow.defn(name="py-spin")
class Spin:
    """An infinite loop: fuel ends the activation, the task fails naming
    the plugin and the workflow, the worker goes on."""

    @workflow.run
    async def run(self) -> int:
        n = 0
        while True:
            n += 1


@workflow.defn(name="py-hog")
class Hog:
    """Eats memory a mebibyte at a time: the plugin's `memory_mb` stops it,
    the task fails naming the limit, the worker goes on."""

    @workflow.run
    async def run(self) -> int:
        eaten = []
        while True:
            eaten.append(bytearray(1 << 20))


@workflow.defn(name="py-approval")
class ApprovalWorkflow:
    """Signals, queries (also after completion) and an update with a
    validator whose handler runs an activity."""

    @workflow.init
    def __init__(self, amount: float) -> None:
        self.approval = Approval(amount)

    @workflow.run
    async def run(self, amount: float) -> Approval:
        await workflow.wait_condition(lambda: self.approval.approver is not None)
        self.approval.state = "approved"
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.approval

    @workflow.signal
    def comment(self, text: str) -> None:
        self.approval.comments.append(text)

    @workflow.signal
    async def approve(self, approver: str) -> None:
        self.approval.approver = approver

    @workflow.query
    def status(self) -> Approval:
        return self.approval

    @workflow.update(name="set-amount")
    async def set_amount(self, amount: float) -> float:
        checked = await workflow.execute_activity("echo", str(amount), start_to_close_timeout=SHORT)
        self.approval.amount = float(checked)
        return self.approval.amount

    @set_amount.validator
    def check_amount(self, amount: float) -> None:
        if amount <= 0:
            raise ApplicationError(f"amount {amount} must be positive", type="InvalidAmount")


@workflow.defn(name="py-child")
class Child:
    """Returns its argument doubled, its memo and its parent."""

    @workflow.run
    async def run(self, n: int) -> dict:
        parent = workflow.info().parent
        return {"n": n * 2, "memo": dict(workflow.memo()), "parent": parent.workflow_id if parent else None}


@workflow.defn(name="py-parent")
class Parent:
    """Children by run method (with ids and memo) and by name."""

    @workflow.run
    async def run(self, count: int) -> list:
        me = workflow.info().workflow_id
        results = list(
            await asyncio.gather(
                *(
                    workflow.execute_child_workflow(Child.run, i, id=f"{me}-child-{i}", memo={"index": i})
                    for i in range(count)
                )
            )
        )
        handle = await workflow.start_child_workflow("py-child", 100, memo={"by": "name"})
        results.append(await handle)
        return results


@workflow.defn(name="py-local")
class Local:
    """Local activities: one retried until its third attempt."""

    @workflow.run
    async def run(self, text: str) -> dict:
        attempt = await workflow.execute_local_activity(
            "fail-until", 3, start_to_close_timeout=SHORT, retry_policy=FAST_RETRY
        )
        echoed = await workflow.execute_local_activity("echo", text, start_to_close_timeout=SHORT)
        return {"attempt": attempt, "echoed": echoed}


@workflow.defn(name="py-cancellable")
class Cancellable:
    """Waits on a long activity; cancelled, it compensates in a shielded
    activity and lets the cancellation propagate (ending CANCELED)."""

    @workflow.run
    async def run(self, ms: int) -> str:
        try:
            await workflow.execute_activity("sleep-ms", ms, start_to_close_timeout=timedelta(minutes=5))
            return "finished"
        except ActivityError as err:
            if not is_cancelled_exception(err):
                raise
            workflow.logger.info("cancelled: compensating")
            await asyncio.shield(workflow.execute_activity("step", args=["compensate", False], start_to_close_timeout=SHORT))
            raise


@workflow.defn(name="py-cancellable-timer")
class CancellableTimer:
    """Cancelled while sleeping: asyncio.CancelledError at the sleep."""

    @workflow.run
    async def run(self, seconds: float) -> str:
        try:
            await asyncio.sleep(seconds)
            return "slept"
        except asyncio.CancelledError:
            await asyncio.shield(workflow.execute_activity("step", args=["after-timer", False], start_to_close_timeout=SHORT))
            raise


@workflow.defn(name="py-upserts")
class Upserts:
    """Search attributes and memo upserted, then continue-as-new twice."""

    @workflow.run
    async def run(self, round: int) -> dict:
        workflow.upsert_search_attributes([ORDER_STATUS.value_set(f"round-{round}")])
        workflow.upsert_memo({"round": round, "note": "upserted"})
        if round < 2:
            workflow.continue_as_new(round + 1)
        info = workflow.info()
        return {
            "round": round,
            "memo": dict(workflow.memo()),
            "status": info.typed_search_attributes.get(ORDER_STATUS),
            "continued": info.continued_run_id is not None,
        }


@workflow.defn(name="py-buggy")
class Buggy:
    """A signal handler with a bug: an unknown item raises KeyError,
    which fails the workflow task (retried), not the workflow."""

    def __init__(self) -> None:
        self.stock = {"apple": 1}
        self.taken: Optional[str] = None

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.taken is not None)
        return f"took {self.taken}"

    @workflow.signal
    def take(self, item: str) -> None:
        self.stock[item] -= 1
        self.taken = item


@workflow.defn(name="py-fails")
class Fails:
    """Fails the workflow: an ApplicationError, or an ActivityError let out."""

    @workflow.run
    async def run(self, how: str) -> str:
        if how == "application":
            raise ApplicationError("order is bad", {"order": 7}, type="BadOrder", non_retryable=True)
        await workflow.execute_activity("step", args=["doomed", True], start_to_close_timeout=SHORT)
        return "unreachable"


@workflow.defn(name="py-cross-queue")
class CrossQueue:
    """Activities served by a Python SDK worker on another task queue."""

    @workflow.run
    async def run(self, task_queue: str) -> dict:
        flaky = await workflow.execute_activity(
            "py-flaky", args=["k", 2], task_queue=task_queue, start_to_close_timeout=SHORT, retry_policy=FAST_RETRY
        )
        try:
            await workflow.execute_activity(
                "py-fatal",
                task_queue=task_queue,
                start_to_close_timeout=SHORT,
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100), non_retryable_error_types=["Fatal"]),
            )
            fatal = None
        except ActivityError as err:
            cause = err.cause
            fatal = {"type": cause.type, "message": cause.message} if isinstance(cause, ApplicationError) else repr(cause)
        return {"flaky": flaky, "fatal": fatal}


@workflow.defn(name="py-sdk-activities")
class SdkActivities:
    """Calls the SDK-shaped Python activities of test-activities-py."""

    @workflow.run
    async def run(self, n: int) -> dict:
        beats = await workflow.execute_activity(beat, n, start_to_close_timeout=SHORT, heartbeat_timeout=timedelta(seconds=5))
        attempt = await workflow.execute_activity(attempts_until, 3, start_to_close_timeout=SHORT, retry_policy=FAST_RETRY)
        try:
            await workflow.execute_activity(refuse, "no", start_to_close_timeout=SHORT, retry_policy=FAST_RETRY)
            refused = None
        except ActivityError as err:
            refused = {"type": err.cause.type, "non_retryable": err.cause.non_retryable}
        return {"beats": beats, "attempt": attempt, "refused": refused}
