//! Later and again on one pool: a periodic stats flush, delayed retries,
//! a periodic job that fails, and what Ctrl-C finds pending.
//!
//! ```sh
//! cargo run --release --example scheduled            # sends itself SIGINT after ~1.5 s
//! cargo run --release --example scheduled -- --wait  # waits for your Ctrl-C
//! ```
//!
//! * `flush` runs every 250 ms at a fixed rate and prints the pool's
//!   counters (a late tick is skipped, not burst);
//! * each upload that fails is retried with `schedule_after` and a doubling
//!   backoff — the wait is the timer's, no worker sleeps through it;
//! * `compact` fails on its second run and, built with `OnError::Stop`,
//!   ends with the error in its handle; `health` fails every third run and
//!   goes on (`OnError::Continue`): both failures are logged and counted,
//!   never silent;
//! * on the signal, `shutdown_now` runs nothing that is not yet due and
//!   reports the delayed jobs and schedules still pending.

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use brigade::channel::{RecvTimeoutError, unbounded};
use brigade::{Every, JobHandle, OnError, ThreadPool};

/// Uploads that fail their first attempts: (name, attempts that fail).
const UPLOADS: [(&str, u32); 4] = [("a.log", 0), ("b.log", 2), ("c.log", 1), ("d.log", 3)];

fn main() -> Result<(), Box<dyn Error>> {
    let wait_for_user = std::env::args().any(|arg| arg == "--wait");
    let (signal_tx, signals) = unbounded();
    ctrlc::set_handler(move || {
        let _ = signal_tx.send(());
    })?;
    let pool = ThreadPool::builder()
        .workers(4)
        .thread_name("sched")
        .build()?;
    let started = Instant::now();

    // The flush reads counters the jobs share. (A closure that owned an
    // `Arc` of the pool would keep the pool alive: capture a `Weak`.)
    let uploaded = Arc::new(AtomicU32::new(0));
    let checked = Arc::new(AtomicU32::new(0));
    let (up, ch) = (Arc::clone(&uploaded), Arc::clone(&checked));
    let flush = pool
        .schedule(Every::rate(Duration::from_millis(250)), move |_ctx| {
            println!(
                "[{:>5} ms] flush: {} uploaded, {} health checks",
                started.elapsed().as_millis(),
                up.load(Ordering::Relaxed),
                ch.load(Ordering::Relaxed)
            );
            Ok::<(), String>(())
        })
        .map_err(|e| e.kind())?;
    let compactions = AtomicU32::new(0);
    let compact = pool
        .schedule(
            Every::delay(Duration::from_millis(100)).on_error(OnError::Stop),
            move |_ctx| match compactions.fetch_add(1, Ordering::Relaxed) {
                0 => Ok(()),
                _ => Err("segment 7 is corrupt"),
            },
        )
        .map_err(|e| e.kind())?;
    let health = pool
        .schedule(
            Every::rate(Duration::from_millis(150)),
            move |_ctx| match checked.fetch_add(1, Ordering::Relaxed) % 3 {
                2 => Err("replica lagging"),
                _ => Ok(()),
            },
        )
        .map_err(|e| e.kind())?;
    // Pending when the signal comes: due long after the example ends.
    let nightly = pool
        .schedule_after(Duration::from_secs(6 * 3600), |_ctx| {
            println!("nightly report")
        })
        .map_err(|e| e.kind())?;

    let uploads = upload_all(&pool, &uploaded)?;
    println!("uploads: {uploads}");

    if !wait_for_user {
        let _ = pool.schedule_after(Duration::from_millis(1500), |_ctx| signal_self());
    }
    println!("waiting for Ctrl-C…");
    match signals.recv_timeout(Duration::from_secs(60)) {
        Ok(()) | Err(RecvTimeoutError::Timeout) => {}
        Err(RecvTimeoutError::Disconnected) => return Err("the signal handler went away".into()),
    }

    println!(
        "compact: {:?} after {} runs",
        compact.ended(),
        compact.runs()
    );
    println!(
        "health: {} runs, {} failed, last error {:?}",
        health.runs(),
        health.failures(),
        health.last_error().map(|e| e.to_string())
    );
    drop(flush); // detached: it ends with the pool
    let report = pool.shutdown_now();
    println!(
        "shutdown: {} jobs ran; pending and not run: {} delayed job(s), {} schedule(s) stopped",
        report.ran, report.delayed_never_ran, report.schedules_stopped
    );
    println!("nightly report: {:?}", nightly.join());
    Ok(())
}

/// Uploads every file, retrying a failed attempt after a doubling backoff
/// on the pool's timer. Returns a summary line.
fn upload_all(pool: &ThreadPool, uploaded: &AtomicU32) -> Result<String, Box<dyn Error>> {
    let mut summary = Vec::new();
    for (name, failing) in UPLOADS {
        let mut backoff = Duration::from_millis(20);
        let mut tried = 1;
        let mut attempt: JobHandle<Result<u32, String>> = pool
            .submit(move |_ctx| upload(name, 1, failing))
            .map_err(|e| e.kind())?;
        let attempts = loop {
            match attempt.join()? {
                Ok(attempts) => break attempts,
                Err(err) => {
                    println!("  {err}; retrying in {backoff:?}");
                    tried += 1;
                    let next = tried;
                    attempt = pool
                        .schedule_after(backoff, move |_ctx| upload(name, next, failing))
                        .map_err(|e| e.kind())?;
                    backoff *= 2;
                }
            }
        };
        uploaded.fetch_add(1, Ordering::Relaxed);
        summary.push(format!("{name} in {attempts}"));
    }
    Ok(summary.join(", "))
}

/// One upload attempt: the first `failing` attempts fail.
fn upload(name: &str, attempt: u32, failing: u32) -> Result<u32, String> {
    if attempt <= failing {
        Err(format!("upload {name}: attempt {attempt} timed out"))
    } else {
        Ok(attempt)
    }
}

/// Sends SIGINT to this process, through the same path as a Ctrl-C.
#[cfg(unix)]
fn signal_self() {
    let pid = std::process::id().to_string();
    if let Err(err) = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
    {
        eprintln!("could not signal myself ({err}): press Ctrl-C");
    }
}

/// Elsewhere there is no `kill` to call: press Ctrl-C instead.
#[cfg(not(unix))]
fn signal_self() {
    eprintln!("no signal to send on this platform: press Ctrl-C");
}
