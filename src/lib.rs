//! Synchronous worker pools for Rust: OS threads, no async runtime, and the
//! production behaviour that a hand-rolled pool leaves out — cancellation,
//! deadlines, backpressure, panic supervision, graceful shutdown and a
//! principled pool size.
//!
//! brigade is for programs that block and compute: command-line tools,
//! batch jobs, servers with blocking handlers, and the CPU-bound part of
//! async programs ([Async programs](#async-programs)). It is not an async
//! runtime (use tokio for many thousands of concurrent sockets) and not a
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
//!     .map_err(|e| e.kind())?;
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
//! }).map_err(|e| e.kind())?;
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
//! # Worker pools with a results channel
//!
//! When every job is the same kind of work, a [`WorkerPool`] takes typed
//! jobs and hands back typed results on a bounded channel: the Go guide's
//! "pool struct with Submit, Close, Stop and Results", as a library. Every
//! job that runs yields one [`Output`] — its submission index and
//! `Result<R, JobError>` — so a panic or timeout reaches the consumer.
//!
//! ```
//! use brigade::WorkerPool;
//!
//! let pool = WorkerPool::builder().workers(4).build(|_ctx, word: String| word.len())?;
//! for word in ["pool", "of", "workers"] {
//!     pool.submit(word.to_owned())?;
//! }
//! pool.close(); // the results channel disconnects after the last result
//! let total: usize = pool.results().iter().map(|out| out.result.unwrap_or(0)).sum();
//! assert_eq!(total, 13);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`WorkerPool::stop`] cancels instead: no worker then waits for a slow
//! consumer, and [`WorkerPool::join`] hands back every job that never ran.
//!
//! # Ordered results
//!
//! Jobs finish in any order. [`ThreadPool::map`] yields results in input
//! order and [`WorkerPoolBuilder::ordered`] delivers them in submission
//! order, both through a reorder **window**: only so many results may wait
//! for an earlier one, and whoever would exceed it waits, so memory stays
//! bounded even when the first item is the slowest. `map` also batches
//! consecutive items into one job ([`Map::chunk_size`]), because one
//! hand-off per trivial item costs more than the item; automatic chunks
//! grow while they run in under 100 µs, and [`Map::collect_vec`] gathers
//! the results a chunk at a time.
//!
//! ```
//! use brigade::ThreadPool;
//!
//! let pool = ThreadPool::builder().workers(4).build()?;
//! let lengths: Vec<usize> = pool
//!     .map(["a", "bb", "ccc", "dddd"], |s: &str| s.len())
//!     .window(2) // at most 2 items taken and not yet yielded
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(lengths, [1, 2, 3, 4]);
//!
//! // try_map fails fast: the first error cancels the rest.
//! let parsed = pool.try_map(["1", "2", "three"], |s: &str| s.parse::<u32>());
//! assert!(parsed.is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Scoped jobs
//!
//! [`ThreadPool::scope`] runs jobs that borrow from the caller's stack and
//! joins them all before it returns, like `std::thread::scope` but on the
//! pool's threads. The waiting caller runs queued jobs of its own scope, so
//! scopes nest without deadlock; a panic in a job is resumed on the caller
//! after every job has finished.
//!
//! ```
//! use brigade::ThreadPool;
//!
//! let pool = ThreadPool::builder().workers(2).build()?;
//! let mut totals = [0u64; 4];
//! let data: Vec<u64> = (1..=400).collect();
//! pool.scope(|s| {
//!     for (part, total) in data.chunks(100).zip(totals.iter_mut()) {
//!         s.spawn(move |_ctx| *total = part.iter().sum());
//!     }
//! });
//! assert_eq!(totals.iter().sum::<u64>(), 80_200);
//! # Ok::<(), brigade::BuildError>(())
//! ```
//!
//! # Pipelines
//!
//! A [`Pipeline`] chains stages, each with its own workers and bounded
//! queue: each stage closes its output when its input is exhausted, any
//! cancellation stops every stage, and the first error is fail-fast unless
//! you [`collect_errors`](Pipeline::collect_errors).
//!
//! ```
//! use brigade::{Context, Pipeline, PipelineError, StageError};
//!
//! let ctx = Context::new();
//! let pipeline = Pipeline::new(&ctx)
//!     .stage("fetch", 8, |_ctx, id: u32| Ok(format!("<p>{id}</p>")))
//!     .stage("parse", 2, |_ctx, page: String| {
//!         page.trim_start_matches("<p>").trim_end_matches("</p>").parse::<u32>().map_err(|e| e.to_string())
//!     })
//!     .stage("save", 1, |_ctx, id: u32| if id == 7 { Err("disk full".to_owned()) } else { Ok(id) })
//!     .build()?; // every setting checked, every stage's threads started
//! match pipeline.run(0..100) {
//!     Err(PipelineError::Stage(failure)) => {
//!         assert_eq!((failure.stage.as_str(), failure.index), ("save", 7));
//!         assert_eq!(failure.error, StageError::Failed("disk full".to_owned()));
//!     }
//!     other => panic!("expected the save stage to fail, got {other:?}"),
//! }
//! # Ok::<(), brigade::PipelineBuildError>(())
//! ```
//!
//! # Fail-fast groups
//!
//! An [`ErrGroup`] runs a batch of fallible tasks and returns the first
//! failure: the Go guide's `errgroup.WithContext` with `SetLimit`. The first
//! error (or panic) cancels the group's context, so the other tasks can
//! stop early; [`ErrGroup::limit`] bounds how many run at once. Tasks run
//! on the group's own workers — the runtime every pool uses — which start
//! as tasks need them (never more than the limit), are reused, and leave
//! after [`GROUP_KEEP_ALIVE`] idle.
//!
//! ```
//! use brigade::{Context, ErrGroup, GroupError};
//!
//! let group = ErrGroup::<String>::new(&Context::new()).limit(8)?;
//! for n in 1..=20u32 {
//!     let spawned = group.spawn(move |ctx| {
//!         ctx.check().map_err(|reason| reason.to_string())?;
//!         if n % 7 == 0 { Err(format!("{n} is unlucky")) } else { Ok(()) }
//!     });
//!     if spawned.is_err() {
//!         break; // cancelled by a failure: stop feeding the group
//!     }
//! }
//! assert!(matches!(group.wait(), Err(GroupError::Failed(msg)) if msg.ends_with("is unlucky")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Differences from Go's `errgroup`:
//!
//! * a `spawn` waiting for a free slot wakes, and hands the task back, when
//!   the group is cancelled;
//! * a panicking task is reported as [`GroupError::Panicked`] instead of
//!   crashing the process;
//! * tasks reuse worker threads instead of starting one per task, and
//!   [`ErrGroup::scope`] lets them borrow from the caller's stack.
//!
//! Two more modes cover what Go's errgroup leaves to hand-written code:
//! [`ErrGroup::collect_all`] runs every task whatever the others do and
//! returns every failure, each with its task's index, as a
//! [`GroupErrors`] (validate a whole batch, report every bad item);
//! [`ErrGroup::first_success`] takes tasks that return a value, returns
//! the first `Ok` and cancels the rest (a hedged request), or returns
//! every failure if none succeeded.
//!
//! # Bounded concurrency
//!
//! A [`Semaphore`] bounds how much of something is in use at once — jobs,
//! connections, gigabytes — with weighted, strictly first-come-first-served
//! permits that are returned when the [`Permit`] is dropped. Waits can be
//! cancelled with a [`Context`] or bounded with a timeout.
//!
//! ```
//! use std::time::Duration;
//! use brigade::{AcquireError, Context, Semaphore};
//!
//! let connections = Semaphore::new(2)?;
//! let first = connections.acquire(1)?;
//! let second = connections.acquire(1)?;
//! // Both are taken: a bounded wait gives up, a cancelled one too.
//! assert_eq!(connections.acquire_timeout(1, Duration::from_millis(10)).err(), Some(AcquireError::TimedOut));
//! let ctx = Context::new();
//! ctx.cancel();
//! assert!(matches!(connections.acquire_ctx(&ctx, 1), Err(AcquireError::Cancelled(_))));
//! drop(first); // returns the permit
//! assert_eq!(connections.available(), 1);
//! # drop(second);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Differences from Go's `semaphore.Weighted`:
//!
//! * asking for more than the total fails at once
//!   ([`AcquireError::TooMany`]) instead of blocking until cancelled;
//! * a cancellable acquire on a context that is already done fails even if
//!   permits are free;
//! * permits are returned by dropping them, so releasing more than was
//!   acquired cannot happen; [`Semaphore::close`] wakes every waiter.
//!
//! # Rate limiting
//!
//! A [`RateLimiter`] is a token bucket: it holds up to `burst` tokens,
//! refills at `rate` per second and starts full. Clones share one bucket,
//! so give every worker a clone and call [`RateLimiter::wait`] before each
//! job: the crew together keeps to the rate. The wait sleeps with
//! [`Context::sleep`], so cancellation cuts it short and gives the tokens
//! back, and a wait that could only end after the context's deadline fails
//! at once without sleeping.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use brigade::{Context, RateLimiter, ThreadPool};
//!
//! let limiter = RateLimiter::new(200.0, 1)?; // 200 calls per second, no bursts
//! let pool = ThreadPool::builder().workers(4).build()?;
//! let started = Instant::now();
//! let calls: Vec<_> = (0..20)
//!     .map(|i| {
//!         let limiter = limiter.clone();
//!         pool.submit(move |ctx: &Context| -> Result<u32, brigade::RateError> {
//!             limiter.wait(ctx, 1)?; // before calling the rate-limited API
//!             Ok(i)
//!         })
//!     })
//!     .collect::<Result<_, _>>()
//!     .map_err(|e| e.kind())?;
//! for call in calls {
//!     call.join()??;
//! }
//! // 1 token at the start, then 19 more at 5 ms each: at least 95 ms.
//! assert!(started.elapsed() >= Duration::from_millis(90));
//!
//! // The arithmetic has an explicit clock, for deterministic tests.
//! let t0 = Instant::now();
//! let bucket = RateLimiter::new(10.0, 3)?;
//! assert!(bucket.try_acquire_at(t0, 3));
//! assert!(!bucket.try_acquire_at(t0, 1));
//! assert!(bucket.try_acquire_at(t0 + Duration::from_millis(100), 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A pool can do the waiting itself: built with
//! [`ThreadPoolBuilder::rate_limit`], its workers take a token before they *start*
//! each job, and the wait wakes when the pool is cancelled.
//!
//! ```
//! use brigade::{RateLimiter, ThreadPool};
//!
//! let pool = ThreadPool::builder().workers(4).rate_limit(RateLimiter::new(500.0, 5)?).build()?;
//! for _ in 0..20 {
//!     pool.execute(|| { /* call the rate-limited API */ }).map_err(|e| e.kind())?;
//! }
//! pool.join();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Differences from Go's `rate.Limiter`: construction rejects a zero,
//! negative or non-finite rate and a zero burst ([`RateLimiter::unlimited`]
//! stands for `rate.Inf`); asking for more than the burst is an error, not
//! a reservation that is not OK; [`Reservation::cancel`] consumes the
//! reservation, and dropping one does not cancel it (as in Go); rate and
//! burst are fixed, so there is no `SetLimit`.
//!
//! # Retries
//!
//! [`Retry`] runs an operation until it succeeds, up to a number of
//! attempts, pausing between them for a [`Backoff`]: exponential, capped,
//! and with full jitter unless switched off. A retry-if predicate stops at
//! permanent errors. The context bounds the whole run: every pause is
//! [`Context::sleep`], and a pause that would end past the deadline is not
//! started at all.
//!
//! ```
//! use std::time::Duration;
//! use brigade::{Backoff, Context, Retry, RetryError};
//!
//! let retry = Retry::builder()
//!     .max_attempts(5)
//!     .backoff(Backoff::new(Duration::from_millis(1), Duration::from_millis(20)))
//!     .retry_if(|status: &u16| *status >= 500) // retry server errors only
//!     .build()?;
//! let ctx = Context::new().with_timeout(Duration::from_secs(10));
//!
//! let flaky = retry.run(&ctx, |_ctx, attempt| if attempt < 3 { Err(503) } else { Ok("body") });
//! assert_eq!(flaky.ok(), Some("body"));
//!
//! let missing: Result<&str, _> = retry.run(&ctx, |_ctx, _attempt| Err(404));
//! match missing {
//!     Err(RetryError::NotRetryable { attempts: 1, error: 404 }) => {}
//!     other => panic!("a 404 is not retried: {other:?}"),
//! }
//! # Ok::<(), brigade::RetrySettingsError>(())
//! ```
//!
//! Differences from the Go guide's retry loop: the pause wakes on
//! cancellation instead of being a naked `time.Sleep`; jitter and a cap are
//! built in; a predicate marks permanent errors; there is no pause after
//! the final failure; and the error reports how many attempts ran along
//! with the last error.
//!
//! # Later and again: delayed and periodic jobs
//!
//! [`ThreadPool::schedule_after`] and [`ThreadPool::schedule_at`] run a job
//! once its due time comes, returning the same [`JobHandle`] as `submit`:
//! cancel it before it is due and it is gone at once. [`ThreadPool::schedule`]
//! runs a closure again and again at a fixed rate or with a fixed delay
//! ([`Every`]), returning a [`Schedule`] that counts runs, misses and
//! failures. Runs of one schedule never overlap; a late run skips, shifts
//! or bursts as its [`Missed`] policy says (skip by default, not burst);
//! and a run that returns `Err` or panics is **never silent**: it is
//! logged, counted and kept in [`Schedule::last_error`], and the schedule
//! goes on, or stops with the error in its handle under [`OnError::Stop`]
//! (Java's scheduled executor silently stops a periodic task that throws).
//!
//! One timer thread per pool holds every due time; due jobs enter the pool
//! like submitted ones (its context, `job_timeout`, deadline, stats and
//! queue bound apply), and a tick that finds the queue full is counted as
//! missed rather than blocking the timer. Closing or shutting the pool
//! down runs nothing that is not yet due: waiting delayed jobs resolve as
//! cancelled and schedules end, both counted in the [`ShutdownReport`].
//!
//! ```
//! use std::time::Duration;
//! use brigade::{Every, ThreadPool};
//!
//! let pool = ThreadPool::builder().workers(2).build()?;
//! let retry = pool
//!     .schedule_after(Duration::from_millis(10), |_ctx| "retried")
//!     .map_err(|e| e.kind())?;
//! let (flushed_tx, flushed) = brigade::channel::unbounded();
//! let flush = pool
//!     .schedule(Every::rate(Duration::from_millis(5)), move |_ctx| flushed_tx.send(()))
//!     .map_err(|e| e.kind())?;
//! assert_eq!(retry.join()?, "retried");
//! flushed.recv_timeout(Duration::from_secs(10))?;
//! let report = pool.shutdown_now(); // the schedule ends with the pool
//! assert_eq!(report.schedules_stopped, 1);
//! assert!(!flush.is_active());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Through [`ThreadPool::lane`] and [`ThreadPool::keyed`], delayed jobs and
//! schedules enter the dispatcher along a lane or a key when due.
//! [`ThreadPool::submit_retrying`] runs a [`Retry`] whose pauses wait on the
//! pool's timer, so a backoff holds no worker. `examples/scheduled.rs`
//! runs a periodic stats flush beside delayed retries and a failing
//! periodic job.
//!
//! # Keys and priority lanes
//!
//! [`ThreadPool::keyed`] submits jobs that run one at a time per key, in
//! submission order, while different keys run in parallel on every worker:
//! an account's events, a file's chunks, a tenant's requests. Unlike an
//! executor that hashes each key to one thread, a key whose job is slow
//! holds back only its own later jobs; a free worker takes another key's
//! job meanwhile. Per-key state exists only while the key has jobs, and
//! [`key_queue_limit`](ThreadPoolBuilder::key_queue_limit) keeps one hot
//! key from filling the queue.
//!
//! [`ThreadPool::lane`] submits in a priority [`Lane`]: `High` jobs are
//! taken first and `Background` jobs last, but a job that waited past the
//! [starvation bound](ThreadPoolBuilder::starvation_bound) goes before
//! newer work, so none waits forever, and
//! [`lane_limit`](ThreadPoolBuilder::lane_limit) caps a lane to a number of
//! workers, so background work never takes them all. Keys and lanes
//! combine (`pool.lane(Lane::Background).key(tenant)`), and
//! [`Stats::lane`] reports each lane's queued and running jobs. A route
//! ([`Routed`]) has the pool's whole family of submits, down to
//! [`submit_async`](Routed::submit_async) (waiting for room in the
//! dispatcher, or in the job's key, as a `Pending` future) and
//! [`submit_or_run_here`](Routed::submit_or_run_here) (a keyed job runs on
//! its caller only while its key is idle). One dispatcher decides for
//! both which job a free worker takes next; a pool that routes no job
//! keeps the plain path and its cost.
//!
//! ```
//! use brigade::{Lane, ThreadPool};
//!
//! let pool = ThreadPool::builder().workers(4).lane_limit(Lane::Background, 1).build()?;
//! let backfill = pool.lane(Lane::Background).submit(|_ctx| "backfilled").map_err(|e| e.kind())?;
//! let deposit = pool.keyed("account-17").submit(|_ctx| 100).map_err(|e| e.kind())?;
//! let withdrawal = pool.keyed("account-17").submit(|_ctx| -40).map_err(|e| e.kind())?; // after the deposit
//! let urgent = pool.lane(Lane::High).submit(|_ctx| "served").map_err(|e| e.kind())?;
//! assert_eq!(deposit.join()? + withdrawal.join()?, 60);
//! assert_eq!(urgent.join()?, "served");
//! assert_eq!(backfill.join()?, "backfilled");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `examples/keyed.rs` processes interleaved account events with one slow
//! account; `examples/priorities.rs` keeps request latency low beside a
//! capped batch lane.
//!
//! # Panics and supervision
//!
//! A panicking job does not take the pool down. The panic is caught,
//! reported on the job's handle with its message, logged with
//! `log::warn!` and counted in [`Stats::panicked`]; the worker that ran it
//! retires and a fresh thread replaces it, so the pool keeps its size.
//! [`PanicPolicy::CancelPool`] cancels the whole pool instead (fail-fast).
//!
//! The error is a [`Panic`]: the message and the file, line and column
//! where the job panicked ([`Panic::location`]), which the log line names
//! too. The panic is also printed by Rust's panic hook, as every panic is,
//! on stderr (with a backtrace under `RUST_BACKTRACE=1`), before brigade
//! catches it.
//!
//! Only a panic hook can see a panic's location, so the first pool, group
//! or pipeline a process builds installs one that notes the location and
//! then calls the hook that was there before: printing is unchanged, and
//! a hook you install before building a pool keeps working. To silence or
//! redirect the printing, install your hook with [`std::panic::set_hook`]
//! *before* the first pool (a hook installed later replaces brigade's, and
//! later panics then have no location).
//!
//! ```
//! use brigade::{JobError, ThreadPool};
//!
//! let pool = ThreadPool::builder().workers(1).build()?;
//! let bad = pool.submit(|_| -> u8 { panic!("corrupt input") }).map_err(|e| e.kind())?;
//! let Err(JobError::Panicked(panic)) = bad.join() else { unreachable!() };
//! assert_eq!(panic.message(), "corrupt input");
//! assert!(panic.location().is_some_and(|at| at.line() > 0));
//! let good = pool.submit(|_| 7).map_err(|e| e.kind())?;
//! assert_eq!(good.join(), Ok(7)); // the replacement worker ran it
//! assert_eq!(pool.stats().panicked, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Writing handlers
//!
//! A handler bound to a variable before it is handed to a pool needs its
//! context parameter's type written out, `|ctx: &Context, job: u32|`:
//! without it, Rust infers one particular lifetime for `&Context` from
//! the closure alone, and `build` then fails with "implementation of `Fn`
//! is not general enough". A closure written inside the call infers the
//! right (any-lifetime) signature by itself.
//!
//! ```
//! use brigade::{Context, WorkerPool};
//!
//! let handler = |_ctx: &Context, n: u32| n + 1; // `_ctx` alone would not compile
//! let pool = WorkerPool::builder().workers(2).build(handler)?;
//! pool.submit(1)?;
//! pool.close();
//! assert_eq!(pool.results().recv()?.result, Ok(2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where the context goes, and when settings are checked
//!
//! Long-lived things take their [`Context`] once, where they are made: a
//! pool at its builder ([`ThreadPoolBuilder::context`]), an [`ErrGroup`] and a
//! [`Pipeline`] at `new`. One-off waits take it on the call, in their
//! `_ctx` form ([`Semaphore::acquire_ctx`], [`RateLimiter::wait`],
//! [`Retry::run`]). Settings are checked once, before any thread starts:
//! at `build()` for pools, at `limit()` for a group (its errors convert
//! into [`GroupError`] with `?`), at `Semaphore::new`, and at
//! [`Pipeline::build`] for a pipeline: a setter never panics and never
//! fails at run time.
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
//!     pool.execute(|| { /* work */ }).map_err(|e| e.kind())?;
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
//!     .sizing(Sizing::IoBound { throughput_per_sec: 50.0, latency: Duration::from_millis(100) })
//!     .build()?;
//! assert_eq!(pool.stats().workers, 5);
//! # Ok::<(), brigade::BuildError>(())
//! ```
//!
//! When the load is not known in advance, or changes, let the pool find its
//! size: [`Sizing::Adaptive`] starts at the CPU count and a controller
//! steers the worker count between `min` and `max` toward λ·W, the arrival
//! rate times the time a job holds a worker (Little's Law). While a
//! backlog waits it grows at once to what would fill the CPUs, stops
//! growing once they are saturated (compute-bound work gains nothing from
//! more threads than cores), and shrinks only after several samples agree,
//! a quarter at a time (half, when its threads mostly queue for a CPU), so
//! it does not flap. [`ThreadPool::set_workers`] resizes by hand: growing
//! starts workers now; shrinking retires idle workers first and busy ones
//! after their current job, and never loses or repeats a job.
//!
//! ```
//! use brigade::{Sizing, ThreadPool};
//!
//! let pool = ThreadPool::builder()
//!     .sizing(Sizing::Adaptive { min: 2, max: 64 })
//!     .build()?;
//! pool.execute(|| { /* calls a backend whose latency varies */ })
//!     .map_err(|e| e.kind())?;
//! pool.set_workers(8)?; // a manual override; the controller moves on from here
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A pool sized for a burst need not keep its threads afterwards:
//! [`keep_alive`](ThreadPoolBuilder::keep_alive) lets a worker idle that
//! long leave, down to no worker thread at all (an adaptive pool keeps its
//! `min`, and `Sizing::Adaptive { min: 0, .. }` is allowed only with a
//! keep-alive; a pool whose queue has capacity 0 keeps one worker to
//! receive the next job). A job that then finds no free worker starts one at once —
//! up to the pool's size, or for an adaptive pool the first one, its
//! controller growing it from there — so the first job after a quiet spell
//! pays one thread start. What stays while a pool is idle: an adaptive
//! pool's controller thread, and the one deadline timer thread every
//! context deadline in the process shares. Workers that leave and come
//! back run the thread hooks, build and drop their per-worker state on
//! their own thread, and are counted in [`Stats::expired`].
//!
//! ```
//! use std::time::Duration;
//! use brigade::ThreadPool;
//!
//! let pool = ThreadPool::builder()
//!     .workers(16)
//!     .keep_alive(Duration::from_secs(30))
//!     .build()?;
//! let sum: u64 = pool.map(0..100u64, |n| n * n).collect_vec()?.into_iter().sum();
//! assert_eq!(sum, 328_350);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Observability
//!
//! [`ThreadPool::stats`] is one snapshot: counts of what happened to every
//! job, the worker, busy and queue gauges, queue-wait and run-time
//! percentiles ([`Latencies`]: p50/p90/p99/max, from log-bucketed
//! histograms recorded without locks), and utilisation and throughput over
//! the last five seconds. Its `Display` is one line for a log. Jobs are
//! timed by sampling (every job of the first 1,024, then one in 16), which
//! keeps the cost of timing below the noise of a tiny job.
//!
//! For per-job events — a progress bar, your own metrics — set
//! [`ThreadPoolBuilder::on_job_done`]: it sees each job's id, [`JobOutcome`], queue
//! wait and run time (every job is timed while a hook is set).
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use brigade::{JobOutcome, ThreadPool};
//!
//! let done = Arc::new(AtomicU64::new(0));
//! let pool = {
//!     let done = Arc::clone(&done);
//!     ThreadPool::builder()
//!         .workers(2)
//!         .on_job_done(move |event| {
//!             if event.outcome == JobOutcome::Completed {
//!                 done.fetch_add(1, Ordering::Relaxed);
//!             }
//!         })
//!         .build()?
//! };
//! for _ in 0..100 {
//!     pool.execute(|| { /* work */ }).map_err(|e| e.kind())?;
//! }
//! let stats = pool.stats();
//! println!("{stats}"); // workers=2 busy=… | … jobs/s, …% busy | wait p50 … | run p50 …
//! pool.join();
//! assert_eq!(done.load(Ordering::Relaxed), 100);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A job runs on another thread than the one that submitted it, so the
//! submitter's tracing span, request id or logging context is not there.
//! [`ThreadPoolBuilder::propagate`] carries it over: a `capture` hook runs
//! where the job is submitted, an `enter` hook runs around the job on the
//! worker — for a span, `.propagate(Span::current, |span, run|
//! span.in_scope(run))`. Every front door of the pool goes through it
//! (handles, `execute`, `map`, `scope`, an [`ErrGroup`] on the pool);
//! [`WorkerPoolBuilder`], [`Pipeline::propagate`] and
//! [`ErrGroup::propagate`] set the same pair. `examples/tracing_spans.rs`
//! prints jobs' events nested under the request span that submitted them.
//!
//! # Async programs
//!
//! An async program hands brigade the work that would stall its executor:
//! CPU-bound work (hashing, compression, parsing, image processing) and
//! calls into blocking libraries. tokio's own answer, `spawn_blocking`,
//! starts up to 512 threads by default, queues whatever comes after them
//! without bound, and cannot stop a closure once it has started. A pool
//! brings what the chapters above describe: a fixed crew sized for the
//! CPUs, a bounded queue that pushes back, cancellation and deadlines that
//! reach a running job through its [`Context`], panic supervision, and
//! [`Stats`].
//!
//! * **Backpressure without blocking.** [`ThreadPool::submit_async`] is
//!   `submit` as a future. While the queue is full it stays `Pending`, and
//!   the worker that frees a slot wakes it; closing or cancelling the pool
//!   wakes it too, with the job handed back in the error. A burst of
//!   requests slows the intake instead of growing a queue, and the
//!   executor thread serves other tasks meanwhile. The blocking
//!   [`ThreadPool::submit`] does not belong in async code: it parks the
//!   executor's thread. [`ThreadPool::try_submit`] never waits, for a
//!   handler that would rather answer "busy".
//! * **Awaiting handles.** A [`JobHandle`] is a `Future` whose output is
//!   what [`JobHandle::join`] returns. brigade depends on no async runtime:
//!   its futures use `std::task` only, so tokio, smol or a hand-written
//!   `block_on` can poll them.
//! * **Dropping.** Dropping a handle, or a future that awaits it, detaches
//!   the job: it runs on and its result is dropped, as with tokio's
//!   `JoinHandle`. A request handler whose client may leave wants the
//!   opposite: [`JobHandle::cancel_on_drop`] wraps the handle in a
//!   [`CancelOnDrop`], and dropping that (the losing branch of a
//!   `select!`, an aborted task) keeps a queued job from starting and
//!   cancels a running job's context. Dropping an unresolved
//!   [`SubmitAsync`] drops the job without queueing it. As everywhere in
//!   brigade, a running job stops when it next looks at its context.
//! * **Several jobs.** [`Completions`] yields each job's result in the
//!   order the jobs finish; [`Completions::next_async`] awaits the next
//!   one, and dropping the set cancels the jobs it has not yielded.
//! * **The other front doors.** [`WorkerPool::submit_async`] queues a
//!   worker pool's job with the same backpressure, and
//!   [`ErrGroup::wait_async`] waits for a group (in every mode) without
//!   blocking.
//! * **Joining inside the pool.** A job that joins a job of its own pool
//!   that has not started runs it inline (see [`JobHandle::join`]), so
//!   fan-out from inside a job cannot deadlock on a queued job.
//!
//! ```
//! use std::time::Duration;
//! use brigade::{Cancelled, Completions, ThreadPool};
//!
//! let pool = ThreadPool::builder().workers(2).queue_capacity(8).build()?;
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
//! runtime.block_on(async {
//!     // Waits for room in the queue, then for the result, never blocking.
//!     let handle = pool.submit_async(|_ctx| (1..=20u64).product::<u64>()).await?;
//!     assert_eq!(handle.await?, 2_432_902_008_176_640_000);
//!
//!     // A handler whose client hangs up: `select!` drops the losing
//!     // branch, and with it the guard, which cancels the job.
//!     let answer = pool
//!         .submit_async(|ctx| ctx.sleep(Duration::from_secs(60))) // wakes when cancelled
//!         .await?
//!         .cancel_on_drop();
//!     let hung_up = tokio::time::sleep(Duration::from_millis(10)); // a read returning 0
//!     tokio::select! {
//!         _ = answer => unreachable!("the job sleeps for a minute"),
//!         () = hung_up => {} // `answer` was dropped: the job's sleep ends now
//!     }
//!
//!     // The first of several results (Go: `select` over result channels).
//!     let mut replies: Completions<Result<&str, Cancelled>> = Completions::new();
//!     let slow = pool.submit_async(|ctx| ctx.sleep(Duration::from_secs(60)).map(|()| "slow"));
//!     replies.push(slow.await?);
//!     replies.push(pool.submit_async(|_ctx| Ok("fast")).await?);
//!     let (index, first) = replies.next_async().await.expect("two jobs were pushed");
//!     assert_eq!((index, first??), (1, "fast"));
//!     Ok::<(), Box<dyn std::error::Error>>(()) // dropping `replies` cancels the slow job
//! })?;
//! pool.join(); // outside async code: `join` blocks
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `examples/async_offload.rs` puts these together: a tokio server on
//! loopback that derives a key from each request on a pool, under a burst
//! of clients, some of which hang up before their answer.
//!
//! # Coming from Go
//!
//! | Go | brigade |
//! |---|---|
//! | `runtime.GOMAXPROCS(0)` / `NumCPU` | [`sizing::cpu_bound`], [`Sizing::CpuBound`], `BRIGADE_WORKERS` |
//! | N = throughput × latency | [`sizing::io_bound`] |
//! | `context.WithCancel/WithTimeout/WithDeadline` | [`Context::child`], [`Context::with_timeout`], [`Context::with_deadline`] |
//! | `select { case <-ctx.Done(): … }` | [`brigade::select!`](select) `{ recv(ctx.done()) -> _ => … }`, `ctx.check()?` |
//! | `select` over several result channels | [`Completions`]: `next`, `next_async` |
//! | `r.Context()`, cancelled when the HTTP client goes away | [`JobHandle::cancel_on_drop`] |
//! | `ctx.Err()` | [`Context::reason`], [`Context::check`] |
//! | jobs channel + N goroutines + `WaitGroup` | [`ThreadPool`] with [`ThreadPool::join`] |
//! | jobs / results channels, Pool struct with Submit/Close/Stop/Results | [`WorkerPool`]: `submit`, `results()`, `close()`, `stop()` |
//! | `results[i]` slots, reorder buffer | [`ThreadPool::scope`], [`ThreadPool::map`], [`WorkerPoolBuilder::ordered`] |
//! | pipeline stages, each closing its output | [`Pipeline`] |
//! | `errgroup.WithContext` + `SetLimit` | [`ErrGroup::new`] + [`ErrGroup::limit`] |
//! | a `Group` with a mutex-guarded `[]error` (`errors.Join`) | [`ErrGroup::collect_all`] |
//! | first-response-wins: a result channel, `cancel()` after the first | [`ErrGroup::first_success`] |
//! | `chan struct{}` semaphore, `semaphore.Weighted` | [`Semaphore`] (weighted, FIFO, cancellable) |
//! | per-job `context.WithTimeout` | [`ThreadPoolBuilder::job_timeout`] |
//! | `recover()` in the worker + restart | built in: `catch_unwind`, respawn, [`PanicPolicy`] |
//! | drain / cancel / stop-accept-then-drain | [`ThreadPool::join`], [`ThreadPool::shutdown_now`], [`ThreadPool::shutdown_timeout`] |
//! | `rate.NewLimiter` + `limiter.Wait(ctx)` in the worker | [`RateLimiter`], [`RateLimiter::wait`] |
//! | retry loop with backoff | [`Retry`], [`Backoff`] |
//! | `time.AfterFunc(d, f)` | [`ThreadPool::schedule_after`] (cancel through the handle) |
//! | `time.NewTicker(d)` + a goroutine looping over `ticker.C` | [`ThreadPool::schedule`]`(`[`Every::rate`]`(d), f)`: runs never overlap, late ticks are skipped as a `Ticker` drops them ([`Missed`]) |
//! | expvar counters | [`ThreadPool::stats`] (counts, percentiles, utilisation, throughput), [`ThreadPoolBuilder::on_job_done`] |
//! | "dynamic resizing", backpressure modelling | [`ThreadPool::set_workers`], [`Sizing::Adaptive`] |
//!
//! # Coming from Java
//!
//! | `java.util.concurrent` | brigade |
//! |---|---|
//! | `Executors.newFixedThreadPool(n)` | [`ThreadPool::builder`]`().workers(n).build()?` |
//! | `ThreadPoolExecutor(core, max, keepAlive, …)` | [`Sizing::Adaptive`]` { min, max }` with [`keep_alive`](ThreadPoolBuilder::keep_alive)`(d)`: grows past `min` when a backlog waits, whatever the queue's capacity |
//! | `allowCoreThreadTimeOut(true)` | [`keep_alive`](ThreadPoolBuilder::keep_alive) on a fixed-size pool (idle workers leave down to none), or `Sizing::Adaptive { min: 0, .. }` |
//! | `LinkedBlockingQueue` (unbounded) / `ArrayBlockingQueue(n)` / `SynchronousQueue` | [`ThreadPoolBuilder::unbounded_queue`] / [`queue_capacity`](ThreadPoolBuilder::queue_capacity)`(n)` (bounded by default, [`DEFAULT_QUEUE_CAPACITY`]) / `queue_capacity(0)` |
//! | `AbortPolicy`: `RejectedExecutionException` | [`ThreadPool::try_submit`] → [`TrySubmitError::Full`]`(job)`, the job handed back |
//! | `CallerRunsPolicy` / `DiscardPolicy` | [`ThreadPool::submit_or_run_here`], [`execute_or_run_here`](ThreadPool::execute_or_run_here) (per call; a closed or cancelled pool hands the job back, where Java's drops it) / drop the job `Full` handed back |
//! | `ThreadPoolExecutor` over a `PriorityBlockingQueue` | [`ThreadPool::lane`]`(Lane::High)`: priorities that cannot starve (a [starvation bound](ThreadPoolBuilder::starvation_bound)), lanes capped with [`lane_limit`](ThreadPoolBuilder::lane_limit), and handles that work with every lane |
//! | BookKeeper's / Pulsar's `OrderedExecutor` (a key hashed to one thread) | [`ThreadPool::keyed`]: per-key order on every worker, so one slow key blocks no other |
//! | a blocking `put` into the queue ("caller blocks") | [`ThreadPool::submit`] (the default), [`ThreadPool::submit_timeout`] |
//! | `Future`: `get()`, `get(timeout)`, `cancel(true)`, `isDone()` | [`JobHandle`]: [`join`](JobHandle::join), [`join_timeout`](JobHandle::join_timeout), [`cancel`](JobHandle::cancel), [`is_finished`](JobHandle::is_finished) |
//! | `ExecutionException` wrapping what the task threw | the job's own `Result` inside `join`'s; [`JobError::Panicked`] for a panic; [`JobHandle::join_flat`] merges the two |
//! | `ExecutorCompletionService`: `take`, `poll(timeout)` | [`Completions`]: `next`, [`next_timeout`](Completions::next_timeout) |
//! | `invokeAll` | [`ThreadPool::map`] (results in input order), [`ThreadPool::scope`] |
//! | `invokeAny` | [`ErrGroup::first_success`] |
//! | `shutdown()` + `awaitTermination()`, `close()` (Java 19) | [`ThreadPool::close`] (through `&self`) + [`ThreadPool::join`]; dropping the pool |
//! | `shutdownNow()` | [`ThreadPool::shutdown_now`] (counts); [`WorkerPool::shutdown_now`] hands back the jobs that never ran |
//! | `awaitTermination(t)`, then `shutdownNow()` | [`ThreadPool::shutdown_timeout`] |
//! | `setCorePoolSize` / `getActiveCount`, `getQueue().size()`, `getCompletedTaskCount` | [`ThreadPool::set_workers`] / [`ThreadPool::stats`] |
//! | `ThreadFactory`, `UncaughtExceptionHandler`, `afterExecute` | [`ThreadPoolBuilder::thread_name`], [`stack_size`](ThreadPoolBuilder::stack_size), [`on_thread_start`](ThreadPoolBuilder::on_thread_start); [`PanicPolicy`]; [`ThreadPoolBuilder::on_job_done`] |
//! | `ScheduledExecutorService.schedule(task, delay)` | [`ThreadPool::schedule_after`], [`schedule_at`](ThreadPool::schedule_at): a [`JobHandle`] like `submit`'s |
//! | `scheduleAtFixedRate` / `scheduleWithFixedDelay` | [`ThreadPool::schedule`] with [`Every::rate`] / [`Every::delay`]; a task that throws does not stop its schedule silently: [`OnError`], [`Schedule::last_error`] |
//! | `ForkJoinPool`: `fork()` then `join()` | `submit` then [`JobHandle::join`]: from a worker, a job still queued runs inline |
//!
//! Differences on purpose:
//!
//! * **A bounded queue, and a pool that grows while work waits.** A
//!   `ThreadPoolExecutor` starts threads past `core` only when the queue
//!   refuses a task, so with an unbounded queue it never grows past `core`
//!   and `max` does nothing. brigade's queue is bounded unless you ask
//!   otherwise, and [`Sizing::Adaptive`] grows while a backlog waits,
//!   whatever the queue's size: within `max`, steered by Little's Law, and
//!   no further once the CPUs are saturated.
//! * **Refusal hands the job back** instead of throwing: the caller
//!   decides whether to wait, run it, retry or drop it, and nothing is lost
//!   by accident.
//! * **Cancellation is cooperative**, through the job's [`Context`], where
//!   Java interrupts the thread: `cancel` keeps a queued job from ever
//!   starting, and a running job stops when it next checks its context.
//!   There is no `isCancelled`: [`join`](JobHandle::join) says
//!   [`JobError::Cancelled`].
//! * **A panic does not vanish into a `Future` nobody reads**: it is
//!   logged, counted in [`Stats`], and its worker replaced.
//!
//! ```
//! use std::time::Duration;
//! use brigade::{Context, ErrGroup, JobError, ThreadPool, TrySubmitError};
//!
//! // One busy worker and a rendezvous queue: a new job has nowhere to go.
//! let pool = ThreadPool::builder().workers(1).queue_capacity(0).build()?;
//! let (started_tx, started) = brigade::channel::bounded(1);
//! let mut busy = pool
//!     .submit(move |ctx| {
//!         started_tx.send(()).expect("the caller waits");
//!         ctx.sleep(Duration::from_secs(60)) // wakes when cancelled
//!     })
//!     .map_err(|e| e.kind())?;
//! started.recv()?;
//! // AbortPolicy: the refused job comes back.
//! assert!(matches!(pool.try_submit(|_ctx| "refused"), Err(TrySubmitError::Full(_))));
//! // CallerRunsPolicy, asked for on the call: no room, so it runs right here.
//! let caller = std::thread::current().id();
//! let here = pool
//!     .submit_or_run_here(move |_ctx| std::thread::current().id() == caller)
//!     .map_err(|e| e.kind())?;
//! assert_eq!(here.join(), Ok(true));
//! // Future.get(timeout) and cancel(true): the wait gives up, the job goes
//! // on until cancelled, and then stops at its next look at the context.
//! assert!(busy.join_timeout(Duration::from_millis(10)).is_none());
//! busy.cancel();
//! assert!(matches!(busy.join(), Err(JobError::Cancelled(_))));
//!
//! // invokeAny: the first success wins, and the other tasks are cancelled.
//! let replicas = ErrGroup::<String>::first_success(&Context::new());
//! replicas.spawn(|_ctx| Err("replica 1 is down".to_owned()))?;
//! replicas.spawn(|_ctx| Ok(42))?;
//! assert_eq!(replicas.wait()?, 42);
//!
//! // awaitTermination(10 s), then shutdownNow().
//! let report = pool.shutdown_timeout(Duration::from_secs(10));
//! assert_eq!((report.submitted, report.ran), (2, 2)); // the busy job, and the one run here
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Coming from rayon
//!
//! rayon is the right tool for **data parallelism**: one computation over
//! an in-memory collection (`par_iter`, `par_sort`, `join`), spread over
//! every core by work stealing, with jobs that borrow freely and cost
//! nanoseconds to hand off. brigade is for **jobs that block or must be
//! governed**: I/O and calls into blocking libraries, work that must stop
//! on cancellation or a deadline, a bounded queue that pushes back on the
//! producer, panic supervision and stats, results in order with bounded
//! memory, and pipelines of stages. Many programs use both: rayon inside
//! a job for its data, brigade around the jobs.
//!
//! | rayon | brigade |
//! |---|---|
//! | `ThreadPoolBuilder::new().num_threads(n).build()?` | [`ThreadPool::builder`]`().workers(n).build()?` |
//! | `pool.install(\|\| f())` | `pool.submit(\|_ctx\| f())?.join()` (no pool becomes "current") |
//! | `pool.spawn(f)` | [`ThreadPool::execute`] |
//! | `pool.scope(\|s\| s.spawn(\|_\| …))` | [`ThreadPool::scope`]: `s.spawn(\|ctx\| …)`, with a handle per job |
//! | `rayon::join(a, b)` | two `spawn`s in a `scope`; or `submit(b)`, run `a`, then `join` (inline if `b` has not started, on a worker) |
//! | `par_iter().map(f).collect::<Vec<_>>()` | [`ThreadPool::map`]`(items, f)`[`.collect_vec()`](Map::collect_vec) |
//! | `par_iter().map(f).collect::<Result<Vec<_>, E>>()` | [`ThreadPool::try_map`] |
//! | `map_init(init, f)` (init runs per split, not per thread) | [`WorkerPoolBuilder::build_with_state`]`(init, handler)`: `init` runs once per worker thread |
//! | `current_num_threads()` | [`ThreadPool::stats`]`().workers` |
//! | `panic_handler`, `start_handler`, `exit_handler` | [`PanicPolicy`], [`ThreadPoolBuilder::on_thread_start`], [`on_thread_exit`](ThreadPoolBuilder::on_thread_exit) |
//!
//! Differences on purpose:
//!
//! * **No global pool**: every pool is built, sized and shut down by its
//!   owner, and no thread outlives it.
//! * **No work stealing**: jobs start in submission order, which keeps the
//!   queue bounded and the order predictable, and costs more per job than
//!   rayon's split-and-steal — `map` batches items to make up for it.
//! * **`map` takes owned items and a `'static` closure**, reads ahead only
//!   a bounded window, and yields in input order as results arrive;
//!   borrowing jobs go through [`ThreadPool::scope`].
//! * **Each job has a [`Context`]**, and a panic is reported on its handle
//!   while the pool goes on, where a panic in a rayon `spawn` aborts the
//!   process unless a `panic_handler` is set.
//!
//! ```
//! use brigade::ThreadPool;
//!
//! let pool = ThreadPool::builder().workers(4).build()?;
//! // par_iter().map(f).collect(): results in input order.
//! let words = vec!["worker".to_owned(), "pool".to_owned()];
//! assert_eq!(pool.map(words, |word: String| word.len()).collect_vec()?, [6, 4]);
//!
//! // rayon::join(a, b) over borrowed halves: a scope joins both jobs.
//! let data: Vec<u64> = (1..=100).collect();
//! let (left, right) = data.split_at(50);
//! let mut sums = [0u64; 2];
//! let [left_sum, right_sum] = &mut sums;
//! pool.scope(|s| {
//!     s.spawn(move |_ctx| *left_sum = left.iter().sum());
//!     s.spawn(move |_ctx| *right_sum = right.iter().sum());
//! });
//! assert_eq!(sums[0] + sums[1], 5050);
//!
//! // install(|| …): run on a worker and hand the value back.
//! assert_eq!(pool.submit(|_ctx| 6 * 7).map_err(|e| e.kind())?.join()?, 42);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Coming from tokio's `spawn_blocking`
//!
//! | tokio | brigade |
//! |---|---|
//! | `tokio::task::spawn_blocking(f).await` | `pool.submit_async(\|_ctx\| f()).await?.await` ([`ThreadPool::submit_async`]) |
//! | `max_blocking_threads(512)` (the default) | [`ThreadPoolBuilder::workers`], [`Sizing`] (the CPU count by default) |
//! | `thread_keep_alive(10 s)` (the default) | [`keep_alive`](ThreadPoolBuilder::keep_alive)`(d)` (unset by default: workers stay) |
//! | an unbounded queue behind those threads | a bounded queue: `submit_async` stays `Pending` while it is full |
//! | `JoinHandle` detaches its task on drop | a dropped [`JobHandle`] detaches its job too |
//! | `AbortOnDropHandle` (tokio-util) | [`JobHandle::cancel_on_drop`] → [`CancelOnDrop`] |
//! | `JoinHandle::abort()` (no effect once the closure runs) | [`JobHandle::cancel`]: a queued job never starts, a running one sees its [`Context`] cancelled |
//! | `JoinSet`: `join_next().await`, aborts the rest on drop | [`Completions`]: [`next_async`](Completions::next_async), cancels the rest on drop |
//! | `JoinError::is_panic()` | [`JobError::Panicked`] |
//!
//! Differences on purpose:
//!
//! * **A fixed crew, sized for the machine**, where tokio starts a thread
//!   per waiting closure up to 512: hundreds of CPU-bound closures on a
//!   few cores only compete with each other.
//! * **Backpressure instead of an unbounded queue**: a burst slows down
//!   intake rather than queueing without limit; the executor thread is
//!   free meanwhile.
//! * **Running work can be stopped**: every job has a [`Context`] (with
//!   deadlines, [`ThreadPoolBuilder::job_timeout`]), where a started
//!   `spawn_blocking` closure can only run to its end.
//! * **No runtime dependency**: the futures use `std::task` only, and the
//!   pool works the same from synchronous code. The
//!   [Async programs](#async-programs) chapter has a runnable example.

