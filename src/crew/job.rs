//! The job lifecycle, written once.
//!
//! Every front door — `execute`, `submit` handles, `WorkerPool`, pipeline
//! stages, scoped jobs, map items — hands the crew a job and a way to
//! *deliver* its end. The crew alone builds the job's context, runs it
//! under the one `catch_unwind`, classifies the end into an [`End`],
//! records it, delivers it, and recycles the context. A front door's
//! [`Exec::run`](super::Exec::run) gets a [`Run`] and can only give the
//! worker loop the [`Ran`] it needs back by calling one of `Run`'s
//! methods, so no front door can skip a step or order them its own way.
//!
//! # A job's states
//!
//! | from | to | edge | who moves it |
//! |---|---|---|---|
//! | — | queued | accepted by [`Crew::submit`](super::Crew::submit) | the submitter |
//! | queued | running | taken from the queue, paced, started | a worker (or, for scoped jobs and map chunks, the waiting caller) |
//! | — | running | not queued: the queue was full, so its submitter paced and started it (`Crew::submit_or_run_here`, `here.rs`); cancelled first, it is handed back instead | the submitter |
//! | queued | discarded | the pool is cancelled or shut down; the pace wait outlives the pool's deadline | whoever finds it: a worker on its way out, the cancelling call, a submitter whose send raced the cancel |
//! | queued | cancelled | its handle's `cancel()` ([`Run::skip`] counts it when a worker dequeues it) | the handle's owner |
//! | running | done | returned in time | the running thread |
//! | running | failed | returned a value the front door calls a failure (a stage's or `try_map`'s `Err`) | the running thread |
//! | running | panicked | unwound; caught once, here | the running thread |
//! | running | timed out | returned after its own per-job timeout; the value is dropped | the running thread |
//! | running | cancelled | returned after its context was cancelled (or the pool's deadline passed); the value is dropped | the running thread |
//!
//! Every end is recorded (counted, timed if sampled, told to the
//! `on_job_done` hook, and for a job from the dispatcher's board no longer
//! counted as running in its lane) *before* it is delivered, so whoever
//! receives a result also finds it in the pool's stats. A discarded job
//! is reported through [`Exec::discard`](super::Exec::discard), recorded
//! by the crew.
//!
//! # Contexts
//!
//! A job's context is a child of its worker's own registered child of the
//! pool's context (or of a parent the front door names, such as a map's),
//! with the earlier of the per-job timeout — counted from when the job
//! starts — and the parent's deadline. A value returned after the context
//! is done is dropped: past the job's *own* timeout the job timed out,
//! otherwise it was cancelled with the context's reason.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use super::{CrewConfig, PanicPolicy, wait_since};
use crate::context::Context;
use crate::error::{Cancelled, JobError};
use crate::stats::{Counters, JobEvent, JobOutcome, WorkerSlot};
use crate::unwind::{self, Caught};

/// How a job that started ended: the one outcome type every front door
/// delivers.
pub(crate) enum End<T> {
    /// Returned in time.
    Returned(T),
    /// Panicked; the payload is kept so a scope can resume it as it was.
    Panicked(Caught),
    /// Returned after its own per-job timeout; the value was dropped.
    TimedOut,
    /// Returned after its context was cancelled (or the pool's deadline
    /// passed); the value was dropped.
    Cancelled(Cancelled),
}

impl<T> End<T> {
    /// The value, or the error a caller sees (dropping a panic payload).
    pub(crate) fn into_result(self) -> Result<T, JobError> {
        match self {
            Self::Returned(value) => Ok(value),
            Self::Panicked(caught) => Err(JobError::Panicked(caught.into_panic())),
            Self::TimedOut => Err(JobError::TimedOut),
            Self::Cancelled(reason) => Err(JobError::Cancelled(reason)),
        }
    }

