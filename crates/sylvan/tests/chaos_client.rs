//! A reconnecting, retrying client doing idempotent request/response through
//! `ChaosProxy` under each toxic, and across server restarts: every request
//! either completes with its own reply or fails with a clear error within
//! its deadline; none is lost, none answered with another's reply, and the
//! server never sees a request more often than the client sent it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use sylvan::chaos::{ChaosProxy, Direction, Toxic};
use sylvan::net::ServerHandle;
use sylvan::resilience::{Backoff, Jitter, Reconnecting, Retry};

const DEADLINE: Duration = Duration::from_secs(1);
const SLACK: Duration = Duration::from_millis(1500);

type Receipts = Rc<RefCell<HashMap<u64, u32>>>;

/// "REQ <id>\n" → "OK <id>\n", counting receipts per id.
fn server(listener: sylvan::net::TcpListener, receipts: Receipts) -> ServerHandle {
    sylvan::serve(listener, move |conn, _| -> io::Result<()> {
        let mut lines = BufReader::new(&conn);
        let mut line = String::new();
        while lines.read_line(&mut line)? > 0 {
            let id: u64 = line
                .trim()
                .strip_prefix("REQ ")
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("bad request {line:?}"))
                })?;
            *receipts.borrow_mut().entry(id).or_default() += 1;
            (&conn).write_all(format!("OK {id}\n").as_bytes())?;
            line.clear();
        }
        Ok(())
    })
}

struct Client {
    conn: Reconnecting<BufReader<sylvan::net::TcpStream>>,
    policy: Retry<io::Error>,
    attempts: HashMap<u64, u32>,
    next_id: u64,
}

impl Client {
    fn new(addr: SocketAddr) -> Client {
        let conn = Reconnecting::builder(move || {
            let s = sylvan::net::Connector::new()
                .connect_timeout(Duration::from_millis(300))
                .connect(addr)?;
            s.set_read_timeout(Some(Duration::from_millis(250)))?;
            s.set_write_timeout(Some(Duration::from_millis(250)))?;
            Ok(BufReader::new(s))
        })
        .backoff(
            Backoff::new()
                .initial(Duration::from_millis(10))
                .max(Duration::from_millis(100))
                .jitter(Jitter::Full)
                .unwrap(),
        )
        .min_connect_timeout(Duration::from_millis(500))
        .first_reconnect_jitter(false)
        .wait_for_ready(true)
        .build();
        let policy = Retry::new()
            .max_attempts(100)
            .unwrap()
            .deadline(DEADLINE)
            .backoff(
                Backoff::new()
                    .initial(Duration::from_millis(10))
                    .max(Duration::from_millis(50)),
            )
            .idempotent(true);
        Client {
            conn,
            policy,
            attempts: HashMap::new(),
            next_id: 0,
        }
    }

    /// One request; returns its id and whether it succeeded.
    fn request(&mut self) -> (u64, io::Result<()>) {
        self.next_id += 1;
        let id = self.next_id;
        let attempts = &mut self.attempts;
        let conn = &self.conn;
        let t0 = Instant::now();
        let r = self.policy.run(|attempt| {
            conn.call(|c| {
                attempt.mark_sent();
                *attempts.entry(id).or_default() += 1;
                c.get_ref().write_all(format!("REQ {id}\n").as_bytes())?;
                let mut line = String::new();
                if c.read_line(&mut line)? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                // A reply to another request would mean a desynchronised
                // connection: never acceptable.
                assert_eq!(
                    line,
                    format!("OK {id}\n"),
                    "request {id} got someone else's reply"
                );
                Ok(())
            })
            .map_err(io::Error::from)
        });
        let r = r.map_err(io::Error::from);
        if let Err(e) = &r {
            assert!(
                t0.elapsed() <= DEADLINE + SLACK,
                "request {id} failed only after {:?}: {e}",
                t0.elapsed()
            );
            assert!(!e.to_string().is_empty());
        }
        (id, r)
    }
}

