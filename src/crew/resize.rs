//! The worker count: asking for `n` workers, growing by one, and workers
//! retired by a shrink (idle ones first, busy ones after their job).
//! Leaving after the keep-alive and growing for a job are `elastic.rs`'s.
//! A worker only leaves between jobs, so no job is lost or run twice. The
//! target count lives under one lock, which serialises every change; an
//! elastic crew's growth cap changes under it too, and a grow for a job
//! reads both and starts its worker in one hold of it.

use super::{Crew, Exec, LocalMaker, Shared, worker};
use crate::error::SizingError;
use crate::sizing::check_count;
use crate::sync::{Arc, Ordering};

impl<J: Send + 'static, E: Exec<J>> Crew<J, E> {
    /// Asks for `n` workers (see `Shared::set_workers`).
    pub(crate) fn set_workers(&self, n: usize) -> Result<(), SizingError> {
        self.shared.set_workers(n)
    }

    pub(super) fn grow_to(&self, n: usize) -> std::io::Result<()> {
        self.shared.grow_to(n)
    }

    /// How many worker threads the crew has started, replacements
    /// included.
    pub(crate) fn started(&self) -> usize {
        self.shared.next_index.load(Ordering::Relaxed)
    }
}

impl<J: Send + 'static, E: Exec<J>> Shared<J, E> {
    /// Asks for `n` workers: starts the missing ones now, or lets the extra
    /// ones leave — idle workers first, busy ones after their current job.
    /// No job is lost or run twice: a worker only leaves between jobs. On a
    /// pool whose intake is closed, only shrinking does anything. Without
    /// a controller, `n` is also how far jobs may grow an elastic crew
    /// again once its idle workers have left (a controller's calls leave
    /// that cap alone: its crew is adaptive).
    pub(super) fn set_workers(self: &Arc<Self>, n: usize) -> Result<(), SizingError> {
        let n = check_count(n)?;
        let mut target = self.target.lock();
        if self.config.elastic.is_some() && self.config.adaptive.is_none() {
            // Beside the count, where `grow_one` reads both: a job's grow
            // never pairs the cap before a shrink with the count after it
            // (it started workers past the new size).
            target.grow_cap = n;
        }
        if n < target.workers {
            for _ in n..target.workers {
                // ORDERING: Release pairs with the workers' Acquire check.
                self.retiring.fetch_add(1, Ordering::Release);
                let _ = self.retire.0.send(super::Nudge::Retire);
            }
            if self.parks_in_recv() {
                self.wake_parked(target.workers - n);
            }
            target.workers = n;
        } else if let Err(err) = self.start_until(&mut target.workers, n) {
            log::error!("brigade: could not start more workers: {err}");
        }
        Ok(())
    }

    /// Starts one more worker for a job, unless the crew has its growth
    /// cap already. Returns whether it did. The look and the start are one
    /// hold of the target's lock: a shrink between them would have the
    /// start grow the crew back past the size just asked for, beside the
    /// workers still leaving.
    pub(super) fn grow_one(self: &Arc<Self>) -> std::io::Result<bool> {
        let mut target = self.target.lock();
        if target.workers >= target.grow_cap {
            return Ok(false);
        }
        let n = target.workers + 1;
        self.start_until(&mut target.workers, n).map(|()| true)
    }

    /// Starts workers until the target is `n`. Stops at the first thread
    /// the OS refuses, keeping the target at what was started.
    pub(super) fn grow_to(self: &Arc<Self>, n: usize) -> std::io::Result<()> {
        self.start_until(&mut self.target.lock().workers, n)
    }

    /// As [`grow_to`](Self::grow_to), for a caller holding the target's
    /// lock (`target`: its worker count).
    fn start_until(self: &Arc<Self>, target: &mut usize, n: usize) -> std::io::Result<()> {
        let mut maker = self.make_local.lock();
        let Some(make) = maker
            .as_mut()
            .and_then(|m| m.downcast_mut::<LocalMaker<E::Local>>())
        else {
            // Sealed: intake is closed, and a closed pool does not grow.
            return Ok(());
        };
        while *target < n {
            let index = self.next_index.fetch_add(1, Ordering::Relaxed);
            let slot = self.counters.slot();
            worker::spawn(self, index, slot, make())?;
            *target += 1;
        }
        Ok(())
    }
}
