//! WebSocket sessions: Python's `websocket-client` against the server, and
//! raw-socket tests of pings, idle timeout, size limit, close handshake and
//! broadcasting (timeouts on virtual time).

mod http_util;
mod util;

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::process::Command;
use std::rc::Rc;
use std::time::Duration;

use http_util::{Client, run, stderr, stdout};
use sylvan::http::{RunningServer, Server};
use sylvan::sync::Queue;
use sylvan::websocket::{self, CloseCode, Error, Message, Options};

fn echo_server(opts: Options) -> RunningServer {
    Server::bind("127.0.0.1:0").unwrap().serve(move |req| {
        opts.accept(&req, |ws| {
            while let Ok(m) = ws.recv() {
                if ws.send(m).is_err() {
                    break;
                }
            }
        })
    })
}

const PY_ECHO: &str = r#"
import sys, websocket
ws = websocket.create_connection("ws://" + sys.argv[1] + "/echo", timeout=20, subprotocols=["other", "chat"])
assert ws.getsubprotocol() == "chat", ws.getsubprotocol()
ws.send("hello")
assert ws.recv() == "hello"
ws.send_binary(b"\x00\x01\x02")
op, data = ws.recv_data()
assert op == websocket.ABNF.OPCODE_BINARY and data == b"\x00\x01\x02", (op, data)
big = "x" * 200000
ws.send(big)
assert ws.recv() == big
ws.ping("are you there")
op, data = ws.recv_data(control_frame=True)
assert op == websocket.ABNF.OPCODE_PONG and data == b"are you there", (op, data)
ws.send("after ping")
assert ws.recv() == "after ping"
ws.close(status=1000)
print("ok")
"#;

#[test]
fn python_websocket_client_echo() {
    require_websocket_client();
    // The script sends a 200 kB message: over the 64 KiB default.
    let server = echo_server(
        Options::new()
            .protocols(["chat"])
            .max_message_size(1 << 20)
            .max_frame_size(1 << 20),
    );
    let out = run(Command::new("python3").args(["-c", PY_ECHO, &server.local_addr().to_string()]));
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out).trim(), "ok");
    let report = server.stop(Duration::from_secs(5));
    assert_eq!(report.killed, 0);
}

const PY_SERVER_CLOSES: &str = r#"
import sys, websocket
ws = websocket.create_connection("ws://" + sys.argv[1] + "/", timeout=20)
assert ws.recv() == "bye"
op, frame = ws.recv_data(control_frame=True)
assert op == websocket.ABNF.OPCODE_CLOSE, op
code = int.from_bytes(frame[:2], "big")
assert code == 1001 and frame[2:] == b"going", frame
ws.send_close(1000)
print("ok")
"#;

#[test]
fn python_client_sees_server_initiated_close() {
    require_websocket_client();
    let result = Rc::new(RefCell::new(None));
    let r2 = result.clone();
    let server = Server::bind("127.0.0.1:0").unwrap().serve(move |req| {
        let r2 = r2.clone();
        websocket::accept(&req, move |ws| {
            ws.send("bye").unwrap();
            let frame = websocket::CloseFrame {
                code: CloseCode::Away,
                reason: "going".into(),
            };
            *r2.borrow_mut() = Some(ws.close(Some(frame)).map_err(|e| e.to_string()));
        })
    });
    let out = run(Command::new("python3").args([
        "-c",
        PY_SERVER_CLOSES,
        &server.local_addr().to_string(),
    ]));
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    while result.borrow().is_none() {
        sylvan::sleep(Duration::from_millis(5)).unwrap();
    }
    assert_eq!(result.borrow_mut().take(), Some(Ok(())));
}

/// A minimal WebSocket client over a green socket.
struct Ws {
    c: Client,
    pending: Vec<u8>,
}

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

impl Ws {
    fn connect(addr: SocketAddr) -> Ws {
        Ws::connect_with(addr, b"")
    }

    fn connect_with(addr: SocketAddr, early: &[u8]) -> Ws {
        let mut c = Client::connect(addr);
        let mut req = format!(
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .into_bytes();
        req.extend_from_slice(early);
        c.send(&req);
        let r = c.response_to(true).unwrap();
        assert_eq!(r.status, 101, "{}", r.head);
        assert_eq!(
            r.header("sec-websocket-accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        Ws {
            c,
            pending: Vec::new(),
        }
    }

    fn send(&mut self, opcode: u8, payload: &[u8]) {
        self.c.send(&frame(opcode, payload));
    }

    fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.pending.len() < n {
            let more = self.c.read_some()?;
            if more.is_empty() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.pending.extend_from_slice(&more);
        }
        Ok(self.pending.drain(..n).collect())
    }

    /// Reads one frame: (opcode, payload).
    fn recv(&mut self) -> io::Result<(u8, Vec<u8>)> {
        let h = self.take(2)?;
        let mut len = u64::from(h[1] & 0x7f);
        if len == 126 {
            let b = self.take(2)?;
            len = u64::from(u16::from_be_bytes([b[0], b[1]]));
        } else if len == 127 {
            let b = self.take(8)?;
            len = u64::from_be_bytes(b.try_into().unwrap());
        }
        assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
        Ok((h[0] & 0x0f, self.take(len as usize)?))
    }
}

fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11u8, 0x22, 0x33, 0x44];
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n < 65536 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

