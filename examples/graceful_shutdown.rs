//! Graceful shutdown on Ctrl-C (SIGINT) or SIGTERM.
//!
//! A server in miniature: an acceptor thread takes requests, numbered from
//! 0, and submits each to a [`ThreadPool`] that it shares with `main`
//! behind an `Arc`; a full queue makes it wait (backpressure). The `ctrlc`
//! crate turns a signal into a call on a thread of its own, which tells
//! `main`. Then:
//!
//! 1. `close()` through the `Arc` stops intake: the acceptor's waiting
//!    submit comes back `Closed`, and it stops accepting;
//! 2. `shutdown_timeout(GRACE)` lets the queued requests run for up to
//!    `GRACE`, then cancels the running ones (they stop at their next
//!    `ctx.sleep`) and discards the rest;
//! 3. the report: the pool's counts, and which requests never ran, from the
//!    id each request records when it starts.
//!
//! A second signal during the grace period exits at once.
//!
//! Run as it is, it sends itself SIGINT once 20 requests have been served,
//! as a Ctrl-C would, so it ends by itself. With `-- --wait` it serves
//! until you press Ctrl-C or send SIGTERM.
//!
//! ```text
//! cargo run --release --example graceful_shutdown
//! cargo run --release --example graceful_shutdown -- --wait
//! ```

use std::collections::BTreeSet;
use std::error::Error;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use brigade::channel::{Receiver, Sender, unbounded};
use brigade::{Cancelled, Context, JobError, JobHandle, ShutdownReport, ThreadPool, select};

const WORKERS: usize = 4;
const QUEUE: usize = 16;
/// How long queued requests may still run after the signal.
const GRACE: Duration = Duration::from_millis(300);
/// Without `--wait`, the number of requests served before the self-signal.
const SELF_SIGNAL_AFTER: usize = 20;

/// A request's handle and what the job returns: its id, or why it stopped.
type Accepted = Vec<(u64, JobHandle<Result<u64, Cancelled>>)>;

/// Serves request `id`: 60 to 200 ms of waiting on a backend, cut short
/// when the pool cancels it.
fn serve(ctx: &Context, id: u64) -> Result<u64, Cancelled> {
    ctx.sleep(Duration::from_millis(60 + (id * 37) % 141))?;
    Ok(id)
}

/// The acceptor: submits requests until the pool stops taking them.
/// `started` receives each request's id when a worker starts it, `served`
/// when it finished.
fn accept(pool: &ThreadPool, started: &Sender<u64>, served: &Sender<u64>) -> Accepted {
    let mut accepted = Vec::new();
    for id in 0.. {
        let (started, served) = (started.clone(), served.clone());
        let request = move |ctx: &Context| {
            let _ = started.send(id);
            let reply = serve(ctx, id);
            if reply.is_ok() {
                let _ = served.send(id);
            }
            reply
        };
        // Waits while the queue is full; `close()` wakes it with `Closed`.
        match pool.submit(request) {
            Ok(handle) => accepted.push((id, handle)),
            Err(_refused) => break,
        }
    }
    accepted
}

/// Waits for SIGINT or SIGTERM. Unless `wait_for_user`, signals this
/// process once `SELF_SIGNAL_AFTER` requests have been served.
fn wait_for_signal(
    signals: &Receiver<()>,
    served: &Receiver<u64>,
    wait_for_user: bool,
) -> Result<(), Box<dyn Error>> {
    let mut count = 0;
    loop {
        select! {
            recv(signals) -> _ => return Ok(()),
            recv(served) -> id => {
                id?; // the acceptor holds a sender until intake closes
                count += 1;
                if count == SELF_SIGNAL_AFTER && !wait_for_user {
                    println!("{count} requests served: sending myself SIGINT, as Ctrl-C would");
                    signal_self()?;
                }
            }
        }
    }
}

