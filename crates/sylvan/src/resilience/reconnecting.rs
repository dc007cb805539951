//! [`Reconnecting`]: one live connection, kept alive by a background green
//! thread, with gRPC's connectivity states.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::panic::Location;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backoff::Backoff;
use super::heartbeat::Heartbeat;
use crate::cancel::Cancelled;
use crate::green::GreenThread;
use crate::runtime::hub::hub;
use crate::runtime::park::{self, WaitList};
use crate::sync::Queue;

/// gRPC's connectivity states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// No connection and nobody has asked for one yet.
    Idle,
    /// A connection attempt (connect, then the `on_connect` hook) is running.
    Connecting,
    /// Connected, and `on_connect` succeeded: calls go through.
    Ready,
    /// The last attempt failed or the connection broke; the next attempt
    /// waits for its backoff delay.
    TransientFailure,
    /// [`Reconnecting::shutdown`] was called; nothing will connect again.
    Shutdown,
}

impl fmt::Display for ConnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnState::Idle => "idle",
            ConnState::Connecting => "connecting",
            ConnState::Ready => "ready",
            ConnState::TransientFailure => "transient failure",
            ConnState::Shutdown => "shut down",
        })
    }
}

/// Why [`Reconnecting::call`] did not run the operation to success.
#[derive(Debug)]
#[non_exhaustive]
pub enum CallError {
    /// Not ready, and the call is fail-fast (or waiting was not possible):
    /// the state and the last connection error, if any.
    Unavailable {
        /// The state at the time of the call.
        state: ConnState,
        /// Why the last connection attempt (or connection) failed.
        last_error: Option<Arc<io::Error>>,
    },
    /// The operation failed with an I/O error; the connection was marked
    /// broken and a reconnect started.
    Io(io::Error),
    /// Too many callers were already waiting for the connection.
    TooManyWaiters(usize),
    /// The connection was shut down.
    Shutdown,
    /// The caller was killed or its deadline passed while waiting.
    Cancelled(Cancelled),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Unavailable {
                state,
                last_error: Some(e),
            } => {
                write!(f, "connection unavailable ({state}): {e}")
            }
            CallError::Unavailable {
                state,
                last_error: None,
            } => write!(f, "connection unavailable ({state})"),
            CallError::Io(e) => write!(f, "call failed: {e}"),
            CallError::TooManyWaiters(n) => {
                write!(f, "{n} callers already wait for the connection")
            }
            CallError::Shutdown => f.write_str("connection was shut down"),
            CallError::Cancelled(c) => write!(f, "call was cancelled: {c}"),
        }
    }
}

impl std::error::Error for CallError {}

impl From<CallError> for io::Error {
    fn from(e: CallError) -> io::Error {
        match e {
            CallError::Io(e) => e,
            CallError::Cancelled(c) => c.into(),
            other => {
                let kind = match other {
                    CallError::Unavailable { .. } => io::ErrorKind::NotConnected,
                    CallError::TooManyWaiters(_) => io::ErrorKind::WouldBlock,
                    _ => io::ErrorKind::NotConnected,
                };
                io::Error::new(kind, other)
            }
        }
    }
}

type Connect<C> = Box<dyn Fn() -> io::Result<C>>;
type Hook<C> = Box<dyn Fn(&mut C) -> io::Result<()>>;

/// Configures a [`Reconnecting`]; see [`Reconnecting::builder`].
pub struct ReconnectingBuilder<C> {
    connect: Connect<C>,
    on_connect: Option<Hook<C>>,
    backoff: Backoff,
    min_connect_timeout: Duration,
    first_delay: bool,
    healthy_after: Duration,
    wait_for_ready: bool,
    max_waiters: usize,
    eager: bool,
    heartbeat: Option<(Heartbeat, Hook<C>)>,
}

impl<C> fmt::Debug for ReconnectingBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReconnectingBuilder")
            .field("backoff", &self.backoff)
            .field("min_connect_timeout", &self.min_connect_timeout)
            .field("first_delay", &self.first_delay)
            .field("healthy_after", &self.healthy_after)
            .field("wait_for_ready", &self.wait_for_ready)
            .field("max_waiters", &self.max_waiters)
            .field("eager", &self.eager)
            .finish_non_exhaustive()
    }
}

