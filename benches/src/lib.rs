//! Benchmarks live in `benches/`; see README.md. The library holds what
//! they share: the native Temporal Rust SDK reference workflow.

pub mod native;
