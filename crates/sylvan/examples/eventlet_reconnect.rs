//! Reconnecting with backoff: the Eventlet loop ported line by line, then
//! the same client on `resilience::Reconnecting` (see `docs/eventlet.md`).
//!
//! ```sh
//! cargo run -p sylvan --example eventlet_reconnect
//! ```
//!
//! The Python original:
//!
//! ```python
//! import random
//! import eventlet
//!
//! def connect_with_backoff(addr, state):
//!     while True:
//!         try:
//!             with eventlet.Timeout(20):
//!                 return eventlet.connect(addr)
//!         except (OSError, eventlet.Timeout) as e:
//!             print("connect failed:", e)
//!             eventlet.sleep(state["delay"] * random.uniform(0.8, 1.2))
//!             state["delay"] = min(state["delay"] * 1.6, 120)
//!
//! def pinger(addr, count):
//!     state, got = {"delay": 1.0}, 0
//!     while got < count:
//!         sock = connect_with_backoff(addr, state)
//!         f = sock.makefile("rw")
//!         try:
//!             while got < count:
//!                 f.write("ping\n")
//!                 f.flush()
//!                 line = f.readline()
//!                 if not line:
//!                     raise ConnectionError("server closed the connection")
//!                 state["delay"] = 1.0     # the connection works: start over
//!                 got += 1
//!         except OSError as e:
//!             print("connection lost:", e)
//!         finally:
//!             sock.close()
//! ```
//!
//! The program plays the server too: it is down for the first 300 ms
//! (connections refused), then answers three pings per connection and
//! hangs up, so the client has to reconnect again and again. Loopback
//! only; it runs to completion in about a second.

use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::time::Duration;

use sylvan::net::{Connector, TcpStream};
use sylvan::resilience::{Backoff, CallError, Reconnecting};

const PINGS: u32 = 8;

/// A backoff fit for a demo: 50 ms, ×1.6, at most 1 s, ±20 % (gRPC's
/// shape; `Backoff::new()` alone gives gRPC's 1 s / 120 s).
fn demo_backoff() -> Backoff {
    Backoff::new()
        .initial(Duration::from_millis(50))
        .max(Duration::from_secs(1))
}

/// `connect_with_backoff`: a plain loop around `Backoff`.
fn connect_with_backoff(addr: SocketAddr, backoff: &mut Backoff) -> io::Result<TcpStream> {
    let connector = Connector::new().connect_timeout(Duration::from_secs(20));
    loop {
        match connector.connect(addr) {
            Ok(sock) => return Ok(sock),
            Err(e) => {
                println!("connect failed: {e}");
                // Sleeps the next delay (jittered); `?` stops the loop if
                // this green thread is killed or its deadline passes.
                backoff.sleep()?;
            }
        }
    }
}

/// Sends one ping and reads the reply; EOF is an error, as in Python.
fn ping(f: &mut BufReader<TcpStream>) -> io::Result<String> {
    f.get_ref().write_all(b"ping\n")?;
    let mut line = String::new();
    if f.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "server closed the connection",
        ));
    }
    Ok(line)
}

/// `def pinger(addr, count)`, line by line.
fn pinger(addr: SocketAddr, count: u32) -> io::Result<u32> {
    let mut backoff = demo_backoff();
    let (mut got, mut connections) = (0, 0);
    while got < count {
        let sock = connect_with_backoff(addr, &mut backoff)?;
        connections += 1;
        let mut f = BufReader::new(sock); // `makefile`
        let r = (|| -> io::Result<()> {
            while got < count {
                let reply = ping(&mut f)?;
                backoff.reset(); // the connection works: start over
                got += 1;
                print!("plain loop: {reply}");
            }
            Ok(())
        })();
        if let Err(e) = r {
            println!("connection lost: {e}");
        }
        // `finally: sock.close()` — dropping `f` closes the socket.
    }
    Ok(connections)
}

/// The same client on `Reconnecting`: the reconnect loop, its backoff and
/// its states run in a background green thread; the caller only calls.
fn pinger_reconnecting(addr: SocketAddr, count: u32) -> io::Result<u64> {
    let conn = Reconnecting::builder(move || {
        Connector::new()
            .connect_timeout(Duration::from_secs(20))
            .connect(addr)
            .map(BufReader::new)
    })
    .backoff(demo_backoff())
    .wait_for_ready(true) // a call waits for `Ready` instead of failing fast
    .build();
    let mut got = 0;
    while got < count {
        // Wait-for-ready is bounded only by the caller's deadline: give
        // every call one.
        match sylvan::timeout(Duration::from_secs(10), || conn.call(ping))? {
            Ok(reply) => {
                got += 1;
                print!("Reconnecting: {reply}");
            }
            // The connection broke under the call: it is marked broken and
            // re-made in the background; this request is not replayed
            // (wrap the call in `resilience::Retry` for that).
            Err(CallError::Io(e)) => println!("connection lost: {e}"),
            Err(e) => return Err(e.into()),
        }
    }
    let reconnects = conn.reconnects();
    conn.shutdown();
    Ok(reconnects)
}

/// A flaky server on `addr`: down for 300 ms, then three pongs per
/// connection before it hangs up.
fn flaky_server(addr: SocketAddr) -> io::Result<sylvan::net::ServerHandle> {
    sylvan::sleep(Duration::from_millis(300))?;
    let listener = sylvan::listen(addr)?;
    Ok(sylvan::serve(listener, |conn, _peer| -> io::Result<()> {
        let mut lines = BufReader::new(&conn);
        let mut line = String::new();
        for n in 1..=3 {
            line.clear();
            if lines.read_line(&mut line)? == 0 {
                break;
            }
            (&conn).write_all(format!("pong {n}\n").as_bytes())?;
        }
        Ok(()) // hang up
    }))
}

/// A loopback address with a port nobody listens on (for now).
fn free_addr() -> io::Result<SocketAddr> {
    sylvan::listen("127.0.0.1:0")?.local_addr()
}

fn main() -> io::Result<()> {
    let addr = free_addr()?;
    let server = sylvan::spawn(move || flaky_server(addr));
    let connections = pinger(addr, PINGS)?;
    println!("plain loop: {PINGS} pongs over {connections} connections");
    assert!(connections >= 3);
    let server = server.join().expect("server started")?;
    server.stop(Duration::from_secs(1));

    let addr = free_addr()?;
    let server = sylvan::spawn(move || flaky_server(addr));
    let reconnects = pinger_reconnecting(addr, PINGS)?;
    println!("Reconnecting: {PINGS} pongs, {reconnects} reconnects");
    assert!(reconnects >= 2);
    let server = server.join().expect("server started")?;
    server.stop(Duration::from_secs(1));

    sylvan::shutdown();
    Ok(())
}
