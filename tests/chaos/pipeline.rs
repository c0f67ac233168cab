//! `Pipeline` rounds: submitters send items through a channel into a run of
//! two or three stages, fail-fast or collecting errors, ordered or not;
//! the round may cancel the run, and every item must pass each stage at
//! most once, in order, and end in one place.

use std::ops::Range;
use std::panic;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use brigade::{
    Context, Pipeline, PipelineError, PipelineOutput, StageError, StageFailure, StageStats,
};
use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};

use crate::common::{LONG, SplitMix64};
use crate::feed::{Feed, Offer, join_all, split, unique_name};
use crate::ledger::{
    ACCEPTED, CREATED, Ledger, RELEASED, Tally, Token, check_no_threads, common_checks, conclude,
    describe, failed, finished, panicked, started,
};
use crate::work::{Mix, Work, perform, planned_message};
use crate::{PATIENCE, STAGES, pick, submitter_rng};

#[derive(Debug, Clone, Copy)]
struct StagePlan {
    workers: usize,
    buffer: Option<usize>,
}

#[derive(Debug)]
struct PipePlan {
    seed: u64,
    jobs: usize,
    submitters: usize,
    stages: Vec<StagePlan>,
    ordered: bool,
    fail_fast: bool,
    /// Capacity of the channel the submitters feed the inputs through.
    channel: usize,
    mix: Mix,
    /// Cancel the parent context at the moment.
    cancel: bool,
    trigger_at: usize,
}

impl PipePlan {
    fn new(seed: u64, jobs: usize) -> Self {
        let mut rng = SplitMix64(seed);
        let fail_fast = rng.below(2) == 0;
        let failure_rates: &[u64] = if fail_fast {
            &[0, 0, 1, 5, 20]
        } else {
            &[0, 20, 100]
        };
        let stages = (0..2 + rng.below(2))
            .map(|_| StagePlan {
                workers: 1 + rng.below(3) as usize,
                buffer: pick(&mut rng, &[None, Some(0), Some(1), Some(8)]),
            })
            .collect();
        Self {
            seed,
            jobs,
            submitters: 2 + rng.below(3) as usize,
            stages,
            ordered: rng.below(10) < 4,
            fail_fast,
            channel: pick(&mut rng, &[0, 1, 8]),
            mix: Mix::random(&mut rng, failure_rates, false),
            cancel: rng.below(3) == 0,
            trigger_at: rng.below(jobs as u64 + 1) as usize,
        }
    }
}

/// A pipeline item: its token and what it does in each stage.
struct PItem {
    token: Token,
    plan: [Work; STAGES],
}

type PipeResult = Result<PipelineOutput<PItem, usize>, PipelineError<usize>>;

struct PipeRound<'a> {
    plan: &'a PipePlan,
    ledger: Arc<Ledger>,
    feed: Feed,
}

/// The whole plan a round of `seed` and `jobs` follows, for messages.
pub(crate) fn plan(seed: u64, jobs: usize) -> String {
    format!("{:#?}", PipePlan::new(seed, jobs))
}

/// One round: `jobs` jobs, planned from `seed`, recorded in `ledger`.
pub(crate) fn round(seed: u64, jobs: usize, ledger: Arc<Ledger>) -> Tally {
    let plan = PipePlan::new(seed, jobs);
    let base = unique_name("cp");
    let names: Vec<String> = (0..plan.stages.len())
        .map(|stage| format!("{base}s{stage}"))
        .collect();
    let parent = Context::new();
    let round = PipeRound {
        plan: &plan,
        ledger,
        feed: Feed::new(plan.trigger_at, plan.submitters),
    };
    let (tx, rx) = crossbeam_channel::bounded(plan.channel);
    let (result, pulled) = thread::scope(|s| {
        let (round, names, parent) = (&round, &names, &parent);
        let runner = s.spawn(move || run_pipeline(round.plan, names, parent, rx));
        let submitters = split(jobs, plan.submitters)
            .into_iter()
            .enumerate()
            .map(|(index, ids)| {
                let tx = tx.clone();
                s.spawn(move || round.submitter(&tx, index, ids))
            })
            .collect();
        drop(tx);
        round.feed.moment.wait();
        if plan.cancel {
            parent.cancel();
        }
        join_all::<()>(submitters);
        runner
            .join()
            .unwrap_or_else(|payload| panic::resume_unwind(payload))
    });
    let mut found = Vec::new();
    for name in &names {
        check_no_threads(&mut found, name);
    }
    round.reconcile(found, result, &pulled, &names)
}

