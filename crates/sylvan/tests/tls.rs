//! TLS over green sockets: round trip, handshake and read timeouts with the
//! same error kind as plain TCP (Eventlet #692), kill.
#![cfg(feature = "tls")]

mod util;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sylvan::net::tls::{TlsAcceptor, TlsConnector, rustls};

fn configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_der = rustls::pki_types::CertificateDer::from(cert.cert.der().to_vec());
    let key_der =
        rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key_der)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

#[test]
fn tls_round_trip() {
    let (server_cfg, client_cfg) = configs();
    let l = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let acceptor = TlsAcceptor::new(server_cfg);
    let server = sylvan::spawn(move || -> std::io::Result<()> {
        let (tcp, _) = l.accept()?;
        let mut tls = acceptor.accept(tcp)?;
        let mut buf = [0; 5];
        tls.read_exact(&mut buf)?;
        tls.write_all(&buf)?;
        tls.close()
    });
    let tcp = sylvan::connect(addr).unwrap();
    let mut tls = TlsConnector::new(client_cfg)
        .connect("localhost", tcp)
        .unwrap();
    tls.write_all(b"hello").unwrap();
    let mut back = [0; 5];
    tls.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hello");
    server.join().unwrap().unwrap();
}

#[test]
fn handshake_timeout_against_a_silent_peer() {
    let (_, client_cfg) = configs();
    let l = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    // Accepts TCP and says nothing.
    let silent = sylvan::spawn(move || l.accept().map(|(s, _)| s));
    let tcp = sylvan::connect(addr).unwrap();
    let _held = silent.join().unwrap().unwrap();
    let t0 = Instant::now();
    let err = TlsConnector::new(client_cfg)
        .handshake_timeout(Duration::from_millis(200))
        .connect("localhost", tcp)
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert!(t0.elapsed() >= Duration::from_millis(200));
    assert!(t0.elapsed() < Duration::from_millis(200) + Duration::from_millis(1500));
}

#[test]
fn server_handshake_timeout_against_a_silent_client() {
    let (server_cfg, _) = configs();
    let l = sylvan::listen("127.0.0.1:0").unwrap();
    let _client = sylvan::connect(l.local_addr().unwrap()).unwrap();
    let (tcp, _) = l.accept().unwrap();
    let err = TlsAcceptor::new(server_cfg)
        .handshake_timeout(Duration::from_millis(100))
        .accept(tcp)
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
}

#[test]
fn tls_read_timeout_is_timed_out_like_tcp() {
    let (server_cfg, client_cfg) = configs();
    let l = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let acceptor = TlsAcceptor::new(server_cfg);
    let server = sylvan::spawn(move || -> std::io::Result<_> {
        let (tcp, _) = l.accept()?;
        acceptor.accept(tcp) // then stays silent
    });
    let tcp = sylvan::connect(addr).unwrap();
    let mut tls = TlsConnector::new(client_cfg)
        .connect("localhost", tcp)
        .unwrap();
    let _server_side = server.join().unwrap().unwrap();
    tls.get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let err = tls.read(&mut [0; 16]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");

    // A scoped deadline gives the same kind.
    tls.get_ref().set_read_timeout(None).unwrap();
    let r = sylvan::timeout(Duration::from_secs(60), || {
        sylvan::timeout(Duration::from_millis(50), || tls.read(&mut [0; 16]))
            .unwrap_or_else(|_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "scope")))
    });
    assert_eq!(r.unwrap().unwrap_err().kind(), std::io::ErrorKind::TimedOut);
}

#[test]
fn bad_certificate_is_a_clear_error() {
    let (server_cfg, _) = configs();
    let (_, other_client) = configs(); // trusts a different self-signed cert
    let l = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let acceptor = TlsAcceptor::new(server_cfg);
    let server =
        sylvan::spawn(move || l.accept().and_then(|(t, _)| acceptor.accept(t)).map(|_| ()));
    let tcp = sylvan::connect(addr).unwrap();
    let err = TlsConnector::new(other_client)
        .connect("localhost", tcp)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("TLS handshake with localhost failed"),
        "{err}"
    );
    let _ = server.join();
}
