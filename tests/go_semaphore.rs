//! Tests ported from Go's `golang.org/x/sync/semaphore` and rewritten in Rust
//! against brigade's [`Semaphore`].
//!
//! Source:
//!   - <https://github.com/golang/sync/blob/master/semaphore/semaphore_test.go>
//!   - <https://github.com/golang/sync/blob/master/semaphore/semaphore_example_test.go>
//!
//! Each Go test became one Rust test named after it in snake_case, with the
//! URL and the Go name above it. The scenarios are Go's; the code is our
//! own. Where brigade differs from `semaphore.Weighted` on purpose (permits
//! release on drop, an oversize acquire fails at once, a done context always
//! fails an acquire), the test checks brigade's behaviour and says so. Go's
//! sleeps that let a waiter queue up are replaced by waiting for
//! [`Semaphore::waiting`] to count it.
//!
//! Copyright & License:
//!   - Copyright 2017 The Go Authors. All rights reserved.
//!   - Use of this source code is governed by a BSD-style license that can
//!     be found at <https://github.com/golang/sync/blob/master/LICENSE>.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use brigade::{AcquireError, Cancelled, Context, ErrGroup, Permit, Semaphore};
use parking_lot::Mutex;

use common::{LONG, SplitMix64, wait_until, with_timeout};

/// Go's `GOMAXPROCS(0)`, but at least 4, so that the hammer tests contend
/// even on a small machine.
fn procs() -> usize {
    thread::available_parallelism().map_or(4, |n| n.get().max(4))
}

/// Holds acquired permits for a short random spin (Go sleeps up to 1 ms;
/// nothing here depends on how long the hold lasts, and spinning rather
/// than yielding keeps the test quick on a loaded machine).
fn hold_briefly(rng: &mut SplitMix64) {
    for _ in 0..rng.below(200) {
        std::hint::spin_loop();
    }
}

/// Go's `HammerWeighted`: `loops` times, acquire `n`, hold, release. Also
/// checks that the permits held at once never exceed the total.
fn hammer_weighted(sem: &Semaphore, n: usize, loops: usize, held: &AtomicUsize, seed: u64) {
    let mut rng = SplitMix64(seed);
    for _ in 0..loops {
        let permit = sem.acquire(n).expect("the semaphore is open");
        let now = held.fetch_add(n, Ordering::SeqCst) + n;
        assert!(now <= sem.total(), "{now} permits held of {}", sem.total());
        hold_briefly(&mut rng);
        held.fetch_sub(n, Ordering::SeqCst);
        drop(permit);
    }
}

// https://github.com/golang/sync/blob/master/semaphore/semaphore_test.go
// TestWeighted
#[test]
fn weighted() {
    // Threads hammering weights 0..n on a semaphore of n never overdraw it,
    // and every permit is back at the end.
    with_timeout(LONG, || {
        let n = procs();
        let loops = 10_000 / n;
        let sem = Semaphore::new(n).expect("n > 0");
        let held = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..n)
            .map(|i| {
                let (sem, held) = (sem.clone(), Arc::clone(&held));
                thread::spawn(move || hammer_weighted(&sem, i, loops, &held, i as u64))
            })
            .collect();
        for worker in workers {
            worker.join().expect("a hammer thread panicked");
        }
        assert_eq!(sem.available(), n);
        assert_eq!(sem.waiting(), 0);
    });
}

