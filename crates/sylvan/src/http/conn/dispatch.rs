//! The connection loop: read a head, run the handler, decide whether the
//! connection stays open, write the response, and go round again, drain,
//! linger, close or hand the stream to an upgrade.

use std::net::SocketAddr;
use std::rc::Rc;

use super::super::body::{BodyError, BodyKind, BodySource, BodyState, ChunkedDecoder};
use super::super::headers::list;
use super::super::log;
use super::super::parse::{Framing, Head};
use super::super::request::{Request, RequestBody};
use super::super::response::Response;
use super::super::upgrade::Upgraded;
use super::io::{Shared, WRITE_HIGH};
use super::keep_alive::{self, BodyLeft, Exchange};
use super::read::{HeadRead, drain_body, linger, read_head};
use super::write::{ReqInfo, body_framing, send_error, write_response};
use super::{ConnState, Transport};
use crate::green::catch_panic;
use crate::runtime::panic_message;

/// Serves one connection until it closes.
pub(crate) fn serve<T: Transport>(
    sh: Rc<Shared<T>>,
    handler: &dyn Fn(Request) -> Response,
    peer: SocketAddr,
    track: Option<&ConnState>,
) {
    let start = sh.io.now();
    let mut first = true;
    loop {
        let head = match read_head(&sh, start, first, track) {
            HeadRead::Head(h) => h,
            HeadRead::Closed => return,
            HeadRead::Reject(r) => {
                send_error(&sh, r.status(), r.message(), peer);
                linger(&sh);
                return;
            }
            HeadRead::TimedOut => {
                send_error(&sh, 408, "timed out reading the request head", peer);
                linger(&sh);
                return;
            }
        };
        first = false;
        match handle_one(&sh, head, handler, peer, track) {
            Next::KeepAlive => {}
            Next::Close => {
                let _ = sh.flush();
                return;
            }
            Next::Linger => {
                linger(&sh);
                return;
            }
            Next::Upgrade(f) => {
                upgrade(sh, f);
                return;
            }
        }
    }
}

enum Next {
    KeepAlive,
    Close,
    Linger,
    Upgrade(Box<dyn FnOnce(Upgraded)>),
}

fn handle_one<T: Transport>(
    sh: &Rc<Shared<T>>,
    head: Head,
    handler: &dyn Fn(Request) -> Response,
    peer: SocketAddr,
    track: Option<&ConnState>,
) -> Next {
    let cfg = &*sh.cfg;
    let seq = sh.seq.get() + 1;
    sh.seq.set(seq);
    sh.open.set(seq);
    let framing = head.framing;
    *sh.body.borrow_mut() = match framing {
        Framing::None => BodyState::Done,
        Framing::Length(n) => BodyState::Length(n),
        Framing::Chunked => BodyState::Chunked {
            dec: ChunkedDecoder::new(cfg.limits.max_header_bytes),
            total: 0,
        },
    };
    sh.continue_pending
        .set(head.expect_continue && framing != Framing::None);
    let info = ReqInfo {
        version: head.version,
        is_head: head.is_head(),
        log: log::enabled().then(|| (head.method().to_owned(), head.target().to_owned())),
    };
    let connection = head.connection;
    let body = match framing {
        Framing::None => RequestBody::empty(),
        _ => RequestBody::new(sh.clone() as Rc<dyn BodySource>, seq),
    };
    let started = info.log.is_some().then(|| sh.io.now());
    sh.set_read_timeout(cfg.io_timeout);
    let req = Request::new(head, peer, body);
    let mut panicked = false;
    let resp = match catch_panic(|| handler(req)) {
        Ok(r) => r,
        Err(p) => {
            let msg = panic_message(p.as_ref());
            tracing::error!(target: "sylvan::http", %peer, "handler panicked: {msg}");
            panicked = true;
            Response::status_page(500)
        }
    };
    let failure = match &*sh.body.borrow() {
        BodyState::Failed(Some(e)) => Some(*e),
        _ => None,
    };
    let resp = match failure {
        Some(BodyError::TooLarge) => Response::status_page(413),
        Some(BodyError::Malformed(m)) => {
            Response::text(format!("400 Bad Request: {m}\n")).with_status(400)
        }
        None => resp,
    };
    let mut parts = resp.into_parts();
    let response_close = parts.headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("connection")
            && list(v.as_bytes()).any(|t| t.eq_ignore_ascii_case(b"close"))
    });
    let upgrade = parts.upgrade.take().filter(|_| {
        (parts.status == 101 || (200..300).contains(&parts.status))
            && sh.body.borrow().is_done()
            && !info.is_head
    });
    let framing = body_framing(&parts, &info, upgrade.is_some());
    // A streamed response body is sent after a pending 100 Continue (it may
    // be reading the request body). Otherwise, once the final response is
    // out, the 100 Continue can no longer be sent and the client may or may
    // not send the body.
    let streams = matches!(parts.body, BodyKind::Reader(..)) && !framing.no_body;
    let body_left = match &*sh.body.borrow() {
        BodyState::Done => BodyLeft::Done,
        BodyState::Length(n) => BodyLeft::Length(*n),
        BodyState::Chunked { .. } => BodyLeft::Chunked,
        BodyState::Failed(_) => BodyLeft::Failed,
    };
    let decision = keep_alive::decide(&Exchange {
        version: info.version,
        connection,
        enabled: cfg.keep_alive,
        draining: track.is_some_and(ConnState::draining),
        panicked,
        response_close,
        unframed: framing.unframed(),
        body_left,
        continue_unsent: sh.continue_pending.get() && !streams,
    });
    if let Err(why) = decision {
        tracing::trace!(target: "sylvan::http", %peer, ?why, "closing after this response");
    }
    let close = decision.is_err();
    let sent = write_response(sh, &mut parts, &info, framing, close, upgrade.is_some());
    if let (Some((method, target)), Some(started)) = (&info.log, started) {
        let elapsed = sh.io.now().saturating_duration_since(started);
        log::access(
            peer,
            method,
            target,
            info.version,
            parts.status,
            sent.as_ref().ok().copied(),
            elapsed,
        );
    }
    if sent.is_err() {
        return Next::Close;
    }
    if let Some(f) = upgrade {
        return Next::Upgrade(f);
    }
    let unread = !sh.body.borrow().is_done();
    if close {
        return if unread || !sh.rbuf.borrow().is_empty() {
            Next::Linger
        } else {
            Next::Close
        };
    }
    if unread && !drain_body(sh) {
        return Next::Linger;
    }
    // Responses to pipelined requests already buffered go out together.
    let pipelined = !sh.rbuf.borrow().is_empty();
    if (!pipelined || sh.gathered() >= WRITE_HIGH) && sh.flush().is_err() {
        return Next::Close;
    }
    Next::KeepAlive
}

fn upgrade<T: Transport>(sh: Rc<Shared<T>>, f: Box<dyn FnOnce(Upgraded)>) {
    match Rc::try_unwrap(sh) {
        Ok(sh) => {
            let rest = sh.rbuf.into_inner().into_rest();
            if let Some(io) = sh.io.into_upgraded() {
                f(Upgraded::new(io, rest));
            }
        }
        Err(_) => {
            tracing::warn!(target: "sylvan::http", "cannot upgrade: a request body of this connection is still alive");
        }
    }
}
