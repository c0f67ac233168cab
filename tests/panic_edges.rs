//! Panic edge cases: panicking thread hooks; values whose `Drop` panics
//! (a result nobody joins, a result discarded because its job timed out or
//! was cancelled, a panic payload, worker-pool outputs nobody reads);
//! panics while a pool shuts down; non-string payloads on every front door;
//! and `PanicPolicy::CancelPool` under heavy load.
//!
//! The rule under test (DESIGN.md, invariant 3): a panic never takes the
//! pool down unless the policy says so — nothing propagates into a worker
//! or the pool, the pool keeps its size and keeps working, and shutdown
//! completes and reports.
//!
//! Every panic here is on purpose. A process-wide hook, installed once,
//! silences exactly the payloads these tests raise (strings starting with
//! [`QUIET`], and the payload types defined here); any other panic, such as
//! a failing assertion, prints as usual. A process-wide `log` backend keeps
//! brigade's warnings, so a test can check that a caught panic was logged.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind, panic_any};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::thread;
use std::time::Duration;

use brigade::{
    Cancelled, Context, ErrGroup, GroupError, JobError, PanicPolicy, Pipeline, PipelineError,
    StageError, SubmitError, ThreadPool, TryMapError, WorkerPool,
};

use common::{Gate, LONG, Latch, occupy_worker, threads_named, wait_until, with_timeout};
use parking_lot::Mutex;

/// Every string payload raised on purpose starts with this.
const QUIET: &str = "pe-quiet:";

/// A non-string payload.
#[derive(Debug)]
struct CustomPayload {
    _code: u32,
}

/// A value (result or payload) whose `Drop` panics.
#[derive(Debug)]
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("{QUIET} PanicOnDrop dropped");
    }
}

/// Installs, once, the hook that silences this file's deliberate panics.
fn quiet_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let text = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            let ours = text.is_some_and(|s| s.starts_with(QUIET))
                || payload.is::<u8>()
                || payload.is::<CustomPayload>()
                || payload.is::<PanicOnDrop>();
            if !ours {
                default(info);
            }
        }));
    });
}

/// Every message brigade logs in this process.
static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A `log` backend that keeps every message in [`LOGS`].
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

/// Installs, once, the logger that keeps brigade's messages in [`LOGS`].
fn capture_logs() {
    static LOGGER: Once = Once::new();
    LOGGER.call_once(|| {
        log::set_logger(&CaptureLogs).expect("no other logger in this binary");
        log::set_max_level(log::LevelFilter::Warn);
    });
}

/// Whether a logged message contains `text`.
fn logged(text: &str) -> bool {
    LOGS.lock().iter().any(|message| message.contains(text))
}

/// A pool of `workers` threads named `prefix-…`, with `policy`.
fn pool(prefix: &str, workers: usize, policy: PanicPolicy) -> ThreadPool {
    ThreadPool::builder()
        .workers(workers)
        .thread_name(prefix)
        .panic_policy(policy)
        .build()
        .expect("build")
}

/// Checks that `pool` still has `workers` workers, runs jobs on all of
/// them, and has seen `panicked` job panics and `respawned` replacements.
fn assert_healthy(pool: &ThreadPool, prefix: &str, workers: usize, panicked: u64, respawned: u64) {
    let handles: Vec<_> = (0..workers * 8)
        .map(|n| pool.submit(move |_ctx: &Context| n).expect("submit"))
        .collect();
    for (n, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.join(), Ok(n));
    }
    // A retiring worker is counted until it has handed over to its
    // replacement, so the size may read one high for a moment.
    assert!(
        wait_until(LONG, || pool.stats().workers == workers),
        "{}",
        pool.stats()
    );
    let stats = pool.stats();
    assert_eq!(stats.panicked, panicked, "{stats}");
    assert_eq!(stats.respawned, respawned, "{stats}");
    assert!(
        wait_until(LONG, || threads_named(prefix) == workers),
        "{prefix}: {} threads",
        threads_named(prefix)
    );
}

