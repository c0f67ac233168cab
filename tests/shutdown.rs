//! Shutdown: `join`, `shutdown_now`, `shutdown_timeout` and `Drop` account
//! for every job (ran + never ran == submitted), leave no thread behind, and
//! do not deadlock when called from inside one of the pool's own jobs.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use brigade::{Cancelled, Context, JobError, JobHandle, SubmitError, ThreadPool};
use crossbeam_channel::{RecvTimeoutError, select};
use parking_lot::Mutex;

use common::{
    DropCounter, Gate, LONG, Latch, occupy_worker, thread_sleeping, threads_named, wait_until,
    with_timeout,
};

/// A one-worker pool named `prefix` whose worker is held by a job until
/// `gate` opens, so everything submitted next stays queued.
fn held_pool(prefix: &str, gate: &Gate) -> (ThreadPool, JobHandle<()>) {
    let pool = ThreadPool::builder()
        .workers(1)
        .thread_name(prefix)
        .build()
        .expect("build");
    let blocker = occupy_worker(&pool, gate);
    (pool, blocker)
}

/// Submits `n` jobs that each count one run in `ran`.
fn counting_jobs(pool: &ThreadPool, ran: &Arc<AtomicUsize>, n: usize) -> Vec<JobHandle<()>> {
    (0..n)
        .map(|_| {
            let ran = Arc::clone(ran);
            pool.submit(move |_ctx: &Context| {
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .expect("submit")
        })
        .collect()
}

/// Runs `finish` (which consumes the pool) on another thread, checks that
/// it waits for the held worker, opens `gate`, and returns its result.
fn finish_while_held<T: Send + 'static>(
    pool: ThreadPool,
    gate: &Gate,
    finish: impl FnOnce(ThreadPool) -> T + Send + 'static,
) -> T {
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    let finisher = thread::spawn(move || {
        let value = finish(pool);
        done_tx.send(()).expect("the test waits");
        value
    });
    assert_eq!(
        done_rx.recv_timeout(Duration::from_millis(50)),
        Err(RecvTimeoutError::Timeout),
        "shutdown returned while a worker was still busy"
    );
    gate.open();
    done_rx.recv_timeout(LONG).expect("shutdown finished");
    finisher.join().expect("the shutdown thread")
}

#[test]
fn join_runs_every_queued_job() {
    // join waits for the busy worker and then runs everything queued:
    // ran == submitted, nothing reported never-run.
    with_timeout(LONG, || {
        let gate = Gate::new();
        let (pool, blocker) = held_pool("sjn", &gate);
        let ran = Arc::new(AtomicUsize::new(0));
        let handles = counting_jobs(&pool, &ran, 200);
        finish_while_held(pool, &gate, ThreadPool::join);
        assert_eq!(ran.load(Ordering::SeqCst), 200);
        assert_eq!(blocker.join(), Ok(()));
        for handle in handles {
            assert_eq!(handle.join(), Ok(()));
        }
        assert!(wait_until(LONG, || threads_named("sjn") == 0));
    });
}

#[test]
fn shutdown_now_discards_the_queue() {
    // shutdown_now cancels the running job's context, discards the queued
    // jobs (their handles say Cancelled), and reports them as never run.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(1)
            .thread_name("snw")
            .build()
            .expect("build");
        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        let running = pool
            .submit(move |ctx: &Context| {
                started_tx.send(()).expect("the test waits");
                select! {
                    recv(ctx.done()) -> _ => ctx.reason(),
                    default(LONG) => None,
                }
            })
            .expect("submit");
        started_rx.recv_timeout(LONG).expect("the job started");
        let ran = Arc::new(AtomicUsize::new(0));
        let queued = counting_jobs(&pool, &ran, 20);

        let report = pool.shutdown_now();

        assert_eq!(
            running.join(),
            Err(JobError::Cancelled(Cancelled::Canceled))
        );
        for handle in queued {
            assert_eq!(handle.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        }
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        assert_eq!(report.submitted, 21);
        assert_eq!(report.ran, 1);
        assert_eq!(report.completed, 0);
        assert_eq!(report.never_ran, 20);
        assert_eq!(report.ran + report.never_ran, report.submitted);
        assert!(!report.drained);
        assert!(wait_until(LONG, || threads_named("snw") == 0));
    });
}

