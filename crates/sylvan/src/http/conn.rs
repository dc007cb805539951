//! One HTTP/1.x connection: read a head, run the handler, write the
//! response, repeat while the connection may stay open.
//!
//! The engine is generic over [`Transport`], so the same code serves green
//! TCP streams and, for the fuzz target and the split-read tests, an
//! in-memory stream.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::body::{BodyKind, BodySource, BodyState, ChunkedDecoder};
use super::date;
use super::log;
use super::parse::{self, Framing, Head, HeadScan, Limits, Reject, Scan};
use super::request::{Request, RequestBody, Version};
use super::response::{self, Parts, Response, bodiless, push_hex, push_u64, push_value};
use super::upgrade::{Upgraded, UpgradedIo};
use crate::green::catch_panic;
use crate::net::TcpStream;
use crate::runtime::task::panic_message;
use crate::sync::Semaphore;

/// What the connection engine needs from a byte stream.
pub(crate) trait Transport: 'static {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn write(&self, buf: &[u8]) -> io::Result<usize>;
    /// The timeout of the following reads.
    fn set_read_timeout(&self, t: Option<Duration>);
    fn shutdown(&self, how: Shutdown);
    fn now(&self) -> Instant;
    /// The stream under this transport, for upgrades.
    fn into_upgraded(self) -> Option<UpgradedIo>;
}

impl Transport for TcpStream {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        io::Read::read(&mut &*self, buf)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        io::Write::write(&mut &*self, buf)
    }

    fn set_read_timeout(&self, t: Option<Duration>) {
        let _ = TcpStream::set_read_timeout(self, t.map(|d| d.max(Duration::from_millis(1))));
    }

    fn shutdown(&self, how: Shutdown) {
        let _ = TcpStream::shutdown(self, how);
    }

    fn now(&self) -> Instant {
        crate::time::now()
    }

    fn into_upgraded(self) -> Option<UpgradedIo> {
        Some(UpgradedIo::Tcp(self))
    }
}

/// Settings of a connection; built by [`Server`](super::Server).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) limits: Limits,
    pub(crate) header_timeout: Duration,
    pub(crate) keep_alive_timeout: Duration,
    pub(crate) io_timeout: Option<Duration>,
    pub(crate) keep_alive: bool,
    pub(crate) linger: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            header_timeout: Duration::from_secs(20),
            keep_alive_timeout: Duration::from_secs(60),
            io_timeout: Some(Duration::from_secs(60)),
            keep_alive: true,
            linger: Duration::from_secs(1),
        }
    }
}

/// What the server's stop needs to see of a connection.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    /// Waiting for the first byte of a request.
    pub(crate) idle: Cell<bool>,
    /// The server is stopping: finish the request in flight, then close.
    pub(crate) draining: Rc<Cell<bool>>,
}

impl ConnState {
    fn draining(&self) -> bool {
        self.draining.get()
    }
}

/// Unread body bytes the server reads and discards to keep a connection
/// open after a handler ignored the body; more than this closes it.
const DRAIN_LIMIT: u64 = 256 * 1024;
/// Reads at most this much while lingering before a close.
const LINGER_LIMIT: usize = 1024 * 1024;
/// Response bytes gathered before a write.
const WRITE_HIGH: usize = 64 * 1024;
const INITIAL_BUF: usize = 4096;

/// The connection's read buffer: `buf[start..end]` is unread.
#[derive(Debug)]
pub(crate) struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max: usize,
}

impl ReadBuf {
    fn new(max: usize) -> ReadBuf {
        ReadBuf {
            buf: vec![0; INITIAL_BUF.min(max)],
            start: 0,
            end: 0,
            max,
        }
    }

    /// The unread bytes (none while a read has the storage out).
    fn data(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Makes room after the unread bytes and lends out the storage for a
    /// read into `storage[end..]`; [`give_back`](Self::give_back) returns it.
    /// No `RefCell` borrow of the buffer is held while that read blocks.
    fn lend(&mut self) -> io::Result<(Vec<u8>, usize)> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < self.max {
                let len = self.buf.len().saturating_mul(2).clamp(1, self.max);
                self.buf.resize(len, 0);
            } else {
                return Err(io::Error::other("HTTP read buffer is full"));
            }
        }
        Ok((std::mem::take(&mut self.buf), self.end))
    }

    /// Takes back the storage lent by [`lend`](Self::lend), with `n` more
    /// bytes read into it.
    fn give_back(&mut self, storage: Vec<u8>, n: usize) {
        self.buf = storage;
        self.end += n;
    }

    fn into_rest(mut self) -> Vec<u8> {
        self.buf.truncate(self.end);
        self.buf.drain(..self.start);
        self.buf
    }
}

