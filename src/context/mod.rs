//! Cancellation and deadlines: the Rust form of Go's `context.Context`.
//!
//! A [`Context`] is a node in a cancellation tree. Cancelling a node cancels
//! every descendant; a child's deadline is the earlier of its own and its
//! parent's. Jobs receive a `&Context` and poll it ([`Context::is_done`],
//! [`Context::check`]) or block on it ([`Context::done`],
//! [`Context::sleep`]).
//!
//! # Design
//!
//! * **Children link lazily.** A new child is not registered with its parent;
//!   polling ([`is_done`](Context::is_done)) walks up the ancestors, which
//!   costs a few atomic loads. Only a context that someone *blocks* on
//!   ([`done`](Context::done), [`sleep`](Context::sleep)) registers with its
//!   parent, so that cancellation can wake the blocked thread. This keeps a
//!   per-job context to one allocation and no lock on the shared parent,
//!   which matters on a pool's hot path.
//! * **A registered child is unregistered when it is cancelled or dropped**,
//!   so creating and dropping any number of children under a long-lived
//!   parent leaves the parent's child table empty.
//! * **One timer thread** (`brigade-timer`, started on first use and then
//!   kept for the life of the process) fires every deadline that someone
//!   blocks on. Polling compares the deadline with the clock directly, so a
//!   deadline is exact for [`is_done`](Context::is_done) and within the
//!   timer's wake-up latency for [`done`](Context::done). A cancelled or
//!   dropped context removes its timer entry.
//! * **The first cause wins.** When both a deadline and a cancellation have
//!   happened by the time they are observed, the reason reported is the one
//!   that happened first, judged by the deadline instant and the time
//!   `cancel` was called. Once observed, the reason never changes.
//! * **Dropping a context does not cancel it.** Cancellation is always an
//!   explicit [`cancel`](Context::cancel) (or a deadline), as in Go. Clones
//!   share one node: cancelling any clone cancels them all.
//!
//! # Lock order
//!
//! A child's lock may be held while taking its parent's (registration); a
//! parent never holds its own lock while taking a child's (cancellation
//! collects the children first, then releases the lock). The timer's lock
//! is never held while a context's lock is taken.

mod timer;

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::error::Cancelled;
use crate::sync::channel::{self, Receiver, RecvTimeoutError, Sender};
use crate::sync::{Arc, AtomicBool, AtomicU8, Mutex, Ordering, Weak};

/// A cancellation signal with an optional deadline, shared by a tree of work.
///
/// Cheap to clone (one reference count); clones are the same context, and
/// cancelling any clone cancels them all. Dropping a context never cancels
/// it: cancellation is always an explicit [`cancel`](Self::cancel) or a
/// deadline, as in Go. When a context is both past its deadline and
/// cancelled by the time anyone looks, [`reason`](Self::reason) reports the
/// cause that happened first, and never changes afterwards.
///
/// Deadlines are exact for polling ([`is_done`](Self::is_done),
/// [`check`](Self::check)) and fire within the shared timer thread's wake-up
/// latency for blocking waits ([`done`](Self::done), [`sleep`](Self::sleep)).
///
/// # The timer thread
///
/// Blocking waits on deadlines are woken by one thread for the whole
/// process, named `brigade-timer`. It starts the first time a context with
/// a deadline is waited on (or registers for wake-ups) and then lives for
/// the rest of the process, asleep while no deadline is pending; it holds
/// contexts only weakly, and a cancelled or dropped context removes its
/// entry. Thread-leak checks that count a program's threads should expect
/// it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade::{Cancelled, Context};
///
/// let root = Context::new();
/// let request = root.with_timeout(Duration::from_secs(30));
/// let step = request.child();
///
/// assert!(step.check().is_ok());
/// root.cancel();
/// assert_eq!(step.check(), Err(Cancelled::Canceled));
/// assert!(request.is_done());
/// ```
#[derive(Clone)]
pub struct Context {
    node: Arc<Node>,
}

/// `status` values. Written once, from `LIVE` to one of the others, under the
/// node's lock; read without it.
const LIVE: u8 = 0;
const CANCELED: u8 = 1;
const DEADLINE: u8 = 2;

