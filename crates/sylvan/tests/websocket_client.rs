//! The WebSocket client (`websocket::connect`, `ClientBuilder`): against
//! Python's `websockets` server and sylvan's own, over `ws://` and
//! `wss://` (an rcgen certificate); its idle and close timeouts, the size
//! limit, a refused upgrade and a peer that vanishes mid-frame.

#[cfg(feature = "tls")]
mod tls_util;
mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use sylvan::http::{Response, Server, ServerHandle};
use sylvan::sync::Queue;
use sylvan::websocket::{self, ClientBuilder, CloseCode, Error, Message, Options};

fn echo_server(opts: Options) -> ServerHandle {
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

#[test]
fn echo_against_sylvans_server_with_a_subprotocol() {
    let server = echo_server(Options::new().protocols(["v2", "v1"]));
    let ws = ClientBuilder::new()
        .options(Options::new().protocols(["v1"]))
        .connect(&format!("ws://{}/chat?room=1", server.local_addr()))
        .unwrap();
    assert_eq!(ws.protocol(), Some("v1"));
    ws.send("hello").unwrap();
    assert_eq!(ws.recv().unwrap(), Message::text("hello"));
    ws.send(Message::binary(vec![0u8, 1, 2])).unwrap();
    assert_eq!(ws.recv().unwrap(), Message::binary(vec![0u8, 1, 2]));
    ws.close(None).unwrap();
    assert!(ws.is_closed());
}

#[test]
fn a_refused_upgrade_is_a_handshake_error_naming_the_status() {
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .serve(|_req| Response::status_page(404));
    let e = websocket::connect(&format!("ws://{}/", server.local_addr())).unwrap_err();
    assert!(matches!(e, Error::Handshake(_)), "{e:?}");
    assert!(e.to_string().contains("404"), "{e}");
    // An HTTP server that is not a WebSocket endpoint at all.
    let e = websocket::connect(&format!("wss://{}/", server.local_addr())).unwrap_err();
    assert!(e.to_string().contains("tls_config"), "{e}");
}

/// A server whose session never reads: no pongs, no close reply.
fn deaf_server() -> (ServerHandle, Queue<()>) {
    let release: Queue<()> = Queue::unbounded();
    let r = release.clone();
    let server = Server::bind("127.0.0.1:0").unwrap().serve(move |req| {
        let r = r.clone();
        websocket::accept(&req, move |_ws| {
            let _ = r.get();
        })
    });
    (server, release)
}

#[test]
fn idle_timeout_fires_when_the_server_never_answers_pings() {
    let (server, release) = deaf_server();
    let ws = ClientBuilder::new()
        .options(
            Options::new()
                .ping_interval(Some(Duration::from_millis(20)))
                .idle_timeout(Some(Duration::from_millis(150))),
        )
        .connect(&format!("ws://{}/", server.local_addr()))
        .unwrap();
    let e = ws.recv().unwrap_err();
    match e {
        Error::Io(e) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}"),
        other => panic!("expected TimedOut, got {other:?}"),
    }
    assert!(ws.is_closed());
    release.put(()).unwrap();
}

