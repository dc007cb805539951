//! Fail-over in a real 3-node ZooKeeper ensemble: kill the server the
//! client is connected to; the session moves to another member within the
//! session timeout, keeps its id and ephemeral nodes, and its watches
//! still fire.
//!
//! Needs Debian's `zookeeper` package and a JRE (`.ci/run` installs them).
#![cfg(feature = "zookeeper")]

mod zk_util;

use std::time::Duration;

use sylvan::resilience::SessionState;
use sylvan::sync::{Queue, WatchReceiver};
use sylvan::zk::{Client, CreateMode, EventKind, discover, register};
use zk_util::Ensemble;

fn next<T: 'static>(q: &Queue<T>, limit: Duration) -> T {
    sylvan::timeout(limit, || q.get())
        .unwrap_or_else(|_| panic!("nothing arrived within {limit:?}"))
        .unwrap()
}

/// The next session state, or a test failure after `limit` (never a
/// hang). A watch holds the latest state: this is the state after the
/// next change.
fn next_state(rx: &mut WatchReceiver<Option<SessionState>>, limit: Duration) -> SessionState {
    sylvan::timeout(limit, || rx.changed())
        .unwrap_or_else(|_| panic!("no state change within {limit:?}"))
        .unwrap();
    rx.borrow_and_update().expect("a state")
}

#[test]
fn killing_the_connected_server_fails_over_within_the_session_timeout() {
    let mut ens = Ensemble::start();
    let session = Duration::from_secs(10);
    let zk = Client::builder(&ens.hosts())
        .session_timeout(session)
        .connect_timeout(Duration::from_secs(20))
        .connect()
        .unwrap();
    let id = zk.session_id().unwrap();
    zk.ensure_path("/app/members").unwrap();
    zk.create("/app/config", b"v1", CreateMode::Persistent)
        .unwrap();
    zk.create("/app/lock", b"", CreateMode::Ephemeral).unwrap();
    let _reg = register(&zk, "/app/members", "10.1.1.1:80").unwrap();
    let data = Queue::unbounded();
    let kids = Queue::unbounded();
    zk.get_data_watch("/app/config", &data).unwrap();
    zk.get_children_watch("/app", &kids).unwrap();
    let mut states = zk.states();

    let before = zk.server().unwrap();
    let victim = ens.by_port(before.port());
    let mode = victim.mode().unwrap_or_default();
    let t0 = std::time::Instant::now();
    victim.kill();
    assert_eq!(next_state(&mut states, session), SessionState::Suspended);
    assert_eq!(next_state(&mut states, session), SessionState::Reconnected);
    assert!(t0.elapsed() < session, "fail-over took {:?}", t0.elapsed());
    eprintln!("killed the {mode}; fail-over took {:?}", t0.elapsed());
    let after = zk.server().unwrap();
    assert_ne!(after.port(), before.port(), "moved to another member");
    assert_eq!(zk.session_id(), Some(id));
    let lock = zk.exists("/app/lock").unwrap().expect("ephemeral kept");
    assert_eq!(lock.ephemeral_owner, id);

    // Watches set on the dead server fire after the move, once each.
    let survivors: Vec<String> = ens
        .servers
        .iter()
        .filter(|s| s.is_running())
        .map(|s| s.addr())
        .collect();
    let other = Client::builder(&survivors.join(","))
        .session_timeout(session)
        .connect_timeout(Duration::from_secs(20))
        .connect()
        .unwrap();
    other.set_data("/app/config", b"v2", None).unwrap();
    let e = next(&data, session);
    assert_eq!(
        (e.kind, e.path.as_str()),
        (EventKind::NodeDataChanged, "/app/config")
    );
    other
        .create("/app/new", b"", CreateMode::Persistent)
        .unwrap();
    let e = next(&kids, session);
    assert_eq!(
        (e.kind, e.path.as_str()),
        (EventKind::NodeChildrenChanged, "/app")
    );
    assert_eq!(zk.get_data("/app/config").unwrap().0, b"v2");
    assert!(data.try_get().is_none() && kids.try_get().is_none());

    // The registration is still there for anyone discovering it.
    let d = discover(&other, "/app/members").unwrap();
    let addrs: Vec<_> = d.current().into_iter().map(|m| m.addr).collect();
    assert_eq!(addrs, ["10.1.1.1:80"]);
    assert!(!states.has_changed(), "no other state change");
}
