//! [`ThreadPool::map`], [`ThreadPool::map_unordered`] and
//! [`ThreadPool::try_map`]: one closure over an iterator, on the pool.
//!
//! The user contract is on [`Map`] (chunks, the window, errors). Design
//! notes are on `Policy` (how big, how far ahead) and `Progress` (the
//! window's frontier).
//!
//! * `mod.rs`: [`Map`], its public API, and the driving loop (start,
//!   refill, receive);
//! * `collect.rs`: the collecting loop that [`Map::collect_vec`] and
//!   [`ThreadPool::try_map`] share, and what each keeps of the results;
//! * `chunk.rs`: `Chunk`, a run of consecutive items as one pool job, and
//!   `Batch`, the results it sends back;
//! * `policy.rs`: `Policy`, the chunk size and window, and how they grow
//!   (pure arithmetic, unit-tested);
//! * `window.rs`: `Progress`, the in-flight bookkeeping: taken, yielded,
//!   the frontier, chunks held for their turn.
//!
//! # Collecting
//!
//! [`Map::collect_vec`] and [`ThreadPool::try_map`] are one loop
//! (`Map::gather`), and its shape follows from one fact: the consumer is a
//! single thread against every worker, so whatever it does per item is
//! serial. Hence:
//!
//! * **A clean chunk moves as one block.** Only the first result of a
//!   chunk, and every result of a mixed one (a panic, a cancellation, a
//!   failure), goes through the per-item path.
//! * **`try_map`'s clean values cross without their `Ok`.** What a
//!   worker keeps of a value is the map's *judge* (`Judge`, a type: `Plain`
//!   for `map`, `Fallible` for `try_map`), so the item loop asks whether a
//!   value failed with no call, and a clean `try_map` chunk comes back as
//!   bare values, which the consumer copies as `collect_vec` does — half
//!   the bytes of the `Result`s for a `u64`, and one pass instead of a
//!   look for an `Err` and an unwrapping copy. (`Map` wraps the engine,
//!   `Mapping`, so that the judge is not a parameter of the public type.)
//! * **The `Vec` is sized once**, from the input's exact length, or its
//!   lower bound; not from an input with no upper bound, whose lower bound
//!   need not be a length (`0u64..` says `usize::MAX`), and not past what
//!   the allocator grants, so a size hint that lies costs at most a `Vec`
//!   that grows.
//! * **`try_map` is an ordered map.** Its values land in input order
//!   anyway, so holding chunks for their turn costs nothing, and the
//!   ordered frontier is never ahead of the unordered one: the read-ahead
//!   past a failure is bounded as before. A chunk that comes back holding
//!   a failure (or a panic, a timeout, the pool's cancellation) is not
//!   held for its turn: it ends the loop at once (`Started::stop`), so a
//!   failure is returned when it is first seen, however long an earlier
//!   item still runs.
//! * **Every value is written twice**: by its worker into its chunk's
//!   `Vec`, then by the consumer into the result. Letting workers write
//!   into the result's memory would take `unsafe` (rayon's `collect` does
//!   so); without it, the result's first-touch page faults and the copy
//!   fall on the consumer. That copy, and the per-item job lifecycle on
//!   the workers (timeouts, cancellation, stats), are the floor under
//!   `collect_vec`.
//! * **`collect::<Result<Vec<_>, _>>()` cannot do this.** std's adapter
//!   asks for one item at a time (through `try_fold`, which a stable
//!   iterator cannot override) and reports a lower bound of 0, so it
//!   pushes item by item into a `Vec` that grows as it goes.

mod chunk;
mod collect;
mod policy;
mod window;

use std::fmt;

use crossbeam_channel::{Receiver, Sender};

use super::ThreadPool;
use super::job::Task;
use crate::context::Context;
use crate::crew::{Judge, Run, Wait};
use crate::error::{Cancelled, JobError, TryMapError, TrySubmitError};
use crate::sync::Arc;
use chunk::{Chunk, ChunkResults, Fallible, Plain};
use collect::{Tried, Values};
use policy::Policy;
use window::Progress;

