//! Instructions per plain job, for valgrind's callgrind: the one figure on
//! this noisy VM that can tell a 2% change in a job's path ("what a user
//! did not ask for must cost nothing"), because it counts instructions,
//! not time.
//!
//! One worker waits behind a gate job while the caller submits `n` plain
//! jobs into a queue large enough for all of them, then drains them
//! without ever spinning or sleeping. Run under callgrind with
//! `--separate-threads=yes` for two values of `n`; the difference of a
//! thread's totals divided by the difference of `n` is that thread's
//! instructions per job, start-up and shutdown cancelled out:
//!
//! ```sh
//! cargo bench --bench instructions --no-run   # prints the binary's path
//! for n in 50000 100000; do
//!   valgrind --tool=callgrind --separate-threads=yes \
//!     --callgrind-out-file=cg-execute-$n.out BINARY execute $n
//! done
//! # thread 1 is the caller, thread 2 the worker:
//! grep -m1 summary cg-execute-*.out-01 cg-execute-*.out-02
//! ```
//!
//! `execute` submits `pool.execute` jobs, `floor` the same closures to a
//! hand-written pool (one worker `recv()`ing from a crossbeam channel); `high` and `keyed` the same
//! through `pool.lane(Lane::High)` and `pool.keyed(i % 1000)`; `submit`
//! submits `pool.submit` jobs and joins every handle after the gate opens
//! (the caller's count then includes joins that may sleep, so only the
//! worker's is exact).
//! The caller's figure also moves with glibc's `malloc_consolidate`,
//! which runs when the heap's state says so: compare brigade's own
//! functions there (`callgrind_annotate`), not the thread's total.
//! Without arguments (as `cargo test --benches` runs it) it runs 1,000
//! `execute` jobs and exits. Results are in `benches/README.md`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use brigade::{Lane, ThreadPool};

fn main() {
    let mut args = std::env::args().skip(1).filter(|arg| arg != "--bench");
    let mode = args.next().unwrap_or_else(|| "execute".into());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1_000);
    if mode == "floor" {
        floor(n);
        return;
    }
    let pool = ThreadPool::builder()
        .workers(1)
        .queue_capacity(n + 1)
        .build()
        .expect("a pool of one worker");
    let (open, gate) = crossbeam_channel::bounded::<()>(0);
    pool.execute(move || {
        let _ = gate.recv();
    })
    .expect("the pool is open");
    match mode.as_str() {
        "submit" => {
            let handles: Vec<_> = (0..n as u64)
                .map(|i| pool.submit(move |_| i * 2).expect("the pool is open"))
                .collect();
            drop(open);
            let sum: u64 = handles
                .into_iter()
                .map(|handle| handle.join().expect("the job ran"))
                .sum();
            black_box(sum);
        }
        "high" | "keyed" => {
            let done = Arc::new(AtomicUsize::new(0));
            for i in 0..n {
                let done = Arc::clone(&done);
                let job = move || {
                    done.fetch_add(1, Ordering::Relaxed);
                };
                let routed = if mode == "high" {
                    pool.lane(Lane::High)
                } else {
                    pool.keyed(i % 1_000)
                };
                routed.execute(job).expect("the pool is open");
            }
            drop(open);
        }
        _ => {
            let done = Arc::new(AtomicUsize::new(0));
            for _ in 0..n {
                let done = Arc::clone(&done);
                pool.execute(move || {
                    done.fetch_add(1, Ordering::Relaxed);
                })
                .expect("the pool is open");
            }
            drop(open);
        }
    }
    pool.join();
}

/// The same workload through a hand-written pool: one worker `recv()`ing
/// boxed closures from a crossbeam channel, the bar brigade's `execute` is
/// measured against.
fn floor(n: usize) {
    type Job = Box<dyn FnOnce() + Send>;
    let (tx, rx) = crossbeam_channel::bounded::<Job>(n + 1);
    let worker = std::thread::spawn(move || {
        while let Ok(job) = rx.recv() {
            job();
        }
    });
    let (open, gate) = crossbeam_channel::bounded::<()>(0);
    tx.send(Box::new(move || {
        let _ = gate.recv();
    }))
    .expect("the worker is running");
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..n {
        let done = Arc::clone(&done);
        tx.send(Box::new(move || {
            done.fetch_add(1, Ordering::Relaxed);
        }))
        .expect("the worker is running");
    }
    drop(open);
    drop(tx);
    worker.join().expect("the worker did not panic");
}
