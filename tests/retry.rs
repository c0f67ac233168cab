//! `Retry` and `Backoff`: attempts counted, the retry-if predicate,
//! cancellation during a backoff, the deadline rule, jitter bounds, and the
//! settings errors.

mod common;

use std::cell::Cell;
use std::thread;
use std::time::{Duration, Instant};

use brigade::{Backoff, Cancelled, Context, Retry, RetryError, RetrySettingsError};

use common::{LONG, with_timeout};

const MS: Duration = Duration::from_millis(1);

/// A retry policy with pauses short enough to keep the tests quick.
fn quick(max_attempts: u32) -> Retry<String> {
    Retry::builder()
        .max_attempts(max_attempts)
        .backoff(Backoff::new(MS, MS * 4))
        .build()
        .expect("valid settings")
}

#[test]
fn success_after_transient_failures() {
    // The first Ok ends the run with its value; earlier errors are dropped.
    let ctx = Context::new();
    let value = quick(5).run(&ctx, |_ctx, attempt| {
        if attempt < 3 {
            Err(format!("flake {attempt}"))
        } else {
            Ok(attempt)
        }
    });
    assert_eq!(value.map_err(|e| e.to_string()), Ok(3));
}

#[test]
fn attempts_are_counted() {
    // An operation that always fails runs exactly max_attempts times, with
    // attempt numbers 1..=n, and the error reports n and the last error.
    let ctx = Context::new();
    let seen = Cell::new(Vec::new());
    let result: Result<(), _> = quick(4).run(&ctx, |_ctx, attempt| {
        let mut so_far = seen.take();
        so_far.push(attempt);
        seen.set(so_far);
        Err(format!("boom {attempt}"))
    });
    assert_eq!(seen.take(), [1, 2, 3, 4]);
    let err = result.unwrap_err();
    assert_eq!(err.attempts(), 4);
    assert_eq!(err.last_error().map(String::as_str), Some("boom 4"));
    assert_eq!(err.to_string(), "gave up after 4 attempts: boom 4");
    assert!(matches!(err, RetryError::Exhausted { attempts: 4, .. }));
}

#[test]
fn one_attempt_means_no_retry() {
    // max_attempts(1) runs once and never pauses.
    let calls = Cell::new(0);
    let result: Result<(), _> = quick(1).run(&Context::new(), |_ctx, _attempt| {
        calls.set(calls.get() + 1);
        Err("no".to_owned())
    });
    assert_eq!(calls.get(), 1);
    assert_eq!(
        result.unwrap_err().to_string(),
        "gave up after 1 attempt: no"
    );
}

#[test]
fn predicate_stops_retries() {
    // An error the predicate refuses ends the run at once.
    let retry = Retry::builder()
        .max_attempts(10)
        .backoff(Backoff::new(MS, MS * 4))
        .retry_if(|err: &&str| *err == "transient")
        .build()
        .expect("valid settings");
    let calls = Cell::new(0);
    let result: Result<(), _> = retry.run(&Context::new(), |_ctx, attempt| {
        calls.set(calls.get() + 1);
        Err(if attempt < 3 {
            "transient"
        } else {
            "permanent"
        })
    });
    assert_eq!(calls.get(), 3);
    let err = result.unwrap_err();
    assert!(matches!(
        err,
        RetryError::NotRetryable {
            attempts: 3,
            error: "permanent"
        }
    ));
    assert_eq!(
        err.to_string(),
        "stopped after 3 attempts: the error is not retried: permanent"
    );
}

