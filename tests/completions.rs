//! `Completions`: results come out in the order jobs finish, each exactly
//! once; bounded waits leave the set usable; `cancel_rest`, drop and
//! `detach` decide what happens to the rest; `poll_next` and `next_async`
//! wake a task exactly when a job ends, with no async runtime.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use brigade::{Cancelled, Completions, Context, JobError, JobHandle, ThreadPool};
use crossbeam_channel::{Receiver, Sender};

use common::{
    DropCounter, Gate, LONG, SplitMix64, block_on, occupy_worker, wait_until, with_timeout,
};

/// A short wait for "nothing happens": long enough that a wrong answer
/// would usually show, and only ever used where the right answer is
/// "still nothing".
const SHORT: Duration = Duration::from_millis(20);

fn pool(workers: usize) -> ThreadPool {
    ThreadPool::builder()
        .workers(workers)
        .queue_capacity(256)
        .build()
        .expect("build the pool")
}

/// Burns CPU for about `rounds` steps: a run time that varies without
/// sleeping.
fn spin(rounds: u64) -> u64 {
    (0..rounds).fold(0, |acc, i| std::hint::black_box(acc ^ i.rotate_left(7)))
}

/// A random permutation of `0..n`.
fn shuffled(n: usize, rng: &mut SplitMix64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = usize::try_from(rng.below(i as u64 + 1)).expect("small");
        order.swap(i, j);
    }
    order
}

/// A job that waits for `gate`, then returns `value`.
fn gated(pool: &ThreadPool, gate: &Gate, value: usize) -> JobHandle<usize> {
    let gate = gate.clone();
    pool.submit(move |_ctx: &Context| {
        gate.wait();
        value
    })
    .expect("the pool accepts the job")
}

/// A job that records whether it ran; the closure owns a `DropCounter`.
fn flagged(pool: &ThreadPool, ran: &Arc<AtomicBool>, drops: &Arc<AtomicUsize>) -> JobHandle<()> {
    let ran = Arc::clone(ran);
    let counter = DropCounter(Arc::clone(drops));
    pool.submit(move |_ctx: &Context| {
        let _owned = &counter;
        ran.store(true, Ordering::SeqCst);
    })
    .expect("the pool accepts the job")
}

/// A job that signals when it starts, then waits for its context to be
/// cancelled and reports on `cancelled` whether it was (within `LONG`).
fn waits_for_cancel(pool: &ThreadPool, cancelled: Sender<bool>) -> JobHandle<()> {
    let (started_tx, started_rx) = crossbeam_channel::bounded(1);
    let handle = pool
        .submit(move |ctx: &Context| {
            started_tx.send(()).expect("the test waits for the start");
            let seen = ctx
                .done()
                .recv_timeout(LONG)
                .is_err_and(|e| e.is_disconnected());
            cancelled.send(seen).expect("the test waits for the report");
        })
        .expect("the pool accepts the job");
    started_rx.recv_timeout(LONG).expect("the job started");
    handle
}

#[test]
fn yields_in_completion_order_under_random_run_times() {
    // On one worker, jobs finish in the order they were submitted, whatever
    // their run times; the set yields them in that order, not in the order
    // they were pushed.
    with_timeout(LONG, || {
        for seed in 0..8 {
            let mut rng = SplitMix64(seed);
            let n = 24;
            let finish_order = shuffled(n, &mut rng);
            let pool = pool(1);
            let gate = Gate::new();
            let _blocker = occupy_worker(&pool, &gate);
            let mut handles: Vec<Option<JobHandle<usize>>> = (0..n).map(|_| None).collect();
            for &index in &finish_order {
                let rounds = rng.below(200_000);
                let job = pool.submit(move |_ctx: &Context| {
                    spin(rounds);
                    index
                });
                handles[index] = Some(job.expect("accepted"));
            }
            let mut set: Completions<usize> = handles.into_iter().map(Option::unwrap).collect();
            assert_eq!(set.len(), n);
            gate.open();
            let mut yielded = Vec::new();
            while let Some((index, result)) = set.next_timeout(LONG) {
                assert_eq!(result, Ok(index), "seed {seed}: index {index}");
                yielded.push(index);
            }
            assert_eq!(yielded, finish_order, "seed {seed}");
            assert!(set.is_empty());
            assert_eq!(set.next(), None);
        }
    });
}