/// The most items a map with neither [`Map::window`] nor
/// [`Map::chunk_size`] set takes from its input ahead of the consumer.
pub const DEFAULT_READ_AHEAD: usize = 8_192;

/// The iterator returned by [`ThreadPool::map`] and
/// [`ThreadPool::map_unordered`].
///
/// Nothing is submitted until the first call to `next`.
///
///
/// # Chunks and the window
///
/// Items are taken from the input in **chunks** of consecutive items, and
/// each chunk is one hand-off to a worker: one hand-off per trivial item
/// would cost more than the work (see `benches/README.md`). Each item in a
/// chunk is still a job of its own: it honours the pool's `job_timeout`,
/// deadline and cancellation, and is counted in [`Stats`](crate::Stats).
///
/// By default the chunk size comes from the input's length (about four
/// chunks per worker, at most 1,024 items and at most what fits four
/// chunks per worker in [`DEFAULT_READ_AHEAD`]), and then **grows**: a
/// chunk that ran in under 100 µs was mostly hand-off, so the next ones
/// double, while two chunks per worker still fit in the read-ahead and
/// four per worker of what the input has left remain. Slow items keep
/// their first size. An input of unknown length (a size hint with no upper
/// bound, such as `0u64..`) goes one item per chunk. [`Map::chunk_size`]
/// fixes the size.
///
/// The input is pulled lazily, never more than a **window** of items ahead
/// of the oldest item not yet settled — not yet yielded, for `map` (or
/// collected, for [`try_map`]); not yet finished, for `map_unordered`:
///
/// * by default, at most [`DEFAULT_READ_AHEAD`] items, whatever the item
///   cost or how far the chunks grow;
/// * with [`Map::window`]`(w)`, at most `w` items (or one chunk, if a chunk
///   is larger);
/// * with only [`Map::chunk_size`]`(c)`, at most `4 × c × workers` items.
///
/// So memory stays bounded however long (or endless) the input and however
/// slow the first item, and `try_map` has read at most a window past the
/// failing item when it stops.
///
/// ```
/// use brigade::ThreadPool;
///
/// let pool = ThreadPool::builder().workers(2).build()?;
/// // An endless input: the map reads at most DEFAULT_READ_AHEAD items
/// // past the ten results taken.
/// let first: Vec<u64> = pool.map(1u64.., |n| n * n).take(10).collect::<Result<_, _>>()?;
/// assert_eq!(first[9], 100);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// To gather the results into a `Vec`, [`Map::collect_vec`] is the fast
/// way: it moves each chunk's values across in one block, into a `Vec`
/// sized up front. `collect::<Result<Vec<_>, _>>()` gives the same result
/// but cannot see the length, so it goes item by item.
///
/// # Errors and panics
///
/// `map` yields `Result<R, JobError>` per item: a panicking item yields
/// `Err(JobError::Panicked)` and the rest of its chunk still runs (the
/// worker is then replaced, as for any panicking job); if the pool is
/// cancelled, unfinished items yield `Err(JobError::Cancelled)`. Dropping
/// the iterator early cancels the chunks still queued.
///
/// Called from one of the pool's own jobs, the work runs inline on the
/// calling worker: waiting for other workers from inside one could
/// deadlock a busy pool.
///
/// [`try_map`]: ThreadPool::try_map
#[must_use = "a Map does nothing unless iterated"]
pub struct Map<'p, I: Iterator, F, R> {
    mapping: Mapping<'p, I, F, R, Plain>,
}

/// The engine under [`Map`] and [`ThreadPool::try_map`]: the same loop,
/// with the values judged by `J` (`Plain` for `map`, whose values never
/// fail; `Fallible` for `try_map`).
struct Mapping<'p, I: Iterator, F, R, J: Judge<R>> {
    pool: &'p ThreadPool,
    input: std::iter::Fuse<I>,
    f: Arc<F>,
    ordered: bool,
    chunk_size: Option<usize>,
    window: Option<usize>,
    /// The map's context, a child of the pool's: cancelled when the map is
    /// dropped or `try_map` fails.
    ctx: Context,
    run: Option<Started<R, J>>,
}