/// The state of one connection shared between its loop and the body of the
/// request being handled — which a handler may read from any green thread
/// of the hub, while the connection's green thread writes the response.
///
/// No `RefCell` borrow is ever held across a blocking call: the buffers are
/// borrowed only to copy in or out, and lent out (taken, then put back)
/// around the socket calls. Who may do those calls is decided by two
/// guards instead:
///
/// - **Writing**: one writer at a time (the `writer` semaphore). A writer
///   writes what is gathered in `wbuf` until it is empty, so bytes another
///   green thread adds meanwhile go out after the ones in flight, in order.
///   The response writer waits for its turn; a body reader that wants to
///   push pending bytes out before it blocks does not (the writer in
///   flight will write them), so it never waits on a client that waits
///   for it.
/// - **Reading**: one reader at a time (`reading`). A second one fails at
///   once rather than interleave: a handler's body read while the server
///   reads gets `ResourceBusy`; the server, finding a handler's read parked
///   after the response, closes the connection instead of draining it.
pub(crate) struct Shared<T> {
    pub(crate) io: T,
    rbuf: RefCell<ReadBuf>,
    wbuf: RefCell<Vec<u8>>,
    body: RefCell<BodyState>,
    reading: Cell<bool>,
    writer: Semaphore,
    /// Generation of the request being handled.
    seq: Cell<u64>,
    /// Generation of the request whose body the handler may still read
    /// (0 once the server itself reads the rest: drains it or lingers).
    open: Cell<u64>,
    continue_pending: Cell<bool>,
    cfg: Rc<Config>,
}

/// Holds the connection's read side; see [`Shared`].
struct Reading<'a>(&'a Cell<bool>);

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

fn busy_reading() -> io::Error {
    io::Error::new(
        io::ErrorKind::ResourceBusy,
        "the HTTP connection is being read by another green thread",
    )
}

impl<T: Transport> Shared<T> {
    pub(crate) fn new(io: T, cfg: Rc<Config>) -> Shared<T> {
        let max = cfg.limits.read_buffer_max();
        Shared {
            io,
            rbuf: RefCell::new(ReadBuf::new(max)),
            wbuf: RefCell::new(Vec::with_capacity(INITIAL_BUF)),
            body: RefCell::new(BodyState::Done),
            reading: Cell::new(false),
            writer: Semaphore::new(1),
            seq: Cell::new(0),
            open: Cell::new(0),
            continue_pending: Cell::new(false),
            cfg,
        }
    }

    /// Takes the read side, or `None` if another green thread has it.
    fn start_reading(&self) -> Option<Reading<'_>> {
        if self.reading.replace(true) {
            None
        } else {
            Some(Reading(&self.reading))
        }
    }

    /// One read from the socket into the read buffer; the caller holds
    /// [`Reading`].
    fn fill(&self, _: &Reading<'_>) -> io::Result<usize> {
        let (mut storage, end) = self.rbuf.borrow_mut().lend()?;
        let r = self.io.read(&mut storage[end..]);
        let n = *r.as_ref().unwrap_or(&0);
        self.rbuf.borrow_mut().give_back(storage, n);
        r
    }

    fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.io.write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Appends to what the response writer gathered.
    fn gather(&self, f: impl FnOnce(&mut Vec<u8>)) {
        f(&mut self.wbuf.borrow_mut());
    }

    fn gathered(&self) -> usize {
        self.wbuf.borrow().len()
    }

    /// Writes out what is gathered until nothing is left; the caller holds
    /// the writer permit.
    fn write_gathered(&self) -> io::Result<()> {
        loop {
            let mut out = std::mem::take(&mut *self.wbuf.borrow_mut());
            let r = if out.is_empty() {
                Ok(())
            } else {
                self.write_all(&out)
            };
            let done = out.is_empty();
            out.clear();
            let mut w = self.wbuf.borrow_mut();
            if w.is_empty() && w.capacity() < out.capacity() {
                *w = out; // keep the grown buffer
            }
            drop(w);
            if done || r.is_err() {
                return r;
            }
        }
    }

    /// Writes out what the response writer gathered, after any write in
    /// flight in another green thread of this connection.
    fn flush(&self) -> io::Result<()> {
        if self.gathered() == 0 && self.writer.available_permits() > 0 {
            return Ok(());
        }
        let _permit = self.writer.acquire()?;
        self.write_gathered()
    }

    /// As [`flush`](Self::flush), but if another green thread is writing,
    /// leaves the gathered bytes to it instead of waiting.
    fn try_flush(&self) -> io::Result<()> {
        match self.writer.try_acquire() {
            Some(_permit) => self.write_gathered(),
            None => Ok(()),
        }
    }

    /// Writes what is gathered, then `bytes`, as one writer.
    fn write_through(&self, bytes: &[u8]) -> io::Result<()> {
        let _permit = self.writer.acquire()?;
        self.write_gathered()?;
        self.write_all(bytes)
    }

    fn set_read_deadline(&self, remaining: Duration) {
        let t = match self.cfg.io_timeout {
            Some(io) => remaining.min(io),
            None => remaining,
        };
        self.io.set_read_timeout(Some(t));
    }

    /// Reads body bytes; the caller holds the read side.
    fn read_body_with(&self, reading: &Reading<'_>, buf: &mut [u8]) -> io::Result<usize> {
        let max_body = self.cfg.limits.max_body;
        loop {
            {
                let mut body = self.body.borrow_mut();
                match &*body {
                    BodyState::Done => return Ok(0),
                    BodyState::Failed(Some(e)) => return Err(e.into_io()),
                    BodyState::Failed(None) => {
                        return Err(io::Error::other(
                            "request body cannot be read after an earlier error",
                        ));
                    }
                    _ => {}
                }
                if self.continue_pending.replace(false) {
                    self.gather(|w| w.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n"));
                }
                let mut rb = self.rbuf.borrow_mut();
                if !rb.is_empty() {
                    let (c, p) = body
                        .decode(rb.data(), buf, max_body)
                        .map_err(|e| e.into_io())?;
                    rb.consume(c);
                    if p > 0 || body.is_done() {
                        return Ok(p);
                    }
                    if !rb.is_empty() && c > 0 {
                        continue;
                    }
                }
            }
            // Bytes the client may be waiting for (a 100 Continue, a
            // response) go out before we wait for its body.
            let r = self.try_flush().and_then(|()| {
                self.io.set_read_timeout(self.cfg.io_timeout);
                self.fill(reading)
            });
            let err = match r {
                Ok(0) => io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before the end of the request body",
                ),
                Ok(_) => continue,
                Err(e) => e,
            };
            *self.body.borrow_mut() = BodyState::Failed(None);
            return Err(err);
        }
    }
}

