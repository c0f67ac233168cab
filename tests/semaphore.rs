//! `Semaphore`: strict FIFO (a large waiter at the head holds back smaller
//! ones even when permits are free), a cancelled or timed-out head wakes the
//! waiters behind it, a done context fails an acquire at once, timeouts leave
//! the queue clean, `try_acquire` never jumps the queue, `close` wakes every
//! waiter, permits are `'static + Send` and release on drop, `forget`
//! shrinks capacity, exact error texts, and a randomised stress run that
//! never overdraws the semaphore.
//!
//! Waiters are ordered by waiting for [`Semaphore::waiting`] to count them,
//! never by sleeping.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use brigade::{AcquireError, Cancelled, Context, Permit, Semaphore, SemaphoreError, ThreadPool};

use common::{Gate, LONG, SplitMix64, wait_until, with_timeout};

/// Runs `acquire` on its own thread and returns once the semaphore's queue
/// has grown to `queued_after` (so the acquire is known to be waiting, in
/// that position).
fn queue_up<T, F>(sem: &Semaphore, queued_after: usize, acquire: F) -> JoinHandle<T>
where
    F: FnOnce(Semaphore) -> T + Send + 'static,
    T: Send + 'static,
{
    let handle = thread::spawn({
        let sem = sem.clone();
        move || acquire(sem)
    });
    assert!(
        wait_until(LONG, || sem.waiting() == queued_after),
        "the acquire did not queue (waiting = {}, want {queued_after})",
        sem.waiting()
    );
    handle
}

fn assert_send_static<T: Send + 'static>() {}
fn assert_send_sync<T: Send + Sync + 'static>() {}

#[test]
fn fifo_large_head_blocks_smaller_later_waiters() {
    // A waiter for 3 at the head keeps a later waiter for 1 queued even
    // while 1 permit is free; one release then grants both, in order.
    with_timeout(LONG, || {
        let sem = Semaphore::new(4).expect("4 > 0");
        let three = sem.acquire(3).expect("open");
        let one = sem.acquire(1).expect("open");

        let large = queue_up(&sem, 1, |sem| sem.acquire(3));
        let small = queue_up(&sem, 2, |sem| sem.acquire(1));

        // One permit free: the small waiter fits but must not jump the queue.
        drop(one);
        assert_eq!(sem.available(), 1);
        assert_eq!(sem.waiting(), 2, "the small waiter jumped the large one");
        assert!(!small.is_finished(), "the small waiter was granted early");

        // Four free: the large head takes 3, then the small one takes 1.
        drop(three);
        let large = large.join().expect("no panic").expect("granted");
        let small = small.join().expect("no panic").expect("granted");
        assert_eq!((large.count(), small.count()), (3, 1));
        assert_eq!(sem.available(), 0);
        assert_eq!(sem.waiting(), 0);
        drop((large, small));
        assert_eq!(sem.available(), 4);
    });
}

#[test]
fn cancelled_head_wakes_waiters_behind_it() {
    // Cancelling the large waiter at the head lets the smaller waiter behind
    // it take the permit that was free all along.
    with_timeout(LONG, || {
        let sem = Semaphore::new(4).expect("4 > 0");
        let held = sem.acquire(3).expect("open");
        let ctx = Context::new();

        let large = queue_up(&sem, 1, {
            let ctx = ctx.clone();
            move |sem| sem.acquire_ctx(&ctx, 4).map(|p| p.count())
        });
        let small = queue_up(&sem, 2, |sem| sem.acquire(1));

        ctx.cancel();
        let large = large.join().expect("no panic");
        assert_eq!(large, Err(AcquireError::Cancelled(Cancelled::Canceled)));
        assert_eq!(
            large.unwrap_err().to_string(),
            "acquire cancelled: context canceled"
        );
        let small = small.join().expect("no panic").expect("woken and granted");
        assert_eq!(small.count(), 1);
        assert_eq!(sem.waiting(), 0);
        assert_eq!(sem.available(), 0);
        drop((small, held));
        assert_eq!(sem.available(), 4);
    });
}

#[test]
fn timed_out_head_wakes_waiters_behind_it() {
    // A head waiter whose timeout passes leaves the queue and grants the
    // waiter behind it, which fits in the free permits.
    with_timeout(LONG, || {
        let sem = Semaphore::new(2).expect("2 > 0");
        let held = sem.acquire(1).expect("open");
        // The head needs 2 and can never get them while `held` lives. Its
        // timeout only has to outlast queueing the small waiter behind it.
        let large = queue_up(&sem, 1, |sem| {
            sem.acquire_timeout(2, Duration::from_millis(500))
                .map(|p| p.count())
        });
        let small = queue_up(&sem, 2, |sem| sem.acquire(1));

        assert_eq!(large.join().expect("no panic"), Err(AcquireError::TimedOut));
        let small = small.join().expect("no panic").expect("woken and granted");
        assert_eq!(small.count(), 1);
        assert_eq!(sem.waiting(), 0);
        drop((small, held));
        assert_eq!(sem.available(), 2);
    });
}

