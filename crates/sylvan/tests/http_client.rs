//! The green HTTP/1.1 client (`sylvan::http::Client`) against sylvan's own
//! server, raw green sockets that misbehave on purpose, and Python's
//! `http.server`.

mod util;

use std::cell::Cell;
use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use sylvan::Cancelled;
use sylvan::http::{Body, Client, Response, Server, ServerHandle};
use sylvan::net::TcpStream;
use sylvan::sync::Queue;

fn checksum(data: &[u8]) -> u64 {
    data.iter()
        .fold(0u64, |a, &b| a.wrapping_mul(31).wrapping_add(u64::from(b)))
}

const BIG: u64 = 20 << 20;

/// The test application: echoes requests, redirects, streams.
fn app(other: Option<SocketAddr>) -> ServerHandle {
    Server::bind("127.0.0.1:0")
        .unwrap()
        .max_body_size(64 << 20)
        .serve(move |mut req| {
            let path = req.path().to_string();
            let redirect = |code: u16, to: String| Response::new(code).header("Location", to);
            match path.as_str() {
                "/echo" => {
                    let chunked = req.is_chunked();
                    let mut body = Vec::new();
                    if let Err(e) = req.read_to_end(&mut body) {
                        return Response::text(format!("body error: {e}")).with_status(400);
                    }
                    Response::text(format!(
                        "{} {} len={} sum={} chunked={chunked} auth={} cookie={} keep={} q={}",
                        req.method(),
                        path,
                        body.len(),
                        checksum(&body),
                        req.header("authorization").unwrap_or("-"),
                        req.header("cookie").unwrap_or("-"),
                        req.header("x-keep").unwrap_or("-"),
                        req.query().unwrap_or("-"),
                    ))
                }
                "/301" | "/302" | "/303" | "/307" | "/308" => {
                    redirect(path[1..].parse().unwrap(), "/echo".into())
                }
                "/loop" => redirect(302, "/loop".into()),
                "/cross" => redirect(302, format!("http://{}/echo", other.unwrap())),
                "/rel/a" => redirect(302, "b?x=1".into()),
                "/rel/b" => Response::text(format!("b {}", req.query().unwrap_or("-"))),
                "/big" => Response::from_reader(io::repeat(b'x').take(BIG)),
                "/nocontent" => Response::new(204),
                "/close" => Response::text("bye").header("Connection", "close"),
                _ => Response::status_page(404),
            }
        })
}

fn url(s: &ServerHandle, path: &str) -> String {
    format!("http://{}{path}", s.local_addr())
}

