//! Expense approval, a human-in-the-loop workflow: file the expense, ask
//! for approval, wait for an `approve` or `reject` signal (or reject on
//! timeout), pay if approved, tell the employee. A `status` query answers
//! at any time, also after the workflow has completed.

caisson_guest::workflow_bindings!("caisson-examples:expense-workflow/expense-workflow");

use caisson_guest::workflow::{self as wf, Duration};
use std::cell::RefCell;
use std::rc::Rc;

struct ExpenseWorkflow;

impl Guest for ExpenseWorkflow {
    fn process_expense(expense: Expense) -> Result<ExpenseStatus, ApplicationError> {
        let status = Rc::new(RefCell::new(ExpenseStatus {
            id: expense.id.clone(),
            state: "submitted".into(),
            approver: None,
            comment: None,
            payment_id: None,
        }));
        let view = status.clone();
        wf::on_query("status", move |_args| view.borrow().clone());

        let _ticket: String = wf::activity("create-expense").arg(&expense).call()?;
        let _: String = wf::activity("request-approval").arg(&expense).call()?;
        status.borrow_mut().state = "pending".into();

        // Wait for a decision: the first `approve` or `reject` signal, or
        // the deadline (a durable timer: the worker may restart meanwhile).
        let approve = wf::signal::<Decision>("approve");
        let reject = wf::signal::<Decision>("reject");
        let decided = wf::wait_condition(
            || {
                let (state, decision) = match (approve.try_recv(), reject.try_recv()) {
                    (Some(d), _) => ("approved", d),
                    (None, Some(d)) => ("rejected", d),
                    (None, None) => return false,
                };
                let mut s = status.borrow_mut();
                s.state = state.into();
                s.approver = Some(decision.approver);
                s.comment = decision.comment;
                true
            },
            Some(Duration::from_millis(expense.approval_timeout_ms)),
        );
        if !decided {
            wf::log(&format!("no decision on {} within {} ms", expense.id, expense.approval_timeout_ms));
            status.borrow_mut().state = "timed_out".into();
        }

        if status.borrow().state == "approved" {
            let payment_id: String = wf::activity("pay-expense").arg(&expense).call()?;
            let mut s = status.borrow_mut();
            s.state = "paid".into();
            s.payment_id = Some(payment_id);
        }
        let final_status = status.borrow().clone();
        let _: String = wf::activity("notify-employee").arg(&final_status).call()?;
        Ok(final_status)
    }
}

impl exports::caisson::workflow::queries::Guest for ExpenseWorkflow {
    fn handle(name: String, args: Vec<String>) -> Result<String, String> {
        wf::handle_query(&name, &args)
    }
}

export!(ExpenseWorkflow);