#[test]
fn cancel_during_backoff_returns_promptly() {
    // A cancel from another thread wakes the pause at once; the error keeps
    // the failed attempt's error.
    with_timeout(LONG, || {
        let backoff = Backoff::new(Duration::from_secs(60), Duration::from_secs(60)).jitter(false);
        let retry = Retry::builder()
            .max_attempts(3)
            .backoff(backoff)
            .build()
            .expect("valid settings");
        let ctx = Context::new();
        let (failed_tx, failed_rx) = crossbeam_channel::bounded(1);
        let canceller = {
            let ctx = ctx.clone();
            thread::spawn(move || {
                failed_rx
                    .recv_timeout(LONG)
                    .expect("the first attempt failed");
                ctx.cancel();
            })
        };
        let start = Instant::now();
        let result: Result<(), _> = retry.run(&ctx, |_ctx, attempt| {
            failed_tx.send(()).expect("the canceller listens");
            Err(format!("attempt {attempt} failed"))
        });
        let elapsed = start.elapsed();
        canceller.join().expect("the canceller ran");
        let err = result.unwrap_err();
        assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
        assert!(matches!(
            &err,
            RetryError::Cancelled {
                attempts: 1,
                reason: Cancelled::Canceled,
                last: Some(_)
            }
        ));
        assert_eq!(
            err.to_string(),
            "stopped after 1 attempt: context canceled; last error: attempt 1 failed"
        );
    });
}

#[test]
fn cancelled_before_the_first_attempt() {
    // A context already done runs nothing.
    let ctx = Context::new();
    ctx.cancel();
    let calls = Cell::new(0);
    let result: Result<(), _> = quick(3).run(&ctx, |_ctx, _attempt| {
        calls.set(calls.get() + 1);
        Ok(())
    });
    assert_eq!(calls.get(), 0);
    let err = result.unwrap_err();
    assert!(err.last_error().is_none());
    assert_eq!(
        err.to_string(),
        "stopped after 0 attempts: context canceled"
    );
}

#[test]
fn cancel_inside_an_attempt_stops_the_run() {
    // An attempt that cancels the context (or fails because it was
    // cancelled) is the last one; its error is kept.
    let ctx = Context::new();
    let calls = Cell::new(0);
    let result: Result<(), _> = quick(5).run(&ctx, |ctx, attempt| {
        calls.set(calls.get() + 1);
        ctx.cancel();
        Err(format!("attempt {attempt} saw the cancel"))
    });
    assert_eq!(calls.get(), 1);
    let err = result.unwrap_err();
    assert_eq!(err.attempts(), 1);
    assert_eq!(
        err.into_last_error().as_deref(),
        Some("attempt 1 saw the cancel")
    );
}

#[test]
fn deadline_would_pass_stops_early() {
    // A pause that would end past the deadline is not started: the run
    // stops at once instead of sleeping into the deadline.
    with_timeout(LONG, || {
        let backoff = Backoff::new(Duration::from_secs(60), Duration::from_secs(60)).jitter(false);
        let retry = Retry::builder()
            .max_attempts(5)
            .backoff(backoff)
            .build()
            .expect("valid settings");
        let ctx = Context::new().with_timeout(Duration::from_secs(20));
        let calls = Cell::new(0);
        let start = Instant::now();
        let result: Result<(), _> = retry.run(&ctx, |_ctx, _attempt| {
            calls.set(calls.get() + 1);
            Err("unavailable")
        });
        assert!(start.elapsed() < Duration::from_secs(10), "it slept");
        assert_eq!(calls.get(), 1);
        let err = result.unwrap_err();
        assert!(matches!(
            err,
            RetryError::WouldExceedDeadline { attempts: 1, delay, .. } if delay == Duration::from_secs(60)
        ));
        assert_eq!(
            err.to_string(),
            "stopped after 1 attempt: the next backoff of 60s would end past the context's \
             deadline; last error: unavailable"
        );
    });
}

#[test]
fn op_receives_the_run_context() {
    // The operation gets the context the run was given.
    let ctx = Context::new();
    let same = quick(1).run(&ctx, |inner, _attempt| {
        Ok::<_, String>(inner.same_context(&ctx))
    });
    assert_eq!(same.ok(), Some(true));
}