#[test]
fn running_job_sees_shutdown_now() {
    // The job running during shutdown_now sees its context cancelled.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(1).build().expect("build");
        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        let (seen_tx, seen_rx) = crossbeam_channel::bounded(1);
        let _running = pool
            .submit(move |ctx: &Context| {
                started_tx.send(()).expect("the test waits");
                seen_tx.send(ctx.sleep(LONG)).expect("the test waits");
            })
            .expect("submit");
        started_rx.recv_timeout(LONG).expect("the job started");
        let report = pool.shutdown_now();
        assert_eq!(seen_rx.try_recv(), Ok(Err(Cancelled::Canceled)));
        assert_eq!(report.ran, 1);
        assert_eq!(report.never_ran, 0);
    });
}

#[test]
fn shutdown_timeout_abandons_long_jobs() {
    // shutdown_timeout with a short timeout and long cooperative jobs: not
    // drained; the jobs that started plus those reported never-run make up
    // every job submitted.
    with_timeout(LONG, || {
        const JOBS: usize = 10;
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("sto")
            .build()
            .expect("build");
        let started = Arc::new(Mutex::new(Vec::new()));
        let both_busy = Latch::new(2);
        let handles: Vec<_> = (0..JOBS)
            .map(|i| {
                let (started, both_busy) = (Arc::clone(&started), Arc::clone(&both_busy));
                pool.submit(move |ctx: &Context| {
                    started.lock().push(i);
                    both_busy.count_down();
                    ctx.sleep(LONG)
                })
                .expect("submit")
            })
            .collect();
        both_busy.wait();

        let report = pool.shutdown_timeout(Duration::from_millis(100));

        assert!(!report.drained);
        assert!(report.elapsed < LONG / 2, "took {:?}", report.elapsed);
        let started = started.lock().clone();
        let mut never_ran = 0;
        for (i, handle) in handles.into_iter().enumerate() {
            assert_eq!(handle.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
            if !started.contains(&i) {
                never_ran += 1;
            }
        }
        assert!(started.len() >= 2, "both workers started a job");
        assert_eq!(report.submitted, JOBS as u64);
        assert_eq!(report.ran, started.len() as u64);
        assert_eq!(report.never_ran, never_ran);
        assert_eq!(report.ran + report.never_ran, report.submitted);
        assert_eq!(report.completed, 0);
        assert!(wait_until(LONG, || threads_named("sto") == 0));
    });
}

#[test]
fn shutdown_timeout_drains_quick_jobs() {
    // shutdown_timeout with quick jobs and time to spare drains everything.
    with_timeout(LONG, || {
        let gate = Gate::new();
        let (pool, blocker) = held_pool("std", &gate);
        let ran = Arc::new(AtomicUsize::new(0));
        let handles = counting_jobs(&pool, &ran, 100);
        let report = finish_while_held(pool, &gate, |pool| pool.shutdown_timeout(LONG));
        assert!(report.drained);
        assert_eq!(ran.load(Ordering::SeqCst), 100);
        assert_eq!(report.submitted, 101);
        assert_eq!(report.ran, 101);
        assert_eq!(report.completed, 101);
        assert_eq!(report.never_ran, 0);
        assert!(report.elapsed < LONG);
        assert_eq!(blocker.join(), Ok(()));
        for handle in handles {
            assert_eq!(handle.join(), Ok(()));
        }
        assert!(wait_until(LONG, || threads_named("std") == 0));
    });
}

#[test]
fn drop_drains_queue_and_joins_threads() {
    // Dropping a pool runs everything queued and leaves none of its threads.
    with_timeout(LONG, || {
        assert_eq!(threads_named("sdd"), 0);
        let gate = Gate::new();
        let pool = ThreadPool::builder()
            .workers(3)
            .thread_name("sdd")
            .build()
            .expect("build");
        assert!(wait_until(LONG, || threads_named("sdd") == 3));
        let ran = Arc::new(AtomicUsize::new(0));
        // Hold all three workers so the rest stays queued.
        let (started_tx, started_rx) = crossbeam_channel::bounded(3);
        for _ in 0..3 {
            let (gate, started_tx, ran) = (gate.clone(), started_tx.clone(), Arc::clone(&ran));
            pool.execute(move || {
                started_tx.send(()).expect("the test waits");
                gate.wait();
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .expect("execute");
        }
        for _ in 0..3 {
            started_rx.recv_timeout(LONG).expect("held");
        }
        for _ in 0..100 {
            let ran = Arc::clone(&ran);
            pool.execute(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .expect("execute");
        }
        assert_eq!(pool.stats().queued, 100);
        finish_while_held(pool, &gate, drop);
        assert_eq!(ran.load(Ordering::SeqCst), 103);
        assert!(
            wait_until(LONG, || threads_named("sdd") == 0),
            "threads left after drop: {:?}",
            common::thread_names()
        );
    });
}

#[test]
fn drop_inside_own_job_does_not_deadlock() {
    // A job that receives the pool and drops it returns at once; the workers
    // still finish the queue and then exit.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("sdi")
            .build()
            .expect("build");
        let (pool_tx, pool_rx) = crossbeam_channel::bounded::<ThreadPool>(1);
        let (dropped_tx, dropped_rx) = crossbeam_channel::bounded(1);
        pool.execute(move || {
            let own = pool_rx.recv_timeout(LONG).expect("the pool arrives");
            drop(own);
            dropped_tx.send(()).expect("the test waits");
        })
        .expect("execute");
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..10 {
            let ran = Arc::clone(&ran);
            pool.execute(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .expect("execute");
        }
        pool_tx.send(pool).expect("the job waits for the pool");
        dropped_rx
            .recv_timeout(LONG)
            .expect("drop inside a job returned");
        assert!(wait_until(LONG, || ran.load(Ordering::SeqCst) == 10));
        assert!(wait_until(LONG, || threads_named("sdi") == 0));
    });
}

#[test]
fn join_inside_own_job_does_not_deadlock() {
    // A job that joins its own pool returns at once; the workers drain and
    // exit on their own.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("sji")
            .build()
            .expect("build");
        let (pool_tx, pool_rx) = crossbeam_channel::bounded::<ThreadPool>(1);
        let (joined_tx, joined_rx) = crossbeam_channel::bounded(1);
        let handle = pool
            .submit(move |_ctx: &Context| {
                let own = pool_rx.recv_timeout(LONG).expect("the pool arrives");
                own.join();
                joined_tx.send(()).expect("the test waits");
                "joined"
            })
            .expect("submit");
        pool_tx.send(pool).expect("the job waits for the pool");
        joined_rx
            .recv_timeout(LONG)
            .expect("join inside a job returned");
        assert_eq!(handle.join(), Ok("joined"));
        assert!(wait_until(LONG, || threads_named("sji") == 0));
    });
}

#[test]
fn last_arc_dropped_inside_own_job_does_not_deadlock() {
    // A job holding the last Arc<ThreadPool> drops it without deadlock, and
    // the pool's threads exit.
    with_timeout(LONG, || {
        let pool = Arc::new(
            ThreadPool::builder()
                .workers(2)
                .thread_name("sda")
                .build()
                .expect("build"),
        );
        let gate = Gate::new();
        let (dropped_tx, dropped_rx) = crossbeam_channel::bounded(1);
        {
            let own = Arc::clone(&pool);
            let gate = gate.clone();
            pool.execute(move || {
                gate.wait();
                drop(own);
                dropped_tx.send(()).expect("the test waits");
            })
            .expect("execute");
        }
        drop(pool);
        gate.open();
        dropped_rx
            .recv_timeout(LONG)
            .expect("the last drop inside a job returned");
        assert!(wait_until(LONG, || threads_named("sda") == 0));
    });
}

#[test]
fn shutdown_now_inside_own_job_does_not_deadlock() {
    // A job that calls shutdown_now on its own pool gets a report at once,
    // sees its own context cancelled, and the pool's threads exit.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("sdn")
            .build()
            .expect("build");
        let (pool_tx, pool_rx) = crossbeam_channel::bounded::<ThreadPool>(1);
        let handle = pool
            .submit(move |ctx: &Context| {
                let own = pool_rx.recv_timeout(LONG).expect("the pool arrives");
                let report = own.shutdown_now();
                (report.drained, ctx.reason())
            })
            .expect("submit");
        pool_tx.send(pool).expect("the job waits for the pool");
        // The job returned after its own context was cancelled.
        assert_eq!(handle.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        assert!(wait_until(LONG, || threads_named("sdn") == 0));
    });
}

