//! The ledger: one word of state bits per job, the token that marks a job
//! released when its closure or item is dropped, and the checks every front
//! door shares (the job's own history, its reported outcome, the pool's
//! `Stats` and `ShutdownReport`; a panic in a job run inline by a join
//! retires no worker, so it is not waited for as a respawn), summed up in
//! a [`Tally`].

use std::fmt;
use std::ops::AddAssign;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};

use brigade::{JobError, ShutdownReport, Stats};
use parking_lot::Mutex;

use crate::STAGES;
use crate::common::{LONG, threads_named, wait_until};
use crate::feed::Feed;
use crate::work::planned_message;

/// The job exists (its submitter made it).
pub(crate) const CREATED: u32 = 1;
/// A submit call accepted the job.
pub(crate) const ACCEPTED: u32 = 1 << 1;
/// A submit call handed the job back, and its submitter gave up on it.
pub(crate) const HANDED_BACK: u32 = 1 << 2;
/// The job's token was dropped: its closure or item is gone.
pub(crate) const RELEASED: u32 = 1 << 3;
/// The submitter called `JobHandle::cancel` on the job.
pub(crate) const CANCEL_ASKED: u32 = 1 << 4;
/// The job's `ctx.sleep` ended at its own deadline.
pub(crate) const SAW_DEADLINE: u32 = 1 << 5;
/// The job's context was done when its body returned.
pub(crate) const SAW_DONE: u32 = 1 << 6;
/// The submitter dropped the job's `CancelOnDrop` without reading its
/// result: from then on the job may not start with its context live.
pub(crate) const GUARD_DROPPED: u32 = 1 << 7;
/// The job ran inline, on a worker whose own job was joining it (after
/// the stage bits).
pub(crate) const RAN_INLINE: u32 = 1 << 20;

/// The body of the job began in `stage`.
pub(crate) const fn started(stage: usize) -> u32 {
    1 << (8 + 4 * stage)
}

/// The body of the job returned in `stage` (successfully or with its
/// planned error).
pub(crate) const fn finished(stage: usize) -> u32 {
    1 << (9 + 4 * stage)
}

/// The body of the job panicked, as planned, in `stage`.
pub(crate) const fn panicked(stage: usize) -> u32 {
    1 << (10 + 4 * stage)
}

/// The body of the job returned its planned error in `stage`.
pub(crate) const fn failed(stage: usize) -> u32 {
    1 << (11 + 4 * stage)
}

/// One word of state bits per job, plus how many jobs ran at once.
pub(crate) struct Ledger {
    states: Vec<AtomicU32>,
    running: [AtomicUsize; STAGES],
    peak: [AtomicUsize; STAGES],
    run_twice: AtomicU64,
    violations: Mutex<Vec<String>>,
}

