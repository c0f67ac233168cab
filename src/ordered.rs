//! Putting results back in submission order, in bounded memory.
//!
//! Jobs finish in any order; a consumer that wants them in the order they
//! were submitted needs a reorder buffer (the seed's "Strategy 2"). An
//! unbounded one is a memory leak in waiting: if item 0 is slow, every
//! later result piles up behind it. brigade's buffers have a **window**:
//! only indices `next .. next + window` may be held, where `next` is the
//! lowest index not yet emitted. Whoever produces an index past the window
//! waits until `next` catches up, so memory stays O(window) however slow
//! item 0 is.
//!
//! * [`Window`] is the arithmetic: a ring of `window` slots, insert at an
//!   offset from `next`, pop the ready prefix. Single-threaded; `map` and
//!   the pipeline's collector use it directly, enforcing the window where
//!   they hand out work.
//! * [`Reorder`] shares a `Window` between worker threads for an ordered
//!   `WorkerPool`: a worker whose index is past the window waits (and wakes
//!   on cancellation); one worker at a time emits the ready prefix, in
//!   order, outside the lock.
//!
//! # Why the window cannot deadlock a worker pool
//!
//! Indices are assigned in queue order and the queue is FIFO, so when any
//! job with an index above `next` has been dequeued, job `next` was
//! dequeued before it: it is running or already buffered. Its worker never
//! waits (`next` is always inside the window), so `next` always advances.
//!
//! Keyed jobs (`WorkerPool::submit_keyed`) go through the dispatcher's
//! board, which keeps its queue in submission order, and a worker weighs
//! the channel's head against the board's best, so a free worker always
//! takes the lowest index that may start. Job `next` may be unable to start
//! only while its key's previous job runs; that job's index is below
//! `next`, so it was emitted and its worker is past the window, about to
//! release the key and take `next` itself. Hence when a worker takes an
//! index above `next`, job `next` was taken before it or was held by a
//! worker that will take it: `next` still always advances. (Priority lanes
//! would break this, letting later work overtake `next`: they are
//! `ThreadPool`'s only.)

use std::collections::VecDeque;

use crossbeam_channel::{Receiver, select};

use crate::sync::Mutex;

/// A reorder window: slots for indices `next .. next + size`.
#[derive(Debug)]
pub(crate) struct Window<T> {
    next: u64,
    size: usize,
    /// `slots[k]` holds index `next + k`; never longer than `size`.
    slots: VecDeque<Option<T>>,
    held: usize,
}

impl<T> Window<T> {
    /// A window of `size` slots (at least 1) starting at index 0.
    pub(crate) fn new(size: usize) -> Self {
        let size = size.max(1);
        Self {
            next: 0,
            size,
            slots: VecDeque::new(),
            held: 0,
        }
    }

    /// The lowest index not yet popped.
    pub(crate) fn next(&self) -> u64 {
        self.next
    }

    /// How many items are held.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Whether `index` may be inserted now: not yet popped, and less than
    /// `size` past `next`.
    pub(crate) fn fits(&self, index: u64) -> bool {
        index
            .checked_sub(self.next)
            .is_some_and(|offset| offset < self.size as u64)
    }

    /// Stores `item` at `index`. Hands it back if `index` does not fit, or
    /// if that slot is already filled.
    pub(crate) fn insert(&mut self, index: u64, item: T) -> Result<(), T> {
        if !self.fits(index) {
            return Err(item);
        }
        // `fits` bounds the offset by `size`, a usize.
        let offset = (index - self.next) as usize;
        if self.slots.len() <= offset {
            self.slots.resize_with(offset + 1, || None);
        }
        match &mut self.slots[offset] {
            Some(_) => Err(item),
            empty => {
                *empty = Some(item);
                self.held += 1;
                Ok(())
            }
        }
    }

    /// The item at `next`, if it is here, advancing `next`.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let item = self.slots.front_mut()?.take()?;
        self.slots.pop_front();
        self.next += 1;
        self.held -= 1;
        Some(item)
    }

    /// Everything held, in index order, leaving the window empty.
    pub(crate) fn drain(&mut self) -> Vec<T> {
        self.held = 0;
        self.slots.drain(..).flatten().collect()
    }
}

/// A [`Window`] shared by worker threads; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Reorder<T> {
    state: Mutex<State<T>>,
}

#[derive(Debug)]
struct State<T> {
    window: Window<T>,
    /// One worker at a time emits, so emitted items keep their order.
    emitting: bool,
    /// Workers waiting for the window to move, each woken by a message.
    waiters: Vec<crossbeam_channel::Sender<()>>,
}

impl<T> Reorder<T> {
    pub(crate) fn new(window: usize) -> Self {
        Self {
            state: Mutex::new(State {
                window: Window::new(window),
                emitting: false,
                waiters: Vec::new(),
            }),
        }
    }

