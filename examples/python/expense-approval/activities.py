"""The expense approval activities: stand-ins for an expense system, a
notification service and a payment system.

Plain Temporal Python SDK code; on Caisson only the imports differ (see
README.md).
"""
from dataclasses import dataclass, field
from typing import List, Optional

from caisson import activity  # was: from temporalio import activity
from caisson.exceptions import ApplicationError  # was: from temporalio.exceptions import ApplicationError


@dataclass
class Expense:
    id: str
    employee: str
    amount_cents: int
    description: str
    #: How long approvers have to decide (default: a week).
    approval_timeout_ms: int = 7 * 24 * 3600 * 1000


@dataclass
class ExpenseStatus:
    id: str
    #: submitted, pending, approved, rejected, withdrawn, timed_out, paid
    state: str
    approver: Optional[str] = None
    comment: Optional[str] = None
    payment_id: Optional[str] = None
    notes: List[str] = field(default_factory=list)


def dollars(cents: int) -> str:
    return f"${cents // 100}.{cents % 100:02}"


@activity.defn
def create_expense(expense: Expense) -> str:
    if expense.amount_cents <= 0 or not expense.description.strip():
        raise ApplicationError(
            f"expense {expense.id} needs an amount and a description", type="InvalidExpense", non_retryable=True
        )
    activity.logger.info(
        "filed expense %s: %s for %s by %s", expense.id, dollars(expense.amount_cents), expense.description, expense.employee
    )
    return f"EXP-{expense.id}"


@activity.defn
def request_approval(expense: Expense) -> str:
    workflow_id = activity.info().workflow_id
    activity.logger.info(
        "approval needed for %s (%s): temporal workflow update execute --workflow-id %s --name decide "
        "--input '{\"approver\": \"you\", \"approved\": true}'",
        expense.id, dollars(expense.amount_cents), workflow_id,
    )
    return f"approvers asked about {expense.id}"


@activity.defn
def pay_expense(expense: Expense) -> str:
    activity.logger.info("paid %s to %s", dollars(expense.amount_cents), expense.employee)
    return f"PAY-{expense.id}-{expense.amount_cents}"


@activity.defn
def notify_employee(status: ExpenseStatus) -> str:
    by = f" by {status.approver}" if status.approver else ""
    message = f"expense {status.id} {status.state}{by}"
    activity.logger.info(message)
    return message
