//! The worker runtime: one supervised loop that every front door reuses.
//!
//! A crew is N OS threads sharing one jobs channel and the pool's
//! [`Context`]. It is generic over the job type `J` and an [`Exec`] that
//! knows how to run and how to discard a `J`, so [`ThreadPool`]'s boxed
//! closures and later typed front doors run on this same loop.
//!
//! # The loop
//!
//! Each worker takes a job, runs it inside `catch_unwind`, records the
//! outcome in its own counters, and goes back for the next. Waiting for a
//! job is two-phase: first spin on `try_recv` (and the cancel flag) with a
//! bounded backoff, then block in `select!` on the jobs channel and the
//! pool's cancel channel. A `select!` sleeps at once, while a job usually
//! arrives within microseconds on a busy pool; the spin phase keeps the
//! per-job cost at that of a plain `recv()` (measured: a bare `select!`
//! costs 1.5–8× as much per job on a 2-core machine).
//!
//! # Supervision
//!
//! A job that panics is reported (by the `Exec`, on the job's handle),
//! logged with `log::warn!` and counted. Under [`PanicPolicy::Respawn`] the
//! worker that ran it then retires and a fresh thread takes its place and
//! its counters, so thread-local state the panic may have corrupted leaves
//! with the old thread and the pool keeps its size. The replacement is
//! started from a [`Sentinel`] drop guard, which also fires if a panic
//! escapes the loop itself (the `threadpool` crate's model). Under
//! [`PanicPolicy::CancelPool`] the pool's context is cancelled instead.
//!
//! # Shutdown and accounting
//!
//! Closing drops the crew's `Sender`: workers drain the queue and exit when
//! it disconnects. Cancelling the context makes workers stop taking jobs;
//! every job still queued is handed to [`Exec::discard`] (so its handle says
//! it was cancelled) by whichever thread finds it — a worker on its way out,
//! the shutdown call, or a submitter that re-checks the context after its
//! send landed. Every accepted job is therefore either run exactly once or
//! discarded exactly once.
//!
//! [`ThreadPool`]: crate::ThreadPool

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use crossbeam_channel::{Receiver, Select, SendError, Sender, TryRecvError, TrySendError, select};

use crate::context::Context;
use crate::error::{BuildError, Cancelled, TrySubmitError};
use crate::stats::{Counters, Outcome, Stats, WorkerSlot};
use crate::sync::{Arc, CachePadded, Condvar, Mutex, Ordering, Spin};
use crate::unwind;

/// What to do when a job panics.
///
/// In both cases the panic is caught, reported on the job's handle with its
/// message, logged with `log::warn!`, and counted in [`Stats::panicked`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PanicPolicy {
    /// Retire the worker that ran the job and start a fresh thread in its
    /// place, so the pool keeps its size and no thread-local state survives
    /// the panic. Counted in [`Stats::respawned`].
    #[default]
    Respawn,
    /// Cancel the pool (fail-fast): queued jobs are discarded and reported
    /// cancelled, running jobs see their context cancelled, and new
    /// submissions are refused.
    CancelPool,
}

/// A user callback run on a worker thread with the worker's index.
pub(crate) type Hook = Arc<dyn Fn(usize) + Send + Sync>;

/// Knows how to run and how to discard one kind of job.
pub(crate) trait Exec<J>: Send + Sync + 'static {
    /// Runs `job` on the calling worker. May unwind; the crew catches it.
    ///
    /// A job that hands its result to someone (a handle, a channel) calls
    /// [`Worker::record`] *before* handing it over, so that whoever receives
    /// the result also sees it counted in the pool's stats.
    fn run(&self, job: J, worker: &Worker<'_>) -> Outcome;
    /// Reports that `job` will never run, for `reason`. Must not unwind.
    fn discard(&self, job: J, reason: Cancelled);
}

/// Validated settings for [`Crew::start`].
pub(crate) struct CrewConfig {
    pub(crate) workers: usize,
    /// `None` for an unbounded queue.
    pub(crate) queue_capacity: Option<usize>,
    pub(crate) thread_name: String,
    pub(crate) stack_size: Option<usize>,
    pub(crate) panic_policy: PanicPolicy,
    pub(crate) on_thread_start: Option<Hook>,
    pub(crate) on_thread_exit: Option<Hook>,
}

