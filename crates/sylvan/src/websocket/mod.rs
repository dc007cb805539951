//! WebSocket (RFC 6455) sessions, server and client, with plain blocking
//! calls: [`WebSocket::recv`] and [`WebSocket::send`].
//!
//! On the server, a handler calls [`accept`] with the upgrade request and
//! a closure; it returns the `101 Switching Protocols` response (or a
//! `400`/`426` if the request is not a valid upgrade), and after the
//! server has sent it, the closure runs in the connection's green thread
//! with the [`WebSocket`]. Over an HTTPS server the session is `wss://`.
//! A client opens one with [`connect`] or a [`ClientBuilder`] (`ws://`
//! and `wss://`). Both sides share one frame codec (the client masks what
//! it sends) and the same [`Options`].
//!
//! - **permessage-deflate** (RFC 7692): used when both sides want it
//!   ([`Options::deflate`], on by default): a server accepts a client's
//!   offer (honouring `server_max_window_bits` and the
//!   `*_no_context_takeover` parameters), a client offers it (and honours
//!   `client_max_window_bits`). The size limits apply to the inflated
//!   message.
//! - **Pings and idle timeout**: while a session waits in `recv`, it sends a
//!   ping after [`Options::ping_interval`] without traffic from the peer,
//!   and fails with `TimedOut` once nothing at all (not even a pong) came
//!   for [`Options::idle_timeout`] — so a half-open connection is found.
//!   Pings from the peer are answered automatically.
//! - **Close handshake**: when the peer closes, `recv` completes the
//!   handshake and returns [`Error::Closed`]; [`WebSocket::close`] starts
//!   one and waits (bounded) for the peer's reply; a session closure that
//!   returns with the socket open closes it with `1000`.
//! - **Limits**: a received message over [`Options::max_message_size`]
//!   (64 KiB by default; inflated, under permessage-deflate) closes the
//!   session with `1009` and `recv` returns [`Error::TooLarge`]; the
//!   server goes on. Memory per session and in
//!   total is bounded by the settings: see [`Options`]' *Memory* section.
//! - **Sharing**: `WebSocket` is a cheap clonable handle; one green thread
//!   may wait in `recv` while others `send` (a chat server broadcasts that
//!   way).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use sylvan::http::Server;
//! use sylvan::websocket::{self, Message};
//!
//! // An echo server.
//! let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| {
//!     websocket::accept(&req, |ws| {
//!         while let Ok(msg) = ws.recv() {
//!             if ws.send(msg).is_err() {
//!                 break;
//!             }
//!         }
//!     })
//! });
//! # let addr = server.local_addr();
//! # // A minimal client on a raw socket: handshake, one masked text frame.
//! # use std::io::{Read, Write};
//! # let mut c = sylvan::connect(addr).unwrap();
//! # c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
//! #   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
//! # let mut head = Vec::new();
//! # while !head.ends_with(b"\r\n\r\n") {
//! #     let mut b = [0; 1];
//! #     c.read_exact(&mut b).unwrap();
//! #     head.push(b[0]);
//! # }
//! # let head = String::from_utf8(head).unwrap();
//! # assert!(head.starts_with("HTTP/1.1 101 Switching Protocols"), "{head}");
//! # assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
//! # let mask = [1u8, 2, 3, 4];
//! # let mut frame = vec![0x81, 0x80 | 2];
//! # frame.extend_from_slice(&mask);
//! # frame.extend(b"hi".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
//! # c.write_all(&frame).unwrap();
//! # let mut back = [0; 4];
//! # c.read_exact(&mut back).unwrap();
//! # assert_eq!(&back, &[0x81, 2, b'h', b'i']);
//! # server.stop(Duration::from_millis(100));
//! # let _ = Message::text("unused");
//! ```

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tungstenite::protocol::Role;

use crate::http::{Request, Response, Upgraded};
use crate::sync::Semaphore;

mod client;
mod codec;
mod conn;
mod deflate;
mod stream;

#[doc(hidden)]
pub mod __private {
    //! For the fuzz target only: not a stable API.
    pub use super::codec::fuzz_decode;
}

