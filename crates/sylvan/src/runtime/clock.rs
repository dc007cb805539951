//! The hub's clock: real time, or virtual time that tests pause and advance.
//!
//! Time is kept as nanoseconds since the hub's epoch (the `Instant` at which
//! the hub was created). While paused, the clock stands still except when
//! [`Clock::advance`] moves it, or when the hub has nothing to do but wait for
//! a timer, in which case it jumps straight to that timer's deadline
//! (auto-advance, as tokio's paused clock does). Virtual time never goes
//! backwards; resuming keeps the offset accumulated while paused.

use std::cell::Cell;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Clock {
    epoch: Instant,
    /// The epoch again, as `CLOCK_MONOTONIC` nanoseconds (read just after
    /// `epoch`), for the cheap real reads of [`now`](Self::now). Read
    /// second, it is at or after `epoch`: the hub's time lags the
    /// `Instant` time line by the gap between the two reads (tens of
    /// nanoseconds), so a deadline given as an `Instant` fires that much
    /// late, never early.
    epoch_ns: u64,
    /// `Some(now)` while paused.
    paused: Cell<Option<u64>>,
    /// Added to real elapsed time (virtual time skipped while paused).
    offset: Cell<u64>,
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

impl Clock {
    pub(crate) fn new() -> Clock {
        let epoch = Instant::now();
        Clock {
            epoch,
            epoch_ns: crate::sys::time::monotonic_ns(),
            paused: Cell::new(None),
            offset: Cell::new(0),
        }
    }

    #[inline]
    fn real(&self) -> u64 {
        crate::sys::time::monotonic_ns().saturating_sub(self.epoch_ns)
    }

    /// Now, in nanoseconds since the epoch.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        match self.paused.get() {
            Some(t) => t,
            None => self.real().saturating_add(self.offset.get()),
        }
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused.get().is_some()
    }

    pub(crate) fn pause(&self) {
        if self.paused.get().is_none() {
            self.paused.set(Some(self.now()));
        }
    }

    pub(crate) fn resume(&self) {
        if let Some(t) = self.paused.take() {
            self.offset.set(t.saturating_sub(self.real()));
        }
    }

    /// Moves paused time forward by `d`; returns false if not paused.
    pub(crate) fn advance(&self, d: Duration) -> bool {
        match self.paused.get() {
            Some(t) => {
                self.paused.set(Some(t.saturating_add(nanos(d))));
                true
            }
            None => false,
        }
    }

    /// Moves paused time forward to `t` if that is later.
    pub(crate) fn advance_to(&self, t: u64) {
        if let Some(p) = self.paused.get() {
            self.paused.set(Some(p.max(t)));
        }
    }

    /// What [`now`](Self::now) would have said when `CLOCK_MONOTONIC` read
    /// `mono_ns` (the paused time while paused): one real clock read
    /// serves several uses.
    pub(crate) fn now_at_mono(&self, mono_ns: u64) -> u64 {
        match self.paused.get() {
            Some(t) => t,
            None => mono_ns
                .saturating_sub(self.epoch_ns)
                .saturating_add(self.offset.get()),
        }
    }

    /// The `Instant` this clock calls now.
    pub(crate) fn now_instant(&self) -> Instant {
        self.to_instant(self.now())
    }

    pub(crate) fn to_instant(&self, t: u64) -> Instant {
        self.epoch + Duration::from_nanos(t)
    }

    /// Converts an `Instant` on this clock's time line into nanoseconds.
    pub(crate) fn nanos_at(&self, i: Instant) -> u64 {
        nanos(i.saturating_duration_since(self.epoch))
    }

    /// `now + d`, saturating.
    pub(crate) fn after(&self, d: Duration) -> u64 {
        self.now().saturating_add(nanos(d))
    }
}