#[test]
fn panicking_thread_hooks_are_ignored() {
    // Panicking start/exit hooks are logged, and leave the pool whole through respawn and shutdown.
    quiet_panics();
    capture_logs();
    with_timeout(LONG, || {
        for (flavour, prefix) in [(0, "pe-hk-j"), (1, "pe-hk-n"), (2, "pe-hk-d")] {
            let starts = Arc::new(AtomicUsize::new(0));
            let exits = Arc::new(AtomicUsize::new(0));
            let pool = {
                let (starts, exits) = (Arc::clone(&starts), Arc::clone(&exits));
                ThreadPool::builder()
                    .workers(3)
                    .thread_name(prefix)
                    .on_thread_start(move |index| {
                        starts.fetch_add(1, Ordering::SeqCst);
                        panic!("{QUIET} start hook of {prefix} worker {index}");
                    })
                    .on_thread_exit(move |index| {
                        exits.fetch_add(1, Ordering::SeqCst);
                        panic!("{QUIET} exit hook of {prefix} worker {index}");
                    })
                    .build()
                    .expect("build")
            };
            assert_healthy(&pool, prefix, 3, 0, 0);
            assert!(wait_until(LONG, || starts.load(Ordering::SeqCst) == 3));
            for index in 0..3 {
                let text = format!("{QUIET} start hook of {prefix} worker {index}");
                assert!(wait_until(LONG, || logged(&text)), "not logged: {text}");
            }
            let boom = pool
                .submit(|_ctx: &Context| -> () { panic!("{QUIET} job") })
                .expect("submit");
            assert!(matches!(boom.join(), Err(JobError::Panicked(_))));
            // The retired worker ran its exit hook; the replacement its
            // start hook.
            assert!(wait_until(LONG, || pool.stats().respawned == 1));
            assert!(wait_until(LONG, || starts.load(Ordering::SeqCst) == 4));
            assert!(wait_until(LONG, || exits.load(Ordering::SeqCst) == 1));
            assert_healthy(&pool, prefix, 3, 1, 1);
            match flavour {
                0 => pool.join(),
                1 => {
                    let report = pool.shutdown_now();
                    assert_eq!(report.ran, report.submitted, "{report:?}");
                }
                _ => drop(pool),
            }
            assert_eq!(exits.load(Ordering::SeqCst), 4, "{prefix}");
            assert!(logged(&format!("{QUIET} exit hook of {prefix} worker")));
            assert!(wait_until(LONG, || threads_named(prefix) == 0));
        }
    });
}

#[test]
fn panicking_hooks_on_a_worker_pool_are_ignored() {
    // Panicking hooks on a WorkerPool lose no output and let it join.
    quiet_panics();
    with_timeout(LONG, || {
        let pool = WorkerPool::builder()
            .workers(2)
            .thread_name("pe-hk-wp")
            .on_thread_start(|_| panic!("{QUIET} start hook"))
            .on_thread_exit(|_| panic!("{QUIET} exit hook"))
            .build(|_ctx, n: u64| n + 1)
            .expect("build");
        for n in 0..100 {
            pool.submit(n).expect("submit");
        }
        pool.close();
        let sum: u64 = pool
            .results()
            .iter()
            .map(|out| out.result.expect("no job failed"))
            .sum();
        assert_eq!(sum, (1..=100).sum());
        assert!(pool.join().is_empty());
        assert!(wait_until(LONG, || threads_named("pe-hk-wp") == 0));
    });
}

/// The id of the thread a job on `pool`'s single worker runs on now.
fn worker_thread(pool: &ThreadPool) -> thread::ThreadId {
    pool.submit(|_ctx: &Context| thread::current().id())
        .expect("submit")
        .join()
        .expect("the probe ran")
}

