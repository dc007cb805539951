//! The chaos HTTP API (`sylvan::chaos::api`) on arbitrary requests: JSON
//! bodies, paths with percent escapes, every method, on a registry that
//! keeps its proxies between the requests of one input.
//!
//! ```text
//! cargo +nightly fuzz run chaos_api
//! ```
//!
//! An input is a sequence of requests, each `METHOD-BYTE PATH \n BODY \0`:
//! the first byte picks the method. `"listen"` keys in the bodies are
//! renamed away, so proxies bind loopback port 0 (escaped keys aside) and
//! the fuzzer stays off other ports. The API must never panic and must
//! answer with one of its status codes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sylvan::chaos::Registry;

const METHODS: [&str; 5] = ["GET", "POST", "PATCH", "DELETE", "PUT"];

fuzz_target!(|data: &[u8]| {
    let registry = Registry::new();
    for request in data.split(|b| *b == 0).take(16) {
        let Some((&m, rest)) = request.split_first() else {
            continue;
        };
        let method = METHODS[usize::from(m) % METHODS.len()];
        let (path, body) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        let path = String::from_utf8_lossy(path);
        let body = String::from_utf8_lossy(body).replace("\"listen\"", "\"_listen\"");
        let status = sylvan::chaos::api::__fuzz(&registry, method, &path, body.as_bytes());
        assert!(
            matches!(status, 200 | 201 | 204 | 400 | 404 | 405 | 409 | 500),
            "status {status}"
        );
    }
    registry.clear();
});
