//! Synchronisation between green threads of one hub: [`Event`] and
//! [`Queue`].
//!
//! These are handles (`Clone`, not `Send`) to state shared by the green
//! threads of one OS thread. Every blocking method documents what happens
//! when the green thread is killed or its deadline passes while it waits:
//! the waiter is removed, and no value is lost or duplicated.

mod event;
mod queue;

pub use event::Event;
pub use queue::{PutError, Queue, TryPutError};
