//! [`ThreadPool`]: a supervised pool of OS threads for closures.
//!
//! * [`builder.rs`](ThreadPoolBuilder): configuration, validated in `build()`;
//! * `handle.rs`: [`JobHandle`], the caller's end of a submitted job;
//! * `job.rs`: the type-erased jobs the pool queues;
//! * `map/`: [`Map`], `map` / `map_unordered` / `try_map`;
//! * `scope.rs`: [`Scope`], jobs that borrow from the caller's stack.
//!
//! # Submitting
//!
//! The operation families are named once: `try_x` never blocks, `x` blocks
//! while the queue is full (backpressure, woken by the pool's cancellation),
//! and `x_timeout` blocks at most so long. A job that is not accepted is
//! handed back inside the error, so nothing the caller gave is lost.
//!
//! `x_or_run_here` ([`submit_or_run_here`](ThreadPool::submit_or_run_here),
//! [`execute_or_run_here`](ThreadPool::execute_or_run_here)) is Java's
//! `CallerRunsPolicy` on the call: where `try_x` would say `Full`, the
//! calling thread runs the job itself, through the same lifecycle as a
//! worker (context, per-job timeout, rate limit, panic capture, stats,
//! hooks), and gets back a handle already finished. It blocks the caller
//! for the job's whole run, so it is a brake for a producer's own thread,
//! never for an event loop. A closed or cancelled pool refuses the job and
//! hands it back, as every other submit does; it is never dropped.
//!
//! # Shutdown
//!
//! The seed's three flavours, each one call that consumes the pool:
//! [`join`](ThreadPool::join) drains, [`shutdown_now`](ThreadPool::shutdown_now)
//! cancels, [`shutdown_timeout`](ThreadPool::shutdown_timeout) drains until
//! a deadline and then cancels. Dropping the pool drains and joins like
//! `join`. Called from inside one of the pool's own jobs, none of them can
//! wait for the thread it runs on; they close intake and return at once,
//! and the workers finish the queue and exit on their own.

mod awaiting;
mod builder;
mod handle;
mod job;
mod routed;
mod schedule;
// The map is not model-checked (see `sync.rs`): it reaches the reorder
// buffer, which is not built under loom.
#[cfg(not(loom))]
mod completions;
#[cfg(not(loom))]
mod map;
mod scope;

use std::time::{Duration, Instant};

pub use awaiting::{CancelOnDrop, SubmitAsync};
pub use builder::ThreadPoolBuilder;
#[cfg(not(loom))]
pub use completions::{Completions, NextCompletion};
use handle::JobCell;
pub use handle::JobHandle;
use job::{ExecJob, Lent, PoolExec, Task, unerase};
#[cfg(not(loom))]
pub use map::{DEFAULT_READ_AHEAD, Map};
pub use routed::Routed;
use schedule::Timer;
pub use schedule::{Ended, Every, Missed, OnError, Schedule};
pub use scope::{Scope, ScopedJoinHandle};

use crate::context::Context;
use crate::crew::{Crew, JobsTx, Route, Shutter, Wait, Work};
use crate::error::{SizingError, SubmitError, TrySubmitError};
use crate::stats::Stats;
use crate::sync::Arc;

