//! `ThreadPool::map`, `map_unordered` and `try_map`: input order is kept
//! (or the same multiset, unordered), at most a window of items is taken
//! from the input and not yet yielded, `try_map` stops pulling after the
//! first error and returns it without waiting for earlier items, panics
//! and cancellation come back per item, an early drop or a map from inside
//! a job does not hang, and `chunk_size(0)` means 1. `try_map` and
//! `collect_vec` return exactly the sequential result whatever the length
//! and whatever the input's size hint claims.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use brigade::channel::RecvTimeoutError;
use brigade::{Cancelled, DEFAULT_READ_AHEAD, JobError, ThreadPool, TryMapError};

use common::{Gate, LONG, SplitMix64, threads_named, wait_until, with_timeout};

fn pool(workers: usize) -> ThreadPool {
    ThreadPool::builder()
        .workers(workers)
        .build()
        .expect("build")
}

/// `0..len`, counting every item it yields in `pulled`. Its length is
/// unknown (`size_hint` is `(0, None)`), so `map` defaults to one item per
/// chunk and a window of four items per worker.
fn counted(len: usize, pulled: &Arc<AtomicUsize>) -> impl Iterator<Item = usize> + use<> {
    let pulled = Arc::clone(pulled);
    let mut next = 0;
    std::iter::from_fn(move || {
        (next < len).then(|| {
            pulled.fetch_add(1, Ordering::SeqCst);
            next += 1;
            next - 1
        })
    })
}

/// Polls `counter` until it has not changed for 100 ms (bounded by
/// [`LONG`]); returns its value. For "the input is no longer pulled".
fn wait_until_stalled(counter: &AtomicUsize) -> usize {
    let mut seen = counter.load(Ordering::SeqCst);
    let steady = wait_until(LONG, || {
        let moved = wait_until(Duration::from_millis(100), || {
            counter.load(Ordering::SeqCst) != seen
        });
        seen = counter.load(Ordering::SeqCst);
        !moved
    });
    assert!(steady, "the counter kept moving for {LONG:?}");
    seen
}

#[test]
fn map_keeps_input_order() {
    // map yields f(item) in input order even when some items are slow, with
    // default and explicit chunks; map_unordered yields the same multiset.
    with_timeout(LONG, || {
        const N: u64 = 10_000;
        let pool = pool(4);
        let f = |i: u64| {
            if i % 997 == 0 {
                // Scrambles completion order; nothing waits on it.
                thread::sleep(Duration::from_micros(SplitMix64(i).below(2000)));
            }
            i * 3
        };
        let expected: Vec<u64> = (0..N).map(|i| i * 3).collect();
        for chunk in [None, Some(1), Some(7)] {
            let map = pool.map(0..N, f);
            let map = match chunk {
                Some(items) => map.chunk_size(items),
                None => map,
            };
            let got: Vec<u64> = map.collect::<Result<_, _>>().expect("no failures");
            assert_eq!(got, expected, "chunk {chunk:?}");
        }
        let mut got: Vec<u64> = pool
            .map_unordered(0..N, f)
            .chunk_size(7)
            .collect::<Result<_, _>>()
            .expect("no failures");
        got.sort_unstable();
        assert_eq!(got, expected);
    });
}

#[test]
fn map_never_takes_more_than_window() {
    // Over 1,000,000 items with item 0 held until the input stalls, items
    // taken from the input and not yet received never exceed the window,
    // and the results still come in order.
    with_timeout(LONG, || {
        const N: u64 = 1_000_000;
        const CHUNK: usize = 64;
        const WINDOW: usize = 1024;
        let pool = Arc::new(pool(4));
        let gate = Gate::new();
        let pulled = Arc::new(AtomicUsize::new(0));
        let live = Arc::new(AtomicUsize::new(0));
        let max_live = Arc::new(AtomicUsize::new(0));
        let consumer = thread::spawn({
            let (pool, gate) = (Arc::clone(&pool), gate.clone());
            let (pulled, live, max_live) = (
                Arc::clone(&pulled),
                Arc::clone(&live),
                Arc::clone(&max_live),
            );
            move || {
                let input = (0..N).inspect(|_| {
                    pulled.fetch_add(1, Ordering::SeqCst);
                    let now = live.fetch_add(1, Ordering::SeqCst) + 1;
                    max_live.fetch_max(now, Ordering::SeqCst);
                });
                let map = pool.map(input, move |i| {
                    if i == 0 {
                        gate.wait();
                    }
                    i
                });
                let mut expected = 0;
                for result in map.chunk_size(CHUNK).window(WINDOW) {
                    live.fetch_sub(1, Ordering::SeqCst);
                    assert_eq!(result, Ok(expected));
                    expected += 1;
                }
                expected
            }
        });
        // The window is a whole number of chunks, so the map fills it and
        // then waits for item 0.
        assert!(
            wait_until(LONG, || pulled.load(Ordering::SeqCst) == WINDOW),
            "pulled {}",
            pulled.load(Ordering::SeqCst)
        );
        assert!(
            !wait_until(Duration::from_millis(50), || pulled.load(Ordering::SeqCst)
                > WINDOW),
            "pulled past the window while item 0 is held"
        );
        gate.open();
        assert_eq!(consumer.join().expect("consumer"), N);
        let max = max_live.load(Ordering::SeqCst);
        assert!(max <= WINDOW, "{max} items taken and not yet received");
    });
}

