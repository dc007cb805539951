//! WebSocket frames as a server session reads them (`sylvan::websocket`:
//! tungstenite under sylvan's limits and error mapping), on arbitrary
//! client bytes: masking, fragmentation, control frames, close codes,
//! UTF-8, lengths.
//!
//! ```text
//! cargo +nightly fuzz run ws_frame
//! ```
//!
//! The first byte picks the message size limit (1 to 256 bytes, so the
//! limits are reached). The reader must never panic, never hand over a
//! message beyond the limit, and report an oversized one as `TooLarge`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&limit, data)) = data.split_first() else {
        return;
    };
    let limit = usize::from(limit) + 1;
    let (messages, _end) = sylvan::websocket::__private::read_frames(data, limit);
    for len in messages {
        assert!(len <= limit, "a {len}-byte message passed a {limit}-byte limit");
    }
});
