//! An [`ErrGroup`]'s mode: what one task's end does to the group, and
//! what [`wait`](ErrGroup::wait) makes of them all.
//!
//! | mode | made by | a failure | a success | `wait` returns |
//! |---|---|---|---|---|
//! | [`FailFast`] | [`new`](ErrGroup::new), [`on_pool`](ErrGroup::on_pool) | cancels the group | — | `Result<(), GroupError<E>>`: the first failure |
//! | [`CollectAll`] | [`collect_all`](ErrGroup::collect_all), [`collect_all_on_pool`](ErrGroup::collect_all_on_pool) | is noted; the others run on | — | `Result<(), GroupErrors<E>>`: every failure |
//! | [`FirstSuccess<T>`] | [`first_success`](ErrGroup::first_success), [`first_success_on_pool`](ErrGroup::first_success_on_pool) | is noted; the others run on | the first cancels the group | `Result<T, GroupErrors<E>>`: the winner's value, or every failure |
//!
//! # Design
//!
//! * **One group, three modes.** The mode is a type parameter of the one
//!   [`ErrGroup`] (defaulting to [`FailFast`], so existing code reads as
//!   before). Spawning, the limit, the group's workers or pool, the
//!   lifecycle, the scope and the wait are the same code for every mode;
//!   the mode decides only the two policy questions below and how the
//!   [`Verdict`] becomes `wait`'s result. Each mode has its own `wait`
//!   (three thin wrappers), so each returns a concrete type that its docs
//!   can show, instead of an associated type.
//! * **Chosen at construction, as a type.** The mode fixes what a task
//!   returns (`Result<(), E>` or `Result<T, E>`) and what `wait` returns,
//!   so it is part of the group's type, and a constructor picks it. A
//!   setter would have to fail once a task was spawned under the old mode;
//!   a constructor cannot be called too late. The constructors live on the
//!   fail-fast type, so `ErrGroup::<String>::collect_all(&ctx)` names the
//!   error type as `ErrGroup::<String>::new(&ctx)` does.
//! * **Every failure comes back as a [`GroupErrors`].** Collect-all and a
//!   first-success group that no task won report the same thing: each
//!   failure as `(index, GroupError<E>)`, in the order they happened,
//!   where the index is the task's place in spawn order (0-based, counted
//!   when the group admits it, so refused spawns take no index). One type
//!   rather than a `Vec`, so it is an `Error` (for `?`), says which spawn
//!   a cancellation refused, and can grow. A task's end is one of the
//!   [`GroupError`] variants, panics included, exactly as fail-fast
//!   reports them; so a caller matches one set of variants in every mode.
//! * **Cancellation follows the fail-fast rules.** A task whose context was
//!   cancelled before it returned is listed as
//!   [`GroupError::Cancelled`]; a task that returned `Err` is listed with
//!   its error even if a cancel came first (one entry per task). A spawn
//!   refused because the group's context was done has no index; it is
//!   kept as [`GroupErrors::refused`], so `wait` still never reports
//!   success for work that did not happen. In a first-success group the
//!   winner's own cancel of the others is the point, so once a task has
//!   won, the others' ends and refused spawns are not reported.
//! * **A success counts only if it returned in time.** The lifecycle drops
//!   a value returned after its context was done, so a task that returns
//!   `Ok` after another won, or after the caller cancelled, is not a
//!   winner. (Errors, by contrast, are recorded by the task as it returns,
//!   as in fail-fast.) A task that returns `Ok` past its pool's per-job
//!   timeout is therefore neither a winner nor listed as a failure, as in
//!   fail-fast, where it does not fail the group. The crew counts the
//!   winner as a completed job and a task that returned `Err` as a failed
//!   one, in every mode.
//!
//! [`ErrGroup`]: super::ErrGroup
//! [`ErrGroup::new`]: super::ErrGroup::new

use std::fmt;
use std::marker::PhantomData;

use crate::error::{Cancelled, GroupError, GroupErrors};

#[cfg(doc)]
use super::ErrGroup;

/// How an [`ErrGroup`] treats its tasks' ends: one of
/// [`FailFast`], [`CollectAll`] and [`FirstSuccess`]. Sealed; pick a mode
/// with the group's constructor.
pub trait GroupMode: sealed::Sealed {
    /// What a task returns when it succeeds: `()`, or the value a
    /// [`FirstSuccess`] group hands back.
    type Value: Send + 'static;
}

mod sealed {
    /// The mode's policy, out of users' reach.
    pub trait Sealed: Send + Sync + 'static {
        /// A failure (an error, panic or discarded task) cancels the group,
        /// and only the first is kept.
        const CANCEL_ON_FAILURE: bool;
        /// A success cancels the group, and only the first is kept.
        const CANCEL_ON_SUCCESS: bool;
    }
}

