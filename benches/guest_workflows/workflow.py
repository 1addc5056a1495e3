"""The Python workflows of benches/guest_replay.py, written for Caisson;
on the Temporal Python SDK only the import line differs (it ends in
`# was: ORIGINAL`, which examples/python/sdk_worker.py puts back).

* `replay-bench(rounds)`: per round an `echo` activity and a 1 ms timer;
  after the middle round it waits (with a one-hour deadline, a durable
  timer) for an `approve` signal. 10 rounds make about 120 events.
* `wait-bench()`: waits for `approve` (one-hour deadline), for the
  memory and instance-start figures: it stays in the worker's cache.

Both answer the query `get-status` with `{"state": ...}`.
"""
import asyncio
from datetime import timedelta
from typing import Optional

from caisson import workflow  # was: from temporalio import workflow

ACTIVITY = dict(start_to_close_timeout=timedelta(seconds=30))
DEADLINE = timedelta(hours=1)


@workflow.defn(name="replay-bench")
class ReplayBench:
    @workflow.init
    def __init__(self, rounds: int) -> None:
        self._state = "running"
        self._approver: Optional[str] = None

    @workflow.run
    async def run(self, rounds: int) -> dict:
        echoed = 0
        for i in range(rounds):
            await workflow.execute_activity("echo", f"round-{i}", **ACTIVITY)
            echoed += 1
            await asyncio.sleep(0.001)
            if i == rounds // 2:
                self._state = "waiting"
                await workflow.wait_condition(lambda: self._approver is not None, timeout=DEADLINE)
                self._state = "running"
        self._state = "done"
        return {"echoed": echoed, "approver": self._approver}

    @workflow.signal
    def approve(self, who: str) -> None:
        self._approver = who

    @workflow.query(name="get-status")
    def status(self) -> dict:
        return {"state": self._state}


@workflow.defn(name="wait-bench")
class WaitBench:
    @workflow.init
    def __init__(self) -> None:
        self._approver: Optional[str] = None

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self._approver is not None, timeout=DEADLINE)
        return self._approver or ""

    @workflow.signal
    def approve(self, who: str) -> None:
        self._approver = who

    @workflow.query(name="get-status")
    def status(self) -> dict:
        return {"state": "pending" if self._approver is None else "approved"}
