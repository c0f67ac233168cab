//! Shared pieces of the benches: a countdown latch, calibrated CPU work,
//! the hand-rolled crossbeam `recv()` pool that is the floor every peer
//! is compared with, a minimal executor, and the interleaved ratio rows
//! of `peers.rs`.

#![allow(dead_code, reason = "each bench uses a different subset")]

/// `block_on`: the std-only executor the await rows poll handles with.
pub(crate) mod executor;
/// The harness that runs a row's entrants round by round and prints ratios.
pub(crate) mod interleave;
/// The interleaved rows themselves, one builder per row.
pub(crate) mod rows;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use brigade::ThreadPool;
use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex};

/// The machine's CPUs: every CPU-bound case uses this many workers.
pub(crate) fn cpus() -> usize {
    brigade::sizing::cpu_bound()
}

/// A brigade pool of `workers` threads, every other setting the default.
pub(crate) fn brigade_pool(workers: usize) -> ThreadPool {
    ThreadPool::builder()
        .workers(workers)
        .build()
        .expect("brigade pool")
}

/// A rayon pool of `workers` threads.
pub(crate) fn rayon_pool(workers: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .expect("rayon pool")
}

/// Counts jobs down to zero; `wait` returns when the last one is done.
pub(crate) struct Latch {
    left: AtomicUsize,
    done: Mutex<bool>,
    cv: Condvar,
}

impl Latch {
    pub(crate) fn new(count: usize) -> Arc<Self> {
        Arc::new(Self {
            left: AtomicUsize::new(count),
            done: Mutex::new(count == 0),
            cv: Condvar::new(),
        })
    }

    #[inline]
    pub(crate) fn count_down(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.done.lock() = true;
            self.cv.notify_all();
        }
    }

    pub(crate) fn wait(&self) {
        let mut done = self.done.lock();
        while !*done {
            self.cv.wait(&mut done);
        }
    }
}

/// Spins for about `micros` microseconds of CPU work: a fixed amount of
/// arithmetic calibrated once, so every peer runs exactly the same work.
pub(crate) fn cpu_work(iterations: u64) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..iterations {
        x = black_box(x.rotate_left(5) ^ i).wrapping_mul(0x2545_F491_4F6C_DD1D);
    }
    x
}

/// Iterations of [`cpu_work`] that take about `target` on this machine.
pub(crate) fn calibrate(target: Duration) -> u64 {
    let mut iterations = 1_000u64;
    loop {
        let start = Instant::now();
        black_box(cpu_work(iterations));
        let took = start.elapsed();
        if took >= Duration::from_millis(20) {
            return (iterations as f64 * target.as_secs_f64() / took.as_secs_f64()).max(1.0) as u64;
        }
        iterations *= 2;
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The floor: N threads in `while let Ok(job) = rx.recv() { job() }` over a
/// bounded crossbeam channel. No cancellation, no panics caught, no stats.
pub(crate) struct FloorPool {
    tx: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl FloorPool {
    pub(crate) fn new(workers: usize, capacity: usize) -> Self {
        let (tx, rx): (Sender<Job>, Receiver<Job>) = crossbeam_channel::bounded(capacity);
        let threads = (0..workers)
            .map(|_| {
                let rx = rx.clone();
                std::thread::spawn(move || {
                    while let Ok(job) = rx.recv() {
                        job();
                    }
                })
            })
            .collect();
        Self {
            tx: Some(tx),
            threads,
        }
    }

    #[inline]
    pub(crate) fn execute(&self, job: impl FnOnce() + Send + 'static) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Box::new(job));
        }
    }
}

impl Drop for FloorPool {
    fn drop(&mut self) {
        self.tx = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
