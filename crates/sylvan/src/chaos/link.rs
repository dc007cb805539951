//! One proxied connection ("link", as Toxiproxy calls it): its two
//! sockets, its green threads, and how it ends.
//!
//! Each link runs four green threads: per direction, a reader that moves
//! chunks from the source socket into a bounded queue, stamped with the
//! time they were read, and a pump that takes them from the queue, runs
//! them through that direction's toxics and writes them out (see
//! `pump.rs`). The queue is also how the proxy wakes an idle pump when the
//! toxics change: it puts a `Msg::Wake` in it. The first thread connects
//! upstream, starts the other three and then becomes the upstream pump.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::pump::Pump;
use super::shared::Shared;
use super::toxic::Direction;
use crate::Cancelled;
use crate::green::GreenThread;
use crate::net::{Connector, TcpStream};
use crate::sync::Queue;

/// Bytes read from a socket in one go.
const CHUNK: usize = 32 * 1024;

/// Chunks a reader may queue ahead of its pump.
const QUEUED_CHUNKS: usize = 8;

/// How a byte stream (or the whole connection) ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// The source closed its sending side: pass on a FIN.
    Eof,
    /// Close the connection (FIN to both peers).
    Close,
    /// Reset the connection (RST to both peers).
    Reset,
}

impl End {
    /// How to pass on a failed read or write.
    pub(super) fn after(e: &io::Error) -> End {
        match e.kind() {
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => End::Reset,
            _ => End::Close,
        }
    }
}

/// What a reader (or the proxy) hands a pump.
#[derive(Debug)]
pub(super) enum Msg {
    /// Bytes read at that instant.
    Data(Instant, Vec<u8>),
    /// The source ended then.
    End(Instant, End),
    /// The toxics changed: look again.
    Wake,
}

pub(super) struct Link {
    pub(super) id: u64,
    pub(super) peer: SocketAddr,
    /// When the connection was accepted.
    pub(super) started: Instant,
    pub(super) client: Rc<TcpStream>,
    pub(super) server: RefCell<Option<Rc<TcpStream>>>,
    /// Whether each toxic (by slot id) applies to this connection.
    pub(super) rolls: RefCell<HashMap<u64, bool>>,
    /// Reader-to-pump queues, by `Direction::index`.
    pub(super) queues: [Queue<Msg>; 2],
    threads: RefCell<Vec<GreenThread<()>>>,
    live: Cell<usize>,
    closed: Cell<bool>,
    finished: [Cell<bool>; 2],
}

impl Link {
    pub(super) fn new(id: u64, client: TcpStream, peer: SocketAddr) -> Link {
        Link {
            id,
            peer,
            started: crate::time::now(),
            client: Rc::new(client),
            server: RefCell::new(None),
            rolls: RefCell::new(HashMap::new()),
            queues: [Queue::bounded(QUEUED_CHUNKS), Queue::bounded(QUEUED_CHUNKS)],
            threads: RefCell::new(Vec::new()),
            live: Cell::new(0),
            closed: Cell::new(false),
            finished: [Cell::new(false), Cell::new(false)],
        }
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Makes idle pumps look at the toxics again.
    pub(super) fn wake(&self) {
        for q in &self.queues {
            let _ = q.try_put(Msg::Wake);
        }
    }

    /// Ends the connection: FIN to both peers (`Close`, `Eof`) or RST
    /// (`Reset`: `SO_LINGER` 0, so closing the sockets resets them), and
    /// kills the link's other green threads. Never blocks; idempotent.
    pub(super) fn close(&self, how: End) {
        if self.closed.replace(true) {
            return;
        }
        let server = self.server.borrow().clone();
        for s in std::iter::once(&self.client).chain(server.as_ref()) {
            let _ = match how {
                End::Reset => s.set_linger(Some(Duration::ZERO)),
                End::Eof | End::Close => s.shutdown(Shutdown::Both),
            };
        }
        let me = crate::current().id();
        for g in self.threads.borrow().iter() {
            if g.id() != me {
                g.kill();
            }
        }
    }

    /// Records that one direction has passed on its end of stream; when
    /// both have, the connection is over.
    pub(super) fn finish(&self, dir: Direction) {
        self.finished[dir.index()].set(true);
        if self.finished.iter().all(Cell::get) {
            self.close(End::Close);
        }
    }

    /// Spawns one of the link's green threads; it holds the link (and so
    /// its sockets) until it ends, and the last one to end removes the
    /// link from the proxy.
    pub(super) fn spawn(
        self: &Rc<Self>,
        shared: &Rc<Shared>,
        what: &str,
        f: impl FnOnce() + 'static,
    ) -> io::Result<()> {
        let guard = Guard {
            shared: shared.clone(),
            link: self.clone(),
        };
        self.live.set(self.live.get() + 1);
        let spawned = crate::Builder::new()
            .name(format!("chaos-{}-{}-{what}", shared.name, self.id))
            .spawn(move || {
                let _guard = guard;
                f();
            });
        // On failure the closure, and with it the guard, is already dropped.
        let g = spawned?;
        self.threads.borrow_mut().push(g);
        Ok(())
    }

    /// The handles of the link's green threads, taken out (to wait for).
    pub(super) fn take_threads(&self) -> Vec<GreenThread<()>> {
        std::mem::take(&mut *self.threads.borrow_mut())
    }
}

/// Held by each green thread of a link for as long as it runs.
struct Guard {
    shared: Rc<Shared>,
    link: Rc<Link>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let n = self.link.live.get() - 1;
        self.link.live.set(n);
        if n > 0 {
            return;
        }
        // Not while unwinding (a panic, or `sylvan::shutdown` force-unwinding
        // its green threads): the sockets close as the link is
        // dropped anyway.
        if !std::thread::panicking() {
            self.link.close(End::Close);
        }
        let removed = match self.shared.links.try_borrow_mut() {
            Ok(mut links) => links.remove(&self.link.id),
            Err(_) => None,
        };
        drop(removed);
    }
}

