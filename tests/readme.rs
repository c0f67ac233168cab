//! The README's promises, checked: one test per bullet of "What you get",
//! each exercising the behaviour the bullet claims through the public API,
//! and [`every_readme_claim_has_a_test`], which fails when a bullet is added
//! or renamed without a test here, or when a "Guarantees" row names a test
//! file or test function that does not exist (#15).
//!
//! Claims that need a process of their own or long timing runs are left to
//! their own files: `BRIGADE_WORKERS` (`tests/sizing_env.rs`, the
//! environment is process-global), the adaptive controller's steering
//! (`tests/adaptive.rs`; here only its bounds) and `map`'s chunk growth
//! (`tests/map.rs`).

mod common;

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use brigade::{
    AcquireError, Backoff, Cancelled, Context, DEFAULT_READ_AHEAD, ErrGroup, Every, GROUP_THREADS,
    GroupError, JobError, JobHandle, JobOutcome, Lane, PanicPolicy, Pipeline, PipelineError,
    RateError, Retry, RetryError, Semaphore, Sizing, SpawnError, StageError, SubmitError,
    ThreadPool, TryMapError, TrySubmitError, WorkerPool, sizing,
};
use crossbeam_channel::{RecvTimeoutError, TryRecvError};
use parking_lot::Mutex;

use common::{
    Gate, LONG, occupy_worker, thread_names, thread_sleeping, threads_named, wait_until,
    with_timeout,
};

const README: &str = include_str!("../README.md");

/// The bullets of "## What you get" that this file has a test for.
const WHAT_YOU_GET: &[&str] = &[
    "Context",
    "ThreadPool",
    "Async",
    "Supervision",
    "Shutdown",
    "Sizing",
    "WorkerPool",
    "map / try_map / scope",
    "Pipeline",
    "ErrGroup",
    "Semaphore",
    "RateLimiter",
    "Retry / Backoff",
    "Stats",
    "Resizing",
    "Idle workers leave",
    "Context propagation",
    "Keys and priority lanes",
    "Later and again",
];

/// The invariants of "## Guarantees" whose "checked by" column is verified.
const GUARANTEES: &[&str] = &[
    "No job is lost.",
    "No thread outlives its pool; no deadlock on drop",
    "A panic never takes the pool down",
    "Cancellation is observed at every blocking point",
    "Every front door keeps the same promises",
    "Bad input is an error, never a panic or a hang.",
];

/// A one-worker pool with room for `capacity` queued jobs, its worker held
/// by a job until the returned gate opens.
fn held_pool(prefix: &str, capacity: usize) -> (ThreadPool, Gate, JobHandle<()>) {
    let pool = ThreadPool::builder()
        .workers(1)
        .queue_capacity(capacity)
        .thread_name(prefix)
        .build()
        .expect("build");
    let gate = Gate::new();
    let blocker = occupy_worker(&pool, &gate);
    (pool, gate, blocker)
}

/// Drops `pool` on a thread named `name` and opens `gate` only once that
/// thread is asleep inside the drop, so the jobs queued behind the gate are
/// still queued when the drop begins.
fn drop_then_open<P: Send>(pool: P, gate: &Gate, name: &str) {
    thread::scope(|s| {
        let dropper = thread::Builder::new()
            .name(name.to_owned())
            .spawn_scoped(s, move || drop(pool))
            .expect("spawn the dropper");
        assert!(wait_until(LONG, || thread_sleeping(name)), "drop blocked");
        gate.open();
        dropper.join().expect("the drop did not panic");
    });
}

#[test]
fn context() {
    // check() errs after cancel, with the reason; sleep wakes early on a
    // cancel; done() disconnects in a select!; deadlines share one timer
    // thread.
    with_timeout(LONG, || {
        let parent = Context::new();
        let child = parent.child();
        assert_eq!(child.check(), Ok(()));
        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        let sleeper = thread::spawn({
            let child = child.clone();
            move || {
                started_tx.send(()).expect("the test waits");
                let start = Instant::now();
                (child.sleep(Duration::from_secs(3600)), start.elapsed())
            }
        });
        started_rx.recv_timeout(LONG).expect("the sleeper started");
        let never = crossbeam_channel::never::<()>();
        parent.cancel();
        let (slept, elapsed) = sleeper.join().expect("no panic");
        assert_eq!(slept, Err(Cancelled::Canceled));
        assert!(elapsed < LONG, "sleep woke after {elapsed:?}");
        assert_eq!(child.check(), Err(Cancelled::Canceled));
        brigade::select! {
            recv(child.done()) -> msg => assert!(msg.is_err(), "done() disconnects"),
            recv(never) -> _ => unreachable!(),
            default(LONG) => panic!("done() did not fire"),
        }

        let timed: Vec<Context> = (1..=50)
            .map(|ms| Context::new().with_timeout(Duration::from_millis(ms)))
            .collect();
        for ctx in &timed {
            assert!(matches!(
                ctx.done().recv_timeout(LONG),
                Err(RecvTimeoutError::Disconnected)
            ));
            assert_eq!(ctx.check(), Err(Cancelled::DeadlineExceeded));
        }
        let timers = thread_names()
            .iter()
            .filter(|name| *name == "brigade-timer")
            .count();
        assert!(timers <= 1, "{timers} timer threads");
    });
}

#[test]
fn thread_pool() {
    // execute and submit run jobs; a handle joins, times out its join,
    // cancels a queued job and reports is_finished; try_submit and
    // submit_timeout hand the job back on a full queue; a blocked submit
    // wakes when the pool is cancelled.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .expect("build");
        let (tx, rx) = crossbeam_channel::bounded(1);
        pool.execute(move || tx.send(1).expect("the test waits"))
            .expect("execute");
        assert_eq!(rx.recv_timeout(LONG), Ok(1));
        let answer = pool.submit(|_ctx| 6 * 7).expect("submit");
        assert_eq!(answer.join(), Ok(42));

        let gate = Gate::new();
        let mut blocker = occupy_worker(&pool, &gate);
        assert_eq!(blocker.join_timeout(Duration::from_millis(1)), None);
        assert!(!blocker.is_finished());
        let queued = pool.try_submit(|_ctx| 1).expect("room for one");
        queued.cancel();

        let err = pool.try_submit(|_ctx| 7).unwrap_err();
        assert!(matches!(err, TrySubmitError::Full(_)));
        assert_eq!((err.into_inner())(&Context::background()), 7);
        let err = pool
            .submit_timeout(|_ctx| 8, Duration::from_millis(10))
            .unwrap_err();
        assert!(matches!(err, TrySubmitError::Full(_)));
        assert_eq!((err.into_inner())(&Context::background()), 8);

        let blocked = thread::scope(|s| {
            let submitter = thread::Builder::new()
                .name("readme-submit".into())
                .spawn_scoped(s, || pool.submit(|_ctx| 9))
                .expect("spawn");
            assert!(wait_until(LONG, || thread_sleeping("readme-submit")));
            pool.context().cancel();
            submitter.join().expect("no panic")
        });
        let err = blocked.unwrap_err();
        assert!(matches!(err, SubmitError::Cancelled(_)));
        assert_eq!((err.into_inner())(&Context::background()), 9);

        gate.open();
        assert_eq!(queued.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        assert!(wait_until(LONG, || blocker.is_finished()));
    });
}

