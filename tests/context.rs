//! `Context`: the cancel tree, deadlines, `done()` in a user `select!`,
//! `sleep`, `check`/`reason`, and the parent's child table under churn.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use brigade::{Cancelled, Context};
use crossbeam_channel::{RecvTimeoutError, TryRecvError, select};

use common::{LONG, with_timeout};

/// Waits on `ctx.done()` inside a user `select!` next to a channel nobody
/// sends on; returns how long it took, or panics after `limit`.
fn select_done(ctx: &Context, limit: Duration) -> Duration {
    let (_tx, jobs) = crossbeam_channel::unbounded::<u32>();
    let start = Instant::now();
    select! {
        recv(jobs) -> _ => panic!("nobody sends on this channel"),
        recv(ctx.done()) -> msg => assert_eq!(msg, Err(crossbeam_channel::RecvError)),
        default(limit) => panic!("done() did not fire within {limit:?}"),
    }
    start.elapsed()
}

#[test]
fn parent_cancel_reaches_grandchildren() {
    // Cancelling a root cancels every descendant, registered or not.
    let root = Context::new();
    let child = root.child();
    let polled = child.child();
    let blocked = child.with_timeout(Duration::from_secs(3600));
    let blocked_done = blocked.done();

    root.cancel();

    assert_eq!(polled.reason(), Some(Cancelled::Canceled));
    assert_eq!(blocked.reason(), Some(Cancelled::Canceled));
    assert_eq!(child.check(), Err(Cancelled::Canceled));
    assert_eq!(
        blocked_done.recv_timeout(LONG),
        Err(RecvTimeoutError::Disconnected)
    );
    assert_eq!(
        polled.done().recv_timeout(LONG),
        Err(RecvTimeoutError::Disconnected)
    );
}

#[test]
fn child_cancel_leaves_parent_live() {
    // Cancelling a child affects neither its parent nor its siblings.
    let root = Context::new();
    let a = root.child();
    let b = root.child();
    let _a_done = a.done();
    a.cancel();
    assert_eq!(a.reason(), Some(Cancelled::Canceled));
    assert!(!root.is_done());
    assert!(!b.is_done());
}

#[test]
fn background_is_never_done() {
    // The background context ignores cancel, has no deadline, and its done()
    // never fires; its children are still cancellable on their own.
    let bg = Context::background();
    bg.cancel();
    assert!(!bg.is_done());
    assert_eq!(bg.reason(), None);
    assert_eq!(bg.check(), Ok(()));
    assert_eq!(bg.deadline(), None);
    assert_eq!(bg.remaining(), None);
    assert_eq!(
        bg.done().recv_timeout(Duration::from_millis(20)),
        Err(RecvTimeoutError::Timeout)
    );
    assert!(bg.same_context(&Context::background()));

    let child = bg.child();
    child.cancel();
    assert_eq!(child.reason(), Some(Cancelled::Canceled));
    assert!(!Context::background().is_done());
}

#[test]
fn child_deadline_never_later_than_parent() {
    // A child's deadline is the earlier of its own and its parent's, for
    // with_timeout and with_deadline, in both directions.
    let parent = Context::new().with_timeout(Duration::from_secs(60));
    let parent_deadline = parent.deadline().expect("parent has a deadline");

    let later = parent.with_timeout(Duration::from_secs(3600));
    assert_eq!(later.deadline(), Some(parent_deadline));
    let later = parent.with_deadline(parent_deadline + Duration::from_secs(1));
    assert_eq!(later.deadline(), Some(parent_deadline));
    assert_eq!(parent.child().deadline(), Some(parent_deadline));

    let earlier_at = parent_deadline - Duration::from_secs(30);
    let earlier = parent.with_deadline(earlier_at);
    assert_eq!(earlier.deadline(), Some(earlier_at));
    let before = Instant::now();
    let earlier = parent.with_timeout(Duration::from_secs(1));
    let deadline = earlier.deadline().expect("own deadline");
    assert!(deadline >= before + Duration::from_secs(1));
    assert!(deadline < parent_deadline);

    // A grandchild inherits through a child without a deadline of its own.
    assert_eq!(
        earlier
            .child()
            .with_timeout(Duration::from_secs(3600))
            .deadline(),
        Some(deadline)
    );
    // Without a parent deadline the child's own is kept.
    let at = Instant::now() + Duration::from_secs(5);
    assert_eq!(Context::new().with_deadline(at).deadline(), Some(at));
}