#[test]
fn yields_whichever_job_finished_not_the_oldest() {
    // Jobs released one at a time in a random order come out in that order:
    // `next` never waits on an earlier-pushed job that is still running.
    with_timeout(LONG, || {
        let mut rng = SplitMix64(17);
        let n = 6;
        let pool = pool(n);
        let gates: Vec<Gate> = (0..n).map(|_| Gate::new()).collect();
        let mut set = Completions::new();
        for (value, gate) in gates.iter().enumerate() {
            assert_eq!(set.push(gated(&pool, gate, value * 10)), value);
        }
        for index in shuffled(n, &mut rng) {
            gates[index].open();
            let next = set.next_timeout(LONG);
            assert_eq!(next, Some((index, Ok(index * 10))));
            assert_eq!(set.try_next(), None, "nothing else has finished");
        }
        assert_eq!(set.next(), None);
    });
}

#[test]
fn every_job_is_yielded_exactly_once() {
    // 300 jobs of random length on 4 workers: each index comes out once,
    // with its own value, and then the set is empty.
    with_timeout(LONG, || {
        let mut rng = SplitMix64(99);
        let pool = pool(4);
        let n = 300;
        let mut set = Completions::new();
        for index in 0..n {
            let rounds = rng.below(50_000);
            let job = pool.submit(move |_ctx: &Context| {
                spin(rounds);
                index
            });
            assert_eq!(set.push(job.expect("accepted")), index);
        }
        assert_eq!(set.size_hint(), (n, Some(n)));
        let mut seen = vec![0u32; n];
        while let Some((index, result)) = set.next_timeout(LONG) {
            assert_eq!(result, Ok(index));
            seen[index] += 1;
            assert_eq!(set.len(), n - seen.iter().sum::<u32>() as usize);
        }
        assert!(seen.iter().all(|&count| count == 1), "{seen:?}");
        assert_eq!(set.try_next(), None);
    });
}

#[test]
fn handles_from_different_pools_mix() {
    // One set holds jobs of two pools; whichever pool's job ends first
    // comes out first.
    with_timeout(LONG, || {
        let (first, second) = (pool(1), pool(1));
        let (gate_a, gate_b) = (Gate::new(), Gate::new());
        let mut set = Completions::new();
        set.push(gated(&first, &gate_a, 1));
        set.push(gated(&second, &gate_b, 2));
        gate_b.open();
        assert_eq!(set.next_timeout(LONG), Some((1, Ok(2))));
        gate_a.open();
        assert_eq!(set.next_timeout(LONG), Some((0, Ok(1))));
        assert!(set.is_empty());
    });
}

#[test]
fn a_finished_handle_is_ready_at_once() {
    // A handle whose job ended before it was pushed is yielded without
    // waiting, after what was ready before it, with failures as results.
    with_timeout(LONG, || {
        let pool = pool(2);
        let done = pool.submit(|_ctx: &Context| 7).expect("accepted");
        let boom = pool
            .submit(|_ctx: &Context| -> i32 { panic!("bad job") })
            .expect("accepted");
        assert!(wait_until(LONG, || done.is_finished() && boom.is_finished()));
        let mut set = Completions::new();
        set.extend([boom, done]);
        let (index, result) = set.try_next().expect("ready at once");
        assert_eq!(index, 0);
        match result {
            Err(JobError::Panicked(panic)) => assert_eq!(panic.message(), "bad job"),
            other => panic!("expected a panic, got {other:?}"),
        }
        assert_eq!(set.try_next(), Some((1, Ok(7))));
        assert_eq!(set.try_next(), None);
    });
}

#[test]
fn next_timeout_times_out_and_the_set_stays_usable() {
    // A bounded wait that ends with nothing finished returns None and loses
    // nothing; a later wait gets the job.
    with_timeout(LONG, || {
        let pool = pool(1);
        let gate = Gate::new();
        let mut set = Completions::new();
        set.push(gated(&pool, &gate, 5));
        let started = Instant::now();
        assert_eq!(set.next_timeout(SHORT), None);
        assert!(started.elapsed() >= SHORT, "it waited the whole timeout");
        assert_eq!(set.try_next(), None);
        assert_eq!(set.len(), 1);
        gate.open();
        assert_eq!(set.next_timeout(LONG), Some((0, Ok(5))));
        assert_eq!(set.next_timeout(SHORT), None);
        assert!(set.is_empty());
    });
}

