//! The settings every pool shares: declared, defaulted, documented and
//! validated once.
//!
//! Setters (the [`common_setters!`] every builder includes) only record;
//! every check happens in [`Options::check`], which `build()` (and a
//! pipeline's `run`) calls before anything starts, and which returns a
//! [`BuildError`] that says what to fix. No setter panics. Settings with
//! states are enums whose variants name them ([`OrderWindow`]; the crew's
//! `Wait` for a submit's wait).

use std::fmt;
use std::time::Duration;

use crate::context::Context;
use crate::crew::{
    CrewConfig, Dispatch, Elastic, Hook, JobHook, PanicPolicy, Propagate, StartGate,
};
use crate::error::{BuildError, Cancelled, RateError};
use crate::lane::Lane;
use crate::rate::RateLimiter;
use crate::sizing::Sizing;
use crate::sync::Arc;

/// The queue capacity when none is set.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

/// The largest bounded queue: a bounded queue allocates all its slots up
/// front. Use `unbounded_queue()` for more.
pub const MAX_QUEUE_CAPACITY: usize = 1 << 20;

/// The settings every pool front door shares, validated by [`Options::validate`].
#[derive(Clone)]
pub(crate) struct Options {
    pub(crate) sizing: Sizing,
    /// `None` means unbounded.
    pub(crate) queue_capacity: Option<usize>,
    pub(crate) thread_name: String,
    pub(crate) stack_size: Option<usize>,
    pub(crate) job_timeout: Option<Duration>,
    pub(crate) context: Option<Context>,
    pub(crate) panic_policy: PanicPolicy,
    pub(crate) on_thread_start: Option<Hook>,
    pub(crate) on_thread_exit: Option<Hook>,
    pub(crate) rate_limit: Option<RateLimiter>,
    pub(crate) on_job_done: Option<JobHook>,
    pub(crate) record_latencies: bool,
    pub(crate) keep_alive: Option<Duration>,
    pub(crate) propagate: Option<Propagate>,
    /// How keyed and laned jobs are ordered (`ThreadPoolBuilder` only).
    pub(crate) dispatch: Dispatch,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sizing: Sizing::CpuBound,
            queue_capacity: Some(DEFAULT_QUEUE_CAPACITY),
            thread_name: "brigade".to_owned(),
            stack_size: None,
            job_timeout: None,
            context: None,
            panic_policy: PanicPolicy::Respawn,
            on_thread_start: None,
            on_thread_exit: None,
            rate_limit: None,
            on_job_done: None,
            record_latencies: true,
            keep_alive: None,
            propagate: None,
            dispatch: Dispatch::default(),
        }
    }
}

impl Options {
    /// Checks every setting; returns the crew configuration and the pool's
    /// own context (a child of the configured one, so cancelling the pool
    /// never cancels the caller's context).
    pub(crate) fn validate(self) -> Result<(CrewConfig, Context), BuildError> {
        let workers = self.check()?;
        let ctx = self
            .context
            .as_ref()
            .map_or_else(Context::new, Context::child);
        let config = CrewConfig {
            workers,
            queue_capacity: self.queue_capacity,
            thread_name: self.thread_name,
            stack_size: self.stack_size,
            job_timeout: self.job_timeout,
            panic_policy: self.panic_policy,
            on_thread_start: self.on_thread_start,
            on_thread_exit: self.on_thread_exit,
            start_gate: self
                .rate_limit
                .map(|limiter| Arc::new(limiter) as Arc<dyn StartGate>),
            on_job_done: self.on_job_done,
            timing: self.record_latencies,
            adaptive: match self.sizing {
                Sizing::Adaptive { min, max } => Some((min, max)),
                _ => None,
            },
            elastic: self
                .keep_alive
                .map(|keep_alive| elastic(self.sizing, workers, keep_alive)),
            propagate: self.propagate,
            dispatch: self.dispatch,
        };
        Ok((config, ctx))
    }

