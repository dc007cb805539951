//! [`Session`]: ZooKeeper/Curator session semantics on top of a
//! [`Reconnecting`](super::Reconnecting) connection.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::reconnecting::{ConnState, Watch};
use crate::cancel::Cancelled;
use crate::green::GreenThread;
use crate::sync::Queue;

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

    /// Starts following `conn`'s state changes (subscribe with
    /// [`Reconnecting::watch`](super::Reconnecting::watch) before the
    /// connection is first used, so the first `Ready` is seen).
    pub fn start(self, conn_states: Watch) -> Session {
        let shared = Rc::new(Shared {
            state: Cell::new(None),
            suspended_at: Cell::new(None),
            watchers: RefCell::new(Vec::new()),
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
    watchers: RefCell<Vec<Queue<SessionState>>>,
}

impl Shared {
    fn set(&self, s: SessionState, events: &Queue<SessionState>) {
        self.state.set(Some(s));
        let _ = events.try_put(s);
        for w in self.watchers.borrow().iter() {
            let _ = w.try_put(s);
        }
    }
}

fn follow(conn: Watch, shared: Rc<Shared>, events: Queue<SessionState>, timeout: Duration) {
    loop {
        // While suspended, the session expires at suspended_at + timeout.
        let next = match shared.suspended_at.get() {
            Some(at) => {
                let expires = at + timeout;
                match crate::deadline(expires, || conn.next()) {
                    Ok(r) => r,
                    Err(_) => {
                        shared.suspended_at.set(None);
                        shared.set(SessionState::Lost, &events);
                        continue;
                    }
                }
            }
            None => conn.next(),
        };
        let Ok(cs) = next else { return };
        let current = shared.state.get();
        match cs {
            ConnState::Ready => {
                let s = match (current, shared.suspended_at.take()) {
                    (Some(SessionState::Suspended), Some(_)) => SessionState::Reconnected,
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
/// let states = session.watch();
/// conn.call(|_| Ok(())).unwrap();
/// assert_eq!(states.get().unwrap(), SessionState::Connected);
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

    /// Every state change from now on, on a queue.
    pub fn watch(&self) -> Queue<SessionState> {
        let q = Queue::unbounded();
        self.shared.watchers.borrow_mut().push(q.clone());
        q
    }

    /// Waits until the session is in `state`.
    ///
    /// # Cancellation
    ///
    /// Killed or past its deadline: returns [`Cancelled`].
    pub fn wait_for(&self, state: SessionState) -> Result<(), Cancelled> {
        let w = self.watch();
        while self.state() != Some(state) {
            w.get()?;
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