    /// What the pool counts for this end; `failed` judges a returned value.
    fn outcome(&self, failed: impl FnOnce(&T) -> bool) -> JobOutcome {
        match self {
            Self::Returned(value) if failed(value) => JobOutcome::Failed,
            Self::Returned(_) => JobOutcome::Completed,
            Self::Panicked(_) => JobOutcome::Panicked,
            Self::TimedOut => JobOutcome::TimedOut,
            Self::Cancelled(_) => JobOutcome::Interrupted,
        }
    }
}

/// Runs `f` under `ctx` inside the crate's one `catch_unwind` for jobs,
/// and classifies the end. `own` is the job's own deadline, if it has a
/// per-job timeout.
#[inline]
fn call<T>(ctx: &Context, own: Option<Instant>, f: impl FnOnce(&Context) -> T) -> End<T> {
    match catch_unwind(AssertUnwindSafe(|| f(ctx))) {
        Ok(value) => match ctx.reason() {
            None => End::Returned(value),
            Some(reason) => {
                unwind::drop_quietly(value);
                let own_timeout =
                    reason == Cancelled::DeadlineExceeded && own.is_some() && ctx.deadline() == own;
                if own_timeout {
                    End::TimedOut
                } else {
                    End::Cancelled(reason)
                }
            }
        },
        Err(payload) => End::Panicked(Caught::new(payload)),
    }
}

/// Logs a caught panic: once for each job that panicked, wherever it ran.
#[cold]
fn log_panic(worker: Option<&WorkerState<'_>>, caught: &Caught) {
    let message = unwind::describe(caught.payload());
    let at = caught
        .location()
        .map(|location| format!(" at {location}"))
        .unwrap_or_default();
    match worker.and_then(|worker| worker.index.map(|index| (worker, index))) {
        Some((worker, index)) => log::warn!(
            "brigade: a job panicked on worker {}-{index}{at}: {message}",
            worker.config.thread_name,
        ),
        None => log::warn!("brigade: a job panicked on the thread that ran it{at}: {message}"),
    }
}

fn panic_of<T>(end: &End<T>) -> Option<&Caught> {
    match end {
        End::Panicked(caught) => Some(caught),
        _ => None,
    }
}

/// What a job's `start` found: its closure to run, or why there is none.
pub(crate) enum Start<F> {
    Run(F),
    /// Cancelled through its handle before it started: counted as never
    /// run.
    Skip,
    /// Run by a join on another thread, which counted it.
    Elsewhere,
}

impl<F> From<Option<F>> for Start<F> {
    #[inline]
    fn from(f: Option<F>) -> Self {
        f.map_or(Self::Skip, Self::Run)
    }
}

/// What the worker loop learns from a job: whether it panicked (a
/// `Respawn` pool then retires the worker). Only [`Run`] makes one.
#[must_use]
pub(crate) struct Ran {
    panicked: bool,
}

impl Ran {
    pub(crate) fn panicked(&self) -> bool {
        self.panicked
    }
}

/// What a worker keeps across the jobs it runs.
pub(crate) struct WorkerState<'w> {
    pub(super) config: &'w CrewConfig,
    pub(super) counters: &'w Counters,
    pub(super) slot: &'w WorkerSlot,
    /// The pool's context, cancelled on a panic under `CancelPool`.
    pub(super) pool: &'w Context,
    /// This worker's own registered child of the pool's context: the
    /// parent of the jobs it runs (see `Shared::work`).
    pub(super) ctx: Context,
    /// The last job's context, kept for reuse (see `Context::derive_reusing`).
    pub(super) spare: Cell<Option<Context>>,
    /// The worker's index; `None` on a submitter running its own job
    /// (`here.rs`).
    pub(super) index: Option<usize>,
    /// For a job from the dispatcher's board, its lane: noted in the
    /// worker's slot when the end is recorded, before it is delivered, so
    /// whoever receives the result no longer finds the job running in
    /// `Stats::lanes`. (The ticket itself goes back after the delivery: a
    /// key's next job must not overtake this one's result.)
    pub(super) board_lane: Cell<Option<usize>>,
}

impl WorkerState<'_> {
    /// The running job's end is recorded (see `board_lane`).
    #[inline]
    fn ended(&self) {
        if let Some(lane) = self.board_lane.take() {
            self.slot.set_ending(Some(lane));
        }
    }
}

