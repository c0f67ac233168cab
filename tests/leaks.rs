//! Thread leaks: every front door that starts threads leaves none behind
//! once it is shut down, dropped or has returned — `ThreadPool` (every
//! shutdown flavour, `Drop`, and shutdown from inside one of its own jobs),
//! `WorkerPool`, `Pipeline` runs however they end, `ErrGroup` in all its
//! forms, `ThreadPool::scope`, and `map` / `try_map` stopped early.
//!
//! Each test names its threads uniquely and counts them through
//! `/proc/self/task` (`threads_named`). A joined thread can linger in
//! `/proc` for a moment after `join` returns, so "gone" is checked with a
//! bounded `wait_until`. Every test first checks that its threads were
//! there, so a wrong prefix cannot make a check pass vacuously.
//!
//! `ErrGroup` names its threads `errgroup-{n}` and `errgroup-scoped`,
//! whatever the test, so the tests that start group threads hold
//! [`GROUP_THREADS`] and count only their own. The whole-process count
//! (every thread, named or not) is in `leaks_process.rs`, alone in its
//! binary.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use brigade::{
    Cancelled, Context, ErrGroup, GroupError, JobError, Pipeline, PipelineError, StageError,
    ThreadPool, TryMapError, WorkerPool,
};
use parking_lot::{Mutex, MutexGuard};

use common::{
    Gate, LONG, Latch, occupy_worker, thread_names, thread_sleeping, threads_named, wait_until,
    with_timeout,
};

/// How long threads may take to appear or to be gone: generous, yet well
/// inside the tests' `LONG` timeout, so a leak fails with the thread names
/// rather than as a hang.
const SETTLE: Duration = Duration::from_secs(10);

/// Held by every test that starts `errgroup-…` threads.
static GROUP_THREADS: Mutex<()> = Mutex::new(());

/// Takes [`GROUP_THREADS`] and checks that no group thread of an earlier
/// test is left.
fn group_threads_lock() -> MutexGuard<'static, ()> {
    let guard = GROUP_THREADS.lock();
    assert_gone("errgroup");
    guard
}

/// Waits until exactly `n` threads named `{prefix}-…` are alive.
fn assert_running(prefix: &str, n: usize) {
    assert!(
        wait_until(SETTLE, || threads_named(prefix) == n),
        "expected {n} threads named {prefix}-…, found {}: {:?}",
        threads_named(prefix),
        thread_names()
    );
}

/// Waits until no thread named `{prefix}-…` is alive.
fn assert_gone(prefix: &str) {
    assert!(
        wait_until(SETTLE, || threads_named(prefix) == 0),
        "threads named {prefix}-… outlived their front door: {:?}",
        thread_names()
    );
}

/// A pool of `workers` threads named `{prefix}-…`, checked to be running.
fn pool(prefix: &str, workers: usize) -> ThreadPool {
    let pool = ThreadPool::builder()
        .workers(workers)
        .thread_name(prefix)
        .build()
        .expect("build");
    assert_running(prefix, workers);
    pool
}

