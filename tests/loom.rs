//! loom models of brigade's lock-based protocols, run through the crate's
//! `sync` shim (STYLE.md lesson 13):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test --release --test loom
//! ```
//!
//! Each model explores every interleaving of the shim's mutex, condition
//! variable, atomic, channel and thread operations (bounded by
//! `LOOM_MAX_PREEMPTIONS`, which `.ci/run` sets to three; the largest models
//! pin a lower bound and search one deeper for a bounded time, see
//! `large_pool_model`). The models check the semaphore's hand-off from a
//! release to a blocked acquire, a cancelled waiter leaving the queue (and
//! waking the waiters behind it), a context cancelled while a child registers
//! with it, and — on a real `ThreadPool` of one or two loom threads, built by
//! its `ThreadPoolBuilder` — the crew's submit, cancel, drain and respawn
//! protocol and the `JobHandle` cell: every accepted job runs exactly once or
//! is reported cancelled, and is counted either way. Two more cover the async
//! and inline paths: an async submit waiting for room is always woken, and a
//! join that runs a queued job inline races a cancel's drain without the job
//! being run twice or counted twice. One more races a keep-alive worker leaving
//! against a submit (`crew/elastic.rs`): the job is never stranded. Five
//! cover the dispatcher (`crew/dispatch.rs`): a key's jobs run in order with
//! `join` waiting for one held behind another; routed submits (keyed, and of
//! an uncapped lane) race a cancellation without a job lost or run twice; a
//! routed job wakes a worker on its way to block; and a keyed job a take left
//! in the sorted inbox still runs. The last races a scope's final wait
//! against a job spawning into the scope (`pool/scope.rs`, `Pending`): every
//! job runs before `scope` returns, and the wait is always woken. Two race
//! a worker on its way to park in the jobs channel's `recv` against a
//! cancellation and a shrink, with intake open: each reaches it as a turn
//! or is seen after it counted itself parked (`crew/worker.rs`, `park`).
//! (A model of a cancellation reaching two workers past a full queue
//! cannot run: the context keeps its children in a `HashMap`, whose order
//! differs between executions, and loom needs every execution of a model
//! to repeat; `pool::tests` covers it with real threads.)
#![cfg(loom)]

use std::panic;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use brigade::{
    AcquireError, Cancelled, Context, JobError, JobHandle, PanicPolicy, Semaphore, ShutdownReport,
    ThreadPool,
};
use loom::thread;

/// A release hands its permit to a blocked acquire: no lost wake-up, and
/// the count is whole afterwards.
#[test]
fn semaphore_release_wakes_blocked_acquire() {
    loom::model(|| {
        let sem = Semaphore::new(1).expect("one permit");
        let held = sem.acquire(1).expect("free");
        let waiter = thread::spawn({
            let sem = sem.clone();
            move || {
                let permit = sem.acquire(1).expect("granted by the release");
                assert_eq!(permit.count(), 1);
            }
        });
        drop(held);
        waiter.join().expect("waiter");
        assert_eq!(sem.available(), 1);
        assert_eq!(sem.waiting(), 0);
    });
}

/// Strict FIFO with weights: a large waiter queued first gets its permits
/// before a small one queued after it, even though the small one would fit
/// earlier; everything is returned in the end.
#[test]
fn semaphore_large_head_is_not_starved() {
    loom::model(|| {
        let sem = Semaphore::new(2).expect("two permits");
        let held = sem.acquire(2).expect("free");
        let order = Arc::new(loom::sync::Mutex::new(Vec::new()));
        let large = thread::spawn({
            let (sem, order) = (sem.clone(), Arc::clone(&order));
            move || {
                let permit = sem.acquire(2).expect("large");
                order.lock().expect("order").push(2);
                drop(permit);
            }
        });
        let small = thread::spawn({
            let (sem, order) = (sem.clone(), Arc::clone(&order));
            move || {
                let permit = sem.acquire(1).expect("small");
                order.lock().expect("order").push(1);
                drop(permit);
            }
        });
        drop(held);
        large.join().expect("large");
        small.join().expect("small");
        assert_eq!(sem.available(), 2);
        assert_eq!(order.lock().expect("order").len(), 2);
    });
}

