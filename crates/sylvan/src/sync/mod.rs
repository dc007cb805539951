//! Synchronisation: [`Event`], [`Queue`], [`Semaphore`], [`Watch`],
//! [`Mutex`], [`RwLock`] and [`Condvar`] between green threads of one hub;
//! [`channel`]s and the [`shared`] locks between OS threads and hubs.
//!
//! `Event`, `Queue`, `Semaphore` and `Watch` are handles (`Clone`, not `Send`) to
//! state shared by the green threads of one OS thread. `Mutex`, `RwLock`
//! and `Condvar` mirror std's types (own the data, share them with an
//! `Rc`) and are `!Send` too; their cross-thread twins in [`shared`] are
//! `Send + Sync`. [`Sender`] and [`Receiver`] are `Send`: they connect hubs
//! (and plain threads) to each other. Every blocking method documents what
//! happens when the green thread is killed or its deadline passes while it
//! waits: the waiter is removed, and no value, permit, lock hand-off or
//! notification is lost or duplicated.

mod channel;
mod condvar;
mod event;
mod lock_error;
mod mutex;
mod order;
mod queue;
mod raw_lock;
mod remote;
mod rwlock;
mod semaphore;
pub mod shared;
mod watch;

pub use channel::{
    Receiver, RecvError, RecvIntoIter, RecvIter, SendError, Sender, TryRecvError, TrySendError,
    bounded, channel,
};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use event::Event;
pub use lock_error::LockError;
pub use mutex::{Mutex, MutexGuard};
pub use order::QueueOrder;
pub use queue::{GetError, PutError, Queue, QueueIter, TryPutError};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{OverLimit, Semaphore, SemaphorePermit};
pub use watch::{Watch, WatchError, WatchReceiver, WatchRef};
