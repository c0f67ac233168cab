//! A pool's timer: one thread per pool, started by the first delayed job
//! or schedule, holding every due time in one ordered map.
//!
//! Entries are keyed by `(due time, sequence number)`: the next one is the
//! first key, and adding or removing one (a cancel) is `O(log n)`. At its
//! due time the thread takes an entry out and [fires](Due::fire) it
//! outside the lock; firing hands a job to the pool through its
//! [`Door`], never waiting for room, so one full queue cannot hold up
//! every other entry.
//!
//! The timer stops when the pool closes or is cancelled: every entry
//! still waiting is [cancelled](Due::cancel) (a delayed job's handle
//! reports `Cancelled`, a schedule ends), later inserts are refused, and
//! the thread exits; the pool joins it before it waits for its workers,
//! so no timer thread outlives its pool.

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::context::Context;
use crate::crew::Door;
use crate::error::Cancelled;
use crate::pool::job::{PoolExec, Task};
use crate::sync::{Arc, Condvar, Mutex, Weak};

/// How long an entry whose job found the queue full waits before it
/// tries again.
const FULL_RETRY: Duration = Duration::from_millis(1);

/// The pool's way in, as the timer thread uses it.
pub(crate) type PoolDoor = Door<Task, PoolExec>;

/// One entry on the timer. Shared rather than boxed: a delayed job is
/// its own entry, with no box of its own (see `delayed.rs`).
pub(crate) type Entry = Arc<dyn Due>;

/// Something the timer fires at its due time.
pub(crate) trait Due: Send + Sync {
    /// Hands its job to the pool through `door` (on the timer thread; it
    /// must not wait for room).
    fn fire(self: Arc<Self>, door: &PoolDoor, timer: &Arc<Timer>);
    /// It will never fire: the pool stopped (`reason`). `door` is the
    /// pool's way in, for what must still be counted there.
    fn cancel(self: Arc<Self>, reason: Cancelled, door: Option<&PoolDoor>);
    /// Whether its job has neither run nor been cancelled (a delayed job
    /// a join ran inline may leave a stale entry; see `delayed.rs`).
    fn is_pending(&self) -> bool {
        true
    }
    /// Whether it is a schedule's next run rather than a delayed job.
    fn is_tick(&self) -> bool;
}

/// Identifies one entry, for removal: its due time, in nanoseconds since
/// the timer's epoch (16 bytes where an `Instant` and a sequence number
/// take 24: every pending job holds a key, and the map one more), and a
/// sequence number that orders entries due at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key {
    at: u64,
    seq: NonZeroU64,
}

/// Where its owner's entry waits on the timer, as the owner last heard.
/// Only a newer key replaces the one held: the thread that inserted the
/// first entry may note its key after the timer fired it and a worker
/// noted the next one.
#[derive(Debug, Default)]
pub(crate) struct Slot(Option<Key>);

impl Slot {
    /// Notes `key`, unless a newer one is held.
    pub(crate) fn note(&mut self, key: Key) {
        if self.0.is_none_or(|held| held.seq < key.seq) {
            self.0 = Some(key);
        }
    }

    /// The newest key noted, to take its entry off the timer (an entry
    /// already fired is simply not found).
    pub(crate) fn take(&mut self) -> Option<Key> {
        self.0.take()
    }
}

/// Why an entry was not taken; it comes back.
pub(crate) enum Refused {
    /// The timer was stopped: the pool closed, or was cancelled.
    Stopped(Entry, Option<Cancelled>),
    /// The OS refused to start the timer thread.
    NoThread(Entry),
}

/// What a stopped pool's timer never fired: delayed jobs not yet due, and
/// schedules that ended with the pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Unfired {
    pub(crate) delayed: u64,
    pub(crate) schedules: u64,
}

/// See the module docs.
pub(crate) struct Timer {
    /// What [`Key`]s count their due times from: no later than any due
    /// time asked for (an earlier one is due at once anyway).
    epoch: Instant,
    state: Mutex<State>,
    wake: Condvar,
    /// Notified once a stop has cancelled every entry it took.
    settled: Condvar,
}

#[derive(Default)]
struct State {
    entries: BTreeMap<Key, Entry>,
    next_seq: u64,
    /// Set once the timer stops; `Some(reason)` if the pool was
    /// cancelled, `None` if it closed.
    stopped: Option<Option<Cancelled>>,
    /// The stop has cancelled every entry it took.
    settled: bool,
    /// The pool's way in, shared with the thread; dropped by `stop`, so
    /// the queue can close once the thread has exited.
    door: Option<Arc<PoolDoor>>,
    thread: Option<JoinHandle<()>>,
    unfired: Unfired,
}

