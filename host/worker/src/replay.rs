//! Replay: feed recorded histories through Temporal core's replay worker
//! and the same activation code path as live execution, and report, per
//! history, whether the plugin still produces the recorded commands.

use crate::registry::Registry;
use crate::worker::{Endpoint, process_activation};
use caisson_runtime::codec::Codec;
use caisson_runtime::workflow::WorkflowRun;
use prost::Message as _;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use temporalio_common::protos::coresdk::workflow_activation::remove_from_cache::EvictionReason;
use temporalio_common::protos::coresdk::workflow_activation::workflow_activation_job::Variant as JobVariant;
use temporalio_common::protos::coresdk::workflow_completion::workflow_activation_completion::Status;
use temporalio_common::protos::temporal::api::history::v1::History;
use temporalio_common::worker::WorkerTaskTypes;
use temporalio_sdk_core::replay::{HistoryFeeder, HistoryForReplay, HistoryInfo, ReplayWorkerInput};
use temporalio_sdk_core::{PollError, WorkerConfig, WorkerVersioningStrategy, init_replay_worker};

/// Why a history file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not a history in JSON or protobuf form, or truncated.
    #[error("{}: not a workflow history: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Parses the proto3 JSON mapping (`temporal workflow show --output json`)
/// with readers generated from Temporal's own schema (fields it does not
/// know are skipped, as protobuf decoding skips them).
pub fn history_from_json(json: &str) -> Result<History, String> {
    let typed: crate::history_json::temporal::api::history::v1::History =
        serde_json::from_str(json).map_err(|e| format!("invalid history JSON: {e}"))?;
    History::decode(typed.encode_to_vec().as_slice()).map_err(|e| format!("re-encoding the history: {e}"))
}

/// A history with what replay needs to know about it.
#[derive(Debug, Clone)]
pub struct RecordedHistory {
    /// Where it came from (for messages).
    pub name: String,
    /// The events.
    pub history: History,
    /// Its workflow type.
    pub workflow_type: String,
    /// The workflow id to replay under. Histories do not record it; a
    /// file `NAME.json` replays as workflow id `NAME`.
    pub workflow_id: String,
    /// The worker deployment build id of the last completed workflow task
    /// (a versioned worker's plugin set), when one is recorded.
    pub build_id: Option<String>,
}

/// Reads a history file: JSON (`temporal workflow show --output json`) or
/// the binary protobuf form. Checks that it is complete enough to replay.
/// The file's stem is taken as the workflow id (histories do not record
/// it, and workflow code may use it, e.g. to name children).
pub fn read_history(path: &Path) -> Result<RecordedHistory, HistoryError> {
    let bytes = std::fs::read(path).map_err(|source| HistoryError::Read { path: path.to_owned(), source })?;
    let invalid = |message: String| HistoryError::Invalid { path: path.to_owned(), message };
    let history = if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        history_from_json(&String::from_utf8_lossy(&bytes)).map_err(invalid)?
    } else {
        History::decode(bytes.as_slice()).map_err(|e| invalid(format!("neither JSON nor protobuf: {e}")))?
    };
    let workflow_type = validate(&history).map_err(invalid)?;
    let workflow_id = path.file_stem().map_or_else(|| "replay".to_owned(), |s| s.to_string_lossy().into_owned());
    let build_id = recorded_build_id(&history);
    Ok(RecordedHistory { name: path.display().to_string(), history, workflow_type, workflow_id, build_id })
}

/// The build id of the worker deployment version that completed the
/// history's last workflow task: the version a pinned run lived on, and
/// the one an auto-upgrade run ended on.
pub fn recorded_build_id(history: &History) -> Option<String> {
    use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
    history.events.iter().rev().find_map(|e| match &e.attributes {
        Some(Attributes::WorkflowTaskCompletedEventAttributes(done)) => {
            done.deployment_version.as_ref().map(|v| v.build_id.clone()).filter(|id| !id.is_empty())
        }
        _ => None,
    })
}

