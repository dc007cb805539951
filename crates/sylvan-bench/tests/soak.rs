//! The soak (`src/bin/soak.rs`) for 60 s: connection churn through the
//! chaos proxy and `sylvan proxy`, green threads spawned and killed,
//! timeouts firing; it exits 0 only if no acknowledged request was lost
//! or duplicated and descriptors, green threads, stack slots, timers,
//! connections and RSS came back to their baseline (its table says
//! which check failed). The 10-minute run is
//! `cargo run --release -p sylvan-bench --bin soak -- --duration 10m`.

use std::path::Path;
use std::process::Command;

#[test]
fn a_minute_of_soak_leaks_nothing_and_loses_nothing() {
    let soak = Path::new(env!("CARGO_BIN_EXE_soak"));
    // `cargo test --workspace` builds the CLI next to this package's bins.
    let sylvan = soak.with_file_name("sylvan");
    assert!(
        sylvan.exists(),
        "the soak needs the sylvan CLI at {}: build it with `cargo build -p sylvan-cli` \
         (cargo test --workspace does)",
        sylvan.display()
    );
    let out = Command::new(soak)
        .args(["--duration", "60s", "--clients", "32", "--sylvan"])
        .arg(&sylvan)
        .output()
        .expect("run the soak");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "soak failed ({}):\n{report}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("PASS no acknowledged request lost"),
        "{report}"
    );
    assert!(!report.contains("FAIL"), "{report}");
}
