//! Crate-private synchronisation primitives, in one place so that model
//! checks can swap them.

pub(crate) use parking_lot::{Condvar, Mutex};
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
pub(crate) use std::sync::{Arc, Weak};

/// Aligns a value to its own cache line pair, so counters written by
/// different threads do not false-share (128 bytes covers the adjacent-line
/// prefetcher on x86-64).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A bounded spin-then-yield backoff for fast paths that poll before they
/// block: spinning catches a job or a free slot that arrives within a few
/// microseconds without the cost of sleeping and being woken.
#[derive(Debug, Default)]
pub(crate) struct Spin {
    step: u32,
}

impl Spin {
    const SPIN_LIMIT: u32 = 6;
    const YIELD_LIMIT: u32 = 10;

    /// Waits a little longer than last time. Returns `false` once the budget
    /// is spent and the caller should block instead.
    #[inline]
    pub(crate) fn snooze(&mut self) -> bool {
        if self.step <= Self::SPIN_LIMIT {
            for _ in 0..1u32 << self.step {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
        self.step += 1;
        self.step <= Self::YIELD_LIMIT
    }
}