// https://github.com/golang/sync/blob/master/semaphore/semaphore_test.go
// TestWeightedPanic
//
// Adapted: Go panics when `Release` gives back permits that were never
// acquired. brigade makes that impossible by construction: permits are only
// released by dropping a `Permit`, and a `Permit` only comes from an
// acquire. So this checks the nearest properties instead: releases never
// lift `available` above `total`, a forgotten permit is never released, and
// a zero-count permit releases nothing.
#[test]
fn weighted_panic() {
    // Dropping permits can never return more than was acquired.
    let sem = Semaphore::new(3).expect("3 > 0");
    let one = sem.acquire(1).expect("open");
    let two = sem.acquire(2).expect("open");
    assert_eq!((one.count(), two.count()), (1, 2));
    assert_eq!(sem.available(), 0);
    let nothing = sem.acquire(0).expect("zero permits are always free");
    assert_eq!(nothing.count(), 0);
    drop(nothing);
    assert_eq!(sem.available(), 0, "a zero-count permit released something");
    drop(two);
    assert_eq!(sem.available(), 2);
    drop(one);
    assert_eq!(sem.available(), 3);
    assert_eq!(sem.available(), sem.total());

    // A forgotten permit is gone for good, and never "released twice".
    let kept = sem.acquire(2).expect("open");
    kept.forget();
    assert_eq!(sem.available(), 1);
    assert_eq!(sem.total(), 3, "total is the configured size");
    assert_eq!(sem.try_acquire(2).unwrap_err(), AcquireError::WouldBlock);
}

// https://github.com/golang/sync/blob/master/semaphore/semaphore_test.go
// TestWeightedTryAcquire
#[test]
fn weighted_try_acquire() {
    // try_acquire succeeds exactly while permits are free: true, false,
    // then true after a release, false once full again.
    let sem = Semaphore::new(2).expect("2 > 0");
    let mut held: Vec<Permit> = vec![sem.acquire(1).expect("open")];
    let mut tries = Vec::new();
    let attempt = |held: &mut Vec<Permit>| match sem.try_acquire(1) {
        Ok(permit) => {
            held.push(permit);
            true
        }
        Err(err) => {
            assert_eq!(err, AcquireError::WouldBlock);
            assert_eq!(err.to_string(), "no permits available without waiting");
            false
        }
    };
    tries.push(attempt(&mut held));
    tries.push(attempt(&mut held));

    // Go's Release(2): give both permits back.
    held.clear();

    tries.push(attempt(&mut held));
    held.push(sem.acquire(1).expect("open"));
    tries.push(attempt(&mut held));

    assert_eq!(tries, [true, false, true, false]);
    drop(held);
    assert_eq!(sem.available(), 2);
}

// https://github.com/golang/sync/blob/master/semaphore/semaphore_test.go
// TestWeightedAcquire
#[test]
fn weighted_acquire() {
    // acquire_ctx with a short deadline succeeds while permits are free and
    // fails with DeadlineExceeded once they are not.
    with_timeout(LONG, || {
        let sem = Semaphore::new(2).expect("2 > 0");
        let root = Context::new();
        let mut held: Vec<Permit> = vec![sem.acquire(1).expect("open")];
        let attempt = |held: &mut Vec<Permit>| {
            // Go uses 10 ms; 100 ms keeps a preempted test thread from
            // missing the deadline before it even asks.
            let ctx = root.with_timeout(Duration::from_millis(100));
            match sem.acquire_ctx(&ctx, 1) {
                Ok(permit) => {
                    held.push(permit);
                    true
                }
                Err(err) => {
                    assert_eq!(err, AcquireError::Cancelled(Cancelled::DeadlineExceeded));
                    assert_eq!(
                        err.to_string(),
                        "acquire cancelled: context deadline exceeded"
                    );
                    false
                }
            }
        };
        let mut tries = vec![attempt(&mut held), attempt(&mut held)];

        // Go's Release(2).
        held.clear();

        tries.push(attempt(&mut held));
        held.push(sem.acquire(1).expect("open"));
        tries.push(attempt(&mut held));

        assert_eq!(tries, [true, false, true, false]);
        assert_eq!(sem.waiting(), 0, "timed-out waiters left the queue");
        drop(held);
        assert_eq!(sem.available(), 2);
    });
}

