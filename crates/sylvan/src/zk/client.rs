//! [`Client`]: a ZooKeeper session and its operations.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use super::conn::Pending;
use super::error::Error;
use super::proto::{Dec, Enc, op};
use super::session::{self, Config, Inner};
use super::types::{Acl, CreateMode, Stat, validate_path};
use super::watch::WatchEvent;
use crate::GreenThread;
use crate::resilience::SessionState;
use crate::sync::{Queue, WatchError, WatchReceiver};

/// Configures a [`Client`]; see [`Client::builder`].
pub struct ClientBuilder {
    hosts: String,
    session_timeout: Duration,
    connect_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    max_reply: usize,
    reconnect_pause: Duration,
    resolver: Option<session::Resolver>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("hosts", &self.hosts)
            .field("session_timeout", &self.session_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_reply", &self.max_reply)
            .field("reconnect_pause", &self.reconnect_pause)
            .field("custom_resolver", &self.resolver.is_some())
            .finish()
    }
}

impl ClientBuilder {
    /// The session timeout to ask for (default 10 s). The server clamps it
    /// to its `minSessionTimeout`..`maxSessionTimeout` (by default 2 to 20
    /// ticks); [`Client::session_timeout`] tells what was granted, and every
    /// derived timeout (read, ping, connect, client-side expiry) uses that.
    pub fn session_timeout(mut self, d: Duration) -> Self {
        self.session_timeout = d;
        self
    }

    /// How long [`connect`](Self::connect) waits for the first session
    /// before giving up with [`Error::Connect`] (default: 4/3 of the
    /// session timeout, the Java client's rule for a new session).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = Some(d);
        self
    }

    /// The longest an operation may take, waiting for a connection
    /// included (default: the negotiated session timeout). Past it the
    /// operation fails with [`Error::ConnectionLoss`].
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = Some(d);
        self
    }

    /// The largest reply frame accepted (default 4 MiB; the server's own
    /// limit, `jute.maxbuffer`, defaults to 1 MiB). A larger one drops the
    /// connection with a protocol error instead of allocating it.
    pub fn max_reply_size(mut self, bytes: usize) -> Self {
        self.max_reply = bytes;
        self
    }

    /// The longest random pause before each reconnect attempt (default
    /// 1 s, as the Java client), so clients that lose the same server
    /// don't all come back at once.
    pub fn reconnect_pause(mut self, d: Duration) -> Self {
        self.reconnect_pause = d;
        self
    }

    /// Resolves host names with `f` instead of the system resolver (e.g. a
    /// test stub). It is called again on every connection attempt, as the
    /// system resolver would be, so DNS changes are seen on reconnect.
    pub fn resolver(
        mut self,
        f: impl Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + 'static,
    ) -> Self {
        self.resolver = Some(Rc::new(f));
        self
    }

    /// Starts the session loop and waits for the first session.
    ///
    /// # Errors
    ///
    /// [`Error::BadArguments`] for an unparsable host list;
    /// [`Error::Connect`] when no session could be established within the
    /// connect timeout, with the last attempt's error (connection refused,
    /// not a ZooKeeper server, …).
    ///
    /// # Cancellation
    ///
    /// Killed or past its deadline while waiting: returns
    /// [`Error::Cancelled`] and the half-started client is shut down.
    #[track_caller]
    pub fn connect(self) -> Result<Client, Error> {
        let hosts = parse_hosts(&self.hosts)?;
        let timeout = self.session_timeout;
        let wait = self.connect_timeout.unwrap_or(timeout * 4 / 3);
        let inner = Rc::new(Inner::new(Config {
            hosts,
            session_timeout: timeout,
            request_timeout: self.request_timeout,
            max_reply: self.max_reply,
            max_request: MAX_REQUEST,
            reconnect_pause: self.reconnect_pause,
            resolver: self.resolver,
        }));
        let i = inner.clone();
        let worker = crate::Builder::new()
            .name("sylvan-zk-session")
            .stack_size(128 * 1024)
            .spawn(move || session::run(i))
            .map_err(Error::Connect)?;
        let client = Client {
            handle: Rc::new(Handle {
                inner: inner.clone(),
                worker,
            }),
        };
        match crate::timeout(wait, || inner.wait_first()) {
            Ok(Ok(())) => Ok(client),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                let why = inner.why_not_connected();
                Err(Error::Connect(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no session with {} within {wait:?}; {why}", self.hosts),
                )))
            }
        }
    }
}

