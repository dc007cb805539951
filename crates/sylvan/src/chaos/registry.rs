//! [`Registry`]: a set of named chaos proxies, driven by name — the model
//! behind Toxiproxy's HTTP API ([`api`](super::api), feature `chaos-api`),
//! usable from code too.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::error::Error;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use super::shared::check_upstream;
use super::toxic::check_toxicity;
use super::{ChaosError, ChaosProxy, Direction, ProxyBuilder, Toxic, ToxicInfo};
use crate::Cancelled;
use crate::sync::{Semaphore, SemaphorePermit};

/// The listen address of a proxy created without one: loopback, a port
/// the system picks. (Toxiproxy binds every interface there; a test tool
/// should not.)
pub const DEFAULT_LISTEN: &str = "127.0.0.1:0";

/// How a proxy is set up: Toxiproxy's proxy fields.
///
/// # Examples
///
/// ```
/// use sylvan::chaos::ProxyConfig;
///
/// let c = ProxyConfig::new("redis", "127.0.0.1:0", "127.0.0.1:6379").enabled(false);
/// assert_eq!((c.name.as_str(), c.enabled), ("redis", false));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyConfig {
    /// The proxy's name, unique in its registry.
    pub name: String,
    /// Where it listens (`HOST:PORT`; port 0 picks one; empty means
    /// [`DEFAULT_LISTEN`]).
    pub listen: String,
    /// The server it forwards to (`HOST:PORT`, resolved for each
    /// connection).
    pub upstream: String,
    /// Whether it is up (listening) once created.
    pub enabled: bool,
}

impl ProxyConfig {
    /// A proxy called `name`, listening on `listen`, forwarding to
    /// `upstream`, enabled.
    ///
    /// # Examples
    ///
    /// ```
    /// let c = sylvan::chaos::ProxyConfig::new("db", "", "127.0.0.1:5432");
    /// assert!(c.enabled);
    /// ```
    pub fn new(
        name: impl Into<String>,
        listen: impl Into<String>,
        upstream: impl Into<String>,
    ) -> ProxyConfig {
        ProxyConfig {
            name: name.into(),
            listen: listen.into(),
            upstream: upstream.into(),
            enabled: true,
        }
    }

    /// Whether the proxy starts up (default `true`).
    ///
    /// # Examples
    ///
    /// ```
    /// let c = sylvan::chaos::ProxyConfig::new("db", "", "127.0.0.1:5432").enabled(false);
    /// assert!(!c.enabled);
    /// ```
    pub fn enabled(mut self, on: bool) -> ProxyConfig {
        self.enabled = on;
        self
    }
}

/// A change to a proxy's fields, Toxiproxy's `POST /proxies/{name}`: what
/// is not set stays as it is.
///
/// # Examples
///
/// ```
/// let u = sylvan::chaos::ProxyUpdate::new().enabled(false);
/// assert_eq!(u.enabled, Some(false));
/// assert_eq!(u.listen, None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyUpdate {
    /// A new listen address.
    pub listen: Option<String>,
    /// A new upstream server.
    pub upstream: Option<String>,
    /// Up or down.
    pub enabled: Option<bool>,
}

impl ProxyUpdate {
    /// A change that changes nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan::chaos::ProxyUpdate::new(), Default::default());
    /// ```
    pub fn new() -> ProxyUpdate {
        ProxyUpdate::default()
    }

    /// Sets the listen address.
    ///
    /// # Examples
    ///
    /// ```
    /// let u = sylvan::chaos::ProxyUpdate::new().listen("127.0.0.1:0");
    /// assert_eq!(u.listen.as_deref(), Some("127.0.0.1:0"));
    /// ```
    pub fn listen(mut self, addr: impl Into<String>) -> ProxyUpdate {
        self.listen = Some(addr.into());
        self
    }

    /// Sets the upstream server.
    ///
    /// # Examples
    ///
    /// ```
    /// let u = sylvan::chaos::ProxyUpdate::new().upstream("127.0.0.1:6380");
    /// assert_eq!(u.upstream.as_deref(), Some("127.0.0.1:6380"));
    /// ```
    pub fn upstream(mut self, addr: impl Into<String>) -> ProxyUpdate {
        self.upstream = Some(addr.into());
        self
    }

    /// Takes the proxy down (`false`) or brings it up (`true`).
    ///
    /// # Examples
    ///
    /// ```
    /// let u = sylvan::chaos::ProxyUpdate::new().enabled(true);
    /// assert_eq!(u.enabled, Some(true));
    /// ```
    pub fn enabled(mut self, on: bool) -> ProxyUpdate {
        self.enabled = Some(on);
        self
    }
}

