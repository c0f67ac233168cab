//! [`Pipeline`]: stages of workers chained by bounded channels.
//!
//! The user contract is on [`Pipeline`].
//!
//! # Implementation notes
//!
//! Stages run on the same worker runtime as every pool, wired channel to
//! channel: a stage's workers send straight into the next stage's queue,
//! each worker owning a clone of that queue's sender. (DESIGN.md pictures
//! each stage as a `WorkerPool`; a `WorkerPool` between stages would need a
//! forwarding thread and a second hand-off per item.) When a stage's last
//! worker exits, its clones are gone and the next stage's queue disconnects.
//! The pipeline is built back to front, so each stage can be given the
//! sender of the stage after it.

use std::fmt;
use std::marker::PhantomData;

use crossbeam_channel::{Receiver, Select, Sender, TryRecvError};

use crate::context::Context;
use crate::crew::{Crew, End, Envelope, Exec, Feeder, Ran, Run, Wait};
use crate::error::{
    BuildError, Cancelled, PipelineError, StageError, StageFailure, TrySubmitError,
};
use crate::options::{Options, OrderWindow, check_capacity, order_setters};
use crate::ordered::Window;
use crate::sizing::Sizing;
use crate::stats::Stats;
use crate::unwind;

/// A value travelling through the pipeline with its input index.
struct Item<T> {
    index: u64,
    value: T,
}

/// What every stage of one run shares.
struct Wiring<E> {
    ctx: Context,
    failures: Sender<StageFailure<E>>,
    fail_fast: bool,
}

/// A stage's settings, validated at `run`.
#[derive(Debug, Clone)]
struct StageConfig {
    name: String,
    workers: usize,
    buffer: Option<usize>,
}

/// A started stage, type-erased so the pipeline can hold all of them.
trait Running {
    fn stats(&self) -> StageStats;
}

/// A stage that could not start: its name and why.
type StageFault = (String, BuildError);

/// A started stage. Dropping it joins its threads.
struct Stage<A, B, E> {
    name: String,
    crew: Crew<Item<A>, StageExec<A, B, E>>,
}

impl<A: Send + 'static, B: Send + 'static, E: Send + 'static> Stage<A, B, E> {
    /// Starts the stage `config` describes, running `f`, its workers
    /// feeding `output`; returns it with the way into its queue (the only
    /// one: the queue disconnects when that feeder is gone).
    fn start(
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
        let (crew_config, stage_ctx) = config.options(&wiring.ctx).validate().map_err(fail)?;
        let (input, rx) = crew_config.channel();
        let crew =
            Crew::start(crew_config, stage_ctx, exec, rx, move || output.clone()).map_err(fail)?;
        // Stages never grow: let go of the feeder the maker holds, so the
        // next stage's queue disconnects when this stage's workers exit.
        crew.seal();
        let input = crew.feeder(input);
        let stage = Self {
            name: config.name.clone(),
            crew,
        };
        Ok((stage, input))
    }
}

impl<A, B, E> Running for Stage<A, B, E> {
    fn stats(&self) -> StageStats {
        StageStats {
            name: self.name.clone(),
            stats: self.crew.stats(),
        }
    }
}

/// Starts the stages added so far, back to front: given the sender the
/// last of them should feed, returns the sender that feeds the first.
/// A failure names the stage that could not start.
type Launch<In, Out, E> = Box<
    dyn FnOnce(
        &Wiring<E>,
        &[StageConfig],
        Feeder<Item<Out>>,
    ) -> Result<Started<In>, (String, BuildError)>,
>;

/// The first stage's input, and every stage started, first stage first.
type Started<In> = (Feeder<Item<In>>, Vec<Box<dyn Running>>);

