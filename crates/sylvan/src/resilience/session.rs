//! [`Session`]: ZooKeeper/Curator session semantics on top of a
//! [`Reconnecting`](super::Reconnecting) connection.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::reconnecting::ConnState;
use crate::cancel::Cancelled;
use crate::green::GreenThread;
use crate::sync::{Queue, Watch, WatchError, WatchReceiver};

/// Session states, as Curator names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Connected for the first time (or again after the session was lost).
    Connected,
    /// The connection dropped; the session may still be alive on the
    /// server. Stop assuming you hold locks or leadership.
    Suspended,
    /// Connected again within the session timeout: the same session goes on.
    Reconnected,
    /// Disconnected longer than the session timeout: the session is gone
    /// (client-side expiry); ephemeral state must be re-created.
    Lost,
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionState::Connected => "connected",
            SessionState::Suspended => "suspended",
            SessionState::Reconnected => "reconnected",
            SessionState::Lost => "lost",
        })
    }
}

type Listener = Box<dyn Fn(SessionState)>;

/// Configures a [`Session`]; see [`Session::builder`].
pub struct SessionBuilder {
    timeout: Duration,
    listeners: Vec<Listener>,
}

impl fmt::Debug for SessionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBuilder")
            .field("timeout", &self.timeout)
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

impl SessionBuilder {
    /// Calls `f` on every session state change, in order. Listeners run in
    /// their own green thread: a slow one delays other listeners, never the
    /// session's timing or the reconnector.
    pub fn on_change(mut self, f: impl Fn(SessionState) + 'static) -> Self {
        self.listeners.push(Box::new(f));
        self
    }

    /// Starts following `conn`'s state changes, from
    /// [`Reconnecting::watch`](super::Reconnecting::watch). The state the
    /// receiver holds when the session starts counts: a connection that is
    /// `Ready` already makes the session `Connected`.
    pub fn start(self, conn_states: WatchReceiver<ConnState>) -> Session {
        let shared = Rc::new(Shared {
            state: Cell::new(None),
            suspended_at: Cell::new(None),
            states: Watch::new(None),
        });
        let events: Queue<SessionState> = Queue::unbounded();
        let listeners = self.listeners;
        let ev = events.clone();
        let notifier = crate::Builder::new()
            .name("sylvan-session-listeners")
            .stack_size(128 * 1024)
            .spawn(move || {
                while let Ok(s) = ev.get() {
                    for l in &listeners {
                        l(s);
                    }
                }
            })
            .unwrap_or_else(|e| panic!("sylvan Session: {e}"));
        let sh = shared.clone();
        let timeout = self.timeout;
        let follower = crate::Builder::new()
            .name("sylvan-session")
            .stack_size(128 * 1024)
            .spawn(move || follow(conn_states, sh, events, timeout))
            .unwrap_or_else(|e| panic!("sylvan Session: {e}"));
        Session {
            shared,
            workers: vec![follower, notifier],
            timeout,
        }
    }
}

struct Shared {
    state: Cell<Option<SessionState>>,
    suspended_at: Cell<Option<Instant>>,
    /// The state for [`Session::watch`] subscribers.
    states: Watch<Option<SessionState>>,
}

impl Shared {
    fn set(&self, s: SessionState, events: &Queue<SessionState>) {
        self.state.set(Some(s));
        // The listeners' own queue (one, drained by their green thread).
        let _ = events.try_put(s);
        self.states.send(Some(s));
    }
}

fn follow(
    mut conn: WatchReceiver<ConnState>,
    shared: Rc<Shared>,
    events: Queue<SessionState>,
    timeout: Duration,
) {
    // The connection state seen last, to spot a drop and reconnect that
    // both happened while this green thread did not run.
    let mut last: Option<ConnState> = None;
    loop {
        let cs = *conn.borrow_and_update();
        let current = shared.state.get();
        match cs {
            ConnState::Ready => {
                let s = match (current, shared.suspended_at.take()) {
                    (Some(SessionState::Suspended), Some(_)) => SessionState::Reconnected,
                    // Ready, then Ready again: the watch woke us for a
                    // change we did not see, so the connection dropped and
                    // came back in between — at once, so within the
                    // session timeout.
                    (Some(SessionState::Connected | SessionState::Reconnected), None)
                        if last == Some(ConnState::Ready) =>
                    {
                        shared.set(SessionState::Suspended, &events);
                        SessionState::Reconnected
                    }
                    _ => SessionState::Connected,
                };
                shared.set(s, &events);
            }
            ConnState::Shutdown => return,
            _ => {
                if matches!(
                    current,
                    Some(SessionState::Connected | SessionState::Reconnected)
                ) {
                    shared.suspended_at.set(Some(crate::time::now()));
                    shared.set(SessionState::Suspended, &events);
                }
            }
        }
        last = Some(cs);
        // Wait for the next change; while suspended, the session expires
        // at suspended_at + timeout.
        let next = match shared.suspended_at.get() {
            Some(at) => match crate::deadline(at + timeout, || conn.changed()) {
                Ok(r) => r,
                Err(_) => {
                    shared.suspended_at.set(None);
                    shared.set(SessionState::Lost, &events);
                    continue;
                }
            },
            None => conn.changed(),
        };
        if next.is_err() {
            return;
        }
    }
}

