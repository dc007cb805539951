//! ZooKeeper's wire format: jute records in length-prefixed frames.
//!
//! Every frame is a big-endian `i32` length followed by that many bytes.
//! Inside, jute encodes `int` as 4 bytes and `long` as 8 (big-endian), a
//! `boolean` as one byte, a `buffer` or `ustring` as an `i32` length (−1
//! for null) and the bytes, a `vector` as an `i32` count (−1 for null) and
//! the items. Decoding is bounds-checked everywhere: a length or count
//! larger than what is left of the frame is a [`Error::Protocol`], never a
//! panic or a huge allocation.

use std::io::{self, Read, Write};

use super::error::Error;
use super::types::{Acl, Stat};

/// Operation codes (`ZooDefs.OpCode`).
pub(crate) mod op {
    pub(crate) const CREATE: i32 = 1;
    pub(crate) const DELETE: i32 = 2;
    pub(crate) const EXISTS: i32 = 3;
    pub(crate) const GET_DATA: i32 = 4;
    pub(crate) const SET_DATA: i32 = 5;
    pub(crate) const GET_CHILDREN: i32 = 8;
    pub(crate) const PING: i32 = 11;
    pub(crate) const SET_WATCHES: i32 = 101;
    pub(crate) const CLOSE_SESSION: i32 = -11;
}

/// Reserved xids of replies that answer no numbered request.
pub(crate) mod xid {
    /// A watch notification.
    pub(crate) const NOTIFICATION: i32 = -1;
    /// A ping reply.
    pub(crate) const PING: i32 = -2;
    /// An auth reply.
    pub(crate) const AUTH: i32 = -4;
    /// The reply to SetWatches.
    pub(crate) const SET_WATCHES: i32 = -8;
}

/// The largest frame the connect handshake may answer with; a real
/// ConnectResponse is about 40 bytes.
pub(crate) const MAX_CONNECT_RESPONSE: usize = 4096;

/// Builds one frame: reserves the length prefix, fills it in on `finish`.
pub(crate) struct Enc(Vec<u8>);

impl Enc {
    pub(crate) fn new() -> Enc {
        Enc(vec![0; 4])
    }

    /// A request frame starting with its header.
    pub(crate) fn request(xid: i32, op: i32) -> Enc {
        let mut e = Enc::new();
        e.int(xid).int(op);
        e
    }

