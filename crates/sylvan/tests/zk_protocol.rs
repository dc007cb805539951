//! The ZooKeeper client against fake servers: bad input (wrong port, not
//! ZooKeeper, garbage and oversized replies, silence) gives clear errors,
//! never a panic or a hang; in-flight requests fail on connection loss;
//! pings keep an idle session alive; server-side and client-side (4/3 of
//! the session timeout) expiry make the session `Lost`.
//!
//! No JVM needed: each fake server is a few lines of green code.
#![cfg(feature = "zookeeper")]

use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use sylvan::net::{TcpListener, TcpStream};
use sylvan::resilience::SessionState;
use sylvan::sync::{Queue, WatchReceiver};
use sylvan::zk::{Client, Error};

fn read_frame(s: &TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0; 4];
    (&*s).read_exact(&mut len)?;
    let mut buf = vec![0; i32::from_be_bytes(len) as usize];
    (&*s).read_exact(&mut buf)?;
    Ok(buf)
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// A ConnectResponse frame.
fn connect_response(timeout_ms: i32, session: i64) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&timeout_ms.to_be_bytes());
    b.extend_from_slice(&session.to_be_bytes());
    b.extend_from_slice(&16i32.to_be_bytes());
    b.extend_from_slice(&[7; 16]);
    b.push(0);
    frame(&b)
}

/// A reply header (+ body) frame.
fn reply(xid: i32, zxid: i64, err: i32, body: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&xid.to_be_bytes());
    b.extend_from_slice(&zxid.to_be_bytes());
    b.extend_from_slice(&err.to_be_bytes());
    b.extend_from_slice(body);
    frame(&b)
}

/// The (xid, opcode) of a request frame.
fn header(req: &[u8]) -> (i32, i32) {
    (
        i32::from_be_bytes(req[0..4].try_into().unwrap()),
        i32::from_be_bytes(req[4..8].try_into().unwrap()),
    )
}

/// Serves every accepted connection with `f(connection number, stream)`.
fn fake(f: impl Fn(usize, TcpStream) + 'static) -> (String, sylvan::GreenThread<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let f = Rc::new(f);
    let t = sylvan::spawn(move || {
        let mut n = 0;
        while let Ok((s, _)) = l.accept() {
            let f = f.clone();
            sylvan::spawn(move || f(n, s));
            n += 1;
        }
    });
    (addr, t)
}

/// The next item, or a test failure after 10 s (never a hang).
fn next<T: 'static>(q: &Queue<T>) -> T {
    sylvan::timeout(Duration::from_secs(10), || q.get())
        .expect("nothing arrived within 10 s")
        .unwrap()
}

/// The next session state, or a test failure after `limit` (never a
/// hang). A watch holds the latest state: this is the state after the
/// next change.
fn next_state(rx: &mut WatchReceiver<Option<SessionState>>, limit: Duration) -> SessionState {
    sylvan::timeout(limit, || rx.changed())
        .unwrap_or_else(|_| panic!("no state change within {limit:?}"))
        .unwrap();
    rx.borrow_and_update().expect("a state")
}

fn connect_err(hosts: &str) -> (String, Duration) {
    connect_err_within(hosts, Duration::from_millis(1500))
}

fn connect_err_within(hosts: &str, wait: Duration) -> (String, Duration) {
    let t0 = Instant::now();
    let err = Client::builder(hosts)
        .session_timeout(Duration::from_secs(2))
        .connect_timeout(wait)
        .reconnect_pause(Duration::from_millis(50))
        .connect()
        .unwrap_err();
    assert!(matches!(err, Error::Connect(_)), "{err:?}");
    (err.to_string(), t0.elapsed())
}

