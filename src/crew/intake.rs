//! The way into a crew's queue: waiting for room while watching for
//! cancellation, and a [`Feeder`] that other crews' workers own.
//!
//! The same two-phase wait as the worker loop: spin on `try_send` (and the
//! cancel flag) with a bounded backoff, then block in a `Select` over the
//! send, the cancel channel and an optional *closed* signal. Used for a
//! submit blocked on a full queue, a worker blocked on a full results
//! channel, and a pipeline stage blocked on the next stage's queue.
//!
//! A pipeline stage's send blocks in a plain `send` instead, timed to
//! look at the context now and then ([`OnCancel::Drained`]; a rendezvous
//! queue excepted): the queue it waits on is a crew's, whose workers
//! drain it as they leave when that crew is cancelled, so the
//! cancellation still ends the wait (once a worker of that crew is done
//! with its running job), and a `Select` costs each blocked send a
//! registration on the cancel channel and, once woken, a second lock of
//! the queue's waker to unregister, taken while the stage's workers lock
//! it to wake the next blocked sender. On a pipeline whose stages keep
//! their queues full, that contention parked the stages' threads twice
//! as often as a plain send does (`benches/README.md`, "Pipelines").

use std::time::{Duration, Instant};

use super::{Envelope, Queued};
use crate::context::Context;
use crate::error::TrySubmitError;
use crate::sync::channel::{
    self, Receiver, Select, SendError, SendTimeoutError, Sender, TryRecvError, TrySendError,
};
use crate::sync::{Arc, AtomicBool, Mutex, Ordering, Spin};

/// Why [`send`] gave the item back.
pub(crate) enum SendFail<T> {
    /// The deadline passed with the channel still full.
    Full(T),
    /// Every receiver is gone.
    Disconnected(T),
    /// The context is done.
    Cancelled(T),
    /// The closed signal fired.
    Closed(T),
}

impl<T> SendFail<T> {
    /// The submit error for this failure, with the caller's job taken out
    /// of the item.
    pub(crate) fn refused<J>(self, job: impl FnOnce(T) -> J) -> TrySubmitError<J> {
        match self {
            Self::Full(item) => TrySubmitError::Full(job(item)),
            Self::Disconnected(item) | Self::Closed(item) => TrySubmitError::Closed(job(item)),
            Self::Cancelled(item) => TrySubmitError::Cancelled(job(item)),
        }
    }
}

/// How a send blocked on a full queue learns that its context is done.
#[derive(Clone, Copy)]
pub(crate) enum OnCancel<'a> {
    /// It watches the context's `done()` beside the send, in a `Select`.
    Watch(&'a Receiver<()>),
    /// The queue's receivers end the wait: they are the workers of the
    /// crew the context belongs to, and each drains the queue as it leaves
    /// a cancelled crew, which makes room for the send. The crew then
    /// discards what the send queued (`Shared::landed`). The wait may so
    /// last until a worker of that crew ends its running job. Only for a
    /// queue with room to make: a rendezvous send needs a receiver still
    /// there.
    Drained,
}

/// Sends `item`, waiting for room as `wait` allows.
#[inline]
pub(crate) fn send_within<T>(
    tx: &Sender<T>,
    item: T,
    wait: Wait,
    ctx: &Context,
    cancel: OnCancel<'_>,
    closed: Option<&Receiver<()>>,
) -> Result<(), SendFail<T>> {
    match wait {
        Wait::Now => tx.try_send(item).map_err(|err| match err {
            TrySendError::Full(item) => SendFail::Full(item),
            TrySendError::Disconnected(item) => SendFail::Disconnected(item),
        }),
        Wait::Forever => send(tx, item, ctx, cancel, None, closed),
        Wait::Until(deadline) => send(tx, item, ctx, cancel, Some(deadline), closed),
    }
}

/// Sends `item`, waiting for room until `deadline` (`None`: no limit)
/// while `ctx` is live (`cancel` says how a blocked send learns it is
/// not). Marked inline: its fast path is one
/// `try_send`, and, being generic, it is inlined or not in the user's
/// crate, where unrelated code could make it a call costing each
/// accepted job 26 instructions (callgrind).
#[inline]
pub(crate) fn send<T>(
    tx: &Sender<T>,
    item: T,
    ctx: &Context,
    cancel: OnCancel<'_>,
    deadline: Option<Instant>,
    closed: Option<&Receiver<()>>,
) -> Result<(), SendFail<T>> {
    match tx.try_send(item) {
        Ok(()) => Ok(()),
        Err(TrySendError::Disconnected(item)) => Err(SendFail::Disconnected(item)),
        Err(TrySendError::Full(item)) => send_slow(
            tx,
            item,
            &Watch {
                ctx,
                cancel,
                deadline,
                closed,
            },
        ),
    }
}

