//! [`Response`]: status, headers and a [`Body`]; and the head serializer.

use std::borrow::Cow;
use std::fmt;
use std::io::Read;

use super::body::{Body, BodyKind};
use super::upgrade::Upgraded;

type UpgradeFn = Box<dyn FnOnce(Upgraded)>;

/// One header field of a response.
pub(crate) type Field = (Cow<'static, str>, Cow<'static, str>);

/// The header fields of a response, in order. The first is kept inline:
/// most responses built with [`Response::text`], `html` or `bytes` have
/// only their `Content-Type`, and a vector for it was an allocation (and
/// a free) per response. A second field moves them to a vector with room
/// for four, as the vector alone used to allocate.
#[derive(Default)]
pub(crate) enum Fields {
    #[default]
    Empty,
    One(Field),
    /// The `Content-Type` of [`Response::text`], `html` or `bytes`, alone:
    /// a valid name, a value without line breaks, and no framing field,
    /// so the head writer copies it out without checking it
    /// ([`typed`](Self::typed)).
    Typed(Field),
    Many(Vec<Field>),
}

impl Fields {
    pub(crate) fn as_slice(&self) -> &[Field] {
        match self {
            Fields::Empty => &[],
            Fields::One(f) | Fields::Typed(f) => std::slice::from_ref(f),
            Fields::Many(v) => v,
        }
    }

    /// The one field of a typed response: sent as it is.
    pub(crate) fn typed(&self) -> Option<&Field> {
        match self {
            Fields::Typed(f) => Some(f),
            _ => None,
        }
    }

    pub(crate) fn iter(&self) -> std::slice::Iter<'_, Field> {
        self.as_slice().iter()
    }

    fn push(&mut self, field: Field) {
        *self = match std::mem::take(self) {
            Fields::Empty => Fields::One(field),
            Fields::One(first) | Fields::Typed(first) => {
                let mut v = Vec::with_capacity(4);
                v.push(first);
                v.push(field);
                Fields::Many(v)
            }
            Fields::Many(mut v) => {
                v.push(field);
                Fields::Many(v)
            }
        };
    }

    fn retain(&mut self, mut keep: impl FnMut(&Field) -> bool) {
        match self {
            Fields::Empty => {}
            Fields::One(f) | Fields::Typed(f) => {
                if !keep(f) {
                    *self = Fields::Empty;
                }
            }
            Fields::Many(v) => v.retain(keep),
        }
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = &'a Field;
    type IntoIter = std::slice::Iter<'a, Field>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// An HTTP response, built by a handler and sent by the server.
///
/// The server owns the framing: it writes `Content-Length` or
/// `Transfer-Encoding`, `Connection` and (unless the handler set one)
/// `Date`; a handler's own `Content-Length`, `Transfer-Encoding` and
/// `Connection` fields are not sent, except that `Connection: close` makes
/// the server close the connection after this response and a
/// `Content-Length` gives the length of a [streamed](Body::from_reader)
/// body. For `HEAD` requests the body is not sent (its length, if known,
/// is). Header values containing CR, LF or NUL have those bytes replaced by
/// spaces, and fields whose name is not a valid token are dropped (with a
/// warning), so a response can never be split.
///
/// # Examples
///
/// ```
/// use sylvan::http::Response;
///
/// let r = Response::text("hello")
///     .with_status(201)
///     .header("X-Request-Id", "42");
/// assert_eq!(r.status(), 201);
/// assert_eq!(r.header_value("x-request-id"), Some("42"));
/// assert_eq!(r.header_value("content-type"), Some("text/plain; charset=utf-8"));
///
/// let empty = Response::new(204);
/// assert_eq!(empty.body().len(), Some(0));
/// ```
pub struct Response {
    status: u16,
    headers: Fields,
    body: Body,
    upgrade: Option<UpgradeFn>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers.as_slice())
            .field("body", &self.body)
            .field("upgrade", &self.upgrade.is_some())
            .finish()
    }
}

impl Default for Response {
    fn default() -> Self {
        Response::new(200)
    }
}

