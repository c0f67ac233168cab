//! [`WorkerPool`]: typed jobs in, a bounded results channel out.
//!
//! The user contract is on [`WorkerPool`]. Design notes: the pool runs on
//! the shared worker runtime (`crew`), each worker owning a clone of the
//! results `Sender`, so the channel disconnects when the last worker exits;
//! ordered delivery goes through `ordered::Reorder`.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::context::Context;
use crate::crew::{
    Crew, Exec, JobsTx, OnCancel, Ran, Route, Run, SendFail, Shutter, Ticket, Wait, send,
};
use crate::error::{BuildError, Cancelled, JobError, SizingError, SubmitError, TrySubmitError};
use crate::options::{
    DEFAULT_QUEUE_CAPACITY, Options, OrderWindow, check_capacity, common_setters, order_setters,
};
use crate::ordered::Reorder;
use crate::stats::Stats;
use crate::sync::{AtomicBool, Mutex, Ordering};
use crate::unwind;

mod state;

use state::{Handler, Init, Slot, Starts};

/// One job's result, from [`WorkerPool::results`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Output<R> {
    /// The job's submission index, as returned by [`WorkerPool::submit`].
    pub index: u64,
    /// The handler's value, or why there is none.
    pub result: Result<R, JobError>,
}

/// What a [`WorkerPool`] could not finish, from [`WorkerPool::join`].
#[must_use = "jobs that never ran are handed back here; dropping the leftovers loses them"]
#[non_exhaustive]
pub struct Leftovers<J, R> {
    /// Jobs that never ran (the pool was stopped first), with their
    /// submission indices, in no particular order.
    pub unprocessed: Vec<(u64, J)>,
    /// Outputs produced but not delivered because the pool was stopped
    /// while they waited for room in the results channel.
    pub undelivered: Vec<Output<R>>,
}

impl<J, R> Leftovers<J, R> {
    /// Whether nothing was left over.
    pub fn is_empty(&self) -> bool {
        self.unprocessed.is_empty() && self.undelivered.is_empty()
    }
}

impl<J, R> fmt::Debug for Leftovers<J, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leftovers")
            .field("unprocessed", &self.unprocessed.len())
            .field("undelivered", &self.undelivered.len())
            .finish()
    }
}

/// A job with its submission index.
pub(crate) struct Indexed<J> {
    index: u64,
    job: J,
}

/// What each worker owns: its results sender and, for a pool built with
/// [`build_with_state`](WorkerPoolBuilder::build_with_state), its state.
pub(crate) struct WorkerLocal<R> {
    results: Sender<Output<R>>,
    state: Slot,
}

/// Runs a [`WorkerPool`]'s jobs. Each worker's local state is its clone of
/// the results `Sender`.
struct WorkerExec<J, R> {
    handler: Handler<J, R>,
    /// Builds each worker's state, for a pool that has one.
    init: Option<Init>,
    starts: Starts,
    ctx: Context,
    cancel: Receiver<()>,
    /// Disconnects when the pool is dropped: from then on nobody may be
    /// reading, so a worker stops waiting for room in the results channel
    /// (an output that does not fit is dropped) but still runs the queue.
    dropped: Receiver<()>,
    reorder: Option<Reorder<Output<R>>>,
    /// An ordered output could not be delivered: later ones are not.
    gap: AtomicBool,
    leftovers: Mutex<Leftovers<J, R>>,
}

impl<J: Send + 'static, R: Send + 'static> Exec<Indexed<J>> for WorkerExec<J, R> {
    type Local = WorkerLocal<R>;

    fn run(&self, job: Indexed<J>, run: Run<'_>, local: &mut Self::Local) -> Ran {
        let Indexed { index, job } = job;
        let WorkerLocal { results, state } = local;
        run.call(
            |_| Some(|ctx: &Context| (self.handler)(ctx, state, job)),
            |end| {
                let output = Output {
                    index,
                    result: end.into_result(),
                };
                self.output(results, output);
            },
        )
    }

    fn discard(&self, job: Indexed<J>, _reason: Cancelled) {
        self.leftovers.lock().unprocessed.push((job.index, job.job));
    }

    fn enter(&self, index: usize, local: &mut Self::Local) -> Result<(), String> {
        match &self.init {
            Some(init) => self.starts.enter(init, index, &mut local.state),
            None => Ok(()),
        }
    }