struct Shared<J, E> {
    jobs: Receiver<J>,
    ctx: Context,
    /// `ctx.done()`, fetched once: disconnects when the pool is cancelled.
    cancel: Receiver<()>,
    exec: E,
    config: CrewConfig,
    counters: Counters,
    /// Handles of every thread started and not yet joined. Guarded with the
    /// live-worker count's changes, so `exited` cannot miss a wake-up.
    threads: Mutex<Vec<JoinHandle<()>>>,
    exited: Condvar,
}

/// A running crew and its intake. Dropping it closes intake and joins every
/// thread (or detaches, when dropped on one of its own workers).
pub(crate) struct Crew<J, E> {
    shared: Arc<Shared<J, E>>,
    /// `None` once closed: the channel disconnects when the last `Sender`
    /// goes, and workers exit after draining.
    intake: Option<Sender<J>>,
}

thread_local! {
    /// Address of the crew this thread works for (0 on other threads): lets
    /// a pool dropped from inside its own job detach instead of deadlocking.
    static CURRENT_CREW: Cell<usize> = const { Cell::new(0) };
}

/// The running worker, as a job sees it: where to record its outcome.
pub(crate) struct Worker<'a> {
    slot: &'a WorkerSlot,
    recorded: Cell<bool>,
    /// The pool's context under `PanicPolicy::CancelPool`, else `None`.
    cancel_on_panic: Option<&'a Context>,
}

impl Worker<'_> {
    /// Counts the job's outcome now, marks the worker idle and, for a panic
    /// under `PanicPolicy::CancelPool`, cancels the pool — all before the
    /// job hands its result over, so whoever receives it sees the effects.
    /// Later calls for the same job, and the crew's own call, are ignored.
    pub(crate) fn record(&self, outcome: &Outcome) {
        if !self.recorded.replace(true) {
            self.slot.set_busy(false);
            self.slot.record(outcome);
            if let (Outcome::Panicked(_), Some(ctx)) = (outcome, self.cancel_on_panic) {
                ctx.cancel();
            }
        }
    }
}

enum Exit {
    /// Closed or cancelled: leave for good.
    Done,
    /// A job panicked under `PanicPolicy::Respawn`: leave and be replaced.
    Retire,
}

