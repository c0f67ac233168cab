//! `wait_async`: a group's wait from async code. The future is `Pending`
//! until the last task ends — woken by it, through the `Waker` left in the
//! group's core — and then gives what `wait` gives; `wait` then returns at
//! once (its only remaining block is joining the group's idle workers,
//! which are already leaving).

use std::future::{Future, poll_fn};
use std::task::Poll;

use super::{CollectAll, Core, ErrGroup, FirstSuccess, GroupMode};
use crate::error::{GroupError, GroupErrors};

impl<E, M: GroupMode> Core<E, M> {
    /// Resolves once no task is pending.
    fn all_done(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(|cx| {
            let pending = self.pending.lock();
            if *pending == 0 {
                return Poll::Ready(());
            }
            // Under the `pending` lock, which the last task's `task_done`
            // takes before it looks for a waiter: no wake-up is missed.
            let mut waiter = self.waiter.lock();
            if !waiter.as_ref().is_some_and(|old| old.will_wake(cx.waker())) {
                *waiter = Some(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}

impl<E: Send + 'static> ErrGroup<'_, E> {
    /// [`wait`](Self::wait) for async code: waits for every task without
    /// blocking the thread that polls it. No async runtime is needed.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade::{Context, ErrGroup, GroupError};
    ///
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// # runtime.block_on(async {
    /// let group = ErrGroup::<String>::new(&Context::new());
    /// group.spawn(|_ctx| Ok(()))?;
    /// group.spawn(|_ctx| Err("disk full".to_owned()))?;
    /// assert_eq!(group.wait_async().await, Err(GroupError::Failed("disk full".to_owned())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn wait_async(self) -> Result<(), GroupError<E>> {
        self.core.all_done().await;
        self.wait()
    }
}

impl<E: Send + 'static> ErrGroup<'_, E, CollectAll> {
    /// [`wait`](Self::wait) for async code, as
    /// [`ErrGroup::wait_async`](ErrGroup::wait_async).
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    pub async fn wait_async(self) -> Result<(), GroupErrors<E>> {
        self.core.all_done().await;
        self.wait()
    }
}

impl<E: Send + 'static, T: Send + 'static> ErrGroup<'_, E, FirstSuccess<T>> {
    /// [`wait`](Self::wait) for async code, as
    /// [`ErrGroup::wait_async`](ErrGroup::wait_async).
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    pub async fn wait_async(self) -> Result<T, GroupErrors<E>> {
        self.core.all_done().await;
        self.wait()
    }
}
