//! `WorkerPool`: every submitted job is accounted for exactly once (a result
//! read, an undelivered output or an unprocessed job), `stop()` frees workers
//! blocked on a slow consumer, the submit family behaves under a full queue,
//! `close()` and `stop()`, failures reach the consumer, ordered delivery keeps
//! submission order within its window, and build errors name the limit.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use brigade::{
    BuildError, Cancelled, JobError, MAX_QUEUE_CAPACITY, Output, SubmitError, TrySubmitError,
    WorkerPool,
};
use crossbeam_channel::{Receiver, RecvTimeoutError};

use common::{
    DropCounter, Gate, LONG, SplitMix64, thread_names, thread_sleeping, threads_named, wait_until,
    with_timeout,
};

/// The job a [`held_pool`] parks its only worker on.
const BLOCK: u64 = u64::MAX;

/// Reads `results` until it disconnects; panics if it stays open for
/// [`LONG`] without a result.
fn drain<R>(results: &Receiver<Output<R>>) -> Vec<Output<R>> {
    let mut outputs = Vec::new();
    loop {
        match results.recv_timeout(LONG) {
            Ok(output) => outputs.push(output),
            Err(RecvTimeoutError::Disconnected) => return outputs,
            Err(RecvTimeoutError::Timeout) => {
                panic!("the results channel did not disconnect within {LONG:?}")
            }
        }
    }
}

/// Asserts that `indices` are exactly `0..n`, each once.
fn assert_each_index_once(mut indices: Vec<u64>, n: u64) {
    indices.sort_unstable();
    let expected: Vec<u64> = (0..n).collect();
    assert_eq!(indices, expected, "every index exactly once");
}

/// A one-worker pool with a one-slot queue, its worker parked on job
/// [`BLOCK`] (index 0) until `gate` opens and the queue filled with job 1
/// (index 1). Every other job returns itself.
fn held_pool(prefix: &str, gate: &Gate) -> WorkerPool<u64, u64> {
    let (started_tx, started_rx) = crossbeam_channel::bounded(1);
    let gate = gate.clone();
    let pool = WorkerPool::builder()
        .workers(1)
        .queue_capacity(1)
        .thread_name(prefix)
        .build(move |_ctx, job: u64| {
            if job == BLOCK {
                started_tx.send(()).expect("the test waits for the start");
                gate.wait();
            }
            job
        })
        .expect("build");
    assert_eq!(pool.submit(BLOCK).expect("accepted"), 0);
    started_rx
        .recv_timeout(LONG)
        .expect("the blocking job started");
    assert_eq!(pool.submit(1).expect("accepted"), 1);
    pool
}

#[test]
fn stop_frees_workers_blocked_on_slow_consumer() {
    // A consumer that reads one result and stops: stop() lets every worker
    // exit, and read + undelivered + unprocessed covers each job exactly once.
    with_timeout(LONG, || {
        const WORKERS: usize = 4;
        const JOBS: u64 = 200;
        let pool = WorkerPool::builder()
            .workers(WORKERS)
            .results_capacity(1)
            .thread_name("wpslow")
            .build(|_ctx, job: u64| job * 10)
            .expect("build");
        assert!(wait_until(LONG, || threads_named("wpslow") == WORKERS));
        for job in 0..JOBS {
            assert_eq!(pool.submit(job).expect("accepted"), job);
        }
        let results = pool.results().clone();
        let first = results.recv_timeout(LONG).expect("a first result");
        // The consumer stops here: one result waits in the channel and each
        // worker holds one more, blocked on delivery (backpressure).
        let stalled = 1 + 1 + WORKERS as u64;
        assert!(wait_until(LONG, || pool.stats().completed == stalled));
        assert!(
            !wait_until(Duration::from_millis(20), || pool.stats().completed
                > stalled),
            "workers ran past a full results channel"
        );

        pool.stop();
        assert!(
            wait_until(LONG, || threads_named("wpslow") == 0),
            "workers still alive after stop: {:?}",
            thread_names()
        );
        let stats = pool.stats();
        let leftovers = pool.join();
        let mut read = vec![first];
        read.extend(drain(&results));

        assert_eq!(read.len(), 2, "the result read and the one buffered");
        assert_eq!(
            leftovers.undelivered.len(),
            WORKERS,
            "one per blocked worker"
        );
        assert_eq!(leftovers.unprocessed.len() as u64, JOBS - stalled);
        assert_eq!(stats.cancelled, JOBS - stalled, "unprocessed are counted");
        for output in read.iter().chain(&leftovers.undelivered) {
            assert_eq!(output.result, Ok(output.index * 10));
        }
        for (index, job) in &leftovers.unprocessed {
            assert_eq!(index, job, "an unprocessed job keeps its index");
        }
        let indices = read
            .iter()
            .chain(&leftovers.undelivered)
            .map(|output| output.index)
            .chain(leftovers.unprocessed.iter().map(|(index, _)| *index))
            .collect();
        assert_each_index_once(indices, JOBS);
    });
}