impl Response {
    /// A response with `status` and no body or headers.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan::http::Response::new(404).status(), 404);
    /// ```
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Fields::Empty,
            body: Body::empty(),
            upgrade: None,
        }
    }

    /// `200 OK` with `body` and its `Content-Type`: the one field, built in
    /// place (through [`header`](Self::header) the response would be moved
    /// and its fields matched on once more, for every response) and known
    /// valid. `content_type` is one of this module's constants.
    fn typed(content_type: &'static str, body: Body) -> Response {
        Response {
            status: 200,
            headers: Fields::Typed((Cow::Borrowed("Content-Type"), Cow::Borrowed(content_type))),
            body,
            upgrade: None,
        }
    }

    /// `200 OK` with a UTF-8 plain-text body.
    ///
    /// # Examples
    ///
    /// ```
    /// let r = sylvan::http::Response::text("hi");
    /// assert_eq!(r.body().len(), Some(2));
    /// ```
    pub fn text(body: impl Into<Cow<'static, str>>) -> Response {
        Response::typed("text/plain; charset=utf-8", body.into().into())
    }

    /// `200 OK` with an HTML body.
    ///
    /// # Examples
    ///
    /// ```
    /// let r = sylvan::http::Response::html("<p>hi</p>");
    /// assert_eq!(r.header_value("Content-Type"), Some("text/html; charset=utf-8"));
    /// ```
    pub fn html(body: impl Into<Cow<'static, str>>) -> Response {
        Response::typed("text/html; charset=utf-8", body.into().into())
    }

    /// `200 OK` with a binary body (`application/octet-stream`).
    ///
    /// # Examples
    ///
    /// ```
    /// let r = sylvan::http::Response::bytes(vec![0u8; 4]);
    /// assert_eq!(r.body().len(), Some(4));
    /// ```
    pub fn bytes(body: impl Into<Body>) -> Response {
        Response::typed("application/octet-stream", body.into())
    }

    /// `200 OK` with a body streamed from `reader` (see
    /// [`Body::from_reader`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let r = sylvan::http::Response::from_reader(std::io::Cursor::new(vec![1, 2, 3]));
    /// assert_eq!(r.body().len(), None);
    /// ```
    pub fn from_reader(reader: impl Read + 'static) -> Response {
        Response::new(200).with_body(Body::from_reader(reader))
    }

    /// A plain-text response with `status` whose body is the reason phrase
    /// (`"404 Not Found"`).
    ///
    /// # Examples
    ///
    /// ```
    /// let r = sylvan::http::Response::status_page(404);
    /// assert_eq!(r.body().len(), Some("404 Not Found\n".len() as u64));
    /// ```
    pub fn status_page(status: u16) -> Response {
        Response::text(format!("{status} {}\n", reason(status))).with_status(status)
    }

    /// Sets the status code.
    pub fn with_status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Body>) -> Response {
        self.body = body.into();
        self
    }

    /// Adds a header field (several fields may share a name).
    pub fn header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets header `name`, replacing every field of that name (any case).
    ///
    /// # Examples
    ///
    /// ```
    /// let r = sylvan::http::Response::text("x").set_header("content-type", "text/csv");
    /// assert_eq!(r.header_value("Content-Type"), Some("text/csv"));
    /// ```
    pub fn set_header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Response {
        let name = name.into();
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.headers.push((name, value.into()));
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first value of header `name` (any case).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &**v)
    }

    /// The header fields set so far, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (&**n, &**v))
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// Switches protocols after this response: once the server has sent it
    /// (typically `101 Switching Protocols` with an `Upgrade` field), it
    /// hands the connection to `f`, which runs in the connection's green
    /// thread; the connection closes when `f` returns. The body of such a
    /// response is not sent. [`websocket::accept`](crate::websocket::accept)
    /// is built on this.
    ///
    /// If the response cannot be sent, `f` is dropped without running.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use sylvan::http::{Response, Server};
    ///
    /// let server = Server::bind("127.0.0.1:0").unwrap().serve(|_req| {
    ///     Response::new(101)
    ///         .header("Upgrade", "echo")
    ///         .on_upgrade(|mut conn| {
    ///             let mut buf = [0; 64];
    ///             while let Ok(n @ 1..) = conn.read(&mut buf) {
    ///                 if conn.write_all(&buf[..n]).is_err() {
    ///                     break;
    ///                 }
    ///             }
    ///         })
    /// });
    /// let mut c = sylvan::connect(server.local_addr()).unwrap();
    /// c.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nping").unwrap();
    /// let mut head = [0; 128];
    /// let mut got = Vec::new();
    /// while !got.ends_with(b"ping") {
    ///     let n = c.read(&mut head).unwrap();
    ///     got.extend_from_slice(&head[..n]);
    /// }
    /// assert!(got.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    /// ```
    pub fn on_upgrade(mut self, f: impl FnOnce(Upgraded) + 'static) -> Response {
        self.upgrade = Some(Box::new(f));
        self
    }

    pub(crate) fn into_parts(self) -> Parts {
        Parts {
            status: self.status,
            headers: self.headers,
            body: self.body.kind,
            upgrade: self.upgrade,
        }
    }
}