impl<C: 'static> ReconnectingBuilder<C> {
    /// The reconnect backoff (default: gRPC's, [`Backoff::new`]).
    pub fn backoff(mut self, b: Backoff) -> Self {
        self.backoff = b;
        self
    }

    /// The least time one attempt (connect plus `on_connect`) is given; an
    /// attempt gets `max(this, current backoff delay)`, as gRPC does
    /// (default 20 s).
    pub fn min_connect_timeout(mut self, d: Duration) -> Self {
        self.min_connect_timeout = d;
        self
    }

    /// Before the first reconnect after a healthy connection drops, wait a
    /// random delay in `[0, initial backoff)` (default on), so that many
    /// clients losing the same server don't return at the same instant
    /// (ZooKeeper's client does the same). Off: reconnect at once.
    pub fn first_reconnect_jitter(mut self, on: bool) -> Self {
        self.first_delay = on;
        self
    }

    /// A connection counts as healthy — and the backoff is reset when it
    /// breaks — only after it stayed `Ready` this long (default 5 s). A
    /// connection that dies at once keeps the backoff growing.
    pub fn healthy_after(mut self, d: Duration) -> Self {
        self.healthy_after = d;
        self
    }

    /// Runs after each connect and before the state becomes `Ready`:
    /// handshake, authenticate, re-subscribe. An error fails the attempt.
    pub fn on_connect(mut self, f: impl Fn(&mut C) -> io::Result<()> + 'static) -> Self {
        self.on_connect = Some(Box::new(f));
        self
    }

    /// Calls made while not `Ready` wait for `Ready` (bounded by the
    /// caller's own deadline) instead of failing at once (default: fail
    /// fast, as gRPC).
    pub fn wait_for_ready(mut self, on: bool) -> Self {
        self.wait_for_ready = on;
        self
    }

    /// At most this many callers wait at once, for readiness or for their
    /// turn on the connection; more get [`CallError::TooManyWaiters`]
    /// (default 1024).
    pub fn max_waiters(mut self, n: usize) -> Self {
        self.max_waiters = n;
        self
    }

    /// Connect as soon as it is built instead of on the first call
    /// (default: lazily, as gRPC's `Idle`).
    pub fn eager(mut self, on: bool) -> Self {
        self.eager = on;
        self
    }

    /// Pings the connection with `ping` every interval while it is idle;
    /// a ping that fails or exceeds the heartbeat's timeout marks the
    /// connection broken (half-open connections TCP never reports).
    pub fn heartbeat(
        mut self,
        hb: Heartbeat,
        ping: impl Fn(&mut C) -> io::Result<()> + 'static,
    ) -> Self {
        self.heartbeat = Some((hb, Box::new(ping)));
        self
    }

    /// Builds it and starts its reconnector green thread.
    pub fn build(self) -> Reconnecting<C> {
        let inner = Rc::new(Inner {
            connect: self.connect,
            on_connect: self.on_connect,
            min_connect_timeout: self.min_connect_timeout,
            first_delay: self.first_delay,
            healthy_after: self.healthy_after,
            wait_for_ready: self.wait_for_ready,
            max_waiters: self.max_waiters,
            state: Cell::new(ConnState::Idle),
            conn: RefCell::new(None),
            busy: Cell::new(false),
            turn: RefCell::new(WaitList::default()),
            ready: RefCell::new(WaitList::default()),
            waiting: Cell::new(0),
            demand: Rc::new(RefCell::new(WaitList::default())),
            demanded: Cell::new(false),
            last_error: RefCell::new(None),
            last_used: Cell::new(crate::time::now()),
            watchers: RefCell::new(Vec::new()),
            reconnects: Cell::new(0),
            workers: RefCell::new(Vec::new()),
        });
        let weak = Rc::downgrade(&inner);
        let backoff = self.backoff;
        let demand = inner.demand.clone();
        let w = crate::Builder::new()
            .name("sylvan-reconnector")
            .stack_size(128 * 1024)
            .spawn(move || reconnector(weak, demand, backoff))
            .unwrap_or_else(|e| panic!("sylvan Reconnecting: {e}"));
        inner.workers.borrow_mut().push(w);
        if let Some((hb, ping)) = self.heartbeat {
            let weak = Rc::downgrade(&inner);
            let w = crate::Builder::new()
                .name("sylvan-heartbeat")
                .stack_size(128 * 1024)
                .spawn(move || heartbeat_loop(weak, hb, ping))
                .unwrap_or_else(|e| panic!("sylvan Reconnecting: {e}"));
            inner.workers.borrow_mut().push(w);
        }
        let r = Reconnecting { inner };
        if self.eager {
            r.inner.want_connection();
        }
        r
    }
}

