//! What the hub knows about each green thread (and about the root context).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::Location;
use std::sync::Arc;
use std::thread;

use corosensei::{Coroutine, Yielder};

use super::park::{WaitList, Wake};
use super::stack::GreenStack;

pub(crate) type Coro = Coroutine<(), (), (), GreenStack>;

/// The slot number that stands for the root context.
pub(crate) const ROOT_SLOT: u32 = u32::MAX;

/// One scoped deadline (`timeout`/`deadline`) on a context's scope stack.
#[derive(Debug)]
struct Scope {
    id: u64,
    /// The earliest deadline of this scope and all scopes around it, and the
    /// id of the (outermost) scope that owns it.
    min: u64,
    min_id: u64,
    /// How many blocking calls failed because of this scope's deadline and
    /// handed that error to the caller.
    fired: u32,
}

/// The non-generic state of a green thread or of the root context.
///
/// `repr(C)` keeps the fields in the order written: those every switch and
/// park touch first, together in the fewest cache lines (with a thousand
/// green threads each switch-in finds them cold), the rest after.
#[repr(C)]
pub(crate) struct Core {
    // Read or written on every switch in and out, and every park.
    pub(super) coro: RefCell<Option<Coro>>,
    pub(super) yielder: Cell<*const Yielder<(), ()>>,
    pub(super) slot: Cell<u32>,
    pub(super) wake: Cell<Wake>,
    pub(super) killed: Cell<bool>,
    pub(super) started: Cell<bool>,
    /// Set while the hub force-unwinds this green thread at shutdown.
    pub(super) unwinding: Cell<bool>,
    /// The sequence number of the current park; 0 while not parked.
    pub(super) parked: Cell<u64>,
    pub(super) id: u64,
    pub(super) last_block: Cell<Option<&'static Location<'static>>>,
    /// The `tracing` span entered whenever it runs, if any.
    pub(super) span: Option<Box<tracing::Span>>,
    /// Where its hub publishes its state for other threads
    /// (`runtime::introspect`); the spare record until published.
    pub(super) rec: Cell<*const super::introspect::Record>,
    scopes: RefCell<Vec<Scope>>,
    /// Guard page, name and total stack size for the overflow handler,
    /// which the hub points at while this context runs (the name is kept
    /// alive by `self.name`).
    pub(super) sig_guard: crate::sys::signal::Guard,
    // Touched when it starts, ends, is joined or named.
    pub(super) finished: Cell<bool>,
    /// Set when its `GreenThread` handle was dropped before it finished
    /// (nobody will join it).
    pub(super) detached: Cell<bool>,
    /// Set when its handle's `join` began waiting for it: when it then
    /// finishes, its slot is not kept for the handle, which takes the
    /// result at once.
    pub(super) joining: Cell<bool>,
    pub(super) name: Option<Arc<str>>,
    pub(super) joiners: RefCell<WaitList>,
    /// Its green-local values (`sylvan::green_local!`), made on first use
    /// (most green threads have none: a pointer keeps `Core` small).
    pub(super) locals: std::cell::OnceCell<Box<super::local::Locals>>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("killed", &self.killed.get())
            .field("finished", &self.finished.get())
            .finish_non_exhaustive()
    }
}

impl Core {
    #[inline]
    pub(crate) fn new(
        id: u64,
        name: Option<Arc<str>>,
        guard: (usize, usize),
        stack_size: usize,
        span: Option<Box<tracing::Span>>,
    ) -> Core {
        let sig_guard =
            crate::sys::signal::Guard::new(guard.0, guard.1, name.as_deref(), stack_size);
        Core {
            id,
            sig_guard,
            name,
            slot: Cell::new(ROOT_SLOT),
            parked: Cell::new(0),
            wake: Cell::new(Wake::None),
            killed: Cell::new(false),
            started: Cell::new(false),
            finished: Cell::new(false),
            detached: Cell::new(false),
            joining: Cell::new(false),
            unwinding: Cell::new(false),
            last_block: Cell::new(None),
            joiners: RefCell::new(WaitList::default()),
            coro: RefCell::new(None),
            yielder: Cell::new(std::ptr::null()),
            scopes: RefCell::new(Vec::new()),
            locals: std::cell::OnceCell::new(),
            span,
            rec: Cell::new(super::introspect::spare()),
        }
    }

