//! The Caisson worker: Temporal on one side, the Caisson runtime on the
//! other.
//!
//! This crate owns the conversation with Temporal (through sdk-core) and
//! the plugins' lifecycle in a running worker. It drives
//! `caisson-runtime` but never reaches into wasmtime itself beyond the
//! runtime's types; all protobuf translation happens in [`bridge`].
//!
//! * [`manifest`]: the worker manifest (connection, tuning, tenants, plugins).
//! * [`bridge`]: Temporal core's protos ↔ the runtimes (the only translation point).
//! * [`codec`]: a tenant's payload codec applied to every payload of activations, tasks and completions.
//! * [`worker`]: sdk-core lifecycle: connect, poll, complete, shut down.
//! * [`activation_thread`]: where a workflow activation runs, so a runaway delays no other run.
//! * [`registry`]: the plugins a worker serves, by type (and live, swapped as folders change).
//! * [`watch`]: watched plugin folders: drop-in add, replace, remove.
//! * [`tenant`]: what a tenant's plugins may be granted.
//! * [`metrics`]: per-plugin counters beside core's Prometheus metrics.
//! * [`versioning`]: plugin sets as Temporal worker deployment versions (pinned runs, draining).
//! * [`replay`]: recorded histories through core's replay worker.
#![warn(missing_docs)]

pub mod activation_thread;
pub mod bridge;
pub mod codec;
mod history_json;
pub mod manifest;
pub mod metrics;
pub mod registry;
pub mod replay;
pub mod tenant;
pub mod traces;
pub mod versioning;
pub mod watch;
pub mod worker;
