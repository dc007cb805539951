//! Green threads for Rust: plain blocking network code on a per-thread hub,
//! with timeouts and cancellation as first-class mechanisms.
//!
//! sylvan carries Python Eventlet's model — green threads, a hub, `Timeout`,
//! queues and events — into Rust. Code is written in ordinary synchronous
//! style; a blocking sylvan call parks only its green thread, and the hub
//! runs the others meanwhile.
//!
//! ```
//! use std::time::Duration;
//! use sylvan::sync::Queue;
//!
//! let q = Queue::unbounded();
//! let workers: Vec<_> = (0..3)
//!     .map(|i| {
//!         let q = q.clone();
//!         sylvan::spawn(move || {
//!             sylvan::sleep(Duration::from_millis(10 * (3 - i)))?;
//!             q.put(i).map_err(std::io::Error::from)
//!         })
//!     })
//!     .collect();
//! // The root context (main's own stack) drives the hub whenever it blocks.
//! let order: Vec<u64> = (0..3).map(|_| q.get().unwrap()).collect();
//! assert_eq!(order, vec![2, 1, 0]);
//! for w in workers {
//!     w.join().unwrap().unwrap();
//! }
//!
//! // A scoped deadline, Eventlet's `with Timeout(...)`:
//! let r = sylvan::timeout(Duration::from_millis(5), || q.get());
//! assert!(r.is_err());
//! ```
//!
//! # The model
//!
//! - **One hub per OS thread**, created on first use. Green threads never
//!   move to another OS thread, so `spawn` needs no `Send` bound and `Rc`
//!   and `RefCell` are fine inside them.
//! - **The root context** — the thread's own stack — runs the hub whenever
//!   it makes a blocking sylvan call, so `main` needs no wrapper.
//! - **Cancellation is by error.** A blocking call in a green thread that was
//!   [killed](GreenThread::kill), or whose [`timeout`]/[`deadline`] scope
//!   expired, returns [`Cancelled`]; propagate it with `?`. Each blocking
//!   call documents this under `# Cancellation`.
//! - **Supervision and structure.** [`GreenThread::link`] calls back with
//!   a green thread's [`Outcome`] on its own stack; [`join_all`] and
//!   [`kill_all`] wait for or kill a set of green threads; [`scope`] runs
//!   green threads that borrow the caller's stack and are always finished
//!   before it returns. Queues and channels [close](sync::Queue::close)
//!   and iterate to their end.
//! - **Virtual time** for tests: [`time::pause`] and [`time::advance`].
//! - **Shutdown.** [`shutdown`] kills every green thread of the hub and
//!   force-unwinds it, so its destructors run (sockets close) while the
//!   thread's thread-locals are still alive; [`run`] and each
//!   [`Runtime`] thread do it before they return. A green thread still
//!   alive when its OS thread ends without that is *leaked*: never resumed
//!   and never unwound (its destructors never run, its stack stays
//!   mapped), because the thread-locals its frames borrow may already be
//!   destroyed; a `tracing` warning says how many and where they were
//!   parked. Leaking is always sound; running those destructors would not
//!   be.
//! - **Nothing suspends while unwinding.** While a green thread unwinds
//!   (a panic, or the forced unwind of shutdown), every blocking call in a
//!   destructor fails at once with [`Cancelled::Killed`] and
//!   [`yield_now`] returns at once: other green threads never run in the
//!   middle of an unwind. The same holds for a green thread's closure
//!   dropped unrun (it was killed before it started).
//! - **No user code on the scheduler's path.** A green thread's result,
//!   panic payload or unrun closure is dropped on its own stack, never by
//!   the hub's loop, so a destructor that blocks cannot re-enter the
//!   scheduler.

#![deny(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    clippy::undocumented_unsafe_blocks
)]
#![doc(test(attr(deny(warnings))))]

mod cancel;
pub mod chaos;
pub mod compat;
pub mod debug;
mod green;
pub mod http;
pub mod net;
pub mod pool;
pub mod resilience;
mod runtime;
mod scope;
pub mod sync;
mod sys;
pub mod time;
pub mod tpool;
pub mod websocket;
#[cfg(feature = "zookeeper")]
pub mod zk;

pub use cancel::{Cancelled, Elapsed, ScopeId};
pub use compat::block_on;
pub use green::{
    Builder, Current, GreenId, GreenThread, JoinError, Outcome, current, join_all, kill_all, run,
    shutdown, spawn, spawn_after,
};
pub use net::{connect, listen, serve};
pub use pool::{GreenPile, GreenPool};
pub use runtime::multi::{Runtime, RuntimeBuilder};
pub use scope::{Scope, ScopedGreenThread, scope};
pub use time::{deadline, sleep, timeout, yield_now};