pub use client::{ClientBuilder, connect};
use conn::{Conn, ConnError};
use stream::{WsIo, WsStream};

pub use tungstenite::protocol::CloseFrame;
pub use tungstenite::protocol::frame::coding::CloseCode;
pub use tungstenite::{Bytes, Message, Utf8Bytes};

/// Why a WebSocket call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The session is over: the close handshake completed (with the peer's
    /// close frame, if it sent one), or it had ended before the call
    /// (`None`). A peer that goes away without a close frame is
    /// [`Error::Io`] with `UnexpectedEof`.
    Closed(Option<CloseFrame>),
    /// A message exceeded [`Options::max_message_size`] (the session was
    /// closed with `1009`).
    TooLarge(String),
    /// The peer broke the protocol (the session was closed with `1002` or
    /// `1007`).
    Protocol(String),
    /// The server did not accept the client's upgrade request (a status
    /// other than `101`, a wrong `Sec-WebSocket-Accept`...), or answered
    /// with something that is not HTTP.
    Handshake(String),
    /// An I/O error: the socket failed, the peer closed the connection
    /// without a close frame (`UnexpectedEof`, also in the middle of a
    /// frame), a write timed out, the idle timeout passed (`TimedOut`), or the green thread was killed or its deadline
    /// passed (see [`Cancelled::from_io`](crate::Cancelled::from_io)).
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Closed(Some(c)) => write!(f, "websocket closed: {} {}", c.code, c.reason),
            Error::Closed(None) => f.write_str("websocket closed"),
            Error::TooLarge(m) => write!(f, "websocket message too large: {m}"),
            Error::Protocol(m) => write!(f, "websocket protocol error: {m}"),
            Error::Handshake(m) => write!(f, "websocket handshake failed: {m}"),
            Error::Io(e) => write!(f, "websocket I/O error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io(e) => e,
            Error::Closed(_) => io::Error::new(io::ErrorKind::ConnectionAborted, e),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// Settings of WebSocket sessions; [`Options::accept`] upgrades with them.
///
/// # Memory
///
/// The defaults are sized for a server with many sessions. What one
/// session holds, at most, is about
///
/// ```text
///   read_buffer_size             (8 KiB)   allocated up front
/// + 2 × max_frame_size           (128 KiB) a frame being received, and its unmasked payload
/// + max_message_size             (64 KiB)  a fragmented message being reassembled
/// + the largest message it sends           framed into one buffer, then written
/// ```
///
/// — about 200 KiB with the defaults, plus what the application keeps and
/// what it sends (sends are written at once, with a blocking write: a slow
/// peer makes `send` wait instead of queueing). An unfragmented message is
/// not copied again, so for such traffic the message term does not add
/// up; the read buffer shrinks back to `read_buffer_size` after a large
/// frame. With permessage-deflate, add `max_message_size` for the
/// inflated message and zlib's state (see [`Options::deflate`]).
///
/// Every session is an upgraded connection of the [`Server`], so
/// [`Server::max_connections`] bounds their number, and
/// `max_connections × per-session bound` bounds the total: 1,024
/// connections (the default) × ~200 KiB ≈ 200 MiB. To serve larger
/// messages, raise the limits and lower `max_connections` to keep that
/// product within the memory you can give the server (e.g. 1 MiB messages
/// and frames, 256 connections: ~768 MiB).
///
/// [`Server`]: crate::http::Server
/// [`Server::max_connections`]: crate::http::Server::max_connections
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::http::Server;
/// use sylvan::websocket::Options;
///
/// // Up to 1 MiB messages, at most 256 sessions: about 512 MiB at worst.
/// let opts = Options::new()
///     .ping_interval(Some(Duration::from_secs(10)))
///     .idle_timeout(Some(Duration::from_secs(30)))
///     .max_message_size(1 << 20)
///     .max_frame_size(1 << 20)
///     .protocols(["chat"]);
/// let server = Server::bind("127.0.0.1:0")
///     .unwrap()
///     .max_connections(256)
///     .unwrap()
///     .serve(move |req| opts.accept(&req, |_ws| {}));
/// # let _ = server;
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    max_message_size: usize,
    max_frame_size: usize,
    read_buffer_size: usize,
    ping_interval: Option<Duration>,
    idle_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    close_timeout: Duration,
    protocols: Vec<String>,
    deflate: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options::new()
    }
}

