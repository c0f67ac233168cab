//! Quick start: count primes in ranges on a pool with a deadline, cancel
//! one job, and print the results and the pool's stats.
//!
//! ```text
//! cargo run --release --example quickstart
//! ```

use std::time::{Duration, Instant};

use brigade::{Cancelled, Context, JobError, ThreadPool, sizing};

/// Counts the primes in `range`, checking the context every 4,096 numbers so
/// a cancellation or deadline stops the job promptly.
fn count_primes(ctx: &Context, range: std::ops::Range<u64>) -> Result<u64, Cancelled> {
    let mut count = 0;
    for (i, n) in range.enumerate() {
        if i % 4096 == 0 {
            ctx.check()?;
        }
        if is_prime(n) {
            count += 1;
        }
    }
    Ok(count)
}

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 1;
    }
    true
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The whole batch must finish within 30 seconds; each job within 10.
    let batch = Context::new().with_timeout(Duration::from_secs(30));
    let pool = ThreadPool::builder()
        .workers(sizing::cpu_bound())
        .thread_name("primes")
        .context(&batch)
        .job_timeout(Duration::from_secs(10))
        .build()?;

    const CHUNK: u64 = 250_000;
    let started = Instant::now();
    let handles: Vec<_> = (0..12u64)
        .map(|i| {
            let range = i * CHUNK..(i + 1) * CHUNK;
            let job = pool.submit(move |ctx| count_primes(ctx, range.clone()));
            job.map(|handle| (i, handle)).map_err(|e| e.kind())
        })
        .collect::<Result<_, _>>()?;

    // Changed our mind about the last range: it never runs if still queued,
    // or sees its context cancelled if it already started.
    handles[11].1.cancel();

    println!("{:<24} {:>10}", "range", "primes");
    let mut total = 0;
    for (i, handle) in handles {
        let label = format!("{}..{}", i * CHUNK, (i + 1) * CHUNK);
        match handle.join() {
            Ok(Ok(count)) => {
                total += count;
                println!("{label:<24} {count:>10}");
            }
            Ok(Err(reason)) | Err(JobError::Cancelled(reason)) => {
                println!("{label:<24} {:>10}", format!("({reason})"))
            }
            Err(err) => println!("{label:<24} {:>10}", format!("({err})")),
        }
    }
    println!("{:<24} {total:>10}", "total");
    println!(
        "elapsed: {:.2?} on {} workers",
        started.elapsed(),
        sizing::cpu_bound()
    );
    println!("stats:   {}", pool.stats());
    pool.join();
    Ok(())
}
