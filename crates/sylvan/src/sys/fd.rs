//! File-descriptor flags, pipes and process descriptors.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Sets or clears `O_NONBLOCK` on `fd`'s open file description; returns
/// whether it was set before.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<bool> {
    let raw = fd.as_raw_fd();
    // SAFETY: F_GETFL on a descriptor the borrow keeps open; no memory is
    // passed.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let was = flags & libc::O_NONBLOCK != 0;
    if was != on {
        let new = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        // SAFETY: F_SETFL with an int argument on an open descriptor.
        if unsafe { libc::fcntl(raw, libc::F_SETFL, new) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(was)
}

/// A blocking pipe, both ends close-on-exec; `(read end, write end)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds: [RawFd; 2] = [-1, -1];
    let flags = libc::O_CLOEXEC;
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both are fresh descriptors owned by nobody
    // else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `pidfd_open(2)` (Linux ≥ 5.3): a descriptor for process `pid` that turns
/// readable when it exits. `ENOSYS` on older kernels.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: pidfd_open takes a pid and a flags word and returns a new
    // descriptor or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::other("pidfd out of range"))?;
    // SAFETY: the kernel just returned this descriptor; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

// Reads and writes go to the kernel as raw system calls. glibc's `read`,
// `recv` and the rest are thread-cancellation points: in a process with
// more than one thread each call turns asynchronous cancellation on and
// off around the system call, about 35 of the ~65 user-space instructions
// a `recv` costs (callgrind, glibc 2.36). std has no way to cancel a
// thread and sylvan never does, so it skips that part, as Go's runtime
// does by making its own system calls. The kernel sees the same calls
// (`recv` is `recvfrom` on Linux, `send` is `sendto`). The socket calls
// need their own system-call numbers, which 32-bit x86 kernels gained in
// 4.3; before, they went through `socketcall` only (`ENOSYS` here).

/// The result of a raw system call that returns a count, or -1 with
/// `errno` set (as `syscall(2)` reports failure).
fn count(n: libc::c_long) -> io::Result<usize> {
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// How many of `n` slices one vectored call passes: the kernel refuses
/// more than `UIO_MAXIOV` (1024), `readv`/`writev` with `EINVAL` and
/// `sendmsg` with `EMSGSIZE`, so the rest wait for the next call, as in
/// std.
fn iov_count(n: usize) -> usize {
    n.min(libc::UIO_MAXIOV as usize)
}

/// `read(2)` on a descriptor.
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let len = buf.len().min(isize::MAX as usize);
    // SAFETY: `buf` is valid for writes of `len` bytes; the borrow keeps
    // the descriptor open for the call. Every argument is widened to the
    // register width the kernel reads.
    count(unsafe {
        libc::syscall(
            libc::SYS_read,
            libc::c_long::from(fd.as_raw_fd()),
            buf.as_mut_ptr(),
            len,
        )
    })
}

/// `readv(2)` on a descriptor.
pub(crate) fn read_vectored(fd: BorrowedFd<'_>, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    let cnt = iov_count(bufs.len());
    // SAFETY: `IoSliceMut` is ABI-compatible with `iovec` (std guarantees
    // it on Unix) and each points to a valid writable buffer; the borrow
    // keeps the descriptor open.
    count(unsafe {
        libc::syscall(
            libc::SYS_readv,
            libc::c_long::from(fd.as_raw_fd()),
            bufs.as_mut_ptr(),
            cnt,
        )
    })
}

/// `recv(2)` on a socket, no flags.
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let len = buf.len().min(isize::MAX as usize);
    // SAFETY: `buf` is valid for writes of `len` bytes; no address is
    // asked for (both pointers null); the borrow keeps the descriptor open.
    count(unsafe {
        libc::syscall(
            libc::SYS_recvfrom,
            libc::c_long::from(fd.as_raw_fd()),
            buf.as_mut_ptr(),
            len,
            0 as libc::c_long,
            std::ptr::null_mut::<libc::sockaddr>(),
            std::ptr::null_mut::<libc::socklen_t>(),
        )
    })
}

/// `write(2)` on a descriptor.
pub(crate) fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    let len = buf.len().min(isize::MAX as usize);
    // SAFETY: `buf` is valid for reads of `len` bytes; the borrow keeps the
    // descriptor open for the call.
    count(unsafe {
        libc::syscall(
            libc::SYS_write,
            libc::c_long::from(fd.as_raw_fd()),
            buf.as_ptr(),
            len,
        )
    })
}

/// `writev(2)` on a descriptor.
pub(crate) fn write_vectored(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let cnt = iov_count(bufs.len());
    // SAFETY: `IoSlice` is ABI-compatible with `iovec` (std guarantees it
    // on Unix) and each points to a valid readable buffer; the borrow keeps
    // the descriptor open.
    count(unsafe {
        libc::syscall(
            libc::SYS_writev,
            libc::c_long::from(fd.as_raw_fd()),
            bufs.as_ptr(),
            cnt,
        )
    })
}

/// `send(2)` on a socket with `MSG_NOSIGNAL`: a write to a connection the
/// peer has closed fails with `EPIPE` instead of raising `SIGPIPE`, as
/// std's `TcpStream::write` does.
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    let len = buf.len().min(isize::MAX as usize);
    // SAFETY: `buf` is valid for reads of `len` bytes; no address is given
    // (null, length 0); the borrow keeps the descriptor open.
    count(unsafe {
        libc::syscall(
            libc::SYS_sendto,
            libc::c_long::from(fd.as_raw_fd()),
            buf.as_ptr(),
            len,
            libc::c_long::from(libc::MSG_NOSIGNAL),
            std::ptr::null::<libc::sockaddr>(),
            0 as libc::c_long,
        )
    })
}

/// `sendmsg(2)` of `bufs` on a socket with `MSG_NOSIGNAL` (see [`send`]):
/// a gathered write that cannot raise `SIGPIPE`.
pub(crate) fn send_vectored(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: an all-zero `msghdr` is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = bufs.as_ptr().cast_mut().cast();
    msg.msg_iovlen = iov_count(bufs.len()) as _;
    // SAFETY: `msg` points to `bufs`, which `IoSlice`'s `iovec` layout makes
    // a valid iovec array of readable buffers; the kernel only reads
    // through it; the borrow keeps the descriptor open.
    count(unsafe {
        libc::syscall(
            libc::SYS_sendmsg,
            libc::c_long::from(fd.as_raw_fd()),
            &raw const msg,
            libc::c_long::from(libc::MSG_NOSIGNAL),
        )
    })
}
