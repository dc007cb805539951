//! Timeouts, reconnection and sessions against faults made by the kernel,
//! in network namespaces each test creates (and removes on every path):
//! a blackhole (nftables DROP both ways: no RST, the real half-open), 30 %
//! random loss, the link set down. The server side runs inside the
//! namespace in a child process: the same test re-run there
//! (`ip netns exec NS <test binary> --exact <test>`), or ZooKeeper itself.
//!
//! Root only, with iproute2 and nftables (`scripts/test.sh` installs
//! them); elsewhere each test fails with one line naming what it needs.
//! Bounds asserted on detection times are the configured ones plus a
//! scheduling allowance; every wait has a hang guard.

mod http_util;
mod netns_util;
#[cfg(feature = "zookeeper")]
mod zk_util;

use std::cell::RefCell;
use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use netns_util::{NetNs, child_ip, is_child, serve_child};
use sylvan::net::{Connector, TcpStream};
use sylvan::resilience::{Backoff, CallError, ConnState, Heartbeat, Jitter, Reconnecting};
use sylvan::sync::WatchReceiver;

/// What scheduling on a busy 2-core CI machine may add to a bound. The
/// defaults these bounds are told apart from are minutes (SYN and data
/// retransmission, two hours of keepalive idle) or forever (an idle
/// connection without a heartbeat), so a generous allowance still proves
/// the configured bound is the one that fired.
const SLACK: Duration = Duration::from_secs(5);

/// Hang guard of every wait.
const GUARD: Duration = Duration::from_secs(60);

/// In the child: a line server on `ip:7000`. `REQ n` is logged and
/// answered `ACK n`; `LOG` answers `LOG` and every logged n in order;
/// anything else is echoed. Never returns (the process exits when the
/// parent's guard closes its stdin).
fn line_server() {
    let ip = child_ip();
    let l = sylvan::listen(SocketAddr::new(ip, 7000)).expect("listen in the namespace");
    let log: Rc<RefCell<Vec<u64>>> = Rc::default();
    let _server = sylvan::serve(l, move |conn: TcpStream, _| -> io::Result<()> {
        let mut lines = BufReader::new(&conn);
        let mut line = String::new();
        while lines.read_line(&mut line)? > 0 {
            let reply = if let Some(n) = line.trim().strip_prefix("REQ ") {
                let n: u64 = n.parse().map_err(io::Error::other)?;
                log.borrow_mut().push(n);
                format!("ACK {n}\n")
            } else if line.trim() == "LOG" {
                let all: Vec<String> = log.borrow().iter().map(u64::to_string).collect();
                format!("LOG {}\n", all.join(","))
            } else {
                line.clone()
            };
            (&conn).write_all(reply.as_bytes())?;
            line.clear();
        }
        Ok(())
    });
    serve_child(format!("{ip}:7000"));
    loop {
        let _ = sylvan::sleep(Duration::from_secs(3600));
    }
}

/// Sends one line and reads one back.
fn ask(c: &mut BufReader<TcpStream>, line: &str) -> io::Result<String> {
    c.get_ref().write_all(format!("{line}\n").as_bytes())?;
    let mut out = String::new();
    if c.read_line(&mut out)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(out.trim_end().to_string())
}

