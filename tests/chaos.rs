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

mod common;

use std::any::Any;
use std::fmt;
use std::ops::{AddAssign, Range};
use std::panic;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
use std::sync::{Arc, Once};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use brigade::{
    Cancelled, Context, ErrGroup, GroupError, JobError, JobHandle, Leftovers, Output, PanicPolicy,
    Pipeline, PipelineError, PipelineOutput, ShutdownReport, SpawnError, StageError, StageFailure,
    StageStats, Stats, ThreadPool, TrySubmitError, WorkerPool,
};
use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender, TrySendError};
use parking_lot::{Mutex, RwLock};

use common::{Gate, LONG, SplitMix64, threads_named, wait_until, with_timeout};

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
        pool_round,
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
        worker_round,
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
        group_round,
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
        pipeline_round,
    );
}

#[test]
#[ignore = "soak: over a million jobs; cargo test --release --test chaos -- --ignored --nocapture"]
fn soak() {
    // The ledger balances over a million jobs across all four front doors: none lost, none run twice.
    quiet_planned_panics();
    let seed = base_seed();
    let kinds: [(&str, u64, RoundFn); 4] = [
        ("thread_pool", 0x7470, pool_round),
        ("worker_pool", 0x7770, worker_round),
        ("err_group", 0x6567, group_round),
        ("pipeline", 0x7069, pipeline_round),
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

/// The payload of the planned panic of job `id` in `stage`.
fn planned_message(id: usize, stage: usize) -> String {
    format!("{PLANNED} in job {id} at stage {stage}")
}

/// A thread-name prefix no other round of this process uses.
fn unique_name(kind: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{kind}{}", NEXT.fetch_add(1, SeqCst))
}

/// The submitter's own random stream.
fn submitter_rng(seed: u64, index: usize) -> SplitMix64 {
    let mut rng = SplitMix64(seed ^ (index as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F));
    rng.next_u64();
    rng
}

fn pick<T: Copy>(rng: &mut SplitMix64, choices: &[T]) -> T {
    choices[rng.below(choices.len() as u64) as usize]
}

/// `0..jobs` cut into `parts` contiguous id ranges, one per submitter.
fn split(jobs: usize, parts: usize) -> Vec<Range<usize>> {
    (0..parts)
        .map(|part| jobs * part / parts..jobs * (part + 1) / parts)
        .collect()
}

/// Joins scoped submitter threads, resuming a panic from any of them.
fn join_all<T>(threads: Vec<thread::ScopedJoinHandle<'_, Vec<T>>>) -> Vec<T> {
    threads
        .into_iter()
        .flat_map(|thread| {
            thread
                .join()
                .unwrap_or_else(|payload| panic::resume_unwind(payload))
        })
        .collect()
}

/// Waits for the threads named `{prefix}-…` to be gone (no thread outlives
/// its pool).
fn check_no_threads(found: &mut Vec<String>, prefix: &str) {
    if !wait_until(LONG, || threads_named(prefix) == 0) {
        found.push(format!(
            "{} thread(s) named {prefix}-… outlived their pool",
            threads_named(prefix)
        ));
    }
}

// ------------------------------------------------------------------ ledger

/// The job exists (its submitter made it).
const CREATED: u32 = 1;
/// A submit call accepted the job.
const ACCEPTED: u32 = 1 << 1;
/// A submit call handed the job back, and its submitter gave up on it.
const HANDED_BACK: u32 = 1 << 2;
/// The job's token was dropped: its closure or item is gone.
const RELEASED: u32 = 1 << 3;
/// The submitter called `JobHandle::cancel` on the job.
const CANCEL_ASKED: u32 = 1 << 4;
/// The job's `ctx.sleep` ended at its own deadline.
const SAW_DEADLINE: u32 = 1 << 5;
/// The job's context was done when its body returned.
const SAW_DONE: u32 = 1 << 6;

/// The body of the job began in `stage`.
const fn started(stage: usize) -> u32 {
    1 << (8 + 4 * stage)
}

/// The body of the job returned in `stage` (successfully or with its
/// planned error).
const fn finished(stage: usize) -> u32 {
    1 << (9 + 4 * stage)
}

/// The body of the job panicked, as planned, in `stage`.
const fn panicked(stage: usize) -> u32 {
    1 << (10 + 4 * stage)
}

/// The body of the job returned its planned error in `stage`.
const fn failed(stage: usize) -> u32 {
    1 << (11 + 4 * stage)
}

/// One word of state bits per job, plus how many jobs ran at once.
struct Ledger {
    states: Vec<AtomicU32>,
    running: [AtomicUsize; STAGES],
    peak: [AtomicUsize; STAGES],
    run_twice: AtomicU64,
    violations: Mutex<Vec<String>>,
}

impl Ledger {
    fn new(jobs: usize) -> Arc<Self> {
        Arc::new(Self {
            states: (0..jobs).map(|_| AtomicU32::new(0)).collect(),
            running: Default::default(),
            peak: Default::default(),
            run_twice: AtomicU64::new(0),
            violations: Mutex::new(Vec::new()),
        })
    }

    fn state(&self, id: usize) -> u32 {
        self.states[id].load(SeqCst)
    }

    /// Sets `bits`; returns the state before.
    fn mark(&self, id: usize, bits: u32) -> u32 {
        self.states[id].fetch_or(bits, SeqCst)
    }

    fn violation(&self, message: String) {
        self.violations.lock().push(message);
    }

    /// How many jobs' states satisfy `pred`.
    fn count(&self, pred: impl Fn(u32) -> bool) -> u64 {
        self.states.iter().filter(|s| pred(s.load(SeqCst))).count() as u64
    }

    fn peak(&self, stage: usize) -> usize {
        self.peak[stage].load(SeqCst)
    }

    /// Creates job `id`'s token.
    fn token(self: &Arc<Self>, id: usize) -> Token {
        let before = self.mark(id, CREATED);
        assert_eq!(before, 0, "the test created job {id} twice");
        Token {
            id,
            ledger: Arc::clone(self),
        }
    }

    /// Records that job `id` starts `stage`; it must not have before.
    fn start(&self, id: usize, stage: usize) -> Running<'_> {
        let before = self.mark(id, started(stage));
        if before & started(stage) != 0 {
            self.run_twice.fetch_add(1, SeqCst);
            self.violation(format!(
                "job {id} started stage {stage} a second time (run twice): {}",
                describe(before)
            ));
        }
        if before & (HANDED_BACK | RELEASED) != 0 {
            self.violation(format!(
                "job {id} started after it was handed back or dropped: {}",
                describe(before)
            ));
        }
        let now = self.running[stage].fetch_add(1, SeqCst) + 1;
        self.peak[stage].fetch_max(now, SeqCst);
        Running {
            ledger: self,
            stage,
        }
    }
}

/// Counts a job as running until dropped (panics included).
struct Running<'a> {
    ledger: &'a Ledger,
    stage: usize,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.ledger.running[self.stage].fetch_sub(1, SeqCst);
    }
}

/// Travels inside a job's closure or item; dropping it marks the job
/// [`RELEASED`], so a job that is neither run nor dropped shows as leaked.
struct Token {
    id: usize,
    ledger: Arc<Ledger>,
}

impl Drop for Token {
    fn drop(&mut self) {
        let before = self.ledger.mark(self.id, RELEASED);
        if before & RELEASED != 0 {
            self.ledger
                .violation(format!("job {}'s token was dropped twice", self.id));
        }
    }
}

/// The names of the bits set in `state`, for messages.
fn describe(state: u32) -> String {
    const FLAGS: [(u32, &str); 7] = [
        (CREATED, "created"),
        (ACCEPTED, "accepted"),
        (HANDED_BACK, "handed-back"),
        (RELEASED, "released"),
        (CANCEL_ASKED, "cancel-asked"),
        (SAW_DEADLINE, "saw-deadline"),
        (SAW_DONE, "saw-done"),
    ];
    let mut names: Vec<String> = FLAGS
        .iter()
        .filter(|&&(bit, _)| state & bit != 0)
        .map(|&(_, name)| name.to_owned())
        .collect();
    for stage in 0..STAGES {
        let bits = [
            (started(stage), "started"),
            (finished(stage), "returned"),
            (panicked(stage), "panicked"),
            (failed(stage), "failed"),
        ];
        for (bit, name) in bits {
            if state & bit != 0 {
                names.push(format!("{name}@{stage}"));
            }
        }
    }
    format!("[{}]", names.join(" "))
}

/// Checks every front door shares: the job was released, was either
/// accepted or handed back, did not run after being handed back, and ended
/// every stage it started. Returns 1 if the job is unaccounted for.
fn common_checks(found: &mut Vec<String>, id: usize, s: u32) -> u64 {
    let mut lost = 0;
    if s & RELEASED == 0 {
        lost = 1;
        found.push(format!(
            "job {id} leaked: its closure or item was neither run to the end nor dropped {}",
            describe(s)
        ));
    }
    if (s & ACCEPTED != 0) == (s & HANDED_BACK != 0) {
        lost = 1;
        found.push(format!(
            "job {id} must be exactly one of accepted or handed back {}",
            describe(s)
        ));
    }
    let any_start = (0..STAGES).fold(0, |bits, stage| bits | started(stage));
    if s & HANDED_BACK != 0 && s & any_start != 0 {
        found.push(format!(
            "job {id} ran although its submit call handed it back {}",
            describe(s)
        ));
    }
    for stage in 0..STAGES {
        if s & started(stage) != 0 && s & (finished(stage) | panicked(stage)) == 0 {
            found.push(format!(
                "job {id} started stage {stage} but never returned or panicked {}",
                describe(s)
            ));
        }
    }
    lost
}

