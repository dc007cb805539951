//! [`RwLock`]: many readers or one writer across OS threads, with green
//! waiting. The whole state lives under one `std` mutex (readers, writer,
//! the FIFO queue); the policy is the hub-local [`RwLock`](crate::sync::RwLock)'s.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};

use super::waiters::Waiters;
use crate::cancel::Cancelled;
use crate::runtime::{self, Unparker};
use crate::runtime::{SharedCell, SharedMut, SharedRef};
use crate::sync::LockError;
use crate::sync::raw_lock::Mode;

/// A reader-writer lock shared between OS threads; waiting parks only the
/// calling green thread (a plain OS thread blocks, see the [module
/// docs](super)).
///
/// `Send` when `T: Send`, `Sync` when `T: Send + Sync`. Same policy as the
/// hub-local [`sync::RwLock`](crate::sync::RwLock): readers and writers
/// wait in one FIFO queue, a newcomer gets in only if nobody is queued (so
/// readers never starve a writer), and releasing hands the lock directly
/// to the writer, or all the readers, at the head of the queue. Poisoning
/// as std (by write guards).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use sylvan::sync::shared::RwLock;
///
/// let table = Arc::new(RwLock::new(vec![1, 2, 3]));
/// let readers: Vec<_> = (0..3)
///     .map(|_| {
///         let t = table.clone();
///         std::thread::spawn(move || t.read().unwrap().iter().sum::<i32>())
///     })
///     .collect();
/// table.write().unwrap().push(4);
/// for r in readers {
///     let sum = r.join().unwrap();
///     assert!(sum == 6 || sum == 10);
/// }
/// ```
pub struct RwLock<T: ?Sized> {
    state: std::sync::Mutex<State>,
    poisoned: AtomicBool,
    data: SharedCell<T>,
}

struct State {
    readers: usize,
    writer: bool,
    waiters: Waiters<Mode>,
}

// `Sync` when `T: Send + Sync`, through `SharedCell`: the data is
// reached only through guards, which hold the cell's borrows.

/// The lock protocol made a write guard beside another guard: a bug here.
const BROKEN: &str =
    "sylvan::sync::shared::RwLock: a write guard beside another guard (a bug in sylvan)";

/// Shared read access to a [`shared::RwLock`](RwLock); releases it when
/// dropped. `!Send`.
///
/// # Examples
///
/// ```
/// let l = sylvan::sync::shared::RwLock::new(1);
/// assert_eq!(*l.read().unwrap(), 1);
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    /// A shared borrow of the data; `None` only inside `drop`.
    data: Option<SharedRef<'a, T>>,
    _marker: PhantomData<(&'a T, std::sync::MutexGuard<'static, ()>)>,
}

/// Exclusive write access to a [`shared::RwLock`](RwLock); releases it
/// (handing it on) when dropped. `!Send`.
///
/// # Examples
///
/// ```
/// let l = sylvan::sync::shared::RwLock::new(1);
/// *l.write().unwrap() += 1;
/// assert_eq!(*l.read().unwrap(), 2);
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    /// The data's unique borrow; `None` only inside `drop`.
    data: Option<SharedMut<'a, T>>,
    panicking: bool,
    _marker: PhantomData<(&'a mut T, std::sync::MutexGuard<'static, ()>)>,
}

impl<T> RwLock<T> {
    /// An unlocked lock holding `value`; `const`, so it can be a `static`.
    ///
    /// # Examples
    ///
    /// ```
    /// static CONFIG: sylvan::sync::shared::RwLock<u32> = sylvan::sync::shared::RwLock::new(7);
    /// assert_eq!(*CONFIG.read().unwrap(), 7);
    /// ```
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            state: std::sync::Mutex::new(State {
                readers: 0,
                writer: false,
                waiters: Waiters::new(),
            }),
            poisoned: AtomicBool::new(false),
            data: SharedCell::new(value),
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
    /// assert_eq!(sylvan::sync::shared::RwLock::new(1).into_inner().unwrap(), 1);
    /// ```
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.poisoned.load(Ordering::Relaxed);
        let data = self.data.into_inner();
        if poisoned {
            Err(PoisonError::new(data))
        } else {
            Ok(data)
        }
    }
}

