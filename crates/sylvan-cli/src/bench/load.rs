//! The load loop: N connections, each a green thread, spread over the
//! hubs of a [`sylvan::Runtime`].
//!
//! **Closed loop** (default): each connection sends its next request as
//! soon as the previous reply arrived. **Constant rate** (`--rate R`): each
//! of the `c` connections sends at `R / c` per second on a fixed schedule
//! (staggered so the connections don't fire together), and a request's
//! latency is measured from the time it *should* have been sent, so a
//! stall of the server shows up as the latency every delayed request saw
//! (the coordinated-omission correction of wrk2 and HdrHistogram). When a
//! connection is ahead of its schedule it sleeps until the send time, and
//! then its latency counts from the actual send: the timer's own lateness
//! (sylvan's timers wake on millisecond boundaries) is the generator's,
//! not the server's, and must not be charged to the server.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use sylvan::net::{Connector, TcpStream};

use super::http::{self, Url};
use super::record::Recorder;

/// What to send.
#[derive(Debug, Clone)]
pub enum Workload {
    /// Echo: send `payload`, expect it back.
    Echo {
        /// `HOST:PORT`.
        addr: String,
        /// The bytes each request sends.
        payload: Vec<u8>,
    },
    /// HTTP: keep-alive `GET`s.
    Http(Url),
}

impl Workload {
    /// Where connections go.
    pub fn addr(&self) -> &str {
        match self {
            Workload::Echo { addr, .. } => addr,
            Workload::Http(u) => &u.connect,
        }
    }
}

/// How to run the load.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What to send.
    pub workload: Workload,
    /// Connections, over all hubs.
    pub connections: usize,
    /// Hubs (OS threads).
    pub threads: usize,
    /// How long to send.
    pub duration: Duration,
    /// Requests per second over all connections; `None`: closed loop.
    pub rate: Option<f64>,
    /// Bound of each connect and each request.
    pub timeout: Duration,
    /// A new connection for every request.
    pub close: bool,
    /// Width of one timeline interval.
    pub interval: Duration,
}

/// A connection of either kind.
enum Conn {
    Echo(TcpStream, Vec<u8>),
    Http(http::Conn, Rc<[u8]>),
}

/// The outcome of one request: bytes read, HTTP status, must reconnect.
type Outcome = io::Result<(u64, u16, bool)>;

impl Conn {
    fn open(w: &Workload, connector: &Connector, timeout: Duration) -> io::Result<Conn> {
        let s = connector.connect(w.addr())?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        Ok(match w {
            Workload::Echo { payload, .. } => Conn::Echo(s, vec![0; payload.len()]),
            Workload::Http(u) => Conn::Http(http::Conn::new(s), u.request().into()),
        })
    }

    fn request(&mut self, w: &Workload) -> Outcome {
        match (self, w) {
            (Conn::Echo(s, buf), Workload::Echo { payload, .. }) => {
                (&*s).write_all(payload)?;
                (&*s).read_exact(buf)?;
                if buf != payload {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "echo reply differs",
                    ));
                }
                Ok((buf.len() as u64, 200, false))
            }
            (Conn::Http(c, req), _) => {
                let r = c.round_trip(req)?;
                Ok((r.bytes, r.status, r.close))
            }
            _ => unreachable!("a connection is opened for its own workload"),
        }
    }
}

/// A short name for an error, to group them in the report.
fn kind(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => "connection closed".into(),
        io::ErrorKind::InvalidData => format!("bad reply: {e}"),
        k => format!("{k}").to_lowercase(),
    }
}

