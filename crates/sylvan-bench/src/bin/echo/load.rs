//! The load generator (one implementation for every server) and the CPU
//! accounting read from `/proc`.
//!
//! One thread of plain mio drives N connections, each closed-loop: write a
//! 64-byte request, read its 64-byte echo (checked byte for byte), write the
//! next. After a warm-up it measures for a fixed time: requests completed,
//! the latency of each (request write → end of its echo) as a sorted sample,
//! the CPU time of the server process, of this process, and of the two
//! CPUs as a whole (to see other load on the machine).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};

use crate::{Kind, LOAD_CPU, SERVER_CPU};

/// Bytes per request and per echo.
pub(crate) const MSG: usize = 64;

const PAYLOAD: [u8; MSG] = {
    let mut p = [0u8; MSG];
    let mut i = 0;
    while i < MSG {
        p[i] = b'a' + (i % 26) as u8;
        i += 1;
    }
    p
};

/// One measured round of one point.
#[derive(Debug)]
pub(crate) struct Measured {
    pub(crate) kind: Kind,
    pub(crate) conns: usize,
    pub(crate) requests: u64,
    pub(crate) elapsed: Duration,
    /// Latencies in nanoseconds, sorted.
    pub(crate) latencies: Vec<u32>,
    /// CPU time of the server process (all its threads) over the interval.
    pub(crate) server_cpu: Duration,
    /// The same from `utime + stime` in `/proc/<pid>/stat` (clock ticks),
    /// as a cross-check.
    pub(crate) server_cpu_stat: Duration,
    /// This process's (the load generator's) CPU time over the interval.
    pub(crate) load_cpu: Duration,
    /// How the server's and the load generator's CPUs spent the interval.
    pub(crate) cpus: [CpuUse; 2],
}

impl Measured {
    pub(crate) fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Latency at quantile `q` (0..=1), in microseconds.
    pub(crate) fn pct_us(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[i] as f64 / 1000.0
    }

    /// Server CPU microseconds per request.
    pub(crate) fn cpu_us(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }

    /// Share (%) of the interval the server (`i` = 0) or the load generator
    /// (`i` = 1) kept its CPU busy.
    pub(crate) fn own_pct(&self, i: usize) -> f64 {
        let ours = if i == 0 {
            self.server_cpu
        } else {
            self.load_cpu
        };
        ours.as_secs_f64() / self.elapsed.as_secs_f64() * 100.0
    }

    /// Share (%) of the interval that the server's CPU (`i` = 0) or the load
    /// generator's (`i` = 1) was busy with anything else: other processes
    /// (other engineers' builds show up here) and interrupts that came while
    /// it idled.
    pub(crate) fn other_pct(&self, i: usize) -> f64 {
        (self.cpus[i].busy_pct() - self.own_pct(i)).max(0.0)
    }

    /// The larger of the two [`other_pct`](Self::other_pct): how disturbed
    /// this round was.
    pub(crate) fn disturbance(&self) -> f64 {
        self.other_pct(0).max(self.other_pct(1))
    }
}

/// One client connection: closed loop, one request in flight.
struct Client {
    stream: MioStream,
    /// Bytes of the current request written.
    sent: usize,
    /// Bytes of its echo read.
    got: usize,
    echo: [u8; MSG],
    start: Instant,
}

/// Where completed requests are counted.
struct Tally {
    done: u64,
    latencies: Option<Vec<u32>>,
}

