//! [`serve`]: Eventlet's accept loop, bounded, with graceful stop.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::panic::Location;
use std::rc::Rc;
use std::time::Duration;

use super::tcp::{TcpListener, TcpStream};
use crate::green::{GreenId, GreenThread};
use crate::runtime::{self, WaitList};

/// Options of [`serve`]; see [`ServeOptions::serve`].
///
/// # Examples
///
/// ```
/// use std::io::Write;
///
/// let listener = sylvan::listen("127.0.0.1:0").unwrap();
/// let server = sylvan::net::ServeOptions::new()
///     .max_connections(100)
///     .unwrap()
///     .serve(listener, |mut conn, _peer| conn.write_all(b"hi\n"));
/// assert_eq!(server.active(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct ServeOptions {
    max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions::new()
    }
}

impl ServeOptions {
    /// At most 1000 connections at once (Eventlet's `GreenPool` default).
    pub fn new() -> ServeOptions {
        ServeOptions {
            max_connections: 1000,
        }
    }

    /// How many connections are handled at once (default 1000). While that
    /// many are open, new ones wait in the kernel's accept backlog.
    ///
    /// # Errors
    ///
    /// `InvalidInput`, naming the setting, for 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::net::ServeOptions;
    ///
    /// let opts = ServeOptions::new().max_connections(10)?;
    /// # let _ = opts;
    /// let e = ServeOptions::new().max_connections(0).unwrap_err();
    /// assert!(e.to_string().contains("max_connections(0)"), "{e}");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn max_connections(mut self, n: usize) -> std::io::Result<ServeOptions> {
        if n == 0 {
            return Err(crate::settings::invalid(
                "net::ServeOptions::max_connections",
                n,
                "a server must serve at least 1 connection",
            ));
        }
        self.max_connections = n;
        Ok(self)
    }

    /// As `new().max_connections(n)`, for a count known to be valid.
    pub(crate) fn with_max_connections(n: std::num::NonZeroUsize) -> ServeOptions {
        ServeOptions {
            max_connections: n.get(),
        }
    }

    /// Starts serving; see [`serve`].
    pub fn serve<F, E>(&self, listener: TcpListener, handler: F) -> ServerHandle
    where
        F: Fn(TcpStream, SocketAddr) -> Result<(), E> + 'static,
        E: fmt::Display + 'static,
    {
        let local_addr = listener.local_addr().ok();
        let state = Rc::new(State {
            max: self.max_connections,
            handlers: RefCell::new(HashMap::new()),
            slot_free: RefCell::new(WaitList::default()),
            all_done: RefCell::new(WaitList::default()),
            accepted: Cell::new(0),
            stopped: crate::sync::Event::new(),
        });
        let st = state.clone();
        let handler = Rc::new(handler);
        let acceptor = crate::Builder::new()
            .name("sylvan-serve")
            .spawn(move || accept_loop(listener, st, handler))
            .unwrap_or_else(|e| panic!("sylvan::serve: {e}"));
        ServerHandle {
            state,
            acceptor: RefCell::new(Some(acceptor)),
            local_addr,
        }
    }
}

struct State {
    max: usize,
    handlers: RefCell<HashMap<GreenId, GreenThread<()>>>,
    slot_free: RefCell<WaitList>,
    all_done: RefCell<WaitList>,
    accepted: Cell<u64>,
    /// Sent when `stop` has finished.
    stopped: crate::sync::Event<()>,
}

impl State {
    fn active(&self) -> usize {
        self.handlers.borrow().len()
    }
}

/// Serves connections from `listener`, each in its own green thread running
/// `handler(stream, peer)`; Eventlet's `serve`.
///
/// At most 1000 connections are handled at once ([`ServeOptions`] changes
/// it); further connections wait in the kernel's backlog. A handler's error
/// or panic ends only its own connection and is logged with `tracing`. The
/// accept loop runs in its own green thread; the returned handle stops it.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
///
/// let listener = sylvan::listen("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let server = sylvan::serve(listener, |mut conn, _peer| -> std::io::Result<()> {
///     let mut buf = [0; 1024];
///     loop {
///         let n = conn.read(&mut buf)?;
///         if n == 0 {
///             return Ok(());
///         }
///         conn.write_all(&buf[..n])?;
///     }
/// });
/// let mut c = sylvan::connect(addr).unwrap();
/// c.write_all(b"echo").unwrap();
/// let mut back = [0; 4];
/// c.read_exact(&mut back).unwrap();
/// assert_eq!(&back, b"echo");
/// drop(c);
/// let report = server.stop(Duration::from_secs(1));
/// assert_eq!(report.killed, 0);
/// ```
pub fn serve<F, E>(listener: TcpListener, handler: F) -> ServerHandle
where
    F: Fn(TcpStream, SocketAddr) -> Result<(), E> + 'static,
    E: fmt::Display + 'static,
{
    ServeOptions::new().serve(listener, handler)
}

