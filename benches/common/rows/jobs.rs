//! Rows of many small jobs through a long-lived pool of one worker per
//! CPU. Every job is a small named type (`Tiny`, `Double`, `Stamp`) that
//! each pool wraps in its own closure, so each boxes it once, as it would
//! any closure.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade::{JobHandle, ThreadPool};
use crossbeam_channel::Sender;

use crate::common::executor::block_on;
use crate::common::interleave::{Row, timed};
use crate::common::{FloorPool, Latch, brigade_pool, cpus, rayon_pool};

/// Jobs per run of `scope`, `A` and `A-latencies`.
const TINY_JOBS: usize = 1_000_000;
/// Jobs per run of `E` and the await rows.
const VALUE_JOBS: u64 = 100_000;
/// Submissions per run of `D`.
const SUBMITS: usize = 200;
/// The pause before each of `D`'s submissions: long enough for every
/// worker to park again.
const SETTLE: Duration = Duration::from_millis(2);

/// A tiny job: does nothing, then counts its batch's latch down.
pub(super) struct Tiny(pub(super) Arc<Latch>);

impl Tiny {
    pub(super) fn run(self) {
        black_box(0u64);
        self.0.count_down();
    }
}

/// Runs `TINY_JOBS` tiny jobs through `execute`; the time until the last
/// is done.
fn tiny_batch(execute: impl Fn(Tiny)) -> Duration {
    timed(|| {
        let latch = Latch::new(TINY_JOBS);
        for _ in 0..TINY_JOBS {
            execute(Tiny(Arc::clone(&latch)));
        }
        latch.wait();
    })
}

/// `A`: tiny fire-and-forget jobs.
pub(super) fn tiny() -> Row {
    let workers = cpus();
    let pool = brigade_pool(workers);
    let floor = FloorPool::new(workers, 1024);
    let tp = threadpool::ThreadPool::new(workers);
    let rayon = rayon_pool(workers);
    Row::brigade(move || tiny_batch(|job| pool.execute(move || job.run()).expect("pool open")))
        .peer("floor", move || {
            tiny_batch(|job| floor.execute(move || job.run()))
        })
        .peer("threadpool", move || {
            tiny_batch(|job| tp.execute(move || job.run()))
        })
        .peer("rayon", move || {
            tiny_batch(|job| rayon.spawn(move || job.run()))
        })
}

/// `A-latencies`: what recording queue waits and run times costs a tiny
/// job (brigade ÷ this peer is on ÷ off).
pub(super) fn latency_recording() -> Row {
    let timed_pool = brigade_pool(cpus());
    let untimed = ThreadPool::builder()
        .workers(cpus())
        .record_latencies(false)
        .build()
        .expect("brigade pool");
    Row::brigade(move || {
        tiny_batch(|job| timed_pool.execute(move || job.run()).expect("pool open"))
    })
    .peer("latencies-off", move || {
        tiny_batch(|job| untimed.execute(move || job.run()).expect("pool open"))
    })
}

/// `scope`: tiny jobs spawned in a scope, which returns when all are done.
pub(super) fn scope() -> Row {
    let workers = cpus();
    let pool = brigade_pool(workers);
    let rayon = rayon_pool(workers);
    let floor = FloorPool::new(workers, 1024);
    let brigade = move || {
        timed(|| {
            pool.scope(|s| {
                for _ in 0..TINY_JOBS {
                    s.spawn(|_| black_box(0u64));
                }
            });
        })
    };
    let rayon = move || {
        timed(|| {
            rayon.scope(|s| {
                for _ in 0..TINY_JOBS {
                    s.spawn(|_| {
                        black_box(0u64);
                    });
                }
            });
        })
    };
    Row::brigade(brigade)
        .peer("rayon", rayon)
        .peer("floor", move || {
            tiny_batch(|job| floor.execute(move || job.run()))
        })
}

