//! `ErrGroup` modes besides fail-fast (#17): a collect-all group runs every
//! task after failures and returns every error and panic, in the order
//! they happened, with each task's spawn index; a first-success group
//! returns the winner's value, cancels the rest (a task blocked on
//! `ctx.done()` sees it), joins every task and thread before `wait`
//! returns, and returns every failure when nothing succeeds; both on the
//! group's own workers, on a pool, under a limit, and scoped.
//!
//! The group's own threads are named `errgroup-…`. The test that counts
//! them through `/proc` takes [`THREAD_COUNT`] exclusively; every other
//! test that starts group threads holds it shared.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use brigade::{Cancelled, Context, ErrGroup, GroupError, GroupErrors, Refusal, ThreadPool};
use crossbeam_channel::RecvTimeoutError;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use common::{DropCounter, LONG, Latch, threads_named, wait_until, with_timeout};

/// Held shared by tests that start `errgroup-…` threads, exclusively by
/// the test that counts them.
static THREAD_COUNT: RwLock<()> = RwLock::new(());

fn starts_group_threads() -> RwLockReadGuard<'static, ()> {
    THREAD_COUNT.read()
}

/// Also waits for the threads of earlier tests to be gone: a joined thread
/// can linger in `/proc` for a moment.
fn counts_group_threads() -> RwLockWriteGuard<'static, ()> {
    let guard = THREAD_COUNT.write();
    assert!(
        wait_until(LONG, || threads_named("errgroup") == 0),
        "errgroup threads outlived their tests"
    );
    guard
}

/// Blocks until `ctx` is done, for at most [`LONG`]; returns whether it was.
fn blocks_until_done(ctx: &Context) -> bool {
    matches!(
        ctx.done().recv_timeout(LONG),
        Err(RecvTimeoutError::Disconnected)
    )
}

fn failed(message: &str) -> GroupError<String> {
    GroupError::Failed(message.to_owned())
}

