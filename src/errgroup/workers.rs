//! A group's own workers: an elastic crew (see `crew/elastic.rs`) that
//! starts with none, starts one whenever a task finds none free (up to
//! `max`), and whose workers leave after [`GROUP_KEEP_ALIVE`] without a
//! task.

use super::GROUP_KEEP_ALIVE;
use crate::crew::{Crew, Elastic, Erased, Exec, JobsTx, Propagate, Ran, Run, Wait};
use crate::error::Cancelled;
use crate::options::Options;
use crate::sizing::Sizing;

/// A group's own workers.
pub(super) struct Workers {
    /// `None` once closed. Declared before `crew`, so it is dropped first
    /// and the crew's drop finds intake closed.
    pub(super) tx: Option<JobsTx<Erased>>,
    pub(super) crew: Crew<Erased, GroupExec>,
    /// The most threads at once.
    pub(super) max: usize,
}

/// Runs a group's tasks.
pub(super) struct GroupExec;

impl Exec<Erased> for GroupExec {
    type Local = ();

    fn run(&self, job: Erased, run: Run<'_>, (): &mut ()) -> Ran {
        job.run(run)
    }

    fn discard(&self, job: Erased, reason: Cancelled) {
        job.discard(reason);
    }
}

impl Workers {
    /// An empty crew of at most `max` threads, named `{name}-0`,
    /// `{name}-1`, …, whose jobs carry `propagate`'s values.
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
        let (mut config, ctx) = match options.validate() {
            Ok(built) => built,
            Err(_) => unreachable!("brigade: the group's fixed options are valid"),
        };
        config.workers = 0;
        config.elastic = Some(Elastic {
            keep_alive: GROUP_KEEP_ALIVE,
            floor: 0,
            grow_to: max,
        });
        let (tx, rx) = config.channel();
        // No worker starts yet, so starting cannot fail.
        let Ok(crew) = Crew::start(config, ctx, GroupExec, (&tx, rx), || ()) else {
            unreachable!("brigade: a crew of no workers starts no thread")
        };
        Self {
            tx: Some(tx),
            crew,
            max,
        }
    }

    /// Queues a task: a free worker takes it, or one starts for it; with
    /// `max` running, it waits (in spawn order) for the first that comes
    /// free.
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
