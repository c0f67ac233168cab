//! The control law, apart from any thread, pool or clock: it takes
//! [`Sample`]s and answers with a worker count when one is due. The
//! [module docs](super) describe what it computes and why.

use std::time::{Duration, Instant};

/// How often the controller samples a pool at a steady size.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// How often it samples a pool that it has just grown, or that is crowded
/// (see the [module docs](super)): a burst should be met in tens of
/// milliseconds, not a second.
pub(crate) const FAST_TICK: Duration = Duration::from_millis(20);

/// How soon after its first sample the controller takes the second, the
/// first that measures anything: a pool built for a burst meets it in
/// about this long.
pub(crate) const FIRST_TICK: Duration = Duration::from_millis(1);

/// How soon it samples again after a growth that left jobs queued: a
/// sample that landed as the first jobs ended, with a worker runnable
/// and its time not yet counted, grows the pool only a step, and the
/// next step should not wait a [`FAST_TICK`].
pub(crate) const RAMP_TICK: Duration = Duration::from_millis(2);

/// How many completions a glance between steps must have seen, or have
/// expected, before a change in their rate counts as a shift.
pub(super) const SHIFT_EVIDENCE: f64 = 16.0;

/// The share of the CPUs at which this process counts as saturating them.
const FULL: f64 = 0.95;

/// How far behind a thread's `schedstat` CPU time can be while the thread
/// is on a CPU: the kernel folds a running thread's time in at its
/// scheduler tick (every 10 ms at `HZ=100`, the coarsest) or when the
/// thread stops running. A worker spinning through the short first tick
/// can show almost none of it.
const CLOCK_LAG: f64 = 0.010;

