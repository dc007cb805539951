//! What every subcommand shares: durations, logging, errors, signals.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use sylvan::signal::{SIGINT, SIGTERM, Signals};

/// Bad input (a wrong flag value, an address that doesn't parse, a port in
/// use): reported with exit code 2.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Returns a `Usage` error.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(msg.into()))
}

/// Prints `e` as one line on stderr and picks the exit code.
pub fn report(e: &anyhow::Error) -> ExitCode {
    let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    eprintln!("sylvan: {}", chain.join(": "));
    if e.downcast_ref::<Usage>().is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}

/// Parses durations like `250ms`, `5s`, `2m`, `1h`, `1.5s` (clap value
/// parser).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{s:?} has no unit: write e.g. 250ms, 5s, 2m"))?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration: write e.g. 250ms, 5s, 2m"))?;
    let secs = match unit {
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?}: use us, ms, s, m or h"
            ));
        }
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Sets up `tracing` from `--log-level` (overridden by `RUST_LOG`).
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// A subscription to SIGINT and SIGTERM; each `recv` returns the next one.
///
/// Made with `sylvan::signal::Signals` before the runtime starts, so a
/// signal that arrives before anyone receives is kept, not lost. The
/// handler only writes to a self-pipe; green threads on any hub wait for
/// the signal like for any other event, and no handler ever runs on a
/// green stack. Shared (`Arc`) so a second green thread can wait for a
/// second signal.
pub fn shutdown_signal() -> anyhow::Result<Arc<Signals>> {
    Ok(Arc::new(Signals::new(&[SIGINT, SIGTERM])?))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5").unwrap_err().contains("no unit"));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("fast").is_err());
    }
}

/// `--admin ADDR` and `--admin-token TOKEN`: sylvan's admin endpoint
/// ([`sylvan::debug::admin`]), shared by `proxy`, `echo` and `chaos`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AdminArgs {
    /// Serve the admin endpoint on this address: a web page at /, /threads
    /// (every green thread and where it waits), /hubs, /metrics
    /// (Prometheus). A loopback address unless --admin-token is given.
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<String>,
    /// Bearer token the admin endpoint requires (then it may listen on any
    /// address).
    #[arg(long, value_name = "TOKEN")]
    pub admin_token: Option<String>,
}

impl AdminArgs {
    /// The validated address, if `--admin` was given (bad input: exit 2).
    pub fn addr(&self) -> anyhow::Result<Option<std::net::SocketAddr>> {
        match &self.admin {
            None => Ok(None),
            Some(a) => a
                .parse()
                .map(Some)
                .map_err(|_| usage(format!("--admin {a:?} is not an IP:PORT address"))),
        }
    }

    /// Starts `builder` on `--admin`'s address, if given, and says where on
    /// stderr (`sylvan CMD: admin on http://ADDR/ ...`).
    pub fn start(&self, cmd: &str, builder: sylvan::debug::admin::Builder) -> anyhow::Result<()> {
        let Some(addr) = self.addr()? else {
            return Ok(());
        };
        let builder = match &self.admin_token {
            Some(t) => builder.token(t.clone()),
            None => builder,
        };
        let admin = builder.serve(addr).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput => usage(format!("--admin: {e}")),
            _ => usage(format!("cannot listen on {addr} (--admin): {e}")),
        })?;
        eprintln!(
            "sylvan {cmd}: admin on http://{}/ (/threads, /hubs, /metrics)",
            admin.local_addr()
        );
        Ok(())
    }
}
