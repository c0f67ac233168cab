//! Delayed and periodic jobs (`schedule_after`, `schedule_at`, `schedule`):
//! due times are lower bounds, cancellation frees a job at once, runs of
//! one schedule never overlap, each missed-tick policy gives its documented
//! run times, failed runs stop or continue per their policy and are kept in
//! the handle, and every shutdown reports what was pending and leaves no
//! timer thread behind.
//!
//! Timing: a due time is checked as an exact lower bound ("not before");
//! upper bounds are generous. Orderings between a schedule's runs and a
//! later delayed job on the same one-worker pool (a "clock") follow from
//! due times alone: the timer fires in due-time order into one FIFO queue.
//!
//! The timer thread's name is fixed (`brigade-schedule`), so the one test
//! that counts those threads takes [`TIMERS`] for writing, and every other
//! test that starts a timer takes it for reading.

mod common;

use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Once};
use std::thread;
use std::time::{Duration, Instant};

use brigade::{
    Cancelled, Context, Ended, Every, JobError, JobHandle, Missed, OnError, Refusal, RunError,
    Schedule, ScheduleError, ThreadPool, TrySubmitError,
};
use crossbeam_channel::{bounded, unbounded};
use parking_lot::{Mutex, RwLock, RwLockReadGuard};

use common::{DropCounter, Gate, LONG, occupy_worker, thread_names, wait_until, with_timeout};

/// Readers: tests whose pools start a timer thread. The writer: the test
/// that counts timer threads, which must see only its own.
static TIMERS: RwLock<()> = RwLock::new(());

/// Taken first in every test that starts a timer (so it is dropped last,
/// after the test's pools).
fn timer_user() -> RwLockReadGuard<'static, ()> {
    TIMERS.read()
}

/// How many pool timer threads (`brigade-schedule`, which Linux shows as
/// `brigade-schedul`) this process has.
fn timer_threads() -> usize {
    thread_names()
        .iter()
        .filter(|name| name.starts_with("brigade-sched"))
        .count()
}

/// Every warning brigade logs in this process.
static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A `log` backend that keeps every warning in [`LOGS`].
struct CaptureLogs;

impl log::Log for CaptureLogs {
    fn enabled(&self, _metadata: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        LOGS.lock().push(record.args().to_string());
    }

    fn flush(&self) {}
}

/// Installs, once, the logger that keeps brigade's warnings in [`LOGS`].
fn capture_logs() {
    static LOGGER: Once = Once::new();
    LOGGER.call_once(|| {
        log::set_logger(&CaptureLogs).expect("no other logger in this binary");
        log::set_max_level(log::LevelFilter::Warn);
    });
}

/// Whether a logged warning contains every one of `parts`.
fn logged(parts: &[&str]) -> bool {
    LOGS.lock()
        .iter()
        .any(|message| parts.iter().all(|part| message.contains(part)))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A pool of `workers` workers.
fn pool_of(workers: usize) -> ThreadPool {
    ThreadPool::builder()
        .workers(workers)
        .build()
        .expect("build")
}

/// Waits on `pool` until every tick of a schedule due before `after` from
/// now has had its run: on a one-worker pool the timer fires due times in
/// order into one FIFO queue, so a run due earlier starts before this job.
fn clock(pool: &ThreadPool, after: Duration) {
    let handle = pool
        .schedule_after(after, |_ctx| ())
        .expect("the clock job is accepted");
    assert_eq!(handle.join(), Ok(()), "the clock job ran");
}

// ---------------------------------------------------------------------------
// Delayed jobs
// ---------------------------------------------------------------------------

#[test]
fn a_delayed_job_starts_no_earlier_than_its_due_time_with_the_pool_context() {
    // schedule_after and schedule_at start the job at or after the due time, under a child of
    // the pool's context (its deadline), and the value comes back through join.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let parent = Context::new().with_timeout(Duration::from_secs(3600));
        let pool = ThreadPool::builder()
            .workers(2)
            .context(&parent)
            .build()
            .expect("build");
        let pool_ctx = pool.context().clone();
        let probe = move |ctx: &Context| {
            (
                Instant::now(),
                ctx.deadline(),
                ctx.is_done(),
                ctx.same_context(&pool_ctx),
            )
        };

        let asked = Instant::now();
        let after = pool
            .schedule_after(ms(120), probe.clone())
            .expect("accepted");
        let at = Instant::now() + ms(150);
        let mut at_handle = pool.schedule_at(at, probe.clone()).expect("accepted");
        // Finished only once due: a finished job waited its 120 ms.
        assert!(!after.is_finished() || asked.elapsed() >= ms(120));

        let (started, deadline, done, same) = after.join().expect("the job ran");
        assert!(
            started >= asked + ms(120),
            "started {:?} after the request",
            started - asked
        );
        assert!(
            started - asked < Duration::from_secs(5),
            "started {:?} late",
            started - asked
        );
        assert_eq!(
            deadline,
            pool.context().deadline(),
            "the job runs under the pool's context"
        );
        assert!(!done);
        assert!(!same, "a child of the pool's context, as for a submit");

        let (started, deadline, ..) = at_handle
            .join_timeout(LONG)
            .expect("the job ran in time")
            .expect("the job ran");
        assert!(
            started >= at,
            "started {:?} before its due time",
            at - started
        );
        assert_eq!(deadline, pool.context().deadline());

        // A due time already past (or a zero delay) is due at once.
        let past = pool
            .schedule_at(asked, |_ctx| "past")
            .expect("a past due time is accepted");
        let zero = pool
            .schedule_after(Duration::ZERO, |_ctx| "zero")
            .expect("accepted");
        let waited = Instant::now();
        assert_eq!(past.join(), Ok("past"));
        assert_eq!(zero.join(), Ok("zero"));
        assert!(
            waited.elapsed() < Duration::from_secs(5),
            "a past due time waited {:?}",
            waited.elapsed()
        );

        // Due jobs are counted like submitted ones.
        assert!(wait_until(LONG, || pool.stats().completed == 4));
        assert_eq!(pool.stats().submitted, 4);
    });
}

#[test]
fn a_delayed_job_handle_is_awaitable() {
    // Awaiting a delayed job's handle gives its value, no earlier than its due time.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let pool = pool_of(1);
        let asked = Instant::now();
        let handle = pool
            .schedule_after(ms(50), |_ctx| Instant::now())
            .expect("accepted");
        let started = common::block_on(handle).expect("ran");
        assert!(started >= asked + ms(50));
    });
}