/// A waiter cancelled while a release races to grant it either gets the
/// permit or reports `Cancelled` — and then the permit is free again: none
/// is lost either way.
#[test]
fn semaphore_cancel_races_release() {
    loom::model(|| {
        let sem = Semaphore::new(1).expect("one permit");
        let held = sem.acquire(1).expect("free");
        let ctx = Context::new();
        let waiter = thread::spawn({
            let (sem, ctx) = (sem.clone(), ctx.clone());
            move || sem.acquire_ctx(&ctx, 1).map(|permit| permit.count())
        });
        let canceller = thread::spawn(move || ctx.cancel());
        drop(held);
        let got = waiter.join().expect("waiter");
        canceller.join().expect("canceller");
        match got {
            Ok(1) => {}
            Err(AcquireError::Cancelled(Cancelled::Canceled)) => {}
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(sem.available(), 1);
        assert_eq!(sem.waiting(), 0);
    });
}

/// A cancelled waiter at the head of the queue wakes the smaller waiter
/// behind it when permits are free for that one.
#[test]
fn semaphore_cancelled_head_wakes_the_next() {
    loom::model(|| {
        let sem = Semaphore::new(2).expect("two permits");
        let _held = sem.acquire(1).expect("one of two");
        let ctx = Context::new();
        let head = thread::spawn({
            let (sem, ctx) = (sem.clone(), ctx.clone());
            move || sem.acquire_ctx(&ctx, 2).map(|permit| permit.count())
        });
        let next = thread::spawn({
            let sem = sem.clone();
            move || sem.acquire(1).map(|permit| permit.count())
        });
        ctx.cancel();
        // The head can never get two permits while one is held here, so it
        // must be cancelled; the next one must then get the free permit.
        assert_eq!(
            head.join().expect("head"),
            Err(AcquireError::Cancelled(Cancelled::Canceled))
        );
        assert_eq!(next.join().expect("next"), Ok(1));
        assert_eq!(sem.waiting(), 0);
    });
}

/// A child registering for wake-ups while its parent is cancelled is always
/// woken: whichever runs first, the child ends done, its `done()` receiver
/// disconnected, and the parent keeps no registration.
#[test]
fn context_cancel_races_child_registration() {
    loom::model(|| {
        let parent = Context::new();
        let child = parent.child();
        // `done()` registers the child with its parent (it is created
        // unregistered); the race is that registration against the cancel.
        let registrar = thread::spawn({
            let child = child.clone();
            move || child.done()
        });
        parent.cancel();
        let done = registrar.join().expect("registrar");
        assert!(child.is_done());
        assert_eq!(child.reason(), Some(Cancelled::Canceled));
        assert_eq!(
            done.try_recv(),
            Err(crossbeam_channel::TryRecvError::Disconnected)
        );
        assert_eq!(parent.registered_children(), 0);
    });
}

/// A grandchild registered through an unregistered child is reached by a
/// cancel of the root that races the registration of the whole chain.
#[test]
fn context_cancel_races_chain_registration() {
    loom::model(|| {
        let root = Context::new();
        let grandchild = root.child().child();
        let registrar = thread::spawn({
            let grandchild = grandchild.clone();
            move || grandchild.done()
        });
        root.cancel();
        let done = registrar.join().expect("registrar");
        assert_eq!(
            done.try_recv(),
            Err(crossbeam_channel::TryRecvError::Disconnected)
        );
        assert_eq!(root.registered_children(), 0);
    });
}

/// Runs a pool model: a pool's executions take more steps than loom's
/// default limit of branches allows (starting threads, registering
/// contexts, the stats a shutdown reads), though no thread spins.
fn pool_model(f: impl Fn() + Send + Sync + 'static) {
    pool_builder().check(f);
}

/// A model builder with the branch limit a pool's executions need.
fn pool_builder() -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 10_000;
    builder
}

