//! `Pipeline`: close propagation, cancellation, fail-fast and collected
//! errors, panics, ordered output and its window, build errors, and drops.
//!
//! Every stage name is unique to its test, so `threads_named` can prove that
//! `run` left none of its `{name}-{i}` worker threads behind.

mod common;

use std::collections::BTreeSet;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, Instant};

use brigade::{
    BuildError, Cancelled, Context, MAX_QUEUE_CAPACITY, Pipeline, PipelineBuildError,
    PipelineError, PipelineOutput, SizingError, StageError, StageFailure,
};
use parking_lot::Mutex;

use common::{DropCounter, Gate, LONG, thread_sleeping, threads_named, wait_until, with_timeout};

/// How long a run may take to stop once cancelled: far more than a loaded
/// machine needs, far less than the `LONG` its stages would otherwise wait.
const PROMPT: Duration = Duration::from_secs(5);

/// The error the tests' stages fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Malformed(u64);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "item {} is malformed", self.0)
    }
}

/// What `run` returns in these tests.
type RunResult<T> = Result<PipelineOutput<T, Malformed>, PipelineError<Malformed>>;

/// A stage function that passes its item on unchanged.
fn pass(_ctx: &Context, n: u64) -> Result<u64, Malformed> {
    Ok(n)
}

/// `inputs`, counting in `pulled` every item the pipeline takes from it.
fn counted<I: Iterator>(inputs: I, pulled: &Arc<AtomicUsize>) -> impl Iterator<Item = I::Item> {
    let pulled = Arc::clone(pulled);
    inputs.inspect(move |_| {
        pulled.fetch_add(1, SeqCst);
    })
}

/// Asserts that no thread named after any of `prefixes` is alive. `run`
/// joins its stages; the wait only lets `/proc` catch up with the joins.
fn assert_no_threads(prefixes: &[&str]) {
    for prefix in prefixes {
        assert!(
            wait_until(LONG, || threads_named(prefix) == 0),
            "{} thread(s) named {prefix}-… outlived run",
            threads_named(prefix)
        );
    }
}

/// The stage failure in `result`, or a panic naming what came instead.
fn stage_failure<T: fmt::Debug>(result: RunResult<T>) -> (StageFailure<Malformed>, String) {
    match result {
        Err(PipelineError::Stage(failure)) => {
            let text = PipelineError::Stage(failure.clone()).to_string();
            (failure, text)
        }
        other => panic!("expected a stage failure, got {other:?}"),
    }
}

/// SplitMix64's output function: a well-mixed `u64` for each `u64`.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A pause of 0–300 µs, the same for `(seed, stage, item)` on every run, so
/// items overtake each other in a reproducible mix. It only shuffles
/// completion order; no assertion depends on how long it lasts.
fn jitter(ctx: &Context, seed: u64, stage: u64, item: u64) {
    let micros = splitmix64(seed ^ splitmix64((stage << 32) ^ item)) % 300;
    ctx.sleep(Duration::from_micros(micros))
        .expect("nothing cancels these runs");
}

#[test]
fn close_propagates_through_three_stages() {
    // The end of the inputs closes each stage in turn: run returns with every output exactly once, and each stage's counters are final.
    with_timeout(LONG, || {
        let ran_on: Arc<[Mutex<BTreeSet<String>>; 3]> = Arc::default();
        let record = |stage: usize| {
            let ran_on = Arc::clone(&ran_on);
            move || {
                let name = thread::current().name().unwrap_or("<unnamed>").to_owned();
                ran_on[stage].lock().insert(name);
            }
        };
        let (r0, r1, r2) = (record(0), record(1), record(2));
        let ctx = Context::new();
        let out = Pipeline::<u64, u64, Malformed>::new(&ctx)
            .stage("cp1", 3, move |_ctx: &Context, n: u64| {
                r0();
                Ok(n * 10)
            })
            .buffer(1)
            .stage("cp2", 2, move |_ctx: &Context, n: u64| {
                r1();
                Ok(n + 1)
            })
            .buffer(2)
            .stage("cp3", 1, move |_ctx: &Context, n: u64| {
                r2();
                Ok(n)
            })
            .buffer(0)
            .build()
            .expect("valid pipeline")
            .run(0..1000)
            .expect("nothing fails");

        let mut outputs = out.outputs;
        outputs.sort_unstable();
        assert_eq!(outputs, (0..1000).map(|n| n * 10 + 1).collect::<Vec<u64>>());
        assert!(out.failures.is_empty(), "{:?}", out.failures);

        let names: Vec<&str> = out.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["cp1", "cp2", "cp3"]);
        for (stage, workers) in out.stages.iter().zip([3, 2, 1]) {
            let s = &stage.stats;
            let outcomes = (s.completed, s.failed, s.panicked, s.timed_out, s.cancelled);
            assert_eq!(outcomes, (1000, 0, 0, 0, 0), "{}: {s}", stage.name);
            assert_eq!(
                (s.busy, s.queued, s.respawned),
                (0, 0, 0),
                "{}: {s}",
                stage.name
            );
            // Taken as the stages wind down: a gauge of threads not yet gone.
            assert!(s.workers <= workers, "{}: {s}", stage.name);
        }

        // Each stage ran on its own `{name}-{i}` threads, i < its worker count.
        for (stage, (prefix, workers)) in [("cp1", 3), ("cp2", 2), ("cp3", 1)].iter().enumerate() {
            let allowed: BTreeSet<String> =
                (0..*workers).map(|i| format!("{prefix}-{i}")).collect();
            let seen = ran_on[stage].lock();
            assert!(
                !seen.is_empty() && seen.is_subset(&allowed),
                "{prefix} ran on {seen:?}"
            );
        }
        assert_no_threads(&["cp1", "cp2", "cp3"]);
    });
}

