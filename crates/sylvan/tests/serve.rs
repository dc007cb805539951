//! `serve`: bounded concurrency, panic isolation, graceful stop.

mod util;

use std::io::{Read, Write};
use std::time::Duration;

use sylvan::net::ServeOptions;
use sylvan::sync::{Event, Queue};

fn echo(mut conn: sylvan::net::TcpStream, _: std::net::SocketAddr) -> std::io::Result<()> {
    let mut buf = [0; 1024];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        conn.write_all(&buf[..n])?;
    }
}

fn roundtrip(c: &mut sylvan::net::TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    c.write_all(msg)?;
    let mut back = vec![0; msg.len()];
    c.read_exact(&mut back)?;
    Ok(back)
}

#[test]
fn graceful_stop_lets_in_flight_handlers_finish() {
    let l = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = sylvan::serve(l, echo);
    let mut c = sylvan::connect(addr).unwrap();
    assert_eq!(roundtrip(&mut c, b"before").unwrap(), b"before");
    let stopped = Queue::unbounded();
    let s2 = stopped.clone();
    let stopper = sylvan::spawn(move || {
        let r = server.stop(Duration::from_secs(30));
        s2.put(()).unwrap();
        r
    });
    sylvan::yield_now();
    // Inside the grace period the connection is untouched and still served.
    assert!(stopped.is_empty());
    assert_eq!(roundtrip(&mut c, b"during grace").unwrap(), b"during grace");
    // New connections are refused.
    assert!(sylvan::connect(addr).is_err());
    drop(c); // the handler sees EOF and returns
    let report = stopper.join().unwrap();
    assert_eq!((report.finished, report.killed), (1, 0));
}

#[test]
fn handlers_still_running_at_the_deadline_are_killed() {
    sylvan::time::pause();
    let l = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let outcome = Queue::unbounded();
    let o = outcome.clone();
    let server = sylvan::serve(l, move |conn, _| {
        let mut buf = [0; 1];
        let r = (&conn).read(&mut buf); // the client never writes
        o.put(r.map_err(|e| sylvan::Cancelled::from_io(&e)))
            .unwrap();
        Ok::<_, std::io::Error>(())
    });
    let mut c = sylvan::connect(addr).unwrap();
    while server.active() == 0 {
        sylvan::yield_now();
    }
    let report = server.stop(Duration::from_secs(5));
    assert_eq!((report.finished, report.killed), (0, 1));
    assert_eq!(
        outcome.try_get(),
        Some(Err(Some(sylvan::Cancelled::Killed)))
    );
    // The handler's connection was closed when it unwound.
    assert_eq!(c.read(&mut [0; 1]).unwrap(), 0);
}

#[test]
fn a_panicking_handler_ends_only_its_connection() {
    let l = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = sylvan::serve(l, |mut conn, _| {
        let mut first = [0; 1];
        conn.read_exact(&mut first)?;
        if first[0] == b'!' {
            panic!("handler bug");
        }
        conn.write_all(&first)?;
        echo(conn, "0.0.0.0:0".parse().unwrap())
    });
    let mut good = sylvan::connect(addr).unwrap();
    assert_eq!(roundtrip(&mut good, b"a").unwrap(), b"a");
    let mut bad = sylvan::connect(addr).unwrap();
    bad.write_all(b"!").unwrap();
    assert_eq!(
        bad.read(&mut [0; 1]).unwrap(),
        0,
        "the panicking handler's connection closes"
    );
    assert_eq!(roundtrip(&mut good, b"still here").unwrap(), b"still here");
    let mut later = sylvan::connect(addr).unwrap();
    assert_eq!(roundtrip(&mut later, b"b").unwrap(), b"b");
    drop((good, later));
    server.stop(Duration::from_secs(5));
}

#[test]
fn concurrency_is_bounded_and_extra_connections_wait_in_the_backlog() {
    let l = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let release = Event::<()>::new();
    let r = release.clone();
    let server = ServeOptions::new()
        .max_connections(2)
        .unwrap()
        .serve(l, move |mut conn, _| {
            r.wait()?;
            conn.write_all(b"served")
        });
    let clients: Vec<_> = (0..5)
        .map(|_| {
            sylvan::spawn(move || -> std::io::Result<Vec<u8>> {
                let mut c = sylvan::connect(addr)?;
                let mut v = Vec::new();
                c.read_to_end(&mut v)?;
                Ok(v)
            })
        })
        .collect();
    for _ in 0..20 {
        sylvan::yield_now();
    }
    assert_eq!(server.active(), 2);
    assert_eq!(
        server.accepted(),
        2,
        "the other three wait in the kernel backlog"
    );
    release.send(()).unwrap();
    for c in clients {
        assert_eq!(c.join().unwrap().unwrap(), b"served");
    }
    assert_eq!(server.accepted(), 5);
    server.stop(Duration::from_secs(1));
}

#[test]
fn handler_errors_are_logged_not_fatal() {
    if util::is_child() {
        let logs = util::capture_logs();
        let l = sylvan::listen("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = sylvan::serve(l, |_conn, _| Err::<(), _>("bad request from test"));
        let mut c = sylvan::connect(addr).unwrap();
        assert_eq!(c.read(&mut [0; 1]).unwrap(), 0);
        server.stop(Duration::from_secs(1));
        assert!(
            logs.text().contains("bad request from test"),
            "{}",
            logs.text()
        );
        println!("CHILD-OK");
        return;
    }
    let out = util::run_child("handler_errors_are_logged_not_fatal", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn wait_returns_when_another_green_thread_stops_the_server() {
    let l = sylvan::listen("127.0.0.1:0").unwrap();
    let server = std::rc::Rc::new(sylvan::serve(l, echo));
    let s2 = server.clone();
    let stopper = sylvan::spawn(move || s2.stop(Duration::from_secs(1)));
    server.wait().unwrap();
    assert_eq!(stopper.join().unwrap().killed, 0);
}
