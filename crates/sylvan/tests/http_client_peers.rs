//! `http::Client` against servers nobody here wrote (nginx, plain and over
//! TLS; hyper's server), through sylvan's `ChaosProxy` for faults, and the
//! features that need a peer: gzip/deflate decoding, `Expect:
//! 100-continue`, per-host circuit breakers, `NO_PROXY`.

#![cfg(all(feature = "gzip", feature = "tls"))]

mod util;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sylvan::chaos::{ChaosProxy, Direction, Toxic};
use sylvan::http::{Client, Response, Server, Url};
use sylvan::net::tls::rustls;
use sylvan::resilience::{BreakerState, CircuitBreaker};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sylvan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A loopback port free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// --- gzip and deflate ------------------------------------------------------

#[test]
fn gzip_and_deflate_are_decoded_when_asked_and_bounded_when_decoded() {
    let text: Vec<u8> = (0..50_000u32)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let (gz, z) = (gzip(&text), zlib(&text));
    let bomb = gzip(&vec![0u8; 32 * 1024 * 1024]); // 32 MiB of zeros in ~32 KB
    assert!(bomb.len() < 100_000);
    let server = Server::bind("127.0.0.1:0").unwrap().serve(move |req| {
        let ae = req.header("accept-encoding").unwrap_or("none").to_string();
        let r = match req.path() {
            "/gzip" => Response::new(200)
                .header("Content-Encoding", "gzip")
                .with_body(gz.clone()),
            "/deflate" => Response::new(200)
                .header("Content-Encoding", "deflate")
                .with_body(z.clone()),
            "/gzip-chunked" => Response::new(200)
                .header("Content-Encoding", "gzip")
                .with_body(sylvan::http::Body::from_reader(io::Cursor::new(gz.clone()))),
            "/bomb" => Response::new(200)
                .header("Content-Encoding", "gzip")
                .with_body(bomb.clone()),
            "/corrupt" => Response::new(200)
                .header("Content-Encoding", "gzip")
                .with_body(b"\x1f\x8b\x08\x00garbage garbage".to_vec()),
            _ => Response::text("plain"),
        };
        r.header("X-Seen-Accept-Encoding", ae)
    });
    let u = |p: &str| format!("http://{}{p}", server.local_addr());

    // Not asked: no Accept-Encoding, the bytes as sent.
    let plain = Client::new();
    let r = plain.get(u("/gzip")).send().unwrap();
    assert_eq!(r.header("x-seen-accept-encoding"), Some("none"));
    assert_eq!(r.bytes().unwrap(), gzip(&text));

    let c = Client::builder().decompress(true).build();
    for path in ["/gzip", "/deflate", "/gzip-chunked"] {
        // On a green thread with the default stack: decoders fit.
        let (c2, url, text) = (c.clone(), u(path), text.clone());
        sylvan::spawn(move || {
            let r = c2.get(&url).send().unwrap();
            assert_eq!(r.header("x-seen-accept-encoding"), Some("gzip, deflate"));
            assert_eq!(
                r.content_length(),
                None,
                "{url}: the encoded length is not the body's"
            );
            assert!(r.bytes().unwrap() == text, "{url} decoded");
        })
        .join()
        .unwrap();
    }
    // Every decoded body was read to its end: one connection, pooled.
    assert_eq!(c.idle_connections(), 1);
    assert_eq!(server.accepted(), 2);

    // A request with its own Accept-Encoding gets the body as sent.
    let r = c
        .get(u("/gzip"))
        .header("Accept-Encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(r.bytes().unwrap(), gzip(&text));

    // A gzip bomb is "too large" at the limit on the decoded size.
    let small = Client::builder()
        .decompress(true)
        .max_body_size(1 << 20)
        .build();
    let e = small.get(u("/bomb")).send().unwrap().bytes().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    let m = e.to_string();
    assert!(m.contains("too large") && m.contains("gzip-decoded"), "{m}");
    assert_eq!(
        small.idle_connections(),
        0,
        "the rest of the bomb was not read"
    );

    // Corrupt data is a clear error, and the connection is closed.
    let e = c.get(u("/corrupt")).send().unwrap().bytes().unwrap_err();
    assert!(e.to_string().contains("decoding the gzip body"), "{e}");
}

// --- Expect: 100-continue --------------------------------------------------

#[test]
fn large_uploads_wait_for_100_continue() {
    let server = Server::bind("127.0.0.1:0").unwrap().serve(|mut req| {
        if req.path() == "/refuse" {
            return Response::new(413).header("Connection", "close");
        }
        let expect = req.header("expect").unwrap_or("-").to_string();
        let mut n = 0u64;
        let mut buf = [0; 65536];
        while let Ok(k @ 1..) = req.read(&mut buf) {
            n += k as u64;
        }
        Response::text(format!("{expect} {n}"))
    });
    let u = |p: &str| format!("http://{}{p}", server.local_addr());
    let c = Client::builder().expect_continue(Some(100_000)).build();
    // Small: no Expect.
    let t = c
        .post(u("/"))
        .body(vec![1u8; 1000])
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(t, "- 1000");
    // Large, and unknown size: Expect, then the body after 100 Continue.
    let t = c
        .post(u("/"))
        .body(vec![1u8; 3_000_000])
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(t, "100-continue 3000000");
    let t = c
        .put(u("/"))
        .body_reader(io::repeat(7).take(200))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(t, "100-continue 200");

    // Refused by its head: the reader is never read from.
    let reads = Rc::new(std::cell::Cell::new(0));
    struct Counting(Rc<std::cell::Cell<usize>>);
    impl Read for Counting {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.set(self.0.get() + 1);
            buf.fill(0);
            Ok(buf.len())
        }
    }
    let r = c
        .post(u("/refuse"))
        .body(sylvan::http::Body::sized(
            Counting(reads.clone()),
            50_000_000,
        ))
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(reads.get(), 0, "the body was not sent");

    // A server that ignores Expect: the body goes after the wait.
    let listener = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let deaf = sylvan::spawn(move || -> io::Result<usize> {
        let (mut s, _) = listener.accept()?;
        let mut got = Vec::new();
        let mut buf = [0; 65536];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") || got.len() < 200_000 {
            let n = s.read(&mut buf)?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")?;
        Ok(got.len())
    });
    let c = Client::builder()
        .expect_continue(Some(1))
        .expect_continue_timeout(Duration::from_millis(50))
        .build();
    let r = c
        .post(format!("http://{addr}/"))
        .body(vec![0u8; 200_000])
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(deaf.join().unwrap().unwrap() > 200_000);
}

