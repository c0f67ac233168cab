//! brigade side by side with what users would reach for instead, in one
//! run: rayon (`spawn` + latch, `scope`, `install` + `par_iter`), the
//! `threadpool` crate, `std::thread::scope`, and a plain crossbeam
//! `recv()` pool — the floor any pool pays for a hand-off.
//!
//! ```text
//! cargo bench --bench peers
//! ```
//!
//! Cases (the README's "Performance" table quotes ratios to the floor):
//! A. 1,000,000 tiny jobs; B. 2,000 × 50 µs CPU jobs; C. 2,000 × 1 ms
//! sleeps at N = 64; D. idle submit → start latency; E. 100,000 jobs
//! returning values; F. `map` over 10,000,000 trivial items. After A, the
//! same tiny jobs run interleaved, peer after peer within each round, and
//! the median per-round ratio to the floor is printed: the steadier figure
//! on a noisy machine.

#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use brigade::{ThreadPool, WorkerPool};
use common::{FloorPool, Latch, calibrate, cpu_work};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;

/// The machine's CPUs: every CPU-bound case uses this many workers.
fn cpus() -> usize {
    brigade::sizing::cpu_bound()
}

fn brigade_pool(workers: usize) -> ThreadPool {
    ThreadPool::builder()
        .workers(workers)
        .build()
        .expect("brigade pool")
}

fn rayon_pool(workers: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .expect("rayon pool")
}

/// Runs `jobs` copies of `work` through every peer, as fire-and-forget
/// jobs that count a latch down.
fn fire_and_forget(
    c: &mut Criterion,
    group: &str,
    workers: usize,
    jobs: usize,
    work: impl Fn() + Send + Sync + Copy + 'static,
) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(jobs as u64));
    g.sample_size(10);

    let floor = FloorPool::new(workers, 1024);
    g.bench_function("floor: crossbeam recv()", |b| {
        b.iter(|| {
            let latch = Latch::new(jobs);
            for _ in 0..jobs {
                let latch = Arc::clone(&latch);
                floor.execute(move || {
                    work();
                    latch.count_down();
                });
            }
            latch.wait();
        });
    });
    drop(floor);

    let execute_all = |pool: &ThreadPool| {
        let latch = Latch::new(jobs);
        for _ in 0..jobs {
            let latch = Arc::clone(&latch);
            let _ = pool.execute(move || {
                work();
                latch.count_down();
            });
        }
        latch.wait();
    };
    // The same pool with latency timing off: the difference is what
    // recording queue waits and run times costs (issue 7 budgets 5%).
    let untimed = ThreadPool::builder()
        .workers(workers)
        .record_latencies(false)
        .build()
        .expect("pool");
    g.bench_function("brigade execute (latencies off)", |b| {
        b.iter(|| execute_all(&untimed));
    });
    drop(untimed);
    let pool = brigade_pool(workers);
    g.bench_function("brigade execute", |b| b.iter(|| execute_all(&pool)));
    g.bench_function("brigade scope", |b| {
        b.iter(|| {
            pool.scope(|s| {
                for _ in 0..jobs {
                    s.spawn(move |_| work());
                }
            });
        });
    });
    drop(pool);

    let rayon = rayon_pool(workers);
    g.bench_function("rayon spawn", |b| {
        b.iter(|| {
            let latch = Latch::new(jobs);
            for _ in 0..jobs {
                let latch = Arc::clone(&latch);
                rayon.spawn(move || {
                    work();
                    latch.count_down();
                });
            }
            latch.wait();
        });
    });
    g.bench_function("rayon scope", |b| {
        b.iter(|| {
            rayon.scope(|s| {
                for _ in 0..jobs {
                    s.spawn(move |_| work());
                }
            });
        });
    });
    drop(rayon);

    let tp = threadpool::ThreadPool::new(workers);
    g.bench_function("threadpool", |b| {
        b.iter(|| {
            for _ in 0..jobs {
                tp.execute(work);
            }
            tp.join();
        });
    });
    drop(tp);

    g.bench_function("std::thread::scope (static split)", |b| {
        b.iter(|| {
            let next = AtomicUsize::new(0);
            std::thread::scope(|s| {
                for _ in 0..workers {
                    s.spawn(|| {
                        while next.fetch_add(1, Ordering::Relaxed) < jobs {
                            work();
                        }
                    });
                }
            });
        });
    });
    g.finish();
}

