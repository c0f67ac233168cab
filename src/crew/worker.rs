//! One worker thread: its loop, its supervision, and how it starts.

use std::cell::Cell;

use super::dispatch::{self, Blocked, Ticket};
use super::elastic::Waiting;
use super::job::WorkerState;
use super::{CURRENT_CREW, Envelope, Exec, Nudge, PanicPolicy, Queued, Ran, Shared};
use crate::error::Cancelled;
use crate::stats::WorkerSlot;
use crate::sync::channel::{Select, SelectTimeoutError, TryRecvError};
use crate::sync::{Arc, CachePadded, Ordering, Spin, fence, thread};
use crate::unwind;

/// Why a worker leaves its loop.
enum Leave {
    /// Closed, cancelled or asked to retire: leave for good.
    Done,
    /// A job panicked under `PanicPolicy::Respawn`: leave and be replaced.
    Replace,
    /// The worker could not start: leave, lost (`Shared::worker_exited`).
    Lost,
}

impl<J: Send + 'static, E: Exec<J>> Shared<J, E> {
    /// The worker loop. Returns why the worker is leaving.
    fn work(&self, index: usize, slot: &WorkerSlot, local: &mut E::Local) -> Leave {
        // Job contexts descend from a context of this worker's own rather
        // than from the pool's: creating and dropping a child touches its
        // parent's reference count, and on the pool's context that count
        // would bounce between every worker's cache. Registered once, so
        // the pool's cancellation still reaches every job.
        let state = WorkerState {
            config: &self.config,
            counters: &self.counters,
            slot,
            pool: &self.ctx,
            ctx: self.ctx.child(),
            spare: Cell::new(None),
            index: Some(index),
            board_lane: Cell::new(None),
        };
        state.ctx.link();
        while let Some((queued, ticket)) = self.next() {
            self.room.freed();
            if ticket.is_some() {
                self.routed_room.freed_all();
            }
            if self.ctx.is_done() {
                self.refuse(queued, ticket, None);
                break;
            }
            // By reference, so the job is not moved through the gate: a
            // pool without one pays a branch.
            if let Err(reason) = self.pass_gate() {
                self.refuse(queued, ticket, Some(reason));
                continue;
            }
            let (ran, faulted) = self.run_taken(queued, ticket.as_ref(), &state, local);
            let replace =
                faulted || (ran.panicked() && self.config.panic_policy == PanicPolicy::Respawn);
            self.finish(ticket, Some(slot), replace);
            if replace {
                return Leave::Replace;
            }
            // A busy worker asked to leave goes after its job.
            if self.take_retire() {
                break;
            }
        }
        self.leave()
    }

    /// Discards a job that may not start, for `reason` (`None`: the
    /// pool's own), and hands its board ticket back.
    fn refuse(&self, queued: Envelope<J>, ticket: Option<Ticket>, reason: Option<Cancelled>) {
        match reason {
            None => self.discard(queued),
            Some(reason) => self.discard_for(queued, reason),
        }
        self.finish(ticket, None, false);
    }

    /// Runs a job taken from the channel or, with its `ticket`, from the
    /// board: then its key is marked running on this thread meanwhile,
    /// and its lane is noted in the worker's slot when its end is
    /// recorded (`WorkerState::board_lane`).
    #[inline(always)]
    pub(super) fn run_taken<'w>(
        &self,
        queued: Envelope<J>,
        ticket: Option<&Ticket>,
        state: &'w WorkerState<'w>,
        local: &mut E::Local,
    ) -> (Ran, bool) {
        let Some(ticket) = ticket else {
            return self.run_job(queued, state, local);
        };
        let _key = dispatch::hold_key(self.id(), ticket);
        state.board_lane.set(Some(ticket.lane()));
        let ran = self.run_job(queued, state, local);
        // Unset unless the job's end was recorded here (not if a join
        // elsewhere ran it, or its handle cancelled it).
        state.board_lane.set(None);
        ran
    }

    /// The worker leaves for good: a cancelled pool's queue is discarded,
    /// work ready on the board is handed to another worker.
    fn leave(&self) -> Leave {
        if self.ctx.is_done() {
            self.drain();
        } else {
            self.nudge_idle(1);
            if self.parks_in_recv() && !self.retire.1.is_empty() {
                // A token left for a parked worker whose turn did not fit.
                self.wake_parked(1);
            }
        }
        // Futures waiting for room see why there is none.
        self.room.wake_all();
        self.routed_room.wake_all();
        Leave::Done
    }

    /// The next job to run, and its board ticket if it came from the
    /// board; `None` once the worker is to leave (see `next_job`).
    #[inline]
    fn next(&self) -> Option<(Envelope<J>, Option<Ticket>)> {
        let mut spin = Spin::default();
        loop {
            let received = if self.board.has_ready() {
                // The channel's head too, so a plain job is weighed
                // against the board's best rather than overtaken by it.
                // (Looking whether it is empty costs a fifth of a
                // `try_recv` that finds it so; a rendezvous channel always
                // looks empty, its submitters waiting to be received.)
                (self.rendezvous() || !self.jobs.is_empty())
                    .then(|| self.jobs.try_recv().ok())
                    .flatten()
                    .map(|queued| self.received(queued))
            } else {
                Some(self.next_job()?)
            };
            match received {
                Some(Queued::Job(queued)) if self.board.has_ready() => {
                    let (queued, ticket) = self.board.exchange(queued);
                    self.pass_on_wake_up();
                    return Some((queued, Some(ticket)));
                }
                Some(Queued::Job(queued)) => return Some((queued, None)),
                Some(Queued::Turn) if self.retires_on_turn() => return None,
                Some(Queued::Turn) | None => {
                    if let Some((queued, ticket)) = self.board.take() {
                        if received.is_some() {
                            self.pass_on_wake_up();
                        }
                        return Some((queued, Some(ticket)));
                    }
                    // Another worker took the job, or its submit counted
                    // it and has yet to push it (`Board::admit`): then
                    // look again after a spin, and after a few, wait.
                    if self.board.has_pending() && !spin.snooze() {
                        spin = Spin::default();
                        if let Some((queued, ticket)) = self.board.take_counted() {
                            return Some((queued, Some(ticket)));
                        }
                    }
                }
            }
        }
    }

    /// A turn was received: in a crew that parks in `recv` it may carry a
    /// shrink's wake-up (`wake_parked`), so a waiting retire token is
    /// taken first (then the worker leaves). Otherwise the job this
    /// worker would take next keeps the idle worker the turn woke instead
    /// from leaving until that job ends.
    fn retires_on_turn(&self) -> bool {
        self.parks_in_recv() && self.take_retire()
    }

    /// This worker received a turn or a plain job and then took from the
    /// board: what it received may have been sent to wake a blocked
    /// worker (a channel wakes a blocked receiver for each message, and
    /// one that finds the message taken blocks again). If a job is still
    /// ready, a blocked worker is nudged, or the job would wait for a busy
    /// worker while it sleeps.
    fn pass_on_wake_up(&self) {
        self.nudge_idle(1);
    }

    /// A job from the board ended: releases its key and lane, after its
    /// result was delivered, so a key's next job cannot overtake it, and
    /// then clears the lane the worker's `slot` noted at its recorded end
    /// (see `WorkerSlot::set_ending`). The jobs that made ready beyond
    /// the one this worker takes next (all of them, if it is `leaving`)
    /// are announced to idle workers. A future waiting for room in the
    /// job's key is woken if its end made some. Always inlined: a plain
    /// job passes no ticket, and as a call this was 12 instructions of
    /// each plain job's path on the worker (callgrind).
    #[inline(always)]
    pub(super) fn finish(&self, ticket: Option<Ticket>, slot: Option<&WorkerSlot>, leaving: bool) {
        if let Some(ticket) = ticket {
            let ended = self.board.finish(ticket);
            if let Some(slot) = slot {
                slot.set_ending(None);
            }
            if ended.key_room {
                self.routed_room.wake_all();
            }
            self.nudge_idle(if leaving {
                ended.ready
            } else {
                ended.ready.saturating_sub(1)
            });
        }
    }

    /// Wakes up to `n` idle workers to look at the board, for jobs ready
    /// there that this thread does not take: none if no job is ready, and
    /// no more than are counted blocked, so nudges that nobody needs do
    /// not pile up (in the retire channel, or as turns taking room in the
    /// jobs channel). (A rendezvous crew's workers do
    /// not count themselves blocked: there `n` go while a job is ready.)
    ///
    /// No lost nudge: the fence pairs with the one in `Board::blocks`, so
    /// either this look sees a worker counted blocked, or that worker's
    /// look sees the job ready and does not block.
    pub(super) fn nudge_idle(&self, n: usize) {
        if n == 0 {
            return;
        }
        fence(Ordering::SeqCst);
        if !self.board.has_ready() {
            return;
        }
        let n = if self.rendezvous() {
            n
        } else {
            n.min(self.board.blocked())
        };
        self.nudge(n);
    }

    /// Wakes up to `n` idle workers to look at the board.
    fn nudge(&self, n: usize) {
        if self.parks_in_recv() {
            self.send_turns(n);
            return;
        }
        for _ in 0..n {
            let _ = self.retire.0.send(Nudge::Look);
        }
    }

    /// Whether an idle worker parks in a plain `recv` on the jobs channel
    /// (see [`park`](Self::park)) rather than in a `Select`: every crew
    /// but an elastic one, whose park also times out, and a rendezvous
    /// one, where a turn can be sent only to a worker already waiting.
    pub(super) fn parks_in_recv(&self) -> bool {
        self.config.elastic.is_none() && !self.rendezvous()
    }

    /// Hooks the crew's context, in a crew that parks in `recv`, to wake
    /// its parked workers when it is cancelled (see [`park`](Self::park)).
    /// Weak: the hook lives in the crew's own context, which `Shared` owns.
    pub(super) fn hook_parked(self: &Arc<Self>) {
        if !self.parks_in_recv() {
            return;
        }
        let shared = Arc::downgrade(self);
        let _ = self.ctx.on_done(move |_| {
            if let Some(shared) = shared.upgrade() {
                shared.wake_parked(usize::MAX);
            }
        });
    }

    /// Wakes up to `n` workers parked in `recv` (all of them with
    /// `usize::MAX`) to look again at the cancel flag, the retire tokens
    /// and the board. The caller changed one of those first.
    ///
    /// No lost wake-up: the fence pairs with the one in `Board::blocks`,
    /// so either this look sees a worker counted parked, or that worker's
    /// look (after its count) sees the change and does not park.
    pub(super) fn wake_parked(&self, n: usize) {
        fence(Ordering::SeqCst);
        self.send_turns(n.min(self.board.blocked()));
    }

    /// Sends up to `n` turns into the jobs channel, each of which wakes
    /// one worker parked in `recv`. A turn that does not fit is not sent:
    /// the queue is then full, and whichever worker takes from it looks
    /// at the board, the cancel flag and the retire tokens before it
    /// parks; one that leaves cancelled wakes every parked worker after
    /// its drain, and one that retires wakes one while tokens remain
    /// (`drain`, `leave`). None once every holder of the front doors'
    /// sender has let go: the disconnect then wakes every worker.
    fn send_turns(&self, n: usize) {
        if n == 0 {
            return;
        }
        let Some(tx) = self.waker.upgrade() else {
            return;
        };
        for _ in 0..n {
            self.board.turn_sent(true);
            if tx.try_send(Queued::Turn).is_err() {
                self.board.turn_sent(false);
                return;
            }
        }
    }

    /// Runs a dequeued job through the lifecycle, inside the submitter's
    /// value if it carries one (`propagate.rs`). The flag says the hook
    /// misbehaved, which retires the worker. Always inlined: as a call,
    /// its prologue and the envelope's move into it were a sixth of a
    /// tiny job's instructions on the worker (callgrind).
    #[inline(always)]
    pub(super) fn run_job<'w>(
        &self,
        queued: Envelope<J>,
        state: &'w WorkerState<'w>,
        local: &mut E::Local,
    ) -> (Ran, bool) {
        let Envelope {
            job,
            seq,
            queued_at,
            carried,
        } = queued;
        let run = state.run(seq, queued_at, queued_at != 0);
        match (carried, &self.config.propagate) {
            (Some(carried), Some(hook)) => hook.enter(carried, || self.exec.run(job, run, local)),
            _ => (self.exec.run(job, run, local), false),
        }
    }

    /// Waits at the start gate, if any: `Err` says why a job may not
    /// start (see [`StartGate::pass`](super::StartGate::pass)).
    #[inline]
    pub(super) fn pass_gate(&self) -> Result<(), Cancelled> {
        match &self.config.start_gate {
            None => Ok(()),
            Some(gate) => gate.pass(&self.ctx),
        }
    }

    /// The next item from the jobs channel (a [`Queued::Turn`] also when
    /// the board has a job ready, or a nudge says so), or `None` once the
    /// pool is cancelled, or closed and drained, or this worker is to leave.
    #[inline]
    fn next_job(&self) -> Option<Queued<J>> {
        match self.jobs.try_recv() {
            Ok(queued) => Some(self.received(queued)),
            Err(TryRecvError::Disconnected) => self.closed_board(),
            Err(TryRecvError::Empty) => self.wait_for_job(),
        }
    }

    /// The queue was empty: spins on `try_recv` (and the cancel flag) for
    /// a while, then blocks. Counted free meanwhile, in an elastic crew.
    fn wait_for_job(&self) -> Option<Queued<J>> {
        let mut waiting = Waiting::new(self.free_count());
        let mut spin = Spin::default();
        loop {
            if self.ctx.is_done() || self.take_retire() && self.retire_free(&mut waiting) {
                return None;
            }
            if self.board.has_ready() {
                return Some(Queued::Turn);
            }
            if !spin.snooze() {
                return self.next_job_blocking(&mut waiting);
            }
            match self.jobs.try_recv() {
                Ok(queued) => return Some(self.received(queued)),
                Err(TryRecvError::Disconnected) => return self.closed_board(),
                Err(TryRecvError::Empty) => {}
            }
        }
    }

    /// Intake closed and the channel is empty: the worker stays while the
    /// board still holds jobs (held behind running ones), waiting until
    /// one is ready.
    fn closed_board(&self) -> Option<Queued<J>> {
        if self.board.is_empty() || !self.board.wait_closed(&self.ctx) {
            return None;
        }
        Some(Queued::Turn)
    }

    /// Blocks until a job or a turn comes: in a plain `recv` (see
    /// [`park`](Self::park)), or, in an elastic or rendezvous crew, in a
    /// `Select` on the jobs, cancel and retire channels (and the
    /// keep-alive, if any). A `Select` rather than `select!`, so that the
    /// loom build's channel stand-in runs this same code (see `sync.rs`).
    #[cold]
    fn next_job_blocking(&self, waiting: &mut Waiting<'_>) -> Option<Queued<J>> {
        // The queue is empty: a future that found it full can send now.
        let _idle = self.room.idle();
        let _routed_idle = self.routed_room.idle();
        let Some(_blocked) = self.count_parked() else {
            return Some(Queued::Turn);
        };
        if self.parks_in_recv() {
            return self.park();
        }
        let mut select = Select::new();
        let jobs = select.recv(&self.jobs);
        let cancel = select.recv(&self.cancel);
        select.recv(&self.retire.1);
        loop {
            let operation = match &self.config.elastic {
                None => select.select(),
                Some(elastic) => match select.select_timeout(elastic.keep_alive) {
                    Ok(operation) => operation,
                    Err(SelectTimeoutError) => {
                        if self.expire(waiting, elastic.floor) {
                            return None;
                        }
                        continue;
                    }
                },
            };
            return match operation.index() {
                i if i == jobs => match operation.recv(&self.jobs) {
                    Ok(queued) => Some(self.received(queued)),
                    Err(_) => self.closed_board(),
                },
                // The cancel channel only ever disconnects.
                i if i == cancel => {
                    let _ = operation.recv(&self.cancel);
                    None
                }
                _ => match operation.recv(&self.retire.1) {
                    Ok(Nudge::Look) => Some(Queued::Turn),
                    token => {
                        if self.retired(token.is_ok(), waiting) {
                            None
                        } else {
                            continue;
                        }
                    }
                },
            };
        }
    }

    /// Blocks in a plain `recv` on the jobs channel, counted parked (by
    /// the caller). A `Select` over the jobs, cancel and retire channels
    /// would cost each idle submit's start a registration on three
    /// channels and, once woken, an unregistration from each (see
    /// `benches/README.md`). So a cancellation, a retire token or a job
    /// made ready on the board reaches a parked worker as a turn through
    /// the jobs channel ([`wake_parked`](Self::wake_parked)); the worker
    /// that receives it takes a waiting token, or looks at the board, and
    /// goes back round its loop, which looks at the cancel flag. Intake
    /// closing disconnects the channel, as before.
    ///
    /// The looks here come after the count's fence (`Board::blocks`): a
    /// change made before a waker looked at the count is seen here.
    fn park(&self) -> Option<Queued<J>> {
        if self.ctx.is_done() {
            return None;
        }
        // A token already sent, not merely counted: a shrink between the
        // two sends its turn after this look (and the loop would spin).
        if !self.retire.1.is_empty() {
            return Some(Queued::Turn);
        }
        match self.jobs.recv() {
            Ok(queued) => Some(self.received(queued)),
            Err(_) => self.closed_board(),
        }
    }

    /// Counts this worker parked ([`Board::blocks`](super::dispatch::Board::blocks))
    /// until the guard drops; `None` if a routed job is ready after all.
    /// A rendezvous crew's worker keeps out of the count (its guard holds
    /// nothing): its routed submits always send their turn, and its room
    /// relies on an idle worker going on to block.
    fn count_parked(&self) -> Option<Option<Blocked<'_>>> {
        if self.rendezvous() {
            return Some(None);
        }
        self.board.blocks().map(Some)
    }

    /// A retire token arrived (`taken`) or the retire channel closed:
    /// whether the worker leaves (see `Shared::retire_free`).
    fn retired(&self, taken: bool, waiting: &mut Waiting<'_>) -> bool {
        if taken {
            // ORDERING: pairs with set_workers' Release.
            self.retiring.fetch_sub(1, Ordering::AcqRel);
            return self.retire_free(waiting);
        }
        true
    }

    /// A worker could not start (its `Exec::enter` failed): logged, and
    /// not replaced, so a failing start cannot spin. It leaves lost (see
    /// [`worker_exited`](Self::worker_exited)).
    #[cold]
    fn could_not_enter(&self, index: usize, why: &str) {
        log::error!(
            "brigade: worker {}-{index} could not start: {why}",
            self.config.thread_name
        );
    }

    /// Takes a retire token if `set_workers` left one: then this worker
    /// leaves. One atomic load when none is pending.
    #[inline]
    fn take_retire(&self) -> bool {
        // ORDERING: Acquire pairs with set_workers' Release.
        if self.retiring.load(Ordering::Acquire) == 0 {
            return false;
        }
        match self.retire.1.try_recv() {
            Ok(Nudge::Retire) => {
                self.retiring.fetch_sub(1, Ordering::AcqRel);
                true
            }
            // Meant for a blocked worker: passed on, or a ready job would
            // wait for a busy worker while that one sleeps.
            Ok(Nudge::Look) => {
                self.nudge_idle(1);
                false
            }
            Err(_) => false,
        }
    }

    /// Counts a worker out. One that leaves `lost` (it could not start,
    /// or could not be replaced) also leaves the target, the workers the
    /// crew expects to have; if that leaves none, the pool can run
    /// nothing, so it is cancelled and its queue drained (again, if a
    /// cancellation came first: no one else drains for it), so that
    /// queued jobs are reported and later submits refused rather than
    /// stranded. The target, not the live count: that still counts
    /// workers on their way out (retired, or replaced), and a start holds
    /// the target's lock until every worker it starts is counted, so one
    /// lost meanwhile is not taken for the last. It is counted out after
    /// the drain, so a wait for the workers finds it done.
    fn worker_exited(&self, lost: bool) {
        let last = lost && {
            let mut target = self.target.lock();
            target.workers = target.workers.saturating_sub(1);
            target.workers == 0
        };
        if last {
            self.ctx.cancel();
            self.drain();
        }
        let _threads = self.threads.lock();
        self.counters.live.fetch_sub(1, Ordering::Release);
        self.exited.notify_all();
    }
}