fn accept_loop<F, E>(listener: TcpListener, state: Rc<State>, handler: Rc<F>)
where
    F: Fn(TcpStream, SocketAddr) -> Result<(), E> + 'static,
    E: fmt::Display + 'static,
{
    let loc = Location::caller();
    let mut backoff = Duration::from_millis(5);
    loop {
        while state.active() >= state.max {
            if runtime::wait_on(&state.slot_free, loc).is_err() {
                return;
            }
        }
        let (conn, peer) = match listener.accept() {
            Ok(c) => {
                backoff = Duration::from_millis(5);
                c
            }
            Err(e) if crate::Cancelled::from_io(&e).is_some() => return,
            Err(e) => {
                // EMFILE and friends: the connection stays in the backlog;
                // back off instead of spinning (as Go's net/http does).
                tracing::warn!("sylvan::serve: accept failed: {e}; retrying in {backoff:?}");
                if crate::sleep(backoff).is_err() {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        state.accepted.set(state.accepted.get() + 1);
        let (st, h) = (state.clone(), handler.clone());
        let spawned = crate::Builder::new().spawn(move || {
            let _slot = Slot {
                state: st,
                id: crate::current().id(),
            };
            if let Err(e) = h(conn, peer) {
                log_handler_error(peer, &e);
            }
        });
        match spawned {
            Ok(g) => {
                state.handlers.borrow_mut().insert(g.id(), g);
            }
            Err(e) => tracing::error!(%peer, "sylvan::serve: cannot start a handler: {e}"),
        }
    }
}

/// Logs a handler's error: at `warn`, except a peer that went away (reset,
/// broken pipe, early EOF) or a kill at shutdown, which are routine and go
/// to `debug`.
fn log_handler_error<E: fmt::Display + 'static>(peer: SocketAddr, e: &E) {
    let routine = (e as &dyn std::any::Any)
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| {
            use std::io::ErrorKind::*;
            matches!(
                e.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            ) || crate::Cancelled::from_io(e).is_some()
        });
    if routine {
        tracing::debug!(%peer, "connection handler ended: {e}");
    } else {
        tracing::warn!(%peer, "connection handler failed: {e}");
    }
}

/// Held by a handler's green thread; frees its slot when the handler ends,
/// however it ends (return, error, panic, kill).
struct Slot {
    state: Rc<State>,
    id: GreenId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Dropping our own (unfinished) handle just detaches it; a panic in
        // progress is then logged when this green thread finishes.
        let handle = self.state.handlers.borrow_mut().remove(&self.id);
        drop(handle);
        if runtime::has_hub() {
            self.state.slot_free.borrow_mut().wake_one();
            if self.state.active() == 0 {
                self.state.all_done.borrow_mut().wake_all();
            }
        }
    }
}

/// What [`ServerHandle::stop`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StopReport {
    /// Handlers that finished by themselves within the grace period.
    pub finished: usize,
    /// Handlers still running at the deadline, then killed.
    pub killed: usize,
}

/// A running [`serve`] loop. Dropping the handle leaves the server running
/// (as Eventlet's `serve` does forever); call [`stop`](Self::stop) to end it.
pub struct ServerHandle {
    state: Rc<State>,
    acceptor: RefCell<Option<GreenThread<()>>>,
    local_addr: Option<SocketAddr>,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .field("active", &self.active())
            .field("accepted", &self.accepted())
            .finish()
    }
}

impl ServerHandle {
    /// The address the listener was bound to.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Connections being handled now.
    pub fn active(&self) -> usize {
        self.state.active()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.state.accepted.get()
    }

    /// Stops gracefully: stops accepting at once (the listener is closed),
    /// lets running handlers finish until `grace` has passed, then kills
    /// the rest and waits for them to unwind. No connection is closed by
    /// the server while its handler is inside the grace period.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let server = sylvan::serve(l, |conn, _| {
    ///     let mut buf = [0; 1];
    ///     std::io::Read::read(&mut &conn, &mut buf).map(|_| ()) // waits for the client
    /// });
    /// let _c = sylvan::connect(addr).unwrap();
    /// while server.active() == 0 {
    ///     sylvan::yield_now();
    /// }
    /// let report = server.stop(Duration::from_millis(10));
    /// assert_eq!((report.finished, report.killed), (0, 1));
    /// assert!(sylvan::connect(addr).is_err()); // no longer accepting
    /// ```
    ///
    /// # Cancellation
    ///
    /// If the caller is killed or its deadline passes during the grace
    /// period, the grace period ends there: the remaining handlers are
    /// killed at once and still waited for, so `stop` never leaves
    /// handlers behind. Called where the caller may not suspend at all (a
    /// destructor running while its green thread unwinds), `stop` kills the
    /// accept loop and the handlers and returns without waiting: they end
    /// as soon as the hub runs them.
    pub fn stop(&self, grace: Duration) -> StopReport {
        // Count before anything else, so a handler that ends while the
        // accept loop winds down is counted as finished.
        let at_stop = self.active();
        if let Some(acceptor) = self.acceptor.borrow_mut().take() {
            acceptor.kill();
            // The accept loop ends at its next blocking call; the listener
            // closes when it does.
            // (Where this context may not suspend — a destructor running
            // while it unwinds — the killed loop ends later, on its own.)
            while !acceptor.is_finished() && crate::runtime::may_suspend() {
                crate::yield_now();
            }
        }
        let loc = Location::caller();
        let _ = crate::timeout(grace, || {
            while self.active() > 0 {
                runtime::wait_on(&self.state.all_done, loc)?;
            }
            Ok::<_, crate::Cancelled>(())
        });
        let remaining: Vec<GreenId> = self.state.handlers.borrow().keys().copied().collect();
        for id in &remaining {
            if let Some(g) = self.state.handlers.borrow().get(id) {
                g.kill();
            }
        }
        while self.active() > 0 && crate::runtime::may_suspend() {
            crate::yield_now();
        }
        let _ = self.state.stopped.send(());
        StopReport {
            finished: at_stop.saturating_sub(remaining.len()),
            killed: remaining.len(),
        }
    }

    /// Blocks until [`stop`](Self::stop) has finished (called from another
    /// green thread).
    ///
    /// # Cancellation
    ///
    /// Returns the error if the caller is killed or its deadline passes;
    /// the server keeps running.
    pub fn wait(&self) -> Result<(), crate::Cancelled> {
        // Waits on an event rather than on the accept loop's handle, so no
        // borrow is held while parked and `stop` can run meanwhile.
        self.state.stopped.wait()
    }
}