/// A proxy as a [`Registry`] reports it: Toxiproxy's proxy object.
///
/// # Examples
///
/// ```
/// use sylvan::chaos::{ProxyConfig, Registry};
///
/// let reg = Registry::new();
/// let s = reg.create(ProxyConfig::new("db", "127.0.0.1:0", "127.0.0.1:5432")).unwrap();
/// assert!(s.enabled && s.toxics.is_empty());
/// assert_ne!(s.listen, "127.0.0.1:0"); // the port it got
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProxyState {
    /// The proxy's name.
    pub name: String,
    /// Where it listens: the bound address once it has been up, the
    /// configured one before.
    pub listen: String,
    /// The server it forwards to.
    pub upstream: String,
    /// Whether it is up.
    pub enabled: bool,
    /// Its toxics, in the order they were added.
    pub toxics: Vec<ToxicInfo>,
}

/// Why a [`Registry`] call failed.
///
/// # Examples
///
/// ```
/// use sylvan::chaos::{Registry, RegistryError};
///
/// let err = Registry::new().remove("nope").unwrap_err();
/// assert!(matches!(err, RegistryError::NoSuchProxy(_)));
/// assert_eq!(err.to_string(), "no proxy named \"nope\"");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum RegistryError {
    /// No proxy has this name.
    NoSuchProxy(String),
    /// A proxy of this name exists already.
    ProxyExists(String),
    /// A required field was empty (`name`, `upstream`; in
    /// [`populate`](Registry::populate), `"name at proxy 2"`).
    MissingField(String),
    /// The same proxy name twice in one [`populate`](Registry::populate).
    DuplicateName(String),
    /// A listen address that is not `HOST:PORT`.
    InvalidListen(String),
    /// What the proxy rejected: a toxic, its name, an upstream address.
    Chaos(ChaosError),
    /// The listen address could not be bound (in use, not local, …).
    Listen {
        /// The address.
        addr: String,
        /// What binding it failed with.
        error: io::Error,
    },
    /// The caller was killed, or its deadline passed, while waiting for
    /// the registry or for a host name lookup.
    Cancelled(Cancelled),
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::NoSuchProxy(n) => write!(f, "no proxy named {n:?}"),
            RegistryError::ProxyExists(n) => write!(f, "a proxy named {n:?} already exists"),
            RegistryError::MissingField(what) => write!(f, "missing required field: {what}"),
            RegistryError::DuplicateName(n) => write!(f, "duplicate proxy name {n:?}"),
            RegistryError::InvalidListen(a) => {
                write!(f, "invalid listen address {a:?}: expected HOST:PORT")
            }
            RegistryError::Chaos(e) => e.fmt(f),
            RegistryError::Listen { addr, error } => write!(f, "cannot listen on {addr}: {error}"),
            RegistryError::Cancelled(c) => write!(f, "{}", io::Error::from(*c)),
        }
    }
}

impl Error for RegistryError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            RegistryError::Chaos(e) => Some(e),
            RegistryError::Listen { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<ChaosError> for RegistryError {
    fn from(e: ChaosError) -> RegistryError {
        RegistryError::Chaos(e)
    }
}

/// A set of named [`ChaosProxy`]s, created, changed and removed by name:
/// the state behind Toxiproxy's HTTP API, with its semantics.
///
/// - A proxy created disabled is not bound until it is enabled; its toxics
///   wait for it. Once up, its `listen` is the bound address (with the
///   port the system picked, for port 0), and stays so across disable and
///   enable.
/// - Changing a proxy's `listen` or `upstream` restarts it: open
///   connections are closed, toxics stay.
/// - [`populate`](Self::populate) creates or replaces a list of proxies,
///   leaving alone those whose `listen` and `upstream` are unchanged;
///   [`reset`](Self::reset) enables every proxy and removes every toxic.
///
/// A `Registry` is a handle: clones share the same proxies, which live on
/// the hub of the OS thread that created them (it is not `Send`). Calls
/// that change something run one at a time (a call that has to wait —
/// binding, a host-name lookup, stopping a proxy — holds the others back),
/// so concurrent green threads see each change whole. Dropping the last
/// handle stops every proxy.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use sylvan::chaos::{Direction, ProxyConfig, ProxyUpdate, Registry, Toxic};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let echo = sylvan::serve(sylvan::listen("127.0.0.1:0")?, |c, _| {
///     std::io::copy(&mut &c, &mut &c).map(|_| ())
/// });
/// let reg = Registry::new();
/// let upstream = echo.local_addr().unwrap().to_string();
/// let p = reg.create(ProxyConfig::new("echo", "127.0.0.1:0", upstream))?;
///
/// // A toxic by Toxiproxy's names, as the HTTP API adds it.
/// let cut = Toxic::from_attributes("limit_data", [("bytes", 2)])?;
/// reg.add_toxic("echo", "cut", cut, Direction::Downstream, 1.0)?;
/// let mut c = sylvan::connect(p.listen.as_str())?;
/// c.write_all(b"hello")?;
/// let mut got = Vec::new();
/// c.read_to_end(&mut got)?;
/// assert_eq!(got, b"he");
///
/// // Down and up again, then everything back to normal.
/// reg.update("echo", ProxyUpdate::new().enabled(false))?;
/// assert!(sylvan::connect(p.listen.as_str()).is_err());
/// reg.reset()?;
/// assert!(reg.get("echo").unwrap().enabled && reg.toxics("echo")?.is_empty());
/// # reg.clear();
/// # echo.stop(std::time::Duration::from_secs(1));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    inner: Rc<Inner>,
}