/// Queues `n` jobs that count themselves in `ran`.
fn counting_jobs(pool: &ThreadPool, ran: &Arc<AtomicUsize>, n: usize) {
    for _ in 0..n {
        let ran = Arc::clone(ran);
        pool.execute(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .expect("execute");
    }
}

#[test]
fn pool_join_leaves_no_thread() {
    // join drains the queue and leaves none of the pool's threads alive.
    with_timeout(LONG, || {
        let pool = pool("lk-join", 3);
        let ran = Arc::new(AtomicUsize::new(0));
        counting_jobs(&pool, &ran, 100);
        pool.join();
        assert_eq!(ran.load(Ordering::SeqCst), 100);
        assert_gone("lk-join");
    });
}

#[test]
fn pool_shutdown_now_leaves_no_thread() {
    // shutdown_now with busy workers and a queue leaves no thread alive.
    with_timeout(LONG, || {
        let pool = pool("lk-now", 2);
        let started = Latch::new(2);
        let sleepers: Vec<_> = (0..2)
            .map(|_| {
                let started = Arc::clone(&started);
                pool.submit(move |ctx: &Context| {
                    started.count_down();
                    ctx.sleep(LONG)
                })
                .expect("submit")
            })
            .collect();
        let ran = Arc::new(AtomicUsize::new(0));
        counting_jobs(&pool, &ran, 50);
        started.wait();
        let report = pool.shutdown_now();
        assert_eq!(
            (report.submitted, report.ran, report.never_ran),
            (52, 2, 50),
            "{report:?}"
        );
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        for sleeper in sleepers {
            // Cut short while sleeping: the value is discarded.
            assert_eq!(
                sleeper.join(),
                Err(JobError::Cancelled(Cancelled::Canceled))
            );
        }
        assert_gone("lk-now");
    });
}

#[test]
fn pool_shutdown_timeout_leaves_no_thread() {
    // shutdown_timeout leaves no thread, whether it drains in time or hard-cancels.
    with_timeout(LONG, || {
        let drained = pool("lk-tmo-d", 2);
        let ran = Arc::new(AtomicUsize::new(0));
        counting_jobs(&drained, &ran, 20);
        let report = drained.shutdown_timeout(LONG);
        assert!(report.drained, "{report:?}");
        assert_eq!(ran.load(Ordering::SeqCst), 20);
        assert_gone("lk-tmo-d");

        let cut = pool("lk-tmo-c", 2);
        let started = Latch::new(2);
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let started = Arc::clone(&started);
                cut.submit(move |ctx: &Context| {
                    started.count_down();
                    ctx.sleep(LONG)
                })
                .expect("submit")
            })
            .collect();
        counting_jobs(&cut, &ran, 20);
        started.wait();
        let report = cut.shutdown_timeout(Duration::from_millis(50));
        assert!(!report.drained, "{report:?}");
        assert_eq!(report.never_ran, 20, "{report:?}");
        for waiter in waiters {
            assert_eq!(waiter.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        }
        assert_gone("lk-tmo-c");
    });
}

#[test]
fn pool_drop_leaves_no_thread() {
    // Dropping a busy pool blocks until it has drained and joined every thread.
    with_timeout(LONG, || {
        let pool = pool("lk-drop", 2);
        let gate = Gate::new();
        let held = occupy_worker(&pool, &gate);
        let ran = Arc::new(AtomicUsize::new(0));
        counting_jobs(&pool, &ran, 50);
        let dropper = thread::Builder::new()
            .name("lk-dropper".to_owned())
            .spawn(move || drop(pool))
            .expect("spawn the dropper");
        // The drop is waiting for the held worker before the gate opens.
        assert!(wait_until(LONG, || thread_sleeping("lk-dropper")));
        gate.open();
        dropper.join().expect("drop returned");
        assert_eq!(held.join(), Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), 50);
        assert_gone("lk-drop");
    });
}

#[test]
fn pool_shut_down_from_its_own_job_leaves_no_thread() {
    // Every shutdown called from the pool's own job returns, and the threads exit.
    type Shutdown = fn(ThreadPool);
    let flavours: [(&str, Shutdown, bool); 4] = [
        ("lk-in-drop", drop, true),
        ("lk-in-join", ThreadPool::join, true),
        (
            "lk-in-now",
            |p| {
                let _ = p.shutdown_now();
            },
            false,
        ),
        // Whether this one drains is checked on its own below.
        (
            "lk-in-tmo",
            |p| {
                let _ = p.shutdown_timeout(LONG);
            },
            false,
        ),
    ];
    with_timeout(LONG, move || {
        for (prefix, shutdown, drains) in flavours {
            let pool = pool(prefix, 2);
            let (pool_tx, pool_rx) = crossbeam_channel::bounded::<ThreadPool>(1);
            let (done_tx, done_rx) = crossbeam_channel::bounded(1);
            pool.execute(move || {
                let own = pool_rx.recv_timeout(LONG).expect("the pool arrives");
                shutdown(own);
                done_tx.send(()).expect("the test waits");
            })
            .expect("execute");
            let ran = Arc::new(AtomicUsize::new(0));
            counting_jobs(&pool, &ran, 10);
            pool_tx.send(pool).expect("the job waits for the pool");
            done_rx
                .recv_timeout(LONG)
                .unwrap_or_else(|_| panic!("{prefix}: the shutdown inside a job returned"));
            assert_gone(prefix);
            if drains {
                assert_eq!(ran.load(Ordering::SeqCst), 10, "{prefix}");
            }
        }
    });
}

