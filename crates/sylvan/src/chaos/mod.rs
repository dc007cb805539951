//! A fault-injecting TCP proxy for tests: [`ChaosProxy`] and its
//! [`Toxic`]s, after Shopify's [Toxiproxy](https://github.com/Shopify/toxiproxy).
//!
//! Put a `ChaosProxy` between a client and a server, point the client at
//! the proxy, and make the network misbehave on purpose: add latency, cap
//! the bandwidth, cut connections after N bytes, blackhole them, reset
//! them, slice writes into small reads, leave a connection half-open, or
//! take the whole proxy down and bring it back. Then check that the client
//! copes — times out, reconnects, never loses or duplicates a request.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use sylvan::chaos::{ChaosProxy, Direction, Toxic};
//!
//! # fn main() -> std::io::Result<()> {
//! let server = sylvan::serve(sylvan::listen("127.0.0.1:0")?, |c, _| {
//!     std::io::copy(&mut &c, &mut &c).map(|_| ()) // echo
//! });
//! let proxy = ChaosProxy::start("127.0.0.1:0", server.local_addr().unwrap())?;
//! let mut c = sylvan::connect(proxy.local_addr())?;
//!
//! // The server's replies stop arriving; TCP says nothing.
//! proxy.add_toxic("mute", Toxic::HalfOpen, Direction::Downstream, 1.0)?;
//! c.set_read_timeout(Some(Duration::from_millis(50)))?;
//! c.write_all(b"ping")?;
//! let err = c.read(&mut [0; 4]).unwrap_err();
//! assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
//!
//! // Down: open connections are closed and new ones refused.
//! proxy.set_enabled(false)?;
//! assert!(sylvan::connect(proxy.local_addr()).is_err());
//! proxy.reset()?; // no toxics, up again
//! let mut c = sylvan::connect(proxy.local_addr())?;
//! c.write_all(b"pong")?;
//! let mut back = [0; 4];
//! c.read_exact(&mut back)?;
//! assert_eq!(&back, b"pong");
//! # drop(c);
//! # proxy.stop();
//! # server.stop(Duration::from_secs(1));
//! # Ok(())
//! # }
//! ```
//!
//! # The model
//!
//! Each accepted connection is connected to the upstream server (a client
//! whose server can't be reached is closed at once, and counted in
//! [`ProxyStats::upstream_failures`]). Then each direction —
//! [`Upstream`](Direction::Upstream), client to server, and
//! [`Downstream`](Direction::Downstream), server to client — is pumped by
//! green threads of the proxy's hub: one reads chunks and stamps them with
//! the time they arrived, one runs them through that direction's toxics, in
//! the order the toxics were added, and writes them out. Byte order is
//! always kept. A toxic's delays count from when the proxy read the bytes,
//! so latency does not cut throughput. The proxy forwards a half-close
//! (FIN) in one direction without ending the other.
//!
//! - **Toxicity.** Each toxic applies to a connection with probability
//!   `toxicity`, drawn once per connection (when it opens, or when the toxic
//!   is added or its toxicity changed). Seed the draws with
//!   [`ProxyBuilder::seed`].
//! - **Changes at run time** apply to open connections: the proxy wakes
//!   their pumps, which rebuild their chains, keeping the state of toxics
//!   that stay. Bytes already read keep the schedule they were given (and
//!   an armed `reset_peer` still fires).
//! - **Time** is sylvan's clock ([`time::now`](crate::time::now)): under
//!   [`time::pause`](crate::time::pause) the toxics' delays and timeouts run
//!   on virtual time, while the bytes move over real sockets.
//! - **Closing.** A toxic (or the proxy) closes a connection with a FIN to
//!   both peers; `reset_peer` and a reset received from one peer make it an
//!   RST to both. Bytes the proxy has not read yet are discarded, and the
//!   kernel answers the close of a socket with unread bytes with an RST, so
//!   a peer that was still sending may see a reset rather than an EOF.
//!
//! # Driving it by name
//!
//! Proxies and toxics have names, and toxics can be read and built from
//! Toxiproxy's type and attribute names ([`Toxic::from_attributes`],
//! [`Toxic::attributes`], [`ChaosProxy::update_toxic`]). A [`Registry`]
//! holds a set of named proxies with Toxiproxy's semantics (create,
//! update, populate, reset), and `chaos::api` (feature `chaos-api`) serves
//! Toxiproxy's HTTP API over it, so Toxiproxy's clients drive sylvan's
//! proxies unchanged; `sylvan chaos` is that server on the command line.

#[cfg(feature = "chaos-api")]
#[cfg_attr(docsrs, doc(cfg(feature = "chaos-api")))]
pub mod api;
mod error;
mod link;
mod proxy;
mod pump;
mod registry;
mod rng;
mod shared;
mod toxic;

pub use error::ChaosError;
pub use proxy::{ChaosProxy, ProxyBuilder, ProxyStats};
pub use registry::{DEFAULT_LISTEN, ProxyConfig, ProxyState, ProxyUpdate, Registry, RegistryError};
pub use toxic::{Direction, Toxic, ToxicInfo};
