//! [`ChaosProxy`], its builder and its counters: the control calls.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use super::ChaosError;
use super::link::End;
use super::rng::Rng;
use super::shared::{Shared, Slot, check_upstream};
use super::toxic::{Direction, Toxic, ToxicInfo, check_toxicity};
use crate::net::ToSocketAddrs;

/// Default time the proxy gives a connection to the upstream server.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Configures a [`ChaosProxy`] before starting it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::chaos::ChaosProxy;
///
/// let proxy = ChaosProxy::builder("redis")
///     .connect_timeout(Duration::from_secs(1))
///     .seed(7)
///     .start("127.0.0.1:0", "127.0.0.1:6379")
///     .unwrap();
/// assert_eq!(proxy.name(), "redis");
/// ```
#[derive(Debug, Clone)]
pub struct ProxyBuilder {
    name: String,
    connect_timeout: Duration,
    seed: Option<u64>,
}

impl ProxyBuilder {
    /// A builder for a proxy called `name` (Toxiproxy's proxy name; used in
    /// logs and green-thread names).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = sylvan::chaos::ProxyBuilder::new("db");
    /// let p = b.start("127.0.0.1:0", "127.0.0.1:5432").unwrap();
    /// assert_eq!(p.name(), "db");
    /// ```
    pub fn new(name: impl Into<String>) -> ProxyBuilder {
        ProxyBuilder {
            name: name.into(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            seed: None,
        }
    }

    /// How long each connection to the upstream server may take, name
    /// resolution included (default 5 s). When it fails, the client's
    /// connection is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let b = sylvan::chaos::ProxyBuilder::new("p").connect_timeout(Duration::from_millis(200));
    /// assert!(b.start("127.0.0.1:0", "127.0.0.1:9").is_ok());
    /// ```
    pub fn connect_timeout(mut self, d: Duration) -> ProxyBuilder {
        self.connect_timeout = d;
        self
    }

    /// Seeds the proxy's random numbers (toxicity rolls, jitter, slice
    /// sizes), so that a test sees the same draws each run, given the same
    /// order of connections and changes (default: a random seed).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = sylvan::chaos::ProxyBuilder::new("p").seed(42).start("127.0.0.1:0", "127.0.0.1:9");
    /// assert!(p.is_ok());
    /// ```
    pub fn seed(mut self, seed: u64) -> ProxyBuilder {
        self.seed = Some(seed);
        self
    }

    /// Binds `listen` and starts proxying each accepted connection to
    /// `upstream` (`HOST:PORT`, resolved for each connection). The proxy
    /// runs in green threads of this OS thread's hub.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `upstream` is not `HOST:PORT`; what binding
    /// `listen` fails with (e.g. `AddrInUse`).
    ///
    /// # Cancellation
    ///
    /// Only a host name in `listen` makes it wait (it is resolved on the
    /// thread pool). Killed or past its deadline there: returns that error
    /// and nothing was started.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = sylvan::chaos::ProxyBuilder::new("p").start("127.0.0.1:0", "localhost:80").unwrap();
    /// assert!(p.local_addr().ip().is_loopback());
    /// let err = sylvan::chaos::ProxyBuilder::new("p").start("127.0.0.1:0", "no-port").unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn start(
        &self,
        listen: impl ToSocketAddrs,
        upstream: impl ToString,
    ) -> io::Result<ChaosProxy> {
        let upstream = upstream.to_string();
        check_upstream(&upstream)?;
        let shared = Rc::new(Shared {
            name: self.name.clone(),
            listen_addr: Cell::new(SocketAddr::from(([0, 0, 0, 0], 0))),
            upstream: RefCell::new(upstream),
            connect_timeout: self.connect_timeout,
            enabled: Cell::new(true),
            stopped: Cell::new(false),
            acceptor: RefCell::new(None),
            listener: RefCell::new(None),
            toxics: RefCell::new(Vec::new()),
            generation: Cell::new(0),
            links: RefCell::new(BTreeMap::new()),
            next_id: Cell::new(1),
            rng: RefCell::new(self.seed.map_or_else(Rng::from_entropy, Rng::new)),
            accepted: Cell::new(0),
            upstream_failures: Cell::new(0),
            bytes: [Cell::new(0), Cell::new(0)],
        });
        shared.start_acceptor(listen)?;
        Ok(ChaosProxy {
            owner: Rc::new(Owner(shared)),
        })
    }
}

