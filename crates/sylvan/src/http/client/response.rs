//! [`ClientResponse`]: status and headers, and the body streamed from the
//! connection ([`ResponseBody`]), which goes back to the pool once read to
//! its end.

use std::fmt;
use std::io::{self, Read};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::Inner;
use super::conn::Conn;
use super::pool::Key;
use super::url::Url;
use crate::Cancelled;
use crate::http::body::ChunkedDecoder;
use crate::http::parse::{ResponseFraming, ResponseHead};
use crate::http::{Headers, Version};

/// Largest chunked trailer section accepted.
const MAX_TRAILER: usize = 16 * 1024;

/// The whole-request deadline and the timeout it came from.
pub(crate) type Deadline = Option<(Instant, Duration)>;

/// Runs `f` under the request's deadline; its expiry is a `TimedOut`
/// error that says it was the whole-request timeout.
pub(crate) fn within<R>(deadline: Deadline, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
    match deadline {
        None => f(),
        Some((at, total)) => match crate::deadline(at, f) {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the request's timeout of {total:?} passed"),
            )),
        },
    }
}

/// Prefixes `e` with what was being done, keeping its kind; a
/// [`Cancelled`] error is passed through as is, so that
/// [`Cancelled::from_io`] still finds it.
pub(crate) fn context(e: io::Error, what: impl fmt::Display) -> io::Error {
    if Cancelled::from_io(&e).is_some() {
        return e;
    }
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[derive(Debug)]
enum State {
    Length(u64),
    Chunked(Box<ChunkedDecoder>),
    Close,
    /// Read to its end (or there was none).
    Done,
    /// A read failed; the connection is gone.
    Failed,
}

/// The body of a [`ClientResponse`], streamed from its connection.
///
/// Reads park only the calling green thread, with the client's per-read
/// timeout and the request's whole timeout (both `ErrorKind::TimedOut`).
/// `Content-Length`, chunked and read-until-close bodies are all read to
/// `Ok(0)` at their end; a body cut short is `UnexpectedEof`, broken
/// chunked syntax `InvalidData`.
///
/// Once the body has been read to its end, the connection goes back to
/// the client's pool (if the server allows keep-alive). Dropping the body
/// before that closes the connection: it is never reused with unread
/// bytes in it.
///
/// # Examples
///
/// ```
/// use std::io::Read;
/// use sylvan::http::{Client, Response, Server};
///
/// let server = Server::bind("127.0.0.1:0").unwrap()
///     .serve(|_| Response::from_reader(std::io::repeat(b'x').take(100_000)));
/// let url = format!("http://{}/", server.local_addr());
/// let mut body = Client::new().get(&url).send().unwrap().into_reader();
/// let mut total = 0;
/// let mut buf = [0; 4096];
/// loop {
///     match body.read(&mut buf).unwrap() {
///         0 => break,
///         n => total += n,
///     }
/// }
/// assert_eq!(total, 100_000);
/// ```
///
/// # Cancellation
///
/// A read parked when the green thread is killed or a deadline passes
/// returns that error (`Other` wrapping [`Cancelled::Killed`], or
/// `TimedOut`); the connection is closed, never returned to the pool, and
/// later reads fail.
pub struct ResponseBody {
    reader: Reader,
}

/// The body as it arrives: framing decoded, content coding not.
pub(crate) struct RawBody {
    conn: Option<Conn>,
    state: State,
    keep_alive: bool,
    key: Key,
    client: Rc<Inner>,
    deadline: Deadline,
    url: Url,
}

/// The raw body, or a decoder over it.
#[allow(clippy::large_enum_variant)] // the common case stays unboxed
enum Reader {
    Raw(RawBody),
    #[cfg(feature = "gzip")]
    Gzip(Box<flate2::read::MultiGzDecoder<RawBody>>),
    #[cfg(feature = "gzip")]
    Deflate(Box<flate2::read::ZlibDecoder<RawBody>>),
}

impl ResponseBody {
    fn raw(&self) -> &RawBody {
        match &self.reader {
            Reader::Raw(r) => r,
            #[cfg(feature = "gzip")]
            Reader::Gzip(d) => d.get_ref(),
            #[cfg(feature = "gzip")]
            Reader::Deflate(d) => d.get_ref(),
        }
    }

    fn raw_mut(&mut self) -> &mut RawBody {
        match &mut self.reader {
            Reader::Raw(r) => r,
            #[cfg(feature = "gzip")]
            Reader::Gzip(d) => d.get_mut(),
            #[cfg(feature = "gzip")]
            Reader::Deflate(d) => d.get_mut(),
        }
    }

    /// The content coding being decoded, if any.
    fn coding(&self) -> Option<&'static str> {
        match &self.reader {
            Reader::Raw(_) => None,
            #[cfg(feature = "gzip")]
            Reader::Gzip(_) => Some("gzip"),
            #[cfg(feature = "gzip")]
            Reader::Deflate(_) => Some("deflate"),
        }
    }

    pub(crate) fn discard(&mut self, max: usize) {
        self.raw_mut().discard(max);
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = self.raw();
        f.debug_struct("ResponseBody")
            .field("url", &raw.url)
            .field("state", &raw.state)
            .field("keep_alive", &raw.keep_alive)
            .field("decoding", &self.coding())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RawBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawBody")
            .field("url", &self.url)
            .field("state", &self.state)
            .field("keep_alive", &self.keep_alive)
            .finish_non_exhaustive()
    }
}

