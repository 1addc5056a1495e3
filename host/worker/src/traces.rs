//! OpenTelemetry traces of the work the worker does, joined with the
//! Temporal SDKs' traces.
//!
//! The SDKs' tracing interceptors (the Python SDK's `TracingInterceptor`,
//! the TypeScript SDK's `OpenTelemetry*Interceptor`s) carry trace context in
//! the Temporal header `_tracer-data`: a `json/plain` payload holding a W3C
//! carrier (`{"traceparent": "00-<trace>-<span>-01"}`). Caisson reads it where
//! work arrives and writes it where work leaves, with the span names those
//! interceptors use, so that one trace runs from a client through a Caisson
//! workflow, its activities (on Caisson or on an SDK worker) and its
//! children:
//!
//! | span | when | parent |
//! |---|---|---|
//! | `RunWorkflow:TYPE` | a run's first workflow task | the starter's context (header) |
//! | `WorkflowTask:TYPE` | every workflow task, replays too (`temporal.replaying`) | the run's context |
//! | `HandleSignal:NAME`, `HandleUpdate:NAME` | a signal or update handled | the run's context, linked to the sender's |
//! | `HandleQuery:NAME` | a query answered | the querier's context when it sent one |
//! | `StartActivity:TYPE`, `StartChildWorkflow:TYPE`, `SignalExternalWorkflow:NAME` | a command issued (its context goes in the command's header) | the run's context |
//! | `CompleteWorkflow:TYPE` | the run completes, fails or is cancelled | the run's context |
//! | `RunActivity:TYPE` | every activity attempt | the scheduler's context (header) |
//!
//! A workflow's spans other than its task spans are made only when a task
//! is not a replay (as the SDKs do), so a run evicted and replayed does not
//! report its past twice. A run started without trace context (by the CLI,
//! a schedule) still gets one trace: its root span's ids are derived from
//! its run id, so every worker that replays it finds the same root.
//!
//! Spans go to an OTLP collector through a batch processor: exporting
//! never blocks a workflow task, and a collector that is down costs
//! dropped spans and one warning a minute, nothing else. With no endpoint
//! configured nothing here runs: [`enabled`] is one atomic load.

use crate::bridge;
use crate::registry::Registry;
use caisson_runtime::activity::AttemptOutcome;
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState, Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, IdGenerator, RandomIdGenerator, SdkTracer, SdkTracerProvider, SpanData, SpanExporter};
use sha2::{Digest as _, Sha256};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use temporalio_common::protos::coresdk::activity_task;
use temporalio_common::protos::coresdk::workflow_activation::{WorkflowActivation, workflow_activation_job};
use temporalio_common::protos::coresdk::workflow_commands::workflow_command;
use temporalio_common::protos::coresdk::workflow_completion::{WorkflowActivationCompletion, workflow_activation_completion};
use temporalio_common::protos::temporal::api::common::v1::Payload;

/// The Temporal header the SDKs' tracing interceptors use.
pub const HEADER: &str = "_tracer-data";

/// How spans (and core's metrics) reach the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
pub enum OtlpProtocol {
    /// OTLP over gRPC (port 4317 by convention).
    #[default]
    #[serde(rename = "grpc")]
    Grpc,
    /// OTLP over HTTP with protobuf bodies (port 4318 by convention).
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

impl OtlpProtocol {
    /// Reads `OTEL_EXPORTER_OTLP_PROTOCOL`'s values (`http/json` is refused:
    /// the exporter here does not speak it).
    pub fn parse(setting: &str, value: &str) -> anyhow::Result<Self> {
        match value {
            "grpc" => Ok(OtlpProtocol::Grpc),
            "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
            other => anyhow::bail!("{setting} = {other:?}: expected \"grpc\" or \"http/protobuf\""),
        }
    }
}

/// Where to export: resolved from the manifest's `[worker]` keys and the
/// standard `OTEL_EXPORTER_OTLP_*` variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpExport {
    /// The collector's base URL (`http://host:4317`); for HTTP the signal
    /// paths `/v1/traces` and `/v1/metrics` are added.
    pub endpoint: url::Url,
    /// gRPC or HTTP.
    pub protocol: OtlpProtocol,
    /// Sent with every export (`OTEL_EXPORTER_OTLP_HEADERS`: `k=v,k2=v2`).
    pub headers: HashMap<String, String>,
}

