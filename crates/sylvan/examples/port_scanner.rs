//! A port scanner: a `GreenPool`-style bound on concurrency plus connect
//! timeouts, in a dozen lines of blocking code.
//!
//! ```sh
//! cargo run --release -p sylvan --example port_scanner -- 127.0.0.1 1 1024
//! ```
//!
//! Loopback only by default; scan only hosts you are allowed to.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sylvan::sync::Queue;

fn main() {
    let mut args = std::env::args().skip(1);
    let host: IpAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1".into())
        .parse()
        .expect("an IP address");
    let first: u16 = args.next().map_or(1, |s| s.parse().expect("a port number"));
    let last: u16 = args
        .next()
        .map_or(1024, |s| s.parse().expect("a port number"));

    // 200 probes at a time: a bounded queue of tickets acts as the pool.
    let tickets = Queue::bounded(200);
    let open = Queue::unbounded();
    let mut probes = Vec::new();
    for port in first..=last {
        tickets.put(()).expect("no deadline here");
        let (tickets, open) = (tickets.clone(), open.clone());
        probes.push(sylvan::spawn(move || {
            let addr = SocketAddr::new(host, port);
            if sylvan::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
                open.put(port).expect("unbounded");
            }
            tickets.try_get();
        }));
    }
    for p in probes {
        p.join().expect("probe ran");
    }
    let mut ports: Vec<u16> = std::iter::from_fn(|| open.try_get()).collect();
    ports.sort_unstable();
    println!(
        "{host}: {} open port(s) in {first}-{last}: {ports:?}",
        ports.len()
    );
}
