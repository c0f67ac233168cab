//! A pool that holds no thread while it has nothing to do.
//!
//! Bursts of work with quiet spells between them, as a batch program that
//! wakes up now and then sees: an adaptive pool with `min: 0` and a
//! keep-alive grows for each burst, lets its workers leave once the burst
//! is over, and starts a worker at once for the first job of the next.
//!
//! ```text
//! cargo run --release --example scale_to_zero
//! ```

use std::time::{Duration, Instant};

use brigade::{Sizing, ThreadPool};

const KEEP_ALIVE: Duration = Duration::from_millis(100);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ThreadPool::builder()
        .sizing(Sizing::Adaptive { min: 0, max: 16 })
        .keep_alive(KEEP_ALIVE)
        .thread_name("burst")
        .build()?;
    for burst in 1..=3 {
        wait_for_no_workers(&pool);
        println!("quiet: {} worker threads", pool.stats().workers);

        let submitted = Instant::now();
        let first = pool.submit(move |_ctx| submitted.elapsed())?;
        println!(
            "burst {burst}: first job started {:.0?} after its submit",
            first.join()?
        );
        // Four hundred requests to a slow backend (a 2 ms wait each).
        let handles = (0..400)
            .map(|_| pool.submit(|_ctx| std::thread::sleep(Duration::from_millis(2))))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.kind())?;
        let waited: Vec<()> = handles
            .into_iter()
            .map(brigade::JobHandle::join)
            .collect::<Result<_, _>>()?;
        println!(
            "burst {burst}: {} requests done, pool at {} workers",
            waited.len(),
            pool.stats().workers
        );
    }
    wait_for_no_workers(&pool);
    let stats = pool.stats();
    println!(
        "done: {} worker threads now, {} left after the keep-alive in all",
        stats.workers, stats.expired
    );
    pool.join();
    Ok(())
}

/// Waits (bounded) until every worker has left after the keep-alive.
fn wait_for_no_workers(pool: &ThreadPool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.stats().workers != 0 && Instant::now() < deadline {
        std::thread::sleep(KEEP_ALIVE / 4);
    }
}
