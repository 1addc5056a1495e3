//! Caisson: a Temporal worker whose workflows and activities are
//! WebAssembly components.
//!
//! The host is three crates along its boundaries:
//!
//! * `caisson-runtime` (`host/runtime`): the sandbox. Engines and the
//!   compile cache, plugin loading and inspection, the determinism
//!   policy, JSON↔WIT payloads, the workflow and activity runtimes. It
//!   knows no Temporal crate.
//! * `caisson-worker` (`host/worker`): Temporal. The proto bridge, the
//!   sdk-core worker lifecycle, replay, the registry and watched folders,
//!   tenants, metrics.
//! * `caisson` (this crate): the command line, the embedded dev server,
//!   `caisson check` and the example set of `caisson dev`.
//!
//! The modules of the first two are re-exported here under their old
//! paths (`caisson::workflow`, `caisson::worker`, ...), so tests, benches
//! and embedders name one crate.
#![warn(missing_docs)]

pub use caisson_runtime::{
    activity, codec, compile_cache, engine, guest_log, inspect, loader, memory_budget, meter, payload, plugin, policy, settings, workflow,
};
pub use caisson_worker::{bridge, manifest, metrics, registry, replay, tenant, traces, versioning, watch, worker};

pub mod build;
pub mod check;
pub mod codec_server;
pub mod dev_examples;
pub mod devserver;
pub mod embedded;
pub mod logging;
pub mod scaffold;
