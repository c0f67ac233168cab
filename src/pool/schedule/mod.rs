//! Jobs that run later, and again: [`ThreadPool::schedule_after`],
//! [`ThreadPool::schedule_at`] and [`ThreadPool::schedule`].
//!
//! # One timer per pool, feeding the same queue
//!
//! A pool's first delayed job or schedule starts one timer thread
//! (`brigade-schedule`, `timer.rs`) that holds every due time of that pool
//! in one ordered map: 10,000 schedules cost one thread and an entry
//! each. At its due time a job enters the pool through the same way in as
//! a submit (the crew's [`Door`](crate::crew::Door)), so it is counted in
//! [`Stats`](crate::Stats), bounded by the queue and run through the one
//! lifecycle: the pool's context, its `job_timeout` counted from the start,
//! its deadline, panic capture, hooks. Scheduled through a
//! [`Routed`](crate::Routed) (`pool.lane(..)` / `pool.keyed(..)`), it enters
//! the dispatcher along that route when due: a capped background lane,
//! a key's order (after the key's jobs submitted before the due time).
//! The timer never waits for room: a
//! delayed job that finds the queue full tries again a millisecond later
//! (it was accepted, so it is never dropped); a schedule's run that finds
//! it full is a missed tick, counted and logged.
//!
//! # Delayed jobs
//!
//! A delayed job is a submitted job's cell held by the timer. Its handle
//! is an ordinary [`JobHandle`]; cancelling it before the due time
//! settles it as `Cancelled` at once and takes it off the timer (nothing
//! is left behind). Before its due time a join on one of the pool's
//! workers waits rather than running the job inline, as it would a queued
//! one: the job is not due.
//!
//! # Schedules
//!
//! See `periodic.rs`: one entry or one queued run per schedule, armed again
//! only when a run ends, so runs never overlap; missed ticks and failed
//! runs are counted and logged, and a failed run stops the schedule only
//! under [`OnError::Stop`], keeping the error in its handle.
//!
//! # Retries that wait without a thread
//!
//! [`ThreadPool::submit_retrying`] runs a [`Retry`] whose attempts are
//! jobs and whose pauses are timer entries (`retrying.rs`): the same
//! decisions as [`Retry::run`], without a worker sleeping through the
//! backoff. [`Retry::run`] inside a job stays the way to retry while
//! holding the worker.
//!
//! # Shutdown
//!
//! Closing the pool ([`close`](ThreadPool::close), [`join`](ThreadPool::join),
//! a shutdown, a drop) or cancelling it stops the timer: nothing not yet
//! due runs. Each delayed job still waiting resolves as
//! `Cancelled` on its handle, each schedule ends with
//! [`Ended::PoolStopped`] (a run already queued or running finishes
//! first, under `join`), and a [`ShutdownReport`](crate::ShutdownReport)
//! counts both. The pool joins the timer thread before its workers, so it
//! never outlives the pool. This is the one place that decides the fate
//! of pending delayed jobs; brigade does not run them early, because a
//! job scheduled for later may depend on "later" (a retry after a
//! backoff, an expiry).

mod delayed;
mod periodic;
mod retrying;
mod timer;

use std::fmt;
use std::time::{Duration, Instant};

pub use periodic::{Ended, Every, Missed, OnError, Schedule};
pub(crate) use timer::Timer;

use super::{JobHandle, ThreadPool};
use crate::context::Context;
use crate::crew::Route;
use crate::error::{RetryError, ScheduleError};
use crate::retry::Retry;
use crate::sync::Arc;
use delayed::Delayed;
use periodic::Periodic;
use retrying::Retrying;
use timer::{Entry, Key, Refused};

