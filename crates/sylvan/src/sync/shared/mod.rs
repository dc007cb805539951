//! Locks shared between OS threads: [`Mutex`], [`RwLock`] and [`Condvar`],
//! the cross-thread twins of the hub-local [`sync::Mutex`](super::Mutex),
//! [`sync::RwLock`](super::RwLock) and [`sync::Condvar`](super::Condvar).
//!
//! They are `Send + Sync` (when `T` is `Send`, and for `RwLock` also
//! `Sync`), so they go in an `Arc` or a `static` and can be used from
//! green threads of any hub ([`Runtime`](crate::Runtime) threads) and from
//! plain OS threads alike. The semantics are the hub-local ones: FIFO
//! hand-off (no barging), std's poisoning, [`LockError`](super::LockError)
//! on cancellation, and a `# Cancellation` section on every blocking call.
//!
//! # Waiting
//!
//! - A **green thread** that has to wait parks only itself: its hub runs
//!   its other green threads meanwhile. The thread that unlocks wakes it
//!   across OS threads through its hub's waker (as [`channel`](super::channel)s
//!   do); each waiter keeps its own wake-up handle under the lock's
//!   internal `std` mutex, so no wake-up is lost or spent on a waiter that
//!   gave up.
//! - A **plain OS thread** waits the way every sylvan blocking call does on
//!   one: it becomes the root context of its own hub (created on first
//!   use) and runs that hub's loop until it is woken. With no green
//!   threads there, that is a plain sleep in `epoll_wait`. So it can be
//!   cancelled by a [`timeout`](crate::timeout) scope too. Locking a free
//!   lock creates no hub.
//! - **Without contention** a [`Mutex`] costs one atomic compare-and-swap
//!   to lock and one to unlock, as `std::sync::Mutex` does.
//!
//! Hub-local locks are cheaper (no atomics) and are the right choice for
//! state shared by the green threads of one OS thread.
//!
//! # Virtual time
//!
//! As for channels, a green thread waiting for a lock held on another OS
//! thread does not hold back a paused clock: if its hub has nothing else
//! to do, the clock jumps to the next timer.

mod condvar;
mod mutex;
mod rwlock;
mod waiters;

pub use condvar::Condvar;
pub use mutex::{Mutex, MutexGuard};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
