//! Green I/O on any file descriptor: [`GreenFd`], and a green [`pipe`].
//!
//! Sockets have their own green types in [`net`](crate::net). Everything
//! else that the kernel can poll — pipes, ttys, eventfds, character
//! devices, a C library's descriptor — goes through [`GreenFd`]: the
//! descriptor is made non-blocking and registered with the hub, and each
//! `read` or `write` that would block parks only the calling green thread.
//!
//! Regular files and directories can't be polled (their reads never
//! "would block", they just take time): read them with
//! [`tpool::execute`](crate::tpool::execute).

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::panic::Location;
use std::time::Duration;

use mio::unix::SourceFd;

use crate::runtime::{Dir, Registration};
use crate::sys::fd as sysfd;

/// A file descriptor whose blocking reads and writes park only the calling
/// green thread; async-io's `Async<T>` for green threads.
///
/// `GreenFd::new` sets `O_NONBLOCK` on the descriptor and registers it with
/// this OS thread's hub. `GreenFd<T>` and `&GreenFd<T>` are `Read` and
/// `Write` for any `T: AsFd`: they call `read(2)`/`readv(2)` and
/// `write(2)`/`writev(2)` on the descriptor and, whenever those return
/// `WouldBlock`, park on readiness and try again (the one retry primitive
/// of every green socket). `T` only owns the descriptor: an `OwnedFd`
/// from `eventfd` or a C library works as is, and so do `File`, pipes,
/// ttys and character devices. Its own `Read` is bypassed, which matters
/// only for a `T` that buffers in user space (`std::io::Stdin`: bytes
/// already in its buffer are not seen). For other calls (`recvmsg`, an
/// ioctl, a C library's non-blocking API) use
/// [`read_with`](Self::read_with) and [`write_with`](Self::write_with).
///
/// Like the green sockets, a `GreenFd` belongs to the hub of the OS thread
/// that created it (it is not `Send`); used on another thread, its calls
/// fail.
///
/// # `O_NONBLOCK` is shared
///
/// The flag lives on the open file description, so every duplicate of the
/// descriptor — in this process or another (a terminal's stdin is shared
/// with the shell) — sees it. `GreenFd` puts back the previous mode when it
/// is dropped or [`into_inner`](Self::into_inner) is called; two
/// `GreenFd`s over duplicates of one description interfere (the first
/// dropped makes the other blocking), so wrap a description once.
///
/// # Examples
///
/// A pipe between two green threads:
///
/// ```
/// use std::io::{Read, Write};
///
/// let (mut r, mut w) = sylvan::io::pipe().unwrap();
/// let reader = sylvan::spawn(move || {
///     let mut s = String::new();
///     r.read_to_string(&mut s).map(|_| s)
/// });
/// w.write_all(b"through the pipe").unwrap();
/// drop(w); // end of stream for the reader
/// assert_eq!(reader.join().unwrap().unwrap(), "through the pipe");
/// ```
///
/// A descriptor std made, here one end of a `std` Unix socket pair (an
/// eventfd, a tty or a descriptor a C library returned work the same
/// way, once in an `OwnedFd`):
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
///
/// let (a, b) = UnixStream::pair().unwrap();
/// let a = std::rc::Rc::new(sylvan::io::GreenFd::new(a).unwrap());
/// let a2 = a.clone();
/// let waiter = sylvan::spawn(move || {
///     let mut v = [0u8; 8];
///     (&*a2).read_exact(&mut v).map(|_| u64::from_ne_bytes(v))
/// });
/// sylvan::yield_now(); // the waiter parks: nothing to read yet
/// (&b).write_all(&5u64.to_ne_bytes()).unwrap();
/// assert_eq!(waiter.join().unwrap().unwrap(), 5);
/// ```
///
/// # Cancellation
///
/// A read or write that is parked when its green thread is killed or its
/// deadline passes returns that error (`ErrorKind::Other` for a kill,
/// `TimedOut` for a deadline) having transferred nothing; the descriptor
/// stays registered and usable.
pub struct GreenFd<T: AsFd> {
    inner: Option<T>,
    reg: Registration,
    /// `O_NONBLOCK` was already set when we took the descriptor.
    was_nonblocking: bool,
    read_timeout: std::cell::Cell<Option<Duration>>,
    write_timeout: std::cell::Cell<Option<Duration>>,
}

impl<T: AsFd> fmt::Debug for GreenFd<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GreenFd")
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

