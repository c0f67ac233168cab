//! `ErrGroup`: a limit bounds the threads started as well as the tasks
//! running, every task runs exactly once, unlimited tasks that wait on each
//! other all get a thread, a blocked `spawn` wakes (handing its task back)
//! on cancellation, `try_spawn` reports `Full`, the first error or panic
//! cancels the group and wins, `wait` always cancels the group's context,
//! `limit` errors are exact, `on_pool` runs tasks on the given pool only, the
//! scoped form borrows from the stack and waits for every task even when its
//! body panics, a dropped group joins its threads, its tasks are counted
//! in its stats, and idle group workers leave after the keep-alive.
//!
//! The group's own threads are named `errgroup-…`. Tests that count those
//! threads through `/proc` take [`THREAD_COUNT`] exclusively; every other
//! test that starts group threads holds it shared, so the counts only ever
//! see the counting test's threads.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::thread;

use brigade::sizing::MAX_WORKERS;
use brigade::{Cancelled, Context, ErrGroup, GroupError, GroupLimitError, SpawnError, ThreadPool};
use crossbeam_channel::RecvTimeoutError;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use common::{Gate, LONG, Latch, occupy_worker, thread_sleeping, wait_until, with_timeout};

/// Held shared by tests that start `errgroup-…` threads, exclusively by
/// tests that count them.
static THREAD_COUNT: RwLock<()> = RwLock::new(());

fn starts_group_threads() -> RwLockReadGuard<'static, ()> {
    THREAD_COUNT.read()
}

/// Also waits for group threads of earlier tests to be gone: a joined
/// thread can linger in `/proc` for a moment, and `thread::scope` (behind
/// `ErrGroup::scope`) returns once its threads' closures end, before the OS
/// threads exit.
fn counts_group_threads() -> RwLockWriteGuard<'static, ()> {
    let guard = THREAD_COUNT.write();
    assert!(
        wait_until(LONG, || group_threads() == 0),
        "{} errgroup threads outlived their tests",
        group_threads()
    );
    guard
}

/// How many live threads are named `errgroup-…`, as the group names its
/// threads. Threads named like the main thread are skipped: its name is the
/// test binary's file name, `errgroup-<hash>`, and Linux gives every new
/// thread its creator's name until the thread sets its own (so a test
/// thread the harness is just starting reads `errgroup-<hash>` too).
fn group_threads() -> usize {
    let read_comm = |task: &std::path::Path| std::fs::read_to_string(task.join("comm")).ok();
    let main =
        read_comm(&std::path::Path::new("/proc/self/task").join(std::process::id().to_string()))
            .expect("read the main thread's name");
    let tasks = std::fs::read_dir("/proc/self/task").expect("read /proc/self/task");
    tasks
        .filter_map(|task| read_comm(&task.ok()?.path()))
        .filter(|comm| comm.starts_with("errgroup-") && *comm != main)
        .count()
}

/// Blocks until `ctx` is done, for at most [`LONG`]; returns whether it was.
fn wait_done(ctx: &Context) -> bool {
    matches!(
        ctx.done().recv_timeout(LONG),
        Err(RecvTimeoutError::Disconnected)
    )
}

#[test]
fn limit_bounds_threads_and_runs_every_task_once() {
    // 10,000 tasks under limit(8) start at most 8 threads (by the group's
    // count and by /proc), never run more than 8 at once, and each task
    // runs exactly once.
    const TASKS: usize = 10_000;
    const LIMIT: usize = 8;
    let _only = counts_group_threads();
    with_timeout(LONG, || {
        let runs: Arc<Vec<AtomicU8>> = Arc::new((0..TASKS).map(|_| AtomicU8::new(0)).collect());
        let active = Arc::new(AtomicUsize::new(0));
        let peak_active = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let peak_threads = Arc::new(AtomicUsize::new(0));
        let monitor = thread::Builder::new()
            .name("eg-monitor".to_owned())
            .spawn({
                let (stop, peak_threads) = (Arc::clone(&stop), Arc::clone(&peak_threads));
                move || {
                    while !stop.load(Ordering::SeqCst) {
                        peak_threads.fetch_max(group_threads(), Ordering::SeqCst);
                        thread::yield_now();
                    }
                }
            })
            .expect("spawn the monitor");

        let group = ErrGroup::<String>::new(&Context::new())
            .limit(LIMIT)
            .expect("a valid limit");
        for i in 0..TASKS {
            let (runs, active, peak_active) = (
                Arc::clone(&runs),
                Arc::clone(&active),
                Arc::clone(&peak_active),
            );
            group
                .spawn(move |_ctx| {
                    let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                    peak_active.fetch_max(now, Ordering::SeqCst);
                    runs[i].fetch_add(1, Ordering::SeqCst);
                    active.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                })
                .map_err(|e| e.to_string())
                .expect("the group accepts every task");
        }
        let started = group.threads();
        assert!((1..=LIMIT).contains(&started), "{started} threads started");
        // Idle threads stay alive until wait: /proc agrees with the group
        // (once each thread has named itself).
        assert!(
            wait_until(LONG, || group_threads() == started),
            "/proc shows {} errgroup threads, the group started {started}",
            group_threads()
        );
        assert_eq!(group.wait(), Ok(()));

        stop.store(true, Ordering::SeqCst);
        monitor.join().expect("the monitor did not panic");
        let peak = peak_threads.load(Ordering::SeqCst);
        assert!(peak <= LIMIT, "/proc showed {peak} errgroup threads");
        assert!(peak_active.load(Ordering::SeqCst) <= LIMIT);
        let wrong: Vec<_> = (0..TASKS)
            .filter(|&i| runs[i].load(Ordering::SeqCst) != 1)
            .collect();
        assert!(wrong.is_empty(), "tasks not run exactly once: {wrong:?}");
        assert!(
            wait_until(LONG, || group_threads() == 0),
            "wait left group threads behind"
        );
    });
}

