//! `WorkerPool` rounds: submitters feed jobs through the submit family and
//! resize the pool while a consumer reads the results (in order, for an
//! ordered pool); the round closes, stops, cancels or drops the pool, and
//! every job must be an output, a leftover, or handed back.
//!
//! A third of the rounds give the pool a keep-alive of a few milliseconds
//! and pause the submitters at idle gaps (see `feed::Gaps`), so workers
//! leave and start again all round; half of all rounds build the pool
//! with per-worker state, and every state built must be dropped exactly
//! once, on the thread that built it.

use std::ops::Range;
use std::panic;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::thread::{self, ThreadId};
use std::time::Duration;

use brigade::{
    Context, JobError, Leftovers, Output, PanicPolicy, Stats, TrySubmitError, WorkerPool,
};
use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::common::{LONG, SplitMix64};
use crate::feed::{Elastic, Feed, Gaps, Offer, Resizes, join_all, split, unique_name};
use crate::ledger::{
    ACCEPTED, CREATED, Class, Expect, Ledger, Tally, Token, check_no_threads, check_stats,
    classify, common_checks, conclude, describe, panicked, settle, started,
};
use crate::work::{Mix, Work, perform};
use crate::{PATIENCE, pick, submitter_rng};

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
    /// A keep-alive, in a third of the rounds: workers leave at the gaps.
    elastic: Option<Elastic>,
    gaps: Gaps,
    /// Built with per-worker state (`build_with_state`).
    stateful: bool,
}

/// The per-worker states of a round: how many were built and dropped,
/// and what went wrong.
#[derive(Default)]
struct States {
    built: AtomicU64,
    dropped: AtomicU64,
    /// States used or dropped on a thread other than the one that built them.
    strays: AtomicU64,
}

/// One worker's state: remembers the thread that built it.
struct WState {
    states: Arc<States>,
    thread: ThreadId,
}

impl WState {
    fn new(states: &Arc<States>) -> Self {
        states.built.fetch_add(1, SeqCst);
        Self {
            states: Arc::clone(states),
            thread: thread::current().id(),
        }
    }

    fn check_thread(&self) {
        if thread::current().id() != self.thread {
            self.states.strays.fetch_add(1, SeqCst);
        }
    }
}

impl Drop for WState {
    fn drop(&mut self) {
        self.check_thread();
        self.states.dropped.fetch_add(1, SeqCst);
    }
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
            elastic: None,
            gaps: Gaps::random(&mut rng, false, jobs, submitters),
            stateful: false,
        }
        .elastic(&mut rng)
    }

    /// Draws the keep-alive and state settings last, so the other rounds
    /// keep their plans.
    fn elastic(mut self, rng: &mut SplitMix64) -> Self {
        self.elastic = Elastic::random(rng);
        self.gaps = Gaps::random(rng, self.elastic.is_some(), self.jobs, self.submitters);
        self.stateful = rng.below(2) == 0;
        self
    }

    fn build(&self, name: &str, parent: &Context, states: &Arc<States>) -> WorkerPool<WJob, bool> {
        let builder = match self.elastic {
            Some(elastic) => WorkerPool::builder()
                .sizing(elastic.sizing(self.workers))
                .keep_alive(elastic.keep_alive),
            None => WorkerPool::builder().workers(self.workers),
        };
        let builder = builder
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
        let built = if self.stateful {
            let states = Arc::clone(states);
            builder.build_with_state(
                move |_index| Ok::<_, std::convert::Infallible>(WState::new(&states)),
                move |ctx: &Context, state: &mut WState, job: WJob| {
                    state.check_thread();
                    perform(&job.token, job.work, 0, Some(ctx), timeout)
                },
            )
        } else {
            builder.build(move |ctx: &Context, job: WJob| {
                perform(&job.token, job.work, 0, Some(ctx), timeout)
            })
        };
        built.expect("the plan's pool settings are valid")
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

/// The whole plan a round of `seed` and `jobs` follows, for messages.
pub(crate) fn plan(seed: u64, jobs: usize) -> String {
    format!("{:#?}", WorkerPlan::new(seed, jobs))
}

/// One round: `jobs` jobs, planned from `seed`, recorded in `ledger`.
pub(crate) fn round(seed: u64, jobs: usize, ledger: Arc<Ledger>) -> Tally {
    let plan = WorkerPlan::new(seed, jobs);
    let name = unique_name("cwp");
    let parent = Context::new();
    let states = Arc::new(States::default());
    let pool = plan.build(&name, &parent, &states);
    let round = WorkerRound {
        plan: &plan,
        ledger,
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
            // An elastic pool's idle workers leave: no size to wait for.
            let full = open && plan.policy == PanicPolicy::Respawn && plan.elastic.is_none();
            settle(
                &mut found,
                || pool.stats(),
                full.then_some(plan.resizes.size()),
                || 0,
            )
        })
        .flatten();
    let expired = pool.stats().expired;
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
    check_states(&mut found, &states);
    let mut tally = round.reconcile(found, &indices, consumed, leftovers, stats);
    tally.expired = expired;
    tally
}

/// With every worker gone: each state built was dropped once, where it
/// was built.
fn check_states(found: &mut Vec<String>, states: &States) {
    let (built, dropped) = (states.built.load(SeqCst), states.dropped.load(SeqCst));
    if built != dropped {
        found.push(format!(
            "{built} worker states were built and {dropped} dropped"
        ));
    }
    let strays = states.strays.load(SeqCst);
    if strays != 0 {
        found.push(format!(
            "{strays} times a worker state was used or dropped off the thread that built it"
        ));
    }
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
        let _gaps = self.plan.gaps.submitter();
        let mut rng = submitter_rng(self.plan.seed, index);
        let mut indices = Vec::new();
        for (done, id) in ids.enumerate() {
            if self.quit.load(SeqCst) {
                break;
            }
            self.plan
                .gaps
                .before_job(done, || Some(pool.stats().workers));
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
        conclude(&self.ledger, found, tally)
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
