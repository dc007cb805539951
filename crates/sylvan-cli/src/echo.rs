//! `sylvan echo`: the seed's echo server, on one or more hubs.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::common::{parse_duration, shutdown_signal, usage};

/// Flags of `sylvan echo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7000")]
    pub listen: String,
    /// OS threads, one hub each, sharing the port with SO_REUSEPORT.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Close a connection idle this long.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// How long to let connections finish on Ctrl-C / SIGTERM.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub grace: Duration,
    /// Register this server in ZooKeeper while it runs:
    /// zk://HOST:PORT[,HOST:PORT...]/PATH (an ephemeral sequential node
    /// holding the address, re-created if the session is lost).
    #[arg(long, value_name = "ZK_URL")]
    pub register: Option<String>,
    /// ZooKeeper session timeout asked for by --register (the server may
    /// clamp it): how long after this process dies its registration goes.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub zk_session_timeout: Duration,
    /// The admin endpoint.
    #[command(flatten)]
    pub admin: crate::common::AdminArgs,
}

/// The flags of `sylvan echo`, validated; see [`Args`] for each.
#[derive(Debug)]
pub struct Settings {
    /// `--listen`.
    pub listen: SocketAddr,
    /// `--threads`: 1 ..= [`MAX_THREADS`].
    pub threads: usize,
    /// `--idle-timeout`, more than 0.
    pub idle_timeout: Duration,
    /// `--grace`.
    pub grace: Duration,
    /// `--register`.
    pub register: Option<sylvan::zk::ZkUrl>,
    /// `--zk-session-timeout`, more than 0.
    pub zk_session_timeout: Duration,
    /// `--admin` and `--admin-token`, the address checked.
    pub admin: crate::common::AdminArgs,
}

impl Settings {
    /// Checks the flags; a bad one is a one-line usage error (exit 2).
    pub fn from_args(args: &Args) -> anyhow::Result<Settings> {
        let listen: SocketAddr = args.listen.parse().map_err(|_| {
            usage(format!(
                "--listen {:?} is not an IP:PORT address",
                args.listen
            ))
        })?;
        if args.threads == 0 {
            return Err(usage("--threads must be at least 1"));
        }
        if args.threads > MAX_THREADS {
            return Err(usage(format!("--threads must be at most {MAX_THREADS}")));
        }
        if args.idle_timeout.is_zero() {
            return Err(usage("--idle-timeout must be more than 0"));
        }
        let register = match &args.register {
            Some(u) => Some(u.parse().map_err(|e| usage(format!("--register: {e}")))?),
            None => None,
        };
        if args.zk_session_timeout.is_zero() {
            return Err(usage("--zk-session-timeout must be more than 0"));
        }
        args.admin.addr()?;
        Ok(Settings {
            listen,
            threads: args.threads,
            idle_timeout: args.idle_timeout,
            grace: args.grace,
            register,
            zk_session_timeout: args.zk_session_timeout,
            admin: args.admin.clone(),
        })
    }
}

/// Most hubs `--threads` may ask for: far more than cores, few enough that
/// starting them cannot exhaust the process.
pub const MAX_THREADS: usize = 1024;

/// Runs the echo server until SIGINT/SIGTERM.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    serve(Settings::from_args(&args)?)
}

/// Serves with validated settings until SIGINT/SIGTERM.
fn serve(args: Settings) -> anyhow::Result<ExitCode> {
    let addr = args.listen;
    let register = &args.register;
    let reuse = args.threads > 1;
    // Bind once up front so a port in use is reported before anything starts.
    let first = sylvan::net::ListenOptions::new()
        .reuse_port(reuse)
        .bind(addr)
        .map_err(|e| usage(format!("cannot listen on {addr}: {e}")))?;
    let bound = first.local_addr()?;
    let first = first.into_std()?;
    // Listen for SIGINT/SIGTERM before saying we are up, so a signal sent
    // as soon as the line appears is not lost.
    let stop = shutdown_signal()?;
    args.admin
        .start("echo", sylvan::debug::admin::Builder::new())?;
    eprintln!(
        "sylvan echo: listening on {bound} ({} thread(s))",
        args.threads
    );
    // One hub per thread; hub 0 uses the socket bound above.
    let (done_tx, done_rx) = sylvan::sync::channel::<()>();
    let first = std::sync::Mutex::new(Some(first));
    let results = sylvan::Runtime::builder()
        .threads(args.threads)
        .build()
        .context("starting the runtime")?
        .run(|| -> anyhow::Result<()> {
            let taken = first.lock().map(|mut f| f.take()).unwrap_or(None);
            let listener = match taken {
                Some(l) => sylvan::net::TcpListener::from_std(l)?,
                None => sylvan::net::ListenOptions::new()
                    .reuse_port(true)
                    .bind(bound)?,
            };
            let idle = args.idle_timeout;
            let server = sylvan::serve(listener, move |mut conn, _| -> std::io::Result<()> {
                conn.set_read_timeout(Some(idle))?;
                let mut buf = [0; 16 * 1024];
                loop {
                    let n = conn.read(&mut buf)?;
                    if n == 0 {
                        return Ok(());
                    }
                    conn.write_all(&buf[..n])?;
                }
            });
            // Hub 0 registers, waits for the signal and tells the others.
            if sylvan::Runtime::current_index() == Some(0) {
                let registered = match &register {
                    Some(url) => {
                        let zk = sylvan::zk::Client::builder(&url.hosts)
                            .session_timeout(args.zk_session_timeout)
                            .connect()
                            .with_context(|| format!("connecting to ZooKeeper at {}", url.hosts))?;
                        let reg = sylvan::zk::register(&zk, &url.path, &bound.to_string())
                            .with_context(|| format!("registering under {}", url.path))?;
                        eprintln!(
                            "sylvan echo: registered as {}",
                            reg.path().unwrap_or_default()
                        );
                        Some((zk, reg))
                    }
                    None => None,
                };
                let _ = stop.recv();
                if let Some((zk, reg)) = registered {
                    let _ = reg.deregister();
                    let _ = zk.close();
                }
                for _ in 1..args.threads {
                    let _ = done_tx.send(());
                }
            } else {
                let _ = done_rx.recv();
            }
            server.stop(args.grace);
            Ok(())
        });
    for r in results {
        r?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Settings;

    /// The flags after `sylvan echo`, validated.
    fn settings(flags: &[&str]) -> Result<Settings, String> {
        let cli = crate::cli::Cli::try_parse_from(["sylvan", "echo"].iter().chain(flags))
            .map_err(|e| e.to_string())?;
        let crate::cli::Command::Echo(args) = cli.command else {
            unreachable!("parsed as echo")
        };
        Settings::from_args(&args).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_valid() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(s.threads, 1);
    }

    #[test]
    fn each_bad_flag_is_named() {
        for (flags, want) in [
            (
                &["--listen", "nowhere"][..],
                "--listen \"nowhere\" is not an IP:PORT",
            ),
            (&["--threads", "0"], "--threads must be at least 1"),
            (&["--threads", "100000"], "--threads must be at most"),
            (
                &["--idle-timeout", "0s"],
                "--idle-timeout must be more than 0",
            ),
            (&["--register", "http://x/y"], "--register"),
            (&["--zk-session-timeout", "0s"], "--zk-session-timeout"),
        ] {
            let e = settings(flags).unwrap_err();
            assert!(e.contains(want), "{flags:?}: {e}");
        }
    }
}
