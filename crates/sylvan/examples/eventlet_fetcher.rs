//! Eventlet's classic `GreenPool` fetcher (`webcrawler.py`), ported line
//! by line (see `docs/eventlet.md`).
//!
//! ```sh
//! cargo run -p sylvan --example eventlet_fetcher
//! ```
//!
//! The Python original:
//!
//! ```python
//! import eventlet
//! from eventlet.green.urllib.request import urlopen
//!
//! urls = [f"http://127.0.0.1:{port}/page/{i}" for i in range(100)]
//!
//! def fetch(url):
//!     with eventlet.Timeout(5):
//!         return urlopen(url).read()
//!
//! pool = eventlet.GreenPool(20)
//! for url, body in zip(urls, pool.imap(fetch, urls)):
//!     print("got", len(body), "bytes from", url)
//! ```
//!
//! sylvan has no HTTP client yet, so `fetch` sends a raw HTTP/1.1 request
//! over `sylvan::connect` and reads the reply to EOF (`Connection: close`).
//! The program starts its own HTTP server on loopback, whose pages take
//! 100 ms each: 100 of them, 20 at a time, take about half a second, not
//! ten. No external network.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sylvan::GreenPool;
use sylvan::http::{Response, Server};

/// `def fetch(url)`: a GET with one deadline over connect, send and read.
fn fetch(addr: SocketAddr, path: &str) -> io::Result<Vec<u8>> {
    sylvan::timeout(Duration::from_secs(5), || -> io::Result<Vec<u8>> {
        let mut sock = sylvan::connect(addr)?;
        write!(
            sock,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut reply = Vec::new();
        sock.read_to_end(&mut reply)?;
        body_of(&reply)
    })?
}

/// The body of a `200 OK` reply (the server sends `Content-Length`).
fn body_of(reply: &[u8]) -> io::Result<Vec<u8>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    if !reply.starts_with(b"HTTP/1.1 200 ") {
        return Err(bad("status is not 200"));
    }
    Ok(reply[split + 4..].to_vec())
}

fn main() -> io::Result<()> {
    // A local server: /page/N answers after 100 ms with N lines.
    let server = Server::bind("127.0.0.1:0")?.serve(|req| {
        let Some(n) = req
            .path()
            .strip_prefix("/page/")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            return Response::status_page(404);
        };
        if sylvan::sleep(Duration::from_millis(100)).is_err() {
            return Response::status_page(503); // the server is stopping
        }
        Response::text("a line of the page\n".repeat(n))
    });
    let addr = server.local_addr();

    let urls: Vec<String> = (0..100).map(|i| format!("/page/{i}")).collect();
    let t0 = Instant::now();
    // `eventlet.GreenPool(20)`: at most 20 fetches at a time.
    let pool = GreenPool::new(20);
    // `pool.imap(fetch, urls)`: results in the order of `urls`. Each item
    // is the green thread's outcome (`Err` only if it panicked or this
    // iteration was cancelled) holding `fetch`'s own `io::Result`.
    let bodies = pool.imap(move |path: String| fetch(addr, &path), urls.clone());
    for (i, (url, body)) in urls.iter().zip(bodies).enumerate() {
        let body = body.expect("fetch did not panic")?;
        println!("got {} bytes from {url}", body.len());
        assert_eq!(body.len(), i * "a line of the page\n".len());
    }
    let took = t0.elapsed();
    println!("100 pages of 100 ms each, 20 at a time: {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "the fetches ran concurrently"
    );

    server.stop(Duration::from_secs(1));
    sylvan::shutdown();
    Ok(())
}
