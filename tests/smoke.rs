//! Smoke test.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use brigade::{Cancelled, Context, JobError, ThreadPool};

#[test]
fn smoke() {
    let pool = ThreadPool::builder().workers(2).build().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    for _ in 0..1000 {
        let c = count.clone();
        pool.execute(move || {
            c.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    }
    let h = pool.submit(|_| 42).unwrap();
    assert_eq!(h.join(), Ok(42));
    let p = pool.submit(|_| -> u8 { panic!("boom") }).unwrap();
    assert_eq!(p.join(), Err(JobError::Panicked("boom".into())));
    pool.join();
    assert_eq!(count.load(Ordering::Relaxed), 1000);
}

#[test]
fn deadline_fires_done() {
    let ctx = Context::new().with_timeout(Duration::from_millis(20));
    let rx = ctx.done();
    assert!(rx.recv_timeout(Duration::from_secs(5)).is_err());
    assert_eq!(ctx.reason(), Some(Cancelled::DeadlineExceeded));
}
