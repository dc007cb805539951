//! Echo servers side by side, in one run, under one load generator: sylvan
//! (a green thread per connection), tokio's `current_thread` runtime (a task
//! per connection) and a hand-written single-thread mio state machine (no
//! tasks, no coroutines: the floor any runtime pays). Issue 4's benchmark.
//!
//! Run it with
//!
//! ```text
//! cargo build --release -p sylvan-bench
//! target/release/echo                # full run, 40–75 s (longer on a busy machine)
//! target/release/echo --quick        # smoke test, about 10 s
//! target/release/echo --conns 64 --servers sylvan --rounds 1 --secs 10   # to profile one
//! ```
//!
//! It prints progress on standard error and, on standard output, a Markdown
//! table followed by the targets and the raw numbers.
//!
//! How it measures:
//!
//! - **Servers** ([`servers`]). Each runs in its own child process (this
//!   binary re-executed with `--server sylvan|tokio|mio`), pinned to CPU 0
//!   with `sched_setaffinity` (the `core_affinity` crate), listening on
//!   127.0.0.1 with a backlog of 1024, `TCP_NODELAY` on every accepted
//!   connection, a 4 KiB read buffer per connection. All three start at once
//!   and stay up for the whole run; an idle one sleeps in `epoll_wait`.
//! - **Load generator** ([`load`]). One implementation for all servers:
//!   this process, pinned to CPU 1, one thread of plain mio (not sylvan).
//!   Each of N connections does closed-loop 64-byte request → 64-byte echo
//!   (checked) → next request. Points: 1, 64 and 1000 connections.
//! - **Rounds.** The machine's 2 cores are shared, and other people's
//!   builds come and go within seconds. So each point is measured in 5
//!   rounds of 0.6 s (after 0.2 s of warm-up, on fresh connections), the
//!   servers taking turns within each round in rotating order. A round is
//!   *disturbed* when either benchmark CPU spent more than 10 % of it on
//!   anything else (busy time from `/proc/stat` less the benchmark's own
//!   CPU time). The table reports, for each server, the median of each
//!   figure over its undisturbed rounds; a server with no undisturbed round
//!   gets up to 3 extra rounds, and failing that its least disturbed round
//!   is reported, with a warning. The raw output lists every round.
//! - **Server CPU per request**: the server process's CPU time over the
//!   measured interval divided by the requests completed in it. On 2 cores
//!   the load generator saturates its core about when the server does, so
//!   requests/s says as much about the load generator as about the server;
//!   CPU per request is the fair figure. The CPU time is the scheduler's
//!   run time of all the server's threads in nanoseconds (`schedstat`),
//!   falling back to `utime + stime` (10 ms ticks) where that is missing;
//!   `utime + stime` is printed next to it as a cross-check. On a kernel
//!   without `CONFIG_IRQ_TIME_ACCOUNTING` (this one) both include the
//!   softirq work (loopback TCP processing) done in the server's context.
//! - **The mio floor** does per request what a careful hand-written event
//!   loop does: one `read` (a read shorter than the buffer means the socket
//!   was drained, so it waits for the next edge instead of reading again,
//!   as tokio does too), one `write`, and its share of one `epoll_wait`.
//!
//! Nothing asserts speed; the targets table only says whether a goal was
//! met. Both file-descriptor limits (this process and each server) are
//! raised from the soft to the hard limit at start.

mod load;
mod servers;

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use sylvan_bench::{Progress, Table, fmt_ratio, fmt_target, kv};

use load::{Accounting, MSG, Measured};

/// Connection counts of a full run.
const POINTS: [usize; 3] = [1, 64, 1000];
/// CPU the servers run on, and the CPU of the load generator.
const SERVER_CPU: usize = 0;
const LOAD_CPU: usize = 1;
/// A round whose CPUs were busier than this with other work is called noisy.
const NOISY_PCT: f64 = 10.0;
/// Rounds run at most in addition to the planned ones, for servers whose
/// every round so far was noisy.
const EXTRA_ROUNDS: usize = 3;

