//! Service discovery recipes: [`register`] a member, [`discover`] members.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use super::client::Client;
use super::error::Error;
use super::types::CreateMode;
use super::watch::{EventKind, WatchEvent};
use crate::GreenThread;
use crate::resilience::SessionState;
use crate::sync::{Queue, Receiver, Sender, Watch, WatchError, WatchReceiver};

/// The name prefix of member nodes; a random tag follows, then the
/// server's sequence number.
const MEMBER_PREFIX: &str = "member-";

fn usable(s: Option<SessionState>) -> bool {
    matches!(s, Some(SessionState::Connected | SessionState::Reconnected))
}

/// The session states, as [`Client::states`] hands them out.
type States = WatchReceiver<Option<SessionState>>;

/// Waits until the session is connected (`states` changes whenever it
/// might be).
fn wait_usable(client: &Client, states: &mut States) -> Result<(), WatchError> {
    while !usable(client.state()) {
        states.changed()?;
    }
    Ok(())
}

/// A pause before retrying after an error while connected.
fn retry_pause(client: &Client) -> Duration {
    (client.session_timeout() / 4).clamp(Duration::from_millis(20), Duration::from_secs(1))
}

struct RegState {
    client: Client,
    dir: String,
    tag: String,
    data: Vec<u8>,
    node: RefCell<Option<String>>,
}

impl RegState {
    /// Makes sure this session owns a member node; returns its path.
    ///
    /// The name carries a random tag (Curator's "protection"), so a create
    /// whose reply was lost with the connection is found again instead of
    /// leaving a duplicate member behind.
    fn ensure(&self) -> Result<String, Error> {
        let Some(session) = self.client.session_id() else {
            return Err(Error::ConnectionLoss("no session".into()));
        };
        let known = self.node.borrow().clone();
        if let Some(node) = known {
            if let Some(stat) = self.client.exists(&node)? {
                if stat.ephemeral_owner == session {
                    return Ok(node);
                }
            }
        }
        self.client.ensure_path(&self.dir)?;
        for child in self.client.get_children(&self.dir)? {
            if !child.starts_with(&self.tag) {
                continue;
            }
            let path = format!("{}/{child}", self.dir);
            if let Some(stat) = self.client.exists(&path)? {
                if stat.ephemeral_owner == session {
                    *self.node.borrow_mut() = Some(path.clone());
                    return Ok(path);
                }
            }
        }
        let prefix = format!("{}/{}", self.dir, self.tag);
        let path = self
            .client
            .create(&prefix, &self.data, CreateMode::EphemeralSequential)?;
        tracing::info!("sylvan zk: registered {path}");
        *self.node.borrow_mut() = Some(path.clone());
        Ok(path)
    }
}

/// Registers this process as a member under `dir`: an ephemeral sequential
/// node holding `addr`, kept for as long as the returned [`Registration`]
/// lives — and re-created in the new session if the session is lost.
///
/// `dir` and its parents are created (persistent, empty) when missing.
/// Members are named `member-<random tag>-<sequence>`; [`discover`] lists
/// them.
///
/// # Examples
///
/// ```no_run
/// use sylvan::zk::{Client, discover, register};
///
/// let zk = Client::connect("127.0.0.1:2181")?;
/// let reg = register(&zk, "/services/echo", "10.0.0.5:7000")?;
/// let members = discover(&zk, "/services/echo")?;
/// assert!(members.current().iter().any(|m| m.addr == "10.0.0.5:7000"));
/// reg.deregister()?;
/// # Ok::<(), sylvan::zk::Error>(())
/// ```
///
/// # Errors
///
/// As [`Client::create`] for the first registration; after that, failures
/// are retried in the background whenever the session is (re)connected.
///
/// # Cancellation
///
/// Killed or past its deadline during the first registration: returns
/// [`Error::Cancelled`]; a member node may have been created, and goes
/// with the session.
#[track_caller]
pub fn register(client: &Client, dir: &str, addr: &str) -> Result<Registration, Error> {
    let dir = dir.trim_end_matches('/');
    super::types::validate_path(dir, false).map_err(Error::BadArguments)?;
    let st = Rc::new(RegState {
        client: client.clone(),
        dir: dir.to_string(),
        tag: format!("{MEMBER_PREFIX}{:016x}-", fastrand::u64(..)),
        data: addr.as_bytes().to_vec(),
        node: RefCell::new(None),
    });
    // Subscribe first, so no state change between the create and the
    // keeper's start is missed.
    let states = client.states();
    st.ensure()?;
    let s = st.clone();
    let keeper = crate::Builder::new()
        .name("sylvan-zk-register")
        .stack_size(128 * 1024)
        .spawn(move || keep(s, states))
        .map_err(Error::Connect)?;
    Ok(Registration { st, keeper })
}

