//! `sylvan chaos` with no toxic, forwarding echo load, beside a direct
//! connection to the same echo server in the same run (issue 7's chaos
//! benchmark).
//!
//! Run it with
//!
//! ```text
//! cargo build --release -p sylvan-cli -p sylvan-bench
//! target/release/chaos            # full run, about 30 s
//! target/release/chaos --quick    # smoke test, about 5 s
//! ```
//!
//! How it measures:
//!
//! - **Servers.** Two child processes of the real `sylvan` binary (found
//!   next to this one, or `--sylvan PATH`): `sylvan echo` (one hub) and
//!   `sylvan chaos` (one hub: its HTTP API and every proxy connection),
//!   pinned with `taskset` when it exists: `sylvan chaos` to CPU 0, the echo
//!   server to CPU 0 too by default (`--echo-cpu 1` puts it beside the load
//!   generator instead). The proxy is created through the HTTP API
//!   (`POST /proxies`), no toxic.
//! - **Load generator.** This process, pinned to CPU 1, one thread of plain
//!   mio; each connection does closed-loop 64-byte request → 64-byte echo
//!   (checked) → next request.
//! - **Points.** Throughput at 64 connections, with the CPU time each
//!   server process spent per request (all its threads, from
//!   `/proc/<pid>/task/*/schedstat`): with two cores, requests/s depends on
//!   how the servers share CPU 0, CPU per request does not. Latency (p50,
//!   p99) at 1 connection; "added p50" is the proxied p50 less the direct
//!   p50. At 1 connection every process sleeps between messages, and on
//!   this VM waking an idle (halted) vCPU takes tens of microseconds, which
//!   would swamp what is measured; so during the 1-connection rounds a busy
//!   loop at `SCHED_IDLE` priority (`chrt -i 0`) runs on each CPU, keeping
//!   the vCPUs from halting while giving way at once to any real work
//!   (`--no-spin` turns it off).
//! - **Rounds.** Each point runs in `--rounds` rounds (default 5) of
//!   `--secs` seconds (default 1) after 0.3 s of warm-up on fresh
//!   connections, direct and proxied taking turns (order alternating each
//!   round), so load from other processes on the shared machine hits both
//!   alike; the table shows the median of the rounds.
//!
//! Toxiproxy itself can't be installed here (no Debian package, no Go
//! toolchain), so the comparison with it is by ratios to the direct
//! connection: issue 7 quotes Toxiproxy 2.12 on one core at ~33k req/s at
//! 64 connections while a direct connection ran ~150k (0.22× direct), and
//! +21 µs p50 at 1 connection. Nothing here asserts speed.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};
use sylvan_bench::{Progress, Table, fmt_ratio, fmt_target};

/// Bytes per request and per echo.
const MSG: usize = 64;
/// Toxiproxy's figures quoted in issue 7 (one core, same load).
const TOXIPROXY_RPS: f64 = 33_000.0;
const TOXIPROXY_DIRECT_RPS: f64 = 150_000.0;
const TOXIPROXY_ADDED_P50_US: f64 = 21.0;

const USAGE: &str = "usage: chaos [--quick] [--rounds N] [--secs S] [--echo-cpu N] [--load-cpu N] [--no-spin] [--sylvan PATH]\n\
    `sylvan chaos` (no toxic) forwarding 64-byte echo load, beside a direct connection;\n\
    prints a Markdown table. Build first: cargo build --release -p sylvan-cli -p sylvan-bench\n\
    --quick        1 round of 0.5 s per point (a smoke test)\n\
    --rounds N     rounds per point (default 5); the table shows medians\n\
    --secs S       measured seconds per round (default 1)\n\
    --echo-cpu N   CPU of the echo server (default 0, beside sylvan chaos)\n\
    --load-cpu N   CPU of the load generator (default 1)\n\
    --no-spin      no SCHED_IDLE busy loops keeping the CPUs awake in the 1-conn rounds\n\
    --sylvan PATH  the sylvan binary (default: next to this one)";

struct Opts {
    rounds: usize,
    secs: f64,
    echo_cpu: usize,
    load_cpu: usize,
    spin: bool,
    sylvan: PathBuf,
}

fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        rounds: 5,
        secs: 1.0,
        echo_cpu: 0,
        load_cpu: 1,
        spin: true,
        sylvan: std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("sylvan"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--quick" => {
                o.rounds = 1;
                o.secs = 0.5;
            }
            "--rounds" => {
                o.rounds = value("--rounds")?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("--rounds must be a positive integer")?;
            }
            "--secs" => {
                o.secs = value("--secs")?
                    .parse()
                    .ok()
                    .filter(|s: &f64| *s > 0.0 && s.is_finite())
                    .ok_or("--secs must be a positive number")?;
            }
            "--echo-cpu" => {
                o.echo_cpu = value("--echo-cpu")?
                    .parse()
                    .map_err(|_| "--echo-cpu must be a CPU number")?;
            }
            "--load-cpu" => {
                o.load_cpu = value("--load-cpu")?
                    .parse()
                    .map_err(|_| "--load-cpu must be a CPU number")?;
            }
            "--no-spin" => o.spin = false,
            "--sylvan" => o.sylvan = PathBuf::from(value("--sylvan")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let opts = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("chaos: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chaos: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A child process that is ended when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_pinned(sylvan: &PathBuf, args: &[&str], cpu: Option<usize>) -> io::Result<Server> {
    let mut cmd = if let Some(cpu) = cpu {
        let mut c = Command::new("taskset");
        c.args(["-c", &cpu.to_string()]).arg(sylvan);
        c
    } else {
        Command::new(sylvan)
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Ok(Server(cmd.spawn()?))
}

/// Busy loops at `SCHED_IDLE` priority, one per CPU (0 and 1), so the
/// vCPUs never halt; ended when dropped. Empty if `chrt` or `taskset` is
/// missing.
fn spinners() -> Vec<Server> {
    (0..2)
        .filter_map(|cpu| {
            Command::new("chrt")
                .args(["-i", "0", "taskset", "-c", &cpu.to_string()])
                .args(["sh", "-c", "while :; do :; done"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()
                .map(Server)
        })
        .collect()
}

fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn wait_up(addr: SocketAddr, what: &str) -> io::Result<()> {
    let give_up = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        if Instant::now() > give_up {
            return Err(io::Error::other(format!("{what} never came up on {addr}")));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Creates the proxy through the HTTP API; returns its listen address.
fn create_proxy(api: SocketAddr, upstream: SocketAddr) -> io::Result<SocketAddr> {
    let body = format!(r#"{{"name":"bench","listen":"127.0.0.1:0","upstream":"{upstream}"}}"#);
    let mut c = TcpStream::connect(api)?;
    write!(
        c,
        "POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut reply = String::new();
    c.read_to_string(&mut reply)?;
    let bad = || io::Error::other(format!("unexpected reply to POST /proxies: {reply}"));
    if !reply.starts_with("HTTP/1.1 201") {
        return Err(bad());
    }
    let listen = reply
        .split(r#""listen":""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or_else(bad)?;
    listen.parse().map_err(|_| bad())
}

fn run(o: &Opts) -> io::Result<()> {
    let p = Progress::new();
    if !o.sylvan.exists() {
        return Err(io::Error::other(format!(
            "no sylvan binary at {} (build it: cargo build --release -p sylvan-cli, or pass --sylvan PATH)",
            o.sylvan.display()
        )));
    }
    let pinned = Command::new("taskset")
        .args(["-c", "0", "true"])
        .status()
        .is_ok_and(|s| s.success());
    let echo_port = free_port()?;
    let api_port = free_port()?;
    let echo_addr: SocketAddr = ([127, 0, 0, 1], echo_port).into();
    let api_addr: SocketAddr = ([127, 0, 0, 1], api_port).into();
    let echo_arg = echo_addr.to_string();
    let api_arg = api_port.to_string();
    let pin = |cpu| pinned.then_some(cpu);
    let echo = spawn_pinned(&o.sylvan, &["echo", "--listen", &echo_arg], pin(o.echo_cpu))?;
    let chaos = spawn_pinned(&o.sylvan, &["chaos", "--port", &api_arg], pin(0))?;
    // taskset execs the command: the pids are the servers'.
    let pids = [echo.0.id(), chaos.0.id()];
    wait_up(echo_addr, "sylvan echo")?;
    wait_up(api_addr, "sylvan chaos")?;
    let proxy_addr = create_proxy(api_addr, echo_addr)?;
    let load_pinned = core_affinity::get_core_ids()
        .and_then(|ids| ids.into_iter().find(|c| c.id == o.load_cpu))
        .is_some_and(core_affinity::set_for_current);
    p.say(&format!(
        "echo server {echo_addr} on CPU {}, sylvan chaos API {api_addr} on CPU 0, proxy {proxy_addr}; load generator on CPU {}{}{}",
        o.echo_cpu,
        o.load_cpu,
        if pinned { "" } else { " (servers NOT pinned: no taskset)" },
        if load_pinned { "" } else { " (load generator NOT pinned)" },
    ));

    let secs = Duration::from_secs_f64(o.secs);
    let warmup = Duration::from_millis(300);
    let targets = [("direct", echo_addr), ("sylvan chaos", proxy_addr)];
    // [target][round]
    let mut rps = [Vec::new(), Vec::new()];
    // CPU µs per request at 64 conns: [target][server: echo, chaos][round]
    let mut cpu = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    let mut p50 = [Vec::new(), Vec::new()];
    let mut p99 = [Vec::new(), Vec::new()];
    for round in 0..o.rounds {
        for k in 0..2 {
            let i = if round % 2 == 0 { k } else { 1 - k };
            let (name, addr) = targets[i];
            let m = drive(addr, 64, warmup, secs, &pids)?;
            let per = |j: usize| m.cpu[j].as_secs_f64() * 1e6 / m.requests.max(1) as f64;
            p.say(&format!(
                "round {}: {name:12} 64 conns: {:.0} req/s, CPU/req: echo {:.2} µs, chaos {:.2} µs",
                round + 1,
                m.rate(),
                per(0),
                per(1)
            ));
            rps[i].push(m.rate());
            cpu[i][0].push(per(0));
            cpu[i][1].push(per(1));
        }
        for k in 0..2 {
            let i = if round % 2 == 0 { 1 - k } else { k };
            let (name, addr) = targets[i];
            let spin = if o.spin { spinners() } else { Vec::new() };
            let m = drive(addr, 1, warmup, secs, &pids)?;
            drop(spin);
            p.say(&format!(
                "round {}: {name:12} 1 conn: p50 {:.1} µs, p99 {:.1} µs",
                round + 1,
                m.pct_us(0.5),
                m.pct_us(0.99)
            ));
            p50[i].push(m.pct_us(0.5));
            p99[i].push(m.pct_us(0.99));
        }
    }
    let med = |v: &[f64]| median(v);
    let (d_rps, c_rps) = (med(&rps[0]), med(&rps[1]));
    let (d_p50, c_p50) = (med(&p50[0]), med(&p50[1]));
    let added = c_p50 - d_p50;

    let mut t = Table::new(&[
        "path",
        "req/s, 64 conns",
        "vs direct",
        "CPU/req: echo + chaos",
        "p50, 1 conn",
        "p99, 1 conn",
        "added p50",
    ]);
    t.row(vec![
        "direct".into(),
        format!("{d_rps:.0}"),
        "1.00×".into(),
        format!("{:.2} µs", med(&cpu[0][0])),
        format!("{d_p50:.1} µs"),
        format!("{:.1} µs", med(&p99[0])),
        "—".into(),
    ]);
    t.row(vec![
        "sylvan chaos (no toxic)".into(),
        format!("{c_rps:.0}"),
        fmt_ratio(c_rps, d_rps),
        format!("{:.2} + {:.2} µs", med(&cpu[1][0]), med(&cpu[1][1])),
        format!("{c_p50:.1} µs"),
        format!("{:.1} µs", med(&p99[1])),
        format!("{added:+.1} µs"),
    ]);
    t.row(vec![
        "Toxiproxy 2.12 (issue 7, not this run)".into(),
        format!("~{TOXIPROXY_RPS:.0} (direct ~{TOXIPROXY_DIRECT_RPS:.0})"),
        fmt_ratio(TOXIPROXY_RPS, TOXIPROXY_DIRECT_RPS),
        "".into(),
        "".into(),
        "".into(),
        format!("+{TOXIPROXY_ADDED_P50_US:.0} µs"),
    ]);
    println!("{}", t.to_markdown());

    // Targets: ≥ 2× Toxiproxy's throughput, ≤ half its added latency,
    // Toxiproxy's throughput taken as its ratio to direct.
    let ratio = c_rps / d_rps;
    let tox_ratio = TOXIPROXY_RPS / TOXIPROXY_DIRECT_RPS;
    let mut g = Table::new(&["target", "measured", "result"]);
    g.row(vec![
        "throughput ≥ 2× Toxiproxy's (as ratios to direct)".into(),
        format!(
            "{ratio:.2}× direct = {:.1}× Toxiproxy's {tox_ratio:.2}×",
            ratio / tox_ratio
        ),
        fmt_target("≥ 2×", ratio >= 2.0 * tox_ratio),
    ]);
    g.row(vec![
        "added p50 ≤ half Toxiproxy's".into(),
        format!("{added:+.1} µs vs {TOXIPROXY_ADDED_P50_US:.0} µs"),
        fmt_target("≤ 10.5 µs", added <= TOXIPROXY_ADDED_P50_US / 2.0),
    ]);
    println!("{}", g.to_markdown());
    println!(
        "raw: rounds={} secs={} direct_rps={:?} chaos_rps={:?} direct_p50_us={:?} chaos_p50_us={:?}",
        o.rounds, o.secs, rps[0], rps[1], p50[0], p50[1]
    );
    Ok(())
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

const PAYLOAD: [u8; MSG] = {
    let mut p = [0u8; MSG];
    let mut i = 0;
    while i < MSG {
        p[i] = b'a' + (i % 26) as u8;
        i += 1;
    }
    p
};

/// One measured round.
struct Measured {
    requests: u64,
    elapsed: Duration,
    /// CPU time of each server process over the measured window.
    cpu: Vec<Duration>,
    /// Latencies in nanoseconds, sorted.
    latencies: Vec<u32>,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn pct_us(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        f64::from(self.latencies[i]) / 1000.0
    }
}

/// One closed-loop client connection.
struct Client {
    stream: MioStream,
    sent: usize,
    got: usize,
    echo: [u8; MSG],
    start: Instant,
}

impl Client {
    /// Moves the connection on as far as it goes without blocking; counts
    /// each completed request (and its latency, when `lat` is given).
    fn pump(&mut self, done: &mut u64, lat: &mut Option<Vec<u32>>) -> io::Result<()> {
        loop {
            if self.sent < MSG {
                match (&self.stream).write(&PAYLOAD[self.sent..]) {
                    Ok(n) => self.sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
                continue;
            }
            match (&self.stream).read(&mut self.echo[self.got..]) {
                Ok(0) => return Err(io::Error::other("the server closed a connection")),
                Ok(n) => {
                    self.got += n;
                    if self.got == MSG {
                        if self.echo != PAYLOAD {
                            return Err(io::Error::other("the echo differs from the request"));
                        }
                        let now = Instant::now();
                        *done += 1;
                        if let Some(l) = lat {
                            l.push((now - self.start).as_nanos().min(u128::from(u32::MAX)) as u32);
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

/// CPU time of all threads of process `pid` (scheduler run time,
/// nanoseconds: the first field of `/proc/<pid>/task/<tid>/schedstat`).
fn cpu_time(pid: u32) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    let ns: u64 = tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ns)
}

/// `conns` closed-loop connections to `addr`: `warmup`, then `secs`
/// measured, with the CPU time of the processes `pids` over that window.
fn drive(
    addr: SocketAddr,
    conns: usize,
    warmup: Duration,
    secs: Duration,
    pids: &[u32],
) -> io::Result<Measured> {
    let mut poll = Poll::new()?;
    let mut clients = Vec::with_capacity(conns);
    for i in 0..conns {
        let s = TcpStream::connect(addr)?;
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
    let (mut done, mut lat) = (0u64, None);
    let begin = Instant::now();
    for c in &mut clients {
        c.start = begin;
        c.pump(&mut done, &mut lat)?;
    }
    let mut events = Events::with_capacity(1024);
    let mut measuring_since: Option<Instant> = None;
    let mut cpu0 = Vec::new();
    loop {
        poll.poll(&mut events, Some(Duration::from_millis(20)))?;
        for ev in events.iter() {
            clients[ev.token().0].pump(&mut done, &mut lat)?;
        }
        let now = Instant::now();
        match measuring_since {
            None if now >= begin + warmup => {
                measuring_since = Some(now);
                cpu0 = pids.iter().map(|p| cpu_time(*p)).collect();
                done = 0;
                lat = Some(Vec::with_capacity(1 << 20));
            }
            Some(t0) if now >= t0 + secs => {
                let mut latencies = lat.take().unwrap_or_default();
                latencies.sort_unstable();
                let cpu = pids
                    .iter()
                    .zip(&cpu0)
                    .map(|(p, c0)| cpu_time(*p).saturating_sub(*c0))
                    .collect();
                return Ok(Measured {
                    requests: done,
                    elapsed: now - t0,
                    cpu,
                    latencies,
                });
            }
            _ => {}
        }
    }
}
