//! Keyed jobs: one at a time per key, in submission order, without
//! head-of-line blocking.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use brigade::{JobError, Lane, ThreadPool};
use crossbeam_channel::bounded;

use common::{LONG, Latch, with_timeout};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn jobs_of_one_key_run_in_order_and_one_at_a_time() {
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(4).build().unwrap();
        let seen: Arc<Mutex<HashMap<u32, Vec<u32>>>> = Arc::default();
        let running: Arc<Mutex<HashMap<u32, bool>>> = Arc::default();
        for n in 0..2_000u32 {
            let key = n % 10;
            let (seen, running) = (Arc::clone(&seen), Arc::clone(&running));
            pool.keyed(key)
                .execute(move || {
                    assert!(
                        !running.lock().insert(key, true).unwrap_or(false),
                        "two jobs of key {key} at once"
                    );
                    seen.lock().entry(key).or_default().push(n);
                    running.lock().insert(key, false);
                })
                .unwrap();
        }
        let report = pool.shutdown_timeout(WAIT);
        assert!(report.drained);
        assert_eq!(report.completed, 2_000);
        for (key, order) in seen.lock().iter() {
            let expected: Vec<u32> = (0..2_000).filter(|n| n % 10 == *key).collect();
            assert_eq!(order, &expected, "key {key}");
        }
    });
}

#[test]
fn a_blocked_key_does_not_hold_up_other_keys() {
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(2).build().unwrap();
        let (release, gate) = bounded::<()>(0);
        let (started, on_start) = bounded(1);
        pool.keyed("slow")
            .execute(move || {
                started.send(()).unwrap();
                gate.recv_timeout(WAIT).unwrap();
            })
            .unwrap();
        on_start.recv_timeout(WAIT).unwrap();
        // Queued behind the blocked one: must not take the other worker.
        let behind = pool.keyed("slow").submit(|_| "behind").unwrap();
        let (done, finished) = bounded(100);
        for key in 0..100 {
            let done = done.clone();
            pool.keyed(key)
                .execute(move || done.send(key).unwrap())
                .unwrap();
        }
        for _ in 0..100 {
            finished
                .recv_timeout(WAIT)
                .expect("other keys run while one is blocked");
        }
        assert!(!behind.is_finished());
        release.send(()).unwrap();
        assert_eq!(behind.join(), Ok("behind"));
    });
}

#[test]
fn joining_a_later_job_of_the_own_key_fails_instead_of_hanging() {
    with_timeout(LONG, || {
        let pool = Arc::new(ThreadPool::builder().workers(2).build().unwrap());
        let inner = Arc::clone(&pool);
        let mut outer = pool
            .keyed(7)
            .submit(move |_| {
                let later = inner.keyed(7).submit(|_| 1).unwrap();
                later.join()
            })
            .unwrap();
        let joined = outer
            .join_timeout(WAIT)
            .expect("joining a later job of the own key hung");
        assert_eq!(joined, Ok(Err(JobError::QueuedBehindCaller)));
    });
}

#[test]
fn a_panicking_keyed_job_releases_its_key() {
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(2).build().unwrap();
        let boom = pool.keyed(1).submit(|_| -> u32 { panic!("boom") }).unwrap();
        let mut next = pool.keyed(1).submit(|_| 2).unwrap();
        assert!(matches!(boom.join(), Err(JobError::Panicked(_))));
        let next = next
            .join_timeout(WAIT)
            .expect("the key stayed held after its job panicked");
        assert_eq!(next, Ok(2));
    });
}

#[test]
fn join_runs_every_keyed_job_even_behind_a_slow_one() {
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(3).build().unwrap();
        // The slow job and this thread meet once the 50 jobs are queued.
        let meet = Latch::new(2);
        let count = Arc::new(Mutex::new(0));
        let m = Arc::clone(&meet);
        pool.keyed("a")
            .execute(move || {
                m.count_down();
                m.wait();
            })
            .unwrap();
        for _ in 0..50 {
            let count = Arc::clone(&count);
            pool.keyed("a").execute(move || *count.lock() += 1).unwrap();
        }
        meet.count_down();
        assert!(meet.wait_timeout(WAIT), "the slow keyed job never started");
        pool.join();
        assert_eq!(*count.lock(), 50);
    });
}

/// A tiny seeded PRNG (xorshift64*), so the randomised tests replay.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Keeps the panics the tests raise on purpose quiet.
fn quiet_planned_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let planned = info
                .payload()
                .downcast_ref::<&str>()
                .is_some_and(|text| text.starts_with("planned"));
            if !planned {
                previous(info);
            }
        }));
    });
}

