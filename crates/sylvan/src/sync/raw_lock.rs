//! The fair reader/writer lock under the hub-local [`Mutex`](super::Mutex)
//! and [`RwLock`](super::RwLock): ownership only, no data.
//!
//! One FIFO queue of parked waiters, each wanting shared or exclusive
//! ownership. A waiter is *queued* from the moment it registers until it is
//! either granted ownership or leaves (killed, deadline passed, unwound).
//!
//! - **Hand-off.** Releasing ownership never frees the lock while someone
//!   is queued: [`dispatch`](RawLock::dispatch) grants it directly to the
//!   oldest waiter (and, for shared ownership, to every reader queued right
//!   behind it), updating the state *before* the waiter runs. So a
//!   newcomer can never barge in between: [`try_acquire`](RawLock::try_acquire)
//!   fails while anyone is queued.
//! - **Granted means granted.** The hub wakes a token at most once, so a
//!   waiter the dispatcher woke cannot also be woken by its kill or its
//!   timer: its park returns `Ok`, and the ownership it was handed is its
//!   own. The one way out without returning is the forced unwind of a hub
//!   shutdown; the `granted` list tells the unwinding waiter that it owns
//!   the lock, and it releases it on the way out, so no hand-off is lost.
//! - **Cancellation.** A waiter that leaves is no longer counted as queued;
//!   its token stays in the queue as a stale entry that dispatch skips (the
//!   hub reports it as not parked), and the queue compacts itself once
//!   stale entries are the majority. A waiter killed before it ran is still
//!   counted until it runs, which can make a newcomer queue behind it while
//!   the lock is free; the leaving waiter dispatches, so that newcomer is
//!   not stranded.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::Location;

use crate::cancel::Cancelled;
use crate::runtime::{self, WakeToken};

/// Which ownership a waiter wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Shared,
    Exclusive,
}

/// `state` when held exclusively; otherwise the number of shared owners.
const EXCLUSIVE: usize = usize::MAX;

#[derive(Debug)]
struct Waiter {
    token: WakeToken,
    mode: Mode,
}

#[derive(Debug)]
pub(super) struct RawLock {
    state: Cell<usize>,
    queue: RefCell<VecDeque<Waiter>>,
    /// Waiters registered and neither granted nor gone.
    queued: Cell<usize>,
    /// Entries of `queue` whose waiter left (an upper estimate).
    stale: Cell<usize>,
    /// Tokens granted ownership whose waiter has not run yet.
    granted: RefCell<Vec<WakeToken>>,
}

impl RawLock {
    pub(super) const fn new() -> RawLock {
        RawLock {
            state: Cell::new(0),
            queue: RefCell::new(VecDeque::new()),
            queued: Cell::new(0),
            stale: Cell::new(0),
            granted: RefCell::new(Vec::new()),
        }
    }

    /// Takes ownership if that needs no waiting and nobody is queued.
    #[inline]
    pub(super) fn try_acquire(&self, mode: Mode) -> bool {
        if self.queued.get() > 0 {
            return false;
        }
        let s = self.state.get();
        match mode {
            Mode::Exclusive if s == 0 => self.state.set(EXCLUSIVE),
            Mode::Shared if s < EXCLUSIVE - 1 => self.state.set(s + 1),
            _ => return false,
        }
        true
    }

    /// Takes ownership, waiting (first come, first served) until it is
    /// handed over. On `Err` the caller owns nothing and is not queued.
    pub(super) fn acquire(
        &self,
        mode: Mode,
        location: &'static Location<'static>,
    ) -> Result<(), Cancelled> {
        if self.try_acquire(mode) {
            return Ok(());
        }
        /// Leaves the queue (or gives back what it was granted) when the
        /// park ends in an error or an unwind.
        struct Waiting<'a> {
            raw: &'a RawLock,
            mode: Mode,
            token: Option<WakeToken>,
        }
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                if let Some(t) = self.token.take() {
                    self.raw.leave(t, self.mode);
                }
            }
        }
        let mut waiting = Waiting {
            raw: self,
            mode,
            token: None,
        };
        runtime::park_at(location, None, |token| {
            self.queue.borrow_mut().push_back(Waiter { token, mode });
            self.queued.set(self.queued.get() + 1);
            waiting.token = Some(token);
        })?;
        // Only `dispatch` wakes our token, and it granted us ownership.
        if let Some(t) = waiting.token.take() {
            let mut granted = self.granted.borrow_mut();
            let i = granted.iter().position(|g| *g == t);
            debug_assert!(i.is_some(), "woken without being granted");
            if let Some(i) = i {
                granted.swap_remove(i);
            }
        }
        Ok(())
    }

    /// A registered waiter stops waiting without returning ownership to
    /// its caller: it gives back what it was granted, or leaves the queue.
    fn leave(&self, token: WakeToken, mode: Mode) {
        let was_granted = {
            let mut granted = self.granted.borrow_mut();
            match granted.iter().position(|g| *g == token) {
                Some(i) => {
                    granted.swap_remove(i);
                    true
                }
                None => false,
            }
        };
        if was_granted {
            self.release(mode);
            return;
        }
        self.queued.set(self.queued.get() - 1);
        self.stale.set(self.stale.get() + 1);
        // A newcomer may have queued behind us although the lock was free
        // (or, for shared ownership, open to it).
        self.dispatch();
    }

    /// Gives back ownership taken in `mode`, handing it on to waiters.
    #[inline]
    pub(super) fn release(&self, mode: Mode) {
        let s = self.state.get();
        let next = match mode {
            Mode::Exclusive => 0,
            Mode::Shared => s - 1,
        };
        self.state.set(next);
        if next == 0 && self.queued.get() > 0 {
            self.dispatch();
        }
    }

    /// Grants ownership to the oldest waiters it can be granted to.
    fn dispatch(&self) {
        if !runtime::has_hub() {
            // A thread-local destructor after the hub's: the waiters were
            // leaked with their hub and never run again.
            self.queue.borrow_mut().clear();
            self.queued.set(0);
            self.stale.set(0);
            return;
        }
        let mut queue = self.queue.borrow_mut();
        while let Some(w) = queue.front() {
            if !w.token.is_waiting() {
                queue.pop_front();
                self.stale.set(self.stale.get().saturating_sub(1));
                continue;
            }
            let s = self.state.get();
            match w.mode {
                Mode::Exclusive if s == 0 => self.state.set(EXCLUSIVE),
                Mode::Shared if s < EXCLUSIVE - 1 => self.state.set(s + 1),
                _ => break,
            }
            let (token, mode) = (w.token, w.mode);
            queue.pop_front();
            self.queued.set(self.queued.get() - 1);
            self.granted.borrow_mut().push(token);
            token.wake();
            if mode == Mode::Exclusive {
                break;
            }
        }
        let stale = self.stale.get();
        if stale > 16 && stale * 2 > queue.len() {
            queue.retain(|w| w.token.is_waiting());
            self.stale.set(0);
        }
    }
}
