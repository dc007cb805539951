//! The three echo servers, each run as a child process (`echo --server
//! KIND`): sylvan, tokio `current_thread`, and the hand-written mio floor.
//!
//! A server pins itself to [`SERVER_CPU`], raises its open-files limit,
//! binds 127.0.0.1 on an ephemeral port, prints `port=N pinned=0|1` on
//! standard output and serves until its standard input closes (the parent
//! went away) or it is killed.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener as MioListener, TcpStream as MioStream};
use mio::{Events, Interest, Poll, Token};

use crate::{Kind, SERVER_CPU, pin_to, raise_nofile};

/// Read buffer of every server.
const BUF: usize = 4096;
/// Accept backlog of every server.
const BACKLOG: i32 = 1024;

/// Entry point of a server child.
pub(crate) fn server_main(kind: Kind) -> io::Result<()> {
    let pinned = pin_to(SERVER_CPU);
    if !pinned {
        eprintln!(
            "echo: WARNING: the {} server is not pinned to CPU {SERVER_CPU}",
            kind.arg()
        );
    }
    if let Err(e) = raise_nofile() {
        eprintln!("echo: WARNING: cannot raise the open-files limit: {e}");
    }
    // Exit when the parent goes away (its end of our stdin closes), even if
    // it could not kill us.
    std::thread::spawn(|| {
        let _ = io::stdin().read(&mut [0; 1]);
        std::process::exit(0);
    });
    let announce = |addr: SocketAddr| -> io::Result<()> {
        let mut out = io::stdout().lock();
        writeln!(out, "port={} pinned={}", addr.port(), u8::from(pinned))?;
        out.flush()
    };
    match kind {
        Kind::Sylvan => serve_sylvan(announce),
        Kind::Tokio => serve_tokio(announce),
        Kind::Mio => serve_mio(announce),
    }
}

/// The listening socket of every server: 127.0.0.1, an ephemeral port,
/// `SO_REUSEADDR`, backlog [`BACKLOG`], non-blocking.
///
/// One helper for all, because the libraries' defaults differ (mio's and
/// std's `bind` listen with a backlog of 128, sylvan's `listen` with 1024):
/// with 128, the load generator opening 1000 connections overflows the
/// accept queue of a server that is not scheduled at that moment, SYNs are
/// dropped, and connecting takes seconds of SYN retransmits.
fn bind_listener() -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    sock.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    sock.listen(BACKLOG)?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

/// sylvan: one hub, a green thread per connection, plain blocking code.
fn serve_sylvan(announce: impl FnOnce(SocketAddr) -> io::Result<()>) -> io::Result<()> {
    let listener = sylvan::net::TcpListener::from_std(bind_listener()?)?;
    announce(listener.local_addr()?)?;
    let server = sylvan::net::ServeOptions::new()
        .max_connections(100_000)?
        .serve(listener, |mut conn, _peer| -> io::Result<()> {
            conn.set_nodelay(true)?;
            let mut buf = [0; BUF];
            loop {
                let n = conn.read(&mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                conn.write_all(&buf[..n])?;
            }
        });
    server.wait().map_err(io::Error::from)
}

/// tokio `current_thread` (I/O and time drivers on, as `#[tokio::main]`
/// sets them up): a task per connection, the same loop.
fn serve_tokio(announce: impl FnOnce(SocketAddr) -> io::Result<()>) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::from_std(bind_listener()?)?;
        announce(listener.local_addr()?)?;
        loop {
            let (mut conn, _) = listener.accept().await?;
            conn.set_nodelay(true)?;
            tokio::spawn(async move {
                let mut buf = [0; BUF];
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    })
}

/// One connection of the mio floor: its buffer and the echo not yet written.
struct FloorConn {
    stream: MioStream,
    buf: Box<[u8; BUF]>,
    /// `buf[from..to]` is still to be written.
    from: usize,
    to: usize,
}

impl FloorConn {
    /// Echoes as far as possible without blocking; `false` when the
    /// connection is finished (closed by the peer or failed).
    ///
    /// A read shorter than the buffer drained the socket: once its echo is
    /// written, it waits for the next edge instead of reading again (new
    /// data is always a new edge for epoll), saving a `read` that would
    /// return `EAGAIN`.
    fn pump(&mut self) -> bool {
        let mut drained = false;
        loop {
            while self.from < self.to {
                match (&self.stream).write(&self.buf[self.from..self.to]) {
                    Ok(n) => self.from += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return false,
                }
            }
            if drained {
                return true;
            }
            match (&self.stream).read(&mut self.buf[..]) {
                Ok(0) => return false,
                Ok(n) => {
                    self.from = 0;
                    self.to = n;
                    drained = n < BUF;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }
}

/// The floor: one thread, one `mio::Poll`, a slab of connection states.
fn serve_mio(announce: impl FnOnce(SocketAddr) -> io::Result<()>) -> io::Result<()> {
    const LISTENER: Token = Token(usize::MAX);
    let mut poll = Poll::new()?;
    let mut listener = MioListener::from_std(bind_listener()?);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    announce(listener.local_addr()?)?;
    let mut conns: Vec<Option<FloorConn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                loop {
                    let mut stream = match listener.accept() {
                        Ok((s, _)) => s,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            eprintln!("echo: mio floor: accept failed: {e}");
                            break;
                        }
                    };
                    stream.set_nodelay(true)?;
                    let i = free.pop().unwrap_or_else(|| {
                        conns.push(None);
                        conns.len() - 1
                    });
                    poll.registry().register(
                        &mut stream,
                        Token(i),
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    conns[i] = Some(FloorConn {
                        stream,
                        buf: Box::new([0; BUF]),
                        from: 0,
                        to: 0,
                    });
                }
                continue;
            }
            let i = ev.token().0;
            let Some(conn) = conns.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            if !conn.pump() {
                if let Some(mut c) = conns[i].take() {
                    let _ = poll.registry().deregister(&mut c.stream);
                }
                free.push(i);
            }
        }
    }
}
