//! The data cells of the cross-thread locks (`sync::shared::{Mutex,
//! RwLock}`): the only `unsafe` those locks need, behind a safe interface.
//!
//! A lock's protocol (its state word, its waiter list, hand-offs between
//! threads) decides who may touch the data; these cells make sure that no
//! mistake in a protocol can turn into undefined behaviour. Each cell
//! keeps its own borrow count, like an atomic `RefCell`: a borrow is taken
//! with one atomic read-modify-write when a guard is made and given back
//! when it is dropped. When the protocol is right the borrow always
//! succeeds; if it were wrong, [`try_borrow_mut`](ExclusiveCell::try_borrow_mut)
//! would return `None` (the lock turns that into a panic naming the bug)
//! instead of handing out two `&mut T`.
//!
//! Invariants, which every `unsafe` block below rests on:
//!
//! - [`ExclusiveCell`]: `borrowed` is `true` exactly while one
//!   [`ExclusiveRef`] exists. It is set only by a successful swap from
//!   `false` (`Acquire`), and cleared only by that `ExclusiveRef`'s drop
//!   (`Release`), so each holder's accesses happen after the previous
//!   holder's.
//! - [`SharedCell`]: `state` is [`WRITER`] exactly while one
//!   [`SharedMut`] exists, and otherwise the number of live
//!   [`SharedRef`]s. A `SharedMut` is made only by a compare-and-swap from
//!   0 to `WRITER`, a `SharedRef` only by a compare-and-swap from a count
//!   below `WRITER - 1` to one more; each drop undoes its own step with
//!   `Release`.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A cell whose data is reached only through one [`ExclusiveRef`] at a
/// time; the data of `sync::shared::Mutex`.
pub(crate) struct ExclusiveCell<T: ?Sized> {
    borrowed: AtomicBool,
    data: UnsafeCell<T>,
}

// SAFETY: the data is reached only through an `ExclusiveRef`, and at most
// one exists at a time (module invariants), its accesses ordered after the
// previous holder's. Sharing the cell therefore only ever moves `T`
// between threads, which `T: Send` allows; no `&T` is shared between
// threads at once, so `T: Sync` is not needed (as for `std::sync::Mutex`).
// (`Send` is derived: `UnsafeCell<T>` is `Send` when `T` is.)
unsafe impl<T: ?Sized + Send> Sync for ExclusiveCell<T> {}

impl<T> ExclusiveCell<T> {
    pub(crate) const fn new(value: T) -> ExclusiveCell<T> {
        ExclusiveCell {
            borrowed: AtomicBool::new(false),
            data: UnsafeCell::new(value),
        }
    }

    pub(crate) fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> ExclusiveCell<T> {
    /// Borrows the data, unless it is borrowed already.
    #[inline]
    pub(crate) fn try_borrow_mut(&self) -> Option<ExclusiveRef<'_, T>> {
        if self.borrowed.swap(true, Ordering::Acquire) {
            return None;
        }
        Some(ExclusiveRef { cell: self })
    }

    /// The data, through a unique borrow of the cell.
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

/// The one borrow of an [`ExclusiveCell`]'s data.
pub(crate) struct ExclusiveRef<'a, T: ?Sized> {
    cell: &'a ExclusiveCell<T>,
}

impl<T: ?Sized> Drop for ExclusiveRef<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.cell.borrowed.store(false, Ordering::Release);
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
    fn exclusive_cell_refuses_a_second_borrow_until_the_first_is_gone() {
        let c = ExclusiveCell::new(1);
        let mut a = c.try_borrow_mut().unwrap();
        assert!(c.try_borrow_mut().is_none());
        *a += 1;
        drop(a);
        assert_eq!(*c.try_borrow_mut().unwrap(), 2);
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
