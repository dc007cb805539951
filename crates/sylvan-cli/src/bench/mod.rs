//! `sylvan bench echo ADDR` / `sylvan bench http URL`: a load generator on
//! green threads, with an HDR histogram of latencies, a timeline, JSON and
//! SVG output.
//!
//! See [`load`] for the closed-loop and constant-rate modes. Exit codes:
//! 2 for bad input (a malformed address, URL or duration), 1 when the
//! target cannot be reached or every request failed.

pub mod http;
pub mod load;
mod plot;
pub mod record;
pub mod report;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use anyhow::{Context, anyhow};

use crate::common::{parse_duration, usage};
use load::{Plan, Workload};
use report::Report;

/// Flags of `sylvan bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to load.
    #[command(subcommand)]
    pub target: Target,
}

/// The kinds of load.
#[derive(Debug, clap::Subcommand)]
pub enum Target {
    /// Echo requests: send --size bytes, read them back.
    Echo {
        /// The echo server, HOST:PORT.
        addr: String,
        /// Payload bytes per request.
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[command(flatten)]
        common: Common,
    },
    /// HTTP/1.1 keep-alive GETs.
    Http {
        /// The URL, `http://HOST[:PORT]/PATH`.
        url: String,
        #[command(flatten)]
        common: Common,
    },
}

/// Flags shared by both kinds.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Connections, each its own green thread.
    #[arg(short = 'c', long, default_value_t = 64)]
    pub connections: usize,
    /// How long to send.
    #[arg(short = 'd', long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Constant rate, requests/s over all connections, with latency
    /// measured from each request's intended send time (default: closed
    /// loop, as fast as replies come).
    #[arg(long)]
    pub rate: Option<f64>,
    /// OS threads, one hub each; connections are spread over them.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Bound of each connect and each request.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Open a new connection for every request (so connection setup is
    /// measured too); default: keep each connection for the whole run.
    #[arg(long)]
    pub close: bool,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw throughput and latency over time to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

/// Runs the load and reports.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (mode, target, size, workload, common) = match args.target {
        Target::Echo { addr, size, common } => {
            crate::proxy::command::check_host_port("ADDR", &addr).map_err(usage)?;
            if size == 0 {
                return Err(usage("--size must be at least 1"));
            }
            let payload = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
            let w = Workload::Echo {
                addr: addr.clone(),
                payload,
            };
            ("echo", addr, Some(size), w, common)
        }
        Target::Http { url, common } => {
            let u = http::Url::parse(&url).map_err(usage)?;
            ("http", url, None, Workload::Http(u), common)
        }
    };
    if common.connections == 0 || common.threads == 0 {
        return Err(usage("-c and --threads must be at least 1"));
    }
    if common.duration.is_zero() || common.timeout.is_zero() {
        return Err(usage("-d and --timeout must be more than 0"));
    }
    if let Some(r) = common.rate
        && !(r.is_finite() && r > 0.0)
    {
        return Err(usage(format!(
            "--rate {r} must be a positive number of requests/s"
        )));
    }
    // One connect first: an unreachable target is one clear error, not a
    // run full of failed requests.
    sylvan::net::Connector::new()
        .connect_timeout(common.timeout)
        .connect(workload.addr())
        .map_err(|e| anyhow!("cannot connect to {}: {e}", workload.addr()))?;
    let plan = Plan {
        workload,
        connections: common.connections,
        threads: common.threads,
        duration: common.duration,
        rate: common.rate,
        timeout: common.timeout,
        close: common.close,
        interval: (common.duration / 50).clamp(Duration::from_millis(100), Duration::from_secs(1)),
    };
    let progress = Arc::new(AtomicU64::new(0));
    let stopped = Arc::new(AtomicBool::new(false));
    let bar = std::io::stderr()
        .is_terminal()
        .then(|| progress_bar(plan.duration, progress.clone(), stopped.clone()));
    let (rec, elapsed) = load::run(&plan, &progress, &stopped)?;
    if let Some(b) = bar {
        let _ = b.join();
    }
    let report = Report::new(mode, target, &plan, size, &rec, elapsed);
    print!("{}", report.summary());
    if let Some(p) = &common.json {
        report.write_json(p)?;
    }
    if let Some(p) = &common.plot {
        report.write_plot(p)?;
    }
    if report.requests == 0 && report.errors > 0 {
        let first = report
            .error_kinds
            .keys()
            .next()
            .cloned()
            .unwrap_or_default();
        return Err(anyhow!("every request failed ({first})")).context(report.target.clone());
    }
    Ok(ExitCode::SUCCESS)
}

/// Shows a progress bar on stderr from its own OS thread until `stopped`.
fn progress_bar(
    duration: Duration,
    done: Arc<AtomicU64>,
    stopped: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let total = duration.as_millis() as u64;
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{bar:30}] {elapsed}/{duration} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        let start = std::time::Instant::now();
        let (mut last_n, mut last_t) = (0u64, start);
        while !stopped.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            let now = std::time::Instant::now();
            let n = done.load(Relaxed);
            let rps = (n - last_n) as f64 / (now - last_t).as_secs_f64().max(1e-9);
            (last_n, last_t) = (n, now);
            bar.set_position(((now - start).as_millis() as u64).min(total));
            bar.set_message(format!("{n} requests, {rps:.0}/s"));
        }
        bar.finish_and_clear();
    })
}
