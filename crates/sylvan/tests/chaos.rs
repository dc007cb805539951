//! `sylvan::chaos`: each toxic's effect on a real client and server over
//! loopback, toxicity, down/up, changes at run time, bad input, clean stop.
//!
//! Timing assertions are lower bounds only ("took at least the latency"),
//! measured on sylvan's clock, which the proxy's toxics use too. Every test
//! is bounded by a watchdog thread that aborts the run if it hangs.

mod util;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sylvan::chaos::{ChaosError, ChaosProxy, Direction, ProxyStats, Toxic, ToxicInfo};
use sylvan::net::{ServerHandle, TcpStream};
use sylvan::sync::{Event, Queue};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn now() -> Instant {
    sylvan::time::now()
}

/// Aborts the test process if the test is still running after `limit`.
struct Bound(#[allow(dead_code)] mpsc::Sender<()>);

fn bound(limit: Duration) -> Bound {
    let (tx, rx) = mpsc::channel::<()>();
    let name = std::thread::current().name().unwrap_or("?").to_owned();
    std::thread::spawn(move || {
        if rx.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
            eprintln!("test {name} still running after {limit:?}: aborting");
            std::process::abort();
        }
    });
    Bound(tx)
}

fn echo_server() -> ServerHandle {
    sylvan::serve(sylvan::listen("127.0.0.1:0").unwrap(), |c: TcpStream, _| {
        let mut buf = [0; 16 * 1024];
        loop {
            let n = (&c).read(&mut buf)?;
            if n == 0 {
                return c.shutdown(Shutdown::Write);
            }
            (&c).write_all(&buf[..n])?;
        }
    })
}

/// How a server connection's input ended: `Ok` for EOF, or the error kind.
type Ending = Result<(), io::ErrorKind>;

/// Everything a server connection received, and how its input ended.
type Received = (Vec<u8>, Ending);

/// A server that reads each connection to its end, reporting each chunk on
/// `chunks` as it comes and then everything it got and how it ended.
fn sink_server() -> (ServerHandle, Queue<Vec<u8>>, Queue<Received>) {
    let chunks = Queue::unbounded();
    let ends = Queue::unbounded();
    let (c2, e2) = (chunks.clone(), ends.clone());
    let server = sylvan::serve(
        sylvan::listen("127.0.0.1:0").unwrap(),
        move |c: TcpStream, _| {
            let mut all = Vec::new();
            let mut buf = [0; 16 * 1024];
            let ending = loop {
                match (&c).read(&mut buf) {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        all.extend_from_slice(&buf[..n]);
                        c2.put(buf[..n].to_vec()).map_err(io::Error::from)?;
                    }
                    Err(e) => break Err(e.kind()),
                }
            };
            e2.put((all, ending))?;
            Ok::<_, io::Error>(())
        },
    );
    (server, chunks, ends)
}

fn proxy_to(server: &ServerHandle) -> ChaosProxy {
    ChaosProxy::builder("test")
        .seed(1)
        .start("127.0.0.1:0", server.local_addr().unwrap())
        .unwrap()
}

/// Connects through `proxy` and returns once the proxy has connected to
/// `server`: from then on virtual time can't outrun the set-up.
fn connect_through(proxy: &ChaosProxy, server: &ServerHandle) -> TcpStream {
    let before = server.accepted();
    let c = sylvan::connect(proxy.local_addr()).unwrap();
    while server.accepted() == before {
        sylvan::yield_now();
    }
    c
}

fn round_trip(c: &mut TcpStream, msg: &[u8]) -> io::Result<Vec<u8>> {
    c.write_all(msg)?;
    let mut back = vec![0; msg.len()];
    c.read_exact(&mut back)?;
    Ok(back)
}