/// A started map: where its chunks report, how big they are, and how far
/// it has got.
struct Started<R, J: Judge<R>> {
    /// Cancelled when the iterator is dropped or `try_map` fails, so queued
    /// chunks are skipped.
    ctx: Context,
    tx: Sender<ChunkResults<R, J>>,
    rx: Receiver<ChunkResults<R, J>>,
    /// Started on one of the pool's own workers: chunks run inline.
    inline: bool,
    policy: Policy,
    progress: Progress<R, J>,
    /// `try_map`: the result it stops at, taken out of a chunk that came
    /// back ahead of its turn. Once set, nothing more is taken or yielded.
    stop: Option<Indexed<R>>,
}

/// A result with its item's input offset.
type Indexed<R> = (usize, Result<R, JobError>);

impl<R: Send + 'static, J: Judge<R, Clean: Send + 'static>> Started<R, J> {
    /// Hands `job` to the pool, or runs it here if the map started on one
    /// of the pool's own workers. A job the pool refuses (closed,
    /// cancelled) is discarded, which still reports its items.
    fn submit<T, F>(&self, pool: &ThreadPool, job: Chunk<T, F, R, J>)
    where
        T: Send + 'static,
        F: Fn(T) -> R + Send + Sync + 'static,
    {
        if self.inline {
            // Not counted in the pool's stats: no worker of the crew
            // took it from the queue.
            let _ = job.process(Run::here(&self.ctx, pool.job_timeout()));
            return;
        }
        let jobs = job.len() as u64;
        let task = Task::Batch(Box::new(job), jobs);
        if let Err(err) = pool.enqueue(task, Wait::Forever) {
            let reason = pool.context().reason().unwrap_or(Cancelled::Canceled);
            let (TrySubmitError::Full(task)
            | TrySubmitError::Closed(task)
            | TrySubmitError::Cancelled(task)) = err;
            task.discard(reason);
        }
    }
}

impl<'p, I, F, R> Map<'p, I, F, R>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> R + Send + Sync + 'static,
    R: Send + 'static,
{
    fn new(pool: &'p ThreadPool, input: I, f: F, ordered: bool) -> Self {
        Self {
            mapping: Mapping::new(pool, input, f, ordered),
        }
    }

    /// Consecutive items per job (default: from the input's size hint, see
    /// [`Map`]). `0` is taken as 1. Takes effect for chunks not yet
    /// taken.
    pub fn chunk_size(mut self, items: usize) -> Self {
        self.mapping.set_chunk_size(items);
        self
    }

    /// The most items taken from the input and not yet settled (default:
    /// four chunks per worker, at most [`DEFAULT_READ_AHEAD`]). A window
    /// smaller than a chunk is one chunk.
    pub fn window(mut self, items: usize) -> Self {
        self.mapping.set_window(items);
        self
    }
}

