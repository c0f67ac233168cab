//! Panic supervision: a panicking job is reported on its handle with its
//! message, counted, and its worker replaced so the pool keeps its size;
//! `PanicPolicy::CancelPool` cancels the pool instead.
//!
//! Every test here panics on purpose on worker threads named `sv…`; a panic
//! hook silences those (and only those) so a thousand panics do not bury
//! the output. The hook is process-wide, which is why these tests live in a
//! file of their own.

mod common;

use std::sync::Once;
use std::thread;
use std::time::{Duration, Instant};

use brigade::{Cancelled, Context, JobError, PanicPolicy, SubmitError, ThreadPool};

use common::{Gate, LONG, threads_named, wait_until, with_timeout};

/// The panic message of [`PanicOnDrop`].
const DROP_PANIC: &str = "PanicOnDrop dropped";

/// A value whose `Drop` panics, to check that brigade contains panics from
/// dropping jobs and values it discards.
#[derive(Debug)]
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("{DROP_PANIC}");
    }
}

/// Silences panic messages from worker threads whose names start with
/// `sv`, and from [`PanicOnDrop`]; every other panic (a failing assertion)
/// prints as usual.
fn quiet_worker_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let on_worker = thread::current()
                .name()
                .is_some_and(|name| name.starts_with("sv"));
            let drop_panic = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|text| text == DROP_PANIC);
            if !on_worker && !drop_panic {
                default(info);
            }
        }));
    });
}

#[test]
fn thousand_panics_keep_pool_size() {
    // 1,000 panicking jobs: each handle reports its own message, every
    // worker is replaced, the pool keeps its size, and later jobs run.
    quiet_worker_panics();
    with_timeout(LONG, || {
        const WORKERS: usize = 4;
        const JOBS: usize = 1000;
        let pool = ThreadPool::builder()
            .workers(WORKERS)
            .thread_name("svr")
            .build()
            .expect("build");
        let handles: Vec<_> = (0..JOBS)
            .map(|i| {
                pool.submit(move |_ctx: &Context| -> u32 { panic!("job {i} failed") })
                    .expect("submit")
            })
            .collect();
        for (i, handle) in handles.into_iter().enumerate() {
            assert_eq!(
                handle.join(),
                Err(JobError::Panicked(format!("job {i} failed").into()))
            );
        }
        let settled = wait_until(LONG, || {
            let s = pool.stats();
            s.workers == WORKERS && s.respawned == JOBS as u64
        });
        let stats = pool.stats();
        assert!(settled, "pool did not settle: {stats}");
        assert_eq!(stats.panicked, JOBS as u64);
        assert_eq!(stats.failed, JOBS as u64);
        assert_eq!(stats.respawned, JOBS as u64);
        assert!(
            wait_until(LONG, || threads_named("svr") == WORKERS),
            "retired threads did not exit: {} named svr-*",
            threads_named("svr")
        );
        let later: Vec<_> = (0..100u32)
            .map(|n| pool.submit(move |_ctx: &Context| n * 2).expect("submit"))
            .collect();
        for (n, handle) in (0..100u32).zip(later) {
            assert_eq!(handle.join(), Ok(n * 2));
        }
        assert!(!pool.context().is_done());
    });
}

#[test]
fn execute_panics_are_counted() {
    // Panics in fire-and-forget jobs are counted and their workers replaced.
    quiet_worker_panics();
    with_timeout(LONG, || {
        const WORKERS: usize = 2;
        let pool = ThreadPool::builder()
            .workers(WORKERS)
            .thread_name("sve")
            .build()
            .expect("build");
        for i in 0..50 {
            pool.execute(move || panic!("execute {i}"))
                .expect("execute");
        }
        let settled = wait_until(LONG, || {
            let s = pool.stats();
            s.panicked == 50 && s.respawned == 50 && s.workers == WORKERS
        });
        assert!(settled, "pool did not settle: {}", pool.stats());
        assert_eq!(
            pool.submit(|_ctx: &Context| "alive")
                .expect("submit")
                .join(),
            Ok("alive")
        );
    });
}

