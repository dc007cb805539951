//! The one parking primitive every blocking call goes through.
//!
//! [`park`] fails at once if the green thread was killed (or is unwinding);
//! computes the effective deadline from the operation's own deadline and the
//! innermost scoped deadline; fails at once with `TimedOut` if that scope has
//! expired; otherwise arms one timer, lets the caller register the wake token
//! wherever the wake-up will come from, and suspends. On wake it disarms the
//! timer in O(1) (the timer heap drops it lazily: `timer`). Wake tokens
//! carry a sequence number unique to one park, so a late wake (a timer, a
//! remote thread, a stale waiter-list entry) for an earlier park is ignored.

use std::collections::VecDeque;
use std::panic::Location;
use std::sync::Arc;

use super::hub::{Hub, HubShared, hub, hub_unless_exiting, try_hub};
use crate::cancel::{Cancelled, ScopeId};

/// Identifies one park of one green thread (or of the root context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WakeToken {
    pub(super) slot: u32,
    pub(super) seq: u64,
}

/// The hand-off waiter: whoever keeps a parked context's token hands it
/// something (an item, a permit, a connection) and then wakes exactly that
/// park, learning whether it still waited.
impl WakeToken {
    /// Wakes the park this token names, on this thread's hub, if it is
    /// still that context's current park. Returns whether it was (so the
    /// hand-off reached it). Safe anywhere, thread-local destructors
    /// included: with no hub there is nobody to wake.
    #[inline]
    pub(crate) fn wake(self) -> bool {
        try_hub().is_some_and(|h| h.wake(self, Wake::Notified))
    }

    /// Whether the park this token names is still waiting.
    #[inline]
    pub(crate) fn is_waiting(self) -> bool {
        try_hub().is_some_and(|h| h.is_parked(self))
    }
}

/// Why a parked context was woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    None,
    Notified,
    /// Notified through the registration of arm `n` (1-based) of a
    /// multi-way park (`select`, `iwait`): see [`WaitList::push_arm`].
    Arm(u32),
    Timer,
    Killed,
}

/// How a successful park ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parked {
    /// Somebody woke us through the registered token.
    Woken,
    /// The operation's own deadline passed (e.g. a sleep that completed, or
    /// a per-operation socket timeout).
    OwnDeadline,
}

/// Suspends the current context until woken, killed or a deadline passes.
///
/// `own` is the operation's own deadline (hub clock nanoseconds). `register`
/// is called once with the token to wake us by, only if we really suspend.
/// After an `Err` or `OwnDeadline` the caller must treat its registration as
/// stale (see [`WaitList::cancelled`]).
#[inline]
pub(crate) fn park_at(
    location: &'static Location<'static>,
    own: Option<u64>,
    register: impl FnOnce(WakeToken),
) -> Result<Parked, Cancelled> {
    park_at_fresh(location, own, false, register)
}

/// [`park_at`], told whether `own` is known to lie ahead: made by the
/// caller just now from the clock as now plus a positive duration. Then
/// the clock is not read again to check whether it passed (a read costs
/// ~30 ns, the order of the rest of a park, and a socket read with a
/// timeout makes such a deadline for each wait).
#[inline]
pub(crate) fn park_at_fresh(
    location: &'static Location<'static>,
    own: Option<u64>,
    own_ahead: bool,
    register: impl FnOnce(WakeToken),
) -> Result<Parked, Cancelled> {
    match park_inner(location, own, own_ahead, register) {
        Ok((p, _)) => Ok(p),
        Err(c) => Err(c),
    }
}

/// [`park_at`], also saying which arm's registration woke it (1-based, as
/// given to [`WaitList::push_arm`]), if one did. A context woken through an
/// arm and killed afterwards (before it ran) still returns `Ok` with that
/// arm: whatever the waker handed it is its own.
pub(crate) fn park_at_arm(
    location: &'static Location<'static>,
    own: Option<u64>,
    register: impl FnOnce(WakeToken),
) -> (Result<Parked, Cancelled>, Option<u32>) {
    let r = park_inner(location, own, false, register);
    match r {
        Ok((p, Wake::Arm(n))) => (Ok(p), Some(n)),
        Ok((p, _)) => (Ok(p), None),
        Err(c) => (Err(c), None),
    }
}

