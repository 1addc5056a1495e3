//! Payload codecs: a WebAssembly component (world `caisson:codec/codec`)
//! that encodes the payloads a worker sends and decodes the ones it
//! receives, as every Temporal SDK's `PayloadCodec` does (encryption,
//! compression).
//!
//! A codec is compiled and pre-linked once, when its tenant starts; each
//! call runs in a fresh instance on an engine of its own (not the
//! activity pool: codec calls come from workflow activation threads and
//! activity attempts at once, and must never take a slot an attempt
//! needs). Calls are synchronous and bounded by a wall-clock deadline and
//! a memory limit: a codec cannot wait on anything, and one that traps,
//! errs or returns the wrong number of payloads yields a [`CodecError`]
//! naming it, which fails the task at hand, never the worker.
//!
//! What a codec may reach is denied by default, as for activities: WASI
//! with no directories, no network, and only the variables of its
//! `[codec]` table (`env`, and `secrets` copied from the worker's
//! environment at start).

use crate::compile_cache::ComponentCache;
use crate::engine::{self, EPOCH_TICK, EngineOptions};
use crate::guest_log::LineLog;
use crate::policy::PluginKind;
use crate::settings::CodecSettings;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wasmtime::component::{ComponentExportIndex, ComponentType, InstancePre, Lift, Linker, Lower, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The interface a codec exports; any patch release of 0.1 serves.
const EXPORT: &str = "caisson:codec/payload-codec@0.1.";
/// Linear memory per call when the settings name none.
const DEFAULT_MEMORY_MB: u64 = 128;
/// Wall-clock limit per call when the settings name none: a workflow
/// task waits for its codec calls.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A payload as a codec sees it (`caisson:codec/types.payload`).
#[derive(Debug, Clone, Default, PartialEq, Eq, ComponentType, Lift, Lower)]
#[component(record)]
pub struct Payload {
    /// Metadata entries (Temporal's `map<string, bytes>`).
    pub metadata: Vec<(String, Vec<u8>)>,
    /// The payload's bytes.
    pub data: Vec<u8>,
}

/// Which way a call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Payloads the worker sends.
    Encode,
    /// Payloads the worker receives.
    Decode,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::Encode => "encode",
            Operation::Decode => "decode",
        })
    }
}

/// Why a codec could not be loaded or a call failed. Each names the codec
/// (its file) and the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The codec cannot be used: the worker must not start with it.
    #[error("codec {}: {message}", path.display())]
    Load {
        /// The component file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// One call failed (the codec's error, a trap, a limit, a wrong count).
    #[error("codec {codec}: {operation} failed: {message}")]
    Call {
        /// The component file.
        codec: String,
        /// Encode or decode.
        operation: Operation,
        /// The codec's message or what went wrong.
        message: String,
    },
}

/// The store data of one codec call.
struct CodecHost {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for CodecHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// A loaded codec, ready to call from any thread.
pub struct Codec {
    name: String,
    pre: InstancePre<CodecHost>,
    encode: ComponentExportIndex,
    decode: ComponentExportIndex,
    /// `env` and the secrets' values, read once at load.
    env: Vec<(String, String)>,
    memory_bytes: usize,
    timeout: Duration,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec").field("name", &self.name).field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

/// The engine every codec runs on: the activity engine's settings,
/// instances allocated on demand, with its own epoch ticker.
fn codec_engine() -> Result<&'static Engine, String> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let engine = engine::build_engine(PluginKind::Activity, &EngineOptions::default()).map_err(|e| e.to_string())?;
            engine::start_epoch_ticker(&[&engine]);
            Ok(engine)
        })
        .as_ref()
        .map_err(Clone::clone)
}

