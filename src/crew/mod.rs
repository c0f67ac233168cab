//! The worker runtime: one supervised loop that every front door reuses.
//!
//! * `job.rs`: the job lifecycle, written once, and the table of a job's
//!   states;
//! * `intake.rs`: the one way into the queue (a cancellable send, `Wait`,
//!   and the `Feeder` another crew's workers own);
//! * `worker.rs`: the loop, supervision (the respawn `Sentinel`), and
//!   thread start-up;
//! * `resize.rs`: the worker count — `set_workers`, growing by one, and
//!   retiring;
//! * `elastic.rs`: workers that come and go — leaving after the
//!   keep-alive, starting for a job no free worker waits for — and why no
//!   job is stranded between the two;
//! * `room.rs` and `inline.rs`: futures waiting for queue room, and joins
//!   that run a queued job on the joining worker;
//! * `here.rs`: a job its submitter runs on its own thread when the queue
//!   is full (`submit_or_run_here`), through the workers' lifecycle;
//! * `lend.rs`: jobs that borrow from the caller's stack (the one
//!   lifetime erasure);
//! * `propagate.rs`: the submitter's context (a span, a request id),
//!   captured at submit and entered around the job;
//! * `adaptive/`: the `Sizing::Adaptive` controller, its control law and
//!   the scheduler's clocks it reads.
//!
//! A crew is N OS threads sharing one jobs channel and the pool's
//! [`Context`]. It is generic over the job type `J` and an [`Exec`] that
//! runs a `J` through the lifecycle ([`Run`]) and reports a discarded one,
//! so [`ThreadPool`]'s boxed closures, `WorkerPool`'s typed jobs and
//! pipeline stages all run on this same loop. Each worker may own a piece
//! of local state ([`Exec::Local`], such as its clone of a results
//! `Sender`); a replacement worker inherits its predecessor's, so a channel
//! that workers feed disconnects exactly when the last worker has exited.
//!
//! # The loop
//!
//! Each worker takes a job, paces it (the rate limiter, if any, is a gate
//! before the start), runs it through the lifecycle, and goes back for the
//! next. Waiting for a job is two-phase: first spin on `try_recv` (and the
//! cancel flag) with a bounded backoff, then block. Blocking sleeps at
//! once, while a job usually arrives within microseconds on a busy pool;
//! the spin keeps the per-job cost at that of a plain `recv()` (see
//! `benches/README.md`).
//!
//! A worker blocks in a plain `recv()` on the jobs channel, as a
//! hand-written pool's does: whatever else must reach it there — the
//! pool's cancellation, a retire token, a job made ready on the
//! dispatcher's board — comes as a *turn* through that same channel. The
//! worker that receives one takes a waiting retire token (and leaves), or
//! looks at the board, and its loop looks at the cancel flag before it
//! parks again. The crew holds the front doors' sender weakly to send
//! them, so the channel still disconnects when intake closes. Two kinds
//! of crew block in a `Select` over the jobs, cancel and retire channels
//! instead: an elastic one, whose wait also times out after the
//! keep-alive, and a rendezvous one, where a turn can only be handed to a
//! worker already waiting. A `Select` costs each idle submit's start
//! about a microsecond more than a `recv()` (see `benches/README.md`,
//! "`D`: a park in `recv`").
//!
//! # Supervision
//!
//! A job that panics is caught by the lifecycle, reported on its handle or
//! results channel, logged with `log::warn!` and counted. Under
//! [`PanicPolicy::Respawn`] the worker that ran it then retires and a fresh
//! thread takes its place, its counters and its local state, so
//! thread-local state the panic may have corrupted leaves with the old
//! thread and the pool keeps its size. The replacement is started from a
//! `Sentinel` drop guard, which also fires if a panic escapes the loop
//! itself (the `threadpool` crate's model). Under [`PanicPolicy::CancelPool`]
//! the pool's context is cancelled instead.
//!
//! # Intake, shutdown and accounting
//!
//! The front door owns the jobs channel's `Sender` and hands it to
//! [`Crew::submit`]; dropping it closes intake, and workers drain the queue
//! and exit when it disconnects. A front door that closes through `&self`
//! also passes a *closed* signal, so a submit blocked on a full queue wakes
//! when intake closes. Cancelling the context makes workers stop taking
//! jobs; every job still queued is handed to [`Exec::discard`] by whichever
//! thread finds it — a worker on its way out, the shutdown call, or a
//! submitter that re-checks the context after its send landed. Every
//! accepted job is therefore either run exactly once or discarded exactly
//! once. `tests/loom.rs` model-checks this protocol on a real pool, its
//! threads and channels swapped for loom's through `crate::sync`.
//!
//! [`ThreadPool`]: crate::ThreadPool

mod adaptive;
mod dispatch;
mod elastic;
mod here;
mod inline;
mod intake;
mod job;
mod lend;
mod propagate;
mod resize;
mod room;
mod worker;

use std::any::Any;
use std::cell::Cell;
use std::time::{Duration, Instant};

use dispatch::Board;
pub(crate) use dispatch::{Dispatch, Route, runs_key};
pub(crate) use elastic::Elastic;
pub(crate) use inline::{run_inline, run_keyed_inline, works_for};
use intake::Intake;
pub(crate) use intake::{Feeder, OnCancel, SendFail, Shutter, Wait, send};
pub(crate) use job::{End, Ends, Judge, Ran, Run, Start};
pub(crate) use lend::{CellJob, Erased, Work, erase, erase_cell};
use propagate::Carried;
pub(crate) use propagate::Propagate;
pub(crate) use room::{Room, Ticket};

use crate::context::Context;
use crate::error::{BuildError, Cancelled, TrySubmitError};
use crate::stats::{Counters, JobEvent, JobOutcome, Stats, sampled, stamp};
use crate::sync::channel::{self, Receiver, Sender};
use crate::sync::thread::JoinHandle;
use crate::sync::{
    Arc, AtomicBool, AtomicUsize, CachePadded, Condvar, Mutex, Ordering, Weak, fence,
};
use crate::unwind;

/// What to do when a job panics.
///
/// In both cases the panic is caught, reported with its message (on the
/// job's handle, or as the job's result), logged with `log::warn!`, and
/// counted in [`Stats::panicked`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PanicPolicy {
    /// Retire the worker that ran the job and start a fresh thread in its
    /// place, so the pool keeps its size and no thread-local state survives
    /// the panic. Counted in [`Stats::respawned`].
    #[default]
    Respawn,
    /// Cancel the pool (fail-fast): queued jobs are discarded and reported
    /// cancelled, running jobs see their context cancelled, and new
    /// submissions are refused.
    CancelPool,
}

