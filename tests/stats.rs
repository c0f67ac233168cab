//! `Stats` latencies, sampling, rates and `Display`: run times and queue
//! waits are recorded with plausible values, jobs are sampled (all of a
//! pool's first 1,024, then one in 16, every one while an `on_job_done` hook
//! is set), throughput and utilisation move after a busy period, the
//! one-line `Display` names every piece, and `WorkerPool` and pipeline
//! stages report latencies too.
//!
//! Durations are only ever bounded from below (a job that sleeps 2 ms ran
//! at least about that long), or from above by seconds, so a loaded machine
//! cannot fail these tests.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use brigade::{Context, Latencies, Pipeline, Stats, ThreadPool, WorkerPool};
use crossbeam_channel::RecvTimeoutError;

use common::{Gate, LONG, occupy_worker, wait_until, with_timeout};

/// Jobs every pool times before it samples one in [`SAMPLE_EVERY`].
const SAMPLE_ALL_FIRST: u64 = 1024;
/// One job in this many is timed after the first [`SAMPLE_ALL_FIRST`].
const SAMPLE_EVERY: u64 = 16;

/// How many of a pool's first `jobs` jobs are timed, by the documented rule
/// (by submission sequence number: every one below 1,024, then every
/// sixteenth).
fn expected_samples(jobs: u64) -> u64 {
    (0..jobs)
        .filter(|seq| *seq < SAMPLE_ALL_FIRST || seq % SAMPLE_EVERY == 0)
        .count() as u64
}

/// Waits until `pool` has finished `jobs` jobs and timed at least `samples`
/// of them (the timing is recorded just after a job hands its result over),
/// and returns that snapshot.
fn settled(pool: &ThreadPool, jobs: u64, samples: u64) -> Stats {
    assert!(
        wait_until(LONG, || {
            let stats = pool.stats();
            stats.completed + stats.failed == jobs && stats.run_time.samples >= samples
        }),
        "the pool did not finish and time its jobs: {}",
        pool.stats()
    );
    pool.stats()
}

/// Runs 20 jobs that each sleep `each` on their context, on a fresh
/// two-worker pool named `name`; returns the pool and its settled stats.
fn twenty_sleeps(name: &str, each: Duration) -> (ThreadPool, Stats) {
    let pool = ThreadPool::builder()
        .workers(2)
        .thread_name(name)
        .build()
        .unwrap();
    let handles: Vec<_> = (0..20)
        .map(|_| pool.submit(move |ctx: &Context| ctx.sleep(each)).unwrap())
        .collect();
    for handle in handles {
        assert_eq!(handle.join(), Ok(Ok(())));
    }
    let stats = settled(&pool, 20, 20);
    (pool, stats)
}

#[test]
fn run_time_is_recorded() {
    // Jobs that sleep 2 ms on their context show a run-time p50 of about
    // 2 ms (bucket midpoints are within an eighth), and every job is a
    // sample while the pool is young.
    with_timeout(LONG, || {
        let (pool, stats) = twenty_sleeps("strun", Duration::from_millis(2));
        let run = stats.run_time;
        assert_eq!(run.samples, 20, "{stats}");
        assert!(run.p50 >= Duration::from_micros(1_700), "{run:?}");
        assert!(run.p50 <= Duration::from_secs(5), "{run:?}");
        assert!(run.p50 <= run.p90 && run.p90 <= run.p99, "{run:?}");
        assert!(run.p99 <= run.max, "{run:?}");
        assert!(run.max >= Duration::from_millis(2), "{run:?}");
        assert_eq!(stats.queue_wait.samples, 20, "{stats}");
        pool.join();
    });
}