#[inline]
fn park_inner(
    location: &'static Location<'static>,
    own: Option<u64>,
    own_ahead: bool,
    register: impl FnOnce(WakeToken),
) -> Result<(Parked, Wake), Cancelled> {
    let Some(hub) = hub_unless_exiting() else {
        // A thread-local destructor after the hub's: nothing can wake us.
        return Err(Cancelled::Killed);
    };
    let core = hub.current_core();
    check_cancelled_in(hub)?;
    // (Not killed, so not force-unwinding; not panicking: what is left of
    // `cannot_suspend` is cheap, and rare.)
    if !hub.may_suspend_unless_cancelled(core) {
        let why = hub.cannot_suspend(core).unwrap_or("it may not suspend");
        if core.is_root() {
            // Only reachable through a destructor the hub itself ran: say
            // so, since the caller sees a plain `Killed`.
            tracing::error!(
                "sylvan: a blocking call at {location} failed because {why}; \
                 suspending there would re-enter the hub's loop"
            );
        }
        return Err(Cancelled::Killed);
    }
    let scope = core.scope_deadline();
    // Read the clock only when there is a deadline of our own to compare
    // and it is not known to lie ahead.
    if !own_ahead && own.is_some_and(|o| o <= hub.clock.now()) {
        return Ok((Parked::OwnDeadline, Wake::None));
    }
    let seq = hub.next_seq();
    let token = WakeToken {
        slot: core.slot.get(),
        seq,
    };
    core.parked.set(seq);
    core.wake.set(Wake::None);
    // Whatever happens from here (a panic in `register`, the root's
    // deadlock report, the forced unwind at shutdown), the park ends with
    // `parked` cleared and the timer disarmed, so no later wake-up can be
    // spent on this stale token.
    let mut guard = ParkGuard {
        hub,
        core,
        timer: None,
    };
    register(token);
    let effective = match (own, scope) {
        (Some(o), Some((s, _))) => Some(o.min(s)),
        (o, s) => o.or(s.map(|s| s.0)),
    };
    guard.timer = effective.map(|when| hub.timers.borrow_mut().insert(when, token));
    core.last_block.set(Some(location));
    let governing = match scope {
        Some((s, id)) if effective == Some(s) => id,
        _ => 0,
    };
    super::introspect::parked(
        &hub.shared,
        core.rec.get(),
        seq,
        location,
        effective,
        governing,
    );
    hub.suspend_current(core);
    let reason = core.wake.replace(Wake::None);
    if reason == Wake::Timer {
        // It fired, so the heap no longer holds it.
        guard.timer = None;
    }
    drop(guard);
    match reason {
        Wake::Notified | Wake::None | Wake::Arm(_) => Ok((Parked::Woken, reason)),
        Wake::Killed => Err(Cancelled::Killed),
        Wake::Timer => match (own, scope) {
            (Some(o), Some((s, _))) if o < s => Ok((Parked::OwnDeadline, reason)),
            (Some(_), None) => Ok((Parked::OwnDeadline, reason)),
            (_, Some((_, id))) => {
                core.mark_fired(id);
                Err(Cancelled::TimedOut(ScopeId(id)))
            }
            (None, None) => Ok((Parked::Woken, reason)),
        },
    }
}

/// Ends a park on every path, unwinding included: clears `parked` and
/// disarms the timer if it did not fire.
struct ParkGuard<'a> {
    hub: &'a Hub,
    core: &'a super::task::Core,
    timer: Option<super::timer::TimerKey>,
}

impl Drop for ParkGuard<'_> {
    fn drop(&mut self) {
        // (A park that ends without a wake is published as parked until
        // the next park or wake, or until its slot is reused: only a forced
        // unwind or a panic while parking does that.)
        self.core.parked.set(0);
        if let Some(k) = self.timer.take() {
            if let Ok(mut timers) = self.hub.timers.try_borrow_mut() {
                timers.cancel(k);
            }
        }
    }
}

/// Whether the running green thread, being unwound out of a `park` (the
/// hub's forced unwind at shutdown), had been woken by a notification
/// first: then its waker may have handed it something (a permit, an item,
/// a lock) that its unwinding code must give back.
pub(crate) fn woken_before_unwind() -> bool {
    try_hub().is_some_and(|h| h.current_core().wake.get() == Wake::Notified)
}

/// As [`woken_before_unwind`], for a multi-way park: the arm (1-based)
/// whose registration woke the running green thread before it was unwound.
pub(crate) fn woken_arm_before_unwind() -> Option<u32> {
    match try_hub()?.current_core().wake.get() {
        Wake::Arm(n) => Some(n),
        _ => None,
    }
}

/// Fails if a blocking call made now would fail at once: the current context
/// was killed, is unwinding, or its innermost scoped deadline has passed.
pub(crate) fn check_cancelled() -> Result<(), Cancelled> {
    match hub_unless_exiting() {
        Some(hub) => check_cancelled_in(hub),
        None => Err(Cancelled::Killed),
    }
}

