//! Jobs' log lines nested under the request span that submitted them.
//!
//! A job runs on a worker thread, where the submitter's current
//! `tracing` span is not entered: without help its events would print
//! with no request around them. `propagate` captures `Span::current()` on
//! the submitting thread and enters it around the job on the worker, so
//! every event a job emits — from `submit`, `execute` or a `map` item —
//! prints under `request{id=…}`, whichever worker ran it. The last request
//! goes to a pool built without `propagate`, for contrast: its jobs'
//! lines lose the request.
//!
//! ```text
//! cargo run --example tracing_spans
//! ```

use brigade::ThreadPool;
use tracing::{Span, info, info_span, warn};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One line per event, with the spans it happened in and its thread.
    tracing_subscriber::fmt()
        .with_target(false)
        .with_thread_names(true)
        .without_time()
        .init();

    let pool = ThreadPool::builder()
        .workers(2)
        .thread_name("worker")
        .propagate(Span::current, |span: Span, run| span.in_scope(run))
        .build()?;
    for id in 1..=2 {
        let request = info_span!("request", id);
        let _entered = request.enter();
        info!("received");
        let resized = pool.submit(move |_ctx| {
            // A span of the job's own, inside the request's.
            let _job = info_span!("resize", width = 640 * id).entered();
            info!("resized");
            640 * id
        });
        let width = resized.map_err(|e| e.kind())?.join()?;
        pool.execute(|| info!("audit logged"))
            .map_err(|e| e.kind())?;
        let sizes: Vec<usize> = pool
            .map(["a.jpg", "bb.jpg", "ccc.jpg"], |name| {
                info!(name, "thumbnail");
                name.len()
            })
            .collect::<Result<_, _>>()?;
        info!(width, ?sizes, "answered");
    }

    // The same jobs on a pool without the hook: no request around them.
    let plain = ThreadPool::builder()
        .workers(1)
        .thread_name("plain")
        .build()?;
    let request = info_span!("request", id = 3);
    let _entered = request.enter();
    plain
        .submit(|_ctx| warn!("this job's line has no request span"))
        .map_err(|e| e.kind())?
        .join()?;
    // Drained, so the audit lines are printed before the program ends.
    pool.join();
    Ok(())
}