#[test]
fn unlimited_tasks_waiting_on_each_other_all_run() {
    // Without a limit, N tasks that each wait for all the others (a latch)
    // complete: every task gets its own thread, none waits for a free one.
    const TASKS: usize = 24;
    let _shared = starts_group_threads();
    with_timeout(LONG, || {
        let group = ErrGroup::<String>::new(&Context::new());
        let all_here = Latch::new(TASKS);
        for i in 0..TASKS {
            let all_here = Arc::clone(&all_here);
            group
                .spawn(move |_ctx| {
                    all_here.count_down();
                    if all_here.wait_timeout(LONG) {
                        Ok(())
                    } else {
                        Err(format!("task {i} starved"))
                    }
                })
                .map_err(|e| e.to_string())
                .expect("accepted");
        }
        assert_eq!(
            group.threads(),
            TASKS,
            "no thread is idle before the latch opens"
        );
        assert_eq!(group.wait(), Ok(()));
    });
}

#[test]
fn unlimited_tasks_exchange_over_channels() {
    // Two tasks that hand values to each other over rendezvous channels both
    // run at once and finish.
    let _shared = starts_group_threads();
    with_timeout(LONG, || {
        let group = ErrGroup::<String>::new(&Context::new());
        let (ping_tx, ping_rx) = crossbeam_channel::bounded::<u32>(0);
        let (pong_tx, pong_rx) = crossbeam_channel::bounded::<u32>(0);
        let (result_tx, result_rx) = crossbeam_channel::unbounded();
        group
            .spawn(move |_ctx| {
                ping_tx.send_timeout(20, LONG).map_err(|e| e.to_string())?;
                let pong = pong_rx.recv_timeout(LONG).map_err(|e| e.to_string())?;
                result_tx.send(pong).map_err(|e| e.to_string())
            })
            .map_err(|e| e.to_string())
            .expect("accepted");
        group
            .spawn(move |_ctx| {
                let ping = ping_rx.recv_timeout(LONG).map_err(|e| e.to_string())?;
                pong_tx
                    .send_timeout(ping + 1, LONG)
                    .map_err(|e| e.to_string())
            })
            .map_err(|e| e.to_string())
            .expect("accepted");
        assert_eq!(group.wait(), Ok(()));
        assert_eq!(result_rx.try_recv(), Ok(21));
    });
}