/// Runs a pool model too large for `.ci/run`'s bound of three
/// preemptions: every execution with at most `complete` preemptions (or
/// `LOOM_MAX_PREEMPTIONS`, if lower), then, for at most `deeper_for`,
/// those with one more. The second search is partial: loom goes depth
/// first, so which deeper executions it reaches in the time is its order,
/// and a slower machine reaches fewer. (Per model and machine, the
/// complete searches' times are in `benches/README.md`, "CI: the loom
/// step's budget".)
fn large_pool_model(complete: usize, deeper_for: Duration, f: impl Fn() + Send + Sync + 'static) {
    let f = Arc::new(f);
    let mut builder = pool_builder();
    let complete = builder
        .preemption_bound
        .map_or(complete, |env| env.min(complete));
    builder.preemption_bound = Some(complete);
    builder.check({
        let f = Arc::clone(&f);
        move || f()
    });
    builder.preemption_bound = Some(complete + 1);
    builder.max_duration = Some(deeper_for);
    // loom looks at the clock only every `checkpoint_interval` executions;
    // its default, 20,000, is minutes of these models on a slow machine.
    builder.checkpoint_interval = 200;
    builder.check(move || f());
}

/// A pool of `workers` loom threads with a queue of `capacity`, as a user
/// builds one. Latencies are not recorded: timing is the only part of a
/// job's path that reads the clock, and it decides nothing.
fn pool(workers: usize, capacity: usize) -> ThreadPool {
    ThreadPool::builder()
        .workers(workers)
        .queue_capacity(capacity)
        .thread_name("model")
        .record_latencies(false)
        .build()
        .expect("a valid pool")
}

/// Shuts `pool` down once the model's other threads are done with it:
/// waits for the workers to leave (a model has no clock, so the timeout
/// never fires) and reports what they did.
fn shut_down(pool: Arc<ThreadPool>) -> ShutdownReport {
    let pool = Arc::into_inner(pool).expect("the model's threads are done");
    pool.shutdown_timeout(Duration::from_secs(3600))
}

/// Per-job run counts, shared with the jobs. loom runs every modelled
/// thread on one OS thread, so plain atomics count without joining the
/// model's state space.
fn counters(n: usize) -> Arc<Vec<AtomicUsize>> {
    Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect())
}

/// A job that counts its runs in `runs[i]` and returns `i`.
fn counted(
    runs: &Arc<Vec<AtomicUsize>>,
    i: usize,
) -> impl FnOnce(&Context) -> usize + Send + use<> {
    let runs = Arc::clone(runs);
    move |_ctx: &Context| {
        runs[i].fetch_add(1, Ordering::SeqCst);
        i
    }
}

/// Checks the accounting a shutdown reports, and each accepted job's
/// handle against its run count: a job ran at most once, `Ok` means it
/// ran, and a job that never ran says `Cancelled`; the report counts as
/// run exactly the jobs that ran.
fn settle(report: ShutdownReport, handles: Vec<(usize, JobHandle<usize>)>, runs: &[AtomicUsize]) {
    assert_eq!(
        report.submitted,
        handles.len() as u64,
        "every accepted job is counted"
    );
    assert_eq!(
        report.ran + report.never_ran,
        report.submitted,
        "every accepted job is counted as run or as never run: {report:?}"
    );
    let mut ran = 0;
    for (i, handle) in handles {
        let runs = runs[i].load(Ordering::SeqCst);
        assert!(runs <= 1, "job {i} ran {runs} times");
        ran += runs as u64;
        match handle.join() {
            Ok(value) => assert_eq!((value, runs), (i, 1), "job {i}"),
            Err(JobError::Cancelled(Cancelled::Canceled)) => {}
            other => panic!("job {i}: unexpected {other:?}"),
        }
    }
    assert_eq!(ran, report.ran, "the report counts the jobs that ran");
}

