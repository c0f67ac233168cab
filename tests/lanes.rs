//! Priority lanes: `High` first, `Background` last, no job starved past
//! the starvation bound, capped lanes, per-lane stats, and keyed and laned
//! jobs through every queue shape and shutdown.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::thread;
use std::time::{Duration, Instant};

use brigade::{
    Context, JobError, JobHandle, Lane, Sizing, SubmitError, ThreadPool, TrySubmitError,
};
use crossbeam_channel::bounded;
use parking_lot::Mutex;

use common::{Gate, LONG, occupy_worker, thread_sleeping, wait_until, with_timeout};

/// The bound on every wait that should end almost at once.
const WAIT: Duration = Duration::from_secs(10);

/// Opens its gate when dropped, so a failing assertion does not leave
/// jobs blocked on it while the pool's drop waits for them.
struct OpenOnDrop(Gate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// Starts a job along `routed` that signals its start and then holds its
/// worker until `gate` opens (or the pool is cancelled); returns once it
/// runs.
fn occupy(routed: brigade::Routed<'_>, gate: &Gate) -> JobHandle<()> {
    let (started, on_start) = bounded(1);
    let gate = gate.clone();
    let handle = routed
        .submit(move |_ctx: &Context| {
            started.send(()).unwrap();
            gate.wait();
        })
        .unwrap();
    on_start.recv_timeout(WAIT).expect("the blocker started");
    handle
}

/// As [`occupy`], but the job holds its worker until the pool's context
/// is cancelled (a shutdown that cancels).
fn occupy_until_cancelled(routed: brigade::Routed<'_>) -> JobHandle<()> {
    let (started, on_start) = bounded(1);
    let handle = routed
        .submit(move |ctx: &Context| {
            started.send(()).unwrap();
            let _ = ctx.done().recv_timeout(WAIT);
        })
        .unwrap();
    on_start.recv_timeout(WAIT).expect("the blocker started");
    handle
}

#[test]
fn a_background_job_starts_within_the_starvation_bound_under_a_high_stream() {
    // Under a saturating stream of High jobs, a Background job still starts within the
    // starvation bound plus about one job's run time; the stream keeps going until it has.
    // Counted in jobs rather than time: once the Background job is past the bound, the next
    // job a worker takes is that one.
    const BOUND: Duration = Duration::from_millis(50);
    with_timeout(LONG, || {
        let pool = Arc::new(
            ThreadPool::builder()
                .workers(2)
                .queue_capacity(16)
                .starvation_bound(BOUND)
                .build()
                .unwrap(),
        );
        let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let high_job = |starts: &Arc<Mutex<Vec<Instant>>>| {
            let starts = Arc::clone(starts);
            move || {
                starts.lock().push(Instant::now());
                thread::sleep(Duration::from_millis(2));
            }
        };
        // Fill the board with High jobs before the Background one arrives.
        for _ in 0..16 {
            pool.lane(Lane::High).execute(high_job(&starts)).unwrap();
        }
        let (started, on_start) = bounded(1);
        let began = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&began);
        pool.lane(Lane::Background)
            .execute(move || {
                flag.store(true, SeqCst);
                started.send(Instant::now()).unwrap();
            })
            .unwrap();
        // The board was full: the job's wait counts from when it found room, before the
        // submit returned.
        let submitted = Instant::now();
        let producer = {
            let (pool, starts) = (Arc::clone(&pool), Arc::clone(&starts));
            thread::spawn(move || {
                let mut sent = 0_u64;
                while !began.load(SeqCst) && submitted.elapsed() < Duration::from_secs(20) {
                    pool.lane(Lane::High).execute(high_job(&starts)).unwrap();
                    sent += 1;
                }
                sent
            })
        };
        let began = on_start
            .recv_timeout(Duration::from_secs(25))
            .expect("the Background job starved under the High stream");
        let sent = producer.join().unwrap();
        assert!(
            sent > 0,
            "the High stream ran while the Background job waited"
        );
        // High jobs that started once the Background job was past the bound and before it
        // did: a take that had begun before the bound, on each worker, and those the other
        // worker starts if the Background job's worker is descheduled between taking it and
        // its first line (one per 2 ms; 20 allows a 40 ms stall). Without the bound, the
        // stream runs for 20 s; with twice the bound, about 50 more start.
        let overtaken = starts
            .lock()
            .iter()
            .filter(|&&start| start > submitted + BOUND && start < began)
            .count();
        assert!(
            overtaken <= 20,
            "{overtaken} High jobs started after the Background job was past the bound \
             (it waited {:?})",
            began - submitted
        );
        Arc::into_inner(pool).unwrap().join();
    });
}