impl Timer {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            settled: Condvar::new(),
        })
    }

    /// Adds `due` to fire at `at`, starting the thread (with the door
    /// `door` makes, and stopping when `ctx` is done) on first use.
    pub(crate) fn insert(
        self: &Arc<Self>,
        at: Instant,
        due: Entry,
        start: impl FnOnce() -> (PoolDoor, Context),
    ) -> Result<Key, Refused> {
        let mut state = self.state.lock();
        if let Some(reason) = state.stopped {
            return Err(Refused::Stopped(due, reason));
        }
        let mut started = None;
        if state.thread.is_none() {
            let (door, ctx) = start();
            let door = Arc::new(door);
            state.door = Some(Arc::clone(&door));
            match self.spawn(door) {
                Ok(thread) => state.thread = Some(thread),
                Err(err) => {
                    log::error!("brigade: could not start a pool's timer thread: {err}");
                    return Err(Refused::NoThread(due));
                }
            }
            started = Some(ctx);
        }
        let key = Key {
            // Saturates 584 years out, past any due time a pool accepts.
            at: u64::try_from(at.saturating_duration_since(self.epoch).as_nanos())
                .unwrap_or(u64::MAX),
            seq: NonZeroU64::MIN.saturating_add(state.next_seq),
        };
        state.next_seq += 1;
        let first = state
            .entries
            .first_key_value()
            .is_none_or(|(k, _)| key < *k);
        state.entries.insert(key, due);
        if first {
            self.wake.notify_one();
        }
        drop(state);
        if let Some(ctx) = started {
            // Outside the lock: on a pool already cancelled the hook runs
            // at once, and stops the timer, cancelling this very entry.
            self.stop_with(&ctx);
        }
        Ok(key)
    }

    /// Stops the timer when the pool's context `ctx` is done. Weak: the
    /// hook lives in the pool's own context.
    fn stop_with(self: &Arc<Self>, ctx: &Context) {
        let timer = Arc::downgrade(self);
        let _ = ctx.on_done(move |reason| {
            if let Some(timer) = Weak::upgrade(&timer) {
                timer.stop(Some(reason));
            }
        });
    }

    /// Puts `due` back a moment later, from the timer's own thread: its job
    /// found the queue full. It was accepted, so it is never dropped, and
    /// the timer must not block on one queue. A stopped timer cancels it
    /// instead. Returns its new key.
    pub(crate) fn retry_soon(self: &Arc<Self>, due: Entry, door: &PoolDoor) -> Option<Key> {
        let at = Instant::now() + FULL_RETRY;
        match self.insert(at, due, || {
            unreachable!("brigade: the timer's own thread is running")
        }) {
            Ok(key) => Some(key),
            Err(Refused::Stopped(due, reason)) => {
                due.cancel(reason.unwrap_or(Cancelled::Canceled), Some(door));
                None
            }
            Err(Refused::NoThread(due)) => {
                due.cancel(Cancelled::Canceled, Some(door));
                None
            }
        }
    }

    /// Takes out the entry `key`, if it has not fired.
    pub(crate) fn remove(&self, key: Key) -> Option<Entry> {
        self.state.lock().entries.remove(&key)
    }

    /// Stops the timer (idempotent): every entry waiting is cancelled with
    /// `reason` (`None`: the pool closed) and later inserts are refused.
    /// Returns once every entry is cancelled, also when another thread
    /// (the pool's deadline hook, say) stopped it first: a shutdown report
    /// made after this counts them all.
    pub(crate) fn stop(&self, reason: Option<Cancelled>) {
        let mut state = self.state.lock();
        if state.stopped.is_some() {
            while !state.settled {
                self.settled.wait(&mut state);
            }
            return;
        }
        state.stopped = Some(reason);
        let entries = std::mem::take(&mut state.entries);
        let door = state.door.take();
        // A schedule's end counts itself (`schedule_stopped`), wherever
        // its next run was.
        state.unfired.delayed += entries
            .values()
            .filter(|due| !due.is_tick() && due.is_pending())
            .count() as u64;
        self.wake.notify_one();
        drop(state);
        for due in entries.into_values() {
            due.cancel(reason.unwrap_or(Cancelled::Canceled), door.as_deref());
        }
        drop(door);
        self.state.lock().settled = true;
        self.settled.notify_all();
    }

    /// Stops the timer and waits for its thread to exit (not from the
    /// thread itself, which never calls it).
    pub(crate) fn stop_and_join(&self, reason: Option<Cancelled>) {
        self.stop(reason);
        let thread = self.state.lock().thread.take();
        if let Some(thread) = thread {
            // Firing catches nothing; a panic there is a bug in brigade.
            let _ = thread.join();
        }
    }

    /// A schedule ended because the pool stopped.
    pub(crate) fn schedule_stopped(&self) {
        self.state.lock().unfired.schedules += 1;
    }

    /// What the stopped timer never fired.
    pub(crate) fn unfired(&self) -> Unfired {
        self.state.lock().unfired
    }

    fn spawn(self: &Arc<Self>, door: Arc<PoolDoor>) -> std::io::Result<JoinHandle<()>> {
        let timer = Arc::clone(self);
        std::thread::Builder::new()
            .name("brigade-schedule".into())
            .spawn(move || timer.run(&door))
    }

    /// The thread: fires each entry at its due time until stopped.
    fn run(self: &Arc<Self>, door: &PoolDoor) {
        let mut state = self.state.lock();
        while state.stopped.is_none() {
            // `None` inside: due past what an `Instant` can hold; waits
            // like an empty map, for an insert or a stop.
            let next = state
                .entries
                .first_key_value()
                .map(|(key, _)| self.epoch.checked_add(Duration::from_nanos(key.at)));
            match next {
                Some(Some(at)) if at <= Instant::now() => {
                    let Some((_, due)) = state.entries.pop_first() else {
                        continue;
                    };
                    drop(state);
                    due.fire(door, self);
                    state = self.state.lock();
                }
                Some(Some(at)) => {
                    let _ = self.wake.wait_until(&mut state, at);
                }
                Some(None) | None => self.wake.wait(&mut state),
            }
        }
    }
}
