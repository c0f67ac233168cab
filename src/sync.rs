//! Crate-private synchronisation primitives, in one place so that model
//! checks can swap them.
//!
//! Normal builds use parking_lot's `Mutex` and `Condvar`, std's atomics and
//! threads, and crossbeam-channel directly: everything below is a
//! re-export (or, for [`thread::is_finished`], an inlined one-line
//! forward), so it costs nothing. Under `--cfg loom` the same names are
//! loom's, so that `tests/loom.rs` checks the code that ships — the
//! semaphore, the context tree, and a real `ThreadPool`: the crew's
//! submit, worker loop, cancel, drain and respawn, and the `JobHandle`
//! cell, and a scope's final wait:
//!
//! * `Mutex`, `Condvar`: loom's behind a parking_lot-shaped wrapper
//!   (`model` below); a timed wait is an untimed one (models have no
//!   clock);
//! * atomics: loom's;
//! * `channel`: a stand-in for crossbeam-channel over the shim's `Mutex`
//!   and loom's park/unpark (`sync/channel.rs`), with crossbeam's error
//!   types, because loom cannot see inside crossbeam's own lock-free code;
//! * `thread`: loom's threads (the crew's workers) and `thread_local!`
//!   (loom runs every modelled thread on one OS thread, so std's
//!   thread-locals would be shared between them);
//! * [`Spin`]: never spins, so a waiter blocks at once (a spin is only a
//!   latency trade, and each turn would be one more step for loom).
//!
//! `Arc` and `Weak` are std's in both builds (loom has no `Weak`; reference
//! counts are not what the models check). The deadline timer thread and the
//! adaptive sizing controller are built but unreachable in models, which
//! use no deadlines and a fixed worker count.

pub(crate) use std::sync::{Arc, Weak};

#[cfg(not(loom))]
pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence,
};
#[cfg(loom)]
pub(crate) use model::{Condvar, Mutex, MutexGuard};

/// crossbeam-channel, or under loom its stand-in (`sync/channel.rs`).
#[cfg(not(loom))]
pub(crate) use crossbeam_channel as channel;
#[cfg(loom)]
pub(crate) mod channel;

#[cfg(not(loom))]
pub(crate) use std::thread_local;

/// loom's `thread_local!`, which takes no `const` initialiser: the shim
/// drops the `const`.
#[cfg(loom)]
macro_rules! loom_thread_local {
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = const { $init:expr };) => {
        loom::thread_local!($(#[$attr])* $vis static $name: $t = $init);
    };
}
#[cfg(loom)]
pub(crate) use loom_thread_local as thread_local;

/// Threads: std's, or loom's under `--cfg loom`.
pub(crate) mod thread {
    #[cfg(not(loom))]
    pub(crate) use std::thread::{Builder, JoinHandle, Thread, current, park};

    #[cfg(loom)]
    pub(crate) use loom::thread::{Builder, JoinHandle, Thread, current, park};

    // A loom thread unwinds on the OS thread that runs it, so std's answer
    // is the right one in both builds.
    pub(crate) use std::thread::panicking;

    /// Whether the thread has finished. loom's handles cannot tell: there
    /// it is always `false`, so handles are kept until the crew joins them.
    #[inline]
    pub(crate) fn is_finished<T>(handle: &JoinHandle<T>) -> bool {
        #[cfg(not(loom))]
        return handle.is_finished();
        #[cfg(loom)]
        {
            let _ = handle;
            false
        }
    }
}

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
        // A model blocks at once: each turn of a spin would be one more
        // step for loom to interleave, and spinning changes no outcome.
        if cfg!(loom) {
            return false;
        }
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

        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner().unwrap_or_else(PoisonError::into_inner)
        }
    }

    impl<T: Default> Default for Mutex<T> {
        fn default() -> Self {
            Self::new(T::default())
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
