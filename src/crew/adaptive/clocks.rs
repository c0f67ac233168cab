//! The scheduler's clocks: this process's CPU time, and the CPU time and
//! run-queue delay of the pool's workers, as running totals.
//!
//! On Linux they come from each thread's `/proc/self/task/{tid}/schedstat`:
//! nanosecond clocks, where `/proc/self/stat` counts in 10 ms ticks, too
//! coarse for a fast tick. Where the schedstat files cannot be read, the
//! process's CPU time comes from `/proc/self/stat` and the workers' clocks
//! are unknown. The whole machine's busy time comes from `/proc/stat`
//! (clock ticks: coarse, but enough to tell CPUs that another program
//! keeps busy). A worker notes its kernel thread id
//! ([`current_thread_id`]) when it starts, so a read can tell the
//! workers' threads from the rest of the process.
//!
//! # Without the clocks
//!
//! On other systems (and on Linux without `/proc`) every [`Reading`] is
//! empty and the controller steers by the pool's own counters alone:
//!
//! * with no run-queue delay, the service time is the whole busy time, and
//!   no tick counts as starved or crowded;
//! * with no CPU utilisation, a backlog doubles the pool per tick (slow
//!   start) instead of jumping to what would fill the CPUs, growth is
//!   capped only by `max`, and the 95% rule never stops it;
//! * shrinking follows λ·S with the usual hysteresis.
//!
//! With `/proc/self/stat` alone the CPU utilisation is known, coarsely,
//! but the run-queue delay still is not.

use std::time::Duration;

pub(crate) use imp::{Clocks, current_thread_id};

/// What the clocks said at one read, each figure where the OS says:
/// running totals since the controller started.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Reading {
    /// This process's CPU time.
    pub(crate) cpu: Option<Duration>,
    /// Nanoseconds the workers have spent runnable but waiting for a CPU.
    pub(crate) cpu_wait_nanos: Option<f64>,
    /// Nanoseconds the workers have spent on a CPU.
    pub(crate) worker_cpu_nanos: Option<f64>,
    /// How many workers the last read found that the read before it found
    /// too: those whose clocks cover the whole interval between the two.
    /// A worker started since has clocks for part of it at most (none
    /// before it first runs and notes its thread id), so a count that
    /// included it would read its missing time as time spent blocked.
    pub(crate) steady_workers: Option<usize>,
    /// How many workers were runnable (on a CPU or queued for one) at the
    /// last read. The run-queue delay in `schedstat` is added only when a
    /// waiting thread gets a CPU, so a worker starved for the whole tick
    /// shows neither CPU time nor delay in it, as if blocked; its state
    /// says otherwise.
    pub(crate) runnable_workers: Option<usize>,
    /// The whole machine's CPU time so far, every process's: (busy,
    /// busy + idle), in clock ticks. Another program holding the CPUs
    /// shows here, and in our share of them only as a shortfall.
    pub(crate) machine: Option<(u64, u64)>,
}

#[cfg(target_os = "linux")]
mod imp {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::Reading;

    /// The calling thread's kernel id, from `/proc/thread-self`.
    pub(crate) fn current_thread_id() -> Option<u64> {
        let link = std::fs::read_link("/proc/thread-self").ok()?;
        link.file_name()?.to_str()?.parse().ok()
    }

    /// The schedstat clocks of every thread of this process.
    ///
    /// Threads come and go, so the totals are running sums of per-thread
    /// differences between reads: a thread that exits takes only its time
    /// since the last read with it.
    #[derive(Debug, Default)]
    pub(crate) struct Clocks {
        /// Per thread seen at the last read: (CPU time, run-queue delay).
        last: HashMap<u64, (u64, u64)>,
        cpu: u64,
        worker_cpu: u64,
        worker_wait: u64,
        /// Workers seen by both of the last two reads.
        steady: usize,
        /// Workers runnable at the last read.
        runnable: usize,
        /// A read has succeeded: a thread missing from `last` is new.
        known: bool,
    }

    impl Clocks {
        /// Reads every thread of the process: its CPU time, and the CPU
        /// time and run-queue delay of the threads `workers`.
        pub(crate) fn read(&mut self, workers: Vec<u64>) -> Reading {
            if !self.read_schedstat(workers) {
                return Reading {
                    cpu: process_cpu_time(),
                    machine: machine_cpu_time(),
                    ..Reading::default()
                };
            }
            Reading {
                cpu: Some(Duration::from_nanos(self.cpu)),
                cpu_wait_nanos: Some(self.worker_wait as f64),
                worker_cpu_nanos: Some(self.worker_cpu as f64),
                steady_workers: Some(self.steady),
                runnable_workers: Some(self.runnable),
                machine: machine_cpu_time(),
            }
        }

        /// Adds every thread's time since the last read to the totals.
        /// `false` where no thread's schedstat could be read.
        fn read_schedstat(&mut self, mut workers: Vec<u64>) -> bool {
            let Some(tids) = task_ids() else {
                return false;
            };
            workers.sort_unstable();
            let mut now = HashMap::with_capacity(self.last.len().max(8));
            self.steady = 0;
            self.runnable = 0;
            for tid in tids {
                let Some(clocks) = thread_schedstat(tid) else {
                    continue;
                };
                self.add(tid, clocks, workers.binary_search(&tid).is_ok());
                now.insert(tid, clocks);
            }
            if now.is_empty() {
                return false;
            }
            self.known = true;
            self.last = now;
            true
        }

