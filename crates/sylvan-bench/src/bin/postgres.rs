//! `SELECT 1` round trips against a real PostgreSQL server: sylvan-postgres
//! from 64 green threads, against tokio-postgres on a tokio
//! `current_thread` runtime with 64 tasks, side by side in one run — and
//! tokio-postgres called from 64 green threads through
//! `sylvan::compat::tokio::run`, the other way a green program could talk
//! to PostgreSQL.
//!
//! ```text
//! cargo build --release -p sylvan-bench
//! target/release/postgres            # full run, about 40 s
//! target/release/postgres --quick    # smoke test
//! ```
//!
//! The server is a private one started by the benchmark (`initdb` in a
//! temporary directory, a loopback port; needs `apt-get install -y
//! postgresql`). Each side has 64 sessions, each with one query in flight
//! at a time, for a fixed time per repetition; repetitions alternate the
//! sides (best of 3). Reported: queries per second, and the client
//! process's CPU time per query (`getrusage(RUSAGE_SELF)`, user + system,
//! all threads — for the compat column that includes tokio's worker
//! threads), and the server's CPU time per query (that side's 64
//! backends, from `/proc/<pid>/schedstat`). The server runs on the same cores, so
//! throughput is mostly the server's: the client columns to compare are
//! the CPU ones.
//!
//! Rows: the simple query protocol (`simple_query("SELECT 1")`, one round
//! trip on every side), and a one-round-trip parameterised path
//! (sylvan-postgres's `query`: unnamed Parse/Bind/Describe/Execute/Sync;
//! tokio-postgres: `query` of a statement prepared once per session).

use std::cell::Cell;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sylvan::compat::tokio as ctokio;
use sylvan_bench::{Progress, Table, fmt_ratio};
use sylvan_postgres::test_server::TempServer;

const USAGE: &str = "usage: postgres [--quick]\n\
    SELECT 1 round trips: sylvan-postgres (64 green threads) vs tokio-postgres (64 tasks).\n\
    --quick   shorter repetitions (a smoke test; numbers are noisier)";

const CONNS: usize = 64;

#[derive(Clone, Copy)]
enum Proto {
    Simple,
    OneTrip,
}

/// One measurement: queries done, wall time, client and server CPU time.
#[derive(Clone, Copy)]
struct Run {
    queries: u64,
    wall: Duration,
    cpu: Duration,
    server_cpu: Duration,
}

impl Run {
    fn qps(&self) -> f64 {
        self.queries as f64 / self.wall.as_secs_f64()
    }
    fn cpu_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.queries.max(1) as f64
    }
    fn server_cpu_us(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.queries.max(1) as f64
    }
}

/// CPU time of the server processes (backends) `pids`: the first field
/// of `/proc/<pid>/schedstat`, nanoseconds on the CPU (`stat`'s clock ticks
/// are too coarse: each backend gets a few milliseconds per run). Each
/// side's sessions live through the whole run, so their backends do all
/// the server work of that side.
fn server_cpu(pids: &[u32]) -> Duration {
    let ns: u64 = pids
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ns)
}

fn cpu_time() -> Duration {
    // SAFETY: `getrusage` writes into the zeroed struct we pass and reads
    // nothing else; RUSAGE_SELF is a valid `who`.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn measure(span: Duration, pids: &[u32], body: impl FnOnce(Instant) -> u64) -> Run {
    let pm = pids;
    let (s0, c0, t0) = (server_cpu(pm), cpu_time(), Instant::now());
    let queries = body(t0 + span);
    Run {
        queries,
        wall: t0.elapsed(),
        cpu: cpu_time() - c0,
        server_cpu: server_cpu(pm).saturating_sub(s0),
    }
}

/// sylvan-postgres: one green thread per session, on this thread's hub.
fn sylvan_side(clients: &mut Vec<sylvan_postgres::Client>, proto: Proto, span: Duration) -> Run {
    let pids: Vec<u32> = clients
        .iter()
        .filter_map(|c| c.backend_pid())
        .map(|p| p as u32)
        .collect();
    let taken = std::mem::take(clients);
    let back: Rc<Cell<Vec<sylvan_postgres::Client>>> = Rc::default();
    let run = measure(span, &pids, |end| {
        let workers: Vec<_> = taken
            .into_iter()
            .map(|mut c| {
                sylvan::spawn(move || {
                    let mut n = 0u64;
                    while Instant::now() < end {
                        let rows = match proto {
                            Proto::Simple => c.simple_query("SELECT 1"),
                            Proto::OneTrip => c.query("SELECT 1", &[]),
                        }
                        .expect("SELECT 1");
                        assert_eq!(rows.len(), 1);
                        n += 1;
                    }
                    (n, c)
                })
            })
            .collect();
        let mut total = 0;
        let mut cs = Vec::new();
        for w in workers {
            let (n, c) = w.join().expect("worker");
            total += n;
            cs.push(c);
        }
        back.set(cs);
        total
    });
    *clients = back.take();
    run
}

/// A tokio-postgres session, its `SELECT 1` prepared, and its backend.
type TokioSession = (Arc<tokio_postgres::Client>, tokio_postgres::Statement, u32);

async fn tokio_connect(port: u16) -> TokioSession {
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
        tokio_postgres::NoTls,
    )
    .await
    .expect("tokio-postgres connect");
    tokio::spawn(conn);
    let stmt = client.prepare("SELECT 1").await.expect("prepare");
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("backend pid")
        .get(0);
    (Arc::new(client), stmt, pid as u32)
}

