//! Nothing is lost and nothing is dropped twice: every job closure, every
//! input item and every result value given to or made by a brigade front
//! door is dropped exactly once — run, discarded by a shutdown or a
//! cancellation, cancelled through its handle, handed back by a refused
//! submit, left unjoined, left unread in a results channel, dropped by a
//! failing pipeline, refused by a cancelled group, in flight when a `Map`
//! is dropped, or spawned in a scope.
//!
//! The proof is crossbeam's `drops` test, with names: each [`Tracked`]
//! value has an id in a [`Ledger`] that counts its drops. At quiescence
//! (after join or shutdown) the ledger must show every value created
//! dropped exactly once; a count of 0 is a leak, a count of 2 a double drop.

mod common;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use brigade::{
    Cancelled, Context, ErrGroup, GroupError, JobError, Pipeline, PipelineError, SpawnError,
    StageError, SubmitError, ThreadPool, TryMapError, TrySubmitError, WorkerPool,
};
use parking_lot::Mutex;

use common::{Gate, LONG, SplitMix64, occupy_worker, wait_until, with_timeout};

/// Counts, per value, how often each [`Tracked`] value was dropped.
#[derive(Debug, Default)]
struct Ledger {
    drops: Mutex<Vec<u32>>,
}

/// A value that records its drop in its [`Ledger`].
struct Tracked {
    id: usize,
    ledger: Arc<Ledger>,
}

impl Ledger {
    fn new() -> Arc<Self> {
        Arc::default()
    }

    /// A new value with the next id.
    fn track(self: &Arc<Self>) -> Tracked {
        let mut drops = self.drops.lock();
        drops.push(0);
        Tracked {
            id: drops.len() - 1,
            ledger: Arc::clone(self),
        }
    }

    fn created(&self) -> usize {
        self.drops.lock().len()
    }

    /// How many drops were recorded in all.
    fn dropped(&self) -> usize {
        self.drops.lock().iter().map(|&n| n as usize).sum()
    }

    /// How often value `id` was dropped.
    fn drops_of(&self, id: usize) -> u32 {
        self.drops.lock()[id]
    }

    /// Asserts that `created` values were made and each was dropped exactly
    /// once, naming the values that were not.
    fn assert_each_dropped_once(&self, created: usize) {
        let drops = self.drops.lock();
        let leaked: Vec<usize> = (0..drops.len()).filter(|&id| drops[id] == 0).collect();
        let twice: Vec<(usize, u32)> = (0..drops.len())
            .filter(|&id| drops[id] > 1)
            .map(|id| (id, drops[id]))
            .collect();
        assert!(
            leaked.is_empty() && twice.is_empty(),
            "of {} values, never dropped: {leaked:?}; dropped more than once (id, drops): {twice:?}",
            drops.len()
        );
        assert_eq!(drops.len(), created, "values created");
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.ledger.drops.lock()[self.id] += 1;
    }
}

impl fmt::Debug for Tracked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tracked({})", self.id)
    }
}

impl fmt::Display for Tracked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tracked value {}", self.id)
    }
}

/// A pool of `workers` threads named `dr-…`.
fn pool(workers: usize) -> ThreadPool {
    ThreadPool::builder()
        .workers(workers)
        .thread_name("dr")
        .build()
        .expect("build")
}

/// A job that consumes its captured value and returns a new one.
fn job(ledger: &Arc<Ledger>) -> impl FnOnce(&Context) -> Tracked + Send + 'static {
    let (captured, ledger) = (ledger.track(), Arc::clone(ledger));
    move |_ctx: &Context| {
        drop(captured);
        ledger.track()
    }
}

