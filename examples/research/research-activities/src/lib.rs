//! Research activities: an LLM call that streams its answer and
//! heartbeats per chunk (so a stalled stream is noticed within the
//! heartbeat timeout and retried), and a knowledge-base search over the
//! Markdown files of a read-only granted directory.

wit_bindgen::generate!({
    world: "caisson-examples:research-activities/research-activities",
    path: ["../../../wit/activity", "wit"],
    with: {
        "caisson:activity/types@0.1.0": caisson_guest::activity::bindings::caisson::activity::types,
        "caisson:activity/context@0.1.0": caisson_guest::activity::bindings::caisson::activity::context,
    },
    generate_all,
});

use caisson_guest::activity as act;
use caisson_guest::http;
use std::collections::BTreeSet;

struct ResearchActivities;

impl Guest for ResearchActivities {
    fn llm_complete(prompt: String) -> Result<Completion, ApplicationError> {
        let url = std::env::var("LLM_URL").map_err(|_| act::fatal("Misconfigured", "LLM_URL is not set: grant it with `env`"))?;
        let attempt = act::info().attempt;
        let request = serde_json::json!({
            "model": "mock-1",
            "stream": true,
            "messages": [{ "role": "user", "content": prompt }],
        });
        let mut response = http::post_json(&url, &request).map_err(|e| {
            if e.0.contains("Denied") {
                act::fatal("OutboundDenied", e.to_string())
            } else {
                act::error("LlmUnavailable", e.to_string())
            }
        })?;
        match response.status {
            200..=299 => {}
            429 | 500..=599 => {
                act::warn(&format!("LLM answered HTTP {} on attempt {attempt}; Temporal retries", response.status));
                return Err(act::error("LlmUnavailable", format!("HTTP {}", response.status)));
            }
            status => return Err(act::fatal("LlmRejected", format!("HTTP {status}"))),
        }

        // Server-sent events: `data: {json}` blocks separated by blank lines.
        let (mut buffer, mut text, mut chunks, mut cancelled) = (String::new(), String::new(), 0u32, false);
        response
            .for_each_chunk(|bytes| {
                buffer.push_str(&String::from_utf8_lossy(bytes));
                while let Some(end) = buffer.find("\n\n") {
                    let event: String = buffer.drain(..end + 2).collect();
                    let Some(data) = event.trim().strip_prefix("data: ") else { continue };
                    if data == "[DONE]" {
                        continue;
                    }
                    if let Ok(chunk) = serde_json::from_str::<serde_json::Value>(data) {
                        text.push_str(chunk["choices"][0]["delta"]["content"].as_str().unwrap_or_default());
                        chunks += 1;
                        act::heartbeat(&serde_json::json!({ "chunks": chunks, "chars": text.len() }));
                    }
                }
                cancelled |= act::is_cancelled();
            })
            .map_err(|e| act::error("LlmUnavailable", format!("the stream broke: {e}")))?;
        if cancelled {
            return Err(act::error("Cancelled", "cancelled while streaming"));
        }
        act::log(&format!("LLM answered {} chars in {chunks} chunks (attempt {attempt})", text.len()));
        Ok(Completion { text, chunks, attempt })
    }

    fn search_knowledge_base(query: String, limit: u32) -> Result<Vec<Snippet>, ApplicationError> {
        let words: BTreeSet<String> =
            query.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 3).map(str::to_owned).collect();
        let entries = std::fs::read_dir("/kb").map_err(|e| act::fatal("NoKnowledgeBase", format!("/kb: {e} (grant it with `dirs`)")))?;
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".md") {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).map_err(|e| act::error("KnowledgeBaseUnreadable", format!("{name}: {e}")))?;
            let title = text.lines().next().unwrap_or_default().trim_start_matches('#').trim().to_owned();
            let score_of = |s: &str| {
                let lower = s.to_lowercase();
                words.iter().map(|w| lower.matches(w.as_str()).count() as u32).sum::<u32>()
            };
            let score = score_of(&text);
            if score == 0 {
                continue;
            }
            let excerpt = text.split("\n\n").skip(1).max_by_key(|p| score_of(p)).unwrap_or_default().replace('\n', " ");
            found.push(Snippet { source: format!("kb/{name}"), title, excerpt, score });
        }
        found.sort_by(|a, b| b.score.cmp(&a.score).then(a.source.cmp(&b.source)));
        found.truncate(limit as usize);
        act::log(&format!("`{query}`: {}", found.iter().map(|s| format!("{} ({})", s.source, s.score)).collect::<Vec<_>>().join(", ")));
        Ok(found)
    }
}

export!(ResearchActivities);
