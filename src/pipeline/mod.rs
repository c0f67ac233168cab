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
//!
//! # Starting the stages
//!
//! Each stage's crew is made idle, back to front, and then staffed front
//! to back, the first stage's threads started first. Started in the
//! order they were made, the last stage first, the kernel placed a
//! 2-worker CPU-bound middle stage's threads on one CPU of two in 16 or
//! 17 runs of 40, beside the one-worker stage after it, and kept them
//! there: the other CPU's threads, spinning while they waited for room
//! in that stage's queue, never left it idle long enough to pull one
//! over. Those runs took 1.5× as long (`benches/README.md`, "Pipelines:
//! two modes" and the section after it); started front to back, as a
//! hand-wired pipeline usually is, the slow runs mostly went away. A
//! thread that fails to start fails the build, which cancels and joins
//! the stages already staffed.
//!
//! Settings are checked, and threads started, at one [`Pipeline::build`],
//! as every pool's builder does: a pipeline that was built cannot fail
//! for its settings once items flow (#15). `stage(..)` returning a
//! `Result` was the other way to check "where set"; one `build()?` reads
//! better than a `?` per stage.

mod drive;
mod stage;

use std::fmt;
use std::marker::PhantomData;

use crossbeam_channel::Receiver;

use self::drive::Drive;
pub use self::stage::StageStats;
use self::stage::{Item, Launch, Running, Stage, StageConfig, Wiring};
use crate::context::Context;
use crate::crew::{Feeder, Propagate, Queued};
use crate::error::{BuildError, PipelineBuildError, PipelineError, StageFailure};
use crate::options::{OrderWindow, check_capacity, order_setters};

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
///   pipeline and [`run`](ReadyPipeline::run) returns.
/// * Cancellation anywhere — the parent context, a fail-fast error, a
///   panic — stops every stage promptly: workers waiting for input and the
///   feeding caller wake on it, and workers blocked on the next stage's
///   full queue as soon as that stage's workers leave it (each once its
///   running item ends).
/// * A stage error is **fail-fast** by default: the first error cancels the
///   pipeline and is returned. [`collect_errors`](Pipeline::collect_errors)
///   instead records each failed item and carries on with the others.
/// * Output is in completion order, or input order with
///   [`ordered`](Pipeline::ordered) (a reorder window bounds how far the
///   feeder may run ahead of the slowest item).
/// * [`PipelineOutput::stages`] reports each stage's [`Stats`](crate::Stats).
///
/// Every setting is checked by [`build`](Pipeline::build), which also starts
/// each stage's threads; a [`ReadyPipeline`] can then only fail with what
/// the items do or a cancellation. The calling thread feeds the inputs and
/// collects the outputs in one `select` loop, so `run` needs no extra thread
/// and the input iterator need not be `Send`.
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
///     .build()?
///     .run(["1", " 2", "3 "])?;
/// assert_eq!(out.outputs, [2, 4, 6]);
/// assert_eq!(out.stages[0].name, "parse");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a Pipeline does nothing until it is built and run"]
pub struct Pipeline<In, Out, E> {
    ctx: Context,
    configs: Vec<StageConfig>,
    launch: Launch<In, Out, E>,
    /// The reorder window, for output in input order.
    ordered: Option<OrderWindow>,
    fail_fast: bool,
    /// `buffer()` was called with no stage to apply to: `build` refuses.
    buffer_before_stage: bool,
    /// Every stage's capture/enter pair, if set.
    propagate: Option<Propagate>,
    _types: PhantomData<fn(In) -> (Out, E)>,
}

