//! `Sizing::Adaptive`: the pool starts at the CPU count within its bounds;
//! its `{name}-ctl` controller grows it well past the CPU count for jobs
//! that wait, not far past it for jobs that compute, shrinks it gradually
//! back toward `min` when the load stops, never leaves `[min, max]`, and
//! lives exactly as long as the pool; bad bounds are exact errors.
//!
//! The controller reacts to timing, so these tests wait for what must
//! happen *eventually* (with `wait_until` and generous limits) and bound
//! durations only from below. The load tests share one lock: the
//! controller reads this process's CPU use, which a CPU-bound test running
//! beside an I/O-bound one would disturb. One test loads the machine from
//! outside on purpose: `compute_jobs_beside_a_cpu_hog_do_not_grow_far`
//! re-runs this binary as a CPU hog (`cpu_hog_scenario`) in a second
//! process, killed when the test ends.

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use brigade::sizing::{MAX_WORKERS, cpu_bound};
use brigade::{BuildError, Context, Sizing, SizingError, ThreadPool, WorkerPool};
use parking_lot::Mutex;

use common::{LONG, thread_names, threads_named, wait_until, with_timeout};

/// Held by each load test, so only one loads the process at a time.
static LOAD: Mutex<()> = Mutex::new(());

/// How long a pool may take to grow or shrink as the tests expect: the
/// controller acts every 100 ms, so this is dozens of its steps.
const ADAPT: Duration = Duration::from_secs(8);

/// How many live threads are named exactly `name`.
fn threads_called(name: &str) -> usize {
    thread_names().iter().filter(|n| *n == name).count()
}

/// The fewest and the most workers a pool was seen with, sampled every
/// millisecond by [`watch`]. Start `min` at `usize::MAX`.
#[derive(Debug, Default)]
struct Seen {
    max: usize,
    min: usize,
}

/// The worker counts a test saw, as (milliseconds since its start,
/// workers) at each change: printed when an expectation fails.
#[derive(Debug, Default)]
struct Trace(Vec<(u128, usize)>);

impl Trace {
    fn note(&mut self, start: Instant, workers: usize) {
        if self.0.last().is_none_or(|&(_, last)| last != workers) {
            self.0.push((start.elapsed().as_millis(), workers));
        }
    }

    fn max(&self) -> usize {
        self.0.iter().map(|&(_, n)| n).max().unwrap_or(0)
    }
}

/// Samples `workers()` until `done(workers)` holds or `limit` passes,
/// widening `seen`; returns whether `done` held.
fn watch(
    limit: Duration,
    seen: &mut Seen,
    workers: impl Fn() -> usize,
    mut done: impl FnMut(usize) -> bool,
) -> bool {
    wait_until(limit, || {
        let n = workers();
        seen.max = seen.max.max(n);
        seen.min = seen.min.min(n);
        done(n)
    })
}

/// An adaptive pool named `name`, with a short queue so a producer keeps
/// it full.
fn adaptive(name: &str, min: usize, max: usize) -> ThreadPool {
    ThreadPool::builder()
        .sizing(Sizing::Adaptive { min, max })
        .queue_capacity(32)
        .thread_name(name)
        .build()
        .unwrap()
}

/// Keeps `pool`'s queue full of `job`s until `stop` is set; returns how
/// many it submitted.
fn produce<F>(pool: &ThreadPool, stop: &AtomicBool, job: F) -> u64
where
    F: Fn(&Context) + Clone + Send + 'static,
{
    let mut submitted = 0;
    while !stop.load(Ordering::SeqCst) {
        let job = job.clone();
        // A queue full for a whole second means the pool is stuck.
        match pool.submit_timeout(move |ctx: &Context| job(ctx), Duration::from_secs(1)) {
            Ok(_handle) => submitted += 1,
            Err(err) => panic!("the producer could not submit: {err}"),
        }
    }
    submitted
}

