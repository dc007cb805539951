//! The keep-alive pool: idle connections per (scheme, host, port), most
//! recently used first, bounded in number, age and idle time.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::conn::Conn;

/// Which connections may serve a request: same scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) https: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Through the client's proxy.
    pub(crate) proxied: bool,
}

/// Limits of the pool; see the setters of
/// [`ClientBuilder`](super::ClientBuilder).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolConfig {
    pub(crate) max_idle_per_host: usize,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_lifetime: Option<Duration>,
}

#[derive(Debug)]
struct Idle {
    conn: Conn,
    since: Instant,
}

#[derive(Debug)]
pub(crate) struct Pool {
    cfg: PoolConfig,
    idle: RefCell<HashMap<Key, Vec<Idle>>>,
}

impl Pool {
    pub(crate) fn new(cfg: PoolConfig) -> Pool {
        Pool {
            cfg,
            idle: RefCell::new(HashMap::new()),
        }
    }

    fn expired(&self, i: &Idle, now: Instant) -> bool {
        self.cfg
            .idle_timeout
            .is_some_and(|t| now.saturating_duration_since(i.since) >= t)
            || self
                .cfg
                .max_lifetime
                .is_some_and(|t| now.saturating_duration_since(i.conn.created) >= t)
    }

    /// The most recently returned live connection for `key`, if any;
    /// expired ones, and ones the server has closed, are closed on the
    /// way.
    pub(crate) fn checkout(&self, key: &Key, now: Instant) -> Option<Conn> {
        loop {
            let i = {
                let mut idle = self.idle.borrow_mut();
                let list = idle.get_mut(key)?;
                let i = list.pop();
                if list.is_empty() {
                    idle.remove(key);
                }
                i?
            };
            // Checked outside the borrow: the peek may touch the hub.
            if !self.expired(&i, now) && i.conn.looks_alive() {
                return Some(i.conn);
            }
        }
    }

    /// Keeps `conn` for reuse, unless the limits say to close it; then
    /// the oldest idle connection of that host is the one closed.
    pub(crate) fn checkin(&self, key: Key, conn: Conn, now: Instant) {
        if self.cfg.max_idle_per_host == 0
            || self
                .cfg
                .max_lifetime
                .is_some_and(|t| now.saturating_duration_since(conn.created) >= t)
        {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(key).or_default();
        list.retain(|i| !self.expired(i, now));
        if list.len() >= self.cfg.max_idle_per_host {
            list.remove(0);
        }
        list.push(Idle { conn, since: now });
    }

    /// Idle connections kept now, over all hosts.
    pub(crate) fn idle_count(&self) -> usize {
        self.idle.borrow().values().map(Vec::len).sum()
    }

    /// Closes every idle connection.
    pub(crate) fn clear(&self) {
        // Dropped outside the borrow: closing never blocks, but keep the
        // borrow short anyway.
        let all = std::mem::take(&mut *self.idle.borrow_mut());
        drop(all);
    }
}