#[test]
fn cancel_before_due_never_runs_and_drops_the_closure_at_once() {
    // Cancelling a delayed job before its due time settles the handle as Cancelled at once,
    // drops the closure at once, leaves no timer entry (the shutdown finds nothing pending),
    // and the job never runs, even after its due time, nor counts as submitted.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let pool = pool_of(1);
        let ran = Arc::new(AtomicBool::new(false));
        let drops = Arc::new(AtomicUsize::new(0));
        let job = |ran: &Arc<AtomicBool>, drops: &Arc<AtomicUsize>| {
            let (ran, token) = (Arc::clone(ran), DropCounter(Arc::clone(drops)));
            move |_ctx: &Context| {
                drop(token);
                ran.store(true, SeqCst);
            }
        };

        let far = pool
            .schedule_after(Duration::from_secs(3600), job(&ran, &drops))
            .expect("accepted");
        let near = pool
            .schedule_after(ms(100), job(&ran, &drops))
            .expect("accepted");
        assert!(!far.is_finished() && !near.is_finished());
        assert_eq!(drops.load(SeqCst), 0);

        far.cancel();
        assert!(far.is_finished(), "settled at once");
        assert_eq!(drops.load(SeqCst), 1, "the closure is dropped at cancel");
        near.cancel();
        assert!(near.is_finished());
        assert_eq!(drops.load(SeqCst), 2);
        assert_eq!(far.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        assert_eq!(near.join(), Err(JobError::Cancelled(Cancelled::Canceled)));

        // Past the cancelled job's due time, on the one worker, it still has not run.
        clock(&pool, ms(300));
        assert!(!ran.load(SeqCst), "a cancelled delayed job ran");
        let stats = pool.stats();
        assert_eq!(stats.submitted, 1, "only the clock job was submitted");
        assert_eq!(stats.cancelled, 0);

        let report = pool.shutdown_now();
        assert_eq!(report.delayed_never_ran, 0, "no entry was left behind");
        assert_eq!(report.submitted, 1);
        assert_eq!(report.never_ran, 0);
    });
}

#[test]
fn a_worker_joining_a_delayed_job_does_not_run_it_early() {
    // A job joining a delayed job that is not yet due waits for it (another worker runs it
    // at its due time) rather than running it inline at once, as it would a queued job.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let pool = Arc::new(pool_of(2));
        let inner_pool = Arc::clone(&pool);
        let outer = pool
            .submit(move |_ctx| {
                let due = Instant::now() + ms(150);
                let inner = inner_pool
                    .schedule_at(due, |_ctx| Instant::now())
                    .expect("accepted");
                (due, inner.join())
            })
            .expect("submit");
        let (due, started) = outer.join().expect("the outer job ran");
        let started = started.expect("the delayed job ran");
        assert!(
            started >= due,
            "ran {:?} before its due time",
            due - started
        );
    });
}

#[test]
fn the_only_worker_joining_a_delayed_job_gets_it_at_its_due_time() {
    // On a one-worker pool, a job that joins a delayed job (not yet due) must still get it:
    // no other worker can run it, so the join has to run it once it is due (never earlier),
    // as it runs a queued job inline. A join that only waits deadlocks the pool.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let pool = Arc::new(pool_of(1));
        let inner_pool = Arc::clone(&pool);
        let outer = pool
            .submit(move |_ctx| {
                let due = Instant::now() + ms(100);
                let mut inner = inner_pool
                    .schedule_at(due, |_ctx| Instant::now())
                    .expect("accepted");
                // Bounded, so the bug fails the test instead of hanging the pool.
                (due, inner.join_timeout(Duration::from_secs(3)))
            })
            .expect("submit");
        let (due, started) = outer.join().expect("the outer job ran");
        let started = started
            .expect("the only worker, joining a delayed job, waited past its due time for a job nobody else can run: a deadlock")
            .expect("the delayed job ran");
        assert!(started >= due, "ran {:?} early", due - started);
    });
}

#[test]
fn a_join_that_runs_a_due_job_while_the_queue_is_full_keeps_the_ledger() {
    // The only worker joins a delayed job while the queue is full (of a job
    // queued behind the joiner): at the due time the join runs it inline,
    // though it never entered the queue. Every job is still counted once:
    // submitted == ran + never_ran.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let pool = Arc::new(
            ThreadPool::builder()
                .workers(1)
                .queue_capacity(1)
                .build()
                .expect("build"),
        );
        let inner_pool = Arc::clone(&pool);
        let outer = pool
            .submit(move |_ctx| {
                let mut inner = inner_pool
                    .schedule_after(ms(50), |_ctx| "due")
                    .expect("accepted");
                let filler = inner_pool.submit(|_ctx| "filler").expect("room for one");
                (inner.join_timeout(Duration::from_secs(10)), filler)
            })
            .expect("submit");
        let (inner, filler) = outer.join().expect("the outer job ran");
        assert_eq!(inner, Some(Ok("due")));
        assert_eq!(filler.join(), Ok("filler"));
        let pool = Arc::into_inner(pool).expect("the only owner");
        let report = pool.shutdown_timeout(LONG);
        assert_eq!(
            report.submitted,
            report.ran + report.never_ran,
            "{report:?}"
        );
        assert_eq!((report.submitted, report.ran), (3, 3), "{report:?}");
    });
}

#[test]
fn a_delayed_job_that_finds_the_queue_full_runs_once_there_is_room() {
    // A delayed job due while the queue is full is kept (retried), not dropped: it runs once
    // the worker frees up.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .expect("build");
        let gate = Gate::new();
        let blocker = occupy_worker(&pool, &gate);
        let filler = pool.submit(|_ctx| "filler").expect("room for one");
        assert!(matches!(
            pool.try_execute(|| {}),
            Err(TrySubmitError::Full(_))
        ));
        let handle = pool
            .schedule_after(ms(10), |_ctx| 42)
            .expect("accepted whatever the queue");
        // Well past its due time: the timer has met the full queue.
        let due_passed = Instant::now() + ms(60);
        assert!(wait_until(LONG, || Instant::now() >= due_passed));
        assert!(!handle.is_finished(), "nothing can have run it");
        // Each retry counts the job submitted, finds the queue full and
        // gives the number back, so a look may land inside one (seen
        // under ThreadSanitizer); a job the queue took would stay counted.
        assert!(
            wait_until(LONG, || pool.stats().submitted == 2),
            "the due job found no room: {:?}",
            pool.stats()
        );
        gate.open();
        assert_eq!(blocker.join(), Ok(()));
        assert_eq!(filler.join(), Ok("filler"));
        assert_eq!(handle.join(), Ok(42), "the due job was not dropped");
        assert_eq!(pool.stats().submitted, 3);
    });
}

