//! The pool's counters and the [`Stats`] snapshot built from them.
//!
//! * `histogram.rs`: the log-bucketed latency histogram.
//!
//! Counters are written on the hot path, so each worker owns a cache-padded
//! [`WorkerSlot`] that only it writes (a plain load and store, no atomic
//! read-modify-write and no shared cache line); submitters share one padded
//! `submitted` counter. A snapshot sums the slots.
//!
//! # Latency, utilisation and throughput
//!
//! Timing a job costs clock reads, which would be a large share of a tiny
//! job (see `benches/README.md`). So jobs are **sampled**: every one of a
//! pool's first 1,024 jobs, then one in 16 (every job while an
//! `on_job_done` hook is set). The submitter stamps a sampled job with the
//! time it was queued; the worker times its queue wait and run time into
//! its own histograms. Busy time is estimated from the sampled run times
//! scaled by the share of jobs sampled, and both busy time and the count of
//! finished jobs are marked, at most four times a second, in a short ring,
//! from which throughput and utilisation are read over the last few
//! seconds.
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

mod histogram;

use crate::lane::{Lane, LaneLoad};
use std::collections::VecDeque;
use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use histogram::{Histogram, Merged};

use crate::sync::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, CachePadded, Mutex, Ordering};

/// The span throughput and utilisation are averaged over.
pub(crate) const WINDOW: Duration = Duration::from_secs(5);
/// The least time between two marks of the window's ring.
const MARK_EVERY: Duration = Duration::from_millis(250);
/// Jobs a pool always samples before it samples one in [`SAMPLE_EVERY`].
const SAMPLE_ALL_FIRST: u64 = 1024;
/// One job in this many is timed once a pool is past its first jobs.
const SAMPLE_EVERY: u64 = 16;

/// Nanoseconds since a process-wide epoch, never 0 (0 means "not
/// stamped" in a queued job).
#[inline]
pub(crate) fn stamp(at: Instant) -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(at.saturating_duration_since(epoch).as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Whether the job with submission sequence number `seq` is timed.
#[inline]
pub(crate) fn sampled(seq: u64) -> bool {
    seq < SAMPLE_ALL_FIRST || seq % SAMPLE_EVERY == 0
}

/// Percentiles of one kind of duration, from sampled jobs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Latencies {
    /// Jobs timed.
    pub samples: u64,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
}

impl Latencies {
    fn from(merged: &Merged) -> Self {
        Self {
            samples: merged.samples(),
            p50: merged.quantile(0.50),
            p90: merged.quantile(0.90),
            p99: merged.quantile(0.99),
            max: merged.max(),
        }
    }
}

impl fmt::Display for Latencies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {:.1?} p90 {:.1?} p99 {:.1?} max {:.1?}",
            self.p50, self.p90, self.p99, self.max
        )
    }
}

/// A snapshot of a pool's counters, from [`ThreadPool::stats`](crate::ThreadPool::stats).
///
/// The disjoint outcomes of an accepted job are `completed`, `failed` and
/// `cancelled`; at quiescence they sum to `submitted`.
///
/// Latencies, utilisation and throughput come from **sampled** jobs: every
/// one of a pool's first 1,024 jobs, then one in 16 (every job while an
/// `on_job_done` hook is set), because timing a job costs clock reads that
/// would be a large share of a tiny job. Throughput and utilisation are
/// averaged over the last 5 seconds (or the pool's life, if shorter).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Worker threads alive now.
    pub workers: usize,
    /// Workers running a job now, and submitters running one of the
    /// pool's jobs themselves
    /// ([`submit_or_run_here`](crate::ThreadPool::submit_or_run_here)), so
    /// it may briefly exceed `workers`.
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
    /// Worker threads that left after the pool's
    /// [`keep_alive`](crate::ThreadPoolBuilder::keep_alive) without a job.
    pub expired: u64,
    /// Time sampled jobs waited in the queue before a worker took them
    /// (see the sampling note in the `Stats` docs).
    pub queue_wait: Latencies,
    /// Time sampled jobs ran.
    pub run_time: Latencies,
    /// Busy time ÷ (wall time × workers) over the last few seconds: 1.0
    /// means every worker was always running a job. Estimated from sampled
    /// run times.
    pub utilisation: f64,
    /// Jobs finished (completed or failed) per second over the last few
    /// seconds.
    pub throughput: f64,
    /// Jobs queued and running per [`Lane`], highest first (see
    /// [`lane`](Self::lane)); all zero until a job is submitted with a
    /// lane or a key. Jobs submitted with neither are not counted here.
    pub lanes: [LaneLoad; 3],
}

