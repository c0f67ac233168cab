//! The jobs a [`ThreadPool`](crate::ThreadPool) queues, type-erased so one
//! channel carries closures of every type.

use std::any::Any;
use std::time::Duration;

use super::handle::SharedTask;
use crate::crew::{Exec, Worker};
use crate::error::Cancelled;
use crate::stats::Outcome;
use crate::unwind;

/// A queued job of any closure type: boxed and run once (`execute`, map
/// chunks, scoped jobs), or a cell shared with a [`JobHandle`](super::JobHandle)
/// (`submit`).
pub(crate) enum Task {
    Boxed(Box<dyn Job>),
    Shared(SharedTask),
}

impl Task {
    pub(crate) fn boxed(job: impl Job) -> Self {
        Self::Boxed(Box::new(job))
    }

    pub(crate) fn discard(self, reason: Cancelled) {
        match self {
            Self::Boxed(job) => job.discard(reason),
            Self::Shared(task) => task.discard(reason),
        }
    }
}

pub(crate) trait Job: Send + 'static {
    fn run(self: Box<Self>, exec: &PoolExec, worker: &Worker<'_>) -> Outcome;
    fn discard(self: Box<Self>, reason: Cancelled);
    /// The job as `Any`, so a rejected submit can hand the caller's closure
    /// back with its own type.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

/// Runs [`Task`]s for a [`ThreadPool`](crate::ThreadPool): gives each
/// context-taking job a child of the pool's context, narrowed by the
/// per-job timeout.
pub(crate) struct PoolExec {
    pub(crate) job_timeout: Option<Duration>,
}

impl Exec<Task> for PoolExec {
    type Local = ();

    #[inline]
    fn run(&self, job: Task, worker: &Worker<'_>, (): &mut ()) -> Outcome {
        match job {
            Task::Boxed(job) => job.run(self, worker),
            Task::Shared(task) => task.run(self, worker),
        }
    }

    fn discard(&self, job: Task, reason: Cancelled) {
        job.discard(reason);
    }
}

/// A fire-and-forget closure from `execute`. Its panics unwind into the
/// worker runtime, which reports them.
pub(crate) struct ExecJob<F>(pub(crate) F);

impl<F: FnOnce() + Send + 'static> Job for ExecJob<F> {
    #[inline]
    fn run(self: Box<Self>, _exec: &PoolExec, _worker: &Worker<'_>) -> Outcome {
        (self.0)();
        Outcome::Completed
    }

    fn discard(self: Box<Self>, _reason: Cancelled) {
        unwind::drop_quietly(self);
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
    let Task::Boxed(task) = task else {
        unreachable!("brigade: only boxed tasks are handed back through unerase")
    };
    match task.into_any().downcast::<J>() {
        Ok(job) => *job,
        Err(_) => unreachable!(
            "brigade: a rejected job is handed back with the type it was submitted with"
        ),
    }
}