#[test]
fn run_jobs_and_their_results_drop_once() {
    // Closures that ran and results joined or left unjoined each drop once.
    with_timeout(LONG, || {
        let ledger = Ledger::new();
        let pool = pool(2);
        let gate = Gate::new();
        let held = [occupy_worker(&pool, &gate), occupy_worker(&pool, &gate)];
        // Handles dropped while their jobs wait in the queue.
        for _ in 0..50 {
            drop(pool.submit(job(&ledger)).expect("submit"));
        }
        assert_eq!(ledger.dropped(), 0);
        gate.open();
        for held in held {
            assert_eq!(held.join(), Ok(()));
        }
        let handles: Vec<_> = (0..100)
            .map(|_| pool.submit(job(&ledger)).expect("submit"))
            .collect();
        for _ in 0..50 {
            let captured = ledger.track();
            pool.execute(move || drop(captured)).expect("execute");
        }
        for (i, handle) in handles.into_iter().enumerate() {
            if i % 2 == 0 {
                drop(handle.join().expect("the job ran"));
            } else {
                // Dropped after (or while) it ran.
                assert!(wait_until(LONG, || handle.is_finished()));
                drop(handle);
            }
        }
        pool.join();
        ledger.assert_each_dropped_once(50 * 2 + 100 * 2 + 50);
    });
}

#[test]
fn jobs_discarded_by_shutdown_now_drop_once() {
    // shutdown_now drops each discarded closure once, before it returns.
    with_timeout(LONG, || {
        let ledger = Ledger::new();
        let pool = pool(1);
        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        let sleeper = pool
            .submit(move |ctx: &Context| {
                started_tx.send(()).expect("the test waits");
                ctx.sleep(LONG)
            })
            .expect("submit");
        started_rx.recv_timeout(LONG).expect("the sleeper started");
        let mut kept = Vec::new();
        for i in 0..60 {
            let handle = pool.submit(job(&ledger)).expect("submit");
            if i % 2 == 0 {
                kept.push(handle);
            }
        }
        for _ in 0..40 {
            let captured = ledger.track();
            pool.execute(move || drop(captured)).expect("execute");
        }
        let report = pool.shutdown_now();
        assert_eq!(report.never_ran, 100, "{report:?}");
        assert_eq!(report.ran, 1, "{report:?}");
        // Every closure is gone already, though 30 handles are alive.
        assert_eq!(ledger.dropped(), 100);
        for handle in kept {
            assert_eq!(
                handle.join().map(drop),
                Err(JobError::Cancelled(Cancelled::Canceled))
            );
        }
        assert_eq!(
            sleeper.join(),
            Err(JobError::Cancelled(Cancelled::Canceled))
        );
        ledger.assert_each_dropped_once(100);
    });
}

#[test]
fn jobs_discarded_by_cancellation_drop_once() {
    // Pool cancellation and shutdown_timeout's hard cancel drop each queued closure once.
    with_timeout(LONG, || {
        let ledger = Ledger::new();
        for hard_cancel in [false, true] {
            let pool = pool(1);
            let (started_tx, started_rx) = crossbeam_channel::bounded(1);
            let sleeper = pool
                .submit(move |ctx: &Context| {
                    started_tx.send(()).expect("the test waits");
                    ctx.sleep(LONG)
                })
                .expect("submit");
            started_rx.recv_timeout(LONG).expect("the sleeper started");
            let handles: Vec<_> = (0..30)
                .map(|_| pool.submit(job(&ledger)).expect("submit"))
                .collect();
            if hard_cancel {
                let report = pool.shutdown_timeout(Duration::from_millis(20));
                assert!(!report.drained);
                assert_eq!(report.never_ran, 30, "{report:?}");
            } else {
                pool.context().cancel();
                assert!(wait_until(LONG, || pool.stats().cancelled == 30));
                pool.join();
            }
            let _ = sleeper.join();
            for handle in handles {
                assert_eq!(
                    handle.join().map(drop),
                    Err(JobError::Cancelled(Cancelled::Canceled))
                );
            }
        }
        ledger.assert_each_dropped_once(60);
    });
}

