//! Helpers shared by the sylvan-bench binaries: timing with calibration and
//! best-of-N repetitions, re-executing the current binary as a child process
//! (so memory measurements don't pollute each other), reading the process's
//! memory from `/proc`, and printing Markdown tables.
//!
//! Nothing here asserts speed: benchmarks measure and print, they never fail
//! because something was slow.
//!
//! The binaries live in `src/bin/`; build and run them with
//!
//! ```text
//! cargo build --release -p sylvan-bench
//! target/release/runtime
//! ```

#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long one timed repetition should take and how many to run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Wall time one repetition aims for (the iteration count is calibrated
    /// to reach it).
    pub target: Duration,
    /// Repetitions per side; the best (minimum) is reported.
    pub reps: usize,
}

impl Plan {
    /// The plan of a full run: 100 ms per repetition, best of 5.
    pub const FULL: Plan = Plan {
        target: Duration::from_millis(100),
        reps: 5,
    };

    /// A smoke-test plan: 10 ms per repetition, best of 2.
    pub const QUICK: Plan = Plan {
        target: Duration::from_millis(10),
        reps: 2,
    };

    /// The plan the command line asks for: none → full, `--quick` → quick;
    /// `--help` prints `usage` and asks to exit 0, anything else prints it
    /// to stderr and asks to exit 2.
    pub fn from_args(usage: &str) -> Result<Plan, std::process::ExitCode> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        match args
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            [] => Ok(Plan::FULL),
            ["--quick"] => Ok(Plan::QUICK),
            ["--help" | "-h"] => {
                println!("{usage}");
                Err(std::process::ExitCode::SUCCESS)
            }
            _ => {
                eprintln!("{usage}");
                Err(std::process::ExitCode::from(2))
            }
        }
    }
}

/// The timing of one side of a benchmark.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Nanoseconds per iteration, best (minimum) repetition.
    pub best_ns: f64,
    /// Nanoseconds per iteration, median repetition.
    pub median_ns: f64,
    /// Iterations per repetition.
    pub iters: u64,
}

impl Sample {
    /// The best and median of `runs`, each of `iters` iterations.
    pub fn from_runs(mut runs: Vec<Duration>, iters: u64) -> Sample {
        runs.sort();
        let per = |d: Duration| d.as_nanos() as f64 / iters as f64;
        Sample {
            best_ns: per(runs[0]),
            median_ns: per(runs[runs.len() / 2]),
            iters,
        }
    }

    /// The same sample with every time divided by `n` (for benchmarks whose
    /// iteration does `n` operations, such as a batch of spawns).
    pub fn per(self, n: u64) -> Sample {
        Sample {
            best_ns: self.best_ns / n as f64,
            median_ns: self.median_ns / n as f64,
            iters: self.iters * n,
        }
    }
}

/// Finds an iteration count for which `run(iters)` takes about `target`.
///
/// `run` performs `iters` iterations and returns the time they took (so it
/// can leave its setup and teardown out of the measurement). A first call
/// with one iteration warms up (lazy initialisation, page faults) and is
/// not counted; then the count grows until a run takes a tenth of `target`,
/// long enough for one-time costs per run to be negligible.
pub fn calibrate(run: &mut impl FnMut(u64) -> Duration, target: Duration) -> u64 {
    run(1);
    let mut iters = 1u64;
    loop {
        let t = run(iters);
        if t >= target / 10 || iters >= 1 << 40 {
            let per_iter = t.as_secs_f64() / iters as f64;
            return ((target.as_secs_f64() / per_iter.max(1e-12)) as u64).clamp(1, 1 << 40);
        }
        iters *= if t < target / 2000 { 10 } else { 2 };
    }
}

/// Times two implementations of one benchmark side by side.
///
/// Each side is calibrated on its own; then repetitions alternate
/// (`a`, `b`, `a`, `b`, …) so that drift in clock speed or machine load
/// affects both alike.
pub fn compare(
    plan: Plan,
    mut a: impl FnMut(u64) -> Duration,
    mut b: impl FnMut(u64) -> Duration,
) -> (Sample, Sample) {
    let na = calibrate(&mut a, plan.target);
    let nb = calibrate(&mut b, plan.target);
    let mut ta = Vec::with_capacity(plan.reps);
    let mut tb = Vec::with_capacity(plan.reps);
    for _ in 0..plan.reps.max(1) {
        ta.push(a(na));
        tb.push(b(nb));
    }
    (Sample::from_runs(ta, na), Sample::from_runs(tb, nb))
}