/// Panics with every violation found (and the round's plan), or returns
/// the tally.
fn conclude(plan: &dyn fmt::Debug, ledger: &Ledger, mut found: Vec<String>, tally: Tally) -> Tally {
    found.append(&mut ledger.violations.lock());
    if !found.is_empty() {
        let shown: Vec<&str> = found.iter().take(20).map(String::as_str).collect();
        panic!(
            "{} violation(s), the first {}:\n  {}\n{tally}\n{plan:#?}",
            found.len(),
            shown.len(),
            shown.join("\n  ")
        );
    }
    tally
}

// -------------------------------------------------------------------- work

/// What one job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    Instant,
    Micros(u64),
    Millis(u64),
    /// Sleeps on its context well past the per-job timeout, so it returns
    /// at the deadline (or earlier, on a cancel).
    Overrun,
    Panic,
    /// Returns its planned error (`false` from [`perform`]).
    Fail,
}

/// How often each kind of work comes up, per 10,000 jobs.
#[derive(Debug, Clone, Copy)]
struct Mix {
    panic: u64,
    fail: u64,
    overrun: u64,
    millis: u64,
    micros: u64,
}

impl Mix {
    /// A random mix; panics and failures each at one of `failure_rates`.
    fn random(rng: &mut SplitMix64, failure_rates: &[u64], overrun: bool) -> Self {
        Self {
            panic: pick(rng, failure_rates),
            fail: pick(rng, failure_rates),
            overrun: if overrun { rng.below(200) } else { 0 },
            millis: rng.below(100),
            micros: 1000 + rng.below(3000),
        }
    }

    fn pick(&self, rng: &mut SplitMix64) -> Work {
        let mut roll = rng.below(10_000);
        let rare = [
            (self.panic, Work::Panic),
            (self.fail, Work::Fail),
            (self.overrun, Work::Overrun),
            (self.millis, Work::Millis(1)),
        ];
        for (share, work) in rare {
            if roll < share {
                return work;
            }
            roll -= share;
        }
        if roll < self.micros {
            Work::Micros(1 + rng.below(50))
        } else {
            Work::Instant
        }
    }
}

/// The body of every job and pipeline stage: records the start, does the
/// planned work, and records how it ended. Returns `false` for a planned
/// failure.
fn perform(
    token: &Token,
    work: Work,
    stage: usize,
    ctx: Option<&Context>,
    timeout: Option<Duration>,
) -> bool {
    let (ledger, id) = (&*token.ledger, token.id);
    let _running = ledger.start(id, stage);
    match work {
        Work::Instant | Work::Fail => {}
        Work::Micros(n) => nap(ctx, Duration::from_micros(n)),
        Work::Millis(n) => nap(ctx, Duration::from_millis(n)),
        Work::Overrun => match (ctx, timeout) {
            (Some(ctx), Some(timeout)) => {
                if ctx.sleep(timeout * 4) == Err(Cancelled::DeadlineExceeded) {
                    ledger.mark(id, SAW_DEADLINE);
                }
            }
            _ => nap(ctx, Duration::from_millis(1)),
        },
        Work::Panic => {
            ledger.mark(id, panicked(stage));
            panic!("{}", planned_message(id, stage));
        }
    }
    if ctx.is_some_and(Context::is_done) {
        ledger.mark(id, SAW_DONE);
    }
    let ok = work != Work::Fail;
    ledger.mark(id, finished(stage) | if ok { 0 } else { failed(stage) });
    ok
}

/// The job's own work: a sleep that wakes early on cancellation when the
/// job has a context.
fn nap(ctx: Option<&Context>, duration: Duration) {
    match ctx {
        Some(ctx) => {
            let _ = ctx.sleep(duration);
        }
        None => thread::sleep(duration),
    }
}

// -------------------------------------------------------------------- feed

/// What a submit call did with a job.
enum Offer<T> {
    Accepted(T),
    /// Handed back for good (closed or cancelled); go on with the next job.
    Refused,
    /// The pool is gone; stop submitting.
    Gone,
}

/// The submitters' shared counters, and the shutdown moment: a gate that
/// opens once `at` jobs were accepted, or once every submitter is done.
struct Feed {
    at: usize,
    accepted: AtomicUsize,
    submitters_left: AtomicUsize,
    moment: Gate,
    resubmitted: AtomicU64,
}

impl Feed {
    fn new(at: usize, submitters: usize) -> Self {
        let moment = Gate::new();
        if at == 0 {
            moment.open();
        }
        Self {
            at,
            accepted: AtomicUsize::new(0),
            submitters_left: AtomicUsize::new(submitters),
            moment,
            resubmitted: AtomicU64::new(0),
        }
    }

    fn accept(&self, ledger: &Ledger, id: usize) {
        ledger.mark(id, ACCEPTED);
        if self.accepted.fetch_add(1, SeqCst) + 1 == self.at {
            self.moment.open();
        }
    }

    /// A job came back from a full queue and is about to be offered again.
    fn retry(&self) {
        self.resubmitted.fetch_add(1, SeqCst);
        thread::yield_now();
    }

    /// The submitter gives up on a job a submit call handed back.
    /// What one submit attempt's `result` means for job `id`: accepted,
    /// or handed back for good (closed, cancelled) — or, after a full
    /// queue, the job back (`Err`) to offer again.
    fn settle<J, T>(
        &self,
        ledger: &Ledger,
        id: usize,
        result: Result<T, TrySubmitError<J>>,
    ) -> Result<Offer<T>, J> {
        match result {
            Ok(accepted) => {
                self.accept(ledger, id);
                Ok(Offer::Accepted(accepted))
            }
            Err(err @ TrySubmitError::Full(_)) => {
                self.retry();
                Err(err.into_inner())
            }
            Err(err) => Ok(self.hand_back(ledger, id, err.into_inner(), Offer::Refused)),
        }
    }

    fn hand_back<J, T>(&self, ledger: &Ledger, id: usize, job: J, offer: Offer<T>) -> Offer<T> {
        ledger.mark(id, HANDED_BACK);
        drop(job);
        offer
    }

    /// Counts a submitter out when dropped, even if it panics.
    fn submitter(&self) -> SubmitterDone<'_> {
        SubmitterDone(self)
    }
}

struct SubmitterDone<'a>(&'a Feed);

impl Drop for SubmitterDone<'_> {
    fn drop(&mut self) {
        if self.0.submitters_left.fetch_sub(1, SeqCst) == 1 {
            self.0.moment.open();
        }
    }
}

/// Live resizes during a round: submitter 0 calls `set_workers` with the
/// next target every `every` of its jobs, racing the other submitters, the
/// workers and the round's end.
#[derive(Debug)]
struct Resizes {
    targets: Vec<usize>,
    every: usize,
    /// The last target applied: the size a settled, uncancelled pool has.
    size: AtomicUsize,
    /// The largest size the pool was ever asked for: the most jobs that
    /// may run at once.
    most: AtomicUsize,
}

impl Resizes {
    /// No resizes in a third of the rounds; otherwise 1-8 targets of 1-6
    /// workers, spread over submitter 0's share of `jobs`.
    fn random(rng: &mut SplitMix64, workers: usize, jobs: usize, submitters: usize) -> Self {
        let count = if rng.below(3) == 0 {
            0
        } else {
            1 + rng.below(8) as usize
        };
        let targets: Vec<usize> = (0..count).map(|_| 1 + rng.below(6) as usize).collect();
        Self {
            every: (jobs / submitters / (count + 1)).max(1),
            targets,
            size: AtomicUsize::new(workers),
            most: AtomicUsize::new(workers),
        }
    }

    /// Before submitter 0's `done`-th job: resizes through `set` if one is
    /// due. `set` returns false when the pool is already gone.
    fn before_job(&self, submitter: usize, done: usize, set: impl FnOnce(usize) -> bool) {
        if submitter != 0 || done == 0 || done % self.every != 0 {
            return;
        }
        let Some(&target) = self.targets.get(done / self.every - 1) else {
            return;
        };
        // Raised first: a grown pool may run more jobs at once straight away.
        self.most.fetch_max(target, SeqCst);
        if set(target) {
            self.size.store(target, SeqCst);
        }
    }

    fn size(&self) -> usize {
        self.size.load(SeqCst)
    }

    fn most(&self) -> usize {
        self.most.load(SeqCst)
    }
}

// ------------------------------------------------------------------- tally

/// What rounds did, summed for the report.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    rounds: u64,
    jobs: u64,
    accepted: u64,
    ran: u64,
    panicked: u64,
    overran: u64,
    never_ran: u64,
    handed_back: u64,
    resubmitted: u64,
    lost: u64,
    run_twice: u64,
}

impl Tally {
    /// A round's tally from its ledger; `ran` counts stage 0 starts.
    fn of(ledger: &Ledger, feed: &Feed, lost: u64) -> Self {
        let accepted = ledger.count(|s| s & ACCEPTED != 0);
        let ran = ledger.count(|s| s & ACCEPTED != 0 && s & started(0) != 0);
        Self {
            rounds: 1,
            jobs: ledger.count(|s| s & CREATED != 0),
            accepted,
            ran,
            panicked: ledger.count(|s| (0..STAGES).any(|stage| s & panicked(stage) != 0)),
            overran: ledger.count(|s| s & SAW_DEADLINE != 0),
            never_ran: accepted - ran,
            handed_back: ledger.count(|s| s & HANDED_BACK != 0),
            resubmitted: feed.resubmitted.load(SeqCst),
            lost,
            run_twice: ledger.run_twice.load(SeqCst),
        }
    }
}