#[test]
fn try_map_fails_fast_at_first_error() {
    // One worker, one item per chunk, a window of 4: item K fails, and
    // try_map returns Failed { index: K } having taken at most a window past
    // it. Chunks run in input order on one worker, so when K's error is
    // seen, items 0..K have been yielded and at most the window (plus K
    // itself) is in flight: pulled <= K + 1 + window.
    with_timeout(LONG, || {
        const K: usize = 1000;
        const WINDOW: usize = 4; // 1 item per chunk x 4 chunks x 1 worker
        let pool = pool(1);
        let pulled = Arc::new(AtomicUsize::new(0));
        let err = pool
            .try_map(counted(100_000, &pulled), |i| {
                if i == K {
                    Err(format!("bad item {i}"))
                } else {
                    Ok(i)
                }
            })
            .expect_err("item K fails");
        assert_eq!(
            err,
            TryMapError::Failed {
                index: K as u64,
                error: "bad item 1000".to_owned()
            }
        );
        assert_eq!(err.to_string(), "item 1000 failed: bad item 1000");
        let pulled = pulled.load(Ordering::SeqCst);
        assert!(pulled <= K + 1 + WINDOW, "pulled {pulled} items");
    });
}

#[test]
fn try_map_slow_failing_item_bounds_pulling() {
    // Item K is slow and then fails: however long it takes, try_map takes at
    // most a window past it from the input (four workers, one item per
    // chunk, a window of 16), and returns Failed { index: K }.
    with_timeout(LONG, || {
        const K: usize = 100;
        const WINDOW: usize = 16; // 1 item per chunk x 4 chunks x 4 workers
        let pool = Arc::new(pool(4));
        let gate = Gate::new();
        let pulled = Arc::new(AtomicUsize::new(0));
        let mapper = thread::spawn({
            let (pool, gate, input) = (Arc::clone(&pool), gate.clone(), counted(10_000, &pulled));
            move || {
                pool.try_map(input, move |i| {
                    if i == K {
                        gate.wait();
                        return Err(format!("bad item {i}"));
                    }
                    Ok(i)
                })
            }
        });
        assert!(wait_until(LONG, || pulled.load(Ordering::SeqCst) > K));
        let stalled_at = wait_until_stalled(&pulled);
        gate.open();
        let err = mapper.join().expect("mapper").expect_err("item K fails");
        assert!(
            matches!(err, TryMapError::Failed { index, .. } if index == K as u64),
            "{err:?}"
        );
        let pulled = pulled.load(Ordering::SeqCst);
        assert!(
            pulled <= K + 1 + WINDOW,
            "pulled {pulled} items (stalled at {stalled_at}) for a failure at {K} with a window of {WINDOW}"
        );
    });
}

#[test]
fn try_map_collects_in_input_order() {
    // With no error, try_map returns Ok with every value in input order.
    with_timeout(LONG, || {
        let pool = pool(4);
        let got = pool.try_map(0..5_000u64, |i| Ok::<u64, String>(i * 2));
        assert_eq!(got, Ok((0..5_000).map(|i| i * 2).collect()));
        let empty = pool.try_map(Vec::<u64>::new(), Ok::<u64, String>);
        assert_eq!(empty, Ok(Vec::new()));
    });
}

