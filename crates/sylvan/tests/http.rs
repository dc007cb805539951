//! The HTTP server over raw sockets: keep-alive, pipelining, bodies, limits,
//! smuggling attempts, timeouts (on virtual time), panics, graceful stop.

mod http_util;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::Duration;

use http_util::{Client, roundtrip};
use sylvan::http::{Body, Response, Server};
use sylvan::sync::Queue;

fn echo_server(server: Server) -> sylvan::http::RunningServer {
    server.serve(|mut req| {
        let mut body = Vec::new();
        if let Err(e) = req.read_to_end(&mut body) {
            return Response::text(format!("body error: {e}")).with_status(400);
        }
        Response::text(format!(
            "{} {} {} {}",
            req.method(),
            req.uri(),
            body.len(),
            String::from_utf8_lossy(&body)
        ))
    })
}

fn start() -> sylvan::http::RunningServer {
    echo_server(Server::bind("127.0.0.1:0").unwrap())
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let server = start();
    let mut c = Client::connect(server.local_addr());
    for i in 0..20 {
        c.send(format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let r = c.response();
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), format!("GET /{i} 0 "));
        assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")));
        assert_eq!(r.header("connection"), None);
    }
    assert_eq!(server.accepted(), 1);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = start();
    let mut c = Client::connect(server.local_addr());
    let mut all = Vec::new();
    for i in 0..50 {
        all.extend_from_slice(
            format!(
                "POST /{i} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n{}",
                i % 10
            )
            .as_bytes(),
        );
    }
    all.extend_from_slice(b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    c.send(&all);
    for i in 0..50 {
        assert_eq!(c.response().text(), format!("POST /{i} 1 {}", i % 10));
    }
    let last = c.response();
    assert_eq!(last.header("connection"), Some("close"));
    assert_eq!(last.text(), "GET /last 0 ");
    assert!(c.closed());
}

