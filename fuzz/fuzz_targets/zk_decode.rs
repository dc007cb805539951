//! The ZooKeeper client's decoders (`sylvan::zk`, `zk/proto.rs`) on
//! arbitrary server bytes: frame lengths, the ConnectResponse, reply
//! headers, every reply body the client reads, watch notifications.
//!
//! ```text
//! cargo +nightly fuzz run zk_decode
//! ```
//!
//! A server is untrusted input: whatever it sends, decoding must end in a
//! value or an error, never a panic or an allocation beyond the frame
//! limit (4 KiB here, so lengths and counts hit it).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frames) = sylvan::zk::__private::decode_server_stream(data, 4096) {
        // Every frame carries at least its 4-byte length.
        assert!(frames * 4 <= data.len());
    }
});
