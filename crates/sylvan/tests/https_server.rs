//! HTTPS for `http::Server`: curl (the reference client) over TLS with an
//! rcgen CA, ALPN `http/1.1`, the handshake timeout against silent and
//! slow clients, garbage handshakes, the plain-HTTP limits and timeouts
//! over TLS, graceful stop, and `wss://` sessions.
#![cfg(feature = "tls")]

mod http_util;
mod tls_util;
mod util;

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use http_util::{run, stderr, stdout};
use sylvan::http::{Response, Server, ServerHandle};
use sylvan::net::tls::TlsConnector;
use tls_util::Pki;

fn https_server(pki: &Pki, tweak: impl FnOnce(Server) -> Server) -> ServerHandle {
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .tls_pem(pki.chain_pem.as_bytes(), pki.key_pem.as_bytes())
        .unwrap();
    tweak(server).serve(|mut req| match req.path() {
        "/echo" => {
            let mut body = Vec::new();
            match req.body().read_to_end(&mut body) {
                Ok(_) => Response::bytes(body),
                Err(e) => Response::text(format!("{e}\n")).with_status(400),
            }
        }
        "/big" => Response::bytes(vec![b'z'; 1 << 20]),
        _ => Response::text("hello over TLS\n"),
    })
}

fn curl(pki: &Pki, server: &ServerHandle, name: &str, extra: &[&str]) -> std::process::Output {
    util::require(util::have_program("curl"), "curl", "apt-get install curl");
    let port = server.local_addr().port();
    let ca = pki.ca_file(name);
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "30", "--cacert"])
        .arg(&ca)
        .arg("--resolve")
        .arg(format!("localhost:{port}:127.0.0.1"))
        .args(extra);
    let out = run(&mut cmd);
    let _ = std::fs::remove_file(ca);
    out
}

#[test]
fn curl_gets_and_posts_over_https_on_one_keep_alive_connection() {
    let pki = Pki::new();
    let server = https_server(&pki, |s| s);
    let port = server.local_addr().port();
    let url = |p: &str| format!("https://localhost:{port}{p}");
    let out = curl(
        &pki,
        &server,
        "get",
        &[
            "-w",
            "|%{http_version}|%{ssl_verify_result}\n",
            &url("/"),
            &url("/big"),
            "--data-binary",
            "posted body",
            &url("/echo"),
        ],
    );
    assert!(out.status.success(), "curl failed: {}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("hello over TLS\n|1.1|0\n"), "{text:.200}");
    assert!(text.contains(&format!("{}|1.1|0\n", "z".repeat(1 << 20))));
    assert!(
        text.ends_with("posted body|1.1|0\n"),
        "{}",
        &text[text.len() - 80..]
    );
    // curl reused the TLS connection for all three requests.
    assert_eq!(server.accepted(), 1);
}

#[test]
fn alpn_is_http_1_1_even_when_curl_offers_h2() {
    let pki = Pki::new();
    let server = https_server(&pki, |s| s);
    let port = server.local_addr().port();
    let out = curl(
        &pki,
        &server,
        "alpn",
        &[
            "-v",
            "--http2",
            "-w",
            "%{http_version}",
            &format!("https://localhost:{port}/"),
        ],
    );
    assert!(out.status.success(), "curl failed: {}", stderr(&out));
    assert_eq!(stdout(&out), "hello over TLS\n1.1");
    assert!(
        stderr(&out).contains("ALPN: server accepted http/1.1")
            || stderr(&out).contains("ALPN, server accepted to use http/1.1"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn curl_rejects_a_certificate_from_another_ca() {
    let pki = Pki::new();
    let other = Pki::new();
    let server = https_server(&pki, |s| s);
    let port = server.local_addr().port();
    let out = curl(
        &other,
        &server,
        "otherca",
        &[&format!("https://localhost:{port}/")],
    );
    assert!(!out.status.success());
    assert_eq!(
        stdout(&out),
        "",
        "curl got a response from an untrusted server"
    );
    // The failed handshake left the server serving.
    let out = curl(
        &pki,
        &server,
        "after",
        &[&format!("https://localhost:{port}/")],
    );
    assert_eq!(stdout(&out), "hello over TLS\n");
}

#[test]
fn a_silent_client_is_dropped_at_the_handshake_timeout() {
    let pki = Pki::new();
    let server = https_server(&pki, |s| {
        s.tls_handshake_timeout(Duration::from_millis(200))
    });
    // Says nothing at all.
    let mut silent = sylvan::connect(server.local_addr()).unwrap();
    // Sends the first bytes of a TLS record, then stops.
    let mut slow = sylvan::connect(server.local_addr()).unwrap();
    slow.write_all(&[0x16, 0x03, 0x01, 0x01]).unwrap();
    for c in [&mut silent, &mut slow] {
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap(); // hang guard
        let mut buf = [0u8; 64];
        let n = loop {
            match c.read(&mut buf) {
                Ok(0) => break 0,
                Ok(_) => continue, // an alert, for the partial record
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break 0,
                Err(e) => panic!("expected the server to close: {e}"),
            }
        };
        assert_eq!(n, 0);
    }
    // Both green threads are gone.
    let guard = sylvan::timeout(Duration::from_secs(10), || {
        while server.active() > 0 {
            sylvan::sleep(Duration::from_millis(5)).unwrap();
        }
    });
    assert!(guard.is_ok(), "connections still open: {}", server.active());
}

#[test]
fn a_garbage_handshake_is_closed_and_the_server_goes_on() {
    let pki = Pki::new();
    let server = https_server(&pki, |s| s);
    for garbage in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5][..],
        &[0xff; 300][..],
    ] {
        let mut c = sylvan::connect(server.local_addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        c.write_all(garbage).unwrap();
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        // Never an HTTP response: at most a TLS alert record.
        assert!(!got.starts_with(b"HTTP"), "{got:?}");
        if !got.is_empty() {
            assert_eq!(got[0], 0x15, "expected a TLS alert, got {got:?}");
        }
    }
    let port = server.local_addr().port();
    let out = curl(
        &pki,
        &server,
        "garbage",
        &[&format!("https://localhost:{port}/")],
    );
    assert_eq!(stdout(&out), "hello over TLS\n", "{}", stderr(&out));
}

/// A TLS client connection made with sylvan's own connector.
fn tls_client(
    pki: &Pki,
    server: &ServerHandle,
) -> sylvan::net::tls::TlsStream<sylvan::net::tls::rustls::ClientConnection> {
    let tcp = sylvan::connect(server.local_addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    TlsConnector::new(pki.client_config())
        .connect("localhost", tcp)
        .unwrap()
}

fn read_all(mut s: impl Read) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn header_timeout_and_limits_apply_over_tls() {
    let pki = Pki::new();
    let server = https_server(&pki, |s| {
        s.header_timeout(Duration::from_millis(200))
            .max_body_size(10)
            .max_request_line(64)
            .unwrap()
    });
    // Slowloris after the handshake: 408.
    let mut c = tls_client(&pki, &server);
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let out = read_all(&mut c);
    assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
    // A body over the limit: 413.
    let mut c = tls_client(&pki, &server);
    c.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world")
        .unwrap();
    let out = read_all(&mut c);
    assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
    // A request line over the limit: 414.
    let mut c = tls_client(&pki, &server);
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100));
    c.write_all(long.as_bytes()).unwrap();
    let out = read_all(&mut c);
    assert!(out.starts_with("HTTP/1.1 414 "), "{out}");
}

#[test]
fn keep_alive_timeout_closes_an_idle_tls_connection_with_close_notify() {
    let pki = Pki::new();
    let server = https_server(&pki, |s| s.keep_alive_timeout(Duration::from_millis(100)));
    let mut c = tls_client(&pki, &server);
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    // read_to_end returns Ok only after a clean close_notify; without one
    // rustls reports UnexpectedEof.
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.ends_with("hello over TLS\n"), "{out}");
}

#[test]
fn sylvan_http_client_over_https() {
    let pki = Pki::new();
    let server = https_server(&pki, |s| s);
    let port = server.local_addr().port();
    let client = sylvan::http::Client::builder()
        .tls_config(pki.client_config())
        .connector(
            sylvan::net::Connector::new()
                .resolver(move |_, _| Ok(vec![([127, 0, 0, 1], port).into()])),
        )
        .build();
    for _ in 0..3 {
        let r = client
            .post(format!("https://localhost:{port}/echo"))
            .body("ping")
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().unwrap(), "ping");
    }
    assert_eq!(
        server.accepted(),
        1,
        "the pooled TLS connection was not reused"
    );
}

