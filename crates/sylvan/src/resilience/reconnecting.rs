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
use crate::runtime::{self, WaitList};
use crate::sync::{Watch, WatchReceiver};

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

    /// The least time one attempt (connect plus `on_connect`) is given
    /// (default 20 s). As in gRPC's connection backoff, every attempt —
    /// the first included — gets `max(this, current backoff)`, where the
    /// current backoff is the delay waited before the attempt, or the
    /// backoff's initial delay for the first attempt and the first after a
    /// reset.
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

    /// Calls made while not `Ready` wait for `Ready` through failed
    /// attempts (bounded by the caller's own deadline) instead of failing
    /// in `TransientFailure` (default: fail fast, gRPC's default — which
    /// still waits for the connect an `Idle` call triggers, or the attempt
    /// under way in `Connecting`; see [`Reconnecting::call`]).
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
            states: Watch::new(ConnState::Idle),
            reconnects: Cell::new(0),
            failed_attempts: Cell::new(0),
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
    /// The state for [`Reconnecting::watch`] subscribers.
    states: Watch<ConnState>,
    /// Somebody called while `Idle`: connect.
    demanded: Cell<bool>,
    reconnects: Cell<u64>,
    /// Transitions into `TransientFailure` (failed attempts and broken
    /// connections), for fail-fast callers waiting on an attempt.
    failed_attempts: Cell<u64>,
    workers: RefCell<Vec<GreenThread<()>>>,
}

impl<C> Inner<C> {
    fn set_state(&self, s: ConnState) {
        let old = self.state.replace(s);
        if old == s {
            return;
        }
        if s == ConnState::TransientFailure {
            self.failed_attempts.set(self.failed_attempts.get() + 1);
        }
        // Callers waiting for `Ready` re-check: wait-for-ready ones wait
        // on, fail-fast ones fail once an attempt has failed.
        self.ready.borrow_mut().wake_all();
        if old == ConnState::Ready {
            // Callers waiting for their turn re-check the state.
            self.turn.borrow_mut().wake_all();
        }
        // Never blocks the reconnector, whatever the subscribers do.
        self.states.send(s);
    }

