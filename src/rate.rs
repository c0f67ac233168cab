//! Rate limiting: a token bucket, shared by clones, with waits that a
//! [`Context`] cuts short.
//!
//! A [`RateLimiter`] holds at most `burst` tokens, refills at `rate` tokens
//! per second and starts full. One token is permission for one event, so
//! over any long stretch of time at most `burst + rate × seconds` events get
//! through, and never more than `burst` at once. Clones share one bucket:
//! hand a clone to every worker and call [`wait`](RateLimiter::wait) before
//! each job, and the whole crew together keeps to the rate.
//!
//! The user contract (the three ways to ask for tokens, and what each does
//! in every state) is on [`RateLimiter`].
//!
//! # Design
//!
//! * **No timer, no thread.** The bucket stores its token count and when
//!   that count was last brought up to date; every call first adds what the
//!   elapsed time refilled. A limiter costs one allocation and one
//!   uncontended lock per call.
//! * **Reservations run the bucket into debt.** A request that cannot be met
//!   now takes its tokens anyway and is told when the refill will have paid
//!   for them. Later requests queue behind that debt, so waiters are served
//!   in the order they asked: a small request never overtakes an earlier
//!   large one. [`available`](RateLimiter::available) is negative while
//!   there is debt.
//! * **Waits are cancellable and check the deadline first.** `wait` sleeps
//!   with [`Context::sleep`], so cancellation cuts it short, and the
//!   reserved tokens go back to the bucket. A wait that could only end after
//!   the context's deadline fails at once, takes nothing and does not sleep.
//! * **Arithmetic with an explicit clock.** Every operation has an `_at`
//!   form that takes `now: Instant` ([`try_acquire_at`](RateLimiter::try_acquire_at),
//!   [`reserve_at`](RateLimiter::reserve_at), [`available_at`](RateLimiter::available_at),
//!   [`Reservation::delay_at`], [`Reservation::cancel_at`]); the ordinary
//!   forms pass [`Instant::now`]. The `_at` forms exist for deterministic
//!   tests and simulations. `now` should never go backwards; if it does, the
//!   limiter treats the call as if no time had passed since the previous
//!   one and measures later refills from the earlier `now`, so the overlap
//!   is refilled twice. That may let a few more events through than the
//!   rate allows; it never panics.
//! * **Rate and burst are fixed** at construction, so reading them takes no
//!   lock. To change the limit, build a new limiter and hand it out.
//!
//! # Differences from Go's `rate.Limiter`
//!
//! * Construction validates: a rate that is zero, negative, NaN or
//!   infinite, a zero interval for [`RateLimiter::every`], and a burst of 0
//!   are [`RateError`]s. Go accepts them all (a zero rate never refills, a
//!   zero burst refuses every event, `Every(0)` is `Inf`).
//!   [`RateLimiter::unlimited`] replaces `rate.Inf`.
//! * Asking for more than the burst is an error from `reserve_n`, where
//!   Go's `ReserveN` hands back a reservation that is not OK. `wait`
//!   fails as Go's `WaitN` does, and `try_acquire_n` answers `false` as
//!   `AllowN` does.
//! * There is no `OK()`: a [`Reservation`] only exists when it was granted.
//! * [`Reservation::cancel`] consumes the reservation, so it cannot give
//!   tokens back twice. Dropping a reservation does **not** cancel it,
//!   exactly as in Go: the tokens stay spent.
//! * Asking for zero tokens succeeds at once and leaves the bucket alone;
//!   Go makes `AllowN(t, 0)` wait for any debt to clear.
//! * No `SetLimit` / `SetBurst`: rate and burst are fixed (see above).
//! * [`RateLimiter::reserve_within`] is public; Go keeps the equivalent
//!   (`maxFutureReserve`) internal.

use std::fmt;
use std::time::{Duration, Instant};

use crate::context::Context;
use crate::error::RateError;
use crate::sync::{Arc, Mutex};

