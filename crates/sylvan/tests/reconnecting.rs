//! `Reconnecting`: states, herd protection, backoff health rule, on_connect,
//! DNS re-resolution, bounded waiters, heartbeat half-open detection.

mod util;

use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, BufReader, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use sylvan::resilience::{Backoff, CallError, ConnState, Heartbeat, Jitter, Reconnecting};
use sylvan::sync::{Queue, WatchReceiver};

/// A fake connection to a fake server that can be "down".
#[derive(Clone, Default)]
struct FakeServer {
    down: Rc<Cell<bool>>,
    attempts: Rc<RefCell<Vec<Instant>>>,
}

struct FakeConn;

impl FakeServer {
    fn connector(&self) -> impl Fn() -> io::Result<FakeConn> + 'static {
        let s = self.clone();
        move || {
            s.attempts.borrow_mut().push(sylvan::time::now());
            if s.down.get() {
                Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "fake server is down",
                ))
            } else {
                Ok(FakeConn)
            }
        }
    }
}

fn broken(_: &mut FakeConn) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::ConnectionReset,
        "server went away",
    ))
}

/// Waits (bounded, on virtual time) until the watched state is `want`.
fn wait_state(w: &mut WatchReceiver<ConnState>, want: ConnState) {
    sylvan::timeout(Duration::from_secs(3600), || {
        while *w.borrow_and_update() != want {
            w.changed().unwrap();
        }
    })
    .unwrap_or_else(|_| panic!("never became {want}"));
}

#[test]
fn states_follow_grpc_transitions() {
    sylvan::time::pause();
    let server = FakeServer::default();
    let r = Reconnecting::builder(server.connector())
        .backoff(Backoff::new().jitter(Jitter::None).unwrap())
        .build();
    let mut w = r.watch();
    assert_eq!(r.state(), ConnState::Idle);
    assert_eq!(*w.borrow(), ConnState::Idle);
    // Fail-fast, gRPC's way: the first call connects and goes through.
    r.call(|_| Ok(())).unwrap();
    assert!(w.has_changed());
    assert_eq!(*w.borrow_and_update(), ConnState::Ready);
    server.down.set(true);
    assert!(matches!(r.call(broken), Err(CallError::Io(_))));
    assert_eq!(*w.borrow_and_update(), ConnState::TransientFailure);
    // The reconnector waits its backoff, then tries (Connecting) and fails
    // again; the fake connects without blocking, so a watcher may only see
    // that the state changed, back to TransientFailure.
    let t = sylvan::time::now();
    while server.attempts.borrow().len() < 2 {
        w.changed().unwrap();
    }
    assert_eq!(sylvan::time::now() - t, Duration::from_secs(1), "backoff");
    assert_eq!(*w.borrow_and_update(), ConnState::TransientFailure);
    server.down.set(false);
    wait_state(&mut w, ConnState::Ready);
    assert_eq!(r.reconnects(), 1);
    r.shutdown();
    assert!(w.has_changed());
    assert_eq!(*w.borrow_and_update(), ConnState::Shutdown);
    assert!(matches!(r.call(|_| Ok(())), Err(CallError::Shutdown)));
}

#[test]
fn thundering_herd_first_reconnects_spread_over_the_initial_backoff() {
    sylvan::time::pause();
    let server = FakeServer::default();
    let clients: Vec<_> = (0..1000)
        .map(|_| {
            Reconnecting::builder(server.connector())
                .eager(true)
                .healthy_after(Duration::from_secs(5))
                .build()
        })
        .collect();
    let ready = |c: &Reconnecting<FakeConn>| c.state() == ConnState::Ready;
    while !clients.iter().all(ready) {
        sylvan::yield_now();
    }
    // Healthy for a while, then the server dies for everyone at once.
    sylvan::time::advance(Duration::from_secs(60));
    server.attempts.borrow_mut().clear();
    server.down.set(true);
    let lost_at = sylvan::time::now();
    for c in &clients {
        let _ = c.call(broken);
    }
    // Let every client make its first reconnect attempt.
    while server.attempts.borrow().len() < clients.len() {
        sylvan::time::advance(Duration::from_millis(10));
    }
    let mut buckets = [0usize; 20];
    for t in server.attempts.borrow().iter().take(clients.len()) {
        let ms = t.duration_since(lost_at).as_millis() as usize;
        buckets[(ms / 100).min(19)] += 1;
    }
    let worst = *buckets.iter().max().unwrap();
    assert!(
        worst * 100 <= clients.len() * 15,
        "a 100 ms bucket holds {worst} of {} first reconnects: {buckets:?}",
        clients.len()
    );
    for c in &clients {
        c.shutdown();
    }
}

