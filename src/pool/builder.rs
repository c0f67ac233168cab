//! [`ThreadPoolBuilder`] for [`ThreadPool`]: the options every pool shares
//! (`options.rs`), validated in [`ThreadPoolBuilder::build`].

use super::ThreadPool;
use super::job::PoolExec;
use crate::crew::Crew;
use crate::error::BuildError;
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

    /// Validates the settings and starts the workers.
    ///
    /// # Errors
    ///
    /// * [`BuildError::Sizing`]: zero or too many workers, bad
    ///   [`Sizing::IoBound`](crate::Sizing::IoBound) inputs, or a bad `BRIGADE_WORKERS`;
    /// * [`BuildError::QueueTooLarge`], [`BuildError::ZeroStackSize`],
    ///   [`BuildError::ZeroJobTimeout`], [`BuildError::InvalidThreadName`];
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
        let crew = Crew::start(config, ctx, PoolExec, rx, || ())?;
        Ok(ThreadPool {
            intake: Some(tx),
            shutter: crate::crew::Shutter::new(),
            reported: false,
            crew,
        })
    }
}
