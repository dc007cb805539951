//! The hub: one per OS thread, created on first use.
//!
//! It owns the green threads of its thread, their stacks, a ready queue, the
//! timers, the clock and a `mio::Poll`. The root context (the thread's own
//! stack) drives it: whenever the root makes a blocking sylvan call, it runs
//! [`Hub::run_until_root_woken`], which resumes ready green threads, fires
//! timers and polls for events until the root's own wait is over. Green
//! threads run only then; they never migrate to another OS thread.
//!
//! Invariants:
//! - `current` is null while the root runs (or a green thread runs the
//!   loop's steps, see below), or points at the [`Core`] of the green
//!   thread being resumed, which the scheduler keeps alive (it holds an
//!   `Rc` to the task for the whole resume).
//! - The hub is created by [`hub`] and destroyed by the thread-local
//!   [`HubOwner`] at thread exit. Green threads are force-unwound only by an
//!   explicit [`Hub::shutdown`], made while the thread's other thread-locals
//!   are still alive (`sylvan::run`, each `Runtime` thread,
//!   `sylvan::shutdown`). A green thread still alive when `HubOwner` runs is
//!   leaked, never resumed nor unwound: thread-locals its frames borrow may
//!   already be destroyed (they are destroyed in reverse order of first
//!   use). Its stack stays mapped for ever (the leaked coroutine keeps the
//!   stack pool alive), so anything pinned on it stays valid. No `&Hub` is
//!   used after that, because leaked frames never run again.
//! - Known gap: thread-locals first used after the hub was created are
//!   destroyed *before* `HubOwner`, while the hub is still alive. If one of
//!   their destructors makes a blocking sylvan call (or yields) from the
//!   root, the hub runs, and a green thread parked inside `LocalKey::with`
//!   of a thread-local destroyed just before can resume. There is no
//!   portable way to see that thread-local destruction has begun; the crate
//!   docs tell users not to block in thread-local destructors on a thread
//!   with live green threads, and `run`/`Runtime` shut the hub down before
//!   that phase.
//! - User code never runs on the scheduler's path while the root is parked
//!   in it: results, panic payloads and closures are dropped on the green
//!   thread's own stack. `in_scheduler` marks that path; a blocking call
//!   made from it anyway fails instead of re-entering the loop.
//! - Direct switches: a green thread the root resumed that is about to
//!   suspend (it yields or parks) while the root is parked runs the loop's
//!   next steps itself, on its own stack ([`Hub::dispatch`]): it resumes
//!   the green threads ahead of it in the ready queue, each nested on its
//!   stack (they suspend back to it), until its own turn comes (a yield:
//!   those ahead of it have run, its slot never queued; a park: its slot,
//!   queued by a wake, is popped), and then goes on without ever having
//!   switched out. So a green thread handing
//!   off to another and back costs one switch each way instead of two (via
//!   the root). Only one green thread dispatches at a time (`dispatcher`);
//!   those it resumes suspend back to it. While it dispatches it may not
//!   suspend: it runs as the root, on the scheduler's path (`current` is
//!   the root, `in_scheduler` set), as the loop does on the root's stack. It
//!   shares the root loop's `budget` (so the loop takes its turns for I/O,
//!   timers and remote wakes as often), and it stops — suspending to the
//!   root after all — when the queue is empty, the budget is spent or the
//!   root was woken. It
//!   dispatches only with [`DISPATCH_HEADROOM`] of stack left.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::panic::Location;
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corosensei::CoroutineResult;

use super::clock::Clock;
use super::park::{Wake, WakeToken};
use super::stack::StackPool;
use super::task::{Core, ROOT_SLOT, Task};
use super::timer::Timers;
use super::watchdog;
use crate::sys::signal;

const WAKER_TOKEN: mio::Token = mio::Token(usize::MAX);
/// Green threads resumed between two non-blocking polls for I/O and timers.
const BUDGET: u32 = 128;
/// Stack a green thread needs left to run the loop on its own stack
/// ([`Hub::dispatch`]); with less, it suspends to the root instead. What
/// the loop puts on it (a resume, the bookkeeping of a green thread that
/// ends, the return of its stack) is well under this.
const DISPATCH_HEADROOM: usize = 16 * 1024;
/// Cache lines of a parked green thread's stack, from just below where it
/// parked up, prefetched before it is resumed: the frames of a socket
/// read's wait (the switch, the park, the wait, the read) take ~600 bytes.
const STACK_PREFETCH_LINES: usize = 12;

static NEXT_HUB_ID: AtomicU64 = AtomicU64::new(1);
static NEXT_GREEN_ID: AtomicU64 = AtomicU64::new(1);

/// Allocates a process-wide unique green-thread id (0 is the root's).
pub(crate) fn next_green_id() -> u64 {
    NEXT_GREEN_ID.fetch_add(1, Ordering::Relaxed)
}

/// The part of a hub other OS threads may touch: the remote wake queue and
/// what the watchdog reads.
pub(crate) struct HubShared {
    pub(super) id: u64,
    pub(super) thread_name: String,
    remote: Mutex<Vec<WakeToken>>,
    pending: AtomicBool,
    waker: mio::Waker,
    alive: AtomicBool,
    /// Incremented whenever the hub switches into a green thread.
    pub(super) switches: AtomicU64,
    /// Id of the green thread running now; 0 when none is.
    pub(super) running: AtomicU64,
    /// Last blocking point of the running green thread (a `&'static`).
    pub(super) location: AtomicPtr<Location<'static>>,
    /// Blocking threshold in nanoseconds; 0 turns detection off.
    pub(super) threshold_ns: AtomicU64,
    /// Names of named green threads, for the watchdog's message.
    pub(super) names: Mutex<HashMap<u64, Arc<str>>>,
    /// What the hub publishes for snapshots and dumps
    /// (`runtime::introspect`).
    pub(super) intro: super::introspect::Published,
    /// Run once when the hub's thread exits (after its green threads were
    /// leaked or ended), to fail what they would have completed.
    exit_hooks: Mutex<Vec<ExitHook>>,
}

type ExitHook = Box<dyn FnOnce() + Send>;

impl std::fmt::Debug for HubShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubShared")
            .field("id", &self.id)
            .field("thread_name", &self.thread_name)
            .field("alive", &self.alive)
            .finish_non_exhaustive()
    }
}

