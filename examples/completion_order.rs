//! Completion order: handle each job as it finishes, and give up on the
//! rest once you have what you need.
//!
//! Two uses of [`Completions`]:
//!
//! 1. A batch of lookups of uneven latency, printed as they finish (not in
//!    the order they were submitted), stopping early at the first lookup
//!    that finds what it looks for: `cancel_rest` cancels the others, and
//!    the set still yields each of them once, as cancelled.
//! 2. A hedged request: the same query to three replicas, the first answer
//!    wins, and dropping the set cancels the two slower ones.
//!
//! ```text
//! cargo run --example completion_order
//! ```

use std::time::{Duration, Instant};

use brigade::{Cancelled, Completions, Context, ThreadPool};

/// A lookup that takes `latency` and notices cancellation while it waits.
fn lookup(ctx: &Context, shard: usize, latency: Duration) -> Result<Option<String>, Cancelled> {
    ctx.sleep(latency)?;
    // Shard 5 holds the record.
    Ok((shard == 5).then(|| format!("record found in shard {shard}")))
}

fn batch(pool: &ThreadPool) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut lookups = Completions::new();
    for shard in 0..8 {
        // Uneven latencies: 50 ms to 400 ms, in no particular order.
        let latency = Duration::from_millis(50 + (shard as u64 * 170) % 350);
        let index = lookups.push(pool.submit(move |ctx| lookup(ctx, shard, latency))?);
        assert_eq!(index, shard, "indices follow insertion order");
    }
    while let Some((shard, result)) = lookups.next() {
        let at = started.elapsed().as_millis();
        match result {
            Ok(Ok(Some(record))) => {
                println!("{at:>4} ms  shard {shard}: {record}; cancelling the rest");
                lookups.cancel_rest();
            }
            Ok(Ok(None)) => println!("{at:>4} ms  shard {shard}: not here"),
            // A lookup cancelled while it slept returns `Err(Cancelled)`; the
            // pool reports one cancelled before it returned as a JobError.
            Ok(Err(cancelled)) => println!("{at:>4} ms  shard {shard}: {cancelled}"),
            Err(job_error) => println!("{at:>4} ms  shard {shard}: {job_error}"),
        }
    }
    Ok(())
}

fn hedged(pool: &ThreadPool) -> Result<(), Box<dyn std::error::Error>> {
    let replicas = [("eu", 120), ("us", 40), ("ap", 300)];
    let mut requests: Completions<Result<String, Cancelled>> = replicas
        .iter()
        .map(|&(name, ms)| {
            pool.submit(move |ctx| {
                ctx.sleep(Duration::from_millis(ms))?;
                Ok(format!("reply from {name} after {ms} ms"))
            })
        })
        .collect::<Result<_, _>>()
        .map_err(|e| e.kind())?;
    let (index, reply) = requests
        .next_timeout(Duration::from_secs(5))
        .ok_or("no replica answered within 5 s")?;
    println!("hedged: {} won: {}", replicas[index].0, reply??);
    // Dropping the set cancels the two slower requests; `detach` would
    // let them run on.
    drop(requests);
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ThreadPool::builder().workers(8).build()?;
    batch(&pool)?;
    hedged(&pool)?;
    pool.join();
    Ok(())
}