/// A chain of stages from `In` to `Out`, whose stages fail with `E`.
///
/// The seed's pipeline composition (fetch → parse → save) as a library:
///
/// ```text
/// inputs ─► [stage 1: n₁ workers] ─► [stage 2: n₂ workers] ─► … ─► outputs
///          bounded queue          bounded queue
/// ```
///
/// * Each stage has its own worker count and its own bounded input queue
///   ([`buffer`](Pipeline::buffer); default: one slot per worker), so a slow
///   stage slows the ones before it instead of letting memory grow.
/// * Each stage closes its output when its input is exhausted and its
///   workers are done, so the end of the inputs flows through the whole
///   pipeline and [`run`](Pipeline::run) returns.
/// * Cancellation anywhere — the parent context, a fail-fast error, a
///   panic — stops every stage promptly: workers blocked on a full queue,
///   workers waiting for input and the feeding caller all wake on it.
/// * A stage error is **fail-fast** by default: the first error cancels the
///   pipeline and is returned. [`collect_errors`](Pipeline::collect_errors)
///   instead records each failed item and carries on with the others.
/// * Output is in completion order, or input order with
///   [`ordered`](Pipeline::ordered) (a reorder window bounds how far the
///   feeder may run ahead of the slowest item).
/// * [`PipelineOutput::stages`] reports each stage's [`Stats`].
///
/// The calling thread feeds the inputs and collects the outputs in one
/// `select` loop, so `run` needs no extra thread and the input iterator
/// need not be `Send`.
///
/// # Examples
///
/// ```
/// use brigade::{Context, Pipeline};
///
/// let ctx = Context::new();
/// let out = Pipeline::new(&ctx)
///     .stage("parse", 4, |_ctx, line: &str| line.trim().parse::<u32>())
///     .stage("double", 2, |_ctx, n: u32| Ok(n * 2))
///     .ordered()
///     .run(["1", " 2", "3 "])?;
/// assert_eq!(out.outputs, [2, 4, 6]);
/// assert_eq!(out.stages[0].name, "parse");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a Pipeline does nothing until run() is called"]
pub struct Pipeline<In, Out, E> {
    ctx: Context,
    configs: Vec<StageConfig>,
    launch: Launch<In, Out, E>,
    /// The reorder window, for output in input order.
    ordered: Option<OrderWindow>,
    fail_fast: bool,
    /// `buffer()` was called with no stage to apply to: `run` refuses.
    buffer_before_stage: bool,
    _types: PhantomData<fn(In) -> (Out, E)>,
}

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

/// What a completed [`Pipeline::run`] produced.
#[derive(Debug)]
#[non_exhaustive]
pub struct PipelineOutput<Out, E> {
    /// The last stage's outputs, in completion order, or input order if
    /// [`ordered`](Pipeline::ordered).
    pub outputs: Vec<Out>,
    /// Items that failed, in the order seen (always empty unless
    /// [`collect_errors`](Pipeline::collect_errors)).
    pub failures: Vec<StageFailure<E>>,
    /// Each stage's counters, first stage first.
    pub stages: Vec<StageStats>,
}

impl<In, E> Pipeline<In, In, E>
where
    In: Send + 'static,
    E: Send + 'static,
{
    /// An empty pipeline under `ctx`: cancelling `ctx` cancels every run.
    /// Add stages with [`stage`](Self::stage).
    pub fn new(ctx: &Context) -> Self {
        Self {
            ctx: ctx.clone(),
            configs: Vec::new(),
            launch: Box::new(|_, _, output| Ok((output, Vec::new()))),
            ordered: None,
            fail_fast: true,
            buffer_before_stage: false,
            _types: PhantomData,
        }
    }
}

