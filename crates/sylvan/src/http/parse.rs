//! Request heads: push-based parsing with `httparse` (an incomplete head is
//! not an error), size limits, and the framing rules that keep request
//! smuggling out (RFC 9112 §6).

use std::mem::MaybeUninit;

use super::headers::{HeaderIdx, Headers, Version, list};

/// Size limits of a request; see the setters of [`Server`](super::Server).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_request_line: usize,
    pub(crate) max_header_bytes: usize,
    pub(crate) max_headers: usize,
    pub(crate) max_body: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: 8 * 1024,
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_body: 16 * 1024 * 1024,
        }
    }
}

/// Largest request line or header section a server accepts to be
/// configured with (1 GiB): with both at most this, a whole head stays
/// below 4 GiB, so the `u32` offsets of a parsed [`Head`] cannot overflow.
pub(crate) const MAX_HEAD_LIMIT: usize = 1 << 30;

impl Limits {
    /// Largest the connection's read buffer grows: a whole head, plus room
    /// for the start of a body or of the next pipelined request.
    pub(crate) fn read_buffer_max(&self) -> usize {
        self.max_request_line
            .saturating_add(self.max_header_bytes)
            .saturating_add(8192)
    }
}

/// Why a request was refused before its handler ran; each maps to the
/// status sent back (after which the connection closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
    /// 400, with what was wrong.
    Bad(&'static str),
    /// 413
    BodyTooLarge,
    /// 414
    UriTooLong,
    /// 417
    Expectation,
    /// 431
    HeadersTooLarge,
    /// 501
    NotImplemented(&'static str),
    /// 505
    Version,
}

impl Reject {
    pub(crate) fn status(self) -> u16 {
        match self {
            Reject::Bad(_) => 400,
            Reject::BodyTooLarge => 413,
            Reject::UriTooLong => 414,
            Reject::Expectation => 417,
            Reject::HeadersTooLarge => 431,
            Reject::NotImplemented(_) => 501,
            Reject::Version => 505,
        }
    }

    pub(crate) fn message(self) -> &'static str {
        match self {
            Reject::Bad(m) | Reject::NotImplemented(m) => m,
            Reject::BodyTooLarge => "request body too large",
            Reject::UriTooLong => "request line too long",
            Reject::Expectation => "unsupported Expect value",
            Reject::HeadersTooLarge => "request header fields too large",
            Reject::Version => "HTTP version not supported",
        }
    }
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// The persistence tokens of a request's `Connection` fields (RFC 9112
/// §9.3); what they mean with each version is decided in
/// `conn::keep_alive`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ConnectionTokens {
    /// A `close` token.
    pub(crate) close: bool,
    /// A `keep-alive` token.
    pub(crate) keep_alive: bool,
}

/// A parsed request head: owned bytes plus indexes into them.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) headers: Headers,
    pub(crate) method: (u32, u32),
    pub(crate) target: (u32, u32),
    pub(crate) version: Version,
    pub(crate) framing: Framing,
    /// What the request's `Connection` header said about persistence.
    pub(crate) connection: ConnectionTokens,
    pub(crate) expect_continue: bool,
}

impl Head {
    pub(crate) fn method(&self) -> &str {
        self.headers.str_at(self.method)
    }

    pub(crate) fn target(&self) -> &str {
        self.headers.str_at(self.target)
    }

    pub(crate) fn is_head(&self) -> bool {
        self.headers.bytes_at(self.method) == b"HEAD"
    }
}