#[test]
fn backoff_is_not_reset_by_a_connection_that_dies_at_once() {
    sylvan::time::pause();
    let server = FakeServer::default();
    let r = Reconnecting::builder(server.connector())
        .backoff(Backoff::new().jitter(Jitter::None).unwrap())
        .healthy_after(Duration::from_secs(5))
        .wait_for_ready(true)
        .build();
    // Each connection dies right after it is made.
    for _ in 0..5 {
        let _ = r.call(broken);
    }
    let times = server.attempts.borrow().clone();
    let gaps: Vec<u128> = times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_millis())
        .collect();
    // 1 s, 1.6 s, 2.56 s, 4.096 s: growing, never back to a splay.
    assert_eq!(gaps, vec![1000, 1600, 2560, 4096], "{gaps:?}");
    r.shutdown();
}

#[test]
fn backoff_resets_after_a_healthy_connection() {
    sylvan::time::pause();
    let server = FakeServer::default();
    let r = Reconnecting::builder(server.connector())
        .backoff(Backoff::new().jitter(Jitter::None).unwrap())
        .healthy_after(Duration::from_secs(5))
        .first_reconnect_jitter(false)
        .wait_for_ready(true)
        .build();
    for _ in 0..3 {
        let _ = r.call(broken);
    }
    r.call(|_| Ok(())).unwrap();
    sylvan::time::advance(Duration::from_secs(10)); // healthy now
    let before = server.attempts.borrow().len();
    let t = sylvan::time::now();
    let _ = r.call(broken);
    r.call(|_| Ok(())).unwrap();
    let attempts = server.attempts.borrow();
    assert_eq!(attempts.len(), before + 1);
    assert_eq!(
        attempts[before], t,
        "reconnects at once after a healthy connection"
    );
    drop(attempts);
    r.shutdown();
}

