//! What a job does: nothing, a nap, an overrun of its timeout, a panic or
//! a failure, drawn from a [`Mix`]; and [`perform`], the body of every job
//! and pipeline stage, which records it all in the ledger (and checks that
//! a job whose `CancelOnDrop` was dropped runs only with its context
//! cancelled).

use std::thread;
use std::time::Duration;

use brigade::{Cancelled, Context};

use crate::common::SplitMix64;
use crate::ledger::{GUARD_DROPPED, SAW_DEADLINE, SAW_DONE, Token, failed, finished, panicked};
use crate::{PLANNED, pick};

/// What one job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Work {
    Instant,
    Micros(u64),
    Millis(u64),
    /// Sleeps on its context well past the per-job timeout, so it returns
    /// at the deadline (or earlier, on a cancel).
    Overrun,
    Panic,
    /// Returns its planned error (`false` from [`perform`]).
    Fail,
}

/// How often each kind of work comes up, per 10,000 jobs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mix {
    panic: u64,
    fail: u64,
    overrun: u64,
    millis: u64,
    micros: u64,
}

impl Mix {
    /// A random mix; panics and failures each at one of `failure_rates`.
    pub(crate) fn random(rng: &mut SplitMix64, failure_rates: &[u64], overrun: bool) -> Self {
        Self {
            panic: pick(rng, failure_rates),
            fail: pick(rng, failure_rates),
            overrun: if overrun { rng.below(200) } else { 0 },
            millis: rng.below(100),
            micros: 1000 + rng.below(3000),
        }
    }

    pub(crate) fn pick(&self, rng: &mut SplitMix64) -> Work {
        let mut roll = rng.below(10_000);
        let rare = [
            (self.panic, Work::Panic),
            (self.fail, Work::Fail),
            (self.overrun, Work::Overrun),
            (self.millis, Work::Millis(1)),
        ];
        for (share, work) in rare {
            if roll < share {
                return work;
            }
            roll -= share;
        }
        if roll < self.micros {
            Work::Micros(1 + rng.below(50))
        } else {
            Work::Instant
        }
    }
}

/// The body of every job and pipeline stage: records the start, does the
/// planned work, and records how it ended. Returns `false` for a planned
/// failure.
pub(crate) fn perform(
    token: &Token,
    work: Work,
    stage: usize,
    ctx: Option<&Context>,
    timeout: Option<Duration>,
) -> bool {
    let (ledger, id) = (&*token.ledger, token.id);
    let _running = ledger.start(id, stage);
    // The guard's cancel found the job queued (so it must never start) or
    // running (so its context is cancelled already).
    if ledger.state(id) & GUARD_DROPPED != 0 && ctx.is_some_and(|ctx| !ctx.is_done()) {
        ledger.violation(format!(
            "job {id} is running with a live context after its CancelOnDrop was dropped"
        ));
    }
    match work {
        Work::Instant | Work::Fail => {}
        Work::Micros(n) => nap(ctx, Duration::from_micros(n)),
        Work::Millis(n) => nap(ctx, Duration::from_millis(n)),
        Work::Overrun => match (ctx, timeout) {
            (Some(ctx), Some(timeout)) => {
                if ctx.sleep(timeout * 4) == Err(Cancelled::DeadlineExceeded) {
                    ledger.mark(id, SAW_DEADLINE);
                }
            }
            _ => nap(ctx, Duration::from_millis(1)),
        },
        Work::Panic => {
            ledger.mark(id, panicked(stage));
            panic!("{}", planned_message(id, stage));
        }
    }
    if ctx.is_some_and(Context::is_done) {
        ledger.mark(id, SAW_DONE);
    }
    let ok = work != Work::Fail;
    ledger.mark(id, finished(stage) | if ok { 0 } else { failed(stage) });
    ok
}

/// The job's own work: a sleep that wakes early on cancellation when the
/// job has a context.
pub(crate) fn nap(ctx: Option<&Context>, duration: Duration) {
    match ctx {
        Some(ctx) => {
            let _ = ctx.sleep(duration);
        }
        None => thread::sleep(duration),
    }
}

/// The payload of the planned panic of job `id` in `stage`.
pub(crate) fn planned_message(id: usize, stage: usize) -> String {
    format!("{PLANNED} in job {id} at stage {stage}")
}
