//! `ThreadPool::scope`: jobs borrow from the caller's stack, handles return
//! values and panics, an unjoined job's panic or the body's own panic is
//! resumed only after every job has finished, scopes nest (also inside a
//! job on a one-worker pool) without deadlock, jobs on a cancelled pool never
//! run, and many jobs each run exactly once.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::thread;

use brigade::{Cancelled, JobError, ThreadPool};

use common::{Gate, LONG, Latch, occupy_worker, wait_until, with_timeout};

fn pool(workers: usize) -> ThreadPool {
    ThreadPool::builder()
        .workers(workers)
        .build()
        .expect("build")
}

/// A panic payload no string conversion could forge: proves the original
/// payload is resumed.
#[derive(Debug, PartialEq)]
struct Boom(u32);

#[test]
fn jobs_borrow_and_write_disjoint_slots() {
    // Jobs read a borrowed Vec and write disjoint &mut chunks; the writes are
    // visible once scope returns, and scope returns the body's value.
    with_timeout(LONG, || {
        let pool = pool(4);
        let input: Vec<u64> = (0..1000).collect();
        let mut output = vec![0u64; 1000];
        let value = pool.scope(|s| {
            for (block, slots) in output.chunks_mut(100).enumerate() {
                let input = &input;
                let _ = s.spawn(move |_ctx| {
                    for (offset, slot) in slots.iter_mut().enumerate() {
                        *slot = input[block * 100 + offset] * 2;
                    }
                });
            }
            "the body's value"
        });
        assert_eq!(value, "the body's value");
        let expected: Vec<u64> = input.iter().map(|x| x * 2).collect();
        assert_eq!(output, expected);
    });
}

#[test]
fn join_returns_value_or_panic() {
    // join returns the job's value, or Err(Panicked(message)) for a panicking
    // job, and a joined panic is not resumed when the scope ends.
    with_timeout(LONG, || {
        let pool = pool(2);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                let ok = s.spawn(|_ctx| 6 * 7);
                let bad = s.spawn(|_ctx| -> u32 { panic!("scoped job failed") });
                let quick = s.spawn(|_ctx| "quick");
                assert!(wait_until(LONG, || quick.is_finished()));
                (ok.join(), bad.join(), quick.join())
            })
        }));
        let (ok, bad, quick) = outcome.expect("a joined panic is not resumed");
        assert_eq!(ok, Ok(42));
        let err = bad.expect_err("the job panicked");
        assert_eq!(err, JobError::Panicked("scoped job failed".into()));
        assert!(
            err.to_string()
                .starts_with("job panicked: scoped job failed"),
            "{err}"
        );
        assert_eq!(quick, Ok("quick"));
    });
}

#[test]
fn unjoined_panic_resumes_after_every_job() {
    // A panic in a job nobody joined reaches the caller with its original
    // payload, and only after every other job of the scope has finished.
    with_timeout(LONG, || {
        const SLOW: usize = 3;
        // SLOW + 1 jobs on 4 workers (plus the helping caller): each job gets
        // a thread, so the panicking job can wait for the slow ones to start.
        let pool = pool(4);
        let started = Latch::new(SLOW);
        let gate = Gate::new();
        let finished = AtomicUsize::new(0);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                for _ in 0..SLOW {
                    let _ = s.spawn(|_ctx| {
                        started.count_down();
                        gate.wait();
                        finished.fetch_add(1, Ordering::SeqCst);
                    });
                }
                let _ = s.spawn(|_ctx| {
                    started.wait();
                    gate.open();
                    std::panic::panic_any(Boom(7));
                });
            });
        }));
        let payload = outcome.expect_err("the unjoined panic is resumed");
        assert_eq!(
            finished.load(Ordering::SeqCst),
            SLOW,
            "the panic was resumed before every job finished"
        );
        assert_eq!(payload.downcast_ref::<Boom>(), Some(&Boom(7)));
    });
}