// --- Circuit breaker per host ----------------------------------------------

#[test]
fn a_circuit_breaker_per_host() {
    let failing = Server::bind("127.0.0.1:0")
        .unwrap()
        .serve(|_| Response::new(500));
    let healthy = Server::bind("127.0.0.1:0")
        .unwrap()
        .serve(|_| Response::text("ok"));
    let made = Rc::new(std::cell::RefCell::new(Vec::new()));
    let m = made.clone();
    sylvan::time::pause();
    let c = Client::builder()
        .circuit_breaker(move |origin| {
            m.borrow_mut().push(origin.to_string());
            CircuitBreaker::builder()
                .count_window(3)
                .minimum_calls(3)
                .wait_in_open(Duration::from_secs(10))
                .half_open_calls(1)
                .build()
        })
        .build();
    let bad = format!("http://{}/", failing.local_addr());
    let good = format!("http://{}/", healthy.local_addr());
    for _ in 0..3 {
        assert_eq!(c.get(&bad).send().unwrap().status(), 500);
        assert_eq!(c.get(&good).send().unwrap().text().unwrap(), "ok");
    }
    let e = c.get(&bad).send().unwrap_err();
    assert!(e.to_string().contains("circuit breaker"), "{e}");
    assert_eq!(c.breaker(&bad).unwrap().state(), BreakerState::Open);
    // The other host is not affected.
    assert_eq!(c.get(&good).send().unwrap().text().unwrap(), "ok");
    assert_eq!(c.breaker(&good).unwrap().state(), BreakerState::Closed);
    assert_eq!(
        made.borrow().len(),
        2,
        "one breaker per host: {:?}",
        made.borrow()
    );
    // Connection errors count too; after the wait, one probe closes it.
    sylvan::sleep(Duration::from_secs(11)).unwrap();
    failing.stop(Duration::ZERO);
    let e = c.get(&bad).send().unwrap_err();
    assert!(!e.to_string().contains("circuit breaker"), "a probe: {e}");
    assert_eq!(c.breaker(&bad).unwrap().state(), BreakerState::Open);
}

