//! [`Semaphore`]: a weighted, strictly FIFO counting semaphore whose waits
//! can be cancelled.
//!
//! # Design
//!
//! One mutex guards the count of free permits, a `closed` flag and the
//! queue of waiters. Each waiter has its own small mutex and condition
//! variable, so waking one waiter never wakes the others.
//!
//! * **Fairness (FIFO).** An acquire takes the fast path only when nobody
//!   is queued; otherwise it queues behind everyone. Releasing permits
//!   grants them to waiters strictly from the front, stopping at the first
//!   waiter that does not fit: a large request at the head blocks smaller
//!   later ones, so it cannot be starved (the read-write-lock argument of
//!   golang.org/x/sync).
//! * **Cancellation.** A waiter leaves the queue only under the semaphore's
//!   lock, either because it was granted (by a release) or because it gave
//!   up (cancellation, timeout, close). A cancellation merely *wakes* the
//!   waiter, through a [`Context`] done-hook; the waiter then takes the
//!   lock and leaves the queue. If a release granted it in the meantime, a
//!   cancelled waiter hands the permits straight back (so `Cancelled`
//!   always means the context won, as in Go since go.dev/issue/63615),
//!   while a timed-out one keeps them. A waiter that gives up from the
//!   head of the queue re-runs the grant loop, so the smaller waiters it
//!   was blocking are not left asleep with permits free.
//! * **Too large a request** fails at once rather than sleeping forever.
//!
//! Lock order: the semaphore's lock, then a waiter's. A done-hook takes
//! only the waiter's.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::context::Context;
use crate::error::{AcquireError, Cancelled, SemaphoreError};
use crate::sync::{Arc, Condvar, Mutex};

/// A weighted, FIFO, cancellable counting semaphore.
///
/// * **FIFO.** Acquires are granted strictly in arrival order: a large
///   request at the head of the queue blocks smaller ones behind it, so it
///   is never starved.
/// * **Cancellable.** [`acquire_ctx`](Self::acquire_ctx) wakes when its
///   context is done; if permits were granted at that same moment they go
///   back, so `Cancelled` always means nothing is held.
/// * **Fails fast on impossible requests**: more permits than the
///   semaphore has is an error at once, never a wait forever.
/// * No thread of its own: waiting is a condition variable per waiter, and
///   waking on a deadline (a context's) uses brigade's one shared timer
///   thread (see [`Context`]).
///
/// Cloning gives another handle to the same semaphore. Permits are
/// returned when the [`Permit`] is dropped; they are `'static`, so they can
/// move into jobs.
///
/// # Examples
///
/// ```
/// use brigade::{Semaphore, ThreadPool};
///
/// // At most 4 GiB of "memory" in use across all jobs.
/// let memory = Semaphore::new(4)?;
/// let pool = ThreadPool::builder().workers(4).build()?;
/// for gib in [1, 3, 2, 4, 1] {
///     let permit = memory.acquire(gib)?; // waits for room, in order
///     pool.execute(move || {
///         let _held = permit; // released when the job ends
///     }).map_err(|e| e.kind())?;
/// }
/// pool.join();
/// assert_eq!(memory.available(), 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Differences from Go's `semaphore.Weighted`
///
/// * Asking for more permits than the semaphore has fails at once with
///   [`AcquireError::TooMany`]; Go blocks until the context is done.
/// * A cancellable acquire on a context that is already done fails, even
///   when permits are free; Go may succeed.
/// * Permits are released by dropping a [`Permit`], not by a `Release(n)`
///   call, so releasing more than was acquired is impossible.
/// * [`close`](Self::close) wakes every waiter with
///   [`AcquireError::Closed`]; Go has no close.
/// * [`acquire_timeout`](Self::acquire_timeout) and an uncancellable
///   [`acquire`](Self::acquire) are offered beside the context form.
#[derive(Clone)]
pub struct Semaphore {
    inner: Arc<Inner>,
}

struct Inner {
    total: usize,
    state: Mutex<State>,
}

struct State {
    available: usize,
    closed: bool,
    queue: VecDeque<Arc<Waiter>>,
}

/// One blocked acquire.
struct Waiter {
    n: usize,
    signal: Mutex<Signal>,
    wake: Condvar,
}

/// What a waiter has been told. `granted` is set only under the
/// semaphore's lock, together with the waiter's removal from the queue.
#[derive(Default)]
struct Signal {
    granted: bool,
    interrupt: Option<Interrupt>,
}

#[derive(Clone, Copy)]
enum Interrupt {
    Cancelled(Cancelled),
    Closed,
}

/// Permits held from a [`Semaphore`]; they go back when this is dropped.
///
/// `'static` and `Send`: move it into the job that needs the permits.
#[must_use = "dropping a Permit releases its permits at once"]
pub struct Permit {
    inner: Arc<Inner>,
    n: usize,
}

/// How long an acquire may wait.
struct Wait<'a> {
    ctx: Option<&'a Context>,
    deadline: Option<Instant>,
    block: bool,
}

/// Where an acquire stands after its first look at the count.
enum Queued {
    /// The permits were free and are taken.
    Taken,
    /// In the queue, waiting for them.
    Waiting(Arc<Waiter>),
}

