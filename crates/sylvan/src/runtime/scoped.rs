//! The one lifetime erasure behind [`sylvan::scope`](crate::scope).
//!
//! A scoped green thread borrows from its caller's stack, yet the hub
//! stores every green thread's closure as `'static`. `scope` makes that
//! sound by construction: it does not return — normally, by panic, when
//! its caller is cancelled, or while its caller is force-unwound at hub
//! shutdown — until every green thread it spawned has finished or been
//! unwound, and a green thread leaked at thread exit never runs again (see
//! the hub's invariants). Only `scope` calls this.

/// Erases the lifetime of a scoped green thread's closure.
///
/// # Safety
///
/// The caller must ensure the returned closure is called or dropped, and
/// is never run afterwards, before `'a` ends: nothing it borrows may be
/// used after the borrow's owner is gone. `scope` ensures it by waiting
/// for (or unwinding) every green thread it spawned before it returns or
/// unwinds past its caller's frame.
pub(crate) unsafe fn erase<'a>(f: Box<dyn FnOnce() + 'a>) -> Box<dyn FnOnce() + 'static> {
    // SAFETY: the two types differ only in the lifetime bound, so they
    // have the same layout (a fat pointer with the same vtable); the
    // caller guarantees the closure does not outlive `'a` (see `# Safety`).
    unsafe { std::mem::transmute::<Box<dyn FnOnce() + 'a>, Box<dyn FnOnce() + 'static>>(f) }
}
