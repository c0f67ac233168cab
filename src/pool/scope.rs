//! [`ThreadPool::scope`]: jobs that borrow from the caller's stack.
//!
//! The user contract is on [`Scope`].
//!
//! # Implementation notes
//!
//! A scoped job borrows for `'scope`; the crew's lifetime erasure
//! (`crew/lend.rs`, [`erase_cell`]) turns it into one the pool's `'static`
//! workers can hold. The argument that this use is sound is at the
//! `unsafe` block; the rest of the module exists to uphold it:
//!
//! * each job lives in one [`ScopedCell`], a single allocation shared by
//!   the queue, the scope's list and the handle (#16: three allocations a
//!   job before); its closure is taken out exactly once — by a worker, by
//!   the waiting caller, or by a discard — under the cell's lock;
//! * the scope counts a job as pending from `spawn` until its closure has
//!   run or been dropped and its result is with the handle or, the handle
//!   being gone, dropped ([`Finisher`]); after that the cell holds nothing
//!   borrowed, so a worker may drop its reference later. Spawners count
//!   jobs in a batch at a time and the final wait hands back what they did
//!   not use ([`Pending`]): the count is never below the jobs it covers;
//! * the wait at the end takes every job still in its cell, runs it, and
//!   then blocks until the pending count is zero; user code it runs is
//!   wrapped in `catch_unwind`, and an [`AbortOnUnwind`] guard turns any
//!   unexpected unwind out of the wait into a process abort rather than a
//!   return with jobs still running.
//!
//! `tests/loom.rs` models the final wait against a job that spawns as it
//! begins (`a_scope_wait_races_a_job_that_spawns`); Miri runs this
//! module's unit tests against the erasure.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::OnceLock;

use super::ThreadPool;
use super::handle::SharedTask;
use super::job::Task;
use crate::context::Context;
use crate::crew::{CellJob, End, Ran, Run, Wait, erase_cell};
use crate::error::{Cancelled, JobError};
use std::collections::VecDeque;

use crate::sync::thread::{self, Thread};
use crate::sync::{Arc, AtomicBool, AtomicU64, AtomicUsize, CachePadded, Condvar, Mutex, Ordering};

/// One scoped job, in one allocation shared by the queue, the scope's list
/// and the handle: its closure until it starts, then its result until the
/// handle takes it.
struct ScopedCell<'s, F, T> {
    slot: Mutex<Slot<F, T>>,
    ready: Condvar,
    /// Set with the slot leaving `Queued`, for the scope's list to let go
    /// without taking the lock.
    started: AtomicBool,
    /// The result is in the slot (or was taken by `join`).
    done: AtomicBool,
    /// The handle is gone. With `done`, a Dekker pair: whichever of the
    /// worker (after filling) and the handle (going) comes second sees the
    /// other's flag and drops the result, so the cell holds nothing
    /// borrowed once the job is counted out — and the handle's drop takes
    /// no lock while the job is still running, the common case.
    detached: AtomicBool,
    pending: &'s Pending,
    panics: &'s Panics,
    id: u64,
}

enum Slot<F, T> {
    Queued(F),
    /// Taken by a worker or the scope's thread: running, or discarded.
    Started,
    Done(Result<T, JobError>),
    /// The handle took the result.
    Joined,
}

impl<F, T> ScopedCell<'_, F, T>
where
    F: FnOnce(&Context) -> T + Send,
    T: Send,
{
    /// Takes the closure, if nobody has.
    fn take(&self) -> Option<F> {
        let mut slot = self.slot.lock();
        match std::mem::replace(&mut *slot, Slot::Started) {
            Slot::Queued(f) => {
                self.started.store(true, Ordering::Release);
                Some(f)
            }
            other => {
                *slot = other;
                None
            }
        }
    }

    /// Hands the result to the handle, or drops it (quietly: a result
    /// whose `Drop` panics is not the job panicking) if the handle is gone.
    fn fill(&self, result: Result<T, JobError>) {
        *self.slot.lock() = Slot::Done(result);
        self.ready.notify_all();
        // ORDERING: SeqCst, the Dekker pair with `detach` (see `detached`).
        self.done.store(true, Ordering::SeqCst);
        if self.detached.load(Ordering::SeqCst) {
            crate::unwind::drop_quietly(self.reclaim());
        }
    }

    /// Takes an unjoined result out of the slot.
    fn reclaim(&self) -> Option<Result<T, JobError>> {
        let mut slot = self.slot.lock();
        match std::mem::replace(&mut *slot, Slot::Joined) {
            Slot::Done(result) => Some(result),
            other => {
                *slot = other;
                None
            }
        }
    }

    /// Classifies the end: a panic's payload is kept for the scope to
    /// resume unless the handle joins it.
    fn finish(&self, end: End<T>) {
        let result = match end {
            End::Panicked(caught) => {
                let (panic, payload) = caught.split();
                self.panics.lock().push((self.id, payload));
                Err(JobError::Panicked(panic))
            }
            other => other.into_result(),
        };
        self.fill(result);
    }
}