/// How many workers the law asks for per worker Little's Law keeps busy:
/// the quarter over one is headroom for bursts.
const HEADROOM: f64 = 1.25;

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
    /// Nanoseconds the workers have spent on a CPU, where the OS says.
    pub(crate) worker_cpu_nanos: Option<f64>,
    /// Workers whose clocks cover the whole tick ending at this sample,
    /// where the OS says.
    pub(crate) steady_workers: Option<usize>,
    /// Workers runnable at this sample, where the OS says.
    pub(crate) runnable_workers: Option<usize>,
    /// The machine's busy and total CPU time so far, in clock ticks,
    /// where the OS says.
    pub(crate) machine: Option<(u64, u64)>,
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
    grew: bool,
    /// Jobs were queued at the last step.
    backlog: bool,
    /// Steps in a row that left jobs queued without growing the pool.
    held_back: u32,
    /// The last tick saw workers queued for a CPU half their busy time:
    /// far too many threads, so shrinking may be quicker.
    crowded: bool,
    /// Jobs finished per second between the last two steps.
    finishing: f64,
    /// The last look between steps: when, and jobs finished by then.
    glance: Option<(Instant, u64)>,
    /// The last look saw work: a job running or queued.
    active: bool,
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
            grew: false,
            backlog: false,
            held_back: 0,
            crowded: false,
            finishing: 0.0,
            glance: None,
            active: false,
        }
    }

    /// Whether `now`, a look at the counters alone, calls for a step:
    /// the first look, a tick since the last step, or a shift in the
    /// workload — jobs finishing at under half or over twice the rate of
    /// the last step, over enough of them to tell ([`SHIFT_EVIDENCE`]).
    /// A backend slowing tenfold shows in the completions within a glance
    /// or two, where a steady tick could take a tenth of a second to see.
    pub(crate) fn due(&mut self, now: &Sample) -> bool {
        self.active = now.busy > 0 || now.queued > 0;
        let Some(previous) = self.previous else {
            return true;
        };
        if now.at.saturating_duration_since(previous.at) >= self.next_tick() {
            return true;
        }
        let Some((at, finished)) = self.glance.replace((now.at, now.finished)) else {
            return false;
        };
        let dt = now.at.saturating_duration_since(at).as_secs_f64();
        let seen = now.finished.saturating_sub(finished) as f64;
        let expected = self.finishing * dt;
        seen.max(expected) >= SHIFT_EVIDENCE && (seen * 2.0 < expected || seen > expected * 2.0)
    }

    /// How long to sleep before the next look at `now`: until the next
    /// step is due, but no longer than a [`FAST_TICK`] while the pool has
    /// work, so a shift shows soon. An idle pool is looked at only per
    /// tick.
    pub(crate) fn next_look(&self, now: Instant) -> Duration {
        let until_step = self.previous.map_or(Duration::ZERO, |previous| {
            (previous.at + self.next_tick()).saturating_duration_since(now)
        });
        if self.active {
            until_step.min(FAST_TICK)
        } else {
            until_step
        }
    }

    /// How long to wait before the next sample: short while the pool is
    /// ramping up or crowded, so that either takes a few fast ticks rather
    /// than a second, and shorter still while a growth has left jobs
    /// queued. Shrinking an uncrowded pool keeps the slow tick: that is
    /// the hysteresis.
    pub(crate) fn next_tick(&self) -> Duration {
        if self.rate.is_none() {
            FIRST_TICK
        } else if self.grew && self.backlog {
            RAMP_TICK
        } else if self.grew || self.crowded {
            FAST_TICK
        } else if self.backlog {
            // A sample before the first jobs ended can tell waiting jobs
            // from a busy machine only by the process's share, which
            // then holds the producer and the threads starting: look
            // again soon, then less and less often, as a pool held back
            // by its CPUs stays so.
            (RAMP_TICK * 2u32.pow(self.held_back.min(6))).min(TICK)
        } else {
            TICK
        }
    }

    /// How many workers would keep the CPUs [`FULL`] if each kept using
    /// `cpu / workers` of them: `⌈workers · FULL / cpu⌉`, and at least
    /// one more than now (jobs that mostly wait pass a full CPU one worker
    /// at a time). `None` where the OS gives no CPU time, or none was
    /// used (see [`Tick::workers_idle`] for when that is a measured zero).
    fn fill(workers: usize, cpu: Option<f64>) -> Option<usize> {
        let used = cpu.filter(|used| *used > 0.0)?;
        Some(((workers as f64 * FULL / used).ceil() as usize).max(workers + 1))
    }

    /// How far to grow a pool whose workers are all busy with jobs queued
    /// behind them, while the CPUs have room: to [`Law::fill`], but no
    /// more than there are jobs to run (`workers + queued`). Where the CPU
    /// time is not known, double, like TCP's slow start.
    fn probe(workers: usize, queued: usize, cpu: Option<f64>) -> usize {
        Self::fill(workers, cpu).map_or(workers * 2, |fill| {
            fill.min(workers + queued).max(workers + 1)
        })
    }

    /// The worker count to move to after `now`, if it should change.
    pub(crate) fn step(&mut self, now: Sample) -> Option<usize> {
        self.glance = Some((now.at, now.finished));
        let target = self.target(now);
        self.grew = target.is_some_and(|n| n > now.workers);
        self.backlog = now.queued > 0;
        // Counted from the first step that measures (the first primes).
        self.held_back = if self.backlog && !self.grew && self.rate.is_some() {
            self.held_back.saturating_add(1)
        } else {
            0
        };
        target
    }

    /// The worker count the law asks for after `now`, if it differs from
    /// the pool's and the hysteresis lets it through. `None` for the
    /// first sample, which only primes.
    fn target(&mut self, now: Sample) -> Option<usize> {
        let previous = self.previous.replace(now)?;
        let tick = Tick::between(&previous, &now, self.cpus)?;
        self.finishing = tick.finished as f64 / tick.dt;
        self.crowded = tick.crowded(self.cpus);
        self.average(&tick);
        let workers = now.workers.max(1);
        let backlog = (now.queued > 0 && now.busy >= workers).then_some(now.queued);
        let target = Self::within_cpus(self.demand(), workers, backlog, &tick);
        self.settle(workers, target.clamp(self.min, self.max))
    }

    /// Folds the tick's arrival rate and service time into the averages.
    fn average(&mut self, tick: &Tick) {
        self.rate = Some(self.smooth(self.rate, tick.arrivals));
        if let Some(service) = tick.service() {
            self.service = Some(self.smooth(self.service, service));
        }
    }

    /// An exponential average, α = ½. A crowded pool's past describes a
    /// workload that is gone (or it would not be crowded): the tick's
    /// figure replaces it.
    fn smooth(&self, average: Option<f64>, value: f64) -> f64 {
        match average {
            Some(average) if !self.crowded => average / 2.0 + value / 2.0,
            _ => value,
        }
    }

    /// Little's Law: the workers λ·S keeps busy, with [`HEADROOM`].
    fn demand(&self) -> usize {
        let busy = self.rate.unwrap_or(0.0) * self.service.unwrap_or(0.0);
        (busy * HEADROOM).ceil() as usize
    }

    /// `target` as the CPUs allow for a pool of `workers`, `backlog` the
    /// jobs queued behind them when all are busy: no growth while the
    /// CPUs are saturated, else up to [`Law::probe`] for a backlog, but
    /// never past [`Law::fill`].
    fn within_cpus(target: usize, workers: usize, backlog: Option<usize>, tick: &Tick) -> usize {
        // Jobs that mostly wait can use a few threads past a full CPU:
        // each covers for another's late wake-up. Jobs that compute
        // cannot, so the 95% rule holds for them.
        let waiting = backlog.is_some() && tick.mostly_blocked(workers);
        let full = |share: Option<f64>| share.is_some_and(|u| u >= FULL);
        let saturated = tick.starved() || (!waiting && (full(tick.cpu) || full(tick.machine)));
        if saturated {
            // A backlog is the CPUs' limit here, not a lack of threads.
            return target.min(workers);
        }
        let target = backlog.map_or(target, |queued| {
            // No CPU time at all is not an unknown share: workers this
            // idle leave the CPUs free for as many as there are jobs.
            let probe = if tick.workers_idle() {
                workers + queued
            } else {
                Self::probe(workers, queued, tick.sizing_share())
            };
            target.max(probe)
        });
        // What the CPUs can serve caps any growth, the law's too: λ
        // measured over a burst (a queue filling at start) can ask for
        // more workers than compute-heavy jobs could ever use.
        Self::fill(workers, tick.sizing_share()).map_or(target, |fill| target.min(fill))
    }

    /// The hysteresis between the pool's `workers` and the law's
    /// `target`: growth at once (a backlog costs latency now); a shrink
    /// by at least an eighth, only once enough consecutive ticks vote for
    /// it, and by at most a step — three votes and a quarter, or for a
    /// crowded pool two votes and a half.
    fn settle(&mut self, workers: usize, target: usize) -> Option<usize> {
        if target > workers {
            self.shrink_votes = 0;
            return Some(target);
        }
        if target >= workers || workers - target < (workers / 8).max(1) {
            self.shrink_votes = 0;
            return None;
        }
        self.shrink_votes += 1;
        let (votes, step) = if self.crowded {
            (2, workers / 2)
        } else {
            (3, workers / 4)
        };
        if self.shrink_votes < votes {
            return None;
        }
        self.shrink_votes = 0;
        Some(target.max(workers - step.max(1)))
    }
}

