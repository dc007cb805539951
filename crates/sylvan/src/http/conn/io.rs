//! The buffered side of a connection: its read buffer, the response bytes
//! gathered before a write, and the guards that let the connection's green
//! thread and a handler's body reader share them.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use super::super::body::BodyState;
use super::{Config, Transport};
use crate::sync::Semaphore;

/// Response bytes gathered before a write.
pub(super) const WRITE_HIGH: usize = 64 * 1024;
/// The size of a read buffer, and of a fresh write buffer.
const INITIAL_BUF: usize = 4096;
/// Spare buffers kept per OS thread, of each kind.
const SPARE_MAX: usize = 32;
/// Write buffers larger than this are dropped rather than kept spare.
const SPARE_WRITE_MAX: usize = 4 * INITIAL_BUF;

/// Buffers of this OS thread's connections that wait for a request,
/// kept for the next connection that has one to read or a response to
/// write. A connection holds buffers only while it works: it lets them go
/// when it has nothing unread and nothing to write, before it parks, and
/// takes spare ones when it wakes (hyper's buffers are allocated on demand
/// and dropped when empty in the same way). The spares make that free on
/// a busy server: the connections that run one after the other in a hub's
/// turn pass the same few warm buffers along instead of allocating them,
/// and idle ones hold none.
#[derive(Default)]
struct Spare {
    read: Vec<Vec<u8>>,
    write: Vec<Vec<u8>>,
}

thread_local! {
    static SPARE: RefCell<Spare> = RefCell::default();
}

/// A read buffer of `INITIAL_BUF` bytes (fewer if `max` is smaller).
fn take_read_buf(max: usize) -> Vec<u8> {
    let len = INITIAL_BUF.min(max);
    if len == INITIAL_BUF {
        if let Some(b) = SPARE.try_with(|s| s.borrow_mut().read.pop()).ok().flatten() {
            return b;
        }
    }
    vec![0; len]
}

/// Keeps a read buffer spare; a grown one (a large head) is dropped.
fn keep_read_buf(b: Vec<u8>) {
    if b.len() == INITIAL_BUF {
        let _ = SPARE.try_with(|s| {
            let mut s = s.borrow_mut();
            if s.read.len() < SPARE_MAX {
                s.read.push(b);
            }
        });
    }
}

/// An empty write buffer with room for a small response.
fn take_write_buf() -> Vec<u8> {
    SPARE
        .try_with(|s| s.borrow_mut().write.pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| Vec::with_capacity(INITIAL_BUF))
}

/// Keeps an empty write buffer spare; a large one is dropped.
fn keep_write_buf(mut b: Vec<u8>) {
    if (1..=SPARE_WRITE_MAX).contains(&b.capacity()) {
        b.clear();
        let _ = SPARE.try_with(|s| {
            let mut s = s.borrow_mut();
            if s.write.len() < SPARE_MAX {
                s.write.push(b);
            }
        });
    }
}

/// The connection's read buffer: `buf[start..end]` is unread. Its storage
/// is empty while nothing is unread and the connection waits (see
/// [`Spare`]).
#[derive(Debug)]
pub(super) struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max: usize,
}

impl ReadBuf {
    fn new(max: usize) -> ReadBuf {
        ReadBuf {
            buf: Vec::new(),
            start: 0,
            end: 0,
            max,
        }
    }

    /// Lets the storage go if nothing is unread.
    fn release(&mut self) {
        if self.is_empty() && !self.buf.is_empty() {
            keep_read_buf(std::mem::take(&mut self.buf));
            self.start = 0;
            self.end = 0;
        }
    }

    /// Whether the buffer holds storage (for tests).
    #[cfg(test)]
    pub(super) fn has_storage(&self) -> bool {
        !self.buf.is_empty()
    }

    /// How many bytes are unread, even while a read has the storage out
    /// (for tests).
    #[cfg(test)]
    pub(super) fn unread(&self) -> usize {
        self.end - self.start
    }

