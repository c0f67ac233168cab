//! Synchronous worker pools for Rust: OS threads, no async runtime, and the
//! production behaviour that a hand-rolled pool leaves out — cancellation,
//! deadlines, backpressure, panic supervision, graceful shutdown and a
//! principled pool size.
//!
//! brigade is for programs that block and compute: command-line tools,
//! batch jobs, servers with blocking handlers. It is not an async runtime
//! (use tokio for many thousands of concurrent sockets) and not a
//! distributed queue (use a broker such as Kafka, NATS or Redis streams, or
//! a workflow engine, when work must outlive the process or span machines).
//!
//! # Quick start
//!
//! Build a pool, submit jobs, join their handles:
//!
//! ```
//! use brigade::ThreadPool;
//!
//! let pool = ThreadPool::builder().workers(4).build()?;
//! let handles: Vec<_> = (1..=4u64)
//!     .map(|n| pool.submit(move |_ctx| (1..=n).product::<u64>()))
//!     .collect::<Result<_, _>>()
//!     .map_err(|e| e.to_string())?;
//! let factorials: Vec<u64> = handles.into_iter().map(|h| h.join()).collect::<Result<_, _>>()?;
//! assert_eq!(factorials, [1, 2, 6, 24]);
//! pool.join(); // drain and wait for the workers
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every job that returns a value receives a [`Context`]; fire-and-forget
//! closures go through [`ThreadPool::execute`]. A full queue makes
//! `submit` wait (backpressure); [`ThreadPool::try_submit`] never waits and
//! hands the job back instead.
//!
//! # Cancellation and deadlines
//!
//! A [`Context`] is Go's `context.Context` for threads: a tree in which
//! cancelling a node cancels everything below it, and a deadline flows down
//! to every descendant. Give a pool a parent context and every job's
//! context descends from it; give the pool a `job_timeout` and each job's
//! context also carries its own deadline.
//!
//! ```
//! use std::time::Duration;
//! use brigade::{Cancelled, Context, JobError, ThreadPool};
//!
//! let request = Context::new().with_timeout(Duration::from_secs(30));
//! let pool = ThreadPool::builder()
//!     .workers(2)
//!     .context(&request)
//!     .job_timeout(Duration::from_millis(20))
//!     .build()?;
//!
//! let job = pool.submit(|ctx| -> Result<u32, Cancelled> {
//!     loop {
//!         ctx.check()?; // returns Err(DeadlineExceeded) after 20 ms
//!         std::thread::yield_now();
//!     }
//! }).map_err(|e| e.to_string())?;
//! assert_eq!(job.join(), Err(JobError::TimedOut));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Blocking waits watch the context too: [`Context::sleep`] wakes early on
//! cancellation, and [`Context::done`] is a channel to put in your own
//! `select!`. Timeouts are cooperative: Rust cannot stop a thread, so a job
//! that never looks at its context runs to the end (its handle still
//! reports [`JobError::TimedOut`] and its value is dropped).
//!
//! # Panics and supervision
//!
//! A panicking job does not take the pool down. The panic is caught,
//! reported on the job's handle with its message, logged with
//! `log::warn!` and counted in [`Stats::panicked`]; the worker that ran it
//! retires and a fresh thread replaces it, so the pool keeps its size.
//! [`PanicPolicy::CancelPool`] cancels the whole pool instead (fail-fast).
//!
//! ```
//! use brigade::{JobError, ThreadPool};
//!
//! let pool = ThreadPool::builder().workers(1).build()?;
//! let bad = pool.submit(|_| -> u8 { panic!("corrupt input") }).map_err(|e| e.to_string())?;
//! assert_eq!(bad.join(), Err(JobError::Panicked("corrupt input".into())));
//! let good = pool.submit(|_| 7).map_err(|e| e.to_string())?;
//! assert_eq!(good.join(), Ok(7)); // the replacement worker ran it
//! assert_eq!(pool.stats().panicked, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Shutdown
//!
//! Three flavours, as in the Go guide this library grew from:
//!
//! | call | intake | queued jobs | running jobs |
//! |---|---|---|---|
//! | [`ThreadPool::join`] (and `Drop`) | closed | run | finish |
//! | [`ThreadPool::shutdown_now`] | closed | discarded, reported | context cancelled |
//! | [`ThreadPool::shutdown_timeout`] | closed | run until the deadline, then discarded | cancelled at the deadline |
//!
//! The two reporting calls return a [`ShutdownReport`] in which
//! `ran + never_ran == submitted`: no accepted job goes unaccounted for.
//!
//! ```
//! use std::time::Duration;
//! use brigade::ThreadPool;
//!
//! let pool = ThreadPool::builder().workers(2).build()?;
//! for _ in 0..100 {
//!     pool.execute(|| { /* work */ }).map_err(|e| e.to_string())?;
//! }
//! let report = pool.shutdown_timeout(Duration::from_secs(10));
//! assert_eq!(report.ran + report.never_ran, report.submitted);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Sizing
//!
//! CPU-bound work wants one worker per CPU the process may use
//! ([`sizing::cpu_bound`], which honours container quotas; the
//! `BRIGADE_WORKERS` environment variable overrides it as `GOMAXPROCS`
//! does for Go). Waiting-bound work wants as many workers as jobs in
//! flight, which Little's Law gives as throughput × latency
//! ([`sizing::io_bound`]).
//!
//! ```
//! use std::time::Duration;
//! use brigade::{Sizing, ThreadPool, sizing};
//!
//! // 500 requests/s at 200 ms each: 100 in flight.
//! assert_eq!(sizing::io_bound(500.0, Duration::from_millis(200)), Ok(100));
//! let pool = ThreadPool::builder()
//!     .sizing(Sizing::Io { throughput_per_sec: 50.0, latency: Duration::from_millis(100) })
//!     .build()?;
//! assert_eq!(pool.stats().workers, 5);
//! # Ok::<(), brigade::BuildError>(())
//! ```
//!
//! # Coming from Go
//!
//! | Go | brigade |
//! |---|---|
//! | `runtime.GOMAXPROCS(0)` / `NumCPU` | [`sizing::cpu_bound`], [`Sizing::CpuBound`], `BRIGADE_WORKERS` |
//! | N = throughput × latency | [`sizing::io_bound`] |
//! | `context.WithCancel/WithTimeout/WithDeadline` | [`Context::child`], [`Context::with_timeout`], [`Context::with_deadline`] |
//! | `select { case <-ctx.Done(): … }` | `select! { recv(ctx.done()) -> _ => … }`, `ctx.check()?` |
//! | `ctx.Err()` | [`Context::reason`], [`Context::check`] |
//! | jobs channel + N goroutines + `WaitGroup` | [`ThreadPool`] with [`ThreadPool::join`] |
//! | per-job `context.WithTimeout` | [`Builder::job_timeout`] |
//! | `recover()` in the worker + restart | built in: `catch_unwind`, respawn, [`PanicPolicy`] |
//! | drain / cancel / stop-accept-then-drain | [`ThreadPool::join`], [`ThreadPool::shutdown_now`], [`ThreadPool::shutdown_timeout`] |
//! | expvar counters | [`ThreadPool::stats`] |

#![deny(missing_docs)]
#![deny(unsafe_code)] // one audited exception: pool/scope.rs

mod context;
mod crew;
mod error;
mod ordered;
mod pipeline;
mod pool;
pub mod sizing;
mod stats;
mod sync;
mod unwind;
mod worker_pool;

pub use context::Context;
pub use crew::PanicPolicy;
pub use error::{BuildError, Cancelled, JobError, SizingError, SubmitError, TrySubmitError};
pub use pipeline::{Pipeline, PipelineError, PipelineOutput, StageError, StageFailure, StageStats};
pub use pool::{
    Builder, DEFAULT_QUEUE_CAPACITY, JobHandle, MAX_QUEUE_CAPACITY, Map, Scope, ScopedJoinHandle,
    ShutdownReport, ThreadPool, TryMapError,
};
pub use sizing::Sizing;
pub use stats::Stats;
pub use worker_pool::{Leftovers, Output, WorkerPool, WorkerPoolBuilder};
