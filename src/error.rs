//! Every public error type, in one place.
//!
//! Errors follow the operation that produced them (`SubmitError` for
//! `submit`, `TrySubmitError` for `try_submit` and `submit_timeout`, and so
//! on). An error that carries the caller's job hands it back through
//! `into_inner`, and its `Debug` never requires the job to be `Debug`.
//! Messages are lower-case, carry no trailing period, and say what to fix.

use std::fmt;
use std::time::Duration;

use thiserror::Error;

use crate::panic::Panic;

/// Why a [`Context`](crate::Context) is done.
///
/// The spelling `Canceled` follows Go's `context.Canceled`, so code ported
/// from Go reads the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum Cancelled {
    /// Someone called [`Context::cancel`](crate::Context::cancel) on this
    /// context or an ancestor.
    #[error("context canceled")]
    Canceled,
    /// The context's deadline (its own or an ancestor's) passed.
    #[error("context deadline exceeded")]
    DeadlineExceeded,
}

/// Why a job submitted with [`ThreadPool::submit`](crate::ThreadPool::submit)
/// produced no value.
///
/// # Three kinds of deadline
///
/// | what passed | [`join`](crate::JobHandle::join) returns |
/// |---|---|
/// | the pool's [`job_timeout`](crate::ThreadPoolBuilder::job_timeout), counted from the job's start (the job returned late; its value is dropped) | `Err(JobError::TimedOut)` |
/// | the deadline of the pool's [context](crate::ThreadPoolBuilder::context) (before the job started, or before it returned) | `Err(JobError::Cancelled(Cancelled::DeadlineExceeded))` |
/// | a deadline the job set on a context it derived itself, which the job reported in its own value | `Ok(Err(…))`: the job's value, whatever it says |
///
/// [`is_deadline`](Self::is_deadline) asks for the first two at once.
/// A pool whose deadline has passed has no workers left: every job still
/// queued resolves as the second row without running, and submits are
/// refused as cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum JobError {
    /// The job panicked: the [`Panic`]'s message (non-string payloads read
    /// `"<non-string panic payload>"`) and, where it was seen, its location.
    #[error("job panicked: {0}")]
    Panicked(Panic),
    /// The job was cancelled before it started (it never ran), or its context
    /// was cancelled before it returned (its value was discarded).
    #[error("job cancelled: {0}")]
    Cancelled(Cancelled),
    /// The job returned after its own per-job timeout passed; its value was
    /// discarded. Timeouts are cooperative: the job ran to completion.
    #[error("job exceeded its timeout")]
    TimedOut,
    /// The result was already handed out by an earlier
    /// [`JobHandle::join_timeout`](crate::JobHandle::join_timeout).
    #[error("the job's result was already taken by an earlier join_timeout")]
    AlreadyJoined,
    /// A keyed job joined a later job of its own key: that job cannot
    /// start until the joiner returns, so the join fails instead of
    /// hanging. The joined job still runs, after the joiner.
    #[error(
        "the job waits behind the job that joined it (a later job of the same key): it cannot start until the joiner returns"
    )]
    QueuedBehindCaller,
}

impl JobError {
    /// Whether a deadline ended the job: its own per-job timeout
    /// ([`TimedOut`](Self::TimedOut)) or the pool's deadline
    /// ([`Cancelled(DeadlineExceeded)`](Cancelled::DeadlineExceeded)).
    pub fn is_deadline(&self) -> bool {
        matches!(
            self,
            Self::TimedOut | Self::Cancelled(Cancelled::DeadlineExceeded)
        )
    }
}

/// A blocking submit failed; the job is handed back.
#[derive(PartialEq, Eq, Error)]
pub enum SubmitError<J> {
    /// The pool no longer accepts jobs (it was joined or shut down).
    #[error("the pool is closed and accepts no more jobs")]
    Closed(J),
    /// The pool's context was cancelled (or its deadline passed) before the
    /// job could be queued.
    #[error("the pool was cancelled before the job could be queued")]
    Cancelled(J),
}

/// A non-blocking or bounded submit failed; the job is handed back.
#[derive(PartialEq, Eq, Error)]
pub enum TrySubmitError<J> {
    /// The queue stayed full (for `try_*`: was full; for `*_timeout`: stayed
    /// full for the whole wait).
    #[error("the pool's queue is full")]
    Full(J),
    /// The pool no longer accepts jobs (it was joined or shut down).
    #[error("the pool is closed and accepts no more jobs")]
    Closed(J),
    /// The pool's context was cancelled (or its deadline passed).
    #[error("the pool was cancelled before the job could be queued")]
    Cancelled(J),
}