#[test]
fn huge_timeouts_do_not_panic() {
    // `Duration::MAX` (an instant that cannot be represented) waits as
    // long as it takes instead of panicking; on an empty set it returns at
    // once.
    with_timeout(LONG, || {
        let pool = pool(1);
        let mut set: Completions<u8> = Completions::new();
        assert_eq!(set.next_timeout(Duration::MAX), None);
        set.push(pool.submit(|_ctx: &Context| 3u8).expect("accepted"));
        assert_eq!(set.next_timeout(Duration::MAX), Some((0, Ok(3))));
        assert_eq!(set.next_timeout(Duration::MAX), None);
    });
}

#[test]
fn cancel_rest_cancels_queued_jobs_and_signals_running_ones() {
    // Queued jobs never run (their closures are dropped at once) and are
    // yielded as cancelled, in index order; the running job's context is
    // cancelled and it is yielded when it ends.
    with_timeout(LONG, || {
        let pool = pool(1);
        let (cancelled_tx, cancelled_rx) = crossbeam_channel::bounded(1);
        let (ran, drops) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let mut set = Completions::new();
        set.push(waits_for_cancel(&pool, cancelled_tx));
        set.push(flagged(&pool, &ran, &drops));
        set.push(flagged(&pool, &ran, &drops));
        set.cancel_rest();
        assert_eq!(drops.load(Ordering::SeqCst), 2, "queued closures dropped");
        let canceled = Err(JobError::Cancelled(Cancelled::Canceled));
        assert_eq!(set.try_next(), Some((1, canceled.clone())));
        assert_eq!(set.try_next(), Some((2, canceled.clone())));
        assert_eq!(cancelled_rx.recv_timeout(LONG), Ok(true));
        assert_eq!(set.next_timeout(LONG), Some((0, canceled)));
        assert_eq!(set.next(), None);
        pool.join();
        assert!(!ran.load(Ordering::SeqCst), "a cancelled job ran");
    });
}

#[test]
fn cancel_rest_keeps_finished_results() {
    // A job that finished before `cancel_rest` keeps its value.
    with_timeout(LONG, || {
        let pool = pool(1);
        let mut set = Completions::new();
        set.push(pool.submit(|_ctx: &Context| "kept").expect("accepted"));
        // One worker delivers a job's result before it starts the next, so
        // once the next job runs, the first has ended.
        let (after_tx, after_rx) = crossbeam_channel::bounded(1);
        let after = pool.submit(move |_ctx: &Context| after_tx.send(()));
        after_rx.recv_timeout(LONG).expect("the second job ran");
        assert_eq!(set.len(), 1, "ended, not yet yielded");
        set.cancel_rest();
        assert_eq!(set.next_timeout(LONG), Some((0, Ok("kept"))));
        drop(after);
    });
}

#[test]
fn dropping_the_set_cancels_the_rest() {
    // Drop cancels: queued jobs never run and a running job is told.
    with_timeout(LONG, || {
        let pool = pool(1);
        let (cancelled_tx, cancelled_rx) = crossbeam_channel::bounded(1);
        let (ran, drops) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let mut set = Completions::new();
        set.push(waits_for_cancel(&pool, cancelled_tx));
        set.push(flagged(&pool, &ran, &drops));
        drop(set);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "the queued closure is dropped"
        );
        assert_eq!(cancelled_rx.recv_timeout(LONG), Ok(true));
        pool.join();
        assert!(!ran.load(Ordering::SeqCst), "a cancelled job ran");
    });
}

