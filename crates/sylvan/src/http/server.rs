//! [`Server`]: settings, the accept loop (on [`serve`](crate::net::serve)),
//! connection tracking for graceful stop.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::{Rc, Weak};
use std::time::Duration;

use super::conn::{self, Config, ConnState, Shared, Transport};
use super::parse::MAX_HEAD_LIMIT;
use super::request::Request;
use super::response::Response;
use crate::net::{ServeOptions, StopReport, TcpListener, TcpStream, ToSocketAddrs};

/// An HTTP/1.1 server: settings plus a bound listener; [`serve`](Self::serve)
/// starts it. Eventlet's `wsgi.server`, with plain Rust handlers.
///
/// Each connection runs in its own green thread, where the handler — a
/// plain `Fn(Request) -> Response` — is called once per request, in order
/// (pipelined requests are answered in order). Keep-alive follows HTTP/1.1
/// and HTTP/1.0 rules; request bodies stream through [`Request`]'s `Read`,
/// chunked or not; response bodies are bytes or a stream (chunked when the
/// length is unknown).
///
/// # Limits
///
/// A request that breaks a limit gets the status below and the connection
/// closes: request line over [`max_request_line`](Self::max_request_line)
/// → `414`; header section over [`max_header_size`](Self::max_header_size)
/// or more than [`max_headers`](Self::max_headers) fields → `431`; body
/// over [`max_body_size`](Self::max_body_size) → `413`; a malformed
/// request → `400`, including the request-smuggling shapes (both
/// `Content-Length` and `Transfer-Encoding`, duplicate or invalid
/// `Content-Length`, `chunked` not last) and more than four empty lines
/// before a request line (a few are ignored, as RFC 9112 §2.2 asks); a
/// transfer coding other than `chunked` → `501`. A head is parsed at most
/// twice however it is split into reads — when its request line ends and
/// when its end arrives — so a slow or byte-at-a-time client costs no more
/// than a fast one.
///
/// # Timeouts
///
/// Three, separately (Eventlet PR #116, gevent #1866):
/// [`header_timeout`](Self::header_timeout) bounds the whole time to
/// receive a request head once it started (or from accept, for the first
/// request) — a client that dribbles its headers gets `408` (slowloris);
/// [`keep_alive_timeout`](Self::keep_alive_timeout) bounds the wait for
/// the next request on an idle connection, which then closes silently;
/// [`io_timeout`](Self::io_timeout) bounds each read and write while a
/// request is handled.
///
/// Any duration is accepted; one past a year counts as a year (so
/// `Duration::MAX` means "never" without overflowing a deadline).
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use sylvan::http::{Response, Server};
///
/// let server = Server::bind("127.0.0.1:0")
///     .unwrap()
///     .max_connections(100)
///     .header_timeout(Duration::from_secs(5))
///     .serve(|req| match req.path() {
///         "/" => Response::text("hello, world\n"),
///         _ => Response::status_page(404),
///     });
///
/// let mut c = sylvan::connect(server.local_addr()).unwrap();
/// c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
/// let mut out = String::new();
/// c.read_to_string(&mut out).unwrap();
/// assert!(out.starts_with("HTTP/1.1 200 OK\r\n"));
/// assert!(out.ends_with("\r\n\r\nhello, world\n"));
///
/// let report = server.stop(Duration::from_secs(1));
/// assert_eq!(report.killed, 0);
/// ```
pub struct Server {
    listener: TcpListener,
    cfg: Config,
    max_connections: usize,
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    #[cfg(feature = "tls")]
    tls_handshake_timeout: Duration,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .field("config", &self.cfg)
            .field("max_connections", &self.max_connections)
            .field("tls", &self.is_tls())
            .finish()
    }
}

impl Server {
    /// Binds a listener on `addr` ([`listen`](crate::listen): backlog
    /// 1024, `SO_REUSEADDR`) with the default settings.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = sylvan::http::Server::bind("127.0.0.1:0").unwrap();
    /// assert!(s.local_addr().unwrap().ip().is_loopback());
    /// ```
    ///
    /// # Errors
    ///
    /// As [`listen`](crate::listen).
    ///
    /// # Cancellation
    ///
    /// Blocks only to resolve a host name (on the thread pool); if the
    /// green thread is killed or its deadline passes then, returns that
    /// error and nothing is bound or connected.
    #[track_caller]
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Server> {
        Ok(Server::from_listener(crate::listen(addr)?))
    }

