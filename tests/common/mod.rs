//! Helpers shared by the integration tests: bounded waits, gates and
//! latches for ordering threads, a bounded `block_on` that fails on a lost
//! wake-up, a drop counter, and thread counts read from `/proc/self/task`.
#![allow(
    dead_code,
    reason = "each test file uses a different subset of these helpers"
)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::{Condvar, Mutex};

/// The generous bound on every wait that should end almost at once: long
/// enough for a loaded CI machine, short enough that a bug fails the test
/// instead of hanging it.
pub(crate) const LONG: Duration = Duration::from_secs(30);

/// Runs `f` on its own thread and returns its value, or panics if it has not
/// finished within `limit` (so a deadlock fails the test instead of hanging
/// CI). A panic inside `f` is resumed on the caller.
pub(crate) fn with_timeout<T, F>(limit: Duration, f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = crossbeam_channel::bounded(1);
    // Keep the test's name on the thread, so a failure names the test.
    let name = thread::current()
        .name()
        .unwrap_or("with_timeout")
        .to_owned();
    let handle = thread::Builder::new()
        .name(name)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawn the with_timeout thread");
    match rx.recv_timeout(limit) {
        Ok(value) => {
            handle
                .join()
                .expect("the with_timeout thread sent its value");
            value
        }
        Err(RecvTimeoutError::Disconnected) => match handle.join() {
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(()) => unreachable!("the thread either sends or panics"),
        },
        Err(RecvTimeoutError::Timeout) => {
            panic!("the test did not finish within {limit:?}: a hang or a deadlock")
        }
    }
}

/// Polls `cond` every millisecond until it holds or `timeout` passes;
/// returns whether it held. For conditions that become true eventually
/// (thread counts, counters), never for ordering events.
pub(crate) fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return cond();
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// The smallest executor, std only: polls `future` on this thread and
/// parks between polls until its waker (a [`Wake`] that unparks this
/// thread) is woken. Panics if the future is pending for [`LONG`] with its
/// waker never woken — naming a lost wake-up if one more poll finds it
/// ready, a hang otherwise (at the caller's line).
#[track_caller]
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark {
        thread: thread::Thread,
        woken: AtomicBool,
    }
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.woken.store(true, Ordering::SeqCst);
            self.thread.unpark();
        }
    }
    let unpark = Arc::new(Unpark {
        thread: thread::current(),
        woken: AtomicBool::new(false),
    });
    let waker = Waker::from(Arc::clone(&unpark));
    let mut cx = TaskContext::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        let deadline = Instant::now() + LONG;
        // Spurious unparks (and unrelated ones) only cost a look at `woken`.
        while !unpark.woken.swap(false, Ordering::SeqCst) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let late = future.as_mut().poll(&mut cx).is_ready();
                panic!(
                    "block_on: pending for {LONG:?} and never woken: {}",
                    if late {
                        "a lost wake-up (it was ready when polled again)"
                    } else {
                        "a hang"
                    }
                );
            }
            thread::park_timeout(left);
        }
    }
}

/// A one-shot gate: [`wait`](Gate::wait) blocks until someone calls
/// [`open`](Gate::open). Clones share the gate.
#[derive(Clone, Debug)]
pub(crate) struct Gate {
    tx: Arc<Mutex<Option<Sender<()>>>>,
    rx: Receiver<()>,
}

impl Gate {
    pub(crate) fn new() -> Self {
        let (tx, rx) = crossbeam_channel::bounded(0);
        Self {
            tx: Arc::new(Mutex::new(Some(tx))),
            rx,
        }
    }

    /// Opens the gate for every waiter, now and later.
    pub(crate) fn open(&self) {
        self.tx.lock().take();
    }

