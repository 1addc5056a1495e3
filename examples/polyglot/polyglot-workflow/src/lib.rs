//! One workflow, four runtimes: the activities it calls are written in
//! Rust (`word-stats`), Python (`top-keywords`) and JavaScript (`slugify`,
//! `render-html`) and run as WebAssembly components in the Caisson worker;
//! `archive-report` runs in a plain Temporal Python SDK worker on another
//! task queue. The workflow only names activity types: where and in what
//! language they run is the workers' business.

caisson_guest::workflow_bindings!("caisson-examples:polyglot-workflow/polyglot-workflow");

use caisson_guest::workflow::{self as wf, ActivityBuilder, Duration, RetryPolicy};

struct PolyglotWorkflow;

/// Every call: 10 s per attempt, at most three attempts (a bug in one
/// language's activity fails the workflow instead of retrying forever).
fn activity(activity_type: &str) -> ActivityBuilder {
    wf::activity(activity_type)
        .start_to_close(Duration::from_secs(10))
        .retry(RetryPolicy::default().initial_interval(Duration::from_millis(200)).maximum_attempts(3))
}

impl Guest for PolyglotWorkflow {
    fn text_report(document: Document) -> Result<TextReport, ApplicationError> {
        // Rust, Python and JavaScript in parallel.
        let stats = activity("word-stats").arg(&document.text).start();
        let keywords = activity("top-keywords").args((&document.text, 5u32)).start();
        let slug = activity("slugify").arg(&document.title).start();
        let stats: TextStats = stats.join()?;
        let keywords: Vec<Keyword> = keywords.join()?;
        let slug: String = slug.join()?;

        // JavaScript renders what Rust and Python found.
        let html: String = activity("render-html").args((&document.title, &stats, &keywords)).call()?;

        let mut report = TextReport {
            title: document.title.clone(),
            slug,
            stats,
            keywords,
            html,
            archive: ArchiveReceipt { archive_id: String::new(), bytes: 0, worker: String::new() },
        };
        // A Python SDK worker, elsewhere, archives it.
        let queue = document.archive_queue.clone().unwrap_or_else(|| "polyglot-legacy".into());
        report.archive = activity("archive-report")
            .arg(&serde_json::json!({ "title": report.title, "slug": report.slug, "html": report.html }))
            .task_queue(&queue)
            .schedule_to_close(Duration::from_secs(60))
            .call()?;
        wf::log(&format!("{}: archived as {}", report.slug, report.archive.archive_id));
        Ok(report)
    }
}

export!(PolyglotWorkflow);