/// Submits racing the pool's cancellation: each submit is refused (and
/// its closure handed back unrun), or accepted and then either run exactly
/// once or discarded — by the worker on its way out, or by the submitter
/// itself when its send landed after the last drain — and counted.
#[test]
fn submit_races_cancel() {
    pool_model(|| {
        let pool = Arc::new(pool(1, 2));
        let runs = counters(2);
        let submitter = thread::spawn({
            let (pool, runs) = (Arc::clone(&pool), Arc::clone(&runs));
            move || {
                (0..2)
                    .filter_map(|i| pool.submit(counted(&runs, i)).ok().map(|h| (i, h)))
                    .collect::<Vec<_>>()
            }
        });
        pool.context().cancel();
        let handles = submitter.join().expect("submitter");
        let report = shut_down(pool);
        let refused: Vec<usize> = (0..2)
            .filter(|i| handles.iter().all(|(j, _)| j != i))
            .collect();
        for i in refused {
            assert_eq!(runs[i].load(Ordering::SeqCst), 0, "refused job {i} ran");
        }
        settle(report, handles, &runs);
    });
}

/// `JobHandle::cancel` racing the worker that starts and completes the
/// job: the job runs at most once, its closure is dropped exactly once,
/// `join` never hangs, and it reports the value only if the job ran to
/// completion under a context that was not cancelled.
#[test]
fn job_handle_cancel_races_completion() {
    struct Dropped(Arc<AtomicUsize>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    pool_model(|| {
        let pool = pool(1, 1);
        let runs = counters(1);
        let dropped = Arc::new(AtomicUsize::new(0));
        let job = {
            let (job, token) = (counted(&runs, 0), Dropped(Arc::clone(&dropped)));
            move |ctx: &Context| {
                let _token = token;
                job(ctx)
            }
        };
        let handle = Arc::new(pool.submit(job).expect("a live pool accepts"));
        let canceller = thread::spawn({
            let handle = Arc::clone(&handle);
            move || handle.cancel()
        });
        pool.join();
        canceller.join().expect("canceller");
        let handle = Arc::into_inner(handle).expect("the canceller is done");
        let ran = runs[0].load(Ordering::SeqCst);
        match handle.join() {
            Ok(value) => assert_eq!((value, ran), (0, 1)),
            // Cancelled before it started, or while it ran.
            Err(JobError::Cancelled(Cancelled::Canceled)) => assert!(ran <= 1),
            Err(other) => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "the closure is dropped exactly once"
        );
    });
}

/// A shutdown discarding a queued job races the job's handle cancelling
/// it: exactly one of them settles the handle, which wakes, and the job is
/// counted once as never run. The first job holds the only worker until
/// the shutdown cancels it, blocked on its context's `done()` channel.
#[test]
fn job_handle_cancel_races_shutdown_discard() {
    pool_model(|| {
        let pool = pool(1, 2);
        let blocker = pool
            .submit(|ctx: &Context| ctx.done().recv().is_err())
            .expect("a live pool accepts");
        let queued = Arc::new(pool.submit(|_ctx: &Context| 1u8).expect("room for two"));
        let canceller = thread::spawn({
            let queued = Arc::clone(&queued);
            move || queued.cancel()
        });
        let report = pool.shutdown_now();
        canceller.join().expect("canceller");
        let queued = Arc::into_inner(queued).expect("the canceller is done");
        assert_eq!(queued.join(), Err(JobError::Cancelled(Cancelled::Canceled)));
        // The blocker never returns a value: it was discarded unrun, or
        // returned after the cancel, which drops its value.
        assert_eq!(
            blocker.join(),
            Err(JobError::Cancelled(Cancelled::Canceled))
        );
        assert_eq!(report.submitted, 2);
        assert_eq!(report.ran + report.never_ran, 2, "{report:?}");
        assert!(
            report.never_ran >= 1,
            "the queued job never ran: {report:?}"
        );
    });
}

/// Drain shutdown on two workers: closing intake races the workers taking
/// jobs, and a submit blocked on the full queue; every accepted job runs
/// exactly once before the workers leave.
#[test]
fn join_runs_every_accepted_job() {
    pool_model(|| {
        let pool = pool(2, 1);
        let runs = counters(2);
        let handles: Vec<_> = (0..2)
            .map(|i| {
                (
                    i,
                    pool.submit(counted(&runs, i)).expect("a live pool accepts"),
                )
            })
            .collect();
        pool.join();
        for (i, handle) in handles {
            assert_eq!(handle.join(), Ok(i));
            assert_eq!(runs[i].load(Ordering::SeqCst), 1, "job {i}");
        }
    });
}

/// A job panics under `PanicPolicy::Respawn` while the pool is cancelled:
/// the worker's `Sentinel` either starts a replacement (which finds the
/// cancel and drains) or, cancelled, drains the queue itself. Either way
/// the job queued behind the panic is run or discarded and counted — never
/// stranded — and the panic is reported on its handle.
#[test]
fn respawn_races_cancel() {
    quiet_panics();
    pool_model(|| {
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(2)
            .thread_name("model")
            .record_latencies(false)
            .panic_policy(PanicPolicy::Respawn)
            .build()
            .expect("a valid pool");
        let pool = Arc::new(pool);
        let runs = counters(2);
        let panics = pool
            .submit(|_ctx: &Context| -> usize { panic!("{MODEL_PANIC}") })
            .expect("a live pool accepts");
        let after = pool.submit(counted(&runs, 1)).expect("room for two");
        let canceller = thread::spawn({
            let pool = Arc::clone(&pool);
            move || pool.context().cancel()
        });
        canceller.join().expect("canceller");
        let report = shut_down(pool);
        match panics.join() {
            Err(JobError::Panicked(message)) => assert_eq!(message.message(), MODEL_PANIC),
            Err(JobError::Cancelled(Cancelled::Canceled)) => {}
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(report.submitted, 2);
        assert_eq!(
            report.ran + report.never_ran,
            2,
            "nothing stranded: {report:?}"
        );
        settle_one(after, &runs[1]);
    });
}

/// The panic message of `respawn_races_cancel`'s job.
const MODEL_PANIC: &str = "a modelled job panics";

/// Keeps the default panic hook from printing the modelled job's panic
/// in every one of the model's executions; other panics still print.
fn quiet_panics() {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let message = info.payload().downcast_ref::<String>().map(String::as_str);
        if message != Some(MODEL_PANIC) {
            default(info);
        }
    }));
}