impl<'p, I, F, R, J> Mapping<'p, I, F, R, J>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> R + Send + Sync + 'static,
    R: Send + 'static,
    J: Judge<R, Clean: Send + 'static>,
{
    fn new(pool: &'p ThreadPool, input: I, f: F, ordered: bool) -> Self {
        Self::under(pool.context().child(), pool, input, f, ordered)
    }

    /// A map under `ctx`, a child of the pool's context.
    fn under(ctx: Context, pool: &'p ThreadPool, input: I, f: F, ordered: bool) -> Self {
        Self {
            pool,
            input: input.fuse(),
            f: Arc::new(f),
            ordered,
            chunk_size: None,
            window: None,
            ctx,
            run: None,
        }
    }

    /// See [`Map::chunk_size`].
    fn set_chunk_size(&mut self, items: usize) {
        let items = items.max(1);
        self.chunk_size = Some(items);
        if let Some(run) = &mut self.run {
            run.policy.set_chunk(items);
            run.progress.recheck();
        }
    }

    /// See [`Map::window`].
    fn set_window(&mut self, items: usize) {
        self.window = Some(items);
        if let Some(run) = &mut self.run {
            run.policy.set_window(items);
            run.progress.recheck();
        }
    }

    /// Sizes the chunks and window from the input and the pool, and opens
    /// the map's context and result channel.
    fn start(&mut self) -> Started<R, J> {
        let (workers, hint) = (self.pool.stats().workers, self.input.size_hint());
        let policy = Policy::new(workers, hint, self.chunk_size, self.window);
        let (tx, rx) = crossbeam_channel::unbounded();
        // Linked, so that each item's look at it before it starts is one
        // load (fail-fast checks it between every two items).
        let ctx = self.ctx.clone();
        ctx.link();
        Started {
            ctx,
            tx,
            rx,
            inline: self.pool.crew.on_own_worker(),
            policy,
            progress: Progress::new(self.ordered),
            stop: None,
        }
    }

    /// The next result with its input offset; `None` once every item is
    /// yielded, or `try_map` has its stop.
    fn next_indexed(&mut self) -> Option<Indexed<R>> {
        if self.run.is_none() {
            self.run = Some(self.start());
        }
        loop {
            let run = self.run.as_ref()?;
            if run.stop.is_some() {
                return None;
            }
            // Refill before yielding: the result about to be yielded still
            // counts against the window until it is handed over.
            if run.progress.may_refill() {
                self.refill();
            }
            let progress = &mut self.run.as_mut()?.progress;
            if let Some(next) = progress.next_result() {
                return Some(next);
            }
            if progress.is_done() {
                return None;
            }
            if !progress.next_pending() {
                self.receive()?;
            }
        }
    }

    /// Waits for a chunk to report and files its results; a chunk that ran
    /// fast makes the next ones larger. `None` if the channel closed.
    ///
    /// For `try_map`, a chunk holding a result it stops at (a failure, a
    /// panic) is not filed: that result becomes the stop at once, even if
    /// earlier chunks are still out, so a failure is reported as soon as
    /// it is seen rather than after the slowest earlier item.
    fn receive(&mut self) -> Option<()> {
        let run = self.run.as_mut()?;
        // Chunks always report, even when discarded, and we hold a
        // sender, so this wait ends.
        let (index, results, took) = run.rx.recv().ok()?;
        if run.policy.wants_growth(took) && run.policy.grow(self.input.size_hint().0) {
            run.progress.recheck();
        }
        let pool = self.pool;
        let stop = if J::FAILS {
            results.position(|result| collect::stops::<R, J>(pool, result))
        } else {
            None
        };
        match stop {
            Some(at) => {
                let offset = run.progress.offset(index) + at;
                run.stop = results.into_nth(at).map(|result| (offset, result));
            }
            None => run.progress.arrived(index, results),
        }
        Some(())
    }

    /// Takes chunks from the input while the window has room (always at
    /// least one, so the map makes progress) and submits them.
    fn refill(&mut self) {
        let Some(run) = self.run.as_mut() else { return };
        let (chunk, window) = (run.policy.chunk(), run.policy.window());
        while run.progress.has_room(chunk, window) {
            let items: Vec<I::Item> = self.input.by_ref().take(chunk).collect();
            if items.is_empty() {
                run.progress.input_ended();
                return;
            }
            let index = run.progress.took(items.len());
            let f = Arc::clone(&self.f);
            let job = Chunk::new(index, items, f, run.ctx.clone(), run.tx.clone());
            run.submit(self.pool, job);
        }
    }
}

impl<I, F, R> Map<'_, I, F, R>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> R + Send + Sync + 'static,
    R: Send + 'static,
{
    /// Collects the results into a `Vec`, in the order the iterator yields
    /// them, or returns the first error — what
    /// `collect::<Result<Vec<R>, JobError>>()` returns, but faster: each
    /// chunk's values move into the `Vec` as one block rather than one
    /// by one, and the `Vec` is sized up front from the input's length
    /// (its exact length, else the lower bound of its size hint; nothing
    /// for an input with no upper bound). `collect` through a `Result`
    /// cannot see the length, so it pushes item by item into a `Vec` that
    /// grows as it goes.
    ///
    /// # Errors
    ///
    /// The first item's [`JobError`] in iteration order; the chunks still
    /// queued are then cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::ThreadPool;
    ///
    /// let pool = ThreadPool::builder().workers(2).build()?;
    /// let squares = pool.map(0..10_000u64, |x| x * x).collect_vec()?;
    /// assert_eq!(squares[100], 10_000);
    /// assert_eq!(squares.len(), 10_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn collect_vec(self) -> Result<Vec<R>, JobError> {
        self.mapping.gather(Values)
    }
}

