//! Bad input, table-driven: every constructor, option and call given an
//! invalid value is refused with the exact error variant *and* the exact
//! `Display` message (the messages are part of the contract: they say what
//! to fix), and nothing panics or hangs. Documented leniencies (a chunk
//! size of 0 is taken as 1) are rows too, checked for the documented
//! behaviour.
//!
//! Each row is a test of its own, in a module per concept (`sizing`,
//! `builder`, `pipeline`, `errgroup`, `semaphore`, `rate`, `retry`,
//! `submit`, `lenient`, `schedule`), so `cargo test --test bad_input rate::`
//! runs one concept. A row runs under `with_timeout` and `catch_unwind`, and
//! its failure, panic or hang is reported with the row's input.
//! `BRIGADE_WORKERS` is process-global and has its own file
//! (`sizing_env.rs`).

mod common;

use std::any::Any;
use std::fmt::{Debug, Display};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use brigade::sizing::MAX_WORKERS;
use brigade::{
    AcquireError, Backoff, BuildError, Cancelled, Context, ErrGroup, GroupError, GroupLimitError,
    JobError, Lane, MAX_QUEUE_CAPACITY, Pipeline, PipelineBuildError, RateError, RateLimiter,
    Retry, RetrySettingsError, Semaphore, SemaphoreError, Sizing, SizingError, SpawnError,
    SubmitError, ThreadPool, TrySubmitError, WorkerPool,
};

use common::{LONG, with_timeout};