        /// Adds thread `tid`'s time since the last read, `(cpu, wait)`
        /// now, to the totals.
        fn add(&mut self, tid: u64, (cpu, wait): (u64, u64), worker: bool) {
            // A thread the last read did not list started since: all of
            // its CPU time and all of its run-queue delay are this
            // interval's. (Leaving out a new worker's wait for its first
            // CPU while its jobs' busy time counts would hide exactly the
            // saturation that another program holding the CPUs causes.)
            let (cpu_before, wait_before) = match self.last.get(&tid) {
                Some(&before) => before,
                None if self.known => (0, 0),
                None => (cpu, wait),
            };
            let cpu_since = cpu.saturating_sub(cpu_before);
            self.cpu += cpu_since;
            if worker {
                self.steady += usize::from(self.last.contains_key(&tid));
                self.runnable += usize::from(thread_state(tid) == Some('R'));
                self.worker_cpu += cpu_since;
                self.worker_wait += wait.saturating_sub(wait_before);
            }
        }
    }

    /// The kernel ids of this process's threads; `None` without `/proc`.
    pub(super) fn task_ids() -> Option<impl Iterator<Item = u64>> {
        let tasks = std::fs::read_dir("/proc/self/task").ok()?;
        Some(
            tasks
                .flatten()
                .filter_map(|task| task.file_name().to_str()?.parse().ok()),
        )
    }

    /// Thread `tid`'s CPU time and the time it spent runnable but waiting
    /// for a CPU, in nanoseconds: the first two fields of its `schedstat`.
    fn thread_schedstat(tid: u64) -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
        let mut fields = stat.split_whitespace().map(str::parse::<u64>);
        Some((fields.next()?.ok()?, fields.next()?.ok()?))
    }

    /// Thread `tid`'s scheduler state (`R` runnable, `S` sleeping, …),
    /// from the field after the command name in its `stat`.
    fn thread_state(tid: u64) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
        stat.rsplit_once(')')?.1.trim_start().chars().next()
    }

    /// Every CPU's busy and total time, in clock ticks, from the first
    /// line of `/proc/stat` (user, nice, system, idle, iowait, irq,
    /// softirq, steal); `None` if it cannot be read.
    fn machine_cpu_time() -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().next()?.strip_prefix("cpu ")?;
        let fields: Vec<u64> = line
            .split_whitespace()
            .take(8)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        let [user, nice, system, idle, iowait, irq, softirq, steal] = fields[..] else {
            return None;
        };
        let busy = user + nice + system + irq + softirq + steal;
        Some((busy, busy + idle + iowait))
    }

    /// CPU time this process has used, from `/proc/self/stat`; `None` if
    /// it cannot be read.
    fn process_cpu_time() -> Option<Duration> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The fields after the command name, which may itself hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let user: u64 = fields.get(11)?.parse().ok()?;
        let system: u64 = fields.get(12)?.parse().ok()?;
        // Clock ticks; USER_HZ is 100 on every mainstream Linux.
        Some(Duration::from_millis((user + system) * 10))
    }
}

/// The same API with nothing to read: see "Without the clocks" above.
#[cfg(not(target_os = "linux"))]
mod imp {
    use super::Reading;

    /// No kernel thread id to note.
    pub(crate) fn current_thread_id() -> Option<u64> {
        None
    }

    /// No clocks to read. (Braces, not a unit struct, so that callers
    /// write `Clocks::default()` on every system.)
    #[derive(Debug, Default)]
    pub(crate) struct Clocks {}

    impl Clocks {
        /// An empty reading: the OS says nothing.
        pub(crate) fn read(&mut self, _workers: Vec<u64>) -> Reading {
            Reading::default()
        }
    }
}

// Miri's isolation hides /proc, which is all these tests read.
#[cfg(all(test, target_os = "linux", not(miri)))]
mod tests {
    use super::*;

    #[test]
    fn threads_have_distinct_ids() {
        // Each thread reads its own kernel id, which the process's ids list.
        let here = current_thread_id().expect("/proc/thread-self");
        let there = std::thread::spawn(current_thread_id).join().unwrap();
        assert_ne!(Some(here), there);
        assert!(imp::task_ids().expect("/proc/self/task").any(|t| t == here));
    }

    #[test]
    fn worker_clocks_count_only_workers_and_only_grow() {
        // A thread named as a worker has its CPU time counted, within the
        // process's; the totals never go back.
        let me = current_thread_id().unwrap();
        let mut clocks = Clocks::default();
        let first = clocks.read(vec![me]);
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(20) {
            std::hint::black_box(spin.elapsed());
        }
        let second = clocks.read(vec![me]);
        let (Some(cpu), Some(worker)) = (second.cpu, second.worker_cpu_nanos) else {
            panic!("schedstat unreadable: {second:?}");
        };
        assert!(cpu >= first.cpu.unwrap());
        assert!(worker > first.worker_cpu_nanos.unwrap());
        assert!(worker <= cpu.as_nanos() as f64);
        assert!(second.cpu_wait_nanos >= first.cpu_wait_nanos);
        assert_eq!(
            Clocks::default().read(Vec::new()).worker_cpu_nanos,
            Some(0.0)
        );
    }
}