struct Node {
    /// `None` for roots and for children of the background context (which
    /// can never be cancelled, so there is nothing to inherit).
    parent: Option<Arc<Node>>,
    /// Effective deadline: the earlier of this node's own and its parent's.
    deadline: Option<Instant>,
    /// This node's own deadline is strictly earlier than its parent's, so it
    /// needs its own timer entry once linked.
    own_timer: bool,
    /// `false` only for [`Context::background`].
    cancellable: bool,
    /// One of `LIVE`, `CANCELED`, `DEADLINE`.
    status: AtomicU8,
    /// Registered with the parent and, for a deadline of its own, with the
    /// timer (trivially true for a node with neither). A linked node is
    /// cancelled by propagation, so polling need not walk its ancestors.
    linked: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The reason and when it happened (the deadline instant for deadlines).
    /// (Keep [`State::is_pristine`] in step with the fields.)
    reason: Option<(Cancelled, Instant)>,
    /// Registered children, keyed by node address (unique while registered,
    /// because a child unregisters before its memory is freed).
    children: HashMap<usize, Weak<Node>>,
    /// Dropped on cancellation, which disconnects every `done()` receiver.
    done_tx: Option<Sender<()>>,
    done_rx: Option<Receiver<()>>,
    timer: Option<timer::Key>,
    /// Callbacks to run once when the context becomes done (see
    /// `Context::on_done`), keyed for removal.
    hooks: Vec<(u64, Hook)>,
    next_hook: u64,
}

impl State {
    /// As `State::default()` leaves it: nothing to clear before a spare
    /// context is used again.
    fn is_pristine(&self) -> bool {
        self.reason.is_none()
            && self.children.is_empty()
            && self.done_tx.is_none()
            && self.done_rx.is_none()
            && self.timer.is_none()
            && self.hooks.is_empty()
    }
}

/// A callback run on the thread that cancels a context (or the timer
/// thread), with the reason. Must be quick and must not block: it only
/// wakes whoever waits.
pub(crate) type Hook = Box<dyn FnOnce(Cancelled) + Send>;

/// What a cancelled node wakes once its whole tree is marked: its `done()`
/// receivers (by dropping the sender) and its hooks.
type Wake = (Option<Sender<()>>, Vec<(u64, Hook)>);

/// What [`Context::on_done`] did with a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hooked {
    /// Registered; pass the key to [`Context::remove_hook`] when no longer
    /// waiting.
    Registered(u64),
    /// The context was already done: the hook ran on the calling thread.
    AlreadyDone,
    /// The context can never be done (the background context): the hook
    /// was dropped unrun.
    Never,
}

impl Context {
    /// The context that is never cancelled and has no deadline; the root for
    /// work that only its own children may cancel.
    ///
    /// [`cancel`](Self::cancel) on it does nothing.
    pub fn background() -> Self {
        #[cfg(not(loom))]
        static BACKGROUND: OnceLock<Arc<Node>> = OnceLock::new();
        // Under loom every model runs in fresh state, so no node may
        // outlive one: give each caller its own never-cancelled node.
        #[cfg(loom)]
        let node = &Arc::new(Node::new(None, None, false, false));
        #[cfg(not(loom))]
        let node = BACKGROUND.get_or_init(|| Arc::new(Node::new(None, None, false, false)));
        Self {
            node: Arc::clone(node),
        }
    }

