//! RFC 6455 frames and messages, one codec for both sides: the server
//! expects masked frames and sends unmasked ones, the client the reverse.
//! Push-based and free of I/O (the fuzz target drives it directly):
//! [`Codec::decode`] takes the bytes received so far and returns how many
//! it consumed and the message they completed, if any.

use tungstenite::protocol::Role;

use super::deflate::Deflate;
use super::{Bytes, CloseCode, CloseFrame, Message, Utf8Bytes};

/// Why decoding or encoding failed; the session closes with the code that
/// goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CodecError {
    /// Over a size limit: close `1009`.
    TooLarge(String),
    /// A protocol violation: close `1002`.
    Protocol(String),
    /// Text or a close reason that is not UTF-8, or corrupt compressed
    /// data: close `1007`.
    Invalid(String),
}

/// A message being reassembled from fragments.
#[derive(Debug)]
struct Partial {
    text: bool,
    compressed: bool,
    data: Vec<u8>,
}

/// The protocol state of one side of a session.
#[derive(Debug)]
pub(crate) struct Codec {
    role: Role,
    max_frame: usize,
    max_message: usize,
    deflate: Option<Deflate>,
    partial: Option<Partial>,
}

const OP_CONT: u8 = 0;
const OP_TEXT: u8 = 1;
const OP_BINARY: u8 = 2;
const OP_CLOSE: u8 = 8;
const OP_PING: u8 = 9;
const OP_PONG: u8 = 10;

fn protocol(m: impl Into<String>) -> CodecError {
    CodecError::Protocol(m.into())
}

