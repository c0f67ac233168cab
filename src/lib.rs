//! brigade: synchronous worker pools for Rust.
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod context;
mod crew;
mod error;
mod pool;
pub mod sizing;
mod stats;
mod sync;
mod unwind;

pub use context::Context;
pub use crew::PanicPolicy;
pub use error::{BuildError, Cancelled, JobError, SizingError, SubmitError, TrySubmitError};
pub use pool::{
    Builder, DEFAULT_QUEUE_CAPACITY, JobHandle, MAX_QUEUE_CAPACITY, ShutdownReport, ThreadPool,
};
pub use sizing::Sizing;
pub use stats::Stats;