impl HubShared {
    /// Registers `hook` to run when the hub's thread exits. It runs in a
    /// thread-local destructor: it must not use sylvan or other
    /// thread-locals.
    pub(crate) fn on_exit(&self, hook: ExitHook) {
        self.exit_hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(hook);
    }

    /// Whether the hub still runs (its thread has not exited).
    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Queues a wake-up for a parked context and wakes the hub's poll.
    pub(crate) fn remote_wake(&self, token: WakeToken) {
        if !self.alive.load(Ordering::Acquire) {
            return;
        }
        self.remote
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(token);
        if !self.pending.swap(true, Ordering::AcqRel) {
            let _ = self.waker.wake();
        }
    }
}

pub(crate) struct Hub {
    tasks: RefCell<Vec<Option<Rc<dyn Task>>>>,
    /// Per slot, about where its green thread's stack pointer stood when it
    /// last parked: the loop prefetches those lines before it resumes it
    /// ([`pop_ready`](Self::pop_ready)). Only a hint (0: none).
    stack_hints: RefCell<Vec<usize>>,
    free_slots: RefCell<Vec<u32>>,
    ready: RefCell<VecDeque<u32>>,
    current: Cell<*const Core>,
    /// Set while the root context runs scheduler code (not user code).
    in_scheduler: Cell<bool>,
    /// The green thread running the loop on its own stack, or null
    /// ([`Hub::dispatch`]).
    dispatcher: Cell<*const Core>,
    /// Resumes left before the loop's next non-blocking turn; shared by
    /// the root's loop and a dispatching green thread.
    budget: Cell<u32>,
    pub(super) root: Core,
    pub(super) timers: RefCell<Timers>,
    pub(super) clock: Clock,
    poll: RefCell<mio::Poll>,
    events: RefCell<mio::Events>,
    remote_buf: RefCell<Vec<WakeToken>>,
    pub(super) shared: Arc<HubShared>,
    pub(super) stacks: Rc<StackPool>,
    seq: Cell<u64>,
    scope_seq: Cell<u64>,
    /// Operations in flight on other threads (tpool jobs) that will wake a
    /// context of this hub: they keep virtual time from jumping ahead.
    pub(super) remote_inflight: Cell<usize>,
    /// Contexts parked on I/O readiness.
    pub(super) io_waiters: Cell<usize>,
    /// Registered I/O sources.
    pub(super) io: super::io::IoTable,
    /// Slots of green threads that finished while their handle was still
    /// held: neither in `tasks` nor in `free_slots` (so their published
    /// record is not reused) until the handle goes
    /// ([`release`](Self::release)).
    held: Cell<usize>,
    /// When the current pass of the loop began (its poll returned, or the
    /// hub started), and the switch count then: for the scheduling-lag
    /// histogram.
    /// (Nanoseconds since the introspection epoch.)
    pass_start: Cell<Option<u64>>,
    pass_switches: Cell<u64>,
    /// The stack green threads share for short non-blocking work
    /// ([`on_hub_stack`](super::hub_stack::on_hub_stack)).
    pub(super) hub_stack: super::hub_stack::HubStack,
    _altstack: signal::AltStack,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("id", &self.shared.id)
            .finish_non_exhaustive()
    }
}

thread_local! {
    static HUB: Cell<*const Hub> = const { Cell::new(ptr::null()) };
    static OWNER: RefCell<Option<HubOwner>> = const { RefCell::new(None) };
}

/// Frees the thread's hub when the thread ends.
struct HubOwner(*const Hub);

impl Drop for HubOwner {
    fn drop(&mut self) {
        // SAFETY: the pointer came from Box::into_raw in `init` and is freed
        // only here, once. Until then it is valid.
        let hub = unsafe { &*self.0 };
        hub.leak_remaining();
        HUB.with(|h| h.set(ptr::null()));
        // SAFETY: every green thread is finished or leaked (never to run
        // again), so no reference into the hub is used after this; see the
        // module invariants.
        drop(unsafe { Box::from_raw(self.0 as *mut Hub) });
    }
}

/// The current thread's hub, created on first use.
///
/// # Panics
///
/// If the hub cannot be created (no epoll or eventfd: the process is out of
/// file descriptors), or when called while the thread's thread-locals are
/// being destroyed after its hub was.
#[inline]
pub(crate) fn hub() -> &'static Hub {
    let p = HUB.with(|h| h.get());
    if p.is_null() {
        return init();
    }
    // SAFETY: a non-null HUB points at the live hub of this thread (see the
    // module invariants); it is reset to null before the hub is freed.
    unsafe { &*p }
}

/// The current thread's hub, if it has one already.
///
/// `None` also in a thread-local destructor that runs after the hub's own:
/// wake paths use this, since with no hub there is nobody to wake.
#[inline]
pub(crate) fn try_hub() -> Option<&'static Hub> {
    let p = HUB.with(|h| h.get());
    // SAFETY: as in `hub`.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// Whether the running context may suspend now (see
/// [`Hub::cannot_suspend`]). Loops that wait by yielding use it to stop
/// instead of spinning where yielding does nothing.
pub(crate) fn may_suspend() -> bool {
    try_hub().is_some_and(|h| h.cannot_suspend(h.current_core()).is_none())
}

/// The current thread's hub, created on first use; `None` when the thread
/// is exiting and its hub was already destroyed (a blocking call made from
/// a later thread-local destructor), where blocking calls fail instead.
#[inline]
pub(crate) fn hub_unless_exiting() -> Option<&'static Hub> {
    match try_hub() {
        Some(h) => Some(h),
        None => try_init().ok(),
    }
}

#[cold]
fn init() -> &'static Hub {
    match try_init() {
        Ok(h) => h,
        Err(e) => panic!("sylvan: {e}"),
    }
}

#[cold]
fn try_init() -> std::io::Result<&'static Hub> {
    let hub = match Hub::new() {
        Ok(h) => Box::new(h),
        Err(e) => {
            return Err(std::io::Error::new(
                e.kind(),
                format!("cannot create this thread's hub: {e}"),
            ));
        }
    };
    let p: *const Hub = Box::into_raw(hub);
    let registered = OWNER
        .try_with(|o| *o.borrow_mut() = Some(HubOwner(p)))
        .is_ok();
    if !registered {
        // SAFETY: `p` was just created by Box::into_raw and is not shared.
        drop(unsafe { Box::from_raw(p as *mut Hub) });
        return Err(std::io::Error::other(
            "this thread is exiting and its hub was already destroyed",
        ));
    }
    HUB.with(|h| h.set(p));
    // SAFETY: `p` is valid until HubOwner drops it at thread exit.
    let hub = unsafe { &*p };
    watchdog::register(&hub.shared);
    hub.root
        .rec
        .set(super::introspect::root_record(&hub.shared));
    super::introspect::register(&hub.shared);
    crate::debug::dump_from_env();
    Ok(hub)
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