struct Inner {
    /// One change at a time (see the type's docs).
    lock: Semaphore,
    proxies: RefCell<BTreeMap<String, Entry>>,
}

impl Default for Inner {
    fn default() -> Inner {
        Inner {
            lock: Semaphore::new(1),
            proxies: RefCell::new(BTreeMap::new()),
        }
    }
}

/// One proxy of the registry.
struct Entry {
    /// As configured until the proxy is first bound, then the bound
    /// address.
    listen: String,
    upstream: String,
    /// The running proxy, once it has been up (it may be down now).
    live: Option<ChaosProxy>,
    /// The toxics while there is no running proxy.
    parked: Vec<ToxicInfo>,
}

impl Entry {
    fn enabled(&self) -> bool {
        self.live.as_ref().is_some_and(ChaosProxy::is_enabled)
    }

    fn upstream(&self) -> String {
        match &self.live {
            Some(p) => p.upstream(),
            None => self.upstream.clone(),
        }
    }

    fn toxics(&self) -> Vec<ToxicInfo> {
        match &self.live {
            Some(p) => p.toxics(),
            None => self.parked.clone(),
        }
    }

    fn state(&self, name: &str) -> ProxyState {
        ProxyState {
            name: name.to_owned(),
            listen: self.listen.clone(),
            upstream: self.upstream(),
            enabled: self.enabled(),
            toxics: self.toxics(),
        }
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Option<Vec<String>> = self
            .inner
            .proxies
            .try_borrow()
            .ok()
            .map(|p| p.keys().cloned().collect());
        f.debug_struct("Registry").field("proxies", &names).finish()
    }
}

impl Registry {
    /// An empty registry.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(sylvan::chaos::Registry::new().proxies().is_empty());
    /// ```
    pub fn new() -> Registry {
        Registry::default()
    }

    fn lock(&self) -> Result<SemaphorePermit, RegistryError> {
        self.inner.lock.acquire().map_err(RegistryError::Cancelled)
    }

    /// Reads (or changes, without blocking) the entry called `name`.
    fn with<R>(&self, name: &str, f: impl FnOnce(&mut Entry) -> R) -> Result<R, RegistryError> {
        let mut proxies = self.inner.proxies.borrow_mut();
        let e = proxies
            .get_mut(name)
            .ok_or_else(|| RegistryError::NoSuchProxy(name.to_owned()))?;
        Ok(f(e))
    }

    /// Every proxy, by name.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::chaos::{ProxyConfig, Registry};
    ///
    /// let reg = Registry::new();
    /// reg.create(ProxyConfig::new("b", "", "127.0.0.1:2").enabled(false)).unwrap();
    /// reg.create(ProxyConfig::new("a", "", "127.0.0.1:1").enabled(false)).unwrap();
    /// let names: Vec<_> = reg.proxies().into_iter().map(|p| p.name).collect();
    /// assert_eq!(names, ["a", "b"]);
    /// ```
    pub fn proxies(&self) -> Vec<ProxyState> {
        self.inner
            .proxies
            .borrow()
            .iter()
            .map(|(n, e)| e.state(n))
            .collect()
    }

    /// The proxy called `name`, if there is one.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::chaos::{ProxyConfig, Registry};
    ///
    /// let reg = Registry::new();
    /// reg.create(ProxyConfig::new("db", "127.0.0.1:0", "127.0.0.1:5432").enabled(false)).unwrap();
    /// let s = reg.get("db").unwrap();
    /// assert_eq!((s.listen.as_str(), s.enabled), ("127.0.0.1:0", false)); // not bound yet
    /// assert!(reg.get("web").is_none());
    /// ```
    pub fn get(&self, name: &str) -> Option<ProxyState> {
        self.inner.proxies.borrow().get(name).map(|e| e.state(name))
    }

    /// The running [`ChaosProxy`] behind `name`, to drive it directly;
    /// `None` if there is no such proxy or it has never been up. Changes
    /// made through it show in the registry. Don't
    /// [`stop`](ChaosProxy::stop) it: [`remove`](Self::remove) the proxy.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::chaos::{ProxyConfig, Registry};
    ///
    /// let reg = Registry::new();
    /// let s = reg.create(ProxyConfig::new("db", "127.0.0.1:0", "127.0.0.1:5432")).unwrap();
    /// let p = reg.proxy("db").unwrap();
    /// assert_eq!(p.local_addr().to_string(), s.listen);
    /// ```
    pub fn proxy(&self, name: &str) -> Option<ChaosProxy> {
        self.inner
            .proxies
            .borrow()
            .get(name)
            .and_then(|e| e.live.clone())
    }