    /// Serves on an existing listener, e.g. one opened with
    /// `SO_REUSEPORT` on each hub of a [`Runtime`](crate::Runtime).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::net::ListenOptions::new().reuse_port(true).bind("127.0.0.1:0").unwrap();
    /// let s = sylvan::http::Server::from_listener(l);
    /// assert!(s.local_addr().is_ok());
    /// ```
    pub fn from_listener(listener: TcpListener) -> Server {
        Server {
            listener,
            cfg: Config::default(),
            max_connections: 1024,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "tls")]
            tls_handshake_timeout: crate::net::tls::DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// Whether the server speaks HTTPS (see [`tls`](Self::tls)).
    pub fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        return false;
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Connections served at once (default 1024, Eventlet's `max_size`);
    /// more wait in the kernel's accept backlog, not dropped.
    ///
    /// This is also how to bound the server's memory: it is at most this
    /// many times what one connection may hold. An HTTP connection holds a
    /// read buffer that grows up to
    /// [`max_request_line`](Self::max_request_line) +
    /// [`max_header_size`](Self::max_header_size) + 8 KiB (80 KiB by
    /// default) and about 64 KiB of response being gathered, plus what its
    /// handler keeps; an upgraded one (a WebSocket session) what its
    /// settings allow — see [`websocket::Options`](crate::websocket::Options).
    pub fn max_connections(mut self, n: usize) -> Server {
        self.max_connections = n.max(1);
        self
    }

    /// Longest request line, CRLF included (default 8 KiB; at least 16
    /// bytes, at most 1 GiB); longer → `414`.
    ///
    /// With [`max_header_size`](Self::max_header_size) it also bounds each
    /// connection's read buffer: their sum plus 8 KiB.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::http::Server;
    ///
    /// let s = Server::bind("127.0.0.1:0").unwrap().max_request_line(16 * 1024).unwrap();
    /// # let _ = s;
    /// let e = Server::bind("127.0.0.1:0").unwrap().max_request_line(usize::MAX).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    /// assert!(e.to_string().contains("max_request_line"));
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidInput`, naming the setting, for more than 1 GiB.
    pub fn max_request_line(mut self, bytes: usize) -> io::Result<Server> {
        self.cfg.limits.max_request_line = head_limit("max_request_line", bytes)?;
        Ok(self)
    }

    /// Largest header section after the request line (default 64 KiB; at
    /// least 16 bytes, at most 1 GiB); larger → `431`. Also bounds a
    /// chunked body's trailer section.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::http::Server;
    ///
    /// let s = Server::bind("127.0.0.1:0").unwrap().max_header_size(256 * 1024).unwrap();
    /// # let _ = s;
    /// let e = Server::bind("127.0.0.1:0").unwrap().max_header_size(1 << 40).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    /// assert!(e.to_string().contains("max_header_size"));
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidInput`, naming the setting, for more than 1 GiB.
    pub fn max_header_size(mut self, bytes: usize) -> io::Result<Server> {
        self.cfg.limits.max_header_bytes = head_limit("max_header_size", bytes)?;
        Ok(self)
    }

    /// Most header fields in a request (default 100; at least 1); more →
    /// `431`. Any value is safe, `usize::MAX` included: the memory a
    /// request takes follows the fields it has, and the header section is
    /// bounded by [`max_header_size`](Self::max_header_size) anyway.
    pub fn max_headers(mut self, n: usize) -> Server {
        self.cfg.limits.max_headers = n.max(1);
        self
    }

    /// Largest request body (default 16 MiB); larger → `413`, sent at once
    /// for a declared `Content-Length`, or in place of the handler's
    /// response when a chunked body grows past it while being read.
    pub fn max_body_size(mut self, bytes: u64) -> Server {
        self.cfg.limits.max_body = bytes;
        self
    }

    /// Longest time to receive a request head (default 20 s), counted from
    /// its first byte — or from accept, for a connection's first request;
    /// past it the client gets `408` and the connection closes.
    pub fn header_timeout(mut self, d: Duration) -> Server {
        self.cfg.header_timeout = d.clamp(Duration::from_millis(1), MAX_TIMEOUT);
        self
    }

    /// Longest wait for the next request on an idle keep-alive connection
    /// (default 60 s); past it the connection closes without a response.
    pub fn keep_alive_timeout(mut self, d: Duration) -> Server {
        self.cfg.keep_alive_timeout = d.clamp(Duration::from_millis(1), MAX_TIMEOUT);
        self
    }

    /// Timeout of each socket read and write while a request is handled
    /// (default 60 s; `None`: none). A body read that waits longer fails
    /// with `ErrorKind::TimedOut`; a response write that does closes the
    /// connection.
    pub fn io_timeout(mut self, d: Option<Duration>) -> Server {
        self.cfg.io_timeout = d.filter(|d| !d.is_zero()).map(|d| d.min(MAX_TIMEOUT));
        self
    }

    /// Whether connections may serve more than one request (default on).
    pub fn keep_alive(mut self, on: bool) -> Server {
        self.cfg.keep_alive = on;
        self
    }

    /// How long the server keeps reading (and discarding) after it sent a
    /// final error response and shut down its side, so the client reads
    /// the response rather than a reset (default 1 s).
    pub fn linger(mut self, d: Duration) -> Server {
        self.cfg.linger = d.min(MAX_TIMEOUT);
        self
    }

    /// Serves HTTPS with this rustls configuration (feature `tls`).
    ///
    /// The configuration's ALPN list is set to `http/1.1` (a client that
    /// offers only other protocols, such as `h2` alone, is refused with
    /// TLS's `no_application_protocol` alert). Each connection first
    /// completes its TLS handshake within
    /// [`tls_handshake_timeout`](Self::tls_handshake_timeout) (10 s by
    /// default) — a client that connects and says nothing, or too slowly,
    /// is dropped then, and a client whose handshake is garbage is
    /// dropped at once; then the request limits and the three timeouts
    /// apply as on plain HTTP, to the decrypted stream. Upgraded
    /// connections ([`Upgraded`](super::Upgraded), WebSocket sessions)
    /// stay encrypted: that is `wss://`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::http::{Response, Server};
    /// use sylvan::net::tls;
    ///
    /// let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// let config = tls::server_config(
    ///     tls::certs_from_pem(cert.cert.pem().as_bytes()).unwrap(),
    ///     tls::key_from_pem(cert.signing_key.serialize_pem().as_bytes()).unwrap(),
    /// )
    /// .unwrap();
    /// let server = Server::bind("127.0.0.1:0")
    ///     .unwrap()
    ///     .tls(Arc::new(config))
    ///     .serve(|_req| Response::text("hello over TLS\n"));
    /// # let _ = server;
    /// ```
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, config: std::sync::Arc<rustls::ServerConfig>) -> Server {
        let mut config = std::sync::Arc::unwrap_or_clone(config);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        self.tls = Some(std::sync::Arc::new(config));
        self
    }