#[test]
fn panicking_item_yields_error_at_its_position() {
    // A panicking item yields Err(Panicked(message)) at its own position and
    // every other item, its chunk-mates included, still yields Ok; try_map
    // reports it as Job { index }.
    with_timeout(LONG, || {
        let pool = pool(2);
        let f = |i: u64| {
            if i == 42 {
                panic!("item {i} exploded");
            }
            i
        };
        let results: Vec<Result<u64, JobError>> = pool.map(0..100u64, f).chunk_size(10).collect();
        assert_eq!(results.len(), 100);
        for (i, result) in results.into_iter().enumerate() {
            if i == 42 {
                assert_eq!(result, Err(JobError::Panicked("item 42 exploded".into())));
            } else {
                assert_eq!(result, Ok(i as u64));
            }
        }
        assert_eq!(pool.stats().panicked, 1);

        let err = pool
            .try_map(0..100u64, move |i| Ok::<u64, String>(f(i)))
            .expect_err("item 42 panics");
        assert_eq!(
            err,
            TryMapError::Job {
                index: 42,
                error: JobError::Panicked("item 42 exploded".into())
            }
        );
        // The location was noted on the worker that ran the chunk and
        // survives the chunk's trip to the consumer.
        let TryMapError::Job {
            error: JobError::Panicked(panic),
            ..
        } = &err
        else {
            unreachable!("checked above")
        };
        assert_eq!(panic.location().map(|at| at.file()), Some(file!()));
        let shown = err.to_string();
        let at = format!("item 42: job panicked: item 42 exploded (at {}:", file!());
        assert!(shown.starts_with(&at), "{shown}");
    });
}

