//! Panic payloads and code that must not unwind.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

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
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
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
