//! Workflows that exercise every feature of the workflow context. The
//! host's integration tests start them with the Temporal CLI and the
//! Python SDK.

wit_bindgen::generate!({
    world: "caisson-plugins:test-workflows/test-workflows",
    path: ["../../../wit/workflow", "wit"],
    with: {
        "caisson:workflow/types@0.2.0": caisson_guest::workflow::bindings::caisson::workflow::types,
        "caisson:workflow/context@0.2.0": caisson_guest::workflow::bindings::caisson::workflow::context,
    },
    generate_all,
});

use caisson_guest::workflow::aio::{self, Either};
use caisson_guest::workflow::{self as wf, Duration, RetryPolicy, StepError};
use std::cell::RefCell;
use std::rc::Rc;

struct TestWorkflows;

fn echo(value: &str) -> Result<String, StepError> {
    wf::activity("echo").arg(value).start_to_close(Duration::from_secs(10)).call()
}

impl Guest for TestWorkflows {
    fn run_activity(spec: ActivitySpec) -> Result<String, ApplicationError> {
        let mut call = wf::activity(&spec.activity_type);
        for arg in &spec.args {
            let value: serde_json::Value = serde_json::from_str(arg).map_err(|e| wf::fatal("BadSpec", e.to_string()))?;
            call = call.arg(&value);
        }
        if let Some(q) = &spec.task_queue {
            call = call.task_queue(q);
        }
        if let Some(ms) = spec.start_to_close_ms {
            call = call.start_to_close(Duration::from_millis(ms));
        }
        if let Some(ms) = spec.schedule_to_close_ms {
            call = call.schedule_to_close(Duration::from_millis(ms));
        }
        if let Some(ms) = spec.heartbeat_timeout_ms {
            call = call.heartbeat_timeout(Duration::from_millis(ms));
        }
        if let Some(r) = &spec.retry {
            let types: Vec<&str> = r.non_retryable.iter().map(String::as_str).collect();
            call = call.retry(
                RetryPolicy::default()
                    .initial_interval(Duration::from_millis(r.initial_interval_ms))
                    .backoff_coefficient(r.backoff_coefficient)
                    .maximum_interval(Duration::from_millis(r.maximum_interval_ms))
                    .maximum_attempts(r.maximum_attempts)
                    .non_retryable(&types),
            );
        }
        Ok(call.start().join_json()?)
    }

    fn sleep(ms: u64) -> String {
        match wf::sleep(Duration::from_millis(ms)) {
            Ok(()) => format!("slept {ms} ms"),
            Err(e) => format!("sleep failed: {e:?}"),
        }
    }

    fn expense_approval(request: Expense) -> Result<ExpenseStatus, ApplicationError> {
        let status = Rc::new(RefCell::new((ExpenseState::Pending, None::<String>)));
        let view = status.clone();
        let describe = move |_: &[String]| {
            let (state, by) = &*view.borrow();
            let state = match state {
                ExpenseState::Pending => "pending",
                ExpenseState::Approved => "approved",
                ExpenseState::Rejected => "rejected",
                ExpenseState::AutoRejected => "auto_rejected",
            };
            serde_json::json!({ "state": state, "decided_by": by })
        };
        wf::on_query("get-status", describe);
        wf::log(&format!("expense {} for {} awaiting approval", request.id, request.amount));
        let decided = wf::wait_condition(
            || {
                if let Some(by) = wf::take_signal_as::<String>("approve") {
                    *status.borrow_mut() = (ExpenseState::Approved, Some(by));
                } else if let Some(by) = wf::take_signal_as::<String>("reject") {
                    *status.borrow_mut() = (ExpenseState::Rejected, Some(by));
                }
                status.borrow().0 != ExpenseState::Pending
            },
            Some(Duration::from_millis(request.timeout_ms)),
        );
        if !decided {
            *status.borrow_mut() = (ExpenseState::AutoRejected, None);
        }
        let (state, decided_by) = status.borrow().clone();
        Ok(ExpenseStatus { state, decided_by })
    }