fn check(client: &Client, receipts: &Receipts, results: &[(u64, io::Result<()>)]) {
    let receipts = receipts.borrow();
    for (id, r) in results {
        let got = receipts.get(id).copied().unwrap_or(0);
        let sent = client.attempts.get(id).copied().unwrap_or(0);
        assert!(
            got <= sent,
            "request {id}: server saw it {got} times, client sent it {sent} times"
        );
        if r.is_ok() {
            assert!(
                got >= 1,
                "request {id} succeeded but the server never saw it"
            );
        }
    }
}

#[test]
fn request_response_under_every_toxic() {
    let listener = sylvan::listen("127.0.0.1:0").unwrap();
    let receipts: Receipts = Rc::default();
    let _server = server(listener, receipts.clone());
    let upstream = _server.local_addr().unwrap();
    let proxy = ChaosProxy::builder("chaos-client")
        .seed(7)
        .start("127.0.0.1:0", upstream)
        .unwrap();
    let toxics: Vec<(Toxic, Direction, f32)> = vec![
        (
            Toxic::Latency {
                latency: Duration::from_millis(20),
                jitter: Duration::from_millis(10),
            },
            Direction::Downstream,
            1.0,
        ),
        (
            Toxic::Bandwidth { rate_kb_per_s: 50 },
            Direction::Upstream,
            1.0,
        ),
        (
            Toxic::SlowClose {
                delay: Duration::from_millis(100),
            },
            Direction::Downstream,
            1.0,
        ),
        (
            Toxic::Slicer {
                average_size: 2,
                size_variation: 1,
                delay: Duration::from_millis(1),
            },
            Direction::Downstream,
            1.0,
        ),
        (
            Toxic::Timeout {
                timeout: Duration::from_millis(200),
            },
            Direction::Upstream,
            0.5,
        ),
        (
            Toxic::ResetPeer {
                timeout: Duration::ZERO,
            },
            Direction::Downstream,
            0.5,
        ),
        (Toxic::LimitData { bytes: 30 }, Direction::Downstream, 1.0),
        (Toxic::HalfOpen, Direction::Downstream, 0.5),
    ];
    let mut client = Client::new(proxy.local_addr());
    for (toxic, dir, toxicity) in toxics {
        let name = toxic.type_name();
        proxy.add_toxic(name, toxic, dir, toxicity).unwrap();
        let results: Vec<_> = (0..8).map(|_| client.request()).collect();
        check(&client, &receipts, &results);
        // Not every request may fail under a toxic that hits only half of the
        // connections, and a benign toxic must not break any.
        let ok = results.iter().filter(|(_, r)| r.is_ok()).count();
        if toxicity < 1.0 || name == "latency" || name == "bandwidth" || name == "slicer" {
            assert!(ok > 0, "{name}: no request got through");
        }
        proxy.remove_toxic(name).unwrap();
    }
    // The proxy going down and up.
    proxy.set_enabled(false).unwrap();
    let (id, r) = client.request();
    assert!(
        r.is_err(),
        "request {id} succeeded through a disabled proxy"
    );
    proxy.set_enabled(true).unwrap();
    let results: Vec<_> = (0..5).map(|_| client.request()).collect();
    assert!(
        results.iter().all(|(_, r)| r.is_ok()),
        "the proxy came back"
    );
    check(&client, &receipts, &results);
    client.conn.shutdown();
}

#[test]
fn request_response_across_server_restarts() {
    let listener = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let receipts: Receipts = Rc::default();
    let mut srv = server(listener, receipts.clone());
    let mut client = Client::new(addr);
    let mut results = Vec::new();
    for _ in 0..3 {
        for _ in 0..10 {
            results.push(client.request());
        }
        srv.stop(Duration::ZERO);
        results.push(client.request()); // fails or waits for the restart
        srv = server(sylvan::listen(addr).unwrap(), receipts.clone());
    }
    for _ in 0..10 {
        results.push(client.request());
    }
    check(&client, &receipts, &results);
    let ok = results.iter().filter(|(_, r)| r.is_ok()).count();
    assert!(
        ok >= 40,
        "only {ok} of {} requests succeeded across restarts",
        results.len()
    );
    client.conn.shutdown();
    srv.stop(Duration::ZERO);
}
