//! Per-worker state (`WorkerPoolBuilder::build_with_state`): built once
//! per worker on its own thread, fresh after a panic, dropped on the
//! worker's own thread when it leaves; a failing initialiser is reported
//! and not retried, and `build` fails only if no worker could start.

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::thread;

use brigade::{BuildError, JobError, WorkerPool};
use common::{LONG, threads_named, wait_until, with_timeout};
use parking_lot::Mutex;

/// What happened to the states: the indexes built, and the threads each
/// state was dropped on.
#[derive(Default)]
struct Journal {
    built: Vec<usize>,
    dropped_on: Vec<String>,
}

/// A worker's state: counts its jobs, and notes where it is dropped.
struct Counter {
    jobs: u64,
    journal: Arc<Mutex<Journal>>,
}

impl Drop for Counter {
    fn drop(&mut self) {
        let here = thread::current().name().unwrap_or("unnamed").to_owned();
        self.journal.lock().dropped_on.push(here);
    }
}

fn counting_init(
    journal: &Arc<Mutex<Journal>>,
) -> impl Fn(usize) -> Result<Counter, Infallible> + Send + Sync + 'static {
    let journal = Arc::clone(journal);
    move |index| {
        journal.lock().built.push(index);
        Ok(Counter {
            jobs: 0,
            journal: Arc::clone(&journal),
        })
    }
}

#[test]
fn ten_thousand_jobs_on_four_workers_build_four_states() {
    with_timeout(LONG, || {
        let journal = Arc::default();
        let pool = WorkerPool::builder()
            .workers(4)
            .thread_name("ws-four")
            .build_with_state(
                counting_init(&journal),
                |_ctx, state: &mut Counter, n: u64| {
                    state.jobs += 1;
                    n
                },
            )
            .expect("valid pool");
        let results = pool.results().clone();
        let consumer = thread::spawn(move || {
            results
                .iter()
                .map(|out| out.result.expect("ran"))
                .sum::<u64>()
        });
        for n in 0..10_000 {
            pool.submit(n).expect("accepted");
        }
        pool.close();
        let sum = consumer.join().expect("the consumer");
        assert_eq!(sum, (0..10_000).sum());
        assert!(pool.join().is_empty());
        let journal = journal.lock();
        let mut built = journal.built.clone();
        built.sort_unstable();
        assert_eq!(built, [0, 1, 2, 3], "one state per worker");
        assert_eq!(journal.dropped_on.len(), 4, "every state dropped");
        for name in &journal.dropped_on {
            assert!(
                name.starts_with("ws-four-"),
                "dropped on {name}, not its worker"
            );
        }
    });
}

#[test]
fn a_worker_replaced_after_a_panic_builds_fresh_state_and_drops_the_old() {
    with_timeout(LONG, || {
        let journal = Arc::default();
        let pool = WorkerPool::builder()
            .workers(1)
            .thread_name("ws-panic")
            .build_with_state(
                counting_init(&journal),
                |_ctx, state: &mut Counter, n: u32| {
                    state.jobs += 1;
                    assert!(n != 1, "job 1 leaves its state half-updated");
                    state.jobs
                },
            )
            .expect("valid pool");
        for n in 0..3 {
            pool.submit(n).expect("accepted");
        }
        pool.close();
        let results: Vec<_> = pool.results().iter().map(|out| out.result).collect();
        assert_eq!(results[0], Ok(1));
        assert!(
            matches!(results[1], Err(JobError::Panicked(_))),
            "{:?}",
            results[1]
        );
        assert_eq!(
            results[2],
            Ok(1),
            "the replacement started from a fresh state"
        );
        assert!(pool.join().is_empty());
        let journal = journal.lock();
        assert_eq!(journal.built, [0, 0], "built again for the replacement");
        assert_eq!(journal.dropped_on.len(), 2);
        assert!(
            journal
                .dropped_on
                .iter()
                .all(|name| name.starts_with("ws-panic-"))
        );
    });
}

