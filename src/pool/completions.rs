//! [`Completions`]: a set of [`JobHandle`]s that yields each job's result
//! as it finishes — Python's `as_completed`, Java's `CompletionService`.
//!
//! # Decisions
//!
//! * **Tagged by index.** Each handle is tagged with its index: 0 for the
//!   first pushed, 1 for the next, and so on, never reused.
//!   [`push`](Completions::push) returns it. A caller with keys (URLs,
//!   file names) keeps them in a `Vec` and looks them up by index. This
//!   keeps the set to one type parameter, and `collect()` needs no key.
//! * **Completion order.** Results come out in the order their jobs ended.
//!   A job ends when its result is delivered to its handle: it returned,
//!   panicked or timed out, or it was cancelled or discarded. A handle that
//!   has already finished when it is pushed is ready at once, after the
//!   results that were ready before it.
//! * **Exactly once.** Each pushed job is yielded exactly once, including a
//!   job [`cancel_rest`](Completions::cancel_rest) cancelled: it comes out
//!   as `Err(JobError::Cancelled(_))`, or with whatever a running job
//!   returned. [`len`](Completions::len) counts what is still to come.
//! * **Dropping cancels.** A set is mostly used to take the first good
//!   answers and give up on the rest, so dropping it cancels every job not
//!   yet yielded, as [`cancel_rest`](Completions::cancel_rest) does.
//!   [`detach`](Completions::detach) drops it without cancelling: the jobs
//!   run on and their results are dropped, as when a [`JobHandle`] is
//!   dropped.
//! * **Any handles.** A handle is just a handle: jobs from different pools
//!   can share one set.
//! * **Blocking or async.** The same set serves a thread
//!   ([`Iterator::next`], [`next_timeout`](Completions::next_timeout),
//!   [`try_next`](Completions::try_next)) and a task
//!   ([`poll_next`](Completions::poll_next),
//!   [`next_async`](Completions::next_async)), with no async runtime:
//!   it uses `std::task` only.
//!
//! # Implementation notes
//!
//! Each handle is polled once, as a [`Future`], when it is pushed, with a
//! waker of its own (a [`Notice`]: the index and the set's [`Shared`]).
//! [`JobHandle`] wakes that waker once, after the result is stored, on the
//! thread that finished the job. The wake appends the index to the shared
//! ready queue, signals the condition variable a blocked `next` waits on,
//! and wakes the task the last `poll_next` registered. Taking an index
//! from the queue, the set polls that handle again, now `Ready`. There is
//! no thread per job and no polling loop.
//!
//! Invariants:
//!
//! * `jobs` holds exactly the jobs not yet yielded. An index is removed
//!   before its result is returned, so an index that reached the queue
//!   twice (the handle's contract wakes once, but the set does not rely on
//!   it) is skipped the second time.
//! * Every job in `jobs` that is not already `Done` has the waker
//!   registered with its handle, so its end always reaches the queue: a
//!   blocked `next` cannot miss it. A woken handle that is still pending
//!   is put back and polled again, which registers the waker again.
//! * The task waker is stored under the queue's lock, the same lock a wake
//!   takes to append, so `poll_next` cannot return `Pending` after a wake it
//!   did not see.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::Duration;

use super::JobHandle;
use crate::crew::Wait;
use crate::error::JobError;
use crate::sync::{Arc, Condvar, Mutex};