#[test]
fn acquire_ctx_on_done_context_fails_with_free_permits() {
    // A context that is already done fails acquire_ctx at once, for any n,
    // and takes nothing, although every permit is free.
    let sem = Semaphore::new(3).expect("3 > 0");

    let cancelled = Context::new();
    cancelled.cancel();
    for n in [0, 1, 3] {
        let err = sem.acquire_ctx(&cancelled, n).expect_err("done context");
        assert_eq!(err, AcquireError::Cancelled(Cancelled::Canceled));
        assert_eq!(err.to_string(), "acquire cancelled: context canceled");
    }

    let expired = Context::new().with_timeout(Duration::ZERO);
    let err = sem.acquire_ctx(&expired, 1).expect_err("expired context");
    assert_eq!(err, AcquireError::Cancelled(Cancelled::DeadlineExceeded));
    assert_eq!(
        err.to_string(),
        "acquire cancelled: context deadline exceeded"
    );

    // A child of a cancelled context is done too.
    let child = cancelled.child();
    assert_eq!(
        sem.acquire_ctx(&child, 1).unwrap_err(),
        AcquireError::Cancelled(Cancelled::Canceled)
    );

    assert_eq!(sem.available(), 3);
    assert_eq!(sem.waiting(), 0);
    // A live context with free permits succeeds at once.
    let live = sem.acquire_ctx(&Context::new(), 3).expect("free and live");
    assert_eq!(live.count(), 3);
}

#[test]
fn acquire_timeout_times_out_and_leaves_queue_clean() {
    // acquire_timeout fails with TimedOut after about its timeout, leaves no
    // waiter behind, and takes nothing; with permits free it succeeds at
    // once, even with a zero timeout.
    with_timeout(LONG, || {
        let sem = Semaphore::new(2).expect("2 > 0");
        let held = sem.acquire(2).expect("open");

        let timeout = Duration::from_millis(100);
        let start = Instant::now();
        let err = sem
            .acquire_timeout(1, timeout)
            .expect_err("nothing is free");
        let elapsed = start.elapsed();
        assert_eq!(err, AcquireError::TimedOut);
        assert_eq!(err.to_string(), "timed out waiting for permits");
        assert!(elapsed >= timeout, "gave up early, after {elapsed:?}");
        assert!(
            elapsed < timeout + Duration::from_secs(5),
            "gave up far too late, after {elapsed:?}"
        );
        assert_eq!(sem.waiting(), 0, "the timed-out waiter stayed queued");
        assert_eq!(sem.available(), 0);

        assert_eq!(
            sem.acquire_timeout(1, Duration::ZERO).unwrap_err(),
            AcquireError::TimedOut
        );
        assert_eq!(sem.waiting(), 0);

        drop(held);
        assert_eq!(sem.available(), 2, "the permits came back intact");
        let quick = sem
            .acquire_timeout(2, Duration::ZERO)
            .expect("free permits need no waiting");
        assert_eq!(quick.count(), 2);
    });
}

#[test]
fn try_acquire_would_block_while_anyone_is_queued() {
    // try_acquire refuses with WouldBlock while a waiter is queued, even
    // though the permits it asks for are free, and succeeds once the queue
    // is empty.
    with_timeout(LONG, || {
        let sem = Semaphore::new(3).expect("3 > 0");
        let held = sem.acquire(2).expect("open");
        let waiter = queue_up(&sem, 1, |sem| sem.acquire(3).map(|p| p.count()));

        assert_eq!(sem.available(), 1);
        let err = sem.try_acquire(1).expect_err("someone is queued");
        assert_eq!(err, AcquireError::WouldBlock);
        assert_eq!(err.to_string(), "no permits available without waiting");
        assert_eq!(sem.waiting(), 1, "try_acquire never queues");

        drop(held);
        assert_eq!(waiter.join().expect("no panic"), Ok(3));
        assert_eq!(sem.waiting(), 0);
        let now = sem.try_acquire(1).expect("free and nobody queued");
        assert_eq!(now.count(), 1);
    });
}

