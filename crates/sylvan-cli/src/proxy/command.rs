//! The `sylvan proxy` command line: flags, validation, and the proxy on N
//! hubs until SIGINT/SIGTERM, then a graceful drain.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use sylvan::net::{ListenOptions, TcpListener};

use super::{Balance, Config, EjectConfig, HealthConfig, Shared};
use crate::common::{parse_duration, shutdown_signal, usage};

/// Flags of `sylvan proxy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7100")]
    pub listen: String,
    /// An upstream, HOST:PORT (repeat the flag for more); host names are
    /// resolved again on every connect.
    #[arg(long = "upstream", value_name = "HOST:PORT")]
    pub upstreams: Vec<String>,
    /// Follow the members registered in ZooKeeper under PATH (e.g. by
    /// `sylvan echo --register`) as upstreams, live: members that join get
    /// traffic and health checks, members that leave (or whose session
    /// expires) get no new connections. Combines with --upstream; at least
    /// one of the two is required.
    #[arg(long, value_name = "zk://HOST:PORT[,HOST:PORT...]/PATH")]
    pub discover: Option<String>,
    /// ZooKeeper session timeout asked for by --discover (the server may
    /// clamp it).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub zk_session_timeout: Duration,
    /// How to choose the upstream of a new connection.
    #[arg(long, value_enum, default_value_t = Balance::RoundRobin)]
    pub balance: Balance,
    /// Bound of one upstream connect, name resolution included.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Close a connection after this long without a byte either way (0s:
    /// never).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Time between health checks (TCP connects) of each upstream.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub health_interval: Duration,
    /// Bound of one health check (default: the interval, at most the
    /// connect timeout).
    #[arg(long, value_parser = parse_duration)]
    pub health_timeout: Option<Duration>,
    /// Consecutive passing checks that bring an upstream back.
    #[arg(long, default_value_t = 2)]
    pub rise: u32,
    /// Consecutive failing checks that take an upstream out.
    #[arg(long, default_value_t = 3)]
    pub fall: u32,
    /// Turn active health checks off (passive ejection stays on).
    #[arg(long)]
    pub no_health_checks: bool,
    /// Consecutive connect failures that eject an upstream.
    #[arg(long, default_value_t = 1)]
    pub eject_after: u32,
    /// First ejection length; it doubles with each repeat.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub eject_time: Duration,
    /// Longest ejection.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub eject_max: Duration,
    /// Other upstreams a connection may try after a failed connect
    /// (default: all of them).
    #[arg(long)]
    pub retries: Option<usize>,
    /// Client connections handled at once per thread.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// OS threads, one hub each, sharing the port with SO_REUSEPORT.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// How long to let connections finish on Ctrl-C / SIGTERM.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub grace: Duration,
    /// The admin endpoint; besides sylvan's pages it serves /stats (JSON),
    /// the proxy's metrics in /metrics, /health, and its upstreams on the
    /// page.
    #[command(flatten)]
    pub admin: crate::common::AdminArgs,
}

/// Checks that `s`, given as `what`, looks like `HOST:PORT` (`[v6]:PORT`
/// for IPv6).
pub fn check_host_port(what: &str, s: &str) -> Result<(), String> {
    let bad = || format!("{what} {s:?} is not HOST:PORT");
    if s.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || host.contains(':') || host.contains('/') || port == 0 {
        return Err(bad());
    }
    Ok(())
}

/// Validates the flags into a [`Config`].
pub fn config(args: &Args) -> anyhow::Result<Config> {
    let listen: SocketAddr = args.listen.parse().map_err(|_| {
        usage(format!(
            "--listen {:?} is not an IP:PORT address",
            args.listen
        ))
    })?;
    let discover: Option<sylvan::zk::ZkUrl> = match &args.discover {
        Some(u) => Some(u.parse().map_err(|e| usage(format!("--discover: {e}")))?),
        None => None,
    };
    if args.upstreams.is_empty() && discover.is_none() {
        return Err(usage(
            "no upstream: give at least one --upstream HOST:PORT or --discover zk://HOST:PORT/PATH",
        ));
    }
    for u in &args.upstreams {
        check_host_port("--upstream", u).map_err(usage)?;
    }
    if args.threads == 0 {
        return Err(usage("--threads must be at least 1"));
    }
    if args.threads > crate::echo::MAX_THREADS {
        return Err(usage(format!(
            "--threads must be at most {}",
            crate::echo::MAX_THREADS
        )));
    }
    if args.max_connections == 0 {
        return Err(usage("--max-connections must be at least 1"));
    }
    if args.rise == 0 || args.fall == 0 || args.eject_after == 0 {
        return Err(usage("--rise, --fall and --eject-after must be at least 1"));
    }
    for (flag, d) in [
        ("--connect-timeout", args.connect_timeout),
        ("--health-interval", args.health_interval),
        ("--eject-time", args.eject_time),
        ("--zk-session-timeout", args.zk_session_timeout),
    ] {
        if d.is_zero() {
            return Err(usage(format!("{flag} must be more than 0")));
        }
    }
    let mut c = Config::new(listen, args.upstreams.clone());
    c.discover = discover;
    c.zk_session_timeout = args.zk_session_timeout;
    c.balance = args.balance;
    c.connect_timeout = args.connect_timeout;
    c.idle_timeout = Some(args.idle_timeout).filter(|d| !d.is_zero());
    c.health = (!args.no_health_checks).then(|| HealthConfig {
        interval: args.health_interval,
        timeout: args
            .health_timeout
            .unwrap_or(args.health_interval.min(args.connect_timeout)),
        rise: args.rise,
        fall: args.fall,
    });
    c.eject = EjectConfig {
        after: args.eject_after,
        base: args.eject_time,
        max: args.eject_max.max(args.eject_time),
    };
    if let Some(r) = args.retries {
        c.retries = r;
    }
    c.max_connections = args.max_connections;
    Ok(c)
}

