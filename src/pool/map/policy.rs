//! How big a map's chunks are and how far it reads ahead: arithmetic only,
//! no threads, so every rule is unit-tested here.
//!
//! The user-facing account is on [`Map`](super::Map) ("Chunks and the
//! window"); this file is the one place that implements it.

use std::time::Duration;

use super::DEFAULT_READ_AHEAD;

/// A chunk that runs faster than this is too small: its hand-off is a
/// noticeable share of its work, so automatic chunks double in size.
pub(super) const GROW_BELOW: Duration = Duration::from_micros(100);

/// The most items automatic chunking puts in one chunk.
pub(super) const MAX_AUTO_CHUNK: usize = 65_536;

/// The most items in a first automatic chunk, however long the input.
const MAX_FIRST_CHUNK: usize = 1_024;

/// The chunk size and window of a started map.
///
/// # Invariants
///
/// `window >= chunk` once built, except after
/// [`set_chunk`](Self::set_chunk) raises the chunk past a window that
/// [`set_window`](Self::set_window) or the defaults chose (the window is
/// then one chunk, as the refill always takes at least one). The chunk
/// never shrinks by growth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Policy {
    chunk: usize,
    window: usize,
    /// Whether the chunk size, and then the window, are ours to grow (the
    /// caller set neither `chunk_size` nor, for the window, `window`).
    grow_chunk: bool,
    grow_window: bool,
    /// The pool's workers when the map started, at least 1.
    workers: usize,
}

impl Policy {
    /// The policy for a map over an input with `size_hint`, on `workers`
    /// workers, with the caller's `chunk_size` and `window`, if set.
    pub(super) fn new(
        workers: usize,
        size_hint: (usize, Option<usize>),
        chunk_size: Option<usize>,
        window: Option<usize>,
    ) -> Self {
        let workers = workers.max(1);
        let chunk = chunk_size.unwrap_or_else(|| first_chunk(size_hint, workers));
        Self {
            chunk,
            window: first_window(chunk, workers, chunk_size, window),
            // An input of unknown length stays at one item per job: its
            // items may be anything from trivial to slow.
            grow_chunk: chunk_size.is_none() && chunk > 1,
            grow_window: window.is_none(),
            workers,
        }
    }

    /// Items per chunk.
    pub(super) fn chunk(&self) -> usize {
        self.chunk
    }

    /// The most items taken and not yet settled (at least one chunk is
    /// always allowed out).
    pub(super) fn window(&self) -> usize {
        self.window
    }

    /// The caller fixed the chunk size after the map started: the chunk no
    /// longer grows.
    pub(super) fn set_chunk(&mut self, items: usize) {
        self.chunk = items;
        self.grow_chunk = false;
    }

    /// The caller fixed the window after the map started: at least one
    /// chunk, and it no longer grows.
    pub(super) fn set_window(&mut self, items: usize) {
        self.window = items.max(self.chunk);
        self.grow_window = false;
    }

    /// Whether a chunk whose items took `took` asks for larger chunks: the
    /// chunk size is ours, and the chunk ran, in under [`GROW_BELOW`] (a
    /// discarded chunk reports zero).
    pub(super) fn wants_growth(&self, took: Duration) -> bool {
        self.grow_chunk && took < GROW_BELOW && !took.is_zero()
    }

    /// A chunk ran in under [`GROW_BELOW`]: doubles the chunk size, up to
    /// [`MAX_AUTO_CHUNK`], no further than leaves four chunks per worker of
    /// the `remaining` input (so the last chunks still spread over every
    /// worker), and no further than lets two chunks per worker fit in the
    /// window. An automatic window grows with the chunks, up to
    /// [`DEFAULT_READ_AHEAD`] items.
    ///
    /// Returns whether the chunk grew.
    pub(super) fn grow(&mut self, remaining: usize) -> bool {
        let balanced = (remaining / (self.workers * 4)).max(self.chunk);
        let cap = if self.grow_window {
            DEFAULT_READ_AHEAD
        } else {
            self.window
        };
        let fits = (cap / (self.workers * 2)).max(1);
        let chunk = (self.chunk * 2).min(MAX_AUTO_CHUNK).min(balanced).min(fits);
        if self.grow_window {
            let wanted = (chunk * self.workers * 4).min(DEFAULT_READ_AHEAD);
            self.window = self.window.max(wanted);
        }
        let grew = chunk > self.chunk;
        if grew {
            self.chunk = chunk;
        }
        grew
    }
}

/// The first automatic chunk: about four chunks per worker of the input's
/// length, at most [`MAX_FIRST_CHUNK`] and at most what fits four chunks
/// per worker in [`DEFAULT_READ_AHEAD`]; one item if the length is
/// unknown or zero.
fn first_chunk(size_hint: (usize, Option<usize>), workers: usize) -> usize {
    // An unknown upper bound is an unknown length: a `RangeFrom`'s lower
    // bound is `usize::MAX`, not a length.
    match size_hint {
        (_, Some(len)) if len > 0 => {
            let fits = (DEFAULT_READ_AHEAD / (workers * 4)).max(1);
            (len / (workers * 4)).clamp(1, fits.min(MAX_FIRST_CHUNK))
        }
        _ => 1,
    }
}

