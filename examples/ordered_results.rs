//! Ordered results, the seed's two strategies: a `WorkerPool` that
//! delivers results in submission order through a bounded reorder window,
//! and `ThreadPool::map`, which yields in input order with a bounded number
//! of items in flight.
//!
//! Job latencies are deliberately uneven, so results finish out of order
//! and are put back in order before they reach you.
//!
//! ```text
//! cargo run --release --example ordered_results
//! ```

use std::time::Duration;

use brigade::{ThreadPool, WorkerPool};

/// A job whose latency depends on its input: later jobs often finish first.
fn slow_square(n: u64) -> u64 {
    std::thread::sleep(Duration::from_millis((n * 37) % 23));
    n * n
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Strategy 2 from the seed: a reorder buffer, here with a window of 8.
    let pool = WorkerPool::builder()
        .workers(4)
        .results_capacity(4)
        .ordered_window(8)
        .build(|_ctx, n: u64| slow_square(n))?;
    let results = pool.results().clone();
    let consumer = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for output in results {
            println!("job {:>2} -> {:?}", output.index, output.result);
            seen.push(output.index);
        }
        seen
    });
    for n in 0..20 {
        pool.submit(n)?;
    }
    let leftovers = pool.join(); // close, wait for the workers
    let order = consumer.join().map_err(|_| "consumer panicked")?;
    assert_eq!(
        order,
        (0..20).collect::<Vec<_>>(),
        "delivered in submission order"
    );
    assert!(leftovers.is_empty());

    // ThreadPool::map: input order, at most 8 items in flight.
    let pool = ThreadPool::builder().workers(4).build()?;
    let squares: Vec<u64> = pool
        .map(0..20u64, slow_square)
        .chunk_size(1)
        .window(8)
        .collect::<Result<_, _>>()?;
    println!("map: {squares:?}");
    assert_eq!(squares, (0..20u64).map(|n| n * n).collect::<Vec<_>>());
    Ok(())
}