/// Sends SIGINT to this process, through the same path as a Ctrl-C.
#[cfg(unix)]
fn signal_self() -> Result<(), Box<dyn Error>> {
    let pid = std::process::id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()?;
    if !status.success() {
        return Err(format!("`kill -INT {pid}` failed: {status}").into());
    }
    Ok(())
}

/// Elsewhere there is no `kill` to call: press Ctrl-C instead.
#[cfg(not(unix))]
fn signal_self() -> Result<(), Box<dyn Error>> {
    Err("no signal to send on this platform: run with --wait and press Ctrl-C".into())
}

fn main() -> Result<(), Box<dyn Error>> {
    let wait_for_user = std::env::args().any(|arg| arg == "--wait");
    let (signal_tx, signals) = unbounded();
    // SIGINT, and with the `termination` feature SIGTERM and SIGHUP too.
    ctrlc::set_handler(move || {
        let _ = signal_tx.send(());
    })?;

    let pool = Arc::new(
        ThreadPool::builder()
            .workers(WORKERS)
            .queue_capacity(QUEUE)
            .thread_name("request")
            .build()?,
    );
    println!("serving: {WORKERS} workers, a queue of {QUEUE}, {GRACE:?} of grace on a signal");
    let (started_tx, started) = unbounded();
    let (served_tx, served) = unbounded();
    let acceptor = thread::spawn({
        let pool = Arc::clone(&pool);
        move || accept(&pool, &started_tx, &served_tx)
    });

    wait_for_signal(&signals, &served, wait_for_user)?;
    println!("signal received: closing intake");
    pool.close();
    let accepted = acceptor.join().expect("the acceptor does not panic");
    thread::spawn(move || {
        if signals.recv().is_ok() {
            eprintln!("second signal: exiting without waiting for the grace period");
            std::process::exit(130);
        }
    });

    let pool = Arc::into_inner(pool).expect("the acceptor has let go of the pool");
    println!(
        "{} requests accepted; draining for up to {GRACE:?}",
        accepted.len()
    );
    let report = pool.shutdown_timeout(GRACE);
    print_report(&report, accepted, &started);
    Ok(())
}

/// Prints the report and which requests finished, were interrupted, or
/// never ran, and checks that the lists agree with the pool's counts.
fn print_report(report: &ShutdownReport, accepted: Accepted, started: &Receiver<u64>) {
    let started: BTreeSet<u64> = started.try_iter().collect();
    let (mut finished, mut interrupted, mut never_ran) = (Vec::new(), Vec::new(), Vec::new());
    for (id, handle) in accepted {
        match handle.join() {
            Ok(Ok(_)) => finished.push(id),
            Err(JobError::Cancelled(_)) if started.contains(&id) => interrupted.push(id),
            Err(JobError::Cancelled(_)) => never_ran.push(id),
            other => panic!("request {id}: unexpected {other:?}"),
        }
    }
    println!(
        "report: submitted {}, ran {} (completed {}), never ran {}, drained {}, in {:?}",
        report.submitted,
        report.ran,
        report.completed,
        report.never_ran,
        report.drained,
        report.elapsed
    );
    println!("  finished:    {}", ids(&finished));
    println!("  interrupted: {}", ids(&interrupted));
    println!("  never ran:   {}", ids(&never_ran));
    assert_eq!(report.ran + report.never_ran, report.submitted);
    assert_eq!(report.completed, finished.len() as u64);
    assert_eq!(report.ran, started.len() as u64);
    assert_eq!(report.never_ran, never_ran.len() as u64);
}

/// `n: a, b, c`, with runs of consecutive ids written `a–c`.
fn ids(list: &[u64]) -> String {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &id in list {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == id => *end = id,
            _ => runs.push((id, id)),
        }
    }
    let runs: Vec<String> = runs
        .iter()
        .map(|&(start, end)| match end - start {
            0 => start.to_string(),
            1 => format!("{start}, {end}"),
            _ => format!("{start}–{end}"),
        })
        .collect();
    if runs.is_empty() {
        return "0".to_owned();
    }
    format!("{} ({})", list.len(), runs.join(", "))
}
