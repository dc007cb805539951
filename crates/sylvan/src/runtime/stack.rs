//! Green-thread stacks: slots carved out of large reserved regions.
//!
//! Each hub owns one [`StackPool`]. A pool keeps one size class per stack
//! size in use; a size class reserves address space in chunks (one
//! `MAP_NORESERVE` mapping each, growing from 256 slots to at most 8 GiB per
//! chunk) and cuts it into slots. A slot's lowest page is its guard, made with
//! `MADV_GUARD_INSTALL`, which adds no kernel mapping: 200,000 stacks cost
//! about a dozen mappings, far below `vm.max_map_count`.
//!
//! On kernels without `MADV_GUARD_INSTALL` (before 6.13), or when the
//! environment variable `SYLVAN_STACK_FALLBACK=1` forces it, each stack is
//! its own mapping with an `mprotect`ed guard page: two kernel mappings per
//! stack, so about 30,000 live green threads at the default
//! `vm.max_map_count` of 65530. Running out says so, and names the sysctl.
//!
//! Slots are reused (last freed, first reused, so its pages are still warm).
//! Only the [`WARM_SLOTS`] most recently freed slots keep their pages; older
//! free slots give their pages back with `MADV_DONTNEED` when the hub is idle
//! or when many are waiting. Stacks are never copied or moved.
//!
//! Invariants: a slot is handed to at most one [`GreenStack`] at a time;
//! `[lo, lo + guard)` is inaccessible and `[lo + guard, lo + size)` is
//! readable and writable for as long as the pool (which the stack keeps alive
//! through an `Rc`) exists.

use std::cell::{Cell, RefCell};
use std::io;
use std::num::NonZeroUsize;
use std::rc::Rc;

use corosensei::stack::{Stack, StackPointer};

use crate::sys::mem::{self, Mapping};

/// Default stack size: 256 KiB of address space, guard page included.
pub(crate) const DEFAULT_STACK_SIZE: usize = 256 * 1024;
/// Smallest stack a green thread may ask for.
pub(crate) const MIN_STACK_SIZE: usize = 16 * 1024;
/// How many freed slots keep their resident pages for quick reuse.
pub(crate) const WARM_SLOTS: usize = 256;
/// Trim without waiting for the hub to be idle once this many freed slots
/// beyond the warm ones hold pages.
const TRIM_BATCH: usize = 4096;
const FIRST_CHUNK_SLOTS: usize = 256;
/// Never-used slots made ready at once: their guards installed and their
/// top page (which a new coroutine writes its first frame to) populated,
/// with two `process_madvise` calls instead of a `madvise` and a page fault
/// each. At most this many pages are resident ahead of use.
const PREPARE_SLOTS: usize = 64;
const MAX_CHUNK_BYTES: usize = 8 << 30;

/// Where a slot's memory comes from.
#[derive(Debug)]
enum Backing {
    /// Part of size class chunk number `.0`.
    Chunk(u32),
    /// Its own mapping (fallback path).
    Own(Mapping),
}

#[derive(Debug)]
struct Slot {
    lo: usize,
    backing: Backing,
}

#[derive(Debug)]
struct SizeClass {
    slot_size: usize,
    chunks: Vec<Mapping>,
    /// Next never-used slot: (chunk index, byte offset).
    carve: Option<(usize, usize)>,
    /// Offset in the current chunk up to which slots are prepared (guard
    /// installed, top page populated).
    prepared: usize,
    next_chunk_slots: usize,
    free: Vec<Slot>,
    /// `free[..trimmed]` have already given their pages back.
    trimmed: usize,
}

/// The stack slots of one hub.
#[derive(Debug)]
pub(crate) struct StackPool {
    classes: RefCell<Vec<SizeClass>>,
    use_guard_install: bool,
    live: Cell<usize>,
}

impl StackPool {
    pub(crate) fn new() -> StackPool {
        let forced = std::env::var_os("SYLVAN_STACK_FALLBACK").is_some_and(|v| v == "1");
        StackPool {
            classes: RefCell::new(Vec::new()),
            use_guard_install: !forced && mem::guard_install_supported(),
            live: Cell::new(0),
        }
    }