impl Stats {
    /// Jobs queued and running in `lane`.
    pub fn lane(&self, lane: Lane) -> LaneLoad {
        self.lanes[lane.index()]
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "workers={} busy={} queued={} submitted={} completed={} failed={} (panicked={} timed_out={}) \
             cancelled={} respawned={} expired={} | {:.0} jobs/s, {:.0}% busy | wait {} | run {}",
            self.workers,
            self.busy,
            self.queued,
            self.submitted,
            self.completed,
            self.failed,
            self.panicked,
            self.timed_out,
            self.cancelled,
            self.respawned,
            self.expired,
            self.throughput,
            self.utilisation * 100.0,
            self.queue_wait,
            self.run_time,
        )
    }
}

/// What happened to one job, for an `on_job_done` hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JobOutcome {
    /// Ran and finished cleanly.
    Completed,
    /// Ran and panicked.
    Panicked,
    /// Ran past its per-job timeout.
    TimedOut,
    /// Ran, but its context was cancelled before it returned.
    Interrupted,
    /// Ran and returned an error (a pipeline stage's `Err`).
    Failed,
    /// Never ran: cancelled through its handle, or discarded by a
    /// cancellation or shutdown.
    Cancelled,
}

/// One finished (or discarded) job, as an `on_job_done` hook sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobEvent {
    /// The job's submission sequence number in its pool: 0 for the first
    /// job submitted, 1 for the next, and so on.
    pub id: u64,
    /// What happened to it.
    pub outcome: JobOutcome,
    /// How long it waited in the queue.
    pub queue_wait: Duration,
    /// How long it ran (zero if it never ran).
    pub run_time: Duration,
}

impl JobEvent {
    pub(crate) fn new(
        id: u64,
        outcome: JobOutcome,
        queue_wait: Duration,
        run_time: Duration,
    ) -> Self {
        Self {
            id,
            outcome,
            queue_wait,
            run_time,
        }
    }
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
    queue_wait: Histogram,
    run_time: Histogram,
    /// Estimated busy time: each sampled job's run time counts once for
    /// itself and once for every unsampled job this worker ran since the
    /// previous sample. Weighting each sample by the jobs it stands for
    /// (not scaling a lifetime mean) keeps the estimate current when job
    /// lengths change: deltas over a window reflect that window's jobs.
    busy_nanos: AtomicU64,
    /// `ran()` at the last sample.
    ran_at_sample: AtomicU64,
    /// The kernel id of the thread filling this slot, where known and
    /// wanted (adaptive pools read its run-queue delay); 0 otherwise.
    tid: AtomicU64,
    /// 1 + the lane of a routed job whose end is recorded and whose
    /// ticket the worker has not handed back yet; 0 otherwise.
    ending: AtomicU8,
}

impl WorkerSlot {
    /// Notes the lane of a routed job whose end was just recorded, before
    /// its result is delivered (`Some`), or clears it once the job's
    /// ticket is back and its lane no longer counts it as running
    /// (`None`). A snapshot reads these before the lanes' running
    /// counts, so it never counts a delivered job as running: a job's
    /// lane is noted, then its count falls, then its note is cleared.
    #[inline]
    pub(crate) fn set_ending(&self, lane: Option<usize>) {
        let noted = lane.map_or(0, |lane| lane as u8 + 1);
        // ORDERING: Release pairs with `Counters::ending`'s Acquire.
        self.ending.store(noted, Ordering::Release);
    }

    #[inline]
    pub(crate) fn set_busy(&self, busy: bool) {
        // ORDERING: Relaxed; `busy` is a gauge for snapshots only.
        self.busy.store(busy, Ordering::Relaxed);
    }

    /// Notes the kernel id of the thread now filling this slot.
    pub(crate) fn set_tid(&self, tid: u64) {
        self.tid.store(tid, Ordering::Relaxed);
    }

    /// Records a sampled job's timings. `queue_wait` is `None` when the
    /// job was not stamped when queued. `per` is how many jobs `run`
    /// covers (a map chunk's items run as one sample).
    pub(crate) fn record_timing(&self, queue_wait: Option<Duration>, run: Duration, per: u64) {
        if let Some(wait) = queue_wait {
            self.queue_wait.record(wait);
        }
        self.run_time.record(run);
        let nanos = u64::try_from(run.as_nanos()).unwrap_or(u64::MAX);
        // ORDERING: single writer; Relaxed, an estimate read at snapshots.
        let ran = self.ran();
        let stands_for = (ran.saturating_sub(self.ran_at_sample.swap(ran, Ordering::Relaxed))
            / per.max(1))
        .max(1);
        let busy = &self.busy_nanos;
        busy.store(
            busy.load(Ordering::Relaxed)
                .saturating_add(nanos.saturating_mul(stands_for)),
            Ordering::Relaxed,
        );
    }

