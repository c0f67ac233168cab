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
//! * Tasks run on the group's own **crew** — the worker runtime every
//!   pool uses, so tasks get the same lifecycle, supervision and stats —
//!   started empty and grown on demand: a task that finds no free worker
//!   starts one, up to the limit, so 10,000 tasks under `limit(8)` start
//!   at most 8 threads. A worker counts itself free *before* its task's
//!   permit goes back, so whoever gets that permit finds it instead of
//!   starting a new one. Without a limit, the crew grows to at most
//!   [`GROUP_THREADS`] and further tasks queue for a free worker; a task
//!   queued with no worker counted on for it takes its worker off the
//!   free count when it starts, so the count stays exact. Workers idle for
//!   [`GROUP_KEEP_ALIVE`] leave. Or the tasks run on a [`ThreadPool`] you
//!   hand the group ([`ErrGroup::on_pool`]).
//! * `wait` never reports success for work that did not happen: besides
//!   the first failure, the group notes the first cancellation that kept
//!   a task from being admitted or from returning in time.
//! * A panicking task is reported as [`GroupError::Panicked`] — the first
//!   failure wins, whether error or panic — and cancels the group, like an
//!   error. The panic does not unwind into `wait`.
//! * [`ErrGroup::scope`] runs the same group on a crew of its own whose
//!   tasks may borrow from the caller's stack, through the crew's one
//!   lifetime erasure (`crew/lend.rs`), as `ThreadPool::scope` does.
//! * Besides fail-fast, a group can collect every failure
//!   ([`ErrGroup::collect_all`]) or return the first success
//!   ([`ErrGroup::first_success`]). The mode is a type parameter of this
//!   one group, so every mode shares the code above; `mode.rs` holds the
//!   policy, the verdict, and why the API has this shape.

use std::cell::Cell;
use std::fmt;
use std::task::Waker;
use std::time::Duration;

use crate::context::Context;
use crate::crew::Propagate;
use crate::crew::{End, Ran, Run, Wait, Work};
use crate::error::{
    AcquireError, Cancelled, GroupError, GroupErrors, GroupLimitError, GroupPropagateError,
    SpawnError,
};
use crate::pool::ThreadPool;
use crate::semaphore::{Permit, Semaphore};
use crate::sizing::MAX_WORKERS;
use crate::stats::Stats;
use crate::sync::{Arc, AtomicUsize, Condvar, Mutex, Ordering};
use crate::unwind;

mod awaiting;
mod mode;
mod scope;
mod workers;

use mode::Verdict;
pub use mode::{CollectAll, FailFast, FirstSuccess, GroupMode};
pub use scope::ScopedGroup;
use workers::Workers;

/// How long a group's worker waits for another task before it leaves.
pub const GROUP_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The most threads a group without a [`limit`](ErrGroup::limit) starts.
/// Tasks spawned while all of them are busy queue, in spawn order, for the
/// first that comes free (`spawn` does not wait); set a limit to run more
/// at once, or to make `spawn` wait instead of queueing.
///
/// Chosen for threads, not goroutines: an OS thread costs a stack and a
/// scheduler slot, so a group fanning out to thousands of tasks should not
/// start thousands of threads, yet 256 covers the concurrency of most I/O
/// fan-outs. Tasks that wait for *each other* need all of them running at
/// once: give such a group a limit at least as large as the number of
/// tasks.
pub const GROUP_THREADS: usize = 256;