impl<T: Transport> BodySource for Shared<T> {
    fn read_body(&self, seq: u64, buf: &mut [u8]) -> io::Result<usize> {
        if seq != self.open.get() {
            return Err(io::Error::other(
                "request body read after its response was sent",
            ));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let Some(reading) = self.start_reading() else {
            return Err(busy_reading());
        };
        self.read_body_with(&reading, buf)
    }
}

enum HeadRead {
    Head(Head),
    /// End of stream or idle timeout before a request began: close quietly.
    Closed,
    Reject(Reject),
    /// The head did not arrive in time: 408.
    TimedOut,
}

fn is_timeout(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut && crate::Cancelled::from_io(e).is_none()
}

/// Reads the next request head, applying the header and keep-alive
/// timeouts.
fn read_head<T: Transport>(
    sh: &Shared<T>,
    conn_start: Instant,
    first: bool,
    track: Option<&ConnState>,
) -> HeadRead {
    let cfg = &*sh.cfg;
    let Some(reading) = sh.start_reading() else {
        return HeadRead::Closed;
    };
    let mut deadline = first.then(|| conn_start + cfg.header_timeout);
    let mut scan = HeadScan::default();
    loop {
        {
            let mut rb = sh.rbuf.borrow_mut();
            loop {
                match scan.scan(rb.data(), &cfg.limits) {
                    Ok(Scan::Skip(n)) => rb.consume(n),
                    Ok(Scan::Partial) => break,
                    Ok(Scan::Parse) => match parse::parse_head(rb.data(), &cfg.limits) {
                        Ok(Some((head, n))) => {
                            rb.consume(n);
                            return HeadRead::Head(head);
                        }
                        Ok(None) => break,
                        Err(r) => return HeadRead::Reject(r),
                    },
                    Err(r) => return HeadRead::Reject(r),
                }
            }
        }
        if sh.flush().is_err() {
            return HeadRead::Closed;
        }
        let empty = sh.rbuf.borrow().is_empty();
        if empty {
            if let Some(t) = track {
                if t.draining() {
                    return HeadRead::Closed;
                }
                t.idle.set(true);
            }
        }
        match deadline {
            None if empty => sh.io.set_read_timeout(Some(cfg.keep_alive_timeout)),
            None => {
                deadline = Some(sh.io.now() + cfg.header_timeout);
                sh.set_read_deadline(cfg.header_timeout);
            }
            Some(d) => {
                let left = d.saturating_duration_since(sh.io.now());
                if left.is_zero() {
                    return if empty {
                        HeadRead::Closed
                    } else {
                        HeadRead::TimedOut
                    };
                }
                sh.set_read_deadline(left);
            }
        }
        let r = sh.fill(&reading);
        if let Some(t) = track {
            t.idle.set(false);
        }
        match r {
            Ok(0) => return HeadRead::Closed,
            // The header timeout runs from the first byte (in practice from
            // the first read that found the head incomplete, microseconds
            // later: the clock is read only when the head needs more reads).
            Ok(_) => {}
            Err(e) if is_timeout(&e) && !sh.rbuf.borrow().is_empty() => return HeadRead::TimedOut,
            Err(_) => return HeadRead::Closed,
        }
    }
}

/// What the access log and the response writer need of the request.
struct ReqInfo {
    version: Version,
    is_head: bool,
    log: Option<(String, String)>,
}

/// Serves one connection until it closes.
pub(crate) fn serve<T: Transport>(
    sh: Rc<Shared<T>>,
    handler: &dyn Fn(Request) -> Response,
    peer: SocketAddr,
    track: Option<&ConnState>,
) {
    let start = sh.io.now();
    let mut first = true;
    loop {
        let head = match read_head(&sh, start, first, track) {
            HeadRead::Head(h) => h,
            HeadRead::Closed => return,
            HeadRead::Reject(r) => {
                send_error(&sh, r.status(), r.message(), peer);
                linger(&sh);
                return;
            }
            HeadRead::TimedOut => {
                send_error(&sh, 408, "timed out reading the request head", peer);
                linger(&sh);
                return;
            }
        };
        first = false;
        match handle_one(&sh, head, handler, peer, track) {
            Next::KeepAlive => {}
            Next::Close => {
                let _ = sh.flush();
                return;
            }
            Next::Linger => {
                linger(&sh);
                return;
            }
            Next::Upgrade(f) => {
                upgrade(sh, f);
                return;
            }
        }
    }
}

enum Next {
    KeepAlive,
    Close,
    Linger,
    Upgrade(Box<dyn FnOnce(Upgraded)>),
}

fn handle_one<T: Transport>(
    sh: &Rc<Shared<T>>,
    head: Head,
    handler: &dyn Fn(Request) -> Response,
    peer: SocketAddr,
    track: Option<&ConnState>,
) -> Next {
    let cfg = &*sh.cfg;
    let seq = sh.seq.get() + 1;
    sh.seq.set(seq);
    sh.open.set(seq);
    let framing = head.framing;
    *sh.body.borrow_mut() = match framing {
        Framing::None => BodyState::Done,
        Framing::Length(n) => BodyState::Length(n),
        Framing::Chunked => BodyState::Chunked {
            dec: ChunkedDecoder::new(cfg.limits.max_header_bytes),
            total: 0,
        },
    };
    sh.continue_pending
        .set(head.expect_continue && framing != Framing::None);
    let info = ReqInfo {
        version: head.version,
        is_head: head.is_head(),
        log: log::enabled().then(|| (head.method().to_owned(), head.target().to_owned())),
    };
    let keep_alive = head.keep_alive && cfg.keep_alive;
    let body = match framing {
        Framing::None => RequestBody::empty(),
        _ => RequestBody::new(sh.clone() as Rc<dyn BodySource>, seq),
    };
    let started = info.log.is_some().then(|| sh.io.now());
    sh.io.set_read_timeout(cfg.io_timeout);
    let req = Request::new(head, peer, body);
    let mut panicked = false;
    let resp = match catch_panic(|| handler(req)) {
        Ok(r) => r,
        Err(p) => {
            let msg = panic_message(p.as_ref());
            tracing::error!(target: "sylvan::http", %peer, "handler panicked: {msg}");
            panicked = true;
            Response::status_page(500)
        }
    };
    let failure = match &*sh.body.borrow() {
        BodyState::Failed(Some(e)) => Some(*e),
        _ => None,
    };
    let resp = match failure {
        Some(super::body::BodyError::TooLarge) => Response::status_page(413),
        Some(super::body::BodyError::Malformed(m)) => {
            Response::text(format!("400 Bad Request: {m}\n")).with_status(400)
        }
        None => resp,
    };
    let mut parts = resp.into_parts();
    let user_close = parts.headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("connection")
            && parse::list(v.as_bytes()).any(|t| t.eq_ignore_ascii_case(b"close"))
    });
    let upgrade = parts.upgrade.take().filter(|_| {
        (parts.status == 101 || (200..300).contains(&parts.status))
            && sh.body.borrow().is_done()
            && !info.is_head
    });
    // A streamed response body is sent after a pending 100 Continue (it may
    // be reading the request body). Otherwise, once the final response is
    // out, the 100 Continue can no longer be sent and the client may or may
    // not send the body: close.
    let streams = matches!(parts.body, BodyKind::Reader(..))
        && !(bodiless(parts.status) || info.is_head || upgrade.is_some());
    let no_continue = sh.continue_pending.get() && !streams;
    let body_state_ok = match &*sh.body.borrow() {
        BodyState::Done => true,
        BodyState::Length(n) => *n <= DRAIN_LIMIT && !no_continue,
        BodyState::Chunked { .. } => !no_continue,
        BodyState::Failed(_) => false,
    };
    let mut close = !keep_alive
        || panicked
        || failure.is_some()
        || user_close
        || !body_state_ok
        || track.is_some_and(ConnState::draining);
    let sent = write_response(sh, &mut parts, &info, &mut close, upgrade.is_some());
    if let (Some((method, target)), Some(started)) = (&info.log, started) {
        let elapsed = sh.io.now().saturating_duration_since(started);
        log::access(
            peer,
            method,
            target,
            info.version,
            parts.status,
            sent.as_ref().ok().copied(),
            elapsed,
        );
    }
    if sent.is_err() {
        return Next::Close;
    }
    if let Some(f) = upgrade {
        return Next::Upgrade(f);
    }
    let unread = !sh.body.borrow().is_done();
    if close {
        return if unread || !sh.rbuf.borrow().is_empty() {
            Next::Linger
        } else {
            Next::Close
        };
    }
    if unread && !drain_body(sh) {
        return Next::Linger;
    }
    // Responses to pipelined requests already buffered go out together.
    let pipelined = !sh.rbuf.borrow().is_empty();
    if (!pipelined || sh.gathered() >= WRITE_HIGH) && sh.flush().is_err() {
        return Next::Close;
    }
    Next::KeepAlive
}