#[test]
fn cancelling_due_jobs_retrying_on_a_full_queue_leaves_no_entry() {
    // Delayed jobs that are due but retrying on a full queue, cancelled, are gone: they never
    // reach the queue when room appears, and the shutdown finds no timer entry left.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .expect("build");
        let gate = Gate::new();
        let blocker = occupy_worker(&pool, &gate);
        let filler = pool.submit(|_ctx| ()).expect("room for one");
        let ran = Arc::new(AtomicUsize::new(0));
        let handles: Vec<JobHandle<()>> = (0..2_000)
            .map(|_| {
                let ran = Arc::clone(&ran);
                pool.schedule_after(Duration::ZERO, move |_ctx| {
                    ran.fetch_add(1, SeqCst);
                })
                .expect("accepted")
            })
            .collect();
        // Let the timer churn through the retries for a while.
        let churned = Instant::now() + ms(50);
        assert!(wait_until(LONG, || Instant::now() >= churned));
        for handle in &handles {
            handle.cancel();
            assert!(handle.is_finished());
        }
        gate.open();
        assert_eq!(blocker.join(), Ok(()));
        assert_eq!(filler.join(), Ok(()));
        let report = pool.shutdown_now();
        assert_eq!(ran.load(SeqCst), 0, "a cancelled job ran");
        assert_eq!(
            (report.delayed_never_ran, report.submitted),
            (0, 2),
            "cancelled delayed jobs stayed on the timer, or reached the queue"
        );
    });
}

#[test]
fn job_timeout_counts_from_a_delayed_jobs_start() {
    // The pool's job_timeout starts when the delayed job starts, not when it was scheduled:
    // one delayed past the timeout but quick is Ok with a deadline a timeout after its due
    // time; one that overruns the timeout from its start is TimedOut.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let timeout = ms(500);
        let pool = ThreadPool::builder()
            .workers(2)
            .job_timeout(timeout)
            .build()
            .expect("build");
        let asked = Instant::now();
        let quick = pool
            .schedule_after(ms(800), |ctx| ctx.deadline())
            .expect("accepted");
        let slow = pool
            .schedule_after(ms(50), |ctx| ctx.sleep(LONG))
            .expect("accepted");
        let deadline = quick
            .join()
            .expect("quick, although delayed past the timeout")
            .expect("the job has a deadline");
        assert!(
            deadline >= asked + ms(800) + timeout,
            "the timeout was counted from before the start"
        );
        assert_eq!(slow.join(), Err(JobError::TimedOut));
        assert!(wait_until(LONG, || pool.stats().timed_out == 1));
    });
}

#[test]
fn a_delayed_job_due_after_the_pool_deadline_never_runs() {
    // With a pool deadline, a job due before it runs; one due after it resolves as
    // Cancelled(DeadlineExceeded) when the deadline passes, without running, and the
    // shutdown report counts it.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let parent = Context::new().with_timeout(Duration::from_secs(1));
        let pool = ThreadPool::builder()
            .workers(1)
            .context(&parent)
            .build()
            .expect("build");
        let deadline = pool.context().deadline().expect("a pool deadline");
        let ran = Arc::new(AtomicBool::new(false));
        let early = pool.schedule_after(ms(10), |_ctx| "early").expect("ok");
        let mut late = {
            let ran = Arc::clone(&ran);
            pool.schedule_after(Duration::from_secs(20), move |_ctx| ran.store(true, SeqCst))
                .expect("accepted")
        };
        assert_eq!(early.join(), Ok("early"));
        let result = late.join_timeout(LONG).expect("resolved at the deadline");
        assert!(Instant::now() >= deadline);
        assert_eq!(
            result,
            Err(JobError::Cancelled(Cancelled::DeadlineExceeded))
        );
        assert!(!ran.load(SeqCst));
        // Scheduling after the deadline is refused as a cancellation.
        let refused = pool.schedule_after(ms(1), |_ctx| ()).map(drop);
        assert!(matches!(refused, Err(ScheduleError::Cancelled(_))));
        let report = pool.shutdown_now();
        assert_eq!(report.delayed_never_ran, 1, "{report:?}");
        assert_eq!(report.submitted, 1);
    });
}

#[test]
fn a_schedule_ended_by_the_pool_deadline_is_in_the_shutdown_report() {
    // When the pool's deadline passes, a schedule ends with PoolStopped without running, and
    // once its handle says so, the shutdown report counts it in schedules_stopped.
    with_timeout(LONG, || {
        let _timers = timer_user();
        for round in 0..5 {
            let parent = Context::new().with_timeout(ms(100));
            let pool = ThreadPool::builder()
                .workers(1)
                .context(&parent)
                .build()
                .expect("build");
            let hourly = pool
                .schedule(Every::rate(Duration::from_secs(3600)), |_ctx| {
                    Ok::<(), String>(())
                })
                .expect("scheduled");
            assert_eq!(hourly.join_timeout(LONG), Some(Ended::PoolStopped));
            let report = pool.shutdown_now();
            assert_eq!(hourly.runs(), 0);
            assert_eq!(
                report.schedules_stopped, 1,
                "round {round}: a schedule the deadline ended is missing from the report: \
                 {report:?}"
            );
        }
    });
}

#[test]
fn runs_of_one_schedule_never_overlap() {
    // A run longer than the period on a pool with idle workers: the next run never starts
    // while one is in progress, and the ticks it overran are counted as missed.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let pool = pool_of(4);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (done, runs) = unbounded();
        let schedule = {
            let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
            pool.schedule(
                Every::rate(ms(5)).first_after(Duration::ZERO),
                move |_ctx| {
                    let now = in_flight.fetch_add(1, SeqCst) + 1;
                    most.fetch_max(now, SeqCst);
                    thread::sleep(ms(16));
                    in_flight.fetch_sub(1, SeqCst);
                    done.send(()).map_err(|_| "the test stopped listening")
                },
            )
            .expect("scheduled")
        };
        for _ in 0..10 {
            runs.recv_timeout(LONG).expect("the schedule keeps running");
        }
        schedule.cancel();
        assert_eq!(most.load(SeqCst), 1, "two runs of one schedule overlapped");
        // Runs 1..=9 ended at least 16 ms (3 periods) after their due time, and armed the next.
        assert!(schedule.misses() >= 27, "misses {}", schedule.misses());
        assert_eq!(schedule.failures(), 0);
    });
}

