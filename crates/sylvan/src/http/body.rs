//! Bodies: the request body's framing state (content length or chunked,
//! decoded push-style), and the response [`Body`].

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read};

/// Where a [`RequestBody`](super::RequestBody) reads from: the connection.
pub(crate) trait BodySource {
    /// Reads body bytes for the request of generation `seq`.
    fn read_body(&self, seq: u64, buf: &mut [u8]) -> io::Result<usize>;
}

/// Why a request body could not be read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Broken chunked syntax.
    Malformed(&'static str),
    /// Over the server's body limit.
    TooLarge,
}

impl BodyError {
    pub(crate) fn into_io(self) -> io::Error {
        match self {
            BodyError::Malformed(m) => io::Error::new(io::ErrorKind::InvalidData, m),
            BodyError::TooLarge => {
                io::Error::new(io::ErrorKind::InvalidData, "request body exceeds the limit")
            }
        }
    }
}

/// Longest chunk-size line (size, extensions, CRLF) accepted.
const MAX_CHUNK_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading hex digits of a chunk size.
    Size {
        digits: u8,
    },
    /// After the digits: optional whitespace and extensions, until CR.
    Ext,
    /// Expecting the LF of the size line.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// Expecting CR after data.
    DataCr,
    /// Expecting LF after data.
    DataLf,
    /// In the trailer section, at the start of a line.
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// Expecting the LF of a trailer line (`last` if the line was empty).
    TrailerLf {
        last: bool,
    },
    Done,
}

/// The chunked transfer coding (RFC 9112 §7.1), decoded strictly: hex sizes
/// without overflow, CRLF line ends, bounded size lines and trailers.
#[derive(Debug, Clone)]
pub(crate) struct ChunkedDecoder {
    state: Chunk,
    size: u64,
    line: usize,
    trailer_bytes: usize,
    max_trailer: usize,
}

impl ChunkedDecoder {
    pub(crate) fn new(max_trailer: usize) -> ChunkedDecoder {
        ChunkedDecoder {
            state: Chunk::Size { digits: 0 },
            size: 0,
            line: 0,
            trailer_bytes: 0,
            max_trailer,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == Chunk::Done
    }

    /// Decodes from `input` into `out`; returns `(consumed, produced)`.
    /// Stops when `out` is full, `input` is used up, or the body ended.
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, usize), BodyError> {
        let (mut i, mut o) = (0, 0);
        while i < input.len() && self.state != Chunk::Done {
            if self.state == Chunk::Data {
                if o == out.len() {
                    break;
                }
                let n = (input.len() - i)
                    .min(out.len() - o)
                    .min(usize::try_from(self.size).unwrap_or(usize::MAX));
                out[o..o + n].copy_from_slice(&input[i..i + n]);
                i += n;
                o += n;
                self.size -= n as u64;
                if self.size == 0 {
                    self.state = Chunk::DataCr;
                }
                continue;
            }
            let b = input[i];
            i += 1;
            self.step(b)?;
        }
        Ok((i, o))
    }

    fn step(&mut self, b: u8) -> Result<(), BodyError> {
        use BodyError::Malformed as M;
        self.state = match self.state {
            Chunk::Size { digits } => {
                self.line += 1;
                match (b as char).to_digit(16) {
                    Some(d) => {
                        if digits >= 16 {
                            return Err(M("chunk size too large"));
                        }
                        self.size = self.size << 4 | u64::from(d);
                        Chunk::Size { digits: digits + 1 }
                    }
                    None if digits == 0 => return Err(M("invalid chunk size")),
                    None => self.after_size(b)?,
                }
            }
            Chunk::Ext => {
                self.line += 1;
                if self.line > MAX_CHUNK_LINE {
                    return Err(M("chunk extension too long"));
                }
                match b {
                    b'\r' => Chunk::SizeLf,
                    b'\t' | b' '..=b'~' | 0x80..=0xff => Chunk::Ext,
                    _ => return Err(M("invalid byte in chunk extension")),
                }
            }
            Chunk::SizeLf => {
                if b != b'\n' {
                    return Err(M("expected LF after chunk size"));
                }
                self.line = 0;
                if self.size == 0 {
                    Chunk::TrailerStart
                } else {
                    Chunk::Data
                }
            }
            Chunk::DataCr if b == b'\r' => Chunk::DataLf,
            Chunk::DataLf if b == b'\n' => {
                self.size = 0;
                Chunk::Size { digits: 0 }
            }
            Chunk::DataCr | Chunk::DataLf => return Err(M("expected CRLF after chunk data")),
            Chunk::TrailerStart | Chunk::Trailer => {
                self.trailer_bytes += 1;
                if self.trailer_bytes > self.max_trailer {
                    return Err(M("chunked trailer too large"));
                }
                let start = self.state == Chunk::TrailerStart;
                match b {
                    b'\r' => Chunk::TrailerLf { last: start },
                    b'\n' => return Err(M("bare LF in chunked trailer")),
                    0..=8 | 0x0a..=0x1f | 0x7f => {
                        return Err(M("invalid byte in chunked trailer"));
                    }
                    _ => Chunk::Trailer,
                }
            }
            Chunk::TrailerLf { last } => {
                if b != b'\n' {
                    return Err(M("expected LF in chunked trailer"));
                }
                if last {
                    Chunk::Done
                } else {
                    Chunk::TrailerStart
                }
            }
            Chunk::Data | Chunk::Done => unreachable!("handled by decode"),
        };
        Ok(())
    }