#[cfg(test)]
thread_local! {
    /// Calls of [`parse_head`] on this thread, for tests that bound the
    /// work per request.
    pub(crate) static PARSE_CALLS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The stack holds this many `httparse` header slots (1 KiB); a head with
/// more fields is parsed again with slots on the heap. Kept small: every
/// page of a connection's stack that a request touches stays resident
/// while the connection idles, so a deep frame here costs memory on every
/// keep-alive connection.
const STACK_HEADERS: usize = 32;

/// Parses one request head at the start of `buf`.
///
/// `Ok(None)`: incomplete, read more (unless a limit says otherwise, which
/// is checked here too). `Ok(Some((head, n)))`: the head took `n` bytes.
pub(crate) fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<(Head, usize)>, Reject> {
    #[cfg(test)]
    PARSE_CALLS.with(|c| c.set(c.get() + 1));
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let on_stack = limits.max_headers.clamp(1, STACK_HEADERS);
    match parse_with(buf, limits, &mut slots[..on_stack])? {
        Parsed::Head(head, n) => Ok(Some((head, n))),
        Parsed::Partial => Ok(None),
        Parsed::TooManyFields if limits.max_headers > STACK_HEADERS => {
            parse_with_heap_slots(buf, limits)
        }
        Parsed::TooManyFields => Err(Reject::HeadersTooLarge),
    }
}

/// [`parse_head`] for a head with more fields than the stack holds slots.
#[cold]
fn parse_with_heap_slots(buf: &[u8], limits: &Limits) -> Result<Option<(Head, usize)>, Reject> {
    // Each field ends with its own LF: slots for more fields than the
    // bytes hold lines would never be used, so the memory a parse takes
    // follows the input, not the setting (which may be `usize::MAX`).
    let lines = buf.iter().filter(|&&b| b == b'\n').count();
    let mut slots: Vec<MaybeUninit<httparse::Header<'_>>> = Vec::new();
    slots.resize_with(
        limits.max_headers.clamp(1, lines.max(1)),
        MaybeUninit::uninit,
    );
    match parse_with(buf, limits, &mut slots)? {
        Parsed::Head(head, n) => Ok(Some((head, n))),
        Parsed::Partial => Ok(None),
        Parsed::TooManyFields => Err(Reject::HeadersTooLarge),
    }
}

/// What one parse with a given number of header slots found.
enum Parsed {
    Head(Head, usize),
    Partial,
    /// More fields than slots.
    TooManyFields,
}

fn parse_with<'b>(
    buf: &'b [u8],
    limits: &Limits,
    slots: &mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<Parsed, Reject> {
    let mut req = httparse::Request::new(&mut []);
    let status =
        httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut req, buf, slots);
    let n = match status {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            check_partial(buf, limits)?;
            return Ok(Parsed::Partial);
        }
        Err(httparse::Error::TooManyHeaders) => return Ok(Parsed::TooManyFields),
        Err(httparse::Error::Version) => {
            // A line that is too long is reported as such even when the
            // parser stumbled on it first.
            check_partial(buf, limits)?;
            return Err(Reject::Version);
        }
        Err(e) => {
            check_partial(buf, limits)?;
            return Err(Reject::Bad(bad_message(e)));
        }
    };
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Err(Reject::Bad("malformed request"));
    };
    let base = buf.as_ptr() as usize;
    // Every slice lies within `buf[..n]`.
    let at = |s: &[u8]| (s.as_ptr() as usize).wrapping_sub(base);
    let method = (at(method.as_bytes()), method.len());
    let target = (at(target.as_bytes()), target.len());
    // The request line runs from the method (after any empty lines the
    // parser skipped) to the LF after the version, a few bytes past the
    // target.
    let target_end = target.0 + target.1;
    let line_end = buf
        .get(target_end..n)
        .and_then(|rest| memchr(b'\n', rest))
        .map_or(n, |i| target_end + i + 1);
    let line_len = line_end.saturating_sub(method.0);
    if line_len > limits.max_request_line {
        return Err(Reject::UriTooLong);
    }
    if n - line_len > limits.max_header_bytes {
        return Err(Reject::HeadersTooLarge);
    }
    if u32::try_from(n).is_err() {
        // Offsets into the head are `u32`; `Server` refuses limits that
        // would allow a head this large, this is for `Limits` made by hand.
        return Err(Reject::HeadersTooLarge);
    }
    // `n` fits a `u32`, so do these.
    let off = |s: &[u8]| -> (u32, u32) {
        let start = at(s);
        (start as u32, (start + s.len()) as u32)
    };
    let span = |(start, len): (usize, usize)| (start as u32, (start + len) as u32);
    let (method, target) = (span(method), span(target));
    let version = match req.version {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    };
    let index = req.headers.iter().map(|h| {
        let (ns, ne) = off(h.name.as_bytes());
        let (vs, ve) = off(h.value);
        HeaderIdx { ns, ne, vs, ve }
    });
    let headers = Headers::new(&buf[..n], index);
    let mut head = Head {
        headers,
        method,
        target,
        version,
        framing: Framing::None,
        connection: ConnectionTokens::default(),
        expect_continue: false,
    };
    semantics(&mut head, limits)?;
    Ok(Parsed::Head(head, n))
}

