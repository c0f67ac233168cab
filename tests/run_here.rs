//! `submit_or_run_here` and `execute_or_run_here`: with room in the queue
//! the job is queued and runs on a worker; with the queue full it runs on
//! the calling thread, through the workers' lifecycle (context, per-job
//! timeout, rate limit, panic capture, stats, hooks), and the handle comes
//! back finished; a closed or cancelled pool hands the closure back unrun.
//!
//! Every pool here has one worker and room for one queued job: `occupy`
//! parks a job on the worker and fills the queue, so the next submit finds
//! no room.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, ThreadId};
use std::time::Duration;

use brigade::{
    Cancelled, Context, JobError, JobEvent, JobHandle, JobOutcome, Lane, PanicPolicy, RateLimiter,
    SubmitError, ThreadPool, ThreadPoolBuilder,
};
use common::{Gate, LONG, occupy_worker, thread_sleeping, wait_until, with_timeout};
use crossbeam_channel::{Receiver, Sender, bounded, select};

/// The bound on every wait that should end almost at once.
const WAIT: Duration = Duration::from_secs(10);

fn builder(name: &str) -> ThreadPoolBuilder {
    ThreadPool::builder()
        .workers(1)
        .queue_capacity(1)
        .thread_name(name)
}

/// A pool whose worker is busy and whose queue is full.
struct Occupied {
    pool: ThreadPool,
    /// Dropping it lets the busy job return.
    release: Option<Sender<()>>,
    busy: JobHandle<()>,
    queued: JobHandle<ThreadId>,
}

impl Occupied {
    /// Lets the busy job go and checks that the queued job then ran on the
    /// worker, not on this thread.
    fn release(mut self) -> ThreadPool {
        drop(self.release.take());
        // Its value is dropped if it outlived a per-job timeout.
        assert!(matches!(self.busy.join(), Ok(()) | Err(JobError::TimedOut)));
        let worker = self.queued.join().expect("the queued job ran");
        assert_ne!(worker, thread::current().id());
        self.pool
    }
}

/// Parks a job on the pool's one worker (until released, or the pool is
/// cancelled: it ignores its own per-job timeout) and fills the queue
/// behind it.
fn occupy(pool: ThreadPool) -> Occupied {
    let (started_tx, started) = bounded(1);
    let (release, released): (Sender<()>, Receiver<()>) = bounded(0);
    let cancelled = pool.context().done();
    let busy = pool
        .submit(move |_ctx: &Context| {
            started_tx.send(()).expect("the test waits");
            select! {
                recv(released) -> _ => {}
                recv(cancelled) -> _ => {}
                default(LONG) => panic!("never released"),
            }
        })
        .expect("the worker takes the first job");
    started.recv_timeout(WAIT).expect("the busy job started");
    let queued = pool
        .try_submit(|_ctx| thread::current().id())
        .expect("room for one queued job");
    Occupied {
        pool,
        release: Some(release),
        busy,
        queued,
    }
}

#[test]
fn a_full_queue_runs_the_job_on_the_caller_and_returns_it_finished() {
    with_timeout(LONG, || {
        let occupied = occupy(builder("rh-full").build().expect("valid pool"));
        let caller = thread::current().id();
        let here = occupied
            .pool
            .submit_or_run_here(|_ctx| (thread::current().id(), 6 * 7))
            .expect("accepted");
        assert!(here.is_finished(), "run before the call returned");
        assert_eq!(here.join(), Ok((caller, 42)));
        let pool = occupied.release();
        let stats = pool.stats();
        assert_eq!((stats.submitted, stats.completed), (3, 3), "{stats}");
        assert_eq!((stats.workers, stats.busy), (1, 0), "{stats}");
    });
}

#[test]
fn with_room_the_job_is_queued_and_runs_on_a_worker() {
    with_timeout(LONG, || {
        let pool = builder("rh-room").build().expect("valid pool");
        let handle = pool
            .submit_or_run_here(|_ctx| {
                let me = thread::current();
                (me.id(), me.name().map(str::to_owned))
            })
            .expect("accepted");
        let (id, name) = handle.join().expect("ran");
        assert_ne!(id, thread::current().id());
        assert_eq!(name.as_deref(), Some("rh-room-0"));

        let (tx, rx) = bounded(1);
        pool.execute_or_run_here(move || {
            let _ = tx.send(thread::current().id());
        })
        .expect("accepted");
        let worker = rx.recv_timeout(WAIT).expect("the job ran");
        assert_eq!(worker, id, "on the pool's one worker");
        pool.join();
    });
}