    fn leave(&self, local: &mut Self::Local) {
        state::leave(&mut local.state);
    }
}

impl<J, R> WorkerExec<J, R> {
    fn new(
        handler: Handler<J, R>,
        init: Option<Init>,
        ctx: &Context,
        dropped: Receiver<()>,
        reorder: Option<Reorder<Output<R>>>,
    ) -> Self {
        Self {
            handler,
            init,
            starts: Starts::default(),
            cancel: ctx.done(),
            dropped,
            ctx: ctx.clone(),
            reorder,
            gap: AtomicBool::new(false),
            leftovers: Mutex::new(Leftovers {
                unprocessed: Vec::new(),
                undelivered: Vec::new(),
            }),
        }
    }

    /// Delivers one output: straight to the results channel, or through
    /// the reorder window.
    fn output(&self, results: &Sender<Output<R>>, output: Output<R>) {
        let Some(reorder) = &self.reorder else {
            self.deliver(results, output);
            return;
        };
        match reorder.insert(output.index, output, &self.cancel) {
            Ok(None) => {}
            Ok(Some(batch)) => self.emit(reorder, results, batch),
            Err(output) => self.leftovers.lock().undelivered.push(output),
        }
    }

    /// Sends one output, or keeps it as a leftover if the pool is
    /// cancelled first. Returns whether it was sent.
    fn deliver(&self, results: &Sender<Output<R>>, output: Output<R>) -> bool {
        match send(
            results,
            output,
            &self.ctx,
            OnCancel::Watch(&self.cancel),
            None,
            Some(&self.dropped),
        ) {
            Ok(()) => true,
            Err(
                SendFail::Cancelled(output)
                | SendFail::Disconnected(output)
                | SendFail::Full(output)
                | SendFail::Closed(output),
            ) => {
                self.leftovers.lock().undelivered.push(output);
                false
            }
        }
    }

    /// Emits ready runs in order until none is ready. If delivery stops on
    /// cancellation, the rest of the run is kept as leftovers, and this
    /// worker keeps the emitter role: nothing is emitted after a
    /// cancellation, and `join` collects what the window still holds. An
    /// output a dropped pool could not deliver leaves a gap: nothing after
    /// it is delivered either (a reader must never see the order broken),
    /// but the window keeps moving, into the leftovers, so the queue
    /// drains.
    fn emit(
        &self,
        reorder: &Reorder<Output<R>>,
        results: &Sender<Output<R>>,
        mut batch: Vec<Output<R>>,
    ) {
        loop {
            let mut outputs = batch.into_iter();
            while let Some(output) = outputs.next() {
                if self.gap.load(Ordering::Relaxed) {
                    self.leftovers.lock().undelivered.push(output);
                } else if !self.deliver(results, output) {
                    if self.ctx.is_done() {
                        self.leftovers.lock().undelivered.extend(outputs);
                        return;
                    }
                    // ORDERING: Relaxed: only the emitter, one at a time
                    // under the window's claim, reads or writes it.
                    self.gap.store(true, Ordering::Relaxed);
                }
            }
            match reorder.next_batch() {
                Some(next) => batch = next,
                None => return,
            }
        }
    }
}

/// Where submissions go: the jobs channel and the next index, under one
/// lock so that indices follow queue order.
struct Intake<J> {
    tx: Option<JobsTx<Indexed<J>>>,
    next: u64,
}