#[test]
fn wrong_port_is_a_clear_error_within_the_connect_timeout() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (msg, took) = connect_err(&format!("127.0.0.1:{port}"));
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn an_http_server_is_not_zookeeper() {
    let (addr, _srv) = fake(|_, s| {
        let mut buf = [0; 256];
        let _ = (&s).read(&mut buf);
        let _ = (&s).write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    });
    let (msg, took) = connect_err(&addr);
    assert!(msg.contains("not a ZooKeeper server"), "{msg}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn an_echo_server_is_not_zookeeper() {
    let (addr, _srv) = fake(|_, s| {
        let mut buf = [0; 1024];
        while let Ok(n) = (&s).read(&mut buf) {
            if n == 0 || (&s).write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let (msg, _) = connect_err(&addr);
    assert!(msg.contains("protocol error"), "{msg}");
}

#[test]
fn a_silent_server_times_out_per_attempt() {
    let (addr, _srv) = fake(|_, s| {
        let _ = read_frame(&s);
        let _ = sylvan::sleep(Duration::from_secs(60));
    });
    let (msg, took) = connect_err(&addr);
    assert!(msg.contains("no handshake reply yet"), "{msg}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn garbage_in_a_handshake_never_panics() {
    for junk in [
        vec![0xff, 0xff, 0xff, 0xff],
        vec![0x7f, 0, 0, 0, 1, 2, 3],
        frame(&[1, 2, 3]),
        frame(&[0; 64]),
        connect_response(4000, 1)[..20].to_vec(),
    ] {
        let junk = Rc::new(junk);
        let j = junk.clone();
        let (addr, _srv) = fake(move |_, s| {
            let _ = read_frame(&s);
            let _ = (&s).write_all(&j);
        });
        let (msg, _) = connect_err_within(&addr, Duration::from_millis(400));
        assert!(msg.contains("zookeeper"), "{junk:?}: {msg}");
    }
}

/// A fake that completes the handshake and answers each request with
/// `answer(xid, opcode)`; `None` closes the connection.
fn handshaking(
    timeout_ms: i32,
    answer: impl Fn(usize, i32, i32) -> Option<Vec<u8>> + 'static,
) -> (String, sylvan::GreenThread<()>) {
    let answer = Rc::new(answer);
    fake(move |n, s| {
        if read_frame(&s).is_err() {
            return;
        }
        if (&s)
            .write_all(&connect_response(timeout_ms, 0x5e55))
            .is_err()
        {
            return;
        }
        while let Ok(req) = read_frame(&s) {
            let (xid, op) = header(&req);
            if op == 11 {
                let _ = (&s).write_all(&reply(-2, 0, 0, &[]));
                continue;
            }
            match answer(n, xid, op) {
                Some(bytes) => {
                    if (&s).write_all(&bytes).is_err() {
                        return;
                    }
                }
                None => return,
            }
        }
    })
}

fn client(addr: &str) -> Client {
    Client::builder(addr)
        .session_timeout(Duration::from_secs(2))
        .reconnect_pause(Duration::from_millis(20))
        .connect()
        .unwrap()
}

#[test]
fn malformed_and_oversized_replies_drop_the_connection_not_the_process() {
    for bad in [
        reply(999, 1, 0, &[]),                     // xid out of order
        frame(&[0, 0]),                            // truncated header
        vec![0x10, 0, 0, 0],                       // 256 MiB length
        reply(1, 1, 0, &[0x7f, 0xff, 0xff, 0xff]), // children count absurd
    ] {
        let bad = Rc::new(bad);
        let b = bad.clone();
        let (addr, _srv) = handshaking(2000, move |_, _, _| Some((*b).clone()));
        let zk = client(&addr);
        let t0 = Instant::now();
        let err = zk.get_children("/").unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(2), "{bad:?}");
        assert!(
            matches!(err, Error::ConnectionLoss(_) | Error::Protocol(_)),
            "{bad:?}: {err:?}"
        );
    }
}

#[test]
fn requests_in_flight_fail_with_connection_loss_when_the_server_goes() {
    // The first connection takes requests and dies without answering.
    let (addr, _srv) = handshaking(2000, |n, xid, _| {
        if n == 0 {
            None
        } else {
            Some(reply(xid, 5, -101, &[])) // NoNode
        }
    });
    let zk = client(&addr);
    let mut states = zk.states();
    let outcomes = Queue::unbounded();
    for i in 0..5 {
        let (zk, q) = (zk.clone(), outcomes.clone());
        sylvan::spawn(move || {
            let _ = q.put((i, zk.get_data("/x")));
        });
    }
    for _ in 0..5 {
        let (_, r) = next(&outcomes);
        let e = r.unwrap_err();
        assert!(e.is_connection_loss(), "{e:?}");
        assert!(e.to_string().contains("connection lost"), "{e}");
    }
    assert_eq!(
        next_state(&mut states, Duration::from_secs(10)),
        SessionState::Suspended
    );
    // The session comes back on the next connection; requests work again.
    assert_eq!(
        next_state(&mut states, Duration::from_secs(10)),
        SessionState::Reconnected
    );
    assert!(zk.get_data("/x").unwrap_err().is_no_node());
}

#[test]
fn pings_keep_an_idle_session_alive() {
    let pings = Rc::new(std::cell::Cell::new(0));
    let p = pings.clone();
    let (addr, _srv) = fake(move |_, s| {
        if read_frame(&s).is_err() {
            return;
        }
        let _ = (&s).write_all(&connect_response(600, 1));
        while let Ok(req) = read_frame(&s) {
            if header(&req).1 == 11 {
                p.set(p.get() + 1);
                let _ = (&s).write_all(&reply(-2, 0, 0, &[]));
            }
        }
    });
    let zk = client(&addr);
    let states = zk.states();
    // Read timeout 400 ms, so a ping every 200 ms of idleness.
    sylvan::sleep(Duration::from_millis(1500)).unwrap();
    assert!(pings.get() >= 4, "only {} pings", pings.get());
    assert!(!states.has_changed(), "the session was disturbed");
    assert_eq!(zk.state(), Some(SessionState::Connected));
}

#[test]
fn a_server_side_expiry_makes_the_session_lost_then_a_new_one_connected() {
    // Connection 0: a session, then the server goes away. Connection 1:
    // "session expired" (timeout 0). Connection 2: a new session.
    let asked = Rc::new(std::cell::RefCell::new(Vec::new()));
    let a = asked.clone();
    let (addr, _srv) = fake(move |n, s| {
        let Ok(req) = read_frame(&s) else { return };
        a.borrow_mut()
            .push(i64::from_be_bytes(req[16..24].try_into().unwrap()));
        let resp = match n {
            0 => connect_response(2000, 0xaaa),
            1 => connect_response(0, 0),
            _ => connect_response(2000, 0xbbb),
        };
        let _ = (&s).write_all(&resp);
        if n == 0 {
            return; // drop the connection
        }
        while let Ok(req) = read_frame(&s) {
            if header(&req).1 == 11 {
                let _ = (&s).write_all(&reply(-2, 0, 0, &[]));
            }
        }
    });
    let zk = Client::builder(&addr)
        .session_timeout(Duration::from_secs(2))
        .reconnect_pause(Duration::from_millis(20))
        .connect()
        .unwrap();
    let mut states = zk.states();
    assert_eq!(zk.session_id(), Some(0xaaa));
    let got: Vec<_> = (0..3)
        .map(|_| next_state(&mut states, Duration::from_secs(10)))
        .collect();
    assert_eq!(
        got,
        [
            SessionState::Suspended,
            SessionState::Lost,
            SessionState::Connected
        ]
    );
    assert_eq!(zk.session_id(), Some(0xbbb));
    // The reconnect named the old session; after "expired", a new one.
    assert_eq!(asked.borrow()[..3], [0, 0xaaa, 0]);
}

#[test]
fn client_side_expiry_at_four_thirds_of_the_session_timeout() {
    // One session of 600 ms; then the server says nothing and refuses
    // nothing — it just never answers again.
    let (addr, srv) = fake(|n, s| {
        let _ = read_frame(&s);
        if n == 0 {
            let _ = (&s).write_all(&connect_response(600, 0xccc));
        }
        let _ = sylvan::sleep(Duration::from_secs(60));
    });
    let zk = Client::builder(&addr)
        .session_timeout(Duration::from_millis(600))
        .reconnect_pause(Duration::from_millis(20))
        .connect()
        .unwrap();
    let t0 = Instant::now();
    let mut states = zk.states();
    assert_eq!(
        next_state(&mut states, Duration::from_secs(10)),
        SessionState::Suspended
    );
    let suspended = t0.elapsed();
    assert_eq!(
        next_state(&mut states, Duration::from_secs(10)),
        SessionState::Lost
    );
    let lost = t0.elapsed();
    // Read timeout 2/3 × 600 = 400 ms; expiry 4/3 × 600 = 800 ms.
    assert!(suspended >= Duration::from_millis(390), "{suspended:?}");
    assert!(lost >= Duration::from_millis(790), "{lost:?}");
    assert!(lost < Duration::from_millis(2000), "{lost:?}");
    assert_eq!(zk.session_id(), None);
    srv.kill();
}

#[test]
fn plain_data_types_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<sylvan::zk::Member>();
    send_sync::<sylvan::zk::Stat>();
    send_sync::<sylvan::zk::WatchEvent>();
    send_sync::<sylvan::zk::ZkUrl>();
    send_sync::<sylvan::zk::Error>();
    send_sync::<sylvan::zk::Acl>();
    // `Client`, `Registration` and `Discovery` belong to their hub (like
    // `Queue`); `Discovery::subscribe` is the way across threads.
}
