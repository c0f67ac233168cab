//! Where a job panicked: every front door's `Panic` carries the location
//! the panic hook saw, a hook installed before the first pool keeps being
//! called, and a hook installed after it leaves later panics without a
//! location — never with a wrong one.
//!
//! The panic hook is process-wide and installed in an order these checks
//! depend on, so this binary holds a single test.

mod common;

use std::collections::HashMap;
use std::panic::{self, catch_unwind};
use std::sync::Arc;

use brigade::{
    Context, ErrGroup, GroupError, JobError, Panic, Pipeline, PipelineError, StageError,
    ThreadPool, TryMapError, WorkerPool,
};
use common::{LONG, with_timeout};
use parking_lot::Mutex;

/// What the program's own hook saw: each panic's message and location.
type Seen = Arc<Mutex<HashMap<String, String>>>;

/// Installs a silent hook that records every panic it is called for.
fn install_recording_hook() -> Seen {
    let seen = Seen::default();
    let record = Arc::clone(&seen);
    panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info.location().map(ToString::to_string).unwrap_or_default();
        record.lock().insert(message, at);
    }));
    seen
}

/// `panic` has the message `message` and the location the program's hook
/// saw for it.
fn assert_located(panic: &Panic, message: &str, seen: &Seen) {
    assert_eq!(panic.message(), message);
    let expected = seen.lock().get(message).cloned();
    let expected = expected.unwrap_or_else(|| panic!("the program's hook never saw {message:?}"));
    let location = panic
        .location()
        .unwrap_or_else(|| panic!("{message:?} has no location"));
    assert_eq!(location.to_string(), expected);
    assert_eq!(location.file(), file!());
    assert_eq!(panic.to_string(), format!("{message} (at {expected})"));
}

#[test]
fn every_front_door_reports_where_the_job_panicked() {
    with_timeout(LONG, || {
        // The program's hook comes first; brigade's, installed when the
        // first pool starts, calls it.
        let seen = install_recording_hook();
        let pool = ThreadPool::builder()
            .workers(2)
            .build()
            .expect("valid pool");
        check_front_doors(&pool, &seen);

        pool.join();

        // A job that catches its own panic leaves a note on its worker
        // (the only one, so the next jobs run where the note is)...
        let pool = ThreadPool::builder()
            .workers(1)
            .build()
            .expect("valid pool");
        let caught_inside = pool
            .submit(|_ctx| catch_unwind(|| panic!("caught inside the job")).is_err())
            .expect("accepted");
        assert_eq!(caught_inside.join(), Ok(true));
        // ...and a hook installed now replaces brigade's: later panics have
        // no location, rather than that stale one.
        let _ = panic::take_hook();
        panic::set_hook(Box::new(|_| {}));
        for _ in 0..2 {
            let late = pool.submit(|_ctx| -> u8 { panic!("after the hook changed") });
            let Err(JobError::Panicked(panic)) = late.expect("accepted").join() else {
                panic!("the job did not panic")
            };
            assert_eq!(panic.message(), "after the hook changed");
            assert_eq!(panic.location(), None);
            assert_eq!(panic.to_string(), "after the hook changed");
        }
        let _ = panic::take_hook();
        pool.join();
    });
}

fn check_front_doors(pool: &ThreadPool, seen: &Seen) {
    let handle = pool
        .submit(|_ctx| -> u8 { panic!("from submit") })
        .expect("accepted");
    let Err(JobError::Panicked(panic)) = handle.join() else {
        panic!("submit")
    };
    assert_located(&panic, "from submit", seen);

    // Map items run in chunks on workers and are turned into results on
    // the consumer's thread: the location travels with the chunk.
    let mapped: Vec<_> = pool
        .map(
            0..64_u32,
            |n| if n == 40 { panic!("map item {n}") } else { n },
        )
        .chunk_size(8)
        .collect();
    let Err(JobError::Panicked(panic)) = &mapped[40] else {
        panic!("map")
    };
    assert_located(panic, "map item 40", seen);

    let tried = pool.try_map(0..64_u32, |n| {
        if n == 7 {
            panic!("try_map item {n}");
        }
        Ok::<u32, String>(n)
    });
    let Err(TryMapError::Job {
        error: JobError::Panicked(panic),
        ..
    }) = tried
    else {
        panic!("try_map")
    };
    assert_located(&panic, "try_map item 7", seen);

    let scoped = pool.scope(|s| s.spawn(|_ctx| -> u8 { panic!("from scope") }).join());
    let Err(JobError::Panicked(panic)) = scoped else {
        panic!("scope")
    };
    assert_located(&panic, "from scope", seen);

    let group = ErrGroup::<String>::new(&Context::new());
    group
        .spawn(|_ctx| panic!("from a group task"))
        .expect("accepted");
    let Err(GroupError::Panicked(panic)) = group.wait() else {
        panic!("errgroup")
    };
    assert_located(&panic, "from a group task", seen);

    let workers = WorkerPool::builder()
        .workers(1)
        .build(|_ctx, n: u32| -> u32 { panic!("worker pool job {n}") })
        .expect("valid pool");
    workers.submit(3).expect("accepted");
    let out = workers.results().recv_timeout(LONG).expect("an output");
    let Err(JobError::Panicked(panic)) = out.result else {
        panic!("worker pool")
    };
    assert_located(&panic, "worker pool job 3", seen);
    assert!(workers.join().is_empty());

    let piped = Pipeline::<u32, u32, String>::new(&Context::new())
        .stage("located", 1, |_ctx, n: u32| -> Result<u32, String> {
            panic!("stage item {n}")
        })
        .build()
        .expect("valid pipeline")
        .run([5]);
    let Err(PipelineError::Stage(failure)) = piped else {
        panic!("pipeline")
    };
    let StageError::Panicked(panic) = failure.error else {
        panic!("stage error")
    };
    assert_located(&panic, "stage item 5", seen);
}