#[test]
fn queue_wait_grows_behind_a_held_worker() {
    // Jobs queued behind a gate-held worker wait at least as long as the
    // test held them, measured on the test's side with `Instant`.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(1)
            .thread_name("stwait")
            .build()
            .unwrap();
        let gate = Gate::new();
        let blocker = occupy_worker(&pool, &gate);
        let queued: Vec<_> = (0..3)
            .map(|n| pool.submit(move |_: &Context| n).unwrap())
            .collect();
        let held_since = Instant::now();
        // Hold them for 20 ms, checking all along that they stay queued.
        while held_since.elapsed() < Duration::from_millis(20) {
            let stats = pool.stats();
            assert_eq!((stats.queued, stats.busy), (3, 1), "{stats}");
        }
        let held = held_since.elapsed();
        gate.open();
        assert_eq!(blocker.join(), Ok(()));
        for (n, handle) in queued.into_iter().enumerate() {
            assert_eq!(handle.join(), Ok(n));
        }
        let stats = settled(&pool, 4, 4);
        assert_eq!(stats.queue_wait.samples, 4, "{stats}");
        assert!(
            stats.queue_wait.max >= held,
            "queue_wait.max {:?} < held {held:?}",
            stats.queue_wait.max
        );
        // Three of four samples waited the whole hold: p90 is one of them
        // (a bucket midpoint, within an eighth of it).
        assert!(
            stats.queue_wait.p90 >= held.mul_f64(0.8),
            "queue_wait.p90 {:?} for a hold of {held:?}",
            stats.queue_wait.p90
        );
        pool.join();
    });
}

#[test]
fn samples_all_first_then_one_in_sixteen() {
    // After 5,000 tiny jobs, 1,024 + (5,000 − 1,024) / 16 of them were
    // timed (give or take a few), for both latency kinds.
    with_timeout(LONG, || {
        const JOBS: u64 = 5_000;
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("stsamp")
            .build()
            .unwrap();
        for _ in 0..JOBS {
            pool.execute(|| {}).unwrap();
        }
        let want = SAMPLE_ALL_FIRST + (JOBS - SAMPLE_ALL_FIRST) / SAMPLE_EVERY;
        let slack = 4;
        let stats = settled(&pool, JOBS, want - slack);
        assert_eq!(expected_samples(JOBS), 1_273);
        for (kind, latencies) in [("run", stats.run_time), ("wait", stats.queue_wait)] {
            assert!(
                (want - slack..=want + slack).contains(&latencies.samples),
                "{kind} samples {} not within {want} ± {slack}",
                latencies.samples
            );
        }
        assert_eq!(stats.completed, JOBS);
        pool.join();
    });
}

#[test]
fn hook_makes_every_job_a_sample() {
    // With an `on_job_done` hook set, every one of 5,000 jobs is timed.
    with_timeout(LONG, || {
        const JOBS: u64 = 5_000;
        let seen = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&seen);
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("sthook")
            .on_job_done(move |_| {
                count.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        for _ in 0..JOBS {
            pool.execute(|| {}).unwrap();
        }
        let stats = settled(&pool, JOBS, JOBS);
        assert_eq!(stats.run_time.samples, JOBS, "{stats}");
        assert_eq!(stats.queue_wait.samples, JOBS, "{stats}");
        pool.join();
        assert_eq!(seen.load(Ordering::SeqCst), JOBS);
    });
}

#[test]
fn record_latencies_off_keeps_only_counts() {
    // With record_latencies(false), no job is timed (no samples, zero
    // percentiles, zero utilisation) but every count is kept.
    with_timeout(LONG, || {
        const JOBS: u64 = 2_000;
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("stnolat")
            .record_latencies(false)
            .build()
            .unwrap();
        for _ in 0..JOBS {
            pool.execute(|| {}).unwrap();
        }
        assert!(wait_until(LONG, || pool.stats().completed == JOBS));
        let stats = pool.stats();
        assert_eq!((stats.submitted, stats.failed), (JOBS, 0), "{stats}");
        assert_eq!(stats.run_time, Latencies::default(), "{stats}");
        assert_eq!(stats.queue_wait, Latencies::default(), "{stats}");
        assert_eq!(stats.utilisation, 0.0, "{stats}");
        pool.join();
    });
}

#[test]
fn throughput_and_utilisation_after_a_busy_period() {
    // After about half a second of both workers running 3 ms jobs,
    // throughput is positive and utilisation is in (0, 1].
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("strate")
            .build()
            .unwrap();
        let fresh = pool.stats();
        assert_eq!(fresh.throughput, 0.0, "{fresh}");
        assert_eq!(fresh.utilisation, 0.0, "{fresh}");
        let started = Instant::now();
        let mut handles = Vec::new();
        while started.elapsed() < Duration::from_millis(500) || handles.len() < 20 {
            handles.push(
                pool.submit(|ctx: &Context| ctx.sleep(Duration::from_millis(3)))
                    .unwrap(),
            );
        }
        let jobs = handles.len() as u64;
        for handle in handles {
            assert_eq!(handle.join(), Ok(Ok(())));
        }
        let stats = settled(&pool, jobs, jobs.min(SAMPLE_ALL_FIRST));
        assert!(stats.throughput > 0.0, "{stats}");
        assert!(stats.throughput.is_finite(), "{stats}");
        assert!(
            stats.utilisation > 0.0 && stats.utilisation <= 1.0,
            "{stats}"
        );
        pool.join();
    });
}

