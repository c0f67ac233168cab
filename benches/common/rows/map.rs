//! The `F` rows: a map over 10,000,000 trivial items, collected in input
//! order, against rayon's `par_iter` on a pool of the same size.

use std::hint::black_box;
use std::time::Duration;

use crate::common::interleave::{Row, timed};
use crate::common::{brigade_pool, cpus, rayon_pool};
use rayon::prelude::*;

/// Items per run.
const ITEMS: u64 = 10_000_000;

/// The trivial work per item.
fn f(x: u64) -> u64 {
    x.wrapping_mul(3) ^ 7
}

/// rayon's run: `install` + `par_iter` + `collect`.
fn rayon_peer() -> impl FnMut() -> Duration {
    let rayon = rayon_pool(cpus());
    move || {
        timed(|| {
            let out: Vec<u64> = rayon.install(|| (0..ITEMS).into_par_iter().map(f).collect());
            assert_eq!(out.len(), ITEMS as usize);
            black_box(out);
        })
    }
}

/// `F-try_map`: `try_map` with a closure that never fails.
pub(super) fn try_map() -> Row {
    let pool = brigade_pool(cpus());
    let brigade = move || {
        timed(|| {
            let out = pool
                .try_map(0..ITEMS, |x| Ok::<_, ()>(f(x)))
                .expect("no item fails");
            assert_eq!(out.len(), ITEMS as usize);
            black_box(out);
        })
    };
    Row::brigade(brigade).peer("rayon", rayon_peer())
}

/// `F-map`: `map` + `collect_vec`.
pub(super) fn map() -> Row {
    let pool = brigade_pool(cpus());
    let brigade = move || {
        timed(|| {
            let out = pool.map(0..ITEMS, f).collect_vec().expect("no item fails");
            assert_eq!(out.len(), ITEMS as usize);
            black_box(out);
        })
    };
    Row::brigade(brigade).peer("rayon", rayon_peer())
}
