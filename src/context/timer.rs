//! The one timer thread that fires every deadline someone blocks on.
//!
//! Entries live in an ordered map keyed by `(deadline, sequence number)`, so
//! the next deadline is the first key, insertion and removal are
//! `O(log n)`, and a cancelled or dropped context removes its own entry by
//! key. The thread holds only `Weak` references: a timer entry never keeps a
//! context alive.
//!
//! The thread is named `brigade-timer`, starts on the first insertion and
//! lives for the rest of the process (one thread in all, never one per
//! context). If the OS refuses to start it, the failure is logged and the
//! next insertion tries again; polling (`Context::is_done`) stays exact
//! regardless, because it reads the clock itself.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Instant;

use super::Node;
use crate::error::Cancelled;
use crate::sync::{Condvar, Mutex, Weak};

/// Identifies one timer entry, for removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Key {
    at: Instant,
    seq: u64,
}

pub(super) struct Timer {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    entries: BTreeMap<Key, Weak<Node>>,
    next_seq: u64,
    running: bool,
}

impl Timer {
    pub(super) fn global() -> &'static Timer {
        static TIMER: OnceLock<Timer> = OnceLock::new();
        TIMER.get_or_init(|| Timer {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        })
    }

    pub(super) fn insert(&'static self, at: Instant, node: Weak<Node>) -> Key {
        let mut state = self.state.lock();
        let key = Key {
            at,
            seq: state.next_seq,
        };
        state.next_seq += 1;
        let is_first = state
            .entries
            .first_key_value()
            .is_none_or(|(first, _)| key < *first);
        state.entries.insert(key, node);
        if !state.running {
            state.running = self.start();
        } else if is_first {
            self.wake.notify_one();
        }
        key
    }

    pub(super) fn remove(&self, key: Key) {
        self.state.lock().entries.remove(&key);
    }

    fn start(&'static self) -> bool {
        let spawned = std::thread::Builder::new()
            .name("brigade-timer".into())
            .spawn(move || self.run());
        match spawned {
            Ok(_) => true,
            Err(err) => {
                log::error!(
                    "brigade: could not start the deadline timer thread ({err}); will retry"
                );
                false
            }
        }
    }

    fn run(&self) {
        let mut due = Vec::new();
        loop {
            {
                let mut state = self.state.lock();
                loop {
                    let now = Instant::now();
                    while let Some(entry) = state.entries.first_entry() {
                        if entry.key().at > now {
                            break;
                        }
                        let (key, node) = entry.remove_entry();
                        due.push((key.at, node));
                    }
                    if !due.is_empty() {
                        break;
                    }
                    match state.entries.first_key_value() {
                        Some((next, _)) => {
                            let at = next.at;
                            self.wake.wait_until(&mut state, at);
                        }
                        None => self.wake.wait(&mut state),
                    }
                }
            }
            // Fire without the timer's lock: cancelling takes context locks
            // and may remove other timer entries.
            for (at, node) in due.drain(..) {
                if let Some(node) = node.upgrade() {
                    node.cancel_with(Cancelled::DeadlineExceeded, at);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::Context;

    #[test]
    fn removed_on_cancel_and_drop() {
        let ctx = Context::new().with_timeout(Duration::from_secs(3600));
        let _rx = ctx.done();
        // Other tests share the global timer, so compare against our entry only.
        let key = ctx
            .node
            .state
            .lock()
            .timer
            .expect("a blocked-on deadline registers a timer");
        assert!(
            super::Timer::global()
                .state
                .lock()
                .entries
                .contains_key(&key)
        );
        ctx.cancel();
        assert!(
            !super::Timer::global()
                .state
                .lock()
                .entries
                .contains_key(&key)
        );
        let other = Context::new().with_timeout(Duration::from_secs(3600));
        let _rx = other.done();
        let key = other.node.state.lock().timer.expect("registered");
        drop(other);
        assert!(
            !super::Timer::global()
                .state
                .lock()
                .entries
                .contains_key(&key)
        );
    }
}
