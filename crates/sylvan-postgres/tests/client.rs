//! The client against a real server: queries with parameters, errors with
//! SQLSTATE, transactions, and the server's statement_timeout.

mod util;

use std::time::Duration;

use sylvan_postgres::{Error, TxStatus};

#[test]
fn queries_errors_and_transactions() {
    let pg = util::server();
    let mut c = pg.config().connect().unwrap();
    assert!(c.server_version().starts_with(char::is_numeric));

    c.batch_execute("CREATE TABLE kv (k text PRIMARY KEY, v int, note text)")
        .unwrap();
    let n = c
        .execute(
            "INSERT INTO kv VALUES ($1, $2, $3), ($4, $5, $6)",
            &[&"a", &1, &None::<String>, &"b", &2, &"it's \"quoted\""],
        )
        .unwrap();
    assert_eq!(n, 2);
    let rows = c
        .query("SELECT k, v, note FROM kv WHERE v >= $1 ORDER BY k", &[&1])
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get::<String>("k").unwrap(), "a");
    assert_eq!(rows[0].get::<Option<String>>("note").unwrap(), None);
    assert_eq!(rows[1].get::<String>(2).unwrap(), "it's \"quoted\"");
    assert!(
        rows[0].get::<i32>("note").is_err(),
        "NULL into i32 must fail"
    );
    assert!(rows[0].get::<i32>("nope").is_err());
    assert_eq!(c.simple_query("SELECT 1; SELECT 2, 3").unwrap().len(), 2);
    c.ping().unwrap();

    // Server errors carry their SQLSTATE and leave the session usable.
    let e = c
        .execute("INSERT INTO kv VALUES ($1, $2)", &[&"a", &9])
        .unwrap_err();
    assert_eq!(e.code(), Some("23505"), "{e}");
    assert!(e.to_string().contains("23505") && e.to_string().contains("duplicate key"));
    assert_eq!(c.simple_query("SELEC 1").unwrap_err().code(), Some("42601"));
    assert!(!c.is_broken());

    // Commit, rollback, and a dropped transaction rolled back lazily.
    let mut tx = c.transaction().unwrap();
    tx.execute("INSERT INTO kv VALUES ('c', 3)", &[]).unwrap();
    tx.commit().unwrap();
    let tx = c.transaction().unwrap();
    tx.rollback().unwrap();
    {
        let mut tx = c.transaction().unwrap();
        tx.execute("INSERT INTO kv VALUES ('d', 4)", &[]).unwrap();
    }
    assert_eq!(c.tx_status(), TxStatus::InTransaction);
    let count: i64 = c.query("SELECT count(*) FROM kv", &[]).unwrap()[0]
        .get(0)
        .unwrap();
    assert_eq!(count, 3, "'d' was rolled back");
    assert_eq!(c.tx_status(), TxStatus::Idle);

    // A failed transaction: COMMIT is refused, the data is not there.
    let mut tx = c.transaction().unwrap();
    tx.execute("INSERT INTO kv VALUES ('e', 5)", &[]).unwrap();
    assert!(tx.execute("INSERT INTO kv VALUES ('a', 0)", &[]).is_err());
    assert_eq!(tx.commit().unwrap_err().code(), Some("25P02"));
    let rows = c.query("SELECT 1 FROM kv WHERE k = 'e'", &[]).unwrap();
    assert!(rows.is_empty());

    // Read-only transactions refuse writes on the server.
    let mut tx = c.read_only_transaction().unwrap();
    let e = tx.execute("DELETE FROM kv", &[]).unwrap_err();
    assert_eq!(e.code(), Some("25006"));
    drop(tx);
    c.close().unwrap();

    // A wrong database: a clear error from the login.
    let e = pg.config().dbname("nope").connect().unwrap_err();
    assert_eq!(e.code(), Some("3D000"), "{e}");
}

#[test]
fn statement_timeout_is_a_server_error_and_keeps_the_session() {
    let pg = util::server();
    let mut c = pg
        .config()
        .statement_timeout(Duration::from_millis(200))
        .connect()
        .unwrap();
    let t0 = std::time::Instant::now();
    let e = c.simple_query("SELECT pg_sleep(10)").unwrap_err();
    assert_eq!(e.code(), Some("57014"), "{e}");
    assert!(e.is_timeout() && !e.is_retryable());
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(!c.is_broken());
    assert_eq!(c.query("SELECT 1", &[]).unwrap().len(), 1);
}

#[test]
fn connect_errors_are_clear() {
    let pg = util::server();
    let port = pg.port();
    drop(pg);
    let e = sylvan_postgres::Config::new()
        .port(port)
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .unwrap_err();
    assert!(
        matches!(&e, Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused),
        "{e}"
    );
    assert!(e.is_retryable());
}
