//! The pipeline rows. `pipeline3` reads files, hashes them and sums the
//! hashes; `pipeline5` pushes small items through a slow middle stage, so
//! the stages before it are held back by full queues (backpressure).
//!
//! brigade's `Pipeline` starts its stages' threads at `build()`, for each
//! run; the crossbeam peer is the same shape wired by hand, its threads
//! spawned in a `std::thread::scope` per run, each stage's channel as deep
//! as the stage has workers (the `Pipeline`'s default buffer). In both,
//! the last stage (one worker) folds the results into a `u64`, checked
//! against the sequential answer.

use std::convert::Infallible;
use std::fs;
use std::hint::black_box;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::Scope;
use std::time::Duration;

use brigade::{Context, Pipeline};
use crossbeam_channel::{Receiver, Sender, bounded};
use sha2::{Digest, Sha256};

use crate::common::interleave::{Row, timed};
use crate::common::{calibrate, cpu_work};

/// Files `pipeline3` reads per run.
const FILES: usize = 3_500;
/// Bytes per file.
const FILE_BYTES: usize = 10 * 1024;
/// Items `pipeline5` pushes per run.
const ITEMS: u64 = 20_000;
/// CPU time of `pipeline5`'s slow stage, per item.
const SLOW: Duration = Duration::from_micros(50);

/// Files of pseudo-random bytes in a folder of their own under the
/// system's temporary directory, removed with the folder on drop.
struct Files {
    dir: PathBuf,
    paths: Vec<PathBuf>,
}