/// Runs the check of one row under `with_timeout`; fails naming the row
/// (its input) and what was wrong, a panic or a hang included.
fn check(row: &str, check: impl FnOnce() -> Result<(), String> + Send + 'static) {
    let outcome = catch_unwind(AssertUnwindSafe(|| with_timeout(LONG, check)))
        .unwrap_or_else(|payload| Err(format!("panicked: {}", panic_text(payload.as_ref()))));
    if let Err(why) = outcome {
        panic!("{row}: {why}");
    }
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// The error of `result`, or a panic saying that the bad input was
/// accepted (the row's name says which input).
fn refused<T, E>(result: Result<T, E>) -> E {
    match result {
        Ok(_) => panic!("the bad input was accepted"),
        Err(err) => err,
    }
}

/// Compares the variant (`is_variant`) and the exact `Display` text.
fn exact<E: Debug + Display>(err: &E, is_variant: bool, message: &str) -> Result<(), String> {
    if !is_variant {
        return Err(format!("wrong variant: {err:?}"));
    }
    let shown = err.to_string();
    if shown != message {
        return Err(format!("message {shown:?}, expected {message:?}"));
    }
    Ok(())
}

/// One test per row. `test: "input" => call, Variant, message;` is the
/// test `test`, in which `call` must fail with an error matching `Variant`
/// whose `Display` is `message`; a failure names `"input"`. The
/// `given { … }` block, the helpers of the concept's rows, opens every
/// test.
macro_rules! rows {
    (given { $($given:tt)* }) => {};
    (
        given { $($given:tt)* }
        $test:ident: $name:literal => $call:expr, $variant:pat $(if $guard:expr)?, $message:expr;
        $($rest:tt)*
    ) => {
        #[test]
        #[allow(unused_variables, reason = "each row uses some of its concept's helpers")]
        fn $test() {
            check($name, || {
                $($given)*
                let err = refused($call);
                exact(&err, matches!(err, $variant $(if $guard)?), &$message)
            });
        }
        rows! { given { $($given)* } $($rest)* }
    };
}

/// A one-worker pool for the rows that need one.
fn small_pool(name: &str) -> ThreadPool {
    ThreadPool::builder()
        .workers(1)
        .thread_name(name)
        .build()
        .expect("build")
}

/// A cancelled context.
fn cancelled() -> Context {
    let ctx = Context::new();
    ctx.cancel();
    ctx
}

/// The same message, whichever `SizingError` a pool, a worker pool or a
/// direct call reports it through.
mod sizing {
    // Each bad worker count or sizing is refused with its exact SizingError and message.
    use super::*;
    use brigade::sizing;

    rows! {
        given {
            let ms = Duration::from_millis;
            let io = |throughput_per_sec: f64, latency: Duration| Sizing::IoBound {
                throughput_per_sec,
                latency,
            };
            let too_many = format!(
                "worker count must be at most {MAX_WORKERS}, got {}",
                MAX_WORKERS + 1
            );
            let bad_rate = |got: &str| {
                format!(
                    "throughput must be a finite number of jobs per second greater than 0, got {got}"
                )
            };
        }
        pool_workers_zero: "ThreadPoolBuilder::workers(0)" =>
            ThreadPool::builder().workers(0).build(),
            BuildError::Sizing(SizingError::ZeroWorkers),
            "worker count must be at least 1, got 0";
        pool_workers_past_max: "ThreadPoolBuilder::workers(MAX_WORKERS + 1)" =>
            ThreadPool::builder().workers(MAX_WORKERS + 1).build(),
            BuildError::Sizing(SizingError::TooManyWorkers {
                requested: 32_769,
                max: MAX_WORKERS
            }),
            too_many;
        pool_workers_usize_max: "ThreadPoolBuilder::workers(usize::MAX)" =>
            ThreadPool::builder().workers(usize::MAX).build(),
            BuildError::Sizing(SizingError::TooManyWorkers { requested, .. })
                if requested == usize::MAX as u128,
            format!("worker count must be at most {MAX_WORKERS}, got {}", usize::MAX);
        pool_fixed_zero: "ThreadPoolBuilder::sizing(Fixed(0))" =>
            ThreadPool::builder().sizing(Sizing::Fixed(0)).build(),
            BuildError::Sizing(SizingError::ZeroWorkers),
            "worker count must be at least 1, got 0";
        io_throughput_nan: "Sizing::IoBound throughput NaN" =>
            ThreadPool::builder().sizing(io(f64::NAN, ms(10))).build(),
            BuildError::Sizing(SizingError::InvalidThroughput(r)) if r.is_nan(), bad_rate("NaN");
        io_throughput_negative: "Sizing::IoBound throughput -1" =>
            ThreadPool::builder().sizing(io(-1.0, ms(10))).build(),
            BuildError::Sizing(SizingError::InvalidThroughput(-1.0)),
            bad_rate("-1");
        io_throughput_infinite: "Sizing::IoBound throughput +inf" =>
            ThreadPool::builder()
                .sizing(io(f64::INFINITY, ms(10)))
                .build(),
            BuildError::Sizing(SizingError::InvalidThroughput(f64::INFINITY)),
            bad_rate("inf");
        io_throughput_negative_infinite: "Sizing::IoBound throughput -inf" =>
            ThreadPool::builder()
                .sizing(io(f64::NEG_INFINITY, ms(10)))
                .build(),
            BuildError::Sizing(SizingError::InvalidThroughput(f64::NEG_INFINITY)),
            bad_rate("-inf");
        io_throughput_zero: "Sizing::IoBound throughput 0" =>
            ThreadPool::builder().sizing(io(0.0, ms(10))).build(),
            BuildError::Sizing(SizingError::InvalidThroughput(0.0)),
            bad_rate("0");
        io_latency_zero: "Sizing::IoBound latency 0" =>
            ThreadPool::builder()
                .sizing(io(100.0, Duration::ZERO))
                .build(),
            BuildError::Sizing(SizingError::ZeroLatency),
            "latency must be greater than zero";
        io_product_past_max: "Sizing::IoBound product past MAX_WORKERS" =>
            ThreadPool::builder()
                .sizing(io(1e9, Duration::from_secs(1)))
                .build(),
            BuildError::Sizing(SizingError::TooManyWorkers {
                requested: 1_000_000_000,
                ..
            }),
            format!("worker count must be at most {MAX_WORKERS}, got 1000000000");
        io_product_overflowing_every_integer: "Sizing::IoBound product overflowing every integer" =>
            ThreadPool::builder()
                .sizing(io(f64::MAX, Duration::from_secs(3600)))
                .build(),
            BuildError::Sizing(SizingError::TooManyWorkers {
                requested: u128::MAX,
                ..
            }),
            format!(
                "worker count must be at most {MAX_WORKERS}, got {}",
                u128::MAX
            );
        io_bound_product_overflowing_to_infinity: "sizing::io_bound product overflowing to infinity" =>
            sizing::io_bound(f64::MAX, Duration::from_secs(2)),
            SizingError::TooManyWorkers {
                requested: u128::MAX,
                ..
            },
            format!(
                "worker count must be at most {MAX_WORKERS}, got {}",
                u128::MAX
            );
        io_bound_nan: "sizing::io_bound(NaN)" =>
            sizing::io_bound(f64::NAN, ms(1)),
            SizingError::InvalidThroughput(r) if r.is_nan(), bad_rate("NaN");
        io_bound_negative: "sizing::io_bound(-0.5)" =>
            sizing::io_bound(-0.5, ms(1)),
            SizingError::InvalidThroughput(-0.5),
            bad_rate("-0.5");
        io_bound_latency_zero: "sizing::io_bound(latency 0)" =>
            sizing::io_bound(1.0, Duration::ZERO),
            SizingError::ZeroLatency,
            "latency must be greater than zero";
        fixed_zero_workers: "Sizing::Fixed(0).workers()" =>
            Sizing::Fixed(0).workers(),
            SizingError::ZeroWorkers,
            "worker count must be at least 1, got 0";
        worker_pool_workers_zero: "WorkerPoolBuilder::workers(0)" =>
            WorkerPool::builder().workers(0).build(|_ctx, n: u8| n),
            BuildError::Sizing(SizingError::ZeroWorkers),
            "worker count must be at least 1, got 0";
        worker_pool_io_throughput_nan: "WorkerPoolBuilder Sizing::IoBound throughput NaN" =>
            WorkerPool::builder().sizing(io(f64::NAN, ms(1))).build(|_ctx, n: u8| n),
            BuildError::Sizing(SizingError::InvalidThroughput(r)) if r.is_nan(), bad_rate("NaN");
    }
}

/// Every other `ThreadPoolBuilder` and `WorkerPoolBuilder` option.
mod builder {
    // Each bad builder option or resize is refused with its exact BuildError or SizingError.
    use super::*;

    rows! {
        given {
            let max = MAX_QUEUE_CAPACITY;
            let queue = move |got: usize| {
                format!(
                    "queue capacity must be at most {max}, got {got}; use unbounded_queue() for no limit"
                )
            };
            let window =
                move |got: usize| format!("ordered window must be between 1 and {max}, got {got}");
            let results =
                move |got: usize| format!("results capacity must be at most {max}, got {got}");
        }
        pool_queue_capacity_past_max: "ThreadPoolBuilder::queue_capacity(MAX + 1)" =>
            ThreadPool::builder().workers(1).queue_capacity(max + 1).build(),
            BuildError::QueueTooLarge { requested, max: m } if requested == max + 1 && m == max,
            queue(max + 1);
        pool_queue_capacity_usize_max: "ThreadPoolBuilder::queue_capacity(usize::MAX)" =>
            ThreadPool::builder()
                .workers(1)
                .queue_capacity(usize::MAX)
                .build(),
            BuildError::QueueTooLarge {
                requested: usize::MAX,
                ..
            },
            queue(usize::MAX);
        pool_stack_size_zero: "ThreadPoolBuilder::stack_size(0)" =>
            ThreadPool::builder().workers(1).stack_size(0).build(),
            BuildError::ZeroStackSize,
            "stack size must be greater than 0 bytes";
        pool_job_timeout_zero: "ThreadPoolBuilder::job_timeout(ZERO)" =>
            ThreadPool::builder()
                .workers(1)
                .job_timeout(Duration::ZERO)
                .build(),
            BuildError::ZeroJobTimeout(Duration::ZERO),
            "job timeout must be greater than zero; leave job_timeout unset for no per-job deadline";
        pool_lane_limit_zero: "ThreadPoolBuilder::lane_limit(Background, 0)" =>
            ThreadPool::builder().workers(2).lane_limit(Lane::Background, 0).build(),
            BuildError::ZeroLaneLimit(Lane::Background),
            "lane_limit(Background, 0) would let no Background job ever start; the limit must be at least 1";
        pool_high_lane_limit_zero: "ThreadPoolBuilder::lane_limit(High, 0)" =>
            ThreadPool::builder().workers(2).lane_limit(Lane::High, 0).build(),
            BuildError::ZeroLaneLimit(Lane::High),
            "lane_limit(High, 0) would let no High job ever start; the limit must be at least 1";
        pool_lane_limit_above_workers: "ThreadPoolBuilder::lane_limit(Background, 3) on 2 workers" =>
            ThreadPool::builder().workers(2).lane_limit(Lane::Background, 3).build(),
            BuildError::LaneLimitAboveWorkers { lane: Lane::Background, limit: 3, workers: 2 },
            "lane_limit(Background, 3) is above the pool's 2 workers, so it would never hold a job back; use at most 2, or leave Background unlimited";
        adaptive_lane_limit_above_max: "lane_limit(High, 5) on Sizing::Adaptive { min: 1, max: 4 }" =>
            ThreadPool::builder()
                .sizing(Sizing::Adaptive { min: 1, max: 4 })
                .lane_limit(Lane::High, 5)
                .build(),
            BuildError::LaneLimitAboveWorkers { lane: Lane::High, limit: 5, workers: 4 },
            "lane_limit(High, 5) is above the pool's 4 workers, so it would never hold a job back; use at most 4, or leave High unlimited";
        pool_normal_lane_limit: "ThreadPoolBuilder::lane_limit(Normal, 1)" =>
            ThreadPool::builder().workers(2).lane_limit(Lane::Normal, 1).build(),
            BuildError::NormalLaneLimit,
            "Lane::Normal cannot be limited: it holds every job submitted without a lane; limit Lane::High or Lane::Background";
        pool_starvation_bound_zero: "ThreadPoolBuilder::starvation_bound(ZERO)" =>
            ThreadPool::builder()
                .workers(2)
                .starvation_bound(Duration::ZERO)
                .build(),
            BuildError::ZeroStarvationBound,
            "starvation_bound must be greater than zero (a job waiting longer than it goes first); leave it unset for the default of 250 ms";
        pool_key_queue_limit_zero: "ThreadPoolBuilder::key_queue_limit(0)" =>
            ThreadPool::builder().workers(2).key_queue_limit(0).build(),
            BuildError::ZeroKeyQueue,
            "key_queue_limit must be at least 1: it is how many jobs of one key may wait";
        pool_thread_name_with_nul: "ThreadPoolBuilder::thread_name with NUL" =>
            ThreadPool::builder().workers(1).thread_name("bad\0name").build(),
            BuildError::InvalidThreadName(ref name) if name == "bad\0name",
            r#"thread name must not contain NUL bytes, got "bad\0name""#;
        adaptive_min_zero_without_keep_alive: "Sizing::Adaptive { min: 0, max: 4 } without keep_alive" =>
            ThreadPool::builder().sizing(Sizing::Adaptive { min: 0, max: 4 }).build(),
            BuildError::ZeroMinNeedsKeepAlive,
            "Sizing::Adaptive with min 0 needs keep_alive(..): only idle workers leaving take a pool to no workers; set keep_alive or a min of at least 1";
        adaptive_max_zero: "Sizing::Adaptive { min: 0, max: 0 }" =>
            ThreadPool::builder()
                .sizing(Sizing::Adaptive { min: 0, max: 0 })
                .keep_alive(Duration::from_secs(1))
                .build(),
            BuildError::Sizing(SizingError::InvalidBounds { min: 0, max: 0, limit: MAX_WORKERS }),
            format!("adaptive sizing needs min <= max and 1 <= max <= {MAX_WORKERS}, got min 0 and max 0");
        zero_keep_alive: "ThreadPoolBuilder::keep_alive(0)" =>
            ThreadPool::builder().workers(2).keep_alive(Duration::ZERO).build(),
            BuildError::ZeroKeepAlive(Duration::ZERO),
            "keep_alive must be greater than zero; leave it unset for workers that never leave when idle";
        worker_pool_zero_keep_alive: "WorkerPoolBuilder::keep_alive(0)" =>
            WorkerPool::builder().workers(2).keep_alive(Duration::ZERO).build(|_: &Context, n: u8| n),
            BuildError::ZeroKeepAlive(Duration::ZERO),
            "keep_alive must be greater than zero; leave it unset for workers that never leave when idle";
        adaptive_min_above_max: "Sizing::Adaptive { min: 5, max: 4 }" =>
            ThreadPool::builder().sizing(Sizing::Adaptive { min: 5, max: 4 }).build(),
            BuildError::Sizing(SizingError::InvalidBounds { min: 5, max: 4, limit: MAX_WORKERS }),
            format!("adaptive sizing needs min <= max and 1 <= max <= {MAX_WORKERS}, got min 5 and max 4");
        adaptive_max_past_limit: "Sizing::Adaptive { min: 1, max: MAX_WORKERS + 1 }" =>
            ThreadPool::builder()
                .sizing(Sizing::Adaptive { min: 1, max: MAX_WORKERS + 1 })
                .build(),
            BuildError::Sizing(SizingError::InvalidBounds { min: 1, max: x, limit: MAX_WORKERS })
                if x == MAX_WORKERS + 1,
            format!(
                "adaptive sizing needs min <= max and 1 <= max <= {MAX_WORKERS}, got min 1 and max {}",
                MAX_WORKERS + 1
            );
        no_latencies_with_on_job_done: "record_latencies(false) with on_job_done" =>
            ThreadPool::builder()
                .workers(1)
                .on_job_done(|_| {})
                .record_latencies(false)
                .build(),
            BuildError::LatenciesNeeded {
                needed_by: "on_job_done"
            },
            "record_latencies(false) conflicts with on_job_done, which is driven by job timings; remove one of the two";
        no_latencies_with_adaptive_sizing: "record_latencies(false) with Sizing::Adaptive" =>
            WorkerPool::builder()
                .sizing(Sizing::Adaptive { min: 1, max: 4 })
                .record_latencies(false)
                .build(|_ctx, n: u8| n),
            BuildError::LatenciesNeeded {
                needed_by: "Sizing::Adaptive"
            },
            "record_latencies(false) conflicts with Sizing::Adaptive, which is driven by job timings; remove one of the two";
        // A rejected resize leaves the pool as it was.
        pool_set_workers_zero: "ThreadPool::set_workers(0)" =>
            {
                let pool = small_pool("bad-resize");
                let result = pool.set_workers(0);
                assert_eq!(
                    pool.stats().workers,
                    1,
                    "a rejected set_workers changed the pool"
                );
                result
            },
            SizingError::ZeroWorkers,
            "worker count must be at least 1, got 0";
        pool_set_workers_past_max: "ThreadPool::set_workers(MAX_WORKERS + 1)" =>
            small_pool("bad-resize").set_workers(MAX_WORKERS + 1),
            SizingError::TooManyWorkers {
                requested: 32_769,
                max: MAX_WORKERS
            },
            format!(
                "worker count must be at most {MAX_WORKERS}, got {}",
                MAX_WORKERS + 1
            );
        worker_pool_set_workers_zero: "WorkerPool::set_workers(0)" =>
            {
                let pool = WorkerPool::builder()
                    .workers(2)
                    .build(|_ctx, n: u8| n)
                    .expect("pool");
                let result = pool.set_workers(0);
                assert_eq!(
                    pool.stats().workers,
                    2,
                    "a rejected set_workers changed the pool"
                );
                result
            },
            SizingError::ZeroWorkers,
            "worker count must be at least 1, got 0";
        worker_pool_queue_capacity_past_max: "WorkerPoolBuilder::queue_capacity(MAX + 1)" =>
            WorkerPool::builder()
                .workers(1)
                .queue_capacity(max + 1)
                .build(|_ctx, n: u8| n),
            BuildError::QueueTooLarge { .. },
            queue(max + 1);
        worker_pool_stack_size_zero: "WorkerPoolBuilder::stack_size(0)" =>
            WorkerPool::builder()
                .workers(1)
                .stack_size(0)
                .build(|_ctx, n: u8| n),
            BuildError::ZeroStackSize,
            "stack size must be greater than 0 bytes";
        worker_pool_job_timeout_zero: "WorkerPoolBuilder::job_timeout(ZERO)" =>
            WorkerPool::builder()
                .workers(1)
                .job_timeout(Duration::ZERO)
                .build(|_ctx, n: u8| n),
            BuildError::ZeroJobTimeout(Duration::ZERO),
            "job timeout must be greater than zero; leave job_timeout unset for no per-job deadline";
        worker_pool_thread_name_with_nul: "WorkerPoolBuilder::thread_name with NUL" =>
            WorkerPool::builder().workers(1).thread_name("\0").build(|_ctx, n: u8| n),
            BuildError::InvalidThreadName(ref name) if name == "\0",
            r#"thread name must not contain NUL bytes, got "\0""#;
        worker_pool_results_capacity_past_max: "WorkerPoolBuilder::results_capacity(MAX + 1)" =>
            WorkerPool::builder().workers(1).results_capacity(max + 1).build(|_ctx, n: u8| n),
            BuildError::ResultsTooLarge { requested, max: m } if requested == max + 1 && m == max,
            results(max + 1);
        worker_pool_results_capacity_usize_max: "WorkerPoolBuilder::results_capacity(usize::MAX)" =>
            WorkerPool::builder()
                .workers(1)
                .results_capacity(usize::MAX)
                .build(|_ctx, n: u8| n),
            BuildError::ResultsTooLarge {
                requested: usize::MAX,
                ..
            },
            results(usize::MAX);
        worker_pool_ordered_window_zero: "WorkerPoolBuilder::ordered_window(0)" =>
            WorkerPool::builder().workers(1).ordered_window(0).build(|_ctx, n: u8| n),
            BuildError::InvalidWindow { requested: 0, max: m } if m == max, window(0);
        worker_pool_ordered_window_past_max: "WorkerPoolBuilder::ordered_window(MAX + 1)" =>
            WorkerPool::builder().workers(1).ordered_window(max + 1).build(|_ctx, n: u8| n),
            BuildError::InvalidWindow { requested, .. } if requested == max + 1, window(max + 1);
    }
}

/// Pipeline stages and settings: refused by `build`, before any thread starts
/// or any input could be read.
mod pipeline {
    // Each bad stage or setting fails `build` with its exact PipelineBuildError.
    use super::*;

    /// What `build` returned.
    type Built = Result<brigade::ReadyPipeline<u8, u8, String>, PipelineBuildError>;
    fn build(pipeline: Pipeline<u8, u8, String>) -> Built {
        pipeline.build()
    }

    rows! {
        given {
            let pass = |_ctx: &Context, n: u8| Ok(n);
            let new = || Pipeline::<u8, u8, String>::new(&Context::new());
            let max = MAX_QUEUE_CAPACITY;
        }
        stage_workers_zero: "Pipeline stage with 0 workers" =>
            build(new().stage("pl-zero", 0, pass)),
            PipelineBuildError::Stage { ref stage, error: BuildError::Sizing(SizingError::ZeroWorkers) }
                if stage == "pl-zero",
            r#"pipeline stage "pl-zero": worker count must be at least 1, got 0"#;
        stage_workers_past_max: "Pipeline stage with MAX_WORKERS + 1 workers" =>
            build(new().stage("pl-ok", 1, pass).stage("pl-many", MAX_WORKERS + 1, pass)),
            PipelineBuildError::Stage {
                ref stage,
                error: BuildError::Sizing(SizingError::TooManyWorkers { .. }),
            } if stage == "pl-many",
            format!(
                r#"pipeline stage "pl-many": worker count must be at most {MAX_WORKERS}, got {}"#,
                MAX_WORKERS + 1
            );
        buffer_past_max: "Pipeline buffer(MAX + 1)" =>
            build(new().stage("pl-buf", 1, pass).buffer(max + 1)),
            PipelineBuildError::Stage { ref stage, error: BuildError::BufferTooLarge { requested, .. } }
                if stage == "pl-buf" && requested == max + 1,
            format!(
                r#"pipeline stage "pl-buf": stage buffer must be at most {max}, got {}"#,
                max + 1
            );
        buffer_usize_max: "Pipeline buffer(usize::MAX)" =>
            build(new().stage("pl-bufm", 1, pass).buffer(usize::MAX)),
            PipelineBuildError::Stage {
                error: BuildError::BufferTooLarge {
                    requested: usize::MAX,
                    ..
                },
                ..
            },
            format!(
                r#"pipeline stage "pl-bufm": stage buffer must be at most {max}, got {}"#,
                usize::MAX
            );
        stage_name_with_nul: "Pipeline stage name with NUL" =>
            build(new().stage("pl\0nul", 1, pass)),
            PipelineBuildError::Stage { ref stage, error: BuildError::InvalidThreadName(ref name) }
                if stage == "pl\0nul" && name == "pl\0nul",
            r#"pipeline stage "pl\0nul": thread name must not contain NUL bytes, got "pl\0nul""#;
        buffer_before_any_stage: "Pipeline buffer() before the first stage" =>
            build(new().buffer(4).stage("pl-late", 1, pass)),
            PipelineBuildError::Settings(BuildError::BufferBeforeStage),
            "pipeline: buffer() sizes the queue of the stage added last; add a stage before calling it";
        ordered_window_zero: "Pipeline ordered_window(0)" =>
            build(new().stage("pl-win", 1, pass).ordered_window(0)),
            PipelineBuildError::Settings(BuildError::InvalidWindow { requested: 0, .. }),
            format!("pipeline: ordered window must be between 1 and {max}, got 0");
        ordered_window_past_max: "Pipeline ordered_window(MAX + 1)" =>
            build(new().stage("pl-winm", 1, pass).ordered_window(max + 1)),
            PipelineBuildError::Settings(BuildError::InvalidWindow { .. }),
            format!(
                "pipeline: ordered window must be between 1 and {max}, got {}",
                max + 1
            );
    }
}

/// `ErrGroup` limits and spawns a group refuses.
mod errgroup {
    // Each bad limit, and each spawn a group must refuse, fails with its exact error.
    use super::*;

    rows! {
        given {
            let new = || ErrGroup::<String>::new(&Context::new());
            let group_cancelled = "the group is cancelled; the task was not started";
        }
        limit_zero: "ErrGroup::limit(0)" =>
            new().limit(0),
            GroupLimitError::Zero,
            "an ErrGroup limit must be at least 1, got 0";
        limit_past_max: "ErrGroup::limit(MAX_WORKERS + 1)" =>
            new().limit(MAX_WORKERS + 1),
            GroupLimitError::TooLarge {
                requested: 32_769,
                max: MAX_WORKERS
            },
            format!(
                "an ErrGroup limit must be at most {MAX_WORKERS}, got {}",
                MAX_WORKERS + 1
            );
        limit_usize_max: "ErrGroup::limit(usize::MAX)" =>
            new().limit(usize::MAX),
            GroupLimitError::TooLarge {
                requested: usize::MAX,
                ..
            },
            format!(
                "an ErrGroup limit must be at most {MAX_WORKERS}, got {}",
                usize::MAX
            );
        limit_after_spawn: "ErrGroup::limit after spawn" =>
            {
                let group = new();
                group.spawn(|_ctx| Ok(())).expect("spawn");
                group.limit(2)
            },
            GroupLimitError::AlreadySpawned,
            "set an ErrGroup's limit before spawning tasks";
        limit_after_spawn_on_a_pool: "ErrGroup::limit after spawn, on a pool" =>
            {
                let pool = small_pool("bi-egl");
                let group = ErrGroup::<String>::on_pool(&Context::new(), &pool);
                group.spawn(|_ctx| Ok(())).expect("spawn");
                group.limit(1).map(drop)
            },
            GroupLimitError::AlreadySpawned,
            "set an ErrGroup's limit before spawning tasks";
        spawn_after_cancel: "ErrGroup::spawn after its context is cancelled (as wait does)" =>
            {
                let group = new();
                group.context().cancel();
                group.spawn(|_ctx| Ok(()))
            },
            SpawnError::Cancelled(_),
            group_cancelled;
        try_spawn_after_cancel: "ErrGroup::try_spawn after its context is cancelled" =>
            {
                let group = new().limit(1).expect("limit");
                group.context().cancel();
                group.try_spawn(|_ctx| Ok(()))
            },
            SpawnError::Cancelled(_),
            group_cancelled;
        spawn_after_parent_cancel: "ErrGroup::spawn after the parent context is cancelled" =>
            ErrGroup::<String>::new(&cancelled()).spawn(|_ctx| Ok(())),
            SpawnError::Cancelled(_),
            group_cancelled;
        spawn_after_a_task_failed: "ErrGroup::spawn after a task failed" =>
            {
                let group = new();
                group.spawn(|_ctx| Err("boom".to_owned())).expect("spawn");
                // The failure cancels the group's context.
                let _ = group.context().done().recv_timeout(LONG);
                group.spawn(|_ctx| Ok(()))
            },
            SpawnError::Cancelled(_),
            group_cancelled;
        scoped_spawn_after_cancel: "ScopedGroup::spawn after its context is cancelled" =>
            {
                let mut refused = None;
                let outcome = new().scope(|g| {
                    g.context().cancel();
                    refused = g.spawn(|_ctx| Ok(())).err().map(|err| {
                        let is_cancelled = matches!(err, SpawnError::Cancelled(_));
                        (is_cancelled, err.to_string())
                    });
                });
                // The refusal is work that did not happen: the scope says so.
                assert_eq!(outcome, Err(GroupError::Cancelled(Cancelled::Canceled)));
                match refused {
                    Some((true, message)) => Err::<(), _>(SpawnError::Cancelled(message)),
                    Some((false, message)) => Err(SpawnError::Full(message)),
                    None => panic!("the scoped spawn was not refused"),
                }
            },
            SpawnError::Cancelled(ref message) if message == group_cancelled, group_cancelled;
        spawn_on_a_cancelled_pool: "ErrGroup::spawn on a cancelled pool" =>
            {
                let pool = small_pool("bi-egp");
                pool.context().cancel();
                let group = ErrGroup::<String>::on_pool(&Context::new(), &pool);
                group.spawn(|_ctx| Ok(())).map_err(|err| match err {
                    SpawnError::Unavailable(_) => SpawnError::Unavailable(()),
                    _ => SpawnError::Cancelled(()),
                })
            },
            SpawnError::Unavailable(()),
            "no thread is available to run the task";
        try_spawn_at_limit: "ErrGroup::try_spawn at its limit" =>
            {
                let group = new().limit(1).expect("limit");
                let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(0);
                group
                    .spawn(move |_ctx| {
                        let _ = release_rx.recv_timeout(LONG);
                        Ok(())
                    })
                    .expect("spawn");
                let full = group.try_spawn(|_ctx| Ok(())).map_err(|err| match err {
                    SpawnError::Full(_) => SpawnError::Full(()),
                    _ => SpawnError::Cancelled(()),
                });
                drop(release_tx);
                assert_eq!(group.wait(), Ok::<(), GroupError<String>>(()));
                full
            },
            SpawnError::Full(()),
            "the group is at its limit";
    }
}

/// `Semaphore` construction, and every acquire form asked too much or on
/// a closed semaphore or a done context.
mod semaphore {
    // Each bad permit count, and each acquire asked too much or too late, fails exactly.
    use super::*;

    rows! {
        given {
            let sem = || Semaphore::new(3).expect("3 permits");
            let too_many = "cannot acquire 4 permits from a semaphore of 3; ask for at most 3";
            let closed = move || {
                let sem = sem();
                sem.close();
                sem
            };
        }
        new_zero: "Semaphore::new(0)" =>
            Semaphore::new(0),
            SemaphoreError::ZeroPermits,
            "a semaphore needs at least 1 permit, got 0";
        acquire_many_past_total: "Semaphore::acquire_many(total + 1)" =>
            sem().acquire(4),
            AcquireError::TooMany {
                requested: 4,
                total: 3
            },
            too_many;
        acquire_ctx_past_total: "Semaphore::acquire_ctx(total + 1)" =>
            sem().acquire_ctx(&Context::new(), 4),
            AcquireError::TooMany {
                requested: 4,
                total: 3
            },
            too_many;
        acquire_timeout_past_total: "Semaphore::acquire_timeout(total + 1)" =>
            sem().acquire_timeout(4, LONG),
            AcquireError::TooMany {
                requested: 4,
                total: 3
            },
            too_many;
        try_acquire_past_total: "Semaphore::try_acquire(total + 1)" =>
            sem().try_acquire(4),
            AcquireError::TooMany {
                requested: 4,
                total: 3
            },
            too_many;
        acquire_many_usize_max: "Semaphore::acquire_many(usize::MAX)" =>
            sem().acquire(usize::MAX),
            AcquireError::TooMany {
                requested: usize::MAX,
                total: 3
            },
            format!(
                "cannot acquire {} permits from a semaphore of 3; ask for at most 3",
                usize::MAX
            );
        acquire_many_past_total_while_held: "Semaphore::acquire_many(total + 1) while permits are held" =>
            {
                let sem = sem();
                let _held = sem.acquire(1).expect("one permit");
                sem.acquire(4)
            },
            AcquireError::TooMany {
                requested: 4,
                total: 3
            },
            too_many;
        acquire_closed: "Semaphore::acquire on a closed semaphore" =>
            closed().acquire(1),
            AcquireError::Closed,
            "the semaphore is closed";
        acquire_many_closed: "Semaphore::acquire_many on a closed semaphore" =>
            closed().acquire(2),
            AcquireError::Closed,
            "the semaphore is closed";
        acquire_ctx_closed: "Semaphore::acquire_ctx on a closed semaphore" =>
            closed().acquire_ctx(&Context::new(), 1),
            AcquireError::Closed,
            "the semaphore is closed";
        acquire_timeout_closed: "Semaphore::acquire_timeout on a closed semaphore" =>
            closed().acquire_timeout(1, LONG),
            AcquireError::Closed,
            "the semaphore is closed";
        try_acquire_closed: "Semaphore::try_acquire on a closed semaphore" =>
            closed().try_acquire(1),
            AcquireError::Closed,
            "the semaphore is closed";
        acquire_ctx_cancelled: "Semaphore::acquire_ctx on a cancelled context" =>
            sem().acquire_ctx(&cancelled(), 1),
            AcquireError::Cancelled(Cancelled::Canceled),
            "acquire cancelled: context canceled";
        acquire_ctx_past_deadline: "Semaphore::acquire_ctx on a context past its deadline" =>
            sem().acquire_ctx(&Context::new().with_deadline(Instant::now()), 1),
            AcquireError::Cancelled(Cancelled::DeadlineExceeded),
            "acquire cancelled: context deadline exceeded";
        try_acquire_all_held: "Semaphore::try_acquire with every permit held" =>
            {
                let sem = sem();
                let _held = sem.acquire(3).expect("all permits");
                sem.try_acquire(1)
            },
            AcquireError::WouldBlock,
            "no permits available without waiting";
    }
}

/// `RateLimiter` construction and requests past the burst.
mod rate {
    // Each bad rate, burst or interval, and each request past the burst, is refused exactly.
    use super::*;

    rows! {
        given {
            let bad_rate = |got: &str| {
                format!(
                    "rate must be a finite number of tokens per second greater than 0, got {got}; \
                     use RateLimiter::unlimited() for no limit"
                )
            };
            let past_burst = "cannot take 3 tokens at once from a limiter whose burst is 2; ask for at most 2 or raise the burst";
            let limiter = || RateLimiter::new(10.0, 2).expect("a valid limiter");
        }
        new_rate_nan: "RateLimiter::new(NaN)" =>
            RateLimiter::new(f64::NAN, 1),
            RateError::InvalidRate(r) if r.is_nan(), bad_rate("NaN");
        new_rate_negative: "RateLimiter::new(-1)" =>
            RateLimiter::new(-1.0, 1),
            RateError::InvalidRate(-1.0),
            bad_rate("-1");
        new_rate_negative_zero: "RateLimiter::new(-0.0)" =>
            RateLimiter::new(-0.0, 1),
            RateError::InvalidRate(r) if r == 0.0 && r.is_sign_negative(), bad_rate("-0");
        new_rate_zero: "RateLimiter::new(0)" =>
            RateLimiter::new(0.0, 1),
            RateError::InvalidRate(0.0),
            bad_rate("0");
        new_rate_infinite: "RateLimiter::new(+inf)" =>
            RateLimiter::new(f64::INFINITY, 1),
            RateError::InvalidRate(f64::INFINITY),
            bad_rate("inf");
        new_burst_zero: "RateLimiter::new(burst 0)" =>
            RateLimiter::new(5.0, 0),
            RateError::ZeroBurst,
            "burst must be at least 1, got 0";
        new_rate_nan_burst_zero: "RateLimiter::new(NaN, burst 0) reports the rate first" =>
            RateLimiter::new(f64::NAN, 0),
            RateError::InvalidRate(r) if r.is_nan(), bad_rate("NaN");
        every_zero: "RateLimiter::every(ZERO)" =>
            RateLimiter::every(Duration::ZERO, 1),
            RateError::ZeroInterval,
            "interval must be greater than zero; use RateLimiter::unlimited() for no limit";
        every_burst_zero: "RateLimiter::every(burst 0)" =>
            RateLimiter::every(Duration::from_secs(1), 0),
            RateError::ZeroBurst,
            "burst must be at least 1, got 0";
        wait_n_past_burst: "RateLimiter::wait_n past the burst" =>
            limiter().wait(&Context::new(), 3),
            RateError::ExceedsBurst {
                requested: 3,
                burst: 2
            },
            past_burst;
        wait_n_past_burst_cancelled: "RateLimiter::wait_n past the burst on a cancelled context (burst checked first)" =>
            limiter().wait(&cancelled(), 3),
            RateError::ExceedsBurst {
                requested: 3,
                burst: 2
            },
            past_burst;
        reserve_n_past_burst: "RateLimiter::reserve_n past the burst" =>
            limiter().reserve(3),
            RateError::ExceedsBurst {
                requested: 3,
                burst: 2
            },
            past_burst;
        reserve_within_past_burst: "RateLimiter::reserve_within past the burst" =>
            limiter().reserve_within(3, LONG),
            RateError::ExceedsBurst {
                requested: 3,
                burst: 2
            },
            past_burst;
        wait_cancelled: "RateLimiter::wait on a cancelled context" =>
            limiter().wait(&cancelled(), 1),
            RateError::Cancelled(Cancelled::Canceled),
            "rate limit wait cancelled: context canceled";
    }
}

/// `Retry` and `Backoff` settings.
mod retry {
    // Each bad Retry or Backoff setting is refused with its exact RetrySettingsError.
    use super::*;

    rows! {
        given {
            let s = Duration::from_secs;
            let multiplier = |got: &str| {
                format!("backoff multiplier must be a finite number at least 1, got {got}")
            };
            let with = |backoff: Backoff| Retry::<String>::builder().backoff(backoff).build();
        }
        max_attempts_zero: "Retry max_attempts(0)" =>
            Retry::<String>::builder().max_attempts(0).build(),
            RetrySettingsError::ZeroAttempts,
            "max attempts must be at least 1, got 0";
        initial_delay_zero: "Retry zero initial delay" =>
            with(Backoff::new(Duration::ZERO, s(1))),
            RetrySettingsError::ZeroInitialDelay,
            "initial backoff delay must be greater than zero";
        max_delay_below_initial: "Retry max delay below the initial" =>
            with(Backoff::new(s(2), s(1))),
            RetrySettingsError::InvertedDelays { initial, max } if initial == s(2) && max == s(1),
            "max backoff delay must be at least the initial delay, got max 1s < initial 2s";
        multiplier_nan: "Retry multiplier NaN" =>
            with(Backoff::default().multiplier(f64::NAN)),
            RetrySettingsError::InvalidMultiplier(m) if m.is_nan(), multiplier("NaN");
        multiplier_half: "Retry multiplier 0.5" =>
            with(Backoff::default().multiplier(0.5)),
            RetrySettingsError::InvalidMultiplier(0.5),
            multiplier("0.5");
        multiplier_zero: "Retry multiplier 0" =>
            with(Backoff::default().multiplier(0.0)),
            RetrySettingsError::InvalidMultiplier(0.0),
            multiplier("0");
        multiplier_negative: "Retry multiplier -2" =>
            with(Backoff::default().multiplier(-2.0)),
            RetrySettingsError::InvalidMultiplier(-2.0),
            multiplier("-2");
        multiplier_infinite: "Retry multiplier +inf" =>
            with(Backoff::default().multiplier(f64::INFINITY)),
            RetrySettingsError::InvalidMultiplier(f64::INFINITY),
            multiplier("inf");
        backoff_initial_delay_zero: "Backoff::validate zero initial delay" =>
            Backoff::new(Duration::ZERO, s(1)).validate(),
            RetrySettingsError::ZeroInitialDelay,
            "initial backoff delay must be greater than zero";
        backoff_multiplier_below_one: "Backoff::validate multiplier 0.999" =>
            Backoff::default().multiplier(0.999).validate(),
            RetrySettingsError::InvalidMultiplier(0.999),
            multiplier("0.999");
    }
}

/// Submitting to a pool that is closed or cancelled.
mod submit {
    // Each submit to a closed or cancelled pool hands the job back with its exact error.
    use super::*;

    rows! {
        given {
            let closed = "the pool is closed and accepts no more jobs";
            let cancelled_pool = "the pool was cancelled before the job could be queued";
            let worker_pool = |name: &str| {
                WorkerPool::builder()
                    .workers(1)
                    .thread_name(name)
                    .build(|_ctx, n: u32| n)
                    .expect("build")
            };
        }
        worker_pool_submit_closed: "WorkerPool::submit after close" =>
            {
                let pool = worker_pool("bi-wc1");
                pool.close();
                pool.submit(7)
            },
            SubmitError::Closed(7),
            closed;
        worker_pool_try_submit_closed: "WorkerPool::try_submit after close" =>
            {
                let pool = worker_pool("bi-wc2");
                pool.close();
                pool.try_submit(8)
            },
            TrySubmitError::Closed(8),
            closed;
        worker_pool_submit_timeout_closed: "WorkerPool::submit_timeout after close" =>
            {
                let pool = worker_pool("bi-wc3");
                pool.close();
                pool.submit_timeout(9, LONG)
            },
            TrySubmitError::Closed(9),
            closed;
        worker_pool_submit_closed_hands_back_the_job: "WorkerPool::submit after close, job handed back" =>
            {
                let pool = worker_pool("bi-wc4");
                pool.close();
                pool.close();
                pool.submit(10)
                    .map_err(|err| SubmitError::Closed(err.into_inner()))
            },
            SubmitError::Closed(10),
            closed;
        worker_pool_submit_stopped: "WorkerPool::submit after stop" =>
            {
                let pool = worker_pool("bi-ws1");
                pool.stop();
                pool.submit(11)
            },
            SubmitError::Cancelled(11),
            cancelled_pool;
        worker_pool_try_submit_stopped: "WorkerPool::try_submit after stop" =>
            {
                let pool = worker_pool("bi-ws2");
                pool.stop();
                pool.try_submit(12)
            },
            TrySubmitError::Cancelled(12),
            cancelled_pool;
        pool_submit_cancelled: "ThreadPool::submit after its context is cancelled" =>
            {
                let pool = small_pool("bi-tc1");
                pool.context().cancel();
                pool.submit(|_ctx| 1).map(drop).map_err(|err| match err {
                    SubmitError::Cancelled(_) => SubmitError::Cancelled(()),
                    SubmitError::Closed(_) => SubmitError::Closed(()),
                })
            },
            SubmitError::Cancelled(()),
            cancelled_pool;
        pool_execute_cancelled: "ThreadPool::execute after its context is cancelled" =>
            {
                let pool = small_pool("bi-tc2");
                pool.context().cancel();
                pool.execute(|| {}).map_err(|err| match err {
                    SubmitError::Cancelled(_) => SubmitError::Cancelled(()),
                    SubmitError::Closed(_) => SubmitError::Closed(()),
                })
            },
            SubmitError::Cancelled(()),
            cancelled_pool;
        pool_try_submit_cancelled: "ThreadPool::try_submit after its context is cancelled" =>
            {
                let pool = small_pool("bi-tc3");
                pool.context().cancel();
                pool.try_submit(|_ctx| 1)
                    .map(drop)
                    .map_err(|err| err.map_job())
            },
            TrySubmitError::Cancelled(()),
            cancelled_pool;
        pool_try_execute_cancelled: "ThreadPool::try_execute after its context is cancelled" =>
            {
                let pool = small_pool("bi-tc4");
                pool.context().cancel();
                pool.try_execute(|| {}).map_err(|err| err.map_job())
            },
            TrySubmitError::Cancelled(()),
            cancelled_pool;
        pool_submit_timeout_cancelled: "ThreadPool::submit_timeout after its context is cancelled" =>
            {
                let pool = small_pool("bi-tc5");
                pool.context().cancel();
                pool.submit_timeout(|_ctx| 1, LONG)
                    .map(drop)
                    .map_err(|err| err.map_job())
            },
            TrySubmitError::Cancelled(()),
            cancelled_pool;
        pool_submit_or_run_here_cancelled: "ThreadPool::submit_or_run_here after its context is cancelled" =>
            {
                let pool = small_pool("bi-tc6");
                pool.context().cancel();
                pool.submit_or_run_here(|_ctx| 1).map(drop).map_err(|err| match err {
                    SubmitError::Cancelled(_) => SubmitError::Cancelled(()),
                    SubmitError::Closed(_) => SubmitError::Closed(()),
                })
            },
            SubmitError::Cancelled(()),
            cancelled_pool;
        pool_execute_or_run_here_cancelled: "ThreadPool::execute_or_run_here after its context is cancelled" =>
            {
                let pool = small_pool("bi-tc7");
                pool.context().cancel();
                pool.execute_or_run_here(|| {}).map_err(|err| match err {
                    SubmitError::Cancelled(_) => SubmitError::Cancelled(()),
                    SubmitError::Closed(_) => SubmitError::Closed(()),
                })
            },
            SubmitError::Cancelled(()),
            cancelled_pool;
        pool_submit_or_run_here_closed: "ThreadPool::submit_or_run_here after close" =>
            {
                let pool = small_pool("bi-tc8");
                pool.close();
                pool.submit_or_run_here(|_ctx| 1).map(drop).map_err(|err| match err {
                    SubmitError::Cancelled(_) => SubmitError::Cancelled(()),
                    SubmitError::Closed(_) => SubmitError::Closed(()),
                })
            },
            SubmitError::Closed(()),
            closed;
        pool_execute_or_run_here_closed: "ThreadPool::execute_or_run_here after close" =>
            {
                let pool = small_pool("bi-tc9");
                pool.close();
                pool.execute_or_run_here(|| {}).map_err(|err| match err {
                    SubmitError::Cancelled(_) => SubmitError::Cancelled(()),
                    SubmitError::Closed(_) => SubmitError::Closed(()),
                })
            },
            SubmitError::Closed(()),
            closed;
        join_after_join_timeout: "JobHandle::join after join_timeout took the result" =>
            {
                let pool = small_pool("bi-jh");
                let mut handle = pool.submit(|_ctx| 5_u8).expect("submit");
                assert_eq!(handle.join_timeout(LONG), Some(Ok(5)));
                handle.join()
            },
            JobError::AlreadyJoined,
            "the job's result was already taken by an earlier join_timeout";
    }
}

/// Drops the job from a `TrySubmitError`, keeping the variant.
trait MapJob {
    fn map_job(self) -> TrySubmitError<()>;
}

impl<F> MapJob for TrySubmitError<F> {
    fn map_job(self) -> TrySubmitError<()> {
        match self {
            Self::Full(_) => TrySubmitError::Full(()),
            Self::Closed(_) => TrySubmitError::Closed(()),
            Self::Cancelled(_) => TrySubmitError::Cancelled(()),
        }
    }
}

/// Documented leniencies: accepted, with the documented meaning.
mod lenient {
    use super::*;

    #[test]
    fn chunk_size_zero_is_one() {
        // A chunk size of 0 is taken as 1: one job per item, results intact.
        check("Map::chunk_size(0) is taken as 1", || {
            let pool = small_pool("bi-map");
            let before = pool.stats().submitted;
            let out: Vec<u32> = pool
                .map(0..10_u32, |n| n * 2)
                .chunk_size(0)
                .collect::<Result<_, _>>()
                .map_err(|err| format!("the map failed: {err}"))?;
            if out != (0..10).map(|n| n * 2).collect::<Vec<_>>() {
                return Err(format!("wrong results {out:?}"));
            }
            // One job per item: chunks of one.
            match pool.stats().submitted - before {
                10 => Ok(()),
                jobs => Err(format!("10 items went as {jobs} jobs, not 10 chunks of 1")),
            }
        });
    }

    #[test]
    fn window_zero_is_one_chunk() {
        // A window of 0 is taken as one chunk: every item still comes back.
        check("Map::window(0) is taken as one chunk", || {
            let pool = small_pool("bi-mapw");
            let out: Vec<u32> = pool
                .map_unordered(0..50_u32, |n| n + 1)
                .chunk_size(4)
                .window(0)
                .collect::<Result<_, _>>()
                .map_err(|err| format!("the map failed: {err}"))?;
            match out.iter().sum::<u32>() {
                1275 => Ok(()),
                sum => Err(format!("wrong results, sum {sum}")),
            }
        });
    }

    #[test]
    fn try_acquire_n_past_burst_takes_nothing() {
        // try_acquire_n past the burst is false and leaves every token in place.
        check(
            "RateLimiter::try_acquire_n past the burst is false, and takes nothing",
            || {
                let limiter = RateLimiter::new(1.0, 2).expect("a valid limiter");
                if limiter.try_acquire(3) {
                    return Err("3 tokens granted from a burst of 2".to_owned());
                }
                match limiter.try_acquire(2) {
                    true => Ok(()),
                    false => Err("the refused request took tokens".to_owned()),
                }
            },
        );
    }

    #[test]
    fn acquire_zero_on_closed_holds_nothing() {
        // acquire_many(0) on a closed semaphore succeeds and holds no permit.
        check(
            "Semaphore::acquire_many(0) on a closed semaphore holds nothing",
            || {
                let sem = Semaphore::new(1).expect("1 permit");
                sem.close();
                let got = sem.acquire(0);
                match got {
                    Ok(permit) if permit.count() == 0 => Ok(()),
                    other => Err(format!("acquire_many(0) gave {other:?}")),
                }
            },
        );
    }
}

/// Delayed jobs and schedules: a zero or absurd period, a due time past the
/// clock's range, a closed or cancelled pool. The closure comes back in
/// every error; `refuse` keeps only the variant, as `map_job` does.
mod schedule {
    // Each bad period or delay, and each schedule on a closed or cancelled pool, is refused
    // with its exact ScheduleError and message.
    use super::*;
    use brigade::{Every, ScheduleError};

    /// Drops the closure and the handle, keeping the variant.
    fn refuse<T, F>(result: Result<T, ScheduleError<F>>) -> Result<(), ScheduleError<()>> {
        result.map(drop).map_err(|err| match err {
            ScheduleError::ZeroPeriod(_) => ScheduleError::ZeroPeriod(()),
            ScheduleError::PeriodTooLong(_) => ScheduleError::PeriodTooLong(()),
            ScheduleError::TooFar(_) => ScheduleError::TooFar(()),
            ScheduleError::Closed(_) => ScheduleError::Closed(()),
            ScheduleError::Cancelled(_) => ScheduleError::Cancelled(()),
            ScheduleError::NoTimer(_) => ScheduleError::NoTimer(()),
        })
    }

    rows! {
        given {
            let ok = |_ctx: &Context| Ok::<(), String>(());
            let job = |_ctx: &Context| 1_u8;
            let zero = "a schedule's period must not be zero";
            let too_long = "a schedule's period must be at most a year (Every::MAX_PERIOD)";
            let too_far = "the delay is too long: its due time is past what the clock can represent";
            let closed = "the pool is closed and accepts no more jobs";
            let cancelled_pool = "the pool was cancelled before the job could be scheduled";
        }
        schedule_rate_zero_period: "ThreadPool::schedule(Every::rate(0))" =>
            refuse(small_pool("bi-sc1").schedule(Every::rate(Duration::ZERO), ok)),
            ScheduleError::ZeroPeriod(()),
            zero;
        schedule_delay_zero_period: "ThreadPool::schedule(Every::delay(0))" =>
            refuse(small_pool("bi-sc2").schedule(Every::delay(Duration::ZERO), ok)),
            ScheduleError::ZeroPeriod(()),
            zero;
        schedule_period_over_a_year: "ThreadPool::schedule(Every::rate(MAX_PERIOD + 1 ns))" =>
            refuse(small_pool("bi-sc3").schedule(
                Every::rate(Every::MAX_PERIOD + Duration::from_nanos(1)),
                ok,
            )),
            ScheduleError::PeriodTooLong(()),
            too_long;
        schedule_period_max: "ThreadPool::schedule(Every::delay(Duration::MAX))" =>
            refuse(small_pool("bi-sc4").schedule(Every::delay(Duration::MAX), ok)),
            ScheduleError::PeriodTooLong(()),
            too_long;
        schedule_first_after_too_far: "ThreadPool::schedule(first_after(Duration::MAX))" =>
            refuse(small_pool("bi-sc5").schedule(
                Every::rate(Duration::from_secs(1)).first_after(Duration::MAX),
                ok,
            )),
            ScheduleError::TooFar(()),
            too_far;
        schedule_after_too_far: "ThreadPool::schedule_after(Duration::MAX)" =>
            refuse(small_pool("bi-sc6").schedule_after(Duration::MAX, job)),
            ScheduleError::TooFar(()),
            too_far;
        schedule_after_closed: "ThreadPool::schedule_after after close" =>
            {
                let pool = small_pool("bi-sc7");
                pool.close();
                refuse(pool.schedule_after(Duration::ZERO, job))
            },
            ScheduleError::Closed(()),
            closed;
        schedule_at_closed: "ThreadPool::schedule_at after close" =>
            {
                let pool = small_pool("bi-sc8");
                pool.close();
                refuse(pool.schedule_at(Instant::now(), job))
            },
            ScheduleError::Closed(()),
            closed;
        schedule_closed: "ThreadPool::schedule after close" =>
            {
                let pool = small_pool("bi-sc9");
                pool.close();
                refuse(pool.schedule(Every::rate(Duration::from_secs(1)), ok))
            },
            ScheduleError::Closed(()),
            closed;
        schedule_closed_hands_back_the_closure: "ThreadPool::schedule_after after close, closure handed back" =>
            {
                let pool = small_pool("bi-sc10");
                pool.close();
                pool.schedule_after(Duration::ZERO, |_ctx: &Context| 42_u8)
                    .map(drop)
                    .map_err(|err| match err {
                        ScheduleError::Closed(f) => ScheduleError::Closed(f(&Context::new())),
                        other => ScheduleError::NoTimer(other.into_inner()(&Context::new())),
                    })
            },
            ScheduleError::Closed(42),
            closed;
        schedule_after_cancelled: "ThreadPool::schedule_after after its context is cancelled" =>
            {
                let pool = small_pool("bi-sc11");
                pool.context().cancel();
                refuse(pool.schedule_after(Duration::ZERO, job))
            },
            ScheduleError::Cancelled(()),
            cancelled_pool;
        schedule_at_cancelled: "ThreadPool::schedule_at on a pool built under a cancelled context" =>
            {
                let pool = ThreadPool::builder()
                    .workers(1)
                    .thread_name("bi-sc12")
                    .context(&cancelled())
                    .build()
                    .expect("build");
                refuse(pool.schedule_at(Instant::now(), job))
            },
            ScheduleError::Cancelled(()),
            cancelled_pool;
        schedule_cancelled: "ThreadPool::schedule after its context is cancelled" =>
            {
                let pool = small_pool("bi-sc13");
                pool.context().cancel();
                refuse(pool.schedule(Every::delay(Duration::from_millis(1)), ok))
            },
            ScheduleError::Cancelled(()),
            cancelled_pool;
    }

    #[test]
    fn period_of_exactly_a_year_is_accepted() {
        // Every::MAX_PERIOD itself is a valid period: the bound is inclusive.
        check("ThreadPool::schedule(Every::rate(MAX_PERIOD))", || {
            let pool = small_pool("bi-sc14");
            let schedule = pool
                .schedule(Every::rate(Every::MAX_PERIOD), |_ctx: &Context| {
                    Ok::<(), String>(())
                })
                .map_err(|err| format!("refused: {err}"))?;
            match schedule.is_active() {
                true => Ok(()),
                false => Err(format!("not active: {schedule:?}")),
            }
        });
    }

    #[test]
    fn due_time_already_past_runs_at_once() {
        // A due time in the past is documented as due at once: the job runs.
        check(
            "ThreadPool::schedule_at(a past instant) runs at once",
            || {
                let pool = small_pool("bi-sc15");
                let past = Instant::now();
                let handle = pool
                    .schedule_at(past, |_ctx: &Context| 3_u8)
                    .map_err(|err| format!("refused: {err}"))?;
                match handle.join() {
                    Ok(3) => Ok(()),
                    other => Err(format!("got {other:?}")),
                }
            },
        );
    }
}
