//! 50 green threads insert and read through a pool while the server is
//! killed with SIGKILL and restarted three times. Afterwards every
//! committed row is readable, no row exists that was reported as not
//! committed, no transaction was applied twice (unique keys: a replayed
//! commit would hit `23505`), and every failed call has a clear error.

mod util;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use sylvan::resilience::{Backoff, Jitter, Retry};
use sylvan::sync::Queue;
use sylvan_postgres::PgPool;

const WORKERS: usize = 50;
const ROUNDS: usize = 3;
/// Commits to wait for before each kill, and after the last restart.
const BETWEEN_KILLS: usize = 150;

#[derive(Default)]
struct Outcome {
    committed: Vec<String>,
    /// COMMIT was sent and no reply came: may or may not be applied.
    unknown: Vec<String>,
    /// Failed for sure (the transaction never reached COMMIT).
    failed: Vec<String>,
    reads: usize,
    errors: Vec<String>,
}

#[test]
fn committed_rows_survive_three_kills_and_nothing_is_applied_twice() {
    let mut pg = util::server();
    pg.config()
        .connect()
        .unwrap()
        .batch_execute(
            "CREATE TABLE items (k text PRIMARY KEY, writer int NOT NULL, seq int NOT NULL)",
        )
        .unwrap();
    let pool = PgPool::builder(
        pg.config()
            .statement_timeout(Duration::from_secs(5))
            .query_timeout(Duration::from_secs(6)),
    )
    .max_size(20)
    .checkout_timeout(Duration::from_secs(10))
    .retry(
        Retry::new()
            .max_attempts(40)
            .unwrap()
            .deadline(Duration::from_secs(30))
            .backoff(
                Backoff::new()
                    .initial(Duration::from_millis(20))
                    .max(Duration::from_millis(300))
                    .jitter(Jitter::Full)
                    .unwrap(),
            ),
    )
    .build()
    .unwrap();

    let stop = Rc::new(Cell::new(false));
    let progress: Queue<()> = Queue::unbounded();
    let outcome = Rc::new(RefCell::new(Outcome::default()));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (pool, stop, progress, outcome) = (
                pool.clone(),
                stop.clone(),
                progress.clone(),
                outcome.clone(),
            );
            sylvan::spawn(move || {
                let mut mine: Vec<String> = Vec::new();
                let mut seq = 0i32;
                while !stop.get() {
                    seq += 1;
                    let key = format!("w{w}-{seq}");
                    let r = pool.transaction(|tx| {
                        tx.execute(
                            "INSERT INTO items (k, writer, seq) VALUES ($1, $2, $3)",
                            &[&key, &(w as i32), &seq],
                        )
                    });
                    let mut o = outcome.borrow_mut();
                    match r {
                        Ok(n) => {
                            assert_eq!(n, 1);
                            o.committed.push(key.clone());
                            mine.push(key);
                            let _ = progress.put(());
                        }
                        Err(e) => {
                            assert_ne!(
                                e.error().code(),
                                Some("23505"),
                                "a transaction was applied twice: {e}"
                            );
                            o.errors.push(e.to_string());
                            if e.error().is_commit_unknown() {
                                o.unknown.push(key);
                            } else {
                                o.failed.push(key);
                            }
                        }
                    }
                    drop(o);
                    // Every third round, read back one of our committed rows.
                    if seq % 3 == 0 && !mine.is_empty() {
                        let k = mine[(seq as usize * 7) % mine.len()].clone();
                        let r = pool.read_only(|tx| {
                            tx.query("SELECT writer FROM items WHERE k = $1", &[&k])
                        });
                        let mut o = outcome.borrow_mut();
                        match r {
                            Ok(rows) => {
                                assert_eq!(rows.len(), 1, "committed row {k} not readable");
                                assert_eq!(rows[0].get::<i32>(0).unwrap(), w as i32);
                                o.reads += 1;
                            }
                            Err(e) => o.errors.push(e.to_string()),
                        }
                    }
                }
            })
        })
        .collect();

    let wait_commits = |n: usize| {
        let r = sylvan::timeout(Duration::from_secs(60), || {
            for _ in 0..n {
                progress.get()?;
            }
            Ok::<_, sylvan::sync::GetError>(())
        });
        assert!(
            r.is_ok(),
            "no progress: {} committed",
            outcome.borrow().committed.len()
        );
    };
    for _ in 0..ROUNDS {
        wait_commits(BETWEEN_KILLS);
        pg.kill();
        pg.restart().unwrap();
    }
    wait_commits(BETWEEN_KILLS);
    stop.set(true);
    for w in workers {
        w.join().unwrap();
    }

    let o = outcome.borrow();
    let mut c = pg.config().connect().unwrap();
    let rows = c.query("SELECT k FROM items", &[]).unwrap();
    let present: HashSet<String> = rows.iter().map(|r| r.get(0).unwrap()).collect();
    assert_eq!(present.len(), rows.len());
    for k in &o.committed {
        assert!(present.contains(k), "committed row {k} is lost");
    }
    for k in &o.failed {
        assert!(
            !present.contains(k),
            "row {k} was reported failed but is there"
        );
    }
    let known: HashSet<&String> = o.committed.iter().chain(&o.unknown).collect();
    for k in &present {
        assert!(known.contains(k), "row {k} appeared from nowhere");
    }
    // Every failed call says what happened, in words.
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for e in &o.errors {
        assert!(e.contains("postgres"), "unclear error: {e}");
        let kind = e.split(": ").take(3).collect::<Vec<_>>().join(": ");
        *kinds.entry(kind).or_default() += 1;
    }
    println!(
        "{} committed, {} unknown (COMMIT in flight at a kill; {} of them applied), {} failed, \
         {} reads, {} sessions made, errors: {kinds:#?}",
        o.committed.len(),
        o.unknown.len(),
        o.unknown.iter().filter(|k| present.contains(*k)).count(),
        o.failed.len(),
        o.reads,
        pool.state().created,
    );
    assert!(o.committed.len() >= (ROUNDS + 1) * BETWEEN_KILLS);
    assert!(pool.state().size <= 20);
}
