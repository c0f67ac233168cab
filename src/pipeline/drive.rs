//! The calling thread's side of a [`Pipeline`](super::Pipeline) run.

use crossbeam_channel::{Receiver, Select, TryRecvError};

use super::stage::Item;
use crate::context::Context;
use crate::crew::{Feeder, Queued, Wait};
use crate::error::{Cancelled, PipelineError, StageFailure, TrySubmitError};
use crate::ordered::Window;
use crate::unwind;

/// The calling thread's side of a run: feeds inputs, collects outputs and
/// failures, and watches for cancellation, in one `select` loop.
pub(super) struct Drive<'a, In, Out, E> {
    ctx: &'a Context,
    cancel: Receiver<()>,
    /// `None` once the inputs are exhausted (which closes stage 1's queue).
    input: Option<Feeder<Item<In>>>,
    output: Receiver<Queued<Item<Out>>>,
    failures: Receiver<StageFailure<E>>,
    /// Ordered mode: outputs (or holes, for failed items) by index.
    window: Option<Window<Option<Out>>>,
    pub(super) outputs: Vec<Out>,
    pub(super) collected: Vec<StageFailure<E>>,
    fail_fast: bool,
}

impl<'a, In, Out, E> Drive<'a, In, Out, E> {
    pub(super) fn new(
        ctx: &'a Context,
        input: Feeder<Item<In>>,
        output: Receiver<Queued<Item<Out>>>,
        failures: Receiver<StageFailure<E>>,
        window: Option<usize>,
        fail_fast: bool,
    ) -> Self {
        Self {
            ctx,
            cancel: ctx.done(),
            input: Some(input),
            output,
            failures,
            window: window.map(Window::new),
            outputs: Vec::new(),
            collected: Vec::new(),
            fail_fast,
        }
    }

    pub(super) fn run(&mut self, inputs: impl Iterator<Item = In>) -> Result<(), PipelineError<E>> {
        let mut inputs = inputs.enumerate();
        let mut next: Option<Item<In>> = None;
        loop {
            if next.is_none() && self.input.is_some() {
                match inputs.next() {
                    Some((index, value)) => {
                        next = Some(Item {
                            index: index as u64,
                            value,
                        });
                    }
                    None => self.input = None,
                }
            }
            let can_feed = match (&next, &self.input, &self.window) {
                (Some(item), Some(_), Some(window)) => window.fits(item.index),
                (Some(_), Some(_), None) => true,
                _ => false,
            };
            if can_feed && self.feed(&mut next) {
                continue;
            }
            // Outputs are collected here, between feeds, and waited for
            // only when there is nothing to feed: a caller woken for every
            // output as well as for every feed doubled its wake-ups (#16).
            // The output channel is unbounded, so the last stage never
            // waits for this; what it holds ends up in `outputs` anyway.
            if self.collect_ready() {
                // The window may have moved: look again before blocking.
                continue;
            }
            if self.wait(can_feed && next.is_some())? {
                return Ok(());
            }
        }
    }

    /// Collects the outputs already there; returns whether there were any.
    fn collect_ready(&mut self) -> bool {
        let mut collected = false;
        while let Ok(queued) = self.output.try_recv() {
            let item = queued.into_job();
            self.output(item.index, Some(item.value));
            collected = true;
        }
        collected
    }

    /// Waits for room for the next input (if `feeding`, else for an
    /// output), a failure or the cancellation, and handles what came.
    /// `Ok(true)` once every stage has finished.
    fn wait(&mut self, feeding: bool) -> Result<bool, PipelineError<E>> {
        // `ready` only watches; each branch then tries its operation,
        // and a spurious wake-up goes round again.
        let mut select = Select::new();
        let feed = self.input.as_ref().filter(|_| feeding);
        let send_op = feed.map(|input| select.send(input.sender()));
        let output_op = feed.is_none().then(|| select.recv(&self.output));
        let failure_op = select.recv(&self.failures);
        select.recv(&self.cancel);
        match select.ready() {
            i if Some(i) == send_op => {}
            i if Some(i) == output_op => match self.output.try_recv() {
                Ok(queued) => {
                    let item = queued.into_job();
                    self.output(item.index, Some(item.value));
                }
                // Every stage has finished: collect late failures.
                Err(TryRecvError::Disconnected) => return self.finish().map(|()| true),
                Err(TryRecvError::Empty) => {}
            },
            i if i == failure_op => {
                if let Ok(failure) = self.failures.try_recv() {
                    self.failure(failure)?;
                }
            }
            _ => {
                if self.ctx.is_done() {
                    return self.cancelled().map(|()| true);
                }
            }
        }
        Ok(false)
    }

    /// Hands `next` to the first stage through its crew's way in, if it
    /// has room now; returns whether `next` is gone (fed, or dropped with
    /// a cancelled run).
    fn feed(&mut self, next: &mut Option<Item<In>>) -> bool {
        let (Some(input), Some(item)) = (&self.input, next.take()) else {
            return false;
        };
        match input.feed(item, Wait::Now, self.ctx, &self.cancel) {
            Ok(()) => true,
            Err(TrySubmitError::Full(item)) => {
                *next = Some(item);
                false
            }
            // Closed or cancelled only after a cancellation, which the next
            // turn of the loop reports; the item is dropped with the run.
            Err(TrySubmitError::Closed(item) | TrySubmitError::Cancelled(item)) => {
                unwind::drop_quietly(item.value);
                false
            }
        }
    }

    fn output(&mut self, index: u64, value: Option<Out>) {
        match &mut self.window {
            None => self.outputs.extend(value),
            Some(window) => {
                // Each index arrives once and was fed only if it fit.
                let _ = window.insert(index, value);
                while let Some(ready) = window.pop() {
                    self.outputs.extend(ready);
                }
            }
        }
    }

    fn failure(&mut self, failure: StageFailure<E>) -> Result<(), PipelineError<E>> {
        if self.fail_fast {
            self.ctx.cancel();
            return Err(PipelineError::Stage(failure));
        }
        self.output(failure.index, None);
        self.collected.push(failure);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), PipelineError<E>> {
        while let Ok(failure) = self.failures.try_recv() {
            self.failure(failure)?;
        }
        // Stages also end early on cancellation, dropping their items.
        match self.ctx.reason() {
            Some(reason) => Err(PipelineError::Cancelled(reason)),
            None => Ok(()),
        }
    }

    fn cancelled(&mut self) -> Result<(), PipelineError<E>> {
        // A fail-fast stage reports its failure before it cancels.
        while let Ok(failure) = self.failures.try_recv() {
            self.failure(failure)?;
        }
        Err(PipelineError::Cancelled(
            self.ctx.reason().unwrap_or(Cancelled::Canceled),
        ))
    }
}
