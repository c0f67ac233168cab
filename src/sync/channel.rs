//! A loom-visible stand-in for the part of crossbeam-channel that the
//! code built under `--cfg loom` uses (the crew's jobs and retire
//! channels, a context's done signal). Built only under loom; a normal
//! build re-exports crossbeam-channel itself under the same path.
//!
//! Every channel is one queue behind the `sync` shim's `Mutex`, so loom
//! sees, and interleaves, every send, receive and disconnection. The error
//! types are crossbeam's own, so code and models match on the same values.
//!
//! # How a blocked operation waits
//!
//! A blocking call is a [`Select`] of one operation. A `Select` looks at
//! each operation under its channel's lock; if none is ready it leaves a
//! [`Waiter`] on every channel it looked at, and sleeps. Any change that
//! can make an operation ready — a send, a receive that frees room, the
//! last sender or receiver going — wakes every waiter on that channel, and
//! they look again. A wake that finds nothing (another thread was faster)
//! just loops. A waiter stays on the lists of the channels that did not
//! wake it; lists hold it weakly, so a finished `Select` is skipped, not
//! woken. A waiter sleeps on a condition variable rather than in `park`
//! (see [`Waiter`]).
//!
//! A selected operation must not be lost to a faster thread between the
//! `Select` choosing it and the caller completing it (crossbeam guarantees
//! that completion never blocks). So choosing *claims*: a receive claims
//! one queued item (`claimed`), a send into a bounded channel one free slot
//! (`reserved`); `try_recv` and `try_send` leave claimed items and slots
//! alone, and completion takes exactly what was claimed.
//!
//! # What differs from crossbeam
//!
//! * Models have no clock: `select_deadline` and `recv_timeout` wait
//!   until an operation is ready, as the `sync` shim's timed `Condvar`
//!   waits do. Models use no deadlines.
//! * `select_timeout` (only a keep-alive worker's wait uses it) times out
//!   when its first look finds no operation ready, as if the keep-alive
//!   ran out at that moment: loom then interleaves a submit before or
//!   after that look, which is the race an expiring worker must survive.
//!   A `Select` times out only once; later calls on it wait as `select`
//!   does, so a worker that stays (at its floor, or for a job) blocks
//!   rather than spinning through the model.
//! * `len` and `is_empty` read a count of queued items without the
//!   channel's lock, as crossbeam's read its head and tail indices without
//!   one. Taking the lock would order the reader after every send it sees,
//!   and so hide a missing fence in the code under test (a keep-alive
//!   worker's queue check, `crew/elastic.rs`). The count is a std atomic,
//!   invisible to loom: it adds no step to any model, and its reads always
//!   see the latest count (loom runs every modelled thread on one OS
//!   thread), but synchronise with nothing, so only the code's own atomics
//!   and fences order a reader with a send.
//! * Of several ready operations, a `Select` takes the first in the order
//!   they were added (crossbeam picks one at random). The code under test
//!   must not depend on which, and does not: after a receive, the worker
//!   loop re-checks the cancel flag itself.
//! * A zero-capacity channel only ever disconnects (the crate uses such
//!   channels as signals, like a context's done channel); sending on one
//!   never succeeds. Models build pools with a queue of at least one.
//!
//! [`Receiver`] is `pub` (in this crate-private module) because
//! `Context::done` hands one out: a model may call its methods.

#![allow(
    unreachable_pub,
    reason = "Context::done returns a Receiver, so its type and methods are pub; the module stays crate-private"
)]

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

pub(crate) use crossbeam_channel::{
    RecvError, RecvTimeoutError, SelectTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySendError,
};

use std::sync::atomic::Ordering::Relaxed;

use super::{Arc, Condvar, Mutex, Weak};

/// A thread blocked in a [`Select`].
///
/// It sleeps on a condition variable, not in `park`: a wake can come
/// after the waiter found its operation ready by its own look and went
/// on, and loom spends an unpark on a thread blocked on a lock by making
/// it runnable with the lock still held (a failed model), where a real
/// thread would take it as a spurious wake-up.
struct Waiter {
    woken: Mutex<bool>,
    changed: Condvar,
}

impl Waiter {
    fn new() -> Self {
        Self {
            woken: Mutex::new(false),
            changed: Condvar::new(),
        }
    }

    fn wake(&self) {
        *self.woken.lock() = true;
        self.changed.notify_one();
    }

    /// Sleeps until woken, and consumes the wake.
    fn sleep(&self) {
        let mut woken = self.woken.lock();
        while !*woken {
            self.changed.wait(&mut woken);
        }
        *woken = false;
    }
}

struct Chan<T> {
    state: Mutex<State<T>>,
    /// `queue.len()`, kept up to date under the lock and read without it
    /// (see the module docs).
    items: std::sync::atomic::AtomicUsize,
}