    /// A new cancellable root context with no deadline.
    #[must_use]
    #[allow(
        clippy::new_without_default,
        reason = "a root context is not a default value; Context::background() is the neutral one"
    )]
    pub fn new() -> Self {
        Self {
            node: Arc::new(Node::new(None, None, false, true)),
        }
    }

    /// A child that is cancelled when this context is, and can be cancelled
    /// on its own without affecting this one.
    #[must_use]
    pub fn child(&self) -> Self {
        self.derive(None)
    }

    /// A child whose deadline is `timeout` from now, or this context's
    /// deadline if that is earlier. A zero timeout gives a context that is
    /// already done with [`Cancelled::DeadlineExceeded`]; a timeout too large
    /// to represent means no deadline of its own.
    #[must_use]
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        self.derive(Instant::now().checked_add(timeout))
    }

    /// A child whose deadline is `deadline`, or this context's deadline if
    /// that is earlier. A deadline in the past gives a context that is
    /// already done with [`Cancelled::DeadlineExceeded`].
    #[must_use]
    pub fn with_deadline(&self, deadline: Instant) -> Self {
        self.derive(Some(deadline))
    }

    /// A child with an optional deadline of its own.
    pub(crate) fn derive(&self, own: Option<Instant>) -> Self {
        let parent = &self.node;
        let (deadline, own_timer) = effective_deadline(own, parent.deadline);
        let parent = parent.cancellable.then(|| Arc::clone(parent));
        Self {
            node: Arc::new(Node::new(parent, deadline, own_timer, true)),
        }
    }

    /// A child like [`derive`](Self::derive) that reuses `spare`'s
    /// allocation when nothing else can reach it: no clone, no registration
    /// (registrations and timer entries hold weak references, so
    /// `Arc::get_mut` refuses them), and the same parent. Workers keep their
    /// last job's context as the spare, so a job whose context is not kept
    /// allocates nothing for it.
    pub(crate) fn derive_reusing(&self, own: Option<Instant>, spare: Option<Context>) -> Self {
        if let Some(mut spare) = spare {
            if let Some(node) = Arc::get_mut(&mut spare.node) {
                if node.reset_as_child_of(&self.node, own) {
                    return spare;
                }
            }
        }
        self.derive(own)
    }

    /// Cancels this context and all its descendants with
    /// [`Cancelled::Canceled`]. Idempotent; a context that is already done
    /// keeps its first reason. Does nothing on [`Context::background`].
    pub fn cancel(&self) {
        if self.node.cancellable {
            self.node.cancel_with(Cancelled::Canceled, Instant::now());
        }
    }

    /// Whether this context is cancelled or past its deadline.
    ///
    /// Never blocks. Costs a few atomic loads, plus a clock read when a
    /// deadline is set.
    #[inline]
    pub fn is_done(&self) -> bool {
        let node = &*self.node;
        // The common cases inline, where `poll` would find nothing to walk.
        if node.is_plainly_live() {
            return false;
        }
        if node.status.load(Ordering::Acquire) != LIVE {
            return true;
        }
        // The walk itself: `poll` would look at the common cases again.
        node.poll_at(&mut None).is_some()
    }

    /// Why this context is done, or `None` while it is live.
    pub fn reason(&self) -> Option<Cancelled> {
        self.node.poll()
    }

    /// `Ok(())` while live, `Err(reason)` once done; for `?` inside jobs.
    ///
    /// # Errors
    ///
    /// [`Cancelled::Canceled`] after a cancel, [`Cancelled::DeadlineExceeded`]
    /// after the deadline.
    #[inline]
    pub fn check(&self) -> Result<(), Cancelled> {
        match self.reason() {
            None => Ok(()),
            Some(reason) => Err(reason),
        }
    }

    /// The effective deadline: the earliest along this context's ancestry.
    pub fn deadline(&self) -> Option<Instant> {
        self.node.deadline
    }

    /// Time left before the deadline (zero once it has passed), or `None`
    /// without a deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.node
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// A receiver that never yields a value and disconnects when this context
    /// is cancelled or its deadline passes, for use in your own
    /// [`select!`](crate::select) (brigade re-exports crossbeam-channel's, and
    /// the crate itself as [`brigade::channel`](crate::channel), so no
    /// version needs matching).
    ///
    /// The first call registers this context for wake-ups (with its parent,
    /// and with the timer if it has a deadline of its own); later calls
    /// return clones of the same receiver. On [`Context::background`] it is
    /// [`crossbeam_channel::never`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade::channel::unbounded;
    /// use brigade::{Context, select};
    ///
    /// let ctx = Context::new().with_timeout(Duration::from_millis(20));
    /// let (_tx, jobs) = unbounded::<u32>();
    /// select! {
    ///     recv(jobs) -> _ => unreachable!("nobody sends"),
    ///     recv(ctx.done()) -> _ => assert!(ctx.is_done()),
    /// }
    /// ```
    pub fn done(&self) -> Receiver<()> {
        if !self.node.cancellable {
            return channel::never();
        }
        self.node.link();
        let mut state = self.node.state.lock();
        if let Some(rx) = &state.done_rx {
            return rx.clone();
        }
        let (tx, rx) = channel::bounded(0);
        if state.reason.is_none() {
            state.done_tx = Some(tx);
        }
        state.done_rx = Some(rx.clone());
        rx
    }

    /// Sleeps for `duration`, waking early if this context is done.
    ///
    /// # Errors
    ///
    /// The reason, if the context is done before or during the sleep.
    pub fn sleep(&self, duration: Duration) -> Result<(), Cancelled> {
        self.check()?;
        match self.done().recv_timeout(duration) {
            Err(RecvTimeoutError::Timeout) => Ok(()),
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                Err(self.reason().unwrap_or(Cancelled::Canceled))
            }
        }
    }

    /// How many children are registered for wake-ups right now: for the
    /// crate's unit tests and loom models of the cancel tree only, never in
    /// a normal build's API.
    #[cfg(any(test, loom))]
    #[doc(hidden)]
    pub fn registered_children(&self) -> usize {
        self.node.state.lock().children.len()
    }

    /// Registers this context with its ancestors (and the timer) for
    /// propagated cancellation, as [`done`](Self::done) does, without
    /// making a channel.
    pub(crate) fn link(&self) {
        if self.node.cancellable {
            self.node.link();
        }
    }

    /// Runs `hook` once, with the reason, when this context becomes done —
    /// cancelled or past its deadline, its own or an ancestor's. Like Go's
    /// `context.AfterFunc`, for waits that cannot `select` on
    /// [`done`](Self::done), such as a condition variable. Registers the
    /// context for wake-ups, as `done` does.
    pub(crate) fn on_done(&self, hook: impl FnOnce(Cancelled) + Send + 'static) -> Hooked {
        if !self.node.cancellable {
            return Hooked::Never;
        }
        self.node.link();
        let mut state = self.node.state.lock();
        let reason = match state.reason {
            Some((reason, _)) => reason,
            None => {
                let key = state.next_hook;
                state.next_hook += 1;
                state.hooks.push((key, Box::new(hook)));
                return Hooked::Registered(key);
            }
        };
        drop(state);
        hook(reason);
        Hooked::AlreadyDone
    }

    /// Removes a hook registered by [`on_done`](Self::on_done). Returns
    /// `false` if it already ran (or is running).
    pub(crate) fn remove_hook(&self, hooked: Hooked) -> bool {
        let Hooked::Registered(key) = hooked else {
            return false;
        };
        let mut state = self.node.state.lock();
        let before = state.hooks.len();
        state.hooks.retain(|(k, _)| *k != key);
        state.hooks.len() != before
    }

    /// Whether `self` and `other` are the same context (clones of one node).
    pub fn same_context(&self, other: &Context) -> bool {
        Arc::ptr_eq(&self.node, &other.node)
    }
}

