//! [`Connector`]: TCP connect with one overall deadline, Happy Eyeballs and
//! socket options.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use super::addr::{self, Target, ToSocketAddrs};
use super::tcp::{ConnectOpts, TcpStream};
use crate::sync::Queue;

type Resolver = Rc<dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>>>;

/// Connects TCP streams with one overall deadline across every address a
/// name resolves to, Happy Eyeballs (RFC 8305), and the socket options a
/// long-lived client connection wants.
///
/// - The **connect timeout** bounds the whole call — resolution and every
///   attempt together — not each address (CPython's `create_connection`
///   doubles it on dual-stack hosts; this does not).
/// - Names are resolved on the thread pool, with their own timeout, again
///   on every `connect` (no caching: a reconnect sees DNS changes).
/// - **Happy Eyeballs**: addresses are interleaved by family, IPv6 first;
///   a new attempt starts every 250 ms (or at once when the previous one
///   fails) while earlier ones keep running; the first to connect wins and
///   the others are closed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let listener = sylvan::listen("127.0.0.1:0").unwrap();
/// let port = listener.local_addr().unwrap().port();
/// let stream = sylvan::net::Connector::new()
///     .connect_timeout(Duration::from_secs(5))
///     .nodelay(true)
///     .keepalive(Duration::from_secs(60), Duration::from_secs(10), 5)
///     .user_timeout(Duration::from_secs(30))
///     .connect(("localhost", port))
///     .unwrap();
/// assert!(stream.nodelay().unwrap());
/// ```
#[derive(Clone)]
pub struct Connector {
    connect_timeout: Option<Duration>,
    resolve_timeout: Duration,
    attempt_delay: Duration,
    local_ip: Option<IpAddr>,
    nodelay: bool,
    keepalive: Option<(Duration, Duration, u32)>,
    user_timeout: Option<Duration>,
    resolver: Option<Resolver>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("connect_timeout", &self.connect_timeout)
            .field("resolve_timeout", &self.resolve_timeout)
            .field("attempt_delay", &self.attempt_delay)
            .field("local_ip", &self.local_ip)
            .field("nodelay", &self.nodelay)
            .field("keepalive", &self.keepalive)
            .field("user_timeout", &self.user_timeout)
            .field("custom_resolver", &self.resolver.is_some())
            .finish()
    }
}

impl Default for Connector {
    fn default() -> Self {
        Connector::new()
    }
}

impl Connector {
    /// A connector with the defaults below.
    pub fn new() -> Connector {
        Connector {
            connect_timeout: None,
            resolve_timeout: addr::DEFAULT_LOOKUP_TIMEOUT,
            attempt_delay: Duration::from_millis(250),
            local_ip: None,
            nodelay: false,
            keepalive: None,
            user_timeout: None,
            resolver: None,
        }
    }

    /// The overall deadline of one `connect` call, resolution included
    /// (default: none beyond the kernel's own SYN retries and enclosing
    /// `timeout` scopes).
    pub fn connect_timeout(mut self, d: Duration) -> Connector {
        self.connect_timeout = Some(d);
        self
    }

    /// How long resolving a host name may take (default 10 s).
    pub fn resolve_timeout(mut self, d: Duration) -> Connector {
        self.resolve_timeout = d;
        self
    }

    /// Happy Eyeballs' delay before starting the next attempt (default
    /// 250 ms, RFC 8305's recommendation).
    pub fn attempt_delay(mut self, d: Duration) -> Connector {
        self.attempt_delay = d;
        self
    }

    /// Binds the local side to this IP (default: the kernel chooses).
    /// Addresses of the other family are skipped.
    pub fn local_ip(mut self, ip: IpAddr) -> Connector {
        self.local_ip = Some(ip);
        self
    }

    /// Sets `TCP_NODELAY` on the connection (default off, as std).
    pub fn nodelay(mut self, on: bool) -> Connector {
        self.nodelay = on;
        self
    }

    /// Turns on TCP keepalive: first probe after `idle`, then every
    /// `interval`, dropping the connection after `count` unanswered probes
    /// (default off). Whole seconds: see
    /// [`TcpStream::set_keepalive`](crate::net::TcpStream::set_keepalive),
    /// whose error a connect with times under a second returns.
    pub fn keepalive(mut self, idle: Duration, interval: Duration, count: u32) -> Connector {
        self.keepalive = Some((idle, interval, count));
        self
    }

    /// Sets `TCP_USER_TIMEOUT` (default: the system's).
    pub fn user_timeout(mut self, d: Duration) -> Connector {
        self.user_timeout = Some(d);
        self
    }

    /// Replaces the system resolver, e.g. with a test stub that returns a
    /// fixed list. Called on every `connect` (default: `getaddrinfo` on the
    /// thread pool).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = sylvan::listen("127.0.0.1:0").unwrap();
    /// let port = l.local_addr().unwrap().port();
    /// let c = sylvan::net::Connector::new()
    ///     .resolver(move |host, _| {
    ///         assert_eq!(host, "db.internal");
    ///         Ok(vec![([127, 0, 0, 1], port).into()])
    ///     });
    /// assert!(c.connect("db.internal:5432").is_ok());
    /// ```
    pub fn resolver(
        mut self,
        f: impl Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + 'static,
    ) -> Connector {
        self.resolver = Some(Rc::new(f));
        self
    }