/// A token bucket that limits how often events happen; clones share it.
///
/// It holds at most [`burst`](Self::burst) tokens, refills at
/// [`rate`](Self::rate) tokens per second, and starts full. It is `Send`,
/// `Sync` and cheap to clone (one reference count), so every worker of a
/// pool can call [`wait`](Self::wait) on its own clone before each job, and
/// the crew together keeps to the rate.
///
/// Three ways to ask for tokens, differing in what they do when the bucket
/// is short:
///
/// | call | tokens short | `n` > burst |
/// |---|---|---|
/// | [`try_acquire`](Self::try_acquire) | `false`, nothing taken | `false` |
/// | [`wait`](Self::wait) | sleeps with [`Context::sleep`]; a cancel gives the tokens back; fails at once if the wait would pass the deadline | [`RateError::ExceedsBurst`] |
/// | [`reserve`](Self::reserve) | takes them now, and the [`Reservation`] says how long to wait | [`RateError::ExceedsBurst`] |
///
/// Requests that wait are served in the order they were made: a small
/// request never overtakes an earlier large one. Every operation has an
/// `_at` form taking an explicit `now`, for deterministic tests and
/// simulations; `now` must not go backwards (if it does, the call counts as
/// if no time had passed, which may let a few extra events through, and
/// never panics). The [rate limiting chapter](crate#rate-limiting) of the
/// crate docs lists the differences from Go's `rate.Limiter`.
///
/// # Examples
///
/// ```
/// use brigade::{Context, RateLimiter};
///
/// let limiter = RateLimiter::new(100.0, 2)?; // 100 per second, bursts of 2
/// assert!(limiter.try_acquire(1));
/// assert!(limiter.try_acquire(1));
/// assert!(!limiter.try_acquire(1)); // the burst is spent
///
/// let ctx = Context::new();
/// limiter.wait(&ctx, 1)?; // sleeps about 10 ms for the next token
/// # Ok::<(), brigade::RateError>(())
/// ```
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    limit: Limit,
    bucket: Mutex<Bucket>,
}

/// The fixed shape of a bucket.
#[derive(Debug, Clone, Copy)]
struct Limit {
    /// Tokens per second: finite and greater than zero, or `INFINITY` for
    /// [`RateLimiter::unlimited`].
    rate: f64,
    /// The most tokens the bucket holds, at least 1; `usize::MAX` when
    /// unlimited, so that no request exceeds it.
    burst: usize,
}

/// The moving part of a bucket, behind the limiter's lock.
#[derive(Debug)]
struct Bucket {
    /// Tokens at `last`. Never above the burst; negative while reservations
    /// are waiting for tokens the refill has not produced yet (debt).
    tokens: f64,
    /// When `tokens` was last brought up to date; `None` until the first
    /// request, while the bucket is still full from construction.
    last: Option<Instant>,
    /// The latest `ready_at` handed to a reservation (past or future): the
    /// back of the queue. `None` before the first reservation.
    last_event: Option<Instant>,
}

impl RateLimiter {
    /// A limiter of `rate` tokens per second with room for `burst` tokens,
    /// initially full.
    ///
    /// A fractional rate is fine: `0.5` is one token every two seconds.
    ///
    /// # Errors
    ///
    /// * [`RateError::InvalidRate`] if `rate` is NaN, infinite, zero or
    ///   negative (use [`unlimited`](Self::unlimited) for no limit);
    /// * [`RateError::ZeroBurst`] if `burst` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::RateLimiter;
    ///
    /// let limiter = RateLimiter::new(10.0, 1)?;
    /// assert_eq!((limiter.rate(), limiter.burst()), (10.0, 1));
    /// assert_eq!(
    ///     RateLimiter::new(0.0, 1).unwrap_err().to_string(),
    ///     "rate must be a finite number of tokens per second greater than 0, got 0; \
    ///      use RateLimiter::unlimited() for no limit",
    /// );
    /// # Ok::<(), brigade::RateError>(())
    /// ```
    pub fn new(rate: f64, burst: usize) -> Result<Self, RateError> {
        if !rate.is_finite() || rate <= 0.0 {
            return Err(RateError::InvalidRate(rate));
        }
        if burst == 0 {
            return Err(RateError::ZeroBurst);
        }
        Ok(Self::with_limit(Limit { rate, burst }))
    }

    /// A limiter that grants one token every `interval`, with room for
    /// `burst` tokens: `every(100ms, 1)` is `new(10.0, 1)`.
    ///
    /// # Errors
    ///
    /// * [`RateError::ZeroInterval`] if `interval` is zero (use
    ///   [`unlimited`](Self::unlimited) for no limit);
    /// * [`RateError::ZeroBurst`] if `burst` is 0.
    pub fn every(interval: Duration, burst: usize) -> Result<Self, RateError> {
        if interval.is_zero() {
            return Err(RateError::ZeroInterval);
        }
        Self::new(1.0 / interval.as_secs_f64(), burst)
    }

