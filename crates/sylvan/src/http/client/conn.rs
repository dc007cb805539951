//! One client connection: the stream (plain TCP, or TLS later), a read
//! buffer, and the request writer and response-head reader over them.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use crate::http::parse::{ResponseHead, parse_response_head};
use crate::net::TcpStream;

/// The byte stream under a connection: plain TCP, or TLS (feature `tls`);
/// everything above reads and writes through this type only.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<crate::net::tls::TlsStream<rustls::ClientConnection>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Tcp(s) => s,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.get_ref(),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => {
                s.write_all(buf)?;
                s.flush()
            }
        }
    }
}

/// Initial size of a connection's read buffer.
const BUF: usize = 16 * 1024;

/// A connection, owned by one request at a time or idle in the pool.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// When it was connected, for the pool's maximum lifetime.
    pub(crate) created: Instant,
    /// Requests sent on it so far: more than one means it was reused.
    pub(crate) requests: u64,
    /// Bytes received since the current request was sent.
    received: u64,
}

/// A failed exchange, and whether it is the keep-alive race: the server
/// closed (or reset) the connection before sending any byte of the
/// response, so the request may never have been processed.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: io::Error,
    pub(crate) before_response: bool,
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Failure {
        Failure {
            error,
            before_response: false,
        }
    }
}

/// Errors that mean "the peer closed the connection", as opposed to a
/// timeout, a kill or a protocol error.
pub(crate) fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

impl Conn {
    pub(crate) fn new(stream: Stream, now: Instant) -> Conn {
        Conn {
            stream,
            buf: vec![0; BUF],
            pos: 0,
            end: 0,
            created: now,
            requests: 0,
            received: 0,
        }
    }

    /// Sets the per-read and per-write timeouts of the socket.
    pub(crate) fn set_timeouts(
        &self,
        read: Option<Duration>,
        write: Option<Duration>,
    ) -> io::Result<()> {
        let tcp = self.stream.tcp();
        tcp.set_read_timeout(read.filter(|d| !d.is_zero()))?;
        tcp.set_write_timeout(write.filter(|d| !d.is_zero()))
    }

    /// Whether an idle connection still looks usable: the server has
    /// neither closed it nor sent anything unasked. One non-blocking peek;
    /// never waits. This catches a connection the server closed a while
    /// ago, not one it closes just as the request goes out (that is the
    /// keep-alive race, handled by the retry).
    pub(crate) fn looks_alive(&self) -> bool {
        let tcp = self.stream.tcp();
        let mut b = [0u8; 1];
        match crate::timeout(Duration::ZERO, || tcp.peek(&mut b)) {
            // Nothing to read: still open.
            Err(_elapsed) => true,
            Ok(Ok(0)) => false,
            // Unasked bytes break HTTP framing on plain TCP; under TLS
            // they may be a session ticket, which rustls will read.
            Ok(Ok(_)) => !matches!(self.stream, Stream::Tcp(_)),
            Ok(Err(e)) => {
                matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) || crate::Cancelled::from_io(&e).is_some()
            }
        }
    }

    /// The TCP stream back, e.g. after a proxy's `CONNECT` answer; `None`
    /// for a TLS connection.
    pub(crate) fn into_tcp(self) -> Option<TcpStream> {
        match self.stream {
            Stream::Tcp(s) => Some(s),
            #[cfg(feature = "tls")]
            Stream::Tls(_) => None,
        }
    }

    /// Bytes received but not consumed.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at end of stream.
    pub(crate) fn fill(&mut self) -> io::Result<usize> {
        if self.end == self.buf.len() {
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.end, 0);
                self.end -= self.pos;
                self.pos = 0;
            } else {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..])?;
        self.end += n;
        self.received += n as u64;
        Ok(n)
    }

    /// Reads body bytes into `out`: buffered ones first, else straight
    /// from the stream (large reads skip the buffer).
    pub(crate) fn read_into(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.end {
            let n = out.len().min(self.end - self.pos);
            out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.consume(n);
            return Ok(n);
        }
        let n = self.stream.read(out)?;
        self.received += n as u64;
        Ok(n)
    }

    /// Writes bytes of the request; a closed connection is reported as
    /// the keep-alive race while no response byte has arrived.
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.stream.write_all(bytes).map_err(|error| Failure {
            before_response: is_closed(&error) && self.received == 0,
            error,
        })
    }

    /// Starts a request: counts it, and forgets bytes of earlier ones.
    pub(crate) fn begin(&mut self) {
        self.requests += 1;
        self.received = 0;
    }

    /// Reads the head of the final response, skipping interim 1xx ones
    /// (except 101).
    pub(crate) fn read_head(
        &mut self,
        max_head: usize,
        max_headers: usize,
    ) -> Result<ResponseHead, Failure> {
        self.read_head_or_continue(max_head, max_headers, false)
    }

    /// As [`read_head`](Self::read_head), but also returns a
    /// `100 Continue` when `want_continue` (other 1xx are skipped).
    pub(crate) fn read_head_or_continue(
        &mut self,
        max_head: usize,
        max_headers: usize,
        want_continue: bool,
    ) -> Result<ResponseHead, Failure> {
        let mut searched: usize = 0;
        loop {
            let data = self.buffered();
            // Parse only once the blank line that ends a head has arrived.
            let from = searched.saturating_sub(3);
            let ended = data[from..].windows(2).any(|w| w == b"\n\n")
                || data[from..].windows(3).any(|w| w == b"\n\r\n");
            if ended || data.len() > max_head {
                match parse_response_head(data, max_head, max_headers) {
                    Ok(Some((head, n))) => {
                        self.consume(n);
                        searched = 0;
                        if want_continue && head.status == 100 {
                            return Ok(head);
                        }
                        if (100..200).contains(&head.status) && head.status != 101 {
                            continue;
                        }
                        return Ok(head);
                    }
                    Ok(None) => {}
                    Err(m) => {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, m).into());
                    }
                }
            }
            searched = self.end - self.pos;
            match self.fill() {
                Ok(0) if self.received == 0 => {
                    return Err(Failure {
                        error: io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the server closed the connection before sending a response",
                        ),
                        before_response: true,
                    });
                }
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection in the middle of the response head",
                    )
                    .into());
                }
                Ok(_) => {}
                Err(error) => {
                    return Err(Failure {
                        before_response: is_closed(&error) && self.received == 0,
                        error,
                    });
                }
            }
        }
    }
}
