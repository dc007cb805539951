//! The retry rule of `PgPool`, case by case, against a real server: a
//! transaction is replayed only if it never reached COMMIT, and then its
//! rows exist once; a COMMIT in flight is never replayed; a read-only
//! transaction is replayed even after it was sent; other server errors
//! are not retried.

mod util;

use std::cell::Cell;
use std::time::Duration;

use sylvan::resilience::StopReason;
use sylvan_postgres::PgPool;

fn pool(pg: &sylvan_postgres::test_server::TempServer, query_timeout: Duration) -> PgPool {
    let pool = PgPool::builder(pg.config().query_timeout(query_timeout))
        .max_size(2)
        .build()
        .unwrap();
    pool.get()
        .unwrap()
        .batch_execute("CREATE TABLE t (k text PRIMARY KEY)")
        .unwrap();
    pool
}

fn count(pool: &PgPool, k: &str) -> i64 {
    pool.get()
        .unwrap()
        .query("SELECT count(*) FROM t WHERE k = $1", &[&k])
        .unwrap()[0]
        .get(0)
        .unwrap()
}

#[test]
fn a_transaction_that_never_reached_commit_is_replayed_and_applied_once() {
    let pg = util::server();
    let pool = pool(&pg, Duration::from_secs(10));
    let runs = Cell::new(0);
    pool.transaction(|tx| {
        runs.set(runs.get() + 1);
        tx.execute("INSERT INTO t VALUES ($1)", &[&"x"])?;
        if runs.get() == 1 {
            // The server ends this session mid-transaction (FATAL 57P01),
            // as a restart would: the insert is rolled back with it.
            tx.simple_query("SELECT pg_terminate_backend(pg_backend_pid())")?;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(runs.get(), 2);
    assert_eq!(count(&pool, "x"), 1);
}

#[test]
fn a_commit_in_flight_is_never_replayed() {
    let pg = util::server();
    let pool = pool(&pg, Duration::from_millis(300));
    // A deferred trigger makes COMMIT itself slow: the client's query
    // timeout passes while COMMIT is in flight.
    pool.get()
        .unwrap()
        .batch_execute(
            "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$; \
             CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON t \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow()",
        )
        .unwrap();
    let runs = Cell::new(0);
    let e = pool
        .transaction(|tx| {
            runs.set(runs.get() + 1);
            tx.execute("INSERT INTO t VALUES ($1)", &[&"y"])
        })
        .unwrap_err();
    assert_eq!(runs.get(), 1, "replayed after COMMIT was sent");
    assert!(e.error().is_commit_unknown(), "{e}");
    assert!(e.error().is_timeout(), "{e}");
    assert!(e.to_string().contains("may or may not be applied"), "{e}");
}

#[test]
fn a_read_only_transaction_is_replayed_even_after_it_was_sent() {
    let pg = util::server();
    let pool = pool(&pg, Duration::from_secs(10));
    let runs = Cell::new(0);
    let n: i64 = pool
        .read_only(|tx| {
            runs.set(runs.get() + 1);
            if runs.get() == 1 {
                tx.simple_query("SELECT pg_terminate_backend(pg_backend_pid())")?;
            }
            tx.query("SELECT count(*) FROM t", &[])?[0].get(0)
        })
        .unwrap();
    assert_eq!((runs.get(), n), (2, 0));
    // And it really is read-only.
    let e = pool
        .read_only(|tx| tx.execute("INSERT INTO t VALUES ('z')", &[]))
        .unwrap_err();
    assert_eq!(e.error().code(), Some("25006"), "{e}");
    assert_eq!(e.reason(), StopReason::NotRetryable);
}

#[test]
fn other_server_errors_and_timeouts_are_not_retried() {
    let pg = util::server();
    let pool = pool(&pg, Duration::from_millis(300));
    pool.transaction(|tx| tx.execute("INSERT INTO t VALUES ('a')", &[]))
        .unwrap();
    let runs = Cell::new(0);
    let e = pool
        .transaction(|tx| {
            runs.set(runs.get() + 1);
            tx.execute("INSERT INTO t VALUES ('a')", &[])
        })
        .unwrap_err();
    assert_eq!((runs.get(), e.reason()), (1, StopReason::NotRetryable));
    assert_eq!(e.error().code(), Some("23505"));

    let runs = Cell::new(0);
    let e = pool
        .read_only(|tx| {
            runs.set(runs.get() + 1);
            tx.simple_query("SELECT pg_sleep(5)")
        })
        .unwrap_err();
    assert_eq!(
        (runs.get(), e.reason()),
        (1, StopReason::NotRetryable),
        "{e}"
    );
    assert!(e.error().is_timeout());
}
