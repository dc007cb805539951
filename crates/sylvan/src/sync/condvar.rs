//! [`Condvar`]: wait for a condition under a [`Mutex`], for green threads
//! of one hub.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::panic::Location;
use std::rc::Rc;
use std::time::Duration;

use super::{LockError, MutexGuard};
use crate::cancel::Cancelled;
use crate::runtime::{self, Parked, WaitList};

/// A condition variable for green threads of one hub: std's `Condvar`,
/// used with a hub-local [`Mutex`](super::Mutex).
///
/// [`wait`](Self::wait) unlocks the mutex and parks the green thread until
/// [`notify_one`](Self::notify_one) or [`notify_all`](Self::notify_all);
/// then it locks the mutex again, queueing for it in FIFO order behind the
/// green threads already waiting for it, and returns the guard.
///
/// Unlike std's, there are **no spurious wake-ups**: `wait` returns only
/// after a notification (or, for `wait_timeout`, its timeout). The
/// condition may still be false by then (another green thread may have
/// got the mutex first), so check it in a loop, or use
/// [`wait_while`](Self::wait_while). Waiters are notified oldest first.
/// One condvar may be used with several mutexes.
///
/// Share it with an [`Rc`] (`!Send`); between OS threads use
/// [`shared::Condvar`](super::shared::Condvar).
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use sylvan::sync::{Condvar, Mutex};
///
/// let pair = Rc::new((Mutex::new(false), Condvar::new()));
/// let p = pair.clone();
/// let waiter = sylvan::spawn(move || {
///     let (ready, cv) = &*p;
///     let guard = cv.wait_while(ready.lock().unwrap(), |ready| !*ready).unwrap();
///     assert!(*guard);
/// });
/// let (ready, cv) = &*pair;
/// *ready.lock().unwrap() = true;
/// cv.notify_one();
/// waiter.join().unwrap();
/// ```
pub struct Condvar {
    waiters: RefCell<WaitList>,
    _not_send: PhantomData<Rc<()>>,
}

/// Whether a [`Condvar::wait_timeout`] returned because its timeout
/// passed (std's `WaitTimeoutResult`, which cannot be built outside std).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::sync::{Condvar, Mutex};
///
/// sylvan::time::pause();
/// let (m, cv) = (Mutex::new(()), Condvar::new());
/// let (_guard, r) = cv.wait_timeout(m.lock().unwrap(), Duration::from_secs(1)).unwrap();
/// assert!(r.timed_out());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(pub(super) bool);

