//! `Session`: Connected → Suspended → Reconnected / Lost, on virtual time.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use sylvan::resilience::{Backoff, ConnState, Jitter, Reconnecting, Session, SessionState};

struct Conn;

/// The connection, its session, the "server down" switch, and what the
/// listener saw.
type Setup = (
    Reconnecting<Conn>,
    Session,
    Rc<Cell<bool>>,
    Rc<RefCell<Vec<SessionState>>>,
);

fn setup(timeout: Duration) -> Setup {
    sylvan::time::pause();
    let down = Rc::new(Cell::new(false));
    let d = down.clone();
    let conn = Reconnecting::builder(move || {
        if d.get() {
            Err(io::Error::new(io::ErrorKind::ConnectionRefused, "down"))
        } else {
            Ok(Conn)
        }
    })
    .backoff(
        Backoff::new()
            .jitter(Jitter::None)
            .unwrap()
            .max(Duration::from_secs(2)),
    )
    .first_reconnect_jitter(false)
    .wait_for_ready(true)
    .build();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s2 = seen.clone();
    let session = Session::builder(timeout)
        .on_change(move |s| s2.borrow_mut().push(s))
        .start(conn.watch());
    (conn, session, down, seen)
}

/// Waits (bounded, on virtual time) until the session is in `s`.
fn wait(session: &Session, s: SessionState) {
    sylvan::timeout(Duration::from_secs(3600), || session.wait_for(s))
        .unwrap_or_else(|_| panic!("never {s}"))
        .unwrap();
}

fn kill_connection(conn: &Reconnecting<Conn>) {
    let _ = conn.call(|_| Err::<(), _>(io::Error::new(io::ErrorKind::ConnectionReset, "gone")));
}

#[test]
fn reconnected_within_the_session_timeout() {
    let (conn, session, down, seen) = setup(Duration::from_secs(10));
    let mut states = session.watch();
    assert_eq!(*states.borrow(), None);
    conn.call(|_| Ok(())).unwrap();
    states.changed().unwrap();
    assert_eq!(*states.borrow_and_update(), Some(SessionState::Connected));
    down.set(true);
    kill_connection(&conn);
    wait(&session, SessionState::Suspended);
    sylvan::time::advance(Duration::from_secs(4));
    down.set(false);
    wait(&session, SessionState::Reconnected);
    sylvan::yield_now();
    assert_eq!(
        *seen.borrow(),
        vec![
            SessionState::Connected,
            SessionState::Suspended,
            SessionState::Reconnected
        ]
    );
    conn.shutdown();
}

#[test]
fn lost_after_the_session_timeout_then_connected_anew() {
    let (conn, session, down, seen) = setup(Duration::from_secs(10));
    conn.call(|_| Ok(())).unwrap();
    wait(&session, SessionState::Connected);
    down.set(true);
    let t0 = sylvan::time::now();
    kill_connection(&conn);
    wait(&session, SessionState::Suspended);
    wait(&session, SessionState::Lost);
    assert_eq!(
        sylvan::time::now() - t0,
        Duration::from_secs(10),
        "client-side expiry"
    );
    down.set(false);
    wait(&session, SessionState::Connected);
    sylvan::yield_now();
    assert_eq!(
        *seen.borrow(),
        vec![
            SessionState::Connected,
            SessionState::Suspended,
            SessionState::Lost,
            SessionState::Connected,
        ],
        "a new session"
    );
    conn.shutdown();
}

#[test]
fn a_slow_listener_does_not_stall_reconnection() {
    sylvan::time::pause();
    let down = Rc::new(Cell::new(false));
    let d = down.clone();
    let conn = Reconnecting::builder(move || {
        if d.get() {
            Err(io::ErrorKind::ConnectionRefused.into())
        } else {
            Ok(Conn)
        }
    })
    .backoff(Backoff::new().jitter(Jitter::None).unwrap())
    .first_reconnect_jitter(false)
    .wait_for_ready(true)
    .build();
    let session = Session::builder(Duration::from_secs(30))
        .on_change(|_| {
            // A listener that blocks for a long time on every change.
            let _ = sylvan::sleep(Duration::from_secs(3600));
        })
        .start(conn.watch());
    conn.call(|_| Ok(())).unwrap();
    wait(&session, SessionState::Connected);
    kill_connection(&conn);
    // The connection comes back (reconnector unaffected) and the session
    // follows, while the listener is still asleep.
    conn.call(|_| Ok(())).unwrap();
    wait(&session, SessionState::Reconnected);
    conn.shutdown();
    drop(session);
}

/// A session started on a connection that is `Ready` already begins
/// `Connected` (the watch's current state counts).
#[test]
fn a_session_started_on_a_ready_connection_is_connected() {
    sylvan::time::pause();
    let conn = Reconnecting::builder(|| Ok::<_, io::Error>(Conn)).build();
    conn.call(|_| Ok(())).unwrap();
    let session = Session::builder(Duration::from_secs(10)).start(conn.watch());
    wait(&session, SessionState::Connected);
    conn.shutdown();
}

/// A watch keeps only the latest state: a drop and reconnect that both
/// happen before the session's follower runs show as `Ready` twice, and
/// the session still reports them (suspended, then reconnected).
#[test]
fn a_drop_and_reconnect_between_two_looks_is_still_reported() {
    sylvan::time::pause();
    let conn = sylvan::sync::Watch::new(ConnState::Idle);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s2 = seen.clone();
    let session = Session::builder(Duration::from_secs(10))
        .on_change(move |s| s2.borrow_mut().push(s))
        .start(conn.subscribe());
    conn.send(ConnState::Ready);
    wait(&session, SessionState::Connected);
    // No yield in between: the follower sees only the last.
    conn.send(ConnState::TransientFailure);
    conn.send(ConnState::Connecting);
    conn.send(ConnState::Ready);
    wait(&session, SessionState::Reconnected);
    sylvan::yield_now();
    assert_eq!(
        *seen.borrow(),
        vec![
            SessionState::Connected,
            SessionState::Suspended,
            SessionState::Reconnected
        ]
    );
}