#[test]
fn get_post_and_head() {
    let s = app(None);
    let c = Client::new();
    let r = c
        .get(url(&s, "/echo?a=b"))
        .header("X-Keep", "1")
        .send()
        .unwrap();
    assert_eq!((r.status(), r.reason()), (200, "OK"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.url().path_and_query(), "/echo?a=b");
    assert!(
        r.text()
            .unwrap()
            .starts_with("GET /echo len=0 sum=0 chunked=false auth=- cookie=- keep=1 q=a=b")
    );

    let body = b"hello, world".to_vec();
    let want = format!("POST /echo len=12 sum={} chunked=false", checksum(&body));
    let t = c
        .post(url(&s, "/echo"))
        .body(body.clone())
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(t.starts_with(&want), "{t}");

    let t = c
        .post(url(&s, "/echo"))
        .body_reader(io::Cursor::new(body.clone()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(t.contains("len=12") && t.contains("chunked=true"), "{t}");

    let sized = Body::sized(io::Cursor::new(body.clone()), 12);
    let t = c
        .put(url(&s, "/echo"))
        .body(sized)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        t.starts_with("PUT /echo len=12") && t.contains("chunked=false"),
        "{t}"
    );

    // HEAD and 204 have no body, whatever the headers say, and keep the
    // connection.
    let r = c.head(url(&s, "/big")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().unwrap(), b"");
    let r = c.get(url(&s, "/nocontent")).send().unwrap();
    assert_eq!((r.status(), r.content_length()), (204, Some(0)));
    drop(r);
    assert_eq!(c.get(url(&s, "/nope")).send().unwrap().status(), 404);
    assert_eq!(s.accepted(), 1, "every request above reused one connection");
}

#[test]
fn large_bodies_stream_both_ways() {
    let s = app(None);
    let c = Client::new();
    // 20 MiB chunked response, read as a stream.
    let mut r = c.get(url(&s, "/big")).send().unwrap();
    assert_eq!(r.content_length(), None);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    let mut buf = vec![0; 64 * 1024];
    let mut total = 0u64;
    loop {
        match r.read(&mut buf).unwrap() {
            0 => break,
            n => {
                assert!(buf[..n].iter().all(|&b| b == b'x'));
                total += n as u64;
            }
        }
    }
    assert_eq!(total, BIG);
    drop(r);
    assert_eq!(
        c.idle_connections(),
        1,
        "a body read to its end frees its connection"
    );

    // bytes() stops at the limit (default 10 MiB) and closes the connection.
    let e = c.get(url(&s, "/big")).send().unwrap().bytes().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(e.to_string().contains("exceeds the limit"), "{e}");
    let small = Client::builder().max_body_size(1000).build();
    let e = small
        .get(url(&s, "/big"))
        .send()
        .unwrap()
        .text()
        .unwrap_err();
    assert!(e.to_string().contains("limit of 1000 bytes"), "{e}");
    assert_eq!(small.idle_connections(), 0);

    // 5 MiB streamed up, chunked.
    let up = io::repeat(b'y').take(5 << 20);
    let t = c
        .post(url(&s, "/echo"))
        .body_reader(up)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let want = format!("len={} sum={}", 5 << 20, checksum(&vec![b'y'; 5 << 20]));
    assert!(t.contains(&want) && t.contains("chunked=true"), "{t}");
}

#[test]
fn connections_are_reused_only_when_safe() {
    let s = app(None);
    let c = Client::new();
    for _ in 0..5 {
        c.get(url(&s, "/echo")).send().unwrap().text().unwrap();
    }
    assert_eq!((s.accepted(), c.idle_connections()), (1, 1));

    // Half-read: the connection is closed, never handed to the next request.
    let mut r = c.get(url(&s, "/big")).send().unwrap();
    let mut few = [0; 10];
    r.read_exact(&mut few).unwrap();
    assert_eq!(c.idle_connections(), 0, "checked out");
    drop(r);
    assert_eq!(c.idle_connections(), 0, "a half-read connection is dropped");
    c.get(url(&s, "/echo")).send().unwrap().text().unwrap();
    assert_eq!(s.accepted(), 2);

    // The server says Connection: close.
    assert_eq!(
        c.get(url(&s, "/close")).send().unwrap().text().unwrap(),
        "bye"
    );
    assert_eq!(c.idle_connections(), 0);
    c.get(url(&s, "/echo")).send().unwrap().text().unwrap();
    assert_eq!(s.accepted(), 3);

    // No pooling at all.
    let none = Client::builder().max_idle_per_host(0).build();
    for _ in 0..3 {
        none.get(url(&s, "/echo")).send().unwrap().text().unwrap();
    }
    assert_eq!(s.accepted(), 6);

    // Many green threads share the pool.
    let fetches: Vec<_> = (0..20)
        .map(|i| {
            let (c, u) = (c.clone(), url(&s, &format!("/echo?{i}")));
            sylvan::spawn(move || c.get(u).send()?.text())
        })
        .collect();
    for (i, f) in fetches.into_iter().enumerate() {
        assert!(f.join().unwrap().unwrap().ends_with(&format!("q={i}")));
    }
    assert!(c.idle_connections() >= 1);
}

#[test]
fn idle_timeout_and_lifetime_on_virtual_time() {
    // The server's own keep-alive timeout must not close connections as
    // the clock jumps.
    let s = Server::bind("127.0.0.1:0")
        .unwrap()
        .keep_alive_timeout(Duration::from_secs(3600))
        .header_timeout(Duration::from_secs(3600))
        .serve(|_| Response::text("ok"));
    let c = Client::builder()
        .idle_timeout(Some(Duration::from_secs(90)))
        .build();
    c.get(url(&s, "/echo")).send().unwrap().text().unwrap();
    sylvan::time::pause();
    sylvan::time::advance(Duration::from_secs(89));
    sylvan::time::resume();
    c.get(url(&s, "/echo")).send().unwrap().text().unwrap();
    assert_eq!(s.accepted(), 1, "idle 89 s: reused");
    sylvan::time::pause();
    sylvan::time::advance(Duration::from_secs(91));
    sylvan::time::resume();
    c.get(url(&s, "/echo")).send().unwrap().text().unwrap();
    assert_eq!(s.accepted(), 2, "idle 91 s: closed, a new one made");

    let c = Client::builder()
        .max_lifetime(Some(Duration::from_secs(60)))
        .build();
    c.get(url(&s, "/echo")).send().unwrap().text().unwrap();
    sylvan::time::pause();
    sylvan::time::advance(Duration::from_secs(61));
    sylvan::time::resume();
    c.get(url(&s, "/echo")).send().unwrap().text().unwrap();
    assert_eq!(s.accepted(), 4, "too old: not reused");
}

#[test]
fn redirects_follow_rfc_9110() {
    let b = app(None);
    let a = app(Some(b.local_addr()));
    let c = Client::new();
    let post = |path: &str| {
        c.post(url(&a, path))
            .body("data")
            .header("Authorization", "Bearer t")
            .send()
            .unwrap()
    };
    // 303: GET, body dropped; 301/302: POST becomes GET as browsers do.
    for p in ["/301", "/302", "/303"] {
        let r = post(p);
        assert_eq!(r.url().path(), "/echo");
        let t = r.text().unwrap();
        assert!(
            t.starts_with("GET /echo len=0") && t.contains("auth=Bearer t"),
            "{p}: {t}"
        );
    }
    // 307/308 keep the method and the (replayable) body.
    for p in ["/307", "/308"] {
        let t = post(p).text().unwrap();
        assert!(t.starts_with("POST /echo len=4"), "{p}: {t}");
    }
    // A reader body cannot be replayed: the 307 itself comes back.
    let no_expect = Client::builder().expect_continue(None).build();
    let r = no_expect
        .post(url(&a, "/307"))
        .body_reader(io::Cursor::new(b"once".to_vec()))
        .send()
        .unwrap();
    assert_eq!((r.status(), r.header("location")), (307, Some("/echo")));
    drop(r);
    // 303 keeps HEAD a HEAD.
    let r = c.head(url(&a, "/303")).send().unwrap();
    assert_eq!((r.status(), r.url().path()), (200, "/echo"));
    drop(r);

    // Relative Location.
    assert_eq!(
        c.get(url(&a, "/rel/a")).send().unwrap().text().unwrap(),
        "b x=1"
    );

    // Across origins, credentials are dropped; other headers stay.
    let r = c
        .get(url(&a, "/cross"))
        .header("Authorization", "Basic x")
        .header("Cookie", "sid=1")
        .header("X-Keep", "yes")
        .send()
        .unwrap();
    assert_eq!(r.url().port(), b.local_addr().port());
    let t = r.text().unwrap();
    assert!(t.contains("auth=- cookie=- keep=yes"), "{t}");
    let t = c
        .get(url(&a, "/302"))
        .header("Cookie", "sid=1")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(t.contains("cookie=sid=1"), "same origin keeps them: {t}");

    // A loop hits the limit.
    let e = c.get(url(&a, "/loop")).send().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::Other);
    assert!(
        e.to_string()
            .contains("too many redirects: gave up after 10"),
        "{e}"
    );
    // Redirect bodies were small: their connections were all reused.
    assert_eq!(a.accepted(), 2, "one per client");
    let none = Client::builder().max_redirects(0).build();
    assert_eq!(none.get(url(&a, "/loop")).send().unwrap().status(), 302);

    // A reader of unknown size is sent with `Expect: 100-continue`: the
    // server's 307 comes before the body, which goes to the new target.
    let t = c
        .post(url(&a, "/307"))
        .body_reader(io::Cursor::new(b"once".to_vec()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(t.starts_with("POST /echo len=4"), "{t}");
}

// --- Misbehaving servers on raw green sockets ---------------------------

/// Reads one request head (and whatever follows it in the same reads);
/// `Ok(false)` at end of stream.
fn read_head(s: &mut TcpStream) -> io::Result<bool> {
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf)? {
            0 => return Ok(false),
            n => got.extend_from_slice(&buf[..n]),
        }
    }
    Ok(true)
}

/// A server that hands each accepted connection, numbered from 1, to
/// `serve` in a green thread of its own; returns its address and the
/// number accepted so far.
fn raw_server(serve: impl Fn(TcpStream, usize) + 'static) -> (SocketAddr, Rc<Cell<usize>>) {
    let l = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let count = Rc::new(Cell::new(0));
    let n = count.clone();
    let serve = Rc::new(serve);
    drop(sylvan::spawn(move || {
        while let Ok((s, _)) = l.accept() {
            n.set(n.get() + 1);
            let (serve, i) = (serve.clone(), n.get());
            drop(sylvan::spawn(move || serve(s, i)));
        }
    }));
    (addr, count)
}

/// Answers every request with `ok`, except the second one on the first
/// connection: that one it reads and then closes without a word — the
/// keep-alive race, made deterministic.
fn closes_idle_connection() -> (String, Rc<Cell<usize>>) {
    let (addr, n) = raw_server(|mut s, conn| {
        for i in 0.. {
            if !read_head(&mut s).unwrap_or(false) || (conn == 1 && i == 1) {
                return;
            }
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .unwrap();
        }
    });
    (format!("http://{addr}/"), n)
}

#[test]
fn keep_alive_race_retries_idempotent_requests_only() {
    let (u, accepted) = closes_idle_connection();
    let c = Client::new();
    assert_eq!(c.get(&u).send().unwrap().text().unwrap(), "ok");
    assert_eq!(c.get(&u).send().unwrap().text().unwrap(), "ok", "retried");
    assert_eq!(accepted.get(), 2);

    let (u, accepted) = closes_idle_connection();
    let c = Client::new();
    c.get(&u).send().unwrap().text().unwrap();
    let e = c.post(&u).body("x").send().unwrap_err();
    assert!(
        matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
        ),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("POST {u}: ")), "{msg}");
    assert!(
        msg.contains("not retried because the method is not idempotent"),
        "{msg}"
    );
    assert_eq!(accepted.get(), 1, "the POST was not sent again");

    let (u, accepted) = closes_idle_connection();
    let c = Client::new();
    c.get(&u).send().unwrap().text().unwrap();
    let r = c.post(&u).body("x").idempotent(true).send().unwrap();
    assert_eq!(r.text().unwrap(), "ok");
    assert_eq!(accepted.get(), 2);
}

