//! A minimal HTTP/1.1 client for load: keep-alive `GET`s on a sylvan
//! socket, responses framed by `Content-Length`, `chunked`, or the end of
//! the connection.

use std::io::{self, Read, Write};
use std::ops::Range;

use sylvan::net::TcpStream;

/// The largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// A parsed `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `host:port`, as given (the port defaulted to 80): what to connect to.
    pub connect: String,
    /// The `Host` header.
    pub host: String,
    /// Path and query, `/` when absent.
    pub path: String,
}

impl Url {
    /// Parses `http://host[:port][/path]`.
    pub fn parse(s: &str) -> Result<Url, String> {
        let bad = |why: &str| format!("{s:?} is not a valid URL: {why}");
        let rest = if let Some(r) = s.strip_prefix("http://") {
            r
        } else if s.starts_with("https://") {
            return Err(format!("{s:?}: https is not supported, use an http:// URL"));
        } else {
            return Err(bad("write it as http://HOST[:PORT]/PATH"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        let path = path.split('#').next().unwrap_or("/").to_owned();
        if authority.is_empty()
            || authority.contains('@')
            || authority.contains(char::is_whitespace)
        {
            return Err(bad("no host"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
            };
            (format!("[{h}]"), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (authority.to_owned(), None),
            }
        };
        if host.is_empty() || host.contains(':') && !host.starts_with('[') {
            return Err(bad("bad host"));
        }
        let port: u16 = match port {
            None => 80,
            Some(p) => p
                .parse()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad("bad port"))?,
        };
        if path.contains(char::is_whitespace) {
            return Err(bad("spaces in the path"));
        }
        Ok(Url {
            connect: format!("{host}:{port}"),
            host: authority.to_owned(),
            path,
        })
    }

    /// The request this client sends, again and again.
    pub fn request(&self) -> Vec<u8> {
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: sylvan-bench\r\nAccept: */*\r\n\r\n",
            self.path, self.host
        )
        .into_bytes()
    }
}

/// What one response was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Bytes read for it, head and body.
    pub bytes: u64,
    /// Whether the connection must be closed after it.
    pub close: bool,
}

/// One keep-alive connection with its read buffer.
#[derive(Debug)]
pub struct Conn<S = TcpStream> {
    stream: S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes read from the stream, ever.
    read_total: u64,
}

impl<S> Conn<S>
where
    for<'a> &'a S: Read + Write,
{
    /// Wraps a connected stream.
    pub fn new(stream: S) -> Conn<S> {
        Conn {
            stream,
            buf: vec![0; 4 * 1024],
            start: 0,
            end: 0,
            read_total: 0,
        }
    }

    /// Sends `request` and reads its response to the end.
    pub fn round_trip(&mut self, request: &[u8]) -> io::Result<Reply> {
        (&self.stream).write_all(request)?;
        self.read_response()
    }

    /// Reads more bytes into the buffer; fails at end of stream.
    fn fill(&mut self) -> io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < MAX_HEAD {
                self.buf.resize(self.buf.len() * 2, 0);
            } else {
                return Err(invalid("response head too large"));
            }
        }
        let n = (&self.stream).read(&mut self.buf[self.end..])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection mid-response",
            ));
        }
        self.end += n;
        self.read_total += n as u64;
        Ok(())
    }

    /// The next line (without CRLF), as a range of the buffer.
    fn line(&mut self) -> io::Result<Range<usize>> {
        let mut from = self.start;
        loop {
            if let Some(i) = self.buf[from..self.end].iter().position(|&b| b == b'\n') {
                let nl = from + i;
                let line = self.start..if nl > self.start && self.buf[nl - 1] == b'\r' {
                    nl - 1
                } else {
                    nl
                };
                self.start = nl + 1;
                return Ok(line);
            }
            let scanned = self.end - self.start;
            self.fill()?;
            from = self.start + scanned;
        }
    }

    /// Discards `n` body bytes.
    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        loop {
            let have = (self.end - self.start) as u64;
            if have >= n {
                self.start += n as usize;
                return Ok(());
            }
            n -= have;
            self.start = self.end;
            self.fill()?;
        }
    }

    fn read_response(&mut self) -> io::Result<Reply> {
        let before = self.consumed();
        let status_line = self.line()?;
        let status = parse_status(&self.buf[status_line])?;
        let (mut length, mut chunked, mut close) = (None, false, false);
        loop {
            let l = self.line()?;
            if l.is_empty() {
                break;
            }
            let line = &self.buf[l];
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return Err(invalid("header line without a colon"));
            };
            let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
            if name.eq_ignore_ascii_case(b"content-length") {
                let v = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok());
                length = Some(v.ok_or_else(|| invalid("bad Content-Length"))?);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                chunked = value
                    .rsplit(|&b| b == b',')
                    .next()
                    .is_some_and(|t| trim(t).eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case(b"connection") {
                close |= value
                    .split(|&b| b == b',')
                    .any(|t| trim(t).eq_ignore_ascii_case(b"close"));
            }
        }
        if (100..200).contains(&status) {
            // An interim response (e.g. 103): the real one follows.
            let r = self.read_response()?;
            return Ok(Reply {
                bytes: self.consumed() - before,
                ..r
            });
        }
        if status == 204 || status == 304 {
        } else if chunked {
            self.skip_chunked()?;
        } else if let Some(n) = length {
            self.skip(n)?;
        } else {
            // Delimited by the end of the connection.
            self.start = self.end;
            let mut sink = [0u8; 16 * 1024];
            loop {
                match (&self.stream).read(&mut sink)? {
                    0 => break,
                    n => self.read_total += n as u64,
                }
            }
            close = true;
        }
        Ok(Reply {
            status,
            bytes: self.consumed() - before,
            close,
        })
    }

    /// Reads a chunked body and its trailers.
    fn skip_chunked(&mut self) -> io::Result<()> {
        loop {
            let l = self.line()?;
            let line = &self.buf[l];
            let hex = line.split(|&b| b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(trim(hex))
                .ok()
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .ok_or_else(|| invalid("bad chunk size"))?;
            if size == 0 {
                while !self.line()?.is_empty() {}
                return Ok(());
            }
            self.skip(size)?;
            let crlf = self.line()?;
            if !crlf.is_empty() {
                return Err(invalid("chunk not followed by CRLF"));
            }
        }
    }

    /// Bytes taken from the stream so far (read, minus still buffered).
    fn consumed(&self) -> u64 {
        self.read_total - (self.end - self.start) as u64
    }
}

/// The status code of an `HTTP/1.x NNN reason` line.
fn parse_status(line: &[u8]) -> io::Result<u16> {
    let bad = || invalid("bad status line");
    let rest = line.strip_prefix(b"HTTP/1.").ok_or_else(bad)?;
    let code = rest.get(2..5).ok_or_else(bad)?;
    std::str::from_utf8(code)
        .ok()
        .and_then(|c| c.parse().ok())
        .ok_or_else(bad)
}

/// `s` without leading and trailing spaces and tabs.
fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// An `InvalidData` error: the server broke HTTP.
fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

#[cfg(test)]
mod tests {
    use super::{Conn, Url};
    use std::io::{Read, Write};

    #[test]
    fn urls() {
        let u = Url::parse("http://127.0.0.1:8080/a/b?c=d").unwrap();
        assert_eq!(
            (u.connect.as_str(), u.host.as_str(), u.path.as_str()),
            ("127.0.0.1:8080", "127.0.0.1:8080", "/a/b?c=d")
        );
        let u = Url::parse("http://example.com").unwrap();
        assert_eq!(
            (u.connect.as_str(), u.path.as_str()),
            ("example.com:80", "/")
        );
        let u = Url::parse("http://[::1]:81?x").unwrap();
        assert_eq!((u.connect.as_str(), u.path.as_str()), ("[::1]:81", "/?x"));
        for bad in [
            "127.0.0.1:80",
            "http://",
            "http://h:99999/",
            "http://h:x/",
            "ftp://h/",
        ] {
            assert!(
                Url::parse(bad).unwrap_err().contains("not a valid URL"),
                "{bad}"
            );
        }
        assert!(Url::parse("https://h/").unwrap_err().contains("https"));
    }

    /// Serves `replies` (each written in two halves, to split heads and
    /// bodies across reads) to one client, one per request.
    fn server(replies: Vec<&'static [u8]>) -> std::net::SocketAddr {
        let l = sylvan::listen("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        sylvan::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut buf = [0; 1024];
            for r in replies {
                let mut req = Vec::new();
                while !req.ends_with(b"\r\n\r\n") {
                    let n = c.read(&mut buf).unwrap();
                    req.extend_from_slice(&buf[..n]);
                }
                let (a, b) = r.split_at(r.len() / 2);
                c.write_all(a).unwrap();
                sylvan::yield_now();
                c.write_all(b).unwrap();
            }
        });
        addr
    }

    #[test]
    fn frames_content_length_chunked_and_close() {
        let replies: Vec<&'static [u8]> = vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n1\r\n!\r\n0\r\nT: 1\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.0 200 OK\r\n\r\nuntil the end",
        ];
        let lens: Vec<u64> = replies.iter().map(|r| r.len() as u64).collect();
        let addr = server(replies);
        let url = Url::parse(&format!("http://{addr}/")).unwrap();
        let mut c = Conn::new(sylvan::connect(addr).unwrap());
        let got: Vec<_> = (0..5)
            .map(|_| c.round_trip(&url.request()).unwrap())
            .collect();
        let status: Vec<u16> = got.iter().map(|r| r.status).collect();
        assert_eq!(status, [200, 404, 200, 204, 200]);
        let bytes: Vec<u64> = got.iter().map(|r| r.bytes).collect();
        assert_eq!(bytes, lens);
        assert_eq!(
            got.iter().map(|r| r.close).collect::<Vec<_>>(),
            [false, false, false, false, true]
        );
    }

    #[test]
    fn heads_and_bodies_larger_than_the_buffer() {
        let mut r = format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n", "h".repeat(10_000)).into_bytes();
        r.extend_from_slice(b"Content-Length: 50000\r\n\r\n");
        r.extend(std::iter::repeat_n(b'b', 50_000));
        let len = r.len() as u64;
        let r: &'static [u8] = Box::leak(r.into_boxed_slice());
        let addr = server(vec![r, b"HTTP/1.1 204 No Content\r\n\r\n"]);
        let mut c = Conn::new(sylvan::connect(addr).unwrap());
        assert_eq!(c.round_trip(b"GET / HTTP/1.1\r\n\r\n").unwrap().bytes, len);
        assert_eq!(c.round_trip(b"GET / HTTP/1.1\r\n\r\n").unwrap().status, 204);
    }

    #[test]
    fn malformed_responses_are_errors() {
        for bad in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        ] {
            let addr = server(vec![bad]);
            let mut c = Conn::new(sylvan::connect(addr).unwrap());
            let e = c.round_trip(b"GET / HTTP/1.1\r\n\r\n").unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        }
    }
}