/// One job's pass through the lifecycle: from a worker that dequeued it
/// ([`WorkerState::run`]), or on a thread that helps run its own jobs
/// ([`Run::here`]: a scope's caller, a map inside a pool job), which
/// records nothing in the pool's stats.
pub(crate) struct Run<'w> {
    worker: Option<&'w WorkerState<'w>>,
    /// The parent of the job's context.
    parent: &'w Context,
    /// Whether `parent` is the worker's own context, whose last job's
    /// context allocation may be reused.
    reuse: bool,
    job_timeout: Option<Duration>,
    seq: u64,
    /// When the job was queued (a stats stamp; 0 if not stamped).
    queued_at: u64,
    /// Whether this job is timed (sampled, or a hook wants every job).
    timed: bool,
}

impl<'w> WorkerState<'w> {
    /// The lifecycle for the job with sequence number `seq`, queued at
    /// `queued_at`.
    #[inline]
    pub(crate) fn run(&'w self, seq: u64, queued_at: u64, timed: bool) -> Run<'w> {
        self.slot.set_busy(true);
        Run {
            worker: Some(self),
            parent: &self.ctx,
            reuse: true,
            job_timeout: self.config.job_timeout,
            seq,
            queued_at,
            timed,
        }
    }
}

impl<'w> Run<'w> {
    /// The lifecycle on a thread that is not running the job as a worker
    /// of the crew: the context descends from `parent`, and nothing is
    /// recorded.
    pub(crate) fn here(parent: &'w Context, job_timeout: Option<Duration>) -> Self {
        Self {
            worker: None,
            parent,
            reuse: false,
            job_timeout,
            seq: 0,
            queued_at: 0,
            timed: false,
        }
    }

    /// The context the job's own descends from: on a worker, the worker's
    /// child of the pool's; in a join's inline run, the pool's.
    pub(crate) fn parent(&self) -> &'w Context {
        self.parent
    }

    /// Runs the job under a context descended from `parent` instead of the
    /// worker's (a map's items, under the map's context).
    pub(crate) fn under(mut self, parent: &'w Context) -> Self {
        self.parent = parent;
        self.reuse = false;
        self
    }

    /// Builds the job's context; the second value is its own deadline.
    fn context(&self) -> (Context, Option<Instant>) {
        let own = self.own_deadline();
        let ctx = match self.worker {
            Some(worker) if self.reuse => self.parent.derive_reusing(own, worker.spare.take()),
            _ => self.parent.derive(own),
        };
        (ctx, own)
    }

    /// Runs `f` with its context and delivers the end. `start` sees the
    /// context first and takes the job's closure out, or returns `None` if
    /// the job was cancelled through its handle before it started.
    #[inline]
    pub(crate) fn call<F, T, S>(
        self,
        start: impl FnOnce(&Context) -> S,
        deliver: impl FnOnce(End<T>),
    ) -> Ran
    where
        F: FnOnce(&Context) -> T,
        S: Into<Start<F>>,
    {
        self.call_judged(start, |_| false, deliver)
    }

    /// Like [`call`](Self::call), but a returned value for which `failed`
    /// is true counts as a failure (a pipeline stage's `Err`).
    #[inline]
    pub(crate) fn call_judged<F, T, S>(
        self,
        start: impl FnOnce(&Context) -> S,
        failed: impl FnOnce(&T) -> bool,
        deliver: impl FnOnce(End<T>),
    ) -> Ran
    where
        F: FnOnce(&Context) -> T,
        S: Into<Start<F>>,
    {
        let (ctx, own) = self.context();
        let f = match start(&ctx).into() {
            Start::Run(f) => f,
            Start::Skip => {
                self.recycle(ctx);
                return self.skip();
            }
            Start::Elsewhere => {
                self.recycle(ctx);
                return self.elsewhere();
            }
        };
        let started = self.timed.then(Instant::now);
        let end = call(&ctx, own, f);
        let ran = self.record(end.outcome(failed), started, panic_of(&end));
        deliver(end);
        self.recycle(ctx);
        ran
    }