impl AddAssign for Tally {
    fn add_assign(&mut self, other: Self) {
        self.rounds += other.rounds;
        self.jobs += other.jobs;
        self.accepted += other.accepted;
        self.ran += other.ran;
        self.panicked += other.panicked;
        self.overran += other.overran;
        self.never_ran += other.never_ran;
        self.handed_back += other.handed_back;
        self.resubmitted += other.resubmitted;
        self.lost += other.lost;
        self.run_twice += other.run_twice;
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} rounds, {} jobs: {} accepted, {} ran ({} panicked, {} overran their \
             timeout), {} never ran, {} handed back ({} resubmissions after Full), \
             lost {}, run twice {}",
            self.rounds,
            self.jobs,
            self.accepted,
            self.ran,
            self.panicked,
            self.overran,
            self.never_ran,
            self.handed_back,
            self.resubmitted,
            self.lost,
            self.run_twice
        )
    }
}

// ---------------------------------------------------------------- outcomes

/// How an accepted job ended, as its handle or output and the ledger say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Completed,
    Panicked,
    TimedOut,
    /// Ran, but its context was cancelled before it returned.
    Interrupted,
    /// Ran; its outcome was dropped with its pool (a `WorkerPool` dropped
    /// with outputs undelivered).
    RanUnseen,
    NeverRan,
    Unknown,
}

/// What the ledger says a pool's counters must be.
#[derive(Debug, Default)]
struct Expect {
    submitted: u64,
    completed: u64,
    panicked: u64,
    timed_out: u64,
    interrupted: u64,
    ran_unseen: u64,
    never_ran: u64,
}

impl Expect {
    fn add(&mut self, class: Class) {
        match class {
            Class::Completed => self.completed += 1,
            Class::Panicked => self.panicked += 1,
            Class::TimedOut => self.timed_out += 1,
            Class::Interrupted => self.interrupted += 1,
            Class::RanUnseen => self.ran_unseen += 1,
            Class::NeverRan => self.never_ran += 1,
            Class::Unknown => {}
        }
    }

    fn ran(&self) -> u64 {
        self.completed + self.panicked + self.timed_out + self.interrupted + self.ran_unseen
    }

    /// Whether every ran job's outcome is known.
    fn exact(&self) -> bool {
        self.ran_unseen == 0
    }
}

/// Classifies a job's reported `result` and checks it against its ledger
/// state `s`.
fn classify(
    found: &mut Vec<String>,
    id: usize,
    s: u32,
    result: &Result<bool, JobError>,
    has_timeout: bool,
) -> Class {
    let ran = s & started(0) != 0;
    let returned = s & finished(0) != 0;
    let (class, agrees) = match result {
        Ok(value) => (
            Class::Completed,
            returned && s & SAW_DONE == 0 && *value == (s & failed(0) == 0),
        ),
        Err(JobError::Panicked(message)) => (
            Class::Panicked,
            s & panicked(0) != 0 && *message == planned_message(id, 0),
        ),
        Err(JobError::TimedOut) => (Class::TimedOut, has_timeout && returned),
        Err(JobError::Cancelled(_)) if !ran => (Class::NeverRan, true),
        Err(JobError::Cancelled(_)) => (Class::Interrupted, returned),
        Err(_) => (Class::Unknown, false),
    };
    if !agrees {
        found.push(format!(
            "job {id}: reported {result:?}, but the ledger says {}",
            describe(s)
        ));
    }
    if s & SAW_DEADLINE != 0 && class != Class::TimedOut {
        found.push(format!(
            "job {id} saw its own deadline pass, yet was reported {result:?}"
        ));
    }
    class
}

/// Waits until the pool is quiescent (and, with `workers`, back at full
/// size with every panicked worker replaced); returns that snapshot.
fn settle(
    found: &mut Vec<String>,
    stats: impl Fn() -> Stats,
    workers: Option<usize>,
) -> Option<Stats> {
    let mut last = stats();
    let settled = wait_until(LONG, || {
        last = stats();
        let quiet = last.queued == 0
            && last.busy == 0
            && last.submitted == last.completed + last.failed + last.cancelled;
        quiet && workers.is_none_or(|n| last.workers == n && last.respawned == last.panicked)
    });
    if settled {
        Some(last)
    } else {
        found.push(format!(
            "the pool did not settle within {LONG:?} (want {workers:?} workers): {last}"
        ));
        None
    }
}

fn check_stats(found: &mut Vec<String>, stats: &Stats, want: &Expect) {
    let mut check = |field: &str, got: u64, expected: u64| {
        if got != expected {
            found.push(format!(
                "Stats.{field} is {got}, the ledger says {expected} ({stats}; ledger {want:?})"
            ));
        }
    };
    check("submitted", stats.submitted, want.submitted);
    check(
        "completed + failed",
        stats.completed + stats.failed,
        want.ran(),
    );
    check("cancelled", stats.cancelled, want.never_ran);
    check("panicked", stats.panicked, want.panicked);
    check("queued", stats.queued as u64, 0);
    check("busy", stats.busy as u64, 0);
    if want.exact() {
        check("completed", stats.completed, want.completed);
        check("timed_out", stats.timed_out, want.timed_out);
        let failed = want.panicked + want.timed_out + want.interrupted;
        check("failed", stats.failed, failed);
    }
}

fn check_report(found: &mut Vec<String>, report: &ShutdownReport, want: &Expect) {
    let mut check = |field: &str, got: u64, expected: u64| {
        if got != expected {
            found.push(format!(
                "ShutdownReport.{field} is {got}, the ledger says {expected} ({report:?}; ledger {want:?})"
            ));
        }
    };
    check(
        "ran + never_ran",
        report.ran + report.never_ran,
        report.submitted,
    );
    check("submitted", report.submitted, want.submitted);
    check("ran", report.ran, want.ran());
    check("never_ran", report.never_ran, want.never_ran);
    if want.exact() {
        check("completed", report.completed, want.completed);
    }
}

// -------------------------------------------------------------- ThreadPool

/// How a `ThreadPool` round ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PoolEnd {
    Join,
    ShutdownNow,
    ShutdownTimeout(Duration),
    Drop,
    /// Cancel the parent context mid-run; shut down after the submitters.
    CancelParent,
    /// Cancel the pool's own context mid-run; shut down after the submitters.
    CancelPool,
}

impl PoolEnd {
    /// A random end; only the ones that consume the pool if `consuming`.
    fn random(rng: &mut SplitMix64, consuming: bool) -> Self {
        let ends = [
            Self::Join,
            Self::ShutdownNow,
            Self::ShutdownTimeout(Duration::from_micros(rng.below(5_000))),
            Self::Drop,
            Self::CancelParent,
            Self::CancelPool,
        ];
        ends[rng.below(if consuming { 4 } else { 6 }) as usize]
    }
}

#[derive(Debug)]
struct PoolPlan {
    seed: u64,
    jobs: usize,
    submitters: usize,
    workers: usize,
    queue: usize,
    job_timeout: Option<Duration>,
    policy: PanicPolicy,
    mix: Mix,
    /// Per 1,000 jobs: fire-and-forget through `execute` / `try_execute`.
    execute: u64,
    /// Per 1,000 submits: cancel this or a recent handle.
    cancel: u64,
    end: PoolEnd,
    /// For the cancelling ends: the shutdown after the submitters.
    then: PoolEnd,
    /// Accepted jobs before the end begins.
    trigger_at: usize,
    /// Wait for quiescence and check `Stats` before a consuming end.
    settle_first: bool,
    resizes: Resizes,
}

impl PoolPlan {
    fn new(seed: u64, jobs: usize) -> Self {
        let mut rng = SplitMix64(seed);
        let job_timeout = (rng.below(10) < 7).then(|| Duration::from_millis(2 + rng.below(4)));
        let submitters = 2 + rng.below(3) as usize;
        let workers = 1 + rng.below(4) as usize;
        Self {
            seed,
            jobs,
            submitters,
            workers,
            resizes: Resizes::random(&mut rng, workers, jobs, submitters),
            queue: pick(&mut rng, &[0, 1, 2, 4, 16, 64]),
            job_timeout,
            policy: if rng.below(8) == 0 {
                PanicPolicy::CancelPool
            } else {
                PanicPolicy::Respawn
            },
            mix: Mix::random(&mut rng, &[0, 20, 50, 150], job_timeout.is_some()),
            execute: rng.below(300),
            cancel: rng.below(100),
            end: PoolEnd::random(&mut rng, false),
            then: PoolEnd::random(&mut rng, true),
            trigger_at: rng.below(jobs as u64 + 1) as usize,
            settle_first: rng.below(2) == 0,
        }
    }

    fn build(&self, name: &str, parent: &Context) -> ThreadPool {
        let builder = ThreadPool::builder()
            .workers(self.workers)
            .queue_capacity(self.queue)
            .thread_name(name)
            .context(parent)
            .panic_policy(self.policy);
        let builder = match self.job_timeout {
            Some(timeout) => builder.job_timeout(timeout),
            None => builder,
        };
        builder.build().expect("the plan's pool settings are valid")
    }
}

/// What the end of a `ThreadPool` round observed.
#[derive(Default)]
struct Ending {
    /// The pool's context (or its parent's) was cancelled mid-run.
    cancelled: bool,
    stats: Option<Stats>,
    report: Option<ShutdownReport>,
}

struct PoolRound<'a> {
    plan: &'a PoolPlan,
    ledger: Arc<Ledger>,
    /// The pool, shared with the submitters until an end takes it.
    slot: RwLock<Option<ThreadPool>>,
    feed: Feed,
}

