//! A FIFO list of parked waiters that any OS thread may wake, each with a
//! kind (what it waits for), kept under its owner's `std` mutex.
//!
//! As `sync::remote`'s list: a waiter pushes an [`Unparker`] and keeps the
//! id it got back; a waker pops the oldest entry and unparks it; a waiter
//! that stops waiting for another reason calls [`remove`](Waiters::remove),
//! whose `false` says a waker already took its entry (so it was granted
//! what it waited for, and must keep it or pass it on). Entries removed
//! from the middle become holes that `front`/`pop` skip; the list compacts
//! itself when holes are the majority. Waiters whose hub is gone (their
//! thread exited and leaked them) are dropped when they reach the front.

use std::collections::VecDeque;

use crate::runtime::Unparker;

#[derive(Debug)]
struct Entry<K> {
    id: u64,
    kind: K,
    unparker: Option<Unparker>,
}

#[derive(Debug)]
pub(super) struct Waiters<K> {
    entries: VecDeque<Entry<K>>,
    next_id: u64,
    holes: usize,
}

impl<K: Copy> Waiters<K> {
    pub(super) const fn new() -> Waiters<K> {
        Waiters {
            entries: VecDeque::new(),
            next_id: 0,
            holes: 0,
        }
    }

    /// Adds a waiter at the back; returns its id.
    pub(super) fn push(&mut self, kind: K, unparker: Unparker) -> u64 {
        self.next_id += 1;
        self.entries.push_back(Entry {
            id: self.next_id,
            kind,
            unparker: Some(unparker),
        });
        self.next_id
    }

    /// The kind of the oldest waiter that can still be woken.
    pub(super) fn front(&mut self) -> Option<K> {
        while let Some(e) = self.entries.front() {
            match &e.unparker {
                Some(u) if u.hub_alive() => return Some(e.kind),
                Some(_) => {}
                None => self.holes -= 1,
            }
            self.entries.pop_front();
        }
        None
    }

    /// Takes the oldest waiter that can still be woken, for the caller to
    /// wake (preferably after releasing the lock).
    pub(super) fn pop(&mut self) -> Option<Unparker> {
        self.front()?;
        self.entries.pop_front().and_then(|e| e.unparker)
    }

    /// Takes every waiter.
    pub(super) fn take_all(&mut self) -> Vec<Unparker> {
        self.holes = 0;
        self.entries.drain(..).filter_map(|e| e.unparker).collect()
    }

    /// Whether no waiter is registered (waiters of a gone hub still count
    /// until they reach the front).
    pub(super) fn is_empty(&self) -> bool {
        self.entries.len() == self.holes
    }

    /// Removes waiter `id`. Returns `false` if it was not there any more:
    /// a waker took it.
    pub(super) fn remove(&mut self, id: u64) -> bool {
        let Ok(i) = self.entries.binary_search_by_key(&id, |e| e.id) else {
            return false;
        };
        if self.entries[i].unparker.take().is_none() {
            return false;
        }
        if i == 0 {
            self.entries.pop_front();
        } else if i + 1 == self.entries.len() {
            self.entries.pop_back();
        } else {
            self.holes += 1;
            if self.holes > 16 && self.holes * 2 > self.entries.len() {
                self.entries.retain(|e| e.unparker.is_some());
                self.holes = 0;
            }
        }
        true
    }
}
