//! TLS over green sockets, with [rustls] (feature `tls`).
//!
//! The handshake, reads and writes park only the calling green thread and
//! obey the same timeouts as the TCP stream underneath: a read that times
//! out returns `io::ErrorKind::TimedOut`, exactly as on plain TCP (Eventlet
//! issue #692 was a TLS timeout surfacing as another error type). The
//! handshake has its own timeout on top.
//!
//! [rustls] is re-exported, so configurations are built with the same
//! version sylvan uses.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;
use std::time::Duration;

pub use rustls;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection, StreamOwned};

use super::TcpStream;

/// Default time a TLS handshake may take.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS connection over a green [`TcpStream`]; `C` is rustls'
/// `ClientConnection` or `ServerConnection`.
///
/// # Cancellation
///
/// A read or write parked when the green thread is killed or its deadline
/// passes returns that error as an `io::Error`; TLS state may then be mid
/// record, so treat the connection as broken and drop it.
pub struct TlsStream<C> {
    inner: StreamOwned<C, TcpStream>,
}

impl<C> fmt::Debug for TlsStream<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("tcp", &self.inner.sock)
            .finish_non_exhaustive()
    }
}

impl<C> TlsStream<C> {
    /// The TCP stream underneath (to set timeouts, read addresses).
    pub fn get_ref(&self) -> &TcpStream {
        &self.inner.sock
    }

    /// The rustls connection (negotiated protocol, peer certificates...).
    pub fn conn(&self) -> &C {
        &self.inner.conn
    }
}

macro_rules! stream_io {
    ($conn:ty) => {
        impl Read for TlsStream<$conn> {
            #[track_caller]
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.inner.read(buf)
            }
        }

        impl Write for TlsStream<$conn> {
            #[track_caller]
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.inner.write(buf)
            }

            #[track_caller]
            fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                self.inner.write_vectored(bufs)
            }

            #[track_caller]
            fn flush(&mut self) -> io::Result<()> {
                self.inner.flush()
            }
        }

        impl TlsStream<$conn> {
            /// Sends TLS `close_notify` and flushes it.
            ///
            /// # Cancellation
            ///
            /// As `write`.
            #[track_caller]
            pub fn close(&mut self) -> io::Result<()> {
                self.inner.conn.send_close_notify();
                self.inner.flush()
            }
        }
    };
}

stream_io!(ClientConnection);
stream_io!(ServerConnection);

/// Runs a handshake to completion within `timeout`.
fn handshake<C, S>(
    mut conn: C,
    mut tcp: TcpStream,
    timeout: Duration,
    who: &str,
) -> io::Result<TlsStream<C>>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<S>>,
    S: rustls::SideData,
{
    let r = crate::timeout(timeout, || {
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)?;
        }
        // Send any final handshake bytes (e.g. the client's Finished).
        while conn.wants_write() {
            conn.write_tls(&mut tcp)?;
        }
        Ok::<_, io::Error>(())
    });
    match r {
        Ok(Ok(())) => Ok(TlsStream {
            inner: StreamOwned::new(conn, tcp),
        }),
        Ok(Err(e)) => Err(io::Error::new(
            e.kind(),
            format!("TLS handshake with {who} failed: {e}"),
        )),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("TLS handshake with {who} timed out after {timeout:?}"),
        )),
    }
}

/// Makes client TLS connections.
///
/// # Examples
///
/// A round trip with a self-signed certificate (made here with `rcgen`):
///
/// ```
/// use std::io::{Read, Write};
/// use std::sync::Arc;
/// use sylvan::net::tls::{rustls, TlsAcceptor, TlsConnector};
///
/// let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// let cert_der = rustls::pki_types::CertificateDer::from(cert.cert.der().to_vec());
/// let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
/// let provider = Arc::new(rustls::crypto::ring::default_provider());
/// let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
///     .with_safe_default_protocol_versions()
///     .unwrap()
///     .with_no_client_auth()
///     .with_single_cert(vec![cert_der.clone()], key)
///     .unwrap();
/// let mut roots = rustls::RootCertStore::empty();
/// roots.add(cert_der).unwrap();
/// let client_config = rustls::ClientConfig::builder_with_provider(provider)
///     .with_safe_default_protocol_versions()
///     .unwrap()
///     .with_root_certificates(roots)
///     .with_no_client_auth();
///
/// let listener = sylvan::listen("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let acceptor = TlsAcceptor::new(Arc::new(server_config));
/// let server = sylvan::spawn(move || -> std::io::Result<()> {
///     let (tcp, _) = listener.accept()?;
///     let mut tls = acceptor.accept(tcp)?;
///     let mut buf = [0; 4];
///     tls.read_exact(&mut buf)?;
///     tls.write_all(&buf)?;
///     tls.close()
/// });
///
/// let tcp = sylvan::connect(addr).unwrap();
/// let mut tls = TlsConnector::new(Arc::new(client_config)).connect("localhost", tcp).unwrap();
/// tls.write_all(b"ping").unwrap();
/// let mut back = [0; 4];
/// tls.read_exact(&mut back).unwrap();
/// assert_eq!(&back, b"ping");
/// server.join().unwrap().unwrap();
/// ```
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
    handshake_timeout: Duration,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl TlsConnector {
    /// A connector with a 10 s handshake timeout.
    pub fn new(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector {
            config,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// How long the handshake may take (default 10 s).
    pub fn handshake_timeout(mut self, d: Duration) -> TlsConnector {
        self.handshake_timeout = d;
        self
    }

    /// Runs the client handshake over `tcp`, verifying `server_name`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a malformed name; `TimedOut` when the handshake
    /// timeout passes (e.g. a peer that accepts TCP and says nothing);
    /// certificate and protocol errors with rustls' explanation.
    ///
    /// # Cancellation
    ///
    /// Killed or past an enclosing deadline: returns that error; the TCP
    /// stream is closed.
    #[track_caller]
    pub fn connect(
        &self,
        server_name: &str,
        tcp: TcpStream,
    ) -> io::Result<TlsStream<ClientConnection>> {
        let name = ServerName::try_from(server_name.to_string()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad TLS server name {server_name:?}: {e}"),
            )
        })?;
        let conn = ClientConnection::new(self.config.clone(), name).map_err(io::Error::other)?;
        handshake(conn, tcp, self.handshake_timeout, server_name)
    }
}