struct Inner<C> {
    connect: Connect<C>,
    on_connect: Option<Hook<C>>,
    min_connect_timeout: Duration,
    first_delay: bool,
    healthy_after: Duration,
    wait_for_ready: bool,
    max_waiters: usize,
    state: Cell<ConnState>,
    conn: RefCell<Option<C>>,
    /// A call holds the connection.
    busy: Cell<bool>,
    /// Callers waiting for their turn on the connection.
    turn: RefCell<WaitList>,
    /// Callers waiting for `Ready`.
    ready: RefCell<WaitList>,
    /// How many callers wait (on `turn` or `ready`).
    waiting: Cell<usize>,
    /// Wakes the reconnector.
    demand: Rc<RefCell<WaitList>>,
    last_error: RefCell<Option<Arc<io::Error>>>,
    last_used: Cell<Instant>,
    watchers: RefCell<Vec<(Queue<ConnState>, Weak<()>)>>,
    /// Somebody called while `Idle`: connect.
    demanded: Cell<bool>,
    reconnects: Cell<u64>,
    workers: RefCell<Vec<GreenThread<()>>>,
}

impl<C> Inner<C> {
    fn set_state(&self, s: ConnState) {
        let old = self.state.replace(s);
        if old == s {
            return;
        }
        let hub = hub();
        if s == ConnState::Ready || s == ConnState::Shutdown {
            self.ready.borrow_mut().notify_all(hub);
        }
        if old == ConnState::Ready {
            // Callers waiting for their turn re-check the state.
            self.turn.borrow_mut().notify_all(hub);
        }
        // Watchers never block the reconnector: a full queue drops its
        // oldest entry; dropped watchers are forgotten.
        self.watchers.borrow_mut().retain(|(q, alive)| {
            if alive.strong_count() == 0 {
                return false;
            }
            if let Err(e) = q.try_put(s) {
                let _ = q.try_get();
                let _ = q.try_put(e.into_inner());
            }
            true
        });
    }

    fn want_connection(&self) {
        if self.state.get() == ConnState::Idle && !self.demanded.replace(true) {
            self.demand.borrow_mut().notify_all(hub());
        }
    }

    /// The connection failed: drop it and wake the reconnector.
    fn broken(&self, why: io::Error) {
        if self.state.get() == ConnState::Shutdown {
            return;
        }
        self.conn.borrow_mut().take();
        *self.last_error.borrow_mut() = Some(Arc::new(why));
        self.set_state(ConnState::TransientFailure);
        self.demand.borrow_mut().notify_all(hub());
    }
}

