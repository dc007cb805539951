//! [`Mutex`]: mutual exclusion for green threads of one hub.

use std::cell::{Cell, RefCell, RefMut};
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::rc::Rc;
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};

use super::LockError;
use super::raw_lock::{Mode, RawLock};

/// A mutual-exclusion lock for green threads of one hub: std's `Mutex`
/// with a waiting [`lock`](Self::lock) that parks the green thread instead
/// of the OS thread.
///
/// A guard may be held across blocking calls ([`sleep`](crate::sleep),
/// socket I/O, other locks): the other green threads of the hub go on
/// running, and those that want the lock wait for it. (A `std` lock or a
/// `RefCell` borrow held across a blocking call would stall or panic
/// instead.) The root context can lock it too; while it waits, it runs the
/// hub.
///
/// **Fair, by hand-off**: waiters get the lock in the order they started
/// waiting. Unlocking with waiters queued does not free the lock: it passes
/// ownership directly to the oldest waiter, so a newcomer never barges in
/// (its `try_lock` fails while anyone waits, and its `lock` queues).
///
/// **Poisoning** works as in std: a guard dropped while its thread panics
/// marks the mutex poisoned, and later `lock`s return the guard inside
/// [`LockError::Poisoned`] (see [`LockError::ignore_poison`]). A green
/// thread force-unwound at [`shutdown`](crate::shutdown) with the guard
/// held poisons it too: its critical section was cut short.
///
/// Share it between green threads with an [`Rc`] (it is `!Send` and
/// `!Sync`; for OS threads use [`shared::Mutex`](super::shared::Mutex)).
/// Locking it without contention touches no hub and costs a few `Cell`
/// operations.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use std::time::Duration;
/// use sylvan::sync::Mutex;
///
/// let log = Rc::new(Mutex::new(Vec::new()));
/// let writers: Vec<_> = (0..3)
///     .map(|i| {
///         let log = log.clone();
///         sylvan::spawn(move || {
///             let mut log = log.lock().unwrap();
///             log.push(i);
///             sylvan::sleep(Duration::from_millis(1)).unwrap(); // still held
///             log.push(i);
///         })
///     })
///     .collect();
/// for w in writers {
///     w.join().unwrap();
/// }
/// assert_eq!(*log.lock().unwrap(), [0, 0, 1, 1, 2, 2]);
/// ```
pub struct Mutex<T: ?Sized> {
    raw: RawLock,
    poisoned: Cell<bool>,
    /// Parked waiters are tokens of this thread's hub.
    _not_send: PhantomData<Rc<()>>,
    data: RefCell<T>,
}