#[test]
fn stage_stats_count_received_items_as_submitted() {
    // Each stage's snapshot keeps the Stats invariant: once the run is over, submitted == completed + failed + cancelled, counting the items the stage received.
    with_timeout(LONG, || {
        let ctx = Context::new();
        let out = Pipeline::<u64, u64, Malformed>::new(&ctx)
            .stage("ss1", 2, pass)
            .stage("ss2", 2, |_ctx: &Context, n: u64| {
                if n % 10 == 0 {
                    Err(Malformed(n))
                } else {
                    Ok(n)
                }
            })
            .stage("ss3", 1, pass)
            .collect_errors()
            .build()
            .expect("valid pipeline")
            .run(0..100)
            .expect("collect_errors runs to the end");
        assert_eq!(out.outputs.len(), 90);
        let counts: Vec<(u64, u64, u64, u64)> = out
            .stages
            .iter()
            .map(|s| {
                (
                    s.stats.submitted,
                    s.stats.completed,
                    s.stats.failed,
                    s.stats.cancelled,
                )
            })
            .collect();
        // (submitted, completed, failed, cancelled) per stage.
        assert_eq!(counts, [(100, 100, 0, 0), (100, 90, 10, 0), (90, 90, 0, 0)]);
    });
}

#[test]
fn cancel_mid_stream_leaves_no_thread() {
    // Cancelling the parent while items wait in stage 2 stops every stage and the feeder of an endless input: run returns Cancelled promptly, and no stage thread is left.
    with_timeout(LONG, || {
        let ctx = Context::new();
        let (entered_tx, entered_rx) = crossbeam_channel::unbounded();
        let canceller = {
            let ctx = ctx.clone();
            thread::spawn(move || {
                let entered = entered_rx.recv_timeout(LONG).is_ok();
                ctx.cancel();
                entered
            })
        };
        let start = Instant::now();
        let result = Pipeline::<u64, u64, Malformed>::new(&ctx)
            .stage("cm1", 2, pass)
            .stage("cm2", 3, move |ctx: &Context, n: u64| {
                let _ = entered_tx.send(n);
                let _ = ctx.sleep(LONG);
                Ok(n)
            })
            .buffer(1)
            .stage("cm3", 1, pass)
            .build()
            .expect("valid pipeline")
            .run(0..);
        let elapsed = start.elapsed();
        assert!(
            canceller.join().expect("canceller"),
            "an item entered stage 2"
        );

        let err = result.expect_err("the run was cancelled");
        assert!(
            matches!(err, PipelineError::Cancelled(Cancelled::Canceled)),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "pipeline cancelled: context canceled");
        assert!(
            elapsed < PROMPT,
            "run took {elapsed:?} to notice the cancel"
        );
        assert_no_threads(&["cm1", "cm2", "cm3"]);
    });
}

#[test]
fn stages_blocked_on_the_next_stages_full_queue_end_with_the_run() {
    // Stage 1's three workers fill stage 2's one-slot queue while stage 2's only worker holds one of the five items, then all three block sending the last three (their threads asleep). A stage's send waits without watching the cancel channel: cancelling must still end every one of them — stage 2's worker takes the queued item, each send that lands after the cancellation drains the queue again, and stage 2's worker drains it as it leaves. run returns Cancelled and no stage thread is left.
    with_timeout(LONG, || {
        let ctx = Context::new();
        let (started_tx, started_rx) = crossbeam_channel::unbounded();
        let (fed_tx, fed_rx) = crossbeam_channel::unbounded();
        let canceller = {
            let ctx = ctx.clone();
            thread::spawn(move || {
                let held = started_rx.recv_timeout(LONG).is_ok();
                let fed = (0..5).all(|_| fed_rx.recv_timeout(LONG).is_ok());
                let blocked = wait_until(LONG, || {
                    (0..3).all(|i| thread_sleeping(&format!("bq1-{i}")))
                });
                ctx.cancel();
                held && fed && blocked
            })
        };
        let result = Pipeline::<u64, u64, Malformed>::new(&ctx)
            .stage("bq1", 3, move |_ctx: &Context, n: u64| {
                let _ = fed_tx.send(n);
                Ok(n)
            })
            .stage("bq2", 1, move |ctx: &Context, n: u64| {
                let _ = started_tx.send(n);
                let _ = ctx.sleep(LONG);
                Ok(n)
            })
            .buffer(1)
            .build()
            .expect("valid pipeline")
            .run(0..5);
        assert!(
            canceller.join().expect("canceller"),
            "stage 2 held an item and stage 1's workers all blocked sending"
        );
        let err = result.expect_err("the run was cancelled");
        assert!(
            matches!(err, PipelineError::Cancelled(Cancelled::Canceled)),
            "{err:?}"
        );
        assert_no_threads(&["bq1", "bq2"]);
    });
}