    /// Creates a proxy, and starts it if `config.enabled`.
    ///
    /// # Errors
    ///
    /// [`MissingField`](RegistryError::MissingField) for an empty name or
    /// upstream; [`InvalidListen`](RegistryError::InvalidListen) and
    /// [`ChaosError::InvalidUpstream`] for addresses that are not
    /// `HOST:PORT`; [`ProxyExists`](RegistryError::ProxyExists);
    /// [`Listen`](RegistryError::Listen) if the address can't be bound.
    ///
    /// # Cancellation
    ///
    /// It waits for other changes in progress, and for the lookup of a
    /// host name in `listen`. Killed or past its deadline there: returns
    /// [`Cancelled`](RegistryError::Cancelled), and nothing was created.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::chaos::{ProxyConfig, Registry, RegistryError};
    ///
    /// let reg = Registry::new();
    /// let s = reg.create(ProxyConfig::new("db", "localhost:0", "127.0.0.1:5432")).unwrap();
    /// assert!(s.listen.starts_with("127.0.0.1:"));
    /// let again = reg.create(ProxyConfig::new("db", "", "127.0.0.1:5432"));
    /// assert!(matches!(again, Err(RegistryError::ProxyExists(_))));
    /// ```
    pub fn create(&self, config: ProxyConfig) -> Result<ProxyState, RegistryError> {
        let config = check_config(config, None)?;
        let _one = self.lock()?;
        if self.inner.proxies.borrow().contains_key(&config.name) {
            return Err(RegistryError::ProxyExists(config.name));
        }
        self.insert(config)
    }

    /// Starts (if enabled) and inserts a checked config; the lock is held
    /// and the name is free.
    fn insert(&self, c: ProxyConfig) -> Result<ProxyState, RegistryError> {
        let mut entry = Entry {
            listen: c.listen,
            upstream: c.upstream,
            live: None,
            parked: Vec::new(),
        };
        if c.enabled {
            let p = start(&c.name, &entry.listen, &entry.upstream, &[])?;
            entry.listen = p.local_addr().to_string();
            entry.live = Some(p);
        }
        let state = entry.state(&c.name);
        self.inner.proxies.borrow_mut().insert(c.name, entry);
        Ok(state)
    }

    /// Changes a proxy's fields. A new `listen` or `upstream` restarts
    /// the proxy (open connections are closed; toxics stay); `enabled`
    /// takes it down or brings it up.
    ///
    /// # Errors
    ///
    /// [`NoSuchProxy`](RegistryError::NoSuchProxy); bad addresses as for
    /// [`create`](Self::create); [`Listen`](RegistryError::Listen) if the
    /// proxy can't be bound, in which case it is left down with its new
    /// fields (as Toxiproxy does).
    ///
    /// # Cancellation
    ///
    /// It waits for other changes in progress, for a host-name lookup, and
    /// for the proxy's connections to close. Killed or past its deadline
    /// while waiting for the others: nothing was changed. The other waits
    /// are not cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::chaos::{ProxyConfig, ProxyUpdate, Registry};
    ///
    /// let reg = Registry::new();
    /// let s = reg.create(ProxyConfig::new("db", "127.0.0.1:0", "127.0.0.1:5432")).unwrap();
    /// let s2 = reg.update("db", ProxyUpdate::new().upstream("127.0.0.1:5433")).unwrap();
    /// assert_eq!((s2.listen, s2.upstream.as_str(), s2.enabled), (s.listen, "127.0.0.1:5433", true));
    /// let down = reg.update("db", ProxyUpdate::new().enabled(false)).unwrap();
    /// assert!(!down.enabled);
    /// ```
    pub fn update(&self, name: &str, update: ProxyUpdate) -> Result<ProxyState, RegistryError> {
        let _one = self.lock()?;
        let (listen, upstream, enabled) =
            self.with(name, |e| (e.listen.clone(), e.upstream(), e.enabled()))?;
        let new_listen = match update.listen {
            Some(l) if l.is_empty() => DEFAULT_LISTEN.to_owned(),
            Some(l) => l,
            None => listen.clone(),
        };
        let new_upstream = update.upstream.unwrap_or_else(|| upstream.clone());
        let want_enabled = update.enabled.unwrap_or(enabled);
        if want_enabled {
            check_upstream(&new_upstream)?;
            check_listen(&new_listen)?;
        }
        if new_listen != listen {
            // A new address: stop the old proxy; its toxics wait for the
            // new one.
            let old = self.with(name, |e| {
                e.listen = new_listen;
                e.upstream = new_upstream;
                let old = e.live.take();
                if let Some(p) = &old {
                    e.parked = p.toxics();
                }
                old
            })?;
            if let Some(p) = old {
                p.stop();
            }
        } else if new_upstream != upstream {
            let live = self.with(name, |e| {
                e.upstream = new_upstream.clone();
                e.live.clone()
            })?;
            if let Some(p) = live {
                p.set_upstream(&new_upstream)?;
                // Down (closing the open connections), and up below.
                let _ = p.set_enabled(false);
            }
        }
        if want_enabled {
            self.enable(name)?;
        } else if let Some(p) = self.with(name, |e| e.live.clone())? {
            // Only a stopped proxy refuses, and that one is down already.
            let _ = p.set_enabled(false);
        }
        self.with(name, |e| e.state(name))
    }

