//! Panic payloads, where panics happened, and code that must not unwind.

use std::any::Any;
use std::cell::Cell;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use crate::panic::{Panic, PanicLocation};

/// The text of a panic payload: `&str` and `String` payloads as written,
/// anything else as `"<non-string panic payload>"`.
///
/// Consumes the payload and drops it inside `catch_unwind`, because a payload
/// whose `Drop` panics would otherwise unwind out of the worker that is
/// reporting it. A payload that panics on drop is leaked rather than dropped
/// twice.
pub(crate) fn message(payload: Box<dyn Any + Send>) -> String {
    let text = describe(payload.as_ref());
    drop_quietly(payload);
    text
}

/// The text of a panic payload, leaving the payload in place.
pub(crate) fn describe(payload: &(dyn Any + Send)) -> String {
    text(payload).to_owned()
}

fn text(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "<non-string panic payload>"
    }
}

/// Drops `value`, swallowing a panic from its `Drop`. A second payload from
/// that panic is forgotten, not dropped, so this never unwinds.
pub(crate) fn drop_quietly<T>(value: T) {
    if let Err(nested) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
        std::mem::forget(nested);
    }
}

/// Runs `f`, logging instead of unwinding if it panics. For user hooks that
/// run on worker threads, where a panic must not take the worker down.
pub(crate) fn call_logged(what: &str, f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        log::warn!("brigade: {what} panicked: {}", message(payload));
    }
}

/// A panic caught on this thread: its payload, and where it happened if
/// brigade's hook saw it (see [`Panic`]'s docs).
///
/// One pointer, so carrying it costs a job's outcome nothing; the box is
/// allocated only when a job panics.
pub(crate) struct Caught(Box<(Box<dyn Any + Send>, Option<PanicLocation>)>);

impl Caught {
    /// Must be called on the thread that panicked, right after its
    /// `catch_unwind` returned, to pick up the hook's note of that panic.
    pub(crate) fn new(payload: Box<dyn Any + Send>) -> Self {
        // A note left by another panic (one the job caught itself, while a
        // hook installed later keeps this one from being noted) has
        // another message: better no location than a wrong one.
        let location = NOTED
            .try_with(Cell::take)
            .ok()
            .flatten()
            .filter(|noted| noted.1 == fingerprint(payload.as_ref()))
            .map(|noted| noted.0);
        Self(Box::new((payload, location)))
    }

    pub(crate) fn payload(&self) -> &(dyn Any + Send) {
        self.0.0.as_ref()
    }

    pub(crate) fn location(&self) -> Option<&PanicLocation> {
        self.0.1.as_ref()
    }

    /// What a caller sees: a [`Panic`] with the payload's text (the
    /// payload is dropped, quietly).
    pub(crate) fn into_panic(self) -> Panic {
        let (payload, location) = *self.0;
        Panic::new(message(payload), location)
    }

    /// A [`Panic`] for the caller, keeping the payload to resume later.
    pub(crate) fn split(self) -> (Panic, Box<dyn Any + Send>) {
        let (payload, location) = *self.0;
        (Panic::new(describe(payload.as_ref()), location), payload)
    }
}

std::thread_local! {
    /// Where the latest panic on this thread happened, noted by the hook
    /// and taken by the [`Caught`] of that same panic.
    static NOTED: Cell<Option<(PanicLocation, u64)>> = const { Cell::new(None) };
}

/// Tells one panic's message from another's, without keeping a copy.
fn fingerprint(payload: &(dyn Any + Send)) -> u64 {
    let mut hasher = DefaultHasher::new();
    text(payload).hash(&mut hasher);
    hasher.finish()
}

/// Installs brigade's panic hook, once per process: it notes each panic's
/// location for [`Caught::new`] and then calls the hook that was installed
/// before it, so panics print as they always did. Called by every crew
/// start; after the first, one atomic load.
pub(crate) fn note_panic_locations() {
    static INSTALL: Once = Once::new();
    // `set_hook` refuses to run on a panicking thread (a pool built in a
    // `Drop` during unwinding); a later build installs it instead. loom
    // models run every thread on one OS thread, where a note could be
    // taken by the wrong model thread: they go without locations.
    if cfg!(loom) || std::thread::panicking() {
        return;
    }
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(location) = info.location() {
                // `try_with`: a panic in a thread-local's destructor must
                // not panic again here, which would abort.
                let note = (PanicLocation::of(location), fingerprint(info.payload()));
                let _ = NOTED.try_with(|noted| noted.set(Some(note)));
            }
            previous(info);
        }));
    });
}
