"""The order saga: reserve inventory, charge the payment, ship the order;
when a step fails, undo the steps already done, newest first, and fail
with the step's error; when the workflow is cancelled, undo them too,
shielded from the cancellation, and end CANCELED.

Plain Temporal Python SDK code; on Caisson only the imports differ (see
README.md).
"""
import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Awaitable, Callable, List, Tuple

from caisson import workflow  # was: from temporalio import workflow
from caisson.common import RetryPolicy  # was: from temporalio.common import RetryPolicy
from caisson.exceptions import ActivityError, ApplicationError, is_cancelled_exception  # was: from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities import (
        Order,
        charge_payment,
        refund_payment,
        release_inventory,
        reserve_inventory,
        ship_order,
    )

#: Every step: 10 s per attempt, retried quickly, except for business
#: errors that no retry can fix.
STEP = dict(
    start_to_close_timeout=timedelta(seconds=10),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        backoff_coefficient=2.0,
        maximum_attempts=5,
        non_retryable_error_types=["OutOfStock", "CardDeclined", "ShippingUnavailable"],
    ),
)


@dataclass
class Receipt:
    order_id: str
    reservation_id: str
    payment_id: str
    tracking_number: str


@workflow.defn
class OrderSagaWorkflow:
    @workflow.run
    async def run(self, order: Order) -> Receipt:
        workflow.logger.info("order %s for %s: %d line(s)", order.id, order.customer, len(order.lines))
        # Each step that succeeded registers how to undo it.
        compensations: List[Tuple[str, Callable[[], Awaitable[str]]]] = []
        step = "reserve_inventory"
        try:
            reservation = await workflow.execute_activity(reserve_inventory, order, **STEP)
            compensations.append(("release_inventory", lambda: workflow.execute_activity(release_inventory, reservation, **STEP)))

            step = "charge_payment"
            payment = await workflow.execute_activity(charge_payment, order, **STEP)
            compensations.append(("refund_payment", lambda: workflow.execute_activity(refund_payment, payment, **STEP)))

            if order.pickup_after_ms:
                step = "wait_for_pickup"
                await workflow.sleep(timedelta(milliseconds=order.pickup_after_ms), summary="carrier pickup")

            step = "ship_order"
            shipment = await workflow.execute_activity(ship_order, order, **STEP)
            return Receipt(
                order_id=order.id,
                reservation_id=reservation.reservation_id,
                payment_id=payment.payment_id,
                tracking_number=shipment.tracking_number,
            )
        except (ActivityError, asyncio.CancelledError) as err:
            if is_cancelled_exception(err):
                # Cancelled by request: undo what was done, shielded (the
                # compensations themselves are not cancelled), then let the
                # cancellation end the run CANCELED.
                compensated = await asyncio.shield(self.compensate(compensations))
                workflow.logger.warning("order %s cancelled during %s; compensated: %s", order.id, step, compensated)
                raise
            compensated = await self.compensate(compensations)
            cause = err.cause if isinstance(err.cause, ApplicationError) else None
            message = f"{step} failed: {cause.message if cause else err}; compensated: [{', '.join(compensated)}]"
            workflow.logger.warning(message)
            raise ApplicationError(
                message,
                {"failed_step": step, "compensated": compensated},
                type=cause.type if cause else "StepFailed",
                non_retryable=True,
            ) from err

    async def compensate(self, compensations: List[Tuple[str, Callable[[], Awaitable[str]]]]) -> List[str]:
        """Runs the compensations newest first; a compensation that fails
        is logged and the others still run. The names of those run."""
        done = []
        for name, undo in reversed(compensations):
            try:
                await undo()
                done.append(name)
            except ActivityError as err:
                workflow.logger.error("compensation %s failed: %s", name, err.cause or err)
        return done
