//! The seed's `TestPoolCancelsOnContext`, ported: cancelling a pool's parent
//! context while a producer is submitting stops the producer at its next
//! submit and ends every thread the pool started.
//!
//! This file holds a single test on purpose: it compares the process's whole
//! thread count before and after, which other tests' threads would disturb.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use brigade::{Cancelled, Context, JobError, SubmitError, ThreadPool};

use common::{LONG, task_count, thread_names, threads_named, wait_until, with_timeout};

const JOBS: usize = 1000;
const CANCEL_AFTER: usize = 100;
const PREFIX: &str = "coc";

#[test]
fn pool_cancels_on_context() {
    // Cancelling the parent context midway stops the producer at the first
    // SubmitError::Cancelled, accounts for every accepted job, and leaves no
    // thread of the pool behind.
    with_timeout(LONG, || {
        // The deadline timer thread is process-wide and starts lazily: start
        // it before the baseline so it is not mistaken for a leak.
        let warm = Context::new().with_timeout(Duration::from_secs(3600));
        let _ = warm.done();
        drop(warm);
        assert_eq!(threads_named(PREFIX), 0);
        let baseline = task_count();

        let parent = Context::new();
        let pool = ThreadPool::builder()
            .workers(4)
            .queue_capacity(8)
            .thread_name(PREFIX)
            .context(&parent)
            .build()
            .expect("build");
        assert!(wait_until(LONG, || threads_named(PREFIX) == 4));

        let ran = Arc::new(AtomicUsize::new(0));
        let (halfway_tx, halfway_rx) = crossbeam_channel::bounded(1);
        let (accepted, handles, stopped_by) = thread::scope(|s| {
            s.spawn(|| {
                halfway_rx
                    .recv_timeout(LONG)
                    .expect("the producer reached the cancel point");
                parent.cancel();
            });
            let producer = s.spawn(|| {
                let mut handles = Vec::new();
                let mut stopped_by = None;
                for i in 0..JOBS {
                    let ran = Arc::clone(&ran);
                    // The first jobs are quick; the later ones wait on their
                    // context, so the producer soon blocks on the full queue
                    // and only the cancel can wake it.
                    let work = if i < CANCEL_AFTER {
                        Duration::from_millis(1)
                    } else {
                        LONG
                    };
                    let job = move |ctx: &Context| {
                        ran.fetch_add(1, Ordering::SeqCst);
                        ctx.sleep(work)
                    };
                    match pool.submit(job) {
                        Ok(handle) => handles.push(handle),
                        Err(err) => {
                            stopped_by = Some(err);
                            break;
                        }
                    }
                    if i + 1 == CANCEL_AFTER {
                        halfway_tx.send(()).expect("the canceller waits");
                    }
                }
                (handles.len(), handles, stopped_by)
            });
            producer.join().expect("the producer finished")
        });

        // At most 4 running and 8 queued past the cancel point.
        assert!(
            (CANCEL_AFTER..=CANCEL_AFTER + 12).contains(&accepted),
            "accepted {accepted} jobs"
        );
        assert!(
            matches!(stopped_by, Some(SubmitError::Cancelled(_))),
            "the producer stopped on {stopped_by:?}"
        );
        let mut completed = 0;
        for handle in handles {
            match handle.join() {
                Ok(Ok(())) => completed += 1,
                Err(JobError::Cancelled(Cancelled::Canceled)) => {}
                other => panic!("unexpected job result {other:?}"),
            }
        }
        assert_eq!(pool.stats().submitted, accepted as u64);

        // Cancellation alone ends the workers; dropping the pool joins them.
        assert!(
            wait_until(LONG, || threads_named(PREFIX) == 0),
            "workers still alive after cancel: {:?}",
            thread_names()
        );
        assert!(wait_until(LONG, || pool.stats().workers == 0));
        let stats = pool.stats();
        assert_eq!(
            stats.completed + stats.failed + stats.cancelled,
            stats.submitted,
            "{stats}"
        );
        assert_eq!(
            stats.completed + stats.failed,
            ran.load(Ordering::SeqCst) as u64,
            "every job that started is counted as run"
        );
        assert_eq!(stats.completed, completed);
        drop(pool);
        assert!(
            wait_until(LONG, || task_count() == baseline),
            "threads before: {baseline}, after: {} ({:?})",
            task_count(),
            thread_names()
        );
    });
}
