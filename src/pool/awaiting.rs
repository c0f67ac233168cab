//! The pool from async code: a submit that waits for queue room as a
//! future ([`SubmitAsync`]), and a handle that cancels its job when dropped
//! ([`CancelOnDrop`]). Awaiting a [`JobHandle`] itself is in `handle.rs`.
//!
//! No runtime is involved: the futures are woken through the `Waker` of
//! whatever polls them. A waiting submit leaves its waker in the crew's
//! `Room`, where a worker that frees a slot finds it; pools nobody submits
//! to from async code pay one never-changing flag read per job for this.
//!
//! Dropping a `JobHandle` detaches the job (it runs; its result is
//! dropped), as for the blocking API and tokio's `JoinHandle`; a request
//! handler whose client went away wants the opposite, which
//! [`JobHandle::cancel_on_drop`] gives in one call.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use super::handle::{JobCell, SharedTask};
use super::job::Task;
use super::{ThreadPool, blocking, take_back};
use crate::context::Context;
use crate::crew::{Room, Route, Ticket, Wait};
use crate::error::{JobError, SubmitError, TrySubmitError};
use crate::pool::JobHandle;
use crate::sync::Arc;

/// The future of [`ThreadPool::submit_async`] and
/// [`Routed::submit_async`](crate::Routed::submit_async): resolves to the
/// job's handle once the queue has room, without blocking the thread that
/// polls it.
///
/// Dropped before it resolves, the job is never queued and its closure is
/// dropped. Polled again after it resolved, it returns a handle whose
/// result is `Err(JobError::AlreadyJoined)`.
#[must_use = "futures do nothing unless awaited; the job is queued only when polled"]
pub struct SubmitAsync<'p, F, T> {
    pool: &'p ThreadPool,
    /// The dispatcher's route, for a job from
    /// [`Routed::submit_async`](crate::Routed::submit_async).
    route: Option<Route>,
    /// The job's cell and the task to queue; `None` once resolved.
    pending: Option<(Arc<JobCell<F, T>>, Task)>,
    ticket: Ticket,
}

impl<'p, F, T> SubmitAsync<'p, F, T>
where
    F: FnOnce(&Context) -> T + Send + 'static,
    T: Send + 'static,
{
    pub(super) fn new(pool: &'p ThreadPool, f: F) -> Self {
        let (cell, task) = JobCell::new(f, pool.crew.id());
        Self::of(pool, None, cell, task)
    }

    /// The future of a job with cell `cell` and task `task`, along
    /// `route` if it has one.
    pub(super) fn of(
        pool: &'p ThreadPool,
        route: Option<Route>,
        cell: Arc<JobCell<F, T>>,
        task: SharedTask,
    ) -> Self {
        Self {
            pool,
            route,
            pending: Some((cell, Task::Shared(task))),
            ticket: Ticket::default(),
        }
    }

    /// One try at queueing: `Err` hands the task back if the queue (or,
    /// for a routed job, the dispatcher or its key) is full.
    fn attempt(&self, cell: &Arc<JobCell<F, T>>, task: Task) -> Result<Submitted<F, T>, Task> {
        let tried = match self.route {
            None => self.pool.enqueue(task, Wait::Now),
            Some(route) => self.pool.enqueue_routed(task, route, Wait::Now),
        };
        match tried {
            Err(TrySubmitError::Full(task)) => Err(task),
            Ok(()) => Ok(Ok(Arc::clone(cell).handle())),
            Err(err) => Ok(Err(blocking(err, |task| take_back(cell, task)))),
        }
    }
}

/// What a [`SubmitAsync`] resolves to.
type Submitted<F, T> = Result<JobHandle<T>, SubmitError<F>>;

impl<F, T> Future for SubmitAsync<'_, F, T>
where
    F: FnOnce(&Context) -> T + Send + 'static,
    T: Send + 'static,
{
    type Output = Result<JobHandle<T>, SubmitError<F>>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some((cell, task)) = this.pending.take() else {
            return Poll::Ready(Ok(JobCell::<F, T>::joined().handle()));
        };
        let mut ticket = std::mem::take(&mut this.ticket);
        // On a queue of capacity 0, an idle worker lets a retry through,
        // unless the job's key is what is full.
        let idle_helps = || {
            this.route
                .is_none_or(|route| !this.pool.crew.key_full(route))
        };
        let polled = this.room().poll_send(
            &mut ticket,
            cx.waker(),
            task,
            |task| this.attempt(&cell, task),
            idle_helps,
        );
        this.ticket = ticket;
        match polled {
            Ok(done) => Poll::Ready(done),
            Err(task) => {
                this.pending = Some((cell, task));
                Poll::Pending
            }
        }
    }
}

