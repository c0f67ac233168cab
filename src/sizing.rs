//! How many workers: by CPU count, by Little's Law, or fixed.
//!
//! * **CPU-bound** work gains nothing past the number of CPUs the process
//!   may use: [`cpu_bound`] reads it from `num_cpus`, which honours cgroup
//!   CPU quotas, so a container limited to two CPUs gets two workers.
//!   Like `GOMAXPROCS` for Go, the environment variable `BRIGADE_WORKERS`
//!   overrides it wherever CPU sizing is used — [`cpu_bound`] itself,
//!   [`mixed`], [`Sizing::CpuBound`] (the default), [`Sizing::Mixed`] and
//!   the start of [`Sizing::Adaptive`] — so operators can tune a deployed
//!   program without rebuilding it. (The adaptive controller still judges
//!   CPU saturation by the CPUs there are.)
//! * **Waiting-bound** work (network, disk, downstream services) needs as
//!   many workers as requests in flight: by Little's Law, N = λ·W, the
//!   target throughput λ times the latency W of one job ([`io_bound`]).
//! * **Mixed** work starts at twice the CPU count ([`mixed`]); measure and
//!   tune from there.
//!
//! Every input is validated: a size of zero, a NaN or negative rate, or a
//! zero latency is a [`SizingError`] that says what to fix, never a panic.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use brigade::sizing;
//!
//! // 500 requests per second at 200 ms each keep 100 requests in flight.
//! assert_eq!(sizing::io_bound(500.0, Duration::from_millis(200)), Ok(100));
//! assert!(sizing::io_bound(f64::NAN, Duration::from_millis(200)).is_err());
//! assert!(sizing::cpu_bound() >= 1);
//! ```

use std::time::Duration;

use crate::error::SizingError;

/// The most workers one pool may have. OS threads cost a stack each and the
/// kernel's own limits sit in the tens of thousands; work that needs more
/// in flight than this wants async I/O, not more threads.
pub const MAX_WORKERS: usize = 32_768;

/// The environment variable that overrides the CPU count for sizing.
pub const ENV_WORKERS: &str = "BRIGADE_WORKERS";

/// The worker count for CPU-bound work: `BRIGADE_WORKERS` if it is set to
/// a positive integer, else the number of CPUs this process may use (at
/// least 1, honouring cgroup CPU quotas).
///
/// A set but invalid `BRIGADE_WORKERS` is logged (`log::warn!`) and the CPU
/// count used; a pool built with [`Sizing::CpuBound`] refuses it instead,
/// with [`SizingError::InvalidEnv`].
pub fn cpu_bound() -> usize {
    match std::env::var(ENV_WORKERS) {
        Ok(value) => parse_env(&value).unwrap_or_else(|err| {
            log::warn!("brigade: {err}; sizing by the CPU count instead");
            cpus()
        }),
        Err(_) => cpus(),
    }
}

/// The number of CPUs this process may use (at least 1), honouring cgroup
/// CPU quotas: what the machine has, whatever `BRIGADE_WORKERS` says.
pub(crate) fn cpus() -> usize {
    num_cpus::get().max(1)
}

/// Twice [`cpu_bound`]: a starting point for jobs that half compute and
/// half wait.
pub fn mixed() -> usize {
    cpu_bound().saturating_mul(2).min(MAX_WORKERS)
}

/// Little's Law: the workers needed to sustain `throughput_per_sec` jobs
/// per second when each takes `latency`, that is ⌈λ·W⌉.
///
/// # Errors
///
/// * [`SizingError::InvalidThroughput`] if the rate is NaN, infinite, zero
///   or negative;
/// * [`SizingError::ZeroLatency`] if `latency` is zero;
/// * [`SizingError::TooManyWorkers`] if the result exceeds [`MAX_WORKERS`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade::{sizing, SizingError};
///
/// assert_eq!(sizing::io_bound(10.0, Duration::from_millis(250)), Ok(3));
/// assert_eq!(
///     sizing::io_bound(-1.0, Duration::from_secs(1)).unwrap_err().to_string(),
///     "throughput must be a finite number of jobs per second greater than 0, got -1",
/// );
/// assert_eq!(sizing::io_bound(1.0, Duration::ZERO), Err(SizingError::ZeroLatency));
/// ```
pub fn io_bound(throughput_per_sec: f64, latency: Duration) -> Result<usize, SizingError> {
    if !throughput_per_sec.is_finite() || throughput_per_sec <= 0.0 {
        return Err(SizingError::InvalidThroughput(throughput_per_sec));
    }
    if latency.is_zero() {
        return Err(SizingError::ZeroLatency);
    }
    let in_flight = throughput_per_sec * latency.as_secs_f64();
    // Products that should be whole (500/s × 0.2 s) can land a hair above
    // the integer in binary floating point; do not round those up.
    // A product too large for f64 is infinite (and `inf - inf` would be a
    // NaN that `max` then hides): that is too many workers.
    let workers = if in_flight.is_finite() {
        (in_flight - in_flight * 1e-12).ceil().max(1.0)
    } else {
        f64::INFINITY
    };
    if workers > MAX_WORKERS as f64 {
        // Saturating float-to-int conversion: huge values become u128::MAX.
        let requested = workers as u128;
        return Err(SizingError::TooManyWorkers {
            requested,
            max: MAX_WORKERS,
        });
    }
    Ok(workers as usize)
}

