//! `ThreadPool` rounds: submitters `submit`, `try_submit`, `submit_timeout`,
//! `execute` and `try_execute` jobs, cancel random handles and resize the
//! pool, while the round ends it in a random flavour (join, shutdown_now,
//! shutdown_timeout, drop, or a cancel of the pool's or its parent's context).

use std::ops::Range;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use brigade::{
    Context, JobError, JobHandle, PanicPolicy, ShutdownReport, Stats, ThreadPool, TrySubmitError,
};
use parking_lot::RwLock;

use crate::common::{LONG, SplitMix64};
use crate::feed::{Feed, Offer, Resizes, join_all, split, unique_name};
use crate::ledger::{
    ACCEPTED, CANCEL_ASKED, CREATED, Class, Expect, Ledger, Tally, check_no_threads, check_report,
    check_stats, classify, common_checks, conclude, describe, panicked, settle, started,
};
use crate::work::{Mix, perform};
use crate::{PATIENCE, pick, submitter_rng};

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

/// The whole plan a round of `seed` and `jobs` follows, for messages.
pub(crate) fn plan(seed: u64, jobs: usize) -> String {
    format!("{:#?}", PoolPlan::new(seed, jobs))
}

/// One round: `jobs` jobs, planned from `seed`, recorded in `ledger`.
pub(crate) fn round(seed: u64, jobs: usize, ledger: Arc<Ledger>) -> Tally {
    let plan = PoolPlan::new(seed, jobs);
    let name = unique_name("ctp");
    let parent = Context::new();
    let round = PoolRound {
        plan: &plan,
        ledger,
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
    let results = join_handles(&mut found, &round.ledger, handles, remaining.is_none());
    if let Some(pool) = remaining {
        round.finish(pool, plan.then, &mut ending, &mut found);
    }
    check_no_threads(&mut found, &name);
    round.reconcile(found, &results, &ending)
}

/// Joins every handle; with `pool_gone`, each must already be finished.
/// A handle that does not finish within [`LONG`] fails the round, naming
/// every handle not yet finished with its job's ledger state.
fn join_handles(
    found: &mut Vec<String>,
    ledger: &Ledger,
    handles: Vec<(usize, JobHandle<bool>)>,
    pool_gone: bool,
) -> Vec<(usize, Result<bool, JobError>)> {
    let mut results = Vec::with_capacity(handles.len());
    let mut handles = handles.into_iter();
    while let Some((id, mut handle)) = handles.next() {
        if pool_gone && !handle.is_finished() {
            found.push(format!(
                "job {id}: its handle is not finished after its pool shut down"
            ));
        }
        let Some(result) = handle.join_timeout(LONG) else {
            let rest = handles.as_slice().iter();
            let unfinished = rest
                .filter(|(_, handle)| !handle.is_finished())
                .map(|&(id, _)| id);
            let before: Vec<&str> = found.iter().map(String::as_str).collect();
            panic!(
                "job {id}: its handle did not finish within {LONG:?}\n\
                 handles not finished, by ledger state: {}\n\
                 violations found before: {}",
                ledger.by_state(std::iter::once(id).chain(unfinished)),
                if before.is_empty() {
                    "none".to_owned()
                } else {
                    format!("\n  {}", before.join("\n  "))
                }
            );
        };
        results.push((id, result));
    }
    results
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
        conclude(&self.ledger, found, tally)
    }
}