#[test]
fn waiting_callers_are_bounded_during_an_outage() {
    sylvan::time::pause();
    let server = FakeServer::default();
    server.down.set(true);
    let r = Reconnecting::builder(server.connector())
        .wait_for_ready(true)
        .max_waiters(10)
        .eager(true)
        .build();
    let results = Queue::unbounded();
    let callers: Vec<_> = (0..25)
        .map(|_| {
            let (r, q) = (r.clone(), results.clone());
            sylvan::spawn(move || {
                let out = sylvan::timeout(Duration::from_secs(30), || r.call(|_| Ok(())));
                q.put(matches!(out, Ok(Err(CallError::TooManyWaiters(_)))))
                    .unwrap();
                out.ok().and_then(|r| r.ok()).is_some()
            })
        })
        .collect();
    sylvan::yield_now();
    let mut rejected = 0;
    while let Some(too_many) = results.try_get() {
        rejected += too_many as usize;
    }
    assert_eq!(rejected, 15, "only 10 may wait");
    server.down.set(false);
    let succeeded = callers
        .into_iter()
        .map(|c| c.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(succeeded, 10);
    r.shutdown();
}

#[test]
fn fail_fast_reports_the_last_error() {
    sylvan::time::pause();
    let server = FakeServer::default();
    server.down.set(true);
    let r = Reconnecting::builder(server.connector())
        .eager(true)
        .build();
    while server.attempts.borrow().is_empty() {
        sylvan::yield_now();
    }
    match r.call(|_| Ok(())) {
        Err(CallError::Unavailable {
            state: ConnState::TransientFailure,
            last_error: Some(e),
        }) => {
            assert!(e.to_string().contains("fake server is down"))
        }
        other => panic!("{other:?}"),
    }
    r.shutdown();
}

/// A line server over real TCP: records SUBSCRIBE lines, answers PING.
fn line_server(log: Rc<RefCell<Vec<String>>>) -> (sylvan::net::ServerHandle, std::net::SocketAddr) {
    let l = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = sylvan::serve(l, move |conn, _| -> io::Result<()> {
        let mut lines = BufReader::new(&conn);
        let mut line = String::new();
        while lines.read_line(&mut line)? > 0 {
            log.borrow_mut().push(line.trim().to_string());
            if line.starts_with("PING") {
                (&conn).write_all(b"PONG\n")?;
            }
            line.clear();
        }
        Ok(())
    });
    (server, addr)
}

#[test]
fn on_connect_restores_subscriptions_after_reconnect() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let (server, addr) = line_server(log.clone());
    let r = Reconnecting::builder(move || sylvan::connect(addr))
        .on_connect(|c| (&*c).write_all(b"SUBSCRIBE news\n"))
        .backoff(
            Backoff::new()
                .initial(Duration::from_millis(1))
                .jitter(Jitter::None)
                .unwrap(),
        )
        .first_reconnect_jitter(false)
        .wait_for_ready(true)
        .build();
    r.call(|c| (&*c).write_all(b"PING\n")).unwrap();
    while log.borrow().len() < 2 {
        sylvan::yield_now(); // let the server read SUBSCRIBE and PING
    }
    // The server drops every connection (stop), then comes back on the same port.
    server.stop(Duration::ZERO);
    let _ = r.call(|c| {
        let mut b = [0; 64];
        io::Read::read(&mut &*c, &mut b)?; // PONG or EOF
        io::Read::read(&mut &*c, &mut b).and_then(|n| {
            if n == 0 {
                Err(io::ErrorKind::UnexpectedEof.into())
            } else {
                Ok(())
            }
        })
    });
    let l = sylvan::net::ListenOptions::new().bind(addr).unwrap();
    let log2 = log.clone();
    let server = sylvan::serve(l, move |conn, _| -> io::Result<()> {
        let mut lines = BufReader::new(&conn);
        let mut line = String::new();
        while lines.read_line(&mut line)? > 0 {
            log2.borrow_mut().push(line.trim().to_string());
            line.clear();
        }
        Ok(())
    });
    r.call(|c| (&*c).write_all(b"PING\n")).unwrap();
    let subscribed = sylvan::timeout(Duration::from_secs(10), || {
        while log
            .borrow()
            .iter()
            .filter(|l| *l == "SUBSCRIBE news")
            .count()
            < 2
        {
            sylvan::sleep(Duration::from_millis(1))?;
        }
        Ok::<_, sylvan::Cancelled>(())
    });
    assert!(subscribed.is_ok(), "server log: {:?}", log.borrow());
    assert!(r.reconnects() >= 1);
    r.shutdown();
    server.stop(Duration::ZERO);
}