/// What changed between two samples.
#[derive(Debug, Clone, Copy)]
struct Tick {
    /// Seconds between them, more than zero.
    dt: f64,
    /// Jobs submitted per second.
    arrivals: f64,
    finished: u64,
    /// Nanoseconds the workers held jobs, waiting for a CPU included, as
    /// the jobs that finished in the tick report it (all of a job's time
    /// counts when it finishes).
    busy: f64,
    /// The most workers the pool had at either end.
    workers: usize,
    /// Nanoseconds the workers were runnable but waiting for a CPU; zero
    /// where the OS does not say.
    queued_for_cpu: f64,
    /// Nanoseconds the workers were on a CPU, where the OS says.
    worker_cpu: Option<f64>,
    /// Workers whose clocks cover the whole tick, where the OS says.
    steady_workers: Option<usize>,
    /// Workers runnable at the tick's end, where the OS says.
    runnable_workers: Option<usize>,
    /// The share of the machine's CPUs busy (with any process), where the
    /// OS says.
    machine: Option<f64>,
    /// This process's share of all the CPUs, where the OS says.
    cpu: Option<f64>,
    /// The workers' share of all the CPUs, where the OS says.
    worker_share: Option<f64>,
    /// The CPUs the shares are of.
    cpus: usize,
}

impl Tick {
    /// Whether the workers' exact clocks show no CPU time in the tick,
    /// every worker's clocks covering the whole tick and none of them
    /// runnable at its end: all asleep in their jobs, as jobs waiting on
    /// I/O are over a tick shorter than their first calls. (A thread's
    /// CPU time is folded in when it sleeps; one that ran and fell asleep
    /// between the two reads of a sample could still hide its time, a
    /// window of microseconds.) [`Law::fill`] takes a share of zero for
    /// an unknown one; this is a measured zero. No clocks at all (no
    /// worker's thread found) is not one: then no worker is steady.
    fn workers_idle(&self) -> bool {
        self.worker_share == Some(0.0)
            && self.runnable_workers == Some(0)
            && self
                .steady_workers
                .is_some_and(|steady| steady > 0 && steady >= self.workers)
    }

    /// The CPU share that sizes growth: the workers' own where the OS
    /// says, else the process's. At the start of a burst the process's
    /// share also holds the producer queueing it and the new threads
    /// starting, which made the first step a third of what the workers
    /// could use (#16); saturation is still judged on the process and the
    /// machine.
    ///
    /// Each worker runnable at the tick's end may have run for up to
    /// [`CLOCK_LAG`] that its clock does not show yet; growth counts that
    /// time as used. Without it, compute-bound workers read as nearly idle
    /// over the short first tick and the pool jumped to a dozen workers on
    /// two CPUs (1 run in 15 of `tests/adaptive.rs`); workers blocked on
    /// I/O are asleep at the sample and keep their exact share.
    fn sizing_share(&self) -> Option<f64> {
        let unseen = self.runnable_workers.unwrap_or(0) as f64 * self.dt.min(CLOCK_LAG)
            / (self.dt * self.cpus as f64);
        self.worker_share.or(self.cpu).map(|used| used + unseen)
    }

    /// The tick from `previous` to `now` on `cpus` CPUs; `None` if no time
    /// passed between them.
    fn between(previous: &Sample, now: &Sample, cpus: usize) -> Option<Self> {
        let dt = now.at.saturating_duration_since(previous.at).as_secs_f64();
        if dt <= 0.0 {
            return None;
        }
        // Kernel clocks only grow; a difference below zero is a misread.
        let since = |now: Option<f64>, before: Option<f64>| Some((now? - before?).max(0.0));
        let worker_cpu = since(now.worker_cpu_nanos, previous.worker_cpu_nanos);
        let cpu = now
            .cpu
            .zip(previous.cpu)
            .map(|(now, before)| now.saturating_sub(before).as_secs_f64() / (dt * cpus as f64));
        Some(Self {
            dt,
            arrivals: now.submitted.saturating_sub(previous.submitted) as f64 / dt,
            finished: now.finished.saturating_sub(previous.finished),
            busy: (now.busy_nanos - previous.busy_nanos).max(0.0),
            workers: previous.workers.max(now.workers),
            queued_for_cpu: since(now.cpu_wait_nanos, previous.cpu_wait_nanos).unwrap_or(0.0),
            worker_cpu,
            worker_share: worker_cpu.map(|nanos| nanos / (dt * 1e9 * cpus as f64)),
            steady_workers: now.steady_workers,
            runnable_workers: now.runnable_workers,
            machine: now.machine.zip(previous.machine).and_then(
                |((busy, total), (busy_before, total_before))| {
                    let total = total.saturating_sub(total_before);
                    (total > 0).then(|| busy.saturating_sub(busy_before) as f64 / total as f64)
                },
            ),
            cpu,
            cpus,
        })
    }

    /// The time a job held its worker, less the time it sat queued for a
    /// CPU: that wait is a symptom of too many threads, not demand for
    /// more. At least a tenth is kept, as the two clocks are read apart.
    /// `None` if no job finished.
    fn service(&self) -> Option<f64> {
        let held = (self.busy - self.queued_for_cpu).max(self.busy / 10.0);
        (self.finished > 0).then(|| held / 1e9 / self.finished as f64)
    }