    fn want_connection(&self) {
        if self.state.get() == ConnState::Idle && !self.demanded.replace(true) {
            self.demand.borrow_mut().wake_all();
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
        self.demand.borrow_mut().wake_all();
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
///   default), giving each attempt `max(min_connect_timeout, current
///   backoff)`. The
///   `connect` closure runs again on every attempt, so a name it resolves
///   is resolved again each time.
/// - The `on_connect` hook runs before `Ready` (handshake, auth,
///   re-subscribe). A panic in `connect` or `on_connect` is logged and
///   fails that attempt, like an error.
/// - [`call`](Self::call) gives the operation exclusive use of the
///   connection; an I/O error marks the connection broken and wakes the
///   reconnector; a panic in the operation does the same. Calls are
///   fail-fast (they fail in `TransientFailure`, and in `Idle` or
///   `Connecting` wait for the attempt's outcome) unless built with
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

    /// Subscribes to state changes: the receiver reads the state now
    /// ([`borrow`](WatchReceiver::borrow)) and waits for the next change
    /// ([`changed`](WatchReceiver::changed)).
    ///
    /// A [`Watch`] keeps only the latest state: a subscriber that does not
    /// run between two transitions sees the later one only (a
    /// `Connecting` that ended at once in `Ready` may never be seen), but
    /// every transition wakes it, so it never misses that something
    /// changed. A subscriber that never reads can't stall the reconnector,
    /// and a dropped one costs nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::{ConnState, Reconnecting};
    ///
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let conn = Reconnecting::builder(move || sylvan::connect(addr)).build();
    /// let mut states = conn.watch();
    /// assert_eq!(*states.borrow(), ConnState::Idle);
    /// conn.call(|_| Ok(())).unwrap();
    /// states.changed().unwrap();
    /// assert_eq!(*states.borrow(), ConnState::Ready);
    /// ```
    pub fn watch(&self) -> WatchReceiver<ConnState> {
        self.inner.states.subscribe()
    }

    /// Runs `op` with exclusive use of the connection.
    ///
    /// When the connection is not `Ready`, what happens follows gRPC's
    /// wait-for-ready semantics:
    ///
    /// - **Fail-fast** (the default): in `Idle` the call starts connecting
    ///   and waits for that attempt; in `Connecting` it waits for the
    ///   attempt under way. If the attempt succeeds the call goes through;
    ///   if it fails, or the state is already `TransientFailure`, the call
    ///   fails with [`CallError::Unavailable`] (state `TransientFailure`,
    ///   with the attempt's error).
    /// - **Wait-for-ready** ([`wait_for_ready`](ReconnectingBuilder::wait_for_ready)):
    ///   the call waits through failed attempts until the connection is
    ///   `Ready`, bounded only by the caller's own deadline.
    ///
    /// If `op` returns an I/O error, the connection is marked broken, the
    /// reconnector is woken, and the error is returned as
    /// [`CallError::Io`]; the operation is not retried here (combine with
    /// [`Retry`](super::Retry) for that).
    ///
    /// # Panics
    ///
    /// A panic in `op` propagates to this caller. The connection is then in
    /// an unknown protocol state (a request may be half-written or a reply
    /// half-read), so it is dropped and marked broken, exactly as on an I/O
    /// error: the reconnector makes a new one and later callers never see
    /// the old one.
    ///
    /// # Cancellation
    ///
    /// Killed or past its deadline while waiting (for `Ready`, for a
    /// connection attempt, or for its turn): returns
    /// [`CallError::Cancelled`], nothing was sent, and the waiter is gone.
    /// If the cancellation interrupts `op` itself, `op` sees the error from
    /// its blocking call; it comes back as `CallError::Io` and the
    /// connection is marked broken, since a request may be half-sent.
    #[track_caller]
    pub fn call<R>(&self, op: impl FnOnce(&mut C) -> io::Result<R>) -> Result<R, CallError> {
        let loc = Location::caller();
        let inner = &*self.inner;
        // Failed attempts so far: a fail-fast call fails once one more has.
        let failed_before = inner.failed_attempts.get();
        loop {
            let state = inner.state.get();
            let attempt_failed = inner.failed_attempts.get() != failed_before;
            match state {
                ConnState::Shutdown => return Err(CallError::Shutdown),
                ConnState::Ready if !inner.busy.get() => break,
                ConnState::Ready => self.wait(&inner.turn, loc)?,
                ConnState::TransientFailure if !inner.wait_for_ready => {
                    return Err(self.unavailable(ConnState::TransientFailure));
                }
                ConnState::Idle | ConnState::Connecting
                    if attempt_failed && !inner.wait_for_ready =>
                {
                    // The attempt we waited for failed (and another one
                    // has started since): fail-fast calls stop here.
                    return Err(self.unavailable(ConnState::TransientFailure));
                }
                _ => {
                    inner.want_connection();
                    self.wait(&inner.ready, loc)?;
                }
            }
        }
        inner.busy.set(true);
        // From here on, every way out (return, error, panic in `op`) gives
        // the turn back; an unfinished `op` also breaks the connection.
        let mut turn = Turn { inner, done: false };
        let mut conn = inner
            .conn
            .borrow_mut()
            .take()
            .expect("a Ready connection is present");
        let r = op(&mut conn);
        turn.done = true;
        match r {
            Ok(v) => {
                if inner.state.get() == ConnState::Ready {
                    *inner.conn.borrow_mut() = Some(conn);
                }
                Ok(v)
            }
            Err(e) => {
                drop(conn);
                let kind = e.kind();
                let msg = e.to_string();
                inner.broken(io::Error::new(kind, msg));
                Err(CallError::Io(e))
            }
        }
    }

    fn unavailable(&self, state: ConnState) -> CallError {
        CallError::Unavailable {
            state,
            last_error: self.inner.last_error.borrow().clone(),
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
        let r = runtime::wait_on(list, loc);
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
        inner.demand.borrow_mut().wake_all();
        for w in inner.workers.borrow().iter() {
            w.kill();
        }
    }
}

/// A call's use of the connection; gives the turn to the next caller
/// however the call ends.
struct Turn<'a, C> {
    inner: &'a Inner<C>,
    /// `op` returned (rather than unwound).
    done: bool,
}

impl<C> Drop for Turn<'_, C> {
    fn drop(&mut self) {
        let inner = self.inner;
        inner.busy.set(false);
        inner.last_used.set(crate::time::now());
        if !self.done {
            // `op` panicked (or is being force-unwound) with the
            // connection taken: its protocol state is unknown. It was
            // dropped with `op`'s frame; reconnect.
            inner.broken(io::Error::other(
                "an operation panicked while using the connection",
            ));
        }
        inner.turn.borrow_mut().wake_one();
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
            if runtime::wait_on(&demand, loc).is_err() {
                return;
            }
        }
        let Some(inner) = weak.upgrade() else { return };
        // The delay before this attempt, and whether it is the backoff's
        // current step (rather than none, or a splay after a reset).
        let (delay, stepped) = match connected_at.take() {
            // The connection we made broke. Only a healthy one resets the
            // backoff; then the first reconnect waits a random part of the
            // initial delay, so a crowd of clients spreads out.
            Some(at) if crate::time::now().duration_since(at) >= inner.healthy_after => {
                backoff.reset();
                if inner.first_delay {
                    (backoff.splay(), false)
                } else {
                    (Duration::ZERO, false)
                }
            }
            Some(_) => (backoff.next_delay(), true),
            None if inner.state.get() == ConnState::TransientFailure => {
                (backoff.next_delay(), true)
            }
            // First connection, from Idle.
            None => (Duration::ZERO, false),
        };
        // gRPC's connection backoff: every attempt, the first included, is
        // given max(current backoff, min_connect_timeout). Before the
        // backoff has stepped (first attempt, or first after a reset) the
        // current backoff is its initial delay.
        let current = if stepped {
            delay
        } else {
            backoff.initial_delay()
        };
        drop(inner);
        if !delay.is_zero() && crate::sleep(delay).is_err() {
            return;
        }
        let Some(inner) = weak.upgrade() else { return };
        if inner.state.get() == ConnState::Shutdown {
            return;
        }
        inner.set_state(ConnState::Connecting);
        let budget = inner.min_connect_timeout.max(current);
        // A panic in `connect` or `on_connect` fails this attempt only:
        // the reconnector must live on, or every caller would wait on a
        // `Connecting` that never ends. (A forced unwind goes on.)
        let attempt = crate::green::catch_panic(|| {
            crate::timeout(budget, || -> io::Result<C> {
                let mut c = (inner.connect)()?;
                if let Some(hook) = &inner.on_connect {
                    hook(&mut c)?;
                }
                Ok(c)
            })
        });
        let attempt = match attempt {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connection attempt timed out after {budget:?}"),
            )),
            Err(p) => {
                let msg = crate::runtime::panic_message(p.as_ref()).to_string();
                tracing::error!("sylvan Reconnecting: connection attempt panicked: {msg}");
                Err(io::Error::other(format!(
                    "connection attempt panicked: {msg}"
                )))
            }
        };
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