/// What a completed [`ReadyPipeline::run`] produced.
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
            propagate: None,
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
    /// by [`build`](Self::build).
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
            propagate,
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
            let (stage, input) = Stage::idle(config, wiring, f, output)?;
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
            propagate,
            _types: PhantomData,
        }
    }

    /// The capacity of the most recently added stage's input queue (default:
    /// its worker count). `0` hands each item over directly. Called before
    /// the first stage it has nothing to size, and [`build`](Self::build)
    /// refuses with [`BuildError::BufferBeforeStage`].
    ///
    /// A deeper queue costs only the memory of the items it holds, and it
    /// pays when items take microseconds: each item that finds the next
    /// queue full parks a thread and wakes it again, and with more stage
    /// threads than CPUs those hand-offs, not the work, set the pace.
    /// Measure your own stages; `benches/README.md` ("Pipelines: queue
    /// depth") has one such measurement.
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

    /// Carries the context of the thread that runs the pipeline into
    /// every stage's items, as
    /// [`ThreadPoolBuilder::propagate`](crate::ThreadPoolBuilder::propagate)
    /// does for a pool's jobs: the first stage's items capture on the
    /// thread that calls [`run`](ReadyPipeline::run), and each later
    /// stage's on the worker that passes the item on, inside the value
    /// that worker entered — so the value flows through every stage.
    /// Setting it again replaces the pair. Both hooks may be invoked on
    /// several threads at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use brigade::{Context, Pipeline};
    ///
    /// thread_local! {
    ///     static REQUEST: Cell<u64> = const { Cell::new(0) };
    /// }
    ///
    /// REQUEST.set(7);
    /// let out = Pipeline::<u64, u64, String>::new(&Context::new())
    ///     .stage("first", 2, |_ctx, n: u64| Ok(n + REQUEST.get()))
    ///     .stage("second", 2, |_ctx, n: u64| Ok(n * REQUEST.get()))
    ///     .propagate(|| REQUEST.get(), |id, run| {
    ///         let outer = REQUEST.replace(id);
    ///         run();
    ///         REQUEST.set(outer);
    ///     })
    ///     .ordered()
    ///     .build()?
    ///     .run([1, 2])?;
    /// assert_eq!(out.outputs, [56, 63]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn propagate<T, C, F>(mut self, capture: C, enter: F) -> Self
    where
        T: Send + 'static,
        C: Fn() -> T + Send + Sync + 'static,
        F: Fn(T, &mut dyn FnMut()) + Send + Sync + 'static,
    {
        self.propagate = Some(Propagate::new(capture, enter));
        self
    }

    /// Checks every setting and starts every stage's threads, which then
    /// wait for [`ReadyPipeline::run`] to feed them.
    ///
    /// # Errors
    ///
    /// * [`PipelineBuildError::Stage`]: a stage has zero or too many
    ///   workers, a too large buffer, a name with a NUL byte, or its threads
    ///   could not start (the stages already started are stopped and
    ///   joined);
    /// * [`PipelineBuildError::Settings`]: the ordered window is zero or too
    ///   large, or [`buffer`](Self::buffer) came before any stage.
    pub fn build(self) -> Result<ReadyPipeline<In, Out, E>, PipelineBuildError> {
        let Self {
            ctx,
            configs,
            launch,
            ordered,
            fail_fast,
            buffer_before_stage,
            propagate,
            ..
        } = self;
        if buffer_before_stage {
            return Err(PipelineBuildError::Settings(BuildError::BufferBeforeStage));
        }
        let window = check(&ctx, &configs, ordered)?;
        let run_ctx = ctx.child();
        let (failures_tx, failures) = crossbeam_channel::unbounded();
        let wiring = Wiring {
            ctx: run_ctx.clone(),
            failures: failures_tx,
            fail_fast,
            propagate,
        };
        // Unbounded: the caller collects outputs between feeds (see
        // `Drive::run`), and every output ends up in its `Vec` anyway.
        let (output_tx, output) = crossbeam_channel::unbounded();
        let fault = |(stage, error)| PipelineBuildError::Stage { stage, error };
        let (input, stages) =
            launch(&wiring, &configs, Feeder::channel(output_tx)).map_err(fault)?;
        // Threads start front to back (the stages were made back to front,
        // each needing the next one's way in): see "Starting the stages".
        if let Err(failed) = stages.iter().try_for_each(|stage| stage.staff()) {
            // The staffed stages leave: cancelled, and with the first
            // stage's queue closed, before `stages` drops and joins them.
            run_ctx.cancel();
            drop(input);
            return Err(fault(failed));
        }
        Ok(ReadyPipeline {
            ctx: run_ctx,
            input,
            output,
            failures,
            window,
            fail_fast,
            stages,
            _types: PhantomData,
        })
    }
}

/// A [`Pipeline`] whose settings were checked and whose stages' threads are
/// running, waiting for inputs. Dropping it unrun closes the first stage's
/// queue and joins every thread.
#[must_use = "a ReadyPipeline does nothing until run() is called"]
pub struct ReadyPipeline<In, Out, E> {
    /// The run's context: a child of the pipeline's.
    ctx: Context,
    /// Declared before `stages`, so dropped first: the first stage's queue
    /// disconnects, the end flows through, and the stages' threads exit.
    input: Feeder<Item<In>>,
    output: Receiver<Queued<Item<Out>>>,
    failures: Receiver<StageFailure<E>>,
    window: Option<usize>,
    fail_fast: bool,
    stages: Vec<Box<dyn Running>>,
    _types: PhantomData<fn(In) -> (Out, E)>,
}

