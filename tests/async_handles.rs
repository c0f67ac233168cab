//! Handles and submits from async code, polled by hand with a counting
//! waker (no runtime): a handle's future wakes its task exactly when the
//! job ends; an async submit on a full queue is `Pending` without blocking
//! and completes when a slot frees, or resolves `Closed` / `Cancelled`;
//! `cancel_on_drop` cancels; and many async producers through a tiny
//! queue lose no job and no wake-up.

mod common;

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread;

use brigade::{
    Cancelled, Context, ErrGroup, GroupError, JobError, Lane, SubmitError, ThreadPool, WorkerPool,
};
use common::{Gate, LONG, block_on, occupy_worker, thread_sleeping, wait_until, with_timeout};
use crossbeam_channel::{Receiver, Sender};

/// A waker that counts its wake-ups and reports each on a channel.
struct Counting {
    wakes: AtomicUsize,
    tx: Sender<()>,
}

impl Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        let _ = self.tx.send(());
    }
}

fn counting() -> (Arc<Counting>, Waker, Receiver<()>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let counter = Arc::new(Counting {
        wakes: AtomicUsize::new(0),
        tx,
    });
    let waker = Waker::from(Arc::clone(&counter));
    (counter, waker, rx)
}

fn poll_once<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(future).poll(&mut TaskContext::from_waker(waker))
}

fn pool(workers: usize, capacity: usize) -> ThreadPool {
    ThreadPool::builder()
        .workers(workers)
        .queue_capacity(capacity)
        .build()
        .expect("valid pool")
}

#[test]
fn awaited_handle_wakes_exactly_when_the_job_ends() {
    with_timeout(LONG, || {
        let pool = pool(1, 4);
        let gate = Gate::new();
        let held = gate.clone();
        let mut handle = pool
            .submit(move |_ctx| {
                held.wait();
                7_u32
            })
            .expect("accepted");
        let (counter, waker, woken) = counting();
        assert!(poll_once(&mut handle, &waker).is_pending());
        assert!(
            poll_once(&mut handle, &waker).is_pending(),
            "a second poll is fine"
        );
        assert_eq!(
            counter.wakes.load(Ordering::SeqCst),
            0,
            "woken before the job ended"
        );
        gate.open();
        woken.recv_timeout(LONG).expect("woken when the job ended");
        assert_eq!(poll_once(&mut handle, &waker), Poll::Ready(Ok(7)));
        assert_eq!(
            counter.wakes.load(Ordering::SeqCst),
            1,
            "woken exactly once"
        );
        // Polled after it returned the result: a clear error, at once.
        assert_eq!(
            poll_once(&mut handle, &waker),
            Poll::Ready(Err(JobError::AlreadyJoined))
        );
        pool.join();
    });
}

#[test]
fn awaited_handle_resolves_cancelled_when_the_pool_is_cancelled() {
    with_timeout(LONG, || {
        let ctx = Context::new();
        let pool = ThreadPool::builder()
            .workers(1)
            .context(&ctx)
            .build()
            .expect("valid pool");
        let gate = Gate::new();
        let blocker = occupy_worker(&pool, &gate);
        let queued = pool.submit(|_ctx| 1_u8).expect("accepted");
        ctx.cancel();
        gate.open();
        assert_eq!(
            block_on(queued),
            Err(JobError::Cancelled(Cancelled::Canceled))
        );
        assert_eq!(
            block_on(blocker),
            Err(JobError::Cancelled(Cancelled::Canceled))
        );
        pool.join();
    });
}

/// An async submit to a pool whose worker is busy and whose queue (or,
/// along `lane`, whose dispatcher) is full: pending without blocking,
/// woken when the worker takes the queued job, then resolved.
fn pending_until_room(lane: Option<Lane>) {
    let pool = pool(1, 1);
    let gate = Gate::new();
    let blocker = occupy_worker(&pool, &gate);
    let second_gate = Gate::new();
    let held = second_gate.clone();
    let first = move |_ctx: &Context| {
        held.wait();
        1_u32
    };
    let queued = match lane {
        None => pool.submit(first),
        Some(lane) => pool.lane(lane).submit(first),
    }
    .expect("the one slot");
    let (counter, waker, woken) = counting();
    let second = |_ctx: &Context| 2_u32;
    let mut submit = match lane {
        None => pool.submit_async(second),
        Some(_) => pool.lane(Lane::High).submit_async(second),
    };
    // Returns at once, without blocking this thread.
    assert!(poll_once(&mut submit, &waker).is_pending());
    assert_eq!(counter.wakes.load(Ordering::SeqCst), 0);
    gate.open();
    // The worker takes the queued job (and holds it): taking it freed
    // the slot, and that alone must wake the waiting submit.
    woken.recv_timeout(LONG).expect("woken when a slot freed");
    second_gate.open();
    let Poll::Ready(Ok(handle)) = poll_once(&mut submit, &waker) else {
        panic!("the submit did not complete once woken")
    };
    assert_eq!(block_on(handle), Ok(2));
    assert_eq!(block_on(queued), Ok(1));
    assert_eq!(block_on(blocker), Ok(()));
    // Polled again after it resolved: a handle that says so.
    let Poll::Ready(Ok(again)) = poll_once(&mut submit, &waker) else {
        panic!("a resolved submit did not resolve again")
    };
    assert_eq!(again.join(), Err(JobError::AlreadyJoined));
    drop(submit);
    pool.join();
}

