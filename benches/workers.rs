//! Throughput against the worker count N, for the three kinds of work the
//! sizing rules distinguish (the Go guide's "Pool Sizing in Depth"):
//!
//! * (a) CPU-bound jobs of ~50 µs: throughput rises until N reaches the
//!   CPU count, then stays flat (or drops);
//! * (b) sleep-bound jobs of 1 ms: throughput is N / 1 ms — Little's Law —
//!   until the job count, not N, is the limit;
//! * (c) mixed jobs, half compute and half sleep: in between.
//!
//! ```text
//! cargo bench --bench workers
//! ```
//!
//! Each group reports `Throughput::Elements` with N as the parameter, so
//! criterion's report (target/criterion/report/index.html) plots
//! throughput against N.

#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use brigade::ThreadPool;
use common::{Latch, calibrate, cpu_work};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const NS: [usize; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

fn sweep(c: &mut Criterion, group: &str, jobs: usize, work: Arc<dyn Fn() + Send + Sync>) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(jobs as u64));
    g.sample_size(10);
    for n in NS {
        let pool = ThreadPool::builder().workers(n).build().expect("pool");
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let latch = Latch::new(jobs);
                for _ in 0..jobs {
                    let (latch, work) = (Arc::clone(&latch), Arc::clone(&work));
                    let _ = pool.execute(move || {
                        work();
                        latch.count_down();
                    });
                }
                latch.wait();
            });
        });
    }
    g.finish();
}

fn cpu_bound(c: &mut Criterion) {
    let iterations = calibrate(Duration::from_micros(50));
    sweep(
        c,
        "a: CPU-bound 50 us jobs",
        400,
        Arc::new(move || {
            black_box(cpu_work(iterations));
        }),
    );
}

fn sleep_bound(c: &mut Criterion) {
    sweep(
        c,
        "b: sleep-bound 1 ms jobs",
        512,
        Arc::new(|| std::thread::sleep(Duration::from_millis(1))),
    );
}

fn mixed(c: &mut Criterion) {
    let iterations = calibrate(Duration::from_micros(500));
    sweep(
        c,
        "c: mixed 0.5 ms compute + 0.5 ms sleep",
        256,
        Arc::new(move || {
            black_box(cpu_work(iterations));
            std::thread::sleep(Duration::from_micros(500));
        }),
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = cpu_bound, sleep_bound, mixed
}
criterion_main!(benches);
