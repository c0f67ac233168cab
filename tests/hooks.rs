//! The `on_job_done` hook: it sees every job exactly once, with ids
//! `0..n` in submission order, the outcome that happened (completed,
//! panicked, timed out, interrupted, cancelled through the handle or
//! discarded by shutdown), and plausible queue waits and run times; a
//! panicking hook does not hurt the pool; and `WorkerPool` has the hook too.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use brigade::{Cancelled, Context, JobError, JobEvent, JobOutcome, ThreadPool, WorkerPool};
use crossbeam_channel::RecvTimeoutError;
use parking_lot::Mutex;

use common::{Gate, LONG, Latch, occupy_worker, wait_until, with_timeout};

/// The events a hook saw, shared with the test.
type Events = Arc<Mutex<Vec<JobEvent>>>;

/// A hook that records every event in the returned list.
fn recorder() -> (Events, impl Fn(&JobEvent) + Send + Sync + 'static) {
    let events = Events::default();
    let sink = Arc::clone(&events);
    (events, move |event: &JobEvent| sink.lock().push(*event))
}

/// The recorded events by job id, asserting that no id was seen twice.
fn by_id(events: &Events) -> BTreeMap<u64, JobEvent> {
    let mut map = BTreeMap::new();
    for event in events.lock().iter() {
        assert!(
            map.insert(event.id, *event).is_none(),
            "job {} reported twice",
            event.id
        );
    }
    map
}

/// Asserts that the events cover exactly ids `0..n`, each once.
fn assert_ids_once(events: &Events, n: u64) {
    let mut ids: Vec<u64> = events.lock().iter().map(|e| e.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..n).collect::<Vec<_>>());
}

#[test]
fn sees_every_job_once_with_sequential_ids() {
    // 4 threads submit 2,000 jobs in all; the hook sees each exactly once,
    // with ids 0..2,000 and outcome Completed.
    with_timeout(LONG, || {
        const PER_THREAD: u64 = 500;
        let (events, hook) = recorder();
        let pool = ThreadPool::builder()
            .workers(4)
            .thread_name("hkids")
            .on_job_done(hook)
            .build()
            .unwrap();
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..PER_THREAD {
                        pool.execute(|| {}).unwrap();
                    }
                });
            }
        });
        pool.join();
        assert_ids_once(&events, 4 * PER_THREAD);
        assert!(
            events
                .lock()
                .iter()
                .all(|e| e.outcome == JobOutcome::Completed)
        );
    });
}

#[test]
fn outcomes_completed_panicked_timed_out() {
    // A clean job is Completed, a panicking one Panicked, and one that
    // returns after its per-job timeout TimedOut; each seen once.
    with_timeout(LONG, || {
        let (events, hook) = recorder();
        let pool = ThreadPool::builder()
            .workers(1)
            .thread_name("hkout")
            .job_timeout(Duration::from_millis(20))
            .on_job_done(hook)
            .build()
            .unwrap();
        let clean = pool.submit(|_: &Context| 7).unwrap();
        let panics = pool
            .submit(|_: &Context| -> u32 { panic!("hook test panic") })
            .unwrap();
        let slow = pool
            .submit(|ctx: &Context| {
                let _ = ctx.sleep(LONG);
            })
            .unwrap();
        assert_eq!(clean.join(), Ok(7));
        assert_eq!(
            panics.join(),
            Err(JobError::Panicked("hook test panic".into()))
        );
        assert_eq!(slow.join(), Err(JobError::TimedOut));
        pool.join();
        let seen = by_id(&events);
        let outcomes: Vec<_> = seen.values().map(|e| (e.id, e.outcome)).collect();
        assert_eq!(
            outcomes,
            [
                (0, JobOutcome::Completed),
                (1, JobOutcome::Panicked),
                (2, JobOutcome::TimedOut),
            ]
        );
        assert!(seen[&2].run_time >= Duration::from_millis(20), "{seen:?}");
    });
}