    /// Brings the proxy up (the lock is held).
    fn enable(&self, name: &str) -> Result<(), RegistryError> {
        let (live, listen, upstream, parked) = self.with(name, |e| {
            (
                e.live.clone(),
                e.listen.clone(),
                e.upstream.clone(),
                e.parked.clone(),
            )
        })?;
        match live {
            Some(p) => p.set_enabled(true).map_err(|e| listen_error(&listen, e)),
            None => {
                let p = start(name, &listen, &upstream, &parked)?;
                self.with(name, |e| {
                    e.listen = p.local_addr().to_string();
                    e.parked.clear();
                    e.live = Some(p);
                })
            }
        }
    }

    /// Removes the proxy: it stops listening and its connections are
    /// closed (FIN to both peers).
    ///
    /// # Errors
    ///
    /// [`NoSuchProxy`](RegistryError::NoSuchProxy).
    ///
    /// # Cancellation
    ///
    /// As [`update`](Self::update).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::chaos::{ProxyConfig, Registry};
    ///
    /// let reg = Registry::new();
    /// let s = reg.create(ProxyConfig::new("db", "127.0.0.1:0", "127.0.0.1:5432")).unwrap();
    /// reg.remove("db").unwrap();
    /// assert!(reg.get("db").is_none());
    /// assert!(sylvan::connect(s.listen.as_str()).is_err());
    /// ```
    pub fn remove(&self, name: &str) -> Result<(), RegistryError> {
        let _one = self.lock()?;
        let entry = self
            .inner
            .proxies
            .borrow_mut()
            .remove(name)
            .ok_or_else(|| RegistryError::NoSuchProxy(name.to_owned()))?;
        if let Some(p) = entry.live {
            p.stop();
        }
        Ok(())
    }

    /// Removes every proxy, as [`remove`](Self::remove) does.
    ///
    /// # Cancellation
    ///
    /// It waits for other changes in progress; killed or past its deadline
    /// there, it removes the proxies anyway. Stopping them is not
    /// cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::chaos::{ProxyConfig, Registry};
    ///
    /// let reg = Registry::new();
    /// reg.create(ProxyConfig::new("db", "127.0.0.1:0", "127.0.0.1:5432")).unwrap();
    /// reg.clear();
    /// assert!(reg.proxies().is_empty());
    /// ```
    pub fn clear(&self) {
        let _one = self.lock();
        let all = std::mem::take(&mut *self.inner.proxies.borrow_mut());
        for (_, e) in all {
            if let Some(p) = e.live {
                p.stop();
            }
        }
    }

    /// Creates or replaces each proxy of `configs`, in order, as
    /// Toxiproxy's `POST /populate`: a proxy of the same name whose
    /// `listen` (resolved) and `upstream` are unchanged is left as it is
    /// (toxics, connections, even `enabled`); one that differs is removed
    /// and created anew. Proxies not in the list are left alone. Returns
    /// the listed proxies.
    ///
    /// The whole list is checked before anything changes. A proxy that
    /// then fails to bind ends the call with the error: the proxies before
    /// it have been applied, and one it was to replace is gone.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) (with `MissingField` naming the
    /// proxy's position: `"upstream at proxy 2"`), and
    /// [`DuplicateName`](RegistryError::DuplicateName).
    ///
    /// # Cancellation
    ///
    /// As [`update`](Self::update).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::chaos::{ProxyConfig, Registry};
    ///
    /// let reg = Registry::new();
    /// let list = vec![
    ///     ProxyConfig::new("db", "127.0.0.1:0", "127.0.0.1:5432"),
    ///     ProxyConfig::new("cache", "127.0.0.1:0", "127.0.0.1:6379").enabled(false),
    /// ];
    /// let first = reg.populate(list).unwrap();
    /// // Again with the bound addresses: nothing changes.
    /// let same: Vec<_> = first
    ///     .iter()
    ///     .map(|s| ProxyConfig::new(s.name.clone(), s.listen.clone(), s.upstream.clone()))
    ///     .collect();
    /// assert_eq!(reg.populate(same).unwrap(), first);
    /// ```
    pub fn populate(&self, configs: Vec<ProxyConfig>) -> Result<Vec<ProxyState>, RegistryError> {
        let mut names = HashSet::new();
        let mut checked = Vec::with_capacity(configs.len());
        for (i, c) in configs.into_iter().enumerate() {
            let c = check_config(c, Some(i + 1))?;
            if !names.insert(c.name.clone()) {
                return Err(RegistryError::DuplicateName(c.name));
            }
            checked.push(c);
        }
        let _one = self.lock()?;
        let mut out = Vec::with_capacity(checked.len());
        for c in checked {
            let current = self
                .inner
                .proxies
                .borrow()
                .get(&c.name)
                .map(|e| (e.listen.clone(), e.upstream()));
            if let Some((listen, upstream)) = current {
                if upstream == c.upstream && same_listen(&listen, &c.listen) {
                    out.push(self.with(&c.name, |e| e.state(&c.name))?);
                    continue;
                }
                let old = self.inner.proxies.borrow_mut().remove(&c.name);
                if let Some(p) = old.and_then(|e| e.live) {
                    p.stop();
                }
            }
            out.push(self.insert(c)?);
        }
        Ok(out)
    }