/// A response taken apart for sending.
pub(crate) struct Parts {
    pub(crate) status: u16,
    pub(crate) headers: Fields,
    pub(crate) body: BodyKind,
    pub(crate) upgrade: Option<UpgradeFn>,
}

/// The status codes that have a reason phrase, with it: the one table
/// behind [`reason`] and the server's whole status lines.
macro_rules! statuses {
    ($($code:literal $reason:literal,)*) => {
        /// The reason phrase of a status code (`""` for unknown ones).
        ///
        /// # Examples
        ///
        /// ```
        /// assert_eq!(sylvan::http::reason(404), "Not Found");
        /// assert_eq!(sylvan::http::reason(299), "");
        /// ```
        pub fn reason(status: u16) -> &'static str {
            match status {
                $($code => $reason,)*
                _ => "",
            }
        }

        /// `HTTP/1.1 <code> <reason>` and CRLF, for a code with a reason
        /// phrase: the server writes it with one copy.
        pub(crate) fn status_line(status: u16) -> Option<&'static str> {
            match status {
                $($code => Some(concat!("HTTP/1.1 ", $code, " ", $reason, "\r\n")),)*
                _ => None,
            }
        }
    };
}

statuses! {
    100 "Continue",
    101 "Switching Protocols",
    103 "Early Hints",
    200 "OK",
    201 "Created",
    202 "Accepted",
    203 "Non-Authoritative Information",
    204 "No Content",
    205 "Reset Content",
    206 "Partial Content",
    300 "Multiple Choices",
    301 "Moved Permanently",
    302 "Found",
    303 "See Other",
    304 "Not Modified",
    307 "Temporary Redirect",
    308 "Permanent Redirect",
    400 "Bad Request",
    401 "Unauthorized",
    403 "Forbidden",
    404 "Not Found",
    405 "Method Not Allowed",
    406 "Not Acceptable",
    408 "Request Timeout",
    409 "Conflict",
    410 "Gone",
    411 "Length Required",
    412 "Precondition Failed",
    413 "Content Too Large",
    414 "URI Too Long",
    415 "Unsupported Media Type",
    416 "Range Not Satisfiable",
    417 "Expectation Failed",
    422 "Unprocessable Content",
    426 "Upgrade Required",
    428 "Precondition Required",
    429 "Too Many Requests",
    431 "Request Header Fields Too Large",
    500 "Internal Server Error",
    501 "Not Implemented",
    502 "Bad Gateway",
    503 "Service Unavailable",
    504 "Gateway Timeout",
    505 "HTTP Version Not Supported",
}

/// Whether a response with this status to this request has no body
/// (RFC 9110 §6.4.1).
pub(crate) fn bodiless(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

pub(crate) fn push_hex(out: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 16];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b"0123456789abcdef"[(n & 15) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Whether each byte may appear in a token (RFC 9110 §5.6.2).
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    t
};

/// A header name is sent only if it is an RFC 9110 token.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| TCHAR[usize::from(b)])
}

/// Whether `v` holds a CR, LF or NUL, the bytes that could end a header
/// line early. Eight bytes at a time: a word none of whose bytes is below
/// 0x0E (where all three lie) is passed over at once.
fn has_line_break(v: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let is_break = |b: &u8| matches!(b, b'\r' | b'\n' | 0);
    let mut words = v.chunks_exact(8);
    for word in &mut words {
        let x = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        // Some byte of `x` is below 0x0E (Hacker's Delight, 6-1).
        let low = x.wrapping_sub(ONES * 0x0E) & !x & (ONES * 0x80) != 0;
        if low && word.iter().any(is_break) {
            return true;
        }
    }
    words.remainder().iter().any(is_break)
}

