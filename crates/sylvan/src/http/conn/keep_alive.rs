//! Whether a connection is reused after an exchange: a pure function of
//! what the request, the server and the response said, decided before the
//! response head goes out (the head carries `Connection: close` when the
//! answer is no).

use super::super::headers::Version;
use super::super::parse::ConnectionTokens;

/// Unread body bytes the server reads and discards to keep a connection
/// open after a handler ignored the body; more than this closes it.
pub(super) const DRAIN_LIMIT: u64 = 256 * 1024;

/// What is left of the request body once the handler returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyLeft {
    /// Nothing: read whole, or there was none.
    Done,
    /// This many bytes of a `Content-Length` body.
    Length(u64),
    /// Some of a chunked body; how much is unknown.
    Chunked,
    /// Reading it failed (too large, malformed, an I/O error): where the
    /// next request would start is unknown.
    Failed,
}

/// The facts of one exchange that decide whether its connection is reused.
#[derive(Debug, Clone, Copy)]
pub(super) struct Exchange {
    /// The request's version.
    pub(super) version: Version,
    /// The request's `Connection` tokens.
    pub(super) connection: ConnectionTokens,
    /// [`Server::keep_alive`](crate::http::Server::keep_alive).
    pub(super) enabled: bool,
    /// The server is stopping: it finishes the request in flight, then
    /// closes.
    pub(super) draining: bool,
    /// The handler panicked (the client gets a 500).
    pub(super) panicked: bool,
    /// The response has a `Connection: close` field of its own.
    pub(super) response_close: bool,
    /// The response body has no length and cannot be chunked (an HTTP/1.0
    /// client): its end is the end of the connection.
    pub(super) unframed: bool,
    /// What is left of the request body.
    pub(super) body_left: BodyLeft,
    /// The client asked for `100 Continue` and the final response goes out
    /// without it: the client may or may not send the body now, so the
    /// bytes that follow cannot be told from the next request.
    pub(super) continue_unsent: bool,
}

/// Why a connection closes after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Close {
    /// Keep-alive is off on this server.
    Disabled,
    /// The client's version and `Connection` header ask for it.
    Client,
    /// The server is stopping.
    Draining,
    /// The handler panicked.
    Panicked,
    /// The response asks for it.
    Response,
    /// The response body runs to the end of the connection.
    Unframed,
    /// The request body failed.
    BodyFailed,
    /// More than [`DRAIN_LIMIT`] of the request body is left.
    BodyTooLarge,
    /// A `100 Continue` was expected and not sent; see
    /// [`Exchange::continue_unsent`].
    ContinueUnsent,
}

/// Whether the client lets the connection persist (RFC 9112 §9.3):
/// HTTP/1.1 unless it sent `close`; HTTP/1.0 only with `keep-alive` and
/// without `close`.
pub(super) fn client_allows(version: Version, connection: ConnectionTokens) -> bool {
    !connection.close && (version == Version::Http11 || connection.keep_alive)
}

