//! `sylvan echo`: serves, drains on SIGTERM, rejects bad input with exit 2.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

/// Reads the address from the server's "listening on ADDR (...)" line. The
/// server binds port 0 itself: a port picked here and freed before the
/// server binds it could be taken meanwhile by another test's server,
/// which this test would then talk to.
fn listening_addr(stderr: &mut impl std::io::BufRead) -> String {
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let rest = line
        .split("listening on ")
        .nth(1)
        .unwrap_or_else(|| panic!("no listening line: {line:?}"));
    rest.split_whitespace().next().unwrap().to_string()
}

#[test]
fn echoes_on_two_threads_and_exits_cleanly_on_sigterm() {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("sylvan"))
        .args(["echo", "--listen", "127.0.0.1:0", "--threads", "2"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let addr = listening_addr(&mut stderr);
    for i in 0..20 {
        let mut s = TcpStream::connect(&addr).unwrap();
        let msg = format!("hello {i}");
        s.write_all(msg.as_bytes()).unwrap();
        let mut back = vec![0; msg.len()];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, msg.as_bytes());
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn bad_input_is_one_line_and_exit_code_2() {
    for (args, expect) in [
        (
            vec!["echo", "--listen", "not-an-address"],
            "is not an IP:PORT address",
        ),
        (
            vec!["echo", "--threads", "0"],
            "--threads must be at least 1",
        ),
        (vec!["echo", "--idle-timeout", "5"], "no unit"),
    ] {
        let out = Command::new(assert_cmd::cargo::cargo_bin!("sylvan"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}

#[test]
fn port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(assert_cmd::cargo::cargo_bin!("sylvan"))
        .args(["echo", "--listen", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot listen on") && stderr.lines().count() == 1,
        "{stderr}"
    );
}

/// SIGINT sent the moment the "listening" line appears is honoured: the
/// handler is installed before the line is printed.
#[test]
fn sigint_right_after_the_listening_line_exits_cleanly() {
    use std::io::BufRead;
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("sylvan"))
        .args(["echo", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("listening on"), "{line}");
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
