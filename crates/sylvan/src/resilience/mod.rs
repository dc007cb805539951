//! Resilience: what a client does when calls fail, time out, or the peer
//! goes away.
//!
//! Each piece is usable alone:
//!
//! - [`Backoff`] — exponentially growing delays with [`Jitter`]; defaults
//!   are gRPC's connection backoff (1 s, ×1.6, ±20 %, 120 s cap), with the
//!   jitter applied after the cap so clients never synchronize on it.
//! - [`Retry`] — run an operation again on failure: a maximum number of
//!   attempts, an overall deadline, a predicate on the error, an
//!   idempotency rule (a request that may have reached the peer is replayed
//!   only when that is harmless), and a shared [`RetryBudget`] (gRPC's retry
//!   throttling, refilled by successes, or Finagle's windowed budget,
//!   refilled by time) so retries cannot grow into a storm.
//! - [`CircuitBreaker`] — stop calling a peer that keeps failing or is too
//!   slow, and probe it now and then (resilience4j's state machine).
//! - [`Reconnecting`] — one live connection made by your `connect` closure,
//!   re-made in the background with [`Backoff`] when it breaks; gRPC's
//!   connectivity states ([`ConnState`]), an `on_connect` hook, fail-fast or
//!   wait-for-ready calls.
//! - [`Session`] — ZooKeeper/Curator session semantics over a reconnecting
//!   connection: suspended, reconnected, or lost after the session timeout.
//! - [`Heartbeat`] — application-level pings that find half-open
//!   connections.
//! - [`Pool`] — a connection pool: bounded, fair, checked on checkout and
//!   return, expiring idle and old connections; a failed `create` never
//!   leaks its slot.
//!
//! Everything that waits does so on sylvan's clock, so tests can run it on
//! virtual time ([`time::pause`](crate::time::pause)) and seed the
//! randomness ([`Backoff::seed`]).
//!
//! # Examples
//!
//! ```
//! use std::io;
//! use std::time::Duration;
//! use sylvan::resilience::{Backoff, CircuitBreaker, Retry, RetryBudget};
//!
//! sylvan::time::pause();
//! let breaker = CircuitBreaker::new();
//! let policy = Retry::new()
//!     .max_attempts(4)
//!     .deadline(Duration::from_secs(5))
//!     .backoff(Backoff::new().initial(Duration::from_millis(50)))
//!     .budget(RetryBudget::new(10, 0.1));
//!
//! let mut failures = 2;
//! let reply: io::Result<&str> = policy
//!     .run(|attempt| {
//!         breaker
//!             .call(|| {
//!                 if failures > 0 {
//!                     failures -= 1;
//!                     return Err(io::Error::from(io::ErrorKind::ConnectionRefused));
//!                 }
//!                 attempt.mark_sent();
//!                 Ok("pong")
//!             })
//!             .map_err(io::Error::from)
//!     })
//!     .map_err(io::Error::from);
//! assert_eq!(reply.unwrap(), "pong");
//! ```

mod backoff;
mod breaker;
mod budget;
mod heartbeat;
mod pool;
mod reconnecting;
mod retry;
mod session;
mod window;

pub use backoff::{Backoff, Jitter};
pub use breaker::{
    BreakerError, BreakerMetrics, BreakerState, CircuitBreaker, CircuitBreakerBuilder, Permit,
};
pub use budget::RetryBudget;
pub use heartbeat::Heartbeat;
pub use pool::{Pool, PoolBuilder, PoolError, PoolState, Pooled};
pub use reconnecting::{CallError, ConnState, Reconnecting, ReconnectingBuilder};
pub use retry::{Attempt, Retry, RetryError, StopReason, is_transient, retry};
pub use session::{Session, SessionBuilder, SessionState};
