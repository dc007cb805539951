//! The session loop: picks a server, connects, shakes hands, runs the
//! connection until it fails, and decides what the session's state is.
//!
//! Timing follows the Java client (`ClientCnxn`):
//!
//! - connect timeout per server = session timeout / number of servers
//!   (connect and handshake together);
//! - read timeout = 2/3 of the negotiated session timeout: a connection
//!   that hears nothing for that long is dropped;
//! - a ping after half the read timeout (or 10 s) without sending;
//! - before every attempt but the first, a random pause in [0, 1 s);
//! - the session is lost on the client when nothing was heard from any
//!   server for 4/3 of the negotiated session timeout (ZooKeeper 3.9.3),
//!   or when a server answers the reconnect with "session expired".

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::panic::Location;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::conn::{self, Conn};
use super::error::Error;
use super::proto::{self, ConnectRequest, ConnectResponse, Enc, op, xid};
use super::watch::Watches;
use crate::net::{Connector, TcpStream};
use crate::resilience::SessionState;
use crate::runtime::{self, WaitList};
use crate::sync::{Watch, WatchReceiver};

/// Resolves a host name (a test stub, or `None` for the system's).
pub(crate) type Resolver = Rc<dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>>>;

/// Settings fixed when the client is built.
pub(crate) struct Config {
    pub(crate) hosts: Vec<(String, u16)>,
    pub(crate) session_timeout: Duration,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) max_reply: usize,
    pub(crate) max_request: usize,
    pub(crate) reconnect_pause: Duration,
    pub(crate) resolver: Option<Resolver>,
}

/// SetWatches batches stay under this many bytes of paths (as the Java
/// client does, so a huge watch set never exceeds the server's limit).
const SET_WATCHES_BATCH: usize = 128 * 1024;
/// The Java client's longest ping interval.
const MAX_PING_INTERVAL: Duration = Duration::from_secs(10);

/// State shared by the client handles, the session loop and the reader.
pub(crate) struct Inner {
    pub(crate) cfg: Config,
    session_id: Cell<i64>,
    passwd: RefCell<Vec<u8>>,
    negotiated: Cell<Duration>,
    last_zxid: Cell<i64>,
    last_heard: Cell<Instant>,
    next_xid: Cell<i32>,
    state: Cell<Option<SessionState>>,
    conn: RefCell<Option<Rc<Conn>>>,
    server: Cell<Option<SocketAddr>>,
    pub(crate) watches: RefCell<Watches>,
    /// Woken whenever a connection is ready or the client closes.
    ready: RefCell<WaitList>,
    /// The state for [`Client::states`](super::Client::states) subscribers.
    states: Watch<Option<SessionState>>,
    closed: Cell<bool>,
    /// `close` sent closeSession: the end of the connection is expected.
    closing: Cell<bool>,
    last_error: RefCell<Option<String>>,
    /// What the attempt in progress is doing (for error messages).
    attempt: RefCell<Option<String>>,
}

impl Inner {
    pub(crate) fn new(cfg: Config) -> Inner {
        let t = cfg.session_timeout;
        Inner {
            cfg,
            session_id: Cell::new(0),
            passwd: RefCell::new(vec![0; 16]),
            negotiated: Cell::new(t),
            last_zxid: Cell::new(0),
            last_heard: Cell::new(crate::time::now()),
            next_xid: Cell::new(1),
            state: Cell::new(None),
            conn: RefCell::new(None),
            server: Cell::new(None),
            watches: RefCell::new(Watches::default()),
            ready: RefCell::new(WaitList::default()),
            states: Watch::new(None),
            closed: Cell::new(false),
            closing: Cell::new(false),
            last_error: RefCell::new(None),
            attempt: RefCell::new(None),
        }
    }

    pub(crate) fn state(&self) -> Option<SessionState> {
        self.state.get()
    }

    pub(crate) fn session_id(&self) -> Option<i64> {
        let id = self.session_id.get();
        (id != 0).then_some(id)
    }

    pub(crate) fn negotiated(&self) -> Duration {
        self.negotiated.get()
    }

    pub(crate) fn server(&self) -> Option<SocketAddr> {
        self.server.get()
    }

    pub(crate) fn last_zxid(&self) -> i64 {
        self.last_zxid.get()
    }

