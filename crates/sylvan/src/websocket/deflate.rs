//! permessage-deflate (RFC 7692): negotiating it on either side, and the
//! compressor and decompressor of a session that agreed on it.
//!
//! The decompressor always runs with a 32 KiB window, which inflates
//! whatever window the peer compresses with; the compressor honours the
//! window the peer allows (9 to 15 bits: zlib cannot make raw deflate
//! streams with 8, so an offer that requires 8 is declined). Inflating
//! stops as soon as the output passes the message limit, so a
//! decompression bomb costs no more memory than an honest message.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// What both sides agreed on, from this side's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Agreed {
    /// Reset our compressor after each message.
    pub(crate) our_no_context_takeover: bool,
    /// The window our compressor may use (9..=15 bits).
    pub(crate) our_window_bits: u8,
    /// The peer resets its compressor after each message (so may we our
    /// decompressor).
    pub(crate) peer_no_context_takeover: bool,
}

/// The extension offer a client sends.
pub(crate) const CLIENT_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// One parameter of an extension: name and optional value.
type Param<'a> = (&'a str, Option<&'a str>);

/// Splits a `Sec-WebSocket-Extensions` value into extensions and their
/// parameters. `None` for a malformed value.
fn parse<'a>(values: impl Iterator<Item = &'a str>) -> Option<Vec<(&'a str, Vec<Param<'a>>)>> {
    let mut out = Vec::new();
    for v in values {
        for ext in v.split(',') {
            let mut parts = ext.split(';').map(str::trim);
            let name = parts.next()?;
            if name.is_empty() {
                continue;
            }
            let mut params = Vec::new();
            for p in parts {
                let (k, v) = match p.split_once('=') {
                    Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
                    None => (p, None),
                };
                if k.is_empty() {
                    return None;
                }
                params.push((k, v));
            }
            out.push((name, params));
        }
    }
    Some(out)
}

/// Parses window bits (8..=15).
fn bits(v: Option<&str>) -> Option<u8> {
    let v = v?;
    if v.is_empty() || v.len() > 2 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|b| (8..=15).contains(b))
}

/// The server's choice among a client's offers: the first acceptable
/// permessage-deflate offer, with the response header value to send.
pub(crate) fn server_accept<'a>(offers: impl Iterator<Item = &'a str>) -> Option<(Agreed, String)> {
    'offers: for (name, params) in parse(offers)? {
        if !name.eq_ignore_ascii_case("permessage-deflate") {
            continue;
        }
        let mut seen: Vec<&str> = Vec::new();
        let mut agreed = Agreed {
            our_no_context_takeover: false,
            our_window_bits: 15,
            peer_no_context_takeover: false,
        };
        let mut response = String::from("permessage-deflate");
        for (k, v) in params {
            if seen.iter().any(|s| s.eq_ignore_ascii_case(k)) {
                continue 'offers; // a duplicate parameter: invalid offer
            }
            seen.push(k);
            match k.to_ascii_lowercase().as_str() {
                "server_no_context_takeover" if v.is_none() => {
                    agreed.our_no_context_takeover = true;
                    response.push_str("; server_no_context_takeover");
                }
                "client_no_context_takeover" if v.is_none() => {
                    agreed.peer_no_context_takeover = true;
                }
                "server_max_window_bits" => match bits(v) {
                    Some(b) if b >= 9 => {
                        agreed.our_window_bits = b;
                        response.push_str(&format!("; server_max_window_bits={b}"));
                    }
                    _ => continue 'offers,
                },
                // The client can take a limit on its window; our
                // decompressor needs none.
                "client_max_window_bits" => {
                    if v.is_some() && bits(v).is_none() {
                        continue 'offers;
                    }
                }
                _ => continue 'offers,
            }
        }
        return Some((agreed, response));
    }
    None
}

/// Checks the server's answer to [`CLIENT_OFFER`]: `Ok(None)` when it
/// declined, `Err` with the reason when the answer is not one the offer
/// allows.
pub(crate) fn client_check<'a>(
    answer: impl Iterator<Item = &'a str>,
) -> Result<Option<Agreed>, String> {
    let exts = parse(answer).ok_or("malformed Sec-WebSocket-Extensions")?;
    let mut agreed = None;
    for (name, params) in exts {
        if !name.eq_ignore_ascii_case("permessage-deflate") {
            return Err(format!(
                "the server selected the extension {name:?}, which was not offered"
            ));
        }
        if agreed.is_some() {
            return Err("the server selected permessage-deflate twice".into());
        }
        let mut a = Agreed {
            our_no_context_takeover: false,
            our_window_bits: 15,
            peer_no_context_takeover: false,
        };
        let mut seen: Vec<&str> = Vec::new();
        for (k, v) in params {
            if seen.iter().any(|s| s.eq_ignore_ascii_case(k)) {
                return Err(format!("permessage-deflate parameter {k} given twice"));
            }
            seen.push(k);
            match k.to_ascii_lowercase().as_str() {
                "server_no_context_takeover" if v.is_none() => a.peer_no_context_takeover = true,
                "client_no_context_takeover" if v.is_none() => a.our_no_context_takeover = true,
                "server_max_window_bits" if bits(v).is_some() => {}
                "client_max_window_bits" => match bits(v) {
                    Some(b) if b >= 9 => a.our_window_bits = b,
                    Some(b) => {
                        return Err(format!(
                            "the server asks for client_max_window_bits={b}; the smallest \
                             window zlib can compress with is 9"
                        ));
                    }
                    None => return Err("bad client_max_window_bits".into()),
                },
                _ => return Err(format!("bad permessage-deflate parameter {k:?}")),
            }
        }
        agreed = Some(a);
    }
    Ok(agreed)
}

