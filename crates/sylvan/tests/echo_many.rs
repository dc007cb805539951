//! 10,000 concurrent echo connections on one hub, each verified byte for
//! byte. The clients run in a second process (the open-files limit here is
//! 20,000 per process, and each side needs 10,000).

mod util;

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;

use sylvan::sync::Event;

const CONNS: usize = 10_000;
const ROUNDS: usize = 3;

fn payload(conn: usize, round: usize) -> [u8; 64] {
    let mut p = [0u8; 64];
    for (i, b) in p.iter_mut().enumerate() {
        *b = (conn.wrapping_mul(31) ^ round.wrapping_mul(7) ^ i) as u8;
    }
    p
}

/// The client side: connect all, wait until all are connected, then echo.
fn client(addr: std::net::SocketAddr) {
    let connected = Rc::new(Cell::new(0usize));
    let all_in = Event::<()>::new();
    let gs: Vec<_> = (0..CONNS)
        .map(|i| {
            let (connected, all_in) = (connected.clone(), all_in.clone());
            sylvan::Builder::new()
                .stack_size(32 * 1024)
                .spawn(move || -> std::io::Result<()> {
                    let mut s = sylvan::connect(addr)?;
                    connected.set(connected.get() + 1);
                    if connected.get() == CONNS {
                        let _ = all_in.send(());
                    }
                    all_in.wait()?;
                    for round in 0..ROUNDS {
                        let p = payload(i, round);
                        s.write_all(&p)?;
                        let mut back = [0u8; 64];
                        s.read_exact(&mut back)?;
                        if back != p {
                            return Err(std::io::Error::other(format!(
                                "conn {i} round {round}: wrong bytes"
                            )));
                        }
                    }
                    Ok(())
                })
                .unwrap()
        })
        .collect();
    let mut failed = 0;
    for g in gs {
        if let Err(e) = g.join().unwrap() {
            failed += 1;
            if failed < 5 {
                eprintln!("client error: {e}");
            }
        }
    }
    println!("CLIENT-DONE failed={failed}");
}

#[test]
fn ten_thousand_concurrent_echo_connections_on_one_hub() {
    if util::is_child() {
        let addr = std::env::var("ECHO_ADDR").unwrap().parse().unwrap();
        client(addr);
        return;
    }
    let listener = sylvan::net::ListenOptions::new()
        .backlog(4096)
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let live = Rc::new(Cell::new(0usize));
    let peak = Rc::new(Cell::new(0usize));
    let (l2, p2) = (live.clone(), peak.clone());
    let server = sylvan::spawn(move || {
        loop {
            let (mut conn, _) = match listener.accept() {
                Ok(c) => c,
                Err(e) if sylvan::Cancelled::from_io(&e).is_some() => return,
                Err(e) => panic!("accept: {e}"),
            };
            let (live, peak) = (l2.clone(), p2.clone());
            live.set(live.get() + 1);
            peak.set(peak.get().max(live.get()));
            drop(
                sylvan::Builder::new()
                    .stack_size(32 * 1024)
                    .spawn(move || {
                        let mut buf = [0u8; 1024];
                        while let Ok(n) = conn.read(&mut buf) {
                            if n == 0 || conn.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        live.set(live.get() - 1);
                    })
                    .unwrap(),
            );
        }
    });
    // Run the client process from the thread pool, so this hub keeps serving.
    let exe = std::env::current_exe().unwrap();
    let out = sylvan::tpool::execute(move || {
        std::process::Command::new(exe)
            .args([
                "ten_thousand_concurrent_echo_connections_on_one_hub",
                "--exact",
                "--nocapture",
            ])
            .env(util::CHILD_ENV, "1")
            .env("ECHO_ADDR", addr.to_string())
            .output()
    })
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CLIENT-DONE failed=0"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        peak.get(),
        CONNS,
        "all connections were open at once on this hub"
    );
    server.kill();
    server.join().unwrap();
}