#[test]
fn http10_closes_unless_keep_alive_requested() {
    let server = start();
    let mut c = Client::connect(server.local_addr());
    c.send(b"GET /a HTTP/1.0\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed());

    let mut c = Client::connect(server.local_addr());
    for _ in 0..3 {
        c.send(b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let r = c.response();
        assert_eq!(r.header("connection"), Some("keep-alive"));
        assert_eq!(r.text(), "GET /b 0 ");
    }
}

#[test]
fn connection_close_is_honoured_both_ways() {
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .serve(|req| match req.path() {
            "/bye" => Response::text("bye").header("Connection", "close"),
            _ => Response::text("hi"),
        });
    let mut c = Client::connect(server.local_addr());
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(c.response().header("connection"), Some("close"));
    assert!(c.closed());
    let mut c = Client::connect(server.local_addr());
    c.send(b"GET /bye HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response().header("connection"), Some("close"));
    assert!(c.closed());
}

#[test]
fn chunked_request_and_streamed_chunked_response() {
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .serve(|req| Response::from_reader(req.into_body()));
    let mut c = Client::connect(server.local_addr());
    c.send(b"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n");
    let r = c.response();
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.text(), "hello world");
    // The connection stays usable.
    c.send(b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(c.response().text(), "abc");
}

#[test]
fn streamed_bodies_of_known_and_unknown_length() {
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .serve(|req| match req.path() {
            "/sized" => Response::new(200)
                .with_body(Body::sized(std::io::repeat(b'z').take(100_000), 100_000)),
            "/short" => {
                Response::new(200).with_body(Body::sized(std::io::repeat(b'z').take(10), 20))
            }
            _ => Response::from_reader(std::io::repeat(b'y').take(200_000)),
        });
    let addr = server.local_addr();
    let mut c = Client::connect(addr);
    c.send(b"GET /sized HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response();
    assert_eq!(r.header("content-length"), Some("100000"));
    assert!(r.body.len() == 100_000 && r.body.iter().all(|&b| b == b'z'));
    c.send(b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response();
    assert_eq!(r.body.len(), 200_000);
    // HTTP/1.0 gets no chunks: the body ends with the connection.
    let mut c = Client::connect(addr);
    c.send(b"GET /x HTTP/1.0\r\n\r\n");
    let r = c.response();
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.body.len(), 200_000);
    // A sized body that ends early: the connection closes, the client sees
    // a short body.
    let mut c = Client::connect(addr);
    c.send(b"GET /short HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(c.response_to(false).is_err());
}

#[test]
fn head_gets_headers_without_body() {
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .serve(|_| Response::text("twelve bytes"));
    let mut c = Client::connect(server.local_addr());
    c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response_to(true).unwrap();
    assert_eq!(r.header("content-length"), Some("12"));
    // The next response starts right after the head: no body was sent.
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response().text(), "twelve bytes");
}

#[test]
fn no_content_and_not_modified_have_no_body() {
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .serve(|req| match req.path() {
            "/204" => Response::new(204).with_body("ignored"),
            _ => Response::new(304),
        });
    let mut c = Client::connect(server.local_addr());
    c.send(b"GET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\n");
    let a = c.response();
    let b = c.response();
    assert_eq!((a.status, b.status), (204, 304));
    assert_eq!(a.header("content-length"), None);
    assert!(a.body.is_empty() && b.body.is_empty());
}

#[test]
fn expect_100_continue_is_sent_on_first_read_only() {
    let server = Server::bind("127.0.0.1:0").unwrap().serve(|mut req| {
        if req.path() == "/refuse" {
            return Response::status_page(403);
        }
        let mut s = String::new();
        req.read_to_string(&mut s).unwrap();
        Response::text(s)
    });
    let addr = server.local_addr();
    let mut c = Client::connect(addr);
    c.send(b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.response();
    assert_eq!(interim.status, 100);
    c.send(b"data");
    let r = c.response();
    assert_eq!((r.status, r.text().as_str()), (200, "data"));

    // Refused without reading: no 100, and the connection closes because
    // the client may or may not send the body.
    let mut c = Client::connect(addr);
    c.send(
        b"POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
    );
    let r = c.response();
    assert_eq!(r.status, 403);
    assert_eq!(r.header("connection"), Some("close"));
}

#[test]
fn unread_bodies_are_drained_to_keep_the_connection() {
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .serve(|_| Response::text("ignored your body"));
    let mut c = Client::connect(server.local_addr());
    let body = vec![b'q'; 10_000];
    for _ in 0..3 {
        c.send(
            format!(
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        c.send(&body);
        let r = c.response();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), None);
    }
    // A large unread body closes the connection instead.
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n");
    let r = c.response();
    assert_eq!(r.header("connection"), Some("close"));
}

fn status_of(addr: std::net::SocketAddr, req: &[u8]) -> (u16, bool) {
    let mut c = Client::connect(addr);
    c.send(req);
    let r = c.response();
    let closed = r.header("connection") == Some("close") && c.closed();
    (r.status, closed)
}

#[test]
fn limits_give_the_right_status_and_close() {
    let server = echo_server(Server::bind("127.0.0.1:0").unwrap().max_body_size(1000));
    let addr = server.local_addr();
    let long_line = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000));
    assert_eq!(status_of(addr, long_line.as_bytes()), (414, true));
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(70_000)
    );
    assert_eq!(status_of(addr, big.as_bytes()), (431, true));
    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    assert_eq!(status_of(addr, many.as_bytes()), (431, true));
    let exactly_100: String = (0..98).map(|i| format!("X-{i}: v\r\n")).collect();
    let ok = format!("GET / HTTP/1.1\r\nHost: x\r\n{exactly_100}Connection: close\r\n\r\n");
    assert_eq!(status_of(addr, ok.as_bytes()).0, 200);
    assert_eq!(
        status_of(
            addr,
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n"
        ),
        (413, true)
    );
    let mut chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..20 {
        chunked.extend_from_slice(b"64\r\n");
        chunked.extend_from_slice(&[b'c'; 100]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(status_of(addr, &chunked), (413, true));
    assert_eq!(status_of(addr, b"GARBAGE\r\n\r\n"), (400, true));
    assert_eq!(status_of(addr, b"GET / HTTP/1.1\r\n\r\n"), (400, true)); // no Host
    assert_eq!(
        status_of(
            addr,
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
        ),
        (501, true)
    );
    assert_eq!(
        status_of(addr, b"GET / HTTP/3.0\r\nHost: x\r\n\r\n"),
        (505, true)
    );
    let custom = echo_server(
        Server::bind("127.0.0.1:0")
            .unwrap()
            .max_request_line(64)
            .unwrap()
            .max_headers(2)
            .unwrap()
            .max_header_size(100)
            .unwrap(),
    );
    let a = custom.local_addr();
    assert_eq!(
        status_of(
            a,
            format!("GET /{} HTTP/1.1\r\n", "x".repeat(70)).as_bytes()
        ),
        (414, true)
    );
    assert_eq!(
        status_of(a, b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n"),
        (431, true)
    );
}

#[test]
fn smuggling_attempts_are_rejected_and_closed() {
    let server = start();
    let addr = server.local_addr();
    let attempts: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nHost: y\r\nContent-Length: 0\r\n\r\n",
    ];
    for (i, a) in attempts.iter().enumerate() {
        let mut c = Client::connect(addr);
        // A smuggled second request follows each attempt; it must never
        // be answered.
        c.send(a);
        c.send(b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = c.response();
        let shown = String::from_utf8_lossy(a);
        assert!(
            matches!(r.status, 400 | 501),
            "attempt {i} {shown:?} got {}",
            r.status
        );
        assert_eq!(r.header("connection"), Some("close"), "attempt {i}");
        assert!(c.closed(), "attempt {i}: connection left open");
    }
}

#[test]
fn header_timeout_gives_408_on_virtual_time() {
    sylvan::time::pause();
    let server = start_with(
        Server::bind("127.0.0.1:0")
            .unwrap()
            .header_timeout(Duration::from_secs(10))
            .unwrap(),
    );
    let mut c = Client::connect(server.local_addr());
    let t0 = sylvan::time::now();
    c.send(b"GET / HTTP/1.1\r\nHo");
    let r = c.response();
    assert_eq!(r.status, 408);
    let waited = sylvan::time::now() - t0;
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "{waited:?}"
    );
    assert!(c.closed());
    sylvan::time::resume();
}

fn start_with(server: Server) -> sylvan::http::RunningServer {
    echo_server(server)
}

#[test]
fn slow_but_steady_header_still_times_out() {
    sylvan::time::pause();
    let server = start_with(
        Server::bind("127.0.0.1:0")
            .unwrap()
            .header_timeout(Duration::from_secs(5))
            .unwrap(),
    );
    let mut c = Client::connect(server.local_addr());
    let t0 = sylvan::time::now();
    // One byte a second keeps every read short, but the total is bounded.
    let mut got = None;
    for b in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n" {
        sylvan::sleep(Duration::from_secs(1)).unwrap();
        if c.stream.write_all(&[*b]).is_err() {
            break;
        }
        let mut peek = [0u8; 1];
        if sylvan::timeout(Duration::from_millis(1), || c.stream.peek(&mut peek)).is_ok() {
            got = Some(c.response());
            break;
        }
    }
    let r = got.unwrap_or_else(|| c.response());
    assert_eq!(r.status, 408);
    assert!(sylvan::time::now() - t0 < Duration::from_secs(8));
    sylvan::time::resume();
}

#[test]
fn idle_keep_alive_connection_closes_silently() {
    sylvan::time::pause();
    let server = start_with(
        Server::bind("127.0.0.1:0")
            .unwrap()
            .keep_alive_timeout(Duration::from_secs(30))
            .unwrap()
            .header_timeout(Duration::from_secs(5))
            .unwrap(),
    );
    let mut c = Client::connect(server.local_addr());
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response().status, 200);
    let t0 = sylvan::time::now();
    // Idle: longer than the header timeout is fine...
    sylvan::sleep(Duration::from_secs(20)).unwrap();
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response().status, 200);
    // ...but past the keep-alive timeout the server closes, sending nothing.
    let t1 = sylvan::time::now();
    assert!(c.closed());
    let idle = sylvan::time::now() - t1;
    assert!(
        idle >= Duration::from_secs(30) && idle < Duration::from_secs(31),
        "{idle:?}"
    );
    assert!(t1 - t0 >= Duration::from_secs(20));
    sylvan::time::resume();
}

#[test]
fn per_io_timeout_fails_a_stalled_body_read() {
    sylvan::time::pause();
    let errors = Rc::new(RefCell::new(Vec::new()));
    let e2 = errors.clone();
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .io_timeout(Some(Duration::from_secs(3)))
        .serve(move |mut req| {
            let mut body = Vec::new();
            match req.read_to_end(&mut body) {
                Ok(_) => Response::text("ok"),
                Err(e) => {
                    e2.borrow_mut().push(e.kind());
                    Response::status_page(400)
                }
            }
        });
    let mut c = Client::connect(server.local_addr());
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    let t0 = sylvan::time::now();
    let r = c.response();
    assert_eq!(r.status, 400);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(*errors.borrow(), vec![std::io::ErrorKind::TimedOut]);
    let waited = sylvan::time::now() - t0;
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    sylvan::time::resume();
}

#[test]
fn handler_panic_is_a_500_for_that_request_only() {
    let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| {
        if req.path() == "/panic" {
            panic!("handler bug");
        }
        Response::text("fine")
    });
    let addr = server.local_addr();
    let mut other = Client::connect(addr);
    other.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(other.response().status, 200);
    let mut c = Client::connect(addr);
    c.send(b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 500);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed());
    // The other connection and new ones are unaffected.
    other.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(other.response().text(), "fine");
    assert_eq!(
        roundtrip(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status,
        200
    );
}