#[test]
fn a_job_past_the_starvation_bound_goes_before_newer_high_jobs() {
    // With the worker busy, a Background job queued before High jobs and past the bound is
    // the next job taken; below the bound, the High jobs go first.
    with_timeout(LONG, || {
        let bound = Duration::from_millis(30);
        let pool = ThreadPool::builder()
            .workers(1)
            .starvation_bound(bound)
            .build()
            .unwrap();
        let gate = Gate::new();
        let _open = OpenOnDrop(gate.clone());
        let blocker = occupy_worker(&pool, &gate);
        let order = Arc::new(AtomicUsize::new(0));
        let record = |lane| {
            let order = Arc::clone(&order);
            pool.lane(lane)
                .submit(move |_| order.fetch_add(1, SeqCst))
                .unwrap()
        };
        let background = record(Lane::Background);
        let queued = Instant::now();
        let highs: Vec<_> = (0..5).map(|_| record(Lane::High)).collect();
        // The property is about time passing: the Background job must have
        // waited past the bound.
        while queued.elapsed() < bound * 2 {
            thread::sleep(bound);
        }
        gate.open();
        blocker.join().unwrap();
        assert_eq!(background.join(), Ok(0), "the starved job went first");
        let mut high: Vec<_> = highs.into_iter().map(|job| job.join().unwrap()).collect();
        high.sort_unstable();
        assert_eq!(high, [1, 2, 3, 4, 5]);

        // Without the wait past the bound, High jobs overtake it.
        let pool = ThreadPool::builder()
            .workers(1)
            .starvation_bound(Duration::from_secs(60))
            .build()
            .unwrap();
        let gate = Gate::new();
        let _open = OpenOnDrop(gate.clone());
        let blocker = occupy_worker(&pool, &gate);
        let order = Arc::new(AtomicUsize::new(0));
        let record = |lane| {
            let order = Arc::clone(&order);
            pool.lane(lane)
                .submit(move |_| order.fetch_add(1, SeqCst))
                .unwrap()
        };
        let background = record(Lane::Background);
        let highs: Vec<_> = (0..5).map(|_| record(Lane::High)).collect();
        gate.open();
        blocker.join().unwrap();
        assert_eq!(
            background.join(),
            Ok(5),
            "High jobs overtake a fresh Background job"
        );
        drop(highs);
    });
}

#[test]
fn a_high_job_overtakes_queued_plain_and_normal_jobs() {
    // With the worker blocked, a High job queued after 50 plain and 50 Normal jobs runs
    // before all of them. One worker: with two, the one that took the High job may be
    // descheduled before it starts while the other runs a few jobs, so the start order
    // would not be the take order.
    with_timeout(LONG, || {
        const WORKERS: usize = 1;
        let pool = ThreadPool::builder()
            .workers(WORKERS)
            .starvation_bound(Duration::from_secs(60))
            .build()
            .unwrap();
        let gate = Gate::new();
        let _open = OpenOnDrop(gate.clone());
        let blockers: Vec<_> = (0..WORKERS).map(|_| occupy_worker(&pool, &gate)).collect();
        let order = Arc::new(AtomicUsize::new(0));
        for _ in 0..50 {
            let order = Arc::clone(&order);
            pool.execute(move || {
                order.fetch_add(1, SeqCst);
            })
            .unwrap();
        }
        for _ in 0..50 {
            let order = Arc::clone(&order);
            pool.lane(Lane::Normal)
                .execute(move || {
                    order.fetch_add(1, SeqCst);
                })
                .unwrap();
        }
        let high = {
            let order = Arc::clone(&order);
            pool.lane(Lane::High)
                .submit(move |_| order.fetch_add(1, SeqCst))
                .unwrap()
        };
        gate.open();
        for blocker in blockers {
            blocker.join().unwrap();
        }
        let position = high.join().unwrap();
        assert_eq!(position, 0, "the High job started {position}th of 101");
        pool.join();
        assert_eq!(order.load(SeqCst), 101);
    });
}

