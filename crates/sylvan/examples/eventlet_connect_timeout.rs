//! A client with a connection timeout, Eventlet style and sylvan style
//! (see `docs/eventlet.md`).
//!
//! ```sh
//! cargo run -p sylvan --example eventlet_connect_timeout
//! ```
//!
//! The Python original:
//!
//! ```python
//! import eventlet
//!
//! def ask(addr, question):
//!     with eventlet.Timeout(0.5):          # connect, send and reply: 0.5 s in all
//!         sock = eventlet.connect(addr)
//!         sock.sendall(question)
//!         return sock.recv(1024)
//!
//! try:
//!     print(ask(addr, b"hello\n"))
//! except eventlet.Timeout:
//!     print("no answer within 0.5 s")
//! except OSError as e:
//!     print("cannot connect:", e)
//!
//! sock = eventlet.connect(addr)            # a timeout per operation instead
//! sock.settimeout(0.2)
//! try:
//!     sock.recv(1024)
//! except socket.timeout:
//!     print("recv timed out")
//! ```
//!
//! The program starts its own servers on loopback — one that answers, one
//! that accepts nothing and says nothing, one whose accept queue is full —
//! asks each, and checks what comes back. No external network.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sylvan::net::{Connector, ListenOptions, TcpListener, TcpStream};

/// `def ask(addr, question)`: one deadline over connect, send and reply.
fn ask(addr: SocketAddr, question: &[u8]) -> io::Result<Vec<u8>> {
    // `with eventlet.Timeout(0.5):` — every blocking call inside fails with
    // `TimedOut` once the deadline passes; `timeout` then returns
    // `Err(Elapsed)`. The first `?` turns `Elapsed` into an `io::Error` of
    // kind `TimedOut`, the second propagates the body's own error.
    sylvan::timeout(Duration::from_millis(500), || -> io::Result<Vec<u8>> {
        let mut sock = sylvan::connect(addr)?;
        sock.write_all(question)?;
        let mut buf = vec![0; 1024];
        let n = sock.read(&mut buf)?;
        buf.truncate(n);
        Ok(buf)
    })?
}

/// Prints the outcome the way the Python `try`/`except` does.
fn report(what: &str, r: &io::Result<Vec<u8>>) {
    match r {
        Ok(reply) => println!("{what}: {:?}", String::from_utf8_lossy(reply)),
        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
            println!("{what}: no answer within 0.5 s")
        }
        Err(e) => println!("{what}: cannot connect: {e}"),
    }
}

/// A listener whose accept queue is full: the kernel drops further SYNs,
/// so a connect to it hangs until its timeout, as to a blackholed host.
/// Returns the listener and the connections that filled its queue.
fn full_backlog() -> io::Result<(TcpListener, Vec<TcpStream>)> {
    let l = ListenOptions::new().backlog(0).bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let mut queued = Vec::new();
    let quick = Connector::new().connect_timeout(Duration::from_millis(100));
    for _ in 0..16 {
        match quick.connect(addr) {
            Ok(s) => queued.push(s),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok((l, queued)),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(
        "the accept queue never filled (is net.ipv4.tcp_abort_on_overflow set?)",
    ))
}

fn main() -> io::Result<()> {
    // A server that answers.
    let answering = sylvan::listen("127.0.0.1:0")?;
    let answering_addr = answering.local_addr()?;
    let server = sylvan::serve(answering, |mut conn, _peer| -> io::Result<()> {
        let mut buf = [0; 1024];
        let n = conn.read(&mut buf)?;
        conn.write_all(&buf[..n].to_ascii_uppercase())
    });
    let r = ask(answering_addr, b"hello\n");
    report("answering server", &r);
    assert_eq!(r?, b"HELLO\n");

    // A server that never accepts: the kernel completes the handshake, but
    // no reply ever comes. The scoped deadline covers the read.
    let silent = sylvan::listen("127.0.0.1:0")?;
    let t0 = Instant::now();
    let r = ask(silent.local_addr()?, b"hello\n");
    report("silent server", &r);
    assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
    assert!(t0.elapsed() >= Duration::from_millis(500));

    // A connect that cannot complete: `Connector` puts one deadline over
    // resolution and every address (`eventlet.connect` has none of its own;
    // CPython's `create_connection(timeout=)` applies it per address).
    let (blackhole, _queued) = full_backlog()?;
    let t0 = Instant::now();
    let r = Connector::new()
        .connect_timeout(Duration::from_millis(300))
        .connect(blackhole.local_addr()?);
    let e = r.expect_err("the accept queue is full");
    println!("full accept queue: {e}");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert!(t0.elapsed() >= Duration::from_millis(300));

    // `sock.settimeout(0.2)`: std's per-operation timeouts, same meaning.
    let sock = sylvan::connect(silent.local_addr()?)?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;
    let e = (&sock).read(&mut [0; 1024]).expect_err("nothing to read");
    println!("per-operation read timeout: {e}");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut); // std says WouldBlock here

    server.stop(Duration::from_secs(1));
    sylvan::shutdown();
    println!("all timeouts behaved");
    Ok(())
}
