//! One worker thread: its loop, its supervision, and how it starts.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{TryRecvError, select};

use super::{CURRENT_CREW, Envelope, Exec, PanicPolicy, Shared, wait_since};
use crate::context::Context;
use crate::error::{Cancelled, RateError};
use crate::stats::{JobEvent, JobOutcome, Outcome, WorkerSlot, sampled};
use crate::sync::{Arc, CachePadded, Ordering, Spin};
use crate::unwind;

/// The running worker, as a job sees it: where to record its outcome.
pub(crate) struct Worker<'a> {
    slot: &'a WorkerSlot,
    /// This worker's own registered child of the pool's context: the
    /// parent of the jobs it runs (see `Shared::work`).
    ctx: &'a Context,
    /// The last job's context, kept for reuse (see `job_context`).
    spare: &'a Cell<Option<Context>>,
    recorded: Cell<bool>,
    /// The pool's context under `PanicPolicy::CancelPool`, else `None`.
    cancel_on_panic: Option<&'a Context>,
}

impl Worker<'_> {
    /// A context for a job starting now, with the per-job `timeout`, and
    /// the job's own deadline. Reuses the last job's context allocation
    /// when that job kept no reference to it.
    pub(crate) fn job_context(&self, timeout: Option<Duration>) -> (Context, Option<Instant>) {
        let own = timeout.and_then(|t| Instant::now().checked_add(t));
        (self.ctx.derive_reusing(own, self.spare.take()), own)
    }

    /// Hands a finished job's context back for reuse by the next job.
    pub(crate) fn recycle(&self, ctx: Context) {
        self.spare.set(Some(ctx));
    }

    /// Counts the job's outcome now, marks the worker idle and, for a panic
    /// under `PanicPolicy::CancelPool`, cancels the pool — all before the
    /// job hands its result over, so whoever receives it sees the effects.
    /// Later calls for the same job, and the crew's own call, are ignored.
    pub(crate) fn record(&self, outcome: &Outcome) {
        if !self.recorded.replace(true) {
            self.slot.set_busy(false);
            self.slot.record(outcome);
            if let (Outcome::Panicked(_), Some(ctx)) = (outcome, self.cancel_on_panic) {
                ctx.cancel();
            }
        }
    }
}

enum Exit {
    /// Closed or cancelled: leave for good.
    Done,
    /// A job panicked under `PanicPolicy::Respawn`: leave and be replaced.
    Retire,
}