#[test]
fn graceful_stop_closes_idle_finishes_in_flight_then_kills() {
    let started = Queue::unbounded();
    let release = Queue::<()>::unbounded();
    let (s2, r2) = (started.clone(), release.clone());
    let server = Server::bind("127.0.0.1:0").unwrap().serve(move |req| {
        match req.path() {
            "/slow" => {
                s2.put(()).unwrap();
                let _ = r2.get();
            }
            "/stuck" => {
                s2.put(()).unwrap();
                let _ = sylvan::sleep(Duration::from_secs(3600));
            }
            _ => {}
        }
        Response::text("done")
    });
    let addr = server.local_addr();
    let mut idle = Client::connect(addr);
    idle.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(idle.response().status, 200);
    let mut slow = Client::connect(addr);
    slow.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut stuck = Client::connect(addr);
    stuck.send(b"GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n");
    started.get().unwrap();
    started.get().unwrap();

    let stopper = sylvan::spawn(move || server.stop(Duration::from_secs(2)));
    // The idle keep-alive connection is closed at once.
    assert!(idle.closed());
    // The listener closes as soon as the stopper has ended the accept loop.
    let refused = (0..1000).any(|_| {
        let r = sylvan::connect(addr).is_err();
        sylvan::yield_now();
        r
    });
    assert!(refused, "still accepting");
    // The in-flight request finishes, told to close.
    release.put(()).unwrap();
    let r = slow.response();
    assert_eq!(r.text(), "done");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(slow.closed());
    // The stuck one is killed at the deadline.
    let report = stopper.join().unwrap();
    assert_eq!(report.killed, 1);
    assert_eq!(report.finished, 2);
    // Killed, its handler's blocking call failed; whatever it sent, the
    // connection then closed.
    stuck.read_to_end().unwrap();
}