impl Client {
    /// Moves the connection on as far as it can go without blocking.
    ///
    /// After a request is fully written it returns without trying to read:
    /// its echo arrives later, and on Linux every arrival of data is a new
    /// edge for epoll, so the event comes. That saves the load generator one
    /// `read` returning `EAGAIN` per request; it is the same for every server.
    fn pump(&mut self, tally: &mut Tally) -> io::Result<()> {
        loop {
            if self.sent < MSG {
                match (&self.stream).write(&PAYLOAD[self.sent..]) {
                    Ok(n) => {
                        self.sent += n;
                        if self.sent == MSG {
                            return Ok(());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
                continue;
            }
            match (&self.stream).read(&mut self.echo[self.got..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed a connection",
                    ));
                }
                Ok(n) => {
                    self.got += n;
                    if self.got == MSG {
                        let now = Instant::now();
                        if self.echo != PAYLOAD {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                "the echo differs from the request",
                            ));
                        }
                        tally.done += 1;
                        if let Some(l) = &mut tally.latencies {
                            let ns = (now - self.start).as_nanos();
                            l.push(ns.min(u32::MAX as u128) as u32);
                        }
                        self.sent = 0;
                        self.got = 0;
                        self.start = now;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// CPU counters at the start of the measured interval.
struct Snapshot {
    at: Instant,
    server: Duration,
    server_stat: Duration,
    own: Duration,
    cpus: [CpuUse; 2],
}

impl Snapshot {
    fn take(server_pid: &str, acct: &Accounting) -> io::Result<Snapshot> {
        Ok(Snapshot {
            at: Instant::now(),
            server: acct.process_cpu(server_pid)?,
            server_stat: acct.process_cpu_stat(server_pid)?,
            own: acct.process_cpu("self")?,
            cpus: CpuUse::now(),
        })
    }
}

/// Runs one round: `conns` closed-loop connections against the server at
/// `addr` (process `pid`), `warmup` then `secs` measured.
pub(crate) fn drive(
    (kind, addr, pid): (Kind, SocketAddr, u32),
    conns: usize,
    warmup: Duration,
    secs: Duration,
    acct: &Accounting,
) -> io::Result<Measured> {
    let pid = pid.to_string();
    let mut poll = Poll::new()?;
    let mut clients = Vec::with_capacity(conns);
    for i in 0..conns {
        let s = std::net::TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
        let mut stream = MioStream::from_std(s);
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        clients.push(Client {
            stream,
            sent: 0,
            got: 0,
            echo: [0; MSG],
            start: Instant::now(),
        });
    }
    let mut tally = Tally {
        done: 0,
        latencies: None,
    };
    let begin = Instant::now();
    for c in &mut clients {
        c.start = begin;
        c.pump(&mut tally)?;
    }
    let mut events = Events::with_capacity(1024);
    let mut window: Option<Snapshot> = None;
    loop {
        poll.poll(&mut events, Some(Duration::from_millis(20)))?;
        for ev in events.iter() {
            clients[ev.token().0].pump(&mut tally)?;
        }
        let now = Instant::now();
        match &window {
            None if now >= begin + warmup => {
                window = Some(Snapshot::take(&pid, acct)?);
                tally.done = 0;
                tally.latencies = Some(Vec::with_capacity(1 << 20));
            }
            Some(w) if now >= w.at + secs => {
                let end = Snapshot::take(&pid, acct)?;
                let mut latencies = tally.latencies.take().unwrap_or_default();
                latencies.sort_unstable();
                return Ok(Measured {
                    kind,
                    conns,
                    requests: tally.done,
                    elapsed: end.at - w.at,
                    latencies,
                    server_cpu: end.server.saturating_sub(w.server),
                    server_cpu_stat: end.server_stat.saturating_sub(w.server_stat),
                    load_cpu: end.own.saturating_sub(w.own),
                    cpus: [end.cpus[0].since(w.cpus[0]), end.cpus[1].since(w.cpus[1])],
                });
            }
            _ => {}
        }
    }
}

/// Reads the CPU time of processes.
///
/// Preferred: the scheduler's own run time of every thread, in
/// nanoseconds (first field of `/proc/<pid>/task/<tid>/schedstat`). Where
/// that file is missing (a kernel without `CONFIG_SCHED_INFO`), `utime +
/// stime` from `/proc/<pid>/stat`, whose total is the same run time but
/// rounded to clock ticks (10 ms): fine over seconds at full load, coarse
/// for a server that idles most of a 1 s round.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Accounting {
    tick: Duration,
    schedstat: bool,
}

impl Accounting {
    pub(crate) fn new() -> Accounting {
        let hz = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|&hz| hz > 0)
            .unwrap_or(100);
        Accounting {
            tick: Duration::from_nanos(1_000_000_000 / hz),
            schedstat: schedstat_ns("self").is_ok(),
        }
    }

    /// Where the CPU times come from, for the report.
    pub(crate) fn source(&self) -> &'static str {
        if self.schedstat {
            "the scheduler's run time of all its threads (/proc/<pid>/task/*/schedstat)"
        } else {
            "utime+stime (/proc/<pid>/stat, 10 ms ticks)"
        }
    }

    /// CPU time of process `pid` (or `"self"`) so far.
    pub(crate) fn process_cpu(&self, pid: &str) -> io::Result<Duration> {
        if self.schedstat {
            schedstat_ns(pid).map(Duration::from_nanos)
        } else {
            self.process_cpu_stat(pid)
        }
    }

    /// `utime + stime` of process `pid` (all its threads) so far.
    pub(crate) fn process_cpu_stat(&self, pid: &str) -> io::Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // The command name (field 2) may hold spaces; fields after it start at 3.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .ok_or_else(|| io::Error::other(format!("/proc/{pid}/stat: no ')' in {stat:?}")))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| -> io::Result<u64> {
            fields
                .get(n - 3)
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| io::Error::other(format!("/proc/{pid}/stat: no field {n}")))
        };
        let ticks = field(14)? + field(15)?;
        Ok(self.tick * u32::try_from(ticks).unwrap_or(u32::MAX))
    }
}

