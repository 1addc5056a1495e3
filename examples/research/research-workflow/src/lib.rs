//! AI research orchestration: an LLM plans research questions, a
//! knowledge-base search runs for each in parallel, the LLM drafts an
//! answer from the snippets, a human reviews it (signals), the LLM revises
//! on request and finally synthesizes the report.
//!
//! The LLM is an unreliable, slow dependency: its activity is retried with
//! backoff and heartbeats while the answer streams in, so a stalled stream
//! fails within a second instead of at the start-to-close timeout. The
//! workflow itself only orchestrates: every LLM answer is recorded in
//! history, and a worker restart resumes without calling the LLM again.

caisson_guest::workflow_bindings!("caisson-examples:research-workflow/research-workflow");

use caisson_guest::workflow::{self as wf, Duration, RetryPolicy, StepError};
use std::cell::RefCell;
use std::rc::Rc;

struct ResearchWorkflow;

const MAX_REVISIONS: u32 = 3;

/// One LLM call: 30 s per attempt, a heartbeat at least every second,
/// retried with backoff while the API is overloaded.
fn llm(prompt: String) -> Result<Completion, StepError> {
    wf::activity("llm-complete")
        .arg(&prompt)
        .start_to_close(Duration::from_secs(30))
        .heartbeat_timeout(Duration::from_secs(1))
        .retry(
            RetryPolicy::default()
                .initial_interval(Duration::from_millis(200))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(5))
                .maximum_attempts(6)
                .non_retryable(&["LlmRejected", "OutboundDenied", "Misconfigured"]),
        )
        .call()
}

impl Guest for ResearchWorkflow {
    fn research(request: ResearchRequest) -> Result<ResearchReport, ApplicationError> {
        let topic = request.topic.clone();
        let status = Rc::new(RefCell::new(ResearchStatus {
            stage: "planning".into(),
            topic: topic.clone(),
            questions: vec![],
            sources: vec![],
            draft: None,
            revisions: 0,
        }));
        let view = status.clone();
        wf::on_query("status", move |_| view.borrow().clone());
        let stage = |s: &str| status.borrow_mut().stage = s.to_owned();
        let mut llm_attempts = 0;

        // 1. Plan: the LLM proposes the research questions.
        let plan = llm(format!("PLAN\nTOPIC: {topic}\nList three research questions, one per line."))?;
        llm_attempts += plan.attempt;
        let questions: Vec<String> = plan
            .text
            .lines()
            .map(|l| l.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ' ').trim().to_owned())
            .filter(|q| !q.is_empty())
            .collect();
        status.borrow_mut().questions = questions.clone();

        // 2. Research: one knowledge-base search per question, in parallel.
        stage("researching");
        let searches: Vec<wf::Handle> =
            questions.iter().map(|q| wf::activity("search-knowledge-base").args((q, 2u32)).start()).collect();
        let mut snippets: Vec<Snippet> = Vec::new();
        for found in wf::wait_all(&searches) {
            let found: Vec<Snippet> = serde_json::from_str(&found?).map_err(|e| wf::fatal("BadSearchResult", e.to_string()))?;
            for s in found {
                if !snippets.iter().any(|k| k.source == s.source) {
                    snippets.push(s);
                }
            }
        }
        let sources: Vec<String> = snippets.iter().map(|s| s.source.clone()).collect();
        status.borrow_mut().sources = sources.clone();
        let context: String = snippets.iter().map(|s| format!("[{}] {}\n", s.source, s.excerpt)).collect();

        // 3. Draft.
        stage("drafting");
        let draft = llm(format!("DRAFT\nTOPIC: {topic}\nQuestions:\n{}\nContext:\n{context}", questions.join("\n")))?;
        llm_attempts += draft.attempt;
        status.borrow_mut().draft = Some(draft.text);

        // 4. Human review: approve, or request changes (then revise).
        let approve = wf::signal::<Review>("approve");
        let request_changes = wf::signal::<Review>("request-changes");
        let approved_by = loop {
            stage("awaiting-review");
            let mut review: Option<(bool, Review)> = None;
            let timely = wf::wait_condition(
                || {
                    review = approve.try_recv().map(|r| (true, r)).or_else(|| request_changes.try_recv().map(|r| (false, r)));
                    review.is_some()
                },
                Some(Duration::from_millis(request.review_timeout_ms)),
            );
            let Some((approved, review)) = review.filter(|_| timely) else {
                return Err(wf::fatal("ReviewTimeout", format!("no review within {} ms", request.review_timeout_ms)));
            };
            if approved {
                break review.reviewer;
            }
            if status.borrow().revisions >= MAX_REVISIONS {
                return Err(wf::fatal("TooManyRevisions", format!("{} revisions and still not approved", MAX_REVISIONS)));
            }
            stage("revising");
            let feedback = review.feedback.unwrap_or_default();
            wf::log(&format!("{} requests changes: {feedback}", review.reviewer));
            let current = status.borrow().draft.clone().unwrap_or_default();
            let revised = llm(format!("REVISE\nTOPIC: {topic}\nFEEDBACK: {feedback}\nDraft:\n{current}\nContext:\n{context}"))?;
            llm_attempts += revised.attempt;
            let mut s = status.borrow_mut();
            s.draft = Some(revised.text);
            s.revisions += 1;
        };

        // 5. Synthesize the final report from the approved draft.
        stage("synthesizing");
        let approved_draft = status.borrow().draft.clone().unwrap_or_default();
        let report = llm(format!("SYNTHESIZE\nTOPIC: {topic}\nApproved draft:\n{approved_draft}\nContext:\n{context}"))?;
        llm_attempts += report.attempt;
        stage("done");
        Ok(ResearchReport {
            topic,
            questions,
            sources,
            revisions: status.borrow().revisions,
            approved_by,
            report: report.text,
            llm_attempts,
        })
    }
}

impl exports::caisson::workflow::queries::Guest for ResearchWorkflow {
    fn handle(name: String, args: Vec<String>) -> Result<String, String> {
        wf::handle_query(&name, &args)
    }
}

export!(ResearchWorkflow);
