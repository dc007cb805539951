//! The hub's timers: an indexed 4-ary min-heap with lazy cancellation.
//!
//! Insert is O(log n) at worst; cancel is O(1). Network timeouts are armed
//! on every park and nearly always cancelled before they fire (a keep-alive
//! connection arms one per request, then its next request comes). So a
//! cancelled timer is not taken out of the heap: it stays there, dead, until
//! the next insert takes it over or it reaches the top. An insert takes over
//! the most recently cancelled timer: if its deadline is no earlier than the
//! dead one's, the entry keeps its place and its old deadline as a lower
//! bound of the new one, and the heap is not touched at all. Only when such
//! an entry reaches the top is its real deadline put in (and sifted down):
//! a timer re-armed at each of many requests is moved once per period of
//! its timeout, not once per request.
//!
//! Entries live in a slab with a free list and the heap holds slab indices,
//! so once the hub has warmed up no operation allocates; dead entries count
//! against that slab, which never holds more than the most timers ever
//! armed at once. Each entry has a generation, so a stale key (its timer
//! already fired, or was cancelled, and the slot was reused) cancels
//! nothing.
//!
//! Times are nanoseconds on the hub's clock. Timers with equal deadlines fire
//! in the order they were armed.

use super::park::WakeToken;

const ARITY: usize = 4;
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the free list, not in the heap.
    Free,
    /// Armed; in the heap.
    Armed,
    /// Cancelled, still in the heap.
    Dead,
}

#[derive(Debug)]
struct Entry {
    /// The heap's order: `(deadline, arming order)`. For an armed entry, no
    /// later than `(when, seq)`; lower while the entry still has the place
    /// of an earlier timer it took over.
    key: (u64, u64),
    when: u64,
    seq: u64,
    token: WakeToken,
    /// Position in `heap`, or NONE while the entry is free.
    pos: u32,
    generation: u32,
    state: State,
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
    /// Cancelled entries, most recent last; some may have left the heap
    /// (or been taken over) since, and are skipped.
    dead: Vec<u32>,
    heap: Vec<u32>,
    seq: u64,
    armed: usize,
}

impl Timers {
    /// Number of armed timers.
    pub(crate) fn len(&self) -> usize {
        self.armed
    }

    /// Arms a timer that delivers `token` at `when`.
    pub(crate) fn insert(&mut self, when: u64, token: WakeToken) -> TimerKey {
        self.seq += 1;
        let seq = self.seq;
        self.armed += 1;
        let idx = match self.take_dead() {
            Some(idx) => {
                let e = &mut self.entries[idx as usize];
                e.when = when;
                e.seq = seq;
                e.token = token;
                e.state = State::Armed;
                if when < e.key.0 {
                    // Earlier than the place it takes over: move up.
                    e.key = (when, seq);
                    let pos = e.pos as usize;
                    self.sift_up(pos);
                }
                idx
            }
            None => {
                let pos = self.heap.len() as u32;
                let entry = Entry {
                    key: (when, seq),
                    when,
                    seq,
                    token,
                    pos,
                    generation: 0,
                    state: State::Armed,
                };
                let idx = match self.free.pop() {
                    Some(idx) => {
                        let e = &mut self.entries[idx as usize];
                        *e = Entry {
                            generation: e.generation,
                            ..entry
                        };
                        idx
                    }
                    None => {
                        self.entries.push(entry);
                        (self.entries.len() - 1) as u32
                    }
                };
                self.heap.push(idx);
                self.sift_up(pos as usize);
                idx
            }
        };
        TimerKey {
            idx,
            generation: self.entries[idx as usize].generation,
        }
    }

    /// The most recently cancelled entry still in the heap, if any.
    fn take_dead(&mut self) -> Option<u32> {
        while let Some(idx) = self.dead.pop() {
            if self.entries[idx as usize].state == State::Dead {
                return Some(idx);
            }
        }
        None
    }

    /// Disarms a timer. Returns false if it already fired or was cancelled.
    pub(crate) fn cancel(&mut self, key: TimerKey) -> bool {
        match self.entries.get_mut(key.idx as usize) {
            Some(e) if e.generation == key.generation && e.state == State::Armed => {
                e.state = State::Dead;
                e.generation = e.generation.wrapping_add(1);
                self.armed -= 1;
                self.dead.push(key.idx);
                true
            }
            _ => false,
        }
    }

