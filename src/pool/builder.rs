//! [`ThreadPoolBuilder`] for [`ThreadPool`]: the options every pool shares
//! (`options.rs`), validated in [`ThreadPoolBuilder::build`].

use std::time::Duration;

use super::ThreadPool;
use super::job::PoolExec;
use crate::crew::Crew;
use crate::error::BuildError;
use crate::lane::Lane;
use crate::options::{Options, common_setters};

/// Configures and starts a [`ThreadPool`]; from [`ThreadPool::builder`].
///
/// Defaults: [`Sizing::CpuBound`](crate::Sizing::CpuBound) workers, a queue of
/// [`DEFAULT_QUEUE_CAPACITY`](crate::DEFAULT_QUEUE_CAPACITY) jobs, threads named `brigade-0`,
/// `brigade-1`, …, the OS's default stack size, no per-job timeout, a fresh
/// root context, and [`PanicPolicy::Respawn`](crate::PanicPolicy::Respawn).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade::{Context, PanicPolicy, ThreadPool};
///
/// let shutdown = Context::new();
/// let pool = ThreadPool::builder()
///     .workers(4)
///     .queue_capacity(64)
///     .thread_name("resize")
///     .job_timeout(Duration::from_secs(5))
///     .context(&shutdown)
///     .panic_policy(PanicPolicy::Respawn)
///     .build()?;
/// assert_eq!(pool.stats().workers, 4);
/// # Ok::<(), brigade::BuildError>(())
/// ```
#[must_use = "a ThreadPoolBuilder does nothing until build() is called"]
#[derive(Debug, Default)]
pub struct ThreadPoolBuilder {
    options: Options,
}

impl ThreadPoolBuilder {
    common_setters!();

    /// Caps `lane` at `workers` jobs running at once, so that (for
    /// [`Lane::Background`]) batch work never takes every worker. Jobs
    /// of a lane at its cap wait on the board while other lanes' jobs
    /// run. [`Lane::Normal`], which holds every job submitted without a
    /// lane, cannot be capped; `build` says so, and refuses a limit of 0,
    /// or one above the count of a pool built with
    /// [`workers`](Self::workers) (`Sizing::Fixed`) or the `max` of an
    /// adaptive one. Against a count derived from the machine
    /// (`Sizing::CpuBound` and the like) a higher limit is accepted and
    /// never binds, so that the same settings build on every host.
    ///
    /// A job's [`join`](crate::JobHandle::join) on one of the pool's
    /// workers runs the job inline if it has not started, on the worker
    /// that the joining job already holds: such a run takes no further
    /// worker, and may take its lane past its limit (an unkeyed one is
    /// not counted among the lane's running jobs in
    /// [`Stats::lanes`](crate::Stats::lanes)).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::{Lane, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().workers(4).lane_limit(Lane::Background, 1).build()?;
    /// let batch: Vec<_> = (0..4)
    ///     .map(|n| pool.lane(Lane::Background).submit(move |_ctx| n * 10))
    ///     .collect::<Result<_, _>>()
    ///     .map_err(|e| e.kind())?;
    /// // At most one of them runs at a time; all of them run.
    /// let total: i32 = batch.into_iter().map(|job| job.join().unwrap()).sum();
    /// assert_eq!(total, 60);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lane_limit(mut self, lane: Lane, workers: usize) -> Self {
        self.options.dispatch.caps[lane.index()] = workers;
        self
    }

    /// How long a job may wait before it goes ahead of newer jobs of
    /// higher lanes (default 250 ms), so that no lane starves: under a
    /// stream of [`Lane::High`] jobs, a [`Lane::Background`] job still
    /// starts within about this long plus one job's run time.
    pub fn starvation_bound(mut self, bound: Duration) -> Self {
        self.options.dispatch.starvation = bound;
        self
    }

    /// Validates the settings and starts the workers.
    ///
    /// # Errors
    ///
    /// * [`BuildError::Sizing`]: zero or too many workers, bad
    ///   [`Sizing::IoBound`](crate::Sizing::IoBound) inputs, or a bad `BRIGADE_WORKERS`;
    /// * [`BuildError::QueueTooLarge`], [`BuildError::ZeroStackSize`],
    ///   [`BuildError::ZeroJobTimeout`], [`BuildError::ZeroKeepAlive`],
    ///   [`BuildError::ZeroMinNeedsKeepAlive`], [`BuildError::InvalidThreadName`],
    ///   [`BuildError::LatenciesNeeded`];
    /// * the dispatcher's settings: [`BuildError::NormalLaneLimit`],
    ///   [`BuildError::ZeroLaneLimit`], [`BuildError::LaneLimitAboveWorkers`],
    ///   [`BuildError::ZeroStarvationBound`], [`BuildError::ZeroKeyQueue`];
    /// * [`BuildError::Spawn`] if the OS refuses a thread; the threads
    ///   already started are stopped and joined first.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::ThreadPool;
    ///
    /// let err = ThreadPool::builder().workers(0).build().unwrap_err();
    /// assert_eq!(err.to_string(), "worker count must be at least 1, got 0");
    /// ```
    pub fn build(self) -> Result<ThreadPool, BuildError> {
        let (config, ctx) = self.options.validate()?;
        let (tx, rx) = config.channel();
        let crew = Crew::start(config, ctx, PoolExec, (&tx, rx), || ())?;
        Ok(ThreadPool {
            intake: Some(tx),
            shutter: crate::crew::Shutter::new(),
            reported: false,
            timer: super::Timer::new(),
            crew,
        })
    }
}
