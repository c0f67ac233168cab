//! The submitter's context carried into its jobs (`propagate`): a value
//! captured on the submitting thread is visible inside the jobs of every
//! front door and gone after them; a pool without the hook sees nothing;
//! panicking hooks lose neither a job nor a worker.

mod common;

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use brigade::{
    Completions, Context, ErrGroup, GroupPropagateError, Pipeline, ThreadPool, ThreadPoolBuilder,
    WorkerPool,
};
use common::{LONG, block_on, wait_until, with_timeout};

thread_local! {
    /// The request a thread works for: set by the test on the submitting
    /// thread, by the hook on a worker.
    static REQUEST: Cell<Option<u64>> = const { Cell::new(None) };
}

fn capture() -> Option<u64> {
    REQUEST.get()
}

/// Enters a request id around the job; a job submitted outside any request
/// runs with the worker's own state untouched, so it shows what an earlier
/// job left behind.
fn enter(id: Option<u64>, run: &mut dyn FnMut()) {
    match id {
        None => run(),
        Some(id) => {
            let outer = REQUEST.replace(Some(id));
            run();
            REQUEST.set(outer);
        }
    }
}

fn pool(workers: usize) -> ThreadPool {
    ThreadPool::builder()
        .workers(workers)
        .propagate(capture, enter)
        .build()
        .expect("build")
}

/// Submits a job outside any request on every worker of a one-worker pool:
/// the worker's own state must be back to none.
fn assert_gone_after(pool: &ThreadPool) {
    REQUEST.set(None);
    let seen = pool.submit(|_ctx| REQUEST.get()).expect("submit");
    assert_eq!(
        seen.join().expect("join"),
        None,
        "the value outlived its job"
    );
}

#[test]
fn handles_and_execute_see_the_submitters_value() {
    // submit, try_submit, submit_timeout, execute and Completions: each job
    // sees the id of the request that submitted it, then the worker has none.
    with_timeout(LONG, || {
        let pool = pool(1);
        REQUEST.set(Some(1));
        let submitted = pool.submit(|_ctx| REQUEST.get()).expect("submit");
        REQUEST.set(Some(2));
        let tried = pool.try_submit(|_ctx| REQUEST.get()).expect("try_submit");
        REQUEST.set(Some(3));
        let timed = pool
            .submit_timeout(|_ctx| REQUEST.get(), LONG)
            .expect("submit_timeout");
        REQUEST.set(Some(4));
        let (tx, rx) = crossbeam_channel::bounded(1);
        pool.execute(move || tx.send(REQUEST.get()).expect("send"))
            .expect("execute");
        REQUEST.set(Some(5));
        let mut completions = Completions::new();
        completions.push(pool.submit(|_ctx| REQUEST.get()).expect("submit"));
        assert_eq!(submitted.join().expect("join"), Some(1));
        assert_eq!(tried.join().expect("join"), Some(2));
        assert_eq!(timed.join().expect("join"), Some(3));
        assert_eq!(rx.recv_timeout(LONG).expect("executed"), Some(4));
        let (_, completed) = completions.next_timeout(LONG).expect("completed");
        assert_eq!(completed.expect("ok"), Some(5));
        assert_gone_after(&pool);
    });
}

#[test]
fn submit_async_sees_the_value_of_the_polling_thread() {
    // The async submit captures where the job enters the queue.
    with_timeout(LONG, || {
        let pool = pool(1);
        REQUEST.set(Some(6));
        let handle = block_on(pool.submit_async(|_ctx| REQUEST.get())).expect("submit_async");
        assert_eq!(block_on(handle).expect("job"), Some(6));
        assert_gone_after(&pool);
    });
}

#[test]
fn map_items_see_the_value() {
    // map, map_unordered and try_map: every chunk, every item.
    with_timeout(LONG, || {
        let pool = pool(2);
        REQUEST.set(Some(7));
        let mapped: Vec<_> = pool
            .map(0..200, |_| REQUEST.get())
            .collect::<Result<_, _>>()
            .expect("map");
        assert!(mapped.iter().all(|&id| id == Some(7)), "{mapped:?}");
        REQUEST.set(Some(8));
        let unordered: Vec<_> = pool
            .map_unordered(0..200, |_| REQUEST.get())
            .collect::<Result<_, _>>()
            .expect("map_unordered");
        assert!(unordered.iter().all(|&id| id == Some(8)), "{unordered:?}");
        REQUEST.set(Some(9));
        let tried = pool
            .try_map(0..200, |_| REQUEST.get().ok_or("no request"))
            .expect("try_map");
        assert!(tried.iter().all(|&id| id == 9), "{tried:?}");
        drop(pool);
        // One worker, so the check below runs where the map's chunks ran.
        let pool = self::pool(1);
        REQUEST.set(Some(10));
        let mapped: Vec<_> = pool
            .map(0..50, |_| REQUEST.get())
            .collect::<Result<_, _>>()
            .expect("map");
        assert!(mapped.iter().all(|&id| id == Some(10)), "{mapped:?}");
        assert_gone_after(&pool);
    });
}