/// The default mode: the first error or panic cancels the group, and
/// `wait` returns it (Go's errgroup). Made by [`ErrGroup::new`] and
/// [`ErrGroup::on_pool`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailFast;

/// Every task runs whatever the others do; `wait` returns every failure
/// together, as a [`GroupErrors`]. Made by [`ErrGroup::collect_all`] and
/// [`ErrGroup::collect_all_on_pool`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CollectAll;

/// Tasks return `Result<T, E>`; the first `Ok` wins and cancels the group,
/// and `wait` returns its value, or every failure if none succeeded. Made
/// by [`ErrGroup::first_success`] and [`ErrGroup::first_success_on_pool`].
pub struct FirstSuccess<T>(PhantomData<fn() -> T>);

impl<T> fmt::Debug for FirstSuccess<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FirstSuccess")
    }
}

impl GroupMode for FailFast {
    type Value = ();
}

impl sealed::Sealed for FailFast {
    const CANCEL_ON_FAILURE: bool = true;
    const CANCEL_ON_SUCCESS: bool = false;
}

impl GroupMode for CollectAll {
    type Value = ();
}

impl sealed::Sealed for CollectAll {
    const CANCEL_ON_FAILURE: bool = false;
    const CANCEL_ON_SUCCESS: bool = false;
}

impl<T: Send + 'static> GroupMode for FirstSuccess<T> {
    type Value = T;
}

impl<T: Send + 'static> sealed::Sealed for FirstSuccess<T> {
    const CANCEL_ON_FAILURE: bool = false;
    const CANCEL_ON_SUCCESS: bool = true;
}

/// What `wait` will report, built up as tasks end.
///
/// # Invariants
///
/// * `failures` is in the order the ends were recorded (under the group's
///   lock), each entry a different task. Under `CANCEL_ON_FAILURE` it
///   holds at most one entry, the first.
/// * `won` is set at most once, and only under `CANCEL_ON_SUCCESS`.
/// * `cut_short` is the first cancellation that kept work from happening
///   with no task to list it under: a refused spawn, or (fail-fast, where
///   only the first failure is listed) a task stopped by cancellation.
pub(super) struct Verdict<M: GroupMode, E> {
    failures: Vec<(usize, GroupError<E>)>,
    cut_short: Option<Cancelled>,
    won: Option<M::Value>,
}

impl<M: GroupMode, E> Verdict<M, E> {
    pub(super) fn new() -> Self {
        Self {
            failures: Vec::new(),
            cut_short: None,
            won: None,
        }
    }

    /// Records that task `index` failed; returns whether the group is to be
    /// cancelled.
    pub(super) fn fail(&mut self, index: usize, failure: GroupError<E>) -> bool {
        if !M::CANCEL_ON_FAILURE {
            self.failures.push((index, failure));
            false
        } else if self.failures.is_empty() {
            self.failures.push((index, failure));
            true
        } else {
            false
        }
    }

    /// Records that task `index` was stopped by cancellation before it
    /// returned.
    pub(super) fn cancelled(&mut self, index: usize, reason: Cancelled) {
        if M::CANCEL_ON_FAILURE {
            self.cut_short.get_or_insert(reason);
        } else {
            self.failures.push((index, GroupError::Cancelled(reason)));
        }
    }

    /// Records that cancellation refused a spawn.
    pub(super) fn refused(&mut self, reason: Cancelled) {
        self.cut_short.get_or_insert(reason);
    }

    /// Offers a task's success; hands the value back if it did not win (the
    /// caller drops it outside the lock). `Ok` means the group is to be
    /// cancelled.
    pub(super) fn succeed(&mut self, value: M::Value) -> Result<(), M::Value> {
        if M::CANCEL_ON_SUCCESS && self.won.is_none() {
            self.won = Some(value);
            Ok(())
        } else {
            Err(value)
        }
    }

    /// Fail-fast's result: the first failure, or else the first
    /// cancellation that cut the group short.
    pub(super) fn first(self) -> Result<(), GroupError<E>> {
        let Self {
            failures,
            cut_short,
            ..
        } = self;
        match (failures.into_iter().next(), cut_short) {
            (Some((_, failure)), _) => Err(failure),
            (None, Some(reason)) => Err(GroupError::Cancelled(reason)),
            (None, None) => Ok(()),
        }
    }

    /// Collect-all's result: every failure, if there was any (or a refused
    /// spawn).
    pub(super) fn every(self) -> Result<(), GroupErrors<E>> {
        if self.failures.is_empty() && self.cut_short.is_none() {
            Ok(())
        } else {
            Err(GroupErrors::new(self.failures, self.cut_short))
        }
    }

    /// First-success's result: the winner's value, or every failure.
    pub(super) fn winner(self) -> Result<M::Value, GroupErrors<E>> {
        match self.won {
            Some(value) => Ok(value),
            None => Err(GroupErrors::new(self.failures, self.cut_short)),
        }
    }
}
