//! The Caisson runtime: WebAssembly workflow and activity components,
//! run by wasmtime, in Caisson's own terms.
//!
//! This crate owns everything that happens inside the sandbox and at its
//! edge, and knows nothing of Temporal's protos, client or core: it must
//! not depend on any `temporalio-*` crate (CI checks it with `cargo tree`).
//! The worker crate (`caisson-worker`) translates between Temporal's
//! activations and this crate's [`workflow::Activation`] and
//! [`workflow::state::Command`], and between activity tasks and
//! [`activity::Attempt`]. Because of that boundary the runtime can be
//! tested without a server: jobs in, commands out.
//!
//! One concern per module:
//!
//! * [`settings`]: a plugin's grants and limits (`[[plugin]]` / `NAME.toml`).
//! * [`policy`]: which imports a workflow may have (determinism).
//! * [`inspect`]: reading a component's imports and exported functions.
//! * [`engine`]: wasmtime engines and the sizing of their instance pools.
//! * [`compile_cache`]: the verified on-disk cache of compiled components.
//! * [`payload`]: Temporal JSON payloads ↔ WIT values, by signature.
//! * [`plugin`]: a plugin read from disk, judged and compiled.
//! * [`memory_budget`]: the worker-wide budget instances reserve memory from.
//! * [`loader`]: plugins compiled and pre-linked, ready to serve.
//! * [`workflow`]: the workflow runtime (activations in, commands out).
//! * [`activity`]: the activity runtime (one sandboxed instance per attempt).
//! * [`codec`]: payload codec components (encode/decode of payloads, e.g. encryption).
//! * [`guest_log`]: guest stdout/stderr as tagged log lines.
//! * [`meter`]: how the runtimes report figures to whoever records them.
#![warn(missing_docs)]

pub mod activity;
pub mod codec;
pub mod compile_cache;
pub mod engine;
pub mod guest_log;
pub mod inspect;
pub mod loader;
pub mod memory_budget;
pub mod meter;
pub mod payload;
pub mod plugin;
pub mod policy;
pub mod settings;
pub mod workflow;