#[test]
fn cancelled_handle_drops_its_closure_at_once() {
    // JobHandle::cancel drops a queued closure at once, and only once.
    with_timeout(LONG, || {
        let ledger = Ledger::new();
        let pool = pool(1);
        let gate = Gate::new();
        let held = occupy_worker(&pool, &gate);
        let handles: Vec<_> = (0..10)
            .map(|_| pool.submit(job(&ledger)).expect("submit"))
            .collect();
        for handle in handles.iter().step_by(2) {
            handle.cancel();
            handle.cancel();
        }
        // Before the worker took any job, the five cancelled closures (and
        // the values they captured) are gone.
        assert_eq!(ledger.dropped(), 5);
        assert_eq!(ledger.created(), 10);
        gate.open();
        assert_eq!(held.join(), Ok(()));
        for (i, handle) in handles.into_iter().enumerate() {
            if i % 2 == 0 {
                assert_eq!(
                    handle.join().map(drop),
                    Err(JobError::Cancelled(Cancelled::Canceled))
                );
            } else {
                assert!(wait_until(LONG, || handle.is_finished()));
                handle.cancel();
                drop(handle.join().expect("the job ran"));
            }
        }
        pool.join();
        ledger.assert_each_dropped_once(10 + 5);
    });
}

#[test]
fn refused_jobs_are_handed_back_undropped() {
    // Every refused submit hands its closure back alive; the caller drops it once.
    with_timeout(LONG, || {
        let ledger = Ledger::new();
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(1)
            .thread_name("dr-full")
            .build()
            .expect("build");
        let gate = Gate::new();
        let held = occupy_worker(&pool, &gate);
        let queued = pool.submit(job(&ledger)).expect("room for one");

        // Each check: the value inside the handed-back closure is alive
        // until the closure is dropped here.
        let check = |id: usize, back: Box<dyn FnOnce() + '_>| {
            assert_eq!(ledger.drops_of(id), 0, "value {id} dropped while refused");
            back();
            assert_eq!(ledger.drops_of(id), 1, "value {id}");
        };
        let id = ledger.created();
        match pool.try_submit(job(&ledger)) {
            Err(TrySubmitError::Full(f)) => check(id, Box::new(move || drop(f))),
            other => panic!("try_submit on a full queue: {:?}", other.map(drop)),
        }
        let (id, captured) = (ledger.created(), ledger.track());
        match pool.try_execute(move || drop(captured)) {
            Err(TrySubmitError::Full(f)) => check(id, Box::new(move || drop(f))),
            other => panic!("try_execute on a full queue: {other:?}"),
        }
        let id = ledger.created();
        match pool.submit_timeout(job(&ledger), Duration::from_millis(5)) {
            Err(TrySubmitError::Full(f)) => check(id, Box::new(move || drop(f))),
            other => panic!("submit_timeout on a full queue: {:?}", other.map(drop)),
        }

        pool.context().cancel();
        let id = ledger.created();
        match pool.submit(job(&ledger)) {
            Err(SubmitError::Cancelled(f)) => check(id, Box::new(move || drop(f))),
            other => panic!("submit to a cancelled pool: {:?}", other.map(drop)),
        }
        let (id, captured) = (ledger.created(), ledger.track());
        match pool.execute(move || drop(captured)) {
            Err(err @ SubmitError::Cancelled(_)) => {
                let f = err.into_inner();
                check(id, Box::new(move || drop(f)));
            }
            other => panic!("execute on a cancelled pool: {other:?}"),
        }
        let id = ledger.created();
        match pool.try_submit(job(&ledger)) {
            Err(err @ TrySubmitError::Cancelled(_)) => {
                let f = err.into_inner();
                check(id, Box::new(move || drop(f)));
            }
            other => panic!("try_submit on a cancelled pool: {:?}", other.map(drop)),
        }
        gate.open();
        let _ = held.join();
        let _ = queued.join();
        pool.join();
        ledger.assert_each_dropped_once(7);
    });
}

