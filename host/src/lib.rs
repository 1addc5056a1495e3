//! Caisson: a Temporal worker whose workflows and activities are
//! WebAssembly components.
//!
//! The crate is organised one concern per module:
//!
//! * [`manifest`]: the worker manifest and each plugin's grants.
//! * [`policy`]: which imports a workflow may have (determinism).
//! * [`inspect`]: reading a component's imports and exported functions.
//! * [`engine`]: wasmtime engines and the compiled-component cache.
//! * [`payload`]: Temporal JSON payloads ↔ WIT values, by signature.
//! * [`plugin`]: a plugin read from disk, judged and compiled.
//! * [`workflow`]: the workflow runtime (activations in, commands out).
//! * [`activity`]: the activity runtime (one sandboxed instance per attempt).
//! * [`guest_log`]: guest stdout/stderr as tagged log lines.
//! * [`bridge`]: Temporal core's protos ↔ the runtimes (the only translation point).
//! * [`registry`]: the plugins a worker serves, by type (and live, swapped as folders change).
//! * [`watch`]: watched plugin folders: drop-in add, replace, remove.
//! * [`tenant`]: what a tenant's plugins may be granted.
//! * [`metrics`]: per-plugin counters beside core's Prometheus metrics.
//! * [`replay`]: recorded histories through core's replay worker.
//! * [`worker`]: sdk-core lifecycle: connect, poll, complete, shut down.
//! * [`devserver`]: the embedded Temporal dev server of `caisson dev`.
//! * [`check`]: the `caisson check` report.
//! * [`dev_examples`]: the example set `caisson dev` runs by default.
#![warn(missing_docs)]

pub mod activity;
pub mod bridge;
pub mod check;
pub mod dev_examples;
pub mod devserver;
pub mod engine;
pub mod guest_log;
pub mod inspect;
pub mod manifest;
pub mod metrics;
pub mod payload;
pub mod plugin;
pub mod policy;
pub mod registry;
pub mod replay;
pub mod tenant;
pub mod watch;
pub mod worker;
pub mod workflow;
