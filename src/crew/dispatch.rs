//! The dispatcher: which queued job a free worker takes next, for jobs
//! submitted with a key or a priority lane.
//!
//! A pool that never routes a job never touches this: its jobs go through
//! the jobs channel alone, and a worker's only costs are one relaxed load
//! of [`Board::ready`] per job (or two, where it looks again after
//! receiving a job), on a cache line nobody writes, and,
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
//! # The inboxes
//!
//! The board's state is behind one lock, which the workers take to pick
//! a job. A submit that finds room does not take it: it counts its job
//! ([`Counts`]: totals that only submits write, beside totals that only
//! the lock's holder writes), fences, and pushes the job into an inbox,
//! a channel made by the first such submit. A submit thus shares with
//! the workers the inbox's slot and no lock or counter: the lock's line
//! used to cross between the submitting core and the workers' twice a
//! job.
//!
//! Each lane without a cap has an inbox of its own for its unkeyed jobs;
//! keyed jobs and capped lanes' jobs share a fourth, the sorted inbox
//! (`inbox.rs`). A take brings on the front of each lane's own inbox, so
//! it weighs every lane's oldest job, and from the sorted inbox jobs
//! until one it brings on may start, and more only while the inbox may
//! hold a job of a higher lane than the board's best (the board notes
//! which lanes ever entered it: once a keyed `High` job has, a take
//! empties it unless a `High` job may start). It leaves the rest where
//! the submitter wrote it (a channel kept non-empty costs its producer
//! no cache misses; one emptied on every take did). A job's end releases
//! its key without looking at the inbox: a job of the key still there
//! came later. Everything else that locks the board (a submit that
//! locks, a drain, a join run inline, run-here, a count of the lanes, a
//! worker waiting after intake closed), and a take or an end while a
//! thread waits on the board, sorts the whole sorted inbox in first, so
//! it sees every key's queue.
//!
//! The count comes before the push, so a job may be counted and not yet
//! pushed; the push is a few instructions away and never waits. Whoever
//! must see every job waits for those: a drain after a cancellation, and
//! a worker whose take found nothing while the count said a job was
//! there ([`Board::take_counted`], after a spin). A keyed job enters the
//! inbox only while the board holds fewer jobs than a key may queue, so
//! that its key has room without a look; otherwise, and on a rendezvous
//! board, a submit locks and looks.
//!
//! # Taking
//!
//! A worker takes from the board the front of the highest lane that is
//! under its cap, unless the front of some lane under its cap has waited
//! longer than the starvation bound: then the longest-waiting such front
//! goes first, so no job waits forever behind newer higher-priority work.
//! Only a front below the highest open lane is ever passed over for
//! starvation, so a `High` job carries no stamp and its submit reads no
//! clock; a `High` front is weighed against a starved one by submission
//! order, and goes first if it was submitted earlier. A key's next job
//! enters its lane queue only when the previous one ends, so jobs of one
//! key run one at a time in submission order, and a busy key never
//! blocks a worker: it simply has nothing in the lane queues.
//!
//! A job's wait counts from its submit, and a keyed job's includes its
//! wait behind its key's earlier jobs: once released into its lane it may
//! be past the bound, and go before newer higher-lane work. Counting from
//! the release instead would break the bound for others: lanes stay in
//! submission order, so a released job goes in ahead of younger ones, and
//! a fresh front would hold an older job behind it past the bound. A
//! plain job's wait counts from when a worker moves it from the jobs
//! channel onto the board: it waits the bound past the time it took to
//! reach the channel's head.
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
//!   blocked and then looks once more before it blocks, at the inbox's
//!   count too ([`Board::blocks`]); a submit sends a turn when that count
//!   is not zero after its job is counted, so one of the two sees the
//!   other; a full channel never lets a worker block. While every worker
//!   is busy or spinning, a routed job sends no turn at all;
//! * on a rendezvous queue the submit's turn is a blocking send, which
//!   completes only once a worker has received it (so there every routed
//!   job sends one, and workers do not count themselves blocked);
//! * a job made ready by another's end (its key's predecessor, or a slot
//!   under a lane cap) is taken by the worker that ran that job, which
//!   looks at the board next; a second one made ready by the same end, or
//!   one made ready by a worker that is leaving, is announced with a nudge
//!   to a blocked worker: a turn, or, where workers block in a `Select`
//!   (an elastic or rendezvous crew), a message on the retire channel they
//!   watch (a job still in the sorted inbox at that end is counted there,
//!   and sent its own turn);
//! * a turn, or a plain job, may be received by a worker other than the
//!   blocked one it was sent to wake (a channel wakes a blocked receiver
//!   per message, and one that finds the message gone blocks again): a
//!   worker that received either and then took from the board nudges a
//!   blocked worker if a job is still ready (`pass_on_wake_up` in
//!   `worker.rs`). Turns also carry a cancellation's and a shrink's
//!   wake-ups (`Shared::wake_parked`): a worker that receives one takes a
//!   waiting retire token before it looks at the board, and one that
//!   leaves passes on the wake-ups it may have taken (`leave`, `drain`);
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

mod inbox;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::time::{Duration, Instant};

use super::{Envelope, Wait};
use crate::context::Context;
use crate::error::TrySubmitError;
use crate::lane::{Lane, LaneLoad};
use crate::sync::{
    AtomicBool, AtomicU8, AtomicU64, AtomicUsize, CachePadded, Condvar, Mutex, MutexGuard,
    Ordering, fence,
};
use inbox::{Inbox, Inboxes};

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
/// per word, then one folded multiply to finish, a fraction of SipHash's
/// cost on the small keys jobs carry (an account id, a short name). It
/// also hashes the board's map, whose keys are already such hashes.
#[derive(Default)]
struct KeyHasher(u64);

impl KeyHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        // The length first: the last chunk is padded with zeros, so
        // without it `b"a"` and `b"a\0"` would be one key.
        self.add(bytes.len() as u64);
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

    /// The state folded (a wide multiply, its halves xored), so that
    /// every bit of it reaches the low bits: a multiply leaves a
    /// product's low bits depending only on the input's low bits, so
    /// keys that are multiples of 1,024 would share ten low zero bits,
    /// and the board's map indexes by low bits.
    fn finish(&self) -> u64 {
        let wide = u128::from(self.0) * u128::from(0x9e37_79b9_7f4a_7c15_u64);
        (wide as u64) ^ ((wide >> 64) as u64)
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
    /// When its wait began (see [`stamp`]); `None` in the top lane.
    since: Option<Instant>,
    /// Unique on the board, for [`Board::withdraw`] (an envelope's `seq`
    /// is not: a refused submit gives its number back).
    id: u64,
}

impl<J> Entry<J> {
    /// An entry not yet on the board: [`Board::push`] gives it its id.
    fn new(queued: Envelope<J>, route: Route, since: Option<Instant>) -> Self {
        Self {
            queued,
            route,
            since,
            id: 0,
        }
    }
}

/// The instant a job along `route` starts waiting, for the starvation
/// bound; `None` in the top lane. Only a front below the highest open
/// lane is ever passed over for starvation, so only such a front's age
/// decides whether it goes first ([`Board::pick`] weighs a `High` front
/// against it by submission order): a `High` job never needs one, and
/// its submit skips the clock read, which cost a `High` submit about a
/// tenth of its time.
fn stamp(route: Route) -> Option<Instant> {
    (route.lane != Lane::High).then(Instant::now)
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

/// What a board job's end changed, from [`Board::finish`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ended {
    /// Jobs the end made ready to start.
    pub(crate) ready: usize,
    /// Whether its key had as many jobs queued as it may, and now has
    /// room for one more.
    pub(crate) key_room: bool,
}

