//! Jobs that borrow from the caller's stack, run by `'static` workers:
//! the crate's one lifetime erasure.
//!
//! A [`ThreadPool::scope`](crate::ThreadPool::scope) job and a task of
//! [`ErrGroup::scope`](crate::ErrGroup::scope) borrow for `'scope`, yet
//! run on crew workers that live for `'static`. A group task is boxed as
//! a [`Work`] and erased by [`erase`]; a scoped job lives in a cell its
//! handle shares, a [`CellJob`] erased by [`erase_cell`]. Both uphold one
//! obligation: nothing borrowed for `'scope` is used after the front door
//! counts the job out, and the front door counts it as pending until then
//! and does not return (or unwind) before the count is zero.

use super::{Ran, Run};
use crate::error::Cancelled;
use crate::sync::Arc;

/// A job a front door hands the crew: run through the lifecycle, or told
/// it never will.
pub(crate) trait Work: Send {
    fn run(self: Box<Self>, run: Run<'_>) -> Ran;
    fn discard(self: Box<Self>, reason: Cancelled);
}

/// A job the queue shares with whoever waits for it (a handle): run
/// through the lifecycle at most once, or told it never will.
pub(crate) trait CellJob: Send + Sync {
    fn run(&self, run: Run<'_>) -> Ran;
    fn discard(&self, reason: Cancelled);
    /// Whether a worker (or anyone) has taken the job: it no longer needs
    /// a reference kept for running it.
    fn started(&self) -> bool;
    /// For a discard: 1 if the job counts as never run (and now cannot
    /// run elsewhere), 0 if it already ran elsewhere (see `Exec::claim`).
    fn claim(&self) -> u64 {
        1
    }
}

/// A job with its borrows erased.
pub(crate) type Erased = Box<dyn Work + 'static>;

/// Erases the borrow of `job` so `'static` workers can hold it.
///
/// # Safety
///
/// The caller must make sure that the returned box is consumed by
/// [`Work::run`] or [`Work::discard`], or dropped, before anything `job`
/// borrows for `'s` goes away — in practice: it counts the job as pending
/// before the box can be seen by anyone, counts it out only after the box
/// has been freed, and neither returns nor unwinds out of `'s` while the
/// count is above zero.
#[allow(
    unsafe_code,
    reason = "the one lifetime erasure; see the SAFETY comment"
)]
pub(crate) unsafe fn erase<'s>(job: Box<dyn Work + 's>) -> Erased {
    // SAFETY: `Box<dyn Work + 's>` and `Box<dyn Work + 'static>` have the
    // same layout; only the lifetime bound changes, and the caller
    // promises (see above) that the box does not outlive `'s`.
    unsafe { std::mem::transmute::<Box<dyn Work + 's>, Erased>(job) }
}

/// Erases the borrow of a shared `cell` so `'static` workers can hold a
/// reference to it.
///
/// # Safety
///
/// As for [`erase`], with one difference: the reference may outlive `'s`
/// (the worker drops its `Arc` after the job is counted out), so the cell
/// must hold nothing borrowed for `'s` by then — its closure run or
/// dropped, its result handed over or dropped — and its own `Drop` must
/// not use what it borrows.
#[allow(
    unsafe_code,
    reason = "the one lifetime erasure; see the SAFETY comment"
)]
pub(crate) unsafe fn erase_cell<'s>(cell: Arc<dyn CellJob + 's>) -> Arc<dyn CellJob> {
    // SAFETY: only the lifetime bound of the trait object changes, not
    // the layout; the caller promises what is above.
    unsafe { std::mem::transmute::<Arc<dyn CellJob + 's>, Arc<dyn CellJob>>(cell) }
}