/// A child's deadline: the earlier of its own and the inherited one, and
/// whether its own is the earlier (then it needs its own timer entry).
fn effective_deadline(own: Option<Instant>, inherited: Option<Instant>) -> (Option<Instant>, bool) {
    match (own, inherited) {
        (Some(own), Some(inherited)) if own < inherited => (Some(own), true),
        (Some(own), None) => (Some(own), true),
        (_, inherited) => (inherited, false),
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("reason", &self.reason())
            .field("deadline", &self.node.deadline)
            .finish_non_exhaustive()
    }
}

impl Node {
    fn new(
        parent: Option<Arc<Node>>,
        deadline: Option<Instant>,
        own_timer: bool,
        cancellable: bool,
    ) -> Self {
        Self {
            // Nothing to register with: no parent to propagate from, and no
            // deadline of its own for the timer to fire.
            linked: AtomicBool::new(parent.is_none() && !own_timer),
            parent,
            deadline,
            own_timer,
            cancellable,
            status: AtomicU8::new(LIVE),
            state: Mutex::new(State::default()),
        }
    }

    /// Makes this unreachable node a fresh child of `parent` with an own
    /// deadline `own`, as `derive` would build it. Returns `false` (and
    /// changes nothing) unless it already is an unregistered child of
    /// `parent`.
    fn reset_as_child_of(&mut self, parent: &Arc<Node>, own: Option<Instant>) -> bool {
        let same_parent = self.parent.as_ref().is_some_and(|p| Arc::ptr_eq(p, parent));
        if !same_parent || self.linked.load(Ordering::Relaxed) {
            return false;
        }
        let (deadline, own_timer) = effective_deadline(own, parent.deadline);
        self.deadline = deadline;
        self.own_timer = own_timer;
        self.status = AtomicU8::new(LIVE);
        // Most jobs leave the state as they found it: rebuilding it anyway
        // (dropping and making an empty map, channel slots, hook list) was
        // a tenth of a `submit` job's instructions on its worker.
        let state = self.state.get_mut();
        if !state.is_pristine() {
            *state = State::default();
        }
        true
    }

    fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// The reason, observing (and recording) a passed deadline or an
    /// ancestor's cancellation that has not been propagated here yet.
    fn poll(&self) -> Option<Cancelled> {
        if self.is_plainly_live() {
            return None;
        }
        let mut now = None;
        self.poll_at(&mut now).map(|(reason, _)| reason)
    }

    /// Live with nothing to walk, for the common cases: no deadline, and
    /// a root, a node its parent propagates to, or the unregistered child
    /// of a live one that is (a job's context, under its worker's).
    /// `poll_at`'s walk would find nothing either: it stops at the first
    /// linked node, having looked at each parent's status on the way.
    #[inline]
    fn is_plainly_live(&self) -> bool {
        // ORDERING: Acquire, all: as in `poll_at`.
        self.status.load(Ordering::Acquire) == LIVE
            && self.deadline.is_none()
            && (self.linked.load(Ordering::Acquire)
                || self.parent.as_deref().is_none_or(|parent| {
                    parent.linked.load(Ordering::Acquire)
                        && parent.status.load(Ordering::Acquire) == LIVE
                }))
    }

    fn poll_at(&self, now: &mut Option<Instant>) -> Option<(Cancelled, Instant)> {
        if self.status.load(Ordering::Acquire) != LIVE {
            return self.state.lock().reason;
        }
        if !self.cancellable {
            return None;
        }
        // Walk up while the nodes are unlinked: their ancestors' cancellation
        // has not been propagated to them. The first linked ancestor is kept
        // up to date by propagation, so the walk stops there. A loop, not
        // recursion, so deep chains cannot overflow the stack.
        let mut first: Option<(Cancelled, Instant)> = None;
        let mut node: &Node = self;
        // ORDERING: Acquire pairs with the Release in `link_one`: a node seen
        // as linked has been registered and is cancelled by propagation.
        while !node.linked.load(Ordering::Acquire) {
            let Some(parent) = node.parent.as_deref() else {
                break;
            };
            if parent.status.load(Ordering::Acquire) != LIVE {
                if let Some((reason, at)) = parent.state.lock().reason {
                    if first.is_none_or(|(_, seen)| at < seen) {
                        first = Some((reason, at));
                    }
                }
            }
            node = parent;
        }
        // The effective deadline already folds in every ancestor's deadline.
        if let Some(deadline) = self.deadline {
            let now = *now.get_or_insert_with(Instant::now);
            if deadline <= now && first.is_none_or(|(_, at)| deadline < at) {
                first = Some((Cancelled::DeadlineExceeded, deadline));
            }
        }
        let (reason, at) = first?;
        self.cancel_with(reason, at);
        self.state.lock().reason
    }

    /// Records `reason` (unless a reason is already recorded), wakes every
    /// `done()` receiver and cancels every registered descendant.
    fn cancel_with(&self, reason: Cancelled, at: Instant) {
        let mut pending: Vec<Arc<Node>> = Vec::new();
        let mut wakes = Vec::new();
        self.cancel_one(reason, at, &mut pending, &mut wakes);
        // An explicit work list rather than recursion: a deep chain of
        // contexts must not overflow the stack of whoever cancels the root.
        while let Some(node) = pending.pop() {
            node.cancel_one(reason, at, &mut pending, &mut wakes);
        }
        // The whole tree is marked before anyone wakes: a job that returns
        // because it saw an ancestor's `done()` finds its own context done
        // too (and is reported cancelled, not completed).
        for (done_tx, hooks) in wakes {
            drop(done_tx);
            for (_, hook) in hooks {
                crate::unwind::call_logged("context done hook", || hook(reason));
            }
        }
    }