impl<T: AsFd> GreenFd<T> {
    /// Makes `inner`'s descriptor non-blocking and registers it with this
    /// OS thread's hub.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let a = sylvan::io::GreenFd::new(a).unwrap();
    /// assert!(a.get_ref().local_addr().is_ok());
    /// ```
    ///
    /// # Errors
    ///
    /// `PermissionDenied` (`EPERM`) for a regular file or directory, which
    /// epoll can't watch (use [`tpool::execute`](crate::tpool::execute));
    /// `AlreadyExists` if the same descriptor number is already registered
    /// with this hub (a sylvan socket, or another `GreenFd` over it); the
    /// errors of `fcntl`.
    pub fn new(inner: T) -> io::Result<GreenFd<T>> {
        let raw = inner.as_fd().as_raw_fd();
        let was_nonblocking = sysfd::set_nonblocking(inner.as_fd(), true)?;
        let reg = match Registration::new(&mut SourceFd(&raw)) {
            Ok(r) => r,
            Err(e) => {
                if !was_nonblocking {
                    let _ = sysfd::set_nonblocking(inner.as_fd(), false);
                }
                return Err(explain_register_error(e));
            }
        };
        Ok(GreenFd {
            inner: Some(inner),
            reg,
            was_nonblocking,
            read_timeout: Default::default(),
            write_timeout: Default::default(),
        })
    }

    /// The wrapped value.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    ///
    /// let (r, _w) = sylvan::io::pipe().unwrap();
    /// assert!(r.get_ref().as_raw_fd() >= 0);
    /// ```
    pub fn get_ref(&self) -> &T {
        self.inner.as_ref().expect("present until dropped")
    }

    /// The wrapped value, mutably. Don't replace its descriptor: the
    /// registration is for the one it had.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut r, _w) = sylvan::io::pipe().unwrap();
    /// let _fd: &mut std::os::fd::OwnedFd = r.get_mut();
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.as_mut().expect("present until dropped")
    }

    /// Unregisters from the hub, puts back the descriptor's previous
    /// blocking mode and returns the wrapped value.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    ///
    /// let (r, mut w) = sylvan::io::pipe().unwrap();
    /// w.write_all(b"x").unwrap();
    /// let fd: std::os::fd::OwnedFd = r.into_inner(); // blocking again
    /// let mut b = [0; 1];
    /// std::fs::File::from(fd).read_exact(&mut b).unwrap();
    /// ```
    pub fn into_inner(mut self) -> T {
        let inner = self.inner.take().expect("present until dropped");
        self.release(&inner);
        inner
    }

    fn release(&self, inner: &T) {
        let raw = inner.as_fd().as_raw_fd();
        self.reg.deregister(&mut SourceFd(&raw));
        if !self.was_nonblocking {
            // Fails only for a descriptor closed behind our back.
            let _ = sysfd::set_nonblocking(inner.as_fd(), false);
        }
    }

    /// Runs `op` on the wrapped value until it returns something other
    /// than `WouldBlock`, parking on read readiness in between: the retry
    /// primitive, for operations `Read` doesn't cover (`recvmsg`, an
    /// ioctl, a C library's non-blocking call).
    ///
    /// # Examples
    ///
    /// ```
    /// // A datagram socket pair: whole messages with recv(2) and send(2).
    /// let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
    /// let a = sylvan::io::GreenFd::new(a).unwrap();
    /// let b = sylvan::io::GreenFd::new(b).unwrap();
    /// let reader = sylvan::spawn(move || {
    ///     let mut buf = [0; 8];
    ///     a.read_with(|s| s.recv(&mut buf)).map(|n| buf[..n].to_vec())
    /// });
    /// b.write_with(|s| s.send(b"ab")).unwrap();
    /// assert_eq!(reader.join().unwrap().unwrap(), b"ab");
    /// ```
    ///
    /// # Errors
    ///
    /// `op`'s error; `TimedOut` past the [read timeout](Self::set_read_timeout).
    ///
    /// # Cancellation
    ///
    /// As the type's: killed or past a deadline while parked, returns that
    /// error without calling `op` again.
    #[track_caller]
    pub fn read_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        let inner = self.get_ref();
        self.reg.io(
            Dir::Read,
            self.read_timeout.get(),
            Location::caller(),
            || op(inner),
        )
    }

    /// [`read_with`](Self::read_with) with mutable access.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    ///
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let mut a = sylvan::io::GreenFd::new(a).unwrap();
    /// b.write_all(b"z").unwrap();
    /// let mut buf = [0; 1];
    /// a.read_with_mut(|s| s.read(&mut buf)).unwrap();
    /// assert_eq!(&buf, b"z");
    /// ```
    ///
    /// # Cancellation
    ///
    /// As [`read_with`](Self::read_with).
    #[track_caller]
    pub fn read_with_mut<R>(
        &mut self,
        mut op: impl FnMut(&mut T) -> io::Result<R>,
    ) -> io::Result<R> {
        let GreenFd {
            inner,
            reg,
            read_timeout,
            ..
        } = self;
        let inner = inner.as_mut().expect("present until dropped");
        reg.io(Dir::Read, read_timeout.get(), Location::caller(), || {
            op(inner)
        })
    }

    /// Runs `op` until it returns something other than `WouldBlock`,
    /// parking on write readiness in between.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    ///
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let a = sylvan::io::GreenFd::new(a).unwrap();
    /// assert_eq!(a.write_with(|mut s| s.write(b"hey")).unwrap(), 3);
    /// ```
    ///
    /// # Errors
    ///
    /// `op`'s error; `TimedOut` past the [write timeout](Self::set_write_timeout).
    ///
    /// # Cancellation
    ///
    /// As [`read_with`](Self::read_with).
    #[track_caller]
    pub fn write_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        let inner = self.get_ref();
        self.reg.io(
            Dir::Write,
            self.write_timeout.get(),
            Location::caller(),
            || op(inner),
        )
    }

    /// [`write_with`](Self::write_with) with mutable access.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    ///
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let mut a = sylvan::io::GreenFd::new(a).unwrap();
    /// a.write_with_mut(|s| s.write(b"hey")).unwrap();
    /// ```
    ///
    /// # Cancellation
    ///
    /// As [`read_with`](Self::read_with).
    #[track_caller]
    pub fn write_with_mut<R>(
        &mut self,
        mut op: impl FnMut(&mut T) -> io::Result<R>,
    ) -> io::Result<R> {
        let GreenFd {
            inner,
            reg,
            write_timeout,
            ..
        } = self;
        let inner = inner.as_mut().expect("present until dropped");
        reg.io(Dir::Write, write_timeout.get(), Location::caller(), || {
            op(inner)
        })
    }

    /// Sets the timeout of each read call (`None`, the default: none);
    /// past it a read fails with `ErrorKind::TimedOut`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    ///
    /// let (mut r, _w) = sylvan::io::pipe().unwrap();
    /// r.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    /// let err = r.read(&mut [0; 1]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as std.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.read_timeout.set(check_timeout(timeout)?);
        Ok(())
    }

    /// Sets the timeout of each write call (`None`, the default: none).
    ///
    /// # Examples
    ///
    /// ```
    /// let (_r, w) = sylvan::io::pipe().unwrap();
    /// w.set_write_timeout(Some(std::time::Duration::from_secs(1))).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as std.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.write_timeout.set(check_timeout(timeout)?);
        Ok(())
    }

    /// The read timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// let (r, _w) = sylvan::io::pipe().unwrap();
    /// assert_eq!(r.read_timeout(), None);
    /// ```
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout.get()
    }

    /// The write timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_r, w) = sylvan::io::pipe().unwrap();
    /// assert_eq!(w.write_timeout(), None);
    /// ```
    pub fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout.get()
    }
}