impl WaitTimeoutResult {
    /// Whether the wait ended because its timeout passed (without a
    /// notification).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// use sylvan::sync::{Condvar, Mutex};
    ///
    /// let s = Rc::new((Mutex::new(()), Condvar::new()));
    /// let s2 = s.clone();
    /// let notifier = sylvan::spawn(move || s2.1.notify_one());
    /// let (_g, r) = s.1.wait_timeout(s.0.lock().unwrap(), Duration::from_secs(60)).unwrap();
    /// assert!(!r.timed_out()); // notified long before
    /// notifier.join().unwrap();
    /// ```
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// A guard of a `wait_timeout`, or its error.
type TimeoutResult<'a, T> = Result<
    (MutexGuard<'a, T>, WaitTimeoutResult),
    LockError<(MutexGuard<'a, T>, WaitTimeoutResult)>,
>;

impl Condvar {
    /// A condvar nobody waits on.
    ///
    /// # Examples
    ///
    /// ```
    /// let cv = sylvan::sync::Condvar::new();
    /// cv.notify_all(); // nobody to wake: a no-op
    /// ```
    pub fn new() -> Condvar {
        Condvar {
            waiters: RefCell::new(WaitList::default()),
            _not_send: PhantomData,
        }
    }

    /// Unlocks the guard's mutex, waits for a notification, and locks the
    /// mutex again.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// use sylvan::sync::{Condvar, Mutex};
    ///
    /// let state = Rc::new((Mutex::new(0), Condvar::new()));
    /// let s = state.clone();
    /// let g = sylvan::spawn(move || {
    ///     let (m, cv) = &*s;
    ///     let mut n = m.lock().unwrap();
    ///     while *n == 0 {
    ///         n = cv.wait(n).unwrap();
    ///     }
    ///     *n
    /// });
    /// sylvan::yield_now();
    /// *state.0.lock().unwrap() = 7;
    /// state.1.notify_one();
    /// assert_eq!(g.join().unwrap(), 7);
    /// ```
    ///
    /// # Errors
    ///
    /// [`LockError::Cancelled`] as below, or [`LockError::Poisoned`] with
    /// the guard inside if the mutex was poisoned when it was locked
    /// again.
    ///
    /// # Cancellation
    ///
    /// If the green thread is killed or its deadline passes while waiting
    /// (for the notification, or for the mutex afterwards), returns
    /// [`LockError::Cancelled`] with the mutex **unlocked** (the guard was
    /// given up) and the green thread no longer a waiter. If it had
    /// already been notified, the notification passes to the next waiter
    /// (if any), so it is not lost with the cancelled one. If the green
    /// thread was already cancelled when it called `wait`, it returns at
    /// once, the mutex unlocked.
    #[track_caller]
    pub fn wait<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
    ) -> Result<MutexGuard<'a, T>, LockError<MutexGuard<'a, T>>> {
        let loc = Location::caller();
        let mutex = guard.mutex();
        self.park(guard, None, loc)?;
        self.relock(mutex, true, loc)
    }

    /// Waits until `condition` returns `false` (checking it first, then
    /// after each notification), and returns the guard with the condition
    /// false.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// use sylvan::sync::{Condvar, Mutex};
    ///
    /// let jobs = Rc::new((Mutex::new(Vec::<u32>::new()), Condvar::new()));
    /// let j = jobs.clone();
    /// let worker = sylvan::spawn(move || {
    ///     let (queue, cv) = &*j;
    ///     let mut q = cv.wait_while(queue.lock().unwrap(), |q| q.is_empty()).unwrap();
    ///     q.pop()
    /// });
    /// jobs.0.lock().unwrap().push(42);
    /// jobs.1.notify_one();
    /// assert_eq!(worker.join().unwrap(), Some(42));
    /// ```
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    ///
    /// # Cancellation
    ///
    /// As [`wait`](Self::wait).
    #[track_caller]
    pub fn wait_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> Result<MutexGuard<'a, T>, LockError<MutexGuard<'a, T>>> {
        let loc = Location::caller();
        while condition(&mut *guard) {
            let mutex = guard.mutex();
            self.park(guard, None, loc)?;
            guard = self.relock(mutex, true, loc)?;
        }
        Ok(guard)
    }

    /// As [`wait`](Self::wait), but gives up waiting for a notification
    /// after `dur` (on the hub's clock, so [virtual
    /// time](crate::time#virtual-time) works); the mutex is locked again
    /// either way.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::sync::{Condvar, Mutex};
    ///
    /// let (m, cv) = (Mutex::new(0), Condvar::new());
    /// let (guard, r) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(5)).unwrap();
    /// assert!(r.timed_out());
    /// assert_eq!(*guard, 0);
    /// ```
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    ///
    /// # Cancellation
    ///
    /// As [`wait`](Self::wait). Its own timeout is not a cancellation: it
    /// returns `Ok` with [`WaitTimeoutResult::timed_out`]. An enclosing
    /// [`timeout`](crate::timeout) scope that passes first is one.
    #[track_caller]
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        dur: Duration,
    ) -> TimeoutResult<'a, T> {
        let loc = Location::caller();
        let until = deadline_after(dur)?;
        let mutex = guard.mutex();
        let timed_out = self.park(guard, Some(until), loc)?;
        let r = WaitTimeoutResult(timed_out);
        match self.relock(mutex, !timed_out, loc) {
            Ok(g) => Ok((g, r)),
            Err(e) => Err(e.map(|g| (g, r))),
        }
    }