/// One job's handle against its run count.
fn settle_one(handle: JobHandle<usize>, runs: &AtomicUsize) {
    let runs = runs.load(Ordering::SeqCst);
    match handle.join() {
        Ok(_) => assert_eq!(runs, 1),
        Err(JobError::Cancelled(Cancelled::Canceled)) => assert!(runs <= 1),
        other => panic!("unexpected {other:?}"),
    }
}

/// Wakes a parked loom thread: the waker of a hand-rolled `block_on`.
struct Unpark(thread::Thread);

impl std::task::Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// An async submit that finds the one-slot queue full races the worker
/// freeing the slot: the future is woken (no lost wake-up — a lost one
/// parks the model thread forever, which loom reports), then queues its
/// job, and both jobs run exactly once.
#[test]
fn async_submit_is_woken_when_a_slot_frees() {
    use std::future::Future;
    use std::task::{Context as TaskContext, Poll, Waker};

    pool_model(|| {
        let pool = Arc::new(pool(1, 1));
        let runs = counters(2);
        let first = pool.submit(counted(&runs, 0)).expect("a live pool accepts");
        let waker = Waker::from(Arc::new(Unpark(thread::current())));
        let second = {
            let mut submit = std::pin::pin!(pool.submit_async(counted(&runs, 1)));
            loop {
                match submit.as_mut().poll(&mut TaskContext::from_waker(&waker)) {
                    Poll::Ready(handle) => break handle.expect("a live pool accepts"),
                    Poll::Pending => thread::park(),
                }
            }
        };
        let report = shut_down(pool);
        settle(report, vec![(0, first), (1, second)], &runs);
    });
}

