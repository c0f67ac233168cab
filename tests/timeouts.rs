//! Per-job timeouts and pool deadlines: cooperative jobs see
//! `DeadlineExceeded`, handles report `TimedOut` (own timeout) or
//! `Cancelled(DeadlineExceeded)` (the pool's deadline), and the value of a
//! job that ignored its context is dropped.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use brigade::{Cancelled, Context, JobError, ThreadPool};

use common::{DropCounter, LONG, wait_until, with_timeout};

#[test]
fn sleeping_job_sees_deadline_and_times_out() {
    // A job that sleeps on its context wakes at its job_timeout with
    // DeadlineExceeded, and its handle reports TimedOut.
    with_timeout(LONG, || {
        let timeout = Duration::from_millis(50);
        let pool = ThreadPool::builder()
            .workers(1)
            .job_timeout(timeout)
            .build()
            .expect("build");
        let (seen_tx, seen_rx) = crossbeam_channel::bounded(1);
        let handle = pool
            .submit(move |ctx: &Context| {
                let start = Instant::now();
                let slept = ctx.sleep(LONG);
                seen_tx
                    .send((slept, ctx.reason(), start.elapsed()))
                    .expect("the test waits");
                "too late"
            })
            .expect("submit");
        let err = handle.join().unwrap_err();
        assert_eq!(err, JobError::TimedOut);
        assert_eq!(err.to_string(), "job exceeded its timeout");
        let (slept, reason, elapsed) = seen_rx.recv_timeout(LONG).expect("the job reported");
        assert_eq!(slept, Err(Cancelled::DeadlineExceeded));
        assert_eq!(reason, Some(Cancelled::DeadlineExceeded));
        assert!(elapsed < Duration::from_secs(10), "woke after {elapsed:?}");
        assert!(wait_until(LONG, || pool.stats().timed_out == 1));
        let stats = pool.stats();
        assert_eq!(stats.failed, 1);
        assert_eq!(stats.completed, 0);
        assert!(!pool.context().is_done(), "a job timeout is the job's own");
    });
}

#[test]
fn polling_job_sees_deadline_and_times_out() {
    // A job that loops on ctx.is_done() stops at its job_timeout and its
    // handle reports TimedOut.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(1)
            .job_timeout(Duration::from_millis(30))
            .build()
            .expect("build");
        let handle = pool
            .submit(|ctx: &Context| {
                let mut spins = 0u64;
                while !ctx.is_done() {
                    spins += 1;
                    std::hint::spin_loop();
                }
                (spins, ctx.reason())
            })
            .expect("submit");
        assert_eq!(handle.join(), Err(JobError::TimedOut));
    });
}

#[test]
fn job_deadline_counts_from_start() {
    // The job's deadline is its timeout after it starts, not after it was
    // queued, and earlier than no deadline at all.
    with_timeout(LONG, || {
        let timeout = Duration::from_secs(5);
        let pool = ThreadPool::builder()
            .workers(1)
            .job_timeout(timeout)
            .build()
            .expect("build");
        assert_eq!(pool.context().deadline(), None);
        let handle = pool
            .submit(|ctx: &Context| (Instant::now(), ctx.deadline()))
            .expect("submit");
        let (started, deadline) = handle.join().expect("quick job");
        let deadline = deadline.expect("the job has a deadline");
        assert!(deadline <= started + timeout);
        assert!(deadline + Duration::from_secs(1) > started + timeout);
    });
}

#[test]
fn ignoring_job_times_out_and_value_is_dropped() {
    // A job that never looks at its context runs past its timeout; its
    // handle reports TimedOut and the value it returned is dropped once.
    with_timeout(LONG, || {
        let timeout = Duration::from_millis(30);
        let pool = ThreadPool::builder()
            .workers(1)
            .job_timeout(timeout)
            .build()
            .expect("build");
        let drops = Arc::new(AtomicUsize::new(0));
        let handle = {
            let drops = Arc::clone(&drops);
            pool.submit(move |_ctx: &Context| {
                let start = Instant::now();
                while start.elapsed() < timeout + Duration::from_millis(40) {
                    std::hint::spin_loop();
                }
                DropCounter(drops)
            })
            .expect("submit")
        };
        assert_eq!(handle.join().map(|_| ()), Err(JobError::TimedOut));
        assert_eq!(drops.load(Ordering::SeqCst), 1, "the late value is dropped");
    });
}

#[test]
fn quick_job_keeps_its_value() {
    // A job that finishes within its timeout returns its value, undropped.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(1)
            .job_timeout(Duration::from_secs(20))
            .build()
            .expect("build");
        let drops = Arc::new(AtomicUsize::new(0));
        let handle = {
            let drops = Arc::clone(&drops);
            pool.submit(move |_ctx: &Context| DropCounter(drops))
                .expect("submit")
        };
        let value = handle.join().expect("in time");
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(value);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn pool_deadline_shorter_than_job_timeout_wins() {
    // With a pool deadline before the job timeout, the job's deadline is the
    // pool's, it sees DeadlineExceeded, and its handle reports
    // Cancelled(DeadlineExceeded), not TimedOut.
    with_timeout(LONG, || {
        let parent = Context::new().with_timeout(Duration::from_millis(500));
        let pool = ThreadPool::builder()
            .workers(1)
            .job_timeout(Duration::from_secs(3600))
            .context(&parent)
            .build()
            .expect("build");
        assert_eq!(pool.context().deadline(), parent.deadline());
        let (seen_tx, seen_rx) = crossbeam_channel::bounded(1);
        let handle = pool
            .submit(move |ctx: &Context| {
                let deadline = ctx.deadline();
                let slept = ctx.sleep(LONG);
                seen_tx.send((deadline, slept)).expect("the test waits");
            })
            .expect("submit");
        let err = handle.join().unwrap_err();
        let (deadline, slept) = seen_rx
            .recv_timeout(Duration::ZERO)
            .expect("the job ran before the pool deadline");
        assert_eq!(deadline, parent.deadline());
        assert_eq!(slept, Err(Cancelled::DeadlineExceeded));
        assert_eq!(err, JobError::Cancelled(Cancelled::DeadlineExceeded));
        assert_eq!(err.to_string(), "job cancelled: context deadline exceeded");
        assert_eq!(pool.context().reason(), Some(Cancelled::DeadlineExceeded));
        assert_eq!(parent.reason(), Some(Cancelled::DeadlineExceeded));
    });
}

#[test]
fn pool_deadline_under_background_wakes_jobs() {
    // A pool deadline from Context::background().with_timeout also wakes a
    // job sleeping on its context.
    with_timeout(LONG, || {
        let parent = Context::background().with_timeout(Duration::from_millis(100));
        let pool = ThreadPool::builder()
            .workers(1)
            .context(&parent)
            .build()
            .expect("build");
        let (seen_tx, seen_rx) = crossbeam_channel::bounded(1);
        let handle = pool
            .submit(move |ctx: &Context| {
                let start = Instant::now();
                let slept = ctx.sleep(Duration::from_secs(2));
                seen_tx
                    .send((slept, start.elapsed()))
                    .expect("the test waits");
            })
            .expect("submit");
        let (slept, elapsed) = seen_rx.recv_timeout(LONG).expect("the job reported");
        assert_eq!(slept, Err(Cancelled::DeadlineExceeded));
        assert!(elapsed < Duration::from_millis(1500), "slept {elapsed:?}");
        assert_eq!(
            handle.join(),
            Err(JobError::Cancelled(Cancelled::DeadlineExceeded))
        );
    });
}
