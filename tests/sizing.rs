//! Sizing and builder validation: Little's Law, the exact messages of every
//! sizing and build error, and pools built from each `Sizing`.
//!
//! `BRIGADE_WORKERS` is tested in `sizing_env.rs`, alone, because it changes
//! the process environment.

mod common;

use std::time::Duration;

use brigade::sizing::{self, MAX_WORKERS};
use brigade::{BuildError, MAX_QUEUE_CAPACITY, Sizing, SizingError, ThreadPool};

use common::{LONG, with_timeout};

/// The message of the error that `builder` fails to build with.
fn build_error(builder: brigade::ThreadPoolBuilder) -> String {
    match builder.build() {
        Ok(pool) => panic!("built a pool that should be rejected: {pool:?}"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn io_bound_is_littles_law() {
    // io_bound is ⌈throughput × latency⌉, at least 1.
    assert_eq!(sizing::io_bound(500.0, Duration::from_millis(200)), Ok(100));
    assert_eq!(sizing::io_bound(10.0, Duration::from_millis(250)), Ok(3));
    assert_eq!(sizing::io_bound(0.5, Duration::from_millis(1)), Ok(1));
    assert_eq!(sizing::io_bound(1000.0, Duration::from_secs(2)), Ok(2000));
}

#[test]
fn io_bound_rejects_bad_throughput() {
    // NaN, negative, infinite and zero throughputs are errors that say what
    // to fix.
    let latency = Duration::from_millis(200);
    let message = |rate: f64| sizing::io_bound(rate, latency).unwrap_err().to_string();
    assert_eq!(
        message(f64::NAN),
        "throughput must be a finite number of jobs per second greater than 0, got NaN"
    );
    assert_eq!(
        message(-2.5),
        "throughput must be a finite number of jobs per second greater than 0, got -2.5"
    );
    assert_eq!(
        message(f64::INFINITY),
        "throughput must be a finite number of jobs per second greater than 0, got inf"
    );
    assert_eq!(
        message(f64::NEG_INFINITY),
        "throughput must be a finite number of jobs per second greater than 0, got -inf"
    );
    assert_eq!(
        message(0.0),
        "throughput must be a finite number of jobs per second greater than 0, got 0"
    );
    assert!(matches!(
        sizing::io_bound(0.0, latency),
        Err(SizingError::InvalidThroughput(_))
    ));
}

#[test]
fn io_bound_rejects_zero_latency() {
    // A zero latency is an error with its own message.
    let err = sizing::io_bound(100.0, Duration::ZERO).unwrap_err();
    assert_eq!(err, SizingError::ZeroLatency);
    assert_eq!(err.to_string(), "latency must be greater than zero");
}

#[test]
fn io_bound_rejects_too_many_workers() {
    // A Little's Law result beyond MAX_WORKERS is an error, not a huge pool.
    let err = sizing::io_bound(1e9, Duration::from_secs(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "worker count must be at most 32768, got 1000000000"
    );
    assert_eq!(MAX_WORKERS, 32_768);
}

#[test]
fn cpu_and_mixed_sizes() {
    // cpu_bound is at least 1 and mixed is twice it.
    let cpus = sizing::cpu_bound();
    assert!(cpus >= 1);
    assert_eq!(sizing::mixed(), (2 * cpus).min(MAX_WORKERS));
    assert_eq!(Sizing::Mixed.workers(), Ok(sizing::mixed()));
    assert_eq!(Sizing::Fixed(7).workers(), Ok(7));
}

#[test]
fn zero_workers_is_a_build_error() {
    // workers(0) fails in build() with a message that says what to fix.
    let err = ThreadPool::builder().workers(0).build().unwrap_err();
    assert!(matches!(err, BuildError::Sizing(SizingError::ZeroWorkers)));
    assert_eq!(err.to_string(), "worker count must be at least 1, got 0");
}

#[test]
fn too_many_workers_is_a_build_error() {
    // More than MAX_WORKERS workers fails in build().
    assert_eq!(
        build_error(ThreadPool::builder().workers(MAX_WORKERS + 1)),
        "worker count must be at most 32768, got 32769"
    );
}

#[test]
fn zero_stack_size_is_a_build_error() {
    // stack_size(0) fails in build().
    let err = ThreadPool::builder()
        .workers(1)
        .stack_size(0)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::ZeroStackSize));
    assert_eq!(err.to_string(), "stack size must be greater than 0 bytes");
}

#[test]
fn zero_job_timeout_is_a_build_error() {
    // job_timeout(ZERO) fails in build().
    assert_eq!(
        build_error(ThreadPool::builder().workers(1).job_timeout(Duration::ZERO)),
        "job timeout must be greater than zero; leave job_timeout unset for no per-job deadline"
    );
}

#[test]
fn huge_queue_capacity_is_a_build_error() {
    // A queue capacity beyond MAX_QUEUE_CAPACITY fails in build().
    assert_eq!(MAX_QUEUE_CAPACITY, 1 << 20);
    assert_eq!(
        build_error(ThreadPool::builder().workers(1).queue_capacity(usize::MAX)),
        "queue capacity must be at most 1048576, got 18446744073709551615; \
         use unbounded_queue() for no limit"
    );
    assert_eq!(
        build_error(
            ThreadPool::builder()
                .workers(1)
                .queue_capacity(MAX_QUEUE_CAPACITY + 1)
        ),
        "queue capacity must be at most 1048576, got 1048577; use unbounded_queue() for no limit"
    );
}

#[test]
fn nul_in_thread_name_is_a_build_error() {
    // A thread name with a NUL byte fails in build().
    let err = ThreadPool::builder()
        .workers(1)
        .thread_name("bad\0name")
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::InvalidThreadName(_)));
    assert_eq!(
        err.to_string(),
        r#"thread name must not contain NUL bytes, got "bad\0name""#
    );
}

