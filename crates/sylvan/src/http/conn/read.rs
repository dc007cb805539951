//! The read side of a connection: request heads (with the header and
//! keep-alive timeouts), request bodies as the handler reads them, and the
//! server's own reads of what a handler left (draining) or of what the
//! client still sends before a close (lingering).

use std::io;
use std::net::Shutdown;
use std::time::Instant;

use super::super::body::{BodySource, BodyState};
use super::super::parse::{self, Head, HeadScan, Reject, Scan};
use super::io::{Reading, Shared, busy_reading};
use super::keep_alive::DRAIN_LIMIT;
use super::{ConnState, Transport};

/// Reads at most this much while lingering before a close.
const LINGER_LIMIT: usize = 1024 * 1024;

impl<T: Transport> Shared<T> {
    /// Reads body bytes; the caller holds the read side.
    pub(super) fn read_body_with(
        &self,
        reading: &Reading<'_>,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        let max_body = self.cfg.limits.max_body;
        loop {
            {
                let mut body = self.body.borrow_mut();
                match &*body {
                    BodyState::Done => return Ok(0),
                    BodyState::Failed(Some(e)) => return Err(e.into_io()),
                    BodyState::Failed(None) => {
                        return Err(io::Error::other(
                            "request body cannot be read after an earlier error",
                        ));
                    }
                    _ => {}
                }
                if self.continue_pending.replace(false) {
                    self.gather(|w| w.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n"));
                }
                let mut rb = self.rbuf.borrow_mut();
                if !rb.is_empty() {
                    let (c, p) = body
                        .decode(rb.data(), buf, max_body)
                        .map_err(|e| e.into_io())?;
                    rb.consume(c);
                    if p > 0 || body.is_done() {
                        return Ok(p);
                    }
                    if !rb.is_empty() && c > 0 {
                        continue;
                    }
                }
            }
            // Bytes the client may be waiting for (a 100 Continue, a
            // response) go out before we wait for its body.
            let r = self.try_flush().and_then(|()| {
                self.set_read_timeout(self.cfg.io_timeout);
                self.fill(reading)
            });
            let err = match r {
                Ok(0) => io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before the end of the request body",
                ),
                Ok(_) => continue,
                Err(e) => e,
            };
            *self.body.borrow_mut() = BodyState::Failed(None);
            return Err(err);
        }
    }
}

impl<T: Transport> BodySource for Shared<T> {
    fn read_body(&self, seq: u64, buf: &mut [u8]) -> io::Result<usize> {
        if seq != self.open.get() {
            return Err(io::Error::other(
                "request body read after its response was sent",
            ));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let Some(reading) = self.start_reading() else {
            return Err(busy_reading());
        };
        self.read_body_with(&reading, buf)
    }
}

pub(super) enum HeadRead {
    Head(Head),
    /// End of stream or idle timeout before a request began: close quietly.
    Closed,
    Reject(Reject),
    /// The head did not arrive in time: 408.
    TimedOut,
}

fn is_timeout(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut && crate::Cancelled::from_io(e).is_none()
}

/// Reads the next request head, applying the header and keep-alive
/// timeouts.
pub(super) fn read_head<T: Transport>(
    sh: &Shared<T>,
    conn_start: Instant,
    first: bool,
    track: Option<&ConnState>,
) -> HeadRead {
    let cfg = &*sh.cfg;
    let Some(reading) = sh.start_reading() else {
        return HeadRead::Closed;
    };
    let mut deadline = first.then(|| conn_start + cfg.header_timeout);
    let mut scan = HeadScan::default();
    loop {
        {
            let mut rb = sh.rbuf.borrow_mut();
            loop {
                match scan.scan(rb.data(), &cfg.limits) {
                    Ok(Scan::Skip(n)) => rb.consume(n),
                    Ok(Scan::Partial) => break,
                    // Parsed on the hub's stack, whose lines stay cached,
                    // not this connection's (cold when many connections
                    // take turns): the parse is deep and never blocks.
                    Ok(Scan::Parse) => match crate::runtime::on_hub_stack(|| {
                        parse::parse_head(rb.data(), &cfg.limits)
                    }) {
                        Ok(Some((head, n))) => {
                            rb.consume(n);
                            return HeadRead::Head(head);
                        }
                        Ok(None) => break,
                        Err(r) => return HeadRead::Reject(r),
                    },
                    Err(r) => return HeadRead::Reject(r),
                }
            }
        }
        if sh.flush().is_err() {
            return HeadRead::Closed;
        }
        let empty = sh.rbuf.borrow().is_empty();
        if empty {
            if let Some(t) = track {
                if t.draining() {
                    return HeadRead::Closed;
                }
                t.idle.set(true);
            }
        }
        match deadline {
            None if empty => sh.set_read_timeout(Some(cfg.keep_alive_timeout)),
            None => {
                deadline = Some(sh.io.now() + cfg.header_timeout);
                sh.set_read_deadline(cfg.header_timeout);
            }
            Some(d) => {
                let left = d.saturating_duration_since(sh.io.now());
                if left.is_zero() {
                    return if empty {
                        HeadRead::Closed
                    } else {
                        HeadRead::TimedOut
                    };
                }
                sh.set_read_deadline(left);
            }
        }
        let r = sh.fill(&reading);
        if let Some(t) = track {
            t.idle.set(false);
        }
        match r {
            Ok(0) => return HeadRead::Closed,
            // The header timeout runs from the first byte (in practice from
            // the first read that found the head incomplete, microseconds
            // later: the clock is read only when the head needs more reads).
            Ok(_) => {}
            Err(e) if is_timeout(&e) && !sh.rbuf.borrow().is_empty() => return HeadRead::TimedOut,
            Err(_) => return HeadRead::Closed,
        }
    }
}

/// Reads and discards the rest of a body the handler left, up to
/// [`DRAIN_LIMIT`]; `false` if the connection cannot be reused.
///
/// A read of the handler's still parked (in another green thread) keeps
/// the body: then the connection closes instead.
// Not inlined: its scratch buffer would deepen the connection loop's
// frame, and every stack page a request touches stays resident while
// the connection idles.
#[inline(never)]
pub(super) fn drain_body<T: Transport>(sh: &Shared<T>) -> bool {
    let Some(reading) = sh.start_reading() else {
        return false;
    };
    // From here on the rest of the body is the server's: the handler's
    // reads fail rather than miss the bytes drained.
    sh.open.set(0);
    let mut scratch = [0u8; 4096];
    let mut total = 0u64;
    loop {
        match sh.read_body_with(&reading, &mut scratch) {
            Ok(0) => return true,
            Ok(n) => {
                total += n as u64;
                if total > DRAIN_LIMIT {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
}

/// Closes without losing the response to a reset: shut down our side,
/// then read and discard what the client still sends, for a little while.
pub(super) fn linger<T: Transport>(sh: &Shared<T>) {
    if sh.flush().is_err() {
        return;
    }
    sh.io.shutdown(Shutdown::Write);
    let Some(reading) = sh.start_reading() else {
        return;
    };
    sh.open.set(0);
    let until = sh.io.now() + sh.cfg.linger;
    let mut total = 0;
    while total < LINGER_LIMIT {
        let left = until.saturating_duration_since(sh.io.now());
        if left.is_zero() {
            break;
        }
        sh.set_read_timeout(Some(left));
        {
            let mut rb = sh.rbuf.borrow_mut();
            let n = rb.data().len();
            rb.consume(n);
        }
        match sh.fill(&reading) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}
