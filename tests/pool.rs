//! `ThreadPool` and `JobHandle`: every job runs exactly once under many
//! submitters, values come back through handles, `join_timeout`,
//! `is_finished`, `cancel`, the stats balance, thread names, thread hooks
//! and the stack size.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use brigade::{Cancelled, Context, JobError, ThreadPool};
use parking_lot::Mutex;

use common::{Gate, LONG, Latch, occupy_worker, threads_named, wait_until, with_timeout};

const SUBMITTERS: usize = 8;
const JOBS_PER_SUBMITTER: usize = 5_000;

#[test]
fn every_job_runs_exactly_once() {
    // 8 threads submitting 5,000 jobs each: every job runs exactly once.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(4)
            .queue_capacity(64)
            .build()
            .expect("build");
        let total = SUBMITTERS * JOBS_PER_SUBMITTER;
        let runs: Arc<Vec<AtomicU8>> = Arc::new((0..total).map(|_| AtomicU8::new(0)).collect());
        thread::scope(|s| {
            for submitter in 0..SUBMITTERS {
                let (pool, runs) = (&pool, &runs);
                s.spawn(move || {
                    for n in 0..JOBS_PER_SUBMITTER {
                        let index = submitter * JOBS_PER_SUBMITTER + n;
                        let runs = Arc::clone(runs);
                        let job = move || {
                            runs[index].fetch_add(1, Ordering::Relaxed);
                        };
                        if n % 2 == 0 {
                            pool.execute(job).expect("execute accepted");
                        } else {
                            // Detached handle: the job still runs.
                            drop(pool.submit(move |_ctx: &Context| job()));
                        }
                    }
                });
            }
        });
        let stats = pool.stats();
        assert_eq!(stats.submitted, total as u64);
        pool.join();
        let wrong: Vec<(usize, u8)> = runs
            .iter()
            .map(|r| r.load(Ordering::Relaxed))
            .enumerate()
            .filter(|&(_, count)| count != 1)
            .take(10)
            .collect();
        assert!(wrong.is_empty(), "(job, runs) not run once: {wrong:?}");
    });
}

#[test]
fn submit_returns_values_through_handles() {
    // Each handle returns the value its own job computed.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(3).build().expect("build");
        let handles: Vec<_> = (0..500u64)
            .map(|n| pool.submit(move |_ctx: &Context| n * n).expect("submit"))
            .collect();
        for (n, handle) in (0..500u64).zip(handles) {
            assert_eq!(handle.join(), Ok(n * n));
        }
        let text = pool
            .submit(|_ctx: &Context| String::from("owned"))
            .expect("submit");
        assert_eq!(text.join().as_deref(), Ok("owned"));
    });
}

#[test]
fn join_timeout_none_then_some() {
    // join_timeout returns None while the job runs and Some once it is done;
    // the result is then gone.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(1).build().expect("build");
        let gate = Gate::new();
        let job_gate = gate.clone();
        let mut handle = pool
            .submit(move |_ctx: &Context| {
                job_gate.wait();
                7
            })
            .expect("submit");
        assert_eq!(handle.join_timeout(Duration::from_millis(20)), None);
        assert!(!handle.is_finished());
        gate.open();
        assert_eq!(handle.join_timeout(LONG), Some(Ok(7)));
        assert!(handle.is_finished());
        assert_eq!(
            handle.join_timeout(Duration::ZERO),
            Some(Err(JobError::AlreadyJoined))
        );
        let again = handle.join().unwrap_err();
        assert_eq!(again, JobError::AlreadyJoined);
        assert_eq!(
            again.to_string(),
            "the job's result was already taken by an earlier join_timeout"
        );
    });
}

#[test]
fn is_finished_tracks_completion() {
    // is_finished is false while the job runs and true once join would not
    // block.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(1).build().expect("build");
        let gate = Gate::new();
        let job_gate = gate.clone();
        let handle = pool
            .submit(move |_ctx: &Context| job_gate.wait())
            .expect("submit");
        assert!(!handle.is_finished());
        gate.open();
        assert!(wait_until(LONG, || handle.is_finished()));
        assert_eq!(handle.join(), Ok(()));
    });
}

#[test]
fn cancel_queued_job_never_runs() {
    // JobHandle::cancel on a queued job: it never runs, and join says
    // Cancelled(Canceled) at once.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(1).build().expect("build");
        let gate = Gate::new();
        let blocker = occupy_worker(&pool, &gate);
        let ran = Arc::new(AtomicBool::new(false));
        let queued = {
            let ran = Arc::clone(&ran);
            pool.submit(move |_ctx: &Context| ran.store(true, Ordering::SeqCst))
                .expect("submit")
        };
        assert!(!queued.is_finished());
        queued.cancel();
        assert!(queued.is_finished(), "a cancelled queued job is finished");
        gate.open();
        assert_eq!(blocker.join(), Ok(()));
        let err = queued.join().unwrap_err();
        assert_eq!(err, JobError::Cancelled(Cancelled::Canceled));
        assert_eq!(err.to_string(), "job cancelled: context canceled");
        // A later job runs after the skipped one, so the skip is behind us.
        assert_eq!(
            pool.submit(|_ctx: &Context| 1).expect("submit").join(),
            Ok(1)
        );
        assert!(!ran.load(Ordering::SeqCst));
        let stats = pool.stats();
        assert_eq!(stats.cancelled, 1);
        assert!(!pool.context().is_done(), "only the one job was cancelled");
    });
}