/// A pool of workers running one handler over typed jobs, with a bounded
/// results channel.
///
/// The seed's "Pool struct with Submit/Close/Stop/Results", as a library.
/// One handler `Fn(&Context, J) -> R` runs on N workers of the same
/// runtime as [`ThreadPool`](crate::ThreadPool); each worker waits for a
/// job or cancellation, runs it, then waits to deliver the result *or*
/// cancellation — so after [`stop`](WorkerPool::stop) no worker stays
/// blocked behind a slow consumer (the seed's inner-select rule).
///
/// # Results
///
/// Every job that runs produces exactly one [`Output`]: its submission
/// index and `Result<R, JobError>`. A panic, a per-job timeout or a
/// cancellation while running reaches the consumer as the `Err`; nothing
/// is dropped silently. With [`ordered`](WorkerPoolBuilder::ordered), outputs
/// arrive in submission order through a reorder buffer whose window bounds
/// memory: only results for indices `next .. next + window` are held
/// (`next` the lowest not yet delivered), and a worker whose result lies
/// past the window waits — waking on cancellation — until `next` catches
/// up. Memory stays O(window) however slow one job is, and this cannot
/// deadlock: the queue is FIFO, so job `next` always started before any
/// later one and its worker never waits.
///
/// After a cancellation workers stop delivering; whatever could not be
/// delivered, and every job that never ran, is handed back by
/// [`join`](WorkerPool::join) as [`Leftovers`].
///
/// # Lifecycle
///
/// * [`close`](WorkerPool::close): no more jobs; workers finish the queue,
///   and the results channel disconnects after the last result.
/// * [`stop`](WorkerPool::stop): cancel; queued jobs are not run.
/// * [`join`](WorkerPool::join): close, wait for the workers, return the
///   leftovers.
/// * `Drop`: close, then drain: every queued job still runs, as when a
///   [`ThreadPool`](crate::ThreadPool) is dropped. Dropping never blocks on
///   unread results: from the drop on, an output that does not fit in the
///   results channel is dropped (a clone of [`results`](WorkerPool::results)
///   held elsewhere still receives the ones that fit). A pool that was
///   stopped first has nothing to drain; the jobs it discards are counted
///   in a `log::warn!` (use `join()` to get them back).
///
/// # Submission index
///
/// [`submit`](WorkerPool::submit) returns the job's index: the number of
/// jobs accepted before it. Indices have no gaps (a rejected job takes
/// none), which is what lets ordered delivery wait for every index in turn.
/// Submitters take a short lock to draw an index and enqueue together.
///
/// # Examples
///
/// ```
/// use brigade::WorkerPool;
///
/// let pool = WorkerPool::builder().workers(4).build(|_ctx, n: u64| n * n)?;
/// for n in 0..10 {
///     pool.submit(n)?;
/// }
/// pool.close(); // no more jobs: results() disconnects after the last one
/// let mut squares: Vec<u64> = pool.results().iter().map(|out| out.result.unwrap()).collect();
/// squares.sort();
/// assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WorkerPool<J, R> {
    intake: Mutex<Intake<J>>,
    /// Closed by `close()`: wakes submitters blocked on a full queue.
    shutter: Shutter,
    /// Dropped by `Drop`, so workers stop waiting for a reader.
    dropped_tx: Option<Sender<()>>,
    results: Receiver<Output<R>>,
    crew: Crew<Indexed<J>, WorkerExec<J, R>>,
}

/// Configures a [`WorkerPool`]; from [`WorkerPool::builder`].
///
/// The same settings as [`ThreadPoolBuilder`](crate::ThreadPoolBuilder), plus the results
/// channel's capacity and ordered delivery.
#[must_use = "a WorkerPoolBuilder does nothing until build() is called"]
#[derive(Debug)]
pub struct WorkerPoolBuilder {
    options: Options,
    results_capacity: usize,
    /// The reorder window, for delivery in submission order.
    ordered: Option<OrderWindow>,
}

impl Default for WorkerPoolBuilder {
    fn default() -> Self {
        Self {
            options: Options::default(),
            results_capacity: DEFAULT_QUEUE_CAPACITY,
            ordered: None,
        }
    }
}

impl WorkerPoolBuilder {
    common_setters!();

    /// How many results may wait for the consumer (default
    /// [`DEFAULT_QUEUE_CAPACITY`]); a worker with a result for a full
    /// channel waits (backpressure). `0` hands each result over directly.
    pub fn results_capacity(mut self, capacity: usize) -> Self {
        self.results_capacity = capacity;
        self
    }

    order_setters!();

    /// Validates the settings and starts the workers, which all run
    /// `handler`.
    ///
    /// The handler may be invoked on several threads at once.
    ///
    /// # Errors
    ///
    /// As for [`ThreadPoolBuilder::build`](crate::ThreadPoolBuilder::build), plus
    /// [`BuildError::ResultsTooLarge`] and [`BuildError::InvalidWindow`].
    pub fn build<J, R, H>(self, handler: H) -> Result<WorkerPool<J, R>, BuildError>
    where
        J: Send + 'static,
        R: Send + 'static,
        H: Fn(&Context, J) -> R + Send + Sync + 'static,
    {
        self.start(state::plain(handler), None)
            .map(|(pool, _)| pool)
    }

