//! An OpenTelemetry collector for tests: it takes OTLP exports over gRPC
//! or over HTTP (protobuf bodies), as a real collector does, and keeps
//! the spans and the names of the metrics it was sent.
#![allow(dead_code)]

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{MetricsService, MetricsServiceServer};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message as _;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A span as the collector received it (ids in lowercase hex).
#[derive(Debug, Clone)]
pub struct Span {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    /// String, bool and int attributes, as text.
    pub attributes: BTreeMap<String, String>,
    /// Span ids of the spans it links to.
    pub links: Vec<String>,
    /// Names of its events (a guest's log lines, `exception`).
    pub events: Vec<String>,
    /// `true` when its status is ERROR.
    pub error: bool,
    pub status_message: String,
    /// The resource's `service.name`.
    pub service: String,
}

#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    metrics: Vec<String>,
}

/// A collector listening on 127.0.0.1 until dropped.
pub struct Collector {
    received: Arc<Mutex<Received>>,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Collector {
    /// One taking OTLP over gRPC.
    pub fn grpc() -> Collector {
        Self::start(|listener, received, stop| {
            Box::pin(async move {
                let incoming = tokio_stream_of(listener);
                let _ = tonic::transport::Server::builder()
                    .add_service(TraceServiceServer::new(Sink(received.clone())))
                    .add_service(MetricsServiceServer::new(Sink(received)))
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = stop.await;
                    })
                    .await;
            })
        })
    }

    /// One taking OTLP over HTTP (`POST /v1/traces`, `POST /v1/metrics`).
    pub fn http() -> Collector {
        Self::start(|listener, received, mut stop| {
            Box::pin(async move {
                loop {
                    let stream = tokio::select! {
                        accepted = listener.accept() => match accepted { Ok((s, _)) => s, Err(_) => continue },
                        _ = &mut stop => return,
                    };
                    let received = received.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request| http_export(request, received.clone()));
                        let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                    });
                }
            })
        })
    }

    fn start(
        serve: impl FnOnce(
            tokio::net::TcpListener,
            Arc<Mutex<Received>>,
            tokio::sync::oneshot::Receiver<()>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + 'static,
    ) -> Collector {
        let received = Arc::<Mutex<Received>>::default();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (bound, address) = std::sync::mpsc::channel();
        let sink = received.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                bound.send(listener.local_addr().unwrap()).unwrap();
                serve(listener, sink, stopped).await;
            });
        });
        let address = address.recv().unwrap();
        Collector { received, endpoint: format!("http://{address}"), stop: Some(stop) }
    }

    /// The spans received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.received.lock().unwrap().spans.clone()
    }

    /// Names of the metrics received so far.
    pub fn metrics(&self) -> Vec<String> {
        self.received.lock().unwrap().metrics.clone()
    }

    /// Waits until `done(spans)` holds; the spans then.
    pub fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let started = Instant::now();
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            assert!(started.elapsed() < timeout, "the collector did not receive {what} within {timeout:?}; it has: {:#?}", names(&spans));
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The names of `spans`, for messages.
pub fn names(spans: &[Span]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}

fn tokio_stream_of(listener: tokio::net::TcpListener) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(s, _)| s);
        Some((accepted, listener))
    })
}

#[derive(Clone)]
struct Sink(Arc<Mutex<Received>>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        keep_spans(&self.0, request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        keep_metrics(&self.0, request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

async fn http_export(request: Request<Incoming>, received: Arc<Mutex<Received>>) -> Result<Response<String>, std::convert::Infallible> {
    use http_body_util::BodyExt as _;
    let path = request.uri().path().to_owned();
    let body = match request.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(Response::builder().status(400).body(e.to_string()).unwrap()),
    };
    let kept = match path.as_str() {
        "/v1/traces" => ExportTraceServiceRequest::decode(body).map(|r| keep_spans(&received, r)),
        "/v1/metrics" => ExportMetricsServiceRequest::decode(body).map(|r| keep_metrics(&received, r)),
        _ => return Ok(Response::builder().status(404).body(String::new()).unwrap()),
    };
    Ok(match kept {
        Ok(()) => Response::new(String::new()),
        Err(e) => Response::builder().status(400).body(e.to_string()).unwrap(),
    })
}

fn text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn keep_spans(received: &Mutex<Received>, request: ExportTraceServiceRequest) {
    let mut received = received.lock().unwrap();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .map(|a| text(a.value.as_ref()))
            .unwrap_or_default();
        for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
            let status = span.status.unwrap_or_default();
            received.spans.push(Span {
                name: span.name,
                trace_id: hex::encode(span.trace_id),
                span_id: hex::encode(span.span_id),
                parent_span_id: hex::encode(span.parent_span_id),
                attributes: span.attributes.iter().map(|a| (a.key.clone(), text(a.value.as_ref()))).collect(),
                links: span.links.iter().map(|l| hex::encode(&l.span_id)).collect(),
                events: span.events.iter().map(|e| e.name.clone()).collect(),
                error: status.code == 2,
                status_message: status.message,
                service: service.clone(),
            });
        }
    }
}

fn keep_metrics(received: &Mutex<Received>, request: ExportMetricsServiceRequest) {
    let mut received = received.lock().unwrap();
    for metric in request.resource_metrics.into_iter().flat_map(|r| r.scope_metrics).flat_map(|s| s.metrics) {
        received.metrics.push(metric.name);
    }
}
