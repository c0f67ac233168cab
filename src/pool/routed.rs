//! [`Routed`]: the way into a [`ThreadPool`] for jobs with a priority lane,
//! a key, or both. The dispatcher that orders them is the crew's
//! (`crew/dispatch.rs`); this only names the route and hands jobs in.

use std::hash::Hash;
use std::time::{Duration, Instant};

use super::handle::{JobCell, SharedTask};
use super::job::{ExecJob, Task, unerase};
use super::{Every, JobHandle, Schedule, SubmitAsync, ThreadPool, blocking, take_back};
use crate::context::Context;
use crate::crew::{Route, Wait};
use crate::error::{ScheduleError, SubmitError, TrySubmitError};
use crate::lane::Lane;
use crate::sync::Arc;

/// Submits jobs to a [`ThreadPool`] along a route: a priority [`Lane`], a
/// key, or both. From [`ThreadPool::lane`] and [`ThreadPool::keyed`];
/// cheap to copy.
///
/// * **Lanes.** Free workers take [`Lane::High`] jobs first and
///   [`Lane::Background`] jobs last, but a job that waited past the
///   pool's [starvation bound](crate::ThreadPoolBuilder::starvation_bound)
///   goes before newer work, and a lane can be capped to a number of
///   workers ([`lane_limit`](crate::ThreadPoolBuilder::lane_limit)).
/// * **Keys.** Jobs with equal keys run one at a time, in submission
///   order; jobs with different keys run in parallel on any worker. A key
///   whose job is running holds back only its own later jobs: a free
///   worker takes another key's job, or an unkeyed one, meanwhile. A
///   job that panics, times out or is cancelled releases its key like
///   any other end.
///
/// The families are [`ThreadPool`]'s: `try_x` never blocks, `x` waits
/// for room, `x_timeout` waits at most so long, and a refused job comes
/// back in the error. Routed jobs wait in the dispatcher, which holds up
/// to the pool's queue capacity of them, and at most
/// [`key_queue_limit`](crate::ThreadPoolBuilder::key_queue_limit) per key
/// behind the running one. A pool that routes no job pays nothing for
/// any of this.
///
/// Joining a keyed job from an earlier job of the same key fails with
/// [`JobError::QueuedBehindCaller`](crate::JobError::QueuedBehindCaller)
/// instead of hanging. A join on one of the pool's workers runs the
/// joined keyed job right there once it is its key's next, holding its
/// key as a worker would, so the key's order holds; while it is still
/// behind earlier jobs of its key, the join waits for a worker to run
/// those. So if every worker is joining a job held behind its key (one
/// worker, on a one-worker pool), none comes: join such jobs from inside
/// the pool with [`join_timeout`](crate::JobHandle::join_timeout), or on
/// a pool with a worker to spare.
///
/// # Examples
///
/// Events of one account apply in order; accounts run in parallel:
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use brigade::ThreadPool;
///
/// let pool = ThreadPool::builder().workers(4).build()?;
/// let ledger = Arc::new(Mutex::new(Vec::new()));
/// for event in 0..6u32 {
///     let account = event % 2;
///     let ledger = Arc::clone(&ledger);
///     pool.keyed(account)
///         .execute(move || ledger.lock().unwrap().push((account, event)))
///         .map_err(|e| e.kind())?;
/// }
/// pool.join();
/// let ledger = ledger.lock().unwrap();
/// let of = |account| ledger.iter().filter(|e| e.0 == account).map(|e| e.1).collect::<Vec<_>>();
/// assert_eq!(of(0), [0, 2, 4]);
/// assert_eq!(of(1), [1, 3, 5]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
pub struct Routed<'p> {
    pool: &'p ThreadPool,
    route: Route,
}

impl std::fmt::Debug for Routed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routed")
            .field("lane", &self.route.lane)
            .field("keyed", &self.route.key.is_some())
            .finish_non_exhaustive()
    }
}

impl ThreadPool {
    /// Submits along priority lane `lane` (see [`Routed`]).
    pub fn lane(&self, lane: Lane) -> Routed<'_> {
        Routed {
            pool: self,
            route: Route { lane, key: None },
        }
    }

    /// Submits jobs of key `key`, in the `Normal` lane: they run one at a
    /// time in submission order (see [`Routed`]). Keys are compared by
    /// their hash.
    pub fn keyed(&self, key: impl Hash) -> Routed<'_> {
        self.lane(Lane::Normal).key(key)
    }
}

impl<'p> Routed<'p> {
    /// The same route in lane `lane`.
    #[must_use]
    pub fn lane(mut self, lane: Lane) -> Self {
        self.route.lane = lane;
        self
    }

