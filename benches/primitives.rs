//! The coordination primitives on their own: an uncontended semaphore
//! acquire and release, `Context::is_done` (a root, a polled child, a child
//! with a deadline), waking 1,000 threads blocked on one context, and a
//! rate limiter's `try_acquire`.
//!
//! ```text
//! cargo bench --bench primitives
//! ```

#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade::{Context, RateLimiter, Semaphore};
use common::Latch;
use criterion::{Criterion, criterion_group, criterion_main};
use crossbeam_channel::{Receiver, Sender};

fn semaphore(c: &mut Criterion) {
    let sem = Semaphore::new(8).expect("semaphore");
    c.bench_function("semaphore: uncontended acquire + release", |b| {
        b.iter(|| drop(black_box(sem.acquire(1))));
    });
    c.bench_function("semaphore: try_acquire(2) + release", |b| {
        b.iter(|| drop(black_box(sem.try_acquire(2))));
    });
}

fn context(c: &mut Criterion) {
    let root = Context::new();
    c.bench_function("context: is_done on a root", |b| {
        b.iter(|| black_box(&root).is_done())
    });
    let child = root.child().child();
    c.bench_function("context: is_done on an unregistered grandchild", |b| {
        b.iter(|| black_box(&child).is_done())
    });
    let timed = root.with_timeout(Duration::from_secs(3600));
    c.bench_function("context: is_done with a deadline", |b| {
        b.iter(|| black_box(&timed).is_done())
    });
    c.bench_function("context: child + drop", |b| {
        b.iter(|| drop(black_box(root.child())))
    });
}

/// Starts `count` threads with small stacks, each running `round` on
/// every value its sender delivers until the sender is dropped.
fn waiters<R: Send + 'static>(count: usize, round: fn(R)) -> Vec<Sender<R>> {
    (0..count)
        .map(|_| {
            let (tx, rx) = crossbeam_channel::unbounded::<R>();
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || rx.into_iter().for_each(round))
                .expect("waiter thread");
            tx
        })
        .collect()
}

/// 1,000 threads, each blocked on its own `done()` receiver of one shared
/// context; measured from `cancel()` until every thread has seen it.
fn cancel_fan_out(c: &mut Criterion) {
    const WAITERS: usize = 1_000;
    let mut g = c.benchmark_group("context: cancel 1,000 blocked waiters");
    g.sample_size(10);
    type Round = (Context, Arc<Latch>, Arc<Latch>);
    let senders = waiters(WAITERS, |(ctx, ready, woken): Round| {
        let done = ctx.done();
        ready.count_down();
        let _ = done.recv();
        woken.count_down();
    });
    g.bench_function("cancel -> all woken", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let ctx = Context::new();
                let (ready, woken) = (Latch::new(WAITERS), Latch::new(WAITERS));
                for tx in &senders {
                    let _ = tx.send((ctx.clone(), Arc::clone(&ready), Arc::clone(&woken)));
                }
                ready.wait();
                // Let the last registrants reach their blocking receive.
                std::thread::sleep(Duration::from_millis(5));
                let start = Instant::now();
                ctx.cancel();
                woken.wait();
                total += start.elapsed();
            }
            total
        });
    });
    drop(senders);
    // The floor for the same fan-out: 1,000 threads blocked in a plain
    // crossbeam `recv()`, woken by dropping their senders. Waking a
    // thousand OS threads on a few cores costs a thousand context
    // switches, whoever sends the signal.
    type FloorRound = (Receiver<()>, Arc<Latch>, Arc<Latch>);
    let floors = waiters(WAITERS, |(done, ready, woken): FloorRound| {
        ready.count_down();
        let _ = done.recv();
        woken.count_down();
    });
    g.bench_function("floor: drop 1,000 crossbeam senders -> all woken", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (ready, woken) = (Latch::new(WAITERS), Latch::new(WAITERS));
                let mut signals = Vec::with_capacity(WAITERS);
                for tx in &floors {
                    let (signal, done) = crossbeam_channel::bounded::<()>(0);
                    signals.push(signal);
                    let _ = tx.send((done, Arc::clone(&ready), Arc::clone(&woken)));
                }
                ready.wait();
                std::thread::sleep(Duration::from_millis(5));
                let start = Instant::now();
                drop(signals);
                woken.wait();
                total += start.elapsed();
            }
            total
        });
    });
    g.finish();
    drop(floors);
}

fn rate_limiter(c: &mut Criterion) {
    let limiter = RateLimiter::new(1e12, 1_000_000).expect("limiter");
    c.bench_function("rate limiter: try_acquire", |b| {
        b.iter(|| black_box(limiter.try_acquire(1)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = semaphore, context, cancel_fan_out, rate_limiter
}
criterion_main!(benches);