impl Options {
    /// The defaults listed on each setter.
    pub fn new() -> Options {
        Options {
            max_message_size: 64 << 10,
            max_frame_size: 64 << 10,
            read_buffer_size: 8 << 10,
            ping_interval: Some(Duration::from_secs(30)),
            idle_timeout: Some(Duration::from_secs(90)),
            write_timeout: Some(Duration::from_secs(30)),
            close_timeout: Duration::from_secs(5),
            protocols: Vec::new(),
            deflate: true,
        }
    }

    /// Largest message, after reassembling fragments (default 64 KiB);
    /// larger closes the session with `1009`. See *Memory* above.
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = sylvan::websocket::Options::new().max_message_size(1 << 20);
    /// # let _ = opts;
    /// ```
    pub fn max_message_size(mut self, bytes: usize) -> Options {
        self.max_message_size = bytes;
        self
    }

    /// Largest single frame's payload (default 64 KiB); larger closes the
    /// session with `1009`. Browsers send a message in one frame, so keep
    /// it at [`max_message_size`](Self::max_message_size) unless peers
    /// fragment.
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = sylvan::websocket::Options::new().max_message_size(1 << 20).max_frame_size(1 << 20);
    /// # let _ = opts;
    /// ```
    pub fn max_frame_size(mut self, bytes: usize) -> Options {
        self.max_frame_size = bytes;
        self
    }

    /// Bytes read from the socket at a time, allocated when the session
    /// starts (default 8 KiB; at least 1). Larger speeds up sessions that
    /// receive a lot; smaller saves memory across many idle ones.
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = sylvan::websocket::Options::new().read_buffer_size(64 * 1024)?;
    /// # let _ = opts;
    /// let e = sylvan::websocket::Options::new().read_buffer_size(0).unwrap_err();
    /// assert!(e.to_string().contains("read_buffer_size(0)"), "{e}");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidInput`, naming the setting, for 0.
    pub fn read_buffer_size(mut self, bytes: usize) -> io::Result<Options> {
        if bytes == 0 {
            return Err(crate::settings::invalid(
                "websocket::Options::read_buffer_size",
                bytes,
                "a session reads at least 1 byte at a time",
            ));
        }
        self.read_buffer_size = bytes;
        Ok(self)
    }

    /// Send a ping after this long without hearing from the peer (default
    /// 30 s; `None`: never).
    pub fn ping_interval(mut self, d: Option<Duration>) -> Options {
        self.ping_interval = d.filter(|d| !d.is_zero());
        self
    }

    /// Fail `recv` with `TimedOut` after this long without any frame from
    /// the peer (default 90 s; `None`: wait forever).
    pub fn idle_timeout(mut self, d: Option<Duration>) -> Options {
        self.idle_timeout = d.filter(|d| !d.is_zero());
        self
    }

    /// Timeout of each socket write (default 30 s; `None`: none).
    pub fn write_timeout(mut self, d: Option<Duration>) -> Options {
        self.write_timeout = d.filter(|d| !d.is_zero());
        self
    }

    /// How long [`WebSocket::close`] waits for the peer's close frame
    /// (default 5 s).
    pub fn close_timeout(mut self, d: Duration) -> Options {
        self.close_timeout = d;
        self
    }

    /// Whether to use permessage-deflate (RFC 7692) when the other side
    /// agrees (default on): a server accepts a client's offer, a client
    /// offers it. Messages are then compressed, each in one frame;
    /// [`max_message_size`](Self::max_message_size) limits a message's
    /// inflated size (a decompression bomb is refused with `1009` as soon
    /// as its output passes the limit), and
    /// [`max_frame_size`](Self::max_frame_size) the compressed frames.
    ///
    /// # Memory
    ///
    /// zlib's state is made at first use: about 44 KiB to inflate, made
    /// when the first compressed message arrives, and up to about 256 KiB
    /// to deflate (a 32 KiB window; less when the peer asks for a smaller
    /// one), made at the first send. A server with many sessions that
    /// send can turn it off to keep the per-session bound in *Memory*
    /// above.
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = sylvan::websocket::Options::new().deflate(false);
    /// # let _ = opts;
    /// ```
    pub fn deflate(mut self, on: bool) -> Options {
        self.deflate = on;
        self
    }

