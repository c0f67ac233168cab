//! The board's inboxes: where a routed job admitted without the board's
//! lock waits until a worker sorts it in (see the dispatcher's docs).
//!
//! There are four. Each lane without a cap has one for its unkeyed jobs,
//! and every other routed job — a keyed one, or one in a capped lane —
//! goes into the fourth, the *sorted* inbox, which holds every lane's
//! jobs in one order: a key's jobs may be in any lane, and must reach the
//! board in the order they were submitted.
//!
//! No inbox is emptied on every take. A take brings on the front of each
//! lane's own inbox, so the board weighs every lane's oldest job (an
//! inbox is in push order: what stays behind is younger), and from the
//! sorted inbox jobs until one may start (a job behind its key's running
//! one, or in a lane at its cap, may not), and past that only while a job
//! of a higher lane than the board's best may be behind (the board notes
//! which lanes ever entered the sorted inbox). The reason is the cache,
//! not the work: a consumer that empties a channel on every take keeps
//! finding it empty, and each failed look reads the slot and the tail the
//! producer writes next, so every push of a submitter that is ahead of
//! the workers missed the cache twice. A channel that stays non-empty
//! lets the two sides work on lines of their own, as a plain job's
//! channel does (`benches/README.md`, "Lanes: an inbox per lane" and
//! "Keys: the sorted inbox left non-empty").

use std::sync::OnceLock;

use super::Entry;
use crate::sync::Spin;
use crate::sync::channel::{self, Receiver, Select, Sender};

/// The index of the sorted inbox; lane `i`'s own is `i`.
pub(super) const SORTED: usize = 3;

/// A board's four inboxes, each made by the first job that enters it:
/// a pool that routes nothing allocates none.
pub(super) struct Inboxes<J> {
    each: [OnceLock<Inbox<J>>; 4],
    /// Most jobs on the board, and so in any one inbox.
    capacity: usize,
}

/// One inbox. A bounded channel for a board of up to [`Inbox::ARRAY`]
/// jobs (a fixed array, allocated at once: a job's hand-off writes one
/// slot); an unbounded one, growing by blocks, for larger boards.
pub(super) struct Inbox<J> {
    pub(super) tx: Sender<Entry<J>>,
    pub(super) rx: Receiver<Entry<J>>,
}

impl<J> Inbox<J> {
    /// The largest board whose inboxes are arrays.
    const ARRAY: usize = 4096;

    /// An inbox that holds `capacity` jobs without waiting: a board
    /// counts no more than that in it.
    fn new(capacity: usize) -> Self {
        let (tx, rx) = if capacity <= Self::ARRAY {
            channel::bounded(capacity)
        } else {
            channel::unbounded()
        };
        Self { tx, rx }
    }
}

impl<J> Inboxes<J> {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            each: Default::default(),
            capacity,
        }
    }

    /// Inbox `index`, if made.
    #[inline]
    pub(super) fn get(&self, index: usize) -> Option<&Inbox<J>> {
        self.each[index].get()
    }

    /// Inbox `index`, made now if need be.
    pub(super) fn make(&self, index: usize) -> &Inbox<J> {
        self.each[index].get_or_init(|| Inbox::new(self.capacity))
    }

    /// The inboxes made so far.
    pub(super) fn made(&self) -> impl Iterator<Item = &Inbox<J>> {
        self.each.iter().filter_map(OnceLock::get)
    }

    /// Jobs waiting in lane `lane`'s own inbox.
    pub(super) fn lane_len(&self, lane: usize) -> usize {
        self.get(lane).map_or(0, |inbox| inbox.rx.len())
    }

    /// The next job pushed into any inbox, for a caller that knows one
    /// was counted into one and may not be pushed yet: a spin catches the
    /// push that is under way, a blocking receive one whose thread was
    /// descheduled in between. `None` only if no inbox is made.
    pub(super) fn next_pushed(&self) -> Option<Entry<J>> {
        let mut spin = Spin::default();
        loop {
            for inbox in self.made() {
                if let Ok(entry) = inbox.rx.try_recv() {
                    return Some(entry);
                }
            }
            if !spin.snooze() {
                return self.recv_any();
            }
        }
    }

    /// Blocks until a job is pushed into one of the inboxes made (a submit
    /// makes its inbox before it counts its job, so the one awaited is
    /// among them).
    #[cold]
    fn recv_any(&self) -> Option<Entry<J>> {
        let made: Vec<&Inbox<J>> = self.made().collect();
        if made.is_empty() {
            return None;
        }
        let mut select = Select::new();
        for inbox in &made {
            select.recv(&inbox.rx);
        }
        let operation = select.select();
        let index = operation.index();
        // The board holds the senders: this cannot fail.
        operation.recv(&made[index].rx).ok()
    }
}