fn pool_round(seed: u64, jobs: usize) -> Tally {
    let plan = PoolPlan::new(seed, jobs);
    let name = unique_name("ctp");
    let parent = Context::new();
    let round = PoolRound {
        plan: &plan,
        ledger: Ledger::new(jobs),
        slot: RwLock::new(Some(plan.build(&name, &parent))),
        feed: Feed::new(plan.trigger_at, plan.submitters),
    };
    let mut ending = Ending::default();
    let mut found = Vec::new();
    let handles = thread::scope(|s| {
        let round = &round;
        let submitters = split(jobs, plan.submitters)
            .into_iter()
            .enumerate()
            .map(|(index, ids)| s.spawn(move || round.submitter(index, ids)))
            .collect();
        round.feed.moment.wait();
        round.end_mid_run(&parent, &mut ending, &mut found);
        join_all(submitters)
    });
    // The cancelling ends leave the pool in place until the submitters are done.
    let remaining = round.slot.write().take();
    let results = join_handles(&mut found, handles, remaining.is_none());
    if let Some(pool) = remaining {
        round.finish(pool, plan.then, &mut ending, &mut found);
    }
    check_no_threads(&mut found, &name);
    round.reconcile(found, &results, &ending)
}

/// Joins every handle; with `pool_gone`, each must already be finished.
fn join_handles(
    found: &mut Vec<String>,
    handles: Vec<(usize, JobHandle<bool>)>,
    pool_gone: bool,
) -> Vec<(usize, Result<bool, JobError>)> {
    handles
        .into_iter()
        .map(|(id, mut handle)| {
            if pool_gone && !handle.is_finished() {
                found.push(format!(
                    "job {id}: its handle is not finished after its pool shut down"
                ));
            }
            let result = handle
                .join_timeout(LONG)
                .unwrap_or_else(|| panic!("job {id}: its handle did not finish within {LONG:?}"));
            (id, result)
        })
        .collect()
}

impl PoolRound<'_> {
    fn submitter(&self, index: usize, ids: Range<usize>) -> Vec<(usize, JobHandle<bool>)> {
        let _done = self.feed.submitter();
        let mut rng = submitter_rng(self.plan.seed, index);
        let mut handles = Vec::new();
        for (done, id) in ids.enumerate() {
            self.plan.resizes.before_job(index, done, |target| {
                self.slot.read().as_ref().is_some_and(|pool| {
                    pool.set_workers(target).expect("resize targets are valid");
                    true
                })
            });
            let token = self.ledger.token(id);
            let work = self.plan.mix.pick(&mut rng);
            let offer = if rng.below(1000) < self.plan.execute {
                let job = move || {
                    perform(&token, work, 0, None, None);
                };
                self.offer_execute(id, job, &mut rng)
            } else {
                let timeout = self.plan.job_timeout;
                let job = move |ctx: &Context| perform(&token, work, 0, Some(ctx), timeout);
                match self.offer(id, job, &mut rng) {
                    Offer::Accepted(handle) => {
                        handles.push((id, handle));
                        self.maybe_cancel(&handles, &mut rng);
                        Offer::Accepted(())
                    }
                    Offer::Refused => Offer::Refused,
                    Offer::Gone => Offer::Gone,
                }
            };
            if matches!(offer, Offer::Gone) {
                break;
            }
        }
        handles
    }

    /// Submits through a random member of the submit family, resubmitting
    /// what a full queue hands back.
    fn offer<F>(&self, id: usize, mut job: F, rng: &mut SplitMix64) -> Offer<JobHandle<bool>>
    where
        F: FnOnce(&Context) -> bool + Send + 'static,
    {
        for attempt in 0.. {
            let slot = self.slot.read();
            let Some(pool) = slot.as_ref() else {
                drop(slot);
                return self.feed.hand_back(&self.ledger, id, job, Offer::Gone);
            };
            let method = if attempt >= PATIENCE { 0 } else { rng.below(3) };
            let result = match method {
                0 => pool.submit(job).map_err(TrySubmitError::from),
                1 => pool.try_submit(job),
                _ => pool.submit_timeout(job, Duration::from_micros(rng.below(300))),
            };
            drop(slot);
            match self.feed.settle(&self.ledger, id, result) {
                Ok(offer) => return offer,
                Err(again) => job = again,
            }
        }
        unreachable!("the attempts never run out")
    }

    /// As [`offer`](Self::offer), for fire-and-forget closures.
    fn offer_execute<F>(&self, id: usize, mut job: F, rng: &mut SplitMix64) -> Offer<()>
    where
        F: FnOnce() + Send + 'static,
    {
        for attempt in 0.. {
            let slot = self.slot.read();
            let Some(pool) = slot.as_ref() else {
                drop(slot);
                return self.feed.hand_back(&self.ledger, id, job, Offer::Gone);
            };
            let result = if attempt >= PATIENCE || rng.below(2) == 0 {
                pool.execute(job).map_err(TrySubmitError::from)
            } else {
                pool.try_execute(job)
            };
            drop(slot);
            match self.feed.settle(&self.ledger, id, result) {
                Ok(offer) => return offer,
                Err(again) => job = again,
            }
        }
        unreachable!("the attempts never run out")
    }

    /// Now and then cancels the newest handle or one of the few before it.
    fn maybe_cancel(&self, handles: &[(usize, JobHandle<bool>)], rng: &mut SplitMix64) {
        if rng.below(1000) < self.plan.cancel {
            let back = rng.below(handles.len().min(4) as u64) as usize;
            let (id, handle) = &handles[handles.len() - 1 - back];
            self.ledger.mark(*id, CANCEL_ASKED);
            handle.cancel();
        }
    }

    /// The planned end, at the moment: cancel, or take the pool away from
    /// the submitters and shut it down.
    fn end_mid_run(&self, parent: &Context, ending: &mut Ending, found: &mut Vec<String>) {
        match self.plan.end {
            PoolEnd::CancelParent => {
                ending.cancelled = true;
                parent.cancel();
            }
            PoolEnd::CancelPool => {
                ending.cancelled = true;
                if let Some(pool) = &*self.slot.read() {
                    pool.context().cancel();
                }
            }
            end => {
                let taken = self.slot.write().take();
                if let Some(pool) = taken {
                    self.finish(pool, end, ending, found);
                }
            }
        }
    }

    /// Shuts the pool down by `end`, first settling it and reading its
    /// stats if planned (or after a cancel).
    fn finish(&self, pool: ThreadPool, end: PoolEnd, ending: &mut Ending, found: &mut Vec<String>) {
        if self.plan.settle_first || ending.cancelled {
            let full = !ending.cancelled && self.plan.policy == PanicPolicy::Respawn;
            let size = self.plan.resizes.size();
            ending.stats = settle(found, || pool.stats(), full.then_some(size));
        }
        match end {
            PoolEnd::Join => pool.join(),
            PoolEnd::ShutdownNow => ending.report = Some(pool.shutdown_now()),
            PoolEnd::ShutdownTimeout(timeout) => {
                ending.report = Some(pool.shutdown_timeout(timeout));
            }
            PoolEnd::Drop | PoolEnd::CancelParent | PoolEnd::CancelPool => drop(pool),
        }
    }

    fn reconcile(
        &self,
        mut found: Vec<String>,
        results: &[(usize, Result<bool, JobError>)],
        ending: &Ending,
    ) -> Tally {
        let plan = self.plan;
        let panics = self.ledger.count(|s| s & panicked(0) != 0);
        let cancelled = ending.cancelled
            || ending.report.is_some_and(|report| !report.drained)
            || (plan.policy == PanicPolicy::CancelPool && panics > 0);
        let mut handle_results: Vec<Option<&Result<bool, JobError>>> = vec![None; plan.jobs];
        for (id, result) in results {
            handle_results[*id] = Some(result);
        }
        let mut want = Expect::default();
        let mut lost = 0;
        for (id, result) in handle_results.into_iter().enumerate() {
            let s = self.ledger.state(id);
            if s & CREATED == 0 {
                continue;
            }
            lost += common_checks(&mut found, id, s);
            if s & ACCEPTED == 0 {
                continue;
            }
            want.submitted += 1;
            let class = match result {
                Some(result) => classify(&mut found, id, s, result, plan.job_timeout.is_some()),
                None if s & started(0) == 0 => Class::NeverRan,
                None if s & panicked(0) != 0 => Class::Panicked,
                None => Class::Completed,
            };
            let excused = cancelled || s & CANCEL_ASKED != 0;
            if matches!(class, Class::NeverRan | Class::Interrupted) && !excused {
                found.push(format!(
                    "job {id} is {class:?} although nothing cancelled it {}",
                    describe(s)
                ));
            }
            want.add(class);
        }
        if self.ledger.peak(0) > plan.resizes.most() {
            found.push(format!(
                "{} jobs ran at once on at most {} workers",
                self.ledger.peak(0),
                plan.resizes.most()
            ));
        }
        if let Some(stats) = &ending.stats {
            check_stats(&mut found, stats, &want);
            if plan.policy == PanicPolicy::CancelPool && stats.respawned != 0 {
                found.push(format!("CancelPool respawned workers: {stats}"));
            }
        }
        if let Some(report) = &ending.report {
            check_report(&mut found, report, &want);
        }
        let tally = Tally::of(&self.ledger, &self.feed, lost);
        conclude(plan, &self.ledger, found, tally)
    }
}

// -------------------------------------------------------------- WorkerPool

/// How a `WorkerPool` round ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WorkerEnd {
    /// Let the submitters finish, then `join` (close and drain).
    Finish,
    /// `close()` mid-run, then `join`.
    Close,
    /// `stop()` mid-run, then `join`.
    Stop,
    /// Cancel the parent context mid-run, then `join`.
    CancelParent,
    /// Cancel the pool's own context mid-run, then `join`.
    CancelOwn,
    /// Stop the submitters mid-run, then drop the pool.
    Drop,
}

