//! `ThreadPool` rounds: submitters `submit`, `try_submit`, `submit_timeout`,
//! `execute` and `try_execute` jobs, cancel random handles and resize the
//! pool, while the round ends it in a random flavour (join, shutdown_now,
//! shutdown_timeout, drop, or a cancel of the pool's or its parent's context).
//!
//! Two more submitter actions race those ends:
//!
//! * an async submit: `submit_async`, driven by the std-only `block_on`
//!   (which fails on a lost wake-up), then the handle is kept for the
//!   round's final join, awaited at once (plain, or as a `CancelOnDrop`),
//!   or wrapped in `cancel_on_drop()` and dropped unread — a cancel
//!   attempt after which the job never starts, or runs once with its
//!   context cancelled (or had finished); its outcome is then unseen;
//! * a nested job: a small tree of jobs, each submitting its children to
//!   the same pool and joining them from inside, so children still queued
//!   run inline on the joining worker (see `nest`); a child the closing
//!   pool refuses is handed back and must not run.
//!
//! Every job of either action is in the ledger and reconciled like the rest.

use std::ops::Range;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use brigade::{
    Context, JobError, JobHandle, PanicPolicy, ShutdownReport, Stats, ThreadPool, TrySubmitError,
};
use parking_lot::{Mutex, RwLock};

use crate::common::{LONG, SplitMix64, block_on};
use crate::feed::{Elastic, Feed, Gaps, Offer, Resizes, join_all, split, unique_name};
use crate::ledger::{
    ACCEPTED, CANCEL_ASKED, CREATED, Class, Expect, GUARD_DROPPED, Ledger, RAN_INLINE, Tally,
    check_no_threads, check_report, check_stats, classify, common_checks, conclude, describe,
    panicked, settle, started,
};
use crate::nest::{self, Shared, Tree};
use crate::routes::{Route, RouteCheck, Routes};
use crate::work::{Mix, Work, perform};
use crate::{PATIENCE, pick, submitter_rng};

/// Whether rounds with a queue of capacity 0 (a rendezvous) submit
/// through `submit_async`. On since the fix for the missed wake-up these
/// rounds found (a retry just before the worker blocked to receive was
/// never woken again; see `crew/room.rs`).
const ASYNC_ON_RENDEZVOUS: bool = true;

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
    /// Per 1,000 jobs: submit through `submit_async`.
    asynchronous: u64,
    /// What may follow an async submit (a dropped guard in half the
    /// rounds: it leaves the job's outcome unseen, and the counts inexact).
    after_async: &'static [AfterAsync],
    /// Per 1,000 jobs: begin a nested action (a tree of 2-5 jobs).
    nested: u64,
    /// A keep-alive, in a third of the rounds: workers leave at the gaps.
    elastic: Option<Elastic>,
    gaps: Gaps,
    /// In the keyed rounds: which executes and submits go along a key or
    /// a lane, and the dispatcher's settings.
    routes: Option<Routes>,
}

/// What a submitter does with the handle an async submit gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterAsync {
    /// Keep it for the round's final join.
    Keep,
    /// Await it at once with `block_on`.
    Await,
    /// Await it at once as a `CancelOnDrop`.
    AwaitGuarded,
    /// Wrap it in `cancel_on_drop()` and drop that unread.
    DropGuarded,
}

/// One submitter action, drawn per job (or per tree of jobs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Execute,
    Submit,
    Async,
    Nested,
}

impl PoolPlan {
    fn new(seed: u64, jobs: usize) -> Self {
        let mut plan = Self::draw(seed, jobs);
        if plan.queue == 0 && !ASYNC_ON_RENDEZVOUS {
            plan.asynchronous = 0;
        }
        plan
    }

