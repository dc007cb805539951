//! `sylvan chaos`: fault-injecting proxies driven over Toxiproxy's HTTP
//! API, so Toxiproxy's clients and test suites work unchanged.

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use sylvan::chaos::api::{ApiServer, parse_config};
use sylvan::chaos::{ProxyConfig, Registry};

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

/// The flags of `sylvan chaos`, validated; see [`Args`] for each.
#[derive(Debug)]
pub struct Settings {
    /// `--host` and `--port`, as an address to bind (`[v6]:port` for IPv6).
    pub addr: String,
    /// The proxies of `--config`, checked whole.
    pub proxies: Vec<ProxyConfig>,
    /// `--config`'s file name, for messages (empty without one).
    pub config: String,
    /// `--grace`.
    pub grace: Duration,
    /// `--admin` and `--admin-token`, the address checked.
    pub admin: crate::common::AdminArgs,
}

impl Settings {
    /// Checks the flags and reads `--config`; a bad one is a one-line
    /// usage error (exit 2).
    pub fn from_args(args: &Args) -> anyhow::Result<Settings> {
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
                let list =
                    parse_config(&bytes).map_err(|e| usage(format!("--config {name}: {e}")))?;
                (list, name)
            }
            None => (Vec::new(), String::new()),
        };
        args.admin.addr()?;
        Ok(Settings {
            addr,
            proxies,
            config,
            grace: args.grace,
            admin: args.admin.clone(),
        })
    }
}

/// Serves the API until SIGINT/SIGTERM, then stops every proxy.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    serve(Settings::from_args(&args)?)
}

/// Serves with validated settings until SIGINT/SIGTERM.
fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    let Settings {
        addr,
        proxies,
        config,
        grace,
        admin,
    } = settings;
    let stop = shutdown_signal()?;
    admin.start("chaos", sylvan::debug::admin::Builder::new())?;
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
    api.stop(grace);
    registry.clear();
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Settings;

    /// The flags after `sylvan chaos`, validated.
    fn settings(flags: &[&str]) -> Result<Settings, String> {
        let cli = crate::cli::Cli::try_parse_from(["sylvan", "chaos"].iter().chain(flags))
            .map_err(|e| e.to_string())?;
        let crate::cli::Command::Chaos(args) = cli.command else {
            unreachable!("parsed as chaos")
        };
        Settings::from_args(&args).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_ipv6() {
        assert_eq!(settings(&[]).unwrap().addr, "127.0.0.1:8474");
        assert_eq!(settings(&["--host", "::1"]).unwrap().addr, "[::1]:8474");
    }

    #[test]
    fn each_bad_flag_is_named() {
        for (flags, want) in [
            (
                &["--port", "http"][..],
                "--port \"http\" is not a port number",
            ),
            (&["--port", "65536"], "is not a port number"),
            (&["--host", " "], "--host is empty"),
            (
                &["--config", "/nonexistent/sylvan.json"],
                "cannot read --config",
            ),
        ] {
            let e = settings(flags).unwrap_err();
            assert!(e.contains(want), "{flags:?}: {e}");
        }
    }
}
