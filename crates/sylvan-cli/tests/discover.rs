//! `sylvan proxy --discover`: upstreams follow the echo servers registered
//! in a real ZooKeeper (Debian's `zookeeper` package; `.ci/run` installs
//! it). Every wait is bounded; every child process is killed on drop.

mod util;
#[path = "../../sylvan/tests/zk_util/mod.rs"]
mod zk_util;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use util::{Proc, echo_round_trip, http_get, sylvan, wait_for};
use zk_util::ZkServer;

/// The session timeout the echo servers ask for (the test server grants
/// 200 ms to 2 s).
const SESSION: Duration = Duration::from_secs(1);

fn stats(admin: SocketAddr) -> serde_json::Value {
    let (status, body) = http_get(admin, "/stats");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Address → connections_total of every upstream in the set now.
fn upstreams(admin: SocketAddr) -> BTreeMap<String, u64> {
    stats(admin)["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["address"].as_str().unwrap().to_string(),
                u["connections_total"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// `sylvan echo` registered under `url`; returns it and its address.
fn registered_echo(url: &str) -> (Proc, SocketAddr) {
    let session = format!("{}ms", SESSION.as_millis());
    let mut p = Proc::spawn(&[
        "echo",
        "--listen",
        "127.0.0.1:0",
        "--register",
        url,
        "--zk-session-timeout",
        &session,
    ]);
    let addr = p.addr_after("listening on ");
    p.wait_line("registered as");
    (p, addr)
}

#[test]
fn upstreams_follow_registered_echo_servers() {
    let zk = ZkServer::standalone();
    let url = format!("zk://{}/services/echo", zk.addr());
    let mut proxy = Proc::spawn(&[
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--discover",
        &url,
        "--health-interval",
        "200ms",
        "--threads",
        "2",
    ]);
    let admin = proxy.addr_after("admin on ");
    let addr = proxy.addr_after("listening on ");
    assert!(upstreams(admin).is_empty());

    // Two echo servers join: both appear and both get traffic.
    let (mut e1, a1) = registered_echo(&url);
    let (_e2, a2) = registered_echo(&url);
    let (a1, a2) = (a1.to_string(), a2.to_string());
    wait_for("both members in the upstream set", || {
        let u = upstreams(admin);
        u.len() == 2 && u.contains_key(&a1) && u.contains_key(&a2)
    });
    let mut sent = 0;
    wait_for("traffic on both echo servers", || {
        echo_round_trip(addr, format!("hello {sent}").as_bytes()).unwrap();
        sent += 1;
        upstreams(admin).values().all(|&n| n > 0)
    });

    // SIGKILL one: its session expires, it leaves the set, and requests
    // through the proxy keep succeeding all along.
    e1.signal("KILL");
    let killed = Instant::now();
    // Until the process is gone its listener may still complete a
    // handshake (then reset it): no proxy can retry that connection.
    e1.wait_exit();
    let limit = SESSION + Duration::from_secs(3);
    while upstreams(admin).contains_key(&a1) {
        assert!(
            killed.elapsed() < limit,
            "{a1} still an upstream {:?} after SIGKILL",
            killed.elapsed()
        );
        echo_round_trip(addr, b"during expiry").expect("a request failed during expiry");
    }
    let gone = killed.elapsed();
    assert_eq!(upstreams(admin).keys().collect::<Vec<_>>(), [&a2]);

    // No new connection goes (or is even attempted) to the removed member.
    let before = stats(admin);
    let n = 20;
    for i in 0..n {
        echo_round_trip(addr, format!("after {i}").as_bytes()).unwrap();
    }
    let after = stats(admin);
    assert_eq!(
        after["upstreams"][0]["connections_total"].as_u64().unwrap(),
        before["upstreams"][0]["connections_total"]
            .as_u64()
            .unwrap()
            + n,
        "{after}"
    );
    assert_eq!(
        after["connect_retries"], before["connect_retries"],
        "{after}"
    );
    assert_eq!(
        after["connections_failed"], before["connections_failed"],
        "{after}"
    );
    eprintln!("member left {gone:?} after SIGKILL (session {SESSION:?})");

    proxy.signal("TERM");
    assert_eq!(proxy.wait_exit().0, Some(0));
}

#[test]
fn malformed_zk_url_is_bad_input() {
    for bad in [
        "http://127.0.0.1:2181/x",
        "zk://127.0.0.1:2181",
        "zk:///services",
        "zk://127.0.0.1:2181/a//b",
    ] {
        let out = sylvan()
            .args(["proxy", "--listen", "127.0.0.1:0", "--discover", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{bad}: {err}");
        assert!(err.contains("--discover") && err.contains("zk://"), "{err}");
    }
}

#[test]
fn no_upstream_and_no_discover_is_bad_input() {
    let out = sylvan()
        .args(["proxy", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--upstream") && err.contains("--discover"),
        "{err}"
    );
}