/// Per key: the last job number that started, and whether one runs.
struct KeyState {
    last: Vec<AtomicU64>,
    running: Vec<AtomicBool>,
    runs: Vec<AtomicU64>,
    violations: Mutex<Vec<String>>,
}

impl KeyState {
    fn new(keys: usize) -> Arc<Self> {
        Arc::new(Self {
            last: (0..keys).map(|_| AtomicU64::new(0)).collect(),
            running: (0..keys).map(|_| AtomicBool::new(false)).collect(),
            runs: (0..keys).map(|_| AtomicU64::new(0)).collect(),
            violations: Mutex::new(Vec::new()),
        })
    }

    /// Job `n` (numbered from 1 in submission order) of `key` starts; the
    /// guard marks its end, panics included.
    fn start(self: &Arc<Self>, key: usize, n: u64) -> KeyRun {
        if self.running[key].swap(true, SeqCst) {
            self.violations
                .lock()
                .push(format!("job {n}: two jobs of key {key} at once"));
        }
        let last = self.last[key].swap(n, SeqCst);
        if last >= n {
            self.violations
                .lock()
                .push(format!("key {key}: job {n} started after job {last}"));
        }
        self.runs[key].fetch_add(1, SeqCst);
        KeyRun(Arc::clone(self), key)
    }
}

struct KeyRun(Arc<KeyState>, usize);

impl Drop for KeyRun {
    fn drop(&mut self) {
        self.0.running[self.1].store(false, SeqCst);
    }
}

#[test]
fn order_holds_over_100_000_jobs_on_1_000_keys_with_panics() {
    // Jobs of one key run one at a time in submission order over 100,000 jobs on 1,000 keys,
    // with random run times and random panics; a panicking job releases its key.
    // How long the shutdown may take to drain the jobs.
    const DRAIN: Duration = Duration::from_secs(60);
    with_timeout(DRAIN + LONG, || {
        const JOBS: u64 = 100_000;
        const KEYS: usize = 1_000;
        quiet_planned_panics();
        let seed = 0x5EED_0019_u64;
        let mut rng = XorShift(seed);
        let pool = ThreadPool::builder().workers(4).build().unwrap();
        let state = KeyState::new(KEYS);
        let mut panics = 0;
        for n in 1..=JOBS {
            let key = rng.next() as usize % KEYS;
            let roll = rng.next() % 1000;
            let state = Arc::clone(&state);
            panics += u64::from(roll < 5);
            pool.keyed(key)
                .execute(move || {
                    let _run = state.start(key, n);
                    match roll {
                        0..5 => panic!("planned: job {n}"),
                        5..25 => thread::yield_now(),
                        25..75 => {
                            let until = Instant::now() + Duration::from_micros(roll % 8);
                            while Instant::now() < until {
                                std::hint::spin_loop();
                            }
                        }
                        _ => {}
                    }
                })
                .unwrap();
        }
        let report = pool.shutdown_timeout(DRAIN);
        assert!(report.drained, "seed {seed:#x}: {report:?}");
        assert_eq!(report.ran, JOBS, "seed {seed:#x}");
        assert_eq!(report.completed, JOBS - panics, "seed {seed:#x}");
        let violations = state.violations.lock();
        assert!(
            violations.is_empty(),
            "seed {seed:#x}: {} violations, first: {:?}",
            violations.len(),
            &violations[..violations.len().min(10)]
        );
        let ran: u64 = state.runs.iter().map(|runs| runs.load(SeqCst)).sum();
        assert_eq!(ran, JOBS, "seed {seed:#x}: every job of every key ran");
    });
}

