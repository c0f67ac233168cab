//! `ThreadPoolBuilder::rate_limit` and `WorkerPoolBuilder::rate_limit`: a pool paces
//! its job *starts* by a shared token bucket, wakes from the wait when
//! cancelled, and discards jobs that could not start before its deadline.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade::{Cancelled, Context, JobError, RateLimiter, ThreadPool, WorkerPool};
use parking_lot::Mutex;

use common::{LONG, with_timeout};

/// Start instants of jobs, sorted.
fn sorted(starts: &Mutex<Vec<Instant>>) -> Vec<Instant> {
    let mut starts = starts.lock().clone();
    starts.sort();
    starts
}

#[test]
fn thread_pool_starts_are_paced() {
    // 21 jobs on 4 workers with a limit of 200/s and a burst of 1: the
    // starts span at least 20 intervals of 5 ms, whatever the workers do.
    with_timeout(LONG, || {
        let limiter = RateLimiter::new(200.0, 1).expect("limiter");
        let pool = ThreadPool::builder()
            .workers(4)
            .rate_limit(limiter)
            .build()
            .expect("build");
        let starts = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..21 {
            let starts = Arc::clone(&starts);
            pool.execute(move || starts.lock().push(Instant::now()))
                .expect("execute");
        }
        pool.join();
        let starts = sorted(&starts);
        assert_eq!(starts.len(), 21);
        let span = starts[20] - starts[0];
        // A token bucket can never let 21 starts through faster than 20
        // refills after the first; allow 10% for clock granularity.
        assert!(span >= Duration::from_millis(90), "21 starts in {span:?}");
    });
}

#[test]
fn worker_pool_starts_are_paced() {
    // The typed pool paces starts the same way, and every job still yields
    // its output.
    with_timeout(LONG, || {
        let limiter = RateLimiter::new(200.0, 1).expect("limiter");
        let pool = WorkerPool::builder()
            .workers(3)
            .rate_limit(limiter)
            .build(|_ctx, _: u32| Instant::now())
            .expect("build");
        for n in 0..11 {
            pool.submit(n).expect("submit");
        }
        pool.close();
        let mut starts: Vec<Instant> = pool
            .results()
            .iter()
            .map(|out| out.result.expect("ran"))
            .collect();
        starts.sort();
        assert_eq!(starts.len(), 11);
        assert!(
            starts[10] - starts[0] >= Duration::from_millis(45),
            "{:?}",
            starts[10] - starts[0]
        );
        assert!(pool.join().is_empty());
    });
}

#[test]
fn cancel_wakes_workers_waiting_for_tokens() {
    // With a limiter that grants one token an hour, queued jobs wait for a
    // token; cancelling the pool wakes the waiting worker at once and every
    // job not started is reported cancelled.
    with_timeout(LONG, || {
        let limiter = RateLimiter::every(Duration::from_secs(3600), 1).expect("limiter");
        let pool = ThreadPool::builder()
            .workers(1)
            .rate_limit(limiter)
            .build()
            .expect("build");
        let first = pool.submit(|_| 1).expect("submit");
        assert_eq!(first.join(), Ok(1), "the initial token lets one job start");
        let waiting: Vec<_> = (0..3)
            .map(|n| pool.submit(move |_| n).expect("submit"))
            .collect();
        let cancelled_at = Instant::now();
        pool.context().cancel();
        for handle in waiting {
            assert_eq!(handle.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        }
        assert!(cancelled_at.elapsed() < Duration::from_secs(10));
        let report = pool.shutdown_now();
        assert_eq!(report.ran, 1);
        assert_eq!(report.never_ran, 3);
    });
}

#[test]
fn jobs_that_cannot_start_before_the_deadline_are_discarded() {
    // The pool's deadline is 30 s away but the next token is an hour away:
    // the worker does not sleep past the deadline; it discards the job,
    // reported cancelled with DeadlineExceeded.
    with_timeout(LONG, || {
        let limiter = RateLimiter::every(Duration::from_secs(3600), 1).expect("limiter");
        let ctx = Context::new().with_timeout(Duration::from_secs(30));
        let pool = ThreadPool::builder()
            .workers(1)
            .context(&ctx)
            .rate_limit(limiter)
            .build()
            .expect("build");
        assert_eq!(
            pool.submit(|_| "first").expect("submit").join(),
            Ok("first")
        );
        let started = Instant::now();
        let late = pool.submit(|_| "late").expect("submit");
        assert_eq!(
            late.join(),
            Err(JobError::Cancelled(Cancelled::DeadlineExceeded))
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the worker slept on the token"
        );
        assert_eq!(pool.stats().cancelled, 1);
    });
}