impl<J: Send + 'static, E: Exec<J>> Shared<J, E> {
    /// The worker loop. Returns why the worker is leaving.
    fn work(&self, index: usize, slot: &WorkerSlot, local: &mut E::Local) -> Exit {
        let cancel_on_panic =
            (self.config.panic_policy == PanicPolicy::CancelPool).then_some(&self.ctx);
        // Job contexts descend from a context of this worker's own rather
        // than from the pool's: creating and dropping a child touches its
        // parent's reference count, and on the pool's context that count
        // would bounce between every worker's cache. Registered once, so
        // the pool's cancellation still reaches every job.
        let worker_ctx = self.ctx.child();
        worker_ctx.link();
        let spare = Cell::new(None);
        // Jobs fed through the channel by a pipeline stage carry no stamp;
        // such a worker samples its own jobs, by its own count.
        let mut seen = 0u64;
        while let Some(queued) = self.next_job() {
            slot.count_received();
            if self.ctx.is_done() {
                self.discard(queued);
                break;
            }
            let Some(queued) = self.pace(queued) else {
                continue;
            };
            let Envelope {
                job,
                seq,
                queued_at,
            } = queued;
            let timed = queued_at != 0
                || (self.config.fed && self.config.timing && sampled(seen))
                || self.config.on_job_done.is_some();
            seen += 1;
            let started = timed.then(Instant::now);
            slot.set_busy(true);
            let worker = Worker {
                slot,
                ctx: &worker_ctx,
                spare: &spare,
                recorded: Cell::new(false),
                cancel_on_panic,
            };
            let outcome =
                match catch_unwind(AssertUnwindSafe(|| self.exec.run(job, &worker, local))) {
                    Ok(outcome) => outcome,
                    Err(payload) => Outcome::Panicked(unwind::message(payload)),
                };
            worker.record(&outcome);
            if let Some(started) = started {
                self.timed(slot, seq, queued_at, started, &outcome);
            }
            if let Outcome::Panicked(message) = &outcome {
                log::warn!(
                    "brigade: a job panicked on worker {}-{index}: {message}",
                    self.config.thread_name
                );
                // Under CancelPool, `record` has cancelled the pool and the
                // loop ends at the next job; under Respawn, retire now.
                if self.config.panic_policy == PanicPolicy::Respawn {
                    return Exit::Retire;
                }
            }
            // A busy worker asked to leave goes after its job.
            if self.take_retire() {
                break;
            }
        }
        if self.ctx.is_done() {
            self.drain();
        }
        Exit::Done
    }

    /// Records a timed job's queue wait and run time, keeps the stats
    /// window moving, and tells the `on_job_done` hook.
    #[cold]
    fn timed(
        &self,
        slot: &WorkerSlot,
        seq: u64,
        queued_at: u64,
        started: Instant,
        outcome: &Outcome,
    ) {
        let ended = Instant::now();
        // A job skipped unrun (cancelled through its handle while queued)
        // has no run time and stays out of the histograms.
        let ran = !matches!(outcome, Outcome::Skipped);
        let run = if ran {
            ended.saturating_duration_since(started)
        } else {
            Duration::ZERO
        };
        let queue_wait = wait_since(queued_at, started);
        if ran {
            slot.record_timing(queue_wait, run);
        }
        self.counters.tick(ended);
        if let Some(hook) = &self.config.on_job_done {
            let event = JobEvent::new(
                seq,
                JobOutcome::from(outcome),
                queue_wait.unwrap_or_default(),
                run,
            );
            unwind::call_logged("on_job_done hook", || hook(&event));
        }
    }

    /// Waits for the rate limiter, if any, before `queued` may start.
    /// Returns the job, or `None` after discarding it: the pool was
    /// cancelled during the wait, or the wait would run past the pool's
    /// deadline.
    fn pace(&self, queued: Envelope<J>) -> Option<Envelope<J>> {
        let Some(limiter) = &self.config.rate_limit else {
            return Some(queued);
        };
        match limiter.wait(&self.ctx) {
            Ok(()) => Some(queued),
            Err(err) => {
                let reason = match err {
                    RateError::Cancelled(reason) => reason,
                    // The job could not start before the pool's deadline.
                    _ => Cancelled::DeadlineExceeded,
                };
                self.discard_for(queued, reason);
                None
            }
        }
    }

    /// The next job, or `None` once the pool is cancelled or closed and
    /// drained.
    #[inline]
    fn next_job(&self) -> Option<Envelope<J>> {
        let mut spin = Spin::default();
        loop {
            match self.jobs.try_recv() {
                Ok(job) => return Some(job),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
            if self.ctx.is_done() || self.take_retire() {
                return None;
            }
            if !spin.snooze() {
                return self.next_job_blocking();
            }
        }
    }

    #[cold]
    fn next_job_blocking(&self) -> Option<Envelope<J>> {
        select! {
            recv(self.jobs) -> job => job.ok(),
            recv(self.cancel) -> _ => None,
            recv(self.retire.1) -> token => {
                if token.is_ok() {
                    // ORDERING: pairs with set_workers' Release.
                    self.retiring.fetch_sub(1, Ordering::AcqRel);
                }
                None
            }
        }
    }

    /// Takes a retire token if `set_workers` left one: then this worker
    /// leaves. One atomic load when none is pending.
    #[inline]
    fn take_retire(&self) -> bool {
        // ORDERING: Acquire pairs with set_workers' Release.
        if self.retiring.load(Ordering::Acquire) == 0 || self.retire.1.try_recv().is_err() {
            return false;
        }
        self.retiring.fetch_sub(1, Ordering::AcqRel);
        true
    }

    fn worker_exited(&self) {
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
                .partition(thread::JoinHandle::is_finished);
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
    };
    CURRENT_CREW.with(|current| current.set(shared.id()));
    if shared.config.adaptive.is_some() {
        slot.set_tid(crate::sizing::current_thread_id().unwrap_or(0));
    }
    if let Some(hook) = &shared.config.on_thread_start {
        unwind::call_logged("thread start hook", || hook(index));
    }
    let exit = match &mut sentinel.local {
        Some(local) => shared.work(index, slot, local),
        None => Exit::Done,
    };
    if let Some(hook) = &shared.config.on_thread_exit {
        unwind::call_logged("thread exit hook", || hook(index));
    }
    sentinel.respawn = matches!(exit, Exit::Retire);
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
}

impl<J: Send + 'static, E: Exec<J>> Drop for Sentinel<'_, J, E> {
    fn drop(&mut self) {
        let shared = self.shared;
        if (self.respawn || thread::panicking()) && !shared.ctx.is_done() {
            if let Some(local) = self.local.take() {
                match spawn(shared, self.index, Arc::clone(self.slot), local) {
                    Ok(()) => {
                        shared.counters.respawned.fetch_add(1, Ordering::Relaxed);
                        log::debug!(
                            "brigade: respawned worker {}-{}",
                            shared.config.thread_name,
                            self.index
                        );
                    }
                    Err(err) => {
                        log::error!(
                            "brigade: could not respawn worker {}-{}: {err}",
                            shared.config.thread_name,
                            self.index
                        );
                        // The last worker gone with jobs queued would strand
                        // them; cancel so they are reported instead.
                        if shared.counters.live.load(Ordering::Acquire) <= 1 {
                            shared.ctx.cancel();
                            shared.drain();
                        }
                    }
                }
            }
        }
        // Whatever the worker held (a results sender, say) goes before the
        // worker is counted out, so a channel it fed disconnects no later
        // than the pool's workers are all gone. Quietly: the last sender of
        // a channel nobody reads drops the unread results, and one whose
        // `Drop` panics must not keep this worker from being counted out.
        unwind::drop_quietly(self.local.take());
        shared.worker_exited();
    }
}