/// Why a job or task was refused, without the job: what a
/// [`SubmitError`], [`TrySubmitError`] or [`SpawnError`] says once the job
/// is set aside.
///
/// Those errors hand the caller's closure back, so they are `Send + Sync`
/// only when the closure is, and a closure that captures a `Cell` or a
/// `Receiver` is not: `?` into `Box<dyn Error + Send + Sync>` (or `anyhow`)
/// would not compile. A `Refusal` is `Copy + Send + Sync + 'static`; take
/// it with `.kind()` (the job stays in the error) or `?` through
/// `From`.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::sync::mpsc;
/// use brigade::ThreadPool;
///
/// fn run(pool: &ThreadPool) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
///     let (tx, rx) = mpsc::channel::<u32>(); // a Sender is Send, not Sync
///     let counter = Cell::new(1); // neither is a Cell
///     let handle = pool
///         .submit(move |_ctx| {
///             tx.send(counter.get()).ok();
///             counter.get() + 1
///         })
///         .map_err(|e| e.kind())?;
///     let sent = rx.recv()?;
///     Ok(handle.join()? + sent)
/// }
///
/// let pool = ThreadPool::builder().workers(1).build()?;
/// assert_eq!(run(&pool)?, 3);
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No room: the pool's queue is full, or the group is at its limit.
    #[error("no room for the job: the queue is full or the group is at its limit")]
    Full,
    /// The pool no longer accepts jobs (it was closed, joined or shut down).
    #[error("the pool is closed and accepts no more jobs")]
    Closed,
    /// The pool's or group's context was done before the job was taken.
    #[error("cancelled before the job could be taken")]
    Cancelled,
    /// No thread could run the task: the OS refused a new thread, or the
    /// group's pool refused the job.
    #[error("no thread is available to run the task")]
    Unavailable,
    /// The request itself was invalid (a schedule's period or a delay out
    /// of range): fix the argument.
    #[error("the request is invalid: see the error it came from")]
    Invalid,
}

macro_rules! job_carrier {
    ($name:ident { $($variant:ident),* }) => {
        impl<J> $name<J> {
            /// Hands back the job that could not be submitted.
            pub fn into_inner(self) -> J {
                match self { $(Self::$variant(job) => job,)* }
            }

            /// Why, without the job: a [`Refusal`] is `Copy + Send + Sync`,
            /// so it goes through `?` into any error type, whatever the job
            /// captured.
            pub fn kind(&self) -> Refusal {
                match self { $(Self::$variant(_) => Refusal::$variant,)* }
            }
        }

        impl<J> From<$name<J>> for Refusal {
            fn from(err: $name<J>) -> Self {
                err.kind()
            }
        }

        impl<J> fmt::Debug for $name<J> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self { $(Self::$variant(_) => f.write_str(concat!(stringify!($variant), "(..)")),)* }
            }
        }
    };
}

job_carrier!(SubmitError { Closed, Cancelled });
job_carrier!(TrySubmitError {
    Full,
    Closed,
    Cancelled
});

/// A delayed job or a schedule was refused; the closure is handed back.
///
/// From [`ThreadPool::schedule_after`](crate::ThreadPool::schedule_after),
/// [`schedule_at`](crate::ThreadPool::schedule_at) and
/// [`schedule`](crate::ThreadPool::schedule).
#[derive(PartialEq, Eq, Error)]
pub enum ScheduleError<J> {
    /// A periodic schedule's period was zero: give it a period of at least
    /// one nanosecond.
    #[error("a schedule's period must not be zero")]
    ZeroPeriod(J),
    /// A periodic schedule's period was longer than
    /// [`Every::MAX_PERIOD`](crate::Every::MAX_PERIOD) (a year): use a
    /// delayed job, or a shorter period.
    #[error("a schedule's period must be at most a year (Every::MAX_PERIOD)")]
    PeriodTooLong(J),
    /// The delay (or first delay) is too long for the clock to represent
    /// its due time: use a shorter one.
    #[error("the delay is too long: its due time is past what the clock can represent")]
    TooFar(J),
    /// The pool no longer accepts jobs (it was closed, joined or shut down).
    #[error("the pool is closed and accepts no more jobs")]
    Closed(J),
    /// The pool's context was cancelled (or its deadline passed).
    #[error("the pool was cancelled before the job could be scheduled")]
    Cancelled(J),
    /// The OS refused to start the pool's timer thread.
    #[error("the OS refused to start the pool's timer thread")]
    NoTimer(J),
}