    pub(crate) fn int(&mut self, v: i32) -> &mut Enc {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn long(&mut self, v: i64) -> &mut Enc {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn bool(&mut self, v: bool) -> &mut Enc {
        self.0.push(u8::from(v));
        self
    }

    pub(crate) fn buffer(&mut self, v: &[u8]) -> &mut Enc {
        self.int(len_i32(v.len()));
        self.0.extend_from_slice(v);
        self
    }

    pub(crate) fn string(&mut self, v: &str) -> &mut Enc {
        self.buffer(v.as_bytes())
    }

    pub(crate) fn strings<S: AsRef<str>>(&mut self, v: &[S]) -> &mut Enc {
        self.int(len_i32(v.len()));
        for s in v {
            self.string(s.as_ref());
        }
        self
    }

    pub(crate) fn acls(&mut self, acls: &[Acl]) -> &mut Enc {
        self.int(len_i32(acls.len()));
        for a in acls {
            self.int(a.perms as i32).string(&a.scheme).string(&a.id);
        }
        self
    }

    /// The finished frame, length prefix included.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let n = len_i32(self.0.len() - 4);
        self.0[..4].copy_from_slice(&n.to_be_bytes());
        self.0
    }
}

fn len_i32(n: usize) -> i32 {
    // Frames are capped far below 2 GiB by the server; saturate rather
    // than wrap if a caller hands over something absurd.
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A bounds-checked reader over one frame's payload.
pub(crate) struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Dec<'a> {
    /// `what` names the record in error messages.
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Dec<'a> {
        Dec { buf, pos: 0, what }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.remaining() {
            return Err(Error::Protocol(format!(
                "truncated {}: wanted {n} more bytes at offset {}, frame has {}",
                self.what,
                self.pos,
                self.buf.len()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn int(&mut self) -> Result<i32, Error> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn long(&mut self) -> Result<i64, Error> {
        let b = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// A buffer; null (−1) reads as empty.
    pub(crate) fn buffer(&mut self) -> Result<Vec<u8>, Error> {
        let n = self.int()?;
        if n < 0 {
            return Ok(Vec::new());
        }
        Ok(self.take(n as usize)?.to_vec())
    }

    pub(crate) fn string(&mut self) -> Result<String, Error> {
        let b = self.buffer()?;
        String::from_utf8(b)
            .map_err(|_| Error::Protocol(format!("{}: a string is not valid UTF-8", self.what)))
    }

    pub(crate) fn strings(&mut self) -> Result<Vec<String>, Error> {
        let n = self.int()?;
        if n < 0 {
            return Ok(Vec::new());
        }
        // Each string takes at least its 4-byte length: a count beyond
        // that is garbage, refused before allocating.
        if n as usize > self.remaining() / 4 {
            return Err(Error::Protocol(format!(
                "{}: vector of {n} strings cannot fit in {} bytes",
                self.what,
                self.remaining()
            )));
        }
        (0..n).map(|_| self.string()).collect()
    }

    pub(crate) fn stat(&mut self) -> Result<Stat, Error> {
        Ok(Stat {
            czxid: self.long()?,
            mzxid: self.long()?,
            ctime: self.long()?,
            mtime: self.long()?,
            version: self.int()?,
            cversion: self.int()?,
            aversion: self.int()?,
            ephemeral_owner: self.long()?,
            data_length: self.int()?,
            num_children: self.int()?,
            pzxid: self.long()?,
        })
    }
}

/// The ConnectRequest record, framed.
pub(crate) struct ConnectRequest<'a> {
    pub(crate) last_zxid_seen: i64,
    pub(crate) timeout_ms: i32,
    pub(crate) session_id: i64,
    pub(crate) passwd: &'a [u8],
}

impl ConnectRequest<'_> {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut e = Enc::new();
        e.int(0) // protocol version
            .long(self.last_zxid_seen)
            .int(self.timeout_ms)
            .long(self.session_id)
            .buffer(self.passwd)
            .bool(false); // read-only: not supported
        e.finish()
    }
}

/// The ConnectResponse record.
#[derive(Debug)]
pub(crate) struct ConnectResponse {
    /// The negotiated session timeout; ≤ 0 means the session expired.
    pub(crate) timeout_ms: i32,
    pub(crate) session_id: i64,
    pub(crate) passwd: Vec<u8>,
}

impl ConnectResponse {
    pub(crate) fn decode(frame: &[u8]) -> Result<ConnectResponse, Error> {
        let mut d = Dec::new(frame, "ConnectResponse");
        let version = d.int()?;
        let timeout_ms = d.int()?;
        let session_id = d.long()?;
        let passwd = d.buffer()?;
        // A read-only flag may follow (servers since 3.4); older ones omit it.
        if d.remaining() > 1 {
            return Err(Error::Protocol(format!(
                "ConnectResponse has {} unexpected trailing bytes",
                d.remaining()
            )));
        }
        if version != 0 {
            return Err(Error::Protocol(format!(
                "ConnectResponse with unknown protocol version {version}"
            )));
        }
        if timeout_ms > 0 && passwd.len() != 16 {
            return Err(Error::Protocol(format!(
                "ConnectResponse carries a {}-byte session password (16 expected)",
                passwd.len()
            )));
        }
        Ok(ConnectResponse {
            timeout_ms,
            session_id,
            passwd,
        })
    }
}

/// The header of every reply.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplyHeader {
    pub(crate) xid: i32,
    pub(crate) zxid: i64,
    pub(crate) err: i32,
}

impl ReplyHeader {
    pub(crate) fn decode(d: &mut Dec<'_>) -> Result<ReplyHeader, Error> {
        Ok(ReplyHeader {
            xid: d.int()?,
            zxid: d.long()?,
            err: d.int()?,
        })
    }
}

/// A watch notification (`WatcherEvent`).
#[derive(Debug)]
pub(crate) struct WatcherEvent {
    pub(crate) kind: i32,
    pub(crate) path: String,
}

impl WatcherEvent {
    pub(crate) fn decode(d: &mut Dec<'_>) -> Result<WatcherEvent, Error> {
        let kind = d.int()?;
        let _keeper_state = d.int()?;
        Ok(WatcherEvent {
            kind,
            path: d.string()?,
        })
    }
}

/// Writes one whole frame.
pub(crate) fn write_frame(mut w: impl Write, frame: &[u8]) -> io::Result<()> {
    w.write_all(frame)
}

/// Reads one frame's payload, refusing lengths beyond `max`.
///
/// A peer that closes cleanly between frames gives `UnexpectedEof`; a
/// negative or oversized length gives `InvalidData` naming it.
pub(crate) fn read_frame(mut r: impl Read, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0; 4];
    r.read_exact(&mut len)?;
    let n = i32::from_be_bytes(len);
    if n < 0 || n as usize > max {
        let hint = if len.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            format!(
                " (the bytes read {:?}: not a ZooKeeper server?)",
                String::from_utf8_lossy(&len)
            )
        } else {
            String::new()
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("reply frame length {n} is outside 0..={max}{hint}"),
        ));
    }
    let mut buf = vec![0; n as usize];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// Reads `data` as everything a server sends one client: frames of at