// https://github.com/golang/sync/blob/master/semaphore/semaphore_test.go
// TestWeightedDoesntBlockIfTooBig
//
// Adapted: in Go the oversize `Acquire(ctx, n+1)` blocks until its context
// is done, and the test checks that it does not hold up smaller acquires.
// brigade refuses it at once with `AcquireError::TooMany`, so it never
// queues; the smaller acquires then proceed as in Go.
#[test]
fn weighted_doesnt_block_if_too_big() {
    // An acquire of more than the total fails at once without queueing, and
    // later small acquires all succeed.
    with_timeout(LONG, || {
        const N: usize = 2;
        let sem = Semaphore::new(N).expect("N > 0");
        let too_big = sem
            .acquire_ctx(&Context::new(), N + 1)
            .expect_err("more than the total");
        assert_eq!(
            too_big,
            AcquireError::TooMany {
                requested: 3,
                total: 2
            }
        );
        assert_eq!(
            too_big.to_string(),
            "cannot acquire 3 permits from a semaphore of 2; ask for at most 2"
        );
        assert_eq!(sem.waiting(), 0, "the oversize acquire queued");

        let group = ErrGroup::<AcquireError>::new(&Context::new());
        let ran = Arc::new(AtomicUsize::new(0));
        for seed in 0..(N * 3) as u64 {
            let (sem, ran) = (sem.clone(), Arc::clone(&ran));
            group
                .spawn(move |ctx| {
                    let permit = sem.acquire_ctx(ctx, 1)?;
                    hold_briefly(&mut SplitMix64(seed));
                    ran.fetch_add(1, Ordering::SeqCst);
                    drop(permit);
                    Ok(())
                })
                .map_err(|e| e.to_string())
                .expect("the group accepts tasks");
        }
        assert_eq!(group.wait(), Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), N * 3);
        assert_eq!(sem.available(), N);
    });
}

// https://github.com/golang/sync/blob/master/semaphore/semaphore_test.go
// TestLargeAcquireDoesntStarve
#[test]
fn large_acquire_doesnt_starve() {
    // While n threads keep releasing and re-taking one permit each, an
    // acquire of all n still gets through (FIFO: the re-takes queue behind
    // it). Returning at all is the success condition.
    with_timeout(LONG, || {
        let n = procs();
        let sem = Semaphore::new(n).expect("n > 0");
        let running = Arc::new(AtomicBool::new(true));
        let workers: Vec<_> = (0..n)
            .map(|_| {
                let mut permit = sem.acquire(1).expect("open");
                let (sem, running) = (sem.clone(), Arc::clone(&running));
                thread::spawn(move || {
                    while running.load(Ordering::SeqCst) {
                        thread::yield_now();
                        drop(permit);
                        permit = sem.acquire(1).expect("open");
                    }
                    drop(permit);
                })
            })
            .collect();

        let all = sem.acquire(n).expect("the large acquire is not starved");
        assert_eq!(all.count(), n);
        running.store(false, Ordering::SeqCst);
        drop(all);
        for worker in workers {
            worker.join().expect("a worker panicked");
        }
        assert_eq!(sem.available(), n);
        assert_eq!(sem.waiting(), 0);
    });
}

// https://github.com/golang/sync/blob/master/semaphore/semaphore_test.go
// TestAllocCancelDoesntStarve
#[test]
fn alloc_cancel_doesnt_starve() {
    // A small acquire queued behind a large one that is then cancelled is
    // woken and granted; the large one reports the cancellation.
    with_timeout(LONG, || {
        let sem = Semaphore::new(10).expect("10 > 0");
        // Hold one permit so the acquire of all 10 has to wait.
        let held = sem.acquire(1).expect("open");

        let ctx = Context::new();
        let large = thread::spawn({
            let (sem, ctx) = (sem.clone(), ctx.clone());
            move || sem.acquire_ctx(&ctx, 10).map(|permit| permit.count())
        });
        // Go spins on TryAcquire until it fails; we wait for the queue.
        assert!(
            wait_until(LONG, || sem.waiting() == 1),
            "the large acquire never queued"
        );

        // Cancel the large acquire while the small one comes in; both return,
        // in either order.
        let canceller = thread::spawn(move || ctx.cancel());
        let small = sem.acquire(1).expect("the small acquire is not starved");
        drop(small);
        canceller.join().expect("cancel does not panic");

        let large = large.join().expect("the large acquirer did not panic");
        assert_eq!(large, Err(AcquireError::Cancelled(Cancelled::Canceled)));
        drop(held);
        assert_eq!(sem.available(), 10);
        assert_eq!(sem.waiting(), 0);
    });
}

