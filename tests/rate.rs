//! `RateLimiter` behaviour beyond the Go port (`go_rate.rs`): clones share
//! a bucket, a crew of threads keeps to the rate, reservations are not
//! cancelled by drop, zero-token requests, and the exact error messages.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use brigade::{Context, RateError, RateLimiter};

use common::{LONG, with_timeout};

const MS: Duration = Duration::from_millis(1);

#[test]
fn clones_share_one_bucket() {
    // Tokens taken through one clone are gone for every clone.
    let lim = RateLimiter::new(1.0, 2).unwrap();
    let other = lim.clone();
    let t0 = Instant::now();
    assert!(lim.try_acquire_at(t0, 2));
    assert!(!other.try_acquire_at(t0, 1));
    assert_eq!(other.available_at(t0), 0.0);
}

#[test]
fn limiter_is_shareable_across_threads() {
    // A limiter can be moved or shared into every worker.
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync_clone::<RateLimiter>();
}

#[test]
fn crew_keeps_to_the_rate() {
    // Four threads waiting on clones of one limiter get 40 tokens no faster
    // than the rate allows: one at once, then one per 10 ms (390 ms; the
    // bound leaves room for nanosecond rounding of the ready times).
    with_timeout(LONG, || {
        let lim = RateLimiter::new(100.0, 1).unwrap();
        let ctx = Context::new();
        let start = Instant::now();
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10 {
                        lim.wait(&ctx, 1).expect("no cancel, no deadline");
                    }
                });
            }
        });
        assert!(start.elapsed() >= MS * 389, "took {:?}", start.elapsed());
    });
}

#[test]
fn dropping_a_reservation_does_not_cancel_it() {
    // The tokens of a dropped reservation stay spent.
    let lim = RateLimiter::new(10.0, 2).unwrap();
    let t0 = Instant::now();
    drop(lim.reserve_at(t0, 2).unwrap());
    assert_eq!(lim.available_at(t0), 0.0);
    let next = lim.reserve_at(t0, 1).unwrap();
    assert_eq!(next.delay_at(t0), MS * 100);
    assert_eq!(next.tokens(), 1);
}

#[test]
fn zero_tokens_succeed_at_once_and_change_nothing() {
    // n = 0 is granted immediately, even in debt, and leaves the bucket be.
    let lim = RateLimiter::new(10.0, 1).unwrap();
    let t0 = Instant::now();
    let _debt = lim.reserve_at(t0, 1).unwrap();
    let _more = lim.reserve_at(t0, 1).unwrap();
    assert!(lim.try_acquire_at(t0, 0));
    assert_eq!(lim.reserve_at(t0, 0).unwrap().delay_at(t0), Duration::ZERO);
    assert_eq!(lim.wait(&Context::new(), 0), Ok(()));
    assert_eq!(lim.available_at(t0), -1.0);
}

#[test]
fn wait_checks_burst_before_the_context() {
    // An oversized request is a programming error, reported even when the
    // context is already done.
    let lim = RateLimiter::new(10.0, 2).unwrap();
    let ctx = Context::new();
    ctx.cancel();
    assert_eq!(
        lim.wait(&ctx, 3),
        Err(RateError::ExceedsBurst {
            requested: 3,
            burst: 2
        })
    );
}

#[test]
fn unlimited_never_waits() {
    // Any request, of any size, is granted at once.
    let lim = RateLimiter::unlimited();
    let ctx = Context::new().with_timeout(MS);
    for _ in 0..1_000 {
        assert!(lim.try_acquire(usize::MAX));
    }
    assert!(lim.reserve(usize::MAX).unwrap().delay().is_zero());
    assert_eq!(lim.burst(), usize::MAX);
    // A done context is still reported.
    ctx.cancel();
    assert!(matches!(lim.wait(&ctx, 1), Err(RateError::Cancelled(_))));
}

#[test]
fn error_messages() {
    // Each error says what went wrong and, for bad settings, what to fix.
    let cases = [
        (
            RateLimiter::new(f64::NAN, 1).unwrap_err(),
            "rate must be a finite number of tokens per second greater than 0, got NaN; \
             use RateLimiter::unlimited() for no limit",
        ),
        (
            RateLimiter::new(-2.5, 1).unwrap_err(),
            "rate must be a finite number of tokens per second greater than 0, got -2.5; \
             use RateLimiter::unlimited() for no limit",
        ),
        (
            RateLimiter::new(1.0, 0).unwrap_err(),
            "burst must be at least 1, got 0",
        ),
        (
            RateLimiter::every(Duration::ZERO, 1).unwrap_err(),
            "interval must be greater than zero; use RateLimiter::unlimited() for no limit",
        ),
        (
            RateLimiter::new(1.0, 2).unwrap().reserve(5).unwrap_err(),
            "cannot take 5 tokens at once from a limiter whose burst is 2; \
             ask for at most 2 or raise the burst",
        ),
        (
            RateError::WouldExceedDeadline {
                requested: 3,
                wait: MS * 200,
                max_wait: MS * 50,
            },
            "waiting 200ms for 3 tokens would run past the deadline, 50ms away",
        ),
        (
            RateError::TooFarAhead { requested: 1 },
            "1 token would not be ready within any representable time; \
             raise the rate or cancel earlier reservations",
        ),
        (
            RateError::Cancelled(brigade::Cancelled::DeadlineExceeded),
            "rate limit wait cancelled: context deadline exceeded",
        ),
    ];
    for (err, message) in cases {
        assert_eq!(err.to_string(), message);
    }
}