    /// Whether stacks are slots with `MADV_GUARD_INSTALL` guards (`true`) or
    /// one mapping each (`false`, the fallback).
    pub(crate) fn uses_guard_install(&self) -> bool {
        self.use_guard_install
    }

    /// Number of stacks handed out and not yet returned.
    pub(crate) fn live(&self) -> usize {
        self.live.get()
    }

    /// Rounds a requested stack size to what a slot really gets; `None`
    /// if that does not fit in the address space.
    pub(crate) fn slot_size(requested: usize) -> Option<usize> {
        let page = mem::page_size();
        requested
            .max(MIN_STACK_SIZE)
            .checked_next_multiple_of(page)
            .filter(|&n| n <= isize::MAX as usize)
    }

    /// Hands out a stack of (at least) `size` bytes, guard page included.
    pub(crate) fn allocate(self: &Rc<Self>, size: usize) -> io::Result<GreenStack> {
        let Some(slot_size) = Self::slot_size(size) else {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "cannot reserve a green-thread stack of {size} bytes: larger than the address space"
                ),
            ));
        };
        let slot = {
            let mut classes = self.classes.borrow_mut();
            let class = match classes.iter().position(|c| c.slot_size == slot_size) {
                Some(i) => &mut classes[i],
                None => {
                    classes.push(SizeClass {
                        slot_size,
                        chunks: Vec::new(),
                        carve: None,
                        prepared: 0,
                        next_chunk_slots: FIRST_CHUNK_SLOTS,
                        free: Vec::new(),
                        trimmed: 0,
                    });
                    classes.last_mut().expect("just pushed")
                }
            };
            match class.free.pop() {
                Some(slot) => {
                    class.trimmed = class.trimmed.min(class.free.len());
                    slot
                }
                None if self.use_guard_install => class.carve_slot()?,
                None => own_slot(slot_size)?,
            }
        };
        self.live.set(self.live.get() + 1);
        Ok(GreenStack {
            lo: slot.lo,
            size: slot_size,
            backing: Some(slot.backing),
            pool: self.clone(),
        })
    }

    fn release(&self, lo: usize, size: usize, backing: Backing) {
        self.live.set(self.live.get() - 1);
        let mut classes = self.classes.borrow_mut();
        let Some(class) = classes.iter_mut().find(|c| c.slot_size == size) else {
            return;
        };
        class.free.push(Slot { lo, backing });
        if class.free.len() - class.trimmed > WARM_SLOTS + TRIM_BATCH {
            class.trim(WARM_SLOTS);
        }
    }

    /// Gives back the pages of freed slots beyond the `keep_warm` most
    /// recently freed ones. Returns how many slots were trimmed.
    pub(crate) fn trim(&self, keep_warm: usize) -> usize {
        self.classes
            .borrow_mut()
            .iter_mut()
            .map(|c| c.trim(keep_warm))
            .sum()
    }
}

impl SizeClass {
    fn carve_slot(&mut self) -> io::Result<Slot> {
        let page = mem::page_size();
        let (ci, off) = match self.carve {
            Some((ci, off)) if off < self.chunks[ci].len() => (ci, off),
            _ => {
                let slots = self
                    .next_chunk_slots
                    .min((MAX_CHUNK_BYTES / self.slot_size).max(1));
                let bytes = slots * self.slot_size;
                let map =
                    Mapping::reserve(bytes).map_err(|e| reserve_error(e, bytes, self.slot_size))?;
                map.no_huge_pages();
                self.chunks.push(map);
                self.next_chunk_slots = slots * 2;
                self.prepared = 0;
                (self.chunks.len() - 1, 0)
            }
        };
        if off >= self.prepared {
            let chunk = &self.chunks[ci];
            let count = ((chunk.len() - off) / self.slot_size).min(PREPARE_SLOTS);
            chunk
                .install_guards(off, self.slot_size, count, page)
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot install the guard page of a green-thread stack (madvise MADV_GUARD_INSTALL): {e}"),
                    )
                })?;
            chunk.populate(off + self.slot_size - page, self.slot_size, count, page);
            self.prepared = off + count * self.slot_size;
        }
        self.carve = Some((ci, off + self.slot_size));
        Ok(Slot {
            lo: self.chunks[ci].addr() + off,
            backing: Backing::Chunk(ci as u32),
        })
    }

    fn trim(&mut self, keep_warm: usize) -> usize {
        let page = mem::page_size();
        let end = self.free.len().saturating_sub(keep_warm);
        let mut n = 0;
        for slot in &self.free[self.trimmed.min(end)..end] {
            match &slot.backing {
                Backing::Chunk(ci) => {
                    let map = &self.chunks[*ci as usize];
                    map.discard(slot.lo - map.addr() + page, self.slot_size - page);
                }
                Backing::Own(map) => map.discard(page, self.slot_size - page),
            }
            n += 1;
        }
        self.trimmed = self.trimmed.max(end);
        n
    }
}