/// Accepts server TLS connections.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use sylvan::net::tls::{rustls, TlsAcceptor};
///
/// fn serve_tls(
///     certs: Vec<rustls::pki_types::CertificateDer<'static>>,
///     key: rustls::pki_types::PrivateKeyDer<'static>,
/// ) -> std::io::Result<()> {
///     let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
///         .with_safe_default_protocol_versions()
///         .map_err(std::io::Error::other)?
///         .with_no_client_auth()
///         .with_single_cert(certs, key)
///         .map_err(std::io::Error::other)?;
///     let acceptor = TlsAcceptor::new(Arc::new(config));
///     let listener = sylvan::listen("127.0.0.1:8443")?;
///     loop {
///         let (tcp, _) = listener.accept()?;
///         let acceptor = acceptor.clone();
///         drop(sylvan::spawn(move || acceptor.accept(tcp).map(|_tls| ())));
///     }
/// }
/// # let _ = serve_tls;
/// ```
///
/// See [`TlsConnector`] for a complete round trip.
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// An acceptor with a 10 s handshake timeout.
    pub fn new(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor {
            config,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// How long the handshake may take (default 10 s).
    pub fn handshake_timeout(mut self, d: Duration) -> TlsAcceptor {
        self.handshake_timeout = d;
        self
    }

    /// Runs the server handshake over an accepted `tcp` stream.
    ///
    /// # Errors
    ///
    /// `TimedOut` when the handshake timeout passes (a client that connects
    /// and says nothing); protocol errors with rustls' explanation.
    ///
    /// # Cancellation
    ///
    /// As [`TlsConnector::connect`].
    #[track_caller]
    pub fn accept(&self, tcp: TcpStream) -> io::Result<TlsStream<ServerConnection>> {
        let who = tcp
            .peer_addr()
            .map_or_else(|_| "client".to_string(), |a| a.to_string());
        let conn = ServerConnection::new(self.config.clone()).map_err(io::Error::other)?;
        handshake(conn, tcp, self.handshake_timeout, &who)
    }
}

impl<C> TlsStream<C> {
    /// The rustls connection and the TCP stream.
    pub(crate) fn into_parts(self) -> (C, TcpStream) {
        (self.inner.conn, self.inner.sock)
    }
}

/// A TLS connection that several green threads of one hub use through
/// `&self` (the HTTP server's connection loop and a handler reading the
/// request body; a WebSocket session's receiver and its senders).
///
/// No `RefCell` borrow of the rustls state is held across a blocking call:
/// reads wait for readability without it, then decrypt from a
/// non-blocking read; writes encrypt under the borrow, then send the
/// records outside it. Records leave in the order they were made: making
/// and sending them happens under one permit (`tx`).
pub(crate) struct SharedTls {
    tcp: TcpStream,
    conn: std::cell::RefCell<rustls::Connection>,
    tx: crate::sync::Semaphore,
    out: std::cell::RefCell<Vec<u8>>,
}

impl fmt::Debug for SharedTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedTls")
            .field("tcp", &self.tcp)
            .finish_non_exhaustive()
    }
}

/// Reads the socket without waiting (`WouldBlock` when nothing is there).
struct NonBlocking<'a>(&'a TcpStream);

impl Read for NonBlocking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let sock = socket2::SockRef::from(self.0);
        (&*sock).read(buf)
    }
}

/// Closing says so: `close_notify` goes out (without waiting) when the last
/// user drops the stream, so a peer reading to the end sees a clean end
/// rather than a truncation.
impl Drop for SharedTls {
    fn drop(&mut self) {
        self.close_notify_nowait();
    }
}