/// A set of [`JobHandle`]s that yields `(index, result)` for each job in
/// the order the jobs finish.
///
/// Each handle is tagged with its index in insertion order, starting at
/// 0; [`push`](Self::push) returns it. Every job is yielded exactly once.
/// [`Iterator::next`] blocks until a job finishes and returns `None` once
/// every job has been yielded; [`next_timeout`](Self::next_timeout) and
/// [`try_next`](Self::try_next) bound the wait, and
/// [`poll_next`](Self::poll_next) / [`next_async`](Self::next_async) wait
/// from async code, on any executor.
///
/// Handles from different pools can be mixed in one set.
///
/// **Dropping the set cancels every job not yet yielded** (through
/// [`JobHandle::cancel`]); [`detach`](Self::detach) drops it and lets them
/// run on. The module docs give the reasons.
///
/// # Examples
///
/// Take the first answer and give up on the rest:
///
/// ```
/// use std::time::Duration;
/// use brigade::{Cancelled, Completions, ThreadPool};
///
/// let pool = ThreadPool::builder().workers(2).build()?;
/// let mirrors = ["slow.example", "fast.example"];
/// let mut fetches: Completions<Result<String, Cancelled>> = mirrors
///     .iter()
///     .map(|&mirror| {
///         pool.submit(move |ctx| {
///             if mirror.starts_with("slow") {
///                 // A slow mirror, which stops when it is cancelled.
///                 ctx.sleep(Duration::from_secs(60))?;
///             }
///             Ok(format!("data from {mirror}"))
///         })
///     })
///     .collect::<Result<_, _>>()
///     .map_err(|e| e.kind())?;
///
/// let (index, first) = fetches.next().expect("two jobs were pushed");
/// assert_eq!(mirrors[index], "fast.example");
/// assert_eq!(first??, "data from fast.example");
/// drop(fetches); // cancels the slow fetch: its sleep ends at once
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping a Completions cancels every job it holds"]
pub struct Completions<T> {
    /// The jobs not yet yielded, by index.
    jobs: BTreeMap<usize, Entry<T>>,
    /// The index the next pushed handle gets.
    next_index: usize,
    /// The ready queue the handles' wakers append to.
    shared: Arc<Shared>,
}

/// A job in the set that has not been yielded.
enum Entry<T> {
    /// Not finished when last polled; `waker` is registered with the
    /// handle and appends the index to the ready queue when it ends.
    Waiting(JobHandle<T>, Waker),
    /// Already finished when it was pushed; its index is in the queue.
    Done(Result<T, JobError>),
}

/// The part of a set that the handles' wakers reach, from other threads.
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when an index is appended to the queue.
    appended: Condvar,
}

struct Queue {
    /// Indices of finished jobs, in the order they finished.
    finished: VecDeque<usize>,
    /// The task of the last `poll_next` that returned `Pending`.
    task: Option<Waker>,
}

/// The waker of one job's handle: its end appends `index` to the queue.
struct Notice {
    index: usize,
    shared: Arc<Shared>,
}

/// The future of [`Completions::next_async`]: the next finished job, or
/// `None` once every job has been yielded.
#[must_use = "futures do nothing unless polled"]
pub struct NextCompletion<'a, T> {
    set: &'a mut Completions<T>,
}

impl<T> Completions<T> {
    /// An empty set.
    pub fn new() -> Self {
        let shared = Shared {
            queue: Mutex::new(Queue {
                finished: VecDeque::new(),
                task: None,
            }),
            appended: Condvar::new(),
        };
        Self {
            jobs: BTreeMap::new(),
            next_index: 0,
            shared: Arc::new(shared),
        }
    }

    /// Adds a handle and returns its index: 0 for the first handle pushed,
    /// then 1, 2, … A handle whose job has already finished (even one whose
    /// result [`JobHandle::join_timeout`] took, which is then yielded as
    /// [`JobError::AlreadyJoined`]) is ready at once.
    pub fn push(&mut self, handle: JobHandle<T>) -> usize {
        let index = self.next_index;
        // Wrapping keeps `push` panic-free. Indices repeat only after
        // `usize::MAX` pushes, out of reach on 64-bit targets; on a 32-bit
        // one a repeated index replaces (and detaches) a job still pending.
        self.next_index = self.next_index.wrapping_add(1);
        let notice = Notice {
            index,
            shared: Arc::clone(&self.shared),
        };
        let waker = Waker::from(Arc::new(notice));
        let mut handle = handle;
        // The first poll registers the waker, or finds the job done; then
        // nothing will wake the waker, so the set queues the index itself.
        match poll_handle(&mut handle, &waker) {
            Poll::Ready(result) => {
                self.jobs.insert(index, Entry::Done(result));
                self.shared.append(index);
            }
            Poll::Pending => {
                self.jobs.insert(index, Entry::Waiting(handle, waker));
            }
        }
        index
    }