/// Counters of a [`ChaosProxy`]; see [`ChaosProxy::stats`].
///
/// # Examples
///
/// ```
/// let proxy = sylvan::chaos::ChaosProxy::start("127.0.0.1:0", "127.0.0.1:9").unwrap();
/// let s = proxy.stats();
/// assert_eq!((s.accepted, s.connections, s.upstream_failures), (0, 0, 0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ProxyStats {
    /// Client connections accepted so far.
    pub accepted: u64,
    /// Connections open now (as [`ChaosProxy::connections`]).
    pub connections: usize,
    /// Client connections closed because the upstream server could not be
    /// reached.
    pub upstream_failures: u64,
    /// Bytes written to upstream servers.
    pub bytes_upstream: u64,
    /// Bytes written to clients.
    pub bytes_downstream: u64,
}

/// A fault-injecting TCP proxy for tests, after Shopify's Toxiproxy.
///
/// It accepts connections on its listening address and forwards each to
/// the upstream server, passing the bytes of each direction through that
/// direction's [`Toxic`]s. Toxics can be added, updated and removed at any
/// time, by name, and apply to open connections too; the proxy can be
/// taken [down](Self::set_enabled) and brought back. See the
/// [module docs](super) for the model.
///
/// A `ChaosProxy` is a handle: clones control the same proxy, which stops
/// when the last handle is dropped (or at [`stop`](Self::stop)). It lives
/// on the hub of the OS thread that started it (it is not `Send`).
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use sylvan::chaos::{ChaosProxy, Direction, Toxic};
///
/// # fn main() -> std::io::Result<()> {
/// let server = sylvan::serve(sylvan::listen("127.0.0.1:0")?, |c, _| {
///     std::io::copy(&mut &c, &mut &c).map(|_| ()) // echo
/// });
/// let proxy = ChaosProxy::start("127.0.0.1:0", server.local_addr().unwrap())?;
/// proxy.add_toxic(
///     "lag",
///     Toxic::Latency { latency: Duration::from_millis(50), jitter: Duration::ZERO },
///     Direction::Downstream,
///     1.0,
/// )?;
///
/// let mut c = sylvan::connect(proxy.local_addr())?;
/// let t0 = sylvan::time::now();
/// c.write_all(b"ping")?;
/// let mut back = [0; 4];
/// c.read_exact(&mut back)?;
/// assert_eq!(&back, b"ping");
/// assert!(sylvan::time::now() - t0 >= Duration::from_millis(50));
///
/// drop(c);
/// proxy.stop();
/// server.stop(Duration::from_secs(1));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ChaosProxy {
    owner: Rc<Owner>,
}

/// Stops the proxy when the last handle goes.
struct Owner(Rc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.shutdown(false);
    }
}

impl fmt::Debug for ChaosProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.shared();
        f.debug_struct("ChaosProxy")
            .field("name", &s.name)
            .field("listen", &s.listen_addr.get())
            .field("upstream", &*s.upstream.borrow())
            .field("enabled", &s.enabled.get())
            .field("connections", &self.connections())
            .field("toxics", &s.toxics.borrow().len())
            .finish()
    }
}

impl ChaosProxy {
    /// Starts a proxy named `"chaos"` with the default settings: listens on
    /// `listen`, forwards to `upstream` (`HOST:PORT`); see
    /// [`ProxyBuilder::start`].
    ///
    /// # Errors
    ///
    /// As [`ProxyBuilder::start`].
    ///
    /// # Cancellation
    ///
    /// As [`ProxyBuilder::start`].
    ///
    /// # Examples
    ///
    /// ```
    /// let upstream = sylvan::listen("127.0.0.1:0").unwrap();
    /// let proxy = sylvan::chaos::ChaosProxy::start("127.0.0.1:0", upstream.local_addr().unwrap()).unwrap();
    /// let _client = sylvan::connect(proxy.local_addr()).unwrap();
    /// let (_server_side, _) = upstream.accept().unwrap(); // the proxy connected
    /// ```
    pub fn start(listen: impl ToSocketAddrs, upstream: impl ToString) -> io::Result<ChaosProxy> {
        ProxyBuilder::new("chaos").start(listen, upstream)
    }

