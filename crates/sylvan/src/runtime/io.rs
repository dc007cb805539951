//! I/O readiness: registering sources with the hub's `mio::Poll` and the one
//! retry primitive every green socket operation goes through.
//!
//! Sources are registered once, edge-triggered, for both directions. An
//! operation is always tried first; only on `WouldBlock` does the green
//! thread park on the source's reader or writer list, and the next readiness
//! event for that direction wakes every parked waiter, which retries. Events
//! are handled only between green-thread runs, so no edge can slip in
//! between a `WouldBlock` and the park that follows it.

use std::cell::RefCell;
use std::io;
use std::panic::Location;
use std::rc::Rc;
use std::time::Duration;

use mio::event::Source;
use mio::{Interest, Token};

use super::hub::{Hub, hub, try_hub};
use super::park::{self, Parked, WaitList};

/// Which way an operation moves data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Read,
    Write,
}

/// Waiters of one registered source.
#[derive(Debug, Default)]
pub(crate) struct IoEntry {
    readers: RefCell<WaitList>,
    writers: RefCell<WaitList>,
    /// A stream read came back short (or `WouldBlock`) and no readable
    /// event has arrived since: the next read parks without trying the
    /// syscall first (it would only return `EAGAIN`).
    read_drained: std::cell::Cell<bool>,
    /// The peer closed its side (or the socket failed): once seen, a short
    /// read no longer means drained, since the end of stream (or the error)
    /// is still to be read and brings no new event.
    read_closed: std::cell::Cell<bool>,
}

/// The hub's table of registered sources; the mio token is the index.
#[derive(Debug, Default)]
pub(crate) struct IoTable {
    entries: RefCell<Vec<Option<Rc<IoEntry>>>>,
    free: RefCell<Vec<usize>>,
}

impl IoTable {
    fn insert(&self) -> (usize, Rc<IoEntry>) {
        let entry = Rc::new(IoEntry::default());
        let mut entries = self.entries.borrow_mut();
        let idx = match self.free.borrow_mut().pop() {
            Some(i) => {
                entries[i] = Some(entry.clone());
                i
            }
            None => {
                entries.push(Some(entry.clone()));
                entries.len() - 1
            }
        };
        (idx, entry)
    }

    fn remove(&self, idx: usize) {
        if let Some(slot) = self.entries.borrow_mut().get_mut(idx) {
            if slot.take().is_some() {
                self.free.borrow_mut().push(idx);
            }
        }
    }

    /// Number of registered sources.
    pub(crate) fn len(&self) -> usize {
        self.entries.borrow().len() - self.free.borrow().len()
    }
}

/// Wakes the waiters a readiness event is for.
pub(crate) fn dispatch(hub: &Hub, ev: &mio::event::Event) {
    let entry = hub.io.entries.borrow().get(ev.token().0).cloned().flatten();
    let Some(entry) = entry else {
        return;
    };
    if ev.is_readable() || ev.is_read_closed() || ev.is_error() || ev.is_priority() {
        entry.read_drained.set(false);
        if ev.is_read_closed() || ev.is_error() {
            entry.read_closed.set(true);
        }
        entry.readers.borrow_mut().notify_all(hub);
    }
    if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
        entry.writers.borrow_mut().notify_all(hub);
    }
}

/// A source's registration with the hub of the thread that created it.
#[derive(Debug)]
pub(crate) struct Registration {
    token: usize,
    entry: Rc<IoEntry>,
    hub_id: u64,
}

impl Registration {
    /// Registers `source` with this thread's hub for reads and writes.
    pub(crate) fn new(source: &mut impl Source) -> io::Result<Registration> {
        Self::with_interest(source, Interest::READABLE | Interest::WRITABLE)
    }

    pub(crate) fn with_interest(
        source: &mut impl Source,
        interest: Interest,
    ) -> io::Result<Registration> {
        let hub = hub();
        let (token, entry) = hub.io.insert();
        if let Err(e) = hub.with_registry(|r| r.register(source, Token(token), interest)) {
            hub.io.remove(token);
            return Err(e);
        }
        hub.publish_io_sources();
        Ok(Registration {
            token,
            entry,
            hub_id: hub.shared.id,
        })
    }