#[test]
fn close_wakes_every_waiter_and_fails_later_acquires() {
    // close wakes each kind of waiter with Closed, empties the queue, makes
    // every later acquire fail the same way, and held permits still come
    // back on drop.
    with_timeout(LONG, || {
        let sem = Semaphore::new(2).expect("2 > 0");
        let held = sem.acquire(2).expect("open");
        let ctx = Context::new();

        let waiters = vec![
            queue_up(&sem, 1, |sem| sem.acquire(1).map(|p| p.count())),
            queue_up(&sem, 2, |sem| sem.acquire(2).map(|p| p.count())),
            queue_up(&sem, 3, move |sem| {
                sem.acquire_ctx(&ctx, 1).map(|p| p.count())
            }),
            queue_up(&sem, 4, |sem| {
                sem.acquire_timeout(1, LONG).map(|p| p.count())
            }),
        ];
        assert!(!sem.is_closed());
        sem.close();
        assert!(sem.is_closed());
        for waiter in waiters {
            let err = waiter.join().expect("no panic").expect_err("closed");
            assert_eq!(err, AcquireError::Closed);
            assert_eq!(err.to_string(), "the semaphore is closed");
        }
        assert_eq!(sem.waiting(), 0);

        // Held permits still return on drop.
        drop(held);
        assert_eq!(sem.available(), 2);

        // Every later acquire fails, even with every permit free.
        assert_eq!(sem.acquire(1).unwrap_err(), AcquireError::Closed);
        assert_eq!(sem.acquire(2).unwrap_err(), AcquireError::Closed);
        assert_eq!(sem.try_acquire(1).unwrap_err(), AcquireError::Closed);
        assert_eq!(
            sem.acquire_ctx(&Context::new(), 1).unwrap_err(),
            AcquireError::Closed
        );
        assert_eq!(
            sem.acquire_timeout(1, Duration::ZERO).unwrap_err(),
            AcquireError::Closed
        );

        // Idempotent.
        sem.close();
        assert!(sem.is_closed());
        assert_eq!(sem.available(), 2);
    });
}

#[test]
fn permit_is_static_and_send_into_pool_job() {
    // A permit moves into a ThreadPool job, is held while the job runs, and
    // goes back (waking a waiter) when the job drops it.
    assert_send_static::<Permit>();
    assert_send_sync::<Semaphore>();
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("sem-pool")
            .build()
            .expect("build");
        let sem = Semaphore::new(1).expect("1 > 0");
        let permit = sem.acquire(1).expect("open");
        let gate = Gate::new();
        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        pool.execute({
            let gate = gate.clone();
            move || {
                let held = permit;
                started_tx.send(held.count()).expect("the test listens");
                gate.wait();
            }
        })
        .expect("the pool accepts the job");
        assert_eq!(started_rx.recv_timeout(LONG), Ok(1));
        assert_eq!(sem.available(), 0, "the job holds the permit");

        let waiter = queue_up(&sem, 1, |sem| sem.acquire(1).map(|p| p.count()));
        gate.open();
        assert_eq!(waiter.join().expect("no panic"), Ok(1));
        pool.join();
        assert_eq!(sem.available(), 1);
        assert_eq!(sem.waiting(), 0);
    });
}

#[test]
fn forget_shrinks_capacity() {
    // A forgotten permit never returns: available shrinks for good while
    // total stays the configured size.
    let sem = Semaphore::new(3).expect("3 > 0");
    let two = sem.acquire(2).expect("open");
    assert_eq!(two.count(), 2);
    two.forget();
    assert_eq!(sem.available(), 1);
    assert_eq!(sem.total(), 3);
    assert_eq!(sem.try_acquire(2).unwrap_err(), AcquireError::WouldBlock);

    let one = sem.acquire(1).expect("one is left");
    drop(one);
    assert_eq!(sem.available(), 1, "only the un-forgotten permit came back");
    assert_eq!(
        sem.acquire_timeout(2, Duration::from_millis(10))
            .unwrap_err(),
        AcquireError::TimedOut
    );
    assert_eq!(sem.waiting(), 0);
}

#[test]
fn new_zero_permits_is_an_error() {
    // A semaphore of zero permits is refused with an exact message.
    let err = Semaphore::new(0).expect_err("zero permits");
    assert_eq!(err, SemaphoreError::ZeroPermits);
    assert_eq!(
        err.to_string(),
        "a semaphore needs at least 1 permit, got 0"
    );
    let one = Semaphore::new(1).expect("one permit is fine");
    assert_eq!((one.total(), one.available(), one.waiting()), (1, 1, 0));
}

#[test]
fn too_many_fails_at_once_in_every_form() {
    // Asking for more than the total fails at once with TooMany, in every
    // acquire form, without queueing, even while permits are held.
    with_timeout(LONG, || {
        let sem = Semaphore::new(2).expect("2 > 0");
        let held = sem.acquire(2).expect("open");
        let too_many = AcquireError::TooMany {
            requested: 3,
            total: 2,
        };
        assert_eq!(sem.acquire(3).unwrap_err(), too_many);
        assert_eq!(sem.acquire_ctx(&Context::new(), 3).unwrap_err(), too_many);
        assert_eq!(sem.acquire_timeout(3, LONG).unwrap_err(), too_many);
        assert_eq!(sem.try_acquire(3).unwrap_err(), too_many);
        assert_eq!(
            too_many.to_string(),
            "cannot acquire 3 permits from a semaphore of 2; ask for at most 2"
        );
        assert_eq!(
            sem.try_acquire(usize::MAX).unwrap_err().to_string(),
            format!(
                "cannot acquire {} permits from a semaphore of 2; ask for at most 2",
                usize::MAX
            )
        );
        assert_eq!(sem.waiting(), 0);
        drop(held);
        assert_eq!(sem.available(), 2);
    });
}