    /// Serves HTTPS with a certificate chain and private key in PEM text
    /// (e.g. the contents of `fullchain.pem` and `privkey.pem`); see
    /// [`tls`](Self::tls), and [`tls_pem_files`](Self::tls_pem_files) to
    /// read them from files. Feature `tls`.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::http::{Response, Server};
    ///
    /// let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// let server = Server::bind("127.0.0.1:0")
    ///     .unwrap()
    ///     .tls_pem(cert.cert.pem().as_bytes(), cert.signing_key.serialize_pem().as_bytes())
    ///     .unwrap()
    ///     .serve(|_req| Response::text("hello over TLS\n"));
    /// # let _ = server;
    /// let e = Server::bind("127.0.0.1:0").unwrap().tls_pem(b"junk", b"junk").unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidData` for text without a certificate or a key;
    /// `InvalidInput` for a key that does not match the certificate.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_pem(self, cert_chain: &[u8], key: &[u8]) -> io::Result<Server> {
        use crate::net::tls;
        let config = tls::server_config(tls::certs_from_pem(cert_chain)?, tls::key_from_pem(key)?)?;
        Ok(self.tls(std::sync::Arc::new(config)))
    }

    /// As [`tls_pem`](Self::tls_pem), reading the PEM files at these paths.
    /// Feature `tls`.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = sylvan::http::Server::bind("127.0.0.1:0")
    ///     .unwrap()
    ///     .tls_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem")
    ///     .unwrap_err();
    /// assert!(e.to_string().contains("/nonexistent/cert.pem"));
    /// ```
    ///
    /// # Errors
    ///
    /// A file that cannot be read (the message names it), then as
    /// [`tls_pem`](Self::tls_pem).
    ///
    /// # Cancellation
    ///
    /// The files are read on the calling thread (they are small, and read
    /// once at start-up); nothing parks.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_pem_files(
        self,
        cert_chain: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> io::Result<Server> {
        let read = |p: &std::path::Path| {
            std::fs::read(p)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", p.display())))
        };
        let (c, k) = (read(cert_chain.as_ref())?, read(key.as_ref())?);
        self.tls_pem(&c, &k)
    }

    /// Longest time a TLS handshake may take, from accept (default 10 s);
    /// past it the connection is dropped. Has effect with
    /// [`tls`](Self::tls), before or after it. Feature `tls`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// let s = sylvan::http::Server::bind("127.0.0.1:0")
    ///     .unwrap()
    ///     .tls_handshake_timeout(Duration::from_secs(3))
    ///     .tls_pem(cert.cert.pem().as_bytes(), cert.signing_key.serialize_pem().as_bytes())
    ///     .unwrap();
    /// assert!(s.is_tls());
    /// ```
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_handshake_timeout(mut self, d: Duration) -> Server {
        self.tls_handshake_timeout = d.clamp(Duration::from_millis(1), MAX_TIMEOUT);
        self
    }

    /// Starts serving in a green thread of this hub; returns at once.
    ///
    /// A handler panic becomes a `500` for that request only (logged, and
    /// the connection closes). Each response is logged to the `tracing`
    /// target `sylvan::http::access` at `INFO`, in Common Log Format.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::http::{Response, Server};
    ///
    /// let server = Server::bind("127.0.0.1:0").unwrap().serve(|_req| Response::text("ok"));
    /// assert_eq!(server.active(), 0);
    /// ```
    pub fn serve<F>(self, handler: F) -> ServerHandle
    where
        F: Fn(Request) -> Response + 'static,
    {
        let local_addr = self
            .listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let registry = Rc::new(Registry::default());
        let reg = registry.clone();
        let cfg = Rc::new(self.cfg);
        let io_timeout = cfg.io_timeout;
        let handler: Rc<dyn Fn(Request) -> Response> = Rc::new(handler);
        #[cfg(feature = "tls")]
        let tls = self.tls.map(|c| {
            crate::net::tls::TlsAcceptor::new(c).handshake_timeout(self.tls_handshake_timeout)
        });
        let net = ServeOptions::new()
            .max_connections(self.max_connections)
            .serve(self.listener, move |stream: TcpStream, peer| {
                let _ = stream.set_nodelay(true);
                let _ = stream.set_write_timeout(io_timeout);
                #[cfg(feature = "tls")]
                if let Some(acceptor) = &tls {
                    // A failed handshake (garbage, a timeout, a client that
                    // refused the certificate) just closes the connection.
                    match acceptor.accept(stream) {
                        Ok(s) => {
                            let io = crate::net::tls::SharedTls::new(s);
                            serve_conn(io, &cfg, &reg, &*handler, peer);
                        }
                        Err(e) => {
                            tracing::debug!(target: "sylvan::http", %peer, "{e}");
                        }
                    }
                    return Ok::<(), io::Error>(());
                }
                serve_conn(stream, &cfg, &reg, &*handler, peer);
                Ok::<(), io::Error>(())
            });
        ServerHandle {
            net,
            registry,
            local_addr,
        }
    }
}