/// Starts worker `index` with its counters and local state.
pub(super) fn spawn<J: Send + 'static, E: Exec<J>>(
    shared: &Arc<Shared<J, E>>,
    index: usize,
    slot: Arc<CachePadded<WorkerSlot>>,
    local: E::Local,
) -> std::io::Result<()> {
    #[cfg(test)]
    super::tests::maybe_fail_spawn(&shared.config.thread_name, index)?;
    let mut builder = thread::Builder::new().name(format!("{}-{index}", shared.config.thread_name));
    if let Some(size) = shared.config.stack_size {
        builder = builder.stack_size(size);
    }
    let worker = Arc::clone(shared);
    let mut threads = shared.threads.lock();
    shared.counters.live.fetch_add(1, Ordering::Relaxed);
    match builder.spawn(move || main(&worker, index, &slot, local)) {
        Ok(handle) => {
            // Reap threads that already finished (retired after a panic), so
            // a long-lived pool's handle list stays at about its size.
            let (done, running): (Vec<_>, Vec<_>) = std::mem::take(&mut *threads)
                .into_iter()
                .partition(thread::is_finished);
            *threads = running;
            threads.push(handle);
            drop(threads);
            for handle in done {
                let _ = handle.join();
            }
            Ok(())
        }
        Err(err) => {
            shared.counters.live.fetch_sub(1, Ordering::Relaxed);
            shared.exited.notify_all();
            Err(err)
        }
    }
}

