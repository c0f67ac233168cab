//! `Sizing::Adaptive` against fixed worker counts, on three workloads:
//!
//! * **cpu** — jobs of ~50 µs compute: the best fixed N is the CPU count,
//!   and more threads only add switching;
//! * **io-1ms** — jobs that wait 1 ms (a sleep standing in for a network
//!   call) then parse for ~20 µs: throughput is N / 1 ms until the CPUs
//!   fill, so the best fixed N is the largest;
//! * **shifting** — jobs that wait 1 ms, then 10 ms, then 1 ms again, over
//!   three equal spells, with ~100 µs of parsing: the 1 ms spells saturate
//!   the CPUs at a moderate N, and the 10 ms spell needs many threads. No
//!   single N is right for both.
//!
//! Each workload runs for a fixed time rather than a fixed number of jobs,
//! so that a poor N (two workers for 1 ms waits) costs the bench seconds,
//! not minutes: the producer pushes jobs through the bounded queue as fast
//! as the pool takes them until each spell's time is up, then the pool
//! drains and joins, and throughput is jobs ÷ time to the join. Every
//! measurement builds a fresh pool, so the controller's ramp-up from `min`
//! is paid in every sample. Criterion's times are normalised to
//! [`NOMINAL`] jobs, so its throughput figures are the real ones; at the
//! end a table gives each configuration's median as a ratio of the best
//! fixed N's. A full run takes about twelve minutes.
//!
//! ```text
//! cargo bench --bench adaptive
//! ```

#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

mod common;

use std::collections::BTreeMap;
use std::hint::black_box;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use brigade::{Sizing, ThreadPool};
use common::{calibrate, cpu_work};
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};

const FIXED: [usize; 8] = [2, 4, 8, 16, 24, 32, 48, 64];
const ADAPTIVE: Sizing = Sizing::Adaptive { min: 2, max: 64 };

/// Criterion is told each iteration is this many jobs; times are scaled
/// to match (see [`run`]).
const NOMINAL: u64 = 10_000;

/// One spell of a workload: for `length`, every job waits `wait` and then
/// computes for `compute`.
#[derive(Clone, Copy)]
struct Spell {
    length: Duration,
    wait: Duration,
    compute: Duration,
}

struct Workload {
    name: &'static str,
    spells: Vec<Spell>,
}

fn workloads() -> Vec<Workload> {
    let spell = |length_ms, wait_ms, compute_us| Spell {
        length: Duration::from_millis(length_ms),
        wait: Duration::from_millis(wait_ms),
        compute: Duration::from_micros(compute_us),
    };
    vec![
        Workload {
            name: "cpu",
            spells: vec![spell(2_000, 0, 50)],
        },
        Workload {
            name: "io-1ms",
            spells: vec![spell(2_000, 1, 20)],
        },
        Workload {
            name: "shifting",
            spells: vec![
                spell(1_000, 1, 100),
                spell(1_000, 10, 100),
                spell(1_000, 1, 100),
            ],
        },
    ]
}

/// Runs `workload` once on a fresh pool sized by `sizing`; returns the jobs
/// done and the time from the first submission to the pool's join, after
/// the last job.
fn run(workload: &Workload, sizing: Sizing, iterations_per_us: f64) -> (u64, Duration) {
    let pool = ThreadPool::builder()
        .sizing(sizing)
        .queue_capacity(256)
        .build()
        .expect("pool");
    let mut jobs = 0u64;
    let start = Instant::now();
    let mut end_of_spell = start;
    for spell in &workload.spells {
        let iterations = (spell.compute.as_secs_f64() * 1e6 * iterations_per_us) as u64;
        let wait = spell.wait;
        end_of_spell += spell.length;
        while Instant::now() < end_of_spell {
            pool.execute(move || {
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
                black_box(cpu_work(iterations));
            })
            .expect("pool open");
            jobs += 1;
        }
    }
    pool.join();
    (jobs, start.elapsed())
}

type Results = Mutex<BTreeMap<(&'static str, String), Vec<f64>>>;

fn results() -> &'static Results {
    static RESULTS: std::sync::OnceLock<Results> = std::sync::OnceLock::new();
    RESULTS.get_or_init(|| Mutex::new(BTreeMap::new()))
}

fn label(sizing: Sizing) -> String {
    match sizing {
        Sizing::Fixed(n) => format!("fixed-{n:02}"),
        _ => "adaptive".to_owned(),
    }
}

fn adaptive_vs_fixed(c: &mut Criterion) {
    let iterations_per_us = calibrate(Duration::from_millis(1)) as f64 / 1_000.0;
    for workload in workloads() {
        let mut group = c.benchmark_group(format!("adaptive/{}", workload.name));
        group.throughput(Throughput::Elements(NOMINAL));
        group.sampling_mode(SamplingMode::Flat);
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(1));
        group.measurement_time(Duration::from_secs(1));
        let configs = FIXED.iter().map(|&n| Sizing::Fixed(n)).chain([ADAPTIVE]);
        for sizing in configs {
            let name = label(sizing);
            group.bench_function(BenchmarkId::from_parameter(&name), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (jobs, took) = run(&workload, sizing, iterations_per_us);
                        results()
                            .lock()
                            .entry((workload.name, name.clone()))
                            .or_default()
                            .push(jobs as f64 / took.as_secs_f64());
                        total += took.mul_f64(NOMINAL as f64 / jobs.max(1) as f64);
                    }
                    total
                });
            });
        }
        group.finish();
    }
    summary();
}

/// Prints each configuration's median throughput and its ratio to the best
/// fixed N's, per workload.
fn summary() {
    let results = results().lock();
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("\nmedian throughput (jobs/s) and ratio to the best fixed N:");
    for workload in workloads() {
        let rows: Vec<(String, f64)> = results
            .iter()
            .filter(|((w, _), _)| *w == workload.name)
            .map(|((_, config), v)| (config.clone(), median(v)))
            .collect();
        let best = rows
            .iter()
            .filter(|(config, _)| config.starts_with("fixed"))
            .map(|(_, t)| *t)
            .fold(0.0, f64::max);
        for (config, throughput) in rows {
            println!(
                "  {:<9} {:<9} {:>9.0} jobs/s  {:.2}x",
                workload.name,
                config,
                throughput,
                throughput / best
            );
        }
    }
}

criterion_group!(benches, adaptive_vs_fixed);
criterion_main!(benches);