fn close_code(payload: &[u8]) -> u16 {
    u16::from_be_bytes([payload[0], payload[1]])
}

#[test]
fn pings_keep_a_live_peer_and_idle_timeout_drops_a_dead_one() {
    sylvan::time::pause();
    let errors = Queue::unbounded();
    let e2 = errors.clone();
    let opts = Options::new()
        .ping_interval(Some(Duration::from_secs(10)))
        .idle_timeout(Some(Duration::from_secs(25)));
    let server = Server::bind("127.0.0.1:0").unwrap().serve(move |req| {
        let e2 = e2.clone();
        opts.accept(&req, move |ws| {
            let err = ws.recv().unwrap_err();
            let kind = match &err {
                Error::Io(e) => Some(e.kind()),
                _ => None,
            };
            e2.put(kind).unwrap();
        })
    });
    let mut ws = Ws::connect(server.local_addr());
    let t0 = sylvan::time::now();
    // First ping after 10 s of silence; answer it.
    let (op, _) = ws.recv().unwrap();
    assert_eq!(op, 0x9);
    let t1 = sylvan::time::now() - t0;
    assert!(
        t1 >= Duration::from_secs(10) && t1 < Duration::from_secs(11),
        "{t1:?}"
    );
    ws.send(0xA, b"");
    // Next ping 10 s after the pong; now play dead.
    let (op, _) = ws.recv().unwrap();
    assert_eq!(op, 0x9);
    let t2 = sylvan::time::now() - t0;
    assert!(
        t2 >= Duration::from_secs(20) && t2 < Duration::from_secs(21),
        "{t2:?}"
    );
    let (op, _) = ws.recv().unwrap();
    assert_eq!(op, 0x9);
    // 25 s after the last pong: closed with 1001, recv failed with TimedOut.
    let (op, payload) = ws.recv().unwrap();
    assert_eq!(op, 0x8);
    assert_eq!(close_code(&payload), 1001);
    let t3 = sylvan::time::now() - t0;
    assert!(
        t3 >= Duration::from_secs(35) && t3 < Duration::from_secs(36),
        "{t3:?}"
    );
    assert_eq!(errors.get().unwrap(), Some(io::ErrorKind::TimedOut));
    sylvan::time::resume();
}

#[test]
fn oversized_message_closes_with_1009() {
    let errors = Queue::unbounded();
    let e2 = errors.clone();
    let opts = Options::new().max_message_size(1000);
    let server = Server::bind("127.0.0.1:0").unwrap().serve(move |req| {
        let e2 = e2.clone();
        opts.accept(&req, move |ws| {
            let ok = ws.recv().unwrap();
            assert_eq!(ok, Message::text("small"));
            e2.put(matches!(ws.recv(), Err(Error::TooLarge(_))))
                .unwrap();
        })
    });
    let mut ws = Ws::connect(server.local_addr());
    ws.send(0x1, b"small");
    ws.send(0x1, &[b'a'; 2000]);
    let (op, payload) = ws.recv().unwrap();
    assert_eq!(op, 0x8);
    assert_eq!(close_code(&payload), 1009);
    assert!(errors.get().unwrap());
}

#[test]
fn client_initiated_close_handshake() {
    let seen = Queue::unbounded();
    let s2 = seen.clone();
    let server = Server::bind("127.0.0.1:0").unwrap().serve(move |req| {
        let s2 = s2.clone();
        websocket::accept(&req, move |ws| match ws.recv() {
            Err(Error::Closed(Some(f))) => {
                s2.put((u16::from(f.code), f.reason.to_string())).unwrap()
            }
            other => panic!("{other:?}"),
        })
    });
    let mut ws = Ws::connect(server.local_addr());
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"done");
    ws.send(0x8, &payload);
    let (op, back) = ws.recv().unwrap();
    assert_eq!(op, 0x8);
    assert_eq!(close_code(&back), 1000);
    assert_eq!(seen.get().unwrap(), (1000, "done".to_string()));
    // Then the server closes the TCP connection.
    assert!(ws.recv().is_err());
}

#[test]
fn frames_sent_with_the_handshake_are_not_lost() {
    let server = echo_server(Options::new());
    let mut ws = Ws::connect_with(server.local_addr(), &frame(0x1, b"early bird"));
    let (op, payload) = ws.recv().unwrap();
    assert_eq!((op, payload.as_slice()), (0x1, &b"early bird"[..]));
}

