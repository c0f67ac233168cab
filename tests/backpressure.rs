//! Backpressure: a full queue hands jobs back from `try_submit`,
//! `try_execute` and `submit_timeout`, blocks `submit`, and a blocked
//! `submit` wakes with the job when the pool or its parent context is
//! cancelled; rendezvous queues.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use brigade::{Cancelled, Context, JobError, JobHandle, SubmitError, ThreadPool, TrySubmitError};
use crossbeam_channel::RecvTimeoutError;

use common::{Gate, LONG, occupy_worker, with_timeout};

/// A pool whose only worker is held by a job and whose queue (of
/// `capacity`) is full, with the handles of the blocker and the queued jobs.
struct FullPool {
    pool: ThreadPool,
    gate: Gate,
    blocker: JobHandle<()>,
    queued: Vec<JobHandle<u32>>,
}

fn full_pool(capacity: usize, parent: Option<&Context>) -> FullPool {
    let mut builder = ThreadPool::builder().workers(1).queue_capacity(capacity);
    if let Some(parent) = parent {
        builder = builder.context(parent);
    }
    let pool = builder.build().expect("build");
    let gate = Gate::new();
    let blocker = occupy_worker(&pool, &gate);
    let queued = (0..capacity as u32)
        .map(|n| {
            pool.try_submit(move |_ctx: &Context| n)
                .expect("room in the queue")
        })
        .collect();
    FullPool {
        pool,
        gate,
        blocker,
        queued,
    }
}

#[test]
fn try_submit_full_hands_back_the_job() {
    // try_submit on a full queue fails at once with Full and hands back the
    // very closure it was given.
    with_timeout(LONG, || {
        let full = full_pool(1, None);
        let token = 0x5eed_u64;
        let err = full
            .pool
            .try_submit(move |_ctx: &Context| token)
            .unwrap_err();
        assert!(matches!(err, TrySubmitError::Full(_)));
        assert_eq!(err.to_string(), "the pool's queue is full");
        assert_eq!(format!("{err:?}"), "Full(..)");
        let job = err.into_inner();
        assert_eq!(job(&Context::background()), token);
        assert_eq!(full.pool.stats().submitted, 2, "rejections are not counted");

        full.gate.open();
        assert_eq!(full.blocker.join(), Ok(()));
        let values: Vec<_> = full.queued.into_iter().map(JobHandle::join).collect();
        assert_eq!(values, [Ok(0)]);
    });
}

#[test]
fn try_execute_full_hands_back_the_job() {
    // try_execute on a full queue fails with Full and hands back the closure,
    // which has not run.
    with_timeout(LONG, || {
        let full = full_pool(1, None);
        let ran = Arc::new(AtomicBool::new(false));
        let job = {
            let ran = Arc::clone(&ran);
            move || ran.store(true, Ordering::SeqCst)
        };
        let err = full.pool.try_execute(job).unwrap_err();
        assert!(matches!(err, TrySubmitError::Full(_)));
        assert!(!ran.load(Ordering::SeqCst));
        (err.into_inner())();
        assert!(
            ran.load(Ordering::SeqCst),
            "the handed-back closure is ours"
        );
        full.gate.open();
        assert_eq!(full.blocker.join(), Ok(()));
    });
}

#[test]
fn submit_timeout_full_after_wait() {
    // submit_timeout waits its full time on a full queue, then fails with
    // Full and the job.
    with_timeout(LONG, || {
        let full = full_pool(1, None);
        let wait = Duration::from_millis(50);
        let start = Instant::now();
        let err = full
            .pool
            .submit_timeout(|_ctx: &Context| 11, wait)
            .unwrap_err();
        let waited = start.elapsed();
        assert!(matches!(err, TrySubmitError::Full(_)));
        assert!(waited >= wait, "gave up after {waited:?}");
        assert_eq!((err.into_inner())(&Context::background()), 11);

        // With room freed during the wait, it succeeds.
        let opener = {
            let gate = full.gate.clone();
            thread::spawn(move || gate.open())
        };
        let handle = full
            .pool
            .submit_timeout(|_ctx: &Context| 12, LONG)
            .expect("room appears once the worker is free");
        opener.join().expect("opener");
        assert_eq!(handle.join(), Ok(12));
        assert_eq!(full.blocker.join(), Ok(()));
    });
}

/// A job whose type can be named in a helper's signature.
type BoxedJob = Box<dyn FnOnce(&Context) -> u64 + Send>;

/// Submits on a full pool from another thread, checks that the submit is
/// blocked, runs `cancel`, and returns the submit's result.
fn blocked_submit_then(
    full: &FullPool,
    cancel: impl FnOnce(),
) -> Result<JobHandle<u64>, SubmitError<BoxedJob>> {
    let (result_tx, result_rx) = crossbeam_channel::bounded(1);
    thread::scope(|s| {
        s.spawn(|| {
            let token = 77_u64;
            let job: BoxedJob = Box::new(move |_ctx: &Context| token);
            let result = full.pool.submit(job);
            result_tx.send(result).expect("the test waits");
        });
        // The submit must still be blocked on the full queue.
        match result_rx.recv_timeout(Duration::from_millis(50)) {
            Err(RecvTimeoutError::Timeout) => {}
            other => panic!("submit on a full queue returned at once: {other:?}"),
        }
        cancel();
        result_rx
            .recv_timeout(LONG)
            .expect("the blocked submit woke on cancellation")
    })
}

