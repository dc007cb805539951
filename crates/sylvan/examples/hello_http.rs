//! A hello-world HTTP server, with the access log on stderr.
//!
//! ```text
//! cargo run --example hello_http -- 127.0.0.1:8080
//! curl -i http://127.0.0.1:8080/
//! curl -T - http://127.0.0.1:8080/echo < Cargo.toml    # streamed back, chunked
//! ```

use std::io::Read;

use sylvan::http::{Response, Server};

fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "sylvan::http=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let server = Server::bind(addr.as_str())?.serve(|mut req| match (req.method(), req.path()) {
        ("GET" | "HEAD", "/") => Response::text("Hello, World!\n"),
        ("PUT" | "POST", "/echo") => Response::from_reader(req.into_body()),
        ("POST", "/count") => {
            let mut n = 0u64;
            let mut buf = [0u8; 16 * 1024];
            loop {
                match req.read(&mut buf) {
                    Ok(0) => break Response::text(format!("{n} bytes\n")),
                    Ok(k) => n += k as u64,
                    Err(e) => break Response::text(format!("{e}\n")).with_status(400),
                }
            }
        }
        _ => Response::status_page(404),
    });
    eprintln!("listening on http://{}", server.local_addr());
    server.wait().map_err(std::io::Error::from)
}