impl RawBody {
    fn finish(&mut self) {
        self.state = State::Done;
        if let Some(conn) = self.conn.take() {
            if self.keep_alive && conn.buffered().is_empty() {
                self.client
                    .pool
                    .checkin(self.key.clone(), conn, crate::time::now());
            }
        }
    }

    fn step(conn: &mut Conn, state: &mut State, out: &mut [u8]) -> io::Result<(usize, bool)> {
        match state {
            State::Done | State::Failed => Ok((0, true)),
            State::Length(rem) => {
                let want = out.len().min(usize::try_from(*rem).unwrap_or(usize::MAX));
                let n = conn.read_into(&mut out[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the server closed the connection {rem} bytes before the end of the body"
                        ),
                    ));
                }
                *rem -= n as u64;
                Ok((n, *rem == 0))
            }
            State::Chunked(dec) => loop {
                if conn.buffered().is_empty() && conn.fill()? == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection inside a chunked body",
                    ));
                }
                let (c, p) = dec.decode(conn.buffered(), out).map_err(|e| {
                    let e = e.into_io();
                    io::Error::new(e.kind(), format!("malformed chunked body: {e}"))
                })?;
                conn.consume(c);
                if dec.is_done() || p > 0 {
                    return Ok((p, dec.is_done()));
                }
            },
            State::Close => {
                let n = conn.read_into(out)?;
                Ok((n, n == 0))
            }
        }
    }

    /// Reads and drops up to `max` bytes, so a small unwanted body (a
    /// redirect's) does not cost the connection.
    pub(crate) fn discard(&mut self, max: usize) {
        let mut buf = [0u8; 4096];
        let mut left = max;
        while left > 0 && self.conn.is_some() {
            let want = left.min(buf.len());
            match self.read(&mut buf[..want]) {
                Ok(0) | Err(_) => break,
                Ok(n) => left -= n,
            }
        }
    }
}

impl Read for ResponseBody {
    /// # Cancellation
    ///
    /// See the type.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match &mut self.reader {
            Reader::Raw(r) => r.read(out),
            #[cfg(feature = "gzip")]
            Reader::Gzip(d) => decoded(d.read(out), d.get_mut(), "gzip"),
            #[cfg(feature = "gzip")]
            Reader::Deflate(d) => decoded(d.read(out), d.get_mut(), "deflate"),
        }
    }
}

