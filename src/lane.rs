//! [`Lane`]: a job's priority lane, and [`LaneLoad`], what one holds.
//!
//! Their own module, below the crew, the errors and the stats that all
//! name them; the dispatcher that orders lanes is `crew/dispatch.rs`.

/// A priority lane for a job.
///
/// Workers take `High` jobs before `Normal` ones and `Normal` before
/// `Background`, except that a job that has waited longer than the pool's
/// [starvation bound](crate::ThreadPoolBuilder::starvation_bound) goes
/// before newer work of any lane. A lane can be capped to a number of
/// workers with [`lane_limit`](crate::ThreadPoolBuilder::lane_limit).
/// Jobs submitted without a lane are `Normal`.
///
/// # Examples
///
/// ```
/// use brigade::{Lane, ThreadPool};
///
/// let pool = ThreadPool::builder().workers(2).lane_limit(Lane::Background, 1).build()?;
/// let report = pool.lane(Lane::Background).submit(|_ctx| "compacted").map_err(|e| e.kind())?;
/// let urgent = pool.lane(Lane::High).submit(|_ctx| "served").map_err(|e| e.kind())?;
/// assert_eq!(urgent.join()?, "served");
/// assert_eq!(report.join()?, "compacted");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    /// Latency-sensitive work: taken first.
    High,
    /// The default lane.
    #[default]
    Normal,
    /// Work that may wait: taken when nothing else is ready (or once it
    /// has waited past the starvation bound).
    Background,
}

impl Lane {
    /// Every lane, highest first.
    pub const ALL: [Lane; 3] = [Lane::High, Lane::Normal, Lane::Background];

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// Jobs queued and running in one lane, for [`Stats`](crate::Stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LaneLoad {
    /// Jobs of the lane waiting (including keyed jobs waiting behind an
    /// earlier job of their key).
    pub queued: usize,
    /// Jobs of the lane running now.
    pub running: usize,
}
