//! Keyed and laned `ThreadPool` rounds: which submits go along a key or a
//! lane ([`Routes`]), and the run-time check that jobs of one key start
//! in submission order, one at a time, and that a capped lane never runs
//! on more workers than its cap ([`RouteCheck`]).
//!
//! Each submitter has keys of its own (few, so that its jobs contend for
//! them), and submits each job until it is accepted or refused for good
//! before the next: so its job ids are its submission order, and a key's
//! jobs must start with increasing ids.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;

use brigade::{Lane, Routed, ThreadPool, ThreadPoolBuilder};
use parking_lot::Mutex;

use crate::common::SplitMix64;
use crate::ledger::Ledger;

/// Where a job goes: a lane, and maybe a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) lane: Lane,
    pub(crate) key: Option<u64>,
}

impl Route {
    /// The way into `pool` along this route.
    pub(crate) fn on(self, pool: &ThreadPool) -> Routed<'_> {
        let routed = pool.lane(self.lane);
        match self.key {
            Some(key) => routed.key(key),
            None => routed,
        }
    }
}

/// The routing part of a keyed round's plan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Routes {
    /// Per 1,000 executes and submits: along a key (in a random lane).
    keyed: u64,
    /// Per 1,000 of the rest: in a random lane, without a key.
    laned: u64,
    /// Keys per submitter.
    keys: u64,
    /// `lane_limit(Lane::Background, n)`, in some rounds.
    background_cap: Option<usize>,
    /// `lane_limit(Lane::High, n)`, in a few rounds.
    high_cap: Option<usize>,
    /// The starvation bound, short in some rounds so it takes effect.
    starvation_ms: u64,
    /// `key_queue_limit`, small in some rounds so hot keys push back.
    key_queue: usize,
}

impl Routes {
    pub(crate) fn random(rng: &mut SplitMix64) -> Self {
        Self {
            keyed: 200 + rng.below(700),
            laned: rng.below(600),
            keys: 1 + rng.below(4),
            background_cap: (rng.below(2) == 0).then(|| 1 + rng.below(2) as usize),
            high_cap: (rng.below(5) == 0).then_some(1),
            starvation_ms: [1, 5, 250][rng.below(3) as usize],
            key_queue: [1, 2, 8, 1024][rng.below(4) as usize],
        }
    }

    /// The builder with the dispatcher's settings, for a pool of at most
    /// `workers` (a lane's limit may not be above it).
    pub(crate) fn configure(
        &self,
        builder: ThreadPoolBuilder,
        workers: usize,
    ) -> ThreadPoolBuilder {
        let mut builder = builder
            .starvation_bound(std::time::Duration::from_millis(self.starvation_ms))
            .key_queue_limit(self.key_queue);
        if let Some(cap) = self.background_cap {
            builder = builder.lane_limit(Lane::Background, cap.min(workers));
        }
        if let Some(cap) = self.high_cap {
            builder = builder.lane_limit(Lane::High, cap.min(workers));
        }
        builder
    }

    /// The route of submitter `submitter`'s next job, or `None` for a
    /// plain one.
    pub(crate) fn draw(&self, rng: &mut SplitMix64, submitter: usize) -> Option<Route> {
        let lane = Lane::ALL[rng.below(3) as usize];
        if rng.below(1000) < self.keyed {
            let key = submitter as u64 * 16 + rng.below(self.keys);
            return Some(Route {
                lane,
                key: Some(key),
            });
        }
        (rng.below(1000) < self.laned).then_some(Route { lane, key: None })
    }

    fn cap(&self, lane: Lane) -> Option<usize> {
        match lane {
            Lane::High => self.high_cap,
            Lane::Normal => None,
            Lane::Background => self.background_cap,
        }
    }
}

/// What routed jobs did at run time, checked as they start.
pub(crate) struct RouteCheck {
    routes: Routes,
    ledger: Arc<Ledger>,
    /// Per key: the id of its last job to start, and whether one runs.
    keys: Mutex<HashMap<u64, (usize, bool)>>,
    /// Routed jobs running per lane, and the most at once.
    running: [AtomicUsize; 3],
    peak: [AtomicUsize; 3],
}

impl RouteCheck {
    pub(crate) fn new(routes: Routes, ledger: Arc<Ledger>) -> Arc<Self> {
        Arc::new(Self {
            routes,
            ledger,
            keys: Mutex::new(HashMap::new()),
            running: Default::default(),
            peak: Default::default(),
        })
    }

    /// Job `id` along `route` starts; the guard records its end, a panic
    /// included.
    pub(crate) fn start(self: &Arc<Self>, id: usize, route: Route) -> Started {
        if let Some(key) = route.key {
            let mut keys = self.keys.lock();
            let (last, running) = keys.entry(key).or_insert((usize::MAX, false));
            if *running {
                self.ledger.violation(format!(
                    "job {id} of key {key} started while job {last} of it runs"
                ));
            }
            if *last != usize::MAX && *last >= id {
                self.ledger.violation(format!(
                    "job {id} of key {key} started after job {last}, submitted later"
                ));
            }
            (*last, *running) = (id, true);
        }
        let lane = route.lane as usize;
        let now = self.running[lane].fetch_add(1, SeqCst) + 1;
        self.peak[lane].fetch_max(now, SeqCst);
        Started {
            check: Arc::clone(self),
            route,
        }
    }

    /// Violations of the lane caps, for the round's findings.
    pub(crate) fn check_caps(&self, found: &mut Vec<String>) {
        for lane in [Lane::High, Lane::Background] {
            let peak = self.peak[lane as usize].load(SeqCst);
            if let Some(cap) = self.routes.cap(lane) {
                if peak > cap {
                    found.push(format!("{peak} {lane:?} jobs ran at once, capped at {cap}"));
                }
            }
        }
    }
}

/// A routed job running; dropped when it ends.
pub(crate) struct Started {
    check: Arc<RouteCheck>,
    route: Route,
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(key) = self.route.key {
            if let Some((_, running)) = self.check.keys.lock().get_mut(&key) {
                *running = false;
            }
        }
        self.check.running[self.route.lane as usize].fetch_sub(1, SeqCst);
    }
}