#[test]
fn unrepresentable_timeout_means_no_deadline() {
    // A timeout too large for Instant gives no deadline of its own.
    let ctx = Context::new().with_timeout(Duration::MAX);
    assert_eq!(ctx.deadline(), None);
    assert!(!ctx.is_done());
}

#[test]
fn done_fires_on_deadline_in_select() {
    // done() disconnects when the deadline passes, inside a user select!.
    with_timeout(LONG, || {
        let ctx = Context::new().with_timeout(Duration::from_millis(50));
        let deadline = ctx.deadline().expect("has a deadline");
        select_done(&ctx, LONG);
        let now = Instant::now();
        assert!(now >= deadline, "fired {:?} early", deadline - now);
        assert_eq!(ctx.reason(), Some(Cancelled::DeadlineExceeded));
    });
}

#[test]
fn done_fires_on_inherited_deadline() {
    // A child without its own deadline wakes when its parent's deadline
    // passes.
    with_timeout(LONG, || {
        let parent = Context::new().with_timeout(Duration::from_millis(50));
        let child = parent.child();
        select_done(&child, LONG);
        assert_eq!(child.reason(), Some(Cancelled::DeadlineExceeded));
        assert_eq!(parent.reason(), Some(Cancelled::DeadlineExceeded));
    });
}

#[test]
fn done_fires_on_deadline_of_background_child() {
    // Go's WithTimeout(Background(), d): a deadline under the background
    // context fires done() too.
    with_timeout(LONG, || {
        let ctx = Context::background().with_timeout(Duration::from_millis(50));
        select_done(&ctx, Duration::from_secs(5));
        assert_eq!(ctx.reason(), Some(Cancelled::DeadlineExceeded));
    });
}

#[test]
fn done_fires_on_cancel() {
    // done() disconnects when another thread cancels the context.
    with_timeout(LONG, || {
        let ctx = Context::new();
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(0);
        let canceller = {
            let ctx = ctx.clone();
            thread::spawn(move || {
                ready_rx.recv_timeout(LONG).expect("the waiter is ready");
                ctx.cancel();
            })
        };
        let done = ctx.done();
        ready_tx.send(()).expect("the canceller waits");
        select! {
            recv(done) -> msg => assert!(msg.is_err()),
            default(LONG) => panic!("done() did not fire on cancel"),
        }
        canceller.join().expect("the canceller finished");
        assert_eq!(ctx.reason(), Some(Cancelled::Canceled));
        // A done() taken after the cancel is disconnected already.
        assert_eq!(ctx.done().try_recv(), Err(TryRecvError::Disconnected));
    });
}

#[test]
fn sleep_wakes_early_on_cancel() {
    // sleep returns Err(Canceled) well before its full duration when another
    // thread cancels the context.
    with_timeout(LONG, || {
        let ctx = Context::new();
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(0);
        let sleeper = {
            let ctx = ctx.clone();
            thread::spawn(move || {
                ready_tx.send(()).expect("the test waits for us");
                let start = Instant::now();
                let result = ctx.sleep(Duration::from_secs(20));
                (result, start.elapsed())
            })
        };
        ready_rx.recv_timeout(LONG).expect("the sleeper started");
        ctx.cancel();
        let (result, slept) = sleeper.join().expect("the sleeper returned");
        assert_eq!(result, Err(Cancelled::Canceled));
        assert!(slept < Duration::from_secs(10), "slept {slept:?}");
    });
}

#[test]
fn sleep_runs_full_duration_when_live() {
    // sleep returns Ok after its duration when nothing cancels the context.
    let ctx = Context::new();
    let start = Instant::now();
    assert_eq!(ctx.sleep(Duration::from_millis(20)), Ok(()));
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert!(!ctx.is_done());
}

#[test]
fn sleep_wakes_on_deadline() {
    // sleep returns Err(DeadlineExceeded) at the deadline, not after the
    // full sleep.
    with_timeout(LONG, || {
        let ctx = Context::new().with_timeout(Duration::from_millis(30));
        let start = Instant::now();
        assert_eq!(
            ctx.sleep(Duration::from_secs(20)),
            Err(Cancelled::DeadlineExceeded)
        );
        assert!(start.elapsed() < Duration::from_secs(10));
    });
}