#[test]
fn fixed_rate_runs_stay_on_their_grid() {
    // Every::rate: run k starts no earlier than start + k × period, and the runs keep coming.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let pool = pool_of(2);
        let period = ms(20);
        let (tx, starts) = unbounded();
        let asked = Instant::now();
        let schedule = pool
            .schedule(
                Every::rate(period).first_after(Duration::ZERO),
                move |_ctx| tx.send(Instant::now()).map_err(|_| "nobody listens"),
            )
            .expect("scheduled");
        let starts: Vec<Instant> = (0..10)
            .map(|_| starts.recv_timeout(LONG).expect("the next run"))
            .collect();
        schedule.cancel();
        for (k, start) in (0u32..).zip(&starts) {
            assert!(
                *start >= asked + period * k,
                "run {k} started {:?} before its tick",
                asked + period * k - *start
            );
        }
        assert!(starts[9] - asked < period * 9 + Duration::from_secs(5));
        // The tenth run sent before it was counted.
        assert!(schedule.runs() >= 9);
        // Counted in the pool's stats like submitted jobs.
        assert!(pool.stats().submitted >= 10);
    });
}

#[test]
fn fixed_delay_runs_start_a_period_after_the_last_one_ended() {
    // Every::delay: each run starts at least one period after the previous one ended.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let pool = pool_of(2);
        let period = ms(30);
        let (tx, spans) = unbounded();
        let schedule = pool
            .schedule(
                Every::delay(period).first_after(Duration::ZERO),
                move |_ctx| {
                    let start = Instant::now();
                    thread::sleep(ms(10));
                    tx.send((start, Instant::now()))
                        .map_err(|_| "nobody listens")
                },
            )
            .expect("scheduled");
        let spans: Vec<(Instant, Instant)> = (0..6)
            .map(|_| spans.recv_timeout(LONG).expect("the next run"))
            .collect();
        schedule.cancel();
        for (k, pair) in spans.windows(2).enumerate() {
            let ((_, end), (next, _)) = (pair[0], pair[1]);
            assert!(
                next >= end + period,
                "run {} started {:?} after run {k} ended",
                k + 1,
                next - end
            );
        }
        assert_eq!(schedule.misses(), 0, "fixed delay is never late");
    });
}

/// What a one-worker pool saw of a fixed-rate schedule (period `period`,
/// first tick at once) whose first run overran to `overrun` periods past
/// its start.
struct Overrun {
    /// Taken just before `schedule`: the first tick is no earlier.
    asked: Instant,
    /// Taken at the very end of the first run: it ended no earlier.
    end: Instant,
    /// The start of each later run, and whether the clock job (due one
    /// period after `end`, scheduled before the first run ended) ran yet.
    later: Vec<(Instant, bool)>,
    misses: u64,
}

fn overrun(missed: Missed, period: Duration, overrun: f64, later_runs: usize) -> Overrun {
    enum Event {
        Run(Instant),
        Clock,
    }
    let pool = pool_of(1);
    let (events_tx, events) = unbounded();
    let (end_tx, end_rx) = bounded(1);
    let (go_tx, go_rx) = bounded::<()>(1);
    let mut first = true;
    let runs_tx = events_tx.clone();
    let asked = Instant::now();
    let schedule = pool
        .schedule(
            Every::rate(period)
                .missed(missed)
                .first_after(Duration::ZERO),
            move |_ctx| {
                let start = Instant::now();
                if !std::mem::take(&mut first) {
                    return runs_tx.send(Event::Run(start)).map_err(|_| "gone");
                }
                let until = start + period.mul_f64(overrun);
                while Instant::now() < until {
                    thread::sleep(until - Instant::now());
                }
                end_tx.send(Instant::now()).map_err(|_| "gone")?;
                go_rx.recv_timeout(LONG).map_err(|_| "no go")
            },
        )
        .expect("scheduled");
    let end: Instant = end_rx.recv_timeout(LONG).expect("the first run overran");
    // Inserted before the first run ends, so before the next tick is armed.
    let clock = pool
        .schedule_at(end + period, move |_ctx| {
            let _ = events_tx.send(Event::Clock);
        })
        .expect("the clock is accepted");
    go_tx.send(()).expect("the first run waits");
    let mut clock_ran = false;
    let mut later = Vec::new();
    while later.len() < later_runs || !clock_ran {
        match events
            .recv_timeout(LONG)
            .expect("the schedule keeps running")
        {
            Event::Run(start) => later.push((start, clock_ran)),
            Event::Clock => clock_ran = true,
        }
    }
    later.truncate(later_runs);
    schedule.cancel();
    assert_eq!(clock.join(), Ok(()));
    Overrun {
        asked,
        end,
        later,
        misses: schedule.misses(),
    }
}

#[test]
fn missed_skip_stays_on_the_grid_and_counts_the_skipped_ticks() {
    // Missed::Skip, the default: after a run that overran 3.5 periods, the next run is at the
    // next grid point (start + 4 periods, before the end + one period), the three ticks it
    // passed are missed, and the run after keeps to the grid.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let p = ms(200);
        assert_eq!(Every::rate(p), Every::rate(p).missed(Missed::Skip));
        let seen = overrun(Missed::Skip, p, 3.5, 2);
        let (second, clock_first) = seen.later[0];
        assert!(
            second >= seen.asked + p * 4,
            "ran {:?} before the next grid point",
            seen.asked + p * 4 - second
        );
        assert!(
            !clock_first,
            "Skip waited past the next grid point (start + 4p), to one period after the late run"
        );
        let (third, _) = seen.later[1];
        assert!(third >= seen.asked + p * 5, "the third run left the grid");
        assert!(seen.misses >= 3, "misses {}", seen.misses);
    });
}

#[test]
fn missed_delay_shifts_the_grid_to_a_period_after_the_late_run() {
    // Missed::Delay: after a run that overran, the next run is one period after it ended
    // (after a clock job due then), and the grid moves with it; the passed ticks are missed.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let p = ms(200);
        let seen = overrun(Missed::Delay, p, 3.5, 2);
        let (second, clock_first) = seen.later[0];
        assert!(
            second >= seen.end + p,
            "ran {:?} after the late run ended",
            second - seen.end
        );
        assert!(
            clock_first,
            "Delay ran before one period after the late run"
        );
        let (third, _) = seen.later[1];
        assert!(third >= seen.end + p * 2, "the shifted grid was not kept");
        assert!(seen.misses >= 3, "misses {}", seen.misses);
    });
}

#[test]
fn missed_burst_runs_the_missed_ticks_back_to_back() {
    // Missed::Burst: after a run that overran three ticks, those ticks run back to back (all
    // before one period after the late run, where Skip would have run one and Delay none),
    // none counts as missed, and the run after is back on the grid.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let p = ms(300);
        let seen = overrun(Missed::Burst, p, 3.05, 4);
        assert_eq!(seen.misses, 0, "Burst misses nothing");
        for (k, (start, clock_first)) in (1u32..).zip(&seen.later) {
            assert!(*start >= seen.asked + p * k, "run {k} ran before its tick");
            assert!(
                !clock_first,
                "run {k} came after one period past the late run: no burst"
            );
        }
        // Runs 1..=3 were the missed ticks, run 4 is the grid's next.
        let (fourth, _) = seen.later[3];
        assert!(fourth >= seen.asked + p * 4);
    });
}