/// Most empty lines ignored before a request line: RFC 9112 §2.2 asks a
/// server to ignore at least one (some clients send a CRLF after a POST
/// body); more than this is a `400`.
pub(crate) const MAX_EMPTY_LINES: usize = 4;

/// What [`HeadScan::scan`] found in the bytes received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// Empty lines before the request line: drop this many bytes, then
    /// scan again.
    Skip(usize),
    /// The head cannot be complete yet, nor is there anything new to
    /// check: read more.
    Partial,
    /// Parse now: the request line just ended (so a bad one is refused
    /// early) or the end of the head has arrived.
    Parse,
}

/// Decides, as the bytes of one request head arrive, when parsing it is
/// worth it, so that a head costs at most two parses however it is split
/// into reads, and its bytes are searched once. Limits that the bytes so
/// far already break are reported here, without parsing.
#[derive(Debug, Default)]
pub(crate) struct HeadScan {
    /// Empty lines skipped before the request line.
    empty_lines: usize,
    /// Bytes searched so far (after the skipped empty lines).
    scanned: usize,
    /// Length of the request line, LF included, once it has ended.
    line_len: Option<usize>,
}

impl HeadScan {
    /// Looks at `data`, the unread bytes: the same ones as the previous
    /// call plus new ones, minus any [`Scan::Skip`] dropped.
    pub(crate) fn scan(&mut self, data: &[u8], limits: &Limits) -> Result<Scan, Reject> {
        if self.scanned == 0 {
            let mut skip = 0;
            loop {
                let n = match &data[skip..] {
                    [b'\n', ..] => 1,
                    [b'\r', b'\n', ..] => 2,
                    [b'\r'] | [] => {
                        return Ok(if skip > 0 {
                            Scan::Skip(skip)
                        } else {
                            Scan::Partial
                        });
                    }
                    _ => break,
                };
                self.empty_lines += 1;
                if self.empty_lines > MAX_EMPTY_LINES {
                    return Err(Reject::Bad("too many empty lines before the request line"));
                }
                skip += n;
            }
            if skip > 0 {
                return Ok(Scan::Skip(skip));
            }
        }
        let from = self.scanned.min(data.len());
        self.scanned = data.len();
        let mut scan = Scan::Partial;
        let line = match self.line_len {
            Some(line) => line,
            None => match memchr(b'\n', &data[from..]) {
                Some(i) => {
                    self.line_len = Some(from + i + 1);
                    scan = Scan::Parse;
                    from + i + 1
                }
                None => data.len(),
            },
        };
        if line > limits.max_request_line {
            return Err(Reject::UriTooLong);
        }
        // The end of the head is an empty line: LF, then CRLF or LF. Look
        // for it in the new bytes (and the two before, where it may start),
        // from the LF that ends the request line on; first at the very
        // end, where a read that brings a whole head leaves it.
        if self.line_len.is_some()
            && (data.ends_with(b"\n\n")
                || data.ends_with(b"\n\r\n")
                || ends_head(&data[from.saturating_sub(2).max(line - 1)..]))
        {
            return Ok(Scan::Parse);
        }
        if data.len() - line > limits.max_header_bytes {
            return Err(Reject::HeadersTooLarge);
        }
        Ok(scan)
    }
}

/// Whether `bytes` hold an LF followed by an LF or a CRLF.
fn ends_head(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', bytes)
        .any(|i| matches!(&bytes[i + 1..], [b'\n', ..] | [b'\r', b'\n', ..]))
}

/// Length of the request line, CRLF included, ignoring the empty lines a
/// client may send before it (RFC 9112 §2.2).
fn request_line_len(buf: &[u8]) -> usize {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    match memchr(b'\n', &buf[start..]) {
        Some(i) => i + 1,
        None => buf.len() - start,
    }
}

fn check_partial(buf: &[u8], limits: &Limits) -> Result<(), Reject> {
    let line = request_line_len(buf);
    if line > limits.max_request_line {
        return Err(Reject::UriTooLong);
    }
    if buf.len().saturating_sub(line) > limits.max_header_bytes {
        return Err(Reject::HeadersTooLarge);
    }
    Ok(())
}

pub(crate) fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    memchr::memchr(needle, hay)
}

fn bad_message(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Token => "invalid token in request line",
        _ => "malformed request",
    }
}

