//! The collecting loop of [`Map::collect_vec`] ([`Map::gather`]), and
//! what it keeps of the results ([`Gather`]: [`Values`]).
//!
//! It collects in input order into one `Vec`, sized up front
//! ([`capacity`]), and moves the rest of each clean chunk across in one
//! block.

use std::vec;

use super::Map;
use crate::error::JobError;

/// What a collecting loop keeps of a map's results, and when it stops.
pub(super) trait Gather<R> {
    /// What goes into the `Vec`.
    type Value;
    /// Why the loop stopped early.
    type Error;

    /// The result of the item at input offset `index`: push its value
    /// onto `out`, set it aside, or stop with an error.
    fn one(
        &mut self,
        out: &mut Vec<Self::Value>,
        index: usize,
        result: Result<R, JobError>,
    ) -> Result<(), Self::Error>;

    /// The rest of a clean chunk, the first at input offset `index`.
    fn block(
        &mut self,
        out: &mut Vec<Self::Value>,
        index: usize,
        block: vec::IntoIter<R>,
    ) -> Result<(), Self::Error>;

    /// Every result has been seen: the final word on `out`.
    fn finish(self, out: Vec<Self::Value>) -> Result<Vec<Self::Value>, Self::Error>;
}

/// [`Map::collect_vec`]: every value, or the first error in input order.
pub(super) struct Values;

impl<R> Gather<R> for Values {
    type Value = R;
    type Error = JobError;

    fn one(
        &mut self,
        out: &mut Vec<R>,
        _: usize,
        result: Result<R, JobError>,
    ) -> Result<(), JobError> {
        out.push(result?);
        Ok(())
    }

    fn block(
        &mut self,
        out: &mut Vec<R>,
        _: usize,
        block: vec::IntoIter<R>,
    ) -> Result<(), JobError> {
        // By value, so `extend` copies the block in one go.
        out.extend(block);
        Ok(())
    }

    fn finish(self, out: Vec<R>) -> Result<Vec<R>, JobError> {
        Ok(out)
    }
}

/// How many values to make room for up front, from an input's size hint:
/// its exact length when it knows it, else its lower bound — but nothing
/// for an input with no upper bound, whose lower bound may be no length at
/// all (`0u64..` says `usize::MAX`).
pub(super) fn capacity(size_hint: (usize, Option<usize>)) -> usize {
    match size_hint {
        (low, Some(_)) => low,
        (_, None) => 0,
    }
}

impl<I, F, R> Map<'_, I, F, R>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> R + Send + Sync + 'static,
    R: Send + 'static,
{
    /// The collecting loop: every result in input order through `gather`,
    /// the rest of each clean chunk as one block. `next_indexed` does the
    /// waiting, the ordering and the refills; yielding a block at once
    /// only makes the next refill later, never the window larger.
    pub(super) fn gather<G: Gather<R>>(mut self, mut gather: G) -> Result<Vec<G::Value>, G::Error> {
        let mut out = Vec::new();
        // A reservation the allocator refuses (a size hint that lies, or
        // is absurd) is skipped: the `Vec` then grows as it goes.
        let _ = out.try_reserve_exact(capacity(self.size_hint()));
        while let Some((index, result)) = self.next_indexed() {
            gather.one(&mut out, index, result)?;
            if let Some((index, block)) =
                self.run.as_mut().and_then(|run| run.progress.take_values())
            {
                gather.block(&mut out, index, block)?;
            }
        }
        gather.finish(out)
    }
}