#[test]
fn body_panic_still_joins_every_job() {
    // A panic in the body is resumed with its payload only after every job
    // it spawned has finished (the jobs are released after the panic).
    with_timeout(LONG, || {
        const JOBS: usize = 6;
        let pool = pool(2);
        let gate = Gate::new();
        let finished = AtomicUsize::new(0);
        let (panicking_tx, panicking_rx) = crossbeam_channel::bounded(1);
        let opener = thread::spawn({
            let gate = gate.clone();
            move || {
                panicking_rx
                    .recv_timeout(LONG)
                    .expect("the body reaches its panic");
                gate.open();
            }
        });
        let outcome: Result<(), _> = catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                for _ in 0..JOBS {
                    let _ = s.spawn(|_ctx| {
                        gate.wait();
                        finished.fetch_add(1, Ordering::SeqCst);
                    });
                }
                panicking_tx.send(()).expect("the opener waits");
                panic!("body failed");
            })
        }));
        let payload = outcome.expect_err("the body's panic is resumed");
        assert_eq!(finished.load(Ordering::SeqCst), JOBS);
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"body failed"));
        opener.join().expect("opener");
    });
}

#[test]
fn nested_scopes_do_not_deadlock() {
    // Scopes three deep inside scoped jobs finish on 1 and 4 workers, and a
    // scope inside a submitted job of a one-worker pool finishes too.
    with_timeout(LONG, || {
        for workers in [1, 4] {
            let pool = pool(workers);
            let total = AtomicU64::new(0);
            pool.scope(|outer| {
                for i in 0..4u64 {
                    let (pool, total) = (&pool, &total);
                    let _ = outer.spawn(move |_ctx| {
                        pool.scope(|inner| {
                            for j in 0..4u64 {
                                let _ = inner.spawn(move |_ctx| {
                                    pool.scope(|innermost| {
                                        let _ = innermost.spawn(move |_ctx| {
                                            total.fetch_add(i * 4 + j, Ordering::SeqCst);
                                        });
                                    });
                                });
                            }
                        });
                    });
                }
            });
            assert_eq!(
                total.load(Ordering::SeqCst),
                (0..16).sum(),
                "{workers} workers"
            );
        }

        let pool = Arc::new(pool(1));
        let inner = Arc::clone(&pool);
        let handle = pool
            .submit(move |_ctx| {
                let words = ["scope", "in", "a", "job"];
                inner.scope(|s| {
                    let handles: Vec<_> = words.iter().map(|w| s.spawn(|_ctx| w.len())).collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().expect("no failures"))
                        .sum::<usize>()
                })
            })
            .expect("accepted");
        assert_eq!(handle.join(), Ok(11));
    });
}

#[test]
fn scope_in_job_spawning_past_queue_capacity() {
    // A scope inside a job of a one-worker pool whose queue is small spawns
    // more jobs than the queue holds and still finishes (the docs: a scope
    // opened inside one of the pool's own jobs cannot deadlock).
    with_timeout(LONG, || {
        let pool = Arc::new(
            ThreadPool::builder()
                .workers(1)
                .queue_capacity(2)
                .build()
                .expect("build"),
        );
        let inner = Arc::clone(&pool);
        let handle = pool
            .submit(move |_ctx| {
                let ran = AtomicUsize::new(0);
                inner.scope(|s| {
                    for _ in 0..10 {
                        let _ = s.spawn(|_ctx| ran.fetch_add(1, Ordering::SeqCst));
                    }
                });
                ran.into_inner()
            })
            .expect("accepted");
        assert_eq!(handle.join(), Ok(10));
    });
}

#[test]
fn scope_on_busy_pool_spawning_past_queue_capacity() {
    // With every worker busy on an unrelated job and a small queue, a scope
    // that spawns more jobs than the queue holds still finishes: the caller
    // runs them (the docs: a scope never waits on a busy pool).
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(2)
            .build()
            .expect("build");
        let gate = Gate::new();
        let blocker = occupy_worker(&pool, &gate);
        let ran = AtomicUsize::new(0);
        pool.scope(|s| {
            for _ in 0..10 {
                let _ = s.spawn(|_ctx| ran.fetch_add(1, Ordering::SeqCst));
            }
        });
        assert_eq!(ran.load(Ordering::SeqCst), 10);
        gate.open();
        assert_eq!(blocker.join(), Ok(()));
    });
}

