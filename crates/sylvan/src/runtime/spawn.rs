//! Making a green thread: its stack, its cell, and the entry function
//! that runs on the new stack (the closure, then its links, its result and
//! its green-locals, each dropped there and never on the scheduler's path).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::mem::MaybeUninit;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;

use corosensei::{Coroutine, Yielder};

use super::hub::{hub_unless_exiting, next_green_id};
use super::task::{Core, TaskCell, clear_locals, count_panic, drop_payload, log_panic};
use crate::green::{Outcome, catch_panic};

/// Makes a green thread running `f` (whose `None` means "did not run")
/// on a new stack and queues it on this thread's hub; `Builder::spawn`'s
/// engine. `f` must be small enough for corosensei to copy onto the new
/// stack. Its spawn site, for introspection, is the caller's.
#[track_caller]
#[inline]
pub(crate) fn spawn_cell<T: 'static, F: FnOnce() -> Option<T> + 'static>(
    name: Option<Arc<str>>,
    stack_size: usize,
    span: Option<tracing::Span>,
    f: F,
) -> io::Result<Rc<TaskCell<T>>> {
    let Some(hub) = hub_unless_exiting() else {
        return Err(io::Error::other(
            "cannot spawn a green thread: this thread is exiting and its hub was already destroyed",
        ));
    };
    let stack = hub.stacks.allocate(stack_size)?;
    let span = match span {
        Some(span) => Some(span),
        // Asking for the current span costs a dispatcher lookup; with no
        // subscriber ever installed there is none to inherit.
        None if tracing::dispatcher::has_been_set() => Some(tracing::Span::current()),
        None => None,
    };
    let span = span.filter(|s| !s.is_none()).map(Box::new);
    // Allocated first and filled in place: `Rc::new` of the ~400-byte
    // cell built it on this stack and copied it to the heap (a `memcpy`
    // of about 70 instructions, 5 % of a spawn + join).
    // (`Rc::new_uninit` would work out the layout at run time, in a call.)
    let mut cell = Rc::new(MaybeUninit::<TaskCell<T>>::uninit());
    Rc::get_mut(&mut cell)
        .expect("a new Rc is unique")
        .write(TaskCell {
            core: Core::new(next_green_id(), name, stack.guard(), stack.size(), span),
            result: RefCell::new(None),
            links: RefCell::new(VecDeque::new()),
        });
    // SAFETY: the value was written just above, through the only
    // reference to this new allocation.
    let cell = unsafe { cell.assume_init() };
    let inner = cell.clone();
    let mut pending = PendingLinks(cell.clone());
    let coro = Coroutine::with_stack(stack, move |y: &Yielder<(), ()>, ()| {
        // Its green-locals are dropped when this function ends, however
        // it ends (return, panic, the forced unwind), on this stack.
        struct ClearLocals<'a>(&'a Core);
        impl Drop for ClearLocals<'_> {
            fn drop(&mut self) {
                clear_locals(self.0);
            }
        }
        let _locals = ClearLocals(&inner.core);
        // Whichever way this function ends without an outcome (killed
        // before it ran, or unwound at hub shutdown), dropping
        // `pending` calls the links that are left with `Killed`.
        let pending = &mut pending;
        if inner.core.killed.get() {
            // Killed before it ran: drop the closure unrun, here on its
            // own stack. The yielder is not set yet, so a destructor
            // that blocks fails at once and one that yields returns:
            // nothing suspends (so no forced unwind can come through).
            if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| drop(f))) {
                log_panic(&inner.core, p.as_ref());
            }
            return;
        }
        inner.core.yielder.set(y as *const _);
        let r = match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => return,
            // The hub's forced unwind (or, if user code caught that and
            // panicked again, that panic): end here normally, which
            // corosensei accepts; raising anything but its own payload
            // from here would abort the process.
            Err(_) if inner.core.unwinding.get() => return,
            Err(p) => {
                count_panic(&inner.core);
                Err(p)
            }
        };
        pending.run(&r);
        // Its green-locals go now, before the result is stored: their
        // destructors may block, and the handle may be dropped
        // meanwhile; the result must then be dropped here, not by the
        // scheduler.
        clear_locals(&inner.core);
        if inner.core.detached.get() {
            // Nobody can take it: drop it here, on this green thread's
            // stack, never on the scheduler's path.
            if let Err(p) = &r {
                log_panic(&inner.core, p.as_ref());
            }
            if let Err(p) = catch_panic(|| drop(r)) {
                log_panic(&inner.core, p.as_ref());
            }
        } else {
            *inner.result.borrow_mut() = Some(r);
        }
    });
    *cell.core.coro.borrow_mut() = Some(coro);
    hub.insert_task(cell.clone());
    Ok(cell)
}

/// The links of a green thread (kept in its cell), owned by its entry
/// function: called with the outcome on its own stack, or with `Killed`
/// when dropped first.
struct PendingLinks<T>(Rc<TaskCell<T>>);

impl<T> PendingLinks<T> {
    /// Calls every link with `r`, one at a time (a link may add links).
    fn run(&mut self, r: &std::thread::Result<T>) {
        if self.0.links.borrow().is_empty() {
            return;
        }
        loop {
            let Some((_, f)) = self.0.links.borrow_mut().pop_front() else {
                return;
            };
            let outcome = match r {
                Ok(v) => Outcome::Returned(v),
                Err(p) => Outcome::Panicked(p.as_ref()),
            };
            if let Err(p) = catch_panic(|| f(outcome)) {
                log_panic(&self.0.core, p.as_ref());
                drop_payload(&self.0.core, p);
            }
        }
    }
}

impl<T> Drop for PendingLinks<T> {
    fn drop(&mut self) {
        // Reached without an outcome, perhaps while unwinding: a panic of
        // a link must not escape this drop, so it is caught as it is.
        loop {
            let Some((_, f)) = self.0.links.borrow_mut().pop_front() else {
                return;
            };
            if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| f(Outcome::Killed))) {
                log_panic(&self.0.core, p.as_ref());
                drop_payload(&self.0.core, p);
            }
        }
    }
}