#[test]
fn blocked_spawn_wakes_cancelled_and_hands_task_back() {
    // A spawn waiting for a slot at the limit returns Cancelled with its
    // task when the parent context is cancelled; the task never ran in the
    // group and still runs when called.
    let _shared = starts_group_threads();
    with_timeout(LONG, || {
        let parent = Context::new();
        let group = ErrGroup::<String>::new(&parent)
            .limit(1)
            .expect("a valid limit");
        let gate = Gate::new();
        group
            .spawn({
                let gate = gate.clone();
                move |_ctx| {
                    gate.wait();
                    Ok(())
                }
            })
            .map_err(|e| e.to_string())
            .expect("the first task takes the slot");

        let (ran_tx, ran_rx) = crossbeam_channel::unbounded();
        thread::scope(|s| {
            let spawner = thread::Builder::new()
                .name("eg-spawner".to_owned())
                .spawn_scoped(s, || {
                    group.spawn(move |ctx: &Context| {
                        ran_tx.send(ctx.is_done()).expect("the test listens");
                        Err::<(), _>("handed back".to_owned())
                    })
                })
                .expect("spawn the spawner");
            assert!(
                wait_until(LONG, || thread_sleeping("eg-spawner")),
                "the spawn never blocked"
            );
            assert!(ran_rx.is_empty(), "the second task ran past the limit");

            parent.cancel();
            let err = spawner
                .join()
                .expect("the spawner did not panic")
                .expect_err("cancelled while waiting");
            assert!(matches!(err, SpawnError::Cancelled(_)), "{err:?}");
            assert_eq!(
                err.to_string(),
                "the group is cancelled; the task was not started"
            );
            assert_eq!(format!("{err:?}"), "Cancelled(..)");
            let task = err.into_inner();
            assert_eq!(task(&Context::new()), Err("handed back".to_owned()));
            assert_eq!(ran_rx.try_recv(), Ok(false), "the handed-back task ran");
        });

        gate.open();
        // A cancelled parent is not a task failure, but the refused task
        // is work that did not happen: `wait` says so.
        assert_eq!(
            group.wait(),
            Err(GroupError::Cancelled(Cancelled::Canceled))
        );
        assert!(ran_rx.is_empty(), "the refused task also ran in the group");
    });
}

#[test]
fn spawn_blocked_when_a_task_fails_is_cancelled() {
    // A spawn waiting for the only slot when the task holding it fails is
    // refused with Cancelled (the group became done while it waited), even
    // though the failing task's slot is released right after.
    const ROUNDS: usize = 50;
    let _shared = starts_group_threads();
    with_timeout(LONG, || {
        let mut admitted_after_failure = 0;
        for _ in 0..ROUNDS {
            let group = ErrGroup::<String>::new(&Context::new())
                .limit(1)
                .expect("a valid limit");
            let gate = Gate::new();
            group
                .spawn({
                    let gate = gate.clone();
                    move |_ctx| {
                        gate.wait();
                        Err("the slot holder failed".to_owned())
                    }
                })
                .map_err(|e| e.to_string())
                .expect("the first task takes the slot");
            let spawned = thread::scope(|s| {
                let spawner = thread::Builder::new()
                    .name("eg-blocked".to_owned())
                    .spawn_scoped(s, || group.spawn(|_ctx| Ok(())).map_err(|e| e.to_string()))
                    .expect("spawn the spawner");
                assert!(
                    wait_until(LONG, || thread_sleeping("eg-blocked")),
                    "the spawn never blocked"
                );
                gate.open();
                spawner.join().expect("the spawner did not panic")
            });
            match spawned {
                Err(message) => {
                    assert_eq!(message, "the group is cancelled; the task was not started")
                }
                Ok(()) => admitted_after_failure += 1,
            }
            assert_eq!(
                group.wait(),
                Err(GroupError::Failed("the slot holder failed".to_owned()))
            );
        }
        assert_eq!(
            admitted_after_failure, 0,
            "in {admitted_after_failure} of {ROUNDS} rounds a spawn blocked at the limit was \
             admitted after the group was cancelled by a failure"
        );
    });
}

#[test]
fn try_spawn_at_limit_is_full_and_hands_task_back() {
    // try_spawn at the limit returns Full with the task, without waiting;
    // once a slot frees up it is accepted.
    let _shared = starts_group_threads();
    with_timeout(LONG, || {
        let group = ErrGroup::<String>::new(&Context::new())
            .limit(2)
            .expect("a valid limit");
        let gate = Gate::new();
        for _ in 0..2 {
            let gate = gate.clone();
            group
                .try_spawn(move |_ctx| {
                    gate.wait();
                    Ok(())
                })
                .map_err(|e| e.to_string())
                .expect("below the limit");
        }
        let (ran_tx, ran_rx) = crossbeam_channel::unbounded();
        let extra = move |_ctx: &Context| {
            ran_tx.send(()).expect("the test listens");
            Ok::<(), String>(())
        };
        let err = group.try_spawn(extra).expect_err("at the limit");
        assert!(matches!(err, SpawnError::Full(_)), "{err:?}");
        assert_eq!(err.to_string(), "the group is at its limit");
        assert_eq!(format!("{err:?}"), "Full(..)");
        assert!(ran_rx.is_empty(), "the refused task ran");
        let mut extra = Some(err.into_inner());

        gate.open();
        // Slots come back as the gated tasks end.
        let accepted = wait_until(LONG, || {
            match group.try_spawn(extra.take().expect("the task is in hand")) {
                Ok(()) => true,
                Err(SpawnError::Full(task)) => {
                    extra = Some(task);
                    false
                }
                Err(other) => panic!("unexpected {other}"),
            }
        });
        assert!(accepted, "no slot came back");
        assert_eq!(group.wait(), Ok(()));
        assert_eq!(ran_rx.len(), 1, "the accepted task ran once");
    });
}