/// Progress lines on standard error, each stamped with the time since start
/// (standard output stays clean for the table).
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    start: Instant,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Progress {
    /// Starts the clock.
    pub fn new() -> Progress {
        Progress {
            start: Instant::now(),
        }
    }

    /// Prints `msg` with the time elapsed so far.
    pub fn say(&self, msg: &str) {
        eprintln!("[{:6.1} s] {msg}", self.start.elapsed().as_secs_f64());
    }

    /// Time since [`Progress::new`].
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

/// Memory counters of this process, from `/proc/self/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mem {
    /// Resident set size (`VmRSS`), bytes.
    pub rss: u64,
    /// Memory used by page tables (`VmPTE`), bytes. Not part of the RSS,
    /// but memory all the same: sparse mappings (one touched page per
    /// green-thread stack) need many page-table pages.
    pub page_tables: u64,
}

impl Mem {
    /// Reads the counters now.
    ///
    /// # Errors
    ///
    /// If `/proc/self/status` cannot be read or lacks the fields (not Linux).
    pub fn now() -> io::Result<Mem> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        let field = |name: &str| -> io::Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
                .map(|kib| kib * 1024)
                .ok_or_else(|| {
                    io::Error::other(format!("/proc/self/status has no readable {name}"))
                })
        };
        Ok(Mem {
            rss: field("VmRSS:")?,
            page_tables: field("VmPTE:")?,
        })
    }
}

/// Runs the current executable again with `args` and returns its standard
/// output. Its standard error is passed through.
///
/// # Errors
///
/// If the executable cannot be found or started, or the child fails (its
/// exit status is in the message).
pub fn run_child(args: &[&str]) -> io::Result<String> {
    let exe = std::env::current_exe()?;
    let out = Command::new(&exe)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "child `{} {}` failed: {}",
            exe.display(),
            args.join(" "),
            out.status
        )));
    }
    String::from_utf8(out.stdout)
        .map_err(|e| io::Error::other(format!("child output is not UTF-8: {e}")))
}

/// Parses `key=value` pairs separated by white space (what the children
/// print) and returns the value of `key`.
pub fn kv(text: &str, key: &str) -> Option<u64> {
    text.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
}

/// Formats nanoseconds for a table cell.
pub fn fmt_ns(ns: f64) -> String {
    if ns.abs() < 10.0 {
        format!("{ns:.2} ns")
    } else if ns.abs() < 100_000.0 {
        format!("{ns:.1} ns")
    } else {
        format!("{:.1} µs", ns / 1000.0)
    }
}

/// Formats bytes as KiB for a table cell.
pub fn fmt_kib(bytes: f64) -> String {
    format!("{:.2} KiB", bytes / 1024.0)
}

/// Formats `a / b` as a ratio (`—` when it is meaningless).
pub fn fmt_ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() && b.is_finite() {
        format!("{:.2}×", a / b)
    } else {
        "—".to_string()
    }
}

/// A target next to whether the measurement met it.
pub fn fmt_target(target: &str, met: bool) -> String {
    format!("{target} ({})", if met { "met" } else { "missed" })
}

/// A Markdown table, padded so it also reads well in a terminal.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells are left empty, extra ones dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// The table as GitHub-flavoured Markdown.
    pub fn to_markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                std::iter::once(&self.header[i])
                    .chain(self.rows.iter().map(|r| &r[i]))
                    .map(|c| esc(c).chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(3)
            })
            .collect();
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            out.push('|');
            for (c, w) in cells.iter().zip(&widths) {
                let c = esc(c);
                let pad = w - c.chars().count();
                let _ = write!(out, " {c}{} |", " ".repeat(pad));
            }
            out.push('\n');
        };
        line(&mut out, &self.header);
        out.push('|');
        for w in &widths {
            let _ = write!(out, " {} |", "-".repeat(*w));
        }
        out.push('\n');
        for r in &self.rows {
            line(&mut out, r);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibrate_reaches_about_the_target() {
        // A fake benchmark whose iterations take 1 µs each.
        let mut run = |iters: u64| Duration::from_micros(iters);
        let n = calibrate(&mut run, Duration::from_millis(100));
        assert_eq!(n, 100_000);
    }

    #[test]
    fn sample_reports_best_and_median_per_iteration() {
        let runs = vec![
            Duration::from_nanos(300),
            Duration::from_nanos(100),
            Duration::from_nanos(200),
        ];
        let s = Sample::from_runs(runs, 10);
        assert_eq!(s.best_ns, 10.0);
        assert_eq!(s.median_ns, 20.0);
        let p = s.per(10);
        assert_eq!(p.best_ns, 1.0);
        assert_eq!(p.iters, 100);
    }

    #[test]
    fn table_is_markdown_with_aligned_columns() {
        let mut t = Table::new(&["a", "bb"]);
        t.row(vec!["x|y".into(), "1".into()]);
        let md = t.to_markdown();
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "| a    | bb  |");
        assert_eq!(lines[1], "| ---- | --- |");
        assert_eq!(lines[2], "| x\\|y | 1   |");
    }

    #[test]
    fn kv_finds_values() {
        assert_eq!(kv("a=1 b=22\n", "b"), Some(22));
        assert_eq!(kv("a=1", "c"), None);
    }

    #[test]
    fn mem_reads_proc() {
        let m = Mem::now().unwrap();
        assert!(m.rss > 0);
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_ns(1.234), "1.23 ns");
        assert_eq!(fmt_ns(123.45), "123.5 ns");
        assert_eq!(fmt_ns(250_000.0), "250.0 µs");
        assert_eq!(fmt_kib(2048.0), "2.00 KiB");
        assert_eq!(fmt_ratio(1.0, 2.0), "0.50×");
        assert_eq!(fmt_ratio(1.0, 0.0), "—");
        assert_eq!(fmt_target("≤ 1 ns", true), "≤ 1 ns (met)");
    }
}