/// A group of tasks that fails fast: the first error or panic cancels the
/// group's context, and `wait` waits for every task and returns that
/// failure. Two other [modes](#modes) collect every failure, or return the
/// first success.
///
/// # Threads
///
/// A group started with [`new`](Self::new) runs its tasks on threads of its
/// own (named `errgroup-0`, `errgroup-1`, …), started as tasks need them
/// and reused: with [`limit(n)`](Self::limit) at most `n`, otherwise at most
/// [`GROUP_THREADS`], tasks beyond that queuing in spawn order. A thread
/// idle for [`GROUP_KEEP_ALIVE`] exits; `wait` (or dropping the group)
/// joins them all. [`on_pool`](Self::on_pool) runs the tasks on a
/// [`ThreadPool`] instead. [`stats`](Self::stats) counts the tasks as jobs.
///
/// # What `wait` reports
///
/// In the default fail-fast mode (for the others, see [Modes](#modes)):
///
/// | what happened | `wait` returns |
/// |---|---|
/// | every task returned `Ok` in time | `Ok(())` |
/// | a task returned `Err(e)` first | [`GroupError::Failed(e)`](GroupError::Failed) |
/// | a task panicked first | [`GroupError::Panicked`] |
/// | a task was discarded by the pool it was handed to | [`GroupError::Discarded`] |
/// | no failure, but cancellation (the caller's, or a task cancelling the group's context) refused a `spawn` or stopped a task | [`GroupError::Cancelled`] |
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
/// # Modes
///
/// The mode is the group's third type parameter, chosen by its
/// constructor; spawning, limits, threads, pools and scopes work the same
/// in every mode.
///
/// | constructor | a task returns | a failure | the first `Ok` | `wait` returns |
/// |---|---|---|---|---|
/// | [`new`](Self::new), [`on_pool`](Self::on_pool) ([`FailFast`]) | `Result<(), E>` | cancels the group | — | `Result<(), GroupError<E>>`: the first failure |
/// | [`collect_all`](Self::collect_all), [`collect_all_on_pool`](Self::collect_all_on_pool) ([`CollectAll`]) | `Result<(), E>` | is noted; every task still runs | — | `Result<(), GroupErrors<E>>`: every failure, with its task's index |
/// | [`first_success`](Self::first_success), [`first_success_on_pool`](Self::first_success_on_pool) ([`FirstSuccess<T>`]) | `Result<T, E>` | is noted | wins, and cancels the group | `Result<T, GroupErrors<E>>`: the winner's value, or every failure |
///
/// A [`GroupErrors`] lists each failed task as `(index, GroupError<E>)`,
/// where the index is the task's place in spawn order, in the order the
/// tasks ended: errors, panics, tasks a pool discarded, and tasks stopped
/// by cancellation before they returned, by the rules of the table above.
/// Every mode's `wait` joins every task first, the losers of a
/// first-success group included; Java's `StructuredTaskScope` calls these
/// two modes shutdown-on-failure and shutdown-on-success.
///
/// ```
/// use std::time::Duration;
/// use brigade::{Context, ErrGroup};
///
/// let ctx = Context::new();
/// // Collect every failure: report all bad items at once.
/// let group = ErrGroup::<String>::collect_all(&ctx).limit(4)?;
/// for n in 0..10u32 {
///     group.spawn(move |_ctx| if n % 4 == 3 { Err(format!("item {n}")) } else { Ok(()) })?;
/// }
/// let errors = group.wait().unwrap_err();
/// let mut bad: Vec<usize> = errors.iter().map(|(index, _)| index).collect();
/// bad.sort();
/// assert_eq!(bad, [3, 7]);
///
/// // First success: the fastest replica answers, the others are cancelled.
/// let group = ErrGroup::<String>::first_success(&ctx);
/// for replica in ["eu", "us"] {
///     group.spawn(move |ctx| {
///         if replica == "eu" {
///             // Slow: still asleep when the group is cancelled, which wakes it.
///             let _ = ctx.sleep(Duration::from_secs(60));
///             return Err(format!("{replica}: cancelled"));
///         }
///         Ok(format!("answer from {replica}"))
///     })?;
/// }
/// assert_eq!(group.wait()?, "answer from us");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Differences from Go's `errgroup.Group`
///
/// * [`spawn`](Self::spawn) waiting for a free slot wakes (and hands the
///   closure back) when the group is cancelled; Go's `Go` keeps waiting.
/// * A panic is caught and reported as [`GroupError::Panicked`]; in Go it
///   crashes the program.
/// * Tasks run on reused worker threads, at most `limit` (or
///   [`GROUP_THREADS`]) of them; Go starts a goroutine per task.
/// * `wait` reports [`GroupError::Cancelled`] if cancellation kept any
///   work from happening; Go's `Wait` returns `nil` when no task failed.
/// * `limit(0)` is an error; in Go `SetLimit(0)` makes every `Go` block.
/// * `wait` consumes the group: a group is one batch of work.
/// * Besides Go's fail-fast, a group can collect every failure or return
///   the first success (see [Modes](#modes)); Go offers neither.
pub struct ErrGroup<'p, E, M: GroupMode = FailFast> {
    core: Arc<Core<E, M>>,
    runner: Runner<'p>,
}