/// Reads until the connection ends; `Ok` for EOF or a reset.
fn until_closed(c: &TcpStream) -> io::Result<()> {
    let mut buf = [0; 4096];
    loop {
        match (&*c).read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

fn latency(n: u64) -> Toxic {
    Toxic::Latency {
        latency: ms(n),
        jitter: Duration::ZERO,
    }
}

fn shut(proxy: ChaosProxy, server: ServerHandle) {
    proxy.stop();
    server.stop(Duration::from_secs(1));
}

#[test]
fn latency_adds_at_least_the_latency_to_each_round_trip() {
    let _b = bound(Duration::from_secs(30));
    let server = echo_server();
    let proxy = proxy_to(&server);
    proxy
        .add_toxic("up", latency(100), Direction::Upstream, 1.0)
        .unwrap();
    proxy
        .add_toxic("down", latency(50), Direction::Downstream, 1.0)
        .unwrap();
    let mut c = sylvan::connect(proxy.local_addr()).unwrap();
    for i in 0..3 {
        let msg = format!("ping {i}");
        let t0 = now();
        assert_eq!(round_trip(&mut c, msg.as_bytes()).unwrap(), msg.as_bytes());
        let rtt = now() - t0;
        assert!(rtt >= ms(150), "round trip {i} took {rtt:?}");
    }
    drop(c);
    shut(proxy, server);
}

#[test]
fn latency_with_jitter_keeps_byte_order() {
    let _b = bound(Duration::from_secs(30));
    let server = echo_server();
    let proxy = proxy_to(&server);
    let jittery = Toxic::Latency {
        latency: ms(20),
        jitter: ms(20),
    };
    proxy
        .add_toxic("", jittery, Direction::Upstream, 1.0)
        .unwrap();
    let c = sylvan::connect(proxy.local_addr()).unwrap();
    c.set_nodelay(true).unwrap();
    let writer = {
        let c = c.try_clone().unwrap();
        sylvan::spawn(move || -> io::Result<Vec<u8>> {
            let mut sent = Vec::new();
            for i in 0..100u32 {
                let msg = format!("[{i}]");
                (&c).write_all(msg.as_bytes())?;
                sent.extend_from_slice(msg.as_bytes());
                sylvan::sleep(ms(1))?; // separate chunks, so each gets its own delay
            }
            Ok(sent)
        })
    };
    let sent = writer.join().unwrap().unwrap();
    let mut back = vec![0; sent.len()];
    (&c).read_exact(&mut back).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&back),
        String::from_utf8_lossy(&sent)
    );
    drop(c);
    shut(proxy, server);
}

#[test]
fn latency_runs_on_virtual_time() {
    let _b = bound(Duration::from_secs(30));
    let server = echo_server();
    let proxy = proxy_to(&server);
    let mut c = connect_through(&proxy, &server);
    sylvan::time::pause();
    proxy
        .add_toxic("slow", latency(3_600_000), Direction::Downstream, 1.0)
        .unwrap();
    let t0 = now();
    assert_eq!(round_trip(&mut c, b"an hour").unwrap(), b"an hour");
    assert!(now() - t0 >= Duration::from_secs(3600));
    drop(c);
    shut(proxy, server);
    sylvan::time::resume();
}

#[test]
fn bandwidth_limits_throughput() {
    let _b = bound(Duration::from_secs(30));
    let server = echo_server();
    let proxy = proxy_to(&server);
    proxy
        .add_toxic(
            "thin",
            Toxic::Bandwidth { rate_kb_per_s: 200 },
            Direction::Upstream,
            1.0,
        )
        .unwrap();
    let c = sylvan::connect(proxy.local_addr()).unwrap();
    let data = pattern(100_000); // 0.5 s at 200 KB/s
    let t0 = now();
    let writer = {
        let (c, data) = (c.try_clone().unwrap(), data.clone());
        sylvan::spawn(move || (&c).write_all(&data))
    };
    let mut back = vec![0; data.len()];
    (&c).read_exact(&mut back).unwrap();
    let took = now() - t0;
    writer.join().unwrap().unwrap();
    assert!(back == data, "bytes changed on the way");
    assert!(took >= ms(500), "100 KB at 200 KB/s took only {took:?}");
    assert_eq!(proxy.stats().bytes_upstream, 100_000);
    assert_eq!(proxy.stats().bytes_downstream, 100_000);
    drop(c);
    shut(proxy, server);
}

