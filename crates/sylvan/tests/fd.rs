//! `sylvan::io::GreenFd` and `sylvan::io::pipe`: reads and writes on
//! descriptors that are not sockets park only the calling green thread.

use std::cell::Cell;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use sylvan::io::GreenFd;

fn nonblocking(fd: impl AsFd) -> bool {
    // Read the flag through /proc so the test doesn't need unsafe code.
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd.as_fd());
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{raw}")).unwrap();
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .map(|f| u32::from_str_radix(f.trim(), 8).unwrap())
        .unwrap();
    flags & libc::O_NONBLOCK as u32 != 0
}

#[test]
fn a_read_parks_only_its_green_thread() {
    let (r, w) = sylvan::io::pipe().unwrap();
    let ticks = Rc::new(Cell::new(0u32));
    let t = ticks.clone();
    let reader = sylvan::spawn(move || {
        let mut b = [0u8; 4];
        (&r).read_exact(&mut b).map(|_| b)
    });
    // Another green thread runs while the reader is parked on the empty pipe.
    let ticker = sylvan::spawn(move || {
        for _ in 0..100 {
            t.set(t.get() + 1);
            sylvan::yield_now();
        }
    });
    ticker.join().unwrap();
    assert_eq!(ticks.get(), 100);
    assert!(!reader.is_finished());
    (&w).write_all(b"ping").unwrap();
    assert_eq!(&reader.join().unwrap().unwrap(), b"ping");
}

#[test]
fn a_full_pipe_parks_the_writer_until_the_reader_drains_it() {
    let (r, w) = sylvan::io::pipe().unwrap();
    const N: usize = 4 << 20; // far more than a pipe buffer (64 KiB)
    let writer = sylvan::spawn(move || {
        let data: Vec<u8> = (0..N).map(|i| i as u8).collect();
        (&w).write_all(&data)
    });
    let mut got = Vec::new();
    (&r).read_to_end(&mut got).unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(got.len(), N);
    assert!(got.iter().enumerate().all(|(i, &b)| b == i as u8));
}

#[test]
fn kill_and_timeout_cancel_a_parked_read_and_leave_the_fd_usable() {
    let (r, w) = sylvan::io::pipe().unwrap();
    let r = Rc::new(r);
    let r2 = r.clone();
    let g = sylvan::spawn(move || (&*r2).read(&mut [0; 8]));
    sylvan::yield_now();
    g.kill();
    let err = g.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other);

    let t = sylvan::timeout(Duration::from_millis(10), || (&*r).read(&mut [0; 8]));
    assert!(t.is_err(), "the scope's deadline fired");

    r.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    let err = (&*r).read(&mut [0; 8]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    r.set_read_timeout(None).unwrap();

    // Still registered and usable.
    (&w).write_all(b"ok").unwrap();
    let mut b = [0; 2];
    (&*r).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ok");
}

#[test]
fn the_blocking_mode_is_put_back() {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    assert!(!nonblocking(&a));
    let g = GreenFd::new(a).unwrap();
    assert!(nonblocking(&g));
    let a = g.into_inner();
    assert!(!nonblocking(&a));

    // Already non-blocking: stays so.
    b.set_nonblocking(true).unwrap();
    let b2 = b.try_clone().unwrap();
    drop(GreenFd::new(b).unwrap());
    assert!(nonblocking(&b2));
}

#[test]
fn an_eventfd_through_file() {
    // SAFETY: eventfd returns a fresh descriptor or -1 (checked).
    let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    assert!(raw >= 0);
    // SAFETY: `raw` is valid and owned by nobody else.
    let efd = Rc::new(GreenFd::new(File::from(unsafe { OwnedFd::from_raw_fd(raw) })).unwrap());
    let e = efd.clone();
    let waiter = sylvan::spawn(move || {
        let mut v = [0u8; 8];
        (&*e).read_exact(&mut v).map(|_| u64::from_ne_bytes(v))
    });
    sylvan::yield_now();
    assert!(!waiter.is_finished());
    (&*efd).write_all(&3u64.to_ne_bytes()).unwrap();
    assert_eq!(waiter.join().unwrap().unwrap(), 3);
}

#[test]
fn regular_files_and_double_registration_are_refused_clearly() {
    let f = File::open("/proc/self/exe").unwrap();
    let err = GreenFd::new(f).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(err.to_string().contains("tpool"), "{err}");

    let (r, _w) = sylvan::io::pipe().unwrap();
    let err = GreenFd::new(r.as_fd()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    // The refused second wrapper left the first one non-blocking.
    assert!(nonblocking(&r));
}

#[test]
fn a_descriptor_moves_to_another_thread_through_into_inner() {
    let (r, _w) = sylvan::io::pipe().unwrap();
    // GreenFd is !Send; move its File out and back in on another thread
    // to prove that a fresh wrapper works there.
    let f = r.into_inner();
    std::thread::spawn(move || {
        let g = GreenFd::new(f).unwrap();
        let err = sylvan::timeout(Duration::from_millis(5), || (&g).read(&mut [0; 1]));
        assert!(err.is_err());
    })
    .join()
    .unwrap();
}

#[test]
fn a_bare_owned_fd_reads_and_writes() {
    // SAFETY: eventfd returns a fresh descriptor or -1 (checked).
    let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    assert!(raw >= 0);
    // SAFETY: `raw` is valid and owned by nobody else.
    let mut efd = GreenFd::new(unsafe { OwnedFd::from_raw_fd(raw) }).unwrap();
    efd.write_all(&7u64.to_ne_bytes()).unwrap();
    let mut v = [0u8; 8];
    efd.read_exact(&mut v).unwrap();
    assert_eq!(u64::from_ne_bytes(v), 7);
}

/// Code generic over "`&S` reads and writes" still infers `S` (a blanket
/// `&GreenFd<T>` impl bounded on `&T: Read` made this overflow).
#[test]
fn generic_ref_read_bounds_still_infer() {
    struct Conn<S>(S);
    impl<S> Conn<S>
    where
        for<'a> &'a S: Read + Write,
    {
        fn new(s: S) -> Conn<S> {
            Conn(s)
        }
    }
    let (a, _b) = sylvan::net::UnixStream::pair().unwrap();
    let c = Conn::new(a);
    (&c.0).write_all(b"x").unwrap();
}