    /// Runs a job that takes no context (`execute`): no context is built,
    /// and it cannot time out.
    #[inline]
    pub(crate) fn call_plain(self, f: impl FnOnce()) -> Ran {
        let started = self.timed.then(Instant::now);
        let end = match catch_unwind(AssertUnwindSafe(f)) {
            Ok(()) => End::Returned(()),
            Err(payload) => End::Panicked(Caught::new(payload)),
        };
        let ran = self.record(end.outcome(|()| false), started, panic_of(&end));
        if let End::Panicked(caught) = end {
            unwind::drop_quietly(caught);
        }
        ran
    }

    /// A job that ran elsewhere, through its handle's join (see
    /// `crew/inline.rs`), which counted it: nothing more to count.
    fn elsewhere(self) -> Ran {
        if let Some(worker) = self.worker {
            worker.slot.set_busy(false);
        }
        Ran { panicked: false }
    }

    /// A job cancelled through its handle before it started: counted as
    /// never run.
    pub(crate) fn skip(self) -> Ran {
        self.record(JobOutcome::Cancelled, self.timed.then(Instant::now), None)
    }

    fn recycle(&self, ctx: Context) {
        match self.worker {
            Some(worker) => worker.spare.set(Some(ctx)),
            None => drop(ctx),
        }
    }

    /// Counts the end, marks the worker idle, times a sampled job, tells
    /// the hook, logs a panic and, under `CancelPool`, cancels the pool —
    /// all before the end is delivered, so whoever receives it sees the
    /// effects.
    fn record(&self, outcome: JobOutcome, started: Option<Instant>, panic: Option<&Caught>) -> Ran {
        let panicked = outcome == JobOutcome::Panicked;
        if let Some(caught) = panic {
            log_panic(self.worker, caught);
        }
        let Some(worker) = self.worker else {
            return Ran { panicked };
        };
        worker.slot.set_busy(false);
        worker.slot.record(outcome);
        if let Some(started) = started {
            self.report(worker, self.seq, outcome, started);
        }
        worker.ended();
        if panicked && worker.config.panic_policy == PanicPolicy::CancelPool {
            worker.pool.cancel();
        }
        Ran { panicked }
    }

    /// Records a timed job's queue wait and run time, keeps the stats
    /// window moving, and tells the `on_job_done` hook about job `seq`.
    #[cold]
    fn report(&self, worker: &WorkerState<'_>, seq: u64, outcome: JobOutcome, started: Instant) {
        let ended = Instant::now();
        let ran = outcome != JobOutcome::Cancelled;
        let run = if ran {
            ended.saturating_duration_since(started)
        } else {
            Duration::ZERO
        };
        let queue_wait = wait_since(self.queued_at, started);
        if ran {
            worker.slot.record_timing(queue_wait, run, 1);
        }
        worker.counters.tick(ended);
        if let Some(hook) = &worker.config.on_job_done {
            let event = JobEvent::new(seq, outcome, queue_wait.unwrap_or_default(), run);
            unwind::call_logged("on_job_done hook", || hook(&event));
        }
    }
}

/// The ends of a batch's items, in input order. While every item returns
/// cleanly the batch carries bare values (`C`, what its [`Judge`] keeps of
/// a clean value): for a `u64`, 8 bytes an item on the way back instead
/// of 32.
pub(crate) enum Ends<R, C> {
    Values(Vec<C>),
    Mixed(Vec<End<R>>),
}

/// Which of a batch's returned values are failures, and what of a clean
/// one crosses back: all of a plain map's value, the inside of
/// `try_map`'s `Ok`. A type rather than a closure, so the item loop asks
/// it with no call, and a clean chunk of `Result`s comes back as bare
/// values, which the consumer copies in one block.
pub(crate) trait Judge<R>: 'static {
    /// What a clean value crosses back as.
    type Clean;

    /// Whether any value can be a failure.
    const FAILS: bool;

    /// Whether `value` is a failure, which cancels the batch's parent.
    fn failed(value: &R) -> bool;

    /// The clean part of `value`, or `value` itself if it is a failure.
    fn clean(value: R) -> Result<Self::Clean, R>;

    /// A clean value as it was returned.
    fn returned(clean: Self::Clean) -> R;
}

