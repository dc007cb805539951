//! [`RequestBuilder`] and the exchange behind `send`: write the request,
//! read the head, follow redirects, retry the keep-alive race once.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io::{self, Read};
use std::rc::Rc;
use std::time::Duration;

use super::conn::{Conn, Failure, Stream};
use super::pool::Key;
use super::response::{ClientResponse, Deadline, context, within};
use super::url::Url;
use super::{Client, Inner};
use crate::http::body::{Body, BodyKind};
use crate::net::TcpStream;

/// The request body as the exchange sees it.
enum Payload {
    None,
    Bytes(Cow<'static, [u8]>),
    Reader(Box<dyn Read>, Option<u64>),
    /// A reader already sent once: it cannot be sent again.
    Spent,
}

impl Payload {
    fn replayable(&self) -> bool {
        matches!(self, Payload::None | Payload::Bytes(_))
    }
}

/// A request being built: method, URL, headers, body and timeout; sent
/// with [`send`](Self::send). Made by [`Client::get`], [`Client::post`],
/// [`Client::request`] and friends.
///
/// The client sets `Host`, `Content-Length` or `Transfer-Encoding` (from
/// the body) and, unless given here, `User-Agent`; a `Content-Length` or
/// `Transfer-Encoding` set here is ignored.
///
/// # Examples
///
/// ```
/// use std::io::Read;
/// use std::time::Duration;
/// use sylvan::http::{Client, Response, Server};
///
/// let server = Server::bind("127.0.0.1:0").unwrap().serve(|mut req| {
///     let mut body = String::new();
///     req.read_to_string(&mut body).unwrap();
///     let chunked = req.is_chunked();
///     Response::text(format!("{} {} {body} chunked={chunked}", req.method(), req.header("x-a").unwrap_or("-")))
/// });
/// let url = format!("http://{}/echo", server.local_addr());
/// let client = Client::new();
///
/// let sized = client.post(&url).header("X-A", "1").body("hi").timeout(Duration::from_secs(5));
/// assert_eq!(sized.send().unwrap().text().unwrap(), "POST 1 hi chunked=false");
///
/// let streamed = client.put(&url).body_reader(std::io::Cursor::new(b"abc".to_vec()));
/// assert_eq!(streamed.send().unwrap().text().unwrap(), "PUT - abc chunked=true");
/// ```
pub struct RequestBuilder {
    client: Client,
    method: String,
    url: io::Result<Url>,
    headers: Vec<(String, String)>,
    body: Payload,
    timeout: Option<Option<Duration>>,
    idempotent: Option<bool>,
    error: Option<io::Error>,
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("url", &self.url.as_ref().ok())
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Methods that RFC 9110 §9.2.2 calls idempotent.
fn idempotent_method(m: &str) -> bool {
    matches!(m, "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE")
}

impl RequestBuilder {
    pub(crate) fn new(client: Client, method: &str, url: &str) -> RequestBuilder {
        let error = (!is_token(method)).then(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid HTTP method {method:?}"),
            )
        });
        RequestBuilder {
            client,
            method: method.to_string(),
            url: Url::parse(url),
            headers: Vec::new(),
            body: Payload::None,
            timeout: None,
            idempotent: None,
            error,
        }
    }