/// Builds the planned pipeline and runs it over the channel's items;
/// returns its result and the ids in the order it pulled them.
fn run_pipeline(
    plan: &PipePlan,
    names: &[String],
    parent: &Context,
    inputs: Receiver<PItem>,
) -> (PipeResult, Vec<usize>) {
    let mut pipeline = Pipeline::<PItem, PItem, usize>::new(parent);
    for (stage, (settings, name)) in plan.stages.iter().zip(names).enumerate() {
        pipeline = pipeline.stage(name.clone(), settings.workers, stage_fn(stage));
        if let Some(buffer) = settings.buffer {
            pipeline = pipeline.buffer(buffer);
        }
    }
    if plan.ordered {
        pipeline = pipeline.ordered();
    }
    if !plan.fail_fast {
        pipeline = pipeline.collect_errors();
    }
    let mut pulled = Vec::new();
    let result = pipeline.build().expect("valid pipeline").run(
        inputs
            .into_iter()
            .inspect(|item| pulled.push(item.token.id)),
    );
    (result, pulled)
}

fn stage_fn(
    stage: usize,
) -> impl Fn(&Context, PItem) -> Result<PItem, usize> + Send + Sync + 'static {
    move |ctx: &Context, item: PItem| {
        if perform(&item.token, item.plan[stage], stage, Some(ctx), None) {
            Ok(item)
        } else {
            Err(item.token.id)
        }
    }
}

/// A pipeline run's outcome with the items' ids taken out (and the items
/// dropped).
enum PipeOutcome {
    Done {
        outputs: Vec<usize>,
        failures: Vec<StageFailure<usize>>,
        stages: Vec<StageStats>,
    },
    Failed(StageFailure<usize>),
    Cancelled,
    Other(String),
}

