//! Every subcommand validates its flags into settings before it runs: a
//! bad flag is one clear line on stderr and exit code 2, never a panic,
//! and nothing is bound or started first.

mod util;

use util::sylvan;

/// Runs `sylvan ARGS`; asserts exit code 2, `want` on the first stderr
/// line, one line only (clap adds a hint line below its own errors), and
/// no panic.
#[track_caller]
fn rejects(args: &[&str], want: &str) {
    let out = sylvan().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(first.contains(want), "{args:?}: want {want:?} in {err}");
    if !err.contains("For more information") {
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn echo_rejects_bad_flags() {
    rejects(&["echo", "--listen", "localhost"], "--listen \"localhost\"");
    rejects(&["echo", "--threads", "0"], "--threads must be at least 1");
    rejects(
        &["echo", "--threads", "100000"],
        "--threads must be at most 1024",
    );
    rejects(&["echo", "--threads=-1"], "invalid value '-1'");
    rejects(
        &["echo", "--idle-timeout", "0s"],
        "--idle-timeout must be more than 0",
    );
    rejects(&["echo", "--grace", "99999999999s"], "out of range");
    rejects(&["echo", "--register", "zk://"], "--register");
    rejects(
        &["echo", "--zk-session-timeout", "0s"],
        "--zk-session-timeout",
    );
    rejects(&["echo", "--no-such-flag"], "unexpected argument");
}

#[test]
fn chaos_rejects_bad_flags() {
    rejects(&["chaos", "--port=-1"], "is not a port number");
    rejects(&["chaos", "--port", "99999"], "is not a port number");
    rejects(&["chaos", "--host", ""], "--host is empty");
    rejects(&["chaos", "--grace", "forever"], "not a duration");
    rejects(
        &[
            "chaos",
            "--port",
            "0",
            "--config",
            "/nonexistent/sylvan.json",
        ],
        "cannot read --config",
    );
}

#[test]
fn bench_rejects_bad_flags() {
    let echo = |flag: &'static str| ["bench", "echo", "127.0.0.1:7", flag];
    rejects(&echo("--size=0"), "--size must be between 1 and");
    // Would have tried to allocate 100 GB for the payload.
    rejects(&echo("--size=100000000000"), "--size must be between 1 and");
    rejects(&echo("-c0"), "at least 1");
    rejects(&echo("-c100000000"), "-c must be at most");
    rejects(&echo("--threads=100000"), "--threads must be at most");
    rejects(&echo("-d0s"), "-d and --timeout must be more than 0");
    rejects(
        &echo("--timeout=0s"),
        "-d and --timeout must be more than 0",
    );
    rejects(&echo("--rate=-5"), "--rate -5.0 must be a positive number");
    rejects(&echo("--rate=inf"), "--rate inf must be a positive number");
    // One request per connection every 1e301 s does not fit a Duration.
    rejects(&echo("--rate=1e-300"), "--rate 1e-300 is too low");
    rejects(&["bench", "http", "ftp://x/"], "not a valid URL");
}

#[test]
fn demo_rejects_bad_flags() {
    rejects(
        &["demo", "--duration", "1s"],
        "--duration must be at least 2s",
    );
    rejects(
        &["demo", "--duration", "100h"],
        "--duration must be at most 1h",
    );
    rejects(
        &["demo", "--clients", "0"],
        "--clients must be between 1 and 10000",
    );
    rejects(
        &["demo", "--clients", "1000000"],
        "--clients must be between 1 and 10000",
    );
}

#[test]
fn proxy_rejects_bad_flags() {
    let up = |flag: &'static str, value: &'static str| {
        ["proxy", "--upstream", "127.0.0.1:1", flag, value]
    };
    rejects(
        &up("--max-connections", "0"),
        "--max-connections must be at least 1",
    );
    rejects(&up("--threads", "0"), "--threads must be at least 1");
    rejects(&up("--threads", "5000"), "--threads must be at most 1024");
    rejects(
        &up("--rise", "0"),
        "--rise, --fall and --eject-after must be at least 1",
    );
    rejects(
        &up("--health-interval", "0s"),
        "--health-interval must be more than 0",
    );
    rejects(
        &up("--admin", "nowhere"),
        "--admin \"nowhere\" is not an IP:PORT",
    );
    rejects(&up("--discover", "http://x/"), "--discover");
}
