//! Jobs that submit jobs: the `ThreadPool` rounds' nested action. A
//! submitter plans a small [`Tree`] of jobs from a block of its ids; the
//! root is submitted as usual, and each job, when it runs, first submits
//! its children to the same pool (`try_submit` or a short
//! `submit_timeout`, never a blocking submit, which could wait on a queue
//! only the waiting workers drain) and joins them from inside — so a child
//! still queued runs inline on the joining worker — and then does its own
//! work.
//!
//! A child is created in the ledger only when its parent runs. A child the
//! pool refuses (closing, cancelled, or still full after a few tries) is
//! handed back and must never run; a child whose pool is being taken away
//! by the round's end (its slot locked for writing, or empty) is handed
//! back without a try. The results its parent joined go to [`Shared`],
//! where the round reconciles them like any handle's. A job that starts
//! while another on its thread is joining was run inline
//! ([`RAN_INLINE`]): its panic, caught there, retires no worker.

use std::cell::Cell;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use brigade::{Context, JobError, JobHandle, ThreadPool, TrySubmitError};
use parking_lot::{Mutex, RwLock};

use crate::common::LONG;
use crate::feed::split;
use crate::ledger::{ACCEPTED, HANDED_BACK, Ledger, RAN_INLINE, Token, describe};
use crate::work::{Work, perform};

/// A child's submit tries before it is handed back: a worker must not
/// wait on a queue that only workers drain.
const TRIES: usize = 4;
/// How long a child's `submit_timeout` may wait for room.
const ROOM_WAIT: Duration = Duration::from_micros(100);

/// What a round shares with the jobs that submit jobs.
pub(crate) struct Shared {
    /// The pool, shared with the submitters until an end takes it.
    pub(crate) slot: RwLock<Option<ThreadPool>>,
    /// Results read before the round's end: handles awaited by submitters,
    /// children joined by their parents.
    pub(crate) results: Mutex<Vec<(usize, Result<bool, JobError>)>>,
    /// The pool's per-job timeout, for the children's work.
    pub(crate) timeout: Option<Duration>,
    /// In a keyed round, every other child goes along a key of its own:
    /// always its key's next job, so its parent's join runs it inline
    /// through the dispatcher's board when no worker has taken it.
    pub(crate) keyed_children: bool,
}

/// Where the children's own keys start: above every key a round's
/// submitters draw.
const CHILD_KEYS: u64 = 1 << 40;

thread_local! {
    /// How many jobs on this thread are joining their children: a job
    /// that starts while one is ran inline.
    static JOINING: Cell<usize> = const { Cell::new(0) };
}

/// A job type-erased, so that a job's children may be jobs of its own kind.
type Job = Box<dyn FnOnce(&Context) -> bool + Send>;

/// One job of a nested action and the children it submits and joins.
#[derive(Debug)]
pub(crate) struct Tree {
    pub(crate) id: usize,
    work: Work,
    children: Vec<Tree>,
}

impl Tree {
    /// The tree over `ids` (one work each, in order): the first id is the
    /// root, the rest are cut into up to `fan` subtrees.
    pub(crate) fn plan(ids: Range<usize>, works: &[Work], fan: usize) -> Self {
        let children = split(ids.len() - 1, fan)
            .into_iter()
            .filter(|part| !part.is_empty())
            .map(|part| {
                let (from, to) = (1 + part.start, 1 + part.end);
                Self::plan(ids.start + from..ids.start + to, &works[from..to], fan)
            })
            .collect();
        Self {
            id: ids.start,
            work: works[0],
            children,
        }
    }
}

/// The job for `tree`'s root, carrying its `token`: submits and joins the
/// children, then does its own work, recorded by [`perform`]. The children
/// run before the root's work starts, so a worker never counts two running
/// jobs at once.
pub(crate) fn job(
    shared: Arc<Shared>,
    token: Token,
    tree: Tree,
) -> impl FnOnce(&Context) -> bool + Send + 'static {
    move |ctx: &Context| {
        if JOINING.get() > 0 {
            token.ledger.mark(token.id, RAN_INLINE);
        }
        JOINING.set(JOINING.get() + 1);
        shared.submit_and_join(&token.ledger, tree.children);
        JOINING.set(JOINING.get() - 1);
        perform(&token, tree.work, 0, Some(ctx), shared.timeout)
    }
}

impl Shared {
    /// Creates, submits and joins `children`, recording each result.
    fn submit_and_join(self: &Arc<Self>, ledger: &Arc<Ledger>, children: Vec<Tree>) {
        let mut handles = Vec::with_capacity(children.len());
        for child in children {
            let id = child.id;
            let job: Job = Box::new(job(Arc::clone(self), ledger.token(id), child));
            if let Some(handle) = self.offer(ledger, id, job) {
                handles.push((id, handle));
            }
        }
        for (id, mut handle) in handles {
            match handle.join_timeout(LONG) {
                Some(result) => self.results.lock().push((id, result)),
                None => ledger.violation(format!(
                    "job {id}: joined from inside the pool, it did not finish within {LONG:?} {}",
                    describe(ledger.state(id))
                )),
            }
        }
    }

    /// Submits a child without blocking for long; `None` if it was handed
    /// back (and so dropped unrun).
    fn offer(&self, ledger: &Ledger, id: usize, mut job: Job) -> Option<JobHandle<bool>> {
        for attempt in 0..TRIES {
            // `try_read`: a writer waiting means the round's end is taking
            // the pool, and may wait for this very worker.
            let Some(slot) = self.slot.try_read() else {
                break;
            };
            let Some(pool) = slot.as_ref() else {
                break;
            };
            let keyed = self.keyed_children && id % 2 == 0;
            let result = match (keyed, attempt % 2 == 0) {
                (false, true) => pool.try_submit(job),
                (false, false) => pool.submit_timeout(job, ROOM_WAIT),
                (true, true) => pool.keyed(CHILD_KEYS + id as u64).try_submit(job),
                (true, false) => pool
                    .keyed(CHILD_KEYS + id as u64)
                    .submit_timeout(job, ROOM_WAIT),
            };
            drop(slot);
            match result {
                Ok(handle) => {
                    ledger.mark(id, ACCEPTED);
                    return Some(handle);
                }
                Err(TrySubmitError::Full(back)) => job = back,
                Err(err) => {
                    job = err.into_inner();
                    break;
                }
            }
        }
        ledger.mark(id, HANDED_BACK);
        drop(job);
        None
    }
}