#[test]
fn collect_all_returns_every_error_and_panic_in_order_with_indexes() {
    // Under limit(1) the tasks end in spawn order: the errors and the
    // panic come back in that order, each with its index; the successes
    // are not listed, and no task saw the group cancelled.
    let _threads = starts_group_threads();
    with_timeout(LONG, || {
        let group = ErrGroup::<String>::collect_all(&Context::new())
            .limit(1)
            .expect("a valid limit");
        let saw_cancel = Arc::new(AtomicUsize::new(0));
        for n in 0..6u32 {
            let saw_cancel = Arc::clone(&saw_cancel);
            group
                .spawn(move |ctx| {
                    if ctx.is_done() {
                        saw_cancel.fetch_add(1, Ordering::SeqCst);
                    }
                    match n {
                        1 => Err("one".to_owned()),
                        2 => panic!("two"),
                        4 => Err("four".to_owned()),
                        _ => Ok(()),
                    }
                })
                .expect("a collect-all group is not cancelled by a failure");
        }
        let errors = group.wait().expect_err("three tasks failed");
        assert_eq!(errors.len(), 3);
        assert_eq!(errors.refused(), None);
        assert_eq!(
            errors.into_vec(),
            [
                (1, failed("one")),
                (2, GroupError::Panicked("two".into())),
                (4, failed("four")),
            ]
        );
        assert_eq!(saw_cancel.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn collect_all_lists_failures_in_the_order_they_happened() {
    // Task 0 fails only after task 1 has failed: the list follows the
    // failures, not the spawn order.
    let _threads = starts_group_threads();
    with_timeout(LONG, || {
        let group = ErrGroup::<String>::collect_all(&Context::new());
        let later = Latch::new(1);
        let release = Arc::clone(&later);
        group
            .spawn(move |_ctx| {
                release.wait();
                Err("failed second".to_owned())
            })
            .expect("spawned");
        group
            .spawn(|_ctx| Err("failed first".to_owned()))
            .expect("spawned");
        assert!(wait_until(LONG, || group.stats().failed == 1));
        later.count_down();
        let errors = group.wait().expect_err("both failed");
        let listed: Vec<_> = errors.iter().collect();
        assert_eq!(
            listed,
            [(1, &failed("failed first")), (0, &failed("failed second"))]
        );
    });
}

#[test]
fn collect_all_runs_every_task_after_failures() {
    // 200 failing tasks under limit(3): every spawn is accepted, every task
    // runs (its closure is dropped once), no task sees the group cancelled,
    // and every index from 0 to 199 comes back exactly once.
    let _threads = starts_group_threads();
    with_timeout(LONG, || {
        const TASKS: usize = 200;
        let group = ErrGroup::<usize>::collect_all(&Context::new())
            .limit(3)
            .expect("a valid limit");
        let ran = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        for n in 0..TASKS {
            let ran = Arc::clone(&ran);
            let guard = DropCounter(Arc::clone(&dropped));
            group
                .spawn(move |ctx| {
                    let _guard = guard;
                    assert!(!ctx.is_done(), "a failure cancelled a collect-all group");
                    ran.fetch_add(1, Ordering::SeqCst);
                    Err(n)
                })
                .expect("a collect-all group keeps accepting tasks");
        }
        let errors = group.wait().expect_err("every task failed");
        assert_eq!(ran.load(Ordering::SeqCst), TASKS);
        assert_eq!(dropped.load(Ordering::SeqCst), TASKS);
        let mut indexes = BTreeSet::new();
        for (index, error) in errors {
            assert_eq!(error, GroupError::Failed(index), "task {index}'s own error");
            assert!(indexes.insert(index), "task {index} listed twice");
        }
        assert_eq!(indexes, (0..TASKS).collect());
    });
}

#[test]
fn collect_all_on_pool_runs_every_task_on_the_pool() {
    // On a pool: every task runs on a pool thread, and every failure comes
    // back with its index.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("cpool")
            .build()
            .expect("build");
        let group = ErrGroup::<String>::collect_all_on_pool(&Context::new(), &pool)
            .limit(2)
            .expect("a valid limit");
        for n in 0..20u32 {
            group
                .spawn(move |_ctx| {
                    let name = std::thread::current().name().map(str::to_owned);
                    assert!(
                        name.as_deref()
                            .is_some_and(|name| name.starts_with("cpool-"))
                    );
                    if n % 5 == 0 {
                        Err(format!("bad {n}"))
                    } else {
                        Ok(())
                    }
                })
                .expect("spawned");
        }
        let errors = group.wait().expect_err("four tasks failed");
        let mut listed: Vec<(usize, GroupError<String>)> = errors.into_vec();
        listed.sort_by_key(|(index, _)| *index);
        let expected: Vec<_> = [0, 5, 10, 15]
            .into_iter()
            .map(|n| (n, failed(&format!("bad {n}"))))
            .collect();
        assert_eq!(listed, expected);
    });
}

#[test]
fn collect_all_lists_cancelled_tasks_once_and_notes_refused_spawns() {
    // After an outside cancel: a task stopped by it is listed as
    // cancelled, a task that then returned its own error is listed once
    // with that error, and a refused spawn (no index) is noted.
    let _threads = starts_group_threads();
    with_timeout(LONG, || {
        let ctx = Context::new();
        let group = ErrGroup::<String>::collect_all(&ctx);
        let started = Latch::new(2);
        for n in 0..2u32 {
            let started = Arc::clone(&started);
            group
                .spawn(move |ctx| {
                    started.count_down();
                    assert!(blocks_until_done(ctx));
                    if n == 0 {
                        Ok(())
                    } else {
                        Err("stopped".to_owned())
                    }
                })
                .expect("spawned");
        }
        started.wait();
        ctx.cancel();
        let refused = group.spawn(|_ctx| Ok(()));
        assert!(matches!(
            refused.map_err(|e| e.kind()),
            Err(Refusal::Cancelled)
        ));
        let errors = group.wait().expect_err("cancellation cut the group short");
        assert_eq!(errors.refused(), Some(Cancelled::Canceled));
        let mut listed = errors.into_vec();
        listed.sort_by_key(|(index, _)| *index);
        assert_eq!(
            listed,
            [
                (0, GroupError::Cancelled(Cancelled::Canceled)),
                (1, failed("stopped"))
            ]
        );
    });
}

#[test]
fn collect_all_with_no_failure_is_ok() {
    // Every task succeeding is `Ok(())`.
    let _threads = starts_group_threads();
    with_timeout(LONG, || {
        let group = ErrGroup::<String>::collect_all(&Context::new());
        for _ in 0..10 {
            group.spawn(|_ctx| Ok(())).expect("spawned");
        }
        assert_eq!(group.wait(), Ok(()));
    });
}

#[test]
fn collect_all_scope_borrows_and_collects() {
    // The scoped form: tasks write into the caller's stack, and every
    // failure comes back.
    let _threads = starts_group_threads();
    with_timeout(LONG, || {
        let inputs = ["1", "two", "3", "four"];
        let mut parsed = [0u32; 4];
        let group = ErrGroup::<String>::collect_all(&Context::new());
        let result = group.scope(|g| {
            for (input, slot) in inputs.iter().zip(parsed.iter_mut()) {
                g.spawn(move |_ctx| {
                    *slot = input
                        .parse()
                        .map_err(|_| format!("not a number: {input}"))?;
                    Ok(())
                })?;
            }
            Ok::<(), Refusal>(())
        });
        let errors = result.expect_err("two inputs are bad");
        let mut listed = errors.into_vec();
        listed.sort_by_key(|(index, _)| *index);
        assert_eq!(
            listed,
            [
                (1, failed("not a number: two")),
                (3, failed("not a number: four"))
            ]
        );
        assert_eq!(parsed, [1, 0, 3, 0]);
    });
}

/// Spawns `losers` tasks that block on the group's context, count whether
/// they saw it cancelled, and then return a late `Ok`; returns once all
/// are blocked.
fn spawn_blocked_losers(
    group: &ErrGroup<'_, String, brigade::FirstSuccess<u32>>,
    losers: usize,
    saw_cancel: &Arc<AtomicUsize>,
    ended: &Arc<AtomicUsize>,
) {
    let started = Latch::new(losers);
    for n in 0..losers {
        let started = Arc::clone(&started);
        let saw_cancel = Arc::clone(saw_cancel);
        let guard = DropCounter(Arc::clone(ended));
        group
            .spawn(move |ctx| {
                let _guard = guard;
                started.count_down();
                if blocks_until_done(ctx) {
                    saw_cancel.fetch_add(1, Ordering::SeqCst);
                }
                Ok(1000 + u32::try_from(n).expect("few losers")) // too late to win
            })
            .expect("spawned");
    }
    started.wait();
}

#[test]
fn first_success_returns_the_winner_cancels_the_rest_and_joins_every_thread() {
    // Three tasks block on `ctx.done()`; a fourth returns Ok(7). `wait`
    // returns 7, every loser saw the cancel (and its late Ok is not the
    // answer), every task ended before `wait` returned, and no group
    // thread is left.
    let _threads = counts_group_threads();
    with_timeout(LONG, || {
        let group = ErrGroup::<String>::first_success::<u32>(&Context::new())
            .limit(4)
            .expect("a valid limit");
        let saw_cancel = Arc::new(AtomicUsize::new(0));
        let ended = Arc::new(AtomicUsize::new(0));
        spawn_blocked_losers(&group, 3, &saw_cancel, &ended);
        let guard = DropCounter(Arc::clone(&ended));
        group
            .spawn(move |_ctx| {
                let _guard = guard;
                Ok(7)
            })
            .expect("spawned");
        assert_eq!(group.threads(), 4);
        assert_eq!(group.wait(), Ok(7));
        assert_eq!(
            ended.load(Ordering::SeqCst),
            4,
            "wait returned before a task ended"
        );
        assert_eq!(saw_cancel.load(Ordering::SeqCst), 3);
        assert!(
            wait_until(LONG, || threads_named("errgroup") == 0),
            "{} group threads outlived wait",
            threads_named("errgroup")
        );
    });
}

#[test]
fn first_success_on_pool_cancels_the_rest_and_joins_them() {
    // On a pool, under a limit: the winner's value comes back, the blocked
    // losers see the cancel, and every task ended before `wait` returned;
    // the pool itself stays up for more work.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(4)
            .thread_name("fpool")
            .build()
            .expect("build");
        let group = ErrGroup::<String>::first_success_on_pool::<u32>(&Context::new(), &pool)
            .limit(3)
            .expect("a valid limit");
        let saw_cancel = Arc::new(AtomicUsize::new(0));
        let ended = Arc::new(AtomicUsize::new(0));
        spawn_blocked_losers(&group, 2, &saw_cancel, &ended);
        group
            .spawn(|_ctx| Err("replica down".to_owned()))
            .expect("spawned");
        group.spawn(|_ctx| Ok(42)).expect("spawned");
        assert_eq!(group.wait(), Ok(42));
        assert_eq!(ended.load(Ordering::SeqCst), 2);
        assert_eq!(saw_cancel.load(Ordering::SeqCst), 2);
        let after = pool.submit(|_ctx| 1).expect("the pool is still up");
        assert_eq!(after.join(), Ok(1));
    });
}