#[test]
fn parent_deadline_cancels_a_waiting_stage() {
    // The parent context's deadline cancels a run whose stage waits on its context: Cancelled(DeadlineExceeded), no earlier than the deadline and promptly after it.
    with_timeout(LONG, || {
        let timeout = Duration::from_millis(100);
        let start = Instant::now();
        let ctx = Context::new().with_timeout(timeout);
        let result = Pipeline::<u64, u64, Malformed>::new(&ctx)
            .stage("dl1", 1, pass)
            .stage("dl2", 2, |ctx: &Context, n: u64| {
                let _ = ctx.sleep(LONG);
                Ok(n)
            })
            .build()
            .expect("valid pipeline")
            .run(0..100);
        let elapsed = start.elapsed();

        let err = result.expect_err("the deadline passed");
        assert!(
            matches!(err, PipelineError::Cancelled(Cancelled::DeadlineExceeded)),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "pipeline cancelled: context deadline exceeded"
        );
        assert!(
            elapsed >= timeout,
            "returned after {elapsed:?}, before the deadline"
        );
        assert!(elapsed < timeout + PROMPT, "run took {elapsed:?}");
        assert_no_threads(&["dl1", "dl2"]);
    });
}

#[test]
fn cancelled_parent_runs_no_item() {
    // Under an already-cancelled context run returns Cancelled without running any item, and leaves no thread.
    with_timeout(LONG, || {
        let ctx = Context::new();
        ctx.cancel();
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&ran);
        let result = Pipeline::<u64, u64, Malformed>::new(&ctx)
            .stage("ac1", 2, move |_ctx: &Context, n: u64| {
                counter.fetch_add(1, SeqCst);
                Ok(n)
            })
            .build()
            .expect("valid pipeline")
            .run(0..1000);
        let err = result.expect_err("the parent is cancelled");
        assert!(
            matches!(err, PipelineError::Cancelled(Cancelled::Canceled)),
            "{err:?}"
        );
        assert_eq!(ran.load(SeqCst), 0);
        assert_no_threads(&["ac1"]);
    });
}

#[test]
fn stage_error_stops_the_feeder() {
    // Fail-fast: an error in stage 2 cancels the run, wakes the items waiting in stage 2, and stops the feeder of an endless input within what the queues hold.
    with_timeout(LONG, || {
        const FAIL_AT: u64 = 10;
        let (n1, b1, n2, b2) = (1, 2, 3, 2);
        let pulled = Arc::new(AtomicUsize::new(0));
        let ctx = Context::new();
        let start = Instant::now();
        let result = Pipeline::<u64, u64, Malformed>::new(&ctx)
            // One worker keeps stage 2's queue in input order, so stage 2
            // takes item 10 before any later item.
            .stage("ff1", n1, pass)
            .buffer(b1)
            .stage("ff2", n2, |ctx: &Context, n: u64| {
                if n == FAIL_AT {
                    return Err(Malformed(n));
                }
                // Later items wait for the cancellation, so none gets past
                // stage 2 and makes room for the feeder.
                if n > FAIL_AT {
                    let _ = ctx.sleep(LONG);
                }
                Ok(n)
            })
            .buffer(b2)
            .stage("ff3", 2, pass)
            .build()
            .expect("valid pipeline")
            .run(counted(0..u64::MAX, &pulled));
        let elapsed = start.elapsed();

        let (failure, text) = stage_failure(result);
        assert_eq!((failure.stage.as_str(), failure.index), ("ff2", FAIL_AT));
        assert_eq!(failure.error, StageError::Failed(Malformed(FAIL_AT)));
        assert_eq!(
            text,
            "stage \"ff2\" failed on item 10: item 10 is malformed"
        );
        assert!(elapsed < PROMPT, "run took {elapsed:?}");

        // Items 0..=10, then later items wherever they can wait: the other
        // stage-2 workers (n2 - 1), both queues (b1 + b2), the stage-1
        // worker (n1) and the feeder's hand (1). When the cancel lands, the
        // stage-1 worker empties its queue on the way out and the feeder may
        // refill it once (b1); the slack covers that drain racing the
        // feeder's last sends.
        let slack = 4;
        let bound = (FAIL_AT as usize + 1) + (n2 - 1) + b1 + b2 + n1 + 1 + b1 + slack;
        let pulled = pulled.load(SeqCst);
        assert!(pulled <= bound, "pulled {pulled} inputs, bound {bound}");
        assert!(!ctx.is_done(), "a failure cancels the run, not its parent");
        assert_no_threads(&["ff1", "ff2", "ff3"]);
    });
}