    /// Checks every setting without starting anything; returns the worker
    /// count.
    pub(crate) fn check(&self) -> Result<usize, BuildError> {
        let workers = self.sizing.workers()?;
        if let Some(capacity) = self.queue_capacity {
            check_capacity(capacity, |requested, max| BuildError::QueueTooLarge {
                requested,
                max,
            })?;
        }
        if self.stack_size == Some(0) {
            return Err(BuildError::ZeroStackSize);
        }
        if let Some(timeout) = self.job_timeout.filter(Duration::is_zero) {
            return Err(BuildError::ZeroJobTimeout(timeout));
        }
        if let Some(keep_alive) = self.keep_alive.filter(Duration::is_zero) {
            return Err(BuildError::ZeroKeepAlive(keep_alive));
        }
        if matches!(self.sizing, Sizing::Adaptive { min: 0, .. }) && self.keep_alive.is_none() {
            return Err(BuildError::ZeroMinNeedsKeepAlive);
        }
        self.check_dispatch(workers)?;
        if self.thread_name.contains('\0') {
            return Err(BuildError::InvalidThreadName(self.thread_name.clone()));
        }
        if !self.record_latencies {
            let needed_by = if self.on_job_done.is_some() {
                Some("on_job_done")
            } else if matches!(self.sizing, Sizing::Adaptive { .. }) {
                Some("Sizing::Adaptive")
            } else {
                None
            };
            if let Some(needed_by) = needed_by {
                return Err(BuildError::LatenciesNeeded { needed_by });
            }
        }
        Ok(workers)
    }

    /// The dispatcher's settings: lane caps on `High` and `Background`
    /// only, each of at least one worker and at most a fixed pool's
    /// `workers` (an adaptive pool's `max`), a starvation bound and key
    /// queue above zero.
    fn check_dispatch(&self, workers: usize) -> Result<(), BuildError> {
        let dispatch = &self.dispatch;
        if dispatch.caps[Lane::Normal.index()] != usize::MAX {
            return Err(BuildError::NormalLaneLimit);
        }
        // Only against a count the caller gave: one derived from the
        // machine would make the same settings build on one host and not
        // on another, and a limit above it merely never binds.
        let most = match self.sizing {
            Sizing::Fixed(_) => workers,
            Sizing::Adaptive { max, .. } => max,
            _ => usize::MAX,
        };
        for lane in Lane::ALL {
            match dispatch.caps[lane.index()] {
                0 => return Err(BuildError::ZeroLaneLimit(lane)),
                usize::MAX => {}
                limit if limit > most => {
                    return Err(BuildError::LaneLimitAboveWorkers {
                        lane,
                        limit,
                        workers: most,
                    });
                }
                _ => {}
            }
        }
        if dispatch.starvation.is_zero() {
            return Err(BuildError::ZeroStarvationBound);
        }
        if dispatch.key_queue == 0 {
            return Err(BuildError::ZeroKeyQueue);
        }
        Ok(())
    }
}

/// How the workers of a pool with a keep-alive come and go: idle ones
/// leave down to the adaptive `min` (0 for other sizings), and a job no
/// free worker waits for starts one — up to the sizing's count, or, for
/// an adaptive pool (whose controller does the growing), only when it has
/// none.
fn elastic(sizing: Sizing, workers: usize, keep_alive: Duration) -> Elastic {
    let (floor, grow_to) = match sizing {
        Sizing::Adaptive { min, .. } => (min, min.max(1)),
        _ => (0, workers),
    };
    Elastic {
        keep_alive,
        floor,
        grow_to,
    }
}

/// The one capacity check: a bounded channel allocates every slot up
/// front, so no capacity may pass [`MAX_QUEUE_CAPACITY`]. `error` names
/// the setting that asked for too much.
pub(crate) fn check_capacity(
    requested: usize,
    error: impl FnOnce(usize, usize) -> BuildError,
) -> Result<usize, BuildError> {
    if requested > MAX_QUEUE_CAPACITY {
        return Err(error(requested, MAX_QUEUE_CAPACITY));
    }
    Ok(requested)
}