#[test]
fn close_timeout_fires_when_the_server_never_answers_the_close() {
    let (server, release) = deaf_server();
    let ws = ClientBuilder::new()
        .options(Options::new().close_timeout(Duration::from_millis(100)))
        .connect(&format!("ws://{}/", server.local_addr()))
        .unwrap();
    let e = ws.close(None).unwrap_err();
    match e {
        Error::Io(e) => {
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
            assert!(e.to_string().contains("close"), "{e}");
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }
    release.put(()).unwrap();
}

#[test]
fn an_oversized_message_is_refused_with_1009() {
    let got: Queue<Result<Message, String>> = Queue::unbounded();
    let g = got.clone();
    let server = Server::bind("127.0.0.1:0").unwrap().serve(move |req| {
        let g = g.clone();
        Options::new()
            .max_message_size(1 << 20)
            .max_frame_size(1 << 20)
            .accept(&req, move |ws| {
                let _ = ws.send(Message::binary(vec![7u8; 100_000]));
                let r = match ws.recv() {
                    Err(Error::Closed(Some(f))) => Err(format!("closed {}", u16::from(f.code))),
                    other => Ok(other.unwrap()),
                };
                let _ = g.put(r);
            })
    });
    let ws = websocket::connect(&format!("ws://{}/", server.local_addr())).unwrap();
    let e = ws.recv().unwrap_err();
    assert!(matches!(e, Error::TooLarge(_)), "{e:?}");
    assert_eq!(
        got.get().unwrap(),
        Err(format!("closed {}", u16::from(CloseCode::Size)))
    );
}

/// A raw server: answers the upgrade (computing the accept key with the
/// library's own server code), then runs `then` on the raw upgraded
/// connection.
fn raw_server(then: impl Fn(&mut sylvan::http::Upgraded) + 'static) -> ServerHandle {
    let then = std::rc::Rc::new(then);
    Server::bind("127.0.0.1:0").unwrap().serve(move |req| {
        let key = req.header("sec-websocket-key").unwrap_or("").to_string();
        let then = then.clone();
        Response::new(101)
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Accept", accept_key(&key))
            .on_upgrade(move |mut up| then(&mut up))
    })
}

/// RFC 6455's accept key, with Python (the test must not trust the code
/// under test for it).
fn accept_key(key: &str) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys,hashlib,base64;print(base64.b64encode(hashlib.sha1((sys.argv[1]+'258EAFA5-E914-47DA-95CA-C5AB0DC85B11').encode()).digest()).decode())",
            key,
        ])
        .output()
        .expect("python3");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_peer_that_vanishes_mid_frame_gives_a_clear_error() {
    util::require(
        util::have_program("python3"),
        "python3",
        "apt-get install python3",
    );
    let server = raw_server(|up| {
        // A binary frame announcing 100 bytes; 10 arrive, then the
        // connection closes.
        let mut frame = vec![0x82, 100];
        frame.extend_from_slice(&[b'x'; 10]);
        let _ = up.write_all(&frame);
    });
    let ws = websocket::connect(&format!("ws://{}/", server.local_addr())).unwrap();
    let e = ws.recv().unwrap_err();
    assert!(
        matches!(&e, Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("without a WebSocket close frame"),
        "{e}"
    );
    assert!(ws.is_closed());
}

#[test]
fn the_server_must_send_the_right_accept_key() {
    let server = Server::bind("127.0.0.1:0").unwrap().serve(|_req| {
        Response::new(101)
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Accept", "d3Jvbmcgd3Jvbmcgd3Jvbmc=")
            .on_upgrade(|_| {})
    });
    let e = websocket::connect(&format!("ws://{}/", server.local_addr())).unwrap_err();
    assert!(e.to_string().contains("Sec-WebSocket-Accept"), "{e}");
}

#[test]
fn the_handshake_timeout_bounds_a_server_that_never_answers() {
    let l = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let _hold = sylvan::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut b = [0u8; 1024];
        while matches!((&s).read(&mut b), Ok(n) if n > 0) {}
    });
    let e = ClientBuilder::new()
        .handshake_timeout(Duration::from_millis(100))
        .connect(&format!("ws://{addr}/"))
        .unwrap_err();
    match e {
        Error::Io(e) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}"),
        other => panic!("{other:?}"),
    }
}

// --- Python's `websockets` server ------------------------------------------

const PY_SERVER: &str = r#"
import asyncio, sys, ssl
from websockets.asyncio.server import serve

async def handler(ws):
    try:
        async for m in ws:
            if m == "big":
                await ws.send("y" * 100000)
            elif m == "ext?":
                await ws.send(str(ws.response.headers.get("Sec-WebSocket-Extensions")))
            elif m == "bye":
                await ws.close(4000, "bye now")
            else:
                await ws.send(m)
    except Exception:
        pass  # the tests close sessions with errors on purpose