#[test]
fn unjoined_and_discarded_results_drop_once() {
    // Unjoined, already-taken, timed-out and cancelled results each drop once.
    with_timeout(LONG, || {
        let ledger = Ledger::new();
        let pool = pool(2);
        // Never joined, handle dropped at once.
        for _ in 0..20 {
            drop(pool.submit(job(&ledger)).expect("submit"));
        }
        // Taken by join_timeout; the handle then has nothing left.
        let mut handle = pool.submit(job(&ledger)).expect("submit");
        let taken = loop {
            if let Some(result) = handle.join_timeout(LONG) {
                break result.expect("the job ran");
            }
        };
        assert_eq!(
            handle.join_timeout(Duration::ZERO).map(|r| r.map(drop)),
            Some(Err(JobError::AlreadyJoined))
        );
        assert_eq!(handle.join().map(drop), Err(JobError::AlreadyJoined));
        drop(taken);
        // Returned after its own timeout: the value is discarded.
        let timing_out = ThreadPool::builder()
            .workers(1)
            .thread_name("dr-late")
            .job_timeout(Duration::from_millis(20))
            .build()
            .expect("build");
        let late = {
            let ledger = Arc::clone(&ledger);
            timing_out
                .submit(move |ctx: &Context| {
                    let _ = ctx.done().recv_timeout(LONG);
                    ledger.track()
                })
                .expect("submit")
        };
        assert_eq!(late.join().map(drop), Err(JobError::TimedOut));
        timing_out.join();
        // Cancelled through its handle while running: discarded.
        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(1);
        let cancelled = {
            let ledger = Arc::clone(&ledger);
            pool.submit(move |_ctx: &Context| {
                started_tx.send(()).expect("the test waits");
                let _ = release_rx.recv_timeout(LONG);
                ledger.track()
            })
            .expect("submit")
        };
        started_rx.recv_timeout(LONG).expect("the job started");
        cancelled.cancel();
        release_tx.send(()).expect("the job waits");
        assert_eq!(
            cancelled.join().map(drop),
            Err(JobError::Cancelled(Cancelled::Canceled))
        );
        pool.join();
        ledger.assert_each_dropped_once(20 * 2 + 2 + 1 + 1);
    });
}

/// A worker pool over tracked jobs: each job is consumed and a new tracked
/// value returned. Job 0 waits on its context first, when `hold_first`.
fn tracking_worker_pool(
    ledger: &Arc<Ledger>,
    workers: usize,
    results_capacity: usize,
    hold_first: bool,
) -> WorkerPool<(u64, Tracked), Tracked> {
    let ledger = Arc::clone(ledger);
    WorkerPool::builder()
        .workers(workers)
        .thread_name("dr-wp")
        .results_capacity(results_capacity)
        .build(move |ctx, (n, job): (u64, Tracked)| {
            drop(job);
            if hold_first && n == 0 {
                let _ = ctx.sleep(LONG);
            }
            ledger.track()
        })
        .expect("build")
}

#[test]
fn worker_pool_unread_results_and_leftovers_drop_once() {
    // Unread outputs, unrun jobs and undelivered outputs each drop once.
    with_timeout(LONG, || {
        let ledger = Ledger::new();

        // Closed and joined; all 40 results left unread in the channel.
        let pool = tracking_worker_pool(&ledger, 2, 64, false);
        for n in 0..40 {
            pool.submit((n, ledger.track())).expect("submit");
        }
        assert!(pool.join().is_empty());
        ledger.assert_each_dropped_once(80);

        // Stopped with one job held, one result undelivered, jobs queued.
        let pool = tracking_worker_pool(&ledger, 2, 0, true);
        for n in 0..20 {
            pool.submit((n, ledger.track())).expect("submit");
        }
        // Job 0 sleeps; job 1's worker waits for a reader that never comes.
        assert!(wait_until(LONG, || pool.stats().completed == 1));
        pool.stop();
        let leftovers = pool.join();
        assert_eq!(leftovers.unprocessed.len(), 18, "{leftovers:?}");
        assert_eq!(leftovers.undelivered.len(), 2, "{leftovers:?}");
        assert!(leftovers.undelivered.iter().any(|out| out.index == 0
            && matches!(out.result, Err(JobError::Cancelled(Cancelled::Canceled)))));
        drop(leftovers);
        ledger.assert_each_dropped_once(80 + 20 + 2);

        // Dropped with everything at once: queued, in hand, unread. The
        // drop drains the queue; outputs that do not fit the channel of one
        // (nobody reads the clone) are dropped.
        let pool = tracking_worker_pool(&ledger, 2, 1, false);
        let unread = pool.results().clone();
        for n in 0..20 {
            pool.submit((n, ledger.track())).expect("submit");
        }
        assert!(wait_until(LONG, || unread.is_full()));
        drop(pool);
        drop(unread);
        // 20 jobs, and a result for each: the drop ran every one.
        let made = ledger.created();
        assert_eq!(made, 102 + 40, "{made} values");
        ledger.assert_each_dropped_once(made);
    });
}

