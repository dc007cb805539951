//! The ZooKeeper client against a real standalone ZooKeeper: operations,
//! watches, discovery, a session that survives a server restart, and one
//! that expires (and the registration recipe that comes back after it).
//!
//! Needs Debian's `zookeeper` package and a JRE (`.ci/run` installs them).
//! Tests that don't stop the server share one; the others get their own.
#![cfg(feature = "zookeeper")]

mod zk_util;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use sylvan::resilience::SessionState;
use sylvan::sync::{Queue, WatchReceiver};
use sylvan::zk::{Client, Code, CreateMode, Error, EventKind, Member, discover, register};
use zk_util::{ZkServer, eventually};

/// The server shared by the tests that never stop it.
fn shared() -> String {
    static SERVER: OnceLock<Mutex<ZkServer>> = OnceLock::new();
    SERVER
        .get_or_init(|| Mutex::new(ZkServer::standalone()))
        .lock()
        .unwrap()
        .addr()
}

fn client(hosts: &str, session: Duration) -> Client {
    Client::builder(hosts)
        .session_timeout(session)
        .connect_timeout(Duration::from_secs(20))
        .connect()
        .unwrap()
}

/// The next item, or a test failure after `limit` (never a hang).
fn next<T: 'static>(q: &Queue<T>, limit: Duration) -> T {
    sylvan::timeout(limit, || q.get())
        .unwrap_or_else(|_| panic!("nothing arrived within {limit:?}"))
        .unwrap()
}

/// The next session state, or a test failure after `limit` (never a
/// hang). A watch holds the latest state: this is the state after the
/// next change.
fn next_state(rx: &mut WatchReceiver<Option<SessionState>>, limit: Duration) -> SessionState {
    next_state_or(rx, limit, String::new)
}

/// [`next_state`], whose failure also says `context()` (what else the test
/// can see then, to tell the causes apart).
fn next_state_or(
    rx: &mut WatchReceiver<Option<SessionState>>,
    limit: Duration,
    context: impl FnOnce() -> String,
) -> SessionState {
    sylvan::timeout(limit, || rx.changed())
        .unwrap_or_else(|_| panic!("no state change within {limit:?}{}", context()))
        .unwrap();
    rx.borrow_and_update().expect("a state")
}

/// The member list after the next change, or a test failure after
/// `limit`.
fn next_list(rx: &mut WatchReceiver<Vec<Member>>, limit: Duration) -> Vec<Member> {
    sylvan::timeout(limit, || rx.changed())
        .unwrap_or_else(|_| panic!("no change within {limit:?}"))
        .unwrap();
    rx.borrow_and_update().clone()
}

const SOON: Duration = Duration::from_secs(10);

#[test]
fn crud_with_versions_sequential_and_ephemeral_nodes() {
    let zk = client(&shared(), Duration::from_secs(10));
    assert_eq!(zk.state(), Some(SessionState::Connected));
    zk.ensure_path("/crud/a/b").unwrap();
    zk.ensure_path("/crud/a/b").unwrap(); // idempotent
    assert!(zk.exists("/crud/a/b").unwrap().is_some());

    assert_eq!(
        zk.create("/crud/n", b"one", CreateMode::Persistent)
            .unwrap(),
        "/crud/n"
    );
    assert!(
        zk.create("/crud/n", b"", CreateMode::Persistent)
            .unwrap_err()
            .is_node_exists()
    );
    let (data, st) = zk.get_data("/crud/n").unwrap();
    assert_eq!(
        (data.as_slice(), st.version, st.data_length),
        (&b"one"[..], 0, 3)
    );
    let st = zk.set_data("/crud/n", b"two", Some(0)).unwrap();
    assert_eq!(st.version, 1);
    let e = zk.set_data("/crud/n", b"x", Some(0)).unwrap_err();
    assert_eq!(e.code(), Some(Code::BadVersion), "{e}");
    assert_eq!(
        zk.delete("/crud/n", Some(7)).unwrap_err().code(),
        Some(Code::BadVersion)
    );
    assert_eq!(zk.get_data("/crud/n").unwrap().0, b"two");
    zk.delete("/crud/n", Some(1)).unwrap();
    assert_eq!(zk.exists("/crud/n").unwrap(), None);
    let e = zk.get_data("/crud/n").unwrap_err();
    assert!(e.is_no_node() && e.to_string().contains("/crud/n"), "{e}");
    assert!(
        zk.create("/crud/none/kid", b"", CreateMode::Persistent)
            .unwrap_err()
            .is_no_node()
    );
    assert_eq!(
        zk.delete("/crud/a", None).unwrap_err().code(),
        Some(Code::NotEmpty)
    );

    let s1 = zk
        .create("/crud/seq-", b"", CreateMode::PersistentSequential)
        .unwrap();
    let s2 = zk
        .create("/crud/seq-", b"", CreateMode::PersistentSequential)
        .unwrap();
    assert!(
        s1.starts_with("/crud/seq-") && s1.len() == "/crud/seq-".len() + 10,
        "{s1}"
    );
    assert!(s2 > s1);

    let e = zk.create("/crud/eph", b"", CreateMode::Ephemeral).unwrap();
    let st = zk.exists(&e).unwrap().unwrap();
    assert_eq!(Some(st.ephemeral_owner), zk.session_id());
    assert_eq!(
        zk.create("/crud/eph/kid", b"", CreateMode::Persistent)
            .unwrap_err()
            .code(),
        Some(Code::NoChildrenForEphemerals)
    );
    let mut kids = zk.get_children("/crud").unwrap();
    kids.sort();
    assert_eq!(kids.len(), 4, "{kids:?}");
    assert_eq!(&kids[..2], ["a", "eph"]);

    // Refused before anything is sent.
    assert!(matches!(
        zk.create("relative", b"", CreateMode::Persistent),
        Err(Error::BadArguments(_))
    ));
    assert!(matches!(
        zk.create("/crud/big", &vec![0; 2 << 20], CreateMode::Persistent),
        Err(Error::BadArguments(_))
    ));
    // The session is unharmed by all of that.
    assert_eq!(zk.state(), Some(SessionState::Connected));
    let states = zk.states();
    zk.close().unwrap();
    sylvan::sleep(Duration::from_millis(100)).unwrap();
    assert!(!states.has_changed(), "closing is not a disconnect");
    assert!(matches!(zk.exists("/crud"), Err(Error::Closed)));
}