fn own_slot(slot_size: usize) -> io::Result<Slot> {
    let page = mem::page_size();
    let map = Mapping::reserve(slot_size)
        .and_then(|m| m.protect_none(0, page).map(|()| m))
        .map_err(|e| {
            let near_limit = match (mem::map_count(), mem::max_map_count()) {
                (Some(have), Some(limit)) => have as u64 + 16 >= limit,
                _ => false,
            };
            if e.raw_os_error() == Some(libc::ENOMEM) && near_limit {
                map_count_error(e)
            } else {
                reserve_error(e, slot_size, slot_size)
            }
        })?;
    Ok(Slot {
        lo: map.addr(),
        backing: Backing::Own(map),
    })
}

fn reserve_error(e: io::Error, bytes: usize, slot_size: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "cannot reserve {} MiB of address space for green-thread stacks of {} KiB: {e}; \
             the address space is exhausted or limited (check `ulimit -v`), or the stack size is too large",
            bytes >> 20,
            slot_size >> 10
        ),
    )
}

fn map_count_error(e: io::Error) -> io::Error {
    let limit = mem::max_map_count().map_or("unknown".to_string(), |n| n.to_string());
    let have = mem::map_count().map_or("unknown".to_string(), |n| n.to_string());
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "cannot map a green-thread stack ({e}): this process has {have} memory mappings and \
             vm.max_map_count is {limit}; without MADV_GUARD_INSTALL (Linux < 6.13, or \
             SYLVAN_STACK_FALLBACK=1) every stack costs two mappings. Raise the limit with \
             `sysctl -w vm.max_map_count=262144`, or run fewer green threads at once"
        ),
    )
}

/// A green thread's stack: a slot lent by the hub's [`StackPool`], returned
/// to it on drop.
#[derive(Debug)]
pub(crate) struct GreenStack {
    lo: usize,
    size: usize,
    backing: Option<Backing>,
    pool: Rc<StackPool>,
}

impl GreenStack {
    /// The guard page range `[lo, hi)`.
    pub(crate) fn guard(&self) -> (usize, usize) {
        (self.lo, self.lo + mem::page_size())
    }

    /// Total size in bytes, guard included.
    pub(crate) fn size(&self) -> usize {
        self.size
    }
}

// SAFETY: `base` and `limit` bound `size - page` bytes of read-write memory
// that belong to this stack alone (a slot is lent to one GreenStack at a
// time) and stay mapped while the pool lives, which `self.pool` guarantees.
// Below `limit` lies the slot's guard page, so an overflow faults instead of
// touching the neighbouring slot. Both addresses are page aligned, which
// satisfies STACK_ALIGNMENT, and a slot is at least 16 KiB, above
// corosensei's MIN_STACK_SIZE.
unsafe impl Stack for GreenStack {
    fn base(&self) -> StackPointer {
        NonZeroUsize::new(self.lo + self.size).expect("stack address is not null")
    }

    fn limit(&self) -> StackPointer {
        NonZeroUsize::new(self.lo + mem::page_size()).expect("stack address is not null")
    }
}

