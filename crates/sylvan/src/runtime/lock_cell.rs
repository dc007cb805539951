//! The data cells of the cross-thread locks (`sync::shared::{Mutex,
//! RwLock}`): the only `unsafe` those locks need, behind a safe interface.
//!
//! A lock's protocol (its waiter list, hand-offs between threads) decides
//! who may touch the data; these cells make sure that no mistake in a
//! protocol can turn into undefined behaviour: the data is reached only
//! through a borrow object that the cell itself hands out, and the cell
//! never has two unique borrows out at once. A wrong protocol gets `None`
//! (which the lock turns into a panic naming the bug), never two `&mut T`.
//!
//! Invariants, which every `unsafe` block below rests on:
//!
//! - [`ExclusiveCell`] holds the mutex's whole lock word. Its `LOCKED`
//!   bit is set and `HANDED` clear exactly while one [`ExclusiveRef`]
//!   exists; `LOCKED` and `HANDED` both set mean the last holder handed
//!   the lock on and nobody has claimed it yet (no `ExclusiveRef`
//!   exists). An `ExclusiveRef` is made only by a compare-and-swap from 0
//!   to `LOCKED` ([`try_lock`](ExclusiveCell::try_lock)) or by clearing
//!   `HANDED` with a read-modify-write that saw it set
//!   ([`claim_handed`](ExclusiveCell::claim_handed)), both `Acquire`; it
//!   goes only by clearing `LOCKED` or setting `HANDED`, both `Release`.
//!   No other operation touches those two bits ([`try_queue`] and
//!   [`clear_queued`] change `QUEUED` only). So the uncontended lock and
//!   unlock cost one compare-and-swap each, as a lock word without the
//!   cell would.
//! - [`SharedCell`]: `state` is [`WRITER`] exactly while one
//!   [`SharedMut`] exists, and otherwise the number of live
//!   [`SharedRef`]s. A `SharedMut` is made only by a compare-and-swap from
//!   0 to `WRITER`, a `SharedRef` only by a compare-and-swap from a count
//!   below `WRITER - 1` to one more; each drop undoes its own step with
//!   `Release`. (The `RwLock` takes a `std` mutex on every operation; one
//!   more atomic is noise there.)
//!
//! [`try_queue`]: ExclusiveCell::try_queue
//! [`clear_queued`]: ExclusiveCell::clear_queued

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// Lock word bit: somebody owns the mutex (or it is handed to a waiter).
const LOCKED: u8 = 1;
/// Lock word bit: the waiter list may be non-empty (the mutex's protocol).
const QUEUED: u8 = 2;
/// Lock word bit: handed over by the last owner, not yet claimed.
const HANDED: u8 = 4;

/// A mutex's lock word and data; the data is reached only through one
/// [`ExclusiveRef`] at a time.
pub(crate) struct ExclusiveCell<T: ?Sized> {
    state: AtomicU8,
    data: UnsafeCell<T>,
}

// SAFETY: the data is reached only through an `ExclusiveRef`, and at most
// one exists at a time (module invariants), its accesses ordered after the
// previous holder's by the `Acquire`/`Release` pairs on `state`. Sharing
// the cell therefore only ever moves `T` between threads, which `T: Send`
// allows; no `&T` is shared between threads at once, so `T: Sync` is not
// needed (as for `std::sync::Mutex`). (`Send` is derived: `UnsafeCell<T>`
// is `Send` when `T` is.)
unsafe impl<T: ?Sized + Send> Sync for ExclusiveCell<T> {}

impl<T> ExclusiveCell<T> {
    pub(crate) const fn new(value: T) -> ExclusiveCell<T> {
        ExclusiveCell {
            state: AtomicU8::new(0),
            data: UnsafeCell::new(value),
        }
    }

