//! `set_workers` on `ThreadPool` and `WorkerPool`: growing starts workers
//! at once, shrinking lets idle workers leave first and busy ones only after
//! their job, no job is lost or run twice while sizes change under load,
//! bad counts are exact errors, and a closed pool does not grow.
//!
//! Every pool has a thread-name prefix unique to its test, so
//! `threads_named` counts only its workers.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use brigade::sizing::MAX_WORKERS;
use brigade::{Context, SizingError, ThreadPool, WorkerPool};
use crossbeam_channel::{Receiver, RecvTimeoutError};

use common::{Gate, LONG, Latch, SplitMix64, threads_named, wait_until, with_timeout};

/// Reads `results` until it disconnects; panics if it stays open for
/// [`LONG`] without a value.
fn drain<T>(results: &Receiver<T>) -> Vec<T> {
    let mut all = Vec::new();
    loop {
        match results.recv_timeout(LONG) {
            Ok(value) => all.push(value),
            Err(RecvTimeoutError::Disconnected) => return all,
            Err(RecvTimeoutError::Timeout) => {
                panic!("the results channel did not disconnect within {LONG:?}")
            }
        }
    }
}

/// Waits until `pool` has `n` live workers and `/proc` shows `n` threads
/// named `{prefix}-…`.
fn assert_settles(pool: &ThreadPool, prefix: &str, n: usize) {
    assert!(
        wait_until(LONG, || pool.stats().workers == n
            && threads_named(prefix) == n),
        "wanted {n} workers, have {} ({} threads named {prefix}-)",
        pool.stats().workers,
        threads_named(prefix)
    );
}

#[test]
fn grow_runs_blocked_jobs_at_once() {
    // Four jobs that each wait for all four to be running cannot finish on
    // one worker; set_workers(4) starts three more and they all finish.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(1)
            .thread_name("rsgrow")
            .build()
            .unwrap();
        let together = Latch::new(4);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let together = Arc::clone(&together);
                pool.submit(move |_: &Context| {
                    together.count_down();
                    together.wait_timeout(LONG)
                })
                .unwrap()
            })
            .collect();
        assert_eq!(pool.stats().workers, 1);
        pool.set_workers(4).unwrap();
        // Started synchronously: counted before set_workers returned.
        assert_eq!(pool.stats().workers, 4);
        for handle in handles {
            assert_eq!(handle.join(), Ok(true), "all four ran at once");
        }
        assert_settles(&pool, "rsgrow", 4);
        pool.join();
        assert!(wait_until(LONG, || threads_named("rsgrow") == 0));
    });
}

#[test]
fn shrink_lets_idle_workers_leave() {
    // With four idle workers, set_workers(1) leaves one worker thread, and
    // the pool still runs jobs.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(4)
            .thread_name("rsidle")
            .build()
            .unwrap();
        assert_settles(&pool, "rsidle", 4);
        pool.set_workers(1).unwrap();
        assert_settles(&pool, "rsidle", 1);
        let handles: Vec<_> = (0..10u32)
            .map(|n| pool.submit(move |_: &Context| n * n).unwrap())
            .collect();
        for (n, handle) in (0..10u32).zip(handles) {
            assert_eq!(handle.join(), Ok(n * n));
        }
        let stats = pool.stats();
        assert_eq!((stats.workers, stats.completed), (1, 10), "{stats}");
        pool.join();
    });
}

#[test]
fn busy_workers_leave_only_after_their_job() {
    // Four workers hold gate-blocked jobs when set_workers(1) is called:
    // none leaves or is interrupted mid-job; once the gate opens all four
    // jobs complete cleanly and then the pool settles at one worker.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(4)
            .thread_name("rsbusy")
            .build()
            .unwrap();
        let gate = Gate::new();
        let started = Latch::new(4);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (gate, started) = (gate.clone(), Arc::clone(&started));
                pool.submit(move |ctx: &Context| {
                    started.count_down();
                    gate.wait();
                    // Still under an uncancelled context: not interrupted.
                    ctx.check()
                })
                .unwrap()
            })
            .collect();
        started.wait();
        pool.set_workers(1).unwrap();
        let stats = pool.stats();
        assert_eq!((stats.workers, stats.busy), (4, 4), "{stats}");
        assert_eq!(threads_named("rsbusy"), 4);
        assert!(handles.iter().all(|h| !h.is_finished()));
        gate.open();
        for handle in handles {
            assert_eq!(handle.join(), Ok(Ok(())));
        }
        assert_settles(&pool, "rsbusy", 1);
        let stats = pool.stats();
        assert_eq!(
            (stats.completed, stats.failed, stats.cancelled),
            (4, 0, 0),
            "{stats}"
        );
        assert_eq!(
            pool.submit(|_: &Context| "after").unwrap().join(),
            Ok("after")
        );
        pool.join();
    });
}