#[test]
fn ordered_worker_pool_held_results_drop_once() {
    // Results held in a stopped ordered pool's window drop once.
    with_timeout(LONG, || {
        let ledger = Ledger::new();
        let tracked = Arc::clone(&ledger);
        let pool = WorkerPool::builder()
            .workers(2)
            .thread_name("dr-wpo")
            .ordered_window(4)
            .build(move |ctx, (n, job): (u64, Tracked)| {
                drop(job);
                if n == 0 {
                    let _ = ctx.sleep(LONG);
                }
                tracked.track()
            })
            .expect("build");
        for n in 0..10 {
            pool.submit((n, ledger.track())).expect("submit");
        }
        let results = pool.results().clone();
        // Jobs 1..=3 fill the window behind job 0; job 4 waits for room.
        assert!(wait_until(LONG, || pool.stats().completed == 4));
        assert!(results.is_empty());
        pool.stop();
        let leftovers = pool.join();
        // Each job is accounted for once: never run, held back, or (job 0's
        // cancelled result and the run behind it) delivered after all.
        assert_eq!(
            leftovers.undelivered.len() + leftovers.unprocessed.len() + results.len(),
            10,
            "{leftovers:?}, {} delivered",
            results.len()
        );
        drop(results);
        let made = ledger.created();
        drop(leftovers);
        ledger.assert_each_dropped_once(made);
    });
}

/// A pipeline over tracked items: stage 1 passes each item on as a new
/// value, stage 2 fails item `fail_at` with a tracked error, or cancels
/// `cancel` there.
fn tracked_run(
    ledger: &Arc<Ledger>,
    fail_at: u64,
    cancel: Option<Context>,
    collect_errors: bool,
) -> Result<brigade::PipelineOutput<Tracked, Tracked>, PipelineError<Tracked>> {
    let (l1, l2, inputs) = (Arc::clone(ledger), Arc::clone(ledger), Arc::clone(ledger));
    let parent = cancel.clone().unwrap_or_else(Context::new);
    let pipeline = Pipeline::<(u64, Tracked), (u64, Tracked), Tracked>::new(&parent)
        .stage("dr-p1", 2, move |_ctx, (n, item): (u64, Tracked)| {
            drop(item);
            Ok((n, l1.track()))
        })
        .stage("dr-p2", 3, move |ctx, (n, item): (u64, Tracked)| {
            drop(item);
            if n == fail_at {
                match &cancel {
                    Some(parent) => parent.cancel(),
                    None => return Err(l2.track()),
                }
            }
            if n % 7 == 0 && !collect_errors {
                // Some items are still running when the run stops.
                let _ = ctx.sleep(Duration::from_millis(2));
            }
            Ok(l2.track())
        });
    let pipeline = if collect_errors {
        pipeline.collect_errors()
    } else {
        pipeline
    };
    pipeline
        .build()
        .expect("valid pipeline")
        .run((0..500).map(move |n| (n, inputs.track())))
}

