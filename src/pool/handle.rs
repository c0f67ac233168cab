//! [`JobHandle`]: the caller's end of one submitted job.
//!
//! The handle and the job share a [`Packet`] (a mutex-guarded slot and a
//! condition variable; no channel per job). The slot moves
//! `Queued → Running → Done → Taken`, or `Queued → Done` when the job is
//! cancelled before it starts. The job side holds a [`Completer`], whose
//! `Drop` fills the slot with `Cancelled` if the job is dropped without
//! running, so a handle can never wait forever.

use std::fmt;
use std::time::{Duration, Instant};

use crate::context::Context;
use crate::error::{Cancelled, JobError};
use crate::sync::{Arc, Condvar, Mutex};

/// The state one job and its handle share.
pub(crate) struct Packet<T> {
    slot: Mutex<Slot<T>>,
    ready: Condvar,
}

enum Slot<T> {
    /// In the queue; `cancel` now means it never runs.
    Queued,
    /// Running under this context; `cancel` cancels it.
    Running(Context),
    /// Finished (or cancelled before it started); the handle may take it.
    Done(Result<T, JobError>),
    /// The handle took the result.
    Taken,
}

/// The job's side of a [`Packet`]: delivers exactly one result.
pub(crate) struct Completer<T> {
    packet: Option<Arc<Packet<T>>>,
}

/// A handle to a job submitted with [`ThreadPool::submit`](crate::ThreadPool::submit).
///
/// Dropping the handle detaches the job: it still runs, and its result is
/// dropped.
///
/// # Examples
///
/// ```
/// use brigade::{JobError, ThreadPool};
///
/// let pool = ThreadPool::builder().workers(2).build()?;
/// let sum = pool.submit(|_ctx| (1..=10).sum::<u32>()).map_err(|e| e.to_string())?;
/// assert_eq!(sum.join(), Ok(55));
///
/// let boom = pool.submit(|_ctx| -> u32 { panic!("no such file") }).map_err(|e| e.to_string())?;
/// assert_eq!(boom.join(), Err(JobError::Panicked("no such file".into())));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping a JobHandle detaches the job and discards its result"]
pub struct JobHandle<T> {
    packet: Arc<Packet<T>>,
}

pub(crate) fn pair<T>() -> (Completer<T>, JobHandle<T>) {
    let packet = Arc::new(Packet {
        slot: Mutex::new(Slot::Queued),
        ready: Condvar::new(),
    });
    (
        Completer {
            packet: Some(Arc::clone(&packet)),
        },
        JobHandle { packet },
    )
}

impl<T> Completer<T> {
    /// Marks the job running under `ctx`. Returns `false` if it was
    /// cancelled first: then it must not run.
    pub(crate) fn start(&self, ctx: &Context) -> bool {
        let Some(packet) = &self.packet else {
            return false;
        };
        let mut slot = packet.slot.lock();
        match *slot {
            Slot::Queued => {
                *slot = Slot::Running(ctx.clone());
                true
            }
            _ => false,
        }
    }

    /// Delivers the result and wakes the handle.
    pub(crate) fn complete(mut self, result: Result<T, JobError>) {
        if let Some(packet) = self.packet.take() {
            packet.fill(result);
        }
    }

    /// The job will never run: tell the handle why.
    pub(crate) fn discard(mut self, reason: Cancelled) {
        if let Some(packet) = self.packet.take() {
            packet.fill(Err(JobError::Cancelled(reason)));
        }
    }

    /// Drops the packet without telling anyone: for a job that was handed
    /// back to its submitter before a handle was given out.
    pub(crate) fn forget(mut self) {
        self.packet = None;
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(packet) = self.packet.take() {
            packet.fill(Err(JobError::Cancelled(Cancelled::Canceled)));
        }
    }
}

impl<T> Packet<T> {
    /// Stores `result` unless one is already there (a job cancelled before
    /// it started keeps its `Cancelled`).
    fn fill(&self, result: Result<T, JobError>) {
        let mut slot = self.slot.lock();
        if matches!(*slot, Slot::Queued | Slot::Running(_)) {
            *slot = Slot::Done(result);
            self.ready.notify_all();
        }
    }
}

impl<T> JobHandle<T> {
    /// Waits for the job and returns its value.
    ///
    /// # Errors
    ///
    /// * [`JobError::Panicked`] with the panic's message;
    /// * [`JobError::Cancelled`] if the job never ran (cancelled through
    ///   [`cancel`](Self::cancel), or discarded by a pool cancellation or
    ///   shutdown), or if its context was cancelled before it returned;
    /// * [`JobError::TimedOut`] if it returned after its per-job timeout;
    /// * [`JobError::AlreadyJoined`] if [`join_timeout`](Self::join_timeout)
    ///   already returned the result.
    pub fn join(self) -> Result<T, JobError> {
        let mut slot = self.packet.slot.lock();
        loop {
            if let Some(result) = take(&mut slot) {
                return result;
            }
            self.packet.ready.wait(&mut slot);
        }
    }

    /// Waits at most `timeout` for the job. `None` means it has not finished
    /// yet (the handle stays usable); `Some` carries what [`join`](Self::join)
    /// would have returned, after which the result is gone and later joins
    /// return [`JobError::AlreadyJoined`].
    pub fn join_timeout(&mut self, timeout: Duration) -> Option<Result<T, JobError>> {
        let deadline = Instant::now().checked_add(timeout);
        let mut slot = self.packet.slot.lock();
        loop {
            if let Some(result) = take(&mut slot) {
                return Some(result);
            }
            match deadline {
                Some(deadline) => {
                    if self
                        .packet
                        .ready
                        .wait_until(&mut slot, deadline)
                        .timed_out()
                    {
                        return take(&mut slot);
                    }
                }
                None => self.packet.ready.wait(&mut slot),
            }
        }
    }

    /// Cancels the job. If it has not started, it never will, and the handle
    /// reports [`JobError::Cancelled`] at once. If it is running, its
    /// context is cancelled (cooperatively: the job must look). If it has
    /// finished, nothing happens.
    pub fn cancel(&self) {
        let mut slot = self.packet.slot.lock();
        match &*slot {
            Slot::Queued => {
                *slot = Slot::Done(Err(JobError::Cancelled(Cancelled::Canceled)));
                self.packet.ready.notify_all();
            }
            Slot::Running(ctx) => ctx.cancel(),
            Slot::Done(_) | Slot::Taken => {}
        }
    }

    /// Whether a result is ready (including a cancellation), so that
    /// [`join`](Self::join) would not block.
    pub fn is_finished(&self) -> bool {
        matches!(*self.packet.slot.lock(), Slot::Done(_) | Slot::Taken)
    }
}

fn take<T>(slot: &mut Slot<T>) -> Option<Result<T, JobError>> {
    match std::mem::replace(slot, Slot::Taken) {
        Slot::Done(result) => Some(result),
        Slot::Taken => Some(Err(JobError::AlreadyJoined)),
        pending => {
            *slot = pending;
            None
        }
    }
}

impl<T> fmt::Debug for JobHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}
