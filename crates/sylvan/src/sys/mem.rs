//! Memory mappings for green-thread stacks.
//!
//! Invariants: a [`Mapping`] owns `len` bytes of address space starting at
//! `ptr`, obtained from `mmap` and released by `munmap` exactly once, on drop.
//! Every method checks that the range it touches lies inside the mapping, so
//! no caller can make the kernel change memory it does not own.
//!
//! The methods that destroy or hide the contents of a range (guard install,
//! `mprotect(PROT_NONE)`, `MADV_DONTNEED`) are `unsafe fn`: the mapping
//! cannot know whether Rust data still lives there (a green thread's stack
//! frames, say), so their callers promise it does not.

use std::io;
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// `MADV_GUARD_INSTALL` from Linux 6.13 (`include/uapi/asm-generic/mman-common.h`).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// The size of a memory page.
pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if n > 0 { n as usize } else { 4096 }
    })
}

/// Hints to the CPU that the `LINES` cache lines (64 bytes each) from the
/// one holding `addr` will be read soon, so it starts loading them now.
/// Never faults, whatever the addresses (a prefetch is only a hint; past
/// the top of the address space they wrap), and does nothing off x86-64.
#[inline]
pub(crate) fn prefetch<const LINES: usize>(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let first = addr & !63;
        for i in 0..LINES {
            let line = first.wrapping_add(i * 64);
            // SAFETY: a prefetch reads nothing the program sees and never
            // faults, even for an address that is not mapped.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::without_provenance(line)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// Where the caller's stack stands now: its stack pointer on x86-64 and
/// AArch64, elsewhere an address below every frame of the caller's. For
/// stack headroom checks, which may not use the address of a local: once
/// inlined into a large frame, that local may lie anywhere in it, above
/// the frame's big buffers, and overstate what is left below.
#[inline(always)]
pub(crate) fn stack_pointer() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let sp: usize;
        // SAFETY: copies the stack pointer register; reads and writes no
        // memory and leaves the flags alone.
        unsafe {
            std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags))
        };
        sp
    }
    #[cfg(target_arch = "aarch64")]
    {
        let sp: usize;
        // SAFETY: as above.
        unsafe {
            std::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
        };
        sp
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        below_the_caller()
    }
}

/// The address of a local of a frame of its own, below its caller's.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline(never)]
fn below_the_caller() -> usize {
    let here = 0u8;
    std::hint::black_box(&here) as *const u8 as usize
}

