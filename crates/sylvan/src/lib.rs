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
//!   priority), [`Semaphore`](sync::Semaphore), [`Watch`](sync::Watch) and
//!   the locks [`Mutex`](sync::Mutex), [`RwLock`](sync::RwLock),
//!   [`Condvar`](sync::Condvar) between green threads of one hub;
//!   [`channel`](sync::channel)s and [`sync::shared`] locks between hubs and
//!   OS threads.
//! - [`pool`] — [`GreenPool`], [`GreenPile`] and [`Imap`](pool::Imap):
//!   bounded concurrency, results in order.
//! - [`select`] — [`Select`]: the first of several queue, channel, event,
//!   join, semaphore or deadline operations (Go's `select`); gevent's
//!   [`wait`] and [`iwait`].
//! - [`local`] — green-local storage, one value per green thread.
//! - [`net`] — green TCP, UDP and Unix sockets with std's names and
//!   timeouts; [`Connector`](net::Connector) (one overall connect deadline,
//!   Happy Eyeballs); [`serve`]; `net::tls` with feature `tls`.
//! - [`tpool`] — blocking work (files, DNS, C libraries) on a bounded pool
//!   of OS threads, parking only the caller.
//! - [`io`] — any pollable descriptor (pipes, ttys, eventfds) as a green
//!   reader/writer.
//! - [`process`] — child processes whose waits and pipes park only the
//!   green thread.
//! - [`signal`] — Unix signals waited for by green threads.
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
//! # Invalid settings
//!
//! One policy for every builder and settings type: a setting that makes
//! no sense — a zero where zero means nothing (a pool of no connections,
//! a zero window, zero attempts), a minimum above its maximum, a rate or
//! fraction out of its range, NaN — is an error, never a panic and never
//! silently changed into a valid one. The error is an
//! [`io::Error`](std::io::Error) of kind `InvalidInput` whose message
//! names the setting and the value (`invalid setting Pool min_idle(3):
//! more than max_size (2)`). It comes from:
//!
//! - **`build()`**, for builders that have one:
//!   [`CircuitBreakerBuilder`](resilience::CircuitBreakerBuilder),
//!   [`PoolBuilder`](resilience::PoolBuilder), [`RuntimeBuilder`];
//!   settings that are only wrong together (`min_idle` above `max_size`)
//!   are always checked there;
//! - **the setter or constructor itself**, for types that are their own
//!   settings and have no build step: [`http::Server`] (its limits and
//!   timeouts; it is made by `bind`, then configured, then served),
//!   [`net::ServeOptions`], [`Backoff`](resilience::Backoff),
//!   [`Retry`](resilience::Retry), [`RetryBudget`](resilience::RetryBudget),
//!   [`websocket::Options`].
//!
//! Every other setting accepts every value of its type, with a documented
//! meaning: a [`GreenPool`] of size 0 admits no green thread until
//! resized, `None` timeouts mean none, and timeouts longer than a year
//! count as a year (as good as never). [`http::ClientBuilder`] and
//! [`websocket::ClientBuilder`](websocket::ClientBuilder) have no invalid
//! values, so their `build` (or the value itself) cannot fail on settings.
//! [`net::Connector`] hands its keepalive and user-timeout values to the
//! kernel on each `connect`, which fails with the kernel's error for a
//! value it refuses.
//!
//! ```
//! use sylvan::resilience::{CircuitBreaker, Retry};
//!
//! let e = CircuitBreaker::builder().minimum_calls(0).build().unwrap_err();
//! assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
//! assert_eq!(
//!     e.to_string(),
//!     "invalid setting CircuitBreaker minimum_calls(0): at least 1 call must be seen before the breaker can open"
//! );
//! assert!(Retry::<std::io::Error>::new().max_attempts(0).is_err());
//! ```
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
//!   be. One gap remains: a `thread_local!` destructor that itself makes a
//!   blocking sylvan call (or yields) while its thread exits runs the hub,
//!   and green threads still alive may then run although thread-locals
//!   they borrow are gone. Don't block in a thread-local destructor on a
//!   thread that still has green threads; call [`shutdown`] first (as
//!   [`run`] and [`Runtime`] do).
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
//!
//! # What blocks the hub
//!
//! A hub runs one green thread at a time and switches only inside sylvan's
//! blocking calls. Anything else that waits stops every green thread of
//! the OS thread, and some waits never end, because the green thread that
//! would end them can't run. The usual culprits:
//!
//! - **A `std::sync::Mutex` (or `RwLock`) guard held across a blocking
//!   sylvan call.** Another green thread of the same hub that locks it
//!   blocks the OS thread in the kernel; the holder is parked on that same
//!   thread and never resumes: a deadlock, not a stall. On another hub the
//!   locker stalls its whole hub until the holder resumes. Release the
//!   guard before blocking, or use a green [`sync::Mutex`] (or
//!   [`sync::shared::Mutex`] across hubs), whose waiters park instead.
//! - **A `RefCell` borrow held across a blocking call.** Nothing stalls:
//!   another green thread's `borrow_mut()` panics (`RefCell already
//!   borrowed`, a `BorrowMutError`; `borrow()` panics with a `BorrowError`
//!   while it is mutably borrowed), and the panic ends that green thread
//!   ([`JoinError::Panicked`]). Drop the borrow before blocking, or keep
//!   the state in a [`sync::Mutex`] (example below).
//! - **A `OnceLock`/`LazyLock` (or `Once`) initializer that makes a
//!   blocking sylvan call.** The initializer parks; a second
//!   green thread of the hub touching the same cell waits on std's lock
//!   for it, which blocks the OS thread: a deadlock again. Initialize
//!   before spawning, or compute the value first and `set` it; for a
//!   value only green threads wait for, an [`sync::Event`] parks instead.
//! - **`thread_local!`** is shared by every green thread of the OS thread
//!   (green threads never migrate, so this is sound, but it is not
//!   per-request state). A value one green thread stores is seen and
//!   overwritten by the others whenever it blocks, and a `RefCell` inside
//!   it borrowed across a blocking call panics as above. Use
//!   [`green_local!`] for per-green-thread state, or pass the state down.
//! - **Calling sylvan from inside a tokio worker.** A blocking sylvan call
//!   in an async task makes a hub on the tokio worker thread and runs it
//!   until the call completes: the worker, and every tokio task queued on
//!   it, stands still meanwhile (a 10 ms tokio interval ticks zero times
//!   across a 300 ms [`sleep`] on a current-thread runtime). From async
//!   code, give the work to a hub with [`compat::start_hubs`] and await
//!   [`compat::HubHandle::spawn`]'s handle, or use tokio's
//!   `spawn_blocking`.
//! - **C code that skips stack probes.** Rust touches every page of a
//!   large stack frame, so an overflow faults in the green thread's
//!   one-page guard and sylvan prints `green thread '<name>' overflowed
//!   its stack (<n> KiB)` and aborts. C or C++ built without
//!   `-fstack-clash-protection` (a large local array, `alloca`) can move
//!   the stack pointer past the guard in one step, into memory that may be
//!   another green thread's stack: silent corruption, or a crash not
//!   reported as an overflow. Build such code with
//!   `-fstack-clash-protection`, give the green threads that call it a
//!   stack sized for its worst case ([`Builder::stack_size`]), or call it
//!   through [`tpool::execute`], on an OS thread's own stack (std's
//!   default, 2 MiB).
//! - **CPU-heavy loops and blocking std I/O** — `std::fs`, `std::net`,
//!   `std::thread::sleep`, a `std::sync::mpsc` receive or `Condvar` wait,
//!   `getaddrinfo` through `std::net::ToSocketAddrs`. Use the green
//!   equivalents ([`net`], [`sleep`], [`sync::channel`],
//!   [`net::lookup_host`]), send file I/O, blocking C libraries and long
//!   computations to [`tpool::execute`], or call [`yield_now`] every so
//!   often in a long loop.
//!
//! **What the watchdog reports.** A watchdog thread checks every hub a few
//! times per threshold (default 100 ms; [`debug::set_blocking_threshold`]
//! per hub, `SYLVAN_BLOCKING_THRESHOLD_MS` for the default, `0` = off).
//! When one green thread has run longer than the threshold without
//! switching, it logs one `tracing` warning for that stall:
//!
//! ```text
//! green thread 5 (worker) on hub 2 (thread 'main') has run for 111 ms without
//! yielding; its last blocking point was src/main.rs:12:9: it is blocking the hub
//! ```
//!
//! It names the green thread that is *running*: for a lock or a
//! `OnceLock`, the one waiting for it, not the one holding it. The
//! location is where that green thread last parked (`its start` if it
//! never did), not the line it is stuck on. That covers the mutex,
//! `OnceLock`, CPU and std I/O cases above. The watchdog says nothing when
//! the blocked code is the root context (the OS thread's own stack, as in
//! the tokio case), nothing about a `RefCell` (it panics instead of
//! stalling), and nothing about a skipped guard page.
//!
//! ```
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use std::time::Duration;
//! use sylvan::sync::{LockError, Mutex};
//!
//! let log = Rc::new(RefCell::new(Vec::new()));
//!
//! // Wrong: the borrow is held while the green thread sleeps.
//! let l = log.clone();
//! let holder = sylvan::spawn(move || {
//!     let mut v = l.borrow_mut();
//!     sylvan::sleep(Duration::from_millis(1))?;
//!     v.push("holder");
//!     Ok::<_, sylvan::Cancelled>(())
//! });
//! let l = log.clone();
//! let other = sylvan::spawn(move || l.try_borrow_mut().is_err());
//! assert!(other.join().unwrap(), "a borrow_mut() here would have panicked");
//! holder.join().unwrap().unwrap();
//!
//! // Right: a green `sync::Mutex`; waiting for it parks only the green
//! // thread, and its guard may be held across blocking calls.
//! let log = Rc::new(Mutex::new(Vec::new()));
//! let writers: Vec<_> = ["a", "b"]
//!     .into_iter()
//!     .map(|name| {
//!         let log = log.clone();
//!         sylvan::spawn(move || {
//!             let mut v = log.lock().or_else(LockError::ignore_poison)?;
//!             sylvan::sleep(Duration::from_millis(1))?;
//!             v.push(name);
//!             Ok::<_, sylvan::Cancelled>(())
//!         })
//!     })
//!     .collect();
//! for w in writers {
//!     w.join().unwrap().unwrap();
//! }
//! assert_eq!(*log.lock().unwrap(), ["a", "b"]);
//!
//! // CPU-heavy work goes to the thread pool; the hub runs on meanwhile.
//! let sum = sylvan::tpool::execute(|| (1..=1_000_000u64).sum::<u64>()).unwrap();
//! assert_eq!(sum, 500_000_500_000);
//! ```

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
pub mod io;
pub mod local;
pub mod net;
pub mod pool;
pub mod process;
pub mod resilience;
mod runtime;
pub mod select;
mod settings;
pub mod signal;
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
    Builder, Current, GreenId, GreenThread, JoinError, LinkId, Outcome, current, join_all,
    kill_all, run, shutdown, spawn, spawn_after,
};
pub use local::GreenLocal;
pub use net::{connect, listen, serve};
pub use pool::{GreenPile, GreenPool};
pub use runtime::{Runtime, RuntimeBuilder};
pub use runtime::{Scope, ScopedGreenThread, scope};
pub use select::{Select, iwait, wait};
pub use time::{deadline, sleep, timeout, yield_now};
