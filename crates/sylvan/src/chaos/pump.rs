//! A pump: one direction of one connection, through that direction's
//! toxics.
//!
//! The pump takes chunks (stamped with the time they were read) from its
//! reader's queue and runs each through the chain of toxics at once. A
//! toxic does not sleep: it gives each piece of data (or end of stream) the
//! time at which it may go out, may cut data into pieces, drop it, or add
//! an end (close or reset) of its own. The results wait in a FIFO, so byte
//! order always holds; the pump writes the head when it is due. Timers of
//! their own (the `timeout` toxic's close) fire between chunks. While
//! waiting for the head's time the pump keeps taking input, so latency
//! delays bytes without cutting throughput, as in Toxiproxy; it stops
//! taking input when 1 MiB is waiting, which pushes back on the sender.

use std::collections::VecDeque;
use std::io::Write;
use std::net::Shutdown;
use std::ops::Range;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::link::{End, Link, Msg};
use super::rng::Rng;
use super::shared::Shared;
use super::toxic::{Direction, Toxic};
use crate::Cancelled;
use crate::net::TcpStream;
use crate::sync::Queue;

/// Bytes a pump holds before it stops taking input.
const MAX_PENDING_BYTES: usize = 1 << 20;

/// A piece of the stream and when it may go out.
#[derive(Debug)]
struct Item {
    at: Instant,
    what: What,
}

#[derive(Debug)]
enum What {
    Data(Vec<u8>),
    End(End),
}

impl Item {
    fn len(&self) -> usize {
        match &self.what {
            What::Data(b) => b.len(),
            What::End(_) => 0,
        }
    }
}

pub(super) struct Pump {
    dir: Direction,
    shared: Rc<Shared>,
    link: Rc<Link>,
    queue: Queue<Msg>,
    dst: Rc<TcpStream>,
    chain: Vec<Stage>,
    generation: u64,
    pending: VecDeque<Item>,
    pending_bytes: usize,
    input_done: bool,
    /// The destination failed while the other direction is silenced, so
    /// nobody could hear of it: drop everything from now on.
    sink: bool,
    rng: Rng,
}

impl Pump {
    pub(super) fn new(
        dir: Direction,
        shared: &Rc<Shared>,
        link: &Rc<Link>,
        dst: Rc<TcpStream>,
    ) -> Pump {
        Pump {
            dir,
            shared: shared.clone(),
            link: link.clone(),
            queue: link.queues[dir.index()].clone(),
            dst,
            chain: Vec::new(),
            generation: u64::MAX,
            pending: VecDeque::new(),
            pending_bytes: 0,
            input_done: false,
            sink: false,
            rng: shared.rng.borrow_mut().fork(),
        }
    }

