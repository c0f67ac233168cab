//! The jobs a [`ThreadPool`](crate::ThreadPool) queues, type-erased so one
//! channel carries closures of every type.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use super::handle::{Completer, JobHandle, pair};
use crate::context::Context;
use crate::crew::{Exec, Worker};
use crate::error::{Cancelled, JobError};
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
    #[inline]
    fn run(&self, job: Task, worker: &Worker<'_>) -> Outcome {
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
        // The per-job timeout counts from when the job starts, not from
        // when it was queued.
        let own_deadline = exec
            .job_timeout
            .and_then(|timeout| Instant::now().checked_add(timeout));
        let ctx = exec.ctx.derive(own_deadline);
        if !done.start(&ctx) {
            unwind::drop_quietly(f);
            return Outcome::Skipped;
        }
        let (result, outcome) = match catch_unwind(AssertUnwindSafe(|| f(&ctx))) {
            Ok(value) => match ctx.reason() {
                None => (Ok(value), Outcome::Completed),
                Some(reason) => {
                    // Cancelled or past the deadline: the value was produced
                    // under a context that was already done, so it is
                    // discarded and the handle says why.
                    unwind::drop_quietly(value);
                    let own_timeout = reason == Cancelled::DeadlineExceeded
                        && own_deadline.is_some()
                        && ctx.deadline() == own_deadline;
                    if own_timeout {
                        (Err(JobError::TimedOut), Outcome::TimedOut)
                    } else {
                        (Err(JobError::Cancelled(reason)), Outcome::Interrupted)
                    }
                }
            },
            Err(payload) => {
                let message = unwind::message(payload);
                (
                    Err(JobError::Panicked(message.clone())),
                    Outcome::Panicked(message),
                )
            }
        };
        worker.record(&outcome);
        done.complete(result);
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