    /// A limiter that grants every request at once, whatever its size.
    ///
    /// Its [`rate`](Self::rate) is `f64::INFINITY`, its
    /// [`burst`](Self::burst) is `usize::MAX` and [`available`](Self::available)
    /// is `f64::INFINITY`. Useful where a limiter is always consulted but
    /// limiting is switched off by configuration.
    pub fn unlimited() -> Self {
        Self::with_limit(Limit {
            rate: f64::INFINITY,
            burst: usize::MAX,
        })
    }

    fn with_limit(limit: Limit) -> Self {
        let bucket = Bucket {
            tokens: limit.burst as f64,
            last: None,
            last_event: None,
        };
        Self {
            inner: Arc::new(Inner {
                limit,
                bucket: Mutex::new(bucket),
            }),
        }
    }

    /// Tokens per second; `f64::INFINITY` for an unlimited limiter.
    pub fn rate(&self) -> f64 {
        self.inner.limit.rate
    }

    /// The most tokens the bucket holds, and so the most one request may
    /// take; `usize::MAX` for an unlimited limiter.
    pub fn burst(&self) -> usize {
        self.inner.limit.burst
    }

    /// Tokens available now; see [`available_at`](Self::available_at).
    pub fn available(&self) -> f64 {
        self.available_at(Instant::now())
    }

    /// Tokens available at `now`, possibly fractional, at most the burst,
    /// and negative while reservations are waiting for tokens not refilled
    /// yet. `f64::INFINITY` for an unlimited limiter. Changes nothing.
    pub fn available_at(&self, now: Instant) -> f64 {
        let limit = self.inner.limit;
        if limit.is_unlimited() {
            return f64::INFINITY;
        }
        self.inner.bucket.lock().tokens_at(limit, now)
    }

    /// Takes `n` tokens if they are all available now; see
    /// [`try_acquire_at`](Self::try_acquire_at).
    #[inline]
    pub fn try_acquire(&self, n: usize) -> bool {
        self.try_acquire_at(Instant::now(), n)
    }

    /// Takes `n` tokens at `now` if they are all there; otherwise takes
    /// nothing and returns `false`. Never blocks.
    ///
    /// `false` also when `n` exceeds the burst (it never could succeed) or
    /// when earlier reservations left the bucket in debt; `true` for `n` = 0
    /// and always on an unlimited limiter. For drop-or-skip decisions; use
    /// [`wait`](Self::wait) to slow down instead.
    pub fn try_acquire_at(&self, now: Instant, n: usize) -> bool {
        n <= self.burst()
            && self
                .take(now, n, Some(Duration::ZERO))
                .is_ok_and(|ready_at| ready_at <= now)
    }

    /// Reserves `n` tokens now; see [`reserve_at`](Self::reserve_at).
    ///
    /// # Errors
    ///
    /// As for [`reserve_at`](Self::reserve_at).
    pub fn reserve(&self, n: usize) -> Result<Reservation, RateError> {
        self.reserve_at(Instant::now(), n)
    }

    /// Takes `n` tokens at `now`, going into debt if they are not there
    /// yet, and returns a [`Reservation`] that says when they are paid for.
    ///
    /// The caller should wait [`delay_at`](Reservation::delay_at) and then
    /// act, or [`cancel`](Reservation::cancel) to give the tokens back.
    /// Dropping the reservation does not cancel it. Later requests queue
    /// behind this one. Never blocks. `n` = 0 gives a reservation that is
    /// ready at once and holds nothing.
    ///
    /// # Errors
    ///
    /// * [`RateError::ExceedsBurst`] if `n` is more than the burst;
    /// * [`RateError::TooFarAhead`] if the debt is so deep (or the rate so
    ///   low) that the ready time cannot be represented.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use brigade::RateLimiter;
    ///
    /// let limiter = RateLimiter::new(10.0, 2)?;
    /// let t0 = Instant::now();
    /// let first = limiter.reserve_at(t0, 2)?; // the full burst: act now
    /// assert_eq!(first.delay_at(t0), Duration::ZERO);
    /// let second = limiter.reserve_at(t0, 2)?; // two more take 200 ms to refill
    /// assert_eq!(second.delay_at(t0), Duration::from_millis(200));
    /// second.cancel_at(t0); // changed our mind: the tokens go back
    /// assert_eq!(limiter.available_at(t0), 0.0);
    /// # Ok::<(), brigade::RateError>(())
    /// ```
    pub fn reserve_at(&self, now: Instant, n: usize) -> Result<Reservation, RateError> {
        self.reserve_inner(now, n, None)
    }