#[test]
fn a_failing_run_under_continue_is_counted_kept_and_the_schedule_goes_on() {
    // OnError::Continue, the default: a run returning Err, then one panicking, are counted in
    // failures(), kept in last_error() (the message, then the panic) and logged, and the
    // schedule keeps running; a successful run keeps the last error.
    with_timeout(LONG, || {
        let _timers = timer_user();
        capture_logs();
        assert_eq!(
            Every::rate(ms(1)),
            Every::rate(ms(1)).on_error(OnError::Continue),
            "Continue is the default"
        );
        let pool = pool_of(2);
        let (go_tx, go) = unbounded::<()>();
        let mut n = 0u32;
        let schedule = pool
            .schedule(
                Every::delay(ms(1)).first_after(Duration::ZERO),
                move |_ctx| {
                    go.recv_timeout(LONG).map_err(|_| "no go".to_owned())?;
                    n += 1;
                    match n {
                        1 => Err(format!("continue-bad-input {n}")),
                        2 => panic!("continue-boom"),
                        _ => Ok(()),
                    }
                },
            )
            .expect("scheduled");
        let step = |runs: u64| {
            go_tx.send(()).expect("the schedule listens");
            assert!(
                wait_until(LONG, || schedule.runs() == runs),
                "run {runs} was not counted"
            );
        };

        step(1);
        assert_eq!(schedule.failures(), 1);
        let returned = schedule.last_error().expect("kept");
        assert_eq!(returned, RunError::Returned("continue-bad-input 1".into()));
        assert_eq!(
            returned.to_string(),
            "the run returned an error: continue-bad-input 1"
        );
        assert!(
            logged(&["a scheduled run failed", "continue-bad-input 1"]),
            "the failed run was not logged"
        );
        assert!(schedule.is_active());

        step(2);
        assert_eq!(schedule.failures(), 2);
        match schedule.last_error() {
            Some(RunError::Job(JobError::Panicked(panic))) => {
                assert_eq!(panic.message(), "continue-boom");
            }
            other => panic!("expected the panic, got {other:?}"),
        }
        assert!(logged(&["a scheduled run failed", "continue-boom"]));
        assert!(schedule.is_active());

        step(3);
        step(4);
        assert_eq!(schedule.failures(), 2);
        assert!(matches!(
            schedule.last_error(),
            Some(RunError::Job(JobError::Panicked(_)))
        ));
        assert_eq!(schedule.ended(), None);
        schedule.cancel();
        drop(go_tx);
        let stats = pool.stats();
        assert!(stats.panicked >= 1 && stats.failed >= 2, "{stats:?}");
    });
}

#[test]
fn a_run_past_the_job_timeout_is_a_failure() {
    // With the pool's job_timeout, a run that overruns it is counted as failed with
    // Job(TimedOut), and under Continue the later runs still happen.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let pool = ThreadPool::builder()
            .workers(2)
            .job_timeout(ms(100))
            .build()
            .expect("build");
        let mut first = true;
        let schedule = pool
            .schedule(
                Every::delay(ms(1)).first_after(Duration::ZERO),
                move |ctx| {
                    if std::mem::take(&mut first) {
                        // Wakes at the job's deadline.
                        let _ = ctx.sleep(LONG);
                    }
                    Ok::<(), String>(())
                },
            )
            .expect("scheduled");
        assert!(wait_until(LONG, || schedule.runs() >= 3));
        assert!(schedule.failures() >= 1);
        assert_eq!(
            schedule.last_error(),
            Some(RunError::Job(JobError::TimedOut))
        );
        assert!(schedule.is_active());
        schedule.cancel();
        assert!(pool.stats().timed_out >= 1);
    });
}

#[test]
fn a_failing_run_under_stop_ends_the_schedule_with_its_error() {
    // OnError::Stop: the first failed run (an Err, or a panic) ends the schedule with
    // Ended::Failed(that error), kept in last_error() and logged, and no run happens after it.
    with_timeout(LONG, || {
        let _timers = timer_user();
        capture_logs();
        let pool = pool_of(1);
        let period = ms(5);
        let every = Every::rate(period)
            .first_after(Duration::ZERO)
            .on_error(OnError::Stop);
        let returned_runs = Arc::new(AtomicUsize::new(0));
        let returning = {
            let runs = Arc::clone(&returned_runs);
            pool.schedule(every, move |_ctx| match runs.fetch_add(1, SeqCst) {
                0 => Ok(()),
                _ => Err("stop-disk-full"),
            })
            .expect("scheduled")
        };
        let panicked_runs = Arc::new(AtomicUsize::new(0));
        let panicking = {
            let runs = Arc::clone(&panicked_runs);
            pool.schedule(every, move |_ctx| -> Result<(), String> {
                runs.fetch_add(1, SeqCst);
                panic!("stop-no-disk")
            })
            .expect("scheduled")
        };

        let disk_full = RunError::Returned("stop-disk-full".into());
        assert_eq!(
            returning.join_timeout(LONG),
            Some(Ended::Failed(disk_full.clone()))
        );
        assert_eq!(returning.last_error(), Some(disk_full));
        assert_eq!((returning.runs(), returning.failures()), (2, 1));
        match panicking.join_timeout(LONG) {
            Some(Ended::Failed(RunError::Job(JobError::Panicked(panic)))) => {
                assert_eq!(panic.message(), "stop-no-disk");
            }
            other => panic!("expected Failed(panic), got {other:?}"),
        }
        assert_eq!((panicking.runs(), panicking.failures()), (1, 1));
        assert!(logged(&["a scheduled run failed", "stop-disk-full"]));
        assert!(logged(&["a scheduled run failed", "stop-no-disk"]));
        assert!(logged(&["the schedule stops after the failed run"]));

        // Twenty periods later (every tick due before has run on the one worker): no more runs.
        clock(&pool, period * 20);
        assert_eq!(
            returned_runs.load(SeqCst),
            2,
            "a stopped schedule ran again"
        );
        assert_eq!(
            panicked_runs.load(SeqCst),
            1,
            "a stopped schedule ran again"
        );
        assert_eq!(returning.runs(), 2);
        assert!(!returning.is_active() && !panicking.is_active());
    });
}

