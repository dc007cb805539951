//! Helpers shared by the CLI's integration tests: run `sylvan` as a child
//! process, find the address it printed, talk to it on loopback.

#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// The `sylvan` binary under test.
pub fn sylvan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sylvan"))
}

/// A running `sylvan` child; killed when dropped.
pub struct Proc {
    child: Child,
    lines: Receiver<String>,
    /// Every stderr line read so far.
    pub seen: Vec<String>,
}

impl Proc {
    /// Starts `sylvan ARGS`, with stderr captured line by line.
    pub fn spawn(args: &[&str]) -> Proc {
        let mut child = sylvan()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sylvan");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (10 s at most) for a stderr line containing `needle`.
    pub fn wait_line(&mut self, needle: &str) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(_) => panic!("no stderr line with {needle:?}; got {:?}", self.seen),
            }
        }
    }

    /// The address printed right after `marker` on stderr.
    pub fn addr_after(&mut self, marker: &str) -> SocketAddr {
        let l = self.wait_line(marker);
        let rest = &l[l.find(marker).unwrap() + marker.len()..];
        let token: String = rest
            .trim_start_matches("http://")
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != ',' && *c != '/')
            .collect();
        token
            .parse()
            .unwrap_or_else(|_| panic!("no address in {l:?}"))
    }

    /// Sends `signal` (e.g. "TERM", "KILL") to the process.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{signal} failed");
    }

    /// Waits (20 s at most) for the process to exit; its exit code and the
    /// rest of its stderr.
    pub fn wait_exit(&mut self) -> (Option<i32>, Vec<String>) {
        // The stderr reader ends when the process closes stderr, i.e. when
        // it exits: wait for that (bounded), then reap it.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    panic!("process did not exit; stderr {:?}", self.seen)
                }
            }
        }
        let status = self.child.wait().unwrap();
        (status.code(), self.seen.clone())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sylvan echo` on a free loopback port; returns it and its address.
pub fn echo_server() -> (Proc, SocketAddr) {
    let mut p = Proc::spawn(&["echo", "--listen", "127.0.0.1:0"]);
    let addr = p.addr_after("listening on ");
    (p, addr)
}

/// A loopback address nothing listens on.
pub fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// One echo round trip on a new connection to `addr`.
pub fn echo_round_trip(addr: SocketAddr, msg: &[u8]) -> std::io::Result<()> {
    let mut c = TcpStream::connect(addr)?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    c.write_all(msg)?;
    let mut back = vec![0; msg.len()];
    c.read_exact(&mut back)?;
    assert_eq!(back, msg);
    Ok(())
}

/// `GET path` on `addr` with `Connection: close`; the status code and body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Polls `cond` (typically a request to the process under test, which
/// paces the loop) until it holds, for up to 10 s.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

/// A fresh path in the temp directory for `name`.
pub fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("sylvan-test-{}-{name}", std::process::id()))
}
