//! The demo's client load: green threads sending requests through the
//! proxy over `Reconnecting` connections, retrying only what is safe.

use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use sylvan::resilience::{Backoff, Jitter, Reconnecting, Retry};

/// What happened to one request.
#[derive(Debug, Clone)]
pub enum Outcome {
    Ok {
        id: u64,
        latency: Duration,
        /// Which backend answered (1-based).
        backend: usize,
    },
    /// Failed with a clear error (the short name of its kind).
    Failed { error: String },
}

/// Everything the clients did, in order of completion.
#[derive(Default)]
pub struct Log {
    pub outcomes: RefCell<Vec<(Instant, Outcome)>>,
    pub next_id: Cell<u64>,
}

pub type Conn = Reconnecting<BufReader<sylvan::net::TcpStream>>;

/// Makes one client connection to the proxy.
pub fn connection(proxy: SocketAddr) -> Conn {
    Reconnecting::builder(move || {
        let s = sylvan::net::Connector::new()
            .connect_timeout(Duration::from_millis(500))
            .nodelay(true)
            .connect(proxy)?;
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        s.set_write_timeout(Some(Duration::from_secs(1)))?;
        Ok(BufReader::new(s))
    })
    .backoff(
        Backoff::new()
            .initial(Duration::from_millis(50))
            .max(Duration::from_millis(500))
            .jitter(Jitter::Full)
            .expect("full jitter is valid"),
    )
    .min_connect_timeout(Duration::from_secs(1))
    .healthy_after(Duration::from_secs(1))
    .wait_for_ready(true)
    .build()
}

/// Sends requests until `stop` is set.
pub fn run(conn: Conn, log: Rc<Log>, stop: Rc<Cell<bool>>) {
    // Requests are NOT idempotent here: an attempt that may have reached a
    // backend is never replayed; connection failures before sending are.
    let policy = Retry::<io::Error>::new()
        .max_attempts(20)
        .expect("20 attempts is valid")
        .deadline(Duration::from_secs(2))
        .backoff(
            Backoff::new()
                .initial(Duration::from_millis(20))
                .max(Duration::from_millis(200)),
        )
        .idempotent(false);
    while !stop.get() {
        let id = log.next_id.get() + 1;
        log.next_id.set(id);
        let t0 = Instant::now();
        let r = policy.run(|attempt| {
            conn.call(|c| {
                attempt.mark_sent();
                c.get_ref().write_all(format!("REQ {id}\n").as_bytes())?;
                let mut line = String::new();
                if c.read_line(&mut line)? == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed",
                    ));
                }
                line.trim()
                    .strip_prefix(&format!("OK {id} "))
                    .and_then(|b| b.parse::<usize>().ok())
                    .ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidData, format!("wrong reply {line:?}"))
                    })
            })
            .map_err(io::Error::from)
        });
        let outcome = match r {
            Ok(backend) => Outcome::Ok {
                id,
                latency: t0.elapsed(),
                backend,
            },
            Err(e) => Outcome::Failed {
                error: short_error(&io::Error::from(e)),
            },
        };
        log.outcomes.borrow_mut().push((Instant::now(), outcome));
        if matches!(
            log.outcomes.borrow().last(),
            Some((_, Outcome::Failed { .. }))
        ) {
            // Don't spin on a broken path: give the others a turn.
            if sylvan::sleep(Duration::from_millis(10)).is_err() {
                return;
            }
        }
    }
}

/// A short, stable name for an error, for the report.
fn short_error(e: &io::Error) -> String {
    use io::ErrorKind::*;
    match e.kind() {
        TimedOut => "timed out".into(),
        ConnectionReset => "connection reset".into(),
        ConnectionRefused => "connection refused".into(),
        UnexpectedEof => "connection closed".into(),
        BrokenPipe => "broken pipe".into(),
        NotConnected => "unavailable".into(),
        InvalidData => "bad reply".into(),
        other => format!("{other:?}"),
    }
}