impl<J> ScheduleError<J> {
    /// Hands back the closure that could not be scheduled.
    pub fn into_inner(self) -> J {
        match self {
            Self::ZeroPeriod(job)
            | Self::PeriodTooLong(job)
            | Self::TooFar(job)
            | Self::Closed(job)
            | Self::Cancelled(job)
            | Self::NoTimer(job) => job,
        }
    }

    /// Why, without the closure (see [`Refusal`]).
    pub fn kind(&self) -> Refusal {
        match self {
            Self::ZeroPeriod(_) | Self::PeriodTooLong(_) | Self::TooFar(_) => Refusal::Invalid,
            Self::Closed(_) => Refusal::Closed,
            Self::Cancelled(_) => Refusal::Cancelled,
            Self::NoTimer(_) => Refusal::Unavailable,
        }
    }
}

impl<J> From<ScheduleError<J>> for Refusal {
    fn from(err: ScheduleError<J>) -> Self {
        err.kind()
    }
}

impl<J> fmt::Debug for ScheduleError<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::ZeroPeriod(_) => "ZeroPeriod",
            Self::PeriodTooLong(_) => "PeriodTooLong",
            Self::TooFar(_) => "TooFar",
            Self::Closed(_) => "Closed",
            Self::Cancelled(_) => "Cancelled",
            Self::NoTimer(_) => "NoTimer",
        };
        write!(f, "{name}(..)")
    }
}

/// Why one run of a periodic [`Schedule`](crate::Schedule) failed: kept
/// in the handle ([`Schedule::last_error`](crate::Schedule::last_error)),
/// and logged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RunError {
    /// The run returned `Err`; its message.
    #[error("the run returned an error: {0}")]
    Returned(String),
    /// The run panicked, returned after the pool's per-job timeout, or
    /// was cancelled while it ran.
    #[error(transparent)]
    Job(JobError),
}

impl<J> From<SubmitError<J>> for TrySubmitError<J> {
    fn from(err: SubmitError<J>) -> Self {
        match err {
            SubmitError::Closed(job) => Self::Closed(job),
            SubmitError::Cancelled(job) => Self::Cancelled(job),
        }
    }
}

/// A [`Semaphore`](crate::Semaphore) could not be created.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SemaphoreError {
    /// Zero permits: no acquire could ever succeed.
    #[error("a semaphore needs at least 1 permit, got 0")]
    ZeroPermits,
}

/// An acquire on a [`Semaphore`](crate::Semaphore) failed; nothing was
/// acquired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AcquireError {
    /// More permits were asked for than the semaphore has in all.
    #[error(
        "cannot acquire {requested} permits from a semaphore of {total}; ask for at most {total}"
    )]
    TooMany {
        /// Permits asked for.
        requested: usize,
        /// The semaphore's total.
        total: usize,
    },
    /// The semaphore is closed.
    #[error("the semaphore is closed")]
    Closed,
    /// The context was done before the permits were granted.
    #[error("acquire cancelled: {0}")]
    Cancelled(Cancelled),
    /// The timeout passed before the permits were granted.
    #[error("timed out waiting for permits")]
    TimedOut,
    /// `try_acquire` would have had to wait: too few permits free, or other
    /// acquires queued first.
    #[error("no permits available without waiting")]
    WouldBlock,
}

/// Why an [`ErrGroup`](crate::ErrGroup) failed: the first failure of any
/// of its tasks.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GroupError<E> {
    /// A task returned this error.
    #[error("{0}")]
    Failed(E),
    /// A task panicked: its message and, where it was seen, its location.
    #[error("a task panicked: {0}")]
    Panicked(Panic),
    /// A task never ran: the pool it was handed to
    /// ([`ErrGroup::on_pool`](crate::ErrGroup::on_pool)) discarded it.
    #[error("a task never ran: its pool discarded it ({0})")]
    Discarded(Cancelled),
    /// No task failed, but cancellation kept work from happening: a
    /// `spawn` was refused because the group's context was done (a task
    /// cancelled it, or the caller's context was cancelled), or a task's
    /// context was cancelled before it returned.
    #[error("the group was cancelled before all its work was done ({0})")]
    Cancelled(Cancelled),
    /// The group's limit was refused (from [`ErrGroup::limit`] through
    /// `?`).
    ///
    /// [`ErrGroup::limit`]: crate::ErrGroup::limit
    #[error(transparent)]
    Limit(#[from] GroupLimitError),
}

