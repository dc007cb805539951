//! `sylvan proxy`: a TCP load balancer with active health checks, passive
//! ejection, connect retries, graceful drain and an admin endpoint.
//!
//! # Shape
//!
//! - [`Shared`] holds what every hub of one proxy shares: the settings,
//!   the upstreams (address, counters, health verdict, ejection — atomics
//!   and one small mutex each) and the proxy-wide counters. The admin
//!   endpoint reads only this.
//! - Each hub runs its own accept loop ([`start_on`]) with hub-local
//!   state ([`Local`]): its listener (one per hub, `SO_REUSEPORT`), its
//!   balancer cursor and random generator, its connector. The balancer's
//!   loads are the shared active-connection counts, so least-conn and p2c
//!   balance the whole process.
//! - Health checks run on one hub only (the first), and their verdict is
//!   shared. A connect failure seen on any hub ejects the upstream for all.
//!
//! # Discovery
//!
//! With [`Config::discover`] (`--discover zk://HOST:PORT[,...]/PATH`) the
//! upstream set is dynamic: the first hub follows the members registered
//! under PATH (by `sylvan echo --register`, or anything using
//! [`sylvan::zk::register`]) and replaces [`Shared`]'s snapshot whenever
//! the member list changes ([`Shared::set_upstreams`]). The set is the
//! static `--upstream`s followed by the members in the order they joined,
//! one upstream per distinct address.
//!
//! - An address that stays keeps its [`Upstream`]: counters, health
//!   verdict and ejection carry over.
//! - A new address gets a fresh upstream and a health check.
//! - A removed address takes no new connection from the moment the
//!   snapshot is replaced; its health check stops; connections already
//!   forwarded to it finish normally (they hold the upstream).
//!
//! Every hub reads the same snapshot (an `Arc` behind a `RwLock`, taken
//! once per client connection), and `/stats` and `/metrics` show the set
//! as it is now. While the ZooKeeper session is suspended the last known
//! list stays; a member whose session expires (its process died) leaves
//! the list within its session timeout.
//!
//! [`start`] runs a whole proxy on the current hub (what `sylvan demo`
//! does); [`command::run`] is the command line, on N hubs.

pub mod admin;
pub mod balance;
pub mod command;
pub mod discover;
mod forward;
pub mod health;
pub mod stats;
pub mod upstream;

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sylvan::net::{Connector, ServeOptions, ServerHandle, StopReport, TcpListener};

pub use balance::Balance;
pub use health::HealthConfig;
pub use stats::Stats;
pub use upstream::{EjectConfig, Upstream};

/// A proxy's settings, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where clients connect.
    pub listen: SocketAddr,
    /// The static upstreams, `HOST:PORT` each, re-resolved on every
    /// connect.
    pub upstreams: Vec<String>,
    /// Follow the members registered in ZooKeeper here as upstreams too
    /// (default: none). See [Discovery](self#discovery).
    pub discover: Option<sylvan::zk::ZkUrl>,
    /// The ZooKeeper session timeout asked for when discovering (default
    /// 10 s; the server may clamp it).
    pub zk_session_timeout: Duration,
    /// The balancing policy (default round robin).
    pub balance: Balance,
    /// The bound of one upstream connect, resolution included (default
    /// 5 s).
    pub connect_timeout: Duration,
    /// Close a connection idle this long in both directions (default: off).
    pub idle_timeout: Option<Duration>,
    /// Active health checks (default on, with HAProxy's 2 s / rise 2 /
    /// fall 3); `None` turns them off.
    pub health: Option<HealthConfig>,
    /// Passive ejection of upstreams whose connects fail.
    pub eject: EjectConfig,
    /// How many more upstreams a connection may try after a failed connect
    /// (default `usize::MAX`: all the others, however many there are).
    pub retries: usize,
    /// Client connections handled at once per hub (default 10 000); more
    /// wait in the kernel's backlog.
    pub max_connections: usize,
}

impl Config {
    /// A proxy from `listen` to `upstreams` with the defaults above.
    pub fn new(listen: SocketAddr, upstreams: Vec<String>) -> Config {
        Config {
            listen,
            upstreams,
            discover: None,
            zk_session_timeout: Duration::from_secs(10),
            retries: usize::MAX,
            balance: Balance::RoundRobin,
            connect_timeout: Duration::from_secs(5),
            idle_timeout: None,
            health: Some(HealthConfig::default()),
            eject: EjectConfig::default(),
            max_connections: 10_000,
        }
    }
}

/// What every hub of one proxy shares.
#[derive(Debug)]
pub struct Shared {
    /// The settings.
    pub config: Config,
    /// The upstreams now: the static ones in the order given, then the
    /// discovered ones. Read with [`Shared::upstreams`], replace with
    /// [`Shared::set_upstreams`].
    upstreams: RwLock<Arc<Vec<Arc<Upstream>>>>,
    /// Client connections accepted.
    pub accepted: AtomicU64,
    /// Client connections open now.
    pub active: AtomicUsize,
    /// Client connections closed because no upstream could be connected.
    pub failed: AtomicU64,
    /// Connects retried on another upstream after a failure.
    pub retries: AtomicU64,
    /// When the proxy started.
    pub started: Instant,
}

