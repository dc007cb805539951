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
         \x20                            `--quick` for a smoke test)"
    );
}