    /// Jobs this worker ran (any outcome but `Skipped`).
    fn ran(&self) -> u64 {
        [
            &self.completed,
            &self.interrupted,
            &self.errored,
            &self.panicked,
            &self.timed_out,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }

    /// Estimated busy time of every job this worker has run (see the
    /// field).
    fn busy_nanos(&self) -> f64 {
        self.busy_nanos.load(Ordering::Relaxed) as f64
    }

    #[inline]
    pub(crate) fn record(&self, outcome: JobOutcome) {
        self.record_many(outcome, 1);
    }

    /// Records `n` jobs that ended alike (a map chunk's items).
    #[inline]
    pub(crate) fn record_many(&self, outcome: JobOutcome, n: u64) {
        let counter = match outcome {
            JobOutcome::Completed => &self.completed,
            JobOutcome::TimedOut => &self.timed_out,
            JobOutcome::Interrupted => &self.interrupted,
            JobOutcome::Panicked => &self.panicked,
            JobOutcome::Cancelled => &self.skipped,
            JobOutcome::Failed => &self.errored,
        };
        // ORDERING: single writer, so load-then-store cannot lose counts;
        // Release pairs with the Acquire in `Counters::snapshot` (see the
        // module docs).
        counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Release);
    }
}

/// Every counter of one pool.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) submitted: CachePadded<AtomicU64>,
    /// Jobs discarded without running (cancellation or shutdown drains).
    pub(crate) discarded: CachePadded<AtomicU64>,
    pub(crate) respawned: AtomicU64,
    pub(crate) expired: AtomicU64,
    pub(crate) live: AtomicUsize,
    /// Every slot a worker ever filled: a snapshot sums them all, so the
    /// counts of workers that left stay in the totals.
    slots: Mutex<Vec<std::sync::Arc<CachePadded<WorkerSlot>>>>,
    /// Slots whose worker left for good, for the next worker to start, so
    /// a pool whose threads come and go keeps as many slots as it ever had
    /// workers at once.
    vacant: Mutex<Vec<std::sync::Arc<CachePadded<WorkerSlot>>>>,
    /// The window's ring of marks, and the stamp of the newest.
    marks: Mutex<VecDeque<Mark>>,
    /// A hint for `tick`, which orders nothing, so a std atomic even in a
    /// loom build: it is stored only when a mark is due by the clock, and
    /// a model's steps must not depend on how long an execution took (a
    /// stall past `MARK_EVERY` under load made one replay differ).
    last_mark: std::sync::atomic::AtomicU64,
}

/// Totals at one instant, for rates over the window.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at: Instant,
    finished: u64,
    busy_nanos: f64,
    /// Workers alive at `at`: utilisation divides busy time by the
    /// worker-time available, which changes when the pool is resized.
    workers: usize,
}

impl Counters {
    /// Per lane, the routed jobs whose end is recorded and whose ticket
    /// is not back yet (see `WorkerSlot::set_ending`).
    pub(crate) fn ending(&self) -> [usize; 3] {
        let mut ending = [0; 3];
        for slot in self.slots.lock().iter() {
            // ORDERING: Acquire pairs with `set_ending`'s Release.
            match slot.ending.load(Ordering::Acquire) {
                0 => {}
                noted => ending[usize::from(noted - 1)] += 1,
            }
        }
        ending
    }

    /// A snapshot, with `queued` jobs waiting now.
    pub(crate) fn snapshot(&self, queued: usize) -> Stats {
        let mut stats = Stats {
            queued,
            ..Stats::default()
        };
        let mut other_failures = 0;
        let (mut waits, mut runs) = (Merged::default(), Merged::default());
        let mut busy_nanos = 0.0;
        for slot in self.slots.lock().iter() {
            stats.busy += usize::from(slot.busy.load(Ordering::Relaxed));
            stats.completed += slot.completed.load(Ordering::Acquire);
            other_failures += slot.interrupted.load(Ordering::Acquire);
            other_failures += slot.errored.load(Ordering::Acquire);
            stats.panicked += slot.panicked.load(Ordering::Acquire);
            stats.timed_out += slot.timed_out.load(Ordering::Acquire);
            stats.cancelled += slot.skipped.load(Ordering::Acquire);
            waits.add(&slot.queue_wait);
            runs.add(&slot.run_time);
            busy_nanos += slot.busy_nanos();
        }
        stats.cancelled += self.discarded.load(Ordering::Acquire);
        stats.failed = stats.panicked + stats.timed_out + other_failures;
        stats.respawned = self.respawned.load(Ordering::Relaxed);
        stats.expired = self.expired.load(Ordering::Relaxed);
        stats.workers = self.live.load(Ordering::Relaxed);
        stats.queue_wait = Latencies::from(&waits);
        stats.run_time = Latencies::from(&runs);
        let now = Mark {
            at: Instant::now(),
            finished: stats.completed + stats.failed,
            busy_nanos,
            workers: stats.workers,
        };
        let (oldest, capacity) = self.mark(now);
        let elapsed = now.at.saturating_duration_since(oldest.at).as_secs_f64();
        if elapsed > 0.0 {
            stats.throughput = (now.finished - oldest.finished.min(now.finished)) as f64 / elapsed;
        }
        if capacity > 0.0 {
            stats.utilisation = ((now.busy_nanos - oldest.busy_nanos).max(0.0) / capacity).min(1.0);
        }
        // ORDERING: read last, after the Acquire loads above (module docs).
        stats.submitted = self.submitted.load(Ordering::Acquire);
        stats
    }