#[test]
fn collect_errors_records_failures_and_keeps_going() {
    // collect_errors: each failed item is recorded with its stage and index, every other item comes out, and run returns Ok.
    with_timeout(LONG, || {
        let ctx = Context::new();
        let out = Pipeline::<u64, u64, Malformed>::new(&ctx)
            .stage("ce1", 2, |_ctx: &Context, n: u64| {
                if n % 10 == 1 {
                    Err(Malformed(n))
                } else {
                    Ok(n)
                }
            })
            .stage("ce2", 3, pass)
            .stage("ce3", 2, |_ctx: &Context, n: u64| {
                if n % 10 == 5 {
                    Err(Malformed(n))
                } else {
                    Ok(n * 2)
                }
            })
            .collect_errors()
            .build()
            .expect("valid pipeline")
            .run(0..500)
            .expect("collect_errors runs to the end");

        let mut outputs = out.outputs;
        outputs.sort_unstable();
        let kept = (0..500u64).filter(|n| n % 10 != 1 && n % 10 != 5);
        assert_eq!(outputs, kept.map(|n| n * 2).collect::<Vec<_>>());

        let first = out
            .failures
            .iter()
            .find(|f| f.index == 1)
            .expect("item 1 failed");
        assert_eq!(
            first.to_string(),
            "stage \"ce1\" failed on item 1: item 1 is malformed"
        );
        let mut failures: Vec<(String, u64, StageError<Malformed>)> = out
            .failures
            .into_iter()
            .map(|f| (f.stage, f.index, f.error))
            .collect();
        failures.sort_by_key(|f| f.1);
        let expected: Vec<(String, u64, StageError<Malformed>)> = (0..500)
            .filter_map(|n| {
                let stage = match n % 10 {
                    1 => "ce1",
                    5 => "ce3",
                    _ => return None,
                };
                Some((stage.to_owned(), n, StageError::Failed(Malformed(n))))
            })
            .collect();
        assert_eq!(failures, expected);

        let counts: Vec<(u64, u64, u64)> = out
            .stages
            .iter()
            .map(|s| (s.stats.completed, s.stats.failed, s.stats.cancelled))
            .collect();
        assert_eq!(counts, [(450, 50, 0), (450, 0, 0), (400, 50, 0)]);
        assert_no_threads(&["ce1", "ce2", "ce3"]);
    });
}

#[test]
fn panic_fails_fast_with_its_message() {
    // Fail-fast: a panicking stage cancels the run, which returns the panic's message as StageError::Panicked, and leaves no thread (no respawn after a cancel).
    with_timeout(LONG, || {
        let ctx = Context::new();
        let result = Pipeline::<u64, u64, Malformed>::new(&ctx)
            .stage("pf1", 2, pass)
            .stage("pf2", 2, |_ctx: &Context, n: u64| {
                if n == 5 {
                    panic!("boom on item {n}");
                }
                Ok(n)
            })
            .build()
            .expect("valid pipeline")
            .run(0..1000);

        let (failure, text) = stage_failure(result);
        assert_eq!((failure.stage.as_str(), failure.index), ("pf2", 5));
        assert_eq!(failure.error, StageError::Panicked("boom on item 5".into()));
        let at = format!(
            "stage \"pf2\" failed on item 5: panicked: boom on item 5 (at {}:",
            file!()
        );
        assert!(text.starts_with(&at), "{text}");
        assert_no_threads(&["pf1", "pf2"]);
    });
}

#[test]
fn collected_panics_let_the_rest_continue() {
    // collect_errors: a panicking item is recorded with its message, its worker is replaced, and every other item still comes out.
    with_timeout(LONG, || {
        let panics_on = |n: u64| n % 50 == 7;
        let ctx = Context::new();
        let out = Pipeline::<u64, u64, Malformed>::new(&ctx)
            .stage("pc1", 2, pass)
            .stage("pc2", 2, move |_ctx: &Context, n: u64| {
                if panics_on(n) {
                    panic!("boom on item {n}");
                }
                Ok(n + 1)
            })
            .stage("pc3", 1, pass)
            .collect_errors()
            .build()
            .expect("valid pipeline")
            .run(0..200)
            .expect("collect_errors runs to the end");

        let mut outputs = out.outputs;
        outputs.sort_unstable();
        let kept = (0..200).filter(|&n| !panics_on(n));
        assert_eq!(outputs, kept.map(|n| n + 1).collect::<Vec<u64>>());

        let mut failures: Vec<(String, u64, StageError<Malformed>)> = out
            .failures
            .into_iter()
            .map(|f| (f.stage, f.index, f.error))
            .collect();
        failures.sort_by_key(|f| f.1);
        let expected: Vec<(String, u64, StageError<Malformed>)> = [7, 57, 107, 157]
            .into_iter()
            .map(|n| {
                (
                    "pc2".to_owned(),
                    n,
                    StageError::Panicked(format!("boom on item {n}").into()),
                )
            })
            .collect();
        assert_eq!(failures, expected);

        let s = &out.stages[1].stats;
        assert_eq!((s.completed, s.failed, s.panicked), (196, 4, 4), "pc2: {s}");
        assert_eq!(out.stages[2].stats.completed, 196);
        assert_no_threads(&["pc1", "pc2", "pc3"]);
    });
}

#[test]
fn ordered_outputs_follow_input_order() {
    // ordered(): outputs come in input order although seeded random latencies, and item 0 held back until item 1 has left the last stage, make items finish out of order.
    with_timeout(LONG, || {
        const N: u64 = 200;
        for seed in [1, 2, 3, 0x5eed_cafe] {
            let item1_done = Gate::new();
            let finished = Arc::new(Mutex::new(Vec::new()));
            let (gate, done) = (item1_done.clone(), Arc::clone(&finished));
            let ctx = Context::new();
            let out = Pipeline::<u64, u64, Malformed>::new(&ctx)
                .stage("or1", 3, move |ctx: &Context, n: u64| {
                    if n == 0 {
                        gate.wait();
                    }
                    jitter(ctx, seed, 1, n);
                    Ok(n)
                })
                .stage("or2", 2, move |ctx: &Context, n: u64| {
                    jitter(ctx, seed, 2, n);
                    done.lock().push(n);
                    if n == 1 {
                        item1_done.open();
                    }
                    Ok(n * 3)
                })
                .ordered()
                .build()
                .expect("valid pipeline")
                .run(0..N)
                .expect("nothing fails");

            let expected: Vec<u64> = (0..N).map(|n| n * 3).collect();
            assert_eq!(out.outputs, expected, "seed {seed}");
            let finished = finished.lock();
            let at = |item| finished.iter().position(|&n| n == item).expect("finished");
            assert!(at(1) < at(0), "seed {seed}: item 0 was not held back");
        }
        assert_no_threads(&["or1", "or2"]);
    });
}

