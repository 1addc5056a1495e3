"""Expense approval, a human-in-the-loop workflow: file the expense, ask
for approval, wait for a `decide` update (or give up at the deadline), pay
if approved, tell the employee.

* `decide` (update, validated): an approver's decision. An update rather
  than a signal because the approver needs an answer: the validator
  refuses a decision that cannot apply (a second one, a late one, a
  self-approval) before it is accepted, so the caller sees why and history
  keeps no trace of it; an accepted one returns the new status.
* `add_note` (signal): anyone adds a note to the expense.
* `withdraw` (signal): the employee takes the expense back while it waits.
* `status` (query): the expense's status, at any time.

Plain Temporal Python SDK code; on Caisson only the imports differ (see
README.md).
"""
import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Optional

from caisson import workflow  # was: from temporalio import workflow
from caisson.exceptions import ApplicationError  # was: from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import Expense, ExpenseStatus, create_expense, notify_employee, pay_expense, request_approval

ACTIVITY = dict(start_to_close_timeout=timedelta(seconds=10))


@dataclass
class Decision:
    approver: str
    approved: bool
    comment: Optional[str] = None


@workflow.defn
class ExpenseWorkflow:
    @workflow.init
    def __init__(self, expense: Expense) -> None:
        # Set before the run starts: a decision may come as soon as the
        # expense is filed.
        self._expense = expense
        self._status = ExpenseStatus(id=expense.id, state="submitted")

    @workflow.run
    async def run(self, expense: Expense) -> ExpenseStatus:
        await workflow.execute_activity(create_expense, expense, **ACTIVITY)
        await workflow.execute_activity(request_approval, expense, **ACTIVITY)
        if self._status.state == "submitted":
            self._status.state = "pending"

        # Wait for the first decision the validator lets through, a
        # withdrawal, or the deadline (a durable timer).
        try:
            await workflow.wait_condition(
                lambda: self._status.state != "pending", timeout=timedelta(milliseconds=expense.approval_timeout_ms)
            )
        except asyncio.TimeoutError:
            workflow.logger.info("no decision on %s within %d ms", expense.id, expense.approval_timeout_ms)
            self._status.state = "timed_out"

        if self._status.state == "approved":
            self._status.payment_id = await workflow.execute_activity(pay_expense, expense, **ACTIVITY)
            self._status.state = "paid"
        await workflow.execute_activity(notify_employee, self._status, **ACTIVITY)
        return self._status

    @workflow.update
    def decide(self, decision: Decision) -> ExpenseStatus:
        self._status.state = "approved" if decision.approved else "rejected"
        self._status.approver = decision.approver
        self._status.comment = decision.comment
        return self._status

    @decide.validator
    def validate_decision(self, decision: Decision) -> None:
        status = self._status
        if status.state not in ("submitted", "pending"):
            by = f" by {status.approver}" if status.approver else ""
            raise ApplicationError(
                f"expense {status.id} is not awaiting a decision: it is {status.state}{by}", type="NotPending"
            )
        if not decision.approver.strip():
            raise ApplicationError("a decision needs the approver's name", type="InvalidDecision")
        if decision.approver == self._expense.employee:
            raise ApplicationError(
                f"{decision.approver} filed expense {status.id} and cannot decide on it", type="SelfApproval"
            )

    @workflow.signal
    def add_note(self, note: str) -> None:
        self._status.notes.append(note)

    @workflow.signal
    def withdraw(self, reason: str) -> None:
        if self._status.state in ("submitted", "pending"):
            self._status.state = "withdrawn"
            self._status.comment = reason

    @workflow.query
    def status(self) -> ExpenseStatus:
        return self._status