/// Set in the environment of a child process that runs one scenario.
const SCENARIO_ENV: &str = "BRIGADE_STATS_SCENARIO";

/// Runs the `#[ignore]`d test `name` alone in a fresh process (this test
/// binary, re-executed), for scenarios about a young process; panics with
/// its output if it fails.
fn run_in_fresh_process(name: &str) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let output = std::process::Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            name,
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SCENARIO_ENV, name)
        .output()
        .expect("re-run the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("1 passed"),
        "scenario {name} failed in a fresh process:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn throughput_after_a_short_burst() {
    // A burst of jobs early in a process's life still shows a positive
    // throughput and utilisation when stats are read right after it: the
    // window covers the pool's life when that is shorter than 5 s.
    with_timeout(LONG, || run_in_fresh_process("short_burst_scenario"));
}

#[test]
#[ignore = "run in a fresh process by throughput_after_a_short_burst"]
fn short_burst_scenario() {
    // Run directly (not by its parent test), the process is not young.
    if std::env::var_os(SCENARIO_ENV).is_none() {
        return;
    }
    let (pool, stats) = twenty_sleeps("stburst", Duration::from_millis(1));
    assert!(stats.throughput > 0.0, "{stats}");
    assert!(stats.utilisation > 0.0, "{stats}");
    pool.join();
}

#[test]
fn display_of_a_fresh_pool_is_exact() {
    // A pool that ran nothing prints every counter as zero on one line.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("stfresh")
            .build()
            .unwrap();
        assert_eq!(
            pool.stats().to_string(),
            "workers=2 busy=0 queued=0 submitted=0 completed=0 failed=0 (panicked=0 timed_out=0) \
             cancelled=0 respawned=0 expired=0 | 0 jobs/s, 0% busy | wait p50 0.0ns p90 0.0ns p99 0.0ns \
             max 0.0ns | run p50 0.0ns p90 0.0ns p99 0.0ns max 0.0ns"
        );
        assert_eq!(
            Latencies::default().to_string(),
            "p50 0.0ns p90 0.0ns p99 0.0ns max 0.0ns"
        );
        pool.join();
    });
}

#[test]
fn display_names_every_piece() {
    // After some work the one-line `Display` shows the worker count, the
    // counters, jobs/s, % busy and both latency summaries.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(3)
            .thread_name("stdisp")
            .build()
            .unwrap();
        let handles: Vec<_> = (0..10)
            .map(|_| {
                pool.submit(|ctx: &Context| ctx.sleep(Duration::from_millis(1)))
                    .unwrap()
            })
            .collect();
        for handle in handles {
            assert_eq!(handle.join(), Ok(Ok(())));
        }
        let line = settled(&pool, 10, 10).to_string();
        assert!(!line.contains('\n'), "{line}");
        for piece in [
            "workers=3 ",
            "submitted=10 ",
            "completed=10 ",
            "failed=0 (panicked=0 timed_out=0) ",
            "cancelled=0 ",
            " jobs/s, ",
            "% busy | wait p50 ",
            " | run p50 ",
            " p90 ",
            " p99 ",
            " max ",
        ] {
            assert!(line.contains(piece), "{piece:?} missing from {line:?}");
        }
        // The run p50 of 1 ms sleeps prints in milliseconds.
        let run = line.split(" | run ").nth(1).unwrap();
        assert!(run.starts_with("p50 ") && run.contains("ms"), "{run:?}");
        pool.join();
    });
}

