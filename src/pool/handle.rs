//! [`JobHandle`]: the caller's end of one submitted job.
//!
//! The queue and the handle share one [`JobCell`]: the closure, a
//! mutex-guarded state and a condition variable, in a single allocation
//! (no channel and no second allocation per job). The state moves
//! `Queued(f) → Running(ctx) → Done(result) → Taken`, or `Queued → Done`
//! when the job is cancelled or discarded before it starts. The queue's
//! reference is a [`SharedTask`], whose `Drop` discards a job that was
//! never run, so a handle can never wait forever.

use std::fmt;
use std::future::Future;
use std::num::NonZeroU64;
use std::ops::DerefMut;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use crate::context::Context;
use crate::crew::{self, CellJob, Ran, Run, Start};
use crate::error::{Cancelled, JobError};
use crate::sync::{Arc, AtomicBool, Condvar, Mutex, Ordering};
use crate::unwind;

/// One submitted job and its result, shared by the queue and the handle.
pub(crate) struct JobCell<F, T> {
    state: Mutex<Inner<F, T>>,
    ready: Condvar,
    /// The crew it was submitted to (see `crew::run_inline`); 0 for none.
    crew: usize,
    /// The hash of its key, if submitted with one (never zero: see
    /// `Route::key_of`): a join runs it inline only while it is its key's
    /// next job (the board then holds the key for the run), and fails
    /// rather than hang when the joiner is an earlier job of the key.
    key: Option<NonZeroU64>,
    /// Set under the `state` lock: a join ran the job inline, and counted
    /// it, so its queued envelope counts nothing.
    ran_here: AtomicBool,
    /// Set under the `state` lock: a discard counted the job as never run,
    /// so no join may run it inline.
    claimed: AtomicBool,
}

/// What the `state` lock guards. The waker shares the lock (rather than
/// a lock of its own) to keep a cell small: every pending job, delayed
/// ones included, holds one.
struct Inner<F, T> {
    job: State<F, T>,
    /// The task awaiting the handle; woken once the result is ready.
    waker: Option<Waker>,
}

enum State<F, T> {
    /// In the queue; `cancel` now means it never runs.
    Queued(F),
    /// Running under this context; `cancel` cancels it.
    Running(Context),
    /// Finished, or cancelled before it started; the handle may take it.
    Done(Result<T, JobError>),
    /// The handle took the result (or a rejected submit took the closure
    /// back).
    Taken,
}

/// What a handle needs of a cell, with the closure type erased.
pub(crate) trait CellResult<T>: Send + Sync {
    fn wait(&self, deadline: Option<Instant>) -> Option<Result<T, JobError>>;
    /// Runs the job here if it is still queued and this thread is one of
    /// its pool's workers (a join that could otherwise deadlock). `false`:
    /// the job can never start while this thread waits for it (a later
    /// job of the key this worker is running), which the join reports as
    /// [`JobError::QueuedBehindCaller`]. A `bool`, not a `Result`, so
    /// every join's common case returns in a register.
    fn help(&self) -> bool;
    /// The result if ready, else `waker` is woken once it is.
    fn poll(&self, waker: &Waker) -> Poll<Result<T, JobError>>;
    fn cancel(&self);
    fn is_finished(&self) -> bool;
}

/// The queue's reference to a cell. Dropped without running (or being
/// discarded), it discards the job, so its handle is told.
pub(crate) struct SharedTask {
    cell: Option<Arc<dyn CellJob>>,
}

/// A handle to a job submitted with [`ThreadPool::submit`](crate::ThreadPool::submit).
///
/// Dropping the handle detaches the job: it still runs, and its result is
/// dropped.
///
/// # Examples
///
/// ```
/// use brigade::{JobError, ThreadPool};
///
/// let pool = ThreadPool::builder().workers(2).build()?;
/// let sum = pool.submit(|_ctx| (1..=10).sum::<u32>()).map_err(|e| e.kind())?;
/// assert_eq!(sum.join(), Ok(55));
///
/// let boom = pool.submit(|_ctx| -> u32 { panic!("no such file") }).map_err(|e| e.kind())?;
/// assert_eq!(boom.join(), Err(JobError::Panicked("no such file".into())));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping a JobHandle detaches the job and discards its result"]
pub struct JobHandle<T> {
    cell: Arc<dyn CellResult<T>>,
}

