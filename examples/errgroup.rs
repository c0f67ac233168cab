//! Fail-fast processing with an `ErrGroup`: the seed's errgroup pattern.
//! Many items are checked by at most 4 tasks at a time; one item is
//! corrupt, and its error cancels the group, so the tasks still running
//! stop early and no new ones start.
//!
//! Then the two other modes: a batch validation that reports every bad
//! record at once (`collect_all`), and a hedged request that asks three
//! replicas and takes the first answer, cancelling the slower ones
//! (`first_success`).
//!
//! ```text
//! cargo run --release --example errgroup
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use brigade::{Context, ErrGroup, GroupError, GroupErrors};

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
    fail_fast()?;
    validate_batch()?;
    hedged_request()?;
    Ok(())
}

fn fail_fast() -> Result<(), Box<dyn std::error::Error>> {
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

/// Checks one record of a batch; a record may be bad in more than one way.
fn validate(record: &str) -> Result<(), String> {
    let (name, age) = record
        .split_once(',')
        .ok_or_else(|| format!("{record:?}: expected \"name,age\""))?;
    if name.is_empty() {
        return Err(format!("{record:?}: empty name"));
    }
    match age.parse::<u8>() {
        Ok(age) if age <= 150 => Ok(()),
        _ => Err(format!("{record:?}: age {age:?} is not a plausible age")),
    }
}

/// Collect-all: every record is checked even after failures, and every
/// bad one is reported with its index, so the user fixes them all at once.
fn validate_batch() -> Result<(), Box<dyn std::error::Error>> {
    let records = ["ada,36", "grace,85", ",12", "linus", "ken,-1", "barbara,84"];
    let group = ErrGroup::<String>::collect_all(&Context::new()).limit(2)?;
    for record in records {
        group.spawn(move |_ctx| validate(record))?;
    }
    match group.wait() {
        Ok(()) => println!("\nbatch: all {} records are valid", records.len()),
        Err(errors) => report(&records, &errors),
    }
    Ok(())
}

fn report(records: &[&str], errors: &GroupErrors<String>) {
    println!(
        "\nbatch: {} of {} records are invalid:",
        errors.len(),
        records.len()
    );
    let mut listed: Vec<_> = errors.iter().collect();
    listed.sort_by_key(|(index, _)| *index);
    for (index, error) in listed {
        println!("  record {index}: {error}");
    }
}

/// Simulates one replica answering after `latency`, or giving up when the
/// group is cancelled because another replica answered first.
fn ask(ctx: &Context, replica: &str, latency: Duration) -> Result<String, String> {
    ctx.sleep(latency)
        .map_err(|reason| format!("{replica}: gave up ({reason})"))?;
    if replica == "replica-b" {
        return Err(format!("{replica}: 503 service unavailable"));
    }
    Ok(format!("{replica} answered after {latency:?}"))
}

/// First-success: a hedged request. The fastest good answer wins; the
/// slower replica is cancelled and joined before `wait` returns.
fn hedged_request() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let group = ErrGroup::<String>::first_success(&Context::new());
    let replicas = [("replica-a", 400), ("replica-b", 5), ("replica-c", 30)];
    for (replica, millis) in replicas {
        group.spawn(move |ctx| ask(ctx, replica, Duration::from_millis(millis)))?;
    }
    match group.wait() {
        Ok(answer) => println!(
            "\nhedged request: {answer}; done in {:.0?}",
            started.elapsed()
        ),
        Err(errors) => println!("\nhedged request: every replica failed: {errors}"),
    }
    Ok(())
}