#[test]
fn cancel_ends_the_schedule_and_no_run_starts_after() {
    // Schedule::cancel: ended() is Cancelled, and no run starts after cancel returns (a clock
    // job due many periods later finds the run count unchanged).
    with_timeout(LONG, || {
        let _timers = timer_user();
        let pool = pool_of(1);
        let period = ms(5);
        let started = Arc::new(AtomicUsize::new(0));
        let (tx, ran) = unbounded();
        let schedule = {
            let started = Arc::clone(&started);
            pool.schedule(
                Every::rate(period).first_after(Duration::ZERO),
                move |_ctx| {
                    started.fetch_add(1, SeqCst);
                    let _ = tx.send(());
                    Ok::<(), String>(())
                },
            )
            .expect("scheduled")
        };
        for _ in 0..3 {
            ran.recv_timeout(LONG).expect("the schedule runs");
        }
        schedule.cancel();
        let at_cancel = started.load(SeqCst);
        assert_eq!(schedule.ended(), Some(Ended::Cancelled));
        assert!(!schedule.is_active());
        assert_eq!(
            schedule.join_timeout(Duration::ZERO),
            Some(Ended::Cancelled)
        );
        clock(&pool, period * 20);
        assert_eq!(
            started.load(SeqCst),
            at_cancel,
            "a run started after cancel returned"
        );
        // Cancelling again changes nothing.
        schedule.cancel();
        assert_eq!(schedule.ended(), Some(Ended::Cancelled));
    });
}

#[test]
fn cancel_frees_an_idle_schedule_at_once() {
    // A cancelled schedule with no run in progress leaves nothing behind: its closure is
    // dropped when cancel returns, and the shutdown finds no schedule to stop.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let pool = pool_of(1);
        let drops = Arc::new(AtomicUsize::new(0));
        let token = DropCounter(Arc::clone(&drops));
        let schedule = pool
            .schedule(Every::rate(Duration::from_secs(3600)), move |_ctx| {
                let _keep = &token;
                Ok::<(), String>(())
            })
            .expect("scheduled");
        assert_eq!(drops.load(SeqCst), 0);
        schedule.cancel();
        assert_eq!(drops.load(SeqCst), 1, "the closure outlived the cancel");
        let report = pool.shutdown_now();
        assert_eq!(report.schedules_stopped, 0);
        assert_eq!(schedule.ended(), Some(Ended::Cancelled));
    });
}

#[test]
fn cancel_during_a_run_lets_it_finish_and_counts_it() {
    // Cancelling while a run is in progress ends the schedule at once; the run is not
    // cancelled (its context stays live), finishes, is counted, and no run follows it.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let pool = pool_of(1);
        let gate = Gate::new();
        let (started_tx, started) = bounded(1);
        let (done_tx, done) = bounded(1);
        let drops = Arc::new(AtomicUsize::new(0));
        let starts = Arc::new(AtomicUsize::new(0));
        let schedule = {
            let (gate, starts) = (gate.clone(), Arc::clone(&starts));
            let token = DropCounter(Arc::clone(&drops));
            pool.schedule(Every::rate(ms(5)).first_after(Duration::ZERO), move |ctx| {
                let _keep = &token;
                starts.fetch_add(1, SeqCst);
                let _ = started_tx.try_send(());
                gate.wait();
                let _ = done_tx.try_send(ctx.is_done());
                Ok::<(), String>(())
            })
            .expect("scheduled")
        };
        started.recv_timeout(LONG).expect("the first run started");
        schedule.cancel();
        assert_eq!(schedule.ended(), Some(Ended::Cancelled));
        assert_eq!(schedule.runs(), 0, "the run has not ended");
        gate.open();
        assert_eq!(
            done.recv_timeout(LONG),
            Ok(false),
            "the run's context was cancelled"
        );
        assert!(
            wait_until(LONG, || schedule.runs() == 1),
            "the run was not counted"
        );
        assert!(
            wait_until(LONG, || drops.load(SeqCst) == 1),
            "the closure was kept"
        );
        clock(&pool, ms(100));
        assert_eq!(starts.load(SeqCst), 1, "a run started after the cancel");
        assert_eq!(schedule.ended(), Some(Ended::Cancelled));
    });
}

#[test]
fn a_tick_that_finds_the_queue_full_is_missed_and_runs_resume() {
    // With the only worker busy and the queue full, ticks are missed (counted and logged, not
    // queued and not waited for); once there is room the schedule runs again.
    with_timeout(LONG, || {
        let _timers = timer_user();
        capture_logs();
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .expect("build");
        let gate = Gate::new();
        let blocker = occupy_worker(&pool, &gate);
        let filler = pool.submit(|_ctx| ()).expect("room for one");
        assert!(matches!(
            pool.try_execute(|| {}),
            Err(TrySubmitError::Full(_))
        ));
        let schedule = pool
            .schedule(Every::rate(ms(5)).first_after(Duration::ZERO), |_ctx| {
                Ok::<(), String>(())
            })
            .expect("scheduled on a full pool");
        assert!(
            wait_until(LONG, || schedule.misses() >= 2),
            "ticks on a full queue were not counted as missed"
        );
        assert_eq!(schedule.runs(), 0);
        assert_eq!(pool.stats().submitted, 2, "a missed tick was queued");
        assert!(logged(&["found the pool's queue full: tick missed"]));
        gate.open();
        assert_eq!(blocker.join(), Ok(()));
        assert_eq!(filler.join(), Ok(()));
        assert!(
            wait_until(LONG, || schedule.runs() >= 3),
            "the schedule did not resume"
        );
        assert!(schedule.is_active());
        schedule.cancel();
    });
}

// ---------------------------------------------------------------------------
// Shutdown, refusals, scale
// ---------------------------------------------------------------------------

/// Work left pending on a pool: far delayed jobs, far schedules, and one
/// fast schedule that has run.
struct Pending {
    delayed: Vec<JobHandle<()>>,
    schedules: Vec<Schedule>,
    /// Runs of the far jobs and schedules (must stay 0).
    far_runs: Arc<AtomicUsize>,
    /// Drops of every closure.
    drops: Arc<AtomicUsize>,
}

const PENDING_DELAYED: usize = 3;
const PENDING_SCHEDULES: usize = 3;