/// A decoder's result: at its end, the raw body is read to its end too
/// (a chunked body's last chunk, so that the connection is pooled); a
/// decoding error closes the connection and says what failed.
#[cfg(feature = "gzip")]
fn decoded(r: io::Result<usize>, raw: &mut RawBody, coding: &str) -> io::Result<usize> {
    match r {
        Ok(0) => {
            raw.discard(DISCARD_AFTER_DECODED);
            if raw.conn.is_some() {
                // Bytes after the end of the compressed stream.
                raw.conn = None;
                raw.state = State::Failed;
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the {coding} body of {} has data after its end", raw.url),
                ));
            }
            Ok(0)
        }
        Ok(n) => Ok(n),
        // The raw body's own error, already said.
        Err(e) if matches!(raw.state, State::Failed) || Cancelled::from_io(&e).is_some() => Err(e),
        Err(e) => {
            raw.conn = None;
            raw.state = State::Failed;
            Err(io::Error::new(
                e.kind(),
                format!("decoding the {coding} body of {}: {e}", raw.url),
            ))
        }
    }
}

/// Most raw bytes read after a compressed stream's end (a chunked body's
/// terminator).
#[cfg(feature = "gzip")]
const DISCARD_AFTER_DECODED: usize = 64;

impl Read for RawBody {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if matches!(self.state, State::Failed) {
            return Err(io::Error::other(format!(
                "reading the body of {}: an earlier read failed and closed the connection",
                self.url
            )));
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(0);
        };
        let state = &mut self.state;
        match within(self.deadline, || Self::step(conn, state, out)) {
            Ok((n, done)) => {
                if done {
                    self.finish();
                }
                Ok(n)
            }
            Err(e) => {
                self.conn = None;
                self.state = State::Failed;
                Err(context(e, format_args!("reading the body of {}", self.url)))
            }
        }
    }
}

/// A response from [`RequestBuilder::send`](super::RequestBuilder::send):
/// status, headers, and the body as a streaming [`Read`].
///
/// Redirects have been followed (see [`url`](Self::url) for where it
/// ended). Read the body with [`Read`], all at once with
/// [`bytes`](Self::bytes)/[`text`](Self::text) (bounded by the client's
/// [`max_body_size`](super::ClientBuilder::max_body_size)), or move it out
/// with [`into_reader`](Self::into_reader). The connection returns to the
/// pool when the body has been read to its end; a response dropped
/// before that closes it.
///
/// # Examples
///
/// ```
/// use sylvan::http::{Client, Response, Server};
///
/// let server = Server::bind("127.0.0.1:0").unwrap()
///     .serve(|_| Response::text("hello").header("X-Kind", "greeting"));
/// let resp = Client::new().get(format!("http://{}/", server.local_addr())).send().unwrap();
/// assert_eq!(resp.status(), 200);
/// assert_eq!(resp.reason(), "OK");
/// assert_eq!(resp.header("x-kind"), Some("greeting"));
/// assert_eq!(resp.content_length(), Some(5));
/// assert_eq!(resp.text().unwrap(), "hello");
/// ```
pub struct ClientResponse {
    status: u16,
    reason: String,
    version: Version,
    headers: Headers,
    length: Option<u64>,
    body: ResponseBody,
}

