//! `Sizing::Adaptive`: steering the worker count by Little's Law.
//!
//! # The control law
//!
//! Every [`TICK`] the controller samples the pool and computes, over that
//! tick (smoothed with an exponential average, α = ½):
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
//!   read from `/proc/self/stat` where available.
//!
//! By Little's Law the pool needs λ·S workers busy on average; the target
//! is ⌈1.25·λ·S⌉, the quarter being headroom for bursts. Two corrections:
//!
//! * **Backlog.** λ only counts what the producer managed to submit; with a
//!   full queue behind all-busy workers it understates demand. Then the
//!   target is at least twice the current count: a probe upward that
//!   doubles per tick, like TCP's slow start, so a pool at 2 reaches 64 in
//!   half a second, and the law brings it back to λ·S once the backlog is
//!   gone.
//! * **CPU saturation.** Compute-bound work gains nothing from more
//!   threads than CPUs. When this process uses ≥ 90% of the CPUs, or its
//!   workers spent ≥ a tenth of their busy time queued for a CPU (another
//!   program has the CPUs), the controller does not grow the pool.
//!
//! The target is clamped to `[min, max]`. **Hysteresis** keeps it from
//! flapping: growth is applied at once (a backlog costs latency now), but a
//! shrink only after three consecutive ticks agree on it by at least an
//! eighth of the pool, and then by at most a quarter at a time.
//!
//! The controller runs on its own thread (`{name}-ctl`), holds the pool
//! only weakly, and is stopped and joined before the pool's workers are.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;

use super::{Exec, Shared};
use crate::sizing::{cpu_bound, process_cpu_time, thread_run_delay};
use crate::sync::{Arc, Ordering};

/// How often the controller samples the pool.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// What the controller sees of the pool at one instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) at: Instant,
    pub(crate) submitted: u64,
    pub(crate) finished: u64,
    /// Estimated busy time of all workers so far, in nanoseconds.
    pub(crate) busy_nanos: f64,
    pub(crate) queued: usize,
    pub(crate) workers: usize,
    /// Workers running a job now.
    pub(crate) busy: usize,
    /// This process's CPU time so far, where the OS says.
    pub(crate) cpu: Option<Duration>,
    /// Nanoseconds the workers have spent runnable but waiting for a CPU,
    /// where the OS says.
    pub(crate) cpu_wait_nanos: Option<f64>,
}

/// The control law, apart from any thread or pool: feed it samples, it
/// answers with a new worker count when one is due.
#[derive(Debug)]
pub(crate) struct Law {
    min: usize,
    max: usize,
    cpus: usize,
    previous: Option<Sample>,
    rate: Option<f64>,
    service: Option<f64>,
    shrink_votes: u32,
}

impl Law {
    pub(crate) fn new(min: usize, max: usize, cpus: usize) -> Self {
        Self {
            min,
            max,
            cpus: cpus.max(1),
            previous: None,
            rate: None,
            service: None,
            shrink_votes: 0,
        }
    }

    /// The worker count to move to after `now`, if it should change.
    pub(crate) fn step(&mut self, now: Sample) -> Option<usize> {
        let previous = self.previous.replace(now)?;
        let dt = now.at.saturating_duration_since(previous.at).as_secs_f64();
        if dt <= 0.0 {
            return None;
        }
        let arrivals = now.submitted.saturating_sub(previous.submitted) as f64 / dt;
        self.rate = Some(smooth(self.rate, arrivals));
        let finished = now.finished.saturating_sub(previous.finished);
        let busy = (now.busy_nanos - previous.busy_nanos).max(0.0);
        let queued_for_cpu = match (now.cpu_wait_nanos, previous.cpu_wait_nanos) {
            (Some(now), Some(before)) => (now - before).max(0.0),
            _ => 0.0,
        };
        if finished > 0 {
            // Time spent waiting for a CPU is a symptom of too many
            // threads, not demand for more: leave it out of S (keeping at
            // least a tenth, as the two clocks are read apart).
            let service = (busy - queued_for_cpu).max(busy / 10.0) / 1e9 / finished as f64;
            self.service = Some(smooth(self.service, service));
        }
        let cpu = match (now.cpu, previous.cpu) {
            (Some(now), Some(before)) => {
                Some(now.saturating_sub(before).as_secs_f64() / (dt * self.cpus as f64))
            }
            _ => None,
        };
        let demand = self.rate.unwrap_or(0.0) * self.service.unwrap_or(0.0);
        let workers = now.workers.max(1);
        let mut target = (demand * 1.25).ceil() as usize;
        // Saturated: this process keeps the CPUs busy, or its workers
        // queue for a CPU (someone else keeps them busy) for a tenth of
        // their time or more. Then a backlog is the CPUs' limit, not a
        // lack of threads: no probe, no growth, and the law may shrink.
        let saturated = cpu.is_some_and(|u| u >= 0.9) || queued_for_cpu >= busy.max(1.0) / 10.0;
        if saturated {
            target = target.min(workers);
        } else if now.queued > 0 && now.busy >= workers {
            target = target.max(workers * 2);
        }
        let target = target.clamp(self.min, self.max);
        if target > workers {
            self.shrink_votes = 0;
            return Some(target);
        }
        if target < workers && workers - target >= (workers / 8).max(1) {
            self.shrink_votes += 1;
            if self.shrink_votes >= 3 {
                self.shrink_votes = 0;
                return Some(target.max(workers - (workers / 4).max(1)));
            }
        } else {
            self.shrink_votes = 0;
        }
        None
    }
}

