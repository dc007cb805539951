//! One-shot watches: [`WatchEvent`], and the client's registry of them.

use std::collections::HashMap;
use std::fmt;

use super::proto::WatcherEvent;
use crate::sync::Queue;

/// What happened to a watched node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// The node was created (an exists watch on a missing node).
    NodeCreated,
    /// The node was deleted.
    NodeDeleted,
    /// The node's data changed.
    NodeDataChanged,
    /// A child was added or removed.
    NodeChildrenChanged,
    /// Not from the server: the session was lost, and with it every watch
    /// it held. The node may have changed in any way; read it again (which
    /// sets a new watch in the new session).
    SessionLost,
}

impl EventKind {
    fn from_i32(n: i32) -> Option<EventKind> {
        Some(match n {
            1 => EventKind::NodeCreated,
            2 => EventKind::NodeDeleted,
            3 => EventKind::NodeDataChanged,
            4 => EventKind::NodeChildrenChanged,
            _ => return None,
        })
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventKind::NodeCreated => "created",
            EventKind::NodeDeleted => "deleted",
            EventKind::NodeDataChanged => "data changed",
            EventKind::NodeChildrenChanged => "children changed",
            EventKind::SessionLost => "session lost",
        })
    }
}

/// A watch fired: delivered once on the queue it was set with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WatchEvent {
    /// What happened.
    pub kind: EventKind,
    /// The watched node.
    pub path: String,
}

/// Which of the server's watch tables a watch lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchKind {
    /// Set by `get_data`, or by `exists` on a node that exists.
    Data,
    /// Set by `exists` on a node that does not exist.
    Exist,
    /// Set by `get_children`.
    Child,
}

type Table = HashMap<String, Vec<Queue<WatchEvent>>>;

/// The watches the session holds, by path; the client's mirror of the
/// server's tables, used to dispatch notifications and to re-register
/// everything after a reconnect.
#[derive(Default)]
pub(crate) struct Watches {
    data: Table,
    exist: Table,
    child: Table,
}

impl Watches {
    pub(crate) fn add(&mut self, kind: WatchKind, path: &str, q: Queue<WatchEvent>) {
        let t = match kind {
            WatchKind::Data => &mut self.data,
            WatchKind::Exist => &mut self.exist,
            WatchKind::Child => &mut self.child,
        };
        t.entry(path.to_string()).or_default().push(q);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty() && self.exist.is_empty() && self.child.is_empty()
    }

    /// The watched paths (data, exist, child), for SetWatches.
    pub(crate) fn paths(&self) -> [Vec<String>; 3] {
        let keys = |t: &Table| t.keys().cloned().collect::<Vec<_>>();
        [keys(&self.data), keys(&self.exist), keys(&self.child)]
    }

    /// Delivers a server notification to every watch it triggers (which
    /// are removed: watches are one-shot), with ZooKeeper's rules: created
    /// and data-changed fire data and exist watches, children-changed
    /// fires child watches, deleted fires data, exist and child watches.
    pub(crate) fn dispatch(&mut self, ev: &WatcherEvent) {
        let Some(kind) = EventKind::from_i32(ev.kind) else {
            return;
        };
        let p = ev.path.as_str();
        let mut fired = Vec::new();
        let mut take = |t: &mut Table| fired.extend(t.remove(p).unwrap_or_default());
        match kind {
            EventKind::NodeCreated | EventKind::NodeDataChanged => {
                take(&mut self.data);
                take(&mut self.exist);
            }
            EventKind::NodeChildrenChanged => take(&mut self.child),
            EventKind::NodeDeleted => {
                take(&mut self.data);
                take(&mut self.exist);
                take(&mut self.child);
            }
            EventKind::SessionLost => {}
        }
        for q in fired {
            deliver(
                &q,
                WatchEvent {
                    kind,
                    path: ev.path.clone(),
                },
            );
        }
    }

    /// The session is gone: every watch fires with
    /// [`EventKind::SessionLost`] and the tables are emptied.
    pub(crate) fn lose_all(&mut self) {
        for t in [&mut self.data, &mut self.exist, &mut self.child] {
            for (path, qs) in t.drain() {
                for q in qs {
                    deliver(
                        &q,
                        WatchEvent {
                            kind: EventKind::SessionLost,
                            path: path.clone(),
                        },
                    );
                }
            }
        }
    }
}

fn deliver(q: &Queue<WatchEvent>, ev: WatchEvent) {
    // Never block the reader: a full bounded queue loses the event, loudly.
    if let Err(e) = q.try_put(ev) {
        tracing::warn!(
            "sylvan zk: watch queue full, event dropped: {:?}",
            e.into_inner()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: i32, path: &str) -> WatcherEvent {
        WatcherEvent {
            kind,
            path: path.into(),
        }
    }

    #[test]
    fn one_shot_and_routed_by_kind() {
        let mut w = Watches::default();
        let q = Queue::unbounded();
        w.add(WatchKind::Data, "/a", q.clone());
        w.add(WatchKind::Child, "/a", q.clone());
        w.dispatch(&ev(3, "/a"));
        assert_eq!(q.try_get().unwrap().kind, EventKind::NodeDataChanged);
        assert!(q.try_get().is_none());
        w.dispatch(&ev(3, "/a")); // fired already: one-shot
        assert!(q.try_get().is_none());
        w.dispatch(&ev(2, "/a")); // delete fires the remaining child watch
        assert_eq!(q.try_get().unwrap().kind, EventKind::NodeDeleted);
        assert!(w.is_empty());
    }

    #[test]
    fn lost_session_fires_everything() {
        let mut w = Watches::default();
        let q = Queue::unbounded();
        w.add(WatchKind::Exist, "/x", q.clone());
        w.add(WatchKind::Child, "/y", q.clone());
        w.lose_all();
        let mut got: Vec<_> = std::iter::from_fn(|| q.try_get()).collect();
        got.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|e| e.kind == EventKind::SessionLost));
        assert!(w.is_empty());
    }
}