    /// Validates the settings and starts the workers, each building its
    /// state with `init` on its own thread; returns the pool and how many
    /// workers it started with.
    fn start<J, R>(
        self,
        handler: Handler<J, R>,
        init: Option<Init>,
    ) -> Result<(WorkerPool<J, R>, usize), BuildError>
    where
        J: Send + 'static,
        R: Send + 'static,
    {
        let results_capacity = check_capacity(self.results_capacity, |requested, max| {
            BuildError::ResultsTooLarge { requested, max }
        })?;
        let (config, ctx) = self.options.validate()?;
        let reorder = match self.ordered {
            Some(window) => Some(Reorder::new(window.size(config.workers)?)),
            None => None,
        };
        let (dropped_tx, dropped) = crossbeam_channel::bounded(0);
        let workers = config.workers;
        let exec = WorkerExec::new(handler, init, &ctx, dropped, reorder);
        let (jobs_tx, jobs_rx) = config.channel();
        let (results_tx, results_rx) = crossbeam_channel::bounded(results_capacity);
        // Each worker owns a results sender; with this last clone dropped
        // after start, the channel disconnects when the last worker exits.
        // The crew's maker keeps one sender for workers started later
        // (`set_workers`); it is let go when intake closes (`seal`).
        let crew = Crew::start(config, ctx, exec, (&jobs_tx, jobs_rx), move || {
            WorkerLocal {
                results: results_tx.clone(),
                state: None,
            }
        })?;
        let pool = WorkerPool {
            intake: Mutex::new(Intake {
                tx: Some(jobs_tx),
                next: 0,
            }),
            shutter: Shutter::new(),
            dropped_tx: Some(dropped_tx),
            results: results_rx,
            crew,
        };
        Ok((pool, workers))
    }
}

impl WorkerPool<(), ()> {
    /// A [`WorkerPoolBuilder`] with the defaults. The job and result types
    /// come from the handler given to [`build`](WorkerPoolBuilder::build).
    pub fn builder() -> WorkerPoolBuilder {
        WorkerPoolBuilder::default()
    }
}

impl<J: Send + 'static, R: Send + 'static> WorkerPool<J, R> {
    /// Queues `job`, waiting while the queue is full. Returns the job's
    /// submission index.
    ///
    /// # Errors
    ///
    /// The job is handed back in [`SubmitError::Closed`] if the pool was
    /// closed (also while waiting), or [`SubmitError::Cancelled`] if it is
    /// (or becomes, while waiting) stopped or cancelled.
    pub fn submit(&self, job: J) -> Result<u64, SubmitError<J>> {
        self.enqueue(job, Wait::Forever).map_err(blocking)
    }