impl WorkerEnd {
    fn cancels(self) -> bool {
        matches!(
            self,
            Self::Stop | Self::CancelParent | Self::CancelOwn | Self::Drop
        )
    }
}

#[derive(Debug)]
struct WorkerPlan {
    seed: u64,
    jobs: usize,
    submitters: usize,
    workers: usize,
    queue: usize,
    results: usize,
    job_timeout: Option<Duration>,
    policy: PanicPolicy,
    mix: Mix,
    ordered: bool,
    end: WorkerEnd,
    trigger_at: usize,
    settle_first: bool,
    resizes: Resizes,
}

/// A `WorkerPool` job.
struct WJob {
    token: Token,
    work: Work,
}

impl WorkerPlan {
    fn new(seed: u64, jobs: usize) -> Self {
        let mut rng = SplitMix64(seed);
        let job_timeout = (rng.below(10) < 7).then(|| Duration::from_millis(2 + rng.below(4)));
        let ends = [
            WorkerEnd::Finish,
            WorkerEnd::Close,
            WorkerEnd::Stop,
            WorkerEnd::CancelParent,
            WorkerEnd::CancelOwn,
            WorkerEnd::Drop,
        ];
        let submitters = 2 + rng.below(3) as usize;
        let workers = 1 + rng.below(4) as usize;
        Self {
            seed,
            jobs,
            submitters,
            workers,
            resizes: Resizes::random(&mut rng, workers, jobs, submitters),
            queue: pick(&mut rng, &[0, 1, 2, 4, 16, 64]),
            results: pick(&mut rng, &[0, 1, 4, 64]),
            job_timeout,
            policy: if rng.below(8) == 0 {
                PanicPolicy::CancelPool
            } else {
                PanicPolicy::Respawn
            },
            mix: Mix::random(&mut rng, &[0, 20, 50, 150], job_timeout.is_some()),
            ordered: rng.below(10) < 3,
            end: pick(&mut rng, &ends),
            trigger_at: rng.below(jobs as u64 + 1) as usize,
            settle_first: rng.below(2) == 0,
        }
    }

    fn build(&self, name: &str, parent: &Context) -> WorkerPool<WJob, bool> {
        let builder = WorkerPool::builder()
            .workers(self.workers)
            .queue_capacity(self.queue)
            .results_capacity(self.results)
            .thread_name(name)
            .context(parent)
            .panic_policy(self.policy);
        let builder = match self.job_timeout {
            Some(timeout) => builder.job_timeout(timeout),
            None => builder,
        };
        let builder = if self.ordered {
            builder.ordered()
        } else {
            builder
        };
        let timeout = self.job_timeout;
        builder
            .build(move |ctx: &Context, job: WJob| {
                perform(&job.token, job.work, 0, Some(ctx), timeout)
            })
            .expect("the plan's pool settings are valid")
    }
}

struct WorkerRound<'a> {
    plan: &'a WorkerPlan,
    ledger: Arc<Ledger>,
    feed: Feed,
    /// Set by the `Drop` end: submitters stop taking new jobs.
    quit: AtomicBool,
}

/// What the consumer read, and whether the results channel disconnected.
struct Consumed {
    outputs: Vec<Output<bool>>,
    disconnected: bool,
}

/// Where one accepted `WorkerPool` job ended up.
enum Fate {
    Unseen,
    Ran(Result<bool, JobError>),
    Unprocessed,
}

fn worker_round(seed: u64, jobs: usize) -> Tally {
    let plan = WorkerPlan::new(seed, jobs);
    let name = unique_name("cwp");
    let parent = Context::new();
    let pool = plan.build(&name, &parent);
    let round = WorkerRound {
        plan: &plan,
        ledger: Ledger::new(jobs),
        feed: Feed::new(plan.trigger_at, plan.submitters),
        quit: AtomicBool::new(false),
    };
    let consumer = consume(pool.results().clone());
    let indices = thread::scope(|s| {
        let (round, pool) = (&round, &pool);
        let submitters = split(jobs, plan.submitters)
            .into_iter()
            .enumerate()
            .map(|(index, ids)| s.spawn(move || round.submitter(pool, index, ids)))
            .collect();
        round.feed.moment.wait();
        round.end_mid_run(pool, &parent);
        join_all(submitters)
    });
    let mut found = Vec::new();
    let stats = (plan.settle_first || plan.end.cancels() && plan.end != WorkerEnd::Drop)
        .then(|| {
            // Closed or cancelled, the workers leave; otherwise every
            // panicked one is replaced and the pool is back at full size.
            let open = matches!(plan.end, WorkerEnd::Finish | WorkerEnd::Drop);
            let full = open && plan.policy == PanicPolicy::Respawn;
            settle(
                &mut found,
                || pool.stats(),
                full.then_some(plan.resizes.size()),
            )
        })
        .flatten();
    let leftovers = if plan.end == WorkerEnd::Drop {
        drop(pool);
        None
    } else {
        Some(pool.join())
    };
    let consumed = consumer
        .join()
        .unwrap_or_else(|payload| panic::resume_unwind(payload));
    check_no_threads(&mut found, &name);
    round.reconcile(found, &indices, consumed, leftovers, stats)
}

/// Reads `results` on its own thread until it disconnects, or until it has
/// been silent for [`LONG`].
fn consume(results: Receiver<Output<bool>>) -> thread::JoinHandle<Consumed> {
    thread::spawn(move || {
        let mut outputs = Vec::new();
        loop {
            match results.recv_timeout(LONG) {
                Ok(output) => outputs.push(output),
                Err(RecvTimeoutError::Disconnected) => {
                    return Consumed {
                        outputs,
                        disconnected: true,
                    };
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Consumed {
                        outputs,
                        disconnected: false,
                    };
                }
            }
        }
    })
}

impl WorkerRound<'_> {
    fn submitter(
        &self,
        pool: &WorkerPool<WJob, bool>,
        index: usize,
        ids: Range<usize>,
    ) -> Vec<(u64, usize)> {
        let _done = self.feed.submitter();
        let mut rng = submitter_rng(self.plan.seed, index);
        let mut indices = Vec::new();
        for (done, id) in ids.enumerate() {
            if self.quit.load(SeqCst) {
                break;
            }
            self.plan.resizes.before_job(index, done, |target| {
                pool.set_workers(target).expect("resize targets are valid");
                true
            });
            let job = WJob {
                token: self.ledger.token(id),
                work: self.plan.mix.pick(&mut rng),
            };
            if let Offer::Accepted(index) = self.offer(pool, id, job, &mut rng) {
                indices.push((index, id));
            }
        }
        indices
    }

    fn offer(
        &self,
        pool: &WorkerPool<WJob, bool>,
        id: usize,
        mut job: WJob,
        rng: &mut SplitMix64,
    ) -> Offer<u64> {
        for attempt in 0.. {
            let method = if attempt >= PATIENCE { 0 } else { rng.below(3) };
            let result = match method {
                0 => pool.submit(job).map_err(TrySubmitError::from),
                1 => pool.try_submit(job),
                _ => pool.submit_timeout(job, Duration::from_micros(rng.below(300))),
            };
            match self.feed.settle(&self.ledger, id, result) {
                Ok(offer) => return offer,
                Err(again) => job = again,
            }
        }
        unreachable!("the attempts never run out")
    }

    fn end_mid_run(&self, pool: &WorkerPool<WJob, bool>, parent: &Context) {
        match self.plan.end {
            WorkerEnd::Finish => {}
            WorkerEnd::Close => pool.close(),
            WorkerEnd::Stop => pool.stop(),
            WorkerEnd::CancelParent => parent.cancel(),
            WorkerEnd::CancelOwn => pool.context().cancel(),
            WorkerEnd::Drop => self.quit.store(true, SeqCst),
        }
    }

    fn reconcile(
        &self,
        mut found: Vec<String>,
        indices: &[(u64, usize)],
        consumed: Consumed,
        leftovers: Option<Leftovers<WJob, bool>>,
        stats: Option<Stats>,
    ) -> Tally {
        let plan = self.plan;
        let by_index = index_map(&mut found, indices);
        let mut fates: Vec<Fate> = (0..plan.jobs).map(|_| Fate::Unseen).collect();
        if !consumed.disconnected {
            found.push(format!(
                "the results channel was silent for {LONG:?} without disconnecting"
            ));
        }
        if plan.ordered {
            check_in_order(&mut found, &consumed.outputs);
        }
        for output in consumed.outputs {
            record_fate(
                &mut found,
                &by_index,
                &mut fates,
                output.index,
                Fate::Ran(output.result),
            );
        }
        if let Some(leftovers) = leftovers {
            self.record_leftovers(&mut found, &by_index, &mut fates, leftovers);
        }
        let panics = self.ledger.count(|s| s & panicked(0) != 0);
        let cancelled =
            plan.end.cancels() || (plan.policy == PanicPolicy::CancelPool && panics > 0);
        let mut want = Expect::default();
        let mut lost = 0;
        for (id, fate) in fates.iter().enumerate() {
            let s = self.ledger.state(id);
            if s & CREATED == 0 {
                continue;
            }
            lost += common_checks(&mut found, id, s);
            if s & ACCEPTED == 0 {
                continue;
            }
            want.submitted += 1;
            let class = self.fate_class(&mut found, id, s, fate, &mut lost);
            if matches!(class, Class::NeverRan | Class::Interrupted) && !cancelled {
                found.push(format!(
                    "job {id} is {class:?} although nothing cancelled the pool {}",
                    describe(s)
                ));
            }
            want.add(class);
        }
        if self.ledger.peak(0) > plan.resizes.most() {
            found.push(format!(
                "{} jobs ran at once on at most {} workers",
                self.ledger.peak(0),
                plan.resizes.most()
            ));
        }
        if let Some(stats) = &stats {
            check_stats(&mut found, stats, &want);
        }
        let tally = Tally::of(&self.ledger, &self.feed, lost);
        conclude(plan, &self.ledger, found, tally)
    }

    /// Files the leftovers' undelivered outputs and unprocessed jobs (and
    /// drops those jobs, releasing their tokens).
    fn record_leftovers(
        &self,
        found: &mut Vec<String>,
        by_index: &[Option<usize>],
        fates: &mut [Fate],
        leftovers: Leftovers<WJob, bool>,
    ) {
        if !leftovers.is_empty()
            && !self.plan.end.cancels()
            && self.plan.policy == PanicPolicy::Respawn
        {
            found.push(format!(
                "join() left {leftovers:?} although the pool was never stopped"
            ));
        }
        for output in leftovers.undelivered {
            record_fate(
                found,
                by_index,
                fates,
                output.index,
                Fate::Ran(output.result),
            );
        }
        for (index, job) in leftovers.unprocessed {
            let id = job.token.id;
            if by_index.get(index as usize).copied().flatten() != Some(id) {
                found.push(format!(
                    "Leftovers.unprocessed pairs index {index} with job {id}, which was not submitted as {index}"
                ));
            }
            drop(job);
            record_fate(found, by_index, fates, index, Fate::Unprocessed);
        }
    }

    fn fate_class(
        &self,
        found: &mut Vec<String>,
        id: usize,
        s: u32,
        fate: &Fate,
        lost: &mut u64,
    ) -> Class {
        let ran = s & started(0) != 0;
        match fate {
            Fate::Ran(result) => {
                if !ran {
                    found.push(format!(
                        "job {id} has an output but never started {}",
                        describe(s)
                    ));
                }
                classify(found, id, s, result, self.plan.job_timeout.is_some())
            }
            Fate::Unprocessed => {
                if ran {
                    found.push(format!(
                        "job {id} is in Leftovers.unprocessed but ran {}",
                        describe(s)
                    ));
                }
                Class::NeverRan
            }
            // Dropping the pool discards queued jobs and undelivered outputs.
            Fate::Unseen if self.plan.end == WorkerEnd::Drop => {
                if !ran {
                    Class::NeverRan
                } else if s & panicked(0) != 0 {
                    Class::Panicked
                } else {
                    Class::RanUnseen
                }
            }
            Fate::Unseen => {
                *lost += 1;
                found.push(format!(
                    "job {id} was accepted, but produced no output and is not in the leftovers {}",
                    describe(s)
                ));
                Class::Unknown
            }
        }
    }
}