    /// Adds `now` to the window's ring (if the ring is empty or its newest
    /// mark old enough), drops marks older than the window, and returns the
    /// oldest mark left (the start of the window) with the worker-time in
    /// nanoseconds from it to `now`: the sum, mark to mark, of the time
    /// between them × the mean of their worker counts.
    fn mark(&self, now: Mark) -> (Mark, f64) {
        let mut marks = self.marks.lock();
        let due = marks
            .back()
            .is_none_or(|last| now.at.saturating_duration_since(last.at) >= MARK_EVERY);
        if due {
            marks.push_back(now);
            self.last_mark.store(stamp(now.at), Ordering::Relaxed);
        }
        while marks.len() > 2
            && marks
                .front()
                .is_some_and(|m| now.at.saturating_duration_since(m.at) > WINDOW)
        {
            marks.pop_front();
        }
        let mut capacity = 0.0;
        let mut previous: Option<&Mark> = None;
        for mark in marks.iter().chain(std::iter::once(&now)) {
            if let Some(p) = previous {
                let span = mark.at.saturating_duration_since(p.at).as_nanos() as f64;
                capacity += span * (p.workers + mark.workers).max(1) as f64 / 2.0;
            }
            previous = Some(mark);
        }
        (marks.front().copied().unwrap_or(now), capacity)
    }

    /// Jobs finished, estimated busy nanoseconds, and workers busy now,
    /// summed over every worker.
    pub(crate) fn totals(&self) -> (u64, f64, usize) {
        let mut totals = (0, 0.0, 0);
        for slot in self.slots.lock().iter() {
            totals.0 += slot.ran();
            totals.1 += slot.busy_nanos();
            totals.2 += usize::from(slot.busy.load(Ordering::Relaxed));
        }
        totals
    }

    /// A slot for a worker about to start: one a departed worker left, or
    /// a new one. Taken under a lock its predecessor gave it back under,
    /// so the predecessor's last writes come before the new worker's
    /// first (the single-writer rule of [`WorkerSlot`]).
    pub(crate) fn slot(&self) -> std::sync::Arc<CachePadded<WorkerSlot>> {
        if let Some(slot) = self.vacant.lock().pop() {
            return slot;
        }
        let slot = std::sync::Arc::new(CachePadded(WorkerSlot::default()));
        self.slots.lock().push(std::sync::Arc::clone(&slot));
        slot
    }

    /// A worker left for good (not replaced): its slot waits for the next
    /// worker to start.
    pub(crate) fn vacate(&self, slot: std::sync::Arc<CachePadded<WorkerSlot>>) {
        slot.set_tid(0);
        self.vacant.lock().push(slot);
    }

    /// The kernel ids of the worker threads that noted one.
    pub(crate) fn tids(&self) -> Vec<u64> {
        self.slots
            .lock()
            .iter()
            .map(|slot| slot.tid.load(Ordering::Relaxed))
            .filter(|&tid| tid != 0)
            .collect()
    }

    /// Marks the start of the pool's life with `workers` workers, so the
    /// first window has a beginning: a snapshot then averages over the
    /// pool's life when that is shorter than the window.
    pub(crate) fn begin(&self, workers: usize) {
        self.mark(Mark {
            at: Instant::now(),
            finished: 0,
            busy_nanos: 0.0,
            workers,
        });
    }

    /// Called by workers after a sampled job: keeps the window's ring
    /// moving even when nobody asks for stats. Cheap unless a mark is due.
    pub(crate) fn tick(&self, now: Instant) {
        let last = self.last_mark.load(Ordering::Relaxed);
        if stamp(now).saturating_sub(last) < MARK_EVERY.as_nanos() as u64 {
            return;
        }
        let (finished, busy_nanos, _) = self.totals();
        self.mark(Mark {
            at: now,
            finished,
            busy_nanos,
            workers: self.live.load(Ordering::Relaxed),
        });
    }
}
