//! loom models of brigade's lock-based protocols, run through the crate's
//! `sync` shim (STYLE.md lesson 13):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test --release --test loom
//! ```
//!
//! Each model explores every interleaving of the shim's mutex, condition
//! variable and atomic operations (bounded by `LOOM_MAX_PREEMPTIONS`,
//! which `.ci/run` sets to keep the run to a few minutes). The models
//! check the semaphore's hand-off from a release to a blocked acquire, a
//! cancelled waiter leaving the queue (and waking the waiters behind it),
//! a context cancelled while a child registers with it, `JobHandle::cancel`
//! racing a job's completion, and the runtime's shutdown accounting.
#![cfg(loom)]

use std::sync::Arc;

use brigade::{AcquireError, Cancelled, Context, Semaphore};
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

/// `JobHandle::cancel` racing the worker that starts and completes the
/// job: the job runs at most once, its closure is dropped exactly once,
/// `join` never hangs, and it reports the value only if the job ran to
/// completion under a context that was not cancelled.
#[test]
fn job_handle_cancel_races_completion() {
    use loom::sync::atomic::{AtomicUsize, Ordering};

    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    loom::model(|| {
        let ran = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let closure = {
            let (ran, token) = (Arc::clone(&ran), Counted(Arc::clone(&dropped)));
            move |_ctx: &Context| {
                let _token = token;
                ran.fetch_add(1, Ordering::SeqCst);
                7
            }
        };
        let (job, handle) = brigade::model::job(closure);
        let handle = Arc::new(handle);
        let worker = thread::spawn(move || job.run(&Context::new()));
        let canceller = thread::spawn({
            let handle = Arc::clone(&handle);
            move || handle.cancel()
        });
        let started = worker.join().expect("worker");
        canceller.join().expect("canceller");
        let handle = Arc::try_unwrap(handle).expect("both threads are done");
        match handle.join() {
            Ok(value) => {
                assert_eq!(value, 7);
                assert!(started);
            }
            Err(brigade::JobError::Cancelled(Cancelled::Canceled)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
        assert!(ran.load(Ordering::SeqCst) <= 1);
        assert_eq!(ran.load(Ordering::SeqCst), usize::from(started));
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "the closure is dropped exactly once"
        );
    });
}

/// A cancelled pool discarding a queued job races the handle's cancel:
/// exactly one of them settles the handle, which always wakes.
#[test]
fn job_handle_discard_races_cancel() {
    loom::model(|| {
        let (job, handle) = brigade::model::job(|_ctx: &Context| 1u8);
        let handle = Arc::new(handle);
        let pool = thread::spawn(move || job.discard());
        let canceller = thread::spawn({
            let handle = Arc::clone(&handle);
            move || handle.cancel()
        });
        pool.join().expect("pool");
        canceller.join().expect("canceller");
        let handle = Arc::try_unwrap(handle).expect("both threads are done");
        assert_eq!(
            handle.join(),
            Err(brigade::JobError::Cancelled(Cancelled::Canceled))
        );
    });
}

/// The worker runtime's shutdown accounting, as a protocol model. The crew
/// (`src/crew/mod.rs`) queues jobs on a crossbeam channel and starts OS
/// threads, neither of which loom can drive, so this model replays its
/// protocol over a loom mutex-guarded queue and the real `Context`:
///
/// * submit: refuse if cancelled; enqueue; **re-check** cancellation and,
///   if cancelled, drain the queue itself;
/// * cancel: cancel the context; drain;
/// * worker: take a job; discard it if cancelled, else run it.
///
/// Whatever the interleaving, every accepted job is run or discarded
/// exactly once and nothing is left in the queue. Dropping the submitter's
/// re-check makes the model fail: a job enqueued just after the last drain
/// is stranded.
#[test]
fn runtime_shutdown_accounts_for_every_job() {
    use std::collections::VecDeque;

    use loom::sync::Mutex;

    struct Crew {
        ctx: Context,
        queue: Mutex<VecDeque<u32>>,
        ran: Mutex<Vec<u32>>,
        discarded: Mutex<Vec<u32>>,
    }

    impl Crew {
        fn submit(&self, job: u32) -> bool {
            if self.ctx.is_done() {
                return false;
            }
            self.queue.lock().expect("queue").push_back(job);
            if self.ctx.is_done() {
                self.drain();
            }
            true
        }

        fn drain(&self) {
            loop {
                let job = self.queue.lock().expect("queue").pop_front();
                match job {
                    Some(job) => self.discarded.lock().expect("discarded").push(job),
                    None => return,
                }
            }
        }

        fn work_once(&self) {
            let job = self.queue.lock().expect("queue").pop_front();
            if let Some(job) = job {
                if self.ctx.is_done() {
                    self.discarded.lock().expect("discarded").push(job);
                } else {
                    self.ran.lock().expect("ran").push(job);
                }
            }
        }
    }

    loom::model(|| {
        let crew = Arc::new(Crew {
            ctx: Context::new(),
            queue: Mutex::new(VecDeque::new()),
            ran: Mutex::new(Vec::new()),
            discarded: Mutex::new(Vec::new()),
        });
        let submitter = thread::spawn({
            let crew = Arc::clone(&crew);
            move || (1..=2).filter(|&job| crew.submit(job)).collect::<Vec<_>>()
        });
        let worker = thread::spawn({
            let crew = Arc::clone(&crew);
            move || crew.work_once()
        });
        crew.ctx.cancel();
        crew.drain();
        let accepted = submitter.join().expect("submitter");
        worker.join().expect("worker");
        // After shutdown (the cancel and drain above), nothing is stranded.
        assert!(
            crew.queue.lock().expect("queue").is_empty(),
            "a job was stranded in the queue"
        );
        let mut settled: Vec<u32> = crew.ran.lock().expect("ran").clone();
        settled.extend(crew.discarded.lock().expect("discarded").iter().copied());
        settled.sort_unstable();
        assert_eq!(
            settled, accepted,
            "every accepted job is run or discarded exactly once"
        );
    });
}