impl<E> GroupError<E> {
    /// The task's error, if the failure was an error returned by a task.
    pub fn into_error(self) -> Option<E> {
        match self {
            Self::Failed(error) => Some(error),
            Self::Panicked(_) | Self::Discarded(_) | Self::Cancelled(_) | Self::Limit(_) => None,
        }
    }
}

/// Every failure of an [`ErrGroup`](crate::ErrGroup) that does not stop
/// at the first: a [`collect_all`](crate::ErrGroup::collect_all) group
/// with a failure, or a [`first_success`](crate::ErrGroup::first_success)
/// group that no task won.
///
/// Each failure is `(index, error)`: the task's place in spawn order
/// (0-based) and how it ended, as a [`GroupError`] (`Failed`, `Panicked`,
/// `Discarded` or `Cancelled`), listed in the order the tasks ended.
/// A `spawn` refused because the group's context was done took no index;
/// [`refused`](Self::refused) says so. (A task the group admitted but its
/// pool would not take — [`SpawnError::Unavailable`] — was handed back
/// and leaves its index unused.)
///
/// `Display` lists every failure (`"2 tasks failed: task 1: bad row;
/// task 3: a task panicked: boom"`) and needs only `E: Display`.
///
/// # Examples
///
/// ```
/// use brigade::{Context, ErrGroup, GroupError};
///
/// let group = ErrGroup::<String>::collect_all(&Context::new());
/// for n in 0..5u32 {
///     group.spawn(move |_ctx| if n % 2 == 1 { Err(format!("{n} is odd")) } else { Ok(()) })?;
/// }
/// let errors = group.wait().unwrap_err();
/// let mut failed: Vec<(usize, String)> = errors
///     .into_iter()
///     .filter_map(|(index, error)| Some((index, error.into_error()?)))
///     .collect();
/// failed.sort(); // listed as they ended; sorted here to compare
/// assert_eq!(failed, [(1, "1 is odd".to_owned()), (3, "3 is odd".to_owned())]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupErrors<E> {
    errors: Vec<(usize, GroupError<E>)>,
    refused: Option<Cancelled>,
}

impl<E> GroupErrors<E> {
    pub(crate) fn new(errors: Vec<(usize, GroupError<E>)>, refused: Option<Cancelled>) -> Self {
        Self { errors, refused }
    }

    /// How many tasks failed.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Whether no task failed: the group was cut short only by a refused
    /// spawn, or a first-success group had no task at all.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Each failed task's index (its place in spawn order) and error, in
    /// the order the tasks ended.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (usize, &GroupError<E>)> + '_ {
        self.errors.iter().map(|(index, error)| (*index, error))
    }

    /// The failure that happened first.
    pub fn first(&self) -> Option<(usize, &GroupError<E>)> {
        self.iter().next()
    }

    /// Why a `spawn` was refused, if cancellation refused one: the group's
    /// context was done (the caller cancelled it, or a task did). The
    /// refused task was handed back to its spawner, so it has no index.
    pub fn refused(&self) -> Option<Cancelled> {
        self.refused
    }

    /// The failures as a `Vec` of `(index, error)`, in the order the tasks
    /// ended.
    pub fn into_vec(self) -> Vec<(usize, GroupError<E>)> {
        self.errors
    }
}

impl<E> IntoIterator for GroupErrors<E> {
    type Item = (usize, GroupError<E>);
    type IntoIter = std::vec::IntoIter<(usize, GroupError<E>)>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

impl<E: fmt::Display> fmt::Display for GroupErrors<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.errors.is_empty() && self.refused.is_none() {
            return f.write_str("no task succeeded: the group had no tasks");
        }
        if !self.errors.is_empty() {
            write!(f, "{} failed", Count(self.errors.len(), "task"))?;
        }
        if let Some(reason) = self.refused {
            let and = if self.errors.is_empty() { "" } else { ", and " };
            write!(f, "{and}a spawn was refused ({reason})")?;
        }
        for (n, (index, error)) in self.errors.iter().enumerate() {
            let sep = if n == 0 { ": " } else { "; " };
            write!(f, "{sep}task {index}: {error}")?;
        }
        Ok(())
    }
}

// By hand, not through thiserror: the message is a list, which an
// `#[error]` format string cannot write, and the impls need their own
// bounds on `E`.
impl<E: fmt::Debug + fmt::Display> std::error::Error for GroupErrors<E> {}