#[test]
fn map_on_cancelled_pool_yields_cancelled() {
    // On a cancelled pool every item yields Err(Cancelled(Canceled)) and the
    // function never runs.
    with_timeout(LONG, || {
        let pool = pool(2);
        pool.context().cancel();
        let calls = Arc::new(AtomicUsize::new(0));
        let results: Vec<Result<u64, JobError>> = pool
            .map(0..5u64, {
                let calls = Arc::clone(&calls);
                move |i| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    i
                }
            })
            .collect();
        assert_eq!(
            results,
            vec![Err(JobError::Cancelled(Cancelled::Canceled)); 5]
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn dropping_map_early_does_not_hang() {
    // Dropping a Map unstarted, half-read, or with a chunk still running
    // returns at once; the pool still maps and joins afterwards.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("mdrop")
            .build()
            .expect("build");

        let submitted = pool.stats().submitted;
        drop(pool.map(0..10u64, |i| i));
        assert_eq!(pool.stats().submitted, submitted, "nothing until next()");

        let pulled = Arc::new(AtomicUsize::new(0));
        let mut map = pool
            .map(counted(1_000_000, &pulled), |i| i)
            .chunk_size(64)
            .window(1024);
        let first: Vec<usize> = map.by_ref().take(10).map(Result::unwrap).collect();
        assert_eq!(first, (0..10).collect::<Vec<_>>());
        drop(map);
        let pulled = pulled.load(Ordering::SeqCst);
        assert!(pulled <= 10 + 1024, "pulled {pulled}");

        let gate = Gate::new();
        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        let mut map = pool
            .map_unordered(0..1000u64, {
                let gate = gate.clone();
                move |i| {
                    if i == 0 {
                        started_tx.send(()).expect("the test waits");
                        gate.wait();
                    }
                    i
                }
            })
            .chunk_size(1)
            .window(8);
        let some: Vec<u64> = map.by_ref().take(3).map(Result::unwrap).collect();
        assert!(!some.contains(&0), "item 0 is held");
        started_rx.recv_timeout(LONG).expect("item 0 started");
        drop(map);
        gate.open();

        let again: Vec<u64> = pool
            .map(0..100u64, |i| i + 1)
            .collect::<Result<_, _>>()
            .expect("the pool still works");
        assert_eq!(again, (1..=100).collect::<Vec<_>>());
        pool.join();
        assert!(wait_until(LONG, || threads_named("mdrop") == 0));
    });
}

#[test]
fn map_inside_own_job_completes() {
    // map and try_map called from a job of the same one-worker pool run
    // inline and complete instead of deadlocking.
    with_timeout(LONG, || {
        let pool = Arc::new(pool(1));
        let inner = Arc::clone(&pool);
        let handle = pool
            .submit(move |_ctx| {
                let doubled: Vec<u64> = inner
                    .map(0..1_000u64, |i| i * 2)
                    .chunk_size(3)
                    .collect::<Result<_, _>>()
                    .expect("no failures");
                let mut unordered: Vec<u64> = inner
                    .map_unordered(0..100u64, |i| i)
                    .collect::<Result<_, _>>()
                    .expect("no failures");
                unordered.sort_unstable();
                let tried = inner.try_map(0..10u64, Ok::<u64, String>);
                (doubled, unordered, tried)
            })
            .expect("accepted");
        let (doubled, unordered, tried) = handle.join().expect("the job finished");
        assert_eq!(doubled, (0..1_000).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(unordered, (0..100).collect::<Vec<_>>());
        assert_eq!(tried, Ok((0..10).collect()));
    });
}

#[test]
fn chunk_size_zero_means_one() {
    // chunk_size(0) is taken as one item per job (one job per item), and a
    // window smaller than a chunk is one chunk; results are unchanged.
    with_timeout(LONG, || {
        let pool = pool(2);
        let before = pool.stats().submitted;
        let got: Vec<u64> = pool
            .map(0..100u64, |i| i)
            .chunk_size(0)
            .collect::<Result<_, _>>()
            .expect("no failures");
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert_eq!(pool.stats().submitted - before, 100, "one job per item");

        let before = pool.stats().submitted;
        let got: Vec<u64> = pool
            .map(0..50u64, |i| i)
            .chunk_size(0)
            .window(0)
            .collect::<Result<_, _>>()
            .expect("no failures");
        assert_eq!(got, (0..50).collect::<Vec<_>>());
        assert_eq!(pool.stats().submitted - before, 50);
    });
}

#[test]
fn collect_vec_matches_collect_over_random_inputs() {
    // collect_vec gives exactly what collecting item by item gives, for
    // ordered and unordered maps (as a multiset), across lengths that are
    // and are not whole chunks, known and unknown input lengths, and
    // random per-item work.
    with_timeout(LONG, || {
        let pool = pool(3);
        let mut rng = SplitMix64(0x00C0_11EC_7000);
        for _ in 0..40 {
            let len = rng.below(5_000) as usize;
            let spin = rng.below(3);
            let f = move |i: usize| {
                for _ in 0..spin * 50 {
                    std::hint::black_box(i);
                }
                i * 7 + 1
            };
            let expected: Vec<usize> = (0..len).map(f).collect();
            assert_eq!(pool.map(0..len, f).collect_vec(), Ok(expected.clone()));
            let pulled = Arc::new(AtomicUsize::new(0));
            assert_eq!(
                pool.map(counted(len, &pulled), f).collect_vec(),
                Ok(expected.clone())
            );
            let mut unordered = pool
                .map_unordered(0..len, f)
                .collect_vec()
                .expect("no failures");
            unordered.sort_unstable();
            assert_eq!(unordered, expected);
        }
    });
}

#[test]
fn collect_vec_returns_the_first_error_in_order() {
    // Items 300 and 700 panic: collect_vec returns item 300's panic, as
    // collect::<Result<Vec<_>, _>>() would.
    with_timeout(LONG, || {
        let pool = pool(2);
        let f = |i: u64| {
            if i == 300 || i == 700 {
                panic!("item {i} exploded");
            }
            i
        };
        assert_eq!(
            pool.map(0..1_000u64, f).chunk_size(16).collect_vec(),
            Err(JobError::Panicked("item 300 exploded".into()))
        );
        let by_collect: Result<Vec<u64>, JobError> = pool.map(0..1_000u64, f).collect();
        assert_eq!(
            by_collect,
            Err(JobError::Panicked("item 300 exploded".into()))
        );
    });
}

/// The chunk size a map reports in its `Debug` output.
fn chunk_of<T: std::fmt::Debug>(map: &T) -> usize {
    let text = format!("{map:?}");
    let at = text.find("chunk_size: Some(").expect("chunk_size in Debug") + 17;
    text[at..]
        .split(')')
        .next()
        .unwrap()
        .parse()
        .expect("a number")
}

#[test]
fn automatic_chunks_grow_for_trivial_items_only() {
    // 1,000,000 trivial items on 4 workers start in chunks of 512 (four
    // chunks per worker of the default 8,192-item read-ahead); chunks that
    // run in under 100 µs double, up to two chunks per worker of the
    // read-ahead (1,024). Four workers, not two, keep the first chunks
    // well under the bar in an unoptimised build too: there 1,024 trivial
    // items take 100-130 µs, 512 about half that. Items that sleep 300 µs
    // never grow their chunks: 240 items in 2 × 4 chunks of 30. Every
    // item counts as a job.
    with_timeout(LONG, || {
        let fast = pool(4);
        let mut map = fast.map(0..1_000_000u64, |x| x ^ 5);
        let out: Vec<u64> = map.by_ref().collect::<Result<_, _>>().expect("no failures");
        assert_eq!(out.len(), 1_000_000);
        assert_eq!(out[999_999], 999_999 ^ 5);
        assert_eq!(chunk_of(&map), 1_024, "the chunks did not grow");
        drop(map);
        assert_eq!(fast.stats().submitted, 1_000_000);

        let slow = pool(2);
        let mut map = slow.map(0..240u64, |x| {
            thread::sleep(Duration::from_micros(300));
            x
        });
        let out: Vec<u64> = map.by_ref().collect::<Result<_, _>>().expect("no failures");
        assert_eq!(out, (0..240).collect::<Vec<_>>());
        assert_eq!(chunk_of(&map), 30, "slow chunks must not grow");
        drop(map);
        assert_eq!(slow.stats().submitted, 240);
    });
}

#[test]
fn map_item_honours_job_timeout() {
    // A map item is a job: one that returns after the pool's per-job
    // timeout yields `TimedOut` (its value dropped) and is counted so.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .job_timeout(Duration::from_millis(20))
            .build()
            .expect("build");
        let results: Vec<_> = pool
            .map(0..3u64, |x| {
                if x == 1 {
                    thread::sleep(Duration::from_millis(200));
                }
                x
            })
            .chunk_size(1)
            .collect();
        assert_eq!(results, [Ok(0), Err(JobError::TimedOut), Ok(2)]);
        let stats = pool.stats();
        assert_eq!((stats.submitted, stats.completed), (3, 2));
        assert_eq!((stats.failed, stats.timed_out), (1, 1));
    });
}