/// Keeps one live connection made by a user `connect` closure, and
/// reconnects in the background when it breaks; gRPC's subchannel, for any
/// protocol.
///
/// - States and transitions are gRPC's ([`ConnState`]): `Idle` until the
///   first call (or at once with [`eager`](ReconnectingBuilder::eager)),
///   `Connecting`, `Ready`, `TransientFailure`, `Shutdown`.
/// - A background green thread reconnects with [`Backoff`] (gRPC's by
///   default), giving each attempt `max(min_connect_timeout, delay)`. The
///   `connect` closure runs again on every attempt, so a name it resolves
///   is resolved again each time.
/// - The `on_connect` hook runs before `Ready` (handshake, auth,
///   re-subscribe).
/// - [`call`](Self::call) gives the operation exclusive use of the
///   connection; an I/O error marks the connection broken and wakes the
///   reconnector. Calls are fail-fast unless built with
///   [`wait_for_ready`](ReconnectingBuilder::wait_for_ready); at most
///   `max_waiters` callers wait.
/// - The backoff resets only after a connection stayed healthy for
///   `healthy_after`; the first reconnect after a healthy connection waits a
///   random delay in `[0, initial backoff)` (herd protection).
///
/// # Examples
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use std::time::Duration;
/// use sylvan::resilience::{ConnState, Reconnecting};
///
/// let l = sylvan::listen("127.0.0.1:0").unwrap();
/// let addr = l.local_addr().unwrap();
/// let _server = sylvan::serve(l, |conn, _| -> std::io::Result<()> {
///     let mut lines = BufReader::new(&conn);
///     let mut line = String::new();
///     while lines.read_line(&mut line)? > 0 {
///         (&conn).write_all(line.to_uppercase().as_bytes())?;
///         line.clear();
///     }
///     Ok(())
/// });
///
/// let client = Reconnecting::builder(move || {
///     let s = sylvan::connect(addr)?;
///     Ok(BufReader::new(s))
/// })
/// .wait_for_ready(true)
/// .build();
/// let reply = client
///     .call(|conn| {
///         conn.get_ref().set_read_timeout(Some(Duration::from_secs(5)))?;
///         (&*conn.get_ref()).write_all(b"hello\n")?;
///         let mut line = String::new();
///         conn.read_line(&mut line)?;
///         Ok(line)
///     })
///     .unwrap();
/// assert_eq!(reply, "HELLO\n");
/// assert_eq!(client.state(), ConnState::Ready);
/// ```
pub struct Reconnecting<C> {
    inner: Rc<Inner<C>>,
}

impl<C> fmt::Debug for Reconnecting<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reconnecting")
            .field("state", &self.inner.state.get())
            .field("reconnects", &self.inner.reconnects.get())
            .finish_non_exhaustive()
    }
}

impl<C> Clone for Reconnecting<C> {
    fn clone(&self) -> Self {
        Reconnecting {
            inner: self.inner.clone(),
        }
    }
}