fn check_cancelled_in(hub: &Hub) -> Result<(), Cancelled> {
    let core = hub.current_core();
    if core.killed.get() || std::thread::panicking() {
        return Err(Cancelled::Killed);
    }
    if let Some((deadline, id)) = core.scope_deadline() {
        if deadline <= hub.clock.now() {
            core.mark_fired(id);
            return Err(Cancelled::TimedOut(ScopeId(id)));
        }
    }
    Ok(())
}

/// Undoes the bookkeeping of a `Cancelled` that `park` returned but the
/// blocking call swallowed because it completed anyway (so a `timeout`
/// scope does not report `Elapsed` for an operation that succeeded).
pub(crate) fn retract(c: Cancelled) {
    if let Cancelled::TimedOut(ScopeId(id)) = c {
        hub().current_core().unmark_fired(id);
    }
}

/// Wakes a parked context from any OS thread.
///
/// Holding an `Unparker` tells the hub that a wake-up may still come from
/// outside, so it doesn't report a deadlock while one exists.
#[derive(Debug)]
pub(crate) struct Unparker {
    shared: Arc<HubShared>,
    token: WakeToken,
}

impl Unparker {
    /// An unparker for `token`, a park of this thread's hub.
    #[inline]
    pub(crate) fn new(token: WakeToken) -> Unparker {
        Unparker {
            shared: hub().shared.clone(),
            token,
        }
    }

    /// Whether it wakes park `token` of this thread's hub (a `select`
    /// registering another arm on the same channel, which must not wake
    /// itself).
    pub(crate) fn is_park(&self, token: WakeToken) -> bool {
        self.token == token && try_hub().is_some_and(|h| Arc::ptr_eq(&h.shared, &self.shared))
    }

    /// Whether the hub of the parked context still runs. A hub whose thread
    /// exited leaked its green threads: waking them does nothing.
    pub(crate) fn hub_alive(&self) -> bool {
        self.shared.is_alive()
    }

    /// Wakes the parked context (no effect if it stopped waiting, or if its
    /// hub is gone).
    pub(crate) fn unpark(self) {
        match try_hub() {
            // Same hub: wake directly, no lock and no eventfd write.
            Some(h) if Arc::ptr_eq(&h.shared, &self.shared) => {
                h.wake(self.token, Wake::Notified);
            }
            _ => self.shared.remote_wake(self.token),
        }
    }
}

/// A FIFO list of parked waiters with amortised O(1) removal.
///
/// A waiter that stops waiting for another reason (timeout, kill) calls
/// [`WaitList::cancelled`]; its token stays in the list as a stale entry that
/// wakes nothing, and the list compacts itself once stale entries are the
/// majority.
///
/// The oldest waiter is kept inline (`head`), so a list that never has more
/// than one waiter at a time (a join, a rendezvous) allocates nothing.
/// Invariant: `head` is `None` only while `rest` is empty, so `head` is
/// always the oldest entry.
#[derive(Debug, Default)]
pub(crate) struct WaitList {
    head: Option<Entry>,
    rest: VecDeque<Entry>,
    stale: usize,
}

/// A [`WakeToken`] and the arm it was registered for (0: none), packed
/// into the token's own 16 bytes.
#[derive(Debug, Clone, Copy)]
struct Entry {
    slot: u32,
    arm: u32,
    seq: u64,
}

impl Entry {
    #[inline]
    fn token(self) -> WakeToken {
        WakeToken {
            slot: self.slot,
            seq: self.seq,
        }
    }

    #[inline]
    fn reason(self) -> Wake {
        match self.arm {
            0 => Wake::Notified,
            n => Wake::Arm(n),
        }
    }
}

impl WaitList {
    #[inline]
    pub(crate) fn push(&mut self, token: WakeToken) {
        self.push_arm(token, 0);
    }

    /// Registers `token` for arm `arm` (1-based) of a multi-way park: the
    /// wake-up it gets from this list says so ([`park_at_arm`]).
    #[inline]
    pub(crate) fn push_arm(&mut self, token: WakeToken, arm: u32) {
        let e = Entry {
            slot: token.slot,
            arm,
            seq: token.seq,
        };
        if self.head.is_none() {
            self.head = Some(e);
        } else {
            self.rest.push_back(e);
        }
    }

    fn pop_front(&mut self) -> Option<Entry> {
        let t = self.head.take()?;
        self.head = self.rest.pop_front();
        Some(t)
    }

    fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    fn clear(&mut self) {
        self.head = None;
        self.rest.clear();
        self.stale = 0;
    }

    /// Wakes the oldest waiter that is still waiting, on this thread's hub.
    /// Returns whether one was. Safe to call from anywhere, thread-local
    /// destructors included: with no hub there is nobody to wake.
    #[inline]
    pub(crate) fn wake_one(&mut self) -> bool {
        if self.is_empty() {
            return false;
        }
        match try_hub() {
            Some(hub) => self.notify_one(hub),
            None => {
                self.clear();
                false
            }
        }
    }

