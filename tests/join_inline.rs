//! A join on one of the pool's own workers runs a job that has not
//! started on the joining thread: no deadlock on a 1-worker pool, each job
//! runs exactly once, and the stats and shutdown report count it once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use brigade::{Context, JobError, JobHandle, ThreadPool};
use common::{Gate, LONG, wait_until, with_timeout};

fn one_worker() -> ThreadPool {
    ThreadPool::builder()
        .workers(1)
        .stack_size(64 * 1024 * 1024)
        .build()
        .expect("valid pool")
}

#[test]
fn a_job_joining_a_job_queued_behind_it_runs_it_inline() {
    with_timeout(LONG, || {
        let pool = Arc::new(one_worker());
        let inner_pool = Arc::clone(&pool);
        let outer = pool
            .submit(move |_ctx| {
                let me = thread::current().id();
                let inner = inner_pool
                    .submit(|_ctx| thread::current().id())
                    .expect("accepted");
                (me, inner.join())
            })
            .expect("accepted");
        let (outer_thread, inner) = outer.join().expect("the outer job ran");
        assert_eq!(
            inner,
            Ok(outer_thread),
            "the inner job ran on the joining worker"
        );
        let pool = Arc::into_inner(pool).expect("the job is done with it");
        let report = pool.shutdown_now();
        assert_eq!(
            (report.submitted, report.ran, report.never_ran),
            (2, 2, 0),
            "{report:?}"
        );
    });
}

/// Each level submits the next and joins it: `depth` levels, all inline
/// on the one worker.
fn nest(pool: &Arc<ThreadPool>, runs: &Arc<AtomicUsize>, depth: usize) -> usize {
    runs.fetch_add(1, Ordering::SeqCst);
    if depth == 0 {
        return 0;
    }
    let (next_pool, next_runs) = (Arc::clone(pool), Arc::clone(runs));
    let handle = pool
        .submit(move |_ctx: &Context| nest(&next_pool, &next_runs, depth - 1))
        .expect("accepted");
    handle.join().expect("the nested job ran") + 1
}

#[test]
fn a_thousand_nested_joins_on_one_worker_complete_each_job_once() {
    with_timeout(LONG, || {
        let pool = Arc::new(one_worker());
        let runs = Arc::new(AtomicUsize::new(0));
        let (top_pool, top_runs) = (Arc::clone(&pool), Arc::clone(&runs));
        let top = pool
            .submit(move |_ctx| nest(&top_pool, &top_runs, 999))
            .expect("accepted");
        assert_eq!(top.join(), Ok(999));
        assert_eq!(runs.load(Ordering::SeqCst), 1000);
        let pool = Arc::into_inner(pool).expect("the jobs are done with it");
        let report = pool.shutdown_now();
        assert_eq!(
            (report.submitted, report.ran, report.never_ran),
            (1000, 1000, 0),
            "{report:?}"
        );
    });
}

#[test]
fn a_job_joining_a_thousand_queued_jobs_runs_each_once() {
    with_timeout(LONG, || {
        let pool = Arc::new(one_worker());
        let runs = Arc::new(AtomicUsize::new(0));
        let (inner_pool, inner_runs) = (Arc::clone(&pool), Arc::clone(&runs));
        let outer = pool
            .submit(move |_ctx| {
                let handles: Vec<JobHandle<usize>> = (0..1000)
                    .map(|n| {
                        let runs = Arc::clone(&inner_runs);
                        inner_pool
                            .submit(move |_ctx| {
                                runs.fetch_add(1, Ordering::SeqCst);
                                n
                            })
                            .expect("accepted")
                    })
                    .collect();
                // Joined in reverse: the last queued runs first, inline.
                let mut sum = 0;
                for handle in handles.into_iter().rev() {
                    sum += handle.join().expect("ran");
                }
                sum
            })
            .expect("accepted");
        assert_eq!(outer.join(), Ok((0..1000).sum()));
        let pool = Arc::into_inner(pool).expect("the job is done with it");
        pool.join();
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1000,
            "a job ran twice or never"
        );
    });
}

