//! The write side of a connection: response heads and bodies, gathered
//! into the connection's write buffer and written out in large pieces.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::super::body::BodyKind;
use super::super::date;
use super::super::headers::Version;
use super::super::log;
use super::super::response::{self, Parts, Response, bodiless, push_hex, push_u64, push_value};
use super::Transport;
use super::io::{Shared, WRITE_HIGH};

/// What the access log and the response writer need of the request.
pub(super) struct ReqInfo {
    pub(super) version: Version,
    pub(super) is_head: bool,
    pub(super) log: Option<(String, String)>,
}

/// How a response body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BodyFraming {
    /// No body bytes follow the head: a 1xx, 204 or 304 status, a response
    /// to `HEAD`, an upgrade.
    pub(super) no_body: bool,
    /// The body's length, sent as `Content-Length` (unless the status
    /// forbids one).
    pub(super) length: Option<u64>,
    /// Sent with `Transfer-Encoding: chunked`.
    pub(super) chunked: bool,
}

impl BodyFraming {
    /// The body ends only when the connection does (no length, and the
    /// client is HTTP/1.0, so no chunked coding).
    pub(super) fn unframed(self) -> bool {
        !self.no_body && self.length.is_none() && !self.chunked
    }
}

/// How `parts` will be framed for the request `info`: the length is the
/// body's own, else the handler's `Content-Length` field; without either,
/// HTTP/1.1 gets chunked coding.
pub(super) fn body_framing(parts: &Parts, info: &ReqInfo, upgrading: bool) -> BodyFraming {
    let no_body = bodiless(parts.status) || info.is_head || upgrading;
    let mut length = match &parts.body {
        BodyKind::Bytes(b) => Some(b.len() as u64),
        BodyKind::Reader(_, n) => *n,
    };
    if length.is_none() {
        length = parts
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok());
    }
    let chunked = !no_body && length.is_none() && info.version == Version::Http11;
    BodyFraming {
        no_body,
        length,
        chunked,
    }
}

/// Serializes and sends a response; returns the body bytes sent.
///
/// `close` says whether the connection closes after it (see
/// [`keep_alive`](super::keep_alive)); with `upgrading`, the head says
/// `Connection: Upgrade` instead.
pub(super) fn write_response<T: Transport>(
    sh: &Shared<T>,
    parts: &mut Parts,
    info: &ReqInfo,
    framing: BodyFraming,
    close: bool,
    upgrading: bool,
) -> io::Result<u64> {
    let BodyFraming {
        no_body,
        length,
        chunked,
    } = framing;
    if sh.continue_pending.get() && matches!(parts.body, BodyKind::Reader(..)) && !no_body {
        // A streamed response may be reading the request body: the client
        // must have been told to send it first.
        sh.continue_pending.set(false);
        sh.gather(|w| w.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n"));
    }
    // Past the final response's head, a 100 Continue would be out of
    // place, even from a body read in another green thread.
    sh.continue_pending.set(false);
    sh.gather(|w| write_head(w, parts, length, chunked, close, upgrading, info));
    if no_body {
        if upgrading {
            sh.flush()?;
        }
        return Ok(0);
    }
    match &mut parts.body {
        BodyKind::Bytes(b) => {
            if b.len() <= WRITE_HIGH {
                sh.gather(|w| w.extend_from_slice(b));
            } else {
                sh.write_through(b)?;
            }
            Ok(b.len() as u64)
        }
        // A failed body leaves the client with a truncated response: the
        // caller closes the connection on `Err`.
        BodyKind::Reader(r, _) => stream_body(sh, r.as_mut(), length, chunked),
    }
}

fn stream_body<T: Transport>(
    sh: &Shared<T>,
    r: &mut dyn io::Read,
    length: Option<u64>,
    chunked: bool,
) -> io::Result<u64> {
    let mut scratch = vec![0u8; 16 * 1024];
    let mut sent = 0u64;
    loop {
        let want = match length {
            Some(n) if sent >= n => break,
            Some(n) => scratch
                .len()
                .min(usize::try_from(n - sent).unwrap_or(usize::MAX)),
            None => scratch.len(),
        };
        let n = match r.read(&mut scratch[..want]) {
            Ok(0) => {
                if let Some(len) = length {
                    let _ = sh.flush();
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("response body ended after {sent} of {len} bytes"),
                    ));
                }
                break;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(target: "sylvan::http", "response body failed: {e}");
                let _ = sh.flush();
                return Err(e);
            }
        };
        sh.gather(|w| {
            if chunked {
                push_hex(w, n as u64);
                w.extend_from_slice(b"\r\n");
                w.extend_from_slice(&scratch[..n]);
                w.extend_from_slice(b"\r\n");
            } else {
                w.extend_from_slice(&scratch[..n]);
            }
        });
        sent += n as u64;
        if sh.gathered() >= WRITE_HIGH {
            sh.flush()?;
        }
    }
    if chunked {
        sh.gather(|w| w.extend_from_slice(b"0\r\n\r\n"));
    }
    Ok(sent)
}

