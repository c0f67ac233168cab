//! A rate-limited pool, the Go guide's `rate.NewLimiter` pattern: eight
//! workers share one token bucket and each waits for a token before calling
//! a (simulated) rate-limited API. Prints when the calls started and the
//! rate achieved against the one configured.
//!
//! ```text
//! cargo run --release --example rate_limited
//! ```

use std::time::{Duration, Instant};

use brigade::{Context, RateError, RateLimiter, ThreadPool};

/// Calls per second the API allows, and how many may arrive at once.
const RATE: f64 = 40.0;
const BURST: usize = 4;
const CALLS: u32 = 80;

/// The rate-limited API: 25 ms per call, cut short by cancellation.
fn call_api(ctx: &Context, id: u32) -> Result<u32, RateError> {
    ctx.sleep(Duration::from_millis(25))
        .map_err(RateError::Cancelled)?;
    Ok(id * 2)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let limiter = RateLimiter::new(RATE, BURST)?;
    // The whole batch must finish within 30 seconds.
    let batch = Context::new().with_timeout(Duration::from_secs(30));
    let pool = ThreadPool::builder()
        .workers(8)
        .thread_name("api")
        .context(&batch)
        .build()?;

    let started = Instant::now();
    let handles: Vec<_> = (0..CALLS)
        .map(|id| {
            let limiter = limiter.clone();
            pool.submit(move |ctx: &Context| -> Result<(Duration, u32), RateError> {
                limiter.wait(ctx, 1)?; // the token: permission to call
                let at = started.elapsed();
                call_api(ctx, id).map(|answer| (at, answer))
            })
            .map_err(|e| e.kind())
        })
        .collect::<Result<_, _>>()?;

    let mut starts = Vec::new();
    for handle in handles {
        let (at, _answer) = handle.join()??;
        starts.push(at);
    }
    starts.sort();
    let elapsed = started.elapsed();

    println!("calls started per 250 ms window (configured: {RATE}/s, burst {BURST}):");
    let windows = starts.last().map_or(0, |last| last.as_millis() / 250 + 1);
    for w in 0..windows {
        let in_window = starts.iter().filter(|at| at.as_millis() / 250 == w).count();
        println!(
            "  {:>5}–{:<5} ms {:>3} {}",
            w * 250,
            (w + 1) * 250,
            in_window,
            "#".repeat(in_window)
        );
    }

    // The burst goes out at once; after it, calls start at the rate.
    let span = starts[starts.len() - 1] - starts[BURST - 1];
    let steady = (CALLS as usize - BURST) as f64 / span.as_secs_f64();
    println!("configured rate: {RATE:.1} calls/s (burst {BURST})");
    println!("achieved rate:   {steady:.1} calls/s after the burst");
    println!("batch took:      {elapsed:.2?} for {CALLS} calls on 8 workers");

    // A wait that cannot finish before its deadline fails at once.
    let hurried = Context::new().with_timeout(Duration::from_millis(5));
    while limiter.try_acquire(1) {} // empty the bucket
    match limiter.wait(&hurried, 1) {
        Err(err) => println!("with a 5 ms deadline: {err}"),
        Ok(()) => println!("with a 5 ms deadline: got a token"),
    }

    pool.join();
    Ok(())
}