    fn after_size(&mut self, b: u8) -> Result<Chunk, BodyError> {
        match b {
            b'\r' => Ok(Chunk::SizeLf),
            b';' | b' ' | b'\t' => Ok(Chunk::Ext),
            _ => Err(BodyError::Malformed("invalid chunk size")),
        }
    }
}

/// Framing state of the request body being read.
#[derive(Debug, Clone)]
pub(crate) enum BodyState {
    /// No body, or read to its end.
    Done,
    Length(u64),
    Chunked {
        dec: ChunkedDecoder,
        total: u64,
    },
    /// Reading stopped on an error; the connection cannot be reused.
    Failed(Option<BodyError>),
}

impl BodyState {
    pub(crate) fn is_done(&self) -> bool {
        matches!(self, BodyState::Done)
    }

    /// Decodes body bytes from `input` into `out`: `(consumed, produced)`.
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        out: &mut [u8],
        max_body: u64,
    ) -> Result<(usize, usize), BodyError> {
        match self {
            BodyState::Done | BodyState::Failed(_) => Ok((0, 0)),
            BodyState::Length(rem) => {
                let n = input
                    .len()
                    .min(out.len())
                    .min(usize::try_from(*rem).unwrap_or(usize::MAX));
                out[..n].copy_from_slice(&input[..n]);
                *rem -= n as u64;
                if *rem == 0 {
                    *self = BodyState::Done;
                }
                Ok((n, n))
            }
            BodyState::Chunked { dec, total } => {
                let r = dec.decode(input, out).and_then(|(c, p)| {
                    *total += p as u64;
                    if *total > max_body {
                        Err(BodyError::TooLarge)
                    } else {
                        Ok((c, p))
                    }
                });
                match r {
                    Ok(cp) => {
                        if dec.is_done() {
                            *self = BodyState::Done;
                        }
                        Ok(cp)
                    }
                    Err(e) => {
                        *self = BodyState::Failed(Some(e));
                        Err(e)
                    }
                }
            }
        }
    }
}

/// The body of a [`Response`](super::Response): bytes, or a stream.
///
/// Bytes are sent with `Content-Length`. A stream of unknown length is sent
/// chunked to HTTP/1.1 clients and delimited by closing the connection for
/// HTTP/1.0 ones; a stream of known length ([`Body::sized`]) is sent with
/// `Content-Length`, and if it ends early the connection is closed so the
/// client sees the truncation.
///
/// # Examples
///
/// ```
/// use std::io::Read;
/// use sylvan::http::Body;
///
/// let a = Body::from("static text");
/// let b = Body::from(vec![1u8, 2, 3]);
/// let c = Body::from_reader(std::io::repeat(b'x').take(10));
/// let d = Body::sized(std::io::empty(), 0);
/// assert_eq!(a.len(), Some(11));
/// assert_eq!(b.len(), Some(3));
/// assert_eq!(c.len(), None);
/// assert_eq!(d.len(), Some(0));
/// ```
pub struct Body {
    pub(crate) kind: BodyKind,
}

