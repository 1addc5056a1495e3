//! The order saga's activities. Stand-ins for an inventory service, a
//! payment gateway and a carrier: each decides from the order itself
//! whether it succeeds, so every path of the saga can be tried from the
//! command line.

wit_bindgen::generate!({
    world: "caisson-examples:order-activities/order-activities",
    path: ["../../../wit/activity", "wit"],
    with: {
        "caisson:activity/types@0.1.0": caisson_guest::activity::bindings::caisson::activity::types,
        "caisson:activity/context@0.1.0": caisson_guest::activity::bindings::caisson::activity::context,
    },
    generate_all,
});

use caisson_guest::activity as act;

struct OrderActivities;

/// A short, stable code derived from `text` (FNV-1a).
fn code(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    format!("{:08X}", hash as u32)
}

impl Guest for OrderActivities {
    fn reserve_inventory(order: Order) -> Result<Reservation, ApplicationError> {
        if let Some(line) = order.lines.iter().find(|l| l.sku.starts_with("sold-out")) {
            return Err(act::fatal("OutOfStock", format!("{} is out of stock", line.sku)));
        }
        let items = order.lines.iter().map(|l| l.quantity).sum();
        act::log(&format!("reserved {items} item(s) for order {}", order.id));
        Ok(Reservation { reservation_id: format!("R-{}", code(&order.id)), order_id: order.id, items })
    }

    fn release_inventory(reservation: Reservation) -> Result<String, ApplicationError> {
        act::log(&format!("released reservation {} ({} items)", reservation.reservation_id, reservation.items));
        Ok(format!("released {}", reservation.reservation_id))
    }

    fn charge_payment(order: Order) -> Result<Payment, ApplicationError> {
        let attempt = act::info().attempt;
        if order.card == "4000-0000-0000-0002" {
            return Err(act::fatal("CardDeclined", format!("card declined for order {}", order.id)));
        }
        if order.card.ends_with("-flaky") && attempt == 1 {
            act::warn("the payment gateway timed out; Temporal will retry");
            return Err(act::error("GatewayTimeout", "the payment gateway did not answer in time"));
        }
        act::log(&format!("charged {} cents for order {} (attempt {attempt})", order.amount_cents, order.id));
        Ok(Payment { payment_id: format!("P-{}", code(&order.card)), order_id: order.id, amount_cents: order.amount_cents, attempt })
    }

    fn refund_payment(payment: Payment) -> Result<String, ApplicationError> {
        act::log(&format!("refunded {} cents ({})", payment.amount_cents, payment.payment_id));
        Ok(format!("refunded {}", payment.payment_id))
    }

    fn ship_order(order: Order) -> Result<Shipment, ApplicationError> {
        if order.address.trim().eq_ignore_ascii_case("nowhere") {
            return Err(act::fatal("ShippingUnavailable", format!("no carrier delivers to `{}`", order.address)));
        }
        act::log(&format!("shipping order {} to {}", order.id, order.address));
        Ok(Shipment { tracking_number: format!("TRK-{}", code(&format!("{}{}", order.id, order.address))), order_id: order.id })
    }
}

export!(OrderActivities);