impl<T: AsFd> Drop for GreenFd<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            self.release(&inner);
        }
    }
}

impl<T: AsFd> AsFd for GreenFd<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.get_ref().as_fd()
    }
}

impl<T: AsFd> AsRawFd for GreenFd<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.get_ref().as_fd().as_raw_fd()
    }
}

impl<T: AsFd> Read for &GreenFd<T> {
    #[track_caller]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with(|t| sysfd::read(t.as_fd(), buf))
    }

    #[track_caller]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read_with(|t| sysfd::read_vectored(t.as_fd(), bufs))
    }
}

impl<T: AsFd> Write for &GreenFd<T> {
    #[track_caller]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_with(|t| sysfd::write(t.as_fd(), buf))
    }

    #[track_caller]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_with(|t| sysfd::write_vectored(t.as_fd(), bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<T: AsFd> Read for GreenFd<T> {
    #[track_caller]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    #[track_caller]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl<T: AsFd> Write for GreenFd<T> {
    #[track_caller]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    #[track_caller]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A green pipe: `(read end, write end)`, both close-on-exec and
/// registered with this OS thread's hub; Eventlet's `GreenPipe`.
///
/// Hand an end to a child process with `Stdio::from(end.into_inner())`
/// (blocking again, as children expect).
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
///
/// let (r, w) = sylvan::io::pipe().unwrap();
/// let writer = sylvan::spawn(move || (&w).write_all(&[7; 200_000]));
/// let mut got = Vec::new();
/// (&r).read_to_end(&mut got).unwrap(); // EOF once the writer is dropped
/// writer.join().unwrap().unwrap();
/// assert_eq!(got.len(), 200_000);
/// ```
///
/// # Errors
///
/// The errors of `pipe2` (out of descriptors) and of registering.
pub fn pipe() -> io::Result<(GreenFd<OwnedFd>, GreenFd<OwnedFd>)> {
    let (r, w) = sysfd::pipe()?;
    Ok((GreenFd::new(r)?, GreenFd::new(w)?))
}

fn explain_register_error(e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(libc::EPERM) => io::Error::new(
            io::ErrorKind::PermissionDenied,
            "this descriptor can't be polled (a regular file or directory?): \
             read it with sylvan::tpool::execute instead",
        ),
        Some(libc::EEXIST) => io::Error::new(
            io::ErrorKind::AlreadyExists,
            "this descriptor is already registered with the hub \
             (a sylvan socket, or another GreenFd over it)",
        ),
        _ => e,
    }
}

/// std's rule: a zero timeout is an error (`None` means no timeout).
fn check_timeout(t: Option<Duration>) -> io::Result<Option<Duration>> {
    if t == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(t)
}
