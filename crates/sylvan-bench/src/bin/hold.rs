//! Ten thousand concurrent keep-alive connections held for a minute, and
//! what each costs the server in memory: sylvan's HTTP server beside
//! hyper's, and `sylvan proxy` beside HAProxy (`mode tcp`), measured in
//! one run.
//!
//! ```text
//! cargo build --release -p sylvan-bench -p sylvan-cli
//! target/release/hold                   # 10,000 connections, 60 s each
//! target/release/hold --conns 2000 --hold 10s --only proxy
//! target/release/hold --conns 1000 --hold 10s --only http::,hyper
//! ```
//!
//! Each server is its own process; the clients are this process (green
//! threads, one per connection), so no process needs more than the
//! 20,000-descriptor hard limit. A proxy holds two descriptors per
//! connection (client and upstream), so proxies get 9,900 connections
//! when 10,000 are asked for (19,800 descriptors plus its own). The
//! proxies' upstream is a separate sylvan HTTP server process, not
//! counted.
//!
//! Every connection is opened over a 10 s ramp, then sends a `GET` every
//! 1–3 s (random) for `--hold` and checks each answer; an error is any
//! failed connect, read, write or wrong answer. Memory per connection is
//! the server process's RSS (`VmRSS`) while holding them all, less its RSS
//! before the first connection, divided by the connections. `sylvan
//! proxy` is the `sylvan` binary next to this one (or `--sylvan PATH`);
//! HAProxy is `haproxy` on the PATH (`apt-get install haproxy`), skipped
//! with a note when missing.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use sylvan::net::{Connector, TcpStream};

/// Descriptors a process may hold (the machine's hard limit).
const FD_LIMIT: usize = 20_000;

struct Args {
    conns: usize,
    hold: Duration,
    sylvan: Option<PathBuf>,
    /// Measure only the servers whose name contains one of these
    /// (comma-separated).
    only: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        conns: 10_000,
        hold: Duration::from_secs(60),
        sylvan: None,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--conns" => {
                let v = value()?;
                a.conns = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or(format!("--conns {v}: want 1..=10000"))?;
            }
            "--hold" => {
                let v = value()?;
                a.hold = v
                    .strip_suffix('s')
                    .and_then(|n| n.parse().ok())
                    .map(Duration::from_secs)
                    .ok_or(format!("--hold {v}: want seconds, e.g. 60s"))?;
            }
            "--sylvan" => a.sylvan = Some(PathBuf::from(value()?)),
            "--only" => a.only = Some(value()?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

/// A server process, killed on drop.
struct Proc {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// This binary re-run as a hello-world server (`--serve KIND`).
fn start_hello(kind: &str) -> io::Result<Proc> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["--serve", kind])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
    let port: u16 = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| io::Error::other(format!("{kind} server said {line:?}")))?;
    Ok(Proc {
        child,
        addr: ([127, 0, 0, 1], port).into(),
    })
}

fn free_addr() -> io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Waits (bounded) until `addr` accepts connections.
fn wait_up(addr: SocketAddr, what: &str) -> io::Result<()> {
    let ok = sylvan::timeout(Duration::from_secs(20), || {
        while Connector::new().connect(addr).is_err() {
            sylvan::sleep(Duration::from_millis(50))?;
        }
        Ok::<(), sylvan::Cancelled>(())
    });
    match ok {
        Ok(Ok(())) => Ok(()),
        _ => Err(io::Error::other(format!("{what} did not start listening"))),
    }
}

