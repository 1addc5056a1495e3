//! Long histories, made from a short real one: the bench of replay time
//! against history length (issue #18 item 6) needs histories of up to
//! 50,000 events, which take minutes to record and tens of MB to keep.
//!
//! `host/tests/fixtures/histories/long-history.json` is a real run of
//! test-workflows' `long-history(20)` (one `echo("x")` activity a round,
//! a `tick` signal taken between rounds). [`lengthen`] keeps its first
//! workflow task and its last event, and repeats its second round's
//! events (activity scheduled, started, completed; a tick signal; a
//! workflow task) as many times as asked, renumbering event ids, the
//! references between events and the activity ids as the server would
//! have written them. Every event is a copy of one the server wrote, so
//! the attributes are what a real history holds.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

/// Events in a lengthened history of `rounds` rounds: the first workflow
/// task (4), 7 per round, the completion.
pub fn events_for(rounds: usize) -> usize {
    4 + 7 * rounds + 1
}

/// The rounds that make a history of about `events` events.
pub fn rounds_for(events: usize) -> usize {
    (events.saturating_sub(5) / 7).max(1)
}

/// A history of `long-history(rounds)` made from the recorded one (see
/// the module's doc). Panics if `recorded` is not such a recording.
pub fn lengthen(recorded: &Value, rounds: usize) -> Value {
    let events = recorded["events"].as_array().expect("a history export: {\"events\": [...]}");
    let nth_of_type = |t: &str, n: usize| {
        events.iter().filter(|e| e["eventType"] == t).nth(n).unwrap_or_else(|| panic!("the recording has too few {t}")).clone()
    };
    let first = |t: &str| nth_of_type(t, 0);
    // The second round's events: the first round's follow the first
    // workflow task, whose completion is event 4.
    let template = |t: &str| nth_of_type(t, 1);
    let (scheduled, started, completed) = (
        template("EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"),
        template("EVENT_TYPE_ACTIVITY_TASK_STARTED"),
        template("EVENT_TYPE_ACTIVITY_TASK_COMPLETED"),
    );
    let (task_scheduled, task_started, task_completed) = (
        template("EVENT_TYPE_WORKFLOW_TASK_SCHEDULED"),
        template("EVENT_TYPE_WORKFLOW_TASK_STARTED"),
        template("EVENT_TYPE_WORKFLOW_TASK_COMPLETED"),
    );
    let signal = first("EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED");
    let mut end = events.last().expect("events").clone();
    assert_eq!(end["eventType"], "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED", "the recording ends with the workflow's completion");

    let rounds_payload =
        json!({ "payloads": [{ "metadata": { "encoding": BASE64.encode("json/plain") }, "data": BASE64.encode(rounds.to_string()) }] });
    let mut out: Vec<Value> = events[..4].to_vec();
    out[0]["workflowExecutionStartedEventAttributes"]["input"] = rounds_payload.clone();
    let mut last_task_completed = 4u64;
    let push = |out: &mut Vec<Value>, mut event: Value| -> u64 {
        let id = out.len() as u64 + 1;
        event["eventId"] = json!(id.to_string());
        out.push(event);
        id
    };
    let set = |event: &mut Value, attributes: &str, field: &str, value: String| event[attributes][field] = json!(value);
    for round in 0..rounds {
        let mut e = scheduled.clone();
        set(&mut e, "activityTaskScheduledEventAttributes", "activityId", (round + 1).to_string());
        set(&mut e, "activityTaskScheduledEventAttributes", "workflowTaskCompletedEventId", last_task_completed.to_string());
        let scheduled_id = push(&mut out, e);
        let mut e = started.clone();
        set(&mut e, "activityTaskStartedEventAttributes", "scheduledEventId", scheduled_id.to_string());
        let started_id = push(&mut out, e);
        let mut e = completed.clone();
        set(&mut e, "activityTaskCompletedEventAttributes", "scheduledEventId", scheduled_id.to_string());
        set(&mut e, "activityTaskCompletedEventAttributes", "startedEventId", started_id.to_string());
        push(&mut out, e);
        push(&mut out, signal.clone());
        let task_scheduled_id = push(&mut out, task_scheduled.clone());
        let mut e = task_started.clone();
        set(&mut e, "workflowTaskStartedEventAttributes", "scheduledEventId", task_scheduled_id.to_string());
        let task_started_id = push(&mut out, e);
        let mut e = task_completed.clone();
        set(&mut e, "workflowTaskCompletedEventAttributes", "scheduledEventId", task_scheduled_id.to_string());
        set(&mut e, "workflowTaskCompletedEventAttributes", "startedEventId", task_started_id.to_string());
        last_task_completed = push(&mut out, e);
    }
    end["workflowExecutionCompletedEventAttributes"]["result"] = rounds_payload;
    set(&mut end, "workflowExecutionCompletedEventAttributes", "workflowTaskCompletedEventId", last_task_completed.to_string());
    push(&mut out, end);
    json!({ "events": out })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded() -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/tests/fixtures/histories/long-history.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn a_lengthened_history_is_numbered_and_linked_as_the_server_numbers_them() {
        let history = lengthen(&recorded(), 3);
        let events = history["events"].as_array().unwrap();
        assert_eq!(events.len(), events_for(3));
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e["eventId"], json!((i + 1).to_string()));
        }
        let id_of = |e: &Value, attributes: &str, field: &str| e[attributes][field].as_str().unwrap().parse::<usize>().unwrap();
        let kind = |id: usize| events[id - 1]["eventType"].as_str().unwrap().to_owned();
        for e in events {
            match e["eventType"].as_str().unwrap() {
                "EVENT_TYPE_ACTIVITY_TASK_COMPLETED" => {
                    let a = "activityTaskCompletedEventAttributes";
                    assert_eq!(kind(id_of(e, a, "scheduledEventId")), "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED");
                    assert_eq!(kind(id_of(e, a, "startedEventId")), "EVENT_TYPE_ACTIVITY_TASK_STARTED");
                }
                "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED" => {
                    let a = "activityTaskScheduledEventAttributes";
                    assert_eq!(kind(id_of(e, a, "workflowTaskCompletedEventId")), "EVENT_TYPE_WORKFLOW_TASK_COMPLETED");
                }
                _ => {}
            }
        }
        let activity_ids: Vec<&str> =
            events.iter().filter_map(|e| e["activityTaskScheduledEventAttributes"]["activityId"].as_str()).collect();
        assert_eq!(activity_ids, ["1", "2", "3"]);
        assert_eq!(events[0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]["data"], BASE64.encode("3"));
    }

    #[test]
    fn rounds_for_and_events_for_agree() {
        assert_eq!(events_for(rounds_for(50_000)), 49_999);
        assert_eq!(rounds_for(3), 1);
    }
}