// https://github.com/golang/sync/blob/master/semaphore/semaphore_test.go
// TestWeightedAcquireCanceled (https://go.dev/issue/63615)
//
// Go runs the scenario once; we run it a number of rounds, because the race
// it guards against (the release lands between the cancellation and the
// waiter waking up) is won or lost by the scheduler.
#[test]
fn weighted_acquire_canceled() {
    // A waiter whose context is cancelled before enough permits are
    // released fails with Cancelled and keeps nothing; an acquire on a done
    // context fails even with permits free.
    with_timeout(LONG, || {
        const ROUNDS: usize = 100;
        let mut granted_after_cancel = 0;
        for _ in 0..ROUNDS {
            let sem = Semaphore::new(2).expect("2 > 0");
            let ctx = Context::new();
            let held = sem.acquire(1).expect("open");
            let other = thread::spawn({
                let (sem, ctx) = (sem.clone(), ctx.clone());
                move || {
                    // Synchronise with the acquire of 2 below.
                    assert!(
                        wait_until(LONG, || sem.waiting() == 1),
                        "the acquire never queued"
                    );
                    // Cancel first, then give the permit back.
                    ctx.cancel();
                    drop(held);
                }
            });
            // The cancellation happened before enough permits were free, so
            // this must fail.
            match sem.acquire_ctx(&ctx, 2) {
                Err(err) => assert_eq!(err, AcquireError::Cancelled(Cancelled::Canceled)),
                Ok(permit) => {
                    granted_after_cancel += 1;
                    drop(permit);
                }
            }
            other.join().expect("the other thread did not panic");

            // Both permits are back once the other thread released its one.
            let both = sem.try_acquire(2).expect("both permits are back");
            drop(both);
            // A done context fails the acquire even though it need not wait.
            assert_eq!(
                sem.acquire_ctx(&ctx, 1).unwrap_err(),
                AcquireError::Cancelled(Cancelled::Canceled)
            );
            assert_eq!(sem.available(), 2);
        }
        assert_eq!(
            granted_after_cancel, 0,
            "in {granted_after_cancel} of {ROUNDS} rounds acquire_ctx returned Ok although its \
             context was cancelled before the permits were released"
        );
    });
}

/// Steps for `n` to reach 1 under the Collatz map.
fn collatz_steps(mut n: u64) -> u32 {
    assert!(n > 0, "nonpositive input");
    let mut steps = 0;
    while n > 1 {
        n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
        steps += 1;
    }
    steps
}

// https://github.com/golang/sync/blob/master/semaphore/semaphore_example_test.go
// Example_workerPool
//
// Adapted: the permit moves into the worker thread and is released when it
// drops there (Go defers `Release(1)`).
#[test]
fn example_worker_pool() {
    // A semaphore bounds in-flight workers, and acquiring every permit waits
    // for the last of them.
    with_timeout(LONG, || {
        let max_workers = procs();
        let sem = Semaphore::new(max_workers).expect("max_workers > 0");
        let out = Arc::new(Mutex::new(vec![0u32; 32]));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for i in 0..32 {
            let permit = sem.acquire(1).expect("open");
            let (out, in_flight) = (Arc::clone(&out), Arc::clone(&in_flight));
            workers.push(thread::spawn(move || {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                assert!(now <= max_workers, "{now} workers in flight");
                out.lock()[i] = collatz_steps(i as u64 + 1);
                in_flight.fetch_sub(1, Ordering::SeqCst);
                drop(permit);
            }));
        }
        // Every permit back means every worker has finished its slot.
        let all = sem.acquire(max_workers).expect("open");
        assert_eq!(
            *out.lock(),
            [
                0, 1, 7, 2, 5, 8, 16, 3, 19, 6, 14, 9, 9, 17, 17, 4, 12, 20, 20, 7, 7, 15, 15, 10,
                23, 10, 111, 18, 18, 18, 106, 5
            ]
        );
        drop(all);
        for worker in workers {
            worker.join().expect("a worker panicked");
        }
    });
}