#[test]
fn first_error_cancels_group_and_is_returned() {
    // The first error cancels the group's context (running tasks see
    // is_done), later errors are dropped, and wait returns the first.
    let _shared = starts_group_threads();
    with_timeout(LONG, || {
        let parent = Context::new();
        let group = ErrGroup::<String>::new(&parent);
        let ctx = group.context().clone();
        let (saw_tx, saw_rx) = crossbeam_channel::unbounded();
        for _ in 0..3 {
            let saw_tx = saw_tx.clone();
            group
                .spawn(move |ctx| {
                    let woken = wait_done(ctx);
                    saw_tx.send(woken && ctx.is_done()).expect("listening");
                    Ok(())
                })
                .map_err(|e| e.to_string())
                .expect("accepted");
        }
        group
            .spawn(|ctx| {
                // Fails only after the first failure cancelled the group.
                wait_done(ctx);
                Err("second".to_owned())
            })
            .map_err(|e| e.to_string())
            .expect("accepted");
        group
            .spawn(|_ctx| Err("first".to_owned()))
            .map_err(|e| e.to_string())
            .expect("accepted");

        let err = group.wait().expect_err("a task failed");
        assert_eq!(err, GroupError::Failed("first".to_owned()));
        assert_eq!(err.to_string(), "first");
        assert_eq!(err.into_error(), Some("first".to_owned()));
        drop(saw_tx);
        let saw: Vec<bool> = saw_rx.iter().collect();
        assert_eq!(
            saw,
            [true, true, true],
            "tasks did not see the cancellation"
        );
        assert_eq!(ctx.reason(), Some(Cancelled::Canceled));
        assert!(!parent.is_done(), "the parent was cancelled too");
    });
}

#[test]
fn wait_cancels_group_context_even_on_success() {
    // wait cancels the group's context (and contexts derived from it) when
    // every task succeeded, and for an empty group; the parent stays live.
    let _shared = starts_group_threads();
    with_timeout(LONG, || {
        let parent = Context::new();
        let group = ErrGroup::<String>::new(&parent);
        let ctx = group.context().clone();
        let derived = ctx.child();
        for _ in 0..4 {
            group
                .spawn(|ctx| ctx.check().map_err(|e| e.to_string()))
                .map_err(|e| e.to_string())
                .expect("accepted");
        }
        assert!(!ctx.is_done(), "cancelled before wait");
        assert_eq!(group.wait(), Ok(()));
        assert_eq!(ctx.reason(), Some(Cancelled::Canceled));
        assert!(derived.is_done());
        assert!(!parent.is_done());

        let empty = ErrGroup::<String>::new(&parent);
        let ctx = empty.context().clone();
        assert_eq!(empty.wait(), Ok(()));
        assert!(ctx.is_done());
    });
}

#[test]
fn panicking_task_is_reported_and_cancels_group() {
    // A panicking task makes wait return Panicked(message) instead of
    // unwinding, and cancels the group like an error.
    let _shared = starts_group_threads();
    with_timeout(LONG, || {
        let group = ErrGroup::<String>::new(&Context::new());
        let (saw_tx, saw_rx) = crossbeam_channel::unbounded();
        group
            .spawn(move |ctx| {
                saw_tx.send(wait_done(ctx)).expect("listening");
                Ok(())
            })
            .map_err(|e| e.to_string())
            .expect("accepted");
        group
            .spawn(|_ctx| panic!("kaboom"))
            .map_err(|e| e.to_string())
            .expect("accepted");
        let ctx = group.context().clone();
        let err = group.wait().expect_err("a task panicked");
        assert_eq!(err, GroupError::Panicked("kaboom".into()));
        // The message names where the task panicked.
        let shown = err.to_string();
        let at = format!("a task panicked: kaboom (at {}:", file!());
        assert!(shown.starts_with(&at) && shown.ends_with(')'), "{shown}");
        assert_eq!(err.into_error(), None);
        assert_eq!(
            saw_rx.try_recv(),
            Ok(true),
            "the other task was not cancelled"
        );
        assert!(ctx.is_done());
    });
}

