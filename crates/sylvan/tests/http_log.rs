//! The access log: one Common Log Format line per response through
//! `tracing` (target `sylvan::http::access`). Its own test binary, so the
//! global subscriber sees every event.

mod http_util;

use std::io::Write;

use http_util::roundtrip;
use sylvan::http::{Response, Server};

#[test]
fn access_log_uses_common_log_format() {
    use tracing_subscriber::layer::SubscriberExt;
    let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let b2 = buf.clone();
    let subscriber = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_writer(move || Capture(b2.clone()))
            .with_ansi(false)
            .with_filter_target(),
    );
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .serve(|_| Response::text("12345"));
    let addr = server.local_addr();
    roundtrip(
        addr,
        b"GET /log?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    roundtrip(addr, b"BAD\r\n\r\n");
    let text = String::from_utf8_lossy(&buf.lock().unwrap()).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains("GET /log"))
        .unwrap_or_else(|| panic!("no access log line in {text:?}"));
    assert!(line.contains("sylvan::http::access"), "{line}");
    assert!(line.contains("127.0.0.1 - - ["), "{line}");
    assert!(
        line.contains(" +0000] \"GET /log?x=1 HTTP/1.1\" 200 5"),
        "{line}"
    );
    assert!(text.contains("\"-\" 400 "), "{text}");
}

struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

trait FilterTarget: Sized {
    fn with_filter_target(
        self,
    ) -> tracing_subscriber::filter::Filtered<
        Self,
        tracing_subscriber::filter::Targets,
        tracing_subscriber::Registry,
    >;
}

impl<L: tracing_subscriber::Layer<tracing_subscriber::Registry>> FilterTarget for L {
    fn with_filter_target(
        self,
    ) -> tracing_subscriber::filter::Filtered<
        Self,
        tracing_subscriber::filter::Targets,
        tracing_subscriber::Registry,
    > {
        tracing_subscriber::Layer::with_filter(
            self,
            tracing_subscriber::filter::Targets::new()
                .with_target("sylvan::http::access", tracing::Level::INFO),
        )
    }
}
