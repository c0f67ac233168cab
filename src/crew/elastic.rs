//! Workers that come and go: a crew with an [`Elastic`] setting lets a
//! worker idle for its keep-alive leave (down to a floor, which may be
//! zero), and starts a worker when a job arrives that no free worker is
//! waiting for (up to a cap).
//!
//! # Free workers
//!
//! `Shared::free` counts the workers between jobs: from the moment one
//! finds the queue empty until it takes a job or leaves, spinning or
//! blocked. A worker that finds a job at once never touches it, so a busy
//! pool pays nothing; only the step into and out of waiting costs an
//! atomic each, and only in an elastic crew.
//!
//! # No job is stranded
//!
//! A job must never sit in the queue with no worker to take it. The two
//! racing parties are a submit that decides not to start a worker
//! ([`Shared::grow_for_job`]) and the worker it counted on leaving for
//! being idle ([`Shared::expire`]). Each writes, fences and then reads the
//! other's location, as in Dekker's algorithm:
//!
//! * the submit queues its job, fences, then reads `free`;
//! * the leaving worker takes itself off `free`, fences, then reads the
//!   queue, and stays (back on `free`) if it holds a job.
//!
//! With both fences `SeqCst`, at least one sees the other: the submit sees
//! one worker fewer (and starts one), or the worker sees the job (and
//! stays). Both may happen; the spare worker then leaves after its own
//! keep-alive. Leaving also takes the target lock and never goes below
//! the floor, so two idle workers cannot both leave a floor of one.
//! A worker retired by a shrink (`set_workers`, or the adaptive
//! controller) leaves the target as the shrink is asked for, but may still
//! be counted free when a submit reads `free` and starts no worker: the
//! submit counted on a worker that is leaving. The shrink keeps at least
//! one worker in the target, but that one may expire meanwhile. So a
//! worker that takes a retire token while free does as an expiring one
//! does ([`Shared::retire_free`]): off `free`, fence, read the queue; if a
//! job waits and no worker is left in the target, it stays (back in the
//! target) rather than strand it.
//!
//! A queue of no capacity (a rendezvous) holds no job for the leaving
//! worker to see: a submit hands its job over only to a worker blocked in
//! its receive, and waits for one in its send, invisible to `is_empty`.
//! Its check of `free` also comes before its send, not after, so the
//! pair above does not form. Such a crew therefore keeps a floor of at
//! least one worker, which always comes back to receive.

use std::time::Duration;

use super::Shared;
use crate::sync::{Arc, AtomicUsize, Ordering, fence};

/// How a crew's workers come and go.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Elastic {
    /// A worker idle this long leaves, unless the crew is at `floor`.
    pub(crate) keep_alive: Duration,
    /// The fewest workers idle expiry leaves.
    pub(crate) floor: usize,
    /// A job that no free worker waits for starts a worker while the crew
    /// has fewer than this (0: never).
    pub(crate) grow_to: usize,
}

/// A worker between jobs, counted in `Shared::free` while it is (a
/// no-op outside an elastic crew).
pub(super) struct Waiting<'a> {
    free: Option<&'a AtomicUsize>,
    counted: bool,
}

impl<'a> Waiting<'a> {
    pub(super) fn new(free: Option<&'a AtomicUsize>) -> Self {
        let mut waiting = Self {
            free,
            counted: false,
        };
        waiting.count();
        waiting
    }

    fn count(&mut self) {
        if let (Some(free), false) = (self.free, self.counted) {
            // ORDERING: SeqCst, for the fenced reads on either side (see
            // the module docs).
            free.fetch_add(1, Ordering::SeqCst);
            self.counted = true;
        }
    }

    fn uncount(&mut self) {
        if let (Some(free), true) = (self.free, self.counted) {
            free.fetch_sub(1, Ordering::SeqCst);
            self.counted = false;
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.uncount();
    }
}

impl<J: Send + 'static, E: super::Exec<J>> Shared<J, E> {
    /// `free` if this crew is elastic, for a worker's [`Waiting`].
    pub(super) fn free_count(&self) -> Option<&AtomicUsize> {
        self.config.elastic.as_ref().map(|_| &*self.free)
    }

    /// A worker was idle for the keep-alive: whether it leaves now. It
    /// stays at the floor, or when a job arrived as it decided; leaving,
    /// it takes itself off the target (and `waiting` off `free`).
    pub(super) fn expire(&self, waiting: &mut Waiting<'_>, floor: usize) -> bool {
        // A rendezvous keeps one worker (see the module docs).
        let floor = floor.max(usize::from(self.rendezvous()));
        let mut target = self.target.lock();
        if target.workers <= floor {
            return false;
        }
        waiting.uncount();
        fence(Ordering::SeqCst);
        if self.has_work() {
            waiting.count();
            return false;
        }
        target.workers -= 1;
        // ORDERING: Relaxed: a statistic.
        self.counters.expired.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// A worker between jobs took a retire token: whether it leaves. In
    /// an elastic crew it stays (the shrink is then already met) if a job
    /// is queued and every worker left in the target has expired, since a
    /// submit may have counted on it (see the module docs).
    pub(super) fn retire_free(&self, waiting: &mut Waiting<'_>) -> bool {
        if waiting.free.is_none() {
            return true;
        }
        let mut target = self.target.lock();
        waiting.uncount();
        fence(Ordering::SeqCst);
        if target.workers == 0 && self.has_work() {
            waiting.count();
            target.workers += 1;
            return false;
        }
        true
    }

    /// Whether a job waits: in the channel, or ready on the board (a routed
    /// job sends no turn while no worker is parked, so the channel alone
    /// would not show it). After a SeqCst fence, which pairs with the one
    /// in `grow_for_job` and the one at the end of `Board::admit`.
    fn has_work(&self) -> bool {
        !self.jobs.is_empty() || self.board.has_ready()
    }

    /// A job was just queued in an elastic crew: starts a worker if no
    /// free worker waits for it (or fewer than the jobs queued), while the
    /// crew has fewer than its growth cap.
    pub(super) fn grow_for_job(self: &Arc<Self>) {
        fence(Ordering::SeqCst);
        let free = self.free.load(Ordering::Relaxed);
        if free != 0 && self.jobs.len() <= free {
            return;
        }
        // No cheaper first look at the count: `live` still holds a worker
        // that has left the target and not yet exited.
        if let Err(err) = self.grow_one() {
            log::error!("brigade: could not start a worker for a job: {err}");
            // With no worker at all, the job would sit unrun: cancel, so
            // it is reported, as when a respawn fails.
            if self.target.lock().workers == 0 {
                self.ctx.cancel();
                self.drain();
            }
        }
    }
}
