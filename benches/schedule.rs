//! Issue #20's accuracy and scale criteria for delayed and periodic jobs
//! (`ThreadPool::schedule_at` and `ThreadPool::schedule`), measured on an
//! otherwise idle pool of four workers. A plain `main` that prints a
//! report; no criterion.
//!
//! 1. **Delayed-job start latency**: 1,000 delayed jobs, each returning
//!    the instant it started; lateness = start − due. Two plans: *spread*
//!    (200 batches of 5, a batch every 4 ms, each job due 1–20 ms after it
//!    is scheduled) and *same instant* (125 groups of 8 jobs due at one
//!    instant 1–20 ms ahead, a group every 8 ms). Beside each, the floor
//!    the OS gives: a hand-written timer thread in the shape of brigade's
//!    (a heap under a parking_lot mutex, `Condvar::wait_until` the first
//!    due time) fed the same plan, its lateness when it wakes, and that of
//!    four threads it hands each due time to through a crossbeam channel.
//! 2. **Schedules**: `Every::rate(10 ms)` for 10 s: the jitter of run `k`
//!    against `first due + k × period`, and the drift (the slope of a
//!    least-squares line through the jitters). `Every::delay(10 ms)`: the
//!    lateness of each run against the previous run's end + period.
//!    Beside each, over the same seconds, the floor: a thread of its own
//!    waiting on a condvar for each tick of a grid half a period off, and
//!    a second thread it hands each tick to.
//! 3. **Memory per pending delayed job**: a counting global allocator
//!    (requested bytes, live blocks by size) around 100,000 delayed jobs
//!    with a zero-sized closure due in an hour; then after cancelling them
//!    all, and after dropping their handles; the pool's shutdown report
//!    then counts what was still on the timer.
//! 4. **Add and cancel cost**: `schedule_at` and `JobHandle::cancel` for
//!    n = 1,000 / 10,000 / 100,000 jobs due in random order 1–2 h ahead,
//!    ns per operation; beside them, the timer's data structure alone (a
//!    `BTreeMap` keyed as the timer's, insert and remove).
//!
//! ```text
//! cargo bench --bench schedule              # schedules run 10 s each
//! cargo bench --bench schedule -- --quick   # 2 s each, fewer repetitions
//! ```
//!
//! Run without `--bench` (as `cargo test --benches` runs it), it makes a
//! smoke pass of about a second, with every count cut down.

use std::any::Any;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::convert::Infallible;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use brigade::{Every, JobHandle, ThreadPool};
use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex};

/// Counts every byte the process has allocated and not freed.
#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