#[test]
fn jitter_stays_in_bounds() {
    // Every jittered pause lies in [0, ceiling], they vary, and their mean
    // is near half the ceiling; without jitter the pause is exact.
    let backoff = Backoff::new(MS * 100, Duration::from_secs(2));
    for attempt in 1..=8 {
        let ceiling = backoff.ceiling(attempt);
        let samples: Vec<Duration> = (0..2_000).map(|_| backoff.delay(attempt)).collect();
        assert!(samples.iter().all(|d| *d <= ceiling), "attempt {attempt}");
        let mean = samples.iter().sum::<Duration>() / 2_000;
        assert!(
            mean > ceiling * 4 / 10 && mean < ceiling * 6 / 10,
            "attempt {attempt}: mean {mean:?} of ceiling {ceiling:?}"
        );
    }
    let exact = backoff.jitter(false);
    let pauses: Vec<Duration> = (1..=6).map(|k| exact.delay(k)).collect();
    let want = [100, 200, 400, 800, 1_600, 2_000].map(|ms| MS * ms);
    assert_eq!(pauses, want);
}

#[test]
fn delay_for_is_deterministic() {
    // The pure form: the same attempt and unit give the same pause.
    let backoff = Backoff::new(MS * 10, Duration::from_secs(1)).multiplier(3.0);
    let table = [
        (1, 0.0, Duration::ZERO),
        (1, 0.5, MS * 5),
        (2, 0.5, MS * 15),
        (3, 0.25, Duration::from_micros(22_500)),
        (5, 0.75, Duration::from_micros(607_500)),
        (9, 0.5, MS * 500), // capped at 1 s, then halved
    ];
    for (attempt, unit, want) in table {
        assert_eq!(
            backoff.delay_for(attempt, unit),
            want,
            "delay_for({attempt}, {unit})"
        );
    }
}

#[test]
fn invalid_settings_give_their_messages() {
    // Each bad setting is rejected by build() with a message that says what
    // to fix.
    let build = |attempts, backoff| {
        Retry::<()>::builder()
            .max_attempts(attempts)
            .backoff(backoff)
            .build()
            .map(|_| ())
    };
    let ok = Backoff::new(MS, MS * 10);
    let cases = [
        (
            build(0, ok),
            RetrySettingsError::ZeroAttempts,
            "max attempts must be at least 1, got 0",
        ),
        (
            build(3, Backoff::new(Duration::ZERO, MS)),
            RetrySettingsError::ZeroInitialDelay,
            "initial backoff delay must be greater than zero",
        ),
        (
            build(3, Backoff::new(MS * 10, MS)),
            RetrySettingsError::InvertedDelays {
                initial: MS * 10,
                max: MS,
            },
            "max backoff delay must be at least the initial delay, got max 1ms < initial 10ms",
        ),
        (
            build(3, ok.multiplier(0.5)),
            RetrySettingsError::InvalidMultiplier(0.5),
            "backoff multiplier must be a finite number at least 1, got 0.5",
        ),
        (
            build(3, ok.multiplier(f64::INFINITY)),
            RetrySettingsError::InvalidMultiplier(f64::INFINITY),
            "backoff multiplier must be a finite number at least 1, got inf",
        ),
    ];
    for (got, want, message) in cases {
        assert_eq!(got, Err(want.clone()));
        assert_eq!(want.to_string(), message);
    }
    let nan = build(3, ok.multiplier(f64::NAN)).unwrap_err();
    assert_eq!(
        nan.to_string(),
        "backoff multiplier must be a finite number at least 1, got NaN"
    );
    assert_eq!(ok.validate(), Ok(()));
}

#[test]
fn debug_does_not_need_a_debug_error() {
    // RetryError's Debug prints the error as `..`, so E need not be Debug.
    struct Opaque;
    impl std::fmt::Display for Opaque {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("opaque")
        }
    }
    let result: Result<(), _> = quick_opaque().run(&Context::new(), |_ctx, _attempt| Err(Opaque));
    let err = result.unwrap_err();
    assert_eq!(format!("{err:?}"), "Exhausted { attempts: 2, .. }");
    assert_eq!(err.to_string(), "gave up after 2 attempts: opaque");
    assert!(err.into_last_error().is_some());

    fn quick_opaque() -> Retry<Opaque> {
        Retry::builder()
            .max_attempts(2)
            .backoff(Backoff::new(MS, MS))
            .build()
            .expect("valid settings")
    }
}