impl<J: Send + 'static, E: Exec<J>> Crew<J, E> {
    /// Starts `config.workers` threads. On failure every thread already
    /// started is stopped and joined before the error is returned.
    pub(crate) fn start(config: CrewConfig, ctx: Context, exec: E) -> Result<Self, BuildError> {
        let (tx, rx) = match config.queue_capacity {
            Some(capacity) => crossbeam_channel::bounded(capacity),
            None => crossbeam_channel::unbounded(),
        };
        let workers = config.workers;
        let shared = Arc::new(Shared {
            jobs: rx,
            cancel: ctx.done(),
            ctx,
            exec,
            config,
            counters: Counters::default(),
            threads: Mutex::new(Vec::with_capacity(workers)),
            exited: Condvar::new(),
        });
        let mut crew = Self {
            shared,
            intake: Some(tx),
        };
        for index in 0..workers {
            let slot = Arc::new(CachePadded(WorkerSlot::default()));
            crew.shared.counters.slots.lock().push(Arc::clone(&slot));
            if let Err(err) = spawn_worker(&crew.shared, index, slot) {
                // rayon's Terminator: a half-built crew must not leak threads.
                crew.shared.ctx.cancel();
                crew.close();
                crew.wait(None);
                return Err(BuildError::Spawn(err));
            }
        }
        Ok(crew)
    }

    pub(crate) fn context(&self) -> &Context {
        &self.shared.ctx
    }

    pub(crate) fn stats(&self) -> Stats {
        self.shared.counters.snapshot(self.shared.jobs.len())
    }

    /// Queues `job`. `wait` is `None` to fail at once on a full queue,
    /// `Some(None)` to wait as long as it takes, and `Some(Some(t))` to wait
    /// until `t`. Every wait ends early, with `Cancelled`, if the pool is
    /// cancelled.
    pub(crate) fn submit(
        &self,
        job: J,
        wait: Option<Option<Instant>>,
    ) -> Result<(), TrySubmitError<J>> {
        let Some(tx) = &self.intake else {
            return Err(TrySubmitError::Closed(job));
        };
        if self.shared.ctx.is_done() {
            return Err(TrySubmitError::Cancelled(job));
        }
        // Count before sending, so no snapshot sees the job finish before
        // it was submitted; undone below if the send fails.
        // ORDERING: Relaxed; the channel orders it before the worker's
        // Release of the outcome (see stats.rs).
        self.shared
            .counters
            .submitted
            .fetch_add(1, Ordering::Relaxed);
        let sent = match tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job)) => match wait {
                None => Err(TrySubmitError::Full(job)),
                Some(deadline) => self.send_slow(tx, job, deadline),
            },
            Err(TrySendError::Disconnected(job)) => Err(TrySubmitError::Closed(job)),
        };
        match sent {
            Ok(()) => {
                // Cancellation may have raced the send, after every worker
                // made its last drain: then the job would sit unreported.
                // Re-check and discard it ourselves.
                if self.shared.ctx.is_done() {
                    self.shared.drain();
                }
                Ok(())
            }
            Err(err) => {
                self.shared
                    .counters
                    .submitted
                    .fetch_sub(1, Ordering::Relaxed);
                Err(err)
            }
        }
    }

    /// Cancels the pool's context and discards everything queued. Returns
    /// how many jobs this call discarded.
    pub(crate) fn cancel(&mut self) -> u64 {
        self.shared.ctx.cancel();
        self.intake = None;
        self.shared.drain()
    }

    #[cold]
    fn send_slow(
        &self,
        tx: &Sender<J>,
        mut job: J,
        deadline: Option<Instant>,
    ) -> Result<(), TrySubmitError<J>> {
        let mut spin = Spin::default();
        while spin.snooze() {
            if self.shared.ctx.is_done() {
                return Err(TrySubmitError::Cancelled(job));
            }
            match tx.try_send(job) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(back)) => job = back,
                Err(TrySendError::Disconnected(back)) => return Err(TrySubmitError::Closed(back)),
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(TrySubmitError::Full(job));
            }
        }
        let mut select = Select::new();
        let send = select.send(tx);
        select.recv(&self.shared.cancel);
        let operation = match deadline {
            None => select.select(),
            Some(deadline) => match select.select_deadline(deadline) {
                Ok(operation) => operation,
                Err(_) => return Err(TrySubmitError::Full(job)),
            },
        };
        if operation.index() == send {
            operation
                .send(tx, job)
                .map_err(|SendError(job)| TrySubmitError::Closed(job))
        } else {
            // The cancel channel only ever disconnects; completing the
            // selected receive just acknowledges that.
            let _ = operation.recv(&self.shared.cancel);
            Err(TrySubmitError::Cancelled(job))
        }
    }
}

impl<J, E> Crew<J, E> {
    /// Stops intake: later submits fail with `Closed`, and workers exit once
    /// the queue is drained.
    pub(crate) fn close(&mut self) {
        self.intake = None;
    }

    /// Whether the calling thread is one of this crew's workers.
    pub(crate) fn on_own_worker(&self) -> bool {
        CURRENT_CREW.with(Cell::get) == self.shared.id()
    }

    /// Waits until every worker has exited (`deadline` permitting) and joins
    /// their threads. Returns `false` if the deadline came first. On one of
    /// the crew's own workers it cannot wait for itself, and returns `false`
    /// at once.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        if self.on_own_worker() {
            return false;
        }
        let mut threads = self.shared.threads.lock();
        while self.shared.counters.live.load(Ordering::Acquire) > 0 {
            match deadline {
                None => self.shared.exited.wait(&mut threads),
                Some(deadline) => {
                    if self
                        .shared
                        .exited
                        .wait_until(&mut threads, deadline)
                        .timed_out()
                    {
                        return self.shared.counters.live.load(Ordering::Acquire) == 0;
                    }
                }
            }
        }
        let finished = std::mem::take(&mut *threads);
        drop(threads);
        for handle in finished {
            // A worker's own panics are caught inside it; an Err here means
            // a panic escaped after the Sentinel ran, which it has logged.
            let _ = handle.join();
        }
        true
    }
}

impl<J, E> Drop for Crew<J, E> {
    fn drop(&mut self) {
        self.close();
        if self.on_own_worker() {
            log::debug!(
                "brigade: pool dropped from one of its own jobs; its threads finish the queue and exit on their own"
            );
            return;
        }
        self.wait(None);
    }
}

impl<J, E> Shared<J, E> {
    fn id(&self) -> usize {
        std::ptr::from_ref(self).cast::<()>() as usize
    }
}