/// A waker that remembers whether it was woken.
#[derive(Default)]
struct Woken(AtomicBool);

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Woken {
    fn waker() -> (Arc<Self>, Waker) {
        let woken = Arc::new(Self::default());
        (Arc::clone(&woken), Waker::from(woken))
    }

    fn was_woken(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A single-threaded tokio runtime, one of the executors that can poll
/// brigade's futures.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
}

#[test]
fn async_programs() {
    // submit_async on a full queue is Pending, and the worker that frees a
    // slot wakes it; close wakes it with the job handed back; a handle is
    // a Future.
    with_timeout(LONG, || {
        let (pool, gate, blocker) = held_pool("rasync", 1);
        let queued = pool.submit(|_ctx| 1u8).expect("room for one");
        let (woken, waker) = Woken::waker();
        let mut cx = TaskContext::from_waker(&waker);
        let mut waiting = pin!(pool.submit_async(|_ctx| 2u8));
        assert!(waiting.as_mut().poll(&mut cx).is_pending(), "queue full");
        gate.open();
        assert!(wait_until(LONG, || woken.was_woken()));
        let Poll::Ready(Ok(handle)) = waiting.as_mut().poll(&mut cx) else {
            panic!("a slot was freed, yet the submit did not resolve");
        };
        runtime().block_on(async {
            assert_eq!(queued.await, Ok(1));
            assert_eq!(handle.await, Ok(2));
            assert_eq!(blocker.await, Ok(()));
        });
    });
    with_timeout(LONG, || {
        let (pool, gate, blocker) = held_pool("rasync", 1);
        let _queued = pool.submit(|_ctx| 1u8).expect("room for one");
        let (woken, waker) = Woken::waker();
        let mut cx = TaskContext::from_waker(&waker);
        let mut waiting = pin!(pool.submit_async(|_ctx| 3u8));
        assert!(waiting.as_mut().poll(&mut cx).is_pending(), "queue full");
        pool.close();
        assert!(wait_until(LONG, || woken.was_woken()), "close woke it");
        let Poll::Ready(Err(SubmitError::Closed(job))) = waiting.as_mut().poll(&mut cx) else {
            panic!("a closed pool did not hand the job back");
        };
        assert_eq!(job(&Context::background()), 3);
        gate.open();
        assert_eq!(blocker.join(), Ok(()));
    });
}

#[test]
fn async_drop_and_completion_order() {
    // A dropped handle detaches (the job runs on); a dropped cancel_on_drop
    // keeps a queued job from starting and cancels a running one;
    // Completions::next_async yields in completion order.
    with_timeout(LONG, || {
        let (pool, gate, blocker) = held_pool("rasyncdrop", 2);
        let ran = Arc::new(AtomicUsize::new(0));
        let job = |ran: &Arc<AtomicUsize>| {
            let ran = Arc::clone(ran);
            move |_ctx: &Context| ran.fetch_add(1, Ordering::SeqCst)
        };
        drop(pool.submit(job(&ran)).expect("room"));
        drop(pool.submit(job(&ran)).expect("room").cancel_on_drop());
        gate.open();
        assert_eq!(blocker.join(), Ok(()));
        pool.join();
        assert_eq!(ran.load(Ordering::SeqCst), 1, "only the detached job ran");

        let pool = ThreadPool::builder().workers(2).build().expect("build");
        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        let (slept_tx, slept_rx) = crossbeam_channel::bounded(1);
        let running = pool
            .submit(move |ctx| {
                started_tx.send(()).expect("the test waits");
                slept_tx
                    .send(ctx.sleep(Duration::from_secs(3600)))
                    .expect("the test waits");
            })
            .expect("submit");
        let guard = running.cancel_on_drop();
        started_rx.recv_timeout(LONG).expect("the job started");
        let gate = Gate::new();
        let mut set = brigade::Completions::new();
        set.push(
            pool.submit({
                let gate = gate.clone();
                move |_ctx| gate.wait()
            })
            .expect("submit"),
        );
        drop(guard);
        assert_eq!(slept_rx.recv_timeout(LONG), Ok(Err(Cancelled::Canceled)));
        set.push(pool.submit(|_ctx| ()).expect("submit"));
        runtime().block_on(async {
            assert_eq!(set.next_async().await, Some((1, Ok(()))));
            gate.open();
            assert_eq!(set.next_async().await, Some((0, Ok(()))));
            assert_eq!(set.next_async().await, None);
        });
        pool.join();
    });
}

/// Captures `log` records, to see that a caught panic is logged.
struct Captured(Mutex<Vec<String>>);

impl log::Log for Captured {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            self.0.lock().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

static LOGGED: Captured = Captured(Mutex::new(Vec::new()));

#[test]
fn supervision() {
    // A panic is reported on its handle with its message and location, logged and
    // counted; a fresh thread replaces the worker. CancelPool fails fast.
    with_timeout(LONG, || {
        log::set_logger(&LOGGED).expect("the only logger of this test binary");
        log::set_max_level(log::LevelFilter::Warn);
        let pool = ThreadPool::builder().workers(1).build().expect("build");
        let thread_id = |pool: &ThreadPool| {
            let id = pool.submit(|_ctx| thread::current().id()).expect("submit");
            id.join().expect("ran")
        };
        let before = thread_id(&pool);
        let bad = pool
            .submit(|_ctx| -> u8 { panic!("readme supervision boom") })
            .expect("submit");
        let Err(JobError::Panicked(panic)) = bad.join() else {
            panic!("the job did not panic")
        };
        assert_eq!(panic.message(), "readme supervision boom");
        let at = panic.location().expect("the location of the panic");
        assert_eq!(at.file(), file!());
        assert_ne!(thread_id(&pool), before, "the worker was replaced");
        // The retiring worker counts the respawn, and itself out, just
        // after its replacement starts.
        let replaced = || {
            let stats = pool.stats();
            (stats.workers, stats.panicked, stats.respawned) == (1, 1, 1)
        };
        assert!(wait_until(LONG, replaced), "{}", pool.stats());
        assert!(
            LOGGED
                .0
                .lock()
                .iter()
                .any(|line| line.contains("readme supervision boom")
                    && line.contains(&format!(" at {at}"))),
            "the panic was logged with its location"
        );

        let strict = ThreadPool::builder()
            .workers(1)
            .panic_policy(PanicPolicy::CancelPool)
            .build()
            .expect("build");
        strict
            .execute(|| panic!("readme fail-fast"))
            .expect("execute");
        assert!(wait_until(LONG, || strict.context().is_done()));
        assert!(matches!(
            strict.submit(|_ctx| 0),
            Err(SubmitError::Cancelled(_))
        ));
    });
}

#[test]
fn shutdown() {
    // Every pool has the set: close() through &self stops intake, join()
    // drains, shutdown_now() cancels and reports what never ran,
    // shutdown_timeout(d) drains until d and then cancels; dropping a
    // ThreadPool or a WorkerPool drains and joins, leaving no thread.
    with_timeout(LONG, || {
        let shared = Arc::new(ThreadPool::builder().workers(1).build().expect("build"));
        thread::spawn({
            let shared = Arc::clone(&shared);
            move || shared.close()
        })
        .join()
        .expect("no panic");
        assert!(matches!(
            shared.submit(|_ctx| ()),
            Err(SubmitError::Closed(_))
        ));

        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        let typed = WorkerPool::builder()
            .workers(1)
            .build(move |ctx, n: u32| {
                if n == 0 {
                    started_tx.send(()).expect("the test waits");
                    let _ = ctx.sleep(Duration::from_secs(3600));
                }
                n
            })
            .expect("build");
        for n in 0..3 {
            typed.submit(n).expect("submit");
        }
        started_rx.recv_timeout(LONG).expect("started");
        typed.close();
        assert!(matches!(typed.submit(9), Err(SubmitError::Closed(9))));
        let left = typed.shutdown_now();
        let mut never_ran: Vec<u64> = left.unprocessed.iter().map(|(i, _)| *i).collect();
        never_ran.sort_unstable();
        assert_eq!(never_ran, [1, 2]);
        let typed = WorkerPool::builder()
            .workers(1)
            .build(|_ctx, n: u32| n)
            .expect("build");
        typed.submit(1).expect("submit");
        assert!(typed.shutdown_timeout(LONG).is_empty(), "drained in time");
        let ran = Arc::new(AtomicUsize::new(0));
        let count = |ran: &Arc<AtomicUsize>| {
            let ran = Arc::clone(ran);
            move || {
                ran.fetch_add(1, Ordering::SeqCst);
            }
        };

        let (pool, gate, _blocker) = held_pool("rjoin", 8);
        for _ in 0..5 {
            pool.execute(count(&ran)).expect("execute");
        }
        gate.open();
        pool.join();
        assert_eq!(ran.swap(0, Ordering::SeqCst), 5);

        let pool = ThreadPool::builder().workers(1).build().expect("build");
        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        let running = pool
            .submit(move |ctx| {
                started_tx.send(()).expect("the test waits");
                ctx.sleep(Duration::from_secs(3600))
            })
            .expect("submit");
        started_rx.recv_timeout(LONG).expect("started");
        let queued: Vec<_> = (0..3)
            .map(|_| pool.submit(|_ctx| ()).expect("submit"))
            .collect();
        let report = pool.shutdown_now();
        assert_eq!((report.submitted, report.ran, report.never_ran), (4, 1, 3));
        assert!(!report.drained);
        assert!(matches!(running.join(), Err(JobError::Cancelled(_))));
        for handle in queued {
            assert_eq!(handle.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        }

        let pool = ThreadPool::builder().workers(1).build().expect("build");
        let stuck = pool
            .submit(|ctx| ctx.sleep(Duration::from_secs(3600)))
            .expect("submit");
        let behind = pool.submit(|_ctx| ()).expect("submit");
        let report = pool.shutdown_timeout(Duration::from_millis(50));
        assert_eq!(
            (report.ran, report.never_ran, report.drained),
            (1, 1, false)
        );
        assert!(stuck.join().is_err());
        assert!(behind.join().is_err());
        let pool = ThreadPool::builder().workers(2).build().expect("build");
        pool.execute(count(&ran)).expect("execute");
        let report = pool.shutdown_timeout(LONG);
        assert_eq!((report.never_ran, report.drained), (0, true));
        assert_eq!(ran.swap(0, Ordering::SeqCst), 1);

        let (pool, gate, _blocker) = held_pool("rdrop", 8);
        for _ in 0..5 {
            pool.execute(count(&ran)).expect("execute");
        }
        drop_then_open(pool, &gate, "rdropper");
        assert_eq!(ran.swap(0, Ordering::SeqCst), 5, "ThreadPool drop drained");
        // A joined thread can linger in /proc for a moment after its join.
        assert!(
            wait_until(LONG, || threads_named("rdrop") == 0),
            "a worker outlived its pool"
        );

        let gate = Gate::new();
        let pool = WorkerPool::builder()
            .workers(1)
            .thread_name("rwdrop")
            .build({
                let (ran, gate) = (Arc::clone(&ran), gate.clone());
                move |_ctx, n: u32| {
                    gate.wait();
                    ran.fetch_add(1, Ordering::SeqCst);
                    n
                }
            })
            .expect("build");
        for n in 0..5 {
            pool.submit(n).expect("submit");
        }
        assert!(wait_until(LONG, || pool.stats().queued == 4));
        drop_then_open(pool, &gate, "rwdropper");
        assert_eq!(ran.load(Ordering::SeqCst), 5, "WorkerPool drop drained");
        assert!(
            wait_until(LONG, || threads_named("rwdrop") == 0),
            "a worker outlived its pool"
        );
    });
}

#[test]
fn sizing() {
    // io_bound is Little's Law, ⌈λ·W⌉; mixed() is twice cpu_bound().
    // (BRIGADE_WORKERS is process-global, so tests/sizing_env.rs checks it
    // in a process of its own.)
    assert_eq!(sizing::io_bound(500.0, Duration::from_millis(200)), Ok(100));
    assert_eq!(sizing::io_bound(10.0, Duration::from_millis(250)), Ok(3));
    assert!(sizing::cpu_bound() >= 1);
    assert_eq!(sizing::mixed(), 2 * sizing::cpu_bound());
    let pool = ThreadPool::builder()
        .sizing(Sizing::IoBound {
            throughput_per_sec: 50.0,
            latency: Duration::from_millis(100),
        })
        .build()
        .expect("build");
    assert_eq!(pool.stats().workers, 5);
}

#[test]
fn worker_pool() {
    // Typed jobs in, a bounded results channel out; close() drains; stop()
    // does not block on a consumer who never reads, and join() hands back
    // what never ran; ordered() delivers in submission order.
    with_timeout(LONG, || {
        let pool = WorkerPool::builder()
            .workers(2)
            .results_capacity(8)
            .build(|_ctx, word: &'static str| word.len())
            .expect("build");
        assert_eq!(pool.results().capacity(), Some(8));
        for word in ["a", "bb", "ccc"] {
            pool.submit(word).expect("submit");
        }
        pool.close();
        let mut lens: Vec<usize> = pool
            .results()
            .iter()
            .map(|out| out.result.expect("ran"))
            .collect();
        lens.sort_unstable();
        assert_eq!(lens, [1, 2, 3]);

        let pool = WorkerPool::builder()
            .workers(1)
            .results_capacity(1)
            .build(|_ctx, n: u64| n)
            .expect("build");
        for n in 0..4 {
            pool.submit(n).expect("submit");
        }
        assert!(wait_until(LONG, || pool.results().is_full()
            && pool.stats().queued == 2));
        pool.stop();
        let delivered = pool.results().clone();
        let left = pool.join();
        let unprocessed: BTreeSet<u64> = left.unprocessed.iter().map(|(i, _)| *i).collect();
        assert!(unprocessed.is_superset(&BTreeSet::from([2, 3])));
        let mut seen: BTreeSet<u64> = delivered.try_iter().map(|out| out.index).collect();
        seen.extend(&unprocessed);
        seen.extend(left.undelivered.iter().map(|out| out.index));
        assert_eq!(
            seen,
            BTreeSet::from([0, 1, 2, 3]),
            "every job accounted for"
        );

        let gate = Gate::new();
        let later_done = Arc::new(AtomicUsize::new(0));
        let pool = WorkerPool::builder()
            .workers(4)
            .ordered()
            .build({
                let (gate, later_done) = (gate.clone(), Arc::clone(&later_done));
                move |_ctx, n: u64| {
                    if n == 0 {
                        gate.wait();
                    } else {
                        later_done.fetch_add(1, Ordering::SeqCst);
                    }
                    n
                }
            })
            .expect("build");
        for n in 0..20 {
            pool.submit(n).expect("submit");
        }
        assert!(wait_until(LONG, || later_done.load(Ordering::SeqCst) >= 3));
        assert_eq!(pool.results().try_recv(), Err(TryRecvError::Empty));
        gate.open();
        pool.close();
        let order: Vec<u64> = pool.results().iter().map(|out| out.index).collect();
        assert_eq!(order, (0..20).collect::<Vec<_>>());
    });
}

#[test]
fn map_try_map_scope() {
    // map yields in input order and reads at most DEFAULT_READ_AHEAD items
    // ahead of an endless input; each item is a job (per-job timeout,
    // stats); try_map fails fast between items; scope jobs borrow the stack.
    with_timeout(LONG, || {
        assert_eq!(DEFAULT_READ_AHEAD, 8_192);
        let pool = ThreadPool::builder().workers(2).build().expect("build");
        let doubled = pool.map(0..1_000u64, |x| x * 2).collect_vec();
        assert_eq!(doubled, Ok((0..1_000).map(|x| x * 2).collect::<Vec<_>>()));

        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&pulled);
        let endless = (0u64..).inspect(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let first: Vec<u64> = pool
            .map(endless, |x| x + 1)
            .take(5)
            .map(Result::unwrap)
            .collect();
        assert_eq!(first, [1, 2, 3, 4, 5]);
        let pulled = pulled.load(Ordering::SeqCst);
        assert!(pulled <= 5 + DEFAULT_READ_AHEAD, "pulled {pulled} items");

        let timed = ThreadPool::builder()
            .workers(2)
            .job_timeout(Duration::from_millis(20))
            .build()
            .expect("build");
        let results: Vec<_> = timed
            .map(0..3u64, |x| {
                if x == 1 {
                    // Runs well past the 20 ms per-job timeout.
                    thread::sleep(Duration::from_millis(200));
                }
                x
            })
            .chunk_size(1)
            .collect();
        assert_eq!(results, [Ok(0), Err(JobError::TimedOut), Ok(2)]);
        let stats = timed.stats();
        assert_eq!(
            (stats.submitted, stats.completed, stats.timed_out),
            (3, 2, 1)
        );

        let single = ThreadPool::builder().workers(1).build().expect("build");
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let result = single.try_map(0..1_000u64, move |x| {
            counter.fetch_add(1, Ordering::SeqCst);
            if x == 3 { Err("three") } else { Ok(x) }
        });
        assert_eq!(
            result,
            Err(TryMapError::Failed {
                index: 3,
                error: "three"
            })
        );
        assert_eq!(calls.load(Ordering::SeqCst), 4, "no item after the failure");

        let mut totals = [0u64; 4];
        let data: Vec<u64> = (1..=400).collect();
        pool.scope(|s| {
            for (part, total) in data.chunks(100).zip(totals.iter_mut()) {
                s.spawn(move |_ctx| *total = part.iter().sum());
            }
        });
        assert_eq!(totals, [5_050, 15_050, 25_050, 35_050]);
    });
}

#[test]
fn pipeline() {
    // Stages with their own workers and bounded buffers close in turn when
    // the input ends; output can be ordered; each stage has stats; the
    // first error fails fast unless errors are collected.
    with_timeout(LONG, || {
        let ctx = Context::new();
        let out = Pipeline::<u32, u32, String>::new(&ctx)
            .stage("double", 3, |_ctx, x: u32| Ok(x * 2))
            .buffer(2)
            .stage("inc", 2, |_ctx, x: u32| Ok(x + 1))
            .ordered()
            .build()
            .expect("valid pipeline")
            .run(0..50)
            .expect("no stage fails");
        assert_eq!(out.outputs, (0..50).map(|x| x * 2 + 1).collect::<Vec<_>>());
        let names: Vec<&str> = out.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["double", "inc"]);
        assert!(out.stages.iter().all(|s| s.stats.completed == 50));

        // One worker held at a gate and a buffer of one: the feeding caller
        // blocks with at most 3 items taken (running, buffered, next).
        let gate = Gate::new();
        let pulled = Arc::new(AtomicUsize::new(0));
        let feeder = thread::Builder::new()
            .name("readme-pipe".into())
            .spawn({
                let (ctx, gate, pulled) = (ctx.clone(), gate.clone(), Arc::clone(&pulled));
                move || {
                    let input = (0..100u32).inspect(move |_| {
                        pulled.fetch_add(1, Ordering::SeqCst);
                    });
                    Pipeline::<u32, u32, String>::new(&ctx)
                        .stage("held", 1, move |_ctx, x: u32| {
                            gate.wait();
                            Ok(x)
                        })
                        .buffer(1)
                        .build()
                        .expect("valid pipeline")
                        .run(input)
                }
            })
            .expect("spawn");
        assert!(wait_until(LONG, || pulled.load(Ordering::SeqCst) >= 2
            && thread_sleeping("readme-pipe")));
        let taken = pulled.load(Ordering::SeqCst);
        assert!(taken <= 3, "{taken} items taken past a full buffer");
        gate.open();
        let out = feeder.join().expect("no panic").expect("no stage fails");
        assert_eq!(out.outputs.len(), 100);

        let seven = |_ctx: &Context, x: u32| {
            if x == 7 {
                Err("seven".to_owned())
            } else {
                Ok(x)
            }
        };
        let collected = Pipeline::new(&ctx)
            .stage("check", 2, seven)
            .collect_errors()
            .build()
            .expect("valid pipeline")
            .run(0..20)
            .expect("errors are collected");
        assert_eq!(collected.outputs.len(), 19);
        assert_eq!(collected.failures.len(), 1);
        assert_eq!(collected.failures[0].index, 7);
        match Pipeline::new(&ctx)
            .stage("check", 2, seven)
            .build()
            .expect("valid pipeline")
            .run(0..20)
        {
            Err(PipelineError::Stage(failure)) => {
                assert_eq!((failure.stage.as_str(), failure.index), ("check", 7));
                assert_eq!(failure.error, StageError::Failed("seven".to_owned()));
            }
            other => panic!("expected fail-fast, got {other:?}"),
        }
    });
}

#[test]
fn err_group() {
    // The first error cancels the group and is returned; limit(n) bounds
    // how many run, GROUP_THREADS the threads without one; panics are
    // reported; a spawn refused by cancellation
    // makes wait() say Cancelled; the scoped form borrows the stack;
    // collect_all and first_success do what the bullet says.
    with_timeout(LONG, || {
        let group = ErrGroup::<&str>::new(&Context::new());
        group
            .spawn(|ctx| {
                assert!(ctx.done().recv_timeout(LONG).is_err(), "cancelled");
                Err("second")
            })
            .expect("spawn");
        group.spawn(|_ctx| Err("first")).expect("spawn");
        assert_eq!(group.wait(), Err(GroupError::Failed("first")));

        let gate = Gate::new();
        let group = ErrGroup::<()>::new(&Context::new())
            .limit(2)
            .expect("limit");
        for _ in 0..2 {
            let gate = gate.clone();
            group
                .spawn(move |_ctx| {
                    gate.wait();
                    Ok(())
                })
                .expect("spawn");
        }
        assert!(matches!(
            group.try_spawn(|_ctx| Ok(())),
            Err(SpawnError::Full(_))
        ));
        gate.open();
        for _ in 0..20 {
            group.spawn(|_ctx| Ok(())).expect("spawn");
        }
        assert!(group.threads() <= 2, "{} threads", group.threads());
        assert_eq!(group.wait(), Ok(()));

        // Without a limit, at most GROUP_THREADS threads; more tasks queue
        // and spawn does not wait.
        let gate = Gate::new();
        let group = ErrGroup::<()>::new(&Context::new());
        for _ in 0..GROUP_THREADS + 2 {
            let gate = gate.clone();
            group
                .spawn(move |_ctx| {
                    gate.wait();
                    Ok(())
                })
                .expect("spawn");
        }
        assert!(wait_until(LONG, || group.threads() == GROUP_THREADS));
        gate.open();
        assert_eq!(group.wait(), Ok(()));

        let group = ErrGroup::<()>::new(&Context::new());
        group
            .spawn(|_ctx| panic!("readme group boom"))
            .expect("spawn");
        assert_eq!(
            group.wait(),
            Err(GroupError::Panicked("readme group boom".into()))
        );

        let parent = Context::new();
        parent.cancel();
        let group = ErrGroup::<()>::new(&parent);
        assert!(matches!(
            group.spawn(|_ctx| Ok(())),
            Err(SpawnError::Cancelled(_))
        ));
        assert_eq!(
            group.wait(),
            Err(GroupError::Cancelled(Cancelled::Canceled))
        );

        let mut lens = [0usize; 3];
        let words = ["alpha", "be", "c"];
        ErrGroup::<()>::new(&Context::new())
            .scope(|g| {
                for (word, len) in words.iter().zip(lens.iter_mut()) {
                    let spawned = g.spawn(move |_ctx| {
                        *len = word.len();
                        Ok(())
                    });
                    assert!(spawned.is_ok());
                }
            })
            .expect("no task fails");
        assert_eq!(lens, [5, 2, 1]);

        // Two more modes: collect_all returns every failure with its
        // task's index; first_success returns the first Ok and cancels the
        // rest.
        let group = ErrGroup::<&str>::collect_all(&Context::new())
            .limit(1)
            .expect("limit");
        for n in 0..4 {
            group
                .spawn(move |_ctx| if n % 2 == 0 { Err("even") } else { Ok(()) })
                .expect("a failure does not cancel a collect-all group");
        }
        let errors = group.wait().expect_err("two tasks failed");
        assert_eq!(
            errors.into_vec(),
            [
                (0, GroupError::Failed("even")),
                (2, GroupError::Failed("even"))
            ]
        );

        let cancelled = Arc::new(AtomicUsize::new(0));
        let group = ErrGroup::<&str>::first_success(&Context::new());
        let seen = Arc::clone(&cancelled);
        group
            .spawn(move |ctx| {
                let done = ctx.done().recv_timeout(LONG);
                if done == Err(RecvTimeoutError::Disconnected) {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                Ok(1)
            })
            .expect("spawn");
        group.spawn(|_ctx| Ok(2)).expect("spawn");
        assert_eq!(group.wait(), Ok(2));
        assert_eq!(
            cancelled.load(Ordering::SeqCst),
            1,
            "the loser saw the cancel"
        );
    });
}

#[test]
fn semaphore() {
    // Weighted and strictly FIFO (a large head is not overtaken by a small
    // later waiter); cancellable; timeouts; close() wakes waiters; permits
    // are 'static and release on drop.
    with_timeout(LONG, || {
        let sem = Semaphore::new(4).expect("4 permits");
        let three = sem.acquire(3).expect("open");
        let one = sem.acquire(1).expect("open");
        let queue_up = |n: usize, after: usize| {
            let shared = sem.clone();
            let waiter = thread::spawn(move || shared.acquire(n));
            assert!(wait_until(LONG, || sem.waiting() == after), "queued");
            waiter
        };
        let large = queue_up(3, 1);
        let small = queue_up(1, 2);
        drop(one);
        assert_eq!((sem.available(), sem.waiting()), (1, 2), "not overtaken");
        assert_eq!(sem.try_acquire(1).err(), Some(AcquireError::WouldBlock));
        drop(three);
        let large = large.join().expect("no panic").expect("granted");
        let small = small.join().expect("no panic").expect("granted");
        assert_eq!((large.count(), small.count()), (3, 1));

        assert_eq!(
            sem.acquire_timeout(1, Duration::from_millis(10)).err(),
            Some(AcquireError::TimedOut)
        );
        let ctx = Context::new();
        let cancelled = thread::spawn({
            let (sem, ctx) = (sem.clone(), ctx.clone());
            move || sem.acquire_ctx(&ctx, 1).err()
        });
        assert!(wait_until(LONG, || sem.waiting() == 1));
        ctx.cancel();
        assert_eq!(
            cancelled.join().expect("no panic"),
            Some(AcquireError::Cancelled(Cancelled::Canceled))
        );

        // A permit is 'static + Send: it moves to another thread and is
        // released when dropped there.
        thread::spawn(move || drop(small)).join().expect("no panic");
        assert_eq!(sem.available(), 1);
        drop(large);
        assert_eq!(sem.available(), 4);

        let hog = sem.acquire(4).expect("open");
        let closed = thread::spawn({
            let sem = sem.clone();
            move || sem.acquire(1).err()
        });
        assert!(wait_until(LONG, || sem.waiting() == 1));
        sem.close();
        assert_eq!(closed.join().expect("no panic"), Some(AcquireError::Closed));
        drop(hog);
    });
}

#[test]
fn rate_limiter() {
    // A token bucket (rate + burst), deterministic at explicit instants;
    // reservations; waits are cancellable and fail at once past a
    // deadline; a pool's workers take a token before each job starts.
    with_timeout(LONG, || {
        let t0 = Instant::now();
        let bucket = brigade::RateLimiter::new(10.0, 3).expect("valid");
        assert!(bucket.try_acquire_at(t0, 3));
        assert!(!bucket.try_acquire_at(t0, 1));
        assert!(!bucket.try_acquire_at(t0 + Duration::from_millis(99), 1));
        assert!(bucket.try_acquire_at(t0 + Duration::from_millis(100), 1));
        let reservation = bucket
            .reserve_at(t0 + Duration::from_millis(100), 1)
            .expect("within the burst");
        assert_eq!(
            reservation.delay_at(t0 + Duration::from_millis(100)),
            Duration::from_millis(100)
        );

        let slow = brigade::RateLimiter::new(1.0 / 3600.0, 1).expect("valid");
        assert!(slow.try_acquire(1));
        let soon = Context::new().with_timeout(Duration::from_secs(5));
        let start = Instant::now();
        assert!(matches!(
            slow.wait(&soon, 1),
            Err(RateError::WouldExceedDeadline { .. })
        ));
        assert!(start.elapsed() < Duration::from_secs(5), "it did not sleep");
        let ctx = Context::new();
        let waiter = thread::Builder::new()
            .name("readme-rate".into())
            .spawn({
                let (slow, ctx) = (slow.clone(), ctx.clone());
                move || slow.wait(&ctx, 1)
            })
            .expect("spawn");
        assert!(wait_until(LONG, || thread_sleeping("readme-rate")));
        ctx.cancel();
        assert_eq!(
            waiter.join().expect("no panic"),
            Err(RateError::Cancelled(Cancelled::Canceled))
        );

        let pool = ThreadPool::builder()
            .workers(2)
            .rate_limit(brigade::RateLimiter::new(1.0 / 3600.0, 2).expect("valid"))
            .build()
            .expect("build");
        let handles: Vec<_> = (0..3)
            .map(|n| pool.submit(move |_ctx| n).expect("submit"))
            .collect();
        assert!(wait_until(LONG, || pool.stats().completed == 2));
        assert!(!handles[2].is_finished(), "a third start needs a token");
        let report = pool.shutdown_now();
        assert_eq!((report.ran, report.never_ran), (2, 1));
    });
}

#[test]
fn retry_backoff() {
    // Attempts are counted; backoff is exponential, capped and jittered
    // below its ceiling; retry_if stops at permanent errors; a pause is a
    // cancellable ctx.sleep.
    with_timeout(LONG, || {
        let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(50));
        let ceilings: Vec<u128> = (1..=5).map(|n| backoff.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [10, 20, 40, 50, 50]);
        assert_eq!(backoff.jitter(false).delay(3), Duration::from_millis(40));
        assert!((1..=5).all(|n| backoff.delay(n) <= backoff.ceiling(n)));

        let retry = Retry::builder()
            .max_attempts(4)
            .backoff(Backoff::new(
                Duration::from_millis(1),
                Duration::from_millis(2),
            ))
            .retry_if(|status: &u16| *status >= 500)
            .build()
            .expect("valid");
        let ctx = Context::new();
        let mut seen = Vec::new();
        let ok = retry.run(&ctx, |_ctx, attempt| {
            seen.push(attempt);
            if attempt < 3 { Err(503) } else { Ok("body") }
        });
        assert_eq!((ok.ok(), seen), (Some("body"), vec![1, 2, 3]));
        let exhausted: Result<(), _> = retry.run(&ctx, |_ctx, _| Err(503));
        assert!(matches!(
            exhausted,
            Err(RetryError::Exhausted {
                attempts: 4,
                error: 503
            })
        ));
        let permanent: Result<(), _> = retry.run(&ctx, |_ctx, _| Err(404));
        assert_eq!(permanent.map_err(|e| e.attempts()), Err(1));

        let patient = Retry::builder()
            .max_attempts(10)
            .backoff(Backoff::new(
                Duration::from_secs(3600),
                Duration::from_secs(3600),
            ))
            .build()
            .expect("valid");
        let (failed_tx, failed_rx) = crossbeam_channel::bounded(1);
        let runner = thread::spawn({
            let ctx = ctx.clone();
            move || {
                patient.run(&ctx, |_ctx, _| {
                    failed_tx.send(()).expect("the test waits");
                    Err::<(), _>("down")
                })
            }
        });
        failed_rx.recv_timeout(LONG).expect("the first attempt ran");
        ctx.cancel();
        match runner.join().expect("no panic") {
            Err(RetryError::Cancelled {
                attempts: 1,
                reason: Cancelled::Canceled,
                last: Some("down"),
            }) => {}
            other => panic!("the backoff did not wake on cancel: {other:?}"),
        }
    });
}

#[test]
fn stats() {
    // One snapshot counts every outcome; latencies and a one-line Display;
    // on_job_done sees every job.
    with_timeout(LONG, || {
        let events = Arc::new(Mutex::new(Vec::new()));
        let pool = ThreadPool::builder()
            .workers(1)
            .on_job_done({
                let events = Arc::clone(&events);
                move |event| events.lock().push(event.outcome)
            })
            .build()
            .expect("build");
        for n in 0..5 {
            pool.submit(move |_ctx| n)
                .expect("submit")
                .join()
                .expect("ran");
        }
        let bad = pool
            .submit(|_ctx| -> u8 { panic!("readme stats boom") })
            .expect("submit");
        assert!(bad.join().is_err());
        let gate = Gate::new();
        let blocker = occupy_worker(&pool, &gate);
        let skipped = pool.submit(|_ctx| ()).expect("submit");
        skipped.cancel();
        gate.open();
        blocker.join().expect("ran");
        assert!(skipped.join().is_err());
        // Eventually-true counts: a skipped job is counted when a worker
        // dequeues it, a respawn just after the replacement starts.
        assert!(wait_until(LONG, || {
            let stats = pool.stats();
            (stats.cancelled, stats.respawned, stats.workers) == (1, 1, 1)
        }));

        let stats = pool.stats();
        assert_eq!((stats.workers, stats.submitted), (1, 8));
        assert_eq!((stats.completed, stats.failed, stats.panicked), (6, 1, 1));
        assert_eq!((stats.cancelled, stats.respawned, stats.queued), (1, 1, 0));
        assert!(stats.run_time.max >= stats.run_time.p50);
        let line = stats.to_string();
        assert!(
            !line.contains('\n') && line.contains("submitted=8"),
            "{line}"
        );
        pool.join();
        let events = events.lock();
        assert_eq!(events.len(), 8, "{events:?}");
        assert_eq!(
            events
                .iter()
                .filter(|o| **o == JobOutcome::Completed)
                .count(),
            6
        );
    });
}

#[test]
fn resizing() {
    // set_workers grows at once and shrinks idle workers first, busy ones
    // after their job; an adaptive pool starts within its bounds.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("rresize")
            .build()
            .expect("build");
        pool.set_workers(4).expect("4 workers");
        assert!(wait_until(LONG, || pool.stats().workers == 4));
        let gate = Gate::new();
        let busy = occupy_worker(&pool, &gate);
        pool.set_workers(1).expect("1 worker");
        assert!(wait_until(LONG, || pool.stats().workers == 1));
        assert!(!busy.is_finished(), "the busy worker was kept");
        gate.open();
        busy.join().expect("ran to the end");
        assert_eq!(pool.submit(|_ctx| 5).expect("submit").join(), Ok(5));
        assert!(pool.set_workers(0).is_err());
        pool.join();
        assert!(wait_until(LONG, || threads_named("rresize") == 0));

        let adaptive = ThreadPool::builder()
            .sizing(Sizing::Adaptive { min: 2, max: 4 })
            .build()
            .expect("build");
        let workers = adaptive.stats().workers;
        assert!((2..=4).contains(&workers), "{workers} workers");
    });
}

#[test]
fn idle_workers_leave() {
    // keep_alive: idle workers exit, down to no thread; the next job
    // starts one at once; an adaptive pool may then have a min of 0.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .keep_alive(Duration::from_millis(10))
            .thread_name("ridle")
            .build()
            .expect("build");
        // The count first: a thread just started may not have named itself.
        assert!(wait_until(LONG, || pool.stats().expired == 2));
        assert!(wait_until(LONG, || threads_named("ridle") == 0));
        assert_eq!(pool.submit(|_ctx| 8).expect("submit").join(), Ok(8));
        pool.join();

        let adaptive = ThreadPool::builder()
            .sizing(Sizing::Adaptive { min: 0, max: 4 })
            .keep_alive(Duration::from_millis(10))
            .build()
            .expect("min 0 with a keep-alive");
        assert!(wait_until(LONG, || adaptive.stats().workers == 0));
        assert_eq!(adaptive.submit(|_ctx| 9).expect("submit").join(), Ok(9));
    });
}

