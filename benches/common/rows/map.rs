//! The `F` rows: a map over 10,000,000 trivial items, collected in input
//! order, against rayon's `par_iter` on a pool of the same size, and
//! against the floor of brigade's own shape: a hand-written chunked map
//! (`ChunkedFloor`) in which one thread pulls the input into chunks,
//! workers map them, and that thread copies each chunk's values into the
//! result in order, with none of a pool's lifecycle. rayon splits an
//! indexed range instead and writes in place, which an `Iterator` input
//! cannot offer. The copy floor is the bound under every map whose
//! consumer writes the result: that copy alone, on one thread.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use crate::common::interleave::{Row, timed};
use crate::common::{brigade_pool, cpus, rayon_pool};
use rayon::prelude::*;

/// Items per run.
const ITEMS: u64 = 10_000_000;

/// The trivial work per item.
fn f(x: u64) -> u64 {
    x.wrapping_mul(3) ^ 7
}

/// Items per chunk of the floor: what brigade's map starts with on this
/// input.
const FLOOR_CHUNK: usize = 1_024;
/// Items the floor reads ahead of its result: brigade's default window.
const FLOOR_WINDOW: usize = brigade::DEFAULT_READ_AHEAD;

/// A chunk of input and its first item's offset; its values coming back.
type FloorChunk = (usize, Vec<u64>);

/// The hand-written chunked map: long-lived workers, a bounded channel of
/// input chunks, an unbounded one of value chunks, a reorder map.
struct ChunkedFloor {
    chunks: Option<Sender<FloorChunk>>,
    values: Receiver<FloorChunk>,
    threads: Vec<JoinHandle<()>>,
}

impl ChunkedFloor {
    fn new(workers: usize) -> Self {
        let (chunks, inputs) = bounded::<FloorChunk>(FLOOR_WINDOW / FLOOR_CHUNK);
        let (done, values) = unbounded::<FloorChunk>();
        let threads = (0..workers)
            .map(|_| {
                let (inputs, done) = (inputs.clone(), done.clone());
                std::thread::spawn(move || {
                    for (start, items) in inputs {
                        let _ = done.send((start, items.into_iter().map(f).collect()));
                    }
                })
            })
            .collect();
        Self {
            chunks: Some(chunks),
            values,
            threads,
        }
    }

    /// `f` over `0..items`, in order.
    fn map(&self, items: u64) -> Vec<u64> {
        let Some(chunks) = &self.chunks else {
            return Vec::new();
        };
        let total = usize::try_from(items).expect("fits");
        let mut input = 0..items;
        let mut out = Vec::with_capacity(total);
        let (mut sent, mut held) = (0, BTreeMap::new());
        while out.len() < total {
            while sent < total && sent - out.len() < FLOOR_WINDOW {
                let chunk: Vec<u64> = input.by_ref().take(FLOOR_CHUNK).collect();
                let len = chunk.len();
                chunks.send((sent, chunk)).expect("the floor's workers run");
                sent += len;
            }
            let (start, values) = self.values.recv().expect("the floor's workers run");
            held.insert(start, values);
            while let Some(values) = held.remove(&out.len()) {
                out.extend(values);
            }
        }
        out
    }
}

impl Drop for ChunkedFloor {
    fn drop(&mut self) {
        self.chunks = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The floor's run.
fn floor_peer() -> impl FnMut() -> Duration {
    let floor = ChunkedFloor::new(cpus());
    move || {
        timed(|| {
            let out = floor.map(ITEMS);
            assert_eq!(out.len(), ITEMS as usize);
            black_box(out);
        })
    }
}

/// The copy floor: no map and no threads, only what the one thread that
/// writes an ordered result without `unsafe` must do — copy every value,
/// a chunk at a time, into a fresh `Vec` of `ITEMS` (and give it back).
/// Its first touch of the result's pages is most of its time. Any map in
/// which the consumer writes the result, as brigade's must, is at least
/// this slow: a bound under the `F` rows that rayon, whose workers write
/// in place, is not held to.
fn copy_peer() -> impl FnMut() -> Duration {
    let values: Vec<u64> = (0..FLOOR_CHUNK as u64).map(f).collect();
    move || {
        timed(|| {
            let total = usize::try_from(ITEMS).expect("fits");
            let mut out: Vec<u64> = Vec::with_capacity(total);
            while out.len() < total {
                let n = (total - out.len()).min(values.len());
                out.extend_from_slice(&values[..n]);
            }
            black_box(out);
        })
    }
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
    Row::brigade(brigade)
        .peer("rayon", rayon_peer())
        .peer("chunked floor", floor_peer())
        .peer("copy floor", copy_peer())
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
    Row::brigade(brigade)
        .peer("rayon", rayon_peer())
        .peer("chunked floor", floor_peer())
        .peer("copy floor", copy_peer())
}
