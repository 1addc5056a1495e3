//! The order saga: reserve inventory, charge the payment, ship the order;
//! when a step fails, undo the steps already done, newest first.
//!
//! A port of the saga pattern from Temporal's samples: each step that
//! succeeds registers its compensation; on failure the compensations run
//! and the workflow fails with the step's error; on cancellation they run
//! shielded from it and the workflow ends CANCELED.

caisson_guest::workflow_bindings!("caisson-examples:order-workflow/order-workflow");

use caisson_guest::workflow::{self as wf, ActivityBuilder, Duration, RetryPolicy, Saga, StepError};

struct OrderWorkflow;

/// Every step: 10 s per attempt, retried quickly, except for business
/// errors that no retry can fix.
fn step(activity_type: &str) -> ActivityBuilder {
    wf::activity(activity_type).start_to_close(Duration::from_secs(10)).retry(
        RetryPolicy::default()
            .initial_interval(Duration::from_millis(200))
            .backoff_coefficient(2.0)
            .maximum_attempts(5)
            .non_retryable(&["OutOfStock", "CardDeclined", "ShippingUnavailable"]),
    )
}

impl Guest for OrderWorkflow {
    fn order_saga(order: Order) -> Result<Receipt, ApplicationError> {
        wf::log(&format!("order {} for {}: {} line(s)", order.id, order.customer, order.lines.len()));
        let mut saga = Saga::new();
        let outcome = (|| -> Result<Receipt, (&str, StepError)> {
            let reservation: Reservation = step("reserve-inventory").arg(&order).call().map_err(|e| ("reserve-inventory", e))?;
            saga.add(step("release-inventory").arg(&reservation));

            let payment: Payment = step("charge-payment").arg(&order).call().map_err(|e| ("charge-payment", e))?;
            saga.add(step("refund-payment").arg(&payment));

            if let Some(ms) = order.pickup_after_ms {
                wf::timer_with_summary(Duration::from_millis(ms), "carrier pickup").join_json().map_err(|e| ("wait-for-pickup", e))?;
            }

            let shipment: Shipment = step("ship-order").arg(&order).call().map_err(|e| ("ship-order", e))?;
            Ok(Receipt {
                order_id: order.id.clone(),
                reservation_id: reservation.reservation_id,
                payment_id: payment.payment_id,
                tracking_number: shipment.tracking_number,
            })
        })();

        outcome.map_err(|(failed_step, error)| {
            if error.is_cancelled() && wf::cancel_requested() {
                // Cancelled by request: undo what was done, in a shielded
                // scope (the compensations themselves are not cancelled),
                // then end the run CANCELED, as the SDKs' sagas do.
                let compensated: Vec<String> = wf::shielded(|| saga.compensate()).into_iter().map(|(name, _)| name).collect();
                wf::warn(&format!("order {} cancelled during {failed_step}; compensated: [{}]", order.id, compensated.join(", ")));
                wf::end_cancelled();
            }
            let compensated: Vec<String> = saga.compensate().into_iter().map(|(name, _)| name).collect();
            let mut error = error.into_application_error();
            error.message = format!("{failed_step} failed: {}; compensated: [{}]", error.message, compensated.join(", "));
            error.non_retryable = true;
            error.details = Some(serde_json::json!({ "failed_step": failed_step, "compensated": compensated }).to_string());
            wf::warn(&error.message);
            error
        })
    }
}

export!(OrderWorkflow);