/// A job that waits 5 ms on its context, as one waiting on I/O would.
fn waits(ctx: &Context) {
    let _ = ctx.sleep(Duration::from_millis(5));
}

/// Busy work for `iterations` rounds.
fn spin(iterations: u64) -> u64 {
    let mut x = 0u64;
    for i in 0..iterations {
        x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
    }
    x
}

/// About how many [`spin`] rounds take one millisecond of CPU here (the
/// fastest of a few tries, so a preempted try does not count).
fn spins_per_ms() -> u64 {
    const ROUNDS: u64 = 100_000;
    let fastest = (0..5)
        .map(|_| {
            let start = Instant::now();
            black_box(spin(ROUNDS));
            start.elapsed()
        })
        .min()
        .unwrap();
    let per_ms = ROUNDS as f64 / (fastest.as_secs_f64() * 1e3);
    (per_ms as u64).max(1)
}

#[test]
fn waiting_jobs_grow_the_pool_past_the_cpu_count() {
    // Jobs that wait 5 ms each, fed faster than the pool can serve them,
    // grow it to at least 8 workers (on any CPU count up to 4), and never
    // past max.
    let _load = LOAD.lock();
    with_timeout(LONG, || {
        let pool = adaptive("adio", 1, 32);
        let stop = AtomicBool::new(false);
        let mut seen = Seen {
            min: usize::MAX,
            ..Seen::default()
        };
        let want = 8.max(2 * cpu_bound());
        thread::scope(|s| {
            let producer = s.spawn(|| produce(&pool, &stop, waits));
            let grew = watch(ADAPT, &mut seen, || pool.stats().workers, |n| n >= want);
            // Keep the load on a little longer: still never above max.
            let deadline = Instant::now() + Duration::from_millis(500);
            watch(
                ADAPT,
                &mut seen,
                || pool.stats().workers,
                |_| Instant::now() >= deadline,
            );
            let stats = pool.stats();
            stop.store(true, Ordering::SeqCst);
            let submitted = producer.join().unwrap();
            assert!(grew, "stayed at {stats} with {} CPUs", cpu_bound());
            assert!(submitted > 0);
        });
        assert!(seen.max <= 32, "{seen:?}");
        assert!(seen.min >= 1, "{seen:?}");
        pool.join();
    });
}

#[test]
fn idle_pool_shrinks_gradually_to_min() {
    // An idle adaptive pool set to 16 workers shrinks back to min = 2 —
    // not before three ticks, a quarter at a time (so reaching 3 takes at
    // least seven shrinks, ~2 s), and never below min.
    let _load = LOAD.lock();
    with_timeout(LONG, || {
        let pool = adaptive("adidle", 2, 32);
        assert_eq!(pool.stats().workers, 2);
        pool.set_workers(16).unwrap();
        let resized = Instant::now();
        assert_eq!(pool.stats().workers, 16);
        let mut seen = Seen {
            min: usize::MAX,
            ..Seen::default()
        };
        let workers = || pool.stats().workers;
        assert!(watch(ADAPT, &mut seen, workers, |n| n < 16));
        let first_shrink = resized.elapsed();
        assert!(watch(ADAPT, &mut seen, workers, |n| n <= 3));
        let down_to_three = resized.elapsed();
        assert!(
            watch(ADAPT, &mut seen, workers, |n| n == 2),
            "stuck at {}",
            pool.stats()
        );
        assert!(
            first_shrink >= Duration::from_millis(150),
            "shrank after {first_shrink:?}, before three ticks agreed"
        );
        assert!(
            down_to_three >= Duration::from_millis(1_500),
            "reached 3 after {down_to_three:?}: faster than a quarter per three ticks"
        );
        assert_eq!((seen.min, seen.max), (2, 16), "{seen:?}");
        pool.join();
    });
}

