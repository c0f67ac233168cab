//! A join on one of the pool's own workers runs the awaited job there, if
//! no worker has started it: the join cannot deadlock on a job queued
//! behind the worker that waits for it (Java's `ForkJoinPool` does the
//! same for a task that has not started).
//!
//! Each worker keeps, in a thread-local, what running a job of its crew
//! takes ([`Inline`]). The job still goes through the one lifecycle
//! ([`WorkerState::run`]): its context descends from the pool's, the
//! per-job timeout applies, a panic is caught, logged and counted (under
//! `CancelPool` it cancels the pool) — but it is neither timed nor told to
//! the `on_job_done` hook, since its queue stamp stays in the queue. Its
//! envelope stays queued too; the worker that dequeues it finds it run
//! ([`Start::Elsewhere`](super::Start)) and counts nothing, and a discard
//! first claims it (`Exec::claim`), so exactly one of the two happens.
//!
//! A keyed job is different: its envelope's place on the dispatcher's
//! board is its key's order. A join runs it here only while it is its
//! key's next job (in a lane queue, not held behind one of its key): the
//! envelope is then taken off the board as a worker would take it
//! ([`Board::claim`](super::dispatch::Board::claim)), the key stays held
//! during the run, and the run's end releases it as a worker's would.
//!
//! Inline runs nest (an inline job may join another) while the worker's
//! stack has room: past half of it, a join waits as it always did.

use std::cell::{Cell, RefCell};

use super::dispatch;
use super::job::WorkerState;
use super::{Exec, Ran, Run, Shared};
use crate::stats::WorkerSlot;
use crate::sync::{Arc, CachePadded};

/// Rust's stack size for spawned threads when none is set.
const DEFAULT_STACK: usize = 2 * 1024 * 1024;

crate::sync::thread_local! {
    /// On a worker: how to run a job of its crew here.
    static HERE: RefCell<Option<Box<dyn Runner>>> = const { RefCell::new(None) };
}

/// A worker's means to run one job of its crew on its own thread.
trait Runner {
    fn crew(&self) -> usize;
    /// Whether the stack has room for one more nested run.
    fn has_stack(&self) -> bool;
    fn run(&self, job: &mut dyn FnMut(Run<'_>) -> Ran);
    /// Runs `job`, the keyed job whose queued envelope holds `cell`
    /// ([`Exec::holds`]), if the board lets it go now
    /// ([`Board::claim`](super::dispatch::Board::claim)); returns whether
    /// it did.
    fn run_claimed(&self, key: u64, cell: *const (), job: &mut dyn FnMut(Run<'_>) -> Ran) -> bool;
}

struct Inline<J, E> {
    shared: Arc<Shared<J, E>>,
    index: usize,
    slot: Arc<CachePadded<WorkerSlot>>,
    /// An address near the bottom of this worker's stack.
    stack_base: usize,
    /// How far from `stack_base` nested runs may go.
    stack_budget: usize,
}

/// Called once by each worker as it starts.
pub(super) fn enter<J: Send + 'static, E: Exec<J>>(
    shared: &Arc<Shared<J, E>>,
    index: usize,
    slot: &Arc<CachePadded<WorkerSlot>>,
) {
    let marker = 0_u8;
    let runner = Inline {
        shared: Arc::clone(shared),
        index,
        slot: Arc::clone(slot),
        stack_base: std::ptr::from_ref(&marker) as usize,
        stack_budget: shared.config.stack_size.unwrap_or(DEFAULT_STACK) / 2,
    };
    HERE.with(|here| *here.borrow_mut() = Some(Box::new(runner)));
}

/// Whether this thread is one of crew `crew`'s workers (a join here could
/// wait for a job queued behind itself).
pub(crate) fn works_for(crew: usize) -> bool {
    HERE.with(|here| {
        here.borrow()
            .as_deref()
            .is_some_and(|runner| runner.crew() == crew)
    })
}

/// Runs `job` here through the lifecycle if this thread is one of crew
/// `crew`'s workers with stack to spare; returns whether it did.
pub(crate) fn run_inline(crew: usize, job: &mut dyn FnMut(Run<'_>) -> Ran) -> bool {
    runner_for(crew, |runner| runner.run(job)).is_some()
}

/// As [`run_inline`], for a job of key `key` whose envelope on the board
/// holds `cell`: it runs here only if it is its key's next job, which
/// the board then holds as running (see the module docs).
pub(crate) fn run_keyed_inline(
    crew: usize,
    key: u64,
    cell: *const (),
    job: &mut dyn FnMut(Run<'_>) -> Ran,
) -> bool {
    runner_for(crew, |runner| runner.run_claimed(key, cell, job)) == Some(true)
}

/// Calls `f` with this thread's runner if it is one of crew `crew`'s
/// workers with stack to spare.
fn runner_for<R>(crew: usize, f: impl FnOnce(&dyn Runner) -> R) -> Option<R> {
    HERE.with(|here| match here.borrow().as_deref() {
        Some(runner) if runner.crew() == crew && runner.has_stack() => Some(f(runner)),
        _ => None,
    })
}

impl<J: Send + 'static, E: Exec<J>> Runner for Inline<J, E> {
    fn crew(&self) -> usize {
        self.shared.id()
    }

    fn has_stack(&self) -> bool {
        let marker = 0_u8;
        let here = std::ptr::from_ref(&marker) as usize;
        here.abs_diff(self.stack_base) < self.stack_budget
    }

    fn run(&self, job: &mut dyn FnMut(Run<'_>) -> Ran) {
        let state = WorkerState {
            config: &self.shared.config,
            counters: &self.shared.counters,
            slot: &self.slot,
            pool: &self.shared.ctx,
            ctx: self.shared.ctx.clone(),
            spare: Cell::new(None),
            index: Some(self.index),
            board_lane: Cell::new(None),
        };
        // Not timed: the queue stamp is in the envelope, still queued. A
        // panic does not retire this worker in the middle of its own job;
        // it was caught and counted.
        let _ = job(state.run(0, 0, false));
        // The worker's own job, which joined, is still running.
        self.slot.set_busy(true);
    }

    fn run_claimed(&self, key: u64, cell: *const (), job: &mut dyn FnMut(Run<'_>) -> Ran) -> bool {
        let board = &self.shared.board;
        let exec = &self.shared.exec;
        let Some((queued, ticket)) = board.claim(key, &|queued: &J| exec.holds(queued, cell))
        else {
            return false;
        };
        // Held as a worker holds its job's key: the job may join a later
        // job of its own key, which must fail rather than wait for it.
        let key = dispatch::hold_key(self.shared.id(), &ticket);
        self.run(job);
        drop(key);
        // As at a worker's end of a board job, but every job this makes
        // ready goes to idle workers: this one goes back to its join.
        self.shared.finish(Some(ticket), None, true);
        // The envelope of the job that ran above counts nothing; if its
        // handle had cancelled it first, it is counted as never run.
        self.shared.discard(queued);
        true
    }
}
