//! The interleaved rows of `benches/peers.rs`: each builds brigade's
//! entrant and its peers, owning whatever they need (pools, files, a
//! server) until the row has run. Rows are built one at a time, so only
//! the running row's threads and files exist.

/// `adaptive-1000`, `adaptive-4000`: adaptive sizing against fixed N.
mod adaptive;
/// `cancel`: a context's cancel waking 1,000 threads.
mod cancel;
/// `scope`, `A`, `A-latencies`, `E`, `E-await`, `E-await-each`,
/// `E-await-1by1`, `D`: many small jobs.
mod jobs;
/// `keyed-cost`, `lane-cost`, `lane-cost-bg`, `keyed-floor`,
/// `lane-floor`, `lane-floor-bg`, `keyed-slow`: keys and priority lanes
/// (#19).
mod keyed;
/// `F-try_map`, `F-map`: a map over 10,000,000 items.
mod map;
/// `pipeline3`, `pipeline5`: brigade's `Pipeline` against hand-wired ones.
mod pipeline;
/// The hand-written keyed and laned executors of `keyed-floor` and
/// `lane-floor`.
mod routed_floor;

use super::interleave::{self, Row};

/// A row: its name on the command line and in the table, what it runs,
/// and how to build it.
pub(crate) struct Spec {
    pub(crate) name: &'static str,
    pub(crate) what: &'static str,
    build: fn() -> Row,
}

/// Every row, in the order they run.
pub(crate) const ROWS: &[Spec] = &[
    Spec {
        name: "pipeline3",
        what: "Pipeline read → SHA-256 → sum over 3,500 files of 10 KB, workers 2/2/1 | crossbeam, sequential",
        build: pipeline::three_stages,
    },
    Spec {
        name: "pipeline5",
        what: "Pipeline of 5 stages, 20,000 items, a 50 µs stage in the middle, workers 1/1/2/1/1 | crossbeam",
        build: pipeline::five_stages,
    },
    Spec {
        name: "scope",
        what: "pool.scope spawning 1,000,000 tiny jobs | rayon scope, floor + latch",
        build: jobs::scope,
    },
    Spec {
        name: "A",
        what: "1,000,000 tiny execute jobs | floor, threadpool, rayon spawn",
        build: jobs::tiny,
    },
    Spec {
        name: "A-latencies",
        what: "A with latency recording on | the same pool with it off",
        build: jobs::latency_recording,
    },
    Spec {
        name: "E",
        what: "100,000 submit + JobHandle::join | floor, threadpool, rayon spawn, each + a results channel",
        build: jobs::returning_values,
    },
    Spec {
        name: "E-await",
        what: "E, every handle awaited in order in one block_on | the same pool's join",
        build: jobs::returning_values_awaited,
    },
    Spec {
        name: "E-await-each",
        what: "E, a block_on per handle | the same pool's join",
        build: jobs::returning_values_block_on_each,
    },
    Spec {
        name: "E-await-1by1",
        what: "10,000 submits, each awaited before the next (one block_on) | the same pool's join",
        build: jobs::one_by_one,
    },
    Spec {
        name: "F-try_map",
        what: "try_map over 10,000,000 items | rayon install + par_iter collect, a hand-written chunked map, the copy into the result alone",
        build: map::try_map,
    },
    Spec {
        name: "F-map",
        what: "map over 10,000,000 items, collect_vec | rayon install + par_iter collect, a hand-written chunked map, the copy into the result alone",
        build: map::map,
    },
    Spec {
        name: "cancel",
        what: "ctx.cancel() until 1,000 threads blocked on ctx.done() woke | a dropped crossbeam sender",
        build: cancel::fan_out,
    },
    Spec {
        name: "D",
        what: "idle submit → start latency, median of 200 submits 2 ms apart | floor, threadpool, rayon spawn",
        build: jobs::idle_latency,
    },
    Spec {
        name: "D-cold",
        what: "D on a keep_alive pool whose workers all left: the first job starts a thread | a warm pool, thread::spawn",
        build: jobs::cold_start,
    },
    Spec {
        name: "keyed-cost",
        what: "500,000 tiny jobs through pool.keyed(i % 1000).execute | plain execute, a pool of the same size",
        build: keyed::keyed_cost,
    },
    Spec {
        name: "lane-cost",
        what: "500,000 tiny jobs through pool.lane(Lane::High).execute | plain execute, a pool of the same size",
        build: keyed::high_lane_cost,
    },
    Spec {
        name: "lane-cost-bg",
        what: "the same through pool.lane(Lane::Background) | plain execute, a pool of the same size",
        build: keyed::background_lane_cost,
    },
    Spec {
        name: "keyed-floor",
        what: "keyed-cost's jobs through a hand-written keyed executor (one lock, a ready queue, held keys) | the plain floor",
        build: keyed::keyed_floor,
    },
    Spec {
        name: "lane-floor",
        what: "lane-cost's jobs through the top lane of three crossbeam channels | the plain floor",
        build: keyed::lane_floor,
    },
    Spec {
        name: "lane-floor-bg",
        what: "the same through the bottom lane | the plain floor",
        build: keyed::background_lane_floor,
    },
    Spec {
        name: "keyed-slow",
        what: "64 keys × 80 jobs of 25 µs, key 0's first sleeps 150 ms, 2 workers per CPU: until the other keys are done | hash-to-one-thread executor; both unblocked",
        build: keyed::slow_key,
    },
    Spec {
        name: "adaptive-1000",
        what: "Sizing::Adaptive {2, 64}, 1,000 requests of 2 ms to a loopback server | fixed N = 8, 16, 32, 64",
        build: adaptive::burst_1000,
    },
    Spec {
        name: "adaptive-4000",
        what: "the same with 4,000 requests | fixed N = 8, 16, 32, 64",
        build: adaptive::burst_4000,
    },
];

impl Spec {
    /// Whether `filter` selects this row: its whole name, or the part
    /// before a `-` (`F` selects `F-try_map` and `F-map`), in any case.
    pub(crate) fn matches(&self, filter: &str) -> bool {
        let name = self.name.to_ascii_lowercase();
        let filter = filter.to_ascii_lowercase();
        name == filter
            || name
                .strip_prefix(&filter)
                .is_some_and(|rest| rest.starts_with('-'))
    }

    /// Builds the row, runs it for `rounds` rounds and prints its line.
    pub(crate) fn run(&self, rounds: usize) {
        let outcome = interleave::measure((self.build)(), rounds);
        println!("{}", outcome.line(self.name));
    }
}
