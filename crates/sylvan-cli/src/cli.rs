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
    /// The seed's echo server.
    Echo(crate::echo::Args),
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Echo(a) => crate::echo::run(a),
    }
}