/// Where [`Board::push`] put a job.
struct Pushed {
    /// Its id on the board.
    id: u64,
    /// Whether it went into its lane's queue, under the lane's cap: a
    /// worker may take it now.
    may_start: bool,
}

/// What a submit's admission was refused for; the job comes back.
pub(crate) type Refused<J> = TrySubmitError<Envelope<J>>;

/// The board's job counts, each written by one side: running totals of
/// jobs counted onto the board and into the inbox, which submits write
/// (and turns sent, which wakers of parked workers also write: a
/// cancellation, a shrink, a worker nudging another), and of jobs taken off it and sorted in from the inbox,
/// which only the holder of the board's lock writes (and turns received,
/// which workers count as they receive them, and the inbox count last
/// seen, which any thread looking for work may store). A submit through
/// the inbox writes a line that only submits write, and reads the
/// takers' line only when the board looks full by the count it last saw:
/// sharing one counter with the takers cost it a cache miss on every job.
#[derive(Default)]
struct Counts {
    submits: CachePadded<SubmitCounts>,
    takers: CachePadded<TakerCounts>,
}

#[derive(Default)]
struct SubmitCounts {
    /// Jobs ever counted onto the board.
    admitted: AtomicU64,
    /// Of those, the jobs sent to the inbox: on a line of its own, as the
    /// workers read it while they have nothing else to do.
    posted: CachePadded<AtomicU64>,
    /// A value `TakerCounts::taken` had: at most what it has now.
    taken_seen: AtomicU64,
    /// Turns counted into the jobs channel.
    turns: AtomicU64,
}

#[derive(Default)]
struct TakerCounts {
    /// Jobs ever taken off the board (run, drained or withdrawn), and
    /// counts given back by a submit refused room after it counted.
    taken: AtomicU64,
    /// Jobs ever sorted in from the inbox.
    sorted: AtomicU64,
    /// A value `SubmitCounts::posted` had: at most what it has now
    /// (stored without the lock, by whoever read it: see `has_pending`).
    posted_seen: AtomicU64,
    /// Turns received from the jobs channel.
    turns: AtomicU64,
}

impl Counts {
    /// Jobs on the board, counting those in the inboxes and those counted
    /// and not yet pushed there.
    fn len(&self, order: Ordering) -> usize {
        outstanding(&self.submits.admitted, &self.takers.taken, order) as usize
    }

    /// Jobs counted into an inbox and not yet sorted in.
    fn pending(&self, order: Ordering) -> u64 {
        outstanding(&self.submits.posted, &self.takers.sorted, order)
    }

    /// Whether a job was counted into an inbox and not yet sorted in, as
    /// a hint. The inbox count last seen answers while it is ahead of the
    /// jobs sorted in, so a thread looking for work (a worker, after every
    /// job) reads the submits' line only once it has caught up with that
    /// count: read every time, the line went back and forth between a
    /// submitter running ahead and the workers, a cache miss on every
    /// routed submit.
    fn has_pending(&self) -> bool {
        let takers = &self.takers;
        // ORDERING: Relaxed: a hint (see `Board::has_ready`).
        // `posted_seen` never passes `posted`, so while it is ahead of
        // `sorted` so is `posted`; a `false` always rests on a fresh read
        // of `posted`.
        let sorted = takers.sorted.load(Ordering::Relaxed);
        if takers.posted_seen.load(Ordering::Relaxed) > sorted {
            return true;
        }
        let posted = self.submits.posted.load(Ordering::Relaxed);
        if posted <= sorted {
            return false;
        }
        takers.posted_seen.store(posted, Ordering::Relaxed);
        true
    }

    /// Counts one more job on the board, and in the inbox if `inbox`, if
    /// the board holds fewer than `limit`.
    #[inline]
    fn reserve(&self, limit: usize, inbox: bool) -> bool {
        let submits = &self.submits;
        let limit = limit as u64;
        // ORDERING: Relaxed: the exchange below checks the value.
        let mut admitted = submits.admitted.load(Ordering::Relaxed);
        loop {
            // `taken_seen` is at most `taken`, so the board holds at most
            // this many: exact enough while it is far from full.
            let seen = submits.taken_seen.load(Ordering::Relaxed);
            if admitted.saturating_sub(seen) >= limit {
                let taken = self.takers.taken.load(Ordering::Acquire);
                if admitted.saturating_sub(taken) >= limit {
                    return false;
                }
                submits.taken_seen.store(taken, Ordering::Relaxed);
            }
            // ORDERING: SeqCst: `admit`'s fence pairs with a drain's, which
            // reads this through `len` (and Release with `is_empty`).
            match submits.admitted.compare_exchange_weak(
                admitted,
                admitted + 1,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => admitted = now,
            }
        }
        if inbox {
            // ORDERING: SeqCst: `admit`'s fence pairs with the one in
            // `blocks`, which reads this through `pending`.
            submits.posted.fetch_add(1, Ordering::SeqCst);
        }
        true
    }

    /// Counts a job on the board past the limit.
    fn add(&self) {
        // ORDERING: Release, as `reserve`.
        self.submits.admitted.fetch_add(1, Ordering::Release);
    }

    /// Counts `n` jobs off the board.
    fn remove(&self, n: usize) {
        // ORDERING: Release pairs with `len`'s loads.
        self.takers.taken.fetch_add(n as u64, Ordering::Release);
    }

    /// Counts `n` jobs sorted in from the inbox.
    fn sorted(&self, n: u64) {
        // ORDERING: Release: a worker about to block that reads the new
        // count (Acquire, in `Board::blocks`) then sees the `ready` that
        // the sort published.
        self.takers.sorted.fetch_add(n, Ordering::Release);
    }
}

/// How far running total `done` is behind `counted`, where everything
/// `done` counts was first counted in `counted` (jobs taken after they
/// were admitted, sorted in after they were posted, turns received after
/// they were sent). `done` is read first, so that ordered loads never
/// see more done than counted; a relaxed load may, and the difference
/// saturates at zero.
fn outstanding(counted: &AtomicU64, done: &AtomicU64, order: Ordering) -> u64 {
    let done = done.load(order);
    counted.load(order).saturating_sub(done)
}

/// What routed submits read: the board's settings, and what is written
/// seldom.
struct Front<J> {
    /// Routed jobs admitted without the lock, for the threads that lock
    /// it to sort into the state (`inbox.rs`).
    inboxes: Inboxes<J>,
    /// Workers blocked on the channels (see [`Board::blocks`]): a submit,
    /// or any other waker of a parked worker, sends a turn only while one
    /// is.
    blocked: AtomicUsize,
    /// Whether the pool's context wakes `changed` when it is done.
    hooked: AtomicBool,
    /// The lanes whose jobs ever entered the sorted inbox, a bit per lane
    /// index: set once per lane, so read by every take without a miss.
    sorted_lanes: AtomicU8,
    settings: Dispatch,
    /// Most jobs on the board.
    capacity: usize,
    /// Most jobs on the board for a keyed job to enter the inbox: no key
    /// can then have its `key_queue` behind its running job.
    keyed_inbox: usize,
    /// A rendezvous board: its admits wait under the lock, and a job may
    /// be withdrawn.
    rendezvous: bool,
}

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
    /// Jobs on the board, and of those the inboxes'.
    counts: Counts,
    /// Threads waiting on `changed`.
    sleepers: AtomicUsize,
    /// Of `sleepers`, submits waiting for room.
    submitters: AtomicUsize,
    /// What every routed submit reads, on lines of its own: a field
    /// beside one that the workers write for every job cost a submit a
    /// cache miss each time.
    front: CachePadded<Front<J>>,
    /// Jobs running per lane. Changed under the lock for a capped lane
    /// (`pick` and `publish` compare it with the cap there); an uncapped
    /// lane's unkeyed job ends without the lock (`finish`).
    running: [AtomicUsize; 3],
}