#[test]
fn first_success_returns_every_failure_when_none_succeeds() {
    // No task succeeds: every error and panic comes back, in order, with
    // its index.
    let _threads = starts_group_threads();
    with_timeout(LONG, || {
        let group = ErrGroup::<String>::first_success::<u32>(&Context::new())
            .limit(1)
            .expect("a valid limit");
        group.spawn(|_ctx| Err("a".to_owned())).expect("spawned");
        group.spawn(|_ctx| panic!("b")).expect("spawned");
        group.spawn(|_ctx| Err("c".to_owned())).expect("spawned");
        let errors = group.wait().expect_err("nothing succeeded");
        assert_eq!(
            errors.into_vec(),
            [
                (0, failed("a")),
                (1, GroupError::Panicked("b".into())),
                (2, failed("c"))
            ]
        );
    });
}

#[test]
fn first_success_on_pool_returns_every_failure_when_none_succeeds() {
    // The same on a pool, where the order of ends is not fixed.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(2).build().expect("build");
        let group = ErrGroup::<usize>::first_success_on_pool::<()>(&Context::new(), &pool);
        for n in 0..10 {
            group.spawn(move |_ctx| Err(n)).expect("spawned");
        }
        let errors = group.wait().expect_err("nothing succeeded");
        let mut listed = errors.into_vec();
        listed.sort_by_key(|(index, _)| *index);
        let expected: Vec<_> = (0..10).map(|n| (n, GroupError::Failed(n))).collect();
        assert_eq!(listed, expected);
    });
}