#[test]
fn ordered_collect_errors_leaves_holes() {
    // ordered() with collect_errors(): failed items leave holes, and the others still come out in input order.
    with_timeout(LONG, || {
        const N: u64 = 300;
        let fails_in_1 = |n: u64| n % 9 == 4;
        let fails_in_2 = |n: u64| n % 13 == 6;
        for seed in [7, 8] {
            let ctx = Context::new();
            let out = Pipeline::<u64, u64, Malformed>::new(&ctx)
                .stage("oh1", 3, move |ctx: &Context, n: u64| {
                    jitter(ctx, seed, 1, n);
                    if fails_in_1(n) {
                        Err(Malformed(n))
                    } else {
                        Ok(n)
                    }
                })
                .stage("oh2", 2, move |ctx: &Context, n: u64| {
                    jitter(ctx, seed, 2, n);
                    if fails_in_2(n) {
                        Err(Malformed(n))
                    } else {
                        Ok(n + 1000)
                    }
                })
                .ordered()
                .collect_errors()
                .build()
                .expect("valid pipeline")
                .run(0..N)
                .expect("collect_errors runs to the end");

            let kept = (0..N).filter(|&n| !fails_in_1(n) && !fails_in_2(n));
            let expected: Vec<u64> = kept.map(|n| n + 1000).collect();
            assert_eq!(out.outputs, expected, "seed {seed}");
            let mut failed: Vec<(u64, &str)> = out
                .failures
                .iter()
                .map(|f| (f.index, f.stage.as_str()))
                .collect();
            failed.sort_unstable();
            let expected_failed: Vec<(u64, &str)> = (0..N)
                .filter_map(|n| {
                    if fails_in_1(n) {
                        Some((n, "oh1"))
                    } else if fails_in_2(n) {
                        Some((n, "oh2"))
                    } else {
                        None
                    }
                })
                .collect();
            assert_eq!(failed, expected_failed, "seed {seed}");
        }
        assert_no_threads(&["oh1", "oh2"]);
    });
}

/// Runs `0..60` through stages of `workers.0` (at least 2) and `workers.1`
/// workers named `{prefix}a` and `{prefix}b`, in order with `window`
/// (`None`: the default window). Item 0 waits in stage 1 until the inputs
/// pulled reach `expected` and then stop growing. Returns whether they
/// reached it, how many had been pulled when the gate opened, and the
/// outputs.
fn pulled_behind_slow_item(
    prefix: &str,
    workers: (usize, usize),
    window: Option<usize>,
    expected: usize,
) -> (bool, usize, Vec<u64>) {
    let gate = Gate::new();
    let pulled = Arc::new(AtomicUsize::new(0));
    let passed = Arc::new(AtomicUsize::new(0));
    let ctx = Context::new();
    let held = gate.clone();
    let counter = Arc::clone(&passed);
    let pipeline = Pipeline::<u64, u64, Malformed>::new(&ctx)
        .stage(
            format!("{prefix}a"),
            workers.0,
            move |_ctx: &Context, n: u64| {
                if n == 0 {
                    held.wait();
                }
                Ok(n)
            },
        )
        .stage(
            format!("{prefix}b"),
            workers.1,
            move |_ctx: &Context, n: u64| {
                counter.fetch_add(1, SeqCst);
                Ok(n * 2)
            },
        );
    let pipeline = match window {
        Some(window) => pipeline.ordered_window(window),
        None => pipeline.ordered(),
    };
    let inputs = counted(0..60, &pulled);
    let ((reached, seen), out) = thread::scope(|s| {
        let observer = s.spawn(|| {
            // Every item the window admits besides item 0 has passed the
            // last stage, and the feeder has pulled what it may...
            let reached = wait_until(LONG, || {
                pulled.load(SeqCst) >= expected && passed.load(SeqCst) + 2 >= expected
            });
            // ...and keeps still: an overrun would show within this quiet spell.
            let quiet = Duration::from_millis(50);
            let mut last = (pulled.load(SeqCst), Instant::now());
            let settled = wait_until(LONG, || {
                let now = pulled.load(SeqCst);
                if now != last.0 {
                    last = (now, Instant::now());
                }
                last.1.elapsed() >= quiet
            });
            let seen = pulled.load(SeqCst);
            gate.open();
            (reached && settled, seen)
        });
        let out = pipeline.build().expect("valid pipeline").run(inputs);
        (observer.join().expect("observer"), out)
    });
    let out = out.expect("nothing fails");
    assert_no_threads(&[&format!("{prefix}a"), &format!("{prefix}b")]);
    (reached, seen, out.outputs)
}