impl<'p, F, T> SubmitAsync<'p, F, T> {
    /// Where this future waits: a routed job's room is the dispatcher's.
    fn room(&self) -> &'p Room {
        match self.route {
            None => self.pool.crew.room(),
            Some(_) => self.pool.crew.routed_room(),
        }
    }
}

impl<F, T> Drop for SubmitAsync<'_, F, T> {
    fn drop(&mut self) {
        if self.pending.is_some() {
            self.room().leave(&mut self.ticket, false);
        }
    }
}

impl<F, T> fmt::Debug for SubmitAsync<'_, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubmitAsync")
            .field("resolved", &self.pending.is_none())
            .finish()
    }
}

/// A [`JobHandle`] that cancels its job when dropped: a job that has not
/// started never runs, and a running job's context is cancelled. Made by
/// [`JobHandle::cancel_on_drop`]; [`detach`](Self::detach) gives the plain
/// handle back.
///
/// Awaiting it, or calling [`join`](Self::join), gives what the handle
/// would.
#[must_use = "dropping a CancelOnDrop cancels its job"]
pub struct CancelOnDrop<T> {
    /// `None` only after `detach` took it.
    handle: Option<JobHandle<T>>,
}

impl<T> JobHandle<T> {
    /// This handle, made to cancel its job when dropped (see
    /// [`CancelOnDrop`]): what a request handler wants when its client
    /// may go away before the job ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::{Cancelled, ThreadPool};
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::builder().workers(1).build()?;
    /// let (started_tx, started) = std::sync::mpsc::channel();
    /// let guarded = pool
    ///     .submit(move |ctx| {
    ///         started_tx.send(()).unwrap();
    ///         ctx.sleep(Duration::from_secs(60)) // returns early when cancelled
    ///     })?
    ///     .cancel_on_drop();
    /// started.recv()?;
    /// drop(guarded); // the caller lost interest: the job is cancelled
    /// pool.join();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel_on_drop(self) -> CancelOnDrop<T> {
        CancelOnDrop { handle: Some(self) }
    }
}

impl<T: Send + 'static> CancelOnDrop<T> {
    /// Waits for the job, as [`JobHandle::join`].
    ///
    /// # Errors
    ///
    /// As for [`JobHandle::join`].
    pub fn join(mut self) -> Result<T, JobError> {
        self.handle
            .take()
            .map_or(Err(JobError::AlreadyJoined), JobHandle::join)
    }

    /// Waits at most `timeout`, as [`JobHandle::join_timeout`].
    pub fn join_timeout(&mut self, timeout: Duration) -> Option<Result<T, JobError>> {
        self.handle
            .as_mut()
            .and_then(|handle| handle.join_timeout(timeout))
    }

    /// Cancels the job now, as [`JobHandle::cancel`].
    pub fn cancel(&self) {
        if let Some(handle) = &self.handle {
            handle.cancel();
        }
    }

    /// Whether a result is ready, as [`JobHandle::is_finished`].
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(JobHandle::is_finished)
    }

    /// The plain handle: dropping it then detaches the job instead.
    pub fn detach(mut self) -> JobHandle<T> {
        // Always there: only `join` and `detach` take it, and both consume
        // `self`.
        self.handle
            .take()
            .unwrap_or_else(|| JobCell::<fn(&Context) -> T, T>::joined().handle())
    }
}

impl<T> Future for CancelOnDrop<T> {
    type Output = Result<T, JobError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match self.get_mut().handle.as_mut() {
            Some(handle) => Pin::new(handle).poll(cx),
            None => Poll::Ready(Err(JobError::AlreadyJoined)),
        }
    }
}

impl<T> Drop for CancelOnDrop<T> {
    fn drop(&mut self) {
        if let Some(handle) = &self.handle {
            handle.cancel();
        }
    }
}

impl<T> fmt::Debug for CancelOnDrop<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelOnDrop")
            .field("handle", &self.handle)
            .finish()
    }
}
