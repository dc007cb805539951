//! A ZooKeeper client on green sockets, with real session semantics, and
//! service-discovery recipes (feature `zookeeper`).
//!
//! - [`Client`] speaks ZooKeeper's wire protocol (length-prefixed jute
//!   records) itself: the connect handshake with session id and password,
//!   the negotiated session timeout, pings when idle, and requests
//!   pipelined by xid — callers send at once, and one reader green thread
//!   per connection hands each reply to its caller and each watch
//!   notification to its queue.
//! - The session survives connection losses and server fail-overs:
//!   its state is a [`SessionState`](crate::resilience::SessionState)
//!   (`Connected`, `Suspended`, `Reconnected`, `Lost`), with the Java
//!   client's timing (see [`Client`]).
//! - Operations: [`create`](Client::create) (persistent, ephemeral,
//!   sequential; open ACL by default), [`delete`](Client::delete) and
//!   [`set_data`](Client::set_data) with an expected version,
//!   [`exists`](Client::exists), [`get_data`](Client::get_data),
//!   [`get_children`](Client::get_children), the last three also with a
//!   one-shot watch delivered on a [`Queue`](crate::sync::Queue).
//! - Recipes: [`register`] (an ephemeral sequential member node, re-created
//!   in a new session when the old one is lost) and [`discover`] (the live
//!   member list).
//!
//! # Watches, and the window where an event can be missed
//!
//! Watches are ZooKeeper's: **one-shot**, set by a read, fired at most
//! once, and in the order the server made the changes. So:
//!
//! - **Between a watch firing and the next read that sets a new one,
//!   further changes are not notified.** They are not lost — the next read
//!   sees the node's latest state — but intermediate states (a child that
//!   joined and left, a value set and set again) can be missed entirely.
//!   Read again after every event; never count events.
//! - **Across a reconnect** the client re-registers every watch with
//!   SetWatches and the last zxid it saw; the server fires at once any
//!   watch whose node changed after that zxid. But an `exists` watch on a
//!   missing node is only checked against the node's state *now*: a node
//!   created and deleted again while the client was disconnected fires
//!   nothing.
//! - **When the session is lost**, the server forgets its watches. Each
//!   one fires with [`EventKind::SessionLost`]; whatever changed meanwhile
//!   is only visible by reading again (in the new session).
//! - A watch is delivered with `try_put`: give it an unbounded queue (or
//!   one with room), or the event is dropped with a warning.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use sylvan::resilience::SessionState;
//! use sylvan::zk::{Client, CreateMode};
//!
//! let zk = Client::builder("zk1:2181,zk2:2181,zk3:2181")
//!     .session_timeout(Duration::from_secs(6))
//!     .connect()?;
//! let mut states = zk.states();
//! sylvan::spawn(move || {
//!     while states.changed().is_ok() {
//!         if *states.borrow() == Some(SessionState::Lost) {
//!             eprintln!("session lost: ephemeral nodes are gone");
//!         }
//!     }
//! });
//! zk.ensure_path("/locks")?;
//! let me = zk.create("/locks/lock-", b"", CreateMode::EphemeralSequential)?;
//! println!("{me} in session {:#x}", zk.session_id().unwrap());
//! # Ok::<(), sylvan::zk::Error>(())
//! ```

mod client;
mod conn;
mod error;
mod proto;
mod recipes;
mod session;
mod types;
mod url;
mod watch;

pub use client::{Client, ClientBuilder};
pub use error::{Code, Error};
pub use recipes::{Discovery, Member, Registration, discover, register};
pub use types::{Acl, CreateMode, Stat};
pub use url::ZkUrl;
pub use watch::{EventKind, WatchEvent};

/// Entry point for the `zk_decode` fuzz target; not a public API.
#[doc(hidden)]
pub mod __private {
    /// Decodes `data` as everything a server sends one client (see
    /// `proto::decode_server_stream`): the number of frames decoded, or
    /// the error that stopped it. Never panics.
    pub fn decode_server_stream(data: &[u8], max_frame: usize) -> Result<usize, super::Error> {
        super::proto::decode_server_stream(data, max_frame)
    }
}