#[test]
fn keys_and_priority_lanes() {
    // A slow key holds back only its own jobs, which then run in order;
    // a High job overtakes Background jobs queued before it.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(2).build().expect("build");
        let gate = Gate::new();
        let order = Arc::new(Mutex::new(Vec::new()));
        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        let held = gate.clone();
        let slow = pool
            .keyed("slow")
            .submit(move |_ctx| {
                started_tx.send(()).expect("the test waits");
                held.wait();
            })
            .expect("submit");
        started_rx.recv_timeout(LONG).expect("the slow job started");
        for n in 0..3 {
            let order = Arc::clone(&order);
            pool.keyed("slow")
                .execute(move || order.lock().push(n))
                .expect("execute");
        }
        // One free worker, and 50 jobs of other keys all finish meanwhile.
        let others: Vec<_> = (0..50)
            .map(|k| pool.keyed(k).submit(move |_ctx| k).expect("submit"))
            .collect();
        for (k, other) in others.into_iter().enumerate() {
            assert_eq!(other.join(), Ok(k as i32));
        }
        assert!(order.lock().is_empty(), "the slow key's jobs waited");
        gate.open();
        assert_eq!(slow.join(), Ok(()));
        pool.join();
        assert_eq!(*order.lock(), [0, 1, 2]);

        let (pool, gate, blocker) = held_pool("rlanes", 8);
        let ran = Arc::new(Mutex::new(Vec::new()));
        for lane in [Lane::Background, Lane::Background, Lane::High] {
            let ran = Arc::clone(&ran);
            pool.lane(lane)
                .execute(move || ran.lock().push(lane))
                .expect("execute");
        }
        assert_eq!(pool.stats().lane(Lane::Background).queued, 2);
        gate.open();
        assert_eq!(blocker.join(), Ok(()));
        pool.join();
        assert_eq!(
            *ran.lock(),
            [Lane::High, Lane::Background, Lane::Background]
        );
    });
}