impl Semaphore {
    /// A semaphore with `permits` permits, all free.
    ///
    /// # Errors
    ///
    /// [`SemaphoreError::ZeroPermits`] if `permits` is zero: no acquire of
    /// one or more permits could ever succeed.
    pub fn new(permits: usize) -> Result<Self, SemaphoreError> {
        if permits == 0 {
            return Err(SemaphoreError::ZeroPermits);
        }
        let state = State {
            available: permits,
            closed: false,
            queue: VecDeque::new(),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                total: permits,
                state: Mutex::new(state),
            }),
        })
    }

    /// Acquires `n` permits at once, waiting in FIFO order as long as it
    /// takes. `n == 0` succeeds at once.
    ///
    /// # Errors
    ///
    /// [`AcquireError::TooMany`] at once if `n` exceeds the total;
    /// [`AcquireError::Closed`] if the semaphore is (or becomes) closed.
    pub fn acquire(&self, n: usize) -> Result<Permit, AcquireError> {
        self.acquire_with(
            n,
            Wait {
                ctx: None,
                deadline: None,
                block: true,
            },
        )
    }

    /// Acquires `n` permits, waiting in FIFO order until they are granted or
    /// `ctx` is done.
    ///
    /// # Errors
    ///
    /// [`AcquireError::Cancelled`] if `ctx` is done — already (even if
    /// permits are free), or while waiting (permits granted at the same
    /// moment are handed back); [`AcquireError::TooMany`];
    /// [`AcquireError::Closed`].
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::{AcquireError, Cancelled, Context, Semaphore};
    ///
    /// let sem = Semaphore::new(1)?;
    /// let held = sem.acquire(1)?;
    /// let ctx = Context::new();
    /// let waiter = std::thread::spawn({
    ///     let (sem, ctx) = (sem.clone(), ctx.clone());
    ///     move || sem.acquire_ctx(&ctx, 1).map(|_| ())
    /// });
    /// while sem.waiting() == 0 {
    ///     std::thread::yield_now();
    /// }
    /// ctx.cancel();
    /// assert_eq!(waiter.join().unwrap(), Err(AcquireError::Cancelled(Cancelled::Canceled)));
    /// drop(held);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_ctx(&self, ctx: &Context, n: usize) -> Result<Permit, AcquireError> {
        self.acquire_with(
            n,
            Wait {
                ctx: Some(ctx),
                deadline: None,
                block: true,
            },
        )
    }

    /// Acquires `n` permits, waiting in FIFO order at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`AcquireError::TimedOut`] if the permits were not granted in time;
    /// [`AcquireError::TooMany`]; [`AcquireError::Closed`].
    pub fn acquire_timeout(&self, n: usize, timeout: Duration) -> Result<Permit, AcquireError> {
        let deadline = Instant::now().checked_add(timeout);
        self.acquire_with(
            n,
            Wait {
                ctx: None,
                deadline,
                block: true,
            },
        )
    }

    /// Acquires `n` permits only if they are free now *and* nobody is
    /// queued (a free permit reserved for a waiter ahead is not taken).
    ///
    /// # Errors
    ///
    /// [`AcquireError::WouldBlock`] if it would have to wait;
    /// [`AcquireError::TooMany`]; [`AcquireError::Closed`].
    pub fn try_acquire(&self, n: usize) -> Result<Permit, AcquireError> {
        self.acquire_with(
            n,
            Wait {
                ctx: None,
                deadline: None,
                block: false,
            },
        )
    }

    /// Permits free now.
    pub fn available(&self) -> usize {
        self.inner.state.lock().available
    }

    /// The number of permits the semaphore was created with.
    pub fn total(&self) -> usize {
        self.inner.total
    }

    /// Acquires queued now.
    pub fn waiting(&self) -> usize {
        self.inner.state.lock().queue.len()
    }

    /// Closes the semaphore: every queued acquire wakes with
    /// [`AcquireError::Closed`], and later acquires fail the same way.
    /// Permits already held stay valid and are still returned on drop.
    /// Idempotent.
    pub fn close(&self) {
        let mut state = self.inner.state.lock();
        state.closed = true;
        for waiter in state.queue.drain(..) {
            waiter.interrupt(Interrupt::Closed);
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.state.lock().closed
    }

    fn acquire_with(&self, n: usize, wait: Wait<'_>) -> Result<Permit, AcquireError> {
        if n > self.inner.total {
            return Err(AcquireError::TooMany {
                requested: n,
                total: self.inner.total,
            });
        }
        if let Some(reason) = wait.ctx.and_then(Context::reason) {
            return Err(AcquireError::Cancelled(reason));
        }
        if n == 0 {
            return Ok(self.permit(0));
        }
        let waiter = match self.take_or_queue(n, wait.block)? {
            Queued::Taken => return Ok(self.permit(n)),
            Queued::Waiting(waiter) => waiter,
        };
        self.wait_queued(n, &waiter, wait)
    }

    /// Takes `n` permits at once if none are queued ahead and enough are
    /// free; otherwise joins the queue (or, not blocking, refuses).
    fn take_or_queue(&self, n: usize, block: bool) -> Result<Queued, AcquireError> {
        let mut state = self.inner.state.lock();
        if state.closed {
            return Err(AcquireError::Closed);
        }
        if state.queue.is_empty() && state.available >= n {
            state.available -= n;
            return Ok(Queued::Taken);
        }
        if !block {
            return Err(AcquireError::WouldBlock);
        }
        let waiter = Arc::new(Waiter {
            n,
            signal: Mutex::new(Signal::default()),
            wake: Condvar::new(),
        });
        state.queue.push_back(Arc::clone(&waiter));
        Ok(Queued::Waiting(waiter))
    }

    /// Waits in the queue until granted, cancelled, closed or past the
    /// deadline.
    fn wait_queued(
        &self,
        n: usize,
        waiter: &Arc<Waiter>,
        wait: Wait<'_>,
    ) -> Result<Permit, AcquireError> {
        let hooked = wait.ctx.map(|ctx| {
            let waiter = Arc::clone(waiter);
            (
                ctx,
                ctx.on_done(move |reason| waiter.interrupt(Interrupt::Cancelled(reason))),
            )
        });
        let woken = waiter.wait(wait.deadline);
        if let Some((ctx, hooked)) = hooked {
            ctx.remove_hook(hooked);
        }
        if woken.granted && woken.interrupt.is_none() {
            return Ok(self.permit(n));
        }
        // Leave the queue; a release may have granted the permits while we
        // were being woken. A timed-out waiter keeps such permits. A
        // cancelled one gives them back (handing them on to the waiters
        // behind it): the caller must be able to trust `Cancelled` to mean
        // the context won, as in Go since go.dev/issue/63615.
        let granted = woken.granted || self.leave(waiter);
        match woken.interrupt {
            None if granted => Ok(self.permit(n)),
            None => Err(AcquireError::TimedOut),
            Some(Interrupt::Cancelled(reason)) => {
                if granted {
                    drop(self.permit(n));
                }
                Err(AcquireError::Cancelled(reason))
            }
            Some(Interrupt::Closed) => Err(AcquireError::Closed),
        }
    }

    /// A permit for `n` permits already taken from the count.
    fn permit(&self, n: usize) -> Permit {
        Permit {
            inner: Arc::clone(&self.inner),
            n,
        }
    }

    /// Takes `waiter` out of the queue after it gave up. Returns `true` if
    /// it was granted in the meantime (then it keeps the permits).
    fn leave(&self, waiter: &Arc<Waiter>) -> bool {
        let mut state = self.inner.state.lock();
        if waiter.signal.lock().granted {
            return true;
        }
        let Some(position) = state.queue.iter().position(|w| Arc::ptr_eq(w, waiter)) else {
            // Closed: `close` already took it out.
            return false;
        };
        state.queue.remove(position);
        // A head waiter that gives up may have been blocking smaller
        // waiters behind it that fit in the free permits.
        if position == 0 {
            grant(&mut state);
        }
        false
    }
}