#[test]
fn cancelled_pool_discards_unjoined_jobs() {
    // On a cancelled pool, scoped jobs nobody joins never run, and the scope
    // returns normally.
    with_timeout(LONG, || {
        let pool = pool(2);
        pool.context().cancel();
        let ran = AtomicUsize::new(0);
        let value = pool.scope(|s| {
            for _ in 0..4 {
                let _ = s.spawn(|_ctx| ran.fetch_add(1, Ordering::SeqCst));
            }
            "returned"
        });
        assert_eq!(value, "returned");
        assert_eq!(
            ran.load(Ordering::SeqCst),
            0,
            "a job ran on a cancelled pool"
        );
    });
}

#[test]
fn cancelled_pool_join_reports_cancelled_without_running() {
    // On a cancelled pool, joining a scoped job gives Err(Cancelled(Canceled))
    // and the job never runs.
    with_timeout(LONG, || {
        let pool = pool(2);
        pool.context().cancel();
        let ran = AtomicUsize::new(0);
        let joined = pool.scope(|s| {
            s.spawn(|_ctx| {
                ran.fetch_add(1, Ordering::SeqCst);
                5
            })
            .join()
        });
        let err = joined.expect_err("cancelled");
        assert_eq!(err, JobError::Cancelled(Cancelled::Canceled));
        assert_eq!(err.to_string(), "job cancelled: context canceled");
        assert_eq!(
            ran.load(Ordering::SeqCst),
            0,
            "a job ran on a cancelled pool"
        );
    });
}

#[test]
fn many_jobs_each_run_once() {
    // 10,000 tiny scoped jobs each run exactly once.
    with_timeout(LONG, || {
        const JOBS: usize = 10_000;
        let pool = pool(4);
        let runs: Vec<AtomicU8> = (0..JOBS).map(|_| AtomicU8::new(0)).collect();
        pool.scope(|s| {
            for slot in &runs {
                let _ = s.spawn(move |_ctx| {
                    slot.fetch_add(1, Ordering::Relaxed);
                });
            }
        });
        let wrong: Vec<(usize, u8)> = runs
            .iter()
            .map(|r| r.load(Ordering::Relaxed))
            .enumerate()
            .filter(|&(_, count)| count != 1)
            .take(10)
            .collect();
        assert!(wrong.is_empty(), "jobs not run exactly once: {wrong:?}");
    });
}

#[test]
fn closed_pool_runs_scoped_jobs_on_the_caller() {
    // After close(), scope still runs every job, on the scope's own thread,
    // and join returns its value (they used to be discarded as cancelled).
    with_timeout(LONG, || {
        let pool = pool(2);
        pool.close();
        let caller = thread::current().id();
        let mut seen = Vec::new();
        let sum = pool.scope(|s| {
            let handles: Vec<_> = (1..=10u64)
                .map(|n| s.spawn(move |_ctx| (n, thread::current().id())))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("ran"))
                .map(|(n, on)| {
                    seen.push(on);
                    n
                })
                .sum::<u64>()
        });
        assert_eq!(sum, 55);
        assert!(seen.iter().all(|&on| on == caller), "{seen:?}");
    });
}

#[test]
fn dropped_handles_drop_results_before_scope_returns() {
    // A result whose handle was dropped is dropped before scope returns,
    // whether the job ended before or after the handle went.
    with_timeout(LONG, || {
        let pool = pool(2);
        let drops = AtomicUsize::new(0);
        struct Counted<'a>(&'a AtomicUsize);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let gate = Gate::new();
        pool.scope(|s| {
            // Ends after its handle is gone.
            drop(s.spawn(|_ctx| {
                gate.wait();
                Counted(&drops)
            }));
            // Ends before its handle is gone.
            let early = s.spawn(|_ctx| Counted(&drops));
            assert!(wait_until(LONG, || early.is_finished()));
            drop(early);
            gate.open();
        });
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    });
}