    /// How many jobs have not been yielded yet.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether every job pushed has been yielded.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Waits at most `timeout` for the next job to finish. `None` means
    /// none finished in time, or the set [`is_empty`](Self::is_empty); the
    /// set stays usable either way. A timeout too large to represent waits
    /// as long as it takes.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<(usize, Result<T, JobError>)> {
        self.next_within(Wait::at_most(timeout))
    }

    /// The next finished job, without waiting: `None` if no job not yet
    /// yielded has finished, or the set is empty.
    pub fn try_next(&mut self) -> Option<(usize, Result<T, JobError>)> {
        self.next_within(Wait::Now)
    }

    /// Cancels every job not yet yielded, through [`JobHandle::cancel`]: a
    /// job that has not started never runs (its closure is dropped now),
    /// and a running job's context is cancelled. The jobs stay in the set,
    /// and are yielded as they end — a job that never ran as
    /// `Err(JobError::Cancelled(_))` at once, a running one with whatever
    /// it returns (`Err(JobError::Cancelled(_))` unless it ended before it
    /// was cancelled). Jobs already finished keep their results.
    pub fn cancel_rest(&self) {
        for entry in self.jobs.values() {
            if let Entry::Waiting(handle, _) = entry {
                handle.cancel();
            }
        }
    }

    /// Drops the set without cancelling its jobs: they run on, and their
    /// results are dropped, as when a [`JobHandle`] is dropped. (Dropping
    /// the set cancels them.)
    pub fn detach(mut self) {
        // With no jobs left, `Drop` has nothing to cancel.
        drop(std::mem::take(&mut self.jobs));
    }

    /// Polls for the next finished job, for use in a hand-written future
    /// or stream: `Ready(Some((index, result)))` for a job that has
    /// finished, `Ready(None)` once every job has been yielded, and
    /// `Pending` otherwise — then the task in `cx` is woken when a job
    /// finishes. Only the task of the latest `Pending` poll is woken.
    pub fn poll_next(
        &mut self,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<(usize, Result<T, JobError>)>> {
        loop {
            if self.jobs.is_empty() {
                return Poll::Ready(None);
            }
            let Some(index) = self.shared.pop_or_register(cx.waker()) else {
                return Poll::Pending;
            };
            if let Some(item) = self.take(index) {
                return Poll::Ready(Some(item));
            }
        }
    }

    /// The next finished job, as a future: `set.next_async().await` is
    /// `Some((index, result))`, or `None` once every job has been yielded.
    /// The thread is not blocked; any executor can poll it.
    pub fn next_async(&mut self) -> NextCompletion<'_, T> {
        NextCompletion { set: self }
    }

    /// The next job to finish within `wait`, if any.
    fn next_within(&mut self, wait: Wait) -> Option<(usize, Result<T, JobError>)> {
        loop {
            if self.jobs.is_empty() {
                return None;
            }
            let index = self.shared.pop(wait)?;
            if let Some(item) = self.take(index) {
                return Some(item);
            }
        }
    }

    /// Removes the job at `index`, whose end reached the queue, and returns
    /// its result; `None` if it was already yielded, or (against the
    /// handle's contract) is still pending, which puts it back with its
    /// waker registered again.
    fn take(&mut self, index: usize) -> Option<(usize, Result<T, JobError>)> {
        match self.jobs.remove(&index)? {
            Entry::Done(result) => Some((index, result)),
            Entry::Waiting(mut handle, waker) => match poll_handle(&mut handle, &waker) {
                Poll::Ready(result) => Some((index, result)),
                Poll::Pending => {
                    self.jobs.insert(index, Entry::Waiting(handle, waker));
                    None
                }
            },
        }
    }
}