/// An [`ErrGroup`](crate::ErrGroup) limit was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GroupLimitError {
    /// A limit of zero would let no task ever run.
    #[error("an ErrGroup limit must be at least 1, got 0")]
    Zero,
    /// More than [`MAX_WORKERS`](crate::sizing::MAX_WORKERS).
    #[error("an ErrGroup limit must be at most {max}, got {requested}")]
    TooLarge {
        /// The limit asked for.
        requested: usize,
        /// The largest accepted.
        max: usize,
    },
    /// Tasks were already spawned; set the limit first.
    #[error("set an ErrGroup's limit before spawning tasks")]
    AlreadySpawned,
}

/// An [`ErrGroup`](crate::ErrGroup)'s
/// [`propagate`](crate::ErrGroup::propagate) hooks were refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GroupPropagateError {
    /// Tasks were already spawned on the group's own workers, which
    /// carry the hooks from their start.
    #[error("set an ErrGroup's propagate hooks before spawning tasks")]
    AlreadySpawned,
    /// The group runs its tasks on a pool, whose own hooks apply.
    #[error(
        "an ErrGroup on a pool uses the pool's propagate hooks; set them on the pool's builder"
    )]
    OnPool,
}

/// A task was not started; it is handed back.
pub enum SpawnError<F> {
    /// The group's context is done (a task failed, or it was cancelled).
    Cancelled(F),
    /// `try_spawn`: the group is at its limit.
    Full(F),
    /// No thread could run the task: the group's pool refused the job
    /// (it was closed or cancelled).
    Unavailable(F),
}

impl<F> fmt::Display for SpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cancelled(_) => "the group is cancelled; the task was not started",
            Self::Full(_) => "the group is at its limit",
            Self::Unavailable(_) => "no thread is available to run the task",
        })
    }
}

impl<F> std::error::Error for SpawnError<F> {}

job_carrier!(SpawnError {
    Cancelled,
    Full,
    Unavailable
});

/// A pool size could not be worked out from the inputs given.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum SizingError {
    /// A worker count of zero was asked for.
    #[error("worker count must be at least 1, got 0")]
    ZeroWorkers,
    /// More workers than brigade allows in one pool.
    #[error("worker count must be at most {max}, got {requested}")]
    TooManyWorkers {
        /// The count asked for (or computed).
        requested: u128,
        /// [`sizing::MAX_WORKERS`](crate::sizing::MAX_WORKERS).
        max: usize,
    },
    /// The throughput target is NaN, infinite, zero or negative.
    #[error("throughput must be a finite number of jobs per second greater than 0, got {0}")]
    InvalidThroughput(f64),
    /// The latency is zero.
    #[error("latency must be greater than zero")]
    ZeroLatency,
    /// `Sizing::Adaptive` bounds out of order or out of range.
    #[error(
        "adaptive sizing needs min <= max and 1 <= max <= {limit}, got min {min} and max {max}"
    )]
    InvalidBounds {
        /// The lower bound given.
        min: usize,
        /// The upper bound given.
        max: usize,
        /// [`MAX_WORKERS`](crate::sizing::MAX_WORKERS).
        limit: usize,
    },
    /// `BRIGADE_WORKERS` is set but is not a positive integer.
    #[error("BRIGADE_WORKERS must be a positive integer, got {0:?}")]
    InvalidEnv(String),
}

