//! The exchange behind [`RequestBuilder::send`](super::RequestBuilder::send):
//! connect (directly, through a proxy, over TLS), write the request, read
//! the head, follow redirects, retry the keep-alive race once.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Read};
use std::rc::Rc;

use super::Inner;
use super::conn::{Conn, Failure, Stream};
use super::pool::Key;
use super::response::{ClientResponse, Deadline, context};
use super::url::Url;
use crate::Cancelled;
use crate::http::parse::ResponseHead;
use crate::net::TcpStream;

/// The request body as the exchange sees it.
pub(super) enum Payload {
    None,
    Bytes(Cow<'static, [u8]>),
    Reader(Box<dyn Read>, Option<u64>),
    /// A reader already sent once: it cannot be sent again.
    Spent,
}

impl Payload {
    /// Whether the body can still be sent: bytes always, a reader until
    /// it has been (a reader held back by `Expect: 100-continue` has not).
    pub(super) fn sendable(&self) -> bool {
        !matches!(self, Payload::Spent)
    }
}

/// One request on its way, across redirects and the retry.
pub(super) struct Exchange {
    pub(super) inner: Rc<Inner>,
    pub(super) method: String,
    pub(super) url: Url,
    pub(super) headers: Vec<(String, String)>,
    pub(super) idempotent: bool,
    pub(super) deadline: Deadline,
    /// Whether the current attempt got as far as writing the request.
    pub(super) wrote: std::cell::Cell<bool>,
}

/// Most bytes of a redirect's body read to keep its connection.
const DISCARD_MAX: usize = 64 * 1024;

impl Exchange {
    pub(super) fn run(&mut self, body: &mut Payload) -> io::Result<ClientResponse> {
        let mut redirects = 0;
        loop {
            let mut resp = self.retried(body)?;
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
            } else if !body.sendable() {
                // A 307/308 asks for the same body again; a reader has
                // been sent already (unless a final answer to `Expect:
                // 100-continue` held it back). Hand the redirect to the
                // caller.
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

    /// [`guarded`](Self::guarded) under the client's retry policy, if it
    /// has one: a failure before any byte was written (resolve, connect,
    /// TLS, proxy) may always be retried; one after, only if the request
    /// is idempotent and its body can be sent again.
    fn retried(&self, body: &mut Payload) -> io::Result<ClientResponse> {
        let Some(policy) = &self.inner.cfg.retry else {
            return self.guarded(body);
        };
        let replayable = !matches!(body, Payload::Reader(..));
        let policy = policy.clone().idempotent(self.idempotent && replayable);
        let r = policy.run(|attempt| {
            if attempt.is_retry() {
                tracing::debug!(
                    target: "sylvan::http::client",
                    "{} {}: attempt {}",
                    self.method,
                    self.url,
                    attempt.number()
                );
            }
            self.wrote.set(false);
            let r = self.guarded(body);
            if self.wrote.get() {
                attempt.mark_sent();
            }
            r
        });
        r.map_err(|e| {
            if e.attempts() == 1 {
                e.into_inner()
            } else {
                e.into()
            }
        })
    }

    /// [`send_once`](Self::send_once) behind the host's circuit breaker,
    /// if the client has breakers.
    fn guarded(&self, body: &mut Payload) -> io::Result<ClientResponse> {
        let origin = self.url.origin();
        let Some(breaker) = self.inner.breakers.get(&origin) else {
            return self.send_once(body);
        };
        let Some(permit) = breaker.try_acquire() else {
            return Err(io::Error::other(format!(
                "the circuit breaker of {origin} is open ({:?}): the request was not sent",
                breaker.state()
            )));
        };
        match self.send_once(body) {
            Ok(resp) => {
                if resp.status() >= 500 {
                    permit.failure();
                } else {
                    permit.success();
                }
                Ok(resp)
            }
            Err(e) => {
                if Cancelled::from_io(&e).is_some() {
                    drop(permit);
                } else {
                    permit.failure();
                }
                Err(e)
            }
        }
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    fn key(&self) -> Key {
        Key {
            https: self.url.is_https(),
            host: self.url.host().to_string(),
            port: self.url.port(),
            proxied: self.inner.cfg.proxy.for_url(&self.url).is_some(),
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
        let tcp = match cfg.proxy.for_url(&self.url) {
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
        self.wrote.set(true);
        match self.exchange(conn, key.clone(), body) {
            Ok(r) => Ok(r),
            Err(f) if reused && f.before_response => {
                if self.idempotent && body.sendable() {
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
        let early = self.write_request(&mut conn, body)?;
        // A final answer to `Expect: 100-continue` before the body was
        // sent: the server may or may not read the unsent body, so the
        // connection is not reused.
        let close = close || early.is_some();
        let head = match early {
            Some(head) => head,
            None => conn.read_head(cfg.max_head, cfg.max_headers)?,
        };
        let framing = head
            .framing(self.method == "HEAD")
            .map_err(|m| io::Error::new(io::ErrorKind::InvalidData, m))?;
        let keep_alive = !close && head.status != 101 && head.keep_alive(framing);
        let decode = cfg.decompress && !self.has_header("accept-encoding");
        Ok(ClientResponse::new(
            head,
            framing,
            keep_alive,
            conn,
            key,
            self.inner.clone(),
            self.deadline,
            self.url.clone(),
            decode,
        ))
    }

    /// Writes the request; returns the final response head if the server
    /// answered an `Expect: 100-continue` with one instead of `100`, the
    /// body then unsent.
    fn write_request(
        &self,
        conn: &mut Conn,
        body: &mut Payload,
    ) -> Result<Option<ResponseHead>, Failure> {
        let cfg = &self.inner.cfg;
        let mut head = String::with_capacity(256);
        let has = |name: &str| self.has_header(name);
        if !self.url.is_https() && cfg.proxy.for_url(&self.url).is_some() {
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
        if cfg.decompress && !has("accept-encoding") {
            head.push_str("Accept-Encoding: gzip, deflate\r\n");
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
        let size = match body {
            Payload::None | Payload::Spent => Some(0),
            Payload::Bytes(b) => Some(b.len() as u64),
            Payload::Reader(_, n) => *n,
        };
        // Large (or unknown-size) uploads ask first, as curl does.
        let expect = match cfg.expect_continue {
            _ if has("expect") => self.headers.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case("expect") && v.eq_ignore_ascii_case("100-continue")
            }),
            Some(min) => size.is_none_or(|n| n >= min.max(1)),
            None => false,
        };
        if expect && !has("expect") {
            head.push_str("Expect: 100-continue\r\n");
        }
        head.push_str("\r\n");
        conn.begin();
        if expect {
            conn.write_all(head.as_bytes())?;
            let wait = crate::timeout(cfg.expect_timeout, || {
                conn.read_head_or_continue(cfg.max_head, cfg.max_headers, true)
            });
            match wait {
                // No answer in time: send the body anyway (RFC 9110 §10.1.1).
                Err(_elapsed) => {}
                Ok(Ok(h)) if h.status == 100 => {}
                Ok(Ok(h)) => return Ok(Some(h)),
                Ok(Err(f)) => return Err(f),
            }
            head.clear();
        }
        match std::mem::replace(body, Payload::Spent) {
            p @ (Payload::None | Payload::Spent) => {
                *body = p;
                conn.write_all(head.as_bytes())?;
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
                r?;
            }
            Payload::Reader(mut r, len) => {
                conn.write_all(head.as_bytes())?;
                stream_body(conn, r.as_mut(), len)?;
            }
        }
        Ok(None)
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