#[test]
fn a_connection_the_server_closed_while_idle_is_not_reused() {
    let events = Queue::unbounded();
    let ev = events.clone();
    let (addr, accepted) = raw_server(move |mut s, _| {
        read_head(&mut s).unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .unwrap();
        drop(s);
        let _ = ev.put("closed");
    });
    let u = format!("http://{addr}/");
    let c = Client::new();
    assert_eq!(c.get(&u).send().unwrap().text().unwrap(), "ok");
    assert_eq!(c.idle_connections(), 1);
    assert_eq!(events.get().unwrap(), "closed");
    // Not idempotent, so it could not be retried: the closed connection
    // must be noticed before the request is sent on it.
    let r = c.post(&u).body("x").send().unwrap();
    assert_eq!(r.text().unwrap(), "ok");
    assert_eq!(accepted.get(), 2);
}

/// Answers every request on every connection with `bytes`.
fn repeating(bytes: &'static [u8]) -> (String, Rc<Cell<usize>>) {
    let (addr, n) = raw_server(move |mut s, _| {
        while read_head(&mut s).unwrap_or(false) {
            if s.write_all(bytes).is_err() {
                return;
            }
        }
    });
    (format!("http://{addr}/"), n)
}

#[test]
fn keep_alive_follows_version_and_connection_headers() {
    let twice = |bytes: &'static [u8], close: bool| {
        let (u, accepted) = repeating(bytes);
        let c = Client::new();
        for _ in 0..2 {
            let mut req = c.get(&u);
            if close {
                req = req.header("Connection", "close");
            }
            assert_eq!(req.send().unwrap().text().unwrap(), "ok");
        }
        accepted.get()
    };
    let v10_keep = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok";
    assert_eq!(twice(v10_keep, false), 1);
    assert_eq!(
        twice(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false),
        2
    );
    assert_eq!(
        twice(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false),
        1
    );
    assert_eq!(
        twice(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true),
        2,
        "we said close"
    );
    let both = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n2\r\nok\r\n0\r\n\r\n";
    assert_eq!(
        twice(both, false),
        2,
        "chunked wins, but the connection is not trusted"
    );
    let closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
    assert_eq!(twice(closing, false), 2);
}

