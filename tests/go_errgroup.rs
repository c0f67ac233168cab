//! Tests ported from Go's `golang.org/x/sync/errgroup` and rewritten in Rust
//! against brigade's [`ErrGroup`].
//!
//! Source:
//!   - <https://github.com/golang/sync/blob/master/errgroup/errgroup_test.go>
//!   - `TestPanic` from the version at commit 506c70f (it was removed again
//!     with the panic propagation it tested, in 7fad2c9)
//!
//! Each Go test (and each example that checks behaviour) became one Rust
//! test named after it in snake_case, with the URL and the Go name above it.
//! The scenarios are Go's; the code is our own. brigade differs from Go's
//! `errgroup.Group` on purpose in ways that change some scenarios, and each
//! such test says how it was adapted:
//!
//! * `ErrGroup::new(&ctx)` is Go's `WithContext`; there is no zero group, so
//!   Go's `new(errgroup.Group)` becomes a group under
//!   [`Context::background`].
//! * `wait` consumes the group, so Go's "Go, Wait, Go again, Wait again" on
//!   one group becomes a fresh group per batch.
//! * Once the group's context is done, `spawn` and `try_spawn` refuse new
//!   tasks with `SpawnError::Cancelled` (Go still runs them).
//! * `limit` is set once, before any spawn, and `limit(0)` is an error.
//! * A panicking task is reported by `wait` as `GroupError::Panicked`, not
//!   re-panicked.
//!
//! Copyright & License:
//!   - Copyright 2016 The Go Authors. All rights reserved.
//!   - Use of this source code is governed by a BSD-style license that can
//!     be found at <https://github.com/golang/sync/blob/master/LICENSE>.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use brigade::{Cancelled, Context, ErrGroup, GroupError, GroupLimitError, SpawnError};
use crossbeam_channel::{Sender, TryRecvError};

use common::{LONG, wait_until, with_timeout};

/// `wait`'s result for Go's `want` error (`None` is Go's `nil`).
fn want_result<E>(want: Option<E>) -> Result<(), GroupError<E>> {
    want.map_or(Ok(()), |err| Err(GroupError::Failed(err)))
}

/// Spawns a task returning `err`. Once the group is cancelled brigade
/// refuses new tasks (Go runs them anyway); a refusal is only acceptable
/// after an earlier error, which is then the one `wait` reports.
fn go_returning(
    group: &ErrGroup<'static, &'static str>,
    err: Option<&'static str>,
    try_only: bool,
    failed_before: bool,
) {
    let task = move |_ctx: &Context| err.map_or(Ok(()), Err);
    let spawned = if try_only {
        group.try_spawn(task)
    } else {
        group.spawn(task)
    };
    match spawned {
        Ok(()) => {}
        Err(SpawnError::Cancelled(_)) if failed_before => {}
        Err(other) => panic!("spawn refused: {other}"),
    }
}

/// A fake fetch: the made-up host fails, the others succeed.
fn fake_fetch(url: &str) -> Result<(), String> {
    if url.contains("somestupidname") {
        Err(format!("Get {url:?}: no such host"))
    } else {
        Ok(())
    }
}

// https://github.com/golang/sync/blob/master/errgroup/errgroup_test.go
// ExampleGroup_justErrors
//
// Adapted: the fetches are fake (no network in tests); one run where every
// fetch succeeds, one where the made-up host fails.
#[test]
fn example_group_just_errors() {
    // A group used as a WaitGroup with errors: wait is Ok when every task
    // succeeds, and returns the failing fetch's error otherwise.
    with_timeout(LONG, || {
        let good = ["http://www.golang.org/", "http://www.google.com/"];
        let group = ErrGroup::<String>::new(&Context::background());
        for url in good {
            group
                .spawn(move |_ctx| fake_fetch(url))
                .map_err(|e| e.to_string())
                .expect("accepted");
        }
        assert_eq!(group.wait(), Ok(()), "Successfully fetched all URLs.");

        let group = ErrGroup::<String>::new(&Context::background());
        for url in good.into_iter().chain(["http://www.somestupidname.com/"]) {
            // A spawn refused because the bad fetch already failed is fine.
            let _ = group.spawn(move |_ctx| fake_fetch(url));
        }
        assert_eq!(
            group.wait(),
            Err(GroupError::Failed(
                "Get \"http://www.somestupidname.com/\": no such host".to_owned()
            ))
        );
    });
}