#[test]
fn max_connections_queues_in_the_backlog() {
    let gate = Queue::<()>::unbounded();
    let g2 = gate.clone();
    let in_handler = Rc::new(Cell::new(0));
    let ih = in_handler.clone();
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .max_connections(2)
        .unwrap()
        .serve(move |_| {
            ih.set(ih.get() + 1);
            let _ = g2.get();
            Response::text("ok").header("Connection", "close")
        });
    let addr = server.local_addr();
    let mut clients: Vec<Client> = (0..5).map(|_| Client::connect(addr)).collect();
    for c in &mut clients {
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    while in_handler.get() < 2 {
        sylvan::yield_now();
    }
    for _ in 0..10 {
        sylvan::yield_now();
    }
    assert_eq!(server.active(), 2);
    assert_eq!(in_handler.get(), 2);
    for _ in 0..5 {
        gate.put(()).unwrap();
    }
    for c in &mut clients {
        assert_eq!(c.response().status, 200);
    }
}

#[test]
fn upgrade_hands_over_the_connection_with_early_bytes() {
    let server = Server::bind("127.0.0.1:0").unwrap().serve(|_| {
        Response::new(101)
            .header("Upgrade", "shout")
            .on_upgrade(|mut up| {
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = up.read(&mut buf) {
                    let loud = buf[..n].to_ascii_uppercase();
                    if up.write_all(&loud).is_err() {
                        break;
                    }
                }
            })
    });
    let mut c = Client::connect(server.local_addr());
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: shout\r\n\r\nearly ");
    let r = c.response_to(true).unwrap();
    assert_eq!(r.status, 101);
    assert_eq!(r.header("connection"), Some("Upgrade"));
    c.send(b"late");
    let mut got = Vec::new();
    while got.len() < 10 {
        let more = c.read_some().unwrap();
        assert!(!more.is_empty());
        got.extend_from_slice(&more);
    }
    assert_eq!(got, b"EARLY LATE");
}

#[test]
fn response_header_injection_is_neutralised() {
    let server = Server::bind("127.0.0.1:0").unwrap().serve(|_| {
        Response::text("x")
            .header("X-Evil", "a\r\nSet-Cookie: pwned=1")
            .header("Bad Name", "dropped")
    });
    let r = roundtrip(server.local_addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.header("x-evil"), Some("a  Set-Cookie: pwned=1"));
    assert_eq!(r.header("set-cookie"), None);
    assert!(!r.head.contains("Bad Name"));
}

/// Issue item 15: a size setting that would overflow the connection's
/// arithmetic (the read buffer is their sum; head offsets are `u32`) is
/// refused when the server is built, naming the setting.
#[test]
fn size_settings_out_of_range_are_refused_when_the_server_is_built() {
    type Setter = fn(Server, usize) -> std::io::Result<Server>;
    let setters: [(&str, Setter); 2] = [
        ("max_request_line", Server::max_request_line),
        ("max_header_size", Server::max_header_size),
    ];
    for (name, set) in setters {
        for bytes in [
            usize::MAX,
            u32::MAX as usize + 1,
            u32::MAX as usize,
            (1 << 30) + 1,
        ] {
            let e = set(Server::bind("127.0.0.1:0").unwrap(), bytes).unwrap_err();
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::InvalidInput,
                "{name}({bytes})"
            );
            assert!(e.to_string().contains(name), "{e}");
            assert!(e.to_string().contains(&bytes.to_string()), "{e}");
        }
    }
}

