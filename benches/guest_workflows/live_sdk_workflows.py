"""The Python SDK side of benches/e2e_worker.py: the test-workflows types it
measures on Caisson (plugins/rust/test-workflows), written for the Python
SDK, and test-activities' `echo`. Run by `e2e_worker.py --serve-python-sdk`
with the default (sandboxed) workflow runner, which re-imports this module
in its sandbox."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="echo")
async def echo(value: str) -> str:
    """Returns its argument (test-activities' `echo`)."""
    return value


@workflow.defn(name="parallel")
class Parallel:
    """`n` `echo("item-{i}")` activities at once (start-to-close 60 s, the
    Caisson guest builder's default), all awaited."""

    @workflow.run
    async def run(self, n: int) -> list[str]:
        calls = [workflow.execute_activity("echo", f"item-{i}", start_to_close_timeout=timedelta(seconds=60)) for i in range(n)]
        return list(await asyncio.gather(*calls))


@workflow.defn(name="expense-approval")
class ExpenseApproval:
    """Waits for `approve` / `reject` (at most `timeout_ms`); answers
    `get-status` with {"state", "decided_by"} as the guest does."""

    def __init__(self) -> None:
        self.state = "pending"
        self.decided_by: str | None = None

    @workflow.run
    async def run(self, request: dict) -> dict:
        try:
            await workflow.wait_condition(lambda: self.state != "pending", timeout=request.get("timeout_ms", 3_600_000) / 1000)
        except asyncio.TimeoutError:
            self.state = "auto_rejected"
        return self.status()

    @workflow.signal(name="approve")
    def approve(self, by: str) -> None:
        if self.state == "pending":
            self.state, self.decided_by = "approved", by

    @workflow.signal(name="reject")
    def reject(self, by: str) -> None:
        if self.state == "pending":
            self.state, self.decided_by = "rejected", by

    @workflow.query(name="get-status")
    def status(self) -> dict:
        return {"state": self.state, "decided_by": self.decided_by}
