//! [`ErrGroup`]: run a group of fallible tasks, fail fast on the first
//! error, wait for all.
//!
//! # Design
//!
//! * The group's context is a child of the caller's; the first error (or
//!   panic) cancels it, and so does [`wait`](ErrGroup::wait) when it
//!   returns (Go's semantics), so tasks that watch their context stop
//!   early.
//! * `limit(n)` is a [`Semaphore`] of `n` permits: `spawn` takes a permit
//!   first (waiting, and waking on cancellation) and the task gives it back
//!   when it ends.
//! * Tasks run on the group's own threads, started lazily and **reused**:
//!   a finished task's thread takes the next task, so 10,000 tasks under
//!   `limit(8)` start at most 8 threads. A thread marks itself idle
//!   *before* it gives its permit back, so whoever gets that permit finds
//!   an idle thread instead of starting a new one. Without a limit, a task
//!   that finds no idle thread gets a new one (tasks may wait on each
//!   other, so none may be kept waiting for a thread). Or the tasks run on
//!   a [`ThreadPool`] you hand the group ([`ErrGroup::on_pool`]).
//! * A panicking task is reported as [`GroupError::Panicked`] — the first
//!   failure wins, whether error or panic — and cancels the group, like an
//!   error. The panic does not unwind into `wait`.
//! * [`ErrGroup::scope`] runs the same group over scoped threads, so tasks
//!   may borrow from the caller's stack.

use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender};

use crate::context::Context;
use crate::error::{AcquireError, Cancelled, GroupError, GroupLimitError, SpawnError};
use crate::pool::ThreadPool;
use crate::semaphore::{Permit, Semaphore};
use crate::sizing::MAX_WORKERS;
use crate::sync::{Arc, AtomicUsize, Condvar, Mutex, Ordering};
use crate::unwind;

/// A group of tasks that fails fast; see the module docs in the source
/// for the design.
///
/// # Examples
///
/// ```
/// use brigade::{Context, ErrGroup, GroupError};
///
/// let ctx = Context::new();
/// let group = ErrGroup::new(&ctx).limit(4)?;
/// for n in 0..100u32 {
///     let spawned = group.spawn(move |ctx| {
///         ctx.check().map_err(|reason| reason.to_string())?; // stop once cancelled
///         if n == 42 { Err(format!("item {n} is bad")) } else { Ok(()) }
///     });
///     if spawned.is_err() {
///         break; // the group was cancelled by the failure: stop feeding it
///     }
/// }
/// assert_eq!(group.wait(), Err(GroupError::Failed("item 42 is bad".to_owned())));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Differences from Go's `errgroup.Group`
///
/// * [`spawn`](Self::spawn) waiting for a free slot wakes (and hands the
///   closure back) when the group is cancelled; Go's `Go` keeps waiting.
/// * A panic is caught and reported as [`GroupError::Panicked`]; in Go it
///   crashes the program.
/// * Tasks reuse a bounded set of threads; Go starts a goroutine per task.
/// * `limit(0)` is an error; in Go `SetLimit(0)` makes every `Go` block.
/// * `wait` consumes the group: a group is one batch of work.
pub struct ErrGroup<'p, E> {
    core: Arc<Core<E>>,
    runner: Runner<'p>,
}

/// The group's state, shared with its tasks.
struct Core<E> {
    ctx: Context,
    slots: Option<Semaphore>,
    first: Mutex<Option<GroupError<E>>>,
    pending: Mutex<usize>,
    all_done: Condvar,
    spawned: AtomicUsize,
}