// --- NO_PROXY --------------------------------------------------------------

#[test]
fn no_proxy_hosts_bypass_the_proxy() {
    // A "proxy" that answers everything itself.
    let proxy = Server::bind("127.0.0.1:0")
        .unwrap()
        .serve(|req| Response::text(format!("proxy saw {}", req.uri())));
    let direct = Server::bind("127.0.0.1:0")
        .unwrap()
        .serve(|_| Response::text("direct"));
    let port = direct.local_addr().port();
    let c = Client::builder()
        .proxy(Url::parse(&format!("http://{}", proxy.local_addr())).unwrap())
        .no_proxy("example.internal, 127.0.0.0/8")
        .connector(
            sylvan::net::Connector::new()
                .resolver(move |_, _| Ok(vec![([127, 0, 0, 1], port).into()])),
        )
        .build();
    let t = c
        .get(format!("http://127.0.0.1:{port}/x"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(t, "direct");
    let t = c
        .get(format!("http://api.example.internal:{port}/x"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(t, "direct", "a subdomain of a NO_PROXY name");
    let t = c
        .get(format!("http://other.test:{port}/x"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(t, format!("proxy saw http://other.test:{port}/x"));
}

// --- Through ChaosProxy ----------------------------------------------------

fn chaos_backend() -> sylvan::http::ServerHandle {
    Server::bind("127.0.0.1:0").unwrap().serve(|mut req| {
        let mut body = Vec::new();
        let _ = req.read_to_end(&mut body);
        match req.path() {
            "/big" => Response::new(200).with_body(vec![b'x'; 100_000]),
            _ => Response::text(format!("{} {}", req.method(), body.len())),
        }
    })
}

#[test]
fn chaos_a_pooled_connection_closed_by_the_server() {
    let backend = chaos_backend();
    let proxy = ChaosProxy::start("127.0.0.1:0", backend.local_addr()).unwrap();
    let u = format!("http://{}/", proxy.local_addr());
    for (method, retried) in [("GET", true), ("POST", false)] {
        // One request on a throwaway client measures the request's size...
        let before = proxy.stats().bytes_upstream;
        let once = Client::new()
            .request(method, &u)
            .body("abc")
            .send()
            .unwrap();
        assert_eq!(once.text().unwrap(), format!("{method} 3"));
        let size = proxy.stats().bytes_upstream - before;
        // ...then every new connection lets through one request and a
        // byte: the pooled one is closed when the next request arrives,
        // before any response, as when a server closes an idle connection
        // just as the client reuses it.
        proxy
            .add_toxic(
                "cut",
                Toxic::LimitData { bytes: size + 1 },
                Direction::Upstream,
                1.0,
            )
            .unwrap();
        let c = Client::new();
        let send = || c.request(method, &u).body("abc").send();
        assert_eq!(send().unwrap().text().unwrap(), format!("{method} 3"));
        assert_eq!(c.idle_connections(), 1);
        let accepted = proxy.stats().accepted;
        let r = send();
        if retried {
            assert_eq!(
                r.unwrap().text().unwrap(),
                "GET 3",
                "retried on a new connection"
            );
            assert_eq!(proxy.stats().accepted, accepted + 1, "one new connection");
        } else {
            let e = r.unwrap_err();
            let m = e.to_string();
            assert!(
                m.contains("not retried") && m.contains("not idempotent"),
                "{m}"
            );
            assert_eq!(proxy.stats().accepted, accepted, "no second try");
        }
        proxy.remove_toxic("cut").unwrap();
    }
}

#[test]
fn chaos_latency_fires_the_read_timeout() {
    let backend = chaos_backend();
    let proxy = ChaosProxy::start("127.0.0.1:0", backend.local_addr()).unwrap();
    let u = format!("http://{}/", proxy.local_addr());
    let c = Client::builder()
        .read_timeout(Some(Duration::from_millis(100)))
        .build();
    assert_eq!(c.get(&u).send().unwrap().text().unwrap(), "GET 0");
    let toxic = Toxic::Latency {
        latency: Duration::from_secs(5),
        jitter: Duration::ZERO,
    };
    proxy
        .add_toxic("slow", toxic, Direction::Downstream, 1.0)
        .unwrap();
    let e = c.get(&u).send().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert_eq!(c.idle_connections(), 0);
}

#[test]
fn chaos_server_dies_mid_body() {
    let backend = chaos_backend();
    let proxy = ChaosProxy::start("127.0.0.1:0", backend.local_addr()).unwrap();
    let u = format!("http://{}/big", proxy.local_addr());
    proxy
        .add_toxic(
            "die",
            Toxic::LimitData { bytes: 30_000 },
            Direction::Downstream,
            1.0,
        )
        .unwrap();
    let c = Client::new();
    let r = c.get(&u).send().unwrap();
    assert_eq!(r.content_length(), Some(100_000));
    let e = r.bytes().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    assert!(e.to_string().contains("before the end of the body"), "{e}");
    assert_eq!(c.idle_connections(), 0, "not pooled");
}

#[test]
fn chaos_slow_drip_hits_the_whole_request_deadline() {
    let backend = chaos_backend();
    let proxy = ChaosProxy::start("127.0.0.1:0", backend.local_addr()).unwrap();
    let u = format!("http://{}/big", proxy.local_addr());
    let drip = Toxic::Slicer {
        average_size: 100,
        size_variation: 0,
        delay: Duration::from_millis(10),
    };
    proxy
        .add_toxic("drip", drip, Direction::Downstream, 1.0)
        .unwrap();
    // Each read gets bytes well within the per-read timeout; 100 KB at
    // 10 KB/s would take 10 s.
    let c = Client::builder()
        .read_timeout(Some(Duration::from_secs(5)))
        .build();
    let r = c
        .get(&u)
        .timeout(Duration::from_millis(300))
        .send()
        .unwrap();
    let e = r.bytes().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert!(e.to_string().contains("timeout of 300ms"), "{e}");
    assert_eq!(c.idle_connections(), 0);
}

// --- hyper's server --------------------------------------------------------

/// hyper 1.x on a tokio `current_thread` runtime in its own thread;
/// counts connections.
fn hyper_server() -> (SocketAddr, Arc<AtomicUsize>) {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    let conns = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = std::sync::mpsc::channel();
    let counted = conns.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            loop {
                let (s, _) = l.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                        type B = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;
                        let full = |s: String| -> B {
                            Full::new(Bytes::from(s))
                                .map_err(|never| match never {})
                                .boxed()
                        };
                        let resp: hyper::Response<B> = match req.uri().path() {
                            "/chunked" => hyper::Response::new(Parts(0).boxed()),
                            "/upload" => {
                                let expect = req
                                    .headers()
                                    .get("expect")
                                    .map(|v| v.to_str().unwrap_or("?").to_string())
                                    .unwrap_or_else(|| "-".into());
                                let chunked = req.headers().contains_key("transfer-encoding");
                                let body = req.into_body().collect().await?.to_bytes();
                                let sum: u64 = body.iter().map(|&b| u64::from(b)).sum();
                                hyper::Response::new(full(format!(
                                    "{expect} chunked={chunked} {} {sum}",
                                    body.len()
                                )))
                            }
                            "/redirect" => hyper::Response::builder()
                                .status(303)
                                .header("Location", "/hello")
                                .body(full(String::new()))
                                .unwrap(),
                            _ => hyper::Response::new(full("hello from hyper".into())),
                        };
                        Ok::<_, hyper::Error>(resp)
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
    });
    (rx.recv().unwrap(), conns)
}

/// A body of 100 frames with no size hint: hyper sends it chunked.
struct Parts(u32);

impl hyper::body::Body for Parts {
    type Data = hyper::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if self.0 == 100 {
            return std::task::Poll::Ready(None);
        }
        let i = self.0;
        self.0 += 1;
        let data = hyper::body::Bytes::from(format!("part {i}\n"));
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(data))))
    }
}

#[test]
fn against_hyper_server() {
    let (addr, conns) = hyper_server();
    let u = |p: &str| format!("http://{addr}{p}");
    let c = Client::new();
    for _ in 0..3 {
        assert_eq!(
            c.get(u("/hello")).send().unwrap().text().unwrap(),
            "hello from hyper"
        );
    }
    assert_eq!(conns.load(Ordering::SeqCst), 1, "kept alive");
    let t = c.get(u("/chunked")).send().unwrap().text().unwrap();
    assert_eq!(t.lines().count(), 100);
    assert!(t.ends_with("part 99\n"));
    // 303 turns a POST into a GET.
    let r = c.post(u("/redirect")).body("x").send().unwrap();
    assert_eq!(r.text().unwrap(), "hello from hyper");

    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let sum: u64 = data.iter().map(|&b| u64::from(b)).sum();
    // Large: with Expect: 100-continue, which hyper answers when it reads.
    let t = c
        .post(u("/upload"))
        .body(data.clone())
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(t, format!("100-continue chunked=false 3000000 {sum}"));
    let small = Client::builder().expect_continue(None).build();
    let t = small
        .put(u("/upload"))
        .body_reader(io::Cursor::new(data))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(t, format!("- chunked=true 3000000 {sum}"));
    assert_eq!(conns.load(Ordering::SeqCst), 2, "still kept alive");
}

// --- nginx -----------------------------------------------------------------

/// nginx in the foreground with its own prefix and config in a temp dir,
/// stopped by PID when dropped.
struct Nginx {
    child: Child,
    plain: u16,
    tls: u16,
    dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .or_else(|| util::have_program("nginx").then(|| PathBuf::from("nginx")))
}

/// Starts nginx serving `www` (and TLS with `cert`/`key` PEM files).
fn start_nginx(cert: &str, key: &str) -> Nginx {
    let bin = nginx_binary();
    util::require(bin.is_some(), "nginx", "apt-get install -y nginx");
    let dir = temp_dir("nginx");
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let text: String = (0..20_000).map(|i| format!("nginx line {i}\n")).collect();
    std::fs::write(www.join("big.txt"), &text).unwrap();
    std::fs::write(www.join("hello.txt"), "hello from nginx\n").unwrap();
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    let (plain, tls) = (free_port(), free_port());
    let d = dir.display();
    let conf = format!(
        r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    types {{ text/plain txt; }}
    keepalive_requests 4;
    gzip on;
    gzip_types text/plain;
    gzip_min_length 1;
    server {{
        listen 127.0.0.1:{plain};
        listen 127.0.0.1:{tls} ssl;
        ssl_certificate {d}/cert.pem;
        ssl_certificate_key {d}/key.pem;
        root {d}/www;
        location /moved {{ return 301 /hello.txt; }}
        location /upload {{ client_max_body_size 1k; return 200 "uploaded
"; }}
    }}
}}
"#
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(bin.unwrap())
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let n = Nginx {
        child,
        plain,
        tls,
        dir,
    };
    wait_listening(&n, plain);
    wait_listening(&n, tls);
    n
}

/// Waits (bounded) until nginx accepts on `port`.
fn wait_listening(n: &Nginx, port: u16) {
    for _ in 0..200 {
        if sylvan::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        sylvan::sleep(Duration::from_millis(25)).unwrap();
    }
    let log = std::fs::read_to_string(n.dir.join("error.log")).unwrap_or_default();
    panic!("nginx did not listen on {port}: {log}");
}

fn tls_material() -> (String, String, rustls::RootCertStore) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            cert.cert.der().to_vec(),
        ))
        .unwrap();
    (cert.cert.pem(), cert.signing_key.serialize_pem(), roots)
}