#[test]
fn requests_are_pipelined_from_many_green_threads() {
    let zk = client(&shared(), Duration::from_secs(10));
    zk.ensure_path("/pipe").unwrap();
    let done = Queue::unbounded();
    for i in 0..200 {
        let (zk, done) = (zk.clone(), done.clone());
        sylvan::spawn(move || {
            let p = format!("/pipe/n{i}");
            let r = zk
                .create(&p, i.to_string().as_bytes(), CreateMode::Ephemeral)
                .and_then(|_| zk.get_data(&p));
            let _ = done.put((i, r));
        });
    }
    for _ in 0..200 {
        let (i, r) = next(&done, SOON);
        assert_eq!(r.unwrap().0, i.to_string().as_bytes());
    }
    assert_eq!(zk.get_children("/pipe").unwrap().len(), 200);
}

#[test]
fn watches_fire_once_and_in_order() {
    let zk = client(&shared(), Duration::from_secs(10));
    let other = client(&shared(), Duration::from_secs(10));
    zk.ensure_path("/w").unwrap();
    for n in ["a", "b", "c"] {
        zk.create(&format!("/w/{n}"), b"0", CreateMode::Persistent)
            .unwrap();
    }
    let q = Queue::unbounded();
    for n in ["a", "b", "c"] {
        zk.get_data_watch(&format!("/w/{n}"), &q).unwrap();
    }
    for n in ["c", "a", "b"] {
        other.set_data(&format!("/w/{n}"), b"1", None).unwrap();
    }
    let got: Vec<_> = (0..3).map(|_| next(&q, SOON)).collect();
    assert!(got.iter().all(|e| e.kind == EventKind::NodeDataChanged));
    let paths: Vec<_> = got.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["/w/c", "/w/a", "/w/b"]);

    // One-shot: another change fires nothing. ZooKeeper delivers a watch
    // event before any later reply, so after this read nothing is pending.
    other.set_data("/w/a", b"2", None).unwrap();
    assert_eq!(zk.get_data("/w/a").unwrap().0, b"2");
    assert!(q.try_get().is_none());

    // exists on a missing node fires on creation; on an existing one, on
    // deletion.
    assert_eq!(zk.exists_watch("/w/new", &q).unwrap(), None);
    other.create("/w/new", b"", CreateMode::Persistent).unwrap();
    let e = next(&q, SOON);
    assert_eq!(
        (e.kind, e.path.as_str()),
        (EventKind::NodeCreated, "/w/new")
    );
    assert!(zk.exists_watch("/w/new", &q).unwrap().is_some());
    other.delete("/w/new", None).unwrap();
    assert_eq!(next(&q, SOON).kind, EventKind::NodeDeleted);

    // Children: a join and a leave, one event each (re-armed in between).
    zk.get_children_watch("/w", &q).unwrap();
    other.create("/w/kid", b"", CreateMode::Ephemeral).unwrap();
    let e = next(&q, SOON);
    assert_eq!(
        (e.kind, e.path.as_str()),
        (EventKind::NodeChildrenChanged, "/w")
    );
    assert!(
        zk.get_children_watch("/w", &q)
            .unwrap()
            .contains(&"kid".to_string())
    );
    other.close().unwrap(); // its ephemeral child goes with its session
    assert_eq!(next(&q, SOON).kind, EventKind::NodeChildrenChanged);
    assert!(!zk.get_children("/w").unwrap().contains(&"kid".to_string()));
    assert!(q.try_get().is_none());
}