/// A job of `E`: sends `i * 2` to the caller.
struct Double {
    i: u64,
    results: Sender<u64>,
}

impl Double {
    fn run(self) {
        let _ = self.results.send(self.i * 2);
    }
}

/// The sum of `i * 2` over `E`'s jobs.
const VALUE_SUM: u64 = VALUE_JOBS * (VALUE_JOBS - 1);

/// Runs `E`'s jobs through `execute`, each sending its value on a
/// results channel that the caller sums.
fn channel_batch(execute: impl Fn(Double)) -> Duration {
    timed(|| {
        let (results, rx) = crossbeam_channel::unbounded();
        for i in 0..VALUE_JOBS {
            let results = results.clone();
            execute(Double { i, results });
        }
        drop(results);
        assert_eq!(rx.iter().sum::<u64>(), VALUE_SUM);
    })
}

/// Submits `E`'s jobs to `pool` and hands their handles, in order, to
/// `collect`, which returns the sum of their values; the time for both.
fn handle_batch(pool: &ThreadPool, collect: impl FnOnce(Vec<JobHandle<u64>>) -> u64) -> Duration {
    timed(|| {
        let handles: Vec<_> = (0..VALUE_JOBS).map(|i| submit_double(pool, i)).collect();
        assert_eq!(collect(handles), VALUE_SUM);
    })
}

/// Joins each handle in turn (blocking).
fn join_all(handles: Vec<JobHandle<u64>>) -> u64 {
    handles
        .into_iter()
        .map(|h| h.join().expect("job ran"))
        .sum()
}

/// Awaits each handle in turn, all inside one `block_on`.
fn await_all(handles: Vec<JobHandle<u64>>) -> u64 {
    block_on(async {
        let mut sum = 0;
        for handle in handles {
            sum += handle.await.expect("job ran");
        }
        sum
    })
}

/// Runs each handle through a `block_on` of its own.
fn block_on_each(handles: Vec<JobHandle<u64>>) -> u64 {
    handles
        .into_iter()
        .map(|h| block_on(h).expect("job ran"))
        .sum()
}

/// `E`: jobs returning values; brigade's come back through their handles.
pub(super) fn returning_values() -> Row {
    let workers = cpus();
    let pool = brigade_pool(workers);
    let floor = FloorPool::new(workers, 1024);
    let tp = threadpool::ThreadPool::new(workers);
    let rayon = rayon_pool(workers);
    Row::brigade(move || handle_batch(&pool, join_all))
        .peer("floor", move || {
            channel_batch(|job| floor.execute(move || job.run()))
        })
        .peer("threadpool", move || {
            channel_batch(|job| tp.execute(move || job.run()))
        })
        .peer("rayon", move || {
            channel_batch(|job| rayon.spawn(move || job.run()))
        })
}

/// An await row: `E`'s jobs collected by `collect` (awaiting the
/// handles), against the same pool's blocking `join` as the only peer, so
/// that ÷ fastest, with its quartiles, is await ÷ join (row `E`, in the
/// same run, has the floor).
fn awaited(collect: fn(Vec<JobHandle<u64>>) -> u64) -> Row {
    let pool = Arc::new(brigade_pool(cpus()));
    let joined = Arc::clone(&pool);
    Row::brigade(move || handle_batch(&pool, collect))
        .peer("join", move || handle_batch(&joined, join_all))
}

/// `E-await`: `E` with every handle awaited in order inside one
/// `block_on` (brigade ÷ join is await ÷ join).
pub(super) fn returning_values_awaited() -> Row {
    awaited(await_all)
}

/// `E-await-each`: `E` with a `block_on` per handle.
pub(super) fn returning_values_block_on_each() -> Row {
    awaited(block_on_each)
}

/// Jobs per run of `E-await-1by1`.
const ROUND_TRIPS: u64 = 10_000;
/// The sum of `i * 2` over `E-await-1by1`'s jobs.
const ROUND_TRIP_SUM: u64 = ROUND_TRIPS * (ROUND_TRIPS - 1);