/// The ids the line server has logged, asked on a fresh connection.
fn server_log(addr: &str) -> Vec<u64> {
    let s = Connector::new()
        .connect_timeout(Duration::from_secs(10))
        .connect(addr)
        .expect("connect for LOG");
    s.set_read_timeout(Some(GUARD)).unwrap();
    let reply = ask(&mut BufReader::new(s), "LOG").expect("LOG");
    let list = reply.strip_prefix("LOG").expect("a LOG reply").trim();
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

/// Whether `ip` lists `what` among its `args` objects.
fn listed(args: &[&str], what: &str) -> bool {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .expect("run ip");
    String::from_utf8_lossy(&out.stdout)
        .split(|c: char| c.is_whitespace() || c == ':' || c == '@')
        .any(|w| w == what)
}

#[test]
fn a_failing_test_leaves_no_namespace_link_or_child_behind() {
    if is_child() {
        return line_server();
    }
    // A test body that sets everything up, then panics.
    let made = std::sync::Mutex::new(None);
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            let ns = NetNs::new();
            let server = ns.spawn_child(
                "a_failing_test_leaves_no_namespace_link_or_child_behind",
                &[],
            );
            ns.blackhole();
            assert!(listed(&["netns", "list"], &ns.name));
            assert!(listed(&["-o", "link"], ns.host_if()));
            *made.lock().unwrap() = Some((ns.name.clone(), ns.host_if().to_string(), server.pid()));
            panic!("a deliberate failure, with a namespace, a link and a child up");
        })
        .join()
    });
    assert!(r.is_err(), "the test body did not panic");
    let (name, host_if, pid) = made.into_inner().unwrap().expect("set up before the panic");
    assert!(
        !listed(&["netns", "list"], &name),
        "namespace {name} left behind"
    );
    assert!(
        !listed(&["-o", "link"], &host_if),
        "link {host_if} left behind"
    );
    // Killed and reaped: no process with its id runs this test (an
    // unrelated process may have been given the id since).
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains("a_failing_test_leaves_no_namespace"),
        "the child {pid} outlived its test"
    );
}

#[test]
fn connect_deadline_into_a_blackhole() {
    let ns = NetNs::new();
    let target = SocketAddr::new(ns.ip(), 9);
    // Reachable, nothing listening: refused at once (a RST).
    let e = Connector::new()
        .connect_timeout(Duration::from_secs(10))
        .connect(target)
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");

    let deadline = Duration::from_millis(1500);
    let times_out_at_its_deadline = || {
        let t0 = Instant::now();
        let e = Connector::new()
            .connect_timeout(deadline)
            .connect(target)
            .unwrap_err();
        let took = t0.elapsed();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(
            took >= deadline,
            "gave up after {took:?}, before its deadline"
        );
        assert!(took <= deadline + SLACK, "gave up after {took:?}");
    };
    // Blackholed: the SYNs vanish, so only the deadline ends the attempt.
    ns.blackhole();
    times_out_at_its_deadline();
    // The far end's link down instead: the same silence, the same deadline.
    ns.heal();
    ns.link(false);
    times_out_at_its_deadline();
}

/// Connects to the line server and proves the path works.
fn connected(connector: &Connector, addr: &str) -> BufReader<TcpStream> {
    let s = connector.connect(addr).expect("connect to the namespace");
    s.set_read_timeout(Some(GUARD)).unwrap();
    let mut c = BufReader::new(s);
    assert_eq!(ask(&mut c, "hello").unwrap(), "hello");
    c
}

#[test]
fn user_timeout_drops_a_dead_peer_with_unacknowledged_data() {
    if is_child() {
        return line_server();
    }
    let ns = NetNs::new();
    let server = ns.spawn_child(
        "user_timeout_drops_a_dead_peer_with_unacknowledged_data",
        &[],
    );
    let user_timeout = Duration::from_secs(2);
    let connector = Connector::new()
        .connect_timeout(Duration::from_secs(10))
        .user_timeout(user_timeout);
    let mut c = connected(&connector, &server.addr);

    ns.blackhole();
    let t0 = Instant::now();
    // The write is buffered; its retransmissions go unanswered until the
    // kernel gives up after the user timeout, which the read reports.
    c.get_ref().write_all(b"lost\n").unwrap();
    let mut line = String::new();
    let e = c.read_line(&mut line).unwrap_err();
    let took = t0.elapsed();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert!(took >= user_timeout, "dropped after {took:?}");
    assert!(took <= user_timeout + SLACK, "dropped after {took:?}");
}

