//! Synchronisation: [`Event`], [`Queue`], [`Semaphore`] and [`Watch`]
//! between green threads of one hub; [`channel`]s between OS threads and
//! hubs.
//!
//! `Event`, `Queue`, `Semaphore` and `Watch` are handles (`Clone`, not `Send`) to
//! state shared by the green threads of one OS thread. [`Sender`] and
//! [`Receiver`] are `Send`: they connect hubs (and plain threads) to each
//! other. Every blocking method documents what happens when the green
//! thread is killed or its deadline passes while it waits: the waiter is
//! removed, and no value or permit is lost or duplicated.

mod channel;
mod event;
mod order;
mod queue;
mod remote;
mod semaphore;
mod watch;

pub use channel::{
    Receiver, RecvError, RecvIntoIter, RecvIter, SendError, Sender, TryRecvError, TrySendError,
    bounded, channel,
};
pub use event::Event;
pub use order::QueueOrder;
pub use queue::{GetError, PutError, Queue, QueueIter, TryPutError};
pub use semaphore::{OverLimit, Semaphore, SemaphorePermit};
pub use watch::{Watch, WatchError, WatchReceiver, WatchRef};