/// What a send blocked on a full channel watches while it waits.
struct Watch<'a> {
    ctx: &'a Context,
    cancel: OnCancel<'a>,
    deadline: Option<Instant>,
    closed: Option<&'a Receiver<()>>,
}

impl Watch<'_> {
    fn is_closed(&self) -> bool {
        self.closed.is_some_and(is_disconnected)
    }
}

/// Whether a signal channel (a closed signal, a context's `done()`) has
/// fired: it fires by disconnecting.
pub(crate) fn is_disconnected(signal: &Receiver<()>) -> bool {
    matches!(signal.try_recv(), Err(TryRecvError::Disconnected))
}

#[cold]
fn send_slow<T>(tx: &Sender<T>, item: T, watch: &Watch<'_>) -> Result<(), SendFail<T>> {
    match spin_send(tx, item, watch) {
        Ok(ended) => ended,
        Err(item) => block_send(tx, item, watch),
    }
}

/// The first phase: `try_send` with a bounded backoff, watching the
/// context, the closed signal and the deadline. `Err` hands the item back
/// once the spin budget is spent.
fn spin_send<T>(
    tx: &Sender<T>,
    mut item: T,
    watch: &Watch<'_>,
) -> Result<Result<(), SendFail<T>>, T> {
    let mut spin = Spin::default();
    while spin.snooze() {
        if watch.ctx.is_done() {
            return Ok(Err(SendFail::Cancelled(item)));
        }
        if watch.is_closed() {
            return Ok(Err(SendFail::Closed(item)));
        }
        match tx.try_send(item) {
            Ok(()) => return Ok(Ok(())),
            Err(TrySendError::Full(back)) => item = back,
            Err(TrySendError::Disconnected(back)) => {
                return Ok(Err(SendFail::Disconnected(back)));
            }
        }
        if watch.deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(Err(SendFail::Full(item)));
        }
    }
    Err(item)
}

/// The second phase: block in a `Select` over the send, the cancel
/// channel (unless the queue is [`Drained`](OnCancel::Drained)) and the
/// closed signal, until the deadline; with nothing to watch but the send,
/// in the send itself.
fn block_send<T>(tx: &Sender<T>, item: T, watch: &Watch<'_>) -> Result<(), SendFail<T>> {
    let disconnected = |SendError(item)| SendFail::Disconnected(item);
    if let (OnCancel::Drained, None, None) = (watch.cancel, watch.closed, watch.deadline) {
        return drained_send(tx, item, watch.ctx);
    }
    let mut select = Select::new();
    let send = select.send(tx);
    let cancelled = match watch.cancel {
        OnCancel::Watch(done) => Some(select.recv(done)),
        OnCancel::Drained => None,
    };
    if let Some(closed) = watch.closed {
        select.recv(closed);
    }
    let operation = match watch.deadline {
        None => select.select(),
        Some(deadline) => match select.select_deadline(deadline) {
            Ok(operation) => operation,
            Err(_) => return Err(SendFail::Full(item)),
        },
    };
    // The cancel and closed channels only ever disconnect; completing the
    // selected receive just acknowledges that.
    match (operation.index(), watch.cancel) {
        (i, _) if i == send => operation.send(tx, item).map_err(disconnected),
        (i, OnCancel::Watch(done)) if Some(i) == cancelled => {
            let _ = operation.recv(done);
            Err(SendFail::Cancelled(item))
        }
        _ => {
            if let Some(closed) = watch.closed {
                let _ = operation.recv(closed);
            }
            Err(SendFail::Closed(item))
        }
    }
}

/// How often a send blocked on a [`Drained`](OnCancel::Drained) queue
/// looks at its context itself.
const DRAINED_RECHECK: Duration = Duration::from_millis(100);