/// Submission index → job id; indices must be `0..accepted`, each once.
fn index_map(found: &mut Vec<String>, indices: &[(u64, usize)]) -> Vec<Option<usize>> {
    let mut by_index = vec![None; indices.len()];
    for &(index, id) in indices {
        match by_index.get_mut(index as usize) {
            Some(slot) if slot.is_none() => *slot = Some(id),
            _ => found.push(format!(
                "submission index {index} (job {id}) is outside 0..{} or was handed out twice",
                indices.len()
            )),
        }
    }
    by_index
}

fn record_fate(
    found: &mut Vec<String>,
    by_index: &[Option<usize>],
    fates: &mut [Fate],
    index: u64,
    fate: Fate,
) {
    let Some(id) = by_index.get(index as usize).copied().flatten() else {
        found.push(format!(
            "an outcome for submission index {index}, which no accepted job has"
        ));
        return;
    };
    if !matches!(fates[id], Fate::Unseen) {
        found.push(format!("job {id} (index {index}) was reported twice"));
        return;
    }
    fates[id] = fate;
}

/// An ordered pool delivers a prefix of the submission indices, in order.
fn check_in_order(found: &mut Vec<String>, outputs: &[Output<bool>]) {
    if let Some((position, output)) = outputs
        .iter()
        .enumerate()
        .find(|&(position, output)| output.index != position as u64)
    {
        found.push(format!(
            "the ordered pool delivered index {} at position {position}",
            output.index
        ));
    }
}

// ---------------------------------------------------------------- ErrGroup

/// What happens to an `ErrGroup` mid-run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupEnd {
    Nothing,
    CancelParent,
    CancelGroup,
    /// Cancel the pool the group runs on: its queued tasks are discarded.
    DiscardPool,
}

#[derive(Debug)]
struct GroupPlan {
    seed: u64,
    jobs: usize,
    submitters: usize,
    limit: Option<usize>,
    /// Run on a `ThreadPool` of (workers, queue capacity), or on the
    /// group's own threads.
    pool: Option<(usize, usize)>,
    mix: Mix,
    end: GroupEnd,
    /// `wait()` for the group; else drop it.
    wait: bool,
    trigger_at: usize,
}

impl GroupPlan {
    fn new(seed: u64, jobs: usize) -> Self {
        let mut rng = SplitMix64(seed);
        let pool = (rng.below(10) < 4)
            .then(|| (1 + rng.below(4) as usize, pick(&mut rng, &[0, 1, 4, 64])));
        let ends = [
            GroupEnd::Nothing,
            GroupEnd::CancelParent,
            GroupEnd::CancelGroup,
            GroupEnd::DiscardPool,
        ];
        let end = match pick(&mut rng, &ends) {
            GroupEnd::DiscardPool if pool.is_none() => GroupEnd::CancelGroup,
            end => end,
        };
        Self {
            seed,
            jobs,
            submitters: 2 + rng.below(3) as usize,
            limit: (rng.below(10) < 7).then(|| 1 + rng.below(4) as usize),
            pool,
            mix: Mix::random(&mut rng, &[0, 0, 1, 5, 20], false),
            end,
            wait: rng.below(5) != 0,
            trigger_at: rng.below(jobs as u64 + 1) as usize,
        }
    }
}

struct GroupRound<'a> {
    plan: &'a GroupPlan,
    ledger: Arc<Ledger>,
    feed: Feed,
}

/// What the end of an `ErrGroup` round observed.
struct GroupEnding {
    outcome: Option<Result<(), GroupError<usize>>>,
    threads: usize,
    report: Option<ShutdownReport>,
}

fn group_round(seed: u64, jobs: usize) -> Tally {
    // ErrGroup threads all share one name: one group round at a time, so
    // the leak check counts only this round's.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _alone = ONE_AT_A_TIME.lock();
    let plan = GroupPlan::new(seed, jobs);
    let parent = Context::new();
    let round = GroupRound {
        plan: &plan,
        ledger: Ledger::new(jobs),
        feed: Feed::new(plan.trigger_at, plan.submitters),
    };
    let mut found = Vec::new();
    let ending = match plan.pool {
        None => {
            let (outcome, threads) = round.drive(ErrGroup::new(&parent), &parent, None);
            check_no_threads(&mut found, "errgroup");
            GroupEnding {
                outcome,
                threads,
                report: None,
            }
        }
        Some((workers, queue)) => {
            let name = unique_name("cgp");
            let pool = ThreadPool::builder()
                .workers(workers)
                .queue_capacity(queue)
                .thread_name(&name)
                .build()
                .expect("the plan's pool settings are valid");
            let (outcome, threads) =
                round.drive(ErrGroup::on_pool(&parent, &pool), &parent, Some(&pool));
            let report = pool.shutdown_timeout(LONG);
            check_no_threads(&mut found, &name);
            GroupEnding {
                outcome,
                threads,
                report: Some(report),
            }
        }
    };
    round.reconcile(found, &ending)
}