#[test]
fn later_and_again() {
    // A delayed job runs no earlier than its due time and cancels
    // cleanly; a schedule runs, never silently fails, and a shutdown
    // reports what was pending.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(2).build().expect("build");
        let asked = Instant::now();
        let later = pool
            .schedule_after(Duration::from_millis(20), move |_ctx| asked.elapsed())
            .expect("schedule_after");
        assert!(later.join().expect("ran") >= Duration::from_millis(20));
        let never = pool
            .schedule_after(Duration::from_secs(3600), |_ctx| ())
            .expect("schedule_after");
        never.cancel();
        assert!(matches!(never.join(), Err(JobError::Cancelled(_))));

        let failing = pool
            .schedule(Every::rate(Duration::from_millis(2)), |_ctx| {
                Err::<(), _>("disk full")
            })
            .expect("schedule");
        assert!(wait_until(LONG, || failing.failures() >= 2));
        assert!(failing.is_active(), "OnError::Continue keeps it going");
        assert_eq!(
            failing.last_error(),
            Some(brigade::RunError::Returned("disk full".into()))
        );
        let pending = pool
            .schedule_after(Duration::from_secs(3600), |_ctx| ())
            .expect("schedule_after");
        let report = pool.shutdown_now();
        assert_eq!(report.delayed_never_ran, 1);
        assert_eq!(report.schedules_stopped, 1);
        assert!(matches!(pending.join(), Err(JobError::Cancelled(_))));
        assert_eq!(failing.ended(), Some(brigade::Ended::PoolStopped));
    });
}