/// [`ThreadPoolBuilder::build`](crate::ThreadPoolBuilder::build) rejected the configuration or
/// could not start the pool. No thread is left running when this is returned.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The worker count or sizing inputs are invalid.
    #[error(transparent)]
    Sizing(#[from] SizingError),
    /// [`Pipeline::buffer`](crate::Pipeline::buffer) was called before any
    /// stage, so there was no stage queue for it to size.
    #[error("buffer() sizes the queue of the stage added last; add a stage before calling it")]
    BufferBeforeStage,
    /// The queue capacity is beyond what a bounded queue can allocate.
    #[error(
        "queue capacity must be at most {max}, got {requested}; use unbounded_queue() for no limit"
    )]
    QueueTooLarge {
        /// The capacity asked for.
        requested: usize,
        /// The largest capacity accepted.
        max: usize,
    },
    /// A pipeline stage's buffer is beyond what a bounded channel can
    /// allocate.
    #[error("stage buffer must be at most {max}, got {requested}")]
    BufferTooLarge {
        /// The buffer asked for.
        requested: usize,
        /// The largest buffer accepted.
        max: usize,
    },
    /// No worker of a [`WorkerPool`](crate::WorkerPool) built with
    /// [`build_with_state`](crate::WorkerPoolBuilder::build_with_state)
    /// could build its state: the first failure's message (an
    /// initialiser's panic reads "the initialiser panicked: …").
    #[error("no worker could start: its state initialiser failed: {0}")]
    WorkerInit(String),
    /// The results capacity is beyond what a bounded channel can allocate.
    #[error("results capacity must be at most {max}, got {requested}")]
    ResultsTooLarge {
        /// The capacity asked for.
        requested: usize,
        /// The largest capacity accepted.
        max: usize,
    },
    /// An ordering window of zero, or beyond the largest accepted.
    #[error("ordered window must be between 1 and {max}, got {requested}")]
    InvalidWindow {
        /// The window asked for.
        requested: usize,
        /// The largest window accepted.
        max: usize,
    },
    /// A stack size of zero bytes.
    #[error("stack size must be greater than 0 bytes")]
    ZeroStackSize,
    /// A per-job timeout of zero.
    #[error(
        "job timeout must be greater than zero; leave job_timeout unset for no per-job deadline"
    )]
    ZeroJobTimeout(Duration),
    /// A keep-alive of zero.
    #[error(
        "keep_alive must be greater than zero; leave it unset for workers that never leave when idle"
    )]
    ZeroKeepAlive(Duration),
    /// `Sizing::Adaptive { min: 0, .. }` without a keep-alive.
    #[error(
        "Sizing::Adaptive with min 0 needs keep_alive(..): only idle workers leaving take a pool to no workers; set keep_alive or a min of at least 1"
    )]
    ZeroMinNeedsKeepAlive,
    /// `lane_limit(lane, 0)`: the lane's jobs could never start.
    #[error("lane_limit({0:?}, 0) would let no {0:?} job ever start; the limit must be at least 1")]
    ZeroLaneLimit(crate::Lane),
    /// `lane_limit(lane, limit)` above a fixed pool's worker count, or an
    /// adaptive pool's `max`: such a cap could never hold a job back.
    #[error(
        "lane_limit({lane:?}, {limit}) is above the pool's {workers} workers, so it would never hold a job back; use at most {workers}, or leave {lane:?} unlimited"
    )]
    LaneLimitAboveWorkers {
        /// The lane given the limit.
        lane: crate::Lane,
        /// The limit asked for.
        limit: usize,
        /// The most workers the pool can have.
        workers: usize,
    },
    /// `lane_limit(Lane::Normal, _)`: `Normal` holds every job submitted
    /// without a lane, and is never capped.
    #[error(
        "Lane::Normal cannot be limited: it holds every job submitted without a lane; limit Lane::High or Lane::Background"
    )]
    NormalLaneLimit,
    /// `starvation_bound(Duration::ZERO)`.
    #[error(
        "starvation_bound must be greater than zero (a job waiting longer than it goes first); leave it unset for the default of 250 ms"
    )]
    ZeroStarvationBound,
    /// `key_queue_limit(0)`.
    #[error("key_queue_limit must be at least 1: it is how many jobs of one key may wait")]
    ZeroKeyQueue,
    /// The thread name contains a NUL byte, which the OS cannot store.
    #[error("thread name must not contain NUL bytes, got {0:?}")]
    InvalidThreadName(String),
    /// `record_latencies(false)` together with a feature that is driven
    /// by each job's timings.
    #[error(
        "record_latencies(false) conflicts with {needed_by}, which is driven by job timings; remove one of the two"
    )]
    LatenciesNeeded {
        /// The setting that needs the timings: `"on_job_done"` or
        /// `"Sizing::Adaptive"`.
        needed_by: &'static str,
    },
    /// The OS refused to start a worker thread.
    #[error("failed to spawn worker thread: {0}")]
    Spawn(#[source] std::io::Error),
}

impl<J> TrySubmitError<J> {
    /// Applies `f` to the job inside, keeping the variant.
    pub(crate) fn map<K>(self, f: impl FnOnce(J) -> K) -> TrySubmitError<K> {
        match self {
            Self::Full(job) => TrySubmitError::Full(f(job)),
            Self::Closed(job) => TrySubmitError::Closed(f(job)),
            Self::Cancelled(job) => TrySubmitError::Cancelled(f(job)),
        }
    }
}

