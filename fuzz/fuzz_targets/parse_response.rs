//! The HTTP client's response reader (`sylvan::http::Client`) on arbitrary
//! bytes: status line, headers, framing, chunked bodies.
//!
//! ```text
//! cargo +nightly fuzz run parse_response
//! ```
//!
//! The first byte says whether the request was a `HEAD`. The reader must
//! never panic; a response it accepts has a valid status and, unless it
//! is read until the close, a body no longer than the input.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flag, data)) = data.split_first() else {
        return;
    };
    if let Ok((status, body)) = sylvan::http::__private::read_response(data, flag & 1 == 1) {
        assert!((100..=999).contains(&status), "status {status}");
        assert!(body.len() <= data.len());
    }
});