    /// Reserves `n` tokens now if they are ready within `max_wait`; see
    /// [`reserve_within_at`](Self::reserve_within_at).
    ///
    /// # Errors
    ///
    /// As for [`reserve_within_at`](Self::reserve_within_at).
    pub fn reserve_within(&self, n: usize, max_wait: Duration) -> Result<Reservation, RateError> {
        self.reserve_within_at(Instant::now(), n, max_wait)
    }

    /// Like [`reserve_at`](Self::reserve_at), but only if the tokens are
    /// ready within `max_wait` of `now`; otherwise takes nothing. This is
    /// the check [`wait`](Self::wait) makes against a context's deadline.
    ///
    /// # Errors
    ///
    /// * [`RateError::ExceedsBurst`] if `n` is more than the burst;
    /// * [`RateError::WouldExceedDeadline`] if the tokens would be ready
    ///   only after `max_wait`; the bucket is unchanged.
    pub fn reserve_within_at(
        &self,
        now: Instant,
        n: usize,
        max_wait: Duration,
    ) -> Result<Reservation, RateError> {
        self.reserve_inner(now, n, Some(max_wait))
    }

    fn reserve_inner(
        &self,
        now: Instant,
        n: usize,
        max_wait: Option<Duration>,
    ) -> Result<Reservation, RateError> {
        self.check_burst(n)?;
        let ready_at = self.take(now, n, max_wait)?;
        Ok(Reservation {
            limiter: self.clone(),
            tokens: n,
            ready_at,
        })
    }

    /// Blocks until `n` tokens are available and takes them.
    ///
    /// The tokens are reserved first and the sleep is [`Context::sleep`],
    /// so cancellation or the deadline cuts it short; the reserved tokens
    /// are then given back (as far as later reservations allow, see
    /// [`Reservation::cancel_at`]). If the tokens could only be ready after
    /// the context's deadline, it fails at once: no sleep, nothing taken.
    /// Waiters are served in the order they called. `n` = 0, or any `n` on
    /// an unlimited limiter, returns at once (after checking the context).
    /// No lock is held while sleeping.
    ///
    /// # Errors
    ///
    /// * [`RateError::ExceedsBurst`] if `n` is more than the burst, checked
    ///   before anything else;
    /// * [`RateError::Cancelled`] if the context is done before or during
    ///   the wait;
    /// * [`RateError::WouldExceedDeadline`] if the wait would run past the
    ///   context's deadline;
    /// * [`RateError::TooFarAhead`] if the ready time cannot be represented
    ///   and the context has no deadline.
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade::{Context, RateError, RateLimiter};
    ///
    /// let limiter = RateLimiter::new(0.01, 1)?; // one per 100 seconds
    /// let ctx = Context::new().with_timeout(Duration::from_secs(10));
    /// limiter.wait(&ctx, 1)?; // the initial token: no wait
    /// // The next token is 100 s away, past the deadline: fail at once.
    /// assert!(matches!(limiter.wait(&ctx, 1), Err(RateError::WouldExceedDeadline { .. })));
    /// # Ok::<(), RateError>(())
    /// ```
    pub fn wait(&self, ctx: &Context, n: usize) -> Result<(), RateError> {
        self.check_burst(n)?;
        ctx.check().map_err(RateError::Cancelled)?;
        if n == 0 || self.inner.limit.is_unlimited() {
            return Ok(());
        }
        let now = Instant::now();
        let max_wait = ctx.deadline().map(|d| d.saturating_duration_since(now));
        let reservation = self.reserve_inner(now, n, max_wait)?;
        let delay = reservation.delay_at(now);
        if delay.is_zero() {
            return Ok(());
        }
        Self::sleep_or_cancel(ctx, delay, reservation)
    }

    #[cold]
    fn sleep_or_cancel(
        ctx: &Context,
        delay: Duration,
        reservation: Reservation,
    ) -> Result<(), RateError> {
        ctx.sleep(delay).map_err(|reason| {
            // Nobody will act on these tokens: let other waiters have them.
            reservation.cancel();
            RateError::Cancelled(reason)
        })
    }