/// A [`RateLimiter`](crate::RateLimiter) could not be built, or could not
/// grant a request.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum RateError {
    /// The rate is NaN, infinite, zero or negative.
    #[error(
        "rate must be a finite number of tokens per second greater than 0, got {0}; use RateLimiter::unlimited() for no limit"
    )]
    InvalidRate(f64),
    /// The interval given to [`RateLimiter::every`](crate::RateLimiter::every)
    /// is zero.
    #[error("interval must be greater than zero; use RateLimiter::unlimited() for no limit")]
    ZeroInterval,
    /// A burst of zero would refuse every request.
    #[error("burst must be at least 1, got 0")]
    ZeroBurst,
    /// More tokens were asked for at once than the bucket can ever hold.
    #[error(
        "cannot take {requested} tokens at once from a limiter whose burst is {burst}; ask for at most {burst} or raise the burst"
    )]
    ExceedsBurst {
        /// The tokens asked for.
        requested: usize,
        /// The limiter's burst.
        burst: usize,
    },
    /// The tokens would be ready only after the time allowed: the context's
    /// deadline for a wait, `max_wait` for a bounded reservation. Nothing
    /// was taken and nobody slept.
    #[error(
        "waiting {wait:?} for {} would run past the deadline, {max_wait:?} away",
        Count(*.requested, "token")
    )]
    WouldExceedDeadline {
        /// The tokens asked for.
        requested: usize,
        /// How long they would take to be ready (`Duration::MAX` if longer
        /// than a `Duration` can hold).
        wait: Duration,
        /// How long the caller was willing to wait.
        max_wait: Duration,
    },
    /// The ready time is too far ahead to represent: the rate is tiny, or
    /// the bucket is deep in debt from earlier reservations.
    #[error(
        "{} would not be ready within any representable time; raise the rate or cancel earlier reservations",
        Count(*.requested, "token")
    )]
    TooFarAhead {
        /// The tokens asked for.
        requested: usize,
    },
    /// The context was cancelled or its deadline passed, before or during
    /// the wait; any tokens reserved for the wait were given back.
    #[error("rate limit wait cancelled: {0}")]
    Cancelled(Cancelled),
}

/// A [`RetryBuilder`](crate::RetryBuilder) or [`Backoff`](crate::Backoff)
/// setting is out of range.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum RetrySettingsError {
    /// Zero attempts would never run the operation.
    #[error("max attempts must be at least 1, got 0")]
    ZeroAttempts,
    /// A zero initial delay would retry at once, in a busy loop.
    #[error("initial backoff delay must be greater than zero")]
    ZeroInitialDelay,
    /// The cap is below the first delay.
    #[error(
        "max backoff delay must be at least the initial delay, got max {max:?} < initial {initial:?}"
    )]
    InvertedDelays {
        /// The initial delay.
        initial: Duration,
        /// The cap.
        max: Duration,
    },
    /// The multiplier is NaN, infinite or below 1 (delays must not shrink).
    #[error("backoff multiplier must be a finite number at least 1, got {0}")]
    InvalidMultiplier(f64),
}

/// [`Retry::run`](crate::Retry::run) gave up. Every variant says how many
/// attempts ran and carries the last error, if there was one.
///
/// `Display` needs only `E: Display`, and `Debug` needs nothing of `E` (it
/// prints the error as `..`; use `Display` or [`last_error`](Self::last_error)
/// to see it).
#[derive(Error)]
#[non_exhaustive]
pub enum RetryError<E> {
    /// Every allowed attempt failed; `error` is the last one's.
    #[error("gave up after {}: {error}", Count(*.attempts, "attempt"))]
    Exhausted {
        /// How many attempts ran (the configured maximum).
        attempts: u32,
        /// The last attempt's error.
        error: E,
    },
    /// The retry-if predicate refused to retry this error.
    #[error("stopped after {}: the error is not retried: {error}", Count(*.attempts, "attempt"))]
    NotRetryable {
        /// How many attempts ran, the last being the one that failed so.
        attempts: u32,
        /// The error the predicate refused.
        error: E,
    },
    /// The context was cancelled or its deadline passed, before an attempt
    /// or during a backoff.
    #[error("stopped after {}: {reason}{}", Count(*.attempts, "attempt"), LastError(.last))]
    Cancelled {
        /// How many attempts ran (0 if the context was done before the
        /// first).
        attempts: u32,
        /// Why the context is done.
        reason: Cancelled,
        /// The last attempt's error, if any attempt ran.
        last: Option<E>,
    },
    /// The next backoff would end at or past the context's deadline, so the
    /// run stopped at once instead of sleeping.
    #[error(
        "stopped after {}: the next backoff of {delay:?} would end past the context's deadline; last error: {error}",
        Count(*.attempts, "attempt")
    )]
    WouldExceedDeadline {
        /// How many attempts ran.
        attempts: u32,
        /// The last attempt's error.
        error: E,
        /// The backoff that did not fit before the deadline.
        delay: Duration,
    },
}