impl<In, Out, E> ReadyPipeline<In, Out, E>
where
    In: Send + 'static,
    Out: Send + 'static,
    E: Send + 'static,
{
    /// Feeds `inputs` through every stage and collects the outputs; joins
    /// every stage's threads before returning.
    ///
    /// # Errors
    ///
    /// * [`PipelineError::Stage`]: the first failure, in fail-fast mode;
    /// * [`PipelineError::Cancelled`]: the pipeline's context was cancelled.
    pub fn run<I>(self, inputs: I) -> Result<PipelineOutput<Out, E>, PipelineError<E>>
    where
        I: IntoIterator<Item = In>,
    {
        let Self {
            ctx,
            input,
            output,
            failures,
            window,
            fail_fast,
            stages,
            ..
        } = self;
        let mut drive = Drive::new(&ctx, input, output, failures, window, fail_fast);
        // Declared after `stages`, so dropped first: if the input iterator
        // panics, the stages are cancelled before their threads are joined.
        let cancel_on_unwind = CancelOnDrop(&ctx);
        let ended = drive.run(inputs.into_iter());
        let stats = stages.iter().map(|stage| stage.stats()).collect();
        // Dropping the stages joins their threads: on success they have all
        // exited; on failure or cancellation they are exiting now.
        drop(cancel_on_unwind);
        drop(stages);
        ended.map(|()| PipelineOutput {
            outputs: drive.outputs,
            failures: drive.collected,
            stages: stats,
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

/// Validates every stage (before any starts) and the window; returns the
/// window size for ordered output.
fn check(
    ctx: &Context,
    configs: &[StageConfig],
    ordered: Option<OrderWindow>,
) -> Result<Option<usize>, PipelineBuildError> {
    for config in configs {
        let error = |error| PipelineBuildError::Stage {
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
        .map_err(PipelineBuildError::Settings)
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

impl<In, Out, E> fmt::Debug for ReadyPipeline<In, Out, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stages: Vec<String> = self.stages.iter().map(|s| s.stats().name).collect();
        f.debug_struct("ReadyPipeline")
            .field("stages", &stages)
            .field("window", &self.window)
            .field("fail_fast", &self.fail_fast)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::crew::tests::{FailSpawn, set_fail_spawn, unset_fail_spawn};

    /// Threads of this process named `{prefix}-…`.
    fn threads_named(prefix: &str) -> usize {
        let want = format!("{prefix}-");
        std::fs::read_dir("/proc/self/task")
            .expect("read /proc/self/task")
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.starts_with(&want))
            .count()
    }

    #[test]
    #[cfg(target_os = "linux")]
    #[cfg_attr(miri, ignore)] // reads /proc
    fn a_stage_whose_thread_cannot_start_fails_the_build_and_stops_the_stages_before_it() {
        // The last stage's second thread fails to start, after both
        // stages before it and its own first thread have started (front
        // to back); the failed build cancels and joins all of them, and
        // names the stage that failed. On a thread of its own, so a build
        // that hangs fails the test instead.
        set_fail_spawn(FailSpawn {
            name: "sfb3".to_owned(),
            index: Some(1),
            together: None,
            late: None,
        });
        let (done, built) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let result = Pipeline::<u64, u64, ()>::new(&Context::new())
                .stage("sfb1", 2, |_, n: u64| Ok(n))
                .stage("sfb2", 2, |_, n: u64| Ok(n))
                .stage("sfb3", 2, |_, n: u64| Ok(n))
                .build()
                .map(drop);
            let _ = done.send(result);
        });
        let built = built.recv_timeout(Duration::from_secs(30));
        unset_fail_spawn("sfb3");
        match built.expect("the failed build returns") {
            Err(PipelineBuildError::Stage { stage, error }) => {
                assert_eq!(stage, "sfb3");
                assert!(matches!(error, BuildError::Spawn(_)), "{error:?}");
            }
            other => panic!("expected sfb3's spawn to fail the build: {other:?}"),
        }
        // Joined before `build` returned; a joined thread may still be
        // listed in /proc for a moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        for stage in ["sfb1", "sfb2", "sfb3"] {
            while threads_named(stage) != 0 {
                assert!(Instant::now() < deadline, "{stage} left a thread");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}
