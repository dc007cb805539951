//! The errors of [`Sender`](super::Sender) and [`Receiver`](super::Receiver).

use std::error::Error;
use std::fmt;

use crate::cancel::Cancelled;

/// Why [`Sender::send`](super::Sender::send) gave up; holds the value, which was not sent.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::sync::SendError;
///
/// sylvan::time::pause();
/// let (tx, _rx) = sylvan::sync::bounded(1);
/// tx.send(1).unwrap();
/// let mut back = None;
/// let _ = sylvan::timeout(Duration::from_secs(1), || {
///     if let Err(e) = tx.send(2) {
///         assert!(matches!(e, SendError::Cancelled(2, _)));
///         back = Some(e.into_inner());
///     }
/// });
/// assert_eq!(back, Some(2)); // handed back, not lost
/// ```
#[non_exhaustive]
pub enum SendError<T> {
    /// Every receiver is gone.
    Disconnected(T),
    /// The sending green thread was killed or its deadline passed while it
    /// waited.
    Cancelled(T, Cancelled),
}

impl<T> SendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendError::Disconnected(v) | SendError::Cancelled(v, _) => v,
        }
    }

    /// Whether it failed because every receiver is gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SendError::Disconnected(_))
    }

    /// The cancellation, if that is why it failed.
    pub fn cancelled(&self) -> Option<Cancelled> {
        match self {
            SendError::Cancelled(_, c) => Some(*c),
            _ => None,
        }
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Disconnected(_) => f.write_str("Disconnected(..)"),
            SendError::Cancelled(_, c) => write!(f, "Cancelled(.., {c:?})"),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Disconnected(_) => f.write_str("sending on a disconnected channel"),
            SendError::Cancelled(_, c) => write!(f, "send was cancelled: {c}"),
        }
    }
}

impl<T> Error for SendError<T> {}

/// Why [`Sender::try_send`](super::Sender::try_send) did not send; holds the value.
///
/// # Examples
///
/// ```
/// let (tx, _rx) = sylvan::sync::bounded(0);
/// let e = tx.try_send(7).unwrap_err(); // no receiver is waiting
/// assert!(e.is_full());
/// assert_eq!(e.into_inner(), 7);
/// ```
#[non_exhaustive]
pub enum TrySendError<T> {
    /// The channel is full (a rendezvous channel: no receiver is waiting).
    Full(T),
    /// Every receiver is gone.
    Disconnected(T),
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Disconnected(v) => v,
        }
    }

    /// Whether it failed because the channel is full.
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }

    /// Whether it failed because every receiver is gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, TrySendError::Disconnected(_))
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("sending on a full channel"),
            TrySendError::Disconnected(_) => f.write_str("sending on a disconnected channel"),
        }
    }
}

impl<T> Error for TrySendError<T> {}

/// Why [`Receiver::recv`](super::Receiver::recv) returned no value.
///
/// # Examples
///
/// ```
/// use sylvan::sync::RecvError;
///
/// let (tx, rx) = sylvan::sync::channel::<u8>();
/// drop(tx);
/// assert_eq!(rx.recv(), Err(RecvError::Disconnected));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvError {
    /// The channel is empty and every sender is gone.
    Disconnected,
    /// The receiving green thread was killed or its deadline passed while
    /// it waited.
    Cancelled(Cancelled),
}

impl From<Cancelled> for RecvError {
    fn from(c: Cancelled) -> RecvError {
        RecvError::Cancelled(c)
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Disconnected => f.write_str("receiving on an empty, disconnected channel"),
            RecvError::Cancelled(c) => write!(f, "receive was cancelled: {c}"),
        }
    }
}

impl Error for RecvError {}

/// Why [`Receiver::try_recv`](super::Receiver::try_recv) returned no value.
///
/// # Examples
///
/// ```
/// let (_tx, rx) = sylvan::sync::channel::<u8>();
/// assert_eq!(rx.try_recv(), Err(sylvan::sync::TryRecvError::Empty));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TryRecvError {
    /// Nothing to receive right now.
    Empty,
    /// The channel is empty and every sender is gone.
    Disconnected,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Disconnected => {
                f.write_str("receiving on an empty, disconnected channel")
            }
        }
    }
}

impl Error for TryRecvError {}