/// How a batch's items ended, counted once per batch.
#[derive(Default)]
struct Tally {
    counts: [u64; 6],
}

impl Tally {
    const OUTCOMES: [JobOutcome; 6] = [
        JobOutcome::Completed,
        JobOutcome::Failed,
        JobOutcome::Panicked,
        JobOutcome::TimedOut,
        JobOutcome::Interrupted,
        JobOutcome::Cancelled,
    ];

    fn add(&mut self, outcome: JobOutcome, n: u64) {
        if let Some(at) = Self::OUTCOMES.iter().position(|&o| o == outcome) {
            self.counts[at] += n;
        }
    }

    fn panicked(&self) -> bool {
        self.counts[2] > 0
    }
}

/// One item's end and what the pool counts for it.
type Settled<R> = (End<R>, JobOutcome);

impl Run<'_> {
    /// Runs each of `items` as a job of its own — a map chunk's items —
    /// under this run's parent context, and delivers their ends in order.
    ///
    /// Each item gets the lifecycle of a job: it does not start once the
    /// parent is done (it ends `Cancelled` and counts as never run); its
    /// value is dropped if the parent is done by the time it returns
    /// (`Cancelled`) or it ran past its own per-job timeout (`TimedOut`);
    /// a panic is caught, and the items after it still run. A value for
    /// which `failed` is true cancels the parent at once, so no item of
    /// any batch under it starts after the failure is known (fail-fast).
    ///
    /// Items take no context, so their timeout needs no context of its
    /// own: it is checked when each item returns. A sampled batch is timed
    /// as one sample standing for all its items; with an `on_job_done`
    /// hook every item is timed and reported.
    pub(crate) fn call_each<T, R, J: Judge<R>>(
        self,
        items: Vec<T>,
        f: &impl Fn(T) -> R,
        deliver: impl FnOnce(Ends<R, J::Clean>),
    ) -> Ran {
        let hooked = self
            .worker
            .is_some_and(|worker| worker.config.on_job_done.is_some());
        // Only a sampled batch without a hook is timed as a whole.
        let started = (self.timed && !hooked).then(Instant::now);
        let total = items.len();
        let mut items = items.into_iter();
        let mut tally = Tally::default();
        let (values, odd) = if hooked {
            (Vec::new(), None)
        } else {
            self.fast::<T, R, J>(&mut items, f)
        };
        tally.add(JobOutcome::Completed, values.len() as u64);
        let ends = if values.len() == total {
            Ends::Values(values)
        } else {
            let mut ends: Vec<End<R>> = Vec::with_capacity(total);
            ends.extend(
                values
                    .into_iter()
                    .map(|clean| End::Returned(J::returned(clean))),
            );
            if let Some((end, outcome)) = odd {
                tally.add(outcome, 1);
                ends.push(end);
            }
            for item in items {
                let seq = hooked.then(|| self.seq + ends.len() as u64);
                let (end, outcome) = self.one::<T, R, J>(item, f, seq);
                tally.add(outcome, 1);
                ends.push(end);
            }
            Ends::Mixed(ends)
        };
        let ran = self.record_batch(&tally, total, started);
        deliver(ends);
        ran
    }
}