    fn check_burst(&self, n: usize) -> Result<(), RateError> {
        let burst = self.burst();
        if n > burst {
            return Err(RateError::ExceedsBurst {
                requested: n,
                burst,
            });
        }
        Ok(())
    }

    /// Takes `n` (≤ burst) tokens at `now` unless they would be ready only
    /// after `max_wait`; returns when they are ready.
    fn take(
        &self,
        now: Instant,
        n: usize,
        max_wait: Option<Duration>,
    ) -> Result<Instant, RateError> {
        let limit = self.inner.limit;
        if n == 0 || limit.is_unlimited() {
            return Ok(now);
        }
        self.inner.bucket.lock().take(limit, now, n, max_wait)
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("rate", &self.rate())
            .field("burst", &self.burst())
            .finish_non_exhaustive()
    }
}

/// Tokens taken from a [`RateLimiter`] ahead of time, and when they may be
/// used.
///
/// Made by [`RateLimiter::reserve`] and its relatives. Wait
/// [`delay`](Self::delay), then act; or [`cancel`](Self::cancel) to give the
/// tokens back. **Dropping a reservation does not cancel it**: the tokens
/// stay spent, as if the event happened (so forgetting to cancel errs on
/// the side of the limit, never past it).
///
/// # Examples
///
/// ```
/// use brigade::RateLimiter;
///
/// let limiter = RateLimiter::new(50.0, 5)?;
/// let reservation = limiter.reserve(5)?;
/// std::thread::sleep(reservation.delay()); // zero: the bucket started full
/// // ... act ...
/// # Ok::<(), brigade::RateError>(())
/// ```
#[derive(Debug)]
#[must_use = "a reservation holds tokens: wait for its delay and act, or cancel it"]
pub struct Reservation {
    limiter: RateLimiter,
    tokens: usize,
    /// When the refill will have paid for `tokens`.
    ready_at: Instant,
}

impl Reservation {
    /// How many tokens this reservation holds.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// When the reserved tokens may be used.
    pub fn ready_at(&self) -> Instant {
        self.ready_at
    }

    /// How long to wait from now; see [`delay_at`](Self::delay_at).
    pub fn delay(&self) -> Duration {
        self.delay_at(Instant::now())
    }

    /// How long to wait from `now` before acting; zero once ready.
    pub fn delay_at(&self, now: Instant) -> Duration {
        self.ready_at.saturating_duration_since(now)
    }

    /// Gives the tokens back now; see [`cancel_at`](Self::cancel_at).
    pub fn cancel(self) {
        self.cancel_at(Instant::now());
    }

    /// Gives the tokens back at `now`, as far as later reservations allow,
    /// for a caller who will not act after all.
    ///
    /// Gives nothing back once the reservation is ready (`now` past its
    /// ready time: the tokens count as used) or on an unlimited limiter. Otherwise
    /// the tokens that later reservations are already counting on stay
    /// taken, because moving those reservations earlier is not possible;
    /// the rest return to the bucket (up to the burst). If this was the
    /// latest reservation, the back of the queue moves forward too.
    pub fn cancel_at(self, now: Instant) {
        let limit = self.limiter.inner.limit;
        if self.tokens == 0 || limit.is_unlimited() || self.ready_at < now {
            return;
        }
        let mut bucket = self.limiter.inner.bucket.lock();
        bucket.give_back(limit, now, self.tokens, self.ready_at);
    }
}

impl Limit {
    fn is_unlimited(self) -> bool {
        self.rate.is_infinite()
    }

    /// How long the refill takes to produce `tokens` (> 0), or `None` if
    /// that is too long for a `Duration`.
    fn duration_for(self, tokens: f64) -> Option<Duration> {
        Duration::try_from_secs_f64(tokens / self.rate).ok()
    }
}

impl Bucket {
    /// Tokens at `now`: the stored count plus the refill since `last`,
    /// capped at the burst. A `now` before `last` counts as no time passed.
    fn tokens_at(&self, limit: Limit, now: Instant) -> f64 {
        let elapsed = self
            .last
            .map_or(Duration::ZERO, |last| now.saturating_duration_since(last));
        let refilled = self.tokens + elapsed.as_secs_f64() * limit.rate;
        refilled.min(limit.burst as f64)
    }