    /// Waiting for a CPU below a hundredth of the tick is noise: an idle
    /// pool's few microseconds of wake-up delay are not a quarter of its
    /// zero busy time.
    fn floor(&self) -> f64 {
        self.dt * 1e9 / 100.0
    }

    /// The busy time, capped at what the workers could have held within
    /// the tick. Compared with the kernel's clocks, which are exact per
    /// tick, the sampled figure can be far larger: a job longer than the
    /// tick counts all at once, and a preempted sample stands for many
    /// jobs.
    fn held(&self) -> f64 {
        self.busy.min(self.dt * 1e9 * self.workers as f64)
    }

    /// Saturated: the workers queued for a CPU a quarter of their busy
    /// time or more. Some queueing is the price of keeping the CPUs busy
    /// with jobs that wait and compute in turn; this much is not.
    fn starved(&self) -> bool {
        self.queued_for_cpu >= (self.held() / 4.0).max(self.floor())
    }

    /// Crowded: queued for a CPU half their busy time, with more workers
    /// busy than CPUs on average. (An idle pool's workers queue briefly
    /// while they spin down, and that is no reason to shed threads fast.)
    fn crowded(&self, cpus: usize) -> bool {
        self.queued_for_cpu >= (self.held() / 2.0).max(self.floor())
            && self.held() >= self.dt * 1e9 * cpus as f64
    }