#[test]
fn cancel_running_job_cancels_its_context() {
    // JobHandle::cancel on a running job cancels that job's context (not the
    // pool's); the value it returns afterwards is discarded.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(1).build().expect("build");
        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        let (seen_tx, seen_rx) = crossbeam_channel::bounded(1);
        let handle = pool
            .submit(move |ctx: &Context| {
                started_tx.send(()).expect("the test waits");
                let slept = ctx.sleep(LONG);
                seen_tx.send(slept).expect("the test waits");
                "value"
            })
            .expect("submit");
        started_rx.recv_timeout(LONG).expect("the job started");
        handle.cancel();
        assert_eq!(
            seen_rx.recv_timeout(LONG).expect("the job woke"),
            Err(Cancelled::Canceled)
        );
        assert_eq!(handle.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        assert!(!pool.context().is_done());
        assert_eq!(
            pool.submit(|_ctx: &Context| 2).expect("submit").join(),
            Ok(2)
        );
    });
}

#[test]
fn cancel_finished_job_changes_nothing() {
    // JobHandle::cancel after the job finished keeps its value.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(1).build().expect("build");
        let handle = pool.submit(|_ctx: &Context| 5).expect("submit");
        assert!(wait_until(LONG, || handle.is_finished()));
        handle.cancel();
        assert_eq!(handle.join(), Ok(5));
    });
}

#[test]
fn stats_balance_after_quiescence() {
    // Once nothing is queued or running, submitted == completed + failed +
    // cancelled, with each outcome in its own counter.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(1)
            .thread_name("pst")
            .build()
            .expect("build");
        // 5 jobs cancelled while queued.
        let gate = Gate::new();
        let blocker = occupy_worker(&pool, &gate);
        let queued: Vec<_> = (0..5)
            .map(|_| pool.submit(|_ctx: &Context| ()).expect("submit"))
            .collect();
        for handle in &queued {
            handle.cancel();
        }
        gate.open();
        assert_eq!(blocker.join(), Ok(()));
        // 100 clean jobs (through both doors), 10 panics, 3 cancelled while
        // running.
        let ok: Vec<_> = (0..50)
            .map(|n| pool.submit(move |_ctx: &Context| n).expect("submit"))
            .collect();
        for _ in 0..50 {
            pool.execute(|| {}).expect("execute");
        }
        let panics: Vec<_> = (0..10)
            .map(|n| {
                pool.submit(move |_ctx: &Context| -> () { panic!("stats panic {n}") })
                    .expect("submit")
            })
            .collect();
        for _ in 0..3 {
            let (started_tx, started_rx) = crossbeam_channel::bounded(1);
            let handle = pool
                .submit(move |ctx: &Context| {
                    started_tx.send(()).expect("the test waits");
                    let _ = ctx.sleep(LONG);
                })
                .expect("submit");
            started_rx.recv_timeout(LONG).expect("started");
            handle.cancel();
            assert_eq!(handle.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        }
        for handle in queued {
            assert_eq!(handle.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        }
        for (n, handle) in ok.into_iter().enumerate() {
            assert_eq!(handle.join(), Ok(n));
        }
        for handle in panics {
            assert!(matches!(handle.join(), Err(JobError::Panicked(_))));
        }
        // Counters are published just after the handles; wait for them.
        let balanced = wait_until(LONG, || {
            let s = pool.stats();
            s.busy == 0 && s.queued == 0 && s.submitted == s.completed + s.failed + s.cancelled
        });
        let stats = pool.stats();
        assert!(balanced, "never balanced: {stats}");
        assert_eq!(stats.submitted, 1 + 5 + 100 + 10 + 3);
        assert_eq!(stats.completed, 1 + 100);
        assert_eq!(stats.panicked, 10);
        assert_eq!(stats.timed_out, 0);
        assert_eq!(stats.failed, 10 + 3);
        assert_eq!(stats.cancelled, 5);
        assert!(wait_until(LONG, || {
            let s = pool.stats();
            s.workers == 1 && s.respawned == 10
        }));
    });
}

#[test]
fn thread_names_follow_prefix() {
    // thread_name("pnm") names the workers "pnm-0", "pnm-1", "pnm-2".
    with_timeout(LONG, || {
        const WORKERS: usize = 3;
        let pool = ThreadPool::builder()
            .workers(WORKERS)
            .thread_name("pnm")
            .build()
            .expect("build");
        // Each job waits until all have started, so each runs on its own
        // worker.
        let all_started = Latch::new(WORKERS);
        let handles: Vec<_> = (0..WORKERS)
            .map(|_| {
                let all_started = Arc::clone(&all_started);
                pool.submit(move |_ctx: &Context| {
                    all_started.count_down();
                    all_started.wait();
                    thread::current().name().map(str::to_owned)
                })
                .expect("submit")
            })
            .collect();
        let mut names: Vec<String> = handles
            .into_iter()
            .map(|h| h.join().expect("job ran").expect("worker is named"))
            .collect();
        names.sort();
        assert_eq!(names, ["pnm-0", "pnm-1", "pnm-2"]);
        assert_eq!(threads_named("pnm"), WORKERS);
    });
}