#[test]
fn shutdown_leaves_parent_context_live() {
    // Shutting a pool down never cancels the parent context it was given.
    with_timeout(LONG, || {
        let parent = Context::new();
        for flavour in 0..3 {
            let pool = ThreadPool::builder()
                .workers(1)
                .context(&parent)
                .build()
                .expect("build");
            assert_eq!(
                pool.submit(|_ctx: &Context| ()).expect("submit").join(),
                Ok(())
            );
            match flavour {
                0 => pool.join(),
                1 => assert_eq!(pool.shutdown_now().ran, 1),
                _ => assert!(pool.shutdown_timeout(LONG).drained),
            }
            assert!(!parent.is_done(), "flavour {flavour} cancelled the parent");
        }
    });
}

#[test]
fn every_job_closure_is_dropped_once() {
    // Nothing is lost or dropped twice: the closures of jobs that ran, were
    // cancelled through their handle, were discarded by shutdown_now, or
    // were handed back by a full queue are each dropped exactly once.
    with_timeout(LONG, || {
        let drops = Arc::new(AtomicUsize::new(0));
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(8)
            .build()
            .expect("build");
        let ran = {
            let counter = DropCounter(Arc::clone(&drops));
            pool.submit(move |_ctx: &Context| drop(counter))
                .expect("submit")
        };
        assert_eq!(ran.join(), Ok(()));
        assert_eq!(drops.load(Ordering::SeqCst), 1);

        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        let blocker = {
            let counter = DropCounter(Arc::clone(&drops));
            pool.submit(move |ctx: &Context| {
                let _counter = counter;
                started_tx.send(()).expect("the test waits");
                ctx.sleep(LONG)
            })
            .expect("submit")
        };
        started_rx.recv_timeout(LONG).expect("the blocker started");
        let queued: Vec<_> = (0..8)
            .map(|_| {
                let counter = DropCounter(Arc::clone(&drops));
                pool.submit(move |_ctx: &Context| drop(counter))
                    .expect("submit")
            })
            .collect();
        for handle in &queued[..4] {
            handle.cancel();
        }
        for _ in 0..2 {
            let counter = DropCounter(Arc::clone(&drops));
            let err = pool
                .try_submit(move |_ctx: &Context| drop(counter))
                .unwrap_err();
            drop(err.into_inner());
        }
        // Cancelling a queued job releases its closure at once; the two
        // handed-back closures were dropped by the test.
        assert_eq!(drops.load(Ordering::SeqCst), 1 + 4 + 2);

        let report = pool.shutdown_now();

        assert_eq!(drops.load(Ordering::SeqCst), 1 + 2 + 1 + 8);
        assert_eq!(report.submitted, 1 + 1 + 8);
        assert_eq!(report.ran, 2);
        assert_eq!(report.never_ran, 8);
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
fn submits_racing_cancel_lose_no_job() {
    // Submitters racing a cancel: every accepted job either runs once or is
    // reported never-run, every handle resolves, and the stats balance.
    with_timeout(LONG, || {
        for round in 0..50 {
            let pool = ThreadPool::builder()
                .workers(2)
                .queue_capacity(4)
                .build()
                .expect("build");
            let ran = Arc::new(AtomicUsize::new(0));
            let some_accepted = Latch::new(10);
            let handles: Vec<JobHandle<()>> = thread::scope(|s| {
                let submitters: Vec<_> = (0..2)
                    .map(|_| {
                        let (pool, ran, some_accepted) = (&pool, &ran, &some_accepted);
                        s.spawn(move || {
                            let mut handles = Vec::new();
                            loop {
                                let ran = Arc::clone(ran);
                                let job = move |_ctx: &Context| {
                                    ran.fetch_add(1, Ordering::SeqCst);
                                };
                                match pool.submit(job) {
                                    Ok(handle) => handles.push(handle),
                                    Err(SubmitError::Cancelled(_)) => return handles,
                                    Err(err) => panic!("unexpected {err:?}"),
                                }
                                some_accepted.count_down();
                            }
                        })
                    })
                    .collect();
                some_accepted.wait();
                pool.context().cancel();
                submitters
                    .into_iter()
                    .flat_map(|s| s.join().expect("submitter"))
                    .collect()
            });
            let accepted = handles.len() as u64;
            let mut finished = 0;
            for handle in handles {
                match handle.join() {
                    Ok(()) => finished += 1,
                    Err(JobError::Cancelled(Cancelled::Canceled)) => {}
                    Err(err) => panic!("round {round}: unexpected {err:?}"),
                }
            }
            assert!(wait_until(LONG, || pool.stats().workers == 0));
            let stats = pool.stats();
            assert_eq!(stats.submitted, accepted, "round {round}: {stats}");
            assert_eq!(
                stats.completed + stats.failed + stats.cancelled,
                accepted,
                "round {round}: {stats}"
            );
            assert_eq!(
                stats.completed + stats.failed,
                ran.load(Ordering::SeqCst) as u64,
                "round {round}: {stats}"
            );
            assert_eq!(stats.completed, finished, "round {round}: {stats}");
        }
    });
}

#[test]
fn close_through_a_shared_arc_stops_intake_and_drains() {
    // A pool shared behind an Arc is closed by one owner: later submits
    // fail with Closed, a submitter blocked on the full queue wakes with
    // Closed, and what was queued before still runs.
    with_timeout(LONG, || {
        let gate = Gate::new();
        let pool = Arc::new(
            ThreadPool::builder()
                .workers(1)
                .queue_capacity(1)
                .thread_name("closearc")
                .build()
                .expect("a valid pool"),
        );
        let ran = Arc::new(AtomicUsize::new(0));
        let held = {
            let gate = gate.clone();
            pool.submit(move |_ctx| gate.wait()).expect("accepted")
        };
        assert!(wait_until(LONG, || pool.stats().busy == 1));
        let queued = {
            let ran = Arc::clone(&ran);
            pool.submit(move |_ctx| {
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .expect("room for one")
        };
        thread::scope(|s| {
            let blocked = thread::Builder::new()
                .name("closearc-sub".to_owned())
                .spawn_scoped(s, || pool.execute(|| ()))
                .expect("spawn the submitter");
            assert!(wait_until(LONG, || thread_sleeping("closearc-sub")));
            let shared = Arc::clone(&pool);
            thread::spawn(move || shared.close())
                .join()
                .expect("closed");
            assert!(matches!(
                blocked.join().expect("no panic"),
                Err(SubmitError::Closed(_))
            ));
        });
        assert!(matches!(pool.execute(|| ()), Err(SubmitError::Closed(_))));
        gate.open();
        assert_eq!(held.join(), Ok(()));
        assert_eq!(queued.join(), Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    });
}