#[test]
fn dns_is_resolved_again_on_every_attempt() {
    let a = sylvan::listen("127.0.0.1:0").unwrap();
    let b = sylvan::listen("127.0.0.1:0").unwrap();
    let (addr_a, addr_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let lookups = Rc::new(Cell::new(0));
    let l2 = lookups.clone();
    let connector = sylvan::net::Connector::new().resolver(move |host, _| {
        assert_eq!(host, "db.test");
        l2.set(l2.get() + 1);
        // The service moves from A to B after the first lookup.
        Ok(vec![if l2.get() == 1 { addr_a } else { addr_b }])
    });
    let r = Reconnecting::builder(move || connector.connect("db.test:1"))
        .backoff(
            Backoff::new()
                .initial(Duration::from_millis(1))
                .jitter(Jitter::None)
                .unwrap(),
        )
        .first_reconnect_jitter(false)
        .wait_for_ready(true)
        .build();
    let peer = r.call(|c| c.peer_addr()).unwrap();
    assert_eq!(peer, addr_a);
    let _ = r.call(|_| Err::<(), _>(io::Error::new(io::ErrorKind::ConnectionReset, "A died")));
    let peer = r.call(|c| c.peer_addr()).unwrap();
    assert_eq!(peer, addr_b);
    assert_eq!(lookups.get(), 2);
    r.shutdown();
    drop((a, b));
}

#[test]
fn heartbeat_finds_a_half_open_connection() {
    // The server reads pings but stops answering after the first: from the
    // client's side the connection looks open forever.
    sylvan::time::pause();
    let l = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let answered = Rc::new(Cell::new(0));
    let a = answered.clone();
    let server = sylvan::serve(l, move |conn, _| -> io::Result<()> {
        let mut lines = BufReader::new(&conn);
        let mut line = String::new();
        while lines.read_line(&mut line)? > 0 {
            if a.get() == 0 {
                a.set(1);
                (&conn).write_all(b"PONG\n")?;
            }
            line.clear();
        }
        Ok(())
    });
    let interval = Duration::from_secs(10);
    let timeout = Duration::from_secs(3);
    let r = Reconnecting::builder(move || sylvan::connect(addr).map(BufReader::new))
        .heartbeat(Heartbeat::new(interval, timeout), |c| {
            c.get_ref().write_all(b"PING\n")?;
            let mut line = String::new();
            c.read_line(&mut line)?;
            if line == "PONG\n" {
                Ok(())
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            }
        })
        .first_reconnect_jitter(false)
        .wait_for_ready(true)
        .build();
    let mut w = r.watch();
    r.call(|_| Ok(())).unwrap();
    let t0 = sylvan::time::now();
    // The first heartbeat is answered; the second is not.
    wait_state(&mut w, ConnState::TransientFailure);
    let found_after = sylvan::time::now() - t0;
    assert!(
        found_after <= 2 * interval + timeout,
        "half-open connection found after {found_after:?}"
    );
    assert!(found_after >= interval + timeout);
    r.shutdown();
    server.stop(Duration::ZERO);
}

/// A panic inside `op` leaves the connection in an unknown protocol state:
/// it is dropped and marked broken, the panic reaches the caller, and the
/// next caller gets a fresh connection instead of waiting for ever.
#[test]
fn a_panicking_op_breaks_the_connection_and_later_calls_reconnect() {
    sylvan::time::pause();
    let server = FakeServer::default();
    let r = Reconnecting::builder(server.connector())
        .backoff(Backoff::new().jitter(Jitter::None).unwrap())
        .first_reconnect_jitter(false)
        .wait_for_ready(true)
        .build();
    r.call(|_| Ok(())).unwrap();
    let r2 = r.clone();
    let g = sylvan::spawn(move || r2.call(|_| -> io::Result<()> { panic!("op blew up") }));
    let e = g.join().expect_err("the panic propagates to the caller");
    assert_eq!(e.panic_message(), Some("op blew up"));
    assert_ne!(
        r.state(),
        ConnState::Ready,
        "the connection was marked broken"
    );
    let out = sylvan::timeout(Duration::from_secs(3600), || r.call(|_| Ok(7)));
    assert_eq!(out.expect("the next call is not wedged").unwrap(), 7);
    assert_eq!(
        server.attempts.borrow().len(),
        2,
        "the panicked connection was not reused"
    );
    let why = r.last_error().expect("the panic is the last error");
    assert!(why.to_string().contains("panicked"), "{why}");
    r.shutdown();
}

/// gRPC: a fail-fast call on an IDLE channel triggers the connect and
/// waits for it; it fails only in TRANSIENT_FAILURE.
#[test]
fn a_fail_fast_call_on_an_idle_channel_connects_and_goes_through() {
    sylvan::time::pause();
    let server = FakeServer::default();
    let r = Reconnecting::builder(server.connector()).build();
    assert_eq!(r.state(), ConnState::Idle);
    assert_eq!(r.call(|_| Ok(1)).unwrap(), 1);
    assert_eq!(r.state(), ConnState::Ready);
    r.shutdown();
}

/// gRPC: a fail-fast call made while CONNECTING waits for that attempt's
/// outcome: it goes through if the attempt succeeds...
#[test]
fn a_fail_fast_call_while_connecting_waits_for_the_attempt() {
    sylvan::time::pause();
    let go = sylvan::sync::Event::new();
    let g = go.clone();
    let r = Reconnecting::builder(move || {
        g.wait().map_err(io::Error::from)?;
        Ok(FakeConn)
    })
    .eager(true)
    .build();
    sylvan::yield_now();
    assert_eq!(r.state(), ConnState::Connecting);
    let r2 = r.clone();
    let caller = sylvan::spawn(move || r2.call(|_| Ok("through")).map_err(|e| e.to_string()));
    sylvan::yield_now();
    assert!(!caller.is_finished(), "the call waits for the attempt");
    go.send(()).unwrap();
    assert_eq!(caller.join().unwrap(), Ok("through"));
    r.shutdown();
}

/// ...and fails with `TransientFailure` (and the attempt's error) if it
/// fails.
#[test]
fn a_fail_fast_call_while_connecting_fails_when_the_attempt_fails() {
    sylvan::time::pause();
    let go = sylvan::sync::Event::new();
    let g = go.clone();
    let r = Reconnecting::builder(move || -> io::Result<FakeConn> {
        g.wait().map_err(io::Error::from)?;
        Err(io::Error::new(io::ErrorKind::ConnectionRefused, "refused"))
    })
    .eager(true)
    .build();
    sylvan::yield_now();
    assert_eq!(r.state(), ConnState::Connecting);
    let r2 = r.clone();
    let caller = sylvan::spawn(move || r2.call(|_| Ok(())));
    sylvan::yield_now();
    assert!(!caller.is_finished(), "the call waits for the attempt");
    go.send(()).unwrap();
    match caller.join().unwrap() {
        Err(CallError::Unavailable {
            state: ConnState::TransientFailure,
            last_error: Some(e),
        }) => assert!(e.to_string().contains("refused")),
        other => panic!("{other:?}"),
    }
    r.shutdown();
}

/// gRPC's connection backoff gives every attempt, the first included,
/// `max(current backoff, min_connect_timeout)`.
#[test]
fn every_attempt_gets_at_least_the_current_backoff() {
    sylvan::time::pause();
    let ends = Queue::unbounded();
    let e = ends.clone();
    let r = Reconnecting::builder(move || -> io::Result<FakeConn> {
        let start = sylvan::time::now();
        // A peer that never answers: the attempt's deadline ends it.
        let r = sylvan::sleep(Duration::from_secs(3600));
        e.put(sylvan::time::now() - start).unwrap();
        r?;
        Ok(FakeConn)
    })
    .backoff(
        Backoff::new()
            .initial(Duration::from_secs(5))
            .multiplier(2.0)
            .unwrap()
            .jitter(Jitter::None)
            .unwrap(),
    )
    .min_connect_timeout(Duration::from_secs(1))
    .eager(true)
    .build();
    // First attempt: the initial backoff (5 s), not min_connect_timeout (1 s).
    assert_eq!(ends.get().unwrap(), Duration::from_secs(5));
    // Then 5 s (the first delay), 10 s, 20 s.
    assert_eq!(ends.get().unwrap(), Duration::from_secs(5));
    assert_eq!(ends.get().unwrap(), Duration::from_secs(10));
    assert_eq!(ends.get().unwrap(), Duration::from_secs(20));
    r.shutdown();
}

/// A panicking `connect` (or `on_connect`) is a failed attempt: the
/// reconnector lives on, callers waiting on the attempt are answered, and
/// the next attempt connects.
#[test]
fn a_panicking_connect_is_a_failed_attempt_not_a_dead_reconnector() {
    sylvan::time::pause();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let r = Reconnecting::builder(move || {
        c.set(c.get() + 1);
        if c.get() == 1 {
            panic!("connect blew up");
        }
        Ok(FakeConn)
    })
    .backoff(Backoff::new().jitter(Jitter::None).unwrap())
    .build();
    let out = sylvan::timeout(Duration::from_secs(3600), || r.call(|_| Ok(())));
    match out.expect("the fail-fast call is answered") {
        Err(CallError::Unavailable {
            state: ConnState::TransientFailure,
            last_error: Some(e),
        }) => assert!(e.to_string().contains("connect blew up"), "{e}"),
        other => panic!("{other:?}"),
    }
    let mut w = r.watch();
    wait_state(&mut w, ConnState::Ready);
    assert_eq!(calls.get(), 2);
    r.call(|_| Ok(())).unwrap();
    r.shutdown();
}