    /// Waits for the gate to open; panics if it stays shut for [`LONG`].
    pub(crate) fn wait(&self) {
        match self.rx.recv_timeout(LONG) {
            Err(RecvTimeoutError::Disconnected) => {}
            Err(RecvTimeoutError::Timeout) => panic!("the gate was not opened within {LONG:?}"),
            Ok(()) => unreachable!("nobody sends on a gate"),
        }
    }
}

/// A count-down latch: [`wait`](Latch::wait) blocks until
/// [`count_down`](Latch::count_down) was called `n` times.
#[derive(Debug)]
pub(crate) struct Latch {
    count: Mutex<usize>,
    zero: Condvar,
}

impl Latch {
    pub(crate) fn new(n: usize) -> Arc<Self> {
        Arc::new(Self {
            count: Mutex::new(n),
            zero: Condvar::new(),
        })
    }

    pub(crate) fn count_down(&self) {
        let mut count = self.count.lock();
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.zero.notify_all();
        }
    }

    /// Waits until the count reaches zero; returns `false` if `timeout`
    /// passed first.
    pub(crate) fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut count = self.count.lock();
        while *count > 0 {
            if self.zero.wait_until(&mut count, deadline).timed_out() {
                return *count == 0;
            }
        }
        true
    }

    /// Waits until the count reaches zero; panics after [`LONG`].
    pub(crate) fn wait(&self) {
        assert!(
            self.wait_timeout(LONG),
            "the latch did not reach zero within {LONG:?}"
        );
    }
}

/// Counts its own drops in a shared counter, to prove values are dropped
/// exactly once.
#[derive(Debug)]
pub(crate) struct DropCounter(pub(crate) Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The names (`comm`) of this process's live threads. A thread that exits
/// while the directory is read is skipped.
pub(crate) fn thread_names() -> Vec<String> {
    let tasks = std::fs::read_dir("/proc/self/task").expect("read /proc/self/task");
    tasks
        .filter_map(|task| {
            let path = task.ok()?.path().join("comm");
            let comm = std::fs::read_to_string(path).ok()?;
            Some(comm.trim_end_matches('\n').to_owned())
        })
        .collect()
}

/// How many live threads are named `{prefix}-…`, as brigade names its
/// workers. Linux keeps only the first 15 bytes of a name, so keep prefixes
/// short and unique per test.
pub(crate) fn threads_named(prefix: &str) -> usize {
    let want = format!("{prefix}-");
    thread_names()
        .iter()
        .filter(|name| name.starts_with(&want))
        .count()
}

/// How many threads this process has.
pub(crate) fn task_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .count()
}

/// Starts a job on `pool` that signals `started` and then holds its worker
/// until `gate` opens; returns once it is running.
pub(crate) fn occupy_worker(pool: &brigade::ThreadPool, gate: &Gate) -> brigade::JobHandle<()> {
    let (started_tx, started_rx) = crossbeam_channel::bounded(1);
    let gate = gate.clone();
    let handle = pool
        .submit(move |_ctx: &brigade::Context| {
            started_tx.send(()).expect("the test waits for the start");
            gate.wait();
        })
        .expect("the pool accepts the blocker");
    started_rx
        .recv_timeout(LONG)
        .expect("the blocker started running");
    handle
}

/// Whether the live thread named exactly `name` is asleep in the kernel
/// (state `S` in `/proc/self/task/*/stat`), as a thread parked on a lock or
/// a channel is. For eventually-true conditions with [`wait_until`]: "the
/// submitter has blocked".
pub(crate) fn thread_sleeping(name: &str) -> bool {
    let tasks = std::fs::read_dir("/proc/self/task").expect("read /proc/self/task");
    tasks.filter_map(Result::ok).any(|task| {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end_matches('\n') != name {
            return false;
        }
        // `stat` reads "tid (comm) S …"; the state follows the last ')'.
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('S'))
    })
}

/// A small deterministic PRNG (SplitMix64), so randomised tests need no
/// dependency and every seed replays exactly.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (`bound` > 0); the slight modulo bias does not
    /// matter for test latencies.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}