    fn parallel(n: u32) -> Vec<String> {
        let handles: Vec<_> = (0..n).map(|i| wf::activity("echo").arg(&format!("item-{i}")).start()).collect();
        wf::wait_all(&handles)
            .into_iter()
            .map(|r| r.map_or_else(|e| format!("failed: {e:?}"), |json| serde_json::from_str(&json).unwrap_or(json)))
            .collect()
    }

    fn race() -> String {
        let slow = wf::activity("sleep-ms").arg(&5000u64).start();
        let fast = wf::activity("sleep-ms").arg(&10u64).start();
        let (first, _) = wf::wait_any(&[slow, fast]);
        slow.cancel();
        if first == 1 { "fast".into() } else { "slow".into() }
    }

    fn two_queues(value: String, other_queue: String) -> Result<String, ApplicationError> {
        let text = |json: String| serde_json::from_str::<String>(&json).map_err(|e| wf::fatal("BadResult", e.to_string()));
        let upper = text(wf::activity("upper").arg(&value).start().join_json()?)?;
        let exclaimed = text(wf::activity("py-exclaim").arg(&upper).task_queue(&other_queue).start().join_json()?)?;
        let id = wf::info().workflow_id;
        let child = text(wf::child("child-upper").arg(&value).id(&format!("{id}-child")).start().join_json()?)?;
        Ok(format!("{upper}|{exclaimed}|{child}"))
    }

    fn parent(items: Vec<String>) -> Vec<String> {
        let id = wf::info().workflow_id;
        let children: Vec<_> =
            items.iter().enumerate().map(|(i, item)| wf::child("child-upper").arg(item).id(&format!("{id}-item-{i}")).start()).collect();
        wf::wait_all(&children)
            .into_iter()
            .map(|r| r.map_or_else(|e| format!("failed: {e:?}"), |json| serde_json::from_str(&json).unwrap_or(json)))
            .collect()
    }

    fn child_upper(item: String) -> String {
        let _ = wf::sleep(Duration::from_millis(1));
        item.to_uppercase()
    }

    fn count_to(state: Counter) -> u32 {
        let _ = wf::sleep(Duration::from_millis(1));
        if state.current < state.target {
            wf::continue_as_new(&serde_json::json!({ "current": state.current + 1, "target": state.target }));
        }
        state.current
    }

    fn wait_for_cancel() -> Result<String, ApplicationError> {
        wf::wait_condition(wf::cancel_requested, None);
        wf::log("cancellation reached the workflow");
        wf::end_cancelled()
    }

