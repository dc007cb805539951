//! The engine under [`ChaosProxy`](super::ChaosProxy): the state its
//! handle, accept loop and connections share, and the accept loop.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use socket2::SockRef;

use super::ChaosError;
use super::link::{self, End, Link};
use super::rng::Rng;
use super::toxic::{Direction, ToxicInfo};
use crate::Cancelled;
use crate::green::GreenThread;
use crate::net::{ListenOptions, TcpListener, TcpStream, ToSocketAddrs};

/// A toxic installed on the proxy.
pub(super) struct Slot {
    /// Unique for the proxy's lifetime; connections keep their toxicity
    /// rolls and toxic state by it.
    pub(super) id: u64,
    pub(super) info: ToxicInfo,
    /// When it was added or last updated.
    pub(super) since: Instant,
}

/// State shared by the handle, the accept loop and the connections.
pub(super) struct Shared {
    pub(super) name: String,
    pub(super) listen_addr: Cell<SocketAddr>,
    pub(super) upstream: RefCell<String>,
    pub(super) connect_timeout: Duration,
    pub(super) enabled: Cell<bool>,
    pub(super) stopped: Cell<bool>,
    pub(super) acceptor: RefCell<Option<GreenThread<()>>>,
    /// The listening socket, shared with the accept loop.
    pub(super) listener: RefCell<Option<Rc<TcpListener>>>,
    /// In the order they were added: the order of each direction's chain.
    pub(super) toxics: RefCell<Vec<Slot>>,
    /// Bumped at every change of `toxics`, so pumps know to look again.
    pub(super) generation: Cell<u64>,
    pub(super) links: RefCell<BTreeMap<u64, Rc<Link>>>,
    pub(super) next_id: Cell<u64>,
    pub(super) rng: RefCell<Rng>,
    pub(super) accepted: Cell<u64>,
    pub(super) upstream_failures: Cell<u64>,
    pub(super) bytes: [Cell<u64>; 2],
}

impl Shared {
    pub(super) fn upstream(&self) -> String {
        self.upstream.borrow().clone()
    }

    pub(super) fn upstream_failed(&self) {
        self.upstream_failures.set(self.upstream_failures.get() + 1);
    }

    /// Counts bytes written out in `dir`.
    pub(super) fn count(&self, dir: Direction, n: usize) {
        let c = &self.bytes[dir.index()];
        c.set(c.get() + n as u64);
    }

    /// Whether a toxic that drops everything (timeout, half_open) is active
    /// on `link` in `dir`.
    pub(super) fn silenced(&self, link: &Link, dir: Direction) -> bool {
        let rolls = link.rolls.borrow();
        self.toxics.borrow().iter().any(|s| {
            s.info.direction == dir
                && s.info.toxic.silences()
                && rolls.get(&s.id).copied().unwrap_or(false)
        })
    }

    pub(super) fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// The toxics changed: tell every pump.
    pub(super) fn changed(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
        for link in self.links.borrow().values() {
            link.wake();
        }
    }

    pub(super) fn live_links(&self) -> Vec<Rc<Link>> {
        self.links
            .borrow()
            .values()
            .filter(|l| !l.is_closed())
            .cloned()
            .collect()
    }

    /// The links on which toxic `id` is active and drops data.
    pub(super) fn silenced_by(&self, id: u64) -> Vec<Rc<Link>> {
        let silences = self
            .toxics
            .borrow()
            .iter()
            .any(|s| s.id == id && s.info.toxic.silences());
        if !silences {
            return Vec::new();
        }
        self.live_links()
            .into_iter()
            .filter(|l| l.rolls.borrow().get(&id).copied().unwrap_or(false))
            .collect()
    }

    pub(super) fn start_acceptor(self: &Rc<Self>, addr: impl ToSocketAddrs) -> io::Result<()> {
        let listener = Rc::new(ListenOptions::new().bind(addr)?);
        self.listen_addr.set(listener.local_addr()?);
        let (shared, l) = (self.clone(), listener.clone());
        let acceptor = crate::Builder::new()
            .name(format!("chaos-{}-accept", self.name))
            .spawn(move || accept_loop(&shared, &l))?;
        *self.acceptor.borrow_mut() = Some(acceptor);
        *self.listener.borrow_mut() = Some(listener);
        Ok(())
    }

    /// Stops accepting: new connections are refused from now on. With
    /// `wait`, returns once the accept loop has ended.
    pub(super) fn stop_acceptor(&self, wait: bool) {
        if let Some(l) = self.listener.borrow_mut().take() {
            // On Linux, shutting a listening socket down closes it for new
            // connections at once (they are refused), though the accept
            // loop still holds its descriptor until it ends.
            let _ = SockRef::from(&*l).shutdown(Shutdown::Read);
        }
        let acceptor = self.acceptor.borrow_mut().take();
        if let Some(a) = acceptor {
            a.kill();
            while wait && !a.is_finished() && crate::runtime::may_suspend() {
                crate::yield_now();
            }
        }
    }

    fn accept(self: &Rc<Self>, client: TcpStream, peer: SocketAddr) {
        self.accepted.set(self.accepted.get() + 1);
        let link = Rc::new(Link::new(self.next_id(), client, peer));
        {
            let mut rolls = link.rolls.borrow_mut();
            let mut rng = self.rng.borrow_mut();
            for s in self.toxics.borrow().iter() {
                rolls.insert(s.id, rng.chance(s.info.toxicity));
            }
        }
        self.links.borrow_mut().insert(link.id, link.clone());
        let (shared, l) = (self.clone(), link.clone());
        if let Err(e) = link.spawn(self, "main", move || link::run(shared, l)) {
            // The link closed itself as its guard was dropped.
            tracing::error!(proxy = %self.name, client = %peer, "chaos proxy cannot start a connection: {e}");
        }
    }

    /// Stops everything; with `wait`, returns once every green thread of
    /// the proxy has ended.
    pub(super) fn shutdown(&self, wait: bool) {
        self.stopped.set(true);
        self.enabled.set(false);
        self.stop_acceptor(wait);
        let links: Vec<Rc<Link>> = self.links.borrow().values().cloned().collect();
        for l in &links {
            l.close(End::Close);
        }
        if wait {
            for l in &links {
                for g in l.take_threads() {
                    while !g.is_finished() && crate::runtime::may_suspend() {
                        crate::yield_now();
                    }
                }
            }
        }
    }
}

fn accept_loop(shared: &Rc<Shared>, listener: &TcpListener) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = listener.accept();
        if !shared.enabled.get() {
            // Taken down meanwhile (an accept that was already complete
            // still returns in a killed green thread): drop what came.
            return;
        }
        match accepted {
            Ok((client, peer)) => {
                backoff = Duration::from_millis(5);
                shared.accept(client, peer);
            }
            Err(e) if Cancelled::from_io(&e).is_some() => return,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(proxy = %shared.name, "chaos proxy: accept failed: {e}; retrying in {backoff:?}");
                if crate::sleep(backoff).is_err() {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Checks that `addr` looks like `HOST:PORT` (it is resolved, and
/// connected to, for each connection).
pub(super) fn check_upstream(addr: &str) -> Result<(), ChaosError> {
    if addr.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    match addr.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty() && !host.contains(':') && port.parse::<u16>().is_ok() =>
        {
            Ok(())
        }
        _ => Err(ChaosError::InvalidUpstream(addr.to_owned())),
    }
}