/// A job that joins a job queued behind it runs it inline, racing the
/// pool's cancellation, whose drain may find the inner job's envelope:
/// the inner job runs at most once, and is counted once — as run or as
/// never run, never both.
#[test]
fn inline_join_races_cancel_drain() {
    pool_model(|| {
        let pool = Arc::new(pool(1, 2));
        let runs = counters(2);
        let outer = {
            let (weak, inner_runs) = (Arc::downgrade(&pool), Arc::clone(&runs));
            let count = counted(&runs, 0);
            pool.submit(move |ctx: &Context| {
                count(ctx);
                let pool = weak.upgrade()?;
                let inner = pool.submit(counted(&inner_runs, 1)).ok()?;
                Some(inner.join())
            })
            .expect("a live pool accepts")
        };
        pool.context().cancel();
        let inner = outer.join();
        let report = shut_down(pool);
        let (ran0, ran1) = (
            runs[0].load(Ordering::SeqCst),
            runs[1].load(Ordering::SeqCst),
        );
        assert!(ran0 <= 1 && ran1 <= 1, "a job ran twice: {ran0} {ran1}");
        if let Ok(Some(Ok(value))) = inner {
            assert_eq!((value, ran1), (1, 1), "the inner job said it ran");
        }
        assert_eq!(report.ran, (ran0 + ran1) as u64, "{report:?}");
        assert_eq!(
            report.ran + report.never_ran,
            report.submitted,
            "{report:?}"
        );
    });
}

