//! Tests ported from golang.org/x/time's rate limiter and rewritten in Rust
//! against brigade's `RateLimiter`.
//!
//! Source:
//!   - https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go
//!
//! Copyright & License:
//!   - Copyright (c) 2015 The Go Authors. All rights reserved.
//!   - Use of this source code is governed by a BSD-style license:
//!     https://github.com/golang/time/blob/master/LICENSE
//!
//! One Rust test per Go test, named after it in snake_case, with a link to
//! the original above it. Go drives `AllowN(t, n)` and `reserveN(t, n, max)`
//! with synthetic times `t0..t9`, 100 ms apart; these tests do the same
//! through the `_at` forms, so the tables are deterministic. Go's `Wait`
//! tests use a fake timer; here the arithmetic is checked with the `_at`
//! forms and the blocking behaviour with real waits whose bounds cannot be
//! missed by a slow machine (time is scaled up where a cancel from another
//! thread must land inside a wait). Where brigade's API differs from Go's,
//! the test checks brigade's behaviour and says so; tests of Go-only API are
//! listed where they would be, with the reason they are not ported.

mod common;

use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use brigade::{Cancelled, Context, RateError, RateLimiter, Reservation};

use common::{LONG, wait_until, with_timeout};

/// Go's `d`: the step between the synthetic times.
const D: Duration = Duration::from_millis(100);

/// Go's `t0 … t9`: `t[k]` is `k × D` after a common base.
fn times() -> [Instant; 10] {
    let t0 = Instant::now();
    std::array::from_fn(|k| t0 + D * k as u32)
}

fn limiter(rate: f64, burst: usize) -> RateLimiter {
    RateLimiter::new(rate, burst).expect("valid limiter")
}

/// Go's `allow` row: at time `t[at]` the limiter holds `toks` tokens, and
/// `AllowN(t[at], n)` answers `ok`.
struct Allow {
    at: usize,
    toks: f64,
    n: usize,
    ok: bool,
}

const fn allow(at: usize, toks: f64, n: usize, ok: bool) -> Allow {
    Allow { at, toks, n, ok }
}

/// Go's `run`: checks each row in order.
fn run(lim: &RateLimiter, t: &[Instant; 10], rows: &[Allow]) {
    for (step, row) in rows.iter().enumerate() {
        let toks = lim.available_at(t[row.at]);
        assert_eq!(toks, row.toks, "step {step}: available_at(t{})", row.at);
        let ok = lim.try_acquire_at(t[row.at], row.n);
        assert_eq!(
            ok, row.ok,
            "step {step}: try_acquire_at(t{}, {})",
            row.at, row.n
        );
    }
}

/// Go's `dSince`: whole multiples of `D` from `t0` to `t`, rounded.
fn d_since(t0: Instant, t: Instant) -> u128 {
    (t.saturating_duration_since(t0) + D / 2).as_nanos() / D.as_nanos()
}

/// Go's `runReserve` for a request that must be granted: reserves `n` at
/// `t[at]` and checks that it is ready at `t[act]`; returns the
/// reservation, for a test that cancels it later.
fn reserve_kept(
    lim: &RateLimiter,
    t: &[Instant; 10],
    at: usize,
    n: usize,
    act: usize,
) -> Reservation {
    let r = lim
        .reserve_at(t[at], n)
        .unwrap_or_else(|e| panic!("reserve_at(t{at}, {n}) failed: {e}"));
    assert_eq!(
        d_since(t[0], r.ready_at()),
        act as u128,
        "reserve_at(t{at}, {n}) is ready at t{}, want t{act}",
        d_since(t[0], r.ready_at())
    );
    r
}

