//! Address resolution that never blocks the hub.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

/// Default time a host-name lookup may take.
pub const DEFAULT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

mod sealed {
    use std::net::SocketAddr;

    /// What a [`ToSocketAddrs`](super::ToSocketAddrs) value turns into:
    /// addresses at once, or a name to look up on the thread pool.
    #[derive(Debug, Clone)]
    pub enum Target {
        Addrs(Vec<SocketAddr>),
        Lookup(String, u16),
    }

    pub trait Sealed {
        fn target(&self) -> std::io::Result<Target>;
    }
}

pub(crate) use sealed::Target;

/// Values that name socket addresses: like `std::net::ToSocketAddrs`, but
/// host names are resolved on the thread pool, never on the hub.
///
/// Implemented for `SocketAddr` and its V4/V6 forms, `(IpAddr, u16)`,
/// `(&str, u16)`, `(String, u16)`, `&str` and `String` (`"host:port"`,
/// `"[::1]:80"`), slices of `SocketAddr`, and references to all of these.
///
/// # Examples
///
/// ```
/// let addrs = sylvan::net::lookup_host(("localhost", 8080)).unwrap();
/// assert!(addrs.iter().all(|a| a.port() == 8080));
/// let addrs = sylvan::net::lookup_host("127.0.0.1:9").unwrap();
/// assert_eq!(addrs, vec!["127.0.0.1:9".parse().unwrap()]);
/// ```
pub trait ToSocketAddrs: sealed::Sealed {}

impl<T: ToSocketAddrs + ?Sized> sealed::Sealed for &T {
    fn target(&self) -> io::Result<Target> {
        (**self).target()
    }
}
impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}

macro_rules! literal {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {
            fn target(&self) -> io::Result<Target> {
                Ok(Target::Addrs(vec![SocketAddr::from(*self)]))
            }
        }
        impl ToSocketAddrs for $t {}
    )*};
}
literal!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl sealed::Sealed for [SocketAddr] {
    fn target(&self) -> io::Result<Target> {
        Ok(Target::Addrs(self.to_vec()))
    }
}
impl ToSocketAddrs for [SocketAddr] {}

impl sealed::Sealed for Vec<SocketAddr> {
    fn target(&self) -> io::Result<Target> {
        Ok(Target::Addrs(self.clone()))
    }
}
impl ToSocketAddrs for Vec<SocketAddr> {}

impl sealed::Sealed for (&str, u16) {
    fn target(&self) -> io::Result<Target> {
        host_port(self.0, self.1)
    }
}
impl ToSocketAddrs for (&str, u16) {}

impl sealed::Sealed for (String, u16) {
    fn target(&self) -> io::Result<Target> {
        host_port(&self.0, self.1)
    }
}
impl ToSocketAddrs for (String, u16) {}

impl sealed::Sealed for str {
    fn target(&self) -> io::Result<Target> {
        if let Ok(a) = self.parse::<SocketAddr>() {
            return Ok(Target::Addrs(vec![a]));
        }
        let (host, port) = self.rsplit_once(':').ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid socket address {self:?}: expected HOST:PORT"),
            )
        })?;
        let port: u16 = port.parse().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid port in socket address {self:?}"),
            )
        })?;
        host_port(host, port)
    }
}
impl ToSocketAddrs for str {}

impl sealed::Sealed for String {
    fn target(&self) -> io::Result<Target> {
        self.as_str().target()
    }
}
impl ToSocketAddrs for String {}

fn host_port(host: &str, port: u16) -> io::Result<Target> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(Target::Addrs(vec![SocketAddr::new(ip, port)]));
    }
    if host.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty host name",
        ));
    }
    Ok(Target::Lookup(host.to_string(), port))
}

pub(crate) fn target(addr: &(impl ToSocketAddrs + ?Sized)) -> io::Result<Target> {
    sealed::Sealed::target(addr)
}

/// Resolves `addr` to socket addresses, looking host names up with the
/// system resolver (`getaddrinfo`: `/etc/hosts`, then DNS) on the thread
/// pool, within [`DEFAULT_LOOKUP_TIMEOUT`] (10 s).
///
/// # Examples
///
/// ```
/// let addrs = sylvan::net::lookup_host(("localhost", 80)).unwrap();
/// assert!(!addrs.is_empty());
/// ```
///
/// # Errors
///
/// A clear error naming the host when it can't be resolved; `TimedOut`
/// after 10 s.
///
/// # Cancellation
///
/// If the green thread is killed or its deadline passes during the lookup,
/// returns that error at once. A lookup still waiting for a pool thread
/// then never starts; one already running finishes on its pool thread and
/// its result is dropped (see [`tpool::execute`](crate::tpool::execute)).
///
/// Called from inside a [`tpool`](crate::tpool) job, the lookup runs
/// inline on that pool thread, and the 10 s timeout is not enforced.
#[track_caller]
pub fn lookup_host(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    lookup_host_timeout(addr, DEFAULT_LOOKUP_TIMEOUT)
}

/// [`lookup_host`] with its own timeout.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let addrs = sylvan::net::lookup_host_timeout("localhost:1", Duration::from_secs(2)).unwrap();
/// assert!(addrs.iter().any(|a| a.ip().is_loopback()));
/// ```
///
/// # Cancellation
///
/// As [`lookup_host`].
#[track_caller]
pub fn lookup_host_timeout(
    addr: impl ToSocketAddrs,
    timeout: Duration,
) -> io::Result<Vec<SocketAddr>> {
    match target(&addr)? {
        Target::Addrs(a) => Ok(a),
        Target::Lookup(host, port) => resolve(host, port, timeout),
    }
}

#[track_caller]
pub(crate) fn resolve(host: String, port: u16, timeout: Duration) -> io::Result<Vec<SocketAddr>> {
    let name = host.clone();
    let r = crate::timeout(timeout, move || {
        crate::tpool::execute(move || {
            std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
                .map(|i| i.collect::<Vec<_>>())
        })
    });
    match r {
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("looking up {name:?} timed out after {timeout:?}"),
        )),
        Ok(Err(cancelled)) => Err(cancelled.into()),
        Ok(Ok(Err(e))) => Err(io::Error::new(
            e.kind(),
            format!("cannot resolve {name:?}: {e}"),
        )),
        Ok(Ok(Ok(addrs))) if addrs.is_empty() => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{name:?} resolved to no addresses"),
        )),
        Ok(Ok(Ok(addrs))) => Ok(addrs),
    }
}

/// Resolves any [`ToSocketAddrs`] (within the default lookup timeout).
#[track_caller]
pub(crate) fn resolve_all(addr: &(impl ToSocketAddrs + ?Sized)) -> io::Result<Vec<SocketAddr>> {
    match target(addr)? {
        Target::Addrs(a) if a.is_empty() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no addresses to use",
        )),
        Target::Addrs(a) => Ok(a),
        Target::Lookup(host, port) => resolve(host, port, DEFAULT_LOOKUP_TIMEOUT),
    }
}
