//! Expense approval, a human-in-the-loop workflow: file the expense, ask
//! for approval, wait for a `decide` update (or give up on timeout), pay
//! if approved, tell the employee. A `status` query answers at any time,
//! also after the workflow has completed.
//!
//! `decide` is an update rather than a signal because the approver needs
//! an answer: its validator refuses a decision that cannot apply (a
//! second one, a late one, a self-approval) before it is accepted, so the
//! caller sees why and history keeps no trace of it; an accepted one
//! returns the expense's new status.

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

        // The decision: a `decide` update, registered before anything
        // else, so a decision may come as soon as the expense is filed.
        let view = status.clone();
        let employee = expense.employee.clone();
        let decided_status = status.clone();
        wf::on_update_validated(
            "decide",
            move |decision: &Decision| {
                let s = view.borrow();
                if s.state != "submitted" && s.state != "pending" {
                    let by = s.approver.as_deref().map(|a| format!(" by {a}")).unwrap_or_default();
                    return Err(wf::fatal("NotPending", format!("expense {} is not awaiting a decision: it is {}{by}", s.id, s.state)));
                }
                if decision.approver.trim().is_empty() {
                    return Err(wf::fatal("InvalidDecision", "a decision needs the approver's name"));
                }
                if decision.approver == employee {
                    return Err(wf::fatal("SelfApproval", format!("{} filed expense {} and cannot decide on it", employee, s.id)));
                }
                Ok(())
            },
            move |decision: Decision| -> Result<ExpenseStatus, ApplicationError> {
                let mut s = decided_status.borrow_mut();
                s.state = if decision.approved { "approved" } else { "rejected" }.into();
                s.approver = Some(decision.approver);
                s.comment = decision.comment;
                Ok(s.clone())
            },
        );

        let _ticket: String = wf::activity("create-expense").arg(&expense).call()?;
        let _: String = wf::activity("request-approval").arg(&expense).call()?;
        if status.borrow().state == "submitted" {
            status.borrow_mut().state = "pending".into();
        }

        // Wait for the first decision the validator lets through, or the
        // deadline (a durable timer: the worker may restart meanwhile).
        let waiting = status.clone();
        let decided =
            wf::wait_condition(move || waiting.borrow().state != "pending", Some(Duration::from_millis(expense.approval_timeout_ms)));
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
