//! [`Request`]: the head of an HTTP request, its peer, and its body as a
//! streaming [`Read`].

use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::rc::Rc;

use super::body::BodySource;
use super::headers::{Headers, Version};
use super::parse::{Framing, Head};

/// An HTTP request as a handler sees it: method, target, version, headers,
/// the peer's address, and the body as a streaming [`Read`].
///
/// The body is read from the connection as the handler reads it (nothing is
/// buffered ahead), de-chunked, and limited to the server's
/// [`max_body_size`](super::Server::max_body_size). If the client sent
/// `Expect: 100-continue`, the `100 Continue` interim response goes out on
/// the first read, so a handler that refuses a request without reading its
/// body never receives it.
///
/// # Examples
///
/// ```
/// # use std::io::{Read, Write};
/// use sylvan::http::{Response, Server};
///
/// let server = Server::bind("127.0.0.1:0").unwrap().serve(|mut req| {
///     let mut body = String::new();
///     if let Err(e) = req.read_to_string(&mut body) {
///         return Response::text(format!("bad body: {e}")).with_status(400);
///     }
///     Response::text(format!(
///         "{} {} ({:?}) q={:?} from {}: {body}",
///         req.method(),
///         req.path(),
///         req.version(),
///         req.query(),
///         req.peer_addr().ip(),
///     ))
/// });
/// let mut c = sylvan::connect(server.local_addr()).unwrap();
/// c.write_all(b"POST /x?y=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi").unwrap();
/// let mut out = String::new();
/// c.read_to_string(&mut out).unwrap();
/// assert!(out.starts_with("HTTP/1.1 200 OK\r\n"));
/// assert!(out.ends_with("POST /x (Http11) q=Some(\"y=1\") from 127.0.0.1: hi"), "{out}");
/// ```
pub struct Request {
    head: Head,
    peer: SocketAddr,
    body: RequestBody,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("uri", &self.uri())
            .field("version", &self.version())
            .field("headers", &self.head.headers)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl Request {
    pub(crate) fn new(head: Head, peer: SocketAddr, body: RequestBody) -> Request {
        Request { head, peer, body }
    }

    /// The method, as sent (`"GET"`, `"POST"`, …; methods are case-sensitive).
    pub fn method(&self) -> &str {
        self.head.method()
    }

    /// The request target as sent: usually origin form, `/path?query`.
    pub fn uri(&self) -> &str {
        self.head.target()
    }

    /// The path part of the target, still percent-encoded (`"/a%20b"`); for
    /// an absolute-form target (`http://host/p`) the part after the
    /// authority; `"*"` for `OPTIONS *`.
    pub fn path(&self) -> &str {
        let t = self.uri();
        let t = match t.find("://") {
            Some(i) if !t.starts_with('/') => {
                let rest = &t[i + 3..];
                rest.find('/').map_or("/", |j| &rest[j..])
            }
            _ => t,
        };
        t.split(['?', '#']).next().unwrap_or(t)
    }

    /// The query string after `?`, if any, still percent-encoded.
    pub fn query(&self) -> Option<&str> {
        let t = self.uri();
        let q = &t[t.find('?')? + 1..];
        Some(q.split('#').next().unwrap_or(q))
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        &self.head.headers
    }

    /// The first value of header `name` (any case); see [`Headers::get`].
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.headers.get(name)
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The body length the client declared with `Content-Length` (`None`
    /// for a chunked body; `Some(0)` for none).
    pub fn content_length(&self) -> Option<u64> {
        match self.head.framing {
            Framing::None => Some(0),
            Framing::Length(n) => Some(n),
            Framing::Chunked => None,
        }
    }

    /// Whether the body is chunked (`Transfer-Encoding: chunked`).
    pub fn is_chunked(&self) -> bool {
        self.head.framing == Framing::Chunked
    }

    /// Whether the client sent `Expect: 100-continue`.
    pub fn expects_continue(&self) -> bool {
        self.head.expect_continue
    }

    /// The body, to read from or to move out.
    pub fn body(&mut self) -> &mut RequestBody {
        &mut self.body
    }

    /// Takes the body out, e.g. to stream it straight into a response
    /// (`Response::from_reader(req.into_body())` is an echo).
    pub fn into_body(self) -> RequestBody {
        self.body
    }
}

/// Reads the request body; see [`Request::body`].
impl Read for Request {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.body.read(buf)
    }
}

/// The body of a [`Request`], read as a stream from the connection.
///
/// Reads block the calling green thread (only) until data arrives, with
/// the server's per-I/O timeout (`ErrorKind::TimedOut`). A body that breaks
/// the chunked syntax fails with `InvalidData`; one that exceeds the
/// server's limit fails with `InvalidData` too and the server answers
/// `413` in place of the handler's response. End of the body is `Ok(0)`.
///
/// A body is read while its request is handled, from the handler's green
/// thread or any other of the hub — say one that feeds the response
/// streamed by [`Response::from_reader`](super::Response::from_reader).
/// Once the response has been sent, the server reads what is left (to
/// reuse the connection) and later reads fail; if a read is still parked
/// then, the server leaves the body to it and closes the connection after
/// the response instead. A read while the server is reading fails with
/// `ResourceBusy`.
///
/// # Examples
///
/// ```
/// # use std::io::{Read, Write};
/// use sylvan::http::{Response, Server};
///
/// // Echo the body back, streamed (chunked) without buffering it all.
/// let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::from_reader(req.into_body()));
/// let mut c = sylvan::connect(server.local_addr()).unwrap();
/// c.write_all(b"PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n").unwrap();
/// let mut out = String::new();
/// c.read_to_string(&mut out).unwrap();
/// assert!(out.ends_with("\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), "{out}");
/// ```
///
/// # Cancellation
///
/// A read parked when the green thread is killed or its deadline passes
/// returns that error (kind `Other`/`TimedOut`); the body is left
/// part-read and the server closes the connection after the response.
pub struct RequestBody {
    src: Option<Rc<dyn BodySource>>,
    seq: u64,
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field("empty", &self.src.is_none())
            .finish()
    }
}

impl RequestBody {
    pub(crate) fn empty() -> RequestBody {
        RequestBody { src: None, seq: 0 }
    }

    pub(crate) fn new(src: Rc<dyn BodySource>, seq: u64) -> RequestBody {
        RequestBody {
            src: Some(src),
            seq,
        }
    }
}

impl Read for RequestBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.src {
            None => Ok(0),
            Some(s) => s.read_body(self.seq, buf),
        }
    }
}
