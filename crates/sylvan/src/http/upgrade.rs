//! [`Upgraded`]: the connection after a protocol switch.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

use crate::net::TcpStream;

/// A connection handed over by the server after an upgrade response; see
/// [`Response::on_upgrade`](super::Response::on_upgrade).
///
/// Reads first return the bytes the server had already read past the
/// request head (a client may send its first frames right after the
/// request), then read the socket — through TLS when the server serves
/// HTTPS ([`is_tls`](Self::is_tls)). The server's per-I/O timeouts are
/// cleared; set your own on [`stream`](Self::stream).
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use sylvan::http::{Response, Server};
///
/// let server = Server::bind("127.0.0.1:0").unwrap().serve(|_req| {
///     Response::new(101).header("Upgrade", "x").on_upgrade(|up| {
///         let (stream, early) = up.into_parts().unwrap(); // plain HTTP: a TcpStream
///         let _ = (&stream).write_all(&early); // echo the early bytes once
///     })
/// });
/// let mut c = sylvan::connect(server.local_addr()).unwrap();
/// c.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nearly").unwrap();
/// let mut out = Vec::new();
/// c.read_to_end(&mut out).unwrap();
/// assert!(out.ends_with(b"\r\n\r\nearly"));
/// ```
pub struct Upgraded {
    io: UpgradedIo,
    buf: Vec<u8>,
    pos: usize,
}

/// The stream of an upgraded connection.
#[derive(Debug)]
pub(crate) enum UpgradedIo {
    Tcp(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<crate::net::tls::SharedTls>),
}

impl UpgradedIo {
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            UpgradedIo::Tcp(s) => s,
            #[cfg(feature = "tls")]
            UpgradedIo::Tls(s) => s.tcp(),
        }
    }
}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded")
            .field("stream", self.io.tcp())
            .field("tls", &self.is_tls())
            .field("buffered", &(self.buf.len() - self.pos))
            .finish()
    }
}

impl Upgraded {
    pub(crate) fn new(io: UpgradedIo, buf: Vec<u8>) -> Upgraded {
        let _ = io.tcp().set_read_timeout(None);
        let _ = io.tcp().set_write_timeout(None);
        Upgraded { io, buf, pos: 0 }
    }

    /// The socket (under TLS, the TCP stream the TLS records travel on:
    /// for timeouts and addresses, not for reading or writing).
    pub fn stream(&self) -> &TcpStream {
        self.io.tcp()
    }

    /// Whether the connection is TLS (the server serves HTTPS).
    pub fn is_tls(&self) -> bool {
        !matches!(self.io, UpgradedIo::Tcp(_))
    }

    /// The client's address.
    ///
    /// # Errors
    ///
    /// As `getpeername(2)`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.tcp().peer_addr()
    }

    /// The socket and the bytes read from it but not yet consumed.
    ///
    /// # Errors
    ///
    /// `Unsupported` for a TLS connection: its bytes are encrypted on the
    /// socket; read and write the `Upgraded` itself instead.
    pub fn into_parts(self) -> io::Result<(TcpStream, Vec<u8>)> {
        match self.into_io() {
            (UpgradedIo::Tcp(s), rest) => Ok((s, rest)),
            #[cfg(feature = "tls")]
            (UpgradedIo::Tls(_), _) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "an upgraded TLS connection has no plain socket: read and write the Upgraded",
            )),
        }
    }

    /// The stream and the bytes read from it but not yet consumed.
    pub(crate) fn into_io(mut self) -> (UpgradedIo, Vec<u8>) {
        self.buf.drain(..self.pos);
        (self.io, self.buf)
    }
}

/// # Cancellation
///
/// As [`TcpStream`]'s reads (a TLS connection is unusable after a
/// cancelled read).
impl Read for Upgraded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.buf.len() {
            let n = (self.buf.len() - self.pos).min(buf.len());
            buf[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        match &self.io {
            UpgradedIo::Tcp(s) => (&*s).read(buf),
            #[cfg(feature = "tls")]
            UpgradedIo::Tls(s) => s.read(buf),
        }
    }
}

/// # Cancellation
///
/// As [`TcpStream`]'s writes.
impl Write for Upgraded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.io {
            UpgradedIo::Tcp(s) => (&*s).write(buf),
            #[cfg(feature = "tls")]
            UpgradedIo::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
