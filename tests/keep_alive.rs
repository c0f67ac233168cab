//! `keep_alive`: idle workers leave — a fixed-size pool down to no worker
//! thread, an adaptive one down to its `min`, which may be 0 — and the
//! next job starts one at once; workers come back up to the pool's size
//! when jobs need them; hooks, stats, per-worker state and shutdown cover
//! the threads that come and go.

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use brigade::{Context, Sizing, ThreadPool, WorkerPool};
use common::{LONG, Latch, threads_named, wait_until, with_timeout};
use parking_lot::Mutex;

/// Short, so the tests see workers leave soon; waits for it are bounded
/// by `LONG`, never timed.
const IDLE: Duration = Duration::from_millis(20);

#[test]
fn an_idle_pool_holds_no_worker_thread_and_the_next_job_runs() {
    with_timeout(LONG, || {
        let exits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&exits);
        let pool = ThreadPool::builder()
            .workers(3)
            .keep_alive(IDLE)
            .thread_name("ka-zero")
            .on_thread_exit(move |_| {
                counted.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .expect("valid pool");
        assert_eq!(pool.submit(|_ctx| 1).expect("accepted").join(), Ok(1));
        assert!(
            // The count first: a thread just started may not have named
            // itself yet.
            wait_until(LONG, || pool.stats().workers == 0
                && threads_named("ka-zero") == 0),
            "{} workers stayed past the keep-alive",
            threads_named("ka-zero")
        );
        let stats = pool.stats();
        assert_eq!(stats.workers, 0);
        assert_eq!(stats.expired, 3);
        assert_eq!(
            exits.load(Ordering::SeqCst),
            3,
            "every leaver's exit hook ran"
        );

        // The next job starts a worker at once, and runs.
        let on = pool
            .submit(|_ctx| thread::current().name().map(str::to_owned))
            .expect("accepted")
            .join()
            .expect("ran");
        assert!(on.is_some_and(|name| name.starts_with("ka-zero-")));
        let stats = pool.stats();
        assert_eq!(stats.submitted, 2);
        assert_eq!(stats.completed, 2);
        pool.join();
        assert_eq!(threads_named("ka-zero"), 0);
    });
}

#[test]
fn workers_come_back_up_to_the_pool_size_when_jobs_need_them() {
    // After the pool has emptied, four jobs that each wait for the others
    // can only finish if four workers start for them; a fifth waits for
    // one to come free instead of starting a fifth thread.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(4)
            .keep_alive(IDLE)
            .thread_name("ka-back")
            .build()
            .expect("valid pool");
        assert!(wait_until(LONG, || pool.stats().workers == 0));
        let all_here = Latch::new(4);
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let all_here = Arc::clone(&all_here);
                pool.submit(move |_ctx| {
                    all_here.count_down();
                    all_here.wait_timeout(LONG).then_some(i)
                })
                .expect("accepted")
            })
            .collect();
        let fifth = pool.submit(|_ctx| 5).expect("accepted");
        for (i, handle) in handles.into_iter().enumerate() {
            assert_eq!(handle.join(), Ok(Some(i)), "job {i} met the others");
        }
        assert_eq!(fifth.join(), Ok(5));
        assert!(pool.stats().workers <= 4);
        assert!(threads_named("ka-back") <= 4);
        pool.join();
    });
}

#[test]
fn an_adaptive_pool_with_min_zero_scales_to_zero_and_back() {
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .sizing(Sizing::Adaptive { min: 0, max: 4 })
            .keep_alive(IDLE)
            .thread_name("ka-adapt")
            .build()
            .expect("min 0 with a keep-alive is valid");
        assert!(pool.stats().workers >= 1, "it starts as adaptive pools do");
        // The controller thread (`ka-adapt-ctl`) is the one helper left.
        assert!(
            wait_until(LONG, || pool.stats().workers == 0),
            "{} workers stayed",
            pool.stats().workers
        );
        assert!(wait_until(LONG, || threads_named("ka-adapt") == 1));
        assert!(
            common::thread_names()
                .iter()
                .any(|name| name == "ka-adapt-ctl")
        );
        assert_eq!(pool.submit(|_ctx| 7).expect("accepted").join(), Ok(7));
        pool.join();
        assert_eq!(threads_named("ka-adapt"), 0);
    });
}