async def main():
    compression = None if sys.argv[1] == "plain" else "deflate"
    ctx = None
    if len(sys.argv) > 2:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    async with serve(handler, "127.0.0.1", 0, ssl=ctx, subprotocols=["py"], ping_interval=None,
                     compression=compression) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"#;

/// Python's `websockets` server, running until dropped.
struct PyServer {
    child: sylvan::process::Child,
    port: u16,
}

impl PyServer {
    fn start(deflate: bool, tls: Option<(&std::path::Path, &std::path::Path)>) -> PyServer {
        util::require(
            util::have_program("python3") && util::python_has("websockets"),
            "python3 with the websockets package",
            "python3 -m pip install websockets",
        );
        let mut cmd = sylvan::process::Command::new("python3");
        cmd.args(["-c", PY_SERVER, if deflate { "deflate" } else { "plain" }]);
        if let Some((c, k)) = tls {
            cmd.arg(c).arg(k);
        }
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let out = child.stdout.take().unwrap();
        let mut line = String::new();
        sylvan::timeout(Duration::from_secs(60), || {
            BufReader::new(out).read_line(&mut line)
        })
        .expect("the Python server did not start")
        .unwrap();
        let port = line.trim().parse().expect("port from the Python server");
        PyServer { child, port }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks whether the Python server agreed to permessage-deflate, from
/// both sides.
fn check_deflate(ws: &websocket::WebSocket, expect: bool) {
    assert_eq!(ws.is_compressed(), expect);
    ws.send("ext?").unwrap();
    let Message::Text(ext) = ws.recv().unwrap() else {
        panic!("expected text")
    };
    if expect {
        assert!(ext.starts_with("permessage-deflate"), "{ext}");
    } else {
        assert_eq!(ext.as_str(), "None");
    }
}

fn talk_to_python(ws: &websocket::WebSocket) {
    assert_eq!(ws.protocol(), Some("py"));
    ws.send("hello").unwrap();
    assert_eq!(ws.recv().unwrap(), Message::text("hello"));
    ws.send(Message::binary(vec![1u8, 2, 3])).unwrap();
    assert_eq!(ws.recv().unwrap(), Message::binary(vec![1u8, 2, 3]));
    // 100,000 bytes: over the default 64 KiB limit.
    ws.send("big").unwrap();
    assert!(matches!(ws.recv().unwrap_err(), Error::TooLarge(_)));
}

#[test]
fn python_websockets_server_over_ws_with_and_without_deflate() {
    for deflate in [true, false] {
        let py = PyServer::start(deflate, None);
        let url = format!("ws://127.0.0.1:{}/", py.port);
        let ws = ClientBuilder::new()
            .options(Options::new().protocols(["py"]))
            .connect(&url)
            .unwrap();
        check_deflate(&ws, deflate);
        talk_to_python(&ws);
    }
    // A client that does not offer it.
    let py = PyServer::start(true, None);
    let ws = ClientBuilder::new()
        .options(Options::new().protocols(["py"]).deflate(false))
        .connect(&format!("ws://127.0.0.1:{}/", py.port))
        .unwrap();
    check_deflate(&ws, false);
}

#[test]
fn python_websockets_server_close_handshakes() {
    let py = PyServer::start(true, None);
    let url = format!("ws://127.0.0.1:{}/", py.port);
    let opts = Options::new().protocols(["py"]);
    let ws = ClientBuilder::new()
        .options(opts.clone())
        .connect(&url)
        .unwrap();
    talk_to_python(&ws);
    // The server closes: recv reports its close frame.
    let ws = ClientBuilder::new()
        .options(opts.clone())
        .connect(&url)
        .unwrap();
    ws.send("bye").unwrap();
    match ws.recv().unwrap_err() {
        Error::Closed(Some(f)) => {
            assert_eq!(u16::from(f.code), 4000);
            assert_eq!(f.reason.as_str(), "bye now");
        }
        other => panic!("{other:?}"),
    }
    // The client closes: the handshake completes.
    let ws = ClientBuilder::new()
        .options(opts.max_message_size(1 << 20).max_frame_size(1 << 20))
        .connect(&url)
        .unwrap();
    ws.send("big").unwrap();
    assert_eq!(ws.recv().unwrap(), Message::text("y".repeat(100_000)));
    ws.close(None).unwrap();
}

#[cfg(feature = "tls")]
#[test]
fn python_websockets_server_over_wss() {
    let pki = tls_util::Pki::new();
    let dir = std::env::temp_dir();
    let cert = dir.join(format!("sylvan-wss-{}-cert.pem", std::process::id()));
    let key = dir.join(format!("sylvan-wss-{}-key.pem", std::process::id()));
    std::fs::write(&cert, &pki.chain_pem).unwrap();
    std::fs::write(&key, &pki.key_pem).unwrap();
    let py = PyServer::start(true, Some((&cert, &key)));
    let port = py.port;
    let client = ClientBuilder::new()
        .options(Options::new().protocols(["py"]))
        .tls_config(pki.client_config())
        .connector(
            sylvan::net::Connector::new()
                .resolver(move |_, _| Ok(vec![([127, 0, 0, 1], port).into()])),
        );
    let ws = client.connect(&format!("wss://localhost:{port}/")).unwrap();
    check_deflate(&ws, true);
    talk_to_python(&ws);
    let ws = client.connect(&format!("wss://localhost:{port}/")).unwrap();
    ws.send("x").unwrap();
    assert_eq!(ws.recv().unwrap(), Message::text("x"));
    ws.close(None).unwrap();
    // A client that does not trust the CA fails in the TLS handshake.
    let other = tls_util::Pki::new();
    let e = ClientBuilder::new()
        .tls_config(other.client_config())
        .connector(
            sylvan::net::Connector::new()
                .resolver(move |_, _| Ok(vec![([127, 0, 0, 1], port).into()])),
        )
        .connect(&format!("wss://localhost:{port}/"))
        .unwrap_err();
    assert!(e.to_string().contains("TLS handshake"), "{e}");
    let _ = std::fs::remove_file(cert);
    let _ = std::fs::remove_file(key);
}

#[cfg(feature = "tls")]
#[test]
fn wss_against_sylvans_https_server() {
    let pki = tls_util::Pki::new();
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .tls_pem(pki.chain_pem.as_bytes(), pki.key_pem.as_bytes())
        .unwrap()
        .serve(|req| {
            Options::new()
                .max_message_size(1 << 20)
                .max_frame_size(1 << 20)
                .accept(&req, |ws| {
                    while let Ok(m) = ws.recv() {
                        if ws.send(m).is_err() {
                            break;
                        }
                    }
                })
        });
    let port = server.local_addr().port();
    let ws = ClientBuilder::new()
        .options(
            Options::new()
                .max_message_size(1 << 20)
                .max_frame_size(1 << 20),
        )
        .tls_config(pki.client_config())
        .connector(
            sylvan::net::Connector::new()
                .resolver(move |_, _| Ok(vec![([127, 0, 0, 1], port).into()])),
        )
        .connect(&format!("wss://localhost:{port}/"))
        .unwrap();
    // Many messages, some larger than a TLS record, in both directions.
    for i in 0..50usize {
        let m = Message::binary(vec![i as u8; 1 + i * 7000]);
        ws.send(m.clone()).unwrap();
        assert_eq!(ws.recv().unwrap(), m);
    }
    // Another green thread sends while this one waits in recv.
    let ws2 = ws.clone();
    let sender = sylvan::spawn(move || ws2.send("from another green thread"));
    assert_eq!(
        ws.recv().unwrap(),
        Message::text("from another green thread")
    );
    sender.join().unwrap().unwrap();
    ws.close(None).unwrap();
    let report = server.stop(Duration::from_secs(10));
    assert_eq!(report.killed, 0);
}

// --- permessage-deflate between sylvan's client and server -----------------

#[test]
fn deflate_is_used_when_both_sides_want_it() {
    for (server_on, client_on) in [(true, true), (true, false), (false, true)] {
        let server = echo_server(Options::new().deflate(server_on));
        let ws = ClientBuilder::new()
            .options(Options::new().deflate(client_on))
            .connect(&format!("ws://{}/", server.local_addr()))
            .unwrap();
        assert_eq!(ws.is_compressed(), server_on && client_on);
        for i in 0..20usize {
            let m = Message::text(format!("message {i} ").repeat(i * 100));
            ws.send(m.clone()).unwrap();
            assert_eq!(ws.recv().unwrap(), m);
        }
        ws.close(None).unwrap();
    }
}

#[test]
fn a_decompression_bomb_is_refused_with_1009() {
    // The server takes 64 KiB messages; the client sends 4 MiB of zeros,
    // which deflate to a few KiB.
    let got: Queue<String> = Queue::unbounded();
    let g = got.clone();
    let server = Server::bind("127.0.0.1:0").unwrap().serve(move |req| {
        let g = g.clone();
        websocket::accept(&req, move |ws| {
            let _ = g.put(match ws.recv() {
                Err(e) => e.to_string(),
                Ok(m) => format!("received {} bytes", m.len()),
            });
        })
    });
    let ws = ClientBuilder::new()
        .options(Options::new().max_message_size(8 << 20))
        .connect(&format!("ws://{}/", server.local_addr()))
        .unwrap();
    assert!(ws.is_compressed());
    ws.send(Message::binary(vec![0u8; 4 << 20])).unwrap();
    let server_saw = got.get().unwrap();
    assert!(server_saw.contains("too large"), "{server_saw}");
    match ws.recv().unwrap_err() {
        Error::Closed(Some(f)) => assert_eq!(f.code, CloseCode::Size),
        other => panic!("expected a 1009 close, got {other:?}"),
    }
}

const PY_CLIENT: &str = r#"
import asyncio, sys
from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

async def main():
    kind = sys.argv[2]
    if kind == "default":
        kw = {}
    else:
        kw = {"extensions": [ClientPerMessageDeflateFactory(
            server_no_context_takeover=True, client_no_context_takeover=True,
            server_max_window_bits=10, client_max_window_bits=True)], "compression": None}
    async with connect("ws://" + sys.argv[1] + "/", max_size=2**22, **kw) as ws:
        print(ws.response.headers.get("Sec-WebSocket-Extensions"), flush=True)
        for i in range(30):
            m = ("message %d " % i) * (i * 200)
            await ws.send(m)
            assert await ws.recv() == m
        await ws.send(bytes(range(256)) * 100)
        assert await ws.recv() == bytes(range(256)) * 100
        print("ok", flush=True)

asyncio.run(main())
"#;

#[test]
fn python_websockets_client_with_deflate_against_sylvans_server() {
    util::require(
        util::have_program("python3") && util::python_has("websockets"),
        "python3 with the websockets package",
        "python3 -m pip install websockets",
    );
    let server = echo_server(
        Options::new()
            .max_message_size(1 << 22)
            .max_frame_size(1 << 22),
    );
    for (kind, expect) in [
        ("default", "permessage-deflate"),
        (
            "params",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10",
        ),
    ] {
        let out = http_run(std::process::Command::new("python3").args([
            "-c",
            PY_CLIENT,
            &server.local_addr().to_string(),
            kind,
        ]));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{kind}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(text, format!("{expect}\nok\n"), "{kind}");
    }
}

/// Runs a command on the thread pool (so this hub keeps serving).
fn http_run(cmd: &mut std::process::Command) -> std::process::Output {
    let mut cmd = std::mem::replace(cmd, std::process::Command::new("true"));
    sylvan::tpool::execute(move || cmd.output())
        .expect("tpool")
        .expect("spawn python3")
}