    /// The unread bytes (none while a read has the storage out).
    pub(super) fn data(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(super) fn consume(&mut self, n: usize) {
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
        if self.buf.is_empty() {
            self.buf = take_read_buf(self.max);
        }
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

    pub(super) fn into_rest(mut self) -> Vec<u8> {
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
    pub(super) rbuf: RefCell<ReadBuf>,
    pub(super) wbuf: RefCell<Vec<u8>>,
    pub(super) body: RefCell<BodyState>,
    pub(super) reading: Cell<bool>,
    pub(super) writer: Semaphore,
    /// Generation of the request being handled.
    pub(super) seq: Cell<u64>,
    /// Generation of the request whose body the handler may still read
    /// (0 once the server itself reads the rest: drains it or lingers).
    pub(super) open: Cell<u64>,
    pub(super) continue_pending: Cell<bool>,
    /// The read timeout last set on `io` (`None` before the first).
    read_timeout: Cell<Option<Option<Duration>>>,
    pub(super) cfg: Rc<Config>,
}

/// Holds the connection's read side; see [`Shared`].
pub(super) struct Reading<'a>(&'a Cell<bool>);

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

pub(super) fn busy_reading() -> io::Error {
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
            wbuf: RefCell::new(Vec::new()),
            body: RefCell::new(BodyState::Done),
            reading: Cell::new(false),
            writer: Semaphore::new(1),
            seq: Cell::new(0),
            open: Cell::new(0),
            continue_pending: Cell::new(false),
            read_timeout: Cell::new(None),
            cfg,
        }
    }

    /// Takes the read side, or `None` if another green thread has it.
    pub(super) fn start_reading(&self) -> Option<Reading<'_>> {
        if self.reading.replace(true) {
            None
        } else {
            Some(Reading(&self.reading))
        }
    }

    /// One read from the socket into the read buffer; the caller holds
    /// [`Reading`].
    ///
    /// With nothing unread, the connection lets its buffers go (see
    /// [`Spare`]) and takes a read buffer only when the socket has bytes
    /// for it, so a connection waiting for its next request holds none.
    pub(super) fn fill(&self, _: &Reading<'_>) -> io::Result<usize> {
        if !self.rbuf.borrow().is_empty() {
            let (mut storage, end) = self.rbuf.borrow_mut().lend()?;
            let r = self.io.read(&mut storage[end..]);
            let n = *r.as_ref().unwrap_or(&0);
            self.rbuf.borrow_mut().give_back(storage, n);
            return r;
        }
        self.release_buffers();
        let max = self.rbuf.borrow().max;
        let mut got = None;
        let r = self.io.read_attempts(INITIAL_BUF.min(max), &mut |read| {
            let mut storage = take_read_buf(max);
            let r = read(&mut storage);
            match r {
                Ok(n) if n > 0 => got = Some((storage, n)),
                _ => keep_read_buf(storage),
            }
            r
        });
        if let Some((storage, n)) = got {
            self.rbuf.borrow_mut().give_back(storage, n);
        }
        r
    }

    /// Lets the read buffer go if nothing is unread, and the write buffer
    /// if nothing is gathered.
    pub(super) fn release_buffers(&self) {
        self.rbuf.borrow_mut().release();
        let mut w = self.wbuf.borrow_mut();
        if w.is_empty() && w.capacity() > 0 {
            keep_write_buf(std::mem::take(&mut *w));
        }
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
    pub(super) fn gather(&self, f: impl FnOnce(&mut Vec<u8>)) {
        let mut w = self.wbuf.borrow_mut();
        if w.capacity() == 0 {
            *w = take_write_buf();
        }
        f(&mut w);
    }

    pub(super) fn gathered(&self) -> usize {
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
    pub(super) fn flush(&self) -> io::Result<()> {
        if self.gathered() == 0 && self.writer.available_permits() > 0 {
            return Ok(());
        }
        let _permit = self.writer.acquire()?;
        self.write_gathered()
    }

    /// As [`flush`](Self::flush), but if another green thread is writing,
    /// leaves the gathered bytes to it instead of waiting.
    pub(super) fn try_flush(&self) -> io::Result<()> {
        match self.writer.try_acquire() {
            Some(_permit) => self.write_gathered(),
            None => Ok(()),
        }
    }

    /// Writes what is gathered, then `bytes`, as one writer.
    pub(super) fn write_through(&self, bytes: &[u8]) -> io::Result<()> {
        let _permit = self.writer.acquire()?;
        self.write_gathered()?;
        self.write_all(bytes)
    }

    /// Sets the timeout of the following reads. The idle and the handler's
    /// read timeouts alternate at every request, and are often the same.
    pub(super) fn set_read_timeout(&self, t: Option<Duration>) {
        if self.read_timeout.replace(Some(t)) != Some(t) {
            self.io.set_read_timeout(t);
        }
    }

    pub(super) fn set_read_deadline(&self, remaining: Duration) {
        let t = match self.cfg.io_timeout {
            Some(io) => remaining.min(io),
            None => remaining,
        };
        self.set_read_timeout(Some(t));
    }
}
