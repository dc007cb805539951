//! [`Mutex`]: mutual exclusion across OS threads, with green waiting.
//!
//! The lock word holds two bits. `LOCKED`: somebody owns the mutex.
//! `QUEUED`: the waiter list may be non-empty, so locking and unlocking
//! must go through the list's `std` mutex. Without `QUEUED` both are one
//! compare-and-swap (0 ⇄ `LOCKED`). `QUEUED` changes only under the list's
//! mutex, and only while `LOCKED` is set, which gives the invariants
//! (outside the list's mutex):
//!
//! - `QUEUED` ⇒ `LOCKED`: unlocking with `QUEUED` hands ownership to the
//!   oldest waiter (leaving `LOCKED` set), or clears both if none is left;
//! - a non-empty list ⇒ `QUEUED`, so a newcomer never barges in: its
//!   compare-and-swap fails and it queues.
//!
//! The unlocker pops the waiter under the list's mutex, hands the mutex on
//! (a third bit, `HANDED`) and wakes the waiter after releasing the list;
//! the waiter claims it. The lock word and the data live in a
//! `runtime::lock_cell::ExclusiveCell`, which hands out the borrow of the
//! data that a guard holds only to whoever sets `LOCKED` or claims
//! `HANDED`: this module has no `unsafe`, and a mistake in its protocol
//! could only fail a claim (a panic), never make two owners. A waiter whose
//! park fails (killed, deadline) removes itself under the list's mutex: if
//! it was already popped, ownership is its own and it keeps it (or, when
//! force-unwound, unlocks on the way out).

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};

use super::waiters::Waiters;
use crate::cancel::Cancelled;
use crate::runtime::{self, Unparker};
use crate::runtime::{ExclusiveCell, ExclusiveRef};
use crate::sync::LockError;

/// A waiter woken as the new owner found nothing handed to it: a bug in
/// this module's protocol (the cell refuses rather than making two owners).
const BROKEN: &str =
    "sylvan::sync::shared::Mutex: woken as owner without a hand-off (a bug in sylvan)";

/// A mutual-exclusion lock shared between OS threads, whose waiting
/// [`lock`](Self::lock) parks only the calling green thread (its hub goes
/// on running the others) and blocks a plain OS thread.
///
/// `Send + Sync` when `T: Send`; put it in an `Arc` or a `static`. The
/// semantics are those of the hub-local [`sync::Mutex`](crate::sync::Mutex):
/// FIFO hand-off (the oldest waiter gets the lock, from whichever thread;
/// a newcomer's `try_lock` fails while anyone waits), std's poisoning, and
/// cancellation by [`LockError::Cancelled`]. See the [module
/// docs](super) for how plain threads wait.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use sylvan::sync::shared::Mutex;
///
/// let counter = Arc::new(Mutex::new(0u64));
/// let threads: Vec<_> = (0..4)
///     .map(|_| {
///         let counter = counter.clone();
///         std::thread::spawn(move || {
///             for _ in 0..1000 {
///                 *counter.lock().unwrap() += 1;
///             }
///         })
///     })
///     .collect();
/// for t in threads {
///     t.join().unwrap();
/// }
/// assert_eq!(*counter.lock().unwrap(), 4000);
/// ```
pub struct Mutex<T: ?Sized> {
    poisoned: AtomicBool,
    waiters: std::sync::Mutex<Waiters<()>>,
    data: ExclusiveCell<T>,
}

// `Sync` when `T: Send`, through `ExclusiveCell`: the data is reached
// only through a `MutexGuard`, which holds the cell's one borrow.