fn client_config(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[test]
fn against_nginx_plain_and_tls() {
    let (cert, key, roots) = tls_material();
    let nginx = start_nginx(&cert, &key);
    let big: String = (0..20_000).map(|i| format!("nginx line {i}\n")).collect();
    let c = Client::builder()
        .decompress(true)
        .tls_config(client_config(roots))
        .build();
    for base in [
        format!("http://127.0.0.1:{}", nginx.plain),
        format!("https://localhost:{}", nginx.tls),
    ] {
        // keepalive_requests 4: nginx closes every 4th response's
        // connection with `Connection: close`; the client follows.
        for i in 0..10 {
            let r = c.get(format!("{base}/hello.txt")).send().unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.text().unwrap(), "hello from nginx\n", "request {i}");
        }
        // gzip, chunked by nginx, decoded here.
        let r = c.get(format!("{base}/big.txt")).send().unwrap();
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert!(r.text().unwrap() == big, "{base}/big.txt decoded");
        // Without decoding: the plain file, Content-Length.
        let r = c
            .get(format!("{base}/big.txt"))
            .header("Accept-Encoding", "identity")
            .send()
            .unwrap();
        assert_eq!(r.content_length(), Some(big.len() as u64));
        assert!(r.text().unwrap() == big);
        // A redirect, and a 404.
        let r = c.get(format!("{base}/moved")).send().unwrap();
        assert!(r.url().path().ends_with("/hello.txt"));
        assert_eq!(r.text().unwrap(), "hello from nginx\n");
        assert_eq!(c.get(format!("{base}/nope")).send().unwrap().status(), 404);
        // Too large an upload: nginx answers 413 to the head alone.
        let r = c
            .post(format!("{base}/upload"))
            .body(vec![0u8; 2_000_000])
            .send()
            .unwrap();
        assert_eq!(r.status(), 413);
        let r = c
            .post(format!("{base}/upload"))
            .body("tiny")
            .send()
            .unwrap();
        assert_eq!(r.text().unwrap(), "uploaded\n");
    }
    // A certificate nobody vouches for is refused.
    let (_, _, other_roots) = tls_material();
    let stranger = Client::builder()
        .tls_config(client_config(other_roots))
        .build();
    let e = stranger
        .get(format!("https://localhost:{}/hello.txt", nginx.tls))
        .send()
        .unwrap_err();
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
}