    pub(crate) fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> ExclusiveCell<T> {
    /// Locks, if the lock word is 0 (free, nobody queued).
    #[inline]
    pub(crate) fn try_lock(&self) -> Option<ExclusiveRef<'_, T>> {
        self.state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| ExclusiveRef { cell: self })
    }

    /// The lock word, for the protocol's decisions.
    pub(crate) fn state(&self) -> u8 {
        self.state.load(Ordering::Relaxed)
    }

    /// Sets `QUEUED` if the mutex is locked (or handed on); returns
    /// whether it is (then `QUEUED` is set).
    pub(crate) fn try_queue(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & LOCKED == 0 {
                return false;
            }
            if s & QUEUED != 0 {
                return true;
            }
            match self.state.compare_exchange_weak(
                s,
                s | QUEUED,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// Clears `QUEUED`.
    pub(crate) fn clear_queued(&self) {
        self.state.fetch_and(!QUEUED, Ordering::Relaxed);
    }

    /// Takes the lock its last owner [handed on](ExclusiveRef::hand_off),
    /// if it was and nobody claimed it yet.
    pub(crate) fn claim_handed(&self) -> Option<ExclusiveRef<'_, T>> {
        let was = self.state.fetch_and(!HANDED, Ordering::Acquire);
        // (Lazily: an `ExclusiveRef` made and dropped would unlock.)
        (was & (HANDED | LOCKED) == HANDED | LOCKED).then(|| ExclusiveRef { cell: self })
    }

    /// The data, through a unique borrow of the cell.
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

/// The one borrow of an [`ExclusiveCell`]'s data: holding it is owning
/// the mutex. Dropping it unlocks (the lock word becomes 0).
pub(crate) struct ExclusiveRef<'a, T: ?Sized> {
    cell: &'a ExclusiveCell<T>,
}

impl<'a, T: ?Sized> ExclusiveRef<'a, T> {
    /// Unlocks if nobody is queued (the lock word is exactly `LOCKED`);
    /// otherwise hands the borrow back.
    #[inline]
    pub(crate) fn try_unlock(self) -> Result<(), Self> {
        match self
            .cell
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
        {
            Ok(_) => {
                std::mem::forget(self);
                Ok(())
            }
            Err(_) => Err(self),
        }
    }

    /// Hands the mutex on, still locked, for a waiter to
    /// [claim](ExclusiveCell::claim_handed); `queued` says whether
    /// `QUEUED` stays set.
    pub(crate) fn hand_off(self, queued: bool) {
        let q = if queued { QUEUED } else { 0 };
        self.cell
            .state
            .store(LOCKED | HANDED | q, Ordering::Release);
        std::mem::forget(self);
    }
}

impl<T: ?Sized> Drop for ExclusiveRef<'_, T> {
    /// Unlocks: the lock word becomes 0 (`QUEUED` included: the protocol
    /// drops a borrow only when nobody is queued).
    fn drop(&mut self) {
        self.cell.state.store(0, Ordering::Release);
    }
}

impl<T: ?Sized> Deref for ExclusiveRef<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this is the only `ExclusiveRef` of the cell (module
        // invariants), so nothing else reaches the data while it lives.
        unsafe { &*self.cell.data.get() }
    }
}

impl<T: ?Sized> DerefMut for ExclusiveRef<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this borrow unique
        // among this reference's borrows.
        unsafe { &mut *self.cell.data.get() }
    }
}

/// `SharedCell::state` while a [`SharedMut`] exists.
const WRITER: usize = usize::MAX;

/// A cell whose data is reached through many [`SharedRef`]s or one
/// [`SharedMut`] at a time; the data of `sync::shared::RwLock`.
pub(crate) struct SharedCell<T: ?Sized> {
    state: AtomicUsize,
    data: UnsafeCell<T>,
}

// SAFETY: shared references (`&T`, from `SharedRef`s, possibly on several
// threads at once) need `T: Sync`; the unique one (`&mut T`, from the one
// `SharedMut`, excluding every `SharedRef` by the module invariants)
// moves `T` between threads, which needs `T: Send`. Every holder's
// accesses are ordered after the previous writer's by the
// `Acquire`/`Release` pairs on `state`.
unsafe impl<T: ?Sized + Send + Sync> Sync for SharedCell<T> {}

