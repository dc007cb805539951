//! sylvan's HTTP server against hyper 1.x on tokio's `current_thread`
//! runtime, and against a bare `httparse` responder on the same runtime
//! (the floor: no limits, timeouts or bodies), under `wrk`, in one run.
//!
//! ```text
//! cargo build --release -p sylvan-bench
//! target/release/http             # 5 s per server (two runs of 3 s)
//! target/release/http --quick     # 1 s runs
//! ```
//!
//! Each server is this binary re-executed as a child (`--serve sylvan|hyper|bare`)
//! pinned to CPU 0 with `taskset`; `wrk -t1` runs pinned to CPU 1, against a
//! keep-alive hello world (`Hello, World!`, 13 bytes, with `Date` and
//! `Content-Type`), at 64 and then 1000 connections, after a 1 s warm-up.
//! Each server runs twice, in the order sylvan hyper bare bare hyper
//! sylvan, and its two runs are merged, so a load on the shared host that
//! drifts during the run weighs on the three alike.
//! Reported: requests per second and the 99th percentile latency from
//! `wrk --latency`, and the server's CPU time per request (user + system,
//! from `/proc/<pid>/stat`, over the measured run). Ratios are against
//! hyper, and the CPU's against the bare responder too. Nothing asserts
//! speed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    if args.get(1).map(String::as_str) == Some("--serve") {
        return match args.get(2).map(String::as_str) {
            Some("sylvan") => sylvan_bench::hello::serve_sylvan(4096),
            Some("hyper") => sylvan_bench::hello::serve_hyper(),
            Some("bare") => sylvan_bench::hello::serve_bare(),
            other => {
                eprintln!("unknown server {other:?}");
                ExitCode::FAILURE
            }
        };
    }
    let secs = if args.iter().any(|a| a == "--quick") {
        1
    } else {
        5
    };
    match run(secs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `cmd` pinned to `cpu` when `taskset` exists.
fn pinned(cpu: u32, program: &str) -> Command {
    if have("taskset") {
        let mut c = Command::new("taskset");
        c.args(["-c", &cpu.to_string(), program]);
        c
    } else {
        Command::new(program)
    }
}

struct ServerProc {
    child: Child,
    port: u16,
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(kind: &str) -> Result<ServerProc, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = pinned(0, &exe.to_string_lossy())
        .args(["--serve", kind])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start {kind} server: {e}"))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let port = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("{kind} server said {line:?}"))?;
    Ok(ServerProc { child, port })
}

/// User + system CPU ticks of a process.
fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall.
    let rest = &stat[stat.rfind(')').ok_or("bad stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f[11].parse().map_err(|_| "bad utime")?;
    let stime: u64 = f[12].parse().map_err(|_| "bad stime")?;
    Ok(utime + stime)
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

#[derive(Debug, Clone, Copy)]
struct Run {
    rps: f64,
    p99: Duration,
    requests: u64,
    errors: bool,
    cpu_us_per_req: f64,
}

/// One server's runs as one: requests/s and p99 averaged, CPU per
/// request over all the requests.
fn merge(runs: &[Run]) -> Run {
    let n = runs.len().max(1) as f64;
    let requests: u64 = runs.iter().map(|r| r.requests).sum();
    let cpu_us: f64 = runs
        .iter()
        .map(|r| r.cpu_us_per_req * r.requests as f64)
        .sum();
    Run {
        rps: runs.iter().map(|r| r.rps).sum::<f64>() / n,
        p99: Duration::from_secs_f64(runs.iter().map(|r| r.p99.as_secs_f64()).sum::<f64>() / n),
        requests,
        errors: runs.iter().any(|r| r.errors),
        cpu_us_per_req: cpu_us / requests.max(1) as f64,
    }
}

fn parse_duration(s: &str) -> Option<Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let v: f64 = num.parse().ok()?;
    let secs = match unit {
        "us" => v / 1e6,
        "ms" => v / 1e3,
        "s" => v,
        "m" => v * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

fn wrk(port: u16, conns: u32, secs: u32) -> Result<String, String> {
    let out = pinned(1, "wrk")
        .args([
            "-t1",
            &format!("-c{conns}"),
            &format!("-d{secs}s"),
            "--latency",
            &format!("http://127.0.0.1:{port}/"),
        ])
        .output()
        .map_err(|e| format!("wrk: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "wrk failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn measure(server: &ServerProc, conns: u32, secs: u32, tck: f64) -> Result<Run, String> {
    let before = cpu_ticks(server.child.id())?;
    let text = wrk(server.port, conns, secs)?;
    let after = cpu_ticks(server.child.id())?;
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    };
    let rps: f64 = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no Requests/sec in {text}"))?;
    let p99 = field("99%")
        .and_then(|v| parse_duration(&v))
        .ok_or_else(|| format!("no 99% latency in {text}"))?;
    let requests: u64 = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no request count in {text}"))?;
    let errors = text.contains("Socket errors") || text.contains("Non-2xx");
    let cpu_s = (after - before) as f64 / tck;
    Ok(Run {
        rps,
        p99,
        requests,
        errors,
        cpu_us_per_req: cpu_s * 1e6 / requests.max(1) as f64,
    })
}

fn run(secs: u32) -> Result<(), String> {
    if !have("wrk") {
        return Err("wrk is not installed (apt-get install wrk)".into());
    }
    let tck = clk_tck();
    let mut rows = Vec::new();
    const KINDS: [&str; 3] = ["sylvan", "hyper", "bare"];
    // Each server is measured twice, in the order A B C C B A, each time
    // for half the time, and its two runs merged: a load on the shared
    // host that drifts over the run weighs on each server alike.
    let half = secs.div_ceil(2);
    for conns in [64u32, 1000] {
        let mut runs: Vec<Vec<Run>> = vec![Vec::new(); KINDS.len()];
        for i in [0, 1, 2, 2, 1, 0] {
            let kind = KINDS[i];
            eprintln!("{kind}, {conns} connections, {half} s ...");
            let server = start(kind)?;
            wrk(server.port, conns, 1)?; // warm-up: connections, caches, CPU clock
            let r = measure(&server, conns, half, tck)?;
            eprintln!(
                "  {:.0} req/s, p99 {:?}, {:.2} µs CPU/request",
                r.rps, r.p99, r.cpu_us_per_req
            );
            runs[i].push(r);
        }
        let pair: Vec<(&str, Run)> = KINDS
            .iter()
            .zip(&runs)
            .map(|(&kind, rs)| (kind, merge(rs)))
            .collect();
        rows.push((conns, pair));
    }
    println!(
        "\n### HTTP hello world, keep-alive (`wrk -t1`, server on CPU 0, wrk on CPU 1; each server two runs of {half} s, in the order sylvan hyper bare bare hyper sylvan, merged)\n"
    );
    println!(
        "| server | connections | requests/s | p99 latency | server CPU per request | req/s vs hyper | CPU vs hyper | CPU vs bare | p99 vs hyper |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (conns, pair) in &rows {
        let hyper = pair[1].1;
        let bare = pair[2].1;
        for (kind, r) in pair {
            println!(
                "| {kind} | {conns} | {:.0} | {:.2} ms | {:.2} µs | {:.2}× | {:.2}× | {:.2}× | {:.2}× |{}",
                r.rps,
                r.p99.as_secs_f64() * 1e3,
                r.cpu_us_per_req,
                r.rps / hyper.rps,
                r.cpu_us_per_req / hyper.cpu_us_per_req,
                r.cpu_us_per_req / bare.cpu_us_per_req,
                r.p99.as_secs_f64() / hyper.p99.as_secs_f64(),
                if r.errors {
                    " (wrk reported errors)"
                } else {
                    ""
                }
            );
        }
    }
    println!(
        "\nRequests measured: {}",
        rows.iter()
            .flat_map(|(c, p)| p
                .iter()
                .map(move |(k, r)| format!("{k}@{c}={}", r.requests)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "Clock reads on this machine (best of 5 × 1M): CLOCK_MONOTONIC {:.1} ns, \
         CLOCK_REALTIME_COARSE {:.1} ns. callgrind does not count them (under valgrind they \
         are system calls, not vDSO reads).",
        clock_read_ns(rustix::time::ClockId::Monotonic),
        clock_read_ns(rustix::time::ClockId::RealtimeCoarse)
    );
    println!(
        "Targets (issue 17): CPU per request ≤ the bare httparse responder's (≈ 0.75× hyper's) at 64 and 1,000 connections; p99 at 64 ≤ hyper's; RSS at 1,000 idle keep-alive connections ≤ hyper's (`hold`)."
    );
    Ok(())
}

/// Nanoseconds per `clock_gettime(clock)`, best of 5 runs of a million.
fn clock_read_ns(clock: rustix::time::ClockId) -> f64 {
    let n = 1_000_000u32;
    (0..5)
        .map(|_| {
            let start = std::time::Instant::now();
            for _ in 0..n {
                std::hint::black_box(rustix::time::clock_gettime(clock));
            }
            start.elapsed().as_secs_f64() * 1e9 / f64::from(n)
        })
        .fold(f64::INFINITY, f64::min)
}