/// A user callback run on a worker thread with the worker's index.
pub(crate) type Hook = Arc<dyn Fn(usize) + Send + Sync>;

/// Knows how to run and how to discard one kind of job.
pub(crate) trait Exec<J>: Send + Sync + 'static {
    /// State each worker owns for its whole life, and hands to its
    /// replacement after a panic.
    type Local: Send + 'static;

    /// Runs `job` on the calling worker through `run`, the lifecycle,
    /// which builds its context, catches its panic, records its end and
    /// hands the end to the delivery the front door gives it.
    fn run(&self, job: J, run: Run<'_>, local: &mut Self::Local) -> Ran;

    /// Called on a worker's own thread before its first job (also a
    /// replacement's, and one started by a resize): `Err` says why the
    /// worker cannot start, and it leaves without running a job and is
    /// not replaced.
    fn enter(&self, _index: usize, _local: &mut Self::Local) -> Result<(), String> {
        Ok(())
    }

    /// Called on a worker's own thread as it leaves, before a replacement
    /// takes `local` after a panic. Must not unwind.
    fn leave(&self, _local: &mut Self::Local) {}

    /// Reports that `job` will never run, for `reason`. Must not unwind.
    fn discard(&self, job: J, reason: Cancelled);

    /// How many jobs `job` stands for in the pool's counters (a map
    /// chunk is one per item).
    #[inline]
    fn jobs(&self, _job: &J) -> u64 {
        1
    }

    /// How many jobs a discard of `job` counts as never run: as
    /// [`jobs`](Self::jobs), less any that already ran elsewhere (a job
    /// its handle's join ran inline), which no longer can after this.
    fn claim(&self, job: &J) -> u64 {
        self.jobs(job)
    }

    /// Whether `job` is the queue's reference to the job cell at `cell`
    /// (a join that runs a keyed job inline finds its envelope on the
    /// board by it). None is, unless the front door shares cells.
    fn holds(&self, _job: &J, _cell: *const ()) -> bool {
        false
    }
}

/// What a job must pass before it starts: a pool built with a rate
/// limiter paces its job starts through one.
pub(crate) trait StartGate: Send + Sync + 'static {
    /// Waits until a job may start under `ctx`.
    ///
    /// # Errors
    ///
    /// Why the job cannot start: the context was cancelled during the
    /// wait, or the job could not start before its deadline
    /// (`DeadlineExceeded`). The job is then discarded for that reason.
    fn pass(&self, ctx: &Context) -> Result<(), Cancelled>;
}

/// A queued job with what the worker runtime tracks about it: its
/// submission sequence number (the job id an `on_job_done` hook sees),
/// for a sampled job when it was queued (a [`stamp`], 0 if not
/// sampled), and the submitter's captured value if the crew propagates
/// one (`propagate.rs`).
pub(crate) struct Envelope<J> {
    pub(crate) job: J,
    pub(crate) seq: u64,
    pub(crate) queued_at: u64,
    pub(crate) carried: Option<Carried>,
}

impl<J> Envelope<J> {
    /// A job for a plain channel rather than a crew (a pipeline's
    /// collector): no sequence number, not timed in the queue.
    pub(crate) fn unstamped(job: J) -> Self {
        Self {
            job,
            seq: 0,
            queued_at: 0,
            carried: None,
        }
    }
}

/// What the jobs channel carries: a job, or a turn, which sends the
/// worker that receives it to the dispatcher's board (`dispatch.rs`).
pub(crate) enum Queued<J> {
    Job(Envelope<J>),
    Turn,
}

impl<J> Queued<J> {
    /// The job of an item that can only be a job: one a submit sent
    /// (handed back), or one on a channel no crew feeds (turns go only to
    /// crews).
    pub(crate) fn into_job(self) -> J {
        match self {
            Self::Job(queued) => queued.job,
            Self::Turn => unreachable!("turns are sent only to a crew, never handed back"),
        }
    }
}

/// A user callback run after each job, with what happened to it.
pub(crate) type JobHook = Arc<dyn Fn(&JobEvent) + Send + Sync>;

/// Validated settings for [`Crew::start`].
pub(crate) struct CrewConfig {
    pub(crate) workers: usize,
    /// `None` for an unbounded queue.
    pub(crate) queue_capacity: Option<usize>,
    pub(crate) thread_name: String,
    pub(crate) stack_size: Option<usize>,
    /// Every job's deadline, counted from its start.
    pub(crate) job_timeout: Option<Duration>,
    pub(crate) panic_policy: PanicPolicy,
    pub(crate) on_thread_start: Option<Hook>,
    pub(crate) on_thread_exit: Option<Hook>,
    /// Every job start waits here first, if set (a rate limiter).
    pub(crate) start_gate: Option<Arc<dyn StartGate>>,
    /// Runs after every job, and for every job discarded unrun.
    pub(crate) on_job_done: Option<JobHook>,
    /// Time a sample of jobs (`record_latencies`).
    pub(crate) timing: bool,
    /// `Sizing::Adaptive`'s bounds: a controller steers the worker count
    /// between them.
    pub(crate) adaptive: Option<(usize, usize)>,
    /// Workers that leave when idle and start on demand; `None`: the
    /// worker count changes only by `set_workers` (and the controller).
    pub(crate) elastic: Option<Elastic>,
    /// Captures a value at submit and enters it around the job.
    pub(crate) propagate: Option<Propagate>,
    /// How the dispatcher orders keyed and laned jobs.
    pub(crate) dispatch: Dispatch,
}

/// The sending side of a crew's jobs channel, as front doors hold it.
/// Shared rather than cloned, so that the crew can hold it weakly: a crew
/// whose workers park in a plain `recv` wakes them by sending turns (see
/// `worker.rs`), and a `Sender` of its own would keep the channel from
/// disconnecting when intake closes.
pub(crate) type JobsTx<J> = Arc<Sender<Queued<J>>>;

impl CrewConfig {
    /// A jobs channel of the configured capacity.
    pub(crate) fn channel<J>(&self) -> (JobsTx<J>, Receiver<Queued<J>>) {
        let (tx, rx) = match self.queue_capacity {
            Some(capacity) => channel::bounded(capacity),
            None => channel::unbounded(),
        };
        (Arc::new(tx), rx)
    }
}