#[test]
fn a_blocked_key_does_not_hold_up_other_keys_or_unkeyed_jobs() {
    // With one key's job blocked, jobs of 100 other keys and unkeyed jobs (plain and laned)
    // all complete while it is blocked.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(2).build().unwrap();
        let (release, gate) = bounded::<()>(0);
        let (started, on_start) = bounded(1);
        pool.keyed("slow")
            .execute(move || {
                started.send(()).unwrap();
                gate.recv_timeout(WAIT).unwrap();
            })
            .unwrap();
        on_start.recv_timeout(WAIT).unwrap();
        let behind: Vec<_> = (0..5)
            .map(|n| pool.keyed("slow").submit(move |_| n).unwrap())
            .collect();
        let (done, finished) = bounded(400);
        for n in 0..100 {
            let (keyed, plain, laned) = (done.clone(), done.clone(), done.clone());
            pool.keyed(n)
                .execute(move || keyed.send(("keyed", n)).unwrap())
                .unwrap();
            pool.execute(move || plain.send(("plain", n)).unwrap())
                .unwrap();
            let lane = Lane::ALL[n % 3];
            pool.lane(lane)
                .execute(move || laned.send(("laned", n)).unwrap())
                .unwrap();
        }
        let mut seen = HashMap::new();
        for _ in 0..300 {
            let (kind, _) = finished
                .recv_timeout(WAIT)
                .expect("other keys and unkeyed jobs run while one key is blocked");
            *seen.entry(kind).or_insert(0) += 1;
        }
        assert_eq!(
            seen,
            HashMap::from([("keyed", 100), ("plain", 100), ("laned", 100)])
        );
        assert!(behind.iter().all(|job| !job.is_finished()));
        release.send(()).unwrap();
        let order: Vec<_> = behind.into_iter().map(|job| job.join().unwrap()).collect();
        assert_eq!(order, [0, 1, 2, 3, 4]);
    });
}

#[test]
fn join_timeout_on_a_later_job_of_the_own_key_fails_at_once() {
    // join_timeout from a keyed job on a later job of its own key returns QueuedBehindCaller,
    // without waiting out the timeout; the joined job still runs afterwards.
    with_timeout(LONG, || {
        let pool = Arc::new(ThreadPool::builder().workers(2).build().unwrap());
        let inner = Arc::clone(&pool);
        let outer = pool
            .keyed(7)
            .submit(move |_| {
                let mut later = inner.keyed(7).submit(|_| 1).unwrap();
                let asked = Instant::now();
                let joined = later.join_timeout(Duration::from_secs(20));
                (joined, asked.elapsed(), later)
            })
            .unwrap();
        let (joined, waited, later) = outer.join().unwrap();
        assert_eq!(joined, Some(Err(JobError::QueuedBehindCaller)));
        assert!(waited < Duration::from_secs(10), "waited {waited:?}");
        assert_eq!(
            later.join(),
            Ok(1),
            "the joined job still runs after its joiner"
        );
    });
}

#[test]
fn a_keyed_job_can_join_a_job_of_another_key() {
    // A keyed job that submits a job of a different key and joins it gets its result.
    with_timeout(LONG, || {
        let pool = Arc::new(ThreadPool::builder().workers(2).build().unwrap());
        let inner = Arc::clone(&pool);
        let outer = pool
            .keyed(1)
            .submit(move |_| {
                let other = inner.keyed(2).submit(|_| "other key").unwrap();
                let mut other = other;
                other.join_timeout(WAIT)
            })
            .unwrap();
        assert_eq!(outer.join(), Ok(Some(Ok("other key"))));
    });
}

#[test]
fn cancelled_and_timed_out_keyed_jobs_release_their_key() {
    // A keyed job cancelled while it waits behind its key, and one that overruns the job
    // timeout, do not stall the key: its later jobs run, in order.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .job_timeout(Duration::from_millis(20))
            .build()
            .unwrap();
        let (release, gate) = bounded::<()>(0);
        let (started, on_start) = bounded(1);
        pool.keyed("k")
            .execute(move || {
                started.send(()).unwrap();
                gate.recv_timeout(WAIT).unwrap();
            })
            .unwrap();
        on_start.recv_timeout(WAIT).unwrap();
        let cancelled = pool.keyed("k").submit(|_| 1).unwrap();
        let overrun = pool
            .keyed("k")
            .submit(|ctx| ctx.sleep(WAIT).is_err())
            .unwrap();
        let last = pool.keyed("k").submit(|_| 3).unwrap();
        cancelled.cancel();
        release.send(()).unwrap();
        assert!(matches!(cancelled.join(), Err(JobError::Cancelled(_))));
        let mut overrun = overrun;
        let overran = overrun.join_timeout(WAIT).expect("the overrun job ended");
        assert!(
            matches!(overran, Err(JobError::TimedOut) | Ok(true)),
            "{overran:?}"
        );
        let mut last = last;
        assert_eq!(last.join_timeout(WAIT), Some(Ok(3)));
    });
}