/// [`read_history`] for every file, on up to `jobs` threads (parsing the
/// proto3 JSON is most of a short history's replay), results in the
/// order of `files`.
pub fn read_histories(files: &[PathBuf], jobs: usize) -> Vec<Result<RecordedHistory, HistoryError>> {
    let threads = jobs.clamp(1, files.len().max(1));
    if threads == 1 {
        return files.iter().map(|f| read_history(f)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut read: Vec<(usize, Result<RecordedHistory, HistoryError>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(file) = files.get(i) else { return mine };
                        mine.push((i, read_history(file)));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    read.sort_by_key(|(i, _)| *i);
    read.into_iter().map(|(_, r)| r).collect()
}

/// Checks a history's shape (core's replayer panics on malformed ones);
/// returns its workflow type.
pub fn validate(history: &History) -> Result<String, String> {
    use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
    let first = history.events.first().ok_or("the history has no events")?;
    let Some(Attributes::WorkflowExecutionStartedEventAttributes(started)) = &first.attributes else {
        return Err("the first event is not WorkflowExecutionStarted".into());
    };
    let workflow_type = started.workflow_type.as_ref().map(|t| t.name.clone()).unwrap_or_default();
    if workflow_type.is_empty() {
        return Err("the start event names no workflow type".into());
    }
    HistoryInfo::new_from_history(history, None).map_err(|e| format!("incomplete or truncated history: {e}"))?;
    Ok(workflow_type)
}

/// Every history file in `paths` (folders are searched for `*.json`,
/// `*.pb` and `*.binpb`), sorted.
pub fn history_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json" || x == "pb" || x == "binpb"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// How one history replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// The plugin produced exactly the recorded commands.
    Ok,
    /// It produced different commands; core's message names the expected
    /// and the actual command.
    Nondeterminism(String),
    /// The workflow task failed (a trap, an unknown workflow type...).
    Failed(String),
}

/// Core's replayer tells histories apart by run id and hangs on a repeat;
/// give a repeated history (the same file twice, or a benchmark batch) a
/// run id of its own.
fn distinct_run_id(history: &mut History, index: usize, seen: &mut std::collections::HashSet<String>) {
    use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
    if let Some(Attributes::WorkflowExecutionStartedEventAttributes(started)) =
        history.events.first_mut().and_then(|e| e.attributes.as_mut())
        && !seen.insert(started.original_execution_run_id.clone())
    {
        started.original_execution_run_id = format!("{}-replay-{index}", started.original_execution_run_id);
        seen.insert(started.original_execution_run_id.clone());
    }
}

/// The human part of core's eviction message (`[TMPRL1100] ...`), which
/// core wraps in the debug form of the failure it sent.
fn core_message(text: &str) -> String {
    let start = text.find("[TMPRL").or_else(|| text.find("message: \"").map(|i| i + 10));
    match start {
        Some(start) => {
            let rest = &text[start..];
            rest[..rest.find("\", source").unwrap_or(rest.len())].to_owned()
        }
        None => text.to_owned(),
    }
}

/// Replays `histories` on `workers` replay workers at once (histories
/// dealt round-robin), outcomes in the order given.
///
/// Core replays one history at a time per replay worker, handing each
/// activation between its own processing thread and the replay loop: most
/// of a replay is those hand-offs, not the guest. So each replay worker
/// runs on a thread of its own, kept (with the processing thread core
/// starts from it) to a CPU of its own when there are CPUs enough: a
/// hand-off between two CPUs is a cross-CPU wake-up, which made one replay
/// worker on two CPUs twice as slow as on one, and two replay workers on
/// two CPUs only 1.4 times as fast as one.
pub async fn replay_on(registry: Arc<Registry>, histories: Vec<RecordedHistory>, workers: usize) -> anyhow::Result<Vec<ReplayOutcome>> {
    replay_on_with_codec(registry, None, histories, workers).await
}

/// [`replay_on`] for histories whose payloads `codec` encoded (the
/// worker's `[codec]`): each activation is decoded and each completion
/// encoded as the live worker does.
pub async fn replay_on_with_codec(
    registry: Arc<Registry>,
    codec: Option<Arc<Codec>>,
    histories: Vec<RecordedHistory>,
    workers: usize,
) -> anyhow::Result<Vec<ReplayOutcome>> {
    let workers = workers.clamp(1, histories.len().max(1));
    let cpus = cpus_for(workers);
    let count = histories.len();
    let mut shares: Vec<(Vec<usize>, Vec<RecordedHistory>)> = (0..workers).map(|_| (Vec::new(), Vec::new())).collect();
    for (i, history) in histories.into_iter().enumerate() {
        let share = &mut shares[i % workers];
        share.0.push(i);
        share.1.push(history);
    }
    let mut results = Vec::new();
    for (k, (indices, histories)) in shares.into_iter().enumerate() {
        let (registry, codec, cpu) = (registry.clone(), codec.clone(), cpus.get(k).copied());
        let (done, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("caisson-replay-{k}"))
            .spawn(move || {
                if let Some(cpu) = cpu {
                    keep_thread_to_cpu(cpu);
                }
                let outcomes = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(anyhow::Error::from)
                    .and_then(|runtime| runtime.block_on(replay_with_codec(registry, codec, histories)));
                let _ = done.send(outcomes.map(|outcomes| (indices, outcomes)));
            })
            .map_err(|e| anyhow::anyhow!("starting a replay thread: {e}"))?;
        results.push(result);
    }
    let mut outcomes: Vec<Option<ReplayOutcome>> = vec![None; count];
    for result in results {
        let (indices, share) = result.await.map_err(|_| anyhow::anyhow!("a replay thread ended without a result"))??;
        for (i, outcome) in indices.into_iter().zip(share) {
            outcomes[i] = Some(outcome);
        }
    }
    Ok(outcomes.into_iter().map(|o| o.expect("every history is in one share")).collect())
}

/// A CPU for each of `workers` replay workers, from those this process
/// may use; none (the scheduler's choice) when there are fewer CPUs.
///
/// The list starts at the CPU this thread runs on, where the scheduler put
/// the process (it prefers idle CPUs), and goes on from there: two replays
/// started together on a large machine do not both take CPUs 0, 1, ...
fn cpus_for(workers: usize) -> Vec<usize> {
    use rustix::thread::{CpuSet, sched_getaffinity, sched_getcpu};
    let Ok(allowed) = sched_getaffinity(None) else { return Vec::new() };
    let mut cpus: Vec<usize> = (0..CpuSet::MAX_CPU).filter(|&cpu| allowed.is_set(cpu)).collect();
    if cpus.len() < workers {
        return Vec::new();
    }
    let here = cpus.iter().position(|&cpu| cpu == sched_getcpu()).unwrap_or(0);
    cpus.rotate_left(here);
    cpus.truncate(workers);
    cpus
}

/// Keeps the calling thread, and the threads it starts, to `cpu`.
fn keep_thread_to_cpu(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    if let Err(e) = rustix::thread::sched_setaffinity(None, &set) {
        tracing::debug!("replay: cannot keep a replay thread to CPU {cpu}: {e}");
    }
}

/// Replays `histories` in order through one replay worker.
pub async fn replay(registry: Arc<Registry>, histories: Vec<RecordedHistory>) -> anyhow::Result<Vec<ReplayOutcome>> {
    replay_with_codec(registry, None, histories).await
}

/// [`replay`] through a payload codec.
pub async fn replay_with_codec(
    registry: Arc<Registry>,
    codec: Option<Arc<Codec>>,
    histories: Vec<RecordedHistory>,
) -> anyhow::Result<Vec<ReplayOutcome>> {
    let endpoint = Endpoint {
        address: "replay".into(),
        namespace: "default".into(),
        task_queue: "caisson-replay".into(),
        api_key: None,
        tls: None,
        fairness_key: None,
        versioned: false,
    };
    let config = WorkerConfig::builder()
        .namespace(endpoint.namespace.clone())
        .task_queue(endpoint.task_queue.clone())
        .task_types(WorkerTaskTypes::workflow_only())
        .versioning_strategy(WorkerVersioningStrategy::None { build_id: "caisson-replay".into() })
        .max_cached_workflows(1_usize)
        .build()
        .map_err(anyhow::Error::msg)?;
    let (feeder, stream) = HistoryFeeder::new(1);
    let worker = init_replay_worker(ReplayWorkerInput::new(config, stream))?;
    let count = histories.len();
    // Ending the stream lets core shut the replay worker down, dropping any
    // history still queued: keep it open until the last one has started.
    let (all_started, release_feeder) = tokio::sync::oneshot::channel::<()>();
    let feeding = tokio::spawn(async move {
        let mut seen = std::collections::HashSet::new();
        for (i, mut h) in histories.into_iter().enumerate() {
            distinct_run_id(&mut h.history, i, &mut seen);
            if feeder.feed(HistoryForReplay::new(h.history, h.workflow_id)).await.is_err() {
                return;
            }
        }
        let _ = release_feeder.await;
    });
    let mut all_started = Some(all_started);
    let mut outcomes: Vec<Option<ReplayOutcome>> = vec![None; count];
    let mut run_to_index: HashMap<String, usize> = HashMap::new();
    let mut started = 0;
    let mut failures: HashMap<String, String> = HashMap::new();
    let mut runs: HashMap<String, WorkflowRun> = HashMap::new();
    let mut decided = 0;
    while decided < count {
        let activation = match worker.poll_workflow_activation().await {
            Ok(a) => a,
            Err(PollError::ShutDown) => break,
            Err(e) => return Err(e.into()),
        };
        let run_id = activation.run_id.clone();
        for job in &activation.jobs {
            match &job.variant {
                // Core replays the histories one at a time, in order, and
                // evicts each at its end: the n-th run started is the n-th
                // history (identical histories share a run id).
                Some(JobVariant::InitializeWorkflow(_)) if !run_to_index.contains_key(&run_id) => {
                    run_to_index.insert(run_id.clone(), started);
                    started += 1;
                    if started == count
                        && let Some(signal) = all_started.take()
                    {
                        let _ = signal.send(());
                    }
                }
                Some(JobVariant::RemoveFromCache(evict)) => {
                    if let Some(i) = run_to_index.remove(&run_id) {
                        decided += 1;
                        outcomes[i] = Some(match evict.reason() {
                            EvictionReason::Nondeterminism => ReplayOutcome::Nondeterminism(core_message(&evict.message)),
                            EvictionReason::LangFail => {
                                ReplayOutcome::Failed(failures.remove(&run_id).unwrap_or_else(|| evict.message.clone()))
                            }
                            _ => ReplayOutcome::Ok,
                        });
                    }
                }
                _ => {}
            }
        }
        let completion = crate::codec::activation(codec.as_deref(), activation, |a| process_activation(&registry, &mut runs, a, &endpoint));
        if let Some(Status::Failed(f)) = &completion.status {
            failures.insert(run_id.clone(), f.failure.as_ref().map(|f| f.message.clone()).unwrap_or_default());
        }
        worker.complete_workflow_activation(completion).await?;
    }
    // The last history may end with the worker's shutdown rather than an
    // eviction: if it started and nothing failed, it replayed cleanly.
    for (run_id, index) in run_to_index {
        if outcomes[index].is_none() {
            outcomes[index] = Some(match failures.remove(&run_id) {
                Some(message) => ReplayOutcome::Failed(message),
                None => ReplayOutcome::Ok,
            });
        }
    }
    worker.initiate_shutdown();
    feeding.abort();
    Ok(outcomes.into_iter().map(|o| o.unwrap_or_else(|| ReplayOutcome::Failed("core did not replay this history".into()))).collect())
}