#[test]
fn ordered_window_bounds_the_feeder() {
    // ordered_window(w): while item 0 is stuck, the feeder sends items 0..w only (less than w ahead of it) and holds item w, so exactly w + 1 inputs are pulled; then all come out in order.
    with_timeout(LONG, || {
        for window in [1, 5] {
            let (reached, pulled, outputs) =
                pulled_behind_slow_item("ow", (3, 2), Some(window), window + 1);
            assert!(
                reached,
                "window {window}: the feeder stalled early at {pulled}"
            );
            assert_eq!(pulled, window + 1, "window {window}");
            assert_eq!(outputs, (0..60).map(|n| n * 2).collect::<Vec<u64>>());
        }
    });
}

#[test]
fn ordered_default_window_bounds_the_feeder() {
    // ordered(): the default window is four items per worker across all stages, at least 16 — 20 for 3 + 2 workers, 16 for 2 + 1 — and the feeder pulls one more than that while item 0 is stuck.
    with_timeout(LONG, || {
        for (workers, window) in [((3, 2), 20), ((2, 1), 16)] {
            let (reached, pulled, outputs) =
                pulled_behind_slow_item("od", workers, None, window + 1);
            assert!(reached, "{workers:?}: the feeder stalled early at {pulled}");
            assert_eq!(pulled, window + 1, "{workers:?}");
            assert_eq!(outputs, (0..60).map(|n| n * 2).collect::<Vec<u64>>());
        }
    });
}

#[test]
fn zero_workers_is_a_build_error() {
    // A stage with no workers fails build with Stage naming that stage, before any thread starts.
    with_timeout(LONG, || {
        let ctx = Context::new();
        let err = Pipeline::<u64, u64, Malformed>::new(&ctx)
            .stage("zw1", 2, pass)
            .stage("zw2", 0, pass)
            .build()
            .expect_err("zero workers");
        assert!(
            matches!(&err, PipelineBuildError::Stage { stage, error: BuildError::Sizing(SizingError::ZeroWorkers) } if stage == "zw2"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "pipeline stage \"zw2\": worker count must be at least 1, got 0"
        );
        assert_eq!(threads_named("zw1"), 0);
    });
}

/// The thread ids of this process's threads named `{prefix}-…`.
#[cfg(target_os = "linux")]
fn thread_ids(prefix: &str) -> Vec<u64> {
    let want = format!("{prefix}-");
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .filter_map(|task| {
            let task = task.ok()?;
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            comm.starts_with(&want)
                .then(|| task.file_name().to_str()?.parse().ok())?
        })
        .collect()
}

/// Builds a 2/2/1 pipeline of stages `ord1`..`ord3`, waits for its
/// threads, and returns their ids per stage, then runs and joins it.
#[cfg(target_os = "linux")]
fn ordered_stage_thread_ids() -> [Vec<u64>; 3] {
    let ready = Pipeline::<u64, u64, Malformed>::new(&Context::new())
        .stage("ord1", 2, pass)
        .stage("ord2", 2, pass)
        .stage("ord3", 1, pass)
        .build()
        .expect("valid pipeline");
    assert!(wait_until(LONG, || threads_named("ord1") == 2
        && threads_named("ord2") == 2
        && threads_named("ord3") == 1));
    let ids = ["ord1", "ord2", "ord3"].map(thread_ids);
    let out = ready.run(0..100).expect("runs");
    assert_eq!(out.outputs.len(), 100);
    assert_no_threads(&["ord1", "ord2", "ord3"]);
    ids
}

#[test]
#[cfg(target_os = "linux")]
fn build_starts_the_stages_threads_first_stage_first() {
    // The stages are made back to front, each needing the next one's way
    // in, but their threads start front to back: started last stage
    // first, the kernel placed a CPU-bound middle stage's workers on one
    // CPU in 16 or 17 runs of 40 (benches/README.md, "Pipelines: two
    // modes"). Linux hands out thread ids from one counter, in increasing
    // order until it wraps at pid_max, so ids show the order; a build
    // whose ids straddle a wrap (they then span more than half the id
    // space) is built again.
    with_timeout(LONG, || {
        let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|max| max.trim().parse().ok())
            .unwrap_or(1 << 22);
        let mut stages = ordered_stage_thread_ids();
        let all = || stages.iter().flatten().copied();
        if all().max().unwrap_or(0) - all().min().unwrap_or(0) > pid_max / 2 {
            stages = ordered_stage_thread_ids();
        }
        for pair in stages.windows(2) {
            let (before, after) = (&pair[0], &pair[1]);
            assert!(
                before.iter().max() < after.iter().min(),
                "a stage's threads started before the previous stage's: {stages:?}"
            );
        }
    });
}

#[test]
fn build_starts_the_threads_and_an_unrun_pipeline_joins_them() {
    // build() starts every stage's workers, which wait for inputs; dropping the ReadyPipeline unrun closes the first queue and joins them all; a second build of an equal pipeline runs normally.
    with_timeout(LONG, || {
        let ctx = Context::new();
        let make = || {
            Pipeline::<u64, u64, Malformed>::new(&ctx)
                .stage("br1", 2, pass)
                .stage("br2", 1, pass)
        };
        let ready = make().build().expect("valid pipeline");
        assert!(wait_until(LONG, || threads_named("br1") == 2
            && threads_named("br2") == 1));
        drop(ready);
        assert_no_threads(&["br1", "br2"]);
        let out = make()
            .build()
            .expect("valid pipeline")
            .run(0..10)
            .expect("runs");
        assert_eq!(out.outputs.len(), 10);
    });
}