impl Run<'_> {
    /// The fast path of [`call_each`](Self::call_each): bare values under
    /// one `catch_unwind`, until the first item that does not simply
    /// return in time (returned with it, settled).
    #[inline]
    fn fast<T, R, J: Judge<R>>(
        &self,
        items: &mut std::vec::IntoIter<T>,
        f: &impl Fn(T) -> R,
    ) -> (Vec<J::Clean>, Option<Settled<R>>) {
        let mut values = Vec::with_capacity(items.len());
        let mut odd = None;
        let caught = catch_unwind(AssertUnwindSafe(|| {
            if self.parent.is_done() {
                odd = items.next().map(|item| self.unstarted(item));
                return;
            }
            for item in items.by_ref() {
                let own = self.own_deadline();
                let value = f(item);
                // One look at the parent per item: it also stands for the
                // next item's look before it starts.
                let late = own.is_some_and(|own| Instant::now() >= own);
                if late || self.parent.is_done() {
                    odd = Some(self.settle::<R, J>(value, own));
                    return;
                }
                match J::clean(value) {
                    Ok(clean) => values.push(clean),
                    Err(failure) => {
                        odd = Some(self.settle::<R, J>(failure, own));
                        return;
                    }
                }
            }
        }));
        if let Err(payload) = caught {
            let caught = Caught::new(payload);
            log_panic(self.worker, &caught);
            odd = Some((End::Panicked(caught), JobOutcome::Panicked));
        }
        (values, odd)
    }

    /// One item of the slow path, timed and reported to the hook as job
    /// `seq` when that is given.
    fn one<T, R, J: Judge<R>>(&self, item: T, f: &impl Fn(T) -> R, seq: Option<u64>) -> Settled<R> {
        if self.parent.is_done() {
            return self.unstarted(item);
        }
        let started = seq.map(|_| Instant::now());
        let own = self.own_deadline();
        let settled = match catch_unwind(AssertUnwindSafe(|| f(item))) {
            Ok(value) => self.settle::<R, J>(value, own),
            Err(payload) => {
                let caught = Caught::new(payload);
                log_panic(self.worker, &caught);
                (End::Panicked(caught), JobOutcome::Panicked)
            }
        };
        if let (Some(worker), Some(seq), Some(started)) = (self.worker, seq, started) {
            self.report(worker, seq, settled.1, started);
        }
        settled
    }

    /// Inlined: it runs once per map item, and a call into this crate from
    /// the user's monomorphised item loop cost a third of the loop (#16).
    #[inline]
    fn own_deadline(&self) -> Option<Instant> {
        self.job_timeout.and_then(|t| Instant::now().checked_add(t))
    }

    /// Classifies an item's returned value; a failure cancels the parent.
    fn settle<R, J: Judge<R>>(&self, value: R, own: Option<Instant>) -> Settled<R> {
        if let Some(reason) = self.parent.reason() {
            unwind::drop_quietly(value);
            return (End::Cancelled(reason), JobOutcome::Interrupted);
        }
        if own.is_some_and(|own| Instant::now() >= own) {
            unwind::drop_quietly(value);
            return (End::TimedOut, JobOutcome::TimedOut);
        }
        if J::failed(&value) {
            self.parent.cancel();
            return (End::Returned(value), JobOutcome::Failed);
        }
        (End::Returned(value), JobOutcome::Completed)
    }

    /// An item that never started: its parent was done first.
    fn unstarted<T, R>(&self, item: T) -> Settled<R> {
        unwind::drop_quietly(item);
        let reason = self.parent.reason().unwrap_or(Cancelled::Canceled);
        (End::Cancelled(reason), JobOutcome::Cancelled)
    }

    /// Records a batch's tally (and, for a sampled batch without a hook,
    /// one timing that stands for all its items).
    fn record_batch(&self, tally: &Tally, items: usize, started: Option<Instant>) -> Ran {
        let panicked = tally.panicked();
        let Some(worker) = self.worker else {
            return Ran { panicked };
        };
        worker.slot.set_busy(false);
        for (outcome, &n) in Tally::OUTCOMES.iter().zip(&tally.counts) {
            if n > 0 {
                worker.slot.record_many(*outcome, n);
            }
        }
        if let Some(started) = started {
            let ended = Instant::now();
            let run = ended.saturating_duration_since(started);
            let per = u64::try_from(items).unwrap_or(u64::MAX);
            worker
                .slot
                .record_timing(wait_since(self.queued_at, started), run, per);
            worker.counters.tick(ended);
        }
        worker.ended();
        if panicked && worker.config.panic_policy == PanicPolicy::CancelPool {
            worker.pool.cancel();
        }
        Ran { panicked }
    }
}
