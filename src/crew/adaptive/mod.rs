//! `Sizing::Adaptive`: steering the worker count by Little's Law.
//!
//! * `law.rs`: the control law, pure: samples in, a worker count out;
//! * `clocks.rs`: the scheduler's clocks (Linux `schedstat`), and what the
//!   controller does without them;
//! * this file: the controller thread, which samples the pool, asks the law
//!   and resizes the crew.
//!
//! # The control law
//!
//! Every [`TICK`] the controller samples the pool and computes, over that
//! tick (smoothed with an exponential average, α = ½, except that a
//! crowded pool, below, starts afresh from the latest tick):
//!
//! * the arrival rate λ — jobs submitted per second;
//! * the service time S — busy time per finished job, which for a pool is
//!   the time a job holds a worker, waiting (on I/O) included, but *not*
//!   the time its thread sat runnable waiting for a CPU (the run-queue
//!   delay in `/proc/self/task/*/schedstat` on Linux). That wait is a
//!   symptom of too many threads, not demand for more: left in, a pool of
//!   compute-heavy jobs would justify any size it happened to have, since
//!   in a saturated closed loop λ·S always equals the busy count;
//! * the CPU utilisation — this process's CPU time ÷ (wall time × CPUs),
//!   read from the same `schedstat` files (nanosecond clocks; the 10 ms
//!   ticks of `/proc/self/stat`, the fallback, are too coarse for a fast
//!   tick). Where the OS reports neither, the law does without: see
//!   "Without the clocks" in `clocks.rs`.
//!
//! By Little's Law the pool needs λ·S workers busy on average; the target
//! is ⌈1.25·λ·S⌉, the quarter being headroom for bursts. Two corrections:
//!
//! * **Backlog.** λ only counts what the producer managed to submit; with
//!   jobs queued behind all-busy workers it understates demand. Then the
//!   pool grows to what would fill the CPUs: each worker uses `u / N` of
//!   them (`u` the workers' own share where the OS says, not the
//!   process's: at the start of a burst the producer and the threads
//!   starting would shrink the step), so ⌈N · 95% / u⌉ workers would use
//!   95% — never more than there are jobs to run (N + queued), at least
//!   one more. A pool of two workers waiting on 1 ms calls at 10% CPU
//!   reaches 19 in one step, and workers whose exact clocks show no CPU
//!   time at all, all of them there for the whole tick and none
//!   runnable, grow it to the jobs there are (within `max`, and only
//!   while the CPU saturation rule below lets it grow): over a tick
//!   shorter than a burst's first I/O calls, that is what they show.
//!   Where the OS does not report CPU time, it doubles per tick instead,
//!   like TCP's slow start. The law brings it back to λ·S once the
//!   backlog is gone. The same bound caps the law's own growth: λ
//!   measured over a burst (a queue filling at start) can ask for far
//!   more workers than compute-heavy jobs could use.
//! * **CPU saturation.** Compute-bound work gains nothing from more
//!   threads than CPUs. When its workers spent ≥ a quarter of their busy
//!   time queued for a CPU, or this process uses ≥ 95% of the CPUs, or
//!   the machine's CPUs are ≥ 95% busy with any process (`/proc/stat`),
//!   the controller does not grow the pool. Some queueing is allowed on
//!   purpose: with jobs that wait and compute in turn, a pool that never
//!   queues for a CPU leaves one idle whenever wake-ups do not line up.
//!   For the same reason the 95% rule does not apply to jobs that mostly
//!   wait — workers with a backlog that spend over half their time
//!   blocked, neither on a CPU nor queued for one (exact kernel clocks):
//!   they grow one worker per fast tick until the queueing stops them
//!   (the measurement behind this is in `benches/README.md`). Only
//!   workers whose clocks cover the whole tick count, and only while most
//!   of them are asleep at the sample: `schedstat` adds a wait for a CPU
//!   when the wait ends, so a worker starved all tick by another program
//!   shows neither CPU time nor waiting yet, exactly as a blocked one. Queueing
//!   for a CPU is also how another program holding the CPUs shows: then
//!   our share of CPU time is low, but our threads wait.
//!
//! The target is clamped to `[min, max]`. **Hysteresis** keeps it from
//! flapping: growth is applied at once (a backlog costs latency now), but a
//! shrink only after three consecutive ticks agree on it by at least an
//! eighth of the pool, and then by at most a quarter at a time. A pool
//! whose workers spend half their busy time queued for a CPU is
//! *crowded* — far past what the CPUs can serve, every extra thread a
//! cost — and shrinks after two votes by up to half.
//!
//! **Pace.** The second sample comes [`FIRST_TICK`] after the first (a
//! pool built for a burst should meet it at once), and after a growth or a
//! crowded tick the next comes after [`FAST_TICK`]: ramping up from `min`
//! to `max` or out of crowding takes tens of milliseconds, not seconds. A
//! growth that leaves jobs queued is followed sooner, after [`RAMP_TICK`]:
//! a sample that lands as the first jobs end finds a worker runnable with
//! time its clocks have not yet counted, which bounds that step, and a
//! burst should not wait a fast tick for the next. A sample that leaves
//! jobs queued without growing the pool is followed after twice
//! [`RAMP_TICK`], then twice that, up to [`TICK`]: before the first jobs
//! end only the process's share tells waiting jobs from a busy machine,
//! and at a burst's start it also holds the producer and the threads
//! starting, while a pool its CPUs really hold back stays held back.
//! Between samples, while the pool has work, the controller *glances* at
//! its counters every [`FAST_TICK`]: if jobs finish at under half or over
//! twice the rate of the last tick (over at least [`SHIFT_EVIDENCE`] of
//! them), the workload has shifted and it samples at once rather than at
//! the end of the tick. A glance reads a few counters; a sample also
//! reads a schedstat file per thread, which costs more (measured in
//! `benches/README.md`). An idle pool is sampled once a tick and not
//! glanced at.
//!
//! The controller runs on its own thread (`{name}-ctl`), holds the pool
//! only weakly, and is stopped and joined before the pool's workers are.
//!
//! [`TICK`]: law::TICK
//! [`FIRST_TICK`]: law::FIRST_TICK
//! [`FAST_TICK`]: law::FAST_TICK
//! [`RAMP_TICK`]: law::RAMP_TICK
//! [`SHIFT_EVIDENCE`]: law::SHIFT_EVIDENCE

