//! WebSocket frames (RFC 6455) and permessage-deflate (RFC 7692) through
//! sylvan's codec, on either side.
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run websocket_frames corpus/websocket_frames seeds/websocket_frames
//! ```
//!
//! `seeds/websocket_frames` is the committed seed corpus (a frame of each
//! kind on both sides, with and without deflate, and the regressions the
//! fuzzer found); the library's unit tests replay it too.
//!
//! The first byte of an input picks the side (bit 0: client, else
//! server), permessage-deflate (bit 1), the limits (bit 2: 1 MiB, else
//! 1 KiB), no_context_takeover (bit 3) and the compressor's window (the
//! high bits); the rest is the byte stream received. Decoding must never
//! panic or consume more than it was given, a message never exceeds the
//! limit, and every message decoded survives being encoded by the peer's
//! side (masked from a client, compressed when deflate is on) and decoded
//! again.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sylvan::websocket::__private::fuzz_decode(data);
});
