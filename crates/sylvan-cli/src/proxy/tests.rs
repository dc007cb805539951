//! In-process tests of the proxy on one hub: health checks, ejection,
//! retries, stats, drain.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use sylvan::net::{ServerHandle, TcpStream};

use super::{Config, HealthConfig, ProxyHandle, Stats};

/// An echo server on a free loopback port.
fn echo_server() -> ServerHandle {
    echo_on("127.0.0.1:0".parse().unwrap())
}

/// An echo server on `addr`.
fn echo_on(addr: SocketAddr) -> ServerHandle {
    let l = sylvan::listen(addr).unwrap();
    sylvan::serve(l, |mut c, _| -> std::io::Result<()> {
        let mut buf = [0; 4096];
        loop {
            let n = c.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            c.write_all(&buf[..n])?;
        }
    })
}

/// A loopback port nothing listens on.
fn dead_port() -> SocketAddr {
    let l = sylvan::listen("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A proxy config for `upstreams` on a free port.
fn config(upstreams: &[SocketAddr]) -> Config {
    let mut c = Config::new(
        "127.0.0.1:0".parse().unwrap(),
        upstreams.iter().map(|a| a.to_string()).collect(),
    );
    c.connect_timeout = Duration::from_secs(2);
    c
}

/// Polls `cond` every 5 ms for up to 10 s.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if cond() {
            return;
        }
        sylvan::sleep(Duration::from_millis(5)).unwrap();
    }
    panic!("timed out waiting for {what}");
}

/// One echo round trip through `proxy`; the connection stays open.
fn round_trip(proxy: &ProxyHandle, msg: &[u8]) -> TcpStream {
    let mut c = sylvan::connect(proxy.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(msg).unwrap();
    let mut back = vec![0; msg.len()];
    c.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
    c
}

/// Upstream `i`'s state in `stats`.
fn state(stats: &Stats, i: usize) -> &'static str {
    stats.upstreams[i].state
}

#[test]
fn forwards_both_ways_and_counts_bytes() {
    let up = echo_server();
    let proxy = super::start(config(&[up.local_addr().unwrap()])).unwrap();
    let c = round_trip(&proxy, b"hello through the proxy");
    drop(c);
    wait_for("the connection to end", || {
        proxy.stats().connections_active == 0
    });
    let s = proxy.stats();
    assert_eq!(s.connections_total, 1);
    assert_eq!(s.upstreams[0].bytes_sent, 23);
    assert_eq!(s.upstreams[0].bytes_received, 23);
    assert_eq!(s.upstreams[0].connections_total, 1);
}

#[test]
fn health_checks_eject_and_restore() {
    let a = echo_server();
    let b = echo_server();
    let b_addr = b.local_addr().unwrap();
    let mut cfg = config(&[a.local_addr().unwrap(), b_addr]);
    cfg.health = Some(HealthConfig {
        interval: Duration::from_millis(10),
        timeout: Duration::from_millis(500),
        rise: 2,
        fall: 2,
    });
    let proxy = super::start(cfg).unwrap();
    wait_for("checks to pass", || {
        proxy.stats().upstreams[1].checks_ok >= 2
    });
    assert_eq!(state(&proxy.stats(), 1), "up");

    b.stop(Duration::ZERO);
    wait_for("b to go down", || state(&proxy.stats(), 1) == "down");
    // Every new connection goes to a, without a failed connect to b.
    let failures = proxy.stats().upstreams[1].connect_failures;
    for _ in 0..4 {
        round_trip(&proxy, b"x");
    }
    assert_eq!(proxy.stats().upstreams[1].connect_failures, failures);

    let _b = echo_on(b_addr);
    wait_for("b to come back", || state(&proxy.stats(), 1) == "up");
    let s = proxy.stats();
    assert!(s.upstreams[1].checks_failed >= 2, "{s:?}");
}