#[test]
fn async_submit_on_a_full_queue_is_pending_then_completes_when_room_frees() {
    with_timeout(LONG, || pending_until_room(None));
}

#[test]
fn a_lane_async_submit_waits_for_room_on_the_dispatcher() {
    with_timeout(LONG, || pending_until_room(Some(Lane::Background)));
}

#[test]
fn waiting_async_submit_resolves_closed_or_cancelled() {
    with_timeout(LONG, || {
        for cancel in [false, true] {
            let ctx = Context::new();
            let pool = ThreadPool::builder()
                .workers(1)
                .queue_capacity(1)
                .context(&ctx)
                .build()
                .expect("valid pool");
            let gate = Gate::new();
            let _blocker = occupy_worker(&pool, &gate);
            let _queued = pool.submit(|_ctx| ()).expect("the one slot");
            let (_counter, waker, woken) = counting();
            let mut submit = pool.submit_async(|_ctx| "never");
            assert!(poll_once(&mut submit, &waker).is_pending());
            // The worker stays inside its job: the wake-up comes from the
            // close or the cancellation itself.
            if cancel {
                ctx.cancel();
            } else {
                pool.close();
            }
            woken
                .recv_timeout(LONG)
                .expect("woken by the close or cancel");
            match poll_once(&mut submit, &waker) {
                Poll::Ready(Err(SubmitError::Cancelled(_))) if cancel => {}
                Poll::Ready(Err(SubmitError::Closed(_))) if !cancel => {}
                other => panic!(
                    "cancel={cancel}: {:?}",
                    other.map(|r| r.map(drop).map_err(drop))
                ),
            }
            drop(submit);
            gate.open();
            pool.join();
        }
    });
}

#[test]
fn dropped_async_submit_never_runs_its_job_and_passes_the_slot_on() {
    with_timeout(LONG, || {
        let pool = pool(1, 1);
        let gate = Gate::new();
        let blocker = occupy_worker(&pool, &gate);
        let _queued = pool.submit(|_ctx| ()).expect("the one slot");
        let ran = Arc::new(AtomicUsize::new(0));
        let (_c1, first_waker, first_woken) = counting();
        let (_c2, second_waker, second_woken) = counting();
        let counted = Arc::clone(&ran);
        let mut first = pool.submit_async(move |_ctx| counted.fetch_add(1, Ordering::SeqCst));
        let mut second = pool.submit_async(|_ctx| 5_u8);
        assert!(poll_once(&mut first, &first_waker).is_pending());
        assert!(poll_once(&mut second, &second_waker).is_pending());
        gate.open();
        // The first waiter is woken for the freed slot, but goes away.
        first_woken
            .recv_timeout(LONG)
            .expect("the first waiter woken");
        drop(first);
        second_woken.recv_timeout(LONG).expect("the slot passed on");
        let Poll::Ready(Ok(handle)) = poll_once(&mut second, &second_waker) else {
            panic!("the second submit did not get the slot")
        };
        assert_eq!(block_on(handle), Ok(5));
        assert_eq!(block_on(blocker), Ok(()));
        drop(second);
        pool.join();
        assert_eq!(ran.load(Ordering::SeqCst), 0, "a dropped submit's job ran");
    });
}