impl<In, Out, E> Pipeline<In, Out, E>
where
    In: Send + 'static,
    Out: Send + 'static,
    E: Send + 'static,
{
    /// Adds a stage named `name` (its threads are named `{name}-0`, …) that
    /// runs `f` on `workers` threads over the previous stage's outputs.
    ///
    /// `f` may be invoked on several threads at once. Settings are checked
    /// by [`run`](Self::run).
    pub fn stage<B, F>(self, name: impl Into<String>, workers: usize, f: F) -> Pipeline<In, B, E>
    where
        B: Send + 'static,
        F: Fn(&Context, Out) -> Result<B, E> + Send + Sync + 'static,
    {
        let Self {
            ctx,
            mut configs,
            launch: previous,
            ordered,
            fail_fast,
            buffer_before_stage,
            ..
        } = self;
        let position = configs.len();
        configs.push(StageConfig {
            name: name.into(),
            workers,
            buffer: None,
        });
        let launch: Launch<In, B, E> = Box::new(move |wiring, configs, output| {
            let config = &configs[position];
            let (stage, input) = Stage::start(config, wiring, f, output)?;
            let (input, mut running) = previous(wiring, configs, input)?;
            running.push(Box::new(stage));
            Ok((input, running))
        });
        Pipeline {
            ctx,
            configs,
            launch,
            ordered,
            fail_fast,
            buffer_before_stage,
            _types: PhantomData,
        }
    }

    /// The capacity of the most recently added stage's input queue (default:
    /// its worker count). `0` hands each item over directly. Called before
    /// the first stage it has nothing to size, and [`run`](Self::run)
    /// refuses with [`BuildError::BufferBeforeStage`].
    pub fn buffer(mut self, capacity: usize) -> Self {
        match self.configs.last_mut() {
            Some(config) => config.buffer = Some(capacity),
            None => self.buffer_before_stage = true,
        }
        self
    }

    order_setters!();

    /// Keep going when an item fails: record it in
    /// [`PipelineOutput::failures`] and process the rest, instead of
    /// cancelling the pipeline at the first failure.
    pub fn collect_errors(mut self) -> Self {
        self.fail_fast = false;
        self
    }

    /// Feeds `inputs` through every stage and collects the outputs. Starts
    /// each stage's threads, and joins them all before returning.
    ///
    /// # Errors
    ///
    /// * [`PipelineError::Stage`]: the first failure, in fail-fast mode;
    /// * [`PipelineError::Cancelled`]: the pipeline's context was cancelled;
    /// * [`PipelineError::Build`]: a stage has zero or too many workers, a
    ///   too large buffer, a name with a NUL byte, or its threads could not
    ///   start;
    /// * [`PipelineError::Settings`]: the ordered window is zero or too
    ///   large, or [`buffer`](Self::buffer) came before any stage.
    pub fn run<I>(self, inputs: I) -> Result<PipelineOutput<Out, E>, PipelineError<E>>
    where
        I: IntoIterator<Item = In>,
    {
        let Self {
            ctx,
            configs,
            launch,
            ordered,
            fail_fast,
            buffer_before_stage,
            ..
        } = self;
        if buffer_before_stage {
            return Err(PipelineError::Settings(BuildError::BufferBeforeStage));
        }
        let window = check(&ctx, &configs, ordered)?;
        let run_ctx = ctx.child();
        let (failures_tx, failures) = crossbeam_channel::unbounded();
        let wiring = Wiring {
            ctx: run_ctx.clone(),
            failures: failures_tx,
            fail_fast,
        };
        // Room for one: with no stages at all, the feeder sends into this
        // channel itself, and the same thread must then receive.
        let (output_tx, output) = crossbeam_channel::bounded(1);
        let started = launch(&wiring, &configs, Feeder::channel(output_tx));
        drop(wiring);
        let (input, running) =
            started.map_err(|(stage, error)| PipelineError::Build { stage, error })?;
        let mut drive = Drive::new(&run_ctx, input, output, failures, window, fail_fast);
        // Declared after `running`, so dropped first: if the input iterator
        // panics, the stages are cancelled before their threads are joined.
        let cancel_on_unwind = CancelOnDrop(&run_ctx);
        let ended = drive.run(inputs.into_iter());
        let stages = running.iter().map(|stage| stage.stats()).collect();
        // Dropping the stages joins their threads: on success they have all
        // exited; on failure or cancellation they are exiting now.
        drop(cancel_on_unwind);
        drop(running);
        ended.map(|()| PipelineOutput {
            outputs: drive.outputs,
            failures: drive.collected,
            stages,
        })
    }
}

/// Cancels the run when dropped, on every path out of `run`.
struct CancelOnDrop<'a>(&'a Context);

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl StageConfig {
    /// The stage's settings as the options every pool validates: its
    /// workers, its input queue (`buffer`, default one slot per worker),
    /// its thread names, under the run's context.
    fn options(&self, ctx: &Context) -> Options {
        Options {
            sizing: Sizing::Fixed(self.workers),
            queue_capacity: Some(self.buffer.unwrap_or(self.workers)),
            thread_name: self.name.clone(),
            context: Some(ctx.clone()),
            ..Options::default()
        }
    }
}