    /// Resolves `addr` and connects, as described on the type.
    ///
    /// # Errors
    ///
    /// `TimedOut` when the connect timeout passes (the message names the
    /// target and the timeout); otherwise the last attempt's error, e.g.
    /// `ConnectionRefused`; resolution errors name the host.
    ///
    /// # Cancellation
    ///
    /// Killed or past an enclosing deadline: returns that error; every
    /// attempt in flight is killed and its socket closed.
    #[track_caller]
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let target = addr::target(&addr)?;
        let what = match &target {
            Target::Addrs(a) => a.first().map_or_else(String::new, |a| a.to_string()),
            Target::Lookup(h, p) => format!("{h}:{p}"),
        };
        let body = || -> io::Result<TcpStream> {
            let addrs = match target {
                Target::Addrs(a) => a,
                Target::Lookup(host, port) => match &self.resolver {
                    Some(r) => r(&host, port)?,
                    None => addr::resolve(host, port, self.resolve_timeout)?,
                },
            };
            let stream = self.race(interleave(addrs, self.local_ip))?;
            self.apply(&stream)?;
            Ok(stream)
        };
        match self.connect_timeout {
            None => body(),
            Some(t) => match crate::timeout(t, body) {
                Ok(r) => r,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connecting to {what} timed out after {t:?}"),
                )),
            },
        }
    }

    fn apply(&self, s: &TcpStream) -> io::Result<()> {
        if self.nodelay {
            s.set_nodelay(true)?;
        }
        if let Some((idle, interval, count)) = self.keepalive {
            s.set_keepalive(idle, interval, count)?;
        }
        if let Some(t) = self.user_timeout {
            s.set_user_timeout(Some(t))?;
        }
        Ok(())
    }

    /// Happy Eyeballs over `addrs` (already ordered).
    fn race(&self, addrs: Vec<SocketAddr>) -> io::Result<TcpStream> {
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                "no address of a usable family to connect to",
            ));
        }
        let deadline = crate::runtime::scope_deadline();
        let opts = ConnectOpts { local_addr: None };
        let results: Queue<io::Result<TcpStream>> = Queue::unbounded();
        let mut attempts = Vec::new();
        let mut next = 0;
        let mut pending = 0;
        let mut start_next = true;
        let outcome = loop {
            if start_next && next < addrs.len() {
                let (q, addr) = (results.clone(), addrs[next]);
                let mut opts = opts.clone();
                opts.local_addr = self.local_ip.map(|ip| SocketAddr::new(ip, 0));
                attempts.push(crate::spawn(move || {
                    let r = TcpStream::connect_addr(addr, deadline, &opts);
                    let _ = q.put(r);
                }));
                next += 1;
                pending += 1;
            }
            let r = if next < addrs.len() {
                match crate::timeout(self.attempt_delay, || results.get()) {
                    Ok(r) => r,
                    Err(_) => {
                        start_next = true;
                        continue;
                    }
                }
            } else {
                results.get()
            };
            match r {
                Err(cancelled) => break Err(io::Error::from(cancelled)),
                Ok(Ok(stream)) => break Ok(stream),
                Ok(Err(e)) => {
                    pending -= 1;
                    start_next = true;
                    if pending == 0 && next >= addrs.len() {
                        break Err(e);
                    }
                }
            }
        };
        for a in &attempts {
            a.kill();
        }
        outcome
    }
}

/// RFC 8305 ordering: alternate families, IPv6 first; keep only addresses
/// of `local`'s family when a local IP is set.
fn interleave(addrs: Vec<SocketAddr>, local: Option<IpAddr>) -> Vec<SocketAddr> {
    let (v6, v4): (Vec<_>, Vec<_>) = addrs
        .into_iter()
        .filter(|a| local.is_none_or(|l| l.is_ipv6() == a.is_ipv6()))
        .partition(|a| a.is_ipv6());
    let mut out = Vec::with_capacity(v6.len() + v4.len());
    let (mut a, mut b) = (v6.into_iter(), v4.into_iter());
    loop {
        match (a.next(), b.next()) {
            (None, None) => break,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::interleave;
    use std::net::SocketAddr;

    #[test]
    fn interleaves_families_ipv6_first() {
        let a: Vec<SocketAddr> = ["1.1.1.1:1", "2.2.2.2:1", "[::1]:1", "3.3.3.3:1", "[::2]:1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let got: Vec<String> = interleave(a.clone(), None)
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(
            got,
            ["[::1]:1", "1.1.1.1:1", "[::2]:1", "2.2.2.2:1", "3.3.3.3:1"]
        );
        let v4_only = interleave(a, Some("0.0.0.0".parse().unwrap()));
        assert!(v4_only.iter().all(|a| a.is_ipv4()));
    }
}