    /// Runs until the stream has ended, the connection closed, or the green
    /// thread is killed.
    pub(super) fn run(mut self) {
        loop {
            if self.link.is_closed() {
                return;
            }
            self.refresh();
            let now = crate::time::now();
            self.fire_timers(now);
            if self.pending.front().is_some_and(|i| i.at <= now) {
                if let Some(item) = self.pending.pop_front() {
                    self.pending_bytes -= item.len();
                    if !self.perform(item) {
                        return;
                    }
                }
                continue;
            }
            let wake_at = match (self.pending.front().map(|i| i.at), self.next_timer()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if self.input_done && wake_at.is_none() {
                self.link.finish(self.dir);
                return;
            }
            let msg = if self.pending_bytes >= MAX_PENDING_BYTES {
                // Full: only time moves us on (a kill still does).
                let Some(t) = wake_at else { return };
                if crate::time::sleep_until(t).is_err() {
                    return;
                }
                None
            } else {
                // Input, a wake from the proxy, or the next due time.
                let q = &self.queue;
                match wake_at {
                    Some(t) => match crate::deadline(t, || q.get()) {
                        Ok(Ok(m)) => Some(m),
                        Ok(Err(_)) => return,
                        Err(_) => None,
                    },
                    None => match q.get() {
                        Ok(m) => Some(m),
                        Err(_) => return,
                    },
                }
            };
            match msg {
                Some(Msg::Data(at, b)) => self.push_through(
                    0,
                    Item {
                        at,
                        what: What::Data(b),
                    },
                ),
                Some(Msg::End(at, e)) => {
                    self.input_done = true;
                    self.push_through(
                        0,
                        Item {
                            at,
                            what: What::End(e),
                        },
                    );
                }
                Some(Msg::Wake) | None => {}
            }
        }
    }

    /// Writes one due item out. Returns whether to go on.
    fn perform(&mut self, item: Item) -> bool {
        match item.what {
            What::Data(b) => {
                if self.sink {
                    return true;
                }
                match (&*self.dst).write_all(&b) {
                    Ok(()) => {
                        self.shared.count(self.dir, b.len());
                        true
                    }
                    Err(e) if Cancelled::from_io(&e).is_some() => false,
                    Err(e) => {
                        if self.shared.silenced(&self.link, self.dir.opposite()) {
                            self.sink = true;
                            true
                        } else {
                            self.link.close(End::after(&e));
                            false
                        }
                    }
                }
            }
            What::End(End::Eof) => {
                if !self.sink {
                    let _ = self.dst.shutdown(Shutdown::Write);
                }
                true
            }
            What::End(e) => {
                self.link.close(e);
                false
            }
        }
    }

    /// Runs `item` through the stages from `from` on and queues what comes
    /// out.
    fn push_through(&mut self, from: usize, item: Item) {
        let mut items = vec![item];
        for stage in &mut self.chain[from..] {
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                stage.apply(it, &mut self.rng, &mut out);
            }
            items = out;
            if items.is_empty() {
                return;
            }
        }
        for it in items {
            self.pending_bytes += it.len();
            self.pending.push_back(it);
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        for i in 0..self.chain.len() {
            if let Some(at) = self.chain[i].timer().filter(|t| *t <= now) {
                self.chain[i].ended = true;
                let close = Item {
                    at,
                    what: What::End(End::Close),
                };
                self.push_through(i + 1, close);
            }
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        self.chain.iter().filter_map(Stage::timer).min()
    }

    /// Rebuilds the chain if the proxy's toxics changed, keeping the state
    /// of toxics that are still there.
    fn refresh(&mut self) {
        let generation = self.shared.generation.get();
        if generation == self.generation {
            return;
        }
        self.generation = generation;
        let mut old = std::mem::take(&mut self.chain);
        let toxics = self.shared.toxics.borrow();
        let rolls = self.link.rolls.borrow();
        for slot in toxics.iter().filter(|s| s.info.direction == self.dir) {
            let active = rolls.get(&slot.id).copied().unwrap_or(false);
            let since = slot.since.max(self.link.started);
            let stage = match old.iter().position(|s| s.id == slot.id) {
                Some(i) if old[i].toxic.type_name() == slot.info.toxic.type_name() => {
                    let mut s = old.swap_remove(i);
                    s.toxic = slot.info.toxic.clone();
                    s.active = active;
                    s.since = since;
                    s
                }
                _ => Stage::new(slot.id, slot.info.toxic.clone(), active, since),
            };
            self.chain.push(stage);
        }
    }
}

/// One toxic of the chain, with its state on this connection.
#[derive(Debug)]
struct Stage {
    id: u64,
    toxic: Toxic,
    /// Whether the toxicity roll made it apply to this connection.
    active: bool,
    /// When it took effect on this connection.
    since: Instant,
    /// When the last item it let through goes out: later items don't
    /// overtake it.
    free_at: Option<Instant>,
    /// Bytes let through (`limit_data`).
    sent: u64,
    /// It ended the stream (or armed a reset): it drops everything now.
    ended: bool,
}

impl Stage {
    fn new(id: u64, toxic: Toxic, active: bool, since: Instant) -> Stage {
        Stage {
            id,
            toxic,
            active,
            since,
            free_at: None,
            sent: 0,
            ended: false,
        }
    }

    /// Not before anything this stage already let through.
    fn after_free(&self, at: Instant) -> Instant {
        self.free_at.map_or(at, |f| f.max(at))
    }

    /// When this stage closes the connection by itself.
    fn timer(&self) -> Option<Instant> {
        match self.toxic {
            Toxic::Timeout { timeout } if self.active && !self.ended && !timeout.is_zero() => {
                Some(self.since + timeout)
            }
            _ => None,
        }
    }

    fn apply(&mut self, item: Item, rng: &mut Rng, out: &mut Vec<Item>) {
        if !self.active {
            out.push(item);
            return;
        }
        if self.ended {
            return;
        }
        let Item { at, what } = item;
        match (&self.toxic, what) {
            (Toxic::Latency { latency, jitter }, What::Data(b)) => {
                let t = self.after_free(at + jittered(*latency, *jitter, rng));
                self.free_at = Some(t);
                out.push(Item {
                    at: t,
                    what: What::Data(b),
                });
            }
            (Toxic::Bandwidth { rate_kb_per_s }, What::Data(b)) => {
                let rate = *rate_kb_per_s;
                let start = self.after_free(at);
                // 100 ms worth per piece.
                let piece = usize::try_from(rate.saturating_mul(100)).unwrap_or(usize::MAX);
                let (mut done, mut t) = (0, start);
                for c in b.chunks(piece.max(1)) {
                    done += c.len();
                    t = start + transfer_time(done, rate);
                    out.push(Item {
                        at: t,
                        what: What::Data(c.to_vec()),
                    });
                }
                self.free_at = Some(t);
            }
            (
                Toxic::Slicer {
                    average_size,
                    size_variation,
                    delay,
                },
                What::Data(b),
            ) => {
                let mut t = self.after_free(at);
                let mut ranges = Vec::new();
                slices(0..b.len(), *average_size, *size_variation, rng, &mut ranges);
                for r in ranges {
                    out.push(Item {
                        at: t,
                        what: What::Data(b[r].to_vec()),
                    });
                    t += *delay;
                }
                self.free_at = Some(t);
            }
            (Toxic::LimitData { bytes }, What::Data(mut b)) => {
                let room = bytes.saturating_sub(self.sent);
                b.truncate(usize::try_from(room).unwrap_or(usize::MAX));
                self.sent += b.len() as u64;
                if !b.is_empty() {
                    out.push(Item {
                        at,
                        what: What::Data(b),
                    });
                }
                if self.sent >= *bytes {
                    self.ended = true;
                    out.push(Item {
                        at,
                        what: What::End(End::Close),
                    });
                }
            }
            (Toxic::Timeout { .. } | Toxic::HalfOpen, _) => {}
            (Toxic::ResetPeer { timeout }, _) => {
                self.ended = true;
                out.push(Item {
                    at: at + *timeout,
                    what: What::End(End::Reset),
                });
            }
            (Toxic::SlowClose { delay }, What::End(e)) => out.push(Item {
                at: self.after_free(at) + *delay,
                what: What::End(e),
            }),
            (_, what) => out.push(Item {
                at: self.after_free(at),
                what,
            }),
        }
    }
}

/// `latency` ± up to `jitter`, uniformly, never below zero.
fn jittered(latency: Duration, jitter: Duration, rng: &mut Rng) -> Duration {
    if jitter.is_zero() {
        return latency;
    }
    let j = u64::try_from(jitter.as_nanos())
        .unwrap_or(u64::MAX / 2)
        .min(u64::MAX / 2);
    let offset = i128::from(rng.below(2 * j)) - i128::from(j);
    let total = (latency.as_nanos() as i128 + offset).max(0);
    Duration::from_nanos(u64::try_from(total).unwrap_or(u64::MAX))
}

/// How long `bytes` take at `rate` KB/s (= bytes per millisecond).
fn transfer_time(bytes: usize, rate: u64) -> Duration {
    let ns = bytes as u128 * 1_000_000 / u128::from(rate.max(1));
    Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
}

/// Cuts `r` into slices of about `avg` ± `var` bytes by halving it at a
/// point moved by up to `var` either way, as Toxiproxy's slicer does, so
/// slice sizes vary evenly along the chunk. Needs `var < avg`.
fn slices(r: Range<usize>, avg: usize, var: usize, rng: &mut Rng, out: &mut Vec<Range<usize>>) {
    if r.len() <= avg.saturating_add(var) {
        if !r.is_empty() {
            out.push(r);
        }
        return;
    }
    let offset = rng.below(2 * var as u64) as usize;
    // In range: r.len() > avg + var >= 2 * var + 1, so both halves are
    // non-empty.
    let mid = r.start + r.len() / 2 + offset - var;
    slices(r.start..mid, avg, var, rng, out);
    slices(mid..r.end, avg, var, rng, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_the_chunk_in_order() {
        let mut rng = Rng::new(3);
        for (len, avg, var) in [
            (0, 1, 0),
            (1, 1, 0),
            (1000, 10, 5),
            (32768, 100, 99),
            (7, 100, 0),
        ] {
            let mut out = Vec::new();
            slices(0..len, avg, var, &mut rng, &mut out);
            let mut next = 0;
            for r in &out {
                assert_eq!(r.start, next);
                assert!(!r.is_empty());
                assert!(r.len() <= avg + var, "{r:?} for avg {avg} var {var}");
                next = r.end;
            }
            assert_eq!(next, len);
        }
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let mut rng = Rng::new(9);
        let (l, j) = (Duration::from_millis(10), Duration::from_millis(4));
        for _ in 0..1000 {
            let d = jittered(l, j, &mut rng);
            assert!(d >= l - j && d < l + j, "{d:?}");
        }
        let d = jittered(Duration::from_millis(1), Duration::from_secs(1), &mut rng);
        assert!(d < Duration::from_millis(1001));
    }

    #[test]
    fn transfer_time_follows_the_rate() {
        assert_eq!(transfer_time(1000, 1), Duration::from_secs(1));
        assert_eq!(transfer_time(100_000, 1000), Duration::from_millis(100));
    }
}