struct Shared<J, E> {
    jobs: Receiver<Queued<J>>,
    /// The front doors' sender, held weakly: turns sent through it wake
    /// workers parked in `recv` (see [`wake_parked`](Self::wake_parked)).
    waker: Weak<Sender<Queued<J>>>,
    ctx: Context,
    /// `ctx.done()`, fetched once: disconnects when the pool is cancelled.
    cancel: Receiver<()>,
    exec: E,
    config: CrewConfig,
    counters: Counters,
    /// Handles of every thread started and not yet joined. Changes to the
    /// live-worker count happen under this lock, so `exited` cannot miss a
    /// wake-up.
    threads: Mutex<Vec<JoinHandle<()>>>,
    exited: Condvar,
    /// The worker count asked for, and an elastic crew's growth cap. Its
    /// lock serialises resizes, and a grow sees the cap and the count of
    /// the same moment.
    target: Mutex<Target>,
    /// One token per worker `set_workers` asked to leave: idle workers
    /// take them first, busy ones after their job. A worker blocked in a
    /// `Select` watches this channel, which then also carries the
    /// dispatcher's nudges; one blocked in `recv` is sent a turn instead
    /// (`worker.rs`).
    retire: (Sender<Nudge>, Receiver<Nudge>),
    /// Tokens sent and not yet taken, so the hot path reads an atomic.
    retiring: AtomicUsize,
    next_index: AtomicUsize,
    /// Makes the local state of workers started after `start` (a
    /// `LocalMaker<E::Local>`, kept type-erased so that `Shared` needs no
    /// `Exec` bound); dropped (sealed) when intake closes, so a channel the
    /// workers feed still disconnects when the last of them exits.
    make_local: Mutex<Option<Box<dyn Any + Send>>>,
    /// The adaptive sizing controller, if any: its stop signal and thread.
    controller: Mutex<Option<(Sender<()>, JoinHandle<()>)>>,
    /// Futures waiting for a slot in `jobs`.
    room: Arc<Room>,
    /// Where futures wait for room on the dispatcher's board (`Routed`
    /// jobs): apart from `room`, since a slot in one frees nothing in the
    /// other, and a waiter woken for the wrong one would swallow the
    /// wake-up.
    routed_room: Arc<Room>,
    /// Whether `ctx` has the hook that wakes them on cancellation.
    room_hooked: AtomicBool,
    /// Workers between jobs, in an elastic crew (see `elastic.rs`).
    free: CachePadded<AtomicUsize>,
    /// Keyed and laned jobs (`dispatch.rs`).
    board: Board<J>,
}

/// What [`Shared::target`] guards.
struct Target {
    /// The worker count asked for; `live` converges to it.
    workers: usize,
    /// In an elastic crew, how many workers jobs may start on demand:
    /// `Elastic::grow_to`, then what `set_workers` last asked for (unless
    /// a controller steers the size).
    grow_cap: usize,
}

/// A message on the retire channel.
enum Nudge {
    /// Leave (a shrink asked for one worker fewer).
    Retire,
    /// Look at the board: a job there became ready to start. Sent only to
    /// a crew whose workers block in a `Select`.
    Look,
}

/// Makes one worker's local state.
type LocalMaker<L> = Box<dyn FnMut() -> L + Send>;

/// A running crew. Dropping it waits for every worker to exit (so intake
/// must be closed, or the pool cancelled, first), or detaches when dropped
/// on one of its own workers.
pub(crate) struct Crew<J, E> {
    shared: Arc<Shared<J, E>>,
}

crate::sync::thread_local! {
    /// Address of the crew this thread works for (0 on other threads): lets
    /// a pool dropped from inside its own job detach instead of deadlocking.
    static CURRENT_CREW: Cell<usize> = const { Cell::new(0) };
}