#[test]
fn discovery_sees_members_join_and_leave() {
    let zk = client(&shared(), Duration::from_secs(10));
    let d = discover(&zk, "/services/disc").unwrap();
    assert!(d.current().is_empty());
    let mut w = d.watch();
    let rx = d.subscribe();
    assert!(w.borrow_and_update().is_empty());

    let m1 = client(&shared(), Duration::from_secs(10));
    let _r1 = register(&m1, "/services/disc", "10.0.0.1:1").unwrap();
    let list = next_list(&mut w, SOON);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].addr, "10.0.0.1:1");

    let m2 = client(&shared(), Duration::from_secs(10));
    let r2 = register(&m2, "/services/disc", "10.0.0.2:2").unwrap();
    let addrs: Vec<_> = next_list(&mut w, SOON)
        .into_iter()
        .map(|m| m.addr)
        .collect();
    assert_eq!(addrs, ["10.0.0.1:1", "10.0.0.2:2"]); // in join order
    assert_eq!(d.current().len(), 2);

    m1.close().unwrap(); // the session ends: its member leaves at once
    let addrs: Vec<_> = next_list(&mut w, SOON)
        .into_iter()
        .map(|m| m.addr)
        .collect();
    assert_eq!(addrs, ["10.0.0.2:2"]);
    r2.deregister().unwrap();
    assert!(next_list(&mut w, SOON).is_empty());

    // The cross-thread channel saw the same lists.
    let mut lens = Vec::new();
    while let Ok(l) = rx.try_recv() {
        lens.push(l.len());
    }
    assert_eq!(lens, [0, 1, 2, 1, 0]);
}

#[test]
fn session_survives_a_server_restart_within_the_session_timeout() {
    let mut srv = ZkServer::standalone();
    // A session timeout well past a loaded machine's JVM restart (seconds,
    // more while other builds run): the test waits only as long as the
    // restart takes.
    let zk = client(&srv.addr(), Duration::from_secs(30));
    let id = zk.session_id().unwrap();
    zk.create("/eph", b"x", CreateMode::Ephemeral).unwrap();
    let q = Queue::unbounded();
    zk.get_data_watch("/eph", &q).unwrap();
    let mut states = zk.states();

    srv.kill();
    assert_eq!(next_state(&mut states, SOON), SessionState::Suspended);
    // A request made while suspended waits for the connection.
    let pending = {
        let zk = zk.clone();
        sylvan::spawn(move || zk.exists("/eph"))
    };
    srv.restart();
    let state = next_state_or(&mut states, Duration::from_secs(30), || {
        // (Seen once in a full test run, never reproduced: whether the
        // restarted server still serves tells a dead JVM from a client
        // that does not come back.)
        match srv.srvr() {
            Some(s) => format!("; the server still serves: {}", s.replace('\n', " | ")),
            None => "; the server no longer answers srvr".to_string(),
        }
    });
    assert_eq!(state, SessionState::Reconnected);
    assert_eq!(zk.session_id(), Some(id), "the same session");
    let st = pending
        .join()
        .unwrap()
        .unwrap()
        .expect("ephemeral node kept");
    assert_eq!(st.ephemeral_owner, id);

    // The watch set before the crash was re-registered (SetWatches).
    let other = client(&srv.addr(), Duration::from_secs(8));
    other.set_data("/eph", b"y", None).unwrap();
    let e = next(&q, SOON);
    assert_eq!(
        (e.kind, e.path.as_str()),
        (EventKind::NodeDataChanged, "/eph")
    );
    assert!(!states.has_changed(), "no other state change");
}

#[test]
fn session_expiry_loses_the_session_and_the_registration_comes_back() {
    let mut srv = ZkServer::standalone();
    let zk = client(&srv.addr(), Duration::from_millis(1500));
    assert_eq!(zk.session_timeout(), Duration::from_millis(1500));
    let old_id = zk.session_id().unwrap();
    let reg = register(&zk, "/svc/echo", "127.0.0.1:7").unwrap();
    let old_node = reg.path().unwrap();
    let q = Queue::unbounded();
    zk.get_data_watch(&old_node, &q).unwrap();
    let mut states = zk.states();

    srv.kill();
    assert_eq!(next_state(&mut states, SOON), SessionState::Suspended);
    // Nothing heard for 4/3 × 1.5 s: lost on the client side.
    assert_eq!(next_state(&mut states, SOON), SessionState::Lost);
    let e = next(&q, SOON);
    assert_eq!(
        (e.kind, e.path.as_str()),
        (EventKind::SessionLost, old_node.as_str())
    );
    assert!(zk.exists("/svc").is_err(), "no session, no answers");

    srv.restart();
    assert_eq!(next_state(&mut states, SOON), SessionState::Connected);
    let new_id = zk.session_id().unwrap();
    assert_ne!(new_id, old_id);
    // The recipe registers again in the new session…
    let new_node = eventually(SOON, "re-registration", || {
        let p = reg.path()?;
        let st = zk.exists(&p).ok()??;
        (st.ephemeral_owner == new_id).then_some(p)
    });
    assert_ne!(new_node, old_node);
    // …and the old member goes once the server expires the old session.
    eventually(SOON, "the old ephemeral node to go", || {
        zk.exists(&old_node).ok()?.is_none().then_some(())
    });
    let d = discover(&zk, "/svc/echo").unwrap();
    let addrs: Vec<_> = d.current().into_iter().map(|m| m.addr).collect();
    assert_eq!(addrs, ["127.0.0.1:7"]);
}
