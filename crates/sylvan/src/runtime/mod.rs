//! The engine under the public API: hub, stacks, timers, clock, `park` and
//! the watchdog. Nothing here is public; `green`, `time`, `sync` and `tpool`
//! are built on it.

pub(crate) mod clock;
pub(crate) mod hub;
pub(crate) mod introspect;
pub(crate) mod io;
pub(crate) mod local;
pub(crate) mod lock_cell;
pub(crate) mod multi;
pub(crate) mod park;
pub(crate) mod scope;
pub(crate) mod stack;
pub(crate) mod task;
pub(crate) mod timer;
pub(crate) mod watchdog;