#[test]
fn default_thread_name_is_brigade() {
    // Without thread_name, workers are named "brigade-{index}".
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(1).build().expect("build");
        let name = pool
            .submit(|_ctx: &Context| thread::current().name().map(str::to_owned))
            .expect("submit")
            .join()
            .expect("job ran");
        assert_eq!(name.as_deref(), Some("brigade-0"));
    });
}

#[test]
fn thread_hooks_run_once_per_worker() {
    // on_thread_start and on_thread_exit run once on each worker, on that
    // worker's own thread, with its index.
    with_timeout(LONG, || {
        const WORKERS: usize = 4;
        let started = Arc::new(Mutex::new(Vec::new()));
        let exited = Arc::new(Mutex::new(Vec::new()));
        let pool = {
            let started = Arc::clone(&started);
            let exited = Arc::clone(&exited);
            ThreadPool::builder()
                .workers(WORKERS)
                .thread_name("phk")
                .on_thread_start(move |index| {
                    let name = thread::current().name().map(str::to_owned);
                    started.lock().push((index, name));
                })
                .on_thread_exit(move |index| {
                    let name = thread::current().name().map(str::to_owned);
                    exited.lock().push((index, name));
                })
                .build()
                .expect("build")
        };
        for _ in 0..100 {
            pool.execute(|| {}).expect("execute");
        }
        pool.join();
        let expected: Vec<(usize, Option<String>)> = (0..WORKERS)
            .map(|i| (i, Some(format!("phk-{i}"))))
            .collect();
        let mut started = started.lock().clone();
        started.sort();
        assert_eq!(started, expected);
        let mut exited = exited.lock().clone();
        exited.sort();
        assert_eq!(exited, expected);
    });
}

/// The size in bytes of the memory mapping that holds the calling thread's
/// stack, read from `/proc/self/maps`.
fn current_stack_mapping_size() -> usize {
    let local = 0u8;
    let addr = std::ptr::from_ref(&local) as usize;
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    for line in maps.lines() {
        let range = line.split_whitespace().next().expect("a range");
        let (start, end) = range.split_once('-').expect("start-end");
        let start = usize::from_str_radix(start, 16).expect("hex start");
        let end = usize::from_str_radix(end, 16).expect("hex end");
        if (start..end).contains(&addr) {
            return end - start;
        }
    }
    panic!("no mapping holds the stack address {addr:#x}");
}

#[test]
fn stack_size_sets_worker_stack() {
    // stack_size(n) gives each worker a stack of about n bytes.
    with_timeout(LONG, || {
        const MIB: usize = 1 << 20;
        for requested in [6 * MIB, 12 * MIB] {
            let pool = ThreadPool::builder()
                .workers(1)
                .stack_size(requested)
                .build()
                .expect("build");
            let size = pool
                .submit(|_ctx: &Context| current_stack_mapping_size())
                .expect("submit")
                .join()
                .expect("job ran");
            assert!(
                size >= requested - MIB / 2 && size <= requested + MIB,
                "asked for {requested} bytes of stack, the mapping has {size}"
            );
        }
    });
}

#[test]
fn execute_runs_closures() {
    // execute runs fire-and-forget closures; join waits for them.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(2).build().expect("build");
        let count = Arc::new(AtomicUsize::new(0));
        for _ in 0..1000 {
            let count = Arc::clone(&count);
            pool.execute(move || {
                count.fetch_add(1, Ordering::Relaxed);
            })
            .expect("execute");
        }
        pool.join();
        assert_eq!(count.load(Ordering::Relaxed), 1000);
    });
}

#[test]
fn jobs_get_a_child_of_the_pool_context() {
    // Each job's context is live, distinct from the pool's, and cancelled
    // when the pool's is.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(1).build().expect("build");
        let pool_ctx = pool.context().clone();
        let (ctx_tx, ctx_rx) = crossbeam_channel::bounded(1);
        let (go_tx, go_rx) = crossbeam_channel::bounded::<()>(1);
        let handle = pool
            .submit(move |ctx: &Context| {
                ctx_tx.send(ctx.clone()).expect("the test waits");
                let _ = go_rx.recv_timeout(LONG);
                ctx.reason()
            })
            .expect("submit");
        let job_ctx: Context = ctx_rx.recv_timeout(LONG).expect("the job started");
        assert!(!job_ctx.same_context(&pool_ctx));
        assert!(!job_ctx.is_done());
        pool_ctx.cancel();
        assert_eq!(job_ctx.reason(), Some(Cancelled::Canceled));
        go_tx.send(()).expect("the job waits");
        // The job returned after its context was cancelled.
        assert_eq!(handle.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
    });
}