impl<C: 'static> Reconnecting<C> {
    /// Starts configuring a connection made by `connect` (which may block:
    /// resolve, connect, TLS).
    pub fn builder(connect: impl Fn() -> io::Result<C> + 'static) -> ReconnectingBuilder<C> {
        ReconnectingBuilder {
            connect: Box::new(connect),
            on_connect: None,
            backoff: Backoff::new(),
            min_connect_timeout: Duration::from_secs(20),
            first_delay: true,
            healthy_after: Duration::from_secs(5),
            wait_for_ready: false,
            max_waiters: 1024,
            eager: false,
            heartbeat: None,
        }
    }

    /// The state now.
    pub fn state(&self) -> ConnState {
        self.inner.state.get()
    }

    /// How many times a connection was established after the first.
    pub fn reconnects(&self) -> u64 {
        self.inner.reconnects.get()
    }

    /// The last connection error, if any.
    pub fn last_error(&self) -> Option<Arc<io::Error>> {
        self.inner.last_error.borrow().clone()
    }

    /// Subscribes to state changes: every transition from now on can be
    /// read from the returned [`Watch`] (up to 1024 unread; older ones are
    /// dropped, so a watcher that never reads can't stall the reconnector).
    pub fn watch(&self) -> Watch {
        let q = Queue::bounded(1024);
        let alive = Rc::new(());
        self.inner
            .watchers
            .borrow_mut()
            .push((q.clone(), Rc::downgrade(&alive)));
        Watch { q, _alive: alive }
    }

    /// Runs `op` with exclusive use of the connection.
    ///
    /// If the connection is not `Ready`, fails at once with
    /// [`CallError::Unavailable`] (and starts connecting if `Idle`), or with
    /// `wait_for_ready` waits for it. If `op` returns an I/O error, the
    /// connection is marked broken, the reconnector is woken, and the error
    /// is returned as [`CallError::Io`]; the operation is not retried here
    /// (combine with [`Retry`](super::Retry) for that).
    ///
    /// # Cancellation
    ///
    /// Killed or past its deadline while waiting (for `Ready` or for its
    /// turn): returns [`CallError::Cancelled`], nothing was sent. If the
    /// cancellation interrupts `op` itself, `op` sees the error from its
    /// blocking call; it comes back as `CallError::Io` and the connection
    /// is marked broken, since a request may be half-sent.
    #[track_caller]
    pub fn call<R>(&self, op: impl FnOnce(&mut C) -> io::Result<R>) -> Result<R, CallError> {
        let loc = Location::caller();
        let inner = &*self.inner;
        loop {
            match inner.state.get() {
                ConnState::Shutdown => return Err(CallError::Shutdown),
                ConnState::Ready if !inner.busy.get() => break,
                ConnState::Ready => self.wait(&inner.turn, loc)?,
                state => {
                    inner.want_connection();
                    if !inner.wait_for_ready {
                        return Err(CallError::Unavailable {
                            state,
                            last_error: inner.last_error.borrow().clone(),
                        });
                    }
                    self.wait(&inner.ready, loc)?;
                }
            }
        }
        inner.busy.set(true);
        let mut conn = inner
            .conn
            .borrow_mut()
            .take()
            .expect("a Ready connection is present");
        let r = op(&mut conn);
        inner.busy.set(false);
        inner.last_used.set(crate::time::now());
        match r {
            Ok(v) => {
                if inner.state.get() == ConnState::Ready {
                    *inner.conn.borrow_mut() = Some(conn);
                }
                inner.turn.borrow_mut().notify_one(hub());
                Ok(v)
            }
            Err(e) => {
                drop(conn);
                let kind = e.kind();
                let msg = e.to_string();
                inner.broken(io::Error::new(kind, msg));
                inner.turn.borrow_mut().notify_one(hub());
                Err(CallError::Io(e))
            }
        }
    }

    fn wait(
        &self,
        list: &RefCell<WaitList>,
        loc: &'static Location<'static>,
    ) -> Result<(), CallError> {
        let inner = &*self.inner;
        if inner.waiting.get() >= inner.max_waiters {
            return Err(CallError::TooManyWaiters(inner.waiting.get()));
        }
        inner.waiting.set(inner.waiting.get() + 1);
        let r = park::wait_on(list, loc);
        inner.waiting.set(inner.waiting.get() - 1);
        r.map_err(CallError::Cancelled)
    }

    /// Marks the connection broken from outside a call (e.g. a push
    /// subscription's reader saw it close); the reconnector takes over.
    pub fn mark_broken(&self, why: io::Error) {
        self.inner.broken(why);
    }

    /// Closes the connection and stops reconnecting for good; waiting
    /// callers get [`CallError::Shutdown`].
    pub fn shutdown(&self) {
        let inner = &*self.inner;
        inner.set_state(ConnState::Shutdown);
        inner.conn.borrow_mut().take();
        inner.demand.borrow_mut().notify_all(hub());
        for w in inner.workers.borrow().iter() {
            w.kill();
        }
    }
}

impl<C> Drop for Inner<C> {
    fn drop(&mut self) {
        for w in self.workers.get_mut().drain(..) {
            w.kill();
        }
    }
}