fn keep(st: Rc<RegState>, mut states: States) {
    loop {
        if wait_usable(&st.client, &mut states).is_err() {
            return;
        }
        match st.ensure() {
            Ok(_) => {
                // Until the next change of state.
                if states.changed().is_err() {
                    return;
                }
            }
            Err(Error::Cancelled(_)) | Err(Error::Closed) => return,
            Err(e) => {
                tracing::warn!("sylvan zk: keeping registration under {}: {e}", st.dir);
                if crate::sleep(retry_pause(&st.client)).is_err() {
                    return;
                }
            }
        }
    }
}

/// A live registration made by [`register`].
///
/// Dropping it stops re-creating the node, but leaves the node until the
/// session ends; [`deregister`](Self::deregister) removes it at once.
pub struct Registration {
    st: Rc<RegState>,
    keeper: GreenThread<()>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("dir", &self.st.dir)
            .field("node", &self.st.node.borrow())
            .finish()
    }
}

impl Registration {
    /// The member node's path now (it changes when the node is re-created
    /// in a new session).
    pub fn path(&self) -> Option<String> {
        self.st.node.borrow().clone()
    }

    /// Stops keeping the registration and deletes the member node.
    ///
    /// # Errors
    ///
    /// As [`Client::delete`]; a node that is gone already is fine.
    ///
    /// # Cancellation
    ///
    /// Killed or past its deadline: returns [`Error::Cancelled`]; the node
    /// may remain until the session ends.
    pub fn deregister(self) -> Result<(), Error> {
        self.keeper.kill();
        let node = self.st.node.borrow_mut().take();
        match node {
            Some(n) => match self.st.client.delete(&n, None) {
                Err(e) if e.is_no_node() => Ok(()),
                r => r,
            },
            None => Ok(()),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.keeper.kill();
    }
}

/// One registered member, as [`discover`] sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Member {
    /// The node's name under the directory (sequence numbers make the
    /// order of names the order of joining).
    pub name: String,
    /// The data the member registered: its address.
    pub addr: String,
}

struct DiscState {
    client: Client,
    dir: String,
    /// The member list now, for [`Discovery::current`] and
    /// [`Discovery::watch`].
    members: Watch<Vec<Member>>,
    senders: RefCell<Vec<Sender<Vec<Member>>>>,
}