#[test]
fn handle_cancelled_queued_job_is_cancelled() {
    // A queued job cancelled through its handle never runs; the hook sees
    // it once as Cancelled with a zero run time.
    with_timeout(LONG, || {
        let (events, hook) = recorder();
        let pool = ThreadPool::builder()
            .workers(1)
            .thread_name("hkcanc")
            .on_job_done(hook)
            .build()
            .unwrap();
        let gate = Gate::new();
        let blocker = occupy_worker(&pool, &gate);
        let cancelled = pool
            .submit(|_: &Context| panic!("a cancelled job must not run"))
            .unwrap();
        let after = pool.submit(|_: &Context| "ran").unwrap();
        cancelled.cancel();
        gate.open();
        assert_eq!(blocker.join(), Ok(()));
        assert_eq!(after.join(), Ok("ran"));
        assert_eq!(
            cancelled.join(),
            Err(JobError::Cancelled(Cancelled::Canceled))
        );
        pool.join();
        let seen = by_id(&events);
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert_eq!(seen[&0].outcome, JobOutcome::Completed);
        assert_eq!(seen[&2].outcome, JobOutcome::Completed);
        assert_eq!(seen[&1].outcome, JobOutcome::Cancelled, "{seen:?}");
        assert_eq!(seen[&1].run_time, Duration::ZERO, "{:?}", seen[&1]);
    });
}

