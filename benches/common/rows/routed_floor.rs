//! Hand-written floors for keys and lanes (#19): the simplest executors
//! that give per-key order without head-of-line blocking, and priority
//! lanes, measured against the crossbeam floor of plain jobs. They say
//! what the property costs a tiny job in its plainest design: the
//! `keyed-cost` and `lane-cost` budgets are ratios to plain jobs, and a
//! floor's own ratio is what this plainest design of the property costs.
//!
//! Neither floor has what brigade's dispatcher adds: no starvation bound
//! (no clock read per job), no lane caps, no per-key cap, no stats, no
//! cancellation, panics not caught.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Select, Sender, TryRecvError};
use parking_lot::{Condvar, Mutex, MutexGuard};

type Job = Box<dyn FnOnce() + Send>;

/// An idle worker's wait before it sleeps: it looks again after
/// 1, 2, 4, … 64 spins, then after each of four yields, as brigade's
/// workers and crossbeam's `recv` do, so neither floor pays a futex
/// wake-up per job that the plain floor does not. `false` once spent.
fn snooze(step: &mut u32) -> bool {
    if *step <= 6 {
        (0..1u32 << *step).for_each(|_| std::hint::spin_loop());
    } else {
        std::thread::yield_now();
    }
    *step += 1;
    *step <= 10
}

/// A multiply for the keys' map: the keys are small integers, and
/// SipHash would charge the floor for a cost brigade does not pay.
#[derive(Default)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|&b| self.write_u64(u64::from(b)));
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }
}

/// The keyed floor's state: the jobs free to run, and per active key the
/// jobs behind the one that is ready or running (an entry exists while
/// the key has a job ready or running).
#[derive(Default)]
struct KeyedState {
    ready: VecDeque<(u64, Job)>,
    held: HashMap<u64, VecDeque<Job>, BuildHasherDefault<MixHasher>>,
    queued: usize,
    sleeping: usize,
    /// Submitters asleep waiting for room.
    waiting: usize,
    closed: bool,
}

struct KeyedShared {
    state: Mutex<KeyedState>,
    work: Condvar,
    room: Condvar,
    /// `ready.len()`, readable without the lock by a spinning worker.
    ready_hint: AtomicUsize,
    /// `queued`, readable without the lock by a spinning submitter.
    queued_hint: AtomicUsize,
    capacity: usize,
}

/// Per-key order the textbook way: one lock over a ready queue and a map
/// of held keys. A job whose key has one ready or running waits in its
/// key's queue; the worker that ends a key's job moves the next one to
/// the ready queue. Bounded like the plain floor (`capacity` queued).
pub(super) struct KeyedFloor {
    shared: Arc<KeyedShared>,
    threads: Vec<JoinHandle<()>>,
}

impl KeyedFloor {
    pub(super) fn new(workers: usize, capacity: usize) -> Self {
        let shared = Arc::new(KeyedShared {
            state: Mutex::new(KeyedState::default()),
            work: Condvar::new(),
            room: Condvar::new(),
            ready_hint: AtomicUsize::new(0),
            queued_hint: AtomicUsize::new(0),
            capacity,
        });
        let threads = (0..workers)
            .map(|_| {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || shared.work_loop())
            })
            .collect();
        Self { shared, threads }
    }

    pub(super) fn execute(&self, key: u64, job: impl FnOnce() + Send + 'static) {
        let shared = &*self.shared;
        let job: Job = Box::new(job);
        let mut state = shared.room_for_one();
        state.queued += 1;
        shared.queued_hint.store(state.queued, Ordering::Relaxed);
        match state.held.entry(key) {
            Entry::Occupied(mut behind) => behind.get_mut().push_back(job),
            Entry::Vacant(vacant) => {
                vacant.insert(VecDeque::new());
                shared.make_ready(&mut state, key, job);
            }
        }
    }
}