#[test]
fn a_capped_lane_never_runs_on_more_than_its_cap() {
    // lane_limit(Background, 2) on 6 workers: at most 2 Background jobs run at once (counted
    // by the jobs and sampled from Stats), while High and plain jobs still run meanwhile.
    with_timeout(LONG, || {
        const CAP: usize = 2;
        let pool = Arc::new(
            ThreadPool::builder()
                .workers(6)
                .lane_limit(Lane::Background, CAP)
                .build()
                .unwrap(),
        );
        let gate = Gate::new();
        let _open = OpenOnDrop(gate.clone());
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (started, on_start) = bounded(200);
        let jobs: Vec<_> = (0..200)
            .map(|_| {
                let (gate, running, most, started) = (
                    gate.clone(),
                    Arc::clone(&running),
                    Arc::clone(&most),
                    started.clone(),
                );
                pool.lane(Lane::Background)
                    .submit(move |_| {
                        let now = running.fetch_add(1, SeqCst) + 1;
                        most.fetch_max(now, SeqCst);
                        let _ = started.try_send(());
                        gate.wait();
                        thread::sleep(Duration::from_micros(200));
                        running.fetch_sub(1, SeqCst);
                    })
                    .unwrap()
            })
            .collect();
        for _ in 0..CAP {
            on_start
                .recv_timeout(WAIT)
                .expect("the cap's worth started");
        }
        // Two Background jobs hold their workers: the other lanes still run.
        let urgent = pool.lane(Lane::High).submit(|_| "urgent").unwrap();
        let plain = pool.submit(|_| "plain").unwrap();
        let mut urgent = urgent;
        let mut plain = plain;
        assert_eq!(urgent.join_timeout(WAIT), Some(Ok("urgent")));
        assert_eq!(plain.join_timeout(WAIT), Some(Ok("plain")));
        let stats = pool.stats();
        assert_eq!(stats.lane(Lane::Background).running, CAP, "{stats:?}");
        assert_eq!(stats.lane(Lane::Background).queued, 200 - CAP, "{stats:?}");

        let sampler = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                let deadline = Instant::now() + WAIT;
                let mut most_seen = 0;
                loop {
                    let load = pool.stats().lane(Lane::Background);
                    most_seen = most_seen.max(load.running);
                    if load.running == 0 && load.queued == 0 {
                        return most_seen;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "the sampler never saw the Background lane empty: {load:?}"
                    );
                    thread::yield_now();
                }
            })
        };
        gate.open();
        for mut job in jobs {
            job.join_timeout(WAIT)
                .expect("a capped Background job never finished")
                .unwrap();
        }
        let most_sampled = sampler.join().unwrap();
        assert!(
            most_sampled <= CAP,
            "Stats saw {most_sampled} Background jobs running"
        );
        assert!(
            most.load(SeqCst) <= CAP,
            "{} ran at once",
            most.load(SeqCst)
        );
        assert_eq!(most.load(SeqCst), CAP);
    });
}

#[test]
fn stats_count_each_lane_and_each_routed_job_once() {
    // Stats::lane counts a lane's waiting jobs, keyed ones held behind their key included,
    // and Stats::queued counts each routed job once (its wake-up turn not at all).
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(1).build().unwrap();
        let gate = Gate::new();
        let _open = OpenOnDrop(gate.clone());
        let blocker = occupy(pool.lane(Lane::Background).key("k"), &gate);
        let mut handles = Vec::new();
        for _ in 0..3 {
            handles.push(pool.lane(Lane::Background).key("k").submit(|_| ()).unwrap());
        }
        for _ in 0..2 {
            handles.push(pool.lane(Lane::Background).submit(|_| ()).unwrap());
        }
        handles.push(pool.lane(Lane::High).submit(|_| ()).unwrap());
        handles.push(pool.keyed("n").submit(|_| ()).unwrap());
        for _ in 0..4 {
            handles.push(pool.submit(|_| ()).unwrap());
        }
        let stats = pool.stats();
        let background = stats.lane(Lane::Background);
        assert_eq!((background.queued, background.running), (5, 1), "{stats:?}");
        assert_eq!(stats.lane(Lane::High).queued, 1, "{stats:?}");
        assert_eq!(stats.lane(Lane::Normal).queued, 1, "{stats:?}");
        assert_eq!(stats.queued, 11, "{stats:?}");
        gate.open();
        blocker.join().unwrap();
        for handle in handles {
            handle.join().unwrap();
        }
        let stats = pool.stats();
        assert_eq!(stats.queued, 0, "{stats:?}");
        assert_eq!(stats.lanes, [Default::default(); 3], "{stats:?}");
    });
}

