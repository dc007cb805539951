//! `sylvan demo`: reconnection surviving faults, end to end, with nothing
//! outside this process.
//!
//! Three backends, a `ChaosProxy` in front of each, `sylvan proxy` in front
//! of those, and client green threads sending requests through the proxy
//! over `Reconnecting` connections. A scripted fault sequence — a backend
//! killed and restarted, one blackholed, a latency spike, a reset storm —
//! runs while a one-screen status updates every second. The report counts
//! requests sent, succeeded, failed with a clear error, lost and duplicated
//! (the backends record every request id they execute, so both must be 0).

mod backend;
mod client;
mod plot;
mod report;
mod script;

use std::cell::Cell;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context;
use sylvan::chaos::{ChaosProxy, Direction, Toxic};

use crate::common::{parse_duration, usage};
use crate::proxy;
use backend::{Backend, Receipts};
use report::Report;
use script::FAULTS;

/// Flags of `sylvan demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long the run lasts (faults are placed at fixed fractions of it).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Client green threads sending requests.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw throughput and latency over time, faults marked, to FILE.svg.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

/// The demo's latency spike.
const SPIKE: Duration = Duration::from_millis(300);

/// The flags of `sylvan demo`, validated; see [`Args`] for each.
#[derive(Debug)]
pub struct Settings {
    /// `--duration`: 2 s ..= [`MAX_DURATION`].
    pub duration: Duration,
    /// `--clients`: 1 ..= [`MAX_CLIENTS`].
    pub clients: usize,
    /// `--json`.
    pub json: Option<PathBuf>,
    /// `--plot`.
    pub plot: Option<PathBuf>,
}

/// Longest run: the report keeps a sample per second.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Most client green threads.
pub const MAX_CLIENTS: usize = 10_000;

impl Settings {
    /// Checks the flags; a bad one is a one-line usage error (exit 2).
    pub fn from_args(args: &Args) -> anyhow::Result<Settings> {
        if args.duration < Duration::from_secs(2) {
            return Err(usage("--duration must be at least 2s"));
        }
        if args.duration > MAX_DURATION {
            return Err(usage("--duration must be at most 1h"));
        }
        if args.clients == 0 || args.clients > MAX_CLIENTS {
            return Err(usage(format!(
                "--clients must be between 1 and {MAX_CLIENTS}"
            )));
        }
        Ok(Settings {
            duration: args.duration,
            clients: args.clients,
            json: args.json.clone(),
            plot: args.plot.clone(),
        })
    }
}

/// Runs the demo; exit code 0 only if nothing was lost or duplicated.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    demo(Settings::from_args(&args)?)
}

/// Runs the demo with validated settings.
fn demo(args: Settings) -> anyhow::Result<ExitCode> {
    let receipts: Receipts = Rc::default();
    let mut backends = (0..3)
        .map(|i| Backend::start(i + 1, receipts.clone()))
        .collect::<std::io::Result<Vec<_>>>()
        .context("starting the backends")?;
    let chaos = backends
        .iter()
        .map(|b| ChaosProxy::builder(format!("backend-{}", b.index)).start("127.0.0.1:0", b.addr))
        .collect::<std::io::Result<Vec<_>>>()
        .context("starting the chaos proxies")?;
    let mut config = proxy::Config::new(
        "127.0.0.1:0".parse().expect("a valid address"),
        chaos.iter().map(|c| c.local_addr().to_string()).collect(),
    );
    config.balance = proxy::Balance::LeastConn;
    config.connect_timeout = Duration::from_millis(500);
    config.health = Some(proxy::HealthConfig {
        interval: Duration::from_millis(200),
        timeout: Duration::from_millis(200),
        rise: 2,
        fall: 2,
    });
    let proxy = proxy::start(config).context("starting sylvan proxy")?;
    let live = std::io::stderr().is_terminal();
    eprintln!(
        "sylvan demo: {} clients → proxy {} → chaos proxies → 3 backends, for {:?}",
        args.clients,
        proxy.local_addr(),
        args.duration
    );

    let log = Rc::new(client::Log::default());
    let stop = Rc::new(Cell::new(false));
    let conns: Vec<client::Conn> = (0..args.clients)
        .map(|_| client::connection(proxy.local_addr()))
        .collect();
    let workers: Vec<_> = conns
        .iter()
        .map(|c| {
            let (c, log, stop) = (c.clone(), log.clone(), stop.clone());
            sylvan::Builder::new()
                .name("demo-client")
                .spawn(move || client::run(c, log, stop))
        })
        .collect::<std::io::Result<_>>()?;

    let start = Instant::now();
    let total = args.duration;
    let mut status = report::Status::new(start);
    let mut next_fault = 0;
    let mut applied: Vec<Option<(f64, f64)>> = vec![None; FAULTS.len()];
    let mut fault_on = [false; FAULTS.len()];
    loop {
        let elapsed = start.elapsed();
        if elapsed >= total {
            break;
        }
        // Apply faults whose time has come, and end those whose time is up.
        for (i, f) in FAULTS.iter().enumerate() {
            if !fault_on[i] && applied[i].is_none() && elapsed >= f.start_at(total) {
                begin(i, &mut backends, &chaos)?;
                fault_on[i] = true;
                applied[i] = Some((elapsed.as_secs_f64(), 0.0));
                next_fault = i + 1;
            }
            if fault_on[i] && elapsed >= f.end_at(total) {
                end(i, &mut backends, &chaos)?;
                fault_on[i] = false;
                if let Some(a) = applied[i].as_mut() {
                    a.1 = elapsed.as_secs_f64();
                }
            }
        }
        let active: Vec<&str> = FAULTS
            .iter()
            .zip(fault_on)
            .filter(|(_, on)| *on)
            .map(|(f, _)| f.name)
            .collect();
        let reconnects: u64 = conns.iter().map(|c| c.reconnects()).sum();
        let line = status.tick(&log, reconnects, &proxy.stats(), &active, next_fault);
        if live {
            eprint!("\x1b[2J\x1b[H{line}");
        } else {
            eprintln!("{}", line.lines().next().unwrap_or(""));
        }
        // Sleep to the next whole tick (or the next fault edge, if sooner).
        let next_edge = FAULTS
            .iter()
            .flat_map(|f| [f.start_at(total), f.end_at(total)])
            .filter(|t| *t > elapsed)
            .min()
            .unwrap_or(total)
            .min(total);
        let tick = Duration::from_secs(1) - Duration::from_nanos(elapsed.subsec_nanos() as u64);
        sylvan::sleep(tick.min(next_edge - elapsed).max(Duration::from_millis(1)))?;
    }
    for (i, on) in fault_on.iter().enumerate() {
        if *on {
            end(i, &mut backends, &chaos)?;
            if let Some(a) = applied[i].as_mut() {
                a.1 = start.elapsed().as_secs_f64();
            }
        }
    }
    stop.set(true);
    for w in workers {
        let _ = w.join();
    }
    let reconnects: u64 = conns.iter().map(|c| c.reconnects()).sum();
    for c in &conns {
        c.shutdown();
    }
    let report = Report::build(
        &args,
        start,
        &log,
        &receipts.borrow(),
        reconnects,
        &applied,
        SPIKE,
    );
    proxy.stop(Duration::from_millis(100));
    println!("{}", report.text());
    if let Some(path) = &args.json {
        std::fs::write(path, report.to_json())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        plot::draw(&report, path)
            .map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))?;
    }
    Ok(if report.lost == 0 && report.duplicated == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "sylvan demo: {} lost, {} duplicated: this is a bug",
            report.lost, report.duplicated
        );
        ExitCode::from(1)
    })
}

