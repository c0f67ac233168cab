//! Sending into a bounded channel while watching for cancellation.
//!
//! The same two-phase wait as the worker loop: spin on `try_send` (and the
//! cancel flag) with a bounded backoff, then block in a `Select` over the
//! send, the cancel channel and an optional *closed* signal. Used for a
//! submit blocked on a full queue, a worker blocked on a full results
//! channel, and a pipeline stage blocked on the next stage's queue.

use std::time::Instant;

use crossbeam_channel::{Receiver, Select, SendError, Sender, TryRecvError, TrySendError};

use crate::context::Context;
use crate::sync::Spin;

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

/// Sends `item`, waiting for room until `deadline` (`None`: no limit).
/// `cancel` must be `ctx.done()`.
pub(crate) fn send<T>(
    tx: &Sender<T>,
    item: T,
    ctx: &Context,
    cancel: &Receiver<()>,
    deadline: Option<Instant>,
    closed: Option<&Receiver<()>>,
) -> Result<(), SendFail<T>> {
    match tx.try_send(item) {
        Ok(()) => Ok(()),
        Err(TrySendError::Disconnected(item)) => Err(SendFail::Disconnected(item)),
        Err(TrySendError::Full(item)) => send_slow(tx, item, ctx, cancel, deadline, closed),
    }
}

#[cold]
fn send_slow<T>(
    tx: &Sender<T>,
    mut item: T,
    ctx: &Context,
    cancel: &Receiver<()>,
    deadline: Option<Instant>,
    closed: Option<&Receiver<()>>,
) -> Result<(), SendFail<T>> {
    let is_closed =
        || closed.is_some_and(|c| matches!(c.try_recv(), Err(TryRecvError::Disconnected)));
    let mut spin = Spin::default();
    while spin.snooze() {
        if ctx.is_done() {
            return Err(SendFail::Cancelled(item));
        }
        if is_closed() {
            return Err(SendFail::Closed(item));
        }
        match tx.try_send(item) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(back)) => item = back,
            Err(TrySendError::Disconnected(back)) => return Err(SendFail::Disconnected(back)),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(SendFail::Full(item));
        }
    }
    let mut select = Select::new();
    let send = select.send(tx);
    let cancelled = select.recv(cancel);
    if let Some(closed) = closed {
        select.recv(closed);
    }
    let operation = match deadline {
        None => select.select(),
        Some(deadline) => match select.select_deadline(deadline) {
            Ok(operation) => operation,
            Err(_) => return Err(SendFail::Full(item)),
        },
    };
    match operation.index() {
        i if i == send => operation
            .send(tx, item)
            .map_err(|SendError(item)| SendFail::Disconnected(item)),
        // The cancel and closed channels only ever disconnect; completing
        // the selected receive just acknowledges that.
        i if i == cancelled => {
            let _ = operation.recv(cancel);
            Err(SendFail::Cancelled(item))
        }
        _ => {
            if let Some(closed) = closed {
                let _ = operation.recv(closed);
            }
            Err(SendFail::Closed(item))
        }
    }
}