#[test]
fn compute_jobs_do_not_grow_far_past_the_cpu_count() {
    // CPU-bound jobs (~1 ms of busy work each) with a full queue keep the
    // pool within 2 × CPUs + 2 workers over two seconds of load.
    let _load = LOAD.lock();
    with_timeout(LONG, || {
        let per_ms = spins_per_ms();
        let pool = adaptive("adcpu", 1, 32);
        let stop = AtomicBool::new(false);
        let mut seen = Seen {
            min: usize::MAX,
            ..Seen::default()
        };
        let limit = 2 * cpu_bound() + 2;
        thread::scope(|s| {
            let producer = s.spawn(|| {
                produce(&pool, &stop, move |_: &Context| {
                    black_box(spin(per_ms));
                })
            });
            let start = Instant::now();
            watch(
                ADAPT,
                &mut seen,
                || pool.stats().workers,
                |_| start.elapsed() >= Duration::from_secs(2),
            );
            stop.store(true, Ordering::SeqCst);
            assert!(producer.join().unwrap() > 0);
        });
        assert!(
            seen.max <= limit,
            "grew to {} workers for CPU-bound work on {} CPUs",
            seen.max,
            cpu_bound()
        );
        pool.join();
    });
}

#[test]
fn bounds_hold_under_load_and_idle() {
    // With bounds [3, 5], the pool starts at 3, grows to 5 under a waiting
    // load and never past it, then shrinks back to 3 and never below.
    let _load = LOAD.lock();
    with_timeout(LONG, || {
        let pool = adaptive("adbnd", 3, 5);
        assert_eq!(pool.stats().workers, 3.max(cpu_bound().min(5)));
        let stop = AtomicBool::new(false);
        let mut seen = Seen {
            min: usize::MAX,
            ..Seen::default()
        };
        let workers = || pool.stats().workers;
        thread::scope(|s| {
            let producer = s.spawn(|| produce(&pool, &stop, waits));
            let grew = watch(ADAPT, &mut seen, workers, |n| n == 5);
            let deadline = Instant::now() + Duration::from_millis(500);
            watch(ADAPT, &mut seen, workers, |_| Instant::now() >= deadline);
            // Four threads named adbnd-…: at most five workers and the
            // controller.
            let threads = thread_names()
                .iter()
                .filter(|n| n.starts_with("adbnd-"))
                .count();
            stop.store(true, Ordering::SeqCst);
            producer.join().unwrap();
            assert!(grew, "{}", pool.stats());
            assert!(threads <= 6, "{threads} threads");
        });
        assert!(
            watch(ADAPT, &mut seen, workers, |n| n == 3),
            "{}",
            pool.stats()
        );
        assert_eq!((seen.min, seen.max), (3, 5), "{seen:?}");
        pool.join();
    });
}

#[test]
fn starts_at_the_cpu_count_within_bounds() {
    // The first size is cpu_bound() clamped to [min, max].
    with_timeout(LONG, || {
        let cpus = cpu_bound();
        for (min, max, want) in [(cpus, 32, cpus), (1, 1, 1), (cpus + 2, cpus + 4, cpus + 2)] {
            let pool = ThreadPool::builder()
                .sizing(Sizing::Adaptive { min, max })
                .thread_name("adstart")
                .build()
                .unwrap();
            assert_eq!(pool.stats().workers, want, "min {min} max {max}");
            pool.join();
        }
        assert_eq!(Sizing::Adaptive { min: 1, max: 1 }.workers(), Ok(1));
        let pool = WorkerPool::builder()
            .sizing(Sizing::Adaptive {
                min: cpus + 1,
                max: 64,
            })
            .thread_name("adstartw")
            .build(|_: &Context, n: u8| n)
            .unwrap();
        assert_eq!(pool.stats().workers, cpus + 1);
        assert!(pool.join().is_empty());
    });
}