impl KeyedShared {
    /// The lock, once the queue has room: a full queue is looked at again
    /// after each of [`snooze`]'s steps, as a crossbeam `send` spins
    /// before it blocks, then waited for asleep.
    fn room_for_one(&self) -> MutexGuard<'_, KeyedState> {
        let mut step = 0;
        loop {
            let mut state = self.state.lock();
            if state.queued < self.capacity {
                return state;
            }
            drop(state);
            // Spins on the hint, not the lock, which the workers need.
            while self.queued_hint.load(Ordering::Relaxed) >= self.capacity {
                if !snooze(&mut step) {
                    state = self.state.lock();
                    while state.queued >= self.capacity {
                        state.waiting += 1;
                        self.room.wait(&mut state);
                        state.waiting -= 1;
                    }
                    return state;
                }
            }
        }
    }

    fn make_ready(&self, state: &mut KeyedState, key: u64, job: Job) {
        state.ready.push_back((key, job));
        self.ready_hint.store(state.ready.len(), Ordering::Relaxed);
        if state.sleeping > 0 {
            self.work.notify_one();
        }
    }

    fn work_loop(&self) {
        let mut state = self.state.lock();
        loop {
            if let Some((key, job)) = state.ready.pop_front() {
                self.ready_hint.store(state.ready.len(), Ordering::Relaxed);
                state.queued -= 1;
                self.queued_hint.store(state.queued, Ordering::Relaxed);
                if state.waiting > 0 {
                    self.room.notify_one();
                }
                drop(state);
                job();
                state = self.state.lock();
                self.end(&mut state, key);
            } else if state.closed {
                return;
            } else {
                state = self.idle(state);
            }
        }
    }

    /// The key's next job, if any, becomes ready; else the key is gone.
    fn end(&self, state: &mut KeyedState, key: u64) {
        let behind = state.held.get_mut(&key).expect("a running key is held");
        match behind.pop_front() {
            Some(next) => self.make_ready(state, key, next),
            None => {
                state.held.remove(&key);
            }
        }
    }

    /// Spins a little for a ready job, then sleeps until one is made.
    fn idle<'a>(&'a self, state: MutexGuard<'a, KeyedState>) -> MutexGuard<'a, KeyedState> {
        drop(state);
        let mut step = 0;
        while snooze(&mut step) {
            if self.ready_hint.load(Ordering::Relaxed) != 0 {
                return self.state.lock();
            }
        }
        let mut state = self.state.lock();
        if state.ready.is_empty() && !state.closed {
            state.sleeping += 1;
            self.work.wait(&mut state);
            state.sleeping -= 1;
        }
        state
    }
}

impl Drop for KeyedFloor {
    fn drop(&mut self) {
        self.shared.state.lock().closed = true;
        self.shared.work.notify_all();
        self.threads.drain(..).for_each(|thread| {
            let _ = thread.join();
        });
    }
}

/// Priority lanes the textbook way: one bounded crossbeam channel per
/// lane; a worker takes from the highest non-empty one, and blocks in a
/// `Select` over all three when they are empty.
pub(super) struct LaneFloor {
    lanes: Option<[Sender<Job>; 3]>,
    threads: Vec<JoinHandle<()>>,
}

impl LaneFloor {
    pub(super) fn new(workers: usize, capacity: usize) -> Self {
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..3).map(|_| crossbeam_channel::bounded(capacity)).unzip();
        let receivers: Arc<[Receiver<Job>]> = receivers.into();
        let threads = (0..workers)
            .map(|_| {
                let receivers = Arc::clone(&receivers);
                std::thread::spawn(move || lane_loop(&receivers))
            })
            .collect();
        let lanes = senders.try_into().expect("three lanes");
        Self {
            lanes: Some(lanes),
            threads,
        }
    }

    /// Queues `job` on lane `lane`: 0 is the highest.
    pub(super) fn execute(&self, lane: usize, job: impl FnOnce() + Send + 'static) {
        if let Some(lanes) = &self.lanes {
            let _ = lanes[lane].send(Box::new(job));
        }
    }
}

/// Runs the highest lane's front job while any lane has one; blocks
/// otherwise. Ends once every lane is empty and closed.
fn lane_loop(lanes: &[Receiver<Job>]) {
    let mut step = 0;
    loop {
        let mut closed = 0;
        let mut job = None;
        for lane in lanes {
            match lane.try_recv() {
                Ok(found) => {
                    job = Some(found);
                    break;
                }
                Err(TryRecvError::Disconnected) => closed += 1,
                Err(TryRecvError::Empty) => {}
            }
        }
        if let Some(job) = job {
            step = 0;
            job();
            continue;
        }
        if closed == lanes.len() {
            return;
        }
        if snooze(&mut step) {
            continue;
        }
        step = 0;
        let mut select = Select::new();
        lanes.iter().for_each(|lane| {
            select.recv(lane);
        });
        let ready = select.select();
        let index = ready.index();
        if let Ok(job) = ready.recv(&lanes[index]) {
            job();
        }
    }
}

impl Drop for LaneFloor {
    fn drop(&mut self) {
        self.lanes = None;
        self.threads.drain(..).for_each(|thread| {
            let _ = thread.join();
        });
    }
}