#[test]
fn cancel_on_drop_cancels_a_queued_or_running_job_and_detach_does_not() {
    with_timeout(LONG, || {
        let pool = pool(1, 4);
        let gate = Gate::new();
        let blocker = occupy_worker(&pool, &gate);
        let ran = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&ran);
        let queued = pool.submit(move |_ctx| counted.fetch_add(1, Ordering::SeqCst));
        drop(queued.expect("accepted").cancel_on_drop());
        let kept = pool
            .submit(|_ctx| 9_u8)
            .expect("accepted")
            .cancel_on_drop()
            .detach();
        gate.open();
        assert_eq!(blocker.join(), Ok(()));
        assert_eq!(kept.join(), Ok(9), "a detached handle's job was cancelled");

        // A running job's context is cancelled.
        let (started_tx, started) = crossbeam_channel::bounded(1);
        let (seen_tx, seen) = crossbeam_channel::bounded(1);
        let running = pool
            .submit(move |ctx| {
                started_tx.send(()).expect("the test waits");
                let _ = ctx.done().recv_timeout(LONG);
                seen_tx.send(ctx.is_done()).expect("the test waits");
            })
            .expect("accepted")
            .cancel_on_drop();
        started.recv_timeout(LONG).expect("started");
        drop(running);
        assert_eq!(
            seen.recv_timeout(LONG),
            Ok(true),
            "the running job was not cancelled"
        );
        pool.join();
        assert_eq!(ran.load(Ordering::SeqCst), 0, "a cancelled queued job ran");
    });
}

#[test]
fn many_async_producers_through_a_tiny_queue_lose_nothing() {
    with_timeout(LONG, || {
        const PRODUCERS: usize = 4;
        const JOBS: usize = 500;
        let pool = Arc::new(pool(2, 2));
        let ran = Arc::new(AtomicUsize::new(0));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|_| {
                let (pool, ran) = (Arc::clone(&pool), Arc::clone(&ran));
                thread::spawn(move || {
                    block_on(async {
                        let mut handles = Vec::with_capacity(JOBS);
                        for n in 0..JOBS {
                            let ran = Arc::clone(&ran);
                            let submitted = pool.submit_async(move |_ctx| {
                                ran.fetch_add(1, Ordering::SeqCst);
                                n
                            });
                            handles.push(submitted.await.map_err(|e| e.kind()).expect("accepted"));
                        }
                        for (n, handle) in handles.into_iter().enumerate() {
                            assert_eq!(handle.await, Ok(n));
                        }
                    });
                })
            })
            .collect();
        for producer in producers {
            producer.join().expect("a producer failed");
        }
        assert!(wait_until(LONG, || ran.load(Ordering::SeqCst) == PRODUCERS * JOBS));
        let pool = Arc::into_inner(pool).expect("the producers are gone");
        assert_eq!(pool.stats().completed, (PRODUCERS * JOBS) as u64);
        pool.join();
    });
}

#[test]
fn async_submit_on_a_closed_pool_resolves_closed_at_once() {
    with_timeout(LONG, || {
        let pool = pool(1, 4);
        pool.close();
        let (_counter, waker, _woken) = counting();
        let mut submit = pool.submit_async(|_ctx| 1_u8);
        assert!(matches!(
            poll_once(&mut submit, &waker),
            Poll::Ready(Err(SubmitError::Closed(_)))
        ));
        drop(submit);
        pool.join();

        let workers = WorkerPool::builder()
            .workers(1)
            .build(|_ctx, n: u32| n)
            .expect("valid pool");
        workers.close();
        let mut submit = workers.submit_async(7);
        assert_eq!(
            poll_once(&mut submit, &waker),
            Poll::Ready(Err(SubmitError::Closed(7)))
        );
        drop(submit);
        assert!(workers.join().is_empty());
    });
}

#[test]
fn worker_pool_async_submit_waits_for_room_then_queues_in_order() {
    with_timeout(LONG, || {
        let gate = Gate::new();
        let held = gate.clone();
        let (started_tx, started) = crossbeam_channel::unbounded();
        let workers = WorkerPool::builder()
            .workers(1)
            .queue_capacity(1)
            .build(move |_ctx, n: u32| {
                started_tx.send(n).expect("the test waits");
                if n == 0 {
                    held.wait();
                }
                n
            })
            .expect("valid pool");
        workers.submit(0).expect("accepted");
        assert_eq!(started.recv_timeout(LONG), Ok(0));
        workers.submit(1).expect("the one slot");
        let (counter, waker, woken) = counting();
        let mut submit = workers.submit_async(2);
        assert!(poll_once(&mut submit, &waker).is_pending());
        assert_eq!(counter.wakes.load(Ordering::SeqCst), 0);
        gate.open();
        woken.recv_timeout(LONG).expect("woken when a slot freed");
        assert_eq!(poll_once(&mut submit, &waker), Poll::Ready(Ok(2)));
        drop(submit);
        workers.close();
        let results: Vec<u32> = workers
            .results()
            .iter()
            .map(|out| out.result.expect("ran"))
            .collect();
        assert_eq!(results, [0, 1, 2]);
    });
}