#[test]
fn scoped_jobs_see_the_value() {
    // Whether a worker or the waiting caller runs a scoped job, it runs
    // inside the request that spawned it.
    with_timeout(LONG, || {
        let pool = pool(1);
        REQUEST.set(Some(11));
        let seen = pool.scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|_ctx| REQUEST.get())).collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("join"))
                .collect::<Vec<_>>()
        });
        assert!(seen.iter().all(|&id| id == Some(11)), "{seen:?}");
        assert_gone_after(&pool);
    });
}

#[test]
fn a_job_submitted_from_a_job_inherits_its_value() {
    // A job that submits (and joins, perhaps inline) another passes its
    // request on: the capture runs inside the value the worker entered.
    with_timeout(LONG, || {
        let pool = Arc::new(pool(2));
        let inner_pool = Arc::clone(&pool);
        REQUEST.set(Some(12));
        let outer = pool
            .submit(move |_ctx| {
                let inner = inner_pool.submit(|_ctx| REQUEST.get()).expect("inner");
                (REQUEST.get(), inner.join().expect("inner join"))
            })
            .expect("submit");
        assert_eq!(outer.join().expect("join"), (Some(12), Some(12)));
    });
}

#[test]
fn worker_pool_jobs_see_the_value() {
    // WorkerPool::submit captures on the submitting thread too.
    with_timeout(LONG, || {
        let pool = WorkerPool::builder()
            .workers(1)
            .propagate(capture, enter)
            .build(|_ctx, (): ()| REQUEST.get())
            .expect("build");
        REQUEST.set(Some(13));
        pool.submit(()).expect("submit");
        REQUEST.set(None);
        pool.submit(()).expect("submit");
        pool.close();
        let seen: Vec<_> = pool
            .results()
            .iter()
            .map(|out| (out.index, out.result.expect("ok")))
            .collect();
        let mut seen = seen;
        seen.sort_unstable();
        // The second job ran on the same worker after the first: gone.
        assert_eq!(seen, [(0, Some(13)), (1, None)]);
    });
}

#[test]
fn every_pipeline_stage_sees_the_value() {
    // The first stage captures on the thread that runs the pipeline; each
    // stage feeding the next captures inside the value it entered.
    with_timeout(LONG, || {
        REQUEST.set(Some(14));
        let out = Pipeline::<u32, u32, ()>::new(&Context::new())
            .stage("first", 2, |_ctx, _n: u32| Ok(REQUEST.get()))
            .stage("second", 2, |_ctx, a| Ok((a, REQUEST.get())))
            .stage("third", 1, |_ctx, (a, b)| Ok((a, b, REQUEST.get())))
            .propagate(capture, enter)
            .build()
            .expect("build")
            .run(0..50)
            .expect("run");
        assert_eq!(out.outputs.len(), 50);
        let id = Some(14);
        assert!(
            out.outputs.iter().all(|&seen| seen == (id, id, id)),
            "{:?}",
            out.outputs
        );
    });
}

#[test]
fn pipeline_without_the_hook_sees_nothing() {
    // Without `propagate`, a stage's worker knows nothing of the caller.
    with_timeout(LONG, || {
        REQUEST.set(Some(15));
        let out = Pipeline::<u32, u32, ()>::new(&Context::new())
            .stage("only", 1, |_ctx, _n: u32| Ok(REQUEST.get()))
            .build()
            .expect("build")
            .run(0..4)
            .expect("run");
        assert_eq!(out.outputs, [None; 4]);
    });
}

#[test]
fn errgroup_tasks_see_the_value() {
    // A group on its own workers (and its scope), and a group on a pool,
    // which takes the pool's hook.
    with_timeout(LONG, || {
        REQUEST.set(Some(16));
        let check = |_ctx: &Context| match REQUEST.get() {
            Some(16) => Ok(()),
            other => Err(format!("task saw {other:?}")),
        };
        let group = ErrGroup::<String>::new(&Context::new())
            .propagate(capture, enter)
            .expect("propagate");
        for _ in 0..20 {
            group.spawn(check).expect("spawn");
        }
        group.wait().expect("own workers");
        let scoped = ErrGroup::<String>::new(&Context::new())
            .limit(2)
            .expect("limit")
            .propagate(capture, enter)
            .expect("propagate");
        scoped
            .scope(|g| {
                for _ in 0..20 {
                    g.spawn(check).expect("spawn");
                }
            })
            .expect("scope");
        let pool = pool(2);
        let on_pool = ErrGroup::<String>::on_pool(&Context::new(), &pool);
        for _ in 0..20 {
            on_pool.spawn(check).expect("spawn");
        }
        on_pool.wait().expect("on a pool");
    });
}

