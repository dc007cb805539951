//! `sylvan::process`: children whose waits and pipes park only the calling
//! green thread.

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::rc::Rc;
use std::time::{Duration, Instant};

use sylvan::process::Command;

#[test]
fn exit_codes() {
    assert!(Command::new("true").status().unwrap().success());
    assert_eq!(Command::new("false").status().unwrap().code(), Some(1));
    let mut c = Command::new("sh").args(["-c", "exit 42"]).spawn().unwrap();
    assert_eq!(c.wait().unwrap().code(), Some(42));
    // Reaped once; the status is remembered.
    assert_eq!(c.try_wait().unwrap().unwrap().code(), Some(42));
    assert_eq!(c.wait().unwrap().code(), Some(42));
    // Killing a reaped child is not an error (std's rule).
    c.kill().unwrap();
}

#[test]
fn a_missing_program_is_named_in_the_error() {
    let err = Command::new("sylvan-no-such-program").spawn().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("sylvan-no-such-program"), "{err}");
}

#[test]
fn output_reads_large_stdout_and_stderr_at_once() {
    // Both streams at the same time, each far beyond a pipe's 64 KiB: reading
    // one to the end before the other would deadlock.
    const N: usize = 3_000_000;
    let script = format!("head -c {N} /dev/zero >&2 & head -c {N} /dev/zero | tr '\\0' x; wait");
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(out.stdout.len(), N);
    assert!(out.stdout.iter().all(|&b| b == b'x'));
    assert_eq!(out.stderr.len(), N);

    // Stderr first, then stdout, sequentially in the child.
    let script = format!("head -c {N} /dev/zero >&2; echo done");
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.len()),
        (&b"done\n"[..], N)
    );
}

#[test]
fn output_restores_spawn_defaults_and_respects_explicit_stdio() {
    let mut c = Command::new("sh");
    c.args(["-c", "echo out; echo err >&2"])
        .stderr(Stdio::null());
    let out = c.output().unwrap();
    assert_eq!(out.stdout, b"out\n");
    assert!(out.stderr.is_empty());
    // `output` piped stdout only for itself: a spawn has no pipe.
    let mut child = c.spawn().unwrap();
    assert!(child.stdout.is_none() && child.stdin.is_none());
    child.wait().unwrap();
}

#[test]
fn stdin_is_piped_while_stdout_is_read() {
    const N: usize = 2_000_000;
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = sylvan::spawn(move || {
        let data: Vec<u8> = (0..N).map(|i| (i % 251) as u8).collect();
        stdin.write_all(&data)
        // dropped here: cat sees end-of-file
    });
    let mut got = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut got).unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(got.len(), N);
    assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    assert!(child.wait().unwrap().success());
}

#[test]
fn wait_with_output_closes_stdin() {
    let mut child = Command::new("sh")
        .args(["-c", "cat; echo end >&2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.as_mut().unwrap().write_all(b"in").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice()),
        (&b"in"[..], &b"end\n"[..])
    );
}

#[test]
fn a_timeout_while_waiting_leaves_the_child_running_then_kill_reaps_it() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let r = sylvan::timeout(Duration::from_millis(20), || child.wait());
    assert!(r.is_err(), "the timeout fired: {r:?}");
    // Still running, and the handle still works.
    assert!(child.try_wait().unwrap().is_none());
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}

#[test]
fn a_killed_waiter_leaves_the_child_running() {
    let child = Command::new("sleep").arg("30").spawn().unwrap();
    let g = sylvan::spawn(move || {
        let mut child = child;
        let r = child.wait();
        (child, r)
    });
    sylvan::yield_now(); // parked in wait
    assert!(!g.is_finished());
    g.kill();
    let (mut child, r) = g.join().unwrap();
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Other);
    assert!(child.try_wait().unwrap().is_none());
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
}

