//! The soak: sylvan under sustained churn and faults for a long time, then
//! a check that nothing leaked and no acknowledged request went missing.
//!
//! ```text
//! cargo run --release -p sylvan-bench --bin soak -- --duration 10m
//! cargo run --release -p sylvan-bench --bin soak -- --duration 60s --clients 32
//! ```
//!
//! What runs, for `--duration`:
//!
//! - a **backend** (`sylvan::serve`) answering `REQ <client> <seq>` lines
//!   with `ACK <client> <seq>`;
//! - a **chaos proxy** (`sylvan::chaos::ChaosProxy`) in front of it,
//!   cycling faults every 2 s: latency with jitter, connections reset,
//!   data sliced into single bytes, blackholes (`timeout`);
//! - **`sylvan proxy`** (the CLI, a child process) in front of that, with
//!   its admin endpoint;
//! - **clients** (`--clients` green threads), each in a loop: connect
//!   through `sylvan proxy`, send one to four requests, each under a
//!   300 ms `sylvan::timeout`, close — thousands of connections opened and
//!   closed per second, and timeouts firing whenever a fault holds a
//!   reply back;
//! - a **churner** spawning batches of green threads that park and
//!   killing them before they wake.
//!
//! Accounting: every client numbers its requests and never retries one.
//! The backend counts, per client, the requests it saw, the ones it never
//! saw (gaps in the numbering) and repeats. At the end, *lost* is an
//! acknowledged request the backend never saw and *duplicated* a request
//! the backend saw twice (a proxy replaying data); both must be 0.
//!
//! Leaks: after a warm-up (a tenth of the run, at most 10 s) the load stops
//! and everything goes quiet; the baseline is measured there. After the
//! run, the same quiet state is measured again. Bounds: open descriptors
//! (this process and `sylvan proxy`) within 4 of the baseline; green
//! threads, stack slots and armed timers at the baseline exactly; the
//! backend's and the proxy's active connections 0; RSS of either process
//! at most 16 MiB above its baseline.
//!
//! `sylvan proxy` is the `sylvan` binary next to this one (build it with
//! `cargo build --release -p sylvan-cli`) or `--sylvan PATH`. Exit status
//! 0 when every check passed, 1 when one failed, 2 on a usage error.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use sylvan::chaos::{ChaosProxy, Direction, Toxic};
use sylvan::net::{Connector, TcpStream};

const RSS_BOUND: usize = 16 << 20;
const FD_BOUND: usize = 4;

struct Args {
    duration: Duration,
    clients: usize,
    sylvan: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Option<Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        duration: Duration::from_secs(60),
        clients: 64,
        sylvan: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--duration" => {
                let v = value()?;
                a.duration = parse_duration(&v)
                    .filter(|d| *d >= Duration::from_secs(5))
                    .ok_or(format!("--duration {v}: want e.g. 60s, 10m (at least 5s)"))?;
            }
            "--clients" => {
                let v = value()?;
                a.clients = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=5000).contains(n))
                    .ok_or(format!("--clients {v}: want 1..=5000"))?;
            }
            "--sylvan" => a.sylvan = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                return Err(
                    "usage: soak [--duration 60s|10m] [--clients N] [--sylvan PATH]".into(),
                );
            }
            other => return Err(format!("unknown flag {other} (try --help)")),
        }
    }
    Ok(a)
}

/// What the backend saw from one client.
#[derive(Default)]
struct Seen {
    /// Highest sequence number seen.
    last: u64,
    /// Numbers below `last` never seen (their requests never arrived).
    gaps: Vec<u64>,
    /// Requests seen again.
    repeats: u64,
}

/// What one client knows of its own requests.
#[derive(Default)]
struct Sent {
    /// Requests numbered so far (1..=next-1).
    sent: u64,
    /// The numbers that failed (no matching ACK).
    failed: Vec<u64>,
}

