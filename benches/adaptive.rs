//! `Sizing::Adaptive` against fixed worker counts, on three workloads:
//!
//! * **cpu** — 40,000 jobs of ~50 µs compute: the best fixed N is the CPU
//!   count, and more threads only add switching;
//! * **io-1ms** — jobs that wait 1 ms (a sleep standing in for a network
//!   call) then parse for ~20 µs: throughput is N / 1 ms until the CPUs
//!   fill, so the best fixed N is the largest;
//! * **shifting** — the same jobs, but the wait goes 1 ms → 10 ms → 1 ms
//!   over three phases, with ~100 µs of parsing: the 1 ms phases saturate
//!   the CPUs at a moderate N, where extra threads cost switching, and the
//!   10 ms phase needs many threads. No single N is right for both.
//!
//! Every measurement builds a fresh pool (the controller starts from its
//! initial count each time, so its ramp-up is paid in every sample) and
//! pushes the whole workload through the bounded queue as fast as the pool
//! takes it. Criterion reports each configuration's throughput; at the end
//! a table gives each one's median as a ratio of the best fixed N's.
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
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use brigade::{Sizing, ThreadPool};
use common::{Latch, calibrate, cpu_work};
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};

const FIXED: [usize; 6] = [2, 4, 8, 16, 32, 64];
const ADAPTIVE: Sizing = Sizing::Adaptive { min: 2, max: 64 };

#[derive(Clone, Copy)]
struct Phase {
    jobs: usize,
    wait: Duration,
    compute: Duration,
}

struct Workload {
    name: &'static str,
    phases: Vec<Phase>,
}

impl Workload {
    fn jobs(&self) -> usize {
        self.phases.iter().map(|p| p.jobs).sum()
    }
}

fn workloads() -> Vec<Workload> {
    let phase = |jobs, wait_ms, compute_us| Phase {
        jobs,
        wait: Duration::from_millis(wait_ms),
        compute: Duration::from_micros(compute_us),
    };
    vec![
        Workload {
            name: "cpu",
            phases: vec![phase(40_000, 0, 50)],
        },
        Workload {
            name: "io-1ms",
            phases: vec![phase(150_000, 1, 20)],
        },
        Workload {
            name: "shifting",
            phases: vec![
                phase(30_000, 1, 100),
                phase(8_000, 10, 100),
                phase(30_000, 1, 100),
            ],
        },
    ]
}

/// Runs `workload` once on a fresh pool sized by `sizing`; returns the time
/// from the first submission to the last job's end.
fn run(workload: &Workload, sizing: Sizing, iterations_per_us: f64) -> Duration {
    let pool = ThreadPool::builder()
        .sizing(sizing)
        .queue_capacity(256)
        .build()
        .expect("pool");
    let latch = Latch::new(workload.jobs());
    let start = Instant::now();
    for phase in &workload.phases {
        let iterations = (phase.compute.as_secs_f64() * 1e6 * iterations_per_us) as u64;
        for _ in 0..phase.jobs {
            let latch = Arc::clone(&latch);
            let wait = phase.wait;
            pool.execute(move || {
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
                black_box(cpu_work(iterations));
                latch.count_down();
            })
            .expect("pool open");
        }
    }
    latch.wait();
    let took = start.elapsed();
    pool.join();
    took
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
        group.throughput(Throughput::Elements(workload.jobs() as u64));
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
                        let took = run(&workload, sizing, iterations_per_us);
                        results()
                            .lock()
                            .entry((workload.name, name.clone()))
                            .or_default()
                            .push(workload.jobs() as f64 / took.as_secs_f64());
                        total += took;
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