/// A pool of supervised worker threads that runs closures.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade::ThreadPool;
///
/// let pool = ThreadPool::builder().workers(4).job_timeout(Duration::from_secs(1)).build()?;
/// let handles: Vec<_> = (0..8u64)
///     .map(|n| pool.submit(move |ctx| {
///         ctx.check()?; // stop early if the job was cancelled
///         Ok::<u64, brigade::Cancelled>(n * n)
///     }))
///     .collect::<Result<_, _>>()
///     .map_err(|e| e.kind())?;
/// let squares: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
/// assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49]);
/// pool.join();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Differences from `rayon::ThreadPool`
///
/// * Jobs get a [`Context`] for cancellation and deadlines; rayon has none.
/// * A panicking job is caught and reported on its handle, and its worker
///   is replaced; rayon aborts the process on an unhandled job panic.
/// * The queue is bounded by default, so a fast producer is slowed down
///   rather than allowed to queue without limit.
/// * There is no work stealing: jobs run in submission order across the
///   workers. A job that joins another job of the same pool that has not
///   started runs it inline (see [`JobHandle::join`]), so joining never
///   deadlocks on a queued job; jobs that wait on each other in a cycle,
///   or through something other than a handle (a channel, a lock), still
///   can on a pool with too few workers.
pub struct ThreadPool {
    /// `None` once intake is closed. Dropped before `crew`, whose own drop
    /// waits for the workers that this disconnection lets finish.
    intake: Option<JobsTx<Task>>,
    /// Closed by [`close`](ThreadPool::close), through `&self`.
    shutter: Shutter,
    /// A shutdown returned a report (of what never ran, among the rest).
    reported: bool,
    /// Delayed jobs and schedules (`schedule/`); its thread starts on
    /// first use and is joined before `crew` waits for the workers.
    timer: Arc<Timer>,
    crew: Crew<Task, PoolExec>,
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        // On a cancelled pool the drain ends at once: its workers are leaving.
        self.close_and_drain();
        // A cancelled pool cannot drain: say what it discarded, unless a
        // shutdown already reported it.
        if self.context().is_done() && !self.reported {
            self.crew.wait(None);
            let never_ran = self.crew.stats().cancelled;
            if never_ran > 0 {
                log::warn!(
                    "brigade: a cancelled ThreadPool was dropped; {never_ran} of its jobs never ran \
                     (their handles report Cancelled)"
                );
            }
        }
    }
}

impl ThreadPool {
    /// No more jobs: drops the queue's sender, so workers exit once it is
    /// empty, and seals the crew, so no worker is started again.
    fn close_intake(&mut self) {
        self.timer.stop_and_join(self.context().reason());
        self.intake = None;
        self.crew.seal();
    }

    /// Closes intake and lets the queue drain at the size the adaptive
    /// controller steers to (it would not grow a sealed crew); then seals.
    fn close_and_drain(&mut self) {
        self.timer.stop_and_join(self.context().reason());
        self.intake = None;
        self.crew.drain_steered();
        self.crew.seal();
    }
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("stats", &self.stats())
            .field("context", self.context())
            .finish()
    }
}

/// What a shutdown found, from [`ThreadPool::shutdown_now`] and
/// [`ThreadPool::shutdown_timeout`].
///
/// Counts cover the pool's whole life. Every accepted job either ran or
/// never ran: `ran + never_ran == submitted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Jobs accepted over the pool's life.
    pub submitted: u64,
    /// Jobs that started running, whatever their outcome.
    pub ran: u64,
    /// Of `ran`, jobs that finished cleanly.
    pub completed: u64,
    /// Accepted jobs that never started: discarded by cancellation or this
    /// shutdown, or cancelled through their handle first. Their handles say
    /// [`JobError::Cancelled`](crate::JobError::Cancelled).
    pub never_ran: u64,
    /// Delayed jobs ([`schedule_after`](ThreadPool::schedule_after),
    /// [`schedule_at`](ThreadPool::schedule_at)) not yet due when the pool
    /// stopped: they never ran, and their handles say
    /// [`JobError::Cancelled`](crate::JobError::Cancelled). Also the next
    /// attempts of [retrying jobs](ThreadPool::submit_retrying) paused at
    /// that time (their handles say
    /// [`RetryError::Cancelled`](crate::RetryError::Cancelled)). Not part
    /// of `submitted`, which counts jobs once they are due.
    pub delayed_never_ran: u64,
    /// Schedules ([`schedule`](ThreadPool::schedule)) that were still
    /// running when the pool stopped; each ended with
    /// [`Ended::PoolStopped`].
    pub schedules_stopped: u64,
    /// Whether the queue drained without a hard cancel (always `false` for
    /// `shutdown_now`).
    pub drained: bool,
    /// How long the shutdown took.
    pub elapsed: Duration,
}

