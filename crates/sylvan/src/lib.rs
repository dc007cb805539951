//! Green threads for Rust: plain blocking network code on a per-thread hub,
//! with timeouts and cancellation as first-class mechanisms.
//!
//! # Modules
//!
//! - The crate root — green threads ([`spawn`], [`spawn_after`],
//!   [`GreenThread`], [`Builder`], [`run`], [`shutdown`], [`current`]),
//!   blocking with deadlines ([`sleep`], [`timeout`], [`deadline`],
//!   [`Cancelled`]), [`GreenPool`]/[`GreenPile`], [`Runtime`] (one hub per
//!   core), [`listen`]/[`connect`]/[`serve`], [`green_local!`].
//! - [`time`] — sleeping, scoped deadlines, the hub's clock and virtual time
//!   for tests.
//! - [`sync`] — [`Event`](sync::Event), [`Queue`](sync::Queue) (FIFO, LIFO,
//!   priority), [`Semaphore`](sync::Semaphore) and [`Watch`](sync::Watch)
//!   between green threads of one hub; [`channel`](sync::channel)s between
//!   hubs and OS threads.
//! - [`pool`] — [`GreenPool`], [`GreenPile`] and [`Imap`](pool::Imap):
//!   bounded concurrency, results in order.
//! - [`local`] — green-local storage, one value per green thread.
//! - [`net`] — green TCP, UDP and Unix sockets with std's names and
//!   timeouts; [`Connector`](net::Connector) (one overall connect deadline,
//!   Happy Eyeballs); [`serve`]; `net::tls` with feature `tls`.
//! - [`tpool`] — blocking work (files, DNS, C libraries) on a bounded pool
//!   of OS threads, parking only the caller.
//! - [`resilience`] — [`Backoff`](resilience::Backoff),
//!   [`Retry`](resilience::Retry), [`CircuitBreaker`](resilience::CircuitBreaker),
//!   [`Reconnecting`](resilience::Reconnecting), [`Session`](resilience::Session),
//!   [`Heartbeat`](resilience::Heartbeat), connection [`Pool`](resilience::Pool).
//! - [`http`] — an HTTP/1.1 server in the spirit of `eventlet.wsgi`.
//! - [`websocket`] — WebSocket sessions upgraded from the HTTP server.
//! - [`chaos`] — a fault-injecting TCP proxy for tests (Toxiproxy's
//!   toxics); its HTTP API, `chaos::api`, with feature `chaos-api`.
//! - [`compat`] — futures from green threads ([`block_on`]) and green
//!   closures from async code; `compat::tokio` with feature `tokio`.
//! - [`debug`] — blocking detection, hub counters, stack memory.
#![cfg_attr(
    feature = "zookeeper",
    doc = "- [`zk`] — a ZooKeeper client with session semantics, and service discovery (feature `zookeeper`)."
)]
#![cfg_attr(
    not(feature = "zookeeper"),
    doc = "- `zk` — a ZooKeeper client with session semantics, and service discovery (feature `zookeeper`)."
)]
//!
//! Coming from Python's Eventlet? [The migration guide][eventlet] puts
//! every Eventlet API beside its sylvan equivalent and ports its classic
//! programs line by line (`docs/eventlet.md` in the repository).
//!
//! [eventlet]: https://github.com/sylvan-rs/sylvan/blob/main/docs/eventlet.md
//!
//! # Overview
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
//!             q.put(i).map_err(sylvan::Cancelled::from)
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
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cancel;
pub mod chaos;
pub mod compat;
pub mod debug;
mod green;
pub mod http;
pub mod local;
pub mod net;
pub mod pool;
pub mod resilience;
mod runtime;
pub mod sync;
mod sys;
pub mod time;
pub mod tpool;
pub mod websocket;
#[cfg(feature = "zookeeper")]
#[cfg_attr(docsrs, doc(cfg(feature = "zookeeper")))]
pub mod zk;

pub use cancel::{Cancelled, Elapsed, ScopeId};
pub use compat::block_on;
pub use green::{
    Builder, Current, GreenId, GreenThread, JoinError, current, run, shutdown, spawn, spawn_after,
};
pub use local::GreenLocal;
pub use net::{connect, listen, serve};
pub use pool::{GreenPile, GreenPool};
pub use runtime::multi::{Runtime, RuntimeBuilder};
pub use time::{deadline, sleep, timeout, yield_now};