    /// [`submit`](Self::submit) for async code: a future that waits for
    /// room in the queue without blocking the thread that polls it (woken
    /// when a worker frees a slot, or the pool is closed or cancelled),
    /// then resolves to the job's submission index. No async runtime is
    /// needed. Dropped before it resolves, the job is dropped unqueued.
    ///
    /// # Errors
    ///
    /// As for [`submit`](Self::submit).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::WorkerPool;
    ///
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// # runtime.block_on(async {
    /// let pool = WorkerPool::builder().workers(2).queue_capacity(4).build(|_ctx, n: u64| n * n)?;
    /// for n in 0..10 {
    ///     pool.submit_async(n).await?; // Pending while the queue is full
    /// }
    /// pool.close();
    /// let total: u64 = pool.results().iter().map(|out| out.result.unwrap()).sum();
    /// assert_eq!(total, 285);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_async(&self, job: J) -> WorkerSubmit<'_, J, R> {
        WorkerSubmit {
            pool: self,
            job: Some(job),
            ticket: Ticket::default(),
        }
    }

    /// Like [`submit`](Self::submit), but never blocks.
    ///
    /// # Errors
    ///
    /// The job is handed back: [`TrySubmitError::Full`] if the queue is full
    /// (or another submitter is waiting for room), [`TrySubmitError::Closed`]
    /// or [`TrySubmitError::Cancelled`].
    pub fn try_submit(&self, job: J) -> Result<u64, TrySubmitError<J>> {
        self.enqueue(job, Wait::Now)
    }

    /// Like [`submit`](Self::submit), but waits at most `wait` for room.
    ///
    /// # Errors
    ///
    /// As for [`try_submit`](Self::try_submit); `Full` means there was no
    /// room for the whole wait.
    pub fn submit_timeout(&self, job: J, wait: Duration) -> Result<u64, TrySubmitError<J>> {
        self.enqueue(job, Wait::at_most(wait))
    }

    /// Queues `job` as one of key `key`'s: jobs of a key run one at a
    /// time, in submission order; different keys run in parallel on every
    /// worker, and a key whose job is running holds back only its own
    /// later jobs (see [`Routed`](crate::Routed), which does the same for a
    /// `ThreadPool`). Waits while the queue is full, or while the key has
    /// as many jobs waiting as
    /// [`key_queue_limit`](WorkerPoolBuilder::key_queue_limit) allows
    /// (1,024 by default). Returns the submission index.
    ///
    /// An [`ordered`](WorkerPoolBuilder::ordered) pool keeps its promise:
    /// the lowest undelivered job's key has no earlier job left, so it is
    /// never held back. (Priority lanes, which could hold it back behind
    /// later work, are `ThreadPool`'s only.)
    ///
    /// # Errors
    ///
    /// As for [`submit`](Self::submit).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().workers(4).build(|_ctx, (account, amount): (u32, i64)| (account, amount))?;
    /// for (account, amount) in [(1, 100), (2, 5), (1, -30), (2, 7), (1, -20)] {
    ///     pool.submit_keyed(account, (account, amount))?;
    /// }
    /// pool.close();
    /// let of_one: Vec<i64> = pool.results().iter()
    ///     .map(|out| out.result.unwrap())
    ///     .filter(|&(account, _)| account == 1)
    ///     .map(|(_, amount)| amount)
    ///     .collect();
    /// assert_eq!(of_one, [100, -30, -20]); // one account's jobs ran (and finished) in order
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_keyed(&self, key: impl Hash, job: J) -> Result<u64, SubmitError<J>> {
        self.enqueue_to(job, Some(Route::keyed(&key)), Wait::Forever)
            .map_err(blocking)
    }

    /// Like [`submit_keyed`](Self::submit_keyed), but never blocks.
    ///
    /// # Errors
    ///
    /// As for [`try_submit`](Self::try_submit); `Full` also when the key
    /// has as many jobs waiting as its limit allows.
    pub fn try_submit_keyed(&self, key: impl Hash, job: J) -> Result<u64, TrySubmitError<J>> {
        self.enqueue_to(job, Some(Route::keyed(&key)), Wait::Now)
    }

    /// Like [`submit_keyed`](Self::submit_keyed), but waits at most `wait`.
    ///
    /// # Errors
    ///
    /// As for [`try_submit_keyed`](Self::try_submit_keyed); `Full` means
    /// there was no room for the whole wait.
    pub fn submit_keyed_timeout(
        &self,
        key: impl Hash,
        job: J,
        wait: Duration,
    ) -> Result<u64, TrySubmitError<J>> {
        self.enqueue_to(job, Some(Route::keyed(&key)), Wait::at_most(wait))
    }

    fn enqueue(&self, job: J, wait: Wait) -> Result<u64, TrySubmitError<J>> {
        self.enqueue_to(job, None, wait)
    }

    /// Queues `job` along `route` (`None`: the plain queue).
    fn enqueue_to(
        &self,
        job: J,
        route: Option<Route>,
        wait: Wait,
    ) -> Result<u64, TrySubmitError<J>> {
        let intake = match wait {
            Wait::Now => self.intake.try_lock(),
            Wait::Forever => Some(self.intake.lock()),
            Wait::Until(deadline) => self.intake.try_lock_until(deadline),
        };
        let Some(mut intake) = intake else {
            return Err(TrySubmitError::Full(job));
        };
        let index = intake.next;
        let Some(tx) = &intake.tx else {
            return Err(TrySubmitError::Closed(job));
        };
        let job = Indexed { index, job };
        let closed = Some(self.shutter.signal());
        let sent = match route {
            None => self.crew.submit(tx, job, wait, closed),
            Some(route) => self.crew.submit_routed(tx, job, route, wait, closed),
        };
        match sent {
            Ok(()) => {
                intake.next += 1;
                Ok(index)
            }
            Err(err) => Err(err.map(|indexed| indexed.job)),
        }
    }

    /// The results channel: one [`Output`] per job that ran, in completion
    /// order (or submission order, if built [`ordered`](WorkerPoolBuilder::ordered)).
    /// It disconnects once the pool is closed or stopped and the last worker
    /// has exited, so `for output in pool.results()` ends by itself.
    ///
    /// Clone the receiver to read from another thread.
    pub fn results(&self) -> &Receiver<Output<R>> {
        &self.results
    }

    /// Cancels the pool: queued jobs do not run (they come back from
    /// [`join`](Self::join)), running jobs see their context cancelled, and
    /// no worker waits for the consumer any more. Idempotent.
    pub fn stop(&self) {
        self.crew.cancel();
        self.crew.seal();
    }

    /// Closes the pool, waits for every worker to exit, and returns what was
    /// left over (nothing, unless the pool was stopped or cancelled).
    ///
    /// Outputs still unread stay in the results channel for any clone of
    /// [`results`](Self::results) still held; if the pool's was the last
    /// receiver, they are dropped. An output whose `Drop` panics is
    /// contained, but the channel then stops dropping: the outputs behind it
    /// are leaked.
    ///
    /// # Deadlock
    ///
    /// The workers deliver every result before they exit. If nobody reads
    /// [`results`](Self::results) and it fills up, `join` waits for a reader;
    /// read on another thread, or [`stop`](Self::stop) first.
    pub fn join(self) -> Leftovers<J, R> {
        self.close();
        self.finish()
    }

    /// Cancel shutdown: [`stop`](Self::stop), then wait for the workers and
    /// return what never ran or was never delivered. Running jobs see their
    /// contexts cancelled; one that ignores it delays the return until it
    /// finishes.
    pub fn shutdown_now(self) -> Leftovers<J, R> {
        self.stop();
        self.finish()
    }

    /// Stop-accepting-then-drain shutdown: closes intake, lets the workers
    /// drain the queue (and deliver, to whoever reads
    /// [`results`](Self::results)) until `timeout`, then stops the pool as
    /// [`shutdown_now`](Self::shutdown_now) does. Every job submitted is
    /// accounted for: it produced an output (read, or in the leftovers'
    /// `undelivered`), or it is in `unprocessed`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().workers(2).build(|_ctx, n: u32| n + 1)?;
    /// for n in 0..10 {
    ///     pool.submit(n)?;
    /// }
    /// let reader = pool.results().clone();
    /// let leftovers = pool.shutdown_timeout(Duration::from_secs(10));
    /// let read = reader.iter().count();
    /// assert_eq!(read + leftovers.unprocessed.len() + leftovers.undelivered.len(), 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_timeout(self, timeout: Duration) -> Leftovers<J, R> {
        self.close();
        if !self.crew.wait(Instant::now().checked_add(timeout)) {
            self.stop();
        }
        self.finish()
    }

    /// Waits for the workers and collects the leftovers.
    fn finish(mut self) -> Leftovers<J, R> {
        self.crew.wait(None);
        self.release_results();
        let exec = self.crew.exec();
        let mut leftovers = std::mem::replace(
            &mut *exec.leftovers.lock(),
            Leftovers {
                unprocessed: Vec::new(),
                undelivered: Vec::new(),
            },
        );
        if let Some(reorder) = &exec.reorder {
            leftovers.undelivered.extend(reorder.take_pending());
        }
        leftovers
    }

    /// The pool's context; cancelling it is [`stop`](Self::stop).
    pub fn context(&self) -> &Context {
        self.crew.context()
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
    pub fn set_workers(&self, n: usize) -> Result<(), SizingError> {
        self.crew.set_workers(n)
    }

    /// A snapshot of the pool's counters; see [`Stats`].
    pub fn stats(&self) -> Stats {
        self.crew.stats()
    }
}