impl<F, T> JobCell<F, T>
where
    F: FnOnce(&Context) -> T + Send + 'static,
    T: Send + 'static,
{
    /// A cell for `f`, to be queued on crew `crew`, and the queue's
    /// reference to it.
    pub(crate) fn new(f: F, crew: usize) -> (Arc<Self>, SharedTask) {
        Self::queued(f, crew, None)
    }

    /// A cell for `f`, a job of the key hashed to `key` on crew `crew`.
    pub(crate) fn keyed(f: F, crew: usize, key: u64) -> (Arc<Self>, SharedTask) {
        Self::queued(f, crew, Some(key))
    }

    fn queued(f: F, crew: usize, key: Option<u64>) -> (Arc<Self>, SharedTask) {
        let cell = Arc::new(Self::pending(f, crew, key));
        let task = SharedTask {
            cell: Some(Arc::clone(&cell) as Arc<dyn CellJob>),
        };
        (cell, task)
    }

    /// A cell for `f`, queued on crew `crew` (with the hash of its key, if
    /// any), for a caller that shares it its own way (a delayed job holds
    /// its cell inline, `schedule/delayed.rs`).
    pub(crate) fn pending(f: F, crew: usize, key: Option<u64>) -> Self {
        Self::with_state(State::Queued(f), crew, key)
    }

    /// A cell whose result was already handed out: its handle's `join`
    /// returns [`JobError::AlreadyJoined`].
    pub(crate) fn joined() -> Arc<Self> {
        Arc::new(Self::with_state(State::Taken, 0, None))
    }

    fn with_state(state: State<F, T>, crew: usize, key: Option<u64>) -> Self {
        Self {
            state: Mutex::new(Inner {
                job: state,
                waker: None,
            }),
            ready: Condvar::new(),
            crew,
            key: key.and_then(NonZeroU64::new),
            ran_here: AtomicBool::new(false),
            claimed: AtomicBool::new(false),
        }
    }

    /// The handle for this cell.
    pub(crate) fn handle(self: Arc<Self>) -> JobHandle<T> {
        JobHandle { cell: self }
    }

    /// Takes the closure back from a job that was never accepted.
    pub(crate) fn take_closure(&self) -> Option<F> {
        let mut state = self.state.lock();
        match std::mem::replace(&mut state.job, State::Taken) {
            State::Queued(f) => Some(f),
            other => {
                state.job = other;
                None
            }
        }
    }

    /// For the worker that dequeued the job: marks it running under `ctx`
    /// and takes its closure out, unless it was cancelled (or discarded)
    /// first, or a join ran it inline.
    fn start(&self, ctx: &Context) -> Start<F> {
        let mut state = self.state.lock();
        match std::mem::replace(&mut state.job, State::Running(ctx.clone())) {
            State::Queued(f) => Start::Run(f),
            other => {
                state.job = other;
                // ORDERING: Relaxed: written under the lock held here.
                if self.ran_here.load(Ordering::Relaxed) {
                    Start::Elsewhere
                } else {
                    Start::Skip
                }
            }
        }
    }

    /// For a join running the job inline: as `start`, unless a discard
    /// claimed it; otherwise nothing is counted here. In a cancelled pool
    /// (`pool`, the context the job's descends from, is done) the job does
    /// not start: it is settled as cancelled and counted here as never run.
    ///
    /// The pool's context, not the job's own `ctx`: that one also carries
    /// the per-job deadline, set just before this start, which a slow
    /// lock or a descheduled thread may let pass first. Such a job starts
    /// and times out, as it does on a worker; it was not cancelled.
    fn start_here(&self, ctx: &Context, pool: &Context) -> Start<F> {
        let mut state = self.state.lock();
        // ORDERING: Relaxed, both: written under the lock held here.
        if !matches!(state.job, State::Queued(_)) || self.claimed.load(Ordering::Relaxed) {
            return Start::Elsewhere;
        }
        self.ran_here.store(true, Ordering::Relaxed);
        if let Some(reason) = pool.reason() {
            self.settle(state, Err(JobError::Cancelled(reason)));
            return Start::Skip;
        }
        match std::mem::replace(&mut state.job, State::Running(ctx.clone())) {
            State::Queued(f) => Start::Run(f),
            _ => unreachable!("brigade: checked queued under the same lock"),
        }
    }

    /// Stores `result` unless one is already there, and wakes the handle
    /// (also a retrying job's outcome, decided after its last attempt).
    pub(crate) fn fill(&self, result: Result<T, JobError>) {
        let state = self.state.lock();
        if matches!(state.job, State::Queued(_) | State::Running(_)) {
            self.settle(state, result);
        }
    }
}

