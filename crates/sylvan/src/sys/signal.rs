//! Stack-overflow detection for green threads.
//!
//! Invariants: the handler reads only a `const`-initialised thread-local
//! without a destructor (a plain TLS load, safe in a signal handler) and the
//! previous `sigaction`, which is written once before the handler is
//! installed and never freed. It allocates nothing, takes no lock and does not
//! use `std::fmt`; its only output is `write(2)` to stderr before `abort()`.

use std::cell::Cell;
use std::io;
use std::ptr;
use std::sync::Once;
use std::sync::atomic::{AtomicPtr, Ordering};

use super::mem::{Mapping, page_size};

/// What the handler needs to know about a green thread: made once when it
/// is spawned, so a switch stores one pointer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Guard {
    /// Guard page range `[lo, hi)`; `lo == 0` means no green thread runs.
    lo: usize,
    hi: usize,
    /// The green thread's name (pointer and length), valid while it runs.
    name_ptr: usize,
    name_len: usize,
    stack_kib: usize,
}

impl Guard {
    /// The guard page `[lo, hi)`, name and stack size of one green thread.
    /// Only the addresses are kept: whoever passes the record to
    /// [`set_current`] keeps `name` alive meanwhile (it is the green
    /// thread's own name, kept with it).
    pub(crate) fn new(
        guard_lo: usize,
        guard_hi: usize,
        name: Option<&str>,
        stack_size: usize,
    ) -> Guard {
        let (name_ptr, name_len) = name.map_or((0, 0), |n| (n.as_ptr() as usize, n.len()));
        Guard {
            lo: guard_lo,
            hi: guard_hi,
            name_ptr,
            name_len,
            stack_kib: stack_size / 1024,
        }
    }

    /// The lowest usable address of the stack (the guard page's top); 0
    /// for the root, which has no guard record.
    #[inline]
    pub(crate) fn stack_floor(&self) -> usize {
        self.hi
    }
}

thread_local! {
    /// The running green thread's record; null while none runs.
    static GUARD: Cell<*const Guard> = const { Cell::new(ptr::null()) };
}

/// Records the running green thread's guard page, name and stack size.
///
/// The hub sets it when it switches into a green thread, whose core holds
/// `g`, and clears it when it switches out.
///
/// # Safety
///
/// `g`, and the name it was made with, must stay valid and unmoved until
/// [`clear_current`] or the next `set_current` on this thread: the fault
/// handler reads them through a raw pointer.
#[inline]
pub(crate) unsafe fn set_current(g: &Guard) {
    GUARD.with(|c| c.set(g as *const Guard));
}

/// Records that no green thread is running on this OS thread.
#[inline]
pub(crate) fn clear_current() {
    GUARD.with(|c| c.set(ptr::null()));
}

static OLD_SEGV: AtomicPtr<libc::sigaction> = AtomicPtr::new(ptr::null_mut());
static OLD_BUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(ptr::null_mut());

/// Installs the fault handler for the whole process (once).
pub(crate) fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (sig, slot) in [(libc::SIGSEGV, &OLD_SEGV), (libc::SIGBUS, &OLD_BUS)] {
            // SAFETY: sigaction is plain data; all-zero is a valid value.
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: querying the current action writes only into `old`.
            unsafe { libc::sigaction(sig, ptr::null(), &mut old) };
            slot.store(Box::into_raw(Box::new(old)), Ordering::Release);

            // SAFETY: as above, all-zero is a valid sigaction.
            let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
            new.sa_sigaction = on_fault as *const () as usize;
            new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            // SAFETY: `new` is a valid sigaction whose handler is an
            // `extern "C"` function with the SA_SIGINFO signature; sa_mask is
            // initialised by sigemptyset before use.
            unsafe {
                libc::sigemptyset(&mut new.sa_mask);
                libc::sigaction(sig, &new, ptr::null_mut());
            }
        }
    });
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for SIGSEGV/SIGBUS.
    let addr = unsafe { (*info).si_addr() } as usize;
    let g = GUARD.with(|g| g.get());
    // SAFETY: a non-null GUARD points at the running green thread's record,
    // which its core keeps alive while it runs (see `set_current`).
    let g = unsafe { g.as_ref() };
    if let Some(g) = g.filter(|g| g.lo != 0 && addr >= g.lo && addr < g.hi) {
        report_overflow(g);
        // SAFETY: abort is async-signal-safe and never returns.
        unsafe { libc::abort() };
    }
    chain(sig, info, ctx);
}