    /// The same route with key `key`.
    #[must_use]
    pub fn key(mut self, key: impl Hash) -> Self {
        self.route.key = Some(Route::key_of(&key));
        self
    }

    /// [`ThreadPool::execute`] along this route.
    ///
    /// # Errors
    ///
    /// As for [`ThreadPool::execute`]; the closure is handed back.
    pub fn execute<F>(&self, f: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.enqueue(Task::boxed(ExecJob(f)), Wait::Forever)
            .map_err(|err| blocking(err, |task| unerase::<ExecJob<F>>(task).0))
    }

    /// [`ThreadPool::try_execute`] along this route.
    ///
    /// # Errors
    ///
    /// As for [`ThreadPool::try_execute`]; `Full` also when the key has
    /// as many jobs waiting as the key queue limit allows.
    pub fn try_execute<F>(&self, f: F) -> Result<(), TrySubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.enqueue(Task::boxed(ExecJob(f)), Wait::Now)
            .map_err(|err| err.map(|task| unerase::<ExecJob<F>>(task).0))
    }

    /// [`ThreadPool::submit`] along this route.
    ///
    /// # Errors
    ///
    /// As for [`ThreadPool::submit`]; the closure is handed back.
    pub fn submit<F, T>(&self, f: F) -> Result<JobHandle<T>, SubmitError<F>>
    where
        F: FnOnce(&Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (cell, task) = self.cell(f);
        match self.enqueue(Task::Shared(task), Wait::Forever) {
            Ok(()) => Ok(cell.handle()),
            Err(err) => Err(blocking(err, |task| take_back(&cell, task))),
        }
    }

    /// [`ThreadPool::submit_async`] along this route: the future waits,
    /// without blocking its thread, for room in the dispatcher and, for a
    /// keyed job, in its key's queue
    /// ([`key_queue_limit`](crate::ThreadPoolBuilder::key_queue_limit)).
    ///
    /// # Errors
    ///
    /// As for [`ThreadPool::submit_async`]: the closure is handed back
    /// with `Closed` or `Cancelled`.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::{Lane, ThreadPool};
    ///
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// # runtime.block_on(async {
    /// let pool = ThreadPool::builder().workers(2).key_queue_limit(1).build()?;
    /// // From async code: waits for room in the key's queue, never blocking.
    /// let mut handles = Vec::new();
    /// for step in 1..=3u64 {
    ///     let handle = pool.keyed("order-7").submit_async(move |_ctx| step * 10).await?;
    ///     handles.push(handle);
    /// }
    /// let urgent = pool.lane(Lane::High).submit_async(|_ctx| "now").await?;
    /// assert_eq!(urgent.await?, "now");
    /// let mut total = 0;
    /// for handle in handles {
    ///     total += handle.await?;
    /// }
    /// assert_eq!(total, 60);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_async<F, T>(&self, f: F) -> SubmitAsync<'p, F, T>
    where
        F: FnOnce(&Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (cell, task) = self.cell(f);
        SubmitAsync::of(self.pool, Some(self.route), cell, task)
    }

    /// [`ThreadPool::submit_or_run_here`] along this route: queued if the
    /// dispatcher (and the job's key) has room for it now, and otherwise
    /// run on the calling thread before this returns.
    ///
    /// Run here, the job holds its route as it would on a worker: it
    /// counts as running in its lane, and its key's later jobs wait for
    /// it. It takes no worker, so a lane's
    /// [limit](crate::ThreadPoolBuilder::lane_limit) does not hold it
    /// back. A keyed job whose key has a job queued or running never runs
    /// here, which would break the key's order: it waits for room instead,
    /// as [`submit`](Self::submit) does — unless the caller is one of the
    /// pool's workers or runs a job of the same key, where that room could
    /// be the caller's own to make: there it is queued behind its key at
    /// once, past the queue's and the key's limits.
    ///
    /// # Warning: it blocks the caller for the job's whole run
    ///
    /// As for [`ThreadPool::submit_or_run_here`]: never call it from an
    /// async executor's thread, an event loop or any thread that must stay
    /// responsive.
    ///
    /// # Errors
    ///
    /// As for [`ThreadPool::submit_or_run_here`]: the closure is handed
    /// back, never run and never dropped, with `Closed` or `Cancelled`.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::{Lane, ThreadPool};
    ///
    /// // One worker and room for one routed job.
    /// let pool = ThreadPool::builder().workers(1).queue_capacity(1).build()?;
    /// let (started_tx, started) = brigade::channel::bounded(1);
    /// let (release_tx, release) = brigade::channel::bounded::<()>(0);
    /// let busy = pool
    ///     .submit(move |_ctx| {
    ///         started_tx.send(()).expect("the caller waits");
    ///         let _ = release.recv();
    ///     })
    ///     .map_err(|e| e.kind())?;
    /// started.recv()?;
    /// let background = pool.lane(Lane::Background);
    /// let queued = background.submit(|_ctx| "on the worker").map_err(|e| e.kind())?;
    ///
    /// // The worker is busy and the dispatcher full: this runs right here.
    /// let caller = std::thread::current().id();
    /// let here = background
    ///     .submit_or_run_here(move |_ctx| std::thread::current().id() == caller)
    ///     .map_err(|e| e.kind())?;
    /// assert_eq!(here.join(), Ok(true));
    ///
    /// drop(release_tx);
    /// assert_eq!(queued.join(), Ok("on the worker"));
    /// busy.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_or_run_here<F, T>(&self, f: F) -> Result<JobHandle<T>, SubmitError<F>>
    where
        F: FnOnce(&Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (cell, task) = self.cell(f);
        match self
            .pool
            .enqueue_or_run_here(Task::Shared(task), Some(self.route))
        {
            Ok(()) => Ok(cell.handle()),
            Err(err) => Err(blocking(err, |task| take_back(&cell, task))),
        }
    }

    /// [`ThreadPool::execute_or_run_here`] along this route: as
    /// [`submit_or_run_here`](Self::submit_or_run_here), for a
    /// fire-and-forget closure.
    ///
    /// # Errors
    ///
    /// As for [`submit_or_run_here`](Self::submit_or_run_here).
    pub fn execute_or_run_here<F>(&self, f: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.pool
            .enqueue_or_run_here(Task::boxed(ExecJob(f)), Some(self.route))
            .map_err(|err| blocking(err, |task| unerase::<ExecJob<F>>(task).0))
    }

    /// [`ThreadPool::try_submit`] along this route.
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

    /// [`ThreadPool::submit_timeout`] along this route.
    ///
    /// # Errors
    ///
    /// As for [`try_execute`](Self::try_execute); `Full` means there was
    /// no room for the whole wait.
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
        let (cell, task) = self.cell(f);
        match self.enqueue(Task::Shared(task), wait) {
            Ok(()) => Ok(cell.handle()),
            Err(err) => Err(err.map(|task| take_back(&cell, task))),
        }
    }

    /// [`ThreadPool::schedule_after`] along this route: when due, the job
    /// enters the dispatcher like one submitted along it (a keyed one
    /// after its key's jobs submitted before its due time).
    ///
    /// # Errors
    ///
    /// As for [`ThreadPool::schedule_after`].
    pub fn schedule_after<F, T>(
        &self,
        delay: Duration,
        f: F,
    ) -> Result<JobHandle<T>, ScheduleError<F>>
    where
        F: FnOnce(&Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.pool.schedule_after_along(Some(self.route), delay, f)
    }

    /// [`ThreadPool::schedule_at`] along this route.
    ///
    /// # Errors
    ///
    /// As for [`ThreadPool::schedule_at`].
    pub fn schedule_at<F, T>(&self, at: Instant, f: F) -> Result<JobHandle<T>, ScheduleError<F>>
    where
        F: FnOnce(&Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.pool.schedule_at_along(Some(self.route), at, f)
    }

    /// [`ThreadPool::schedule`] along this route: each run enters the
    /// dispatcher in this lane (a background flush that never takes every
    /// worker, under a [`lane_limit`](crate::ThreadPoolBuilder::lane_limit)),
    /// with this key.
    ///
    /// # Errors
    ///
    /// As for [`ThreadPool::schedule`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade::{Every, Lane, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().workers(4).lane_limit(Lane::Background, 1).build()?;
    /// let (done_tx, done) = brigade::channel::unbounded();
    /// let compaction = pool
    ///     .lane(Lane::Background)
    ///     .schedule(Every::delay(Duration::from_millis(5)), move |_ctx| done_tx.send(()))
    ///     .map_err(|e| e.kind())?;
    /// done.recv_timeout(Duration::from_secs(10))?;
    /// compaction.cancel();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn schedule<F, E>(&self, every: Every, f: F) -> Result<Schedule, ScheduleError<F>>
    where
        F: FnMut(&Context) -> Result<(), E> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        self.pool.schedule_along(Some(self.route), every, f)
    }

    /// The job's cell: a keyed one knows its key (see `JobCell::keyed`).
    fn cell<F, T>(&self, f: F) -> (Arc<JobCell<F, T>>, SharedTask)
    where
        F: FnOnce(&Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        let crew = self.pool.crew.id();
        match self.route.key {
            Some(key) => JobCell::keyed(f, crew, key),
            None => JobCell::new(f, crew),
        }
    }

    fn enqueue(&self, task: Task, wait: Wait) -> Result<(), TrySubmitError<Task>> {
        self.pool.enqueue_routed(task, self.route, wait)
    }
}