#[derive(Default)]
struct Counters {
    connections: Cell<u64>,
    acked: Cell<u64>,
    failed: Cell<u64>,
    timeouts: Cell<u64>,
    spawned: Cell<u64>,
    killed: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

/// The backend: answers `REQ c s` with `ACK c s`, recording what it saw.
fn backend(seen: Rc<RefCell<HashMap<u64, Seen>>>) -> io::Result<sylvan::net::ServerHandle> {
    let l = sylvan::listen("127.0.0.1:0")?;
    Ok(sylvan::serve(
        l,
        move |conn: TcpStream, _| -> io::Result<()> {
            let mut lines = BufReader::new(&conn);
            let mut line = String::new();
            while lines.read_line(&mut line)? > 0 {
                let mut w = line.split_whitespace();
                let (Some("REQ"), Some(c), Some(s)) = (w.next(), w.next(), w.next()) else {
                    // A partial line: the stream was cut (a fault); drop it.
                    return Ok(());
                };
                let (Ok(c), Ok(s)) = (c.parse::<u64>(), s.parse::<u64>()) else {
                    return Ok(());
                };
                {
                    let mut all = seen.borrow_mut();
                    let e = all.entry(c).or_default();
                    if s > e.last {
                        e.gaps.extend(e.last + 1..s);
                        e.last = s;
                    } else if let Some(i) = e.gaps.iter().rposition(|g| *g == s) {
                        // A request the client gave up on, arriving late (held
                        // back by a fault) after its successors: not a repeat.
                        e.gaps.swap_remove(i);
                    } else {
                        e.repeats += 1;
                    }
                }
                (&conn).write_all(format!("ACK {c} {s}\n").as_bytes())?;
                line.clear();
            }
            Ok(())
        },
    ))
}

/// One client: connections of one to four requests each until `until`.
fn client(
    id: u64,
    proxy: SocketAddr,
    until: Instant,
    sent: Rc<RefCell<Sent>>,
    counters: Rc<Counters>,
) {
    let connector = Connector::new().connect_timeout(Duration::from_millis(500));
    let mut rng = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while Instant::now() < until {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let Ok(stream) = connector.connect(proxy) else {
            bump(&counters.failed);
            let _ = sylvan::sleep(Duration::from_millis(10));
            continue;
        };
        bump(&counters.connections);
        let mut conn = BufReader::new(stream);
        for _ in 0..1 + rng % 4 {
            let seq = {
                let mut s = sent.borrow_mut();
                s.sent += 1;
                s.sent
            };
            let r = sylvan::timeout(Duration::from_millis(300), || -> io::Result<bool> {
                conn.get_ref()
                    .write_all(format!("REQ {id} {seq}\n").as_bytes())?;
                let mut line = String::new();
                conn.read_line(&mut line)?;
                Ok(line == format!("ACK {id} {seq}\n"))
            });
            match r {
                Ok(Ok(true)) => bump(&counters.acked),
                other => {
                    if other.is_err() {
                        bump(&counters.timeouts);
                    }
                    bump(&counters.failed);
                    sent.borrow_mut().failed.push(seq);
                    break; // the connection is in an unknown state
                }
            }
        }
    }
}

/// Spawns batches of parked green threads and kills them until `until`.
fn churner(until: Instant, counters: Rc<Counters>) {
    while Instant::now() < until {
        let batch: Vec<_> = (0..50)
            .map(|_| sylvan::spawn(|| sylvan::sleep(Duration::from_secs(30))))
            .collect();
        counters.spawned.set(counters.spawned.get() + 50);
        if sylvan::sleep(Duration::from_millis(5)).is_err() {
            return;
        }
        for g in &batch {
            g.kill();
        }
        for g in batch {
            // Killed before or while parked: either way it never woke.
            if !matches!(g.join(), Ok(Ok(()))) {
                bump(&counters.killed);
            }
        }
    }
}

/// Cycles the chaos proxy's faults every 2 s until `until`, then clears them.
fn faults(proxy: &ChaosProxy, until: Instant) {
    let menu = [
        (
            Toxic::Latency {
                latency: Duration::from_millis(5),
                jitter: Duration::from_millis(5),
            },
            0.5,
        ),
        (
            Toxic::ResetPeer {
                timeout: Duration::ZERO,
            },
            0.05,
        ),
        (
            Toxic::Slicer {
                average_size: 1,
                size_variation: 0,
                delay: Duration::from_micros(10),
            },
            0.3,
        ),
        (
            Toxic::Timeout {
                timeout: Duration::from_millis(500),
            },
            0.05,
        ),
    ];
    let mut i = 0;
    while Instant::now() < until {
        let (toxic, toxicity) = menu[i % menu.len()].clone();
        let dir = if i % 2 == 0 {
            Direction::Downstream
        } else {
            Direction::Upstream
        };
        let _ = proxy.add_toxic("soak", toxic, dir, toxicity);
        let left = until.saturating_duration_since(Instant::now());
        let _ = sylvan::sleep(left.min(Duration::from_secs(2)));
        let _ = proxy.remove_toxic("soak");
        i += 1;
    }
}

/// A process's open descriptors and RSS, from `/proc`.
fn proc_usage(pid: u32) -> (usize, usize) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let rss = std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096);
    (fds, rss)
}