/// Appends a header value with CR, LF and NUL replaced by spaces.
pub(crate) fn push_value(out: &mut Vec<u8>, v: &str) {
    if has_line_break(v.as_bytes()) {
        out.extend(v.bytes().map(|b| match b {
            b'\r' | b'\n' | 0 => b' ',
            b => b,
        }));
    } else {
        out.extend_from_slice(v.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let mut v = Vec::new();
        push_u64(&mut v, 0);
        v.push(b' ');
        push_u64(&mut v, 18_446_744_073_709_551_615);
        v.push(b' ');
        push_hex(&mut v, 0x1f);
        v.push(b' ');
        push_hex(&mut v, 0);
        assert_eq!(v, b"0 18446744073709551615 1f 0");
    }

    #[test]
    fn values_cannot_split() {
        let mut v = Vec::new();
        push_value(&mut v, "a\r\nSet-Cookie: x");
        assert_eq!(v, b"a  Set-Cookie: x");
        assert!(valid_name("X-Ok"));
        assert!(!valid_name("X Bad"));
        assert!(!valid_name(""));
        assert!(!valid_name("a:b"));
        let tchar = "!#$%&'*+-.^_`|~0123456789abcxyzABCXYZ";
        assert!(valid_name(tchar));
        for b in (0..=255u8).filter(|b| !tchar.as_bytes().contains(b) && !b.is_ascii_alphanumeric())
        {
            let name = String::from_utf8_lossy(&[b'X', b]).into_owned();
            assert!(!valid_name(&name), "{name:?}");
        }
    }

    #[test]
    fn fields_keep_their_order_inline_and_in_a_vector() {
        let names = |r: &Response| r.headers().map(|(n, _)| n.to_owned()).collect::<Vec<_>>();
        let r = Response::new(200);
        assert!(matches!(r.headers, Fields::Empty));
        let r = Response::text("x");
        assert!(matches!(r.headers, Fields::Typed(_)));
        assert_eq!(names(&r), ["Content-Type"]);
        let r = r.header("A", "1").header("B", "2");
        assert!(matches!(&r.headers, Fields::Many(v) if v.capacity() == 4));
        assert_eq!(names(&r), ["Content-Type", "A", "B"]);
        let r = r.set_header("a", "3");
        assert_eq!(names(&r), ["Content-Type", "B", "a"]);
        assert_eq!(r.header_value("A"), Some("3"));
        // Replacing the only field.
        let r = Response::text("x").set_header("content-type", "text/csv");
        assert_eq!(names(&r), ["content-type"]);
        assert_eq!(r.header_value("Content-Type"), Some("text/csv"));
        let parts = r.into_parts();
        assert_eq!(parts.headers.iter().count(), 1);
    }

    #[test]
    fn line_breaks_are_found_at_any_offset() {
        for len in 0..24 {
            let clean = vec![b'a'; len];
            assert!(!has_line_break(&clean));
            // Bytes next to the three, which a word test must not take for them.
            assert!(!has_line_break(&vec![0x0E; len]));
            assert!(!has_line_break(&vec![0xFF; len]));
            for at in 0..len {
                for b in [b'\r', b'\n', 0] {
                    let mut v = clean.clone();
                    v[at] = b;
                    assert!(has_line_break(&v), "{b} at {at} of {len}");
                }
            }
        }
        assert!(!has_line_break(
            b"\t\x0b\x0c\x01\x0e\x7f text/plain; charset=utf-8"
        ));
    }

    #[test]
    fn status_lines_carry_the_reason() {
        assert_eq!(status_line(200), Some("HTTP/1.1 200 OK\r\n"));
        assert_eq!(status_line(404), Some("HTTP/1.1 404 Not Found\r\n"));
        assert_eq!(status_line(299), None);
        for code in 0..1000 {
            if let Some(line) = status_line(code) {
                assert_eq!(line, format!("HTTP/1.1 {code} {}\r\n", reason(code)));
            } else {
                assert_eq!(reason(code), "");
            }
        }
    }
}