/// Issue item 15: the largest values the size settings accept — 1 GiB
/// heads, `usize::MAX` (or past `u32::MAX`) fields, a `u64::MAX` body, and
/// `usize::MAX` connections — serve requests (they overflowed, failed a
/// capacity check or aborted on a 128 GiB allocation before).
#[test]
fn the_largest_size_settings_serve_requests() {
    for max_headers in [usize::MAX, u32::MAX as usize + 1] {
        let server = echo_server(
            Server::bind("127.0.0.1:0")
                .unwrap()
                .max_request_line(1 << 30)
                .unwrap()
                .max_header_size(1 << 30)
                .unwrap()
                .max_headers(max_headers)
                .unwrap()
                .max_body_size(u64::MAX)
                .max_connections(usize::MAX)
                .unwrap(),
        );
        let fields: String = (0..300).map(|i| format!("X-{i}: {i}\r\n")).collect();
        let mut c = Client::connect(server.local_addr());
        c.send(format!("GET /many HTTP/1.1\r\nHost: x\r\n{fields}\r\n").as_bytes());
        let r = c.response();
        assert_eq!((r.status, r.text()), (200, "GET /many 0 ".to_string()));
        c.send(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
        assert_eq!(c.response().text(), "POST /c 3 abc");
        c.send(b"POST /l HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
        assert_eq!(c.response().text(), "POST /l 2 hi");
        server.stop(Duration::from_secs(1));
    }
}

/// `Duration::MAX` timeouts serve requests, and the error path that
/// lingers too (the header deadline overflowed `Instant` before).
#[test]
fn the_longest_timeouts_serve_requests() {
    let server = echo_server(
        Server::bind("127.0.0.1:0")
            .unwrap()
            .header_timeout(Duration::MAX)
            .unwrap()
            .keep_alive_timeout(Duration::MAX)
            .unwrap()
            .io_timeout(Some(Duration::MAX))
            .linger(Duration::MAX),
    );
    let mut c = Client::connect(server.local_addr());
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
    assert_eq!(c.response().text(), "POST / 2 hi");
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nX: \x01\r\n\r\n");
    assert_eq!(c.response().status, 400);
    drop(c); // ends the server's linger
    let report = server.stop(Duration::from_secs(60));
    assert_eq!((report.finished, report.killed), (1, 0));
}