#[test]
fn a_refused_connect_is_retried_on_the_next_upstream_and_ejects() {
    let dead = dead_port();
    let live = echo_server();
    let mut cfg = config(&[dead, live.local_addr().unwrap()]);
    cfg.health = None;
    let proxy = super::start(cfg).unwrap();
    for _ in 0..6 {
        round_trip(&proxy, b"ping");
    }
    let s = proxy.stats();
    assert_eq!(s.connections_failed, 0);
    // Round robin sends the first connection to the dead upstream: its
    // connect fails, is retried on the live one, and the dead one is
    // ejected for a second, so no later connection tries it.
    assert_eq!(s.connect_retries, 1, "{s:?}");
    assert_eq!(s.upstreams[0].connect_failures, 1);
    assert_eq!(s.upstreams[0].ejections, 1);
    assert_eq!(s.upstreams[0].state, "ejected");
    assert_eq!(s.upstreams[1].connections_total, 6);
}

#[test]
fn with_every_upstream_down_the_client_is_closed_and_counted() {
    let mut cfg = config(&[dead_port(), dead_port()]);
    cfg.health = None;
    let proxy = super::start(cfg).unwrap();
    let mut c = sylvan::connect(proxy.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0; 1];
    // Closed without a byte (EOF, or a reset if the client's write raced).
    assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)));
    let s = proxy.stats();
    assert_eq!(s.connections_failed, 1);
    assert_eq!(s.connect_retries, 1);
    assert!(s.upstreams.iter().all(|u| u.state == "ejected"));
    // Panic mode: with both ejected, the next connection still tries them.
    let _c2 = sylvan::connect(proxy.local_addr()).unwrap();
    wait_for("the second failure", || {
        proxy.stats().connections_failed == 2
    });
    assert_eq!(proxy.stats().upstreams[0].connect_failures, 2);
}

#[test]
fn least_conn_sends_new_connections_to_the_idle_upstream() {
    let a = echo_server();
    let b = echo_server();
    let mut cfg = config(&[a.local_addr().unwrap(), b.local_addr().unwrap()]);
    cfg.balance = super::Balance::LeastConn;
    let proxy = super::start(cfg).unwrap();
    // Two long-lived connections; least-conn puts one on each.
    let _c1 = round_trip(&proxy, b"1");
    let _c2 = round_trip(&proxy, b"2");
    let s = proxy.stats();
    assert_eq!(
        (
            s.upstreams[0].connections_active,
            s.upstreams[1].connections_active
        ),
        (1, 1)
    );
    // Short connections to a: drop the one on b, then new ones go to b.
    drop(_c2);
    wait_for("c2 to end", || {
        proxy.stats().upstreams[1].connections_active == 0
    });
    let _c3 = round_trip(&proxy, b"3");
    assert_eq!(proxy.stats().upstreams[1].connections_active, 1);
    assert_eq!(proxy.stats().upstreams[0].connections_total, 1);
}

#[test]
fn stats_and_metrics() {
    let up = echo_server();
    let addr = up.local_addr().unwrap();
    let proxy = super::start(config(&[addr])).unwrap();
    let admin = super::admin::builder(proxy.shared().clone(), Some(proxy.local_addr()))
        .serve("127.0.0.1:0".parse().unwrap())
        .unwrap();
    let admin_addr = admin.local_addr();
    let _c = round_trip(&proxy, b"abc");

    let get = |path: &str| {
        let mut c = sylvan::connect(admin_addr).unwrap();
        write!(
            c,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out
    };
    let stats = get("/stats");
    assert!(stats.starts_with("HTTP/1.1 200"), "{stats}");
    assert!(stats.contains("application/json"));
    let body = &stats[stats.find("\r\n\r\n").unwrap() + 4..];
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["connections_total"], 1);
    assert_eq!(v["connections_active"], 1);
    assert_eq!(v["balance"], "round-robin");
    assert_eq!(v["upstreams"][0]["address"], addr.to_string());
    assert_eq!(v["upstreams"][0]["state"], "up");
    assert_eq!(v["upstreams"][0]["bytes_sent"], 3);

    let metrics = get("/metrics");
    assert!(metrics.contains("text/plain; version=0.0.4"), "{metrics}");
    for line in [
        "# TYPE sylvan_proxy_connections_total counter".to_owned(),
        "sylvan_proxy_connections_total 1".to_owned(),
        "sylvan_proxy_connections_active 1".to_owned(),
        format!("sylvan_proxy_upstream_up{{upstream=\"{addr}\"}} 1"),
        format!("sylvan_proxy_upstream_bytes_received_total{{upstream=\"{addr}\"}} 3"),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }
    assert!(get("/nope").starts_with("HTTP/1.1 404"));
    assert!(get("/health").ends_with("ok\n"));
    let upstreams = get("/x/upstreams");
    assert!(
        upstreams.contains(&format!("\"address\":\"{addr}\"")),
        "{upstreams}"
    );
    // sylvan's own part of the endpoint.
    assert!(
        metrics.contains("# TYPE sylvan_green_threads gauge"),
        "{metrics}"
    );
    assert!(get("/threads").contains("green thread"));
}