    /// Subprotocols the server speaks, in preference order; the first one
    /// the client also offers is selected (default: none). On a client
    /// ([`ClientBuilder::options`]), the subprotocols offered.
    pub fn protocols<S: Into<String>>(mut self, list: impl IntoIterator<Item = S>) -> Options {
        self.protocols = list.into_iter().map(Into::into).collect();
        self
    }

    /// Validates the upgrade request and returns the response for the
    /// handler to return: `101` with `session` to run on the connection
    /// afterwards, or `426` (not a WebSocket upgrade, or a version other
    /// than 13) / `400` (a malformed one), in which case `session` never
    /// runs.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::http::Server;
    /// use sylvan::websocket::Options;
    ///
    /// let opts = Options::new().protocols(["chat.v1"]);
    /// let server = Server::bind("127.0.0.1:0").unwrap().serve(move |req| {
    ///     opts.accept(&req, |ws| {
    ///         let _ = ws.send(format!("protocol {:?}", ws.protocol()));
    ///     })
    /// });
    /// # let _ = server;
    /// ```
    pub fn accept(&self, req: &Request, session: impl FnOnce(WebSocket) + 'static) -> Response {
        let h = req.headers();
        if !h.has_token("connection", "upgrade") || !h.has_token("upgrade", "websocket") {
            return Response::text("this resource expects a WebSocket upgrade\n")
                .with_status(426)
                .header("Upgrade", "websocket")
                .header("Sec-WebSocket-Version", "13");
        }
        if req.method() != "GET" || req.version() != crate::http::Version::Http11 {
            return Response::text("a WebSocket upgrade must be an HTTP/1.1 GET\n")
                .with_status(400);
        }
        if h.get("sec-websocket-version").map(str::trim) != Some("13") {
            return Response::text("unsupported WebSocket version\n")
                .with_status(426)
                .header("Sec-WebSocket-Version", "13");
        }
        let key = match h.get("sec-websocket-key").map(str::trim) {
            Some(k) if valid_key(k) => k,
            _ => {
                return Response::text("missing or invalid Sec-WebSocket-Key\n").with_status(400);
            }
        };
        let offered: Vec<&str> = h
            .get_all("sec-websocket-protocol")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        let protocol = self
            .protocols
            .iter()
            .find(|p| offered.iter().any(|o| o == p))
            .cloned();
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let mut resp = Response::new(101)
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Accept", accept);
        if let Some(p) = &protocol {
            resp = resp.header("Sec-WebSocket-Protocol", p.clone());
        }
        let agreed = if self.deflate {
            deflate::server_accept(h.get_all("sec-websocket-extensions"))
        } else {
            None
        };
        let agreed = agreed.map(|(a, header)| {
            resp = std::mem::replace(&mut resp, Response::new(101))
                .header("Sec-WebSocket-Extensions", header);
            a
        });
        let opts = self.clone();
        resp.on_upgrade(move |up| {
            let ws = WebSocket::new(up, opts, protocol, agreed);
            session(ws.clone());
            ws.finish();
        })
    }
}

