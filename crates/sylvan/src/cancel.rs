//! Errors of cancelled blocking calls: [`Cancelled`] and [`Elapsed`].

use std::error::Error;
use std::fmt;
use std::io;

/// Identifies one `timeout`/`deadline` scope of the green thread that
/// entered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScopeId(pub(crate) u64);

/// Why a blocking call of a green thread (or of the root context) gave up.
///
/// Cancellation in sylvan is by error, not by unwinding: a blocking call
/// made in a green thread that was killed, or whose scoped deadline passed,
/// returns this error, and the code propagates it with `?`.
///
/// It converts into [`io::Error`]: `TimedOut` into
/// [`io::ErrorKind::TimedOut`], `Killed` into [`io::ErrorKind::Other`]
/// (never `Interrupted`, which `read_exact`, `write_all` and `io::copy`
/// retry forever). [`Cancelled::from_io`] gets it back.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::Cancelled;
///
/// let r = sylvan::timeout(Duration::from_millis(10), || {
///     let e = sylvan::sleep(Duration::from_secs(10)).unwrap_err();
///     assert!(matches!(e, Cancelled::TimedOut(_)));
///     let io: std::io::Error = e.into();
///     assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
///     assert_eq!(Cancelled::from_io(&io), Some(e));
/// });
/// assert!(r.is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cancelled {
    /// The deadline of this `timeout`/`deadline` scope passed.
    TimedOut(ScopeId),
    /// The green thread was killed (kill is sticky: every later blocking
    /// call fails the same way). Also returned when a blocking call is made
    /// while the thread is unwinding from a panic, instead of suspending.
    Killed,
}

impl Cancelled {
    /// Whether this is a passed deadline.
    pub fn is_timed_out(&self) -> bool {
        matches!(self, Cancelled::TimedOut(_))
    }

    /// Whether the green thread was killed.
    pub fn is_killed(&self) -> bool {
        matches!(self, Cancelled::Killed)
    }

    /// The `Cancelled` inside an `io::Error` made from one, if any.
    pub fn from_io(e: &io::Error) -> Option<Cancelled> {
        e.get_ref()?.downcast_ref::<Cancelled>().copied()
    }
}

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cancelled::TimedOut(_) => f.write_str("deadline has elapsed"),
            Cancelled::Killed => f.write_str("green thread was killed"),
        }
    }
}

impl Error for Cancelled {}

impl From<Cancelled> for io::Error {
    fn from(c: Cancelled) -> io::Error {
        let kind = match c {
            Cancelled::TimedOut(_) => io::ErrorKind::TimedOut,
            Cancelled::Killed => io::ErrorKind::Other,
        };
        io::Error::new(kind, c)
    }
}

/// The error of [`timeout`](crate::timeout) and [`deadline`](crate::deadline):
/// the scope's own deadline passed and made a blocking call inside it fail.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let r = sylvan::timeout(Duration::from_millis(5), || sylvan::sleep(Duration::from_secs(5)));
/// let e = r.unwrap_err();
/// assert_eq!(e.to_string(), "deadline has elapsed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(pub(crate) ScopeId);

impl Elapsed {
    /// The scope whose deadline passed.
    pub fn scope(&self) -> ScopeId {
        self.0
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl Error for Elapsed {}

impl From<Elapsed> for io::Error {
    fn from(e: Elapsed) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, e)
    }
}
