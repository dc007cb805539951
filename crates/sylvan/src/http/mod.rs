//! An HTTP/1.1 server in the spirit of `eventlet.wsgi`, and a green client
//! ([`Client`], below). Server handlers are plain synchronous `Fn(Request) -> Response`
//! code, one green thread per connection.
//!
//! - HTTP/1.0 and 1.1, keep-alive, pipelining (answered in order), chunked
//!   request and response bodies, `Expect: 100-continue` (sent lazily, on
//!   the handler's first body read), `HEAD`, `Date`.
//! - Limits with the right status and a closed connection (414, 431, 413,
//!   400, 501), strict framing against request smuggling, never a panic on
//!   bad input (the request reader is fuzzed: `fuzz/`).
//! - Three separate timeouts — header read (slowloris → 408), keep-alive
//!   idle, per-I/O — and a bound on concurrent connections.
//! - Graceful stop: idle connections close at once, requests in flight
//!   finish with `Connection: close`, the rest is cancelled at the deadline.
//! - An access log through `tracing` (target `sylvan::http::access`), and a
//!   handler panic turned into a `500` for that request only.
//! - Protocol upgrades ([`Response::on_upgrade`]), on which
//!   [`websocket`](crate::websocket) is built.
//!
//! Parsing uses `httparse`, push-based: a partial head just waits for more
//! bytes. The head is copied once out of the connection buffer into the
//! [`Request`]; names, values and the target are slices of that copy.
//!
//! # Examples
//!
//! ```
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use sylvan::http::{Response, Server};
//!
//! let server = Server::bind("127.0.0.1:0").unwrap().serve(|mut req| {
//!     let mut body = Vec::new();
//!     match req.read_to_end(&mut body) {
//!         Ok(_) => Response::text(format!("{} {} bytes\n", req.method(), body.len())),
//!         Err(e) => Response::text(e.to_string()).with_status(400),
//!     }
//! });
//!
//! // Any client works; here a raw green socket with two pipelined requests.
//! let mut c = sylvan::connect(server.local_addr()).unwrap();
//! c.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
//!               GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
//! let mut out = String::new();
//! c.read_to_string(&mut out).unwrap();
//! assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2);
//! assert!(out.contains("POST 3 bytes") && out.ends_with("GET 0 bytes\n"));
//! server.stop(Duration::from_secs(1));
//! ```
//!
//! To serve on every core, run one server per hub of a
//! [`Runtime`](crate::Runtime), each on its own `SO_REUSEPORT` listener
//! ([`Server::from_listener`]).
//!
//! # The client
//!
//! [`Client`] is a green HTTP/1.1 client on the same parts: blocking calls
//! that park only the calling green thread.
//!
//! - A [`Client`] holds the settings and a keep-alive pool; it is cheap to
//!   clone (an `Rc`) and shared by every green thread of its hub. It is
//!   `!Send`, like other hub-bound types: make one per hub.
//! - [`Client::get`], [`post`](Client::post), … return a
//!   [`RequestBuilder`]; [`send`](RequestBuilder::send) returns a
//!   [`ClientResponse`] once the head has arrived, whose body is a
//!   streaming `Read` ([`ResponseBody`]).
//! - Connections are made by a [`Connector`](crate::net::Connector) (one
//!   connect deadline across every address of a name, Happy Eyeballs) and
//!   kept per (scheme, host, port). One is reused only after its response
//!   body was read to the end, and only if the server allows it (HTTP/1.1
//!   without `Connection: close`, HTTP/1.0 with `Connection: keep-alive`).
//!   A request that finds a reused connection closed before any response
//!   byte (the keep-alive race) is retried once on a new connection if it
//!   is idempotent.
//! - Three timeouts, all `ErrorKind::TimedOut`: connect; per read (and
//!   write); a whole-request one that also covers reading the body.
//! - Redirects (up to 10 by default) with RFC 9110's method rules;
//!   `Authorization` and `Cookie` are not sent to another origin.
//! - `https://` over [`net::tls`](crate::net) with feature `tls` and
//!   `ClientBuilder::tls_config`; JSON bodies with feature `json`; an
//!   `http://` proxy ([`ClientBuilder::proxy`], `CONNECT` for `https://`).
//!   Not (yet) supported: proxy authentication, compressed bodies,
//!   cookies, HTTP/2.
//!
//! ## Client example
//!
//! ```
//! use std::time::Duration;
//! use sylvan::http::{Client, Response, Server};
//!
//! let server = Server::bind("127.0.0.1:0").unwrap()
//!     .serve(|req| Response::text(format!("hello from {}", req.path())));
//! let client = Client::builder().timeout(Some(Duration::from_secs(10))).build();
//!
//! // Ten requests at once, from ten green threads, over the shared pool.
//! let fetches: Vec<_> = (0..10)
//!     .map(|i| {
//!         let (client, url) = (client.clone(), format!("http://{}/{i}", server.local_addr()));
//!         sylvan::spawn(move || client.get(&url).send()?.text())
//!     })
//!     .collect();
//! for (i, f) in fetches.into_iter().enumerate() {
//!     assert_eq!(f.join().unwrap().unwrap(), format!("hello from /{i}"));
//! }
//! assert!(client.idle_connections() > 0);
//! ```
//!

mod body;
mod client;
mod conn;
mod date;
mod log;
pub(crate) mod parse;
mod request;
mod response;
mod server;
#[cfg(feature = "tls")]
mod tls;
mod upgrade;