#[test]
fn retry_is_shareable() {
    // One policy can be cloned into every worker of a pool.
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync_clone::<Retry<String>>();
    assert_send_sync_clone::<Backoff>();
}

#[test]
fn submit_retrying_pauses_on_the_timer_not_on_a_worker() {
    use brigade::{JobError, ThreadPool};
    with_timeout(LONG, || {
        // One worker: while the retrying job pauses, another job runs on it.
        let pool = ThreadPool::builder().workers(1).build().unwrap();
        let retry = Retry::builder()
            .max_attempts(4)
            .backoff(Backoff::new(Duration::from_millis(200), Duration::from_secs(1)).jitter(false))
            .build()
            .unwrap();
        let (failed_tx, failed) = crossbeam_channel::bounded(4);
        let upload = pool
            .submit_retrying(&retry, move |_ctx, attempt| {
                let _ = failed_tx.send(attempt);
                if attempt < 2 {
                    Err("timeout")
                } else {
                    Ok(attempt)
                }
            })
            .unwrap();
        assert_eq!(failed.recv_timeout(Duration::from_secs(10)), Ok(1));
        // The first pause (200 ms) holds no worker: this job runs meanwhile.
        let other = pool.submit(|_ctx| "ran during the pause").unwrap();
        assert_eq!(other.join(), Ok("ran during the pause"));
        assert!(!upload.is_finished(), "still pausing");
        assert!(matches!(upload.join(), Ok(Ok(2))));

        // Exhausted, not retryable, cancelled through the handle, and the pool
        // stopping during a pause.
        let exhausted = pool
            .submit_retrying(&retry, |_ctx, _| Err::<(), _>("down"))
            .unwrap();
        let fast = Retry::builder()
            .max_attempts(3)
            .backoff(Backoff::new(
                Duration::from_millis(1),
                Duration::from_millis(2),
            ))
            .retry_if(|e: &&str| *e != "404")
            .build()
            .unwrap();
        let gone = pool
            .submit_retrying(&fast, |_ctx, _| Err::<(), _>("404"))
            .unwrap();
        assert!(matches!(
            gone.join(),
            Ok(Err(RetryError::NotRetryable {
                attempts: 1,
                error: "404"
            }))
        ));
        let slow = Retry::builder()
            .max_attempts(3)
            .backoff(Backoff::new(
                Duration::from_secs(3600),
                Duration::from_secs(3600),
            ))
            .build()
            .unwrap();
        let (tried_tx, tried) = crossbeam_channel::bounded(1);
        let cancelled = pool
            .submit_retrying(&slow, move |_ctx, _| {
                let _ = tried_tx.send(());
                Err::<(), _>("later")
            })
            .unwrap();
        tried.recv_timeout(Duration::from_secs(10)).unwrap();
        cancelled.cancel();
        assert!(matches!(cancelled.join(), Err(JobError::Cancelled(_))));
        let (tried_tx, tried) = crossbeam_channel::bounded(1);
        let pending = pool
            .submit_retrying(&slow, move |_ctx, _| {
                let _ = tried_tx.send(());
                Err::<(), _>("later")
            })
            .unwrap();
        tried.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(matches!(
            exhausted.join(),
            Ok(Err(RetryError::Exhausted {
                attempts: 4,
                error: "down"
            }))
        ));
        // Wait until the attempt has ended and the pause is on the timer.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pool.stats().completed + pool.stats().failed < pool.stats().submitted {
            assert!(
                std::time::Instant::now() < deadline,
                "the pending job's first attempt never ended: {:?}",
                pool.stats()
            );
            std::thread::yield_now();
        }
        let report = pool.shutdown_now();
        assert_eq!(report.delayed_never_ran, 1, "{report:?}");
        assert!(matches!(
            pending.join(),
            Ok(Err(RetryError::Cancelled {
                attempts: 1,
                last: Some("later"),
                ..
            }))
        ));
    });
}