#[test]
fn unjoined_result_panicking_on_drop_does_not_touch_the_worker() {
    // A completed job's unjoined result panicking on drop leaves its worker alone.
    quiet_panics();
    with_timeout(LONG, || {
        let mut failures = Vec::new();
        let cases = [
            ("submit, CancelPool", PanicPolicy::CancelPool, false),
            ("submit, Respawn", PanicPolicy::Respawn, false),
            ("scope, Respawn", PanicPolicy::Respawn, true),
        ];
        for (case, policy, scoped) in cases {
            let pool = pool("pe-rd", 1, policy);
            let before = worker_thread(&pool);
            let (started_tx, started_rx) = crossbeam_channel::bounded(1);
            let gate = Gate::new();
            let job = {
                let gate = gate.clone();
                move |_ctx: &Context| {
                    started_tx.send(()).expect("the test waits");
                    gate.wait();
                    PanicOnDrop
                }
            };
            if scoped {
                pool.scope(|s| {
                    let handle = s.spawn(job);
                    started_rx.recv_timeout(LONG).expect("the job started");
                    drop(handle);
                    gate.open();
                });
            } else {
                let handle = pool.submit(job).expect("submit");
                started_rx.recv_timeout(LONG).expect("the job started");
                drop(handle);
                gate.open();
            }
            // One worker: the probe runs after the job is fully finished.
            let after = worker_thread(&pool);
            let stats = pool.stats();
            if after != before {
                failures.push(format!("{case}: the worker was replaced ({stats})"));
            }
            if (stats.panicked, stats.failed) != (0, 0) {
                failures.push(format!("{case}: counted as a failure ({stats})"));
            }
            if pool.context().is_done() {
                failures.push(format!("{case}: the pool was cancelled"));
            }
            pool.join();
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    });
}

#[test]
fn finished_result_panicking_on_drop_stays_off_the_pool() {
    // A result panicking when its handle is dropped after the job stays off the pool.
    quiet_panics();
    with_timeout(LONG, || {
        let pool = pool("pe-rf", 1, PanicPolicy::Respawn);
        let handle = pool.submit(|_ctx: &Context| PanicOnDrop).expect("submit");
        assert!(wait_until(LONG, || handle.is_finished()));
        // Dropping our own value may unwind here, on our thread.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(handle)));
        assert_healthy(&pool, "pe-rf", 1, 0, 0);
        pool.join();
    });
}

#[test]
fn discarded_result_panicking_on_drop_is_contained() {
    // A timed-out or cancelled job's value panicking on drop is contained.
    quiet_panics();
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(1)
            .thread_name("pe-rt")
            .job_timeout(Duration::from_millis(10))
            .build()
            .expect("build");
        let late = pool
            .submit(|ctx: &Context| {
                let _ = ctx.done().recv_timeout(LONG);
                PanicOnDrop
            })
            .expect("submit");
        assert_eq!(late.join().map(std::mem::forget), Err(JobError::TimedOut));

        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(1);
        let pool2 = ThreadPool::builder()
            .workers(1)
            .thread_name("pe-rc")
            .build()
            .expect("build");
        let cancelled = pool2
            .submit(move |_ctx: &Context| {
                started_tx.send(()).expect("the test waits");
                let _ = release_rx.recv_timeout(LONG);
                PanicOnDrop
            })
            .expect("submit");
        started_rx.recv_timeout(LONG).expect("the job started");
        cancelled.cancel();
        release_tx.send(()).expect("the job waits");
        assert_eq!(
            cancelled.join().map(std::mem::forget),
            Err(JobError::Cancelled(Cancelled::Canceled))
        );
        let stats = pool.stats();
        assert_eq!(
            (stats.panicked, stats.respawned, stats.timed_out),
            (0, 0, 1)
        );
        assert_healthy(&pool2, "pe-rc", 1, 0, 0);
        pool.join();
        pool2.join();
    });
}

/// An output whose Drop counts itself, then panics.
struct CountedBomb(Arc<AtomicUsize>);

impl Drop for CountedBomb {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("{QUIET} CountedBomb dropped");
    }
}

#[test]
fn worker_pool_outputs_panicking_on_drop_after_join() {
    // Unread outputs panicking on drop at join: join returns its leftovers
    // instead of unwinding, no thread stays, and no output is dropped twice.
    // (When the pool holds the last receiver, the channel drops its unread
    // outputs and stops at the first that panics, leaking the rest — a
    // documented limit of `WorkerPool::join`.)
    quiet_panics();
    with_timeout(LONG, || {
        let drops = Arc::new(AtomicUsize::new(0));
        let pool = {
            let drops = Arc::clone(&drops);
            WorkerPool::builder()
                .workers(2)
                .thread_name("pe-wj")
                .results_capacity(8)
                .build(move |_ctx, _n: u32| CountedBomb(Arc::clone(&drops)))
                .expect("build")
        };
        for n in 0..3 {
            pool.submit(n).expect("submit");
        }
        assert!(wait_until(LONG, || pool.results().len() == 3));
        let joined = catch_unwind(AssertUnwindSafe(|| pool.join()));
        let unwound = match joined {
            Ok(leftovers) => {
                assert!(leftovers.is_empty());
                false
            }
            Err(payload) => {
                // Our own value's panic; its payload is a plain String.
                drop(payload);
                true
            }
        };
        assert!(!unwound, "join unwound with an output's panic");
        assert!(wait_until(LONG, || threads_named("pe-wj") == 0));
        let dropped = drops.load(Ordering::SeqCst);
        assert!((1..=3).contains(&dropped), "{dropped} drops of 3 outputs");
    });
}