fn smooth(previous: Option<f64>, value: f64) -> f64 {
    previous.map_or(value, |p| p / 2.0 + value / 2.0)
}

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
        let mut cpu_wait = CpuWait::default();
        loop {
            match stop_rx.recv_timeout(TICK) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
            let Some(shared) = pool.upgrade() else { return };
            if shared.ctx.is_done() {
                return;
            }
            let mut sample = shared.sample();
            sample.cpu_wait_nanos = cpu_wait.read(&shared.counters.tids());
            if let Some(n) = law.step(sample) {
                if let Err(err) = shared.set_workers(n) {
                    log::warn!("brigade: adaptive sizing could not resize to {n}: {err}");
                }
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
            cpu: process_cpu_time(),
            cpu_wait_nanos: None,
        }
    }
}

/// Sums the workers' run-queue delay across threads that come and go: each
/// read adds, per thread still alive, what it waited since the last read.
#[derive(Debug, Default)]
struct CpuWait {
    last: HashMap<u64, u64>,
    total: f64,
    known: bool,
}

impl CpuWait {
    /// The running total for the threads `tids`, or `None` where the OS
    /// does not say.
    fn read(&mut self, tids: &[u64]) -> Option<f64> {
        let mut now = HashMap::with_capacity(tids.len());
        for &tid in tids {
            if let Some(delay) = thread_run_delay(tid) {
                // A thread first seen counts from its last reading only
                // on the next tick: its past is not this tick's news.
                if let Some(&before) = self.last.get(&tid) {
                    self.total += delay.saturating_sub(before) as f64;
                }
                now.insert(tid, delay);
            }
        }
        self.known |= !now.is_empty();
        self.last = now;
        self.known.then_some(self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample `ms` milliseconds after `t0`.
    fn at(
        t0: Instant,
        ms: u64,
        submitted: u64,
        busy_ms: f64,
        queued: usize,
        workers: usize,
        busy: usize,
    ) -> Sample {
        Sample {
            at: t0 + Duration::from_millis(ms),
            submitted,
            finished: submitted,
            busy_nanos: busy_ms * 1e6,
            queued,
            workers,
            busy,
            cpu: None,
            cpu_wait_nanos: None,
        }
    }

    #[test]
    fn steers_toward_lambda_times_service() {
        // 1,000 jobs/s of 10 ms each need 10 busy workers; with headroom, 13.
        let t0 = Instant::now();
        let mut law = Law::new(1, 64, 2);
        assert_eq!(
            law.step(at(t0, 0, 0, 0.0, 0, 4, 4)),
            None,
            "the first sample only primes"
        );
        assert_eq!(law.step(at(t0, 100, 100, 1000.0, 0, 4, 4)), Some(13));
    }

    #[test]
    fn backlog_probes_upward_and_clamps() {
        let t0 = Instant::now();
        let mut law = Law::new(1, 10, 2);
        law.step(at(t0, 0, 0, 0.0, 500, 8, 8));
        // Few arrivals counted (the producer is blocked), but a backlog
        // behind all-busy workers: grow by half, within max.
        assert_eq!(law.step(at(t0, 100, 10, 10.0, 500, 8, 8)), Some(10));
    }

    #[test]
    fn waiting_for_a_cpu_is_not_demand() {
        // 64 workers on saturated CPUs: 20,000 jobs/s, each holding its
        // worker 3.2 ms of which 2.1 ms was spent queued for a CPU. The
        // real service time is 1.1 ms: 22 busy, 28 with headroom; the law
        // shrinks toward that, a quarter at a time.
        let t0 = Instant::now();
        let mut law = Law::new(1, 64, 2);
        let mut answers = Vec::new();
        for tick in 0..=3u64 {
            let mut sample = at(
                t0,
                tick * 100,
                tick * 2_000,
                tick as f64 * 6_400.0,
                0,
                64,
                64,
            );
            sample.cpu = Some(Duration::from_millis(tick * 200));
            sample.cpu_wait_nanos = Some(tick as f64 * 4_200.0 * 1e6);
            answers.push(law.step(sample));
        }
        assert_eq!(answers, [None, None, None, Some(48)]);
    }

    #[test]
    fn cpu_saturation_stops_growth() {
        let t0 = Instant::now();
        let mut law = Law::new(1, 64, 2);
        let mut sample = at(t0, 0, 0, 0.0, 500, 2, 2);
        sample.cpu = Some(Duration::ZERO);
        law.step(sample);
        let mut next = at(t0, 100, 100, 200.0, 500, 2, 2);
        next.cpu = Some(Duration::from_millis(195)); // 97.5% of 2 CPUs
        assert_eq!(law.step(next), None);
    }

    #[test]
    fn shrinks_only_after_three_agreeing_ticks_and_gradually() {
        let t0 = Instant::now();
        let mut law = Law::new(1, 64, 2);
        law.step(at(t0, 0, 0, 0.0, 0, 32, 2));
        // 100 jobs/s of 10 ms: 1 busy worker needed, 2 with headroom.
        let mut total = 0;
        let mut busy = 0.0;
        let mut answers = Vec::new();
        for tick in 1..=4 {
            total += 10;
            busy += 100.0;
            answers.push(law.step(at(t0, tick * 100, total, busy, 0, 32, 1)));
        }
        assert_eq!(
            answers,
            [None, None, Some(24), None],
            "shrink by a quarter on the third vote"
        );
    }

    #[test]
    fn small_differences_do_not_flap() {
        let t0 = Instant::now();
        let mut law = Law::new(1, 64, 2);
        law.step(at(t0, 0, 0, 0.0, 0, 10, 8));
        let mut total = 0;
        let mut busy = 0.0;
        for tick in 1..=10 {
            // 800 jobs/s of 10 ms = 8 busy, target 10: right where it is.
            total += 80;
            busy += 800.0;
            assert_eq!(law.step(at(t0, tick * 100, total, busy, 0, 10, 8)), None);
        }
    }
}
