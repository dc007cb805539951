//! The items of a [`Queue`](super::Queue) in one of three orders: FIFO,
//! LIFO, or priority (smallest first, ties in arrival order).
//!
//! A priority store is a binary min-heap on `(value, ticket)`; tickets grow,
//! so equal values come out in the order they were put. Removing an item by
//! ticket (a rendezvous `put` withdrawing its offer) is O(n) to find it —
//! those queues hold one item per waiting putter — and O(log n) to fix the
//! heap.

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::fmt;

use crate::runtime::WakeToken;

/// The order in which a [`Queue`](super::Queue) hands out its items.
///
/// # Examples
///
/// ```
/// use sylvan::sync::{Queue, QueueOrder};
///
/// assert_eq!(Queue::<u8>::unbounded().order(), QueueOrder::Fifo);
/// assert_eq!(Queue::<u8>::lifo(4).order(), QueueOrder::Lifo);
/// assert_eq!(Queue::<u8>::priority(4).order(), QueueOrder::Priority);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QueueOrder {
    /// First in, first out (Eventlet's `Queue`).
    Fifo,
    /// Last in, first out (Eventlet's `LifoQueue`).
    Lifo,
    /// Smallest first by `Ord`, equal items first in, first out
    /// (Eventlet's `PriorityQueue`).
    Priority,
}

pub(super) struct Item<T> {
    pub(super) value: T,
    /// Unique per queue, increasing.
    pub(super) ticket: u64,
    /// For rendezvous puts: the parked putter to wake when it is taken.
    pub(super) putter: Option<WakeToken>,
}

pub(super) struct Store<T> {
    items: VecDeque<Item<T>>,
    cmp: Option<fn(&T, &T) -> Ordering>,
    order: QueueOrder,
}

impl<T> fmt::Debug for Store<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("len", &self.items.len())
            .field("order", &self.order)
            .finish()
    }
}

impl<T> Store<T> {
    pub(super) fn fifo() -> Store<T> {
        Store {
            items: VecDeque::new(),
            cmp: None,
            order: QueueOrder::Fifo,
        }
    }

    pub(super) fn lifo() -> Store<T> {
        Store {
            order: QueueOrder::Lifo,
            ..Store::fifo()
        }
    }

    pub(super) fn priority() -> Store<T>
    where
        T: Ord,
    {
        Store {
            cmp: Some(T::cmp),
            order: QueueOrder::Priority,
            ..Store::fifo()
        }
    }

    pub(super) fn order(&self) -> QueueOrder {
        self.order
    }

    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    pub(super) fn push(&mut self, item: Item<T>) {
        self.items.push_back(item);
        if self.cmp.is_some() {
            self.sift_up(self.items.len() - 1);
        }
    }

    /// Takes the next item in this store's order.
    pub(super) fn pop(&mut self) -> Option<Item<T>> {
        match self.order {
            QueueOrder::Lifo => self.items.pop_back(),
            QueueOrder::Priority => self.remove_at(0),
            _ => self.items.pop_front(),
        }
    }

    pub(super) fn find_mut(&mut self, ticket: u64) -> Option<&mut Item<T>> {
        self.items.iter_mut().find(|i| i.ticket == ticket)
    }

    /// Calls `f` with the token of every parked rendezvous putter.
    pub(super) fn for_each_putter(&self, mut f: impl FnMut(WakeToken)) {
        for t in self.items.iter().filter_map(|i| i.putter) {
            f(t);
        }
    }

    pub(super) fn contains(&self, ticket: u64) -> bool {
        self.items.iter().any(|i| i.ticket == ticket)
    }

    /// Removes the item with `ticket`, if it is still here.
    pub(super) fn remove(&mut self, ticket: u64) -> Option<Item<T>> {
        let pos = self.items.iter().position(|i| i.ticket == ticket)?;
        self.remove_at(pos)
    }

    fn remove_at(&mut self, pos: usize) -> Option<Item<T>> {
        if self.cmp.is_none() {
            return self.items.remove(pos);
        }
        let item = self.items.swap_remove_back(pos)?;
        if pos < self.items.len() {
            self.sift_up(pos);
            self.sift_down(pos);
        }
        Some(item)
    }

    /// Whether the item at `a` comes out before the one at `b`.
    fn before(&self, a: usize, b: usize) -> bool {
        let cmp = self.cmp.expect("only priority stores are heaps");
        let (x, y) = (&self.items[a], &self.items[b]);
        cmp(&x.value, &y.value).then(x.ticket.cmp(&y.ticket)) == Ordering::Less
    }

    fn sift_up(&mut self, mut pos: usize) {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if !self.before(pos, parent) {
                break;
            }
            self.items.swap(pos, parent);
            pos = parent;
        }
    }

    fn sift_down(&mut self, mut pos: usize) {
        let n = self.items.len();
        loop {
            let (l, r) = (2 * pos + 1, 2 * pos + 2);
            let mut best = pos;
            if l < n && self.before(l, best) {
                best = l;
            }
            if r < n && self.before(r, best) {
                best = r;
            }
            if best == pos {
                break;
            }
            self.items.swap(pos, best);
            pos = best;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(value: u8, ticket: u64) -> Item<u8> {
        Item {
            value,
            ticket,
            putter: None,
        }
    }

    proptest! {
        /// Random pushes, pops and removals by ticket against a model: a
        /// list from which the first (FIFO), last (LIFO) or smallest
        /// `(value, ticket)` (priority) item is taken.
        #[test]
        fn matches_model(kind in 0u8..3, ops in proptest::collection::vec((0u8..3, 0u8..8), 1..300)) {
            let mut s = match kind {
                0 => Store::fifo(),
                1 => Store::lifo(),
                _ => Store::priority(),
            };
            let mut model: Vec<(u8, u64)> = Vec::new();
            let mut ticket = 0;
            for (op, v) in ops {
                match op {
                    0 => {
                        ticket += 1;
                        s.push(item(v, ticket));
                        model.push((v, ticket));
                    }
                    1 => {
                        let expect = match kind {
                            0 => (!model.is_empty()).then(|| model.remove(0)),
                            1 => model.pop(),
                            _ => {
                                let min = model.iter().enumerate().min_by_key(|(_, m)| **m).map(|(i, _)| i);
                                min.map(|i| model.remove(i))
                            }
                        };
                        let got = s.pop().map(|i| (i.value, i.ticket));
                        prop_assert_eq!(got, expect);
                    }
                    _ => {
                        if !model.is_empty() {
                            let (val, t) = model.remove(v as usize % model.len());
                            let got = s.remove(t).map(|i| (i.value, i.ticket));
                            prop_assert_eq!(got, Some((val, t)));
                            prop_assert!(!s.contains(t));
                        }
                    }
                }
                prop_assert_eq!(s.len(), model.len());
            }
        }
    }
}