    /// Brings every proxy up and removes every toxic: Toxiproxy's
    /// `POST /reset`.
    ///
    /// # Errors
    ///
    /// [`Listen`](RegistryError::Listen) for a proxy that can't be bound
    /// again; the proxies after it are left as they were.
    ///
    /// # Cancellation
    ///
    /// As [`update`](Self::update).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::chaos::{Direction, ProxyConfig, Registry, Toxic};
    ///
    /// let reg = Registry::new();
    /// reg.create(ProxyConfig::new("db", "127.0.0.1:0", "127.0.0.1:5432").enabled(false)).unwrap();
    /// reg.add_toxic("db", "", Toxic::HalfOpen, Direction::Upstream, 1.0).unwrap();
    /// reg.reset().unwrap();
    /// let s = reg.get("db").unwrap();
    /// assert!(s.enabled && s.toxics.is_empty());
    /// ```
    pub fn reset(&self) -> Result<(), RegistryError> {
        let _one = self.lock()?;
        let names: Vec<String> = self.inner.proxies.borrow().keys().cloned().collect();
        for name in names {
            let live = self.with(&name, |e| {
                e.parked.clear();
                e.live.clone()
            })?;
            if let Some(p) = &live {
                for t in p.toxics() {
                    let _ = p.remove_toxic(&t.name);
                }
            }
            self.enable(&name)?;
        }
        Ok(())
    }

    /// The toxics of proxy `proxy`, in the order they were added.
    ///
    /// # Errors
    ///
    /// [`NoSuchProxy`](RegistryError::NoSuchProxy).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::chaos::{Direction, ProxyConfig, Registry, Toxic};
    ///
    /// let reg = Registry::new();
    /// reg.create(ProxyConfig::new("db", "", "127.0.0.1:5432")).unwrap();
    /// reg.add_toxic("db", "", Toxic::HalfOpen, Direction::Upstream, 1.0).unwrap();
    /// assert_eq!(reg.toxics("db").unwrap()[0].name, "half_open_upstream");
    /// assert!(reg.toxics("web").is_err());
    /// ```
    pub fn toxics(&self, proxy: &str) -> Result<Vec<ToxicInfo>, RegistryError> {
        self.with(proxy, |e| e.toxics())
    }

    /// The toxic `name` of proxy `proxy`.
    ///
    /// # Errors
    ///
    /// [`NoSuchProxy`](RegistryError::NoSuchProxy), or
    /// [`ChaosError::NoSuchToxic`].
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::chaos::{ChaosError, Direction, ProxyConfig, Registry, RegistryError, Toxic};
    ///
    /// let reg = Registry::new();
    /// reg.create(ProxyConfig::new("db", "", "127.0.0.1:5432")).unwrap();
    /// reg.add_toxic("db", "mute", Toxic::HalfOpen, Direction::Upstream, 1.0).unwrap();
    /// assert_eq!(reg.toxic("db", "mute").unwrap().toxic, Toxic::HalfOpen);
    /// let err = reg.toxic("db", "lag").unwrap_err();
    /// assert!(matches!(err, RegistryError::Chaos(ChaosError::NoSuchToxic(_))));
    /// ```
    pub fn toxic(&self, proxy: &str, name: &str) -> Result<ToxicInfo, RegistryError> {
        self.with(proxy, |e| e.toxics().into_iter().find(|t| t.name == name))?
            .ok_or_else(|| ChaosError::NoSuchToxic(name.to_owned()).into())
    }