/// ZooKeeper/Curator session semantics for any reconnecting connection.
///
/// After a disconnect the session is [`Suspended`](SessionState::Suspended);
/// reconnected within the session timeout it is
/// [`Reconnected`](SessionState::Reconnected); otherwise, when the timeout
/// passes with no connection, it is [`Lost`](SessionState::Lost) — decided on
/// the client, without waiting to hear from the server. Listeners run in
/// their own green thread and can't stall the reconnector.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::resilience::{Reconnecting, Session, SessionState};
///
/// let l = sylvan::listen("127.0.0.1:0").unwrap();
/// let addr = l.local_addr().unwrap();
/// let conn = Reconnecting::builder(move || sylvan::connect(addr)).wait_for_ready(true).build();
/// let session = Session::builder(Duration::from_secs(10))
///     .on_change(|s| println!("session {s}"))
///     .start(conn.watch());
/// let mut states = session.watch();
/// conn.call(|_| Ok(())).unwrap();
/// states.changed().unwrap();
/// assert_eq!(*states.borrow(), Some(SessionState::Connected));
/// ```
pub struct Session {
    shared: Rc<Shared>,
    workers: Vec<GreenThread<()>>,
    timeout: Duration,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.shared.state.get())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Session {
    /// A session that is lost after `timeout` without a connection.
    pub fn builder(timeout: Duration) -> SessionBuilder {
        SessionBuilder {
            timeout,
            listeners: Vec::new(),
        }
    }

    /// The state now (`None` before the first connection).
    pub fn state(&self) -> Option<SessionState> {
        self.shared.state.get()
    }

    /// Subscribes to the session state: the receiver reads it now
    /// ([`borrow`](WatchReceiver::borrow), `None` before the first
    /// connection) and waits for the next change
    /// ([`changed`](WatchReceiver::changed)).
    ///
    /// A [`Watch`] keeps only the latest state: a subscriber that does not
    /// run between two changes sees the later one only, but is woken for
    /// each. To act on every change in order, use
    /// [`SessionBuilder::on_change`]. A dropped receiver costs nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::{Reconnecting, Session, SessionState};
    ///
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let conn = Reconnecting::builder(move || sylvan::connect(addr)).build();
    /// let session = Session::builder(Duration::from_secs(10)).start(conn.watch());
    /// let mut states = session.watch();
    /// assert_eq!(*states.borrow(), None);
    /// conn.call(|_| Ok(())).unwrap();
    /// states.changed().unwrap();
    /// assert_eq!(*states.borrow(), Some(SessionState::Connected));
    /// ```
    pub fn watch(&self) -> WatchReceiver<Option<SessionState>> {
        self.shared.states.subscribe()
    }

    /// Waits until the session is in `state`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::{Reconnecting, Session, SessionState};
    ///
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let conn = Reconnecting::builder(move || sylvan::connect(addr)).eager(true).build();
    /// let session = Session::builder(Duration::from_secs(10)).start(conn.watch());
    /// session.wait_for(SessionState::Connected).unwrap();
    /// ```
    ///
    /// # Cancellation
    ///
    /// Killed or past its deadline: returns [`Cancelled`]; nothing else
    /// changes.
    #[track_caller]
    pub fn wait_for(&self, state: SessionState) -> Result<(), Cancelled> {
        let mut w = self.watch();
        while *w.borrow_and_update() != Some(state) {
            match w.changed() {
                Ok(()) => {}
                Err(WatchError::Cancelled(c)) => return Err(c),
                // The sender lives in `self.shared`.
                Err(e) => unreachable!("a live session's watch closed: {e}"),
            }
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for w in &self.workers {
            w.kill();
        }
    }
}