impl<F, T> JobCell<F, T> {
    /// The crew it was submitted to.
    pub(crate) fn crew(&self) -> usize {
        self.crew
    }

    /// The hash of its key, if it has one.
    pub(crate) fn key(&self) -> Option<u64> {
        self.key.map(NonZeroU64::get)
    }

    /// Settles a job still queued as cancelled (`reason`): it never runs.
    /// One a join is running inline (its envelope still queued) keeps its
    /// own result.
    pub(crate) fn settle_cancelled(&self, reason: Cancelled) {
        let state = self.state.lock();
        if matches!(state.job, State::Queued(_)) {
            self.settle(state, Err(JobError::Cancelled(reason)));
        }
    }

    /// Whether the job waits to start: neither run (here or by a worker)
    /// nor settled.
    pub(crate) fn is_queued(&self) -> bool {
        matches!(self.state.lock().job, State::Queued(_))
    }

    /// Whether a join ran (or, in a cancelled pool, settled) the job
    /// inline, and counted it there.
    pub(crate) fn ran_here(&self) -> bool {
        let _state = self.state.lock();
        // ORDERING: Relaxed: written under the lock held here.
        self.ran_here.load(Ordering::Relaxed)
    }

    /// Makes the job `Done(result)` under the held lock `state`, wakes
    /// whoever waits (an awaiting task outside the lock), and drops what
    /// it replaced (a queued closure) outside the lock, quietly.
    fn settle(&self, mut state: impl DerefMut<Target = Inner<F, T>>, result: Result<T, JobError>) {
        let previous = std::mem::replace(&mut state.job, State::Done(result));
        self.ready.notify_all();
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        unwind::drop_quietly(previous);
    }
}

impl<F, T> CellJob for JobCell<F, T>
where
    F: FnOnce(&Context) -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(&self, run: Run<'_>) -> Ran {
        // `start` finds no closure if the handle cancelled the job first.
        run.call(|ctx| self.start(ctx), |end| self.fill(end.into_result()))
    }

    fn discard(&self, reason: Cancelled) {
        self.settle_cancelled(reason);
    }

    fn started(&self) -> bool {
        !matches!(self.state.lock().job, State::Queued(_))
    }

    fn claim(&self) -> u64 {
        let _state = self.state.lock();
        // ORDERING: Relaxed, both: written under the lock held here.
        if self.ran_here.load(Ordering::Relaxed) {
            return 0;
        }
        self.claimed.store(true, Ordering::Relaxed);
        1
    }
}

impl<F, T> CellResult<T> for JobCell<F, T>
where
    F: FnOnce(&Context) -> T + Send + 'static,
    T: Send + 'static,
{
    fn help(&self) -> bool {
        let mut run_here = |run: Run<'_>| {
            let pool = run.parent();
            run.call(
                |ctx| self.start_here(ctx, pool),
                |end| self.fill(end.into_result()),
            )
        };
        match self.key.map(NonZeroU64::get) {
            // Queued behind the caller's own job: it cannot start first.
            Some(key) if crew::runs_key(self.crew, key) => return self.started(),
            // Only if it is its key's next job, the key held meanwhile.
            Some(key) => {
                let cell = std::ptr::from_ref(self).cast::<()>();
                crew::run_keyed_inline(self.crew, key, cell, &mut run_here);
            }
            None => {
                crew::run_inline(self.crew, &mut run_here);
            }
        }
        true
    }

    fn wait(&self, deadline: Option<Instant>) -> Option<Result<T, JobError>> {
        let mut state = self.state.lock();
        loop {
            match std::mem::replace(&mut state.job, State::Taken) {
                State::Done(result) => return Some(result),
                State::Taken => return Some(Err(JobError::AlreadyJoined)),
                pending => state.job = pending,
            }
            match deadline {
                None => self.ready.wait(&mut state),
                Some(deadline) => {
                    if self.ready.wait_until(&mut state, deadline).timed_out() {
                        return match std::mem::replace(&mut state.job, State::Taken) {
                            State::Done(result) => Some(result),
                            pending => {
                                state.job = pending;
                                None
                            }
                        };
                    }
                }
            }
        }
    }

    fn poll(&self, waker: &Waker) -> Poll<Result<T, JobError>> {
        let mut state = self.state.lock();
        match std::mem::replace(&mut state.job, State::Taken) {
            State::Done(result) => return Poll::Ready(result),
            // Polled again after it returned the result.
            State::Taken => return Poll::Ready(Err(JobError::AlreadyJoined)),
            pending => state.job = pending,
        }
        if !state.waker.as_ref().is_some_and(|old| old.will_wake(waker)) {
            state.waker = Some(waker.clone());
        }
        Poll::Pending
    }

    fn cancel(&self) {
        let state = self.state.lock();
        match &state.job {
            State::Queued(_) => {
                self.settle(state, Err(JobError::Cancelled(Cancelled::Canceled)));
            }
            State::Running(ctx) => ctx.cancel(),
            State::Done(_) | State::Taken => {}
        }
    }

    fn is_finished(&self) -> bool {
        matches!(self.state.lock().job, State::Done(_) | State::Taken)
    }
}

