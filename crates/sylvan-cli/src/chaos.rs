//! `sylvan chaos`: fault-injecting proxies driven over Toxiproxy's HTTP
//! API, so Toxiproxy's clients and test suites work unchanged.

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use sylvan::chaos::Registry;
use sylvan::chaos::api::{ApiServer, parse_config};

use crate::common::{parse_duration, shutdown_signal, usage};

/// Flags of `sylvan chaos` (Toxiproxy server's `-host`, `-port`, `-config`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Host or IP address the HTTP API listens on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port of the HTTP API (Toxiproxy's default).
    #[arg(long, default_value = "8474")]
    pub port: String,
    /// Toxiproxy config file to create proxies from at start: a JSON array
    /// of {"name", "listen", "upstream", "enabled"}.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// How long to let API requests finish on Ctrl-C / SIGTERM.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub grace: Duration,
    /// sylvan's admin endpoint (not Toxiproxy's API).
    #[command(flatten)]
    pub admin: crate::common::AdminArgs,
}

/// Serves the API until SIGINT/SIGTERM, then stops every proxy.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let port: u16 = args.port.trim().parse().map_err(|_| {
        usage(format!(
            "--port {:?} is not a port number (0-65535)",
            args.port
        ))
    })?;
    let host = args.host.trim();
    if host.is_empty() {
        return Err(usage("--host is empty"));
    }
    let addr = if host.parse::<Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    // The config is checked whole before anything is bound.
    let (proxies, config) = match &args.config {
        Some(path) => {
            let name = path.display().to_string();
            let bytes = std::fs::read(path)
                .map_err(|e| usage(format!("cannot read --config {name}: {e}")))?;
            let list = parse_config(&bytes).map_err(|e| usage(format!("--config {name}: {e}")))?;
            (list, name)
        }
        None => (Vec::new(), String::new()),
    };
    args.admin.addr()?; // checked before anything starts
    let stop = shutdown_signal()?;
    args.admin
        .start("chaos", sylvan::debug::admin::Builder::new())?;
    let server = sylvan::http::Server::bind(addr.as_str())
        .map_err(|e| usage(format!("cannot listen on {addr}: {e}")))?
        .max_body_size(1 << 20);
    let bound = server.local_addr()?;
    let registry = Registry::new();
    let n = proxies.len();
    registry
        .populate(proxies)
        .map_err(|e| usage(format!("--config {config}: {e}")))?;
    let api = ApiServer::serve(server, registry.clone());
    eprintln!("sylvan chaos: API listening on http://{bound} ({n} proxies from the config)");
    let _ = stop.recv();
    api.stop(args.grace);
    registry.clear();
    Ok(ExitCode::SUCCESS)
}