const USAGE: &str = "usage: echo [--quick] [--rounds N] [--secs S] [--warmup S] [--conns N,...] [--servers K,...]\n\
    Echo servers (sylvan, tokio current_thread, a hand-written mio loop) under one load\n\
    generator; prints a Markdown table.\n\
    --quick          1 round of 0.5 s per point after 0.2 s of warm-up (a smoke test)\n\
    --rounds N       rounds per point (default 5; up to 3 more for a server whose rounds\n\
    \x20                were all disturbed by other load); the table shows medians over the\n\
    \x20                undisturbed rounds\n\
    --secs S         measured seconds per round (default 0.6)\n\
    --warmup S       warm-up seconds before each round (default 0.2)\n\
    --conns LIST     connection counts (default 1,64,1000)\n\
    --servers LIST   which servers (default sylvan,tokio,mio); one alone, with a long\n\
    \x20                --secs, to profile it: perf record -g -p <pid of `echo --server KIND`>";

/// The servers, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sylvan,
    Tokio,
    Mio,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Sylvan, Kind::Tokio, Kind::Mio];

    fn arg(self) -> &'static str {
        match self {
            Kind::Sylvan => "sylvan",
            Kind::Tokio => "tokio",
            Kind::Mio => "mio",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Sylvan => "sylvan",
            Kind::Tokio => "tokio current_thread",
            Kind::Mio => "mio floor",
        }
    }

    fn parse(s: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.arg() == s)
            .ok_or_else(|| format!("unknown server {s:?} (sylvan, tokio or mio)"))
    }
}

#[derive(Debug, Clone)]
struct Config {
    rounds: usize,
    secs: Duration,
    warmup: Duration,
    conns: Vec<usize>,
    servers: Vec<Kind>,
}

