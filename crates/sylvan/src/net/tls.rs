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
