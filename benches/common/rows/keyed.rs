//! Rows for keys and priority lanes (#19): what a key or a lane costs a
//! tiny job against plain `execute` on a pool of the same size, and a
//! keyed workload with one slow key against the ordered executor other
//! libraries build by hashing each key to one of N single-thread
//! executors (BookKeeper's and Pulsar's `OrderedExecutor`; Netty pins a
//! channel to one event loop the same way).

use std::hint::black_box;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use brigade::{DEFAULT_QUEUE_CAPACITY, Lane, ThreadPool};
use crossbeam_channel::Sender;

use super::jobs::Tiny;
use super::routed_floor::{KeyedFloor, LaneFloor};
use crate::common::interleave::{Row, timed};
use crate::common::{FloorPool, Latch, brigade_pool, calibrate, cpu_work, cpus};

/// Jobs per run of the cost rows: half `A`'s 1,000,000, as a routed job
/// costs more than a plain one and a round should stay under a second.
const COST_JOBS: usize = 500_000;
/// Distinct keys of `keyed-cost`'s jobs: job `i` has key `i % COST_KEYS`.
const COST_KEYS: usize = 1_000;

/// Runs `COST_JOBS` tiny jobs through `execute`, which is given each
/// job's index; the time until the last is done.
fn indexed_batch(execute: impl Fn(usize, Tiny)) -> Duration {
    timed(|| {
        let latch = Latch::new(COST_JOBS);
        for i in 0..COST_JOBS {
            execute(i, Tiny(Arc::clone(&latch)));
        }
        latch.wait();
    })
}

/// A row of tiny jobs submitted by `route` (first entrant, named `name`)
/// against plain `execute` on another pool of the same size, so that
/// ÷ fastest, with its quartiles, is routed ÷ plain.
fn against_plain(name: &str, route: impl Fn(&ThreadPool, usize, Tiny) + 'static) -> Row {
    let routed = brigade_pool(cpus());
    let plain = brigade_pool(cpus());
    Row::first(name, move || indexed_batch(|i, job| route(&routed, i, job)))
        .peer("plain", move || {
            indexed_batch(|_, job| plain.execute(move || job.run()).expect("pool open"))
        })
}

/// `keyed-cost`: tiny jobs through `pool.keyed(i % 1000).execute`.
pub(super) fn keyed_cost() -> Row {
    against_plain("keyed", |pool, i, job| {
        let keyed = pool.keyed(i % COST_KEYS);
        keyed.execute(move || job.run()).expect("pool open");
    })
}

/// `lane-cost`: tiny jobs through `pool.lane(Lane::High).execute`.
pub(super) fn high_lane_cost() -> Row {
    against_plain("high", |pool, _, job| {
        let high = pool.lane(Lane::High);
        high.execute(move || job.run()).expect("pool open");
    })
}

/// `lane-cost-bg`: tiny jobs through `pool.lane(Lane::Background).execute`.
pub(super) fn background_lane_cost() -> Row {
    against_plain("background", |pool, _, job| {
        let background = pool.lane(Lane::Background);
        background.execute(move || job.run()).expect("pool open");
    })
}

/// `keyed-floor`: the tiny jobs of `keyed-cost` through the hand-written
/// keyed executor, against the same jobs through the plain floor: what
/// per-key order costs without brigade.
pub(super) fn keyed_floor() -> Row {
    let keyed = KeyedFloor::new(cpus(), DEFAULT_QUEUE_CAPACITY);
    let floor = FloorPool::new(cpus(), DEFAULT_QUEUE_CAPACITY);
    Row::first("keyed-floor", move || {
        indexed_batch(|i, job| keyed.execute((i % COST_KEYS) as u64, move || job.run()))
    })
    .peer("floor", move || {
        indexed_batch(|_, job| floor.execute(move || job.run()))
    })
}

/// `lane-floor`: the tiny jobs of `lane-cost` through the top lane of
/// three crossbeam channels, against the plain floor.
pub(super) fn lane_floor() -> Row {
    lane_floor_row("lane-floor", 0)
}

/// `lane-floor-bg`: the same through the bottom lane, which a worker
/// reaches after finding the two above it empty.
pub(super) fn background_lane_floor() -> Row {
    lane_floor_row("lane-floor-bg", 2)
}

fn lane_floor_row(name: &str, lane: usize) -> Row {
    let lanes = LaneFloor::new(cpus(), DEFAULT_QUEUE_CAPACITY);
    let floor = FloorPool::new(cpus(), DEFAULT_QUEUE_CAPACITY);
    Row::first(name, move || {
        indexed_batch(|_, job| lanes.execute(lane, move || job.run()))
    })
    .peer("floor", move || {
        indexed_batch(|_, job| floor.execute(move || job.run()))
    })
}