#[test]
fn stop_closes_idle_tls_connections_at_once() {
    let pki = Pki::new();
    let server = https_server(&pki, |s| s);
    let mut c = tls_client(&pki, &server);
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 4096];
    let n = c.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let report = server.stop(Duration::from_secs(10));
    assert_eq!(report.killed, 0, "{report:?}");
    assert_eq!(server.active(), 0);
}

#[test]
fn an_upgraded_tls_connection_stays_encrypted() {
    let pki = Pki::new();
    let seen: sylvan::sync::Queue<String> = sylvan::sync::Queue::unbounded();
    let s = seen.clone();
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .tls_pem(pki.chain_pem.as_bytes(), pki.key_pem.as_bytes())
        .unwrap()
        .serve(move |req| {
            let raw = req.path() == "/raw";
            let s = s.clone();
            Response::new(101)
                .header("Upgrade", "echo")
                .on_upgrade(move |mut up| {
                    let _ = s.put(format!("tls {}", up.is_tls()));
                    if raw {
                        // No plain socket to hand out under TLS.
                        let r = up.into_parts().map(|_| ()).map_err(|e| e.kind());
                        let _ = s.put(format!("{r:?}"));
                        return;
                    }
                    let mut buf = [0u8; 64];
                    while let Ok(n) = up.read(&mut buf) {
                        if n == 0 || up.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                })
        });
    let mut c = tls_client(&pki, &server);
    // The first bytes go out with the request, as a client may send them.
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: upgrade\r\n\r\nearly")
        .unwrap();
    let mut got = Vec::new();
    while !got.ends_with(b"early") {
        let mut b = [0u8; 256];
        let n = c.read(&mut b).unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&b[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 101 "));
    c.write_all(b" and late").unwrap();
    let mut back = [0u8; 9];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b" and late");
    // The raw case: the handler saw Unsupported and returned.
    let mut c = tls_client(&pki, &server);
    c.write_all(b"GET /raw HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: upgrade\r\n\r\n")
        .unwrap();
    let out = read_all(&mut c);
    assert!(out.starts_with("HTTP/1.1 101 "), "{out}");
    assert_eq!(seen.get().unwrap(), "tls true");
    assert_eq!(seen.get().unwrap(), "tls true");
    assert_eq!(seen.get().unwrap(), "Err(Unsupported)");
}