impl<J, R> WorkerPool<J, R> {
    /// No more jobs: later submits fail with `Closed`, submitters waiting
    /// for room wake with `Closed`, and the workers finish the queue and
    /// exit, after which the results channel disconnects. Idempotent.
    pub fn close(&self) {
        // First wake blocked submitters (they hold the intake lock), then
        // drop the jobs sender under that lock.
        self.shutter.close();
        self.intake.lock().tx = None;
        self.crew.seal();
        // Futures waiting for room resolve as `Closed`.
        self.crew.wake_room();
    }

    /// Lets go of the pool's own results receiver once the workers are
    /// gone. Results nobody else can read are dropped with it; quietly, so
    /// that an output whose `Drop` panics cannot unwind out of `join` or
    /// `drop`. (The channel stops at such an output: the outputs after it
    /// are leaked rather than dropped.)
    fn release_results(&mut self) {
        let results = std::mem::replace(&mut self.results, crossbeam_channel::never());
        unwind::drop_quietly(results);
    }
}

impl<J, R> Drop for WorkerPool<J, R> {
    fn drop(&mut self) {
        // Drain, as every pool's drop does, but never wait on a consumer
        // that may be this very thread: workers stop waiting for room in
        // the results channel, and join while the receiver still keeps
        // the channel (and its unread outputs) alive.
        self.dropped_tx = None;
        self.close();
        self.crew.wait(None);
        self.release_results();
        let discarded = self.crew.exec().leftovers.lock().unprocessed.len();
        if discarded > 0 {
            log::warn!(
                "brigade: a stopped WorkerPool was dropped with {discarded} queued jobs that never ran; \
                 join() hands them back"
            );
        }
    }
}

