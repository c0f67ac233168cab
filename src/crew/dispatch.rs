//! The dispatcher: which queued job a free worker takes next, for jobs
//! submitted with a key or a priority lane.
//!
//! A pool that never routes a job never touches this: its jobs go through
//! the jobs channel alone, and a worker's only costs are one relaxed load
//! of [`Board::ready`] per job, on a cache line nobody writes, and,
//! each time it parks, counting itself parked ([`Board::blocks`]: two
//! atomic additions and a fence, beside the park's own system calls).
//!
//! # The board
//!
//! A routed job is admitted to the [`Board`] rather than the channel. The
//! board holds one queue per [`Lane`], and per active key the jobs queued
//! behind the one of that key that is in a lane queue or running. A key
//! has an entry only while it has a job queued or running, so keys that
//! come and go cost nothing once idle.
//!
//! A worker takes from the board the front of the highest lane that is
//! under its cap, unless the front of some lane under its cap has waited
//! longer than the starvation bound: then the longest-waiting such front
//! goes first, so no job waits forever behind newer higher-priority
//! work. A key's next job enters its lane queue only when the previous
//! one ends, so jobs of one key run one at a time in submission order,
//! and a busy key never blocks a worker: it simply has nothing in the
//! lane queues.
//!
//! # Turns
//!
//! Workers block on the jobs channel, so a routed job that may start
//! also sends a *turn* ([`Queued::Turn`](super::Queued)) there while a
//! worker is blocked: it wakes one, which then takes the best job on the
//! board, not necessarily the one that sent the turn. Turns are only
//! wake-ups; the board is the truth. Nothing is stranded because:
//!
//! * a worker looks at the board before every job, and counts itself
//!   blocked and then looks once more before it blocks
//!   ([`Board::blocks`]); a submit sends a turn when that count is not
//!   zero after its job is on the board, so one of the two sees the
//!   other; a full channel never lets a worker block. While every worker
//!   is busy or spinning, a routed job sends no turn at all;
//! * on a rendezvous queue the submit's turn is a blocking send, which
//!   completes only once a worker has received it (so there every routed
//!   job sends one, and workers do not count themselves blocked);
//! * a job made ready by another's end (its key's predecessor, or a slot
//!   under a lane cap) is taken by the worker that ran that job, which
//!   looks at the board next; a second one made ready by the same end, or
//!   one made ready by a worker that is leaving, is announced with a nudge
//!   on the retire channel, which every idle worker also watches;
//! * after intake closes, a worker leaves only once the board is empty,
//!   waiting on `changed` while jobs are held back behind running ones.
//!
//! A plain job that a worker receives while the board has work ready goes
//! onto the board as a `Normal` job and the best job runs instead, so a
//! `High` job overtakes plain jobs queued before it.
//!
//! # Bounds
//!
//! The board holds at most the pool's queue capacity (at least 1) of
//! routed jobs, and each key at most `key_queue` behind its running one;
//! a submit waits for room, or is refused, per its family, as one blocked
//! on the channel is.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::time::{Duration, Instant};

use super::{Envelope, Wait};
use crate::context::Context;
use crate::error::TrySubmitError;
use crate::lane::{Lane, LaneLoad};
use crate::sync::{AtomicBool, AtomicUsize, Condvar, Mutex, MutexGuard, Ordering, fence};

/// Where a routed job goes: its lane and, if keyed, its key's hash.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) lane: Lane,
    pub(crate) key: Option<u64>,
}

impl Route {
    /// The `Normal` lane, with key `key`.
    pub(crate) fn keyed(key: &(impl Hash + ?Sized)) -> Self {
        Self {
            lane: Lane::Normal,
            key: Some(Self::key_of(key)),
        }
    }

    /// The hash a key is ordered by. A fixed hasher, so equal keys agree
    /// across threads; two keys whose hashes collide are merely ordered
    /// with each other, so a fast hash will do. Never zero, so a job's
    /// cell holds an optional key in eight bytes (a key hashing to 0 is
    /// ordered with one hashing to 1).
    pub(crate) fn key_of(key: &(impl Hash + ?Sized)) -> u64 {
        let mut hasher = KeyHasher::default();
        key.hash(&mut hasher);
        hasher.finish().max(1)
    }
}