/// `sylvan proxy`'s active client connections, from its `/stats`.
fn proxy_active(admin: SocketAddr) -> Option<u64> {
    let s = Connector::new()
        .connect_timeout(Duration::from_secs(2))
        .connect(admin)
        .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    (&s).write_all(b"GET /stats HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    (&s).read_to_string(&mut text).ok()?;
    let i = text.find("\"connections_active\":")?;
    text[i + 21..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// One quiet-state measurement.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    fds: usize,
    rss: usize,
    green_threads: usize,
    stacks: usize,
    timers: usize,
    backend_active: usize,
    proxy_fds: usize,
    proxy_rss: usize,
    proxy_active: Option<u64>,
}

fn free_addr() -> io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

struct ProxyChild(Child);

impl Drop for ProxyChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sylvan_binary(explicit: Option<PathBuf>) -> Result<PathBuf, String> {
    let p = match explicit {
        Some(p) => p,
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("sylvan"),
    };
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "soak: {} not found; build it first (cargo build --release -p sylvan-cli) or pass --sylvan PATH",
            p.display()
        ))
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    let bin = match sylvan_binary(args.sylvan.clone()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    match run(&args, &bin) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args, bin: &PathBuf) -> io::Result<bool> {
    let seen: Rc<RefCell<HashMap<u64, Seen>>> = Rc::default();
    let server = backend(seen.clone())?;
    let backend_addr = server.local_addr().expect("bound");
    let chaos = ChaosProxy::start("127.0.0.1:0", backend_addr)?;
    let (listen, admin) = (free_addr()?, free_addr()?);
    let mut child = ProxyChild(
        Command::new(bin)
            .args(["proxy", "--listen", &listen.to_string()])
            .args(["--upstream", &chaos.local_addr().to_string()])
            .args(["--admin", &admin.to_string()])
            .args(["--connect-timeout", "1s"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| io::Error::other(format!("cannot start {}: {e}", bin.display())))?,
    );
    let proxy_pid = child.0.id();
    // Wait (bounded) until it accepts.
    let up = sylvan::timeout(Duration::from_secs(20), || {
        while Connector::new().connect(listen).is_err() {
            if child.0.try_wait().ok().flatten().is_some()
                || sylvan::sleep(Duration::from_millis(50)).is_err()
            {
                return false;
            }
        }
        true
    });
    if up != Ok(true) {
        return Err(io::Error::other("sylvan proxy did not start serving"));
    }

    let counters = Rc::new(Counters::default());
    let sent: Vec<Rc<RefCell<Sent>>> = (0..args.clients).map(|_| Rc::default()).collect();
    let load = |secs: Duration| {
        let until = Instant::now() + secs;
        let mut gs = Vec::new();
        for (i, s) in sent.iter().enumerate() {
            let (s, c) = (s.clone(), counters.clone());
            gs.push(sylvan::spawn(move || client(i as u64, listen, until, s, c)));
        }
        let c = counters.clone();
        gs.push(sylvan::spawn(move || churner(until, c)));
        faults(&chaos, until);
        for g in gs {
            let _ = g.join();
        }
    };
    let quiet = || -> Snapshot {
        // Everything stops: wait (bounded) for both proxies and the
        // backend to close their connections.
        let t0 = Instant::now();
        let mut active = None;
        while t0.elapsed() < Duration::from_secs(30) {
            active = proxy_active(admin);
            if server.active() == 0 && chaos.connections() == 0 && active == Some(0) {
                break;
            }
            let _ = sylvan::sleep(Duration::from_millis(100));
        }
        let stats = sylvan::debug::stats();
        let (fds, rss) = proc_usage(std::process::id());
        let (proxy_fds, proxy_rss) = proc_usage(proxy_pid);
        Snapshot {
            fds,
            rss,
            green_threads: stats.green_threads,
            stacks: stats.stacks,
            timers: stats.timers,
            backend_active: server.active(),
            proxy_fds,
            proxy_rss,
            proxy_active: active,
        }
    };

    let warm = (args.duration / 10).min(Duration::from_secs(10));
    eprintln!(
        "soak: warm-up {warm:?}, then {:?} with {} clients",
        args.duration, args.clients
    );
    load(warm);
    let base = quiet();
    let before = (counters.connections.get(), counters.acked.get());
    let t0 = Instant::now();
    load(args.duration);
    let elapsed = t0.elapsed();
    let end = quiet();
    let conns = counters.connections.get() - before.0;
    let acked_run = counters.acked.get() - before.1;

    // Accounting over the whole run (warm-up included).
    let mut lost = 0u64;
    let mut duplicated = 0u64;
    let seen = seen.borrow();
    for (i, s) in sent.iter().enumerate() {
        let s = s.borrow();
        let empty = Seen::default();
        let b = seen.get(&(i as u64)).unwrap_or(&empty);
        duplicated += b.repeats;
        // Seen by the backend: 1..=last minus the gaps. An acknowledged
        // request (sent, not failed) must be among them.
        let failed: HashSet<u64> = s.failed.iter().copied().collect();
        let unseen = b.gaps.iter().copied().chain(b.last + 1..=s.sent);
        lost += unseen.filter(|seq| !failed.contains(seq)).count() as u64;
    }

    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    println!("## soak: {:?}, {} clients", args.duration, args.clients);
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| connections opened and closed | {conns} ({:.0}/s) |",
        conns as f64 / elapsed.as_secs_f64()
    );
    println!(
        "| requests acknowledged | {acked_run} ({:.0}/s) |",
        acked_run as f64 / elapsed.as_secs_f64()
    );
    println!("| requests failed (faults) | {} |", counters.failed.get());
    println!("| timeouts fired | {} |", counters.timeouts.get());
    println!(
        "| green threads spawned and killed | {} / {} |",
        counters.spawned.get(),
        counters.killed.get()
    );
    println!("| lost / duplicated | {lost} / {duplicated} |");
    println!();
    println!("| quiet state | baseline | end | bound |");
    println!("|---|---|---|---|");
    println!(
        "| descriptors (soak) | {} | {} | ±{FD_BOUND} |",
        base.fds, end.fds
    );
    println!(
        "| descriptors (sylvan proxy) | {} | {} | ±{FD_BOUND} |",
        base.proxy_fds, end.proxy_fds
    );
    println!(
        "| green threads | {} | {} | equal |",
        base.green_threads, end.green_threads
    );
    println!(
        "| stack slots in use | {} | {} | equal |",
        base.stacks, end.stacks
    );
    println!(
        "| armed timers | {} | {} | equal |",
        base.timers, end.timers
    );
    println!(
        "| backend connections | {} | {} | 0 |",
        base.backend_active, end.backend_active
    );
    println!(
        "| proxy connections | {:?} | {:?} | 0 |",
        base.proxy_active, end.proxy_active
    );
    println!(
        "| RSS soak (MiB) | {:.1} | {:.1} | +{} |",
        mib(base.rss),
        mib(end.rss),
        RSS_BOUND >> 20
    );
    println!(
        "| RSS sylvan proxy (MiB) | {:.1} | {:.1} | +{} |",
        mib(base.proxy_rss),
        mib(end.proxy_rss),
        RSS_BOUND >> 20
    );

    let checks = [
        ("no acknowledged request lost", lost == 0),
        ("no request duplicated", duplicated == 0),
        ("requests were acknowledged", acked_run > 0),
        ("faults made requests fail", counters.failed.get() > 0),
        ("timeouts fired", counters.timeouts.get() > 0),
        (
            "descriptors back to baseline",
            end.fds.abs_diff(base.fds) <= FD_BOUND,
        ),
        (
            "proxy descriptors back to baseline",
            end.proxy_fds.abs_diff(base.proxy_fds) <= FD_BOUND,
        ),
        (
            "green threads back to baseline",
            end.green_threads == base.green_threads,
        ),
        ("stack slots back to baseline", end.stacks == base.stacks),
        ("timers back to baseline", end.timers == base.timers),
        ("no backend connection left", end.backend_active == 0),
        ("no proxy connection left", end.proxy_active == Some(0)),
        ("RSS within bound", end.rss <= base.rss + RSS_BOUND),
        (
            "proxy RSS within bound",
            end.proxy_rss <= base.proxy_rss + RSS_BOUND,
        ),
    ];
    println!();
    let mut ok = true;
    for (what, pass) in checks {
        println!("- {} {what}", if pass { "PASS" } else { "FAIL" });
        ok &= pass;
    }
    drop(seen);
    server.stop(Duration::ZERO);
    chaos.stop();
    drop(child);
    Ok(ok)
}