#[test]
fn map_items_are_counted_in_stats() {
    // Every item of a map counts as a job: 100 items, one of which
    // panics, are 100 submitted, 99 completed and 1 panicked.
    with_timeout(LONG, || {
        let pool = pool(2);
        let results: Vec<_> = pool
            .map(0..100u64, |x| {
                assert!(x != 42, "item 42");
                x
            })
            .collect();
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
        let stats = pool.stats();
        assert_eq!(stats.submitted, 100);
        assert_eq!((stats.completed, stats.panicked, stats.failed), (99, 1, 1));
    });
}

#[test]
fn try_map_starts_no_item_after_a_failure() {
    // 1,000 items of about 1 ms on 2 workers, item 5 fails: once it has
    // failed, at most the item already running on the other worker
    // starts — not the rest of the chunks already queued.
    with_timeout(LONG, || {
        let pool = pool(2);
        let failed = Arc::new(AtomicUsize::new(0));
        let after = Arc::new(AtomicUsize::new(0));
        let (failed_in, after_in) = (Arc::clone(&failed), Arc::clone(&after));
        let result = pool.try_map(0..1_000u64, move |x| {
            if failed_in.load(Ordering::SeqCst) == 1 {
                after_in.fetch_add(1, Ordering::SeqCst);
            }
            thread::sleep(Duration::from_millis(1));
            if x == 5 {
                failed_in.store(1, Ordering::SeqCst);
                return Err("item 5 is bad");
            }
            Ok(x)
        });
        assert_eq!(
            result,
            Err(TryMapError::Failed {
                index: 5,
                error: "item 5 is bad"
            })
        );
        let started_after = after.load(Ordering::SeqCst);
        assert!(
            started_after <= 1,
            "{started_after} items started after the failure"
        );
    });
}

