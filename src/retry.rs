//! Retries with exponential backoff, bounded by a [`Context`].
//!
//! A [`Retry`] runs an operation up to a number of attempts, pausing
//! between them for a [`Backoff`] delay: exponential from an initial delay,
//! capped at a maximum, and by default drawn uniformly from zero up to that
//! ("full jitter"), so that many clients failing together do not retry in
//! lockstep. A retry-if predicate can mark errors as permanent.
//!
//! The overall time budget is the context's: every pause is
//! [`Context::sleep`], so cancellation or the deadline cuts it short, and a
//! pause that would end at or past the deadline is not started at all — the
//! run stops at once with [`RetryError::WouldExceedDeadline`], because the
//! next attempt could not begin in time anyway.
//!
//! ```
//! use std::time::Duration;
//! use brigade::{Backoff, Context, Retry};
//!
//! let retry = Retry::builder()
//!     .max_attempts(4)
//!     .backoff(Backoff::new(Duration::from_millis(1), Duration::from_millis(10)))
//!     .retry_if(|err: &String| err.starts_with("transient"))
//!     .build()?;
//!
//! let ctx = Context::new().with_timeout(Duration::from_secs(5));
//! let value = retry.run(&ctx, |_ctx, attempt| {
//!     if attempt < 3 { Err(format!("transient failure #{attempt}")) } else { Ok(attempt * 10) }
//! })?;
//! assert_eq!(value, 30);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Design
//!
//! * **Settings are validated once**, in [`RetryBuilder::build`], as the
//!   pool builders do; [`Backoff::validate`] is the same check for a
//!   backoff used on its own. A `Backoff`'s arithmetic never panics, even
//!   on settings that would not validate.
//! * **Jitter is a pure function of a random number.**
//!   [`Backoff::delay_for`]`(attempt, unit)` takes the random value in
//!   `[0, 1)` as an argument, so tests and simulations are deterministic;
//!   [`Backoff::delay`] draws it from a small per-thread SplitMix64
//!   generator seeded from the standard library's `RandomState`. No
//!   dependency is needed, and the jitter is not for cryptography.
//! * **No pause after the last attempt**, and none before the first.
//! * **`Backoff` is not a spin backoff.** Unlike `crossbeam_utils::Backoff`,
//!   which spins and yields for microseconds inside lock-free loops, this
//!   one sleeps for milliseconds to seconds between attempts at an
//!   operation that failed.
//!
//! # Differences from the Go guide's retry loop
//!
//! * The pause is [`Context::sleep`], not a naked `time.Sleep` (which the
//!   guide's own anti-pattern list warns about): cancellation wakes it.
//! * A pause that would end past the deadline is skipped and the run stops
//!   at once, instead of sleeping into a deadline that then fails the next
//!   attempt.
//! * Full jitter by default, and a cap on the delay.
//! * A retry-if predicate stops at permanent errors.
//! * No pause after the final failure (the guide's loop sleeps once more
//!   before returning).
//! * The operation learns its attempt number, and the error says how many
//!   attempts ran and carries the last error; the guide returns the last
//!   error alone.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::context::Context;
use crate::error::{RetryError, RetrySettingsError};
use crate::sync::Arc;

/// Exponential backoff with a cap and optional full jitter.
///
/// The pause after failed attempt `k` (from 1) is at most
/// `initial × multiplier^(k-1)`, capped at `max` (the
/// [`ceiling`](Self::ceiling)). With jitter on (the default) it is drawn
/// uniformly from `[0, ceiling]`; with jitter off it is the ceiling
/// exactly. The default is 100 ms doubling up to 10 s, with jitter.
///
/// A `Backoff` is a plain value (`Copy`); setters consume and return it.
/// Its settings are checked by [`RetryBuilder::build`] or
/// [`validate`](Self::validate), and its arithmetic never panics, whatever
/// the settings.
///
/// This is not a spin backoff: unlike `crossbeam_utils::Backoff`, which
/// spins and yields for microseconds inside lock-free loops, it gives
/// pauses of milliseconds to seconds between attempts at a failing
/// operation, to be slept (as [`Retry::run`] does, with [`Context::sleep`]).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade::Backoff;
///
/// let ms = Duration::from_millis;
/// let backoff = Backoff::new(ms(100), ms(1_000)).multiplier(3.0).jitter(false);
/// let pauses: Vec<_> = (1..=4).map(|k| backoff.delay(k)).collect();
/// assert_eq!(pauses, [ms(100), ms(300), ms(900), ms(1_000)]);
///
/// // With jitter, the pause is the ceiling scaled by a random value in [0, 1).
/// let jittered = backoff.jitter(true);
/// assert_eq!(jittered.delay_for(2, 0.5), ms(150));
/// assert!(jittered.delay(4) <= ms(1_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The ceiling after the first failure; greater than zero once valid.
    initial: Duration,
    /// The cap on every ceiling; at least `initial` once valid.
    max: Duration,
    /// Growth per attempt; finite and at least 1 once valid.
    multiplier: f64,
    /// Draw the pause from `[0, ceiling]` instead of using the ceiling.
    jitter: bool,
}