/// Framing, connection and expectation rules of one request head.
fn semantics(head: &mut Head, limits: &Limits) -> Result<(), Reject> {
    let mut content_length: Option<u64> = None;
    let mut te_seen = false;
    let mut chunked_last = false;
    let mut hosts = 0;
    let mut expect = None;
    for (name, value) in head.headers.iter_raw() {
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => hosts += 1,
            6 if name.eq_ignore_ascii_case(b"expect") => {
                if expect.is_some() {
                    return Err(Reject::Expectation);
                }
                expect = Some(value.eq_ignore_ascii_case(b"100-continue"));
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for t in list(value) {
                    if t.eq_ignore_ascii_case(b"close") {
                        head.connection.close = true;
                    } else if t.eq_ignore_ascii_case(b"keep-alive") {
                        head.connection.keep_alive = true;
                    }
                }
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                if content_length.is_some() {
                    return Err(Reject::Bad("duplicate Content-Length"));
                }
                content_length = Some(parse_length(value)?);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                for coding in list(value) {
                    if chunked_last {
                        // Anything after `chunked` (including a second
                        // `chunked`) leaves the body without a framing.
                        return Err(Reject::Bad("chunked is not the final transfer coding"));
                    }
                    if coding.eq_ignore_ascii_case(b"chunked") {
                        chunked_last = true;
                    } else {
                        return Err(Reject::NotImplemented("unsupported Transfer-Encoding"));
                    }
                }
                te_seen = true;
            }
            _ => {}
        }
    }
    if te_seen {
        if content_length.is_some() {
            return Err(Reject::Bad("both Content-Length and Transfer-Encoding"));
        }
        if head.version == Version::Http10 {
            return Err(Reject::Bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        if !chunked_last {
            return Err(Reject::Bad("empty Transfer-Encoding"));
        }
        head.framing = Framing::Chunked;
    } else if let Some(n) = content_length {
        if n > limits.max_body {
            return Err(Reject::BodyTooLarge);
        }
        head.framing = if n == 0 {
            Framing::None
        } else {
            Framing::Length(n)
        };
    }
    if head.version == Version::Http11 && hosts != 1 {
        return Err(Reject::Bad(if hosts == 0 {
            "missing Host header"
        } else {
            "more than one Host header"
        }));
    }
    match expect {
        Some(false) => return Err(Reject::Expectation),
        Some(true) => head.expect_continue = head.version == Version::Http11,
        None => {}
    }
    Ok(())
}

/// `Content-Length`: digits only (no sign, no list, no spaces inside), at
/// most 19 of them so it fits a `u64`.
fn parse_length(v: &[u8]) -> Result<u64, Reject> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(Reject::Bad("invalid Content-Length"));
    }
    Ok(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// A parsed response head, as the [client](super::Client) reads it.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) status: u16,
    pub(crate) reason: String,
    pub(crate) version: Version,
    pub(crate) headers: Headers,
}

/// How a response body is delimited (RFC 9112 §6.3), from the client's
/// side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseFraming {
    /// No body: a response to `HEAD`, a 1xx, 204 or 304.
    Empty,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes the connection.
    Close,
}

/// Parses one response head at the start of `buf`: `Ok(None)` while it is
/// incomplete and within `max_head` bytes, the head and its length once it
/// is complete, or what is wrong with it.
pub(crate) fn parse_response_head(
    buf: &[u8],
    max_head: usize,
    max_headers: usize,
) -> Result<Option<(ResponseHead, usize)>, &'static str> {
    let lines = buf.iter().filter(|&&b| b == b'\n').count();
    let max_headers = max_headers.clamp(1, lines.max(1));
    let mut slots: Vec<MaybeUninit<httparse::Header<'_>>> = Vec::new();
    slots.resize_with(max_headers, MaybeUninit::uninit);
    let mut resp = httparse::Response::new(&mut []);
    let status = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, &mut slots);
    let n = match status {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > max_head => {
            return Err("response head too large");
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err("too many response header fields"),
        Err(httparse::Error::Version) => {
            return Err("malformed status line (not HTTP/1.x)");
        }
        Err(httparse::Error::Status | httparse::Error::Token) => {
            return Err("malformed status line");
        }
        Err(httparse::Error::HeaderName | httparse::Error::HeaderValue) => {
            return Err("malformed response header field");
        }
        Err(_) => return Err("malformed response head"),
    };
    if n > max_head || u32::try_from(n).is_err() {
        return Err("response head too large");
    }
    let code = resp.code.unwrap_or(0);
    if !(100..=999).contains(&code) {
        return Err("malformed status line");
    }
    let base = buf.as_ptr() as usize;
    // Every slice lies within `buf[..n]`, and `n` fits a `u32`.
    let off = |s: &[u8]| -> (u32, u32) {
        let start = (s.as_ptr() as usize).wrapping_sub(base);
        (start as u32, (start + s.len()) as u32)
    };
    let index = resp.headers.iter().map(|h| {
        let (ns, ne) = off(h.name.as_bytes());
        let (vs, ve) = off(h.value);
        HeaderIdx { ns, ne, vs, ve }
    });
    let head = ResponseHead {
        status: code,
        reason: resp.reason.unwrap_or("").to_string(),
        version: match resp.version {
            Some(0) => Version::Http10,
            _ => Version::Http11,
        },
        headers: Headers::new(&buf[..n], index),
    };
    Ok(Some((head, n)))
}