#[test]
fn worker_pool_dropped_with_outputs_panicking_on_drop() {
    // Dropping a WorkerPool whose unread outputs panic on drop returns, leaving no thread.
    quiet_panics();
    with_timeout(LONG, || {
        let pool = WorkerPool::builder()
            .workers(2)
            .thread_name("pe-wd")
            .results_capacity(8)
            .build(|_ctx, _n: u32| PanicOnDrop)
            .expect("build");
        for n in 0..3 {
            pool.submit(n).expect("submit");
        }
        assert!(wait_until(LONG, || pool.results().len() == 3));
        let (dropped_tx, dropped_rx) = crossbeam_channel::bounded(1);
        thread::spawn(move || {
            let _ = catch_unwind(AssertUnwindSafe(|| drop(pool)));
            let _ = dropped_tx.send(());
        });
        dropped_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("dropping the pool returned");
        assert!(wait_until(LONG, || threads_named("pe-wd") == 0));
    });
}

#[test]
fn payload_panicking_on_drop_is_contained_everywhere() {
    // A panic payload that panics on drop is contained by every front door.
    quiet_panics();
    with_timeout(LONG, || {
        let non_string = "<non-string panic payload>".to_owned();
        let pool = pool("pe-pd", 2, PanicPolicy::Respawn);
        let handle = pool
            .submit(|_ctx: &Context| -> () { panic_any(PanicOnDrop) })
            .expect("submit");
        assert_eq!(
            handle.join(),
            Err(JobError::Panicked(non_string.clone().into()))
        );
        pool.execute(|| panic_any(PanicOnDrop)).expect("execute");
        assert!(wait_until(LONG, || pool.stats().respawned == 2));
        assert_healthy(&pool, "pe-pd", 2, 2, 2);

        let mapped: Vec<_> = pool
            .map(0..4_u32, |n| {
                if n == 2 {
                    panic_any(PanicOnDrop);
                }
                n
            })
            .chunk_size(1)
            .collect();
        assert_eq!(
            mapped[2],
            Err(JobError::Panicked(non_string.clone().into()))
        );

        let scoped = pool.scope(|s| s.spawn(|_ctx| -> () { panic_any(PanicOnDrop) }).join());
        assert_eq!(scoped, Err(JobError::Panicked(non_string.clone().into())));

        let group = ErrGroup::<String>::new(&Context::new());
        group.spawn(|_ctx| panic_any(PanicOnDrop)).expect("spawn");
        assert_eq!(
            group.wait(),
            Err(GroupError::Panicked(non_string.clone().into()))
        );

        let workers = WorkerPool::builder()
            .workers(1)
            .thread_name("pe-pdw")
            .build(|_ctx, n: u32| {
                if n == 0 {
                    panic_any(PanicOnDrop);
                }
                n
            })
            .expect("build");
        workers.submit(0).expect("submit");
        workers.submit(1).expect("submit");
        let out = workers.results().recv_timeout(LONG).expect("an output");
        assert_eq!(
            out.result,
            Err(JobError::Panicked(non_string.clone().into()))
        );
        let out = workers.results().recv_timeout(LONG).expect("an output");
        assert_eq!(out.result, Ok(1));
        assert!(workers.join().is_empty());

        let piped = Pipeline::<u32, u32, String>::new(&Context::new())
            .stage("pe-pdp", 1, |_ctx, n: u32| {
                if n == 1 {
                    panic_any(PanicOnDrop);
                }
                Ok(n)
            })
            .build()
            .expect("valid pipeline")
            .run(0..3);
        match piped {
            Err(PipelineError::Stage(failure)) => {
                assert_eq!(failure.error, StageError::Panicked(non_string.into()));
            }
            other => panic!("the run ended with {other:?}"),
        }
        pool.join();
    });
}

