//! The request reader fed random byte splits of valid requests (pipelined,
//! with content-length and chunked bodies) must see exactly what it sees
//! unsplit; random bytes must never make it panic.

use proptest::prelude::*;
use sylvan::http::__private::serve_chunks;

#[derive(Debug, Clone)]
struct Req {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunks: Option<Vec<usize>>,
}

impl Req {
    fn bytes(&self, last: bool) -> Vec<u8> {
        let mut out = format!(
            "{} {} HTTP/1.1\r\nHost: example\r\n",
            self.method, self.path
        )
        .into_bytes();
        for (n, v) in &self.headers {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        if last {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        match &self.chunks {
            None => {
                out.extend_from_slice(
                    format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes(),
                );
                out.extend_from_slice(&self.body);
            }
            Some(sizes) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut rest = &self.body[..];
                for &s in sizes {
                    if rest.is_empty() {
                        break;
                    }
                    let n = s.clamp(1, rest.len());
                    out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                    out.extend_from_slice(&rest[..n]);
                    out.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                }
                if !rest.is_empty() {
                    out.extend_from_slice(format!("{:X};ext=1\r\n", rest.len()).as_bytes());
                    out.extend_from_slice(rest);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
            }
        }
        out
    }
}

fn req() -> impl Strategy<Value = Req> {
    (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH"]),
        "/[a-z0-9/._-]{0,20}(\\?[a-z=&]{0,10})?|/stream",
        prop::collection::vec(("X-[A-Za-z]{1,8}", "[ -~]{0,20}"), 0..5),
        prop::collection::vec(any::<u8>(), 0..300),
        prop::option::of(prop::collection::vec(1usize..64, 0..8)),
    )
        .prop_map(|(method, path, headers, body, chunks)| Req {
            method,
            path,
            headers: headers
                .into_iter()
                .map(|(n, v)| (n, v.trim().to_string()))
                .collect(),
            body,
            chunks,
        })
}

fn split(data: &[u8], mut cuts: Vec<usize>) -> Vec<&[u8]> {
    cuts.retain(|&c| c > 0 && c < data.len());
    cuts.sort_unstable();
    cuts.dedup();
    let mut parts = Vec::new();
    let mut prev = 0;
    for c in cuts {
        parts.push(&data[prev..c]);
        prev = c;
    }
    parts.push(&data[prev..]);
    parts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_splits_parse_identically(
        reqs in prop::collection::vec(req(), 1..5),
        cuts in prop::collection::vec(0usize..4000, 0..40),
    ) {
        let mut wire = Vec::new();
        for (i, r) in reqs.iter().enumerate() {
            wire.extend_from_slice(&r.bytes(i + 1 == reqs.len()));
        }
        let whole = serve_chunks(&[&wire]);
        let pieces = split(&wire, cuts);
        let split_up = serve_chunks(&pieces);
        prop_assert_eq!(&whole, &split_up);
        let bytewise: Vec<&[u8]> = wire.chunks(1).collect();
        prop_assert_eq!(&whole, &serve_chunks(&bytewise));
        // And the handler saw every request, bodies intact.
        let (seen, _) = whole.split_once("--\n").unwrap();
        prop_assert_eq!(seen.lines().count(), reqs.len());
        for (line, r) in seen.lines().zip(&reqs) {
            let prefix = format!("{} {} Http11 ", r.method, r.path);
            prop_assert!(line.starts_with(&prefix), "{} vs {}", line, prefix);
            let body = format!("body={:?} Ok({})", String::from_utf8_lossy(&r.body), r.body.len());
            prop_assert!(line.ends_with(&body), "{} vs {}", line, body);
        }
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..600), cuts in prop::collection::vec(0usize..600, 0..10)) {
        let _ = serve_chunks(&split(&data, cuts));
    }

    #[test]
    fn mutated_requests_never_panic(
        r in req(),
        flips in prop::collection::vec((0usize..2000, any::<u8>()), 1..6),
        cuts in prop::collection::vec(0usize..2000, 0..10),
    ) {
        let mut wire = r.bytes(false);
        wire.extend_from_slice(&r.bytes(true));
        for (at, b) in flips {
            let n = wire.len();
            wire[at % n] = b;
        }
        let _ = serve_chunks(&split(&wire, cuts));
    }
}

#[test]
fn a_read_timeout_mid_head_is_a_408() {
    let t = serve_chunks(&[b"GET / HTTP/1.1\r\nHo", b""]);
    assert!(t.contains("HTTP/1.1 408 Request Timeout\r\n"), "{t}");
}

#[test]
fn transcript_shows_requests_and_responses() {
    let t = serve_chunks(&[
        b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi",
        b"GET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    ]);
    let (seen, out) = t.split_once("--\n").unwrap();
    assert_eq!(seen.lines().count(), 2, "{t}");
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{t}");
    assert!(out.ends_with("0 bytes"), "{t}");
}