/// The group's state, shared with its tasks.
struct Core<E, M: GroupMode> {
    ctx: Context,
    slots: Option<Semaphore>,
    verdict: Mutex<Verdict<M, E>>,
    pending: Mutex<usize>,
    all_done: Condvar,
    /// The task awaiting `wait_async`, woken with `all_done`; set and
    /// taken under the `pending` lock.
    waiter: Mutex<Option<Waker>>,
    /// Tasks admitted so far; the next one's index.
    spawned: AtomicUsize,
}

/// Where tasks run.
enum Runner<'a> {
    Crew(Workers),
    Pool(&'a ThreadPool),
}

/// One task of a group, as the crew runs it: the task, its group, and the
/// permit it holds (given back when it ends).
struct GroupTask<E, M: GroupMode, F> {
    task: F,
    /// Its place in spawn order.
    index: usize,
    core: Arc<Core<E, M>>,
    permit: Option<Permit>,
}

impl<E, M, F> Work for GroupTask<E, M, F>
where
    E: Send + 'static,
    M: GroupMode,
    F: FnOnce(&Context) -> Result<M::Value, E> + Send,
{
    fn run(self: Box<Self>, run: Run<'_>) -> Ran {
        let Self {
            task,
            index,
            core,
            permit,
        } = *self;
        // A task's error is the group's outcome even when it comes after a
        // cancel from outside (the parent's, or `context().cancel()`), when
        // the lifecycle drops a late value: so the task records it itself,
        // as it returns, and the end then lists nothing more for it. A
        // success goes through the lifecycle and counts only in time. The
        // crew counts a task that returns `Err` in time as a failed job.
        let erred = Cell::new(false);
        let work = |ctx: &Context| {
            task(ctx).map_err(|error| {
                erred.set(true);
                core.fail(index, GroupError::Failed(error));
            })
        };
        let ran = run.under(&core.ctx).call_judged(
            |_| Some(work),
            Result::is_err,
            |end| core.settle(index, end, erred.get()),
        );
        drop(permit);
        core.task_done();
        ran
    }

    fn discard(self: Box<Self>, reason: Cancelled) {
        let Self {
            task,
            index,
            core,
            permit,
            ..
        } = *self;
        unwind::drop_quietly(task);
        core.fail(index, GroupError::Discarded(reason));
        drop(permit);
        core.task_done();
    }
}

impl<E: Send + 'static> ErrGroup<'static, E> {
    /// An empty fail-fast group under `ctx`, with no limit, running tasks
    /// on its own workers (threads named `errgroup-0`, `errgroup-1`, …).
    pub fn new(ctx: &Context) -> Self {
        ErrGroup::own(ctx)
    }