/// Polls `handle` as a future with `waker`: its result, or `Pending` with
/// `waker` registered to be woken when the job ends.
fn poll_handle<T>(handle: &mut JobHandle<T>, waker: &Waker) -> Poll<Result<T, JobError>> {
    Pin::new(handle).poll(&mut TaskContext::from_waker(waker))
}

impl Shared {
    /// Appends a finished job's index, wakes a blocked `next` and the
    /// registered task.
    fn append(&self, index: usize) {
        let task = {
            let mut queue = self.queue.lock();
            queue.finished.push_back(index);
            // Only the set's owner waits (every wait takes `&mut self`).
            self.appended.notify_one();
            queue.task.take()
        };
        // Outside the lock: a waker may run arbitrary code.
        if let Some(task) = task {
            task.wake();
        }
    }

    /// The oldest finished index, waiting for one at most as long as `wait`.
    fn pop(&self, wait: Wait) -> Option<usize> {
        let mut queue = self.queue.lock();
        loop {
            if let Some(index) = queue.finished.pop_front() {
                return Some(index);
            }
            match wait {
                Wait::Now => return None,
                Wait::Forever => self.appended.wait(&mut queue),
                Wait::Until(deadline) => {
                    if self.appended.wait_until(&mut queue, deadline).timed_out() {
                        return queue.finished.pop_front();
                    }
                }
            }
        }
    }

    /// The oldest finished index, or `None` after registering `task` to be
    /// woken by the next append (under the same lock, so none is missed).
    fn pop_or_register(&self, task: &Waker) -> Option<usize> {
        let mut queue = self.queue.lock();
        let index = queue.finished.pop_front();
        if index.is_none() && !queue.task.as_ref().is_some_and(|old| old.will_wake(task)) {
            queue.task = Some(task.clone());
        }
        index
    }
}

impl Wake for Notice {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.shared.append(self.index);
    }
}

impl<T> Default for Completions<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Blocks until the next job finishes and yields `(index, result)`;
/// `None` once every job pushed so far has been yielded. Pushing more
/// handles afterwards makes it yield again.
impl<T> Iterator for Completions<T> {
    type Item = (usize, Result<T, JobError>);

    fn next(&mut self) -> Option<Self::Item> {
        self.next_within(Wait::Forever)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len(), Some(self.len()))
    }
}

/// Collects handles, tagged 0, 1, 2, … in the iterator's order.
impl<T> FromIterator<JobHandle<T>> for Completions<T> {
    fn from_iter<I: IntoIterator<Item = JobHandle<T>>>(iter: I) -> Self {
        let mut set = Self::new();
        set.extend(iter);
        set
    }
}

/// Pushes each handle in turn, tagging them with the next indices.
impl<T> Extend<JobHandle<T>> for Completions<T> {
    fn extend<I: IntoIterator<Item = JobHandle<T>>>(&mut self, iter: I) {
        for handle in iter {
            self.push(handle);
        }
    }
}

/// Cancels every job not yet yielded, as [`Completions::cancel_rest`]
/// does; [`Completions::detach`] drops the set without cancelling.
impl<T> Drop for Completions<T> {
    fn drop(&mut self) {
        self.cancel_rest();
    }
}

impl<T> fmt::Debug for Completions<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completions")
            .field("len", &self.len())
            .field("pushed", &self.next_index)
            .finish_non_exhaustive()
    }
}

impl<T> Future for NextCompletion<'_, T> {
    type Output = Option<(usize, Result<T, JobError>)>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        self.get_mut().set.poll_next(cx)
    }
}

impl<T> fmt::Debug for NextCompletion<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NextCompletion")
            .field("set", &self.set)
            .finish()
    }
}