#[test]
fn shutdown_now_discards_report_cancelled() {
    // shutdown_now discards the 5 queued jobs, each seen once as Cancelled
    // with a zero run time; the running job, whose context it cancels, is
    // Interrupted.
    with_timeout(LONG, || {
        let (events, hook) = recorder();
        let pool = ThreadPool::builder()
            .workers(1)
            .thread_name("hkshut")
            .on_job_done(hook)
            .build()
            .unwrap();
        let started = Latch::new(1);
        let running = {
            let started = Arc::clone(&started);
            pool.submit(move |ctx: &Context| {
                started.count_down();
                ctx.sleep(LONG)
            })
            .unwrap()
        };
        started.wait();
        let queued: Vec<_> = (0..5)
            .map(|_| pool.submit(|_: &Context| panic!("discarded")).unwrap())
            .collect();
        let report = pool.shutdown_now();
        assert_eq!((report.submitted, report.never_ran), (6, 5), "{report:?}");
        assert_eq!(
            running.join(),
            Err(JobError::Cancelled(Cancelled::Canceled))
        );
        for handle in queued {
            assert_eq!(handle.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        }
        let seen = by_id(&events);
        assert_eq!(seen.len(), 6, "{seen:?}");
        assert_eq!(seen[&0].outcome, JobOutcome::Interrupted);
        for id in 1..=5 {
            assert_eq!(seen[&id].outcome, JobOutcome::Cancelled, "{seen:?}");
            assert_eq!(seen[&id].run_time, Duration::ZERO);
        }
    });
}

#[test]
fn timings_are_plausible() {
    // A job that sleeps 5 ms reports a run time of at least 5 ms, and jobs
    // held in the queue report a queue wait of at least the hold.
    with_timeout(LONG, || {
        let (events, hook) = recorder();
        let pool = ThreadPool::builder()
            .workers(1)
            .thread_name("hktime")
            .on_job_done(hook)
            .build()
            .unwrap();
        let gate = Gate::new();
        let blocker = occupy_worker(&pool, &gate);
        let sleepers: Vec<_> = (0..3)
            .map(|_| {
                pool.submit(|ctx: &Context| ctx.sleep(Duration::from_millis(5)))
                    .unwrap()
            })
            .collect();
        let held_since = Instant::now();
        // Hold them for 20 ms, checking all along that they stay queued.
        while held_since.elapsed() < Duration::from_millis(20) {
            assert_eq!(pool.stats().queued, 3);
        }
        let held = held_since.elapsed();
        gate.open();
        assert_eq!(blocker.join(), Ok(()));
        for handle in sleepers {
            assert_eq!(handle.join(), Ok(Ok(())));
        }
        pool.join();
        let seen = by_id(&events);
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert!(seen[&0].run_time >= held, "{:?} held {held:?}", seen[&0]);
        for id in 1..=3 {
            let event = seen[&id];
            assert_eq!(event.outcome, JobOutcome::Completed);
            assert!(event.run_time >= Duration::from_millis(5), "{event:?}");
            assert!(event.run_time < LONG, "{event:?}");
            assert!(event.queue_wait >= held, "{event:?} held {held:?}");
        }
        // Each waited for the blocker and every sleeper before it.
        assert!(seen[&3].queue_wait >= held + Duration::from_millis(10));
    });
}

#[test]
fn panicking_hook_does_not_hurt_the_pool() {
    // A hook that panics on every event is logged and ignored: jobs still
    // complete, nothing counts as panicked or respawned, the workers stay,
    // and shutdown_now's discards still return.
    with_timeout(LONG, || {
        let calls = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&calls);
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("hkpanic")
            .on_job_done(move |event| {
                counted.fetch_add(1, Ordering::SeqCst);
                panic!("hook panics for job {}", event.id);
            })
            .build()
            .unwrap();
        let handles: Vec<_> = (0..100u64)
            .map(|n| pool.submit(move |_: &Context| n).unwrap())
            .collect();
        for (n, handle) in (0..100u64).zip(handles) {
            assert_eq!(handle.join(), Ok(n));
        }
        assert!(wait_until(LONG, || calls.load(Ordering::SeqCst) == 100));
        let stats = pool.stats();
        assert_eq!(
            (
                stats.workers,
                stats.completed,
                stats.panicked,
                stats.respawned
            ),
            (2, 100, 0, 0),
            "{stats}"
        );
        // Discards call the hook on the shutting-down thread: it must
        // still get to wait for the (gate-held) workers and return.
        let gate = Gate::new();
        let blockers = [occupy_worker(&pool, &gate), occupy_worker(&pool, &gate)];
        let queued: Vec<_> = (0..3)
            .map(|_| pool.submit(|_: &Context| ()).unwrap())
            .collect();
        let shutdown = thread::spawn(move || pool.shutdown_now());
        assert!(wait_until(LONG, || calls.load(Ordering::SeqCst) == 103));
        gate.open();
        let report = shutdown.join().expect("shutdown_now returned");
        assert_eq!((report.submitted, report.never_ran), (105, 3), "{report:?}");
        for handle in queued {
            assert_eq!(handle.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        }
        for handle in blockers {
            assert_eq!(handle.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 105);
    });
}

#[test]
fn worker_pool_hook_sees_every_job() {
    // On a WorkerPool the hook sees ids 0..n, the same as the outputs'
    // indices, with a handler panic reported as Panicked.
    with_timeout(LONG, || {
        const JOBS: u64 = 300;
        let (events, hook) = recorder();
        let pool = WorkerPool::builder()
            .workers(3)
            .thread_name("hkwp")
            .on_job_done(hook)
            .build(|_: &Context, n: u64| {
                assert!(n != 13, "unlucky job");
                n
            })
            .unwrap();
        for n in 0..JOBS {
            assert_eq!(pool.submit(n).unwrap(), n);
        }
        pool.close();
        let mut indices = Vec::new();
        loop {
            match pool.results().recv_timeout(LONG) {
                Ok(output) => {
                    assert_eq!(output.result.is_err(), output.index == 13);
                    indices.push(output.index);
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("no result within {LONG:?}"),
            }
        }
        indices.sort_unstable();
        assert_eq!(indices, (0..JOBS).collect::<Vec<_>>());
        // The channel disconnects after the last worker exits, and each
        // worker calls the hook before taking its next job.
        assert_ids_once(&events, JOBS);
        let seen = by_id(&events);
        for (id, event) in &seen {
            let want = if *id == 13 {
                JobOutcome::Panicked
            } else {
                JobOutcome::Completed
            };
            assert_eq!(event.outcome, want, "{event:?}");
        }
        assert!(pool.join().is_empty());
    });
}

#[test]
fn worker_pool_stop_reports_discards() {
    // WorkerPool::stop discards the queue; the hook sees each discarded job
    // once as Cancelled, and join hands them back unprocessed.
    with_timeout(LONG, || {
        let (events, hook) = recorder();
        let gate = Gate::new();
        let started = Latch::new(1);
        let pool = {
            let gate = gate.clone();
            let started = Arc::clone(&started);
            WorkerPool::builder()
                .workers(1)
                .thread_name("hkwps")
                .on_job_done(hook)
                .build(move |_: &Context, n: u64| {
                    if n == 0 {
                        started.count_down();
                        gate.wait();
                    }
                    n
                })
                .unwrap()
        };
        for n in 0..5 {
            pool.submit(n).unwrap();
        }
        started.wait();
        pool.stop();
        gate.open();
        let leftovers = pool.join();
        let mut unprocessed: Vec<u64> = leftovers.unprocessed.iter().map(|(i, _)| *i).collect();
        unprocessed.sort_unstable();
        assert_eq!(unprocessed, [1, 2, 3, 4]);
        assert_ids_once(&events, 5);
        let seen = by_id(&events);
        assert_eq!(seen[&0].outcome, JobOutcome::Interrupted, "{seen:?}");
        for id in 1..5 {
            assert_eq!(seen[&id].outcome, JobOutcome::Cancelled, "{seen:?}");
        }
    });
}