impl<E> RetryError<E> {
    /// How many times the operation ran.
    pub fn attempts(&self) -> u32 {
        match self {
            Self::Exhausted { attempts, .. }
            | Self::NotRetryable { attempts, .. }
            | Self::Cancelled { attempts, .. }
            | Self::WouldExceedDeadline { attempts, .. } => *attempts,
        }
    }

    /// The last attempt's error; `None` only for a run cancelled before its
    /// first attempt.
    pub fn last_error(&self) -> Option<&E> {
        match self {
            Self::Exhausted { error, .. }
            | Self::NotRetryable { error, .. }
            | Self::WouldExceedDeadline { error, .. } => Some(error),
            Self::Cancelled { last, .. } => last.as_ref(),
        }
    }

    /// Hands back the last attempt's error; `None` only for a run cancelled
    /// before its first attempt.
    pub fn into_last_error(self) -> Option<E> {
        match self {
            Self::Exhausted { error, .. }
            | Self::NotRetryable { error, .. }
            | Self::WouldExceedDeadline { error, .. } => Some(error),
            Self::Cancelled { last, .. } => last,
        }
    }
}

impl<E> fmt::Debug for RetryError<E> {
    /// Prints the error as `..`, so `E` need not be `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exhausted { attempts, .. } => f
                .debug_struct("Exhausted")
                .field("attempts", attempts)
                .finish_non_exhaustive(),
            Self::NotRetryable { attempts, .. } => f
                .debug_struct("NotRetryable")
                .field("attempts", attempts)
                .finish_non_exhaustive(),
            Self::Cancelled {
                attempts, reason, ..
            } => f
                .debug_struct("Cancelled")
                .field("attempts", attempts)
                .field("reason", reason)
                .finish_non_exhaustive(),
            Self::WouldExceedDeadline {
                attempts, delay, ..
            } => f
                .debug_struct("WouldExceedDeadline")
                .field("attempts", attempts)
                .field("delay", delay)
                .finish_non_exhaustive(),
        }
    }
}

/// A count and its noun: "1 attempt", "3 attempts".
struct Count<N>(N, &'static str);

impl<N: fmt::Display + PartialEq + From<u8>> fmt::Display for Count<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self(n, noun) = self;
        let plural = if *n == N::from(1) { "" } else { "s" };
        write!(f, "{n} {noun}{plural}")
    }
}

/// "; last error: …", or nothing when no attempt ran.
struct LastError<'a, E>(&'a Option<E>);

impl<E: fmt::Display> fmt::Display for LastError<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(error) => write!(f, "; last error: {error}"),
            None => Ok(()),
        }
    }
}

/// Why [`ThreadPool::try_map`](crate::ThreadPool::try_map) stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TryMapError<E> {
    /// The function returned `Err` for the item at `index` (the first error
    /// seen, which is not always the lowest index).
    #[error("item {index} failed: {error}")]
    Failed {
        /// The item's position in the input.
        index: u64,
        /// The function's error.
        error: E,
    },
    /// An item's job panicked or was cancelled.
    #[error("item {index}: {error}")]
    Job {
        /// The item's position in the input.
        index: u64,
        /// What happened to it.
        error: JobError,
    },
}

/// Why an item failed in a stage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StageError<E> {
    /// The stage function returned this error.
    #[error("{0}")]
    Failed(E),
    /// The stage function panicked: its message and, where it was seen,
    /// its location.
    #[error("panicked: {0}")]
    Panicked(Panic),
}

/// One item that failed, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stage {stage:?} failed on item {index}: {error}")]
#[non_exhaustive]
pub struct StageFailure<E> {
    /// The stage's name.
    pub stage: String,
    /// The item's position in the inputs.
    pub index: u64,
    /// What went wrong.
    pub error: StageError<E>,
}

/// Why [`ReadyPipeline::run`](crate::ReadyPipeline::run) returned no output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError<E> {
    /// A stage failed (fail-fast mode): the first failure seen.
    #[error(transparent)]
    Stage(StageFailure<E>),
    /// The pipeline's context was cancelled or its deadline passed.
    #[error("pipeline cancelled: {0}")]
    Cancelled(Cancelled),
}

/// Why [`Pipeline::build`](crate::Pipeline::build) started no pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineBuildError {
    /// A setting of the whole pipeline is invalid: the ordered window, or
    /// a [`buffer`](crate::Pipeline::buffer) before any stage.
    #[error("pipeline: {0}")]
    Settings(BuildError),
    /// A stage's settings are invalid, or its threads could not start.
    #[error("pipeline stage {stage:?}: {error}")]
    Stage {
        /// The stage's name.
        stage: String,
        /// What is wrong with it.
        error: BuildError,
    },
}