impl SharedTls {
    pub(crate) fn new<C: Into<rustls::Connection>>(s: TlsStream<C>) -> SharedTls {
        let (conn, tcp) = s.into_parts();
        SharedTls {
            tcp,
            conn: std::cell::RefCell::new(conn.into()),
            tx: crate::sync::Semaphore::new(1),
            out: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// The TCP stream underneath.
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Decrypted bytes if there are any, without waiting: `WouldBlock`
    /// when neither rustls nor the socket has any; `Ok(0)` after the
    /// peer's `close_notify`; `UnexpectedEof` when the peer closed without
    /// one.
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let mut c = self.conn.borrow_mut();
            match c.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return r,
            }
            c.read_tls(&mut NonBlocking(&self.tcp))?;
            let state = c.process_new_packets().map(|_| ());
            let wants_write = c.wants_write();
            drop(c);
            if let Err(e) = state {
                // Send the alert rustls queued, then report.
                let _ = self.flush_tls();
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("TLS error: {e}"),
                ));
            }
            if wants_write {
                self.flush_tls()?;
            }
        }
    }

    /// Reads decrypted bytes, waiting (with the socket's read timeout)
    /// when there are none.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.try_read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let mut probe = [0u8; 1];
                    self.tcp.peek(&mut probe)?;
                }
                r => return r,
            }
        }
    }

    /// Encrypts some of `buf` and sends it (with the socket's write
    /// timeout).
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let n = self.conn.borrow_mut().writer().write(buf)?;
        self.flush_tls()?;
        Ok(n)
    }

    /// Sends the TLS records rustls has ready.
    fn flush_tls(&self) -> io::Result<()> {
        let _permit = self.tx.acquire()?;
        let mut out = std::mem::take(&mut *self.out.borrow_mut());
        let r = loop {
            out.clear();
            {
                let mut c = self.conn.borrow_mut();
                if !c.wants_write() {
                    break Ok(());
                }
                if let Err(e) = c.write_tls(&mut out) {
                    break Err(e);
                }
            }
            if let Err(e) = (&self.tcp).write_all(&out) {
                break Err(e);
            }
        };
        out.clear();
        *self.out.borrow_mut() = out;
        r
    }

    /// Queues `close_notify` and sends it without waiting (best effort:
    /// for closing paths that must not block).
    pub(crate) fn close_notify_nowait(&self) {
        // Skipped while another green thread is sending records: a record
        // written in the middle of one would corrupt the stream.
        let Some(_permit) = self.tx.try_acquire() else {
            return;
        };
        let Ok(mut c) = self.conn.try_borrow_mut() else {
            return;
        };
        c.send_close_notify();
        let mut out = Vec::new();
        while c.wants_write() {
            if c.write_tls(&mut out).is_err() {
                return;
            }
        }
        drop(c);
        let sock = socket2::SockRef::from(&self.tcp);
        let _ = (&*sock).write(&out);
    }
}

/// The certificates in PEM text (a chain: the server's first), e.g. the
/// content of `fullchain.pem`.
///
/// # Examples
///
/// ```
/// let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// let certs = sylvan::net::tls::certs_from_pem(cert.cert.pem().as_bytes()).unwrap();
/// assert_eq!(certs.len(), 1);
/// assert!(sylvan::net::tls::certs_from_pem(b"not a certificate").is_err());
/// ```
///
/// # Errors
///
/// `InvalidData` when the text holds no certificate or a malformed PEM
/// section.
pub fn certs_from_pem(pem: &[u8]) -> io::Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad PEM certificate: {e}"),
            )
        })?;
    if certs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no PEM certificate (-----BEGIN CERTIFICATE-----) found",
        ));
    }
    Ok(certs)
}

/// The private key in PEM text (PKCS#8, PKCS#1 RSA or SEC1 EC), e.g. the
/// content of `privkey.pem`.
///
/// # Examples
///
/// ```
/// let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// let key = sylvan::net::tls::key_from_pem(cert.signing_key.serialize_pem().as_bytes());
/// assert!(key.is_ok());
/// assert!(sylvan::net::tls::key_from_pem(cert.cert.pem().as_bytes()).is_err());
/// ```
///
/// # Errors
///
/// `InvalidData` when the text holds no private key or a malformed one.
pub fn key_from_pem(pem: &[u8]) -> io::Result<rustls::pki_types::PrivateKeyDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no usable PEM private key: {e}"),
        )
    })
}

/// A server configuration with rustls' safe defaults (TLS 1.2 and 1.3,
/// the `ring` provider), no client authentication, and this certificate
/// chain and key.
///
/// # Examples
///
/// ```
/// use sylvan::net::tls;
///
/// let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// let config = tls::server_config(
///     tls::certs_from_pem(cert.cert.pem().as_bytes()).unwrap(),
///     tls::key_from_pem(cert.signing_key.serialize_pem().as_bytes()).unwrap(),
/// )
/// .unwrap();
/// let _acceptor = tls::TlsAcceptor::new(std::sync::Arc::new(config));
/// ```
///
/// # Errors
///
/// `InvalidInput` when the key does not match the certificate or is of an
/// unsupported kind.
pub fn server_config(
    certs: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> io::Result<ServerConfig> {
    ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TLS certificate and key rejected: {e}"),
            )
        })
}
