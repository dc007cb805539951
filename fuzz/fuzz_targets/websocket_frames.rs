//! WebSocket frames (RFC 6455) and permessage-deflate (RFC 7692) through
//! sylvan's codec, on either side.
//!
//! ```text
//! cargo +nightly fuzz run websocket_frames fuzz/corpus/websocket_frames
//! ```
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