/// Where tasks run.
enum Runner<'a> {
    Threads(Threads<'a>),
    Pool(&'a ThreadPool),
}

/// A task as a runner thread sees it: it runs, then hands back the permit
/// for the thread to release once it is idle again.
type Task<'a> = Box<dyn FnOnce() -> Option<Permit> + Send + 'a>;

/// Starts one thread running `work`.
type SpawnThread<'a> =
    Box<dyn Fn(Box<dyn FnOnce() + Send + 'a>) -> std::io::Result<()> + Send + Sync + 'a>;

/// Lazily started, reused threads; see the module docs.
struct Threads<'a> {
    tx: Option<Sender<Task<'a>>>,
    rx: Receiver<Task<'a>>,
    idle: Arc<AtomicUsize>,
    started: AtomicUsize,
    spawn_thread: SpawnThread<'a>,
    handles: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl<E: Send + 'static> ErrGroup<'static, E> {
    /// An empty group under `ctx`, with no limit, running tasks on its own
    /// threads.
    pub fn new(ctx: &Context) -> Self {
        let handles = Arc::new(Mutex::new(Vec::new()));
        let spawn_handles = Arc::clone(&handles);
        let spawn_thread: SpawnThread<'static> = Box::new(move |work| {
            let name = format!("errgroup-{}", spawn_handles.lock().len());
            let handle = thread::Builder::new().name(name).spawn(work)?;
            spawn_handles.lock().push(handle);
            Ok(())
        });
        Self {
            core: Core::new(ctx),
            runner: Runner::Threads(Threads::new(spawn_thread, handles)),
        }
    }
}

impl<'p, E: Send + 'static> ErrGroup<'p, E> {
    /// An empty group under `ctx` whose tasks run on `pool` (as
    /// fire-and-forget jobs), with no limit of its own.
    pub fn on_pool(ctx: &Context, pool: &'p ThreadPool) -> Self {
        Self {
            core: Core::new(ctx),
            runner: Runner::Pool(pool),
        }
    }

    /// At most `n` tasks run at once; [`spawn`](Self::spawn) waits for a
    /// free slot.
    ///
    /// # Errors
    ///
    /// [`GroupLimitError::Zero`] for `n == 0`, [`GroupLimitError::TooLarge`]
    /// past [`MAX_WORKERS`](crate::sizing::MAX_WORKERS), and
    /// [`GroupLimitError::AlreadySpawned`] if a task was already spawned.
    pub fn limit(mut self, n: usize) -> Result<Self, GroupLimitError> {
        check_limit(n, self.core.spawned.load(Ordering::Relaxed))?;
        // Nothing spawned means no task holds the core yet.
        let core = Arc::get_mut(&mut self.core).ok_or(GroupLimitError::AlreadySpawned)?;
        core.slots = Semaphore::new(n).ok();
        Ok(self)
    }

    /// The group's context: cancelled on the first failure and when
    /// [`wait`](Self::wait) returns.
    pub fn context(&self) -> &Context {
        &self.core.ctx
    }

    /// Runs `task` in the group, first waiting for a free slot if the group
    /// has a limit.
    ///
    /// # Errors
    ///
    /// The task is handed back, not run: [`SpawnError::Cancelled`] if the
    /// group's context is (or becomes, while waiting) done;
    /// [`SpawnError::Unavailable`] if no thread could be started or the
    /// pool refused the job.
    pub fn spawn<F>(&self, task: F) -> Result<(), SpawnError<F>>
    where
        F: FnOnce(&Context) -> Result<(), E> + Send + 'static,
    {
        self.spawn_with(task, true)
    }

    /// Like [`spawn`](Self::spawn), but never waits for a slot.
    ///
    /// # Errors
    ///
    /// As for `spawn`, plus [`SpawnError::Full`] if the limit is reached.
    pub fn try_spawn<F>(&self, task: F) -> Result<(), SpawnError<F>>
    where
        F: FnOnce(&Context) -> Result<(), E> + Send + 'static,
    {
        self.spawn_with(task, false)
    }

    fn spawn_with<F>(&self, task: F, block: bool) -> Result<(), SpawnError<F>>
    where
        F: FnOnce(&Context) -> Result<(), E> + Send + 'static,
    {
        match &self.runner {
            Runner::Threads(threads) => spawn_on_threads(&self.core, threads, task, block),
            Runner::Pool(pool) => spawn_on_pool(&self.core, pool, task, block),
        }
    }

    /// How many threads the group has started so far (0 on a pool).
    pub fn threads(&self) -> usize {
        match &self.runner {
            Runner::Threads(threads) => threads.started.load(Ordering::Relaxed),
            Runner::Pool(_) => 0,
        }
    }

    /// Waits for every task, cancels the group's context, and returns the
    /// first failure.
    ///
    /// # Errors
    ///
    /// [`GroupError::Failed`] with the first error a task returned, or
    /// [`GroupError::Panicked`] if a task panicked first.
    pub fn wait(mut self) -> Result<(), GroupError<E>> {
        self.finish()
    }

    fn finish(&mut self) -> Result<(), GroupError<E>> {
        self.core.wait_idle();
        self.core.ctx.cancel();
        if let Runner::Threads(threads) = &mut self.runner {
            threads.close_and_join();
        }
        self.core.first.lock().take().map_or(Ok(()), Err)
    }

    /// Runs `body` with a group whose tasks may borrow from the caller's
    /// stack, then waits for every task, as [`wait`](Self::wait) does. The
    /// limit carries over; the tasks run on scoped threads, reused as in
    /// the owned group (the pool of [`on_pool`](Self::on_pool) is not used).
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::{Context, ErrGroup};
    ///
    /// let words = vec!["alpha", "beta", "gamma"];
    /// let mut lengths = vec![0; words.len()];
    /// let group = ErrGroup::<String>::new(&Context::new()).limit(2)?;
    /// group.scope(|g| {
    ///     for (word, len) in words.iter().zip(lengths.iter_mut()) {
    ///         g.spawn(move |_ctx| {
    ///             *len = word.len();
    ///             Ok(())
    ///         }).map_err(|e| e.to_string())?;
    ///     }
    ///     Ok::<(), String>(())
    /// })??;
    /// assert_eq!(lengths, [5, 4, 5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scope<'env, T>(
        mut self,
        body: impl for<'scope> FnOnce(&ScopedGroup<'scope, 'env, E>) -> T,
    ) -> Result<T, GroupError<E>> {
        let core = Arc::clone(&self.core);
        let value = thread::scope(|scope| {
            let spawn_thread: SpawnThread<'_> = Box::new(move |work| {
                thread::Builder::new()
                    .name("errgroup-scoped".to_owned())
                    .spawn_scoped(scope, work)
                    .map(drop)
            });
            let mut group = ScopedGroup {
                core: Arc::clone(&core),
                threads: Threads::new(spawn_thread, Arc::new(Mutex::new(Vec::new()))),
                _env: PhantomData,
            };
            let value = body(&group);
            group.core.wait_idle();
            group.threads.close_and_join();
            value
        });
        self.core.ctx.cancel();
        if let Runner::Threads(threads) = &mut self.runner {
            threads.close_and_join();
        }
        self.core.first.lock().take().map_or(Ok(value), Err)
    }
}