/// The first window for chunks of `chunk` items: the caller's `window`
/// (at least one chunk); with only the caller's `chunk_size`, four chunks
/// per worker; otherwise four chunks per worker, at most
/// [`DEFAULT_READ_AHEAD`] items (and at least one chunk).
fn first_window(
    chunk: usize,
    workers: usize,
    chunk_size: Option<usize>,
    window: Option<usize>,
) -> usize {
    match (window, chunk_size) {
        (Some(window), _) => window.max(chunk),
        (None, Some(chunk)) => chunk.saturating_mul(workers * 4),
        (None, None) => (chunk * workers * 4).min(DEFAULT_READ_AHEAD).max(chunk),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A policy with neither `chunk_size` nor `window` set.
    fn auto(workers: usize, size_hint: (usize, Option<usize>)) -> Policy {
        Policy::new(workers, size_hint, None, None)
    }

    /// Grows `policy` as if every chunk ran fast, with `remaining` items
    /// left, until it stops; returns the rounds that grew it.
    fn grow_fully(policy: &mut Policy, remaining: usize) -> usize {
        let mut rounds = 0;
        while policy.grow(remaining) {
            rounds += 1;
            assert!(rounds < 64, "growth never stops: {policy:?}");
        }
        rounds
    }

    const FAST: Duration = Duration::from_micros(10);

    #[test]
    fn unknown_length_goes_one_item_per_chunk() {
        // A size hint with no upper bound is an unknown length.
        let policy = auto(2, (0, None));
        assert_eq!(policy.chunk(), 1);
        assert!(!policy.wants_growth(FAST));
    }

    #[test]
    fn endless_range_is_unknown_length() {
        // `0u64..` says `(usize::MAX, None)`: its lower bound is no length.
        assert_eq!((0u64..).size_hint(), (usize::MAX, None));
        let policy = auto(2, (0u64..).size_hint());
        assert_eq!(policy.chunk(), 1);
        assert!(!policy.wants_growth(FAST));
    }

    #[test]
    fn empty_and_tiny_inputs_go_one_item_per_chunk() {
        // Fewer than four items per worker cannot make a chunk of two.
        assert_eq!(auto(2, (0, Some(0))).chunk(), 1);
        assert_eq!(auto(2, (7, Some(7))).chunk(), 1);
        assert!(!auto(2, (7, Some(7))).wants_growth(FAST));
        assert_eq!(auto(2, (16, Some(16))).chunk(), 2);
    }

    #[test]
    fn first_chunk_is_four_per_worker_of_the_length() {
        // The upper bound is the length that counts.
        assert_eq!(auto(2, (0, Some(800))).chunk(), 100);
        assert_eq!(auto(4, (800, Some(800))).chunk(), 50);
    }

    #[test]
    fn first_chunk_is_at_most_1024() {
        assert_eq!(auto(1, (1 << 30, Some(1 << 30))).chunk(), MAX_FIRST_CHUNK);
        assert_eq!(auto(2, (1 << 30, Some(1 << 30))).chunk(), MAX_FIRST_CHUNK);
    }

    #[test]
    fn first_chunk_fits_four_per_worker_in_the_read_ahead() {
        // 16 workers: 8,192 / 64 = 128 items a chunk.
        let policy = auto(16, (1 << 30, Some(1 << 30)));
        assert_eq!(policy.chunk(), DEFAULT_READ_AHEAD / 64);
        assert_eq!(policy.window(), DEFAULT_READ_AHEAD);
        // More workers than the read-ahead has items still makes a chunk.
        assert_eq!(auto(10_000, (1 << 30, Some(1 << 30))).chunk(), 1);
    }

    #[test]
    fn zero_workers_count_as_one() {
        assert_eq!(auto(0, (800, Some(800))), auto(1, (800, Some(800))));
    }

    #[test]
    fn default_window_is_four_chunks_per_worker_at_most_the_read_ahead() {
        assert_eq!(auto(2, (800, Some(800))).window(), 800);
        assert_eq!(
            auto(2, (1 << 30, Some(1 << 30))).window(),
            DEFAULT_READ_AHEAD
        );
        assert_eq!(auto(2, (0, None)).window(), 8);
    }

    #[test]
    fn user_window_is_at_least_one_chunk() {
        let policy = Policy::new(2, (0, None), Some(100), Some(10));
        assert_eq!((policy.chunk(), policy.window()), (100, 100));
        let policy = Policy::new(2, (0, None), Some(100), Some(1_000_000));
        assert_eq!(policy.window(), 1_000_000);
        // With an automatic chunk too.
        let policy = Policy::new(2, (800, Some(800)), None, Some(3));
        assert_eq!((policy.chunk(), policy.window()), (100, 100));
    }

    #[test]
    fn user_chunk_alone_makes_a_window_of_four_chunks_per_worker() {
        let policy = Policy::new(3, (1 << 30, Some(1 << 30)), Some(5_000), None);
        assert_eq!((policy.chunk(), policy.window()), (5_000, 60_000));
        // Past the read-ahead: the caller asked for big chunks.
        assert!(policy.window() > DEFAULT_READ_AHEAD);
        let policy = Policy::new(2, (0, None), Some(usize::MAX), None);
        assert_eq!(policy.window(), usize::MAX);
    }

    #[test]
    fn user_chunk_never_grows() {
        let policy = Policy::new(2, (1 << 30, Some(1 << 30)), Some(4), None);
        assert!(!policy.wants_growth(FAST));
        assert_eq!((policy.chunk(), policy.window()), (4, 32));
    }

    #[test]
    fn only_fast_chunks_that_ran_ask_for_growth() {
        let policy = auto(2, (1 << 20, Some(1 << 20)));
        assert!(policy.wants_growth(FAST));
        assert!(!policy.wants_growth(GROW_BELOW));
        assert!(!policy.wants_growth(Duration::from_millis(5)));
        // A chunk discarded unrun reports zero.
        assert!(!policy.wants_growth(Duration::ZERO));
    }

    #[test]
    fn growth_doubles() {
        let mut policy = auto(2, (800, Some(800)));
        assert!(policy.grow(1 << 20));
        assert_eq!(policy.chunk(), 200);
        // The automatic window follows: four chunks per worker.
        assert_eq!(policy.window(), 1_600);
    }

    #[test]
    fn growth_stops_at_two_chunks_per_worker_of_the_read_ahead() {
        // 2 workers: 8,192 / 4 = 2,048 items a chunk, however fast.
        let mut policy = auto(2, (1 << 30, Some(1 << 30)));
        assert_eq!(grow_fully(&mut policy, 1 << 30), 1);
        assert_eq!(policy.chunk(), DEFAULT_READ_AHEAD / 4);
        assert_eq!(policy.window(), DEFAULT_READ_AHEAD);
    }

    #[test]
    fn growth_stops_at_max_auto_chunk() {
        // A user window large enough that only the cap is left.
        let mut policy = Policy::new(1, (1 << 30, Some(1 << 30)), None, Some(1 << 30));
        assert_eq!(policy.chunk(), MAX_FIRST_CHUNK);
        assert_eq!(grow_fully(&mut policy, 1 << 30), 6);
        assert_eq!(policy.chunk(), MAX_AUTO_CHUNK);
        assert_eq!(policy.window(), 1 << 30);
    }

    #[test]
    fn growth_leaves_four_chunks_per_worker_of_the_rest() {
        let mut policy = Policy::new(2, (800, Some(800)), None, Some(1 << 30));
        // 2,000 left on 2 workers: 250-item chunks still make eight.
        assert_eq!(grow_fully(&mut policy, 2_000), 2);
        assert_eq!(policy.chunk(), 250);
        assert!(policy.grow(2_400));
        assert_eq!(policy.chunk(), 300);
        // Near the end of the input the chunk stays, never shrinks.
        assert!(!policy.grow(0));
        assert_eq!(policy.chunk(), 300);
    }

    #[test]
    fn user_window_caps_growth() {
        // Two chunks per worker must fit in the window: 4,096 / 4 = 1,024.
        let mut policy = Policy::new(2, (1 << 30, Some(1 << 30)), None, Some(4_096));
        assert_eq!(grow_fully(&mut policy, 1 << 30), 0);
        assert_eq!((policy.chunk(), policy.window()), (1_024, 4_096));
        let mut policy = Policy::new(2, (1 << 30, Some(1 << 30)), None, Some(32_768));
        assert_eq!(grow_fully(&mut policy, 1 << 30), 3);
        assert_eq!((policy.chunk(), policy.window()), (8_192, 32_768));
    }

    #[test]
    fn set_window_after_start_caps_growth_and_is_at_least_a_chunk() {
        let mut policy = auto(2, (1 << 30, Some(1 << 30)));
        policy.set_window(10);
        assert_eq!(policy.window(), 1_024);
        assert_eq!(grow_fully(&mut policy, 1 << 30), 0);
        assert_eq!(policy.window(), 1_024);
    }

    #[test]
    fn set_chunk_after_start_stops_growth() {
        let mut policy = auto(2, (1 << 30, Some(1 << 30)));
        policy.set_chunk(3);
        assert_eq!(policy.chunk(), 3);
        assert!(!policy.wants_growth(FAST));
        // The window stays where it was.
        assert_eq!(policy.window(), DEFAULT_READ_AHEAD);
    }
}
