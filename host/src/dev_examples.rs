//! The example set `caisson dev` runs when it is given no plugins:
//! `examples/dev.toml` names each example's plugins, the workflow to
//! start, its input and, optionally, a query, a signal and an update. Workflows are
//! driven with the Temporal CLI, the way any Temporal user would.

use crate::worker::Endpoint;
use anyhow::Context as _;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the set is read from, relative to the working directory.
pub const DEV_SET: &str = "examples/dev.toml";

/// The file's shape.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevSet {
    /// The examples, run concurrently.
    pub example: Vec<Example>,
}

/// One example run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// Shown in the output.
    pub name: String,
    /// Its README, shown in the output.
    pub readme: String,
    /// Plugin names (`build/plugins/NAME.wasm`).
    pub plugins: Vec<String>,
    /// Workflow type to start.
    pub workflow: String,
    /// JSON arguments.
    #[serde(default)]
    pub input: Vec<String>,
    /// A query to send once it runs, printed with the result.
    pub query: Option<String>,
    /// A signal to send once it runs.
    pub signal: Option<Signal>,
    /// An update to send once it runs (after the signal, if both); its
    /// result is printed.
    pub update: Option<Signal>,
    /// The example shows a failure (e.g. a compensated saga).
    #[serde(default)]
    pub expect_failure: bool,
    /// Processes the example needs (a mock server, a Python SDK worker),
    /// started before the workflows and stopped after.
    #[serde(default)]
    pub services: Vec<Service>,
}

/// A helper process of an example.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Program and arguments. `{python}` is the tool venv's Python (with
    /// the Temporal SDK), `{address}` and `{namespace}` the server's.
    pub command: Vec<String>,
    /// A TCP port on 127.0.0.1 that accepts connections once it is ready.
    pub ready_port: Option<u16>,
}

/// Started services; killed when dropped.
#[derive(Debug)]
pub struct Services {
    _children: Vec<tokio::process::Child>,
}

/// Starts every distinct service of the set and waits for their ports.
pub async fn start_services(set: &DevSet, endpoint: &Endpoint) -> anyhow::Result<Services> {
    let mut distinct: Vec<&Service> = Vec::new();
    for service in set.example.iter().flat_map(|e| &e.services) {
        if !distinct.contains(&service) {
            distinct.push(service);
        }
    }
    let python = crate::devserver::tool_venv_python();
    let mut children = Vec::new();
    for service in distinct {
        let args: Vec<String> = service
            .command
            .iter()
            .map(|a| {
                a.replace("{python}", &python.display().to_string())
                    .replace("{address}", &endpoint.address)
                    .replace("{namespace}", &endpoint.namespace)
            })
            .collect();
        let (program, rest) = args.split_first().context("a service with an empty command")?;
        tracing::info!("starting {}", args.join(" "));
        let child = tokio::process::Command::new(program)
            .args(rest)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting `{}`", args.join(" ")))?;
        children.push(child);
        if let Some(port) = service.ready_port {
            let ready = async {
                while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(20), ready)
                .await
                .with_context(|| format!("`{}` did not listen on port {port} within 20 s", args.join(" ")))?;
        }
    }
    Ok(Services { _children: children })
}

/// A signal or update an example sends to its workflow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    /// Signal or update name.
    pub name: String,
    /// JSON argument.
    pub input: Option<String>,
    /// Delay after the start.
    #[serde(default)]
    pub after_ms: u64,
}

impl DevSet {
    /// Reads `examples/dev.toml`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Every plugin file the examples need, once each.
    pub fn plugin_files(&self, dir: &Path) -> Vec<PathBuf> {
        let mut names: Vec<&str> = self.example.iter().flat_map(|e| e.plugins.iter().map(String::as_str)).collect();
        names.sort();
        names.dedup();
        names.into_iter().map(|n| dir.join(format!("{n}.wasm"))).collect()
    }
}

/// How one example ended.
#[derive(Debug)]
pub struct ExampleOutcome {
    /// The example.
    pub example: Example,
    /// Its workflow id.
    pub workflow_id: String,
    /// True when the workflow ended as the example expects.
    pub as_expected: bool,
    /// What to print: status, query answer, result or failure.
    pub report: String,
}