/// The counting allocator: `System`, plus the live requested bytes and,
/// while tracking is on, the live blocks by requested size.
#[allow(
    unsafe_code,
    reason = "a #[global_allocator] is an unsafe impl; every method forwards to System"
)]
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

    /// Sizes counted one by one; larger blocks share the last slot.
    pub(crate) const SIZES: usize = 4097;
    /// Requested bytes allocated and not yet freed.
    static LIVE: AtomicIsize = AtomicIsize::new(0);
    /// Blocks allocated minus blocks freed, by requested size, while
    /// [`TRACK`] is on.
    static BY_SIZE: [AtomicIsize; SIZES] = [const { AtomicIsize::new(0) }; SIZES];
    /// Whether [`BY_SIZE`] counts (off while timing, to keep it cheap).
    static TRACK: AtomicBool = AtomicBool::new(false);

    /// See the module docs.
    pub(crate) struct Counting;

    /// Notes a block of `size` bytes coming (`sign` 1) or going (-1).
    fn note(size: usize, sign: isize) {
        // ORDERING: Relaxed: counters read at quiet points, after the
        // threads that allocate have synchronised with the reader.
        LIVE.fetch_add(sign * size as isize, Relaxed);
        if TRACK.load(Relaxed) {
            BY_SIZE[size.min(SIZES - 1)].fetch_add(sign, Relaxed);
        }
    }

    // SAFETY: every method forwards its arguments unchanged to `System`,
    // whose contract is the same; the counters are plain atomics.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: the caller upholds `alloc`'s contract, System's too.
            let ptr = unsafe { System.alloc(layout) };
            if !ptr.is_null() {
                note(layout.size(), 1);
            }
            ptr
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: as for `alloc`.
            let ptr = unsafe { System.alloc_zeroed(layout) };
            if !ptr.is_null() {
                note(layout.size(), 1);
            }
            ptr
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` came from this allocator, that is from System,
            // with `layout`, as the caller guarantees.
            unsafe { System.dealloc(ptr, layout) };
            note(layout.size(), -1);
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: as for `dealloc`, and `new_size` is the caller's.
            let new = unsafe { System.realloc(ptr, layout, new_size) };
            if !new.is_null() {
                note(layout.size(), -1);
                note(new_size, 1);
            }
            new
        }
    }

    /// Requested bytes live now.
    pub(crate) fn live() -> isize {
        LIVE.load(Relaxed)
    }

    /// Turns counting by size on or off.
    pub(crate) fn track(on: bool) {
        TRACK.store(on, Relaxed);
    }

    /// Live blocks by requested size (counted while tracking was on), in
    /// an array rather than a `Vec`, so that a snapshot allocates nothing.
    pub(crate) fn by_size() -> [isize; SIZES] {
        std::array::from_fn(|size| BY_SIZE[size].load(Relaxed))
    }
}

/// How much to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `cargo bench --bench schedule`: schedules 10 s each.
    Full,
    /// `-- --quick`: schedules 2 s each, fewer repetitions.
    Quick,
    /// No `--bench` (`cargo test --benches`): every count cut down.
    Smoke,
}

impl Mode {
    /// The mode the command line asks for.
    fn from_args(args: &[String]) -> Self {
        let has = |flag: &str| args.iter().any(|arg| arg == flag);
        if has("--quick") {
            Self::Quick
        } else if has("--bench") {
            Self::Full
        } else {
            Self::Smoke
        }
    }

    /// How long each schedule runs.
    fn span(self) -> Duration {
        match self {
            Self::Full => Duration::from_secs(10),
            Self::Quick => Duration::from_secs(2),
            Self::Smoke => Duration::from_millis(200),
        }
    }

    /// Pending delayed jobs in the memory count.
    fn pending(self) -> usize {
        if self == Self::Smoke { 1_000 } else { 100_000 }
    }

    /// `(n, repetitions)` for the add and cancel costs.
    fn costs(self) -> &'static [(usize, usize)] {
        match self {
            Self::Full => &[(1_000, 9), (10_000, 7), (100_000, 5)],
            Self::Quick => &[(1_000, 5), (10_000, 3), (100_000, 3)],
            Self::Smoke => &[(1_000, 1)],
        }
    }
}

/// Workers in every pool of this bench.
const WORKERS: usize = 4;
/// The schedules' period.
const PERIOD: Duration = Duration::from_millis(10);

/// A small deterministic generator (xorshift64*), so that brigade and
/// the floor see the same due times.
struct Rng(u64);

impl Rng {
    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }

    /// A delay of 1 to 20 ms, to the microsecond.
    fn ahead(&mut self) -> Duration {
        Duration::from_micros(1_000 + self.below(19_001))
    }
}

/// Each job's due time and its lateness at its start, in nanoseconds.
type Samples = Vec<(Instant, i64)>;

/// How late `start` is for `due`, in nanoseconds (negative if early).
fn late(due: Instant, start: Instant) -> i64 {
    match start.checked_duration_since(due) {
        Some(late) => late.as_nanos() as i64,
        None => -(due.duration_since(start).as_nanos() as i64),
    }
}

/// Percentiles of signed nanosecond samples (nearest rank).
struct Summary {
    samples: Vec<i64>,
}

impl Summary {
    fn of(mut samples: Vec<i64>) -> Self {
        samples.sort_unstable();
        Self { samples }
    }

    /// The `p`-quantile, `0.0..=1.0`.
    fn at(&self, p: f64) -> i64 {
        let n = self.samples.len();
        let rank = ((p * n as f64).ceil() as usize).clamp(1, n.max(1));
        self.samples.get(rank - 1).copied().unwrap_or(0)
    }

    /// One line: count, p50 / p90 / p99 / max in µs, and how many
    /// samples are over 1 ms.
    fn row(&self, label: &str) -> String {
        let us = |ns: i64| ns as f64 / 1_000.0;
        let over = self.samples.iter().filter(|&&ns| ns > 1_000_000).count();
        format!(
            "  {label:<44} n={:<5} p50 {:>7.1}  p90 {:>7.1}  p99 {:>7.1}  max {:>7.1} µs  >1 ms: {over}",
            self.samples.len(),
            us(self.at(0.5)),
            us(self.at(0.9)),
            us(self.at(0.99)),
            us(self.at(1.0)),
        )
    }
}

/// A latency plan: groups of jobs, a group every `gap`, each job due
/// 1–20 ms after it is scheduled, or each group's jobs at one instant.
#[derive(Debug, Clone, Copy)]
struct Plan {
    groups: usize,
    per_group: usize,
    same_instant: bool,
    gap: Duration,
}

impl Plan {
    /// Jobs in the plan.
    fn jobs(&self) -> usize {
        self.groups * self.per_group
    }

    /// Calls `add` with each due time, a group at a time, `gap` apart.
    fn feed(&self, mut add: impl FnMut(Instant)) {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut next = Instant::now();
        for _ in 0..self.groups {
            let now = Instant::now();
            let shared = now + rng.ahead();
            for _ in 0..self.per_group {
                add(if self.same_instant {
                    shared
                } else {
                    now + rng.ahead()
                });
            }
            next += self.gap;
            thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    }
}

/// A pool of [`WORKERS`] threads, otherwise the defaults.
fn pool() -> ThreadPool {
    ThreadPool::builder()
        .workers(WORKERS)
        .build()
        .expect("brigade pool")
}

/// Each job's due time and lateness at its start, on a brigade pool.
fn brigade_latency(pool: &ThreadPool, plan: Plan) -> Samples {
    let mut jobs = Vec::with_capacity(plan.jobs());
    plan.feed(|at| {
        let handle = pool
            .schedule_at(at, |_ctx| Instant::now())
            .expect("schedule_at");
        jobs.push((at, handle));
    });
    jobs.into_iter()
        .map(|(at, handle)| (at, late(at, handle.join().expect("delayed job"))))
        .collect()
}

/// The floor: a minimal timer thread in the shape of brigade's.
#[derive(Default)]
struct Floor {
    state: Mutex<FloorState>,
    wake: Condvar,
}

/// What the floor's lock guards.
#[derive(Default)]
struct FloorState {
    due: BinaryHeap<Reverse<Instant>>,
    /// No more due times will come: exit once the heap is empty.
    last: bool,
    /// Each due time and the timer's lateness when it saw it due.
    fired: Samples,
}

impl Floor {
    /// Adds a due time, waking the thread if it is the new first.
    fn add(&self, at: Instant) {
        let mut state = self.state.lock();
        let first = state.due.peek().is_none_or(|Reverse(next)| at < *next);
        state.due.push(Reverse(at));
        if first {
            self.wake.notify_one();
        }
    }

    /// The thread: waits for each due time and hands it to `out`.
    fn run(&self, out: &Sender<Instant>) {
        let mut state = self.state.lock();
        loop {
            match state.due.peek().map(|Reverse(at)| *at) {
                Some(at) => {
                    let now = Instant::now();
                    if at > now {
                        let _ = self.wake.wait_until(&mut state, at);
                        continue;
                    }
                    state.due.pop();
                    state.fired.push((at, late(at, now)));
                    drop(state);
                    out.send(at).expect("floor workers");
                    state = self.state.lock();
                }
                None if state.last => return,
                None => self.wake.wait(&mut state),
            }
        }
    }
}

/// The floor on `plan`: the timer's lateness when it wakes, and that of
/// the [`WORKERS`] threads it hands each due time to.
fn floor_latency(plan: Plan) -> (Samples, Samples) {
    let floor = Arc::new(Floor::default());
    let started = Arc::new(Mutex::new(Vec::with_capacity(plan.jobs())));
    let (tx, rx) = crossbeam_channel::unbounded::<Instant>();
    let workers: Vec<JoinHandle<()>> = (0..WORKERS)
        .map(|_| {
            let (rx, started) = (rx.clone(), Arc::clone(&started));
            thread::spawn(move || {
                for at in rx {
                    let now = Instant::now();
                    started.lock().push((at, late(at, now)));
                }
            })
        })
        .collect();
    let timer = {
        let floor = Arc::clone(&floor);
        thread::spawn(move || floor.run(&tx))
    };
    plan.feed(|at| floor.add(at));
    floor.state.lock().last = true;
    floor.wake.notify_one();
    timer.join().expect("floor timer");
    workers
        .into_iter()
        .for_each(|w| w.join().expect("floor worker"));
    let fired = std::mem::take(&mut floor.state.lock().fired);
    let started = std::mem::take(&mut *started.lock());
    (fired, started)
}

/// The lateness of each sample.
fn lateness(samples: &[(Instant, i64)]) -> Vec<i64> {
    samples.iter().map(|&(_, late)| late).collect()
}

/// The lateness of the first job to start in each group of one due time.
fn firsts(samples: &[(Instant, i64)]) -> Vec<i64> {
    let mut first = BTreeMap::new();
    for &(at, late) in samples {
        first
            .entry(at)
            .and_modify(|min: &mut i64| *min = (*min).min(late))
            .or_insert(late);
    }
    first.into_values().collect()
}

/// Prints the lateness of `samples` under `label`, and of the first job
/// of each group if the plan's groups share a due time.
fn report(label: &str, samples: &[(Instant, i64)], plan: Plan) {
    println!("{}", Summary::of(lateness(samples)).row(label));
    if plan.same_instant {
        let label = format!("{label}, first of group");
        println!("{}", Summary::of(firsts(samples)).row(&label));
    }
}

/// Section 1: delayed-job start latency, brigade beside the floor.
fn latency(mode: Mode) {
    let scale = if mode == Mode::Smoke { 25 } else { 1 };
    let plans = [
        Plan {
            groups: 200 / scale,
            per_group: 5,
            same_instant: false,
            gap: Duration::from_millis(4),
        },
        Plan {
            groups: 125 / scale,
            per_group: 8,
            same_instant: true,
            gap: Duration::from_millis(8),
        },
    ];
    let pool = pool();
    println!("\n1. Delayed-job start latency (start − due), {WORKERS} workers");
    for plan in plans {
        let shape = if plan.same_instant {
            "same instant, groups"
        } else {
            "spread, batches"
        };
        println!(" {shape} of {} ({} jobs):", plan.per_group, plan.jobs());
        let ours = brigade_latency(&pool, plan);
        let (fired, started) = floor_latency(plan);
        report("brigade: job starts", &ours, plan);
        report("floor: timer thread wakes", &fired, plan);
        report("floor: handed to a thread", &started, plan);
    }
    pool.join();
}

/// The floor for the schedules: a thread of its own, waiting on a
/// condvar for each tick of a grid half a period off the schedule's
/// (so the two never wake at once), from `first` until `end`, and
/// handing each tick to a second thread through a crossbeam channel (a
/// timer thread and a worker, as in the pool). Fixed rate: tick `k` due
/// at `first + k × period` (a tick found already past is skipped, as
/// `Missed::Skip` does); fixed delay: each due a period after the last
/// woke. Returns the lateness of each tick when the ticker woke, and
/// when the second thread received it.
fn ticker(first: Instant, end: Instant, fixed_rate: bool) -> JoinHandle<(Vec<i64>, Vec<i64>)> {
    thread::spawn(move || {
        let (tx, rx) = crossbeam_channel::unbounded::<Instant>();
        let taker = thread::spawn(move || rx.iter().map(|due| late(due, Instant::now())).collect());
        let (lock, wake) = (Mutex::new(()), Condvar::new());
        let mut guard = lock.lock();
        let mut due = first;
        let mut woke = Vec::new();
        while due < end {
            while Instant::now() < due {
                let _ = wake.wait_until(&mut guard, due);
            }
            let now = Instant::now();
            woke.push(late(due, now));
            tx.send(due).expect("floor taker");
            due = if fixed_rate {
                due + PERIOD
            } else {
                now + PERIOD
            };
            while fixed_rate && due <= Instant::now() {
                due += PERIOD;
            }
        }
        drop(tx);
        (woke, taker.join().expect("floor taker"))
    })
}

/// Prints the floor [`ticker`]'s two rows.
fn print_ticker(floor: JoinHandle<(Vec<i64>, Vec<i64>)>) {
    let (woke, handed) = floor.join().expect("floor ticker");
    println!(
        "{}",
        Summary::of(woke).row("floor, same seconds: ticker wakes")
    );
    println!(
        "{}",
        Summary::of(handed).row("floor, same seconds: handed to a thread")
    );
}

/// Section 2a: a fixed-rate schedule's jitter and drift, and the floor's
/// over the same seconds.
fn fixed_rate(pool: &ThreadPool, span: Duration) {
    let starts = Arc::new(Mutex::new(Vec::with_capacity(span.as_millis() as usize)));
    let record = Arc::clone(&starts);
    let asked = Instant::now();
    let schedule = pool
        .schedule(Every::rate(PERIOD), move |_ctx| {
            record.lock().push(Instant::now());
            Ok::<(), Infallible>(())
        })
        .expect("schedule");
    let call = asked.elapsed();
    let first_due = asked + PERIOD;
    let floor = ticker(first_due + PERIOD / 2, first_due + span, true);
    thread::sleep(span + PERIOD / 2);
    schedule.cancel();
    let starts = std::mem::take(&mut *starts.lock());
    let period = PERIOD.as_nanos() as i64;
    let points: Vec<(i64, i64)> = starts
        .iter()
        .map(|&start| {
            let since = late(first_due, start);
            let k = (since + period / 2).div_euclid(period);
            (k, since - k * period)
        })
        .collect();
    println!(
        " Every::rate({PERIOD:?}) for {span:?}: {} runs, {} missed (first due taken as the call's start + period; the call took {call:?})",
        starts.len(),
        schedule.misses(),
    );
    print_jitter(&points);
    print_ticker(floor);
}

/// Prints the jitter of `(k, jitter)` points and their drift.
fn print_jitter(points: &[(i64, i64)]) {
    let jitter = points.iter().map(|&(_, j)| j).collect();
    println!(
        "{}",
        Summary::of(jitter).row("jitter vs first due + k × period")
    );
    let late: Vec<String> = points
        .iter()
        .filter(|&&(_, j)| j > 1_000_000)
        .map(|&(k, j)| format!("{k}: {:.1}", j as f64 / 1_000.0))
        .collect();
    if !late.is_empty() {
        println!("  runs over 1 ms late (k: µs): {}", late.join(", "));
    }
    let (slope, intercept) = fit(points);
    println!(
        "  drift: least-squares slope {slope:+.1} ns per run ({:+.1} µs over the span), intercept {:.1} µs",
        slope * points.len() as f64 / 1_000.0,
        intercept / 1_000.0,
    );
}

/// The least-squares line through `(x, y)` points: (slope, intercept).
fn fit(points: &[(i64, i64)]) -> (f64, f64) {
    let n = points.len() as f64;
    if n < 2.0 {
        return (0.0, 0.0);
    }
    let mean_x = points.iter().map(|&(x, _)| x as f64).sum::<f64>() / n;
    let mean_y = points.iter().map(|&(_, y)| y as f64).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for &(x, y) in points {
        sxy += (x as f64 - mean_x) * (y as f64 - mean_y);
        sxx += (x as f64 - mean_x).powi(2);
    }
    let slope = if sxx == 0.0 { 0.0 } else { sxy / sxx };
    (slope, mean_y - slope * mean_x)
}

/// Section 2b: a fixed-delay schedule's lateness against the previous
/// run's end + period, and the floor's over the same seconds.
fn fixed_delay(pool: &ThreadPool, span: Duration) {
    let runs = Arc::new(Mutex::new(Vec::with_capacity(span.as_millis() as usize)));
    let record = Arc::clone(&runs);
    let asked = Instant::now();
    let schedule = pool
        .schedule(Every::delay(PERIOD), move |_ctx| {
            let start = Instant::now();
            record.lock().push((start, Instant::now()));
            Ok::<(), Infallible>(())
        })
        .expect("schedule");
    let floor = ticker(asked + PERIOD * 3 / 2, asked + span, false);
    thread::sleep(span + PERIOD / 2);
    schedule.cancel();
    let runs = std::mem::take(&mut *runs.lock());
    let mut due = asked + PERIOD;
    let mut lateness = Vec::with_capacity(runs.len());
    for &(start, end) in &runs {
        lateness.push(late(due, start));
        due = end + PERIOD;
    }
    println!(
        " Every::delay({PERIOD:?}) for {span:?}: {} runs, {} missed",
        runs.len(),
        schedule.misses(),
    );
    println!(
        "{}",
        Summary::of(lateness).row("start vs previous end + period")
    );
    if let (Some(first), Some(last)) = (runs.first(), runs.last()) {
        let per_run = (last.0 - first.0).as_secs_f64() * 1e9 / (runs.len() - 1).max(1) as f64;
        println!(
            "  mean interval {:.1} µs (period + {:.1} µs per run)",
            per_run / 1_000.0,
            (per_run - PERIOD.as_nanos() as f64) / 1_000.0,
        );
    }
    print_ticker(floor);
}

/// Section 2: the schedules, one after the other on one pool.
fn schedules(mode: Mode) {
    println!("\n2. Schedules on an idle pool of {WORKERS} workers");
    let pool = pool();
    fixed_rate(&pool, mode.span());
    fixed_delay(&pool, mode.span());
    pool.join();
}

/// `n` due times in an hour, ascending, or in random order over 1–2 h.
fn far_dues(n: usize, random: bool) -> Vec<Instant> {
    let base = Instant::now() + Duration::from_secs(3600);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    (0..n)
        .map(|i| {
            if random {
                base + Duration::from_micros(rng.below(3_600_000_000))
            } else {
                base + Duration::from_nanos(i as u64)
            }
        })
        .collect()
}

/// Schedules a do-nothing job (a zero-sized closure) at each of `dues`.
fn schedule_all(pool: &ThreadPool, dues: &[Instant], handles: &mut Vec<JobHandle<()>>) {
    for &at in dues {
        handles.push(pool.schedule_at(at, |_ctx| {}).expect("schedule_at"));
    }
}

/// The live blocks that came (or went) between two [`counting::by_size`]
/// snapshots, per job, largest share first: `(size, blocks per job)`.
fn blocks_per_job(before: &[isize], after: &[isize], n: usize) -> Vec<(usize, f64)> {
    let mut rows: Vec<(usize, f64)> = before
        .iter()
        .zip(after)
        .enumerate()
        .filter(|&(_, (b, a))| (a - b).unsigned_abs() * 200 >= n)
        .map(|(size, (b, a))| (size, (a - b) as f64 / n as f64))
        .collect();
    rows.sort_by(|x, y| (y.0 as f64 * y.1).total_cmp(&(x.0 as f64 * x.1)));
    rows
}

/// A [`counting::by_size`] slot as a size: the last holds every larger
/// block.
fn size_label(size: usize) -> String {
    if size == counting::SIZES - 1 {
        format!(">{} B", size - 1)
    } else {
        format!("{size} B")
    }
}

/// glibc's chunk for a request of `size` bytes: an 8-byte header,
/// rounded up to 16, at least 32.
fn glibc_chunk(size: usize) -> usize {
    (size + 8).div_ceil(16).max(2) * 16
}

/// Prints where the bytes of one pending job go.
fn print_blocks(rows: &[(usize, f64)]) {
    let mut chunks = 0.0;
    for &(size, per_job) in rows {
        println!(
            "    {:>7} × {per_job:.4} per job = {:>6.1} B",
            size_label(size),
            size as f64 * per_job
        );
        chunks += glibc_chunk(size) as f64 * per_job;
    }
    println!("    with glibc's per-block header and rounding: about {chunks:.0} B per job");
}

/// Prints every block size whose live count changed between two
/// [`counting::by_size`] snapshots, with the change.
fn print_leftover(before: &[isize], after: &[isize]) {
    let changed: Vec<String> = before
        .iter()
        .zip(after)
        .enumerate()
        .filter(|&(_, (b, a))| a != b)
        .map(|(size, (b, a))| format!("{} × {:+}", size_label(size), a - b))
        .collect();
    if changed.is_empty() {
        println!("    none");
    } else {
        println!("    {}", changed.join(", "));
    }
}

/// The process's resident set, in bytes (Linux; 0 elsewhere).
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Section 3, once: `n` pending jobs due in an hour (ascending or in
/// random order), cancelled, dropped.
fn memory_once(n: usize, random: bool) {
    let pool = pool();
    // Start the timer thread (and its map's first node) before counting.
    pool.schedule_after(Duration::from_secs(3600), |_ctx| {})
        .expect("schedule_after")
        .cancel();
    // Let the workers finish starting (and the last pool's finish exiting).
    thread::sleep(Duration::from_millis(100));
    let dues = far_dues(n, random);
    let mut handles = Vec::with_capacity(n);
    counting::track(true);
    let (base, base_sizes, base_rss) = (counting::live(), counting::by_size(), rss());
    schedule_all(&pool, &dues, &mut handles);
    let (held, sizes, held_rss) = (counting::live(), counting::by_size(), rss());
    handles.iter().for_each(JobHandle::cancel);
    let (cancelled, cancelled_sizes) = (counting::live(), counting::by_size());
    drop(handles);
    let (dropped, dropped_sizes) = (counting::live(), counting::by_size());
    counting::track(false);
    let report = pool.shutdown_now();
    let per = |bytes: isize| bytes as f64 / n as f64;
    let order = if random { "random order" } else { "ascending" };
    println!(" {n} jobs due in 1 h, {order}:");
    println!(
        "  pending: {:.1} B per job requested (resident set: {:+.1} B per job, 0 where freed pages are reused)",
        per(held - base),
        (held_rss as f64 - base_rss as f64) / n as f64,
    );
    print_blocks(&blocks_per_job(&base_sizes, &sizes, n));
    println!(
        "  all cancelled, handles held: {:+} B in all ({:.1} B per handle); handles and their Vec ({} B) dropped: {:+} B",
        cancelled - base,
        per(cancelled - base),
        n * std::mem::size_of::<JobHandle<()>>(),
        dropped - base,
    );
    println!("  left after cancelling, per job:");
    print_blocks(&blocks_per_job(&base_sizes, &cancelled_sizes, n));
    println!("  blocks left after dropping the handles (and their Vec):");
    print_leftover(&base_sizes, &dropped_sizes);
    println!(
        "  still on the timer at shutdown: {} (the report's delayed_never_ran)",
        report.delayed_never_ran
    );
}

/// Section 3: memory per pending delayed job.
fn memory(mode: Mode) {
    println!("\n3. Memory per pending delayed job (zero-sized closure, T = ())");
    memory_once(mode.pending(), false);
    memory_once(mode.pending(), true);
}

/// One repetition of section 4: ns per `schedule_at`, ns per `cancel`.
fn add_cancel_once(pool: &ThreadPool, n: usize) -> (f64, f64) {
    let dues = far_dues(n, true);
    let mut handles = Vec::with_capacity(n);
    let start = Instant::now();
    schedule_all(pool, &dues, &mut handles);
    let added = start.elapsed();
    let start = Instant::now();
    handles.iter().for_each(JobHandle::cancel);
    let cancelled = start.elapsed();
    drop(handles);
    let per_op = |d: Duration| d.as_nanos() as f64 / n as f64;
    (per_op(added), per_op(cancelled))
}

/// The timer's data structure alone, as a floor for one repetition of
/// section 4: ns per insert into a `BTreeMap` keyed as the timer's map
/// (due time, sequence number) with a boxed 24-byte value, and ns per
/// remove by key, in the same order as the jobs.
fn map_once(n: usize) -> (f64, f64) {
    let dues = far_dues(n, true);
    let mut map: BTreeMap<(Instant, u64), Box<dyn Any + Send>> = BTreeMap::new();
    let start = Instant::now();
    for (seq, &at) in (0_u64..).zip(&dues) {
        map.insert((at, seq), Box::new([seq; 3]));
    }
    let added = start.elapsed();
    let start = Instant::now();
    for (seq, &at) in (0_u64..).zip(&dues) {
        drop(map.remove(&(at, seq)));
    }
    let removed = start.elapsed();
    let per_op = |d: Duration| d.as_nanos() as f64 / n as f64;
    (per_op(added), per_op(removed))
}

/// The median, minimum and maximum of `values`, as "median (min–max)".
fn spread(mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    let median = values.get(values.len() / 2).copied().unwrap_or(0.0);
    let (min, max) = (values[0], values[values.len() - 1]);
    format!("{median:>6.0} ({min:.0}–{max:.0})")
}

/// Section 4: add and cancel cost against the number pending.
fn costs(mode: Mode) {
    println!(
        "\n4. Add and cancel cost, jobs due in random order 1–2 h ahead \
         (ns per op: median (min–max) over repetitions; the map alone as the floor)"
    );
    let pool = pool();
    add_cancel_once(&pool, 1_000); // warm-up: the timer thread, the allocator
    for &(n, reps) in mode.costs() {
        let (adds, cancels): (Vec<f64>, Vec<f64>) =
            (0..reps).map(|_| add_cancel_once(&pool, n)).unzip();
        let (inserts, removes): (Vec<f64>, Vec<f64>) = (0..reps).map(|_| map_once(n)).unzip();
        println!(
            "  n = {n:>7} ({reps} reps, log2 n = {:.1}): schedule_at {}  cancel {}  | map insert {}  remove {}",
            (n as f64).log2(),
            spread(adds),
            spread(cancels),
            spread(inserts),
            spread(removes),
        );
    }
    pool.join();
}

/// The load averages, as `/proc/loadavg` has them.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

/// Runs the four sections in order and prints the report.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = Mode::from_args(&args);
    println!(
        "schedule bench ({mode:?}): {} CPUs, load average {} at the start",
        thread::available_parallelism().map_or(0, usize::from),
        load(),
    );
    latency(mode);
    schedules(mode);
    memory(mode);
    costs(mode);
    println!("\nload average {} at the end", load());
}
