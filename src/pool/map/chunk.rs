//! A chunk of consecutive items as one pool job ([`Chunk`]), and the
//! results it sends back ([`Batch`]).

use std::any::Any;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::context::Context;
use crate::crew::{Ends, Judge, Ran, Run};
use crate::error::{Cancelled, JobError};
use crate::pool::job::Job;
use crate::sync::Arc;
use crate::unwind;

/// Results of one chunk: its index, one result per item in order, and how
/// long the items took to run (zero for a chunk discarded unrun).
pub(super) type ChunkResults<R, J> = (u64, Batch<R, J>, Duration);

/// [`map`](crate::ThreadPool::map)'s judge: no value is a failure, and a
/// clean value crosses back whole.
pub(super) struct Plain;

impl<R> Judge<R> for Plain {
    type Clean = R;
    const FAILS: bool = false;

    #[inline(always)]
    fn failed(_: &R) -> bool {
        false
    }

    #[inline(always)]
    fn clean(value: R) -> Result<R, R> {
        Ok(value)
    }

    #[inline(always)]
    fn returned(clean: R) -> R {
        clean
    }
}

/// [`try_map`](crate::ThreadPool::try_map)'s judge: an `Err` is a failure,
/// which cancels the items not yet started, and an `Ok` crosses back as
/// the value inside it.
pub(super) struct Fallible;

impl<V, E> Judge<Result<V, E>> for Fallible {
    type Clean = V;
    const FAILS: bool = true;

    #[inline(always)]
    fn failed(value: &Result<V, E>) -> bool {
        value.is_err()
    }

    #[inline(always)]
    fn clean(value: Result<V, E>) -> Result<V, Result<V, E>> {
        value.map_err(Err)
    }

    #[inline(always)]
    fn returned(clean: V) -> Result<V, E> {
        Ok(clean)
    }
}

/// One chunk's results. Nearly every chunk succeeds whole, so it carries
/// bare values (what its judge `J` keeps of each); only a chunk with a
/// failure (a panic, a cancellation) pays for a `Result` per item. For a
/// `u64`, that is 8 bytes an item instead of 32 on the way back to the
/// consumer, from `map` and `try_map` alike.
pub(super) enum Batch<R, J: Judge<R>> {
    Values(std::vec::IntoIter<J::Clean>),
    Mixed(std::vec::IntoIter<Result<R, JobError>>),
}

impl<R, J: Judge<R>> Batch<R, J> {
    pub(super) fn empty() -> Self {
        Self::Values(Vec::new().into_iter())
    }

    #[inline(always)]
    pub(super) fn next(&mut self) -> Option<Result<R, JobError>> {
        match self {
            Self::Values(values) => values.next().map(|clean| Ok(J::returned(clean))),
            Self::Mixed(results) => results.next(),
        }
    }

    /// The position of the first result for which `stops` holds. Only a
    /// mixed batch is looked through: a batch of bare values holds no
    /// failure (a value that fails ends the chunk's fast path, which makes
    /// the batch mixed) and no item error.
    pub(super) fn position(
        &self,
        stops: impl FnMut(&Result<R, JobError>) -> bool,
    ) -> Option<usize> {
        match self {
            Self::Values(_) => None,
            Self::Mixed(results) => results.as_slice().iter().position(stops),
        }
    }

    /// The result at `at`; the ones before it are dropped.
    pub(super) fn into_nth(self, at: usize) -> Option<Result<R, JobError>> {
        match self {
            Self::Values(mut values) => values.nth(at).map(|clean| Ok(J::returned(clean))),
            Self::Mixed(mut results) => results.nth(at),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        match self {
            Self::Values(values) => values.len() == 0,
            Self::Mixed(results) => results.len() == 0,
        }
    }
}

/// A chunk of consecutive items as one pool job, its values judged by `J`.
pub(super) struct Chunk<T, F, R, J: Judge<R>> {
    index: u64,
    items: Vec<T>,
    f: Arc<F>,
    ctx: Context,
    tx: Sender<ChunkResults<R, J>>,
}

impl<T, F, R, J> Chunk<T, F, R, J>
where
    T: Send + 'static,
    F: Fn(T) -> R + Send + Sync + 'static,
    R: Send + 'static,
    J: Judge<R, Clean: Send + 'static>,
{
    /// Chunk `index` of a map: `items` to run through `f` under `ctx`,
    /// their results to be sent on `tx`.
    pub(super) fn new(
        index: u64,
        items: Vec<T>,
        f: Arc<F>,
        ctx: Context,
        tx: Sender<ChunkResults<R, J>>,
    ) -> Self {
        Self {
            index,
            items,
            f,
            ctx,
            tx,
        }
    }

    /// How many items the chunk holds: one job each, for the pool's stats.
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    /// Runs the chunk's items through `run`, the crew's lifecycle, under
    /// the map's context, and sends their results back.
    pub(super) fn process(self, run: Run<'_>) -> Ran {
        let Self {
            index,
            items,
            f,
            ctx,
            tx,
        } = self;
        let started = Instant::now();
        run.under(&ctx).call_each::<_, _, J>(items, &*f, |ends| {
            let results = match ends {
                Ends::Values(values) => Batch::Values(values.into_iter()),
                Ends::Mixed(ends) => {
                    let results: Vec<_> = ends.into_iter().map(|end| end.into_result()).collect();
                    Batch::Mixed(results.into_iter())
                }
            };
            // The map may have been dropped; then nobody wants the results.
            let _ = tx.send((index, results, started.elapsed()));
        })
    }
}

impl<T, F, R, J> Job for Chunk<T, F, R, J>
where
    T: Send + 'static,
    F: Fn(T) -> R + Send + Sync + 'static,
    R: Send + 'static,
    J: Judge<R, Clean: Send + 'static>,
{
    fn run(self: Box<Self>, run: Run<'_>) -> Ran {
        self.process(run)
    }

    fn discard(self: Box<Self>, reason: Cancelled) {
        let Self {
            index, items, tx, ..
        } = *self;
        let results: Vec<_> = items
            .into_iter()
            .map(|item| {
                unwind::drop_quietly(item);
                Err(JobError::Cancelled(reason))
            })
            .collect();
        let _ = tx.send((index, Batch::Mixed(results.into_iter()), Duration::ZERO));
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fallible_batch_of_bare_values_gives_them_back_as_ok() {
        let mut batch: Batch<Result<u32, String>, Fallible> =
            Batch::Values(vec![1, 2, 3].into_iter());
        assert_eq!(batch.next(), Some(Ok(Ok(1))));
        assert_eq!(batch.into_nth(1), Some(Ok(Ok(3))));
    }

    #[test]
    fn judges_split_failures_from_clean_values() {
        assert_eq!(<Fallible as Judge<Result<u32, &str>>>::clean(Ok(7)), Ok(7));
        assert_eq!(
            <Fallible as Judge<Result<u32, &str>>>::clean(Err("no")),
            Err(Err("no"))
        );
        assert!(<Fallible as Judge<Result<u32, &str>>>::failed(&Err("no")));
        assert!(!<Plain as Judge<Result<u32, &str>>>::failed(&Err("no")));
        assert_eq!(<Plain as Judge<u32>>::clean(7), Ok(7));
    }
}