/// A pool of `workers` loom threads with a keep-alive (floor 0, growing
/// back to `workers`), counting its thread starts in `starts`. Its
/// workers' keep-alive runs out whenever a wait finds nothing to take
/// (see the shim's `select_timeout`).
fn elastic_pool(workers: usize, starts: &Arc<AtomicUsize>) -> Arc<ThreadPool> {
    let starts = Arc::clone(starts);
    let pool = ThreadPool::builder()
        .workers(workers)
        .queue_capacity(2)
        .keep_alive(Duration::from_millis(1))
        .thread_name("model")
        .record_latencies(false)
        .on_thread_start(move |_| {
            starts.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .expect("a valid pool");
    Arc::new(pool)
}

/// Submits job 0 of `runs` to `pool` from a new thread.
fn submit_one(pool: &Arc<ThreadPool>, runs: &Arc<Vec<AtomicUsize>>) -> JobHandle<usize> {
    let (pool, runs) = (Arc::clone(pool), Arc::clone(runs));
    thread::spawn(move || pool.submit(counted(&runs, 0)).expect("a live pool accepts"))
        .join()
        .expect("submitter")
}

/// Drains the pool (`join` returns once its workers are gone, run or
/// not), then checks that the job ran exactly once and its handle says so.
/// A stranded job never ran.
fn job_ran_once(pool: Arc<ThreadPool>, handle: JobHandle<usize>, runs: &[AtomicUsize]) {
    let pool = Arc::into_inner(pool).expect("the model's threads are done");
    let stats = pool.stats();
    pool.join();
    let ran = runs[0].load(Ordering::SeqCst);
    assert_eq!(ran, 1, "the job ran {ran} times; before the join: {stats}");
    assert_eq!(handle.join(), Ok(0));
}

/// A one-worker pool with a keep-alive (floor 0, growing back to one):
/// its worker's keep-alive runs out while a submitter queues a job.
/// Either the submit sees the worker gone and starts another, or the
/// leaving worker sees the job and stays (`Shared::grow_for_job` against
/// `Shared::expire`): the job runs exactly once, the drain shutdown
/// returns, and at most one worker is started besides the first.
#[test]
fn expiry_races_submit() {
    pool_model(|| {
        let starts = Arc::new(AtomicUsize::new(0));
        let pool = elastic_pool(1, &starts);
        let runs = counters(1);
        let handle = submit_one(&pool, &runs);
        job_ran_once(pool, handle, &runs);
        let starts = starts.load(Ordering::SeqCst);
        assert!(starts <= 2, "{starts} workers started for one job");
    });
}

/// Two jobs of one key on two workers, then `join`: the second is held
/// on the board until the first ends, and a worker that finds the channel
/// closed while it is held waits for it (`crew/dispatch.rs`). Both run
/// once, in order; nothing is stranded.
#[test]
fn a_keys_jobs_run_in_order_and_join_waits_for_held_ones() {
    // Two workers, a condition variable and a join make this the largest
    // model: complete at one preemption (3 s), at two it ran past twelve
    // minutes. Named to sort first, so libtest starts it first and the
    // other models run beside it on the second test thread.
    large_pool_model(1, Duration::from_secs(90), || {
        let pool = pool(2, 2);
        let order = Arc::new(AtomicUsize::new(0));
        let keyed: Vec<_> = (0..2)
            .map(|i| {
                let order = Arc::clone(&order);
                pool.keyed(7)
                    .submit(move |_| order.fetch_add(1, Ordering::SeqCst) == i)
                    .expect("a live pool accepts")
            })
            .collect();
        pool.join();
        for handle in keyed {
            assert_eq!(handle.join(), Ok(true), "keyed jobs ran in order");
        }
    });
}

/// A submit along `route` racing the pool's cancellation: refused, or
/// accepted and then run once or discarded from the board, and counted.
fn routed_submit_racing_cancel(route: fn(&ThreadPool) -> brigade::Routed<'_>) {
    // Complete at two preemptions (5 s); at three, minutes each.
    large_pool_model(2, Duration::from_secs(45), move || {
        let pool = Arc::new(pool(1, 1));
        let runs = counters(1);
        let canceller = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || pool.context().cancel())
        };
        let handles: Vec<_> = route(&pool)
            .submit(counted(&runs, 0))
            .ok()
            .map(|handle| (0, handle))
            .into_iter()
            .collect();
        canceller.join().expect("the canceller");
        settle(shut_down(pool), handles, &runs);
    });
}

/// A keyed job goes through the board's sorted inbox.
#[test]
fn routed_submit_races_cancel() {
    routed_submit_racing_cancel(|pool| pool.keyed(1).lane(brigade::Lane::Background));
}

/// An unkeyed job of an uncapped lane goes through the lane's own inbox,
/// which a take does not empty: the cancel's drain must.
#[test]
fn lane_submit_races_cancel() {
    routed_submit_racing_cancel(|pool| pool.lane(brigade::Lane::High));
}