/// Grants permits to waiters from the front of the queue, stopping at the
/// first that does not fit (FIFO: no smaller request jumps ahead).
fn grant(state: &mut State) {
    while let Some(front) = state.queue.front() {
        if front.n > state.available {
            break;
        }
        state.available -= front.n;
        if let Some(waiter) = state.queue.pop_front() {
            let mut signal = waiter.signal.lock();
            signal.granted = true;
            waiter.wake.notify_one();
        }
    }
}

impl Waiter {
    /// Blocks until granted, interrupted, or past `deadline`.
    fn wait(&self, deadline: Option<Instant>) -> Signal {
        let mut signal = self.signal.lock();
        while !signal.granted && signal.interrupt.is_none() {
            match deadline {
                None => self.wake.wait(&mut signal),
                Some(deadline) => {
                    if self.wake.wait_until(&mut signal, deadline).timed_out() {
                        break;
                    }
                }
            }
        }
        Signal {
            granted: signal.granted,
            interrupt: signal.interrupt,
        }
    }

    /// Records why the waiter must stop waiting — even if a grant got
    /// there first: a cancellation that happened before the waiter could
    /// register its hook still wins (`acquire_with` hands the permits back).
    fn interrupt(&self, why: Interrupt) {
        let mut signal = self.signal.lock();
        if signal.interrupt.is_none() {
            signal.interrupt = Some(why);
            self.wake.notify_one();
        }
    }
}

impl Permit {
    /// How many permits this holds.
    pub fn count(&self) -> usize {
        self.n
    }

    /// Gives the permits up for good: they are not returned to the
    /// semaphore, whose capacity shrinks by as many.
    pub fn forget(mut self) {
        self.n = 0;
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.n == 0 {
            return;
        }
        let mut state = self.inner.state.lock();
        state.available += self.n;
        grant(&mut state);
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.state.lock();
        f.debug_struct("Semaphore")
            .field("total", &self.inner.total)
            .field("available", &state.available)
            .field("waiting", &state.queue.len())
            .field("closed", &state.closed)
            .finish()
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").field("count", &self.n).finish()
    }
}