    /// The reservation step: takes `n` tokens at `now`, or fails and leaves
    /// the bucket unchanged. On success `now` becomes the reference point
    /// (even if it is earlier than the last one: see the module docs).
    fn take(
        &mut self,
        limit: Limit,
        now: Instant,
        n: usize,
        max_wait: Option<Duration>,
    ) -> Result<Instant, RateError> {
        let tokens = self.tokens_at(limit, now) - n as f64;
        let wait = if tokens < 0.0 {
            limit.duration_for(-tokens)
        } else {
            Some(Duration::ZERO)
        };
        let ready_at = wait.and_then(|wait| now.checked_add(wait));
        if let Some(max_wait) = max_wait {
            // An unrepresentable ready time is certainly past `now + max_wait`.
            let wait = wait.unwrap_or(Duration::MAX);
            if wait > max_wait || ready_at.is_none() {
                return Err(RateError::WouldExceedDeadline {
                    requested: n,
                    wait,
                    max_wait,
                });
            }
        }
        let ready_at = ready_at.ok_or(RateError::TooFarAhead { requested: n })?;
        self.tokens = tokens;
        self.last = Some(now);
        self.last_event = Some(ready_at);
        Ok(ready_at)
    }

    /// The cancellation step for a reservation of `tokens` ready at
    /// `ready_at` (not before `now`).
    fn give_back(&mut self, limit: Limit, now: Instant, tokens: usize, ready_at: Instant) {
        // Reservations made after this one were promised times computed
        // with these tokens gone; the refill between our ready time and the
        // back of the queue belongs to them, so that much stays taken.
        let behind = self
            .last_event
            .map_or(0.0, |back| seconds_between(ready_at, back));
        let restore = tokens as f64 - behind * limit.rate;
        if restore <= 0.0 {
            return;
        }
        self.tokens = (self.tokens_at(limit, now) + restore).min(limit.burst as f64);
        self.last = Some(now);
        if self.last_event == Some(ready_at) {
            // We were the back of the queue: it now ends where it ended
            // before we joined, unless that is already past.
            let before_us = limit
                .duration_for(tokens as f64)
                .and_then(|d| ready_at.checked_sub(d));
            if let Some(before_us) = before_us.filter(|&t| t >= now) {
                self.last_event = Some(before_us);
            }
        }
    }
}

