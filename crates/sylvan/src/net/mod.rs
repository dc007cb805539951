//! Green networking: sockets whose blocking calls park only the calling
//! green thread, with std's names and timeouts.
//!
//! Every operation goes through one retry primitive: try the non-blocking
//! call; on `WouldBlock`, park on the socket's readiness; retry. So the same
//! rules hold everywhere:
//!
//! - per-call timeouts (`set_read_timeout`, `set_write_timeout`,
//!   `connect_timeout`) fail with `io::ErrorKind::TimedOut`, as std says;
//! - every enclosing [`timeout`](crate::timeout)/[`deadline`](crate::deadline)
//!   scope applies, and its expiry also comes back as `TimedOut`;
//! - a kill comes back as `io::ErrorKind::Other` wrapping
//!   [`Cancelled::Killed`](crate::Cancelled) (never `Interrupted`, which
//!   `read_exact` and `write_all` would retry);
//! - a call that can complete without waiting completes, even in a killed
//!   green thread; only waiting is refused.
//!
//! Host names are always resolved on the thread pool ([`lookup_host`]),
//! never on the hub.

mod addr;
mod connector;
mod serve;
pub(crate) mod tcp;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;
mod udp;
mod unix;
mod wait;

pub use addr::{DEFAULT_LOOKUP_TIMEOUT, ToSocketAddrs, lookup_host, lookup_host_timeout};
pub use connector::Connector;
pub use serve::{ServeOptions, ServerHandle, StopReport, serve};
pub use tcp::{Incoming, ListenOptions, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};
pub use wait::{wait_readable, wait_readable_timeout, wait_writable, wait_writable_timeout};

/// Opens a TCP listener the way a server wants it: `SO_REUSEADDR` and a
/// backlog of 1024 (use [`ListenOptions`] to change either); Eventlet's
/// `listen`.
///
/// # Examples
///
/// ```
/// let l = sylvan::listen("127.0.0.1:0").unwrap();
/// assert!(l.local_addr().unwrap().ip().is_loopback());
/// ```
///
/// # Errors
///
/// As `bind(2)`/`listen(2)`, with the address in the message (e.g.
/// `AddrInUse`).
///
/// # Cancellation
///
/// Blocks only to resolve a host name (on the thread pool); if the
/// green thread is killed or its deadline passes then, returns that
/// error and nothing is bound or connected.
#[track_caller]
pub fn listen(addr: impl ToSocketAddrs) -> std::io::Result<TcpListener> {
    ListenOptions::new().bind(addr)
}

/// Connects a TCP stream; Eventlet's `connect`. Same as
/// [`TcpStream::connect`]; use [`Connector`] for timeouts and options.
///
/// # Examples
///
/// ```
/// let l = sylvan::listen("127.0.0.1:0").unwrap();
/// let s = sylvan::connect(l.local_addr().unwrap()).unwrap();
/// assert!(s.peer_addr().is_ok());
/// ```
///
/// # Cancellation
///
/// As [`TcpStream::connect`].
#[track_caller]
pub fn connect(addr: impl ToSocketAddrs) -> std::io::Result<TcpStream> {
    TcpStream::connect(addr)
}