impl Hub {
    fn new() -> std::io::Result<Hub> {
        signal::install_handler();
        let altstack = signal::ensure_altstack()?;
        let poll = mio::Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER_TOKEN)?;
        let threshold = watchdog::default_threshold();
        let shared = Arc::new(HubShared {
            id: NEXT_HUB_ID.fetch_add(1, Ordering::Relaxed),
            thread_name: std::thread::current()
                .name()
                .unwrap_or("<unnamed>")
                .to_string(),
            remote: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            waker,
            alive: AtomicBool::new(true),
            switches: AtomicU64::new(0),
            running: AtomicU64::new(0),
            location: AtomicPtr::new(ptr::null_mut()),
            threshold_ns: AtomicU64::new(threshold.map_or(0, nanos)),
            names: Mutex::new(HashMap::new()),
            intro: super::introspect::Published::new(),
            exit_hooks: Mutex::new(Vec::new()),
        });
        let started = super::introspect::now_ns();
        shared.intro.pass_started_ns(started);
        Ok(Hub {
            tasks: RefCell::new(Vec::new()),
            stack_hints: RefCell::new(Vec::new()),
            free_slots: RefCell::new(Vec::new()),
            ready: RefCell::new(VecDeque::new()),
            current: Cell::new(ptr::null()),
            in_scheduler: Cell::new(false),
            dispatcher: Cell::new(ptr::null()),
            budget: Cell::new(BUDGET),
            root: Core::new(0, None, (0, 0), 0, None),
            timers: RefCell::new(Timers::default()),
            clock: Clock::new(),
            poll: RefCell::new(poll),
            events: RefCell::new(mio::Events::with_capacity(1024)),
            remote_buf: RefCell::new(Vec::new()),
            shared,
            stacks: Rc::new(StackPool::new()),
            seq: Cell::new(0),
            scope_seq: Cell::new(0),
            remote_inflight: Cell::new(0),
            io_waiters: Cell::new(0),
            io: super::io::IoTable::default(),
            held: Cell::new(0),
            pass_start: Cell::new(Some(started)),
            pass_switches: Cell::new(0),
            hub_stack: Default::default(),
            _altstack: altstack,
        })
    }

    /// The context running now: a green thread, or the root.
    #[inline]
    pub(crate) fn current_core(&self) -> &Core {
        let p = self.current.get();
        if p.is_null() {
            &self.root
        } else {
            // SAFETY: see the module invariants: the scheduler holds an Rc to
            // this task while it runs.
            unsafe { &*p }
        }
    }

    pub(crate) fn next_seq(&self) -> u64 {
        let s = self.seq.get() + 1;
        self.seq.set(s);
        s
    }

    pub(crate) fn next_scope_id(&self) -> u64 {
        let s = self.scope_seq.get() + 1;
        self.scope_seq.set(s);
        s
    }

    /// The mio registry, for I/O sources.
    pub(crate) fn with_registry<R>(&self, f: impl FnOnce(&mio::Registry) -> R) -> R {
        f(self.poll.borrow().registry())
    }

    /// Publishes the number of registered I/O sources.
    pub(crate) fn publish_io_sources(&self) {
        self.shared
            .intro
            .io_sources
            .store(self.io.len() as u64, Ordering::Relaxed);
    }

    /// Number of green threads alive on this hub (finished ones whose
    /// handle is still held not counted).
    pub(crate) fn live_tasks(&self) -> usize {
        self.tasks.borrow().len() - self.free_slots.borrow().len() - self.held.get()
    }

    /// Adds a new green thread and queues it to run. Its spawn site, for
    /// introspection, is the caller's (`spawn` and the `Builder` methods
    /// on the way here are `#[track_caller]` too).
    #[track_caller]
    pub(crate) fn insert_task(&self, task: Rc<dyn Task>) {
        let at = Location::caller();
        let slot = {
            let mut tasks = self.tasks.borrow_mut();
            match self.free_slots.borrow_mut().pop() {
                Some(s) => {
                    tasks[s as usize] = Some(task.clone());
                    // (Its last owner's hint; it has not parked yet.)
                    self.stack_hints.borrow_mut()[s as usize] = 0;
                    s
                }
                None => {
                    tasks.push(Some(task.clone()));
                    self.stack_hints.borrow_mut().push(0);
                    (tasks.len() - 1) as u32
                }
            }
        };
        let core = task.core();
        core.slot.set(slot);
        core.rec.set(
            self.shared
                .intro
                .spawned(slot, core.id, self.current_core().id, at),
        );
        if let Some(name) = &core.name {
            self.shared
                .names
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(core.id, name.clone());
        }
        self.ready.borrow_mut().push_back(slot);
    }

    /// Wakes a parked context if `token` is still its current park.
    pub(crate) fn wake(&self, token: WakeToken, reason: Wake) -> bool {
        if token.slot == ROOT_SLOT {
            return wake_core(&self.root, token.seq, reason);
        }
        let woken = {
            let tasks = self.tasks.borrow();
            match tasks.get(token.slot as usize) {
                Some(Some(t)) => wake_core(t.core(), token.seq, reason),
                _ => false,
            }
        };
        if woken {
            self.ready.borrow_mut().push_back(token.slot);
        }
        woken
    }

    /// Whether `token` is the current park of a context.
    pub(crate) fn is_parked(&self, token: WakeToken) -> bool {
        if token.slot == ROOT_SLOT {
            return self.root.parked.get() == token.seq;
        }
        matches!(self.tasks.borrow().get(token.slot as usize), Some(Some(t)) if t.core().parked.get() == token.seq)
    }

    /// Kills a context: sticky, and wakes it if it is parked.
    pub(crate) fn kill(&self, core: &Core) {
        if !core.killed.replace(true) {
            let k = &self.shared.intro.killed;
            k.store(k.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
        let seq = core.parked.get();
        if seq != 0 {
            self.wake(
                WakeToken {
                    slot: core.slot.get(),
                    seq,
                },
                Wake::Killed,
            );
        }
    }

    /// Why the current context may not suspend now, if it may not: it is
    /// unwinding (a panic, or the hub's forced unwind), it is a green thread
    /// whose entry function has not run (its closure being dropped unrun),
    /// or it is the root running the scheduler's own code.
    #[inline]
    pub(crate) fn cannot_suspend(&self, core: &Core) -> Option<&'static str> {
        if self.may_suspend_unless_cancelled(core)
            && !core.unwinding.get()
            && !std::thread::panicking()
        {
            return None;
        }
        self.why_not_suspend(core)
    }

    #[cold]
    fn why_not_suspend(&self, core: &Core) -> Option<&'static str> {
        if std::thread::panicking() || core.unwinding.get() {
            Some("the context is unwinding")
        } else if core.is_root() {
            self.in_scheduler.get().then_some(
                "it was made from the scheduler's own path (a destructor run by the hub)",
            )
        } else if core.yielder.get().is_null() {
            Some("the green thread has not started")
        } else {
            None
        }
    }

    /// [`cannot_suspend`](Self::cannot_suspend)'s cheap part, for a
    /// context known to be neither killed nor panicking (`park` checked).
    #[inline]
    pub(crate) fn may_suspend_unless_cancelled(&self, core: &Core) -> bool {
        if core.is_root() {
            !self.in_scheduler.get()
        } else {
            !core.yielder.get().is_null()
        }
    }

    /// Suspends the current context until it is woken (park's second half).
    ///
    /// The caller (`park`) has checked [`cannot_suspend`](Self::cannot_suspend).
    ///
    /// Inlined into `park` for the reason given at
    /// [`yield_current`](Self::yield_current): one frame fewer to return
    /// through, mispredicted, after each switch back in.
    #[inline(always)]
    pub(crate) fn suspend_current(&self, core: &Core) {
        if core.is_root() {
            self.run_until_root_woken();
        } else {
            if self.run_others(core) {
                // Woken (its slot was queued) while it ran the others.
                return;
            }
            let y = core.yielder.get();
            debug_assert!(!y.is_null(), "park checked cannot_suspend");
            self.note_stack(core);
            // SAFETY: the yielder pointer was stored by the coroutine's entry
            // function and lives on its stack, which is live while the
            // coroutine runs (and we are running inside it now); park checked
            // that it is not null (the entry function has run).
            unsafe { (*y).suspend(()) };
        }
    }

    /// Lets other green threads run once, then continues. Returns at once,
    /// without running anything, where suspending is not allowed (see
    /// [`cannot_suspend`](Self::cannot_suspend)).
    ///
    /// Where it may run the loop itself ([`may_dispatch`](Self::may_dispatch))
    /// its slot is never queued: it runs the green threads ahead of it
    /// (those ready now) and goes on, as if its slot had come up, unless
    /// the loop must stop first, and then its slot is queued where its turn
    /// was. With none ready, that is no switch at all.
    ///
    /// Always inlined, down to the switch itself, so that a green thread
    /// calling `yield_now` has no frame of sylvan's to return through once
    /// it is switched back in. After a switch of stacks the CPU's return
    /// predictions belong to the other stack: each return the resumed
    /// green thread makes into a frame from before the switch is
    /// mispredicted, and so are as many of its resumer's returns once it
    /// is switched back to. With the switch in the caller's own frame a
    /// yield round trip returns through nothing mispredicted (callgrind:
    /// 374 → 337 instructions; about 0.6× the wall time per round trip of
    /// the build before, measured in the same runs).
    #[inline(always)]
    pub(crate) fn yield_current(&self) {
        let core = self.current_core();
        if core.is_root() {
            return self.yield_root();
        }
        let y = core.yielder.get();
        if y.is_null() || core.unwinding.get() || std::thread::panicking() {
            // See `cannot_suspend`.
            return;
        }
        // Whether its slot is queued already (by `dispatch`, where its
        // turn was).
        let mut queued = false;
        if self.may_dispatch(core) {
            let ahead = self.ready.borrow().len();
            if ahead == 0 {
                // Nothing else to run: its own turn, unless the loop must
                // poll (its budget spent) or the root was woken.
                let budget = self.budget.get();
                if budget != 0 {
                    self.budget.set(budget - 1);
                    self.publish_running(core);
                    return;
                }
            } else if self.dispatch(core, Some(ahead)) {
                return;
            } else {
                queued = true;
            }
        }
        if !queued {
            self.ready.borrow_mut().push_back(core.slot.get());
        }
        // SAFETY: as in `suspend_current`; checked not null above.
        unsafe { (*y).suspend(()) };
    }

    /// Whether the running green thread `core`, about to suspend, may run
    /// the loop's next steps on its own stack instead
    /// ([`dispatch`](Self::dispatch)): no other green thread does so now,
    /// the root is parked in the loop (not in `yield_root`, which runs each
    /// ready green thread once), and enough of its stack is left.
    #[inline]
    fn may_dispatch(&self, core: &Core) -> bool {
        if !self.dispatcher.get().is_null() || self.root.parked.get() == 0 {
            return false;
        }
        // The real stack pointer: inlined into the caller's frame, a
        // local's address could lie above that frame's buffers.
        let sp = crate::sys::mem::stack_pointer();
        sp.saturating_sub(core.sig_guard.stack_floor()) >= DISPATCH_HEADROOM
    }

    /// Lets the running green thread `core`, about to park, run the loop's
    /// next steps on its own stack where it may and something is ready.
    /// True: it was woken meanwhile (its slot came up), so it goes on
    /// without suspending.
    #[inline]
    fn run_others(&self, core: &Core) -> bool {
        if self.ready.borrow().is_empty() || !self.may_dispatch(core) {
            return false;
        }
        self.dispatch(core, None)
    }

    /// The root loop's steps run by the green thread `core` on its own
    /// stack: pops ready slots and resumes them (nested here, they suspend
    /// back to it) until its own turn comes — then returns true and `core`
    /// goes on — or until the queue is empty, the budget between polls is
    /// spent or the root was woken: then returns false and `core` suspends
    /// to the root, which goes on from there.
    ///
    /// Its turn: for a yield, `ahead` is the number of slots queued ahead
    /// of it (its own is not queued); it comes once they have run, and if
    /// the loop stops first its slot is queued where its turn was. For a
    /// park (`ahead` is `None`), it is its slot popped (it was woken).
    #[inline(never)]
    fn dispatch(&self, core: &Core, ahead: Option<usize>) -> bool {
        let me = core.slot.get();
        let d = Dispatching::enter(self, core);
        // Span subscribers (user code) run in here. A panic from one goes
        // on to `core` (unwinding its yield or park), but only once its
        // slot is off the queue, where it would later be popped as a
        // wake-up that never happened. Its span is exited meanwhile.
        let exited = Cell::new(false);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            exit_span(core);
            exited.set(true);
            let mine = self.run_ready(core, me, ahead);
            exited.set(false);
            enter_span(core);
            mine
        }));
        drop(d);
        match r {
            Ok(mine) => mine,
            Err(p) => {
                self.ready.borrow_mut().retain(|&s| s != me);
                if exited.get() {
                    enter_span(core);
                }
                std::panic::resume_unwind(p)
            }
        }
    }

    /// [`dispatch`](Self::dispatch)'s loop.
    #[inline]
    fn run_ready(&self, core: &Core, me: u32, mut ahead: Option<usize>) -> bool {
        loop {
            let budget = self.budget.get();
            if budget == 0 || self.root.parked.get() == 0 {
                if let Some(k) = ahead {
                    // Its turn comes after the `k` still ahead of it.
                    let mut ready = self.ready.borrow_mut();
                    let at = k.min(ready.len());
                    ready.insert(at, me);
                }
                return false;
            }
            let slot = match ahead {
                Some(0) => None,
                _ => self.pop_ready(),
            };
            let Some(slot) = slot else {
                if ahead.is_some() {
                    // Those ahead of it have run (or, should the queue
                    // have been emptied meanwhile, are gone): its turn.
                    self.budget.set(budget - 1);
                    self.publish_running(core);
                    return true;
                }
                return false;
            };
            self.budget.set(budget - 1);
            match &mut ahead {
                Some(k) => *k -= 1,
                None if slot == me => {
                    // It goes on as if the loop had resumed it.
                    self.publish_running(core);
                    return true;
                }
                None => {}
            }
            self.resume(slot);
            // The overflow handler's record: this is still `core`'s stack.
            set_guard(core);
        }
    }

    /// The root's yield: one turn of the loop, then every green thread
    /// ready now runs once.
    #[inline(never)]
    fn yield_root(&self) {
        if self.cannot_suspend(&self.root).is_some() {
            return;
        }
        let _sched = SchedulerPath::enter(self);
        self.turn(false);
        self.budget.set(BUDGET);
        let n = self.ready.borrow().len();
        for _ in 0..n {
            let Some(slot) = self.ready.borrow_mut().pop_front() else {
                break;
            };
            self.resume(slot);
        }
    }

    /// The scheduler loop, run on the root's stack while the root is parked.
    fn run_until_root_woken(&self) {
        let _sched = SchedulerPath::enter(self);
        loop {
            while self.root.parked.get() != 0 {
                // The budget is shared with a green thread that dispatches
                // ([`dispatch`](Self::dispatch)), which may spend it all.
                if self.budget.get() == 0 {
                    self.turn(false);
                    self.budget.set(BUDGET);
                }
                let Some(slot) = self.pop_ready() else {
                    break;
                };
                self.budget.set(self.budget.get() - 1);
                self.resume(slot);
            }
            if self.root.parked.get() == 0 {
                return;
            }
            self.turn(true);
            self.budget.set(BUDGET);
        }
    }

    /// Switches into the green thread of `slot` until it suspends or ends.
    ///
    /// A green thread killed before it started is resumed too: its entry
    /// function sees the kill and drops its closure unrun, on its own stack,
    /// where a destructor that blocks fails instead of re-entering the
    /// scheduler.
    fn resume(&self, slot: u32) {
        let Some(task) = self.tasks.borrow().get(slot as usize).cloned().flatten() else {
            return;
        };
        let core = task.core();
        let mut coro = core.coro.borrow_mut();
        let Some(c) = coro.as_mut() else {
            return;
        };
        core.started.set(true);
        // The span's subscriber code runs as the root (on the scheduler's
        // path, where blocking fails and yielding returns), never while
        // `current` names the green thread.
        enter_span(core);
        let switched = Switched::into(self, core);
        self.publish_running(core);
        let shared = &self.shared;
        // (`in_scheduler` stays set: it is only read while the root runs.)
        // The entry function lets no panic out; should one escape all the
        // same, the green thread is over: finish it (its joiners wake)
        // rather than leave it unfinished with a dead coroutine.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.resume(())));
        shared.running.store(0, Ordering::Relaxed);
        drop(switched);
        exit_span(core);
        let done = match r {
            Ok(CoroutineResult::Return(())) => true,
            Ok(CoroutineResult::Yield(())) => false,
            Err(p) => {
                super::task::count_panic(core);
                super::task::log_panic(core, p.as_ref());
                super::task::drop_payload(core, p);
                true
            }
        };
        if done {
            coro.take();
            drop(coro);
            self.finish(slot, &task);
        }
    }

    /// Pops the next ready slot, and prefetches the top of the stack of the
    /// one after it, which runs next. With many green threads each finds
    /// its stack cold, and a switch into it then stalls on one cache miss
    /// after another: after a switch of stacks the CPU cannot predict the
    /// returns, so each frame it returns through waits for its return
    /// address to load before the next one's load can start. Prefetched
    /// one green thread ahead, the lines arrive while the one before runs.
    #[inline(always)]
    fn pop_ready(&self) -> Option<u32> {
        let mut ready = self.ready.borrow_mut();
        let slot = ready.pop_front();
        if let Some(&next) = ready.front() {
            let sp = self
                .stack_hints
                .borrow()
                .get(next as usize)
                .copied()
                .unwrap_or(0);
            if sp != 0 {
                crate::sys::mem::prefetch::<STACK_PREFETCH_LINES>(sp.wrapping_sub(64));
            }
        }
        slot
    }

    /// Notes about where the stack pointer of `core`, about to park,
    /// stands, for [`pop_ready`](Self::pop_ready).
    #[inline]
    fn note_stack(&self, core: &Core) {
        let sp = crate::sys::mem::stack_pointer();
        if let Some(h) = self
            .stack_hints
            .borrow_mut()
            .get_mut(core.slot.get() as usize)
        {
            *h = sp;
        }
    }

    /// Tells the watchdog that `core` runs from now on: its id, its last
    /// blocking point, and one more switch.
    #[inline]
    fn publish_running(&self, core: &Core) {
        let shared = &self.shared;
        shared.running.store(core.id, Ordering::Relaxed);
        shared.location.store(
            core.last_block
                .get()
                .map_or(ptr::null_mut(), |l| l as *const _ as *mut _),
            Ordering::Relaxed,
        );
        shared.switches.store(
            shared.switches.load(Ordering::Relaxed) + 1,
            Ordering::Relaxed,
        );
    }

    /// Bookkeeping once a green thread has returned: no user code runs here
    /// (its result was stored or dropped by its entry function).
    fn finish(&self, slot: u32, task: &Rc<dyn Task>) {
        self.tasks.borrow_mut()[slot as usize] = None;
        self.finished(slot, task.core());
    }

    /// A green thread out of the table (in `slot`) has ended. While its
    /// handle is held (and not waiting in `join`), its slot (and so its
    /// published record, which says it finished) stays out of `free_slots`
    /// until the handle is joined or dropped ([`release`](Self::release)):
    /// snapshots list it as finished and not joined.
    fn finished(&self, slot: u32, core: &Core) {
        core.finished.set(true);
        let held = !core.detached.get() && !core.joining.get();
        self.shared.intro.finished(core.rec.get(), held);
        if held {
            self.held.set(self.held.get() + 1);
        } else {
            self.free_slots.borrow_mut().push(slot);
            if core.name.is_some() {
                self.forget_name(core);
            }
        }
        core.joiners.borrow_mut().notify_all(self);
    }

    #[cold]
    fn forget_name(&self, core: &Core) {
        self.shared
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&core.id);
    }

    /// The handle of a green thread that finished on this hub, not while
    /// that handle was in `join`, is going: frees the slot
    /// [`finished`](Self::finished) kept for it. Called once per such
    /// handle (its drop), on the hub it finished on: a handle outlives its
    /// hub only past the hub's thread-local destructor, where there is no
    /// hub any more.
    #[inline]
    pub(crate) fn release(&self, core: &Core) {
        self.free_slots.borrow_mut().push(core.slot.get());
        self.held.set(self.held.get() - 1);
        self.shared.intro.released(core.rec.get());
        if core.name.is_some() {
            self.forget_name(core);
        }
    }

    /// One turn of the event loop: poll I/O (blocking only if `may_block`
    /// and nothing is ready), handle remote wakes, fire due timers.
    ///
    /// The clock is read once before the poll and, if the poll may wait,
    /// once after it: that reading (or, for a poll that did not wait, the
    /// first) serves the pass's start and the timers fired: a timer that
    /// came due after the first reading of a turn whose poll did not wait
    /// fires at the next turn, a pass late, never early.
    pub(crate) fn turn(&self, may_block: bool) {
        let idle = may_block && self.ready.borrow().is_empty() && self.root.parked.get() != 0;
        let next_timer = self.timers.borrow().next_deadline();
        let paused = self.clock.is_paused();
        let auto_advance = paused && self.remote_inflight.get() == 0;
        let mono = crate::sys::time::monotonic_ns();
        let timeout = if !idle {
            Some(Duration::ZERO)
        } else {
            match next_timer {
                Some(_) if auto_advance => Some(Duration::ZERO),
                Some(t) if !paused => Some(Duration::from_nanos(
                    t.saturating_sub(self.clock.now_at_mono(mono)),
                )),
                _ => None,
            }
        };
        if timeout.is_none() {
            self.check_deadlock();
        }
        self.publish_turn(mono, next_timer, paused);
        if idle && timeout != Some(Duration::ZERO) {
            self.stacks.trim(super::stack::WARM_SLOTS);
        }
        // With nothing parked on I/O, a poll that may not wait could only
        // record readiness for later (edge-triggered events stay queued in
        // the kernel until a poll takes them, and a green thread that then
        // parks on one is a waiter, so the next turn polls) or report the
        // waker, whose wakes are taken from `pending` either way: skip its
        // system call, as Go's scheduler skips its non-blocking netpoll
        // when no goroutine waits on the network. Green threads that only
        // yield or compute then pay no poll.
        let got_events = if timeout == Some(Duration::ZERO) && self.io_waiters.get() == 0 {
            self.take_remote_wakes()
        } else {
            self.poll_events(timeout)
        };
        // A poll that did not wait began the pass when the turn began.
        let mono = if timeout == Some(Duration::ZERO) {
            mono
        } else {
            crate::sys::time::monotonic_ns()
        };
        let start = mono.saturating_sub(super::introspect::epoch_ns());
        self.pass_start.set(Some(start));
        self.shared.intro.pass_started_ns(start);
        if idle && auto_advance && !got_events && self.ready.borrow().is_empty() {
            if let Some(t) = next_timer {
                self.clock.advance_to(t);
            }
        }
        self.fire_timers(mono);
        // Again after firing: a reader during the pass sees the timers left.
        let timers = self.timers.borrow();
        self.shared
            .intro
            .timers(timers.len(), timers.next_deadline());
    }

    /// Publishes the timers and the clock, and counts the scheduling lag of
    /// the pass that ends here: the time from the poll that began it to now,
    /// when it ran green threads (the longest any green thread made ready
    /// by that poll waited to run). A pass still going on is published by
    /// its start ([`Published::pass_started_ns`](super::introspect::Published::pass_started_ns)),
    /// so readers see its lag grow while a green thread runs without
    /// yielding.
    /// `mono` is the turn's `CLOCK_MONOTONIC` reading.
    fn publish_turn(&self, mono: u64, next_timer: Option<u64>, paused: bool) {
        let now = mono.saturating_sub(super::introspect::epoch_ns());
        let switches = self.shared.switches.load(Ordering::Relaxed);
        if let Some(start) = self.pass_start.get() {
            if switches != self.pass_switches.get() {
                self.shared
                    .intro
                    .record_lag(Duration::from_nanos(now.saturating_sub(start)));
            }
        }
        self.pass_switches.set(switches);
        self.shared.intro.turn(
            now,
            self.timers.borrow().len(),
            next_timer,
            self.clock.now_at_mono(mono),
            paused,
        );
    }

    fn poll_events(&self, timeout: Option<Duration>) -> bool {
        let mut events = self.events.borrow_mut();
        let r = self.poll.borrow_mut().poll(&mut events, timeout);
        if let Err(e) = r {
            if e.kind() != std::io::ErrorKind::Interrupted {
                tracing::error!("sylvan hub {}: poll failed: {e}", self.shared.id);
            }
            return false;
        }
        let mut any = false;
        for ev in events.iter() {
            any = true;
            if ev.token() != WAKER_TOKEN {
                super::io::dispatch(self, ev);
            }
        }
        drop(events);
        self.take_remote_wakes() || any
    }

    /// Wakes the contexts other threads asked to wake since the last call;
    /// whether there were any.
    fn take_remote_wakes(&self) -> bool {
        if !self.shared.pending.swap(false, Ordering::AcqRel) {
            return false;
        }
        let mut buf = self.remote_buf.borrow_mut();
        std::mem::swap(
            &mut *buf,
            &mut self.shared.remote.lock().unwrap_or_else(|e| e.into_inner()),
        );
        for t in buf.drain(..) {
            self.wake(t, Wake::Notified);
        }
        true
    }

    /// Wakes the green threads whose timers are due by the hub clock when
    /// `CLOCK_MONOTONIC` read `mono` (the paused time while paused).
    fn fire_timers(&self, mono: u64) {
        let now = self.clock.now_at_mono(mono);
        loop {
            let t = self.timers.borrow_mut().pop_expired(now);
            match t {
                Some(t) => {
                    self.wake(t, Wake::Timer);
                }
                None => break,
            }
        }
    }

    /// The root is about to wait with no timeout: make sure something can
    /// still wake it, or say clearly that nothing can.
    fn check_deadlock(&self) {
        let nothing_can_wake = self.ready.borrow().is_empty()
            && self.timers.borrow().len() == 0
            && self.remote_inflight.get() == 0
            && self.io_waiters.get() == 0
            && Arc::strong_count(&self.shared) == 1
            && !self.shared.pending.load(Ordering::Acquire);
        if nothing_can_wake {
            let at = self
                .root
                .last_block
                .get()
                .map_or("an unknown place".to_string(), |l| l.to_string());
            panic!(
                "sylvan: deadlock: the root context is blocked at {at}, and no green thread, \
                 timer, I/O source or other thread can ever wake it"
            );
        }
    }

    /// Ends a green thread's coroutine that was taken out of its core for
    /// shutdown: one never started runs its entry function (which sees the
    /// kill and drops its closure on its own stack); a suspended one is
    /// force-unwound by its drop. Runs as that green thread: `current`, its
    /// span and the overflow guard are switched to it and back.
    fn unwind_coroutine(&self, core: &Core, mut coro: Option<super::task::Coro>) {
        let Some(c) = coro.as_mut() else {
            return;
        };
        enter_span(core);
        let switched = Switched::into(self, core);
        if !c.started() {
            core.started.set(true);
            let _ = c.resume(());
        }
        drop(coro);
        drop(switched);
        exit_span(core);
    }

    /// Kills and force-unwinds one green thread now, nested on the running
    /// context's stack (a scope owner unwinding its children at shutdown,
    /// before its own frames go). The hub's bookkeeping (finished, joiners)
    /// is done when its shutdown reaches that green thread.
    pub(crate) fn unwind_nested(&self, core: &Core) {
        if core.finished.get() {
            return;
        }
        core.killed.set(true);
        core.unwinding.set(true);
        let coro = match core.coro.try_borrow_mut() {
            Ok(mut c) => c.take(),
            // Being resumed or unwound further up this very stack: it is
            // ending already.
            Err(_) => None,
        };
        self.unwind_coroutine(core, coro);
    }

    /// Kills and force-unwinds every green thread of this hub, so their
    /// destructors run now, while the thread's thread-locals are alive.
    /// Green threads spawned by those destructors are unwound too. The hub
    /// stays usable afterwards.
    ///
    /// Must be called from the root context, outside the scheduler.
    pub(crate) fn shutdown(&self) {
        debug_assert!(self.current.get().is_null() && !self.in_scheduler.get());
        let _sched = SchedulerPath::enter(self);
        loop {
            let batch: Vec<(u32, Rc<dyn Task>)> = self
                .tasks
                .borrow_mut()
                .iter_mut()
                .enumerate()
                .filter_map(|(i, t)| Some((i as u32, t.take()?)))
                .collect();
            if batch.is_empty() {
                break;
            }
            self.ready.borrow_mut().clear();
            for (slot, task) in batch {
                let core = task.core();
                core.killed.set(true);
                core.unwinding.set(true);
                let coro = core.coro.borrow_mut().take();
                self.unwind_coroutine(core, coro);
                self.finished(slot, core);
            }
        }
        self.ready.borrow_mut().clear();
        *self.timers.borrow_mut() = Timers::default();
    }

    /// At thread exit: leaks every green thread still alive (never resumed,
    /// never unwound, its stack never unmapped), since thread-locals its
    /// frames borrow may already be destroyed. Says how many and where.
    fn leak_remaining(&self) {
        self.shared.alive.store(false, Ordering::Release);
        watchdog::unregister(self.shared.id);
        let left: Vec<Rc<dyn Task>> = self
            .tasks
            .borrow_mut()
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        if !left.is_empty() {
            let mut places: Vec<String> = left
                .iter()
                .take(8)
                .map(|t| {
                    let c = t.core();
                    format!(
                        "{} ({}) at {}",
                        c.id,
                        c.name.as_deref().unwrap_or("<unnamed>"),
                        c.last_block
                            .get()
                            .map_or("its start".to_string(), |l| l.to_string())
                    )
                })
                .collect();
            if left.len() > places.len() {
                places.push(format!("and {} more", left.len() - places.len()));
            }
            // Logged by the watchdog thread: this runs in a thread-local
            // destructor, where a subscriber's own thread-locals (its
            // formatting buffer, its span stack) may be gone already.
            watchdog::log_later(watchdog::Deferred::Leaked {
                hub: self.shared.id,
                thread: self.shared.thread_name.clone(),
                count: left.len(),
                parked: places.join(", "),
            });
            for t in left {
                // The coroutine inside keeps its stack, and the stack keeps
                // the stack pool's mappings: all of it stays valid for ever.
                std::mem::forget(t);
            }
        }
        self.ready.borrow_mut().clear();
        // Timer entries are plain tokens: dropping them runs no user code.
        *self.timers.borrow_mut() = Timers::default();
        let hooks = std::mem::take(
            &mut *self
                .shared
                .exit_hooks
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for hook in hooks {
            hook();
        }
    }
}