mod clocks;
mod law;

use std::time::{Duration, Instant};

use super::{Exec, Shared};
use crate::sizing::cpus;
use crate::sync::channel::{self, Receiver, RecvTimeoutError};
use crate::sync::{Arc, Ordering, Weak, thread};
use clocks::{Clocks, Reading};
use law::{Law, Sample};

pub(super) use clocks::current_thread_id;

/// Starts the controller thread for `shared`.
pub(super) fn start<J, E>(shared: &Arc<Shared<J, E>>, min: usize, max: usize) -> std::io::Result<()>
where
    J: Send + 'static,
    E: Exec<J>,
{
    let (stop_tx, stop_rx) = channel::bounded::<()>(0);
    let pool = Arc::downgrade(shared);
    // A `min` of 0 is the keep-alive's to reach: the law itself never
    // asks for fewer than one worker.
    let law = Law::new(min.max(1), max, cpus());
    let thread = thread::Builder::new()
        .name(format!("{}-ctl", shared.config.thread_name))
        .spawn(move || control(&pool, &stop_rx, law))?;
    *shared.controller.lock() = Some((stop_tx, thread));
    Ok(())
}

/// Stops `shared`'s controller, if it has one, and joins its thread.
pub(super) fn stop<J, E>(shared: &Shared<J, E>) {
    let controller = shared.controller.lock().take();
    if let Some((stop, thread)) = controller {
        // Disconnected, the controller's sleep ends at once.
        drop(stop);
        let _ = thread.join();
    }
}

/// The controller thread: looks at the pool and sleeps until the next
/// look, until the pool is dropped or cancelled or [`stop`] is called.
fn control<J, E>(pool: &Weak<Shared<J, E>>, stop: &Receiver<()>, mut law: Law)
where
    J: Send + 'static,
    E: Exec<J>,
{
    let mut clocks = Clocks::default();
    // The pool is held only while looking, so dropping it is never delayed.
    while let Some(wait) = pool
        .upgrade()
        .and_then(|shared| look(&shared, &mut law, &mut clocks))
    {
        match stop.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// One look at the pool, and a step if the law says one is due. Returns
/// how long to sleep before the next look; `None` once the pool is
/// cancelled.
fn look<J, E>(shared: &Arc<Shared<J, E>>, law: &mut Law, clocks: &mut Clocks) -> Option<Duration>
where
    J: Send + 'static,
    E: Exec<J>,
{
    if shared.ctx.is_done() {
        return None;
    }
    // The first look primes the law. A look reads only the pool's
    // counters; a step also reads the scheduler's clocks, which cost more.
    let sample = sample(shared);
    if law.due(&sample) {
        let sample = with_clocks(sample, clocks.read(shared.counters.tids()));
        if let Some(n) = law.step(sample) {
            if let Err(err) = shared.set_workers(n) {
                log::warn!("brigade: adaptive sizing could not resize to {n}: {err}");
            }
        }
    }
    Some(law.next_look(Instant::now()))
}

/// What the controller sees of the pool from its counters alone.
fn sample<J, E>(shared: &Shared<J, E>) -> Sample {
    let (finished, busy_nanos, busy) = shared.counters.totals();
    // ORDERING: Relaxed: a sample is an estimate, and nothing else is read
    // through these counters.
    Sample {
        at: Instant::now(),
        submitted: shared.counters.submitted.load(Ordering::Relaxed),
        finished,
        busy_nanos,
        queued: shared.jobs.len().saturating_sub(shared.board.turns()),
        workers: shared.counters.live.load(Ordering::Relaxed),
        busy,
        cpu: None,
        cpu_wait_nanos: None,
        worker_cpu_nanos: None,
        steady_workers: None,
        runnable_workers: None,
        machine: None,
    }
}

/// `sample` with what the scheduler's clocks say.
fn with_clocks(sample: Sample, reading: Reading) -> Sample {
    Sample {
        cpu: reading.cpu,
        cpu_wait_nanos: reading.cpu_wait_nanos,
        worker_cpu_nanos: reading.worker_cpu_nanos,
        steady_workers: reading.steady_workers,
        runnable_workers: reading.runnable_workers,
        machine: reading.machine,
        ..sample
    }
}
