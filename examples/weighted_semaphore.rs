//! A weighted semaphore bounding memory, not job count: the seed's
//! `semaphore.Weighted` pattern. Jobs need different amounts of (simulated)
//! memory; the semaphore holds the total at 8 GiB, hands permits out in
//! FIFO order so a big job is not starved by small ones, and releases them
//! when each job's permit is dropped.
//!
//! ```text
//! cargo run --release --example weighted_semaphore
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use brigade::{Semaphore, ThreadPool};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const BUDGET_GIB: usize = 8;
    let memory = Semaphore::new(BUDGET_GIB)?;
    let pool = ThreadPool::builder().workers(6).build()?;
    let in_use = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));

    let jobs = [1, 2, 6, 1, 1, 8, 3, 2, 4, 1, 5, 2];
    for (id, gib) in jobs.into_iter().enumerate() {
        // Blocks until `gib` GiB are free and every earlier request is served.
        let permit = memory.acquire(gib)?;
        let (in_use, peak) = (Arc::clone(&in_use), Arc::clone(&peak));
        pool.execute(move || {
            let now = in_use.fetch_add(gib, Ordering::SeqCst) + gib;
            peak.fetch_max(now, Ordering::SeqCst);
            println!("job {id:>2} uses {gib} GiB ({now} GiB in use)");
            std::thread::sleep(Duration::from_millis(20 * gib as u64));
            in_use.fetch_sub(gib, Ordering::SeqCst);
            drop(permit); // give the memory back
        })
        .map_err(|e| e.kind())?;
    }
    pool.join();
    println!(
        "peak: {} GiB of a {BUDGET_GIB} GiB budget",
        peak.load(Ordering::SeqCst)
    );
    assert!(peak.load(Ordering::SeqCst) <= BUDGET_GIB);
    assert_eq!(memory.available(), BUDGET_GIB);
    Ok(())
}
