//! Green-local storage: the values behind `sylvan::green_local!`.
//!
//! Each context (a green thread, or the root) owns a [`Locals`]: a short
//! list of boxed values, one per key that context has touched, keyed by the
//! address of the key's `static`. A value is created on the first access
//! from its context and dropped when that context ends.
//!
//! Invariants (what [`with`] relies on to hand out `&T`):
//! - A value is boxed, so its address does not change when the list grows.
//! - Values are removed only by [`Locals::clear`], which runs when the
//!   owning green thread's entry function ends (after the user's closure has
//!   returned or unwound) or when its `Core` is dropped. Neither can happen
//!   while a `with` closure of that context is running: the context is busy
//!   running it, and `clear` is never called by user code.
//! - `clear` takes the whole list out before dropping anything, so a
//!   destructor that touches another green-local sees a fresh list (its
//!   value is created again and dropped in the next round), never a value
//!   being dropped.

use std::any::Any;
use std::cell::RefCell;

use super::hub::hub_unless_exiting;

/// The green-local values of one context.
#[derive(Default)]
pub(crate) struct Locals {
    entries: RefCell<Vec<(usize, Box<dyn Any>)>>,
    /// Keys whose initializer is running now, to refuse recursion.
    initializing: RefCell<Vec<usize>>,
}

impl std::fmt::Debug for Locals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locals")
            .field("len", &self.entries.borrow().len())
            .finish()
    }
}

impl Locals {
    fn find<T: 'static>(&self, key: usize) -> Option<*const T> {
        self.entries
            .borrow()
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.downcast_ref::<T>())
            .map(|v| v as *const T)
    }

    /// The value of `key` in this context, created with `init` on first use.
    pub(crate) fn get_or_init<T: 'static>(&self, key: usize, init: fn() -> T) -> *const T {
        if let Some(p) = self.find(key) {
            return p;
        }
        // No borrow is held while `init` runs: it may use other
        // green-locals, but not this one (that would recurse for ever).
        if self.initializing.borrow().contains(&key) {
            panic!("a green-local's initializer accessed the same green-local");
        }
        self.initializing.borrow_mut().push(key);
        struct Done<'a>(&'a Locals, usize);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.initializing.borrow_mut().retain(|k| *k != self.1);
            }
        }
        let done = Done(self, key);
        let value = Box::new(init());
        drop(done);
        let p: *const T = &*value;
        self.entries.borrow_mut().push((key, value));
        p
    }

    /// Drops every value, in rounds, until none is left (a destructor may
    /// create values again).
    pub(crate) fn clear(&self) {
        loop {
            let taken = std::mem::take(&mut *self.entries.borrow_mut());
            if taken.is_empty() {
                return;
            }
            drop(taken);
        }
    }
}

/// Why a green-local could not be reached: the thread is exiting and its
/// hub was already destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gone;

/// Runs `f` with the running context's value of `key`.
pub(crate) fn with<T: 'static, R>(
    key: usize,
    init: fn() -> T,
    f: impl FnOnce(&T) -> R,
) -> Result<R, Gone> {
    let hub = hub_unless_exiting().ok_or(Gone)?;
    let p = hub
        .current_core()
        .locals
        .get_or_init(Box::default)
        .get_or_init(key, init);
    // SAFETY: `p` points into a box owned by the running context's `Locals`,
    // which keeps it at the same address until `clear` or the context's end;
    // neither can happen while this context runs `f` (see the module
    // invariants). Only shared references are ever made to it.
    Ok(f(unsafe { &*p }))
}
