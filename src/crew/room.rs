//! Waiting for room in a crew's queue without holding a thread: the
//! async submit's side of backpressure.
//!
//! A blocked `submit` parks its thread inside the channel; a future cannot.
//! It leaves its `Waker` here, and a worker that frees a slot wakes one
//! waiter. Until the first future waits, the room is unarmed and a
//! worker's dequeue reads one flag that never changes: pools nobody
//! awaits pay nothing else.
//!
//! No lost wake-up: a waiter registers, then retries the send; a worker
//! frees a slot, then looks for waiters; a SeqCst fence on each side means
//! one of the two sees the other. One case escapes the fence: a worker
//! that read the flag as unarmed an instant before the first waiter armed
//! it. Every later dequeue sees the flag, and a worker about to block on
//! an empty queue wakes every waiter first (a cold path); a waiter found
//! the queue full, so either another job is dequeued after that one (and
//! wakes it) or the queue empties (and wakes it). A worker that leaves,
//! and a pool that closes, wake every waiter, which then sees why.
//!
//! A crew has two rooms: one for its jobs channel, one for the
//! dispatcher's board (jobs with a lane or a key). A slot in one frees
//! nothing in the other, and a waiter woken for the wrong one would
//! swallow the wake-up. The board's waiters also want different things —
//! a place on the board, or room in one key's queue — so a worker that
//! takes a job off the board wakes all of them ([`Room::freed_all`]), and
//! a key whose queue shrank wakes all of them too.
//!
//! A queue of capacity 0 has room only while a worker is blocked receiving,
//! and a worker wakes the waiters just *before* it blocks: a retry in that
//! gap finds no room, and nothing would wake it again. So while a worker
//! of such a crew is idle (`idle`), a waiter that found no room has its
//! task polled again at once instead of parking.

use std::collections::VecDeque;
use std::task::Waker;

use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering, fence};

/// The waiters for a slot in one crew's queue.
pub(crate) struct Room {
    /// The queue has capacity 0 (see the module docs).
    rendezvous: bool,
    /// Workers between `idle` and the end of their blocking wait.
    idle: AtomicUsize,
    armed: AtomicBool,
    /// `waiters.len()`, readable without the lock.
    waiting: AtomicUsize,
    /// In arrival order: the longest waiting is woken first.
    waiters: Mutex<VecDeque<(u64, Waker)>>,
    next_id: AtomicU64,
}