#[test]
fn invalid_stage_settings_are_build_errors() {
    // Too many workers, a too large buffer and a NUL in a name each fail build with Stage naming the stage, with a message that says what is wrong.
    with_timeout(LONG, || {
        let ctx = Context::new();
        let too_many = Pipeline::<u64, u64, Malformed>::new(&ctx)
            .stage("tm", 40_000, pass)
            .build()
            .expect_err("too many workers");
        assert_eq!(
            too_many.to_string(),
            "pipeline stage \"tm\": worker count must be at most 32768, got 40000"
        );
        assert!(
            matches!(
                &too_many,
                PipelineBuildError::Stage {
                    error: BuildError::Sizing(SizingError::TooManyWorkers {
                        requested: 40_000,
                        max: 32_768
                    }),
                    ..
                }
            ),
            "{too_many:?}"
        );

        let huge = Pipeline::<u64, u64, Malformed>::new(&ctx)
            .stage("hb1", 1, pass)
            .stage("hb2", 1, pass)
            .buffer(MAX_QUEUE_CAPACITY + 1)
            .build()
            .expect_err("buffer too large");
        assert_eq!(
            huge.to_string(),
            format!(
                "pipeline stage \"hb2\": stage buffer must be at most {MAX_QUEUE_CAPACITY}, got {}",
                MAX_QUEUE_CAPACITY + 1
            )
        );
        assert!(
            matches!(&huge, PipelineBuildError::Stage { stage, error: BuildError::BufferTooLarge { .. } } if stage == "hb2"),
            "{huge:?}"
        );

        let nul = Pipeline::<u64, u64, Malformed>::new(&ctx)
            .stage("nu\0l", 1, pass)
            .build()
            .expect_err("NUL in a name");
        assert_eq!(
            nul.to_string(),
            "pipeline stage \"nu\\0l\": thread name must not contain NUL bytes, got \"nu\\0l\""
        );
        assert!(
            matches!(&nul, PipelineBuildError::Stage { error: BuildError::InvalidThreadName(name), .. } if name == "nu\0l"),
            "{nul:?}"
        );
        assert_no_threads(&["hb1", "tm"]);
    });
}

#[test]
fn zero_window_is_a_settings_error() {
    // ordered_window(0), and a window past MAX_QUEUE_CAPACITY, fail build with Settings(InvalidWindow), before any thread starts.
    with_timeout(LONG, || {
        let ctx = Context::new();
        for window in [0, MAX_QUEUE_CAPACITY + 1] {
            let err = Pipeline::<u64, u64, Malformed>::new(&ctx)
                .stage("zo1", 2, pass)
                .ordered_window(window)
                .build()
                .expect_err("invalid window");
            assert!(
                matches!(&err, PipelineBuildError::Settings(BuildError::InvalidWindow { requested, max: MAX_QUEUE_CAPACITY }) if *requested == window),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "pipeline: ordered window must be between 1 and {MAX_QUEUE_CAPACITY}, got {window}"
                )
            );
        }
        assert_no_threads(&["zo1"]);
    });
}

#[test]
fn empty_pipeline_passes_inputs_through() {
    // A pipeline with no stages hands its inputs back unchanged and in order (nothing can reorder them), with no stage stats.
    // A shorter limit than LONG, so a hang fails this test without stalling the file.
    with_timeout(Duration::from_secs(5), || {
        let ctx = Context::new();
        let none = Pipeline::<u64, u64, Malformed>::new(&ctx)
            .build()
            .expect("valid pipeline")
            .run(std::iter::empty())
            .expect("no inputs");
        assert!(none.outputs.is_empty() && none.failures.is_empty() && none.stages.is_empty());

        let out = Pipeline::<u64, u64, Malformed>::new(&ctx)
            .build()
            .expect("valid pipeline")
            .run(0..100)
            .expect("nothing can fail");
        assert_eq!(out.outputs, (0..100).collect::<Vec<u64>>());
        assert!(out.failures.is_empty() && out.stages.is_empty());
    });
}

#[test]
fn panicking_inputs_cancel_the_stages() {
    // A panic in the caller's input iterator propagates out of run, which still stops its stages promptly (cancelling what they wait on) and leaves no thread.
    with_timeout(LONG, || {
        // Long enough that waiting it out shows; short enough not to stall the file.
        let hold = Duration::from_secs(4);
        let (entered_tx, entered_rx) = crossbeam_channel::bounded(1);
        let inputs = (0..10u64).inspect(move |&n| {
            if n == 1 {
                // Item 0 is in the stage by now.
                let _ = entered_rx.recv_timeout(LONG);
                panic!("input 1 is unreadable");
            }
        });
        let ctx = Context::new();
        let start = Instant::now();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            Pipeline::<u64, u64, Malformed>::new(&ctx)
                .stage("ip1", 1, move |ctx: &Context, n: u64| {
                    let _ = entered_tx.try_send(());
                    let _ = ctx.sleep(hold);
                    Ok(n)
                })
                .buffer(0)
                .build()
                .expect("valid pipeline")
                .run(inputs)
        }));
        let elapsed = start.elapsed();
        let payload = caught.expect_err("the iterator's panic propagates");
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"input 1 is unreadable")
        );
        assert!(
            elapsed < hold / 2,
            "run unwound after {elapsed:?}: it waited for its stage instead of cancelling it"
        );
        assert_no_threads(&["ip1"]);
    });
}

