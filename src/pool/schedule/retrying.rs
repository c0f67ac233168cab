//! A retrying job ([`ThreadPool::submit_retrying`](crate::ThreadPool::submit_retrying)):
//! each attempt is a job on the pool, and each pause between attempts an
//! entry on the pool's timer, so no worker sleeps through a backoff.
//!
//! [`Retry::decide`] makes the same decisions as [`Retry::run`] (the
//! predicate, the attempt limit, the pause, the pool's deadline); the
//! outcome goes into a cell the handle reads, filled once, after the last
//! attempt or when the pool stops during a pause.

use std::task::{Poll, Waker};
use std::time::Instant;

use super::timer::{Due, Entry, Key, PoolDoor, Refused, Slot, Timer};
use crate::context::Context;
use crate::crew::{Ran, Route, Run, Wait};
use crate::error::{Cancelled, JobError, RetryError, TrySubmitError};
use crate::pool::handle::{CellResult, JobCell, SharedTask};
use crate::pool::job::{Job, Task, unerase};
use crate::retry::Retry;
use crate::sync::{Arc, Mutex, Weak};

/// What a retrying job's handle finally holds.
type Outcome<T, E> = Result<T, RetryError<E>>;

/// The cell's closure type: never called (attempts are jobs of their own).
type Unrun<T, E> = fn(&Context) -> Outcome<T, E>;

/// One retrying job's state, shared by its attempts and pauses.
pub(super) struct Retrying<F, T, E> {
    retry: Retry<E>,
    op: Mutex<F>,
    cell: Arc<JobCell<Unrun<T, E>, Outcome<T, E>>>,
    /// Keeps the cell queued; dropped with the last attempt or pause, it
    /// settles a handle nothing filled as cancelled.
    _task: SharedTask,
    /// The pool's context: its deadline bounds the pauses.
    pool: Context,
    route: Option<Route>,
    timer: Weak<Timer>,
    /// The pause waiting on the timer, and the last attempt's error.
    paused: Mutex<(Slot, Option<E>)>,
}

/// The handle's side.
pub(super) struct Promise<F, T, E> {
    cell: Arc<JobCell<Unrun<T, E>, Outcome<T, E>>>,
    retrying: Weak<Retrying<F, T, E>>,
}

/// Attempt `n`, on the timer (a pause ending) or in the queue.
struct Attempt<F, T, E> {
    retrying: Arc<Retrying<F, T, E>>,
    n: u32,
}

impl<F, T, E> Retrying<F, T, E>
where
    F: FnMut(&Context, u32) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    /// A retrying job of `op` and its handle's side.
    pub(super) fn new(
        retry: &Retry<E>,
        op: F,
        pool: &Context,
        crew: usize,
        route: Option<Route>,
        timer: &Arc<Timer>,
    ) -> (Arc<Self>, Arc<Promise<F, T, E>>) {
        let unrun: Unrun<T, E> = |_| unreachable!("brigade: a retrying job's cell is filled");
        let (cell, task) = JobCell::new(unrun, crew);
        let retrying = Arc::new(Self {
            retry: retry.clone(),
            op: Mutex::new(op),
            cell: Arc::clone(&cell),
            _task: task,
            pool: pool.clone(),
            route,
            timer: Arc::downgrade(timer),
            paused: Mutex::new((Slot::default(), None)),
        });
        let promise = Arc::new(Promise {
            cell,
            retrying: Arc::downgrade(&retrying),
        });
        (retrying, promise)
    }

    /// The timer's entry for attempt `n`.
    pub(super) fn attempt(self: &Arc<Self>, n: u32) -> Entry {
        Arc::new(Attempt {
            retrying: Arc::clone(self),
            n,
        })
    }

    /// Notes the pause waiting on the timer, for a cancel, or takes it off
    /// again if the handle was cancelled meanwhile (see `Delayed::placed`).
    pub(super) fn placed(&self, key: Key) {
        let mut paused = self.paused.lock();
        if !self.cell.is_finished() {
            paused.0.note(key);
            return;
        }
        drop(paused);
        if let Some(timer) = self.timer.upgrade() {
            drop(timer.remove(key));
        }
    }

    /// Takes the operation back from a retrying job the timer refused.
    pub(super) fn into_op(self: Arc<Self>) -> Option<F> {
        Arc::into_inner(self).map(|retrying| retrying.op.into_inner())
    }

    /// Attempt `n` ended with `result`: fills the outcome, or pauses on
    /// the timer before attempt `n + 1`.
    fn attempted(self: &Arc<Self>, n: u32, result: Result<Result<T, E>, JobError>) {
        let error = match result {
            Ok(Ok(value)) => return self.cell.fill(Ok(Ok(value))),
            Ok(Err(error)) => error,
            Err(job_error) => return self.cell.fill(Err(job_error)),
        };
        let (error, delay) = match self.retry.decide(&self.pool, n, error) {
            Ok(next) => next,
            Err(ended) => return self.cell.fill(Ok(Err(ended))),
        };
        self.paused.lock().1 = Some(error);
        let Some(timer) = self.timer.upgrade() else {
            return self.stopped(n, Cancelled::Canceled);
        };
        let inserted = timer.insert(Instant::now() + delay, self.attempt(n + 1), || {
            unreachable!("brigade: the first attempt started the timer")
        });
        match inserted {
            Ok(key) => self.placed(key),
            Err(Refused::Stopped(_, reason)) => {
                self.stopped(n, reason.unwrap_or(Cancelled::Canceled));
            }
            Err(Refused::NoThread(_)) => self.stopped(n, Cancelled::Canceled),
        }
    }

    /// The pool stopped after `attempts` attempts, during a pause.
    fn stopped(&self, attempts: u32, reason: Cancelled) {
        let last = self.paused.lock().1.take();
        self.cell.fill(Ok(Err(RetryError::Cancelled {
            attempts,
            reason,
            last,
        })));
    }
}