impl OtlpExport {
    /// The export the manifest or the environment asks for; `None`: off.
    /// The manifest's `otlp_endpoint` wins over `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn resolve(
        endpoint: Option<&str>,
        protocol: Option<OtlpProtocol>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Option<Self>> {
        let (setting, endpoint) = match endpoint {
            Some(e) => ("worker.otlp_endpoint", e.to_owned()),
            None => match env("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|e| !e.is_empty()) {
                Some(e) => ("OTEL_EXPORTER_OTLP_ENDPOINT", e),
                None => return Ok(None),
            },
        };
        let endpoint = url::Url::parse(&endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| anyhow::anyhow!("{setting} = {endpoint:?}: expected a collector URL like \"http://127.0.0.1:4317\""))?;
        let protocol = match (protocol, env("OTEL_EXPORTER_OTLP_PROTOCOL").filter(|p| !p.is_empty())) {
            (Some(p), _) => p,
            (None, Some(p)) => OtlpProtocol::parse("OTEL_EXPORTER_OTLP_PROTOCOL", &p)?,
            (None, None) => OtlpProtocol::Grpc,
        };
        let mut headers = HashMap::new();
        for pair in env("OTEL_EXPORTER_OTLP_HEADERS").unwrap_or_default().split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("OTEL_EXPORTER_OTLP_HEADERS: {pair:?} is not key=value (expected \"k1=v1,k2=v2\")"))?;
            headers.insert(k.trim().to_owned(), v.trim().to_owned());
        }
        Ok(Some(OtlpExport { endpoint, protocol, headers }))
    }

    /// The URL one signal (`traces`, `metrics`) is sent to.
    pub fn signal_url(&self, signal: &str) -> String {
        match self.protocol {
            OtlpProtocol::Grpc => self.endpoint.to_string(),
            OtlpProtocol::HttpProtobuf => format!("{}/v1/{signal}", self.endpoint.as_str().trim_end_matches('/')),
        }
    }
}

/// The installed exporter; `None` until [`install`] (tracing off).
static TRACES: OnceLock<Traces> = OnceLock::new();

struct Traces {
    tracer: SdkTracer,
    /// Each cached run's trace context, read from its first activation.
    runs: Mutex<HashMap<String, RunTrace>>,
}

#[derive(Clone)]
struct RunTrace {
    /// Parent of the run's spans.
    context: Context,
    /// The header that started the run, handed on at continue-as-new.
    header: Option<Payload>,
    workflow_type: String,
    workflow_id: String,
}

/// Whether spans are being made.
pub fn enabled() -> bool {
    TRACES.get().is_some()
}

/// Starts exporting spans to `export` (inside a tokio runtime: the gRPC
/// channel lives on it). Once per process; the returned guard flushes the
/// spans still queued when the worker stops.
pub fn install(export: &OtlpExport) -> anyhow::Result<ExportGuard> {
    // The HTTP exporter's client takes the process's default TLS provider.
    temporalio_common::telemetry::ensure_default_crypto_provider();
    let exporter = match export.protocol {
        OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(export.signal_url("traces"))
            .with_metadata(tonic_metadata(&export.headers)?)
            .with_timeout(Duration::from_secs(5))
            .build()?,
        OtlpProtocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(export.signal_url("traces"))
            .with_headers(export.headers.clone())
            .with_timeout(Duration::from_secs(5))
            .build()?,
    };
    let exporter = Warned { inner: exporter, endpoint: export.signal_url("traces"), last_warning: AtomicU64::new(0) };
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("caisson");
    }
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .with_id_generator(RunRootIds)
        .with_resource(resource.build())
        .build();
    let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "caisson");
    let traces = Traces { tracer, runs: Mutex::default() };
    if TRACES.set(traces).is_err() {
        anyhow::bail!("traces are already being exported");
    }
    tracing::info!(endpoint = %export.endpoint, protocol = ?export.protocol, "exporting traces over OTLP");
    Ok(ExportGuard { provider })
}

