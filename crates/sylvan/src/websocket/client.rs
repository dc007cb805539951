//! The client side: [`connect`] and [`ClientBuilder`] for `ws://` and
//! `wss://` URLs.

use std::fmt;
use std::io;
use std::time::Duration;

use tungstenite::protocol::Role;

use super::deflate::{self, Agreed};
use super::stream::WsStream;
use super::{Error, Options, WebSocket};
use crate::http::Url;
use crate::net::Connector;

/// Largest handshake response head the client reads.
const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in the handshake response.
const MAX_HEADERS: usize = 100;

/// Opens a WebSocket session to a `ws://` or `wss://` URL with the
/// default [`ClientBuilder`] (plain `ws://` only: `wss://` needs a TLS
/// configuration, see [`ClientBuilder::tls_config`]).
///
/// # Examples
///
/// ```
/// use sylvan::http::Server;
/// use sylvan::websocket::{self, Message};
///
/// let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| {
///     websocket::accept(&req, |ws| {
///         while let Ok(msg) = ws.recv() {
///             let _ = ws.send(msg);
///         }
///     })
/// });
/// let ws = websocket::connect(&format!("ws://{}/echo", server.local_addr())).unwrap();
/// ws.send("hello").unwrap();
/// assert_eq!(ws.recv().unwrap(), Message::text("hello"));
/// ws.close(None).unwrap();
/// ```
///
/// # Errors
///
/// As [`ClientBuilder::connect`].
///
/// # Cancellation
///
/// As [`ClientBuilder::connect`].
pub fn connect(url: &str) -> Result<WebSocket, Error> {
    ClientBuilder::new().connect(url)
}

/// Settings of WebSocket client connections; every setter states its
/// default. The session itself follows an [`Options`] (ping interval,
/// idle, write and close timeouts, size limits — as on the server;
/// [`Options::protocols`] are the subprotocols offered, in order).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::websocket::{ClientBuilder, Options};
///
/// let client = ClientBuilder::new()
///     .options(Options::new().ping_interval(Some(Duration::from_secs(15))).protocols(["chat"]))
///     .handshake_timeout(Duration::from_secs(5))
///     .header("Authorization", "Bearer xyz");
/// # let _ = client;
/// ```
#[derive(Clone)]
pub struct ClientBuilder {
    options: Options,
    connector: Connector,
    handshake_timeout: Duration,
    headers: Vec<(String, String)>,
    #[cfg(feature = "tls")]
    tls: Option<crate::net::tls::TlsConnector>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ClientBuilder");
        d.field("options", &self.options)
            .field("connector", &self.connector)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("headers", &self.headers.len());
        #[cfg(feature = "tls")]
        d.field("tls", &self.tls);
        d.finish()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder::new()
    }
}

