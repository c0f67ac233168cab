//! A delayed job: a submitted job's cell, held by the pool's timer until
//! its due time, behind a handle that can take it off the timer.

use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use super::timer::{Due, Key, PoolDoor, Slot, Timer};
use crate::context::Context;
use crate::crew::{Route, Wait};
use crate::error::{Cancelled, JobError, TrySubmitError};
use crate::pool::handle::{CellResult, JobCell, SharedTask};
use crate::pool::job::Task;
use crate::sync::{Arc, Condvar, Mutex, Weak};

/// How often a join waiting on a worker for the due time looks again.
const WAIT_SLICE: Duration = Duration::from_millis(10);

/// The handle's side of a delayed job: its cell, and where it waits on
/// the timer.
pub(super) struct Delayed<F, T> {
    cell: Arc<JobCell<F, T>>,
    crew: usize,
    /// Set once the job is due and handed to the pool: from then on a
    /// join on a worker may run it inline, as any queued job.
    fired: Mutex<bool>,
    /// Notified when `fired` is set or the job is cancelled.
    due: Condvar,
    timer: Weak<Timer>,
    slot: Mutex<Slot>,
}

/// The timer's side: the queue's reference to the cell.
pub(super) struct DelayedJob<F, T> {
    delayed: Arc<Delayed<F, T>>,
    task: SharedTask,
    /// Its key and lane, if scheduled through a [`Routed`](crate::Routed).
    route: Option<Route>,
}

impl<F, T> Delayed<F, T>
where
    F: FnOnce(&Context) -> T + Send + 'static,
    T: Send + 'static,
{
    /// A delayed job for `f` on crew `crew`, due along `route`, and the
    /// entry for `timer`.
    pub(super) fn new(
        f: F,
        crew: usize,
        route: Option<Route>,
        timer: &Arc<Timer>,
    ) -> (Arc<Self>, DelayedJob<F, T>) {
        let (cell, task) = match route.and_then(|route| route.key) {
            Some(key) => JobCell::keyed(f, crew, key),
            None => JobCell::new(f, crew),
        };
        let delayed = Arc::new(Self {
            cell,
            crew,
            fired: Mutex::new(false),
            due: Condvar::new(),
            timer: Arc::downgrade(timer),
            slot: Mutex::new(Slot::default()),
        });
        let job = DelayedJob {
            delayed: Arc::clone(&delayed),
            task,
            route,
        };
        (delayed, job)
    }

    /// Notes where the timer holds the job, for [`cancel`](CellResult::cancel),
    /// or takes it off again if the job was cancelled meanwhile. Under
    /// the slot's lock, so a cancel either finds this key or is seen here.
    pub(super) fn placed(&self, key: Key) {
        let mut slot = self.slot.lock();
        if !self.cell.is_finished() {
            slot.note(key);
            return;
        }
        drop(slot);
        if let Some(timer) = self.timer.upgrade() {
            drop(timer.remove(key));
        }
    }

    /// The job ended without entering the queue: cancelled, or run inline
    /// by a join, which counts the run; the job is then counted as
    /// submitted here, so `submitted == ran + never_ran` holds.
    fn settled_off_queue(&self, door: &PoolDoor) {
        if self.cell.ran_here() {
            door.count_submitted();
        }
    }

    /// Wakes a join waiting for the due time (`help`).
    fn wake(&self, fired: bool) {
        let mut state = self.fired.lock();
        *state |= fired;
        self.due.notify_all();
    }

    /// Takes the closure back from a job the timer refused.
    pub(super) fn take_back(&self) -> F {
        match self.cell.take_closure() {
            Some(f) => f,
            None => unreachable!("brigade: a refused delayed job's closure is still in its cell"),
        }
    }
}

