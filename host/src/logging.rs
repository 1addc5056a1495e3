//! The worker's log: human text or one JSON object per line, and one line
//! per failed workflow task.
//!
//! Core logs every workflow task it fails at WARN with the whole failure
//! proto (`Failing workflow task`, `failure=Failure { ... }`), right after
//! Caisson's own line for the same failure names the plugin, the workflow
//! and the cause. That dump is left out: it says nothing Caisson's line
//! does not, and doubled every failure in the log.

use tracing::Metadata;
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer as _, fmt};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (colored on a terminal).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `message`, and each
    /// field (`tenant`, `plugin`, `workflow_id`, `run_id`, ...) as a key.
    Json,
}

/// Core's own dump of a workflow task failure that Caisson has already
/// logged: a WARN of `temporalio_sdk_core`'s workflow module carrying a
/// `failure` field.
pub fn is_core_failure_dump(meta: &Metadata<'_>) -> bool {
    meta.is_event()
        && *meta.level() == tracing::Level::WARN
        && meta.target().starts_with("temporalio_sdk_core::worker::workflow")
        && meta.fields().field("failure").is_some()
}

/// Turns guest log lines (targets `workflow` and `activity`) into events
/// of the span current where they are logged: the workflow task's or the
/// activity attempt's, when traces are exported.
struct GuestLogEvents;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for GuestLogEvents {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let meta = event.metadata();
        if !matches!(meta.target(), "workflow" | "activity") || !caisson_worker::traces::enabled() {
            return;
        }
        #[derive(Default)]
        struct Fields {
            message: String,
            fields: Vec<(&'static str, String)>,
        }
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                match field.name() {
                    "message" => self.message = format!("{value:?}"),
                    name => self.fields.push((name, format!("{value:?}"))),
                }
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                match field.name() {
                    "message" => self.message = value.to_owned(),
                    name => self.fields.push((name, value.to_owned())),
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        caisson_worker::traces::guest_event(meta.level().as_str(), fields.message, fields.fields);
    }
}

/// Installs the global subscriber: `CAISSON_LOG` (an `EnvFilter`
/// directive) or `default_filter` chooses what is logged.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = EnvFilter::try_from_env("CAISSON_LOG").unwrap_or_else(|_| default_filter.into());
    let fold = filter_fn(|meta| !is_core_failure_dump(meta));
    let registry = tracing_subscriber::registry().with(filter).with(GuestLogEvents);
    match format {
        LogFormat::Text => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            registry.with(fmt::layer().with_writer(std::io::stderr).with_ansi(ansi).with_target(false).with_filter(fold)).init();
        }
        LogFormat::Json => {
            let layer = fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_filter(fold);
            registry.with(layer).init();
        }
    }
}