fn write_head(
    w: &mut Vec<u8>,
    parts: &Parts,
    length: Option<u64>,
    chunked: bool,
    close: bool,
    upgrading: bool,
    info: &ReqInfo,
) {
    let status = parts.status;
    match response::status_line(status) {
        Some(line) => w.extend_from_slice(line.as_bytes()),
        None => {
            w.extend_from_slice(b"HTTP/1.1 ");
            push_u64(w, u64::from(status));
            w.extend_from_slice(b" \r\n");
        }
    }
    let mut has_date = false;
    if let Some((name, value)) = parts.headers.typed() {
        // Known valid, and not a field the server writes itself.
        w.extend_from_slice(name.as_bytes());
        w.extend_from_slice(b": ");
        w.extend_from_slice(value.as_bytes());
        w.extend_from_slice(b"\r\n");
    } else {
        write_fields(w, parts, &mut has_date);
    }
    if !has_date {
        date::with_date_field(|d| w.extend_from_slice(d));
    }
    if upgrading {
        w.extend_from_slice(b"Connection: Upgrade\r\n");
    } else {
        if chunked {
            w.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        } else if let Some(n) = length {
            if !(100..200).contains(&status) && status != 204 && status != 304 {
                w.extend_from_slice(b"Content-Length: ");
                push_u64(w, n);
                w.extend_from_slice(b"\r\n");
            }
        }
        if close {
            w.extend_from_slice(b"Connection: close\r\n");
        } else if info.version == Version::Http10 {
            w.extend_from_slice(b"Connection: keep-alive\r\n");
        }
    }
    w.extend_from_slice(b"\r\n");
}

/// The handler's fields, less those the server writes itself and any
/// whose name is not a valid token; sets `has_date` if one is `Date`.
fn write_fields(w: &mut Vec<u8>, parts: &Parts, has_date: &mut bool) {
    for (name, value) in &parts.headers {
        let skip = name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("connection");
        if skip {
            continue;
        }
        if !response::valid_name(name) {
            tracing::warn!(target: "sylvan::http", "dropping response header with invalid name {name:?}");
            continue;
        }
        *has_date |= name.eq_ignore_ascii_case("date");
        w.extend_from_slice(name.as_bytes());
        w.extend_from_slice(b": ");
        push_value(w, value);
        w.extend_from_slice(b"\r\n");
    }
}

/// A response the server makes itself (limits, timeouts), then close.
pub(super) fn send_error<T: Transport>(sh: &Shared<T>, status: u16, msg: &str, peer: SocketAddr) {
    let body = format!("{status} {}: {msg}\n", response::reason(status));
    let parts = Response::text(body).with_status(status).into_parts();
    let info = ReqInfo {
        version: Version::Http11,
        is_head: false,
        log: None,
    };
    let len = match &parts.body {
        BodyKind::Bytes(b) => b.len(),
        BodyKind::Reader(..) => 0,
    };
    sh.gather(|w| {
        write_head(w, &parts, Some(len as u64), false, true, false, &info);
        if let BodyKind::Bytes(b) = &parts.body {
            w.extend_from_slice(b);
        }
    });
    tracing::debug!(target: "sylvan::http", %peer, status, "rejected request: {msg}");
    if log::enabled() {
        log::access(
            peer,
            "-",
            "-",
            Version::Http11,
            status,
            Some(len as u64),
            Duration::ZERO,
        );
    }
    let _ = sh.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head `r` gets as a keep-alive HTTP/1.1 response, less the
    /// server's `Date` line (the second it names may change between two
    /// heads), and how many `Date` lines it had.
    fn head_of(r: Response) -> (String, usize) {
        let parts = r.into_parts();
        let info = ReqInfo {
            version: Version::Http11,
            is_head: false,
            log: None,
        };
        let framing = body_framing(&parts, &info, false);
        let mut w = Vec::new();
        write_head(
            &mut w,
            &parts,
            framing.length,
            framing.chunked,
            false,
            false,
            &info,
        );
        let head = String::from_utf8(w).expect("a head is ASCII");
        let dates = head
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("date:"))
            .count();
        let kept = head
            .split_inclusive("\r\n")
            .filter(|l| !(l.starts_with("Date: ") && l.ends_with(" GMT\r\n")))
            .collect();
        (kept, dates)
    }

    #[test]
    fn a_typed_response_sends_the_head_its_fields_would() {
        for (typed, ct) in [
            (Response::text("hi"), "text/plain; charset=utf-8"),
            (Response::html("hi"), "text/html; charset=utf-8"),
            (Response::bytes(&b"hi"[..]), "application/octet-stream"),
        ] {
            let by_hand = Response::new(200)
                .header("Content-Type", ct)
                .with_body(&b"hi"[..]);
            let want =
                format!("HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: 2\r\n\r\n");
            assert_eq!(head_of(typed), (want.clone(), 1));
            assert_eq!(head_of(by_hand), (want, 1));
        }
        // Its field stays through the other setters.
        let r = Response::text("gone")
            .with_status(404)
            .with_body(&b"nope!"[..]);
        assert_eq!(
            head_of(r).0,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 5\r\n\r\n"
        );
    }

    #[test]
    fn fields_added_to_a_typed_response_are_checked_as_any() {
        // A handler's own `Date` replaces the server's.
        let (head, dates) = head_of(Response::text("x").header("Date", "then"));
        assert_eq!(dates, 1);
        assert!(head.contains("Date: then\r\n"), "{head}");
        // Replacing the type, dropping an invalid name, cleaning a value,
        // leaving framing to the server.
        let r = Response::text("x")
            .set_header("content-type", "text/csv")
            .header("Bad Name", "v")
            .header("X-Split", "a\r\nInjected: 1")
            .header("Content-Length", "99");
        assert_eq!(
            head_of(r),
            (
                "HTTP/1.1 200 OK\r\ncontent-type: text/csv\r\nX-Split: a  Injected: 1\r\n\
                 Content-Length: 1\r\n\r\n"
                    .to_string(),
                1
            )
        );
    }
}