#[test]
fn non_string_payloads_read_the_same_on_every_front_door() {
    // Non-string payloads read "<non-string panic payload>" on every front door.
    quiet_panics();
    with_timeout(LONG, || {
        const TEXT: &str = "<non-string panic payload>";
        let raise = |which: u32| -> u32 {
            if which == 0 {
                panic_any(42_u8)
            } else {
                panic_any(CustomPayload { _code: which })
            }
        };
        let pool = pool("pe-ns", 2, PanicPolicy::Respawn);
        for which in [0, 1] {
            let err = pool
                .submit(move |_ctx: &Context| raise(which))
                .expect("submit")
                .join()
                .unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("job panicked: {TEXT}")),
                "{err}"
            );

            let mapped: Vec<_> = pool.map([which], raise).collect();
            assert_eq!(mapped, [Err(JobError::Panicked(TEXT.into()))]);

            let failed = pool.try_map([which], move |w| Ok::<u32, String>(raise(w)));
            let err = failed.unwrap_err();
            assert!(matches!(err, TryMapError::Job { index: 0, .. }), "{err:?}");
            assert!(
                err.to_string()
                    .starts_with(&format!("item 0: job panicked: {TEXT}")),
                "{err}"
            );

            let scoped = pool.scope(|s| s.spawn(move |_ctx| raise(which)).join());
            assert_eq!(scoped, Err(JobError::Panicked(TEXT.into())));

            let group = ErrGroup::<String>::new(&Context::new());
            group
                .spawn(move |_ctx| {
                    raise(which);
                    Ok(())
                })
                .expect("spawn");
            let err = group.wait().unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("a task panicked: {TEXT}")),
                "{err}"
            );

            let workers = WorkerPool::builder()
                .workers(1)
                .thread_name("pe-nsw")
                .build(move |_ctx, w| raise(w))
                .expect("build");
            workers.submit(which).expect("submit");
            let out = workers.results().recv_timeout(LONG).expect("an output");
            assert_eq!(out.result, Err(JobError::Panicked(TEXT.into())));
            assert!(workers.join().is_empty());

            let piped = Pipeline::<u32, u32, String>::new(&Context::new())
                .stage("pe-nsp", 1, move |_ctx, w: u32| Ok(raise(w)))
                .build()
                .expect("valid pipeline")
                .run([which]);
            match piped {
                Err(err @ PipelineError::Stage(_)) => assert!(
                    err.to_string().starts_with(&format!(
                        r#"stage "pe-nsp" failed on item 0: panicked: {TEXT}"#
                    )),
                    "{err}"
                ),
                other => panic!("the run ended with {other:?}"),
            }
        }
        // Per payload: submit, map and try_map panicked on a worker; the
        // scoped job did too, unless its join ran it inline first.
        let stats = pool.stats();
        assert!((6..=8).contains(&stats.panicked), "{stats}");
        assert!(wait_until(LONG, || pool.stats().respawned == stats.panicked));
        assert_healthy(&pool, "pe-ns", 2, stats.panicked, stats.panicked);
        pool.join();
    });
}