    /// An empty group under `ctx` that runs every task whatever the others
    /// do: a failure does not cancel the group, and
    /// `wait` returns every failure
    /// together, each with its task's index. Tasks run on the group's own
    /// workers, as with [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// Validate a batch and report every bad row, not just the first:
    ///
    /// ```
    /// use brigade::{Context, ErrGroup, GroupError};
    ///
    /// let rows = ["12", "x", "7", "-3", "40"];
    /// let group = ErrGroup::<String>::collect_all(&Context::new()).limit(2)?;
    /// for row in rows {
    ///     group.spawn(move |_ctx| match row.parse::<u32>() {
    ///         Ok(_) => Ok(()),
    ///         Err(e) => Err(format!("{row:?}: {e}")),
    ///     })?;
    /// }
    /// let errors = group.wait().unwrap_err();
    /// let mut bad: Vec<usize> = errors.iter().map(|(index, _)| index).collect();
    /// bad.sort();
    /// assert_eq!(bad, [1, 3]); // rows "x" and "-3", by spawn order
    /// assert!(errors.iter().all(|(_, e)| matches!(e, GroupError::Failed(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn collect_all(ctx: &Context) -> ErrGroup<'static, E, CollectAll> {
        ErrGroup::own(ctx)
    }

    /// An empty group under `ctx` whose tasks return `Result<T, E>`: the
    /// first to return `Ok` in time wins, and the group's context is
    /// cancelled so the others can stop;
    /// `wait` joins them all and
    /// returns the winner's value, or every failure if none succeeded.
    /// Tasks run on the group's own workers, as with [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// A hedged request: ask two replicas, take whichever answers first.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade::{Context, ErrGroup};
    ///
    /// let group = ErrGroup::<String>::first_success(&Context::new());
    /// // A slow replica that gives up when the group is cancelled:
    /// group.spawn(|ctx| {
    ///     ctx.sleep(Duration::from_secs(60)).map_err(|reason| reason.to_string())?;
    ///     Ok("slow answer")
    /// })?;
    /// group.spawn(|_ctx| Ok("fast answer"))?;
    /// // The fast one wins and cancels the slow one; `wait` joins both.
    /// assert_eq!(group.wait()?, "fast answer");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn first_success<T: Send + 'static>(
        ctx: &Context,
    ) -> ErrGroup<'static, E, FirstSuccess<T>> {
        ErrGroup::own(ctx)
    }
}

impl<'p, E: Send + 'static> ErrGroup<'p, E> {
    /// An empty fail-fast group under `ctx` whose tasks run on `pool` (as
    /// fire-and-forget jobs), with no limit of its own.
    pub fn on_pool(ctx: &Context, pool: &'p ThreadPool) -> Self {
        ErrGroup::pooled(ctx, pool)
    }

    /// Like [`collect_all`](Self::collect_all), but the tasks run on
    /// `pool`, as with [`on_pool`](Self::on_pool).
    pub fn collect_all_on_pool(ctx: &Context, pool: &'p ThreadPool) -> ErrGroup<'p, E, CollectAll> {
        ErrGroup::pooled(ctx, pool)
    }

    /// Like [`first_success`](Self::first_success), but the tasks run on
    /// `pool`, as with [`on_pool`](Self::on_pool).
    pub fn first_success_on_pool<T: Send + 'static>(
        ctx: &Context,
        pool: &'p ThreadPool,
    ) -> ErrGroup<'p, E, FirstSuccess<T>> {
        ErrGroup::pooled(ctx, pool)
    }
}

impl<E: Send + 'static, M: GroupMode> ErrGroup<'static, E, M> {
    fn own(ctx: &Context) -> Self {
        Self {
            core: Core::new(ctx),
            runner: Runner::Crew(Workers::new("errgroup", GROUP_THREADS, None)),
        }
    }
}