/// A job of `E` or an await row on `pool`: returns `i * 2`.
fn submit_double(pool: &ThreadPool, i: u64) -> JobHandle<u64> {
    pool.submit(move |_| i * 2).expect("pool open")
}

/// `E-await-1by1`: one job at a time, each awaited (in one `block_on`)
/// before the next is submitted, so nearly every handle is still pending
/// when it is first polled: the waker's path, against join's condvar.
pub(super) fn one_by_one() -> Row {
    let pool = Arc::new(brigade_pool(cpus()));
    let joined = Arc::clone(&pool);
    let awaited = move || {
        timed(|| {
            let sum = block_on(async {
                let mut sum = 0;
                for i in 0..ROUND_TRIPS {
                    sum += submit_double(&pool, i).await.expect("job ran");
                }
                sum
            });
            assert_eq!(sum, ROUND_TRIP_SUM);
        })
    };
    let joined = move || {
        timed(|| {
            let sum: u64 = (0..ROUND_TRIPS)
                .map(|i| submit_double(&joined, i).join().expect("job ran"))
                .sum();
            assert_eq!(sum, ROUND_TRIP_SUM);
        })
    };
    Row::brigade(awaited).peer("join", joined)
}

/// A job of `D`: sends the instant it started.
struct Stamp(Sender<Instant>);

impl Stamp {
    fn run(self) {
        let _ = self.0.send(Instant::now());
    }
}

/// The median, over `SUBMITS` submissions with every worker parked, of the
/// time from handing a job to `submit` to the job's first instruction.
fn latency(submit: impl Fn(Stamp)) -> Duration {
    latency_after(|| std::thread::sleep(SETTLE), submit)
}

/// As [`latency`], with `settle` run before each submission instead of
/// the pause.
fn latency_after(settle: impl Fn(), submit: impl Fn(Stamp)) -> Duration {
    let mut latencies: Vec<Duration> = (0..SUBMITS)
        .map(|_| {
            settle();
            let (tx, rx) = crossbeam_channel::bounded(1);
            let start = Instant::now();
            submit(Stamp(tx));
            rx.recv().expect("job ran") - start
        })
        .collect();
    latencies.sort();
    latencies[SUBMITS / 2]
}

/// `D`: idle submit → start latency.
pub(super) fn idle_latency() -> Row {
    let workers = cpus();
    let pool = brigade_pool(workers);
    let floor = FloorPool::new(workers, 1024);
    let tp = threadpool::ThreadPool::new(workers);
    let rayon = rayon_pool(workers);
    Row::brigade(move || latency(|job| pool.execute(move || job.run()).expect("pool open")))
        .peer("floor", move || {
            latency(|job| floor.execute(move || job.run()))
        })
        .peer("threadpool", move || {
            latency(|job| tp.execute(move || job.run()))
        })
        .peer("rayon", move || {
            latency(|job| rayon.spawn(move || job.run()))
        })
}

/// `D-cold`: the first job on a pool whose workers all left after its
/// keep-alive: submit → start, a thread start included.
pub(super) fn cold_start() -> Row {
    let workers = cpus();
    let cold = Arc::new(
        brigade::ThreadPool::builder()
            .workers(workers)
            .keep_alive(Duration::from_millis(1))
            .build()
            .expect("valid pool"),
    );
    let warm = brigade_pool(workers);
    Row::brigade(move || {
        let emptied = || {
            while cold.stats().workers != 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        };
        latency_after(emptied, |job| {
            cold.execute(move || job.run()).expect("pool open");
        })
    })
    .peer("warm pool", move || {
        latency(|job| warm.execute(move || job.run()).expect("pool open"))
    })
    .peer("thread::spawn", || {
        latency(|job| {
            std::thread::spawn(move || job.run());
        })
    })
}