/// Runs every example concurrently against `endpoint`.
pub async fn run_all(set: &DevSet, endpoint: &Endpoint) -> Vec<ExampleOutcome> {
    let runs = set.example.iter().enumerate().map(|(i, example)| run_one(example.clone(), endpoint, i));
    futures::future::join_all(runs).await
}

async fn run_one(example: Example, endpoint: &Endpoint, index: usize) -> ExampleOutcome {
    let workflow_id = format!("dev-{}-{}-{index}", example.workflow, std::process::id());
    let outcome = drive(&example, endpoint, &workflow_id).await;
    let (as_expected, report) = match outcome {
        Ok((completed, report)) => (completed != example.expect_failure, report),
        Err(e) => (false, format!("    error: {e:#}\n")),
    };
    ExampleOutcome { example, workflow_id, as_expected, report }
}

async fn temporal(endpoint: &Endpoint, args: &[&str]) -> anyhow::Result<std::process::Output> {
    tokio::process::Command::new(crate::devserver::temporal_cli()?)
        .args(args)
        .args(["--address", &endpoint.address, "--namespace", &endpoint.namespace])
        .output()
        .await
        .context("running the temporal CLI")
}

async fn drive(example: &Example, endpoint: &Endpoint, id: &str) -> anyhow::Result<(bool, String)> {
    let mut start = vec!["workflow", "start", "--type", &example.workflow, "--workflow-id", id, "--task-queue", &endpoint.task_queue];
    for input in &example.input {
        start.extend(["--input", input]);
    }
    let out = temporal(endpoint, &start).await?;
    anyhow::ensure!(out.status.success(), "temporal workflow start: {}", String::from_utf8_lossy(&out.stderr).trim());
    let mut report = String::new();
    if let Some(query) = &example.query {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let out = temporal(endpoint, &["workflow", "query", "--workflow-id", id, "--name", query, "-o", "json"]).await?;
        let answer = serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .map(|v| v["queryResult"].get(0).cloned().unwrap_or(v).to_string())
            .unwrap_or_else(|_| String::from_utf8_lossy(&out.stdout).trim().to_owned());
        report.push_str(&format!("    query {query}: {answer}\n"));
    }
    if let Some(signal) = &example.signal {
        tokio::time::sleep(Duration::from_millis(signal.after_ms)).await;
        let mut args = vec!["workflow", "signal", "--workflow-id", id, "--name", &signal.name];
        if let Some(input) = &signal.input {
            args.extend(["--input", input]);
        }
        let out = temporal(endpoint, &args).await?;
        anyhow::ensure!(out.status.success(), "temporal workflow signal: {}", String::from_utf8_lossy(&out.stderr).trim());
        report.push_str(&format!("    signal {} {}\n", signal.name, signal.input.as_deref().unwrap_or("")));
    }
    if let Some(update) = &example.update {
        tokio::time::sleep(Duration::from_millis(update.after_ms)).await;
        let mut args = vec!["workflow", "update", "execute", "--workflow-id", id, "--name", &update.name, "-o", "json"];
        if let Some(input) = &update.input {
            args.extend(["--input", input]);
        }
        let out = temporal(endpoint, &args).await?;
        anyhow::ensure!(out.status.success(), "temporal workflow update execute: {}", String::from_utf8_lossy(&out.stderr).trim());
        let answer = serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .map(|v| v.get("result").cloned().unwrap_or(v).to_string())
            .unwrap_or_else(|_| String::from_utf8_lossy(&out.stdout).trim().to_owned());
        report.push_str(&format!("    update {} {} -> {answer}\n", update.name, update.input.as_deref().unwrap_or("")));
    }
    let out = temporal(endpoint, &["workflow", "result", "--workflow-id", id, "-o", "json"]).await?;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("temporal workflow result: {}", String::from_utf8_lossy(&out.stderr).trim()))?;
    let status = doc["status"].as_str().unwrap_or("UNKNOWN").to_owned();
    let completed = status == "COMPLETED";
    if completed {
        report.push_str(&format!("    result: {}\n", doc["result"]));
    } else {
        let failure = &doc["closeEvent"]["workflowExecutionFailedEventAttributes"]["failure"];
        let innermost = std::iter::successors(Some(failure), |f| f.get("cause")).last().unwrap_or(failure);
        report.push_str(&format!("    {status}: {}\n", innermost["message"].as_str().unwrap_or("")));
    }
    Ok((completed, report))
}
