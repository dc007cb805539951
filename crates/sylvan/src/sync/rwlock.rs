//! [`RwLock`]: many readers or one writer, for green threads of one hub.

use std::cell::{Cell, Ref, RefCell, RefMut};
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::rc::Rc;
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};

use super::LockError;
use super::raw_lock::{Mode, RawLock};

/// A reader-writer lock for green threads of one hub: std's `RwLock` with
/// waiting calls that park the green thread instead of the OS thread.
///
/// Any number of read guards, or one write guard, at a time; guards may
/// be held across blocking calls.
///
/// # Policy: FIFO, so writers are never starved
///
/// Readers and writers wait in **one queue, in arrival order**. A newcomer
/// — reader or writer — gets the lock at once only if nobody is queued and
/// the lock is compatible (free, or read-held for a reader). So a reader
/// arriving while a writer waits queues behind that writer even though
/// other readers hold the lock: a steady stream of readers cannot starve
/// a writer (the *writer-preferring* part), and a writer cannot starve the
/// readers queued before it either (the *fair* part). When the lock is
/// released it is handed on directly: to the writer at the head of the
/// queue, or to the readers at the head (all of them up to the next
/// queued writer), so a newcomer never barges in.
///
/// **Poisoning** as in std: a *write* guard dropped while its thread
/// panics poisons the lock; read guards never do.
///
/// Share it with an [`Rc`] (`!Send`, `!Sync`); between OS threads use
/// [`shared::RwLock`](super::shared::RwLock).
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use sylvan::sync::RwLock;
///
/// let config = Rc::new(RwLock::new(String::from("v1")));
/// let r1 = config.read().unwrap();
/// let r2 = config.read().unwrap(); // readers share
/// assert_eq!(*r1, *r2);
/// let c = config.clone();
/// let writer = sylvan::spawn(move || *c.write().unwrap() = "v2".into());
/// sylvan::yield_now(); // the writer waits for both readers
/// assert!(config.try_read().is_err()); // and newcomers queue behind it
/// drop((r1, r2));
/// writer.join().unwrap();
/// assert_eq!(*config.read().unwrap(), "v2");
/// ```
pub struct RwLock<T: ?Sized> {
    raw: RawLock,
    poisoned: Cell<bool>,
    _not_send: PhantomData<Rc<()>>,
    data: RefCell<T>,
}

/// Shared read access to an [`RwLock`]; releases it when dropped.
///
/// # Examples
///
/// ```
/// let l = sylvan::sync::RwLock::new(3);
/// let g = l.read().unwrap();
/// assert_eq!(*g + 1, 4);
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    data: Ref<'a, T>,
}

/// Exclusive write access to an [`RwLock`]; releases it (handing it on)
/// when dropped.
///
/// # Examples
///
/// ```
/// let l = sylvan::sync::RwLock::new(3);
/// *l.write().unwrap() += 1;
/// assert_eq!(*l.read().unwrap(), 4);
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    panicking: bool,
    data: RefMut<'a, T>,
}

impl<T> RwLock<T> {
    /// An unlocked lock holding `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::sync::RwLock::new(0u8);
    /// assert_eq!(*l.read().unwrap(), 0);
    /// ```
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            raw: RawLock::new(),
            poisoned: Cell::new(false),
            _not_send: PhantomData,
            data: RefCell::new(value),
        }
    }

    /// Consumes the lock and returns its data.
    ///
    /// # Errors
    ///
    /// If it is poisoned, [`PoisonError`] with the data inside.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan::sync::RwLock::new(2).into_inner().unwrap(), 2);
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