#[test]
fn worker_pool_keyed_jobs_run_in_order_per_key() {
    with_timeout(LONG, || {
        const PLAIN: u32 = u32::MAX;
        for ordered in [false, true] {
            let builder = brigade::WorkerPool::builder().workers(4);
            let builder = if ordered { builder.ordered() } else { builder };
            let pool = builder
                .build(|_ctx, (key, n): (u32, u32)| {
                    if n % 7 == 0 {
                        std::thread::yield_now();
                    }
                    (key, n)
                })
                .unwrap();
            let feeder = std::thread::scope(|scope| {
                // Bounded, so a stalled window fails the test instead of hanging.
                let results = scope.spawn(|| {
                    std::iter::from_fn(|| pool.results().recv_timeout(WAIT).ok())
                        .collect::<Vec<_>>()
                });
                for n in 0..4_000u32 {
                    // Plain jobs among them, which the window must not let
                    // keyed ones starve (or the other way round).
                    if n % 5 == 0 {
                        pool.submit((PLAIN, n)).unwrap();
                    } else {
                        pool.submit_keyed(n % 13, (n % 13, n)).unwrap();
                    }
                }
                pool.close();
                results.join().unwrap()
            });
            let mut last: HashMap<u32, u32> = HashMap::new();
            for (index, output) in feeder.iter().enumerate() {
                let (key, n) = output.result.clone().unwrap();
                if key != PLAIN
                    && let Some(previous) = last.insert(key, n)
                {
                    assert!(previous < n, "key {key}: {previous} delivered before {n}");
                }
                if ordered {
                    assert_eq!(output.index, index as u64, "ordered delivery");
                }
            }
            assert_eq!(feeder.len(), 4_000);
            let _ = pool.join();
        }
    });
}

#[test]
fn worker_pool_try_submit_keyed_hands_the_job_back_when_closed() {
    with_timeout(LONG, || {
        let pool = brigade::WorkerPool::builder()
            .workers(1)
            .build(|_ctx, n: u32| n)
            .unwrap();
        pool.close();
        match pool.try_submit_keyed("k", 5) {
            Err(brigade::TrySubmitError::Closed(5)) => {}
            other => panic!("expected Closed(5), got {other:?}"),
        }
    });
}

#[test]
fn scheduled_jobs_follow_their_route() {
    // A keyed delayed job joins its key's order when due; a schedule in a
    // lane runs there (counted in that lane's stats).
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .lane_limit(Lane::Background, 1)
            .build()
            .unwrap();
        let (started_tx, started) = bounded(1);
        let (release_tx, release) = bounded::<()>(0);
        let order = Arc::new(Mutex::new(Vec::new()));
        let first_order = Arc::clone(&order);
        let first = pool
            .keyed("k")
            .submit(move |_ctx| {
                started_tx.send(()).unwrap();
                let _ = release.recv_timeout(WAIT);
                first_order.lock().push("first");
            })
            .unwrap();
        started.recv_timeout(WAIT).unwrap();
        let later_order = Arc::clone(&order);
        let later = pool
            .keyed("k")
            .schedule_after(Duration::from_millis(1), move |_ctx| {
                later_order.lock().push("later");
            })
            .unwrap();
        // Due, and held behind the running job of its key (the free worker
        // does not take it).
        let deadline = Instant::now() + WAIT;
        while pool.stats().lane(Lane::Normal).queued == 0 {
            assert!(
                Instant::now() < deadline,
                "the delayed job never became due"
            );
            thread::yield_now();
        }
        assert!(order.lock().is_empty());
        drop(release_tx);
        first.join().unwrap();
        later.join().unwrap();
        assert_eq!(*order.lock(), ["first", "later"]);

        let (ran_tx, ran) = bounded(0);
        let (hold_tx, hold) = bounded::<()>(0);
        let background = pool
            .lane(Lane::Background)
            .schedule(
                brigade::Every::delay(Duration::from_millis(1)),
                move |_ctx| {
                    let _ = ran_tx.send(());
                    hold.recv_timeout(WAIT)
                },
            )
            .unwrap();
        ran.recv_timeout(WAIT).unwrap();
        assert_eq!(pool.stats().lane(Lane::Background).running, 1);
        background.cancel();
        drop(hold_tx);
        assert_eq!(
            background.join_timeout(WAIT),
            Some(brigade::Ended::Cancelled)
        );
    });
}

