//! The engine under the public API: hub, stacks, timers, clock, `park` and
//! the watchdog. Nothing here is public; `green`, `time`, `sync` and `tpool`
//! are built on it.
//!
//! # The door
//!
//! The rest of the crate reaches the engine through this module's items,
//! not through the hub's fields:
//!
//! - the current context: [`now`], [`after`], [`nanos_at`],
//!   [`now_instant`], [`current_id`], [`is_killed`], [`scope_deadline`],
//!   [`yield_now`], [`may_suspend`];
//! - the one parking primitive, [`park_at`] (and [`park_at_arm`] for
//!   multi-way waits), with [`check_cancelled`] and [`retract`];
//! - two waiting primitives built on it: [`WaitList`], a notify-style FIFO
//!   of waiters (`wait_on`, `wake_one`, `wake_all`), and the hand-off
//!   waiter, a [`WakeToken`] kept by whoever will hand the parked context
//!   something (`WakeToken::wake` says whether it still waited); across
//!   threads, an [`Unparker`];
//! - green I/O: [`GreenIo`], [`Registration`], [`Dir`];
//! - [`on_hub_stack`]: a short non-blocking step (a request head's parse)
//!   on the stack the hub's green threads share, whose lines stay cached.
//!
//! Every function here is a thin `#[inline]` wrapper over the hub: they
//! sit on hot paths.

use std::time::{Duration, Instant};

mod clock;
mod hub;
mod hub_stack;
pub(crate) mod introspect;
mod io;
pub(crate) mod local;
mod lock_cell;
mod multi;
mod park;
mod scope;
mod spawn;
mod stack;
mod task;
mod timer;
mod watchdog;

pub(crate) use hub_stack::on_hub_stack;
pub(crate) use io::{Dir, GreenIo, Registration};
pub(crate) use lock_cell::{ExclusiveCell, ExclusiveRef, SharedCell, SharedMut, SharedRef};
pub use multi::{Runtime, RuntimeBuilder};
pub(crate) use park::{
    Parked, Unparker, WaitList, WakeToken, check_cancelled, park_at, park_at_arm, park_at_fresh,
    retract, wait_on, woken_arm_before_unwind, woken_before_unwind,
};
pub use scope::{Scope, ScopedGreenThread, scope};
pub(crate) use spawn::spawn_cell;
pub(crate) use stack::DEFAULT_STACK_SIZE;
pub(crate) use task::{Task, TaskCell, log_panic, panic_message};

use hub::{hub, hub_unless_exiting, try_hub};

/// Whether this thread has a hub now: false before its first use, and in
/// a thread-local destructor that runs after the hub's own (wake paths
/// check it: with no hub nobody can be parked).
#[inline]
pub(crate) fn has_hub() -> bool {
    try_hub().is_some()
}

/// Whether this thread has a hub or can still make one: false only in a
/// thread-local destructor after its hub was destroyed, where blocking
/// calls fail instead.
#[inline]
pub(crate) fn hub_available() -> bool {
    hub_unless_exiting().is_some()
}

/// Now, on this thread's hub clock, in hub nanoseconds.
#[inline]
pub(crate) fn now() -> u64 {
    hub().clock.now()
}

/// Now, on this thread's hub clock, as an `Instant`.
#[inline]
pub(crate) fn now_instant() -> Instant {
    hub().clock.now_instant()
}

/// Now as an `Instant`, on this thread's hub clock if the thread has a hub
/// already, else `Instant::now()` (no hub is created).
#[inline]
pub(crate) fn now_instant_if_hub() -> Instant {
    match try_hub() {
        Some(h) => h.clock.now_instant(),
        None => Instant::now(),
    }
}

/// The hub-clock deadline `d` from now.
#[inline]
pub(crate) fn after(d: Duration) -> u64 {
    hub().clock.after(d)
}

/// As [`after`], but `None` when the thread is exiting and its hub was
/// already destroyed (where blocking calls fail instead).
#[inline]
pub(crate) fn try_after(d: Duration) -> Option<u64> {
    hub_unless_exiting().map(|h| h.clock.after(d))
}

/// `instant` on the hub clock.
#[inline]
pub(crate) fn nanos_at(instant: Instant) -> u64 {
    hub().clock.nanos_at(instant)
}

/// The id of the running green thread (0 for the root context).
#[inline]
pub(crate) fn current_id() -> u64 {
    hub().current_core().id
}

/// Whether the running green thread was killed.
#[inline]
pub(crate) fn is_killed() -> bool {
    hub().current_core().killed.get()
}

/// The innermost scoped deadline (`timeout`/`deadline`) of the running
/// context, on the hub clock, if it is in one.
#[inline]
pub(crate) fn scope_deadline() -> Option<u64> {
    hub().current_core().scope_deadline().map(|(d, _)| d)
}

/// Lets every other ready green thread run once; nothing where suspending
/// is not allowed, or when the thread's hub is already gone.
#[inline(always)]
pub(crate) fn yield_now() {
    if let Some(hub) = hub_unless_exiting() {
        hub.yield_current();
    }
}

