//! The worker-wide memory budget (`[worker] memory_budget_mb`).
//!
//! Per-plugin `memory_mb` bounds one instance; nothing bounded their sum,
//! so eight activities allocating 900 MB each took a worker to 4.8 GB RSS.
//! Every instance's linear memory now reserves its size from one shared
//! counter as it grows (wasmtime asks the store's limiter before creating
//! or growing a memory), and gives it back when the store is dropped. A
//! growth the budget cannot cover fails at once with
//! [`MemoryBudgetExhausted`]: an activity attempt then fails retryably
//! (Temporal retries it when memory may have freed up), a workflow task
//! fails and Temporal retries it. Waiting instead could deadlock: every
//! instance holding part of the budget, each waiting for more.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A growth the worker-wide budget cannot cover.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the worker's memory budget is used up: growing linear memory by {} MiB would pass [worker] memory_budget_mb = {} \
     ({} MiB are held by running instances); retryable: it succeeds once other instances finish (or raise memory_budget_mb)",
    wanted >> 20, limit >> 20, held >> 20
)]
pub struct MemoryBudgetExhausted {
    /// Bytes the growth asked for.
    pub wanted: u64,
    /// Bytes held by all instances at the time.
    pub held: u64,
    /// The budget, in bytes.
    pub limit: u64,
}

/// A growth past the plugin's own `memory_mb` ceiling: the instance traps
/// with this (never the host), so the attempt or workflow task fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "exceeded its memory limit of {} MiB (growing linear memory to {} MiB); raise `memory_mb` in the plugin's manifest if it needs more",
    limit >> 20, desired.div_ceil(1 << 20)
)]
pub struct MemoryLimitExceeded {
    /// Bytes the memory would have grown to.
    pub desired: usize,
    /// The plugin's ceiling, in bytes.
    pub limit: usize,
}

/// Bytes of linear memory all instances of a worker may hold together.
/// Cloning shares the counter.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    inner: Arc<Counter>,
}

#[derive(Debug)]
struct Counter {
    limit: u64,
    held: AtomicU64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        MemoryBudget { inner: Arc::new(Counter { limit, held: AtomicU64::new(0) }) }
    }

    /// No worker-wide limit (one-off tools, tests).
    pub fn unlimited() -> Self {
        MemoryBudget::new(u64::MAX)
    }

    /// The default budget: 75% of the memory this process may use, i.e.
    /// the cgroup's `memory.max` when one is set, else `MemTotal` from
    /// /proc/meminfo. The quarter left is for the host itself (sdk-core,
    /// compiled code, the workflow cache's bookkeeping, page cache), so the
    /// budget running out fails an attempt before the kernel's OOM killer
    /// takes the whole worker. `None` when neither can be read.
    pub fn machine_default_bytes() -> Option<u64> {
        let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok().and_then(|s| s.trim().parse::<u64>().ok());
        let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("MemTotal:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
        let available = match (cgroup, total.map(|kib| kib << 10)) {
            (Some(c), Some(t)) => Some(c.min(t)),
            (c, t) => c.or(t),
        };
        available.map(|bytes| bytes / 4 * 3)
    }

    /// The budget `[worker] memory_budget_mb` asks for, else the
    /// machine's default, else none. 0 is refused with the fix.
    pub fn from_setting(memory_budget_mb: Option<u64>) -> Result<Self, String> {
        match memory_budget_mb {
            Some(0) => Err("[worker] memory_budget_mb = 0: no instance could start. Fix: a number of MiB, e.g. 4096, or remove it \
                            for 75% of the machine's memory"
                .into()),
            Some(mb) => Ok(MemoryBudget::new(mb.saturating_mul(1 << 20))),
            None => Ok(MemoryBudget::machine_default_bytes().map_or_else(MemoryBudget::unlimited, MemoryBudget::new)),
        }
    }

    /// The budget, in bytes.
    pub fn limit(&self) -> u64 {
        self.inner.limit
    }

    /// Bytes held by live instances now.
    pub fn held(&self) -> u64 {
        self.inner.held.load(Ordering::Relaxed)
    }

    fn try_reserve(&self, bytes: u64) -> Result<(), MemoryBudgetExhausted> {
        let counter = &self.inner;
        counter
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| held.checked_add(bytes).filter(|&total| total <= counter.limit))
            .map(drop)
            .map_err(|held| MemoryBudgetExhausted { wanted: bytes, held, limit: counter.limit })
    }

    fn release(&self, bytes: u64) {
        self.inner.held.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// A store's limiter: the plugin's own `memory_mb` ceiling, then the
/// worker's budget. What it reserved is released when the store (and so
/// this) is dropped.
#[derive(Debug)]
pub struct BudgetedLimits {
    max_memory: Option<usize>,
    budget: MemoryBudget,
    reserved: u64,
}

impl BudgetedLimits {
    /// Limits for one instance: at most `max_memory` bytes per memory (the
    /// plugin's `memory_mb`), all memories within `budget`.
    pub fn new(max_memory: Option<usize>, budget: MemoryBudget) -> Self {
        BudgetedLimits { max_memory, budget, reserved: 0 }
    }
}

impl wasmtime::ResourceLimiter for BudgetedLimits {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if let Some(max) = self.max_memory
            && desired > max
        {
            return Err(MemoryLimitExceeded { desired, limit: max }.into());
        }
        let delta = desired.saturating_sub(current) as u64;
        self.budget.try_reserve(delta)?;
        self.reserved += delta;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, _desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

impl Drop for BudgetedLimits {
    fn drop(&mut self) {
        self.budget.release(self.reserved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn instances_share_the_budget_and_give_it_back_when_dropped() {
        let budget = MemoryBudget::new(100 << 20);
        let mut a = BudgetedLimits::new(None, budget.clone());
        let mut b = BudgetedLimits::new(None, budget.clone());
        assert!(a.memory_growing(0, 60 << 20, None).unwrap());
        let err = b.memory_growing(0, 60 << 20, None).unwrap_err();
        let exhausted = err.downcast_ref::<MemoryBudgetExhausted>().unwrap();
        assert_eq!((exhausted.wanted, exhausted.held, exhausted.limit), (60 << 20, 60 << 20, 100 << 20));
        assert!(err.to_string().contains("memory_budget_mb = 100"), "{err}");
        drop(a);
        assert_eq!(budget.held(), 0);
        assert!(b.memory_growing(0, 60 << 20, None).unwrap());
        assert!(b.memory_growing(60 << 20, 100 << 20, None).unwrap(), "growth reserves the difference");
        assert_eq!(budget.held(), 100 << 20);
    }

    #[test]
    fn the_plugin_ceiling_comes_first() {
        let budget = MemoryBudget::new(1 << 30);
        let mut limits = BudgetedLimits::new(Some(1 << 20), budget.clone());
        let err = limits.memory_growing(0, 2 << 20, None).unwrap_err();
        let exceeded = err.downcast_ref::<MemoryLimitExceeded>().unwrap();
        assert_eq!((exceeded.desired, exceeded.limit), (2 << 20, 1 << 20));
        assert!(
            err.to_string().contains("exceeded its memory limit of 1 MiB (growing linear memory to 2 MiB); raise `memory_mb`"),
            "{err}"
        );
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn the_default_is_three_quarters_of_the_machine() {
        let bytes = MemoryBudget::machine_default_bytes().unwrap();
        assert!(bytes > 0);
    }
}