/// FxHash's mixing (rustc's own hasher): a rotate, a xor and a multiply
/// per word, a fraction of SipHash's cost on the small keys jobs carry
/// (an account id, a short name). It also hashes the board's map, whose
/// keys are already such hashes.
#[derive(Default)]
struct KeyHasher(u64);

impl KeyHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The dispatcher's settings, validated by the builder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dispatch {
    /// Most workers running each lane's jobs at once (`usize::MAX`: no cap).
    pub(crate) caps: [usize; 3],
    /// A job waiting longer than this goes before newer work of any lane.
    pub(crate) starvation: Duration,
    /// Most jobs of one key waiting behind the one queued or running.
    pub(crate) key_queue: usize,
}

/// The default [`Dispatch::starvation`].
const DEFAULT_STARVATION: Duration = Duration::from_millis(250);
/// The default [`Dispatch::key_queue`].
const DEFAULT_KEY_QUEUE: usize = 1024;

impl Default for Dispatch {
    fn default() -> Self {
        Self {
            caps: [usize::MAX; 3],
            starvation: DEFAULT_STARVATION,
            key_queue: DEFAULT_KEY_QUEUE,
        }
    }
}

/// A routed job on the board.
struct Entry<J> {
    queued: Envelope<J>,
    route: Route,
    since: Instant,
    /// Unique on the board, for [`Board::withdraw`] (an envelope's `seq`
    /// is not: a refused submit gives its number back).
    id: u64,
}

/// A job taken from the board: give it back to [`Board::finish`] when it
/// ends, so its key's next job and its lane's slot are released.
#[must_use]
pub(crate) struct Ticket(Route);

impl Ticket {
    /// The index of the lane the job was taken from.
    pub(crate) fn lane(&self) -> usize {
        self.0.lane.index()
    }
}

/// What a submit's admission was refused for; the job comes back.
pub(crate) type Refused<J> = TrySubmitError<Envelope<J>>;

/// The dispatcher's queues (see the module docs).
pub(crate) struct Board<J> {
    state: Mutex<State<J>>,
    /// Notified when a job is taken or ends, for submits waiting for room
    /// and for workers waiting after intake closed.
    changed: Condvar,
    /// Jobs in the lane queues of lanes under their cap, which a free
    /// worker may take: read before locking, so a pool that routes nothing
    /// never locks. Written under the lock, by [`publish`](Self::publish).
    ready: AtomicUsize,
    /// Jobs on the board in all.
    len: AtomicUsize,
    /// Threads waiting on `changed`.
    sleepers: AtomicUsize,
    /// Of `sleepers`, submits waiting for room.
    submitters: AtomicUsize,
    /// Turns in the jobs channel, left out of `Stats::queued`.
    turns: AtomicUsize,
    /// Workers blocked on the channels (see [`blocks`](Self::blocks)):
    /// a submit sends a turn only while one is.
    blocked: AtomicUsize,
    /// Jobs running per lane. Changed under the lock for a capped lane
    /// (`pick` and `publish` compare it with the cap there); an uncapped
    /// lane's unkeyed job ends without the lock (`finish`).
    running: [AtomicUsize; 3],
    /// Whether the pool's context wakes `changed` when it is done.
    hooked: AtomicBool,
    settings: Dispatch,
    /// Most jobs on the board.
    capacity: usize,
}

struct State<J> {
    lanes: [VecDeque<Entry<J>>; 3],
    /// Per active key, the jobs behind the one in a lane queue or running.
    keys: HashMap<u64, VecDeque<Entry<J>>, BuildHasherDefault<KeyHasher>>,
    /// The next [`Entry::id`].
    next_id: u64,
}

impl<J> Board<J> {
    pub(crate) fn new(settings: Dispatch, queue_capacity: Option<usize>) -> Self {
        Self {
            state: Mutex::new(State {
                lanes: Default::default(),
                keys: HashMap::default(),
                next_id: 0,
            }),
            changed: Condvar::new(),
            ready: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            submitters: AtomicUsize::new(0),
            turns: AtomicUsize::new(0),
            blocked: AtomicUsize::new(0),
            running: Default::default(),
            hooked: AtomicBool::new(false),
            settings,
            capacity: queue_capacity.map_or(usize::MAX, |capacity| capacity.max(1)),
        }
    }

    /// Whether a worker might find a job to take (a hint: it may find
    /// none once it locks).
    #[inline]
    pub(crate) fn has_ready(&self) -> bool {
        // ORDERING: Relaxed: a hint; taking locks the state.
        self.ready.load(Ordering::Relaxed) != 0
    }

