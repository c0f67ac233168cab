//! Keyed jobs: one at a time per key, in submission order, without
//! head-of-line blocking.

use std::collections::HashMap;
use std::sync::{Arc, Barrier};

use parking_lot::Mutex;
use std::time::Duration;

use brigade::{JobError, ThreadPool};
use crossbeam_channel::bounded;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn jobs_of_one_key_run_in_order_and_one_at_a_time() {
    let pool = ThreadPool::builder().workers(4).build().unwrap();
    let seen: Arc<Mutex<HashMap<u32, Vec<u32>>>> = Arc::default();
    let running: Arc<Mutex<HashMap<u32, bool>>> = Arc::default();
    for n in 0..2_000u32 {
        let key = n % 10;
        let (seen, running) = (Arc::clone(&seen), Arc::clone(&running));
        pool.keyed(key)
            .execute(move || {
                assert!(
                    !running.lock().insert(key, true).unwrap_or(false),
                    "two jobs of key {key} at once"
                );
                seen.lock().entry(key).or_default().push(n);
                running.lock().insert(key, false);
            })
            .unwrap();
    }
    let report = pool.shutdown_timeout(WAIT);
    assert!(report.drained);
    assert_eq!(report.completed, 2_000);
    for (key, order) in seen.lock().iter() {
        let expected: Vec<u32> = (0..2_000).filter(|n| n % 10 == *key).collect();
        assert_eq!(order, &expected, "key {key}");
    }
}

#[test]
fn a_blocked_key_does_not_hold_up_other_keys() {
    let pool = ThreadPool::builder().workers(2).build().unwrap();
    let (release, gate) = bounded::<()>(0);
    let (started, on_start) = bounded(1);
    pool.keyed("slow")
        .execute(move || {
            started.send(()).unwrap();
            gate.recv_timeout(WAIT).unwrap();
        })
        .unwrap();
    on_start.recv_timeout(WAIT).unwrap();
    // Queued behind the blocked one: must not take the other worker.
    let behind = pool.keyed("slow").submit(|_| "behind").unwrap();
    let (done, finished) = bounded(100);
    for key in 0..100 {
        let done = done.clone();
        pool.keyed(key)
            .execute(move || done.send(key).unwrap())
            .unwrap();
    }
    for _ in 0..100 {
        finished
            .recv_timeout(WAIT)
            .expect("other keys run while one is blocked");
    }
    assert!(!behind.is_finished());
    release.send(()).unwrap();
    assert_eq!(behind.join(), Ok("behind"));
}

#[test]
fn joining_a_later_job_of_the_own_key_fails_instead_of_hanging() {
    let pool = Arc::new(ThreadPool::builder().workers(2).build().unwrap());
    let inner = Arc::clone(&pool);
    let outer = pool
        .keyed(7)
        .submit(move |_| {
            let later = inner.keyed(7).submit(|_| 1).unwrap();
            later.join()
        })
        .unwrap();
    assert_eq!(outer.join(), Ok(Err(JobError::QueuedBehindCaller)));
}

#[test]
fn a_panicking_keyed_job_releases_its_key() {
    let pool = ThreadPool::builder().workers(2).build().unwrap();
    let boom = pool.keyed(1).submit(|_| -> u32 { panic!("boom") }).unwrap();
    let next = pool.keyed(1).submit(|_| 2).unwrap();
    assert!(matches!(boom.join(), Err(JobError::Panicked(_))));
    assert_eq!(next.join(), Ok(2));
}

#[test]
fn join_runs_every_keyed_job_even_behind_a_slow_one() {
    let pool = ThreadPool::builder().workers(3).build().unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let count = Arc::new(Mutex::new(0));
    let b = Arc::clone(&barrier);
    pool.keyed("a")
        .execute(move || {
            b.wait();
        })
        .unwrap();
    for _ in 0..50 {
        let count = Arc::clone(&count);
        pool.keyed("a").execute(move || *count.lock() += 1).unwrap();
    }
    barrier.wait();
    pool.join();
    assert_eq!(*count.lock(), 50);
}