#[test]
fn a_routed_jobs_lane_slot_is_free_in_the_stats_once_its_result_is_delivered() {
    // Every end is in the stats before it is delivered, the lane's running count included: a
    // propagate hook holds the worker after the job returned (and was delivered), and the
    // stats read meanwhile show the lane idle.
    with_timeout(LONG, || {
        let (held_tx, held_rx) = bounded::<()>(1);
        let (go_tx, go_rx) = bounded::<()>(1);
        let pool = ThreadPool::builder()
            .workers(1)
            .propagate(
                || (),
                move |(), run| {
                    run();
                    let _ = held_tx.send(());
                    let _ = go_rx.recv_timeout(LONG);
                },
            )
            .build()
            .unwrap();
        let handle = pool.lane(Lane::Background).key("k").submit(|_| 7).unwrap();
        assert_eq!(handle.join(), Ok(7));
        held_rx
            .recv_timeout(LONG)
            .expect("the hook holds the worker");
        let stats = pool.stats();
        go_tx.send(()).unwrap();
        assert_eq!(
            stats.lane(Lane::Background),
            Default::default(),
            "{stats:?}"
        );
        pool.join();
    });
}

#[test]
fn a_key_queue_limit_refuses_or_holds_a_hot_keys_submits() {
    // key_queue_limit(2): with the key's job blocked and 2 waiting, try_submit and
    // submit_timeout on that key are Full with the closure back; other keys still get in; a
    // blocking submit waits and succeeds once the blocked job ends.
    with_timeout(LONG, || {
        let pool = Arc::new(
            ThreadPool::builder()
                .workers(2)
                .key_queue_limit(2)
                .build()
                .unwrap(),
        );
        let gate = Gate::new();
        let _open = OpenOnDrop(gate.clone());
        let blocker = occupy(pool.keyed("hot"), &gate);
        let waiting: Vec<_> = (1..=2)
            .map(|n| pool.keyed("hot").submit(move |_| n).unwrap())
            .collect();
        let refused = pool.keyed("hot").try_submit(|_| 3);
        let Err(TrySubmitError::Full(f)) = refused else {
            panic!("try_submit past the key queue limit was not Full");
        };
        assert_eq!(f(&Context::new()), 3, "the closure came back");
        let timed = pool
            .keyed("hot")
            .submit_timeout(|_| 4, Duration::from_millis(50));
        let Err(TrySubmitError::Full(f)) = timed else {
            panic!("submit_timeout past the key queue limit was not Full");
        };
        assert_eq!(f(&Context::new()), 4);
        let mut cold = pool.keyed("cold").try_submit(|_| "cold").unwrap();
        assert_eq!(cold.join_timeout(WAIT), Some(Ok("cold")));

        let (done, on_done) = bounded(1);
        let submitter = {
            let pool = Arc::clone(&pool);
            thread::Builder::new()
                .name("kq-submit".into())
                .spawn(move || {
                    let handle = pool.keyed("hot").submit(|_| 5);
                    done.send(()).unwrap();
                    handle.map_err(|err| err.to_string())
                })
                .unwrap()
        };
        assert!(
            wait_until(WAIT, || thread_sleeping("kq-submit")),
            "the submit blocked"
        );
        assert!(on_done.is_empty(), "the submit past the limit waited");
        gate.open();
        on_done
            .recv_timeout(WAIT)
            .expect("the blocked submit got in");
        let last = submitter.join().unwrap().unwrap();
        blocker.join().unwrap();
        let order: Vec<_> = waiting.into_iter().map(|job| job.join().unwrap()).collect();
        assert_eq!(order, [1, 2]);
        assert_eq!(last.join(), Ok(5));
    });
}