/// most `max_frame` bytes, the first a ConnectResponse, then replies,
/// each decoded as the reply to a request chosen by its xid (create,
/// exists, getData, setData, getChildren), or as a watch notification
/// dispatched to a watch on its path. Returns how many frames decoded, or
/// the first error; the fuzz target's entry point (`zk::__private`).
pub(crate) fn decode_server_stream(mut data: &[u8], max_frame: usize) -> Result<usize, Error> {
    use super::watch::{WatchKind, Watches};
    let frame = read_frame(&mut data, max_frame).map_err(|e| Error::Protocol(e.to_string()))?;
    ConnectResponse::decode(&frame)?;
    let mut watches = Watches::default();
    let mut n = 1;
    while !data.is_empty() {
        let frame = read_frame(&mut data, max_frame).map_err(|e| Error::Protocol(e.to_string()))?;
        let mut d = Dec::new(&frame, "reply");
        let h = ReplyHeader::decode(&mut d)?;
        if h.xid == xid::NOTIFICATION {
            let ev = WatcherEvent::decode(&mut Dec::new(&frame[16..], "watch notification"))?;
            let q = crate::sync::Queue::unbounded();
            watches.add(WatchKind::Data, &ev.path, q.clone());
            watches.dispatch(&ev);
            while q.try_get().is_some() {}
        } else if h.err == 0 {
            match h.xid.rem_euclid(5) {
                0 => {
                    Dec::new(&frame[16..], "CreateResponse").string()?;
                }
                1 => {
                    Dec::new(&frame[16..], "ExistsResponse").stat()?;
                }
                2 => {
                    let mut d = Dec::new(&frame[16..], "GetDataResponse");
                    d.buffer()?;
                    d.stat()?;
                }
                3 => {
                    Dec::new(&frame[16..], "SetDataResponse").stat()?;
                }
                _ => {
                    Dec::new(&frame[16..], "GetChildrenResponse").strings()?;
                }
            }
        } else {
            let _ = Error::server(h.err, "/fuzz").to_string();
        }
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_stream_decodes_frame_by_frame() {
        let mut e = Enc::new();
        e.int(0).int(4000).long(42).buffer(&[1; 16]);
        let mut bytes = e.finish();
        let mut e = Enc::new();
        e.int(xid::NOTIFICATION)
            .long(0)
            .int(0)
            .int(3)
            .int(3)
            .string("/a");
        bytes.extend(e.finish());
        let mut e = Enc::new();
        e.int(5).long(9).int(0).string("/created");
        bytes.extend(e.finish());
        assert_eq!(decode_server_stream(&bytes, 1 << 10).unwrap(), 3);
        // Cut anywhere, it is an error, never a panic.
        for cut in 0..bytes.len() {
            let _ = decode_server_stream(&bytes[..cut], 1 << 10);
        }
        assert!(decode_server_stream(&bytes[..bytes.len() - 1], 1 << 10).is_err());
    }

    #[test]
    fn connect_request_layout() {
        let f = ConnectRequest {
            last_zxid_seen: 7,
            timeout_ms: 3000,
            session_id: 0,
            passwd: &[0; 16],
        }
        .encode();
        // length + version + zxid + timeout + session + (len + 16) + ro
        assert_eq!(f.len(), 4 + 4 + 8 + 4 + 8 + 4 + 16 + 1);
        assert_eq!(&f[..4], &((f.len() - 4) as i32).to_be_bytes());
        assert_eq!(&f[8..16], &7i64.to_be_bytes());
    }

    #[test]
    fn connect_response_with_and_without_readonly_flag() {
        let mut e = Enc::new();
        e.int(0).int(4000).long(42).buffer(&[1; 16]);
        let no_ro = e.finish();
        let r = ConnectResponse::decode(&no_ro[4..]).unwrap();
        assert_eq!((r.timeout_ms, r.session_id), (4000, 42));
        let mut e = Enc::new();
        e.int(0).int(4000).long(42).buffer(&[1; 16]).bool(false);
        assert!(ConnectResponse::decode(&e.finish()[4..]).is_ok());
    }

    #[test]
    fn garbage_never_panics() {
        for junk in [
            &b""[..],
            b"HTTP/1.1 400 Bad Request\r\n\r\n",
            &[0xff; 3],
            &[0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff],
        ] {
            assert!(ConnectResponse::decode(junk).is_err());
            let mut d = Dec::new(junk, "test");
            let _ = d.strings();
            let mut d = Dec::new(junk, "test");
            let _ = d.stat();
        }
        // A vector count that can't fit is refused before allocating.
        let mut d = Dec::new(&[0x7f, 0xff, 0xff, 0xff], "test");
        assert!(d.strings().is_err());
    }

    #[test]
    fn oversized_and_text_frames_are_named() {
        let e = read_frame(&b"HTTP/1.1 200 OK"[..], 1 << 20).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("not a ZooKeeper server"), "{e}");
        let e = read_frame(&[0xff, 0xff, 0xff, 0xff][..], 100).unwrap_err();
        assert!(e.to_string().contains("-1"), "{e}");
    }

    proptest::proptest! {
        /// Any bytes at all: every decoder returns, none panics, and no
        /// frame beyond the limit is allocated.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = ConnectResponse::decode(&bytes);
            let mut d = Dec::new(&bytes, "fuzz");
            if ReplyHeader::decode(&mut d).is_ok() {
                let _ = WatcherEvent::decode(&mut Dec::new(&bytes[16..], "fuzz"));
                let _ = d.stat();
                let _ = d.strings();
            }
            if let Ok(f) = read_frame(&bytes[..], 64) {
                proptest::prop_assert!(f.len() <= 64);
            }
        }
    }
}
