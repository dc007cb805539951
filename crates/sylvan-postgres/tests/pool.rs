//! The pool against a real server that goes down and comes back: it never
//! holds more sessions than its size, leaks no slot while the server is
//! down (every failed connect frees its slot), and makes new sessions once
//! the server is back.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use sylvan::resilience::PoolError;
use sylvan_postgres::{Error, PgPool};

const SIZE: usize = 4;
const WORKERS: usize = 20;

/// Runs `WORKERS` green threads doing `ops` checkouts + `SELECT 1` each;
/// returns (successes, failures), checking the pool's size after every
/// checkout and every failure.
fn hammer(pool: &PgPool, ops: usize, max_seen: &Rc<Cell<usize>>) -> (usize, Vec<String>) {
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (pool, max_seen) = (pool.clone(), max_seen.clone());
            sylvan::spawn(move || {
                let (mut ok, mut failed) = (0, Vec::new());
                for _ in 0..ops {
                    let r = pool.get().and_then(|mut c| {
                        max_seen.set(max_seen.get().max(pool.state().size));
                        c.query("SELECT 1", &[])
                    });
                    max_seen.set(max_seen.get().max(pool.state().size));
                    match r {
                        Ok(rows) => {
                            assert_eq!(rows[0].get::<i32>(0).unwrap(), 1);
                            ok += 1;
                        }
                        Err(e) => failed.push(e.to_string()),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let mut total = (0, Vec::new());
    for w in workers {
        let (ok, failed) = w.join().unwrap();
        total.0 += ok;
        total.1.extend(failed);
    }
    total
}

#[test]
fn pool_is_bounded_and_leaks_no_slot_while_the_server_is_down() {
    let mut pg = util::server();
    let pool = PgPool::builder(pg.config().query_timeout(Duration::from_secs(5)))
        .max_size(SIZE)
        .checkout_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let max_seen = Rc::new(Cell::new(0));

    // Up: everything succeeds through at most SIZE sessions.
    let (ok, failed) = hammer(&pool, 30, &max_seen);
    assert_eq!((ok, failed.len()), (WORKERS * 30, 0), "{failed:?}");
    assert!(max_seen.get() <= SIZE);
    assert_eq!(pool.state().created, SIZE as u64, "sessions are reused");

    // Down: every call fails with a clear error, the pool stays bounded,
    // and when the callers are gone no slot is held by anyone.
    pg.kill();
    let (ok, failed) = hammer(&pool, 10, &max_seen);
    assert_eq!(ok, 0);
    assert_eq!(failed.len(), WORKERS * 10);
    for f in &failed {
        assert!(
            f.contains("Connection refused")
                || f.contains("closed the connection")
                || f.contains("connection is closed")
                || f.contains("terminating connection")
                || f.contains("reset"),
            "unclear error: {f}"
        );
    }
    assert!(max_seen.get() <= SIZE);
    let s = pool.state();
    assert!(s.create_failures > 0);
    assert_eq!(s.waiters, 0);
    assert_eq!(s.size, s.idle, "a slot is held by nobody: {s:?}");
    // One more checkout with the server down: refused, and its slot freed.
    let before = pool.state().size;
    let e = pool.get().unwrap_err();
    assert!(
        matches!(&e, Error::Pool(PoolError::Create(io)) if io.kind() == std::io::ErrorKind::ConnectionRefused),
        "{e}"
    );
    assert!(e.is_retryable());
    assert!(pool.state().size <= before);

    // Back up: new sessions are made, still at most SIZE.
    pg.restart().unwrap();
    let (ok, failed) = hammer(&pool, 10, &max_seen);
    assert_eq!((ok, failed.len()), (WORKERS * 10, 0), "{failed:?}");
    assert!(max_seen.get() <= SIZE, "max seen {}", max_seen.get());
    assert!(pool.state().created > SIZE as u64);
}

#[test]
fn checkout_timeout_and_max_lifetime() {
    let pg = util::server();
    let pool = PgPool::builder(pg.config())
        .max_size(1)
        .checkout_timeout(Duration::from_millis(100))
        .max_lifetime(Some(Duration::from_millis(300)))
        .build()
        .unwrap();
    let held = pool.get().unwrap();
    let pid = held.backend_pid();
    let e = pool.get().unwrap_err();
    assert!(e.is_timeout() && !e.is_retryable(), "{e}");
    drop(held);
    let again = pool.get().unwrap();
    assert_eq!(again.backend_pid(), pid, "reused within its lifetime");
    drop(again);
    // Past its lifetime, the session is replaced on checkout.
    sylvan::sleep(Duration::from_millis(350)).unwrap();
    let fresh = pool.get().unwrap();
    assert_ne!(fresh.backend_pid(), pid);
}

#[test]
fn idle_sessions_of_a_restarted_server_are_replaced_on_checkout() {
    let mut pg = util::server();
    let pool = PgPool::builder(pg.config()).max_size(2).build().unwrap();
    let pid = pool.get().unwrap().backend_pid();
    assert_eq!(pool.state().idle, 1);
    pg.kill();
    pg.restart().unwrap();
    // The idle session's backend died with its server; the checkout's
    // health check (no round trip) finds the closed socket and makes a new
    // session instead of handing out a dead one.
    let mut c = pool.get().unwrap();
    assert_ne!(c.backend_pid(), pid);
    c.ping().unwrap();
    assert_eq!(pool.state().created, 2);
    assert_eq!(pool.state().size, 1);
}