#[test]
fn group_wait_async_is_pending_until_the_last_task_ends() {
    with_timeout(LONG, || {
        let group = ErrGroup::<String>::new(&Context::new());
        let gate = Gate::new();
        let held = gate.clone();
        group.spawn(|_ctx| Ok(())).expect("accepted");
        group
            .spawn(move |_ctx| {
                held.wait();
                Err("late failure".to_owned())
            })
            .expect("accepted");
        let (counter, waker, woken) = counting();
        let mut wait = pin!(group.wait_async());
        let mut cx = TaskContext::from_waker(&waker);
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        assert_eq!(counter.wakes.load(Ordering::SeqCst), 0);
        gate.open();
        woken.recv_timeout(LONG).expect("woken by the last task");
        assert_eq!(
            wait.as_mut().poll(&mut cx),
            Poll::Ready(Err(GroupError::Failed("late failure".to_owned())))
        );

        let collecting = ErrGroup::<String>::collect_all(&Context::new());
        for n in 0..3 {
            collecting
                .spawn(move |_ctx| Err(format!("task {n}")))
                .expect("accepted");
        }
        let errors = block_on(collecting.wait_async()).expect_err("every task failed");
        assert_eq!(errors.len(), 3);
    });
}

#[test]
fn async_submits_on_a_rendezvous_queue_are_always_woken() {
    // Found by the chaos suite: with capacity 0 there is room only while a
    // worker is blocked receiving, and a retry just before it blocked was
    // never woken again.
    with_timeout(LONG, || {
        let pool = pool(1, 0);
        for _ in 0..1_000 {
            let handle = block_on(pool.submit_async(|_ctx| thread::yield_now()))
                .map_err(|e| e.kind())
                .expect("accepted");
            assert_eq!(handle.join(), Ok(()));
        }
        pool.join();
    });
}

#[test]
fn a_keyed_async_submit_waits_for_room_in_its_key_and_keeps_its_order() {
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .key_queue_limit(1)
            .build()
            .expect("valid pool");
        let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let key = pool.keyed("account-1");
        let gate = Gate::new();
        let (started_tx, started) = crossbeam_channel::bounded(1);
        let (held, first_order) = (gate.clone(), Arc::clone(&order));
        let first = key
            .submit(move |_ctx| {
                started_tx.send(()).expect("the test waits");
                held.wait();
                first_order.lock().push(1);
            })
            .expect("room");
        started
            .recv_timeout(LONG)
            .expect("the key's first job started");
        let second_order = Arc::clone(&order);
        let second = key
            .submit(move |_ctx| second_order.lock().push(2))
            .expect("room for one behind the running job");
        let (_counter, waker, woken) = counting();
        let third_order = Arc::clone(&order);
        let mut submit = key.submit_async(move |_ctx| third_order.lock().push(3));
        assert!(
            poll_once(&mut submit, &waker).is_pending(),
            "the key's queue is full"
        );
        gate.open();
        // Polled only when woken. The other worker, idle, may wake it
        // before the key has room (a worker about to block wakes every
        // waiter): then it stays pending until the next wake-up.
        let third = loop {
            woken
                .recv_timeout(LONG)
                .expect("woken when the key's queue had room");
            match poll_once(&mut submit, &waker) {
                Poll::Ready(done) => break done.expect("a live pool accepts"),
                Poll::Pending => {}
            }
        };
        drop(submit);
        for handle in [first, second, third] {
            assert_eq!(block_on(handle), Ok(()));
        }
        assert_eq!(*order.lock(), [1, 2, 3]);
        pool.join();
    });
}