/// A key is the base64 of 16 bytes: 24 characters ending in `==`.
fn valid_key(k: &str) -> bool {
    k.len() == 24
        && k.ends_with("==")
        && k[..22]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Whether `req` asks for a WebSocket upgrade (`Connection: Upgrade` and
/// `Upgrade: websocket`).
///
/// # Examples
///
/// ```
/// use sylvan::http::{Response, Server};
///
/// let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| {
///     if sylvan::websocket::is_upgrade(&req) {
///         sylvan::websocket::accept(&req, |_ws| {})
///     } else {
///         Response::html("<script>new WebSocket(location.href.replace('http', 'ws'))</script>")
///     }
/// });
/// # let _ = server;
/// ```
pub fn is_upgrade(req: &Request) -> bool {
    let h = req.headers();
    h.has_token("connection", "upgrade") && h.has_token("upgrade", "websocket")
}

/// Upgrades `req` with the default [`Options`]; see [`Options::accept`].
///
/// # Examples
///
/// ```
/// use sylvan::http::Server;
///
/// let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| {
///     sylvan::websocket::accept(&req, |ws| {
///         let _ = ws.send("welcome");
///     })
/// });
/// # let _ = server;
/// ```
pub fn accept(req: &Request, session: impl FnOnce(WebSocket) + 'static) -> Response {
    Options::new().accept(req, session)
}

struct Inner {
    ws: RefCell<Conn>,
    io: Rc<WsStream>,
    lock: Semaphore,
    opts: Options,
    protocol: Option<String>,
    peer: Option<SocketAddr>,
    compressed: bool,
    last_heard: Cell<Instant>,
    next_ping: Cell<Option<Instant>>,
    closed: Cell<bool>,
}

/// One WebSocket session; a cheap clonable handle (clones share it).
///
/// # Cancellation
///
/// [`recv`](Self::recv), [`send`](Self::send) and [`close`](Self::close)
/// block the calling green thread; killed or past its deadline, the call
/// returns [`Error::Io`] with the `Cancelled` error. A cancelled `recv`
/// loses nothing (a partly received frame stays buffered); a cancelled
/// `send` may have written part of a frame, after which the session is
/// unusable — close it.
#[derive(Clone)]
pub struct WebSocket {
    inner: Rc<Inner>,
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("peer", &self.inner.peer)
            .field("protocol", &self.inner.protocol)
            .field("closed", &self.inner.closed.get())
            .finish()
    }
}

fn now() -> Instant {
    crate::time::now()
}

impl WebSocket {
    fn new(
        up: Upgraded,
        opts: Options,
        protocol: Option<String>,
        agreed: Option<deflate::Agreed>,
    ) -> WebSocket {
        let (io, early) = up.into_io();
        WebSocket::from_stream(io.into(), early, Role::Server, opts, protocol, agreed)
    }

    /// A session over `io` after a completed opening handshake; `early`
    /// are bytes read past it.
    fn from_stream(
        io: WsStream,
        early: Vec<u8>,
        role: Role,
        opts: Options,
        protocol: Option<String>,
        agreed: Option<deflate::Agreed>,
    ) -> WebSocket {
        let _ = io.tcp().set_write_timeout(opts.write_timeout);
        let _ = io.tcp().set_read_timeout(None);
        let peer = io.tcp().peer_addr().ok();
        let io = Rc::new(io);
        // Sends are written at once: the write buffer holds one framed
        // message, never a backlog.
        let codec = codec::Codec::new(
            role,
            opts.max_frame_size,
            opts.max_message_size,
            agreed.map(deflate::Deflate::new),
        );
        let ws = Conn::new(WsIo(io.clone()), codec, early, opts.read_buffer_size);
        let t = now();
        WebSocket {
            inner: Rc::new(Inner {
                compressed: ws.compresses(),
                ws: RefCell::new(ws),
                io,
                lock: Semaphore::new(1),
                next_ping: Cell::new(opts.ping_interval.map(|d| t + d)),
                opts,
                protocol,
                peer,
                last_heard: Cell::new(t),
                closed: Cell::new(false),
            }),
        }
    }

    /// Whether permessage-deflate is in use (see [`Options::deflate`]).
    pub fn is_compressed(&self) -> bool {
        self.inner.compressed
    }

    /// The selected subprotocol, if any (see [`Options::protocols`]).
    pub fn protocol(&self) -> Option<&str> {
        self.inner.protocol.as_deref()
    }

    /// The client's address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.inner.peer
    }

    /// Whether the session is over (closed by either side, or failed).
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Runs `f` on the connection under the session lock.
    fn with_ws<R>(&self, f: impl FnOnce(&mut Conn) -> R) -> Result<R, Error> {
        let _permit = self.inner.lock.acquire().map_err(|c| Error::Io(c.into()))?;
        let mut ws = self.inner.ws.borrow_mut();
        Ok(f(&mut ws))
    }

    /// Waits for the next text or binary message.
    ///
    /// Pings are answered and pongs absorbed here; while waiting, a ping is
    /// sent after [`Options::ping_interval`] of silence.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::websocket::{self, Message};
    /// # use sylvan::http::Server;
    ///
    /// # let _ = Server::bind("127.0.0.1:0").unwrap().serve(|req| {
    /// websocket::accept(&req, |ws| {
    ///     while let Ok(msg) = ws.recv() {
    ///         if let Message::Text(t) = msg {
    ///             let _ = ws.send(Message::text(t.to_uppercase()));
    ///         }
    ///     }
    /// })
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once the session is over (the peer's close frame is
    /// in it when the peer closed); [`Error::TooLarge`],
    /// [`Error::Protocol`]; [`Error::Io`] with `TimedOut` after
    /// [`Options::idle_timeout`] of silence (the session is then closed
    /// with `1001`).
    ///
    /// # Cancellation
    ///
    /// See [`WebSocket`]: nothing received is lost.
    pub fn recv(&self) -> Result<Message, Error> {
        let inner = &*self.inner;
        loop {
            if inner.closed.get() {
                return Err(Error::Closed(None));
            }
            match self.with_ws(|ws| ws.read())? {
                Ok(Message::Ping(_)) | Ok(Message::Pong(_)) | Ok(Message::Frame(_)) => {
                    self.heard();
                    // Send the queued pong now rather than on the next read.
                    let _ = self.with_ws(|ws| ws.flush());
                    continue;
                }
                Ok(Message::Close(frame)) => {
                    self.heard();
                    let _ = self.with_ws(|ws| ws.flush());
                    inner.closed.set(true);
                    return Err(Error::Closed(frame));
                }
                Ok(msg) => {
                    self.heard();
                    return Ok(msg);
                }
                Err(ConnError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(self.fail(e)),
            }
            self.wait_readable()?;
        }
    }

    fn heard(&self) {
        let t = now();
        self.inner.last_heard.set(t);
        if let Some(d) = self.inner.opts.ping_interval {
            self.inner.next_ping.set(Some(t + d));
        }
    }

    /// Parks until the socket is readable, sending pings when due; fails
    /// when the idle timeout passes.
    fn wait_readable(&self) -> Result<(), Error> {
        let inner = &*self.inner;
        loop {
            let t = now();
            let idle_at = inner.opts.idle_timeout.map(|d| inner.last_heard.get() + d);
            if idle_at.is_some_and(|at| t >= at) {
                let frame = CloseFrame {
                    code: CloseCode::Away,
                    reason: "idle timeout".into(),
                };
                let _ = self.close_quietly(Some(frame));
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "websocket idle timeout",
                )));
            }
            if let Some(at) = inner.next_ping.get().filter(|&at| t >= at) {
                let _ = at;
                inner.next_ping.set(inner.opts.ping_interval.map(|d| t + d));
                match self.with_ws(|ws| ws.send(Message::Ping(Bytes::new())))? {
                    Ok(()) => {}
                    Err(e) => return Err(self.fail(e)),
                }
                continue;
            }
            let wake = match (idle_at, inner.next_ping.get()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let mut probe = [0u8; 1];
            let r = match wake {
                None => inner.io.tcp().peek(&mut probe),
                Some(at) => match crate::deadline(at, || inner.io.tcp().peek(&mut probe)) {
                    Ok(r) => r,
                    Err(_elapsed) => continue,
                },
            };
            return match r {
                Ok(_) => Ok(()), // data, or end of stream for the next read to see
                Err(e) => {
                    // A kill or an expired scope leaves the session usable;
                    // a socket error ends it.
                    if crate::Cancelled::from_io(&e).is_none() {
                        inner.closed.set(true);
                    }
                    Err(Error::Io(e))
                }
            };
        }
    }

    /// Sends a message (text, binary, ping; a close frame starts the close
    /// handshake as [`close`](Self::close) does, without waiting).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::websocket::{self, Message};
    /// # use sylvan::http::Server;
    ///
    /// # let _ = Server::bind("127.0.0.1:0").unwrap().serve(|req| {
    /// websocket::accept(&req, |ws| {
    ///     let _ = ws.send("text from a &str");
    ///     let _ = ws.send(Message::binary(vec![1, 2, 3]));
    /// })
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after the session ended; [`Error::TooLarge`] for a
    /// message over the limit; [`Error::Io`] if the write fails or times out.
    ///
    /// # Cancellation
    ///
    /// See [`WebSocket`].
    pub fn send(&self, msg: impl Into<Message>) -> Result<(), Error> {
        if self.inner.closed.get() {
            return Err(Error::Closed(None));
        }
        match self.with_ws(|ws| ws.send(msg.into()))? {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Closes the session: sends a close frame (`1000` without one), then
    /// waits up to [`Options::close_timeout`] for the peer's, discarding
    /// messages that arrive meanwhile.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::websocket::{self, CloseCode, CloseFrame};
    /// # use sylvan::http::Server;
    ///
    /// # let _ = Server::bind("127.0.0.1:0").unwrap().serve(|req| {
    /// websocket::accept(&req, |ws| {
    ///     let _ = ws.close(Some(CloseFrame { code: CloseCode::Policy, reason: "bye".into() }));
    /// })
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the close frame cannot be sent or the peer does not
    /// answer in time; closing a closed session is `Ok`.
    ///
    /// # Cancellation
    ///
    /// See [`WebSocket`]; the socket closes when the last handle drops.
    pub fn close(&self, frame: Option<CloseFrame>) -> Result<(), Error> {
        if self.inner.closed.get() {
            return Ok(());
        }
        let frame = frame.or(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }));
        match self.with_ws(|ws| ws.close(frame))? {
            Ok(()) | Err(ConnError::Closed) => {}
            Err(e) => return Err(self.fail(e)),
        }
        let r = crate::timeout(self.inner.opts.close_timeout, || {
            loop {
                match self.recv() {
                    Ok(_) => continue,
                    Err(Error::Closed(_)) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        });
        self.inner.closed.set(true);
        match r {
            Ok(r) => r,
            Err(_) => Err(Error::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "websocket peer did not answer the close frame",
            ))),
        }
    }

    /// Best-effort close without waiting for the reply.
    fn close_quietly(&self, frame: Option<CloseFrame>) -> Result<(), Error> {
        let r = self.with_ws(|ws| ws.close(frame));
        self.inner.closed.set(true);
        self.inner.io.shutdown_write();
        r.map(|_| ())
    }

    /// After the session closure returned: close if still open.
    fn finish(&self) {
        if !self.inner.closed.get() && crate::runtime::check_cancelled().is_ok() {
            let _ = self.close(None);
        }
        self.inner.closed.set(true);
    }

    /// Maps a connection error, closing the session where RFC 6455 says
    /// to.
    fn fail(&self, e: ConnError) -> Error {
        use codec::CodecError as C;
        let (err, code) = match e {
            ConnError::Closed => (Error::Closed(None), None),
            ConnError::Io(e) => (Error::Io(e), None),
            ConnError::Reset => (
                Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection without a WebSocket close frame \
                     (possibly in the middle of a frame)",
                )),
                None,
            ),
            ConnError::Codec(C::TooLarge(m)) => (Error::TooLarge(m), Some(CloseCode::Size)),
            ConnError::Codec(C::Protocol(m)) => (Error::Protocol(m), Some(CloseCode::Protocol)),
            ConnError::Codec(C::Invalid(m)) => (Error::Protocol(m), Some(CloseCode::Invalid)),
        };
        if let Some(code) = code {
            let _ = self.close_quietly(Some(CloseFrame {
                code,
                reason: "".into(),
            }));
        }
        self.inner.closed.set(true);
        err
    }
}
