//! Eventlet's `trampoline`: wait for readiness of a file descriptor that
//! sylvan did not create.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::panic::Location;
use std::time::Duration;

use mio::Interest;
use mio::unix::SourceFd;

use crate::runtime::{Dir, Registration};

/// Parks the current green thread until `fd` is readable (or its peer
/// closed, or it has an error).
///
/// For non-blocking descriptors sylvan did not create — a C library's
/// socket, a pipe, an eventfd. The descriptor is registered with the hub
/// for the duration of the wait only.
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use std::os::unix::net::UnixStream;
///
/// let (a, mut b) = UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// let waiter = sylvan::spawn(move || sylvan::net::wait_readable(&a));
/// sylvan::yield_now();
/// assert!(!waiter.is_finished());
/// b.write_all(b"!").unwrap();
/// waiter.join().unwrap().unwrap();
/// ```
///
/// # Errors
///
/// `AlreadyExists` if `fd` is a sylvan socket of this hub (use its own
/// methods); errors of `epoll_ctl`.
///
/// # Cancellation
///
/// Killed or past a scoped deadline while waiting: returns that error (as
/// `io::Error`); the descriptor is unregistered and untouched.
#[track_caller]
pub fn wait_readable(fd: &impl AsFd) -> io::Result<()> {
    wait(fd, Dir::Read, None, Location::caller())
}

/// Parks the current green thread until `fd` is writable.
///
/// # Examples
///
/// ```
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// sylvan::net::wait_writable(&a).unwrap(); // an empty buffer is writable
/// ```
///
/// # Errors
///
/// As [`wait_readable`].
///
/// # Cancellation
///
/// As [`wait_readable`].
#[track_caller]
pub fn wait_writable(fd: &impl AsFd) -> io::Result<()> {
    wait(fd, Dir::Write, None, Location::caller())
}

/// [`wait_readable`] with its own timeout (`ErrorKind::TimedOut`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// let err = sylvan::net::wait_readable_timeout(&a, Duration::from_millis(5)).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
/// ```
///
/// # Cancellation
///
/// As [`wait_readable`].
#[track_caller]
pub fn wait_readable_timeout(fd: &impl AsFd, timeout: Duration) -> io::Result<()> {
    wait(fd, Dir::Read, Some(timeout), Location::caller())
}

/// [`wait_writable`] with its own timeout (`ErrorKind::TimedOut`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// sylvan::net::wait_writable_timeout(&a, Duration::from_secs(1)).unwrap();
/// ```
///
/// # Cancellation
///
/// As [`wait_readable`].
#[track_caller]
pub fn wait_writable_timeout(fd: &impl AsFd, timeout: Duration) -> io::Result<()> {
    wait(fd, Dir::Write, Some(timeout), Location::caller())
}

fn wait(
    fd: &impl AsFd,
    dir: Dir,
    timeout: Option<Duration>,
    loc: &'static Location<'static>,
) -> io::Result<()> {
    let raw = fd.as_fd().as_raw_fd();
    let mut source = SourceFd(&raw);
    let interest = match dir {
        Dir::Read => Interest::READABLE,
        Dir::Write => Interest::WRITABLE,
    };
    let reg = Registration::with_interest(&mut source, interest).map_err(|e| {
        if e.raw_os_error() == Some(libc::EEXIST) {
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                "this descriptor is already registered with the hub (a sylvan socket?): use its own blocking methods",
            )
        } else {
            e
        }
    })?;
    let deadline = timeout.map(crate::runtime::after);
    let r = reg.wait(dir, deadline, loc);
    reg.deregister(&mut source);
    r
}