#[test]
fn worker_pool_records_latencies() {
    // A `WorkerPool` whose handler sleeps 2 ms reports run times of at
    // least that, queue waits, a throughput and a one-line `Display`.
    with_timeout(LONG, || {
        let pool = WorkerPool::builder()
            .workers(2)
            .thread_name("stwp")
            .build(|ctx: &Context, n: u64| {
                ctx.sleep(Duration::from_millis(2)).unwrap();
                n * 2
            })
            .unwrap();
        for n in 0..30 {
            pool.submit(n).unwrap();
        }
        pool.close();
        let mut sum = 0;
        loop {
            match pool.results().recv_timeout(LONG) {
                Ok(output) => sum += output.result.unwrap(),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("no result within {LONG:?}"),
            }
        }
        assert_eq!(sum, (0..30).map(|n| n * 2).sum::<u64>());
        let stats = pool.stats();
        assert_eq!((stats.submitted, stats.completed), (30, 30), "{stats}");
        assert_eq!(stats.run_time.samples, 30, "{stats}");
        assert_eq!(stats.queue_wait.samples, 30, "{stats}");
        assert!(
            stats.run_time.p50 >= Duration::from_micros(1_700),
            "{stats}"
        );
        assert!(stats.run_time.max >= Duration::from_millis(2), "{stats}");
        assert!(stats.throughput > 0.0, "{stats}");
        // The channel disconnects as the last worker lets go of its sender,
        // a moment before it is counted out.
        assert!(wait_until(LONG, || pool
            .stats()
            .to_string()
            .starts_with("workers=0 ")));
        assert!(pool.join().is_empty());
    });
}

#[test]
fn pipeline_stages_record_run_times() {
    // Each pipeline stage reports run times: the stage that sleeps 2 ms per
    // item shows a p50 of at least about that, the pass-through stage less.
    with_timeout(LONG, || {
        const ITEMS: u64 = 40;
        const WORKERS: u64 = 2;
        let out = Pipeline::<u64, u64, ()>::new(&Context::new())
            .stage("stslow", WORKERS as usize, |ctx: &Context, n: u64| {
                ctx.sleep(Duration::from_millis(2)).unwrap();
                Ok(n)
            })
            .stage("stpass", WORKERS as usize, |_: &Context, n: u64| Ok(n + 1))
            .build()
            .expect("valid pipeline")
            .run(0..ITEMS)
            .unwrap();
        assert_eq!(out.outputs.len() as u64, ITEMS);
        let [slow, pass] = &out.stages[..] else {
            panic!("two stages, got {:?}", out.stages);
        };
        assert_eq!(
            (slow.name.as_str(), pass.name.as_str()),
            ("stslow", "stpass")
        );
        for stage in [slow, pass] {
            let stats = &stage.stats;
            assert_eq!(stats.completed, ITEMS, "{}: {stats}", stage.name);
            // Read as the run ends: each worker may still be one timing
            // behind the item it just handed on.
            let samples = stats.run_time.samples;
            assert!(
                (ITEMS - WORKERS..=ITEMS).contains(&samples),
                "{}: {samples} run-time samples for {ITEMS} items",
                stage.name
            );
        }
        assert!(
            slow.stats.run_time.p50 >= Duration::from_micros(1_700),
            "{}",
            slow.stats
        );
        assert!(
            pass.stats.run_time.p50 < slow.stats.run_time.p50,
            "pass {} vs slow {}",
            pass.stats,
            slow.stats
        );
    });
}