    fn cancel_one(
        &self,
        reason: Cancelled,
        at: Instant,
        pending: &mut Vec<Arc<Node>>,
        wakes: &mut Vec<Wake>,
    ) {
        let (children, done_tx, timer, hooks) = {
            let mut state = self.state.lock();
            if state.reason.is_some() {
                return;
            }
            state.reason = Some((reason, at));
            let status = match reason {
                Cancelled::Canceled => CANCELED,
                Cancelled::DeadlineExceeded => DEADLINE,
            };
            self.status.store(status, Ordering::Release);
            (
                std::mem::take(&mut state.children),
                state.done_tx.take(),
                state.timer.take(),
                std::mem::take(&mut state.hooks),
            )
        };
        wakes.push((done_tx, hooks));
        if let Some(key) = timer {
            timer::Timer::global().remove(key);
        }
        pending.extend(children.into_values().filter_map(|child| child.upgrade()));
        if self.linked.load(Ordering::Acquire) {
            if let Some(parent) = &self.parent {
                parent.unregister(self.key());
            }
        }
    }

    /// Registers this node (and, first, its ancestors) for propagated
    /// cancellation and, if it has a deadline of its own, with the timer.
    fn link(self: &Arc<Self>) {
        if self.linked.load(Ordering::Acquire) {
            return;
        }
        // Collect the unlinked ancestry, then link it top-down, so every node
        // registers with a parent that is already linked.
        let mut chain = vec![Arc::clone(self)];
        let mut next = self.parent.clone();
        while let Some(node) = next {
            if node.linked.load(Ordering::Acquire) {
                break;
            }
            next = node.parent.clone();
            chain.push(node);
        }
        for node in chain.into_iter().rev() {
            node.link_one();
        }
    }

    fn link_one(self: &Arc<Self>) {
        let mut state = self.state.lock();
        if self.linked.load(Ordering::Relaxed) || state.reason.is_some() {
            return;
        }
        // A child of the background context has no parent to register with,
        // but may still have a deadline of its own for the timer.
        let inherited = self
            .parent
            .as_ref()
            .and_then(|parent| parent.register(self));
        let mut expired = inherited;
        if expired.is_none() && self.own_timer {
            if let Some(deadline) = self.deadline {
                if deadline <= Instant::now() {
                    expired = Some((Cancelled::DeadlineExceeded, deadline));
                } else {
                    state.timer =
                        Some(timer::Timer::global().insert(deadline, Arc::downgrade(self)));
                }
            }
        }
        // ORDERING: Release publishes the registration to `poll_at`.
        self.linked.store(inherited.is_none(), Ordering::Release);
        drop(state);
        if let Some((reason, at)) = expired {
            self.cancel_with(reason, at);
        }
    }

    /// Adds `child` to this node's table, or returns this node's reason if it
    /// is already done (then the child must cancel itself).
    fn register(&self, child: &Arc<Node>) -> Option<(Cancelled, Instant)> {
        let mut state = self.state.lock();
        if state.reason.is_some() {
            return state.reason;
        }
        state.children.insert(child.key(), Arc::downgrade(child));
        None
    }

    fn unregister(&self, key: usize) {
        let mut state = self.state.lock();
        state.children.remove(&key);
        // Keep memory flat under churn: a table that once held many children
        // gives its memory back when it empties.
        if state.children.is_empty() && state.children.capacity() > 64 {
            state.children = HashMap::new();
        }
    }
}

