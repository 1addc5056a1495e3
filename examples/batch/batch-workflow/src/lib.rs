//! Batch processing in three patterns:
//!
//! * **parallel activities** — a page's items are processed all at once
//!   (`start` each, then `wait_all`);
//! * **child workflows** — each page is a child workflow of the batch, with
//!   its own history and id (`<batch id>-page-<n>`);
//! * **continue-as-new** — after each page the batch continues as a new
//!   run carrying only the offset and the running totals, so no run's
//!   history grows with the size of the batch.
//!
//! The `progress` query answers from whichever run is current.

caisson_guest::workflow_bindings!("caisson-examples:batch-workflow/batch-workflow");

use caisson_guest::workflow::{self as wf, Duration, RetryPolicy};
use std::cell::RefCell;
use std::rc::Rc;

struct BatchWorkflow;

impl Guest for BatchWorkflow {
    fn process_batch(job: BatchJob) -> BatchSummary {
        let mut totals = job.totals.clone().unwrap_or(BatchSummary { processed: 0, failed: vec![], pages: 0, total_chars: 0 });
        let total = job.items.len() as u32;
        let (offset, size) = (job.offset.min(total), job.page_size.max(1));
        let progress = Rc::new(RefCell::new((totals.clone(), offset)));
        let view = progress.clone();
        wf::on_query("progress", move |_| {
            let (t, offset) = &*view.borrow();
            serde_json::json!({ "offset": offset, "total": total, "processed": t.processed, "failed": t.failed, "pages": t.pages })
        });
        if offset >= total {
            return totals;
        }

        let end = (offset + size).min(total);
        let page = Page { number: totals.pages + 1, items: job.items[offset as usize..end as usize].to_vec() };
        let page_id = format!("{}-page-{}", wf::info().workflow_id, page.number);
        let result: Result<PageResult, _> = wf::child("process-page").arg(&page).id(&page_id).call();
        match result {
            Ok(r) => {
                totals.processed += r.results.len() as u32;
                totals.total_chars += r.results.iter().map(|i| i.chars).sum::<u32>();
                totals.failed.extend(r.failed);
            }
            Err(e) => {
                wf::warn(&format!("page {} failed as a whole: {e:?}", page.number));
                totals.failed.extend(page.items.iter().cloned());
            }
        }
        totals.pages += 1;
        *progress.borrow_mut() = (totals.clone(), end);
        wf::log(&format!("page {} done: {end}/{total} items", totals.pages));

        if end < total {
            wf::continue_as_new(&BatchJob { items: job.items, page_size: size, offset: end, totals: Some(totals) });
        }
        totals
    }

    fn process_page(page: Page) -> PageResult {
        let handles: Vec<wf::Handle> = page
            .items
            .iter()
            .map(|item| {
                wf::activity("process-item")
                    .arg(item)
                    .start_to_close(Duration::from_secs(10))
                    .retry(RetryPolicy::default().initial_interval(Duration::from_millis(200)).maximum_attempts(3).non_retryable(&["InvalidItem"]))
                    .start()
            })
            .collect();
        let mut result = PageResult { number: page.number, results: vec![], failed: vec![] };
        for (item, outcome) in page.items.iter().zip(wf::wait_all(&handles)) {
            match outcome.map(|json| serde_json::from_str::<ItemResult>(&json)) {
                Ok(Ok(r)) => result.results.push(r),
                _ => result.failed.push(item.clone()),
            }
        }
        result
    }
}

impl exports::caisson::workflow::queries::Guest for BatchWorkflow {
    fn handle(name: String, args: Vec<String>) -> Result<String, String> {
        wf::handle_query(&name, &args)
    }
}

export!(BatchWorkflow);