/// What the server accepts by default (`jute.maxbuffer`, 1 MiB − 1); a
/// larger request would make it drop the connection.
const MAX_REQUEST: usize = 0xfffff;

fn parse_hosts(s: &str) -> Result<Vec<(String, u16)>, Error> {
    let bad =
        |why: String| Error::BadArguments(format!("invalid ZooKeeper host list {s:?}: {why}"));
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (host, port) = if let Some(rest) = part.strip_prefix('[') {
            let (h, tail) = rest
                .split_once(']')
                .ok_or_else(|| bad(format!("unclosed '[' in {part:?}")))?;
            match tail.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None if tail.is_empty() => (h, None),
                None => return Err(bad(format!("junk after ']' in {part:?}"))),
            }
        } else {
            match part.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (part, None),
            }
        };
        if host.is_empty() {
            return Err(bad(format!("empty host in {part:?}")));
        }
        let port = match port {
            None => 2181,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad(format!("invalid port in {part:?}")))?,
        };
        out.push((host.to_string(), port));
    }
    if out.is_empty() {
        return Err(bad("no hosts".into()));
    }
    Ok(out)
}

/// Kills the session loop when the last [`Client`] handle goes.
struct Handle {
    inner: Rc<Inner>,
    worker: GreenThread<()>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.inner.shutdown();
        self.worker.kill();
    }
}

/// A ZooKeeper client: one session, kept across connection losses and
/// server fail-overs, with pipelined requests and one-shot watches.
///
/// Cloning gives another handle to the same session; the session ends
/// when the last handle is dropped (the server then expires it after the
/// session timeout; [`close`](Self::close) ends it at once).
///
/// # Sessions
///
/// The state ([`state`](Self::state), [`states`](Self::states)) uses
/// [`SessionState`] of [`resilience`](crate::resilience) with ZooKeeper's
/// meaning:
///
/// - [`Connected`](SessionState::Connected): a new session (the first, or
///   one made after the previous was lost).
/// - [`Suspended`](SessionState::Suspended): the connection dropped;
///   the session may still be alive on the server. Requests in flight fail
///   with [`Error::ConnectionLoss`] (they may or may not have been
///   applied); new requests wait for a connection up to the request
///   timeout.
/// - [`Reconnected`](SessionState::Reconnected): the same session was
///   re-established, possibly on another server; ephemeral nodes and
///   watches survived (watches are re-registered with SetWatches).
/// - [`Lost`](SessionState::Lost): the server answered a reconnect with
///   "session expired", or nothing was heard from any server for 4/3 of
///   the session timeout (ZooKeeper 3.9.3's client-side rule). Ephemeral
///   nodes are gone (or will be, once the server notices); every watch
///   fires with [`EventKind::SessionLost`](super::EventKind::SessionLost).
///   The client then opens a new session (`Connected`) by itself, as
///   Curator does.
///
/// # Timing
///
/// As the Java client: connect timeout per server = session timeout /
/// number of servers; read timeout = 2/3 of the negotiated session
/// timeout; a ping after half the read timeout (at most 10 s) without
/// sending; the host list shuffled once, then tried in turn; a random
/// pause of up to 1 s before every reconnect; host names resolved again
/// on every attempt.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use sylvan::sync::Queue;
/// use sylvan::zk::{Client, CreateMode, EventKind};
///
/// let zk = Client::builder("127.0.0.1:2181")
///     .session_timeout(Duration::from_secs(10))
///     .connect()?;
/// zk.create("/app", b"v1", CreateMode::Persistent)?;
/// let watch = Queue::unbounded();
/// let (data, stat) = zk.get_data_watch("/app", &watch)?;
/// assert_eq!(data, b"v1");
/// zk.set_data("/app", b"v2", Some(stat.version))?;
/// assert_eq!(watch.get()?.kind, EventKind::NodeDataChanged);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Client {
    handle: Rc<Handle>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.handle.inner;
        f.debug_struct("Client")
            .field("hosts", &i.cfg.hosts)
            .field("state", &i.state())
            .field("session_id", &i.session_id().map(|s| format!("{s:#x}")))
            .field("server", &i.server())
            .finish()
    }
}