/// Keys of `keyed-slow`'s workload.
const SLOW_KEYS: u64 = 64;
/// Jobs per key of `keyed-slow`, submitted round-robin over the keys.
const PER_KEY: u64 = 80;
/// The CPU work of each `keyed-slow` job but the stalled one.
const STEP_CPU: Duration = Duration::from_micros(25);
/// How long key 0's first job blocks (a sleep, standing for a slow
/// downstream call): longer than the other keys take in all.
const STALL: Duration = Duration::from_millis(150);

/// A job of `keyed-slow`: spins `iterations` of [`cpu_work`], or sleeps
/// [`STALL`] if it is the stalled one; then counts down `others` (if not
/// key 0's) and `all`.
struct Step {
    key: u64,
    stall: bool,
    iterations: u64,
    others: Arc<Latch>,
    all: Arc<Latch>,
}

impl Step {
    fn run(self) {
        if self.stall {
            std::thread::sleep(STALL);
        } else {
            black_box(cpu_work(self.iterations));
        }
        if self.key != 0 {
            self.others.count_down();
        }
        self.all.count_down();
    }
}

/// Submits `keyed-slow`'s jobs through `submit` (given each job's key),
/// key 0's first one stalled if `stall`; the time until every job of the
/// other keys is done. Then waits, untimed, for key 0's jobs, so the
/// next entrant starts on idle threads.
fn slow_key_batch(iterations: u64, stall: bool, submit: impl Fn(u64, Step)) -> Duration {
    let others = Latch::new(((SLOW_KEYS - 1) * PER_KEY) as usize);
    let all = Latch::new((SLOW_KEYS * PER_KEY) as usize);
    let took = timed(|| {
        for round in 0..PER_KEY {
            for key in 0..SLOW_KEYS {
                submit(
                    key,
                    Step {
                        key,
                        stall: stall && key == 0 && round == 0,
                        iterations,
                        others: Arc::clone(&others),
                        all: Arc::clone(&all),
                    },
                );
            }
        }
        others.wait();
    });
    all.wait();
    took
}

type Job = Box<dyn FnOnce() + Send>;

/// The hash-to-one-thread ordered executor: N threads, each draining its
/// own unbounded crossbeam channel; key `k`'s jobs all go to thread
/// `k % N` (a Java `Long` key hashes to itself, which is what
/// `OrderedExecutor` takes modulo N), so they run in order, and so does
/// every other key that shares the thread.
struct HashedExecutor {
    queues: Vec<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl HashedExecutor {
    fn new(threads: usize) -> Self {
        let (queues, threads) = (0..threads)
            .map(|_| {
                let (tx, rx) = crossbeam_channel::unbounded::<Job>();
                let thread = std::thread::spawn(move || rx.iter().for_each(|job| job()));
                (tx, thread)
            })
            .unzip();
        Self { queues, threads }
    }

    fn execute(&self, key: u64, job: impl FnOnce() + Send + 'static) {
        let queue = &self.queues[(key % self.queues.len() as u64) as usize];
        queue.send(Box::new(job)).expect("executor thread alive");
    }
}

impl Drop for HashedExecutor {
    fn drop(&mut self) {
        self.queues.clear();
        self.threads.drain(..).for_each(|thread| {
            let _ = thread.join();
        });
    }
}

/// `keyed-slow`: 64 keys × 80 jobs of 25 µs CPU on two workers per CPU,
/// key 0's first job sleeping 150 ms: the time until the other keys'
/// jobs are done, brigade against the hashed executor, and both without
/// the stall (the unblocked rate). Two workers per CPU so that the
/// sleeping one leaves at least one per CPU: brigade's other keys keep
/// every CPU busy, and what the hashed executor loses is head-of-line
/// blocking, not CPU. (With sleeps for every job, brigade would lose
/// the stalled worker's share, `workers ÷ (workers − 1)`.)
pub(super) fn slow_key() -> Row {
    let workers = 2 * cpus();
    let iterations = calibrate(STEP_CPU);
    let pool = Arc::new(brigade_pool(workers));
    let unblocked = Arc::clone(&pool);
    let hashed = Arc::new(HashedExecutor::new(workers));
    let hashed_unblocked = Arc::clone(&hashed);
    let keyed = |pool: &ThreadPool, key: u64, step: Step| {
        pool.keyed(key)
            .execute(move || step.run())
            .expect("pool open");
    };
    Row::brigade(move || slow_key_batch(iterations, true, |key, step| keyed(&pool, key, step)))
        .peer("hashed", move || {
            slow_key_batch(iterations, true, |key, step| {
                hashed.execute(key, move || step.run());
            })
        })
        .peer("unblocked", move || {
            slow_key_batch(iterations, false, |key, step| {
                keyed(&unblocked, key, step);
            })
        })
        .peer("hashed-unblocked", move || {
            slow_key_batch(iterations, false, |key, step| {
                hashed_unblocked.execute(key, move || step.run());
            })
        })
}