/// Case A again, interleaved: each round runs 1,000,000 tiny jobs through
/// every peer in turn, and the ratio to the floor is taken within the
/// round. Criterion measures one peer after another, so a slow spell of a
/// noisy machine lands on whichever peer is running; within a round every
/// peer sees nearly the same machine. Prints the median ratio per peer.
fn tiny_jobs_interleaved(_: &mut Criterion) {
    const ROUNDS: usize = 15;
    const JOBS: usize = 1_000_000;
    let workers = cpus();
    let floor = FloorPool::new(workers, 1024);
    let timed = brigade_pool(workers);
    let untimed = ThreadPool::builder()
        .workers(workers)
        .record_latencies(false)
        .build()
        .expect("pool");
    let rayon = rayon_pool(workers);
    let tp = threadpool::ThreadPool::new(workers);
    let batch = |execute: &dyn Fn(Box<dyn FnOnce() + Send>)| {
        let latch = Latch::new(JOBS);
        let start = Instant::now();
        for _ in 0..JOBS {
            let latch = Arc::clone(&latch);
            execute(Box::new(move || {
                black_box(0u64);
                latch.count_down();
            }));
        }
        latch.wait();
        start.elapsed().as_secs_f64()
    };
    // Every peer is handed the same boxed closure (and boxes it once more,
    // as it would any closure), so the comparison is of the pools.
    type Peer<'a> = (&'a str, Box<dyn Fn(Box<dyn FnOnce() + Send>) + 'a>);
    let peers: Vec<Peer<'_>> = vec![
        ("brigade execute", Box::new(|job| drop(timed.execute(job)))),
        (
            "brigade execute (latencies off)",
            Box::new(|job| drop(untimed.execute(job))),
        ),
        ("rayon spawn", Box::new(|job| rayon.spawn(job))),
        ("threadpool", Box::new(|job| tp.execute(job))),
    ];
    let mut ratios = vec![Vec::with_capacity(ROUNDS); peers.len()];
    for _ in 0..ROUNDS {
        let base = batch(&|job| floor.execute(job));
        for ((_, execute), ratios) in peers.iter().zip(&mut ratios) {
            ratios.push(batch(&**execute) / base);
        }
    }
    println!("\nA, interleaved ({ROUNDS} rounds of {JOBS} jobs): median ratio to the floor");
    for ((name, _), mut ratios) in peers.iter().zip(ratios) {
        ratios.sort_by(f64::total_cmp);
        println!(
            "  {name:<32} {:.2}  (quartiles {:.2} - {:.2})",
            ratios[ROUNDS / 2],
            ratios[ROUNDS / 4],
            ratios[3 * ROUNDS / 4]
        );
    }
    tp.join();
}

fn tiny_jobs(c: &mut Criterion) {
    fire_and_forget(c, "A: 1,000,000 tiny jobs", cpus(), 1_000_000, || {
        black_box(0u64);
    });
}

fn cpu_jobs(c: &mut Criterion) {
    static ITERATIONS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    ITERATIONS.get_or_init(|| calibrate(Duration::from_micros(50)));
    fire_and_forget(c, "B: 2,000 x 50 us CPU jobs", cpus(), 2_000, || {
        black_box(cpu_work(*ITERATIONS.get().unwrap_or(&1)));
    });
}

fn sleep_jobs(c: &mut Criterion) {
    fire_and_forget(c, "C: 2,000 x 1 ms sleeps, N = 64", 64, 2_000, || {
        std::thread::sleep(Duration::from_millis(1))
    });
}

/// D: with every worker idle (parked), the time from a submit to the job's
/// first instruction.
fn idle_latency(c: &mut Criterion) {
    let mut g = c.benchmark_group("D: idle submit -> start latency");
    g.sample_size(20);
    // Long enough between submissions that every worker is parked again.
    let settle = Duration::from_millis(2);
    let measure = |submit: &dyn Fn(Box<dyn FnOnce() + Send>), iters: u64| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            std::thread::sleep(settle);
            let (tx, rx) = crossbeam_channel::bounded(1);
            let start = Instant::now();
            submit(Box::new(move || {
                let _ = tx.send(Instant::now());
            }));
            if let Ok(started) = rx.recv() {
                total += started - start;
            }
        }
        total
    };
    let floor = FloorPool::new(cpus(), 1024);
    g.bench_function("floor: crossbeam recv()", |b| {
        b.iter_custom(|iters| measure(&|job| floor.execute(job), iters))
    });
    let pool = brigade_pool(cpus());
    g.bench_function("brigade execute", |b| {
        b.iter_custom(|iters| {
            measure(
                &|job| {
                    let _ = pool.execute(job);
                },
                iters,
            )
        });
    });
    let rayon = rayon_pool(cpus());
    g.bench_function("rayon spawn", |b| {
        b.iter_custom(|iters| measure(&|job| rayon.spawn(job), iters))
    });
    let tp = threadpool::ThreadPool::new(cpus());
    g.bench_function("threadpool", |b| {
        b.iter_custom(|iters| measure(&|job| tp.execute(job), iters))
    });
    g.finish();
}

