//! Periodic schedules: a closure run again and again on the pool, each
//! run handed to the pool by the timer at its due time.
//!
//! A schedule has at most one entry on the timer or one job in the pool
//! at a time: the next due time is armed only when a run ends (or a tick
//! is missed), so runs of one schedule never overlap, and a cancelled
//! schedule leaves nothing behind once its pending entry is removed.

use std::fmt;
use std::time::{Duration, Instant};

use super::timer::{Due, Entry, Key, PoolDoor, Refused, Slot, Timer};
use crate::context::Context;
use crate::crew::{Ran, Route, Run, Wait};
use crate::error::{Cancelled, JobError, RunError, TrySubmitError};
use crate::pool::job::{Job, Task, unerase};
use crate::sync::{Arc, Condvar, Mutex, Weak};

/// How often a [`Schedule`] runs, and what it does about lateness and
/// failure. Built with [`Every::rate`] or [`Every::delay`], then adjusted.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade::{Every, Missed, OnError};
///
/// let every = Every::rate(Duration::from_secs(60))
///     .missed(Missed::Skip) // the default: a late run does not burst to catch up
///     .on_error(OnError::Continue) // the default: a failed run is logged and counted
///     .first_after(Duration::ZERO); // run once now, then every minute
/// assert_eq!(every.period(), Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Every {
    period: Duration,
    fixed_rate: bool,
    missed: Missed,
    on_error: OnError,
    first: Option<Duration>,
}

/// What a fixed-rate [`Schedule`] does about ticks it missed, because a
/// run overran its period or the pool's queue had no room at a due time.
/// Ticks that pass without a run are counted ([`Schedule::misses`]):
/// under `Skip` and `Delay` the ticks an overrun skipped, under every
/// policy a tick that found the queue full (which `Burst` does not run
/// later). `Burst` runs an overrun's ticks late instead, so they are not
/// missed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Missed {
    /// Skip to the next tick still ahead on the original grid (run `k`
    /// stays at `start + k × period`). The default.
    #[default]
    Skip,
    /// Shift the grid: the next run is one period after the late one ended.
    Delay,
    /// Catch up: run every missed tick, back to back, until on time again.
    Burst,
}

/// What a [`Schedule`] does after a run that failed (returned `Err`,
/// panicked or overran the pool's job timeout). Either way the failure is
/// logged, counted and kept in [`Schedule::last_error`]: never silent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnError {
    /// Keep the schedule going. The default.
    #[default]
    Continue,
    /// End the schedule, keeping the error ([`Ended::Failed`]).
    Stop,
}

/// Why a [`Schedule`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Through [`Schedule::cancel`].
    Cancelled,
    /// A run failed under [`OnError::Stop`].
    Failed(RunError),
    /// The pool closed, shut down or was cancelled.
    PoolStopped,
}

impl Every {
    /// The longest period a schedule may have: a year. Longer waits are a
    /// delayed job's ([`ThreadPool::schedule_after`](crate::ThreadPool::schedule_after)).
    pub const MAX_PERIOD: Duration = Duration::from_secs(365 * 24 * 3600);

    /// Fixed rate: run `k` is due at `start + k × period`, however long
    /// runs take (Java's `scheduleAtFixedRate`, Go's `time.Ticker`).
    pub fn rate(period: Duration) -> Self {
        Self::new(period, true)
    }

    /// Fixed delay: each run is due `period` after the previous one ended
    /// (Java's `scheduleWithFixedDelay`). Never late, so [`Missed`] only
    /// matters when the queue has no room at a due time.
    pub fn delay(period: Duration) -> Self {
        Self::new(period, false)
    }

    fn new(period: Duration, fixed_rate: bool) -> Self {
        Self {
            period,
            fixed_rate,
            missed: Missed::default(),
            on_error: OnError::default(),
            first: None,
        }
    }

    /// The missed-tick policy (default [`Missed::Skip`]).
    pub fn missed(mut self, missed: Missed) -> Self {
        self.missed = missed;
        self
    }

    /// The failed-run policy (default [`OnError::Continue`]).
    pub fn on_error(mut self, on_error: OnError) -> Self {
        self.on_error = on_error;
        self
    }