#[test]
fn a_shrunk_worker_drops_its_state_on_its_own_thread() {
    with_timeout(LONG, || {
        let journal: Arc<Mutex<Journal>> = Arc::default();
        let pool = WorkerPool::builder()
            .workers(3)
            .thread_name("ws-shrink")
            .build_with_state(
                counting_init(&journal),
                |_ctx, _state: &mut Counter, n: u8| n,
            )
            .expect("valid pool");
        assert!(wait_until(LONG, || journal.lock().built.len() == 3));
        pool.set_workers(1).expect("a valid size");
        assert!(wait_until(LONG, || journal.lock().dropped_on.len() == 2));
        assert!(
            journal
                .lock()
                .dropped_on
                .iter()
                .all(|name| name.starts_with("ws-shrink-"))
        );
        pool.submit(7).expect("accepted");
        assert_eq!(
            pool.results().recv_timeout(LONG).map(|out| out.result),
            Ok(Ok(7))
        );
        pool.close();
        assert!(pool.join().is_empty());
        assert_eq!(journal.lock().dropped_on.len(), 3);
    });
}

#[test]
fn build_fails_when_no_worker_can_build_its_state() {
    with_timeout(LONG, || {
        let failed = WorkerPool::builder()
            .workers(3)
            .thread_name("ws-fail")
            .build_with_state(
                |index| Err::<(), _>(format!("no connection for worker {index}")),
                |_ctx, _state: &mut (), n: u8| n,
            )
            .expect_err("no worker could start");
        assert!(
            matches!(&failed, BuildError::WorkerInit(why) if why.starts_with("no connection for worker"))
        );
        assert!(
            failed
                .to_string()
                .starts_with("no worker could start: its state initialiser failed: no connection")
        );
        assert!(
            wait_until(LONG, || threads_named("ws-fail") == 0),
            "threads left behind"
        );

        let panicked = WorkerPool::builder()
            .workers(1)
            .build_with_state(
                |_index| -> Result<(), Infallible> { panic!("no config file") },
                |_ctx, _state: &mut (), n: u8| n,
            )
            .expect_err("the initialiser panicked");
        assert_eq!(
            panicked.to_string(),
            "no worker could start: its state initialiser failed: the initialiser panicked: no config file"
        );
    });
}

#[test]
fn a_worker_that_cannot_start_is_not_retried_and_the_others_run_every_job() {
    with_timeout(LONG, || {
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let tried = Arc::clone(&attempts);
        let pool = WorkerPool::builder()
            .workers(3)
            .build_with_state(
                move |index| {
                    tried.lock().push(index);
                    if index == 1 {
                        Err("worker 1 has no device")
                    } else {
                        Ok(index)
                    }
                },
                |_ctx, me: &mut usize, n: u32| (*me, n),
            )
            .expect("two workers could start");
        for n in 0..300 {
            pool.submit(n).expect("accepted");
        }
        pool.close();
        let outputs: Vec<(usize, u32)> = pool
            .results()
            .iter()
            .map(|out| out.result.expect("ran"))
            .collect();
        assert_eq!(outputs.len(), 300);
        assert!(
            outputs.iter().all(|(worker, _)| *worker != 1),
            "the failed worker ran a job"
        );
        assert!(pool.join().is_empty());
        let mut attempts = attempts.lock().clone();
        attempts.sort_unstable();
        assert_eq!(attempts, [0, 1, 2], "a failed start was retried");
    });
}

#[test]
fn a_first_worker_that_cannot_start_leaves_the_pool_to_the_others() {
    // Worker 0 fails at once, while the build may still be starting
    // workers 1 and 2: it is not the pool's last worker, so the pool is
    // not cancelled, and the other two run every job.
    with_timeout(LONG, || {
        for _ in 0..20 {
            let pool = WorkerPool::builder()
                .workers(3)
                .build_with_state(
                    |index| {
                        if index == 0 {
                            Err("worker 0 has no device")
                        } else {
                            Ok(index)
                        }
                    },
                    |_ctx, me: &mut usize, n: u32| (*me, n),
                )
                .expect("two workers could start");
            for n in 0..30 {
                pool.submit(n).expect("accepted: the pool is not cancelled");
            }
            pool.close();
            let ran = pool
                .results()
                .iter()
                .filter(|out| out.result.is_ok())
                .count();
            assert_eq!(ran, 30);
            assert!(pool.join().is_empty());
        }
    });
}