impl<F, T> CellJob for ScopedCell<'_, F, T>
where
    F: FnOnce(&Context) -> T + Send,
    T: Send,
{
    /// An empty cell: the scope's own thread ran the job already. It was
    /// submitted, so it is counted, as a clean end.
    fn run(&self, run: Run<'_>) -> Ran {
        let Some(f) = self.take() else {
            return run.call_plain(|| ());
        };
        // Counts the job out after it has run and its result is delivered.
        let _finisher = Finisher(self.pending);
        run.call(|_| Some(f), |end| self.finish(end))
    }

    fn discard(&self, reason: Cancelled) {
        let Some(f) = self.take() else {
            return;
        };
        let _finisher = Finisher(self.pending);
        crate::unwind::drop_quietly(f);
        self.fill(Err(JobError::Cancelled(reason)));
    }

    fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }
}

/// What a handle needs of its cell, with the closure type erased.
trait ScopedResult<T>: CellJob {
    /// Waits for the result and takes it.
    fn wait(&self) -> Result<T, JobError>;
    fn is_finished(&self) -> bool;
    /// The handle is going: drops a result it never took.
    fn detach(&self);
}

impl<F, T> ScopedResult<T> for ScopedCell<'_, F, T>
where
    F: FnOnce(&Context) -> T + Send,
    T: Send,
{
    fn wait(&self) -> Result<T, JobError> {
        let mut slot = self.slot.lock();
        loop {
            match std::mem::replace(&mut *slot, Slot::Joined) {
                Slot::Done(result) => return result,
                Slot::Joined => return Err(JobError::AlreadyJoined),
                other => *slot = other,
            }
            self.ready.wait(&mut slot);
        }
    }

    fn is_finished(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    fn detach(&self) {
        // ORDERING: SeqCst, the Dekker pair with `fill` (see `detached`).
        self.detached.store(true, Ordering::SeqCst);
        if self.done.load(Ordering::SeqCst) {
            drop(self.reclaim());
        }
    }
}

/// Jobs spawned and not yet counted out, and the thread that waits for
/// them.
///
/// The count is on a line of its own, for the workers to count jobs out
/// on. A spawner does not add to it one job at a time: it adds
/// [`CREDITS`] at once and keeps the rest as credits, taking one per job,
/// so the line workers write is not pulled back to the spawner for every
/// job. Every change to the count is a read-modify-write, and a credit is
/// added to `credits` only after the count holds it, so the count is
/// never below the jobs not yet counted out: it cannot reach zero while a
/// job or a credit is outstanding.
///
/// The final wait hands the credits back ([`Pending::return_credits`])
/// before each look at the count. A spawner that refills after the wait
/// began reads `joining` after adding its credits, and wakes the wait if
/// it is set: both sides change `credits` by read-modify-writes, so either
/// the hand-back comes later and sees the credits, or it comes first and
/// releases `joining` to the refill, whose spawner then sees it. Once the
/// wait has begun, spawners count jobs in one at a time: the wait takes
/// credits back whenever it wakes, so a batch would not last.
struct Pending {
    count: CachePadded<AtomicUsize>,
    credits: AtomicUsize,
    /// Set once the scope's body has returned and the final wait runs.
    joining: AtomicBool,
    /// The scope's thread, which the final wait parks.
    waiter: OnceLock<Thread>,
}

/// How many jobs a spawner counts in at once. Two under loom, so that a
/// model's few spawns run out of credits and count in again.
const CREDITS: usize = if cfg!(loom) { 2 } else { 64 };

impl Pending {
    /// Counts one job in, before anyone can see it.
    fn count_in(&self) {
        // ORDERING: Acquire pairs with the refill's Release below, so the
        // count this credit stands for is seen to have been added.
        let credit = self
            .credits
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |c| c.checked_sub(1));
        if credit.is_ok() {
            return;
        }
        // ORDERING: Relaxed: this only picks the batch; a refill that
        // misses the wait's start is caught by `joining` in `spawn`.
        let batch = if self.joining.load(Ordering::Relaxed) {
            1
        } else {
            CREDITS
        };
        // ORDERING: Relaxed: what matters is that this add comes before
        // the Release below in this thread; it is a read-modify-write, so
        // a count-out or a hand-back ordered after that Release comes
        // after it in the count's order.
        self.count.0.fetch_add(batch, Ordering::Relaxed);
        if batch > 1 {
            // ORDERING: AcqRel: Release publishes the count's add to a
            // credit's taker and to the hand-back; Acquire pairs with the
            // hand-back's Release (see `Pending`).
            self.credits.fetch_add(batch - 1, Ordering::AcqRel);
        }
    }

    /// The final wait begins: from now on spawners count jobs in alone.
    fn begin_joining(&self) {
        // ORDERING: Release, read by `joining` (after a refill's Acquire
        // of the hand-back, see `Pending`).
        self.joining.store(true, Ordering::Release);
    }

    /// Whether the final wait has begun, for a spawner that has counted
    /// its job in: if so, it wakes the wait (its job is one more to run,
    /// and it may have added credits the wait has to hand back).
    fn joining(&self) -> bool {
        // ORDERING: Acquire pairs with `begin_joining`.
        self.joining.load(Ordering::Acquire)
    }

    /// Hands back the credits no spawner took; called by the final wait
    /// before each look at the count.
    fn return_credits(&self) {
        // ORDERING: AcqRel: Acquire sees the counts the credits stand
        // for; Release passes `joining` on to a later refill.
        let unused = self.credits.swap(0, Ordering::AcqRel);
        if unused > 0 {
            // ORDERING: Relaxed: ordered after the counts' adds by the
            // swap's Acquire; `is_clear`'s Acquire reads the count.
            self.count.0.fetch_sub(unused, Ordering::Relaxed);
        }
    }

    /// About how many jobs are not yet counted out: the count less the
    /// credits, read one after the other.
    fn jobs(&self) -> usize {
        // ORDERING: Relaxed: an estimate, for `Debug`.
        let credits = self.credits.load(Ordering::Relaxed);
        self.count.0.load(Ordering::Relaxed).saturating_sub(credits)
    }

    /// Whether every job has been counted out.
    fn is_clear(&self) -> bool {
        // ORDERING: Acquire: a job's count-out (AcqRel) publishes all it
        // did.
        self.count.0.load(Ordering::Acquire) == 0
    }
}

