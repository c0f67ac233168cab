//! Crate-private synchronisation primitives, in one place so that model
//! checks can swap them.
//!
//! Normal builds use parking_lot's `Mutex` and `Condvar` and std's atomics
//! directly (the re-exports below cost nothing). Under `--cfg loom` the same
//! names are loom's primitives behind a parking_lot-shaped wrapper, so the
//! code under test is the code that ships: `tests/loom.rs` model-checks the
//! semaphore and the context tree through these types. `Arc` and `Weak`
//! are std's in both builds (loom has no `Weak`; reference counts are not
//! what the models check).

pub(crate) use std::sync::{Arc, Weak};

#[cfg(not(loom))]
pub(crate) use parking_lot::{Condvar, Mutex};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use model::{Condvar, Mutex};

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

/// loom's `Mutex` and `Condvar` with parking_lot's shape: `lock` returns
/// the guard (loom's poisoning is ignored: a panic inside a model already
/// fails it), and `Condvar::wait` takes the guard by `&mut`.
#[cfg(loom)]
mod model {
    use std::ops::{Deref, DerefMut};
    use std::sync::PoisonError;
    use std::time::Instant;

    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    /// `None` only while a `Condvar` wait holds the inner guard.
    #[derive(Debug)]
    pub(crate) struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().unwrap_or_else(PoisonError::into_inner)))
        }

        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock().ok().map(|guard| MutexGuard(Some(guard)))
        }

        /// Models have no clock: waits as long as it takes.
        pub(crate) fn try_lock_until(&self, _deadline: Instant) -> Option<MutexGuard<'_, T>> {
            Some(self.lock())
        }

        pub(crate) fn get_mut(&mut self) -> &mut T {
            self.0.get_mut().unwrap_or_else(PoisonError::into_inner)
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0.as_deref().expect("guard present outside a wait")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_deref_mut().expect("guard present outside a wait")
        }
    }

    #[derive(Debug)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    #[derive(Debug)]
    pub(crate) struct WaitTimeoutResult(bool);

    impl WaitTimeoutResult {
        pub(crate) fn timed_out(&self) -> bool {
            self.0
        }
    }

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self(loom::sync::Condvar::new())
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let inner = guard.0.take().expect("guard present");
            guard.0 = Some(self.0.wait(inner).unwrap_or_else(PoisonError::into_inner));
        }

        /// Models have no clock: a timed wait is an untimed one that may
        /// also wake spuriously, which callers handle anyway.
        pub(crate) fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _deadline: Instant,
        ) -> WaitTimeoutResult {
            self.wait(guard);
            WaitTimeoutResult(false)
        }

        pub(crate) fn notify_one(&self) -> bool {
            self.0.notify_one();
            true
        }

        pub(crate) fn notify_all(&self) -> usize {
            self.0.notify_all();
            0
        }
    }
}