#[test]
fn a_board_place_wakes_the_lane_future_behind_a_future_waiting_for_its_key() {
    // Found in review: one waiter woken per place freed, and the one woken
    // (waiting for its key's queue, still full) swallowed the wake-up the
    // lane future behind it needed.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(2)
            .key_queue_limit(1)
            .build()
            .expect("valid pool");
        let gate = Gate::new();
        let busy = occupy_worker(&pool, &gate);
        let held_gate = Gate::new();
        let held = held_gate.clone();
        let key = pool.keyed("k");
        let first = key.submit(move |_ctx| held.wait()).expect("room");
        let second = key.submit(|_ctx| ()).expect("room behind the first");
        let (_key_counter, key_waker, _key_woken) = counting();
        let mut for_key = key.submit_async(|_ctx| ());
        assert!(
            poll_once(&mut for_key, &key_waker).is_pending(),
            "the key is full"
        );
        let (_counter, waker, woken) = counting();
        let mut for_place = pool.lane(Lane::High).submit_async(|_ctx| 7);
        assert!(
            poll_once(&mut for_place, &waker).is_pending(),
            "the board is full"
        );
        // The worker takes the key's first job off the board: a place frees.
        gate.open();
        woken
            .recv_timeout(LONG)
            .expect("the lane future woken for the place");
        let Poll::Ready(Ok(handle)) = poll_once(&mut for_place, &waker) else {
            panic!("the lane future did not complete once woken")
        };
        held_gate.open();
        assert_eq!(block_on(handle), Ok(7));
        drop((for_key, for_place));
        assert_eq!((block_on(first), block_on(second)), (Ok(()), Ok(())));
        assert_eq!(block_on(busy), Ok(()));
        pool.join();
    });
}

#[test]
fn a_slot_in_the_queue_wakes_a_plain_future_beside_a_lane_future() {
    // Found in review: plain and routed futures shared one room, and a
    // slot in the jobs channel woke the lane future, which needed a place
    // on the board, instead of the plain future that could use it.
    with_timeout(LONG, || {
        let pool = pool(1, 1);
        let gate = Gate::new();
        let busy = occupy_worker(&pool, &gate);
        let held_gate = Gate::new();
        let held = held_gate.clone();
        let routed = pool
            .lane(Lane::High)
            .submit(move |_ctx| held.wait())
            .expect("the board's one place");
        let plain = pool.submit(|_ctx| ()).expect("the queue's one slot");
        let (_lane_counter, lane_waker, _lane_woken) = counting();
        let mut lane = pool.lane(Lane::High).submit_async(|_ctx| ());
        assert!(poll_once(&mut lane, &lane_waker).is_pending());
        let (_counter, waker, woken) = counting();
        let mut plain_future = pool.submit_async(|_ctx| 5);
        assert!(poll_once(&mut plain_future, &waker).is_pending());
        // The worker receives the plain job, puts it on the board and
        // takes the High one: the jobs channel's slot is free.
        gate.open();
        woken
            .recv_timeout(LONG)
            .expect("the plain future woken for the slot");
        let Poll::Ready(Ok(handle)) = poll_once(&mut plain_future, &waker) else {
            panic!("the plain future did not complete once woken")
        };
        held_gate.open();
        assert_eq!(block_on(handle), Ok(5));
        drop((lane, plain_future));
        assert_eq!((block_on(routed), block_on(plain)), (Ok(()), Ok(())));
        assert_eq!(block_on(busy), Ok(()));
        pool.join();
    });
}

#[test]
fn a_keyed_future_on_a_rendezvous_pool_waits_for_its_key_without_spinning() {
    // Found in review: on a queue of capacity 0 a waiting future is polled
    // again at once while a worker is idle, which lets a plain job
    // through; a keyed job whose key is full was polled 100,000 times a
    // fifth of a second.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .queue_capacity(0)
            .key_queue_limit(1)
            .thread_name("rv-spin")
            .build()
            .expect("valid pool");
        let gate = Gate::new();
        let (started_tx, started) = crossbeam_channel::bounded(1);
        let held = gate.clone();
        let key = pool.keyed("k");
        let first = key
            .submit(move |_ctx| {
                started_tx.send(()).expect("the test waits");
                held.wait();
            })
            .expect("an idle worker");
        started
            .recv_timeout(LONG)
            .expect("the key's first job started");
        let second = key.submit(|_ctx| ()).expect("room behind the first");
        // The other worker is idle, blocked on the queue.
        assert!(wait_until(LONG, || thread_sleeping("rv-spin-0")
            && thread_sleeping("rv-spin-1")));
        let (counter, waker, woken) = counting();
        let mut third = key.submit_async(|_ctx| ());
        assert!(poll_once(&mut third, &waker).is_pending());
        assert_eq!(
            counter.wakes.load(Ordering::SeqCst),
            0,
            "woken again at once while its key was full"
        );
        gate.open();
        woken
            .recv_timeout(LONG)
            .expect("woken when its key had room");
        drop(third);
        assert_eq!((block_on(first), block_on(second)), (Ok(()), Ok(())));
        pool.join();
    });
}
