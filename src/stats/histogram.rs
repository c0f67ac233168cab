//! A log-bucketed latency histogram with lock-free, single-writer recording.
//!
//! Durations are recorded in nanoseconds into 252 buckets: each power of
//! two is split into four sub-buckets (two mantissa bits), so a bucket's
//! width is at most a quarter of its lower bound and a percentile read from
//! it is within 25% of the true value (reported as the bucket's midpoint,
//! so within about 12%). That covers 1 ns to 584 years in 2 KiB.
//!
//! Each worker owns its histograms and is their only writer, so a record is
//! a plain load and store of one counter — no read-modify-write, no shared
//! cache line. A snapshot reads every worker's buckets and adds them up;
//! counts read mid-update may be one sample apart, which percentiles do not
//! notice.

use std::time::Duration;

use crate::sync::{AtomicU64, Ordering};

/// Buckets: values 0..4 exactly, then four per power of two up to 2^64.
const BUCKETS: usize = 252;

/// One worker's histogram of durations. Single writer.
#[derive(Debug)]
pub(crate) struct Histogram {
    counts: Box<[AtomicU64]>,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }
}

/// The bucket holding `nanos`.
#[inline]
fn bucket(nanos: u64) -> usize {
    if nanos < 4 {
        return nanos as usize;
    }
    let exp = 63 - nanos.leading_zeros() as usize; // ≥ 2
    let mantissa = ((nanos >> (exp - 2)) & 3) as usize;
    (exp - 1) * 4 + mantissa
}

/// The smallest value in bucket `index`, and the bucket's width.
fn bounds(index: usize) -> (u64, u64) {
    if index < 4 {
        return (index as u64, 1);
    }
    let exp = index / 4 + 1;
    let mantissa = (index % 4) as u64;
    let width = 1u64 << (exp - 2);
    ((4 + mantissa) << (exp - 2), width)
}

impl Histogram {
    /// Records one duration. Must be called by the histogram's one writer.
    #[inline]
    pub(crate) fn record(&self, value: Duration) {
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        let counter = &self.counts[bucket(nanos)];
        // ORDERING: single writer, so load-then-store loses nothing;
        // Relaxed, as percentiles need no ordering with other counters.
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        if nanos > self.max.load(Ordering::Relaxed) {
            self.max.store(nanos, Ordering::Relaxed);
        }
    }
}

/// Several workers' histograms added together, for reading percentiles.
#[derive(Debug, Clone)]
pub(crate) struct Merged {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Merged {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

impl Merged {
    pub(crate) fn add(&mut self, histogram: &Histogram) {
        for (sum, count) in self.counts.iter_mut().zip(histogram.counts.iter()) {
            let count = count.load(Ordering::Relaxed);
            *sum += count;
            self.total += count;
        }
        self.max = self.max.max(histogram.max.load(Ordering::Relaxed));
    }

    /// Samples recorded.
    pub(crate) fn samples(&self) -> u64 {
        self.total
    }

    /// The largest sample.
    pub(crate) fn max(&self) -> Duration {
        Duration::from_nanos(self.max)
    }

    /// The `q` quantile (0.0 ..= 1.0): the midpoint of the bucket holding
    /// it, capped at the largest sample. Zero with no samples.
    pub(crate) fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        // The rank of the sample wanted, 1-based, at least the first.
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, width) = bounds(index);
                return Duration::from_nanos((low + width / 2).min(self.max));
            }
        }
        self.max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_bounded() {
        let mut values: Vec<u64> = (0..2000).collect();
        for shift in 0u32..64 {
            let power = 1u64 << shift;
            values.extend([
                power - 1,
                power,
                power + power / 3,
                power.saturating_add(power - 1),
            ]);
        }
        values.push(u64::MAX);
        values.sort_unstable();
        let mut last = 0;
        for value in values {
            let index = bucket(value);
            assert!(
                index >= last,
                "bucket({value}) = {index} went back from {last}"
            );
            assert!(index < BUCKETS);
            let (low, width) = bounds(index);
            assert!(
                low <= value && value - low < width,
                "{value} not in [{low}, {low}+{width})"
            );
            last = index;
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_within_a_quarter() {
        let h = Histogram::default();
        for micros in 1..=1000u64 {
            h.record(Duration::from_micros(micros));
        }
        let mut merged = Merged::default();
        merged.add(&h);
        assert_eq!(merged.samples(), 1000);
        for (q, want) in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0)] {
            let got = merged.quantile(q).as_secs_f64() * 1e6;
            assert!(
                (got - want).abs() <= want * 0.25,
                "p{} = {got} µs, want ~{want}",
                q * 100.0
            );
        }
        assert_eq!(merged.max(), Duration::from_micros(1000));
        assert_eq!(Merged::default().quantile(0.5), Duration::ZERO);
    }
}