impl<J: Send + 'static, E: Exec<J>> Shared<J, E> {
    /// The worker loop. Returns why the worker is leaving.
    fn work(&self, index: usize, slot: &WorkerSlot) -> Exit {
        while let Some(job) = self.next_job() {
            if self.ctx.is_done() {
                self.discard(job);
                break;
            }
            slot.set_busy(true);
            let cancel_on_panic =
                (self.config.panic_policy == PanicPolicy::CancelPool).then_some(&self.ctx);
            let worker = Worker {
                slot,
                recorded: Cell::new(false),
                cancel_on_panic,
            };
            let outcome = match catch_unwind(AssertUnwindSafe(|| self.exec.run(job, &worker))) {
                Ok(outcome) => outcome,
                Err(payload) => Outcome::Panicked(unwind::message(payload)),
            };
            worker.record(&outcome);
            if let Outcome::Panicked(message) = outcome {
                log::warn!(
                    "brigade: a job panicked on worker {}-{index}: {message}",
                    self.config.thread_name
                );
                // Under CancelPool, `record` has cancelled the pool and the
                // loop ends at the next job; under Respawn, retire now.
                if self.config.panic_policy == PanicPolicy::Respawn {
                    return Exit::Retire;
                }
            }
        }
        if self.ctx.is_done() {
            self.drain();
        }
        Exit::Done
    }

    /// The next job, or `None` once the pool is cancelled or closed and
    /// drained.
    #[inline]
    fn next_job(&self) -> Option<J> {
        let mut spin = Spin::default();
        loop {
            match self.jobs.try_recv() {
                Ok(job) => return Some(job),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
            if self.ctx.is_done() {
                return None;
            }
            if !spin.snooze() {
                return self.next_job_blocking();
            }
        }
    }

    #[cold]
    fn next_job_blocking(&self) -> Option<J> {
        select! {
            recv(self.jobs) -> job => job.ok(),
            recv(self.cancel) -> _ => None,
        }
    }

    fn discard(&self, job: J) {
        let reason = self.ctx.reason().unwrap_or(Cancelled::Canceled);
        self.exec.discard(job, reason);
        // ORDERING: Release pairs with the snapshot's Acquire (stats.rs).
        self.counters.discarded.fetch_add(1, Ordering::Release);
    }

    /// Discards every job queued now; returns how many.
    fn drain(&self) -> u64 {
        let mut discarded = 0;
        while let Ok(job) = self.jobs.try_recv() {
            self.discard(job);
            discarded += 1;
        }
        discarded
    }

    fn worker_exited(&self) {
        let _threads = self.threads.lock();
        self.counters.live.fetch_sub(1, Ordering::Release);
        self.exited.notify_all();
    }
}

fn spawn_worker<J: Send + 'static, E: Exec<J>>(
    shared: &Arc<Shared<J, E>>,
    index: usize,
    slot: Arc<CachePadded<WorkerSlot>>,
) -> std::io::Result<()> {
    let mut builder = thread::Builder::new().name(format!("{}-{index}", shared.config.thread_name));
    if let Some(size) = shared.config.stack_size {
        builder = builder.stack_size(size);
    }
    #[cfg(test)]
    tests::maybe_fail_spawn(&shared.config.thread_name, index)?;
    let worker = Arc::clone(shared);
    let mut threads = shared.threads.lock();
    shared.counters.live.fetch_add(1, Ordering::Relaxed);
    match builder.spawn(move || worker_main(&worker, index, &slot)) {
        Ok(handle) => {
            // Reap threads that already finished (retired after a panic), so
            // a long-lived pool's handle list stays at about its size.
            let (done, running): (Vec<_>, Vec<_>) = std::mem::take(&mut *threads)
                .into_iter()
                .partition(JoinHandle::is_finished);
            *threads = running;
            threads.push(handle);
            drop(threads);
            for handle in done {
                let _ = handle.join();
            }
            Ok(())
        }
        Err(err) => {
            shared.counters.live.fetch_sub(1, Ordering::Relaxed);
            shared.exited.notify_all();
            Err(err)
        }
    }
}