    /// Whether no routed job is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
    }

    /// Routed jobs queued, for `Stats::queued`.
    pub(crate) fn queued(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// How many of the jobs channel's messages are turns.
    pub(crate) fn turns(&self) -> &AtomicUsize {
        &self.turns
    }

    /// Marks the calling worker blocked on the channels until the guard
    /// drops; `None` if a job is ready on the board after all, to take
    /// instead of blocking.
    ///
    /// No lost wake-up: the worker counts itself, then looks at `ready`;
    /// a submit publishes `ready`, then looks at the count
    /// ([`wants_turn`](Self::wants_turn)). With a SeqCst fence on each
    /// side, at least one of the two sees the other.
    pub(crate) fn blocks(&self) -> Option<Blocked<'_>> {
        self.blocked.fetch_add(1, Ordering::SeqCst);
        let blocked = Blocked(&self.blocked);
        fence(Ordering::SeqCst);
        (!self.has_ready()).then_some(blocked)
    }

    /// Whether a job just admitted needs a turn to wake a worker: only
    /// while one is blocked. A worker that is not looks at the board
    /// before its next job, and before it blocks (see
    /// [`blocks`](Self::blocks)). Called after [`admit`](Self::admit),
    /// whose fence orders the push before this load.
    pub(crate) fn wants_turn(&self) -> bool {
        self.blocked.load(Ordering::Relaxed) != 0
    }

    /// Whether a routed job was ever submitted.
    pub(crate) fn in_use(&self) -> bool {
        self.hooked.load(Ordering::Relaxed)
    }

    /// Whether `ctx`'s cancellation still has to be hooked to wake the
    /// board's sleepers (true once, for the first caller).
    pub(crate) fn needs_hook(&self) -> bool {
        // ORDERING: Relaxed: a second hook would only wake twice.
        !self.hooked.swap(true, Ordering::Relaxed)
    }

    /// Queues `queued` on `route`, waiting for room as `wait` allows while
    /// `ctx` is live and `closed` says intake is open. Returns the job's
    /// id on the board, for [`withdraw`](Self::withdraw).
    pub(crate) fn admit(
        &self,
        queued: Envelope<J>,
        route: Route,
        wait: Wait,
        ctx: &Context,
        closed: &dyn Fn() -> bool,
    ) -> Result<u64, Refused<J>> {
        // Read before locking: the lock is held for less, and a job that
        // waits for room counts its queue time from the end of the wait.
        let mut since = Instant::now();
        let mut state = self.state.lock();
        loop {
            // Under the lock: a cancel's drain either finds the job or
            // went first and is seen here, so none is stranded.
            if ctx.is_done() {
                return Err(TrySubmitError::Cancelled(queued));
            }
            if self.has_room(&state, route) {
                break;
            }
            // Only before a wait: the front door looked at its switch
            // before it came here, and a submit racing the close may go
            // either way. A signal's check is a channel operation.
            if closed() {
                return Err(TrySubmitError::Closed(queued));
            }
            let deadline = match wait {
                Wait::Now => return Err(TrySubmitError::Full(queued)),
                Wait::Forever => None,
                Wait::Until(deadline) if Instant::now() < deadline => Some(deadline),
                Wait::Until(_) => return Err(TrySubmitError::Full(queued)),
            };
            self.submitters.fetch_add(1, Ordering::SeqCst);
            self.sleep(&mut state, deadline);
            self.submitters.fetch_sub(1, Ordering::SeqCst);
            since = Instant::now();
        }
        let id = self.push(&mut state, queued, route, since);
        drop(state);
        // Orders the push before what the submit reads next: the count of
        // blocked workers ([`wants_turn`](Self::wants_turn)) and the pool's
        // cancellation (a cancel's drain looks at `len` after a fence of
        // its own, so one of the two sees the other).
        fence(Ordering::SeqCst);
        Ok(id)
    }

    fn has_room(&self, state: &State<J>, route: Route) -> bool {
        self.len.load(Ordering::Relaxed) < self.capacity
            && route.key.is_none_or(|key| {
                state
                    .keys
                    .get(&key)
                    .is_none_or(|behind| behind.len() < self.settings.key_queue)
            })
    }

    /// Puts `queued`, queued at `since`, in its lane queue, or behind its
    /// key's current job; returns its id on the board.
    #[inline]
    fn push(&self, state: &mut State<J>, queued: Envelope<J>, route: Route, since: Instant) -> u64 {
        let id = state.next_id;
        state.next_id += 1;
        let entry = Entry {
            queued,
            route,
            since,
            id,
        };
        // ORDERING: Release pairs with `is_empty`'s Acquire.
        self.len.fetch_add(1, Ordering::Release);
        if let Some(key) = route.key {
            match state.keys.get_mut(&key) {
                Some(behind) => {
                    behind.push_back(entry);
                    return id;
                }
                None => {
                    state.keys.insert(key, VecDeque::new());
                }
            }
        }
        self.enqueue(state, entry);
        id
    }

    /// Puts `entry` in its lane queue, which stays in submission order: a
    /// key's job released by its predecessor's end, or a plain job
    /// exchanged, may be older than the lane's newest. (An ordered
    /// `WorkerPool`'s window relies on it: see `ordered.rs`.)
    #[inline]
    fn enqueue(&self, state: &mut State<J>, entry: Entry<J>) {
        let lane = &mut state.lanes[entry.route.lane.index()];
        let seq = entry.queued.seq;
        if lane.back().is_none_or(|last| last.queued.seq <= seq) {
            lane.push_back(entry);
        } else {
            let at = lane.partition_point(|queued| queued.queued.seq <= seq);
            lane.insert(at, entry);
        }
        self.publish(state);
    }

    /// Jobs of lane `lane` running.
    fn running(&self, lane: usize) -> usize {
        // ORDERING: Relaxed: exact under the lock for a capped lane, which
        // is all `pick` and `publish` rely on; a statistic otherwise.
        self.running[lane].load(Ordering::Relaxed)
    }

    /// Stores how many queued jobs may start now, after a change under the
    /// lock: a worker that finds none blocks instead of looking again.
    fn publish(&self, state: &State<J>) {
        let mut ready = 0;
        for lane in 0..3 {
            if self.running(lane) < self.settings.caps[lane] {
                ready += state.lanes[lane].len();
            }
        }
        // ORDERING: Relaxed: `has_ready` is a hint; the lock orders the rest.
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Takes the job a free worker should run next, if any may start.
    pub(crate) fn take(&self) -> Option<(Envelope<J>, Ticket)> {
        let mut state = self.state.lock();
        let entry = self.take_locked(&mut state)?;
        drop(state);
        self.wake_sleepers(false);
        Some(entry)
    }

    fn take_locked(&self, state: &mut State<J>) -> Option<(Envelope<J>, Ticket)> {
        let lane = self.pick(state)?;
        let entry = state.lanes[lane].pop_front()?;
        // ORDERING: Relaxed: see `running`.
        self.running[lane].fetch_add(1, Ordering::Relaxed);
        self.publish(state);
        self.len.fetch_sub(1, Ordering::Release);
        Some((entry.queued, Ticket(entry.route)))
    }

    /// Swaps a plain job a worker just received for the board's best (the
    /// board has one ready): the plain job goes on the board as a `Normal`
    /// job, which can always start (`Normal` has no cap), so a job comes
    /// back, maybe the plain one.
    pub(crate) fn exchange(&self, plain: Envelope<J>) -> (Envelope<J>, Ticket) {
        let since = Instant::now();
        let mut state = self.state.lock();
        self.push(&mut state, plain, Route::default(), since);
        let taken = self.take_locked(&mut state);
        drop(state);
        taken.expect("a plain job on the board can always start")
    }

    /// The lane whose front goes next: the longest-waiting front past the
    /// starvation bound, else the highest lane with a job; lanes at their
    /// cap are passed over.
    fn pick(&self, state: &State<J>) -> Option<usize> {
        let open = |lane: usize| {
            self.running(lane) < self.settings.caps[lane] && !state.lanes[lane].is_empty()
        };
        // Plain loops over the three lanes: as iterator chains they were
        // a fifth of a take's instructions.
        let (mut first, mut open_lanes) = (None, 0);
        for lane in 0..3 {
            if open(lane) {
                first = first.or(Some(lane));
                open_lanes += 1;
            }
        }
        let first = first?;
        if open_lanes == 1 {
            // One lane to take from: no ages to compare, no clock to read.
            return Some(first);
        }
        // A job queued at or before this instant has waited the bound
        // out: one subtraction here, then a comparison of instants per
        // lane (a duration per lane was most of a take's instructions).
        let Some(starved_by) = Instant::now().checked_sub(self.settings.starvation) else {
            return Some(first);
        };
        let mut oldest: Option<(usize, Instant)> = None;
        for lane in 0..3 {
            let Some(front) = state.lanes[lane].front() else {
                continue;
            };
            if open(lane)
                && front.since <= starved_by
                && oldest.is_none_or(|(_, since)| front.since < since)
            {
                oldest = Some((lane, front.since));
            }
        }
        Some(oldest.map_or(first, |(lane, _)| lane))
    }

    /// A job taken with `ticket` ended: releases its lane slot and moves
    /// its key's next job into a lane queue. Returns how many jobs this
    /// made ready to start.
    pub(crate) fn finish(&self, ticket: Ticket) -> usize {
        let Ticket(route) = ticket;
        let lane = route.lane.index();
        if route.key.is_none() && self.settings.caps[lane] == usize::MAX {
            // Nothing waits on this end: no key to release, no cap to
            // reopen, no room freed (the take did that).
            self.running[lane].fetch_sub(1, Ordering::Relaxed);
            return 0;
        }
        let mut state = self.state.lock();
        let at_cap = self.running(lane) == self.settings.caps[lane];
        self.running[lane].fetch_sub(1, Ordering::Relaxed);
        let mut made_ready = usize::from(at_cap && !state.lanes[lane].is_empty());
        let mut key_room = false;
        if let Some(key) = route.key {
            let behind = state.keys.get_mut(&key);
            key_room = behind
                .as_ref()
                .is_some_and(|behind| behind.len() == self.settings.key_queue);
            match behind.and_then(VecDeque::pop_front) {
                Some(next) => {
                    self.enqueue(&mut state, next);
                    made_ready += 1;
                }
                None => {
                    state.keys.remove(&key);
                }
            }
        }
        self.publish(&state);
        drop(state);
        self.wake_sleepers(key_room);
        made_ready
    }

    /// Takes every queued job off the board (the pool was cancelled), for
    /// the caller to discard outside the lock.
    pub(crate) fn drain(&self) -> Vec<Envelope<J>> {
        let mut state = self.state.lock();
        let mut drained = Vec::new();
        for lane in &mut state.lanes {
            drained.extend(lane.drain(..).map(|entry| entry.queued));
        }
        for behind in state.keys.values_mut() {
            drained.extend(behind.drain(..).map(|entry| entry.queued));
        }
        // Keys of running jobs stay, emptied; `finish` removes them.
        state.keys.retain(|_, behind| !behind.is_empty());
        self.ready.store(0, Ordering::Relaxed);
        self.len.fetch_sub(drained.len(), Ordering::Release);
        drop(state);
        self.wake_sleepers(true);
        drained
    }

    /// Removes the job `admit` gave board id `id`, if still queued and not
    /// held behind its key (a rendezvous submit whose turn found no
    /// worker).
    pub(crate) fn withdraw(&self, id: u64, route: Route) -> Option<Envelope<J>> {
        let mut state = self.state.lock();
        let lane = &mut state.lanes[route.lane.index()];
        let at = lane.iter().position(|entry| entry.id == id)?;
        let entry = lane.remove(at)?;
        self.publish(&state);
        self.len.fetch_sub(1, Ordering::Release);
        if let Some(key) = route.key {
            // It was its key's only job: nothing queued behind, none running.
            state.keys.remove(&key);
        }
        Some(entry.queued)
    }

    /// Jobs queued and running per lane, less from the running ones the
    /// `ended` per lane whose end is recorded and whose ticket is not
    /// back yet (`Counters::ending`, read first: see
    /// `WorkerSlot::set_ending`).
    pub(crate) fn loads(&self, ended: [usize; 3]) -> [LaneLoad; 3] {
        let state = self.state.lock();
        let mut loads = [LaneLoad::default(); 3];
        for (lane, load) in loads.iter_mut().enumerate() {
            load.queued = state.lanes[lane].len();
            load.running = self.running(lane).saturating_sub(ended[lane]);
        }
        for entry in state.keys.values().flatten() {
            loads[entry.route.lane.index()].queued += 1;
        }
        loads
    }

    /// Waits, after intake closed, until a job is ready, the board is
    /// empty, or `ctx` is done. Returns whether to look again.
    pub(crate) fn wait_closed(&self, ctx: &Context) -> bool {
        let mut state = self.state.lock();
        while !self.has_ready() && !self.is_empty() && !ctx.is_done() {
            self.sleep(&mut state, None);
        }
        !self.is_empty() && !ctx.is_done()
    }

    fn sleep(&self, state: &mut MutexGuard<'_, State<J>>, deadline: Option<Instant>) {
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        match deadline {
            None => self.changed.wait(state),
            Some(deadline) => {
                let _ = self.changed.wait_until(state, deadline);
            }
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Wakes every thread waiting on the board after a change made under
    /// its lock (a job taken or ended), if it may let one go on: a sleeper
    /// counted itself under that lock before it checked, so a change it
    /// missed sees it counted.
    ///
    /// A worker waiting after close is always woken. Submits waiting for
    /// room are woken when `key_room` (their key's backlog shrank), once
    /// the board has drained to half its capacity, or once no job on it
    /// can start (no take would free room): a submitter that outruns the
    /// workers then refills half a board per wake-up instead of trading a
    /// wake-up for every job taken. A bounded wait still sees any room
    /// when it times out.
    fn wake_sleepers(&self, key_room: bool) {
        let sleepers = self.sleepers.load(Ordering::SeqCst);
        if sleepers == 0 {
            return;
        }
        let len = self.len.load(Ordering::Relaxed);
        if key_room
            || sleepers > self.submitters.load(Ordering::SeqCst)
            || len <= self.capacity / 2
            || (len < self.capacity && !self.has_ready())
        {
            self.wake_all();
        }
    }

    /// Wakes every thread waiting on the board, after a change made
    /// outside its lock (the pool cancelled, intake closed): taking the
    /// lock orders the change before a sleeper's check, or the sleeper's
    /// wait before this notification.
    pub(crate) fn wake_all(&self) {
        let _state = self.state.lock();
        self.changed.notify_all();
    }
}

crate::sync::thread_local! {
    /// On a worker running a keyed job: its crew and key.
    static RUNNING_KEY: Cell<Option<(usize, u64)>> = const { Cell::new(None) };
}

/// Marks the calling worker as running a job of `crew` taken with
/// `ticket`, if keyed, until the guard drops.
pub(crate) fn running(crew: usize, ticket: &Ticket) -> Option<RunningKey> {
    let key = ticket.0.key?;
    let outer = RUNNING_KEY.with(|running| running.replace(Some((crew, key))));
    Some(RunningKey(outer))
}

/// Whether the calling thread is running a job of `crew` with the key
/// hashed to `key`: a later job of that key cannot start until it returns.
pub(crate) fn runs_key(crew: usize, key: u64) -> bool {
    RUNNING_KEY.with(Cell::get) == Some((crew, key))
}

/// A worker blocked on the channels, from [`Board::blocks`].
pub(crate) struct Blocked<'b>(&'b AtomicUsize);

impl Drop for Blocked<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Restores the key a nested inline run replaced.
pub(crate) struct RunningKey(Option<(usize, u64)>);

impl Drop for RunningKey {
    fn drop(&mut self) {
        RUNNING_KEY.with(|running| running.set(self.0));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::{Board, Dispatch, Route};
    use crate::context::Context;
    use crate::crew::{Envelope, Wait};

    #[test]
    fn withdraw_takes_the_job_it_names_when_sequence_numbers_repeat() {
        // A refused submit gives its sequence number back, so two queued
        // jobs can share one (found by the chaos suite's keyed rounds: a
        // rendezvous submit whose turn timed out withdrew another job).
        let board = Board::new(Dispatch::default(), Some(0));
        let ctx = Context::new();
        let route = Route::default();
        let first = board.push(
            &mut board.state.lock(),
            Envelope::unstamped(1),
            route,
            Instant::now(),
        );
        let second = board.push(
            &mut board.state.lock(),
            Envelope::unstamped(2),
            route,
            Instant::now(),
        );
        assert_ne!(first, second);
        let taken = board.withdraw(second, route).map(|queued| queued.job);
        assert_eq!(taken, Some(2));
        assert_eq!(board.withdraw(second, route).map(|queued| queued.job), None);
        let refused = board.admit(Envelope::unstamped(3), route, Wait::Now, &ctx, &|| false);
        assert!(refused.is_err(), "the board of a rendezvous holds one job");
        assert_eq!(
            board.withdraw(first, route).map(|queued| queued.job),
            Some(1)
        );
        assert!(board.is_empty());
    }
}
