//! A live worker on the native Temporal Rust SDK (`temporalio-sdk` 1.1.1)
//! serving the two test-workflows types that `benches/e2e_worker.py`
//! measures on Caisson, written natively, and an `echo` activity:
//!
//! * `parallel(n)`: `n` `echo("item-{i}")` activities at once (start-to-close
//!   60 s, the guest builder's default), all awaited; returns their results;
//! * `expense-approval({id, amount, timeout_ms})`: answers the query
//!   `get-status` with `{"state": "pending", "decided_by": null}` and waits
//!   for an `approve` or `reject` signal, at most `timeout_ms` (a timer);
//! * activity `echo(value)`: returns `value`.
//!
//! ```text
//! native_worker --address 127.0.0.1:7233 --task-queue bench [--namespace default] [--max-cached-workflows 1000]
//! ```
//!
//! Prints `worker polling` once the worker is built and starts polling; runs
//! until killed (SIGTERM/SIGINT end it at once: the bench does not need a
//! graceful shutdown).

use caisson_benches::native::{Echo, EchoActivities};
use std::str::FromStr;
use std::time::Duration;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};
use temporalio_sdk::{
    ActivityOptions, CancellableFuture, Runtime, SyncWorkflowContext, Worker, WorkerOptions, WorkflowContext, WorkflowContextView,
    WorkflowResult,
};
use temporalio_workflow::{workflow, workflow_methods};

/// `parallel`, natively.
#[workflow]
#[derive(Default)]
pub struct Parallel;

#[workflow_methods]
impl Parallel {
    /// `n` echo activities at once, all awaited.
    #[run(name = "parallel")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, n: u32) -> WorkflowResult<Vec<String>> {
        let calls = (0..n)
            .map(|i| ctx.execute_activity(Echo, format!("item-{i}"), ActivityOptions::start_to_close_timeout(Duration::from_secs(60))));
        let results = temporalio_sdk::workflows::join_all(calls).await;
        Ok(results.into_iter().map(|r| r.unwrap_or_else(|e| format!("failed: {e:?}"))).collect())
    }
}

/// `expense-approval`, natively.
#[workflow]
#[derive(Default)]
pub struct ExpenseApproval {
    /// `None` while pending; `(state, decided_by)` once decided.
    decision: Option<(&'static str, Option<String>)>,
}

#[workflow_methods]
impl ExpenseApproval {
    /// Waits for `approve` / `reject`, at most `timeout_ms`.
    #[run(name = "expense-approval")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, request: serde_json::Value) -> WorkflowResult<serde_json::Value> {
        let timeout_ms = request.get("timeout_ms").and_then(serde_json::Value::as_u64).unwrap_or(3_600_000);
        let mut deadline = ctx.timer(Duration::from_millis(timeout_ms));
        let decided = temporalio_sdk::workflows::select! {
            _ = ctx.wait_condition(|s| s.decision.is_some()) => true,
            _ = deadline => false,
        };
        if decided {
            deadline.cancel();
        }
        if !decided {
            ctx.state_mut(|s| s.decision = Some(("auto_rejected", None)));
        }
        Ok(ctx.state(Self::status))
    }

    /// `approve(by)`.
    #[signal(name = "approve")]
    pub fn approve(&mut self, _ctx: &mut SyncWorkflowContext<Self>, by: String) {
        self.decision.get_or_insert(("approved", Some(by)));
    }

    /// `reject(by)`.
    #[signal(name = "reject")]
    pub fn reject(&mut self, _ctx: &mut SyncWorkflowContext<Self>, by: String) {
        self.decision.get_or_insert(("rejected", Some(by)));
    }

    /// `{"state": ..., "decided_by": ...}`, as the guest answers.
    #[query(name = "get-status")]
    pub fn get_status(&self, _ctx: &WorkflowContextView) -> serde_json::Value {
        self.status()
    }

    fn status(&self) -> serde_json::Value {
        match &self.decision {
            None => serde_json::json!({ "state": "pending", "decided_by": null }),
            Some((state, by)) => serde_json::json!({ "state": state, "decided_by": by }),
        }
    }
}

fn arg(args: &[String], name: &str, default: Option<&str>) -> anyhow::Result<String> {
    match args.iter().position(|a| a == name) {
        Some(i) => args.get(i + 1).cloned().ok_or_else(|| anyhow::anyhow!("{name} needs a value")),
        None => default.map(str::to_owned).ok_or_else(|| anyhow::anyhow!("{name} is required")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("native_worker --address HOST:PORT --task-queue QUEUE [--namespace default] [--max-cached-workflows 1000]");
        return Ok(());
    }
    let address = arg(&args, "--address", Some("127.0.0.1:7233"))?;
    let task_queue = arg(&args, "--task-queue", None)?;
    let namespace = arg(&args, "--namespace", Some("default"))?;
    let max_cached: usize = arg(&args, "--max-cached-workflows", Some("1000"))?.parse()?;

    let runtime = Runtime::from_current_tokio(Default::default())?;
    let url = if address.contains("://") { address.clone() } else { format!("http://{address}") };
    let connection = Connection::connect(ConnectionOptions::new(Url::from_str(&url)?).build()).await?;
    let client = Client::new(connection, ClientOptions::new(namespace).build())?;
    let options = WorkerOptions::new(task_queue)
        .max_cached_workflows(max_cached)
        .register_workflow::<Parallel>()?
        .register_workflow::<ExpenseApproval>()?
        .register_activities(EchoActivities)
        .build();
    let mut worker = Worker::new(&runtime, client, options)?;
    eprintln!("worker polling (native Rust SDK, max cached workflows {max_cached})");
    tokio::select! {
        result = worker.run() => result?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