/// `current` (and the overflow handler's record of the running stack) set
/// to one green thread for as long as it lives; the previous context is
/// restored on drop, unwinding included, so no panic leaves the hub
/// believing a green thread runs while the root does.
struct Switched<'a> {
    hub: &'a Hub,
    prev: *const Core,
}

impl<'a> Switched<'a> {
    fn into(hub: &'a Hub, core: &Core) -> Switched<'a> {
        let prev = hub.current.replace(core as *const Core);
        set_guard(core);
        Switched { hub, prev }
    }
}

impl Drop for Switched<'_> {
    fn drop(&mut self) {
        self.hub.current.set(self.prev);
        if self.prev.is_null() {
            signal::clear_current();
        } else {
            // SAFETY: `prev` was the running context when this guard was
            // made, nested inside its run, so it is still alive (see the
            // module invariants on `current`).
            set_guard(unsafe { &*self.prev });
        }
    }
}

#[inline]
fn set_guard(core: &Core) {
    // SAFETY: `core` is the context now running: it stays alive and in
    // place while it runs (its name, which the record points to, is kept
    // in `core.name`), and switching out of it (`Switched`'s drop) sets
    // the previous context's record or clears it before `core` can go.
    unsafe { signal::set_current(&core.sig_guard) };
}

/// A green thread running the loop on its own stack ([`Hub::dispatch`]),
/// for as long as it lives. The hub names it as the dispatcher, so the
/// green threads it resumes suspend back to it rather than dispatch in
/// turn. Meanwhile it runs as the root on the scheduler's path, exactly as
/// the loop does on the root's stack: `current` is the root and
/// `in_scheduler` is set. So the code the loop runs (span subscribers,
/// bookkeeping of a green thread that ended) never runs while `current`
/// names a green thread, a blocking call from it fails and a yield returns
/// at once. The overflow handler's record stays the green thread's: the
/// loop runs on its stack. Entering and dropping it run no user code; the
/// drop undoes it all, unwinding included.
struct Dispatching<'a> {
    hub: &'a Hub,
    core: &'a Core,
    was_in_scheduler: bool,
}