impl<T: ?Sized> RwLock<T> {
    /// Takes shared read access, waiting (in the one FIFO queue, see the
    /// [policy](RwLock#policy-fifo-so-writers-are-never-starved)) while a
    /// writer holds the lock or anyone is queued.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::sync::RwLock::new(vec![1, 2]);
    /// assert_eq!(l.read().unwrap().len(), 2);
    /// ```
    ///
    /// # Errors
    ///
    /// [`LockError::Cancelled`] as below; [`LockError::Poisoned`], holding
    /// the guard, if the lock is poisoned.
    ///
    /// # Cancellation
    ///
    /// If the green thread is killed or its deadline passes while waiting,
    /// returns [`LockError::Cancelled`]: it holds nothing and has left the
    /// queue, and readers queued behind it are let in if they now can.
    /// Access handed to a waiter that is still waiting is always returned
    /// in its `Ok` (even if it is killed before it runs; the kill shows at
    /// its next blocking call), and a waiter force-unwound at shutdown
    /// after the hand-off releases it on the way out: no hand-off is lost.
    #[track_caller]
    pub fn read(&self) -> Result<RwLockReadGuard<'_, T>, LockError<RwLockReadGuard<'_, T>>> {
        self.raw.acquire(Mode::Shared, Location::caller())?;
        self.read_guard().map_err(LockError::Poisoned)
    }

    /// Takes exclusive write access, waiting (first come, first served)
    /// until it is handed over.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::sync::RwLock::new(1);
    /// *l.write().unwrap() *= 10;
    /// assert_eq!(*l.read().unwrap(), 10);
    /// ```
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    ///
    /// # Cancellation
    ///
    /// As [`read`](Self::read).
    #[track_caller]
    pub fn write(&self) -> Result<RwLockWriteGuard<'_, T>, LockError<RwLockWriteGuard<'_, T>>> {
        self.raw.acquire(Mode::Exclusive, Location::caller())?;
        self.write_guard().map_err(LockError::Poisoned)
    }

    /// Takes read access if no writer holds the lock and nobody is
    /// queued; never waits.
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`], or [`TryLockError::Poisoned`] with
    /// the guard inside.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::sync::RwLock::new(());
    /// let _r = l.try_read().unwrap();
    /// assert!(l.try_read().is_ok());
    /// assert!(l.try_write().is_err());
    /// ```
    pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        if !self.raw.try_acquire(Mode::Shared) {
            return Err(TryLockError::WouldBlock);
        }
        self.read_guard().map_err(TryLockError::Poisoned)
    }

    /// Takes write access if the lock is free and nobody is queued; never
    /// waits.
    ///
    /// # Errors
    ///
    /// As [`try_read`](Self::try_read).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::sync::RwLock::new(());
    /// let w = l.try_write().unwrap();
    /// assert!(l.try_read().is_err());
    /// drop(w);
    /// assert!(l.try_write().is_ok());
    /// ```
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        if !self.raw.try_acquire(Mode::Exclusive) {
            return Err(TryLockError::WouldBlock);
        }
        self.write_guard().map_err(TryLockError::Poisoned)
    }

    fn read_guard(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        let guard = RwLockReadGuard {
            lock: self,
            data: self.data.borrow(),
        };
        if self.poisoned.get() {
            Err(PoisonError::new(guard))
        } else {
            Ok(guard)
        }
    }

    fn write_guard(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        let guard = RwLockWriteGuard {
            lock: self,
            panicking: std::thread::panicking(),
            data: self.data.borrow_mut(),
        };
        if self.poisoned.get() {
            Err(PoisonError::new(guard))
        } else {
            Ok(guard)
        }
    }

    /// Whether a write guard was dropped while its thread panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!sylvan::sync::RwLock::new(()).is_poisoned());
    /// ```
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.get()
    }

    /// Clears the poisoned state.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::sync::RwLock::new(());
    /// l.clear_poison();
    /// assert!(!l.is_poisoned());
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
    /// let mut l = sylvan::sync::RwLock::new(1);
    /// *l.get_mut().unwrap() = 2;
    /// assert_eq!(*l.read().unwrap(), 2);
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

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.raw.release(Mode::Shared);
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        if !self.panicking && std::thread::panicking() {
            self.lock.poisoned.set(true);
        }
        self.lock.raw.release(Mode::Exclusive);
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.data
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.data
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.data
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Ok(g) => d.field("data", &&*g),
            Err(TryLockError::Poisoned(p)) => d.field("data", &&**p.get_ref()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.poisoned.get());
        d.finish_non_exhaustive()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> Self {
        RwLock::new(value)
    }
}