    /// Why no session could be made so far, in words.
    pub(crate) fn why_not_connected(&self) -> String {
        let last = self.last_error.borrow().clone();
        let now = self.attempt.borrow().clone();
        match (last, now) {
            (Some(l), Some(n)) => format!("last error: {l}; now {n}"),
            (Some(l), None) => format!("last error: {l}"),
            (None, Some(n)) => format!("no attempt finished yet; now {n}"),
            (None, None) => "no attempt started".to_string(),
        }
    }

    fn phase(&self, what: Option<String>) {
        *self.attempt.borrow_mut() = what;
    }

    /// `close` is ending the session: don't report or repair the
    /// connection's end.
    pub(crate) fn start_closing(&self) {
        self.closing.set(true);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    pub(crate) fn heard(&self) {
        self.last_heard.set(crate::time::now());
    }

    pub(crate) fn saw_zxid(&self, zxid: i64) {
        if zxid > self.last_zxid.get() {
            self.last_zxid.set(zxid);
        }
    }

    pub(crate) fn next_xid(&self) -> i32 {
        let x = self.next_xid.get();
        // xids ≤ 0 are reserved; wrap from i32::MAX back to 1.
        self.next_xid.set(if x == i32::MAX { 1 } else { x + 1 });
        x
    }

    pub(crate) fn watch_states(&self) -> WatchReceiver<Option<SessionState>> {
        self.states.subscribe()
    }

    fn set_state(&self, s: SessionState) {
        self.state.set(Some(s));
        tracing::debug!("sylvan zk: session {:#x} {s}", self.session_id.get());
        self.states.send(Some(s));
        self.ready.borrow_mut().wake_all();
    }

    /// The live connection, waiting (bounded by the caller's deadline) for
    /// one while the session is suspended or not yet established.
    #[track_caller]
    pub(crate) fn wait_connected(&self) -> Result<Rc<Conn>, Error> {
        let loc = Location::caller();
        loop {
            if self.closed.get() {
                return Err(Error::Closed);
            }
            if let Some(c) = self.conn.borrow().as_ref() {
                if !c.is_broken() {
                    return Ok(c.clone());
                }
            }
            runtime::wait_on(&self.ready, loc)?;
        }
    }

    /// Waits until any session state is reached (the first session).
    #[track_caller]
    pub(crate) fn wait_first(&self) -> Result<(), Error> {
        let loc = Location::caller();
        while self.state.get().is_none() {
            if self.closed.get() {
                return Err(Error::Closed);
            }
            runtime::wait_on(&self.ready, loc)?;
        }
        Ok(())
    }

    /// Stops everything without blocking: requests fail with `Closed`,
    /// waiters wake, the connection is shut down.
    pub(crate) fn shutdown(&self) {
        if self.closed.replace(true) {
            return;
        }
        if let Some(c) = self.conn.borrow_mut().take() {
            c.fail_all(&Error::Closed);
        }
        self.ready.borrow_mut().wake_all();
    }

    /// The session is gone (server said so, or 4/3 of its timeout passed
    /// without hearing from any server): forget it, fire every watch with
    /// `SessionLost`, and report `Lost`. The loop then makes a new one.
    fn lose_session(&self, why: &str) {
        tracing::warn!(
            "sylvan zk: session {:#x} lost: {why}",
            self.session_id.get()
        );
        self.session_id.set(0);
        *self.passwd.borrow_mut() = vec![0; 16];
        self.watches.borrow_mut().lose_all();
        if self.state.get().is_some() {
            self.set_state(SessionState::Lost);
        }
    }
}

/// The session loop; returns when the client is closed or the loop killed.
pub(crate) fn run(inner: Rc<Inner>) {
    let mut hosts = inner.cfg.hosts.clone();
    fastrand::shuffle(&mut hosts);
    let mut attempt: u64 = 0;
    loop {
        if inner.closed.get() || inner.closing.get() || runtime::check_cancelled().is_err() {
            return;
        }
        let (host, port) = hosts[(attempt % hosts.len() as u64) as usize].clone();
        let first = attempt == 0;
        attempt += 1;
        let expires = inner
            .session_id()
            .map(|_| inner.last_heard.get() + inner.negotiated.get() * 4 / 3);
        let try_once = || -> Result<(TcpStream, ConnectResponse), Error> {
            if !first && !inner.cfg.reconnect_pause.is_zero() {
                let max = inner.cfg.reconnect_pause.as_nanos() as u64;
                crate::sleep(Duration::from_nanos(fastrand::u64(0..max)))?;
            }
            handshake(&inner, &host, port, hosts.len())
        };
        let outcome = match expires {
            None => try_once(),
            Some(at) => match crate::deadline(at, try_once) {
                Ok(r) => r,
                Err(_) => {
                    let quiet = crate::time::now().duration_since(inner.last_heard.get());
                    inner.lose_session(&format!(
                        "nothing heard from any server for {quiet:?} (4/3 of the \
                         {:?} session timeout)",
                        inner.negotiated.get()
                    ));
                    continue;
                }
            },
        };
        match outcome {
            Ok((stream, resp)) => {
                if serve(&inner, stream, resp).is_err() {
                    return;
                }
            }
            Err(Error::SessionExpired) => {
                *inner.last_error.borrow_mut() = Some(format!(
                    "{host}:{port}: the server says the session expired"
                ));
                inner.lose_session("the server says it expired");
            }
            Err(Error::Cancelled(c)) if c.is_killed() => return,
            Err(e) => {
                tracing::debug!("sylvan zk: {host}:{port}: {e}");
                *inner.last_error.borrow_mut() = Some(format!("{host}:{port}: {e}"));
            }
        }
    }
}

/// Connects to one server and runs the ConnectRequest/Response handshake,
/// within the per-server connect timeout.
fn handshake(
    inner: &Inner,
    host: &str,
    port: u16,
    n_hosts: usize,
) -> Result<(TcpStream, ConnectResponse), Error> {
    let budget = (inner.negotiated.get() / n_hosts.max(1) as u32).max(Duration::from_millis(50));
    let body = || -> Result<(TcpStream, ConnectResponse), Error> {
        let mut c = Connector::new().nodelay(true);
        if let Some(r) = &inner.cfg.resolver {
            let r = r.clone();
            c = c.resolver(move |h, p| r(h, p));
        }
        inner.phase(Some(format!("connecting to {host}:{port}")));
        let stream = c
            .connect((host, port))
            .map_err(|e| match crate::Cancelled::from_io(&e) {
                Some(c) => Error::Cancelled(c),
                None => Error::Connect(e),
            })?;
        inner.phase(Some(format!(
            "connected to {host}:{port}, no handshake reply yet"
        )));
        let passwd = inner.passwd.borrow().clone();
        let req = ConnectRequest {
            last_zxid_seen: inner.last_zxid.get(),
            timeout_ms: inner.cfg.session_timeout.as_millis().min(i32::MAX as u128) as i32,
            session_id: inner.session_id.get(),
            passwd: &passwd,
        };
        let io_err = |doing: &str, e: io::Error| match crate::Cancelled::from_io(&e) {
            Some(c) => Error::Cancelled(c),
            None if e.kind() == io::ErrorKind::InvalidData => Error::Protocol(e.to_string()),
            None if e.kind() == io::ErrorKind::UnexpectedEof => Error::ConnectionLoss(
                "the server closed the connection during the handshake (not serving yet, \
                 or not a ZooKeeper server)"
                    .into(),
            ),
            None => Error::ConnectionLoss(conn::describe_io(doing, &e)),
        };
        proto::write_frame(&stream, &req.encode())
            .map_err(|e| io_err("sending the handshake", e))?;
        let frame = proto::read_frame(&stream, proto::MAX_CONNECT_RESPONSE)
            .map_err(|e| io_err("reading the handshake", e))?;
        let resp = ConnectResponse::decode(&frame)?;
        if resp.timeout_ms <= 0 {
            return Err(Error::SessionExpired);
        }
        Ok((stream, resp))
    };
    let r = crate::timeout(budget, body);
    inner.phase(None);
    match r {
        Ok(r) => r,
        Err(_) => Err(Error::ConnectionLoss(format!(
            "connect and handshake with {host}:{port} took longer than {budget:?} \
             (session timeout / number of servers)"
        ))),
    }
}

/// Kills the connection's green threads and ends it, however `serve`
/// returns (the loop may be killed while waiting).
struct ConnGuard {
    conn: Rc<Conn>,
    threads: Vec<crate::GreenThread<()>>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.conn.break_with("the client is shutting down".into());
        for t in &self.threads {
            t.kill();
        }
    }
}