#[test]
fn pool_shutdown_timeout_from_its_own_job_drains_the_queue() {
    // shutdown_timeout from the pool's own job lets the workers finish the queue.
    with_timeout(LONG, || {
        let pool = pool("lk-in-tmd", 2);
        // The other worker is held, so the queue is still full when the
        // shutdown is called.
        let gate = Gate::new();
        let held = occupy_worker(&pool, &gate);
        let (pool_tx, pool_rx) = crossbeam_channel::bounded::<ThreadPool>(1);
        let (report_tx, report_rx) = crossbeam_channel::bounded(1);
        pool.execute(move || {
            let own = pool_rx.recv_timeout(LONG).expect("the pool arrives");
            report_tx
                .send(own.shutdown_timeout(LONG))
                .expect("the test waits");
        })
        .expect("execute");
        let ran = Arc::new(AtomicUsize::new(0));
        counting_jobs(&pool, &ran, 10);
        pool_tx.send(pool).expect("the job waits for the pool");
        let report = report_rx
            .recv_timeout(LONG)
            .expect("the shutdown inside a job returned");
        gate.open();
        let _ = held.join();
        assert_gone("lk-in-tmd");
        // The pool module's docs: a shutdown called from one of the pool's
        // own jobs cannot wait for itself; it closes intake and returns at
        // once, and the workers finish the queue and exit on their own.
        // The timeout (LONG) is far off, so nothing should be cancelled.
        assert_eq!(
            ran.load(Ordering::SeqCst),
            10,
            "the queued jobs were discarded at once, not drained: {report:?}"
        );
    });
}

#[test]
fn worker_pool_join_leaves_no_thread() {
    // WorkerPool::join, with a consumer reading, leaves no worker alive.
    with_timeout(LONG, || {
        let pool = WorkerPool::builder()
            .workers(3)
            .thread_name("lk-wpj")
            .results_capacity(4)
            .build(|_ctx, n: u64| n * 2)
            .expect("build");
        assert_running("lk-wpj", 3);
        let results = pool.results().clone();
        let consumer = thread::spawn(move || results.iter().map(|out| out.index).sum::<u64>());
        for n in 0..200 {
            pool.submit(n).expect("submit");
        }
        let leftovers = pool.join();
        assert!(leftovers.is_empty());
        assert_eq!(
            consumer.join().expect("the consumer finished"),
            (0..200).sum()
        );
        assert_gone("lk-wpj");
    });
}

#[test]
fn worker_pool_stop_then_join_leaves_no_thread() {
    // stop wakes busy and blocked workers; join then leaves no worker alive.
    with_timeout(LONG, || {
        let pool = WorkerPool::builder()
            .workers(2)
            .thread_name("lk-wps")
            .results_capacity(1)
            .build(|ctx, n: u64| {
                if n < 2 {
                    let _ = ctx.sleep(LONG);
                }
                n
            })
            .expect("build");
        assert_running("lk-wps", 2);
        for n in 0..20 {
            pool.submit(n).expect("submit");
        }
        // Both workers are inside the sleeping jobs once two jobs left the
        // queue and nothing finished.
        assert!(wait_until(LONG, || pool.stats().busy == 2));
        pool.stop();
        let leftovers = pool.join();
        assert_eq!(
            leftovers.unprocessed.len() + leftovers.undelivered.len(),
            19,
            "{leftovers:?}"
        );
        assert_gone("lk-wps");
    });
}

#[test]
fn worker_pool_drop_with_unread_results_leaves_no_thread() {
    // Dropping a WorkerPool blocked on an unread results channel leaves no worker.
    with_timeout(LONG, || {
        let pool = WorkerPool::builder()
            .workers(2)
            .thread_name("lk-wpd")
            .results_capacity(1)
            .build(|_ctx, n: u64| n)
            .expect("build");
        assert_running("lk-wpd", 2);
        let unread = pool.results().clone();
        for n in 0..10 {
            pool.submit(n).expect("submit");
        }
        // One result fills the channel; both workers then hold a result.
        assert!(wait_until(LONG, || unread.is_full() && pool.stats().completed == 3));
        drop(pool);
        assert_gone("lk-wpd");
        assert_eq!(unread.len(), 1);
    });
}