#[test]
fn context_propagation() {
    // A value captured where a job is submitted is entered around it on
    // the worker (the full front-door matrix is tests/propagate.rs).
    with_timeout(LONG, || {
        std::thread_local! {
            static REQUEST: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
        }
        let pool = ThreadPool::builder()
            .workers(1)
            .propagate(
                || REQUEST.get(),
                |id, run| {
                    let outer = REQUEST.replace(id);
                    run();
                    REQUEST.set(outer);
                },
            )
            .build()
            .expect("build");
        REQUEST.set(42);
        let seen = pool.submit(|_ctx| REQUEST.get()).expect("submit");
        assert_eq!(seen.join(), Ok(42));
        let seen: Vec<u64> = pool
            .map(0..3, |_| REQUEST.get())
            .collect::<Result<_, _>>()
            .expect("map");
        assert_eq!(seen, [42, 42, 42]);
        // Each job sees the value of its own submit, not the last one.
        REQUEST.set(0);
        assert_eq!(
            pool.submit(|_ctx| REQUEST.get()).expect("submit").join(),
            Ok(0)
        );
    });
}

/// The text of the section headed `## {heading}`.
fn section(heading: &str) -> &'static str {
    let start = README
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("README has no `## {heading}`"));
    let body = &README[start + heading.len() + 5..];
    body.find("\n## ").map_or(body, |end| &body[..end])
}