#[test]
fn against_nginx_a_dead_upstream_is_a_clear_error() {
    let (cert, key, _) = tls_material();
    let nginx = start_nginx(&cert, &key);
    let port = nginx.plain;
    let c = Client::new();
    let r = c
        .get(format!("http://127.0.0.1:{port}/hello.txt"))
        .send()
        .unwrap();
    assert_eq!(r.text().unwrap(), "hello from nginx\n");
    assert_eq!(c.idle_connections(), 1);
    drop(nginx); // stopped by PID: the pooled connection is now dead
    let e = c
        .get(format!("http://127.0.0.1:{port}/hello.txt"))
        .send()
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
}

// --- Retry policy ----------------------------------------------------------

#[test]
fn a_retry_policy_retries_what_is_safe_to_send_again() {
    use sylvan::resilience::{Backoff, Retry, RetryBudget, is_transient};
    // Closes each of its first `drop_first` connections as soon as a
    // request arrives, then answers "ok".
    let listener = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Rc::new(std::cell::Cell::new(0usize));
    let drop_first = Rc::new(std::cell::Cell::new(2usize));
    let (a, d) = (accepted.clone(), drop_first.clone());
    let _server = sylvan::spawn(move || {
        while let Ok((mut s, _)) = listener.accept() {
            a.set(a.get() + 1);
            let close = d.get() > 0;
            d.set(d.get().saturating_sub(1));
            sylvan::spawn(move || {
                let mut buf = [0; 4096];
                while let Ok(1..) = s.read(&mut buf) {
                    if close {
                        return;
                    }
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                }
            });
        }
    });
    let budget = RetryBudget::token_bucket(100, 0.1);
    let c = Client::builder()
        .retry(
            Retry::new()
                .max_attempts(3)
                .retry_if(is_transient)
                .backoff(Backoff::new().initial(Duration::from_millis(1)))
                .budget(budget.clone()),
        )
        .build();
    let u = format!("http://{addr}/");
    // GET: two connections closed under it, the third answers.
    assert_eq!(c.get(&u).send().unwrap().text().unwrap(), "ok");
    assert_eq!(accepted.get(), 3);
    assert!(budget.tokens() < 100.0, "the budget was charged");
    // POST: the request was sent, so it is not sent again.
    c.clear_idle();
    drop_first.set(1);
    let e = c.post(&u).body("x").send().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    assert_eq!(accepted.get(), 4, "one attempt");
    // Marked idempotent, it is.
    drop_first.set(1);
    let r = c.post(&u).body("x").idempotent(true).send().unwrap();
    assert_eq!(r.text().unwrap(), "ok");
    assert_eq!(accepted.get(), 6);
    // Without a policy, a fresh connection closed under a GET is an error.
    drop_first.set(1);
    let plain = Client::new();
    assert!(plain.get(&u).send().is_err());
}