/// An anonymous, private, read-write mapping, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// Reserves `len` bytes of address space with `MAP_NORESERVE`: no memory
    /// is committed until a page is touched.
    pub(crate) fn reserve(len: usize) -> io::Result<Mapping> {
        // SAFETY: an anonymous mapping at an address of the kernel's choosing
        // cannot alias any existing Rust object.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: NonNull::new(p.cast()).expect("mmap returned null"),
            len,
        })
    }

    /// Asks the kernel not to back this mapping with transparent huge pages:
    /// a stack touches a few 4 KiB pages, and a 2 MiB page shared by eight
    /// stacks would multiply their memory. Best effort; errors are ignored.
    pub(crate) fn no_huge_pages(&self) {
        // SAFETY: advisory call on a range we own; it changes no contents.
        unsafe {
            libc::madvise(self.ptr.as_ptr().cast(), self.len, libc::MADV_NOHUGEPAGE);
        }
    }

    /// The lowest address of the mapping.
    pub(crate) fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn check(&self, offset: usize, len: usize) {
        assert!(
            offset % page_size() == 0 && len % page_size() == 0 && offset + len <= self.len,
            "range {offset}+{len} outside mapping of {}",
            self.len
        );
    }

    /// Turns `[offset, offset + len)` into a guard region with
    /// `MADV_GUARD_INSTALL`: any access raises `SIGSEGV`, and no new kernel
    /// mapping (VMA) is created. Fails with `EINVAL` before Linux 6.13.
    ///
    /// # Safety
    ///
    /// Nothing live may be stored in the range, and no reference into it
    /// may be used afterwards: its contents are discarded and any access
    /// faults.
    ///
    /// # Panics
    ///
    /// If the range is not page-aligned or not inside the mapping.
    pub(crate) unsafe fn install_guard(&self, offset: usize, len: usize) -> io::Result<()> {
        self.check(offset, len);
        // SAFETY: the range lies inside this mapping (checked above), which we
        // own; the caller guarantees nothing live is stored there.
        let r = unsafe {
            libc::madvise(
                self.ptr.as_ptr().add(offset).cast(),
                len,
                MADV_GUARD_INSTALL,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Installs guards on `count` ranges of `len` bytes, at `first`,
    /// `first + stride`, ...: one `process_madvise(2)` per [`MAX_IOV`]
    /// ranges where the kernel allows it, else one `madvise` each.
    ///
    /// # Safety
    ///
    /// As for [`install_guard`](Self::install_guard), for every range.
    ///
    /// # Panics
    ///
    /// If a range is not page-aligned or not inside the mapping.
    pub(crate) unsafe fn install_guards(
        &self,
        first: usize,
        stride: usize,
        count: usize,
        len: usize,
    ) -> io::Result<()> {
        // SAFETY: the caller guarantees that nothing live is stored in
        // these ranges.
        unsafe { self.advise_strided(first, stride, count, len, MADV_GUARD_INSTALL, false) }
    }

    /// Makes the pages of `count` ranges (as in
    /// [`install_guards`](Self::install_guards)) resident and writable now,
    /// with `MADV_POPULATE_WRITE` batched by `process_madvise(2)`, so their
    /// first use takes no page fault. Best effort: does nothing where the
    /// kernel cannot batch it (one `madvise` per range would cost what the
    /// page faults do).
    pub(crate) fn populate(&self, first: usize, stride: usize, count: usize, len: usize) {
        if batching_supported() {
            // SAFETY: populating makes pages resident and leaves their
            // contents as they are.
            let _ = unsafe {
                self.advise_strided(first, stride, count, len, MADV_POPULATE_WRITE, true)
            };
        }
    }

    /// `advice` on `count` ranges of `len` bytes, `stride` apart from
    /// `first`.
    ///
    /// # Safety
    ///
    /// The advice must be harmless to what the ranges hold: either it
    /// keeps contents (`MADV_POPULATE_WRITE`), or nothing live is stored
    /// there.
    unsafe fn advise_strided(
        &self,
        first: usize,
        stride: usize,
        count: usize,
        len: usize,
        advice: libc::c_int,
        batch_only: bool,
    ) -> io::Result<()> {
        if count == 0 {
            return Ok(());
        }
        self.check(first + (count - 1) * stride, len);
        let base = self.addr() + first;
        let mut done = 0;
        if batching_supported() {
            let mut iov = Vec::with_capacity(count.min(MAX_IOV));
            while done < count {
                let n = (count - done).min(MAX_IOV);
                iov.clear();
                iov.extend((done..done + n).map(|i| libc::iovec {
                    iov_base: (base + i * stride) as *mut libc::c_void,
                    iov_len: len,
                }));
                // SAFETY: every range lies inside this mapping (checked
                // above), which we own; the caller guarantees the advice is
                // harmless to what they hold.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_process_madvise,
                        PIDFD_SELF,
                        iov.as_ptr(),
                        n,
                        advice,
                        0,
                    )
                };
                if r < 0 {
                    if done == 0 {
                        let e = io::Error::last_os_error();
                        if matches!(
                            e.raw_os_error(),
                            Some(
                                libc::ENOSYS
                                    | libc::EBADF
                                    | libc::EPERM
                                    | libc::ESRCH
                                    | libc::EINVAL
                            )
                        ) {
                            BATCHING.store(false, Ordering::Relaxed);
                        }
                    }
                    break;
                }
                let advised = r as usize / len;
                done += advised;
                if advised < n {
                    break;
                }
            }
        }
        if batch_only {
            return Ok(());
        }
        for i in done..count {
            // SAFETY: as above, one range at a time.
            let r = unsafe { libc::madvise((base + i * stride) as *mut libc::c_void, len, advice) };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Makes `[offset, offset + len)` inaccessible with `mprotect`. This
    /// splits the kernel mapping in two (the fallback path's cost).
    ///
    /// # Safety
    ///
    /// No reference into the range may be used afterwards (any access
    /// faults): it must hold nothing live.
    ///
    /// # Panics
    ///
    /// If the range is not page-aligned or not inside the mapping.
    pub(crate) unsafe fn protect_none(&self, offset: usize, len: usize) -> io::Result<()> {
        self.check(offset, len);
        // SAFETY: the range lies inside this mapping, which we own; the
        // caller guarantees nothing live is stored there.
        let r =
            unsafe { libc::mprotect(self.ptr.as_ptr().add(offset).cast(), len, libc::PROT_NONE) };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Gives the pages of `[offset, offset + len)` back to the kernel with
    /// `MADV_DONTNEED`; they read as zero when touched again. Guard markers
    /// installed with `MADV_GUARD_INSTALL` survive this.
    ///
    /// # Safety
    ///
    /// No live data may be stored in the range (it is used on the stacks
    /// of finished green threads): its contents are replaced by zeros.
    ///
    /// # Panics
    ///
    /// If the range is not page-aligned or not inside the mapping.
    pub(crate) unsafe fn discard(&self, offset: usize, len: usize) {
        self.check(offset, len);
        // SAFETY: the range lies inside this mapping; the caller guarantees
        // that nothing live is stored there, so zeroing it is unobservable.
        unsafe {
            libc::madvise(
                self.ptr.as_ptr().add(offset).cast(),
                len,
                libc::MADV_DONTNEED,
            );
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from a successful mmap and are unmapped once.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// `MADV_POPULATE_WRITE` (Linux 5.14).
const MADV_POPULATE_WRITE: libc::c_int = 23;
/// `PIDFD_SELF`: the calling process, for `process_madvise` (Linux 6.14);
/// before that `process_madvise` fails with `EBADF` and ranges are advised
/// one at a time.
const PIDFD_SELF: libc::c_int = -10000;
/// Ranges per `process_madvise` call (`UIO_MAXIOV`).
const MAX_IOV: usize = 1024;

/// Cleared once `process_madvise` on this process turned out unsupported.
static BATCHING: AtomicBool = AtomicBool::new(true);

fn batching_supported() -> bool {
    BATCHING.load(Ordering::Relaxed)
}

/// Whether this kernel supports `MADV_GUARD_INSTALL` (probed once).
pub(crate) fn guard_install_supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        let page = page_size();
        match Mapping::reserve(2 * page) {
            // SAFETY: a fresh mapping, which no Rust value uses.
            Ok(m) => unsafe { m.install_guard(0, page) }.is_ok(),
            Err(_) => false,
        }
    })
}

/// The current `vm.max_map_count`, for error messages.
pub(crate) fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// How many mappings this process has now, for error messages.
pub(crate) fn map_count() -> Option<usize> {
    std::fs::read_to_string("/proc/self/maps")
        .ok()
        .map(|s| s.lines().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_pointer_lies_below_the_whole_frame_of_its_caller() {
        // A frame with a large buffer: the stack pointer is below all of
        // it (a headroom check that took a local's address could land
        // above the buffer), and not far below (it is this frame's).
        let mut buf = [0u8; 32 * 1024];
        std::hint::black_box(&mut buf);
        let sp = stack_pointer();
        let lowest = buf.as_ptr() as usize;
        assert!(sp <= lowest, "{sp:#x} is above the buffer at {lowest:#x}");
        assert!(lowest - sp < 64 * 1024, "{sp:#x} is far below {lowest:#x}");
        std::hint::black_box(&mut buf);
    }

    #[test]
    fn a_prefetch_never_faults_wherever_it_points() {
        // Nothing is ever mapped at page 0, nor readable in a guard page
        // or at the top of the address space; a prefetch of any of them
        // is a hint that must return, not a read that faults (nor an
        // address sum that overflows).
        prefetch::<64>(0);
        let m = Mapping::reserve(4 * page_size()).unwrap();
        // SAFETY: nothing lives in the fresh mapping.
        unsafe { m.protect_none(0, page_size()) }.unwrap();
        prefetch::<64>(m.addr());
        prefetch::<12>(usize::MAX - 10);
    }
}
