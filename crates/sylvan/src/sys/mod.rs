//! Every line of sylvan that talks to the operating system through `libc`.
//!
//! # Contract
//!
//! The rest of the crate sees safe functions from here, except where
//! soundness rests on the caller: ranges of a mapping that must hold
//! nothing live ([`mem::Mapping::discard`] and the guard installers) and
//! the record the fault handler reads ([`signal::set_current`]). Those are
//! `unsafe fn` with a `# Safety` section, called only from `runtime/`.
//! What each part must provide:
//!
//! - [`mem`]: page size; reserving a large `MAP_NORESERVE` region
//!   ([`mem::Mapping`]) that is unmapped on drop; installing a guard page
//!   inside it (`MADV_GUARD_INSTALL`, Linux ≥ 6.13) or, on older kernels,
//!   protecting a page with `mprotect(PROT_NONE)`; giving resident pages back
//!   (`MADV_DONTNEED`, which keeps guard markers in place).
//! - [`signal`]: a process-wide `SIGSEGV`/`SIGBUS` handler, installed once, that
//!   recognises a fault inside the running green thread's guard page, writes
//!   one line with `write(2)` and aborts; every other fault is passed to the
//!   handler that was installed before. It also makes sure each hub thread has
//!   an alternate signal stack, since an overflowed stack can't run a handler.
//! - [`catch`]: catching signals for `sylvan::signal`: a handler that only
//!   counts each delivery and writes one byte to a self-pipe; installing it
//!   and putting back the previous disposition.
//! - [`proc`]: small facts about the running process (resident set size).
//! - [`time`]: the monotonic clock in nanoseconds, for the hub's clock,
//!   and the coarse wall clock's whole seconds, for the HTTP `Date` header.
//! - [`fd`]: `O_NONBLOCK` on any descriptor, close-on-exec pipes,
//!   `pidfd_open` (Linux ≥ 5.3) for waiting on a child through the hub,
//!   and the reads and writes of green descriptors and stream sockets, made
//!   as raw system calls (socket writes with `MSG_NOSIGNAL`).
//!
//! Only Linux is supported for now; other targets stop at compile time here
//! rather than failing at run time somewhere else.

#[cfg(not(target_os = "linux"))]
compile_error!(
    "sylvan currently supports Linux only (it needs MADV_GUARD_INSTALL or mmap guard pages, epoll and sigaltstack)"
);

pub(crate) mod catch;
pub(crate) mod fd;
pub(crate) mod mem;
pub(crate) mod proc;
pub(crate) mod signal;
pub(crate) mod time;