/// Reads and discards the rest of a body the handler left, up to
/// [`DRAIN_LIMIT`]; `false` if the connection cannot be reused.
///
/// A read of the handler's still parked (in another green thread) keeps
/// the body: then the connection closes instead.
fn drain_body<T: Transport>(sh: &Shared<T>) -> bool {
    let Some(reading) = sh.start_reading() else {
        return false;
    };
    // From here on the rest of the body is the server's: the handler's
    // reads fail rather than miss the bytes drained.
    sh.open.set(0);
    let mut scratch = [0u8; 4096];
    let mut total = 0u64;
    loop {
        match sh.read_body_with(&reading, &mut scratch) {
            Ok(0) => return true,
            Ok(n) => {
                total += n as u64;
                if total > DRAIN_LIMIT {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
}

/// Serializes and sends a response; returns the body bytes sent.
fn write_response<T: Transport>(
    sh: &Shared<T>,
    parts: &mut Parts,
    info: &ReqInfo,
    close: &mut bool,
    upgrading: bool,
) -> io::Result<u64> {
    let status = parts.status;
    let no_body = bodiless(status) || info.is_head || upgrading;
    let mut length = match &parts.body {
        BodyKind::Bytes(b) => Some(b.len() as u64),
        BodyKind::Reader(_, n) => *n,
    };
    if length.is_none() {
        length = parts
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok());
    }
    let chunked = !no_body && length.is_none() && info.version == Version::Http11;
    if !no_body && length.is_none() && !chunked {
        *close = true; // HTTP/1.0: the end of the body is the end of the connection
    }
    if sh.continue_pending.get() && matches!(parts.body, BodyKind::Reader(..)) && !no_body {
        // A streamed response may be reading the request body: the client
        // must have been told to send it first.
        sh.continue_pending.set(false);
        sh.gather(|w| w.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n"));
    }
    // Past the final response's head, a 100 Continue would be out of
    // place, even from a body read in another green thread.
    sh.continue_pending.set(false);
    sh.gather(|w| write_head(w, parts, length, chunked, *close, upgrading, info));
    if no_body {
        if upgrading {
            sh.flush()?;
        }
        return Ok(0);
    }
    match &mut parts.body {
        BodyKind::Bytes(b) => {
            if b.len() <= WRITE_HIGH {
                sh.gather(|w| w.extend_from_slice(b));
            } else {
                sh.write_through(b)?;
            }
            Ok(b.len() as u64)
        }
        BodyKind::Reader(r, _) => {
            let sent = stream_body(sh, r.as_mut(), length, chunked);
            if sent.is_err() {
                *close = true;
            }
            sent
        }
    }
}

fn stream_body<T: Transport>(
    sh: &Shared<T>,
    r: &mut dyn io::Read,
    length: Option<u64>,
    chunked: bool,
) -> io::Result<u64> {
    let mut scratch = vec![0u8; 16 * 1024];
    let mut sent = 0u64;
    loop {
        let want = match length {
            Some(n) if sent >= n => break,
            Some(n) => scratch
                .len()
                .min(usize::try_from(n - sent).unwrap_or(usize::MAX)),
            None => scratch.len(),
        };
        let n = match r.read(&mut scratch[..want]) {
            Ok(0) => {
                if let Some(len) = length {
                    let _ = sh.flush();
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("response body ended after {sent} of {len} bytes"),
                    ));
                }
                break;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(target: "sylvan::http", "response body failed: {e}");
                let _ = sh.flush();
                return Err(e);
            }
        };
        sh.gather(|w| {
            if chunked {
                push_hex(w, n as u64);
                w.extend_from_slice(b"\r\n");
                w.extend_from_slice(&scratch[..n]);
                w.extend_from_slice(b"\r\n");
            } else {
                w.extend_from_slice(&scratch[..n]);
            }
        });
        sent += n as u64;
        if sh.gathered() >= WRITE_HIGH {
            sh.flush()?;
        }
    }
    if chunked {
        sh.gather(|w| w.extend_from_slice(b"0\r\n\r\n"));
    }
    Ok(sent)
}

fn write_head(
    w: &mut Vec<u8>,
    parts: &Parts,
    length: Option<u64>,
    chunked: bool,
    close: bool,
    upgrading: bool,
    info: &ReqInfo,
) {
    let status = parts.status;
    w.extend_from_slice(b"HTTP/1.1 ");
    push_u64(w, u64::from(status));
    w.push(b' ');
    w.extend_from_slice(response::reason(status).as_bytes());
    w.extend_from_slice(b"\r\n");
    let mut has_date = false;
    for (name, value) in &parts.headers {
        let skip = name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("connection");
        if skip {
            continue;
        }
        if !response::valid_name(name) {
            tracing::warn!(target: "sylvan::http", "dropping response header with invalid name {name:?}");
            continue;
        }
        has_date |= name.eq_ignore_ascii_case("date");
        w.extend_from_slice(name.as_bytes());
        w.extend_from_slice(b": ");
        push_value(w, value);
        w.extend_from_slice(b"\r\n");
    }
    if !has_date {
        w.extend_from_slice(b"Date: ");
        date::with_http_date(|d| w.extend_from_slice(d));
        w.extend_from_slice(b"\r\n");
    }
    if upgrading {
        w.extend_from_slice(b"Connection: Upgrade\r\n");
    } else {
        if chunked {
            w.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        } else if let Some(n) = length {
            if !(100..200).contains(&status) && status != 204 && status != 304 {
                w.extend_from_slice(b"Content-Length: ");
                push_u64(w, n);
                w.extend_from_slice(b"\r\n");
            }
        }
        if close {
            w.extend_from_slice(b"Connection: close\r\n");
        } else if info.version == Version::Http10 {
            w.extend_from_slice(b"Connection: keep-alive\r\n");
        }
    }
    w.extend_from_slice(b"\r\n");
}

/// A response the server makes itself (limits, timeouts), then close.
fn send_error<T: Transport>(sh: &Shared<T>, status: u16, msg: &str, peer: SocketAddr) {
    let body = format!("{status} {}: {msg}\n", response::reason(status));
    let parts = Response::text(body).with_status(status).into_parts();
    let info = ReqInfo {
        version: Version::Http11,
        is_head: false,
        log: None,
    };
    let len = match &parts.body {
        BodyKind::Bytes(b) => b.len(),
        BodyKind::Reader(..) => 0,
    };
    sh.gather(|w| {
        write_head(w, &parts, Some(len as u64), false, true, false, &info);
        if let BodyKind::Bytes(b) = &parts.body {
            w.extend_from_slice(b);
        }
    });
    tracing::debug!(target: "sylvan::http", %peer, status, "rejected request: {msg}");
    if log::enabled() {
        log::access(
            peer,
            "-",
            "-",
            Version::Http11,
            status,
            Some(len as u64),
            Duration::ZERO,
        );
    }
    let _ = sh.flush();
}

/// Closes without losing the response to a reset: shut down our side,
/// then read and discard what the client still sends, for a little while.
fn linger<T: Transport>(sh: &Shared<T>) {
    if sh.flush().is_err() {
        return;
    }
    sh.io.shutdown(Shutdown::Write);
    let Some(reading) = sh.start_reading() else {
        return;
    };
    sh.open.set(0);
    let until = sh.io.now() + sh.cfg.linger;
    let mut total = 0;
    while total < LINGER_LIMIT {
        let left = until.saturating_duration_since(sh.io.now());
        if left.is_zero() {
            break;
        }
        sh.io.set_read_timeout(Some(left));
        {
            let mut rb = sh.rbuf.borrow_mut();
            let n = rb.data().len();
            rb.consume(n);
        }
        match sh.fill(&reading) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

fn upgrade<T: Transport>(sh: Rc<Shared<T>>, f: Box<dyn FnOnce(Upgraded)>) {
    match Rc::try_unwrap(sh) {
        Ok(sh) => {
            let rest = sh.rbuf.into_inner().into_rest();
            if let Some(io) = sh.io.into_upgraded() {
                f(Upgraded::new(io, rest));
            }
        }
        Err(_) => {
            tracing::warn!(target: "sylvan::http", "cannot upgrade: a request body of this connection is still alive");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::io::Read;

    use super::*;
    use crate::sync::{Event, Queue};

    /// Reads return `input` in turn, then (once) wait for `more` to bring
    /// more bytes, then end of stream; the first write parks until `gate`
    /// is set, as a write to a full socket would.
    struct GatedIo {
        input: RefCell<VecDeque<Vec<u8>>>,
        more: RefCell<Option<Rc<Event<Vec<u8>>>>>,
        output: Rc<RefCell<Vec<u8>>>,
        gate: Rc<Event<()>>,
        wrote: Cell<bool>,
    }

    impl GatedIo {
        fn new(input: &[&[u8]], output: &Rc<RefCell<Vec<u8>>>, gate: &Rc<Event<()>>) -> GatedIo {
            GatedIo {
                input: RefCell::new(input.iter().map(|c| c.to_vec()).collect()),
                more: RefCell::new(None),
                output: output.clone(),
                gate: gate.clone(),
                wrote: Cell::new(false),
            }
        }
    }

    impl Transport for GatedIo {
        fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
            if self.input.borrow().is_empty() {
                let more = self.more.borrow_mut().take();
                if let Some(more) = more {
                    let bytes = more.wait()?;
                    self.input.borrow_mut().push_back(bytes);
                }
            }
            let Some(mut chunk) = self.input.borrow_mut().pop_front() else {
                return Ok(0);
            };
            let n = chunk.len().min(buf.len());
            buf[..n].copy_from_slice(&chunk[..n]);
            if n < chunk.len() {
                chunk.drain(..n);
                self.input.borrow_mut().push_front(chunk);
            }
            Ok(n)
        }

        fn write(&self, buf: &[u8]) -> io::Result<usize> {
            if !self.wrote.replace(true) {
                self.gate.wait()?;
            }
            self.output.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn set_read_timeout(&self, _: Option<Duration>) {}

        fn shutdown(&self, _: Shutdown) {}

        fn now(&self) -> Instant {
            Instant::now()
        }

        fn into_upgraded(self) -> Option<UpgradedIo> {
            None
        }
    }

    /// A response body fed by a queue (an empty chunk ends it); its second
    /// read opens `gate`.
    struct QueueReader {
        q: Queue<Vec<u8>>,
        pending: Vec<u8>,
        calls: usize,
        gate: Rc<Event<()>>,
    }

    impl Read for QueueReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls == 2 {
                let _ = self.gate.send(());
            }
            if self.pending.is_empty() {
                self.pending = self.q.get()?;
                if self.pending.is_empty() {
                    return Ok(0);
                }
            }
            let n = self.pending.len().min(buf.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            Ok(n)
        }
    }

    /// Decodes a chunked body that follows a response head.
    fn dechunk(out: &[u8]) -> Vec<u8> {
        let at = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let mut rest = &out[at..];
        let mut body = Vec::new();
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
            rest = &rest[eol + 2..];
            if size == 0 {
                assert_eq!(rest, b"\r\n");
                return body;
            }
            body.extend_from_slice(&rest[..size]);
            assert_eq!(&rest[size..size + 2], b"\r\n");
            rest = &rest[size + 2..];
        }
    }

    /// Issue item 8: the handler reads the body in a second green thread,
    /// which flushes pending response bytes before it blocks to read; that
    /// write parks (full socket) while the connection's green thread keeps
    /// streaming the response — and then has to flush too. Every byte goes
    /// out once, in order, and the body is read whole.
    #[test]
    fn body_read_in_another_green_thread_while_the_response_is_flushed() {
        let gate = Rc::new(Event::new());
        let output = Rc::new(RefCell::new(Vec::new()));
        let io = GatedIo::new(
            &[
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234",
                b"56789",
            ],
            &output,
            &gate,
        );
        let filler = vec![b'f'; 70 * 1024];
        let read_result = Rc::new(RefCell::new(None));
        let result = read_result.clone();
        let handler = move |req: Request| {
            let q = Queue::unbounded();
            let feed = q.clone();
            let filler = filler.clone();
            let result = result.clone();
            let mut body = req.into_body();
            crate::spawn(move || {
                let mut seen = Vec::new();
                let r = loop {
                    let mut buf = [0u8; 64];
                    match body.read(&mut buf) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            seen.extend_from_slice(&buf[..n]);
                            feed.put(buf[..n].to_vec()).unwrap();
                            if seen.len() == n {
                                feed.put(filler.clone()).unwrap();
                            }
                        }
                        Err(e) => break Err(e.to_string()),
                    }
                };
                *result.borrow_mut() = Some(r.map(|()| seen));
                feed.put(Vec::new()).unwrap();
            });
            Response::from_reader(QueueReader {
                q,
                pending: Vec::new(),
                calls: 0,
                gate: gate.clone(),
            })
        };
        let sh = Rc::new(Shared::new(io, Rc::new(Config::default())));
        serve(sh, &handler, SocketAddr::from(([192, 0, 2, 1], 1)), None);
        assert_eq!(
            read_result.take(),
            Some(Ok(b"0123456789".to_vec())),
            "the second green thread read the whole body"
        );
        let out = output.borrow();
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
        let mut want = b"01234".to_vec();
        want.extend_from_slice(&[b'f'; 70 * 1024]);
        want.extend_from_slice(b"56789");
        assert!(dechunk(&out) == want, "response body out of order");
    }

    /// Issue item 8: a body read still parked in another green thread
    /// when the response has been written. The connection does not drain
    /// the body behind the reader's back (it closes instead), and the
    /// reader's read completes.
    #[test]
    fn a_body_read_parked_past_the_response_closes_the_connection() {
        let gate = Rc::new(Event::new());
        gate.send(()).unwrap(); // writes never park here
        let more = Rc::new(Event::new());
        let output = Rc::new(RefCell::new(Vec::new()));
        let io = GatedIo::new(
            &[b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"],
            &output,
            &gate,
        );
        *io.more.borrow_mut() = Some(more.clone());
        let reader = Rc::new(RefCell::new(None));
        let r = reader.clone();
        let handler = move |req: Request| {
            let mut body = req.into_body();
            let started = Rc::new(Event::new());
            let s = started.clone();
            *r.borrow_mut() = Some(crate::spawn(move || {
                s.send(()).unwrap();
                let mut text = String::new();
                body.read_to_string(&mut text).map(|_| text)
            }));
            started.wait().unwrap(); // the reader runs until its read parks
            Response::text("ok")
        };
        let sh = Rc::new(Shared::new(io, Rc::new(Config::default())));
        serve(sh, &handler, SocketAddr::from(([192, 0, 2, 1], 1)), None);
        let out = String::from_utf8(output.borrow().clone()).unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\nok"), "{out}");
        more.send(b"abc".to_vec()).unwrap();
        let read = reader.take().unwrap().join().unwrap();
        assert_eq!(read.unwrap(), "abc");
    }

    /// Serves `chunks` as successive reads (see `serve_chunks`) and
    /// returns the transcript and how many times a head was parsed.
    fn parses(chunks: &[&[u8]]) -> (String, usize) {
        parse::PARSE_CALLS.with(|c| c.set(0));
        let t = crate::http::__private::serve_chunks(chunks);
        (t, parse::PARSE_CALLS.with(Cell::get))
    }

    /// Issue item 12: a head arriving a byte at a time is parsed when its
    /// request line is complete (to refuse a bad one early) and when its
    /// end has arrived — not once per line.
    #[test]
    fn a_head_is_parsed_at_most_twice_however_it_is_split() {
        let mut head = b"GET /a HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..12 {
            head.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        head.extend_from_slice(b"Connection: close\r\n\r\n");
        let (t, n) = parses(&head.chunks(1).collect::<Vec<_>>());
        assert!(t.contains("HTTP/1.1 200 OK\r\n"), "{t}");
        assert!(n <= 2, "{n} parses of one head");
    }

    /// Issue item 12: empty lines before a request line are ignored, a
    /// few of them (RFC 9112 §2.2); a client that keeps sending them gets
    /// a 400 without any parse of its growing buffer.
    #[test]
    fn leading_empty_lines_are_bounded() {
        let few: &[&[u8]] = &[
            b"\r\n",
            b"\n",
            b"\r",
            b"\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ];
        let (t, n) = parses(few);
        assert!(t.contains("HTTP/1.1 200 OK\r\n"), "{t}");
        assert!(n <= 2, "{n}");

        let (t, n) = parses(&[b"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"]);
        assert!(t.contains("HTTP/1.1 400 Bad Request\r\n"), "{t}");
        assert!(t.contains("empty lines"), "{t}");
        assert_eq!(n, 0);

        let flood = vec![&b"\r\n"[..]; 65_536];
        let (t, n) = parses(&flood);
        assert!(t.contains("HTTP/1.1 400 Bad Request\r\n"), "{t}");
        assert_eq!(n, 0, "parsed a buffer of empty lines");
    }
}