/// What a stress thread did, in counts.
#[derive(Debug, Default)]
struct Outcomes {
    granted: usize,
    cancelled: usize,
    timed_out: usize,
    would_block: usize,
}

/// Permits in use right now, as the stress threads account for them: added
/// after a grant, taken off before the release, so never above the truth.
struct Ledger {
    held: AtomicUsize,
    peak: AtomicUsize,
}

fn stress_thread(
    sem: &Semaphore,
    ledger: &Ledger,
    cancel: &crossbeam_channel::Sender<Context>,
    seed: u64,
    rounds: usize,
) -> Outcomes {
    let total = sem.total();
    let mut rng = SplitMix64(seed);
    let mut outcomes = Outcomes::default();
    for _ in 0..rounds {
        let want = 1 + rng.below(total as u64) as usize;
        let short = Duration::from_micros(rng.below(300));
        let mode = rng.below(5);
        let acquired = match mode {
            0 => sem.acquire(want),
            1 => {
                // Cancelled by another thread, racing this acquire.
                let ctx = Context::new();
                cancel.send(ctx.clone()).expect("the canceller runs");
                sem.acquire_ctx(&ctx, want)
            }
            2 => sem.acquire_ctx(&Context::new().with_timeout(short), want),
            3 => sem.acquire_timeout(want, short),
            _ => sem.try_acquire(want),
        };
        match acquired {
            Ok(permit) => {
                assert_eq!(permit.count(), want);
                let now = ledger.held.fetch_add(want, Ordering::SeqCst) + want;
                assert!(now <= total, "{now} permits held of {total}");
                ledger.peak.fetch_max(now, Ordering::SeqCst);
                for _ in 0..rng.below(4) {
                    thread::yield_now();
                }
                ledger.held.fetch_sub(want, Ordering::SeqCst);
                drop(permit);
                outcomes.granted += 1;
            }
            Err(AcquireError::Cancelled(_)) if mode == 1 || mode == 2 => outcomes.cancelled += 1,
            Err(AcquireError::TimedOut) if mode == 3 => outcomes.timed_out += 1,
            Err(AcquireError::WouldBlock) if mode == 4 => outcomes.would_block += 1,
            Err(other) => panic!("mode {mode}: unexpected {other:?}"),
        }
        assert!(sem.available() <= total);
    }
    outcomes
}

#[test]
fn stress_never_overdraws_and_ends_clean() {
    // Many threads acquiring random weights in every form, with random
    // cancellations and timeouts, never hold more than the total at once;
    // afterwards every permit is back and nobody is queued.
    with_timeout(LONG, || {
        const THREADS: u64 = 8;
        const ROUNDS: usize = 400;
        const TOTAL: usize = 6;
        let sem = Semaphore::new(TOTAL).expect("TOTAL > 0");
        let ledger = Arc::new(Ledger {
            held: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        });
        let (cancel_tx, cancel_rx) = crossbeam_channel::unbounded::<Context>();
        let canceller = thread::spawn(move || {
            for ctx in cancel_rx {
                ctx.cancel();
            }
        });
        let threads: Vec<_> = (0..THREADS)
            .map(|seed| {
                let (sem, ledger, cancel_tx) =
                    (sem.clone(), Arc::clone(&ledger), cancel_tx.clone());
                thread::spawn(move || stress_thread(&sem, &ledger, &cancel_tx, seed, ROUNDS))
            })
            .collect();
        drop(cancel_tx);
        let mut all = Outcomes::default();
        for thread in threads {
            let outcomes = thread.join().expect("a stress thread panicked");
            all.granted += outcomes.granted;
            all.cancelled += outcomes.cancelled;
            all.timed_out += outcomes.timed_out;
            all.would_block += outcomes.would_block;
        }
        canceller.join().expect("the canceller did not panic");

        assert_eq!(
            all.granted + all.cancelled + all.timed_out + all.would_block,
            THREADS as usize * ROUNDS
        );
        assert!(all.granted > 0, "nothing was ever granted: {all:?}");
        assert!(ledger.peak.load(Ordering::SeqCst) <= TOTAL);
        assert_eq!(ledger.held.load(Ordering::SeqCst), 0);
        assert_eq!(sem.available(), TOTAL, "permits were lost: {all:?}");
        assert_eq!(sem.waiting(), 0, "waiters were left behind: {all:?}");
    });
}
