//! Chaos: a seeded, randomised stress of every pool front door, reconciled
//! job by job against a ledger.
//!
//! Each round builds a `ThreadPool`, `WorkerPool`, `ErrGroup` or `Pipeline`
//! with random settings and feeds it from several submitter threads. Jobs
//! do random work: mostly nothing or a few microseconds, a few a
//! millisecond, some overrunning the per-job timeout (cooperatively, in
//! `ctx.sleep`), some panicking, some failing. Submitters cancel random
//! handles and resubmit the jobs that `try_submit` and `submit_timeout`
//! hand back from a full queue. At a random moment (a count of accepted
//! jobs, never a time) the round shuts the pool down in a random flavour
//! while the submitters are still running.
//!
//! Every job has an id and a word of atomic state bits in a `Ledger`:
//! created, accepted or handed back, started (at most once, per stage),
//! returned, panicked, failed, and released (its closure or item dropped).
//! After the round every job must have run exactly once, been reported
//! never-run (a `Cancelled` handle, `Leftovers::unprocessed`, a task the
//! group's pool discarded, a pipeline run that ended early), or been handed
//! back by its submit call; and the `Stats` and `ShutdownReport` must agree
//! with the ledger.
//!
//! A failure names its seed; replay the same plans with
//! `BRIGADE_CHAOS_SEED=<seed> cargo test --test chaos` (the thread
//! interleavings, and so the exact race, may differ). The `soak` test runs
//! over a million jobs:
//! `cargo test --release --test chaos -- --ignored --nocapture`.
//!
//! This file holds the tests, the seeds and the round loop; each front
//! door's rounds have a module of their own, and what they share is in
//! `ledger`, `work` and `feed`.

#[path = "../common/mod.rs"]
mod common;
/// `ErrGroup` rounds.
mod errgroup;
/// The submitters: what a submit did, the moment the round ends, resizes.
mod feed;
/// The ledger of job states and the checks every front door shares.
mod ledger;
/// `Pipeline` rounds.
mod pipeline;
/// `ThreadPool` rounds.
mod pool;
/// What a job does, and the body that records it in the ledger.
mod work;
/// `WorkerPool` rounds.
mod worker_pool;

use std::any::Any;
use std::panic;
use std::sync::Once;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{LONG, SplitMix64, with_timeout};
use ledger::Tally;

/// Rounds per front door in the default run: more for the cheap ones, so
/// that each test takes about as long (about 8 s in debug on 2 cores).
const CI_ROUNDS: [usize; 4] = [100, 50, 100, 30];
/// Jobs per round in the default run.
const CI_JOBS: usize = 3500;
/// The soak runs rounds until the pools have accepted this many jobs
/// (handed-back ones do not count).
const SOAK_JOBS: u64 = 1_000_000;
/// The smallest soak round; each is up to twice as large.
const SOAK_ROUND_JOBS: usize = 20_000;
/// How long one round may take before it counts as a hang. Longer than
/// [`LONG`], so that a wait inside the round fails first, with its own
/// message.
const ROUND_LIMIT: Duration = Duration::from_secs(2 * LONG.as_secs());
/// Non-blocking submits of one job before its submitter falls back to a
/// blocking one, so a resubmission loop always ends.
const PATIENCE: u32 = 64;
/// The prefix of every panic payload a job raises on purpose; the panic
/// hook keeps those quiet.
const PLANNED: &str = "chaos: planned panic";
/// Pipelines have up to this many stages; the other front doors use stage 0.
const STAGES: usize = 3;

#[test]
fn thread_pool_accounts_for_every_job() {
    // Every job given to a ThreadPool runs once, is reported never-run, or is handed back; Stats agree.
    run_rounds(
        "thread_pool_accounts_for_every_job",
        0x7470,
        CI_ROUNDS[0],
        CI_JOBS,
        pool::round,
    );
}

#[test]
fn worker_pool_accounts_for_every_job() {
    // Every job given to a WorkerPool yields one output, is a leftover, or is handed back; Stats agree.
    run_rounds(
        "worker_pool_accounts_for_every_job",
        0x7770,
        CI_ROUNDS[1],
        CI_JOBS,
        worker_pool::round,
    );
}

#[test]
fn err_group_accounts_for_every_task() {
    // Every task given to an ErrGroup runs once, is discarded and reported, or is handed back.
    run_rounds(
        "err_group_accounts_for_every_task",
        0x6567,
        CI_ROUNDS[2],
        CI_JOBS,
        errgroup::round,
    );
}