impl Files {
    fn write(count: usize, bytes: usize) -> io::Result<Self> {
        let name = format!("brigade-bench-files-{}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        fs::create_dir_all(&dir)?;
        // Armed before the first file, so a failed write still cleans up.
        let mut files = Self {
            dir,
            paths: Vec::with_capacity(count),
        };
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut contents = vec![0u8; bytes];
        for i in 0..count {
            for chunk in contents.chunks_mut(8) {
                // xorshift64: cheap bytes that do not compress.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
            }
            let path = files.dir.join(format!("{i:05}.bin"));
            fs::write(&path, &contents)?;
            files.paths.push(path);
        }
        Ok(files)
    }

    fn read(&self, i: usize) -> io::Result<Vec<u8>> {
        fs::read(&self.paths[i])
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// SHA-256 of `bytes`.
fn hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Adds a digest's first eight bytes to `total`: an order-free fold.
fn fold(total: u64, digest: &[u8; 32]) -> u64 {
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    total.wrapping_add(u64::from_le_bytes(head))
}

/// Starts `n` threads in `s` that apply `f` to each item of `rx` and send
/// the result on `tx`. The last thread to finish drops the last `tx`,
/// which closes the next stage's channel.
fn workers<'s, A, B>(
    s: &'s Scope<'s, '_>,
    n: usize,
    rx: Receiver<A>,
    tx: Sender<B>,
    f: impl Fn(A) -> B + Send + Copy + 's,
) where
    A: Send + 's,
    B: Send + 's,
{
    for _ in 0..n {
        let (rx, tx) = (rx.clone(), tx.clone());
        s.spawn(move || {
            for item in rx {
                if tx.send(f(item)).is_err() {
                    break;
                }
            }
        });
    }
}

/// `pipeline3`: read → hash → sum over the bench files.
pub(super) fn three_stages() -> Row {
    let files = Arc::new(Files::write(FILES, FILE_BYTES).expect("write the bench files"));
    let expected = sequential3(&files);
    let (ours, theirs) = (Arc::clone(&files), Arc::clone(&files));
    Row::brigade(move || timed(|| assert_eq!(brigade3(&ours), expected)))
        .peer("crossbeam", move || {
            timed(|| assert_eq!(crossbeam3(&theirs), expected))
        })
        .peer("sequential", move || {
            timed(|| assert_eq!(sequential3(&files), expected))
        })
}

fn brigade3(files: &Arc<Files>) -> u64 {
    let total = Arc::new(AtomicU64::new(0));
    let (reader, sum) = (Arc::clone(files), Arc::clone(&total));
    Pipeline::new(&Context::new())
        .stage("read", 2, move |_, i: usize| reader.read(i))
        .stage("hash", 2, |_, bytes: Vec<u8>| Ok(hash(&bytes)))
        .stage("sum", 1, move |_, digest: [u8; 32]| {
            // ORDERING: Relaxed; `run` joins the stage's thread before the load.
            sum.fetch_add(fold(0, &digest), Ordering::Relaxed);
            Ok(())
        })
        .build()
        .expect("pipeline settings")
        .run(0..files.paths.len())
        .expect("every file reads");
    total.load(Ordering::Relaxed)
}

fn crossbeam3(files: &Files) -> u64 {
    std::thread::scope(|s| {
        let (paths_tx, paths) = bounded(2);
        let (bytes_tx, bytes) = bounded(2);
        let (digests_tx, digests) = bounded(1);
        workers(s, 2, paths, bytes_tx, |i| {
            files.read(i).expect("a file reads")
        });
        workers(s, 2, bytes, digests_tx, |bytes: Vec<u8>| hash(&bytes));
        let sum = s.spawn(move || digests.iter().fold(0, |total, d| fold(total, &d)));
        for i in 0..files.paths.len() {
            paths_tx.send(i).expect("the read stage runs");
        }
        drop(paths_tx);
        sum.join().expect("the sum stage ran")
    })
}

fn sequential3(files: &Files) -> u64 {
    (0..files.paths.len()).fold(0, |total, i| {
        fold(total, &hash(&files.read(i).expect("a file reads")))
    })
}

/// `pipeline5`'s stages but the last: two trivial ones, the slow one,
/// another trivial one.
fn parse(x: u64) -> u64 {
    x + 1
}

fn validate(x: u64) -> u64 {
    x.wrapping_mul(3)
}

fn compute(x: u64, iterations: u64) -> u64 {
    black_box(cpu_work(iterations));
    x ^ 0xA5
}

fn encode(x: u64) -> u64 {
    x.rotate_left(7)
}

/// `pipeline5`: five stages, the middle one slow.
pub(super) fn five_stages() -> Row {
    let iterations = calibrate(SLOW);
    let expected = (0..ITEMS)
        .map(|x| encode(compute(validate(parse(x)), 0)))
        .fold(0, u64::wrapping_add);
    Row::brigade(move || timed(|| assert_eq!(brigade5(iterations), expected)))
        .peer("crossbeam", move || {
            timed(|| assert_eq!(crossbeam5(iterations), expected))
        })
}

fn brigade5(iterations: u64) -> u64 {
    let total = Arc::new(AtomicU64::new(0));
    let sum = Arc::clone(&total);
    Pipeline::new(&Context::new())
        .stage("parse", 1, |_, x: u64| Ok::<_, Infallible>(parse(x)))
        .stage("validate", 1, |_, x| Ok(validate(x)))
        .stage("compute", 2, move |_, x| Ok(compute(x, iterations)))
        .stage("encode", 1, |_, x| Ok(encode(x)))
        .stage("sum", 1, move |_, x| {
            // ORDERING: Relaxed; `run` joins the stage's thread before the load.
            sum.fetch_add(x, Ordering::Relaxed);
            Ok(())
        })
        .build()
        .expect("pipeline settings")
        .run(0..ITEMS)
        .expect("no stage fails");
    total.load(Ordering::Relaxed)
}

fn crossbeam5(iterations: u64) -> u64 {
    std::thread::scope(|s| {
        let (items_tx, items) = bounded(1);
        let (parsed_tx, parsed) = bounded(1);
        let (valid_tx, valid) = bounded(2);
        let (computed_tx, computed) = bounded(1);
        let (encoded_tx, encoded) = bounded(1);
        workers(s, 1, items, parsed_tx, parse);
        workers(s, 1, parsed, valid_tx, validate);
        workers(s, 2, valid, computed_tx, move |x| compute(x, iterations));
        workers(s, 1, computed, encoded_tx, encode);
        let sum = s.spawn(move || encoded.iter().fold(0, u64::wrapping_add));
        for x in 0..ITEMS {
            items_tx.send(x).expect("the first stage runs");
        }
        drop(items_tx);
        sum.join().expect("the sum stage ran")
    })
}