impl Client {
    /// Starts configuring a client of the ensemble `hosts`: a
    /// comma-separated list of `host:port` (port 2181 when left out;
    /// IPv6 as `[::1]:2181`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// // Nothing listens on port 1: a clear error, within the timeout.
    /// let err = sylvan::zk::Client::builder("127.0.0.1:1")
    ///     .connect_timeout(Duration::from_millis(300))
    ///     .connect()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("could not establish a session"), "{err}");
    /// ```
    pub fn builder(hosts: &str) -> ClientBuilder {
        ClientBuilder {
            hosts: hosts.to_string(),
            session_timeout: Duration::from_secs(10),
            connect_timeout: None,
            request_timeout: None,
            max_reply: 4 << 20,
            reconnect_pause: Duration::from_secs(1),
            resolver: None,
        }
    }

    /// Connects with the defaults: `Client::builder(hosts).connect()`.
    ///
    /// # Errors
    ///
    /// As [`ClientBuilder::connect`].
    ///
    /// # Cancellation
    ///
    /// As [`ClientBuilder::connect`].
    #[track_caller]
    pub fn connect(hosts: &str) -> Result<Client, Error> {
        Client::builder(hosts).connect()
    }

    fn inner(&self) -> &Inner {
        &self.handle.inner
    }

    /// The session state now (`None` only before the first session).
    pub fn state(&self) -> Option<SessionState> {
        self.inner().state()
    }

    /// Subscribes to the session state: the receiver reads it now
    /// ([`borrow`](WatchReceiver::borrow)) and waits for the next change
    /// ([`changed`](WatchReceiver::changed)).
    ///
    /// A [`Watch`](crate::sync::Watch) keeps only the latest state: a
    /// subscriber that does not run between two changes sees the later one
    /// only, but is woken for each. A dropped receiver costs nothing.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use sylvan::resilience::SessionState;
    /// use sylvan::zk::Client;
    ///
    /// let zk = Client::connect("127.0.0.1:2181")?;
    /// let mut states = zk.states();
    /// assert_eq!(*states.borrow(), Some(SessionState::Connected));
    /// while states.changed().is_ok() {
    ///     println!("session {:?}", *states.borrow());
    /// }
    /// # Ok::<(), sylvan::zk::Error>(())
    /// ```
    pub fn states(&self) -> WatchReceiver<Option<SessionState>> {
        self.inner().watch_states()
    }

    /// Waits until the session state is `state`.
    ///
    /// # Cancellation
    ///
    /// Killed or past its deadline: returns that `Cancelled`; nothing else
    /// changes. Bound it with [`timeout`](crate::timeout).
    pub fn wait_for(&self, state: SessionState) -> Result<(), crate::Cancelled> {
        let mut w = self.states();
        while *w.borrow_and_update() != Some(state) {
            match w.changed() {
                Ok(()) => {}
                Err(WatchError::Cancelled(c)) => return Err(c),
                // The sender lives in the client we borrow.
                Err(e) => unreachable!("a live client's state watch closed: {e}"),
            }
        }
        Ok(())
    }

    /// The session id (`None` between a lost session and the next).
    pub fn session_id(&self) -> Option<i64> {
        self.inner().session_id()
    }

    /// The session timeout the server granted (the one asked for until the
    /// first session).
    pub fn session_timeout(&self) -> Duration {
        self.inner().negotiated()
    }

    /// The server the session is connected to now, if any.
    pub fn server(&self) -> Option<SocketAddr> {
        self.inner().server()
    }

    /// The highest zxid seen in any reply.
    pub fn last_zxid(&self) -> i64 {
        self.inner().last_zxid()
    }