#[test]
fn resizing_under_load_runs_every_job_exactly_once() {
    // While 2 threads submit jobs, another resizes the pool 300 times to
    // random sizes in 1..=8: every job runs exactly once (a per-job ledger),
    // the counters balance, and the pool settles at the last size asked for.
    with_timeout(LONG, || {
        /// The most jobs submitted; the ledger's size.
        const CAP: usize = 2_000_000;
        const RESIZES: usize = 300;
        let ledger: Arc<Vec<AtomicU8>> = Arc::new((0..CAP).map(|_| AtomicU8::new(0)).collect());
        let next = AtomicUsize::new(0);
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("rsload")
            .queue_capacity(64)
            .build()
            .unwrap();
        let resizing = AtomicBool::new(true);
        let mut last = 2;
        thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    while resizing.load(Ordering::SeqCst) {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= CAP {
                            return;
                        }
                        let ledger = Arc::clone(&ledger);
                        pool.execute(move || {
                            ledger[i].fetch_add(1, Ordering::SeqCst);
                        })
                        .unwrap();
                    }
                });
            }
            let mut rng = SplitMix64(7);
            let start = Instant::now();
            for _ in 0..RESIZES {
                if start.elapsed() > Duration::from_secs(10) {
                    break;
                }
                last = rng.below(8) as usize + 1;
                pool.set_workers(last).unwrap();
                // Let some jobs through between resizes.
                let at = pool.stats().completed;
                wait_until(Duration::from_millis(50), || {
                    pool.stats().completed > at + 200
                });
            }
            resizing.store(false, Ordering::SeqCst);
        });
        let jobs = next.load(Ordering::SeqCst).min(CAP);
        assert!(jobs > 1_000, "only {jobs} jobs submitted");
        assert!(
            wait_until(LONG, || pool.stats().completed == jobs as u64),
            "{}",
            pool.stats()
        );
        let wrong: Vec<_> = (0..jobs)
            .filter(|&i| ledger[i].load(Ordering::SeqCst) != 1)
            .collect();
        assert!(wrong.is_empty(), "jobs not run exactly once: {wrong:?}");
        assert!(ledger[jobs..].iter().all(|n| n.load(Ordering::SeqCst) == 0));
        let stats = pool.stats();
        assert_eq!(
            (
                stats.submitted,
                stats.completed,
                stats.failed,
                stats.cancelled,
                stats.queued,
                stats.busy
            ),
            (jobs as u64, jobs as u64, 0, 0, 0, 0),
            "{stats}"
        );
        assert_settles(&pool, "rsload", last);
        pool.join();
    });
}

#[test]
fn bad_counts_are_exact_errors() {
    // set_workers(0) and set_workers(MAX_WORKERS + 1) fail with exact
    // messages and leave the pool as it was, on both pool kinds.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("rsbad")
            .build()
            .unwrap();
        let zero = pool.set_workers(0).unwrap_err();
        assert_eq!(zero, SizingError::ZeroWorkers);
        assert_eq!(zero.to_string(), "worker count must be at least 1, got 0");
        let many = pool.set_workers(MAX_WORKERS + 1).unwrap_err();
        assert_eq!(
            many,
            SizingError::TooManyWorkers {
                requested: MAX_WORKERS as u128 + 1,
                max: MAX_WORKERS
            }
        );
        assert_eq!(
            many.to_string(),
            "worker count must be at most 32768, got 32769"
        );
        assert_eq!(pool.stats().workers, 2);
        pool.join();

        let workers = WorkerPool::builder()
            .workers(2)
            .thread_name("rsbadw")
            .build(|_: &Context, n: u8| n)
            .unwrap();
        assert_eq!(
            workers.set_workers(0).unwrap_err().to_string(),
            "worker count must be at least 1, got 0"
        );
        assert_eq!(
            workers.set_workers(usize::MAX).unwrap_err().to_string(),
            format!("worker count must be at most 32768, got {}", usize::MAX)
        );
        assert_eq!(workers.stats().workers, 2);
        assert!(workers.join().is_empty());
    });
}