/// Whether the running context may suspend now. Loops that wait by
/// yielding use it to stop instead of spinning where yielding does nothing.
#[inline]
pub(crate) fn may_suspend() -> bool {
    hub::may_suspend()
}

/// Whether the running context is the root (the OS thread's own stack).
#[inline]
pub(crate) fn current_is_root() -> bool {
    hub().current_core().is_root()
}

/// The name of the running green thread, if it has one.
#[inline]
pub(crate) fn current_name() -> Option<std::sync::Arc<str>> {
    hub().current_core().name.clone()
}

/// Whether the running green thread is being force-unwound by its hub.
#[inline]
pub(crate) fn is_force_unwinding() -> bool {
    try_hub().is_some_and(|h| h.current_core().unwinding.get())
}

/// Shuts this thread's hub down (`sylvan::shutdown`): kills its green
/// threads and force-unwinds them. The caller checked that the root is
/// running and may suspend.
pub(crate) fn shutdown_hub() {
    hub().shutdown();
}

/// Creates this thread's hub if it has none yet and the thread is not
/// exiting (so it publishes itself for snapshots).
pub(crate) fn ensure_hub() {
    let _ = hub_unless_exiting();
}

/// Opens a scoped deadline at `until` (hub nanoseconds) on the running
/// context; returns its id for [`exit_scope`].
#[inline]
pub(crate) fn enter_scope(until: u64) -> u64 {
    let hub = hub();
    let id = hub.next_scope_id();
    hub.current_core().push_scope(id, until);
    id
}

/// Closes scope `id` of the running context; whether its own deadline made
/// a blocking call inside it fail.
#[inline]
pub(crate) fn exit_scope(id: u64) -> bool {
    hub().current_core().pop_scope(id)
}

/// The virtual clock of this thread's hub (`sylvan::time::{pause, resume,
/// is_paused, advance}`).
pub(crate) mod clock_ctl {
    use super::hub::hub;

    pub(crate) fn pause() {
        hub().clock.pause();
    }

    pub(crate) fn resume() {
        hub().clock.resume();
    }

    pub(crate) fn is_paused() -> bool {
        hub().clock.is_paused()
    }

    /// Moves the paused clock forward and lets what is due run; `false`
    /// (and nothing done) if the clock is not paused.
    pub(crate) fn advance(dur: std::time::Duration) -> bool {
        let hub = hub();
        if !hub.clock.advance(dur) {
            return false;
        }
        hub.yield_current();
        true
    }
}

/// An operation in flight on another OS thread that will wake a context of
/// this hub (a tpool job, a tokio future): while one exists, virtual time
/// does not jump ahead. Not `Send`: drop it on the thread that made it.
#[derive(Debug)]
pub(crate) struct RemoteOp(&'static hub::Hub);

impl RemoteOp {
    /// Counts one operation in flight on this thread's hub.
    #[inline]
    pub(crate) fn begin() -> RemoteOp {
        let hub = hub();
        hub.remote_inflight.set(hub.remote_inflight.get() + 1);
        RemoteOp(hub)
    }
}

impl Drop for RemoteOp {
    #[inline]
    fn drop(&mut self) {
        self.0.remote_inflight.set(self.0.remote_inflight.get() - 1);
    }
}

/// Registers `hook` to run when this thread's hub exits. It runs in a
/// thread-local destructor: it must not use sylvan or other thread-locals.
pub(crate) fn on_hub_exit(hook: Box<dyn FnOnce() + Send>) {
    hub().shared.on_exit(hook);
}

/// This hub's blocking-detection threshold in nanoseconds (0: off), as the
/// watchdog reads it.
pub(crate) fn blocking_threshold_ns() -> u64 {
    hub()
        .shared
        .threshold_ns
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// Sets [`blocking_threshold_ns`].
pub(crate) fn set_blocking_threshold_ns(ns: u64) {
    hub()
        .shared
        .threshold_ns
        .store(ns, std::sync::atomic::Ordering::Relaxed);
}

/// Gives idle stack slots back to the kernel, keeping `keep_warm`; returns
/// how many were trimmed.
pub(crate) fn trim_stacks(keep_warm: usize) -> usize {
    hub().stacks.trim(keep_warm)
}

/// Counts for this thread's hub (`sylvan::debug::stats`).
#[derive(Debug)]
pub(crate) struct HubCounts {
    pub(crate) hub_id: u64,
    pub(crate) green_threads: usize,
    pub(crate) stacks: usize,
    pub(crate) timers: usize,
    pub(crate) io_sources: usize,
    pub(crate) guard_install: bool,
}

/// [`HubCounts`] for this thread's hub.
pub(crate) fn hub_counts() -> HubCounts {
    let hub = hub();
    HubCounts {
        hub_id: hub.shared.id,
        green_threads: hub.live_tasks(),
        stacks: hub.stacks.live(),
        timers: hub.timers.borrow().len(),
        io_sources: hub.io.len(),
        guard_install: hub.stacks.uses_guard_install(),
    }
}