impl<'p, E: Send + 'static, M: GroupMode> ErrGroup<'p, E, M> {
    fn pooled(ctx: &Context, pool: &'p ThreadPool) -> Self {
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
    /// past [`MAX_WORKERS`], and
    /// [`GroupLimitError::AlreadySpawned`] if a task was already spawned.
    pub fn limit(mut self, n: usize) -> Result<Self, GroupLimitError> {
        check_limit(n, self.core.spawned.load(Ordering::Relaxed))?;
        // Nothing spawned means no task holds the core yet.
        let core = Arc::get_mut(&mut self.core).ok_or(GroupLimitError::AlreadySpawned)?;
        core.slots = Semaphore::new(n).ok();
        if let Runner::Crew(workers) = &mut self.runner {
            // Nothing spawned: the empty crew is replaced by one of at
            // most `n` threads.
            let hooks = workers.crew.propagate().cloned();
            *workers = Workers::new("errgroup", n, hooks);
        }
        Ok(self)
    }

    /// Carries the spawning thread's context into the group's tasks, as
    /// [`ThreadPoolBuilder::propagate`](crate::ThreadPoolBuilder::propagate)
    /// does for a pool's jobs: `capture` runs on the thread that spawns a
    /// task, `enter` around the task on the worker that runs it (and
    /// around the tasks of a [`scope`](Self::scope)). For a group on its
    /// own workers; a group [on a pool](Self::on_pool) uses the pool's
    /// hooks. Set before spawning, like the [`limit`](Self::limit).
    ///
    /// # Errors
    ///
    /// [`GroupPropagateError::AlreadySpawned`] if a task was already
    /// spawned; [`GroupPropagateError::OnPool`] for a group on a pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use brigade::{Context, ErrGroup};
    ///
    /// thread_local! {
    ///     static REQUEST: Cell<u64> = const { Cell::new(0) };
    /// }
    ///
    /// REQUEST.set(7);
    /// let group = ErrGroup::<String>::new(&Context::new()).propagate(
    ///     || REQUEST.get(),
    ///     |id, run| {
    ///         let outer = REQUEST.replace(id);
    ///         run();
    ///         REQUEST.set(outer);
    ///     },
    /// )?;
    /// group.spawn(|_ctx| match REQUEST.get() {
    ///     7 => Ok(()),
    ///     other => Err(format!("request {other}")),
    /// })?;
    /// group.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn propagate<T, C, F>(mut self, capture: C, enter: F) -> Result<Self, GroupPropagateError>
    where
        T: Send + 'static,
        C: Fn() -> T + Send + Sync + 'static,
        F: Fn(T, &mut dyn FnMut()) + Send + Sync + 'static,
    {
        let Runner::Crew(workers) = &mut self.runner else {
            return Err(GroupPropagateError::OnPool);
        };
        // ORDERING: Relaxed, as in `limit`: spawns go through `&self`,
        // which this `self` by value excludes.
        if self.core.spawned.load(Ordering::Relaxed) > 0 {
            return Err(GroupPropagateError::AlreadySpawned);
        }
        // The crew carries its hooks from its start; with nothing spawned
        // it has no thread yet, so a new one replaces it at no cost.
        let hooks = Some(Propagate::new(capture, enter));
        *workers = Workers::new("errgroup", workers.max, hooks);
        Ok(self)
    }

    /// The hooks the group's tasks run under: its own, or its pool's.
    fn propagate_hooks(&self) -> Option<Propagate> {
        match &self.runner {
            Runner::Crew(workers) => workers.crew.propagate().cloned(),
            Runner::Pool(pool) => pool.propagate().cloned(),
        }
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
    /// [`SpawnError::Unavailable`] if the group's pool refused the job.
    /// (Should the OS refuse the group's own workers a thread while they
    /// have none, the task is not lost: `wait` reports it as
    /// [`GroupError::Discarded`].)
    pub fn spawn<F>(&self, task: F) -> Result<(), SpawnError<F>>
    where
        F: FnOnce(&Context) -> Result<M::Value, E> + Send + 'static,
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
        F: FnOnce(&Context) -> Result<M::Value, E> + Send + 'static,
    {
        self.spawn_with(task, false)
    }

    fn spawn_with<F>(&self, task: F, block: bool) -> Result<(), SpawnError<F>>
    where
        F: FnOnce(&Context) -> Result<M::Value, E> + Send + 'static,
    {
        match &self.runner {
            Runner::Crew(workers) => spawn_on_workers(&self.core, workers, task, block),
            Runner::Pool(pool) => spawn_on_pool(&self.core, pool, task, block),
        }
    }

    /// How many threads the group has started so far (0 on a pool).
    pub fn threads(&self) -> usize {
        match &self.runner {
            Runner::Crew(workers) => workers.crew.started(),
            Runner::Pool(_) => 0,
        }
    }

    /// A snapshot of the counters of the workers that run the group's
    /// tasks: its own (each task is a job), or those of the pool it runs
    /// on.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::{Context, ErrGroup};
    ///
    /// let group = ErrGroup::<String>::new(&Context::new()).limit(2)?;
    /// for _ in 0..5 {
    ///     group.spawn(|_ctx| Ok(())).map_err(|e| e.kind())?;
    /// }
    /// assert_eq!(group.stats().submitted, 5);
    /// group.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> Stats {
        match &self.runner {
            Runner::Crew(workers) => workers.crew.stats(),
            Runner::Pool(pool) => pool.stats(),
        }
    }

    /// Waits for every task, cancels the group's context, joins the
    /// group's own workers, and takes the verdict out.
    fn finish(&mut self) -> Verdict<M, E> {
        self.core.wait_idle();
        self.core.ctx.cancel();
        if let Runner::Crew(workers) = &mut self.runner {
            workers.close();
        }
        self.core.take_verdict()
    }
}

