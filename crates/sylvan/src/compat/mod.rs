//! Interop with the async world, both ways — Eventlet's asyncio hub for
//! Rust.
//!
//! Rust's ecosystem is mostly async; sylvan code is blocking-style on green
//! threads. This module bridges the two so that a program can use an async
//! crate (reqwest, sqlx, tonic, hyper…) from green threads, and async code
//! can hand plain blocking work to a sylvan hub.
//!
//! **From green threads to futures**:
//!
//! - [`block_on`] (also at [`sylvan::block_on`](crate::block_on)) polls any
//!   future on the calling green thread, parking it between polls; its
//!   waker wakes the green thread from any OS thread. Kill and scoped
//!   deadlines drop the future. Enough for runtime-agnostic futures:
//!   channels, oneshots, futures completed by other threads.
//! - `tokio::run` (module `compat::tokio`, feature `tokio`) runs a future that needs tokio — its
//!   sockets and timers — on one shared background tokio runtime, parking
//!   the calling green thread until it finishes; kill and deadlines abort
//!   the tokio task. That module shows a green HTTP server whose
//!   handler calls an async client.
//!
//! **From futures to green threads**:
//!
//! - [`HubHandle`] (`Send + Sync + Clone`) submits a `Send` closure to a
//!   hub, where it runs as a green thread; [`HubHandle::spawn`] returns a
//!   [`RemoteJoinHandle`], a future of the closure's result that any
//!   executor can await. [`start_hubs`] starts a [`Runtime`](crate::Runtime)'s
//!   threads in the background and returns one handle per hub; its page
//!   shows a tokio program handing a protocol exchange to sylvan.
//!
//! The two directions nest freely: a green thread may `run` a tokio task
//! that awaits a green closure that `run`s another tokio task, and so on.
//! Neither side blocks an OS thread the other needs: green threads park,
//! tokio tasks await.
//!
//! ```
//! // A future completed by another OS thread, awaited from green code.
//! let (tx, rx) = tokio::sync::oneshot::channel();
//! let t = std::thread::spawn(move || tx.send("hello").unwrap());
//! let g = sylvan::spawn(move || sylvan::block_on(rx));
//! assert_eq!(g.join().unwrap(), Ok(Ok("hello")));
//! t.join().unwrap();
//! ```

mod block_on;
mod remote;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

pub use block_on::block_on;
pub use remote::{HubHandle, RemoteJoinError, RemoteJoinHandle, start_hubs};