    pub(crate) fn is_root(&self) -> bool {
        self.slot.get() == ROOT_SLOT
    }

    // What a green thread's handle (`GreenThread`, `Killer`) sees of it.

    /// Its process-wide id (0 for the root).
    #[inline]
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Its name, if it has one.
    #[inline]
    pub(crate) fn name(&self) -> Option<&Arc<str>> {
        self.name.as_ref()
    }

    /// Whether it has finished (or was killed before it started).
    #[inline]
    pub(crate) fn is_finished(&self) -> bool {
        self.finished.get()
    }

    /// Whether its entry function has begun.
    #[inline]
    pub(crate) fn has_started(&self) -> bool {
        self.started.get()
    }

    /// Its handle was dropped before it finished: nobody will join it.
    #[inline]
    pub(crate) fn detach(&self) {
        self.detached.set(true);
    }

    /// Its handle's `join` began waiting: when it finishes, its slot is not
    /// kept for the handle, which takes the result at once.
    #[inline]
    pub(crate) fn set_joining(&self) {
        self.joining.set(true);
    }

    /// Whether [`set_joining`](Self::set_joining) was called.
    #[inline]
    pub(crate) fn is_joining(&self) -> bool {
        self.joining.get()
    }

    /// Who waits for it to finish (woken all at once when it does).
    #[inline]
    pub(crate) fn joiners(&self) -> &RefCell<WaitList> {
        &self.joiners
    }

    /// Kills it (sticky; wakes it if parked). With no hub (a thread-local
    /// destructor after the hub's) it was leaked and never runs again:
    /// only the flag is set.
    pub(crate) fn kill(&self) {
        if self.finished.get() {
            return;
        }
        match super::hub::try_hub() {
            Some(hub) => hub.kill(self),
            None => self.killed.set(true),
        }
    }

    /// Its finished slot, kept for its handle, may be reused (the handle
    /// is going).
    #[inline]
    pub(crate) fn release(&self) {
        if let Some(hub) = super::hub::try_hub() {
            hub.release(self);
        }
    }

    /// Ends it now on the current stack (see `Killer::unwind_now`).
    pub(crate) fn unwind_now(&self) {
        if let Some(hub) = super::hub::try_hub() {
            hub.unwind_nested(self);
        }
    }

    /// The effective scoped deadline and the id of the scope that owns it.
    pub(crate) fn scope_deadline(&self) -> Option<(u64, u64)> {
        self.scopes.borrow().last().map(|s| (s.min, s.min_id))
    }

    /// Enters a scope with deadline `deadline`; returns its id.
    pub(crate) fn push_scope(&self, id: u64, deadline: u64) {
        let mut scopes = self.scopes.borrow_mut();
        let (min, min_id) = match scopes.last() {
            Some(outer) if outer.min <= deadline => (outer.min, outer.min_id),
            _ => (deadline, id),
        };
        scopes.push(Scope {
            id,
            min,
            min_id,
            fired: 0,
        });
    }

    /// Leaves the innermost scope (which must be `id`); returns whether its
    /// own deadline made a blocking call fail.
    pub(crate) fn pop_scope(&self, id: u64) -> bool {
        let mut scopes = self.scopes.borrow_mut();
        match scopes.pop() {
            Some(s) => {
                debug_assert_eq!(s.id, id, "scopes must be left in order");
                s.fired > 0
            }
            None => false,
        }
    }

    /// Records that scope `id`'s deadline cancelled a blocking call.
    pub(crate) fn mark_fired(&self, id: u64) {
        if let Some(s) = self
            .scopes
            .borrow_mut()
            .iter_mut()
            .rev()
            .find(|s| s.id == id)
        {
            s.fired += 1;
        }
    }

    /// Takes back one [`mark_fired`](Self::mark_fired): a blocking call got
    /// `TimedOut` from `park` but completed after all and did not return it.
    pub(crate) fn unmark_fired(&self, id: u64) {
        if let Some(s) = self
            .scopes
            .borrow_mut()
            .iter_mut()
            .rev()
            .find(|s| s.id == id)
        {
            s.fired = s.fired.saturating_sub(1);
        }
    }
}

/// A green thread as the hub sees it: its core plus a typed result slot.
pub(crate) trait Task {
    fn core(&self) -> &Core;
}

