//! `BRIGADE_WORKERS`: the environment variable that overrides
//! `Sizing::CpuBound`.
//!
//! This file holds a single test because it changes the process
//! environment, which is not safe while other threads read it.

mod common;

use brigade::sizing::{self, ENV_WORKERS};
use brigade::{Sizing, SizingError, ThreadPool};

use common::{LONG, with_timeout};

/// Sets or removes `BRIGADE_WORKERS`.
#[allow(
    unsafe_code,
    reason = "set_var/remove_var are unsafe in edition 2024; this file has one test"
)]
fn set_env(value: Option<&str>) {
    // SAFETY: this test binary runs a single test, and no thread it started
    // (nor any pool's worker) reads or writes the environment meanwhile.
    unsafe {
        match value {
            Some(value) => std::env::set_var(ENV_WORKERS, value),
            None => std::env::remove_var(ENV_WORKERS),
        }
    }
}

#[test]
fn brigade_workers_overrides_cpu_bound() {
    // BRIGADE_WORKERS sets the size of CpuBound pools (the default), a bad
    // value is a build error naming it, and without it CpuBound is the CPU
    // count.
    assert_eq!(ENV_WORKERS, "BRIGADE_WORKERS");
    let saved = std::env::var(ENV_WORKERS).ok();

    set_env(None);
    let cpus = sizing::cpu_bound();
    set_env(Some("3"));
    assert_eq!(Sizing::CpuBound.workers(), Ok(3));
    // The helpers honour it too, as GOMAXPROCS users expect.
    assert_eq!(sizing::cpu_bound(), 3);
    assert_eq!(sizing::mixed(), 6);
    assert_eq!(Sizing::Mixed.workers(), Ok(6));
    let pool = ThreadPool::builder()
        .sizing(Sizing::CpuBound)
        .build()
        .expect("build");
    assert_eq!(pool.stats().workers, 3);
    with_timeout(LONG, move || pool.join());
    let pool = ThreadPool::builder().build().expect("build");
    assert_eq!(pool.stats().workers, 3, "CpuBound is the default sizing");
    with_timeout(LONG, move || pool.join());

    set_env(Some(" 5 "));
    assert_eq!(Sizing::CpuBound.workers(), Ok(5));

    // Fixed sizes ignore the variable.
    assert_eq!(Sizing::Fixed(2).workers(), Ok(2));

    for bad in ["0", "many", "-3", ""] {
        set_env(Some(bad));
        assert_eq!(
            Sizing::CpuBound.workers(),
            Err(SizingError::InvalidEnv(bad.to_owned()))
        );
        // The helper cannot fail: it falls back to the CPU count.
        assert_eq!(sizing::cpu_bound(), cpus);
        let err = ThreadPool::builder().build().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("BRIGADE_WORKERS must be a positive integer, got {bad:?}")
        );
    }
    set_env(Some("many"));
    assert_eq!(
        ThreadPool::builder().build().unwrap_err().to_string(),
        r#"BRIGADE_WORKERS must be a positive integer, got "many""#
    );
    // An ErrGroup sizes itself by its limit, never by the variable.
    let group = brigade::ErrGroup::<String>::new(&brigade::Context::new());
    group
        .spawn(|_ctx| Ok(()))
        .map_err(|e| e.kind())
        .expect("spawn");
    assert_eq!(with_timeout(LONG, move || group.wait()), Ok(()));

    set_env(None);
    assert_eq!(Sizing::CpuBound.workers(), Ok(sizing::cpu_bound()));

    set_env(saved.as_deref());
}