#[test]
fn sleep_on_done_context_returns_at_once() {
    // sleep on a context that is already done returns its reason at once.
    let ctx = Context::new();
    ctx.cancel();
    let start = Instant::now();
    assert_eq!(ctx.sleep(Duration::from_secs(20)), Err(Cancelled::Canceled));
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn check_and_reason_values() {
    // check/reason/is_done agree: Ok/None while live, the reason once done;
    // the reasons display as Go's errors do.
    let live = Context::new();
    assert!(!live.is_done());
    assert_eq!(live.check(), Ok(()));
    assert_eq!(live.reason(), None);
    assert_eq!(live.deadline(), None);

    let cancelled = Context::new();
    cancelled.cancel();
    assert!(cancelled.is_done());
    assert_eq!(cancelled.check(), Err(Cancelled::Canceled));
    assert_eq!(cancelled.reason(), Some(Cancelled::Canceled));

    let expired = Context::new().with_deadline(Instant::now() - Duration::from_millis(1));
    assert!(expired.is_done());
    assert_eq!(expired.check(), Err(Cancelled::DeadlineExceeded));
    assert_eq!(expired.reason(), Some(Cancelled::DeadlineExceeded));
    assert_eq!(expired.remaining(), Some(Duration::ZERO));

    assert_eq!(Cancelled::Canceled.to_string(), "context canceled");
    assert_eq!(
        Cancelled::DeadlineExceeded.to_string(),
        "context deadline exceeded"
    );
}

#[test]
fn zero_timeout_is_immediately_done() {
    // with_timeout(ZERO) is done at once with DeadlineExceeded, and its
    // done() is already disconnected.
    let ctx = Context::new().with_timeout(Duration::ZERO);
    assert!(ctx.is_done());
    assert_eq!(ctx.reason(), Some(Cancelled::DeadlineExceeded));
    assert_eq!(ctx.done().try_recv(), Err(TryRecvError::Disconnected));

    // The same when done() is the first thing asked.
    let ctx = Context::new().with_timeout(Duration::ZERO);
    assert_eq!(ctx.done().try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(ctx.reason(), Some(Cancelled::DeadlineExceeded));
}

#[test]
fn zero_timeout_under_background_has_done_disconnected() {
    // with_timeout(ZERO) under the background context: done(), asked first,
    // is already disconnected.
    with_timeout(LONG, || {
        let ctx = Context::background().with_timeout(Duration::ZERO);
        assert_eq!(
            ctx.done().recv_timeout(Duration::from_secs(2)),
            Err(RecvTimeoutError::Disconnected)
        );
        assert_eq!(ctx.reason(), Some(Cancelled::DeadlineExceeded));
    });
}

#[test]
fn cancel_is_idempotent_and_keeps_first_reason() {
    // A second cancel changes nothing, and a later deadline or cancel never
    // replaces the first reason.
    let ctx = Context::new();
    ctx.cancel();
    ctx.cancel();
    assert_eq!(ctx.reason(), Some(Cancelled::Canceled));

    let expired = Context::new().with_timeout(Duration::ZERO);
    assert_eq!(expired.reason(), Some(Cancelled::DeadlineExceeded));
    expired.cancel();
    assert_eq!(expired.reason(), Some(Cancelled::DeadlineExceeded));

    let cancelled_first = Context::new().with_timeout(Duration::from_millis(20));
    cancelled_first.cancel();
    let deadline = cancelled_first.deadline().expect("has a deadline");
    assert!(common::wait_until(LONG, || Instant::now() > deadline));
    assert_eq!(cancelled_first.reason(), Some(Cancelled::Canceled));

    // Cancelling a parent after its child was cancelled keeps the child's.
    let parent = Context::new();
    let child = parent.with_timeout(Duration::ZERO);
    assert_eq!(child.reason(), Some(Cancelled::DeadlineExceeded));
    parent.cancel();
    assert_eq!(child.reason(), Some(Cancelled::DeadlineExceeded));
}

#[test]
fn clones_share_one_context() {
    // Cancelling a clone cancels the original; dropping a context does not
    // cancel it.
    let ctx = Context::new();
    let clone = ctx.clone();
    assert!(ctx.same_context(&clone));
    assert!(!ctx.same_context(&Context::new()));
    let child = ctx.child();
    drop(ctx);
    assert!(!clone.is_done());
    assert!(!child.is_done());
    clone.cancel();
    assert_eq!(child.reason(), Some(Cancelled::Canceled));
}