    /// Adds a header field (a repeated name adds another field). A bad
    /// name, or a value with CR, LF or NUL, makes [`send`](Self::send)
    /// fail with `InvalidInput`.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::http::{Client, Response, Server};
    ///
    /// let server = Server::bind("127.0.0.1:0").unwrap()
    ///     .serve(|req| Response::text(req.headers().get_all("x-tag").collect::<Vec<_>>().join(",")));
    /// let url = format!("http://{}/", server.local_addr());
    /// let client = Client::new();
    /// let resp = client.get(&url).header("X-Tag", "a").header("X-Tag", "b").send().unwrap();
    /// assert_eq!(resp.text().unwrap(), "a,b");
    /// let err = client.get(&url).header("X-Tag", "a\r\nInjected: yes").send().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> RequestBuilder {
        let (name, value) = (name.into(), value.into());
        if !is_token(&name) {
            self.error.get_or_insert_with(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("invalid header name {name:?}"),
                )
            });
        } else if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            self.error.get_or_insert_with(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("invalid value for header {name}: CR, LF and NUL are not allowed"),
                )
            });
        } else {
            self.headers.push((name, value));
        }
        self
    }

    /// Sets the body (default: none). Bytes and strings are sent with
    /// `Content-Length` and can be sent again (a 307/308 redirect, the
    /// keep-alive retry); a [`Body::sized`] reader is sent with
    /// `Content-Length`, a [`Body::from_reader`] one chunked; readers are
    /// sent once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use sylvan::http::{Body, Client, Response, Server};
    ///
    /// let server = Server::bind("127.0.0.1:0").unwrap().serve(|mut req| {
    ///     let mut body = String::new();
    ///     req.read_to_string(&mut body).unwrap();
    ///     Response::text(format!("{:?} {body}", req.content_length()))
    /// });
    /// let url = format!("http://{}/", server.local_addr());
    /// let client = Client::new();
    /// assert_eq!(client.post(&url).body("abc").send().unwrap().text().unwrap(), "Some(3) abc");
    /// let sized = Body::sized(std::io::Cursor::new(b"xyz".to_vec()), 3);
    /// assert_eq!(client.post(&url).body(sized).send().unwrap().text().unwrap(), "Some(3) xyz");
    /// ```
    pub fn body(mut self, body: impl Into<Body>) -> RequestBuilder {
        self.body = match body.into().kind {
            BodyKind::Bytes(b) => Payload::Bytes(b),
            BodyKind::Reader(r, n) => Payload::Reader(r, n),
        };
        self
    }

    /// Sets the body to `value` serialized as JSON, and `Content-Type:
    /// application/json` unless a content type was set (feature `json`).
    /// A value that cannot be serialized makes [`send`](Self::send) fail
    /// with `InvalidInput`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use sylvan::http::{Client, Response, Server};
    ///
    /// let server = Server::bind("127.0.0.1:0").unwrap().serve(|mut req| {
    ///     let mut body = String::new();
    ///     req.read_to_string(&mut body).unwrap();
    ///     Response::text(format!("{} {body}", req.header("content-type").unwrap_or("-")))
    /// });
    /// let url = format!("http://{}/", server.local_addr());
    /// let resp = Client::new().post(&url).json(&serde_json::json!({"id": 7})).send().unwrap();
    /// assert_eq!(resp.text().unwrap(), r#"application/json {"id":7}"#);
    /// ```
    #[cfg(feature = "json")]
    pub fn json(mut self, value: &impl serde::Serialize) -> RequestBuilder {
        match serde_json::to_vec(value) {
            Ok(v) => {
                let typed = self
                    .headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
                if !typed {
                    self = self.header("Content-Type", "application/json");
                }
                self.body(v)
            }
            Err(e) => {
                self.error.get_or_insert_with(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("cannot serialize the JSON body: {e}"),
                    )
                });
                self
            }
        }
    }

    /// Streams the body from `reader`, chunked; short for
    /// `.body(Body::from_reader(reader))`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use sylvan::http::{Client, Response, Server};
    ///
    /// let server = Server::bind("127.0.0.1:0").unwrap().serve(|mut req| {
    ///     let mut n = 0;
    ///     let mut buf = [0; 8192];
    ///     while let Ok(k @ 1..) = req.read(&mut buf) {
    ///         n += k;
    ///     }
    ///     Response::text(format!("chunked={} {n} bytes", req.is_chunked()))
    /// });
    /// let url = format!("http://{}/", server.local_addr());
    /// let upload = std::io::repeat(b'z').take(100_000); // any Read
    /// let resp = Client::new().put(&url).body_reader(upload).send().unwrap();
    /// assert_eq!(resp.text().unwrap(), "chunked=true 100000 bytes");
    /// ```
    pub fn body_reader(self, reader: impl Read + 'static) -> RequestBuilder {
        self.body(Body::from_reader(reader))
    }

    /// Bounds the whole request — connecting, sending, the response head
    /// *and reading the body* — by `d` from the call to `send` (default:
    /// the client's [`timeout`](super::ClientBuilder::timeout)). Its
    /// expiry is `ErrorKind::TimedOut`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// use sylvan::http::Client;
    ///
    /// // Sends a head and 3 of 100 body bytes, then stalls until the client goes.
    /// let listener = sylvan::listen("127.0.0.1:0").unwrap();
    /// let url = format!("http://{}/", listener.local_addr().unwrap());
    /// let server = sylvan::spawn(move || -> std::io::Result<()> {
    ///     use std::io::Write;
    ///     let (mut s, _) = listener.accept()?;
    ///     s.read(&mut [0; 1024])?;
    ///     s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")?;
    ///     while s.read(&mut [0; 64])? > 0 {}
    ///     Ok(())
    /// });
    /// let resp = Client::new().get(&url).timeout(Duration::from_millis(50)).send().unwrap();
    /// let err = resp.text().unwrap_err(); // the deadline covers the body too
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// server.join().unwrap().unwrap(); // the connection was closed
    /// ```
    pub fn timeout(mut self, d: Duration) -> RequestBuilder {
        self.timeout = Some(Some(d));
        self
    }

    /// Whether the request may be sent twice (default: by method — `GET`,
    /// `HEAD`, `PUT`, `DELETE`, `OPTIONS` and `TRACE` are). Only an
    /// idempotent request is retried when a reused keep-alive connection
    /// turns out closed before any byte of the response arrived.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sylvan::http::{Client, Response, Server};
    /// # let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::text(req.method().to_string()));
    /// # let url = format!("http://{}/", server.local_addr());
    /// // A POST that is safe to send twice, e.g. with an idempotency key.
    /// let resp = Client::new()
    ///     .post(&url)
    ///     .header("Idempotency-Key", "8e03978e")
    ///     .body("payment")
    ///     .idempotent(true)
    ///     .send()
    ///     .unwrap();
    /// assert_eq!(resp.status(), 200);
    /// ```
    pub fn idempotent(mut self, yes: bool) -> RequestBuilder {
        self.idempotent = Some(yes);
        self
    }

    /// Sends the request and reads the response head, following
    /// redirects; the body is left to read from the response.
    ///
    /// A pooled connection to the same scheme, host and port is reused
    /// when there is one that the server has not closed meanwhile (one
    /// non-blocking peek tells), else a new one is made with the client's
    /// [`Connector`](crate::net::Connector). If a *reused* connection
    /// fails before any byte of the response arrives (the server closed
    /// it while idle: the keep-alive race), an idempotent request with a
    /// replayable body is sent once more on a fresh connection; any other
    /// gets an error saying why it was not retried.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sylvan::http::{Client, Response, Server};
    /// # let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| Response::text(req.method().to_string()));
    /// # let url = format!("http://{}/", server.local_addr());
    /// let resp = Client::new().get(&url).send().unwrap();
    /// assert_eq!(resp.status(), 200);
    /// ```
    ///
    /// # Errors
    ///
    /// Each names the method and URL and what failed: `InvalidInput` for
    /// a bad URL, method or header; resolve and connect errors from the
    /// [`Connector`](crate::net::Connector); `TimedOut` for the connect,
    /// per-read and whole-request timeouts; `InvalidData` for a malformed
    /// status line, headers or framing, or a head over the limit;
    /// `UnexpectedEof` when the server closes the connection early;
    /// `Other` for too many redirects; `Unsupported` for `https://`
    /// without a `ClientBuilder::tls_config` (feature
    /// `tls`); TLS handshake and certificate errors as
    /// `net::tls::TlsConnector` reports them.
    ///
    /// # Cancellation
    ///
    /// Killed or past an enclosing deadline while connecting, sending or
    /// waiting for the head: returns that error (kind `Other` wrapping
    /// [`Cancelled::Killed`](crate::Cancelled), or `TimedOut`); the
    /// connection in use is closed, never returned to the pool.
    #[track_caller]
    pub fn send(self) -> io::Result<ClientResponse> {
        let RequestBuilder {
            client,
            method,
            url,
            headers,
            mut body,
            timeout,
            idempotent,
            error,
        } = self;
        if let Some(e) = error {
            return Err(e);
        }
        let url = url?;
        let what = format!("{method} {url}");
        let inner = client.inner;
        let timeout = timeout.unwrap_or(inner.cfg.timeout);
        let deadline = timeout.map(|t| (crate::time::now() + t, t));
        let idempotent = idempotent.unwrap_or_else(|| idempotent_method(&method));
        let mut ex = Exchange {
            inner,
            method,
            url,
            headers,
            idempotent,
            deadline,
        };
        within(deadline, || ex.run(&mut body)).map_err(|e| context(e, what))
    }
}