/// Counts one job out when dropped: after its closure has run or been
/// dropped and its result is with the handle or dropped, so the cell
/// holds nothing borrowed from then on.
///
/// Once the count may be zero the scope may return and free `Pending`, so
/// the job that takes it to zero gets its own handle on the waiting
/// thread first (no job pays for that but the last), and no call that
/// takes `&Pending` is still running when the count drops: the scope is
/// reached through this guard's field, one field at a time. A reference
/// passed to a function stays protected until the function returns, and
/// Miri's Stacked Borrows flags freeing memory under a protected
/// reference unless every byte of it is interior-mutable; `Pending` has
/// padding and a `OnceLock`'s state, which are not. (The count itself is
/// an atomic, as `Arc`'s is: rust-lang/rust#55005.)
struct Finisher<'a>(&'a Pending);

impl Drop for Finisher<'_> {
    fn drop(&mut self) {
        let pending = self.0;
        // ORDERING: AcqRel on success; the final wait's Acquire load of
        // zero must see everything the job did.
        let mut count = pending.count.0.load(Ordering::Acquire);
        loop {
            let last = (count == 1)
                .then(|| pending.waiter.get().cloned())
                .flatten();
            match pending.count.0.compare_exchange_weak(
                count,
                count - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if let Some(waiter) = last {
                        waiter.unpark();
                    }
                    return;
                }
                Err(now) => count = now,
            }
        }
    }
}

/// The scope's (and the queue's) reference to a job's cell.
type Shared = Arc<dyn CellJob>;

/// Panic payloads of scoped jobs, by job id: a join takes its job's
/// payload out (the panic was handled); whatever is left when every job has
/// finished is resumed on the caller. Only jobs that panicked have an entry.
type Panics = Mutex<Vec<(u64, Box<dyn Any + Send>)>>;