#[test]
fn pipeline_completed_run_leaves_no_thread() {
    // A completed run joins every stage's threads before it returns.
    with_timeout(LONG, || {
        let out = Pipeline::<u64, u64, String>::new(&Context::new())
            .stage("lk-po1", 3, |_ctx, n: u64| Ok(n + 1))
            .stage("lk-po2", 2, |_ctx, n: u64| Ok(n * 2))
            .ordered()
            .build()
            .expect("valid pipeline")
            .run(0..500)
            .expect("the run completes");
        assert_eq!(
            out.outputs,
            (0..500).map(|n| (n + 1) * 2).collect::<Vec<_>>()
        );
        assert_eq!(out.stages[0].name, "lk-po1");
        assert_eq!(out.stages[1].stats.completed, 500);
        assert_gone("lk-po1");
        assert_gone("lk-po2");
    });
}

#[test]
fn pipeline_cancelled_run_leaves_no_thread() {
    // A run cancelled through its parent context leaves no stage thread.
    with_timeout(LONG, || {
        let parent = Context::new();
        let started = Latch::new(2);
        let run = {
            let parent = parent.clone();
            let started = Arc::clone(&started);
            thread::spawn(move || {
                Pipeline::<u64, u64, String>::new(&parent)
                    .stage("lk-pc1", 2, |_ctx, n: u64| Ok(n))
                    .stage("lk-pc2", 2, move |ctx, n: u64| {
                        started.count_down();
                        let _ = ctx.sleep(LONG);
                        Ok(n)
                    })
                    .build()
                    .expect("valid pipeline")
                    .run(0..1_000)
            })
        };
        started.wait();
        assert_running("lk-pc1", 2);
        assert_running("lk-pc2", 2);
        parent.cancel();
        let ended = run.join().expect("run returned");
        assert!(
            matches!(ended, Err(PipelineError::Cancelled(Cancelled::Canceled))),
            "{ended:?}"
        );
        assert_gone("lk-pc1");
        assert_gone("lk-pc2");
    });
}

#[test]
fn pipeline_failed_run_leaves_no_thread() {
    // A run that fails fast leaves no stage thread.
    with_timeout(LONG, || {
        let ended = Pipeline::<u64, u64, String>::new(&Context::new())
            .stage("lk-pf1", 2, |_ctx, n: u64| Ok(n))
            .stage("lk-pf2", 3, |ctx, n: u64| {
                if n == 7 {
                    return Err(format!("item {n} is bad"));
                }
                if n < 2 {
                    // Still waiting when the failure cancels the run.
                    let _ = ctx.sleep(LONG);
                }
                Ok(n)
            })
            .build()
            .expect("valid pipeline")
            .run(0..1_000);
        match ended {
            Err(PipelineError::Stage(failure)) => {
                assert_eq!(failure.index, 7);
                assert_eq!(failure.stage, "lk-pf2");
                assert_eq!(failure.error, StageError::Failed("item 7 is bad".into()));
            }
            other => panic!("the run ended with {other:?}"),
        }
        assert_gone("lk-pf1");
        assert_gone("lk-pf2");
    });
}

#[test]
fn errgroup_wait_leaves_no_thread() {
    // wait joins every thread the group started, never more than its limit.
    let _only = group_threads_lock();
    with_timeout(LONG, || {
        let group = ErrGroup::<String>::new(&Context::new())
            .limit(3)
            .expect("limit");
        let gate = Gate::new();
        for _ in 0..3 {
            let gate = gate.clone();
            group
                .spawn(move |_ctx| {
                    gate.wait();
                    Ok(())
                })
                .expect("spawn");
        }
        assert_running("errgroup", 3);
        gate.open();
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let ran = Arc::clone(&ran);
            group
                .spawn(move |_ctx| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
                .expect("spawn");
        }
        assert_eq!(group.threads(), 3);
        assert_eq!(group.wait(), Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), 100);
        assert_gone("errgroup");
    });
}

