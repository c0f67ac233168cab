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
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum JobError {
    /// The job panicked; the payload's message is kept (non-string payloads
    /// read `"<non-string panic payload>"`).
    #[error("job panicked: {0}")]
    Panicked(String),
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

macro_rules! job_carrier {
    ($name:ident { $($variant:ident),* }) => {
        impl<J> $name<J> {
            /// Hands back the job that could not be submitted.
            pub fn into_inner(self) -> J {
                match self { $(Self::$variant(job) => job,)* }
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
    /// A task panicked with this message.
    #[error("a task panicked: {0}")]
    Panicked(String),
}

impl<E> GroupError<E> {
    /// The task's error, if the failure was an error rather than a panic.
    pub fn into_error(self) -> Option<E> {
        match self {
            Self::Failed(error) => Some(error),
            Self::Panicked(_) => None,
        }
    }
}

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

/// A task was not started; it is handed back.
pub enum SpawnError<F> {
    /// The group's context is done (a task failed, or it was cancelled).
    Cancelled(F),
    /// `try_spawn`: the group is at its limit.
    Full(F),
    /// No thread could run the task: the OS refused a new thread, or the
    /// group's pool refused the job.
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
    /// `BRIGADE_WORKERS` is set but is not a positive integer.
    #[error("BRIGADE_WORKERS must be a positive integer, got {0:?}")]
    InvalidEnv(String),
}

/// [`Builder::build`](crate::Builder::build) rejected the configuration or
/// could not start the pool. No thread is left running when this is returned.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The worker count or sizing inputs are invalid.
    #[error(transparent)]
    Sizing(#[from] SizingError),
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
    /// The thread name contains a NUL byte, which the OS cannot store.
    #[error("thread name must not contain NUL bytes, got {0:?}")]
    InvalidThreadName(String),
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