/// Sum of the run time (ns) of every live thread of process `pid`.
fn schedstat_ns(pid: &str) -> io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = entry?.path().join("schedstat");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            // A thread that exited between the listing and the read.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        total += text
            .split_whitespace()
            .next()
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or_else(|| io::Error::other(format!("{}: unreadable", path.display())))?;
    }
    Ok(total)
}

/// Time one CPU spent, from its line in `/proc/stat` (clock ticks).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuUse {
    total: u64,
    idle: u64,
    softirq: u64,
    steal: u64,
}

impl CpuUse {
    /// The counters of CPUs `SERVER_CPU` and `LOAD_CPU` now.
    fn now() -> [CpuUse; 2] {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let read = |cpu: usize| {
            let name = format!("cpu{cpu}");
            stat.lines()
                .find_map(|l| {
                    let mut f = l.split_whitespace();
                    (f.next() == Some(name.as_str()))
                        .then(|| f.filter_map(|x| x.parse::<u64>().ok()).collect::<Vec<_>>())
                })
                .filter(|v| v.len() >= 8)
                .map(|v| CpuUse {
                    total: v.iter().take(8).sum(),
                    idle: v[3] + v[4],
                    softirq: v[6],
                    steal: v[7],
                })
                .unwrap_or_default()
        };
        [read(SERVER_CPU), read(LOAD_CPU)]
    }

    fn since(self, before: CpuUse) -> CpuUse {
        CpuUse {
            total: self.total.saturating_sub(before.total),
            idle: self.idle.saturating_sub(before.idle),
            softirq: self.softirq.saturating_sub(before.softirq),
            steal: self.steal.saturating_sub(before.steal),
        }
    }

    fn pct(self, x: u64) -> f64 {
        x as f64 * 100.0 / self.total.max(1) as f64
    }

    /// Busy share (%): everything but idle and I/O wait.
    fn busy_pct(self) -> f64 {
        self.pct(self.total - self.idle)
    }

    /// `busy/softirq/steal` percentages for the raw output. (A kernel
    /// without `CONFIG_IRQ_TIME_ACCOUNTING`, like this machine's, charges
    /// softirq work done in a process's context to that process as well, so
    /// softirq overlaps the processes' shares.)
    pub(crate) fn describe(self) -> String {
        format!(
            "{:.0}/{:.0}/{:.0}",
            self.busy_pct(),
            self.pct(self.softirq),
            self.pct(self.steal)
        )
    }
}