    /// Ends the session on the server (its ephemeral nodes go at once) and
    /// stops the client; every handle's later calls fail with
    /// [`Error::Closed`]. Closing twice is harmless.
    ///
    /// # Errors
    ///
    /// Only informative: the client is closed whatever happens; an error
    /// says the server may not have heard (the session then expires by
    /// itself).
    ///
    /// # Cancellation
    ///
    /// Killed or past its deadline while waiting for the server's answer:
    /// the client is closed all the same.
    pub fn close(&self) -> Result<(), Error> {
        let inner = self.inner();
        if inner.is_closed() {
            return Ok(());
        }
        let r = if inner.server().is_some() {
            inner.start_closing();
            let wait = self.request_timeout().min(Duration::from_secs(2));
            match crate::timeout(wait, || self.call(op::CLOSE_SESSION, "", |_| {}, None)) {
                Ok(r) => r.map(|_| ()),
                Err(_) => Err(Error::ConnectionLoss(format!(
                    "no answer to closeSession within {wait:?}"
                ))),
            }
        } else {
            Ok(())
        };
        inner.shutdown();
        self.handle.worker.kill();
        r
    }

    fn request_timeout(&self) -> Duration {
        self.inner()
            .cfg
            .request_timeout
            .unwrap_or_else(|| self.inner().negotiated())
    }

    /// Sends one request and waits for its reply's body.
    #[track_caller]
    fn call(
        &self,
        opcode: i32,
        path: &str,
        body: impl FnOnce(&mut Enc),
        watch: Option<&Queue<WatchEvent>>,
    ) -> Result<Vec<u8>, Error> {
        let inner = self.inner();
        let limit = self.request_timeout();
        let mut waiting_for = "a connection";
        let r = crate::timeout(limit, || -> Result<Vec<u8>, Error> {
            let conn = inner.wait_connected()?;
            let xid = inner.next_xid();
            let mut e = Enc::request(xid, opcode);
            body(&mut e);
            let frame = e.finish();
            if frame.len() - 4 > inner.cfg.max_request {
                return Err(Error::BadArguments(format!(
                    "request of {} bytes exceeds the server's limit of {} (jute.maxbuffer)",
                    frame.len() - 4,
                    inner.cfg.max_request
                )));
            }
            let reply = Queue::bounded(1);
            conn.submit(
                Pending {
                    xid,
                    op: opcode,
                    path: path.to_string(),
                    reply: reply.clone(),
                    watch: watch.cloned(),
                },
                frame,
            );
            waiting_for = "the reply";
            // The reply queue is never closed: only a cancellation fails.
            reply
                .get()
                .map_err(|e| e.cancelled().unwrap_or(crate::Cancelled::Killed))?
        });
        match r {
            Ok(r) => r,
            Err(_) => Err(Error::ConnectionLoss(format!(
                "no {waiting_for} within the request timeout ({limit:?})"
            ))),
        }
    }

    /// Creates a node with `data` and the open ACL
    /// ([`Acl::open_unsafe`]); returns its path (with the sequence number
    /// for sequential modes).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use sylvan::zk::{Client, CreateMode};
    ///
    /// let zk = Client::connect("127.0.0.1:2181")?;
    /// let p = zk.create("/jobs/job-", b"", CreateMode::PersistentSequential)?;
    /// assert!(p.starts_with("/jobs/job-00000"));
    /// # Ok::<(), sylvan::zk::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Code::NodeExists`](super::Code::NodeExists),
    /// [`Code::NoNode`](super::Code::NoNode) (no parent),
    /// [`Code::NoChildrenForEphemerals`](super::Code::NoChildrenForEphemerals);
    /// [`Error::ConnectionLoss`] if the connection dropped first (the node
    /// may exist: check before creating again).
    ///
    /// # Cancellation
    ///
    /// Killed or past its deadline: returns [`Error::Cancelled`]; a request
    /// already sent may still be applied.
    #[track_caller]
    pub fn create(&self, path: &str, data: &[u8], mode: CreateMode) -> Result<String, Error> {
        self.create_with_acl(path, data, mode, &Acl::open_unsafe())
    }

