//! The jobs a [`ThreadPool`](crate::ThreadPool) queues, type-erased so one
//! channel carries closures of every type.

use std::any::Any;

use super::handle::SharedTask;
use crate::crew::{Exec, Ran, Run, Work};
use crate::error::Cancelled;
use crate::unwind;

/// A queued job of any closure type: boxed and run once (`execute`,
/// scoped jobs), a map chunk standing for several jobs, or a cell shared
/// with a [`JobHandle`](super::JobHandle) (`submit`).
pub(crate) enum Task {
    Boxed(Box<dyn Job>),
    /// A map chunk: one queued job that counts as `jobs` jobs.
    Batch(Box<dyn Job>, u64),
    Shared(SharedTask),
}

impl Task {
    pub(crate) fn boxed(job: impl Job) -> Self {
        Self::Boxed(Box::new(job))
    }

    pub(crate) fn discard(self, reason: Cancelled) {
        match self {
            Self::Boxed(job) | Self::Batch(job, _) => job.discard(reason),
            Self::Shared(task) => task.discard(reason),
        }
    }
}

/// A boxed job: runs through the crew's lifecycle, or is told it never
/// will.
pub(crate) trait Job: Send + 'static {
    fn run(self: Box<Self>, run: Run<'_>) -> Ran;
    fn discard(self: Box<Self>, reason: Cancelled);
    /// The job as `Any`, so a rejected submit can hand the caller's closure
    /// back with its own type.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

/// Runs [`Task`]s for a [`ThreadPool`](crate::ThreadPool).
pub(crate) struct PoolExec;

impl Exec<Task> for PoolExec {
    type Local = ();

    #[inline]
    fn run(&self, job: Task, run: Run<'_>, (): &mut ()) -> Ran {
        match job {
            Task::Boxed(job) | Task::Batch(job, _) => job.run(run),
            Task::Shared(task) => task.run(run),
        }
    }

    fn discard(&self, job: Task, reason: Cancelled) {
        job.discard(reason);
    }

    #[inline]
    fn jobs(&self, job: &Task) -> u64 {
        match job {
            Task::Batch(_, jobs) => *jobs,
            Task::Boxed(_) | Task::Shared(_) => 1,
        }
    }

    fn claim(&self, job: &Task) -> u64 {
        match job {
            Task::Shared(task) => task.claim(),
            other => self.jobs(other),
        }
    }

    fn holds(&self, job: &Task, cell: *const ()) -> bool {
        matches!(job, Task::Shared(task) if task.holds(cell))
    }
}

/// A fire-and-forget closure from `execute`.
pub(crate) struct ExecJob<F>(pub(crate) F);

impl<F: FnOnce() + Send + 'static> Job for ExecJob<F> {
    #[inline]
    fn run(self: Box<Self>, run: Run<'_>) -> Ran {
        run.call_plain(self.0)
    }

    fn discard(self: Box<Self>, _reason: Cancelled) {
        unwind::drop_quietly(self);
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// Another front door's [`Work`] (an `ErrGroup` task on a pool) as a pool
/// job.
pub(crate) struct Lent<W>(pub(crate) W);

impl<W: Work + 'static> Job for Lent<W> {
    fn run(self: Box<Self>, run: Run<'_>) -> Ran {
        Box::new(self.0).run(run)
    }

    fn discard(self: Box<Self>, reason: Cancelled) {
        Box::new(self.0).discard(reason);
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// Recovers the concrete job from a task the pool handed back.
///
/// A task handed back by a failed submit is always the one that call
/// boxed, so the downcast cannot fail.
pub(crate) fn unerase<J: 'static>(task: Task) -> J {
    let (Task::Boxed(task) | Task::Batch(task, _)) = task else {
        unreachable!("brigade: only boxed tasks are handed back through unerase")
    };
    match task.into_any().downcast::<J>() {
        Ok(job) => *job,
        Err(_) => unreachable!(
            "brigade: a rejected job is handed back with the type it was submitted with"
        ),
    }
}
