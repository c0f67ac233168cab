//! `ErrGroup` rounds: submitters `spawn` and `try_spawn` tasks into a group,
//! limited or not, on its own threads or on a `ThreadPool`; the round
//! cancels the group, its parent or its pool, then waits for the group or
//! drops it.

use std::ops::Range;
use std::sync::Arc;
use std::thread;

use brigade::{Context, ErrGroup, GroupError, ShutdownReport, SpawnError, ThreadPool};
use parking_lot::Mutex;

use crate::common::{LONG, SplitMix64};
use crate::feed::{Feed, Offer, join_all, split, unique_name};
use crate::ledger::{
    ACCEPTED, CREATED, Class, Expect, Ledger, Tally, check_no_threads, check_report, common_checks,
    conclude, describe, failed, panicked, started,
};
use crate::work::{Mix, perform, planned_message};
use crate::{PATIENCE, pick, submitter_rng};

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

/// The whole plan a round of `seed` and `jobs` follows, for messages.
pub(crate) fn plan(seed: u64, jobs: usize) -> String {
    format!("{:#?}", GroupPlan::new(seed, jobs))
}

/// One round: `jobs` jobs, planned from `seed`, recorded in `ledger`.
pub(crate) fn round(seed: u64, jobs: usize, ledger: Arc<Ledger>) -> Tally {
    // ErrGroup threads all share one name: one group round at a time, so
    // the leak check counts only this round's.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _alone = ONE_AT_A_TIME.lock();
    let plan = GroupPlan::new(seed, jobs);
    let parent = Context::new();
    let round = GroupRound {
        plan: &plan,
        ledger,
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
                // A group task is a pool job like any other: a panic counts
                // as one. Whether a task that ran counted as completed or
                // failed (its `Err`, or a return after the group was
                // cancelled) is not visible here.
                want.add(if s & panicked(0) != 0 {
                    Class::Panicked
                } else {
                    Class::RanUnseen
                });
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
        conclude(&self.ledger, found, tally)
    }

    /// `wait()` reports the first failure, of a task that did fail, `Ok`
    /// only if no task failed, panicked or was discarded, and `Cancelled`
    /// only if the round cancelled something and no task failed.
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
                self.ledger.state(id) & panicked(0) != 0
                    && message.message() == planned_message(id, 0)
            }),
            Err(GroupError::Discarded(_)) => never_ran > 0,
            // Cancellation kept work from happening (a spawn refused, or a
            // task stopped): only with no failure, and only if something
            // cancelled the group or its parent.
            Err(GroupError::Cancelled(_)) => {
                failures == 0
                    && matches!(
                        self.plan.end,
                        GroupEnd::CancelParent | GroupEnd::CancelGroup | GroupEnd::DiscardPool
                    )
            }
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