#[test]
fn close_delivers_every_result_then_disconnects() {
    // After close(), every job's result arrives once and the results loop
    // ends by itself; join() then has nothing left over.
    with_timeout(LONG, || {
        const JOBS: u64 = 500;
        let pool = WorkerPool::builder()
            .workers(4)
            .results_capacity(8)
            .thread_name("wpclose")
            .build(|_ctx, job: u64| job + 1000)
            .expect("build");
        for job in 0..JOBS {
            assert_eq!(pool.submit(job).expect("accepted"), job);
        }
        pool.close();
        let mut indices = Vec::new();
        for output in pool.results() {
            assert_eq!(output.result, Ok(output.index + 1000));
            indices.push(output.index);
        }
        assert_each_index_once(indices, JOBS);
        let leftovers = pool.join();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        assert!(wait_until(LONG, || threads_named("wpclose") == 0));
    });
}

#[test]
fn submit_returns_consecutive_indices() {
    // Indices count accepted jobs, 0, 1, 2, … without gaps, also across
    // concurrent submitters, and each output carries its own job's index.
    with_timeout(LONG, || {
        const SUBMITTERS: usize = 4;
        const PER_SUBMITTER: usize = 250;
        let pool = WorkerPool::builder()
            .workers(2)
            .queue_capacity(16)
            .results_capacity(2048)
            .build(|_ctx, job: (usize, usize)| job)
            .expect("build");
        for n in 0..10 {
            assert_eq!(pool.submit((SUBMITTERS, n)), Ok(n as u64));
        }
        let accepted: Vec<(u64, (usize, usize))> = thread::scope(|s| {
            let submitters: Vec<_> = (0..SUBMITTERS)
                .map(|submitter| {
                    let pool = &pool;
                    s.spawn(move || {
                        (0..PER_SUBMITTER)
                            .map(|n| {
                                let job = (submitter, n);
                                (pool.submit(job).expect("accepted"), job)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            submitters
                .into_iter()
                .flat_map(|submitter| submitter.join().expect("submitter"))
                .collect()
        });
        pool.close();
        let total = 10 + SUBMITTERS * PER_SUBMITTER;
        let mut by_index = vec![None; total];
        for output in drain(pool.results()) {
            by_index[output.index as usize] = Some(output.result.expect("job ran"));
        }
        for (index, job) in &accepted {
            assert_eq!(by_index[*index as usize], Some(*job), "index {index}");
        }
        let indices = accepted
            .iter()
            .map(|(index, _)| *index)
            .chain(0..10)
            .collect();
        assert_each_index_once(indices, total as u64);
        assert!(pool.join().is_empty());
    });
}

#[test]
fn try_submit_full_returns_job() {
    // On a full queue try_submit and submit_timeout hand the job back in
    // Full (the latter after its wait), and a rejected job takes no index.
    with_timeout(LONG, || {
        let gate = Gate::new();
        let pool = held_pool("wptry", &gate);

        let err = pool.try_submit(2).expect_err("the queue is full");
        assert!(matches!(err, TrySubmitError::Full(2)));
        assert_eq!(err.to_string(), "the pool's queue is full");
        assert_eq!(format!("{err:?}"), "Full(..)");
        assert_eq!(err.into_inner(), 2);

        let wait = Duration::from_millis(50);
        let start = Instant::now();
        let err = pool.submit_timeout(3, wait).expect_err("still full");
        assert!(start.elapsed() >= wait, "gave up before its wait");
        assert!(matches!(err, TrySubmitError::Full(3)));
        assert_eq!(err.into_inner(), 3);

        gate.open();
        assert_eq!(pool.submit(4), Ok(2), "rejected jobs took no index");
        pool.close();
        let mut outputs: Vec<(u64, Result<u64, JobError>)> = drain(pool.results())
            .into_iter()
            .map(|output| (output.index, output.result))
            .collect();
        outputs.sort_by_key(|(index, _)| *index);
        assert_eq!(outputs, [(0, Ok(BLOCK)), (1, Ok(1)), (2, Ok(4))]);
        assert!(pool.join().is_empty());
    });
}

#[test]
fn close_wakes_blocked_submit() {
    // A submit blocked on a full queue wakes with Closed(job) when another
    // thread calls close(); every later submit fails with Closed.
    with_timeout(LONG, || {
        let gate = Gate::new();
        let pool = held_pool("wpcls", &gate);
        let about_to_submit = AtomicBool::new(false);
        let err = thread::scope(|s| {
            let submitter = thread::Builder::new()
                .name("wpsubc".to_owned())
                .spawn_scoped(s, || {
                    about_to_submit.store(true, Ordering::SeqCst);
                    pool.submit(5)
                })
                .expect("spawn the submitter");
            assert!(wait_until(LONG, || about_to_submit.load(Ordering::SeqCst)
                && thread_sleeping("wpsubc")));
            pool.close();
            submitter
                .join()
                .expect("submitter")
                .expect_err("closed while waiting")
        });
        assert!(matches!(err, SubmitError::Closed(5)));
        assert_eq!(
            err.to_string(),
            "the pool is closed and accepts no more jobs"
        );
        assert_eq!(format!("{err:?}"), "Closed(..)");
        assert_eq!(err.into_inner(), 5);

        assert!(matches!(pool.submit(6), Err(SubmitError::Closed(6))));
        assert!(matches!(pool.try_submit(7), Err(TrySubmitError::Closed(7))));
        assert!(matches!(
            pool.submit_timeout(8, LONG),
            Err(TrySubmitError::Closed(8))
        ));

        gate.open();
        let indices = drain(pool.results())
            .into_iter()
            .map(|output| output.index)
            .collect();
        assert_each_index_once(indices, 2);
        assert!(pool.join().is_empty());
    });
}

#[test]
fn stop_wakes_blocked_submit() {
    // A submit blocked on a full queue wakes with Cancelled(job) on stop();
    // the queued job comes back unprocessed and the running one as Cancelled.
    with_timeout(LONG, || {
        let gate = Gate::new();
        let pool = held_pool("wpstp", &gate);
        let about_to_submit = AtomicBool::new(false);
        let err = thread::scope(|s| {
            let submitter = thread::Builder::new()
                .name("wpsubs".to_owned())
                .spawn_scoped(s, || {
                    about_to_submit.store(true, Ordering::SeqCst);
                    pool.submit(5)
                })
                .expect("spawn the submitter");
            assert!(wait_until(LONG, || about_to_submit.load(Ordering::SeqCst)
                && thread_sleeping("wpsubs")));
            pool.stop();
            submitter
                .join()
                .expect("submitter")
                .expect_err("stopped while waiting")
        });
        assert!(matches!(err, SubmitError::Cancelled(5)));
        assert_eq!(
            err.to_string(),
            "the pool was cancelled before the job could be queued"
        );
        assert_eq!(err.into_inner(), 5);

        assert!(matches!(pool.submit(6), Err(SubmitError::Cancelled(6))));
        assert!(matches!(
            pool.try_submit(7),
            Err(TrySubmitError::Cancelled(7))
        ));

        gate.open();
        let results = pool.results().clone();
        let leftovers = pool.join();
        let mut outputs = drain(&results);
        outputs.extend(leftovers.undelivered);
        assert_eq!(leftovers.unprocessed, [(1, 1)]);
        assert_eq!(outputs.len(), 1, "the running job's output, once");
        assert_eq!(outputs[0].index, 0);
        assert_eq!(
            outputs[0].result,
            Err(JobError::Cancelled(Cancelled::Canceled))
        );
    });
}

#[test]
fn handler_panic_reaches_consumer() {
    // A panicking handler's job arrives as Err(Panicked(message)) at its own
    // index, and the other jobs still arrive as Ok.
    with_timeout(LONG, || {
        let pool = WorkerPool::builder()
            .workers(2)
            .build(|_ctx, job: u64| {
                if job == 3 {
                    panic!("bad job {job}");
                }
                job
            })
            .expect("build");
        for job in 0..8 {
            pool.submit(job).expect("accepted");
        }
        pool.close();
        let mut outputs = drain(pool.results());
        outputs.sort_by_key(|output| output.index);
        assert_eq!(outputs.len(), 8);
        for output in &outputs {
            if output.index == 3 {
                let err = output.result.clone().expect_err("job 3 panicked");
                assert_eq!(err, JobError::Panicked("bad job 3".into()));
                assert!(
                    err.to_string().starts_with("job panicked: bad job 3"),
                    "{err}"
                );
            } else {
                assert_eq!(output.result, Ok(output.index));
            }
        }
        assert!(pool.join().is_empty());
    });
}

#[test]
fn job_timeout_reports_timed_out() {
    // A handler that waits on its context past job_timeout yields
    // Err(TimedOut); its neighbours still yield Ok.
    with_timeout(LONG, || {
        let pool = WorkerPool::builder()
            .workers(2)
            .job_timeout(Duration::from_millis(200))
            .build(|ctx, job: u64| {
                if job == 1 {
                    let slept = ctx.sleep(LONG);
                    assert_eq!(slept, Err(Cancelled::DeadlineExceeded));
                }
                job
            })
            .expect("build");
        for job in 0..3 {
            pool.submit(job).expect("accepted");
        }
        pool.close();
        let mut outputs = drain(pool.results());
        outputs.sort_by_key(|output| output.index);
        let results: Vec<_> = outputs.into_iter().map(|output| output.result).collect();
        assert_eq!(results, [Ok(0), Err(JobError::TimedOut), Ok(2)]);
        assert_eq!(JobError::TimedOut.to_string(), "job exceeded its timeout");
        assert!(pool.join().is_empty());
    });
}

#[test]
fn stop_cancels_running_handler() {
    // stop() while a handler waits on its context: that job's output is
    // Err(Cancelled(Canceled)), delivered or undelivered, and the queued job
    // comes back unprocessed.
    with_timeout(LONG, || {
        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        let pool = WorkerPool::builder()
            .workers(1)
            .build(move |ctx, job: u64| {
                started_tx.send(()).expect("the test waits for the start");
                assert_eq!(ctx.sleep(LONG), Err(Cancelled::Canceled));
                job
            })
            .expect("build");
        pool.submit(0).expect("accepted");
        pool.submit(1).expect("accepted");
        started_rx.recv_timeout(LONG).expect("job 0 started");
        let results = pool.results().clone();
        pool.stop();
        let leftovers = pool.join();
        let mut outputs = drain(&results);
        outputs.extend(leftovers.undelivered);
        assert_eq!(outputs.len(), 1, "job 0's output, exactly once");
        assert_eq!(outputs[0].index, 0);
        let err = outputs[0].result.clone().expect_err("cancelled");
        assert_eq!(err, JobError::Cancelled(Cancelled::Canceled));
        assert_eq!(err.to_string(), "job cancelled: context canceled");
        assert_eq!(leftovers.unprocessed, [(1, 1)]);
    });
}

#[test]
fn ordered_keeps_submission_order_under_random_latency() {
    // With ordered delivery, results come out exactly 0..n in order whatever
    // the job latencies (50 seeds, default, 1 and 3 windows).
    with_timeout(LONG, || {
        const JOBS: u64 = 200;
        for seed in 0..50u64 {
            let builder = WorkerPool::builder().workers(4);
            let builder = match seed % 3 {
                0 => builder.ordered(),
                1 => builder.ordered_window(1),
                _ => builder.ordered_window(3),
            };
            // The sleep only scrambles completion order; nothing waits on it.
            let pool = builder
                .build(|_ctx, (index, micros): (u64, u64)| {
                    thread::sleep(Duration::from_micros(micros));
                    index
                })
                .expect("build");
            let mut rng = SplitMix64(seed);
            for index in 0..JOBS {
                let micros = if rng.below(2) == 0 {
                    0
                } else {
                    rng.below(2000)
                };
                assert_eq!(pool.submit((index, micros)), Ok(index));
            }
            pool.close();
            let indices: Vec<u64> = drain(pool.results())
                .into_iter()
                .map(|output| {
                    assert_eq!(output.result, Ok(output.index), "seed {seed}");
                    output.index
                })
                .collect();
            let expected: Vec<u64> = (0..JOBS).collect();
            assert_eq!(indices, expected, "seed {seed}");
            assert!(pool.join().is_empty());
        }
    });
}

#[test]
fn ordered_window_bounds_results_held_ahead() {
    // ordered_window(2) with job 0 held: the window holds indices next..next+2
    // only, so at most (window - 1) results wait in it plus one per other
    // worker, nothing is delivered early, and order holds once 0 finishes.
    with_timeout(LONG, || {
        const WORKERS: usize = 4;
        const WINDOW: usize = 2;
        const JOBS: u64 = 50;
        let gate = Gate::new();
        let finished = Arc::new(AtomicUsize::new(0));
        let pool = WorkerPool::builder()
            .workers(WORKERS)
            .ordered_window(WINDOW)
            .results_capacity(1)
            .build({
                let (gate, finished) = (gate.clone(), Arc::clone(&finished));
                move |_ctx, job: u64| {
                    if job == 0 {
                        gate.wait();
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                    job
                }
            })
            .expect("build");
        for job in 0..JOBS {
            pool.submit(job).expect("accepted");
        }
        // Job 1 fits the window; jobs 2.. do not, so each other worker
        // finishes one and waits with it.
        let ahead = (WINDOW - 1) + (WORKERS - 1);
        assert!(
            wait_until(LONG, || finished.load(Ordering::SeqCst) == ahead),
            "finished ahead of job 0: {}",
            finished.load(Ordering::SeqCst)
        );
        assert!(
            !wait_until(Duration::from_millis(50), || finished
                .load(Ordering::SeqCst)
                > ahead),
            "workers ran past the window"
        );
        assert!(pool.results().is_empty(), "nothing delivered before job 0");
        assert_eq!(pool.stats().completed, ahead as u64);

        gate.open();
        pool.close();
        let mut indices = Vec::new();
        for output in pool.results() {
            indices.push(output.index);
            // Finished but unread: one in the results channel, a run of at
            // most `window` being emitted, at most `window` held, and one per
            // other worker waiting to insert.
            let unread = finished.load(Ordering::SeqCst) - indices.len();
            assert!(
                unread <= 1 + 2 * WINDOW + (WORKERS - 1),
                "{unread} results finished but unread"
            );
        }
        let expected: Vec<u64> = (0..JOBS).collect();
        assert_eq!(indices, expected);
        assert!(pool.join().is_empty());
    });
}

#[test]
fn drop_with_full_results_does_not_deadlock() {
    // Dropping a pool whose results nobody reads returns, its threads exit,
    // and every job is dropped exactly once (run or not).
    with_timeout(LONG, || {
        const WORKERS: usize = 3;
        const JOBS: usize = 20;
        let dropped = Arc::new(AtomicUsize::new(0));
        let pool = WorkerPool::builder()
            .workers(WORKERS)
            .results_capacity(1)
            .thread_name("wpdrop")
            .build(|_ctx, job: DropCounter| job)
            .expect("build");
        for _ in 0..JOBS {
            pool.submit(DropCounter(Arc::clone(&dropped)))
                .expect("accepted");
        }
        // One result fills the channel and each worker blocks with another.
        let stalled = 1 + WORKERS as u64;
        assert!(wait_until(LONG, || pool.stats().completed == stalled));
        drop(pool);
        assert!(
            wait_until(LONG, || threads_named("wpdrop") == 0),
            "{:?}",
            thread_names()
        );
        assert_eq!(dropped.load(Ordering::SeqCst), JOBS);
    });
}

#[test]
fn build_rejects_bad_results_capacity_and_window() {
    // Oversized results capacity and an ordered window of 0 or beyond the
    // maximum fail build() with exact messages, starting no thread.
    let err = WorkerPool::builder()
        .results_capacity(MAX_QUEUE_CAPACITY + 1)
        .thread_name("wpbad")
        .build(|_ctx, job: u8| job)
        .expect_err("results capacity too large");
    assert!(matches!(
        err,
        BuildError::ResultsTooLarge {
            requested,
            max: MAX_QUEUE_CAPACITY,
        } if requested == MAX_QUEUE_CAPACITY + 1
    ));
    assert_eq!(
        err.to_string(),
        "results capacity must be at most 1048576, got 1048577"
    );

    let err = WorkerPool::builder()
        .ordered_window(0)
        .thread_name("wpbad")
        .build(|_ctx, job: u8| job)
        .expect_err("window of zero");
    assert!(matches!(
        err,
        BuildError::InvalidWindow {
            requested: 0,
            max: MAX_QUEUE_CAPACITY,
        }
    ));
    assert_eq!(
        err.to_string(),
        "ordered window must be between 1 and 1048576, got 0"
    );

    let err = WorkerPool::builder()
        .ordered_window(MAX_QUEUE_CAPACITY + 1)
        .thread_name("wpbad")
        .build(|_ctx, job: u8| job)
        .expect_err("window too large");
    assert_eq!(
        err.to_string(),
        "ordered window must be between 1 and 1048576, got 1048577"
    );
    assert_eq!(threads_named("wpbad"), 0);
}

#[test]
fn stats_count_each_outcome() {
    // After a run with one panic and one timeout, stats() shows submitted,
    // completed, failed, panicked, timed_out and respawned exactly.
    with_timeout(LONG, || {
        let pool = WorkerPool::builder()
            .workers(2)
            .job_timeout(Duration::from_millis(200))
            .build(|ctx, job: u64| {
                match job {
                    3 => panic!("job 3 fails"),
                    5 => {
                        let _ = ctx.sleep(LONG);
                    }
                    _ => {}
                }
                job
            })
            .expect("build");
        for job in 0..10 {
            pool.submit(job).expect("accepted");
        }
        pool.close();
        assert_eq!(drain(pool.results()).len(), 10);
        // The retired worker counts its replacement before it exits.
        assert!(wait_until(LONG, || pool.stats().workers == 0));
        let stats = pool.stats();
        assert_eq!(stats.submitted, 10);
        assert_eq!(stats.completed, 8);
        assert_eq!(stats.failed, 2);
        assert_eq!(stats.panicked, 1);
        assert_eq!(stats.timed_out, 1);
        assert_eq!(stats.cancelled, 0);
        assert_eq!(stats.respawned, 1);
        assert_eq!((stats.busy, stats.queued), (0, 0));
        assert!(pool.join().is_empty());
    });
}

#[test]
fn dropping_a_pool_drains_its_queue_without_waiting_for_a_reader() {
    // Ten jobs held at a gate behind one worker, a results channel of one
    // that nobody reads: dropping the pool runs all ten (as dropping a
    // ThreadPool does) and does not hang on the unread results.
    with_timeout(LONG, || {
        let ran = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Gate::new());
        let pool = WorkerPool::builder()
            .workers(1)
            .results_capacity(1)
            .build({
                let (ran, gate) = (Arc::clone(&ran), Arc::clone(&gate));
                move |_ctx, n: u32| {
                    gate.wait();
                    ran.fetch_add(1, Ordering::SeqCst);
                    n
                }
            })
            .expect("a valid pool");
        for n in 0..10 {
            pool.submit(n).expect("room in the queue");
        }
        assert!(wait_until(LONG, || pool.stats().queued == 9));
        gate.open();
        drop(pool);
        assert_eq!(ran.load(Ordering::SeqCst), 10, "every queued job ran");
    });
}

#[test]
fn a_results_clone_still_receives_what_a_dropped_pool_drains() {
    with_timeout(LONG, || {
        let pool = WorkerPool::builder()
            .workers(2)
            .build(|_ctx, n: u32| n * 2)
            .expect("a valid pool");
        let results = pool.results().clone();
        for n in 0..100 {
            pool.submit(n).expect("room in the queue");
        }
        drop(pool);
        let mut got: Vec<u32> = results.iter().map(|out| out.result.unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, (0..100).map(|n| n * 2).collect::<Vec<_>>());
    });
}

#[test]
fn shutdown_timeout_accounts_for_every_job() {
    // One worker held past the timeout, 20 jobs queued behind it, nobody
    // reading: after the timeout every job is an output or a leftover.
    with_timeout(LONG, || {
        let saw_cancel = Arc::new(AtomicBool::new(false));
        let pool = WorkerPool::builder()
            .workers(1)
            .results_capacity(4)
            .build({
                let saw_cancel = Arc::clone(&saw_cancel);
                move |ctx: &brigade::Context, n: u32| {
                    if n == 0 {
                        // Held until the shutdown cancels it.
                        let cancelled = ctx.done().recv_timeout(LONG).is_err();
                        saw_cancel.store(cancelled, Ordering::SeqCst);
                    }
                    n
                }
            })
            .expect("a valid pool");
        for n in 0..20 {
            pool.submit(n).expect("room in the queue");
        }
        let reader = pool.results().clone();
        let leftovers = pool.shutdown_timeout(Duration::from_millis(50));
        assert!(
            saw_cancel.load(Ordering::SeqCst),
            "the held job saw the cancellation"
        );
        let read = reader.try_iter().count();
        assert_eq!(
            read + leftovers.unprocessed.len() + leftovers.undelivered.len(),
            20
        );
        assert_eq!(leftovers.unprocessed.len(), 19, "the queue was not drained");
    });
}

#[test]
fn shutdown_now_hands_back_the_queue() {
    with_timeout(LONG, || {
        let gate = Gate::new();
        let pool = held_pool("wpnow", &gate);
        let ctx = pool.context().clone();
        let opener = {
            let gate = gate.clone();
            thread::spawn(move || {
                let _ = ctx.done().recv_timeout(LONG);
                gate.open();
            })
        };
        let leftovers = pool.shutdown_now();
        opener.join().expect("opened");
        assert_eq!(leftovers.unprocessed, [(1, 1)]);
    });
}
