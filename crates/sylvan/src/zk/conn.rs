//! One live connection of a session: the pipelined request queue, the
//! writer green thread (requests and pings) and the reader green thread
//! (replies by xid, watch notifications).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::Shutdown;
use std::rc::Rc;
use std::time::Duration;

use super::error::Error;
use super::proto::{self, Dec, Enc, ReplyHeader, WatcherEvent, op, xid};
use super::session::Inner;
use super::watch::{WatchEvent, WatchKind};
use crate::net::TcpStream;
use crate::sync::{Event, Queue};

/// The outcome of one request: the reply's body, or why there is none.
pub(crate) type Reply = Result<Vec<u8>, Error>;

/// A request sent (or queued to be sent) and not answered yet.
pub(crate) struct Pending {
    pub(crate) xid: i32,
    pub(crate) op: i32,
    pub(crate) path: String,
    pub(crate) reply: Queue<Reply>,
    /// Where a watch goes if the reply says it was set.
    pub(crate) watch: Option<Queue<WatchEvent>>,
}

/// A connection after a successful handshake.
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    /// Frames for the writer, in the same order as `pending`.
    out: Queue<Vec<u8>>,
    /// Requests awaiting replies, oldest first: the server answers in
    /// order, so every numbered reply must match the front.
    pending: RefCell<VecDeque<Pending>>,
    broken: Cell<bool>,
    /// Why the connection ended; the session loop waits on it.
    pub(crate) done: Event<String>,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            out: Queue::unbounded(),
            pending: RefCell::new(VecDeque::new()),
            broken: Cell::new(false),
            done: Event::new(),
        }
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.broken.get()
    }

    /// Queues a frame that expects no numbered reply (SetWatches).
    pub(crate) fn send_raw(&self, frame: Vec<u8>) {
        let _ = self.out.try_put(frame);
    }

    /// Queues a request; its reply (or the connection's failure) arrives
    /// on `p.reply`. Never blocks.
    pub(crate) fn submit(&self, p: Pending, frame: Vec<u8>) {
        if self.broken.get() {
            let _ = p.reply.try_put(Err(Error::ConnectionLoss(
                "the connection is closing".into(),
            )));
            return;
        }
        self.pending.borrow_mut().push_back(p);
        let _ = self.out.try_put(frame);
    }

    /// Ends the connection (once): every request in flight fails with a
    /// connection loss naming `why`, the socket is shut down so the reader
    /// wakes, and the session loop is told. Never blocks.
    pub(crate) fn break_with(&self, why: String) {
        if self.broken.replace(true) {
            return;
        }
        let _ = self.stream.shutdown(Shutdown::Both);
        let failed: Vec<Pending> = self.pending.borrow_mut().drain(..).collect();
        for p in failed {
            let _ = p.reply.try_put(Err(Error::ConnectionLoss(why.clone())));
        }
        while self.out.try_get().is_some() {}
        let _ = self.done.send(why);
    }

    /// Like `break_with`, but the requests fail with `err` (e.g. `Closed`).
    pub(crate) fn fail_all(&self, err: &Error) {
        let failed: Vec<Pending> = self.pending.borrow_mut().drain(..).collect();
        for p in failed {
            let _ = p.reply.try_put(Err(err.duplicate()));
        }
        self.break_with(err.to_string());
    }
}

/// Writes queued frames; sends a ping after `ping_every` without sending
/// anything (the Java client's rule), so the server and our reader both
/// hear from each other while the session is idle.
pub(crate) fn writer(conn: Rc<Conn>, ping_every: Duration) {
    let why = loop {
        let frame = match crate::timeout(ping_every, || conn.out.get()) {
            Ok(Ok(f)) => f,
            Ok(Err(c)) => break format!("writer stopped: {c}"),
            Err(_) => Enc::request(xid::PING, op::PING).finish(),
        };
        if let Err(e) = proto::write_frame(&conn.stream, &frame) {
            break describe_io("sending", &e);
        }
    };
    conn.break_with(why);
}

/// Reads frames until the connection fails: replies complete their
/// requests in order; notifications go to the watch registry.
pub(crate) fn reader(inner: Rc<Inner>, conn: Rc<Conn>, max_frame: usize) {
    let why = loop {
        let frame = match proto::read_frame(&conn.stream, max_frame) {
            Ok(f) => f,
            Err(e) => break describe_io("reading", &e),
        };
        inner.heard();
        if let Err(e) = handle(&inner, &conn, &frame) {
            tracing::warn!("sylvan zk: dropping the connection: {e}");
            break e.to_string();
        }
    };
    conn.break_with(why);
}

fn handle(inner: &Inner, conn: &Conn, frame: &[u8]) -> Result<(), Error> {
    let mut d = Dec::new(frame, "reply");
    let h = ReplyHeader::decode(&mut d)?;
    match h.xid {
        xid::PING | xid::AUTH => Ok(()),
        xid::SET_WATCHES => {
            if h.err != 0 {
                tracing::warn!("sylvan zk: SetWatches failed with error {}", h.err);
            }
            Ok(())
        }
        xid::NOTIFICATION => {
            let mut d = Dec::new(&frame[16..], "watch notification");
            let ev = WatcherEvent::decode(&mut d)?;
            inner.watches.borrow_mut().dispatch(&ev);
            Ok(())
        }
        x => {
            // As the Java client: only numbered replies advance the zxid
            // the session has seen (what SetWatches is relative to).
            if h.zxid > 0 {
                inner.saw_zxid(h.zxid);
            }
            let Some(p) = conn.pending.borrow_mut().pop_front() else {
                return Err(Error::Protocol(format!(
                    "reply with xid {x} to no outstanding request"
                )));
            };
            if p.xid != x {
                let why = format!("reply xid {x} out of order (expected {})", p.xid);
                let _ = p.reply.try_put(Err(Error::Protocol(why.clone())));
                return Err(Error::Protocol(why));
            }
            if let Some(q) = p.watch {
                let kind = match (p.op, h.err) {
                    (op::EXISTS, 0) | (op::GET_DATA, 0) => Some(WatchKind::Data),
                    (op::EXISTS, -101) => Some(WatchKind::Exist),
                    (op::GET_CHILDREN, 0) => Some(WatchKind::Child),
                    _ => None,
                };
                if let Some(k) = kind {
                    inner.watches.borrow_mut().add(k, &p.path, q);
                }
            }
            let r = if h.err == 0 {
                Ok(frame[16..].to_vec())
            } else {
                Err(Error::server(h.err, &p.path))
            };
            let _ = p.reply.try_put(r);
            Ok(())
        }
    }
}

/// A connection failure in words a user can act on.
pub(crate) fn describe_io(doing: &str, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => "the server closed the connection".to_string(),
        io::ErrorKind::TimedOut if crate::Cancelled::from_io(e).is_none() => {
            format!("{doing}: nothing heard from the server in time ({e})")
        }
        _ => format!("{doing}: {e}"),
    }
}