impl SharedTask {
    /// The queue's reference to `cell`.
    pub(crate) fn new(cell: Arc<dyn CellJob>) -> Self {
        Self { cell: Some(cell) }
    }

    pub(crate) fn run(mut self, run: Run<'_>) -> Ran {
        match self.cell.take() {
            Some(cell) => {
                let ran = cell.run(run);
                // If the handle is gone this is the last reference, and the
                // result goes with it: a result whose `Drop` panics is the
                // caller's value misbehaving, not the job panicking, so it
                // must not retire the worker.
                unwind::drop_quietly(cell);
                ran
            }
            None => run.skip(),
        }
    }

    /// Hands the cell to `f` instead of discarding it: a refused job its
    /// submitter runs itself.
    pub(crate) fn with_cell(mut self, f: impl FnOnce(&dyn CellJob)) {
        if let Some(cell) = self.cell.take() {
            f(&*cell);
        }
    }

    /// Lets go of the cell without discarding the job: a refused job its
    /// owner keeps pending elsewhere (a delayed job back on the timer).
    pub(crate) fn release(mut self) {
        self.cell = None;
    }

    /// Whether this is the reference to the cell at `cell`.
    pub(crate) fn holds(&self, cell: *const ()) -> bool {
        self.cell
            .as_ref()
            .is_some_and(|held| Arc::as_ptr(held).cast::<()>() == cell)
    }

    /// See [`CellJob::claim`].
    pub(crate) fn claim(&self) -> u64 {
        self.cell.as_ref().map_or(1, |cell| cell.claim())
    }

    pub(crate) fn discard(mut self, reason: Cancelled) {
        if let Some(cell) = self.cell.take() {
            cell.discard(reason);
        }
    }
}

impl Drop for SharedTask {
    fn drop(&mut self) {
        if let Some(cell) = self.cell.take() {
            cell.discard(Cancelled::Canceled);
        }
    }
}

impl<T> JobHandle<T> {
    /// A handle on `cell`, whatever keeps its result (a delayed job's
    /// wrapper, `schedule/`).
    pub(crate) fn from_cell(cell: Arc<dyn CellResult<T>>) -> Self {
        Self { cell }
    }