impl Default for Backoff {
    /// 100 ms, doubling, capped at 10 s, with full jitter.
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(10))
    }
}

impl Backoff {
    /// A backoff starting at `initial` and capped at `max`, doubling each
    /// attempt, with full jitter.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            multiplier: 2.0,
            jitter: true,
        }
    }

    /// Sets how much the ceiling grows per attempt (default 2.0; 1.0 gives
    /// a constant ceiling). Checked by [`validate`](Self::validate).
    #[must_use]
    pub fn multiplier(mut self, factor: f64) -> Self {
        self.multiplier = factor;
        self
    }

    /// Turns full jitter on (the default) or off. Off, every pause is
    /// exactly its [`ceiling`](Self::ceiling).
    #[must_use]
    pub fn jitter(mut self, on: bool) -> Self {
        self.jitter = on;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// * [`RetrySettingsError::ZeroInitialDelay`] if the initial delay is zero;
    /// * [`RetrySettingsError::InvertedDelays`] if the cap is below the
    ///   initial delay;
    /// * [`RetrySettingsError::InvalidMultiplier`] if the multiplier is NaN,
    ///   infinite or below 1.
    pub fn validate(&self) -> Result<(), RetrySettingsError> {
        if self.initial.is_zero() {
            return Err(RetrySettingsError::ZeroInitialDelay);
        }
        if self.max < self.initial {
            return Err(RetrySettingsError::InvertedDelays {
                initial: self.initial,
                max: self.max,
            });
        }
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(RetrySettingsError::InvalidMultiplier(self.multiplier));
        }
        Ok(())
    }

    /// The longest pause after failed attempt `attempt` (from 1; 0 counts
    /// as 1): `initial × multiplier^(attempt-1)`, capped at `max`.
    ///
    /// Exact for whole-number multipliers while the value is below about
    /// 100 days; the cap is returned once the growth passes it (or if the
    /// settings are invalid and the arithmetic gives NaN).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let nanos = self.initial.as_nanos() as f64 * self.multiplier.powi(exponent);
        if nanos.is_nan() || nanos >= self.max.as_nanos() as f64 {
            return self.max;
        }
        from_nanos_f64(nanos)
    }

    /// The pause after failed attempt `attempt` (from 1), given a random
    /// `unit` in `[0, 1)`: `ceiling × unit` with jitter, the ceiling
    /// without (then `unit` is ignored). Pure, for deterministic tests.
    ///
    /// A `unit` outside `[0, 1]` is clamped into it (NaN counts as 0), so
    /// the result never exceeds the ceiling.
    pub fn delay_for(&self, attempt: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(attempt);
        if !self.jitter {
            return ceiling;
        }
        let unit = if unit.is_nan() {
            0.0
        } else {
            unit.clamp(0.0, 1.0)
        };
        from_nanos_f64((ceiling.as_nanos() as f64 * unit).floor()).min(ceiling)
    }

    /// The pause after failed attempt `attempt` (from 1), with fresh
    /// randomness when jitter is on.
    pub fn delay(&self, attempt: u32) -> Duration {
        if self.jitter {
            self.delay_for(attempt, random_unit())
        } else {
            self.ceiling(attempt)
        }
    }
}

/// Runs an operation until it succeeds, with a [`Backoff`] between
/// attempts, within a [`Context`]'s lifetime.
///
/// Built by [`Retry::builder`]; cheap to clone, and `Send + Sync`, so one
/// policy can serve every worker of a pool. The error type `E` is the
/// operation's, fixed by the retry-if predicate (or by the first
/// [`run`](Self::run) when there is none).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade::{Backoff, Context, Retry, RetryError};
///
/// let retry = Retry::builder()
///     .max_attempts(3)
///     .backoff(Backoff::new(Duration::from_millis(1), Duration::from_millis(5)))
///     .build()?;
/// let result: Result<(), _> = retry.run(&Context::new(), |_ctx, _attempt| Err("down"));
/// match result {
///     Err(RetryError::Exhausted { attempts, error }) => assert_eq!((attempts, error), (3, "down")),
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), brigade::RetrySettingsError>(())
/// ```
pub struct Retry<E> {
    /// At least 1.
    max_attempts: u32,
    /// Valid.
    backoff: Backoff,
    /// `None` retries every error.
    retry_if: Option<Predicate<E>>,
}

type Predicate<E> = Arc<dyn Fn(&E) -> bool + Send + Sync>;