/// The result slot of a green thread, shared with its `GreenThread` handle.
///
/// The hub never drops a user value held here: the green thread's entry
/// function drops its own result (or panic payload) when the handle was
/// already dropped, and otherwise the handle takes it. So a destructor that
/// blocks never runs on the scheduler's path.
pub(crate) struct TaskCell<T> {
    pub(crate) core: Core,
    /// `None` until it finishes; stays `None` if it was killed before
    /// running, or if nobody could take it (`core.detached`).
    pub(crate) result: RefCell<Option<thread::Result<T>>>,
    /// Its links (`GreenThread::link`) not called yet, in the order given.
    /// An empty `VecDeque` allocates nothing: a spawn that is never linked
    /// pays no allocation for them. The entry function calls them (or, if
    /// it ends without an outcome, calls them with `Killed`), so the list
    /// is empty whenever the cell is dropped.
    pub(crate) links: RefCell<VecDeque<(crate::green::LinkId, LinkFn<T>)>>,
}

/// A callback given to `GreenThread::link`.
pub(crate) type LinkFn<T> = Box<dyn FnOnce(crate::green::Outcome<'_, T>)>;

impl<T> Task for TaskCell<T> {
    fn core(&self) -> &Core {
        &self.core
    }
}

/// Drops a panic payload, containing a panic of its own `Drop` (logged
/// and leaked): nothing may escape a green thread's entry function.
pub(crate) fn drop_payload(core: &Core, payload: Box<dyn Any + Send>) {
    if let Err(again) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(payload))) {
        log_panic(core, again.as_ref());
        std::mem::forget(again);
    }
}

/// Clears a context's green-locals, containing a panic of a value's
/// `Drop` (logged): nothing may escape a green thread's entry function.
pub(crate) fn clear_locals(core: &Core) {
    if let Some(locals) = core.locals.get() {
        if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| locals.clear())) {
            log_panic(core, p.as_ref());
            drop_payload(core, p);
        }
    }
}

/// Counts a panic of a green thread in its hub's published counters.
pub(crate) fn count_panic(_core: &Core) {
    if let Some(hub) = super::hub::try_hub() {
        let p = &hub.shared.intro.panicked;
        p.store(
            p.load(std::sync::atomic::Ordering::Relaxed) + 1,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

/// Logs a panic nobody will join.
///
/// Never panics: a subscriber that panics while logging is ignored, since
/// this runs where a panic must not escape (a green thread's entry).
pub(crate) fn log_panic(core: &Core, payload: &(dyn Any + Send)) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tracing::error!(
            green_thread = core.id,
            name = core.name.as_deref().unwrap_or("<unnamed>"),
            "green thread panicked and nobody joined it: {}",
            panic_message(payload)
        );
    }));
}

/// The message of a panic payload, when it has one.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}

#[cfg(test)]
mod layout {
    use super::Core;
    use std::mem::offset_of;

    #[test]
    fn the_fields_every_switch_and_park_touch_come_first_within_three_cache_lines() {
        // Up to the guard range of `sig_guard` (read for the dispatch's
        // stack headroom).
        let hot_end = offset_of!(Core, sig_guard) + 2 * size_of::<usize>();
        assert!(hot_end <= 3 * 64, "the hot fields end at byte {hot_end}");
        let hot = [
            offset_of!(Core, coro),
            offset_of!(Core, yielder),
            offset_of!(Core, slot),
            offset_of!(Core, wake),
            offset_of!(Core, killed),
            offset_of!(Core, started),
            offset_of!(Core, unwinding),
            offset_of!(Core, parked),
            offset_of!(Core, id),
            offset_of!(Core, last_block),
            offset_of!(Core, span),
            offset_of!(Core, rec),
            offset_of!(Core, scopes),
        ];
        let cold = [
            offset_of!(Core, finished),
            offset_of!(Core, detached),
            offset_of!(Core, joining),
            offset_of!(Core, name),
            offset_of!(Core, joiners),
            offset_of!(Core, locals),
        ];
        assert!(hot.iter().all(|&o| o < hot_end), "{hot:?} vs {hot_end}");
        assert!(cold.iter().all(|&o| o >= hot_end), "{cold:?} vs {hot_end}");
    }
}