#[test]
fn errgroup_dropped_without_wait_leaves_no_thread() {
    // A group dropped without wait cancels its tasks and joins their threads.
    let _only = group_threads_lock();
    with_timeout(LONG, || {
        let group = ErrGroup::<String>::new(&Context::new());
        let started = Latch::new(4);
        let stopped = Arc::new(AtomicUsize::new(0));
        for _ in 0..4 {
            let (started, stopped) = (Arc::clone(&started), Arc::clone(&stopped));
            group
                .spawn(move |ctx| {
                    started.count_down();
                    if ctx.sleep(LONG).is_err() {
                        stopped.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(())
                })
                .expect("spawn");
        }
        started.wait();
        assert_running("errgroup", 4);
        drop(group);
        assert_eq!(stopped.load(Ordering::SeqCst), 4);
        assert_gone("errgroup");
    });
}

#[test]
fn errgroup_scope_leaves_no_thread() {
    // The scoped group's threads are gone once scope returns.
    let _only = group_threads_lock();
    with_timeout(LONG, || {
        let group = ErrGroup::<String>::new(&Context::new())
            .limit(2)
            .expect("limit");
        let mut slots = vec![0_u64; 50];
        let gate = Gate::new();
        let seen = group
            .scope(|g| {
                for (i, slot) in slots.iter_mut().enumerate() {
                    let task_gate = gate.clone();
                    g.spawn(move |_ctx| {
                        task_gate.wait();
                        *slot = i as u64 * 3;
                        Ok(())
                    })
                    .map_err(|err| err.to_string())?;
                    if i == 1 {
                        // Two tasks hold the two slots, on two threads.
                        let both = wait_until(LONG, || threads_named("errgroup") == 2);
                        gate.open();
                        return Ok::<bool, String>(both);
                    }
                }
                Ok(false)
            })
            .expect("no task failed")
            .expect("every spawn was accepted");
        assert!(seen, "two errgroup-scoped threads ran the two tasks");
        assert_eq!(slots[..2], [0, 3]);
        assert_gone("errgroup");
    });
}

#[test]
fn errgroup_on_pool_leaves_no_thread() {
    // A group on a pool starts no thread; the pool's go when it is joined.
    let _only = group_threads_lock();
    with_timeout(LONG, || {
        let pool = pool("lk-egp", 2);
        let group = ErrGroup::<String>::on_pool(&Context::new(), &pool);
        for i in 0..50 {
            let _ = group.spawn(move |ctx| {
                ctx.check().map_err(|reason| reason.to_string())?;
                if i == 30 {
                    Err("task 30 failed".to_owned())
                } else {
                    Ok(())
                }
            });
        }
        assert_eq!(group.threads(), 0);
        assert_eq!(threads_named("errgroup"), 0);
        assert_eq!(
            group.wait(),
            Err(GroupError::Failed("task 30 failed".to_owned()))
        );
        pool.join();
        assert_gone("lk-egp");
        assert_eq!(threads_named("errgroup"), 0);
    });
}

#[test]
fn scope_leaves_no_thread() {
    // A scope starts no thread; the pool's go when it is joined.
    with_timeout(LONG, || {
        let pool = pool("lk-scope", 3);
        let words: Vec<String> = (0..200).map(|i| format!("word{i}")).collect();
        let mut lengths = vec![0; words.len()];
        pool.scope(|s| {
            for (word, len) in words.iter().zip(lengths.iter_mut()) {
                s.spawn(move |_ctx| *len = word.len());
            }
        });
        assert_eq!(lengths[0], 5);
        assert_eq!(lengths[199], 7);
        assert_eq!(threads_named("lk-scope"), 3);
        pool.join();
        assert_gone("lk-scope");
    });
}

#[test]
fn map_dropped_early_leaves_no_thread() {
    // A map dropped early and a failed try_map leave the pool free to be joined.
    with_timeout(LONG, || {
        let pool = pool("lk-map", 2);
        let gate = Gate::new();
        let mut map = {
            let gate = gate.clone();
            pool.map_unordered(0..10_000_u64, move |n| {
                // Ten results need item 5 taken off the queue: it is
                // running when the map is dropped.
                if n == 5 {
                    gate.wait();
                }
                n
            })
            .chunk_size(1)
        };
        let first: Vec<_> = map.by_ref().take(10).collect();
        assert_eq!(first.len(), 10);
        drop(map);
        gate.open();

        let failed = pool.try_map(0..10_000_u64, |n| {
            if n == 100 {
                Err(format!("item {n}"))
            } else {
                Ok(n)
            }
        });
        match failed {
            Err(TryMapError::Failed { index, error }) => {
                assert_eq!((index, error.as_str()), (100, "item 100"));
            }
            other => panic!("try_map ended with {other:?}"),
        }
        assert_eq!(threads_named("lk-map"), 2);
        pool.join();
        assert_gone("lk-map");
    });
}
