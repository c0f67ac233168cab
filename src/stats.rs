//! The pool's counters and the [`Stats`] snapshot built from them.
//!
//! Counters are written on the hot path, so each worker owns a cache-padded
//! [`WorkerSlot`] that only it writes (a plain load and store, no atomic
//! read-modify-write and no shared cache line); submitters share one padded
//! `submitted` counter. A snapshot sums the slots.
//!
//! # Reading order
//!
//! Workers publish their counters with `Release` stores after the job's
//! outcome is decided, and a snapshot reads them with `Acquire` *before* it
//! reads `submitted`. A job is counted as submitted before it is queued, so
//! a snapshot never shows more finished jobs than submitted ones. Individual
//! counters may be a moment apart; once the pool is quiescent (nothing
//! queued or running) the snapshot is exact and
//! `submitted == completed + failed + cancelled`.

use std::fmt;

use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, CachePadded, Mutex, Ordering};

/// A snapshot of a pool's counters, from [`ThreadPool::stats`](crate::ThreadPool::stats).
///
/// The disjoint outcomes of an accepted job are `completed`, `failed` and
/// `cancelled`; at quiescence they sum to `submitted`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Worker threads alive now.
    pub workers: usize,
    /// Workers running a job now.
    pub busy: usize,
    /// Jobs waiting in the queue now.
    pub queued: usize,
    /// Jobs accepted since the pool started (rejected submissions are not
    /// counted).
    pub submitted: u64,
    /// Jobs that ran and finished cleanly.
    pub completed: u64,
    /// Jobs that ran but did not finish cleanly: `panicked + timed_out`,
    /// plus jobs whose context was cancelled before they returned, plus
    /// pipeline items whose stage returned an error.
    pub failed: u64,
    /// Of `failed`, jobs that panicked.
    pub panicked: u64,
    /// Jobs that never ran: cancelled through their handle before starting
    /// (counted when a worker dequeues and skips them), or discarded from
    /// the queue by cancellation or shutdown.
    pub cancelled: u64,
    /// Of `failed`, jobs that returned after their per-job timeout.
    pub timed_out: u64,
    /// Worker threads started to replace one that retired after a panic.
    pub respawned: u64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "workers={} busy={} queued={} submitted={} completed={} failed={} (panicked={} timed_out={}) cancelled={} respawned={}",
            self.workers,
            self.busy,
            self.queued,
            self.submitted,
            self.completed,
            self.failed,
            self.panicked,
            self.timed_out,
            self.cancelled,
            self.respawned
        )
    }
}

/// How one job ended, as the worker runtime records it.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Ran and finished cleanly.
    Completed,
    /// Ran and returned after its own per-job deadline.
    TimedOut,
    /// Ran, but its context was cancelled before it returned.
    Interrupted,
    /// Ran and panicked, with the panic's message.
    Panicked(String),
    /// Never ran: cancelled through its handle before a worker started it.
    Skipped,
    /// Ran and returned an error value (a pipeline stage's `Err`).
    Failed,
}

/// One worker's counters. Single writer: the worker thread using the slot
/// (a respawned worker inherits the slot only after its predecessor has
/// stopped writing, and the thread spawn orders the two).
#[derive(Debug, Default)]
pub(crate) struct WorkerSlot {
    busy: AtomicBool,
    completed: AtomicU64,
    interrupted: AtomicU64,
    errored: AtomicU64,
    panicked: AtomicU64,
    timed_out: AtomicU64,
    skipped: AtomicU64,
    /// Jobs this worker took from the queue (for crews fed by a channel
    /// rather than by `submit`, whose `submitted` is counted from this).
    received: AtomicU64,
}

impl WorkerSlot {
    #[inline]
    pub(crate) fn set_busy(&self, busy: bool) {
        // ORDERING: Relaxed; `busy` is a gauge for snapshots only.
        self.busy.store(busy, Ordering::Relaxed);
    }

    /// Counts a job taken from the queue; before its outcome is recorded.
    #[inline]
    pub(crate) fn count_received(&self) {
        // ORDERING: single writer; Relaxed, as the outcome's Release store
        // that follows publishes it.
        self.received
            .store(self.received.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn record(&self, outcome: &Outcome) {
        let counter = match outcome {
            Outcome::Completed => &self.completed,
            Outcome::TimedOut => &self.timed_out,
            Outcome::Interrupted => &self.interrupted,
            Outcome::Panicked(_) => &self.panicked,
            Outcome::Skipped => &self.skipped,
            Outcome::Failed => &self.errored,
        };
        // ORDERING: single writer, so load-then-store cannot lose counts;
        // Release pairs with the Acquire in `Counters::snapshot` (see the
        // module docs).
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Release);
    }
}

/// Every counter of one pool.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) submitted: CachePadded<AtomicU64>,
    /// Jobs discarded without running (cancellation or shutdown drains).
    pub(crate) discarded: CachePadded<AtomicU64>,
    /// Of `discarded`, jobs a drain took straight from the queue (not
    /// counted as received by any worker).
    pub(crate) drained: AtomicU64,
    pub(crate) respawned: AtomicU64,
    pub(crate) live: AtomicUsize,
    pub(crate) slots: Mutex<Vec<std::sync::Arc<CachePadded<WorkerSlot>>>>,
}

impl Counters {
    /// A snapshot. `fed` crews are fed through their channel by someone
    /// else (pipeline stages): their `submitted` is what their workers and
    /// drains took from the queue plus what is still queued.
    pub(crate) fn snapshot(&self, queued: usize, fed: bool) -> Stats {
        let mut stats = Stats {
            queued,
            ..Stats::default()
        };
        let mut other_failures = 0;
        let mut received = 0;
        for slot in self.slots.lock().iter() {
            stats.busy += usize::from(slot.busy.load(Ordering::Relaxed));
            stats.completed += slot.completed.load(Ordering::Acquire);
            other_failures += slot.interrupted.load(Ordering::Acquire);
            other_failures += slot.errored.load(Ordering::Acquire);
            stats.panicked += slot.panicked.load(Ordering::Acquire);
            stats.timed_out += slot.timed_out.load(Ordering::Acquire);
            stats.cancelled += slot.skipped.load(Ordering::Acquire);
            received += slot.received.load(Ordering::Relaxed);
        }
        stats.cancelled += self.discarded.load(Ordering::Acquire);
        stats.failed = stats.panicked + stats.timed_out + other_failures;
        stats.respawned = self.respawned.load(Ordering::Relaxed);
        stats.workers = self.live.load(Ordering::Relaxed);
        // ORDERING: read last, after the Acquire loads above (module docs).
        stats.submitted = if fed {
            received + self.drained.load(Ordering::Acquire) + queued as u64
        } else {
            self.submitted.load(Ordering::Acquire)
        };
        stats
    }
}