impl GroupRound<'_> {
    /// Feeds the group, ends it as planned, and waits for it (or drops it).
    /// Returns what `wait` said and how many threads the group started.
    fn drive<'p>(
        &self,
        group: ErrGroup<'p, usize>,
        parent: &Context,
        pool: Option<&'p ThreadPool>,
    ) -> (Option<Result<(), GroupError<usize>>>, usize) {
        let group = match self.plan.limit {
            Some(limit) => group.limit(limit).expect("a fresh group takes a limit"),
            None => group,
        };
        thread::scope(|s| {
            let group = &group;
            let submitters = split(self.plan.jobs, self.plan.submitters)
                .into_iter()
                .enumerate()
                .map(|(index, ids)| s.spawn(move || self.submitter(group, index, ids)))
                .collect();
            self.feed.moment.wait();
            match self.plan.end {
                GroupEnd::Nothing => {}
                GroupEnd::CancelParent => parent.cancel(),
                GroupEnd::CancelGroup => group.context().cancel(),
                GroupEnd::DiscardPool => pool.into_iter().for_each(|p| p.context().cancel()),
            }
            join_all::<()>(submitters);
        });
        let threads = group.threads();
        let outcome = if self.plan.wait {
            Some(group.wait())
        } else {
            drop(group);
            None
        };
        (outcome, threads)
    }

    fn submitter(&self, group: &ErrGroup<'_, usize>, index: usize, ids: Range<usize>) -> Vec<()> {
        let _done = self.feed.submitter();
        let mut rng = submitter_rng(self.plan.seed, index);
        for id in ids {
            let token = self.ledger.token(id);
            let work = self.plan.mix.pick(&mut rng);
            let task = move |ctx: &Context| {
                if perform(&token, work, 0, Some(ctx), None) {
                    Ok(())
                } else {
                    Err(token.id)
                }
            };
            self.offer(group, id, task, &mut rng);
        }
        Vec::new()
    }

    fn offer<F>(&self, group: &ErrGroup<'_, usize>, id: usize, mut task: F, rng: &mut SplitMix64)
    where
        F: FnOnce(&Context) -> Result<(), usize> + Send + 'static,
    {
        for attempt in 0.. {
            let result = if attempt >= PATIENCE || rng.below(2) == 0 {
                group.spawn(task)
            } else {
                group.try_spawn(task)
            };
            match result {
                Ok(()) => return self.feed.accept(&self.ledger, id),
                Err(err @ SpawnError::Full(_)) => {
                    task = err.into_inner();
                    self.feed.retry();
                }
                Err(err) => {
                    let job = err.into_inner();
                    self.feed
                        .hand_back::<_, ()>(&self.ledger, id, job, Offer::Refused);
                    return;
                }
            }
        }
    }

    fn reconcile(&self, mut found: Vec<String>, ending: &GroupEnding) -> Tally {
        let plan = self.plan;
        let discarding = plan.end == GroupEnd::DiscardPool;
        let mut want = Expect::default();
        let (mut lost, mut failures) = (0, 0);
        for id in 0..plan.jobs {
            let s = self.ledger.state(id);
            if s & CREATED == 0 {
                continue;
            }
            lost += common_checks(&mut found, id, s);
            if s & ACCEPTED == 0 {
                continue;
            }
            want.submitted += 1;
            if s & started(0) != 0 {
                // A pool sees every group task as a clean job: the group catches panics.
                want.add(Class::Completed);
            } else {
                want.add(Class::NeverRan);
                if !discarding {
                    lost += 1;
                    found.push(format!(
                        "task {id} was admitted but never ran, and no pool discarded it {}",
                        describe(s)
                    ));
                }
            }
            if s & (failed(0) | panicked(0)) != 0 {
                failures += 1;
            }
        }
        if let Some(outcome) = &ending.outcome {
            self.check_outcome(&mut found, outcome, failures, want.never_ran);
        }
        self.check_limits(&mut found, ending.threads);
        if let Some(report) = &ending.report {
            check_report(&mut found, report, &want);
        }
        let tally = Tally::of(&self.ledger, &self.feed, lost);
        conclude(plan, &self.ledger, found, tally)
    }

    /// `wait()` reports the first failure, of a task that did fail, and
    /// `Ok` only if no task failed, panicked or was discarded.
    fn check_outcome(
        &self,
        found: &mut Vec<String>,
        outcome: &Result<(), GroupError<usize>>,
        failures: u64,
        never_ran: u64,
    ) {
        let agrees = match outcome {
            Ok(()) => failures == 0 && never_ran == 0,
            Err(GroupError::Failed(id)) => {
                *id < self.plan.jobs && self.ledger.state(*id) & failed(0) != 0
            }
            Err(GroupError::Panicked(message)) => (0..self.plan.jobs).any(|id| {
                self.ledger.state(id) & panicked(0) != 0 && *message == planned_message(id, 0)
            }),
            Err(GroupError::Discarded(_)) => never_ran > 0,
            Err(_) => false,
        };
        if !agrees {
            found.push(format!(
                "wait() returned {outcome:?}, but the ledger has {failures} failed or panicked and {never_ran} discarded task(s)"
            ));
        }
    }

    fn check_limits(&self, found: &mut Vec<String>, threads: usize) {
        let plan = self.plan;
        let bound = plan
            .limit
            .unwrap_or(usize::MAX)
            .min(plan.pool.map_or(usize::MAX, |(workers, _)| workers));
        if self.ledger.peak(0) > bound {
            found.push(format!(
                "{} tasks ran at once, above the bound {bound}",
                self.ledger.peak(0)
            ));
        }
        match (plan.pool, plan.limit) {
            (None, Some(limit)) if threads > limit => found.push(format!(
                "the group started {threads} threads under limit {limit}"
            )),
            (Some(_), _) if threads != 0 => found.push(format!(
                "a group on a pool started {threads} threads of its own"
            )),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------- Pipeline

#[derive(Debug, Clone, Copy)]
struct StagePlan {
    workers: usize,
    buffer: Option<usize>,
}

#[derive(Debug)]
struct PipePlan {
    seed: u64,
    jobs: usize,
    submitters: usize,
    stages: Vec<StagePlan>,
    ordered: bool,
    fail_fast: bool,
    /// Capacity of the channel the submitters feed the inputs through.
    channel: usize,
    mix: Mix,
    /// Cancel the parent context at the moment.
    cancel: bool,
    trigger_at: usize,
}

impl PipePlan {
    fn new(seed: u64, jobs: usize) -> Self {
        let mut rng = SplitMix64(seed);
        let fail_fast = rng.below(2) == 0;
        let failure_rates: &[u64] = if fail_fast {
            &[0, 0, 1, 5, 20]
        } else {
            &[0, 20, 100]
        };
        let stages = (0..2 + rng.below(2))
            .map(|_| StagePlan {
                workers: 1 + rng.below(3) as usize,
                buffer: pick(&mut rng, &[None, Some(0), Some(1), Some(8)]),
            })
            .collect();
        Self {
            seed,
            jobs,
            submitters: 2 + rng.below(3) as usize,
            stages,
            ordered: rng.below(10) < 4,
            fail_fast,
            channel: pick(&mut rng, &[0, 1, 8]),
            mix: Mix::random(&mut rng, failure_rates, false),
            cancel: rng.below(3) == 0,
            trigger_at: rng.below(jobs as u64 + 1) as usize,
        }
    }
}

/// A pipeline item: its token and what it does in each stage.
struct PItem {
    token: Token,
    plan: [Work; STAGES],
}

type PipeResult = Result<PipelineOutput<PItem, usize>, PipelineError<usize>>;

struct PipeRound<'a> {
    plan: &'a PipePlan,
    ledger: Arc<Ledger>,
    feed: Feed,
}

fn pipeline_round(seed: u64, jobs: usize) -> Tally {
    let plan = PipePlan::new(seed, jobs);
    let base = unique_name("cp");
    let names: Vec<String> = (0..plan.stages.len())
        .map(|stage| format!("{base}s{stage}"))
        .collect();
    let parent = Context::new();
    let round = PipeRound {
        plan: &plan,
        ledger: Ledger::new(jobs),
        feed: Feed::new(plan.trigger_at, plan.submitters),
    };
    let (tx, rx) = crossbeam_channel::bounded(plan.channel);
    let (result, pulled) = thread::scope(|s| {
        let (round, names, parent) = (&round, &names, &parent);
        let runner = s.spawn(move || run_pipeline(round.plan, names, parent, rx));
        let submitters = split(jobs, plan.submitters)
            .into_iter()
            .enumerate()
            .map(|(index, ids)| {
                let tx = tx.clone();
                s.spawn(move || round.submitter(&tx, index, ids))
            })
            .collect();
        drop(tx);
        round.feed.moment.wait();
        if plan.cancel {
            parent.cancel();
        }
        join_all::<()>(submitters);
        runner
            .join()
            .unwrap_or_else(|payload| panic::resume_unwind(payload))
    });
    let mut found = Vec::new();
    for name in &names {
        check_no_threads(&mut found, name);
    }
    round.reconcile(found, result, &pulled, &names)
}

/// Builds the planned pipeline and runs it over the channel's items;
/// returns its result and the ids in the order it pulled them.
fn run_pipeline(
    plan: &PipePlan,
    names: &[String],
    parent: &Context,
    inputs: Receiver<PItem>,
) -> (PipeResult, Vec<usize>) {
    let mut pipeline = Pipeline::<PItem, PItem, usize>::new(parent);
    for (stage, (settings, name)) in plan.stages.iter().zip(names).enumerate() {
        pipeline = pipeline.stage(name.clone(), settings.workers, stage_fn(stage));
        if let Some(buffer) = settings.buffer {
            pipeline = pipeline.buffer(buffer);
        }
    }
    if plan.ordered {
        pipeline = pipeline.ordered();
    }
    if !plan.fail_fast {
        pipeline = pipeline.collect_errors();
    }
    let mut pulled = Vec::new();
    let result = pipeline.run(
        inputs
            .into_iter()
            .inspect(|item| pulled.push(item.token.id)),
    );
    (result, pulled)
}

fn stage_fn(
    stage: usize,
) -> impl Fn(&Context, PItem) -> Result<PItem, usize> + Send + Sync + 'static {
    move |ctx: &Context, item: PItem| {
        if perform(&item.token, item.plan[stage], stage, Some(ctx), None) {
            Ok(item)
        } else {
            Err(item.token.id)
        }
    }
}

/// A pipeline run's outcome with the items' ids taken out (and the items
/// dropped).
enum PipeOutcome {
    Done {
        outputs: Vec<usize>,
        failures: Vec<StageFailure<usize>>,
        stages: Vec<StageStats>,
    },
    Failed(StageFailure<usize>),
    Cancelled,
    Other(String),
}

impl PipeRound<'_> {
    fn submitter(&self, tx: &Sender<PItem>, index: usize, ids: Range<usize>) -> Vec<()> {
        let _done = self.feed.submitter();
        let mut rng = submitter_rng(self.plan.seed, index);
        for id in ids {
            let mix = &self.plan.mix;
            let item = PItem {
                token: self.ledger.token(id),
                plan: [mix.pick(&mut rng), mix.pick(&mut rng), mix.pick(&mut rng)],
            };
            self.offer(tx, id, item, &mut rng);
        }
        Vec::new()
    }

    /// Sends through a random send flavour, resending what a full channel
    /// hands back; an item the ended run no longer takes is handed back.
    fn offer(&self, tx: &Sender<PItem>, id: usize, mut item: PItem, rng: &mut SplitMix64) {
        for attempt in 0.. {
            let method = if attempt >= PATIENCE { 0 } else { rng.below(3) };
            let sent = match method {
                0 => tx.send_timeout(item, LONG).map_err(|err| match err {
                    SendTimeoutError::Timeout(item) => {
                        self.ledger
                            .violation(format!("item {id}: the inputs were not read for {LONG:?}"));
                        (item, false)
                    }
                    SendTimeoutError::Disconnected(item) => (item, false),
                }),
                1 => tx.try_send(item).map_err(|err| match err {
                    TrySendError::Full(item) => (item, true),
                    TrySendError::Disconnected(item) => (item, false),
                }),
                _ => tx
                    .send_timeout(item, Duration::from_micros(rng.below(300)))
                    .map_err(|err| match err {
                        SendTimeoutError::Timeout(item) => (item, true),
                        SendTimeoutError::Disconnected(item) => (item, false),
                    }),
            };
            match sent {
                Ok(()) => return self.feed.accept(&self.ledger, id),
                Err((back, true)) => {
                    item = back;
                    self.feed.retry();
                }
                Err((back, false)) => {
                    self.feed
                        .hand_back::<_, ()>(&self.ledger, id, back, Offer::Refused);
                    return;
                }
            }
        }
    }

    fn reconcile(
        &self,
        mut found: Vec<String>,
        result: PipeResult,
        pulled: &[usize],
        names: &[String],
    ) -> Tally {
        let outcome = match result {
            Ok(out) => PipeOutcome::Done {
                outputs: out.outputs.iter().map(|item| item.token.id).collect(),
                failures: out.failures,
                stages: out.stages,
            },
            Err(PipelineError::Stage(failure)) => PipeOutcome::Failed(failure),
            Err(PipelineError::Cancelled(_)) => PipeOutcome::Cancelled,
            Err(other) => PipeOutcome::Other(other.to_string()),
        };
        let position = self.positions(&mut found, pulled);
        let mut lost = 0;
        for (id, pos) in position.iter().enumerate() {
            let s = self.ledger.state(id);
            if s & CREATED != 0 {
                lost += common_checks(&mut found, id, s);
                self.check_chain(&mut found, id, s, pos.is_some());
            }
        }
        for (stage, settings) in self.plan.stages.iter().enumerate() {
            if self.ledger.peak(stage) > settings.workers {
                found.push(format!(
                    "{} items ran at once in stage {stage} of {} workers",
                    self.ledger.peak(stage),
                    settings.workers
                ));
            }
        }
        lost += self.check_outcome(&mut found, &outcome, pulled, names);
        let tally = Tally::of(&self.ledger, &self.feed, lost);
        conclude(self.plan, &self.ledger, found, tally)
    }

    /// Each id's position in the inputs; each accepted item pulled once.
    fn positions(&self, found: &mut Vec<String>, pulled: &[usize]) -> Vec<Option<usize>> {
        let mut position = vec![None; self.plan.jobs];
        for (index, &id) in pulled.iter().enumerate() {
            if position[id].replace(index).is_some() {
                found.push(format!("item {id} was pulled from the inputs twice"));
            }
            if self.ledger.state(id) & ACCEPTED == 0 {
                found.push(format!("item {id} was pulled but never accepted"));
            }
        }
        position
    }

    /// An item enters stage k only from the inputs (k = 0) or after passing
    /// stage k - 1.
    fn check_chain(&self, found: &mut Vec<String>, id: usize, s: u32, pulled: bool) {
        for stage in 0..self.plan.stages.len() {
            if s & started(stage) == 0 {
                continue;
            }
            let entered = if stage == 0 {
                pulled
            } else {
                let before = stage - 1;
                s & finished(before) != 0 && s & (failed(before) | panicked(before)) == 0
            };
            if !entered {
                found.push(format!(
                    "item {id} started stage {stage} without passing the one before {}",
                    describe(s)
                ));
            }
        }
        if s & ACCEPTED != 0 && s & started(0) == 0 && s & RELEASED == 0 {
            found.push(format!(
                "item {id} never entered a stage and was never dropped"
            ));
        }
    }

    /// Checks the run's result against the ledger; returns how many items
    /// are unaccounted for.
    fn check_outcome(
        &self,
        found: &mut Vec<String>,
        outcome: &PipeOutcome,
        pulled: &[usize],
        names: &[String],
    ) -> u64 {
        let plan = self.plan;
        let last = plan.stages.len() - 1;
        let any_failure = self
            .ledger
            .count(|s| (0..=last).any(|stage| s & (failed(stage) | panicked(stage)) != 0))
            > 0;
        match outcome {
            PipeOutcome::Done {
                outputs,
                failures,
                stages,
            } => {
                if plan.fail_fast && any_failure {
                    found.push("a fail-fast run with a failed item returned Ok".to_owned());
                }
                for failure in failures {
                    self.check_failure(found, failure, pulled, names);
                }
                self.check_stage_stats(found, stages, names, pulled.len());
                self.check_outputs(found, outputs, failures, pulled)
            }
            PipeOutcome::Failed(failure) => {
                if !plan.fail_fast {
                    found.push(format!("a collect_errors run failed fast: {failure}"));
                }
                self.check_failure(found, failure, pulled, names);
                0
            }
            PipeOutcome::Cancelled => {
                if !plan.cancel {
                    found.push("the run reported Cancelled, but nothing cancelled it".to_owned());
                }
                0
            }
            PipeOutcome::Other(error) => {
                found.push(format!("the run failed unexpectedly: {error}"));
                0
            }
        }
    }

    /// A reported failure names a pulled item, the stage where it failed or
    /// panicked, and the right error.
    fn check_failure(
        &self,
        found: &mut Vec<String>,
        failure: &StageFailure<usize>,
        pulled: &[usize],
        names: &[String],
    ) {
        let id = pulled.get(failure.index as usize).copied();
        let stage = names.iter().position(|name| *name == failure.stage);
        let agrees = match (id, stage, &failure.error) {
            (Some(id), Some(stage), StageError::Failed(error)) => {
                *error == id && self.ledger.state(id) & failed(stage) != 0
            }
            (Some(id), Some(stage), StageError::Panicked(message)) => {
                *message == planned_message(id, stage)
                    && self.ledger.state(id) & panicked(stage) != 0
            }
            _ => false,
        };
        if !agrees {
            found.push(format!(
                "the failure {failure:?} does not match the ledger (item {id:?}: {})",
                id.map_or_else(String::new, |id| describe(self.ledger.state(id)))
            ));
        }
    }

    /// After a clean run every accepted item was pulled, and each pulled
    /// item is either an output or a failure, once; ordered runs keep the
    /// input order. Returns how many items are unaccounted for.
    fn check_outputs(
        &self,
        found: &mut Vec<String>,
        outputs: &[usize],
        failures: &[StageFailure<usize>],
        pulled: &[usize],
    ) -> u64 {
        let accepted = self.ledger.count(|s| s & ACCEPTED != 0);
        if pulled.len() as u64 != accepted {
            found.push(format!(
                "a clean run pulled {} of {accepted} accepted items",
                pulled.len()
            ));
        }
        let last = self.plan.stages.len() - 1;
        let mut seen = vec![0u32; self.plan.jobs];
        for &id in outputs {
            seen[id] += 1;
            let s = self.ledger.state(id);
            if s & finished(last) == 0 || s & failed(last) != 0 {
                found.push(format!(
                    "item {id} is an output but did not pass the last stage {}",
                    describe(s)
                ));
            }
        }
        for failure in failures {
            if let Some(&id) = pulled.get(failure.index as usize) {
                seen[id] += 1;
            }
        }
        let mut lost = 0;
        for &id in pulled {
            if seen[id] != 1 {
                lost += u64::from(seen[id] == 0);
                found.push(format!(
                    "item {id} ended {} times (outputs and failures) in a clean run {}",
                    seen[id],
                    describe(self.ledger.state(id))
                ));
            }
        }
        if self.plan.ordered {
            let expected: Vec<usize> = pulled
                .iter()
                .copied()
                .filter(|&id| outputs.contains(&id))
                .collect();
            if expected != outputs {
                found.push("an ordered run's outputs are out of input order".to_owned());
            }
        }
        lost
    }

    /// After a clean run each stage's counters match the ledger: stage k
    /// took what stage k - 1 passed on, and nothing was cancelled.
    fn check_stage_stats(
        &self,
        found: &mut Vec<String>,
        stages: &[StageStats],
        names: &[String],
        pulled: usize,
    ) {
        if stages.len() != names.len() {
            found.push(format!(
                "{} stage stats for {} stages",
                stages.len(),
                names.len()
            ));
            return;
        }
        let mut fed = pulled as u64;
        for (stage, (stats, name)) in stages.iter().zip(names).enumerate() {
            if stats.name != *name {
                found.push(format!(
                    "stage {stage} is named {:?}, not {name:?}",
                    stats.name
                ));
            }
            let st = &stats.stats;
            let passed = self
                .ledger
                .count(|s| s & finished(stage) != 0 && s & failed(stage) == 0);
            let expected = [
                ("submitted", st.submitted, fed),
                (
                    "completed + failed",
                    st.completed + st.failed,
                    self.ledger.count(|s| s & started(stage) != 0),
                ),
                ("completed", st.completed, passed),
                (
                    "panicked",
                    st.panicked,
                    self.ledger.count(|s| s & panicked(stage) != 0),
                ),
                ("cancelled", st.cancelled, 0),
                ("timed_out", st.timed_out, 0),
                ("queued", st.queued as u64, 0),
            ];
            for (field, got, want) in expected {
                if got != want {
                    found.push(format!(
                        "stage {name}: {field} is {got}, the ledger says {want} ({st})"
                    ));
                }
            }
            fed = passed;
        }
    }
}