#[test]
fn execute_or_run_here_runs_on_the_caller_when_the_queue_is_full() {
    with_timeout(LONG, || {
        let occupied = occupy(builder("rh-exec").build().expect("valid pool"));
        let (tx, rx) = bounded(1);
        occupied
            .pool
            .execute_or_run_here(move || {
                let _ = tx.send(thread::current().id());
            })
            .expect("accepted");
        // Already run: no wait.
        assert_eq!(rx.try_recv(), Ok(thread::current().id()));
        let report = occupied.release().shutdown_now();
        assert_eq!(
            (
                report.submitted,
                report.ran,
                report.completed,
                report.never_ran
            ),
            (3, 3, 3, 0),
            "{report:?}"
        );
    });
}

/// Submits a job that sets `ran` through both methods of `door` (a pool,
/// or a route into one); each must come back refused with `cancelled`
/// (`true`: `Cancelled`, `false`: `Closed`), its closure handed back unrun.
macro_rules! refused_through {
    ($door:expr, $cancelled:expr) => {{
        let cancelled: bool = $cancelled;
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let job = move |_ctx: &Context| flag.store(true, Ordering::SeqCst);
        let returned = match $door.submit_or_run_here(job) {
            Err(SubmitError::Cancelled(job)) if cancelled => job,
            Err(SubmitError::Closed(job)) if !cancelled => job,
            other => panic!("refused as cancelled={cancelled}: {other:?}"),
        };
        assert!(!ran.load(Ordering::SeqCst), "a refused job never runs");
        // The very closure came back: running it sets the flag.
        returned(&Context::background());
        assert!(ran.load(Ordering::SeqCst));

        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let job = move || flag.store(true, Ordering::SeqCst);
        let returned = match $door.execute_or_run_here(job) {
            Err(SubmitError::Cancelled(job)) if cancelled => job,
            Err(SubmitError::Closed(job)) if !cancelled => job,
            other => panic!("refused as cancelled={cancelled}: {other:?}"),
        };
        assert!(!ran.load(Ordering::SeqCst), "a refused job never runs");
        returned();
        assert!(ran.load(Ordering::SeqCst));
    }};
}

/// [`refused_through!`] the pool itself, a lane and a key.
fn refused_and_handed_back(pool: &ThreadPool, cancelled: bool) {
    refused_through!(pool, cancelled);
    refused_through!(pool.lane(Lane::High), cancelled);
    refused_through!(pool.keyed("account-9"), cancelled);
}

#[test]
fn a_closed_pool_hands_the_job_back_unrun() {
    with_timeout(LONG, || {
        // With room, and with the queue full (where Java's policy would run
        // the job, or drop it after shutdown).
        let pool = builder("rh-closed").build().expect("valid pool");
        pool.close();
        refused_and_handed_back(&pool, false);
        pool.join();

        let occupied = occupy(builder("rh-closed-full").build().expect("valid pool"));
        occupied.pool.close();
        refused_and_handed_back(&occupied.pool, false);
        let report = occupied.release().shutdown_now();
        assert_eq!((report.submitted, report.ran), (2, 2), "{report:?}");
    });
}

#[test]
fn a_cancelled_pool_hands_the_job_back_unrun() {
    with_timeout(LONG, || {
        let pool = builder("rh-cancelled").build().expect("valid pool");
        pool.context().cancel();
        refused_and_handed_back(&pool, true);
        drop(pool);

        // Cancelled through a parent context, with the queue full.
        let parent = Context::new();
        let occupied = occupy(
            builder("rh-cancelled-full")
                .context(&parent)
                .build()
                .expect("valid pool"),
        );
        parent.cancel();
        refused_and_handed_back(&occupied.pool, true);
        assert!(matches!(
            occupied.queued.join(),
            Err(JobError::Cancelled(Cancelled::Canceled))
        ));
        assert_eq!(
            occupied.busy.join(),
            Err(JobError::Cancelled(Cancelled::Canceled))
        );
        let report = occupied.pool.shutdown_now();
        assert_eq!(
            (report.submitted, report.ran, report.never_ran),
            (2, 1, 1),
            "refusals are not counted: {report:?}"
        );
    });
}