#[test]
fn a_key_with_room_is_not_refused_while_other_jobs_race_in() {
    // Found in review: a keyed submit that had to lock counted the jobs
    // counted between its look at the inbox and its own count as its
    // key's, so `try_execute` on a key with room was refused `Full` now
    // and then (25 to 99 of 20,000 keys per run), while two threads
    // raced unkeyed jobs in.
    const KEYS: u64 = 5_000;
    const CAPACITY: usize = 40_000;
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .queue_capacity(CAPACITY)
            .lane_limit(Lane::Background, 1)
            .key_queue_limit(1)
            .build()
            .unwrap();
        // Held: the one Background slot is taken, so every key's first
        // job waits in its lane and each key has room for one more.
        let (release, held) = bounded::<()>(1);
        let background = pool.lane(Lane::Background);
        background
            .execute(move || {
                let _ = held.recv_timeout(LONG);
            })
            .unwrap();
        for key in 0..KEYS {
            background.key(key).try_execute(|| ()).unwrap();
        }
        let stop = AtomicBool::new(false);
        let refused = thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    while !stop.load(SeqCst) {
                        if pool.stats().queued < CAPACITY / 2 {
                            let _ = pool.lane(Lane::Normal).try_execute(|| ());
                        }
                    }
                });
            }
            let refused = (0..KEYS)
                .filter(|&key| background.key(key).try_execute(|| ()).is_err())
                .count();
            stop.store(true, SeqCst);
            refused
        });
        assert_eq!(refused, 0, "keys with room were refused");
        release.send(()).unwrap();
        pool.join();
    });
}

#[test]
fn worker_pool_key_queue_limit_holds_back_only_the_hot_key() {
    // A WorkerPool's key queue limit, through each family: try refuses,
    // a timed submit gives up after its wait, a blocking one waits for
    // room; another key is not held back.
    with_timeout(LONG, || {
        let (started_tx, started) = bounded(1);
        let (release_tx, release) = bounded::<()>(1);
        let pool = brigade::WorkerPool::builder()
            .workers(1)
            .key_queue_limit(1)
            .build(move |_ctx, n: u32| {
                if n == 0 {
                    started_tx.send(()).unwrap();
                    release.recv_timeout(WAIT).unwrap();
                }
                n
            })
            .unwrap();
        pool.submit_keyed("hot", 0).unwrap();
        started.recv_timeout(WAIT).unwrap();
        // One job of the key may wait behind the running one.
        pool.try_submit_keyed("hot", 1).unwrap();
        match pool.try_submit_keyed("hot", 2) {
            Err(brigade::TrySubmitError::Full(2)) => {}
            other => panic!("expected Full(2), got {other:?}"),
        }
        match pool.submit_keyed_timeout("hot", 3, Duration::from_millis(20)) {
            Err(brigade::TrySubmitError::Full(3)) => {}
            other => panic!("expected Full(3), got {other:?}"),
        }
        pool.try_submit_keyed("cold", 4).unwrap();
        release_tx.send(()).unwrap();
        // Room once job 0 ends and job 1 starts.
        pool.submit_keyed_timeout("hot", 5, WAIT).unwrap();
        let results = pool.results().clone();
        let leftovers = pool.join();
        assert!(leftovers.is_empty());
        let ran: Vec<u32> = results.iter().map(|out| out.result.unwrap()).collect();
        let hot: Vec<u32> = ran.iter().copied().filter(|&n| n != 4).collect();
        assert_eq!(hot, [0, 1, 5], "the hot key's jobs, in order");
        assert!(ran.contains(&4));
    });
}

#[test]
fn worker_pool_shutdown_now_hands_back_every_unrun_keyed_job() {
    with_timeout(LONG, || {
        let (started_tx, started) = bounded(1);
        let pool = brigade::WorkerPool::builder()
            .workers(1)
            .build(move |ctx, n: u32| {
                if n == 0 {
                    started_tx.send(()).unwrap();
                    // Until the shutdown cancels it.
                    let _ = ctx.sleep(LONG);
                }
                n
            })
            .unwrap();
        pool.submit_keyed("a", 0).unwrap();
        started.recv_timeout(WAIT).unwrap();
        // Held behind job 0 (key "a"), or queued for the one worker.
        for n in 1..=6 {
            pool.submit_keyed(["a", "b", "c"][n as usize % 3], n)
                .unwrap();
        }
        pool.submit(7).unwrap();
        let results = pool.results().clone();
        let leftovers = pool.shutdown_now();
        let mut unrun: Vec<u32> = leftovers.unprocessed.iter().map(|(_, n)| *n).collect();
        unrun.sort_unstable();
        assert_eq!(unrun, [1, 2, 3, 4, 5, 6, 7], "every job that never ran");
        // Job 0 ran (and saw the cancellation): its output, and no other.
        let delivered: Vec<u64> = results
            .try_iter()
            .chain(leftovers.undelivered)
            .map(|out| out.index)
            .collect();
        assert_eq!(delivered, [0]);
    });
}

