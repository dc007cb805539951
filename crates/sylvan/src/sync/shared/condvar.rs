//! [`Condvar`]: wait for a condition under a [`shared::Mutex`](super::Mutex),
//! across OS threads.

use std::fmt;
use std::panic::Location;
use std::sync::PoisonError;
use std::time::Duration;

use super::waiters::Waiters;
use super::{Mutex, MutexGuard};
use crate::cancel::Cancelled;
use crate::runtime::{self, Parked, Unparker};
use crate::sync::{LockError, WaitTimeoutResult};

/// A condition variable shared between OS threads, used with a
/// [`shared::Mutex`](super::Mutex); `Send + Sync`.
///
/// The semantics are the hub-local [`sync::Condvar`](crate::sync::Condvar)'s:
/// `wait` unlocks the mutex, parks the green thread (a plain OS thread
/// blocks, see the [module docs](super)) until a notification, then queues
/// for the mutex again (FIFO) and returns the guard. No spurious wake-ups;
/// waiters are notified oldest first, from any thread.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use sylvan::sync::shared::{Condvar, Mutex};
///
/// let pair = Arc::new((Mutex::new(None), Condvar::new()));
/// let p = pair.clone();
/// let producer = std::thread::spawn(move || {
///     *p.0.lock().unwrap() = Some("ready");
///     p.1.notify_one();
/// });
/// let (slot, cv) = &*pair;
/// let guard = cv.wait_while(slot.lock().unwrap(), |s| s.is_none()).unwrap();
/// assert_eq!(*guard, Some("ready"));
/// producer.join().unwrap();
/// ```
pub struct Condvar {
    waiters: std::sync::Mutex<Waiters<()>>,
}