fn pending(pool: &ThreadPool) -> Pending {
    let far_runs = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    let far = Duration::from_secs(3600);
    let delayed = (0..PENDING_DELAYED)
        .map(|_| {
            let (runs, token) = (Arc::clone(&far_runs), DropCounter(Arc::clone(&drops)));
            pool.schedule_after(far, move |_ctx| {
                drop(token);
                runs.fetch_add(1, SeqCst);
            })
            .expect("accepted")
        })
        .collect();
    let mut schedules: Vec<Schedule> = (0..PENDING_SCHEDULES - 1)
        .map(|_| {
            let (runs, token) = (Arc::clone(&far_runs), DropCounter(Arc::clone(&drops)));
            pool.schedule(Every::rate(far), move |_ctx| {
                let _keep = &token;
                runs.fetch_add(1, SeqCst);
                Ok::<(), String>(())
            })
            .expect("scheduled")
        })
        .collect();
    let (ran_tx, ran) = bounded(1);
    let token = DropCounter(Arc::clone(&drops));
    schedules.push(
        pool.schedule(
            Every::rate(ms(1)).first_after(Duration::ZERO),
            move |_ctx| {
                let _keep = &token;
                let _ = ran_tx.try_send(());
                Ok::<(), String>(())
            },
        )
        .expect("scheduled"),
    );
    ran.recv_timeout(LONG).expect("the fast schedule runs");
    Pending {
        delayed,
        schedules,
        far_runs,
        drops,
    }
}

impl Pending {
    /// After the pool stopped: every delayed job Cancelled, every schedule
    /// PoolStopped, nothing far ran, every closure dropped.
    fn check(self, how: &str) {
        for handle in self.delayed {
            assert!(handle.is_finished(), "{how}: a delayed handle is unsettled");
            assert_eq!(
                handle.join(),
                Err(JobError::Cancelled(Cancelled::Canceled)),
                "{how}"
            );
        }
        for schedule in &self.schedules {
            assert_eq!(schedule.ended(), Some(Ended::PoolStopped), "{how}");
            assert!(!schedule.is_active(), "{how}");
        }
        assert_eq!(self.far_runs.load(SeqCst), 0, "{how}: a job not due ran");
        assert!(
            wait_until(LONG, || self.drops.load(SeqCst)
                == PENDING_DELAYED + PENDING_SCHEDULES),
            "{how}: {} of {} closures dropped",
            self.drops.load(SeqCst),
            PENDING_DELAYED + PENDING_SCHEDULES
        );
    }
}

#[test]
fn every_shutdown_reports_pending_work_and_leaves_no_timer_thread() {
    // join, shutdown_now, shutdown_timeout, drop, close then join, and cancelling the pool's
    // context: each resolves pending delayed jobs as Cancelled and ends schedules with
    // PoolStopped, a report counts them exactly, and no timer thread outlives the pool.
    with_timeout(LONG, || {
        // Alone: no other test's timer thread is counted.
        let _timers = TIMERS.write();
        assert_eq!(
            timer_threads(),
            0,
            "a timer thread was left before this test"
        );
        let setup = || {
            let pool = pool_of(2);
            assert_eq!(timer_threads(), 0, "a pool starts its timer lazily");
            let pending = pending(&pool);
            assert_eq!(timer_threads(), 1, "one timer thread per pool");
            (pool, pending)
        };
        let exact = |report: brigade::ShutdownReport, how: &str| {
            assert_eq!(
                (report.delayed_never_ran, report.schedules_stopped),
                (PENDING_DELAYED as u64, PENDING_SCHEDULES as u64),
                "{how}: {report:?}"
            );
            assert_eq!(report.ran + report.never_ran, report.submitted, "{how}");
        };

        let (pool, pending) = setup();
        pool.join();
        assert_eq!(timer_threads(), 0, "join left the timer thread");
        pending.check("join");

        let (pool, pending) = setup();
        let report = pool.shutdown_now();
        assert_eq!(timer_threads(), 0, "shutdown_now left the timer thread");
        exact(report, "shutdown_now");
        pending.check("shutdown_now");

        let (pool, pending) = setup();
        let report = pool.shutdown_timeout(LONG);
        assert_eq!(timer_threads(), 0, "shutdown_timeout left the timer thread");
        assert!(report.drained);
        exact(report, "shutdown_timeout");
        pending.check("shutdown_timeout");

        let (pool, pending) = setup();
        drop(pool);
        assert_eq!(timer_threads(), 0, "drop left the timer thread");
        pending.check("drop");

        // close() resolves what was pending at once, before the pool is joined.
        let (pool, pending) = setup();
        pool.close();
        for handle in &pending.delayed {
            assert!(handle.is_finished(), "close: a delayed job still pending");
        }
        for schedule in &pending.schedules[..PENDING_SCHEDULES - 1] {
            assert_eq!(schedule.ended(), Some(Ended::PoolStopped), "close");
        }
        assert!(matches!(
            pool.schedule_after(ms(1), |_ctx| ()),
            Err(ScheduleError::Closed(_))
        ));
        let report = pool.shutdown_timeout(LONG);
        assert_eq!(
            timer_threads(),
            0,
            "close then shutdown left the timer thread"
        );
        exact(report, "close");
        pending.check("close");

        // Cancelling the pool's context stops the timer too.
        let (pool, pending) = setup();
        pool.context().cancel();
        for handle in &pending.delayed {
            assert!(handle.is_finished(), "cancel: a delayed job still pending");
        }
        let report = pool.shutdown_now();
        assert_eq!(timer_threads(), 0, "a cancelled pool left the timer thread");
        exact(report, "context cancel");
        pending.check("context cancel");
    });
}

#[test]
fn scheduling_on_a_closed_pool_hands_the_closure_back() {
    // After close(), schedule_after, schedule_at and schedule are refused with Closed and the
    // closure comes back, still callable.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let pool = pool_of(1);
        // One timer already running, one not: both refuse.
        let warm = pool_of(1);
        let started = warm.schedule_after(Duration::ZERO, |_ctx| ()).expect("ok");
        assert_eq!(started.join(), Ok(()));
        for pool in [&pool, &warm] {
            pool.close();
            let err = pool
                .schedule_after(ms(1), |_ctx: &Context| 7)
                .map(drop)
                .unwrap_err();
            assert!(matches!(err, ScheduleError::Closed(_)), "{err:?}");
            assert_eq!(err.kind(), Refusal::Closed);
            assert_eq!(err.into_inner()(&Context::new()), 7);
            let err = pool
                .schedule_at(Instant::now(), |_ctx: &Context| 8)
                .map(drop)
                .unwrap_err();
            assert!(matches!(err, ScheduleError::Closed(_)));
            assert_eq!(err.into_inner()(&Context::new()), 8);
            let err = pool
                .schedule(Every::rate(ms(1)), |_ctx: &Context| Err::<(), _>("back"))
                .map(drop)
                .unwrap_err();
            assert!(matches!(err, ScheduleError::Closed(_)));
            assert_eq!(err.into_inner()(&Context::new()), Err("back"));
        }
        assert_eq!(pool.stats().submitted, 0);
    });
}

