//! Per-worker state: one value per worker thread — a connection, a
//! compressor, a scratch buffer — built once by an initialiser on the
//! worker's own thread and handed to the handler as `&mut S` for every
//! job that worker runs.
//!
//! Decisions:
//! * **Fallible initialiser**, `Fn(usize) -> Result<S, E>` with the
//!   worker's index: opening a connection fails in real programs, and an
//!   infallible one is `Ok::<_, Infallible>`. A panic in it counts as a
//!   failure with the panic's message.
//! * **A failed start is not retried.** The worker is logged
//!   (`log::error!`) and not replaced, so a broken initialiser cannot spin
//!   re-creating threads. [`build_with_state`] waits for the first workers'
//!   initialisers and fails with [`BuildError::WorkerInit`] only if none
//!   succeeded; a pool whose last live worker fails to start later (a
//!   replacement, a resize) is cancelled, so its queued jobs are reported
//!   rather than stranded.
//! * **Fresh after a panic.** A handler that panicked may have left its
//!   state half-updated: the replacement worker builds a new one, and the
//!   old one is dropped on the old worker's thread. A worker that leaves
//!   (retired by a resize, or at shutdown) drops its state on its own
//!   thread too, so thread-affine resources are made and freed where they
//!   are used. `S` must still be `Send`, since it lives in the worker's
//!   local slot that a replacement inherits (emptied first).
//!
//! [`build_with_state`]: crate::WorkerPoolBuilder::build_with_state
//! [`BuildError::WorkerInit`]: crate::BuildError::WorkerInit

use std::any::Any;
use std::fmt::Display;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::{WorkerPool, WorkerPoolBuilder};
use crate::context::Context;
use crate::error::BuildError;
use crate::sync::{Condvar, Mutex};
use crate::unwind;

/// A worker's state, type-erased so that one `WorkerPool<J, R>` type
/// serves pools with and without it. `None` for pools without state.
pub(super) type Slot = Option<Box<dyn Any + Send>>;

/// Builds one worker's state on its own thread.
pub(super) type Init = Box<dyn Fn(usize) -> Result<Box<dyn Any + Send>, String> + Send + Sync>;

/// The handler with the state it needs, erased to one shape.
pub(super) type Handler<J, R> = Box<dyn Fn(&Context, &mut Slot, J) -> R + Send + Sync>;

/// A stateless handler in the erased shape.
pub(super) fn plain<J, R>(
    handler: impl Fn(&Context, J) -> R + Send + Sync + 'static,
) -> Handler<J, R> {
    Box::new(move |ctx, _state, job| handler(ctx, job))
}

/// A handler and initialiser over state `S`, in the erased shape.
fn with_state<S, E, J, R>(
    init: impl Fn(usize) -> Result<S, E> + Send + Sync + 'static,
    handler: impl Fn(&Context, &mut S, J) -> R + Send + Sync + 'static,
) -> (Init, Handler<J, R>)
where
    S: Send + 'static,
    E: Display,
{
    let init: Init = Box::new(move |index| match init(index) {
        Ok(state) => Ok(Box::new(state)),
        Err(err) => Err(err.to_string()),
    });
    let handler: Handler<J, R> = Box::new(move |ctx, slot, job| {
        // Every worker that runs jobs entered with its state built (see
        // `Starts::enter`), and only `leave` takes it out.
        let state = slot.as_mut().and_then(|state| state.downcast_mut::<S>());
        let state = state.expect("brigade: a worker runs jobs only with its state built");
        handler(ctx, state, job)
    });
    (init, handler)
}

impl WorkerPoolBuilder {
    /// Validates the settings and starts the workers, each of which first
    /// builds its own state with `init(index)` on its own thread and then
    /// hands it to `handler` as `&mut S` for every job it runs: one
    /// connection, compressor or buffer per worker, made once.
    ///
    /// A worker replaced after a panic builds a fresh state (the old one,
    /// perhaps half-updated, is dropped on the old worker's thread); a
    /// worker that leaves drops its state on its own thread. A worker whose
    /// initialiser fails (or panics) is logged and not replaced; this call
    /// waits for the first workers' initialisers and fails only if none
    /// succeeded.
    ///
    /// # Errors
    ///
    /// As for [`build`](Self::build), plus [`BuildError::WorkerInit`] if no
    /// worker could build its state (with the first failure's message).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use brigade::WorkerPool;
    ///
    /// // One scratch buffer per worker, reused by every job it runs.
    /// let pool = WorkerPool::builder().workers(2).build_with_state(
    ///     |_index| Ok::<_, Infallible>(Vec::<u8>::with_capacity(4096)),
    ///     |_ctx, buffer: &mut Vec<u8>, line: String| {
    ///         buffer.clear();
    ///         buffer.extend(line.bytes().rev());
    ///         String::from_utf8_lossy(buffer).into_owned()
    ///     },
    /// )?;
    /// pool.submit("stressed".to_owned())?;
    /// pool.close();
    /// assert_eq!(pool.results().recv()?.result, Ok("desserts".to_owned()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build_with_state<S, E, J, R>(
        self,
        init: impl Fn(usize) -> Result<S, E> + Send + Sync + 'static,
        handler: impl Fn(&Context, &mut S, J) -> R + Send + Sync + 'static,
    ) -> Result<WorkerPool<J, R>, BuildError>
    where
        S: Send + 'static,
        E: Display,
        J: Send + 'static,
        R: Send + 'static,
    {
        let (init, handler) = with_state(init, handler);
        let (pool, workers) = self.start(handler, Some(init))?;
        match pool.crew.exec().starts.wait(workers) {
            Ok(()) => Ok(pool),
            // The last worker to fail cancelled the pool: dropping it
            // joins what is left and discards nothing (nothing was queued).
            Err(why) => Err(BuildError::WorkerInit(why)),
        }
    }
}

/// How the first workers' initialisers went, for `build_with_state`.
#[derive(Default)]
pub(super) struct Starts {
    tally: Mutex<Tally>,
    changed: Condvar,
}

#[derive(Default)]
struct Tally {
    ok: usize,
    failed: usize,
    first_error: Option<String>,
}

impl Starts {
    /// Builds a worker's state into `slot` with `init`, catching a panic;
    /// tallies the outcome.
    pub(super) fn enter(&self, init: &Init, index: usize, slot: &mut Slot) -> Result<(), String> {
        let built = match catch_unwind(AssertUnwindSafe(|| init(index))) {
            Ok(built) => built,
            Err(payload) => Err(format!(
                "the initialiser panicked: {}",
                unwind::message(payload)
            )),
        };
        let mut tally = self.tally.lock();
        let result = match built {
            Ok(state) => {
                *slot = Some(state);
                tally.ok += 1;
                Ok(())
            }
            Err(why) => {
                tally.failed += 1;
                tally.first_error.get_or_insert_with(|| why.clone());
                Err(format!("its state initialiser failed: {why}"))
            }
        };
        self.changed.notify_all();
        result
    }

    /// Waits until `workers` initialisers have finished; `Err` with the
    /// first failure if none succeeded.
    pub(super) fn wait(&self, workers: usize) -> Result<(), String> {
        let mut tally = self.tally.lock();
        while tally.ok == 0 && tally.ok + tally.failed < workers {
            self.changed.wait(&mut tally);
        }
        match tally.ok {
            0 => Err(tally.first_error.clone().unwrap_or_default()),
            _ => Ok(()),
        }
    }
}

/// Drops a leaving worker's state on its thread, quietly.
pub(super) fn leave(slot: &mut Slot) {
    unwind::drop_quietly(slot.take());
}