impl ThreadPool {
    /// A [`ThreadPoolBuilder`] with the defaults.
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::default()
    }

    /// Queues a fire-and-forget closure, waiting while the queue is full.
    ///
    /// A panic in `f` is caught, logged and counted, and under the default
    /// policy its worker is replaced.
    ///
    /// # Errors
    ///
    /// The closure is handed back in [`SubmitError::Closed`] if the pool no
    /// longer accepts jobs, or [`SubmitError::Cancelled`] if the pool is (or
    /// becomes, while waiting) cancelled.
    #[inline]
    pub fn execute<F>(&self, f: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.enqueue(Task::boxed(ExecJob(f)), Wait::Forever)
            .map_err(|err| blocking(err, |task| unerase::<ExecJob<F>>(task).0))
    }

    /// Like [`execute`](Self::execute), but never blocks.
    ///
    /// # Errors
    ///
    /// The closure is handed back: [`TrySubmitError::Full`] if the queue is
    /// full (with a rendezvous queue: if no worker is waiting),
    /// [`TrySubmitError::Closed`] or [`TrySubmitError::Cancelled`].
    pub fn try_execute<F>(&self, f: F) -> Result<(), TrySubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.enqueue(Task::boxed(ExecJob(f)), Wait::Now)
            .map_err(|err| err.map(|task| unerase::<ExecJob<F>>(task).0))
    }

    /// Queues a job that receives its [`Context`] and returns a value,
    /// waiting while the queue is full.
    ///
    /// The job's context is a child of the pool's, with the earlier of the
    /// per-job timeout (counted from when the job starts) and the pool's
    /// deadline.
    ///
    /// # Warning: timeouts are cooperative
    ///
    /// A job that ignores its context runs to the end. If it returns after
    /// its context is done, the value is dropped and the handle reports
    /// [`JobError::TimedOut`](crate::JobError::TimedOut) (its own timeout)
    /// or [`JobError::Cancelled`](crate::JobError::Cancelled) (a
    /// cancellation or the pool's deadline).
    ///
    /// # Errors
    ///
    /// The closure is handed back in [`SubmitError::Closed`] or
    /// [`SubmitError::Cancelled`], as for [`execute`](Self::execute).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade::{JobError, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().workers(1).job_timeout(Duration::from_millis(10)).build()?;
    /// let slow = pool.submit(|ctx| {
    ///     // A well-behaved job waits on its context, not a bare sleep.
    ///     let _ = ctx.sleep(Duration::from_secs(60));
    ///     "done"
    /// }).map_err(|e| e.kind())?;
    /// assert_eq!(slow.join(), Err(JobError::TimedOut));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn submit<F, T>(&self, f: F) -> Result<JobHandle<T>, SubmitError<F>>
    where
        F: FnOnce(&Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (cell, task) = JobCell::new(f, self.crew.id());
        match self.enqueue(Task::Shared(task), Wait::Forever) {
            Ok(()) => Ok(cell.handle()),
            Err(err) => Err(blocking(err, |task| take_back(&cell, task))),
        }
    }

    /// [`submit`](Self::submit) for async code: a future that waits for
    /// room in the queue without blocking the thread that polls it, then
    /// resolves to the job's handle, which is itself a future.
    ///
    /// The backpressure a blocking `submit` applies by parking its thread,
    /// this applies by staying `Pending`: the task is woken when a worker
    /// frees a slot, or when the pool is closed or cancelled. A full queue
    /// slows the producer down instead of growing. No async runtime is
    /// needed; any executor can poll it. Dropping the future before it
    /// resolves drops the job unqueued.
    ///
    /// # Errors
    ///
    /// As for [`submit`](Self::submit): the job is handed back with
    /// `Closed` or `Cancelled`.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::ThreadPool;
    ///
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// # runtime.block_on(async {
    /// let pool = ThreadPool::builder().workers(2).queue_capacity(16).build()?;
    /// // Inside async code: waits for room, then for the job, never blocking.
    /// let handle = pool.submit_async(|_ctx| (1..=10u64).product::<u64>()).await?;
    /// assert_eq!(handle.await?, 3_628_800);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_async<F, T>(&self, f: F) -> SubmitAsync<'_, F, T>
    where
        F: FnOnce(&Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        SubmitAsync::new(self, f)
    }

    /// Like [`submit`](Self::submit), but never blocks.
    ///
    /// # Errors
    ///
    /// As for [`try_execute`](Self::try_execute).
    pub fn try_submit<F, T>(&self, f: F) -> Result<JobHandle<T>, TrySubmitError<F>>
    where
        F: FnOnce(&Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_with(f, Wait::Now)
    }

    /// Like [`submit`](Self::submit), but waits at most `wait` for room in
    /// the queue.
    ///
    /// # Errors
    ///
    /// As for [`try_execute`](Self::try_execute); `Full` means the queue
    /// stayed full for the whole wait.
    pub fn submit_timeout<F, T>(
        &self,
        f: F,
        wait: Duration,
    ) -> Result<JobHandle<T>, TrySubmitError<F>>
    where
        F: FnOnce(&Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_with(f, Wait::at_most(wait))
    }

    fn submit_with<F, T>(&self, f: F, wait: Wait) -> Result<JobHandle<T>, TrySubmitError<F>>
    where
        F: FnOnce(&Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (cell, task) = JobCell::new(f, self.crew.id());
        match self.enqueue(Task::Shared(task), wait) {
            Ok(()) => Ok(cell.handle()),
            Err(err) => Err(err.map(|task| take_back(&cell, task))),
        }
    }

    /// Queues a job if the queue has room now, and otherwise runs it right
    /// here, on the calling thread, before returning: Java's
    /// `CallerRunsPolicy`, asked for per call. A producer that outpaces
    /// the pool is slowed down by doing the work itself, and nothing waits
    /// in an unbounded queue.
    ///
    /// A job run here goes through the same lifecycle as one a worker
    /// runs: its context is a child of the pool's, with the per-job
    /// timeout and the pool's deadline; it waits at the pool's rate
    /// limiter, if any; a panic is caught and reported on its handle as
    /// [`JobError::Panicked`](crate::JobError::Panicked) (it never unwinds
    /// into the caller) and, under [`PanicPolicy::CancelPool`](crate::PanicPolicy::CancelPool),
    /// cancels the pool; it is counted in [`stats`](Self::stats) (with
    /// [`Stats::busy`] counting the caller while it runs) and seen by the
    /// `on_job_done` and `propagate` hooks. The handle comes back already
    /// finished: [`join`](JobHandle::join) returns at once. A panic here
    /// replaces no thread (the thread is the caller's), so thread-local
    /// state it left behind stays with the caller.
    ///
    /// # Warning: it blocks the caller for the job's whole run
    ///
    /// When the queue is full, this call returns only after the job has
    /// run, however long that takes (and after a wait at the pool's rate
    /// limiter). Never call it from a thread that must stay responsive —
    /// an async executor's thread, an event loop, a UI thread — use
    /// [`submit_async`](Self::submit_async) or [`try_submit`](Self::try_submit)
    /// there. It is a brake on a producer, meant for the producer's own
    /// thread.
    ///
    /// # Errors
    ///
    /// The closure is handed back, never run and never dropped:
    /// [`SubmitError::Closed`] if the pool no longer accepts jobs,
    /// [`SubmitError::Cancelled`] if the pool is cancelled before the job
    /// could be queued or started here (including while it waits at the
    /// rate limiter, or when the rate limiter cannot let it start before
    /// the pool's deadline). Java's policy silently drops the job after
    /// shutdown; this refuses instead. A cancellation that comes after the
    /// job started reaches it through its context, as on a worker.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::ThreadPool;
    ///
    /// // One worker and room for one queued job.
    /// let pool = ThreadPool::builder().workers(1).queue_capacity(1).build()?;
    /// let (started_tx, started) = brigade::channel::bounded(1);
    /// let (release_tx, release) = brigade::channel::bounded::<()>(0);
    /// let busy = pool
    ///     .submit(move |_ctx| {
    ///         started_tx.send(()).expect("the caller waits");
    ///         let _ = release.recv(); // until the caller lets go
    ///     })
    ///     .map_err(|e| e.kind())?;
    /// started.recv()?;
    /// let queued = pool.submit(|_ctx| "ran on the worker").map_err(|e| e.kind())?;
    ///
    /// // The worker is busy and the queue full: this job runs right here.
    /// let caller = std::thread::current().id();
    /// let here = pool
    ///     .submit_or_run_here(move |_ctx| std::thread::current().id() == caller)
    ///     .map_err(|e| e.kind())?;
    /// assert!(here.is_finished());
    /// assert_eq!(here.join(), Ok(true));
    ///
    /// drop(release_tx);
    /// assert_eq!(queued.join(), Ok("ran on the worker"));
    /// busy.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_or_run_here<F, T>(&self, f: F) -> Result<JobHandle<T>, SubmitError<F>>
    where
        F: FnOnce(&Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (cell, task) = JobCell::new(f, self.crew.id());
        match self.enqueue_or_run_here(Task::Shared(task), None) {
            Ok(()) => Ok(cell.handle()),
            Err(err) => Err(blocking(err, |task| take_back(&cell, task))),
        }
    }

    /// [`execute`](Self::execute)'s shape of
    /// [`submit_or_run_here`](Self::submit_or_run_here): queues a
    /// fire-and-forget closure if the queue has room now, and otherwise
    /// runs it on the calling thread before returning.
    ///
    /// The job run here is caught, logged and counted like one run by a
    /// worker (a panic never unwinds into the caller; under
    /// [`PanicPolicy::CancelPool`](crate::PanicPolicy::CancelPool) it
    /// cancels the pool).
    ///
    /// # Warning: it blocks the caller for the job's whole run
    ///
    /// As for [`submit_or_run_here`](Self::submit_or_run_here): never call
    /// it from an async executor's thread, an event loop or any thread
    /// that must stay responsive. It is a brake on a producer.
    ///
    /// # Errors
    ///
    /// The closure is handed back, never run and never dropped, in
    /// [`SubmitError::Closed`] or [`SubmitError::Cancelled`], as for
    /// [`submit_or_run_here`](Self::submit_or_run_here).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use brigade::ThreadPool;
    ///
    /// let pool = ThreadPool::builder().workers(2).queue_capacity(4).build()?;
    /// let done = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..100 {
    ///     let done = Arc::clone(&done);
    ///     // A fast producer: whenever the queue is full, it lends a hand.
    ///     pool.execute_or_run_here(move || {
    ///         done.fetch_add(1, Ordering::Relaxed);
    ///     })
    ///     .map_err(|e| e.kind())?;
    /// }
    /// pool.join();
    /// assert_eq!(done.load(Ordering::Relaxed), 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn execute_or_run_here<F>(&self, f: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.enqueue_or_run_here(Task::boxed(ExecJob(f)), None)
            .map_err(|err| blocking(err, |task| unerase::<ExecJob<F>>(task).0))
    }

    /// Queues a task, along `route` if it has one, if there is room now;
    /// if not, runs it on this thread through the crew's lifecycle. Never
    /// `Full`.
    fn enqueue_or_run_here(
        &self,
        task: Task,
        route: Option<Route>,
    ) -> Result<(), TrySubmitError<Task>> {
        let (Some(tx), false) = (&self.intake, self.shutter.is_closed()) else {
            return Err(TrySubmitError::Closed(task));
        };
        let closed = Some(self.shutter.signal());
        match route {
            None => self.crew.submit_or_run_here(tx, task, closed),
            Some(route) => self.crew.submit_routed_or_run_here(tx, task, route, closed),
        }
    }

    /// Queues a task, waiting for room as `wait` allows.
    #[inline]
    fn enqueue(&self, task: Task, wait: Wait) -> Result<(), TrySubmitError<Task>> {
        match &self.intake {
            Some(tx) if !self.shutter.is_closed() => {
                self.crew
                    .submit(tx, task, wait, Some(self.shutter.signal()))
            }
            _ => Err(TrySubmitError::Closed(task)),
        }
    }

    /// Queues a task along `route` (`routed.rs`), waiting for room as
    /// `wait` allows.
    fn enqueue_routed(
        &self,
        task: Task,
        route: Route,
        wait: Wait,
    ) -> Result<(), TrySubmitError<Task>> {
        match &self.intake {
            Some(tx) if !self.shutter.is_closed() => {
                self.crew
                    .submit_routed(tx, task, route, wait, Some(self.shutter.signal()))
            }
            _ => Err(TrySubmitError::Closed(task)),
        }
    }

    /// Stops taking jobs, through a shared reference: later submits fail
    /// with `Closed`, submitters waiting for room wake with `Closed`, and
    /// the workers run what is already queued. The pool's threads stay
    /// until it is joined, shut down or dropped (which, with intake
    /// closed, only waits for the queue). Idempotent.
    ///
    /// For a pool shared behind an `Arc`, where `join` (which takes the
    /// pool by value) cannot be called by every owner.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use brigade::{SubmitError, ThreadPool};
    ///
    /// let pool = Arc::new(ThreadPool::builder().workers(2).build()?);
    /// let shared = Arc::clone(&pool);
    /// std::thread::spawn(move || shared.close()).join().unwrap();
    /// assert!(matches!(pool.execute(|| ()), Err(SubmitError::Closed(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) {
        self.shutter.close();
        // Nothing not yet due runs (see `schedule/`).
        self.timer.stop(self.context().reason());
        // Futures waiting for room resolve as `Closed`.
        self.crew.wake_room();
    }

    /// Queues another front door's job (an `ErrGroup` task), waiting for
    /// room as `wait` allows; a refused job comes back.
    pub(crate) fn submit_work<W: Work + 'static>(
        &self,
        work: W,
        wait: Wait,
    ) -> Result<(), TrySubmitError<W>> {
        self.enqueue(Task::boxed(Lent(work)), wait)
            .map_err(|err| err.map(|task| unerase::<Lent<W>>(task).0))
    }

    /// Every job's deadline, counted from its start.
    /// The hook that carries the submitter's context into its jobs.
    pub(crate) fn propagate(&self) -> Option<&crate::crew::Propagate> {
        self.crew.propagate()
    }

    fn job_timeout(&self) -> Option<Duration> {
        self.crew.job_timeout()
    }

    /// Resizes the pool to `n` workers. Growing starts the new workers at
    /// once; shrinking lets idle workers leave first and busy ones after
    /// their current job, so no job is lost or run twice. Returns at once:
    /// [`Stats::workers`] reaches `n` as workers start and leave. A pool
    /// built with [`Sizing::Adaptive`](crate::Sizing::Adaptive) keeps
    /// steering its own size; a closed pool only shrinks.
    ///
    /// # Errors
    ///
    /// [`SizingError::ZeroWorkers`] or [`SizingError::TooManyWorkers`]; the
    /// pool is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::ThreadPool;
    ///
    /// let pool = ThreadPool::builder().workers(2).build()?;
    /// pool.set_workers(6)?; // more threads for a burst of waiting jobs
    /// pool.set_workers(1)?; // and back down afterwards
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_workers(&self, n: usize) -> Result<(), SizingError> {
        self.crew.set_workers(n)
    }

    /// A snapshot of the pool's counters; see [`Stats`].
    pub fn stats(&self) -> Stats {
        self.crew.stats()
    }

    /// The pool's context. Cancelling it cancels the pool: queued jobs are
    /// discarded (their handles say `Cancelled`), running jobs see their
    /// contexts cancelled, and submits are refused.
    pub fn context(&self) -> &Context {
        self.crew.context()
    }

    /// Drain shutdown: stops intake, runs everything already queued, and
    /// waits for every worker to exit. Under [`Sizing::Adaptive`](crate::Sizing::Adaptive) the
    /// controller keeps sizing the pool until the queue is empty, so a
    /// burst queued just before `join` runs at the size it needs.
    ///
    /// Called from one of the pool's own jobs, it cannot wait for itself:
    /// it stops intake and returns, and the workers drain and exit on their
    /// own.
    pub fn join(mut self) {
        self.close_and_drain();
        self.crew.wait(None);
    }

    /// Cancel shutdown: cancels the pool, discards the queue, and waits for
    /// the workers to exit. Running jobs see their contexts cancelled; a job
    /// that ignores its context delays the return until it finishes.
    ///
    /// From one of the pool's own jobs it cannot wait for itself; it returns
    /// after cancelling, and the report's counts may still grow.
    pub fn shutdown_now(mut self) -> ShutdownReport {
        let start = Instant::now();
        self.close_intake();
        self.crew.cancel();
        self.crew.wait(None);
        self.report(start, false)
    }

    /// Stop-accepting-then-drain shutdown: stops intake, lets the workers
    /// drain the queue until `timeout`, then cancels whatever is left (as
    /// [`shutdown_now`](Self::shutdown_now)).
    ///
    /// # Warning: timeouts are cooperative
    ///
    /// The hard cancel at `timeout` reaches running jobs through their
    /// contexts; one that ignores it delays the return until it finishes.
    ///
    /// From one of the pool's own jobs it cannot wait for itself: it stops
    /// intake and returns at once (`drained` is `false`), and the workers
    /// finish the queue without a hard cancel.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> ShutdownReport {
        let start = Instant::now();
        self.close_intake();
        if self.crew.on_own_worker() {
            // It cannot wait for the thread it runs on: intake is closed,
            // and the workers finish the queue on their own.
            return self.report(start, false);
        }
        let drained = self.crew.wait(start.checked_add(timeout));
        if !drained {
            self.crew.cancel();
            self.crew.wait(None);
        }
        self.report(start, drained)
    }

    fn report(&mut self, start: Instant, drained: bool) -> ShutdownReport {
        self.reported = true;
        let stats = self.crew.stats();
        let unfired = self.timer.unfired();
        ShutdownReport {
            delayed_never_ran: unfired.delayed,
            schedules_stopped: unfired.schedules,
            submitted: stats.submitted,
            ran: stats.completed + stats.failed,
            completed: stats.completed,
            never_ran: stats.cancelled,
            drained,
            elapsed: start.elapsed(),
        }
    }
}

