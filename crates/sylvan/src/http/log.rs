//! The access log: one `tracing` event per response, target
//! `sylvan::http::access`, in Common Log Format.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::date;
use super::headers::Version;

/// The `tracing` target of access-log events.
pub(crate) const TARGET: &str = "sylvan::http::access";

/// Whether anything listens to access-log events (so the request line is
/// worth keeping for it).
pub(crate) fn enabled() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::INFO)
}

struct Clf<'a> {
    peer: SocketAddr,
    method: &'a str,
    target: &'a str,
    version: Version,
    status: u16,
    bytes: Option<u64>,
}

impl fmt::Display for Clf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} - - [", self.peer.ip())?;
        date::with_clf_date(|d| f.write_str(d))?;
        if self.method == "-" {
            write!(f, "] \"-\" {} ", self.status)?;
        } else {
            write!(
                f,
                "] \"{} {} {}\" {} ",
                self.method,
                self.target.escape_debug(),
                self.version,
                self.status
            )?;
        }
        match self.bytes {
            Some(b) => write!(f, "{b}"),
            None => f.write_str("-"),
        }
    }
}

/// Logs one response: `127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /
/// HTTP/1.1" 200 2326`, with the handler's duration as a field.
pub(crate) fn access(
    peer: SocketAddr,
    method: &str,
    target: &str,
    version: Version,
    status: u16,
    bytes: Option<u64>,
    elapsed: Duration,
) {
    let line = Clf {
        peer,
        method,
        target,
        version,
        status,
        bytes,
    };
    tracing::info!(target: TARGET, elapsed_us = elapsed.as_micros() as u64, "{line}");
}