impl ClientBuilder {
    /// The defaults, as each setter states.
    pub fn new() -> ClientBuilder {
        ClientBuilder {
            options: Options::new(),
            connector: Connector::new().connect_timeout(Duration::from_secs(30)),
            handshake_timeout: Duration::from_secs(30),
            headers: Vec::new(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The session's settings (default: [`Options::new`]).
    pub fn options(mut self, options: Options) -> ClientBuilder {
        self.options = options;
        self
    }

    /// The [`Connector`] that makes the TCP connection (default:
    /// `Connector::new()` with a 30 s connect timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::net::Connector;
    ///
    /// let c = sylvan::websocket::ClientBuilder::new()
    ///     .connector(Connector::new().connect_timeout(Duration::from_secs(2)));
    /// # let _ = c;
    /// ```
    pub fn connector(mut self, c: Connector) -> ClientBuilder {
        self.connector = c;
        self
    }

    /// Bounds the whole opening of a session — resolve, connect, TLS
    /// handshake, HTTP upgrade (default 30 s); past it, `connect` fails
    /// with `TimedOut`.
    pub fn handshake_timeout(mut self, d: Duration) -> ClientBuilder {
        self.handshake_timeout = d;
        self
    }

    /// An extra header for the upgrade request (e.g. `Authorization`,
    /// `Origin`); default none.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> ClientBuilder {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Enables `wss://` with this rustls configuration (default none, and
    /// `wss://` fails with `Unsupported`); feature `tls`. The same
    /// configuration as
    /// [`http::ClientBuilder::tls_config`](crate::http::ClientBuilder::tls_config)
    /// works here.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::net::tls::rustls;
    ///
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let roots = rustls::RootCertStore::empty(); // add your CA's certificates here
    /// let config = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()
    ///     .unwrap()
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let c = sylvan::websocket::ClientBuilder::new().tls_config(Arc::new(config));
    /// # let _ = c;
    /// ```
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_config(self, config: std::sync::Arc<rustls::ClientConfig>) -> ClientBuilder {
        self.tls_connector(crate::net::tls::TlsConnector::new(config))
    }

    /// Enables `wss://` with this [`TlsConnector`](crate::net::tls::TlsConnector)
    /// (default none); feature `tls`.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_connector(mut self, c: crate::net::tls::TlsConnector) -> ClientBuilder {
        self.tls = Some(c);
        self
    }

    /// Opens a session to a `ws://` or `wss://` URL: connects, runs the
    /// TLS handshake for `wss://`, sends the upgrade request, and checks
    /// the server's `101` answer (its `Sec-WebSocket-Accept`, and that a
    /// subprotocol it picked was offered).
    ///
    /// # Examples
    ///
    /// ```
    /// let e = sylvan::websocket::ClientBuilder::new().connect("http://example.com/").unwrap_err();
    /// assert!(e.to_string().contains("ws://"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] for a bad URL (`InvalidInput`), `wss://` without a
    /// TLS configuration (`Unsupported`), resolve, connect and TLS
    /// failures, and `TimedOut` past the handshake timeout;
    /// [`Error::Handshake`] when the server does not accept the upgrade
    /// (its status is in the message).
    ///
    /// # Cancellation
    ///
    /// Killed or past an enclosing deadline: returns that error as
    /// [`Error::Io`]; the connection, if made, is closed.
    pub fn connect(&self, url: &str) -> Result<WebSocket, Error> {
        let (url, secure) = parse_url(url).map_err(Error::Io)?;
        let r = crate::timeout(self.handshake_timeout, || self.open(&url, secure));
        match r {
            Ok(r) => r,
            Err(_) => Err(Error::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "websocket handshake with {} timed out after {:?}",
                    url.authority(),
                    self.handshake_timeout
                ),
            ))),
        }
    }

    fn open(&self, url: &Url, secure: bool) -> Result<WebSocket, Error> {
        let stream = self.stream(url, secure).map_err(Error::Io)?;
        let (protocol, agreed, early) = handshake(&stream, url, &self.options, &self.headers)?;
        Ok(WebSocket::from_stream(
            stream,
            early,
            Role::Client,
            self.options.clone(),
            protocol,
            agreed,
        ))
    }

    fn stream(&self, url: &Url, secure: bool) -> io::Result<WsStream> {
        let tcp = self
            .connector
            .connect((url.host(), url.port()))
            .map_err(|e| {
                io::Error::new(e.kind(), format!("connecting to {}: {e}", url.authority()))
            })?;
        if !secure {
            return Ok(WsStream::Tcp(tcp));
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let s = tls.connect(url.host(), tcp)?;
            return Ok(WsStream::Tls(Box::new(crate::net::tls::SharedTls::new(s))));
        }
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            if cfg!(feature = "tls") {
                "wss:// needs a TLS configuration: set websocket::ClientBuilder::tls_config"
            } else {
                "wss:// needs sylvan's `tls` feature and websocket::ClientBuilder::tls_config"
            },
        ))
    }
}

/// Parses a `ws://` or `wss://` URL (as an `http(s)://` one: same ports,
/// same rules); the flag says `wss`.
fn parse_url(url: &str) -> io::Result<(Url, bool)> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad WebSocket URL {url:?}: expected ws:// or wss://"),
        )
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let secure = if scheme.eq_ignore_ascii_case("ws") {
        false
    } else if scheme.eq_ignore_ascii_case("wss") {
        true
    } else {
        return Err(bad());
    };
    if rest.contains('#') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad WebSocket URL {url:?}: a fragment is not allowed (RFC 6455 §3)"),
        ));
    }
    let http = format!("{}://{rest}", if secure { "https" } else { "http" });
    let u = Url::parse(&http).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad WebSocket URL {url:?}: {e}"),
        )
    })?;
    Ok((u, secure))
}

