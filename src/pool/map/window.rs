//! The in-flight bookkeeping of a started map ([`Progress`]): what has
//! been taken from the input, what has been yielded, and where the window
//! starts.

use std::collections::BTreeMap;

use super::chunk::Batch;
use crate::crew::Judge;
use crate::error::JobError;
use crate::ordered::Window;

/// What a started map has taken, received and yielded.
///
/// # The window
///
/// The frontier ([`frontier`](Self::frontier)) is the input offset below
/// which every item is settled: yielded, in ordered mode; in unordered
/// mode, yielded or at least received from its chunk (results are yielded
/// as their chunks arrive, so the frontier is the lower of the start of
/// the lowest chunk still out and the next unyielded result of the chunk
/// being yielded). Items are taken from the input only while
/// `taken - frontier` stays within the window. So memory is bounded by the
/// window, and the input is never read more than a window past the oldest
/// item not yet yielded (ordered: `map`, `try_map`) or not yet finished
/// (unordered). The ordered frontier is never ahead of the unordered one,
/// so a `try_map` stopped by a failure has read at most a window past it.
pub(super) struct Progress<R, J: Judge<R>> {
    /// `map` (results in input order) rather than `map_unordered`.
    ordered: bool,
    /// Index of the next chunk to be taken.
    next_chunk: u64,
    /// Items taken from the input.
    taken: usize,
    /// Results handed to the consumer.
    yielded: usize,
    /// Ordered mode: chunks that finished ahead of their turn.
    pending: Window<Batch<R, J>>,
    /// Unordered mode: which chunks have been received.
    received: Window<()>,
    /// Input offset of each chunk's first item, for chunks not yet settled.
    offsets: BTreeMap<u64, usize>,
    /// The chunk being yielded, and the input offset of its next item.
    current: Batch<R, J>,
    current_offset: usize,
    /// The progress counter (items yielded when ordered, the offset of the
    /// next result when not) below which the window cannot have room, so
    /// the consumer need not try to refill: it keeps the per-item path to a
    /// comparison. Reset to 0 whenever the window might have moved.
    refill_at: usize,
}

impl<R, J: Judge<R>> Progress<R, J> {
    /// Nothing taken yet.
    pub(super) fn new(ordered: bool) -> Self {
        Self {
            ordered,
            next_chunk: 0,
            taken: 0,
            yielded: 0,
            // Never the limit: the item window bounds the chunks in flight.
            pending: Window::new(usize::MAX),
            received: Window::new(usize::MAX),
            offsets: BTreeMap::new(),
            current: Batch::empty(),
            current_offset: 0,
            refill_at: 0,
        }
    }

    /// The counter [`refill_at`](Self::refill_at) is compared with: items
    /// yielded when ordered, the offset of the next result when not.
    #[inline(always)]
    pub(super) fn counter(&self) -> usize {
        if self.ordered {
            self.yielded
        } else {
            self.current_offset
        }
    }

    /// Whether the window may have room for another chunk. Always once
    /// every item taken has been yielded: in unordered mode the counter
    /// is the offset of the last chunk to arrive, which need not be the
    /// highest, so it alone could leave a map that has yielded everything
    /// waiting for room it already has — and ending early.
    #[inline(always)]
    pub(super) fn may_refill(&self) -> bool {
        self.counter() >= self.refill_at || self.yielded == self.taken
    }

    /// The next result of the chunk being yielded, with its input offset,
    /// counted as yielded.
    #[inline(always)]
    pub(super) fn next_result(&mut self) -> Option<(usize, Result<R, JobError>)> {
        let result = self.current.next()?;
        let offset = self.current_offset;
        self.current_offset += 1;
        self.yielded += 1;
        Some((offset, result))
    }

    /// The rest of the chunk being yielded, if it is all values, as the
    /// bare values its judge kept; counted as yielded.
    pub(super) fn take_values(&mut self) -> Option<std::vec::IntoIter<J::Clean>> {
        let Batch::Values(values) = &mut self.current else {
            return None;
        };
        let block = values.len();
        self.current_offset += block;
        self.yielded += block;
        Some(std::mem::replace(values, Vec::new().into_iter()))
    }