/// Holds a [`Mutex`] locked; unlocks it (handing it to the oldest waiter)
/// when dropped. Derefs to the data.
///
/// # Examples
///
/// ```
/// let m = sylvan::sync::Mutex::new(String::from("a"));
/// let mut guard = m.lock().unwrap();
/// guard.push('b');
/// drop(guard);
/// assert_eq!(*m.lock().unwrap(), "ab");
/// ```
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    /// Whether the thread was panicking when the guard was made (then
    /// dropping it does not poison).
    panicking: bool,
    data: RefMut<'a, T>,
}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = sylvan::sync::Mutex::new(5);
    /// assert_eq!(*m.lock().unwrap(), 5);
    /// ```
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            raw: RawLock::new(),
            poisoned: Cell::new(false),
            _not_send: PhantomData,
            data: RefCell::new(value),
        }
    }

    /// Consumes the mutex and returns its data.
    ///
    /// # Errors
    ///
    /// If it is poisoned, [`PoisonError`] with the data inside.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = sylvan::sync::Mutex::new(vec![1]);
    /// assert_eq!(m.into_inner().unwrap(), [1]);
    /// ```
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.poisoned.get();
        let data = self.data.into_inner();
        if poisoned {
            Err(PoisonError::new(data))
        } else {
            Ok(data)
        }
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, waiting (first come, first served) until it is
    /// handed over.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    ///
    /// let m = Rc::new(sylvan::sync::Mutex::new(0));
    /// let guard = m.lock().unwrap();
    /// let m2 = m.clone();
    /// let g = sylvan::spawn(move || *m2.lock().unwrap() += 1); // waits
    /// sylvan::yield_now();
    /// assert_eq!(*guard, 0);
    /// drop(guard); // handed to the waiter
    /// g.join().unwrap();
    /// assert_eq!(*m.lock().unwrap(), 1);
    /// ```
    ///
    /// # Errors
    ///
    /// [`LockError::Cancelled`] as below; [`LockError::Poisoned`], holding
    /// the guard, if the mutex is poisoned.
    ///
    /// # Cancellation
    ///
    /// If the green thread is killed or its deadline passes while waiting,
    /// returns [`LockError::Cancelled`]: it holds nothing and is no longer
    /// queued, and if the lock became free meanwhile it passes to the next
    /// waiter. Ownership is handed only to a waiter that is still waiting,
    /// and such a waiter always returns it in its `Ok` (if it is killed
    /// after being handed the lock but before it ran, `lock` still returns
    /// the guard; the kill shows at its next blocking call). A waiter
    /// force-unwound at shutdown after the hand-off unlocks on the way
    /// out. So no hand-off is ever lost. A free mutex is taken without
    /// checking for cancellation, as [`Semaphore::acquire`](super::Semaphore::acquire)
    /// does.
    #[track_caller]
    pub fn lock(&self) -> Result<MutexGuard<'_, T>, LockError<MutexGuard<'_, T>>> {
        self.lock_at(Location::caller())
    }

    pub(super) fn lock_at(
        &self,
        location: &'static Location<'static>,
    ) -> Result<MutexGuard<'_, T>, LockError<MutexGuard<'_, T>>> {
        self.raw.acquire(Mode::Exclusive, location)?;
        self.guard().map_err(LockError::Poisoned)
    }

    /// Locks the mutex if it is free and nobody waits for it; never waits.
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`] if it is locked or has waiters;
    /// [`TryLockError::Poisoned`], holding the guard, if it is poisoned.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::TryLockError;
    ///
    /// let m = sylvan::sync::Mutex::new(());
    /// let guard = m.try_lock().unwrap();
    /// assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    /// drop(guard);
    /// assert!(m.try_lock().is_ok());
    /// ```
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        if !self.raw.try_acquire(Mode::Exclusive) {
            return Err(TryLockError::WouldBlock);
        }
        self.guard().map_err(TryLockError::Poisoned)
    }

    /// The guard of the lock the caller just took.
    fn guard(&self) -> LockResult<MutexGuard<'_, T>> {
        let guard = MutexGuard {
            mutex: self,
            panicking: std::thread::panicking(),
            data: self.data.borrow_mut(),
        };
        if self.poisoned.get() {
            Err(PoisonError::new(guard))
        } else {
            Ok(guard)
        }
    }

    /// Whether a guard was dropped while its thread panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!sylvan::sync::Mutex::new(()).is_poisoned());
    /// ```
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.get()
    }

    /// Clears the poisoned state (once the data is known to be consistent
    /// again).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    ///
    /// let m = Rc::new(sylvan::sync::Mutex::new(0));
    /// let m2 = m.clone();
    /// let _ = sylvan::spawn(move || {
    ///     let _g = m2.lock().unwrap();
    ///     panic!();
    /// })
    /// .join();
    /// assert!(m.is_poisoned());
    /// m.clear_poison();
    /// assert!(m.lock().is_ok());
    /// ```
    pub fn clear_poison(&self) {
        self.poisoned.set(false);
    }

    /// The data, through a unique borrow (no locking needed).
    ///
    /// # Errors
    ///
    /// If it is poisoned, [`PoisonError`] with the reference inside.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut m = sylvan::sync::Mutex::new(1);
    /// *m.get_mut().unwrap() += 1;
    /// assert_eq!(*m.lock().unwrap(), 2);
    /// ```
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.poisoned.get();
        let data = self.data.get_mut();
        if poisoned {
            Err(PoisonError::new(data))
        } else {
            Ok(data)
        }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if !self.panicking && std::thread::panicking() {
            self.mutex.poisoned.set(true);
        }
        // Hand-off only wakes the next owner; it runs (and borrows the
        // data) after this guard's `RefMut` is gone.
        self.mutex.raw.release(Mode::Exclusive);
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard locks (for [`Condvar`](super::Condvar)).
    pub(super) fn mutex(&self) -> &'a Mutex<T> {
        self.mutex
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.data
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.data
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Ok(g) => d.field("data", &&*g),
            Err(TryLockError::Poisoned(p)) => d.field("data", &&**p.get_ref()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.poisoned.get());
        d.finish_non_exhaustive()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Self {
        Mutex::new(value)
    }
}