impl ThreadPool {
    /// Runs `f` on the pool once `delay` has passed; see
    /// [`schedule_at`](Self::schedule_at).
    ///
    /// # Errors
    ///
    /// As for [`schedule_at`](Self::schedule_at), and
    /// [`ScheduleError::TooFar`] if `now + delay` is past what the clock can
    /// represent.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use brigade::ThreadPool;
    ///
    /// let pool = ThreadPool::builder().workers(2).build()?;
    /// let asked = Instant::now();
    /// let later = pool
    ///     .schedule_after(Duration::from_millis(20), move |_ctx| asked.elapsed())
    ///     .map_err(|e| e.kind())?;
    /// assert!(later.join()? >= Duration::from_millis(20));
    ///
    /// // Cancelled before it is due: it never runs, and leaves nothing behind.
    /// let never = pool
    ///     .schedule_after(Duration::from_secs(3600), |_ctx| unreachable!())
    ///     .map_err(|e| e.kind())?;
    /// never.cancel();
    /// assert!(never.join().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn schedule_after<F, T>(
        &self,
        delay: Duration,
        f: F,
    ) -> Result<JobHandle<T>, ScheduleError<F>>
    where
        F: FnOnce(&Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.schedule_after_along(None, delay, f)
    }

    /// [`schedule_after`](Self::schedule_after), due along `route`.
    pub(crate) fn schedule_after_along<F, T>(
        &self,
        route: Option<Route>,
        delay: Duration,
        f: F,
    ) -> Result<JobHandle<T>, ScheduleError<F>>
    where
        F: FnOnce(&Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        match Instant::now().checked_add(delay) {
            Some(at) => self.schedule_at_along(route, at, f),
            None => Err(ScheduleError::TooFar(f)),
        }
    }

    /// Runs `f` on the pool at `at` (or as soon as a worker is free after
    /// it): a job like a [`submit`](Self::submit)ted one from then on, with
    /// the same handle, context, `job_timeout` (counted from its start) and
    /// stats. A time already past is due at once. The pool's deadline
    /// still applies: a job due after it resolves as
    /// `Cancelled(DeadlineExceeded)` when the deadline passes, without
    /// running.
    ///
    /// Cancelling the handle before `at` frees the job at once. Closing or
    /// shutting the pool down before `at` resolves it as `Cancelled`, and
    /// the shutdown report counts it ([`ShutdownReport::delayed_never_ran`](crate::ShutdownReport::delayed_never_ran)).
    ///
    /// # Errors
    ///
    /// The closure is handed back: [`ScheduleError::Closed`] on a closed
    /// pool, [`ScheduleError::Cancelled`] on a cancelled one,
    /// [`ScheduleError::NoTimer`] if the OS refused the pool's timer thread.
    pub fn schedule_at<F, T>(&self, at: Instant, f: F) -> Result<JobHandle<T>, ScheduleError<F>>
    where
        F: FnOnce(&Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.schedule_at_along(None, at, f)
    }

    /// [`schedule_at`](Self::schedule_at), due along `route` (a
    /// [`Routed`](crate::Routed)'s).
    pub(crate) fn schedule_at_along<F, T>(
        &self,
        route: Option<Route>,
        at: Instant,
        f: F,
    ) -> Result<JobHandle<T>, ScheduleError<F>>
    where
        F: FnOnce(&Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        if let Some(refused) = self.may_schedule() {
            return Err(refused.with(f));
        }
        let delayed = Delayed::new(f, self.crew.id(), route, &self.timer);
        match self.arm(at, Arc::clone(&delayed) as Entry) {
            Ok(key) => {
                // An entry still on the timer has an unsettled job here:
                // no handle exists yet to cancel or join it.
                drop(delayed.placed(key));
                Ok(JobHandle::from_cell(delayed))
            }
            Err((due, refused)) => {
                // The closure first: dropping the entry would discard it.
                let f = delayed.take_back();
                drop(due);
                Err(refused.with(f))
            }
        }
    }

    /// Runs `f` on the pool again and again, as `every` says, until the
    /// returned [`Schedule`] is cancelled, a failed run stops it
    /// ([`OnError::Stop`]), or the pool stops.
    ///
    /// Each run is a job like a submitted one (the pool's context,
    /// `job_timeout`, panic capture, stats); runs of one schedule never
    /// overlap. A run that returns `Err`, panics or overruns the
    /// `job_timeout` is logged, counted ([`Schedule::failures`]) and kept
    /// ([`Schedule::last_error`]), and the schedule goes on unless it was
    /// built with [`OnError::Stop`]. Late ticks follow [`Missed`].
    ///
    /// The schedule owns `f` until it ends: a closure holding an
    /// `Arc<ThreadPool>` of its own pool keeps the pool alive (a cycle);
    /// capture a `Weak` instead.
    ///
    /// # Errors
    ///
    /// The closure is handed back: [`ScheduleError::ZeroPeriod`],
    /// [`ScheduleError::PeriodTooLong`] (over [`Every::MAX_PERIOD`]),
    /// [`ScheduleError::TooFar`] (a first delay past the clock's range),
    /// and as for [`schedule_at`](Self::schedule_at).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade::{Every, OnError, RunError, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().workers(2).build()?;
    /// let (tick_tx, ticks) = brigade::channel::unbounded();
    /// let flush = pool
    ///     .schedule(Every::rate(Duration::from_millis(5)), move |_ctx| {
    ///         tick_tx.send(()).map_err(|_| "nobody listens")
    ///     })
    ///     .map_err(|e| e.kind())?;
    /// for _ in 0..3 {
    ///     ticks.recv_timeout(Duration::from_secs(10))?;
    /// }
    /// flush.cancel();
    ///
    /// // A failing run is never silent: under OnError::Stop it ends the
    /// // schedule and stays in the handle.
    /// let failing = pool
    ///     .schedule(
    ///         Every::delay(Duration::from_millis(1)).on_error(OnError::Stop),
    ///         |_ctx| Err::<(), _>("disk full"),
    ///     )
    ///     .map_err(|e| e.kind())?;
    /// let ended = failing.join_timeout(Duration::from_secs(10));
    /// assert_eq!(failing.last_error(), Some(RunError::Returned("disk full".into())));
    /// assert!(ended.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn schedule<F, E>(&self, every: Every, f: F) -> Result<Schedule, ScheduleError<F>>
    where
        F: FnMut(&Context) -> Result<(), E> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        self.schedule_along(None, every, f)
    }

    /// [`schedule`](Self::schedule), each run along `route` (a
    /// [`Routed`](crate::Routed)'s).
    pub(crate) fn schedule_along<F, E>(
        &self,
        route: Option<Route>,
        every: Every,
        f: F,
    ) -> Result<Schedule, ScheduleError<F>>
    where
        F: FnMut(&Context) -> Result<(), E> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        if every.period().is_zero() {
            return Err(ScheduleError::ZeroPeriod(f));
        }
        if every.period() > Every::MAX_PERIOD {
            return Err(ScheduleError::PeriodTooLong(f));
        }
        let Some(first) = Instant::now().checked_add(every.first()) else {
            return Err(ScheduleError::TooFar(f));
        };
        if let Some(refused) = self.may_schedule() {
            return Err(refused.with(f));
        }
        let (periodic, handle) = Periodic::new(every, route, f, &self.timer);
        match self.arm(first, periodic.tick(first)) {
            Ok(key) => {
                periodic.placed(key);
                Ok(handle)
            }
            Err((due, refused)) => {
                drop((due, handle));
                match periodic.into_closure() {
                    Some(f) => Err(refused.with(f)),
                    None => unreachable!("brigade: a refused schedule's closure has one owner"),
                }
            }
        }
    }

    /// Runs `op(ctx, attempt)` on the pool until it succeeds, as `retry`
    /// says, and returns a handle to the outcome: [`Retry::run`] as a job,
    /// except that each pause between attempts waits on the pool's timer
    /// instead of sleeping on a worker, so a backoff of seconds holds no
    /// thread. Each attempt is a job of its own (the pool's context and
    /// `job_timeout`, panic capture, stats); the pool's deadline bounds the
    /// pauses as a context's deadline bounds [`Retry::run`]'s.
    ///
    /// The handle's value is [`Retry::run`]'s result. A panicking or
    /// timed-out attempt ends the job with that [`JobError`](crate::JobError);
    /// cancelling the handle stops it (no attempt starts afterwards); the
    /// pool stopping during a pause ends it with [`RetryError::Cancelled`],
    /// the last attempt's error kept. A join waits for the attempts: on a
    /// one-worker pool, do not join it from one of the pool's own jobs.
    ///
    /// # Errors
    ///
    /// As for [`schedule_at`](Self::schedule_at); `op` is handed back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade::{Backoff, Retry, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().workers(1).build()?;
    /// let retry = Retry::builder()
    ///     .max_attempts(5)
    ///     .backoff(Backoff::new(Duration::from_millis(5), Duration::from_millis(50)))
    ///     .build()?;
    /// // Between attempts the worker is free for other jobs.
    /// let upload = pool
    ///     .submit_retrying(&retry, |_ctx, attempt| if attempt < 3 { Err("timeout") } else { Ok(attempt) })
    ///     .map_err(|e| e.kind())?;
    /// assert_eq!(upload.join()?.ok(), Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_retrying<F, T, E>(
        &self,
        retry: &Retry<E>,
        op: F,
    ) -> Result<JobHandle<Result<T, RetryError<E>>>, ScheduleError<F>>
    where
        F: FnMut(&Context, u32) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        if let Some(refused) = self.may_schedule() {
            return Err(refused.with(op));
        }
        let crew = self.crew.id();
        let (retrying, promise) = Retrying::new(retry, op, self.context(), crew, None, &self.timer);
        match self.arm(Instant::now(), retrying.attempt(1)) {
            Ok(key) => {
                retrying.placed(key);
                Ok(JobHandle::from_cell(promise))
            }
            Err((due, refused)) => {
                drop((due, promise));
                match retrying.into_op() {
                    Some(op) => Err(refused.with(op)),
                    None => unreachable!("brigade: a refused retrying job has one owner"),
                }
            }
        }
    }

    /// Why nothing may be scheduled now, if so.
    fn may_schedule(&self) -> Option<Refusing> {
        if self.context().is_done() {
            Some(Refusing::Cancelled)
        } else if self.intake.is_none() || self.shutter.is_closed() {
            Some(Refusing::Closed)
        } else {
            None
        }
    }

    /// Puts `due` on the pool's timer at `at`, starting the timer on first
    /// use. A refused entry comes back with the reason.
    fn arm(&self, at: Instant, due: Entry) -> Result<Key, (Entry, Refusing)> {
        let Some(tx) = &self.intake else {
            return Err((due, Refusing::Closed));
        };
        let start = || (self.crew.door(tx.clone()), self.context().clone());
        self.timer
            .insert(at, due, start)
            .map_err(|refused| match refused {
                Refused::Stopped(due, Some(_)) => (due, Refusing::Cancelled),
                Refused::Stopped(due, None) => (due, Refusing::Closed),
                Refused::NoThread(due) => (due, Refusing::NoTimer),
            })
    }
}

/// Why the timer refused an entry, before the closure is put back.
#[derive(Clone, Copy)]
enum Refusing {
    Closed,
    Cancelled,
    NoTimer,
}

impl Refusing {
    fn with<F>(self, f: F) -> ScheduleError<F> {
        match self {
            Self::Closed => ScheduleError::Closed(f),
            Self::Cancelled => ScheduleError::Cancelled(f),
            Self::NoTimer => ScheduleError::NoTimer(f),
        }
    }
}
