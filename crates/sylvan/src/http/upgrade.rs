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
/// request), then read the socket. The server's per-I/O timeouts are
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
///         let (stream, early) = up.into_parts();
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
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded")
            .field("stream", &self.stream)
            .field("buffered", &(self.buf.len() - self.pos))
            .finish()
    }
}

impl Upgraded {
    pub(crate) fn new(stream: TcpStream, buf: Vec<u8>) -> Upgraded {
        let _ = stream.set_read_timeout(None);
        let _ = stream.set_write_timeout(None);
        Upgraded {
            stream,
            buf,
            pos: 0,
        }
    }

    /// The socket.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The client's address.
    ///
    /// # Errors
    ///
    /// As `getpeername(2)`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.peer_addr()
    }

    /// The socket and the bytes read from it but not yet consumed.
    pub fn into_parts(mut self) -> (TcpStream, Vec<u8>) {
        self.buf.drain(..self.pos);
        (self.stream, self.buf)
    }
}

/// # Cancellation
///
/// As [`TcpStream`]'s reads.
impl Read for Upgraded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.buf.len() {
            let n = (self.buf.len() - self.pos).min(buf.len());
            buf[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        (&self.stream).read(buf)
    }
}

/// # Cancellation
///
/// As [`TcpStream`]'s writes.
impl Write for Upgraded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.stream).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
