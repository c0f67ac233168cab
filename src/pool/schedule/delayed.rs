//! A delayed job: a submitted job's cell, held by the pool's timer until
//! its due time, behind a handle that can take it off the timer.

use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use super::timer::{Due, Entry, Key, PoolDoor, Slot, Timer};
use crate::context::Context;
use crate::crew::{CellJob, Ran, Route, Run, Wait};
use crate::error::{Cancelled, JobError, TrySubmitError};
use crate::lane::Lane;
use crate::pool::handle::{CellResult, JobCell, SharedTask};
use crate::pool::job::Task;
use crate::sync::{Arc, Condvar, Mutex, Weak};

/// How often a join waiting on a worker for the due time looks again.
const WAIT_SLICE: Duration = Duration::from_millis(10);

/// A delayed job: its cell, and where it waits on the timer. One
/// allocation, shared by the handle, the timer's entry and (once due) the
/// queue, which runs it through its [`CellJob`] side.
pub(super) struct Delayed<F, T> {
    cell: JobCell<F, T>,
    placed: Mutex<Placed>,
    /// Notified when the job fires or is cancelled.
    due: Condvar,
    timer: Weak<Timer>,
}

/// What the `placed` lock guards. The lane lives here, not beside it,
/// only because it fits in this struct's padding: every pending job holds
/// one of these.
struct Placed {
    /// Where the timer holds the job, as last heard.
    slot: Slot,
    /// Set once the job is due and handed to the pool: from then on a
    /// join on a worker may run it inline, as any queued job.
    fired: bool,
    /// Its lane, if scheduled through a [`Routed`](crate::Routed) (its
    /// key is the cell's).
    lane: Option<Lane>,
}

impl<F, T> Delayed<F, T>
where
    F: FnOnce(&Context) -> T + Send + 'static,
    T: Send + 'static,
{
    /// A delayed job for `f` on crew `crew`, due along `route`, to wait
    /// on `timer`, which it is its own entry on.
    pub(super) fn new(f: F, crew: usize, route: Option<Route>, timer: &Arc<Timer>) -> Arc<Self> {
        Arc::new(Self {
            cell: JobCell::pending(f, crew, route.and_then(|route| route.key)),
            placed: Mutex::new(Placed {
                slot: Slot::default(),
                fired: false,
                lane: route.map(|route| route.lane),
            }),
            due: Condvar::new(),
            timer: Arc::downgrade(timer),
        })
    }

    /// Notes where the timer holds the job, for [`cancel`](CellResult::cancel),
    /// or takes it off again if the job was cancelled (or run inline by a
    /// join) meanwhile, and returns that entry. Under the `placed` lock,
    /// so a cancel either finds this key or is seen here.
    pub(super) fn placed(&self, key: Key) -> Option<Entry> {
        let mut placed = self.placed.lock();
        if !self.cell.is_finished() {
            placed.slot.note(key);
            return None;
        }
        drop(placed);
        self.timer.upgrade()?.remove(key)
    }

    /// The job ended without entering the queue: cancelled, or run inline
    /// by a join, which counts the run; the job is then counted as
    /// submitted here, so `submitted == ran + never_ran` holds.
    fn settled_off_queue(&self, door: &PoolDoor) {
        if self.cell.ran_here() {
            door.count_submitted();
        }
    }

    /// Takes the closure back from a job the timer refused.
    pub(super) fn take_back(&self) -> F {
        match self.cell.take_closure() {
            Some(f) => f,
            None => unreachable!("brigade: a refused delayed job's closure is still in its cell"),
        }
    }

    /// The queue was full at the due time: tries again shortly, on the
    /// timer (which must never block), unless a join took the job or a
    /// cancel ended it meanwhile.
    fn retry(self: Arc<Self>, door: &PoolDoor, timer: &Arc<Timer>) {
        if !self.cell.is_queued() {
            return self.settled_off_queue(door);
        }
        let placed = timer
            .retry_soon(Arc::clone(&self) as Entry, door)
            .and_then(|key| self.placed(key));
        // A join ran it inline meanwhile: its entry goes the way of every
        // entry that will not fire, which counts the job.
        if let Some(entry) = placed {
            entry.cancel(Cancelled::Canceled, Some(door));
        }
    }

    /// Hands the due job to the pool, unless a cancel or a join got to it
    /// first (`None`). Under the `placed` lock, which a cancel takes
    /// first: a job cancelled after the timer took its entry out never
    /// reaches the queue, and one that reached it is cancelled there.
    fn enter(self: &Arc<Self>, door: &PoolDoor) -> Option<Result<(), TrySubmitError<Task>>> {
        let mut placed = self.placed.lock();
        if !self.cell.is_queued() {
            return None;
        }
        placed.fired = true;
        self.due.notify_all();
        let route = placed.lane.map(|lane| Route {
            lane,
            key: self.cell.key(),
        });
        let task = SharedTask::new(Arc::clone(self) as Arc<dyn CellJob>);
        Some(door.submit(Task::Shared(task), route, Wait::Now))
    }
}