/// A fake search: "`kind` result for `query`".
fn fake_search(kind: &str, _ctx: &Context, query: &str) -> Result<String, String> {
    Ok(format!("{kind} result for {query:?}"))
}

/// "Google Search 2.0": the three searches in parallel, each writing its own
/// slot of the results.
fn google(ctx: &Context, query: &str) -> Result<Vec<String>, GroupError<String>> {
    let kinds = ["web", "image", "video"];
    let mut results = vec![String::new(); kinds.len()];
    ErrGroup::<String>::new(ctx).scope(|g| {
        for (kind, slot) in kinds.iter().zip(results.iter_mut()) {
            g.spawn(move |ctx| {
                *slot = fake_search(kind, ctx, query)?;
                Ok(())
            })
            .expect("accepted");
        }
    })?;
    Ok(results)
}

// https://github.com/golang/sync/blob/master/errgroup/errgroup_test.go
// ExampleGroup_parallel
//
// Adapted: the tasks borrow their result slots through `ErrGroup::scope`
// (Go's closures capture the slice).
#[test]
fn example_group_parallel() {
    // Parallel searches fill their own result slots, in order.
    with_timeout(LONG, || {
        let results = google(&Context::background(), "golang").expect("no search fails");
        assert_eq!(
            results,
            [
                "web result for \"golang\"",
                "image result for \"golang\"",
                "video result for \"golang\"",
            ]
        );
    });
}

