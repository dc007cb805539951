//! The HTTP request reader on arbitrary bytes: heads, bodies (content
//! length and chunked), pipelining, split across arbitrary reads.
//!
//! ```text
//! cargo +nightly fuzz run parse_request
//! ```
//!
//! The first byte chooses how the rest is cut into reads, so the fuzzer
//! explores both the bytes and the read boundaries. The reader must never
//! panic, whatever it is fed.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(step % 64) + 1;
    let chunks: Vec<&[u8]> = rest.chunks(step).collect();
    let _ = sylvan::http::__private::serve_chunks(&chunks);
    let _ = sylvan::http::__private::serve_chunks(&[rest]);
});