impl<'a> Dispatching<'a> {
    fn enter(hub: &'a Hub, core: &'a Core) -> Dispatching<'a> {
        debug_assert!(ptr::eq(hub.current.get(), core));
        hub.dispatcher.set(core);
        hub.current.set(ptr::null());
        Dispatching {
            hub,
            core,
            was_in_scheduler: hub.in_scheduler.replace(true),
        }
    }
}

impl Drop for Dispatching<'_> {
    fn drop(&mut self) {
        self.hub.in_scheduler.set(self.was_in_scheduler);
        self.hub.current.set(self.core);
        set_guard(self.core);
        self.hub.dispatcher.set(ptr::null());
    }
}

/// Marks the root context as running scheduler code for as long as it
/// lives (restoring the previous mark, so it nests).
struct SchedulerPath<'a> {
    hub: &'a Hub,
    was: bool,
}

impl<'a> SchedulerPath<'a> {
    fn enter(hub: &'a Hub) -> SchedulerPath<'a> {
        SchedulerPath {
            hub,
            was: hub.in_scheduler.replace(true),
        }
    }
}

impl Drop for SchedulerPath<'_> {
    fn drop(&mut self) {
        self.hub.in_scheduler.set(self.was);
    }
}

/// Enters the green thread's `tracing` span as it is switched in, so what
/// it logs carries its span however green threads interleave (tokio's
/// `Instrument`, done once here for every green thread).
#[inline]
fn enter_span(core: &Core) {
    if let Some(span) = &core.span {
        span.with_subscriber(|(id, dispatch)| dispatch.enter(id));
    }
}