fn tonic_metadata(headers: &HashMap<String, String>) -> anyhow::Result<opentelemetry_otlp::tonic_types::metadata::MetadataMap> {
    let headers: http::HeaderMap = headers.try_into().map_err(|e| anyhow::anyhow!("OTEL_EXPORTER_OTLP_HEADERS: {e}"))?;
    Ok(opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(headers))
}

/// Flushes queued spans when dropped (at most a few seconds).
#[must_use = "dropping the guard stops the export"]
pub struct ExportGuard {
    provider: SdkTracerProvider,
}

impl Drop for ExportGuard {
    fn drop(&mut self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::debug!("flushing spans at exit: {e}");
        }
    }
}

/// The exporter, warning at most once a minute when the collector does
/// not answer (the batch processor drops what it cannot send).
#[derive(Debug)]
struct Warned<E> {
    inner: E,
    endpoint: String,
    last_warning: AtomicU64,
}

impl<E: SpanExporter> SpanExporter for Warned<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        let result = self.inner.export(batch).await;
        if let Err(e) = &result {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            let last = self.last_warning.load(Ordering::Relaxed);
            if now >= last + 60 && self.last_warning.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
                tracing::warn!(
                    "OTLP trace export to {} failed ({e}): {n} spans dropped; workflows go on, and this warning repeats at most once a minute",
                    self.endpoint
                );
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

thread_local! {
    /// Ids the next span made on this thread takes (a run's root span).
    static NEXT_IDS: Cell<Option<(TraceId, SpanId)>> = const { Cell::new(None) };
}

/// Random ids, except for the root span of a run started without trace
/// context, whose ids come from its run id.
#[derive(Debug)]
struct RunRootIds;

impl IdGenerator for RunRootIds {
    fn new_trace_id(&self) -> TraceId {
        NEXT_IDS.with(|n| n.get()).map_or_else(|| RandomIdGenerator::default().new_trace_id(), |(t, _)| t)
    }

    fn new_span_id(&self) -> SpanId {
        NEXT_IDS.with(|n| n.get()).map_or_else(|| RandomIdGenerator::default().new_span_id(), |(_, s)| s)
    }
}

/// The root span context of a run started without trace context.
fn run_root(run_id: &str) -> SpanContext {
    let digest = Sha256::digest(format!("caisson-run-root:{run_id}").as_bytes());
    let trace: [u8; 16] = digest[..16].try_into().unwrap_or_default();
    let span: [u8; 8] = digest[16..24].try_into().unwrap_or_default();
    SpanContext::new(TraceId::from_bytes(trace), SpanId::from_bytes(span), TraceFlags::SAMPLED, false, TraceState::default())
}

/// The W3C context a `_tracer-data` header carries, if it carries one.
fn context_from(header: Option<&Payload>) -> Option<Context> {
    let carrier = bridge::payload_json(header?).ok()?;
    let traceparent = carrier.get("traceparent")?.as_str()?;
    let mut parts = traceparent.split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || parts.next().is_some() {
        return None;
    }
    let trace = TraceId::from_hex(trace).ok().filter(|t| *t != TraceId::INVALID)?;
    let span = SpanId::from_hex(span).ok().filter(|s| *s != SpanId::INVALID)?;
    let flags = TraceFlags::new(u8::from_str_radix(flags, 16).ok()?);
    let state = carrier.get("tracestate").and_then(|s| s.as_str()).and_then(|s| s.parse().ok()).unwrap_or_default();
    Some(Context::new().with_remote_span_context(SpanContext::new(trace, span, flags, true, state)))
}

/// A `_tracer-data` header naming `span` as the parent of what it reaches.
fn header_for(span: &SpanContext) -> Payload {
    let mut carrier = serde_json::json!({
        "traceparent": format!("00-{}-{}-{:02x}", span.trace_id(), span.span_id(), span.trace_flags().to_u8()),
    });
    let state = span.trace_state().header();
    if !state.is_empty() {
        carrier["tracestate"] = state.into();
    }
    bridge::json_payload(&carrier.to_string())
}

/// One workflow task's spans, from its activation to its completion.
pub struct WorkflowTask {
    run_id: String,
    run: RunTrace,
    replaying: bool,
    /// The task's span, current while the guest runs (its log lines
    /// become the span's events).
    task: Context,
    handlers: Vec<opentelemetry_sdk::trace::Span>,
}

impl WorkflowTask {
    /// Opens the task's spans; `None` when tracing is off or the
    /// activation only evicts the run.
    pub fn begin(activation: &WorkflowActivation, tenant: &str) -> Option<Self> {
        let traces = TRACES.get()?;
        let run_id = activation.run_id.clone();
        let jobs = || activation.jobs.iter().filter_map(|j| j.variant.as_ref());
        if jobs().any(|j| matches!(j, workflow_activation_job::Variant::RemoveFromCache(_))) {
            lock(&traces.runs).remove(&run_id);
            return None;
        }
        let replaying = activation.is_replaying;
        let init = jobs().find_map(|j| match j {
            workflow_activation_job::Variant::InitializeWorkflow(init) => Some(init),
            _ => None,
        });
        let run = match init {
            Some(init) => {
                let header = init.headers.get(HEADER).cloned();
                let mut run = RunTrace {
                    context: Context::new(),
                    header: header.clone(),
                    workflow_type: init.workflow_type.clone(),
                    workflow_id: init.workflow_id.clone(),
                };
                let attributes = run_attributes(&run, &run_id, tenant);
                let name = format!("RunWorkflow:{}", init.workflow_type);
                match context_from(header.as_ref()) {
                    // As the SDKs do: the run's spans are siblings under
                    // the starter's span.
                    Some(parent) => {
                        if !replaying {
                            traces
                                .tracer
                                .span_builder(name)
                                .with_kind(SpanKind::Server)
                                .with_attributes(attributes)
                                .start_with_context(&traces.tracer, &parent)
                                .end();
                        }
                        run.context = parent;
                    }
                    // No starter's span: the run's root is made (once) with
                    // ids every replay derives again.
                    None => {
                        let root = run_root(&run_id);
                        if !replaying {
                            NEXT_IDS.with(|n| n.set(Some((root.trace_id(), root.span_id()))));
                            traces
                                .tracer
                                .span_builder(name)
                                .with_kind(SpanKind::Server)
                                .with_attributes(attributes)
                                // A root whatever context is current: its
                                // trace id must be the derived one.
                                .start_with_context(&traces.tracer, &Context::new())
                                .end();
                            NEXT_IDS.with(|n| n.set(None));
                        }
                        run.context = Context::new().with_remote_span_context(root);
                    }
                }
                lock(&traces.runs).insert(run_id.clone(), run.clone());
                run
            }
            None => lock(&traces.runs).get(&run_id).cloned().unwrap_or_else(|| RunTrace {
                context: Context::new().with_remote_span_context(run_root(&run_id)),
                header: None,
                workflow_type: String::new(),
                workflow_id: String::new(),
            }),
        };
        let mut attributes = run_attributes(&run, &run_id, tenant);
        attributes.push(KeyValue::new("temporal.replaying", replaying));
        let task = traces
            .tracer
            .span_builder(format!("WorkflowTask:{}", run.workflow_type))
            .with_attributes(attributes.clone())
            .start_with_context(&traces.tracer, &run.context);
        let mut handlers = Vec::new();
        for job in jobs() {
            let (name, header, is_query) = match job {
                workflow_activation_job::Variant::SignalWorkflow(s) => {
                    (format!("HandleSignal:{}", s.signal_name), s.headers.get(HEADER), false)
                }
                workflow_activation_job::Variant::DoUpdate(u) => (format!("HandleUpdate:{}", u.name), u.headers.get(HEADER), false),
                workflow_activation_job::Variant::QueryWorkflow(q) => {
                    (format!("HandleQuery:{}", q.query_type), q.headers.get(HEADER), true)
                }
                _ => continue,
            };
            let sender = context_from(header);
            let builder = traces.tracer.span_builder(name).with_kind(SpanKind::Server).with_attributes(attributes.clone());
            let span = if is_query {
                // A query is answered by every worker that holds the run,
                // replay or not: it belongs to the querier's trace.
                builder.start_with_context(&traces.tracer, sender.as_ref().unwrap_or(&run.context))
            } else if replaying {
                continue;
            } else {
                let links = sender.iter().map(|s| Link::with_context(s.span().span_context().clone())).collect();
                builder.with_links(links).start_with_context(&traces.tracer, &run.context)
            };
            handlers.push(span);
        }
        Some(WorkflowTask { run_id, run, replaying, task: Context::new().with_span(task), handlers })
    }

    /// Makes the task's span current on this thread until the guard drops.
    pub fn attach(&self) -> impl Drop + use<> {
        self.task.clone().attach()
    }

    /// Closes the task's spans: names the plugin, records a failure, and
    /// writes the trace context into the headers of the commands that
    /// start work elsewhere.
    pub fn finish(self, completion: &mut WorkflowActivationCompletion, plugin: Option<(&str, &str)>) {
        let Some(traces) = TRACES.get() else { return };
        let task = self.task.span();
        if let Some((name, sha256)) = plugin {
            task.set_attributes([
                KeyValue::new("caisson.plugin", name.to_owned()),
                KeyValue::new("caisson.plugin.sha256", sha256.to_owned()),
            ]);
        }
        match &mut completion.status {
            Some(workflow_activation_completion::Status::Failed(failed)) => {
                let message = failed.failure.as_ref().map(|f| f.message.clone()).unwrap_or_default();
                task.add_event(
                    "exception",
                    vec![
                        KeyValue::new("exception.message", message.clone()),
                        KeyValue::new("exception.stacktrace", failed.failure.as_ref().map(|f| f.stack_trace.clone()).unwrap_or_default()),
                    ],
                );
                task.set_status(Status::error(message));
                lock(&traces.runs).remove(&self.run_id);
            }
            Some(workflow_activation_completion::Status::Successful(success)) => {
                for command in success.commands.iter_mut().filter_map(|c| c.variant.as_mut()) {
                    self.outgoing(traces, command);
                }
            }
            None => {}
        }
        let end = SystemTime::now();
        for mut handler in self.handlers {
            handler.end_with_timestamp(end);
        }
        task.end_with_timestamp(end);
    }

    /// One command's span and header.
    fn outgoing(&self, traces: &Traces, command: &mut workflow_command::Variant) {
        use workflow_command::Variant as C;
        let failure = match &*command {
            C::FailWorkflowExecution(f) => Some(f.failure.as_ref().map(|f| f.message.clone()).unwrap_or_default()),
            _ => None,
        };
        let (name, kind, headers) = match command {
            C::ScheduleActivity(a) => (format!("StartActivity:{}", a.activity_type), SpanKind::Client, Some(&mut a.headers)),
            C::ScheduleLocalActivity(a) => (format!("StartActivity:{}", a.activity_type), SpanKind::Client, Some(&mut a.headers)),
            C::StartChildWorkflowExecution(c) => {
                (format!("StartChildWorkflow:{}", c.workflow_type), SpanKind::Client, Some(&mut c.headers))
            }
            C::SignalExternalWorkflowExecution(s) => {
                (format!("SignalExternalWorkflow:{}", s.signal_name), SpanKind::Client, Some(&mut s.headers))
            }
            C::ContinueAsNewWorkflowExecution(c) => {
                // The next run carries on the trace that started this one.
                if let Some(header) = &self.run.header {
                    c.headers.entry(HEADER.to_owned()).or_insert_with(|| header.clone());
                }
                return;
            }
            C::CompleteWorkflowExecution(_) | C::CancelWorkflowExecution(_) | C::FailWorkflowExecution(_) => {
                (format!("CompleteWorkflow:{}", self.run.workflow_type), SpanKind::Internal, None)
            }
            _ => return,
        };
        // A replayed command was sent when it was first made; core does
        // not send it again, so neither its span nor its header matters.
        if self.replaying {
            return;
        }
        let mut span = traces
            .tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes([
                KeyValue::new("temporalWorkflowID", self.run.workflow_id.clone()),
                KeyValue::new("temporalRunID", self.run_id.clone()),
            ])
            .start_with_context(&traces.tracer, &self.run.context);
        if let Some(message) = failure {
            span.set_status(Status::error(message));
        }
        if let Some(headers) = headers {
            headers.insert(HEADER.to_owned(), header_for(span.span_context()));
        }
        span.end();
    }
}

/// Adds a guest's log line to the span current on this thread (the
/// workflow task's or the activity attempt's), as an event named by the
/// message with its level and fields.
pub fn guest_event(level: &str, message: String, fields: Vec<(&'static str, String)>) {
    if !enabled() {
        return;
    }
    Context::map_current(|cx| {
        let span = cx.span();
        if span.is_recording() {
            let mut attributes = vec![KeyValue::new("level", level.to_owned())];
            attributes.extend(fields.into_iter().map(|(k, v)| KeyValue::new(k, v)));
            span.add_event(message, attributes);
        }
    });
}

fn run_attributes(run: &RunTrace, run_id: &str, tenant: &str) -> Vec<KeyValue> {
    vec![
        KeyValue::new("temporalWorkflowID", run.workflow_id.clone()),
        KeyValue::new("temporalRunID", run_id.to_owned()),
        KeyValue::new("temporal.workflow.type", run.workflow_type.clone()),
        KeyValue::new("caisson.tenant", tenant.to_owned()),
    ]
}

/// One activity attempt's span.
pub struct ActivityAttempt {
    /// The attempt's span, current while the guest runs.
    span: Context,
}

impl ActivityAttempt {
    /// Opens `RunActivity:TYPE` under the scheduler's context; `None` when
    /// tracing is off.
    pub fn begin(start: &activity_task::Start, registry: &Registry, task_queue: &str) -> Option<Self> {
        let traces = TRACES.get()?;
        let (tenant, plugin) = (registry.tenant(), registry.activity(&start.activity_type));
        let execution = start.workflow_execution.clone().unwrap_or_default();
        let mut attributes = vec![
            KeyValue::new("temporalWorkflowID", execution.workflow_id),
            KeyValue::new("temporalRunID", execution.run_id),
            KeyValue::new("temporalActivityID", start.activity_id.clone()),
            KeyValue::new("temporal.activity.type", start.activity_type.clone()),
            KeyValue::new("temporal.activity.attempt", i64::from(start.attempt)),
            KeyValue::new("temporal.activity.local", start.is_local),
            KeyValue::new("temporal.task_queue", task_queue.to_owned()),
            KeyValue::new("caisson.tenant", tenant.to_owned()),
        ];
        if let Some(plugin) = plugin {
            attributes.push(KeyValue::new("caisson.plugin", plugin.name.to_string()));
            attributes.push(KeyValue::new("caisson.plugin.sha256", plugin.sha256.clone()));
        }
        let builder = traces
            .tracer
            .span_builder(format!("RunActivity:{}", start.activity_type))
            .with_kind(SpanKind::Server)
            .with_attributes(attributes);
        let span = match context_from(start.header_fields.get(HEADER)) {
            Some(parent) => builder.start_with_context(&traces.tracer, &parent),
            None => builder.start_with_context(&traces.tracer, &Context::new()),
        };
        Some(ActivityAttempt { span: Context::new().with_span(span) })
    }

    /// Runs `attempt` with the attempt's span current (its log lines
    /// become the span's events).
    pub fn instrument<F: std::future::Future>(&self, attempt: F) -> impl std::future::Future<Output = F::Output> {
        opentelemetry::context::FutureExt::with_context(attempt, self.span.clone())
    }

    /// Closes the span with the attempt's outcome.
    pub fn finish(self, outcome: &AttemptOutcome) {
        let span = self.span.span();
        match outcome {
            AttemptOutcome::Failed { message, error_type, non_retryable, .. } => {
                span.add_event(
                    "exception",
                    vec![
                        KeyValue::new("exception.type", error_type.clone()),
                        KeyValue::new("exception.message", message.clone()),
                        KeyValue::new("temporal.non_retryable", *non_retryable),
                    ],
                );
                span.set_status(Status::error(message.clone()));
            }
            AttemptOutcome::Cancelled => span.set_attribute(KeyValue::new("temporal.activity.cancelled", true)),
            _ => {}
        }
        span.end();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracer_header_round_trips() {
        let span = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let header = header_for(&span);
        assert_eq!(bridge::payload_json(&header).unwrap()["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let back = context_from(Some(&header)).unwrap();
        assert_eq!(back.span().span_context().trace_id(), span.trace_id());
        assert_eq!(back.span().span_context().span_id(), span.span_id());
        assert!(back.span().span_context().is_remote());
    }

    #[test]
    fn malformed_tracer_headers_are_ignored() {
        for carrier in [
            r#"{}"#,
            r#"{"traceparent": 7}"#,
            r#"{"traceparent": "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#,
            r#"{"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}"#,
            r#"{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"}"#,
            r#"{"traceparent": "00-xyz-00f067aa0ba902b7-01"}"#,
            r#"[1, 2]"#,
            r#"not json"#,
        ] {
            assert!(context_from(Some(&bridge::json_payload(carrier))).is_none(), "{carrier}");
        }
        assert!(context_from(None).is_none());
    }

    #[test]
    fn a_run_root_is_the_same_for_every_replay() {
        assert_eq!(run_root("run-1"), run_root("run-1"));
        assert_ne!(run_root("run-1").trace_id(), run_root("run-2").trace_id());
        assert!(run_root("run-1").is_valid());
    }

    #[test]
    fn the_export_is_resolved_from_the_manifest_then_the_environment() {
        let env =
            |vars: &'static [(&'static str, &'static str)]| move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        assert_eq!(OtlpExport::resolve(None, None, env(&[])).unwrap(), None);
        let e = OtlpExport::resolve(None, None, env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")])).unwrap().unwrap();
        assert_eq!((e.protocol, e.signal_url("traces")), (OtlpProtocol::Grpc, "http://127.0.0.1:4317/".to_owned()));
        let e = OtlpExport::resolve(
            Some("http://collector:4318/"),
            None,
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:1"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "a=1, b = 2"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(e.signal_url("traces"), "http://collector:4318/v1/traces");
        assert_eq!(e.headers, HashMap::from([("a".to_owned(), "1".to_owned()), ("b".to_owned(), "2".to_owned())]));
        let err = OtlpExport::resolve(None, None, env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317")])).unwrap_err();
        assert!(err.to_string().contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{err}");
        let err = OtlpExport::resolve(Some("http://c:1"), None, env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")])).unwrap_err();
        assert!(err.to_string().contains("http/protobuf"), "{err}");
        let err = OtlpExport::resolve(Some("http://c:1"), None, env(&[("OTEL_EXPORTER_OTLP_HEADERS", "novalue")])).unwrap_err();
        assert!(err.to_string().contains("key=value"), "{err}");
    }
}