struct State<J> {
    lanes: [VecDeque<Entry<J>>; 3],
    /// Per active key, the jobs behind the one in a lane queue or running.
    keys: HashMap<u64, VecDeque<Entry<J>>, BuildHasherDefault<KeyHasher>>,
    /// The next [`Entry::id`].
    next_id: u64,
    /// Jobs in `lanes` and `keys`: the board's `len` less this is what
    /// the inboxes hold or are about to.
    sorted: usize,
    /// Whether an inbox exists: then `ready` carries [`Board::INBOX`].
    inbox_open: bool,
}

impl<J> Board<J> {
    /// A bit of `ready` set once an inbox exists: a worker that finds
    /// no other job ready then looks at the count of jobs pushed into
    /// the inboxes. A pool that routes nothing reads one word, zero, per
    /// job.
    const INBOX: usize = 1 << (usize::BITS - 1);

    pub(crate) fn new(settings: Dispatch, queue_capacity: Option<usize>) -> Self {
        let capacity = queue_capacity.map_or(usize::MAX, |capacity| capacity.max(1));
        Self {
            state: Mutex::new(State {
                lanes: Default::default(),
                keys: HashMap::default(),
                next_id: 0,
                sorted: 0,
                inbox_open: false,
            }),
            changed: Condvar::new(),
            ready: AtomicUsize::new(0),
            counts: Counts::default(),
            sleepers: AtomicUsize::new(0),
            submitters: AtomicUsize::new(0),
            front: CachePadded(Front {
                inboxes: Inboxes::new(capacity),
                blocked: AtomicUsize::new(0),
                hooked: AtomicBool::new(false),
                sorted_lanes: AtomicU8::new(0),
                settings,
                capacity,
                keyed_inbox: capacity.min(settings.key_queue),
                rendezvous: queue_capacity == Some(0),
            }),
            running: Default::default(),
        }
    }

    /// Whether a worker might find a job to take (a hint: it may find
    /// none once it locks).
    #[inline]
    pub(crate) fn has_ready(&self) -> bool {
        // ORDERING: Relaxed: a hint; taking locks the state.
        let ready = self.ready.load(Ordering::Relaxed);
        // One load and a branch while the board is unused.
        ready != 0 && (ready != Self::INBOX || self.has_pending())
    }

    /// The inbox of a job along `route`, made on first use; `None` on a
    /// rendezvous board, whose jobs go on the board under its lock. A
    /// lane without a cap has its own for its unkeyed jobs; the rest
    /// share the sorted one (`inbox.rs`).
    #[inline]
    fn inbox(&self, route: Route) -> Option<&Inbox<J>> {
        if self.front.rendezvous {
            return None;
        }
        let index = if self.unbound(route) {
            route.lane.index()
        } else {
            self.mark_sorted(route.lane.index());
            inbox::SORTED
        };
        if let Some(inbox) = self.front.inboxes.get(index) {
            return Some(inbox);
        }
        let inbox = self.front.inboxes.make(index);
        let mut state = self.state.lock();
        state.inbox_open = true;
        self.publish(&state);
        Some(inbox)
    }

    /// Whether a job was counted into an inbox and not yet sorted in.
    pub(crate) fn has_pending(&self) -> bool {
        self.counts.has_pending()
    }