/// The keep-alive hello-world servers the HTTP benchmarks run as child
/// processes: sylvan's, hyper's and a bare `httparse` responder on tokio,
/// answering every request with `Hello, World!` (13 bytes, with `Date` and
/// `Content-Type`).
pub mod hello {
    use std::process::ExitCode;

    /// The body of every response.
    pub const BODY: &str = "Hello, World!";

    /// Serves the hello world with sylvan's HTTP server on a free loopback
    /// port, at most `max_connections` at once; prints `PORT <n>` first.
    pub fn serve_sylvan(max_connections: usize) -> ExitCode {
        let server = match sylvan::http::Server::bind("127.0.0.1:0")
            .and_then(|s| s.max_connections(max_connections))
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("server: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("PORT {}", server.local_addr().unwrap().port());
        let handle = server.serve(|_req| sylvan::http::Response::text(BODY));
        let _ = handle.wait();
        ExitCode::SUCCESS
    }

    /// Serves the same hello world with hyper 1.x on tokio's `current_thread`
    /// runtime; prints `PORT <n>` first.
    pub fn serve_hyper() -> ExitCode {
        use http_body_util::Full;
        use hyper::body::Bytes;
        use hyper::server::conn::http1;
        use hyper::service::service_fn;
        use hyper_util::rt::TokioIo;

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            println!("PORT {}", listener.local_addr().unwrap().port());
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder()
                                .header("Content-Type", "text/plain; charset=utf-8")
                                .body(Full::new(Bytes::from_static(BODY.as_bytes())))
                                .unwrap(),
                        )
                    });
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        ExitCode::SUCCESS
    }

    /// The floor an HTTP/1.1 server on tokio can reach: a bare responder
    /// that parses each request head with `httparse` and answers the same
    /// hello world (`Content-Type`, `Content-Length` and a `Date` formatted
    /// at most once a second), with no limits, timeouts, bodies or error
    /// responses. Pipelined requests get one write. A malformed or oversized
    /// head closes the connection. Prints `PORT <n>` first.
    pub fn serve_bare() -> ExitCode {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            println!("PORT {}", listener.local_addr().unwrap().port());
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut out = Vec::with_capacity(4096);
                    let mut filled = 0;
                    loop {
                        match stream.read(&mut buf[filled..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => filled += n,
                        }
                        let mut start = 0;
                        loop {
                            let mut headers = [httparse::EMPTY_HEADER; 32];
                            let mut req = httparse::Request::new(&mut headers);
                            match req.parse(&buf[start..filled]) {
                                Ok(httparse::Status::Complete(len)) => {
                                    start += len;
                                    bare_response(&mut out);
                                }
                                Ok(httparse::Status::Partial) => break,
                                Err(_) => return,
                            }
                        }
                        buf.copy_within(start..filled, 0);
                        filled -= start;
                        if filled == buf.len() {
                            return;
                        }
                        if !out.is_empty() {
                            if stream.write_all(&out).await.is_err() {
                                return;
                            }
                            out.clear();
                        }
                    }
                });
            }
        });
        ExitCode::SUCCESS
    }

    /// Appends the bare responder's response, its `Date` field formatted
    /// when the second changes.
    fn bare_response(out: &mut Vec<u8>) {
        use std::cell::RefCell;
        use std::time::{SystemTime, UNIX_EPOCH};
        thread_local! {
            static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
        }
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        out.extend_from_slice(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 13\r\ndate: ",
        );
        DATE.with(|d| {
            let mut d = d.borrow_mut();
            if d.0 != secs {
                *d = (secs, httpdate::fmt_http_date(now));
            }
            out.extend_from_slice(d.1.as_bytes());
        });
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(BODY.as_bytes());
    }
}
