//! `sylvan proxy` as a process: forwarding, admin endpoint, bad input,
//! an upstream killed under load, graceful drain, several threads.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use util::{Proc, dead_addr, echo_round_trip, echo_server, http_get, sylvan, temp_path, wait_for};

/// Starts a proxy with an admin endpoint; returns it, its address and the
/// admin address.
fn proxy(extra: &[&str]) -> (Proc, std::net::SocketAddr, std::net::SocketAddr) {
    let mut args = vec!["proxy", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut p = Proc::spawn(&args);
    let admin = p.addr_after("admin on ");
    let addr = p.addr_after("listening on ");
    (p, addr, admin)
}

fn stats(admin: std::net::SocketAddr) -> serde_json::Value {
    let (status, body) = http_get(admin, "/stats");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn forwards_and_reports_stats_and_metrics() {
    let (_e1, a1) = echo_server();
    let (_e2, a2) = echo_server();
    let (s1, s2) = (a1.to_string(), a2.to_string());
    let (mut p, addr, admin) = proxy(&["--upstream", &s1, "--upstream", &s2]);
    for i in 0..4 {
        echo_round_trip(addr, format!("hello {i}").as_bytes()).unwrap();
    }
    wait_for("connections to close", || {
        stats(admin)["connections_active"] == 0
    });
    let s = stats(admin);
    assert_eq!(s["connections_total"], 4);
    assert_eq!(s["connections_failed"], 0);
    assert_eq!(s["balance"], "round-robin");
    // Round robin: two each.
    assert_eq!(s["upstreams"][0]["address"], s1);
    assert_eq!(s["upstreams"][0]["connections_total"], 2);
    assert_eq!(s["upstreams"][1]["connections_total"], 2);
    assert_eq!(s["upstreams"][1]["bytes_sent"], 14);
    assert_eq!(s["upstreams"][1]["state"], "up");

    let (status, metrics) = http_get(admin, "/metrics");
    assert_eq!(status, 200);
    for want in [
        "# TYPE sylvan_proxy_connections_total counter".to_owned(),
        "sylvan_proxy_connections_total 4".to_owned(),
        format!("sylvan_proxy_upstream_connections_total{{upstream=\"{s1}\"}} 2"),
        format!("sylvan_proxy_upstream_up{{upstream=\"{s2}\"}} 1"),
    ] {
        assert!(
            metrics.lines().any(|l| l == want),
            "no {want:?} in\n{metrics}"
        );
    }
    p.signal("TERM");
    let (code, err) = p.wait_exit();
    assert_eq!(code, Some(0), "{err:?}");
    assert!(err.iter().any(|l| l.contains("stopped")), "{err:?}");
}

#[test]
fn bad_input_is_one_clear_line_and_exit_2() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().map(|a| (a, busy)).unwrap();
    let port_in_use = busy.0.to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["proxy"], "no upstream"),
        (
            vec!["proxy", "--listen", "nowhere", "--upstream", "127.0.0.1:1"],
            "--listen \"nowhere\" is not an IP:PORT",
        ),
        (
            vec!["proxy", "--upstream", "localhost"],
            "--upstream \"localhost\" is not HOST:PORT",
        ),
        (
            vec![
                "proxy",
                "--upstream",
                "127.0.0.1:1",
                "--connect-timeout",
                "5parsecs",
            ],
            "unknown unit",
        ),
        (
            vec![
                "proxy",
                "--upstream",
                "127.0.0.1:1",
                "--idle-timeout",
                "soon",
            ],
            "not a duration",
        ),
        (
            vec!["proxy", "--upstream", "127.0.0.1:1", "--balance", "random"],
            "invalid value 'random'",
        ),
        (
            vec![
                "proxy",
                "--upstream",
                "127.0.0.1:1",
                "--listen",
                &port_in_use,
            ],
            "cannot listen on",
        ),
        (
            vec![
                "proxy",
                "--upstream",
                "127.0.0.1:1",
                "--listen",
                "127.0.0.1:0",
                "--admin",
                &port_in_use,
            ],
            "cannot listen on",
        ),
        (
            vec!["proxy", "--upstream", "no-such-host.invalid:80"],
            "cannot resolve upstream",
        ),
    ];
    for (args, want) in cases {
        let out = sylvan().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        // One clear line (clap adds a "for more information" hint below
        // its own errors).
        let first = err.lines().next().unwrap_or_default();
        assert!(first.contains(want), "{args:?}: want {want:?} in {err}");
        if !err.contains("For more information") {
            assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        }
    }
    drop(busy);
}

