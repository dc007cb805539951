//! `--discover zk://...`: the upstream set follows the members registered
//! in ZooKeeper (see [the module docs](super#discovery)).
//!
//! One green thread on the first hub receives each new member list from
//! [`sylvan::zk::Discovery::subscribe`], replaces the shared snapshot
//! ([`Shared::set_upstreams`]) and makes the health checks follow it.

use std::io;
use std::rc::Rc;
use std::sync::Arc;

use sylvan::GreenThread;
use sylvan::zk::{Client, Discovery, Member, ZkUrl};

use super::Shared;
use super::health::Checks;

/// Discovery running on the current hub; [`stop`](Self::stop) (or drop)
/// ends it and closes the ZooKeeper session.
#[derive(Debug)]
pub struct Follower {
    client: Client,
    /// Held: dropping it ends the subscription.
    _discovery: Discovery,
    thread: GreenThread<()>,
}

impl Follower {
    /// Connects to the ensemble of `url`, reads the member list under its
    /// path into `shared` (starting their `checks`), and follows it.
    ///
    /// # Errors
    ///
    /// If no session can be established, or the first read fails.
    ///
    /// # Cancellation
    ///
    /// Killed while connecting or reading: returns the error; the session,
    /// if any, is closed.
    pub fn start(
        url: &ZkUrl,
        shared: Arc<Shared>,
        checks: Option<Rc<Checks>>,
    ) -> io::Result<Follower> {
        let zk_err = |what: &str, e: sylvan::zk::Error| {
            io::Error::other(format!("{what} ZooKeeper at {}: {e}", url.hosts))
        };
        let client = Client::builder(&url.hosts)
            .session_timeout(shared.config.zk_session_timeout)
            .connect()
            .map_err(|e| zk_err("connecting to", e))?;
        let discovery = match sylvan::zk::discover(&client, &url.path) {
            Ok(d) => d,
            Err(e) => {
                let _ = client.close();
                return Err(zk_err(&format!("discovering {} in", url.path), e));
            }
        };
        // The first list now, so the proxy serves the members from its
        // first connection; the subscription repeats it, harmlessly.
        apply(&shared, checks.as_deref(), &discovery.current());
        let changes = discovery.subscribe();
        let path = url.path.clone();
        let thread = sylvan::Builder::new()
            .name(format!("discover {path}"))
            .spawn(move || {
                while let Ok(members) = changes.recv() {
                    apply(&shared, checks.as_deref(), &members);
                }
                tracing::debug!("discovery of {path} ended");
            })
            .inspect_err(|_| {
                let _ = client.close();
            })?;
        Ok(Follower {
            client,
            _discovery: discovery,
            thread,
        })
    }

    /// Stops following and closes the session.
    pub fn stop(&self) {
        self.thread.kill();
        let _ = self.client.close();
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Makes the static upstreams plus `members` the upstream set, and the
/// health checks follow it.
fn apply(shared: &Shared, checks: Option<&Checks>, members: &[Member]) {
    let addrs = upstream_addrs(&shared.config.upstreams, members);
    let (added, removed) = shared.set_upstreams(&addrs);
    if added.is_empty() && removed.is_empty() {
        return;
    }
    for u in &added {
        tracing::warn!(upstream = %u.addr, "discovery: upstream joined");
    }
    for u in &removed {
        tracing::warn!(upstream = %u.addr, "discovery: upstream left");
    }
    if let Some(c) = checks
        && let Err(e) = c.sync(&shared.upstreams())
    {
        tracing::error!("discovery: cannot start a health check: {e}");
    }
}

/// The static upstreams, then the members' addresses (those that are not
/// `HOST:PORT` are skipped with a warning).
fn upstream_addrs(static_: &[String], members: &[Member]) -> Vec<String> {
    let mut addrs = static_.to_vec();
    for m in members {
        let a = m.addr.trim();
        match super::command::check_host_port("member address", a) {
            Ok(()) => addrs.push(a.to_string()),
            Err(e) => tracing::warn!("discovery: skipping member {}: {e}", m.name),
        }
    }
    addrs
}

#[cfg(test)]
mod tests {
    use super::upstream_addrs;
    use sylvan::zk::Member;

    fn m(name: &str, addr: &str) -> Member {
        Member {
            name: name.into(),
            addr: addr.into(),
        }
    }

    #[test]
    fn static_first_then_members_bad_ones_skipped() {
        let got = upstream_addrs(
            &["10.0.0.1:80".into()],
            &[m("a", "127.0.0.1:7000"), m("b", "garbage"), m("c", "h:1\n")],
        );
        assert_eq!(got, ["10.0.0.1:80", "127.0.0.1:7000", "h:1"]);
    }
}