pub(crate) enum BodyKind {
    Bytes(Cow<'static, [u8]>),
    Reader(Box<dyn Read>, Option<u64>),
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BodyKind::Bytes(b) => f.debug_tuple("Body::Bytes").field(&b.len()).finish(),
            BodyKind::Reader(_, n) => f.debug_tuple("Body::Reader").field(n).finish(),
        }
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl Body {
    /// No body (`Content-Length: 0`).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan::http::Body::empty().len(), Some(0));
    /// ```
    pub fn empty() -> Body {
        Body {
            kind: BodyKind::Bytes(Cow::Borrowed(b"")),
        }
    }

    /// A body streamed from `reader` until it returns end of file; its
    /// length is not known in advance (chunked on HTTP/1.1).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = sylvan::http::Body::from_reader(std::io::Cursor::new(b"abc".to_vec()));
    /// assert_eq!(b.len(), None);
    /// ```
    pub fn from_reader(reader: impl Read + 'static) -> Body {
        Body {
            kind: BodyKind::Reader(Box::new(reader), None),
        }
    }

    /// A body of exactly `len` bytes streamed from `reader`
    /// (`Content-Length: len`).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = sylvan::http::Body::sized(std::io::Cursor::new(b"abc".to_vec()), 3);
    /// assert_eq!(b.len(), Some(3));
    /// ```
    pub fn sized(reader: impl Read + 'static, len: u64) -> Body {
        Body {
            kind: BodyKind::Reader(Box::new(reader), Some(len)),
        }
    }

    /// The length, if known.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan::http::Body::from("hi").len(), Some(2));
    /// ```
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> Option<u64> {
        match &self.kind {
            BodyKind::Bytes(b) => Some(b.len() as u64),
            BodyKind::Reader(_, n) => *n,
        }
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body {
            kind: BodyKind::Bytes(Cow::Borrowed(s.as_bytes())),
        }
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Body {
        Body {
            kind: BodyKind::Bytes(Cow::Borrowed(s)),
        }
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body {
            kind: BodyKind::Bytes(Cow::Owned(s.into_bytes())),
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Body {
        Body {
            kind: BodyKind::Bytes(Cow::Owned(v)),
        }
    }
}

impl From<Cow<'static, str>> for Body {
    fn from(s: Cow<'static, str>) -> Body {
        match s {
            Cow::Borrowed(s) => Body::from(s),
            Cow::Owned(s) => Body::from(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], step: usize) -> Result<Vec<u8>, BodyError> {
        let mut d = ChunkedDecoder::new(1024);
        let mut out = Vec::new();
        let mut pos = 0;
        while !d.is_done() {
            if pos == input.len() {
                return Err(BodyError::Malformed("eof"));
            }
            let end = (pos + step).min(input.len());
            let mut buf = [0u8; 3];
            let (c, p) = d.decode(&input[pos..end], &mut buf)?;
            out.extend_from_slice(&buf[..p]);
            pos += c;
        }
        Ok(out)
    }

    #[test]
    fn chunked_roundtrip_any_split() {
        let body = b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-T: y\r\n\r\n";
        for step in 1..body.len() {
            assert_eq!(decode_all(body, step).unwrap(), b"hello 0123456789");
        }
    }

    #[test]
    fn chunked_rejects() {
        for bad in [
            &b"x\r\n"[..],
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"11111111111111111\r\n",
            b"0\r\n\n",
            b"1\r\na\r\n0\r\nbad\nline\r\n\r\n",
            b"-1\r\n",
            b"1\x00\r\n",
        ] {
            assert!(
                decode_all(bad, 1).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn length_state() {
        let mut s = BodyState::Length(3);
        let mut out = [0; 10];
        assert_eq!(s.decode(b"abcdef", &mut out, 100).unwrap(), (3, 3));
        assert!(s.is_done());
    }

    #[test]
    fn chunked_limit() {
        let mut s = BodyState::Chunked {
            dec: ChunkedDecoder::new(100),
            total: 0,
        };
        let mut out = [0; 10];
        assert_eq!(
            s.decode(b"5\r\nhello\r\n", &mut out, 4),
            Err(BodyError::TooLarge)
        );
        assert!(matches!(s, BodyState::Failed(Some(BodyError::TooLarge))));
    }
}