/// Exits it as the green thread is switched out.
#[inline]
fn exit_span(core: &Core) {
    if let Some(span) = &core.span {
        span.with_subscriber(|(id, dispatch)| dispatch.exit(id));
    }
}

fn wake_core(core: &Core, seq: u64, reason: Wake) -> bool {
    if seq == 0 || core.parked.get() != seq {
        return false;
    }
    core.parked.set(0);
    super::introspect::unparked(core.rec.get());
    core.wake.set(reason);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `b`, ready when `a` (with a stack of `stack` bytes, or the
    /// default) yields while the root waits, ran nested on `a`'s stack:
    /// its hub then names a dispatcher.
    fn ran_nested(stack: Option<usize>) -> bool {
        std::thread::spawn(move || {
            let seen = Rc::new(Cell::new(false));
            let s = seen.clone();
            let builder = match stack {
                Some(n) => crate::Builder::new().stack_size(n),
                None => crate::Builder::new(),
            };
            let a = builder.spawn(crate::yield_now).unwrap();
            let b = crate::spawn(move || s.set(!hub().dispatcher.get().is_null()));
            a.join().unwrap();
            b.join().unwrap();
            seen.get()
        })
        .join()
        .unwrap()
    }

    #[test]
    fn a_green_thread_that_yields_runs_the_next_one_on_its_own_stack() {
        assert!(ran_nested(None));
    }

    #[test]
    fn a_parked_green_thread_leaves_a_stack_hint_inside_its_own_stack() {
        std::thread::spawn(|| {
            let ev = Rc::new(crate::sync::Event::<()>::new());
            // Its stack's floor, an address near its top, and its slot.
            let seen = Rc::new(Cell::new((0usize, 0usize, 0u32)));
            let (e, s) = (ev.clone(), seen.clone());
            let a = crate::spawn(move || {
                let top = 0u8;
                let core = hub().current_core();
                let top = std::hint::black_box(&top) as *const u8 as usize;
                s.set((core.sig_guard.stack_floor(), top, core.slot.get()));
                e.wait().unwrap();
            });
            // The root's yield runs it once: up to its park.
            crate::yield_now();
            let (floor, top, slot) = seen.get();
            let hint = hub().stack_hints.borrow()[slot as usize];
            assert!(
                floor < hint && hint < top,
                "hint {hint:#x} outside its stack ({floor:#x}..{top:#x})"
            );
            ev.send(()).unwrap();
            a.join().unwrap();
            // Its slot goes to the next green thread, whose hint is none
            // until it parks: not the old stack's.
            let b = crate::spawn(|| {});
            assert!(hub().tasks.borrow()[slot as usize].is_some());
            assert_eq!(hub().stack_hints.borrow()[slot as usize], 0);
            b.join().unwrap();
        })
        .join()
        .unwrap();
    }

    #[test]
    fn one_with_less_stack_left_than_the_headroom_suspends_to_the_root() {
        const { assert!(super::super::stack::MIN_STACK_SIZE <= DISPATCH_HEADROOM) };
        assert!(!ran_nested(Some(super::super::stack::MIN_STACK_SIZE)));
    }
}
