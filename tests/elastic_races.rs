//! Races between a keep-alive pool's workers leaving and jobs arriving
//! (`keep_alive`): a job queued, or a submit waiting, as the last worker
//! decides to leave must still find a worker; and a job arriving as the
//! pool shrinks must not start a worker past the new size. Each test
//! repeats its race many times; a lost race shows as a hang, caught by
//! `with_timeout`, or as too many jobs running at once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use brigade::ThreadPool;

use common::{Gate, LONG, SplitMix64, with_timeout};

#[test]
fn rendezvous_submit_is_not_stranded_by_expiry() {
    // A submit waiting on a queue of capacity 0 is invisible to the queue check of a worker
    // leaving for being idle: the pool must still run it (it once blocked forever).
    with_timeout(LONG, || {
        let keep_alive = Duration::from_millis(1);
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(0)
            .keep_alive(keep_alive)
            .thread_name("rdvexp")
            .build()
            .expect("valid settings");
        let mut rng = SplitMix64(0x5EED);
        for _ in 0..1500 {
            // Submit around the moment the worker's keep-alive runs out.
            thread::sleep(Duration::from_micros(700 + rng.below(600)));
            let handle = pool.submit(|_ctx| 7).expect("an open pool takes the job");
            assert_eq!(handle.join().ok(), Some(7));
        }
        pool.join();
    });
}

#[test]
fn a_job_arriving_as_the_pool_shrinks_grows_it_only_to_the_new_size() {
    // Six busy workers, submits that find no free worker (each asks to
    // start one), and a shrink to three: the three asked to leave finish
    // their jobs first, so six jobs may run at once, never more. A submit
    // that read the growth cap (six) before the shrink and the size after
    // it (three) once started workers on top of the three kept and the
    // three still leaving.
    with_timeout(LONG, || {
        for round in 0..40 {
            let most = shrink_under_submits(round);
            assert!(
                most <= 6,
                "round {round}: {most} jobs ran at once on 6 workers, shrinking to 3"
            );
        }
    });
}

/// One round of the test above; returns the most jobs that ran at once.
fn shrink_under_submits(round: usize) -> usize {
    let pool = ThreadPool::builder()
        .workers(6)
        .keep_alive(LONG)
        .queue_capacity(100_000)
        .thread_name(format!("shrgrow{round}"))
        .build()
        .expect("valid settings");
    let (running, most, open) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Gate::new(),
    );
    let job = || {
        let (running, most, open) = (Arc::clone(&running), Arc::clone(&most), open.clone());
        move || {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            open.wait();
            running.fetch_sub(1, Ordering::SeqCst);
        }
    };
    for _ in 0..6 {
        pool.execute(job()).expect("an open pool takes the job");
    }
    while running.load(Ordering::SeqCst) < 6 {
        thread::yield_now();
    }
    let shrunk = AtomicBool::new(false);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !shrunk.load(Ordering::SeqCst) {
                    let _ = pool.try_execute(job());
                }
            });
        }
        thread::sleep(Duration::from_micros(50));
        pool.set_workers(3).expect("3 workers");
        shrunk.store(true, Ordering::SeqCst);
    });
    // Time for a worker started past the size to take a queued job.
    thread::sleep(Duration::from_millis(5));
    open.open();
    pool.shutdown_now();
    most.load(Ordering::SeqCst)
}