#[test]
fn a_cancelled_status_kills_and_reaps_its_child() {
    // The child tells us its pid through a pipe, then sleeps.
    let (r, w) = sylvan::io::pipe().unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo $$; exec sleep 30"])
        .stdout(Stdio::from(w.into_inner()));
    let res = sylvan::timeout(Duration::from_millis(50), || cmd.status());
    assert!(res.is_err(), "{res:?}");
    let mut line = String::new();
    let mut b = [0u8; 1];
    while (&r).read(&mut b).unwrap() == 1 && b[0] != b'\n' {
        line.push(b[0] as char);
    }
    let pid: u32 = line.trim().parse().unwrap();
    // Killed and reaped by the hub: /proc/<pid> goes away (a zombie would
    // stay; an unkilled child would sleep 30 s).
    let start = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "child {pid} still there"
        );
        sylvan::sleep(Duration::from_millis(1)).unwrap();
    }
}

#[test]
fn many_children_from_many_green_threads_park_only_their_waiters() {
    const N: usize = 32;
    let released = Rc::new(Cell::new(0usize));
    let mut writers = Vec::new();
    let mut waiters = Vec::new();
    for i in 0..N {
        // Each child blocks reading a line from its own pipe and exits with
        // the number it reads.
        let (r, w) = sylvan::io::pipe().unwrap();
        writers.push(w);
        let stdin = Stdio::from(r.into_inner());
        waiters.push(sylvan::spawn(move || {
            let mut child = Command::new("sh")
                .args(["-c", "read x; exit $x"])
                .stdin(stdin)
                .spawn()?;
            child.wait().map(|s| (i, s.code()))
        }));
    }
    // Every waiter has spawned its child and parked in wait(); the children
    // are all blocked on their pipes, so only this green thread can free
    // them, and it can only run because the waits park.
    sylvan::yield_now();
    let rel = released.clone();
    let releaser = sylvan::spawn(move || -> std::io::Result<()> {
        for (i, w) in writers.into_iter().enumerate() {
            (&w).write_all(format!("{}\n", i % 100).as_bytes())?;
            rel.set(rel.get() + 1);
            sylvan::yield_now();
        }
        Ok(())
    });
    for (i, g) in waiters.into_iter().enumerate() {
        let (j, code) = g.join().unwrap().unwrap();
        assert_eq!((j, code), (i, Some((i % 100) as i32)));
    }
    releaser.join().unwrap().unwrap();
    assert_eq!(released.get(), N);
}

#[test]
fn children_on_several_hubs_at_once() {
    let results =
        sylvan::Runtime::builder()
            .threads(3)
            .build()
            .unwrap()
            .run(|| -> std::io::Result<usize> {
                let gs: Vec<_> = (0..8)
                    .map(|i| {
                        sylvan::spawn(move || {
                            Command::new("sh")
                                .args(["-c", &format!("echo {i}")])
                                .output()
                        })
                    })
                    .collect();
                let mut n = 0;
                for (i, g) in gs.into_iter().enumerate() {
                    let out = g.join().unwrap()?;
                    assert_eq!(out.stdout, format!("{i}\n").as_bytes());
                    n += 1;
                }
                Ok(n)
            });
    for r in results {
        assert_eq!(r.unwrap(), 8);
    }
}

#[test]
fn a_cancelled_output_kills_and_reaps_its_child() {
    let (r, w) = sylvan::io::pipe().unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo $$ >&2; echo some output; exec sleep 30"])
        .stderr(Stdio::from(w.into_inner()));
    let res = sylvan::timeout(Duration::from_millis(50), || cmd.output());
    assert!(res.is_err(), "{res:?}");
    let mut line = String::new();
    let mut b = [0u8; 1];
    while (&r).read(&mut b).unwrap() == 1 && b[0] != b'\n' {
        line.push(b[0] as char);
    }
    let pid: u32 = line.trim().parse().unwrap();
    let start = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "child {pid} still there"
        );
        sylvan::sleep(Duration::from_millis(1)).unwrap();
    }
}

#[test]
fn command_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Command>();
}
