//! A chunk of consecutive items as one pool job ([`Chunk`]), and the
//! results it sends back ([`Batch`]).

use std::any::Any;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::context::Context;
use crate::crew::{Ends, Ran, Run};
use crate::error::{Cancelled, JobError};
use crate::pool::job::Job;
use crate::sync::Arc;
use crate::unwind;

/// Results of one chunk: its index, one result per item in order, and how
/// long the items took to run (zero for a chunk discarded unrun).
pub(super) type ChunkResults<R> = (u64, Batch<R>, Duration);

/// Judges a mapped value a failure (`try_map`'s `Err`), which cancels the
/// items not yet started; `None` for `map`, whose values never fail.
pub(super) type Fails<R> = Option<fn(&R) -> bool>;

/// One chunk's results. Nearly every chunk succeeds whole, so it carries
/// bare values; only a chunk with a failure (a panic, a cancellation) pays
/// for a `Result` per item. For a `u64`, that is 8 bytes an item instead of
/// 32 on the way back to the consumer.
pub(super) enum Batch<R> {
    Values(std::vec::IntoIter<R>),
    Mixed(std::vec::IntoIter<Result<R, JobError>>),
}

impl<R> Batch<R> {
    pub(super) fn empty() -> Self {
        Self::Values(Vec::new().into_iter())
    }

    #[inline(always)]
    pub(super) fn next(&mut self) -> Option<Result<R, JobError>> {
        match self {
            Self::Values(values) => values.next().map(Ok),
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
            Self::Values(mut values) => values.nth(at).map(Ok),
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

/// A chunk of consecutive items as one pool job.
pub(super) struct Chunk<T, F, R> {
    index: u64,
    items: Vec<T>,
    f: Arc<F>,
    fails: Fails<R>,
    ctx: Context,
    tx: Sender<ChunkResults<R>>,
}

impl<T, F, R> Chunk<T, F, R>
where
    T: Send + 'static,
    F: Fn(T) -> R + Send + Sync + 'static,
    R: Send + 'static,
{
    /// Chunk `index` of a map: `items` to run through `f` under `ctx`,
    /// their results to be sent on `tx`.
    pub(super) fn new(
        index: u64,
        items: Vec<T>,
        f: Arc<F>,
        fails: Fails<R>,
        ctx: Context,
        tx: Sender<ChunkResults<R>>,
    ) -> Self {
        Self {
            index,
            items,
            f,
            fails,
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
            fails,
            ctx,
            tx,
        } = self;
        let started = Instant::now();
        let failed = |value: &R| fails.is_some_and(|fails| fails(value));
        run.under(&ctx).call_each(items, &*f, &failed, |ends| {
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

impl<T, F, R> Job for Chunk<T, F, R>
where
    T: Send + 'static,
    F: Fn(T) -> R + Send + Sync + 'static,
    R: Send + 'static,
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
