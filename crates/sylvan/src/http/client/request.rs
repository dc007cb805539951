//! [`RequestBuilder`]: what a request is made of, and `send`.

use std::fmt;
use std::io::{self, Read};
use std::time::Duration;

use super::Client;
use super::exchange::{Exchange, Payload};
use super::response::{ClientResponse, context, within};
use super::url::Url;
use crate::http::body::{Body, BodyKind};

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
    /// sent once (a 307/308 redirect is followed with a reader only when
    /// `Expect: 100-continue` kept it unsent, see
    /// [`ClientBuilder::expect_continue`](super::ClientBuilder::expect_continue)).
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
    /// body still to send (bytes, or a reader not yet read) is sent once
    /// more on a fresh connection; any other
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
            wrote: Default::default(),
        };
        within(deadline, || ex.run(&mut body)).map_err(|e| context(e, what))
    }
}