/// The group handed to the body of [`ErrGroup::scope`]; its tasks may
/// borrow anything that outlives the scope.
pub struct ScopedGroup<'scope, 'env: 'scope, E> {
    core: Arc<Core<E>>,
    threads: Threads<'scope>,
    _env: PhantomData<&'env mut &'env ()>,
}

impl<'scope, E: Send + 'static> ScopedGroup<'scope, '_, E> {
    /// Runs a borrowing task in the group, as [`ErrGroup::spawn`] does.
    ///
    /// # Errors
    ///
    /// As for [`ErrGroup::spawn`].
    pub fn spawn<F>(&self, task: F) -> Result<(), SpawnError<F>>
    where
        F: FnOnce(&Context) -> Result<(), E> + Send + 'scope,
    {
        spawn_on_threads(&self.core, &self.threads, task, true)
    }

    /// Like [`spawn`](Self::spawn), but never waits for a slot.
    ///
    /// # Errors
    ///
    /// As for [`ErrGroup::try_spawn`].
    pub fn try_spawn<F>(&self, task: F) -> Result<(), SpawnError<F>>
    where
        F: FnOnce(&Context) -> Result<(), E> + Send + 'scope,
    {
        spawn_on_threads(&self.core, &self.threads, task, false)
    }

    /// The group's context.
    pub fn context(&self) -> &Context {
        &self.core.ctx
    }
}

fn check_limit(n: usize, spawned: usize) -> Result<(), GroupLimitError> {
    match n {
        0 => Err(GroupLimitError::Zero),
        n if n > MAX_WORKERS => Err(GroupLimitError::TooLarge {
            requested: n,
            max: MAX_WORKERS,
        }),
        _ if spawned > 0 => Err(GroupLimitError::AlreadySpawned),
        _ => Ok(()),
    }
}

