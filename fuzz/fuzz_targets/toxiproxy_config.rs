//! The Toxiproxy config file `sylvan chaos --config` reads
//! (`sylvan::chaos::api::parse_config`), on arbitrary bytes.
//!
//! ```text
//! cargo +nightly fuzz run toxiproxy_config
//! ```
//!
//! It must never panic: a bad file is a 400 with a message.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = sylvan::chaos::api::parse_config(data) {
        assert_eq!(e.status(), 400);
        assert!(!e.message().is_empty());
    }
});