impl<F, T, E> Due for Attempt<F, T, E>
where
    F: FnMut(&Context, u32) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    fn fire(self: Arc<Self>, door: &PoolDoor, timer: &Arc<Timer>) {
        let retrying = Arc::clone(&self.retrying);
        let attempt = Self {
            retrying: Arc::clone(&retrying),
            n: self.n,
        };
        drop(self);
        let task = match door.submit(Task::boxed(attempt), retrying.route, Wait::Now) {
            Ok(()) => return,
            Err(TrySubmitError::Full(task)) => task,
            Err(refused) => return refused.into_inner().discard(Cancelled::Canceled),
        };
        let again = Arc::new(unerase::<Self>(task));
        if let Some(key) = timer.retry_soon(again, door) {
            retrying.placed(key);
        }
    }

    fn cancel(self: Arc<Self>, reason: Cancelled, _door: Option<&PoolDoor>) {
        self.retrying.stopped(self.n - 1, reason);
    }

    fn is_tick(&self) -> bool {
        false
    }
}

impl<F, T, E> Job for Attempt<F, T, E>
where
    F: FnMut(&Context, u32) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    fn run(self: Box<Self>, run: Run<'_>) -> Ran {
        let Self { retrying, n } = *self;
        let start = |_: &Context| {
            let live = !retrying.cell.is_finished();
            live.then_some(|ctx: &Context| (*retrying.op.lock())(ctx, n))
        };
        run.call(start, |end| retrying.attempted(n, end.into_result()))
    }

    fn discard(self: Box<Self>, reason: Cancelled) {
        self.retrying.stopped(self.n - 1, reason);
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

impl<F, T, E> CellResult<Outcome<T, E>> for Promise<F, T, E>
where
    F: FnMut(&Context, u32) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    fn wait(&self, deadline: Option<Instant>) -> Option<Result<Outcome<T, E>, JobError>> {
        self.cell.wait(deadline)
    }

    /// Attempts are jobs of their own: a join waits for them.
    fn help(&self) -> bool {
        true
    }

    fn poll(&self, waker: &Waker) -> Poll<Result<Outcome<T, E>, JobError>> {
        self.cell.poll(waker)
    }

    /// Settles the handle as cancelled at once; no attempt starts after
    /// this, and a pause waiting on the timer is taken off it.
    fn cancel(&self) {
        self.cell.cancel();
        let Some(retrying) = self.retrying.upgrade() else {
            return;
        };
        let pending = retrying.paused.lock().0.take();
        if let (Some(key), Some(timer)) = (pending, retrying.timer.upgrade()) {
            drop(timer.remove(key));
        }
    }

    fn is_finished(&self) -> bool {
        self.cell.is_finished()
    }
}
