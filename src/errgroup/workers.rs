//! A group's own workers: a crew that grows on demand and shrinks when
//! idle, used by groups not handed a pool.

use crossbeam_channel::Sender;

use super::GROUP_KEEP_ALIVE;
use crate::crew::{Crew, Envelope, Erased, Exec, Propagate, Ran, Run, Wait};
use crate::error::Cancelled;
use crate::options::Options;
use crate::sizing::Sizing;
use crate::sync::{Arc, AtomicUsize, Ordering};

/// A group's own workers: a crew started empty that grows by one worker
/// whenever a task finds none free (up to `max`), and whose workers leave
/// after [`GROUP_KEEP_ALIVE`] without a task.
pub(super) struct Workers {
    /// `None` once closed. Declared before `crew`, so it is dropped first
    /// and the crew's drop finds intake closed.
    pub(super) tx: Option<Sender<Envelope<Erased>>>,
    pub(super) crew: Crew<Erased, GroupExec>,
    /// Workers that are free and not yet counted on for a task.
    pub(super) idle: Arc<AtomicUsize>,
    pub(super) max: usize,
}

/// Runs a group's tasks.
pub(super) struct GroupExec {
    idle: Arc<AtomicUsize>,
}

impl Exec<Erased> for GroupExec {
    type Local = ();

    fn run(&self, job: Erased, run: Run<'_>, (): &mut ()) -> Ran {
        job.run(run)
    }

    fn discard(&self, job: Erased, reason: Cancelled) {
        job.discard(reason);
    }

    fn idle_leave(&self) -> bool {
        // A free worker nobody counts on may go; if every free worker is
        // counted on, a task is on its way to one of them.
        // ORDERING: pairs with the task's release of its worker.
        self.idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }
}

impl Workers {
    /// An empty crew whose threads are named `{name}-0`, `{name}-1`, …
    pub(super) fn new(name: &str, max: usize, propagate: Option<Propagate>) -> Self {
        // A fixed size, so validation never reads `BRIGADE_WORKERS` (the
        // default `CpuBound` would, and a bad value would fail here); the
        // crew then starts with none.
        let options = Options {
            sizing: Sizing::Fixed(1),
            thread_name: name.to_owned(),
            queue_capacity: None,
            propagate,
            ..Options::default()
        };
        let idle = Arc::new(AtomicUsize::new(0));
        let exec = GroupExec {
            idle: Arc::clone(&idle),
        };
        let (mut config, ctx) = match options.validate() {
            Ok(built) => built,
            Err(_) => unreachable!("brigade: the group's fixed options are valid"),
        };
        config.workers = 0;
        config.keep_alive = Some(GROUP_KEEP_ALIVE);
        let (tx, rx) = config.channel();
        // No worker starts yet, so starting cannot fail.
        let Ok(crew) = Crew::start(config, ctx, exec, rx, || ()) else {
            unreachable!("brigade: a crew of no workers starts no thread")
        };
        Self {
            tx: Some(tx),
            crew,
            idle,
            max,
        }
    }

    /// Finds a worker for one more task: counts on an idle one, or starts
    /// one; with `max` running, the task queues (in spawn order) for the
    /// first that comes free.
    pub(super) fn reserve(&self) -> std::io::Result<Seat> {
        // ORDERING: pairs with the task's release of its worker.
        let claimed = self
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        let counted = claimed || self.crew.grow_one(self.max)?;
        Ok(Seat {
            idle: Arc::clone(&self.idle),
            counted,
        })
    }

    /// Queues a task for the worker `reserve` found.
    pub(super) fn submit(&self, job: Erased) {
        let refused = match &self.tx {
            Some(tx) => self.crew.submit(tx, job, Wait::Now, None).err(),
            None => Some(crate::error::TrySubmitError::Closed(job)),
        };
        // An unbounded queue is never full, and the group's crew is
        // cancelled or closed only once no task can be spawned; should it
        // happen anyway, the task is reported, not lost.
        if let Some(refused) = refused {
            refused.into_inner().discard(Cancelled::Canceled);
        }
    }

    /// Lets the workers finish and joins them.
    pub(super) fn close(&mut self) {
        self.tx = None;
        self.crew.seal();
        self.crew.wait(None);
    }
}

/// A task's place on the group's own workers.
pub(super) struct Seat {
    /// The group's count of free workers.
    pub(super) idle: Arc<AtomicUsize>,
    /// Whether a worker was counted on for the task (claimed or started).
    /// If not, whichever worker runs it was counted free when it ended its
    /// last task, and takes itself off the count when it starts this one.
    pub(super) counted: bool,
}

impl Seat {
    /// The task starts: a worker no one counted on is no longer free.
    pub(super) fn take(&self) {
        if !self.counted {
            // ORDERING: as for `Workers::reserve`.
            let _ = self
                .idle
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }

    /// The task ended: its worker is free again.
    pub(super) fn free(&self) {
        // ORDERING: pairs with `reserve` and `idle_leave`.
        self.idle.fetch_add(1, Ordering::AcqRel);
    }
}