#[test]
fn a_panic_on_the_caller_is_caught_and_reported_on_the_handle() {
    with_timeout(LONG, || {
        let occupied = occupy(builder("rh-panic").build().expect("valid pool"));
        let here = occupied
            .pool
            .submit_or_run_here(|_ctx| -> u32 { panic!("boom on the caller") })
            .expect("accepted");
        match here.join() {
            Err(JobError::Panicked(panic)) => assert_eq!(panic.message(), "boom on the caller"),
            other => panic!("expected the panic on the handle: {other:?}"),
        }
        occupied
            .pool
            .execute_or_run_here(|| panic!("boom again"))
            .expect("accepted; the panic does not unwind into the caller");
        let pool = occupied.release();
        let stats = pool.stats();
        assert_eq!((stats.panicked, stats.completed), (2, 2), "{stats}");
        // The caller's thread is not the pool's: nothing was replaced.
        assert_eq!((stats.workers, stats.respawned), (1, 0), "{stats}");
        let report = pool.shutdown_now();
        assert_eq!(
            (
                report.submitted,
                report.ran,
                report.completed,
                report.never_ran
            ),
            (4, 4, 2, 0),
            "{report:?}"
        );
    });
}

#[test]
fn a_panic_on_the_caller_cancels_a_cancel_pool_pool() {
    with_timeout(LONG, || {
        let occupied = occupy(
            builder("rh-cancelpool")
                .panic_policy(PanicPolicy::CancelPool)
                .build()
                .expect("valid pool"),
        );
        let here = occupied
            .pool
            .submit_or_run_here(|_ctx| -> u32 { panic!("fail fast") })
            .expect("accepted");
        assert!(matches!(here.join(), Err(JobError::Panicked(_))));
        assert!(
            occupied.pool.context().is_done(),
            "the panic cancelled the pool"
        );
        assert!(matches!(
            occupied.queued.join(),
            Err(JobError::Cancelled(_))
        ));
        let report = occupied.pool.shutdown_now();
        assert_eq!(
            (report.submitted, report.ran, report.never_ran),
            (3, 2, 1),
            "{report:?}"
        );
    });
}

#[test]
fn the_per_job_timeout_applies_on_the_caller() {
    with_timeout(LONG, || {
        // The busy job ignores its own timeout (timeouts are cooperative),
        // so the worker stays busy and the queue full.
        let occupied = occupy(
            builder("rh-timeout")
                .job_timeout(Duration::from_millis(50))
                .build()
                .expect("valid pool"),
        );
        let here = occupied
            .pool
            .submit_or_run_here(|ctx| {
                assert!(ctx.deadline().is_some(), "the per-job timeout is set");
                let _ = ctx.done().recv_timeout(WAIT);
                ctx.reason()
            })
            .expect("accepted");
        assert_eq!(here.join(), Err(JobError::TimedOut));
        assert_eq!(occupied.pool.stats().timed_out, 1);
        drop(occupied.release());
    });
}