    /// Stores `item` at `index`, first waiting while `index` is past the
    /// window. Returns the run of items the caller must now emit, in
    /// order, if it has become the emitter (then it must call
    /// [`next_batch`](Self::next_batch) after emitting them). Hands `item`
    /// back if `cancel` fires while waiting.
    pub(crate) fn insert(
        &self,
        index: u64,
        mut item: T,
        cancel: &Receiver<()>,
    ) -> Result<Option<Vec<T>>, T> {
        loop {
            let mut state = self.state.lock();
            match state.window.insert(index, item) {
                Ok(()) => return Ok(state.claim_batch()),
                Err(back) => item = back,
            }
            let (wake_tx, wake_rx) = crossbeam_channel::bounded(1);
            state.waiters.push(wake_tx);
            drop(state);
            select! {
                recv(wake_rx) -> _ => {}
                recv(cancel) -> _ => return Err(item),
            }
        }
    }

    /// After emitting a batch: the next ready run, or `None`, which gives
    /// up the emitter role.
    pub(crate) fn next_batch(&self) -> Option<Vec<T>> {
        let mut state = self.state.lock();
        state.emitting = false;
        state.claim_batch()
    }

    /// Everything still held, in index order.
    pub(crate) fn take_pending(&self) -> Vec<T> {
        self.state.lock().window.drain()
    }
}

impl<T> State<T> {
    /// Takes the ready prefix if nobody is emitting, and wakes waiters
    /// whose index may now fit.
    fn claim_batch(&mut self) -> Option<Vec<T>> {
        if self.emitting {
            return None;
        }
        let mut batch = Vec::new();
        while let Some(item) = self.window.pop() {
            batch.push(item);
        }
        if batch.is_empty() {
            return None;
        }
        self.emitting = true;
        for waiter in self.waiters.drain(..) {
            let _ = waiter.try_send(());
        }
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_arithmetic() {
        let mut w = Window::new(3);
        assert!(w.fits(0) && w.fits(2) && !w.fits(3));
        assert_eq!(w.insert(3, 'd'), Err('d'), "past the window");
        assert_eq!(w.insert(2, 'c'), Ok(()));
        assert_eq!(w.insert(2, 'x'), Err('x'), "slot taken");
        assert_eq!(w.pop(), None, "index 0 not here yet");
        assert_eq!(w.insert(1, 'b'), Ok(()));
        assert_eq!(w.held(), 2);
        assert_eq!(w.insert(0, 'a'), Ok(()));
        assert_eq!(
            (w.pop(), w.pop(), w.pop(), w.pop()),
            (Some('a'), Some('b'), Some('c'), None)
        );
        assert_eq!(w.next(), 3);
        assert!(!w.fits(2), "already popped");
        assert!(w.fits(5) && !w.fits(6));
        assert_eq!(w.insert(5, 'f'), Ok(()));
        assert_eq!(w.insert(3, 'd'), Ok(()));
        assert_eq!(w.pop(), Some('d'));
        assert_eq!(w.pop(), None, "4 still missing");
        assert_eq!(w.insert(4, 'e'), Ok(()));
        assert_eq!((w.pop(), w.pop()), (Some('e'), Some('f')));
        assert_eq!(w.held(), 0);
    }

    #[test]
    fn window_size_zero_means_one() {
        let mut w = Window::new(0);
        assert!(w.fits(0) && !w.fits(1));
        assert_eq!(w.insert(0, 1), Ok(()));
        assert_eq!(w.pop(), Some(1));
    }

    #[test]
    fn window_never_holds_more_than_its_size() {
        // Insert a permutation of 0..100 through a window of 7, popping
        // whatever is ready; nothing is held beyond the window.
        let mut order: Vec<u64> = (0..100).collect();
        // A fixed, deterministic shuffle within blocks of 7.
        for block in order.chunks_mut(7) {
            block.reverse();
        }
        let mut w = Window::new(7);
        let mut out = Vec::new();
        for index in order {
            assert_eq!(w.insert(index, index), Ok(()));
            assert!(w.held() <= 7);
            while let Some(v) = w.pop() {
                out.push(v);
            }
        }
        assert_eq!(out, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn drain_returns_in_order() {
        let mut w = Window::new(4);
        for i in [3, 1, 2] {
            assert_eq!(w.insert(i, i), Ok(()));
        }
        assert_eq!(w.drain(), vec![1, 2, 3]);
        assert_eq!(w.held(), 0);
    }

    #[test]
    fn reorder_emits_in_order_and_waits_past_window() {
        let reorder = Reorder::new(2);
        let (_keep, cancel) = crossbeam_channel::bounded::<()>(0);
        assert_eq!(reorder.insert(1, 'b', &cancel), Ok(None));
        assert_eq!(reorder.insert(0, 'a', &cancel), Ok(Some(vec!['a', 'b'])));
        // While emitting, a newly ready item waits for next_batch.
        assert_eq!(reorder.insert(2, 'c', &cancel), Ok(None));
        assert_eq!(reorder.next_batch(), Some(vec!['c']));
        assert_eq!(reorder.next_batch(), None);
        // Index 5 is past the window (next = 3, size 2): a cancelled
        // wait hands the item back.
        let (tx, cancelled) = crossbeam_channel::bounded::<()>(0);
        drop(tx);
        assert_eq!(reorder.insert(5, 'f', &cancelled), Err('f'));
        assert_eq!(reorder.take_pending(), Vec::<char>::new());
    }
}