#[test]
fn pipeline_accounts_for_every_item() {
    // Every pipeline item passes each stage at most once, in order, and ends in one place.
    run_rounds(
        "pipeline_accounts_for_every_item",
        0x7069,
        CI_ROUNDS[3],
        CI_JOBS,
        pipeline::round,
    );
}

#[test]
#[ignore = "soak: over a million jobs; cargo test --release --test chaos -- --ignored --nocapture"]
fn soak() {
    // The ledger balances over a million jobs across all four front doors: none lost, none run twice.
    quiet_planned_panics();
    let seed = base_seed();
    let kinds: [(&str, u64, RoundFn); 4] = [
        ("thread_pool", 0x7470, pool::round),
        ("worker_pool", 0x7770, worker_pool::round),
        ("err_group", 0x6567, errgroup::round),
        ("pipeline", 0x7069, pipeline::round),
    ];
    let mut seeds: Vec<SplitMix64> = kinds
        .iter()
        .map(|&(_, salt, _)| SplitMix64(seed ^ salt))
        .collect();
    let mut sizes = SplitMix64(seed);
    let started = Instant::now();
    let mut total = Tally::default();
    let mut index = 0;
    while total.accepted < SOAK_JOBS {
        for ((name, _, round), seeds) in kinds.iter().zip(&mut seeds) {
            let jobs = SOAK_ROUND_JOBS + sizes.below(SOAK_ROUND_JOBS as u64) as usize;
            total += one_round(name, seed, index, seeds.next_u64(), jobs, *round);
        }
        index += 1;
    }
    println!(
        "chaos soak, seed = {seed}, {:.1?}: {total}",
        started.elapsed()
    );
    assert_eq!((total.lost, total.run_twice), (0, 0), "seed = {seed}");
}

// ------------------------------------------------------------------ rounds

/// One round: a seed and a job count in, the round's tally out.
type RoundFn = fn(u64, usize) -> Tally;

/// Runs `rounds` rounds of one front door from the base seed, salted so
/// that the front doors do not share plans.
fn run_rounds(test: &str, salt: u64, rounds: usize, jobs: usize, round: RoundFn) -> Tally {
    quiet_planned_panics();
    let seed = base_seed();
    println!("{test}: seed = {seed}");
    let mut seeds = SplitMix64(seed ^ salt);
    let started = Instant::now();
    let mut total = Tally::default();
    let mut slowest = (Duration::ZERO, 0);
    for index in 0..rounds {
        let round_started = Instant::now();
        total += one_round(test, seed, index, seeds.next_u64(), jobs, round);
        slowest = slowest.max((round_started.elapsed(), index));
    }
    println!(
        "{test}, {:.1?} (slowest: round {}, {:.1?}): {total}",
        started.elapsed(),
        slowest.1,
        slowest.0
    );
    total
}

/// Runs one round under [`ROUND_LIMIT`]; a failure (or a hang) panics with
/// a message that names the seed to replay.
fn one_round(
    test: &str,
    seed: u64,
    index: usize,
    round_seed: u64,
    jobs: usize,
    round: RoundFn,
) -> Tally {
    let outcome =
        panic::catch_unwind(move || with_timeout(ROUND_LIMIT, move || round(round_seed, jobs)));
    outcome.unwrap_or_else(|payload| {
        panic!(
            "{test} round {index} failed, seed = {seed} \
             (replay the same plans with BRIGADE_CHAOS_SEED={seed}): {}",
            payload_text(payload.as_ref())
        )
    })
}

/// `BRIGADE_CHAOS_SEED` if set, else one derived from the clock.
fn base_seed() -> u64 {
    match std::env::var("BRIGADE_CHAOS_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("BRIGADE_CHAOS_SEED must be a u64, got {text:?}")),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x5EED, |since| since.as_nanos() as u64),
    }
}

/// Installs, once per process, a panic hook that keeps the panics jobs
/// raise on purpose quiet and shows every other panic as usual.
fn quiet_planned_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !payload_text(info.payload()).starts_with(PLANNED) {
                previous(info);
            }
        }));
    });
}

fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

// ------------------------------------------------------------------- seeds

/// The submitter's own random stream.
pub(crate) fn submitter_rng(seed: u64, index: usize) -> SplitMix64 {
    let mut rng = SplitMix64(seed ^ (index as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F));
    rng.next_u64();
    rng
}

/// One of `choices`, at random.
pub(crate) fn pick<T: Copy>(rng: &mut SplitMix64, choices: &[T]) -> T {
    choices[rng.below(choices.len() as u64) as usize]
}
