//! The submitters' side of a round: what a submit call did with a job
//! ([`Offer`]), the shared [`Feed`] whose gate opens the round's end at a
//! count of accepted jobs, live [`Resizes`], the idle [`Gaps`] of a
//! keep-alive ([`Elastic`]) round, and starting and joining the submitter
//! threads.

use std::fmt;
use std::ops::Range;
use std::panic;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::thread;
use std::time::Duration;

use brigade::{Sizing, TrySubmitError};
use parking_lot::{Condvar, Mutex};

use crate::common::{Gate, LONG, SplitMix64, wait_until};
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
    /// The most jobs that may run at once: the largest size the pool was
    /// asked for, plus the workers earlier shrinks asked to leave (a busy
    /// one leaves after its job, so it may still run beside the workers a
    /// later grow starts).
    most: AtomicUsize,
    /// Workers the shrinks so far asked to leave.
    shrunk: AtomicUsize,
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
            shrunk: AtomicUsize::new(0),
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
        let shrink = self.size.load(SeqCst).saturating_sub(target);
        let shrunk = self.shrunk.fetch_add(shrink, SeqCst) + shrink;
        self.most.fetch_max(target + shrunk, SeqCst);
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

/// A round whose pool lets idle workers leave: a short keep-alive, and a
/// fixed or an adaptive (`min: 0`) sizing. Its submitters pause at
/// [`Gaps`], so the workers really leave between bursts and come back for
/// the next.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Elastic {
    pub(crate) keep_alive: Duration,
    /// `Sizing::Adaptive { min: 0, max: workers }` rather than `Fixed`.
    pub(crate) adaptive: bool,
}

impl Elastic {
    /// A keep-alive of 1-5 ms in a third of the rounds.
    pub(crate) fn random(rng: &mut SplitMix64) -> Option<Self> {
        (rng.below(3) == 0).then(|| Self {
            keep_alive: Duration::from_millis(1 + rng.below(5)),
            adaptive: rng.below(2) == 0,
        })
    }

    /// The sizing the round's pool is built with.
    pub(crate) fn sizing(self, workers: usize) -> Sizing {
        if self.adaptive {
            Sizing::Adaptive {
                min: 0,
                max: workers,
            }
        } else {
            Sizing::Fixed(workers)
        }
    }
}

/// Idle gaps between bursts: every `every` of its jobs, each submitter
/// stops at a meeting point; once every submitter still running is there,
/// the last to arrive waits (up to [`Gaps::IDLE_LIMIT`]) until the pool
/// has no worker left — they expire — and then all go on, so the next
/// jobs arrive as a burst at an empty pool. The wait is load shape, not
/// an assertion: the ledger checks what follows.
pub(crate) struct Gaps {
    every: usize,
    meeting: Mutex<Meeting>,
    resume: Condvar,
}

struct Meeting {
    /// Submitters still running.
    live: usize,
    /// Submitters at the meeting point.
    arrived: usize,
    /// Counts the gaps, so a waiter knows when its own has passed.
    gap: u64,
}

/// The plan only.
impl fmt::Debug for Gaps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gaps")
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl Gaps {
    /// The longest a gap waits for the pool to empty.
    const IDLE_LIMIT: Duration = Duration::from_millis(100);

    /// No gaps unless `elastic`; else 1-3 over each submitter's share of `jobs`.
    pub(crate) fn random(
        rng: &mut SplitMix64,
        elastic: bool,
        jobs: usize,
        submitters: usize,
    ) -> Self {
        let every = if elastic {
            (jobs / submitters / (2 + rng.below(3) as usize)).max(1)
        } else {
            0
        };
        Self {
            every,
            meeting: Mutex::new(Meeting {
                live: submitters,
                arrived: 0,
                gap: 0,
            }),
            resume: Condvar::new(),
        }
    }

    /// Before a submitter's `done`-th job: a gap, if one is due, whose
    /// last arrival polls `workers` (`None`: the pool is gone) until it
    /// reads 0.
    pub(crate) fn before_job(&self, done: usize, workers: impl Fn() -> Option<usize>) {
        if self.every == 0 || done == 0 || done % self.every != 0 {
            return;
        }
        let mut meeting = self.meeting.lock();
        meeting.arrived += 1;
        if meeting.arrived < meeting.live {
            let gap = meeting.gap;
            while meeting.gap == gap {
                if self.resume.wait_for(&mut meeting, LONG).timed_out() {
                    panic!("a gap did not end within {LONG:?}");
                }
            }
            return;
        }
        drop(meeting);
        wait_until(Self::IDLE_LIMIT, || workers().is_none_or(|n| n == 0));
        self.end_gap(&mut self.meeting.lock());
    }

    fn end_gap(&self, meeting: &mut Meeting) {
        meeting.arrived = 0;
        meeting.gap += 1;
        self.resume.notify_all();
    }

    /// Counts a submitter out of the gaps when dropped, even if it panics.
    pub(crate) fn submitter(&self) -> GapsLeft<'_> {
        GapsLeft(self)
    }
}

pub(crate) struct GapsLeft<'a>(&'a Gaps);

impl Drop for GapsLeft<'_> {
    fn drop(&mut self) {
        let mut meeting = self.0.meeting.lock();
        meeting.live -= 1;
        // The others at a meeting point were waiting for this one.
        if meeting.arrived > 0 && meeting.arrived == meeting.live {
            self.0.end_gap(&mut meeting);
        }
    }
}
