//! Races between a keep-alive pool's workers leaving and jobs arriving
//! (`keep_alive`): a job queued, or a submit waiting, as the last worker
//! decides to leave must still find a worker. Each test repeats its race
//! many times around the keep-alive's end; a lost race shows as a hang,
//! caught by `with_timeout`.

mod common;

use std::thread;
use std::time::Duration;

use brigade::ThreadPool;

use common::{LONG, SplitMix64, with_timeout};

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