#[test]
fn bad_io_sizing_is_a_build_error() {
    // Sizing::IoBound with bad inputs fails in build() with the sizing message.
    let builder = ThreadPool::builder().sizing(Sizing::IoBound {
        throughput_per_sec: f64::NAN,
        latency: Duration::from_millis(10),
    });
    assert_eq!(
        build_error(builder),
        "throughput must be a finite number of jobs per second greater than 0, got NaN"
    );
    let builder = ThreadPool::builder().sizing(Sizing::IoBound {
        throughput_per_sec: 10.0,
        latency: Duration::ZERO,
    });
    assert_eq!(build_error(builder), "latency must be greater than zero");
}

#[test]
fn io_sizing_builds_that_many_workers() {
    // Sizing::IoBound { 500/s, 20 ms } builds a pool of ⌈500 × 0.02⌉ = 10
    // workers.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .sizing(Sizing::IoBound {
                throughput_per_sec: 500.0,
                latency: Duration::from_millis(20),
            })
            .build()
            .expect("build");
        assert_eq!(pool.stats().workers, 10);
        pool.join();
    });
}

#[test]
fn fixed_and_mixed_sizing_build_that_many_workers() {
    // Sizing::Fixed(n) and Sizing::Mixed build pools of the size they name.
    with_timeout(LONG, || {
        let fixed = ThreadPool::builder()
            .sizing(Sizing::Fixed(3))
            .build()
            .expect("build");
        assert_eq!(fixed.stats().workers, 3);
        fixed.join();
        let mixed = ThreadPool::builder()
            .sizing(Sizing::Mixed)
            .build()
            .expect("build");
        assert_eq!(mixed.stats().workers, sizing::mixed());
        mixed.join();
    });
}

#[test]
fn valid_edge_settings_build() {
    // The smallest valid settings build: one worker, a rendezvous queue, an
    // unbounded queue, a 1 ns job timeout.
    with_timeout(LONG, || {
        for builder in [
            ThreadPool::builder().workers(1).queue_capacity(0),
            ThreadPool::builder().workers(1).unbounded_queue(),
            ThreadPool::builder()
                .workers(1)
                .job_timeout(Duration::from_nanos(1)),
        ] {
            let pool = builder.build().expect("valid settings build");
            assert_eq!(pool.stats().workers, 1);
            pool.join();
        }
    });
}
