//! The submitter's context, carried into the job: a value captured on the
//! submitting thread when a job enters the queue, and entered around the
//! job on the worker that runs it (a tracing span, a request id, a logging
//! context).
//!
//! # Where it happens
//!
//! Once each, in the crew, so every front door gets it without a line of
//! its own: the capture in the crew's one way in (`Intake::enter`, which
//! also builds the envelope), the entering in the worker loop, around
//! [`Exec::run`](super::Exec::run). So:
//!
//! * `execute`, `submit` (and `try_submit`, `submit_timeout`), `WorkerPool`
//!   jobs, map chunks, scoped jobs and `ErrGroup` tasks capture on the
//!   thread that submits them; a map submits chunks as its results are
//!   read, so on the thread that reads them.
//! * `submit_async` captures on the thread that polls the future when the
//!   job enters the queue (on each try, while the queue is full) — with
//!   tracing's `Instrument`, inside the task's span.
//! * A pipeline's first stage captures on the thread that runs it; each
//!   later stage is fed by a worker of the stage before, which captures
//!   inside the value it entered for its own item, so the value flows
//!   through every stage.
//! * A job its submitter runs because the queue is full
//!   (`submit_or_run_here`, `here.rs`) is captured and entered like a
//!   queued one, both on the submitting thread: the value it enters is the
//!   one that thread already has, and a hook sees every such job.
//!
//! Jobs that do not run on a worker that dequeued them are not entered:
//! a scoped job or map chunk run by the waiting caller (a scope on a
//! closed pool, a map started on one of the pool's own workers), and a job
//! its handle's join runs inline on a worker (`inline.rs`). Each runs on
//! the thread that waits for it, inside whatever that thread has entered;
//! usually that thread submitted it. (A join run inline leaves the job's
//! envelope queued; the worker that later dequeues it enters its value
//! around a run that finds the job done and does nothing.) A job
//! discarded unrun is never entered; its value is dropped where it is
//! discarded.
//!
//! # Panics in the hooks
//!
//! Neither hook loses a job or a worker:
//!
//! * a panicking `capture` is logged (`log::warn!`) and the job is queued
//!   without a value: it runs as on a pool without the hook;
//! * a panicking `enter` is logged, and the worker that ran it is replaced
//!   as after a job's panic under [`PanicPolicy::Respawn`](super::PanicPolicy)
//!   (whatever thread-local state the hook left half-changed leaves with
//!   the thread; counted in `Stats::respawned`, under either policy, since
//!   the job itself did not panic). If it panicked before running the job,
//!   the job then runs without the value. An `enter` that returns without
//!   running the job is logged the same way, and the job runs after it;
//!   a second call of the job from one `enter` does nothing.
//!
//! The job's own panic is caught inside the run `enter` is given, so that
//! run always returns normally: code after it in `enter` (restoring a
//! thread-local) runs even when the job panics.
//!
//! # Cost
//!
//! A pool without the hook pays one branch per submit and one per job (on
//! a `None` in the envelope) and no allocation. The value travels in the
//! envelope as one pointer (`Option<Box<_>>` of a boxed value); a pool with
//! the hook pays its capture, two small allocations and a call through
//! `dyn` per job.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::sync::Arc;
use crate::unwind;

/// The captured value of one job, type-erased.
///
/// Boxed twice so that it is one thin pointer in every envelope: a pool
/// without the hook carries only a `None` of 8 bytes per queued job.
pub(crate) type Carried = Box<Box<dyn Any + Send>>;

/// A builder's capture/enter pair, type-erased once.
#[derive(Clone)]
pub(crate) struct Propagate(Arc<dyn Hooks>);

trait Hooks: Send + Sync {
    fn capture(&self) -> Carried;
    fn enter(&self, carried: Carried, run: &mut dyn FnMut());
}

struct Pair<C, E, T> {
    capture: C,
    enter: E,
    _value: PhantomData<fn() -> T>,
}

impl<C, E, T> Hooks for Pair<C, E, T>
where
    C: Fn() -> T + Send + Sync,
    E: Fn(T, &mut dyn FnMut()) + Send + Sync,
    T: Send + 'static,
{
    fn capture(&self) -> Carried {
        Box::new(Box::new((self.capture)()))
    }

    fn enter(&self, carried: Carried, run: &mut dyn FnMut()) {
        // Only this pair's `capture` made the value (a crew's hook never
        // changes), so the downcast cannot fail; run the job anyway if it
        // did.
        match (*carried).downcast::<T>() {
            Ok(value) => (self.enter)(*value, run),
            Err(_) => run(),
        }
    }
}

impl Propagate {
    pub(crate) fn new<T, C, E>(capture: C, enter: E) -> Self
    where
        T: Send + 'static,
        C: Fn() -> T + Send + Sync + 'static,
        E: Fn(T, &mut dyn FnMut()) + Send + Sync + 'static,
    {
        Self(Arc::new(Pair {
            capture,
            enter,
            _value: PhantomData,
        }))
    }

    /// Captures the calling thread's value; `None` (logged) if the hook
    /// panicked.
    #[cold]
    pub(crate) fn capture(&self) -> Option<Carried> {
        match catch_unwind(AssertUnwindSafe(|| self.0.capture())) {
            Ok(carried) => Some(carried),
            Err(payload) => {
                let message = unwind::message(payload);
                log::warn!(
                    "brigade: propagate capture hook panicked; the job runs without its value: {message}"
                );
                None
            }
        }
    }

    /// Runs `job` inside `carried`, entered through the hook. Returns the
    /// job's result and whether the hook misbehaved (panicked, or did not
    /// run the job), which retires the worker. The job runs exactly once
    /// either way.
    #[cold]
    pub(crate) fn enter<R>(&self, carried: Carried, job: impl FnOnce() -> R) -> (R, bool) {
        let mut job = Some(job);
        let mut out = None;
        let entered = catch_unwind(AssertUnwindSafe(|| {
            self.0.enter(carried, &mut || {
                if let Some(job) = job.take() {
                    out = Some(job());
                }
            });
        }));
        let fault = match (entered, &out, &job) {
            (Ok(()), Some(_), _) => None,
            // The job's run unwound: not the hook's panic, and not one the
            // lifecycle catches (it catches the job's own). Let it go on
            // as it would without the hook.
            (Err(payload), None, None) => resume_unwind(payload),
            (Ok(()), None, _) => Some("returned without running the job".to_owned()),
            (Err(payload), ..) => Some(format!("panicked: {}", unwind::message(payload))),
        };
        if let Some(fault) = &fault {
            log::warn!("brigade: propagate enter hook {fault}; the worker is replaced");
        }
        let out = match (out, job) {
            (Some(out), _) => out,
            // The hook never ran it: run it here, without the value.
            (None, Some(job)) => job(),
            (None, None) => unreachable!("brigade: a job the hook took ran or unwound"),
        };
        (out, fault.is_some())
    }
}

impl fmt::Debug for Propagate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Propagate(<closure>, <closure>)")
    }
}
