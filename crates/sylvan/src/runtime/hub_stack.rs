//! The hub's own stack for short non-blocking work (as Go's `systemstack`).
//!
//! Every green thread has a stack of its own, so with many connections the
//! frames a request's code touches are cold in the CPU's caches: another
//! thousand green threads ran on other stacks since this one last ran.
//! A deep, non-blocking step taken on every request (parsing a request
//! head: `httparse` and the limit checks, frames of 1–2 KiB) is cheaper on
//! one stack that every green thread of the hub shares, whose lines stay
//! cached (cachegrind, HTTP hello at 1,000 keep-alive connections: 72.6 →
//! 61 L1 data misses per request).
//!
//! [`on_hub_stack`] runs a closure there. It is sound whatever the closure
//! does:
//!
//! - It cannot suspend there. While it runs, the green thread's yielder is
//!   hidden, exactly as before its entry function set it: a blocking call
//!   fails at once with `Killed` and `yield_now` returns (so a loop that
//!   waits by yielding would spin: only code that never waits belongs
//!   there). So no other green thread can run, and none can take the
//!   shared stack, until it returns.
//! - A panic in it goes on in the caller, on the green thread's own stack
//!   (corosensei's `on_stack` catches it at the root of the hub stack and
//!   resumes it); the yielder is put back on every path.
//! - A nested call (the closure calls `on_hub_stack` again) finds the stack
//!   taken and runs the inner closure where it is.
//! - The root context (the OS thread's stack, already the hot one), a
//!   green thread that is running the loop on its own stack, a thread with
//!   no hub, and a failed allocation all run the closure in place.
//!
//! A stack overflow there faults on the hub stack's guard page; it is
//! reported as a plain SIGSEGV, not as a green thread's overflow: only
//! code of bounded depth runs there.

use std::cell::{Cell, RefCell};
use std::ptr;

use corosensei::stack::DefaultStack;

use super::hub::try_hub;
use super::task::Core;

/// Size of the hub's stack. Generous for the bounded code that runs there,
/// and room for a panic's backtrace (`RUST_BACKTRACE=1`) to be printed:
/// only the pages used are ever touched.
const HUB_STACK_SIZE: usize = 256 * 1024;

/// The hub's stack, made on first use; borrowed while a closure runs on it.
#[derive(Default)]
pub(crate) struct HubStack {
    stack: RefCell<Option<DefaultStack>>,
    /// Its allocation failed once: closures run in place from then on
    /// (rather than a failing `mmap` per call).
    unavailable: Cell<bool>,
}

/// Runs `f` on the current hub's own stack when called from a green
/// thread, in place otherwise (see the module docs). `f` must not block:
/// a blocking call in it fails as if the green thread could not suspend.
#[inline]
pub(crate) fn on_hub_stack<R>(f: impl FnOnce() -> R) -> R {
    let Some(hub) = try_hub() else {
        return f();
    };
    let core = hub.current_core();
    // The root is on the OS thread's stack; a green thread running the
    // loop is the root for now (`current_core` says so).
    if core.is_root() || core.yielder.get().is_null() {
        return f();
    }
    let hs = &hub.hub_stack;
    if hs.unavailable.get() {
        return f();
    }
    let Ok(mut slot) = hs.stack.try_borrow_mut() else {
        return f();
    };
    let stack = match &mut *slot {
        Some(s) => s,
        None => match DefaultStack::new(HUB_STACK_SIZE) {
            Ok(s) => slot.insert(s),
            Err(_) => {
                hs.unavailable.set(true);
                drop(slot);
                return f();
            }
        },
    };
    let _hidden = HideYielder::new(core);
    corosensei::on_stack(stack, f)
}

/// Hides the green thread's yielder for as long as it lives, so that it
/// cannot suspend; puts it back when dropped, unwinding included.
struct HideYielder<'a> {
    core: &'a Core,
    yielder: *const corosensei::Yielder<(), ()>,
}

