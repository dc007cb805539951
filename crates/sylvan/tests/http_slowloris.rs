//! Slowloris: 2,000 connections dribbling their headers a byte a second
//! hold no one else up, and each gets `408` when the header timeout
//! passes. Runs on virtual time, so it takes no real 30 seconds.

mod http_util;

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::Duration;

use http_util::Client;
use sylvan::http::{Response, Server};

const SLOW: usize = 2000;

/// Open files this process may have (soft limit).
fn fd_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(1024)
}

#[test]
fn slowloris_does_not_starve_normal_clients() {
    let limit = fd_limit();
    let slow = SLOW.min(limit.saturating_sub(256) / 2);
    if slow < SLOW {
        println!(
            "fd limit {limit}: running {slow} slow connections instead of {SLOW} (raise `ulimit -n`)"
        );
    }
    sylvan::time::pause();
    let header_timeout = Duration::from_secs(30);
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .max_connections(SLOW + 100)
        .unwrap()
        .header_timeout(header_timeout)
        .unwrap()
        .linger(Duration::from_millis(10))
        .serve(|req| Response::text(format!("hello {}", req.path())));
    let addr = server.local_addr();
    let t0 = sylvan::time::now();

    let got_408 = Rc::new(Cell::new(0usize));
    let finished = Rc::new(Cell::new(0usize));
    let mut threads = Vec::new();
    for i in 0..slow {
        let stream = Rc::new(sylvan::connect(addr).expect("connect slow client"));
        let done = Rc::new(Cell::new(false));
        let (s, d, g, f) = (
            stream.clone(),
            done.clone(),
            got_408.clone(),
            finished.clone(),
        );
        threads.push(sylvan::spawn(move || {
            let mut out = Vec::new();
            let _ = (&*s).read_to_end(&mut out);
            if out.starts_with(b"HTTP/1.1 408 ") {
                g.set(g.get() + 1);
            }
            d.set(true);
            f.set(f.get() + 1);
        }));
        threads.push(sylvan::spawn(move || {
            let _ = (&*stream).write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ");
            for _ in 0..120 {
                if sylvan::sleep(Duration::from_secs(1)).is_err() || done.get() {
                    break;
                }
                if (&*stream).write_all(b"a").is_err() {
                    break;
                }
            }
        }));
        if i % 64 == 63 {
            // Let the acceptor drain the backlog.
            sylvan::yield_now();
            sylvan::yield_now();
        }
    }
    while server.active() < slow {
        sylvan::sleep(Duration::from_millis(100)).unwrap();
    }
    // A few seconds into the attack, normal clients are served at once.
    sylvan::sleep(Duration::from_secs(3)).unwrap();
    let before = sylvan::time::now();
    let mut keep = Client::connect(addr);
    for i in 0..20 {
        keep.send(format!("GET /k{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let r = keep.response();
        assert_eq!((r.status, r.text()), (200, format!("hello /k{i}")));
    }
    for i in 0..20 {
        let r = http_util::roundtrip(
            addr,
            format!("GET /n{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(r.status, 200);
    }
    let served_at = sylvan::time::now();
    assert!(
        served_at - before < Duration::from_secs(1),
        "normal clients waited {:?}",
        served_at - before
    );
    assert_eq!(
        got_408.get(),
        0,
        "slow clients were cut off before the header timeout"
    );
    assert!(served_at - t0 < header_timeout);

    // Then every slow client gets its 408 at the header timeout.
    while finished.get() < slow {
        sylvan::sleep(Duration::from_secs(1)).unwrap();
    }
    let end = sylvan::time::now() - t0;
    assert_eq!(got_408.get(), slow);
    assert!(
        end >= header_timeout && end < header_timeout + Duration::from_secs(10),
        "{end:?}"
    );
    for t in threads {
        t.join().unwrap();
    }
    let report = server.stop(Duration::from_secs(1));
    assert_eq!(report.killed, 0);
    sylvan::time::resume();
}