/// Runs one established connection until it fails. `Err` means the loop
/// itself was killed.
fn serve(inner: &Rc<Inner>, stream: TcpStream, resp: ConnectResponse) -> Result<(), ()> {
    let old = inner.session_id.get();
    if old != 0 && old != resp.session_id {
        inner.lose_session("the server opened a different session");
    }
    let new_session = inner.session_id.get() != resp.session_id;
    inner.session_id.set(resp.session_id);
    *inner.passwd.borrow_mut() = resp.passwd;
    let t = Duration::from_millis(resp.timeout_ms as u64);
    inner.negotiated.set(t);
    inner.heard();
    let read_timeout = (t * 2 / 3).max(Duration::from_millis(1));
    let ping_every = (read_timeout / 2).min(MAX_PING_INTERVAL);
    let _ = stream.set_read_timeout(Some(read_timeout));
    let _ = stream.set_write_timeout(Some(read_timeout));
    let peer = stream.peer_addr().ok();
    let conn = Rc::new(Conn::new(stream));
    let mut guard = ConnGuard {
        conn: conn.clone(),
        threads: Vec::new(),
    };
    // Re-register every watch before any request can be queued behind it.
    if !new_session {
        for frame in set_watches_frames(inner) {
            conn.send_raw(frame);
        }
    }
    let spawned = (|| -> io::Result<()> {
        let c = conn.clone();
        guard.threads.push(
            crate::Builder::new()
                .name("sylvan-zk-writer")
                .stack_size(64 * 1024)
                .spawn(move || conn::writer(c, ping_every))?,
        );
        let (i, c, max) = (inner.clone(), conn.clone(), inner.cfg.max_reply);
        guard.threads.push(
            crate::Builder::new()
                .name("sylvan-zk-reader")
                .stack_size(128 * 1024)
                .spawn(move || conn::reader(i, c, max))?,
        );
        Ok(())
    })();
    if let Err(e) = spawned {
        *inner.last_error.borrow_mut() = Some(format!("cannot start connection threads: {e}"));
        return Ok(());
    }
    *inner.conn.borrow_mut() = Some(conn.clone());
    inner.server.set(peer);
    inner.set_state(if new_session {
        SessionState::Connected
    } else {
        SessionState::Reconnected
    });
    let why = conn.done.wait();
    inner.conn.borrow_mut().take();
    inner.server.set(None);
    drop(guard);
    let why = why.map_err(|_| ())?;
    if inner.closed.get() || inner.closing.get() {
        return Ok(());
    }
    tracing::debug!("sylvan zk: connection lost: {why}");
    *inner.last_error.borrow_mut() = Some(why);
    inner.set_state(SessionState::Suspended);
    Ok(())
}

