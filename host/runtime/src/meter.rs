//! What the runtimes report about each plugin's work, without knowing
//! where it goes: the worker crate records it as Prometheus metrics
//! through Temporal core's meter; replay, tests and benches record
//! nothing. A trait here (rather than the worker's metrics type) keeps
//! the runtime free of Temporal's crates and the dependency one-way.

use std::sync::Arc;
use std::time::Duration;

/// Receives one plugin's figures. Calls are cheap and never fail.
pub trait PluginMeter: Send + Sync {
    /// One workflow activation ran; `fuel` units were consumed.
    fn workflow_task(&self, failed: bool, fuel: u64);
    /// One activity attempt ended.
    fn activity_task(&self, failed: bool);
    /// An instance was created in `took`.
    fn instantiated(&self, took: Duration);
}

/// Records nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unmetered;

impl PluginMeter for Unmetered {
    fn workflow_task(&self, _failed: bool, _fuel: u64) {}
    fn activity_task(&self, _failed: bool) {}
    fn instantiated(&self, _took: Duration) {}
}

/// A shared meter, as plugins hold it.
pub type SharedMeter = Arc<dyn PluginMeter>;

/// The meter that records nothing.
pub fn unmetered() -> SharedMeter {
    Arc::new(Unmetered)
}