#[test]
fn pipeline_items_drop_once_on_fail_fast_and_cancel() {
    // Pipeline items, outputs and errors drop once on fail-fast, cancel and success.
    with_timeout(LONG, || {
        let ledger = Ledger::new();
        match tracked_run(&ledger, 40, None, false) {
            Err(PipelineError::Stage(failure)) => {
                assert_eq!(failure.index, 40);
                assert!(matches!(failure.error, StageError::Failed(_)));
            }
            other => panic!(
                "the run ended with {:?}",
                other.map(|out| out.outputs.len())
            ),
        }
        let made = ledger.created();
        assert!(made < 3 * 500, "the run stopped early ({made} values)");
        ledger.assert_each_dropped_once(made);

        let parent = Context::new();
        match tracked_run(&ledger, 40, Some(parent), false) {
            Err(PipelineError::Cancelled(Cancelled::Canceled)) => {}
            other => panic!(
                "the run ended with {:?}",
                other.map(|out| out.outputs.len())
            ),
        }
        let made = ledger.created();
        ledger.assert_each_dropped_once(made);

        let out = tracked_run(&ledger, 40, None, true).expect("errors are collected");
        assert_eq!(out.outputs.len(), 499);
        assert_eq!(out.failures.len(), 1);
        drop(out);
        let made = ledger.created();
        ledger.assert_each_dropped_once(made);
    });
}

#[test]
fn errgroup_refused_and_discarded_tasks_drop_once() {
    // Group tasks refused, discarded by a pool, or run each drop once.
    with_timeout(LONG, || {
        let ledger = Ledger::new();
        let task = |ledger: &Arc<Ledger>| {
            let captured = ledger.track();
            move |_ctx: &Context| -> Result<(), String> {
                drop(captured);
                Ok(())
            }
        };

        let group = ErrGroup::<String>::new(&Context::new())
            .limit(2)
            .expect("limit");
        for _ in 0..10 {
            group.spawn(task(&ledger)).expect("spawn");
        }
        group.context().cancel();
        for blocking in [true, false] {
            let id = ledger.created();
            let refused = if blocking {
                group.spawn(task(&ledger))
            } else {
                group.try_spawn(task(&ledger))
            };
            match refused {
                Err(SpawnError::Cancelled(f)) => {
                    assert_eq!(ledger.drops_of(id), 0);
                    drop(f);
                    assert_eq!(ledger.drops_of(id), 1);
                }
                other => panic!(
                    "spawn on a cancelled group: {:?}",
                    other.map_err(|e| e.to_string())
                ),
            }
        }
        // The refused spawns are work that did not happen.
        assert_eq!(
            group.wait(),
            Err(GroupError::Cancelled(Cancelled::Canceled))
        );
        ledger.assert_each_dropped_once(12);

        // A spawn blocked on the limit wakes with its task on a failure.
        let group = ErrGroup::<String>::new(&Context::new())
            .limit(1)
            .expect("limit");
        let gate = Gate::new();
        {
            let gate = gate.clone();
            group
                .spawn(move |_ctx| {
                    gate.wait();
                    Err("first task failed".to_owned())
                })
                .expect("spawn");
        }
        let id = ledger.created();
        std::thread::scope(|s| {
            let spawner = std::thread::Builder::new()
                .name("dr-spawner".to_owned())
                .spawn_scoped(s, || match group.spawn(task(&ledger)) {
                    // Woken by the failure's cancellation, task in hand.
                    Err(SpawnError::Cancelled(f)) => {
                        assert_eq!(ledger.drops_of(id), 0);
                        drop(f);
                    }
                    Ok(()) => panic!("a spawn after the failure was accepted"),
                    Err(other) => panic!("unexpected refusal: {other}"),
                })
                .expect("spawn the spawner");
            // The spawner waits for the slot before the first task fails.
            assert!(wait_until(LONG, || common::thread_sleeping("dr-spawner")));
            gate.open();
            spawner.join().expect("the spawner finished");
        });
        assert_eq!(
            group.wait(),
            Err(GroupError::Failed("first task failed".to_owned()))
        );
        ledger.assert_each_dropped_once(13);

        // On a pool: tasks queued when the pool is cancelled are dropped
        // unrun, and a spawn to the cancelled pool hands its task back.
        let p = pool(1);
        let pool_gate = Gate::new();
        let held = occupy_worker(&p, &pool_gate);
        let group = ErrGroup::<String>::on_pool(&Context::new(), &p);
        for _ in 0..5 {
            group.spawn(task(&ledger)).expect("spawn");
        }
        p.context().cancel();
        let id = ledger.created();
        match group.spawn(task(&ledger)) {
            Err(SpawnError::Unavailable(f)) => {
                assert_eq!(ledger.drops_of(id), 0);
                drop(f);
            }
            other => panic!(
                "spawn to a cancelled pool: {:?}",
                other.map_err(|e| e.to_string())
            ),
        }
        pool_gate.open();
        let _ = held.join();
        assert_eq!(
            group.wait(),
            Err(GroupError::Discarded(Cancelled::Canceled))
        );
        p.join();
        ledger.assert_each_dropped_once(13 + 6);
    });
}

