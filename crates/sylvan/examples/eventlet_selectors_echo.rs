//! The `selectors` echo server (the event loop from Python's `selectors`
//! documentation), ported to one dispatching loop over [`Select`].
//!
//! ```sh
//! cargo run -p sylvan --example eventlet_selectors_echo                # self-test, then exit
//! cargo run -p sylvan --example eventlet_selectors_echo -- 0.0.0.0:1234 # serve until killed
//! ```
//!
//! The Python original:
//!
//! ```python
//! import selectors, socket
//!
//! sel = selectors.DefaultSelector()
//!
//! def accept(sock, mask):
//!     conn, addr = sock.accept()  # Should be ready
//!     print("accepted", conn, "from", addr)
//!     conn.setblocking(False)
//!     sel.register(conn, selectors.EVENT_READ, read)
//!
//! def read(conn, mask):
//!     data = conn.recv(1000)  # Should be ready
//!     if data:
//!         print("echoing", repr(data), "to", conn)
//!         conn.send(data)  # Hope it won't block
//!     else:
//!         print("closing", conn)
//!         sel.unregister(conn)
//!         conn.close()
//!
//! sock = socket.socket()
//! sock.bind(("localhost", 1234))
//! sock.listen(100)
//! sock.setblocking(False)
//! sel.register(sock, selectors.EVENT_READ, accept)
//!
//! while True:
//!     events = sel.select()
//!     for key, mask in events:
//!         callback = key.data
//!         callback(key.fileobj, mask)
//! ```
//!
//! In sylvan nobody needs a readiness loop to serve sockets — a green
//! thread per connection blocking in `read` is the idiom
//! (`eventlet_echo_server`). What the `selectors` loop is really for is
//! *one place that reacts to several sources*, and that is what
//! [`Select`] gives: here an acceptor and one reader per connection
//! (green threads doing the blocking `accept`/`read`, the "registered file
//! objects") report to queues, and the loop in `main` selects over those
//! queues, a stop event and an idle tick, and runs the callback of
//! whichever fired. The callbacks own the state (the connection table),
//! exactly as in the Python program, with no locking.
//!
//! With no argument the program listens on a free loopback port, runs three
//! clients against itself as green threads, checks their echoes and exits:
//! it is run that way in CI.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use sylvan::net::{TcpListener, TcpStream};
use sylvan::select::Select;
use sylvan::sync::{Event, Queue};

/// What the loop's sources report: a `(key, mask)` pair of `sel.select()`.
enum Ready {
    /// `accept`: a new connection.
    Accepted(TcpStream, SocketAddr),
    /// `read`: data from connection `id` (empty at EOF).
    Data(u64, Vec<u8>),
    /// The stop event was sent.
    Stop,
    /// Nothing happened for a second.
    Idle,
}

/// The "registered" listener: accepts and reports each connection.
fn acceptor(sock: TcpListener, accepted: Queue<(TcpStream, SocketAddr)>) -> io::Result<()> {
    loop {
        let (conn, addr) = sock.accept()?;
        if accepted.put((conn, addr)).is_err() {
            return Ok(()); // the loop is gone
        }
    }
}

/// A "registered" connection: reports each chunk it reads, then EOF.
fn reader(id: u64, conn: Rc<TcpStream>, data: Queue<(u64, Vec<u8>)>) -> io::Result<()> {
    let mut buf = [0u8; 1000];
    loop {
        let n = (&*conn).read(&mut buf)?; // `conn.recv(1000)`
        if data.put((id, buf[..n].to_vec())).is_err() || n == 0 {
            return Ok(());
        }
    }
}

/// The event loop: `while True: events = sel.select(); callback(...)`.
fn event_loop(sock: TcpListener, stop: Event<()>) -> io::Result<()> {
    let accepted = Queue::unbounded();
    let data = Queue::unbounded();
    let acceptor = {
        let accepted = accepted.clone();
        sylvan::spawn(move || acceptor(sock, accepted))
    };
    // The connection table: `sel.register(conn, ...)` / `sel.unregister`.
    let mut conns: HashMap<u64, Rc<TcpStream>> = HashMap::new();
    let mut readers = Vec::new();
    let mut next_id = 0;
    let mut stopping = false;
    while !(stopping && conns.is_empty()) {
        let mut sel = Select::new()
            .get(&accepted, |r| {
                let (conn, addr) = r.expect("the acceptor never closes the queue");
                Ready::Accepted(conn, addr)
            })
            .get(&data, |r| {
                let (id, bytes) = r.expect("readers never close the queue");
                Ready::Data(id, bytes)
            })
            .timeout(Duration::from_secs(1), || Ready::Idle);
        if !stopping {
            // Arms can be added conditionally: once stopping, the (still
            // sent) event is no longer listened to.
            sel = sel.wait(&stop, |()| Ready::Stop);
        }
        let ready = sel.select()?;
        match ready {
            // def accept(sock, mask)
            Ready::Accepted(conn, addr) => {
                println!("accepted connection {next_id} from {addr}");
                let conn = Rc::new(conn);
                conns.insert(next_id, conn.clone());
                let data = data.clone();
                readers.push(sylvan::spawn(move || reader(next_id, conn, data)));
                next_id += 1;
            }
            // def read(conn, mask)
            Ready::Data(id, bytes) => {
                let Some(conn) = conns.get(&id) else { continue };
                if bytes.is_empty() {
                    println!("closing connection {id}");
                    conns.remove(&id); // the reader has ended; dropping closes it
                } else {
                    println!(
                        "echoing {:?} to connection {id}",
                        String::from_utf8_lossy(&bytes)
                    );
                    (&**conn).write_all(&bytes)?; // parks this loop only if the peer is slow
                }
            }
            Ready::Idle => {}
            // Stop: let the open connections finish, then leave the loop.
            Ready::Stop => stopping = true,
        }
    }
    // Shut down: stop the sources, then close what is left.
    acceptor.kill();
    let _ = acceptor.join();
    for r in &readers {
        r.kill();
    }
    sylvan::join_all(&readers, None);
    println!("event loop stopped");
    Ok(())
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
    Ok(())
}

fn main() -> io::Result<()> {
    let arg = std::env::args().nth(1);
    let sock = sylvan::listen(arg.as_deref().unwrap_or("127.0.0.1:0"))?;
    let addr = sock.local_addr()?;
    println!("listening on {addr}");
    let stop = Event::new();
    if arg.is_some() {
        return event_loop(sock, stop); // serve until killed
    }

    // Self-test: the loop in a green thread, three clients in three more.
    let server = {
        let stop = stop.clone();
        sylvan::spawn(move || event_loop(sock, stop))
    };
    let clients: Vec<_> = (0..3)
        .map(|i| sylvan::spawn(move || client(addr, &[&format!("hello from client {i}"), "bye"])))
        .collect();
    for c in clients {
        c.join().expect("client ran")?;
    }
    stop.send(()).expect("sent once");
    server.join().expect("the event loop ran")?;
    println!("self-test passed");
    sylvan::shutdown();
    Ok(())
}