#[test]
fn join_timeout_on_a_worker_runs_the_queued_job_too() {
    with_timeout(LONG, || {
        let pool = Arc::new(one_worker());
        let inner_pool = Arc::clone(&pool);
        let outer = pool
            .submit(move |_ctx| {
                let mut inner = inner_pool.submit(|_ctx| 5_u8).expect("accepted");
                inner.join_timeout(LONG)
            })
            .expect("accepted");
        assert_eq!(outer.join(), Ok(Some(Ok(5))));
    });
}

#[test]
fn an_inline_run_then_a_discard_of_its_envelope_count_the_job_once() {
    with_timeout(LONG, || {
        let pool = Arc::new(one_worker());
        let inner_pool = Arc::clone(&pool);
        let (joined_tx, joined) = crossbeam_channel::bounded(1);
        let _outer = pool
            .submit(move |ctx| {
                let inner = inner_pool.submit(|_ctx| 1_u8).expect("accepted");
                let result = inner.join();
                drop(inner_pool);
                joined_tx.send(result).expect("the test waits");
                // Holds the worker until the shutdown cancels the pool: the
                // inner job's envelope is still queued, and is discarded.
                let _ = ctx.done().recv_timeout(LONG);
            })
            .expect("accepted");
        assert_eq!(joined.recv_timeout(LONG), Ok(Ok(1)));
        let pool = Arc::into_inner(pool).expect("the job dropped its clone");
        let report = pool.shutdown_now();
        assert_eq!(
            (report.submitted, report.ran, report.never_ran),
            (2, 2, 0),
            "{report:?}"
        );
    });
}

#[test]
fn a_job_running_elsewhere_is_waited_for() {
    with_timeout(LONG, || {
        let pool = Arc::new(
            ThreadPool::builder()
                .workers(2)
                .build()
                .expect("valid pool"),
        );
        let gate = Gate::new();
        let (held, started_tx) = (gate.clone(), crossbeam_channel::bounded(1));
        let (started_tx, started) = (started_tx.0, started_tx.1);
        let running = pool
            .submit(move |_ctx| {
                started_tx
                    .send(thread::current().id())
                    .expect("the test waits");
                held.wait();
                thread::current().id()
            })
            .expect("accepted");
        let elsewhere = started.recv_timeout(LONG).expect("started");
        let (joining_tx, joining) = crossbeam_channel::bounded(1);
        let joiner = pool
            .submit(move |_ctx| {
                joining_tx.send(()).expect("the test waits");
                (thread::current().id(), running.join())
            })
            .expect("accepted");
        // The joiner is on the other worker, the job still running here.
        joining.recv_timeout(LONG).expect("the joiner started");
        gate.open();
        let (joining_thread, result) = joiner.join().expect("the joiner ran");
        assert_eq!(result, Ok(elsewhere), "the job ran where it started");
        assert_ne!(joining_thread, elsewhere);
    });
}

#[test]
fn a_join_in_a_cancelled_pool_does_not_start_the_queued_job() {
    with_timeout(LONG, || {
        let ctx = Context::new();
        let pool = ThreadPool::builder()
            .workers(1)
            .context(&ctx)
            .build()
            .expect("valid pool");
        let pool = Arc::new(pool);
        let runs = Arc::new(AtomicUsize::new(0));
        let (inner_pool, counted) = (Arc::clone(&pool), Arc::clone(&runs));
        let (ready_tx, ready) = crossbeam_channel::bounded(1);
        let (joined_tx, joined) = crossbeam_channel::bounded(1);
        let _outer = pool
            .submit(move |job_ctx| {
                let inner = inner_pool
                    .submit(move |_ctx| counted.fetch_add(1, Ordering::SeqCst))
                    .expect("accepted");
                drop(inner_pool);
                ready_tx.send(()).expect("the test waits");
                // The whole pool is cancelled while the inner job is queued.
                let _ = job_ctx.done().recv_timeout(LONG);
                joined_tx.send(inner.join()).expect("the test waits");
            })
            .expect("accepted");
        ready
            .recv_timeout(LONG)
            .expect("the outer job queued the inner one");
        ctx.cancel();
        assert!(matches!(
            joined.recv_timeout(LONG),
            Ok(Err(brigade::JobError::Cancelled(_)))
        ));
        let pool = Arc::into_inner(pool).expect("the job dropped its clone");
        let report = pool.shutdown_now();
        assert_eq!(
            runs.load(Ordering::SeqCst),
            0,
            "a job started in a cancelled pool"
        );
        assert_eq!(
            (report.submitted, report.ran, report.never_ran),
            (2, 1, 1),
            "{report:?}"
        );
    });
}