#[test]
fn panic_during_shutdown_now_completes_and_reports() {
    // Jobs panicking as shutdown_now cancels them let it complete and report.
    quiet_panics();
    with_timeout(LONG, || {
        let pool = pool("pe-sn", 2, PanicPolicy::Respawn);
        let started = Latch::new(2);
        let panickers: Vec<_> = (0..2)
            .map(|_| {
                let started = Arc::clone(&started);
                pool.submit(move |ctx: &Context| -> () {
                    started.count_down();
                    let _ = ctx.sleep(LONG);
                    panic!("{QUIET} cancelled, then panicked")
                })
                .expect("submit")
            })
            .collect();
        let queued: Vec<_> = (0..10)
            .map(|_| pool.submit(|_ctx: &Context| 1).expect("submit"))
            .collect();
        started.wait();
        let report = pool.shutdown_now();
        assert_eq!(report.submitted, 12, "{report:?}");
        assert_eq!(report.ran, 2, "{report:?}");
        assert_eq!(report.completed, 0, "{report:?}");
        assert_eq!(report.never_ran, 10, "{report:?}");
        assert!(!report.drained);
        for handle in panickers {
            assert_eq!(
                handle.join(),
                Err(JobError::Panicked(
                    format!("{QUIET} cancelled, then panicked").into()
                ))
            );
        }
        for handle in queued {
            assert_eq!(handle.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        }
        assert!(wait_until(LONG, || threads_named("pe-sn") == 0));
    });
}

#[test]
fn panics_while_join_drains_complete_and_report() {
    // Panics while join, shutdown_timeout or Drop drains the queue lose no job.
    quiet_panics();
    with_timeout(LONG, || {
        for (flavour, prefix) in [(0, "pe-dj"), (1, "pe-dt"), (2, "pe-dd")] {
            let pool = pool(prefix, 2, PanicPolicy::Respawn);
            let gate = Gate::new();
            let held = occupy_worker(&pool, &gate);
            let ran = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..60)
                .map(|n| {
                    let ran = Arc::clone(&ran);
                    pool.submit(move |_ctx: &Context| {
                        ran.fetch_add(1, Ordering::SeqCst);
                        if n % 3 == 0 {
                            panic!("{QUIET} job {n} panicked while draining");
                        }
                        n
                    })
                    .expect("submit")
                })
                .collect();
            let shutdown = thread::spawn(move || match flavour {
                0 => pool.join(),
                1 => {
                    let report = pool.shutdown_timeout(LONG);
                    assert!(report.drained, "{report:?}");
                    assert_eq!(report.ran, 61, "{report:?}");
                    assert_eq!(report.completed, 41, "{report:?}");
                }
                _ => drop(pool),
            });
            gate.open();
            shutdown.join().expect("the shutdown completed");
            assert_eq!(held.join(), Ok(()));
            assert_eq!(ran.load(Ordering::SeqCst), 60, "{prefix}");
            for (n, handle) in handles.into_iter().enumerate() {
                match handle.join() {
                    Err(JobError::Panicked(message)) if n % 3 == 0 => {
                        assert_eq!(
                            message.message(),
                            format!("{QUIET} job {n} panicked while draining")
                        );
                    }
                    Ok(got) if n % 3 != 0 => assert_eq!(got, n),
                    other => panic!("{prefix}: job {n} ended with {other:?}"),
                }
            }
            assert!(wait_until(LONG, || threads_named(prefix) == 0), "{prefix}");
        }
    });
}

#[test]
fn cancel_pool_policy_under_heavy_load() {
    // CancelPool under four flooding producers cancels once and accounts for every job.
    quiet_panics();
    with_timeout(LONG, || {
        const PRODUCERS: usize = 4;
        const PER_PRODUCER: usize = 2_000;
        let pool = ThreadPool::builder()
            .workers(4)
            .queue_capacity(16)
            .thread_name("pe-cp")
            .panic_policy(PanicPolicy::CancelPool)
            .build()
            .expect("build");
        let ran = Arc::new(AtomicUsize::new(0));
        let outcomes = thread::scope(|s| {
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|p| {
                    let (pool, ran) = (&pool, Arc::clone(&ran));
                    s.spawn(move || {
                        let mut handles = Vec::new();
                        for i in 0..PER_PRODUCER {
                            let ran = Arc::clone(&ran);
                            let job = move |ctx: &Context| {
                                ran.fetch_add(1, Ordering::SeqCst);
                                if p == 0 && i == PER_PRODUCER / 2 {
                                    panic!("{QUIET} the one panic");
                                }
                                ctx.check().map(|()| i)
                            };
                            match pool.submit(job) {
                                Ok(handle) => handles.push(handle),
                                Err(SubmitError::Cancelled(_)) => break,
                                Err(SubmitError::Closed(_)) => panic!("the pool was closed"),
                            }
                        }
                        handles
                    })
                })
                .collect();
            producers
                .into_iter()
                .map(|producer| producer.join().expect("a producer finished"))
                .collect::<Vec<_>>()
        });
        assert!(pool.context().is_done(), "the panic cancelled the pool");
        assert!(matches!(
            pool.submit(|_ctx: &Context| 0),
            Err(SubmitError::Cancelled(_))
        ));
        // Which producers ran out of jobs before the cancel reached them
        // depends on scheduling; the accounting below does not.
        let (mut ok, mut cancelled, mut panicked) = (0_u64, 0_u64, 0_u64);
        let mut accepted = 0_u64;
        for handles in outcomes {
            for handle in handles {
                accepted += 1;
                match handle.join() {
                    Ok(Ok(_)) => ok += 1,
                    Ok(Err(Cancelled::Canceled))
                    | Err(JobError::Cancelled(Cancelled::Canceled)) => cancelled += 1,
                    Err(JobError::Panicked(message)) => {
                        assert_eq!(message.message(), format!("{QUIET} the one panic"));
                        panicked += 1;
                    }
                    other => panic!("unexpected outcome {other:?}"),
                }
            }
        }
        assert_eq!(panicked, 1);
        assert_eq!(ok + cancelled + panicked, accepted);
        assert!(wait_until(LONG, || threads_named("pe-cp") == 0));
        let stats = pool.stats();
        assert_eq!(stats.submitted, accepted, "{stats}");
        assert_eq!(stats.panicked, 1, "{stats}");
        assert_eq!(stats.respawned, 0, "{stats}");
        assert_eq!(
            stats.completed + stats.failed + stats.cancelled,
            accepted,
            "{stats}"
        );
        assert_eq!(
            (stats.completed + stats.failed) as usize,
            ran.load(Ordering::SeqCst),
            "{stats}"
        );
        let report = pool.shutdown_now();
        assert_eq!(
            report.ran + report.never_ran,
            report.submitted,
            "{report:?}"
        );
    });
}