impl<J: Send + 'static, E: Exec<J>> Crew<J, E> {
    /// Workers blocked on the channels, for tests that need one asleep.
    #[cfg(test)]
    pub(crate) fn blocked_workers(&self) -> usize {
        self.shared.board.blocked()
    }

    /// Nudges (on the retire channel, or as turns in the jobs channel)
    /// and retire tokens not yet taken, for tests.
    #[cfg(test)]
    pub(crate) fn retire_backlog(&self) -> usize {
        self.shared.retire.1.len() + self.shared.board.turns()
    }

    /// Starts `config.workers` threads taking jobs from `jobs`, each with
    /// its own `make_local()`. On failure every thread already started is
    /// stopped and joined before the error is returned.
    pub(crate) fn start(
        config: CrewConfig,
        ctx: Context,
        exec: E,
        (tx, jobs): (&JobsTx<J>, Receiver<Queued<J>>),
        make_local: impl FnMut() -> E::Local + Send + 'static,
    ) -> Result<Self, BuildError> {
        let crew = Self::idle(config, ctx, exec, (tx, jobs), make_local);
        crew.staff()?;
        Ok(crew)
    }

    /// A crew with no thread yet: [`staff`](Self::staff) starts them. A
    /// pipeline makes its stages' crews back to front (each feeds the
    /// next) and staffs them front to back (see `pipeline/mod.rs`).
    pub(crate) fn idle(
        config: CrewConfig,
        ctx: Context,
        exec: E,
        (tx, jobs): (&JobsTx<J>, Receiver<Queued<J>>),
        make_local: impl FnMut() -> E::Local + Send + 'static,
    ) -> Self {
        crate::unwind::note_panic_locations();
        let workers = config.workers;
        let rendezvous = config.queue_capacity == Some(0);
        let counters = Counters::default();
        counters.begin(config.workers);
        let grow_cap = config.elastic.map_or(0, |elastic| elastic.grow_to);
        let board = Board::new(config.dispatch, config.queue_capacity);
        let maker: LocalMaker<E::Local> = Box::new(make_local);
        let shared = Arc::new(Shared {
            jobs,
            waker: Arc::downgrade(tx),
            cancel: ctx.done(),
            ctx,
            exec,
            config,
            counters,
            threads: Mutex::new(Vec::with_capacity(workers)),
            exited: Condvar::new(),
            target: Mutex::new(Target {
                workers: 0,
                grow_cap,
            }),
            retire: channel::unbounded(),
            retiring: AtomicUsize::new(0),
            next_index: AtomicUsize::new(0),
            make_local: Mutex::new(Some(Box::new(maker))),
            controller: Mutex::new(None),
            room: Arc::new(Room::new(rendezvous)),
            routed_room: Arc::new(Room::new(rendezvous)),
            room_hooked: AtomicBool::new(false),
            free: CachePadded(AtomicUsize::new(0)),
            board,
        });
        shared.hook_parked();
        Self { shared }
    }

    /// Starts the crew's `config.workers` threads (and its sizing
    /// controller, if adaptive). On failure the crew's context is
    /// cancelled, and every thread already started is joined before the
    /// error is returned: a crew that failed to staff stays without
    /// threads.
    pub(crate) fn staff(&self) -> Result<(), BuildError> {
        let started = self.grow_to(self.shared.config.workers).and_then(|()| {
            match self.shared.config.adaptive {
                Some((min, max)) => adaptive::start(&self.shared, min, max),
                None => Ok(()),
            }
        });
        if let Err(err) = started {
            // rayon's Terminator: a half-built crew must not leak threads.
            self.shared.ctx.cancel();
            self.wait(None);
            return Err(BuildError::Spawn(err));
        }
        Ok(())
    }

    /// Queues `job` through `tx`, waiting for room as long as `wait`
    /// allows. The wait ends early, with `Cancelled`, if the pool is
    /// cancelled, and with `Closed` if `closed` disconnects.
    ///
    /// This is the one way into the crew: every front door, and every
    /// pipeline stage feeding the next (through a [`Feeder`]), queues jobs
    /// here, so each is counted, stamped and re-checked against a racing
    /// cancellation the same way. `Wait::Now` is crossbeam's `try_send`,
    /// `Wait::Forever` its `send`, `Wait::Until` its `send_deadline`.
    ///
    /// # Errors
    ///
    /// The job comes back in `Full` (no room within the wait), `Closed`
    /// (every worker is gone, or `closed` fired) or `Cancelled`.
    #[inline]
    pub(crate) fn submit(
        &self,
        tx: &Sender<Queued<J>>,
        job: J,
        wait: Wait,
        closed: Option<&Receiver<()>>,
    ) -> Result<(), TrySubmitError<J>> {
        self.submit_or(tx, job, wait, closed, |queued| Err(SendFail::Full(queued)))
    }

    /// [`submit`](Self::submit), with `full` deciding what becomes of the
    /// accepted job if the queue stays full: refused (`Err`), or taken
    /// care of (`Ok`: run by its submitter, `here.rs`).
    #[inline]
    fn submit_or(
        &self,
        tx: &Sender<Queued<J>>,
        job: J,
        wait: Wait,
        closed: Option<&Receiver<()>>,
        full: impl FnOnce(Queued<J>) -> Result<(), SendFail<Queued<J>>>,
    ) -> Result<(), TrySubmitError<J>> {
        self.shared.submit_or(tx, job, wait, closed, full)
    }

    /// A way into this crew for a thread of the front door's own (a
    /// pool's timer), through the same [`submit`](Self::submit). Holding
    /// it keeps the queue open: drop it before waiting for the crew.
    pub(crate) fn door(&self, tx: JobsTx<J>) -> Door<J, E> {
        Door {
            tx,
            shared: Arc::clone(&self.shared),
        }
    }

    /// Queues `job` on the dispatcher's board along `route` (a key, a
    /// lane), waiting for room there as `wait` allows, and sends a turn
    /// through `tx` to wake a worker (see `dispatch.rs`). Otherwise as
    /// [`submit`](Self::submit).
    ///
    /// # Errors
    ///
    /// As for [`submit`](Self::submit); `Full` also when the job's key has
    /// as many jobs waiting as the key queue allows.
    pub(crate) fn submit_routed(
        &self,
        tx: &Sender<Queued<J>>,
        job: J,
        route: Route,
        wait: Wait,
        closed: Option<&Receiver<()>>,
    ) -> Result<(), TrySubmitError<J>> {
        self.shared.submit_routed(tx, job, route, wait, closed)
    }

    /// A way into this crew that can be owned elsewhere: the workers of a
    /// pipeline stage feed the next stage's crew through one. A feed
    /// blocked on a full queue relies on this crew's workers to drain it
    /// when it is cancelled ([`OnCancel::Drained`]), so the crew keeps its
    /// workers until then: not elastic, not resized to fewer.
    pub(crate) fn feeder(&self, tx: JobsTx<J>) -> Feeder<J> {
        Feeder {
            tx,
            crew: Some(Arc::clone(&self.shared) as Arc<dyn Intake<J>>),
        }
    }

    /// Cancels the pool's context and discards everything queued. Returns
    /// how many jobs this call discarded.
    pub(crate) fn cancel(&self) -> u64 {
        self.shared.ctx.cancel();
        self.shared.drain()
    }
}

/// A crew's way in owned by another thread of its front door: see
/// [`Crew::door`].
pub(crate) struct Door<J, E> {
    tx: JobsTx<J>,
    shared: Arc<Shared<J, E>>,
}

impl<J: Send + 'static, E: Exec<J>> Door<J, E> {
    /// Counts as submitted a job that never entered the queue but was run
    /// (and counted as run) by a join on a worker: a delayed job a join
    /// took inline while the queue was full at its due time.
    pub(crate) fn count_submitted(&self) {
        // ORDERING: Relaxed, as `envelope`'s count.
        self.shared
            .counters
            .submitted
            .fetch_add(1, Ordering::Relaxed);
    }

    /// As [`Crew::submit`] or, along `route`, [`Crew::submit_routed`],
    /// without a close signal: the owner checks.
    pub(crate) fn submit(
        &self,
        job: J,
        route: Option<Route>,
        wait: Wait,
    ) -> Result<(), TrySubmitError<J>> {
        match route {
            None => self.shared.submit_or(&self.tx, job, wait, None, |queued| {
                Err(SendFail::Full(queued))
            }),
            Some(route) => self.shared.submit_routed(&self.tx, job, route, wait, None),
        }
    }
}