impl PipeRound<'_> {
    fn submitter(&self, tx: &Sender<PItem>, index: usize, ids: Range<usize>) -> Vec<()> {
        let _done = self.feed.submitter();
        let mut rng = submitter_rng(self.plan.seed, index);
        for id in ids {
            let mix = &self.plan.mix;
            let item = PItem {
                token: self.ledger.token(id),
                plan: [mix.pick(&mut rng), mix.pick(&mut rng), mix.pick(&mut rng)],
            };
            self.offer(tx, id, item, &mut rng);
        }
        Vec::new()
    }

    /// Sends through a random send flavour, resending what a full channel
    /// hands back; an item the ended run no longer takes is handed back.
    fn offer(&self, tx: &Sender<PItem>, id: usize, mut item: PItem, rng: &mut SplitMix64) {
        for attempt in 0.. {
            let method = if attempt >= PATIENCE { 0 } else { rng.below(3) };
            let sent = match method {
                0 => tx.send_timeout(item, LONG).map_err(|err| match err {
                    SendTimeoutError::Timeout(item) => {
                        self.ledger
                            .violation(format!("item {id}: the inputs were not read for {LONG:?}"));
                        (item, false)
                    }
                    SendTimeoutError::Disconnected(item) => (item, false),
                }),
                1 => tx.try_send(item).map_err(|err| match err {
                    TrySendError::Full(item) => (item, true),
                    TrySendError::Disconnected(item) => (item, false),
                }),
                _ => tx
                    .send_timeout(item, Duration::from_micros(rng.below(300)))
                    .map_err(|err| match err {
                        SendTimeoutError::Timeout(item) => (item, true),
                        SendTimeoutError::Disconnected(item) => (item, false),
                    }),
            };
            match sent {
                Ok(()) => return self.feed.accept(&self.ledger, id),
                Err((back, true)) => {
                    item = back;
                    self.feed.retry();
                }
                Err((back, false)) => {
                    self.feed
                        .hand_back::<_, ()>(&self.ledger, id, back, Offer::Refused);
                    return;
                }
            }
        }
    }

    fn reconcile(
        &self,
        mut found: Vec<String>,
        result: PipeResult,
        pulled: &[usize],
        names: &[String],
    ) -> Tally {
        let outcome = match result {
            Ok(out) => PipeOutcome::Done {
                outputs: out.outputs.iter().map(|item| item.token.id).collect(),
                failures: out.failures,
                stages: out.stages,
            },
            Err(PipelineError::Stage(failure)) => PipeOutcome::Failed(failure),
            Err(PipelineError::Cancelled(_)) => PipeOutcome::Cancelled,
            Err(other) => PipeOutcome::Other(other.to_string()),
        };
        let position = self.positions(&mut found, pulled);
        let mut lost = 0;
        for (id, pos) in position.iter().enumerate() {
            let s = self.ledger.state(id);
            if s & CREATED != 0 {
                lost += common_checks(&mut found, id, s);
                self.check_chain(&mut found, id, s, pos.is_some());
            }
        }
        for (stage, settings) in self.plan.stages.iter().enumerate() {
            if self.ledger.peak(stage) > settings.workers {
                found.push(format!(
                    "{} items ran at once in stage {stage} of {} workers",
                    self.ledger.peak(stage),
                    settings.workers
                ));
            }
        }
        lost += self.check_outcome(&mut found, &outcome, pulled, names);
        let tally = Tally::of(&self.ledger, &self.feed, lost);
        conclude(&self.ledger, found, tally)
    }

    /// Each id's position in the inputs; each accepted item pulled once.
    fn positions(&self, found: &mut Vec<String>, pulled: &[usize]) -> Vec<Option<usize>> {
        let mut position = vec![None; self.plan.jobs];
        for (index, &id) in pulled.iter().enumerate() {
            if position[id].replace(index).is_some() {
                found.push(format!("item {id} was pulled from the inputs twice"));
            }
            if self.ledger.state(id) & ACCEPTED == 0 {
                found.push(format!("item {id} was pulled but never accepted"));
            }
        }
        position
    }

    /// An item enters stage k only from the inputs (k = 0) or after passing
    /// stage k - 1.
    fn check_chain(&self, found: &mut Vec<String>, id: usize, s: u32, pulled: bool) {
        for stage in 0..self.plan.stages.len() {
            if s & started(stage) == 0 {
                continue;
            }
            let entered = if stage == 0 {
                pulled
            } else {
                let before = stage - 1;
                s & finished(before) != 0 && s & (failed(before) | panicked(before)) == 0
            };
            if !entered {
                found.push(format!(
                    "item {id} started stage {stage} without passing the one before {}",
                    describe(s)
                ));
            }
        }
        if s & ACCEPTED != 0 && s & started(0) == 0 && s & RELEASED == 0 {
            found.push(format!(
                "item {id} never entered a stage and was never dropped"
            ));
        }
    }

    /// Checks the run's result against the ledger; returns how many items
    /// are unaccounted for.
    fn check_outcome(
        &self,
        found: &mut Vec<String>,
        outcome: &PipeOutcome,
        pulled: &[usize],
        names: &[String],
    ) -> u64 {
        let plan = self.plan;
        let last = plan.stages.len() - 1;
        let any_failure = self
            .ledger
            .count(|s| (0..=last).any(|stage| s & (failed(stage) | panicked(stage)) != 0))
            > 0;
        match outcome {
            PipeOutcome::Done {
                outputs,
                failures,
                stages,
            } => {
                if plan.fail_fast && any_failure {
                    found.push("a fail-fast run with a failed item returned Ok".to_owned());
                }
                for failure in failures {
                    self.check_failure(found, failure, pulled, names);
                }
                self.check_stage_stats(found, stages, names, pulled.len());
                self.check_outputs(found, outputs, failures, pulled)
            }
            PipeOutcome::Failed(failure) => {
                if !plan.fail_fast {
                    found.push(format!("a collect_errors run failed fast: {failure}"));
                }
                self.check_failure(found, failure, pulled, names);
                0
            }
            PipeOutcome::Cancelled => {
                if !plan.cancel {
                    found.push("the run reported Cancelled, but nothing cancelled it".to_owned());
                }
                0
            }
            PipeOutcome::Other(error) => {
                found.push(format!("the run failed unexpectedly: {error}"));
                0
            }
        }
    }

    /// A reported failure names a pulled item, the stage where it failed or
    /// panicked, and the right error.
    fn check_failure(
        &self,
        found: &mut Vec<String>,
        failure: &StageFailure<usize>,
        pulled: &[usize],
        names: &[String],
    ) {
        let id = pulled.get(failure.index as usize).copied();
        let stage = names.iter().position(|name| *name == failure.stage);
        let agrees = match (id, stage, &failure.error) {
            (Some(id), Some(stage), StageError::Failed(error)) => {
                *error == id && self.ledger.state(id) & failed(stage) != 0
            }
            (Some(id), Some(stage), StageError::Panicked(message)) => {
                message.message() == planned_message(id, stage)
                    && self.ledger.state(id) & panicked(stage) != 0
            }
            _ => false,
        };
        if !agrees {
            found.push(format!(
                "the failure {failure:?} does not match the ledger (item {id:?}: {})",
                id.map_or_else(String::new, |id| describe(self.ledger.state(id)))
            ));
        }
    }

    /// After a clean run every accepted item was pulled, and each pulled
    /// item is either an output or a failure, once; ordered runs keep the
    /// input order. Returns how many items are unaccounted for.
    fn check_outputs(
        &self,
        found: &mut Vec<String>,
        outputs: &[usize],
        failures: &[StageFailure<usize>],
        pulled: &[usize],
    ) -> u64 {
        let accepted = self.ledger.count(|s| s & ACCEPTED != 0);
        if pulled.len() as u64 != accepted {
            found.push(format!(
                "a clean run pulled {} of {accepted} accepted items",
                pulled.len()
            ));
        }
        let last = self.plan.stages.len() - 1;
        let mut seen = vec![0u32; self.plan.jobs];
        for &id in outputs {
            seen[id] += 1;
            let s = self.ledger.state(id);
            if s & finished(last) == 0 || s & failed(last) != 0 {
                found.push(format!(
                    "item {id} is an output but did not pass the last stage {}",
                    describe(s)
                ));
            }
        }
        for failure in failures {
            if let Some(&id) = pulled.get(failure.index as usize) {
                seen[id] += 1;
            }
        }
        let mut lost = 0;
        for &id in pulled {
            if seen[id] != 1 {
                lost += u64::from(seen[id] == 0);
                found.push(format!(
                    "item {id} ended {} times (outputs and failures) in a clean run {}",
                    seen[id],
                    describe(self.ledger.state(id))
                ));
            }
        }
        if self.plan.ordered {
            let expected: Vec<usize> = pulled
                .iter()
                .copied()
                .filter(|&id| outputs.contains(&id))
                .collect();
            if expected != outputs {
                found.push("an ordered run's outputs are out of input order".to_owned());
            }
        }
        lost
    }

    /// After a clean run each stage's counters match the ledger: stage k
    /// took what stage k - 1 passed on, and nothing was cancelled.
    fn check_stage_stats(
        &self,
        found: &mut Vec<String>,
        stages: &[StageStats],
        names: &[String],
        pulled: usize,
    ) {
        if stages.len() != names.len() {
            found.push(format!(
                "{} stage stats for {} stages",
                stages.len(),
                names.len()
            ));
            return;
        }
        let mut fed = pulled as u64;
        for (stage, (stats, name)) in stages.iter().zip(names).enumerate() {
            if stats.name != *name {
                found.push(format!(
                    "stage {stage} is named {:?}, not {name:?}",
                    stats.name
                ));
            }
            let st = &stats.stats;
            let passed = self
                .ledger
                .count(|s| s & finished(stage) != 0 && s & failed(stage) == 0);
            let expected = [
                ("submitted", st.submitted, fed),
                (
                    "completed + failed",
                    st.completed + st.failed,
                    self.ledger.count(|s| s & started(stage) != 0),
                ),
                ("completed", st.completed, passed),
                (
                    "panicked",
                    st.panicked,
                    self.ledger.count(|s| s & panicked(stage) != 0),
                ),
                ("cancelled", st.cancelled, 0),
                ("timed_out", st.timed_out, 0),
                ("queued", st.queued as u64, 0),
            ];
            for (field, got, want) in expected {
                if got != want {
                    found.push(format!(
                        "stage {name}: {field} is {got}, the ledger says {want} ({st})"
                    ));
                }
            }
            fed = passed;
        }
    }
}