#[test]
fn keepalive_drops_a_silent_dead_peer() {
    if is_child() {
        return line_server();
    }
    let ns = NetNs::new();
    let server = ns.spawn_child("keepalive_drops_a_silent_dead_peer", &[]);
    let (idle, interval, count) = (Duration::from_secs(1), Duration::from_secs(1), 2);
    let connector = Connector::new()
        .connect_timeout(Duration::from_secs(10))
        .keepalive(idle, interval, count);
    let mut c = connected(&connector, &server.addr);

    ns.blackhole();
    let t0 = Instant::now();
    // Nothing is sent: only keepalive probes can find the peer gone.
    let mut line = String::new();
    let e = c.read_line(&mut line).unwrap_err();
    let took = t0.elapsed();
    let bound = idle + interval * count;
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    // The idle clock started at the last packet, just before t0.
    assert!(
        took + Duration::from_millis(200) >= bound,
        "dropped after {took:?}"
    );
    assert!(
        took <= bound + SLACK,
        "dropped after {took:?} (bound {bound:?})"
    );
}

/// Waits until the watched state is `want`; the time it took.
fn wait_state(w: &mut WatchReceiver<ConnState>, want: ConnState) -> Duration {
    let t0 = Instant::now();
    sylvan::timeout(GUARD, || {
        while *w.borrow_and_update() != want {
            w.changed().unwrap();
        }
    })
    .unwrap_or_else(|_| panic!("never became {want}"));
    t0.elapsed()
}

/// Requests made, by outcome.
#[derive(Default)]
struct Tally {
    next: u64,
    acked: Vec<u64>,
    failed: Vec<u64>,
}

impl Tally {
    /// One request `REQ id` with a fresh id, counted as acknowledged or
    /// failed.
    fn request(&mut self, r: &Reconnecting<BufReader<TcpStream>>) {
        self.next += 1;
        let id = self.next;
        match r.call(|c| ask(c, &format!("REQ {id}"))) {
            Ok(reply) => {
                assert_eq!(reply, format!("ACK {id}"));
                self.acked.push(id);
            }
            Err(CallError::Io(_) | CallError::Unavailable { .. }) => self.failed.push(id),
            Err(e) => panic!("request {id}: {e}"),
        }
    }
}

#[test]
fn reconnecting_with_heartbeat_survives_a_partition_without_losing_or_replaying() {
    if is_child() {
        return line_server();
    }
    let ns = NetNs::new();
    let server = ns.spawn_child(
        "reconnecting_with_heartbeat_survives_a_partition_without_losing_or_replaying",
        &[],
    );
    let addr = server.addr.clone();
    let (interval, timeout) = (Duration::from_millis(500), Duration::from_millis(500));
    let connect_addr = addr.clone();
    let r = Reconnecting::builder(move || {
        let s = Connector::new()
            .connect_timeout(Duration::from_secs(1))
            .connect(connect_addr.as_str())?;
        // An in-flight request gives up after a second.
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        Ok(BufReader::new(s))
    })
    .heartbeat(Heartbeat::new(interval, timeout), |c| {
        if ask(c, "PING")? == "PING" {
            Ok(())
        } else {
            Err(io::ErrorKind::InvalidData.into())
        }
    })
    .backoff(
        Backoff::new()
            .initial(Duration::from_millis(100))
            .max(Duration::from_millis(300))
            .jitter(Jitter::None)
            .expect("valid backoff"),
    )
    .first_reconnect_jitter(false)
    .build();
    let mut w = r.watch();

    let mut t = Tally::default();
    // wait_for_ready is off (fail-fast): the first call starts connecting.
    let _ = r.call(|_| Ok(()));
    wait_state(&mut w, ConnState::Ready);
    for _ in 0..20 {
        t.request(&r);
    }
    assert_eq!(
        t.failed,
        Vec::<u64>::new(),
        "requests failed before the partition"
    );

    // The partition: the idle connection looks fine to TCP; the heartbeat
    // finds it within interval + timeout.
    ns.blackhole();
    let found = wait_state(&mut w, ConnState::TransientFailure);
    assert!(
        found <= interval + timeout + SLACK,
        "partition noticed after {found:?}"
    );
    // While partitioned, requests fail (fast), never hang.
    for _ in 0..5 {
        t.request(&r);
    }
    assert_eq!(t.failed.len(), 5, "requests during the partition fail");

    assert!(ns.dropped() > 0, "the blackhole dropped nothing");
    ns.heal();
    sylvan::timeout(GUARD, || {
        while r.state() != ConnState::Ready {
            w.changed().unwrap();
        }
    })
    .expect("reconnected after the partition healed");
    let before = t.acked.len();
    for _ in 0..20 {
        t.request(&r);
    }
    assert_eq!(
        t.acked.len(),
        before + 20,
        "every request after the heal answered"
    );

    let log = server_log(&addr);
    let seen: HashSet<u64> = log.iter().copied().collect();
    assert_eq!(seen.len(), log.len(), "a request was replayed: {log:?}");
    for id in &t.acked {
        assert!(
            seen.contains(id),
            "acknowledged request {id} is not in the server's log"
        );
    }
    r.shutdown();
}