/// E: 100,000 jobs that each return a value to the caller.
fn returning_values(c: &mut Criterion) {
    const JOBS: u64 = 100_000;
    let mut g = c.benchmark_group("E: 100,000 jobs returning values");
    g.throughput(Throughput::Elements(JOBS));
    g.sample_size(10);
    let workers = cpus();

    let floor = FloorPool::new(workers, 1024);
    g.bench_function("floor: crossbeam recv() + results channel", |b| {
        b.iter(|| {
            let (tx, rx) = crossbeam_channel::unbounded();
            for i in 0..JOBS {
                let tx = tx.clone();
                floor.execute(move || {
                    let _ = tx.send(i * 2);
                });
            }
            drop(tx);
            black_box(rx.iter().sum::<u64>())
        });
    });
    drop(floor);

    let pool = brigade_pool(workers);
    g.bench_function("brigade submit + JobHandle::join", |b| {
        b.iter(|| {
            let handles: Vec<_> = (0..JOBS)
                .filter_map(|i| pool.submit(move |_| i * 2).ok())
                .collect();
            black_box(
                handles
                    .into_iter()
                    .filter_map(|h| h.join().ok())
                    .sum::<u64>(),
            )
        });
    });
    drop(pool);

    g.bench_function("brigade WorkerPool results", |b| {
        b.iter_batched(
            || {
                WorkerPool::builder()
                    .workers(workers)
                    .build(|_ctx, i: u64| i * 2)
                    .expect("worker pool")
            },
            |pool| {
                let results = pool.results().clone();
                let reader = std::thread::spawn(move || {
                    results
                        .iter()
                        .filter_map(|out| out.result.ok())
                        .sum::<u64>()
                });
                for i in 0..JOBS {
                    let _ = pool.submit(i);
                }
                pool.close();
                let sum = reader.join().unwrap_or(0);
                drop(pool.join());
                black_box(sum)
            },
            criterion::BatchSize::PerIteration,
        );
    });

    let rayon = rayon_pool(workers);
    g.bench_function("rayon spawn + channel", |b| {
        b.iter(|| {
            let (tx, rx) = crossbeam_channel::unbounded();
            for i in 0..JOBS {
                let tx = tx.clone();
                rayon.spawn(move || {
                    let _ = tx.send(i * 2);
                });
            }
            drop(tx);
            black_box(rx.iter().sum::<u64>())
        });
    });
    drop(rayon);

    let tp = threadpool::ThreadPool::new(workers);
    g.bench_function("threadpool + channel", |b| {
        b.iter(|| {
            let (tx, rx) = crossbeam_channel::unbounded();
            for i in 0..JOBS {
                let tx = tx.clone();
                tp.execute(move || {
                    let _ = tx.send(i * 2);
                });
            }
            drop(tx);
            black_box(rx.iter().sum::<u64>())
        });
    });
    g.finish();
}

/// F: a map over 10,000,000 trivial items, collected in order.
fn map_items(c: &mut Criterion) {
    const ITEMS: u64 = 10_000_000;
    let mut g = c.benchmark_group("F: map over 10,000,000 items");
    g.throughput(Throughput::Elements(ITEMS));
    g.sample_size(10);
    let f = |x: u64| x.wrapping_mul(3) ^ 7;
    let pool = brigade_pool(cpus());
    g.bench_function(BenchmarkId::new("brigade map", "collect"), |b| {
        b.iter(|| {
            let out: Result<Vec<u64>, _> = pool.map(0..ITEMS, f).collect();
            black_box(out.map(|v| v.len()).unwrap_or(0))
        });
    });
    g.bench_function(BenchmarkId::new("brigade map", "collect_vec"), |b| {
        b.iter(|| {
            let out = pool.map(0..ITEMS, f).collect_vec();
            black_box(out.map(|v| v.len()).unwrap_or(0))
        });
    });
    let rayon = rayon_pool(cpus());
    g.bench_function(BenchmarkId::new("rayon par_iter", "collect"), |b| {
        b.iter(|| {
            let out: Vec<u64> = rayon.install(|| (0..ITEMS).into_par_iter().map(f).collect());
            black_box(out.len())
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    targets = tiny_jobs, tiny_jobs_interleaved, cpu_jobs, sleep_jobs, idle_latency, returning_values, map_items
}
criterion_main!(benches);