    /// Whether the pool's `workers` spent over half the tick blocked,
    /// neither on a CPU nor queued for one: they run jobs that mostly wait.
    /// (Kernel clocks, not the sampled busy time: exact, and immune to a
    /// preempted sample standing for many jobs.) Only workers whose clocks
    /// cover the whole tick count: a worker started during it, perhaps
    /// still waiting for its first CPU, would look blocked for the time
    /// it did not exist. `false` where the OS does not say, or no worker's
    /// clocks cover the tick, or the workers held jobs for under half of
    /// it (then whatever kept them off the CPUs was not their jobs), or
    /// half of them or more are runnable as the tick ends (`schedstat`
    /// adds a wait for a CPU only once it is over, so a worker still
    /// waiting looks blocked).
    fn mostly_blocked(&self, workers: usize) -> bool {
        let steady = self.steady_workers.unwrap_or(workers);
        let half = self.dt * 1e9 * steady as f64 / 2.0;
        // The time off the CPUs must also be time spent in jobs (workers
        // that held jobs for under half the tick were not blocked by
        // them), and most workers must be asleep now: a worker starved of
        // a CPU all tick has no clocks to show for it yet either.
        let asleep = self
            .runnable_workers
            .is_none_or(|runnable| runnable * 2 < workers);
        self.worker_cpu.is_some_and(|on_cpu| {
            steady > 0 && asleep && on_cpu + self.queued_for_cpu < half && self.held() >= half
        })
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
            worker_cpu_nanos: None,
            steady_workers: None,
            runnable_workers: None,
            machine: None,
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
    fn ticks_fast_while_ramping_up_and_slow_once_steady() {
        let t0 = Instant::now();
        let mut law = Law::new(2, 64, 2);
        assert_eq!(law.next_tick(), FIRST_TICK, "nothing measured yet");
        law.step(at(t0, 0, 0, 0.0, 256, 2, 2));
        assert_eq!(law.next_tick(), FIRST_TICK, "primed, nothing measured yet");
        // A backlog behind all-busy workers, CPU use unknown: the pool
        // doubles, sampled again a ramp tick later while jobs wait.
        let mut workers = 2;
        for tick in 1..=5u64 {
            let grown = law.step(at(
                t0,
                tick * 20,
                tick * 40,
                tick as f64 * 40.0,
                256,
                workers,
                workers,
            ));
            workers = grown.expect("a backlog grows the pool");
            assert_eq!(law.next_tick(), RAMP_TICK);
        }
        assert_eq!(workers, 64);
        // At max with nothing queued: steady, back to the slow tick.
        assert_eq!(law.step(at(t0, 120, 240, 240.0, 0, 64, 40)), None);
        assert_eq!(law.next_tick(), TICK);
    }

    /// `sample` with `cpu_ms` of the process's CPU time, all of it the
    /// workers', and `cpu_wait_ms` of theirs queued for a CPU.
    fn clocked(mut sample: Sample, cpu_ms: u64, cpu_wait_ms: f64) -> Sample {
        sample.cpu = Some(Duration::from_millis(cpu_ms));
        sample.worker_cpu_nanos = Some(cpu_ms as f64 * 1e6);
        sample.cpu_wait_nanos = Some(cpu_wait_ms * 1e6);
        sample
    }

    /// `ticks` samples `ms_per_tick` apart of a pool of `workers`, all
    /// busy, finishing `jobs` jobs per tick with `busy_ms` of busy time, of
    /// which `cpu_wait_ms` queued for a CPU, using `cpu_ms` of CPU time
    /// (all of it the workers'), with `queued` jobs waiting: the law's
    /// answer to each.
    #[allow(clippy::too_many_arguments, reason = "one scenario per call")]
    fn steady(
        law: &mut Law,
        ticks: u64,
        ms_per_tick: u64,
        workers: usize,
        queued: usize,
        jobs: u64,
        busy_ms: f64,
        cpu_wait_ms: f64,
        cpu_ms: u64,
    ) -> Vec<Option<usize>> {
        let t0 = Instant::now();
        (0..ticks)
            .map(|tick| {
                let sample = at(
                    t0,
                    tick * ms_per_tick,
                    tick * jobs,
                    tick as f64 * busy_ms,
                    queued,
                    workers,
                    workers,
                );
                law.step(clocked(sample, tick * cpu_ms, tick as f64 * cpu_wait_ms))
            })
            .collect()
    }

    #[test]
    fn waiting_for_a_cpu_is_not_demand() {
        // 64 workers on saturated CPUs: 20,000 jobs/s, each holding its
        // worker 3.2 ms of which 2.1 ms was spent queued for a CPU. The
        // real service time is 1.1 ms: 22 busy, 28 with headroom. Queued
        // for a CPU over half their busy time, the workers are crowded:
        // the law samples fast and halves the pool on the second vote.
        let mut law = Law::new(1, 64, 2);
        let answers = steady(&mut law, 3, 100, 64, 0, 2_000, 6_400.0, 4_200.0, 200);
        assert_eq!(answers, [None, None, Some(32)]);
        assert_eq!(law.next_tick(), FAST_TICK, "crowded: sample again soon");
        // Halving is a ceiling on the step, not a floor under the target:
        // the same load on 40 workers (each job busy 2 ms, 0.9 of it
        // queued for a CPU: less than half) shrinks toward 28 by a quarter,
        // after three votes at the steady tick.
        let mut law = Law::new(1, 64, 2);
        let answers = steady(&mut law, 4, 100, 40, 0, 2_000, 4_000.0, 1_800.0, 200);
        assert_eq!(answers, [None, None, None, Some(30)]);
        assert_eq!(law.next_tick(), TICK);
        // Idle workers that queued for a CPU while spinning down are not
        // crowded: fewer busy workers than CPUs.
        let mut law = Law::new(1, 64, 2);
        let answers = steady(&mut law, 2, 10, 16, 0, 0, 0.0, 5.0, 1);
        assert_eq!(answers, [None, None]);
        assert_eq!(law.next_tick(), TICK);
    }

    #[test]
    fn a_backlog_held_back_is_sampled_soon_then_less_and_less_often() {
        // Jobs queued behind two workers using the CPUs in full: no
        // growth, and the next sample comes a ramp tick's double later,
        // then double again, up to the slow tick.
        let mut law = Law::new(1, 64, 2);
        let t0 = Instant::now();
        let mut ticks = Vec::new();
        for tick in 0..9u64 {
            let sample = at(t0, tick * 10, tick * 18, tick as f64 * 20.0, 256, 2, 2);
            let answer = law.step(clocked(sample, tick * 19, 0.0));
            assert_eq!(answer, None, "saturated CPUs: no growth");
            ticks.push(law.next_tick().as_millis());
        }
        // (The first sample only primes the law.)
        assert_eq!(ticks[0], FIRST_TICK.as_millis());
        assert_eq!(ticks[1..], [4, 8, 16, 32, 64, 100, 100, 100]);
        // The backlog gone: the slow tick.
        let sample = at(t0, 90, 162, 180.0, 0, 2, 2);
        assert_eq!(law.step(clocked(sample, 171, 0.0)), None);
        assert_eq!(law.next_tick(), TICK);
    }

    #[test]
    fn cpu_headroom_sizes_the_probe() {
        // Two workers waiting ~1 ms per job use a tenth of two CPUs; with
        // jobs queued, about 2 × 0.95 / 0.1 = 19 workers would fill them.
        let mut law = Law::new(1, 64, 2);
        let answers = steady(&mut law, 2, 10, 2, 256, 18, 20.0, 0.0, 2);
        assert_eq!(answers, [None, Some(19)]);
        assert_eq!(
            law.next_tick(),
            RAMP_TICK,
            "grew, jobs queued: sample again soon"
        );
        // Grown for the arrival rate alone, nothing queued: a fast tick.
        let mut law = Law::new(1, 64, 2);
        let answers = steady(&mut law, 2, 10, 2, 0, 40, 20.0, 0.0, 2);
        assert_eq!(answers, [None, Some(3)]);
        assert_eq!(law.next_tick(), FAST_TICK, "grew, nothing queued");
        // No more workers than there are jobs to run.
        let mut law = Law::new(1, 64, 2);
        let answers = steady(&mut law, 2, 10, 2, 3, 18, 20.0, 0.0, 2);
        assert_eq!(answers, [None, Some(5)]);
    }

    #[test]
    fn the_workers_own_cpu_sizes_the_probe_not_the_producers() {
        // The same two waiting workers (a tenth of two CPUs between them)
        // while the producer queueing the burst uses another half: the
        // step is sized by the workers' share, to 19 as above, not by the
        // process's 60%, which would give 2 × 0.95 / 0.6 → 4.
        let mut law = Law::new(1, 64, 2);
        let t0 = Instant::now();
        let answers: Vec<_> = (0..2u64)
            .map(|tick| {
                let mut sample = at(t0, tick * 10, tick * 18, tick as f64 * 20.0, 256, 2, 2);
                sample.cpu = Some(Duration::from_millis(tick * 12));
                sample.worker_cpu_nanos = Some((tick * 2) as f64 * 1e6);
                sample.cpu_wait_nanos = Some(0.0);
                law.step(sample)
            })
            .collect();
        assert_eq!(answers, [None, Some(19)]);
    }

    #[test]
    fn some_waiting_for_a_cpu_is_the_price_of_a_full_cpu() {
        // Jobs queued behind 20 busy workers using 80% of the CPUs: a
        // fifth of their busy time queued for a CPU still lets the pool
        // grow, to about 20 × 0.95 / 0.8 = 24 (some queueing is what keeps
        // both CPUs busy); a third stops it (more threads would only queue
        // longer).
        let mut law = Law::new(1, 64, 2);
        let answers = steady(&mut law, 2, 100, 20, 256, 1_600, 2_000.0, 400.0, 160);
        assert_eq!(answers, [None, Some(24)]);
        let mut law = Law::new(1, 64, 2);
        let answers = steady(&mut law, 2, 100, 20, 256, 1_600, 2_000.0, 660.0, 160);
        assert_eq!(answers, [None, None]);
    }

    #[test]
    fn jobs_that_wait_may_grow_past_a_full_cpu_and_jobs_that_compute_may_not() {
        // 25 workers with jobs queued, the CPUs 99% busy, a fifth of the
        // workers' time queued for a CPU. Jobs that wait (the workers are
        // on a CPU 0.2 s of their 2.5 s) grow the pool by one: another
        // thread covers for late wake-ups.
        let mut law = Law::new(1, 64, 2);
        let answers = steady(&mut law, 2, 100, 25, 256, 1_700, 2_500.0, 500.0, 198);
        assert_eq!(answers, [None, Some(26)]);
        // Two workers computing flat out with the CPUs 99% busy: no
        // growth, whatever the sampled busy time says.
        let mut law = Law::new(1, 64, 2);
        let answers = steady(&mut law, 2, 100, 2, 256, 200, 600.0, 2.0, 198);
        assert_eq!(answers, [None, None]);
    }

    /// Two samples 20 ms apart of `workers` all busy with 30 jobs queued,
    /// the workers' clocks showing `on_cpu_ms` and no queueing, this
    /// process using a tenth of the CPUs; `shape` sets the rest.
    fn beside_another_program(
        workers: usize,
        on_cpu_ms: f64,
        shape: impl Fn(&mut Sample),
    ) -> Option<usize> {
        let t0 = Instant::now();
        let mut law = Law::new(1, 64, 2);
        let mut first = at(t0, 0, 0, 0.0, 30, workers, workers);
        first.cpu = Some(Duration::ZERO);
        first.cpu_wait_nanos = Some(0.0);
        first.worker_cpu_nanos = Some(0.0);
        first.machine = Some((0, 0));
        law.step(first);
        let mut now = at(t0, 20, 10, 20.0 * workers as f64, 30, workers, workers);
        now.cpu = Some(Duration::from_millis(4));
        now.cpu_wait_nanos = Some(0.0);
        now.worker_cpu_nanos = Some(on_cpu_ms * 1e6);
        now.machine = Some((2, 4));
        shape(&mut now);
        law.step(now)
    }

    #[test]
    fn workers_starved_beside_another_program_do_not_look_blocked() {
        // Another program holds the CPUs: our two workers got 1 ms of CPU
        // in 20 ms and their wait is not in schedstat yet (it is added when
        // they next run). Both are runnable: not blocked, no growth to fill
        // the CPUs we appear to leave idle.
        let grown = beside_another_program(2, 1.0, |s| {
            s.steady_workers = Some(2);
            s.runnable_workers = Some(2);
            s.machine = Some((4, 4));
        });
        assert_eq!(grown, None);
        // The same clocks with both workers asleep, on a machine with room:
        // jobs that wait, and the pool grows.
        let grown = beside_another_program(2, 1.0, |s| {
            s.steady_workers = Some(2);
            s.runnable_workers = Some(0);
        });
        assert!(grown.is_some_and(|n| n > 2), "{grown:?}");
    }

    #[test]
    fn a_machine_busy_with_another_program_is_saturated() {
        // Our share is a tenth of the CPUs, but every CPU is busy: compute
        // jobs gain nothing from more threads.
        let grown = beside_another_program(2, 18.0, |s| {
            s.steady_workers = Some(2);
            s.runnable_workers = Some(2);
            s.machine = Some((4, 4));
        });
        assert_eq!(grown, None);
    }

    #[test]
    fn workers_started_during_a_tick_do_not_count_as_blocked() {
        // Three workers, two of them started during the tick: only one
        // worker's clocks cover it, and it ran 15 of the 20 ms.
        let grown = beside_another_program(3, 15.0, |s| {
            s.steady_workers = Some(1);
            s.runnable_workers = Some(1);
            s.machine = Some((4, 4));
        });
        assert_eq!(grown, None);
    }

    #[test]
    fn growth_never_passes_what_the_cpus_can_serve() {
        // Two workers of compute-heavy jobs just after start: the queue
        // filling counts as 4,000 arrivals/s, and a few long samples put
        // S at 2.2 ms, so λ·S says 11 (with headroom); but the CPUs are
        // 90% busy, and three workers would fill them.
        let mut law = Law::new(1, 64, 2);
        let answers = steady(&mut law, 2, 10, 2, 30, 40, 88.0, 0.2, 18);
        assert_eq!(answers, [None, Some(3)]);
    }

    #[test]
    fn clocks_lagging_behind_running_workers_do_not_size_growth() {
        // The 4 ms first tick of two spinning workers, as seen on this
        // machine: the queue filling reads as 9,000 arrivals/s of 1 ms jobs
        // (λ·S says 11), and the workers' clocks show 0.26 ms of CPU, as
        // the kernel had not folded their running time in yet. Both are
        // runnable at the sample, so that time counts as used: one more
        // worker, not a dozen.
        let t0 = Instant::now();
        let step = |runnable| {
            let mut law = Law::new(1, 32, 2);
            let mut first = at(t0, 0, 0, 0.0, 32, 2, 2);
            first.cpu = Some(Duration::ZERO);
            first.cpu_wait_nanos = Some(0.0);
            first.worker_cpu_nanos = Some(0.0);
            law.step(first);
            let mut now = at(t0, 4, 36, 3.0, 32, 2, 1);
            now.finished = 3;
            now.cpu = Some(Duration::from_micros(800));
            now.cpu_wait_nanos = Some(0.25e6);
            now.worker_cpu_nanos = Some(0.26e6);
            now.steady_workers = Some(2);
            now.runnable_workers = Some(runnable);
            law.step(now)
        };
        assert_eq!(step(2), Some(3));
        // Asleep at the sample, the same workers' clocks are exact: jobs
        // that wait, and λ·S stands.
        assert_eq!(step(0), Some(11));
    }

    #[test]
    fn a_glance_between_steps_catches_a_shift() {
        // Steps 100 ms apart see 17,000 jobs/s finish; glances every 20 ms
        // in between look at the counters only.
        let t0 = Instant::now();
        let mut law = Law::new(2, 64, 2);
        let look = |ms: u64, finished: u64, busy: usize| Sample {
            finished,
            busy,
            ..at(t0, ms, finished, 0.0, 0, 24, busy)
        };
        assert!(law.due(&look(0, 0, 24)), "the first look primes");
        law.step(look(0, 0, 24));
        assert_eq!(law.next_look(t0), FIRST_TICK.min(FAST_TICK));
        assert!(law.due(&look(10, 170, 24)), "the first tick is due");
        law.step(look(10, 170, 24));
        assert!(law.due(&look(110, 1_870, 24)), "a tick since the last step");
        law.step(look(110, 1_870, 24));
        assert_eq!(law.next_tick(), TICK);
        assert_eq!(
            law.next_look(t0 + Duration::from_millis(110)),
            FAST_TICK,
            "a busy pool is glanced at between steps"
        );
        // The same rate: no step until the tick.
        assert!(!law.due(&look(130, 2_210, 24)));
        assert!(!law.due(&look(150, 2_550, 24)));
        // The backend slows tenfold: a seventh of the completions.
        assert!(law.due(&look(170, 2_600, 24)), "a shift calls a step");
        // Too few completions to tell: a slow pool is left to its tick.
        let mut slow = Law::new(2, 64, 2);
        slow.step(look(0, 0, 2));
        slow.step(look(100, 10, 2));
        slow.due(&look(120, 10, 2));
        assert!(!slow.due(&look(140, 13, 2)), "3 jobs prove nothing");
        // An idle pool is looked at only when a step is due.
        let mut idle = Law::new(2, 64, 2);
        idle.step(look(0, 0, 0));
        idle.step(look(10, 0, 0));
        assert!(!idle.due(&look(30, 0, 0)));
        assert_eq!(
            idle.next_look(t0 + Duration::from_millis(30)),
            Duration::from_millis(80)
        );
    }

    #[test]
    fn a_crowded_pool_forgets_the_workload_before() {
        // 64 workers after a spell of 10 ms jobs (the averages remember
        // 6,400 jobs/s of 10 ms: all 64 busy) are now crowded by 1 ms
        // jobs: 17,000 jobs/s, each queued for a CPU 2.6 ms of its 3.8 ms.
        // The target comes from this tick alone: 1.25 × 17,000 × 1.2 ms
        // = 26; the second vote halves the pool toward it. (Averaged with
        // the past, the target would be ~65: no shrink at all.)
        let t0 = Instant::now();
        let mut law = Law::new(2, 64, 2);
        let sample = |ms: u64, submitted: u64, busy_ms: f64, wait_ms: f64| {
            let mut s = at(t0, ms, submitted, busy_ms, 256, 64, 64);
            s.cpu = Some(Duration::from_millis(ms * 2));
            s.cpu_wait_nanos = Some(wait_ms * 1e6);
            s
        };
        law.step(sample(0, 0, 0.0, 0.0));
        assert_eq!(law.step(sample(100, 640, 6_400.0, 0.0)), None);
        let mut answers = Vec::new();
        for tick in 1..=2u64 {
            let ms = 100 + tick * 20;
            answers.push(law.step(sample(
                ms,
                640 + tick * 340,
                6_400.0 + tick as f64 * 1_292.0,
                tick as f64 * 884.0,
            )));
        }
        assert_eq!(answers, [None, Some(32)]);
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

    /// Samples 100 ms apart of `workers` workers, `busy` of them busy,
    /// finishing 100 jobs per tick with `busy_ms` of busy time per tick and
    /// nothing queued: the law's answer to each after the first.
    fn shrinking(law: &mut Law, workers: usize, busy: usize, busy_ms: f64) -> Vec<Option<usize>> {
        let t0 = Instant::now();
        law.step(at(t0, 0, 0, 0.0, 0, workers, busy));
        (1..=4u64)
            .map(|tick| {
                let sample = at(
                    t0,
                    tick * 100,
                    tick * 100,
                    tick as f64 * busy_ms,
                    0,
                    workers,
                    busy,
                );
                law.step(sample)
            })
            .collect()
    }

    #[test]
    fn a_shrink_needs_a_difference_of_an_eighth() {
        // 32 workers: a target of 28 (1,000 jobs/s of 22.2 ms, with
        // headroom) is an eighth below and shrinks on the third vote; 29
        // (23 ms) is not, and never does.
        let mut law = Law::new(1, 64, 2);
        assert_eq!(
            shrinking(&mut law, 32, 22, 2_220.0),
            [None, None, Some(28), None]
        );
        let mut law = Law::new(1, 64, 2);
        assert_eq!(shrinking(&mut law, 32, 23, 2_300.0), [None; 4]);
    }

    #[test]
    fn an_interrupted_vote_starts_over() {
        // Two votes to shrink, then a tick within an eighth of the pool:
        // the next shrink needs three fresh votes.
        let t0 = Instant::now();
        let mut law = Law::new(1, 64, 2);
        law.step(at(t0, 0, 0, 0.0, 0, 32, 1));
        let mut answers = Vec::new();
        // 100 jobs/s of 10 ms (target 2), except on tick 3: 4,700 jobs/s,
        // which the average makes 2,400 (target 30, less than an eighth
        // below 32). Tick 4 votes again, the average falling to 1,250.
        let mut submitted = 0;
        let mut busy = 0.0;
        for tick in 1..=6u64 {
            let jobs = if tick == 3 { 470 } else { 10 };
            submitted += jobs;
            busy += jobs as f64 * 10.0;
            answers.push(law.step(at(t0, tick * 100, submitted, busy, 0, 32, 1)));
        }
        assert_eq!(answers, [None, None, None, None, None, Some(24)]);
    }

    #[test]
    fn bounds_clamp_the_target() {
        // Below `min`, the pool grows to it at once, demand or not.
        let t0 = Instant::now();
        let mut law = Law::new(4, 64, 2);
        law.step(at(t0, 0, 0, 0.0, 0, 1, 0));
        assert_eq!(law.step(at(t0, 100, 0, 0.0, 0, 1, 0)), Some(4));
        // Idle, a pool just above `min` shrinks to `min` and no further,
        // though a quarter of it would be more.
        let mut law = Law::new(28, 64, 2);
        assert_eq!(
            shrinking(&mut law, 32, 0, 0.0),
            [None, None, Some(28), None]
        );
        // A backlog grows the pool no further than `max`.
        let mut law = Law::new(1, 6, 2);
        law.step(at(t0, 0, 0, 0.0, 100, 4, 4));
        assert_eq!(law.step(at(t0, 100, 4, 400.0, 100, 4, 4)), Some(6));
    }

    #[test]
    fn a_small_pool_shrinks_one_worker_at_a_time() {
        // A quarter of 3 is no worker: the step is at least one.
        let mut law = Law::new(1, 64, 2);
        assert_eq!(shrinking(&mut law, 3, 0, 0.0), [None, None, Some(2), None]);
    }

    #[test]
    fn a_backlog_behind_workers_with_no_cpu_time_grows_to_the_jobs_there_are() {
        // The first tick of a burst of 2 ms I/O calls, 2 ms long: no job
        // has finished, the two workers' clocks show no CPU time and
        // neither is runnable; the process and the machine are nearly
        // idle. The pool grows to max at once, not by doubling (as where
        // the share is unknown), which left it at 4 until the next fast
        // tick.
        let t0 = Instant::now();
        let sample = |ms: u64, runnable: usize, steady: usize, machine_busy: u64| {
            let mut s = at(t0, ms, 0, 0.0, 998, 2, 2);
            s.worker_cpu_nanos = Some(0.0);
            s.steady_workers = Some(steady);
            s.runnable_workers = Some(runnable);
            s.cpu = Some(Duration::from_micros(ms * 100));
            s.machine = Some((ms * machine_busy, ms * 100));
            s
        };
        let grown = |runnable: usize, steady: usize, machine_busy: u64| {
            let mut law = Law::new(2, 64, 2);
            law.step(sample(0, 0, 2, machine_busy));
            law.step(sample(2, runnable, steady, machine_busy))
        };
        assert_eq!(grown(0, 2, 5), Some(64));
        // A worker runnable at the sample may have run for time its clock
        // does not show yet: its share is counted, and the step bounded.
        assert_eq!(grown(1, 2, 5), Some(4));
        // No worker's clocks cover the tick (none found, or all new): a
        // zero measures nothing, so the pool doubles.
        assert_eq!(grown(0, 0, 5), Some(4));
        // The machine's CPUs full with other work: no growth at all.
        assert_eq!(grown(0, 2, 100), None);
    }

    #[test]
    fn fill_and_probe() {
        // Two workers using a tenth of the CPUs: 19 would use 95%.
        assert_eq!(Law::fill(2, Some(0.1)), Some(19));
        // At least one more than now, however busy the CPUs.
        assert_eq!(Law::fill(10, Some(0.99)), Some(11));
        assert_eq!(Law::fill(2, Some(0.0)), None, "no CPU time measured");
        assert_eq!(Law::fill(2, None), None);
        // The probe fills the CPUs, but not past the jobs there are; it
        // doubles where the CPU time is unknown.
        assert_eq!(Law::probe(2, 256, Some(0.1)), 19);
        assert_eq!(Law::probe(2, 3, Some(0.1)), 5);
        assert_eq!(Law::probe(4, 256, None), 8);
    }
}