/// Resolves every upstream given by name once, so a name that does not
/// resolve at all is reported at startup (as HAProxy does) instead of
/// failing every connection. An upstream that resolves but refuses
/// connections is fine: the health checks take it out until it comes up.
fn resolve_all(upstreams: &[String]) -> anyhow::Result<()> {
    for u in upstreams {
        if u.parse::<SocketAddr>().is_ok() {
            continue;
        }
        sylvan::net::lookup_host_timeout(u.as_str(), Duration::from_secs(5))
            .map_err(|e| usage(format!("cannot resolve upstream {u:?}: {e}")))?;
    }
    Ok(())
}

/// Binds `addr` (the value of flag `what`); failure is bad input (exit 2).
fn bind(what: &str, addr: SocketAddr, reuse_port: bool) -> anyhow::Result<TcpListener> {
    ListenOptions::new()
        .reuse_port(reuse_port)
        .bind(addr)
        .map_err(|e| usage(format!("cannot listen on {addr} ({what}): {e}")))
}

/// Runs the proxy until SIGINT/SIGTERM, then drains.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = config(&args)?;
    args.admin.addr()?; // checked before anything starts
    resolve_all(&config.upstreams)?;
    // Bind up front so a port in use is reported before anything starts.
    let threads = args.threads;
    let first = bind("--listen", config.listen, threads > 1)?;
    let bound = first.local_addr()?;
    let discovering = match &config.discover {
        Some(url) => format!(" + members of {url}"),
        None => String::new(),
    };
    let listening = format!(
        "sylvan proxy: listening on {bound}, {} upstream(s){discovering}, {}, {threads} thread(s)",
        config.upstreams.len(),
        config.balance,
    );
    let shared = Shared::new(config);
    // Listen for SIGINT/SIGTERM before saying we are up, so a signal sent
    // as soon as the lines appear is not lost.
    let stop = shutdown_signal()?;
    args.admin
        .start("proxy", super::admin::builder(shared.clone(), Some(bound)))?;
    eprintln!("{listening}");
    let first = Mutex::new(Some(first.into_std()?));
    let grace = args.grace;
    let (done_tx, done_rx) = sylvan::sync::channel::<()>();
    let results = sylvan::Runtime::builder()
        .threads(threads)
        .thread_name("sylvan-proxy")
        .build()
        .context("starting the runtime")?
        .run(|| -> anyhow::Result<(usize, usize)> {
            let hub0 = sylvan::Runtime::current_index() == Some(0);
            let taken = first.lock().map(|mut f| f.take()).unwrap_or(None);
            let listener = match taken {
                Some(l) => TcpListener::from_std(l)?,
                None => ListenOptions::new().reuse_port(true).bind(bound)?,
            };
            let proxy = match super::start_on(listener, shared.clone(), hub0) {
                Ok(p) => p,
                Err(e) => {
                    // The other hubs wait for hub 0's word: give it.
                    if hub0 {
                        for _ in 1..threads {
                            let _ = done_tx.send(());
                        }
                    }
                    return Err(e.into());
                }
            };
            if hub0 {
                let _ = stop.recv();
                let open = shared.active.load(std::sync::atomic::Ordering::Relaxed);
                eprintln!("sylvan proxy: draining {open} connection(s) for up to {grace:?}");
                for _ in 1..threads {
                    let _ = done_tx.send(());
                }
                // A second signal cuts the drain short.
                let stop = stop.clone();
                sylvan::spawn(move || {
                    if stop.recv().is_ok() {
                        eprintln!("sylvan proxy: second signal, exiting now");
                        std::process::exit(1);
                    }
                });
            } else {
                let _ = done_rx.recv();
            }
            let report = proxy.stop(grace);
            Ok((report.finished, report.killed))
        });
    let (mut finished, mut killed) = (0, 0);
    for r in results {
        let (f, k) = r?;
        finished += f;
        killed += k;
    }
    eprintln!(
        "sylvan proxy: stopped ({finished} connection(s) finished, {killed} closed at the deadline)"
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::check_host_port;

    #[test]
    fn upstream_syntax() {
        for ok in [
            "127.0.0.1:80",
            "[::1]:80",
            "localhost:7000",
            "db.internal:5432",
        ] {
            assert_eq!(check_host_port("--upstream", ok), Ok(()), "{ok}");
        }
        for bad in [
            "localhost",
            "localhost:",
            ":80",
            "host:99999",
            "host:0",
            "::1:80",
            "a/b:1",
        ] {
            assert!(
                check_host_port("--upstream", bad)
                    .unwrap_err()
                    .contains("HOST:PORT"),
                "{bad}"
            );
        }
    }
}