impl Drop for GreenStack {
    fn drop(&mut self) {
        if let Some(backing) = self.backing.take() {
            self.pool.release(self.lo, self.size, backing);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_lifo() {
        let pool = Rc::new(StackPool::new());
        let a = pool.allocate(DEFAULT_STACK_SIZE).unwrap();
        let a_lo = a.lo;
        let b = pool.allocate(DEFAULT_STACK_SIZE).unwrap();
        assert_ne!(a_lo, b.lo);
        assert_eq!(pool.live(), 2);
        drop(a);
        let c = pool.allocate(DEFAULT_STACK_SIZE).unwrap();
        assert_eq!(c.lo, a_lo, "the last freed slot is reused first");
        drop((b, c));
        assert_eq!(pool.live(), 0);
    }

    #[test]
    fn slot_memory_is_writable_and_trim_zeroes_it() {
        let pool = Rc::new(StackPool::new());
        let s = pool.allocate(MIN_STACK_SIZE).unwrap();
        let top = s.base().get() - 8;
        let lo = s.lo;
        // Writes through raw pointers are only done in tests of this module.
        let p = top as *mut u64;
        // SAFETY: `top` is inside the stack's writable range.
        unsafe { p.write(0xdead_beef) };
        drop(s);
        assert_eq!(pool.trim(0), 1);
        let s = pool.allocate(MIN_STACK_SIZE).unwrap();
        assert_eq!(s.lo, lo);
        // SAFETY: as above; MADV_DONTNEED gave the page back, so it reads 0.
        assert_eq!(unsafe { p.read() }, 0);
    }

    #[test]
    fn sizes_round_to_pages_and_classes_are_separate() {
        assert_eq!(StackPool::slot_size(1), Some(MIN_STACK_SIZE));
        assert_eq!(
            StackPool::slot_size(MIN_STACK_SIZE + 1),
            Some(MIN_STACK_SIZE + mem::page_size())
        );
        assert_eq!(StackPool::slot_size(usize::MAX), None);
        let pool = Rc::new(StackPool::new());
        let a = pool.allocate(64 * 1024).unwrap();
        let b = pool.allocate(128 * 1024).unwrap();
        assert_eq!(a.size(), 64 * 1024);
        assert_eq!(b.size(), 128 * 1024);
    }

    /// Whether the page at `addr` is a guard region, from its
    /// `/proc/self/pagemap` entry (bit 58, `PM_GUARD_REGION`, Linux 6.14).
    fn is_guard(addr: usize) -> bool {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open("/proc/self/pagemap").unwrap();
        f.seek(SeekFrom::Start((addr / mem::page_size() * 8) as u64))
            .unwrap();
        let mut b = [0u8; 8];
        f.read_exact(&mut b).unwrap();
        u64::from_le_bytes(b) & (1 << 58) != 0
    }

    #[test]
    fn slots_prepared_in_batches_each_get_a_guard() {
        let pool = Rc::new(StackPool::new());
        if !pool.uses_guard_install() {
            return; // one mapping per stack: mprotect guards, tested elsewhere
        }
        let probe = Mapping::reserve(2 * mem::page_size()).unwrap();
        probe.install_guard(0, mem::page_size()).unwrap();
        if !is_guard(probe.addr()) {
            return; // pagemap shows guard regions only from Linux 6.14
        }
        let stacks: Vec<GreenStack> = (0..PREPARE_SLOTS * 2 + 3)
            .map(|_| pool.allocate(MIN_STACK_SIZE).unwrap())
            .collect();
        let page = mem::page_size();
        for s in &stacks {
            assert!(is_guard(s.lo), "slot at {:#x} has no guard page", s.lo);
            assert!(!is_guard(s.lo + page), "only the lowest page is a guard");
            let top = (s.base().get() - 8) as *mut u64;
            // SAFETY: `top` is inside the stack's writable range.
            unsafe { top.write(1) };
        }
    }

    #[test]
    fn absurd_size_is_a_clear_error() {
        let pool = Rc::new(StackPool::new());
        for size in [
            1 << 50,
            usize::MAX,
            usize::MAX - 4095,
            isize::MAX as usize + 1,
        ] {
            let err = pool.allocate(size).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::OutOfMemory, "{size}");
            assert!(err.to_string().contains("address space"), "{err}");
        }
        assert_eq!(pool.live(), 0);
    }
}