/// Submits a job along each of `routes` to a one-worker pool and waits
/// for them all to run without closing intake: a job stranded on the
/// board parks both model threads forever, which loom reports.
fn all_run_without_a_join(routes: &[fn(&ThreadPool) -> brigade::Routed<'_>]) {
    let pool = pool(1, 4);
    let ran = Arc::new(AtomicUsize::new(0));
    let waiter = thread::current();
    for route in routes {
        let ran = Arc::clone(&ran);
        let waiter = waiter.clone();
        route(&pool)
            .execute(move || {
                ran.fetch_add(1, Ordering::SeqCst);
                waiter.unpark();
            })
            .expect("a live pool accepts");
    }
    while ran.load(Ordering::SeqCst) < routes.len() {
        thread::park();
    }
    pool.join();
}

/// A routed job submitted while the one worker may be on its way to
/// block: the submit sends a turn only if it sees the worker counted as
/// blocked, and the worker looks at the board once more after counting
/// itself (`Board::blocks`, `Board::wants_turn`).
#[test]
fn routed_job_wakes_a_blocking_worker() {
    pool_model(|| all_run_without_a_join(&[|pool| pool.lane(brigade::Lane::High)]));
}

/// Two keyed jobs of different keys: a take brings on from the sorted
/// inbox only the first, and leaves the second there
/// (`Board::sort_in_for_take`). The worker must still find it, whether
/// it is pushed before or after the take, or the worker blocks.
#[test]
fn a_keyed_job_left_in_the_inbox_runs() {
    pool_model(|| all_run_without_a_join(&[|pool| pool.keyed(0), |pool| pool.keyed(1)]));
}

/// A scope whose one job spawns two more while the final wait begins.
/// The body's spawn counts in two (a batch, under loom) and keeps one
/// credit; the job's first spawn takes it, and its second counts in
/// again, racing the wait's hand-back of credits (`Pending` in
/// `pool/scope.rs`). Every job runs once before `scope` returns, and the
/// wait is always woken.
#[test]
fn a_scope_wait_races_a_job_that_spawns() {
    pool_model(|| {
        let pool = pool(1, 4);
        let runs = counters(3);
        pool.scope(|s| {
            let runs = &runs;
            s.spawn(move |_| {
                runs[0].fetch_add(1, Ordering::SeqCst);
                for i in 1..3 {
                    s.spawn(move |_| runs[i].fetch_add(1, Ordering::SeqCst));
                }
            });
        });
        for (i, runs) in runs.iter().enumerate() {
            assert_eq!(runs.load(Ordering::SeqCst), 1, "job {i}");
        }
        pool.join();
    });
}

/// Workers that have exited, counted by a pool's exit hook.
#[derive(Default)]
struct Exits {
    count: loom::sync::Mutex<usize>,
    changed: loom::sync::Condvar,
}

impl Exits {
    /// Waits until `n` workers have exited, with the pool's intake still
    /// open: only a wake-up sent to a parked worker can end it.
    fn wait_for(&self, n: usize) {
        let mut count = self.count.lock().expect("exits");
        while *count < n {
            count = self.changed.wait(count).expect("exits");
        }
    }
}

/// A pool of `workers` loom threads with a queue of one, whose exits are
/// counted.
fn counted_exits(workers: usize) -> (Arc<ThreadPool>, Arc<Exits>) {
    let exits = Arc::new(Exits::default());
    let pool = ThreadPool::builder()
        .workers(workers)
        .queue_capacity(1)
        .thread_name("model")
        .record_latencies(false)
        .on_thread_exit({
            let exits = Arc::clone(&exits);
            move |_| {
                *exits.count.lock().expect("exits") += 1;
                exits.changed.notify_all();
            }
        })
        .build()
        .expect("a valid pool");
    (Arc::new(pool), exits)
}

/// A cancellation racing the worker on its way to park in `recv`: the
/// worker either sees the pool cancelled after counting itself parked,
/// or is sent a turn (`Shared::wake_parked`). Intake stays open until it
/// has left, so the channel's disconnect cannot stand in for the turn.
#[test]
fn a_cancellation_reaches_a_parking_worker() {
    pool_model(|| {
        let (pool, exits) = counted_exits(1);
        let canceller = thread::spawn({
            let pool = Arc::clone(&pool);
            move || pool.context().cancel()
        });
        exits.wait_for(1);
        canceller.join().expect("canceller");
        shut_down(pool);
    });
}

/// A shrink racing a worker on its way to park: the retire token reaches
/// it as a turn, or it sees the token after counting itself parked.
#[test]
fn a_shrink_reaches_a_parking_worker() {
    large_pool_model(2, Duration::from_secs(20), || {
        let (pool, exits) = counted_exits(2);
        let shrinker = thread::spawn({
            let pool = Arc::clone(&pool);
            move || pool.set_workers(1).expect("a valid count")
        });
        exits.wait_for(1);
        shrinker.join().expect("shrinker");
        shut_down(pool);
    });
}