    /// As [`wake_one`](Self::wake_one), passing over the registrations of
    /// the park `me` (a `select` whose other arm, on the same queue, is
    /// registering): they stay, in their place, and the oldest other waiter
    /// still waiting is woken. A select with both a put and a get arm on a
    /// rendezvous queue otherwise woke itself as its get arm arrived, and
    /// went round again, never parked, while a putter waited for it.
    pub(crate) fn wake_one_except(&mut self, me: WakeToken) -> bool {
        if self.is_empty() {
            return false;
        }
        let Some(hub) = try_hub() else {
            self.clear();
            return false;
        };
        let mut mine = Vec::new();
        let mut woke = false;
        while let Some(t) = self.pop_front() {
            if t.token() == me {
                mine.push(t);
            } else if hub.wake(t.token(), t.reason()) {
                woke = true;
                break;
            } else {
                self.stale = self.stale.saturating_sub(1);
            }
        }
        for t in mine.into_iter().rev() {
            if let Some(h) = self.head.replace(t) {
                self.rest.push_front(h);
            }
        }
        woke
    }

    /// Wakes every waiter, on this thread's hub; as [`wake_one`](Self::wake_one).
    #[inline]
    pub(crate) fn wake_all(&mut self) {
        if self.is_empty() {
            self.stale = 0;
            return;
        }
        match try_hub() {
            Some(hub) => self.notify_all(hub),
            None => self.clear(),
        }
    }

    /// Wakes the oldest waiter that is still waiting. Returns whether one was.
    pub(super) fn notify_one(&mut self, hub: &Hub) -> bool {
        while let Some(t) = self.pop_front() {
            if hub.wake(t.token(), t.reason()) {
                return true;
            }
            self.stale = self.stale.saturating_sub(1);
        }
        false
    }

    /// Wakes every waiter.
    ///
    /// Inlined: an I/O event notifies both directions' lists of its
    /// source, and most lists hold no waiter or one, the head.
    #[inline]
    pub(super) fn notify_all(&mut self, hub: &Hub) {
        if let Some(t) = self.head.take() {
            hub.wake(t.token(), t.reason());
        }
        if !self.rest.is_empty() {
            self.notify_rest(hub);
        }
        self.stale = 0;
    }

    fn notify_rest(&mut self, hub: &Hub) {
        for t in self.rest.drain(..) {
            hub.wake(t.token(), t.reason());
        }
    }

    /// Records that one registered waiter stopped waiting without being
    /// notified.
    #[inline]
    pub(crate) fn cancelled(&mut self) {
        self.stale += 1;
        let len = usize::from(self.head.is_some()) + self.rest.len();
        if self.stale > 16 && self.stale * 2 > len {
            if let Some(hub) = try_hub() {
                self.compact(hub);
            }
        }
    }

    #[cold]
    fn compact(&mut self, hub: &Hub) {
        let mut kept = std::mem::take(&mut self.rest);
        if let Some(h) = self.head.take() {
            kept.push_front(h);
        }
        kept.retain(|t| hub.is_parked(t.token()));
        self.head = kept.pop_front();
        self.rest = kept;
        self.stale = 0;
    }
}

/// Parks the current context on `list` until notified.
///
/// On `Err` the registration (if one was made) is marked stale, so the
/// caller has nothing to undo.
pub(crate) fn wait_on(
    list: &std::cell::RefCell<WaitList>,
    location: &'static Location<'static>,
) -> Result<(), Cancelled> {
    let mut registered = false;
    let r = park_at(location, None, |t| {
        registered = true;
        list.borrow_mut().push(t);
    });
    match r {
        Ok(_) => Ok(()),
        Err(e) => {
            if registered {
                list.borrow_mut().cancelled();
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seq: u64) -> WakeToken {
        WakeToken { slot: 0, seq }
    }

    #[test]
    fn wait_list_stays_fifo_across_its_inline_head() {
        let mut l = WaitList::default();
        l.push(t(1));
        l.push(t(2));
        assert_eq!(l.pop_front().map(Entry::token), Some(t(1)));
        l.push(t(3));
        assert_eq!(l.pop_front().map(Entry::token), Some(t(2)));
        assert_eq!(l.pop_front().map(Entry::token), Some(t(3)));
        assert!(l.is_empty());
        assert_eq!(l.pop_front().map(Entry::token), None);
        l.push_arm(t(4), 2);
        let e = l.pop_front().expect("pushed");
        assert_eq!(e.token(), t(4));
        assert!(matches!(e.reason(), Wake::Arm(2)));
        assert!(l.rest.is_empty() && l.head.is_none());
    }
}