fn begin(i: usize, backends: &mut [Backend], chaos: &[ChaosProxy]) -> anyhow::Result<()> {
    match i {
        // A killed host refuses connections: stop the backend and close the
        // path to it.
        0 => {
            backends[0].kill();
            chaos[0].set_enabled(false)?;
        }
        1 => {
            for (name, dir) in [
                ("blackhole-up", Direction::Upstream),
                ("blackhole-down", Direction::Downstream),
            ] {
                chaos[1].add_toxic(
                    name,
                    Toxic::Timeout {
                        timeout: Duration::ZERO,
                    },
                    dir,
                    1.0,
                )?;
            }
        }
        2 => chaos[2].add_toxic(
            "spike",
            Toxic::Latency {
                latency: SPIKE,
                jitter: Duration::ZERO,
            },
            Direction::Downstream,
            1.0,
        )?,
        _ => {
            for c in chaos {
                c.add_toxic(
                    "storm",
                    Toxic::ResetPeer {
                        timeout: Duration::ZERO,
                    },
                    Direction::Downstream,
                    0.5,
                )?;
            }
        }
    }
    Ok(())
}

fn end(i: usize, backends: &mut [Backend], chaos: &[ChaosProxy]) -> anyhow::Result<()> {
    match i {
        0 => {
            backends[0].restart()?;
            chaos[0].set_enabled(true)?;
        }
        1 => {
            chaos[1].remove_toxic("blackhole-up")?;
            chaos[1].remove_toxic("blackhole-down")?;
        }
        2 => {
            chaos[2].remove_toxic("spike")?;
        }
        _ => {
            for c in chaos {
                c.remove_toxic("storm")?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Settings;

    /// The flags after `sylvan demo`, validated.
    fn settings(flags: &[&str]) -> Result<Settings, String> {
        let cli = crate::cli::Cli::try_parse_from(["sylvan", "demo"].iter().chain(flags))
            .map_err(|e| e.to_string())?;
        let crate::cli::Command::Demo(args) = cli.command else {
            unreachable!("parsed as demo")
        };
        Settings::from_args(&args).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_valid() {
        let s = settings(&[]).unwrap();
        assert_eq!((s.duration.as_secs(), s.clients), (20, 16));
    }

    #[test]
    fn each_bad_flag_is_named() {
        for (flags, want) in [
            (&["--duration", "1s"][..], "--duration must be at least 2s"),
            (&["--duration", "2h"], "--duration must be at most 1h"),
            (&["--clients", "0"], "--clients must be between 1 and 10000"),
            (
                &["--clients", "10001"],
                "--clients must be between 1 and 10000",
            ),
        ] {
            let e = settings(flags).unwrap_err();
            assert!(e.contains(want), "{flags:?}: {e}");
        }
    }
}