    /// The window may have moved (or been resized): the next result
    /// looks at it again.
    pub(super) fn recheck(&mut self) {
        self.refill_at = 0;
    }

    /// Items taken and not yet yielded.
    pub(super) fn unyielded(&self) -> usize {
        self.taken - self.yielded
    }

    /// Every item taken has been yielded.
    pub(super) fn is_done(&self) -> bool {
        self.yielded == self.taken
    }

    /// See the type's docs.
    fn frontier(&self) -> usize {
        if self.ordered {
            self.yielded
        } else {
            let unreceived = self
                .offsets
                .get(&self.received.next())
                .copied()
                .unwrap_or(self.taken);
            // A received chunk's results not yet yielded are not settled
            // either: an error among them must not let the input run on.
            match self.current.is_empty() {
                true => unreceived,
                false => unreceived.min(self.current_offset),
            }
        }
    }

    /// Whether another chunk of `chunk` items fits in `window` (always when
    /// nothing is out, so the map makes progress). When it does not, sets
    /// [`refill_at`](Self::refill_at) to where room can come back.
    pub(super) fn has_room(&mut self, chunk: usize, window: usize) -> bool {
        let out = self.taken - self.frontier();
        if out != 0 && out + chunk > window {
            // Room comes back once progress passes this point (the
            // frontier never runs ahead of the progress counter).
            self.refill_at = (self.taken + chunk).saturating_sub(window);
            return false;
        }
        true
    }

    /// The input has run out: no refill is worth trying again.
    pub(super) fn input_ended(&mut self) {
        self.refill_at = usize::MAX;
    }

    /// Records a chunk of `len` items taken from the input; returns its
    /// index.
    pub(super) fn took(&mut self, len: usize) -> u64 {
        let index = self.next_chunk;
        self.next_chunk += 1;
        self.offsets.insert(index, self.taken);
        self.taken += len;
        index
    }

    /// Ordered mode: makes the next chunk in order the one to yield, if it
    /// has arrived. Returns whether it had.
    pub(super) fn next_pending(&mut self) -> bool {
        let Some(results) = self.pending.pop() else {
            return false;
        };
        let index = self.pending.next() - 1;
        self.take_chunk(index, results);
        self.offsets.remove(&index);
        true
    }

    /// Chunk `index` sent back `results`: held for its turn when ordered,
    /// made the one to yield when not.
    pub(super) fn arrived(&mut self, index: u64, results: Batch<R, J>) {
        if self.ordered {
            // Each chunk index arrives once, and is at or after `next`.
            let _ = self.pending.insert(index, results);
            return;
        }
        self.take_chunk(index, results);
        // The frontier may have jumped: look at the window again.
        self.recheck();
        let _ = self.received.insert(index, ());
        while self.received.pop().is_some() {}
        let settled = self.received.next();
        while self
            .offsets
            .first_key_value()
            .is_some_and(|(&chunk, _)| chunk < settled)
        {
            self.offsets.pop_first();
        }
    }

    /// The input offset of chunk `index`'s first item, for a chunk taken
    /// and not yet settled.
    pub(super) fn offset(&self, index: u64) -> usize {
        self.offsets.get(&index).copied().unwrap_or(self.taken)
    }