#[test]
fn an_adaptive_pool_keeps_its_min() {
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .sizing(Sizing::Adaptive { min: 2, max: 4 })
            .keep_alive(IDLE)
            .thread_name("ka-min")
            .build()
            .expect("valid pool");
        let workers = pool.stats().workers;
        // A negative: over ten keep-alives the pool must not go below its
        // min (the sleep shapes the test, it times nothing).
        thread::sleep(IDLE * 10);
        assert!(
            pool.stats().workers >= 2,
            "below min: {}",
            pool.stats().workers
        );
        assert!(pool.stats().expired as usize <= workers.saturating_sub(2));
        assert_eq!(pool.submit(|_ctx| 2).expect("accepted").join(), Ok(2));
        pool.join();
    });
}

#[test]
fn a_worker_pool_drops_a_leaving_workers_state_on_its_thread_and_builds_fresh() {
    with_timeout(LONG, || {
        let built = Arc::new(AtomicUsize::new(0));
        let dropped_on = Arc::new(Mutex::new(Vec::new()));
        let (b, d) = (Arc::clone(&built), Arc::clone(&dropped_on));
        let pool = WorkerPool::builder()
            .workers(2)
            .keep_alive(IDLE)
            .thread_name("ka-state")
            .build_with_state(
                move |_index| {
                    b.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, Infallible>(Noted(Arc::clone(&d)))
                },
                |_ctx: &Context, _state: &mut Noted, n: u32| n * 2,
            )
            .expect("valid pool");
        // Each worker builds its state on its own thread as it starts.
        assert!(wait_until(LONG, || built.load(Ordering::SeqCst) == 2));
        assert!(wait_until(LONG, || {
            pool.stats().workers == 0 && threads_named("ka-state") == 0
        }));
        {
            let dropped_on = dropped_on.lock();
            assert_eq!(dropped_on.len(), 2, "both states dropped");
            assert!(dropped_on.iter().all(|name| name.starts_with("ka-state-")));
        }
        pool.submit(21).expect("accepted");
        let out = pool.results().recv_timeout(LONG).expect("a result");
        assert_eq!(out.result, Ok(42));
        assert_eq!(
            built.load(Ordering::SeqCst),
            3,
            "a fresh state for the new worker"
        );
        pool.close();
        assert!(pool.join().is_empty());
        assert_eq!(dropped_on.lock().len(), 3);
    });
}

/// A worker's state that notes the thread it is dropped on.
struct Noted(Arc<Mutex<Vec<String>>>);

impl Drop for Noted {
    fn drop(&mut self) {
        let here = thread::current().name().unwrap_or("unnamed").to_owned();
        self.0.lock().push(here);
    }
}

#[test]
fn a_rendezvous_pool_keeps_one_worker() {
    // A capacity-0 queue holds no job a leaving worker could see (a submit
    // waits in its send for a receiving worker), so one worker stays.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(3)
            .queue_capacity(0)
            .keep_alive(IDLE)
            .thread_name("ka-rdv")
            .build()
            .expect("valid pool");
        assert!(wait_until(LONG, || pool.stats().expired == 2));
        assert_eq!(pool.stats().workers, 1);
        assert_eq!(pool.submit(|_ctx| 3).expect("accepted").join(), Ok(3));
        pool.join();
    });
}

#[test]
fn shutdown_of_an_emptied_pool_returns_and_reports_nothing_lost() {
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .keep_alive(IDLE)
            .thread_name("ka-shut")
            .build()
            .expect("valid pool");
        assert!(wait_until(LONG, || pool.stats().workers == 0));
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let ran = Arc::clone(&ran);
            pool.execute(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .expect("accepted");
        }
        let report = pool.shutdown_timeout(LONG);
        assert_eq!((report.never_ran, report.ran), (0, 100), "{report:?}");
        assert!(report.drained);
        assert_eq!(ran.load(Ordering::SeqCst), 100);
        assert_eq!(threads_named("ka-shut"), 0);
    });
}

#[test]
fn set_workers_is_the_size_jobs_grow_an_emptied_pool_back_to() {
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(1)
            .keep_alive(IDLE)
            .thread_name("ka-resize")
            .build()
            .expect("valid pool");
        pool.set_workers(3).expect("3 workers");
        assert!(wait_until(LONG, || pool.stats().expired >= 3));
        assert!(wait_until(LONG, || threads_named("ka-resize") == 0));
        // Three jobs that wait for each other need the three workers back.
        let all_here = Latch::new(3);
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let all_here = Arc::clone(&all_here);
                pool.submit(move |_ctx| {
                    all_here.count_down();
                    all_here.wait_timeout(LONG)
                })
                .expect("accepted")
            })
            .collect();
        for handle in handles {
            assert_eq!(handle.join(), Ok(true), "every job met the others");
        }
        pool.join();
    });
}