/// Runs one connection's loop until `end`; `phase` staggers its schedule
/// in constant-rate mode.
#[allow(clippy::too_many_arguments)]
fn connection(
    plan: &Plan,
    connector: &Connector,
    rec: &RefCell<Recorder>,
    progress: &AtomicU64,
    start: Instant,
    end: Instant,
    period: Option<Duration>,
    phase: Duration,
) {
    let w = &plan.workload;
    let mut conn: Option<Conn> = None;
    let mut next = start + phase;
    let mut backoff = Duration::from_millis(1);
    loop {
        let intended = match period {
            Some(p) => {
                let at = next;
                if at >= end {
                    return;
                }
                next += p;
                if Instant::now() < at {
                    // Early: wait for the send time. The timer may wake us
                    // late (sylvan's timers have millisecond granularity);
                    // that lateness is ours, not the server's, so measure
                    // from the actual send.
                    if sylvan::time::sleep_until(at).is_err() {
                        return;
                    }
                    Instant::now()
                } else {
                    // Late: the previous reply held this request back;
                    // measure from when it should have gone out.
                    at
                }
            }
            None => {
                let now = Instant::now();
                if now >= end {
                    return;
                }
                now
            }
        };
        let c = match &mut conn {
            Some(c) => c,
            None => match Conn::open(w, connector, plan.timeout) {
                Ok(c) => {
                    backoff = Duration::from_millis(1);
                    conn.insert(c)
                }
                Err(e) => {
                    rec.borrow_mut()
                        .error(Instant::now(), format!("connect: {}", kind(&e)));
                    // Don't spin on a refusing server.
                    let _ = sylvan::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(100));
                    continue;
                }
            },
        };
        match c.request(w) {
            Ok((bytes, status, close)) => {
                let done = Instant::now();
                let mut r = rec.borrow_mut();
                r.success(intended, done, bytes);
                if !(200..400).contains(&status) {
                    r.non_2xx += 1;
                }
                progress.fetch_add(1, Relaxed);
                if close || plan.close {
                    conn = None;
                }
            }
            Err(e) => {
                if sylvan::Cancelled::from_io(&e).is_some() {
                    return;
                }
                rec.borrow_mut().error(Instant::now(), kind(&e));
                conn = None;
            }
        }
    }
}

/// Runs `plan` and returns the merged measurements and the elapsed time
/// (from the start until the last request in flight finished).
pub fn run(
    plan: &Plan,
    progress: &Arc<AtomicU64>,
    stopped: &Arc<AtomicBool>,
) -> anyhow::Result<(Recorder, Duration)> {
    let start = Instant::now() + Duration::from_millis(20); // let every hub get going
    let end = start + plan.duration;
    let period = plan
        .rate
        .map(|r| Duration::from_secs_f64(plan.connections as f64 / r.max(1e-9)));
    let threads = plan.threads.min(plan.connections).max(1);
    let rt = sylvan::Runtime::builder()
        .threads(threads)
        .thread_name("sylvan-bench")
        .build()?;
    let recorders = rt.run(|| {
        let i = sylvan::Runtime::current_index().unwrap_or(0);
        // This hub's share of the connections: i, i + threads, ...
        let mine: Vec<usize> = (i..plan.connections).step_by(threads).collect();
        let rec = Rc::new(RefCell::new(Recorder::new(start, plan.interval)));
        let connector = Rc::new(Connector::new().connect_timeout(plan.timeout).nodelay(true));
        let workers: Vec<_> = mine
            .into_iter()
            .map(|k| {
                let (plan, rec, connector, progress) = (
                    plan.clone(),
                    rec.clone(),
                    connector.clone(),
                    progress.clone(),
                );
                let phase = period.map_or(Duration::ZERO, |p| {
                    p.mul_f64(k as f64 / plan.connections as f64)
                });
                sylvan::spawn(move || {
                    if Instant::now() < start {
                        let _ = sylvan::time::sleep_until(start);
                    }
                    connection(
                        &plan, &connector, &rec, &progress, start, end, period, phase,
                    )
                })
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
        let finished = Instant::now();
        let r = rec.borrow().clone();
        (r, finished)
    });
    stopped.store(true, Relaxed);
    let mut merged: Option<Recorder> = None;
    let mut last = start;
    for (r, finished) in recorders {
        last = last.max(finished);
        match &mut merged {
            None => merged = Some(r),
            Some(m) => m.merge(r),
        }
    }
    let mut merged = merged.unwrap_or_else(|| Recorder::new(start, plan.interval));
    merged.fold_tail(plan.duration);
    Ok((merged, last.saturating_duration_since(start)))
}