#[test]
fn map_over_an_endless_input_pulls_at_most_the_read_ahead() {
    // Taking 10 results of a cheap map over an endless input (an unknown
    // length) or a huge known one pulls at most DEFAULT_READ_AHEAD items
    // past them, whatever the chunks grow to; a `RangeFrom`'s size hint
    // (usize::MAX, None) is not a length.
    with_timeout(LONG, || {
        let pool = pool(2);
        for endless in [true, false] {
            let pulled = Arc::new(AtomicUsize::new(0));
            let count = Arc::clone(&pulled);
            let input: Box<dyn Iterator<Item = u64> + Send> = if endless {
                Box::new(0u64..)
            } else {
                Box::new(0..u64::MAX)
            };
            let input = input.inspect(move |_| {
                count.fetch_add(1, Ordering::SeqCst);
            });
            let taken: Vec<u64> = pool
                .map(input, |x| x.wrapping_mul(3))
                .take(10)
                .map(Result::unwrap)
                .collect();
            assert_eq!(taken, (0..10).map(|x| x * 3).collect::<Vec<_>>());
            let pulled = pulled.load(Ordering::SeqCst);
            assert!(
                pulled <= 10 + brigade::DEFAULT_READ_AHEAD,
                "pulled {pulled} items (endless: {endless})"
            );
        }
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let first: Vec<u64> = pool
            .map(0u64.., move |x| {
                counter.fetch_add(1, Ordering::SeqCst);
                x
            })
            .take(5)
            .map(Result::unwrap)
            .collect();
        assert_eq!(first, [0, 1, 2, 3, 4]);
        let calls = calls.load(Ordering::SeqCst);
        assert!(
            calls <= 5 + 8,
            "called the function {calls} times for 5 items"
        );
    });
}

#[test]
fn unordered_maps_yield_every_item() {
    // try_map and map_unordered over inputs long enough for chunks to grow
    // and arrive out of order return every item: an unordered map that has
    // yielded all it took refills instead of ending early.
    with_timeout(LONG, || {
        let pool = pool(2);
        for _ in 0..10 {
            let all = pool
                .try_map(0..300_000u64, Ok::<u64, ()>)
                .expect("no failures");
            assert_eq!(all.len(), 300_000);
            let unordered = pool.map_unordered(0..300_000u64, |x| x).count();
            assert_eq!(unordered, 300_000);
        }
    });
}

#[test]
fn try_map_ctx_items_already_running_see_the_failure() {
    // Two workers: item 1 waits on its context, item 0 fails once item 1
    // is running. The failure cancels the map's context, so item 1 stops
    // at once instead of waiting out its timeout.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .build()
            .expect("a valid pool");
        let running = Arc::new(Gate::new());
        let saw_cancel = Arc::new(AtomicUsize::new(0));
        let result = {
            let (running, saw_cancel) = (Arc::clone(&running), Arc::clone(&saw_cancel));
            pool.try_map_ctx(0..2u32, move |ctx, n| {
                if n == 0 {
                    running.wait();
                    return Err("item 0 failed");
                }
                running.open();
                if ctx.done().recv_timeout(LONG) == Err(RecvTimeoutError::Disconnected) {
                    saw_cancel.fetch_add(1, Ordering::SeqCst);
                }
                Ok(n)
            })
        };
        assert!(
            matches!(
                result,
                Err(TryMapError::Failed {
                    index: 0,
                    error: "item 0 failed"
                })
            ),
            "{result:?}"
        );
        assert!(wait_until(LONG, || saw_cancel.load(Ordering::SeqCst) == 1));
    });
}

#[test]
fn map_ctx_items_see_the_map_dropped() {
    // An item waiting on its context ends when the consumer drops the map
    // after the first result.
    with_timeout(LONG, || {
        let pool = ThreadPool::builder()
            .workers(2)
            .build()
            .expect("a valid pool");
        let saw_cancel = Arc::new(AtomicUsize::new(0));
        // Item 0 returns only once item 1 is running: otherwise a slow
        // machine (ThreadSanitizer) could drop the map before item 1
        // started, and it would rightly never run.
        let (started_tx, started) = crossbeam_channel::bounded::<()>(1);
        let first: Vec<u32> = {
            let saw_cancel = Arc::clone(&saw_cancel);
            pool.map_ctx(0..2u32, move |ctx, n| {
                if n == 0 {
                    started.recv_timeout(LONG).expect("item 1 started");
                } else if n == 1 {
                    started_tx.send(()).expect("item 0 waits");
                    if ctx.done().recv_timeout(LONG) == Err(RecvTimeoutError::Disconnected) {
                        saw_cancel.fetch_add(1, Ordering::SeqCst);
                    }
                }
                n
            })
            .chunk_size(1)
            .take(1)
            .collect::<Result<_, _>>()
            .expect("item 0")
        };
        assert_eq!(first, [0]);
        assert!(wait_until(LONG, || saw_cancel.load(Ordering::SeqCst) == 1));
        pool.join();
    });
}