#[test]
fn a_join_on_the_only_worker_runs_its_keys_next_job_there() {
    // A job joining a keyed job that no free worker is left to run: the
    // join runs it on its own worker, as it does an unkeyed one, and the
    // key is released after (its next job runs).
    with_timeout(LONG, || {
        let pool = Arc::new(ThreadPool::builder().workers(1).build().unwrap());
        let inner_pool = Arc::clone(&pool);
        let outer = pool
            .submit(move |_ctx| {
                let mut first = inner_pool.keyed("x").submit(|_ctx| 1).unwrap();
                let first = first.join_timeout(WAIT);
                let second = inner_pool.keyed("x").submit(|_ctx| 2).unwrap();
                (first, second)
            })
            .unwrap();
        let (first, second) = outer.join().unwrap();
        assert_eq!(first, Some(Ok(1)), "the join ran its keyed job");
        assert_eq!(second.join(), Ok(2), "the key was released");
        let stats = pool.stats();
        assert_eq!(stats.completed, 3);
        assert_eq!(stats.cancelled, 0, "the run job's envelope counted nothing");
        assert_eq!(stats.queued, 0);
    });
}

#[test]
fn a_join_does_not_run_a_keyed_job_held_behind_its_key() {
    // X2 waits behind X1 (key x), which runs on the other worker: a join
    // of X2 waits for it rather than running X2 first.
    with_timeout(LONG, || {
        let pool = Arc::new(ThreadPool::builder().workers(2).build().unwrap());
        let order = Arc::new(Mutex::new(Vec::new()));
        let (x1_started, on_x1) = bounded(1);
        let (release_x1, x1_released) = bounded::<()>(1);
        let x1_order = Arc::clone(&order);
        let x1 = pool
            .keyed("x")
            .submit(move |_ctx| {
                x1_started.send(()).unwrap();
                let _ = x1_released.recv_timeout(WAIT);
                x1_order.lock().push(1);
            })
            .unwrap();
        on_x1.recv_timeout(WAIT).unwrap();
        let x2_order = Arc::clone(&order);
        let x2 = pool
            .keyed("x")
            .submit(move |_ctx| x2_order.lock().push(2))
            .unwrap();
        let (joining, on_joining) = bounded(1);
        let joiner = pool
            .submit(move |_ctx| {
                joining.send(()).unwrap();
                let mut x2 = x2;
                x2.join_timeout(WAIT)
            })
            .unwrap();
        on_joining.recv_timeout(WAIT).unwrap();
        release_x1.send(()).unwrap();
        assert_eq!(joiner.join(), Ok(Some(Ok(()))));
        assert_eq!(x1.join(), Ok(()));
        assert_eq!(*order.lock(), [1, 2], "the key's order held");
    });
}

#[test]
fn a_keyed_job_run_by_a_join_holds_its_key() {
    // Found in review: K1 (key 7), run inline by a join on the only
    // worker, joins K2 (key 7), queued behind it. That must fail at once,
    // as it does when K1 runs on a worker, and not wait for ever. And the
    // joining job's own key stays held beneath it.
    with_timeout(LONG, || {
        let pool = Arc::new(ThreadPool::builder().workers(1).build().unwrap());
        let inner = Arc::clone(&pool);
        let outer = pool
            .keyed(3)
            .submit(move |_ctx| {
                let pool = Arc::clone(&inner);
                let mut k1 = inner
                    .keyed(7)
                    .submit(move |_ctx| {
                        let mut same_key = pool.keyed(7).submit(|_ctx| ()).unwrap();
                        let mut outer_key = pool.keyed(3).submit(|_ctx| ()).unwrap();
                        (same_key.join_timeout(WAIT), outer_key.join_timeout(WAIT))
                    })
                    .unwrap();
                k1.join_timeout(WAIT)
            })
            .unwrap();
        let (same_key, outer_key) = outer.join().unwrap().expect("K1 ran").unwrap();
        assert_eq!(same_key, Some(Err(JobError::QueuedBehindCaller)));
        assert_eq!(outer_key, Some(Err(JobError::QueuedBehindCaller)));
    });
}