/// An input that counts its drops; it travels through every stage as is.
#[derive(Debug)]
struct Tracked {
    index: u64,
    _drops: DropCounter,
}

/// What ends a tracked run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    ParentCancel,
    StageError,
    StagePanic,
    /// Nothing: the run completes, collecting the errors of items `% 10 == 3`.
    Completes,
}

const TRACKED: u64 = 100;
const TRACKED_WINDOW: usize = 8;
const STOP_AT: u64 = 5;

/// Runs `TRACKED` inputs through three stages named `{prefix}1..3` with an
/// ordered window of `TRACKED_WINDOW`, stopped by `stop`. Unless the run
/// completes, item 0 waits in stage 2 until the run stops, so items
/// 1.. pile up in the queues, the reorder window and the feeder's hand.
/// Returns the drops counted when run returned, and what it returned.
fn run_tracked(stop: Stop, prefix: &str) -> (usize, RunResult<Tracked>, Arc<AtomicUsize>) {
    let drops = Arc::new(AtomicUsize::new(0));
    let inputs: Vec<Tracked> = (0..TRACKED)
        .map(|index| Tracked {
            index,
            _drops: DropCounter(Arc::clone(&drops)),
        })
        .collect();
    let ctx = Context::new();
    let (passed_tx, passed_rx) = crossbeam_channel::unbounded();
    let canceller = (stop == Stop::ParentCancel).then(|| {
        let ctx = ctx.clone();
        thread::spawn(move || {
            // Items 1..8 have passed the last stage: the window holds them.
            let passed = (1..TRACKED_WINDOW).all(|_| passed_rx.recv_timeout(LONG).is_ok());
            ctx.cancel();
            passed
        })
    });
    let pipeline = Pipeline::<Tracked, Tracked, Malformed>::new(&ctx)
        .stage(format!("{prefix}1"), 2, |_ctx: &Context, t: Tracked| Ok(t))
        .stage(format!("{prefix}2"), 2, move |ctx: &Context, t: Tracked| {
            match (t.index, stop) {
                (_, Stop::Completes) if t.index % 10 == 3 => return Err(Malformed(t.index)),
                (_, Stop::Completes) => {}
                (0, _) => {
                    let _ = ctx.sleep(LONG);
                }
                (STOP_AT, Stop::StageError) => return Err(Malformed(t.index)),
                (STOP_AT, Stop::StagePanic) => panic!("tracked item {STOP_AT} panicked"),
                _ => {}
            }
            Ok(t)
        })
        .stage(
            format!("{prefix}3"),
            1,
            move |_ctx: &Context, t: Tracked| {
                let _ = passed_tx.send(t.index);
                Ok(t)
            },
        )
        .ordered_window(TRACKED_WINDOW);
    let pipeline = if stop == Stop::Completes {
        pipeline.collect_errors()
    } else {
        pipeline
    };
    let result = pipeline.build().expect("valid pipeline").run(inputs);
    let dropped = drops.load(SeqCst);
    if let Some(canceller) = canceller {
        assert!(canceller.join().expect("canceller"), "items 1..8 passed");
    }
    (dropped, result, drops)
}

#[test]
fn items_are_dropped_exactly_once() {
    // Whatever ends a run, every input, pulled or not, in a queue, a worker, the reorder window or the feeder's hand, has been dropped exactly once when run returns; outputs are dropped with the output.
    with_timeout(LONG, || {
        let total = TRACKED as usize;
        for (stop, prefix) in [
            (Stop::ParentCancel, "dc"),
            (Stop::StageError, "de"),
            (Stop::StagePanic, "dp"),
        ] {
            let (dropped, result, _) = run_tracked(stop, prefix);
            assert_eq!(dropped, total, "{stop:?}: drops when run returned");
            match (stop, result) {
                (Stop::ParentCancel, Err(PipelineError::Cancelled(Cancelled::Canceled))) => {}
                (Stop::StageError | Stop::StagePanic, result) => {
                    let (failure, _) = stage_failure(result);
                    let error = match stop {
                        Stop::StageError => StageError::Failed(Malformed(STOP_AT)),
                        _ => {
                            StageError::Panicked(format!("tracked item {STOP_AT} panicked").into())
                        }
                    };
                    assert_eq!(
                        (failure.stage, failure.index, failure.error),
                        (format!("{prefix}2"), STOP_AT, error)
                    );
                }
                (stop, other) => panic!("{stop:?}: unexpected {other:?}"),
            }
            assert_no_threads(&[
                &format!("{prefix}1"),
                &format!("{prefix}2"),
                &format!("{prefix}3"),
            ]);
        }

        let (dropped, result, drops) = run_tracked(Stop::Completes, "dk");
        let out = result.expect("collect_errors runs to the end");
        assert_eq!(dropped, out.failures.len(), "only failed items are gone");
        let indices: Vec<u64> = out.outputs.iter().map(|t| t.index).collect();
        assert_eq!(
            indices,
            (0..TRACKED).filter(|n| n % 10 != 3).collect::<Vec<_>>()
        );
        drop(out);
        assert_eq!(drops.load(SeqCst), total);
        assert_no_threads(&["dk1", "dk2", "dk3"]);
    });
}