#[test]
fn connect_timeouts_are_timed_out() {
    let (hole, _fill) = util::blackhole_listener("127.0.0.1");
    let u = format!("http://{}/", hole.local_addr().unwrap());
    let c = Client::builder()
        .connect_timeout(Duration::from_millis(100))
        .build();
    let t0 = Instant::now();
    let e = c.get(&u).send().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert!(e.to_string().contains("timed out after 100ms"), "{e}");
    assert!(t0.elapsed() >= Duration::from_millis(100));
    // The whole-request timeout covers connecting as well.
    let e = Client::new()
        .get(&u)
        .timeout(Duration::from_millis(100))
        .send()
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert!(e.to_string().contains("timeout of 100ms passed"), "{e}");
}

/// Reads a request, reports it, then (if `partial`) sends a head and
/// part of a body; then waits for the client to close, and reports that.
fn stalls(partial: bool) -> (String, Queue<&'static str>) {
    let events = Queue::unbounded();
    let ev = events.clone();
    let (addr, _) = raw_server(move |mut s, _| {
        read_head(&mut s).unwrap();
        let _ = ev.put("request");
        if partial {
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
                .unwrap();
        }
        let mut b = [0; 16];
        while let Ok(n) = s.read(&mut b) {
            if n == 0 {
                break;
            }
        }
        let _ = ev.put("closed");
    });
    (format!("http://{addr}/stall"), events)
}