impl fmt::Debug for ClientResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientResponse")
            .field("url", &self.body.raw().url)
            .field("status", &self.status)
            .field("version", &self.version)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl ClientResponse {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        head: ResponseHead,
        framing: ResponseFraming,
        keep_alive: bool,
        conn: Conn,
        key: Key,
        client: Rc<Inner>,
        deadline: Deadline,
        url: Url,
        decode: bool,
    ) -> ClientResponse {
        let (state, length) = match framing {
            ResponseFraming::Empty => (State::Done, Some(0)),
            ResponseFraming::Length(0) => (State::Done, Some(0)),
            ResponseFraming::Length(n) => (State::Length(n), Some(n)),
            ResponseFraming::Chunked => (
                State::Chunked(Box::new(ChunkedDecoder::new(MAX_TRAILER))),
                None,
            ),
            ResponseFraming::Close => (State::Close, None),
        };
        let done = matches!(state, State::Done);
        let mut raw = RawBody {
            conn: Some(conn),
            state,
            keep_alive,
            key,
            client,
            deadline,
            url,
        };
        if done {
            raw.finish();
        }
        let coding = match head.headers.get("content-encoding") {
            Some(c) if decode && !done => c.trim(),
            _ => "",
        };
        let (reader, length) = match coding {
            #[cfg(feature = "gzip")]
            c if c.eq_ignore_ascii_case("gzip") || c.eq_ignore_ascii_case("x-gzip") => (
                Reader::Gzip(Box::new(flate2::read::MultiGzDecoder::new(raw))),
                None,
            ),
            #[cfg(feature = "gzip")]
            c if c.eq_ignore_ascii_case("deflate") => (
                Reader::Deflate(Box::new(flate2::read::ZlibDecoder::new(raw))),
                None,
            ),
            _ => (Reader::Raw(raw), length),
        };
        ClientResponse {
            status: head.status,
            reason: head.reason,
            version: head.version,
            headers: head.headers,
            length,
            body: ResponseBody { reader },
        }
    }

    /// The status code, e.g. `200`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sylvan::http::{Client, Response, Server};
    /// # let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::text(req.method().to_string()));
    /// # let url = format!("http://{}/", server.local_addr());
    /// assert_eq!(Client::new().get(&url).send().unwrap().status(), 200);
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase the server sent (`"OK"`), possibly empty.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sylvan::http::{Client, Response, Server};
    /// # let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::text(req.method().to_string()));
    /// # let url = format!("http://{}/", server.local_addr());
    /// assert_eq!(Client::new().get(&url).send().unwrap().reason(), "OK");
    /// ```
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The HTTP version of the response.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sylvan::http::{Client, Response, Server};
    /// # let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::text(req.method().to_string()));
    /// # let url = format!("http://{}/", server.local_addr());
    /// let resp = Client::new().get(&url).send().unwrap();
    /// assert_eq!(resp.version(), sylvan::http::Version::Http11);
    /// ```
    pub fn version(&self) -> Version {
        self.version
    }

    /// The header fields, in the order received.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sylvan::http::{Client, Response, Server};
    /// # let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::text(req.method().to_string()));
    /// # let url = format!("http://{}/", server.local_addr());
    /// let resp = Client::new().get(&url).send().unwrap();
    /// assert!(resp.headers().contains("date"));
    /// assert_eq!(resp.headers().get("Content-Length"), Some("3"));
    /// ```
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The first value of header `name` (any case); see [`Headers::get`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use sylvan::http::{Client, Response, Server};
    /// # let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::text(req.method().to_string()));
    /// # let url = format!("http://{}/", server.local_addr());
    /// let resp = Client::new().get(&url).send().unwrap();
    /// assert_eq!(resp.header("content-type"), Some("text/plain; charset=utf-8"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The URL this response came from: the request's, or the last one
    /// redirected to.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::http::{Client, Response, Server};
    ///
    /// let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| match req.path() {
    ///     "/old" => Response::new(301).header("Location", "/new"),
    ///     _ => Response::text("here"),
    /// });
    /// let resp = Client::new().get(format!("http://{}/old", server.local_addr())).send().unwrap();
    /// assert_eq!(resp.url().path(), "/new");
    /// ```
    pub fn url(&self) -> &Url {
        &self.body.raw().url
    }

    /// The body's length, if known in advance: `Content-Length`, or `0`
    /// when the response has no body (`HEAD`, 204, 304).
    ///
    /// # Examples
    ///
    /// ```
    /// # use sylvan::http::{Client, Response, Server};
    /// # let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::text(req.method().to_string()));
    /// # let url = format!("http://{}/", server.local_addr());
    /// let client = Client::new();
    /// assert_eq!(client.get(&url).send().unwrap().content_length(), Some(3));
    /// assert_eq!(client.head(&url).send().unwrap().content_length(), Some(0));
    /// ```
    pub fn content_length(&self) -> Option<u64> {
        self.length
    }

    /// Reads the whole body, up to the client's
    /// [`max_body_size`](super::ClientBuilder::max_body_size) (default
    /// 10 MiB).
    ///
    /// # Examples
    ///
    /// ```
    /// # use sylvan::http::{Client, Response, Server};
    /// # let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::text(req.method().to_string()));
    /// # let url = format!("http://{}/", server.local_addr());
    /// let resp = Client::new().get(&url).send().unwrap();
    /// assert_eq!(resp.bytes().unwrap(), b"GET");
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidData` if the body is larger than the limit (the
    /// connection is closed); the errors of [`Read`] on the body.
    ///
    /// # Cancellation
    ///
    /// As [`ResponseBody`]: the connection is closed and the bytes read
    /// so far are dropped.
    pub fn bytes(mut self) -> io::Result<Vec<u8>> {
        let limit = self.body.raw().client.cfg.max_body;
        let coding = self.body.coding();
        let too_large = |url: &Url| {
            let what = match coding {
                Some(c) => format!("the {c}-decoded body of {url}"),
                None => format!("the body of {url}"),
            };
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "response too large: {what} exceeds the limit of {limit} bytes (ClientBuilder::max_body_size)"
                ),
            )
        };
        if self.length.is_some_and(|n| n > limit) {
            return Err(too_large(&self.body.raw().url));
        }
        let mut out = Vec::with_capacity(self.length.unwrap_or(0).min(1 << 20) as usize);
        (&mut self.body)
            .take(limit.saturating_add(1))
            .read_to_end(&mut out)?;
        if out.len() as u64 > limit {
            return Err(too_large(&self.body.raw().url));
        }
        Ok(out)
    }

    /// Reads the whole body as [`bytes`](Self::bytes) does and decodes
    /// it as UTF-8, replacing invalid sequences with `U+FFFD` (the
    /// `charset` parameter is not consulted).
    ///
    /// # Examples
    ///
    /// ```
    /// # use sylvan::http::{Client, Response, Server};
    /// # let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::text(req.method().to_string()));
    /// # let url = format!("http://{}/", server.local_addr());
    /// let resp = Client::new().post(&url).send().unwrap();
    /// assert_eq!(resp.text().unwrap(), "POST");
    /// ```
    ///
    /// # Errors
    ///
    /// As [`bytes`](Self::bytes).
    ///
    /// # Cancellation
    ///
    /// As [`bytes`](Self::bytes).
    pub fn text(self) -> io::Result<String> {
        let b = self.bytes()?;
        Ok(match String::from_utf8(b) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Reads the whole body as [`bytes`](Self::bytes) does and
    /// deserializes it from JSON (feature `json`; the `Content-Type` is
    /// not checked).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::http::{Client, Response, Server};
    ///
    /// let server = Server::bind("127.0.0.1:0").unwrap()
    ///     .serve(|_| Response::text(r#"{"name": "sylvan", "tags": ["green", "threads"]}"#));
    /// let url = format!("http://{}/", server.local_addr());
    /// let v: serde_json::Value = Client::new().get(&url).send().unwrap().json().unwrap();
    /// assert_eq!(v["tags"][1], "threads");
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidData` if the body is not JSON of type `T` (the message
    /// says where); as [`bytes`](Self::bytes) otherwise.
    ///
    /// # Cancellation
    ///
    /// As [`bytes`](Self::bytes).
    #[cfg(feature = "json")]
    pub fn json<T: serde::de::DeserializeOwned>(self) -> io::Result<T> {
        let url = self.body.raw().url.clone();
        let b = self.bytes()?;
        serde_json::from_slice(&b).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the body of {url} is not the JSON expected: {e}"),
            )
        })
    }

    /// Moves the body out, to stream it elsewhere (the head is dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::http::{Client, Response, Server};
    ///
    /// let server = Server::bind("127.0.0.1:0").unwrap().serve(|_| Response::text("abc"));
    /// let resp = Client::new().get(format!("http://{}/", server.local_addr())).send().unwrap();
    /// let mut out = Vec::new();
    /// std::io::copy(&mut resp.into_reader(), &mut out).unwrap();
    /// assert_eq!(out, b"abc");
    /// ```
    pub fn into_reader(self) -> ResponseBody {
        self.body
    }

    pub(crate) fn discard(&mut self, max: usize) {
        self.body.discard(max);
    }
}

/// Reads the body; see [`ResponseBody`].
impl Read for ClientResponse {
    /// # Cancellation
    ///
    /// As [`ResponseBody`]: a killed or timed-out read closes the
    /// connection, and later reads fail.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.body.read(buf)
    }
}