/// The trailer a sync flush ends with, removed from each message sent and
/// added back before inflating one (RFC 7692 §7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// A session's compression state; the zlib streams are made at first use
/// (a session that never sends compressed data never pays for a
/// compressor).
pub(crate) struct Deflate {
    agreed: Agreed,
    compress: Option<Compress>,
    decompress: Option<Decompress>,
}

impl std::fmt::Debug for Deflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflate")
            .field("agreed", &self.agreed)
            .finish()
    }
}

impl Deflate {
    pub(crate) fn new(agreed: Agreed) -> Deflate {
        Deflate {
            agreed,
            compress: None,
            decompress: None,
        }
    }

    /// Compresses one message's payload.
    pub(crate) fn compress(&mut self, data: &[u8]) -> Result<Vec<u8>, String> {
        if data.is_empty() {
            // An empty stored block (RFC 7692 §7.2.3.6). zlib would emit
            // nothing for a second sync flush without input, and an empty
            // payload does not inflate.
            return Ok(vec![0x00]);
        }
        let bits = self.agreed.our_window_bits;
        let c = self.compress.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::fast(), false, bits)
        });
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let start = c.total_in();
        loop {
            let used = (c.total_in() - start) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(64));
            }
            c.compress_vec(&data[used..], &mut out, FlushCompress::Sync)
                .map_err(|e| format!("deflate failed: {e}"))?;
            let used = (c.total_in() - start) as usize;
            // Done when all input went in and the flush did not fill the
            // output (so it completed).
            if used == data.len() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if self.agreed.our_no_context_takeover {
            c.reset();
        }
        Ok(out)
    }

    /// Inflates one message's payload; `Err(None)` when the result would
    /// be larger than `max`, `Err(Some(reason))` for corrupt data.
    pub(crate) fn decompress(
        &mut self,
        data: &[u8],
        max: usize,
    ) -> Result<Vec<u8>, Option<String>> {
        if data.is_empty() {
            // Not what RFC 7692 sends for an empty message (a 0x00 byte),
            // but unambiguous: nothing.
            return Ok(Vec::new());
        }
        let d = self
            .decompress
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, 15));
        let mut out: Vec<u8> =
            Vec::with_capacity((data.len() * 2).clamp(64, max.saturating_add(1)));
        let r = (|| {
            for input in [data, &TAIL[..]] {
                let start = d.total_in();
                loop {
                    let used = (d.total_in() - start) as usize;
                    if used == input.len() && out.len() < out.capacity() {
                        break;
                    }
                    if out.len() > max {
                        return Err(None);
                    }
                    if out.len() == out.capacity() {
                        let room = out.capacity().max(64).min(max + 1 - out.len());
                        out.reserve_exact(room.max(1));
                    }
                    let (in0, out0) = (d.total_in(), d.total_out());
                    let status = d
                        .decompress_vec(&input[used..], &mut out, FlushDecompress::Sync)
                        .map_err(|e| Some(format!("invalid compressed data: {e}")))?;
                    if status == Status::StreamEnd {
                        return Err(Some(
                            "invalid compressed data: a final deflate block (BFINAL) inside a message"
                                .to_string(),
                        ));
                    }
                    if d.total_in() == in0 && d.total_out() == out0 && out.len() < out.capacity() {
                        if (d.total_in() - start) as usize == input.len() {
                            break;
                        }
                        return Err(Some("invalid compressed data: no progress".to_string()));
                    }
                }
            }
            if out.len() > max {
                return Err(None);
            }
            Ok(())
        })();
        if r.is_err() || self.agreed.peer_no_context_takeover {
            // After an error the session ends anyway; otherwise the peer
            // starts each message afresh.
            d.reset(false);
        }
        r.map(|()| out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreed() -> Agreed {
        Agreed {
            our_no_context_takeover: false,
            our_window_bits: 15,
            peer_no_context_takeover: false,
        }
    }

    #[test]
    fn round_trips_with_and_without_context_takeover() {
        for ours in [false, true] {
            for bits in [9, 12, 15] {
                let a = Agreed {
                    our_no_context_takeover: ours,
                    our_window_bits: bits,
                    peer_no_context_takeover: ours,
                };
                let (mut tx, mut rx) = (Deflate::new(a), Deflate::new(a));
                for msg in [
                    &b""[..],
                    b"hello",
                    &[7u8; 100_000][..],
                    b"hello hello hello",
                ] {
                    let z = tx.compress(msg).unwrap();
                    assert!(!z.ends_with(&TAIL));
                    assert_eq!(rx.decompress(&z, 1 << 20).unwrap(), msg);
                }
            }
        }
    }

    #[test]
    fn many_small_messages_keep_both_contexts_in_step() {
        // Found by the fuzz target: one-byte messages, then an empty one
        // (zlib emits nothing for a second sync flush without input).
        for bits in 9..=15 {
            let a = Agreed {
                our_window_bits: bits,
                ..agreed()
            };
            let (mut tx, mut rx) = (Deflate::new(a), Deflate::new(a));
            for i in 0..2000 {
                let msg = if i % 7 == 3 { &[][..] } else { &[0u8][..] };
                let z = tx.compress(msg).unwrap();
                if msg.is_empty() {
                    // RFC 7692 §7.2.3.6's empty message, not zlib's nothing.
                    assert_eq!(z, [0x00]);
                    // An empty payload from a peer is taken as empty too,
                    // and leaves the stream in step.
                    assert_eq!(rx.decompress(&[], 100), Ok(Vec::new()));
                }
                assert_eq!(
                    rx.decompress(&z, 100),
                    Ok(msg.to_vec()),
                    "bits {bits}, message {i}"
                );
            }
        }
    }

    #[test]
    fn the_rfc_7692_example_inflates() {
        // "Hello" compressed, from RFC 7692 §7.2.3.1.
        let z = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(
            Deflate::new(agreed()).decompress(&z, 100).unwrap(),
            b"Hello"
        );
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let z = Deflate::new(agreed())
            .compress(&vec![0u8; 4 << 20])
            .unwrap();
        assert!(z.len() < (64 << 10), "{}", z.len()); // small enough to pass a 64 KiB frame limit
        assert_eq!(Deflate::new(agreed()).decompress(&z, 64 << 10), Err(None));
        // Exactly at the limit is fine.
        let z = Deflate::new(agreed()).compress(&[1u8; 1000]).unwrap();
        assert_eq!(
            Deflate::new(agreed()).decompress(&z, 1000).unwrap().len(),
            1000
        );
        assert_eq!(Deflate::new(agreed()).decompress(&z, 999), Err(None));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for junk in [
            &[0xffu8; 10][..],
            &[0x03, 0x00][..],
            &[1, 2, 3, 4, 5, 6, 7, 8][..],
        ] {
            let r = Deflate::new(agreed()).decompress(junk, 1 << 20);
            assert!(matches!(r, Err(Some(_)) | Ok(_)), "{r:?}");
        }
        // A final block inside a message is refused.
        let mut c = Compress::new(Compression::fast(), false);
        let mut out = Vec::with_capacity(100);
        c.compress_vec(b"x", &mut out, FlushCompress::Finish)
            .unwrap();
        assert!(matches!(
            Deflate::new(agreed()).decompress(&out, 100),
            Err(Some(_))
        ));
    }

    #[test]
    fn server_negotiation() {
        let accept = |v: &str| server_accept(std::iter::once(v));
        let (a, r) = accept("permessage-deflate; client_max_window_bits").unwrap();
        assert_eq!(r, "permessage-deflate");
        assert_eq!(a, agreed());
        let (a, r) = accept("permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_no_context_takeover").unwrap();
        assert_eq!(
            r,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"
        );
        assert!(a.our_no_context_takeover && a.peer_no_context_takeover);
        assert_eq!(a.our_window_bits, 10);
        // Offers we cannot take are skipped for the next one.
        let (_, r) =
            accept("permessage-deflate; server_max_window_bits=8, permessage-deflate").unwrap();
        assert_eq!(r, "permessage-deflate");
        for bad in [
            "x-webkit-deflate-frame",
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
        ] {
            assert!(accept(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn client_checks_the_answer() {
        let check = |v: &str| client_check(std::iter::once(v));
        assert_eq!(check("").unwrap(), None);
        let a = check("permessage-deflate; server_max_window_bits=12; client_max_window_bits=12")
            .unwrap()
            .unwrap();
        assert_eq!(a.our_window_bits, 12);
        let a = check("permessage-deflate; client_no_context_takeover; server_no_context_takeover")
            .unwrap()
            .unwrap();
        assert!(a.our_no_context_takeover && a.peer_no_context_takeover);
        for bad in [
            "foo",
            "permessage-deflate, permessage-deflate",
            "permessage-deflate; client_max_window_bits=8",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; bar",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }
}