impl<F, T> DelayedJob<F, T>
where
    F: FnOnce(&Context) -> T + Send + 'static,
    T: Send + 'static,
{
    /// The queue was full at the due time: tries again shortly, on the
    /// timer (which must never block), unless a join took the job or a
    /// cancel ended it meanwhile.
    fn retry(self: Box<Self>, door: &PoolDoor, timer: &Arc<Timer>) {
        if !self.delayed.cell.is_queued() {
            return self.delayed.settled_off_queue(door);
        }
        let delayed = Arc::clone(&self.delayed);
        if let Some(key) = timer.retry_soon(self, door) {
            delayed.placed(key);
        }
    }
}

impl<F, T> Due for DelayedJob<F, T>
where
    F: FnOnce(&Context) -> T + Send + 'static,
    T: Send + 'static,
{
    fn fire(self: Box<Self>, door: &PoolDoor, timer: &Arc<Timer>) {
        let Self {
            delayed,
            task,
            route,
        } = *self;
        let entered = {
            // Under the slot's lock, which a cancel takes first: a job
            // cancelled after the timer took this entry out never reaches
            // the queue, and one that reached it is cancelled there.
            let _slot = delayed.slot.lock();
            if delayed.cell.is_queued() {
                delayed.wake(true);
                Some(door.submit(Task::Shared(task), route, Wait::Now))
            } else {
                None
            }
        };
        let refused = match entered {
            // Cancelled, or taken by a join, before it could enter.
            None => return delayed.settled_off_queue(door),
            Some(Ok(())) => return,
            Some(Err(TrySubmitError::Full(task))) => task,
            // A closed or cancelled pool stops its timer; the job's
            // handle says so.
            Some(Err(refused)) => return refused.into_inner().discard(Cancelled::Canceled),
        };
        let Task::Shared(task) = refused else {
            unreachable!("brigade: the pool hands back the task it was given")
        };
        Box::new(Self {
            delayed,
            task,
            route,
        })
        .retry(door, timer);
    }

    /// A retry entry (the queue was full at the due time) whose job a
    /// join ran inline meanwhile never entered the queue: the join counted
    /// the run, and this counts the job as submitted.
    fn cancel(self: Box<Self>, reason: Cancelled, door: Option<&PoolDoor>) {
        if let Some(door) = door {
            self.delayed.settled_off_queue(door);
        }
        self.task.discard(reason);
        self.delayed.wake(false);
    }

    fn is_pending(&self) -> bool {
        self.delayed.cell.is_queued()
    }

    fn is_tick(&self) -> bool {
        false
    }
}

impl<F, T> CellResult<T> for Delayed<F, T>
where
    F: FnOnce(&Context) -> T + Send + 'static,
    T: Send + 'static,
{
    fn wait(&self, deadline: Option<Instant>) -> Option<Result<T, JobError>> {
        self.cell.wait(deadline)
    }

    /// On one of the pool's workers, waits here for the due time (the job
    /// could otherwise queue behind this very wait), then runs the job
    /// inline as any queued one; never before it is due. Elsewhere, the
    /// join just waits.
    fn help(&self) -> Result<(), JobError> {
        if !crate::crew::works_for(self.crew) {
            return Ok(());
        }
        let mut fired = self.fired.lock();
        while !*fired && !self.cell.is_finished() {
            // Slices as well as wake-ups: a job dropped off a stopped
            // timer without a cancel leaves the cell finished, unannounced.
            let _ = self.due.wait_until(&mut fired, Instant::now() + WAIT_SLICE);
        }
        drop(fired);
        self.cell.help()
    }

    fn poll(&self, waker: &Waker) -> Poll<Result<T, JobError>> {
        self.cell.poll(waker)
    }

    /// Settles the handle at once and takes the job off the timer, so
    /// nothing of it is left behind.
    fn cancel(&self) {
        let mut slot = self.slot.lock();
        self.cell.cancel();
        let key = slot.take();
        drop(slot);
        if let (Some(key), Some(timer)) = (key, self.timer.upgrade()) {
            drop(timer.remove(key));
        }
        self.wake(false);
    }

    fn is_finished(&self) -> bool {
        self.cell.is_finished()
    }
}