fn main<J: Send + 'static, E: Exec<J>>(
    shared: &Arc<Shared<J, E>>,
    index: usize,
    slot: &Arc<CachePadded<WorkerSlot>>,
    local: E::Local,
) {
    let mut sentinel = Sentinel {
        shared,
        index,
        slot,
        local: Some(local),
        respawn: true,
        lost: false,
    };
    CURRENT_CREW.with(|current| current.set(shared.id()));
    super::inline::enter(shared, index, slot);
    if shared.config.adaptive.is_some() {
        slot.set_tid(super::adaptive::current_thread_id().unwrap_or(0));
    }
    if let Some(hook) = &shared.config.on_thread_start {
        unwind::call_logged("thread start hook", || hook(index));
    }
    let exit = match &mut sentinel.local {
        Some(local) => match shared.exec.enter(index, local) {
            Ok(()) => shared.work(index, slot, local),
            Err(why) => {
                shared.could_not_enter(index, &why);
                Leave::Lost
            }
        },
        None => Leave::Done,
    };
    if let Some(hook) = &shared.config.on_thread_exit {
        unwind::call_logged("thread exit hook", || hook(index));
    }
    sentinel.respawn = matches!(exit, Leave::Replace);
    sentinel.lost = matches!(exit, Leave::Lost);
}