fn start_sylvan_proxy(bin: &PathBuf, upstream: SocketAddr) -> io::Result<Proc> {
    let addr = free_addr()?;
    let child = Command::new(bin)
        .args(["proxy", "--listen", &addr.to_string()])
        .args(["--upstream", &upstream.to_string()])
        .args(["--max-connections", "20000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let p = Proc { child, addr };
    wait_up(addr, "sylvan proxy")?;
    Ok(p)
}

fn start_haproxy(upstream: SocketAddr) -> io::Result<Proc> {
    let addr = free_addr()?;
    let cfg = std::env::temp_dir().join(format!("sylvan-hold-haproxy-{}.cfg", std::process::id()));
    std::fs::write(
        &cfg,
        format!(
            "global\n  maxconn 9950\n\
             defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 5m\n  timeout server 5m\n\
             frontend f\n  bind {addr}\n  default_backend b\n\
             backend b\n  server s1 {upstream}\n"
        ),
    )?;
    let child = Command::new("haproxy")
        .arg("-f")
        .arg(&cfg)
        .arg("-db")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let p = Proc { child, addr };
    wait_up(addr, "haproxy")?;
    let _ = std::fs::remove_file(cfg);
    Ok(p)
}

/// One request on a kept-alive connection; `Ok` if the answer is the
/// hello world.
fn request(c: &mut BufReader<TcpStream>) -> io::Result<()> {
    c.get_ref()
        .write_all(b"GET / HTTP/1.1\r\nHost: hold\r\n\r\n")?;
    let mut len = None;
    let mut line = String::new();
    loop {
        line.clear();
        if c.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" {
            break;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; len.ok_or_else(|| io::Error::other("no Content-Length"))?];
    c.read_exact(&mut body)?;
    if body != sylvan_bench::hello::BODY.as_bytes() {
        return Err(io::Error::other("wrong body"));
    }
    Ok(())
}

struct Outcome {
    held: usize,
    errors: u64,
    requests: u64,
    rss_idle: u64,
    rss_held: u64,
}

/// Opens `conns` connections to `addr` over a 10 s ramp, holds them for
/// `hold` with a request every 1–3 s each, and measures `pid`'s RSS.
fn hold(addr: SocketAddr, pid: u32, conns: usize, hold: Duration) -> Outcome {
    let rss_idle = rss(pid);
    let errors = Rc::new(Cell::new(0u64));
    let first_error: Rc<std::cell::RefCell<Option<String>>> = Rc::default();
    let requests = Rc::new(Cell::new(0u64));
    let open = Rc::new(Cell::new(0usize));
    let ramp = Duration::from_secs(10);
    let end = Instant::now() + ramp + hold;
    let gs: Vec<_> = (0..conns)
        .map(|i| {
            let (errors, requests, open) = (errors.clone(), requests.clone(), open.clone());
            let first_error = first_error.clone();
            let fail = move |what: &str, e: io::Error| {
                errors.set(errors.get() + 1);
                first_error
                    .borrow_mut()
                    .get_or_insert_with(|| format!("connection {i}: {what}: {e}"));
            };
            sylvan::spawn(move || {
                let mut rng = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let _ = sylvan::sleep(ramp * i as u32 / conns as u32);
                let Ok(s) = Connector::new()
                    .connect_timeout(Duration::from_secs(10))
                    .connect(addr)
                    .map_err(|e| fail("connect", e))
                else {
                    return;
                };
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let mut c = BufReader::with_capacity(512, s);
                open.set(open.get() + 1);
                while Instant::now() < end {
                    if let Err(e) = request(&mut c) {
                        fail("request", e);
                        break;
                    }
                    requests.set(requests.get() + 1);
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let pause = Duration::from_millis(1000 + rng % 2000);
                    let left = end.saturating_duration_since(Instant::now());
                    let _ = sylvan::sleep(pause.min(left));
                }
                open.set(open.get() - 1);
            })
        })
        .collect();
    // Measure in the middle of the hold, when every connection is open.
    let _ = sylvan::sleep(ramp + hold / 2);
    let held = open.get();
    let rss_held = rss(pid);
    for g in gs {
        let _ = g.join();
    }
    if let Some(e) = first_error.borrow().as_ref() {
        eprintln!("hold: first error: {e}");
    }
    Outcome {
        held,
        errors: errors.get(),
        requests: requests.get(),
        rss_idle,
        rss_held,
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    if argv.get(1).map(String::as_str) == Some("--serve") {
        return match argv.get(2).map(String::as_str) {
            Some("sylvan") => sylvan_bench::hello::serve_sylvan(FD_LIMIT),
            Some("hyper") => sylvan_bench::hello::serve_hyper(),
            other => {
                eprintln!("unknown server {other:?}");
                ExitCode::from(2)
            }
        };
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hold: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("hold: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> io::Result<bool> {
    let bin = match &args.sylvan {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("sylvan"),
    };
    let proxied = args.conns.min(9_900);
    let mut rows = Vec::new();
    let mut ok = true;
    let mut proxy_missing = false;
    let mut measure = |name: &str, p: &Proc, n: usize| {
        if args
            .only
            .as_ref()
            .is_some_and(|o| !o.split(',').any(|part| name.contains(part)))
        {
            return;
        }
        eprintln!("hold: {name}: {n} connections for {:?}", args.hold);
        let o = hold(p.addr, p.child.id(), n, args.hold);
        ok &= o.errors == 0 && o.held == n;
        let per = o.rss_held.saturating_sub(o.rss_idle) as f64 / n as f64;
        rows.push((name.to_string(), n, o, per));
    };
    {
        let s = start_hello("sylvan")?;
        measure("sylvan http::Server", &s, args.conns);
    }
    {
        let h = start_hello("hyper")?;
        measure("hyper 1.x (tokio current_thread)", &h, args.conns);
    }
    let backend = start_hello("sylvan")?;
    if bin.exists() {
        let p = start_sylvan_proxy(&bin, backend.addr)?;
        measure("sylvan proxy", &p, proxied);
    } else {
        eprintln!(
            "hold: {} not found (cargo build --release -p sylvan-cli): sylvan proxy skipped",
            bin.display()
        );
        proxy_missing = true;
    }
    if Command::new("haproxy").arg("-v").output().is_ok() {
        let p = start_haproxy(backend.addr)?;
        measure("HAProxy (mode tcp)", &p, proxied);
    } else {
        eprintln!("hold: haproxy not found (apt-get install haproxy): skipped");
    }
    println!(
        "| server | connections held | requests | errors | RSS idle → holding | per connection |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, n, o, per) in &rows {
        println!(
            "| {name} | {}/{n} | {} | {} | {:.1} → {:.1} MiB | {:.1} KiB |",
            o.held,
            o.requests,
            o.errors,
            o.rss_idle as f64 / (1 << 20) as f64,
            o.rss_held as f64 / (1 << 20) as f64,
            per / 1024.0
        );
    }
    let per = |prefix: &str| rows.iter().find(|r| r.0.starts_with(prefix)).map(|r| r.3);
    if let (Some(s), Some(h)) = (per("sylvan http"), per("hyper")) {
        println!(
            "\nsylvan http::Server / hyper memory per connection: {:.2}×",
            s / h
        );
    }
    if let (Some(s), Some(h)) = (per("sylvan proxy"), per("HAProxy")) {
        println!(
            "sylvan proxy / HAProxy memory per connection: {:.2}×",
            s / h
        );
    }
    Ok(ok && !proxy_missing)
}