impl<E> Retry<E> {
    /// A builder with the defaults: 3 attempts, [`Backoff::default`], every
    /// error retried.
    pub fn builder() -> RetryBuilder<E> {
        RetryBuilder::default()
    }

    /// The most times [`run`](Self::run) calls the operation.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The backoff between attempts.
    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    /// Calls `op(ctx, attempt)` (attempt from 1) until it returns `Ok`, and
    /// returns that value.
    ///
    /// After a failure it stops if the predicate refuses the error or the
    /// attempts are used up; otherwise it draws the next pause and sleeps
    /// it with [`Context::sleep`]. The context is checked before every
    /// attempt and every pause. A pause that would end at or past the
    /// context's deadline is not started. The operation receives the same
    /// context, to pass on to whatever it blocks on.
    ///
    /// # Errors
    ///
    /// * [`RetryError::Exhausted`] when every attempt failed;
    /// * [`RetryError::NotRetryable`] when the predicate refused an error;
    /// * [`RetryError::Cancelled`] when the context was done before an
    ///   attempt or during a pause (then `last` is the previous error, if
    ///   any attempt ran);
    /// * [`RetryError::WouldExceedDeadline`] when the next pause would end
    ///   at or past the context's deadline.
    pub fn run<T, F>(&self, ctx: &Context, mut op: F) -> Result<T, RetryError<E>>
    where
        F: FnMut(&Context, u32) -> Result<T, E>,
    {
        let mut last = None;
        // `pause_after` ends the run at `max_attempts`, so this never wraps.
        let mut attempt = 0;
        loop {
            if let Err(reason) = ctx.check() {
                return Err(RetryError::Cancelled {
                    attempts: attempt,
                    reason,
                    last,
                });
            }
            attempt += 1;
            match op(ctx, attempt) {
                Ok(value) => return Ok(value),
                Err(error) => last = Some(self.pause_after(ctx, attempt, error)?),
            }
        }
    }

    /// Decides what follows failed attempt `attempt`: an error that ends
    /// the run, or, after the pause, the attempt's error back when another
    /// attempt may start.
    fn pause_after(&self, ctx: &Context, attempt: u32, error: E) -> Result<E, RetryError<E>> {
        let (error, delay) = self.decide(ctx, attempt, error)?;
        if !delay.is_zero() {
            if let Err(reason) = ctx.sleep(delay) {
                return Err(RetryError::Cancelled {
                    attempts: attempt,
                    reason,
                    last: Some(error),
                });
            }
        }
        Ok(error)
    }

    /// What follows failed attempt `attempt` under `ctx`: an error that
    /// ends the run, or the pause before the next attempt (with the
    /// attempt's error back). `run` sleeps the pause; a pool's retrying
    /// job (`ThreadPool::submit_retrying`) waits it on the pool's timer.
    pub(crate) fn decide(
        &self,
        ctx: &Context,
        attempt: u32,
        error: E,
    ) -> Result<(E, Duration), RetryError<E>> {
        if self.retry_if.as_ref().is_some_and(|retry| !retry(&error)) {
            return Err(RetryError::NotRetryable {
                attempts: attempt,
                error,
            });
        }
        if attempt >= self.max_attempts {
            return Err(RetryError::Exhausted {
                attempts: attempt,
                error,
            });
        }
        if let Err(reason) = ctx.check() {
            return Err(RetryError::Cancelled {
                attempts: attempt,
                reason,
                last: Some(error),
            });
        }
        let delay = self.backoff.delay(attempt);
        if ctx.remaining().is_some_and(|left| delay >= left) {
            return Err(RetryError::WouldExceedDeadline {
                attempts: attempt,
                error,
                delay,
            });
        }
        Ok((error, delay))
    }
}

impl<E> Clone for Retry<E> {
    fn clone(&self) -> Self {
        Self {
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            retry_if: self.retry_if.clone(),
        }
    }
}

impl<E> fmt::Debug for Retry<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("retry_if", &self.retry_if.as_ref().map(|_| "<closure>"))
            .finish()
    }
}

/// Settings for a [`Retry`], checked by [`build`](Self::build).
///
/// Defaults: 3 attempts, [`Backoff::default`], every error retried.
#[must_use = "a builder does nothing until build() is called"]
pub struct RetryBuilder<E> {
    max_attempts: u32,
    backoff: Backoff,
    retry_if: Option<Predicate<E>>,
}

impl<E> Default for RetryBuilder<E> {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: Backoff::default(),
            retry_if: None,
        }
    }
}