#[test]
fn routed_submits_past_the_queue_capacity_are_full() {
    // queue_capacity(4): with the worker busy, four routed try_submits are queued and the
    // fifth (any lane, keyed or not) is Full with its closure back.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(4)
            .build()
            .unwrap();
        let gate = Gate::new();
        let _open = OpenOnDrop(gate.clone());
        let blocker = occupy_worker(&pool, &gate);
        let lanes = [Lane::High, Lane::Normal, Lane::Background, Lane::Background];
        let queued: Vec<_> = lanes
            .iter()
            .enumerate()
            .map(|(n, &lane)| pool.lane(lane).key(n).try_submit(move |_| n).unwrap())
            .collect();
        for lane in Lane::ALL {
            let refused = pool.lane(lane).try_submit(|_| 9);
            assert!(matches!(refused, Err(TrySubmitError::Full(_))), "{lane:?}");
            let refused = pool.lane(lane).key(99).try_execute(|| ());
            assert!(
                matches!(refused, Err(TrySubmitError::Full(_))),
                "{lane:?} keyed"
            );
        }
        let Err(TrySubmitError::Full(f)) = pool.keyed(1).try_submit(|_| 10) else {
            panic!("not Full");
        };
        assert_eq!(f(&Context::new()), 10);
        gate.open();
        blocker.join().unwrap();
        let results: Vec<_> = queued.into_iter().map(|job| job.join().unwrap()).collect();
        assert_eq!(results, [0, 1, 2, 3]);
    });
}

/// A pool with both workers held by keyed jobs (keys "a" and "b") until it
/// is cancelled, and 45 jobs waiting: 10 behind each key, 10 Background,
/// 10 High, 5 plain.
fn pool_with_jobs_waiting() -> (ThreadPool, Vec<JobHandle<()>>, Vec<JobHandle<()>>) {
    let pool = ThreadPool::builder().workers(2).build().unwrap();
    let blockers = vec![
        occupy_until_cancelled(pool.keyed("a")),
        occupy_until_cancelled(pool.lane(Lane::Background).key("b")),
    ];
    let mut waiting = Vec::new();
    for _ in 0..10 {
        waiting.push(pool.keyed("a").submit(|_| ()).unwrap());
        waiting.push(pool.lane(Lane::Background).key("b").submit(|_| ()).unwrap());
        waiting.push(pool.lane(Lane::Background).submit(|_| ()).unwrap());
        waiting.push(pool.lane(Lane::High).submit(|_| ()).unwrap());
    }
    for _ in 0..5 {
        waiting.push(pool.submit(|_| ()).unwrap());
    }
    (pool, blockers, waiting)
}

#[test]
fn shutdown_now_reports_every_keyed_and_laned_job() {
    // shutdown_now with keyed and laned jobs waiting: submitted == ran + never_ran, and the
    // handles of the jobs that never ran say Cancelled.
    with_timeout(LONG, || {
        let (pool, blockers, waiting) = pool_with_jobs_waiting();
        let report = pool.shutdown_now();
        assert_eq!(report.submitted, 47, "{report:?}");
        assert_eq!(report.ran, 2, "{report:?}");
        assert_eq!(report.never_ran, 45, "{report:?}");
        assert_eq!(report.ran + report.never_ran, report.submitted);
        for blocker in blockers {
            // Running when the pool was cancelled: returned after, as cancelled.
            assert!(matches!(blocker.join(), Err(JobError::Cancelled(_))));
        }
        for job in waiting {
            assert!(matches!(job.join(), Err(JobError::Cancelled(_))));
        }
    });
}

#[test]
fn shutdown_timeout_reports_every_keyed_and_laned_job() {
    // shutdown_timeout whose wait runs out with keyed and laned jobs waiting accounts for
    // each: submitted == ran + never_ran, unrun handles Cancelled.
    with_timeout(LONG, || {
        let (pool, blockers, waiting) = pool_with_jobs_waiting();
        let report = pool.shutdown_timeout(Duration::from_millis(50));
        assert!(!report.drained, "{report:?}");
        assert_eq!(report.submitted, 47, "{report:?}");
        assert_eq!(
            report.ran + report.never_ran,
            report.submitted,
            "{report:?}"
        );
        assert_eq!(report.never_ran, 45, "{report:?}");
        for blocker in blockers {
            // Running when the pool was cancelled: returned after, as cancelled.
            assert!(matches!(blocker.join(), Err(JobError::Cancelled(_))));
        }
        for job in waiting {
            assert!(matches!(job.join(), Err(JobError::Cancelled(_))));
        }
    });
}