/// Whether a received close code is one a peer may send (RFC 6455 §7.4).
fn valid_close_code(c: u16) -> bool {
    matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

impl Codec {
    pub(crate) fn new(
        role: Role,
        max_frame: usize,
        max_message: usize,
        deflate: Option<Deflate>,
    ) -> Codec {
        Codec {
            role,
            max_frame,
            max_message,
            deflate,
            partial: None,
        }
    }

    /// Whether permessage-deflate is in use.
    pub(crate) fn compresses(&self) -> bool {
        self.deflate.is_some()
    }

    /// Decodes from `buf`: the bytes consumed, and the message completed
    /// (control frames are messages too). `(0, None)` means more bytes
    /// are needed; a fragment consumed without completing a message is
    /// `(n, None)`.
    pub(crate) fn decode(&mut self, buf: &[u8]) -> Result<(usize, Option<Message>), CodecError> {
        if buf.len() < 2 {
            return Ok((0, None));
        }
        let (b0, b1) = (buf[0], buf[1]);
        let fin = b0 & 0x80 != 0;
        let rsv1 = b0 & 0x40 != 0;
        let opcode = b0 & 0x0f;
        let masked = b1 & 0x80 != 0;
        if b0 & 0x30 != 0 {
            return Err(protocol("reserved bits RSV2/RSV3 set"));
        }
        let (len, mut at) = match b1 & 0x7f {
            126 => {
                if buf.len() < 4 {
                    return Ok((0, None));
                }
                (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4)
            }
            127 => {
                if buf.len() < 10 {
                    return Ok((0, None));
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[2..10]);
                let n = u64::from_be_bytes(b);
                if n >> 63 != 0 {
                    return Err(protocol("frame length with the most significant bit set"));
                }
                (n, 10)
            }
            n => (n as u64, 2),
        };
        let control = opcode & 0x08 != 0;
        match opcode {
            OP_CONT | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG => {}
            op => return Err(protocol(format!("unknown opcode {op}"))),
        }
        if control && !fin {
            return Err(protocol("fragmented control frame"));
        }
        if control && len > 125 {
            return Err(protocol("control frame longer than 125 bytes"));
        }
        if rsv1 && (self.deflate.is_none() || control || opcode == OP_CONT) {
            return Err(protocol(if self.deflate.is_none() {
                "RSV1 set but permessage-deflate was not negotiated"
            } else {
                "RSV1 set on a control or continuation frame"
            }));
        }
        match (self.role, masked) {
            (Role::Server, false) => return Err(protocol("unmasked frame from a client")),
            (Role::Client, true) => return Err(protocol("masked frame from a server")),
            _ => {}
        }
        if len > self.max_frame as u64 {
            return Err(CodecError::TooLarge(format!(
                "frame of {len} bytes, over the limit of {}",
                self.max_frame
            )));
        }
        let mask = if masked {
            if buf.len() < at + 4 {
                return Ok((0, None));
            }
            let m = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
            at += 4;
            Some(m)
        } else {
            None
        };
        let len = len as usize;
        if buf.len() - at < len {
            return Ok((0, None));
        }
        let end = at + len;
        let mut payload = buf[at..end].to_vec();
        if let Some(m) = mask {
            apply_mask(&mut payload, m);
        }
        let msg = match opcode {
            OP_PING => Some(Message::Ping(Bytes::from(payload))),
            OP_PONG => Some(Message::Pong(Bytes::from(payload))),
            OP_CLOSE => Some(Message::Close(close_frame(&payload)?)),
            OP_TEXT | OP_BINARY => {
                if self.partial.is_some() {
                    return Err(protocol(
                        "a new data frame in the middle of a fragmented message",
                    ));
                }
                let p = Partial {
                    text: opcode == OP_TEXT,
                    compressed: rsv1,
                    data: Vec::new(),
                };
                self.data(p, payload, fin)?
            }
            _ => {
                let Some(p) = self.partial.take() else {
                    return Err(protocol("a continuation frame with no message to continue"));
                };
                self.data(p, payload, fin)?
            }
        };
        Ok((end, msg))
    }

    /// Adds a data frame's payload to a message; the message when `fin`.
    fn data(
        &mut self,
        mut p: Partial,
        payload: Vec<u8>,
        fin: bool,
    ) -> Result<Option<Message>, CodecError> {
        let total = p.data.len() + payload.len();
        if total > self.max_message {
            return Err(CodecError::TooLarge(format!(
                "message of more than {} bytes, over the limit of {}",
                total - 1,
                self.max_message
            )));
        }
        if p.data.is_empty() {
            p.data = payload;
        } else {
            p.data.extend_from_slice(&payload);
        }
        if !fin {
            self.partial = Some(p);
            return Ok(None);
        }
        let data = match (&mut self.deflate, p.compressed) {
            (Some(d), true) => d
                .decompress(&p.data, self.max_message)
                .map_err(|e| match e {
                    None => CodecError::TooLarge(format!(
                        "compressed message inflating to more than {} bytes",
                        self.max_message
                    )),
                    Some(m) => CodecError::Invalid(m),
                })?,
            _ => p.data,
        };
        Ok(Some(if p.text {
            let text = String::from_utf8(data)
                .map_err(|e| CodecError::Invalid(format!("text message is not UTF-8: {e}")))?;
            Message::Text(Utf8Bytes::from(text))
        } else {
            Message::Binary(Bytes::from(data))
        }))
    }

    /// Appends `msg` as one frame (masked on the client side; text and
    /// binary compressed when permessage-deflate is in use).
    pub(crate) fn encode(&mut self, msg: &Message, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let (opcode, payload): (u8, std::borrow::Cow<'_, [u8]>) = match msg {
            Message::Text(t) => (OP_TEXT, t.as_bytes().into()),
            Message::Binary(b) => (OP_BINARY, b.as_ref().into()),
            Message::Ping(b) => (OP_PING, b.as_ref().into()),
            Message::Pong(b) => (OP_PONG, b.as_ref().into()),
            Message::Close(None) => (OP_CLOSE, Vec::new().into()),
            Message::Close(Some(f)) => {
                let mut v = u16::from(f.code).to_be_bytes().to_vec();
                v.extend_from_slice(f.reason.as_bytes());
                (OP_CLOSE, v.into())
            }
            Message::Frame(_) => return Err(protocol("raw frames cannot be sent")),
        };
        if opcode & 0x08 != 0 && payload.len() > 125 {
            return Err(protocol("a control frame's payload is at most 125 bytes"));
        }
        let (rsv1, payload) = match &mut self.deflate {
            Some(d) if opcode & 0x08 == 0 => (
                true,
                d.compress(&payload).map_err(CodecError::Invalid)?.into(),
            ),
            _ => (false, payload),
        };
        let b0 = 0x80 | if rsv1 { 0x40 } else { 0 } | opcode;
        let mask_bit = if self.role == Role::Client { 0x80 } else { 0 };
        out.reserve(payload.len() + 14);
        out.push(b0);
        match payload.len() {
            n if n < 126 => out.push(mask_bit | n as u8),
            n if n <= 0xffff => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if self.role == Role::Client {
            // RFC 6455 §5.3: the key must be unpredictable, from a strong
            // source of entropy: the OS's (vDSO getrandom on recent Linux).
            // Should that ever fail (Linux < 3.17 without /dev/urandom), a
            // weak key still keeps the frame valid.
            let mask = getrandom::u32()
                .unwrap_or_else(|_| fastrand::u32(..))
                .to_ne_bytes();
            out.extend_from_slice(&mask);
            let start = out.len();
            out.extend_from_slice(&payload);
            apply_mask(&mut out[start..], mask);
        } else {
            out.extend_from_slice(&payload);
        }
        Ok(())
    }
}

/// XORs `data` with the 4-byte mask.
fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = data.chunks_exact_mut(4);
    for c in &mut chunks {
        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ word;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i];
    }
}