impl DiscState {
    /// Reads the member list and sets a watch for its next change.
    fn read(&self, events: &Queue<WatchEvent>) -> Result<Vec<Member>, Error> {
        let children = match self.client.get_children_watch(&self.dir, events) {
            Ok(c) => c,
            Err(e) if e.is_no_node() => {
                // No directory (yet): watch for it to appear.
                if self.client.exists_watch(&self.dir, events)?.is_some() {
                    return self.read(events);
                }
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let mut members = Vec::new();
        for name in children {
            if !name.starts_with(MEMBER_PREFIX) {
                continue;
            }
            match self.client.get_data(&format!("{}/{name}", self.dir)) {
                Ok((data, _)) => members.push(Member {
                    name,
                    addr: String::from_utf8_lossy(&data).into_owned(),
                }),
                Err(e) if e.is_no_node() => {} // left meanwhile
                Err(e) => return Err(e),
            }
        }
        members.sort_by(|a, b| seq(&a.name).cmp(&seq(&b.name)).then(a.name.cmp(&b.name)));
        Ok(members)
    }

    fn publish(&self, members: Vec<Member>) {
        if *self.members.borrow() == members {
            return;
        }
        tracing::debug!("sylvan zk: {} members under {}", members.len(), self.dir);
        self.senders
            .borrow_mut()
            .retain(|s| s.try_send(members.clone()).is_ok());
        self.members.send(members);
    }
}

/// The sequence number a sequential node's name ends with.
fn seq(name: &str) -> u64 {
    name.rsplit('-')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX)
}

/// Follows the members registered under `dir` (by [`register`]): the list
/// is read now, then kept current by a children watch, re-read after every
/// change and after a lost session. While the session is suspended the
/// last known list stays (Curator's choice): members are not dropped just
/// because this client lost its connection.
///
/// # Examples
///
/// ```no_run
/// use sylvan::zk::{Client, discover};
///
/// let zk = Client::connect("127.0.0.1:2181")?;
/// let members = discover(&zk, "/services/echo")?;
/// let mut changes = members.watch();
/// // The current list first, then each change.
/// loop {
///     let now = changes.borrow_and_update();
///     println!("upstreams: {:?}", now.iter().map(|m| &m.addr).collect::<Vec<_>>());
///     if changes.changed().is_err() {
///         break;
///     }
/// }
/// # Ok::<(), sylvan::zk::Error>(())
/// ```
///
/// # Errors
///
/// As [`Client::get_children`] for the first read (a missing `dir` is not
/// an error: the list is empty until it appears).
///
/// # Cancellation
///
/// Killed or past its deadline during the first read: returns
/// [`Error::Cancelled`].
#[track_caller]
pub fn discover(client: &Client, dir: &str) -> Result<Discovery, Error> {
    let dir = dir.trim_end_matches('/');
    super::types::validate_path(dir, false).map_err(Error::BadArguments)?;
    let st = Rc::new(DiscState {
        client: client.clone(),
        dir: dir.to_string(),
        members: Watch::new(Vec::new()),
        senders: RefCell::new(Vec::new()),
    });
    let states = client.states();
    let events = Queue::unbounded();
    let first = st.read(&events)?;
    st.members.send(first);
    let s = st.clone();
    let worker = crate::Builder::new()
        .name("sylvan-zk-discover")
        .stack_size(128 * 1024)
        .spawn(move || follow(s, events, states))
        .map_err(Error::Connect)?;
    Ok(Discovery { st, worker })
}

fn follow(st: Rc<DiscState>, events: Queue<WatchEvent>, mut states: States) {
    loop {
        // Wait for the watch to fire; several queued events need one read.
        let Ok(ev) = events.get() else { return };
        if ev.kind == EventKind::SessionLost {
            tracing::debug!(
                "sylvan zk: discovery of {}: session lost, re-reading",
                st.dir
            );
        }
        while events.try_get().is_some() {}
        loop {
            if wait_usable(&st.client, &mut states).is_err() {
                return;
            }
            // Changes up to now are covered by the read below.
            states.borrow_and_update();
            match st.read(&events) {
                Ok(m) => {
                    st.publish(m);
                    break;
                }
                Err(Error::Cancelled(_)) | Err(Error::Closed) => return,
                Err(e) => {
                    tracing::warn!("sylvan zk: discovery of {}: {e}", st.dir);
                    if crate::sleep(retry_pause(&st.client)).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// The live member list made by [`discover`]; dropping it stops following.
pub struct Discovery {
    st: Rc<DiscState>,
    worker: GreenThread<()>,
}

impl fmt::Debug for Discovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Discovery")
            .field("dir", &self.st.dir)
            .field("members", &self.st.members.borrow().len())
            .finish()
    }
}

impl Discovery {
    /// The members now, in the order they joined.
    pub fn current(&self) -> Vec<Member> {
        self.st.members.borrow().clone()
    }

    /// Subscribes to the member list, for green threads of this hub: the
    /// receiver reads the list now ([`borrow`](WatchReceiver::borrow)) and
    /// waits for the next change ([`changed`](WatchReceiver::changed)).
    ///
    /// A [`Watch`] keeps only the latest list: a subscriber that falls
    /// behind skips to it, never to a stale one. A dropped receiver costs
    /// nothing. For other OS threads, use [`subscribe`](Self::subscribe).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use sylvan::zk::{Client, discover};
    ///
    /// let zk = Client::connect("127.0.0.1:2181")?;
    /// let members = discover(&zk, "/services/echo")?;
    /// let mut changes = members.watch();
    /// changes.changed().unwrap(); // the next change
    /// println!("{} members", changes.borrow().len());
    /// # Ok::<(), sylvan::zk::Error>(())
    /// ```
    pub fn watch(&self) -> WatchReceiver<Vec<Member>> {
        self.st.members.subscribe()
    }

    /// The current list, then every changed list, on a channel that may
    /// cross OS threads (e.g. to every hub of a
    /// [`Runtime`](crate::Runtime)). A dropped receiver is forgotten.
    pub fn subscribe(&self) -> Receiver<Vec<Member>> {
        let (tx, rx) = crate::sync::channel();
        let _ = tx.try_send(self.current());
        self.st.senders.borrow_mut().push(tx);
        rx
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.worker.kill();
    }
}