impl<E: Send + 'static> ErrGroup<'_, E> {
    /// Waits for every task, cancels the group's context, and returns the
    /// first failure.
    ///
    /// # Errors
    ///
    /// [`GroupError::Failed`] with the first error a task returned, or
    /// [`GroupError::Panicked`] if a task panicked first;
    /// [`GroupError::Discarded`] if a pool discarded a task; with no
    /// failure, [`GroupError::Cancelled`] if a `spawn` was refused or a
    /// task stopped because the group's context was cancelled (see the
    /// table on [`ErrGroup`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::{Cancelled, Context, ErrGroup, GroupError};
    ///
    /// let ctx = Context::new();
    /// let group = ErrGroup::<String>::new(&ctx);
    /// ctx.cancel();
    /// // Refused, and the caller ignores it: `wait` still says so.
    /// let _ = group.spawn(|_ctx| Ok(()));
    /// assert_eq!(group.wait(), Err(GroupError::Cancelled(Cancelled::Canceled)));
    /// ```
    pub fn wait(mut self) -> Result<(), GroupError<E>> {
        self.finish().first()
    }

    /// Runs `body` with a group whose tasks may borrow from the caller's
    /// stack, then waits for every task, as [`wait`](Self::wait) does. The
    /// limit carries over; the tasks run on workers of the scope's own,
    /// reused as in the owned group and joined before `scope` returns (the
    /// pool of [`on_pool`](Self::on_pool) is not used).
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::{Context, ErrGroup, Refusal};
    ///
    /// let words = vec!["alpha", "beta", "gamma"];
    /// let mut lengths = vec![0; words.len()];
    /// let group = ErrGroup::<String>::new(&Context::new()).limit(2)?;
    /// group.scope(|g| {
    ///     for (word, len) in words.iter().zip(lengths.iter_mut()) {
    ///         g.spawn(move |_ctx| {
    ///             *len = word.len();
    ///             Ok(())
    ///         })?;
    ///     }
    ///     Ok::<(), Refusal>(())
    /// })??;
    /// assert_eq!(lengths, [5, 4, 5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scope<'env, T>(
        self,
        body: impl for<'scope> FnOnce(&ScopedGroup<'scope, 'env, E>) -> T,
    ) -> Result<T, GroupError<E>> {
        let (value, verdict) = self.scoped(body);
        verdict.first().map(|()| value)
    }
}

impl<E: Send + 'static> ErrGroup<'_, E, CollectAll> {
    /// Waits for every task, cancels the group's context, and returns
    /// every failure.
    ///
    /// # Errors
    ///
    /// A [`GroupErrors`] listing each task that failed — returned `Err`
    /// ([`GroupError::Failed`]), panicked, was discarded by its pool, or
    /// was stopped by cancellation before it returned — with its index
    /// (its place in spawn order), in the order the tasks ended; and, with
    /// [`refused`](GroupErrors::refused), whether cancellation refused a
    /// `spawn`.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::{Context, ErrGroup, GroupError};
    ///
    /// let group = ErrGroup::<String>::collect_all(&Context::new());
    /// group.spawn(|_ctx| Err("no such user".to_owned()))?;
    /// group.spawn(|_ctx| Ok(()))?;
    /// group.spawn(|_ctx| panic!("corrupt record"))?;
    /// let errors = group.wait().unwrap_err();
    /// assert_eq!(errors.len(), 2);
    /// for (index, error) in &errors.into_vec() {
    ///     match (index, error) {
    ///         (0, GroupError::Failed(e)) => assert_eq!(e, "no such user"),
    ///         (2, GroupError::Panicked(p)) => assert_eq!(p.message(), "corrupt record"),
    ///         other => unreachable!("{other:?}"),
    ///     }
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait(mut self) -> Result<(), GroupErrors<E>> {
        self.finish().every()
    }