#[test]
fn cancel_pool_policy_fails_fast() {
    // Under CancelPool one panic cancels the pool: a running job sees its
    // context cancelled, queued jobs are reported Cancelled, later submits
    // are refused, and no worker is respawned.
    quiet_worker_panics();
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("svc")
            .panic_policy(PanicPolicy::CancelPool)
            .build()
            .expect("build");
        // Worker one: a job waiting on its context.
        let (started_tx, started_rx) = crossbeam_channel::bounded(2);
        let waiter = {
            let started_tx = started_tx.clone();
            pool.submit(move |ctx: &Context| {
                started_tx.send(()).expect("the test waits");
                ctx.sleep(LONG)
            })
            .expect("submit")
        };
        // Worker two: a job that panics once the gate opens.
        let gate = Gate::new();
        let panicker = {
            let gate = gate.clone();
            pool.submit(move |_ctx: &Context| -> () {
                started_tx.send(()).expect("the test waits");
                gate.wait();
                panic!("fail fast")
            })
            .expect("submit")
        };
        for _ in 0..2 {
            started_rx.recv_timeout(LONG).expect("both jobs started");
        }
        let queued: Vec<_> = (0..5)
            .map(|n| pool.submit(move |_ctx: &Context| n).expect("submit"))
            .collect();
        gate.open();

        assert_eq!(panicker.join(), Err(JobError::Panicked("fail fast".into())));
        // The waiter woke on the cancel, and returned into a cancelled
        // context.
        assert_eq!(waiter.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        for handle in queued {
            assert_eq!(handle.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        }
        assert_eq!(pool.context().reason(), Some(Cancelled::Canceled));
        assert!(matches!(
            pool.submit(|_ctx: &Context| 0),
            Err(SubmitError::Cancelled(_))
        ));
        assert!(matches!(
            pool.execute(|| {}),
            Err(SubmitError::Cancelled(_))
        ));
        assert!(wait_until(LONG, || pool.stats().workers == 0));
        let stats = pool.stats();
        assert_eq!(stats.panicked, 1);
        assert_eq!(stats.respawned, 0);
        assert_eq!(stats.cancelled, 5);
        assert_eq!(stats.submitted, 7);
        assert!(wait_until(LONG, || threads_named("svc") == 0));
    });
}

#[test]
fn non_string_payload_is_reported() {
    // A panic with a non-string payload reads "<non-string panic payload>";
    // &str and String payloads keep their text.
    quiet_worker_panics();
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(1)
            .thread_name("svn")
            .build()
            .expect("build");
        let number = pool
            .submit(|_ctx: &Context| -> () { std::panic::panic_any(42_i32) })
            .expect("submit");
        let literal = pool
            .submit(|_ctx: &Context| -> () { std::panic::panic_any("static text") })
            .expect("submit");
        let owned = pool
            .submit(|_ctx: &Context| -> () { std::panic::panic_any(String::from("owned text")) })
            .expect("submit");
        let err = number.join().unwrap_err();
        assert_eq!(err, JobError::Panicked("<non-string panic payload>".into()));
        assert!(
            err.to_string()
                .starts_with("job panicked: <non-string panic payload>"),
            "{err}"
        );
        assert_eq!(
            literal.join(),
            Err(JobError::Panicked("static text".into()))
        );
        assert_eq!(owned.join(), Err(JobError::Panicked("owned text".into())));
    });
}

#[test]
fn panicking_hooks_are_ignored() {
    // A panic in on_thread_start or on_thread_exit does not take a worker
    // down or count as a job panic.
    quiet_worker_panics();
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("svh")
            .on_thread_start(|index| panic!("start hook {index}"))
            .on_thread_exit(|index| panic!("exit hook {index}"))
            .build()
            .expect("build");
        let handles: Vec<_> = (0..20u32)
            .map(|n| pool.submit(move |_ctx: &Context| n).expect("submit"))
            .collect();
        for (n, handle) in (0..20u32).zip(handles) {
            assert_eq!(handle.join(), Ok(n));
        }
        let stats = pool.stats();
        assert_eq!(stats.workers, 2);
        assert_eq!(stats.panicked, 0);
        assert_eq!(stats.respawned, 0);
        pool.join();
        assert!(wait_until(LONG, || threads_named("svh") == 0));
    });
}