    /// Removes the registration (call before the source is closed).
    pub(crate) fn deregister(&self, source: &mut impl Source) {
        if let Some(hub) = try_hub() {
            if hub.shared.id == self.hub_id {
                let _ = hub.with_registry(|r| r.deregister(source));
                hub.io.remove(self.token);
                hub.publish_io_sources();
            }
        }
    }

    /// The retry primitive: runs `op` until it stops returning
    /// `WouldBlock`, parking on readiness in between.
    ///
    /// `timeout` is the operation's own timeout (std's read/write timeout):
    /// when it passes, the result is `io::ErrorKind::TimedOut`. Scoped
    /// deadlines and kill apply as to every blocking call and come back as
    /// `Cancelled` converted into `io::Error`.
    pub(crate) fn io<R>(
        &self,
        dir: Dir,
        timeout: Option<Duration>,
        loc: &'static Location<'static>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let mut deadline = None;
        loop {
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
            let hub = hub();
            if hub.shared.id != self.hub_id {
                return Err(wrong_hub());
            }
            let ahead = fresh_deadline(hub, timeout, &mut deadline);
            self.wait_in(hub, dir, deadline, ahead, loc)?;
        }
    }

    /// [`io`](Self::io) for a stream read into a buffer of `len` bytes,
    /// with tokio's readiness hint: a read that returns less than `len`
    /// has drained the socket, so the next read parks on readiness at once
    /// instead of first paying for a syscall that returns `EAGAIN`. Safe
    /// because new data always brings a new edge-triggered event, and
    /// events are handled only between green-thread runs.
    pub(crate) fn read_stream(
        &self,
        len: usize,
        timeout: Option<Duration>,
        loc: &'static Location<'static>,
        mut op: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        let mut deadline = None;
        loop {
            if !self.entry.read_drained.get() || len == 0 {
                match op() {
                    Ok(n) => {
                        if n > 0 && n < len && !self.entry.read_closed.get() {
                            self.entry.read_drained.set(true);
                        }
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.entry.read_drained.set(true)
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            let hub = hub();
            if hub.shared.id != self.hub_id {
                return Err(wrong_hub());
            }
            let ahead = fresh_deadline(hub, timeout, &mut deadline);
            self.wait_in(hub, Dir::Read, deadline, ahead, loc)?;
        }
    }

    /// Parks until the next readiness event for `dir` (or the deadline,
    /// in hub-clock nanoseconds).
    #[inline]
    pub(crate) fn wait(
        &self,
        dir: Dir,
        deadline: Option<u64>,
        loc: &'static Location<'static>,
    ) -> io::Result<()> {
        self.wait_in(hub(), dir, deadline, false, loc)
    }

    fn wait_in(
        &self,
        hub: &Hub,
        dir: Dir,
        deadline: Option<u64>,
        deadline_ahead: bool,
        loc: &'static Location<'static>,
    ) -> io::Result<()> {
        let list = match dir {
            Dir::Read => &self.entry.readers,
            Dir::Write => &self.entry.writers,
        };
        let mut registered = false;
        // Counted while parked, however the park ends (a forced unwind at
        // shutdown included), so the deadlock check stays right.
        struct Waiting<'a>(&'a Hub);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.io_waiters.set(self.0.io_waiters.get() - 1);
            }
        }
        hub.io_waiters.set(hub.io_waiters.get() + 1);
        let waiting = Waiting(hub);
        let r = park::park_at_fresh(loc, deadline, deadline_ahead, |t| {
            registered = true;
            list.borrow_mut().push(t);
        });
        drop(waiting);
        match r {
            Ok(Parked::Woken) => Ok(()),
            Ok(Parked::OwnDeadline) => {
                if registered {
                    list.borrow_mut().cancelled();
                }
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "operation timed out",
                ))
            }
            Err(c) => {
                if registered {
                    list.borrow_mut().cancelled();
                }
                Err(c.into())
            }
        }
    }
}

