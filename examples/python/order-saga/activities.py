"""The order saga's activities: stand-ins for an inventory service, a
payment gateway and a carrier. Each decides from the order itself whether
it succeeds, so every path of the saga can be tried from the command line
(see README.md).

Plain Temporal Python SDK code; on Caisson only the imports differ.
"""
from dataclasses import dataclass
from typing import List, Optional

from caisson import activity  # was: from temporalio import activity
from caisson.exceptions import ApplicationError  # was: from temporalio.exceptions import ApplicationError


@dataclass
class Line:
    sku: str
    quantity: int


@dataclass
class Order:
    id: str
    customer: str
    lines: List[Line]
    amount_cents: int
    card: str
    address: str
    #: Wait this long for the carrier's pickup after the payment.
    pickup_after_ms: Optional[int] = None


@dataclass
class Reservation:
    reservation_id: str
    order_id: str
    items: int


@dataclass
class Payment:
    payment_id: str
    order_id: str
    amount_cents: int
    attempt: int


@dataclass
class Shipment:
    tracking_number: str
    order_id: str


def code(text: str) -> str:
    """A short, stable code derived from `text` (FNV-1a)."""
    h = 0xCBF29CE484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h & 0xFFFFFFFF:08X}"


@activity.defn
def reserve_inventory(order: Order) -> Reservation:
    for line in order.lines:
        if line.sku.startswith("sold-out"):
            raise ApplicationError(f"{line.sku} is out of stock", type="OutOfStock", non_retryable=True)
    items = sum(line.quantity for line in order.lines)
    activity.logger.info("reserved %d item(s) for order %s", items, order.id)
    return Reservation(reservation_id=f"R-{code(order.id)}", order_id=order.id, items=items)


@activity.defn
def release_inventory(reservation: Reservation) -> str:
    activity.logger.info("released reservation %s (%d items)", reservation.reservation_id, reservation.items)
    return f"released {reservation.reservation_id}"


@activity.defn
def charge_payment(order: Order) -> Payment:
    attempt = activity.info().attempt
    if order.card == "4000-0000-0000-0002":
        raise ApplicationError(f"card declined for order {order.id}", type="CardDeclined", non_retryable=True)
    if order.card.endswith("-flaky") and attempt == 1:
        activity.logger.warning("the payment gateway timed out; Temporal will retry")
        raise ApplicationError("the payment gateway did not answer in time", type="GatewayTimeout")
    activity.logger.info("charged %d cents for order %s (attempt %d)", order.amount_cents, order.id, attempt)
    return Payment(payment_id=f"P-{code(order.card)}", order_id=order.id, amount_cents=order.amount_cents, attempt=attempt)


@activity.defn
def refund_payment(payment: Payment) -> str:
    activity.logger.info("refunded %d cents (%s)", payment.amount_cents, payment.payment_id)
    return f"refunded {payment.payment_id}"


@activity.defn
def ship_order(order: Order) -> Shipment:
    if order.address.strip().lower() == "nowhere":
        raise ApplicationError(f"no carrier delivers to `{order.address}`", type="ShippingUnavailable", non_retryable=True)
    activity.logger.info("shipping order %s to %s", order.id, order.address)
    return Shipment(tracking_number=f"TRK-{code(order.id + order.address)}", order_id=order.id)