/// SetWatches requests (opcode 101, xid −8) for every watch the session
/// holds, relative to the last zxid seen: the server fires at once any
/// watch whose node changed after it.
fn set_watches_frames(inner: &Inner) -> Vec<Vec<u8>> {
    let w = inner.watches.borrow();
    if w.is_empty() {
        return Vec::new();
    }
    let [data, exist, child] = w.paths();
    let mut all: Vec<(usize, String)> = Vec::new();
    all.extend(data.into_iter().map(|p| (0, p)));
    all.extend(exist.into_iter().map(|p| (1, p)));
    all.extend(child.into_iter().map(|p| (2, p)));
    let mut frames = Vec::new();
    let mut batch: [Vec<String>; 3] = Default::default();
    let mut size = 0;
    let flush = |batch: &mut [Vec<String>; 3], frames: &mut Vec<Vec<u8>>| {
        let mut e = Enc::request(xid::SET_WATCHES, op::SET_WATCHES);
        e.long(inner.last_zxid.get())
            .strings(&batch[0])
            .strings(&batch[1])
            .strings(&batch[2]);
        frames.push(e.finish());
        *batch = Default::default();
    };
    for (k, p) in all {
        size += p.len();
        batch[k].push(p);
        if size >= SET_WATCHES_BATCH {
            flush(&mut batch, &mut frames);
            size = 0;
        }
    }
    if batch.iter().any(|b| !b.is_empty()) {
        flush(&mut batch, &mut frames);
    }
    frames
}
