//! A progress bar over a 10,000-job batch, driven by the pool's
//! `on_job_done` hook: every finished (or discarded) job ticks the bar,
//! failures are counted, and the pool's stats are printed at the end.
//!
//! ```text
//! cargo run --release --example progress
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use brigade::{JobOutcome, ThreadPool};
use indicatif::{ProgressBar, ProgressStyle};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const JOBS: u64 = 10_000;
    let bar = ProgressBar::new(JOBS);
    bar.set_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} jobs, {per_sec}, eta {eta} {msg}",
    )?);
    let failed = Arc::new(AtomicU64::new(0));
    let (all_done, finished) = mpsc::channel();
    // A panicking job is caught by the pool and counted; print one line
    // above the bar instead of the default message and backtrace.
    {
        let bar = bar.clone();
        std::panic::set_hook(Box::new(move |info| {
            bar.println(format!("job panicked: {info}"))
        }));
    }

    let pool = {
        let (bar, failed) = (bar.clone(), Arc::clone(&failed));
        let seen = AtomicU64::new(0);
        ThreadPool::builder()
            .workers(8)
            .on_job_done(move |event| {
                if event.outcome != JobOutcome::Completed {
                    let n = failed.fetch_add(1, Ordering::Relaxed) + 1;
                    bar.set_message(format!("({n} failed)"));
                }
                bar.inc(1);
                if seen.fetch_add(1, Ordering::Relaxed) + 1 == JOBS {
                    let _ = all_done.send(());
                }
            })
            .build()?
    };

    for n in 0..JOBS {
        pool.execute(move || {
            // Simulated work: mostly quick, a few slow, one in 2,500 panics.
            std::thread::sleep(Duration::from_micros(200 + (n * 7919) % 800));
            assert!(n % 2_500 != 1_234, "job {n} hit a corrupt record");
        })
        .map_err(|e| e.kind())?;
    }
    // Every job has reported once the hook has seen JOBS events; the
    // stats then cover the whole batch.
    finished.recv_timeout(Duration::from_secs(120))?;
    bar.finish();
    let stats = pool.stats();
    pool.join();
    println!("{stats}");
    println!("failed: {}", failed.load(Ordering::Relaxed));
    Ok(())
}
