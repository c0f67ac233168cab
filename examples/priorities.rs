//! A latency-sensitive lane beside a capped batch lane, on one pool.
//!
//! A batch job (a backfill of 400 chunks, 5 ms each) runs in the
//! `Background` lane, capped at 2 of the 4 workers, while requests arrive
//! every 2 ms in the `High` lane (1 ms each). The requests' queue wait stays
//! low because they go first and two workers are always free of batch
//! work; the batch still progresses on its two workers, and the starvation
//! bound guarantees it would even under a flood of requests. The same
//! traffic through a pool without lanes shows what the requests would
//! wait otherwise.
//!
//! ```text
//! cargo run --release --example priorities
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade::{Lane, ThreadPool};
use parking_lot::Mutex;

const WORKERS: usize = 4;
const BATCH_CHUNKS: usize = 400;
const REQUESTS: usize = 300;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let laned = ThreadPool::builder()
        .workers(WORKERS)
        .lane_limit(Lane::Background, 2)
        .starvation_bound(Duration::from_millis(200))
        .thread_name("laned")
        .build()?;
    let (waits, batch_done) = run(&laned, true)?;
    report("with lanes   ", &waits, batch_done);
    let load = laned.stats().lane(Lane::Background);
    println!(
        "  (background lane now: {} queued, {} running)",
        load.queued, load.running
    );
    laned.join();

    let plain = ThreadPool::builder()
        .workers(WORKERS)
        .thread_name("plain")
        .build()?;
    let (waits, batch_done) = run(&plain, false)?;
    report("without lanes", &waits, batch_done);
    plain.join();
    Ok(())
}

/// Queues the batch, then sends the requests at their pace; returns each
/// request's queue wait and how many batch chunks were done when the last
/// request was served.
fn run(
    pool: &ThreadPool,
    lanes: bool,
) -> Result<(Vec<Duration>, usize), Box<dyn std::error::Error>> {
    let chunks_done = Arc::new(Mutex::new(0usize));
    for _ in 0..BATCH_CHUNKS {
        let chunks_done = Arc::clone(&chunks_done);
        let chunk = move || {
            std::thread::sleep(Duration::from_millis(5));
            *chunks_done.lock() += 1;
        };
        if lanes {
            pool.lane(Lane::Background).execute(chunk)
        } else {
            pool.execute(chunk)
        }
        .map_err(|e| e.kind())?;
    }
    let mut handles = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let queued = Instant::now();
        let request = move |_: &brigade::Context| {
            let waited = queued.elapsed();
            std::thread::sleep(Duration::from_millis(1));
            waited
        };
        let handle = if lanes {
            pool.lane(Lane::High).submit(request)
        } else {
            pool.submit(request)
        };
        handles.push(handle.map_err(|e| e.kind())?);
        std::thread::sleep(Duration::from_millis(2));
    }
    let waits = handles
        .into_iter()
        .map(brigade::JobHandle::join)
        .collect::<Result<Vec<_>, _>>()?;
    let done = *chunks_done.lock();
    Ok((waits, done))
}

fn report(label: &str, waits: &[Duration], batch_done: usize) {
    let mut sorted = waits.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize];
    println!(
        "{label}: request queue wait p50 {:>9.1?}  p99 {:>9.1?}  max {:>9.1?}; batch {batch_done}/{BATCH_CHUNKS} chunks done meanwhile",
        at(0.5),
        at(0.99),
        at(1.0),
    );
}