impl<'a> HideYielder<'a> {
    fn new(core: &'a Core) -> HideYielder<'a> {
        let yielder = core.yielder.replace(ptr::null());
        HideYielder { core, yielder }
    }
}

impl Drop for HideYielder<'_> {
    fn drop(&mut self) {
        self.core.yielder.set(self.yielder);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Address of a local of the caller's frame.
    #[inline(never)]
    fn here() -> usize {
        let x = 0u8;
        std::hint::black_box(&x) as *const u8 as usize
    }

    /// Whether `addr` lies on the running green thread's own stack.
    fn on_own_stack(addr: usize) -> bool {
        let floor = try_hub().unwrap().current_core().sig_guard.stack_floor();
        (floor..floor + crate::runtime::DEFAULT_STACK_SIZE).contains(&addr)
    }

    #[test]
    fn a_green_thread_runs_the_closure_on_another_stack_and_gets_its_result() {
        let g = crate::spawn(|| {
            assert!(on_own_stack(here()));
            let (there, v) = on_hub_stack(|| (here(), vec![1, 2, 3]));
            assert!(
                !on_own_stack(there),
                "{there:#x} is on the green thread's stack"
            );
            // A second call uses the same stack.
            let again = on_hub_stack(here);
            assert!(
                there.abs_diff(again) < 64 * 1024,
                "{there:#x} vs {again:#x}"
            );
            v
        });
        assert_eq!(g.join().unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn green_threads_resumed_by_another_one_running_the_loop_use_it_in_turn() {
        // Yielding green threads resume one another nested on their own
        // stacks (direct switches): each still gets the hub stack, and
        // each closure's result comes back to its own caller.
        let threads: Vec<_> = (0..50u64)
            .map(|i| {
                crate::spawn(move || {
                    let mut sum = 0;
                    for round in 0..20u64 {
                        crate::yield_now();
                        let (there, v) = on_hub_stack(|| (here(), i * 1000 + round));
                        assert!(!on_own_stack(there));
                        sum += v;
                    }
                    sum
                })
            })
            .collect();
        for (i, g) in threads.into_iter().enumerate() {
            let i = i as u64;
            assert_eq!(g.join().unwrap(), 20 * i * 1000 + (0..20).sum::<u64>());
        }
    }

    #[test]
    fn the_root_and_a_nested_call_run_in_place() {
        let mine = here();
        let there = on_hub_stack(here);
        assert!(
            mine.abs_diff(there) < 64 * 1024,
            "root: {mine:#x} vs {there:#x}"
        );
        let g = crate::spawn(|| {
            let (outer, inner) = on_hub_stack(|| (here(), on_hub_stack(here)));
            assert!(
                outer.abs_diff(inner) < 64 * 1024,
                "{outer:#x} vs {inner:#x}"
            );
        });
        g.join().unwrap();
    }

    #[test]
    fn a_blocking_call_there_fails_and_a_yield_returns_without_running_others() {
        let g = crate::spawn(|| {
            // Ready to run from here on, at the first chance.
            let ran = std::rc::Rc::new(std::cell::Cell::new(false));
            let r = ran.clone();
            let other = crate::spawn(move || r.set(true));
            let (slept, ran_meanwhile) = on_hub_stack(|| {
                crate::yield_now();
                let slept = crate::sleep(Duration::from_millis(1));
                (slept, ran.get())
            });
            assert!(!ran_meanwhile, "another green thread ran on the hub stack");
            let e = slept.expect_err("a sleep on the hub stack suspended");
            assert!(matches!(e, crate::Cancelled::Killed), "{e:?}");
            // Back on its own stack it may block again.
            crate::sleep(Duration::from_millis(1)).unwrap();
            other.join().unwrap();
            assert!(ran.get());
        });
        g.join().unwrap();
    }

    #[test]
    fn a_panic_there_goes_on_in_the_caller_and_the_stack_is_usable_again() {
        let g = crate::spawn(|| {
            let r = std::panic::catch_unwind(|| on_hub_stack(|| panic!("boom on the hub stack")));
            let p = r.expect_err("the panic was lost");
            assert_eq!(p.downcast_ref::<&str>(), Some(&"boom on the hub stack"));
            // The yielder is back: it can suspend, and the stack is free.
            crate::sleep(Duration::from_millis(1)).unwrap();
            assert!(!on_own_stack(on_hub_stack(here)));
        });
        g.join().unwrap();
    }
}
