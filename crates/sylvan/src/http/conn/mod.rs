//! One HTTP/1.x connection: read a head, run the handler, write the
//! response, repeat while the connection may stay open.
//!
//! The engine is generic over [`Transport`], so the same code serves green
//! TCP streams and, for the fuzz target and the split-read tests, an
//! in-memory stream. It is split by role, as hyper splits `proto/h1`:
//!
//! - [`io`]: the buffered connection state ([`Shared`]) and its read and
//!   write guards;
//! - [`read`]: request heads, request bodies, draining and lingering;
//! - [`write`]: response heads and bodies;
//! - [`keep_alive`]: whether a connection is reused after an exchange, a
//!   pure function of the exchange;
//! - [`dispatch`]: the loop that ties them together around the handler.

use std::cell::Cell;
use std::net::Shutdown;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::parse::Limits;
use super::upgrade::UpgradedIo;
use crate::net::TcpStream;
use crate::net::tcp::ReadAttempt;

mod dispatch;
mod io;
mod keep_alive;
mod read;
#[cfg(test)]
mod tests;
mod write;

pub(crate) use dispatch::serve;
pub(crate) use io::Shared;

/// What the connection engine needs from a byte stream.
pub(crate) trait Transport: 'static {
    fn read(&self, buf: &mut [u8]) -> std::io::Result<usize>;
    /// One read whose buffer `attempt` picks at each try: it is handed
    /// the read and runs it into a buffer of `len` bytes. A transport that
    /// parks between tries (green TCP) calls `attempt` again after each
    /// park, so the caller holds no buffer while the connection waits; by
    /// default the single try is a plain [`read`](Self::read), which does
    /// its own waiting.
    fn read_attempts(&self, len: usize, attempt: &mut ReadAttempt<'_>) -> std::io::Result<usize> {
        let _ = len;
        attempt(&mut |buf| self.read(buf))
    }
    fn write(&self, buf: &[u8]) -> std::io::Result<usize>;
    /// The timeout of the following reads.
    fn set_read_timeout(&self, t: Option<Duration>);
    fn shutdown(&self, how: Shutdown);
    fn now(&self) -> Instant;
    /// The stream under this transport, for upgrades.
    fn into_upgraded(self) -> Option<UpgradedIo>;
}

impl Transport for TcpStream {
    fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::io::Read::read(&mut &*self, buf)
    }

    fn read_attempts(&self, len: usize, attempt: &mut ReadAttempt<'_>) -> std::io::Result<usize> {
        TcpStream::read_attempts(self, len, attempt)
    }

    fn write(&self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::Write::write(&mut &*self, buf)
    }

    fn set_read_timeout(&self, t: Option<Duration>) {
        let _ = TcpStream::set_read_timeout(self, t.map(|d| d.max(Duration::from_millis(1))));
    }

    fn shutdown(&self, how: Shutdown) {
        let _ = TcpStream::shutdown(self, how);
    }

    fn now(&self) -> Instant {
        crate::time::now()
    }

    fn into_upgraded(self) -> Option<UpgradedIo> {
        Some(UpgradedIo::Tcp(self))
    }
}

/// Settings of a connection; built by [`Server`](super::Server).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) limits: Limits,
    pub(crate) header_timeout: Duration,
    pub(crate) keep_alive_timeout: Duration,
    pub(crate) io_timeout: Option<Duration>,
    pub(crate) keep_alive: bool,
    pub(crate) linger: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            header_timeout: Duration::from_secs(20),
            keep_alive_timeout: Duration::from_secs(60),
            io_timeout: Some(Duration::from_secs(60)),
            keep_alive: true,
            linger: Duration::from_secs(1),
        }
    }
}

/// What the server's stop needs to see of a connection.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    /// Waiting for the first byte of a request.
    pub(crate) idle: Cell<bool>,
    /// The server is stopping: finish the request in flight, then close.
    pub(crate) draining: Rc<Cell<bool>>,
}

impl ConnState {
    pub(super) fn draining(&self) -> bool {
        self.draining.get()
    }
}