/// Serves one accepted connection, tracked for graceful stop.
fn serve_conn<T: Transport>(
    io: T,
    cfg: &Rc<Config>,
    reg: &Rc<Registry>,
    handler: &dyn Fn(Request) -> Response,
    peer: SocketAddr,
) {
    let sh = Rc::new(Shared::new(io, cfg.clone()));
    let entry = reg.register(sh.clone());
    conn::serve(sh, handler, peer, Some(&entry.state));
}

/// The longest timeout kept; longer ones are taken as this (a year is as
/// good as never, and deadlines computed from it cannot overflow).
const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Checks a request line or header section limit: at least 16 bytes (a
/// smaller value is raised to 16), at most [`MAX_HEAD_LIMIT`].
fn head_limit(setting: &str, bytes: usize) -> io::Result<usize> {
    if bytes > MAX_HEAD_LIMIT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "http::Server::{setting}({bytes}) is out of range: at most {MAX_HEAD_LIMIT} bytes (1 GiB)"
            ),
        ));
    }
    Ok(bytes.max(16))
}

/// What stop does to an idle connection: shut its socket down.
trait Closable {
    fn close(&self);
}

impl<T: Transport> Closable for Shared<T> {
    fn close(&self) {
        self.io.shutdown(Shutdown::Both);
    }
}

