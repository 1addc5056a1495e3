//! The monitoring activities: fetch a task from the search service, run
//! its query, compare the hits with the previous run's (kept in the
//! granted directory /state), post a notification, save the hits.
//!
//! The service's address comes from the `SEARCH_SERVICE` variable the
//! manifest sets; the manifest's `allow_outbound` lets requests reach that
//! origin only.

wit_bindgen::generate!({
    world: "caisson-examples:monitor-activities/monitor-activities",
    path: ["../../../wit/activity", "wit"],
    with: {
        "caisson:activity/types@0.1.0": caisson_guest::activity::bindings::caisson::activity::types,
        "caisson:activity/context@0.1.0": caisson_guest::activity::bindings::caisson::activity::context,
    },
    additional_derives: [serde::Serialize, serde::Deserialize],
    generate_all,
});

use caisson_guest::activity as act;
use caisson_guest::http::{self, HttpError, Response};
use std::collections::BTreeSet;

struct MonitorActivities;

fn service() -> Result<String, ApplicationError> {
    std::env::var("SEARCH_SERVICE")
        .map(|s| s.trim_end_matches('/').to_owned())
        .map_err(|_| act::fatal("Misconfigured", "SEARCH_SERVICE is not set: grant it with `env` in the plugin's manifest"))
}

/// A transport failure: retryable, unless the host refused the request
/// (not in `allow_outbound`), which no retry can fix.
fn unreachable(e: HttpError) -> ApplicationError {
    if e.0.contains("Denied") {
        act::fatal("OutboundDenied", format!("{e}: the plugin's allow_outbound does not grant this origin"))
    } else {
        act::error("ServiceUnavailable", e.to_string())
    }
}

fn check(response: Response, what: &str) -> Result<Response, ApplicationError> {
    match response.status {
        200..=299 => Ok(response),
        404 => Err(act::fatal("NotFound", format!("{what}: not found"))),
        status => Err(act::error("ServiceUnavailable", format!("{what}: HTTP {status}"))),
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn state_path(task_id: &str) -> Result<String, ApplicationError> {
    if task_id.is_empty() || !task_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(act::fatal("InvalidTask", format!("task id `{task_id}`: use letters, digits, - and _")));
    }
    Ok(format!("/state/{task_id}.json"))
}

impl Guest for MonitorActivities {
    fn fetch_task(task_id: String) -> Result<Task, ApplicationError> {
        let url = format!("{}/tasks/{}", service()?, percent_encode(&task_id));
        let response = http::get(&url).map_err(unreachable)?;
        if response.status == 404 {
            return Err(act::fatal("UnknownTask", format!("the search service has no task `{task_id}`")));
        }
        check(response, &url)?.json().map_err(|e| act::fatal("BadResponse", e.to_string()))
    }

    fn search(query: String) -> Result<Vec<Hit>, ApplicationError> {
        let url = format!("{}/search?q={}", service()?, percent_encode(&query));
        let hits: Vec<Hit> = check(http::get(&url).map_err(unreachable)?, &url)?.json().map_err(|e| act::fatal("BadResponse", e.to_string()))?;
        act::log(&format!("`{query}`: {} hit(s)", hits.len()));
        Ok(hits)
    }

    fn compare_with_previous(task_id: String, hits: Vec<Hit>) -> Result<Change, ApplicationError> {
        let path = state_path(&task_id)?;
        let previous: Option<Vec<Hit>> = match std::fs::read(&path) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| act::fatal("CorruptState", format!("{path}: {e}")))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(act::error("StateUnavailable", format!("{path}: {e}"))),
        };
        let old: BTreeSet<&str> = previous.iter().flatten().map(|h| h.id.as_str()).collect();
        let new: BTreeSet<&str> = hits.iter().map(|h| h.id.as_str()).collect();
        let added: Vec<Hit> =
            if previous.is_some() { hits.iter().filter(|h| !old.contains(h.id.as_str())).cloned().collect() } else { vec![] };
        let removed: Vec<String> = old.difference(&new).map(|s| s.to_string()).collect();
        act::log(&format!("{task_id}: {} hit(s), {} new, {} gone", hits.len(), added.len(), removed.len()));
        Ok(Change { task_id, first_run: previous.is_none(), added, removed, total: hits.len() as u32 })
    }

    fn save_results(task_id: String, hits: Vec<Hit>) -> Result<String, ApplicationError> {
        let path = state_path(&task_id)?;
        // Write, then rename: a crash never leaves half a state file.
        let tmp = format!("{path}.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&hits).unwrap()).map_err(|e| act::error("StateUnavailable", format!("{tmp}: {e}")))?;
        std::fs::rename(&tmp, &path).map_err(|e| act::error("StateUnavailable", format!("{path}: {e}")))?;
        Ok(format!("saved {} hit(s) to {path}", hits.len()))
    }

    fn notify(change: Change) -> Result<String, ApplicationError> {
        let url = format!("{}/notify", service()?);
        let answer: serde_json::Value =
            check(http::post_json(&url, &change).map_err(unreachable)?, &url)?.json().map_err(|e| act::fatal("BadResponse", e.to_string()))?;
        act::log(&format!("notified about {}: {} new, {} gone", change.task_id, change.added.len(), change.removed.len()));
        Ok(format!("notification {}", answer["received"]))
    }
}

export!(MonitorActivities);