    /// When the first run is due, from now (default: one period).
    pub fn first_after(mut self, delay: Duration) -> Self {
        self.first = Some(delay);
        self
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The delay before the first run.
    pub(super) fn first(&self) -> Duration {
        self.first.unwrap_or(self.period)
    }

    /// After the run due at `due` ended (or its tick was missed) at `now`:
    /// the next due time, and how many ticks were missed on the way.
    pub(super) fn next_after(&self, due: Instant, now: Instant) -> (Instant, u64) {
        let period = self.period;
        if !self.fixed_rate {
            return (now + period, 0);
        }
        let next = due + period;
        if next > now || self.missed == Missed::Burst {
            return (next, 0);
        }
        let late = now.saturating_duration_since(due);
        let behind = u64::try_from(late.as_nanos() / period.as_nanos()).unwrap_or(u64::MAX);
        let skip_to = u32::try_from(behind.saturating_add(1))
            .ok()
            .and_then(|ticks| period.checked_mul(ticks))
            .and_then(|ahead| due.checked_add(ahead));
        match (self.missed, skip_to) {
            (Missed::Skip, Some(skip_to)) => (skip_to, behind),
            _ => (now + period, behind),
        }
    }
}

/// A handle to a periodic job from [`ThreadPool::schedule`](crate::ThreadPool::schedule):
/// cancel it, read its runs, misses and last error, wait for its end.
///
/// Dropping the handle detaches the schedule: it runs on until the pool
/// stops.
#[must_use = "dropping a Schedule detaches it: it runs until the pool stops"]
pub struct Schedule {
    core: Arc<Core>,
}

/// A schedule's state, shared by its handle and its runs.
struct Core {
    status: Mutex<Status>,
    ended: Condvar,
    timer: Weak<Timer>,
}

#[derive(Default)]
struct Status {
    runs: u64,
    misses: u64,
    failures: u64,
    last_error: Option<RunError>,
    ended: Option<Ended>,
    /// Ticks pass without a run (and without counting a miss).
    paused: bool,
    /// The entry waiting on the timer, if any.
    pending: Slot,
}

/// The runs' side: the closure and the timing.
pub(super) struct Periodic<F> {
    core: Arc<Core>,
    every: Every,
    /// Its runs' key and lane, if scheduled through a [`Routed`](crate::Routed).
    route: Option<Route>,
    f: Mutex<F>,
}

/// A run due at `due`, on the timer.
struct Tick<F> {
    periodic: Arc<Periodic<F>>,
    due: Instant,
}

/// A run due at `due`, in the pool's queue.
struct TickJob<F> {
    periodic: Arc<Periodic<F>>,
    due: Instant,
}

impl<F, E> Periodic<F>
where
    F: FnMut(&Context) -> Result<(), E> + Send + 'static,
    E: fmt::Display + Send + 'static,
{
    /// A schedule of `f` on `timer`, and its handle.
    pub(super) fn new(
        every: Every,
        route: Option<Route>,
        f: F,
        timer: &Arc<Timer>,
    ) -> (Arc<Self>, Schedule) {
        let core = Arc::new(Core {
            status: Mutex::new(Status::default()),
            ended: Condvar::new(),
            timer: Arc::downgrade(timer),
        });
        let handle = Schedule {
            core: Arc::clone(&core),
        };
        let periodic = Arc::new(Self {
            core,
            every,
            route,
            f: Mutex::new(f),
        });
        (periodic, handle)
    }

    /// The timer's entry for the run due at `due`.
    pub(super) fn tick(self: &Arc<Self>, due: Instant) -> Entry {
        Arc::new(Tick {
            periodic: Arc::clone(self),
            due,
        })
    }

    /// Notes the entry `key` waits on the timer, or takes it off again if
    /// the schedule ended meanwhile (a cancel racing the re-arm).
    pub(super) fn placed(&self, key: Key) {
        let mut status = self.core.status.lock();
        if status.ended.is_none() {
            status.pending.note(key);
            return;
        }
        drop(status);
        if let Some(timer) = self.core.timer.upgrade() {
            drop(timer.remove(key));
        }
    }

    /// Takes the closure back from a schedule the timer refused.
    pub(super) fn into_closure(self: Arc<Self>) -> Option<F> {
        Arc::into_inner(self).map(|periodic| periodic.f.into_inner())
    }

    /// Arms the run after the one due at `due`, ended (or missed) at `now`;
    /// ticks skipped on the way are misses unless the schedule is paused.
    fn arm(self: &Arc<Self>, due: Instant, now: Instant, paused: bool) {
        let (next, missed) = self.every.next_after(due, now);
        if missed > 0 && !paused {
            self.core.status.lock().misses += missed;
            log::debug!("brigade: a schedule's run was late; {missed} tick(s) missed");
        }
        let Some(timer) = self.core.timer.upgrade() else {
            return self.core.end(Ended::PoolStopped);
        };
        let inserted = timer.insert(next, self.tick(next), || {
            unreachable!("brigade: a schedule's first entry started the timer")
        });
        match inserted {
            Ok(key) => self.placed(key),
            Err(Refused::Stopped(..) | Refused::NoThread(_)) => self.core.end(Ended::PoolStopped),
        }
    }

    /// A run ended: counts it, keeps a failure, and arms the next run
    /// unless the schedule ended.
    fn ran(self: &Arc<Self>, result: Result<Result<(), E>, JobError>, due: Instant) {
        let failure = match result {
            Ok(Ok(())) => None,
            Ok(Err(err)) => Some(RunError::Returned(err.to_string())),
            // Only the pool's cancellation or deadline reaches a run.
            Err(JobError::Cancelled(_)) => return self.core.end(Ended::PoolStopped),
            Err(err) => Some(RunError::Job(err)),
        };
        let mut status = self.core.status.lock();
        status.runs += 1;
        if let Some(err) = failure {
            status.failures += 1;
            log::warn!("brigade: a scheduled run failed: {err}");
            status.last_error = Some(err.clone());
            if self.every.on_error == OnError::Stop {
                drop(status);
                log::warn!("brigade: the schedule stops after the failed run (OnError::Stop)");
                return self.core.end(Ended::Failed(err));
            }
        }
        if status.ended.is_some() {
            return;
        }
        let paused = status.paused;
        drop(status);
        self.arm(due, Instant::now(), paused);
    }
}

impl<F, E> Due for Tick<F>
where
    F: FnMut(&Context) -> Result<(), E> + Send + 'static,
    E: fmt::Display + Send + 'static,
{
    fn fire(self: Arc<Self>, door: &PoolDoor, _timer: &Arc<Timer>) {
        let (periodic, due) = (&self.periodic, self.due);
        if periodic.core.status.lock().paused {
            return periodic.arm(due, Instant::now(), true);
        }
        let job = TickJob {
            periodic: Arc::clone(periodic),
            due,
        };
        match door.submit(Task::boxed(job), periodic.route, Wait::Now) {
            Ok(()) => {}
            Err(TrySubmitError::Full(task)) => {
                drop(unerase::<TickJob<F>>(task));
                periodic.core.status.lock().misses += 1;
                log::warn!("brigade: a schedule's run found the pool's queue full: tick missed");
                periodic.arm(due, Instant::now(), false);
            }
            Err(_) => periodic.core.end(Ended::PoolStopped),
        }
    }

    fn cancel(self: Arc<Self>, _reason: Cancelled, _door: Option<&PoolDoor>) {
        self.periodic.core.end(Ended::PoolStopped);
    }

    fn is_tick(&self) -> bool {
        true
    }
}

impl<F, E> Job for TickJob<F>
where
    F: FnMut(&Context) -> Result<(), E> + Send + 'static,
    E: fmt::Display + Send + 'static,
{
    fn run(self: Box<Self>, run: Run<'_>) -> Ran {
        let Self { periodic, due } = *self;
        let start = |_: &Context| {
            let live = periodic.core.status.lock().ended.is_none();
            live.then_some(|ctx: &Context| (*periodic.f.lock())(ctx))
        };
        run.call_judged(start, Result::is_err, |end| {
            periodic.ran(end.into_result(), due);
        })
    }

    fn discard(self: Box<Self>, _reason: Cancelled) {
        self.periodic.core.end(Ended::PoolStopped);
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

impl Core {
    /// Ends the schedule (the first end wins) and takes its entry off the
    /// timer.
    fn end(&self, ended: Ended) {
        let mut status = self.status.lock();
        if status.ended.is_some() {
            return;
        }
        let stopped = ended == Ended::PoolStopped;
        status.ended = Some(ended);
        let pending = status.pending.take();
        drop(status);
        let timer = self.timer.upgrade();
        // Counted before anyone waiting for the end wakes: a shutdown
        // report made after `join_timeout` returned includes it.
        if let Some(timer) = timer.as_ref().filter(|_| stopped) {
            timer.schedule_stopped();
        }
        self.ended.notify_all();
        if let (Some(key), Some(timer)) = (pending, timer) {
            drop(timer.remove(key));
        }
    }
}

impl Schedule {
    /// Ends the schedule: no run starts after this returns. A run in
    /// progress finishes (its context is not cancelled), and is counted.
    pub fn cancel(&self) {
        self.core.end(Ended::Cancelled);
    }

    /// Pauses the schedule: its ticks pass without a run, and are not
    /// counted as misses, until [`resume`](Self::resume). A run already
    /// queued or running when this returns still runs. The schedule keeps
    /// its grid: a fixed-rate schedule resumes at its next tick.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade::{Every, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().workers(1).build()?;
    /// let (tick_tx, ticks) = brigade::channel::unbounded();
    /// let refresh = pool
    ///     .schedule(Every::rate(Duration::from_millis(2)), move |_ctx| tick_tx.send(()))
    ///     .map_err(|e| e.kind())?;
    /// refresh.pause(); // e.g. while the cache's backend is in maintenance
    /// assert!(refresh.is_paused() && refresh.is_active());
    /// refresh.resume();
    /// ticks.recv_timeout(Duration::from_secs(10))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pause(&self) {
        self.core.status.lock().paused = true;
    }

    /// Resumes a [paused](Self::pause) schedule at its next tick.
    pub fn resume(&self) {
        self.core.status.lock().paused = false;
    }

    /// Whether the schedule is paused.
    pub fn is_paused(&self) -> bool {
        self.core.status.lock().paused
    }

    /// Whether the schedule still runs.
    pub fn is_active(&self) -> bool {
        self.core.status.lock().ended.is_none()
    }

    /// Why the schedule ended, if it has.
    pub fn ended(&self) -> Option<Ended> {
        self.core.status.lock().ended.clone()
    }

    /// Waits at most `timeout` for the schedule to end; `None` if it still
    /// runs.
    pub fn join_timeout(&self, timeout: Duration) -> Option<Ended> {
        let deadline = Instant::now().checked_add(timeout);
        let mut status = self.core.status.lock();
        while status.ended.is_none() {
            match deadline {
                Some(deadline) => {
                    if self
                        .core
                        .ended
                        .wait_until(&mut status, deadline)
                        .timed_out()
                    {
                        break;
                    }
                }
                None => self.core.ended.wait(&mut status),
            }
        }
        status.ended.clone()
    }

    /// Runs that started and ended, failed ones included.
    pub fn runs(&self) -> u64 {
        self.core.status.lock().runs
    }

    /// Ticks that passed without a run: a run overran its period, or the
    /// queue had no room at a due time.
    pub fn misses(&self) -> u64 {
        self.core.status.lock().misses
    }

    /// Runs that failed (returned `Err`, panicked or timed out).
    pub fn failures(&self) -> u64 {
        self.core.status.lock().failures
    }

    /// The last failed run's error.
    pub fn last_error(&self) -> Option<RunError> {
        self.core.status.lock().last_error.clone()
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.core.status.lock();
        f.debug_struct("Schedule")
            .field("runs", &status.runs)
            .field("misses", &status.misses)
            .field("failures", &status.failures)
            .field("last_error", &status.last_error)
            .field("ended", &status.ended)
            .field("paused", &status.paused)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Every, Missed};

    const P: Duration = Duration::from_millis(10);

    /// The run due at `t0 + 10 ms` ended at `t0 + 10 ms + late`: the next
    /// due time, as an offset from `t0`, and the ticks missed.
    fn next(every: Every, late: Duration) -> (Duration, u64) {
        let t0 = Instant::now();
        let (next, missed) = every.next_after(t0 + P, t0 + P + late);
        (next - t0, missed)
    }

    #[test]
    fn on_time_runs_keep_the_grid_under_every_policy() {
        for missed in [Missed::Skip, Missed::Delay, Missed::Burst] {
            let every = Every::rate(P).missed(missed);
            assert_eq!(next(every, Duration::from_millis(3)), (2 * P, 0));
        }
    }

    #[test]
    fn a_run_overrunning_three_and_a_half_periods() {
        let late = Duration::from_millis(35);
        // Skip: the next grid point ahead (t0 + 50 ms); the 20, 30 and 40
        // ms ticks are missed.
        assert_eq!(next(Every::rate(P), late), (5 * P, 3));
        // Delay: one period after the late run ended (t0 + 55 ms).
        let shifted = next(Every::rate(P).missed(Missed::Delay), late);
        assert_eq!(shifted, (P + late + P, 3));
        // Burst: the very next tick (t0 + 20 ms, already past): catch up.
        assert_eq!(next(Every::rate(P).missed(Missed::Burst), late), (2 * P, 0));
    }

    #[test]
    fn fixed_delay_counts_from_the_end_of_the_run() {
        let late = Duration::from_millis(35);
        assert_eq!(next(Every::delay(P), late), (P + late + P, 0));
    }
}