impl<J: Send + 'static, E: Exec<J>> Shared<J, E> {
    /// The body of [`Crew::submit_routed`].
    fn submit_routed(
        self: &Arc<Self>,
        tx: &Sender<Queued<J>>,
        job: J,
        route: Route,
        wait: Wait,
        closed: Option<&Receiver<()>>,
    ) -> Result<(), TrySubmitError<J>> {
        let shared = &**self;
        if shared.ctx.is_done() {
            return Err(TrySubmitError::Cancelled(job));
        }
        if shared.board.needs_hook() {
            // Wakes submits waiting for room, and workers waiting after
            // close, when the pool is cancelled. Weak: the hook lives in
            // the pool's own context, which `Shared` owns.
            let woken = Arc::downgrade(self);
            let _ = shared.ctx.on_done(move |_| {
                if let Some(shared) = woken.upgrade() {
                    shared.board.wake_all();
                }
            });
        }
        let queued = shared.envelope(job);
        let is_closed = || closed.is_some_and(intake::is_disconnected);
        let id = match shared
            .board
            .admit(queued, route, wait, &shared.ctx, &is_closed)
        {
            Ok(id) => id,
            Err(refused) => {
                return Err(refused.map(|queued| shared.unenvelope(Queued::Job(queued))));
            }
        };
        self.send_turn(tx, id, route, wait, closed)?;
        shared.landed();
        if shared.config.elastic.is_some() {
            self.grow_for_job();
        }
        Ok(())
    }

    /// Sends the turn of the routed job with board id `id` (a rendezvous
    /// board's: see `Board::admit`). On a queue
    /// with room it is only a wake-up: sent only while a worker is
    /// parked (`Board::wants_turn`), and dropped if the queue is full
    /// (its workers are busy and look at the board after each job). On a rendezvous it
    /// waits for a worker, as a plain submit does; if none comes within
    /// `wait`, the job is taken back off the board and refused, unless a
    /// worker already took it.
    fn send_turn(
        &self,
        tx: &Sender<Queued<J>>,
        id: Option<u64>,
        route: Route,
        wait: Wait,
        closed: Option<&Receiver<()>>,
    ) -> Result<(), TrySubmitError<J>> {
        let rendezvous = self.rendezvous();
        if !rendezvous && !self.board.wants_turn() {
            return Ok(());
        }
        self.board.turn_sent(true);
        let sent = if rendezvous {
            let cancel = OnCancel::Watch(&self.cancel);
            intake::send_within(tx, Queued::Turn, wait, &self.ctx, cancel, closed)
                .map_err(|fail| fail.refused(|_| ()))
        } else {
            // Full: the workers are busy; Disconnected cannot happen while
            // the front door holds `tx`.
            tx.try_send(Queued::Turn)
                .map_err(|_| TrySubmitError::Full(()))
        };
        let Err(refused) = sent else {
            return Ok(());
        };
        self.board.turn_sent(false);
        if !rendezvous {
            return Ok(());
        }
        match id.and_then(|id| self.board.withdraw(id, route)) {
            Some(queued) => Err(refused.map(|()| self.unenvelope(Queued::Job(queued)))),
            None => Ok(()),
        }
    }

    /// The body of [`Crew::submit_or`].
    #[inline]
    fn submit_or(
        self: &Arc<Self>,
        tx: &Sender<Queued<J>>,
        job: J,
        wait: Wait,
        closed: Option<&Receiver<()>>,
        full: impl FnOnce(Queued<J>) -> Result<(), SendFail<Queued<J>>>,
    ) -> Result<(), TrySubmitError<J>> {
        let cancel = OnCancel::Watch(&self.cancel);
        if self.config.elastic.is_none() {
            return self.enter_or(tx, job, wait, cancel, closed, full);
        }
        // A queue of no capacity takes a job only from a waiting worker:
        // start one first.
        if self.rendezvous() {
            self.grow_for_job();
        }
        self.enter_or(tx, job, wait, cancel, closed, full)?;
        self.grow_for_job();
        Ok(())
    }
}

impl<J, E> Crew<J, E> {
    /// Intake is closed: no worker will be started again except to replace
    /// one that panicked (the replacement inherits its predecessor's local
    /// state). Drops what `make_local` held, such as a results sender.
    pub(crate) fn seal(&self) {
        let maker = self.shared.make_local.lock().take();
        drop(maker);
    }
    pub(crate) fn context(&self) -> &Context {
        &self.shared.ctx
    }

    /// Wakes every future waiting for a slot (intake just closed): they
    /// try again and see why there is none.
    pub(crate) fn wake_room(&self) {
        self.shared.room.wake_all();
        self.shared.routed_room.wake_all();
        self.shared.board.wake_all();
    }

    /// Where futures wait for a slot in the queue. The first call hooks
    /// the pool's context, so that its cancellation (by a parent, or a
    /// deadline) wakes them even while every worker is inside a job.
    pub(crate) fn room(&self) -> &Room {
        self.hook_rooms();
        &self.shared.room
    }

    /// Where futures wait for room on the dispatcher's board or in a
    /// key's queue: as [`room`](Self::room), for routed jobs.
    pub(crate) fn routed_room(&self) -> &Room {
        self.hook_rooms();
        &self.shared.routed_room
    }

    /// Hooks the pool's context, once, to wake both rooms' waiters.
    fn hook_rooms(&self) {
        // ORDERING: Relaxed: a second hook would only wake twice.
        if !self.shared.room_hooked.swap(true, Ordering::Relaxed) {
            let rooms = [&self.shared.room, &self.shared.routed_room].map(Arc::clone);
            // Lives in the pool's own context node, dropped with the pool.
            let _ = self
                .shared
                .ctx
                .on_done(move |_| rooms.iter().for_each(|room| room.wake_all()));
        }
    }

    /// Whether a routed job's key has as many jobs queued behind its
    /// running one as it may: room comes only when one of them starts.
    pub(crate) fn key_full(&self, route: Route) -> bool {
        self.shared.board.key_full(route)
    }

    pub(crate) fn exec(&self) -> &E {
        &self.shared.exec
    }

    /// Every job's deadline, counted from its start.
    pub(crate) fn job_timeout(&self) -> Option<Duration> {
        self.shared.config.job_timeout
    }

    /// The hook that carries the submitter's context into its jobs.
    pub(crate) fn propagate(&self) -> Option<&Propagate> {
        self.shared.config.propagate.as_ref()
    }

    pub(crate) fn stats(&self) -> Stats {
        let shared = &self.shared;
        let board = &shared.board;
        let queued = shared.jobs.len().saturating_sub(board.turns()) + board.queued();
        let mut stats = shared.counters.snapshot(queued);
        if board.in_use() {
            // Before the board's counts: see `WorkerSlot::set_ending`.
            let ended = shared.counters.ending();
            stats.lanes = board.loads(ended);
        }
        stats
    }

    /// This crew's identity, as [`run_inline`] knows it.
    pub(crate) fn id(&self) -> usize {
        self.shared.id()
    }

    /// Whether the calling thread is one of this crew's workers.
    pub(crate) fn on_own_worker(&self) -> bool {
        CURRENT_CREW.with(Cell::get) == self.shared.id()
    }

    /// With intake closed, lets the queue drain while the sizing controller
    /// still steers — a burst queued just before `join` is met at the size
    /// it needs, not at `min` — and stops the controller once the first
    /// worker has left (the queue is empty by then, or the pool
    /// cancelled). Returns at once without a controller, or on one of the
    /// crew's own workers.
    pub(crate) fn drain_steered(&self) {
        if self.on_own_worker() || self.shared.controller.lock().is_none() {
            return;
        }
        let mut threads = self.shared.threads.lock();
        // Exits notify under this lock, so none is missed between the load
        // and the wait (parking_lot's condvar does not wake spuriously).
        if self.shared.counters.live.load(Ordering::Acquire) > 0 {
            self.shared.exited.wait(&mut threads);
        }
        drop(threads);
        adaptive::stop(&self.shared);
    }

