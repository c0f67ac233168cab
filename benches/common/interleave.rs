//! Interleaved ratio rows: brigade and its peers measured round by round.
//!
//! Criterion measures one peer after another, so a slow spell of a noisy
//! machine lands on whichever peer is running. Here every round runs each
//! entrant of a row once, back to back, and the ratio brigade ÷ peer is
//! taken inside the round, where both saw nearly the same machine. The
//! order rotates from round to round, so no entrant always goes first.
//! Only medians and quartiles are reported, never means: one stalled round
//! moves a mean, not a median.

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

/// One run of an entrant: the time the measured part took.
pub(crate) type Run = Box<dyn FnMut() -> Duration>;

/// A row: brigade (or the brigade path under test) first, then the peers
/// it is compared with.
pub(crate) struct Row {
    entrants: Vec<(String, Run)>,
}

impl Row {
    /// A row whose brigade entrant is `run`.
    pub(crate) fn brigade(run: impl FnMut() -> Duration + 'static) -> Self {
        Self::first("brigade", run)
    }

    /// A row whose first entrant, the numerator of every ratio, is `run`,
    /// named `name` in the line: for rows that weigh one brigade path
    /// against another (`keyed` ÷ `plain`).
    pub(crate) fn first(name: impl Into<String>, run: impl FnMut() -> Duration + 'static) -> Self {
        Self {
            entrants: vec![(name.into(), Box::new(run))],
        }
    }

    /// Adds a peer named `name`.
    pub(crate) fn peer(
        mut self,
        name: impl Into<String>,
        run: impl FnMut() -> Duration + 'static,
    ) -> Self {
        self.entrants.push((name.into(), Box::new(run)));
        self
    }
}

/// Every entrant's time in every round, in seconds: `times[entrant][round]`,
/// the first entrant (brigade) first.
pub(crate) struct Outcome {
    names: Vec<String>,
    times: Vec<Vec<f64>>,
}

/// Runs `rounds` rounds of `row`; in round `r` the entrants go in the
/// order `r, r + 1, …` (wrapping), so each goes first equally often.
pub(crate) fn measure(mut row: Row, rounds: usize) -> Outcome {
    let n = row.entrants.len();
    let mut times = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            let took = (row.entrants[i].1)();
            times[i].push(took.as_secs_f64());
        }
    }
    let names = row.entrants.into_iter().map(|(name, _)| name).collect();
    Outcome { names, times }
}

impl Outcome {
    /// Per round, brigade's time ÷ the fastest peer's.
    fn ratios_to_fastest(&self) -> Vec<f64> {
        let rounds = self.times[0].len();
        (0..rounds)
            .map(|r| {
                let fastest = self.times[1..]
                    .iter()
                    .map(|peer| peer[r])
                    .fold(f64::INFINITY, f64::min);
                self.times[0][r] / fastest
            })
            .collect()
    }

    /// Per round, brigade's time ÷ peer `i`'s.
    fn ratios_to(&self, i: usize) -> Vec<f64> {
        self.times[0]
            .iter()
            .zip(&self.times[i])
            .map(|(b, p)| b / p)
            .collect()
    }

    /// The row as one line: `name  brigade ÷ fastest 1.12 (q 1.05–1.20)
    /// ÷ crossbeam 1.12 …  [medians ms: brigade 310, crossbeam 277, …]`.
    pub(crate) fn line(&self, name: &str) -> String {
        let mut fastest = self.ratios_to_fastest();
        let [q1, median, q3] = quartiles(&mut fastest);
        let first = &self.names[0];
        let mut line = format!("{name:<14} {first} ÷ fastest {median:.2} (q {q1:.2}–{q3:.2})");
        for (i, peer) in self.names.iter().enumerate().skip(1) {
            let [_, median, _] = quartiles(&mut self.ratios_to(i));
            let _ = write!(line, "  ÷ {peer} {median:.2}");
        }
        let medians: Vec<f64> = self
            .times
            .iter()
            .map(|times| quartiles(&mut times.clone())[1])
            .collect();
        let (unit, scale) = unit(medians[0]);
        let _ = write!(line, "   [medians {unit}:");
        for (i, (peer, median)) in self.names.iter().zip(&medians).enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            let _ = write!(line, "{sep}{peer} {}", significant(median * scale));
        }
        line.push(']');
        line
    }
}

/// The first quartile, the median and the third quartile of `values`
/// (sorted in place), interpolated between ranks.
fn quartiles(values: &mut [f64]) -> [f64; 3] {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let pos = q * (values.len() - 1) as f64;
        let (low, high) = (pos.floor() as usize, pos.ceil() as usize);
        values[low] + (values[high] - values[low]) * (pos - pos.floor())
    };
    [at(0.25), at(0.5), at(0.75)]
}

/// The unit a row's times print in, chosen by brigade's median seconds,
/// and the factor from seconds to it.
fn unit(seconds: f64) -> (&'static str, f64) {
    if seconds >= 1e-3 {
        ("ms", 1e3)
    } else {
        ("µs", 1e6)
    }
}

/// `value` to about three significant figures.
fn significant(value: f64) -> String {
    match value {
        v if v >= 100.0 => format!("{v:.0}"),
        v if v >= 10.0 => format!("{v:.1}"),
        v => format!("{v:.2}"),
    }
}

/// How long `f` takes.
pub(crate) fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// The table's first line: the commit measured and the machine's CPUs, so
/// a README can quote where its figures come from.
pub(crate) fn header(rounds: usize) -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    format!(
        "brigade interleaved ratios: commit {}, {cpus} CPUs, {rounds} round{} per row\n\
         (times of brigade ÷ a peer's in the same round, medians; q: quartiles; above 1: brigade is slower)",
        commit(),
        if rounds == 1 { "" } else { "s" },
    )
}

/// `git rev-parse --short HEAD`, with `+changes` if the work tree has
/// uncommitted changes to tracked files, or `unknown` outside a git checkout.
fn commit() -> String {
    let git = |args: &[&str]| {
        let out = Command::new("git").args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(hash)
            if git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty()) =>
        {
            format!("{hash}+changes")
        }
        Some(hash) => hash,
        None => "unknown".to_owned(),
    }
}