    /// Runs `body` with a collect-all group whose tasks may borrow from the
    /// caller's stack, then waits for every task, as
    /// [`wait`](Self::wait) does; see [`ErrGroup::scope`].
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    pub fn scope<'env, T>(
        self,
        body: impl for<'scope> FnOnce(&ScopedGroup<'scope, 'env, E, CollectAll>) -> T,
    ) -> Result<T, GroupErrors<E>> {
        let (value, verdict) = self.scoped(body);
        verdict.every().map(|()| value)
    }
}

impl<E: Send + 'static, T: Send + 'static> ErrGroup<'_, E, FirstSuccess<T>> {
    /// Waits for every task (the winner's cancel lets the others stop
    /// early), cancels the group's context, and returns the first value a
    /// task returned in time.
    ///
    /// # Errors
    ///
    /// If no task succeeded, a [`GroupErrors`] listing how each failed, as
    /// a collect-all group's `wait` does; it is empty if the group
    /// had no task.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::{Context, ErrGroup};
    ///
    /// let group = ErrGroup::<String>::first_success::<u32>(&Context::new());
    /// group.spawn(|_ctx| Err("mirror 1 is down".to_owned()))?;
    /// group.spawn(|_ctx| Err("mirror 2 is down".to_owned()))?;
    /// let errors = group.wait().unwrap_err();
    /// assert_eq!(errors.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait(mut self) -> Result<T, GroupErrors<E>> {
        self.finish().winner()
    }

    /// Runs `body` with a first-success group whose tasks may borrow from
    /// the caller's stack, then waits for every task, as
    /// [`wait`](Self::wait) does; returns the body's value and the
    /// winner's. See [`ErrGroup::scope`].
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    pub fn scope<'env, R>(
        self,
        body: impl for<'scope> FnOnce(&ScopedGroup<'scope, 'env, E, FirstSuccess<T>>) -> R,
    ) -> Result<(R, T), GroupErrors<E>> {
        let (value, verdict) = self.scoped(body);
        verdict.winner().map(|won| (value, won))
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

fn spawn_on_pool<E, M, F>(
    core: &Arc<Core<E, M>>,
    pool: &ThreadPool,
    task: F,
    block: bool,
) -> Result<(), SpawnError<F>>
where
    E: Send + 'static,
    M: GroupMode,
    F: FnOnce(&Context) -> Result<M::Value, E> + Send + 'static,
{
    let (index, permit) = match core.admit(block) {
        Ok(admitted) => admitted,
        Err(refused) => return Err(refused.with(task)),
    };
    let job = GroupTask {
        task,
        index,
        core: Arc::clone(core),
        permit,
    };
    // A pool that is cancelled later discards the queued task, which then
    // reports `GroupError::Discarded`: `wait` neither hangs nor reports
    // success for work that did not happen.
    if let Err(refused) = pool.submit_work(job, Wait::Forever) {
        let GroupTask { task, permit, .. } = refused.into_inner();
        drop(permit);
        core.task_done();
        return Err(SpawnError::Unavailable(task));
    }
    Ok(())
}

/// Admits `task`, as `Core::admit` does, as a task for the group's own
/// workers.
fn admit_on<E, M: GroupMode, F>(
    core: &Arc<Core<E, M>>,
    task: F,
    block: bool,
) -> Result<GroupTask<E, M, F>, SpawnError<F>> {
    let (index, permit) = match core.admit(block) {
        Ok(admitted) => admitted,
        Err(refused) => return Err(refused.with(task)),
    };
    Ok(GroupTask {
        task,
        index,
        core: Arc::clone(core),
        permit,
    })
}

fn spawn_on_workers<E, M, F>(
    core: &Arc<Core<E, M>>,
    workers: &Workers,
    task: F,
    block: bool,
) -> Result<(), SpawnError<F>>
where
    E: Send + 'static,
    M: GroupMode,
    F: FnOnce(&Context) -> Result<M::Value, E> + Send + 'static,
{
    workers.submit(Box::new(admit_on(core, task, block)?));
    Ok(())
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

impl<E, M: GroupMode> Core<E, M> {
    fn new(ctx: &Context) -> Arc<Self> {
        Arc::new(Self {
            ctx: ctx.child(),
            slots: None,
            verdict: Mutex::new(Verdict::new()),
            pending: Mutex::new(0),
            all_done: Condvar::new(),
            waiter: Mutex::new(None),
            spawned: AtomicUsize::new(0),
        })
    }

    /// Takes a slot (if limited) and counts the task as pending; returns
    /// the task's index (its place in spawn order) and its permit.
    fn admit(&self, block: bool) -> Result<(usize, Option<Permit>), Refused> {
        if self.ctx.is_done() {
            return Err(self.refused());
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
                    Err(_) => return Err(self.refused()),
                }
            }
        };
        // A failing task cancels the group before its slot is released, so
        // a spawn that got that slot sees the cancellation here (the
        // semaphore, like Go's, may grant a waiter whose context was
        // cancelled a moment before).
        if self.ctx.is_done() {
            drop(permit);
            return Err(self.refused());
        }
        // ORDERING: the index only needs to be unique; spawn order among
        // concurrent spawners is whatever order they take indexes in.
        let index = self.spawned.fetch_add(1, Ordering::Relaxed);
        *self.pending.lock() += 1;
        Ok((index, permit))
    }

    /// Records how task `index` ended: a success is offered to the mode, a
    /// panic is a failure, and a cancellation is noted unless the task has
    /// already recorded its error (`erred`) as it returned.
    fn settle(&self, index: usize, end: End<Result<M::Value, ()>>, erred: bool) {
        match end {
            End::Returned(Ok(value)) => self.succeed(value),
            End::Panicked(caught) => self.fail(index, GroupError::Panicked(caught.into_panic())),
            End::Cancelled(reason) if !erred => self.verdict.lock().cancelled(index, reason),
            End::Returned(Err(())) | End::Cancelled(_) | End::TimedOut => {}
        }
    }

    /// Records that task `index` failed, cancelling the group if the mode
    /// fails fast and this is the first failure.
    fn fail(&self, index: usize, failure: GroupError<E>) {
        let cancel = self.verdict.lock().fail(index, failure);
        if cancel {
            self.ctx.cancel();
        }
    }

    /// Offers a task's value; the first wins (and cancels the group) in a
    /// first-success group. A value that does not win is dropped outside
    /// the lock, where its `Drop` cannot unwind into the worker.
    fn succeed(&self, value: M::Value) {
        let offered = self.verdict.lock().succeed(value);
        match offered {
            Ok(()) => self.ctx.cancel(),
            Err(value) => unwind::drop_quietly(value),
        }
    }

    /// Why the group's context is done, for a refusal; noted so that
    /// `wait` cannot report success for the refused work.
    fn refused(&self) -> Refused {
        let reason = self.ctx.reason().unwrap_or(Cancelled::Canceled);
        self.verdict.lock().refused(reason);
        Refused::Cancelled
    }

    fn take_verdict(&self) -> Verdict<M, E> {
        std::mem::replace(&mut *self.verdict.lock(), Verdict::new())
    }

    fn task_done(&self) {
        let mut pending = self.pending.lock();
        *pending -= 1;
        if *pending == 0 {
            self.all_done.notify_all();
            if let Some(waker) = self.waiter.lock().take() {
                waker.wake();
            }
        }
    }

    fn wait_idle(&self) {
        let mut pending = self.pending.lock();
        while *pending > 0 {
            self.all_done.wait(&mut pending);
        }
    }
}

impl<E, M: GroupMode> Drop for ErrGroup<'_, E, M> {
    fn drop(&mut self) {
        // A group dropped without `wait` still lets its tasks finish, and
        // leaves no thread behind.
        self.core.ctx.cancel();
        self.core.wait_idle();
        if let Runner::Crew(workers) = &mut self.runner {
            workers.close();
        }
    }
}

impl<E, M: GroupMode> fmt::Debug for ErrGroup<'_, E, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrGroup")
            .field("context", &self.core.ctx)
            .field("limit", &self.core.slots.as_ref().map(Semaphore::total))
            .field("pending", &*self.core.pending.lock())
            .finish_non_exhaustive()
    }
}
