//! [`LockError`]: why a blocking lock call of a [`Mutex`](super::Mutex),
//! [`RwLock`](super::RwLock) or [`Condvar`](super::Condvar) (hub-local or
//! [`shared`](super::shared)) did not return a clean guard.

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::PoisonError;

use crate::cancel::Cancelled;

/// The error of a blocking lock call: the wait was cancelled, or the lock
/// was poisoned.
///
/// `Poisoned` holds the guard, exactly as std's [`PoisonError`] does: the
/// lock *was* acquired, and [`PoisonError::into_inner`] (or
/// [`ignore_poison`](Self::ignore_poison)) gets it. `Cancelled` holds no
/// guard: the lock was not acquired.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use sylvan::sync::{LockError, Mutex};
///
/// let m = Rc::new(Mutex::new(0));
/// let m2 = m.clone();
/// let g = sylvan::spawn(move || {
///     let _guard = m2.lock().unwrap();
///     panic!("poisons the mutex");
/// });
/// assert!(g.join().is_err());
/// assert!(m.is_poisoned());
/// match m.lock() {
///     Err(LockError::Poisoned(p)) => assert_eq!(*p.into_inner(), 0),
///     _ => unreachable!(),
/// }
/// // Or: treat a poisoned lock as a good one, keep cancellation an error.
/// let guard = m.lock().or_else(LockError::ignore_poison).unwrap();
/// assert_eq!(*guard, 0);
/// ```
#[non_exhaustive]
pub enum LockError<G> {
    /// The green thread was killed, or its `timeout`/`deadline` scope
    /// passed, while it waited; it holds nothing.
    Cancelled(Cancelled),
    /// The lock was acquired, but a guard of it was dropped while its
    /// thread panicked; the guard is inside.
    Poisoned(PoisonError<G>),
}

impl<G> LockError<G> {
    /// The cancellation, if this is one.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::sync::LockError;
    ///
    /// let e = LockError::<()>::from(sylvan::Cancelled::Killed);
    /// assert_eq!(e.cancelled(), Some(sylvan::Cancelled::Killed));
    /// ```
    pub fn cancelled(&self) -> Option<Cancelled> {
        match self {
            LockError::Cancelled(c) => Some(*c),
            LockError::Poisoned(_) => None,
        }
    }

    /// Whether this is a poisoned lock (with its guard inside).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::sync::LockError;
    ///
    /// assert!(!LockError::<()>::from(sylvan::Cancelled::Killed).is_poisoned());
    /// ```
    pub fn is_poisoned(&self) -> bool {
        matches!(self, LockError::Poisoned(_))
    }

    /// Takes the guard out of a `Poisoned` error, ignoring the poisoning
    /// (as [`PoisonError::into_inner`] does); a cancellation stays an
    /// error. Made for `lock().or_else(LockError::ignore_poison)?`.
    ///
    /// # Errors
    ///
    /// The [`Cancelled`] of a cancelled wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::PoisonError;
    /// use sylvan::sync::LockError;
    ///
    /// let e = LockError::Poisoned(PoisonError::new(7));
    /// assert_eq!(e.ignore_poison(), Ok(7));
    /// let e = LockError::<u8>::Cancelled(sylvan::Cancelled::Killed);
    /// assert_eq!(e.ignore_poison(), Err(sylvan::Cancelled::Killed));
    /// ```
    pub fn ignore_poison(self) -> Result<G, Cancelled> {
        match self {
            LockError::Cancelled(c) => Err(c),
            LockError::Poisoned(p) => Ok(p.into_inner()),
        }
    }

    /// Applies `f` to the guard of a `Poisoned` error.
    pub(crate) fn map<H>(self, f: impl FnOnce(G) -> H) -> LockError<H> {
        match self {
            LockError::Cancelled(c) => LockError::Cancelled(c),
            LockError::Poisoned(p) => LockError::Poisoned(PoisonError::new(f(p.into_inner()))),
        }
    }
}

impl<G> From<Cancelled> for LockError<G> {
    fn from(c: Cancelled) -> Self {
        LockError::Cancelled(c)
    }
}

impl<G> From<PoisonError<G>> for LockError<G> {
    fn from(p: PoisonError<G>) -> Self {
        LockError::Poisoned(p)
    }
}

/// `Cancelled` becomes its own `io::Error` (kind `TimedOut` or `Other`);
/// a poisoned lock becomes an `io::Error` of kind `Other` (the guard is
/// dropped).
impl<G> From<LockError<G>> for io::Error {
    fn from(e: LockError<G>) -> io::Error {
        match e {
            LockError::Cancelled(c) => c.into(),
            LockError::Poisoned(_) => io::Error::other("poisoned lock: another task failed inside"),
        }
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Cancelled(c) => f.debug_tuple("Cancelled").field(c).finish(),
            LockError::Poisoned(p) => f.debug_tuple("Poisoned").field(p).finish(),
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Cancelled(c) => write!(f, "lock wait was cancelled: {c}"),
            LockError::Poisoned(p) => p.fmt(f),
        }
    }
}

impl<G> Error for LockError<G> {}
