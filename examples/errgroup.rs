//! Fail-fast processing with an `ErrGroup`: the seed's errgroup pattern.
//! Many items are checked by at most 4 tasks at a time; one item is
//! corrupt, and its error cancels the group, so the tasks still running
//! stop early and no new ones start.
//!
//! ```text
//! cargo run --release --example errgroup
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use brigade::{Context, ErrGroup, GroupError};

/// Simulates verifying one file: 20 ms of work in 1 ms steps, watching the
/// group's context so a failure elsewhere stops it early.
fn verify(ctx: &Context, id: u32) -> Result<(), String> {
    for _ in 0..20 {
        ctx.sleep(Duration::from_millis(1))
            .map_err(|reason| format!("file {id}: stopped ({reason})"))?;
    }
    if id == 17 {
        Err(format!("file {id}: checksum mismatch"))
    } else {
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new();
    let group = ErrGroup::<String>::new(&ctx).limit(4)?;
    let verified = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut spawned = 0;
    for id in 0..100 {
        let verified = Arc::clone(&verified);
        let task = move |ctx: &Context| {
            verify(ctx, id)?;
            verified.fetch_add(1, Ordering::Relaxed);
            Ok(())
        };
        // Waits while 4 tasks run; fails once the group is cancelled.
        if group.spawn(task).is_err() {
            break;
        }
        spawned += 1;
    }
    let threads = group.threads();
    // The group's workers are a crew like any pool's: its tasks are jobs.
    let stats = group.stats();
    match group.wait() {
        Ok(()) => println!("all files verified"),
        Err(GroupError::Failed(error)) => println!("first error: {error}"),
        Err(GroupError::Panicked(message)) => println!("a task panicked: {message}"),
        Err(other) => println!("failed: {other}"),
    }
    println!(
        "spawned {spawned} of 100 tasks on {threads} threads; {} verified before the failure; {:.0?}",
        verified.load(Ordering::Relaxed),
        started.elapsed()
    );
    println!("the group's workers when the last task was spawned: {stats}");
    Ok(())
}
