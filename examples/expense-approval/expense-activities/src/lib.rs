//! The expense approval activities: stand-ins for an expense system, a
//! notification service and a payment system.

wit_bindgen::generate!({
    world: "caisson-examples:expense-activities/expense-activities",
    path: ["../../../wit/activity", "wit"],
    with: {
        "caisson:activity/types@0.1.0": caisson_guest::activity::bindings::caisson::activity::types,
        "caisson:activity/context@0.1.0": caisson_guest::activity::bindings::caisson::activity::context,
    },
    generate_all,
});

use caisson_guest::activity as act;

struct ExpenseActivities;

fn dollars(cents: u64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

impl Guest for ExpenseActivities {
    fn create_expense(expense: Expense) -> Result<String, ApplicationError> {
        if expense.amount_cents == 0 || expense.description.trim().is_empty() {
            return Err(act::fatal("InvalidExpense", format!("expense {} needs an amount and a description", expense.id)));
        }
        act::log(&format!("filed expense {}: {} for {} by {}", expense.id, dollars(expense.amount_cents), expense.description, expense.employee));
        Ok(format!("EXP-{}", expense.id))
    }

    fn request_approval(expense: Expense) -> String {
        let workflow_id = act::info().workflow_id;
        act::log(&format!(
            "approval needed for {} ({}): temporal workflow update execute --workflow-id {workflow_id} --name decide --input '{{\"approver\": \"you\", \"approved\": true}}'",
            expense.id,
            dollars(expense.amount_cents)
        ));
        format!("approvers asked about {}", expense.id)
    }

    fn pay_expense(expense: Expense) -> Result<String, ApplicationError> {
        act::log(&format!("paid {} to {}", dollars(expense.amount_cents), expense.employee));
        Ok(format!("PAY-{}-{}", expense.id, expense.amount_cents))
    }

    fn notify_employee(status: ExpenseStatus) -> String {
        let by = status.approver.as_deref().map(|a| format!(" by {a}")).unwrap_or_default();
        let message = format!("expense {} {}{by}", status.id, status.state);
        act::log(&message);
        message
    }
}

export!(ExpenseActivities);