fn hook_debug(set: bool) -> &'static str {
    if set { "Some(<closure>)" } else { "None" }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("sizing", &self.sizing)
            .field("queue_capacity", &self.queue_capacity)
            .field("thread_name", &self.thread_name)
            .field("stack_size", &self.stack_size)
            .field("job_timeout", &self.job_timeout)
            .field("context", &self.context)
            .field("panic_policy", &self.panic_policy)
            .field(
                "on_thread_start",
                &hook_debug(self.on_thread_start.is_some()),
            )
            .field("on_thread_exit", &hook_debug(self.on_thread_exit.is_some()))
            .field("rate_limit", &self.rate_limit)
            .field("on_job_done", &hook_debug(self.on_job_done.is_some()))
            .field("record_latencies", &self.record_latencies)
            .field("propagate", &self.propagate)
            .finish()
    }
}

/// A pool built with [`rate_limit`](crate::ThreadPoolBuilder::rate_limit) paces its
/// job starts here: each start takes one token.
impl StartGate for RateLimiter {
    fn pass(&self, ctx: &Context) -> Result<(), Cancelled> {
        self.wait(ctx, 1).map_err(|err| match err {
            RateError::Cancelled(reason) => reason,
            // The job could not start before the pool's deadline.
            _ => Cancelled::DeadlineExceeded,
        })
    }
}

/// Where results are delivered in input order: the reorder window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderWindow {
    /// Four results per worker, at least 16.
    Auto,
    /// At most this many results held ahead of an earlier one.
    Items(usize),
}

impl OrderWindow {
    /// The window's size for `workers` workers.
    ///
    /// # Errors
    ///
    /// [`BuildError::InvalidWindow`] for zero, or more than
    /// [`MAX_QUEUE_CAPACITY`].
    pub(crate) fn size(self, workers: usize) -> Result<usize, BuildError> {
        match self {
            Self::Auto => Ok(workers.saturating_mul(4).max(16)),
            Self::Items(window) if window == 0 || window > MAX_QUEUE_CAPACITY => {
                Err(BuildError::InvalidWindow {
                    requested: window,
                    max: MAX_QUEUE_CAPACITY,
                })
            }
            Self::Items(window) => Ok(window),
        }
    }
}