/// The trivial function of the map benchmarks.
fn scramble(x: u64) -> u64 {
    x.wrapping_mul(3) ^ 7
}

/// Lengths at and around the automatic chunk sizes on two workers: an
/// eighth of a short input, 1,024 items from 8,192 on, growing to 2,048.
const LENGTHS: [u64; 16] = [
    0, 1, 2, 7, 8, 9, 1_023, 1_024, 1_025, 2_047, 2_048, 2_049, 8_191, 8_192, 8_193, 1_000_003,
];

#[test]
fn try_map_collects_exactly_around_chunk_boundaries() {
    // try_map and collect_vec over an exact-size input return what a
    // sequential map returns, for lengths at and around chunk boundaries,
    // in a Vec sized once from the length (its capacity is the length).
    with_timeout(LONG, || {
        let pool = pool(2);
        for len in LENGTHS {
            let expected: Vec<u64> = (0..len).map(scramble).collect();
            let tried = pool
                .try_map(0..len, |x| Ok::<_, ()>(scramble(x)))
                .expect("no failures");
            assert_eq!(tried, expected, "try_map, length {len}");
            assert_eq!(tried.capacity(), len as usize, "try_map, length {len}");
            let collected = pool
                .map(0..len, scramble)
                .collect_vec()
                .expect("no failures");
            assert_eq!(collected, expected, "collect_vec, length {len}");
            assert_eq!(
                collected.capacity(),
                len as usize,
                "collect_vec, length {len}"
            );
        }
    });
}

#[test]
fn collect_vec_is_exact_around_fixed_chunks() {
    // With a fixed chunk size c, inputs of 0, 1, c - 1, c, c + 1 and
    // 10c + 3 items collect to the sequential result.
    with_timeout(LONG, || {
        let pool = pool(2);
        for chunk in [1, 7, 64, 1_000] {
            let c = chunk as u64;
            for len in [0, 1, c - 1, c, c + 1, 10 * c + 3] {
                let expected: Vec<u64> = (0..len).map(scramble).collect();
                let got = pool.map(0..len, scramble).chunk_size(chunk).collect_vec();
                assert_eq!(got, Ok(expected), "chunk {chunk}, length {len}");
            }
        }
    });
}

#[test]
fn try_map_returns_the_failing_item_and_reads_at_most_a_window_past_it() {
    // Over 100,000 items of exact length (large chunks, the default
    // read-ahead), one failing item anywhere — first, around chunk edges,
    // in the middle, last — is the error returned with its index, and the
    // input has been read at most DEFAULT_READ_AHEAD items past it. The
    // same holds for a panicking item, reported as Job.
    with_timeout(LONG, || {
        const N: u64 = 100_000;
        let pool = pool(2);
        for k in [0, 1, 1_023, 1_024, 1_025, 2_048, 50_000, N - 1] {
            for panics in [false, true] {
                let pulled = Arc::new(AtomicUsize::new(0));
                let count = Arc::clone(&pulled);
                let input = (0..N).inspect(move |_| {
                    count.fetch_add(1, Ordering::SeqCst);
                });
                let err = pool
                    .try_map(input, move |i| match i == k {
                        true if panics => panic!("item {i} exploded"),
                        true => Err(format!("bad item {i}")),
                        false => Ok(i),
                    })
                    .expect_err("item k fails");
                let expected = match panics {
                    true => TryMapError::Job {
                        index: k,
                        error: JobError::Panicked(format!("item {k} exploded").into()),
                    },
                    false => TryMapError::Failed {
                        index: k,
                        error: format!("bad item {k}"),
                    },
                };
                assert_eq!(err, expected);
                let pulled = pulled.load(Ordering::SeqCst);
                assert!(
                    pulled <= k as usize + 1 + DEFAULT_READ_AHEAD,
                    "pulled {pulled} items for a failure at {k}"
                );
            }
        }
    });
}