#[test]
fn detach_lets_the_jobs_run() {
    // `detach` drops the set without cancelling: every job runs to its end.
    with_timeout(LONG, || {
        let pool = pool(1);
        let gate = Gate::new();
        let (ran, drops) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let mut set = Completions::new();
        set.push(occupy_worker(&pool, &gate));
        set.push(flagged(&pool, &ran, &drops));
        set.detach();
        assert_eq!(drops.load(Ordering::SeqCst), 0, "nothing was cancelled");
        gate.open();
        pool.join();
        assert!(ran.load(Ordering::SeqCst), "the detached job ran");
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

/// A waker that counts its wakes and reports each on a channel.
struct CountingWaker {
    wakes: AtomicUsize,
    woken: Sender<()>,
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        let _ = self.woken.send(());
    }
}

fn counting_waker() -> (Arc<CountingWaker>, Waker, Receiver<()>) {
    let (woken, rx) = crossbeam_channel::unbounded();
    let counter = Arc::new(CountingWaker {
        wakes: AtomicUsize::new(0),
        woken,
    });
    (Arc::clone(&counter), Waker::from(counter), rx)
}

#[test]
fn poll_next_wakes_the_task_exactly_when_a_job_ends() {
    // `Pending` registers the task; it is woken once per job end it waits
    // for, never before, and the next poll has the job.
    with_timeout(LONG, || {
        let pool = pool(2);
        let (gate_a, gate_b) = (Gate::new(), Gate::new());
        let mut set = Completions::new();
        set.push(gated(&pool, &gate_a, 10));
        set.push(gated(&pool, &gate_b, 20));
        let (counter, waker, woken) = counting_waker();
        let mut cx = TaskContext::from_waker(&waker);
        assert_eq!(set.poll_next(&mut cx), Poll::Pending);
        assert_eq!(
            woken.recv_timeout(SHORT),
            Err(crossbeam_channel::RecvTimeoutError::Timeout)
        );
        assert_eq!(
            counter.wakes.load(Ordering::SeqCst),
            0,
            "woken before any job ended"
        );
        gate_b.open();
        woken.recv_timeout(LONG).expect("woken when the job ended");
        assert_eq!(set.poll_next(&mut cx), Poll::Ready(Some((1, Ok(20)))));
        assert_eq!(set.poll_next(&mut cx), Poll::Pending);
        assert_eq!(counter.wakes.load(Ordering::SeqCst), 1);
        gate_a.open();
        woken
            .recv_timeout(LONG)
            .expect("woken when the second job ended");
        assert_eq!(set.poll_next(&mut cx), Poll::Ready(Some((0, Ok(10)))));
        assert_eq!(set.poll_next(&mut cx), Poll::Ready(None));
        assert_eq!(
            counter.wakes.load(Ordering::SeqCst),
            2,
            "one wake per job end"
        );
    });
}

#[test]
fn next_async_yields_in_completion_order() {
    // Awaited on a std-only executor, the set yields in finishing order,
    // and `None` once everything was yielded.
    with_timeout(LONG, || {
        let pool = pool(1);
        let gate = Gate::new();
        let _blocker = occupy_worker(&pool, &gate);
        let finish_order = [2, 0, 3, 1];
        let mut handles: Vec<Option<JobHandle<usize>>> = vec![None, None, None, None];
        for index in finish_order {
            handles[index] = Some(pool.submit(move |_ctx: &Context| index).expect("accepted"));
        }
        let mut set: Completions<usize> = handles.into_iter().map(Option::unwrap).collect();
        let yielded = block_on(async {
            // The jobs run while the task awaits them.
            gate.open();
            let mut yielded = Vec::new();
            while let Some((index, result)) = set.next_async().await {
                assert_eq!(result, Ok(index));
                yielded.push(index);
            }
            yielded
        });
        assert_eq!(yielded, finish_order);
    });
}

#[test]
fn sets_and_their_futures_move_between_threads() {
    // A set of `Send` results is `Send` (and so is `next_async`'s future),
    // so a set can be filled on one thread and drained on another.
    fn assert_send<S: Send>(_: &S) {}
    with_timeout(LONG, || {
        let pool = pool(1);
        let mut set = Completions::new();
        set.push(pool.submit(|_ctx: &Context| 1u32).expect("accepted"));
        assert_send(&set.next_async());
        let drained = thread::spawn(move || set.next_timeout(LONG));
        assert_eq!(drained.join().expect("no panic"), Some((0, Ok(1))));
    });
}

#[test]
fn debug_names_the_set() {
    // `Debug` shows what is left and how many were pushed.
    with_timeout(LONG, || {
        let pool = pool(1);
        let mut set = Completions::default();
        set.push(pool.submit(|_ctx: &Context| ()).expect("accepted"));
        assert_eq!(set.next_timeout(LONG), Some((0, Ok(()))));
        assert_eq!(format!("{set:?}"), "Completions { len: 0, pushed: 1, .. }");
    });
}