pub use body::Body;
pub use client::{Client, ClientBuilder, ClientResponse, RequestBuilder, ResponseBody, Url};
pub use request::{Headers, Request, RequestBody, Version};
pub use response::{Response, reason};
pub use server::{Server, ServerHandle};
pub use upgrade::Upgraded;
pub(crate) use upgrade::UpgradedIo;

/// Entry points for the fuzz target and the split-read tests; not a
/// public API.
#[doc(hidden)]
pub mod __private {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::io::{self, Read};
    use std::net::{Shutdown, SocketAddr};
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    use super::conn::{self, Config, Shared, Transport};
    use super::{Request, Response};

    struct MemIo {
        input: RefCell<VecDeque<Vec<u8>>>,
        output: Rc<RefCell<Vec<u8>>>,
    }

    impl Transport for MemIo {
        fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
            let mut input = self.input.borrow_mut();
            let Some(mut chunk) = input.pop_front() else {
                return Ok(0);
            };
            if chunk.is_empty() {
                // An empty chunk stands for a read timeout.
                return Err(io::ErrorKind::TimedOut.into());
            }
            let n = chunk.len().min(buf.len());
            buf[..n].copy_from_slice(&chunk[..n]);
            if n < chunk.len() {
                chunk.drain(..n);
                input.push_front(chunk);
            }
            Ok(n)
        }

        fn write(&self, buf: &[u8]) -> io::Result<usize> {
            self.output.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn set_read_timeout(&self, _: Option<Duration>) {}

        fn shutdown(&self, _: Shutdown) {}

        fn now(&self) -> Instant {
            Instant::now()
        }

        fn into_upgraded(self) -> Option<super::upgrade::UpgradedIo> {
            None
        }
    }

    /// Reads `data` as the client reads a response (to a `HEAD` request
    /// if `head`): the head, skipping interim 1xx ones, then the body as
    /// its framing says (a chunked body de-chunked). Returns the status
    /// and the body, or what was wrong; never panics.
    pub fn read_response(mut data: &[u8], head: bool) -> Result<(u16, Vec<u8>), String> {
        use super::body::ChunkedDecoder;
        use super::parse::{ResponseFraming, parse_response_head};
        let resp = loop {
            let (resp, n) = parse_response_head(data, 64 * 1024, 100)?
                .ok_or_else(|| "incomplete head".to_string())?;
            data = &data[n..];
            if !(100..200).contains(&resp.status) || resp.status == 101 {
                break resp;
            }
        };
        let body = match resp.framing(head)? {
            ResponseFraming::Empty => Vec::new(),
            ResponseFraming::Length(n) => {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                if data.len() < n {
                    return Err("body cut short".into());
                }
                data[..n].to_vec()
            }
            ResponseFraming::Close => data.to_vec(),
            ResponseFraming::Chunked => {
                let mut dec = ChunkedDecoder::new(16 * 1024);
                let mut out = Vec::new();
                let mut buf = [0u8; 512];
                while !dec.is_done() {
                    let (c, p) = dec
                        .decode(data, &mut buf)
                        .map_err(|e| e.into_io().to_string())?;
                    out.extend_from_slice(&buf[..p]);
                    data = &data[c..];
                    if c == 0 && p == 0 && !dec.is_done() {
                        return Err("chunked body cut short".into());
                    }
                }
                out
            }
        };
        Ok((resp.status, body))
    }

    /// Serves one in-memory connection whose reads return `chunks` in
    /// turn (an empty chunk is a read timeout), with small limits, and
    /// returns a transcript: each request as the handler saw it, then the
    /// bytes written back without their `Date` lines.
    pub fn serve_chunks(chunks: &[&[u8]]) -> String {
        let output = Rc::new(RefCell::new(Vec::new()));
        let io = MemIo {
            input: RefCell::new(chunks.iter().map(|c| c.to_vec()).collect()),
            output: output.clone(),
        };
        let mut cfg = Config::default();
        cfg.limits.max_request_line = 256;
        cfg.limits.max_header_bytes = 1024;
        cfg.limits.max_headers = 16;
        cfg.limits.max_body = 4096;
        cfg.linger = Duration::ZERO;
        let seen = Rc::new(RefCell::new(String::new()));
        let log = seen.clone();
        let handler = move |mut req: Request| {
            let mut body = Vec::new();
            let r = req.read_to_end(&mut body);
            let line = format!(
                "{} {} {:?} {:?} body={:?} {:?}\n",
                req.method(),
                req.uri(),
                req.version(),
                req.headers(),
                String::from_utf8_lossy(&body),
                r.map_err(|e| e.kind()),
            );
            log.borrow_mut().push_str(&line);
            if req.path() == "/stream" {
                return Response::from_reader(io::Cursor::new(body));
            }
            Response::text(format!("{} bytes", body.len()))
        };
        let peer = SocketAddr::from(([192, 0, 2, 1], 1234));
        let sh = Rc::new(Shared::new(io, Rc::new(cfg)));
        conn::serve(sh, &handler, peer, None);
        let out = String::from_utf8_lossy(&output.borrow()).into_owned();
        let out: String = out
            .split_inclusive("\r\n")
            .filter(|l| !l.starts_with("Date: "))
            .collect();
        let mut t = seen.take();
        t.push_str("--\n");
        t.push_str(&out);
        t
    }
}