/// Holds a [`shared::Mutex`](Mutex) locked; unlocks it (handing it to the
/// oldest waiter) when dropped. `!Send`, as std's guard.
///
/// # Examples
///
/// ```
/// let m = sylvan::sync::shared::Mutex::new(vec![1]);
/// m.lock().unwrap().push(2);
/// assert_eq!(*m.lock().unwrap(), [1, 2]);
/// ```
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    /// The data's one borrow, which is the ownership of the lock; `None`
    /// only inside `drop`, which unlocks with it.
    data: Option<ExclusiveRef<'a, T>>,
    panicking: bool,
    /// `!Send` (it stays on its thread, as std's does), and `Sync` only
    /// when `T: Sync`.
    _marker: PhantomData<(&'a mut T, std::sync::MutexGuard<'static, ()>)>,
}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`. `const`, so it can be a `static`.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::sync::shared::Mutex;
    ///
    /// static HITS: Mutex<u32> = Mutex::new(0);
    /// *HITS.lock().unwrap() += 1;
    /// assert_eq!(*HITS.lock().unwrap(), 1);
    /// ```
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            poisoned: AtomicBool::new(false),
            waiters: std::sync::Mutex::new(Waiters::new()),
            data: ExclusiveCell::new(value),
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
    /// let m = sylvan::sync::shared::Mutex::new(3);
    /// assert_eq!(m.into_inner().unwrap(), 3);
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

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, waiting (first come, first served, across all
    /// threads) until it is handed over.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::shared::Mutex;
    ///
    /// let m = Arc::new(Mutex::new(0));
    /// let guard = m.lock().unwrap();
    /// let m2 = m.clone();
    /// let t = std::thread::spawn(move || *m2.lock().unwrap() += 1); // waits
    /// assert_eq!(*guard, 0);
    /// drop(guard); // handed to the other thread if it waits by now
    /// t.join().unwrap();
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
    /// If the green thread (or the root context of a plain thread) is
    /// killed or its deadline passes while waiting, returns
    /// [`LockError::Cancelled`]: it holds nothing and has left the queue.
    /// If the unlocking thread handed it the mutex at the same moment, the
    /// lock succeeded: it returns the guard (the cancellation shows at the
    /// next blocking call), so the hand-off is not lost; a waiter
    /// force-unwound at its hub's shutdown after the hand-off unlocks on
    /// the way out. A free mutex is taken without checking for
    /// cancellation; a cancelled caller fails at once only if it would
    /// have to wait.
    #[track_caller]
    pub fn lock(&self) -> Result<MutexGuard<'_, T>, LockError<MutexGuard<'_, T>>> {
        self.lock_at(Location::caller())
    }

    pub(super) fn lock_at(
        &self,
        location: &'static Location<'static>,
    ) -> Result<MutexGuard<'_, T>, LockError<MutexGuard<'_, T>>> {
        let owned = match self.data.try_lock() {
            Some(r) => r,
            None => self.lock_slow(location)?,
        };
        self.guard(owned).map_err(LockError::Poisoned)
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
    /// let m = sylvan::sync::shared::Mutex::new(());
    /// let g = m.try_lock().unwrap();
    /// assert!(m.try_lock().is_err());
    /// drop(g);
    /// assert!(m.try_lock().is_ok());
    /// ```
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        let Some(owned) = self.data.try_lock() else {
            return Err(TryLockError::WouldBlock);
        };
        self.guard(owned).map_err(TryLockError::Poisoned)
    }

    fn guard<'a>(&'a self, owned: ExclusiveRef<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        let guard = MutexGuard {
            mutex: self,
            data: Some(owned),
            panicking: std::thread::panicking(),
            _marker: PhantomData,
        };
        if self.poisoned.load(Ordering::Relaxed) {
            Err(PoisonError::new(guard))
        } else {
            Ok(guard)
        }
    }

    fn list(&self) -> std::sync::MutexGuard<'_, Waiters<()>> {
        // No user code runs under it; never let a poisoned one wedge us.
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cold]
    fn lock_slow(
        &self,
        location: &'static Location<'static>,
    ) -> Result<ExclusiveRef<'_, T>, Cancelled> {
        let mut list = self.list();
        loop {
            if self.data.state() == 0 {
                // Free, and (by the invariants) nobody queued.
                if let Some(r) = self.data.try_lock() {
                    return Ok(r);
                }
                continue;
            }
            runtime::check_cancelled()?;
            // The owner may unlock (fast) in between: then retry.
            if self.data.try_queue() {
                break;
            }
        }
        if !runtime::hub_available() {
            self.unqueue_if_empty(&list);
            return Err(Cancelled::Killed);
        }
        let mut waiting = Waiting {
            mutex: self,
            id: None,
        };
        let r = runtime::park_at(location, None, |token| {
            waiting.id = Some(list.push((), Unparker::new(token)));
            drop(list);
        });
        match r {
            // Only the unlocker that popped our entry wakes us, and it
            // handed the mutex on first: we claim it. (Its writes happen
            // before ours: the hand-off is a `Release` store, the claim an
            // `Acquire` read-modify-write.)
            Ok(_) => {
                waiting.id = None;
                Ok(self.data.claim_handed().expect(BROKEN))
            }
            Err(c) => match waiting.leave() {
                Left::Gone => Err(c),
                Left::Owner(r) => {
                    runtime::retract(c);
                    Ok(r)
                }
            },
        }
    }

    /// Clears `QUEUED` if nobody is queued (under the list's mutex).
    fn unqueue_if_empty(&self, list: &Waiters<()>) {
        if list.is_empty() {
            self.data.clear_queued();
        }
    }

    #[inline]
    fn unlock(&self, owned: ExclusiveRef<'_, T>) {
        if let Err(owned) = owned.try_unlock() {
            self.unlock_slow(owned);
        }
    }

    /// Hands ownership to the oldest waiter, or frees the mutex.
    #[cold]
    fn unlock_slow(&self, owned: ExclusiveRef<'_, T>) {
        let mut list = self.list();
        match list.pop() {
            Some(next) => {
                owned.hand_off(!list.is_empty());
                drop(list);
                next.unpark();
            }
            // Dropping the borrow frees the mutex (the lock word becomes 0).
            None => drop(owned),
        }
    }

    /// Whether a guard was dropped while its thread panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!sylvan::sync::shared::Mutex::new(()).is_poisoned());
    /// ```
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Relaxed)
    }

    /// Clears the poisoned state.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let m = Arc::new(sylvan::sync::shared::Mutex::new(0));
    /// let m2 = m.clone();
    /// let _ = std::thread::spawn(move || {
    ///     let _g = m2.lock().unwrap();
    ///     panic!("poison it");
    /// })
    /// .join();
    /// assert!(m.is_poisoned());
    /// m.clear_poison();
    /// assert!(m.lock().is_ok());
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
    /// let mut m = sylvan::sync::shared::Mutex::new(1);
    /// *m.get_mut().unwrap() = 5;
    /// assert_eq!(*m.lock().unwrap(), 5);
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