#[test]
fn limit_errors_have_exact_messages() {
    // limit(0), a limit past MAX_WORKERS and a limit after a spawn are
    // refused with exact messages; MAX_WORKERS itself is accepted.
    let _shared = starts_group_threads();
    with_timeout(LONG, || {
        let ctx = Context::new();
        let zero = ErrGroup::<String>::new(&ctx).limit(0).unwrap_err();
        assert_eq!(zero, GroupLimitError::Zero);
        assert_eq!(
            zero.to_string(),
            "an ErrGroup limit must be at least 1, got 0"
        );

        let large = ErrGroup::<String>::new(&ctx)
            .limit(MAX_WORKERS + 1)
            .unwrap_err();
        assert_eq!(
            large,
            GroupLimitError::TooLarge {
                requested: MAX_WORKERS + 1,
                max: MAX_WORKERS
            }
        );
        assert_eq!(
            large.to_string(),
            format!(
                "an ErrGroup limit must be at most {MAX_WORKERS}, got {}",
                MAX_WORKERS + 1
            )
        );
        assert_eq!(
            large.to_string(),
            "an ErrGroup limit must be at most 32768, got 32769"
        );
        let max = ErrGroup::<String>::new(&ctx)
            .limit(MAX_WORKERS)
            .expect("MAX_WORKERS is accepted");
        assert_eq!(max.wait(), Ok(()));

        let group = ErrGroup::<String>::new(&ctx);
        group
            .spawn(|_ctx| Ok(()))
            .map_err(|e| e.to_string())
            .expect("accepted");
        let late = group.limit(4).unwrap_err();
        assert_eq!(late, GroupLimitError::AlreadySpawned);
        assert_eq!(
            late.to_string(),
            "set an ErrGroup's limit before spawning tasks"
        );

        let pool = ThreadPool::builder().workers(1).build().expect("build");
        let on_pool = ErrGroup::<String>::on_pool(&ctx, &pool)
            .limit(0)
            .unwrap_err();
        assert_eq!(on_pool, GroupLimitError::Zero);
    });
}

#[test]
fn on_pool_runs_tasks_on_pool_threads_only() {
    // A group on a pool runs every task on that pool's workers, honours its
    // limit there, and starts no errgroup thread of its own.
    const TASKS: usize = 40;
    let _only = counts_group_threads();
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(4)
            .thread_name("egpool")
            .build()
            .expect("build");
        let group = ErrGroup::<String>::on_pool(&Context::new(), &pool)
            .limit(2)
            .expect("a valid limit");
        let (name_tx, name_rx) = crossbeam_channel::unbounded();
        let active = Arc::new(AtomicUsize::new(0));
        for _ in 0..TASKS {
            let (name_tx, active) = (name_tx.clone(), Arc::clone(&active));
            group
                .spawn(move |_ctx| {
                    let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                    let name = thread::current().name().unwrap_or("<unnamed>").to_owned();
                    let own = group_threads();
                    active.fetch_sub(1, Ordering::SeqCst);
                    name_tx.send((name, own, now)).expect("listening");
                    Ok(())
                })
                .map_err(|e| e.to_string())
                .expect("accepted");
        }
        assert_eq!(group.threads(), 0);
        assert_eq!(group.wait(), Ok(()));
        drop(name_tx);
        let seen: Vec<_> = name_rx.iter().collect();
        assert_eq!(seen.len(), TASKS);
        for (name, own, active) in seen {
            assert!(name.starts_with("egpool-"), "a task ran on {name:?}");
            assert_eq!(own, 0, "the group started its own threads");
            assert!(active <= 2, "{active} tasks ran at once under limit(2)");
        }
        pool.join();
    });
}

#[test]
fn on_pool_refused_job_is_unavailable_and_handed_back() {
    // When the group's pool refuses the job (the pool is cancelled), spawn
    // returns Unavailable with the task, which never ran, and wait is Ok.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(1).build().expect("build");
        let group = ErrGroup::<String>::on_pool(&Context::new(), &pool);
        pool.context().cancel();
        let (ran_tx, ran_rx) = crossbeam_channel::unbounded();
        let err = group
            .spawn(move |_ctx: &Context| {
                ran_tx.send(()).expect("the test listens");
                Err::<(), _>("handed back".to_owned())
            })
            .expect_err("the pool refuses jobs");
        assert!(matches!(err, SpawnError::Unavailable(_)), "{err:?}");
        assert_eq!(err.to_string(), "no thread is available to run the task");
        assert_eq!(format!("{err:?}"), "Unavailable(..)");
        assert!(ran_rx.is_empty(), "the refused task ran");
        let task = err.into_inner();
        assert_eq!(task(&Context::new()), Err("handed back".to_owned()));
        assert_eq!(ran_rx.len(), 1);
        assert_eq!(group.wait(), Ok(()));
    });
}