/// The background loop: connect when wanted, back off between attempts.
///
/// It never holds a strong reference to `Inner` while parked, so dropping
/// the last `Reconnecting` handle ends it.
fn reconnector<C: 'static>(
    weak: Weak<Inner<C>>,
    demand: Rc<RefCell<WaitList>>,
    mut backoff: Backoff,
) {
    let loc = Location::caller();
    // When the connection we made became Ready (to judge its health).
    let mut connected_at: Option<Instant> = None;
    let mut ever_connected = false;
    let mut last_delay = Duration::ZERO;
    loop {
        // Wait until an attempt is due.
        loop {
            let Some(inner) = weak.upgrade() else { return };
            match inner.state.get() {
                ConnState::Shutdown => return,
                ConnState::Idle if inner.demanded.get() => break,
                ConnState::TransientFailure => break,
                _ => {}
            }
            drop(inner);
            if park::wait_on(&demand, loc).is_err() {
                return;
            }
        }
        let Some(inner) = weak.upgrade() else { return };
        let delay = match connected_at.take() {
            // The connection we made broke. Only a healthy one resets the
            // backoff; then the first reconnect waits a random part of the
            // initial delay, so a crowd of clients spreads out.
            Some(at) if crate::time::now().duration_since(at) >= inner.healthy_after => {
                backoff.reset();
                if inner.first_delay {
                    backoff.splay()
                } else {
                    Duration::ZERO
                }
            }
            Some(_) => backoff.next_delay(),
            None if inner.state.get() == ConnState::TransientFailure => backoff.next_delay(),
            // First connection, from Idle.
            None => Duration::ZERO,
        };
        drop(inner);
        if !delay.is_zero() {
            last_delay = delay;
            if crate::sleep(delay).is_err() {
                return;
            }
        }
        let Some(inner) = weak.upgrade() else { return };
        if inner.state.get() == ConnState::Shutdown {
            return;
        }
        inner.set_state(ConnState::Connecting);
        let budget = inner.min_connect_timeout.max(last_delay);
        let attempt = crate::timeout(budget, || -> io::Result<C> {
            let mut c = (inner.connect)()?;
            if let Some(hook) = &inner.on_connect {
                hook(&mut c)?;
            }
            Ok(c)
        })
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connection attempt timed out after {budget:?}"),
            ))
        });
        match attempt {
            Ok(c) => {
                if ever_connected {
                    inner.reconnects.set(inner.reconnects.get() + 1);
                }
                ever_connected = true;
                *inner.conn.borrow_mut() = Some(c);
                let now = crate::time::now();
                connected_at = Some(now);
                inner.last_used.set(now);
                inner.demanded.set(false);
                inner.set_state(ConnState::Ready);
            }
            Err(e) => {
                if Cancelled::from_io(&e).is_some_and(|c| c.is_killed()) {
                    return;
                }
                *inner.last_error.borrow_mut() = Some(Arc::new(e));
                inner.set_state(ConnState::TransientFailure);
            }
        }
    }
}

/// Pings the connection once it has been idle for a heartbeat interval, so
/// a dead peer is found within `interval + timeout` of the last activity.
fn heartbeat_loop<C: 'static>(weak: Weak<Inner<C>>, hb: Heartbeat, ping: Hook<C>) {
    loop {
        let due = match weak.upgrade() {
            Some(inner) => inner.last_used.get() + hb.interval(),
            None => return,
        };
        if crate::time::sleep_until(due).is_err() {
            return;
        }
        let Some(inner) = weak.upgrade() else { return };
        let idle_for = crate::time::now().duration_since(inner.last_used.get());
        if inner.state.get() != ConnState::Ready || inner.busy.get() || idle_for < hb.interval() {
            if inner.state.get() != ConnState::Ready {
                // Nothing to ping; look again after an interval.
                inner.last_used.set(crate::time::now());
            }
            continue;
        }
        let r = Reconnecting { inner }.call(|c| match crate::timeout(hb.timeout(), || ping(c)) {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("heartbeat not answered within {:?}", hb.timeout()),
            )),
        });
        if let Err(e) = r {
            tracing::warn!("sylvan heartbeat: connection marked broken: {e}");
        }
    }
}

/// A subscription to a [`Reconnecting`]'s state changes; see
/// [`Reconnecting::watch`].
#[derive(Debug)]
pub struct Watch {
    q: Queue<ConnState>,
    _alive: Rc<()>,
}

impl Watch {
    /// Waits for the next state change.
    ///
    /// # Cancellation
    ///
    /// Killed or past its deadline: returns [`Cancelled`]; no change is
    /// lost (it stays queued for the next call).
    #[track_caller]
    pub fn next(&self) -> Result<ConnState, Cancelled> {
        self.q.get()
    }

    /// The next state change, if one is queued; never waits.
    pub fn try_next(&self) -> Option<ConnState> {
        self.q.try_get()
    }
}
