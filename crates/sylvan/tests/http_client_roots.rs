//! `ClientBuilder::tls_native_roots` and `tls_webpki_roots`. Alone in its
//! test binary: it sets `SSL_CERT_FILE`, which rustls-native-certs reads.

#![cfg(all(feature = "native-roots", feature = "webpki-roots"))]

use std::io::{Read, Write};
use std::sync::Arc;

use sylvan::http::Client;
use sylvan::net::tls::{TlsAcceptor, rustls};

#[test]
fn system_roots_from_ssl_cert_file_and_webpki_roots() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let der = rustls::pki_types::CertificateDer::from(cert.cert.der().to_vec());
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der], key)
        .unwrap();
    let acceptor = TlsAcceptor::new(Arc::new(server_cfg));
    let listener = sylvan::listen("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _server = sylvan::spawn(move || {
        while let Ok((tcp, _)) = listener.accept() {
            let Ok(mut tls) = acceptor.accept(tcp) else {
                continue;
            };
            let mut buf = [0; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tls.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\ntrusted",
            );
        }
    });
    let url = format!("https://localhost:{port}/");

    // The system's roots: here, the file SSL_CERT_FILE names, which holds
    // only this test's certificate.
    let file = std::env::temp_dir().join(format!("sylvan-roots-{}.pem", std::process::id()));
    std::fs::write(&file, cert.cert.pem()).unwrap();
    // SAFETY: this test binary has one test and no other thread reading
    // the environment now.
    unsafe { std::env::set_var("SSL_CERT_FILE", &file) };
    let native = Client::builder().tls_native_roots().unwrap().build();
    assert_eq!(native.get(&url).send().unwrap().text().unwrap(), "trusted");

    // Mozilla's roots do not vouch for it.
    let webpki = Client::builder().tls_webpki_roots().build();
    let e = webpki.get(&url).send().unwrap_err();
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");

    let _ = std::fs::remove_file(&file);
}