impl ResponseHead {
    /// How the body of this response (to a `HEAD` request if `head`) is
    /// delimited, or why it cannot be read safely.
    pub(crate) fn framing(&self, head: bool) -> Result<ResponseFraming, &'static str> {
        if head || (100..200).contains(&self.status) || self.status == 204 || self.status == 304 {
            return Ok(ResponseFraming::Empty);
        }
        let mut te = None;
        let mut length: Option<u64> = None;
        for (name, value) in self.headers.iter_bytes() {
            if name.eq_ignore_ascii_case("transfer-encoding") {
                // Only the last coding of the last field counts.
                if let Some(last) = list(value).last() {
                    te = Some(last.eq_ignore_ascii_case(b"chunked"));
                }
            } else if name.eq_ignore_ascii_case("content-length") {
                // `5, 5` or two fields of 5 are one length (RFC 9110 §8.6).
                for v in list(value) {
                    let n = parse_length(v).map_err(|_| "invalid Content-Length")?;
                    if length.is_some_and(|l| l != n) {
                        return Err("conflicting Content-Length values");
                    }
                    length = Some(n);
                }
            }
        }
        Ok(match (te, length) {
            (Some(true), _) => ResponseFraming::Chunked,
            (Some(false), _) => ResponseFraming::Close,
            (None, Some(n)) => ResponseFraming::Length(n),
            (None, None) => ResponseFraming::Close,
        })
    }

    /// Whether the server lets the connection be used again after this
    /// response: HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with
    /// `Connection: keep-alive`; never when the body runs to the close, or
    /// when both `Transfer-Encoding` and `Content-Length` were sent (RFC
    /// 9112 §6.3).
    pub(crate) fn keep_alive(&self, framing: ResponseFraming) -> bool {
        let h = &self.headers;
        if framing == ResponseFraming::Close
            || h.has_token("connection", "close")
            || (h.contains("transfer-encoding") && h.contains("content-length"))
        {
            return false;
        }
        match self.version {
            Version::Http11 => true,
            Version::Http10 => h.has_token("connection", "keep-alive"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Option<(Head, usize)>, Reject> {
        parse_head(s.as_bytes(), &Limits::default())
    }

    fn reject(s: &str) -> Reject {
        parse(s).unwrap_err()
    }

    #[test]
    fn simple_get() {
        let (h, n) = parse("GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\nrest")
            .unwrap()
            .unwrap();
        assert_eq!(n, 40);
        assert_eq!(h.method(), "GET");
        assert_eq!(h.target(), "/a?b=1");
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.headers.get("x-a"), Some("1"));
        assert_eq!(h.framing, Framing::None);
        assert_eq!(h.connection, ConnectionTokens::default());
    }

    #[test]
    fn partial_is_not_an_error() {
        assert!(parse("GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
        assert!(parse("GE").unwrap().is_none());
        assert!(parse("").unwrap().is_none());
    }

    #[test]
    fn framing_rules() {
        let ok = |s: &str| parse(s).unwrap().unwrap().0.framing;
        assert_eq!(
            ok("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"),
            Framing::Length(5)
        );
        assert_eq!(
            ok("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Framing::Chunked
        );
        assert_eq!(
            ok("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED\r\n\r\n"),
            Framing::Chunked
        );
        let both =
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(reject(both), Reject::Bad(_)));
        let dup = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n";
        assert!(matches!(reject(dup), Reject::Bad(_)));
        for bad in ["-1", "+5", "5, 5", "0x5", "", "1 2", "99999999999999999999"] {
            let s = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {bad}\r\n\r\n");
            assert!(matches!(reject(&s), Reject::Bad(_)), "{bad}");
        }
        let gz = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(reject(gz).status(), 501);
        let twice = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n";
        assert_eq!(reject(twice).status(), 400);
        let split = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(reject(split).status(), 400);
        let v10 = "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(reject(v10).status(), 400);
        let big = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n";
        assert_eq!(reject(big), Reject::BodyTooLarge);
    }

    #[test]
    fn limits() {
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(9000));
        assert_eq!(reject(&long), Reject::UriTooLong);
        assert_eq!(reject(&long[..8200]), Reject::UriTooLong);
        let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
        let s = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
        assert_eq!(reject(&s), Reject::HeadersTooLarge);
        let huge = format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n", "v".repeat(70_000));
        assert_eq!(reject(&huge), Reject::HeadersTooLarge);
    }

    #[test]
    fn connection_and_host() {
        let h = |s: &str| parse(s).unwrap().unwrap().0;
        let tokens = |close, keep_alive| ConnectionTokens { close, keep_alive };
        let c = |s: &str| h(s).connection;
        assert_eq!(
            c("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            tokens(true, false)
        );
        assert_eq!(c("GET / HTTP/1.0\r\n\r\n"), tokens(false, false));
        assert_eq!(
            c("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"),
            tokens(false, true)
        );
        assert_eq!(
            c("GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade , CLOSE\r\n\r\n"),
            tokens(true, false)
        );
        assert_eq!(reject("GET / HTTP/1.1\r\n\r\n").status(), 400);
        assert_eq!(
            reject("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status(),
            400
        );
        assert!(h("GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n").expect_continue);
        assert_eq!(
            reject("GET / HTTP/1.1\r\nHost: x\r\nExpect: nope\r\n\r\n").status(),
            417
        );
        assert_eq!(reject("GET / HTTP/2.0\r\nHost: x\r\n\r\n").status(), 505);
        assert_eq!(reject("GET / HTTP/1.1\r\nHost : x\r\n\r\n").status(), 400);
        assert_eq!(
            reject("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n").status(),
            400
        );
    }

    /// Feeds `wire` to a scanner a byte at a time; returns the lengths at
    /// which it asked for a parse.
    fn parse_points(wire: &[u8]) -> Vec<usize> {
        let mut scan = HeadScan::default();
        let mut data = Vec::new();
        let mut at = Vec::new();
        for &b in wire {
            data.push(b);
            loop {
                match scan.scan(&data, &Limits::default()).unwrap() {
                    Scan::Skip(n) => drop(data.drain(..n)),
                    Scan::Parse => break at.push(data.len()),
                    Scan::Partial => break,
                }
            }
        }
        at
    }

    #[test]
    fn head_scan_asks_for_a_parse_at_the_line_and_at_the_end() {
        let crlf = b"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n\r\n";
        assert_eq!(parse_points(crlf), [16, crlf.len()]);
        let lf = b"GET / HTTP/1.1\nHost: x\nA: b\n\n";
        assert_eq!(parse_points(lf), [15, lf.len()]);
        let no_headers = b"GET / HTTP/1.0\r\n\r\n";
        assert_eq!(parse_points(no_headers), [16, 18]);
        let mixed = b"\r\n\nGET / HTTP/1.1\nHost: x\n\r\n";
        assert_eq!(parse_points(mixed), [15, 25]); // after the 3 bytes skipped
    }

    #[test]
    fn head_scan_finds_the_end_of_a_head_read_whole() {
        let l = Limits::default();
        let head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(HeadScan::default().scan(head, &l), Ok(Scan::Parse));
        // Followed by the start of a pipelined request or of a body.
        let mut more = head.to_vec();
        more.extend_from_slice(b"GET /next HTTP/1.1\r\nHo");
        assert_eq!(HeadScan::default().scan(&more, &l), Ok(Scan::Parse));
        // Not ended yet: a parse for the request line, then none until
        // the end arrives.
        let mut s = HeadScan::default();
        let open = b"GET / HTTP/1.1\r\nHost: x\r\n";
        assert_eq!(s.scan(open, &l), Ok(Scan::Parse));
        assert_eq!(s.scan(open, &l), Ok(Scan::Partial));
        assert_eq!(s.scan(head, &l), Ok(Scan::Parse));
        // An LF-only head, and an empty line right after the request line.
        assert_eq!(
            HeadScan::default().scan(b"GET / HTTP/1.0\n\n", &l),
            Ok(Scan::Parse)
        );
    }

    #[test]
    fn head_scan_checks_limits_without_parsing() {
        let l = Limits::default();
        let mut s = HeadScan::default();
        assert_eq!(s.scan(&[b'a'; 9000], &l), Err(Reject::UriTooLong));
        let mut s = HeadScan::default();
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        big.resize(big.len() + 70_000, b'x');
        assert_eq!(s.scan(&big, &l), Err(Reject::HeadersTooLarge));
        let mut s = HeadScan::default();
        assert_eq!(s.scan(b"\n\n\n\n", &l), Ok(Scan::Skip(4)));
        assert_eq!(
            s.scan(b"\r\nGET", &l),
            Err(Reject::Bad("too many empty lines before the request line"))
        );
    }
    fn resp(s: &str) -> ResponseHead {
        parse_response_head(s.as_bytes(), 1024, 16)
            .unwrap()
            .unwrap()
            .0
    }

    #[test]
    fn response_heads() {
        let r = resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
        assert_eq!(r.framing(false), Ok(ResponseFraming::Length(5)));
        assert_eq!(r.framing(true), Ok(ResponseFraming::Empty));
        assert!(r.keep_alive(ResponseFraming::Length(5)));
        let r = resp("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(r.framing(false), Ok(ResponseFraming::Empty));
        let r = resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!(r.framing(false), Ok(ResponseFraming::Chunked));
        let r = resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert_eq!(r.framing(false), Ok(ResponseFraming::Close));
        let r = resp("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n");
        assert!(!r.keep_alive(ResponseFraming::Length(1)));
        let r = resp("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\n");
        assert!(r.keep_alive(ResponseFraming::Length(1)));
        let r = resp("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n");
        assert!(!r.keep_alive(ResponseFraming::Length(1)));
        let r = resp("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(r.framing(false), Ok(ResponseFraming::Length(3)));
        let r = resp("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n");
        assert!(r.framing(false).is_err());
        let r = resp("HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n");
        assert!(r.framing(false).is_err());
        let r = resp("HTTP/1.1 200\r\n\r\n");
        assert_eq!(
            (r.status, r.framing(false)),
            (200, Ok(ResponseFraming::Close))
        );
    }

    #[test]
    fn response_head_errors() {
        let p = |s: &str| parse_response_head(s.as_bytes(), 64, 4);
        assert!(p("HTTP/1.1 200 OK\r\nA: b").unwrap().is_none());
        assert!(p("HTTP/1.1 2").unwrap().is_none());
        assert!(p("HTTP/2 200 OK\r\n\r\n").is_err());
        assert!(p("HTTP/1.1 abc OK\r\n\r\n").is_err());
        assert!(p("HTTP/1.1 099 Low\r\n\r\n").is_err());
        assert!(p("garbage\r\n\r\n").is_err());
        assert!(p("HTTP/1.1 200 OK\r\nA b: c\r\n\r\n").is_err());
        assert_eq!(
            p(&format!("HTTP/1.1 200 OK\r\nA: {}", "x".repeat(100))).unwrap_err(),
            "response head too large"
        );
        assert_eq!(
            p("HTTP/1.1 200 OK\r\nA: 1\r\nA: 2\r\nA: 3\r\nA: 4\r\nA: 5\r\n\r\n").unwrap_err(),
            "too many response header fields"
        );
    }

    proptest::proptest! {
        #[test]
        fn response_parser_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            if let Ok(Some((head, n))) = parse_response_head(&bytes, 256, 8) {
                proptest::prop_assert!(n <= bytes.len());
                let _ = head.framing(false).map(|f| head.keep_alive(f));
                let _ = head.headers.iter().count();
            }
        }

        #[test]
        fn response_parser_finds_heads_split_anywhere(split in 0usize..60) {
            let wire = b"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\nNEXT";
            let split = split.min(wire.len());
            if let Ok(Some((_, n))) = parse_response_head(&wire[..split], 256, 8) {
                proptest::prop_assert_eq!(n, wire.len() - 4);
            }
            let (head, n) = parse_response_head(wire, 256, 8).unwrap().unwrap();
            proptest::prop_assert_eq!((head.status, n), (302, wire.len() - 4));
        }
    }
}