/// A connection as the registry sees it.
type Tracked = (Rc<Entry>, Weak<dyn Closable>);

/// The connections of a server, so that stop can close the idle ones.
#[derive(Default)]
struct Registry {
    draining: Rc<Cell<bool>>,
    next: Cell<u64>,
    conns: RefCell<HashMap<u64, Tracked>>,
}

struct Entry {
    id: u64,
    state: ConnState,
    registry: Weak<Registry>,
}

impl Registry {
    fn register<T: Transport>(self: &Rc<Self>, sh: Rc<Shared<T>>) -> EntryGuard {
        let id = self.next.get();
        self.next.set(id + 1);
        let entry = Rc::new(Entry {
            id,
            state: ConnState {
                idle: Cell::new(false),
                draining: self.draining.clone(),
            },
            registry: Rc::downgrade(self),
        });
        self.conns.borrow_mut().insert(
            id,
            (entry.clone(), Rc::downgrade(&(sh as Rc<dyn Closable>))),
        );
        EntryGuard(entry)
    }

    /// Marks the server draining and closes every idle connection.
    fn drain(&self) -> usize {
        self.draining.set(true);
        let idle: Vec<_> = self
            .conns
            .borrow()
            .values()
            .filter(|(e, _)| e.state.idle.get())
            .filter_map(|(_, sh)| sh.upgrade())
            .collect();
        for sh in &idle {
            sh.close();
        }
        idle.len()
    }
}

/// Unregisters its connection when the connection's green thread ends.
struct EntryGuard(Rc<Entry>);

impl std::ops::Deref for EntryGuard {
    type Target = Entry;
    fn deref(&self) -> &Entry {
        &self.0
    }
}

impl Drop for EntryGuard {
    fn drop(&mut self) {
        if let Some(r) = self.0.registry.upgrade() {
            if let Ok(mut c) = r.conns.try_borrow_mut() {
                c.remove(&self.0.id);
            }
        }
    }
}

/// A running [`Server`]: its address, and graceful [`stop`](Self::stop).
///
/// Dropping the handle leaves the server running.
pub struct ServerHandle {
    net: crate::net::ServerHandle,
    registry: Rc<Registry>,
    local_addr: SocketAddr,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .field("active", &self.active())
            .field("draining", &self.registry.draining.get())
            .finish()
    }
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Connections open now.
    pub fn active(&self) -> usize {
        self.net.active()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.net.accepted()
    }

    /// Stops gracefully: stops accepting, closes idle keep-alive
    /// connections at once, lets requests in flight finish (their responses
    /// carry `Connection: close`) until `grace` has passed, then kills what
    /// remains and waits for it to unwind. Upgraded connections (WebSocket)
    /// count as in flight.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::http::{Response, Server};
    ///
    /// let server = Server::bind("127.0.0.1:0").unwrap().serve(|_| Response::text("ok"));
    /// let addr = server.local_addr();
    /// let _idle = sylvan::connect(addr).unwrap(); // connected, no request
    /// while server.active() == 0 {
    ///     sylvan::yield_now();
    /// }
    /// let report = server.stop(Duration::from_secs(5));
    /// assert_eq!((report.finished, report.killed), (1, 0)); // closed at once
    /// assert!(sylvan::connect(addr).is_err());
    /// ```
    ///
    /// # Cancellation
    ///
    /// As [`net::ServerHandle::stop`](crate::net::ServerHandle::stop): if
    /// the caller is killed or its deadline passes, the grace period ends
    /// there, and the remaining connections are killed and waited for.
    pub fn stop(&self, grace: Duration) -> StopReport {
        let open = self.net.active();
        self.registry.drain();
        let report = self.net.stop(grace);
        StopReport {
            finished: open.saturating_sub(report.killed).max(report.finished),
            ..report
        }
    }

    /// Blocks until the server stops.
    ///
    /// # Cancellation
    ///
    /// Returns the error if the caller is killed or its deadline passes;
    /// the server keeps running.
    pub fn wait(&self) -> Result<(), crate::Cancelled> {
        self.net.wait()
    }
}