/// Sets `deadline`, on an I/O loop's first wait, to `timeout` from now,
/// and says whether it certainly lies ahead: made just now from a positive
/// timeout and not saturated at the end of time, so park need not read the
/// clock again to check it. On a later round (`deadline` already set) it
/// may have passed: false.
#[inline]
fn fresh_deadline(hub: &Hub, timeout: Option<Duration>, deadline: &mut Option<u64>) -> bool {
    if deadline.is_some() {
        return false;
    }
    let Some(d) = timeout else {
        return false;
    };
    let at = hub.clock.after(d);
    *deadline = Some(at);
    !d.is_zero() && at != u64::MAX
}

fn wrong_hub() -> io::Error {
    io::Error::other(
        "sylvan socket used on another OS thread than the one that created it; \
         move it with into_std() and from_std() instead",
    )
}

/// A non-blocking source registered with the hub, with std-style per-call
/// read and write timeouts: the common core of every green socket type.
#[derive(Debug)]
pub(crate) struct GreenIo<S: Source> {
    io: Option<S>,
    reg: Registration,
    read_timeout: std::cell::Cell<Option<Duration>>,
    write_timeout: std::cell::Cell<Option<Duration>>,
}

impl<S: Source> GreenIo<S> {
    /// Registers `io` (already non-blocking) with this thread's hub.
    pub(crate) fn new(mut io: S) -> io::Result<GreenIo<S>> {
        let reg = Registration::new(&mut io)?;
        Ok(GreenIo {
            io: Some(io),
            reg,
            read_timeout: Default::default(),
            write_timeout: Default::default(),
        })
    }

    /// The source itself.
    pub(crate) fn get(&self) -> &S {
        self.io.as_ref().expect("present until into_inner")
    }

    /// Runs a read-side operation through the retry primitive.
    #[track_caller]
    pub(crate) fn read_with<R>(&self, mut f: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        let io = self.get();
        self.reg.io(
            Dir::Read,
            self.read_timeout.get(),
            Location::caller(),
            || f(io),
        )
    }

    /// Runs a stream read into a buffer of `len` bytes through the retry
    /// primitive, with the drained-socket hint (see
    /// [`Registration::read_stream`]).
    #[track_caller]
    pub(crate) fn read_stream(
        &self,
        len: usize,
        mut f: impl FnMut(&S) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let io = self.get();
        self.reg
            .read_stream(len, self.read_timeout.get(), Location::caller(), || f(io))
    }

    /// Runs a write-side operation through the retry primitive.
    #[track_caller]
    pub(crate) fn write_with<R>(&self, mut f: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        let io = self.get();
        self.reg.io(
            Dir::Write,
            self.write_timeout.get(),
            Location::caller(),
            || f(io),
        )
    }

    /// Parks until the source is ready in `dir`, with an explicit deadline
    /// (hub clock nanoseconds); used by connect.
    #[track_caller]
    pub(crate) fn wait(&self, dir: Dir, deadline: Option<u64>) -> io::Result<()> {
        self.reg.wait(dir, deadline, Location::caller())
    }

    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.read_timeout.set(check_timeout(t)?);
        Ok(())
    }

    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.write_timeout.set(check_timeout(t)?);
        Ok(())
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout.get()
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout.get()
    }

    /// Deregisters and hands the source back.
    pub(crate) fn into_inner(mut self) -> S {
        let mut io = self.io.take().expect("present until into_inner");
        self.reg.deregister(&mut io);
        io
    }
}

impl<S: Source> Drop for GreenIo<S> {
    fn drop(&mut self) {
        if let Some(mut io) = self.io.take() {
            self.reg.deregister(&mut io);
        }
    }
}

/// std's rule: a zero timeout is an error (`None` means no timeout).
fn check_timeout(t: Option<Duration>) -> io::Result<Option<Duration>> {
    if t == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(t)
}
