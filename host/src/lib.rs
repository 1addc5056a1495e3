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
//! * [`check`]: the `caisson check` report.
#![warn(missing_docs)]

pub mod check;
pub mod engine;
pub mod inspect;
pub mod manifest;
pub mod payload;
pub mod plugin;
pub mod policy;