#[cfg(feature = "zookeeper")]
mod zk {
    use super::*;
    use sylvan::resilience::SessionState;
    use sylvan::zk::{Client, register};

    use crate::zk_util::{ZkServer, eventually};

    fn next_state(rx: &mut WatchReceiver<Option<SessionState>>, limit: Duration) -> SessionState {
        sylvan::timeout(limit, || rx.changed())
            .unwrap_or_else(|_| panic!("no session state change within {limit:?}"))
            .unwrap();
        rx.borrow_and_update().expect("a state")
    }

    fn client(addr: &str, session: Duration) -> Client {
        Client::builder(addr)
            .session_timeout(session)
            .connect_timeout(Duration::from_secs(20))
            .reconnect_pause(Duration::from_millis(100))
            .connect()
            .expect("connect to ZooKeeper in the namespace")
    }

    #[test]
    fn zookeeper_session_suspends_and_reconnects_across_a_short_partition() {
        let ns = NetNs::new();
        let srv = ZkServer::standalone_in_netns(&ns.name, &ns.ns_ip.to_string());
        let zk = client(&srv.addr(), Duration::from_secs(8));
        let id = zk.session_id().unwrap();
        zk.create("/eph", b"x", sylvan::zk::CreateMode::Ephemeral)
            .unwrap();
        let mut states = zk.states();

        // No RST, no FIN: only silence tells the client.
        ns.blackhole();
        assert_eq!(next_state(&mut states, GUARD), SessionState::Suspended);
        // Healed well within the session timeout: the same session.
        ns.heal();
        assert_eq!(next_state(&mut states, GUARD), SessionState::Reconnected);
        assert_eq!(zk.session_id(), Some(id));
        let st = zk.exists("/eph").unwrap().expect("the ephemeral node kept");
        assert_eq!(st.ephemeral_owner, id);
    }

    #[test]
    fn zookeeper_session_is_lost_and_reregistered_across_a_long_partition() {
        let ns = NetNs::new();
        let srv = ZkServer::standalone_in_netns(&ns.name, &ns.ns_ip.to_string());
        let zk = client(&srv.addr(), Duration::from_millis(1500));
        let old_id = zk.session_id().unwrap();
        let reg = register(&zk, "/svc/netns", "10.0.0.1:7").unwrap();
        let old_node = reg.path().unwrap();
        let mut states = zk.states();

        ns.link(false);
        assert_eq!(next_state(&mut states, GUARD), SessionState::Suspended);
        // Longer than the session timeout: lost on the client's side.
        assert_eq!(next_state(&mut states, GUARD), SessionState::Lost);
        ns.link(true);
        assert_eq!(next_state(&mut states, GUARD), SessionState::Connected);
        let new_id = zk.session_id().unwrap();
        assert_ne!(new_id, old_id);
        let new_node = eventually(GUARD, "re-registration", || {
            let p = reg.path()?;
            let st = zk.exists(&p).ok()??;
            (st.ephemeral_owner == new_id).then_some(p)
        });
        assert_ne!(new_node, old_node);
        eventually(GUARD, "the old ephemeral node to go", || {
            zk.exists(&old_node).ok()?.is_none().then_some(())
        });
    }
}