impl Ledger {
    pub(crate) fn new(jobs: usize) -> Arc<Self> {
        Arc::new(Self {
            states: (0..jobs).map(|_| AtomicU32::new(0)).collect(),
            running: Default::default(),
            peak: Default::default(),
            run_twice: AtomicU64::new(0),
            violations: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn state(&self, id: usize) -> u32 {
        self.states[id].load(SeqCst)
    }

    /// Sets `bits`; returns the state before.
    pub(crate) fn mark(&self, id: usize, bits: u32) -> u32 {
        self.states[id].fetch_or(bits, SeqCst)
    }

    pub(crate) fn violation(&self, message: String) {
        self.violations.lock().push(message);
    }

    /// How many jobs' states satisfy `pred`.
    pub(crate) fn count(&self, pred: impl Fn(u32) -> bool) -> u64 {
        self.states.iter().filter(|s| pred(s.load(SeqCst))).count() as u64
    }

    pub(crate) fn peak(&self, stage: usize) -> usize {
        self.peak[stage].load(SeqCst)
    }

    /// Creates job `id`'s token.
    pub(crate) fn token(self: &Arc<Self>, id: usize) -> Token {
        let before = self.mark(id, CREATED);
        assert_eq!(before, 0, "the test created job {id} twice");
        Token {
            id,
            ledger: Arc::clone(self),
        }
    }

    /// The jobs not yet settled: made, but their closure or item not yet
    /// run to the end or dropped (queued, running, between stages, or
    /// leaked). See [`by_state`].
    pub(crate) fn unsettled(&self) -> String {
        let ids = (0..self.states.len()).filter(|&id| {
            let s = self.state(id);
            s & CREATED != 0 && s & RELEASED == 0
        });
        self.by_state(ids)
    }

    /// `ids` grouped by their state, each group on its own line with its
    /// count and its ids as ranges: `[created accepted] x3: 4-5, 9`.
    pub(crate) fn by_state(&self, ids: impl Iterator<Item = usize>) -> String {
        let mut groups: Vec<(u32, Vec<usize>)> = Vec::new();
        for id in ids {
            let s = self.state(id);
            match groups.iter_mut().find(|(state, _)| *state == s) {
                Some((_, group)) => group.push(id),
                None => groups.push((s, vec![id])),
            }
        }
        if groups.is_empty() {
            return "none".to_owned();
        }
        let lines: Vec<String> = groups
            .iter()
            .map(|(s, group)| format!("{} x{}: {}", describe(*s), group.len(), ranges(group)))
            .collect();
        format!("\n  {}", lines.join("\n  "))
    }

    /// Records that job `id` starts `stage`; it must not have before.
    pub(crate) fn start(&self, id: usize, stage: usize) -> Running<'_> {
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
pub(crate) struct Running<'a> {
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
pub(crate) struct Token {
    pub(crate) id: usize,
    pub(crate) ledger: Arc<Ledger>,
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
pub(crate) fn describe(state: u32) -> String {
    const FLAGS: [(u32, &str); 9] = [
        (CREATED, "created"),
        (ACCEPTED, "accepted"),
        (HANDED_BACK, "handed-back"),
        (RELEASED, "released"),
        (CANCEL_ASKED, "cancel-asked"),
        (SAW_DEADLINE, "saw-deadline"),
        (SAW_DONE, "saw-done"),
        (GUARD_DROPPED, "guard-dropped"),
        (RAN_INLINE, "ran-inline"),
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

/// Ascending `ids` as ranges: `1-3, 7, 9-10`.
fn ranges(ids: &[usize]) -> String {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &id in ids {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == id => *last = id,
            _ => runs.push((id, id)),
        }
    }
    let runs: Vec<String> = runs
        .iter()
        .map(|&(first, last)| {
            if first == last {
                first.to_string()
            } else {
                format!("{first}-{last}")
            }
        })
        .collect();
    runs.join(", ")
}

/// Checks every front door shares: the job was released, was either
/// accepted or handed back, did not run after being handed back, and ended
/// every stage it started. Returns 1 if the job is unaccounted for.
pub(crate) fn common_checks(found: &mut Vec<String>, id: usize, s: u32) -> u64 {
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

/// Panics with every violation found, or returns the tally (the round's
/// plan is added to the message where the round was started).
pub(crate) fn conclude(ledger: &Ledger, mut found: Vec<String>, tally: Tally) -> Tally {
    found.append(&mut ledger.violations.lock());
    if !found.is_empty() {
        let shown: Vec<&str> = found.iter().take(20).map(String::as_str).collect();
        panic!(
            "{} violation(s), the first {}:\n  {}\n{tally}",
            found.len(),
            shown.len(),
            shown.join("\n  ")
        );
    }
    tally
}

// ------------------------------------------------------------------- tally

/// What rounds did, summed for the report.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    rounds: u64,
    jobs: u64,
    pub(crate) accepted: u64,
    ran: u64,
    panicked: u64,
    overran: u64,
    never_ran: u64,
    handed_back: u64,
    resubmitted: u64,
    /// Jobs a join ran inline on a worker.
    inline: u64,
    pub(crate) lost: u64,
    pub(crate) run_twice: u64,
    /// Workers that left after a keep-alive, as the pool's last `Stats`
    /// before its end said.
    pub(crate) expired: u64,
}

impl Tally {
    /// A round's tally from its ledger; `ran` counts stage 0 starts.
    pub(crate) fn of(ledger: &Ledger, feed: &Feed, lost: u64) -> Self {
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
            inline: ledger.count(|s| s & RAN_INLINE != 0),
            lost,
            run_twice: ledger.run_twice.load(SeqCst),
            expired: 0,
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
        self.inline += other.inline;
        self.lost += other.lost;
        self.run_twice += other.run_twice;
        self.expired += other.expired;
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} rounds, {} jobs: {} accepted, {} ran ({} panicked, {} overran their \
             timeout; {} inline), {} never ran, {} handed back ({} resubmissions \
             after Full), {} workers expired, lost {}, run twice {}",
            self.rounds,
            self.jobs,
            self.accepted,
            self.ran,
            self.panicked,
            self.overran,
            self.inline,
            self.never_ran,
            self.handed_back,
            self.resubmitted,
            self.expired,
            self.lost,
            self.run_twice
        )
    }
}

// ---------------------------------------------------------------- outcomes

/// How an accepted job ended, as its handle or output and the ledger say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Completed,
    Panicked,
    TimedOut,
    /// Ran, but its context was cancelled before it returned.
    Interrupted,
    /// Ran; its outcome was dropped unseen: with its pool (a `WorkerPool`
    /// dropped with outputs undelivered), or with its handle (a dropped
    /// `CancelOnDrop`, whose cancel may or may not have caught it).
    RanUnseen,
    NeverRan,
    Unknown,
}

/// What the ledger says a pool's counters must be.
#[derive(Debug, Default)]
pub(crate) struct Expect {
    pub(crate) submitted: u64,
    completed: u64,
    panicked: u64,
    timed_out: u64,
    interrupted: u64,
    ran_unseen: u64,
    pub(crate) never_ran: u64,
}

impl Expect {
    pub(crate) fn add(&mut self, class: Class) {
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

    pub(crate) fn ran(&self) -> u64 {
        self.completed + self.panicked + self.timed_out + self.interrupted + self.ran_unseen
    }

    /// Whether every ran job's outcome is known.
    pub(crate) fn exact(&self) -> bool {
        self.ran_unseen == 0
    }
}

/// Classifies a job's reported `result` and checks it against its ledger
/// state `s`.
pub(crate) fn classify(
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
            s & panicked(0) != 0 && message.message() == planned_message(id, 0),
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
/// `kept` counts the panics that retired no worker: those of jobs run
/// inline by a join, which the joining worker survives.
pub(crate) fn settle(
    found: &mut Vec<String>,
    stats: impl Fn() -> Stats,
    workers: Option<usize>,
    kept: impl Fn() -> u64,
) -> Option<Stats> {
    let mut last = stats();
    let settled = wait_until(LONG, || {
        last = stats();
        let quiet = last.queued == 0
            && last.busy == 0
            && last.submitted == last.completed + last.failed + last.cancelled;
        quiet
            && workers.is_none_or(|n| last.workers == n && last.respawned + kept() == last.panicked)
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

pub(crate) fn check_stats(found: &mut Vec<String>, stats: &Stats, want: &Expect) {
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

pub(crate) fn check_report(found: &mut Vec<String>, report: &ShutdownReport, want: &Expect) {
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

/// Waits for the threads named `{prefix}-…` to be gone (no thread outlives
/// its pool).
pub(crate) fn check_no_threads(found: &mut Vec<String>, prefix: &str) {
    if !wait_until(LONG, || threads_named(prefix) == 0) {
        found.push(format!(
            "{} thread(s) named {prefix}-… outlived their pool",
            threads_named(prefix)
        ));
    }
}