impl<I, F, R> Iterator for Map<'_, I, F, R>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> R + Send + Sync + 'static,
    R: Send + 'static,
{
    type Item = Result<R, JobError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let mapping = &mut self.mapping;
        // Fast path, a few instructions per item: a result is at hand and
        // the window cannot have room yet.
        if let Some(run) = &mut mapping.run {
            if !run.progress.may_refill() {
                if let Some((_, result)) = run.progress.next_result() {
                    return Some(result);
                }
            }
        }
        mapping.next_indexed().map(|(_, result)| result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.mapping.size_hint()
    }
}

impl<I: Iterator, F, R, J: Judge<R>> Mapping<'_, I, F, R, J> {
    /// Items not yet taken, plus those taken and not yet yielded.
    fn size_hint(&self) -> (usize, Option<usize>) {
        let (low, high) = self.input.size_hint();
        let in_flight = self.run.as_ref().map_or(0, |run| run.progress.unyielded());
        (
            low.saturating_add(in_flight),
            high.and_then(|h| h.checked_add(in_flight)),
        )
    }
}

impl<I: Iterator, F, R, J: Judge<R>> Drop for Mapping<'_, I, F, R, J> {
    fn drop(&mut self) {
        if let Some(run) = &self.run {
            run.ctx.cancel();
        }
    }
}

impl<I: Iterator, F, R> fmt::Debug for Map<'_, I, F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map = &self.mapping;
        let policy = map.run.as_ref().map(|run| run.policy);
        f.debug_struct("Map")
            .field("ordered", &map.ordered)
            .field(
                "chunk_size",
                &policy.map(|policy| policy.chunk()).or(map.chunk_size),
            )
            .field(
                "window",
                &policy.map(|policy| policy.window()).or(map.window),
            )
            .finish_non_exhaustive()
    }
}