#![deny(missing_docs)]
#![deny(unsafe_code)]
// one audited exception: pool/scope.rs
// A loom build leaves out the modules that use some of the shared helpers.
#![cfg_attr(loom, allow(dead_code, unused_imports, unused_macros))]

// Under `--cfg loom` the parts that the models in `tests/loom.rs` check
// are built — the helpers, the context tree, and `ThreadPool` on the crew —
// over the `sync` shim's primitives. The front doors that the models do
// not reach (`WorkerPool`, `Pipeline`, `ErrGroup`, maps and scopes) are
// left out.
mod context;
mod crew;
mod error;
mod lane;
mod options;
mod panic;
mod pool;
mod rate;
mod retry;
mod semaphore;
pub mod sizing;
mod stats;
mod sync;
mod unwind;

#[cfg(not(loom))]
mod errgroup;
#[cfg(not(loom))]
mod ordered;
#[cfg(not(loom))]
mod pipeline;
#[cfg(not(loom))]
mod worker_pool;

pub use context::Context;
pub use crew::PanicPolicy;
pub use error::{
    AcquireError, BuildError, Cancelled, GroupError, GroupErrors, GroupLimitError,
    GroupPropagateError, JobError, PipelineBuildError, PipelineError, RateError, Refusal,
    RetryError, RetrySettingsError, RunError, ScheduleError, SemaphoreError, SizingError,
    SpawnError, StageError, StageFailure, SubmitError, TryMapError, TrySubmitError,
};
pub use lane::{Lane, LaneLoad};
pub use options::{DEFAULT_QUEUE_CAPACITY, MAX_QUEUE_CAPACITY};
pub use panic::{Panic, PanicLocation};
pub use pool::{
    CancelOnDrop, Ended, Every, JobHandle, Missed, OnError, Routed, Schedule, ShutdownReport,
    SubmitAsync, ThreadPool, ThreadPoolBuilder,
};
pub use rate::{RateLimiter, Reservation};
pub use retry::{Backoff, Retry, RetryBuilder};
pub use semaphore::{Permit, Semaphore};
pub use sizing::Sizing;
pub use stats::{JobEvent, JobOutcome, Latencies, Stats};

/// crossbeam-channel, the channels brigade is built on: [`Context::done`]
/// and [`WorkerPool::results`] return its `Receiver`. Re-exported so that
/// code selecting over them uses the same version without naming it in
/// `Cargo.toml`.
pub use crossbeam_channel as channel;
/// crossbeam-channel's `select!`, for waiting on [`Context::done`] beside
/// your own channels: `select! { recv(ctx.done()) -> _ => …, recv(jobs) ->
/// job => … }`.
pub use crossbeam_channel::select;

#[cfg(not(loom))]
pub use errgroup::{
    CollectAll, ErrGroup, FailFast, FirstSuccess, GROUP_KEEP_ALIVE, GROUP_THREADS, GroupMode,
    ScopedGroup,
};
#[cfg(not(loom))]
pub use pipeline::{Pipeline, PipelineOutput, ReadyPipeline, StageStats};
#[cfg(not(loom))]
pub use pool::{Completions, NextCompletion};
#[cfg(not(loom))]
pub use pool::{DEFAULT_READ_AHEAD, Map};
pub use pool::{Scope, ScopedJoinHandle};
#[cfg(not(loom))]
pub use worker_pool::{Leftovers, Output, WorkerPool, WorkerPoolBuilder, WorkerSubmit};