    /// Waits until every worker has exited (`deadline` permitting) and joins
    /// their threads. Returns `false` if the deadline came first. On one of
    /// the crew's own workers it cannot wait for itself, and returns `false`
    /// at once.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        if self.on_own_worker() {
            return false;
        }
        // The sizing controller goes first: it must not start workers for a
        // pool that is shutting down.
        adaptive::stop(&self.shared);
        let mut threads = self.shared.threads.lock();
        while self.shared.counters.live.load(Ordering::Acquire) > 0 {
            match deadline {
                None => self.shared.exited.wait(&mut threads),
                Some(deadline) => {
                    if self
                        .shared
                        .exited
                        .wait_until(&mut threads, deadline)
                        .timed_out()
                    {
                        return self.shared.counters.live.load(Ordering::Acquire) == 0;
                    }
                }
            }
        }
        let finished = std::mem::take(&mut *threads);
        drop(threads);
        for handle in finished {
            // A worker's own panics are caught inside it; an Err here means
            // a panic escaped after the Sentinel ran, which it has logged.
            let _ = handle.join();
        }
        true
    }
}

impl<J, E> Drop for Crew<J, E> {
    fn drop(&mut self) {
        if self.on_own_worker() {
            log::debug!(
                "brigade: pool dropped from one of its own jobs; its threads finish the queue and exit on their own"
            );
            return;
        }
        self.wait(None);
    }
}

impl<J, E> Shared<J, E> {
    fn id(&self) -> usize {
        std::ptr::from_ref(self).cast::<()>() as usize
    }
}

impl<J: Send + 'static, E: Exec<J>> Shared<J, E> {
    pub(super) fn discard(&self, queued: Envelope<J>) {
        let reason = self.ctx.reason().unwrap_or(Cancelled::Canceled);
        self.discard_for(queued, reason);
    }

    /// Discards `queued` for `reason`: counted, reported to the job's
    /// owner, and to the `on_job_done` hook.
    fn discard_for(&self, queued: Envelope<J>, reason: Cancelled) {
        let Envelope {
            job,
            seq,
            queued_at,
            carried,
        } = queued;
        // Never entered; a value whose drop panics must not unwind here.
        unwind::drop_quietly(carried);
        let jobs = self.exec.claim(&job);
        // Counted before the handle is told, as every outcome is.
        // ORDERING: Release pairs with the snapshot's Acquire (stats.rs).
        self.counters.discarded.fetch_add(jobs, Ordering::Release);
        self.exec.discard(job, reason);
        if let Some(hook) = &self.config.on_job_done {
            let queue_wait = wait_since(queued_at, Instant::now()).unwrap_or_default();
            for id in seq..seq + jobs {
                let event = JobEvent::new(id, JobOutcome::Cancelled, queue_wait, Duration::ZERO);
                unwind::call_logged("on_job_done hook", || hook(&event));
            }
        }
    }

    /// Discards every job queued now; returns how many.
    fn drain(&self) -> u64 {
        let mut discarded = 0;
        while let Ok(queued) = self.jobs.try_recv() {
            if let Queued::Job(queued) = self.received(queued) {
                self.discard(queued);
                discarded += 1;
            }
        }
        // Pairs with the fence at the end of `Board::admit`: a routed
        // submit whose push this look misses sees the cancellation that
        // came before it, and drains the board itself (`landed`).
        fence(Ordering::SeqCst);
        if !self.board.is_empty() {
            for queued in self.board.drain() {
                self.discard(queued);
                discarded += 1;
            }
        }
        if self.parks_in_recv() {
            // The queue has room now: workers still parked are woken to
            // leave, whether or not the cancellation's turns fitted.
            self.wake_parked(usize::MAX);
        }
        discarded
    }

    /// An item just received from the jobs channel, with turns counted
    /// off the board's tally.
    #[inline]
    fn received(&self, queued: Queued<J>) -> Queued<J> {
        if let Queued::Turn = queued {
            self.board.turn_received();
        }
        queued
    }
}

/// The one way into the crew (see [`Crew::submit`]); a [`Feeder`] reaches
/// it with the crew's `Exec` erased. A feeder is another crew's worker,
/// not a caller waiting for its job back: a feed blocked on a full queue
/// ends on cancellation when this crew's workers drain the queue, and
/// what it queued is discarded here ([`OnCancel::Drained`]). Not on a
/// rendezvous queue: a drain there takes only from a sender already
/// waiting, and one that comes after the last worker left would wait for
/// a receiver forever.
impl<J: Send + 'static, E: Exec<J>> Intake<J> for Shared<J, E> {
    #[inline]
    fn enter(
        &self,
        tx: &Sender<Queued<J>>,
        job: J,
        wait: Wait,
        closed: Option<&Receiver<()>>,
    ) -> Result<(), TrySubmitError<J>> {
        let cancel = if self.rendezvous() {
            OnCancel::Watch(&self.cancel)
        } else {
            OnCancel::Drained
        };
        let full = |queued| Err(SendFail::Full(queued));
        self.enter_or(tx, job, wait, cancel, closed, full)
    }
}

impl<J: Send + 'static, E: Exec<J>> Shared<J, E> {
    /// Accepts `job` and queues it, waiting for room as `wait` allows
    /// (and learning of a cancellation meanwhile as it says); if the queue
    /// stays full, `full` takes the accepted job (see
    /// [`Crew::submit_or`]). A refused job is counted out and handed back.
    #[inline]
    fn enter_or(
        &self,
        tx: &Sender<Queued<J>>,
        job: J,
        wait: Wait,
        cancel: OnCancel<'_>,
        closed: Option<&Receiver<()>>,
        full: impl FnOnce(Queued<J>) -> Result<(), SendFail<Queued<J>>>,
    ) -> Result<(), TrySubmitError<J>> {
        if self.ctx.is_done() {
            return Err(TrySubmitError::Cancelled(job));
        }
        let queued = Queued::Job(self.envelope(job));
        // Returns straight from the success arms: mapping the error after
        // one `match` cost every accepted job a move of the whole result
        // (10 instructions an `execute`, measured with callgrind).
        let fail = match intake::send_within(tx, queued, wait, &self.ctx, cancel, closed) {
            Ok(()) => {
                self.landed();
                return Ok(());
            }
            Err(SendFail::Full(queued)) => match full(queued) {
                Ok(()) => return Ok(()),
                Err(fail) => fail,
            },
            Err(fail) => fail,
        };
        Err(fail.refused(|queued| self.unenvelope(queued)))
    }

    /// Counts `job` as submitted and wraps it with its number, its queue
    /// stamp and the submitter's captured value; undone by `unenvelope`
    /// if it is refused.
    #[inline]
    fn envelope(&self, job: J) -> Envelope<J> {
        let jobs = self.exec.jobs(&job);
        // Count before queueing, so no snapshot sees the job finish before
        // it was submitted.
        // ORDERING: Relaxed; the channel (or the board's lock) orders it
        // before the worker's Release of the outcome (see stats.rs).
        let seq = self.counters.submitted.fetch_add(jobs, Ordering::Relaxed);
        // A hook sees every job, so every job is timed.
        let timed = sampled(seq) || self.config.on_job_done.is_some();
        let queued_at = if timed && self.config.timing {
            stamp(Instant::now())
        } else {
            0
        };
        // One branch for a crew without the hook.
        let carried = match &self.config.propagate {
            None => None,
            Some(propagate) => propagate.capture(),
        };
        Envelope {
            job,
            seq,
            queued_at,
            carried,
        }
    }

    /// A refused job's envelope, uncounted: the caller's job back.
    fn unenvelope(&self, queued: Queued<J>) -> J {
        let job = queued.into_job();
        let jobs = self.exec.jobs(&job);
        self.counters.submitted.fetch_sub(jobs, Ordering::Relaxed);
        job
    }

    /// A job was queued. Cancellation may have raced it, after every
    /// worker made its last drain: then it would sit unreported, so
    /// re-check and discard it here.
    fn landed(&self) {
        if self.ctx.is_done() {
            self.drain();
        }
    }

    /// Whether the queue has no capacity: a job is handed straight to a
    /// waiting worker.
    #[inline]
    fn rendezvous(&self) -> bool {
        self.config.queue_capacity == Some(0)
    }
}

