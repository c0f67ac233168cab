//! The `cancel` row: 1,000 threads blocked on one brigade `Context`'s
//! `done()` channel, and the time from `ctx.cancel()` until every one has
//! woken; the peer wakes the same threads by hand, blocked on a crossbeam
//! `recv()` and woken by dropping the sender.

use std::thread;
use std::time::{Duration, Instant};

use brigade::Context;

use crate::common::Latch;
use crate::common::interleave::Row;

/// Threads blocked per run.
const WAITERS: usize = 1_000;
/// Each waiter's stack: it only blocks in a `recv`.
const STACK: usize = 128 * 1024;
/// The pause between the last waiter saying it is ready and the wake, so
/// it has gone from the latch into its `recv` and parked.
const SETTLE: Duration = Duration::from_millis(10);

/// Starts `WAITERS` threads that each block in `wait`; once all are
/// parked, calls `wake` and returns the time until every thread's `wait`
/// has returned. Spawning and joining the threads is not timed.
fn wake_all(wait: impl Fn() + Sync, wake: impl FnOnce()) -> Duration {
    let ready = Latch::new(WAITERS);
    let woken = Latch::new(WAITERS);
    thread::scope(|s| {
        for _ in 0..WAITERS {
            thread::Builder::new()
                .stack_size(STACK)
                .spawn_scoped(s, || {
                    ready.count_down();
                    wait();
                    woken.count_down();
                })
                .expect("spawn a waiter");
        }
        ready.wait();
        thread::sleep(SETTLE);
        let start = Instant::now();
        wake();
        woken.wait();
        start.elapsed()
    })
}

/// `cancel`: a context's cancel against a dropped sender.
pub(super) fn fan_out() -> Row {
    let brigade = || {
        let ctx = Context::new();
        wake_all(
            || {
                let _ = ctx.done().recv();
            },
            || ctx.cancel(),
        )
    };
    let by_hand = || {
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        wake_all(
            || {
                let _ = rx.recv();
            },
            move || drop(tx),
        )
    };
    Row::brigade(brigade).peer("crossbeam", by_hand)
}