impl Config {
    fn parse(args: &[&str]) -> Result<Config, String> {
        let mut cfg = Config {
            rounds: 5,
            secs: Duration::from_millis(600),
            warmup: Duration::from_millis(200),
            conns: POINTS.to_vec(),
            servers: Kind::ALL.to_vec(),
        };
        let mut it = args.iter();
        while let Some(&a) = it.next() {
            let mut value = || it.next().copied().ok_or(format!("{a} needs a value"));
            match a {
                "--quick" => {
                    cfg.rounds = 1;
                    cfg.secs = Duration::from_millis(500);
                    cfg.warmup = Duration::from_millis(200);
                }
                "--rounds" => {
                    cfg.rounds = match value()?.parse::<usize>() {
                        Ok(n) if n > 0 => n,
                        _ => return Err("--rounds needs a positive count".into()),
                    }
                }
                "--secs" => cfg.secs = parse_secs(value()?)?,
                "--warmup" => cfg.warmup = parse_secs(value()?)?,
                "--conns" => {
                    cfg.conns = value()?
                        .split(',')
                        .map(|n| match n.trim().parse::<usize>() {
                            Ok(n) if n > 0 => Ok(n),
                            _ => Err(format!("--conns: {n:?} is not a positive count")),
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--servers" => {
                    cfg.servers = value()?
                        .split(',')
                        .map(|k| Kind::parse(k.trim()))
                        .collect::<Result<_, _>>()?;
                }
                _ => return Err(format!("unexpected argument {a:?}")),
            }
        }
        Ok(cfg)
    }
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x < 3600.0 => Ok(Duration::from_secs_f64(x)),
        _ => Err(format!("{s:?} is not a number of seconds")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["--help" | "-h"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        ["--server", kind] => {
            Kind::parse(kind).and_then(|k| servers::server_main(k).map_err(|e| e.to_string()))
        }
        _ => Config::parse(&args).and_then(run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo: {e}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

/// A running server child; killed and reaped on drop.
#[derive(Debug)]
struct ServerProc {
    kind: Kind,
    child: Child,
    addr: SocketAddr,
    pinned: bool,
}

impl ServerProc {
    fn start(kind: Kind) -> Result<ServerProc, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        let mut child = Command::new(exe)
            .args(["--server", kind.arg()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the {} server: {e}", kind.arg()))?;
        let mut line = String::new();
        let read = child
            .stdout
            .take()
            .map(|out| BufReader::new(out).read_line(&mut line));
        let port = kv(&line, "port").and_then(|p| u16::try_from(p).ok());
        let Some(port @ 1..) = port else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "the {} server did not announce its port (read {read:?}: {line:?})",
                kind.arg()
            ));
        };
        Ok(ServerProc {
            kind,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            pinned: kv(&line, "pinned") == Some(1),
            child,
        })
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cfg: Config) -> Result<(), String> {
    let progress = Progress::new();
    let nofile = raise_nofile();
    let max_conns = cfg.conns.iter().copied().max().unwrap_or(0);
    if let Ok(limit) = nofile
        && (max_conns as u64) + 64 > limit
    {
        return Err(format!(
            "{max_conns} connections need more file descriptors than the limit ({limit})"
        ));
    }
    let acct = Accounting::new();

    progress.say(&format!(
        "starting the servers (pinned to CPU {SERVER_CPU})"
    ));
    let servers = cfg
        .servers
        .iter()
        .map(|&k| ServerProc::start(k))
        .collect::<Result<Vec<_>, _>>()?;
    for s in &servers {
        progress.say(&format!("  {} server: pid {}", s.kind.arg(), s.child.id()));
    }
    let load_pinned = pin_to(LOAD_CPU);
    let pinning = if load_pinned && servers.iter().all(|s| s.pinned) {
        format!(
            "servers pinned to CPU {SERVER_CPU}, load generator to CPU {LOAD_CPU} (sched_setaffinity)"
        )
    } else {
        let msg = "WARNING: could not pin the processes to CPUs (fewer than 2 CPUs, or \
                   sched_setaffinity refused); they float, so the numbers are noisier";
        eprintln!("{msg}");
        msg.to_string()
    };

    let mut rounds: Vec<Measured> = Vec::new();
    let mut turn = 0;
    for &conns in &cfg.conns {
        for r in 0..cfg.rounds + EXTRA_ROUNDS {
            // After the planned rounds, run again only the servers whose
            // best round so far was disturbed by other load.
            let todo: Vec<&ServerProc> = servers
                .iter()
                .filter(|s| {
                    r < cfg.rounds
                        || rounds
                            .iter()
                            .filter(|m| m.conns == conns && m.kind == s.kind)
                            .map(Measured::disturbance)
                            .fold(f64::INFINITY, f64::min)
                            > NOISY_PCT
                })
                .collect();
            if todo.is_empty() {
                break;
            }
            progress.say(&format!(
                "{conns} connection(s), round {}{}: {:.1} s warm-up + {:.1} s each",
                r + 1,
                if r < cfg.rounds {
                    format!("/{}", cfg.rounds)
                } else {
                    " (extra: the earlier ones were disturbed by other load)".to_string()
                },
                cfg.warmup.as_secs_f64(),
                cfg.secs.as_secs_f64()
            ));
            turn += 1;
            for j in 0..todo.len() {
                let server = todo[(turn + j) % todo.len()];
                let target = (server.kind, server.addr, server.child.id());
                let m = load::drive(target, conns, cfg.warmup, cfg.secs, &acct).map_err(|e| {
                    format!(
                        "{} server, {conns} connection(s): load generator failed: {e}",
                        server.kind.label()
                    )
                })?;
                progress.say(&format!(
                    "  {:<20} {:>7.0} req/s, p99 {:>8.1} µs, server CPU {:.2} µs/req, other load {:.0} %",
                    server.kind.label(),
                    m.rate(),
                    m.pct_us(0.99),
                    m.cpu_us(),
                    m.disturbance()
                ));
                rounds.push(m);
            }
        }
    }
    drop(servers);
    progress.say("done");
    let report = Report {
        cfg: &cfg,
        rounds: &rounds,
        pinning: &pinning,
        acct: &acct,
    };
    report.print(nofile);
    Ok(())
}

/// Everything measured, and how to print it.
struct Report<'a> {
    cfg: &'a Config,
    rounds: &'a [Measured],
    pinning: &'a str,
    acct: &'a Accounting,
}

impl Report<'_> {
    /// All rounds of one server at one point.
    fn rounds_of(&self, conns: usize, kind: Kind) -> impl Iterator<Item = &Measured> {
        self.rounds
            .iter()
            .filter(move |m| m.conns == conns && m.kind == kind)
    }

    /// What the table shows for one server at one point: the median of
    /// each figure over the rounds not disturbed by other work (at most
    /// [`NOISY_PCT`]); if every round was disturbed, the least disturbed
    /// round's figures.
    fn summary(&self, conns: usize, kind: Kind) -> Option<Summary> {
        let all: Vec<&Measured> = self.rounds_of(conns, kind).collect();
        let clean: Vec<&Measured> = all
            .iter()
            .copied()
            .filter(|m| m.disturbance() <= NOISY_PCT)
            .collect();
        let used = if clean.is_empty() {
            let least = all
                .iter()
                .copied()
                .min_by(|a, b| a.disturbance().total_cmp(&b.disturbance()))?;
            vec![least]
        } else {
            clean
        };
        let med = |f: fn(&Measured) -> f64| {
            let mut v: Vec<f64> = used.iter().map(|m| f(m)).collect();
            v.sort_by(f64::total_cmp);
            let n = v.len();
            if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            }
        };
        Some(Summary {
            rate: med(Measured::rate),
            p50_us: med(|m| m.pct_us(0.5)),
            p99_us: med(|m| m.pct_us(0.99)),
            cpu_us: med(Measured::cpu_us),
            rounds: used.len(),
            disturbance: used.iter().map(|m| m.disturbance()).fold(0.0, f64::max),
        })
    }

    fn print(&self, nofile: io::Result<u64>) {
        let cfg = self.cfg;
        println!(
            "## Echo, {MSG}-byte request/response, closed loop, 127.0.0.1\n\n\
             Each point: {} round(s) of {:.1} s after {:.1} s of warm-up (up to {EXTRA_ROUNDS} \
             more for a server whose rounds were all disturbed by other load); shown: the \
             median of each figure over the rounds where other work took at most {NOISY_PCT} % \
             of either CPU (their number: `rounds`). {}. Load generator: one thread of plain mio \
             (not sylvan). Server CPU/req: CPU time of the server process over the interval \
             ({}) ÷ requests. Latency: request write → full echo read.\n",
            cfg.rounds,
            cfg.secs.as_secs_f64(),
            cfg.warmup.as_secs_f64(),
            self.pinning,
            self.acct.source(),
        );
        println!("{}", self.table().to_markdown());
        println!("Targets (issue 4):\n\n{}", self.targets().to_markdown());
        self.print_raw();
        match nofile {
            Ok(n) => println!("  open-files limit: {n}"),
            Err(e) => println!("  open-files limit: not raised ({e})"),
        }
    }

    fn table(&self) -> Table {
        let mut table = Table::new(&[
            "conns",
            "server",
            "req/s",
            "p50",
            "p99",
            "server CPU/req",
            "req/s vs tokio",
            "CPU vs tokio",
            "CPU vs mio floor",
            "rounds",
        ]);
        for &conns in &self.cfg.conns {
            let tokio = self.summary(conns, Kind::Tokio);
            let floor = self.summary(conns, Kind::Mio);
            for kind in Kind::ALL {
                let Some(m) = self.summary(conns, kind) else {
                    continue;
                };
                let vs = |other: Option<Summary>, f: fn(&Summary) -> f64| {
                    other.map_or("—".to_string(), |o| fmt_ratio(f(&m), f(&o)))
                };
                table.row(vec![
                    conns.to_string(),
                    kind.label().to_string(),
                    format!("{:.0}", m.rate),
                    format!("{:.1} µs", m.p50_us),
                    format!("{:.1} µs", m.p99_us),
                    format!("{:.2} µs", m.cpu_us),
                    vs(tokio, |s| s.rate),
                    vs(tokio, |s| s.cpu_us),
                    vs(floor, |s| s.cpu_us),
                    format!("{}", m.rounds),
                ]);
            }
        }
        table
    }

    fn targets(&self) -> Table {
        let mut targets = Table::new(&[
            "conns",
            "sylvan req/s ≥ 1.0× tokio",
            "sylvan p99 ≤ tokio",
            "sylvan CPU/req ≤ tokio",
            "sylvan CPU/req ≤ 1.15× mio floor",
        ]);
        for &conns in &self.cfg.conns {
            let (Some(s), Some(t), Some(f)) = (
                self.summary(conns, Kind::Sylvan),
                self.summary(conns, Kind::Tokio),
                self.summary(conns, Kind::Mio),
            ) else {
                continue;
            };
            let rate = s.rate / t.rate;
            let cpu_t = s.cpu_us / t.cpu_us;
            let cpu_f = s.cpu_us / f.cpu_us;
            targets.row(vec![
                conns.to_string(),
                fmt_target(&format!("{rate:.2}×"), rate >= 1.0),
                fmt_target(
                    &format!("{:.1} vs {:.1} µs", s.p99_us, t.p99_us),
                    s.p99_us <= t.p99_us,
                ),
                fmt_target(&format!("{cpu_t:.2}×"), cpu_t <= 1.0),
                fmt_target(&format!("{cpu_f:.2}×"), cpu_f <= 1.15),
            ]);
        }
        targets
    }

    fn print_raw(&self) {
        println!(
            "Raw, every round (`other` = % of the interval a benchmark CPU was busy with \
             anything but the benchmark, * = disturbed, left out of the medians; \
             cpuN = busy/softirq/steal %; server CPU also as utime+stime):"
        );
        let mut worst: f64 = 0.0;
        for &conns in &self.cfg.conns {
            for kind in Kind::ALL {
                if let Some(s) = self.summary(conns, kind) {
                    worst = worst.max(s.disturbance);
                }
                for m in self.rounds_of(conns, kind) {
                    println!(
                        "  conns={conns} server={}: req/s={:.0} p50={:.1} p99={:.1} \
                         p99.9={:.1} max={:.1} µs, server CPU {:.2} µs/req ({:.1} ms; \
                         utime+stime {} ms), server {:.0} %, load gen {:.0} %, \
                         cpu{SERVER_CPU}={} cpu{LOAD_CPU}={} other={:.0}{}",
                        kind.arg(),
                        m.rate(),
                        m.pct_us(0.5),
                        m.pct_us(0.99),
                        m.pct_us(0.999),
                        m.pct_us(1.0),
                        m.cpu_us(),
                        m.server_cpu.as_secs_f64() * 1e3,
                        m.server_cpu_stat.as_millis(),
                        m.own_pct(0),
                        m.own_pct(1),
                        m.cpus[0].describe(),
                        m.cpus[1].describe(),
                        m.disturbance(),
                        if m.disturbance() > NOISY_PCT { "*" } else { "" },
                    );
                }
            }
        }
        if worst > NOISY_PCT {
            println!(
                "  WARNING: every round of some point was disturbed (up to {worst:.0} % of a \
                 benchmark CPU taken by other work); those figures are noisy, rerun on a \
                 quieter machine"
            );
        }
    }
}

/// The figures of one server at one point, as the table shows them.
#[derive(Debug, Clone, Copy)]
struct Summary {
    rate: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us: f64,
    /// Rounds the medians are over.
    rounds: usize,
    /// The largest disturbance among them (%).
    disturbance: f64,
}

/// Pins the calling thread (and the threads it starts later) to `cpu`.
fn pin_to(cpu: usize) -> bool {
    let available = core_affinity::get_core_ids().unwrap_or_default();
    available.len() >= 2
        && available.iter().any(|c| c.id == cpu)
        && core_affinity::set_for_current(core_affinity::CoreId { id: cpu })
}

/// Raises the soft open-files limit to the hard one; returns the new limit.
fn raise_nofile() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}