/// One request on its way, across redirects and the retry.
struct Exchange {
    inner: Rc<Inner>,
    method: String,
    url: Url,
    headers: Vec<(String, String)>,
    idempotent: bool,
    deadline: Deadline,
}

/// Most bytes of a redirect's body read to keep its connection.
const DISCARD_MAX: usize = 64 * 1024;

impl Exchange {
    fn run(&mut self, body: &mut Payload) -> io::Result<ClientResponse> {
        let mut redirects = 0;
        loop {
            let mut resp = self.send_once(body)?;
            let status = resp.status();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                return Ok(resp);
            }
            let Some(location) = resp.header("location").map(str::to_string) else {
                return Ok(resp);
            };
            if redirects == self.inner.cfg.max_redirects {
                if redirects == 0 {
                    return Ok(resp);
                }
                resp.discard(DISCARD_MAX);
                return Err(io::Error::other(format!(
                    "too many redirects: gave up after {redirects}, the last to {location}"
                )));
            }
            let next = self.url.join(&location).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad Location in a {status} response: {e}"),
                )
            })?;
            let drop_body = match status {
                303 => self.method != "HEAD",
                301 | 302 => self.method == "POST",
                _ => false,
            };
            if drop_body {
                self.method = "GET".to_string();
                self.idempotent = true;
                *body = Payload::None;
                self.headers.retain(|(n, _)| {
                    ![
                        "content-type",
                        "content-encoding",
                        "content-language",
                        "content-location",
                    ]
                    .iter()
                    .any(|h| n.eq_ignore_ascii_case(h))
                });
            } else if !body.replayable() {
                // A 307/308 asks for the same body again; a reader has
                // been sent already. Hand the redirect to the caller.
                return Ok(resp);
            }
            if !self.url.same_origin(&next) {
                self.headers.retain(|(n, _)| {
                    !["authorization", "cookie", "proxy-authorization"]
                        .iter()
                        .any(|h| n.eq_ignore_ascii_case(h))
                });
            }
            tracing::debug!(
                target: "sylvan::http::client",
                "{} {}: {status} to {next}",
                self.method,
                self.url
            );
            resp.discard(DISCARD_MAX);
            drop(resp);
            self.url = next;
            redirects += 1;
        }
    }

    fn key(&self) -> Key {
        Key {
            https: self.url.is_https(),
            host: self.url.host().to_string(),
            port: self.url.port(),
            proxied: self.inner.cfg.proxy.is_some(),
        }
    }

    fn connect(&self) -> io::Result<Conn> {
        let cfg = &self.inner.cfg;
        #[cfg(feature = "tls")]
        let tls = cfg.tls.as_ref();
        #[cfg(not(feature = "tls"))]
        let tls: Option<&std::convert::Infallible> = None;
        if self.url.is_https() && tls.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                if cfg!(feature = "tls") {
                    "https:// needs a TLS configuration: set ClientBuilder::tls_config"
                } else {
                    "https:// needs sylvan's `tls` feature and ClientBuilder::tls_config"
                },
            ));
        }
        let tcp = match &cfg.proxy {
            None => cfg.connector.connect((self.url.host(), self.url.port()))?,
            Some(proxy) => {
                if proxy.is_https() {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        "https:// proxies are not supported (an http:// proxy can tunnel https://)",
                    ));
                }
                let tcp = cfg
                    .connector
                    .connect((proxy.host(), proxy.port()))
                    .map_err(|e| context(e, format_args!("connecting to the proxy {proxy}")))?;
                if self.url.is_https() {
                    self.tunnel(tcp)?
                } else {
                    tcp
                }
            }
        };
        let stream = match tls {
            #[cfg(feature = "tls")]
            Some(tls) if self.url.is_https() => {
                Stream::Tls(Box::new(tls.connect(self.url.host(), tcp)?))
            }
            _ => Stream::Tcp(tcp),
        };
        Ok(Conn::new(stream, crate::time::now()))
    }

    /// Asks the proxy for a `CONNECT` tunnel to the target.
    fn tunnel(&self, tcp: TcpStream) -> io::Result<TcpStream> {
        let cfg = &self.inner.cfg;
        let target = self.url.host_port();
        let mut conn = Conn::new(Stream::Tcp(tcp), crate::time::now());
        conn.set_timeouts(cfg.read_timeout, cfg.write_timeout)?;
        conn.begin();
        conn.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
            .map_err(|f| f.error)?;
        let head = conn
            .read_head(cfg.max_head, cfg.max_headers)
            .map_err(|f| context(f.error, "reading the proxy's CONNECT response"))?;
        if !(200..300).contains(&head.status) {
            return Err(io::Error::other(format!(
                "the proxy refused a tunnel to {target}: {} {}",
                head.status, head.reason
            )));
        }
        if !conn.buffered().is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the proxy sent bytes after its CONNECT response",
            ));
        }
        conn.into_tcp()
            .ok_or_else(|| io::Error::other("a CONNECT tunnel over TLS"))
    }

    /// One request and its response head, on a pooled connection or a
    /// new one, retried once on a new one after the keep-alive race.
    fn send_once(&self, body: &mut Payload) -> io::Result<ClientResponse> {
        let key = self.key();
        let pooled = self.inner.pool.checkout(&key, crate::time::now());
        let reused = pooled.is_some();
        let conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        match self.exchange(conn, key.clone(), body) {
            Ok(r) => Ok(r),
            Err(f) if reused && f.before_response => {
                if self.idempotent && body.replayable() {
                    tracing::debug!(
                        target: "sylvan::http::client",
                        "{} {}: the reused connection was closed before any response ({}); \
                         retrying on a new one",
                        self.method,
                        self.url,
                        f.error
                    );
                    let conn = self.connect()?;
                    return self.exchange(conn, key, body).map_err(|f| f.error);
                }
                let why = if self.idempotent {
                    "its body was a reader, already consumed"
                } else {
                    "the method is not idempotent (mark the request .idempotent(true) if sending it twice is safe)"
                };
                Err(io::Error::new(
                    f.error.kind(),
                    format!(
                        "the reused keep-alive connection was closed by the server before any \
                         response arrived ({}); not retried because {why}",
                        f.error
                    ),
                ))
            }
            Err(f) => Err(f.error),
        }
    }

    fn exchange(
        &self,
        mut conn: Conn,
        key: Key,
        body: &mut Payload,
    ) -> Result<ClientResponse, Failure> {
        let cfg = &self.inner.cfg;
        conn.set_timeouts(cfg.read_timeout, cfg.write_timeout)?;
        let close = self.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("connection") && v.to_ascii_lowercase().contains("close")
        });
        self.write_request(&mut conn, body)?;
        let head = conn.read_head(cfg.max_head, cfg.max_headers)?;
        let framing = head
            .framing(self.method == "HEAD")
            .map_err(|m| io::Error::new(io::ErrorKind::InvalidData, m))?;
        let keep_alive = !close && head.status != 101 && head.keep_alive(framing);
        Ok(ClientResponse::new(
            head,
            framing,
            keep_alive,
            conn,
            key,
            self.inner.clone(),
            self.deadline,
            self.url.clone(),
        ))
    }

    fn write_request(&self, conn: &mut Conn, body: &mut Payload) -> Result<(), Failure> {
        let cfg = &self.inner.cfg;
        let mut head = String::with_capacity(256);
        let has = |name: &str| {
            self.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        if cfg.proxy.is_some() && !self.url.is_https() {
            // Absolute form, for the proxy (RFC 9112 §3.2.2).
            let _ = write!(head, "{} {} HTTP/1.1\r\n", self.method, self.url);
        } else {
            let _ = write!(
                head,
                "{} {} HTTP/1.1\r\n",
                self.method,
                self.url.path_and_query()
            );
        }
        if !has("host") {
            let _ = write!(head, "Host: {}\r\n", self.url.authority());
        }
        if !has("user-agent") {
            if let Some(ua) = &cfg.user_agent {
                let _ = write!(head, "User-Agent: {ua}\r\n");
            }
        }
        for (n, v) in &self.headers {
            if n.eq_ignore_ascii_case("content-length")
                || n.eq_ignore_ascii_case("transfer-encoding")
            {
                continue;
            }
            let _ = write!(head, "{n}: {v}\r\n");
        }
        let wants_body = matches!(self.method.as_str(), "POST" | "PUT" | "PATCH");
        match body {
            Payload::None | Payload::Spent if wants_body => head.push_str("Content-Length: 0\r\n"),
            Payload::None | Payload::Spent => {}
            Payload::Bytes(b) => {
                if !b.is_empty() || wants_body {
                    let _ = write!(head, "Content-Length: {}\r\n", b.len());
                }
            }
            Payload::Reader(_, Some(n)) => {
                let _ = write!(head, "Content-Length: {n}\r\n");
            }
            Payload::Reader(_, None) => head.push_str("Transfer-Encoding: chunked\r\n"),
        }
        head.push_str("\r\n");
        conn.begin();
        match std::mem::replace(body, Payload::Spent) {
            p @ (Payload::None | Payload::Spent) => {
                *body = p;
                conn.write_all(head.as_bytes())
            }
            Payload::Bytes(b) => {
                let r = if b.len() <= 16 * 1024 {
                    let mut all = head.into_bytes();
                    all.extend_from_slice(&b);
                    conn.write_all(&all)
                } else {
                    conn.write_all(head.as_bytes())
                        .and_then(|()| conn.write_all(&b))
                };
                *body = Payload::Bytes(b);
                r
            }
            Payload::Reader(mut r, len) => {
                conn.write_all(head.as_bytes())?;
                stream_body(conn, r.as_mut(), len)
            }
        }
    }
}