impl Node {
    /// Gives back what this node holds elsewhere: its timer entry and its
    /// slot in the parent's table. Idempotent.
    fn release(&mut self) {
        let state = self.state.get_mut();
        if let Some(key) = state.timer.take() {
            timer::Timer::global().remove(key);
        }
        if self.linked.swap(false, Ordering::Relaxed) {
            if let Some(parent) = &self.parent {
                parent.unregister(std::ptr::from_ref(self) as usize);
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.release();
        // Free a chain of ancestors that only we kept alive in a loop, not by
        // recursive drops that could overflow the stack on a deep chain.
        let mut next = self.parent.take();
        while let Some(node) = next {
            match Arc::try_unwrap(node) {
                Ok(mut node) => {
                    node.release();
                    next = node.parent.take();
                }
                Err(_) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crossbeam_channel::TryRecvError;

    use super::*;

    /// Children made by the registration tests (fewer under Miri).
    const MANY: u32 = if cfg!(miri) { 1_000 } else { 1_000_000 };

    #[test]
    fn lazily_linked_child_sees_parent_cancel() {
        let parent = Context::new();
        let child = parent.child();
        assert_eq!(parent.registered_children(), 0);
        parent.cancel();
        assert_eq!(child.reason(), Some(Cancelled::Canceled));
    }

    #[test]
    fn done_registers_and_drop_unregisters() {
        let parent = Context::new();
        let child = parent.child();
        let _rx = child.done();
        assert_eq!(parent.registered_children(), 1);
        drop(child);
        assert_eq!(parent.registered_children(), 0);
    }

    #[test]
    fn earlier_cause_wins() {
        let parent = Context::new();
        let child = parent.with_deadline(Instant::now() - Duration::from_millis(5));
        parent.cancel();
        assert_eq!(child.reason(), Some(Cancelled::DeadlineExceeded));
    }

    #[test]
    fn deep_chain_cancels_without_recursion() {
        let root = Context::new();
        let mut leaf = root.clone();
        let mut keep = Vec::new();
        for _ in 0..if cfg!(miri) { 1_000 } else { 100_000 } {
            leaf = leaf.child();
            keep.push(leaf.clone());
        }
        let _rx = leaf.done();
        root.cancel();
        assert!(leaf.is_done());
        // Drop leaf-first so dropping the chain does not recurse either.
        while let Some(ctx) = keep.pop() {
            drop(ctx);
        }
    }

    #[test]
    fn million_dropped_children_leave_parent_empty() {
        // Creating and dropping 1,000,000 children under one long-lived parent,
        // half of them registered through done(), leaves its table empty.
        let parent = Context::new().with_timeout(Duration::from_secs(3600));
        let kept = parent.child();
        let _kept_done = kept.done();
        assert_eq!(parent.registered_children(), 1);
        for i in 0..MANY {
            let child = parent.child();
            if i % 2 == 0 {
                let _ = child.done();
                if i == 0 {
                    assert_eq!(parent.registered_children(), 2, "done() registers");
                }
            }
        }
        assert_eq!(parent.registered_children(), 1);
        drop(kept);
        assert_eq!(parent.registered_children(), 0);
        assert!(!parent.is_done());
    }

    #[test]
    fn million_cancelled_children_leave_parent_empty() {
        // Creating and cancelling 1,000,000 children under one long-lived
        // parent, half of them registered through done(), leaves its table empty
        // even while the cancelled children are still alive.
        let parent = Context::new();
        let mut alive = Vec::with_capacity(1000);
        for i in 0..MANY {
            let child = parent.child();
            if i % 2 == 0 {
                let _ = child.done();
            }
            child.cancel();
            if i % 1000 == 0 {
                alive.push(child);
            }
        }
        assert_eq!(parent.registered_children(), 0);
        assert!(
            alive
                .iter()
                .all(|c| c.reason() == Some(Cancelled::Canceled))
        );
        drop(alive);
        assert_eq!(parent.registered_children(), 0);
        assert!(!parent.is_done());
    }

    #[test]
    fn registered_children_counted_while_alive() {
        // Children that block on done() are counted while alive and removed on
        // drop.
        let parent = Context::new();
        let children: Vec<Context> = (0..1000).map(|_| parent.child()).collect();
        assert_eq!(parent.registered_children(), 0, "polling never registers");
        let receivers: Vec<_> = children.iter().map(Context::done).collect();
        assert_eq!(parent.registered_children(), 1000);
        drop(receivers);
        assert_eq!(parent.registered_children(), 1000, "the contexts are alive");
        drop(children);
        assert_eq!(parent.registered_children(), 0);
    }

    #[test]
    fn cancelled_parent_makes_new_child_done() {
        // A child made after its parent was cancelled is done at once, and never
        // registers.
        let parent = Context::new();
        parent.cancel();
        let child = parent.child();
        assert!(child.is_done());
        assert_eq!(child.reason(), Some(Cancelled::Canceled));
        let timed = parent.with_timeout(Duration::from_secs(3600));
        assert_eq!(timed.done().try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(timed.reason(), Some(Cancelled::Canceled));
        assert_eq!(parent.registered_children(), 0);
    }
}