#[test]
fn the_caller_runs_the_job_under_the_pools_context() {
    with_timeout(LONG, || {
        let occupied = occupy(builder("rh-ctx").build().expect("valid pool"));
        let pool_ctx = occupied.pool.context().clone();
        let here = occupied
            .pool
            .submit_or_run_here(move |ctx| {
                assert!(!ctx.is_done());
                pool_ctx.cancel();
                ctx.reason()
            })
            .expect("accepted");
        // Done when it returned: the value is dropped, the handle says why.
        assert_eq!(here.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        assert_eq!(
            occupied.busy.join(),
            Err(JobError::Cancelled(Cancelled::Canceled))
        );
        let report = occupied.pool.shutdown_now();
        assert_eq!(
            (report.submitted, report.ran, report.never_ran),
            (3, 2, 1),
            "{report:?}"
        );
    });
}

#[test]
fn the_on_job_done_hook_sees_the_caller_run_job() {
    with_timeout(LONG, || {
        let (tx, events) = crossbeam_channel::unbounded::<(JobEvent, ThreadId)>();
        let hooked = builder("rh-hook")
            .on_job_done(move |event| {
                let _ = tx.send((*event, thread::current().id()));
            })
            .build()
            .expect("valid pool");
        let occupied = occupy(hooked);
        let here = occupied
            .pool
            .submit_or_run_here(|_ctx| 1)
            .expect("accepted");
        // Told before the call returned, on this thread: job 2.
        let (event, on) = events.try_recv().expect("the hook ran");
        assert_eq!((event.id, event.outcome), (2, JobOutcome::Completed));
        assert_eq!(on, thread::current().id());
        assert_eq!(here.join(), Ok(1));
        drop(occupied.release());
    });
}

#[test]
fn the_rate_limit_gates_the_caller_run_job_and_refuses_past_the_deadline() {
    with_timeout(LONG, || {
        // Two tokens, then one a day: the busy job and the caller-run job
        // start at once; no later job can start before the pool's deadline.
        let limiter = RateLimiter::new(1.0 / 86_400.0, 2).expect("valid limiter");
        let parent = Context::new().with_timeout(Duration::from_secs(3600));
        let occupied = occupy(
            builder("rh-rate")
                .rate_limit(limiter)
                .context(&parent)
                .build()
                .expect("valid pool"),
        );
        let here = occupied
            .pool
            .submit_or_run_here(|_ctx| "through the gate")
            .expect("accepted");
        assert_eq!(here.join(), Ok("through the gate"));
        let before = occupied.pool.stats().submitted;
        let ran = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&ran);
        match occupied.pool.submit_or_run_here(move |_ctx| {
            count.fetch_add(1, Ordering::SeqCst);
        }) {
            Err(SubmitError::Cancelled(_job)) => {}
            other => panic!("no token before the deadline: {other:?}"),
        }
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        assert_eq!(occupied.pool.stats().submitted, before, "not counted");
        // The queued job, refused by the gate on its worker, is discarded.
        let Occupied {
            pool,
            release,
            busy,
            queued,
        } = occupied;
        drop(release);
        assert_eq!(busy.join(), Ok(()));
        assert_eq!(
            queued.join(),
            Err(JobError::Cancelled(Cancelled::DeadlineExceeded))
        );
        let report = pool.shutdown_now();
        assert_eq!(
            (report.submitted, report.ran, report.never_ran),
            (3, 2, 1),
            "{report:?}"
        );
    });
}

#[test]
fn the_propagate_hooks_see_the_caller_run_job() {
    with_timeout(LONG, || {
        let (captured, entered) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (on_capture, on_enter) = (Arc::clone(&captured), Arc::clone(&entered));
        let pool = builder("rh-propagate")
            .propagate(
                move || on_capture.fetch_add(1, Ordering::SeqCst),
                move |_value: usize, run: &mut dyn FnMut()| {
                    on_enter.fetch_add(1, Ordering::SeqCst);
                    run();
                },
            )
            .build()
            .expect("valid pool");
        let occupied = occupy(pool);
        let before = (
            captured.load(Ordering::SeqCst),
            entered.load(Ordering::SeqCst),
        );
        assert_eq!(
            before,
            (2, 1),
            "the busy job entered, the queued one not yet"
        );
        let here = occupied
            .pool
            .submit_or_run_here(|_ctx| "entered")
            .expect("accepted");
        assert_eq!(here.join(), Ok("entered"));
        let after = (
            captured.load(Ordering::SeqCst),
            entered.load(Ordering::SeqCst),
        );
        assert_eq!(after, (3, 2), "captured and entered once more");
        drop(occupied.release());
    });
}