/// A plain send on a [`Drained`](OnCancel::Drained) queue. The drain is
/// what ends the wait on cancellation; the context is also looked at
/// every [`DRAINED_RECHECK`], for a crew left with no worker to drain it
/// (its last workers' respawns all failing at once): without that look,
/// such a send would outlive the cancellation.
fn drained_send<T>(tx: &Sender<T>, mut item: T, ctx: &Context) -> Result<(), SendFail<T>> {
    loop {
        match tx.send_timeout(item, DRAINED_RECHECK) {
            Ok(()) => return Ok(()),
            Err(SendTimeoutError::Disconnected(back)) => return Err(SendFail::Disconnected(back)),
            Err(SendTimeoutError::Timeout(back)) if ctx.is_done() => {
                return Err(SendFail::Cancelled(back));
            }
            Err(SendTimeoutError::Timeout(back)) => item = back,
        }
    }
}

/// How long a submit may wait for room in the queue.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    /// Not at all.
    Now,
    /// As long as it takes.
    Forever,
    /// Until this instant.
    Until(Instant),
}

impl Wait {
    /// At most `timeout` from now (forever, if that overflows).
    pub(crate) fn at_most(timeout: Duration) -> Self {
        Instant::now()
            .checked_add(timeout)
            .map_or(Self::Forever, Self::Until)
    }
}

/// What [`Feeder`] needs of a crew, with the crew's `Exec` erased.
pub(super) trait Intake<J>: Send + Sync {
    fn enter(
        &self,
        tx: &Sender<Queued<J>>,
        job: J,
        wait: Wait,
        closed: Option<&Receiver<()>>,
    ) -> Result<(), TrySubmitError<J>>;
}

/// A sender into a crew's queue that goes through the crew's one way in
/// (or, without a crew, a plain channel such as a pipeline's collector).
/// Owned by workers of another crew: the queue disconnects when the last
/// feeder is gone.
pub(crate) struct Feeder<J> {
    pub(super) tx: super::JobsTx<J>,
    pub(super) crew: Option<Arc<dyn Intake<J>>>,
}

impl<J> Clone for Feeder<J> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            crew: self.crew.clone(),
        }
    }
}

impl<J> Feeder<J> {
    /// Feeds a plain channel, not a crew.
    pub(crate) fn channel(tx: Sender<Queued<J>>) -> Self {
        Self {
            tx: Arc::new(tx),
            crew: None,
        }
    }

    /// The channel, to watch for room in a `Select`.
    pub(crate) fn sender(&self) -> &Sender<Queued<J>> {
        &self.tx
    }

    /// Queues `job`, waiting for room (`wait`) while `ctx` is live.
    ///
    /// # Errors
    ///
    /// As for [`Crew::submit`](super::Crew::submit); the job comes back.
    pub(crate) fn feed(
        &self,
        job: J,
        wait: Wait,
        ctx: &Context,
        cancel: &Receiver<()>,
    ) -> Result<(), TrySubmitError<J>> {
        if let Some(crew) = &self.crew {
            return crew.enter(&self.tx, job, wait, None);
        }
        let queued = Queued::Job(Envelope::unstamped(job));
        send_within(&self.tx, queued, wait, ctx, OnCancel::Watch(cancel), None)
            .map_err(|fail| fail.refused(|queued| queued.into_job()))
    }
}

/// A front door's intake switch: once closed, submits fail with `Closed`
/// and submitters blocked on a full queue wake (its signal disconnects).
/// Closing through `&self` lets a pool shared behind an `Arc` stop taking
/// jobs; the open check costs one relaxed load per submit.
#[derive(Debug)]
pub(crate) struct Shutter {
    closed: AtomicBool,
    /// Dropped on close, which disconnects `signal`.
    tx: Mutex<Option<Sender<()>>>,
    signal: Receiver<()>,
}

impl Shutter {
    pub(crate) fn new() -> Self {
        let (tx, signal) = channel::bounded(0);
        Self {
            closed: AtomicBool::new(false),
            tx: Mutex::new(Some(tx)),
            signal,
        }
    }

    /// Closes intake. Idempotent.
    pub(crate) fn close(&self) {
        // ORDERING: Relaxed: a submit racing the close may go either way;
        // the disconnection below is what wakes blocked submitters.
        self.closed.store(true, Ordering::Relaxed);
        drop(self.tx.lock().take());
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        // ORDERING: as in `close`.
        self.closed.load(Ordering::Relaxed)
    }

    /// What a blocked submit watches: it disconnects on close.
    pub(crate) fn signal(&self) -> &Receiver<()> {
        &self.signal
    }
}