/// The first green thread of a link: connect upstream, start the others,
/// pump upstream.
pub(super) fn run(shared: Rc<Shared>, link: Rc<Link>) {
    let upstream = shared.upstream();
    let connected = Connector::new()
        .connect_timeout(shared.connect_timeout)
        .nodelay(true)
        .connect(upstream.as_str());
    let server = match connected {
        Ok(s) => Rc::new(s),
        Err(e) if Cancelled::from_io(&e).is_some() => return,
        Err(e) => {
            shared.upstream_failed();
            tracing::warn!(
                proxy = %shared.name,
                client = %link.peer,
                "chaos proxy cannot reach upstream {upstream}: {e}; closing the client connection"
            );
            link.close(End::Close);
            return;
        }
    };
    if link.is_closed() {
        return;
    }
    let _ = link.client.set_nodelay(true);
    *link.server.borrow_mut() = Some(server.clone());
    tracing::debug!(proxy = %shared.name, client = %link.peer, "chaos proxy connected to {upstream}");

    let started = (|| -> io::Result<()> {
        let (src, q) = (link.client.clone(), link.queues[0].clone());
        link.spawn(&shared, "read-up", move || read_loop(&src, &q))?;
        let (src, q) = (server.clone(), link.queues[1].clone());
        link.spawn(&shared, "read-down", move || read_loop(&src, &q))?;
        let down = Pump::new(Direction::Downstream, &shared, &link, link.client.clone());
        link.spawn(&shared, "pump-down", move || down.run())?;
        Ok(())
    })();
    if let Err(e) = started {
        tracing::error!(proxy = %shared.name, client = %link.peer, "chaos proxy cannot start a connection's green threads: {e}");
        link.close(End::Close);
        return;
    }
    Pump::new(Direction::Upstream, &shared, &link, server).run();
}

/// Moves chunks from `src` into `q` until the stream ends.
fn read_loop(src: &TcpStream, q: &Queue<Msg>) {
    let mut buf = vec![0; CHUNK];
    loop {
        let msg = match (&*src).read(&mut buf) {
            Ok(0) => Msg::End(crate::time::now(), End::Eof),
            Ok(n) => Msg::Data(crate::time::now(), buf[..n].to_vec()),
            Err(e) if Cancelled::from_io(&e).is_some() => return,
            Err(e) => Msg::End(crate::time::now(), End::after(&e)),
        };
        let last = matches!(msg, Msg::End(..));
        if q.put(msg).is_err() || last {
            return;
        }
    }
}