impl<T> SharedCell<T> {
    pub(crate) const fn new(value: T) -> SharedCell<T> {
        SharedCell {
            state: AtomicUsize::new(0),
            data: UnsafeCell::new(value),
        }
    }

    pub(crate) fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> SharedCell<T> {
    /// Borrows the data shared, unless it is borrowed uniquely (or the
    /// count of shared borrows would overflow).
    pub(crate) fn try_borrow(&self) -> Option<SharedRef<'_, T>> {
        let mut n = self.state.load(Ordering::Relaxed);
        loop {
            if n >= WRITER - 1 {
                return None;
            }
            match self
                .state
                .compare_exchange_weak(n, n + 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return Some(SharedRef { cell: self }),
                Err(now) => n = now,
            }
        }
    }

    /// Borrows the data uniquely, unless it is borrowed at all.
    pub(crate) fn try_borrow_mut(&self) -> Option<SharedMut<'_, T>> {
        self.state
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| SharedMut { cell: self })
    }

    /// The data, through a unique borrow of the cell.
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

/// A shared borrow of a [`SharedCell`]'s data.
pub(crate) struct SharedRef<'a, T: ?Sized> {
    cell: &'a SharedCell<T>,
}

impl<T: ?Sized> Drop for SharedRef<'_, T> {
    fn drop(&mut self) {
        self.cell.state.fetch_sub(1, Ordering::Release);
    }
}

impl<T: ?Sized> Deref for SharedRef<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: while a `SharedRef` lives, `state` is a count above 0,
        // so no `SharedMut` exists (module invariants): the data is only
        // read.
        unsafe { &*self.cell.data.get() }
    }
}

/// The unique borrow of a [`SharedCell`]'s data.
pub(crate) struct SharedMut<'a, T: ?Sized> {
    cell: &'a SharedCell<T>,
}

impl<T: ?Sized> Drop for SharedMut<'_, T> {
    fn drop(&mut self) {
        self.cell.state.store(0, Ordering::Release);
    }
}

impl<T: ?Sized> Deref for SharedMut<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: while a `SharedMut` lives, `state` is `WRITER`, so it is
        // the only borrow of the data (module invariants).
        unsafe { &*self.cell.data.get() }
    }
}

impl<T: ?Sized> DerefMut for SharedMut<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this borrow unique
        // among this reference's borrows.
        unsafe { &mut *self.cell.data.get() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_cell_has_one_owner_even_across_a_hand_off() {
        let c = ExclusiveCell::new(1);
        let mut a = c.try_lock().unwrap();
        assert!(c.try_lock().is_none());
        assert!(c.claim_handed().is_none(), "nothing was handed on");
        *a += 1;
        assert!(c.try_queue());
        let a = a.try_unlock().unwrap_err(); // queued: no fast unlock
        a.hand_off(false);
        assert!(c.try_lock().is_none(), "still locked for the claimer");
        let b = c.claim_handed().unwrap();
        assert!(c.claim_handed().is_none(), "claimed once only");
        assert_eq!(*b, 2);
        assert!(b.try_unlock().is_ok());
        assert_eq!(c.state(), 0);
        assert!(!c.try_queue(), "not locked");
    }

    #[test]
    fn shared_cell_allows_readers_or_one_writer() {
        let c = SharedCell::new(1);
        let r1 = c.try_borrow().unwrap();
        let r2 = c.try_borrow().unwrap();
        assert!(c.try_borrow_mut().is_none());
        assert_eq!(*r1 + *r2, 2);
        drop((r1, r2));
        let mut w = c.try_borrow_mut().unwrap();
        assert!(c.try_borrow().is_none());
        *w = 5;
        drop(w);
        assert_eq!(*c.try_borrow().unwrap(), 5);
    }
}
