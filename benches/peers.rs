//! brigade side by side with what users would reach for instead, in one
//! run: rayon (`spawn` + latch, `scope`, `install` + `par_iter`), the
//! `threadpool` crate, `std::thread::scope`, and a plain crossbeam
//! `recv()` pool — the floor any pool pays for a hand-off.
//!
//! ```text
//! cargo bench --bench peers                           # criterion groups, then the interleaved rows
//! cargo bench --bench peers -- --quick                # only the interleaved rows, 5 rounds
//! cargo bench --bench peers -- --quick --rounds 9 pipeline3 scope
//! ```
//!
//! Criterion cases (the README's "Performance" table quotes ratios to the
//! floor): A. 1,000,000 tiny jobs; B. 2,000 × 50 µs CPU jobs; C. 2,000 ×
//! 1 ms sleeps at N = 64; D. idle submit → start latency; E. 100,000 jobs
//! returning values; F. `map` over 10,000,000 trivial items.
//!
//! Then the interleaved rows (`common/rows/`): each round runs every
//! entrant of a row once, back to back, and one line per row gives the
//! median per-round ratio of brigade's time to the fastest peer's and to
//! each peer's — the steadier figure on a noisy machine. `--quick` runs
//! only those (all, or the rows named), and replaces criterion's own
//! `--quick` for this bench.

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
use common::interleave;
use common::rows::{ROWS, Spec};
use common::{FloorPool, Latch, brigade_pool, calibrate, cpu_work, cpus, rayon_pool};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use rayon::prelude::*;

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

/// Rounds per interleaved row in a full run.
const ROUNDS: usize = 15;
/// Rounds per interleaved row with `--quick`, unless `--rounds` says.
const QUICK_ROUNDS: usize = 5;

/// Criterion's options that take a value (criterion 0.5): the word after
/// one of them is that value, not a filter.
const VALUED: &[&str] = &[
    "-c",
    "--color",
    "--colour",
    "-s",
    "--save-baseline",
    "-b",
    "--baseline",
    "--baseline-lenient",
    "--format",
    "--profile-time",
    "--load-baseline",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--plotting-backend",
    "--output-format",
];

/// The interleaved rows as criterion's last target, read from criterion's
/// own command line: named `interleaved/<row>` for its filter (and
/// `--exact`), listed by `--list`, run once each in test mode (`cargo test
/// --benches`), skipped by `--ignored` and `--profile-time`.
fn interleaved(_: &mut Criterion) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |flag: &str| args.iter().any(|arg| arg == flag);
    let filter = criterion_filter(&args);
    let id = |spec: &Spec| format!("interleaved/{}", spec.name);
    let rows: Vec<&Spec> = ROWS
        .iter()
        .filter(|spec| match filter {
            None => true,
            Some(filter) if has("--exact") => id(spec) == filter,
            Some(filter) => id(spec).contains(filter),
        })
        .collect();
    if has("--list") {
        rows.iter()
            .for_each(|spec| println!("{}: benchmark", id(spec)));
        return;
    }
    let profiling = args.iter().any(|arg| arg.starts_with("--profile-time"));
    if rows.is_empty() || has("--ignored") || profiling {
        return;
    }
    let rounds = if has("--bench") && !has("--test") {
        ROUNDS
    } else {
        1
    };
    println!("\n{}", interleave::header(rounds));
    rows.iter().for_each(|spec| spec.run(rounds));
}

/// Criterion's filter: its first argument that is neither an option nor
/// an option's value.
fn criterion_filter(args: &[String]) -> Option<&str> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if VALUED.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            return Some(arg);
        }
    }
    None
}

/// `--quick [--rounds N] [ROW…]`: runs the interleaved rows (all, or those
/// named) and prints the table, without criterion.
fn quick(args: &[String]) -> Result<(), String> {
    let mut rounds = QUICK_ROUNDS;
    let mut names = Vec::new();
    let mut args = args.iter().map(String::as_str);
    while let Some(arg) = args.next() {
        match arg {
            "--quick" | "--bench" => {}
            "--rounds" => rounds = parse_rounds(args.next())?,
            _ if arg.starts_with("--rounds=") => rounds = parse_rounds(arg.get(9..))?,
            "-h" | "--help" => {
                println!("{}", usage());
                return Ok(());
            }
            _ if arg.starts_with('-') => return Err(format!("unknown option {arg}")),
            _ => names.push(arg),
        }
    }
    let rows = select(&names)?;
    println!("{}", interleave::header(rounds));
    let start = Instant::now();
    rows.iter().for_each(|spec| spec.run(rounds));
    println!("({:.0} s)", start.elapsed().as_secs_f64());
    Ok(())
}

fn parse_rounds(value: Option<&str>) -> Result<usize, String> {
    match value.map(str::parse) {
        Some(Ok(rounds)) if rounds > 0 => Ok(rounds),
        _ => Err("--rounds takes a whole number of rounds, at least 1".to_owned()),
    }
}

/// The rows `names` select (see [`Spec::matches`]), in table order; all
/// of them if `names` is empty.
fn select(names: &[&str]) -> Result<Vec<&'static Spec>, String> {
    if let Some(unknown) = names
        .iter()
        .find(|name| !ROWS.iter().any(|spec| spec.matches(name)))
    {
        return Err(format!("no row named {unknown}"));
    }
    let selected = |spec: &&Spec| names.is_empty() || names.iter().any(|name| spec.matches(name));
    Ok(ROWS.iter().filter(selected).collect())
}

fn usage() -> String {
    let mut usage = format!(
        "usage: cargo bench --bench peers -- --quick [--rounds N] [ROW...]\n\
         runs the interleaved rows ({QUICK_ROUNDS} rounds unless --rounds says), all or those named;\n\
         a name before a '-' selects every row it starts (F: F-try_map and F-map)\n\nrows (brigade | peers):"
    );
    for spec in ROWS {
        usage.push_str(&format!("\n  {:<14} {}", spec.name, spec.what));
    }
    usage
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    targets = tiny_jobs, cpu_jobs, sleep_jobs, idle_latency, returning_values, map_items, interleaved
}

/// `criterion_main!`, written out so that `--quick` runs the interleaved
/// rows alone before criterion sees the arguments (criterion has a
/// `--quick` of its own, and would refuse `--rounds`).
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--quick") {
        if let Err(message) = quick(&args) {
            eprintln!("peers: {message}\n\n{}", usage());
            std::process::exit(2);
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