struct State<T> {
    queue: VecDeque<T>,
    /// `None`: unbounded.
    cap: Option<usize>,
    senders: usize,
    receivers: usize,
    /// Queued items that a selected receive will take.
    claimed: usize,
    /// Free slots that a selected send will fill.
    reserved: usize,
    waiters: Vec<Weak<Waiter>>,
}

impl<T> State<T> {
    /// An item not claimed by a selected receive is queued.
    fn has_free_item(&self) -> bool {
        self.queue.len() > self.claimed
    }

    /// A slot not reserved by a selected send is free.
    fn has_free_slot(&self) -> bool {
        self.cap
            .is_none_or(|cap| self.queue.len() + self.reserved < cap)
    }

    /// Takes the waiters, to wake once the lock is released.
    fn take_waiters(&mut self) -> Vec<Weak<Waiter>> {
        std::mem::take(&mut self.waiters)
    }

    fn add_waiter(&mut self, waiter: &Arc<Waiter>) {
        let weak = Arc::downgrade(waiter);
        if !self.waiters.iter().any(|w| w.ptr_eq(&weak)) {
            self.waiters.push(weak);
        }
    }
}

/// Wakes every waiter that is still waiting. Call without the lock.
fn wake(waiters: Vec<Weak<Waiter>>) {
    for waiter in waiters.iter().filter_map(Weak::upgrade) {
        waiter.wake();
    }
}

fn channel<T>(cap: Option<usize>, senders: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            cap,
            senders,
            receivers: 1,
            claimed: 0,
            reserved: 0,
            waiters: Vec::new(),
        }),
        items: std::sync::atomic::AtomicUsize::new(0),
    });
    (
        Sender {
            chan: Arc::clone(&chan),
        },
        Receiver { chan },
    )
}

/// A channel holding at most `cap` items (`0`: a signal that only
/// disconnects; see the module docs).
pub(crate) fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    channel(Some(cap), 1)
}

pub(crate) fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    channel(None, 1)
}

/// A receiver that never receives and never disconnects: its one sender
/// is counted but never exists, so it is never dropped.
pub(crate) fn never<T>() -> Receiver<T> {
    let (sender, receiver) = channel(Some(0), 2);
    drop(sender);
    receiver
}

pub(crate) struct Sender<T> {
    chan: Arc<Chan<T>>,
}

pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    pub(crate) fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let mut state = self.chan.state.lock();
        if state.receivers == 0 {
            return Err(TrySendError::Disconnected(item));
        }
        if !state.has_free_slot() {
            return Err(TrySendError::Full(item));
        }
        state.queue.push_back(item);
        self.chan.items.fetch_add(1, Relaxed);
        let waiters = state.take_waiters();
        drop(state);
        wake(waiters);
        Ok(())
    }

    pub(crate) fn send(&self, item: T) -> Result<(), SendError<T>> {
        let mut select = Select::new();
        select.send(self);
        select.select().send(self, item)
    }

    /// Models have no clock: times out if its first look finds no room,
    /// as [`Select::select_timeout`].
    pub(crate) fn send_timeout(
        &self,
        item: T,
        timeout: Duration,
    ) -> Result<(), SendTimeoutError<T>> {
        let mut select = Select::new();
        select.send(self);
        match select.select_timeout(timeout) {
            Ok(operation) => operation
                .send(self, item)
                .map_err(|SendError(item)| SendTimeoutError::Disconnected(item)),
            Err(SelectTimeoutError) => Err(SendTimeoutError::Timeout(item)),
        }
    }
}