/// Validates every stage (before any starts) and the window; returns the
/// window size for ordered output.
fn check<E>(
    ctx: &Context,
    configs: &[StageConfig],
    ordered: Option<OrderWindow>,
) -> Result<Option<usize>, PipelineError<E>> {
    for config in configs {
        let error = |error| PipelineError::Build {
            stage: config.name.clone(),
            error,
        };
        if let Some(buffer) = config.buffer {
            check_capacity(buffer, |requested, max| BuildError::BufferTooLarge {
                requested,
                max,
            })
            .map_err(error)?;
        }
        config.options(ctx).check().map_err(error)?;
    }
    let workers: usize = configs.iter().map(|c| c.workers).sum();
    ordered
        .map(|window| window.size(workers))
        .transpose()
        .map_err(PipelineError::Settings)
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
            End::Panicked(payload) => StageError::Panicked(unwind::message(payload)),
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

/// The calling thread's side of a run: feeds inputs, collects outputs and
/// failures, and watches for cancellation, in one `select` loop.
struct Drive<'a, In, Out, E> {
    ctx: &'a Context,
    cancel: Receiver<()>,
    /// `None` once the inputs are exhausted (which closes stage 1's queue).
    input: Option<Feeder<Item<In>>>,
    output: Receiver<Envelope<Item<Out>>>,
    failures: Receiver<StageFailure<E>>,
    /// Ordered mode: outputs (or holes, for failed items) by index.
    window: Option<Window<Option<Out>>>,
    outputs: Vec<Out>,
    collected: Vec<StageFailure<E>>,
    fail_fast: bool,
}

impl<'a, In, Out, E> Drive<'a, In, Out, E> {
    fn new(
        ctx: &'a Context,
        input: Feeder<Item<In>>,
        output: Receiver<Envelope<Item<Out>>>,
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

    fn run(&mut self, inputs: impl Iterator<Item = In>) -> Result<(), PipelineError<E>> {
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
            let feed = match (&next, &self.input, &self.window) {
                (Some(item), Some(input), Some(window)) if window.fits(item.index) => Some(input),
                (Some(_), Some(input), None) => Some(input),
                _ => None,
            };
            // `ready` only watches; each branch then tries its operation,
            // and a spurious wake-up goes round again.
            let mut select = Select::new();
            let send_op = feed.map(|input| select.send(input.sender()));
            let output_op = select.recv(&self.output);
            let failure_op = select.recv(&self.failures);
            select.recv(&self.cancel);
            match select.ready() {
                i if Some(i) == send_op => self.feed(&mut next),
                i if i == output_op => match self.output.try_recv() {
                    Ok(queued) => self.output(queued.job.index, Some(queued.job.value)),
                    // Every stage has finished: collect late failures.
                    Err(TryRecvError::Disconnected) => return self.finish(),
                    Err(TryRecvError::Empty) => {}
                },
                i if i == failure_op => {
                    if let Ok(failure) = self.failures.try_recv() {
                        self.failure(failure)?;
                    }
                }
                _ => {
                    if self.ctx.is_done() {
                        return self.cancelled();
                    }
                }
            }
        }
    }

    /// Hands `next` to the first stage through its crew's way in.
    fn feed(&mut self, next: &mut Option<Item<In>>) {
        let (Some(input), Some(item)) = (&self.input, next.take()) else {
            return;
        };
        match input.feed(item, Wait::Now, self.ctx, &self.cancel) {
            Ok(()) => {}
            // Room went before we got to it: try again.
            Err(TrySubmitError::Full(item)) => *next = Some(item),
            // Closed or cancelled only after a cancellation, which the next
            // turn of the loop reports; the item is dropped with the run.
            Err(TrySubmitError::Closed(item) | TrySubmitError::Cancelled(item)) => {
                unwind::drop_quietly(item.value);
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

impl<In, Out, E> fmt::Debug for Pipeline<In, Out, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("stages", &self.configs)
            .field("ordered", &self.ordered)
            .field("fail_fast", &self.fail_fast)
            .finish_non_exhaustive()
    }
}