impl Shared {
    /// The shared state of a proxy with `config`.
    pub fn new(config: Config) -> Arc<Shared> {
        let upstreams = config
            .upstreams
            .iter()
            .map(|a| Arc::new(Upstream::new(a.clone(), config.eject)))
            .collect();
        Arc::new(Shared {
            config,
            upstreams: RwLock::new(Arc::new(upstreams)),
            accepted: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            failed: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    /// The upstream set now. The snapshot does not change; a later
    /// [`set_upstreams`](Self::set_upstreams) makes a new one.
    pub fn upstreams(&self) -> Arc<Vec<Arc<Upstream>>> {
        self.upstreams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Makes `addrs` the upstream set (duplicates count once): addresses
    /// already in the set keep their [`Upstream`] and its state, new ones
    /// get a fresh one. Returns `(added, removed)`.
    pub fn set_upstreams(&self, addrs: &[String]) -> (Vec<Arc<Upstream>>, Vec<Arc<Upstream>>) {
        let mut slot = self.upstreams.write().unwrap_or_else(|e| e.into_inner());
        let old = slot.clone();
        let mut next: Vec<Arc<Upstream>> = Vec::with_capacity(addrs.len());
        let mut added = Vec::new();
        for a in addrs {
            if next.iter().any(|u| u.addr == *a) {
                continue;
            }
            match old.iter().find(|u| u.addr == *a) {
                Some(u) => next.push(u.clone()),
                None => {
                    let u = Arc::new(Upstream::new(a.clone(), self.config.eject));
                    added.push(u.clone());
                    next.push(u);
                }
            }
        }
        let removed = old
            .iter()
            .filter(|u| !next.iter().any(|n| Arc::ptr_eq(n, u)))
            .cloned()
            .collect();
        *slot = Arc::new(next);
        (added, removed)
    }

    /// A snapshot of every counter, for `/stats` and `/metrics`.
    pub fn stats(&self, listen: Option<SocketAddr>) -> Stats {
        Stats::of(self, listen)
    }
}

/// One hub's part of a proxy.
#[derive(Debug)]
pub struct Local {
    shared: Arc<Shared>,
    balancer: RefCell<balance::Balancer>,
    connector: Connector,
}

/// A proxy (or one hub's part of it) running on the current hub.
#[derive(Debug)]
pub struct ProxyHandle {
    shared: Arc<Shared>,
    server: ServerHandle,
    checks: Option<Rc<health::Checks>>,
    discovery: Option<discover::Follower>,
    local_addr: SocketAddr,
}

/// Starts a whole proxy on the current hub: binds `config.listen`, starts
/// the health checks and, with [`Config::discover`], discovery; returns
/// once the proxy accepts connections.
///
/// # Errors
///
/// If the listener cannot be bound (e.g. the port is in use),
/// [`Config::max_connections`] is 0, or ZooKeeper cannot be reached.
///
/// # Cancellation
///
/// Killed while connecting to ZooKeeper: returns the error, nothing is
/// left running.
#[allow(dead_code)] // the in-process entry point, for `sylvan demo`
pub fn start(config: Config) -> io::Result<ProxyHandle> {
    let listener = sylvan::listen(config.listen)?;
    start_on(listener, Shared::new(config), true)
}

/// Starts one hub's part of a proxy on `listener`; `first` makes this
/// the hub that runs the health checks and discovery (do it on exactly
/// one hub).
///
/// # Errors
///
/// If a health-check green thread cannot be started, or (on the first
/// hub, with [`Config::discover`]) ZooKeeper cannot be reached.
///
/// # Cancellation
///
/// As [`start`].
pub fn start_on(
    listener: TcpListener,
    shared: Arc<Shared>,
    first: bool,
) -> io::Result<ProxyHandle> {
    let local_addr = listener.local_addr()?;
    let serve_options = ServeOptions::new().max_connections(shared.config.max_connections)?;
    let checks = match shared.config.health.filter(|_| first) {
        Some(h) => {
            let c = Rc::new(health::Checks::new(h));
            c.sync(&shared.upstreams())?;
            Some(c)
        }
        None => None,
    };
    let discovery = match shared.config.discover.as_ref().filter(|_| first) {
        Some(url) => match discover::Follower::start(url, shared.clone(), checks.clone()) {
            Ok(f) => Some(f),
            Err(e) => {
                if let Some(c) = &checks {
                    c.stop();
                }
                return Err(e);
            }
        },
        None => None,
    };
    let local = Local {
        shared: shared.clone(),
        balancer: RefCell::new(balance::Balancer::new(shared.config.balance)),
        connector: Connector::new()
            .connect_timeout(shared.config.connect_timeout)
            .nodelay(true),
    };
    let server = serve_options.serve(listener, move |client, _peer| {
        forward::handle(&local, client);
        Ok::<(), io::Error>(())
    });
    Ok(ProxyHandle {
        shared,
        server,
        checks,
        discovery,
        local_addr,
    })
}

// Some accessors are for the in-process users (`sylvan demo`, tests).
#[allow(dead_code)]
impl ProxyHandle {
    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The state shared by every hub of this proxy.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// A snapshot of the proxy's counters (all hubs).
    pub fn stats(&self) -> Stats {
        self.shared.stats(Some(self.local_addr))
    }

    /// Client connections this hub is handling now.
    pub fn active(&self) -> usize {
        self.server.active()
    }

    /// Drains: stops accepting at once, lets open connections finish for
    /// up to `grace`, then closes the rest; stops the health checks and
    /// discovery.
    ///
    /// # Cancellation
    ///
    /// As [`sylvan::net::ServerHandle::stop`]: if the caller is killed, the
    /// grace period ends there.
    pub fn stop(&self, grace: Duration) -> StopReport {
        if let Some(d) = &self.discovery {
            d.stop();
        }
        if let Some(c) = &self.checks {
            c.stop();
        }
        self.server.stop(grace)
    }
}

#[cfg(test)]
mod tests;