async fn tokio_loop(s: TokioSession, proto: Proto, end: Instant) -> u64 {
    let mut n = 0;
    while Instant::now() < end {
        match proto {
            Proto::Simple => {
                let m = s.0.simple_query("SELECT 1").await.expect("SELECT 1");
                assert!(m.len() >= 2);
            }
            Proto::OneTrip => {
                let rows = s.0.query(&s.1, &[]).await.expect("SELECT 1");
                assert_eq!(rows.len(), 1);
            }
        }
        n += 1;
    }
    n
}

/// tokio-postgres on a current_thread runtime, one task per session.
fn tokio_side(
    rt: &tokio::runtime::Runtime,
    sessions: &[TokioSession],
    proto: Proto,
    span: Duration,
) -> Run {
    let pids: Vec<u32> = sessions.iter().map(|s| s.2).collect();
    measure(span, &pids, |end| {
        rt.block_on(async {
            let tasks: Vec<_> = sessions
                .iter()
                .cloned()
                .map(|s| tokio::spawn(tokio_loop(s, proto, end)))
                .collect();
            let mut total = 0;
            for t in tasks {
                total += t.await.expect("task");
            }
            total
        })
    })
}

/// tokio-postgres from green threads: each query a `compat::tokio::run`.
fn compat_side(sessions: &[TokioSession], proto: Proto, span: Duration) -> Run {
    let pids: Vec<u32> = sessions.iter().map(|s| s.2).collect();
    measure(span, &pids, |end| {
        let workers: Vec<_> = sessions
            .iter()
            .cloned()
            .map(|s| {
                sylvan::spawn(move || {
                    let mut n = 0u64;
                    while Instant::now() < end {
                        let s = s.clone();
                        let ok = ctokio::run(async move {
                            match proto {
                                Proto::Simple => {
                                    s.0.simple_query("SELECT 1").await.map(|m| m.len() >= 2)
                                }
                                Proto::OneTrip => s.0.query(&s.1, &[]).await.map(|r| r.len() == 1),
                            }
                        })
                        .expect("compat run")
                        .expect("SELECT 1");
                        assert!(ok);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("worker")).sum()
    })
}

fn main() -> ExitCode {
    let quick = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => false,
        [q] if q == "--quick" => true,
        [h] if h == "--help" || h == "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (span, reps) = if quick {
        (Duration::from_millis(300), 1)
    } else {
        (Duration::from_secs(2), 3)
    };
    let p = Progress::new();
    p.say("starting a private PostgreSQL server");
    let pg = match TempServer::start() {
        Ok(pg) => pg,
        Err(e) => {
            eprintln!("postgres: cannot start a server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let port = pg.port();
    let mut green: Vec<_> = (0..CONNS)
        .map(|_| pg.config().connect().expect("sylvan-postgres connect"))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let native: Vec<TokioSession> = rt.block_on(async { connect_all(port, CONNS).await });
    let shared: Vec<TokioSession> = (0..CONNS)
        .map(|_| ctokio::run(tokio_connect(port)).expect("compat connect"))
        .collect();

    let mut table = Table::new(&[
        "SELECT 1, 64 sessions",
        "sylvan-postgres, 64 green threads",
        "tokio-postgres, current_thread, 64 tasks",
        "tokio-postgres via compat::tokio::run, 64 green threads",
        "sylvan / tokio",
    ]);
    for (name, proto) in [
        ("simple protocol", Proto::Simple),
        (
            "one round trip with Bind (tokio-postgres: prepared)",
            Proto::OneTrip,
        ),
    ] {
        let (mut a, mut b, mut c): (Option<Run>, Option<Run>, Option<Run>) = (None, None, None);
        let best = |slot: &mut Option<Run>, r: Run| {
            if slot.is_none_or(|s| r.qps() > s.qps()) {
                *slot = Some(r);
            }
        };
        // Warm-up (connections, caches), not counted.
        sylvan_side(&mut green, proto, span / 4);
        tokio_side(&rt, &native, proto, span / 4);
        compat_side(&shared, proto, span / 4);
        for rep in 0..reps {
            p.say(&format!("{name}: repetition {}/{reps}", rep + 1));
            best(&mut a, sylvan_side(&mut green, proto, span));
            best(&mut b, tokio_side(&rt, &native, proto, span));
            best(&mut c, compat_side(&shared, proto, span));
        }
        let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
        table.row(vec![
            format!("{name}: queries/s"),
            format!("{:.0}", a.qps()),
            format!("{:.0}", b.qps()),
            format!("{:.0}", c.qps()),
            fmt_ratio(a.qps(), b.qps()),
        ]);
        table.row(vec![
            format!("{name}: client CPU per query"),
            format!("{:.1} µs", a.cpu_us()),
            format!("{:.1} µs", b.cpu_us()),
            format!("{:.1} µs", c.cpu_us()),
            fmt_ratio(a.cpu_us(), b.cpu_us()),
        ]);
        table.row(vec![
            format!("{name}: server CPU per query"),
            format!("{:.1} µs", a.server_cpu_us()),
            format!("{:.1} µs", b.server_cpu_us()),
            format!("{:.1} µs", c.server_cpu_us()),
            fmt_ratio(a.server_cpu_us(), b.server_cpu_us()),
        ]);
    }
    println!("{}", table.to_markdown());
    drop(green);
    drop(native);
    drop(shared);
    drop(pg);
    ExitCode::SUCCESS
}

async fn connect_all(port: u16, n: usize) -> Vec<TokioSession> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(tokio_connect(port).await);
    }
    v
}