    /// No later than the earliest deadline, if any timer is armed: a
    /// cancelled timer, or the place a re-armed one took over, may still
    /// be on top (waking the hub early costs a turn, never a late timer).
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        if self.armed == 0 {
            return None;
        }
        self.heap.first().map(|&i| self.entries[i as usize].key.0)
    }

    /// Removes and returns the earliest timer if its deadline is `<= now`.
    pub(crate) fn pop_expired(&mut self, now: u64) -> Option<WakeToken> {
        loop {
            let &first = self.heap.first()?;
            let e = &mut self.entries[first as usize];
            if e.key.0 > now {
                return None;
            }
            match e.state {
                State::Dead => {
                    e.state = State::Free;
                    self.remove_at(0);
                    self.free.push(first);
                }
                // Holding an earlier timer's place: its own deadline now.
                State::Armed if e.key != (e.when, e.seq) => {
                    e.key = (e.when, e.seq);
                    self.sift_down(0);
                }
                State::Armed => {
                    let token = e.token;
                    e.state = State::Free;
                    e.generation = e.generation.wrapping_add(1);
                    self.armed -= 1;
                    self.remove_at(0);
                    self.free.push(first);
                    return Some(token);
                }
                State::Free => unreachable!("a free timer entry in the heap"),
            }
        }
    }

    fn key(&self, heap_pos: usize) -> (u64, u64) {
        self.entries[self.heap[heap_pos] as usize].key
    }

    /// Takes the entry at `pos` out of the heap.
    fn remove_at(&mut self, pos: usize) {
        let idx = self.heap[pos];
        let last = self.heap.len() - 1;
        self.heap.swap(pos, last);
        self.heap.pop();
        self.entries[idx as usize].pos = NONE;
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

    #[test]
    fn a_timer_rearmed_later_takes_over_the_cancelled_place() {
        let mut t = Timers::default();
        let other = t.insert(1_000, tok(9));
        let k = t.insert(100, tok(1));
        assert!(t.cancel(k));
        // The next park of the same green thread, with a later deadline:
        // the heap is not touched, the old deadline stays as a bound.
        let k2 = t.insert(200, tok(2));
        assert_eq!(t.heap.len(), 2);
        assert_eq!(t.len(), 2);
        assert_eq!(t.next_deadline(), Some(100));
        assert_eq!(t.pop_expired(150), None);
        assert_eq!(t.next_deadline(), Some(200), "its own deadline is in now");
        assert!(!t.cancel(k), "the old key is stale");
        assert_eq!(t.pop_expired(200).map(|w| w.seq), Some(2));
        assert!(!t.cancel(k2), "it fired");
        assert!(t.cancel(other));
        assert_eq!((t.len(), t.next_deadline()), (0, None));
    }

    #[test]
    fn a_timer_rearmed_earlier_moves_up() {
        let mut t = Timers::default();
        t.insert(100, tok(1));
        let k = t.insert(500, tok(2));
        assert!(t.cancel(k));
        t.insert(10, tok(3));
        assert_eq!(t.next_deadline(), Some(10));
        let fired: Vec<u64> = std::iter::from_fn(|| t.pop_expired(1_000))
            .map(|w| w.seq)
            .collect();
        assert_eq!(fired, vec![3, 1]);
        assert_eq!(t.heap.len(), 0);
    }

    #[test]
    fn equal_deadlines_keep_arming_order_across_takeovers() {
        let mut t = Timers::default();
        let k = t.insert(5, tok(1));
        t.insert(50, tok(2));
        assert!(t.cancel(k));
        // Takes over the place at 5; armed after the timer at 50.
        t.insert(50, tok(3));
        let fired: Vec<u64> = std::iter::from_fn(|| t.pop_expired(50))
            .map(|w| w.seq)
            .collect();
        assert_eq!(fired, vec![2, 3]);
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
                // The hub's wake-up time: never after the earliest deadline.
                let earliest = model.iter().map(|m| m.0).min();
                prop_assert_eq!(t.next_deadline().is_some(), earliest.is_some());
                prop_assert!(t.next_deadline() <= earliest);
            }
        }
    }
}