    /// [`create`](Self::create) with an explicit ACL.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create), plus
    /// [`Code::InvalidAcl`](super::Code::InvalidAcl).
    ///
    /// # Cancellation
    ///
    /// As [`create`](Self::create).
    #[track_caller]
    pub fn create_with_acl(
        &self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
        acl: &[Acl],
    ) -> Result<String, Error> {
        validate_path(path, mode.is_sequential()).map_err(Error::BadArguments)?;
        let body = self.call(
            op::CREATE,
            path,
            |e| {
                e.string(path).buffer(data).acls(acl).int(mode.flags());
            },
            None,
        )?;
        Dec::new(&body, "CreateResponse").string()
    }

    /// Creates `path` and any missing parents as empty persistent nodes;
    /// nodes that exist already are fine.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create), except `NodeExists`.
    ///
    /// # Cancellation
    ///
    /// As [`create`](Self::create); the parents made so far stay.
    #[track_caller]
    pub fn ensure_path(&self, path: &str) -> Result<(), Error> {
        validate_path(path, false).map_err(Error::BadArguments)?;
        if path == "/" {
            return Ok(());
        }
        let mut at = 0;
        while let Some(i) = path[at + 1..].find('/').map(|i| i + at + 1) {
            self.create_if_missing(&path[..i])?;
            at = i;
        }
        self.create_if_missing(path)
    }