/// How many logged messages contain `text`.
fn times_logged(text: &str) -> usize {
    LOGS.lock()
        .iter()
        .filter(|message| message.contains(text))
        .count()
}

#[test]
fn a_panic_is_caught_and_logged_once_on_every_front_door() {
    // The job lifecycle catches a panic in one place, whatever the front
    // door: each panicking job below is logged exactly once and, where the
    // door has stats, counted exactly once as panicked.
    quiet_panics();
    capture_logs();
    with_timeout(LONG, || {
        let pool = pool("pe-once", 2, PanicPolicy::Respawn);
        let message = |door: &str| format!("{QUIET} once from {door}");

        let m = message("execute");
        pool.execute(move || panic!("{m}")).expect("execute");
        let m = message("submit");
        let handle = pool
            .submit(move |_ctx| -> u8 { panic!("{m}") })
            .expect("submit");
        assert!(matches!(handle.join(), Err(JobError::Panicked(_))));
        let m = message("map");
        let mapped: Vec<_> = pool
            .map(0..4u8, move |x| {
                assert!(x != 2, "{m}");
                x
            })
            .collect();
        assert_eq!(mapped.iter().filter(|r| r.is_err()).count(), 1);
        let m = message("scope");
        pool.scope(|s| {
            let handle = s.spawn(move |_ctx| -> u8 { panic!("{m}") });
            assert!(matches!(handle.join(), Err(JobError::Panicked(_))));
        });
        // The scoped job ran on a worker (counted) or on the scope's own
        // thread when its handle was joined (logged, but no worker's job).
        assert!(
            wait_until(LONG, || pool.stats().panicked == 3
                || pool.stats().panicked == 4),
            "{}",
            pool.stats()
        );

        let workers = WorkerPool::builder()
            .workers(1)
            .build(|_ctx, m: String| -> u8 { panic!("{m}") })
            .expect("build");
        workers.submit(message("worker pool")).expect("submit");
        let out = workers.results().recv_timeout(LONG).expect("an output");
        assert!(matches!(out.result, Err(JobError::Panicked(_))));
        assert_eq!(workers.stats().panicked, 1);
        drop(workers);

        let m = message("pipeline");
        let piped = Pipeline::new(&Context::new())
            .stage(
                "pe-once-stage",
                1,
                move |_ctx, _x: u8| -> Result<u8, String> { panic!("{m}") },
            )
            .build()
            .expect("valid pipeline")
            .run([1u8]);
        assert!(matches!(piped, Err(PipelineError::Stage(_))));

        let group = ErrGroup::<String>::new(&Context::new());
        let m = message("errgroup");
        group
            .spawn(move |_ctx| panic!("{m}"))
            .map_err(|e| e.to_string())
            .expect("spawn");
        assert!(matches!(group.wait(), Err(GroupError::Panicked(_))));

        let doors = [
            "execute",
            "submit",
            "map",
            "scope",
            "worker pool",
            "pipeline",
            "errgroup",
        ];
        for door in doors {
            assert_eq!(times_logged(&message(door)), 1, "{door}: {:?}", LOGS.lock());
        }
    });
}
