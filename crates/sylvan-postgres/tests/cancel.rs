//! A call that gives up — its query timeout, a sylvan `timeout` scope, or
//! a kill — cancels the statement on the server with a CancelRequest: the
//! backend stops running it (`pg_stat_activity` shows it gone long before
//! the statement would have ended), and the session is closed.

mod util;

use std::time::{Duration, Instant};

use sylvan_postgres::{Client, Error};

const SLOW: &str = "SELECT pg_sleep(60)";

/// Whether backend `pid` is still running a statement.
fn active(observer: &mut Client, pid: i32) -> bool {
    let rows = observer
        .query(
            "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
            &[&pid],
        )
        .unwrap();
    !rows.is_empty()
}

/// Polls (bounded) until `pid` is no longer running a statement. pg_sleep
/// does not notice a closed socket, so without the CancelRequest it would
/// stay active for 60 s.
fn wait_gone(observer: &mut Client, pid: i32) {
    let r = sylvan::timeout(Duration::from_secs(10), || {
        while active(observer, pid) {
            sylvan::sleep(Duration::from_millis(10))?;
        }
        Ok::<_, sylvan::Cancelled>(())
    });
    assert!(r.is_ok(), "backend {pid} still runs its statement");
}

fn wait_active(observer: &mut Client, pid: i32) {
    let r = sylvan::timeout(Duration::from_secs(10), || {
        while !active(observer, pid) {
            sylvan::sleep(Duration::from_millis(5))?;
        }
        Ok::<_, sylvan::Cancelled>(())
    });
    assert!(r.is_ok(), "backend {pid} never started its statement");
}

#[test]
fn query_timeout_cancels_on_the_server() {
    let pg = util::server();
    let mut observer = pg.config().connect().unwrap();
    let mut c = pg
        .config()
        .query_timeout(Duration::from_millis(300))
        .connect()
        .unwrap();
    let pid = c.backend_pid().unwrap();
    let t0 = Instant::now();
    let e = c.simple_query(SLOW).unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert!(e.is_timeout(), "{e}");
    assert!(e.to_string().contains("timed out after 300ms"), "{e}");
    assert!(c.is_broken());
    assert!(matches!(c.ping(), Err(Error::Closed(_))));
    wait_gone(&mut observer, pid);
}

#[test]
fn scoped_deadline_cancels_on_the_server() {
    let pg = util::server();
    let mut observer = pg.config().connect().unwrap();
    let mut c = pg.config().connect().unwrap();
    let pid = c.backend_pid().unwrap();
    let r = sylvan::timeout(Duration::from_millis(300), || c.query(SLOW, &[]));
    assert!(r.is_err(), "the scope's deadline fired");
    assert!(c.is_broken());
    wait_gone(&mut observer, pid);

    // Inside an outer scope that passes, the error names the cancellation.
    let mut c = pg.config().connect().unwrap();
    let pid = c.backend_pid().unwrap();
    let mut inner = None;
    let _ = sylvan::timeout(Duration::from_millis(200), || {
        inner = Some(c.query(SLOW, &[]))
    });
    let e = inner.unwrap().unwrap_err();
    assert!(e.cancelled().is_some_and(|c| c.is_timed_out()), "{e}");
    wait_gone(&mut observer, pid);
}

#[test]
fn killed_green_thread_cancels_on_the_server() {
    let pg = util::server();
    let mut observer = pg.config().connect().unwrap();
    let c = pg.config().connect().unwrap();
    let pid = c.backend_pid().unwrap();
    let worker = sylvan::spawn(move || {
        let mut c = c;
        c.simple_query(SLOW)
    });
    wait_active(&mut observer, pid);
    worker.kill();
    let e = worker.join().unwrap().unwrap_err();
    assert_eq!(e.cancelled(), Some(sylvan::Cancelled::Killed), "{e}");
    wait_gone(&mut observer, pid);
}

#[test]
fn cancel_token_from_another_green_thread_keeps_the_session() {
    let pg = util::server();
    let mut observer = pg.config().connect().unwrap();
    let mut c = pg.config().connect().unwrap();
    let pid = c.backend_pid().unwrap();
    let token = c.cancel_token().unwrap();
    assert_eq!(token.process_id(), pid);
    let canceller = sylvan::spawn(move || {
        wait_active(&mut observer, pid);
        token.cancel()
    });
    let e = c.simple_query(SLOW).unwrap_err();
    assert_eq!(e.code(), Some("57014"), "{e}");
    canceller.join().unwrap().unwrap();
    assert!(!c.is_broken());
    c.ping().unwrap();
}
