//! Catching signals for `sylvan::signal`: a handler that only counts and
//! writes one byte to a self-pipe.
//!
//! Invariants: the handler touches only `PENDING` (atomics), `PIPE_W` (an
//! atomic holding the pipe's write end, set once before any handler is
//! installed and never closed) and `errno`, which it saves and restores. It
//! allocates nothing, takes no lock and calls only `write(2)`, which is
//! async-signal-safe. The write end is non-blocking: when the pipe is full
//! the byte is dropped, and the count in `PENDING` still records the
//! delivery, so nothing is lost but the extra wake-up.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, IntoRawFd};
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// One more than the highest signal number on Linux (`SIGRTMAX` is 64).
pub(crate) const NSIG: usize = 65;

static PENDING: [AtomicU32; NSIG] = [const { AtomicU32::new(0) }; NSIG];
static PIPE_W: AtomicI32 = AtomicI32::new(-1);

/// Whether `signo` may be caught: in range, not `SIGKILL`/`SIGSTOP`
/// (uncatchable), not a synchronous fault (`SIGSEGV`, `SIGBUS`, `SIGILL`,
/// `SIGFPE`: sylvan's overflow detection owns the first two, and returning
/// from any of them re-runs the faulting instruction), not one of glibc's
/// internal real-time signals (below `SIGRTMIN()`).
pub(crate) fn catchable(signo: i32) -> bool {
    let forbidden = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
    ];
    (1..NSIG as i32).contains(&signo)
        && !forbidden.contains(&signo)
        && (signo < 32 || signo >= libc::SIGRTMIN())
}

/// The disposition a signal had before sylvan caught it.
#[derive(Clone, Copy)]
pub(crate) struct Saved(libc::sigaction);

/// Creates the self-pipe (once per process; the caller serialises) and
/// returns its blocking read end. The write end is kept for the life of
/// the process.
pub(crate) fn open_pipe() -> io::Result<File> {
    let (r, w) = super::fd::pipe()?;
    super::fd::set_nonblocking(w.as_fd(), true)?;
    PIPE_W.store(w.into_raw_fd(), Ordering::Release);
    Ok(File::from(r))
}

/// Installs the counting handler for `signo`; returns what was there.
/// [`open_pipe`] must have succeeded before.
pub(crate) fn catch(signo: i32) -> io::Result<Saved> {
    debug_assert!(catchable(signo) && PIPE_W.load(Ordering::Acquire) >= 0);
    // SAFETY: sigaction is plain data; all-zero is a valid value.
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    new.sa_sigaction = on_signal as *const () as usize;
    // Not SA_ONSTACK: the alternate stacks (std's, ours) are sized for one
    // fault report, and handlers nesting on them overflowed it. The
    // handler's few bytes run on the interrupted stack instead, and every
    // signal is blocked while it runs, so it never nests.
    new.sa_flags = libc::SA_RESTART;
    // SAFETY: as above.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: `new` is a valid sigaction whose handler is an `extern "C"`
    // function taking the signal number (no SA_SIGINFO); sa_mask is
    // initialised by sigfillset; `old` is writable.
    let r = unsafe {
        libc::sigfillset(&mut new.sa_mask);
        libc::sigaction(signo, &new, &mut old)
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Saved(old))
}

/// Puts back the disposition [`catch`] replaced.
pub(crate) fn restore(signo: i32, saved: &Saved) {
    // SAFETY: `saved` came from the kernel for this signal, so it is a valid
    // action to reinstall.
    unsafe { libc::sigaction(signo, &saved.0, ptr::null_mut()) };
}

/// How many times `signo` was delivered since the last call.
pub(crate) fn take_pending(signo: usize) -> u32 {
    PENDING[signo].swap(0, Ordering::Acquire)
}

extern "C" fn on_signal(signo: libc::c_int) {
    // SAFETY: __errno_location returns this thread's errno slot.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: reading this thread's errno.
    let saved = unsafe { *errno };
    if let Ok(i) = usize::try_from(signo) {
        if i < NSIG {
            PENDING[i].fetch_add(1, Ordering::Release);
        }
    }
    let fd = PIPE_W.load(Ordering::Acquire);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is one valid
        // byte; the descriptor is never closed once published.
        unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
    }
    // SAFETY: restoring this thread's errno, so the interrupted code sees
    // the value it had.
    unsafe { *errno = saved };
}