#[test]
fn controller_thread_lives_with_the_pool() {
    // `{name}-ctl` runs while an adaptive pool lives, and is gone after
    // join or drop; a fixed-size pool has none.
    with_timeout(LONG, || {
        let joined = adaptive("adctlj", 1, 4);
        let dropped = adaptive("adctld", 1, 4);
        let fixed = ThreadPool::builder()
            .workers(2)
            .thread_name("adctlf")
            .build()
            .unwrap();
        let workers = WorkerPool::builder()
            .sizing(Sizing::Adaptive { min: 1, max: 4 })
            .thread_name("adctlw")
            .build(|_: &Context, n: u8| n)
            .unwrap();
        // A thread names itself as it starts: give /proc a moment.
        for name in ["adctlj-ctl", "adctld-ctl", "adctlw-ctl"] {
            assert!(wait_until(LONG, || threads_called(name) == 1), "{name}");
        }
        assert!(wait_until(LONG, || threads_named("adctlf") == 2));
        assert_eq!(threads_called("adctlf-ctl"), 0);
        joined.join();
        drop(dropped);
        assert!(workers.join().is_empty());
        fixed.join();
        for name in ["adctlj-ctl", "adctld-ctl", "adctlw-ctl"] {
            assert!(
                wait_until(LONG, || threads_called(name) == 0),
                "{name} outlived its pool"
            );
        }
    });
}

#[test]
fn adaptive_worker_pool_grows_and_still_disconnects() {
    // An adaptive WorkerPool under a waiting load grows past the CPU count;
    // after close its results loop ends with one output per job.
    let _load = LOAD.lock();
    with_timeout(LONG, || {
        let pool = WorkerPool::builder()
            .sizing(Sizing::Adaptive { min: 1, max: 16 })
            .queue_capacity(32)
            .thread_name("adwp")
            .build(|ctx: &Context, n: u64| {
                let _ = ctx.sleep(Duration::from_millis(5));
                n
            })
            .unwrap();
        let want = 6.max(cpu_bound() + 2).min(16);
        let received = AtomicU64::new(0);
        thread::scope(|s| {
            let consumer = s.spawn(|| {
                let mut sum = 0u64;
                for output in pool.results() {
                    sum += output.result.unwrap();
                    received.fetch_add(1, Ordering::SeqCst);
                }
                sum
            });
            let mut n = 0u64;
            let grew = wait_until(ADAPT, || {
                // Feed without blocking, so the condition is checked often.
                while pool.try_submit(n).is_ok() {
                    n += 1;
                }
                pool.stats().workers >= want
            });
            let stats = pool.stats();
            pool.close();
            let sum = consumer.join().unwrap();
            assert!(grew, "stayed at {stats}");
            assert_eq!(received.load(Ordering::SeqCst), n);
            assert_eq!(sum, n * n.saturating_sub(1) / 2);
        });
        assert!(wait_until(LONG, || pool.stats().workers == 0));
        assert!(pool.join().is_empty());
    });
}