impl<F, T> Due for Delayed<F, T>
where
    F: FnOnce(&Context) -> T + Send + 'static,
    T: Send + 'static,
{
    fn fire(self: Arc<Self>, door: &PoolDoor, timer: &Arc<Timer>) {
        let refused = match self.enter(door) {
            // Cancelled, or taken by a join, before it could enter.
            None => return self.settled_off_queue(door),
            Some(Ok(())) => return,
            Some(Err(TrySubmitError::Full(task))) => task,
            // A closed or cancelled pool stops its timer; the job's
            // handle says so.
            Some(Err(refused)) => return refused.into_inner().discard(Cancelled::Canceled),
        };
        // The queue's reference comes back unused; the job stays pending
        // on the timer instead.
        if let Task::Shared(task) = refused {
            task.release();
        }
        self.retry(door, timer);
    }

    /// A retry entry (the queue was full at the due time) whose job a
    /// join ran inline meanwhile never entered the queue: the join counted
    /// the run, and this counts the job as submitted.
    fn cancel(self: Arc<Self>, reason: Cancelled, door: Option<&PoolDoor>) {
        if let Some(door) = door {
            self.settled_off_queue(door);
        }
        self.cell.settle_cancelled(reason);
        self.wake();
    }

    fn is_pending(&self) -> bool {
        self.cell.is_queued()
    }

    fn is_tick(&self) -> bool {
        false
    }
}

impl<F, T> Delayed<F, T> {
    /// Wakes a join waiting for the due time (`help`).
    fn wake(&self) {
        let _placed = self.placed.lock();
        self.due.notify_all();
    }
}

/// The queue's side: runs through the cell.
impl<F, T> CellJob for Delayed<F, T>
where
    F: FnOnce(&Context) -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(&self, run: Run<'_>) -> Ran {
        self.cell.run(run)
    }

    fn discard(&self, reason: Cancelled) {
        self.cell.discard(reason);
    }

    fn started(&self) -> bool {
        self.cell.started()
    }

    fn claim(&self) -> u64 {
        self.cell.claim()
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
    fn help(&self) -> bool {
        if !crate::crew::works_for(self.cell.crew()) {
            return true;
        }
        let mut placed = self.placed.lock();
        while !placed.fired && !self.cell.is_finished() {
            // Slices as well as wake-ups: a job dropped off a stopped
            // timer without a cancel leaves the cell finished, unannounced.
            let _ = self
                .due
                .wait_until(&mut placed, Instant::now() + WAIT_SLICE);
        }
        drop(placed);
        self.cell.help()
    }

    fn poll(&self, waker: &Waker) -> Poll<Result<T, JobError>> {
        self.cell.poll(waker)
    }

    /// Settles the handle at once and takes the job off the timer, so
    /// nothing of it is left behind.
    fn cancel(&self) {
        let mut placed = self.placed.lock();
        self.cell.cancel();
        let key = placed.slot.take();
        self.due.notify_all();
        drop(placed);
        if let (Some(key), Some(timer)) = (key, self.timer.upgrade()) {
            drop(timer.remove(key));
        }
    }

    fn is_finished(&self) -> bool {
        self.cell.is_finished()
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::*;

    /// The bytes of `Delayed` for `f`'s closure type.
    fn size_for<F: FnOnce(&Context) + Send + 'static>(_: &F) -> usize {
        std::mem::size_of::<Delayed<F, ()>>()
    }

    #[test]
    fn a_pending_delayed_job_fits_issue_20s_budget() {
        // With its `Arc`'s two counts, 136 bytes: the 200-byte budget per
        // pending job (`benches/README.md`) holds with the timer's map
        // slots. A field added here should be weighed against it.
        let size = size_for(&|_: &Context| {});
        assert!(size <= 120, "Delayed grew to {size} bytes");
    }
}