/// The closure of a submit the pool refused, taken back out of its cell
/// before the refused task (whose drop would discard it) goes.
fn take_back<F, T>(cell: &JobCell<F, T>, refused: Task) -> F
where
    F: FnOnce(&Context) -> T + Send + 'static,
    T: Send + 'static,
{
    let closure = cell.take_closure();
    drop(refused);
    match closure {
        Some(f) => f,
        // A refused task never reached a worker or a drain, so its cell
        // still holds the closure.
        None => unreachable!("brigade: a refused submit's closure is still in its cell"),
    }
}

/// Converts the error of a waiting submit. A waiting submit never reports
/// `Full`: it waits for room instead, until it succeeds or the pool is
/// closed or cancelled.
fn blocking<J>(err: TrySubmitError<Task>, unerase: impl FnOnce(Task) -> J) -> SubmitError<J> {
    match err {
        TrySubmitError::Cancelled(task) => SubmitError::Cancelled(unerase(task)),
        TrySubmitError::Closed(task) | TrySubmitError::Full(task) => {
            SubmitError::Closed(unerase(task))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use super::ThreadPool;
    use crate::context::Context;
    use crate::lane::Lane;
    use crate::sync::Arc;

    /// How long a test waits for what must happen.
    const LONG: Duration = Duration::from_secs(30);

    #[test]
    // Ten pools racing real threads for a turn: Miri's scheduler takes
    // minutes and decides the race its own way.
    #[cfg_attr(miri, ignore)]
    fn a_worker_that_takes_another_ones_turn_wakes_it_for_the_job_left_ready() {
        // Found in review: two workers, Background capped at 1. B1 runs,
        // B2 is held at the cap, and the other worker blocks. B1's last
        // act submits H (High), whose turn goes to the channel for the
        // blocked worker. B1's worker ends B1, which makes B2 ready, then
        // receives H's turn itself and takes H. The blocked worker, woken
        // for a turn it found gone, slept on, and B2 waited for H. The
        // blocked worker wins the race for the turn in some rounds, so
        // there are several.
        for round in 0..10 {
            assert!(
                b2_runs_beside_h(),
                "round {round}: B2 waited for H with a worker asleep"
            );
        }
    }

    /// One round of the test above: whether B2 started while H ran.
    fn b2_runs_beside_h() -> bool {
        let pool = Arc::new(
            ThreadPool::builder()
                .workers(2)
                .lane_limit(Lane::Background, 1)
                .build()
                .expect("build"),
        );
        let (go, wait_go) = mpsc::channel::<()>();
        let (b2_started, wait_b2) = mpsc::channel::<()>();
        let (h_handle, wait_h) = mpsc::channel();
        let submitter = Arc::clone(&pool);
        pool.lane(Lane::Background)
            .execute(move || {
                wait_go.recv_timeout(LONG).expect("the test lets B1 go");
                let high = submitter
                    .lane(Lane::High)
                    .submit(move |_| wait_b2.recv_timeout(Duration::from_secs(5)).is_ok());
                h_handle
                    .send(high.expect("a live pool accepts"))
                    .expect("the test waits");
            })
            .expect("a live pool accepts");
        pool.lane(Lane::Background)
            .execute(move || {
                let _ = b2_started.send(());
            })
            .expect("a live pool accepts");
        settles("the idle worker never blocked", || {
            pool.crew.blocked_workers() != 0
        });
        go.send(()).expect("B1 waits");
        let mut high = wait_h.recv_timeout(LONG).expect("B1 submits H");
        high.join_timeout(LONG).expect("H ends") == Ok(true)
    }

    /// Waits, `LONG` at most, until `done` holds.
    fn settles(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + LONG;
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::yield_now();
        }
    }

    /// A pool of `workers`, all parked in the jobs channel's `recv`.
    fn parked_pool(parent: &Context, workers: usize, capacity: usize) -> ThreadPool {
        let pool = ThreadPool::builder()
            .workers(workers)
            .queue_capacity(capacity)
            .context(parent)
            .build()
            .expect("build");
        settles("the workers never parked", || {
            pool.crew.blocked_workers() == workers
        });
        pool
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_cancellation_ends_parked_workers_while_intake_is_open() {
        // Parked workers are in a `recv` that a cancellation does not
        // disconnect: only the turns it sends can end them while the pool
        // is neither joined nor dropped.
        let parent = Context::new();
        let pool = parked_pool(&parent, 4, 1);
        parent.cancel();
        settles("parked workers outlived the cancellation", || {
            pool.stats().workers == 0
        });
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_cancellation_reaches_parked_workers_past_a_full_queue() {
        // A job fills the queue of one as the pool is cancelled: a turn
        // that does not fit is passed on by whichever worker drains.
        for _ in 0..50 {
            let parent = Context::new();
            let pool = parked_pool(&parent, 4, 1);
            let _ = pool.execute(|| {});
            parent.cancel();
            settles("parked workers outlived the cancellation", || {
                pool.stats().workers == 0
            });
        }
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_shrink_ends_parked_workers_while_intake_is_open() {
        let pool = parked_pool(&Context::new(), 4, 1);
        pool.set_workers(1).expect("a valid count");
        settles("parked workers outlived the shrink", || {
            pool.stats().workers == 1
        });
        assert_eq!(pool.submit(|_| 7).expect("open").join(), Ok(7));
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_shrink_retires_the_idle_worker_not_the_busy_one() {
        // Found in review: the turn a shrink sent could wake a worker
        // that then took a job queued just after it, so the token waited
        // for that job's end while the other worker slept on (about one
        // round in eight).
        for _ in 0..50 {
            let pool = parked_pool(&Context::new(), 2, 4);
            pool.set_workers(1).expect("a valid count");
            let (release, held) = mpsc::channel::<()>();
            pool.execute(move || {
                let _ = held.recv_timeout(LONG);
            })
            .expect("open");
            settles("the idle worker stayed while the other ran a job", || {
                pool.stats().workers == 1
            });
            release.send(()).expect("the job waits");
            pool.join();
        }
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn nudges_do_not_pile_up_while_every_worker_is_busy() {
        // Found in review: a join that ran a keyed job inline nudged idle
        // workers for each job its end made ready, with none idle to take
        // the nudges, and the retire channel grew by one per job.
        let pool = Arc::new(ThreadPool::builder().workers(2).build().expect("build"));
        let jobs = 20_000;
        let (done, all_done) = mpsc::channel();
        for i in 0..jobs {
            let (inner, done) = (Arc::clone(&pool), done.clone());
            pool.execute(move || {
                let first = inner.keyed(i).submit(|_| 1).expect("accepted");
                let second = inner.keyed(i).submit(|_| 2).expect("accepted");
                let joined = (first.join(), second.join());
                done.send(joined == (Ok(1), Ok(2))).expect("the test waits");
            })
            .expect("accepted");
        }
        for _ in 0..jobs {
            assert_eq!(all_done.recv_timeout(LONG), Ok(true));
        }
        let backlog = pool.crew.retire_backlog();
        assert!(backlog <= 2, "{backlog} nudges left for 2 workers");
    }

    #[test]
    fn job_contexts_do_not_pile_up_in_the_pool_context() {
        // Jobs that block on their context register with the pool's
        // context while they run and leave its child table empty when they
        // finish: each worker keeps one registered context of its own.
        let pool = ThreadPool::builder()
            .workers(2)
            .job_timeout(Duration::from_secs(3600))
            .build()
            .expect("build");
        let jobs = if cfg!(miri) { 20 } else { 2000 };
        let handles: Vec<_> = (0..jobs)
            .map(|_| {
                pool.submit(|ctx: &Context| ctx.sleep(Duration::ZERO))
                    .expect("submit")
            })
            .collect();
        for handle in handles {
            assert_eq!(handle.join(), Ok(Ok(())));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while pool.context().registered_children() > 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(pool.context().registered_children() <= 2);
    }
}