#[test]
fn a_job_on_the_pools_own_worker_runs_the_next_one_itself() {
    with_timeout(LONG, || {
        // The only worker runs this job; it fills the queue, then its own
        // submit finds no room and runs the job right there, on the worker.
        let pool = Arc::new(builder("rh-nested").build().expect("valid pool"));
        let inner = Arc::clone(&pool);
        let outer = pool
            .submit(move |_ctx| {
                let queued = inner.try_submit(|_ctx| 1).expect("room for one");
                let here = inner
                    .submit_or_run_here(|_ctx| thread::current().id())
                    .expect("accepted");
                (thread::current().id(), here.join(), queued)
            })
            .expect("accepted");
        let (worker, here, queued) = outer.join().expect("ran");
        assert_eq!(here, Ok(worker));
        assert_eq!(queued.join(), Ok(1));
        let pool = Arc::into_inner(pool).expect("the job is done with it");
        let report = pool.shutdown_now();
        assert_eq!(
            (report.submitted, report.ran, report.never_ran),
            (3, 3, 0),
            "{report:?}"
        );
    });
}

/// Fills the dispatcher of a `builder` pool (one worker, room for one
/// routed job) behind a job that holds the worker until `gate` opens: the
/// routed job queued is `route`'s, and reports the thread it ran on.
fn occupy_board(
    pool: &ThreadPool,
    gate: &Gate,
    route: impl FnOnce(&ThreadPool) -> Option<JobHandle<ThreadId>>,
) -> (JobHandle<()>, JobHandle<ThreadId>) {
    let busy = occupy_worker(pool, gate);
    let queued = route(pool).expect("room for one routed job");
    (busy, queued)
}

#[test]
fn a_lane_job_runs_on_the_caller_when_the_dispatcher_is_full() {
    with_timeout(LONG, || {
        let pool = builder("rh-lane").build().expect("valid pool");
        let gate = Gate::new();
        let background = pool.lane(Lane::Background);
        let (busy, queued) = occupy_board(&pool, &gate, |pool| {
            pool.lane(Lane::Background)
                .try_submit(|_ctx| thread::current().id())
                .ok()
        });
        let caller = thread::current().id();
        let here = background
            .submit_or_run_here(|_ctx| thread::current().id())
            .expect("accepted");
        assert!(here.is_finished(), "run before the call returned");
        assert_eq!(here.join(), Ok(caller));
        let (tx, rx) = bounded(1);
        background
            .execute_or_run_here(move || tx.send(thread::current().id()).expect("the test waits"))
            .expect("accepted");
        assert_eq!(rx.try_recv(), Ok(caller), "run before the call returned");
        // Its ticket came back: nothing counts as running in the lane.
        assert_eq!(pool.stats().lane(Lane::Background).running, 0);
        gate.open();
        busy.join().expect("released");
        assert_ne!(
            queued.join(),
            Ok(caller),
            "the queued job ran on the worker"
        );
        let stats = pool.stats();
        assert_eq!((stats.submitted, stats.completed), (4, 4), "{stats}");
        pool.join();
    });
}

#[test]
fn a_keyed_job_of_an_idle_key_runs_here_and_holds_its_key() {
    with_timeout(LONG, || {
        let pool = Arc::new(builder("rh-key").build().expect("valid pool"));
        let gate = Gate::new();
        let (busy, other) = occupy_board(&pool, &gate, |pool| {
            pool.keyed("other")
                .try_submit(|_ctx| thread::current().id())
                .ok()
        });
        let (second_tx, second_started) = bounded(1);
        let first_done = Arc::new(AtomicBool::new(false));
        let (inner_pool, inner_gate, done) =
            (Arc::clone(&pool), gate.clone(), Arc::clone(&first_done));
        let caller = thread::current().id();
        let here = pool
            .keyed("mine")
            .submit_or_run_here(move |_ctx| {
                assert_eq!(thread::current().id(), caller, "run on the caller");
                // The worker comes free, runs the other key's job and
                // makes room: this key's next job queues behind this one.
                inner_gate.open();
                let saw = Arc::clone(&done);
                let second = inner_pool
                    .keyed("mine")
                    .submit(move |_ctx| {
                        let _ = second_tx.send(());
                        saw.load(Ordering::SeqCst)
                    })
                    .expect("room once the worker is free");
                assert_ne!(other.join(), Ok(caller), "the other key ran on the worker");
                // The worker is idle now, and must not take the key's
                // second job while this one runs.
                assert!(
                    second_started
                        .recv_timeout(Duration::from_millis(200))
                        .is_err(),
                    "the key's second job started while its first ran"
                );
                done.store(true, Ordering::SeqCst);
                second
            })
            .expect("accepted");
        let second = here.join().expect("ran here");
        assert_eq!(
            second.join(),
            Ok(true),
            "the second started after the first ended"
        );
        busy.join().expect("released");
        let pool = Arc::into_inner(pool).expect("the only reference");
        assert_eq!(pool.stats().lane(Lane::Normal).running, 0);
        pool.join();
    });
}