    /// Waits for the job and returns its value.
    ///
    /// # Errors
    ///
    /// * [`JobError::Panicked`] with the panic's message;
    /// * [`JobError::Cancelled`] if the job never ran (cancelled through
    ///   [`cancel`](Self::cancel), or discarded by a pool cancellation or
    ///   shutdown), or if its context was cancelled before it returned;
    /// * [`JobError::TimedOut`] if it returned after its per-job timeout;
    /// * [`JobError::AlreadyJoined`] if [`join_timeout`](Self::join_timeout)
    ///   already returned the result.
    ///
    /// # Joining from inside the pool
    ///
    /// Called on one of the pool's own workers while the job is still
    /// queued, `join` takes the job and runs it right there, through the
    /// same lifecycle (context, per-job timeout, panic capture, counted in
    /// [`stats`](crate::ThreadPool::stats) once) — so a job that submits and
    /// joins another cannot deadlock, even on a 1-worker pool. A keyed
    /// job runs there only once it is its key's next (none of its key
    /// queued before it or running); until then, and for a job already
    /// running on another worker, `join` waits. An inline job is
    /// not timed and not passed to the `on_job_done` hook. Inline runs nest
    /// (an inline job may join another) while the worker has used less than
    /// half of its stack ([`stack_size`](crate::ThreadPoolBuilder::stack_size),
    /// 2 MiB by default); deeper, `join` waits as on any other thread.
    /// What cannot be helped: jobs that wait for each other in a cycle, or
    /// through a channel or a lock rather than a handle.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use brigade::ThreadPool;
    ///
    /// let pool = Arc::new(ThreadPool::builder().workers(1).build()?);
    /// let inner_pool = Arc::clone(&pool);
    /// let outer = pool.submit(move |_ctx| {
    ///     // Queued behind this very job, on the only worker: run inline.
    ///     let inner = inner_pool.submit(|_ctx| 20 + 1).expect("accepted");
    ///     inner.join().map(|n| n * 2)
    /// })?;
    /// assert_eq!(outer.join()?, Ok(42));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(self) -> Result<T, JobError> {
        if !self.cell.help() {
            return Err(JobError::QueuedBehindCaller);
        }
        self.cell.wait(None).unwrap_or(Err(JobError::AlreadyJoined))
    }

    /// Waits at most `timeout` for the job. `None` means it has not finished
    /// yet (the handle stays usable); `Some` carries what [`join`](Self::join)
    /// would have returned, after which the result is gone and later joins
    /// return [`JobError::AlreadyJoined`]. On one of the pool's own
    /// workers, a job still queued is run inline first, as by
    /// [`join`](Self::join), however long it takes.
    pub fn join_timeout(&mut self, timeout: Duration) -> Option<Result<T, JobError>> {
        if !self.cell.help() {
            return Some(Err(JobError::QueuedBehindCaller));
        }
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.cell.wait(Some(deadline)),
            None => self.cell.wait(None),
        }
    }

    /// Cancels the job. If it has not started, it never will: the handle
    /// reports [`JobError::Cancelled`] at once and the closure is dropped
    /// now, not when the queue reaches it. If it is running, its
    /// context is cancelled (cooperatively: the job must look). If it has
    /// finished, nothing happens.
    pub fn cancel(&self) {
        self.cell.cancel();
    }

    /// Whether a result is ready (including a cancellation), so that
    /// [`join`](Self::join) would not block.
    pub fn is_finished(&self) -> bool {
        self.cell.is_finished()
    }
}

impl<T, E: From<JobError>> JobHandle<Result<T, E>> {
    /// [`join`](Self::join) for a job that returns a `Result`, with the
    /// two layers of error made one: the job's own `Err(e)` is `e`, and a
    /// [`JobError`] (panic, timeout, cancellation) becomes an `E` through
    /// `From`, as `?` would convert it.
    ///
    /// # Errors
    ///
    /// The job's error, or the pool's converted.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::ThreadPool;
    ///
    /// type BoxError = Box<dyn std::error::Error + Send + Sync>;
    ///
    /// let pool = ThreadPool::builder().workers(1).build()?;
    /// let parsed = pool.submit(|_ctx| "42".parse::<u32>().map_err(BoxError::from))?;
    /// assert_eq!(parsed.join_flat()?, 42);
    /// let panicked = pool.submit(|_ctx| -> Result<u32, BoxError> { panic!("bad input") })?;
    /// let shown = panicked.join_flat().unwrap_err().to_string();
    /// assert!(shown.starts_with("job panicked: bad input (at "), "{shown}");
    /// # Ok::<(), BoxError>(())
    /// ```
    pub fn join_flat(self) -> Result<T, E> {
        self.join()?
    }
}

/// Awaiting a handle waits for the job without blocking the thread: the
/// task is woken when the job ends, and the output is what
/// [`join`](JobHandle::join) returns. No async runtime is involved; any
/// executor can poll it.
///
/// Polled again after it returned the result, it returns
/// `Err(JobError::AlreadyJoined)` at once.
impl<T> Future for JobHandle<T> {
    type Output = Result<T, JobError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        self.cell.poll(cx.waker())
    }
}

impl<T> fmt::Debug for JobHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}