#[test]
fn worker_pool_grows_shrinks_and_still_disconnects() {
    // A WorkerPool grown from 1 to 4 runs four jobs at once; shrunk to 2 it
    // keeps working; after close its results loop ends with every result.
    with_timeout(LONG, || {
        let together = Latch::new(4);
        let pool = {
            let together = Arc::clone(&together);
            WorkerPool::builder()
                .workers(1)
                .thread_name("rswp")
                .build(move |_: &Context, n: u64| {
                    if n < 4 {
                        together.count_down();
                        assert!(together.wait_timeout(LONG), "four at once");
                    }
                    n
                })
                .unwrap()
        };
        for n in 0..4 {
            pool.submit(n).unwrap();
        }
        pool.set_workers(4).unwrap();
        let mut first: Vec<u64> = (0..4)
            .map(|_| {
                let output = pool.results().recv_timeout(LONG).unwrap();
                output.result.unwrap()
            })
            .collect();
        first.sort_unstable();
        assert_eq!(first, [0, 1, 2, 3]);
        assert!(wait_until(LONG, || threads_named("rswp") == 4));
        pool.set_workers(2).unwrap();
        assert!(wait_until(LONG, || {
            pool.stats().workers == 2 && threads_named("rswp") == 2
        }));
        for n in 4..24 {
            pool.submit(n).unwrap();
        }
        pool.close();
        let mut rest = Vec::new();
        for output in pool.results() {
            rest.push(output.result.unwrap());
        }
        rest.sort_unstable();
        assert_eq!(rest, (4..24).collect::<Vec<_>>());
        assert!(wait_until(LONG, || pool.stats().workers == 0));
        assert!(pool.join().is_empty());
    });
}

#[test]
fn closed_pool_does_not_grow() {
    // After close, set_workers(4) succeeds but starts no thread; shrinking
    // a closed pool is allowed; the results channel still disconnects.
    with_timeout(LONG, || {
        let gate = Gate::new();
        let started = Latch::new(2);
        let pool = {
            let (gate, started) = (gate.clone(), Arc::clone(&started));
            WorkerPool::builder()
                .workers(2)
                .thread_name("rsclose")
                .build(move |_: &Context, n: u64| {
                    started.count_down();
                    gate.wait();
                    n
                })
                .unwrap()
        };
        pool.submit(1).unwrap();
        pool.submit(2).unwrap();
        pool.submit(3).unwrap();
        started.wait();
        pool.close();
        pool.set_workers(4).unwrap();
        assert_eq!(pool.stats().workers, 2);
        assert_eq!(threads_named("rsclose"), 2);
        pool.set_workers(1).unwrap();
        gate.open();
        let results = pool.results().clone();
        let mut all: Vec<u64> = drain(&results)
            .into_iter()
            .map(|o| o.result.unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, [1, 2, 3]);
        assert_eq!(pool.stats().completed, 3);
        assert!(pool.join().is_empty());
        assert!(wait_until(LONG, || threads_named("rsclose") == 0));
    });
}

#[test]
fn shrink_then_grow_settles_at_the_last_size() {
    // Shrinking 4 → 1 and at once growing back to 4 (before idle workers
    // may have left) settles at 4 workers that all run at once.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(4)
            .thread_name("rsflip")
            .build()
            .unwrap();
        for _ in 0..20 {
            pool.set_workers(1).unwrap();
            pool.set_workers(4).unwrap();
        }
        assert_settles(&pool, "rsflip", 4);
        let together = Latch::new(4);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let together = Arc::clone(&together);
                pool.submit(move |_: &Context| {
                    together.count_down();
                    together.wait_timeout(LONG)
                })
                .unwrap()
            })
            .collect();
        for handle in handles {
            assert_eq!(handle.join(), Ok(true));
        }
        pool.join();
    });
}

#[test]
fn ordered_worker_pool_grown_past_its_window_keeps_order() {
    // An ordered WorkerPool built with one worker (a window of 16) and grown
    // to 48 delivers 2,000 results in submission order without stalling.
    with_timeout(LONG, || {
        let pool = WorkerPool::builder()
            .workers(1)
            .ordered()
            .thread_name("rsord")
            .build(|_: &Context, (n, micros): (u64, u64)| {
                thread::sleep(Duration::from_micros(micros));
                n
            })
            .unwrap();
        pool.set_workers(48).unwrap();
        let results = pool.results().clone();
        let reader = thread::spawn(move || drain(&results));
        let mut rng = SplitMix64(11);
        for n in 0..2_000 {
            pool.submit((n, rng.below(300))).unwrap();
        }
        pool.close();
        let order: Vec<u64> = reader
            .join()
            .unwrap()
            .into_iter()
            .map(|o| o.result.unwrap())
            .collect();
        assert_eq!(order, (0..2_000).collect::<Vec<_>>());
        assert!(pool.join().is_empty());
    });
}