    /// Whether no routed job is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.counts.len(Ordering::Acquire) == 0
    }

    /// Routed jobs queued, for `Stats::queued`.
    pub(crate) fn queued(&self) -> usize {
        self.counts.len(Ordering::Relaxed)
    }

    /// Counts a turn sent, or if `!sent`, one whose send failed after
    /// it was counted.
    pub(crate) fn turn_sent(&self, sent: bool) {
        // ORDERING: Relaxed: a statistic.
        let turns = &self.counts.submits.turns;
        if sent {
            turns.fetch_add(1, Ordering::Relaxed);
        } else {
            turns.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Counts a turn received from the jobs channel.
    pub(crate) fn turn_received(&self) {
        // ORDERING: Relaxed: a statistic.
        self.counts.takers.turns.fetch_add(1, Ordering::Relaxed);
    }

    /// How many of the jobs channel's messages are turns, left out of
    /// `Stats::queued`.
    pub(crate) fn turns(&self) -> usize {
        // ORDERING: Relaxed: a statistic.
        let counts = &self.counts;
        outstanding(
            &counts.submits.turns,
            &counts.takers.turns,
            Ordering::Relaxed,
        ) as usize
    }

    /// Marks the calling worker blocked on the channels until the guard
    /// drops; `None` if a job is ready on the board after all, to take
    /// instead of blocking.
    ///
    /// No lost wake-up: the worker counts itself, then looks at `ready`;
    /// a submit publishes `ready`, then looks at the count
    /// ([`wants_turn`](Self::wants_turn)). With a SeqCst fence on each
    /// side, at least one of the two sees the other. The crew's other
    /// wakers (a cancellation, a shrink) pair with the same fence.
    pub(crate) fn blocks(&self) -> Option<Blocked<'_>> {
        self.front.blocked.fetch_add(1, Ordering::SeqCst);
        let blocked = Blocked(&self.front.blocked);
        fence(Ordering::SeqCst);
        // The count first, with Acquire: a job it says was sorted in is
        // then in `ready`. The first job pushed may also come before
        // `ready` says the inbox is in use.
        let pending = self.counts.pending(Ordering::Acquire) != 0;
        // ORDERING: Relaxed: after the Acquire above.
        let ready = self.ready.load(Ordering::Relaxed) & !Self::INBOX != 0;
        (!pending && !ready).then_some(blocked)
    }

    /// Whether a job just admitted needs a turn to wake a worker: only
    /// while one is blocked. A worker that is not looks at the board
    /// before its next job, and before it blocks (see
    /// [`blocks`](Self::blocks)). Called after [`admit`](Self::admit),
    /// whose fence orders the push before this load.
    pub(crate) fn wants_turn(&self) -> bool {
        self.blocked() != 0
    }

    /// Workers counted blocked on the channels (see [`blocks`](Self::blocks)):
    /// exact for a caller that fenced after its own change to the board.
    pub(crate) fn blocked(&self) -> usize {
        // ORDERING: Relaxed: callers fence first.
        self.front.blocked.load(Ordering::Relaxed)
    }

    /// Whether a routed job was ever submitted.
    pub(crate) fn in_use(&self) -> bool {
        self.front.hooked.load(Ordering::Relaxed)
    }

    /// Whether `ctx`'s cancellation still has to be hooked to wake the
    /// board's sleepers (true once, for the first caller).
    pub(crate) fn needs_hook(&self) -> bool {
        // ORDERING: Relaxed: a second hook would only wake twice.
        // A load first: a swap would write the line on every submit.
        !self.front.hooked.load(Ordering::Relaxed)
            && !self.front.hooked.swap(true, Ordering::Relaxed)
    }

    /// Queues `queued` on `route`, waiting for room as `wait` allows while
    /// `ctx` is live and `closed` says intake is open. On a rendezvous
    /// board, returns the job's id there, for [`withdraw`](Self::withdraw).
    ///
    /// A job that finds room at once goes into the inbox without the
    /// lock, so a submit shares with the workers only the inbox's slot
    /// and the board's counts (a lock taken by both sides for every job
    /// crossed between their cores twice a job). A keyed job does so only
    /// while the board holds fewer jobs than a key may queue, so that its
    /// key's queue has room without looking; otherwise, and on a
    /// rendezvous board, the submit locks and looks.
    pub(crate) fn admit(
        &self,
        queued: Envelope<J>,
        route: Route,
        wait: Wait,
        ctx: &Context,
        closed: &dyn Fn() -> bool,
    ) -> Result<Option<u64>, Refused<J>> {
        // Read before locking: the lock is held for less, and a job that
        // waits for room counts its queue time from the end of the wait.
        let since = stamp(route);
        if ctx.is_done() {
            return Err(TrySubmitError::Cancelled(queued));
        }
        let limit = match route.key {
            Some(_) => self.front.keyed_inbox,
            None => self.front.capacity,
        };
        // Made before the count, so that a drain which sees the count
        // finds the inbox.
        if let Some(inbox) = self.inbox(route)
            && self.counts.reserve(limit, true)
        {
            // Orders the count before what the submit reads next: the
            // count of blocked workers ([`wants_turn`](Self::wants_turn))
            // and the pool's cancellation (a cancel's drain looks at the
            // count after a fence of its own), so one of the two sees the
            // other. The push need not be seen first: whoever must see
            // every counted job waits for it (`sort_in`). Before the push,
            // this fence finds the store buffer empty (the count's own
            // atomic operation drained it); after it, it would wait for
            // the push's slot, a line the workers last held.
            fence(Ordering::SeqCst);
            // The board holds the receiver, and the inbox never holds
            // more than the capacity counted: this cannot fail or wait.
            // Nothing between the count and here may fail either: a job
            // counted and never pushed would hold up every drain.
            let sent = inbox.tx.send(Entry::new(queued, route, since));
            debug_assert!(sent.is_ok(), "a board's inbox outlives its submits");
            return Ok(None);
        }
        let mut state = self.lock();
        let id = self.admit_locked(&mut state, queued, route, since, wait, ctx, closed)?;
        drop(state);
        // As above: orders the push before the submit's next reads.
        fence(Ordering::SeqCst);
        Ok(Some(id))
    }

    /// [`admit`](Self::admit)'s wait for room, under the lock; returns
    /// the job's id on the board.
    #[allow(clippy::too_many_arguments)]
    fn admit_locked(
        &self,
        state: &mut MutexGuard<'_, State<J>>,
        queued: Envelope<J>,
        route: Route,
        mut since: Option<Instant>,
        wait: Wait,
        ctx: &Context,
        closed: &dyn Fn() -> bool,
    ) -> Result<u64, Refused<J>> {
        loop {
            // Under the lock: a cancel's drain either finds the job or
            // went first and is seen here, so none is stranded.
            if ctx.is_done() {
                return Err(TrySubmitError::Cancelled(queued));
            }
            if self.reserve_locked(state, route) {
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
            self.sleep(state, deadline);
            self.submitters.fetch_sub(1, Ordering::SeqCst);
            since = stamp(route);
        }
        Ok(self.push(state, Entry::new(queued, route, since)).id)
    }

    /// Counts one more job on the board, under the lock, if the board
    /// and `route`'s key have room. The count comes first, then every job
    /// counted before it (and since) is sorted in, pushed or on its way,
    /// so the key's queue is exact: a job of this key counted later goes
    /// through the inbox, which it enters only while the board, this job
    /// included, holds fewer than a key may queue, so it cannot take the
    /// key past its limit either. (Estimating the jobs counted between a
    /// sort and this count as this key's, as before, refused a key with
    /// room now and then.) One race is left: the wait is for as many jobs
    /// as were counted, and the inbox gives them in push order, so one
    /// counted after the look may stand in for an earlier one of this key
    /// still on its way, which then takes the key one past its limit (a
    /// job per submitting thread at most). Waiting for those exactly would
    /// take a stamp per job; a drain, which must see every job, looks
    /// again instead (a submit here cannot: submits may go on counting).
    fn reserve_locked(&self, state: &mut State<J>, route: Route) -> bool {
        let counted = self.counts.reserve(self.front.capacity, false);
        self.sort_in(state, Some(usize::from(counted)));
        if !counted {
            return false;
        }
        let Some(key) = route.key else {
            return true;
        };
        // A key with nothing queued or running: this job goes first.
        let Some(behind) = state.keys.get(&key) else {
            return true;
        };
        if behind.len() < self.front.settings.key_queue {
            return true;
        }
        // Given back: counted as taken, as a take would.
        self.counts.remove(1);
        false
    }

    /// Locks the board's state, with the jobs in the sorted inbox sorted
    /// in: every keyed job and every job of a capped lane is then on it.
    fn lock(&self) -> MutexGuard<'_, State<J>> {
        let mut state = self.state.lock();
        self.sort_in(&mut state, None);
        state
    }

    /// Locks the board's state, leaving the sorted inbox as it is unless a
    /// thread waits on the board: a submit waiting for room is woken once
    /// no job on the board can start (`wake_sleepers`), which the board
    /// can tell only with every job sorted in. Sleepers count themselves
    /// under the lock, so the relaxed look is exact here.
    fn lock_lazily(&self) -> MutexGuard<'_, State<J>> {
        let mut state = self.state.lock();
        if self.sleepers.load(Ordering::Relaxed) != 0 {
            self.sort_in(&mut state, None);
        }
        state
    }

    /// Locks the board's state to take a job, with the front of each
    /// lane's own inbox brought on, so the board holds every lane's
    /// oldest job, and from the sorted inbox as many as
    /// [`sort_in_for_take`](Self::sort_in_for_take) needs (see `inbox.rs`).
    fn lock_to_take(&self) -> MutexGuard<'_, State<J>> {
        let mut state = self.lock_lazily();
        let mut sorted = 0;
        for lane in 0..3 {
            if let Some(inbox) = self.front.inboxes.get(lane)
                && let Ok(entry) = inbox.rx.try_recv()
            {
                self.push(&mut state, entry);
                sorted += 1;
            }
        }
        sorted += self.sort_in_for_take(&mut state);
        if sorted != 0 {
            self.counts.sorted(sorted);
        }
        state
    }

    /// Brings jobs on from the sorted inbox until one it brings on may
    /// start and none left behind could go before the board's best by its
    /// lane ([`Front::sorted_lanes`] says which lanes the inbox may hold);
    /// returns how many came. The inbox is in push order, so what stays is
    /// younger than what came on: a key's jobs still reach the board in
    /// order, the take cannot pass over an older job that may start (an
    /// ordered `WorkerPool` relies on it: see `ordered.rs`), and if one
    /// left behind has waited past the starvation bound, so has the one
    /// brought on, and the oldest such front goes first.
    fn sort_in_for_take(&self, state: &mut State<J>) -> u64 {
        let Some(inbox) = self.front.inboxes.get(inbox::SORTED) else {
            return 0;
        };
        let mut sorted = 0;
        while let Ok(entry) = inbox.rx.try_recv() {
            sorted += 1;
            if self.push(state, entry).may_start && self.outranks(state) {
                break;
            }
        }
        sorted
    }

    /// Whether the board has a job that may start in a lane at least as
    /// high as any that entered the sorted inbox.
    fn outranks(&self, state: &State<J>) -> bool {
        // ORDERING: Relaxed: a lane's mark comes before its first job's
        // push, so every job received so far is covered; one whose mark
        // this misses was pushed concurrently with the take, which may
        // then go first as it would before a job submitted a moment later.
        let lanes = self.front.sorted_lanes.load(Ordering::Relaxed);
        let highest = lanes.trailing_zeros() as usize;
        (0..=highest.min(2)).any(|lane| self.under_cap(lane) && !state.lanes[lane].is_empty())
    }

    /// Notes that jobs of lane `lane` enter the sorted inbox.
    fn mark_sorted(&self, lane: usize) {
        let bit = 1 << lane;
        // ORDERING: Relaxed: the push that follows publishes it. A load
        // first, so the line is written once per lane.
        if self.front.sorted_lanes.load(Ordering::Relaxed) & bit == 0 {
            self.front.sorted_lanes.fetch_or(bit, Ordering::Relaxed);
        }
    }

    /// Sorts in the jobs in the sorted inbox, and with `all_but(own)`,
    /// those in every inbox and every job counted onto the board and not
    /// on it yet, but `own` of the caller's: a submit counts its job, then
    /// pushes it into an inbox without waiting for anything (one that
    /// locks pushes under the lock), so one counted and not yet there is
    /// waited for; only the holder of the lock takes from the inboxes, so
    /// it is this thread's to take. By the board's count, not the
    /// inboxes', which a submit bumps a moment after it.
    ///
    /// With `None` it reads no count: a count that every submit writes,
    /// read by the workers for every job, took its line from the
    /// submitting thread each time.
    fn sort_in(&self, state: &mut State<J>, all_but: Option<usize>) {
        let inboxes = &self.front.inboxes;
        let mut sorted: u64 = 0;
        let mut empty = |inbox: &Inbox<J>| {
            while let Ok(entry) = inbox.rx.try_recv() {
                self.push(state, entry);
                sorted += 1;
            }
        };
        match all_but {
            None => inboxes.get(inbox::SORTED).into_iter().for_each(&mut empty),
            Some(_) => inboxes.made().for_each(&mut empty),
        }
        if let Some(own) = all_but {
            // ORDERING: Acquire: the drain fences before it looks, and a
            // failed take looks again after its own look found nothing.
            // Both counts: the board's may be read stale where nothing
            // orders it (a take that found a job counted into the inbox
            // by reading that count, a different word), and the inbox's
            // misses a job counted on the board and not yet into the
            // inbox (a submit that locks has just counted its own, with a
            // read-modify-write, and so reads the board's fresh).
            let counted = self.counts.len(Ordering::Acquire);
            let posted = self.counts.pending(Ordering::Acquire);
            let on_the_way = counted
                .saturating_sub(state.sorted + own)
                .max(posted.saturating_sub(sorted) as usize);
            for _ in 0..on_the_way {
                if let Some(entry) = inboxes.next_pushed() {
                    self.push(state, entry);
                    sorted += 1;
                }
            }
        }
        if sorted != 0 {
            self.counts.sorted(sorted);
        }
    }

    /// Puts `entry`, already counted in `len`, in its lane queue, or
    /// behind its key's current job.
    #[inline]
    fn push(&self, state: &mut State<J>, mut entry: Entry<J>) -> Pushed {
        let id = state.next_id;
        state.next_id += 1;
        state.sorted += 1;
        entry.id = id;
        if let Some(key) = entry.route.key {
            match state.keys.get_mut(&key) {
                Some(behind) => {
                    behind.push_back(entry);
                    return Pushed {
                        id,
                        may_start: false,
                    };
                }
                None => {
                    state.keys.insert(key, VecDeque::new());
                }
            }
        }
        let lane = entry.route.lane.index();
        self.enqueue(state, entry);
        Pushed {
            id,
            may_start: self.under_cap(lane),
        }
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

    /// Whether a job along `route` is bound by nothing but its lane's
    /// order: no key, no cap. Such a job waits in its lane's own inbox,
    /// and its end releases nothing.
    fn unbound(&self, route: Route) -> bool {
        route.key.is_none() && self.front.settings.caps[route.lane.index()] == usize::MAX
    }

    /// Whether a job of lane `lane` may start: the lane is under its cap.
    fn under_cap(&self, lane: usize) -> bool {
        self.running(lane) < self.front.settings.caps[lane]
    }

    /// Counts `n` jobs taken off the lane queues or key queues under the
    /// lock, and publishes what is ready after.
    fn removed(&self, state: &mut State<J>, n: usize) {
        state.sorted -= n;
        self.publish(state);
        self.counts.remove(n);
    }

    /// Stores how many queued jobs may start now, after a change under the
    /// lock: a worker that finds none blocks instead of looking again.
    fn publish(&self, state: &State<J>) {
        let mut ready = 0;
        for lane in 0..3 {
            if self.under_cap(lane) {
                ready += state.lanes[lane].len();
            }
        }
        if state.inbox_open {
            ready |= Self::INBOX;
        }
        // ORDERING: Relaxed: `has_ready` is a hint; the lock orders the rest.
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Takes the job a free worker should run next, if any may start.
    pub(crate) fn take(&self) -> Option<(Envelope<J>, Ticket)> {
        self.take_sorted(false)
    }

    /// As [`take`](Self::take), after waiting for the jobs counted into
    /// the inbox and not yet pushed there: for a worker that has looked
    /// a few times while [`has_ready`](Self::has_ready) said there was
    /// one.
    pub(crate) fn take_counted(&self) -> Option<(Envelope<J>, Ticket)> {
        self.take_sorted(true)
    }

    fn take_sorted(&self, all: bool) -> Option<(Envelope<J>, Ticket)> {
        let mut state = if all {
            let mut state = self.state.lock();
            self.sort_in(&mut state, Some(0));
            state
        } else {
            self.lock_to_take()
        };
        let entry = self.take_locked(&mut state)?;
        drop(state);
        self.wake_sleepers(false);
        Some(entry)
    }

    fn take_locked(&self, state: &mut State<J>) -> Option<(Envelope<J>, Ticket)> {
        let lane = self.pick(state)?;
        let entry = state.lanes[lane].pop_front()?;
        Some(self.started(state, lane, entry))
    }

    /// Counts `entry`, just taken off lane `lane`'s queue, running in
    /// that lane and off the board; its envelope, and the ticket its end
    /// gives back to [`finish`](Self::finish).
    fn started(&self, state: &mut State<J>, lane: usize, entry: Entry<J>) -> (Envelope<J>, Ticket) {
        // ORDERING: Relaxed: see `running`.
        self.running[lane].fetch_add(1, Ordering::Relaxed);
        self.removed(state, 1);
        (entry.queued, Ticket(entry.route))
    }

    /// Swaps a plain job a worker just received for the board's best (the
    /// board has one ready): the plain job goes on the board as a `Normal`
    /// job, which can always start (`Normal` has no cap), so a job comes
    /// back, maybe the plain one.
    pub(crate) fn exchange(&self, plain: Envelope<J>) -> (Envelope<J>, Ticket) {
        let route = Route::default();
        let entry = Entry::new(plain, route, stamp(route));
        let mut state = self.lock_to_take();
        // Counted past the capacity: the take below counts it off.
        self.counts.add();
        self.push(&mut state, entry);
        let taken = self.take_locked(&mut state);
        drop(state);
        taken.expect("a plain job on the board can always start")
    }

    /// The lane whose front goes next: the longest-waiting front past the
    /// starvation bound, else the highest lane with a job; lanes at their
    /// cap are passed over. An unstamped `High` front (see [`stamp`]) is
    /// weighed by submission order instead.
    fn pick(&self, state: &State<J>) -> Option<usize> {
        let open = |lane: usize| self.under_cap(lane) && !state.lanes[lane].is_empty();
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
        let Some(starved_by) = Instant::now().checked_sub(self.front.settings.starvation) else {
            return Some(first);
        };
        let mut oldest: Option<(usize, Instant)> = None;
        for lane in first..3 {
            let Some(front) = state.lanes[lane].front() else {
                continue;
            };
            if let Some(since) = front.since
                && open(lane)
                && since <= starved_by
                && oldest.is_none_or(|(_, oldest)| since < oldest)
            {
                oldest = Some((lane, since));
            }
        }
        let Some((starved, _)) = oldest else {
            return Some(first);
        };
        // Only the `High` lane's front may be unstamped, and then it is
        // the highest: it goes first if it was submitted before the front
        // that waited the bound out (and has then waited as long, unless
        // that one's stamp came late, after a wait for room). By the same
        // number that keeps each lane in submission order.
        let seq = |lane: usize| state.lanes[lane].front().map(|front| front.queued.seq);
        match state.lanes[first].front()?.since {
            None if seq(first) < seq(starved) => Some(first),
            _ => Some(starved),
        }
    }

    /// A job taken with `ticket` ended: releases its lane slot and moves
    /// its key's next job into a lane queue.
    pub(crate) fn finish(&self, ticket: Ticket) -> Ended {
        let Ticket(route) = ticket;
        let lane = route.lane.index();
        if self.unbound(route) {
            // Nothing waits on this end: no key to release, no cap to
            // reopen, no room freed (the take did that).
            self.running[lane].fetch_sub(1, Ordering::Relaxed);
            return Ended::default();
        }
        // A job of this key still in the inbox came after this one, and
        // finds the key released, or its next job ahead of it.
        let mut state = self.lock_lazily();
        let at_cap = !self.under_cap(lane);
        self.running[lane].fetch_sub(1, Ordering::Relaxed);
        let mut made_ready = usize::from(at_cap && !state.lanes[lane].is_empty());
        let mut key_room = false;
        if let Some(key) = route.key {
            let behind = state.keys.get_mut(&key);
            key_room = behind
                .as_ref()
                .is_some_and(|behind| behind.len() == self.front.settings.key_queue);
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
        Ended {
            ready: made_ready,
            key_room,
        }
    }

    /// Queues `queued` along `route` past the board's capacity and its
    /// key's limit, for a submit that may neither run it here nor wait
    /// for room (see `here.rs`).
    pub(crate) fn queue_past(&self, queued: Envelope<J>, route: Route) {
        let mut state = self.lock();
        // Counted past the capacity, as `exchange` counts a plain job.
        self.counts.add();
        self.push(&mut state, Entry::new(queued, route, stamp(route)));
    }

    /// Whether `route`'s key has as many jobs queued behind its running
    /// one as it may.
    pub(crate) fn key_full(&self, route: Route) -> bool {
        let Some(key) = route.key else {
            return false;
        };
        let state = self.lock();
        state
            .keys
            .get(&key)
            .is_some_and(|behind| behind.len() >= self.front.settings.key_queue)
    }

    /// Holds `route`'s lane, and its key if it has one, for a job its
    /// submitter runs on its own thread (the board was full): the job
    /// counts as running in its lane, and a key's later jobs queue behind
    /// it, until the ticket comes back to [`finish`](Self::finish). `None`
    /// if the key has a job queued or running: running this one now would
    /// break the key's order.
    pub(crate) fn hold_here(&self, route: Route) -> Option<Ticket> {
        let mut state = self.lock();
        if let Some(key) = route.key {
            if state.keys.contains_key(&key) {
                return None;
            }
            state.keys.insert(key, VecDeque::new());
        }
        // ORDERING: Relaxed: see `running`.
        self.running[route.lane.index()].fetch_add(1, Ordering::Relaxed);
        // A capped lane may have reached its cap.
        self.publish(&state);
        Some(Ticket(route))
    }

    /// Takes every queued job off the board (the pool was cancelled), for
    /// the caller to discard outside the lock.
    pub(crate) fn drain(&self) -> Vec<Envelope<J>> {
        let mut state = self.state.lock();
        // Every job counted: the cancel's fence pairs with `admit`'s. The
        // inbox gives jobs in push order, so a wait for as many as were
        // counted may take later ones in place of one still on its way:
        // looked at again until none is. It ends: a submit counts only
        // before it sees the cancellation.
        loop {
            self.sort_in(&mut state, Some(0));
            if self.counts.len(Ordering::Acquire) <= state.sorted {
                break;
            }
        }
        let mut drained = Vec::new();
        let mut queued_keys = Vec::new();
        for lane in &mut state.lanes {
            for entry in lane.drain(..) {
                queued_keys.extend(entry.route.key);
                drained.push(entry.queued);
            }
        }
        for behind in state.keys.values_mut() {
            drained.extend(behind.drain(..).map(|entry| entry.queued));
        }
        // A key whose job was in a lane queue has none running: it goes.
        // A running one's stays, emptied, until `finish` removes it.
        for key in queued_keys {
            state.keys.remove(&key);
        }
        self.removed(&mut state, drained.len());
        drop(state);
        self.wake_sleepers(true);
        drained
    }

    /// Takes the job of key `key` that `is_this` picks off its lane queue,
    /// for a join on one of the pool's workers to run inline; give the
    /// ticket back to [`finish`](Self::finish) once it ends. Only while
    /// it is its key's next job (in a lane queue, not held behind one of
    /// its key), so the key's order holds, and the key stays active, as
    /// for any running job, until then. Its lane's limit is not checked:
    /// the run takes the joining worker, already taken, and a capped lane
    /// whose job joins a job of its own lane would otherwise wait forever.
    pub(crate) fn claim(
        &self,
        key: u64,
        is_this: &dyn Fn(&J) -> bool,
    ) -> Option<(Envelope<J>, Ticket)> {
        let mut state = self.lock();
        // Taken already (its key has nothing queued or running), or not
        // its key's next: no lane queue holds it. A scan of the lanes,
        // under the lock, for a join on a worker only.
        if !state.keys.contains_key(&key) {
            return None;
        }
        let (lane, at) = (0..3).find_map(|lane| {
            state.lanes[lane]
                .iter()
                .position(|entry| entry.route.key == Some(key) && is_this(&entry.queued.job))
                .map(|at| (lane, at))
        })?;
        let entry = state.lanes[lane].remove(at)?;
        let started = self.started(&mut state, lane, entry);
        drop(state);
        self.wake_sleepers(false);
        Some(started)
    }

    /// Removes the job `admit` gave board id `id`, if still queued and not
    /// held behind its key (a rendezvous submit whose turn found no
    /// worker).
    pub(crate) fn withdraw(&self, id: u64, route: Route) -> Option<Envelope<J>> {
        let mut state = self.lock();
        let lane = &mut state.lanes[route.lane.index()];
        let at = lane.iter().position(|entry| entry.id == id)?;
        let entry = lane.remove(at)?;
        if let Some(key) = route.key {
            // It was its key's only job: nothing queued behind, none running.
            state.keys.remove(&key);
        }
        self.removed(&mut state, 1);
        drop(state);
        // Its place is free: a submit may be waiting for it.
        self.wake_sleepers(false);
        Some(entry.queued)
    }

    /// Jobs queued and running per lane, less from the running ones the
    /// `ended` per lane whose end is recorded and whose ticket is not
    /// back yet (`Counters::ending`, read first: see
    /// `WorkerSlot::set_ending`).
    pub(crate) fn loads(&self, ended: [usize; 3]) -> [LaneLoad; 3] {
        let state = self.lock();
        let mut loads = [LaneLoad::default(); 3];
        for (lane, load) in loads.iter_mut().enumerate() {
            load.queued = state.lanes[lane].len() + self.front.inboxes.lane_len(lane);
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
        let mut state = self.lock();
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
        let len = self.counts.len(Ordering::Relaxed);
        if key_room
            || sleepers > self.submitters.load(Ordering::SeqCst)
            || len <= self.front.capacity / 2
            || (len < self.front.capacity && !self.has_ready())
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
    /// On a worker running keyed jobs: each one's crew and key, the
    /// innermost last (a join runs a job inline inside the joining one).
    static RUNNING_KEYS: RefCell<Vec<(usize, u64)>> = const { RefCell::new(Vec::new()) };
}

/// Marks the calling worker as running a job of `crew` taken with
/// `ticket`, if keyed, until the guard drops.
pub(crate) fn hold_key(crew: usize, ticket: &Ticket) -> Option<RunningKey> {
    let key = ticket.0.key?;
    RUNNING_KEYS.with(|running| running.borrow_mut().push((crew, key)));
    Some(RunningKey)
}

/// Whether the calling thread is running a job of `crew` with the key
/// hashed to `key`, itself or one that joined into it: a later job of
/// that key cannot start until it returns.
pub(crate) fn runs_key(crew: usize, key: u64) -> bool {
    RUNNING_KEYS.with(|running| running.borrow().contains(&(crew, key)))
}

/// A worker blocked on the channels, from [`Board::blocks`].
pub(crate) struct Blocked<'b>(&'b AtomicUsize);

impl Drop for Blocked<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Lets go of the key `hold_key` marked, when its job ends.
pub(crate) struct RunningKey;

impl Drop for RunningKey {
    fn drop(&mut self) {
        RUNNING_KEYS.with(|running| running.borrow_mut().pop());
    }
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, BuildHasherDefault};
    use std::time::{Duration, Instant};

    use std::collections::VecDeque;

    use super::{Board, Dispatch, Entry, KeyHasher, Route};
    use crate::context::Context;
    use crate::crew::{Envelope, Wait};
    use crate::lane::Lane;
    use crate::sync::Ordering;

    fn entry(job: i32, route: Route) -> Entry<i32> {
        Entry::new(Envelope::unstamped(job), route, super::stamp(route))
    }

    /// Puts job `job` on `board` along `route` past its capacity check.
    fn push(board: &Board<i32>, job: i32, route: Route) -> u64 {
        board.counts.add();
        board.push(&mut board.lock(), entry(job, route)).id
    }

    #[test]
    fn a_key_with_nothing_queued_has_room_while_another_job_is_on_its_way() {
        // Found in review: a keyed submit that had to lock counted every
        // job counted into the inbox and not yet sorted in as its key's,
        // so with a key queue of 1 a job of another lane, counted and not
        // yet pushed, made a key never seen refuse as full.
        let settings = Dispatch {
            key_queue: 1,
            ..Dispatch::default()
        };
        let board = Board::new(settings, Some(8));
        let ctx = Context::new();
        let inbox = board
            .inbox(Route::default())
            .expect("not a rendezvous board");
        // A submit counted its job and was descheduled before its push.
        assert!(board.counts.reserve(8, true));
        std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                let pushed = inbox.tx.send(entry(1, Route::default()));
                assert!(pushed.is_ok());
            });
            let keyed = Route::keyed("never seen");
            let admitted = board.admit(Envelope::unstamped(2), keyed, Wait::Now, &ctx, &|| false);
            assert!(admitted.is_ok(), "a new key was refused room");
        });
        assert_eq!(board.queued(), 2);
        assert_eq!(board.drain().len(), 2);
        assert!(board.is_empty());
    }

    /// Admits job `job` along `route` through the inbox it belongs in.
    fn admit(board: &Board<i32>, job: i32, route: Route) {
        let ctx = Context::new();
        let admitted = board.admit(Envelope::unstamped(job), route, Wait::Now, &ctx, &|| false);
        assert_eq!(admitted.ok(), Some(None), "admitted without the lock");
    }

    /// Submits `job` along `route` to the full `board` from another
    /// thread, runs `change` once that submit waits for room, and asserts
    /// that the change woke it and let it in (`why` says what broke).
    fn assert_wakes_waiting_submit(
        board: &Board<i32>,
        job: i32,
        route: Route,
        change: impl FnOnce(),
        why: &str,
    ) {
        std::thread::scope(|scope| {
            let (done, admitted) = std::sync::mpsc::channel();
            scope.spawn(move || {
                let ctx = Context::new();
                let waited = board.admit(
                    Envelope::unstamped(job),
                    route,
                    Wait::Forever,
                    &ctx,
                    &|| false,
                );
                done.send(waited.is_ok()).expect("the test waits");
            });
            let deadline = Instant::now() + Duration::from_secs(30);
            while board.sleepers.load(Ordering::SeqCst) == 0 {
                assert!(Instant::now() < deadline, "the submit never waited");
                std::thread::yield_now();
            }
            change();
            let woken = admitted.recv_timeout(Duration::from_secs(30));
            // Let a failing run's submit go, so the scope can end.
            board.wake_all();
            assert_eq!(woken, Ok(true), "{why}");
        });
    }

    /// Takes the board's next job and ends it at once.
    fn take_and_end(board: &Board<i32>) -> i32 {
        let (queued, ticket) = board.take().expect("a job is ready");
        board.finish(ticket);
        queued.job
    }

    #[test]
    fn a_take_leaves_the_younger_keyed_jobs_in_the_inbox() {
        let board = Board::new(Dispatch::default(), Some(8));
        for (job, key) in [(0, 'a'), (1, 'a'), (2, 'b'), (3, 'c')] {
            admit(&board, job, Route::keyed(&key));
        }
        let left = || {
            board
                .front
                .inboxes
                .get(super::inbox::SORTED)
                .unwrap()
                .rx
                .len()
        };
        let (first, ticket) = board.take().expect("key a's first job");
        assert_eq!((first.job, left()), (0, 3), "one job brought on");
        // Key a's second job is brought on behind its first, and the
        // next one with it.
        assert_eq!(take_and_end(&board), 2);
        assert_eq!(left(), 1);
        assert_eq!(board.finish(ticket).ready, 1);
        assert_eq!(take_and_end(&board), 1);
        assert_eq!(take_and_end(&board), 3);
        assert!(board.is_empty());
    }

    #[test]
    fn a_submit_waiting_for_room_wakes_once_no_job_can_start() {
        // Found in review: a take that left jobs in the sorted inbox,
        // none of which could start, counted them as ready and left a
        // submit waiting for room asleep with room on the board.
        // Background capped at 1; its jobs go through the sorted inbox.
        // Normal's unkeyed jobs have an inbox of their own.
        let settings = Dispatch {
            caps: [usize::MAX, usize::MAX, 1],
            ..Dispatch::default()
        };
        let board = Board::new(settings, Some(6));
        let normal = Route::default();
        let background = Route {
            lane: Lane::Background,
            key: None,
        };
        // A full board: two Normal jobs, then four Background ones.
        admit(&board, 1, normal);
        admit(&board, 2, normal);
        for job in 10..14 {
            admit(&board, job, background);
        }
        let fill_and_take = || {
            // Two Normal jobs taken: Background jobs may still start, so
            // the waiting submit is rightly left asleep (len 4 > 6 / 2).
            let (first, _) = board.take().expect("a Normal job");
            let (second, _) = board.take().expect("a Normal job");
            assert_eq!((first.job, second.job), (1, 2));
            // Another submitter fills the two places through the inbox.
            admit(&board, 20, background);
            admit(&board, 21, background);
            // A worker takes job 10: Background is now at its cap, so no
            // job on the board can start, and the board has room (5 < 6).
            let (third, _) = board.take().expect("a Background job");
            assert_eq!(third.job, 10);
            // Another worker looks, finds nothing it may start, and blocks.
            assert!(board.take().is_none());
        };
        let why = "the submit slept on with room and nothing to start";
        assert_wakes_waiting_submit(&board, 99, background, fill_and_take, why);
    }

    #[test]
    fn a_higher_lane_in_the_inbox_goes_before_the_job_a_take_brought_on() {
        let board = Board::new(Dispatch::default(), Some(8));
        admit(&board, 0, Route::keyed(&0));
        let keyed_in = |lane, key: i32| Route {
            lane,
            ..Route::keyed(&key)
        };
        admit(&board, 1, keyed_in(Lane::Background, 1));
        admit(&board, 2, keyed_in(Lane::High, 2));
        let order: Vec<i32> = (0..3).map(|_| take_and_end(&board)).collect();
        assert_eq!(order, [2, 0, 1]);
    }

    #[test]
    fn a_front_past_the_starvation_bound_goes_first_unless_the_highest_came_before_it() {
        use Lane::{Background, High, Normal};
        let starvation = Duration::from_millis(50);
        let board = Board::new(
            Dispatch {
                starvation,
                ..Dispatch::default()
            },
            Some(8),
        );
        assert!(super::stamp(Route::default()).is_some());
        let high = Route {
            lane: High,
            key: None,
        };
        assert_eq!(super::stamp(high), None, "the top lane reads no clock");
        // Each case: jobs (job, submission number, lane, stamped how many
        // bounds ago), then the order they are taken in.
        type Job = (i32, u64, Lane, u32);
        let cases: [(&[Job], &[i32]); 5] = [
            // Not past the bound: the lanes' order.
            (&[(0, 5, High, 0), (1, 1, Background, 0)], &[0, 1]),
            // Past it, and submitted before the High front: first.
            (&[(2, 9, High, 0), (3, 7, Normal, 4)], &[3, 2]),
            // Past it, but after the High front, which has then waited
            // longer.
            (&[(4, 10, High, 0), (5, 11, Background, 4)], &[4, 5]),
            // Two past it: the longer-waiting first.
            (&[(6, 20, Normal, 2), (7, 14, Background, 4)], &[7, 6]),
            // Stamped fronts rank by their stamps, not their numbers: a
            // job stamped late (after a wait for room, or a plain job
            // moved onto the board) has waited less than its number says.
            (&[(8, 30, Normal, 4), (9, 25, Background, 2)], &[8, 9]),
        ];
        for (jobs, order) in cases {
            for &(job, seq, lane, bounds) in jobs {
                let route = Route { lane, key: None };
                let queued = Envelope {
                    seq,
                    ..Envelope::unstamped(job)
                };
                let since = super::stamp(route).map(|now| now - starvation * bounds);
                board.counts.add();
                board.push(&mut board.lock(), Entry::new(queued, route, since));
            }
            let taken: Vec<i32> = order.iter().map(|_| take_and_end(&board)).collect();
            assert_eq!(taken, order, "jobs {jobs:?}");
        }
        assert!(board.is_empty());
    }

    #[test]
    fn keys_that_differ_hash_apart() {
        // Padding: the last chunk of bytes is zero-filled.
        assert_ne!(Route::key_of("a"), Route::key_of("a\0"));
        assert_ne!(Route::key_of(&[1_u8][..]), Route::key_of(&[1_u8, 0][..]));
        // Multiples of 1,024 spread over the low bits the board's map
        // indexes by (256 random bytes take about 162 values).
        let map = BuildHasherDefault::<KeyHasher>::default();
        let low_bytes: std::collections::HashSet<u64> = (0..256_u64)
            .map(|n| map.hash_one(Route::key_of(&(n * 1024))) & 0xff)
            .collect();
        assert!(
            low_bytes.len() > 128,
            "{} of 256 low bytes",
            low_bytes.len()
        );
    }

    #[test]
    fn a_keyed_submit_that_locks_waits_for_jobs_counted_before_it() {
        // Found in review: an inbox submit counts its job on the board,
        // then into the inbox. A keyed submit that had to lock, counting
        // between the two, waited only for the jobs counted into the
        // inbox, so it did not see one of its key on the way, and the key
        // went past its limit.
        let settings = Dispatch {
            key_queue: 2,
            ..Dispatch::default()
        };
        let board = Board::new(settings, Some(64));
        let ctx = Context::new();
        let key = Route::keyed("k");
        let inbox = board.inbox(key).expect("not a rendezvous board");
        push(&board, 0, key);
        let (_running, _ticket) = board.take().expect("the key's first job runs");
        push(&board, 1, key);
        std::thread::scope(|scope| {
            // A submit of the key counted on the board and descheduled
            // before it counted into the inbox and pushed.
            board.counts.add();
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                board.counts.submits.posted.fetch_add(1, Ordering::SeqCst);
                assert!(inbox.tx.send(entry(2, key)).is_ok());
            });
            let locked = board.admit(Envelope::unstamped(3), key, Wait::Now, &ctx, &|| false);
            assert!(locked.is_err(), "the key's queue was full");
        });
        let behind = board
            .state
            .lock()
            .keys
            .get(&key.key.unwrap())
            .map(VecDeque::len);
        assert_eq!(behind, Some(2));
    }

    #[test]
    fn a_key_has_state_only_while_it_has_a_job_queued_or_running() {
        let board = Board::new(Dispatch::default(), Some(8));
        let active_keys = |board: &Board<i32>| board.state.lock().keys.len();
        let key = Route::keyed(&7_u64);
        push(&board, 1, key);
        push(&board, 2, key);
        let (first, ticket) = board.take().expect("the key's first job is ready");
        assert_eq!(first.job, 1);
        assert!(board.take().is_none(), "the second waits behind the first");
        assert_eq!(active_keys(&board), 1);
        assert_eq!(
            board.finish(ticket).ready,
            1,
            "the first's end readies the second"
        );
        let (second, ticket) = board.take().expect("the key's second job is ready");
        assert_eq!(second.job, 2);
        assert_eq!(active_keys(&board), 1, "running, so still known");
        assert_eq!(board.finish(ticket).ready, 0);
        assert_eq!(active_keys(&board), 0, "idle, so forgotten");
        // Many keys over time, one active at a time: the map never grows
        // past what is active at once (fewer under Miri, for its time).
        let keys = if cfg!(miri) { 100 } else { 100_000_u64 };
        for key in 0..keys {
            push(&board, 0, Route::keyed(&key));
            let (_, ticket) = board.take().expect("a new key's job is ready");
            board.finish(ticket);
        }
        let state = board.state.lock();
        assert!(state.keys.is_empty());
        assert!(
            state.keys.capacity() < 16,
            "{} slots",
            state.keys.capacity()
        );
    }

    #[test]
    fn a_withdrawn_job_wakes_a_submit_waiting_for_its_place() {
        // Found in review: a rendezvous board holds one job; a submit
        // waiting for room slept on after that job was withdrawn (its
        // turn found no worker), with the board empty.
        let board = Board::new(Dispatch::default(), Some(0));
        let ctx = Context::new();
        let route = Route::default();
        let first = board.admit(Envelope::unstamped(1), route, Wait::Now, &ctx, &|| false);
        let first = first.ok().flatten().expect("the empty board takes a job");
        let withdraw = || {
            let withdrawn = board.withdraw(first, route).map(|queued| queued.job);
            assert_eq!(withdrawn, Some(1));
        };
        let why = "the waiting submit slept through the withdrawal";
        assert_wakes_waiting_submit(&board, 2, route, withdraw, why);
        assert_eq!(board.drain().len(), 1);
    }

    #[test]
    fn withdraw_takes_the_job_it_names_when_sequence_numbers_repeat() {
        // A refused submit gives its sequence number back, so two queued
        // jobs can share one (found by the chaos suite's keyed rounds: a
        // rendezvous submit whose turn timed out withdrew another job).
        let board = Board::new(Dispatch::default(), Some(0));
        let ctx = Context::new();
        let route = Route::default();
        let first = push(&board, 1, route);
        let second = push(&board, 2, route);
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