#[test]
fn drain_lets_open_connections_finish_and_refuses_new_ones() {
    let up = echo_server();
    let proxy = std::rc::Rc::new(super::start(config(&[up.local_addr().unwrap()])).unwrap());
    let addr = proxy.local_addr();
    let mut c = round_trip(&proxy, b"before");
    let p = proxy.clone();
    let stopper = sylvan::spawn(move || p.stop(Duration::from_secs(10)));
    wait_for("the listener to close", || sylvan::connect(addr).is_err());
    // The open connection still works during the drain.
    c.write_all(b"during").unwrap();
    let mut back = [0; 6];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"during");
    drop(c);
    let report = stopper.join().unwrap();
    assert_eq!((report.finished, report.killed), (1, 0));
}

#[test]
fn idle_connections_are_closed_busy_ones_are_not() {
    let up = echo_server();
    let mut cfg = config(&[up.local_addr().unwrap()]);
    // The idle timeout is ten times the busy gap, so a loaded machine that
    // sleeps late does not close the busy connection.
    cfg.idle_timeout = Some(Duration::from_millis(200));
    let proxy = super::start(cfg).unwrap();
    // Busy: a byte every 20 ms for 500 ms (2.5 idle timeouts) stays open.
    let mut busy = round_trip(&proxy, b"0");
    for _ in 0..25 {
        sylvan::sleep(Duration::from_millis(20)).unwrap();
        busy.write_all(b"1").unwrap();
        let mut b = [0; 1];
        busy.read_exact(&mut b).unwrap();
    }
    // Idle: closed by the proxy (between one and two timeouts).
    let t0 = sylvan::time::now();
    let mut b = [0; 1];
    assert_eq!(busy.read(&mut b).unwrap(), 0);
    let waited = sylvan::time::now() - t0;
    assert!(waited >= Duration::from_millis(190), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[test]
fn set_upstreams_keeps_the_state_of_those_that_stay() {
    let shared = super::Shared::new(config(&[dead_port()]));
    let first = shared.upstreams()[0].clone();
    first
        .connections
        .store(7, std::sync::atomic::Ordering::Relaxed);
    let keep = first.addr.clone();
    let (added, removed) =
        shared.set_upstreams(&[keep.clone(), "b:1".into(), "b:1".into(), "c:2".into()]);
    assert_eq!(added.len(), 2);
    assert!(removed.is_empty());
    let now = shared.upstreams();
    assert!(std::sync::Arc::ptr_eq(&now[0], &first));
    assert_eq!(
        now.iter().map(|u| u.addr.as_str()).collect::<Vec<_>>(),
        [keep.as_str(), "b:1", "c:2"]
    );
    let (added, removed) = shared.set_upstreams(&["c:2".into()]);
    assert!(added.is_empty());
    assert_eq!(removed.len(), 2);
    assert!(std::sync::Arc::ptr_eq(&removed[0], &first));
    assert_eq!(shared.stats(None).upstreams.len(), 1);
    assert_eq!(shared.stats(None).upstreams[0].address, "c:2");
}