#[test]
fn maps_over_an_endless_input_stop_at_the_first_error() {
    // Over `0u64..`, whose size hint (usize::MAX, None) is no length:
    // try_map stops at the failing item having read at most a window
    // (four one-item chunks per worker) past it, and collect_vec returns
    // the first panic rather than sizing a Vec from usize::MAX.
    with_timeout(LONG, || {
        const K: u64 = 1_000;
        const WINDOW: usize = 8; // 1 item per chunk x 4 chunks x 2 workers
        let pool = pool(2);
        let pulled = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&pulled);
        let input = (0u64..).inspect(move |_| {
            count.fetch_add(1, Ordering::SeqCst);
        });
        let err = pool
            .try_map(input, |i| if i == K { Err("bad") } else { Ok(i) })
            .expect_err("item K fails");
        assert_eq!(
            err,
            TryMapError::Failed {
                index: K,
                error: "bad"
            }
        );
        let pulled = pulled.load(Ordering::SeqCst);
        assert!(pulled <= K as usize + 1 + WINDOW, "pulled {pulled} items");

        let got = pool
            .map(0u64.., |i| {
                assert!(i != 100, "item {i} exploded");
                i
            })
            .collect_vec();
        assert_eq!(got, Err(JobError::Panicked("item 100 exploded".into())));
    });
}

/// `0..len`, with a size hint that claims `claim` whatever it has left.
struct Claiming {
    next: u64,
    len: u64,
    claim: (usize, Option<usize>),
}

impl Iterator for Claiming {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        (self.next < self.len).then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.claim
    }
}

#[test]
fn a_lying_size_hint_still_gives_the_right_vec() {
    // Inputs whose size hints claim more items than they yield, fewer,
    // none, or absurdly many, still collect to exactly the sequential
    // result through try_map and collect_vec.
    with_timeout(LONG, || {
        let pool = pool(2);
        let cases = [
            (1_000, (2_000, Some(2_000))),
            (5_000, (10, Some(10))),
            (5_000, (0, Some(0))),
            (3_000, (0, None)),
            (100, (usize::MAX, Some(usize::MAX))),
            (20_000, (usize::MAX, None)),
        ];
        for (len, claim) in cases {
            let input = || Claiming {
                next: 0,
                len,
                claim,
            };
            let expected: Vec<u64> = (0..len).map(scramble).collect();
            let tried = pool.try_map(input(), |x| Ok::<_, ()>(scramble(x)));
            assert_eq!(tried, Ok(expected.clone()), "try_map claiming {claim:?}");
            let collected = pool.map(input(), scramble).collect_vec();
            assert_eq!(collected, Ok(expected), "collect_vec claiming {claim:?}");
        }
    });
}

#[test]
fn try_map_returns_a_failure_without_waiting_for_earlier_items() {
    // Two workers, 16 items in chunks of two: item 0 is held (and ignores
    // the map's context) while item 3, on the other worker, fails once
    // item 0 has started. try_map returns Failed { index: 3 } while item
    // 0 is still held: a failure is returned when it is seen, not after
    // every earlier item has finished.
    with_timeout(LONG, || {
        let pool = Arc::new(pool(2));
        let (started, release) = (Gate::new(), Gate::new());
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mapper = thread::spawn({
            let (pool, started, release) = (Arc::clone(&pool), started.clone(), release.clone());
            move || {
                let result = pool.try_map(0..16u64, move |i| match i {
                    0 => {
                        started.open();
                        release.wait();
                        Ok(i)
                    }
                    3 => {
                        started.wait();
                        Err("item 3 failed")
                    }
                    _ => Ok(i),
                });
                tx.send(result).expect("the test waits");
            }
        });
        let result = rx
            .recv_timeout(LONG)
            .expect("try_map returned while item 0 is held");
        assert_eq!(
            result,
            Err(TryMapError::Failed {
                index: 3,
                error: "item 3 failed"
            })
        );
        release.open();
        mapper.join().expect("mapper");
    });
}

#[test]
fn try_map_ctx_cancelled_by_its_closure_is_an_error() {
    // A closure that cancels the map's context, with no item failing,
    // makes try_map_ctx report the first item that did not complete as
    // Job { Cancelled } rather than return Ok with values missing.
    with_timeout(LONG, || {
        let pool = pool(2);
        let got = pool.try_map_ctx(0..100u32, |ctx, n| {
            if n == 10 {
                ctx.cancel();
            }
            Ok::<u32, String>(n)
        });
        assert_eq!(
            got,
            Err(TryMapError::Job {
                index: 10,
                error: JobError::Cancelled(Cancelled::Canceled)
            })
        );
    });
}