#[test]
fn on_pool_task_discarded_by_cancelled_pool_does_not_hang_wait() {
    // A task the pool accepted but then discards unrun (the pool was
    // cancelled while the task sat in its queue) still counts as finished:
    // wait returns Discarded with the pool's reason instead of waiting for
    // it forever, and the group is cancelled.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(1).build().expect("build");
        let gate = Gate::new();
        let blocker = occupy_worker(&pool, &gate);
        let group = ErrGroup::<String>::on_pool(&Context::new(), &pool);
        let (ran_tx, ran_rx) = crossbeam_channel::unbounded();
        group
            .spawn(move |_ctx| {
                ran_tx.send(()).expect("the test listens");
                Ok(())
            })
            .map_err(|e| e.to_string())
            .expect("queued behind the blocker");
        pool.context().cancel();
        gate.open();
        drop(blocker.join());
        // The queued task is discarded, never run; wait must still return.
        let ctx = group.context().clone();
        let err = group.wait().expect_err("the task never ran");
        assert!(ran_rx.is_empty(), "a job queued on a cancelled pool ran");
        assert_eq!(err, GroupError::Discarded(Cancelled::Canceled));
        assert_eq!(
            err.to_string(),
            "a task never ran: its pool discarded it (context canceled)"
        );
        assert_eq!(err.into_error(), None);
        assert!(ctx.is_done());
    });
}

#[test]
fn scope_tasks_borrow_the_stack() {
    // Scoped tasks read a borrowed slice and write disjoint slots of a
    // local Vec; the writes are visible after scope, which returns the
    // body's value.
    let _shared = starts_group_threads();
    with_timeout(LONG, || {
        let input: Vec<u64> = (0..64).collect();
        let mut slots = vec![0u64; input.len()];
        let group = ErrGroup::<String>::new(&Context::new())
            .limit(4)
            .expect("a valid limit");
        let value = group.scope(|g| {
            for (slot, x) in slots.iter_mut().zip(&input) {
                g.spawn(move |_ctx| {
                    *slot = x * x;
                    Ok(())
                })
                .expect("accepted");
            }
            "the body's value"
        });
        assert_eq!(value, Ok("the body's value"));
        let squares: Vec<u64> = input.iter().map(|x| x * x).collect();
        assert_eq!(slots, squares);
    });
}

#[test]
fn scope_returns_first_error() {
    // A failing scoped task cancels the others and scope returns its error
    // instead of the body's value.
    let _shared = starts_group_threads();
    with_timeout(LONG, || {
        let mut seen_cancel = vec![false; 4];
        let group = ErrGroup::<String>::new(&Context::new());
        let result = group.scope(|g| {
            for seen in &mut seen_cancel {
                g.spawn(move |ctx| {
                    *seen = wait_done(ctx);
                    Ok(())
                })
                .expect("accepted");
            }
            g.spawn(|_ctx| Err("slot failed".to_owned()))
                .expect("accepted");
            "unused"
        });
        assert_eq!(result, Err(GroupError::Failed("slot failed".to_owned())));
        assert_eq!(seen_cancel, [true; 4]);
    });
}

