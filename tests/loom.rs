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
//! and a context cancelled while a child registers with it.
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
        let held = sem.acquire().expect("free");
        let waiter = thread::spawn({
            let sem = sem.clone();
            move || {
                let permit = sem.acquire().expect("granted by the release");
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
        let held = sem.acquire_many(2).expect("free");
        let order = Arc::new(loom::sync::Mutex::new(Vec::new()));
        let large = thread::spawn({
            let (sem, order) = (sem.clone(), Arc::clone(&order));
            move || {
                let permit = sem.acquire_many(2).expect("large");
                order.lock().expect("order").push(2);
                drop(permit);
            }
        });
        let small = thread::spawn({
            let (sem, order) = (sem.clone(), Arc::clone(&order));
            move || {
                let permit = sem.acquire_many(1).expect("small");
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
        let held = sem.acquire().expect("free");
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
        let _held = sem.acquire().expect("one of two");
        let ctx = Context::new();
        let head = thread::spawn({
            let (sem, ctx) = (sem.clone(), ctx.clone());
            move || sem.acquire_ctx(&ctx, 2).map(|permit| permit.count())
        });
        let next = thread::spawn({
            let sem = sem.clone();
            move || sem.acquire().map(|permit| permit.count())
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
