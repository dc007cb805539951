//! A FIFO list of parked waiters that any OS thread may wake: the
//! cross-thread counterpart of `park::WaitList`, kept under its owner's
//! `Mutex`.
//!
//! A waiter pushes an [`Unparker`] and keeps the id it got back. A waker
//! [`pop`](RemoteWaiters::pop)s the oldest entry and unparks it after
//! releasing the lock. A waiter that stops waiting for another reason
//! (timeout, kill, forced unwind) calls [`remove`](RemoteWaiters::remove):
//! `false` means a waker already took its entry, so a wake-up was spent on
//! it and the waiter must pass it on (its owner decides to whom). That is
//! what keeps a cancelled waiter from swallowing a wake-up another waiter
//! needed.
//!
//! Ids grow, so entries stay sorted and `remove` finds its entry by binary
//! search; an entry removed from the middle becomes a hole that `pop` skips,
//! and the list compacts itself when holes are the majority. Every operation
//! is O(log n) amortised, without allocation once warm.

use std::collections::VecDeque;

use crate::runtime::{Unparker, WakeToken};

#[derive(Debug, Default)]
pub(crate) struct RemoteWaiters {
    entries: VecDeque<(u64, Option<Unparker>)>,
    next_id: u64,
    holes: usize,
}

impl RemoteWaiters {
    /// Adds a waiter at the back; returns its id.
    pub(crate) fn push(&mut self, unparker: Unparker) -> u64 {
        self.next_id += 1;
        self.entries.push_back((self.next_id, Some(unparker)));
        self.next_id
    }

    /// Takes the oldest waiter, for the caller to wake (preferably after
    /// releasing the lock). Waiters whose hub is gone are dropped on the
    /// way: their thread exited and leaked them, so they will never run.
    pub(crate) fn pop(&mut self) -> Option<Unparker> {
        while let Some((_, u)) = self.entries.pop_front() {
            match u {
                Some(u) if u.hub_alive() => return Some(u),
                Some(_) => {}
                None => self.holes -= 1,
            }
        }
        None
    }

    /// Whether any waiter is listed.
    pub(crate) fn any(&self) -> bool {
        self.entries.len() > self.holes
    }

    /// As [`pop`](Self::pop), passing over (and keeping, in place) the
    /// entries of park `me` of this thread's hub: a `select` registering
    /// another arm on the same channel must not wake itself.
    /// (Waiters of dead hubs it passes are left for `pop` to drop.)
    pub(crate) fn pop_except(&mut self, me: WakeToken) -> Option<Unparker> {
        let i = self
            .entries
            .iter()
            .position(|(_, u)| u.as_ref().is_some_and(|u| !u.is_park(me) && u.hub_alive()))?;
        let u = self.entries[i].1.take();
        if i == 0 {
            self.entries.pop_front();
        } else {
            self.holes += 1;
        }
        u
    }

    /// Whether any waiter other than park `me` of this thread's hub is
    /// listed.
    pub(crate) fn any_except(&self, me: WakeToken) -> bool {
        self.entries
            .iter()
            .any(|(_, u)| u.as_ref().is_some_and(|u| !u.is_park(me)))
    }

    /// Takes every waiter.
    pub(crate) fn take_all(&mut self) -> impl Iterator<Item = Unparker> + use<> {
        self.holes = 0;
        std::mem::take(&mut self.entries)
            .into_iter()
            .filter_map(|(_, u)| u)
    }

    /// Removes waiter `id`. Returns `false` if it was not there any more:
    /// a waker took it (and woke, or is about to wake, that waiter).
    pub(crate) fn remove(&mut self, id: u64) -> bool {
        let Ok(i) = self.entries.binary_search_by_key(&id, |e| e.0) else {
            return false;
        };
        if self.entries[i].1.take().is_none() {
            return false;
        }
        if i == 0 {
            self.entries.pop_front();
        } else if i + 1 == self.entries.len() {
            self.entries.pop_back();
        } else {
            self.holes += 1;
            if self.holes > 16 && self.holes * 2 > self.entries.len() {
                self.entries.retain(|e| e.1.is_some());
                self.holes = 0;
            }
        }
        true
    }
}