    /// The plan as the seed draws it.
    fn draw(seed: u64, jobs: usize) -> Self {
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
            asynchronous: rng.below(300),
            after_async: if rng.below(2) == 0 {
                &[
                    AfterAsync::Keep,
                    AfterAsync::Await,
                    AfterAsync::AwaitGuarded,
                ]
            } else {
                &[
                    AfterAsync::Keep,
                    AfterAsync::Await,
                    AfterAsync::AwaitGuarded,
                    AfterAsync::DropGuarded,
                ]
            },
            nested: rng.below(150),
            elastic: None,
            gaps: Gaps::random(&mut rng, false, jobs, submitters),
            routes: None,
        }
        .elastic(&mut rng)
    }

    /// A keyed round's plan: the plain plan of `seed`, with routes drawn
    /// from a stream of their own.
    fn routed(seed: u64, jobs: usize) -> Self {
        let mut plan = Self::new(seed, jobs);
        plan.routes = Some(Routes::random(&mut SplitMix64(seed ^ 0x6b65_7973)));
        plan
    }

    /// Makes a third of the rounds elastic, drawing the rest of the plan
    /// last so the other rounds keep their plans.
    fn elastic(mut self, rng: &mut SplitMix64) -> Self {
        self.elastic = Elastic::random(rng);
        self.gaps = Gaps::random(rng, self.elastic.is_some(), self.jobs, self.submitters);
        self
    }

    /// The next action, at the plan's rates.
    fn action(&self, rng: &mut SplitMix64) -> Action {
        let roll = rng.below(1000);
        if roll < self.execute {
            return Action::Execute;
        }
        match rng.below(1000) {
            roll if roll < self.asynchronous => Action::Async,
            roll if roll < self.asynchronous + self.nested => Action::Nested,
            _ => Action::Submit,
        }
    }

    fn build(&self, name: &str, parent: &Context) -> ThreadPool {
        let builder = match self.elastic {
            Some(elastic) => ThreadPool::builder()
                .sizing(elastic.sizing(self.workers))
                .keep_alive(elastic.keep_alive),
            None => ThreadPool::builder().workers(self.workers),
        };
        let builder = builder
            .queue_capacity(self.queue)
            .thread_name(name)
            .context(parent)
            .panic_policy(self.policy);
        let builder = match self.job_timeout {
            Some(timeout) => builder.job_timeout(timeout),
            None => builder,
        };
        let builder = match &self.routes {
            Some(routes) => routes.configure(builder, self.workers),
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
    /// `Stats::expired` just before the end.
    expired: u64,
}

struct PoolRound<'a> {
    plan: &'a PoolPlan,
    ledger: Arc<Ledger>,
    /// The pool's slot and the results read before the end, shared with
    /// the submitters and with the jobs that submit jobs.
    shared: Arc<Shared>,
    feed: Feed,
    /// The run-time check of routed jobs, in the keyed rounds.
    check: Option<Arc<RouteCheck>>,
}

/// The whole plan a round of `seed` and `jobs` follows, for messages.
pub(crate) fn plan(seed: u64, jobs: usize) -> String {
    format!("{:#?}", PoolPlan::new(seed, jobs))
}

/// One round: `jobs` jobs, planned from `seed`, recorded in `ledger`.
pub(crate) fn round(seed: u64, jobs: usize, ledger: Arc<Ledger>) -> Tally {
    run(&PoolPlan::new(seed, jobs), ledger)
}

/// As [`plan`], for a keyed round.
pub(crate) fn keyed_plan(seed: u64, jobs: usize) -> String {
    format!("{:#?}", PoolPlan::routed(seed, jobs))
}

/// A keyed round: as [`round`], with executes and submits along keys
/// and lanes, checked by a [`RouteCheck`].
pub(crate) fn keyed_round(seed: u64, jobs: usize, ledger: Arc<Ledger>) -> Tally {
    run(&PoolPlan::routed(seed, jobs), ledger)
}