#[test]
fn errgroup_propagate_is_refused_where_it_cannot_apply() {
    // After a spawn, or on a pool: a clear error, not a silent no-op.
    let group = ErrGroup::<String>::new(&Context::new());
    group.spawn(|_ctx| Ok(())).expect("spawn");
    let err = group.propagate(capture, enter).expect_err("refused");
    assert_eq!(err, GroupPropagateError::AlreadySpawned);
    assert_eq!(
        err.to_string(),
        "set an ErrGroup's propagate hooks before spawning tasks"
    );
    let pool = ThreadPool::builder().workers(1).build().expect("build");
    let err = ErrGroup::<String>::on_pool(&Context::new(), &pool)
        .propagate(capture, enter)
        .expect_err("refused");
    assert_eq!(err, GroupPropagateError::OnPool);
    assert_eq!(
        err.to_string(),
        "an ErrGroup on a pool uses the pool's propagate hooks; set them on the pool's builder"
    );
}

#[test]
fn a_pool_without_the_hook_sees_nothing() {
    // Nothing crosses threads unless asked for.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(1).build().expect("build");
        REQUEST.set(Some(17));
        let seen = pool.submit(|_ctx| REQUEST.get()).expect("submit");
        assert_eq!(seen.join().expect("join"), None);
    });
}

#[test]
fn the_captured_value_is_dropped_after_its_job() {
    // Every captured value is dropped once its job ran (or was discarded).
    with_timeout(LONG, || {
        let token = Arc::new(());
        let held = Arc::clone(&token);
        let pool = ThreadPool::builder()
            .workers(2)
            .propagate(move || Arc::clone(&held), |_token, run| run())
            .build()
            .expect("build");
        let handles: Vec<_> = (0..100)
            .map(|n| pool.submit(move |_ctx| n).expect("submit"))
            .collect();
        for handle in handles {
            handle.join().expect("join");
        }
        pool.join();
        // The pool (and its hook's clone) is gone too.
        assert!(wait_until(LONG, || Arc::strong_count(&token) == 1));
    });
}

#[test]
fn a_panicking_capture_queues_the_job_without_a_value() {
    // The job runs, outside any request, and the pool carries on.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(1)
            .propagate(
                || match REQUEST.get() {
                    Some(666) => panic!("capture failed"),
                    id => id,
                },
                enter,
            )
            .build()
            .expect("build");
        REQUEST.set(Some(666));
        let seen = pool.submit(|_ctx| REQUEST.get()).expect("submit");
        assert_eq!(seen.join().expect("the job ran"), None);
        REQUEST.set(Some(18));
        let seen = pool.submit(|_ctx| REQUEST.get()).expect("submit");
        assert_eq!(seen.join().expect("join"), Some(18));
        assert_eq!(pool.stats().respawned, 0);
    });
}

/// A hook that misbehaves for some ids: panics before or after running
/// the job (leaving the id behind), or never runs it.
fn faulty_enter(id: Option<u64>, run: &mut dyn FnMut()) {
    match id {
        Some(100) => panic!("enter failed before the job"),
        Some(101) => {
            REQUEST.set(id);
            run();
            panic!("enter failed after the job");
        }
        Some(102) => REQUEST.set(id),
        other => enter(other, run),
    }
}

#[test]
fn a_faulty_enter_runs_the_job_and_replaces_the_worker() {
    // Whether the hook panics before or after the job, or forgets it, the
    // job runs exactly once and the worker is replaced, so nothing the hook
    // left on the thread reaches a later job.
    with_timeout(LONG, || {
        let ran = Arc::new(AtomicUsize::new(0));
        let pool = ThreadPool::builder()
            .workers(1)
            .propagate(capture, faulty_enter)
            .build()
            .expect("build");
        for (n, id) in [100, 101, 102].into_iter().enumerate() {
            REQUEST.set(Some(id));
            let ran = Arc::clone(&ran);
            let job = pool
                .submit(move |_ctx| ran.fetch_add(1, Ordering::SeqCst))
                .expect("submit");
            assert_eq!(job.join().expect("the job ran"), n);
            assert!(wait_until(LONG, || pool.stats().respawned == n as u64 + 1));
            assert_gone_after(&pool);
        }
        assert_eq!(ran.load(Ordering::SeqCst), 3);
        assert_eq!(pool.stats().workers, 1);
        assert_eq!(pool.stats().panicked, 0);
    });
}

#[test]
fn setting_it_again_replaces_the_pair() {
    // The last `propagate` wins; nothing to validate.
    with_timeout(LONG, || {
        let pool = ThreadPoolBuilder::default()
            .workers(1)
            .propagate(|| 1_u8, |_, run| run())
            .propagate(capture, enter)
            .build()
            .expect("build");
        REQUEST.set(Some(19));
        let seen = pool.submit(|_ctx| REQUEST.get()).expect("submit");
        assert_eq!(seen.join().expect("join"), Some(19));
    });
}