/// A worker's blocking wait, from [`Room::idle`].
pub(crate) struct Idle<'r>(&'r Room);

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        if self.0.rendezvous {
            self.0.idle.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// One future's place among the waiters.
#[derive(Debug, Default)]
pub(crate) struct Ticket(Option<u64>);

impl Room {
    pub(crate) fn new(rendezvous: bool) -> Self {
        Self {
            rendezvous,
            idle: AtomicUsize::new(0),
            armed: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
            waiters: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(0),
        }
    }

    /// Leaves `waker` to be woken when a slot frees (replacing the
    /// waker this ticket left before, if it is still waiting). The caller
    /// must try to send again after this, before it returns `Pending`.
    fn wait(&self, ticket: &mut Ticket, waker: &Waker) {
        self.armed.store(true, Ordering::Relaxed);
        let mut waiters = self.waiters.lock();
        let waiting = ticket
            .0
            .and_then(|id| waiters.iter_mut().find(|(at, _)| *at == id));
        match waiting {
            Some((_, old)) => old.clone_from(waker),
            None => {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                waiters.push_back((id, waker.clone()));
                ticket.0 = Some(id);
            }
        }
        self.waiting.store(waiters.len(), Ordering::Relaxed);
        drop(waiters);
        // Pairs with the fence in `freed`: the retry that follows sees the
        // slot, or the worker sees this waiter.
        fence(Ordering::SeqCst);
    }

    /// The ticket's future is done waiting (it sent, failed, or was
    /// dropped). A future woken for a slot it then did not take passes
    /// the wake-up on, so the slot does not go unclaimed.
    pub(crate) fn leave(&self, ticket: &mut Ticket, took_slot: bool) {
        let Some(id) = ticket.0.take() else { return };
        let mut waiters = self.waiters.lock();
        match waiters.iter().position(|(at, _)| *at == id) {
            Some(at) => {
                waiters.remove(at);
                self.waiting.store(waiters.len(), Ordering::Relaxed);
            }
            // Already woken: it was given a slot.
            None if !took_slot => {
                drop(waiters);
                self.wake_one();
            }
            None => {}
        }
    }

    /// One poll of a future that sends `item` into the queue: `send` tries
    /// once and hands the item back if the queue is full; any other outcome
    /// (sent, or refused for good) is `Ok`. `Err` gives the item back with
    /// `waker` left here: the future is `Pending`.
    ///
    /// On a queue of capacity 0, `idle_helps` says whether an idle worker
    /// would let a retry through (see the module docs); a job refused for
    /// another reason (its key's queue is full) waits for a wake-up rather
    /// than being polled again at once.
    pub(crate) fn poll_send<I, R>(
        &self,
        ticket: &mut Ticket,
        waker: &Waker,
        item: I,
        mut send: impl FnMut(I) -> Result<R, I>,
        idle_helps: impl FnOnce() -> bool,
    ) -> Result<R, I> {
        let item = match send(item) {
            Ok(done) => {
                self.leave(ticket, true);
                return Ok(done);
            }
            Err(item) => item,
        };
        // Full: leave the waker, then try once more, so that a slot freed
        // in between is not missed.
        self.wait(ticket, waker);
        let done = match send(item) {
            Ok(done) => done,
            Err(item) => {
                if self.rendezvous && self.idle.load(Ordering::SeqCst) != 0 && idle_helps() {
                    waker.wake_by_ref();
                }
                return Err(item);
            }
        };
        self.leave(ticket, true);
        Ok(done)
    }

    /// A worker found the queue empty and is about to block: every waiter
    /// tries again. The returned guard marks the worker idle until it is
    /// dropped, when the wait ends.
    #[cold]
    pub(crate) fn idle(&self) -> Idle<'_> {
        if self.rendezvous {
            self.idle.fetch_add(1, Ordering::SeqCst);
        }
        self.wake_all();
        Idle(self)
    }

    /// A worker took a job off the queue: the longest waiter tries again.
    /// One flag read unless armed.
    #[inline]
    pub(crate) fn freed(&self) {
        if self.armed.load(Ordering::Relaxed) {
            self.freed_armed(false);
        }
    }

    /// A worker took a job off the dispatcher's board: every waiter tries
    /// again. Its waiters want different things (a place on the board, or
    /// room in one key's queue), so one woken for a slot it cannot use
    /// would swallow the wake-up another needed. One flag read unless
    /// armed.
    #[inline]
    pub(crate) fn freed_all(&self) {
        if self.armed.load(Ordering::Relaxed) {
            self.freed_armed(true);
        }
    }

    #[cold]
    fn freed_armed(&self, all: bool) {
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) == 0 {
            return;
        }
        if all {
            self.wake_waiting();
        } else {
            self.wake_one();
        }
    }

    /// A worker found the queue empty and is about to block, or is
    /// leaving, or intake closed: every waiter tries again.
    #[cold]
    pub(crate) fn wake_all(&self) {
        if !self.armed.load(Ordering::Relaxed) {
            fence(Ordering::SeqCst);
            if !self.armed.load(Ordering::Relaxed) {
                return;
            }
        }
        self.wake_waiting();
    }

    fn wake_waiting(&self) {
        let waiters = std::mem::take(&mut *self.waiters.lock());
        self.waiting.store(0, Ordering::Relaxed);
        waiters.into_iter().for_each(|(_, waker)| waker.wake());
    }

    fn wake_one(&self) {
        let mut waiters = self.waiters.lock();
        let Some((_, waker)) = waiters.pop_front() else {
            return;
        };
        self.waiting.store(waiters.len(), Ordering::Relaxed);
        drop(waiters);
        waker.wake();
    }
}