impl<T> Receiver<T> {
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut state = self.chan.state.lock();
        if !state.has_free_item() {
            return Err(if state.senders == 0 {
                TryRecvError::Disconnected
            } else {
                TryRecvError::Empty
            });
        }
        let item = state.queue.pop_front();
        self.chan.items.fetch_sub(1, Relaxed);
        let waiters = state.take_waiters();
        drop(state);
        wake(waiters);
        item.ok_or(TryRecvError::Empty)
    }

    pub fn recv(&self) -> Result<T, RecvError> {
        let mut select = Select::new();
        select.recv(self);
        select.select().recv(self)
    }

    /// Models have no clock: waits until an item or a disconnection.
    pub fn recv_timeout(&self, _timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv()
            .map_err(|RecvError| RecvTimeoutError::Disconnected)
    }

    pub fn len(&self) -> usize {
        // ORDERING: Relaxed, and invisible to loom: see the module docs.
        self.chan.items.load(Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.state.lock().senders += 1;
        Self {
            chan: Arc::clone(&self.chan),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.state.lock().receivers += 1;
        Self {
            chan: Arc::clone(&self.chan),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.chan.state.lock();
        state.senders -= 1;
        let waiters = if state.senders == 0 {
            state.take_waiters()
        } else {
            Vec::new()
        };
        drop(state);
        wake(waiters);
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.chan.state.lock();
        state.receivers -= 1;
        let (waiters, unread) = if state.receivers == 0 {
            // As crossbeam does: the last receiver takes the unread items
            // with it, rather than leaving them to the last sender.
            (state.take_waiters(), std::mem::take(&mut state.queue))
        } else {
            (Vec::new(), VecDeque::new())
        };
        drop(state);
        wake(waiters);
        drop(unread);
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Sender { .. }")
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Receiver { .. }")
    }
}

/// What choosing an operation claimed, for its completion to take.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// One queued item, or one reserved slot.
    One,
    /// Nothing to claim: the other side is gone (or, for a send into an
    /// unbounded channel, there is always room).
    Nothing,
}

/// One side of a channel, as a [`Select`] sees it.
trait Op {
    /// Claims the operation if it is ready; otherwise leaves `waiter` to
    /// be woken when it may have become ready.
    fn claim(&self, waiter: &Arc<Waiter>) -> Option<Claim>;
}

impl<T> Op for Receiver<T> {
    fn claim(&self, waiter: &Arc<Waiter>) -> Option<Claim> {
        let mut state = self.chan.state.lock();
        if state.has_free_item() {
            state.claimed += 1;
            Some(Claim::One)
        } else if state.senders == 0 {
            Some(Claim::Nothing)
        } else {
            state.add_waiter(waiter);
            None
        }
    }
}

impl<T> Op for Sender<T> {
    fn claim(&self, waiter: &Arc<Waiter>) -> Option<Claim> {
        let mut state = self.chan.state.lock();
        if state.receivers == 0 || state.cap.is_none() {
            Some(Claim::Nothing)
        } else if state.has_free_slot() {
            state.reserved += 1;
            Some(Claim::One)
        } else {
            state.add_waiter(waiter);
            None
        }
    }
}

/// crossbeam's `Select`, for the operations the crate selects over.
pub(crate) struct Select<'a> {
    ops: Vec<&'a dyn Op>,
    /// `select_timeout` timed out once already.
    timed_out: bool,
}

impl<'a> Select<'a> {
    pub(crate) fn new() -> Self {
        Self {
            ops: Vec::new(),
            timed_out: false,
        }
    }

    pub(crate) fn send<T>(&mut self, sender: &'a Sender<T>) -> usize {
        self.ops.push(sender);
        self.ops.len() - 1
    }

    pub(crate) fn recv<T>(&mut self, receiver: &'a Receiver<T>) -> usize {
        self.ops.push(receiver);
        self.ops.len() - 1
    }

    /// Waits until an operation is ready and claims it.
    pub(crate) fn select(&mut self) -> SelectedOperation {
        let waiter = Arc::new(Waiter::new());
        loop {
            for (index, op) in self.ops.iter().enumerate() {
                if let Some(claim) = op.claim(&waiter) {
                    return SelectedOperation { index, claim };
                }
            }
            waiter.sleep();
        }
    }

    /// Times out if its first look finds nothing ready; afterwards, as
    /// [`select`](Self::select) (see the module docs).
    pub(crate) fn select_timeout(
        &mut self,
        _timeout: Duration,
    ) -> Result<SelectedOperation, SelectTimeoutError> {
        if self.timed_out {
            return Ok(self.select());
        }
        self.timed_out = true;
        // A waiter left on a channel by this look is dropped with it, and
        // skipped by the wakes.
        let waiter = Arc::new(Waiter::new());
        for (index, op) in self.ops.iter().enumerate() {
            if let Some(claim) = op.claim(&waiter) {
                return Ok(SelectedOperation { index, claim });
            }
        }
        Err(SelectTimeoutError)
    }

    /// Models have no clock: as [`select`](Self::select).
    pub(crate) fn select_deadline(
        &mut self,
        _deadline: Instant,
    ) -> Result<SelectedOperation, SelectTimeoutError> {
        Ok(self.select())
    }
}

/// The operation a [`Select`] chose; complete it with the same channel.
#[must_use = "a selected operation holds a claim until it is completed"]
pub(crate) struct SelectedOperation {
    index: usize,
    claim: Claim,
}

impl SelectedOperation {
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    pub(crate) fn recv<T>(self, receiver: &Receiver<T>) -> Result<T, RecvError> {
        if self.claim == Claim::Nothing {
            return Err(RecvError);
        }
        let mut state = receiver.chan.state.lock();
        state.claimed -= 1;
        // A claimed item is never taken by anyone else.
        let item = state.queue.pop_front();
        receiver.chan.items.fetch_sub(1, Relaxed);
        let waiters = state.take_waiters();
        drop(state);
        wake(waiters);
        item.ok_or(RecvError)
    }

    pub(crate) fn send<T>(self, sender: &Sender<T>, item: T) -> Result<(), SendError<T>> {
        let mut state = sender.chan.state.lock();
        if self.claim == Claim::One {
            state.reserved -= 1;
        }
        if state.receivers == 0 {
            return Err(SendError(item));
        }
        state.queue.push_back(item);
        sender.chan.items.fetch_add(1, Relaxed);
        let waiters = state.take_waiters();
        drop(state);
        wake(waiters);
        Ok(())
    }
}