/// `Ok(())` to keep the connection open after this exchange (once the
/// unread rest of the request body, if any, is drained), or why it closes.
pub(super) fn decide(x: &Exchange) -> Result<(), Close> {
    if !x.enabled {
        return Err(Close::Disabled);
    }
    if !client_allows(x.version, x.connection) {
        return Err(Close::Client);
    }
    if x.draining {
        return Err(Close::Draining);
    }
    if x.panicked {
        return Err(Close::Panicked);
    }
    if x.response_close {
        return Err(Close::Response);
    }
    match x.body_left {
        BodyLeft::Done => {}
        BodyLeft::Failed => return Err(Close::BodyFailed),
        _ if x.continue_unsent => return Err(Close::ContinueUnsent),
        BodyLeft::Length(n) if n > DRAIN_LIMIT => return Err(Close::BodyTooLarge),
        BodyLeft::Length(_) | BodyLeft::Chunked => {}
    }
    if x.unframed {
        return Err(Close::Unframed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn tokens(close: bool, keep_alive: bool) -> ConnectionTokens {
        ConnectionTokens { close, keep_alive }
    }

    /// An HTTP/1.1 exchange with nothing against keeping the connection.
    fn fine() -> Exchange {
        Exchange {
            version: Version::Http11,
            connection: tokens(false, false),
            enabled: true,
            draining: false,
            panicked: false,
            response_close: false,
            unframed: false,
            body_left: BodyLeft::Done,
            continue_unsent: false,
        }
    }

    #[test]
    fn a_plain_http11_exchange_keeps_the_connection() {
        assert_eq!(decide(&fine()), Ok(()));
    }

    #[test]
    fn http10_persists_only_when_the_client_asks() {
        let v10 = |connection| Exchange {
            version: Version::Http10,
            connection,
            ..fine()
        };
        assert_eq!(decide(&v10(tokens(false, false))), Err(Close::Client));
        assert_eq!(decide(&v10(tokens(false, true))), Ok(()));
        assert_eq!(decide(&v10(tokens(true, true))), Err(Close::Client));
    }

    #[test]
    fn connection_close_from_the_client_closes_http11() {
        let x = Exchange {
            connection: tokens(true, false),
            ..fine()
        };
        assert_eq!(decide(&x), Err(Close::Client));
        // `keep-alive` adds nothing to HTTP/1.1, and does not undo `close`.
        let x = Exchange {
            connection: tokens(false, true),
            ..fine()
        };
        assert_eq!(decide(&x), Ok(()));
        let x = Exchange {
            connection: tokens(true, true),
            ..fine()
        };
        assert_eq!(decide(&x), Err(Close::Client));
    }

    #[test]
    fn the_server_setting_and_draining_close() {
        let x = Exchange {
            enabled: false,
            ..fine()
        };
        assert_eq!(decide(&x), Err(Close::Disabled));
        let x = Exchange {
            draining: true,
            ..fine()
        };
        assert_eq!(decide(&x), Err(Close::Draining));
    }

    #[test]
    fn errors_close() {
        let x = Exchange {
            panicked: true,
            ..fine()
        };
        assert_eq!(decide(&x), Err(Close::Panicked));
        let x = Exchange {
            body_left: BodyLeft::Failed,
            ..fine()
        };
        assert_eq!(decide(&x), Err(Close::BodyFailed));
    }

    #[test]
    fn connection_close_from_the_response_closes() {
        let x = Exchange {
            response_close: true,
            ..fine()
        };
        assert_eq!(decide(&x), Err(Close::Response));
    }

    #[test]
    fn an_unframed_response_body_closes() {
        let x = Exchange {
            version: Version::Http10,
            connection: tokens(false, true),
            unframed: true,
            ..fine()
        };
        assert_eq!(decide(&x), Err(Close::Unframed));
    }

    #[test]
    fn an_unread_body_is_drained_up_to_the_limit() {
        let left = |body_left| Exchange {
            body_left,
            ..fine()
        };
        assert_eq!(decide(&left(BodyLeft::Length(DRAIN_LIMIT))), Ok(()));
        assert_eq!(
            decide(&left(BodyLeft::Length(DRAIN_LIMIT + 1))),
            Err(Close::BodyTooLarge)
        );
        // A chunked rest is drained until the limit says otherwise.
        assert_eq!(decide(&left(BodyLeft::Chunked)), Ok(()));
    }

    #[test]
    fn a_body_behind_an_unsent_100_continue_closes() {
        for body_left in [BodyLeft::Length(1), BodyLeft::Chunked] {
            let x = Exchange {
                body_left,
                continue_unsent: true,
                ..fine()
            };
            assert_eq!(decide(&x), Err(Close::ContinueUnsent));
        }
        // No body left: nothing is ambiguous.
        let x = Exchange {
            continue_unsent: true,
            ..fine()
        };
        assert_eq!(decide(&x), Ok(()));
    }
}
