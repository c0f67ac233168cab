//! Chaos: a seeded, randomised stress of every pool front door, reconciled
//! job by job against a ledger.
//!
//! Each round builds a `ThreadPool`, `WorkerPool`, `ErrGroup` or `Pipeline`
//! with random settings and feeds it from several submitter threads. Jobs
//! do random work: mostly nothing or a few microseconds, a few a
//! millisecond, some overrunning the per-job timeout (cooperatively, in
//! `ctx.sleep`), some panicking, some failing. Submitters cancel random
//! handles and resubmit the jobs that `try_submit` and `submit_timeout`
//! hand back from a full queue; `ThreadPool` submitters also submit
//! through `submit_async` (awaiting, or dropping a `CancelOnDrop`) and
//! submit jobs that submit and join jobs of their own, run inline on the
//! joining worker (`pool`, `nest`). At a random moment (a count of accepted
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
//! A failing round prints its whole plan, the jobs not yet settled (each
//! with its ledger state), and two commands: one replays that round alone,
//! `BRIGADE_CHAOS_REPLAY=<front door>:<round seed>:<jobs> cargo test
//! --test chaos`, the other the whole run's plans,
//! `BRIGADE_CHAOS_SEED=<seed> cargo test --test chaos` (either way the
//! thread interleavings, and so the exact race, may differ).
//! `BRIGADE_CHAOS_PERCENT=<n>` runs that share of the rounds (the
//! ThreadSanitizer pass runs half). The `soak` test runs over a million
//! jobs: `cargo test --release --test chaos -- --ignored --nocapture`.
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
/// `ThreadPool` jobs that submit jobs and join them from inside.
mod nest;
/// `Pipeline` rounds.
mod pipeline;
/// `ThreadPool` rounds.
mod pool;
/// The keys and lanes of keyed `ThreadPool` rounds.
mod routes;
/// What a job does, and the body that records it in the ledger.
mod work;
/// `WorkerPool` rounds.
mod worker_pool;

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{LONG, SplitMix64, with_timeout};
use ledger::{Ledger, Tally};

/// Rounds per front door in the default run: more for the cheap ones, so
/// that each test takes about as long (about 8 s in debug on 2 cores).
const CI_ROUNDS: [usize; 5] = [100, 50, 100, 30, 30];
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
    run_rounds(&THREAD_POOL, CI_ROUNDS[0], CI_JOBS);
}

#[test]
fn keyed_pool_accounts_for_every_job() {
    // As thread_pool_accounts_for_every_job, with jobs along keys and lanes: besides, a
    // key's jobs start one at a time in submission order and no lane runs past its cap.
    run_rounds(&KEYED_POOL, CI_ROUNDS[4], CI_JOBS);
}

#[test]
fn worker_pool_accounts_for_every_job() {
    // Every job given to a WorkerPool yields one output, is a leftover, or is handed back; Stats agree.
    run_rounds(&WORKER_POOL, CI_ROUNDS[1], CI_JOBS);
}

#[test]
fn err_group_accounts_for_every_task() {
    // Every task given to an ErrGroup runs once, is discarded and reported, or is handed back.
    run_rounds(&ERR_GROUP, CI_ROUNDS[2], CI_JOBS);
}

#[test]
fn pipeline_accounts_for_every_item() {
    // Every pipeline item passes each stage at most once, in order, and ends in one place.
    run_rounds(&PIPELINE, CI_ROUNDS[3], CI_JOBS);
}

