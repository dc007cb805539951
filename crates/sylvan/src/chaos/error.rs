//! [`ChaosError`]: what a chaos proxy's control calls reject.

use std::error::Error;
use std::fmt;
use std::io;

/// Why a [`ChaosProxy`](super::ChaosProxy) control call or a [`Toxic`]
/// constructor rejected its input.
///
/// Every variant names what was wrong, so the message can be shown to
/// whoever typed the value (in a test, on a command line, in an HTTP
/// request). It converts into [`io::Error`]: `NotFound` for
/// [`NoSuchToxic`](Self::NoSuchToxic), `AlreadyExists` for
/// [`ToxicExists`](Self::ToxicExists), `InvalidInput` for the rest.
///
/// [`Toxic`]: super::Toxic
///
/// # Examples
///
/// ```
/// use sylvan::chaos::{ChaosError, ChaosProxy, Direction, Toxic};
///
/// let proxy = ChaosProxy::start("127.0.0.1:0", "127.0.0.1:9").unwrap();
/// let err = proxy
///     .add_toxic("lag", Toxic::HalfOpen, Direction::Upstream, f32::NAN)
///     .unwrap_err();
/// assert!(matches!(err, ChaosError::InvalidToxicity(_)));
/// assert_eq!(
///     err.to_string(),
///     "invalid toxicity NaN: must be a probability between 0 and 1"
/// );
/// let io: std::io::Error = err.into();
/// assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ChaosError {
    /// A toxicity that is not a probability in `[0, 1]` (NaN included).
    InvalidToxicity(f32),
    /// An attribute value the toxic cannot work with.
    InvalidAttribute {
        /// The toxic's type name (`"bandwidth"`, …).
        toxic: &'static str,
        /// The attribute's name (`"rate"`, …).
        attribute: &'static str,
        /// What is wrong with the value.
        reason: String,
    },
    /// An attribute name that the toxic type does not have.
    UnknownAttribute {
        /// The toxic's type name.
        toxic: &'static str,
        /// The name that was given.
        attribute: String,
    },
    /// A toxic type name that is not one of [`Toxic::TYPES`](super::Toxic::TYPES).
    UnknownToxicType(String),
    /// A direction name other than `upstream` and `downstream`.
    UnknownDirection(String),
    /// A toxic of this name is already on the proxy.
    ToxicExists(String),
    /// No toxic of this name is on the proxy.
    NoSuchToxic(String),
    /// An upstream address that is not `HOST:PORT`.
    InvalidUpstream(String),
}

impl fmt::Display for ChaosError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChaosError::InvalidToxicity(t) => {
                write!(
                    f,
                    "invalid toxicity {t}: must be a probability between 0 and 1"
                )
            }
            ChaosError::InvalidAttribute {
                toxic,
                attribute,
                reason,
            } => write!(f, "invalid {toxic} attribute {attribute:?}: {reason}"),
            ChaosError::UnknownAttribute { toxic, attribute } => {
                write!(f, "the {toxic} toxic has no attribute {attribute:?}")
            }
            ChaosError::UnknownToxicType(t) => write!(
                f,
                "unknown toxic type {t:?}: expected one of {}",
                super::Toxic::TYPES.join(", ")
            ),
            ChaosError::UnknownDirection(d) => write!(
                f,
                "unknown direction {d:?}: expected \"upstream\" or \"downstream\""
            ),
            ChaosError::ToxicExists(n) => write!(f, "a toxic named {n:?} already exists"),
            ChaosError::NoSuchToxic(n) => write!(f, "no toxic named {n:?}"),
            ChaosError::InvalidUpstream(a) => {
                write!(f, "invalid upstream address {a:?}: expected HOST:PORT")
            }
        }
    }
}

impl Error for ChaosError {}

impl From<ChaosError> for io::Error {
    fn from(e: ChaosError) -> io::Error {
        let kind = match e {
            ChaosError::NoSuchToxic(_) => io::ErrorKind::NotFound,
            ChaosError::ToxicExists(_) => io::ErrorKind::AlreadyExists,
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}
