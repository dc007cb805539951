//! `sylvan top`, used as a person would: in a terminal (tmux), reading the
//! screen and pressing keys.

mod util;

use std::process::Command;
use std::time::{Duration, Instant};

use util::Proc;

/// A tmux session running one command; killed when dropped.
struct Tmux(String);

impl Tmux {
    fn start(cmd: &str) -> Tmux {
        let ok = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(ok, "this test needs tmux: apt-get install tmux");
        let name = format!("sylvan-top-test-{}", std::process::id());
        let st = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "160",
                "-y",
                "40",
                cmd,
            ])
            .status()
            .unwrap();
        assert!(st.success(), "tmux new-session failed");
        Tmux(name)
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (hang guard: 20 s) until the screen satisfies `f`.
    fn wait_for(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if f(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "screen never showed {what}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn keys(&self, keys: &[&str]) {
        let st = Command::new("tmux")
            .args(["send-keys", "-t", &self.0])
            .args(keys)
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.0])
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .output();
    }
}

#[test]
fn top_shows_hubs_and_green_threads_sorts_filters_and_quits_on_q() {
    let mut echo = Proc::spawn(&["echo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"]);
    let admin = echo.addr_after("admin on ");
    let bin = env!("CARGO_BIN_EXE_sylvan");
    let t = Tmux::start(&format!("{bin} top {admin}"));

    let s = t.wait_for("the hubs and green threads", |s| {
        s.contains("sylvan top") && s.contains("sylvan-serve") && s.contains("echo.rs:")
    });
    assert!(s.contains("sort: time parked"), "{s}");
    assert!(s.contains("sylvan-admin") && s.contains("sylvan-0"), "{s}");
    assert!(s.contains("parked"), "{s}");

    // Sort by state: a running green thread (the admin endpoint's request
    // handler) comes before every parked one.
    t.keys(&["s"]);
    let s = t.wait_for("the state sort", |s| s.contains("sort: state"));
    let rows: Vec<&str> = s
        .lines()
        .skip_while(|l| !l.contains("green threads ("))
        .skip(2) // the title and the column names
        .collect();
    let first_parked = rows.iter().position(|l| l.contains(" parked ")).unwrap();
    let last_running = rows.iter().rposition(|l| l.contains(" running")).unwrap();
    assert!(last_running < first_parked, "{s}");

    // Filter by name: only the serve loops are left.
    t.keys(&["/", "serve", "Enter"]);
    let s = t.wait_for("the filtered list", |s| {
        s.contains("filter: serve —") && !s.contains("(root:")
    });
    let rows: Vec<&str> = s
        .lines()
        .skip_while(|l| !l.contains("green threads ("))
        .skip(2)
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert!(!rows.is_empty(), "{s}");
    assert!(rows.iter().all(|l| l.contains("sylvan-serve")), "{s}");

    // q quits: the tmux session ends with it.
    t.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.alive() {
        assert!(Instant::now() < deadline, "sylvan top did not quit on q");
        std::thread::sleep(Duration::from_millis(50));
    }
    echo.signal("TERM");
}

#[test]
fn top_with_a_bad_address_is_a_clear_error() {
    let out = util::sylvan().args(["top", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not an IP:PORT address"), "{err}");
}