#[test]
fn one_green_thread_sends_while_another_waits_in_recv() {
    let peers: Rc<RefCell<Vec<websocket::WebSocket>>> = Rc::default();
    let p2 = peers.clone();
    let server = Server::bind("127.0.0.1:0").unwrap().serve(move |req| {
        let peers = p2.clone();
        websocket::accept(&req, move |ws| {
            peers.borrow_mut().push(ws.clone());
            while let Ok(msg) = ws.recv() {
                for other in peers.borrow().iter() {
                    let _ = other.send(msg.clone());
                }
            }
        })
    });
    let addr = server.local_addr();
    let mut a = Ws::connect(addr);
    let mut b = Ws::connect(addr);
    while peers.borrow().len() < 2 {
        sylvan::yield_now();
    }
    a.send(0x1, b"to everyone");
    for ws in [&mut a, &mut b] {
        let (op, payload) = ws.recv().unwrap();
        assert_eq!((op, payload.as_slice()), (0x1, &b"to everyone"[..]));
    }
    let report = server.stop(Duration::from_millis(50));
    assert_eq!(report.killed, 2);
}

#[test]
fn invalid_upgrade_requests_are_refused() {
    let server = echo_server(Options::new());
    let addr = server.local_addr();
    let cases: &[(&str, u16)] = &[
        ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 426),
        (
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
            426,
        ),
        (
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n",
            400,
        ),
    ];
    for (req, status) in cases {
        let r = http_util::roundtrip(addr, req.as_bytes());
        assert_eq!(r.status, *status, "{req}");
    }
}

#[test]
fn recv_obeys_kill_and_scoped_deadlines() {
    let results = Queue::unbounded();
    let r2 = results.clone();
    let server = Server::bind("127.0.0.1:0").unwrap().serve(move |req| {
        let r2 = r2.clone();
        websocket::accept(&req, move |ws| {
            let r = sylvan::timeout(Duration::from_millis(20), || ws.recv());
            r2.put(r.is_err()).unwrap();
            // The session is still usable after a cancelled recv.
            let _ = ws.send("still here");
        })
    });
    let mut ws = Ws::connect(server.local_addr());
    assert!(results.get().unwrap());
    let (op, payload) = ws.recv().unwrap();
    assert_eq!((op, payload.as_slice()), (0x1, &b"still here"[..]));
    // Then the session closure returned: the server closes with 1000.
    let (op, payload) = ws.recv().unwrap();
    assert_eq!((op, close_code(&payload)), (0x8, 1000));
}

/// Issue item 13: with the default options a message over 64 KiB — in one
/// frame, or reassembled from several — closes its session with `1009`
/// and `recv` says `TooLarge`; one of exactly 64 KiB is fine, and the
/// server keeps serving other sessions.
#[test]
fn default_limits_refuse_a_message_over_64_kib_and_the_server_stays_up() {
    let errors = Queue::unbounded();
    let e2 = errors.clone();
    let server = Server::bind("127.0.0.1:0").unwrap().serve(move |req| {
        let e2 = e2.clone();
        websocket::accept(&req, move |ws| {
            let err = loop {
                match ws.recv() {
                    Ok(m) => ws.send(m).unwrap(),
                    Err(e) => break e,
                }
            };
            e2.put(matches!(err, Error::TooLarge(_))).unwrap();
        })
    });
    let addr = server.local_addr();
    const LIMIT: usize = 64 * 1024;

    let mut ws = Ws::connect(addr);
    ws.send(0x2, &vec![7; LIMIT]);
    let (op, back) = ws.recv().unwrap();
    assert_eq!((op, back.len()), (0x2, LIMIT));
    ws.send(0x2, &vec![7; LIMIT + 1]);
    let (op, payload) = ws.recv().unwrap();
    assert_eq!((op, close_code(&payload)), (0x8, 1009));
    assert!(errors.get().unwrap(), "recv failed with TooLarge");

    // Two frames under the limit, a message over it.
    let mut ws = Ws::connect(addr);
    let mut first = frame(0x1, &vec![b'a'; 40 * 1024]);
    first[0] &= 0x7f; // not the final fragment
    ws.c.send(&first);
    ws.send(0x0, &vec![b'b'; 40 * 1024]);
    let (op, payload) = ws.recv().unwrap();
    assert_eq!((op, close_code(&payload)), (0x8, 1009));
    assert!(errors.get().unwrap(), "recv failed with TooLarge");

    let mut ws = Ws::connect(addr);
    ws.send(0x1, b"still up");
    let (op, payload) = ws.recv().unwrap();
    assert_eq!((op, payload.as_slice()), (0x1, &b"still up"[..]));
}

/// Python's websocket-client, the real client these tests drive.
fn require_websocket_client() {
    util::require(
        util::have_program("python3") && util::python_has("websocket"),
        "python3 with the websocket-client package",
        "python3 -m pip install websocket-client",
    );
}
