//! `Sizing::Adaptive`: steering the worker count by Little's Law.
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
//!   tick).
//!
//! By Little's Law the pool needs λ·S workers busy on average; the target
//! is ⌈1.25·λ·S⌉, the quarter being headroom for bursts. Two corrections:
//!
//! * **Backlog.** λ only counts what the producer managed to submit; with
//!   jobs queued behind all-busy workers it understates demand. Then the
//!   pool grows to what would fill the CPUs: each worker uses `u / N` of
//!   them, so ⌈N · 95% / u⌉ workers would use 95% — never more than
//!   there are jobs to run (N + queued), at least one more. A pool of two
//!   workers waiting on 1 ms calls at 10% CPU reaches 19 in one step. Where
//!   the OS does not report CPU time, it doubles per tick instead, like
//!   TCP's slow start. The law brings it back to λ·S once the backlog is
//!   gone. The same bound caps the law's own growth: λ measured over a
//!   burst (a queue filling at start) can ask for far more workers than
//!   compute-heavy jobs could use.
//! * **CPU saturation.** Compute-bound work gains nothing from more
//!   threads than CPUs. When its workers spent ≥ a quarter of their busy
//!   time queued for a CPU, or this process uses ≥ 95% of the CPUs, the
//!   controller does not grow the pool. Some queueing is allowed on
//!   purpose: with jobs that wait and compute in turn, a pool that never
//!   queues for a CPU leaves one idle whenever wake-ups do not line up.
//!   For the same reason the 95% rule does not apply to jobs that mostly
//!   wait — workers with a backlog that spend over half their time
//!   blocked, neither on a CPU nor queued for one (exact kernel clocks):
//!   they grow one worker per fast tick until the queueing stops them
//!   (the measurement behind this is in `benches/README.md`). Queueing
//!   for a CPU is also how another program
//!   holding the CPUs shows: then our share of CPU time is low, but our
//!   threads wait.
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
//! to `max` or out of crowding takes tens of milliseconds, not seconds.
//! Between samples, while the pool has work, the controller *glances* at
//! its counters every [`FAST_TICK`]: if jobs finish at under half or over
//! twice the rate of the last tick (over at least [`SHIFT_EVIDENCE`] of
//! them), the workload has shifted and it samples at once rather than at
//! the end of the tick. A glance reads a few counters; a sample also
//! reads the schedstat files, ~0.2 ms with 64 threads (0.2% of a CPU at
//! the steady tick). An idle pool is sampled once a tick and not glanced
//! at.
//!
//! The controller runs on its own thread (`{name}-ctl`), holds the pool
//! only weakly, and is stopped and joined before the pool's workers are.
//!
//! [`TICK`]: law::TICK
//! [`FIRST_TICK`]: law::FIRST_TICK
//! [`FAST_TICK`]: law::FAST_TICK
//! [`SHIFT_EVIDENCE`]: law::SHIFT_EVIDENCE

mod law;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;

use super::{Exec, Shared};
use crate::sizing::{cpu_bound, process_cpu_time, thread_schedstat};
use crate::sync::{Arc, Ordering};
use law::{Law, Sample};

/// Starts the controller thread for `shared`.
pub(super) fn start<J, E>(shared: &Arc<Shared<J, E>>, min: usize, max: usize) -> std::io::Result<()>
where
    J: Send + 'static,
    E: Exec<J>,
{
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    let pool = Arc::downgrade(shared);
    let name = format!("{}-ctl", shared.config.thread_name);
    let thread = std::thread::Builder::new().name(name).spawn(move || {
        let mut law = Law::new(min, max, cpu_bound());
        let mut schedstat = Schedstat::default();
        loop {
            // The first look, at once, primes the law. Looks read only
            // the pool's counters; a step also reads the scheduler's
            // clocks, which costs more. The pool is held only while
            // looking, so dropping it is never delayed.
            let wait = {
                let Some(shared) = pool.upgrade() else { return };
                if shared.ctx.is_done() {
                    return;
                }
                let mut sample = shared.sample();
                if law.due(&sample) {
                    if !schedstat.read(shared.counters.tids(), &mut sample) {
                        sample.cpu = process_cpu_time();
                    }
                    if let Some(n) = law.step(sample) {
                        if let Err(err) = shared.set_workers(n) {
                            log::warn!("brigade: adaptive sizing could not resize to {n}: {err}");
                        }
                    }
                }
                law.next_look(Instant::now())
            };
            match stop_rx.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    })?;
    *shared.controller.lock() = Some((stop_tx, thread));
    Ok(())
}

impl<J, E> Shared<J, E> {
    /// What the controller looks at.
    fn sample(&self) -> Sample {
        let (finished, busy_nanos, busy) = self.counters.totals();
        Sample {
            at: Instant::now(),
            submitted: self.counters.submitted.load(Ordering::Relaxed),
            finished,
            busy_nanos,
            queued: self.jobs.len(),
            workers: self.counters.live.load(Ordering::Relaxed),
            busy,
            cpu: None,
            cpu_wait_nanos: None,
            worker_cpu_nanos: None,
        }
    }
}

/// The scheduler's clocks for this process, from each thread's
/// `/proc/self/task/{tid}/schedstat` (Linux): nanosecond resolution, where
/// `/proc/self/stat` counts in 10 ms ticks, too coarse for a fast tick.
///
/// Threads come and go, so the totals are running sums of per-thread
/// differences between reads: a thread that exits takes only its time
/// since the last read with it.
#[derive(Debug, Default)]
struct Schedstat {
    /// Per thread seen at the last read: (CPU time, run-queue delay).
    last: HashMap<u64, (u64, u64)>,
    cpu: u64,
    worker_cpu: u64,
    worker_wait: u64,
    known: bool,
}

impl Schedstat {
    /// Reads every thread of the process into `sample`: this process's
    /// CPU time, and the CPU time and run-queue delay of the workers
    /// `workers` (running totals). `false` where the OS does not say.
    fn read(&mut self, mut workers: Vec<u64>, sample: &mut Sample) -> bool {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return false;
        };
        workers.sort_unstable();
        let mut now = HashMap::with_capacity(self.last.len().max(8));
        for task in tasks.flatten() {
            let Some(tid) = task
                .file_name()
                .to_str()
                .and_then(|t| t.parse::<u64>().ok())
            else {
                continue;
            };
            let Some((cpu, wait)) = thread_schedstat(tid) else {
                continue;
            };
            let worker = workers.binary_search(&tid).is_ok();
            // A thread the last read did not list started since: all of
            // its CPU time is this interval's. Its run-queue delay counts
            // from the next read, as a new worker's first wait for a CPU
            // is a start-up cost, not a sign of saturation.
            let (cpu_before, wait_before) = match self.last.get(&tid) {
                Some(&before) => before,
                None if self.known => (0, wait),
                None => (cpu, wait),
            };
            let cpu_since = cpu.saturating_sub(cpu_before);
            self.cpu += cpu_since;
            if worker {
                self.worker_cpu += cpu_since;
                self.worker_wait += wait.saturating_sub(wait_before);
            }
            now.insert(tid, (cpu, wait));
        }
        if now.is_empty() {
            return false;
        }
        self.known = true;
        self.last = now;
        sample.cpu = Some(Duration::from_nanos(self.cpu));
        sample.worker_cpu_nanos = Some(self.worker_cpu as f64);
        sample.cpu_wait_nanos = Some(self.worker_wait as f64);
        true
    }
}