fn report_overflow(g: &Guard) {
    write_stderr(b"green thread '");
    if g.name_ptr != 0 {
        // SAFETY: set_current's caller keeps the name alive while this green
        // thread runs, and the fault happened while it ran.
        let name = unsafe { std::slice::from_raw_parts(g.name_ptr as *const u8, g.name_len) };
        write_stderr(name);
    } else {
        write_stderr(b"<unnamed>");
    }
    write_stderr(b"' overflowed its stack (");
    let mut buf = [0u8; 20];
    write_stderr(format_decimal(g.stack_kib, &mut buf));
    write_stderr(b" KiB)\n");
}

/// Formats `n` in decimal into `buf` without `std::fmt`.
fn format_decimal(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: write(2) is async-signal-safe; the slice is valid.
        let n = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// Hands a fault that is not ours to the handler installed before us.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let slot = if sig == libc::SIGBUS {
        &OLD_BUS
    } else {
        &OLD_SEGV
    };
    let old = slot.load(Ordering::Acquire);
    // SAFETY: the pointer was leaked from a Box in install_handler before the
    // handler was installed and is never freed.
    let old = unsafe { old.as_ref() };
    match old {
        Some(old) if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN => {
            if old.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: with SA_SIGINFO the handler has this signature.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(old.sa_sigaction) };
                f(sig, info, ctx);
            } else {
                // SAFETY: without SA_SIGINFO the handler takes only the signal.
                let f: extern "C" fn(libc::c_int) =
                    unsafe { std::mem::transmute(old.sa_sigaction) };
                f(sig);
            }
        }
        _ => {
            // Restore the default action; returning re-runs the faulting
            // instruction, which then kills the process as it would have.
            // SAFETY: all-zero sigaction with SIG_DFL is valid; sigaction is
            // async-signal-safe.
            unsafe {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, ptr::null_mut());
            }
        }
    }
}

/// An alternate signal stack this module installed for the current thread;
/// removed and freed on drop. Holds nothing when the thread already had one
/// (Rust's runtime gives one to the main thread and to every `std::thread`).
#[derive(Debug)]
pub(crate) struct AltStack {
    map: Option<Mapping>,
}

/// Makes sure the current thread has an alternate signal stack.
pub(crate) fn ensure_altstack() -> io::Result<AltStack> {
    // SAFETY: stack_t is plain data; querying writes only into `old`.
    let mut old: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: a null new-stack pointer only queries.
    if unsafe { libc::sigaltstack(ptr::null(), &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if old.ss_flags & libc::SS_DISABLE == 0 {
        return Ok(AltStack { map: None });
    }
    let page = page_size();
    let size = (64 * 1024).max(libc::SIGSTKSZ);
    let map = Mapping::reserve(size + page)?;
    // SAFETY: a fresh mapping, which no Rust value uses.
    unsafe { map.protect_none(0, page)? };
    let new = libc::stack_t {
        ss_sp: (map.addr() + page) as *mut libc::c_void,
        ss_flags: 0,
        ss_size: size,
    };
    // SAFETY: the stack memory is owned by `map`, which outlives the
    // registration (Drop unregisters before unmapping).
    if unsafe { libc::sigaltstack(&new, ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(AltStack { map: Some(map) })
}

impl Drop for AltStack {
    fn drop(&mut self) {
        if self.map.is_some() {
            let disable = libc::stack_t {
                ss_sp: ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            // SAFETY: disabling the alternate stack before its memory is
            // unmapped (when `map` drops right after).
            unsafe { libc::sigaltstack(&disable, ptr::null_mut()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::format_decimal;

    #[test]
    fn decimal() {
        let mut b = [0u8; 20];
        assert_eq!(format_decimal(0, &mut b), b"0");
        assert_eq!(format_decimal(256, &mut b), b"256");
        assert_eq!(
            format_decimal(usize::MAX, &mut b),
            usize::MAX.to_string().as_bytes()
        );
    }
}