fn worker_main<J: Send + 'static, E: Exec<J>>(
    shared: &Arc<Shared<J, E>>,
    index: usize,
    slot: &Arc<CachePadded<WorkerSlot>>,
) {
    let mut sentinel = Sentinel {
        shared,
        index,
        slot,
        respawn: true,
    };
    CURRENT_CREW.with(|current| current.set(shared.id()));
    if let Some(hook) = &shared.config.on_thread_start {
        unwind::call_logged("thread start hook", || hook(index));
    }
    let exit = shared.work(index, slot);
    if let Some(hook) = &shared.config.on_thread_exit {
        unwind::call_logged("thread exit hook", || hook(index));
    }
    sentinel.respawn = matches!(exit, Exit::Retire);
}

/// Replaces its worker when dropped with `respawn` set — after a panicking
/// job under `PanicPolicy::Respawn`, or while unwinding from a panic that
/// escaped the loop — unless the pool is cancelled. Always counts the
/// worker out.
struct Sentinel<'a, J: Send + 'static, E: Exec<J>> {
    shared: &'a Arc<Shared<J, E>>,
    index: usize,
    slot: &'a Arc<CachePadded<WorkerSlot>>,
    respawn: bool,
}

impl<J: Send + 'static, E: Exec<J>> Drop for Sentinel<'_, J, E> {
    fn drop(&mut self) {
        let shared = self.shared;
        if (self.respawn || thread::panicking()) && !shared.ctx.is_done() {
            match spawn_worker(shared, self.index, Arc::clone(self.slot)) {
                Ok(()) => {
                    shared.counters.respawned.fetch_add(1, Ordering::Relaxed);
                    log::debug!(
                        "brigade: respawned worker {}-{}",
                        shared.config.thread_name,
                        self.index
                    );
                }
                Err(err) => {
                    log::error!(
                        "brigade: could not respawn worker {}-{}: {err}",
                        shared.config.thread_name,
                        self.index
                    );
                    // The last worker gone with jobs queued would strand
                    // them; cancel so their handles are told instead.
                    if shared.counters.live.load(Ordering::Acquire) <= 1 {
                        shared.ctx.cancel();
                        shared.drain();
                    }
                }
            }
        }
        shared.worker_exited();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::sync::{AtomicUsize, Mutex};

    /// Thread-name prefix and worker index whose spawn fails, for the
    /// half-built crew test.
    static FAIL_SPAWN: Mutex<Option<(String, usize)>> = Mutex::new(None);

    pub(super) fn maybe_fail_spawn(name: &str, index: usize) -> std::io::Result<()> {
        match &*FAIL_SPAWN.lock() {
            Some((prefix, at)) if prefix == name && *at == index => {
                Err(std::io::Error::other("injected spawn failure"))
            }
            _ => Ok(()),
        }
    }

    struct Noop;

    impl Exec<()> for Noop {
        fn run(&self, (): (), _worker: &Worker<'_>) -> Outcome {
            Outcome::Completed
        }
        fn discard(&self, (): (), _reason: Cancelled) {}
    }

    fn threads_named(prefix: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .map(|tasks| {
                tasks
                    .filter_map(Result::ok)
                    .filter(|task| {
                        std::fs::read_to_string(task.path().join("comm"))
                            .is_ok_and(|comm| comm.starts_with(prefix))
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    #[test]
    fn half_built_crew_leaks_no_thread() {
        // Workers 0..3 start, worker 3 fails: start() must stop and join the
        // three it started before returning the error.
        let name = "halfbuilt";
        *FAIL_SPAWN.lock() = Some((name.to_owned(), 3));
        let exited = Arc::new(AtomicUsize::new(0));
        let on_exit = Arc::clone(&exited);
        let config = CrewConfig {
            workers: 6,
            queue_capacity: Some(4),
            thread_name: name.to_owned(),
            stack_size: None,
            panic_policy: PanicPolicy::Respawn,
            on_thread_start: None,
            on_thread_exit: Some(Arc::new(move |_| {
                on_exit.fetch_add(1, Ordering::SeqCst);
            })),
        };
        let result = Crew::start(config, Context::new(), Noop);
        *FAIL_SPAWN.lock() = None;
        // Joined, not merely told to stop: all three exit hooks already ran.
        assert_eq!(exited.load(Ordering::SeqCst), 3);
        let err = result.err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("failed to spawn worker thread: injected spawn failure")
        );
        // Joined threads may linger in /proc for a moment after join returns.
        let deadline = Instant::now() + Duration::from_secs(10);
        while threads_named(name) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(threads_named(name), 0);
    }
}
