//! Eventlet's `echoserver.py`, ported line by line (see `docs/eventlet.md`).
//!
//! ```sh
//! cargo run -p sylvan --example eventlet_echo_server               # self-test, then exit
//! cargo run -p sylvan --example eventlet_echo_server -- 0.0.0.0:6000 # serve until killed
//! ```
//!
//! The Python original:
//!
//! ```python
//! import eventlet
//!
//! def handle(fd):
//!     print("client connected")
//!     while True:
//!         x = fd.readline()          # pass through every non-eof line
//!         if not x:
//!             break
//!         fd.write(x)
//!         fd.flush()
//!         print("echoed", x, end=" ")
//!     print("client disconnected")
//!
//! server = eventlet.listen(("0.0.0.0", 6000))
//! pool = eventlet.GreenPool()
//! while True:
//!     new_sock, address = server.accept()
//!     print("accepted", address)
//!     pool.spawn_n(handle, new_sock.makefile("rw"))
//! ```
//!
//! With no argument the program listens on a free loopback port, runs three
//! clients against itself as green threads, checks their echoes and exits:
//! it is run that way in CI.

use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::time::Duration;

use sylvan::GreenPool;
use sylvan::net::{TcpListener, TcpStream};

/// `def handle(fd)`: one green thread per connection.
fn handle(conn: TcpStream) -> io::Result<()> {
    println!("client connected");
    // `makefile("rw")`: a buffered reader over `&TcpStream`, writes on the
    // stream itself (unbuffered, so there is nothing to flush).
    let mut fd = BufReader::new(&conn);
    let mut x = String::new();
    loop {
        x.clear();
        // `fd.readline()` parks this green thread only; "" means EOF.
        if fd.read_line(&mut x)? == 0 {
            break;
        }
        (&conn).write_all(x.as_bytes())?;
        print!("echoed {x}");
    }
    println!("client disconnected");
    Ok(())
}

/// The `while True: accept; spawn_n` loop.
fn accept_loop(server: TcpListener, pool: GreenPool) -> io::Result<()> {
    loop {
        let (new_sock, address) = server.accept()?;
        println!("accepted {address}");
        pool.spawn_n(move || {
            if let Err(e) = handle(new_sock) {
                println!("handler failed: {e}");
            }
        })
        .map_err(sylvan::Cancelled::from)?; // only if this green thread was cancelled
    }
}

/// A client for the self-test: sends `lines`, expects them back.
fn client(addr: SocketAddr, lines: &[&str]) -> io::Result<()> {
    let conn = sylvan::connect(addr)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(&conn);
    for line in lines {
        (&conn).write_all(format!("{line}\n").as_bytes())?;
        let mut back = String::new();
        reader.read_line(&mut back)?;
        assert_eq!(back.trim_end(), *line);
    }
    Ok(()) // dropping `conn` closes it: the handler sees EOF
}

fn main() -> io::Result<()> {
    let arg = std::env::args().nth(1);
    // `eventlet.listen(("0.0.0.0", 6000))`: SO_REUSEADDR, a backlog of 1024.
    let server = sylvan::listen(arg.as_deref().unwrap_or("127.0.0.1:0"))?;
    let addr = server.local_addr()?;
    println!("server socket listening on {addr}");
    // `eventlet.GreenPool()`: at most 1000 handlers at a time.
    let pool = GreenPool::default();

    if arg.is_some() {
        // Serving for real: the root context runs the accept loop forever,
        // as the Python script does.
        return accept_loop(server, pool);
    }

    // Self-test: the accept loop in a green thread of its own, clients in
    // three more.
    let acceptor = {
        let pool = pool.clone();
        sylvan::spawn(move || accept_loop(server, pool))
    };
    let clients: Vec<_> = (0..3)
        .map(|i| sylvan::spawn(move || client(addr, &[&format!("hello from client {i}"), "bye"])))
        .collect();
    for c in clients {
        c.join().expect("client ran")?;
    }
    pool.wait_all()?; // every handler saw its client leave
    acceptor.kill(); // its `accept` returns Cancelled::Killed as an io::Error
    let end = acceptor.join().expect("acceptor ran");
    assert!(
        end.as_ref()
            .is_err_and(|e| sylvan::Cancelled::from_io(e).is_some())
    );
    println!("self-test passed");
    sylvan::shutdown(); // nothing is left, but this is how a main ends
    Ok(())
}