#[test]
fn first_success_with_no_task_is_an_empty_failure() {
    // A group that had no task has no value: an empty list, which says so.
    let _threads = starts_group_threads();
    with_timeout(LONG, || {
        let group = ErrGroup::<String>::first_success::<u32>(&Context::new());
        let errors = group.wait().expect_err("no task, no value");
        assert!(errors.is_empty());
        assert_eq!(
            errors.to_string(),
            "no task succeeded: the group had no tasks"
        );
    });
}

#[test]
fn first_success_scope_borrows_and_returns_the_winner() {
    // The scoped form: tasks read the caller's stack; the body's value and
    // the winner's come back together.
    let _threads = starts_group_threads();
    with_timeout(LONG, || {
        let replicas: Vec<String> = ["down", "up", "down"].map(String::from).to_vec();
        let group = ErrGroup::<String>::first_success::<usize>(&Context::new());
        let result = group.scope(|g| {
            for (n, state) in replicas.iter().enumerate() {
                let asked = g.spawn(move |_ctx| match state.as_str() {
                    "up" => Ok(n),
                    _ => Err(format!("replica {n} is down")),
                });
                // Once a replica has answered, the group is done: later
                // spawns are refused as cancelled, which is no error here.
                if let Err(refused) = asked {
                    assert_eq!(refused.kind(), Refusal::Cancelled, "only after a winner");
                }
            }
            "asked all"
        });
        let (body, winner) = result.expect("one replica is up");
        assert_eq!(body, "asked all");
        assert_eq!(winner, 1);
    });
}

#[test]
fn group_errors_display_lists_every_failure() {
    // The exact messages: every failure with its index; a refused spawn.
    let _threads = starts_group_threads();
    with_timeout(LONG, || {
        let ctx = Context::new();
        let group = ErrGroup::<String>::collect_all(&ctx)
            .limit(1)
            .expect("limit");
        group
            .spawn(|_ctx| Err("bad row".to_owned()))
            .expect("spawned");
        group.spawn(|_ctx| Ok(())).expect("spawned");
        group
            .spawn(|_ctx| Err("worse row".to_owned()))
            .expect("spawned");
        let errors: GroupErrors<String> = group.wait().expect_err("two failed");
        assert_eq!(
            errors.to_string(),
            "2 tasks failed: task 0: bad row; task 2: worse row"
        );

        let group = ErrGroup::<String>::collect_all(&ctx);
        ctx.cancel();
        let _ = group.spawn(|_ctx| Ok(()));
        let errors = group.wait().expect_err("a spawn was refused");
        assert_eq!(errors.to_string(), "a spawn was refused (context canceled)");
    });
}
