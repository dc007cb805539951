//! Index of the sylvan-bench binaries: prints which benchmarks exist and how
//! to run them. Measures nothing itself.
//!
//! ```text
//! cargo run --release -p sylvan-bench
//! ```

fn main() {
    println!(
        "sylvan-bench: side-by-side benchmarks of sylvan against tokio.\n\
         Build with `cargo build --release -p sylvan-bench`, then run:\n\
         \n  target/release/runtime     yield, spawn+join, idle memory, timers, queue ping-pong\n\
         \x20                            vs tokio's current_thread runtime (about 25 s;\n\
         \x20                            `--quick` for a smoke test)\n\
         \n  target/release/echo        echo server, 64-byte request/response at 1, 64 and 1000\n\
         \x20                            connections: sylvan vs tokio current_thread vs a\n\
         \x20                            hand-written mio loop, servers pinned to CPU 0, one\n\
         \x20                            load generator on CPU 1; req/s, p50/p99, server CPU\n\
         \x20                            per request (about 40 s, more on a busy machine;\n\
         \x20                            `--quick` for a smoke test)\n\
         \n  target/release/chaos       `sylvan chaos` (no toxic) forwarding 64-byte echo load\n\
         \x20                            beside a direct connection: req/s at 64 conns, CPU\n\
         \x20                            per request, added p50 at 1 conn (needs the `sylvan`\n\
         \x20                            binary: build -p sylvan-cli too; about 30 s)"
    );
}