/// A scope for spawning jobs that borrow, from [`ThreadPool::scope`].
///
/// # The contract
///
/// `scope` runs its body, then does not return — or unwind — until every
/// job spawned in it has finished or been discarded. That is what lets a
/// job borrow anything that outlives the `scope` call, as with
/// `std::thread::scope`, while running on the pool's workers.
///
/// * The calling thread **helps**: a job that finds the queue full runs at
///   once on the spawning thread (caller-runs backpressure), the final wait
///   runs the scope's jobs that no worker has started yet, and
///   [`ScopedJoinHandle::join`] runs its own job inline if it is still
///   queued. So a scope never waits on a busy pool, scopes nest, and a
///   scope opened inside one of the pool's own jobs cannot deadlock.
/// * A panicking job is caught. [`ScopedJoinHandle::join`] returns it as
///   [`JobError::Panicked`]; a panic in a job nobody joined is resumed on the
///   caller, with its original payload, once every job has finished. A panic
///   in the body itself is resumed the same way, after the jobs finished.
/// * Jobs get a [`Context`] like [`ThreadPool::submit`]'s: a child of the
///   pool's, with the per-job timeout. If the pool is cancelled, jobs not yet
///   started never run, and their handles say `Cancelled`.
pub struct Scope<'scope, 'env: 'scope> {
    pool: &'scope ThreadPool,
    pending: Pending,
    /// Spawned jobs not known to have started, oldest first, for the final
    /// wait to run those no worker has: `spawn` lets go of the started
    /// ones at the front, so the list stays about as long as the queue
    /// rather than holding every job of the scope.
    cells: Mutex<VecDeque<Shared>>,
    panics: Panics,
    next_id: AtomicU64,
    /// Invariant in both lifetimes, as `std::thread::Scope` is.
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

/// A handle to a job spawned with [`Scope::spawn`]. Dropping it does not
/// cancel the job: the scope still joins it.
pub struct ScopedJoinHandle<'scope, T> {
    pool: &'scope ThreadPool,
    panics: &'scope Panics,
    id: u64,
    cell: Arc<dyn ScopedResult<T> + 'scope>,
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Spawns a job that may borrow anything that outlives the scope. It runs
    /// on one of the pool's workers, or on the scope's own thread if that
    /// thread gets to it first while waiting.
    ///
    /// Never waits for room in the queue. If the queue is full or the pool
    /// closed, the job runs right here on the calling thread (caller-runs
    /// backpressure) before `spawn` returns. If the pool is cancelled, it
    /// never runs and its handle reports [`JobError::Cancelled`].
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce(&Context) -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let cell = Arc::new(ScopedCell {
            slot: Mutex::new(Slot::Queued(f)),
            ready: Condvar::new(),
            started: AtomicBool::new(false),
            done: AtomicBool::new(false),
            detached: AtomicBool::new(false),
            pending: &self.pending,
            panics: &self.panics,
            id,
        });
        // Counted as pending before the erased job can be seen by anyone.
        self.pending.count_in();
        let job: Arc<dyn CellJob + 'scope> = Arc::clone(&cell) as _;
        // SAFETY: the job is counted pending above (the count is never
        // below the jobs not yet counted out, see `Pending`), and counted
        // out (by a `Finisher`) only once its closure has been run or dropped and its
        // result handed to the handle or dropped (`detached`): the handle
        // is bound to `'scope`, so a result it holds goes before `'scope`
        // ends. A cell's `Drop` touches nothing borrowed, and
        // `ThreadPool::scope` neither returns nor unwinds (`AbortOnUnwind`)
        // until the count is zero.
        #[allow(unsafe_code, reason = "the erasure's obligations are met here")]
        let job = unsafe { erase_cell(job) };
        self.remember(Arc::clone(&job));
        if self.pending.joining() {
            // Spawned by a running job during the final wait: wake it.
            if let Some(waiter) = self.pending.waiter.get() {
                waiter.unpark();
            }
        }
        self.hand_over(job);
        ScopedJoinHandle {
            pool: self.pool,
            panics: &self.panics,
            id,
            cell,
        }
    }

    /// Queues `job` without waiting for room: waiting could deadlock on a
    /// pool whose workers are all busy (or on one of its own workers). A
    /// job that does not fit runs here and now instead — caller-runs
    /// backpressure, which also keeps the spawning thread from outrunning
    /// the pool — as does one a closed pool refuses; a cancelled pool's is
    /// discarded.
    fn hand_over(&self, job: Shared) {
        let task = Task::Shared(SharedTask::new(job));
        if let Err(refused) = self.pool.enqueue(task, Wait::Now) {
            let Task::Shared(task) = refused.into_inner() else {
                unreachable!("brigade: enqueue hands back the task it was given");
            };
            // Run first: dropping the task would discard the job.
            task.with_cell(|cell| help(self.pool, cell));
        }
    }

    /// Adds `job` to the list of jobs the final wait may have to run,
    /// letting go of the jobs at its front that have started.
    fn remember(&self, job: Shared) {
        // Looked at in batches: a look at a cell a worker just wrote is a
        // cache miss, and most of a batch has started by the next look.
        const BATCH: usize = 256;
        let mut cells = self.cells.lock();
        if cells.len() >= BATCH && cells.len() % BATCH == 0 {
            while cells.front().is_some_and(|cell| cell.started()) {
                cells.pop_front();
            }
        }
        cells.push_back(job);
    }

    /// Finishes every job still in its cell on this thread (or discards it,
    /// if the pool is cancelled), then waits for the jobs workers are
    /// running. Returns the first panic that escaped a job's own catch.
    fn join_all(&self) -> Option<Box<dyn Any + Send>> {
        let _abort = AbortOnUnwind;
        let mut escaped = None;
        self.pending.begin_joining();
        loop {
            loop {
                // One at a time, not under the lock: a job run here may spawn.
                let next = self.cells.lock().pop_front();
                let Some(cell) = next else { break };
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| help(self.pool, &*cell))) {
                    escaped.get_or_insert(payload);
                }
            }
            self.pending.return_credits();
            if self.pending.is_clear() {
                return escaped;
            }
            // Woken by the last job's count-out, or by a job that spawns
            // (after adding to the list); a stray wake-up goes round again.
            if self.cells.lock().is_empty() {
                thread::park();
            }
        }
    }

    /// The first panic of a job nobody joined.
    fn unjoined_panic(&self) -> Option<Box<dyn Any + Send>> {
        let mut panics = self.panics.lock();
        (!panics.is_empty()).then(|| panics.remove(0).1)
    }
}

