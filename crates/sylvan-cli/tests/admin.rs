//! `--admin` on `sylvan echo` and `sylvan chaos` (the proxy's is in
//! proxy.rs and admin_page.rs): sylvan's admin endpoint, loopback unless a
//! token is given.

mod util;

use util::{Proc, http_get, sylvan};

#[test]
fn echo_and_chaos_serve_the_admin_endpoint() {
    for args in [
        &["echo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"][..],
        &["chaos", "--port", "0", "--admin", "127.0.0.1:0"][..],
    ] {
        let mut p = Proc::spawn(args);
        let admin = p.addr_after("admin on ");
        let (status, metrics) = http_get(admin, "/metrics");
        assert_eq!(status, 200, "{args:?}");
        assert!(
            metrics.contains("# TYPE sylvan_green_threads gauge"),
            "{metrics}"
        );
        let (status, threads) = http_get(admin, "/threads");
        assert_eq!(status, 200);
        assert!(threads.contains("sylvan dump: pid"), "{threads}");
        assert!(threads.contains("green thread"), "{threads}");
        p.signal("TERM");
    }
}

#[test]
fn a_non_loopback_admin_without_a_token_is_refused() {
    let out = sylvan()
        .args(["echo", "--listen", "127.0.0.1:0", "--admin", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a loopback address") && err.contains("token"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn with_a_token_every_request_needs_it() {
    let mut p = Proc::spawn(&[
        "echo",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--admin-token",
        "t0k",
    ]);
    let admin = p.addr_after("admin on ");
    assert_eq!(http_get(admin, "/metrics").0, 401);
    assert_eq!(http_get(admin, "/metrics?token=t0k").0, 200);
    p.signal("TERM");
}