enum Left<'a, T: ?Sized> {
    /// It left the queue; it owns nothing.
    Gone,
    /// The unlocker popped it first: it owns the mutex.
    Owner(ExclusiveRef<'a, T>),
}

/// A registered waiter; leaves the queue (or unlocks what it was handed)
/// if dropped armed, i.e. when force-unwound while parked.
struct Waiting<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    id: Option<u64>,
}

impl<'a, T: ?Sized> Waiting<'a, T> {
    fn leave(&mut self) -> Left<'a, T> {
        let mut list = self.mutex.list();
        let Some(id) = self.id.take() else {
            // The park failed before registering: undo `QUEUED`.
            self.mutex.unqueue_if_empty(&list);
            return Left::Gone;
        };
        if list.remove(id) {
            self.mutex.unqueue_if_empty(&list);
            Left::Gone
        } else {
            // The unlocker popped us and handed the mutex on, both under
            // the list's mutex, which we hold now.
            drop(list);
            Left::Owner(self.mutex.data.claim_handed().expect(BROKEN))
        }
    }
}

impl<T: ?Sized> Drop for Waiting<'_, T> {
    fn drop(&mut self) {
        if self.id.is_some() {
            if let Left::Owner(r) = self.leave() {
                self.mutex.unlock(r);
            }
        }
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard locks (for [`Condvar`](super::Condvar)).
    pub(super) fn mutex(&self) -> &'a Mutex<T> {
        self.mutex
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if !self.panicking && std::thread::panicking() {
            self.mutex.poisoned.store(true, Ordering::Relaxed);
        }
        if let Some(owned) = self.data.take() {
            self.mutex.unlock(owned);
        }
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.data.as_deref().expect(BROKEN)
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.data.as_deref_mut().expect(BROKEN)
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
        d.field("poisoned", &self.is_poisoned());
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