#[test]
fn an_unreachable_upstream_is_marked_down_and_avoided() {
    let (_e, live) = echo_server();
    let dead = dead_addr().to_string();
    let live_s = live.to_string();
    let (_p, addr, admin) = proxy(&[
        "--upstream",
        &dead,
        "--upstream",
        &live_s,
        "--health-interval",
        "50ms",
    ]);
    wait_for("the dead upstream to be down", || {
        stats(admin)["upstreams"][0]["state"] == "down"
    });
    for _ in 0..6 {
        echo_round_trip(addr, b"x").unwrap();
    }
    let s = stats(admin);
    assert_eq!(s["connections_failed"], 0);
    assert_eq!(s["upstreams"][0]["connections_total"], 0);
    assert_eq!(s["upstreams"][1]["connections_total"], 6);
    let (_, metrics) = http_get(admin, "/metrics");
    assert!(metrics.contains(&format!(
        "sylvan_proxy_upstream_healthy{{upstream=\"{dead}\"}} 0"
    )));
}

#[test]
fn no_client_connection_fails_when_an_upstream_is_killed_under_load() {
    let (_e1, a1) = echo_server();
    let (mut victim, a2) = echo_server();
    let (_e3, a3) = echo_server();
    let ups: Vec<String> = [a1, a2, a3].iter().map(|a| a.to_string()).collect();
    let (_p, addr, admin) = proxy(&[
        "--upstream",
        &ups[0],
        "--upstream",
        &ups[1],
        "--upstream",
        &ups[2],
        "--balance",
        "p2c",
        "--health-interval",
        "100ms",
    ]);
    // Load: 8 connections, each request on a new connection, for 3 s.
    let json = temp_path("killed-upstream.json");
    let addr_s = addr.to_string();
    let json_s = json.to_str().unwrap();
    let mut load = Proc::spawn(&[
        "bench", "echo", &addr_s, "-c", "8", "-d", "3s", "--close", "--json", json_s,
    ]);
    // Kill one upstream once it has carried some of the load.
    wait_for("load on every upstream", || {
        let s = stats(admin);
        (0..3).all(|i| s["upstreams"][i]["connections_total"].as_u64().unwrap() > 50)
    });
    victim.signal("KILL");
    let _ = victim.wait_exit();
    let at_kill = stats(admin)["connections_total"].as_u64().unwrap();
    let (code, err) = load.wait_exit();
    assert_eq!(code, Some(0), "{err:?}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    let s = stats(admin);
    // The proxy turned no client away: every connection found an upstream.
    assert_eq!(s["connections_failed"], 0, "{s}");
    // Only requests in flight on the killed upstream when it died can fail
    // (their bytes were forwarded: never retried). The load has 8 in
    // flight at a time; allow as many again for connections the dying
    // process's backlog accepted while its sockets were torn down.
    let errors = report["errors"].as_u64().unwrap();
    assert!(errors <= 16, "{errors} errors: {}", report["error_kinds"]);
    // Load went on after the kill, on the two others.
    let total = s["connections_total"].as_u64().unwrap();
    assert!(total > at_kill + 50, "{at_kill} → {total}");
    wait_for("the health checks to take the killed upstream out", || {
        stats(admin)["upstreams"][1]["healthy"] == false
    });
    assert!(report["requests"].as_u64().unwrap() > 300, "{report}");
}

#[test]
fn sigterm_drains_open_connections() {
    let (_e, up) = echo_server();
    let up_s = up.to_string();
    let (mut p, addr, admin) = proxy(&["--upstream", &up_s, "--grace", "20s"]);
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"one").unwrap();
    let mut buf = [0; 3];
    c.read_exact(&mut buf).unwrap();
    wait_for("the connection to be counted", || {
        stats(admin)["connections_active"] == 1
    });
    p.signal("TERM");
    p.wait_line("draining 1 connection");
    wait_for("the listener to close", || {
        TcpStream::connect(addr).is_err()
    });
    // Still forwarding during the drain.
    c.write_all(b"two").unwrap();
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"two");
    drop(c);
    let (code, err) = p.wait_exit();
    assert_eq!(code, Some(0), "{err:?}");
    assert!(
        err.iter()
            .any(|l| l.contains("1 connection(s) finished, 0 closed")),
        "{err:?}"
    );
}

#[test]
fn several_threads_share_the_port_and_the_stats() {
    let (_e, up) = echo_server();
    let up_s = up.to_string();
    let (mut p, addr, admin) = proxy(&[
        "--upstream",
        &up_s,
        "--threads",
        "2",
        "--balance",
        "least-conn",
    ]);
    p.wait_line("2 thread(s)");
    for _ in 0..20 {
        echo_round_trip(addr, b"spread").unwrap();
    }
    wait_for("all 20 counted", || stats(admin)["connections_total"] == 20);
    p.signal("INT");
    assert_eq!(p.wait_exit().0, Some(0));
}
