//! Running one context-taking job, and classifying how it ended.
//!
//! Every front door whose jobs take a `&Context` (submit, typed worker
//! pools, pipeline stages, scoped jobs) runs them through [`call`], so the
//! rules below hold everywhere:
//!
//! * the job's context is a child of the pool's, with the earlier of the
//!   per-job timeout (counted from when the job starts) and the pool's
//!   deadline;
//! * a panic is caught and keeps its payload;
//! * a value returned after the context is done is discarded: past the
//!   job's *own* timeout the job `TimedOut`, otherwise (a cancel, or the
//!   pool's deadline) it was `Cancelled` with the context's reason.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use crate::context::Context;
use crate::error::{Cancelled, JobError};
use crate::stats::Outcome;
use crate::unwind;

/// How a job ended.
pub(crate) enum Finish<T> {
    /// Returned in time.
    Value(T),
    /// Panicked; the payload is kept so a scope can resume it as it was.
    Panicked(Box<dyn Any + Send>),
    /// Returned after its own per-job timeout; the value was dropped.
    TimedOut,
    /// Returned after its context was cancelled (or the pool's deadline
    /// passed); the value was dropped.
    Cancelled(Cancelled),
}

/// The context for a job starting now under `parent`, and the job's own
/// deadline if it has a timeout.
pub(crate) fn job_context(
    parent: &Context,
    timeout: Option<Duration>,
) -> (Context, Option<Instant>) {
    let own = timeout.and_then(|t| Instant::now().checked_add(t));
    (parent.derive(own), own)
}

/// Runs `f` under `ctx` (made by [`job_context`]) and classifies the end.
pub(crate) fn call<T>(
    ctx: &Context,
    own_deadline: Option<Instant>,
    f: impl FnOnce(&Context) -> T,
) -> Finish<T> {
    match catch_unwind(AssertUnwindSafe(|| f(ctx))) {
        Ok(value) => match ctx.reason() {
            None => Finish::Value(value),
            Some(reason) => {
                unwind::drop_quietly(value);
                let own_timeout = reason == Cancelled::DeadlineExceeded
                    && own_deadline.is_some()
                    && ctx.deadline() == own_deadline;
                if own_timeout {
                    Finish::TimedOut
                } else {
                    Finish::Cancelled(reason)
                }
            }
        },
        Err(payload) => Finish::Panicked(payload),
    }
}

impl<T> Finish<T> {
    /// The outcome the worker runtime records for this end.
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            Self::Value(_) => Outcome::Completed,
            Self::Panicked(payload) => Outcome::Panicked(unwind::describe(payload.as_ref())),
            Self::TimedOut => Outcome::TimedOut,
            Self::Cancelled(_) => Outcome::Interrupted,
        }
    }

    /// The value, or the error a caller sees (dropping a panic payload).
    pub(crate) fn into_result(self) -> Result<T, JobError> {
        match self {
            Self::Value(value) => Ok(value),
            Self::Panicked(payload) => Err(JobError::Panicked(unwind::message(payload))),
            Self::TimedOut => Err(JobError::TimedOut),
            Self::Cancelled(reason) => Err(JobError::Cancelled(reason)),
        }
    }
}