impl<J, R> fmt::Debug for WorkerPool<J, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPool")
            .field("context", self.crew.context())
            .finish_non_exhaustive()
    }
}

/// The future of [`WorkerPool::submit_async`]: resolves to the job's
/// submission index once the queue has room, without blocking the thread
/// that polls it. Dropped before it resolves, the job is dropped unqueued.
/// Polled again after it resolved, it has no job left to queue and
/// resolves at once to `Ok(u64::MAX)`, an index no job has.
#[must_use = "futures do nothing unless awaited; the job is queued only when polled"]
pub struct WorkerSubmit<'p, J, R> {
    pool: &'p WorkerPool<J, R>,
    /// `None` once resolved.
    job: Option<J>,
    ticket: Ticket,
}

// The job is only ever moved out of its `Option`, never pinned.
impl<J, R> Unpin for WorkerSubmit<'_, J, R> {}

impl<J: Send + 'static, R: Send + 'static> Future for WorkerSubmit<'_, J, R> {
    type Output = Result<u64, SubmitError<J>>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(job) = this.job.take() else {
            return Poll::Ready(Ok(u64::MAX));
        };
        let pool = this.pool;
        let polled = pool.crew.room().poll_send(
            &mut this.ticket,
            cx.waker(),
            job,
            |job| match pool.enqueue(job, Wait::Now) {
                Err(TrySubmitError::Full(job)) => Err(job),
                Ok(index) => Ok(Ok(index)),
                Err(TrySubmitError::Cancelled(job)) => Ok(Err(SubmitError::Cancelled(job))),
                Err(TrySubmitError::Closed(job)) => Ok(Err(SubmitError::Closed(job))),
            },
            || true,
        );
        match polled {
            Ok(done) => Poll::Ready(done),
            Err(job) => {
                this.job = Some(job);
                Poll::Pending
            }
        }
    }
}

impl<J, R> Drop for WorkerSubmit<'_, J, R> {
    fn drop(&mut self) {
        if self.job.is_some() {
            self.pool.crew.room().leave(&mut self.ticket, false);
        }
    }
}

impl<J, R> fmt::Debug for WorkerSubmit<'_, J, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerSubmit")
            .field("resolved", &self.job.is_none())
            .finish()
    }
}

/// A waiting submit's error: it never reports `Full`, since it waits for
/// room.
fn blocking<J>(err: TrySubmitError<J>) -> SubmitError<J> {
    match err {
        TrySubmitError::Cancelled(job) => SubmitError::Cancelled(job),
        TrySubmitError::Closed(job) | TrySubmitError::Full(job) => SubmitError::Closed(job),
    }
}