#[test]
fn scheduling_on_a_cancelled_pool_is_refused() {
    // After the pool's context is cancelled, every way to schedule is refused with
    // Cancelled, the closure handed back.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let pool = pool_of(1);
        let warm = pool_of(1);
        let started = warm.schedule_after(Duration::ZERO, |_ctx| ()).expect("ok");
        assert_eq!(started.join(), Ok(()));
        for pool in [&pool, &warm] {
            pool.context().cancel();
            let err = pool
                .schedule_after(ms(1), |_ctx: &Context| 1)
                .map(drop)
                .unwrap_err();
            assert!(matches!(err, ScheduleError::Cancelled(_)), "{err:?}");
            assert_eq!(err.kind(), Refusal::Cancelled);
            assert_eq!(err.into_inner()(&Context::new()), 1);
            let err = pool
                .schedule(Every::delay(ms(1)), |_ctx: &Context| Ok::<(), String>(()))
                .map(drop)
                .unwrap_err();
            assert!(matches!(err, ScheduleError::Cancelled(_)));
        }
    });
}

#[test]
fn a_hundred_thousand_pending_delayed_jobs_cancel_without_running() {
    // 100,000 delayed jobs pending, then all cancelled: none runs, every closure is dropped,
    // nothing was submitted, and no timer entry is left.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let pool = pool_of(2);
        let ran = Arc::new(AtomicUsize::new(0));
        let drops = Arc::new(AtomicUsize::new(0));
        let n = 100_000;
        let handles: Vec<JobHandle<()>> = (0..n)
            .map(|i| {
                let (ran, token) = (Arc::clone(&ran), DropCounter(Arc::clone(&drops)));
                pool.schedule_after(Duration::from_secs(3600 + i % 7), move |_ctx| {
                    drop(token);
                    ran.fetch_add(1, SeqCst);
                })
                .expect("accepted")
            })
            .collect();
        for handle in &handles {
            handle.cancel();
        }
        assert_eq!(
            drops.load(SeqCst),
            n as usize,
            "every closure dropped at cancel"
        );
        assert!(handles.iter().all(JobHandle::is_finished));
        assert_eq!(pool.stats().submitted, 0);
        let report = pool.shutdown_now();
        assert_eq!(ran.load(SeqCst), 0);
        assert_eq!(report.delayed_never_ran, 0, "cancelled entries were left");
        assert_eq!(report.submitted, 0);
    });
}

#[test]
fn a_due_job_starts_a_worker_on_a_pool_scaled_to_zero() {
    // A pool whose idle worker left (keep_alive) still runs delayed jobs and schedules: a
    // due job enters through the same door as a submit, which starts a worker.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let pool = ThreadPool::builder()
            .workers(1)
            .keep_alive(ms(20))
            .build()
            .expect("build");
        assert!(wait_until(LONG, || pool.stats().workers == 0));
        let handle = pool.schedule_after(ms(10), |_ctx| 5).expect("accepted");
        assert_eq!(handle.join(), Ok(5));
        assert!(wait_until(LONG, || pool.stats().workers == 0));
        let (tx, ran) = unbounded();
        let schedule = pool
            .schedule(Every::rate(ms(30)), move |_ctx| {
                tx.send(()).map_err(|_| "nobody listens")
            })
            .expect("scheduled");
        for _ in 0..3 {
            ran.recv_timeout(LONG)
                .expect("the schedule runs on a pool scaled to zero");
        }
        schedule.cancel();
    });
}

#[test]
fn cancelling_schedules_right_after_their_first_run_frees_them() {
    // Schedules whose first run is due at once, made from several threads at the same time,
    // then cancelled after that run: each one's closure is dropped (its next tick, an hour
    // away, is taken off the timer) and none is left for the shutdown to stop.
    with_timeout(LONG, || {
        let _timers = timer_user();
        for round in 0..10 {
            let pool = Arc::new(
                ThreadPool::builder()
                    .workers(2)
                    .unbounded_queue()
                    .build()
                    .expect("build"),
            );
            let drops = Arc::new(AtomicUsize::new(0));
            let makers: Vec<_> = (0..8)
                .map(|_| {
                    let (pool, drops) = (Arc::clone(&pool), Arc::clone(&drops));
                    thread::spawn(move || {
                        let every =
                            Every::rate(Duration::from_secs(3600)).first_after(Duration::ZERO);
                        (0..250)
                            .map(|_| {
                                let token = DropCounter(Arc::clone(&drops));
                                pool.schedule(every, move |_ctx| {
                                    let _keep = &token;
                                    Ok::<(), String>(())
                                })
                                .expect("scheduled")
                            })
                            .collect::<Vec<Schedule>>()
                    })
                })
                .collect();
            let schedules: Vec<Schedule> = makers
                .into_iter()
                .flat_map(|maker| maker.join().expect("the maker thread"))
                .collect();
            assert!(wait_until(LONG, || schedules.iter().all(|s| s.runs() == 1)));
            for schedule in &schedules {
                schedule.cancel();
            }
            // The last runs' workers let go of their closures just after counting them.
            let freed = wait_until(Duration::from_secs(3), || drops.load(SeqCst) == 2000);
            assert!(
                freed,
                "round {round}: {} of 2000 cancelled schedules still hold their closure \
                 (their next tick stayed on the timer)",
                2000 - drops.load(SeqCst)
            );
            let report = Arc::into_inner(pool).expect("one owner").shutdown_now();
            assert_eq!(report.schedules_stopped, 0);
        }
    });
}

#[test]
fn a_paused_schedule_skips_its_ticks_without_misses_and_resumes() {
    // Paused: no run starts once a run already queued has drained, and the
    // skipped ticks are not misses; resumed: runs start again.
    with_timeout(LONG, || {
        let _timers = timer_user();
        let pool = pool_of(1);
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let schedule = pool
            .schedule(Every::rate(ms(2)), move |_ctx| {
                counted.fetch_add(1, SeqCst);
                Ok::<(), String>(())
            })
            .expect("schedule");
        assert!(wait_until(LONG, || runs.load(SeqCst) >= 2));
        schedule.pause();
        assert!(schedule.is_paused() && schedule.is_active());
        // A clock on the same one-worker pool: a run queued before the
        // pause has run by the time this one has.
        let clock = |delay| {
            pool.schedule_after(delay, |_ctx| ())
                .expect("clock")
                .join()
                .expect("the clock ran");
        };
        clock(ms(20));
        let (paused_at, missed) = (runs.load(SeqCst), schedule.misses());
        clock(ms(50));
        assert_eq!(runs.load(SeqCst), paused_at, "a run started while paused");
        assert_eq!(schedule.misses(), missed, "paused ticks are not misses");
        schedule.resume();
        assert!(!schedule.is_paused());
        assert!(wait_until(LONG, || runs.load(SeqCst) > paused_at));
        schedule.cancel();
    });
}