/// `to - from` in seconds, negative when `to` is earlier.
fn seconds_between(from: Instant, to: Instant) -> f64 {
    match to.checked_duration_since(from) {
        Some(ahead) => ahead.as_secs_f64(),
        None => -from.saturating_duration_since(to).as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn limiter(rate: f64, burst: usize) -> RateLimiter {
        RateLimiter::new(rate, burst).expect("valid limiter")
    }

    #[test]
    fn refill_is_linear_and_capped_at_burst() {
        let lim = limiter(10.0, 3);
        let t0 = Instant::now();
        assert!(lim.try_acquire_at(t0, 3));
        let table = [(0, 0.0), (100, 1.0), (250, 2.5), (300, 3.0), (5_000, 3.0)];
        for (ms, want) in table {
            let got = lim.available_at(t0 + MS * ms);
            assert!((got - want).abs() < 1e-9, "at +{ms} ms: {got} != {want}");
        }
    }

    #[test]
    fn fractional_tokens_accumulate() {
        let lim = limiter(4.0, 1); // one token per 250 ms
        let t0 = Instant::now();
        assert!(lim.try_acquire_at(t0, 1));
        assert!(!lim.try_acquire_at(t0 + MS * 249, 1));
        assert!((lim.available_at(t0 + MS * 125) - 0.5).abs() < 1e-9);
        assert!(lim.try_acquire_at(t0 + MS * 250, 1));
    }

    #[test]
    fn failed_try_acquire_changes_nothing() {
        let lim = limiter(10.0, 2);
        let t0 = Instant::now();
        assert!(lim.try_acquire_at(t0, 1));
        assert!(!lim.try_acquire_at(t0, 2));
        assert!(!lim.try_acquire_at(t0, 3), "more than the burst");
        assert_eq!(lim.available_at(t0), 1.0);
    }

    #[test]
    fn reservations_queue_and_run_into_debt() {
        let lim = limiter(10.0, 2);
        let t0 = Instant::now();
        let a = lim.reserve_at(t0, 2).unwrap();
        let b = lim.reserve_at(t0, 2).unwrap();
        let c = lim.reserve_at(t0, 1).unwrap();
        assert_eq!(a.delay_at(t0), Duration::ZERO);
        assert_eq!(b.delay_at(t0), MS * 200);
        assert_eq!(c.delay_at(t0), MS * 300);
        assert_eq!(lim.available_at(t0), -3.0);
        assert_eq!(c.delay_at(t0 + MS * 400), Duration::ZERO);
    }

    #[test]
    fn cancel_of_last_reservation_restores_everything() {
        let lim = limiter(10.0, 2);
        let t0 = Instant::now();
        let _a = lim.reserve_at(t0, 2).unwrap();
        let b = lim.reserve_at(t0, 2).unwrap();
        b.cancel_at(t0 + MS * 100);
        assert_eq!(lim.available_at(t0 + MS * 100), 1.0);
        let again = lim.reserve_at(t0 + MS * 100, 2).unwrap();
        assert_eq!(again.ready_at(), t0 + MS * 200);
    }

    #[test]
    fn cancel_keeps_tokens_later_reservations_count_on() {
        let lim = limiter(10.0, 2);
        let t0 = Instant::now();
        let _a = lim.reserve_at(t0, 2).unwrap();
        let b = lim.reserve_at(t0, 2).unwrap(); // ready at +200 ms
        let _c = lim.reserve_at(t0, 1).unwrap(); // ready at +300 ms
        b.cancel_at(t0 + MS * 200); // one token of b's is c's refill: one comes back
        assert!((lim.available_at(t0 + MS * 200) - 0.0).abs() < 1e-9);
    }

    #[test]
    fn cancel_after_ready_or_of_nothing_is_a_no_op() {
        let lim = limiter(10.0, 2);
        let t0 = Instant::now();
        let _a = lim.reserve_at(t0, 2).unwrap();
        let b = lim.reserve_at(t0, 2).unwrap();
        b.cancel_at(t0 + MS * 300);
        assert_eq!(lim.available_at(t0 + MS * 300), 1.0);
        lim.reserve_at(t0, 0).unwrap().cancel_at(t0);
        assert_eq!(lim.available_at(t0 + MS * 300), 1.0);
    }

    #[test]
    fn max_wait_failure_leaves_bucket_unchanged() {
        let lim = limiter(10.0, 2);
        let t0 = Instant::now();
        assert!(lim.try_acquire_at(t0, 2));
        let err = lim.reserve_within_at(t0, 2, MS * 150).unwrap_err();
        assert_eq!(
            err,
            RateError::WouldExceedDeadline {
                requested: 2,
                wait: MS * 200,
                max_wait: MS * 150
            }
        );
        assert_eq!(lim.available_at(t0), 0.0);
        assert!(lim.reserve_within_at(t0, 2, MS * 200).is_ok());
    }

    #[test]
    fn backwards_now_counts_as_no_time_passed() {
        let lim = limiter(10.0, 3);
        let t0 = Instant::now();
        let t1 = t0 + MS * 100;
        assert!(lim.try_acquire_at(t1, 1));
        assert_eq!(lim.available_at(t0), 2.0);
        assert!(lim.try_acquire_at(t0, 2));
        assert_eq!(lim.available_at(t0), 0.0);
    }

    #[test]
    fn unrepresentable_wait_is_an_error_not_a_panic() {
        let lim = limiter(f64::MIN_POSITIVE, 1);
        let t0 = Instant::now();
        assert!(lim.try_acquire_at(t0, 1));
        assert!(!lim.try_acquire_at(t0, 1));
        assert_eq!(
            lim.reserve_at(t0, 1).unwrap_err(),
            RateError::TooFarAhead { requested: 1 }
        );
        assert!(matches!(
            lim.reserve_within_at(t0, 1, MS),
            Err(RateError::WouldExceedDeadline { .. })
        ));
    }

    #[test]
    fn unlimited_grants_everything() {
        let lim = RateLimiter::unlimited();
        let t0 = Instant::now();
        assert!(lim.try_acquire_at(t0, usize::MAX));
        assert_eq!(
            lim.reserve_at(t0, 1_000).unwrap().delay_at(t0),
            Duration::ZERO
        );
        assert_eq!(lim.available_at(t0), f64::INFINITY);
    }
}