#[test]
fn read_timeout_is_timed_out() {
    let (u, events) = stalls(false);
    let c = Client::builder()
        .read_timeout(Some(Duration::from_millis(100)))
        .build();
    let t0 = Instant::now();
    let e = c.get(&u).send().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert!(t0.elapsed() >= Duration::from_millis(100));
    assert!(e.to_string().starts_with(&format!("GET {u}: ")), "{e}");
    assert_eq!(events.get().unwrap(), "request");
    assert_eq!(
        events.get().unwrap(),
        "closed",
        "a timed-out connection is closed"
    );
    assert_eq!(c.idle_connections(), 0);
}

#[test]
fn whole_request_timeout_covers_the_body() {
    let (u, events) = stalls(true);
    let c = Client::builder().read_timeout(None).build();
    let t0 = Instant::now();
    let mut r = c
        .get(&u)
        .timeout(Duration::from_millis(200))
        .send()
        .unwrap();
    assert_eq!(r.content_length(), Some(100));
    let mut abc = [0; 3];
    r.read_exact(&mut abc).unwrap();
    let e = r.read(&mut [0; 10]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert!(e.to_string().contains("timeout of 200ms passed"), "{e}");
    assert!(t0.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        r.read(&mut [0; 10]).unwrap_err().kind(),
        io::ErrorKind::Other
    );
    drop(r);
    assert_eq!(events.get().unwrap(), "request");
    assert_eq!(events.get().unwrap(), "closed");

    // The client-wide default, and a deadline while waiting for the head.
    let (u, events) = stalls(false);
    let c = Client::builder()
        .timeout(Some(Duration::from_millis(50)))
        .build();
    let e = c.get(&u).send().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert_eq!(events.get().unwrap(), "request");
    assert_eq!(events.get().unwrap(), "closed");
    assert_eq!(c.idle_connections(), 0);

    // An enclosing sylvan::timeout scope applies as well.
    let (u, _events) = stalls(false);
    let r = sylvan::timeout(Duration::from_millis(50), || Client::new().get(&u).send());
    assert!(r.is_err(), "the scope's own deadline fired");
}

#[test]
fn kill_mid_request_closes_the_connection() {
    let (u, events) = stalls(true);
    let c = Client::new();
    let c2 = c.clone();
    let g = sylvan::spawn(move || {
        let mut r = c2.get(&u).send()?;
        let mut buf = Vec::new();
        r.read_to_end(&mut buf).map(|_| buf)
    });
    assert_eq!(events.get().unwrap(), "request");
    g.kill();
    let e = g.join().unwrap().unwrap_err();
    assert_eq!(Cancelled::from_io(&e), Some(Cancelled::Killed), "{e:?}");
    assert_eq!(events.get().unwrap(), "closed");
    assert_eq!(c.idle_connections(), 0);

    // Killed while waiting for the head.
    let (u, events) = stalls(false);
    let c2 = c.clone();
    let g = sylvan::spawn(move || c2.get(&u).send().map(|_| ()));
    assert_eq!(events.get().unwrap(), "request");
    g.kill();
    let e = g.join().unwrap().unwrap_err();
    assert_eq!(Cancelled::from_io(&e), Some(Cancelled::Killed), "{e:?}");
    assert_eq!(events.get().unwrap(), "closed");
    assert_eq!(c.idle_connections(), 0);
}

/// Answers every connection's first request with `bytes`, then closes.
fn canned(bytes: &'static [u8]) -> String {
    let (addr, _) = raw_server(move |mut s, _| {
        if read_head(&mut s).unwrap_or(false) {
            let _ = s.write_all(bytes);
        }
    });
    format!("http://{addr}/")
}

#[test]
fn malformed_responses_are_errors_not_panics() {
    let c = Client::new();
    let head_err = |bytes: &'static [u8]| c.get(canned(bytes)).send().unwrap_err();
    let body_err = |bytes: &'static [u8]| {
        c.get(canned(bytes))
            .send()
            .expect("the head is fine")
            .text()
            .unwrap_err()
    };
    let cases: [(&[u8], io::ErrorKind, &str); 7] = [
        (
            b"garbage\r\n\r\n",
            io::ErrorKind::InvalidData,
            "malformed status line",
        ),
        (
            b"HTTP/2 200 OK\r\n\r\n",
            io::ErrorKind::InvalidData,
            "not HTTP/1.x",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            io::ErrorKind::InvalidData,
            "invalid Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            io::ErrorKind::InvalidData,
            "conflicting Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            io::ErrorKind::InvalidData,
            "malformed response header",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Le",
            io::ErrorKind::UnexpectedEof,
            "middle of the response head",
        ),
        (
            b"",
            io::ErrorKind::UnexpectedEof,
            "before sending a response",
        ),
    ];
    for (bytes, kind, msg) in cases {
        let e = head_err(bytes);
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.to_string().contains(msg), "{e}");
    }
    let huge: &'static [u8] = Box::leak(
        format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "v".repeat(100_000))
            .into_bytes()
            .into_boxed_slice(),
    );
    let e = head_err(huge);
    assert!(
        e.kind() == io::ErrorKind::InvalidData && e.to_string().contains("too large"),
        "{e}"
    );

    let e = body_err(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    assert!(e.to_string().contains("malformed chunked body"), "{e}");
    let e = body_err(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab");
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    let e = body_err(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    assert!(e.to_string().contains("7 bytes before the end"), "{e}");

    // Legal oddities: a body delimited by the close, interim 1xx heads.
    let ok = |bytes: &'static [u8]| c.get(canned(bytes)).send().unwrap().text().unwrap();
    assert_eq!(ok(b"HTTP/1.0 200 OK\r\n\r\nuntil close"), "until close");
    assert_eq!(c.idle_connections(), 0, "none of these could be reused");
    assert_eq!(
        ok(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
        "hi"
    );
    assert_eq!(c.idle_connections(), 1, "HTTP/1.1 allows keep-alive");
}

#[test]
fn bad_input_and_connect_errors_say_what_failed() {
    let c = Client::new();
    let e = c.get("localhost:80/x").send().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("invalid URL"), "{e}");
    let e = c
        .get("http://h/")
        .header("X", "a\r\nInjected: 1")
        .send()
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    let e = c.get("https://localhost/").send().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::Unsupported);

    // A port nobody listens on.
    let port = {
        let l = sylvan::listen("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let u = format!("http://127.0.0.1:{port}/");
    let e = c.get(&u).send().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    assert!(e.to_string().starts_with(&format!("GET {u}: ")), "{e}");
}

// --- Python's http.server -------------------------------------------------

const PY_SERVER: &str = r#"
import http.server, socketserver, sys
conns = set()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def reply(self, body, status=200, extra=()):
        self.send_response(status)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        conns.add(self.client_address)
        if self.path == "/hello":
            self.reply(b"hello from python")
        elif self.path == "/conns":
            self.reply(str(len(conns)).encode())
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(100):
                part = ("line %d\n" % i).encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/old":
            self.protocol_version = "HTTP/1.0"
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"until close")
            self.close_connection = True
        elif self.path == "/redirect":
            self.reply(b"", 302, [("Location", "/hello")])
        else:
            self.reply(b"not found", 404)
    def do_POST(self):
        conns.add(self.client_address)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            kind = "chunked"
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            kind = "length"
        self.reply(("%s %d %d" % (kind, len(data), sum(data))).encode())
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
s = S(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// Python's server, stopped by PID when dropped.
struct Python(Child, u16);

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_python() -> Python {
    util::require(
        util::have_program("python3"),
        "python3",
        "apt-get install -y python3",
    );
    let mut child = Command::new("python3")
        .args(["-c", PY_SERVER])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python3");
    let out = child.stdout.take().unwrap();
    // Reading the pipe blocks: do it on the thread pool.
    let line = sylvan::tpool::execute(move || {
        let mut l = String::new();
        io::BufReader::new(out).read_line(&mut l).map(|_| l)
    })
    .unwrap()
    .unwrap();
    let port = line.trim().parse().expect("python prints its port");
    Python(child, port)
}

#[test]
fn against_python_http_server() {
    let py = start_python();
    let u = |p: &str| format!("http://127.0.0.1:{}{p}", py.1);
    let c = Client::new();
    for _ in 0..3 {
        assert_eq!(
            c.get(u("/hello")).send().unwrap().text().unwrap(),
            "hello from python"
        );
    }
    assert_eq!(
        c.get(u("/conns")).send().unwrap().text().unwrap(),
        "1",
        "kept alive"
    );

    let t = c.get(u("/chunked")).send().unwrap().text().unwrap();
    assert_eq!(t.lines().count(), 100);
    assert!(t.ends_with("line 99\n"));

    let r = c.get(u("/old")).send().unwrap();
    assert_eq!(r.version(), sylvan::http::Version::Http10);
    assert_eq!(r.text().unwrap(), "until close");
    assert_eq!(
        c.get(u("/redirect")).send().unwrap().text().unwrap(),
        "hello from python"
    );
    assert_eq!(
        c.get(u("/conns")).send().unwrap().text().unwrap(),
        "2",
        "the HTTP/1.0 connection was not reused"
    );

    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let sum: u64 = data.iter().map(|&b| u64::from(b)).sum();
    let t = c
        .post(u("/post"))
        .body(data.clone())
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(t, format!("length 100000 {sum}"));
    let t = c
        .post(u("/post"))
        .body_reader(io::Cursor::new(data))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(t, format!("chunked 100000 {sum}"));
}

// --- Through a proxy -------------------------------------------------------

/// A small forward proxy: absolute-form requests are answered with what
/// the proxy saw (no upstream); `CONNECT host:port` opens a tunnel to
/// 127.0.0.1:port and pipes both ways. Reports each request line.
fn proxy() -> (sylvan::http::Url, Queue<String>) {
    let seen = Queue::unbounded();
    let q = seen.clone();
    let (addr, _) = raw_server(move |mut s, _| {
        let mut buf = [0; 4096];
        loop {
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&got).into_owned();
            let line = text.lines().next().unwrap_or("").to_string();
            let _ = q.put(line.clone());
            if let Some(target) = line.strip_prefix("CONNECT ") {
                let port: u16 = target
                    .split_whitespace()
                    .next()
                    .and_then(|t| t.rsplit(':').next())
                    .and_then(|p| p.parse().ok())
                    .unwrap();
                let up = sylvan::connect(("127.0.0.1", port)).unwrap();
                s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .unwrap();
                let (mut a, mut b) = (s.try_clone().unwrap(), up.try_clone().unwrap());
                let pipe = sylvan::spawn(move || io::copy(&mut b, &mut a));
                let (mut up, mut s) = (up, s);
                let _ = io::copy(&mut s, &mut up);
                let _ = up.shutdown(std::net::Shutdown::Write);
                let _ = pipe.join();
                return;
            }
            let host = text
                .lines()
                .find_map(|l| l.strip_prefix("Host: "))
                .unwrap_or("-")
                .to_string();
            let body = format!("{line} host={host}");
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            if s.write_all(head.as_bytes())
                .and_then(|()| s.write_all(body.as_bytes()))
                .is_err()
            {
                return;
            }
        }
    });
    (
        sylvan::http::Url::parse(&format!("http://{addr}")).unwrap(),
        seen,
    )
}

#[test]
fn http_through_a_proxy_in_absolute_form() {
    let (p, seen) = proxy();
    let c = Client::builder().proxy(p).build();
    for _ in 0..2 {
        let t = c
            .get("http://origin.invalid:8080/a?b=1")
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(
            t,
            "GET http://origin.invalid:8080/a?b=1 HTTP/1.1 host=origin.invalid:8080"
        );
    }
    assert_eq!(seen.len(), 2);
    assert_eq!(
        c.idle_connections(),
        1,
        "the connection to the proxy is kept"
    );
    let e = Client::builder()
        .proxy(sylvan::http::Url::parse("https://proxy.invalid/").unwrap())
        .build()
        .get("http://x.invalid/")
        .send()
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::Unsupported, "{e}");
}

// --- https:// (feature `tls`) ---------------------------------------------

#[cfg(feature = "tls")]
#[test]
fn https_with_a_tls_config() {
    use std::sync::Arc;
    use sylvan::net::tls::{TlsAcceptor, rustls};

    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_der = rustls::pki_types::CertificateDer::from(cert.cert.der().to_vec());
    let key_der =
        rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_cfg = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key_der)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let client_cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();

    // A keep-alive HTTPS server on a raw TLS stream.
    let acceptor = TlsAcceptor::new(Arc::new(server_cfg));
    let (addr, accepted) = raw_server(move |tcp, _| {
        let Ok(mut tls) = acceptor.accept(tcp) else {
            return;
        };
        let mut buf = [0; 4096];
        let mut got = Vec::new();
        loop {
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            got.clear();
            let body = b"secure hello";
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            if tls.write_all(head.as_bytes()).is_err() || tls.write_all(body).is_err() {
                return;
            }
        }
    });
    let u = format!("https://localhost:{}/", addr.port());

    let plain = Client::new();
    let e = plain.get(&u).send().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::Unsupported, "{e}");

    let c = Client::builder()
        .tls_config(Arc::new(client_cfg.clone()))
        .build();
    for _ in 0..3 {
        let r = c.get(&u).send().unwrap();
        assert_eq!(r.url().scheme(), "https");
        assert_eq!(r.text().unwrap(), "secure hello");
    }
    assert_eq!(accepted.get(), 1, "the TLS connection was kept alive");

    // The same server through a CONNECT tunnel: TLS end to end.
    let (p, seen) = proxy();
    let c = Client::builder()
        .tls_config(Arc::new(client_cfg))
        .proxy(p)
        .build();
    assert_eq!(c.get(&u).send().unwrap().text().unwrap(), "secure hello");
    assert_eq!(
        seen.get().unwrap(),
        format!("CONNECT localhost:{} HTTP/1.1", addr.port())
    );
    assert_eq!(c.get(&u).send().unwrap().text().unwrap(), "secure hello");
    assert!(seen.is_empty(), "the tunnel was reused");
}