#[test]
fn scope_body_panic_waits_for_every_task_then_resumes() {
    // When the scope's body panics, scope still waits for every task —
    // including tasks blocked on a gate that another task opens only after
    // the panic cancelled the group — and then resumes the body's panic.
    let _shared = starts_group_threads();
    with_timeout(LONG, || {
        const BLOCKED: usize = 3;
        let gate = Gate::new();
        let finished = AtomicUsize::new(0);
        let opener_saw_cancel = AtomicBool::new(false);
        let group = ErrGroup::<String>::new(&Context::new());
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            group.scope(|g| {
                for _ in 0..BLOCKED {
                    g.spawn(|_ctx| {
                        gate.wait();
                        finished.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .expect("accepted");
                }
                g.spawn(|ctx| {
                    // Opens the gate once the body's panic cancelled the
                    // group, or after LONG / 2 at worst, so nothing can hang.
                    let woken = matches!(
                        ctx.done().recv_timeout(LONG / 2),
                        Err(RecvTimeoutError::Disconnected)
                    );
                    opener_saw_cancel.store(woken, Ordering::SeqCst);
                    gate.open();
                    finished.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
                .expect("accepted");
                panic!("the body failed");
            })
        }));
        let payload = outcome.expect_err("the body's panic is resumed");
        assert_eq!(
            payload.downcast_ref::<&str>().copied(),
            Some("the body failed")
        );
        assert_eq!(
            finished.load(Ordering::SeqCst),
            BLOCKED + 1,
            "scope returned before every task finished"
        );
        assert!(
            opener_saw_cancel.load(Ordering::SeqCst),
            "the body's panic did not cancel the group"
        );
    });
}

#[test]
fn dropped_group_cancels_waits_and_joins_threads() {
    // Dropping a group without wait cancels its context, lets the running
    // tasks finish, and leaves no errgroup thread behind.
    const TASKS: usize = 4;
    let _only = counts_group_threads();
    with_timeout(LONG, || {
        let group = ErrGroup::<String>::new(&Context::new());
        let ctx = group.context().clone();
        let finished = Arc::new(AtomicUsize::new(0));
        let started = Latch::new(TASKS);
        for _ in 0..TASKS {
            let (finished, started) = (Arc::clone(&finished), Arc::clone(&started));
            group
                .spawn(move |ctx| {
                    started.count_down();
                    if wait_done(ctx) {
                        finished.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(())
                })
                .map_err(|e| e.to_string())
                .expect("accepted");
        }
        started.wait();
        assert_eq!(group.threads(), TASKS);
        assert_eq!(group_threads(), TASKS);

        drop(group);
        assert!(ctx.is_done(), "drop did not cancel the group");
        assert_eq!(
            finished.load(Ordering::SeqCst),
            TASKS,
            "drop returned before its tasks finished"
        );
        assert!(
            wait_until(LONG, || group_threads() == 0),
            "{} errgroup threads left after drop",
            group_threads()
        );
    });
}

#[test]
fn group_tasks_show_in_stats() {
    // A group's tasks are jobs of its crew: ten tasks, one of which
    // returns an error and one panics, are ten submitted and ten ended, at
    // least two failed and one panicked, counted before `wait` returns.
    // (A task that returns after the first failure cancelled the group
    // counts as failed too, as any job that returns after its context was
    // cancelled.)
    let _shared = starts_group_threads();
    with_timeout(LONG, || {
        let group = ErrGroup::<String>::new(&Context::new());
        let gate = Gate::new();
        for i in 0..10 {
            let gate = gate.clone();
            group
                .spawn(move |_ctx| {
                    gate.wait();
                    match i {
                        3 => Err("task 3 failed".to_owned()),
                        7 => panic!("task 7 panicked"),
                        _ => Ok(()),
                    }
                })
                .map_err(|e| e.to_string())
                .expect("spawn");
        }
        gate.open();
        assert!(
            wait_until(LONG, || {
                let stats = group.stats();
                stats.completed + stats.failed == 10
            }),
            "{}",
            group.stats()
        );
        let stats = group.stats();
        assert_eq!(stats.submitted, 10);
        assert_eq!(stats.completed + stats.failed, 10);
        assert!(stats.failed >= 2, "{stats}");
        assert_eq!(stats.panicked, 1);
        assert!(group.wait().is_err());
    });
}

#[test]
fn idle_group_workers_leave_after_the_keep_alive() {
    // A group's workers that find no task for GROUP_KEEP_ALIVE leave while
    // the group lives on; a task spawned later starts a new one.
    let _only = counts_group_threads();
    with_timeout(brigade::GROUP_KEEP_ALIVE + LONG, || {
        let group = ErrGroup::<String>::new(&Context::new());
        let done = Latch::new(2);
        for _ in 0..2 {
            let done = Arc::clone(&done);
            group
                .spawn(move |_ctx| {
                    done.count_down();
                    Ok(())
                })
                .map_err(|e| e.to_string())
                .expect("spawn");
        }
        assert!(done.wait_timeout(LONG), "the tasks ran");
        assert!(group_threads() >= 1, "the group started a worker");
        assert!(
            wait_until(brigade::GROUP_KEEP_ALIVE + LONG, || group_threads() == 0),
            "{} idle group workers stayed past the keep-alive",
            group_threads()
        );
        let started = group.threads();
        group
            .spawn(|_ctx| Ok(()))
            .map_err(|e| e.to_string())
            .expect("spawn after the workers left");
        assert_eq!(group.threads(), started + 1, "a new worker for the task");
        assert_eq!(group.wait(), Ok(()));
    });
}

#[test]
fn error_returned_after_an_outside_cancel_is_still_reported() {
    // A task that returns `Err` after the group was cancelled from outside
    // (here, its parent) still decides `wait`'s outcome, as in Go: the
    // error is not dropped as a late value.
    let _shared = starts_group_threads();
    with_timeout(LONG, || {
        let parent = Context::new();
        let group = ErrGroup::<String>::new(&parent);
        let (started_tx, started) = crossbeam_channel::bounded(1);
        let gate = Gate::new();
        let task_gate = gate.clone();
        group
            .spawn(move |_ctx| {
                started_tx.send(()).expect("test alive");
                task_gate.wait();
                Err("failed after the cancel".to_owned())
            })
            .map_err(|e| e.to_string())
            .expect("spawn");
        started.recv_timeout(LONG).expect("the task started");
        parent.cancel();
        gate.open();
        assert_eq!(
            group.wait(),
            Err(GroupError::Failed("failed after the cancel".to_owned()))
        );
    });
}

#[test]
fn wait_reports_a_spawn_refused_by_an_outside_cancel() {
    // The caller's context is cancelled before the group gets its tasks;
    // the caller ignores `spawn`'s result; `wait` still says nothing ran.
    let _shared = starts_group_threads();
    with_timeout(LONG, || {
        let ctx = Context::new();
        let group = ErrGroup::<String>::new(&ctx);
        ctx.cancel();
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let _ignored = group.spawn(move |_ctx| {
            flag.store(true, Ordering::SeqCst);
            Ok(())
        });
        assert_eq!(
            group.wait(),
            Err(GroupError::Cancelled(Cancelled::Canceled))
        );
        assert!(!ran.load(Ordering::SeqCst));
    });
}

#[test]
fn wait_reports_a_task_that_cancelled_the_group() {
    // A task cancels the group's context; the spawns after it are
    // refused, and no task failed: `wait` reports the cancellation rather
    // than success.
    let _shared = starts_group_threads();
    with_timeout(LONG, || {
        let group = ErrGroup::<String>::new(&Context::new());
        let group_ctx = group.context().clone();
        group
            .spawn(move |_ctx| {
                group_ctx.cancel();
                Ok(())
            })
            .map_err(|e| e.kind())
            .expect("accepted");
        assert!(wait_done(group.context()));
        let refused = group.spawn(|_ctx| Ok(()));
        assert!(matches!(refused, Err(SpawnError::Cancelled(_))));
        assert_eq!(
            group.wait(),
            Err(GroupError::Cancelled(Cancelled::Canceled))
        );
    });
}

#[test]
fn a_failure_still_wins_over_a_cancellation() {
    let _shared = starts_group_threads();
    with_timeout(LONG, || {
        let group = ErrGroup::<String>::new(&Context::new());
        group
            .spawn(|_ctx| Err("bad".to_owned()))
            .map_err(|e| e.kind())
            .expect("accepted");
        assert!(wait_done(group.context()));
        let _refused = group.spawn(|_ctx| Ok(()));
        assert_eq!(group.wait(), Err(GroupError::Failed("bad".to_owned())));
    });
}

#[test]
fn unlimited_group_starts_at_most_group_threads_and_queues_the_rest() {
    // GROUP_THREADS + 40 tasks held at a gate: the group starts exactly
    // GROUP_THREADS threads, `spawn` never waits, and once the gate opens
    // every task runs exactly once.
    const EXTRA: usize = 40;
    let _shared = starts_group_threads();
    with_timeout(LONG, || {
        let group = ErrGroup::<String>::new(&Context::new());
        let gate = Arc::new(Gate::new());
        let started = Arc::new(AtomicUsize::new(0));
        for _ in 0..brigade::GROUP_THREADS + EXTRA {
            let (gate, started) = (Arc::clone(&gate), Arc::clone(&started));
            group
                .spawn(move |_ctx| {
                    started.fetch_add(1, Ordering::SeqCst);
                    gate.wait();
                    Ok(())
                })
                .map_err(|e| e.kind())
                .expect("accepted without waiting");
        }
        assert!(wait_until(LONG, || started.load(Ordering::SeqCst)
            == brigade::GROUP_THREADS));
        assert_eq!(group.threads(), brigade::GROUP_THREADS);
        assert_eq!(group.stats().queued, EXTRA);
        gate.open();
        assert_eq!(group.wait(), Ok(()));
        assert_eq!(
            started.load(Ordering::SeqCst),
            brigade::GROUP_THREADS + EXTRA
        );
    });
}

#[test]
fn limit_errors_convert_into_group_errors_with_question_mark() {
    fn run() -> Result<(), GroupError<String>> {
        let group = ErrGroup::<String>::new(&Context::new()).limit(0)?;
        group.wait()
    }
    assert_eq!(run(), Err(GroupError::Limit(GroupLimitError::Zero)));
}
