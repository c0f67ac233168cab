//! The submitters' side of a round: what a submit call did with a job
//! ([`Offer`]), the shared [`Feed`] whose gate opens the round's end at a
//! count of accepted jobs, live [`Resizes`], and starting and joining the
//! submitter threads.

use std::fmt;
use std::ops::Range;
use std::panic;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::thread;

use brigade::TrySubmitError;

use crate::common::{Gate, SplitMix64};
use crate::ledger::{ACCEPTED, HANDED_BACK, Ledger};

/// What a submit call did with a job.
pub(crate) enum Offer<T> {
    Accepted(T),
    /// Handed back for good (closed or cancelled); go on with the next job.
    Refused,
    /// The pool is gone; stop submitting.
    Gone,
}

/// The submitters' shared counters, and the shutdown moment: a gate that
/// opens once `at` jobs were accepted, or once every submitter is done.
pub(crate) struct Feed {
    at: usize,
    accepted: AtomicUsize,
    submitters_left: AtomicUsize,
    pub(crate) moment: Gate,
    pub(crate) resubmitted: AtomicU64,
}

impl Feed {
    pub(crate) fn new(at: usize, submitters: usize) -> Self {
        let moment = Gate::new();
        if at == 0 {
            moment.open();
        }
        Self {
            at,
            accepted: AtomicUsize::new(0),
            submitters_left: AtomicUsize::new(submitters),
            moment,
            resubmitted: AtomicU64::new(0),
        }
    }

    pub(crate) fn accept(&self, ledger: &Ledger, id: usize) {
        ledger.mark(id, ACCEPTED);
        if self.accepted.fetch_add(1, SeqCst) + 1 == self.at {
            self.moment.open();
        }
    }

    /// A job came back from a full queue and is about to be offered again.
    pub(crate) fn retry(&self) {
        self.resubmitted.fetch_add(1, SeqCst);
        thread::yield_now();
    }

    /// What one submit attempt's `result` means for job `id`: accepted,
    /// or handed back for good (closed, cancelled) — or, after a full
    /// queue, the job back (`Err`) to offer again.
    pub(crate) fn settle<J, T>(
        &self,
        ledger: &Ledger,
        id: usize,
        result: Result<T, TrySubmitError<J>>,
    ) -> Result<Offer<T>, J> {
        match result {
            Ok(accepted) => {
                self.accept(ledger, id);
                Ok(Offer::Accepted(accepted))
            }
            Err(err @ TrySubmitError::Full(_)) => {
                self.retry();
                Err(err.into_inner())
            }
            Err(err) => Ok(self.hand_back(ledger, id, err.into_inner(), Offer::Refused)),
        }
    }

    /// The submitter gives up on a job a submit call handed back.
    pub(crate) fn hand_back<J, T>(
        &self,
        ledger: &Ledger,
        id: usize,
        job: J,
        offer: Offer<T>,
    ) -> Offer<T> {
        ledger.mark(id, HANDED_BACK);
        drop(job);
        offer
    }

    /// Counts a submitter out when dropped, even if it panics.
    pub(crate) fn submitter(&self) -> SubmitterDone<'_> {
        SubmitterDone(self)
    }
}

pub(crate) struct SubmitterDone<'a>(&'a Feed);

impl Drop for SubmitterDone<'_> {
    fn drop(&mut self) {
        if self.0.submitters_left.fetch_sub(1, SeqCst) == 1 {
            self.0.moment.open();
        }
    }
}

/// Live resizes during a round: submitter 0 calls `set_workers` with the
/// next target every `every` of its jobs, racing the other submitters, the
/// workers and the round's end.
pub(crate) struct Resizes {
    targets: Vec<usize>,
    every: usize,
    /// The last target applied: the size a settled, uncancelled pool has.
    size: AtomicUsize,
    /// The largest size the pool was ever asked for: the most jobs that
    /// may run at once.
    most: AtomicUsize,
}

/// The plan only: the sizes a round reaches depend on its run.
impl fmt::Debug for Resizes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resizes")
            .field("targets", &self.targets)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl Resizes {
    /// No resizes in a third of the rounds; otherwise 1-8 targets of 1-6
    /// workers, spread over submitter 0's share of `jobs`.
    pub(crate) fn random(
        rng: &mut SplitMix64,
        workers: usize,
        jobs: usize,
        submitters: usize,
    ) -> Self {
        let count = if rng.below(3) == 0 {
            0
        } else {
            1 + rng.below(8) as usize
        };
        let targets: Vec<usize> = (0..count).map(|_| 1 + rng.below(6) as usize).collect();
        Self {
            every: (jobs / submitters / (count + 1)).max(1),
            targets,
            size: AtomicUsize::new(workers),
            most: AtomicUsize::new(workers),
        }
    }

    /// Before submitter 0's `done`-th job: resizes through `set` if one is
    /// due. `set` returns false when the pool is already gone.
    pub(crate) fn before_job(
        &self,
        submitter: usize,
        done: usize,
        set: impl FnOnce(usize) -> bool,
    ) {
        if submitter != 0 || done == 0 || done % self.every != 0 {
            return;
        }
        let Some(&target) = self.targets.get(done / self.every - 1) else {
            return;
        };
        // Raised first: a grown pool may run more jobs at once straight away.
        self.most.fetch_max(target, SeqCst);
        if set(target) {
            self.size.store(target, SeqCst);
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.size.load(SeqCst)
    }

    pub(crate) fn most(&self) -> usize {
        self.most.load(SeqCst)
    }
}

/// A thread-name prefix no other round of this process uses.
pub(crate) fn unique_name(kind: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{kind}{}", NEXT.fetch_add(1, SeqCst))
}

/// `0..jobs` cut into `parts` contiguous id ranges, one per submitter.
pub(crate) fn split(jobs: usize, parts: usize) -> Vec<Range<usize>> {
    (0..parts)
        .map(|part| jobs * part / parts..jobs * (part + 1) / parts)
        .collect()
}

/// Joins scoped submitter threads, resuming a panic from any of them.
pub(crate) fn join_all<T>(threads: Vec<thread::ScopedJoinHandle<'_, Vec<T>>>) -> Vec<T> {
    threads
        .into_iter()
        .flat_map(|thread| {
            thread
                .join()
                .unwrap_or_else(|payload| panic::resume_unwind(payload))
        })
        .collect()
}