#[test]
fn a_keyed_job_whose_key_is_busy_waits_for_room_instead_of_running_here() {
    with_timeout(LONG, || {
        let pool = Arc::new(builder("rh-key-busy").build().expect("valid pool"));
        let gate = Gate::new();
        let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let first_order = Arc::clone(&order);
        let (busy, first) = occupy_board(&pool, &gate, move |pool| {
            pool.keyed("mine")
                .try_submit(move |_ctx| {
                    first_order.lock().push(1);
                    thread::current().id()
                })
                .ok()
        });
        let submitter = thread::Builder::new()
            .name("rh-key-waiter".into())
            .spawn({
                let (pool, order) = (Arc::clone(&pool), Arc::clone(&order));
                move || {
                    let caller = thread::current().id();
                    pool.keyed("mine")
                        .submit_or_run_here(move |_ctx| {
                            order.lock().push(2);
                            thread::current().id() != caller
                        })
                        .expect("accepted")
                }
            })
            .expect("spawn the submitter");
        // Its key has a job queued: it may not run ahead of it, so it
        // waits for room, asleep, while the worker stays held.
        assert!(wait_until(LONG, || thread_sleeping("rh-key-waiter")));
        gate.open();
        let second = submitter.join().expect("the submitter returns");
        assert_eq!(second.join(), Ok(true), "run on the worker, not its caller");
        assert_ne!(first.join(), Ok(thread::current().id()));
        assert_eq!(*order.lock(), [1, 2]);
        busy.join().expect("released");
        Arc::into_inner(pool).expect("the only reference").join();
    });
}

#[test]
fn a_keyed_job_on_the_only_worker_queues_behind_its_key_instead_of_waiting() {
    // Found in review: waiting for room that only this worker could make.
    with_timeout(LONG, || {
        let pool = Arc::new(builder("rh-key-worker").build().expect("valid pool"));
        let inner = Arc::clone(&pool);
        let outer = pool
            .submit(move |_ctx| {
                let key = inner.keyed("k");
                let first = key.try_submit(|_ctx| 1).expect("the board's one place");
                let second = key.submit_or_run_here(|_ctx| 2).expect("accepted");
                (first, second)
            })
            .expect("accepted");
        let (first, second) = outer.join().expect("returned without waiting");
        assert_eq!((first.join(), second.join()), (Ok(1), Ok(2)));
        Arc::into_inner(pool).expect("the only reference").join();
    });
}

#[test]
fn a_keyed_job_inside_its_own_key_queues_behind_it_instead_of_waiting() {
    with_timeout(LONG, || {
        let pool = Arc::new(
            ThreadPool::builder()
                .workers(4)
                .key_queue_limit(1)
                .build()
                .expect("valid pool"),
        );
        let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (inner, log) = (Arc::clone(&pool), Arc::clone(&order));
        let outer = pool
            .keyed("k")
            .submit(move |_ctx| {
                let key = inner.keyed("k");
                let one = Arc::clone(&log);
                let first = key
                    .try_submit(move |_ctx| one.lock().push(1))
                    .expect("room for one behind this job");
                // Its key is full, and held by this job: no room comes
                // until this returns.
                let two = Arc::clone(&log);
                let second = key
                    .submit_or_run_here(move |_ctx| two.lock().push(2))
                    .expect("accepted");
                log.lock().push(0);
                (first, second)
            })
            .expect("accepted");
        let (first, second) = outer.join().expect("returned without waiting");
        assert_eq!((first.join(), second.join()), (Ok(()), Ok(())));
        assert_eq!(*order.lock(), [0, 1, 2], "in the key's order");
        Arc::into_inner(pool).expect("the only reference").join();
    });
}
