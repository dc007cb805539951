//! The hub's timers: an indexed 4-ary min-heap.
//!
//! Insert and cancel are O(log n); cancel is by key, so a timer that is
//! disarmed before it fires (the common case for network timeouts) leaves
//! nothing behind. Entries live in a slab with a free list and the heap holds
//! slab indices, so once the hub has warmed up no operation allocates. Each
//! entry has a generation, so a stale key (its timer already fired and the
//! slot was reused) cancels nothing.
//!
//! Times are nanoseconds on the hub's clock. Timers with equal deadlines fire
//! in the order they were armed.

use super::park::WakeToken;

const ARITY: usize = 4;
const NONE: u32 = u32::MAX;

#[derive(Debug)]
struct Entry {
    when: u64,
    seq: u64,
    token: WakeToken,
    /// Position in `heap`, or NONE while the entry is free.
    pos: u32,
    generation: u32,
}

/// Identifies an armed timer, for cancelling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerKey {
    idx: u32,
    generation: u32,
}

/// A set of timers ordered by deadline.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    entries: Vec<Entry>,
    free: Vec<u32>,
    heap: Vec<u32>,
    seq: u64,
}

impl Timers {
    /// Number of armed timers.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Arms a timer that delivers `token` at `when`.
    pub(crate) fn insert(&mut self, when: u64, token: WakeToken) -> TimerKey {
        self.seq += 1;
        let pos = self.heap.len() as u32;
        let idx = match self.free.pop() {
            Some(idx) => {
                let e = &mut self.entries[idx as usize];
                e.when = when;
                e.seq = self.seq;
                e.token = token;
                e.pos = pos;
                idx
            }
            None => {
                self.entries.push(Entry {
                    when,
                    seq: self.seq,
                    token,
                    pos,
                    generation: 0,
                });
                (self.entries.len() - 1) as u32
            }
        };
        self.heap.push(idx);
        self.sift_up(pos as usize);
        TimerKey {
            idx,
            generation: self.entries[idx as usize].generation,
        }
    }

    /// Disarms a timer. Returns false if it already fired or was cancelled.
    pub(crate) fn cancel(&mut self, key: TimerKey) -> bool {
        match self.entries.get(key.idx as usize) {
            Some(e) if e.generation == key.generation && e.pos != NONE => {
                let pos = e.pos as usize;
                self.remove_at(pos);
                true
            }
            _ => false,
        }
    }

    /// The earliest deadline, if any timer is armed.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.heap.first().map(|&i| self.entries[i as usize].when)
    }

    /// Removes and returns the earliest timer if its deadline is `<= now`.
    pub(crate) fn pop_expired(&mut self, now: u64) -> Option<WakeToken> {
        let &first = self.heap.first()?;
        let e = &self.entries[first as usize];
        if e.when > now {
            return None;
        }
        let token = e.token;
        self.remove_at(0);
        Some(token)
    }

    fn key(&self, heap_pos: usize) -> (u64, u64) {
        let e = &self.entries[self.heap[heap_pos] as usize];
        (e.when, e.seq)
    }

    fn remove_at(&mut self, pos: usize) {
        let idx = self.heap[pos];
        let last = self.heap.len() - 1;
        self.heap.swap(pos, last);
        self.heap.pop();
        let e = &mut self.entries[idx as usize];
        e.pos = NONE;
        e.generation = e.generation.wrapping_add(1);
        self.free.push(idx);
        if pos < self.heap.len() {
            let moved = self.heap[pos] as usize;
            self.set_pos(pos);
            self.sift_up(pos);
            self.sift_down(self.entries[moved].pos as usize);
        }
    }

    fn set_pos(&mut self, pos: usize) {
        let idx = self.heap[pos] as usize;
        self.entries[idx].pos = pos as u32;
    }

    fn sift_up(&mut self, mut pos: usize) {
        while pos > 0 {
            let parent = (pos - 1) / ARITY;
            if self.key(pos) >= self.key(parent) {
                break;
            }
            self.heap.swap(pos, parent);
            self.set_pos(pos);
            self.set_pos(parent);
            pos = parent;
        }
    }

    fn sift_down(&mut self, mut pos: usize) {
        let n = self.heap.len();
        loop {
            let first = pos * ARITY + 1;
            if first >= n {
                break;
            }
            let mut best = first;
            for c in first + 1..(first + ARITY).min(n) {
                if self.key(c) < self.key(best) {
                    best = c;
                }
            }
            if self.key(best) >= self.key(pos) {
                break;
            }
            self.heap.swap(pos, best);
            self.set_pos(pos);
            self.set_pos(best);
            pos = best;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tok(n: u64) -> WakeToken {
        WakeToken {
            slot: n as u32,
            seq: n,
        }
    }

    #[test]
    fn fires_in_deadline_order_then_insertion_order() {
        let mut t = Timers::default();
        t.insert(30, tok(1));
        t.insert(10, tok(2));
        t.insert(20, tok(3));
        t.insert(10, tok(4));
        assert_eq!(t.next_deadline(), Some(10));
        assert_eq!(t.pop_expired(9), None);
        let fired: Vec<u64> = std::iter::from_fn(|| t.pop_expired(100))
            .map(|w| w.seq)
            .collect();
        assert_eq!(fired, vec![2, 4, 3, 1]);
    }

    #[test]
    fn stale_key_cancels_nothing() {
        let mut t = Timers::default();
        let k = t.insert(5, tok(1));
        assert!(t.pop_expired(5).is_some());
        let k2 = t.insert(5, tok(2));
        assert!(!t.cancel(k), "the first timer already fired");
        assert_eq!(t.len(), 1);
        assert!(t.cancel(k2));
        assert!(!t.cancel(k2));
        assert_eq!(t.len(), 0);
    }

    proptest! {
        /// Against a model: random inserts, cancels and pops; every pop
        /// returns the smallest (deadline, arming order) that is still armed,
        /// and cancelled timers never come out.
        #[test]
        fn matches_model(ops in proptest::collection::vec((0u8..3, 0u64..1000), 1..400)) {
            let mut t = Timers::default();
            let mut model: Vec<(u64, u64, TimerKey)> = Vec::new();
            let mut n = 0u64;
            for (op, v) in ops {
                match op {
                    0 => {
                        n += 1;
                        let k = t.insert(v, tok(n));
                        model.push((v, n, k));
                    }
                    1 if !model.is_empty() => {
                        let i = (v as usize) % model.len();
                        let (_, _, k) = model.remove(i);
                        prop_assert!(t.cancel(k));
                    }
                    _ => {
                        model.sort_by_key(|m| (m.0, m.1));
                        let expect = model.first().filter(|m| m.0 <= v).map(|m| m.1);
                        let got = t.pop_expired(v).map(|w| w.seq);
                        prop_assert_eq!(got, expect);
                        if expect.is_some() {
                            model.remove(0);
                        }
                    }
                }
                prop_assert_eq!(t.len(), model.len());
            }
        }
    }
}
