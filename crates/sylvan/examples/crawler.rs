//! Eventlet's web crawler: fetch many URLs at once through a `GreenPool`,
//! each fetch plain blocking code in its own green thread.
//!
//! ```python
//! pool = eventlet.GreenPool(200)
//! for url, body in zip(urls, pool.imap(fetch, urls)):
//!     print("got body from", url, "of length", len(body))
//! ```
//!
//! To run by itself, it starts a local server with 1,000 pages (each a
//! few KiB, some slow to answer, some redirecting, a few missing), then
//! fetches them all through a pool of 100 green threads sharing one
//! `http::Client`, and prints a summary.
//!
//! ```text
//! cargo run --release --example crawler
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sylvan::GreenPool;
use sylvan::http::{Client, Response, Server};

const PAGES: usize = 1000;
const CONCURRENCY: usize = 100;

fn main() -> std::io::Result<()> {
    // The "web": /page/<n> answers with n-dependent content; every 10th
    // page is slow, every 50th redirects, every 97th is missing.
    let server = Server::bind("127.0.0.1:0")?.serve(|req| {
        let Some(n) = req
            .path()
            .strip_prefix("/page/")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            return Response::status_page(404);
        };
        if n % 97 == 0 {
            return Response::status_page(404);
        }
        if n % 50 == 0 && req.query() != Some("moved") {
            return Response::new(301).header("Location", format!("/page/{n}?moved"));
        }
        if n % 10 == 0 && sylvan::sleep(Duration::from_millis(20)).is_err() {
            return Response::status_page(503);
        }
        let body: String = (0..n % 64 + 16)
            .map(|i| format!("<p>page {n}, paragraph {i}</p>\n"))
            .collect();
        Response::html(body)
    });
    let base = format!("http://{}", server.local_addr());
    let urls: Vec<String> = (1..=PAGES).map(|n| format!("{base}/page/{n}")).collect();

    let client = Client::builder()
        .timeout(Some(Duration::from_secs(10)))
        .max_idle_per_host(CONCURRENCY)
        .build();
    let pool = GreenPool::new(CONCURRENCY);
    let fetch = {
        let client = client.clone();
        move |url: String| {
            let resp = client.get(&url).send()?;
            let status = resp.status();
            let body = resp.bytes()?;
            Ok::<_, std::io::Error>((url, status, body.len()))
        }
    };

    let started = Instant::now();
    let mut statuses = BTreeMap::new();
    let (mut bytes, mut errors) = (0, 0);
    for (i, result) in pool.imap(fetch, urls).enumerate() {
        match result {
            Ok(Ok((url, status, len))) => {
                *statuses.entry(status).or_insert(0) += 1;
                bytes += len;
                if i % 100 == 0 {
                    println!("got body from {url} of length {len}");
                }
            }
            Ok(Err(e)) => {
                errors += 1;
                eprintln!("fetch failed: {e}");
            }
            Err(e) => {
                errors += 1;
                eprintln!("green thread failed: {e}");
            }
        }
    }
    let took = started.elapsed();
    let fetched: usize = statuses.values().sum();
    println!(
        "fetched {fetched} of {PAGES} URLs ({bytes} bytes) in {took:.2?} with {CONCURRENCY} green \
         threads over {} connections; statuses {statuses:?}; {errors} errors",
        server.accepted()
    );
    server.stop(Duration::from_secs(1));
    if fetched == PAGES && errors == 0 {
        Ok(())
    } else {
        Err(std::io::Error::other("some fetches failed"))
    }
}
