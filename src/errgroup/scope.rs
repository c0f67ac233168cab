//! `scope` for groups: a [`ScopedGroup`] whose tasks may borrow from the
//! caller's stack, run on workers of the scope's own and all ended before
//! `scope` returns or resumes a panic from its body.

use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use std::fmt;

use super::mode::Verdict;
use super::{Core, ErrGroup, FailFast, GROUP_THREADS, GroupMode, Runner, Workers, admit_on};
use crate::context::Context;
use crate::crew::{Work, erase};
use crate::error::SpawnError;
use crate::semaphore::Semaphore;
use crate::sync::Arc;

impl<E: Send + 'static, M: GroupMode> ErrGroup<'_, E, M> {
    /// `scope` for every mode: runs `body` with a scoped group on workers
    /// of its own, waits for every task, and returns the body's value with
    /// the verdict; a panic in the body resumes once every task ended.
    pub(super) fn scoped<'env, T>(
        mut self,
        body: impl for<'scope> FnOnce(&ScopedGroup<'scope, 'env, E, M>) -> T,
    ) -> (T, Verdict<M, E>) {
        let max = match &self.runner {
            Runner::Crew(workers) => workers.max,
            Runner::Pool(_) => self
                .core
                .slots
                .as_ref()
                .map_or(GROUP_THREADS, Semaphore::total),
        };
        let mut group = ScopedGroup {
            core: Arc::clone(&self.core),
            workers: Workers::new("errgroup-scoped", max, self.propagate_hooks()),
            _scope: PhantomData,
            _env: PhantomData,
        };
        let value = catch_unwind(AssertUnwindSafe(|| body(&group)));
        // Borrowing tasks may run until every one has ended (see the
        // SAFETY argument in `ScopedGroup::spawn`): wait for them before
        // returning or resuming a panic from the body.
        {
            let _abort = AbortOnUnwind;
            if value.is_err() {
                group.core.ctx.cancel();
            }
            group.core.wait_idle();
            group.workers.close();
        }
        drop(group);
        let verdict = self.finish();
        match value {
            Ok(value) => (value, verdict),
            Err(payload) => resume_unwind(payload),
        }
    }
}

/// Aborts the process if dropped during a panic: the scoped group's wait
/// must not unwind while tasks may still be using borrowed data.
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "brigade: a panic escaped while a scoped group waited for its tasks; aborting"
            );
            std::process::abort();
        }
    }
}

/// The group handed to the body of [`ErrGroup::scope`]; its tasks may
/// borrow anything that outlives the scope.
pub struct ScopedGroup<'scope, 'env: 'scope, E, M: GroupMode = FailFast> {
    core: Arc<Core<E, M>>,
    workers: Workers,
    /// Invariant in both lifetimes, as `std::thread::Scope` is.
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

impl<'scope, E: Send + 'static, M: GroupMode> ScopedGroup<'scope, '_, E, M> {
    /// Runs a borrowing task in the group, as [`ErrGroup::spawn`] does.
    ///
    /// # Errors
    ///
    /// As for [`ErrGroup::spawn`].
    pub fn spawn<F>(&self, task: F) -> Result<(), SpawnError<F>>
    where
        F: FnOnce(&Context) -> Result<M::Value, E> + Send + 'scope,
    {
        self.spawn_with(task, true)
    }

    /// Like [`spawn`](Self::spawn), but never waits for a slot.
    ///
    /// # Errors
    ///
    /// As for [`ErrGroup::try_spawn`].
    pub fn try_spawn<F>(&self, task: F) -> Result<(), SpawnError<F>>
    where
        F: FnOnce(&Context) -> Result<M::Value, E> + Send + 'scope,
    {
        self.spawn_with(task, false)
    }

    /// The group's context.
    pub fn context(&self) -> &Context {
        &self.core.ctx
    }

    fn spawn_with<F>(&self, task: F, block: bool) -> Result<(), SpawnError<F>>
    where
        F: FnOnce(&Context) -> Result<M::Value, E> + Send + 'scope,
    {
        let job: Box<dyn Work + 'scope> = Box::new(admit_on(&self.core, task, block)?);
        // SAFETY: `admit` counted the task pending before the box exists;
        // the box is consumed by `run` or `discard` (or dropped with the
        // crew's queue, which `ErrGroup::scope` empties first by waiting),
        // each of which frees it before `task_done` counts it out; and
        // `ErrGroup::scope` neither returns nor unwinds (`AbortOnUnwind`)
        // until the count is zero and the crew is joined.
        #[allow(unsafe_code, reason = "the erasure's obligations are met here")]
        let job = unsafe { erase(job) };
        self.workers.submit(job);
        Ok(())
    }
}

impl<E, M: GroupMode> Drop for ScopedGroup<'_, '_, E, M> {
    fn drop(&mut self) {
        // If the body panics, the scope still waits for every task: cancel
        // them, and (by dropping `threads`) let idle threads exit, so that
        // wait ends.
        self.core.ctx.cancel();
    }
}

impl<E, M: GroupMode> fmt::Debug for ScopedGroup<'_, '_, E, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedGroup")
            .field("context", &self.core.ctx)
            .finish_non_exhaustive()
    }
}
