//! One stage of a [`Pipeline`](super::Pipeline): its settings, its crew,
//! and the [`Exec`] that runs an item and passes it on.

use crossbeam_channel::{Receiver, Sender};

use crate::context::Context;
use crate::crew::{Crew, End, Exec, Feeder, Propagate, Ran, Run, Wait};
use crate::error::{BuildError, Cancelled, StageError, StageFailure};
use crate::options::Options;
use crate::sizing::Sizing;
use crate::stats::Stats;
use crate::unwind;

/// A value travelling through the pipeline with its input index.
pub(super) struct Item<T> {
    pub(super) index: u64,
    pub(super) value: T,
}

/// What every stage of one run shares.
pub(super) struct Wiring<E> {
    pub(super) ctx: Context,
    pub(super) failures: Sender<StageFailure<E>>,
    pub(super) fail_fast: bool,
    pub(super) propagate: Option<Propagate>,
}

/// A stage's settings, validated by `Pipeline::build`.
#[derive(Debug, Clone)]
pub(super) struct StageConfig {
    pub(super) name: String,
    pub(super) workers: usize,
    pub(super) buffer: Option<usize>,
}

/// A stage of a pipeline being built or run, type-erased so the
/// pipeline can hold all of them.
pub(super) trait Running: Send {
    /// Starts the stage's threads (made without them by [`Stage::idle`]).
    /// On failure the stage's context is cancelled: it never gets them.
    fn staff(&self) -> Result<(), StageFault>;
    fn stats(&self) -> StageStats;
}

/// A stage that could not start: its name and why.
pub(super) type StageFault = (String, BuildError);

/// A pipeline's stage. Dropping it joins its threads, if it has any.
pub(super) struct Stage<A, B, E> {
    name: String,
    crew: Crew<Item<A>, StageExec<A, B, E>>,
}

impl<A: Send + 'static, B: Send + 'static, E: Send + 'static> Stage<A, B, E> {
    /// Sets up the stage `config` describes, running `f`, its workers
    /// feeding `output`; returns it with the way into its queue (the only
    /// one: the queue disconnects when that feeder is gone). Its threads
    /// start at [`Running::staff`].
    pub(super) fn idle(
        config: &StageConfig,
        wiring: &Wiring<E>,
        f: impl Fn(&Context, A) -> Result<B, E> + Send + Sync + 'static,
        output: Feeder<Item<B>>,
    ) -> Result<(Self, Feeder<Item<A>>), StageFault> {
        let exec = StageExec {
            name: config.name.clone(),
            f: Box::new(f),
            ctx: wiring.ctx.clone(),
            cancel: wiring.ctx.done(),
            failures: wiring.failures.clone(),
            fail_fast: wiring.fail_fast,
        };
        let fail = |error| (config.name.clone(), error);
        let mut options = config.options(&wiring.ctx);
        options.propagate.clone_from(&wiring.propagate);
        let (crew_config, stage_ctx) = options.validate().map_err(fail)?;
        let (input, rx) = crew_config.channel();
        let crew = Crew::idle(crew_config, stage_ctx, exec, (&input, rx), move || {
            output.clone()
        });
        let input = crew.feeder(input);
        let stage = Self {
            name: config.name.clone(),
            crew,
        };
        Ok((stage, input))
    }
}

impl<A: Send + 'static, B: Send + 'static, E: Send + 'static> Running for Stage<A, B, E> {
    fn staff(&self) -> Result<(), StageFault> {
        self.crew
            .staff()
            .map_err(|error| (self.name.clone(), error))?;
        // Stages never grow: let go of the feeder the maker holds, so the
        // next stage's queue disconnects when this stage's workers exit.
        self.crew.seal();
        Ok(())
    }

    fn stats(&self) -> StageStats {
        StageStats {
            name: self.name.clone(),
            stats: self.crew.stats(),
        }
    }
}

/// Makes the stages added so far, back to front, without their threads
/// (see [`Running::staff`]): given the sender the last of them should
/// feed, returns the sender that feeds the first. A failure names the
/// stage that could not be made.
pub(super) type Launch<In, Out, E> = Box<
    dyn FnOnce(&Wiring<E>, &[StageConfig], Feeder<Item<Out>>) -> Result<Started<In>, StageFault>,
>;

/// The first stage's input, and every stage made, first stage first.
pub(super) type Started<In> = (Feeder<Item<In>>, Vec<Box<dyn Running>>);

/// One stage's counters after a run.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StageStats {
    /// The stage's name.
    pub name: String,
    /// Its counters: `completed` items passed on, `failed` items that
    /// returned an error or panicked, `cancelled` items never run.
    pub stats: Stats,
}

impl StageConfig {
    /// The stage's settings as the options every pool validates: its
    /// workers, its input queue (`buffer`, default one slot per worker),
    /// its thread names, under the run's context.
    pub(super) fn options(&self, ctx: &Context) -> Options {
        Options {
            sizing: Sizing::Fixed(self.workers),
            queue_capacity: Some(self.buffer.unwrap_or(self.workers)),
            thread_name: self.name.clone(),
            context: Some(ctx.clone()),
            ..Options::default()
        }
    }
}

/// A stage's function.
type StageFn<A, B, E> = Box<dyn Fn(&Context, A) -> Result<B, E> + Send + Sync>;

/// Runs one stage's items.
struct StageExec<A, B, E> {
    name: String,
    f: StageFn<A, B, E>,
    ctx: Context,
    cancel: Receiver<()>,
    failures: Sender<StageFailure<E>>,
    fail_fast: bool,
}

impl<A: Send + 'static, B: Send + 'static, E: Send + 'static> Exec<Item<A>> for StageExec<A, B, E> {
    /// The way into the next stage's queue (or the collector).
    type Local = Feeder<Item<B>>;

    fn run(&self, item: Item<A>, run: Run<'_>, next: &mut Self::Local) -> Ran {
        let Item { index, value } = item;
        run.call_judged(
            |_| Some(|ctx: &Context| (self.f)(ctx, value)),
            Result::is_err,
            |end| self.deliver(index, end, next),
        )
    }

    fn discard(&self, item: Item<A>, _reason: Cancelled) {
        unwind::drop_quietly(item.value);
    }
}

impl<A, B, E> StageExec<A, B, E> {
    /// Passes a value on to the next stage, or reports a failure (and, in
    /// fail-fast mode, cancels the run). An item whose context was
    /// cancelled ends here: the run is over.
    fn deliver(&self, index: u64, end: End<Result<B, E>>, next: &Feeder<Item<B>>) {
        let error = match end {
            End::Returned(Ok(value)) => {
                // On cancellation the item is dropped: the run is over.
                let _ = next.feed(
                    Item { index, value },
                    Wait::Forever,
                    &self.ctx,
                    &self.cancel,
                );
                return;
            }
            End::Returned(Err(error)) => StageError::Failed(error),
            End::Panicked(caught) => StageError::Panicked(caught.into_panic()),
            End::TimedOut | End::Cancelled(_) => return,
        };
        // Report before cancelling, so the driver finds the failure when it
        // sees the cancellation.
        let _ = self.failures.send(StageFailure {
            stage: self.name.clone(),
            index,
            error,
        });
        if self.fail_fast {
            self.ctx.cancel();
        }
    }
}