fn spawn_on_pool<E, F>(
    core: &Arc<Core<E>>,
    pool: &ThreadPool,
    task: F,
    block: bool,
) -> Result<(), SpawnError<F>>
where
    E: Send + 'static,
    F: FnOnce(&Context) -> Result<(), E> + Send + 'static,
{
    let permit = match core.admit(block) {
        Ok(permit) => permit,
        Err(refused) => return Err(refused.with(task)),
    };
    // Keep the task where it can be taken back if the pool refuses the job.
    let slot = Arc::new(Mutex::new(Some(task)));
    let guard = PoolTask {
        core: Arc::clone(core),
        slot: Arc::clone(&slot),
        pool: pool.context().clone(),
        _permit: permit,
    };
    let job = move || {
        let task = guard.slot.lock().take();
        if let Some(task) = task {
            guard.core.run(task);
        }
    };
    if let Err(refused) = pool.execute(job) {
        // Take the task back before the job (and its guard) is dropped, so
        // the guard does not count it as discarded.
        let task = slot.lock().take();
        drop(refused);
        core.task_done();
        if let Some(task) = task {
            return Err(SpawnError::Unavailable(task));
        }
    }
    Ok(())
}

fn spawn_on_threads<'a, E, F>(
    core: &Arc<Core<E>>,
    threads: &Threads<'a>,
    task: F,
    block: bool,
) -> Result<(), SpawnError<F>>
where
    E: Send + 'static,
    F: FnOnce(&Context) -> Result<(), E> + Send + 'a,
{
    let permit = match core.admit(block) {
        Ok(permit) => permit,
        Err(refused) => return Err(refused.with(task)),
    };
    let slot = Arc::new(Mutex::new(Some(task)));
    let job: Task<'a> = {
        let (core, slot) = (Arc::clone(core), Arc::clone(&slot));
        Box::new(move || {
            if let Some(task) = slot.lock().take() {
                core.run(task);
            }
            permit
        })
    };
    if threads.run(job).is_err() {
        core.task_done();
        if let Some(task) = slot.lock().take() {
            return Err(SpawnError::Unavailable(task));
        }
    }
    Ok(())
}

/// A group task travelling as a pool job. A pool that is cancelled drops
/// its queued jobs unrun; then this guard counts the task done and records
/// that it never ran, so `wait` neither hangs nor reports success for work
/// that did not happen. The permit goes back when the guard is dropped.
struct PoolTask<E, F> {
    core: Arc<Core<E>>,
    slot: Arc<Mutex<Option<F>>>,
    pool: Context,
    _permit: Option<Permit>,
}

impl<E, F> Drop for PoolTask<E, F> {
    fn drop(&mut self) {
        let unrun = self.slot.lock().take();
        if let Some(task) = unrun {
            unwind::drop_quietly(task);
            let reason = self.pool.reason().unwrap_or(Cancelled::Canceled);
            self.core.fail(GroupError::Discarded(reason));
            self.core.task_done();
        }
    }
}

/// Why a task was not admitted, before the task is attached.
enum Refused {
    Cancelled,
    Full,
}

impl Refused {
    fn with<F>(self, task: F) -> SpawnError<F> {
        match self {
            Self::Cancelled => SpawnError::Cancelled(task),
            Self::Full => SpawnError::Full(task),
        }
    }
}

impl<E> Core<E> {
    fn new(ctx: &Context) -> Arc<Self> {
        Arc::new(Self {
            ctx: ctx.child(),
            slots: None,
            first: Mutex::new(None),
            pending: Mutex::new(0),
            all_done: Condvar::new(),
            spawned: AtomicUsize::new(0),
        })
    }

    /// Takes a slot (if limited) and counts the task as pending.
    fn admit(&self, block: bool) -> Result<Option<Permit>, Refused> {
        if self.ctx.is_done() {
            return Err(Refused::Cancelled);
        }
        let permit = match &self.slots {
            None => None,
            Some(slots) => {
                let acquired = if block {
                    slots.acquire_ctx(&self.ctx, 1)
                } else {
                    slots.try_acquire(1)
                };
                match acquired {
                    Ok(permit) => Some(permit),
                    Err(AcquireError::WouldBlock) => return Err(Refused::Full),
                    Err(_) => return Err(Refused::Cancelled),
                }
            }
        };
        // A failing task cancels the group before its slot is released, so
        // a spawn that got that slot sees the cancellation here (the
        // semaphore, like Go's, may grant a waiter whose context was
        // cancelled a moment before).
        if self.ctx.is_done() {
            return Err(Refused::Cancelled);
        }
        self.spawned.fetch_add(1, Ordering::Relaxed);
        *self.pending.lock() += 1;
        Ok(permit)
    }