impl Codec {
    /// Reads, compiles (through `cache`) and pre-links the codec
    /// `settings` names, then calls `encode` with no payloads once, so
    /// that a codec whose configuration is wrong (its key) is refused
    /// now, with its own message, rather than failing every task.
    pub fn load(settings: &CodecSettings, cache: &ComponentCache) -> Result<Self, CodecError> {
        let path = &settings.path;
        let refuse = |message: String| CodecError::Load { path: path.clone(), message };
        let mut env: Vec<(String, String)> = settings.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for name in &settings.secrets {
            let value = std::env::var(name).map_err(|_| refuse(format!("secret `{name}` is not set in the worker's environment")))?;
            env.push((name.clone(), value));
        }
        let bytes = std::fs::read(path).map_err(|e| refuse(format!("cannot read: {e}")))?;
        let engine = codec_engine().map_err(refuse)?;
        let name = crate::plugin::plugin_name(path);
        let compiled = cache.load(engine, &bytes, &name).map_err(|e| refuse(format!("not a WebAssembly component: {e}")))?;
        let component = &compiled.component;
        let (Some(encode), Some(decode)) = (
            crate::plugin::interface_export(component, engine, EXPORT, "encode"),
            crate::plugin::interface_export(component, engine, EXPORT, "decode"),
        ) else {
            return Err(refuse(
                "not a codec component: it does not export caisson:codec/payload-codec@0.1.x (build it for the world \
                 caisson:codec/codec, see wit/codec)"
                    .into(),
            ));
        };
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| refuse(format!("cannot set up its linker: {e:#}")))?;
        let pre = linker
            .instantiate_pre(component)
            .map_err(|e| refuse(format!("imports what a codec is not given (only WASI is linked): {e:#}")))?;
        let codec = Codec {
            name: path.display().to_string(),
            pre,
            encode,
            decode,
            env,
            memory_bytes: crate::settings::mib_to_bytes(settings.memory_mb.unwrap_or(DEFAULT_MEMORY_MB)),
            timeout: settings.timeout.unwrap_or(DEFAULT_TIMEOUT),
        };
        codec.encode(Vec::new()).map_err(|e| match e {
            CodecError::Call { message, .. } => refuse(format!("refused its configuration: {message}")),
            load => load,
        })?;
        Ok(codec)
    }

    /// The codec's name in messages: its file.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Encodes payloads; exactly one out for each in.
    pub fn encode(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, CodecError> {
        self.call(Operation::Encode, payloads)
    }

    /// Decodes payloads; exactly one out for each in.
    pub fn decode(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, CodecError> {
        self.call(Operation::Decode, payloads)
    }

    fn call(&self, operation: Operation, payloads: Vec<Payload>) -> Result<Vec<Payload>, CodecError> {
        let fail = |message: String| CodecError::Call { codec: self.name.clone(), operation, message };
        let expected = payloads.len();
        let mut wasi = WasiCtx::builder();
        for (k, v) in &self.env {
            wasi.env(k, v);
        }
        let name: Arc<str> = self.name.as_str().into();
        let (out, err) = (name.clone(), name);
        wasi.stdout(LineLog::new(Arc::new(move |line: &str| tracing::info!(codec = &*out, "{line}"))))
            .stderr(LineLog::new(Arc::new(move |line: &str| tracing::warn!(codec = &*err, "{line}"))));
        let host = CodecHost {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new().memory_size(self.memory_bytes).build(),
        };
        let mut store = Store::new(self.pre.engine(), host);
        store.limiter(|h| &mut h.limits);
        let ticks = u64::try_from(self.timeout.as_millis() / EPOCH_TICK.as_millis()).unwrap_or(u64::MAX).max(1);
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        let export = match operation {
            Operation::Encode => self.encode,
            Operation::Decode => self.decode,
        };
        let call = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            let func = instance.get_typed_func::<(Vec<Payload>,), (Result<Vec<Payload>, String>,)>(&mut store, export)?;
            let (result,) = func.call_async(&mut store, (payloads,)).await?;
            Ok::<_, wasmtime::Error>(result)
        };
        match poll_once(call) {
            None => Err(fail("it blocked (a codec may not wait on anything)".into())),
            Some(Err(e)) => Err(fail(self.describe_trap(&e))),
            Some(Ok(Err(message))) => Err(fail(message)),
            Some(Ok(Ok(out))) if out.len() != expected => {
                Err(fail(format!("it returned {} payload(s) for {expected}: a codec returns one for each", out.len())))
            }
            Some(Ok(Ok(out))) => Ok(out),
        }
    }

    fn describe_trap(&self, e: &wasmtime::Error) -> String {
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => format!("it ran past its timeout of {:?}", self.timeout),
            Some(Trap::UnreachableCodeReached) => format!("it panicked or hit `unreachable`: {}", e.root_cause()),
            Some(t) => format!("it trapped: {t}"),
            None if e.root_cause().to_string().contains("memory") => {
                format!("it exceeded its memory limit of {} MiB: {}", self.memory_bytes >> 20, e.root_cause())
            }
            None => format!("{:#}", e),
        }
    }
}

/// Runs a future that never waits (a guest call with traps for deadlines)
/// to completion on this thread; `None` if it did wait.
fn poll_once<F: std::future::Future>(future: F) -> Option<F::Output> {
    use std::task::{Context, Poll, Waker};
    match std::pin::pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}