    /// Adds a toxic to proxy `proxy` (see [`ChaosProxy::add_toxic`]; an
    /// empty `name` becomes `<type>_<direction>`) and returns it. On a
    /// proxy that has never been up, it waits for the proxy to start.
    ///
    /// # Errors
    ///
    /// [`NoSuchProxy`](RegistryError::NoSuchProxy), or what
    /// [`ChaosProxy::add_toxic`] returns.
    ///
    /// # Cancellation
    ///
    /// It waits for other changes in progress; killed or past its deadline
    /// there, nothing was added.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::chaos::{Direction, ProxyConfig, Registry, Toxic};
    ///
    /// let reg = Registry::new();
    /// reg.create(ProxyConfig::new("db", "", "127.0.0.1:5432")).unwrap();
    /// let lag = Toxic::Latency { latency: Duration::from_millis(100), jitter: Duration::ZERO };
    /// let t = reg.add_toxic("db", "", lag, Direction::Downstream, 1.0).unwrap();
    /// assert_eq!(t.name, "latency_downstream");
    /// assert!(reg.add_toxic("db", "", Toxic::HalfOpen, Direction::Upstream, 2.0).is_err());
    /// ```
    pub fn add_toxic(
        &self,
        proxy: &str,
        name: &str,
        toxic: Toxic,
        direction: Direction,
        toxicity: f32,
    ) -> Result<ToxicInfo, RegistryError> {
        let _one = self.lock()?;
        let name = if name.is_empty() {
            format!("{}_{direction}", toxic.type_name())
        } else {
            name.to_owned()
        };
        self.with(proxy, |e| {
            if let Some(p) = &e.live {
                p.add_toxic(name.clone(), toxic, direction, toxicity)?;
                return p
                    .toxic(&name)
                    .ok_or_else(|| ChaosError::NoSuchToxic(name.clone()));
            }
            check_toxicity(toxicity)?;
            toxic.validate()?;
            if e.parked.iter().any(|t| t.name == name) {
                return Err(ChaosError::ToxicExists(name));
            }
            let info = ToxicInfo {
                name,
                toxic,
                direction,
                toxicity,
            };
            e.parked.push(info.clone());
            Ok(info)
        })?
        .map_err(RegistryError::Chaos)
    }

    /// Replaces toxic `name` of proxy `proxy` with `toxic` and `toxicity`
    /// (see [`ChaosProxy::update_toxic`]) and returns it.
    ///
    /// # Errors
    ///
    /// [`NoSuchProxy`](RegistryError::NoSuchProxy), or what
    /// [`ChaosProxy::update_toxic`] returns.
    ///
    /// # Cancellation
    ///
    /// As [`add_toxic`](Self::add_toxic).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::chaos::{Direction, ProxyConfig, Registry, Toxic};
    ///
    /// let reg = Registry::new();
    /// reg.create(ProxyConfig::new("db", "", "127.0.0.1:5432")).unwrap();
    /// reg.add_toxic("db", "cut", Toxic::LimitData { bytes: 10 }, Direction::Upstream, 1.0).unwrap();
    /// let t = reg.update_toxic("db", "cut", Toxic::LimitData { bytes: 20 }, 0.5).unwrap();
    /// assert_eq!((t.toxic, t.toxicity), (Toxic::LimitData { bytes: 20 }, 0.5));
    /// ```
    pub fn update_toxic(
        &self,
        proxy: &str,
        name: &str,
        toxic: Toxic,
        toxicity: f32,
    ) -> Result<ToxicInfo, RegistryError> {
        let _one = self.lock()?;
        self.with(proxy, |e| {
            if let Some(p) = &e.live {
                p.update_toxic(name, toxic, toxicity)?;
                return p
                    .toxic(name)
                    .ok_or_else(|| ChaosError::NoSuchToxic(name.to_owned()));
            }
            check_toxicity(toxicity)?;
            toxic.validate()?;
            let t = e
                .parked
                .iter_mut()
                .find(|t| t.name == name)
                .ok_or_else(|| ChaosError::NoSuchToxic(name.to_owned()))?;
            t.toxic = toxic;
            t.toxicity = toxicity;
            Ok(t.clone())
        })?
        .map_err(RegistryError::Chaos)
    }

    /// Removes toxic `name` from proxy `proxy` (see
    /// [`ChaosProxy::remove_toxic`]) and returns it.
    ///
    /// # Errors
    ///
    /// [`NoSuchProxy`](RegistryError::NoSuchProxy), or
    /// [`ChaosError::NoSuchToxic`].
    ///
    /// # Cancellation
    ///
    /// As [`add_toxic`](Self::add_toxic).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::chaos::{Direction, ProxyConfig, Registry, Toxic};
    ///
    /// let reg = Registry::new();
    /// reg.create(ProxyConfig::new("db", "", "127.0.0.1:5432")).unwrap();
    /// reg.add_toxic("db", "mute", Toxic::HalfOpen, Direction::Upstream, 1.0).unwrap();
    /// reg.remove_toxic("db", "mute").unwrap();
    /// assert!(reg.remove_toxic("db", "mute").is_err());
    /// ```
    pub fn remove_toxic(&self, proxy: &str, name: &str) -> Result<ToxicInfo, RegistryError> {
        let _one = self.lock()?;
        self.with(proxy, |e| {
            if let Some(p) = &e.live {
                return p.remove_toxic(name);
            }
            let i = e
                .parked
                .iter()
                .position(|t| t.name == name)
                .ok_or_else(|| ChaosError::NoSuchToxic(name.to_owned()))?;
            Ok(e.parked.remove(i))
        })?
        .map_err(RegistryError::Chaos)
    }
}