/// How a pool picks its worker count; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum Sizing {
    /// Exactly this many workers.
    Fixed(usize),
    /// [`cpu_bound`]: `BRIGADE_WORKERS` if set, else the CPU count. The
    /// default.
    #[default]
    CpuBound,
    /// [`io_bound`]`(throughput_per_sec, latency)`.
    IoBound {
        /// Target jobs per second (λ).
        throughput_per_sec: f64,
        /// Time one job takes, mostly waiting (W).
        latency: Duration,
    },
    /// [`mixed`].
    Mixed,
    /// Starts at [`cpu_bound`] (within the bounds) and lets a controller
    /// steer the count between `min` and `max` by Little's Law: toward the
    /// arrival rate × the time a job holds a worker, growing while a
    /// backlog waits, not growing once the CPUs are saturated, and
    /// shrinking only slowly. See the crate docs' "Sizing" chapter.
    Adaptive {
        /// The fewest workers.
        min: usize,
        /// The most workers.
        max: usize,
    },
}

impl Sizing {
    /// The worker count this sizing gives on this machine now.
    ///
    /// # Errors
    ///
    /// [`SizingError::ZeroWorkers`] or [`SizingError::TooManyWorkers`] for a
    /// bad fixed count, [`SizingError::InvalidEnv`] for a bad
    /// `BRIGADE_WORKERS`, and the errors of [`io_bound`].
    pub fn workers(&self) -> Result<usize, SizingError> {
        let n = match *self {
            Self::Fixed(n) => n,
            Self::CpuBound => match std::env::var(ENV_WORKERS) {
                Ok(value) => parse_env(&value)?,
                Err(_) => cpus(),
            },
            Self::IoBound {
                throughput_per_sec,
                latency,
            } => io_bound(throughput_per_sec, latency)?,
            Self::Mixed => mixed(),
            Self::Adaptive { min, max } => {
                if max == 0 || min > max || max > MAX_WORKERS {
                    return Err(SizingError::InvalidBounds {
                        min,
                        max,
                        limit: MAX_WORKERS,
                    });
                }
                cpu_bound().clamp(min.max(1), max)
            }
        };
        check_count(n)
    }
}

/// Accepts a worker count in `1..=MAX_WORKERS`.
pub(crate) fn check_count(n: usize) -> Result<usize, SizingError> {
    match n {
        0 => Err(SizingError::ZeroWorkers),
        n if n > MAX_WORKERS => Err(SizingError::TooManyWorkers {
            requested: n as u128,
            max: MAX_WORKERS,
        }),
        n => Ok(n),
    }
}

fn parse_env(value: &str) -> Result<usize, SizingError> {
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(SizingError::InvalidEnv(value.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn littles_law_table() {
        let ms = Duration::from_millis;
        let cases = [
            (500.0, ms(200), Ok(100)),
            (10.0, ms(250), Ok(3)),
            (0.001, ms(1), Ok(1)),
            (1000.0, ms(1), Ok(1)),
            (1000.0, ms(2), Ok(2)),
            (3.0, Duration::from_secs(1), Ok(3)),
            (0.0, ms(1), Err(SizingError::InvalidThroughput(0.0))),
            (
                f64::INFINITY,
                ms(1),
                Err(SizingError::InvalidThroughput(f64::INFINITY)),
            ),
            (1.0, Duration::ZERO, Err(SizingError::ZeroLatency)),
            (
                1e9,
                Duration::from_secs(1),
                Err(SizingError::TooManyWorkers {
                    requested: 1_000_000_000,
                    max: MAX_WORKERS,
                }),
            ),
        ];
        for (rate, latency, want) in cases {
            assert_eq!(
                io_bound(rate, latency),
                want,
                "io_bound({rate}, {latency:?})"
            );
        }
        assert!(
            matches!(io_bound(f64::NAN, ms(1)), Err(SizingError::InvalidThroughput(r)) if r.is_nan())
        );
    }

    #[test]
    fn env_parsing() {
        assert_eq!(parse_env("4"), Ok(4));
        assert_eq!(parse_env(" 12 "), Ok(12));
        assert_eq!(parse_env("0"), Err(SizingError::InvalidEnv("0".into())));
        assert_eq!(
            parse_env("many"),
            Err(SizingError::InvalidEnv("many".into()))
        );
        assert_eq!(
            parse_env("-3").unwrap_err().to_string(),
            "BRIGADE_WORKERS must be a positive integer, got \"-3\""
        );
    }

    #[test]
    fn fixed_counts() {
        assert_eq!(Sizing::Fixed(0).workers(), Err(SizingError::ZeroWorkers));
        assert_eq!(Sizing::Fixed(7).workers(), Ok(7));
        assert!(Sizing::Fixed(MAX_WORKERS + 1).workers().is_err());
        assert_eq!(Sizing::Mixed.workers(), Ok(mixed()));
    }
}
