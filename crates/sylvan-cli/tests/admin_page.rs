//! The admin web page of `sylvan proxy --admin`, in a real browser:
//! Debian's chromium driven by Playwright (`tests/browser/admin_page.js`).

mod util;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use util::{Proc, echo_server};

/// Fails with one line naming what to install when the browser or
/// Playwright is missing.
fn browser_dir() -> &'static Path {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser"));
    assert!(
        Path::new("/usr/bin/chromium").exists() || std::env::var_os("CHROMIUM").is_some(),
        "this test needs chromium: apt-get install chromium"
    );
    let ok = Command::new("node")
        .current_dir(dir)
        .args(["-e", "require('playwright-core')"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test needs node and playwright-core: apt-get install nodejs npm && \
         npm install --prefix crates/sylvan-cli/tests/browser"
    );
    dir
}

#[test]
fn the_admin_page_shows_upstreams_change_when_one_is_killed() {
    let dir = browser_dir();
    let (_a, a_addr) = echo_server();
    let (b, b_addr) = echo_server();
    let mut proxy = Proc::spawn(&[
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &a_addr.to_string(),
        "--upstream",
        &b_addr.to_string(),
        "--health-interval",
        "200ms",
        "--rise",
        "1",
        "--fall",
        "1",
        "--admin",
        "127.0.0.1:0",
    ]);
    let admin = proxy.addr_after("admin on ");
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("admin-page.png");
    let _ = std::fs::remove_file(&shot);
    let mut node = Command::new("node")
        .current_dir(dir)
        .arg("admin_page.js")
        .arg(format!("http://{admin}/"))
        .arg(&shot)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node");
    let (tx, rx) = mpsc::channel();
    let out = BufReader::new(node.stdout.take().unwrap());
    std::thread::spawn(move || {
        for l in out.lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let hang_guard = Duration::from_secs(90);
    let ready = rx
        .recv_timeout(hang_guard)
        .expect("the page showed both upstreams up");
    assert!(ready.starts_with("READY hubs="), "{ready}");
    assert!(
        !ready.contains("hubs=0"),
        "the hubs table has rows: {ready}"
    );
    b.signal("KILL");
    let changed = rx
        .recv_timeout(hang_guard)
        .expect("the page showed the change");
    let done = rx.recv_timeout(hang_guard).unwrap_or_default();
    let status = node.wait().unwrap();
    assert!(changed.starts_with("CHANGED "), "{changed}");
    let rows: Vec<String> = serde_json::from_str(&changed["CHANGED ".len()..]).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let row = |addr: &str| rows.iter().find(|r| r.contains(addr)).unwrap().clone();
    assert!(row(&a_addr.to_string()).contains(" up "), "{rows:?}");
    let killed = row(&b_addr.to_string());
    assert!(
        killed.contains(" down ") || killed.contains(" ejected "),
        "{rows:?}"
    );
    assert_eq!(done, "DONE", "the page fetched nothing from another origin");
    assert!(status.success());
    let png = std::fs::read(&shot).expect("the screenshot was saved");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );
    eprintln!("screenshot: {}", shot.display());
}