    /// Waits until `condition` returns `false` or `dur` has passed,
    /// whichever is first; returns the guard and whether it timed out
    /// (with the condition still true).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::sync::{Condvar, Mutex};
    ///
    /// sylvan::time::pause();
    /// let (m, cv) = (Mutex::new(false), Condvar::new());
    /// let (guard, r) = cv
    ///     .wait_timeout_while(m.lock().unwrap(), Duration::from_secs(2), |ready| !*ready)
    ///     .unwrap();
    /// assert!(r.timed_out() && !*guard);
    /// ```
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    ///
    /// # Cancellation
    ///
    /// As [`wait_timeout`](Self::wait_timeout).
    #[track_caller]
    pub fn wait_timeout_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        dur: Duration,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> TimeoutResult<'a, T> {
        let loc = Location::caller();
        let until = deadline_after(dur)?;
        loop {
            if !condition(&mut *guard) {
                return Ok((guard, WaitTimeoutResult(false)));
            }
            let mutex = guard.mutex();
            let timed_out = self.park(guard, Some(until), loc)?;
            guard = match self.relock(mutex, !timed_out, loc) {
                Ok(g) => g,
                Err(e) => return Err(e.map(|g| (g, WaitTimeoutResult(timed_out)))),
            };
            if timed_out {
                let still = condition(&mut *guard);
                return Ok((guard, WaitTimeoutResult(still)));
            }
        }
    }

    /// Wakes the oldest waiter, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// let cv = sylvan::sync::Condvar::new();
    /// cv.notify_one(); // nobody waits: nothing is remembered
    /// ```
    pub fn notify_one(&self) {
        self.waiters.borrow_mut().wake_one();
    }

    /// Wakes every waiter; they lock the mutex again one after the other,
    /// oldest first.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// use sylvan::sync::{Condvar, Mutex};
    ///
    /// let s = Rc::new((Mutex::new(false), Condvar::new()));
    /// let waiters: Vec<_> = (0..3)
    ///     .map(|_| {
    ///         let s = s.clone();
    ///         sylvan::spawn(move || {
    ///             let (m, cv) = &*s;
    ///             drop(cv.wait_while(m.lock().unwrap(), |go| !*go).unwrap());
    ///         })
    ///     })
    ///     .collect();
    /// sylvan::yield_now();
    /// *s.0.lock().unwrap() = true;
    /// s.1.notify_all();
    /// for w in waiters {
    ///     w.join().unwrap();
    /// }
    /// ```
    pub fn notify_all(&self) {
        self.waiters.borrow_mut().wake_all();
    }

    /// Registers as a waiter, unlocks the mutex, parks. Returns whether it
    /// timed out (`until` passed without a notification).
    fn park<T: ?Sized>(
        &self,
        guard: MutexGuard<'_, T>,
        until: Option<u64>,
        loc: &'static Location<'static>,
    ) -> Result<bool, Cancelled> {
        let mut guard = Some(guard);
        let mut registered = false;
        let r = runtime::park_at(loc, until, |token| {
            self.waiters.borrow_mut().push(token);
            registered = true;
            // Unlocks (handing the mutex on) only once we are registered,
            // so no notification can come in between.
            drop(guard.take());
        });
        // Not registered: the wait failed at once; it still unlocks.
        drop(guard);
        match r {
            Ok(Parked::Woken) => Ok(false),
            Ok(Parked::OwnDeadline) => {
                if registered {
                    self.waiters.borrow_mut().cancelled();
                }
                Ok(true)
            }
            Err(c) => {
                // A notification wakes only a token still parked, so a
                // cancelled waiter was not notified: nothing to pass on.
                if registered {
                    self.waiters.borrow_mut().cancelled();
                }
                Err(c)
            }
        }
    }

    /// Locks `mutex` again after a wait; if that is cancelled, passes the
    /// notification (if the wait ended with one) on.
    fn relock<'a, T: ?Sized>(
        &self,
        mutex: &'a super::Mutex<T>,
        notified: bool,
        loc: &'static Location<'static>,
    ) -> Result<MutexGuard<'a, T>, LockError<MutexGuard<'a, T>>> {
        let r = mutex.lock_at(loc);
        if notified && matches!(r, Err(LockError::Cancelled(_))) {
            self.notify_one();
        }
        r
    }
}

/// The hub-clock deadline `dur` from now.
fn deadline_after(dur: Duration) -> Result<u64, Cancelled> {
    runtime::try_after(dur).ok_or(Cancelled::Killed)
}

impl Default for Condvar {
    fn default() -> Self {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