/// How long a job queued at `queued_at` (a stamp; 0 if not stamped) has
/// waited by `now`.
pub(crate) fn wait_since(queued_at: u64, now: Instant) -> Option<Duration> {
    (queued_at != 0).then(|| Duration::from_nanos(stamp(now).saturating_sub(queued_at)))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::sync::{AtomicUsize, Mutex};

    /// A spawn that fails or is slow on purpose, for the tests below (and
    /// the pipeline's).
    pub(crate) struct FailSpawn {
        /// Thread-name prefix of the workers whose spawn fails.
        pub(crate) name: String,
        /// The worker index whose spawn fails; `None`: every index.
        pub(crate) index: Option<usize>,
        /// Where a failing spawn waits for the others before it fails.
        pub(crate) together: Option<Arc<std::sync::Barrier>>,
        /// Instead of failing, the spawn starts this late.
        pub(crate) late: Option<Duration>,
    }

    /// One per test that sets one, by thread name: tests run at once.
    static FAIL_SPAWN: Mutex<Vec<FailSpawn>> = Mutex::new(Vec::new());

    /// Sets `fail` for its name until `unset_fail_spawn`.
    pub(crate) fn set_fail_spawn(fail: FailSpawn) {
        FAIL_SPAWN.lock().push(fail);
    }

    pub(crate) fn unset_fail_spawn(name: &str) {
        FAIL_SPAWN.lock().retain(|fail| fail.name != name);
    }

    pub(crate) fn maybe_fail_spawn(name: &str, index: usize) -> std::io::Result<()> {
        let found = FAIL_SPAWN
            .lock()
            .iter()
            .find(|fail| fail.name == name && fail.index.is_none_or(|at| at == index))
            .map(|fail| (fail.together.clone(), fail.late));
        let Some((together, late)) = found else {
            return Ok(());
        };
        if let Some(late) = late {
            std::thread::sleep(late);
            return Ok(());
        }
        if let Some(together) = together {
            together.wait();
        }
        Err(std::io::Error::other("injected spawn failure"))
    }

    /// Jobs that wait at their barrier and panic, or do nothing; counts
    /// the discarded ones.
    struct Panicky(Arc<AtomicUsize>);

    impl Exec<Option<Arc<std::sync::Barrier>>> for Panicky {
        type Local = ();
        fn run(&self, job: Option<Arc<std::sync::Barrier>>, run: Run<'_>, (): &mut ()) -> Ran {
            run.call_plain(move || {
                if let Some(barrier) = job {
                    barrier.wait();
                    panic!("a job both workers run at once");
                }
            })
        }
        fn discard(&self, _job: Option<Arc<std::sync::Barrier>>, _reason: Cancelled) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A crew of `workers` named `name`, respawning, with room for 16.
    fn config(name: &str, workers: usize) -> CrewConfig {
        CrewConfig {
            workers,
            queue_capacity: Some(16),
            thread_name: name.to_owned(),
            stack_size: None,
            job_timeout: None,
            panic_policy: PanicPolicy::Respawn,
            on_thread_start: None,
            start_gate: None,
            on_job_done: None,
            timing: true,
            adaptive: None,
            elastic: None,
            propagate: None,
            dispatch: Dispatch::default(),
            on_thread_exit: None,
        }
    }

    /// Jobs that send on their channel; worker 0 cannot start.
    struct FirstCannotStart;

    impl Exec<crate::sync::channel::Sender<()>> for FirstCannotStart {
        type Local = ();
        fn enter(&self, index: usize, (): &mut ()) -> Result<(), String> {
            if index == 0 {
                return Err("worker 0 has no device".to_owned());
            }
            Ok(())
        }
        fn run(&self, job: crate::sync::channel::Sender<()>, run: Run<'_>, (): &mut ()) -> Ran {
            run.call_plain(move || {
                let _ = job.send(());
            })
        }
        fn discard(&self, _job: crate::sync::channel::Sender<()>, _reason: Cancelled) {}
    }

    /// Submits `n` jobs to `crew` and waits until they all ran.
    fn runs_every_job(
        crew: &Crew<crate::sync::channel::Sender<()>, FirstCannotStart>,
        tx: &Sender<Queued<crate::sync::channel::Sender<()>>>,
        n: usize,
    ) {
        let (ran_tx, ran) = crate::sync::channel::unbounded();
        for _ in 0..n {
            crew.submit(tx, ran_tx.clone(), Wait::Forever, None)
                .unwrap_or_else(|_| panic!("the crew is not cancelled"));
        }
        for _ in 0..n {
            ran.recv_timeout(Duration::from_secs(30))
                .expect("the workers that started run every job");
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "a spawn held back for 50 ms of real time")]
    fn a_first_worker_that_cannot_start_leaves_the_crew_to_the_others() {
        // Worker 0 fails to start at once, and worker 1's spawn is held
        // back meanwhile: worker 0 leaves while it is the only worker
        // counted, yet the start is not over, so it does not cancel the
        // crew, and workers 1 and 2 run every job.
        let name = "firstlost";
        set_fail_spawn(FailSpawn {
            name: name.to_owned(),
            index: Some(1),
            together: None,
            late: Some(Duration::from_millis(50)),
        });
        let config = config(name, 3);
        let (tx, rx) = config.channel();
        let crew = Crew::start(config, Context::new(), FirstCannotStart, (&tx, rx), || ());
        unset_fail_spawn(name);
        let crew = crew.expect("the crew starts");
        runs_every_job(&crew, &tx, 10);
        assert!(!crew.context().is_done());
        // The queue disconnects: the workers leave, and the crew's drop
        // can join them.
        drop(tx);
    }

    /// Worker 0's start waits for `release`, then fails; counts the
    /// discarded jobs.
    struct StartFailsLate {
        release: crate::sync::channel::Receiver<()>,
        discarded: Arc<AtomicUsize>,
    }

    impl Exec<()> for StartFailsLate {
        type Local = ();
        fn enter(&self, index: usize, (): &mut ()) -> Result<(), String> {
            if index == 0 {
                let _ = self.release.recv();
                return Err("worker 0 has no device".to_owned());
            }
            Ok(())
        }
        fn run(&self, (): (), run: Run<'_>, (): &mut ()) -> Ran {
            run.call_plain(|| ())
        }
        fn discard(&self, (): (), _reason: Cancelled) {
            self.discarded.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_last_worker_lost_after_a_cancellation_still_drains() {
        // A job is queued while the only worker is still starting, the
        // crew is cancelled (as a parent context or a deadline would),
        // then the worker's start fails: nothing else drains the queue,
        // so the lost worker must, although the crew was already done.
        let (release_tx, release) = crate::sync::channel::unbounded();
        let discarded = Arc::new(AtomicUsize::new(0));
        let exec = StartFailsLate {
            release,
            discarded: Arc::clone(&discarded),
        };
        let config = config("lostaftercancel", 1);
        let (tx, rx) = config.channel();
        let crew =
            Crew::start(config, Context::new(), exec, (&tx, rx), || ()).expect("the crew starts");
        crew.submit(&tx, (), Wait::Forever, None)
            .unwrap_or_else(|_| panic!("the crew is open"));
        crew.context().cancel();
        drop(release_tx);
        assert!(crew.wait(Some(Instant::now() + Duration::from_secs(30))));
        assert_eq!(discarded.load(Ordering::SeqCst), 1);
    }

    #[test]
    #[cfg_attr(miri, ignore = "polls in real time for a worker to leave")]
    fn a_worker_that_could_not_start_leaves_the_target() {
        // Worker 0 of two cannot start; shrinking the crew to one worker
        // then asks nothing of the one that did: it was the only one
        // expected. (Counted in the target, the lost worker made the
        // shrink retire the working one, and jobs queued after sat
        // unrun.)
        let name = "losttarget";
        let config = config(name, 2);
        let (tx, rx) = config.channel();
        let crew = Crew::start(config, Context::new(), FirstCannotStart, (&tx, rx), || ())
            .expect("the crew starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while crew.shared.counters.live.load(Ordering::Acquire) > 1 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        crew.shared
            .set_workers(1)
            .expect("one worker is a valid size");
        runs_every_job(&crew, &tx, 5);
        drop(tx);
    }

    #[test]
    fn workers_lost_together_cancel_the_crew() {
        // Both workers panic under Respawn and neither replacement can
        // start, the two failing together: whichever is counted out last
        // is the last, and cancels the crew, so the jobs queued behind
        // them are discarded and reported rather than stranded with no
        // worker. (Each used to read the count right after its failed
        // respawn, outside the lock that counts workers out, so two could
        // each see the other still counted; that window is too narrow to
        // hit from here, so this checks the outcome.)
        let name = "losttogether";
        let discarded = Arc::new(AtomicUsize::new(0));
        let config = config(name, 2);
        let (tx, rx) = config.channel();
        let exec = Panicky(Arc::clone(&discarded));
        let crew =
            Crew::start(config, Context::new(), exec, (&tx, rx), || ()).expect("the crew starts");
        // Both respawns fail once both have tried.
        set_fail_spawn(FailSpawn {
            name: name.to_owned(),
            index: None,
            together: Some(Arc::new(std::sync::Barrier::new(2))),
            late: None,
        });
        // The workers and this thread: no worker panics before the five
        // jobs behind the barrier's are queued.
        let barrier = Arc::new(std::sync::Barrier::new(3));
        for job in (0..7).map(|i| (i < 2).then(|| Arc::clone(&barrier))) {
            crew.submit(&tx, job, Wait::Forever, None)
                .unwrap_or_else(|_| panic!("the crew is open"));
        }
        barrier.wait();
        let left = crew.wait(Some(Instant::now() + Duration::from_secs(30)));
        unset_fail_spawn(name);
        assert!(left, "both workers left");
        assert!(crew.context().is_done(), "the crew was cancelled");
        assert_eq!(discarded.load(Ordering::SeqCst), 5);
    }

    struct Noop;

    impl Exec<()> for Noop {
        type Local = ();
        fn run(&self, (): (), run: Run<'_>, (): &mut ()) -> Ran {
            run.call_plain(|| ())
        }
        fn discard(&self, (): (), _reason: Cancelled) {}
    }

    fn threads_named(prefix: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .map(|tasks| {
                tasks
                    .filter_map(Result::ok)
                    .filter(|task| {
                        std::fs::read_to_string(task.path().join("comm"))
                            .is_ok_and(|comm| comm.starts_with(prefix))
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "counts threads through /proc, which Miri's isolation hides"
    )]
    fn half_built_crew_leaks_no_thread() {
        // Workers 0..3 start, worker 3 fails: start() must stop and join the
        // three it started before returning the error.
        let name = "halfbuilt";
        set_fail_spawn(FailSpawn {
            name: name.to_owned(),
            index: Some(3),
            together: None,
            late: None,
        });
        let exited = Arc::new(AtomicUsize::new(0));
        let on_exit = Arc::clone(&exited);
        let config = CrewConfig {
            queue_capacity: Some(4),
            on_thread_exit: Some(Arc::new(move |_| {
                on_exit.fetch_add(1, Ordering::SeqCst);
            })),
            ..config(name, 6)
        };
        let (_tx, rx) = config.channel();
        let result = Crew::start(config, Context::new(), Noop, (&_tx, rx), || ());
        unset_fail_spawn(name);
        // Joined, not merely told to stop: all three exit hooks already ran.
        assert_eq!(exited.load(Ordering::SeqCst), 3);
        let err = result.err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("failed to spawn worker thread: injected spawn failure")
        );
        // Joined threads may linger in /proc for a moment after join returns.
        let deadline = Instant::now() + Duration::from_secs(10);
        while threads_named(name) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(threads_named(name), 0);
    }
}