/// Sends a reader's bytes: exactly `len` of them, or chunked.
fn stream_body(conn: &mut Conn, r: &mut dyn Read, len: Option<u64>) -> Result<(), Failure> {
    const CHUNK: usize = 16 * 1024;
    let mut buf = vec![0u8; CHUNK + 32];
    let mut sent = 0u64;
    loop {
        let want = match len {
            Some(n) if sent == n => return Ok(()),
            Some(n) => CHUNK.min(usize::try_from(n - sent).unwrap_or(CHUNK)),
            None => CHUNK,
        };
        // Leave room in front for the chunk-size line.
        let n = loop {
            match r.read(&mut buf[16..16 + want]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(context(e, "reading the request body").into()),
                Ok(n) => break n,
            }
        };
        match len {
            Some(total) if n == 0 => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("the request body ended after {sent} of the {total} bytes declared"),
                )
                .into());
            }
            Some(_) => conn.write_all(&buf[16..16 + n])?,
            None if n == 0 => return conn.write_all(b"0\r\n\r\n"),
            None => {
                let size = format!("{n:x}\r\n");
                let start = 16 - size.len();
                buf[start..16].copy_from_slice(size.as_bytes());
                buf[16 + n..16 + n + 2].copy_from_slice(b"\r\n");
                conn.write_all(&buf[start..16 + n + 2])?;
            }
        }
        sent += n as u64;
    }
}