/// Starts a proxy with `toxics` on it.
fn start(
    name: &str,
    listen: &str,
    upstream: &str,
    toxics: &[ToxicInfo],
) -> Result<ChaosProxy, RegistryError> {
    check_upstream(upstream)?;
    check_listen(listen)?;
    let p = ProxyBuilder::new(name)
        .start(listen, upstream)
        .map_err(|e| listen_error(listen, e))?;
    for t in toxics {
        p.add_toxic(t.name.clone(), t.toxic.clone(), t.direction, t.toxicity)?;
    }
    Ok(p)
}

fn listen_error(addr: &str, error: io::Error) -> RegistryError {
    match Cancelled::from_io(&error) {
        Some(c) => RegistryError::Cancelled(c),
        None => RegistryError::Listen {
            addr: addr.to_owned(),
            error,
        },
    }
}

/// Checks a proxy's fields; `at` is its position in a populate list.
fn check_config(mut c: ProxyConfig, at: Option<usize>) -> Result<ProxyConfig, RegistryError> {
    let missing = |field: &str| {
        RegistryError::MissingField(match at {
            Some(i) => format!("{field} at proxy {i}"),
            None => field.to_owned(),
        })
    };
    if c.name.is_empty() {
        return Err(missing("name"));
    }
    if c.upstream.is_empty() {
        return Err(missing("upstream"));
    }
    if c.listen.is_empty() {
        c.listen = DEFAULT_LISTEN.to_owned();
    }
    // A disabled proxy may keep an address it could not bind (Toxiproxy
    // allows that too); it is checked when the proxy is enabled.
    if c.enabled {
        check_upstream(&c.upstream)?;
        check_listen(&c.listen)?;
    }
    Ok(c)
}

fn check_listen(addr: &str) -> Result<(), RegistryError> {
    check_upstream(addr).map_err(|_| RegistryError::InvalidListen(addr.to_owned()))
}

/// Whether a proxy bound at `current` already listens where `wanted`
/// says (resolved: `localhost:8080` is `127.0.0.1:8080`).
fn same_listen(current: &str, wanted: &str) -> bool {
    if current == wanted {
        return true;
    }
    let Ok(cur) = current.parse::<SocketAddr>() else {
        return false;
    };
    crate::net::lookup_host(wanted).is_ok_and(|addrs| addrs.contains(&cur))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toxics_wait_for_a_proxy_that_was_never_up() {
        let reg = Registry::new();
        reg.create(ProxyConfig::new("p", "127.0.0.1:0", "127.0.0.1:9").enabled(false))
            .unwrap();
        assert!(reg.proxy("p").is_none());
        reg.add_toxic("p", "a", Toxic::HalfOpen, Direction::Upstream, 0.5)
            .unwrap();
        reg.add_toxic(
            "p",
            "b",
            Toxic::LimitData { bytes: 3 },
            Direction::Downstream,
            1.0,
        )
        .unwrap();
        let dup = reg.add_toxic("p", "a", Toxic::HalfOpen, Direction::Upstream, 1.0);
        assert!(matches!(
            dup,
            Err(RegistryError::Chaos(ChaosError::ToxicExists(_)))
        ));
        reg.update_toxic("p", "b", Toxic::LimitData { bytes: 4 }, 1.0)
            .unwrap();
        let s = reg.update("p", ProxyUpdate::new().enabled(true)).unwrap();
        assert!(s.enabled);
        let live: Vec<_> = reg.proxy("p").unwrap().toxics();
        assert_eq!(live, s.toxics);
        assert_eq!(live.len(), 2);
        assert_eq!(live[1].toxic, Toxic::LimitData { bytes: 4 });
    }

    #[test]
    fn a_new_listen_address_keeps_the_toxics() {
        let reg = Registry::new();
        let s = reg
            .create(ProxyConfig::new("p", "127.0.0.1:0", "127.0.0.1:9"))
            .unwrap();
        reg.add_toxic("p", "a", Toxic::HalfOpen, Direction::Upstream, 1.0)
            .unwrap();
        let s2 = reg
            .update("p", ProxyUpdate::new().listen("127.0.0.1:0"))
            .unwrap();
        assert_ne!(s.listen, s2.listen);
        assert!(s2.enabled);
        assert_eq!(s2.toxics.len(), 1);
        assert!(sylvan_connect_fails(&s.listen));
    }

    fn sylvan_connect_fails(addr: &str) -> bool {
        crate::connect(addr).is_err()
    }

    #[test]
    fn same_listen_resolves() {
        assert!(same_listen("127.0.0.1:80", "127.0.0.1:80"));
        assert!(same_listen("127.0.0.1:80", "localhost:80"));
        assert!(!same_listen("127.0.0.1:80", "127.0.0.1:0"));
        assert!(!same_listen("not-bound", "127.0.0.1:80"));
    }
}
