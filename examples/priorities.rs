//! A latency-sensitive lane beside a capped batch lane, on one pool.
//!
//! A batch job (a backfill of 400 chunks, 5 ms each) runs in the
//! `Background` lane, capped at 2 of the 4 workers, while requests arrive
//! every 2 ms in the `High` lane (1 ms each). The requests' queue wait stays
//! low because they go first and two workers are always free of batch
//! work; the batch still progresses on its two workers, and the starvation
//! bound guarantees it would even under a flood of requests. The same
//! traffic through a pool without lanes shows what the requests would
//! wait otherwise. A checker then proves both: the requests' wait stayed
//! low, and the batch lane progressed meanwhile.
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
    let laned_p99 = report("with lanes   ", &waits, batch_done);
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
    let (waits, plain_batch_done) = run(&plain, false)?;
    let plain_p99 = report("without lanes", &waits, plain_batch_done);
    plain.join();
    check(laned_p99, plain_p99, batch_done)
}

/// Proves the lanes did their job: a request waited at most a few batch
/// chunks' time (two workers are never given to the batch), a tenth of
/// what it waits behind the batch without lanes, and the batch still
/// progressed while the requests ran: two workers do about 240 chunks in
/// the requests' 600 ms, and the check asks for a sixth of that.
fn check(
    laned_p99: Duration,
    plain_p99: Duration,
    batch_done: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    if laned_p99 > Duration::from_millis(25) || laned_p99 * 10 > plain_p99 {
        return Err(format!(
            "requests waited too long in their lane: p99 {laned_p99:.1?} (without lanes {plain_p99:.1?})"
        )
        .into());
    }
    if batch_done < BATCH_CHUNKS / 10 {
        return Err(format!("the capped batch lane starved: {batch_done} chunks done").into());
    }
    println!("requests kept a low wait, and the batch lane still progressed");
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

/// Prints the requests' queue-wait quantiles; returns the 99th percentile.
fn report(label: &str, waits: &[Duration], batch_done: usize) -> Duration {
    let mut sorted = waits.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize];
    println!(
        "{label}: request queue wait p50 {:>9.1?}  p99 {:>9.1?}  max {:>9.1?}; batch {batch_done}/{BATCH_CHUNKS} chunks done meanwhile",
        at(0.5),
        at(0.99),
        at(1.0),
    );
    at(0.99)
}