#[test]
fn blocked_submit_wakes_on_pool_cancel() {
    // A submit blocked on a full queue returns SubmitError::Cancelled with
    // its job when the pool's context is cancelled from another thread.
    with_timeout(LONG, || {
        let full = full_pool(1, None);
        let pool_ctx = full.pool.context().clone();
        let err = blocked_submit_then(&full, || pool_ctx.cancel()).unwrap_err();
        assert!(matches!(err, SubmitError::Cancelled(_)));
        assert_eq!(
            err.to_string(),
            "the pool was cancelled before the job could be queued"
        );
        assert_eq!(format!("{err:?}"), "Cancelled(..)");
        assert_eq!((err.into_inner())(&Context::background()), 77);

        full.gate.open();
        // The blocker returned after the cancel, so its value was discarded.
        assert_eq!(
            full.blocker.join(),
            Err(JobError::Cancelled(Cancelled::Canceled))
        );
        for handle in full.queued {
            assert_eq!(handle.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        }
        assert!(matches!(
            full.pool.submit(|_ctx: &Context| 0),
            Err(SubmitError::Cancelled(_))
        ));
    });
}

#[test]
fn blocked_submit_wakes_on_parent_cancel() {
    // A submit blocked on a full queue returns SubmitError::Cancelled when
    // the parent context given to the builder is cancelled.
    with_timeout(LONG, || {
        let parent = Context::new();
        let full = full_pool(1, Some(&parent));
        let err = blocked_submit_then(&full, || parent.cancel()).unwrap_err();
        assert!(matches!(err, SubmitError::Cancelled(_)));
        assert_eq!((err.into_inner())(&Context::background()), 77);
        assert_eq!(full.pool.context().reason(), Some(Cancelled::Canceled));
        full.gate.open();
        // The blocker returned after the cancel, so its value was discarded.
        assert_eq!(
            full.blocker.join(),
            Err(JobError::Cancelled(Cancelled::Canceled))
        );
        for handle in full.queued {
            assert_eq!(handle.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        }
    });
}

#[test]
fn blocked_submit_wakes_on_pool_deadline() {
    // A submit blocked on a full queue returns SubmitError::Cancelled when
    // the pool's deadline passes.
    with_timeout(LONG, || {
        let parent = Context::new().with_timeout(Duration::from_secs(1));
        let full = full_pool(1, Some(&parent));
        let err = blocked_submit_then(&full, || {}).unwrap_err();
        assert!(matches!(err, SubmitError::Cancelled(_)));
        assert_eq!(
            full.pool.context().reason(),
            Some(Cancelled::DeadlineExceeded)
        );
        full.gate.open();
        assert_eq!(
            full.blocker.join(),
            Err(JobError::Cancelled(Cancelled::DeadlineExceeded))
        );
    });
}

#[test]
fn cancelled_pool_refuses_every_submit() {
    // Once the pool is cancelled, every front door hands the job back with
    // Cancelled, without blocking.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(1).build().expect("build");
        pool.context().cancel();
        let err = pool.try_submit(|_ctx: &Context| 1_u8).unwrap_err();
        assert!(matches!(err, TrySubmitError::Cancelled(_)));
        assert_eq!(
            err.to_string(),
            "the pool was cancelled before the job could be queued"
        );
        assert_eq!((err.into_inner())(&Context::background()), 1);
        assert!(matches!(
            pool.try_execute(|| {}),
            Err(TrySubmitError::Cancelled(_))
        ));
        assert!(matches!(
            pool.submit_timeout(|_ctx: &Context| (), LONG),
            Err(TrySubmitError::Cancelled(_))
        ));
        assert!(matches!(
            pool.submit(|_ctx: &Context| ()),
            Err(SubmitError::Cancelled(_))
        ));
        assert!(matches!(
            pool.execute(|| {}),
            Err(SubmitError::Cancelled(_))
        ));
        assert_eq!(pool.stats().submitted, 0);
    });
}

#[test]
fn submit_blocks_until_room() {
    // A submit on a full queue waits, then succeeds once a slot frees up.
    with_timeout(LONG, || {
        let full = full_pool(2, None);
        let (result_tx, result_rx) = crossbeam_channel::bounded(1);
        let handle = thread::scope(|s| {
            s.spawn(|| {
                let result = full.pool.submit(|_ctx: &Context| 3_u32);
                result_tx.send(result).expect("the test waits");
            });
            match result_rx.recv_timeout(Duration::from_millis(50)) {
                Err(RecvTimeoutError::Timeout) => {}
                other => panic!("submit on a full queue returned at once: {other:?}"),
            }
            full.gate.open();
            result_rx
                .recv_timeout(LONG)
                .expect("the submit returned")
                .expect("accepted once there is room")
        });
        assert_eq!(handle.join(), Ok(3));
        let values: Vec<_> = full.queued.into_iter().map(JobHandle::join).collect();
        assert_eq!(values, [Ok(0), Ok(1)]);
    });
}

#[test]
fn rendezvous_queue_submits() {
    // queue_capacity(0): submit hands each job straight to a worker, and
    // every job runs.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .queue_capacity(0)
            .build()
            .expect("build");
        let handles: Vec<_> = (0..200u32)
            .map(|n| pool.submit(move |_ctx: &Context| n + 1).expect("submit"))
            .collect();
        for (n, handle) in (0..200u32).zip(handles) {
            assert_eq!(handle.join(), Ok(n + 1));
        }
        assert_eq!(pool.stats().queued, 0);
    });
}

#[test]
fn rendezvous_try_submit_full_when_no_worker_waits() {
    // With a rendezvous queue and the only worker busy, try_submit is Full.
    with_timeout(LONG, || {
        let full = full_pool(0, None);
        let err = full.pool.try_submit(|_ctx: &Context| 1_u8).unwrap_err();
        assert!(matches!(err, TrySubmitError::Full(_)));
        full.gate.open();
        assert_eq!(full.blocker.join(), Ok(()));
    });
}