impl<E> RetryBuilder<E> {
    /// The most times the operation runs, the first attempt included; at
    /// least 1 (1 means no retries).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// The backoff between attempts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Retries only errors for which `predicate` returns `true`; any other
    /// error ends the run with [`RetryError::NotRetryable`]. Without one,
    /// every error is retried.
    ///
    /// The predicate is shared by clones of the `Retry` and may be called
    /// from several threads at once.
    pub fn retry_if<P>(mut self, predicate: P) -> Self
    where
        P: Fn(&E) -> bool + Send + Sync + 'static,
    {
        self.retry_if = Some(Arc::new(predicate));
        self
    }

    /// Checks the settings and builds the [`Retry`].
    ///
    /// # Errors
    ///
    /// * [`RetrySettingsError::ZeroAttempts`] for 0 attempts;
    /// * the errors of [`Backoff::validate`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade::{Backoff, Retry};
    ///
    /// let err = Retry::<()>::builder()
    ///     .backoff(Backoff::new(Duration::from_secs(2), Duration::from_secs(1)))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "max backoff delay must be at least the initial delay, got max 1s < initial 2s",
    /// );
    /// ```
    pub fn build(self) -> Result<Retry<E>, RetrySettingsError> {
        if self.max_attempts == 0 {
            return Err(RetrySettingsError::ZeroAttempts);
        }
        self.backoff.validate()?;
        Ok(Retry {
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            retry_if: self.retry_if,
        })
    }
}

impl<E> fmt::Debug for RetryBuilder<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBuilder")
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("retry_if", &self.retry_if.as_ref().map(|_| "<closure>"))
            .finish()
    }
}

/// A duration from a non-negative, finite nanosecond count no larger than
/// `Duration::MAX` holds (negative counts give zero).
fn from_nanos_f64(nanos: f64) -> Duration {
    // Float-to-int `as` saturates, and NaN becomes 0.
    let nanos = nanos as u128;
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    // The remainder is below 10^9, so it fits and cannot carry into secs.
    Duration::new(secs, (nanos % 1_000_000_000) as u32)
}

/// A random value in `[0, 1)` from this thread's SplitMix64 generator.
fn random_unit() -> f64 {
    thread_local! {
        /// SplitMix64 state: a counter stepping by the golden gamma, seeded
        /// from the standard library's randomly keyed hasher.
        static STATE: Cell<u64> = Cell::new(RandomState::new().build_hasher().finish());
    }
    let state = STATE.with(|state| {
        let next = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(next);
        next
    });
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // The top 53 bits, scaled: every value is below 1.
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    #[cfg_attr(
        miri,
        ignore = "compares exact results of powf, which Miri perturbs on purpose"
    )]
    fn ceilings_grow_and_cap() {
        let backoff = Backoff::new(MS * 100, MS * 1_000).jitter(false);
        let table = [(0, 100), (1, 100), (2, 200), (3, 400), (4, 800), (5, 1_000)];
        for (attempt, ms) in table {
            assert_eq!(
                backoff.delay_for(attempt, 0.7),
                MS * ms,
                "attempt {attempt}"
            );
        }
        assert_eq!(backoff.ceiling(u32::MAX), MS * 1_000);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "compares exact results of powf, which Miri perturbs on purpose"
    )]
    fn jitter_scales_the_ceiling() {
        let backoff = Backoff::new(MS * 100, MS * 1_000);
        assert_eq!(backoff.delay_for(3, 0.0), Duration::ZERO);
        assert_eq!(backoff.delay_for(3, 0.25), MS * 100);
        assert_eq!(backoff.delay_for(3, 2.0), MS * 400, "clamped to 1");
        assert_eq!(backoff.delay_for(3, f64::NAN), Duration::ZERO);
        assert_eq!(backoff.delay_for(3, -1.0), Duration::ZERO);
    }

    #[test]
    fn invalid_settings_never_panic() {
        let weird = [
            Backoff::new(Duration::ZERO, Duration::ZERO).multiplier(f64::INFINITY),
            Backoff::new(MS, Duration::MAX).multiplier(f64::NAN),
            Backoff::new(MS * 5, MS).multiplier(-3.0),
            Backoff::new(Duration::MAX, Duration::MAX).multiplier(1e300),
        ];
        for backoff in weird {
            for attempt in [0, 1, 2, 3, 64, u32::MAX] {
                for unit in [0.0, 0.5, 0.999_999, f64::NAN] {
                    let _ = backoff.delay_for(attempt, unit);
                }
                let _ = backoff.delay(attempt);
            }
        }
    }

    #[test]
    fn random_unit_stays_in_range_and_varies() {
        let draws: Vec<f64> = (0..10_000).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((0.45..0.55).contains(&mean), "mean {mean}");
    }

    #[test]
    fn from_nanos_f64_edges() {
        assert_eq!(from_nanos_f64(-5.0), Duration::ZERO);
        assert_eq!(from_nanos_f64(f64::NAN), Duration::ZERO);
        assert_eq!(from_nanos_f64(1_500_000_000.0), MS * 1_500);
    }
}