/// In the child: two HTTP servers, each behind a chaos proxy adding
/// 100 ms ± 100 ms to every chunk both ways. The proxy on `ip:8080` leads
/// to a server with long timeouts (for the request load), the one on
/// `ip:8081` to one with a 2 s header timeout and a 3 s keep-alive
/// timeout.
fn http_servers_behind_jitter() {
    use sylvan::chaos::{ChaosProxy, Direction, Toxic};
    use sylvan::http::{Response, Server};
    let ip = child_ip();
    let mut keep = Vec::new();
    for (port, header, keep_alive) in [
        (8080, GUARD, GUARD),
        (8081, HEADER_TIMEOUT, KEEP_ALIVE_TIMEOUT),
    ] {
        let server = Server::bind("127.0.0.1:0")
            .unwrap()
            .header_timeout(header)
            .and_then(|s| s.keep_alive_timeout(keep_alive))
            .expect("valid timeouts");
        let upstream = server.local_addr().unwrap();
        let h = server.serve(|req| Response::text(req.path().trim_start_matches('/').to_string()));
        let proxy = ChaosProxy::start(SocketAddr::new(ip, port), upstream).unwrap();
        let jitter = Toxic::Latency {
            latency: Duration::from_millis(100),
            jitter: Duration::from_millis(100),
        };
        for d in [Direction::Upstream, Direction::Downstream] {
            proxy.add_toxic("", jitter.clone(), d, 1.0).unwrap();
        }
        keep.push((h, proxy));
    }
    serve_child(format!("{ip}:8080 {ip}:8081"));
    loop {
        let _ = sylvan::sleep(Duration::from_secs(3600));
    }
}

const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(3);

#[test]
fn http_server_answers_everything_under_loss_and_jitter_and_its_timeouts_fire() {
    if is_child() {
        return http_servers_behind_jitter();
    }
    let ns = NetNs::new();
    let server = ns.spawn_child(
        "http_server_answers_everything_under_loss_and_jitter_and_its_timeouts_fire",
        &[],
    );
    let (load, timed) = server.addr.split_once(' ').unwrap();
    let (load, timed): (SocketAddr, SocketAddr) = (load.parse().unwrap(), timed.parse().unwrap());
    // Connections and first bytes first: SYN retransmission backs off to
    // many seconds, which would make the test's length a lottery; data
    // and FIN retransmissions are what loss exercises here.
    let conns: Vec<_> = (0..8).map(|_| http_util::Client::connect(load)).collect();
    // The header timeout: half a head, then nothing; the server closes.
    let t0 = Instant::now();
    let mut slow = http_util::Client::connect(timed);
    slow.send(b"GET / HTTP/1.1\r\nHo");
    // The keep-alive timeout: one answered request, then idle.
    let mut idle = http_util::Client::connect(timed);
    let t1 = Instant::now();
    idle.send(b"GET /once HTTP/1.1\r\nHost: ns\r\n\r\n");
    assert_eq!(idle.response().text(), "once");
    ns.loss(30);

    let slow_closed = sylvan::spawn(move || {
        let r = slow.read_to_end();
        (
            t0.elapsed(),
            r.map(|b| String::from_utf8_lossy(&b).into_owned()),
        )
    });
    let idle_closed = sylvan::spawn(move || {
        let r = idle.read_to_end();
        (t1.elapsed(), r)
    });
    let workers: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            sylvan::spawn(move || {
                for j in 0..5 {
                    let path = format!("{i}-{j}");
                    c.send(format!("GET /{path} HTTP/1.1\r\nHost: ns\r\n\r\n").as_bytes());
                    let resp = c.response_to(false).expect("a response");
                    assert_eq!((resp.status, resp.text()), (200, path));
                }
            })
        })
        .collect();

    sylvan::timeout(Duration::from_secs(120), || {
        for w in workers {
            w.join().expect("every request answered");
        }
    })
    .expect("the requests finish");
    let (after, r) = slow_closed.join().unwrap();
    let r = r.expect("closed cleanly");
    assert!(after >= HEADER_TIMEOUT, "closed after {after:?}");
    assert!(r.is_empty() || r.starts_with("HTTP/1.1 408"), "{r:?}");
    let (after, r) = idle_closed.join().unwrap();
    assert_eq!(r.expect("closed cleanly"), b"");
    assert!(after >= KEEP_ALIVE_TIMEOUT, "closed after {after:?}");
    assert!(
        ns.dropped() > 0,
        "the kernel dropped nothing: the loss rule is not working"
    );
}
