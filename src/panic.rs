//! What a caller learns about a job that panicked: [`Panic`].
//!
//! `catch_unwind` hands back only the payload; where the panic happened is
//! known to the panic hook alone. So the first pool a process builds
//! installs a hook that notes the location on the panicking thread and
//! then calls the hook that was there before (std's by default, which still
//! prints the message and, under `RUST_BACKTRACE=1`, a backtrace). The job's
//! `catch_unwind` picks the note up on the same thread, before the payload
//! goes anywhere else. The machinery is in the crate-private `unwind`
//! module; this file holds the public types.

use std::fmt;

/// A panic caught in a job, task or stage: its message and, when it could
/// be seen, where in the source it happened.
///
/// Equality compares the messages only, so a test can write the error it
/// expects from the message alone (`JobError::Panicked("boom".into())`);
/// the location is for people reading logs.
///
/// # Where the location comes from
///
/// The first pool, group or pipeline a process builds installs a panic hook
/// that notes the location and then calls the hook installed before it, so
/// panics print exactly as they did. A hook the program installs *after*
/// that replaces brigade's, and later panics have no location
/// ([`location`](Self::location) is `None`); install yours before building
/// a pool (brigade then calls it) to keep both.
///
/// # Examples
///
/// ```
/// use brigade::{JobError, ThreadPool};
///
/// let pool = ThreadPool::builder().workers(1).build()?;
/// let handle = pool.submit(|_ctx| -> u32 { panic!("corrupt input") })?;
/// let Err(JobError::Panicked(panic)) = handle.join() else { unreachable!() };
/// assert_eq!(panic.message(), "corrupt input");
/// let location = panic.location().expect("brigade's hook saw the panic");
/// assert!(location.file().ends_with(".rs"));
/// assert!(location.line() > 0);
/// // Shown as `job panicked: corrupt input (at src/main.rs:5:42)`:
/// let shown = JobError::Panicked(panic.clone()).to_string();
/// assert!(shown.ends_with(&format!("(at {location})")));
/// // The message compares equal whatever the location:
/// assert_eq!(panic, "corrupt input".into());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Panic {
    // One pointer: a `Panic` rides in every `Result<T, JobError>`, and most
    // of those never hold one.
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    message: String,
    location: Option<PanicLocation>,
}

impl Panic {
    pub(crate) fn new(message: String, location: Option<PanicLocation>) -> Self {
        Self {
            inner: Box::new(Inner { message, location }),
        }
    }

    /// The panic's message: the payload of `panic!("…")` as written; a
    /// payload that is neither `&str` nor `String` reads
    /// `"<non-string panic payload>"`.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// Where the panic happened, if brigade's panic hook saw it (see
    /// [Where the location comes from](Self#where-the-location-comes-from)).
    pub fn location(&self) -> Option<&PanicLocation> {
        self.inner.location.as_ref()
    }
}

impl From<String> for Panic {
    /// A panic with this message and no location, for writing expected errors.
    fn from(message: String) -> Self {
        Self::new(message, None)
    }
}

impl From<&str> for Panic {
    /// A panic with this message and no location, for writing expected errors.
    fn from(message: &str) -> Self {
        Self::new(message.to_owned(), None)
    }
}

impl PartialEq for Panic {
    fn eq(&self, other: &Self) -> bool {
        self.message() == other.message()
    }
}

impl Eq for Panic {}

impl fmt::Debug for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Panic")
            .field("message", &self.message())
            .field("location", &self.location())
            .finish()
    }
}

impl fmt::Display for Panic {
    /// The message, then ` (at file:line:column)` when the location is known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())?;
        match self.location() {
            Some(location) => write!(f, " (at {location})"),
            None => Ok(()),
        }
    }
}

/// A place in the source: file, line and column, as the panic hook saw them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PanicLocation {
    file: Box<str>,
    line: u32,
    column: u32,
}

impl PanicLocation {
    pub(crate) fn of(location: &std::panic::Location<'_>) -> Self {
        Self {
            file: location.file().into(),
            line: location.line(),
            column: location.column(),
        }
    }

    /// The source file, as the compiler named it.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line, counting from 1.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The column, counting from 1.
    pub fn column(&self) -> u32 {
        self.column
    }
}

impl fmt::Display for PanicLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}
