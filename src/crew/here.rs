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
//!
//! A routed job (a lane, a key) runs here where a `try_submit` along its
//! route would be refused as `Full`: the dispatcher's board, or its key's
//! queue, has no room. It holds its route as a job a worker took from the
//! board does ([`Board::hold_here`](super::dispatch::Board::hold_here)):
//! it counts as running in its lane, its key's later jobs queue behind it,
//! and its end hands the ticket back through the worker's `finish`, which
//! gives what it made ready to idle workers. A keyed job whose key has a
//! job queued or running cannot go first without breaking the key's
//! order; it waits for room instead, as a blocking submit does (still a
//! brake on the producer, never a job run out of turn) — unless the
//! caller is one of the pool's workers or runs a job of the same key,
//! whose wait could be for room only the caller can make: that job is
//! queued behind its key at once, past the board's and the key's limits
//! ([`Board::queue_past`](super::dispatch::Board::queue_past)).

use std::cell::Cell;

use super::dispatch::Ticket;
use super::job::WorkerState;
use super::{Crew, Exec, Queued, Route, SendFail, Shared, Wait, runs_key, works_for};
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
            self.shared.run_here(queued, None)
        })
    }

    /// As [`submit_or_run_here`](Self::submit_or_run_here), for a job
    /// along `route`: where the board has no room for it, it runs here
    /// holding its lane and key as a worker would (see the module docs).
    /// A keyed job whose key has a job queued or running may not go
    /// first: see [`wait_behind_key`](Self::wait_behind_key).
    ///
    /// # Errors
    ///
    /// As for [`submit_or_run_here`](Self::submit_or_run_here).
    pub(crate) fn submit_routed_or_run_here(
        &self,
        tx: &Sender<Queued<J>>,
        job: J,
        route: Route,
        closed: Option<&Receiver<()>>,
    ) -> Result<(), TrySubmitError<J>> {
        let job = match self.submit_routed(tx, job, route, Wait::Now, closed) {
            Err(TrySubmitError::Full(job)) => job,
            queued_or_refused => return queued_or_refused,
        };
        // Accepted before the route is held (the propagate hook's capture
        // runs here), so nothing between the hold and the run can fail.
        let queued = Queued::Job(self.shared.envelope(job));
        let Some(ticket) = self.shared.board.hold_here(route) else {
            return self.wait_behind_key(tx, queued, route, closed);
        };
        self.shared
            .run_here(queued, Some(ticket))
            .map_err(|fail| fail.refused(|queued| self.shared.unenvelope(queued)))
    }

    /// A job along `route` that may not run here: its key has a job
    /// queued or running. It waits for room as a blocking submit does,
    /// unless this thread is one of the pool's workers or runs a job of
    /// the same key, where the room it waits for could be this thread's
    /// to make: then it is queued at once, behind its key, past the
    /// board's and the key's limits (one job per such thread at a time).
    fn wait_behind_key(
        &self,
        tx: &Sender<Queued<J>>,
        queued: Queued<J>,
        route: Route,
        closed: Option<&Receiver<()>>,
    ) -> Result<(), TrySubmitError<J>> {
        let crew = self.shared.id();
        let own_key = route.key.is_some_and(|key| runs_key(crew, key));
        if !works_for(crew) && !own_key {
            let job = self.shared.unenvelope(queued);
            return self.submit_routed(tx, job, route, Wait::Forever, closed);
        }
        let Queued::Job(queued) = queued else {
            unreachable!("brigade: a submit sends a job, never a turn")
        };
        self.shared.board.queue_past(queued, route);
        // Behind its key, it waits for the key's end; if the key ended
        // meanwhile, it is ready now, and a blocked worker must hear.
        self.shared.nudge_idle(1);
        self.shared.landed();
        Ok(())
    }
}

impl<J: Send + 'static, E: Exec<J, Local = ()>> Shared<J, E> {
    /// Runs an accepted job on the calling thread: paced at the start
    /// gate, then through `run_job`, as in the worker loop, holding the
    /// board `ticket` of a routed job until it ends. Hands it back if the
    /// pool is cancelled first.
    fn run_here(
        &self,
        queued: Queued<J>,
        ticket: Option<Ticket>,
    ) -> Result<(), SendFail<Queued<J>>> {
        if self.pass_gate().is_err() || self.ctx.is_done() {
            self.finish(ticket, None, true);
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
        let (_ran, _faulted) = self.run_taken(queued, ticket.as_ref(), &state, &mut ());
        // Whatever its end made ready goes to idle workers: this thread
        // goes back to its caller.
        self.finish(ticket, Some(&slot.0), true);
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