// https://github.com/golang/sync/blob/master/errgroup/errgroup_test.go
// TestZeroGroup
//
// Adapted: Go calls Wait after every Go on one group and checks the first
// error so far. brigade's wait consumes the group, so each prefix of the
// case runs in a fresh group; limit(1) keeps the tasks one after another, as
// Go's Go-then-Wait does, so "first" means the same thing.
#[test]
fn zero_group() {
    // wait returns the first error returned, or Ok if none failed.
    with_timeout(LONG, || {
        const ERR1: &str = "errgroup_test: 1";
        const ERR2: &str = "errgroup_test: 2";
        let cases: [&[Option<&'static str>]; 5] = [
            &[],
            &[None],
            &[Some(ERR1)],
            &[Some(ERR1), None],
            &[Some(ERR1), None, Some(ERR2)],
        ];
        for errs in cases {
            for end in 0..=errs.len() {
                let prefix = &errs[..end];
                let group = ErrGroup::new(&Context::background())
                    .limit(1)
                    .expect("a valid limit");
                for (i, &err) in prefix.iter().enumerate() {
                    let failed_before = prefix[..i].iter().any(Option::is_some);
                    go_returning(&group, err, false, failed_before);
                }
                let first = prefix.iter().find_map(|err| *err);
                assert_eq!(group.wait(), want_result(first), "for errs {prefix:?}");
            }
        }
    });
}

// https://github.com/golang/sync/blob/master/errgroup/errgroup_test.go
// TestWithContext
#[test]
fn with_context() {
    // wait returns the error if any task failed, and the group's context is
    // done afterwards either way.
    with_timeout(LONG, || {
        const DOOM: &str = "group_test: doomed";
        let cases: [(&[Option<&'static str>], Option<&'static str>); 4] = [
            (&[], None),
            (&[None], None),
            (&[Some(DOOM)], Some(DOOM)),
            (&[Some(DOOM), None], Some(DOOM)),
        ];
        for (errs, want) in cases {
            let group = ErrGroup::new(&Context::background());
            let ctx = group.context().clone();
            for (i, &err) in errs.iter().enumerate() {
                let failed_before = errs[..i].iter().any(Option::is_some);
                go_returning(&group, err, false, failed_before);
            }
            assert_eq!(group.wait(), want_result(want), "for errs {errs:?}");
            // Go: a non-blocking receive on ctx.Done() finds it closed.
            assert_eq!(
                ctx.done().try_recv(),
                Err(TryRecvError::Disconnected),
                "ctx.done() was not closed for errs {errs:?}"
            );
        }
    });
}

/// A task that hands a unit to whoever receives on `ch`, as Go's `fn`
/// sends on an unbuffered channel.
fn send_on(ch: Sender<()>) -> impl FnOnce(&Context) -> Result<(), &'static str> + Send + 'static {
    move |_ctx| ch.send_timeout((), LONG).map_err(|_| "nobody received")
}

/// Go's `TryGo` in a retry loop: slots come back a moment after their task
/// ends, and Go's test only retries after Wait.
fn try_spawn_eventually<F>(group: &ErrGroup<'static, &'static str>, task: F)
where
    F: FnOnce(&Context) -> Result<(), &'static str> + Send + 'static,
{
    let mut task = Some(task);
    let accepted = wait_until(LONG, || {
        match group.try_spawn(task.take().expect("in hand")) {
            Ok(()) => true,
            Err(SpawnError::Full(back)) => {
                task = Some(back);
                false
            }
            Err(other) => panic!("try_spawn refused: {other}"),
        }
    });
    assert!(accepted, "no slot came back");
}

// https://github.com/golang/sync/blob/master/errgroup/errgroup_test.go
// TestTryGo
//
// Adapted: Go reuses one group across Wait calls and changes its limit
// with SetLimit. brigade sets the limit once and wait consumes the group,
// so the "after all goroutines" step retries until a slot is back instead of
// waiting first, the limit switch uses a new group, and SetLimit(0) ("block
// all calls") is refused by limit(0).
#[test]
fn try_go() {
    // try_spawn succeeds up to the limit, fails with Full past it, and
    // succeeds again once slots are free.
    with_timeout(LONG, || {
        const N: usize = 42;
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        let group = ErrGroup::new(&Context::background())
            .limit(N)
            .expect("a valid limit");
        for i in 0..N {
            if let Err(err) = group.try_spawn(send_on(tx.clone())) {
                panic!("try_spawn should succeed but failed at call {i}: {err}");
            }
        }
        let err = group
            .try_spawn(send_on(tx.clone()))
            .expect_err("try_spawn is expected to fail at the limit");
        assert!(matches!(err, SpawnError::Full(_)), "{err:?}");
        for _ in 0..N {
            rx.recv_timeout(LONG).expect("a task sends");
        }
        try_spawn_eventually(&group, send_on(tx.clone()));
        rx.recv_timeout(LONG).expect("the task sends");
        assert_eq!(group.wait(), Ok(()));

        // Switch limit: a new group of one.
        let group = ErrGroup::new(&Context::background())
            .limit(1)
            .expect("a valid limit");
        group
            .try_spawn(send_on(tx.clone()))
            .map_err(|e| e.to_string())
            .expect("try_spawn should succeed");
        let err = group
            .try_spawn(send_on(tx.clone()))
            .expect_err("try_spawn should fail");
        assert_eq!(err.to_string(), "the group is at its limit");
        rx.recv_timeout(LONG).expect("the task sends");
        assert_eq!(group.wait(), Ok(()));

        // Block all calls: a limit of zero is refused outright.
        let zero = ErrGroup::<&'static str>::new(&Context::background())
            .limit(0)
            .unwrap_err();
        assert_eq!(zero, GroupLimitError::Zero);
        assert_eq!(
            zero.to_string(),
            "an ErrGroup limit must be at least 1, got 0"
        );
    });
}

// https://github.com/golang/sync/blob/master/errgroup/errgroup_test.go
// TestGoLimit
#[test]
fn go_limit() {
    // Under limit(10), 1,025 tasks never see more than 10 of them active.
    with_timeout(LONG, || {
        const LIMIT: usize = 10;
        let group = ErrGroup::<String>::new(&Context::background())
            .limit(LIMIT)
            .expect("a valid limit");
        let active = Arc::new(AtomicUsize::new(0));
        for _ in 0..=(1 << 10) {
            let active = Arc::clone(&active);
            group
                .spawn(move |_ctx| {
                    let n = active.fetch_add(1, Ordering::SeqCst) + 1;
                    if n > LIMIT {
                        return Err(format!("saw {n} active tasks; want ≤ {LIMIT}"));
                    }
                    // Give other tasks a chance to increment `active`.
                    thread::yield_now();
                    active.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                })
                .map_err(|e| e.to_string())
                .expect("accepted");
        }
        assert_eq!(group.wait(), Ok(()));
    });
}

// https://github.com/golang/sync/blob/master/errgroup/errgroup_test.go
// TestCancelCause
//
// Adapted: brigade's contexts carry no cause, only a reason. The group's
// context reads `Canceled` whether a task failed or wait returned; the
// error Go reads back with context.Cause is the one wait returns.
#[test]
fn cancel_cause() {
    // After wait, the group's context is cancelled and wait carries the
    // task's error (the cause).
    with_timeout(LONG, || {
        const DOOM: &str = "group_test: doomed";
        let cases: [(&[Option<&'static str>], Option<&'static str>); 4] = [
            (&[], None),
            (&[None], None),
            (&[Some(DOOM)], Some(DOOM)),
            (&[Some(DOOM), None], Some(DOOM)),
        ];
        for (errs, want) in cases {
            let group = ErrGroup::new(&Context::background());
            let ctx = group.context().clone();
            for (i, &err) in errs.iter().enumerate() {
                let failed_before = errs[..i].iter().any(Option::is_some);
                go_returning(&group, err, true, failed_before);
            }
            let result = group.wait();
            assert_eq!(result, want_result(want), "for errs {errs:?}");
            if let Err(err) = result {
                assert_eq!(err.to_string(), DOOM);
            }
            assert_eq!(ctx.reason(), Some(Cancelled::Canceled), "for errs {errs:?}");
        }
    });
}

/// A panic payload that is an error value, as Go's `errors.New("")`.
#[derive(Debug)]
struct PanicValue;

// https://github.com/golang/sync/blob/506c70f97318aa991ec5a898685660c880c166ca/errgroup/errgroup_test.go
// TestPanic (removed upstream in 7fad2c9 along with the panic propagation)
//
// Adapted: that Go version re-panicked in Wait with the value and a stack
// trace. brigade never unwinds into wait: it returns GroupError::Panicked
// with the payload's message (string payloads as written, others as a
// fixed placeholder) and the panic's location, but carries no stack.
#[test]
fn panic() {
    // A task's panic, whatever its payload, comes back from wait as
    // Panicked without unwinding through wait.
    with_timeout(LONG, || {
        let payloads: [(&str, fn(), &str); 3] = [
            (
                "error",
                || std::panic::panic_any(PanicValue),
                "<non-string panic payload>",
            ),
            (
                "any",
                || std::panic::panic_any(1_i32),
                "<non-string panic payload>",
            ),
            ("string", || panic!("task {} failed", 7), "task 7 failed"),
        ];
        for (name, raise, message) in payloads {
            let group = ErrGroup::<&'static str>::new(&Context::background());
            let ctx = group.context().clone();
            group
                .spawn(move |_ctx| {
                    raise();
                    Ok(())
                })
                .map_err(|e| e.to_string())
                .expect("accepted");
            let err = group.wait().expect_err("the task panicked");
            assert_eq!(err, GroupError::Panicked(message.into()), "{name}");
            let shown = err.to_string();
            let at = format!("a task panicked: {message} (at {}:", file!());
            assert!(shown.starts_with(&at), "{name}: {shown}");
            assert!(ctx.is_done(), "{name}: the group was not cancelled");
        }
    });
}