/// The setters every pool builder shares, over a field `options: Options`.
/// One definition, so the two builders cannot drift apart.
macro_rules! common_setters {
    () => {
        /// Exactly `n` workers; shorthand for `sizing(Sizing::Fixed(n))`. Zero
        /// is rejected by `build()`.
        pub fn workers(mut self, n: usize) -> Self {
            self.options.sizing = $crate::sizing::Sizing::Fixed(n);
            self
        }

        /// How to pick the worker count; see [`Sizing`](crate::Sizing).
        pub fn sizing(mut self, sizing: $crate::sizing::Sizing) -> Self {
            self.options.sizing = sizing;
            self
        }

        /// The most jobs that may wait in the queue; a submit to a full queue
        /// blocks (backpressure). `0` makes a rendezvous queue: a submit waits
        /// until a worker takes the job. At most [`MAX_QUEUE_CAPACITY`](crate::MAX_QUEUE_CAPACITY).
        pub fn queue_capacity(mut self, capacity: usize) -> Self {
            self.options.queue_capacity = Some(capacity);
            self
        }

        /// No limit on queued jobs: submits never block and never see `Full`.
        /// Memory then grows with the backlog.
        pub fn unbounded_queue(mut self) -> Self {
            self.options.queue_capacity = None;
            self
        }

        /// How many jobs of one key may wait behind the one queued or
        /// running (default 1,024), so that one hot key cannot fill the
        /// queue: past it, that key's submits wait (`submit`), or are
        /// refused with `Full` (`try_submit`, `submit_timeout`). Submits
        /// of the key racing each other may pass it by a job each. Zero is
        /// rejected by `build()`.
        pub fn key_queue_limit(mut self, jobs: usize) -> Self {
            self.options.dispatch.key_queue = jobs;
            self
        }

        /// The thread name prefix: workers are named `{prefix}-{index}`. Linux
        /// shows the first 15 bytes.
        pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
            self.options.thread_name = prefix.into();
            self
        }

        /// Lets a worker idle this long leave, and starts workers again when
        /// jobs come: an idle pool then holds no worker thread (an adaptive
        /// pool keeps its `min`, which may then be 0; a pool whose queue has
        /// capacity 0 keeps one, to receive the next job). A job that finds no
        /// free worker starts one at once, up to the sizing's count or what
        /// `set_workers` last asked for (an adaptive pool's controller grows
        /// it past one). Workers start as
        /// without it, so `build()` still finds a failing start; each one
        /// leaving runs `on_thread_exit` and drops its per-worker state on
        /// its own thread. Counted in [`Stats::expired`](crate::Stats::expired).
        /// Zero is rejected by `build()`. Unset, workers never leave for
        /// being idle.
        ///
        /// ```
        /// use std::time::Duration;
        /// use brigade::{Sizing, ThreadPool};
        ///
        /// let pool = ThreadPool::builder()
        ///     .sizing(Sizing::Adaptive { min: 0, max: 8 })
        ///     .keep_alive(Duration::from_millis(50))
        ///     .build()?;
        /// assert_eq!(pool.submit(|_ctx| 6 * 7)?.join()?, 42);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn keep_alive(mut self, idle: std::time::Duration) -> Self {
            self.options.keep_alive = Some(idle);
            self
        }

        /// The stack size of each worker thread, in bytes.
        pub fn stack_size(mut self, bytes: usize) -> Self {
            self.options.stack_size = Some(bytes);
            self
        }

        /// A deadline for every job, counted from when the job starts running.
        /// A job's context carries the earlier of this and the pool's deadline.
        ///
        /// # Warning: timeouts are cooperative
        ///
        /// Rust cannot stop a running thread. A job that never looks at its
        /// context runs to the end; its handle then reports
        /// [`JobError::TimedOut`](crate::JobError::TimedOut) and its value is
        /// dropped, but the worker was busy all along.
        pub fn job_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.options.job_timeout = Some(timeout);
            self
        }

        /// A parent context: cancelling it (or its deadline passing) cancels the
        /// pool. The pool works under a child of it, so shutting the pool down
        /// never cancels `ctx` itself.
        pub fn context(mut self, ctx: &$crate::context::Context) -> Self {
            self.options.context = Some(ctx.clone());
            self
        }

        /// What a panicking job does to the pool; see [`PanicPolicy`](crate::PanicPolicy).
        pub fn panic_policy(mut self, policy: $crate::crew::PanicPolicy) -> Self {
            self.options.panic_policy = policy;
            self
        }

        /// Runs on each worker thread when it starts (including replacements),
        /// with the worker's index. A panic in it is logged and ignored.
        ///
        /// The hook may be invoked on several threads at once.
        pub fn on_thread_start(mut self, hook: impl Fn(usize) + Send + Sync + 'static) -> Self {
            self.options.on_thread_start = Some($crate::sync::Arc::new(hook));
            self
        }

        /// Runs on each worker thread as it exits normally or retires after a
        /// panic, with the worker's index. A panic in it is logged and ignored.
        ///
        /// The hook may be invoked on several threads at once.
        pub fn on_thread_exit(mut self, hook: impl Fn(usize) + Send + Sync + 'static) -> Self {
            self.options.on_thread_exit = Some($crate::sync::Arc::new(hook));
            self
        }

        /// Paces job *starts*: before a worker starts a job it waits for a
        /// token from `limiter` (the Go guide's `limiter.Wait(ctx)` in the
        /// worker). The wait wakes on the pool's cancellation; a job that
        /// could not start before the pool's deadline is discarded and
        /// reported cancelled with `DeadlineExceeded`. Clones of one
        /// limiter share its budget, across pools too.
        pub fn rate_limit(mut self, limiter: $crate::rate::RateLimiter) -> Self {
            self.options.rate_limit = Some(limiter);
            self
        }

        /// Runs after every job — and for every job discarded unrun — with
        /// its id, outcome, queue wait and run time: enough to drive a
        /// progress bar or export metrics. Setting it times every job rather
        /// than a sample (a few tens of nanoseconds a job). A panic in it is
        /// logged and ignored.
        ///
        /// The hook runs on the worker that ran the job (or the thread that
        /// discarded it) and may be invoked on several threads at once.
        pub fn on_job_done(
            mut self,
            hook: impl Fn(&$crate::JobEvent) + Send + Sync + 'static,
        ) -> Self {
            self.options.on_job_done = Some($crate::sync::Arc::new(hook));
            self
        }

        /// Whether to time a sample of jobs (on by default). Timing feeds
        /// the latency percentiles, utilisation and the adaptive
        /// controller, and costs a few clock reads on one job in 16; turn
        /// it off for the last few percent on pools of nanosecond jobs.
        /// The counts in [`Stats`](crate::Stats) are kept either way.
        /// `build()` rejects it together with `on_job_done` or
        /// [`Sizing::Adaptive`](crate::Sizing::Adaptive), which need the
        /// timings.
        pub fn record_latencies(mut self, record: bool) -> Self {
            self.options.record_latencies = record;
            self
        }

        /// Carries the submitter's context into its jobs: `capture` runs on
        /// the thread that submits a job, as the job enters the queue, and
        /// `enter` runs on the worker around the job with what `capture`
        /// returned, given the job as `run` to call once. For a tracing span
        /// (`|| Span::current()` and `|span, run| span.in_scope(run)`), a
        /// request id or a logging context, which a job on another thread
        /// would otherwise lose. Every way into the pool is covered: a
        /// `ThreadPool`'s `execute`, `submit` and its family,
        /// `submit_async`, map items, scoped jobs and the tasks of an
        /// [`ErrGroup`](crate::ErrGroup) on it; a `WorkerPool`'s jobs.
        /// Setting it again replaces the pair.
        ///
        /// A job's panic is caught inside `run`, so `run` always returns and
        /// code after it (restoring a thread-local) always runs. A panic in
        /// `capture` is logged and the job runs without a value; a panic in
        /// `enter` is logged and the worker is replaced (running the job
        /// first, without the value, if it had not run). A job run by the
        /// thread that waits for it — a join or a scope running it inline —
        /// is not entered: it runs inside that thread's own context. A pool
        /// without the hook pays one branch per job for it.
        ///
        /// Both hooks may be invoked on several threads at once.
        ///
        /// # Examples
        ///
        /// A request id in a thread-local, seen by the jobs of the request
        /// that submitted them:
        ///
        /// ```
        /// use std::cell::Cell;
        /// use brigade::ThreadPool;
        ///
        /// thread_local! {
        ///     static REQUEST: Cell<Option<u64>> = const { Cell::new(None) };
        /// }
        ///
        /// let pool = ThreadPool::builder()
        ///     .workers(2)
        ///     .propagate(
        ///         || REQUEST.get(),
        ///         |id, run| {
        ///             let outer = REQUEST.replace(id);
        ///             run();
        ///             REQUEST.set(outer);
        ///         },
        ///     )
        ///     .build()?;
        /// REQUEST.set(Some(7));
        /// let seen = pool.submit(|_ctx| REQUEST.get()).map_err(|e| e.kind())?;
        /// assert_eq!(seen.join()?, Some(7));
        /// REQUEST.set(None);
        /// let after = pool.submit(|_ctx| REQUEST.get()).map_err(|e| e.kind())?;
        /// assert_eq!(after.join()?, None);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn propagate<T, C, E>(mut self, capture: C, enter: E) -> Self
        where
            T: Send + 'static,
            C: Fn() -> T + Send + Sync + 'static,
            E: Fn(T, &mut dyn FnMut()) + Send + Sync + 'static,
        {
            self.options.propagate = Some($crate::crew::Propagate::new(capture, enter));
            self
        }
    };
}

pub(crate) use common_setters;

/// The setters of in-order delivery every builder that offers it shares,
/// over a field `ordered: Option<OrderWindow>`.
macro_rules! order_setters {
    () => {
        /// Deliver in input (submission) order, holding early finishers in
        /// a reorder window of four per worker (at least 16). See
        /// [`ordered_window`](Self::ordered_window).
        pub fn ordered(mut self) -> Self {
            self.ordered = Some($crate::options::OrderWindow::Auto);
            self
        }

        /// Deliver in input (submission) order, holding at most `window`
        /// items that finished ahead of an earlier one. Work further ahead
        /// waits, so memory stays bounded even when the first item is the
        /// slowest; a larger window lets workers run further ahead.
        pub fn ordered_window(mut self, window: usize) -> Self {
            self.ordered = Some($crate::options::OrderWindow::Items(window));
            self
        }
    };
}

pub(crate) use order_setters;