/// What the server's `101` settled: the subprotocol, the permessage-deflate
/// agreement, and the bytes read past the response head.
type Accepted = (Option<String>, Option<Agreed>, Vec<u8>);

/// Sends the upgrade request and reads the answer; returns the selected
/// subprotocol, the permessage-deflate agreement, and the bytes read past
/// the response head.
fn handshake(
    stream: &WsStream,
    url: &Url,
    opts: &Options,
    headers: &[(String, String)],
) -> Result<Accepted, Error> {
    let key = tungstenite::handshake::client::generate_key();
    let mut req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
        url.path_and_query(),
        url.authority()
    );
    if opts.deflate {
        req.push_str(&format!(
            "Sec-WebSocket-Extensions: {}\r\n",
            deflate::CLIENT_OFFER
        ));
    }
    if !opts.protocols.is_empty() {
        req.push_str(&format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            opts.protocols.join(", ")
        ));
    }
    for (n, v) in headers {
        if n.bytes().any(|b| b <= b' ' || b == b':' || b >= 0x7f) || v.contains(['\r', '\n']) {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad header for the WebSocket upgrade: {n:?}"),
            )));
        }
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).map_err(Error::Io)?;

    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let (head, used) = loop {
        match crate::http::parse::parse_response_head(&buf, MAX_HEAD, MAX_HEADERS) {
            Ok(Some(done)) => break done,
            Ok(None) if buf.len() > MAX_HEAD => {
                return Err(Error::Handshake(format!(
                    "the response head is larger than {MAX_HEAD} bytes"
                )));
            }
            Ok(None) => {}
            Err(m) => return Err(Error::Handshake(format!("malformed response: {m}"))),
        }
        let n = stream.read(&mut chunk).map_err(Error::Io)?;
        if n == 0 {
            return Err(Error::Handshake(
                "the server closed the connection before answering the upgrade".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if head.status != 101 {
        return Err(Error::Handshake(format!(
            "the server answered {} {} instead of 101 Switching Protocols",
            head.status, head.reason
        )));
    }
    let h = &head.headers;
    if !h.has_token("upgrade", "websocket") || !h.has_token("connection", "upgrade") {
        return Err(Error::Handshake(
            "the 101 response lacks Upgrade: websocket / Connection: Upgrade".into(),
        ));
    }
    let expected = tungstenite::handshake::derive_accept_key(key.as_bytes());
    if h.get("sec-websocket-accept").map(str::trim) != Some(expected.as_str()) {
        return Err(Error::Handshake(
            "the server's Sec-WebSocket-Accept does not match the key sent".into(),
        ));
    }
    let agreed =
        deflate::client_check(h.get_all("sec-websocket-extensions")).map_err(Error::Handshake)?;
    if agreed.is_some() && !opts.deflate {
        return Err(Error::Handshake(
            "the server selected permessage-deflate, which was not offered".into(),
        ));
    }
    let protocol = match h.get("sec-websocket-protocol").map(str::trim) {
        None | Some("") => None,
        Some(p) if opts.protocols.iter().any(|o| o == p) => Some(p.to_string()),
        Some(p) => {
            return Err(Error::Handshake(format!(
                "the server selected the subprotocol {p:?}, which was not offered"
            )));
        }
    };
    buf.drain(..used);
    Ok((protocol, agreed, buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let (u, s) = parse_url("ws://h:81/a?b").unwrap();
        assert!(!s);
        assert_eq!((u.host(), u.port(), u.path_and_query()), ("h", 81, "/a?b"));
        let (u, s) = parse_url("WSS://h").unwrap();
        assert!(s);
        assert_eq!((u.port(), u.path_and_query()), (443, "/"));
        for bad in ["http://h/", "h", "ws://h/#frag", "ws://", "ws://h:99999/"] {
            let e = parse_url(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}");
        }
    }
}