#[test]
#[ignore = "soak: over a million jobs; cargo test --release --test chaos -- --ignored --nocapture"]
fn soak() {
    // The ledger balances over a million jobs across all four front doors: none lost, none run twice.
    quiet_planned_panics();
    if let Some(replay) = Replay::from_env() {
        replay.run("soak");
        return;
    }
    let seed = base_seed();
    let mut seeds: Vec<SplitMix64> = DOORS
        .iter()
        .map(|door| SplitMix64(seed ^ door.salt))
        .collect();
    let mut sizes = SplitMix64(seed);
    let started = Instant::now();
    let mut total = Tally::default();
    let mut index = 0;
    while total.accepted < SOAK_JOBS {
        for (door, seeds) in DOORS.iter().zip(&mut seeds) {
            let jobs = SOAK_ROUND_JOBS + sizes.below(SOAK_ROUND_JOBS as u64) as usize;
            let place = Some(Place { seed, index });
            total += one_round("soak", door, place, seeds.next_u64(), jobs);
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

/// One front door under test: how to plan a round of it and how to run one.
struct Door {
    /// Its name in [`REPLAY`].
    name: &'static str,
    /// The test that runs its rounds.
    test: &'static str,
    /// Salts the base seed, so that the front doors do not share plans.
    salt: u64,
    /// A round's whole plan, as its seed and job count make it, for
    /// messages (each job's work follows from the seed too).
    plan: fn(u64, usize) -> String,
    /// One round: its seed, its job count and an empty ledger in, the
    /// round's tally out.
    round: fn(u64, usize, Arc<Ledger>) -> Tally,
}

const THREAD_POOL: Door = Door {
    name: "thread_pool",
    test: "thread_pool_accounts_for_every_job",
    salt: 0x7470,
    plan: pool::plan,
    round: pool::round,
};

const KEYED_POOL: Door = Door {
    name: "keyed_pool",
    test: "keyed_pool_accounts_for_every_job",
    salt: 0x6b70,
    plan: pool::keyed_plan,
    round: pool::keyed_round,
};

const WORKER_POOL: Door = Door {
    name: "worker_pool",
    test: "worker_pool_accounts_for_every_job",
    salt: 0x7770,
    plan: worker_pool::plan,
    round: worker_pool::round,
};

const ERR_GROUP: Door = Door {
    name: "err_group",
    test: "err_group_accounts_for_every_task",
    salt: 0x6567,
    plan: errgroup::plan,
    round: errgroup::round,
};

const PIPELINE: Door = Door {
    name: "pipeline",
    test: "pipeline_accounts_for_every_item",
    salt: 0x7069,
    plan: pipeline::plan,
    round: pipeline::round,
};

/// Every front door, in the order the soak takes them.
const DOORS: [&Door; 5] = [
    &THREAD_POOL,
    &KEYED_POOL,
    &WORKER_POOL,
    &ERR_GROUP,
    &PIPELINE,
];

/// Runs `rounds` rounds of one front door from the base seed, or only the
/// round [`REPLAY`] names.
fn run_rounds(door: &Door, rounds: usize, jobs: usize) -> Tally {
    quiet_planned_panics();
    let test = door.test;
    if let Some(replay) = Replay::from_env() {
        if replay.door.name != door.name {
            println!(
                "{test}: skipped, {REPLAY} replays a {} round",
                replay.door.name
            );
            return Tally::default();
        }
        return replay.run(test);
    }
    let seed = base_seed();
    println!("{test}: seed = {seed}");
    let mut seeds = SplitMix64(seed ^ door.salt);
    let started = Instant::now();
    let mut total = Tally::default();
    let mut slowest = (Duration::ZERO, 0);
    for index in 0..share_of(rounds) {
        let round_started = Instant::now();
        let place = Some(Place { seed, index });
        total += one_round(test, door, place, seeds.next_u64(), jobs);
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

/// Where a round sits in a run: the run's base seed and the round's index.
#[derive(Clone, Copy)]
struct Place {
    seed: u64,
    index: usize,
}

/// Runs one round of `door` under [`ROUND_LIMIT`]. A failure (or a hang)
/// panics with the commands that replay it, the round's whole plan, and
/// the jobs not yet settled, each with its ledger state.
fn one_round(test: &str, door: &Door, place: Option<Place>, seed: u64, jobs: usize) -> Tally {
    let ledger = Ledger::new(jobs);
    let (round, watched) = (door.round, Arc::clone(&ledger));
    // After a failure the ledger is only read: its atomics, and the
    // violations behind a lock that a panic does not poison.
    let watched = AssertUnwindSafe(watched);
    let outcome = panic::catch_unwind(move || {
        let watched = watched;
        with_timeout(ROUND_LIMIT, move || round(seed, jobs, watched.0))
    });
    outcome.unwrap_or_else(|payload| {
        let which = match place {
            Some(place) => format!("round {} (base seed {})", place.index, place.seed),
            None => "round (replayed)".to_owned(),
        };
        let whole_run = match place {
            Some(place) => format!(
                "\nreplay the whole run's plans: BRIGADE_CHAOS_SEED={} {}",
                place.seed,
                command(test)
            ),
            None => String::new(),
        };
        panic!(
            "{test}: {} {which} failed: {}\n\
             replay this round alone: {REPLAY}={}:{seed}:{jobs} {}\
             {whole_run}\n\
             (the thread interleavings, and so the exact race, may differ)\n\
             the round's plan: {}\n\
             jobs not yet settled, by ledger state: {}",
            door.name,
            payload_text(payload.as_ref()),
            door.name,
            command(door.test),
            (door.plan)(seed, jobs),
            ledger.unsettled(),
        )
    })
}

/// The command that runs `test` alone.
fn command(test: &str) -> String {
    match test {
        "soak" => "cargo test --release --test chaos soak -- --exact --ignored".to_owned(),
        test => format!("cargo test --test chaos {test} -- --exact"),
    }
}

/// The variable that replays one round alone:
/// `<front door>:<round seed>:<jobs>`, as a failing round prints it.
const REPLAY: &str = "BRIGADE_CHAOS_REPLAY";

/// One round to run alone, from [`REPLAY`].
struct Replay {
    door: &'static Door,
    seed: u64,
    jobs: usize,
}

impl Replay {
    /// The round [`REPLAY`] names, if it is set.
    fn from_env() -> Option<Self> {
        let text = std::env::var(REPLAY).ok()?;
        let parse = || {
            let mut parts = text.trim().split(':');
            let name = parts.next()?;
            let door = DOORS.into_iter().find(|door| door.name == name)?;
            let seed = parts.next()?.parse().ok()?;
            let jobs = parts.next()?.parse().ok()?;
            parts.next().is_none().then_some(Self { door, seed, jobs })
        };
        Some(parse().unwrap_or_else(|| {
            let names: Vec<&str> = DOORS.iter().map(|door| door.name).collect();
            panic!(
                "{REPLAY} must be <front door>:<round seed>:<jobs>, the front door one of {}, got {text:?}",
                names.join(", ")
            )
        }))
    }

    fn run(&self, test: &str) -> Tally {
        println!(
            "{test}: replaying one {} round, seed {}, {} jobs",
            self.door.name, self.seed, self.jobs
        );
        let tally = one_round(test, self.door, None, self.seed, self.jobs);
        println!("{test}, the replayed round: {tally}");
        tally
    }
}

/// `rounds`, or `BRIGADE_CHAOS_PERCENT` percent of them (at least one)
/// if set: the ThreadSanitizer pass, where every round is several times
/// slower, runs a share to stay inside CI's time.
fn share_of(rounds: usize) -> usize {
    match std::env::var("BRIGADE_CHAOS_PERCENT") {
        Ok(text) => {
            let percent: usize = text.trim().parse().unwrap_or_else(|_| {
                panic!("BRIGADE_CHAOS_PERCENT must be a whole number, got {text:?}")
            });
            (rounds * percent / 100).max(1)
        }
        Err(_) => rounds,
    }
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