/// Whether `fn {name}` occurs in the file at `path`, or in any `.rs` file
/// under it if it is a directory.
fn defines(path: &Path, name: &str) -> bool {
    if path.is_dir() {
        let entries = std::fs::read_dir(path).expect("read the directory");
        return entries
            .map(|entry| entry.expect("a directory entry").path())
            .any(|child| defines(&child, name));
    }
    path.extension().is_some_and(|ext| ext == "rs")
        && std::fs::read_to_string(path)
            .expect("read the file")
            .contains(&format!("fn {name}("))
}

/// What a Guarantees row's "checked by" cell names that does not exist:
/// `tests/…` paths, and each snake_case name after a path (or after the
/// word "loom", or "unit test" for `src/`) that is not a `fn` there.
fn unresolved(checked_by: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut missing = Vec::new();
    let mut home: Option<PathBuf> = None;
    for (i, piece) in checked_by.split('`').enumerate() {
        if i % 2 == 0 {
            // Prose between code spans.
            if piece.contains("loom") {
                home = Some(root.join("tests/loom.rs"));
            } else if piece.contains("unit test") {
                home = Some(root.join("src"));
            }
        } else if piece.starts_with("tests/") {
            let path = root.join(piece);
            if !path.exists() {
                missing.push(format!("no file {piece}"));
            }
            home = Some(path);
        } else if piece.contains('_')
            && piece
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            match &home {
                Some(path) if defines(path, piece) => {}
                Some(path) => missing.push(format!("no fn {piece} in {}", path.display())),
                None => missing.push(format!("{piece} follows no file")),
            }
        }
    }
    missing
}