#[test]
fn join_runs_every_keyed_and_laned_job_held_at_close() {
    // join after close runs every job, those held behind a running job of their key and
    // behind a lane cap at close time included.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .lane_limit(Lane::Background, 1)
            .build()
            .unwrap();
        let gate = Gate::new();
        let _open = OpenOnDrop(gate.clone());
        let blockers = [
            occupy(pool.keyed("a"), &gate),
            occupy(pool.lane(Lane::Background).key("b"), &gate),
        ];
        let ran = Arc::new(AtomicUsize::new(0));
        for n in 0..30 {
            let ran = Arc::clone(&ran);
            let job = move || {
                ran.fetch_add(1, SeqCst);
            };
            match n % 3 {
                0 => pool.keyed("a").execute(job).unwrap(),
                1 => pool.lane(Lane::Background).key("b").execute(job).unwrap(),
                _ => pool.lane(Lane::Background).execute(job).unwrap(),
            }
        }
        pool.close();
        assert!(matches!(
            pool.keyed("a").execute(|| ()),
            Err(SubmitError::Closed(_))
        ));
        gate.open();
        for blocker in blockers {
            blocker.join().unwrap();
        }
        pool.join();
        assert_eq!(ran.load(SeqCst), 30);
    });
}

#[test]
fn close_wakes_a_routed_submit_waiting_for_room_with_closed() {
    // A routed submit blocked on a full key queue, and one blocked on a full board, wake with
    // Closed and their closures back when the pool is closed.
    with_timeout(LONG, || {
        let pool = Arc::new(
            ThreadPool::builder()
                .workers(1)
                .queue_capacity(2)
                .key_queue_limit(1)
                .build()
                .unwrap(),
        );
        let gate = Gate::new();
        let _open = OpenOnDrop(gate.clone());
        let blocker = occupy(pool.keyed("k"), &gate);
        let behind = pool.keyed("k").submit(|_| ()).unwrap();
        let spawn = |name: &str, route: fn(&ThreadPool) -> brigade::Routed<'_>| {
            let pool = Arc::clone(&pool);
            thread::Builder::new()
                .name(name.into())
                .spawn(move || match route(&pool).submit(|_| 7) {
                    Err(SubmitError::Closed(f)) => Ok(f(&Context::new())),
                    Err(other) => Err(format!("{other:?}")),
                    Ok(_) => Err("accepted".to_owned()),
                })
                .unwrap()
        };
        let on_key = spawn("cl-key", |pool| pool.keyed("k"));
        assert!(wait_until(WAIT, || thread_sleeping("cl-key")));
        // The board holds "behind"; one more fills it.
        let filler = pool.lane(Lane::High).submit(|_| ()).unwrap();
        let on_board = spawn("cl-board", |pool| pool.lane(Lane::Background));
        assert!(wait_until(WAIT, || thread_sleeping("cl-board")));
        pool.close();
        assert_eq!(on_key.join().unwrap(), Ok(7));
        assert_eq!(on_board.join().unwrap(), Ok(7));
        gate.open();
        blocker.join().unwrap();
        behind.join().unwrap();
        filler.join().unwrap();
    });
}

#[test]
fn routed_submits_on_a_closed_or_cancelled_pool_hand_the_closure_back() {
    // Every routed family refuses on a closed pool with Closed, and on a cancelled one with
    // Cancelled, handing the closure back.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder().workers(1).build().unwrap();
        pool.close();
        let Err(SubmitError::Closed(f)) = pool.keyed(1).submit(|_| 1) else {
            panic!("not Closed");
        };
        assert_eq!(f(&Context::new()), 1);
        let Err(TrySubmitError::Closed(f)) = pool.lane(Lane::High).try_submit(|_| 2) else {
            panic!("not Closed");
        };
        assert_eq!(f(&Context::new()), 2);
        let timed = pool
            .lane(Lane::Background)
            .key(3)
            .submit_timeout(|_| 3, WAIT);
        assert!(matches!(timed, Err(TrySubmitError::Closed(_))));
        assert!(matches!(
            pool.keyed(4).execute(|| ()),
            Err(SubmitError::Closed(_))
        ));

        let pool = ThreadPool::builder().workers(1).build().unwrap();
        pool.context().cancel();
        let Err(SubmitError::Cancelled(f)) = pool.keyed(1).submit(|_| 1) else {
            panic!("not Cancelled");
        };
        assert_eq!(f(&Context::new()), 1);
        let Err(TrySubmitError::Cancelled(f)) = pool.lane(Lane::High).try_submit(|_| 2) else {
            panic!("not Cancelled");
        };
        assert_eq!(f(&Context::new()), 2);
        let refused = pool.lane(Lane::Background).try_execute(|| ());
        assert!(matches!(refused, Err(TrySubmitError::Cancelled(_))));
    });
}