/// Runs `cell`'s job on this thread if nobody has taken it, or discards it
/// if the pool is cancelled.
fn help(pool: &ThreadPool, cell: &(impl CellJob + ?Sized)) {
    match pool.context().reason() {
        // Not counted in the pool's stats: it did not run on a worker.
        None => drop(cell.run(Run::here(pool.context(), pool.job_timeout()))),
        Some(reason) => cell.discard(reason),
    }
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the job (running it on this thread if no worker has
    /// started it) and returns its value.
    ///
    /// # Errors
    ///
    /// [`JobError::Panicked`] (the panic is then not resumed at the end of
    /// the scope), [`JobError::Cancelled`] or [`JobError::TimedOut`], as for
    /// [`JobHandle::join`](crate::JobHandle::join).
    pub fn join(self) -> Result<T, JobError> {
        // Run the job here if no worker has started it, or discard it if
        // the pool is cancelled.
        help(self.pool, &*self.cell);
        let result = self.cell.wait();
        // Joined: a panic is handled here, not resumed by the scope.
        if matches!(result, Err(JobError::Panicked(_))) {
            let mut panics = self.panics.lock();
            if let Some(at) = panics.iter().position(|(id, _)| *id == self.id) {
                crate::unwind::drop_quietly(panics.remove(at));
            }
        }
        result
    }

    /// Whether the job has finished (including being discarded).
    pub fn is_finished(&self) -> bool {
        self.cell.is_finished()
    }
}

impl<T> Drop for ScopedJoinHandle<'_, T> {
    fn drop(&mut self) {
        self.cell.detach();
    }
}

/// Aborts the process if dropped during a panic: the scope's wait must not
/// unwind while jobs may still be using borrowed data.
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("brigade: a panic escaped while a scope waited for its jobs; aborting");
            std::process::abort();
        }
    }
}