#[test]
fn map_items_in_flight_drop_once() {
    // Items and results of a map dropped early or a failed try_map drop once.
    with_timeout(LONG, || {
        let ledger = Ledger::new();
        let pool = pool(2);
        for ordered in [true, false] {
            let inputs = Arc::clone(&ledger);
            let outputs = Arc::clone(&ledger);
            let f = move |item: Tracked| {
                drop(item);
                outputs.track()
            };
            let items = (0..10_000).map(move |_| inputs.track());
            let mut map = if ordered {
                pool.map(items, f).chunk_size(3)
            } else {
                pool.map_unordered(items, f).chunk_size(3)
            };
            let read: Vec<_> = map.by_ref().take(25).collect();
            assert_eq!(read.len(), 25);
            drop(read);
            drop(map);
        }
        // Each map took at most its window (24 items) past the 25 read.
        let after_maps = ledger.created();
        assert!(after_maps <= 2 * 2 * (25 + 24 + 3), "{after_maps} values");
        let inputs = Arc::clone(&ledger);
        let outputs = Arc::clone(&ledger);
        let items = (0..10_000).map(move |n| (n, inputs.track()));
        let failed = pool.try_map(items, move |(n, item): (u32, Tracked)| {
            drop(item);
            if n == 500 {
                Err(outputs.track())
            } else {
                Ok(outputs.track())
            }
        });
        assert!(
            matches!(failed, Err(TryMapError::Failed { .. })),
            "{failed:?}"
        );
        drop(failed);
        pool.join();
        let made = ledger.created();
        ledger.assert_each_dropped_once(made);
    });
}

#[test]
fn map_items_discarded_by_cancellation_drop_once() {
    // Map items discarded by a pool cancellation drop once and read Cancelled.
    with_timeout(LONG, || {
        let ledger = Ledger::new();
        let pool = pool(2);
        let inputs = Arc::clone(&ledger);
        let outputs = Arc::clone(&ledger);
        let ctx = pool.context().clone();
        let results: Vec<_> = pool
            .map(
                (0..200).map(move |n| (n, inputs.track())),
                move |(n, item)| {
                    drop(item);
                    if n == 20 {
                        ctx.cancel();
                    }
                    outputs.track()
                },
            )
            .chunk_size(1)
            .collect();
        assert_eq!(results.len(), 200);
        let cancelled = results
            .iter()
            .filter(|r| matches!(r, Err(JobError::Cancelled(Cancelled::Canceled))))
            .count();
        assert!(cancelled > 0, "some items never ran");
        drop(results);
        pool.join();
        let made = ledger.created();
        ledger.assert_each_dropped_once(made);
    });
}