    /// Runs one task, recording its failure and counting it done.
    fn run<F>(&self, task: F)
    where
        F: FnOnce(&Context) -> Result<(), E>,
    {
        let failure = match catch_unwind(AssertUnwindSafe(|| task(&self.ctx))) {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(GroupError::Failed(error)),
            Err(payload) => Some(GroupError::Panicked(unwind::message(payload))),
        };
        if let Some(failure) = failure {
            self.fail(failure);
        }
        self.task_done();
    }

    /// Records `failure` if it is the first, and cancels the group.
    fn fail(&self, failure: GroupError<E>) {
        let mut first = self.first.lock();
        if first.is_none() {
            *first = Some(failure);
            drop(first);
            self.ctx.cancel();
        }
    }

    fn task_done(&self) {
        let mut pending = self.pending.lock();
        *pending -= 1;
        if *pending == 0 {
            self.all_done.notify_all();
        }
    }

    fn wait_idle(&self) {
        let mut pending = self.pending.lock();
        while *pending > 0 {
            self.all_done.wait(&mut pending);
        }
    }
}

impl<'a> Threads<'a> {
    fn new(spawn_thread: SpawnThread<'a>, handles: Arc<Mutex<Vec<JoinHandle<()>>>>) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Self {
            tx: Some(tx),
            rx,
            idle: Arc::new(AtomicUsize::new(0)),
            started: AtomicUsize::new(0),
            spawn_thread,
            handles,
        }
    }

    /// Runs `job` on an idle thread if there is one, else on a new thread.
    fn run(&self, job: Task<'a>) -> std::io::Result<()> {
        let Some(tx) = &self.tx else {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        };
        // ORDERING: the claim pairs with the idle increment of a thread
        // about to block in `recv`; the channel itself carries the job.
        if self
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |idle| {
                idle.checked_sub(1)
            })
            .is_ok()
        {
            return tx
                .send(job)
                .map_err(|_| std::io::ErrorKind::BrokenPipe.into());
        }
        let (rx, idle) = (self.rx.clone(), Arc::clone(&self.idle));
        self.started.fetch_add(1, Ordering::Relaxed);
        (self.spawn_thread)(Box::new(move || {
            let mut job = job;
            loop {
                let permit = job();
                // Idle before the permit goes back, so whoever takes the
                // permit finds this thread instead of starting another.
                idle.fetch_add(1, Ordering::AcqRel);
                drop(permit);
                match rx.recv() {
                    Ok(next) => job = next,
                    Err(_) => return,
                }
            }
        }))
    }

    /// Lets idle threads exit and joins every thread started.
    fn close_and_join(&mut self) {
        self.tx = None;
        let handles = std::mem::take(&mut *self.handles.lock());
        for handle in handles {
            let _ = handle.join();
        }
    }
}

impl<E> Drop for ErrGroup<'_, E> {
    fn drop(&mut self) {
        // A group dropped without `wait` still lets its tasks finish, and
        // leaves no thread behind.
        self.core.ctx.cancel();
        self.core.wait_idle();
        if let Runner::Threads(threads) = &mut self.runner {
            threads.close_and_join();
        }
    }
}

impl<E> fmt::Debug for ErrGroup<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrGroup")
            .field("context", &self.core.ctx)
            .field("limit", &self.core.slots.as_ref().map(Semaphore::total))
            .field("pending", &*self.core.pending.lock())
            .finish_non_exhaustive()
    }
}

impl<E> Drop for ScopedGroup<'_, '_, E> {
    fn drop(&mut self) {
        // If the body panics, the scope still waits for every task: cancel
        // them, and (by dropping `threads`) let idle threads exit, so that
        // wait ends.
        self.core.ctx.cancel();
    }
}

impl<E> fmt::Debug for ScopedGroup<'_, '_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedGroup")
            .field("context", &self.core.ctx)
            .finish_non_exhaustive()
    }
}