    /// A [`ProxyBuilder`] for a proxy called `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = sylvan::chaos::ChaosProxy::builder("api").start("127.0.0.1:0", "127.0.0.1:9").unwrap();
    /// assert_eq!(p.name(), "api");
    /// ```
    pub fn builder(name: impl Into<String>) -> ProxyBuilder {
        ProxyBuilder::new(name)
    }

    fn shared(&self) -> &Rc<Shared> {
        &self.owner.0
    }

    /// The proxy's name.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = sylvan::chaos::ChaosProxy::start("127.0.0.1:0", "127.0.0.1:9").unwrap();
    /// assert_eq!(p.name(), "chaos");
    /// ```
    pub fn name(&self) -> &str {
        &self.shared().name
    }

    /// The address clients connect to (with the port the system chose, if
    /// it was 0). It stays the same across [`set_enabled`](Self::set_enabled).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = sylvan::chaos::ChaosProxy::start("127.0.0.1:0", "127.0.0.1:9").unwrap();
    /// assert_ne!(p.local_addr().port(), 0);
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.shared().listen_addr.get()
    }

    /// The upstream server's address, as given.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = sylvan::chaos::ChaosProxy::start("127.0.0.1:0", "localhost:6379").unwrap();
    /// assert_eq!(p.upstream(), "localhost:6379");
    /// ```
    pub fn upstream(&self) -> String {
        self.shared().upstream()
    }

    /// Points new connections at another upstream server (`HOST:PORT`).
    /// Open connections keep their server; take the proxy down and up
    /// again ([`set_enabled`](Self::set_enabled)) to drop them too.
    ///
    /// # Errors
    ///
    /// [`ChaosError::InvalidUpstream`] if `addr` is not `HOST:PORT`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = sylvan::chaos::ChaosProxy::start("127.0.0.1:0", "127.0.0.1:9").unwrap();
    /// p.set_upstream("127.0.0.1:10").unwrap();
    /// assert_eq!(p.upstream(), "127.0.0.1:10");
    /// assert!(p.set_upstream("127.0.0.1").is_err());
    /// ```
    pub fn set_upstream(&self, addr: impl ToString) -> Result<(), ChaosError> {
        let addr = addr.to_string();
        check_upstream(&addr)?;
        *self.shared().upstream.borrow_mut() = addr;
        Ok(())
    }

    /// Adds a toxic at the end of `direction`'s chain. It applies to each
    /// connection, open ones included, with probability `toxicity`, drawn
    /// now for open connections and at accept for later ones. An empty
    /// `name` becomes `<type>_<direction>`, as in Toxiproxy.
    ///
    /// # Errors
    ///
    /// [`ChaosError::InvalidToxicity`] unless `0 <= toxicity <= 1`; what
    /// [`Toxic::validate`] returns; [`ChaosError::ToxicExists`] if the name
    /// is taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::chaos::{ChaosProxy, Direction, Toxic};
    ///
    /// let p = ChaosProxy::start("127.0.0.1:0", "127.0.0.1:9").unwrap();
    /// p.add_toxic("", Toxic::LimitData { bytes: 100 }, Direction::Upstream, 1.0).unwrap();
    /// assert_eq!(p.toxics()[0].name, "limit_data_upstream");
    /// assert!(p.add_toxic("x", Toxic::Bandwidth { rate_kb_per_s: 0 }, Direction::Upstream, 1.0).is_err());
    /// assert!(p.add_toxic("x", Toxic::HalfOpen, Direction::Upstream, -1.0).is_err());
    /// ```
    pub fn add_toxic(
        &self,
        name: impl Into<String>,
        toxic: Toxic,
        direction: Direction,
        toxicity: f32,
    ) -> Result<(), ChaosError> {
        check_toxicity(toxicity)?;
        toxic.validate()?;
        let s = self.shared();
        let mut name = name.into();
        if name.is_empty() {
            name = format!("{}_{direction}", toxic.type_name());
        }
        if s.toxics.borrow().iter().any(|t| t.info.name == name) {
            return Err(ChaosError::ToxicExists(name));
        }
        let id = s.next_id();
        {
            let mut rng = s.rng.borrow_mut();
            for link in s.links.borrow().values() {
                link.rolls.borrow_mut().insert(id, rng.chance(toxicity));
            }
        }
        s.toxics.borrow_mut().push(Slot {
            id,
            info: ToxicInfo {
                name,
                toxic,
                direction,
                toxicity,
            },
            since: crate::time::now(),
        });
        s.changed();
        Ok(())
    }

    /// Replaces the toxic called `name` with `toxic` and `toxicity`,
    /// keeping its place in the chain, its direction and, where the type
    /// stays the same, its state on each connection (bytes counted by
    /// `limit_data`, say). Timers restart (`timeout` counts from now). A
    /// changed toxicity is drawn again for every open connection. Where a
    /// `timeout` or `half_open` toxic stops applying to a connection, that
    /// connection is closed, as by [`remove_toxic`](Self::remove_toxic).
    ///
    /// # Errors
    ///
    /// As [`add_toxic`](Self::add_toxic), and [`ChaosError::NoSuchToxic`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::chaos::{ChaosProxy, Direction, Toxic};
    ///
    /// let p = ChaosProxy::start("127.0.0.1:0", "127.0.0.1:9").unwrap();
    /// p.add_toxic("lag", Toxic::Latency { latency: Duration::ZERO, jitter: Duration::ZERO }, Direction::Upstream, 1.0).unwrap();
    /// // Driven by name, as an HTTP API would:
    /// let mut t = p.toxic("lag").unwrap().toxic;
    /// t.set_attribute("latency", 300).unwrap();
    /// p.update_toxic("lag", t, 0.5).unwrap();
    /// let info = p.toxic("lag").unwrap();
    /// assert_eq!((info.toxic.attribute("latency"), info.toxicity), (Some(300), 0.5));
    /// ```
    pub fn update_toxic(&self, name: &str, toxic: Toxic, toxicity: f32) -> Result<(), ChaosError> {
        check_toxicity(toxicity)?;
        toxic.validate()?;
        let s = self.shared();
        let (id, reroll) = {
            let toxics = s.toxics.borrow();
            let slot = toxics
                .iter()
                .find(|t| t.info.name == name)
                .ok_or_else(|| ChaosError::NoSuchToxic(name.to_owned()))?;
            (slot.id, slot.info.toxicity != toxicity)
        };
        let silenced_before = s.silenced_by(id);
        {
            let mut toxics = s.toxics.borrow_mut();
            if let Some(slot) = toxics.iter_mut().find(|t| t.id == id) {
                slot.info.toxic = toxic;
                slot.info.toxicity = toxicity;
                slot.since = crate::time::now();
            }
        }
        if reroll {
            let mut rng = s.rng.borrow_mut();
            for link in s.links.borrow().values() {
                link.rolls.borrow_mut().insert(id, rng.chance(toxicity));
            }
        }
        let silenced_after = s.silenced_by(id);
        s.changed();
        for link in silenced_before {
            if !silenced_after.iter().any(|l| Rc::ptr_eq(l, &link)) {
                link.close(End::Close);
            }
        }
        Ok(())
    }

    /// Removes the toxic called `name` and returns it. Open connections go
    /// on without it, except that those on which a `timeout` or
    /// `half_open` toxic was active are closed: bytes were dropped, so
    /// their streams can't carry on correctly (Toxiproxy closes them too).
    ///
    /// # Errors
    ///
    /// [`ChaosError::NoSuchToxic`].
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::chaos::{ChaosProxy, Direction, Toxic};
    ///
    /// let p = ChaosProxy::start("127.0.0.1:0", "127.0.0.1:9").unwrap();
    /// p.add_toxic("cut", Toxic::LimitData { bytes: 1 }, Direction::Downstream, 1.0).unwrap();
    /// let removed = p.remove_toxic("cut").unwrap();
    /// assert_eq!(removed.toxic, Toxic::LimitData { bytes: 1 });
    /// assert!(p.toxics().is_empty());
    /// assert!(p.remove_toxic("cut").is_err());
    /// ```
    pub fn remove_toxic(&self, name: &str) -> Result<ToxicInfo, ChaosError> {
        let s = self.shared();
        let id = s
            .toxics
            .borrow()
            .iter()
            .find(|t| t.info.name == name)
            .map(|t| t.id)
            .ok_or_else(|| ChaosError::NoSuchToxic(name.to_owned()))?;
        let to_close = s.silenced_by(id);
        let slot = {
            let mut toxics = s.toxics.borrow_mut();
            let i = toxics.iter().position(|t| t.id == id).unwrap_or(0);
            toxics.remove(i)
        };
        for link in s.links.borrow().values() {
            link.rolls.borrow_mut().remove(&id);
        }
        s.changed();
        for link in to_close {
            link.close(End::Close);
        }
        Ok(slot.info)
    }

    /// The toxic called `name`, if there is one.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::chaos::{ChaosProxy, Direction, Toxic};
    ///
    /// let p = ChaosProxy::start("127.0.0.1:0", "127.0.0.1:9").unwrap();
    /// assert!(p.toxic("x").is_none());
    /// p.add_toxic("x", Toxic::HalfOpen, Direction::Upstream, 1.0).unwrap();
    /// assert_eq!(p.toxic("x").unwrap().toxic, Toxic::HalfOpen);
    /// ```
    pub fn toxic(&self, name: &str) -> Option<ToxicInfo> {
        self.shared()
            .toxics
            .borrow()
            .iter()
            .find(|t| t.info.name == name)
            .map(|t| t.info.clone())
    }

    /// Every toxic, in the order they were added.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::chaos::{ChaosProxy, Direction, Toxic};
    ///
    /// let p = ChaosProxy::start("127.0.0.1:0", "127.0.0.1:9").unwrap();
    /// p.add_toxic("a", Toxic::HalfOpen, Direction::Upstream, 1.0).unwrap();
    /// p.add_toxic("b", Toxic::LimitData { bytes: 9 }, Direction::Downstream, 1.0).unwrap();
    /// let names: Vec<_> = p.toxics().into_iter().map(|t| t.name).collect();
    /// assert_eq!(names, ["a", "b"]);
    /// ```
    pub fn toxics(&self) -> Vec<ToxicInfo> {
        self.shared()
            .toxics
            .borrow()
            .iter()
            .map(|t| t.info.clone())
            .collect()
    }

    /// Takes the proxy down (`false`) or brings it back (`true`):
    /// Toxiproxy's `enabled`. Down, it closes every open connection and
    /// stops listening, so new connections are refused
    /// (`ConnectionRefused`); back up, it listens again on the same address.
    /// Toxics stay as they are.
    ///
    /// # Errors
    ///
    /// Bringing it back fails if the address can no longer be bound (some
    /// other socket took the port meanwhile), or if the proxy was
    /// [stopped](Self::stop).
    ///
    /// # Cancellation
    ///
    /// Going down waits for the accept loop to close its socket, which
    /// takes one hub turn; that wait is not a blocking call and is not
    /// cancelled by a kill or a deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// let upstream = sylvan::listen("127.0.0.1:0").unwrap();
    /// let p = sylvan::chaos::ChaosProxy::start("127.0.0.1:0", upstream.local_addr().unwrap()).unwrap();
    /// p.set_enabled(false).unwrap();
    /// let err = sylvan::connect(p.local_addr()).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    /// p.set_enabled(true).unwrap();
    /// assert!(sylvan::connect(p.local_addr()).is_ok());
    /// ```
    pub fn set_enabled(&self, enabled: bool) -> io::Result<()> {
        let s = self.shared();
        if s.stopped.get() {
            return Err(io::Error::other(format!(
                "chaos proxy {:?} was stopped",
                s.name
            )));
        }
        if enabled == s.enabled.get() {
            return Ok(());
        }
        if enabled {
            s.start_acceptor(s.listen_addr.get())?;
            s.enabled.set(true);
        } else {
            s.enabled.set(false);
            s.stop_acceptor(true);
            for link in s.live_links() {
                link.close(End::Close);
            }
        }
        Ok(())
    }

    /// Whether the proxy is up (see [`set_enabled`](Self::set_enabled)).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = sylvan::chaos::ChaosProxy::start("127.0.0.1:0", "127.0.0.1:9").unwrap();
    /// assert!(p.is_enabled());
    /// ```
    pub fn is_enabled(&self) -> bool {
        self.shared().enabled.get()
    }

    /// Removes every toxic (with [`remove_toxic`](Self::remove_toxic)'s
    /// closing rule) and brings the proxy up: Toxiproxy's reset.
    ///
    /// # Errors
    ///
    /// As [`set_enabled`](Self::set_enabled)`(true)`.
    ///
    /// # Cancellation
    ///
    /// Never blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::chaos::{ChaosProxy, Direction, Toxic};
    ///
    /// let p = ChaosProxy::start("127.0.0.1:0", "127.0.0.1:9").unwrap();
    /// p.add_toxic("x", Toxic::HalfOpen, Direction::Upstream, 1.0).unwrap();
    /// p.set_enabled(false).unwrap();
    /// p.reset().unwrap();
    /// assert!(p.is_enabled() && p.toxics().is_empty());
    /// ```
    pub fn reset(&self) -> io::Result<()> {
        for t in self.toxics() {
            let _ = self.remove_toxic(&t.name);
        }
        self.set_enabled(true)
    }

    /// Connections open now: accepted and not yet closed (including those
    /// still connecting upstream).
    ///
    /// # Examples
    ///
    /// ```
    /// let upstream = sylvan::listen("127.0.0.1:0").unwrap();
    /// let p = sylvan::chaos::ChaosProxy::start("127.0.0.1:0", upstream.local_addr().unwrap()).unwrap();
    /// assert_eq!(p.connections(), 0);
    /// let _c = sylvan::connect(p.local_addr()).unwrap();
    /// let _s = upstream.accept().unwrap(); // by now the proxy has accepted too
    /// assert_eq!(p.connections(), 1);
    /// ```
    pub fn connections(&self) -> usize {
        self.shared()
            .links
            .borrow()
            .values()
            .filter(|l| !l.is_closed())
            .count()
    }

    /// The proxy's counters.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    ///
    /// // Nothing listens on the upstream port:
    /// let port = sylvan::listen("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    /// let p = sylvan::chaos::ChaosProxy::start("127.0.0.1:0", format!("127.0.0.1:{port}")).unwrap();
    /// let mut c = sylvan::connect(p.local_addr()).unwrap();
    /// assert_eq!(c.read(&mut [0; 1]).unwrap(), 0); // closed at once
    /// assert_eq!(p.stats().upstream_failures, 1);
    /// ```
    pub fn stats(&self) -> ProxyStats {
        let s = self.shared();
        ProxyStats {
            accepted: s.accepted.get(),
            connections: self.connections(),
            upstream_failures: s.upstream_failures.get(),
            bytes_upstream: s.bytes[0].get(),
            bytes_downstream: s.bytes[1].get(),
        }
    }

    /// Stops the proxy: closes the listening socket and every connection
    /// (FIN to both peers), and returns once all the proxy's green threads
    /// have ended. Other handles then control a stopped proxy. Dropping the
    /// last handle does the same without waiting.
    ///
    /// # Cancellation
    ///
    /// The green threads it waits for were killed and end within a hub
    /// turn or two; the wait is not a blocking call and is not cancelled by
    /// a kill or a deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// let upstream = sylvan::listen("127.0.0.1:0").unwrap();
    /// let before = sylvan::debug::stats().green_threads;
    /// let p = sylvan::chaos::ChaosProxy::start("127.0.0.1:0", upstream.local_addr().unwrap()).unwrap();
    /// let addr = p.local_addr();
    /// let _c = sylvan::connect(addr).unwrap();
    /// let _s = upstream.accept().unwrap();
    /// p.stop();
    /// assert_eq!(sylvan::debug::stats().green_threads, before);
    /// assert!(sylvan::connect(addr).is_err());
    /// ```
    pub fn stop(self) {
        self.shared().shutdown(true);
    }
}
