//! A job its submitter runs on its own thread when the queue has no room
//! for it ([`ThreadPool::submit_or_run_here`](crate::ThreadPool::submit_or_run_here)):
//! Java's `CallerRunsPolicy`, asked for on the call instead of set on the
//! pool.
//!
//! It enters by the one way in, `Crew::submit_or`, like every submit: it
//! is accepted once (counted as submitted, given its sequence number and
//! queue stamp, the submitter's value captured if the crew propagates
//! one), and only where a `try_submit` would be refused as `Full` does its
//! path leave the queue's: the same start gate and the same `run_job` as
//! the worker loop — so its context is a child of the pool's with the
//! per-job timeout and the pool's deadline, its panic is caught, logged
//! and counted (under `CancelPool` it cancels the pool), its end is told
//! to the `on_job_done` hook and delivered to its handle. What differs:
//!
//! * it records into a stats slot of its own, borrowed from the crew's
//!   counters for the run and given back after (a slot has one writer at
//!   a time), so [`Stats::busy`](crate::Stats::busy) counts the submitter
//!   while it runs the job;
//! * a panic retires no thread: the thread is the caller's, so under
//!   `PanicPolicy::Respawn` nothing is replaced, and whatever thread-local
//!   state the panic left stays with the caller;
//! * until it starts, the job is still the submitter's: if the pool is
//!   cancelled first — before the call, or during the start gate's wait —
//!   or the gate cannot let it start before the pool's deadline, the job
//!   is handed back uncounted rather than discarded. A cancellation that
//!   races the start reaches the job through its context, as on a worker.

use std::cell::Cell;

use super::job::WorkerState;
use super::{Crew, Exec, Queued, SendFail, Shared, Wait};
use crate::error::TrySubmitError;
use crate::stats::{Counters, WorkerSlot};
use crate::sync::CachePadded;
use crate::sync::channel::{Receiver, Sender};

impl<J: Send + 'static, E: Exec<J, Local = ()>> Crew<J, E> {
    /// Queues `job` through `tx` if there is room now (as
    /// [`submit`](Crew::submit) with `Wait::Now`); if the queue is full,
    /// runs it on the calling thread, now, through the lifecycle a worker
    /// gives a job it dequeued (see the module docs). For a crew whose
    /// workers keep no local state.
    ///
    /// # Errors
    ///
    /// The job comes back, never run, in `Closed` (as for `submit`) or
    /// `Cancelled`: the pool was cancelled before the job was queued or
    /// could start here, or its start gate (a rate limiter) cannot let it
    /// start before the pool's deadline. Never `Full`.
    pub(crate) fn submit_or_run_here(
        &self,
        tx: &Sender<Queued<J>>,
        job: J,
        closed: Option<&Receiver<()>>,
    ) -> Result<(), TrySubmitError<J>> {
        self.submit_or(tx, job, Wait::Now, closed, |queued| {
            self.shared.run_here(queued)
        })
    }
}

impl<J: Send + 'static, E: Exec<J, Local = ()>> Shared<J, E> {
    /// Runs an accepted job on the calling thread: paced at the start
    /// gate, then through `run_job`, as in the worker loop. Hands it back
    /// if the pool is cancelled first.
    fn run_here(&self, queued: Queued<J>) -> Result<(), SendFail<Queued<J>>> {
        if self.pass_gate().is_err() || self.ctx.is_done() {
            return Err(SendFail::Cancelled(queued));
        }
        let Queued::Job(queued) = queued else {
            unreachable!("brigade: a submit sends a job, never a turn")
        };
        let slot = Borrowed::new(&self.counters);
        let state = WorkerState {
            config: &self.config,
            counters: &self.counters,
            slot: &slot.0,
            pool: &self.ctx,
            ctx: self.ctx.clone(),
            spare: Cell::new(None),
            index: None,
            board_lane: Cell::new(None),
        };
        // Neither a panic (caught and counted) nor a misbehaving propagate
        // hook (logged) retires anything: the thread is the caller's.
        let (_ran, _faulted) = self.run_job(queued, &state, &mut ());
        Ok(())
    }
}

/// A stats slot borrowed from the crew's counters for one run; given back
/// when dropped, also if the run unwinds.
struct Borrowed<'c>(std::sync::Arc<CachePadded<WorkerSlot>>, &'c Counters);

impl<'c> Borrowed<'c> {
    fn new(counters: &'c Counters) -> Self {
        Self(counters.slot(), counters)
    }
}

impl Drop for Borrowed<'_> {
    fn drop(&mut self) {
        self.0.set_busy(false);
        self.1.vacate(std::sync::Arc::clone(&self.0));
    }
}
