//! The whole-process thread count: after every front door has been used
//! and shut down — `ThreadPool` in each shutdown flavour and dropped from
//! inside its own job, `WorkerPool`, `Pipeline` runs that complete, are
//! cancelled or fail, `ErrGroup` in all its forms, `scope`, and `map` /
//! `try_map` stopped early — the process has exactly the threads it had
//! before, named or not.
//!
//! This file holds a single test on purpose: it compares the process's whole
//! thread count (`/proc/self/task`) before and after, which other tests'
//! threads would disturb. `leaks.rs` checks each front door by name.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use brigade::{Context, ErrGroup, Pipeline, PipelineError, ThreadPool, WorkerPool};

use common::{Gate, LONG, Latch, task_count, thread_names, wait_until, with_timeout};

fn pool(workers: usize) -> ThreadPool {
    ThreadPool::builder()
        .workers(workers)
        .thread_name("lkp")
        .build()
        .expect("build")
}

/// Every `ThreadPool` shutdown flavour, with work queued.
fn thread_pools() {
    let ran = Arc::new(AtomicUsize::new(0));
    let queue = |pool: &ThreadPool| {
        for _ in 0..20 {
            let ran = Arc::clone(&ran);
            pool.execute(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .expect("execute");
        }
    };
    let p = pool(2);
    queue(&p);
    p.join();
    let p = pool(2);
    let sleeper = p.submit(|ctx: &Context| ctx.sleep(LONG)).expect("submit");
    queue(&p);
    let _ = p.shutdown_now();
    let _ = sleeper.join();
    let p = pool(2);
    let sleeper = p.submit(|ctx: &Context| ctx.sleep(LONG)).expect("submit");
    queue(&p);
    let _ = p.shutdown_timeout(Duration::from_millis(20));
    let _ = sleeper.join();
    let p = pool(2);
    queue(&p);
    drop(p);

    // Dropped from inside its own job: nobody joins the threads.
    let p = pool(2);
    let (pool_tx, pool_rx) = crossbeam_channel::bounded::<ThreadPool>(1);
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    p.execute(move || {
        drop(pool_rx.recv_timeout(LONG).expect("the pool arrives"));
        done_tx.send(()).expect("the test waits");
    })
    .expect("execute");
    queue(&p);
    pool_tx.send(p).expect("the job waits");
    done_rx.recv_timeout(LONG).expect("the drop returned");
}

/// `WorkerPool`: joined, stopped, and dropped with unread results.
fn worker_pools() {
    // Job 0 sleeps until cancelled if `sleeper`: only `stop` cancels it,
    // and a drop waits for the jobs it has (a sleeper made this test's
    // drop wait the whole 30 s).
    let build = |sleeper: bool| {
        WorkerPool::builder()
            .workers(2)
            .thread_name("lkp-wp")
            .results_capacity(1)
            .build(move |ctx, n: u64| {
                if sleeper && n == 0 {
                    let _ = ctx.sleep(LONG);
                }
                n
            })
            .expect("build")
    };
    let joined = build(false);
    let results = joined.results().clone();
    let reader = thread::spawn(move || results.iter().count());
    for n in 1..50 {
        joined.submit(n).expect("submit");
    }
    assert!(joined.join().is_empty());
    assert_eq!(reader.join().expect("the reader finished"), 49);
    for stop in [true, false] {
        let pool = build(stop);
        for n in 0..20 {
            pool.submit(n).expect("submit");
        }
        if stop {
            pool.stop();
            let _ = pool.join();
        } else {
            drop(pool);
        }
    }
}

/// `Pipeline` runs that complete, are cancelled, and fail.
fn pipelines() {
    let ok = Pipeline::<u64, u64, String>::new(&Context::new())
        .stage("lkp-a", 2, |_ctx, n: u64| Ok(n + 1))
        .stage("lkp-b", 2, |_ctx, n: u64| Ok(n))
        .build()
        .expect("valid pipeline")
        .run(0..200)
        .expect("the run completes");
    assert_eq!(ok.outputs.len(), 200);

    let parent = Context::new();
    let started = Latch::new(1);
    let cancelled = {
        let (parent, started) = (parent.clone(), Arc::clone(&started));
        thread::spawn(move || {
            Pipeline::<u64, u64, String>::new(&parent)
                .stage("lkp-c", 2, move |ctx, n: u64| {
                    started.count_down();
                    let _ = ctx.sleep(LONG);
                    Ok(n)
                })
                .build()
                .expect("valid pipeline")
                .run(0..100)
        })
    };
    started.wait();
    parent.cancel();
    assert!(matches!(
        cancelled.join().expect("the run returned"),
        Err(PipelineError::Cancelled(_))
    ));

    let failed = Pipeline::<u64, u64, String>::new(&Context::new())
        .stage("lkp-f", 3, |ctx, n: u64| {
            if n == 5 {
                return Err("bad".to_owned());
            }
            if n == 0 {
                let _ = ctx.sleep(LONG);
            }
            Ok(n)
        })
        .build()
        .expect("valid pipeline")
        .run(0..100);
    assert!(matches!(failed, Err(PipelineError::Stage(_))));
}

/// `ErrGroup`: waited, dropped, scoped, and on a pool.
fn errgroups() {
    let group = ErrGroup::<String>::new(&Context::new())
        .limit(3)
        .expect("limit");
    for _ in 0..30 {
        group.spawn(|_ctx| Ok(())).expect("spawn");
    }
    assert_eq!(group.wait(), Ok(()));

    let dropped = ErrGroup::<String>::new(&Context::new());
    let started = Latch::new(3);
    for _ in 0..3 {
        let started = Arc::clone(&started);
        dropped
            .spawn(move |ctx| {
                started.count_down();
                let _ = ctx.sleep(LONG);
                Ok(())
            })
            .expect("spawn");
    }
    started.wait();
    drop(dropped);

    let mut sums = [0_u64; 8];
    let scoped = ErrGroup::<String>::new(&Context::new())
        .limit(2)
        .expect("limit")
        .scope(|g| {
            for (i, sum) in sums.iter_mut().enumerate() {
                g.spawn(move |_ctx| {
                    *sum = i as u64;
                    Ok(())
                })
                .map_err(|err| err.to_string())?;
            }
            Ok::<(), String>(())
        });
    assert_eq!(scoped, Ok(Ok(())));
    assert_eq!(sums[7], 7);

    let p = pool(2);
    let on_pool = ErrGroup::<String>::on_pool(&Context::new(), &p);
    for _ in 0..20 {
        on_pool.spawn(|_ctx| Ok(())).expect("spawn");
    }
    assert_eq!(on_pool.wait(), Ok(()));
    p.join();
}

/// `scope`, and `map` / `try_map` stopped early.
fn scope_and_map() {
    let p = pool(2);
    let mut cells = vec![0_u64; 100];
    p.scope(|s| {
        for (i, cell) in cells.iter_mut().enumerate() {
            s.spawn(move |_ctx| *cell = i as u64);
        }
    });
    assert_eq!(cells[99], 99);
    let gate = Gate::new();
    let mut map = {
        let gate = gate.clone();
        p.map(0..10_000_u64, move |n| {
            if n == 3 {
                gate.wait();
            }
            n
        })
        .chunk_size(1)
    };
    assert_eq!(map.next(), Some(Ok(0)));
    drop(map);
    gate.open();
    let failed = p.try_map(0..10_000_u64, |n| if n == 50 { Err(n) } else { Ok(n) });
    assert!(failed.is_err());
    p.join();
}

#[test]
fn every_front_door_leaves_the_thread_count_as_it_was() {
    // Using and shutting down every front door leaves the thread count as it was.
    with_timeout(LONG * 2, || {
        // The deadline timer thread is process-wide and starts lazily: start
        // it before the baseline so it is not mistaken for a leak.
        let warm = Context::new().with_timeout(Duration::from_secs(3600));
        let _ = warm.done();
        drop(warm);
        let baseline = task_count();
        let before = thread_names();

        thread_pools();
        worker_pools();
        pipelines();
        errgroups();
        scope_and_map();

        assert!(
            wait_until(LONG, || task_count() == baseline),
            "threads before: {before:?}, after: {:?}",
            thread_names()
        );
    });
}