/// A guard of a `wait_timeout`, or its error.
type TimeoutResult<'a, T> = Result<
    (MutexGuard<'a, T>, WaitTimeoutResult),
    LockError<(MutexGuard<'a, T>, WaitTimeoutResult)>,
>;

impl Condvar {
    /// A condvar nobody waits on; `const`, so it can be a `static`.
    ///
    /// # Examples
    ///
    /// ```
    /// static CV: sylvan::sync::shared::Condvar = sylvan::sync::shared::Condvar::new();
    /// CV.notify_all();
    /// ```
    pub const fn new() -> Condvar {
        Condvar {
            waiters: std::sync::Mutex::new(Waiters::new()),
        }
    }

    fn list(&self) -> std::sync::MutexGuard<'_, Waiters<()>> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Unlocks the guard's mutex, waits for a notification, and locks the
    /// mutex again.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::shared::{Condvar, Mutex};
    ///
    /// let s = Arc::new((Mutex::new(0), Condvar::new()));
    /// let s2 = s.clone();
    /// let t = std::thread::spawn(move || {
    ///     *s2.0.lock().unwrap() = 1;
    ///     s2.1.notify_all();
    /// });
    /// let mut n = s.0.lock().unwrap();
    /// while *n == 0 {
    ///     n = s.1.wait(n).unwrap();
    /// }
    /// drop(n);
    /// t.join().unwrap();
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
    /// [`LockError::Cancelled`] with the mutex **unlocked** and the green
    /// thread no longer a waiter. A notification that had already reached
    /// it (even at the same moment, from another thread) is passed to the
    /// next waiter, so it is not lost; the same when the green thread is
    /// force-unwound while waiting.
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
    /// use std::sync::Arc;
    /// use sylvan::sync::shared::{Condvar, Mutex};
    ///
    /// let s = Arc::new((Mutex::new(false), Condvar::new()));
    /// let s2 = s.clone();
    /// let t = std::thread::spawn(move || {
    ///     *s2.0.lock().unwrap() = true;
    ///     s2.1.notify_one();
    /// });
    /// let ready = s.1.wait_while(s.0.lock().unwrap(), |r| !*r).unwrap();
    /// assert!(*ready);
    /// drop(ready);
    /// t.join().unwrap();
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
    /// after `dur` (on the waiting thread's hub clock); the mutex is locked
    /// again either way.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::sync::shared::{Condvar, Mutex};
    ///
    /// let (m, cv) = (Mutex::new(()), Condvar::new());
    /// let (_g, r) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(2)).unwrap();
    /// assert!(r.timed_out());
    /// ```
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    ///
    /// # Cancellation
    ///
    /// As [`wait`](Self::wait). Its own timeout is not a cancellation: it
    /// returns `Ok` with [`WaitTimeoutResult::timed_out`] (unless a
    /// notification arrived at the same moment: then it counts as
    /// notified). An enclosing [`timeout`](crate::timeout) scope that
    /// passes first is one.
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
    /// use sylvan::sync::shared::{Condvar, Mutex};
    ///
    /// let (m, cv) = (Mutex::new(0), Condvar::new());
    /// let (g, r) = cv
    ///     .wait_timeout_while(m.lock().unwrap(), Duration::from_millis(2), |n| *n == 0)
    ///     .unwrap();
    /// assert!(r.timed_out() && *g == 0);
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

    /// Wakes the oldest waiter, if any (on whichever thread it waits).
    ///
    /// # Examples
    ///
    /// ```
    /// sylvan::sync::shared::Condvar::new().notify_one(); // nobody waits
    /// ```
    pub fn notify_one(&self) {
        let next = self.list().pop();
        if let Some(u) = next {
            u.unpark();
        }
    }

    /// Wakes every waiter; they lock the mutex again one after the other.
    ///
    /// # Examples
    ///
    /// ```
    /// sylvan::sync::shared::Condvar::new().notify_all(); // nobody waits
    /// ```
    pub fn notify_all(&self) {
        let all = self.list().take_all();
        for u in all {
            u.unpark();
        }
    }

    /// Registers as a waiter, unlocks the mutex, parks. Returns whether it
    /// timed out (`until` passed without a notification).
    fn park<T: ?Sized>(
        &self,
        guard: MutexGuard<'_, T>,
        until: Option<u64>,
        loc: &'static Location<'static>,
    ) -> Result<bool, Cancelled> {
        if !runtime::hub_available() {
            return Err(Cancelled::Killed);
        }
        let mut guard = Some(guard);
        let mut waiting = Waiting { cv: self, id: None };
        let mut list = self.list();
        let r = runtime::park_at(loc, until, |token| {
            waiting.id = Some(list.push((), Unparker::new(token)));
            drop(list);
            // Unlocks only once we are registered, so a notification made
            // after the unlock finds us.
            drop(guard.take());
        });
        // Not registered: the wait failed at once; it still unlocks.
        drop(guard);
        match r {
            // Only a notifier that popped our entry wakes us.
            Ok(Parked::Woken) => {
                waiting.id = None;
                Ok(false)
            }
            // Notified at the same moment: count it as notified.
            Ok(Parked::OwnDeadline) => Ok(!waiting.leave()),
            Err(c) => {
                if waiting.leave() {
                    self.notify_one();
                }
                Err(c)
            }
        }
    }

    /// Locks `mutex` again after a wait; if that is cancelled, passes the
    /// notification (if the wait ended with one) on.
    fn relock<'a, T: ?Sized>(
        &self,
        mutex: &'a Mutex<T>,
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

/// A registered waiter; leaves the list (passing on a notification it was
/// sent) if dropped armed, i.e. when force-unwound while parked.
struct Waiting<'a> {
    cv: &'a Condvar,
    id: Option<u64>,
}

impl Waiting<'_> {
    /// Leaves the list; returns `true` if a notifier had taken the entry
    /// (a notification was spent on this waiter).
    fn leave(&mut self) -> bool {
        match self.id.take() {
            Some(id) => !self.cv.list().remove(id),
            None => false,
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.id.is_some() && self.leave() {
            self.cv.notify_one();
        }
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
