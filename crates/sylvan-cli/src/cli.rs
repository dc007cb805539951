//! The command line: raw arguments (clap) and dispatch.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Green-thread networking tools: reconnection demo, TCP proxy, chaos
/// proxy, load generator, echo server.
#[derive(Debug, Parser)]
#[command(name = "sylvan", version, about)]
pub struct Cli {
    /// Log level (error, warn, info, debug, trace); RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "warn")]
    pub log_level: String,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// An end-to-end run showing reconnection surviving faults.
    Demo(crate::demo::Args),
    /// The seed's echo server.
    Echo(crate::echo::Args),
    /// TCP load balancer with health checks, retries, ejection and
    /// ZooKeeper discovery.
    Proxy(crate::proxy::command::Args),
    /// Load generator: echo or HTTP, latency histogram, JSON and SVG.
    Bench(crate::bench::Args),
    /// Fault-injecting proxies driven by Toxiproxy's HTTP API.
    Chaos(crate::chaos::Args),
    /// A live terminal view of a process's admin endpoint (--admin):
    /// hubs and green threads, refreshed every second.
    Top(crate::top::Args),
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo(a) => crate::demo::run(a),
        Command::Echo(a) => crate::echo::run(a),
        Command::Proxy(a) => crate::proxy::command::run(a),
        Command::Bench(a) => crate::bench::run(a),
        Command::Chaos(a) => crate::chaos::run(a),
        Command::Top(a) => crate::top::run(a),
    }
}
