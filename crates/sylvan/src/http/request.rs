//! [`Request`]: the head of an HTTP request, its peer, and its body as a
//! streaming [`Read`].

use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::rc::Rc;

use super::body::BodySource;
use super::parse::{Framing, Head};

/// The HTTP version of a request.
///
/// # Examples
///
/// ```
/// use sylvan::http::Version;
///
/// assert_eq!(Version::Http11.to_string(), "HTTP/1.1");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Version {
    /// HTTP/1.0: the connection closes after the response unless the client
    /// asked for `Connection: keep-alive`; no chunked bodies.
    Http10,
    /// HTTP/1.1: persistent connections, chunked bodies.
    Http11,
}

impl Version {
    /// `"HTTP/1.0"` or `"HTTP/1.1"`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan::http::Version::Http10.as_str(), "HTTP/1.0");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Byte offsets of one header's name and value in the head buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderIdx {
    pub(crate) ns: u32,
    pub(crate) ne: u32,
    pub(crate) vs: u32,
    pub(crate) ve: u32,
}

/// The header fields of a request, in the order received; names compare
/// case-insensitively.
///
/// The bytes are those the client sent (the head is copied once out of the
/// connection's buffer; names and values are slices of that copy).
///
/// # Examples
///
/// ```
/// # use std::io::{Read, Write};
/// use sylvan::http::{Response, Server};
///
/// let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| {
///     let h = req.headers();
///     assert_eq!(h.get("ACCEPT"), Some("text/plain"));
///     assert_eq!(h.get_all("x-tag").collect::<Vec<_>>(), ["a", "b"]);
///     assert!(h.contains("host"));
///     Response::text(format!("{} fields", h.len()))
/// });
/// # let mut c = sylvan::connect(server.local_addr()).unwrap();
/// # c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\nX-Tag: a\r\nX-Tag: b\r\nConnection: close\r\n\r\n").unwrap();
/// # let mut out = String::new();
/// # c.read_to_string(&mut out).unwrap();
/// # assert!(out.ends_with("5 fields"), "{out}");
/// ```
pub struct Headers {
    buf: Box<[u8]>,
    index: Vec<HeaderIdx>,
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.iter_bytes()
                    .map(|(n, v)| (n, String::from_utf8_lossy(v))),
            )
            .finish()
    }
}

impl Headers {
    pub(crate) fn new(buf: Box<[u8]>, index: Vec<HeaderIdx>) -> Headers {
        Headers { buf, index }
    }

    /// A str of the head buffer; the parser checked it is ASCII.
    pub(crate) fn str_at(&self, (s, e): (u32, u32)) -> &str {
        std::str::from_utf8(&self.buf[s as usize..e as usize]).unwrap_or("")
    }

    fn name(&self, i: &HeaderIdx) -> &str {
        self.str_at((i.ns, i.ne))
    }

    fn value(&self, i: &HeaderIdx) -> &[u8] {
        &self.buf[i.vs as usize..i.ve as usize]
    }

    /// The value of the first field named `name` (any case), if there is
    /// one and it is valid UTF-8 (see [`get_bytes`](Self::get_bytes)).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The raw value of the first field named `name` (any case).
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.index
            .iter()
            .find(|i| self.name(i).eq_ignore_ascii_case(name))
            .map(|i| self.value(i))
    }

    /// The values of every field named `name` (any case) that are valid
    /// UTF-8, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.index
            .iter()
            .filter(move |i| self.name(i).eq_ignore_ascii_case(name))
            .filter_map(|i| std::str::from_utf8(self.value(i)).ok())
    }

    /// Whether a field named `name` (any case) is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get_bytes(name).is_some()
    }

    /// Every field as `(name, raw value)`, in the order received.
    pub fn iter_bytes(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.index.iter().map(|i| (self.name(i), self.value(i)))
    }

    /// Every field whose value is valid UTF-8 as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter_bytes()
            .filter_map(|(n, v)| Some((n, std::str::from_utf8(v).ok()?)))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Whether the comma-separated list in the fields named `name`
    /// contains `token` (any case), e.g. `Connection: keep-alive, Upgrade`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.index
            .iter()
            .filter(|i| self.name(i).eq_ignore_ascii_case(name))
            .any(|i| {
                super::parse::list(self.value(i)).any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
            })
    }
}

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
