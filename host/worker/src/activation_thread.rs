//! Where a workflow activation runs: on its own OS thread, demoted to the
//! lowest CPU priority once it has run for [`DEMOTE_AFTER`].
//!
//! A guest runs synchronously until it reaches `wait` or exhausts its fuel
//! (the default 2e9 units are about a second of CPU). Giving each
//! activation its own thread lets the kernel time-slice runs against each
//! other, so one runaway no longer holds up the runs queued behind it; but
//! with more runaways than CPUs, fair time-slicing alone would still hand
//! most of the machine to them (and starve the worker's own tokio threads,
//! which poll and complete tasks). Demoting a long activation to nice 19
//! makes the kernel run every normal-priority thread first: healthy
//! activations, the worker's network threads, the Temporal server on the
//! same host. A demoted activation still runs whenever a CPU is idle, and
//! still stops at its fuel budget or the activation's wall-clock backstop,
//! whichever comes first (on a busy machine, usually the wall clock: 40
//! demoted runaways on 2 CPUs each get far less than a second of CPU in
//! it).
//!
//! The thread ends with its activation, so a demoted priority never
//! carries over to other work (an unprivileged process may lower a
//! thread's priority but not raise it back).

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long an activation runs at normal priority before it is demoted.
/// Healthy activations take microseconds to a few milliseconds (replaying
/// a long history on a cache miss, tens of milliseconds); a runaway's
/// fuel budget lasts about a second.
pub const DEMOTE_AFTER: Duration = Duration::from_millis(50);

/// The nice value of a demoted activation (the lowest priority: weight 15
/// against 1024 for nice 0 in Linux's fair scheduler).
const DEMOTED_NICE: i32 = 19;

/// Why an activation produced no result.
#[derive(Debug, thiserror::Error)]
pub enum ActivationThreadError {
    /// The OS refused a new thread.
    #[error(
        "cannot start a thread for a workflow activation ({0}); raise the process's thread limit (ulimit -u) or lower max_cached_workflows"
    )]
    Spawn(std::io::Error),
    /// The activation panicked (its message went to the panic hook).
    #[error("the worker panicked while running this workflow activation (a bug in Caisson: please report it with the worker's log)")]
    Panicked,
}

/// Where the activation's thread is, as the watchdog sees it.
enum Slot {
    /// Spawned, not yet running.
    Starting,
    /// Running as this thread.
    Running(rustix::thread::Pid),
    /// Finished: the thread id may already belong to another thread.
    Done,
}

/// Runs `work` on a new thread, demoting it if it is still running after
/// [`DEMOTE_AFTER`]; resolves to its result.
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ActivationThreadError> {
    let slot = Arc::new(Mutex::new(Slot::Starting));
    let (done, result) = tokio::sync::oneshot::channel();
    let thread_slot = slot.clone();
    std::thread::Builder::new()
        .name("caisson-activation".into())
        .spawn(move || {
            *lock(&thread_slot) = Slot::Running(rustix::thread::gettid());
            let value = work();
            // Under the lock, so the watchdog never demotes a thread id
            // that has been recycled.
            *lock(&thread_slot) = Slot::Done;
            let _ = done.send(value);
        })
        .map_err(ActivationThreadError::Spawn)?;
    tokio::pin!(result);
    loop {
        tokio::select! {
            value = &mut result => return value.map_err(|_| ActivationThreadError::Panicked),
            () = tokio::time::sleep(DEMOTE_AFTER) => {
                let started = {
                    let slot = lock(&slot);
                    match *slot {
                        Slot::Starting => false,
                        Slot::Running(tid) => {
                            demote(tid);
                            true
                        }
                        Slot::Done => true,
                    }
                };
                if !started {
                    continue;
                }
                return result.await.map_err(|_| ActivationThreadError::Panicked);
            }
        }
    }
}

fn demote(tid: rustix::thread::Pid) {
    // On Linux the nice value is per thread, and `setpriority` with a
    // thread id sets that thread's alone.
    if let Err(e) = rustix::process::setpriority_process(Some(tid), DEMOTED_NICE) {
        tracing::debug!("could not lower the priority of a long workflow activation: {e}");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nice_of_this_thread() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
    }

    #[tokio::test]
    async fn a_short_activation_keeps_its_priority_a_long_one_is_demoted() {
        let quick = run(nice_of_this_thread).await.unwrap();
        let ours = nice_of_this_thread();
        assert_eq!(quick, ours, "a quick activation runs at the worker's priority");

        // Runs until the watchdog has demoted it (the condition, not a
        // duration, ends the loop).
        let demoted = run(move || {
            loop {
                let nice = nice_of_this_thread();
                if nice != ours {
                    return nice;
                }
                std::thread::yield_now();
            }
        })
        .await
        .unwrap();
        assert_eq!(demoted, DEMOTED_NICE);
        assert_eq!(nice_of_this_thread(), ours, "the caller's thread is untouched");
    }

    #[tokio::test]
    async fn a_panicking_activation_is_an_error_not_a_hang() {
        let err = run(|| -> u32 { panic!("on purpose") }).await.unwrap_err();
        assert!(matches!(err, ActivationThreadError::Panicked), "{err}");
    }
}