#[test]
fn bad_bounds_are_exact_errors() {
    // min > max, max 0 and max > MAX_WORKERS are InvalidBounds errors with
    // an exact message, from both builders and from Sizing::workers.
    let cases = [
        (
            5,
            4,
            "adaptive sizing needs min <= max and 1 <= max <= 32768, got min 5 and max 4",
        ),
        (
            1,
            MAX_WORKERS + 1,
            "adaptive sizing needs min <= max and 1 <= max <= 32768, got min 1 and max 32769",
        ),
        (
            0,
            0,
            "adaptive sizing needs min <= max and 1 <= max <= 32768, got min 0 and max 0",
        ),
    ];
    for (min, max, message) in cases {
        let sizing = Sizing::Adaptive { min, max };
        let want = SizingError::InvalidBounds {
            min,
            max,
            limit: MAX_WORKERS,
        };
        assert_eq!(sizing.workers(), Err(want.clone()));
        match ThreadPool::builder()
            .sizing(sizing)
            .thread_name("adbad")
            .build()
        {
            Err(BuildError::Sizing(err)) => {
                assert_eq!(err, want);
                assert_eq!(err.to_string(), message);
            }
            other => panic!("min {min} max {max}: {other:?}"),
        }
        match WorkerPool::builder()
            .sizing(sizing)
            .thread_name("adbadw")
            .build(|_: &Context, n: u8| n)
        {
            Err(err) => assert_eq!(err.to_string(), message),
            Ok(pool) => panic!("built {pool:?} with min {min} max {max}"),
        }
    }
    // min 0 is a pool that can scale to zero, which only a keep-alive
    // does: without one, both builders say so.
    let zero_min = Sizing::Adaptive { min: 0, max: 4 };
    assert!(zero_min.workers().is_ok_and(|n| (1..=4).contains(&n)));
    let needs = "Sizing::Adaptive with min 0 needs keep_alive(..): only idle workers leaving \
                 take a pool to no workers; set keep_alive or a min of at least 1";
    match ThreadPool::builder()
        .sizing(zero_min)
        .thread_name("adbad")
        .build()
    {
        Err(err) => {
            assert!(matches!(err, BuildError::ZeroMinNeedsKeepAlive));
            assert_eq!(err.to_string(), needs);
        }
        Ok(pool) => panic!("built {pool:?} with min 0 and no keep-alive"),
    }
    match WorkerPool::builder()
        .sizing(zero_min)
        .thread_name("adbadw")
        .build(|_: &Context, n: u8| n)
    {
        Err(err) => assert_eq!(err.to_string(), needs),
        Ok(pool) => panic!("built {pool:?} with min 0 and no keep-alive"),
    }
    assert_eq!(
        threads_called("adbad-ctl") + threads_called("adbadw-ctl"),
        0
    );
}

/// Set in the environment of the child process that plays the CPU hog.
const HOG_ENV: &str = "BRIGADE_ADAPTIVE_HOG";

/// Another process keeping every CPU busy until dropped (killed) or for at
/// most [`LONG`].
struct Hog(std::process::Child);