/// Replaces its worker when dropped with `respawn` set — after a panicking
/// job under `PanicPolicy::Respawn`, or while unwinding from a panic that
/// escaped the loop — unless the pool is cancelled. The replacement takes
/// the worker's counters and local state. Always counts the worker out.
struct Sentinel<'a, J: Send + 'static, E: Exec<J>> {
    shared: &'a Arc<Shared<J, E>>,
    index: usize,
    slot: &'a Arc<CachePadded<WorkerSlot>>,
    local: Option<E::Local>,
    respawn: bool,
    /// The worker could not start, or could not be replaced: see
    /// [`Shared::worker_exited`].
    lost: bool,
}

impl<J: Send + 'static, E: Exec<J>> Sentinel<'_, J, E> {
    /// Starts the replacement, handing it the slot and the local state.
    /// Returns whether it started.
    fn respawn_now(&mut self) -> bool {
        let shared = self.shared;
        let Some(local) = self.local.take() else {
            return false;
        };
        match spawn(shared, self.index, Arc::clone(self.slot), local) {
            Ok(()) => {
                shared.counters.respawned.fetch_add(1, Ordering::Relaxed);
                log::debug!(
                    "brigade: respawned worker {}-{}",
                    shared.config.thread_name,
                    self.index
                );
                true
            }
            Err(err) => {
                log::error!(
                    "brigade: could not respawn worker {}-{}: {err}",
                    shared.config.thread_name,
                    self.index
                );
                self.lost = true;
                false
            }
        }
    }
}

impl<J: Send + 'static, E: Exec<J>> Drop for Sentinel<'_, J, E> {
    fn drop(&mut self) {
        let shared = self.shared;
        // On the worker's own thread, before a replacement takes `local`.
        if let Some(local) = &mut self.local {
            unwind::call_logged("worker leave", || shared.exec.leave(local));
        }
        let replace = self.respawn || thread::panicking();
        let handed_on = if replace && shared.ctx.is_done() {
            // Cancelled on the way out: no replacement, and leaving after a
            // panic skipped the loop's final drain. Without this drain a job
            // queued now would be stranded: cancelled pools refuse new
            // submits, and the last worker may be this one.
            shared.drain();
            false
        } else {
            replace && self.respawn_now()
        };
        // Whatever the worker held (a results sender, say) goes before the
        // worker is counted out, so a channel it fed disconnects no later
        // than the pool's workers are all gone. Quietly: the last sender of
        // a channel nobody reads drops the unread results, and one whose
        // `Drop` panics must not keep this worker from being counted out.
        unwind::drop_quietly(self.local.take());
        if !handed_on {
            shared.counters.vacate(Arc::clone(self.slot));
        }
        shared.worker_exited(self.lost);
    }
}