    fn fail_with(error_type: String, message: String) -> Result<String, ApplicationError> {
        Err(ApplicationError { message, error_type, non_retryable: true, details: Some(r#"{"hint":"details survive"}"#.into()) })
    }

    fn saga(order: Order) -> Result<Vec<String>, ApplicationError> {
        let mut done = Vec::new();
        let mut compensations: Vec<&str> = Vec::new();
        let steps = [("reserve-inventory", "release-inventory"), ("charge-payment", "refund-payment"), ("ship-order", "")];
        for (step, undo) in steps {
            let fail = order.fail_at.as_deref() == Some(step);
            let result: Result<String, StepError> =
                wf::activity("step").arg(step).arg(&fail).start_to_close(Duration::from_secs(10)).call();
            match result {
                Ok(r) => {
                    done.push(r);
                    if !undo.is_empty() {
                        compensations.push(undo);
                    }
                }
                Err(e) => {
                    for undo in compensations.iter().rev() {
                        let _: Result<String, _> = wf::activity("step").arg(undo).arg(&false).call();
                    }
                    let mut error = e.into_application_error();
                    error.message = format!("{step} failed ({}); compensated: {}", error.message, compensations.iter().rev().cloned().collect::<Vec<_>>().join(", "));
                    return Err(error);
                }
            }
        }
        Ok(done)
    }

    fn cancel_activity(cooperative: bool) -> String {
        let activity = wf::activity("wait-cancel")
            .arg(&cooperative)
            .start_to_close(Duration::from_secs(60))
            .heartbeat_timeout(Duration::from_secs(2))
            .cancellation(wf::CancellationType::WaitCancellationCompleted)
            .start();
        let _ = wf::sleep(Duration::from_secs(1));
        activity.cancel();
        match activity.join_json() {
            Ok(json) => format!("completed: {json}"),
            Err(StepError::Failed(wf::Failure::Cancelled(_))) => "cancelled".into(),
            Err(e) => format!("failed: {e:?}"),
        }
    }

    fn replay_mix(rounds: u32) -> u32 {
        let me = wf::info().workflow_id;
        let mut signals = 0;
        for i in 0..rounds {
            let echo = wf::activity("echo").arg(&format!("round-{i}")).start();
            let tick = wf::timer(Duration::from_millis(1));
            wf::wait_all(&[echo, tick]);
            if i % 10 == 0 {
                let sent = wf::context::signal_external_workflow(&me, "tick", &[i.to_string()]);
                let _ = wf::Handle(sent).join_json();
                wf::wait_condition(|| wf::take_signal("tick").is_some(), Some(Duration::from_secs(30)));
                signals += 1;
            }
            if i % 25 == 0 {
                let _: Result<String, _> = wf::child("child-upper").arg("x").id(&format!("{me}-child-{i}")).call();
            }
        }
        signals
    }

    fn long_history(rounds: u32) -> u32 {
        let mut ticks = 0u32;
        for _ in 0..rounds {
            let _ = echo("x");
            while wf::take_signal("tick").is_some() {
                ticks += 1;
            }
        }
        wf::log(&format!("{rounds} rounds, {ticks} tick signals"));
        rounds
    }

    fn update_approval(amount: f64) -> String {
        let state = Rc::new(RefCell::new((amount, None::<String>)));
        let s = state.clone();
        wf::on_update("approve", move |approver: String| -> Result<serde_json::Value, ApplicationError> {
            s.borrow_mut().1 = Some(approver.clone());
            Ok(serde_json::json!({ "state": "approved", "decided_by": approver, "amount": s.borrow().0 }))
        });
        let s = state.clone();
        wf::on_update_validated(
            "set-amount",
            |amount: &f64| {
                // A validator that traps (13 is unlucky): only this update
                // may fail, never the workflow task.
                assert!(*amount != 13.0, "unlucky amount");
                if *amount > 0.0 && *amount <= 10_000.0 {
                    Ok(())
                } else {
                    Err(wf::fatal("InvalidAmount", format!("amount {amount} is not between 0 and 10000")))
                }
            },
            move |amount: f64| -> Result<f64, ApplicationError> {
                s.borrow_mut().0 = amount;
                Ok(amount)
            },
        );
        wf::on_update("charge", |id: String| -> Result<String, ApplicationError> { Ok(echo(&format!("charged-{id}"))?) });
        let s = state.clone();
        wf::wait_condition(move || s.borrow().1.is_some(), None);
        let (amount, by) = state.borrow().clone();
        format!("approved by {} for {amount}", by.unwrap_or_default())
    }

    fn search_and_memo(status: String) -> String {
        wf::upsert_search_attributes(&[wf::keyword("OrderStatus", &status)]);
        wf::upsert_memo("note", &serde_json::json!({ "fragile": true }));
        wf::set_current_details(&format!("order **{status}**"));
        let id = wf::info().workflow_id;
        let child: Result<String, _> =
            wf::child("child-upper").arg("memo").id(&format!("{id}-child")).memo("parent", &id).summary("upper-cases a word").call();
        let note: Option<serde_json::Value> = wf::memo("note");
        let status = match wf::search_attribute("OrderStatus") {
            Some(wf::SearchAttributeValue::Keyword(k)) => k,
            other => format!("{other:?}"),
        };
        serde_json::json!({ "status": status, "note": note, "child": child.ok() }).to_string()
    }

    fn local_flaky(succeed_at: u32, start_to_close_ms: u64) -> Result<u32, ApplicationError> {
        Ok(wf::local_activity("fail-until")
            .arg(&succeed_at)
            .start_to_close(Duration::from_millis(start_to_close_ms))
            .retry(RetryPolicy::default().initial_interval(Duration::from_millis(50)).maximum_attempts(5))
            .call()?)
    }

    fn cancellable_wait() -> Result<String, ApplicationError> {
        let slept: String = wf::activity("wait-cancel")
            .arg(&true)
            .heartbeat_timeout(Duration::from_secs(10))
            .cancellation(wf::CancellationType::WaitCancellationCompleted)
            .call()?;
        Ok(format!("slept {slept}"))
    }

    fn cancellable_saga() -> Result<String, ApplicationError> {
        let reserved: String = wf::activity("step").arg("reserve").arg(&false).call()?;
        let waited: Result<String, _> = wf::activity("wait-cancel").arg(&true).heartbeat_timeout(Duration::from_secs(10)).call();
        match waited {
            Ok(_) => Ok(reserved),
            Err(e) if e.is_cancelled() => {
                let undone: Result<String, _> = wf::shielded(|| wf::activity("step").arg("release").arg(&false).call());
                wf::log(&format!("compensated after cancellation: {undone:?}"));
                wf::end_cancelled()
            }
            Err(e) => Err(e.into()),
        }
    }

    fn local_timeout(sleep_ms: u64, start_to_close_ms: u64) -> String {
        let slept = wf::local_activity("sleep-ms")
            .arg(&sleep_ms)
            .start_to_close(Duration::from_millis(start_to_close_ms))
            .retry(RetryPolicy::default().maximum_attempts(1))
            .call::<u64>();
        match slept {
            Ok(ms) => format!("completed after {ms} ms"),
            Err(e) if e.is_timeout() => format!("timed out: {}", e.timeout_kind().unwrap_or_default()),
            Err(e) => format!("failed: {e:?}"),
        }
    }

    fn bad_upsert(case: String) -> String {
        let attribute = match case.as_str() {
            "unknown" => wf::keyword("NoSuchAttribute", "x"),
            _ => wf::int("OrderStatus", 7),
        };
        wf::upsert_search_attributes(&[attribute]);
        let _ = wf::sleep(Duration::from_millis(1));
        "upserted".into()
    }

    fn prioritized() -> String {
        let id = wf::info().workflow_id;
        let echoed: Result<String, _> = wf::activity("echo").arg("p").priority(Some(2), Some("tenant-a")).call();
        let child: Result<String, _> =
            wf::child("child-upper").arg("p").id(&format!("{id}-child")).priority(Some(4), Some("tenant-b")).call();
        format!("{} {}", echoed.unwrap_or_else(|e| format!("{e:?}")), child.unwrap_or_else(|e| format!("{e:?}")))
    }

    fn traced(remote_queue: String) -> String {
        wf::wait_condition(|| wf::take_signal_as::<String>("go").is_some(), None);
        wf::log("traced: go received");
        let here = echo("here").unwrap_or_else(|e| format!("{e:?}"));
        let remote: String = wf::activity("shout")
            .arg("remote")
            .task_queue(&remote_queue)
            .start_to_close(Duration::from_secs(10))
            .call()
            .unwrap_or_else(|e| format!("{e:?}"));
        let local: String = wf::local_activity("echo").arg("local").start_to_close(Duration::from_secs(10)).call().unwrap_or_else(|e| format!("{e:?}"));
        let id = wf::info().workflow_id;
        let child: String = wf::child("child-upper").arg("child").id(&format!("{id}-child")).call().unwrap_or_else(|e| format!("{e:?}"));
        [here, remote, local, child].join(" ")
    }

    fn async_mix(rounds: u32) -> String {
        aio::run(async_mix(rounds))
    }

    fn async_cancel_saga() -> Result<String, ApplicationError> {
        aio::run(async_cancel_saga())
    }

    fn std_escapes() -> String {
        let file = match std::fs::read_to_string("/etc/hostname") {
            Ok(text) => format!("read {} bytes", text.len()),
            Err(e) => format!("error: {e}"),
        };
        let thread = match std::thread::Builder::new().spawn(|| 1) {
            Ok(_) => "spawned".to_owned(),
            Err(e) => format!("error: {e}"),
        };
        let socket = match std::net::TcpStream::connect("127.0.0.1:7233") {
            Ok(_) => "connected".to_owned(),
            Err(e) => format!("error: {e}"),
        };
        let env = match std::env::var("HOME") {
            Ok(home) => format!("HOME={home}"),
            Err(e) => format!("error: {e}"),
        };
        serde_json::json!({ "file": file, "thread": thread, "socket": socket, "env": env }).to_string()
    }

    fn chance(rounds: u32) -> Vec<String> {
        (0..rounds)
            .map(|i| {
                let (roll, now) = (wf::random_u64(), wf::now_ms());
                let _ = wf::sleep(Duration::from_millis(1 + roll % 5));
                echo(&format!("round {i}: roll {} at {now}", roll % 1000)).unwrap_or_else(|e| format!("{e:?}"))
            })
            .collect()
    }

    fn std_clock() -> u64 {
        wf::report_panics();
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }

    fn spin() -> u32 {
        let mut x: u32 = 0;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    fn panics() -> String {
        panic!("this workflow panics on purpose")
    }

    fn bad_return() -> char {
        // Lie about a char through its bits: the canonical ABI rejects it.
        let bits: u32 = std::hint::black_box(0xD800);
        unsafe { char::from_u32_unchecked(bits) }
    }

    #[cfg(not(feature = "v2"))]
    fn versioned() -> String {
        let first = echo("v1").unwrap_or_default();
        let _ = wf::sleep(Duration::from_secs(3));
        format!("{first} done")
    }

    #[cfg(feature = "v2")]
    fn versioned() -> String {
        let first = if wf::patched("v2") {
            wf::activity("upper").arg("v2").call::<String>().unwrap_or_default()
        } else {
            echo("v1").unwrap_or_default()
        };
        let _ = wf::sleep(Duration::from_secs(3));
        format!("{first} done")
    }

    #[cfg(not(feature = "v2"))]
    fn changed() -> String {
        let first = echo("v1").unwrap_or_default();
        let _ = wf::sleep(Duration::from_secs(3));
        first
    }

    fn swap() -> String {
        let build = if cfg!(feature = "v2") { "v2" } else { "v1" };
        let call = |activity: &str| wf::activity(activity).arg(build).start_to_close(Duration::from_secs(10)).call::<String>().unwrap_or_default();
        let first = if cfg!(feature = "v2") { call("upper") } else { call("echo") };
        wf::wait_condition(|| wf::take_signal("go").is_some(), None);
        let second = if cfg!(feature = "v2") { call("echo") } else { call("upper") };
        format!("{first} {second} on {build}")
    }

    fn upgradable() -> String {
        let build = if cfg!(feature = "v2") { "v2" } else { "v1" };
        let first = if cfg!(feature = "v2") && wf::patched("v2") {
            wf::activity("upper").arg("v2").start_to_close(Duration::from_secs(10)).call::<String>().unwrap_or_default()
        } else {
            echo("v1").unwrap_or_default()
        };
        wf::wait_condition(|| wf::take_signal("go").is_some(), None);
        format!("{first} then {build}")
    }

    #[cfg(feature = "v2")]
    fn changed() -> String {
        let first = wf::activity("upper").arg("v2").call::<String>().unwrap_or_default();
        let _ = wf::sleep(Duration::from_secs(3));
        first
    }
}

/// See `async-mix` in the world: two tasks side by side, an async update
/// handler, races whose losers are cancelled by being dropped, and a
/// condition another task makes true.
async fn async_mix(rounds: u32) -> String {
    let items: Rc<RefCell<Vec<String>>> = Rc::default();
    let round = Rc::new(RefCell::new(0u32));
    let added = items.clone();
    aio::on_update_validated(
        "add-item",
        |item: &String| if item.is_empty() { Err(wf::fatal("EmptyItem", "an item needs a name")) } else { Ok(()) },
        move |item: String| {
            let added = added.clone();
            async move {
                let upper: String = wf::activity("upper").arg(&item).execute().await?;
                added.borrow_mut().push(upper);
                Ok(added.borrow().len())
            }
        },
    );
    let at = round.clone();
    wf::on_query("round", move |_| *at.borrow());

    // The signal handler: a task of its own, beside the activity loop.
    let listener = aio::spawn(async {
        let mut notes = Vec::new();
        let channel = wf::signal::<String>("note");
        loop {
            match channel.next().await {
                Ok(note) if note == "stop" => return Ok(notes),
                Ok(note) => notes.push(note),
                Err(e) => return Err(e),
            }
        }
    });

    let mut echoed = Vec::new();
    for i in 0..rounds {
        match wf::activity("echo").arg(&format!("round-{i}")).execute::<String>().await {
            Ok(e) => echoed.push(e),
            Err(e) => echoed.push(format!("{e:?}")),
        }
        *round.borrow_mut() = i + 1;
    }

    // A timer beats an activity that only ends when cancelled: dropping
    // the losing step cancels the activity.
    let stuck = wf::activity("wait-cancel").arg(&true).heartbeat_timeout(Duration::from_secs(5)).execute::<String>();
    let first = match aio::select2(stuck, aio::sleep(Duration::from_millis(200))).await {
        Either::Left(_) => "activity",
        Either::Right(_) => "timer",
    };
    // An activity beats an hour-long timer, which is cancelled the same way.
    let hour = aio::sleep(Duration::from_secs(3600));
    let second = match aio::select2(hour, wf::activity("echo").arg("quick").execute::<String>()).await {
        Either::Left(_) => "timer",
        Either::Right(_) => "activity",
    };
    // Of two timers, the first to fire wins; the other is cancelled.
    let (index, _) = aio::first_of(vec![aio::sleep(Duration::from_secs(3600)), aio::sleep(Duration::from_millis(1))]).await;
    let third = ["hour", "moment"][index];
    // Two activities at once.
    let both = aio::join_all(vec![wf::activity("echo").arg("left").execute::<String>(), wf::activity("echo").arg("right").execute()]).await;
    echoed.extend(both.into_iter().map(|r| r.unwrap_or_else(|e| format!("{e:?}"))));
    // A child workflow and a local activity at once.
    let me = wf::info().workflow_id;
    let (child, local) = aio::join2(
        wf::child("child-upper").arg("kid").id(&format!("{me}-kid")).execute::<String>(),
        wf::local_activity("echo").arg("local").execute::<String>(),
    )
    .await;
    echoed.extend([child, local].into_iter().map(|r| r.unwrap_or_else(|e| format!("{e:?}"))));

    let waiting = items.clone();
    let _ = aio::condition(move || !waiting.borrow().is_empty()).await;
    let notes = listener.await.unwrap_or_else(|e| vec![format!("{e:?}")]);
    let items = items.borrow().clone();
    serde_json::json!({ "echoed": echoed, "races": [first, second, third], "items": items, "notes": notes }).to_string()
}

/// See `async-cancel-saga` in the world.
async fn async_cancel_saga() -> Result<String, ApplicationError> {
    let reserved: String = wf::activity("step").arg("reserve").arg(&false).execute().await?;
    let side = aio::spawn(async { wf::signal::<String>("never").next().await });
    let waited = wf::activity("wait-cancel")
        .arg(&true)
        .heartbeat_timeout(Duration::from_secs(10))
        .cancellation(wf::CancellationType::WaitCancellationCompleted)
        .execute::<String>()
        .await;
    match waited {
        Ok(_) => Ok(reserved),
        Err(e) if e.is_cancelled() => {
            let side_saw = match side.await {
                Err(e) if e.is_cancelled() => "side-task-cancelled",
                _ => "side-task-not-cancelled",
            };
            let undone: Result<String, _> =
                aio::shielded(wf::activity("step").arg(&format!("release ({side_saw})")).arg(&false).execute()).await;
            wf::log(&format!("compensated after cancellation: {undone:?}"));
            // Propagating the cancellation ends the run CANCELED.
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

impl exports::caisson::workflow::queries::Guest for TestWorkflows {
    fn handle(name: String, args: Vec<String>) -> Result<String, String> {
        wf::handle_query(&name, &args)
    }
}

export!(TestWorkflows);