#[test]
fn a_job_run_inline_keeps_its_result_when_its_envelope_is_discarded() {
    // Found by the chaos suite: another worker discarding the queue (the
    // pool was cancelled) found the envelope of a job a join was running
    // inline, and reported it cancelled though it ran.
    with_timeout(LONG, || {
        let pool = Arc::new(
            ThreadPool::builder()
                .workers(2)
                .build()
                .expect("valid pool"),
        );
        let gate = Gate::new();
        let _blocker = common::occupy_worker(&pool, &gate);
        let inner_pool = Arc::clone(&pool);
        let (started_tx, started) = crossbeam_channel::bounded(1);
        let (go_tx, go) = crossbeam_channel::bounded::<()>(1);
        let (result_tx, result) = crossbeam_channel::bounded(1);
        let _outer = pool
            .submit(move |_ctx| {
                let inner = inner_pool
                    .submit(move |_ctx| -> u32 {
                        started_tx.send(()).expect("the test waits");
                        let _ = go.recv_timeout(LONG);
                        panic!("boom after the discard")
                    })
                    .expect("accepted");
                result_tx.send(inner.join()).expect("the test waits");
            })
            .expect("accepted");
        // Running inline on the outer job's worker; its envelope is queued.
        started
            .recv_timeout(LONG)
            .expect("the inner job started inline");
        pool.context().cancel();
        gate.open();
        // The blocker's worker finds the pool cancelled, discards the
        // queue (the inner job's envelope with it) and leaves.
        assert!(wait_until(LONG, || pool.stats().workers == 1));
        go_tx.send(()).expect("the inner job waits");
        let inner = result.recv_timeout(LONG).expect("the outer job reports");
        assert!(
            matches!(inner, Err(brigade::JobError::Panicked(_))),
            "{inner:?}"
        );
    });
}

#[test]
fn a_join_starts_a_queued_job_whose_own_timeout_already_passed() {
    // Found by the chaos suite under ThreadSanitizer: a join running a
    // queued job inline took the job's own per-job deadline, counted from
    // just before the start, for a cancellation of the pool whenever it
    // passed before the start (a slow lock, a descheduled thread), and
    // reported the job never run. A worker starts such a job, and it times
    // out; so must a join. A 1 ns timeout always passes before the start.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(1)
            .job_timeout(Duration::from_nanos(1))
            .build()
            .expect("valid pool");
        let pool = Arc::new(pool);
        let runs = Arc::new(AtomicUsize::new(0));
        let (inner_pool, counted) = (Arc::clone(&pool), Arc::clone(&runs));
        let (joined_tx, joined) = crossbeam_channel::bounded(1);
        let _outer = pool
            .submit(move |_ctx| {
                // Queued behind this job on the only worker: run inline.
                let inner = inner_pool
                    .submit(move |ctx| {
                        counted.fetch_add(1, Ordering::SeqCst);
                        // Returns only once its own deadline has passed.
                        let _ = ctx.done().recv_timeout(LONG);
                    })
                    .expect("accepted");
                drop(inner_pool);
                joined_tx.send(inner.join()).expect("the test waits");
            })
            .expect("accepted");
        let inner = joined.recv_timeout(LONG).expect("the outer job reports");
        assert_eq!(inner, Err(JobError::TimedOut));
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the inner job never ran");
        let pool = Arc::into_inner(pool).expect("the job dropped its clone");
        let report = pool.shutdown_now();
        assert_eq!(
            (report.submitted, report.ran, report.never_ran),
            (2, 2, 0),
            "{report:?}"
        );
    });
}
