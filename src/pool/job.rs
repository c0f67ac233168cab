//! The jobs a [`ThreadPool`](crate::ThreadPool) queues, type-erased so one
//! channel carries closures of every type.

use std::any::Any;
use std::time::Duration;

use super::handle::{Completer, JobHandle, pair};
use crate::context::Context;
use crate::crew::{Exec, Worker, call, job_context};
use crate::error::Cancelled;
use crate::stats::Outcome;
use crate::unwind;

/// A queued job of any closure type.
pub(crate) type Task = Box<dyn Job>;

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
    pub(crate) ctx: Context,
    pub(crate) job_timeout: Option<Duration>,
}

impl Exec<Task> for PoolExec {
    type Local = ();

    #[inline]
    fn run(&self, job: Task, worker: &Worker<'_>, (): &mut ()) -> Outcome {
        job.run(self, worker)
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

/// A context-taking closure from `submit`, with the completer that
/// delivers its result to the [`JobHandle`].
pub(crate) struct SubmitJob<F, T> {
    f: F,
    done: Completer<T>,
}

impl<F, T> SubmitJob<F, T>
where
    F: FnOnce(&Context) -> T + Send + 'static,
    T: Send + 'static,
{
    pub(crate) fn boxed(f: F) -> (Task, JobHandle<T>) {
        let (done, handle) = pair();
        (Box::new(Self { f, done }), handle)
    }
}

impl<F, T> Job for SubmitJob<F, T>
where
    F: FnOnce(&Context) -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, exec: &PoolExec, worker: &Worker<'_>) -> Outcome {
        let Self { f, done } = *self;
        let (ctx, own_deadline) = job_context(&exec.ctx, exec.job_timeout);
        if !done.start(&ctx) {
            unwind::drop_quietly(f);
            return Outcome::Skipped;
        }
        let finish = call(&ctx, own_deadline, f);
        let outcome = finish.outcome();
        worker.record(&outcome);
        done.complete(finish.into_result());
        outcome
    }

    fn discard(self: Box<Self>, reason: Cancelled) {
        let Self { f, done } = *self;
        unwind::drop_quietly(f);
        done.discard(reason);
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

impl<F: 'static, T: 'static> SubmitJob<F, T> {
    /// The closure of a job that was never accepted.
    pub(crate) fn into_closure(self) -> F {
        self.done.forget();
        self.f
    }
}

/// Recovers the concrete job from a task the pool handed back.
///
/// A task handed back by a failed submit is always the one that call
/// boxed, so the downcast cannot fail.
pub(crate) fn unerase<J: 'static>(task: Task) -> J {
    match task.into_any().downcast::<J>() {
        Ok(job) => *job,
        Err(_) => unreachable!(
            "brigade: a rejected job is handed back with the type it was submitted with"
        ),
    }
}