#[test]
fn slow_close_delays_the_close() {
    let _b = bound(Duration::from_secs(30));
    let closed_at = Event::new();
    let server = {
        let closed_at = closed_at.clone();
        sylvan::serve(
            sylvan::listen("127.0.0.1:0").unwrap(),
            move |c: TcpStream, _| {
                (&c).write_all(b"bye")?;
                c.shutdown(Shutdown::Write)?;
                let _ = closed_at.send(now());
                Ok::<_, io::Error>(())
            },
        )
    };
    let proxy = proxy_to(&server);
    proxy
        .add_toxic(
            "linger",
            Toxic::SlowClose { delay: ms(300) },
            Direction::Downstream,
            1.0,
        )
        .unwrap();
    let mut c = sylvan::connect(proxy.local_addr()).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    let eof_at = now();
    assert_eq!(got, b"bye");
    let held = eof_at - closed_at.wait().unwrap();
    assert!(held >= ms(300), "the FIN was held only {held:?}");
    drop(c);
    shut(proxy, server);
}

#[test]
fn timeout_blackholes_then_closes() {
    let _b = bound(Duration::from_secs(30));
    let (server, _chunks, ends) = sink_server();
    let proxy = proxy_to(&server);
    proxy
        .add_toxic(
            "hole",
            Toxic::Timeout { timeout: ms(300) },
            Direction::Upstream,
            1.0,
        )
        .unwrap();
    let t0 = now();
    let c = sylvan::connect(proxy.local_addr()).unwrap();
    (&c).write_all(b"into the void").unwrap();
    until_closed(&c).unwrap();
    let took = now() - t0;
    assert!(took >= ms(300), "closed after {took:?}");
    let (got, _) = ends.get().unwrap();
    assert!(got.is_empty(), "the server got {got:?} through a blackhole");
    drop(c);
    shut(proxy, server);
}

