//! A PostgreSQL client for [sylvan] green threads: plain blocking
//! calls, timeouts that cancel the statement on the server, a pool that
//! survives server restarts, and retries only where they are safe.
//!
//! The wire protocol is spoken with the `postgres-protocol` crate over a
//! green [`sylvan::net::TcpStream`]: each call parks only its green
//! thread, and sylvan's cancellation applies to it as to any socket call.
//!
//! - [`Config`] → [`Client`]: startup with `trust`, `password`, `md5` or
//!   `scram-sha-256` authentication, connect through
//!   [`sylvan::net::Connector`] under one connect timeout.
//! - [`Client::simple_query`], [`Client::batch_execute`] (simple protocol);
//!   [`Client::query`] and [`Client::execute`] with `$n` parameters
//!   (extended protocol, one round trip); [`Transaction`].
//! - Errors carry the SQLSTATE ([`Error::code`], [`DbError`]).
//! - **Timeouts**: the server's `statement_timeout`
//!   ([`Config::statement_timeout`]) and a client-side deadline per call
//!   ([`Config::query_timeout`]); enclosing `sylvan::timeout` scopes and
//!   kills apply too. When the client gives up on a statement, it sends a
//!   **CancelRequest** so the server stops running it ([`CancelToken`]),
//!   and closes the session.
//! - [`PgPool`]: a [`sylvan::resilience::Pool`] of sessions (checkout
//!   timeout, health check, max lifetime) with [`PgPool::read_only`] and
//!   [`PgPool::transaction`], which retry only what cannot be applied
//!   twice — see [the retry rule](PgPool#the-retry-rule).
//! - [`test_server::TempServer`]: a throwaway server for tests.
//!
//! Not here (yet): TLS, COPY, `LISTEN`/`NOTIFY` delivery, binary-format
//! values, named prepared statements.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use sylvan_postgres::{Config, PgPool};
//!
//! let pool = PgPool::builder(
//!     Config::new()
//!         .host("127.0.0.1")
//!         .user("app")
//!         .statement_timeout(Duration::from_secs(2))
//!         .query_timeout(Duration::from_secs(3)),
//! )
//! .max_size(16)
//! .build();
//!
//! let workers: Vec<_> = (0..100)
//!     .map(|i| {
//!         let pool = pool.clone();
//!         sylvan::spawn(move || {
//!             pool.transaction(|tx| {
//!                 tx.execute("INSERT INTO events (id) VALUES ($1)", &[&format!("ev-{i}")])
//!             })
//!         })
//!     })
//!     .collect();
//! for w in workers {
//!     w.join().unwrap()?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    clippy::undocumented_unsafe_blocks
)]
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

mod cancel;
mod client;
mod config;
mod error;
mod pool;
mod row;
pub mod test_server;
mod transaction;

pub use cancel::CancelToken;
pub use client::{Client, TxStatus};
pub use config::Config;
pub use error::{DbError, Error};
pub use pool::{PgPool, PgPoolBuilder};
pub use row::{ColumnIndex, FromText, Row, ToParam};
pub use transaction::Transaction;