impl Hog {
    /// Starts the hog and waits until its threads spin. Start it before
    /// the pool under test: starting a process forks this one, and while
    /// the kernel copies the address space, threads that touch memory
    /// block — a pool's first tick would see its workers blocked, as if
    /// their jobs waited on I/O.
    fn start() -> Self {
        use std::io::BufRead;
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut child = std::process::Command::new(exe)
            .args([
                "--ignored",
                "--exact",
                "cpu_hog_scenario",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(HOG_ENV, "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the CPU hog");
        let stdout = child.stdout.take().expect("piped");
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        thread::spawn(move || {
            let ready = std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .any(|line| line.ends_with(HOG_READY));
            let _ = ready_tx.send(ready);
        });
        assert_eq!(ready_rx.recv_timeout(LONG), Ok(true), "the CPU hog started");
        Self(child)
    }
}

/// What the hog prints once its threads spin.
const HOG_READY: &str = "brigade-hog-ready";

impl Drop for Hog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "the CPU hog child process of the *_beside_a_cpu_hog tests"]
fn cpu_hog_scenario() {
    // Spins one thread per CPU for at most LONG; asserts nothing, as a
    // stand-in for another program using the machine.
    if std::env::var_os(HOG_ENV).is_none() {
        return;
    }
    let start = Instant::now();
    let spinning = std::sync::Barrier::new(cpu_bound() + 1);
    thread::scope(|s| {
        for _ in 0..cpu_bound() {
            s.spawn(|| {
                spinning.wait();
                while start.elapsed() < LONG {
                    black_box(spin(10_000));
                }
            });
        }
        spinning.wait();
        println!("{HOG_READY}");
    });
}

#[test]
fn compute_jobs_beside_a_cpu_hog_do_not_grow_far() {
    // With another process keeping every CPU busy, CPU-bound jobs still
    // keep the pool within 2 × CPUs + 2 workers over three seconds: the
    // CPUs are saturated, and more threads cannot help.
    let _load = LOAD.lock();
    with_timeout(LONG, || {
        let per_ms = spins_per_ms();
        let _hog = Hog::start();
        let pool = adaptive("adhog", 1, 32);
        let stop = AtomicBool::new(false);
        let mut trace = Trace::default();
        thread::scope(|s| {
            let producer = s.spawn(|| {
                produce(&pool, &stop, move |_: &Context| {
                    black_box(spin(per_ms));
                })
            });
            let start = Instant::now();
            wait_until(ADAPT, || {
                trace.note(start, pool.stats().workers);
                start.elapsed() >= Duration::from_secs(3)
            });
            stop.store(true, Ordering::SeqCst);
            assert!(producer.join().unwrap() > 0);
        });
        let limit = 2 * cpu_bound() + 2;
        assert!(
            trace.max() <= limit,
            "grew past {limit} workers for CPU-bound work on {} CPUs \
             (ms, workers): {:?}",
            cpu_bound(),
            trace.0
        );
        pool.join();
    });
}

#[test]
fn pool_grown_for_waiting_jobs_shrinks_when_jobs_turn_compute_bound() {
    // A pool grown past 8 workers by waiting jobs comes back within
    // 2 × CPUs + 2 workers once the jobs turn CPU-bound (within 10 s): more
    // threads than CPUs gain compute-bound work nothing.
    let _load = LOAD.lock();
    with_timeout(LONG, || {
        let per_ms = spins_per_ms();
        let pool = adaptive("adphase", 1, 32);
        let waiting = AtomicBool::new(false);
        let stop = AtomicBool::new(false);
        let mut trace = Trace::default();
        let limit = 2 * cpu_bound() + 2;
        let want = 8.max(2 * cpu_bound());
        thread::scope(|s| {
            let producer = s.spawn(|| {
                let waits_phase = produce(&pool, &waiting, waits);
                waits_phase
                    + produce(&pool, &stop, move |_: &Context| {
                        black_box(spin(per_ms));
                    })
            });
            let start = Instant::now();
            let grew = wait_until(ADAPT, || {
                trace.note(start, pool.stats().workers);
                trace.max() >= want
            });
            waiting.store(true, Ordering::SeqCst);
            let turned = Instant::now();
            let shrank = grew
                && wait_until(Duration::from_secs(10), || {
                    let n = pool.stats().workers;
                    trace.note(start, n);
                    n <= limit
                });
            stop.store(true, Ordering::SeqCst);
            assert!(producer.join().unwrap() > 0);
            assert!(grew, "never grew to {want} (ms, workers): {:?}", trace.0);
            assert!(
                shrank,
                "still above {limit} workers {:?} after the jobs turned CPU-bound \
                 on {} CPUs (ms, workers): {:?}",
                turned.elapsed(),
                cpu_bound(),
                trace.0
            );
        });
        pool.join();
    });
}

#[test]
fn a_burst_queued_before_join_is_drained_at_the_size_it_needs() {
    // 256 jobs that wait 5 ms each, all queued before join(): the
    // controller keeps steering while join drains the queue, so more
    // workers than the pool started with run them (it used to stop at
    // join, leaving the burst to the starting workers).
    let _load = LOAD.lock();
    with_timeout(LONG, || {
        const JOBS: usize = 256;
        let pool = ThreadPool::builder()
            .sizing(Sizing::Adaptive { min: 1, max: 32 })
            .queue_capacity(JOBS)
            .thread_name("adjoin")
            .build()
            .unwrap();
        let started_with = pool.stats().workers;
        let ran_on = std::sync::Arc::new(Mutex::new(std::collections::HashSet::new()));
        for _ in 0..JOBS {
            let ran_on = std::sync::Arc::clone(&ran_on);
            let detached = pool
                .try_submit(move |ctx: &Context| {
                    ran_on.lock().insert(thread::current().id());
                    waits(ctx);
                })
                .expect("the queue holds the whole burst");
            drop(detached);
        }
        pool.join();
        let workers = ran_on.lock().len();
        assert!(
            workers > started_with,
            "the burst ran on {workers} workers, the pool started with {started_with}"
        );
    });
}