    fn create_if_missing(&self, path: &str) -> Result<(), Error> {
        if self.exists(path)?.is_some() {
            return Ok(());
        }
        match self.create(path, b"", CreateMode::Persistent) {
            Err(e) if e.is_node_exists() => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// Deletes a node, if its version is `version` (`None`: any version).
    ///
    /// # Errors
    ///
    /// [`Code::NoNode`](super::Code::NoNode),
    /// [`Code::BadVersion`](super::Code::BadVersion),
    /// [`Code::NotEmpty`](super::Code::NotEmpty); a connection loss.
    ///
    /// # Cancellation
    ///
    /// As [`create`](Self::create).
    #[track_caller]
    pub fn delete(&self, path: &str, version: Option<i32>) -> Result<(), Error> {
        validate_path(path, false).map_err(Error::BadArguments)?;
        self.call(
            op::DELETE,
            path,
            |e| {
                e.string(path).int(version.unwrap_or(-1));
            },
            None,
        )
        .map(|_| ())
    }

    /// The node's [`Stat`], or `None` if it does not exist.
    ///
    /// # Errors
    ///
    /// A connection loss, a bad path.
    ///
    /// # Cancellation
    ///
    /// Killed or past its deadline: returns [`Error::Cancelled`].
    #[track_caller]
    pub fn exists(&self, path: &str) -> Result<Option<Stat>, Error> {
        self.exists_inner(path, None)
    }

    /// [`exists`](Self::exists), and sets a one-shot watch delivered on
    /// `events`: if the node exists, it fires when its data changes or it
    /// is deleted; if not, when it is created.
    ///
    /// # Errors
    ///
    /// As [`exists`](Self::exists); no watch is set on error.
    ///
    /// # Cancellation
    ///
    /// As [`exists`](Self::exists); if the request was sent, the watch may
    /// still be set.
    #[track_caller]
    pub fn exists_watch(
        &self,
        path: &str,
        events: &Queue<WatchEvent>,
    ) -> Result<Option<Stat>, Error> {
        self.exists_inner(path, Some(events))
    }

    fn exists_inner(
        &self,
        path: &str,
        w: Option<&Queue<WatchEvent>>,
    ) -> Result<Option<Stat>, Error> {
        validate_path(path, false).map_err(Error::BadArguments)?;
        let r = self.call(
            op::EXISTS,
            path,
            |e| {
                e.string(path).bool(w.is_some());
            },
            w,
        );
        match r {
            Ok(body) => Ok(Some(Dec::new(&body, "ExistsResponse").stat()?)),
            Err(e) if e.is_no_node() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The node's data and [`Stat`].
    ///
    /// # Errors
    ///
    /// [`Code::NoNode`](super::Code::NoNode); a connection loss.
    ///
    /// # Cancellation
    ///
    /// Killed or past its deadline: returns [`Error::Cancelled`].
    #[track_caller]
    pub fn get_data(&self, path: &str) -> Result<(Vec<u8>, Stat), Error> {
        self.get_data_inner(path, None)
    }

    /// [`get_data`](Self::get_data), and sets a one-shot watch delivered
    /// on `events` when the data changes or the node is deleted.
    ///
    /// # Errors
    ///
    /// As [`get_data`](Self::get_data); no watch is set on error.
    ///
    /// # Cancellation
    ///
    /// As [`exists_watch`](Self::exists_watch).
    #[track_caller]
    pub fn get_data_watch(
        &self,
        path: &str,
        events: &Queue<WatchEvent>,
    ) -> Result<(Vec<u8>, Stat), Error> {
        self.get_data_inner(path, Some(events))
    }

    fn get_data_inner(
        &self,
        path: &str,
        w: Option<&Queue<WatchEvent>>,
    ) -> Result<(Vec<u8>, Stat), Error> {
        validate_path(path, false).map_err(Error::BadArguments)?;
        let body = self.call(
            op::GET_DATA,
            path,
            |e| {
                e.string(path).bool(w.is_some());
            },
            w,
        )?;
        let mut d = Dec::new(&body, "GetDataResponse");
        Ok((d.buffer()?, d.stat()?))
    }

    /// Replaces the node's data, if its version is `version` (`None`: any
    /// version); returns the new [`Stat`].
    ///
    /// # Errors
    ///
    /// [`Code::NoNode`](super::Code::NoNode),
    /// [`Code::BadVersion`](super::Code::BadVersion); a connection loss.
    ///
    /// # Cancellation
    ///
    /// As [`create`](Self::create).
    #[track_caller]
    pub fn set_data(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat, Error> {
        validate_path(path, false).map_err(Error::BadArguments)?;
        let body = self.call(
            op::SET_DATA,
            path,
            |e| {
                e.string(path).buffer(data).int(version.unwrap_or(-1));
            },
            None,
        )?;
        Dec::new(&body, "SetDataResponse").stat()
    }

    /// The names (not paths) of the node's children, in no particular
    /// order.
    ///
    /// # Errors
    ///
    /// [`Code::NoNode`](super::Code::NoNode); a connection loss.
    ///
    /// # Cancellation
    ///
    /// Killed or past its deadline: returns [`Error::Cancelled`].
    #[track_caller]
    pub fn get_children(&self, path: &str) -> Result<Vec<String>, Error> {
        self.get_children_inner(path, None)
    }

    /// [`get_children`](Self::get_children), and sets a one-shot watch
    /// delivered on `events` when a child is added or removed, or the node
    /// is deleted.
    ///
    /// # Errors
    ///
    /// As [`get_children`](Self::get_children); no watch is set on error.
    ///
    /// # Cancellation
    ///
    /// As [`exists_watch`](Self::exists_watch).
    #[track_caller]
    pub fn get_children_watch(
        &self,
        path: &str,
        events: &Queue<WatchEvent>,
    ) -> Result<Vec<String>, Error> {
        self.get_children_inner(path, Some(events))
    }

    fn get_children_inner(
        &self,
        path: &str,
        w: Option<&Queue<WatchEvent>>,
    ) -> Result<Vec<String>, Error> {
        validate_path(path, false).map_err(Error::BadArguments)?;
        let body = self.call(
            op::GET_CHILDREN,
            path,
            |e| {
                e.string(path).bool(w.is_some());
            },
            w,
        )?;
        Dec::new(&body, "GetChildrenResponse").strings()
    }
}

#[cfg(test)]
mod tests {
    use super::parse_hosts;

    #[test]
    fn host_lists() {
        assert_eq!(
            parse_hosts("a:1, b ,[::1]:3,[fe80::1]").unwrap(),
            vec![
                ("a".into(), 1),
                ("b".into(), 2181),
                ("::1".into(), 3),
                ("fe80::1".into(), 2181)
            ]
        );
        for bad in ["", ",", "a:x", "a:0", ":1", "[::1", "[::1]x"] {
            assert!(parse_hosts(bad).is_err(), "{bad:?}");
        }
    }
}