fn run(plan: &PoolPlan, ledger: Arc<Ledger>) -> Tally {
    let check = plan
        .routes
        .map(|routes| RouteCheck::new(routes, Arc::clone(&ledger)));
    let jobs = plan.jobs;
    let name = unique_name("ctp");
    let parent = Context::new();
    let round = PoolRound {
        plan,
        ledger,
        shared: Arc::new(Shared {
            slot: RwLock::new(Some(plan.build(&name, &parent))),
            results: Mutex::new(Vec::new()),
            timeout: plan.job_timeout,
            keyed_children: plan.routes.is_some(),
        }),
        feed: Feed::new(plan.trigger_at, plan.submitters),
        check,
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
    let remaining = round.shared.slot.write().take();
    let mut results = join_handles(&mut found, &round.ledger, handles, remaining.is_none());
    if let Some(pool) = remaining {
        round.finish(pool, plan.then, &mut ending, &mut found);
    }
    check_no_threads(&mut found, &name);
    // Every job that joins children has ended: the pool's threads are gone.
    results.append(&mut round.shared.results.lock());
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
        let _gaps = self.plan.gaps.submitter();
        let mut rng = submitter_rng(self.plan.seed, index);
        let mut handles = Vec::new();
        let (mut next, mut done) = (ids.start, 0);
        while next < ids.end {
            self.plan.gaps.before_job(done, || {
                let slot = self.shared.slot.read();
                slot.as_ref().map(|pool| pool.stats().workers)
            });
            self.plan.resizes.before_job(index, done, |target| {
                self.shared.slot.read().as_ref().is_some_and(|pool| {
                    pool.set_workers(target).expect("resize targets are valid");
                    true
                })
            });
            done += 1;
            let (offer, used) = match self.plan.action(&mut rng) {
                Action::Nested if ids.end - next >= 2 => {
                    let size = (2 + rng.below(4) as usize).min(ids.end - next);
                    let block = next..next + size;
                    (self.submit_tree(block, &mut rng, &mut handles), size)
                }
                Action::Execute => (self.execute_one(index, next, &mut rng), 1),
                Action::Async => (
                    self.submit_one(index, next, true, &mut rng, &mut handles),
                    1,
                ),
                _ => (
                    self.submit_one(index, next, false, &mut rng, &mut handles),
                    1,
                ),
            };
            next += used;
            if matches!(offer, Offer::Gone) {
                break;
            }
        }
        handles
    }

    /// A fire-and-forget job through `execute` or `try_execute`.
    fn execute_one(&self, submitter: usize, id: usize, rng: &mut SplitMix64) -> Offer<()> {
        let token = self.ledger.token(id);
        let work = self.plan.mix.pick(rng);
        let (route, check) = self.route(submitter, rng);
        let job = move || {
            let _started = check.map(|(check, route)| check.start(id, route));
            perform(&token, work, 0, None, None);
        };
        self.offer_execute(id, job, route, rng)
    }

    /// In a keyed round, the route of submitter `submitter`'s next job
    /// (`None`: plain) and, for a routed one, the check its run reports
    /// to.
    fn route(
        &self,
        submitter: usize,
        rng: &mut SplitMix64,
    ) -> (Option<Route>, Option<(Arc<RouteCheck>, Route)>) {
        let (Some(routes), Some(check)) = (&self.plan.routes, &self.check) else {
            return (None, None);
        };
        let route = routes.draw(rng, submitter);
        (route, route.map(|route| (Arc::clone(check), route)))
    }

    /// A job through the submit family, or through `submit_async`.
    fn submit_one(
        &self,
        submitter: usize,
        id: usize,
        asynchronous: bool,
        rng: &mut SplitMix64,
        handles: &mut Vec<(usize, JobHandle<bool>)>,
    ) -> Offer<()> {
        let token = self.ledger.token(id);
        let work = self.plan.mix.pick(rng);
        let timeout = self.plan.job_timeout;
        // `submit_async` has no routed form.
        let (route, check) = match asynchronous {
            true => (None, None),
            false => self.route(submitter, rng),
        };
        let job = move |ctx: &Context| {
            let _started = check.map(|(check, route)| check.start(id, route));
            perform(&token, work, 0, Some(ctx), timeout)
        };
        match self.offer(id, job, asynchronous, route, rng) {
            Offer::Accepted(handle) if asynchronous => {
                self.after_async(id, handle, rng, handles);
                Offer::Accepted(())
            }
            Offer::Accepted(handle) => {
                self.keep(id, handle, rng, handles);
                Offer::Accepted(())
            }
            Offer::Refused => Offer::Refused,
            Offer::Gone => Offer::Gone,
        }
    }

    /// A nested action over the ids in `block`: the root of a tree of jobs
    /// that submit and join their children (see `nest`).
    fn submit_tree(
        &self,
        block: Range<usize>,
        rng: &mut SplitMix64,
        handles: &mut Vec<(usize, JobHandle<bool>)>,
    ) -> Offer<()> {
        let works: Vec<Work> = block.clone().map(|_| self.plan.mix.pick(rng)).collect();
        let fan = 1 + rng.below(3) as usize;
        let tree = Tree::plan(block, &works, fan);
        let id = tree.id;
        let job = nest::job(Arc::clone(&self.shared), self.ledger.token(id), tree);
        match self.offer(id, job, false, None, rng) {
            Offer::Accepted(handle) => {
                self.keep(id, handle, rng, handles);
                Offer::Accepted(())
            }
            Offer::Refused => Offer::Refused,
            Offer::Gone => Offer::Gone,
        }
    }

    /// Keeps `handle` for the round's final join, maybe cancelling it or
    /// one of the few before it.
    fn keep(
        &self,
        id: usize,
        handle: JobHandle<bool>,
        rng: &mut SplitMix64,
        handles: &mut Vec<(usize, JobHandle<bool>)>,
    ) {
        handles.push((id, handle));
        self.maybe_cancel(handles, rng);
    }

    /// What follows an async submit: keep the handle, await it now (plain
    /// or guarded), or drop it guarded, which cancels the job.
    fn after_async(
        &self,
        id: usize,
        handle: JobHandle<bool>,
        rng: &mut SplitMix64,
        handles: &mut Vec<(usize, JobHandle<bool>)>,
    ) {
        let result = match pick(rng, self.plan.after_async) {
            AfterAsync::Keep => return self.keep(id, handle, rng, handles),
            AfterAsync::Await => block_on(handle),
            AfterAsync::AwaitGuarded => block_on(handle.cancel_on_drop()),
            AfterAsync::DropGuarded => {
                self.ledger.mark(id, CANCEL_ASKED);
                drop(handle.cancel_on_drop());
                self.ledger.mark(id, GUARD_DROPPED);
                return;
            }
        };
        self.shared.results.lock().push((id, result));
    }

    /// Submits through a random member of the submit family, resubmitting
    /// what a full queue hands back; or, if `asynchronous`, through
    /// `submit_async` driven by `block_on` (which waits out a full queue).
    /// Along `route`, if any.
    fn offer<F>(
        &self,
        id: usize,
        mut job: F,
        asynchronous: bool,
        route: Option<Route>,
        rng: &mut SplitMix64,
    ) -> Offer<JobHandle<bool>>
    where
        F: FnOnce(&Context) -> bool + Send + 'static,
    {
        for attempt in 0.. {
            let slot = self.shared.slot.read();
            let Some(pool) = slot.as_ref() else {
                drop(slot);
                return self.feed.hand_back(&self.ledger, id, job, Offer::Gone);
            };
            let method = match (asynchronous, attempt >= PATIENCE) {
                (true, _) => 3,
                (false, true) => 0,
                (false, false) => rng.below(3),
            };
            let wait = Duration::from_micros(rng.below(300));
            let result = match (method, route) {
                (0, None) => pool.submit(job).map_err(TrySubmitError::from),
                (1, None) => pool.try_submit(job),
                (2, None) => pool.submit_timeout(job, wait),
                (0, Some(route)) => route.on(pool).submit(job).map_err(TrySubmitError::from),
                (1, Some(route)) => route.on(pool).try_submit(job),
                (2, Some(route)) => route.on(pool).submit_timeout(job, wait),
                _ => block_on(pool.submit_async(job)).map_err(TrySubmitError::from),
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
    fn offer_execute<F>(
        &self,
        id: usize,
        mut job: F,
        route: Option<Route>,
        rng: &mut SplitMix64,
    ) -> Offer<()>
    where
        F: FnOnce() + Send + 'static,
    {
        for attempt in 0.. {
            let slot = self.shared.slot.read();
            let Some(pool) = slot.as_ref() else {
                drop(slot);
                return self.feed.hand_back(&self.ledger, id, job, Offer::Gone);
            };
            let blocking = attempt >= PATIENCE || rng.below(2) == 0;
            let result = match (blocking, route) {
                (true, None) => pool.execute(job).map_err(TrySubmitError::from),
                (false, None) => pool.try_execute(job),
                (true, Some(route)) => route.on(pool).execute(job).map_err(TrySubmitError::from),
                (false, Some(route)) => route.on(pool).try_execute(job),
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
                if let Some(pool) = &*self.shared.slot.read() {
                    pool.context().cancel();
                }
            }
            end => {
                let taken = self.shared.slot.write().take();
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
            // An elastic pool's idle workers leave: no size to wait for.
            let full = !ending.cancelled
                && self.plan.policy == PanicPolicy::Respawn
                && self.plan.elastic.is_none();
            let size = self.plan.resizes.size();
            let kept = || {
                let inline_panic = RAN_INLINE | panicked(0);
                self.ledger.count(|s| s & inline_panic == inline_panic)
            };
            ending.stats = settle(found, || pool.stats(), full.then_some(size), kept);
        }
        ending.expired = pool.stats().expired;
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
                None if s & GUARD_DROPPED != 0 => Class::RanUnseen,
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
        if let Some(check) = &self.check {
            check.check_caps(&mut found);
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
        let mut tally = Tally::of(&self.ledger, &self.feed, lost);
        tally.expired = ending.expired;
        conclude(&self.ledger, found, tally)
    }
}