/// A close frame's payload: nothing, or a valid code and a UTF-8 reason.
fn close_frame(payload: &[u8]) -> Result<Option<CloseFrame>, CodecError> {
    match payload {
        [] => Ok(None),
        [_] => Err(protocol("a close frame with a one-byte payload")),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            if !valid_close_code(code) {
                return Err(protocol(format!("invalid close code {code}")));
            }
            let reason = std::str::from_utf8(reason)
                .map_err(|_| CodecError::Invalid("close reason is not UTF-8".into()))?;
            Ok(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: Utf8Bytes::from(reason.to_string()),
            }))
        }
    }
}

/// The fuzz target's entry: decodes `data` as a stream of frames (the
/// first byte picks the side, permessage-deflate and small or large
/// limits), then checks that no text or binary message passes the limit
/// and that every message decoded survives an encode and a decode by the
/// other side. Panics only on a broken invariant.
#[doc(hidden)]
pub fn fuzz_decode(data: &[u8]) {
    use super::deflate::Agreed;
    let Some((&cfg, mut data)) = data.split_first() else {
        return;
    };
    let role = if cfg & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let deflate = cfg & 2 != 0;
    let limit = if cfg & 4 == 0 { 1 << 10 } else { 1 << 20 };
    let agreed = Agreed {
        our_no_context_takeover: cfg & 8 != 0,
        our_window_bits: 9 + (cfg >> 4) % 7,
        peer_no_context_takeover: cfg & 8 != 0,
    };
    let mk = |role| Codec::new(role, limit, limit, deflate.then(|| Deflate::new(agreed)));
    let mut codec = mk(role);
    let other = if role == Role::Server {
        Role::Client
    } else {
        Role::Server
    };
    let (mut tx, mut rx) = (mk(other), mk(role));
    while !data.is_empty() {
        match codec.decode(data) {
            Ok((0, None)) | Err(_) => return,
            Ok((n, msg)) => {
                assert!(n <= data.len(), "consumed more than given");
                data = &data[n..];
                if let Some(msg) = msg {
                    let len = match &msg {
                        Message::Text(t) => t.len(),
                        Message::Binary(b) => b.len(),
                        _ => 0,
                    };
                    assert!(
                        len <= limit,
                        "a {len}-byte message passed a {limit}-byte limit"
                    );
                    let mut wire = Vec::new();
                    if tx.encode(&msg, &mut wire).is_ok() {
                        let back = rx.decode(&wire);
                        assert_eq!(back, Ok((wire.len(), Some(msg))), "round trip");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::deflate::Agreed;
    use super::*;

    fn pair(deflate: bool) -> (Codec, Codec) {
        let d = || {
            deflate.then(|| {
                Deflate::new(Agreed {
                    our_no_context_takeover: false,
                    our_window_bits: 15,
                    peer_no_context_takeover: false,
                })
            })
        };
        (
            Codec::new(Role::Client, 1 << 20, 1 << 20, d()),
            Codec::new(Role::Server, 1 << 20, 1 << 20, d()),
        )
    }

    #[test]
    fn every_client_frame_has_a_fresh_masking_key() {
        let (mut c, _) = pair(false);
        let mut keys = std::collections::HashSet::new();
        for _ in 0..64 {
            let mut wire = Vec::new();
            c.encode(&Message::text("x"), &mut wire).unwrap();
            // FIN|text, MASK|len 1, then the 4-byte key.
            assert_eq!(wire[1], 0x80 | 1);
            keys.insert([wire[2], wire[3], wire[4], wire[5]]);
        }
        // 64 random 32-bit keys collide with probability below 1e-6.
        assert_eq!(keys.len(), 64, "masking keys repeat");
    }

    #[test]
    fn client_to_server_and_back() {
        for deflate in [false, true] {
            let (mut c, mut s) = pair(deflate);
            let msgs = [
                Message::text("hello"),
                Message::binary(vec![0u8; 70_000]),
                Message::Ping(Bytes::from_static(b"p")),
                Message::text(""),
                Message::Close(Some(CloseFrame {
                    code: CloseCode::Normal,
                    reason: "bye".into(),
                })),
            ];
            let mut wire = Vec::new();
            for m in &msgs {
                c.encode(m, &mut wire).unwrap();
            }
            // Masked: the text is not readable on the wire.
            assert!(!wire.windows(5).any(|w| w == b"hello"));
            let mut got = Vec::new();
            let mut at = 0;
            // Fed a byte at a time at first, then all at once.
            let mut fed = 1;
            while at < wire.len() {
                let end = (at + fed).min(wire.len());
                match s.decode(&wire[at..end]).unwrap() {
                    (0, None) => fed += 1,
                    (n, m) => {
                        at += n;
                        got.extend(m);
                    }
                }
            }
            assert_eq!(got, msgs);
            // And the server's frames, unmasked, back to the client.
            let mut wire = Vec::new();
            s.encode(&msgs[0], &mut wire).unwrap();
            assert_eq!(wire[1] & 0x80, 0);
            assert_eq!(
                c.decode(&wire).unwrap(),
                (wire.len(), Some(msgs[0].clone()))
            );
        }
    }

    #[test]
    fn fragments_are_reassembled() {
        let (_, mut s) = pair(false);
        let frames: [&[u8]; 3] = [
            &[0x01, 0x82, 0, 0, 0, 0, b'a', b'b'],
            &[0x89, 0x80, 0, 0, 0, 0], // a ping in between
            &[0x80, 0x81, 0, 0, 0, 0, b'c'],
        ];
        assert_eq!(s.decode(frames[0]).unwrap(), (8, None));
        assert_eq!(
            s.decode(frames[1]).unwrap(),
            (6, Some(Message::Ping(Bytes::new())))
        );
        assert_eq!(
            s.decode(frames[2]).unwrap(),
            (7, Some(Message::text("abc")))
        );
    }

    #[test]
    fn violations_are_errors() {
        let cases: [(&[u8], &str); 9] = [
            (&[0x81, 0x01, b'x'], "unmasked"),
            (&[0xc1, 0x80, 0, 0, 0, 0], "RSV1"),
            (&[0xa1, 0x80, 0, 0, 0, 0], "RSV2"),
            (&[0x83, 0x80, 0, 0, 0, 0], "opcode"),
            (&[0x09, 0x80, 0, 0, 0, 0], "fragmented control"),
            (&[0x80, 0x80, 0, 0, 0, 0], "continuation"),
            (&[0x88, 0x81, 0, 0, 0, 0, 1], "one-byte"),
            (&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xed], "close code 1005"),
            (&[0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0], "most significant"),
        ];
        for (bytes, what) in cases {
            let (_, mut s) = pair(false);
            let e = s.decode(bytes).unwrap_err();
            assert!(format!("{e:?}").contains(what), "{what}: {e:?}");
        }
        let (_, mut s) = pair(false);
        let e = s.decode(&[0x81, 0x82, 0, 0, 0, 0, 0xc3, 0x28]).unwrap_err();
        assert!(matches!(e, CodecError::Invalid(_)), "{e:?}");
        let mut s = Codec::new(Role::Server, 10, 10, None);
        let e = s.decode(&[0x82, 0x8b]).unwrap_err();
        assert!(matches!(e, CodecError::TooLarge(_)), "{e:?}");
        // Fragments adding up past the message limit.
        let mut s = Codec::new(Role::Server, 10, 10, None);
        assert_eq!(
            s.decode(&[0x02, 0x86, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6])
                .unwrap()
                .1,
            None
        );
        let e = s
            .decode(&[0x80, 0x86, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6])
            .unwrap_err();
        assert!(matches!(e, CodecError::TooLarge(_)), "{e:?}");
    }

    /// The fuzz target's seeds, and a few thousand random mutations of
    /// them (a smoke test; `cargo fuzz` does the real search).
    #[test]
    fn fuzz_seeds_and_mutations_hold_the_invariants() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/seeds/websocket_frames");
        let seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        assert!(seeds.len() >= 5);
        let mut rng = fastrand::Rng::with_seed(7);
        for seed in &seeds {
            fuzz_decode(seed);
            for _ in 0..500 {
                let mut m = seed.clone();
                for _ in 0..rng.usize(1..4) {
                    let i = rng.usize(..m.len());
                    m[i] = rng.u8(..);
                }
                fuzz_decode(&m);
            }
        }
    }

    #[test]
    fn a_compressed_bomb_is_too_large() {
        let (mut c, _) = pair(true);
        let mut wire = Vec::new();
        c.encode(&Message::binary(vec![0u8; 4 << 20]), &mut wire)
            .unwrap();
        assert!(wire.len() < (64 << 10), "{}", wire.len()); // under the limit compressed
        let mut s = Codec::new(
            Role::Server,
            1 << 20,
            64 << 10,
            Some(Deflate::new(Agreed {
                our_no_context_takeover: false,
                our_window_bits: 15,
                peer_no_context_takeover: false,
            })),
        );
        let e = s.decode(&wire).unwrap_err();
        assert!(
            matches!(e, CodecError::TooLarge(ref m) if m.contains("inflating")),
            "{e:?}"
        );
    }
}