// --- The response reader on arbitrary bytes (as the fuzz target) ---------

proptest::proptest! {
    #[test]
    fn response_reader_never_panics(
        head in proptest::bool::ANY,
        prefix in proptest::sample::select(vec![
            &b"HTTP/1.1 200 OK\r\n"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.0 204 No Content\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"",
        ]),
        tail in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
    ) {
        let mut data = prefix.to_vec();
        data.extend_from_slice(&tail);
        if let Ok((status, body)) = sylvan::http::__private::read_response(&data, head) {
            proptest::prop_assert!((100..=999).contains(&status));
            proptest::prop_assert!(body.len() <= data.len());
        }
    }
}

#[test]
fn response_reader_decodes_what_servers_send() {
    let read = sylvan::http::__private::read_response;
    assert_eq!(
        read(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: x\r\n\r\n",
            false
        ),
        Ok((200, b"abc".to_vec()))
    );
    assert_eq!(
        read(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", true),
        Ok((200, Vec::new()))
    );
    assert!(read(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", false).is_err());
}

// --- JSON bodies (feature `json`) ------------------------------------------

#[cfg(feature = "json")]
#[test]
fn json_both_ways() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Item {
        id: u32,
        name: String,
    }
    let s = Server::bind("127.0.0.1:0").unwrap().serve(|mut req| {
        let mut body = Vec::new();
        req.read_to_end(&mut body).unwrap();
        match serde_json::from_slice::<Item>(&body) {
            Ok(mut item) => {
                item.id += 1;
                Response::text(serde_json::to_string(&item).unwrap())
                    .header("Content-Type", "application/json")
            }
            Err(_) => Response::text("not json"),
        }
    });
    let u = url(&s, "/");
    let c = Client::new();
    let sent = Item {
        id: 1,
        name: "a".into(),
    };
    let got: Item = c.post(&u).json(&sent).send().unwrap().json().unwrap();
    assert_eq!(
        got,
        Item {
            id: 2,
            name: "a".into()
        }
    );
    let e = c
        .post(&u)
        .body("x")
        .send()
        .unwrap()
        .json::<Item>()
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(e.to_string().contains("is not the JSON expected"), "{e}");
}