impl State {
    /// Whether a newcomer wanting `mode` may take the lock now.
    fn admits(&mut self, mode: Mode) -> bool {
        if self.waiters.front().is_some() {
            return false;
        }
        self.compatible(mode)
    }

    fn compatible(&self, mode: Mode) -> bool {
        match mode {
            Mode::Shared => !self.writer,
            Mode::Exclusive => !self.writer && self.readers == 0,
        }
    }

    fn take(&mut self, mode: Mode) {
        match mode {
            Mode::Shared => self.readers += 1,
            Mode::Exclusive => self.writer = true,
        }
    }

    fn give_back(&mut self, mode: Mode) {
        match mode {
            Mode::Shared => self.readers -= 1,
            Mode::Exclusive => self.writer = false,
        }
    }

    /// Grants the lock to the waiters at the head that it can be granted
    /// to; returns them, to be woken after the `std` mutex is released.
    fn dispatch(&mut self) -> Vec<Unparker> {
        let mut wake = Vec::new();
        while let Some(mode) = self.waiters.front() {
            if !self.compatible(mode) {
                break;
            }
            self.take(mode);
            wake.extend(self.waiters.pop());
            if mode == Mode::Exclusive {
                break;
            }
        }
        wake
    }
}

impl<T: ?Sized> RwLock<T> {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // No user code runs under it; never let a poisoned one wedge us.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes shared read access, waiting in the one FIFO queue while a
    /// writer holds the lock or anyone is queued.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::sync::shared::RwLock::new("x");
    /// let (a, b) = (l.read().unwrap(), l.read().unwrap());
    /// assert_eq!(*a, *b);
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
    /// queue (letting in the waiters behind it if they now can). If the
    /// lock was handed to it at the same moment, it returns the guard
    /// instead (the cancellation shows at the next blocking call); if it is
    /// force-unwound after the hand-off, it releases the lock on the way
    /// out. So no hand-off is lost.
    #[track_caller]
    pub fn read(&self) -> Result<RwLockReadGuard<'_, T>, LockError<RwLockReadGuard<'_, T>>> {
        self.acquire(Mode::Shared, Location::caller())?;
        self.read_guard().map_err(LockError::Poisoned)
    }