impl ThreadPool {
    /// Runs `body` with a [`Scope`] whose jobs may borrow from the caller's
    /// stack, and returns once every job spawned in it has finished; see
    /// [`Scope`] for the contract.
    ///
    /// # Panics
    ///
    /// Resumes a panic from `body`, or else from a job whose handle was not
    /// joined, after every job has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::ThreadPool;
    ///
    /// let pool = ThreadPool::builder().workers(2).build()?;
    /// let words = vec!["apple", "banana", "cherry"];
    /// let mut lengths = vec![0; words.len()];
    /// pool.scope(|s| {
    ///     for (word, len) in words.iter().zip(lengths.iter_mut()) {
    ///         s.spawn(move |_ctx| *len = word.len());
    ///     }
    /// });
    /// assert_eq!(lengths, [5, 6, 6]);
    /// # Ok::<(), brigade::BuildError>(())
    /// ```
    ///
    /// A job cannot outlive the scope:
    ///
    /// ```compile_fail
    /// use brigade::ThreadPool;
    ///
    /// let pool = ThreadPool::builder().workers(1).build().unwrap();
    /// let handle = pool.scope(|s| {
    ///     let local = String::from("dropped at the end of the closure");
    ///     s.spawn(|_ctx| local.len())
    /// });
    /// ```
    pub fn scope<'env, F, T>(&self, body: F) -> T
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
    {
        let scope = Scope {
            pool: self,
            pending: Pending {
                count: CachePadded(AtomicUsize::new(0)),
                credits: AtomicUsize::new(0),
                joining: AtomicBool::new(false),
                waiter: OnceLock::from(thread::current()),
            },
            cells: Mutex::new(VecDeque::new()),
            panics: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            _scope: PhantomData,
            _env: PhantomData,
        };
        let result = catch_unwind(AssertUnwindSafe(|| body(&scope)));
        let escaped = scope.join_all();
        match result {
            Err(payload) => resume_unwind(payload),
            Ok(value) => {
                if let Some(payload) = escaped.or_else(|| scope.unjoined_panic()) {
                    resume_unwind(payload);
                }
                value
            }
        }
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("pending", &self.pending.jobs())
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJoinHandle")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! Small enough to run under Miri (`cargo +nightly miri test --lib
    //! pool::scope`), which checks the lifetime erasure against the
    //! borrows it carries.

    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::ThreadPool;

    #[test]
    fn borrows_are_written_and_read_back() {
        let pool = ThreadPool::builder().workers(2).build().expect("build");
        let input = [1u64, 2, 3, 4];
        let mut out = vec![0u64; 4];
        pool.scope(|s| {
            for (x, slot) in input.iter().zip(out.iter_mut()) {
                s.spawn(move |_ctx| *slot = x * 10);
            }
        });
        assert_eq!(out, [10, 20, 30, 40]);
    }

    #[test]
    fn body_panic_joins_every_job_first() {
        let pool = ThreadPool::builder().workers(1).build().expect("build");
        let done = AtomicUsize::new(0);
        let result = catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                for _ in 0..3 {
                    s.spawn(|_ctx| done.fetch_add(1, Ordering::SeqCst));
                }
                panic!("body");
            })
        }));
        assert!(result.is_err());
        assert_eq!(done.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn borrowed_results_of_dropped_handles_are_dropped_in_the_scope() {
        let pool = ThreadPool::builder().workers(1).build().expect("build");
        let text = String::from("borrowed");
        let dropped = AtomicUsize::new(0);
        struct Ref<'a>(&'a str, &'a AtomicUsize);
        impl Drop for Ref<'_> {
            fn drop(&mut self) {
                assert_eq!(self.0, "borrowed");
                self.1.fetch_add(1, Ordering::SeqCst);
            }
        }
        pool.scope(|s| {
            for _ in 0..3 {
                drop(s.spawn(|_ctx| Ref(&text, &dropped)));
            }
            let kept = s.spawn(|_ctx| Ref(&text, &dropped));
            drop(kept.join());
        });
        drop(text);
        assert_eq!(dropped.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn debug_counts_jobs_not_credits() {
        let pool = ThreadPool::builder().workers(1).build().expect("build");
        let (release, held) = std::sync::mpsc::channel::<()>();
        pool.scope(|s| {
            s.spawn(move |_ctx| held.recv_timeout(std::time::Duration::from_secs(30)));
            assert!(format!("{s:?}").contains("pending: 1"), "{s:?}");
            release.send(()).expect("the job waits");
        });
    }

    #[test]
    fn nested_scope_on_one_worker() {
        let pool = ThreadPool::builder().workers(1).build().expect("build");
        let mut value = 0;
        pool.scope(|s| {
            s.spawn(|_ctx| {
                pool.scope(|inner| {
                    inner.spawn(|_ctx| value += 1);
                });
            });
        });
        assert_eq!(value, 1);
    }
}