#[test]
fn a_rendezvous_pool_runs_keyed_and_laned_jobs() {
    // queue_capacity(0): keyed and laned submits run; a try_submit with no worker waiting is
    // Full and hands the closure back.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .queue_capacity(0)
            .build()
            .unwrap();
        let keyed: Vec<_> = (0..20)
            .map(|n| pool.keyed(n % 3).submit(move |_| n).unwrap())
            .collect();
        let laned: Vec<_> = Lane::ALL
            .iter()
            .map(|&lane| pool.lane(lane).submit(move |_| lane).unwrap())
            .collect();
        let results: Vec<_> = keyed.into_iter().map(|job| job.join().unwrap()).collect();
        assert_eq!(results, (0..20).collect::<Vec<_>>());
        let lanes: Vec<_> = laned.into_iter().map(|job| job.join().unwrap()).collect();
        assert_eq!(lanes, Lane::ALL);

        let gate = Gate::new();
        let _open = OpenOnDrop(gate.clone());
        let blockers = [occupy_worker(&pool, &gate), occupy_worker(&pool, &gate)];
        let Err(TrySubmitError::Full(f)) = pool.keyed("k").try_submit(|_| 1) else {
            panic!("a rendezvous try_submit with no worker waiting was not Full");
        };
        assert_eq!(f(&Context::new()), 1);
        let Err(TrySubmitError::Full(f)) = pool.lane(Lane::High).try_submit(|_| 2) else {
            panic!("not Full");
        };
        assert_eq!(f(&Context::new()), 2);
        gate.open();
        for blocker in blockers {
            blocker.join().unwrap();
        }
        assert_eq!(pool.stats().queued, 0);
        pool.join();
    });
}

#[test]
fn an_elastic_pool_at_no_workers_runs_keyed_and_laned_jobs() {
    // A keep_alive pool that shrank to no worker starts workers again for keyed and laned jobs.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .sizing(Sizing::Fixed(2))
            .keep_alive(Duration::from_millis(5))
            .build()
            .unwrap();
        assert_eq!(pool.submit(|_| ()).unwrap().join(), Ok(()));
        assert!(
            wait_until(WAIT, || pool.stats().workers == 0),
            "the pool shrank"
        );
        let mut keyed = pool.keyed("k").submit(|_| "keyed").unwrap();
        assert_eq!(keyed.join_timeout(WAIT), Some(Ok("keyed")));
        assert!(
            wait_until(WAIT, || pool.stats().workers == 0),
            "the pool shrank"
        );
        let mut laned = pool.lane(Lane::Background).submit(|_| "laned").unwrap();
        assert_eq!(laned.join_timeout(WAIT), Some(Ok("laned")));
        assert!(
            wait_until(WAIT, || pool.stats().workers == 0),
            "the pool shrank"
        );
        let jobs: Vec<_> = (0..20)
            .map(|n| {
                pool.lane(Lane::ALL[n % 3])
                    .key(n % 4)
                    .submit(move |_| n)
                    .unwrap()
            })
            .collect();
        for (n, mut job) in jobs.into_iter().enumerate() {
            assert_eq!(job.join_timeout(WAIT), Some(Ok(n)));
        }
    });
}

#[test]
fn a_lane_limit_above_a_machine_derived_count_builds() {
    // The same settings must build on every host: against a worker count
    // derived from the machine, a higher limit is accepted (and never
    // binds); against a count the caller gave, it is refused.
    let pool = ThreadPool::builder()
        .sizing(Sizing::CpuBound)
        .lane_limit(Lane::Background, 1_000)
        .build()
        .expect("a machine-derived count takes any limit");
    pool.join();
    let refused = ThreadPool::builder()
        .workers(2)
        .lane_limit(Lane::Background, 1_000)
        .build();
    assert!(matches!(
        refused,
        Err(brigade::BuildError::LaneLimitAboveWorkers {
            limit: 1_000,
            workers: 2,
            ..
        })
    ));
}
