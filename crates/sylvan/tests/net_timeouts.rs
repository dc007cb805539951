//! Every kind of network timeout gives the documented error, never a hang.

mod util;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use sylvan::net::{Connector, TcpStream};

/// Generous slack for a loaded CI machine: timeouts must fire no earlier
/// than asked and not much later.
const SLACK: Duration = Duration::from_millis(1500);

fn assert_took(t0: Instant, at_least: Duration) {
    let took = t0.elapsed();
    assert!(
        took >= at_least,
        "returned after {took:?}, before {at_least:?}"
    );
    assert!(
        took < at_least + SLACK,
        "returned after {took:?}, long after {at_least:?}"
    );
}

fn pair() -> (TcpStream, TcpStream) {
    let l = sylvan::listen("127.0.0.1:0").unwrap();
    let c = sylvan::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

#[test]
fn connect_timeout_against_a_full_backlog() {
    let (l, _fill) = util::blackhole_listener("127.0.0.1");
    let addr = l.local_addr().unwrap();
    let t0 = Instant::now();
    let err = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert_took(t0, Duration::from_millis(300));
}

#[test]
fn connector_deadline_is_overall_not_per_address() {
    let (l, _fill) = util::blackhole_listener("127.0.0.1");
    let addr = l.local_addr().unwrap();
    let c = Connector::new()
        .connect_timeout(Duration::from_millis(600))
        .attempt_delay(Duration::from_millis(100))
        .resolver(move |_, _| Ok(vec![addr, addr, addr, addr]));
    let t0 = Instant::now();
    let err = c.connect("many.test:1").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(err.to_string().contains("many.test:1"), "{err}");
    assert_took(t0, Duration::from_millis(600));
}

#[test]
fn scoped_timeout_bounds_a_plain_connect() {
    let (l, _fill) = util::blackhole_listener("127.0.0.1");
    let addr = l.local_addr().unwrap();
    let t0 = Instant::now();
    let r = sylvan::timeout(Duration::from_millis(200), || sylvan::connect(addr));
    assert!(r.is_err());
    assert_took(t0, Duration::from_millis(200));
}

#[test]
fn happy_eyeballs_moves_on_from_a_blackhole() {
    let (l, _fill) = util::blackhole_listener("127.0.0.1");
    let dead = l.local_addr().unwrap();
    let live = sylvan::listen("127.0.0.1:0").unwrap();
    let live_addr = live.local_addr().unwrap();
    let c = Connector::new()
        .connect_timeout(Duration::from_secs(10))
        .resolver(move |_, _| Ok(vec![dead, live_addr]));
    let t0 = Instant::now();
    let s = c.connect("dual.test:80").unwrap();
    assert_eq!(s.peer_addr().unwrap(), live_addr);
    // The second attempt started after the 250 ms attempt delay.
    assert_took(t0, Duration::from_millis(250));
}

#[test]
fn happy_eyeballs_tries_ipv6_first() {
    let v4_listener = sylvan::listen("127.0.0.1:0").unwrap();
    let v4 = v4_listener.local_addr().unwrap();
    let v6_listener = sylvan::listen("[::1]:0").unwrap();
    let v6 = v6_listener.local_addr().unwrap();
    let c = Connector::new().resolver(move |_, _| Ok(vec![v4, v6]));
    // Both accept at once; the IPv6 attempt starts first and wins.
    let s = c.connect("both.test:1").unwrap();
    assert!(s.peer_addr().unwrap().is_ipv6());
    drop(v4_listener);
}

#[test]
fn earlier_attempts_keep_running_when_the_next_starts() {
    // First address: blackholed now, unblocked 400 ms in; the kernel's SYN
    // retransmission then completes it. Second address: blackholed for good.
    let (slow, slow_fill) = util::blackhole_listener("127.0.0.1");
    let (dead, _dead_fill) = util::blackhole_listener("127.0.0.1");
    let (slow_addr, dead_addr) = (slow.local_addr().unwrap(), dead.local_addr().unwrap());
    let slow = sylvan::net::TcpListener::from_std(slow).unwrap();
    let unblocker = sylvan::spawn(move || {
        sylvan::sleep(Duration::from_millis(400)).unwrap();
        drop(slow_fill);
        // Drain the queue so the retransmitted SYN finds room.
        let a = slow.accept();
        (slow, a)
    });
    let c = Connector::new()
        .connect_timeout(Duration::from_secs(10))
        .resolver(move |_, _| Ok(vec![slow_addr, dead_addr]));
    let s = c.connect("retry.test:1").unwrap();
    assert_eq!(s.peer_addr().unwrap(), slow_addr);
    drop(unblocker);
}

#[test]
fn read_timeout_with_an_idle_peer() {
    let (c, _s) = pair();
    c.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let t0 = Instant::now();
    let err = (&c).read(&mut [0; 8]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert_took(t0, Duration::from_millis(100));
    // The stream still works after a timeout.
    (&_s).write_all(b"late").unwrap();
    let mut buf = [0; 4];
    (&c).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"late");
}

#[test]
fn zero_timeouts_are_rejected_as_std_does() {
    let (c, _s) = pair();
    assert_eq!(
        c.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );
    assert_eq!(
        c.set_write_timeout(Some(Duration::ZERO))
            .unwrap_err()
            .kind(),
        std::io::ErrorKind::InvalidInput
    );
    let addr = c.peer_addr().unwrap();
    assert_eq!(
        TcpStream::connect_timeout(&addr, Duration::ZERO)
            .unwrap_err()
            .kind(),
        std::io::ErrorKind::InvalidInput
    );
}

#[test]
fn write_timeout_with_a_peer_that_never_reads() {
    let (c, _s) = pair();
    c.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let chunk = vec![7u8; 1 << 20];
    let t0 = Instant::now();
    let mut written = 0usize;
    let err = loop {
        match (&c).write(&chunk) {
            Ok(n) => written += n,
            Err(e) => break e,
        }
        assert!(written < 1 << 30, "the socket buffers never filled");
    };
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(written > 0);
    assert!(t0.elapsed() >= Duration::from_millis(200));
}

#[test]
fn scoped_deadline_on_read_is_timed_out() {
    let (c, _s) = pair();
    let r = sylvan::timeout(Duration::from_millis(50), || (&c).read(&mut [0; 8]));
    assert!(r.is_err(), "the scope's own deadline fired");
    let inner = sylvan::timeout(Duration::from_secs(60), || {
        sylvan::timeout(Duration::from_millis(50), || (&c).read(&mut [0; 8]))
            .unwrap_or_else(|_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "inner")))
    });
    assert_eq!(
        inner.unwrap().unwrap_err().kind(),
        std::io::ErrorKind::TimedOut
    );
}

#[test]
fn half_closed_peer_reads_eof_and_still_accepts_writes() {
    let (c, s) = pair();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!((&c).read(&mut [0; 8]).unwrap(), 0, "end of stream");
    (&c).write_all(b"still open").unwrap();
    let mut buf = [0; 10];
    (&s).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still open");
}

#[test]
fn peer_reset_is_connection_reset() {
    let (c, s) = pair();
    let reader = sylvan::spawn(move || {
        let mut buf = [0; 8];
        (&c).read(&mut buf).map(|_| c)
    });
    sylvan::yield_now();
    s.set_linger(Some(Duration::ZERO)).unwrap();
    drop(s); // RST
    let err = reader.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
}

#[test]
fn write_to_a_reset_peer_fails_without_hanging() {
    let (c, s) = pair();
    s.set_linger(Some(Duration::ZERO)).unwrap();
    drop(s);
    let chunk = [1u8; 4096];
    let err = loop {
        if let Err(e) = (&c).write(&chunk) {
            break e;
        }
    };
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "{err}"
    );
}
