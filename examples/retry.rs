//! Retries with backoff: a flaky call that fails transiently a few times
//! before it succeeds, a permanent error the retry-if predicate refuses to
//! retry, and a run stopped by its deadline. Prints each attempt and the
//! pause before it. Last, the same flaky call on a one-worker pool with
//! `submit_retrying`: the pauses wait on the pool's timer, and the worker
//! serves other jobs meanwhile.
//!
//! ```text
//! cargo run --release --example retry
//! ```

use std::fmt;
use std::time::{Duration, Instant};

use brigade::{Backoff, Context, Retry, RetryError, ThreadPool};

/// What the simulated service answers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ApiError {
    /// 503: try again later.
    Unavailable,
    /// 404: no retry will help.
    NotFound,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable => f.write_str("503 service unavailable"),
            Self::NotFound => f.write_str("404 not found"),
        }
    }
}

/// Prints one attempt: its number, when it started, and the pause since
/// the previous one.
struct Log {
    start: Instant,
    previous: Option<Instant>,
}

impl Log {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            previous: None,
        }
    }

    fn attempt(&mut self, attempt: u32, outcome: &str) {
        let now = Instant::now();
        let pause = self.previous.map_or(Duration::ZERO, |p| now - p);
        println!(
            "  attempt {attempt} at {:>7.1?} (after a pause of {pause:>7.1?}): {outcome}",
            now - self.start
        );
        self.previous = Some(now);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let backoff = Backoff::new(Duration::from_millis(50), Duration::from_millis(800));
    println!("backoff ceilings (jitter draws each pause from 0 up to these):");
    for attempt in 1..=6 {
        println!("  after attempt {attempt}: {:?}", backoff.ceiling(attempt));
    }

    let retry = Retry::builder()
        .max_attempts(6)
        .backoff(backoff)
        .retry_if(|err: &ApiError| *err == ApiError::Unavailable)
        .build()?;
    let ctx = Context::new().with_timeout(Duration::from_secs(10));

    println!("\na flaky call that succeeds on its fourth attempt:");
    let mut log = Log::new();
    let body = retry.run(&ctx, |_ctx, attempt| {
        let result = if attempt < 4 {
            Err(ApiError::Unavailable)
        } else {
            Ok("200 ok")
        };
        log.attempt(attempt, &format!("{result:?}"));
        result
    })?;
    println!("  => {body}");

    println!("\na permanent error, not retried:");
    let mut log = Log::new();
    let missing: Result<&str, _> = retry.run(&ctx, |_ctx, attempt| {
        let result = if attempt < 2 {
            Err(ApiError::Unavailable)
        } else {
            Err(ApiError::NotFound)
        };
        log.attempt(attempt, &format!("{result:?}"));
        result
    });
    if let Err(err) = &missing {
        println!("  => {err}");
    }
    assert!(matches!(missing, Err(RetryError::NotRetryable { .. })));

    println!("\na service that stays down, with a 300 ms deadline:");
    let hurried = Context::new().with_timeout(Duration::from_millis(300));
    let mut log = Log::new();
    let down: Result<(), _> = retry.run(&hurried, |_ctx, attempt| {
        log.attempt(attempt, "Err(Unavailable)");
        Err(ApiError::Unavailable)
    });
    if let Err(err) = &down {
        println!("  => {err}");
        println!("     ({} attempts ran)", err.attempts());
    }

    println!("\nthe flaky call on a one-worker pool, pausing on the pool's timer:");
    let pool = ThreadPool::builder().workers(1).build()?;
    let started = Instant::now();
    let flaky = pool
        .submit_retrying(&retry, move |_ctx, attempt| {
            println!(
                "  attempt {attempt} at {:>4} ms",
                started.elapsed().as_millis()
            );
            if attempt < 4 {
                Err(ApiError::Unavailable)
            } else {
                Ok("200 ok")
            }
        })
        .map_err(|e| e.kind())?;
    let mut served = 0;
    while !flaky.is_finished() {
        // The worker is free between attempts: other requests get served.
        pool.submit(|_ctx| std::thread::sleep(Duration::from_millis(10)))
            .map_err(|e| e.kind())?
            .join()?;
        served += 1;
    }
    println!(
        "  => {} ({served} other jobs ran on the worker meanwhile)",
        flaky.join()??
    );
    pool.join();
    Ok(())
}