impl ThreadPool {
    /// Applies `f` to every item of `input` on the pool, yielding the results
    /// in input order; see [`Map`] for chunking, the window
    /// and errors. To gather them into a `Vec`, [`Map::collect_vec`] is
    /// faster than `collect`.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::ThreadPool;
    ///
    /// let pool = ThreadPool::builder().workers(4).build()?;
    /// let squares: Vec<u64> = pool.map(1..=5u64, |n| n * n).collect::<Result<_, _>>()?;
    /// assert_eq!(squares, [1, 4, 9, 16, 25]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map<I, F, R>(&self, input: I, f: F) -> Map<'_, I::IntoIter, F, R>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        Map::new(self, input.into_iter(), f, true)
    }

    /// Like [`map`](Self::map), but yields each result as soon as its chunk
    /// finishes, in no particular order.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::ThreadPool;
    ///
    /// let pool = ThreadPool::builder().workers(4).build()?;
    /// let mut lengths: Vec<usize> = pool
    ///     .map_unordered(["a", "bb", "ccc"], |s: &str| s.len())
    ///     .collect::<Result<_, _>>()?;
    /// lengths.sort();
    /// assert_eq!(lengths, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_unordered<I, F, R>(&self, input: I, f: F) -> Map<'_, I::IntoIter, F, R>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        Map::new(self, input.into_iter(), f, false)
    }

    /// Applies a fallible `f` to every item and collects the values in input
    /// order, failing fast: the item that fails cancels the rest at once,
    /// so no item starts after it except those already running (at most
    /// one per worker); `input` is no longer read (at most a window past
    /// the failing item has been taken); and the first error seen is
    /// returned as soon as it is seen, without waiting for earlier items
    /// still running.
    ///
    /// The values are collected as [`Map::collect_vec`] collects them: each
    /// chunk's values in one block, into a `Vec` sized up front from the
    /// input's length.
    ///
    /// # Errors
    ///
    /// [`TryMapError::Failed`] with the first error `f` returned, or
    /// [`TryMapError::Job`] if an item panicked or timed out, or the pool
    /// was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::{ThreadPool, TryMapError};
    ///
    /// let pool = ThreadPool::builder().workers(2).build()?;
    /// let parsed = pool.try_map(["1", "2", "x"], |s: &str| s.parse::<u8>());
    /// assert!(matches!(parsed, Err(TryMapError::Failed { index: 2, .. })));
    /// let parsed = pool.try_map(["1", "2"], |s: &str| s.parse::<u8>());
    /// assert_eq!(parsed, Ok(vec![1, 2]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_map<I, F, R, E>(&self, input: I, f: F) -> Result<Vec<R>, TryMapError<E>>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> Result<R, E> + Send + Sync + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        try_collect(Mapping::new(self, input.into_iter(), f, true))
    }

    /// [`map`](Self::map) for a closure that watches the map's [`Context`]:
    /// it is cancelled when the map is dropped (say, by a `take(n)` that
    /// is done) or the pool is cancelled, so a long item can stop early.
    /// (It is the map's context, not each item's: a per-item
    /// [`job_timeout`](crate::ThreadPoolBuilder::job_timeout) still applies, but does
    /// not show in it.)
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::ThreadPool;
    ///
    /// let pool = ThreadPool::builder().workers(2).build()?;
    /// let firsts: Vec<u64> = pool
    ///     .map_ctx(0..u64::MAX, |ctx, n| if ctx.is_done() { 0 } else { n })
    ///     .take(3)
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(firsts, [0, 1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_ctx<I, F, R>(
        &self,
        input: I,
        f: F,
    ) -> Map<'_, I::IntoIter, impl Fn(I::Item) -> R + Send + Sync + 'static, R>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(&Context, I::Item) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        Map {
            mapping: watching(self, input.into_iter(), f, true),
        }
    }

    /// [`try_map`](Self::try_map) for a closure that watches the map's
    /// [`Context`]: the first failure cancels it, so items already running
    /// can stop early instead of finishing work nobody will read.
    ///
    /// # Errors
    ///
    /// As for [`try_map`](Self::try_map); and if `f` cancels the context
    /// itself with no item failing, [`TryMapError::Job`] with
    /// [`JobError::Cancelled`] for the first item that did not complete.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::{ThreadPool, TryMapError};
    ///
    /// let pool = ThreadPool::builder().workers(2).build()?;
    /// let checked = pool.try_map_ctx(0..100u32, |ctx, n| {
    ///     ctx.check().map_err(|reason| reason.to_string())?; // stop once failed
    ///     if n == 7 { Err("seven".to_owned()) } else { Ok(n) }
    /// });
    /// assert!(matches!(checked, Err(TryMapError::Failed { index: 7, .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_map_ctx<I, F, R, E>(&self, input: I, f: F) -> Result<Vec<R>, TryMapError<E>>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(&Context, I::Item) -> Result<R, E> + Send + Sync + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        try_collect(watching(self, input.into_iter(), f, true))
    }
}

/// A map whose closure `f` also gets the map's own context.
fn watching<I, F, R, J>(
    pool: &ThreadPool,
    input: I,
    f: F,
    ordered: bool,
) -> Mapping<'_, I, impl Fn(I::Item) -> R + Send + Sync + 'static, R, J>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(&Context, I::Item) -> R + Send + Sync + 'static,
    R: Send + 'static,
    J: Judge<R, Clean: Send + 'static>,
{
    let ctx = pool.context().child();
    let seen = ctx.clone();
    Mapping::under(ctx, pool, input, move |item| f(&seen, item), ordered)
}

/// `try_map`'s loop: collects the values in input order, or stops at the
/// first failure seen; each item's failure cancels the map's context.
fn try_collect<I, F, R, E>(
    map: Mapping<'_, I, F, Result<R, E>, Fallible>,
) -> Result<Vec<R>, TryMapError<E>>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> Result<R, E> + Send + Sync + 'static,
    R: Send + 'static,
    E: Send + 'static,
{
    let pool = map.pool;
    // Dropping the map on a stop cancels its chunks still queued or
    // running.
    map.gather(Tried::new(pool))
}
