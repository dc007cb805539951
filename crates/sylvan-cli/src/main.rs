//! `sylvan`: the command-line tool built on the sylvan library.
//!
//! Subcommands: `demo` (reconnection surviving faults, end to end), `proxy`
//! (TCP load balancer), `chaos` (fault-injecting proxy with Toxiproxy's HTTP
//! API), `bench` (load generator), `echo` (the seed's echo server), `top`
//! (a live view of a process's admin endpoint).
//!
//! Flags are parsed by clap into raw arguments, then validated into
//! settings by each subcommand; errors go to stderr as one line, with exit
//! code 2 for bad input and 1 for failures at run time.

#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![forbid(unsafe_code)]

mod bench;
mod chaos;
mod cli;
mod common;
mod demo;
mod echo;
mod proxy;
mod top;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    common::init_logging(&cli.log_level);
    let code = match cli::run(cli) {
        Ok(code) => code,
        Err(e) => common::report(&e),
    };
    // Unwind what is left on this thread's hub (servers, health checkers)
    // while logging still works, rather than leaking it at exit.
    sylvan::shutdown();
    code
}