    /// Takes exclusive write access, waiting (first come, first served)
    /// until it is handed over.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::sync::shared::RwLock::new(0);
    /// *l.write().unwrap() = 9;
    /// assert_eq!(*l.read().unwrap(), 9);
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
        self.acquire(Mode::Exclusive, Location::caller())?;
        self.write_guard().map_err(LockError::Poisoned)
    }

    /// Takes read access if no writer holds the lock and nobody is queued;
    /// never waits.
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`], or [`TryLockError::Poisoned`] with
    /// the guard inside.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::sync::shared::RwLock::new(());
    /// let _w = l.write().unwrap();
    /// assert!(l.try_read().is_err());
    /// ```
    pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        if !self.try_acquire(Mode::Shared) {
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
    /// let l = sylvan::sync::shared::RwLock::new(());
    /// let _r = l.read().unwrap();
    /// assert!(l.try_write().is_err());
    /// ```
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        if !self.try_acquire(Mode::Exclusive) {
            return Err(TryLockError::WouldBlock);
        }
        self.write_guard().map_err(TryLockError::Poisoned)
    }

    fn try_acquire(&self, mode: Mode) -> bool {
        let mut st = self.state();
        let ok = st.admits(mode);
        if ok {
            st.take(mode);
        }
        ok
    }

    fn acquire(&self, mode: Mode, location: &'static Location<'static>) -> Result<(), Cancelled> {
        let mut st = self.state();
        if st.admits(mode) {
            st.take(mode);
            return Ok(());
        }
        runtime::check_cancelled()?;
        if !runtime::hub_available() {
            return Err(Cancelled::Killed);
        }
        let mut waiting = Waiting {
            lock: self,
            mode,
            id: None,
        };
        let r = runtime::park_at(location, None, |token| {
            waiting.id = Some(st.waiters.push(mode, Unparker::new(token)));
            drop(st);
        });
        match r {
            // Only a releaser that popped our entry wakes us, after
            // granting us the lock under the `std` mutex.
            Ok(_) => {
                waiting.id = None;
                Ok(())
            }
            Err(c) => {
                if waiting.leave() {
                    runtime::retract(c);
                    Ok(())
                } else {
                    Err(c)
                }
            }
        }
    }

    fn release(&self, mode: Mode) {
        let mut st = self.state();
        st.give_back(mode);
        let wake = st.dispatch();
        drop(st);
        for u in wake {
            u.unpark();
        }
    }

    fn read_guard(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        let guard = RwLockReadGuard {
            lock: self,
            data: Some(self.data.try_borrow().expect(BROKEN)),
            _marker: PhantomData,
        };
        if self.poisoned.load(Ordering::Relaxed) {
            Err(PoisonError::new(guard))
        } else {
            Ok(guard)
        }
    }

    fn write_guard(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        let guard = RwLockWriteGuard {
            lock: self,
            data: Some(self.data.try_borrow_mut().expect(BROKEN)),
            panicking: std::thread::panicking(),
            _marker: PhantomData,
        };
        if self.poisoned.load(Ordering::Relaxed) {
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
    /// assert!(!sylvan::sync::shared::RwLock::new(()).is_poisoned());
    /// ```
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Relaxed)
    }

    /// Clears the poisoned state.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::sync::shared::RwLock::new(());
    /// l.clear_poison();
    /// assert!(!l.is_poisoned());
    /// ```
    pub fn clear_poison(&self) {
        self.poisoned.store(false, Ordering::Relaxed);
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
    /// let mut l = sylvan::sync::shared::RwLock::new(1);
    /// *l.get_mut().unwrap() = 3;
    /// assert_eq!(*l.read().unwrap(), 3);
    /// ```
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.poisoned.load(Ordering::Relaxed);
        let data = self.data.get_mut();
        if poisoned {
            Err(PoisonError::new(data))
        } else {
            Ok(data)
        }
    }
}

/// A registered waiter; leaves the queue (or releases what it was handed)
/// if dropped armed, i.e. when force-unwound while parked.
struct Waiting<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    mode: Mode,
    id: Option<u64>,
}

impl<T: ?Sized> Waiting<'_, T> {
    /// Leaves the queue; returns `true` if the lock had been handed to it
    /// already (it owns it now).
    fn leave(&mut self) -> bool {
        let Some(id) = self.id.take() else {
            return false;
        };
        let mut st = self.lock.state();
        if !st.waiters.remove(id) {
            return true;
        }
        // Waiters behind us may be admitted now (readers behind a writer
        // that gave up, while readers hold the lock).
        let wake = st.dispatch();
        drop(st);
        for u in wake {
            u.unpark();
        }
        false
    }
}

impl<T: ?Sized> Drop for Waiting<'_, T> {
    fn drop(&mut self) {
        if self.id.is_some() && self.leave() {
            self.lock.release(self.mode);
        }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.data = None;
        self.lock.release(Mode::Shared);
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        if !self.panicking && std::thread::panicking() {
            self.lock.poisoned.store(true, Ordering::Relaxed);
        }
        self.data = None;
        self.lock.release(Mode::Exclusive);
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.data.as_deref().expect(BROKEN)
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.data.as_deref().expect(BROKEN)
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.data.as_deref_mut().expect(BROKEN)
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
        d.field("poisoned", &self.is_poisoned());
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