#[test]
fn timeout_zero_holds_until_removed_then_closes() {
    let _b = bound(Duration::from_secs(30));
    let (server, _chunks, ends) = sink_server();
    let proxy = proxy_to(&server);
    let c = connect_through(&proxy, &server);
    sylvan::time::pause();
    proxy
        .add_toxic(
            "hole",
            Toxic::Timeout {
                timeout: Duration::ZERO,
            },
            Direction::Upstream,
            1.0,
        )
        .unwrap();
    (&c).write_all(b"anyone?").unwrap();
    // An hour of virtual time: still open, nothing through.
    c.set_read_timeout(Some(Duration::from_secs(3600))).unwrap();
    let err = (&c).read(&mut [0; 8]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(proxy.connections(), 1);
    c.set_read_timeout(None).unwrap();
    // Removing it closes the connection, whose stream lost bytes.
    proxy.remove_toxic("hole").unwrap();
    until_closed(&c).unwrap();
    let (got, _) = ends.get().unwrap();
    assert!(got.is_empty());
    assert_eq!(proxy.connections(), 0);
    drop(c);
    shut(proxy, server);
    sylvan::time::resume();
}

#[test]
fn reset_peer_resets_both_sides() {
    let _b = bound(Duration::from_secs(30));
    let (server, _chunks, ends) = sink_server();
    let proxy = proxy_to(&server);
    proxy
        .add_toxic(
            "rst",
            Toxic::ResetPeer { timeout: ms(200) },
            Direction::Upstream,
            1.0,
        )
        .unwrap();
    let c = sylvan::connect(proxy.local_addr()).unwrap();
    let t0 = now();
    (&c).write_all(b"hello").unwrap();
    let err = (&c).read(&mut [0; 8]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
    assert!(now() - t0 >= ms(200));
    let (got, ending) = ends.get().unwrap();
    assert!(got.is_empty());
    assert_eq!(ending, Err(io::ErrorKind::ConnectionReset));
    drop(c);
    shut(proxy, server);
}

#[test]
fn slicer_delivers_every_byte_in_many_reads() {
    let _b = bound(Duration::from_secs(30));
    let (server, chunks, ends) = sink_server();
    let proxy = proxy_to(&server);
    let c = connect_through(&proxy, &server);
    // Virtual time: slices can't pile up while this thread is descheduled.
    sylvan::time::pause();
    proxy
        .add_toxic(
            "slices",
            Toxic::Slicer {
                average_size: 10,
                size_variation: 5,
                delay: ms(1),
            },
            Direction::Upstream,
            1.0,
        )
        .unwrap();
    let data = pattern(1000);
    (&c).write_all(&data).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let (got, ending) = ends.get().unwrap();
    assert!(got == data, "bytes changed on the way");
    assert_eq!(ending, Ok(()));
    let mut reads = 0;
    while chunks.try_get().is_some() {
        reads += 1;
    }
    assert!(reads >= 2, "{reads} reads");
    drop(c);
    shut(proxy, server);
    sylvan::time::resume();
}

#[test]
fn limit_data_closes_after_exactly_n_bytes() {
    let _b = bound(Duration::from_secs(30));
    let (server, _chunks, ends) = sink_server();
    let proxy = proxy_to(&server);
    proxy
        .add_toxic(
            "cap",
            Toxic::LimitData { bytes: 1000 },
            Direction::Upstream,
            1.0,
        )
        .unwrap();
    let c = sylvan::connect(proxy.local_addr()).unwrap();
    let data = pattern(5000);
    for part in data.chunks(500) {
        // Counted across chunks; writes after the close may fail.
        if (&c).write_all(part).is_err() {
            break;
        }
    }
    let (got, ending) = ends.get().unwrap();
    assert_eq!(got.len(), 1000);
    assert!(got == data[..1000], "bytes changed on the way");
    assert_eq!(ending, Ok(()));
    until_closed(&c).unwrap();
    drop(c);
    shut(proxy, server);
}

#[test]
fn half_open_stops_one_direction_while_the_other_works() {
    let _b = bound(Duration::from_secs(30));
    let chunks = Queue::unbounded();
    let server = {
        let chunks = chunks.clone();
        // Echoes, and reports what it receives.
        sylvan::serve(
            sylvan::listen("127.0.0.1:0").unwrap(),
            move |c: TcpStream, _| {
                let mut buf = [0; 1024];
                loop {
                    let n = (&c).read(&mut buf)?;
                    if n == 0 {
                        return Ok::<_, io::Error>(());
                    }
                    chunks.put(buf[..n].to_vec())?;
                    (&c).write_all(&buf[..n])?;
                }
            },
        )
    };
    let proxy = proxy_to(&server);
    let mut c = sylvan::connect(proxy.local_addr()).unwrap();
    assert_eq!(round_trip(&mut c, b"before").unwrap(), b"before");
    assert_eq!(chunks.get().unwrap(), b"before");

    proxy
        .add_toxic("mute", Toxic::HalfOpen, Direction::Downstream, 1.0)
        .unwrap();
    c.set_read_timeout(Some(ms(200))).unwrap();
    for msg in [&b"one"[..], b"two", b"three"] {
        c.write_all(msg).unwrap();
        // Upstream still works: the server gets it (and echoes it)...
        assert_eq!(chunks.get().unwrap(), msg);
        // ...but nothing comes back, and nothing says so.
        let err = c.read(&mut [0; 16]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
    assert_eq!(proxy.connections(), 1);
    drop(c);
    shut(proxy, server);
}

#[test]
fn half_open_hides_a_dead_server() {
    let _b = bound(Duration::from_secs(30));
    // The server takes one message and goes away.
    let server = sylvan::serve(sylvan::listen("127.0.0.1:0").unwrap(), |c: TcpStream, _| {
        (&c).read(&mut [0; 16]).map(|_| ())
    });
    let proxy = proxy_to(&server);
    proxy
        .add_toxic("mute", Toxic::HalfOpen, Direction::Downstream, 1.0)
        .unwrap();
    let c = sylvan::connect(proxy.local_addr()).unwrap();
    c.set_read_timeout(Some(ms(100))).unwrap();
    // Neither its FIN nor the RST its host sends for later writes reach us.
    for _ in 0..5 {
        (&c).write_all(b"hello?").unwrap();
        let err = (&c).read(&mut [0; 16]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
    assert_eq!(proxy.connections(), 1);
    drop(c);
    shut(proxy, server);
}

#[test]
fn toxicity_zero_never_applies_and_one_always_does() {
    let _b = bound(Duration::from_secs(30));
    let server = echo_server();
    let proxy = proxy_to(&server);
    let cut = Toxic::LimitData { bytes: 0 };

    proxy
        .add_toxic("never", cut.clone(), Direction::Upstream, 0.0)
        .unwrap();
    for _ in 0..20 {
        let mut c = sylvan::connect(proxy.local_addr()).unwrap();
        assert_eq!(round_trip(&mut c, b"fine").unwrap(), b"fine");
    }
    proxy.remove_toxic("never").unwrap();

    proxy
        .add_toxic("always", cut, Direction::Upstream, 1.0)
        .unwrap();
    for _ in 0..20 {
        let c = sylvan::connect(proxy.local_addr()).unwrap();
        (&c).write_all(b"cut").unwrap();
        let mut got = Vec::new();
        let r = (&c).read_to_end(&mut got);
        assert!(got.is_empty(), "{got:?} came back through limit_data 0");
        assert!(r.is_ok() || r.unwrap_err().kind() == io::ErrorKind::ConnectionReset);
    }
    shut(proxy, server);
}

#[test]
fn toxicity_is_drawn_per_connection() {
    let _b = bound(Duration::from_secs(30));
    let server = echo_server();
    let proxy = proxy_to(&server); // seeded: the same draws every run
    proxy
        .add_toxic(
            "",
            Toxic::LimitData { bytes: 0 },
            Direction::Downstream,
            0.5,
        )
        .unwrap();
    let mut cut = 0;
    for _ in 0..100 {
        let mut c = sylvan::connect(proxy.local_addr()).unwrap();
        if round_trip(&mut c, b"?").is_err() {
            cut += 1;
        }
    }
    assert!((20..=80).contains(&cut), "{cut} of 100 connections cut");
    shut(proxy, server);
}

#[test]
fn down_refuses_then_recovers() {
    let _b = bound(Duration::from_secs(30));
    let server = echo_server();
    let proxy = proxy_to(&server);
    let addr = proxy.local_addr();
    let mut c = sylvan::connect(addr).unwrap();
    assert_eq!(round_trip(&mut c, b"up").unwrap(), b"up");

    proxy.set_enabled(false).unwrap();
    assert!(!proxy.is_enabled());
    assert_eq!(proxy.connections(), 0);
    until_closed(&c).unwrap();
    for _ in 0..3 {
        let err = sylvan::connect(addr).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }

    proxy.set_enabled(true).unwrap();
    assert_eq!(proxy.local_addr(), addr);
    let mut c = sylvan::connect(addr).unwrap();
    assert_eq!(round_trip(&mut c, b"back").unwrap(), b"back");
    drop(c);
    shut(proxy, server);
}

#[test]
fn toxics_changed_at_run_time_apply_to_an_open_connection() {
    let _b = bound(Duration::from_secs(30));
    let server = echo_server();
    let proxy = proxy_to(&server);
    let mut c = sylvan::connect(proxy.local_addr()).unwrap();
    assert_eq!(round_trip(&mut c, b"plain").unwrap(), b"plain");

    proxy
        .add_toxic("lag", latency(200), Direction::Downstream, 1.0)
        .unwrap();
    let t0 = now();
    assert_eq!(round_trip(&mut c, b"lagged").unwrap(), b"lagged");
    assert!(now() - t0 >= ms(200));

    // Updated by name, as an HTTP API would.
    let mut t = proxy.toxic("lag").unwrap().toxic;
    t.set_attribute("latency", 400).unwrap();
    proxy.update_toxic("lag", t, 1.0).unwrap();
    let t0 = now();
    assert_eq!(round_trip(&mut c, b"more").unwrap(), b"more");
    assert!(now() - t0 >= ms(400));

    proxy.remove_toxic("lag").unwrap();
    assert_eq!(round_trip(&mut c, b"plain again").unwrap(), b"plain again");

    // A limit added now counts from now.
    proxy
        .add_toxic(
            "cap",
            Toxic::LimitData { bytes: 4 },
            Direction::Downstream,
            1.0,
        )
        .unwrap();
    c.write_all(b"123456").unwrap();
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    assert_eq!(got, b"1234");
    drop(c);
    shut(proxy, server);
}

#[test]
fn a_timeout_added_to_an_idle_connection_closes_it() {
    let _b = bound(Duration::from_secs(30));
    let server = echo_server();
    let proxy = proxy_to(&server);
    let mut c = sylvan::connect(proxy.local_addr()).unwrap();
    assert_eq!(round_trip(&mut c, b"hi").unwrap(), b"hi");
    // No byte moves from now on; the pumps are idle when the toxic comes.
    let t0 = now();
    proxy
        .add_toxic(
            "",
            Toxic::Timeout { timeout: ms(200) },
            Direction::Downstream,
            1.0,
        )
        .unwrap();
    until_closed(&c).unwrap();
    assert!(now() - t0 >= ms(200));
    assert_eq!(proxy.connections(), 0);
    drop(c);
    shut(proxy, server);
}

#[test]
fn half_close_passes_through_without_ending_the_other_direction() {
    let _b = bound(Duration::from_secs(30));
    let server = echo_server(); // echoes until EOF, then shuts down its side
    let proxy = proxy_to(&server);
    let c = sylvan::connect(proxy.local_addr()).unwrap();
    (&c).write_all(b"all of it").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    (&c).read_to_end(&mut got).unwrap();
    assert_eq!(got, b"all of it");
    drop(c);
    shut(proxy, server);
}

#[test]
fn an_unreachable_upstream_closes_the_client_promptly() {
    let _b = bound(Duration::from_secs(30));
    // Refused: nothing listens there any more.
    let port = sylvan::listen("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = ChaosProxy::start("127.0.0.1:0", format!("127.0.0.1:{port}")).unwrap();
    for _ in 0..3 {
        let c = sylvan::connect(proxy.local_addr()).unwrap();
        until_closed(&c).unwrap();
    }
    let s = proxy.stats();
    assert_eq!((s.accepted, s.upstream_failures, s.connections), (3, 3, 0));
    proxy.stop();

    // Silent: SYNs dropped, so only the connect timeout ends it.
    let (hole, _fillers) = util::blackhole_listener("127.0.0.1");
    let proxy = ChaosProxy::builder("hole")
        .connect_timeout(ms(200))
        .start("127.0.0.1:0", hole.local_addr().unwrap())
        .unwrap();
    let t0 = now();
    let c = sylvan::connect(proxy.local_addr()).unwrap();
    until_closed(&c).unwrap();
    assert!(now() - t0 >= ms(200));
    assert_eq!(proxy.stats().upstream_failures, 1);
    proxy.stop();
}

#[test]
fn a_reset_from_one_peer_reaches_the_other() {
    let _b = bound(Duration::from_secs(30));
    let (server, chunks, ends) = sink_server();
    let proxy = proxy_to(&server);
    let c = sylvan::connect(proxy.local_addr()).unwrap();
    (&c).write_all(b"x").unwrap();
    assert_eq!(chunks.get().unwrap(), b"x"); // connected all the way
    c.set_linger(Some(Duration::ZERO)).unwrap();
    drop(c); // RST
    let (_, ending) = ends.get().unwrap();
    assert_eq!(ending, Err(io::ErrorKind::ConnectionReset));
    shut(proxy, server);
}

#[test]
fn bad_input_gets_a_clear_error() {
    let _b = bound(Duration::from_secs(30));
    let proxy = ChaosProxy::start("127.0.0.1:0", "127.0.0.1:9").unwrap();
    for t in [-0.5, 1.5, f32::NAN, f32::INFINITY] {
        let err = proxy
            .add_toxic("x", Toxic::HalfOpen, Direction::Upstream, t)
            .unwrap_err();
        assert!(matches!(err, ChaosError::InvalidToxicity(v) if v.to_bits() == t.to_bits()));
        assert!(err.to_string().contains("toxicity"), "{err}");
    }
    let err = proxy
        .add_toxic(
            "x",
            Toxic::Bandwidth { rate_kb_per_s: 0 },
            Direction::Upstream,
            1.0,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid bandwidth attribute \"rate\": must be at least 1 KB/s"
    );
    let slicer = Toxic::Slicer {
        average_size: 0,
        size_variation: 0,
        delay: Duration::ZERO,
    };
    assert!(matches!(
        proxy.add_toxic("x", slicer, Direction::Upstream, 1.0),
        Err(ChaosError::InvalidAttribute {
            attribute: "average_size",
            ..
        })
    ));
    assert!(proxy.toxics().is_empty(), "a rejected toxic was installed");

    proxy
        .add_toxic("x", Toxic::HalfOpen, Direction::Upstream, 1.0)
        .unwrap();
    let err = proxy
        .add_toxic("x", Toxic::HalfOpen, Direction::Downstream, 1.0)
        .unwrap_err();
    assert_eq!(err, ChaosError::ToxicExists("x".into()));
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::AlreadyExists);
    let err = proxy.remove_toxic("y").unwrap_err();
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::NotFound);
    assert!(proxy.update_toxic("x", Toxic::HalfOpen, f32::NAN).is_err());
    assert_eq!(proxy.toxic("x").unwrap().toxicity, 1.0);

    let err = proxy.set_upstream("nowhere").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid upstream address \"nowhere\": expected HOST:PORT"
    );
    let err = ChaosProxy::start("127.0.0.1:0", "host:99999").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);

    let err = Toxic::from_attributes("latency", [("latency", -5)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid latency attribute \"latency\": -5 is negative"
    );
    let err = Toxic::from_attributes("latency", [("rate", 5)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the latency toxic has no attribute \"rate\""
    );
    assert!("up".parse::<Direction>().is_err());
    proxy.stop();
}

#[test]
fn stop_leaves_no_green_threads_or_sockets_behind() {
    let _b = bound(Duration::from_secs(30));
    let before = sylvan::debug::stats();
    let server = echo_server();
    let proxy = proxy_to(&server);
    proxy
        .add_toxic("lag", latency(5), Direction::Upstream, 1.0)
        .unwrap();
    proxy
        .add_toxic(
            "hole",
            Toxic::Timeout {
                timeout: Duration::ZERO,
            },
            Direction::Downstream,
            0.5,
        )
        .unwrap();
    let mut clients = Vec::new();
    for i in 0..20 {
        let c = sylvan::connect(proxy.local_addr()).unwrap();
        (&c).write_all(format!("hello {i}").as_bytes()).unwrap();
        clients.push(c);
    }
    // Some connections mid-flight, some blackholed, one mid-connect.
    while proxy.connections() < 20 {
        sylvan::yield_now();
    }
    let _late = sylvan::connect(proxy.local_addr()).unwrap();
    let during = sylvan::debug::stats();
    assert!(during.green_threads > before.green_threads + 20);
    proxy.stop();
    for c in &clients {
        until_closed(c).unwrap();
    }
    drop(clients);
    drop(_late);
    server.stop(Duration::from_secs(1));
    let after = sylvan::debug::stats();
    assert_eq!(after.green_threads, before.green_threads);
    assert_eq!(after.io_sources, before.io_sources);
}

#[test]
fn dropping_the_last_handle_stops_the_proxy() {
    let _b = bound(Duration::from_secs(30));
    let before = sylvan::debug::stats();
    let server = echo_server();
    let proxy = proxy_to(&server);
    let other = proxy.clone();
    let addr = proxy.local_addr();
    let mut c = sylvan::connect(addr).unwrap();
    assert_eq!(round_trip(&mut c, b"hi").unwrap(), b"hi");
    drop(proxy);
    assert_eq!(round_trip(&mut c, b"still").unwrap(), b"still"); // a clone remains
    drop(other);
    until_closed(&c).unwrap();
    assert!(sylvan::connect(addr).is_err());
    drop(c);
    server.stop(Duration::from_secs(1));
    for _ in 0..10 {
        sylvan::yield_now();
    }
    let after = sylvan::debug::stats();
    assert_eq!(after.green_threads, before.green_threads);
    assert_eq!(after.io_sources, before.io_sources);
}

#[test]
fn public_types_are_send_and_sync_where_they_should_be() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Toxic>();
    send_sync::<Direction>();
    send_sync::<ToxicInfo>();
    send_sync::<ChaosError>();
    send_sync::<ProxyStats>();
}