#[test]
fn scope_jobs_drop_once() {
    // Scoped closures and results drop once, also when a cancelled pool discards them.
    with_timeout(LONG, || {
        let ledger = Ledger::new();
        let pool = pool(2);
        let joined = AtomicUsize::new(0);
        pool.scope(|s| {
            let mut handles = Vec::new();
            for i in 0..100 {
                let captured = ledger.track();
                let ledger = &ledger;
                let handle = s.spawn(move |_ctx| {
                    drop(captured);
                    ledger.track()
                });
                if i % 2 == 0 {
                    handles.push(handle);
                }
            }
            for handle in handles {
                drop(handle.join().expect("the job ran"));
                joined.fetch_add(1, Ordering::SeqCst);
            }
        });
        assert_eq!(joined.load(Ordering::SeqCst), 50);
        ledger.assert_each_dropped_once(200);

        pool.context().cancel();
        pool.scope(|s| {
            for _ in 0..10 {
                let captured = ledger.track();
                let handle = s.spawn(move |_ctx| drop(captured));
                assert_eq!(handle.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
            }
        });
        pool.join();
        ledger.assert_each_dropped_once(210);
    });
}

#[test]
fn group_tasks_that_ran_drop_once_under_load() {
    // Thousands of group tasks, run or refused after a failure, each drop once.
    with_timeout(LONG, || {
        let ledger = Ledger::new();
        let group = ErrGroup::<String>::new(&Context::new())
            .limit(4)
            .expect("limit");
        for i in 0..2_000 {
            let captured = ledger.track();
            let spawned = group.spawn(move |ctx| {
                drop(captured);
                ctx.check().map_err(|reason| reason.to_string())?;
                if i == 1_500 {
                    Err("task 1500 failed".to_owned())
                } else {
                    Ok(())
                }
            });
            if let Err(err) = spawned {
                // Refused after the failure: handed back, dropped here.
                drop(err.into_inner());
            }
        }
        let _ = group.wait();
        ledger.assert_each_dropped_once(2_000);
    });
}

/// What the randomised test does with one job's handle.
fn settle(handle: brigade::JobHandle<Tracked>, action: u64) {
    match action {
        0 => drop(handle.join()),
        1 => drop(handle),
        2 => {
            handle.cancel();
            drop(handle.join());
        }
        _ => {
            handle.cancel();
            drop(handle);
        }
    }
}

#[test]
fn random_mixes_drop_each_value_once() {
    // Random mixes of submits, refusals, cancels, joins and shutdowns drop every value once.
    with_timeout(LONG, || {
        for seed in 0..12_u64 {
            let mut rng = SplitMix64(seed);
            let ledger = Ledger::new();
            let pool = ThreadPool::builder()
                .workers(1 + rng.below(3) as usize)
                .queue_capacity(1 + rng.below(8) as usize)
                .thread_name("dr-mix")
                .build()
                .expect("build");
            let mut handles = Vec::new();
            for _ in 0..20 + rng.below(100) {
                // One job in four waits a little on its context, so that
                // some are still queued or running when the pool shuts down.
                let pause = match rng.below(4) {
                    0 => Duration::from_micros(rng.below(300)),
                    _ => Duration::ZERO,
                };
                let (captured, made) = (ledger.track(), Arc::clone(&ledger));
                let job = move |ctx: &Context| {
                    drop(captured);
                    let _ = ctx.sleep(pause);
                    made.track()
                };
                match rng.below(4) {
                    0 => handles.push(pool.submit(job).expect("submit")),
                    1 => match pool.try_submit(job) {
                        Ok(handle) => handles.push(handle),
                        Err(refused) => drop(refused.into_inner()),
                    },
                    2 => match pool.submit_timeout(job, Duration::from_micros(200)) {
                        Ok(handle) => handles.push(handle),
                        Err(refused) => drop(refused.into_inner()),
                    },
                    _ => pool
                        .execute(move || drop(job(&Context::background())))
                        .expect("execute"),
                }
            }
            // Settle some handles now and the rest after the shutdown.
            let later = handles.split_off(rng.below(handles.len() as u64 + 1) as usize);
            for handle in handles {
                settle(handle, rng.below(4));
            }
            match rng.below(4) {
                0 => pool.join(),
                1 => {
                    let _ = pool.shutdown_now();
                }
                2 => {
                    let _ = pool.shutdown_timeout(Duration::from_micros(rng.below(500)));
                }
                _ => drop(pool),
            }
            for handle in later {
                settle(handle, rng.below(4));
            }
            let made = ledger.created();
            ledger.assert_each_dropped_once(made);
        }
    });
}