#[test]
fn every_readme_claim_has_a_test() {
    // Every "What you get" bullet is one this file tests, and every
    // Guarantees row is known and names only files and tests that exist.
    let bullets: BTreeSet<&str> = section("What you get")
        .lines()
        .filter_map(|line| line.strip_prefix("- **")?.split_once("**"))
        .map(|(title, _)| title)
        .collect();
    let covered: BTreeSet<&str> = WHAT_YOU_GET.iter().copied().collect();
    assert_eq!(
        bullets, covered,
        "README bullets vs tests in tests/readme.rs"
    );

    let rows: Vec<(&str, &str)> = section("Guarantees")
        .lines()
        .filter_map(|line| {
            let row = line.strip_prefix("| **")?;
            let (invariant, rest) = row.split_once("**")?;
            let (_, checked_by) = rest.split_once(" | ")?;
            Some((invariant, checked_by))
        })
        .collect();
    assert_eq!(rows.len(), GUARANTEES.len(), "Guarantees rows: {rows:?}");
    let mut broken = Vec::new();
    for (invariant, checked_by) in rows {
        assert!(
            GUARANTEES.contains(&invariant),
            "a Guarantees row this file does not know: {invariant:?}"
        );
        for what in unresolved(checked_by) {
            broken.push(format!("{invariant:?}: {what}"));
        }
    }
    assert!(broken.is_empty(), "unresolved:\n{}", broken.join("\n"));
}