    /// Makes `results` of chunk `index` the ones to yield next.
    fn take_chunk(&mut self, index: u64, results: Batch<R, J>) {
        self.current_offset = self.offset(index);
        self.current = results;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::map::chunk::Plain;

    fn values(values: Vec<u32>) -> Batch<u32, Plain> {
        Batch::Values(values.into_iter())
    }

    fn drain(progress: &mut Progress<u32, Plain>) -> Vec<(usize, u32)> {
        std::iter::from_fn(|| progress.next_result())
            .map(|(offset, result)| (offset, result.unwrap()))
            .collect()
    }

    #[test]
    fn ordered_yields_chunks_in_input_order() {
        let mut progress = Progress::new(true);
        assert_eq!((progress.took(2), progress.took(1)), (0, 1));
        progress.arrived(1, values(vec![30]));
        assert!(!progress.next_pending());
        progress.arrived(0, values(vec![10, 20]));
        assert!(progress.next_pending());
        assert_eq!(drain(&mut progress), [(0, 10), (1, 20)]);
        assert!(progress.next_pending());
        assert_eq!(drain(&mut progress), [(2, 30)]);
        assert!(progress.is_done());
    }

    #[test]
    fn unordered_map_refills_once_everything_taken_is_yielded() {
        // Chunks grew from 4 to 8 items (window 8) while two chunks of 4
        // were out; the higher one arrives first. Once the lower one is
        // yielded too, nothing is out: the map must refill rather than
        // end, although the last counter (offset 4) is below refill_at.
        let mut progress = Progress::new(false);
        progress.took(4);
        progress.took(4);
        assert!(!progress.has_room(8, 8));
        progress.arrived(1, values(vec![5, 6, 7, 8]));
        assert_eq!(drain(&mut progress).len(), 4);
        progress.arrived(0, values(vec![1, 2, 3, 4]));
        assert!(!progress.has_room(8, 8));
        assert_eq!(drain(&mut progress).len(), 4);
        assert!(progress.is_done());
        assert!(
            progress.may_refill(),
            "counter {}, refill_at {}",
            progress.counter(),
            progress.refill_at
        );
        assert!(progress.has_room(8, 8));
    }

    #[test]
    fn ordered_frontier_is_what_was_yielded() {
        let mut progress = Progress::new(true);
        progress.took(2);
        progress.took(2);
        // Two chunks of two out of a window of four: no room for a third.
        assert!(!progress.has_room(2, 4));
        assert_eq!(progress.refill_at, 2);
        progress.arrived(1, values(vec![3, 4]));
        assert!(!progress.has_room(2, 4));
        progress.arrived(0, values(vec![1, 2]));
        progress.next_pending();
        progress.next_result();
        assert!(!progress.may_refill());
        progress.next_result();
        assert!(progress.may_refill());
        assert!(progress.has_room(2, 4));
    }

    #[test]
    fn unordered_yields_chunks_as_they_arrive() {
        let mut progress = Progress::new(false);
        progress.took(2);
        progress.took(1);
        progress.arrived(1, values(vec![30]));
        assert_eq!(drain(&mut progress), [(2, 30)]);
        progress.arrived(0, values(vec![10, 20]));
        assert_eq!(drain(&mut progress), [(0, 10), (1, 20)]);
        assert!(progress.is_done());
    }

    #[test]
    fn unordered_frontier_waits_for_the_lowest_chunk_out() {
        let mut progress = Progress::new(false);
        progress.took(2);
        progress.took(2);
        // Chunk 1 back and yielded, chunk 0 still out: nothing settles.
        progress.arrived(1, values(vec![3, 4]));
        drain(&mut progress);
        assert!(!progress.has_room(2, 4));
        progress.arrived(0, values(vec![1, 2]));
        // Received but not yet yielded is not settled.
        assert!(!progress.has_room(2, 4));
        progress.next_result();
        assert!(!progress.has_room(2, 4));
        progress.next_result();
        assert!(progress.has_room(2, 4));
    }

    #[test]
    fn nothing_out_always_has_room() {
        let mut progress = Progress::<u32, Plain>::new(true);
        assert!(progress.has_room(100, 1));
    }

    #[test]
    fn take_values_counts_the_block_yielded() {
        let mut progress = Progress::new(true);
        progress.took(3);
        progress.arrived(0, values(vec![1, 2, 3]));
        progress.next_pending();
        progress.next_result();
        let block = progress.take_values().unwrap();
        assert_eq!(block.collect::<Vec<u32>>(), vec![2, 3]);
        assert!(progress.is_done());
        assert_eq!(progress.counter(), 3);
    }
}
