//! The collecting loop shared by [`Map::collect_vec`](super::Map::collect_vec)
//! and [`ThreadPool::try_map`] ([`Mapping::gather`]), and what each keeps of the
//! results ([`Gather`]: [`Values`], [`Tried`]).
//!
//! Both collect in input order into one `Vec`, sized up front
//! ([`capacity`]), and move the rest of each clean chunk across in one
//! block; they differ only in what a single result means and in when
//! they stop.

use super::Mapping;
use crate::crew::Judge;
use crate::error::{JobError, TryMapError};
use crate::pool::ThreadPool;

/// What a collecting loop keeps of a map's results, and when it stops.
/// The rest of a clean chunk needs no judging: it arrives as the bare
/// values that go into the `Vec` (see `Fallible`), and the loop copies it
/// in one block.
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

    /// Every result has been seen: the final word on `out`.
    fn finish(self, out: Vec<Self::Value>) -> Result<Vec<Self::Value>, Self::Error>;
}

/// [`Map::collect_vec`](super::Map::collect_vec): every value, or the
/// first error in input order.
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

    fn finish(self, out: Vec<R>) -> Result<Vec<R>, JobError> {
        Ok(out)
    }
}

/// [`ThreadPool::try_map`]: the values of `Ok`, or the first failure.
pub(super) struct Tried<'p> {
    pool: &'p ThreadPool,
    /// The first item cancelled while the pool was live, most likely by a
    /// failure still on its way; reported if no failure ever comes.
    skipped: Option<(usize, JobError)>,
}

impl<'p> Tried<'p> {
    pub(super) fn new(pool: &'p ThreadPool) -> Self {
        Self {
            pool,
            skipped: None,
        }
    }
}

impl<V, E> Gather<Result<V, E>> for Tried<'_> {
    type Value = V;
    type Error = TryMapError<E>;

    fn one(
        &mut self,
        out: &mut Vec<V>,
        index: usize,
        result: Result<Result<V, E>, JobError>,
    ) -> Result<(), TryMapError<E>> {
        let index64 = index as u64;
        match result {
            Ok(Ok(value)) => out.push(value),
            Ok(Err(error)) => {
                return Err(TryMapError::Failed {
                    index: index64,
                    error,
                });
            }
            Err(error) if cancelled_by_failure(self.pool, &error) => {
                self.skipped.get_or_insert((index, error));
            }
            Err(error) => {
                return Err(TryMapError::Job {
                    index: index64,
                    error,
                });
            }
        }
        Ok(())
    }

    fn finish(self, out: Vec<V>) -> Result<Vec<V>, TryMapError<E>> {
        // An item was cancelled and no failure explains it: the map's own
        // context was cancelled some other way (by `try_map_ctx`'s
        // closure, say). Its value is missing, so `out` is not the answer.
        match self.skipped {
            Some((index, error)) => Err(TryMapError::Job {
                index: index as u64,
                error,
            }),
            None => Ok(out),
        }
    }
}

/// Whether an item's `error` is the cancellation that a failure elsewhere
/// in a `try_map` causes: it is cancelled while the pool is live. Such an
/// item is passed over, as the failure itself is on its way.
fn cancelled_by_failure(pool: &ThreadPool, error: &JobError) -> bool {
    matches!(error, JobError::Cancelled(_)) && !pool.context().is_done()
}

/// Whether `try_map` stops at `result`, whose value `J` judges: a
/// failure, or an item error that no failure explains (a panic, a
/// timeout, the pool cancelled). Agrees with [`Tried::one`], which turns
/// the same result into the error returned.
pub(super) fn stops<R, J: Judge<R>>(pool: &ThreadPool, result: &Result<R, JobError>) -> bool {
    match result {
        Ok(value) => J::failed(value),
        Err(error) => !cancelled_by_failure(pool, error),
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

impl<I, F, R, J> Mapping<'_, I, F, R, J>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> R + Send + Sync + 'static,
    R: Send + 'static,
    J: Judge<R, Clean: Send + 'static>,
{
    /// The collecting loop: every result in input order through `gather`,
    /// the rest of each clean chunk as one block. `next_indexed` does the
    /// waiting, the ordering and the refills; yielding a block at once
    /// only makes the next refill later, never the window larger.
    ///
    /// A `try_map` stop that came back ahead of its turn ends the loop
    /// at once, however many earlier items are still running.
    pub(super) fn gather<G: Gather<R, Value = J::Clean>>(
        mut self,
        mut gather: G,
    ) -> Result<Vec<G::Value>, G::Error> {
        let mut out = Vec::new();
        // A reservation the allocator refuses (a size hint that lies, or
        // is absurd) is skipped: the `Vec` then grows as it goes.
        let _ = out.try_reserve_exact(capacity(self.size_hint()));
        while let Some((index, result)) = self.next_indexed() {
            gather.one(&mut out, index, result)?;
            if let Some(block) = self.run.as_mut().and_then(|run| run.progress.take_values()) {
                // By value, so `extend` copies the block in one go.
                out.extend(block);
            }
        }
        if let Some((index, result)) = self.run.as_mut().and_then(|run| run.stop.take()) {
            gather.one(&mut out, index, result)?;
        }
        gather.finish(out)
    }
}