/// [`reserve_kept`], for a reservation the test never cancels. Dropping it
/// keeps its tokens spent, as Go's discarded reservations do.
fn reserve_ok(lim: &RateLimiter, t: &[Instant; 10], at: usize, n: usize, act: usize) {
    drop(reserve_kept(lim, t, at, n, act));
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L16
#[test]
fn limit() {
    // A finite rate is not the unlimited one.
    assert_ne!(limiter(10.0, 1).rate(), f64::INFINITY);
    assert_eq!(RateLimiter::unlimited().rate(), f64::INFINITY);
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L26
#[test]
fn every() {
    // An interval converts to its reciprocal rate. Go maps 0 and negative
    // intervals to `Inf`; a `Duration` cannot be negative, and brigade
    // rejects zero (use `RateLimiter::unlimited()`).
    let cases = [
        (Duration::from_nanos(1), 1e9),
        (Duration::from_micros(1), 1e6),
        (Duration::from_millis(1), 1e3),
        (Duration::from_millis(10), 100.0),
        (Duration::from_millis(100), 10.0),
        (Duration::from_secs(1), 1.0),
        (Duration::from_secs(2), 0.5),
        (Duration::from_millis(2_500), 0.4),
        (Duration::from_secs(4), 0.25),
        (Duration::from_secs(10), 0.1),
        (Duration::from_nanos(i64::MAX as u64), 1e9 / i64::MAX as f64),
    ];
    for (interval, want) in cases {
        let got = RateLimiter::every(interval, 1)
            .expect("valid interval")
            .rate();
        assert!(
            (got / want - 1.0).abs() < 1e-9,
            "every({interval:?}) = {got}, want {want}"
        );
    }
    assert_eq!(
        RateLimiter::every(Duration::ZERO, 1).unwrap_err(),
        RateError::ZeroInterval
    );
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L89
#[test]
fn limiter_burst1() {
    // One token, refilled every 100 ms; asking for two never succeeds.
    let t = times();
    run(
        &limiter(10.0, 1),
        &t,
        &[
            allow(0, 1.0, 1, true),
            allow(0, 0.0, 1, false),
            allow(0, 0.0, 1, false),
            allow(1, 1.0, 1, true),
            allow(1, 0.0, 1, false),
            allow(1, 0.0, 1, false),
            allow(2, 1.0, 2, false), // more than the burst
            allow(2, 1.0, 1, true),
            allow(2, 0.0, 1, false),
        ],
    );
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L103
#[test]
fn limiter_burst3() {
    // Three tokens: partial takes, refills capped at the burst, n = 0.
    let t = times();
    run(
        &limiter(10.0, 3),
        &t,
        &[
            allow(0, 3.0, 2, true),
            allow(0, 1.0, 2, false),
            allow(0, 1.0, 1, true),
            allow(0, 0.0, 1, false),
            allow(1, 1.0, 4, false),
            allow(2, 2.0, 1, true),
            allow(3, 2.0, 1, true),
            allow(4, 2.0, 1, true),
            allow(4, 1.0, 1, true),
            allow(4, 0.0, 1, false),
            allow(4, 0.0, 1, false),
            allow(9, 3.0, 3, true),
            allow(9, 0.0, 0, true),
        ],
    );
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L121
#[test]
fn limiter_jump_backwards() {
    // A `now` earlier than the last one counts as no time passed, and
    // later refills are measured from it.
    let t = times();
    run(
        &limiter(10.0, 3),
        &t,
        &[
            allow(1, 3.0, 1, true), // start at t1
            allow(0, 2.0, 1, true), // jump back to t0: two tokens remain
            allow(0, 1.0, 1, true),
            allow(0, 0.0, 1, false),
            allow(0, 0.0, 1, false),
            allow(1, 1.0, 1, true), // a token refilled since t0
            allow(1, 0.0, 1, false),
            allow(1, 0.0, 1, false),
            allow(2, 1.0, 1, true),
            allow(2, 0.0, 1, false),
            allow(2, 0.0, 1, false),
        ],
    );
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L140
#[test]
fn limiter_no_truncation_errors() {
    // An odd fractional rate still grants the initial token (Go issue 34861).
    assert!(limiter(0.769_230_769_230_769_3, 1).try_acquire(1));
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L233
#[test]
fn simultaneous_requests() {
    // Fifteen threads racing for a burst of five: exactly five win. Every
    // thread uses the same instant, so the slow refill cannot add a sixth
    // however the threads are scheduled.
    with_timeout(LONG, || {
        const BURST: usize = 5;
        const REQUESTS: usize = 15;
        let lim = limiter(1.0, BURST);
        let now = Instant::now();
        let ok = AtomicUsize::new(0);
        let start = Barrier::new(REQUESTS);
        thread::scope(|s| {
            for _ in 0..REQUESTS {
                s.spawn(|| {
                    start.wait();
                    if lim.try_acquire_at(now, 1) {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(ok.load(Ordering::Relaxed), BURST);
    });
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L266
#[test]
fn long_running_qps() {
    // Five synthetic seconds of requests every 2 ms: the count granted is
    // the burst plus rate × time, to within 0.1 % (rounded down).
    const RATE: f64 = 100.0;
    const BURST: usize = 100;
    let lim = limiter(RATE, BURST);
    let start = Instant::now();
    let end = start + Duration::from_secs(5);
    let mut now = start;
    let mut granted = 0usize;
    while now < end {
        if lim.try_acquire_at(now, 1) {
            granted += 1;
        }
        now += Duration::from_millis(2);
    }
    let ideal = BURST as f64 + RATE * (now - start).as_secs_f64();
    // Go's bounds, truncated to whole requests as Go's int32 conversion does.
    let (most, least) = ((ideal + 1.0) as usize, (0.999 * ideal) as usize);
    assert!(granted <= most, "granted {granted}, ideal {ideal}");
    assert!(granted >= least, "granted {granted}, ideal {ideal}");
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L343
#[test]
fn simple_reserve() {
    // Reservations queue one behind the other.
    let t = times();
    let lim = limiter(10.0, 2);
    reserve_ok(&lim, &t, 0, 2, 0);
    reserve_ok(&lim, &t, 0, 2, 2);
    reserve_ok(&lim, &t, 3, 2, 4);
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L351
#[test]
fn mix() {
    // Reservations and try_acquire share the bucket; debt shows as
    // negative tokens. Go's not-OK reservation for n > burst is an error.
    let t = times();
    let lim = limiter(10.0, 2);
    assert_eq!(
        lim.reserve_at(t[0], 3).unwrap_err(),
        RateError::ExceedsBurst {
            requested: 3,
            burst: 2
        }
    );
    reserve_ok(&lim, &t, 0, 2, 0);
    run(&lim, &t, &[allow(1, 1.0, 2, false)]); // not enough tokens
    reserve_ok(&lim, &t, 1, 2, 2);
    run(&lim, &t, &[allow(1, -1.0, 1, false)]); // in debt
    run(&lim, &t, &[allow(3, 1.0, 1, true)]);
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L362
#[test]
fn cancel_invalid() {
    // A refused reservation gives nothing back. In brigade a refused
    // reservation does not exist, so there is nothing to cancel.
    let t = times();
    let lim = limiter(10.0, 2);
    reserve_ok(&lim, &t, 0, 2, 0);
    assert!(matches!(
        lim.reserve_at(t[0], 3),
        Err(RateError::ExceedsBurst { .. })
    ));
    reserve_ok(&lim, &t, 0, 2, 2); // no extra tokens appeared
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L371
#[test]
fn cancel_last() {
    // Cancelling the latest reservation gives all its tokens back.
    let t = times();
    let lim = limiter(10.0, 2);
    reserve_ok(&lim, &t, 0, 2, 0);
    reserve_kept(&lim, &t, 0, 2, 2).cancel_at(t[1]);
    reserve_ok(&lim, &t, 1, 2, 2);
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L380
#[test]
fn cancel_too_late() {
    // A reservation cancelled after its ready time counts as used.
    let t = times();
    let lim = limiter(10.0, 2);
    reserve_ok(&lim, &t, 0, 2, 0);
    reserve_kept(&lim, &t, 0, 2, 2).cancel_at(t[3]);
    reserve_ok(&lim, &t, 3, 2, 4);
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L389
#[test]
fn cancel0_tokens() {
    // A token that a later reservation counts on stays taken: cancelling
    // the earlier one-token reservation returns nothing.
    let t = times();
    let lim = limiter(10.0, 2);
    reserve_ok(&lim, &t, 0, 2, 0);
    let r = reserve_kept(&lim, &t, 0, 1, 1);
    reserve_ok(&lim, &t, 0, 1, 2);
    r.cancel_at(t[0]);
    reserve_ok(&lim, &t, 0, 1, 3);
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L399
#[test]
fn cancel1_token() {
    // Of two tokens, the one a later reservation counts on stays taken and
    // the other comes back.
    let t = times();
    let lim = limiter(10.0, 2);
    reserve_ok(&lim, &t, 0, 2, 0);
    let r = reserve_kept(&lim, &t, 0, 2, 2);
    reserve_ok(&lim, &t, 0, 1, 3);
    r.cancel_at(t[2]);
    reserve_ok(&lim, &t, 2, 2, 4);
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L409
#[test]
fn cancel_multi() {
    // Cancelling the last reservation first moves the back of the queue,
    // so an earlier one then returns as if the last had never been made.
    let t = times();
    let lim = limiter(10.0, 4);
    reserve_ok(&lim, &t, 0, 4, 0);
    let a = reserve_kept(&lim, &t, 0, 3, 3);
    reserve_ok(&lim, &t, 0, 1, 4);
    let c = reserve_kept(&lim, &t, 0, 1, 5);
    c.cancel_at(t[1]); // one token back
    a.cancel_at(t[1]); // two back: the third is the middle reservation's
    reserve_ok(&lim, &t, 1, 3, 5);
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L421
#[test]
fn reserve_jump_back() {
    // Reservations with a `now` that jumps back; refused requests (over the
    // burst, or beyond the allowed wait) leave the bucket unchanged.
    let t = times();
    let lim = limiter(10.0, 2);
    reserve_ok(&lim, &t, 1, 2, 1); // start at t1
    reserve_ok(&lim, &t, 0, 1, 1); // back to t0: no time passed
    reserve_ok(&lim, &t, 2, 2, 3);
    assert!(matches!(
        lim.reserve_at(t[0], 3),
        Err(RateError::ExceedsBurst { .. })
    ));
    reserve_ok(&lim, &t, 2, 1, 4);
    assert!(matches!(
        lim.reserve_within_at(t[0], 2, D),
        Err(RateError::WouldExceedDeadline { requested: 2, .. })
    ));
    reserve_ok(&lim, &t, 2, 1, 5);
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L435
#[test]
fn reserve_jump_back_cancel() {
    // A cancel with a `now` before the reservation was made still returns
    // what later reservations do not count on.
    let t = times();
    let lim = limiter(10.0, 2);
    reserve_ok(&lim, &t, 1, 2, 1); // start at t1
    let r = reserve_kept(&lim, &t, 1, 2, 3);
    reserve_ok(&lim, &t, 1, 1, 4);
    r.cancel_at(t[0]); // one token back
    reserve_ok(&lim, &t, 1, 2, 4);
}

// TestReserveSetLimit (rate_test.go#L445), TestReserveSetBurst (#L454) and
// TestReserveSetLimitCancel (#L463) are not ported: they exercise
// `SetLimitAt` and `SetBurstAt`, and a brigade limiter's rate and burst are
// fixed at construction.

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L473
#[test]
fn reserve_max() {
    // A bounded reservation is granted within its bound and refused past it.
    let t = times();
    let lim = limiter(10.0, 2);
    let within = |at: usize, n| lim.reserve_within_at(t[at], n, D);
    assert_eq!(within(0, 2).map(|r| r.ready_at()), Ok(t[0]));
    assert_eq!(within(0, 1).map(|r| r.ready_at()), Ok(t[1])); // the near future
    assert!(matches!(
        within(0, 1),
        Err(RateError::WouldExceedDeadline { .. }) // too far ahead
    ));
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L538
#[test]
fn wait_simple() {
    // A cancelled context and an oversized request fail at once; a wait
    // with enough tokens returns at once; a short one sleeps until the
    // refill pays for it.
    let t = times();
    let arithmetic = limiter(10.0, 3);
    reserve_ok(&arithmetic, &t, 0, 2, 0); // act now
    reserve_ok(&arithmetic, &t, 0, 3, 2); // act two steps later

    with_timeout(LONG, || {
        let lim = limiter(10.0, 3);
        let cancelled = Context::new();
        cancelled.cancel();
        assert_eq!(
            lim.wait(&cancelled, 1),
            Err(RateError::Cancelled(Cancelled::Canceled))
        );
        let background = Context::background();
        assert!(matches!(
            lim.wait(&background, 4),
            Err(RateError::ExceedsBurst {
                requested: 4,
                burst: 3
            })
        ));
        assert_eq!(lim.available(), 3.0, "failed waits took nothing");

        let before = Instant::now();
        lim.wait(&background, 2).expect("act now");
        lim.wait(&background, 3).expect("act later");
        // The two missing tokens refill 200 ms after the first wait took
        // its tokens, which was after `before` (less a millisecond for
        // nanosecond rounding of the ready time).
        assert!(
            before.elapsed() >= 2 * D - Duration::from_millis(1),
            "returned after {:?}",
            before.elapsed()
        );
    });
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L553
#[test]
fn wait_cancel() {
    // A wait cancelled from another thread returns at once, and its tokens
    // go back to the bucket.
    let t = times();
    let arithmetic = limiter(10.0, 3);
    reserve_ok(&arithmetic, &t, 0, 2, 0);
    reserve_kept(&arithmetic, &t, 0, 3, 2).cancel_at(t[1]);
    assert_eq!(arithmetic.available_at(t[1]), 2.0, "all three tokens back");
    reserve_ok(&arithmetic, &t, 1, 2, 1); // act now after the cancel

    // In real time, scaled ×100 (one token per 10 s) so the cancel lands
    // well inside the 20 s wait, however slow the machine.
    with_timeout(LONG, || {
        let lim = limiter(0.1, 3);
        let ctx = Context::new();
        lim.wait(&ctx, 2).expect("act now");
        let canceller = {
            let (lim, ctx) = (lim.clone(), ctx.clone());
            // The wait's reservation shows as debt; then cancel it.
            thread::spawn(move || {
                assert!(wait_until(LONG, || lim.available() < 0.0));
                ctx.cancel();
            })
        };
        let start = Instant::now();
        assert_eq!(
            lim.wait(&ctx, 3),
            Err(RateError::Cancelled(Cancelled::Canceled))
        );
        assert!(start.elapsed() < Duration::from_secs(10), "not cut short");
        canceller.join().expect("the canceller ran");
        let left = lim.available();
        assert!(
            (1.0..1.5).contains(&left),
            "tokens after the cancel: {left}"
        );
    });
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L571
#[test]
fn wait_timeout() {
    // A wait that would end past the context's deadline fails at once,
    // without sleeping and without taking tokens.
    let t = times();
    let arithmetic = limiter(10.0, 3);
    reserve_ok(&arithmetic, &t, 0, 2, 0);
    assert!(matches!(
        arithmetic.reserve_within_at(t[0], 3, D),
        Err(RateError::WouldExceedDeadline { .. })
    ));

    // In real time, scaled ×100: a 10 s deadline against a 20 s wait.
    with_timeout(LONG, || {
        let lim = limiter(0.1, 3);
        let ctx = Context::new().with_timeout(100 * D);
        lim.wait(&ctx, 2).expect("act now");
        let start = Instant::now();
        assert!(matches!(
            lim.wait(&ctx, 3),
            Err(RateError::WouldExceedDeadline { requested: 3, .. })
        ));
        assert!(start.elapsed() < Duration::from_secs(5), "it slept");
        let left = lim.available();
        assert!(
            (1.0..1.5).contains(&left),
            "tokens after the refusal: {left}"
        );
    });
}

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L582
#[test]
fn wait_inf() {
    // An unlimited limiter grants any request at once. (Go spells it
    // `NewLimiter(Inf, 0)`: the burst is ignored.)
    with_timeout(LONG, || {
        let lim = RateLimiter::unlimited();
        assert_eq!(lim.wait(&Context::background(), 3), Ok(()));
    });
}

// BenchmarkAllowN and BenchmarkWaitNNoDelay (rate_test.go#L588, #L600) are
// benchmarks, not tests; brigade's limiter benchmarks belong in benches/.

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L612
#[test]
fn zero_limit() {
    // Go accepts a zero rate (the initial token, then nothing); brigade
    // rejects it with a message that says what to use instead.
    let err = RateLimiter::new(0.0, 1).unwrap_err();
    assert_eq!(err, RateError::InvalidRate(0.0));
    assert_eq!(
        err.to_string(),
        "rate must be a finite number of tokens per second greater than 0, got 0; \
         use RateLimiter::unlimited() for no limit"
    );
}

// TestSetAfterZeroLimit (rate_test.go#L622) is not ported: it needs a zero
// rate (rejected, see `zero_limit`) and `SetLimit` (rate is fixed).

// https://github.com/golang/time/blob/2b4e43900c03fd6b77109b7b2b6d77583f48bc1c/rate/rate_test.go#L645
#[test]
fn tiny_limit() {
    // A tiny rate grants the initial token and no second one (Go issue
    // 71154: the wait for it must not overflow).
    let lim = limiter(1e-10, 1);
    assert!(lim.try_acquire(1));
    assert!(!lim.try_acquire(1));
    let r = lim
        .reserve(1)
        .expect("a wait of 317 years is representable");
    assert!(r.delay() > Duration::from_secs(1_000_000_000));
}