#[test]
fn late_value_panicking_on_drop_is_contained() {
    // A timed-out job's value that panics when brigade drops it neither
    // kills the worker nor counts as a job panic.
    quiet_worker_panics();
    with_timeout(LONG, || {
        let timeout = Duration::from_millis(20);
        let pool = ThreadPool::builder()
            .workers(1)
            .thread_name("svl")
            .job_timeout(timeout)
            .build()
            .expect("build");
        let late = pool
            .submit(move |_ctx: &Context| {
                let start = Instant::now();
                while start.elapsed() < timeout + Duration::from_millis(30) {
                    std::hint::spin_loop();
                }
                PanicOnDrop
            })
            .expect("submit");
        assert_eq!(late.join().map(std::mem::forget), Err(JobError::TimedOut));
        assert_eq!(
            pool.submit(|_ctx: &Context| 3).expect("submit").join(),
            Ok(3)
        );
        let stats = pool.stats();
        assert_eq!(stats.panicked, 0);
        assert_eq!(stats.respawned, 0);
        assert_eq!(stats.workers, 1);
    });
}

#[test]
fn discarded_closure_panicking_on_drop_is_contained() {
    // Job closures that panic when dropped unrun (cancelled through their
    // handle, or discarded by shutdown_now) do not disturb the worker or
    // the shutdown, and their handles still say Cancelled.
    quiet_worker_panics();
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(1)
            .thread_name("svd")
            .build()
            .expect("build");
        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        let blocker = pool
            .submit(move |ctx: &Context| {
                started_tx.send(()).expect("the test waits");
                ctx.sleep(LONG)
            })
            .expect("submit");
        started_rx.recv_timeout(LONG).expect("the blocker started");
        let queued: Vec<_> = (0..3)
            .map(|_| {
                let bomb = PanicOnDrop;
                pool.submit(move |_ctx: &Context| {
                    std::mem::forget(bomb);
                })
                .expect("submit")
            })
            .collect();
        let bomb = PanicOnDrop;
        pool.execute(move || std::mem::forget(bomb))
            .expect("execute");
        queued[0].cancel();

        let report = pool.shutdown_now();

        assert_eq!(report.submitted, 5);
        assert_eq!(report.ran, 1);
        assert_eq!(report.never_ran, 4);
        assert_eq!(
            blocker.join(),
            Err(JobError::Cancelled(Cancelled::Canceled))
        );
        for handle in queued {
            assert_eq!(handle.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        }
    });
}

#[test]
fn job_queued_behind_a_panic_during_cancel_is_reported() {
    // The lost job of a chaos run (ThreadSanitizer, round 47): the last
    // worker's job panics while the pool is being cancelled, so the worker
    // neither is replaced nor makes the loop's final drain. The job queued
    // behind it must still be reported cancelled, not stranded.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(4)
            .panic_policy(PanicPolicy::Respawn)
            .thread_name("sv-lost")
            .build()
            .expect("build");
        let (started_tx, started) = crossbeam_channel::bounded(1);
        let panicking = pool
            .submit(move |ctx| {
                started_tx.send(()).expect("test alive");
                let _ = ctx.sleep(LONG);
                panic!("panics once cancelled");
            })
            .expect("submit");
        started.recv_timeout(LONG).expect("the first job started");
        let mut queued = pool.submit(|_ctx| 42).expect("submit");
        pool.context().cancel();
        assert!(matches!(panicking.join(), Err(JobError::Panicked(_))));
        let result = queued.join_timeout(Duration::from_secs(10));
        assert!(
            matches!(result, Some(Err(JobError::Cancelled(_)))),
            "{result:?}; {}",
            pool.stats()
        );
    });
}
