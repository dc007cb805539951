//! The sliding window a closed [`CircuitBreaker`](super::CircuitBreaker)
//! judges its failure and slow-call rates over: the last N calls, or the
//! calls of the last span of time in ten buckets.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How the window is measured.
#[derive(Debug, Clone, Copy)]
pub(super) enum WindowKind {
    /// The last N outcomes.
    Count(u32),
    /// The outcomes of the last span of time.
    Time(Duration),
}

/// Aggregated outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counts {
    pub(super) calls: u32,
    pub(super) failed: u32,
    pub(super) slow: u32,
    pub(super) slow_failed: u32,
}

impl Counts {
    pub(super) fn one(failed: bool, slow: bool) -> Counts {
        Counts {
            calls: 1,
            failed: failed.into(),
            slow: slow.into(),
            slow_failed: (failed && slow).into(),
        }
    }

    pub(super) fn add(&mut self, o: Counts) {
        self.calls += o.calls;
        self.failed += o.failed;
        self.slow += o.slow;
        self.slow_failed += o.slow_failed;
    }

    pub(super) fn sub(&mut self, o: Counts) {
        self.calls -= o.calls;
        self.failed -= o.failed;
        self.slow -= o.slow;
        self.slow_failed -= o.slow_failed;
    }

    /// Failure and slow-call rates in percent (0 when empty).
    pub(super) fn rates(&self) -> (f64, f64) {
        if self.calls == 0 {
            return (0.0, 0.0);
        }
        let n = f64::from(self.calls);
        (
            f64::from(self.failed) * 100.0 / n,
            f64::from(self.slow) * 100.0 / n,
        )
    }
}

const TIME_BUCKETS: usize = 10;

/// The sliding window of a closed breaker.
#[derive(Debug)]
pub(super) enum Window {
    /// The last `size` outcomes, and their running totals.
    Count {
        size: u32,
        ring: VecDeque<Counts>,
        totals: Counts,
    },
    /// `TIME_BUCKETS` buckets of `width` each; bucket `i` holds the calls
    /// completed during `[origin + i·width, origin + (i+1)·width)`, stored
    /// in slot `i % TIME_BUCKETS` with its `i`.
    Time {
        width: Duration,
        origin: Instant,
        buckets: Box<[(u64, Counts); TIME_BUCKETS]>,
    },
}

impl Window {
    pub(super) fn new(kind: WindowKind, now: Instant) -> Window {
        match kind {
            WindowKind::Count(size) => Window::Count {
                size,
                ring: VecDeque::new(),
                totals: Counts::default(),
            },
            WindowKind::Time(span) => Window::Time {
                width: (span / TIME_BUCKETS as u32).max(Duration::from_nanos(1)),
                origin: now,
                buckets: Box::new([(0, Counts::default()); TIME_BUCKETS]),
            },
        }
    }

    pub(super) fn record(&mut self, now: Instant, outcome: Counts) {
        match self {
            Window::Count { size, ring, totals } => {
                if ring.len() >= *size as usize {
                    if let Some(old) = ring.pop_front() {
                        totals.sub(old);
                    }
                }
                ring.push_back(outcome);
                totals.add(outcome);
            }
            Window::Time {
                width,
                origin,
                buckets,
            } => {
                let i = bucket_index(*origin, *width, now);
                let slot = &mut buckets[(i % TIME_BUCKETS as u64) as usize];
                if slot.0 != i {
                    *slot = (i, Counts::default());
                }
                slot.1.add(outcome);
            }
        }
    }

    pub(super) fn counts(&self, now: Instant) -> Counts {
        match self {
            Window::Count { totals, .. } => *totals,
            Window::Time {
                width,
                origin,
                buckets,
            } => {
                let current = bucket_index(*origin, *width, now);
                let mut sum = Counts::default();
                for (i, c) in buckets.iter() {
                    if *i <= current && current - *i < TIME_BUCKETS as u64 {
                        sum.add(*c);
                    }
                }
                sum
            }
        }
    }

    pub(super) fn clear(&mut self) {
        match self {
            Window::Count { ring, totals, .. } => {
                ring.clear();
                *totals = Counts::default();
            }
            Window::Time { buckets, .. } => {
                for b in buckets.iter_mut() {
                    b.1 = Counts::default();
                }
            }
        }
    }
}

fn bucket_index(origin: Instant, width: Duration, now: Instant) -> u64 {
    let elapsed = now.saturating_duration_since(origin).as_nanos();
    u64::try_from(elapsed / width.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obvious model: every outcome kept with the time it was recorded;
    /// a count window sums the last `size`, a time window sums those whose
    /// bucket is one of the last `TIME_BUCKETS` up to now's.
    struct Model {
        kind: WindowKind,
        origin: Instant,
        width: Duration,
        all: Vec<(Instant, Counts)>,
    }

    impl Model {
        fn counts(&self, now: Instant) -> Counts {
            let mut sum = Counts::default();
            match self.kind {
                WindowKind::Count(size) => {
                    let skip = self.all.len().saturating_sub(size as usize);
                    for (_, c) in &self.all[skip..] {
                        sum.add(*c);
                    }
                }
                WindowKind::Time(_) => {
                    let current = bucket_index(self.origin, self.width, now);
                    for (t, c) in &self.all {
                        let i = bucket_index(self.origin, self.width, *t);
                        if i <= current && current - i < TIME_BUCKETS as u64 {
                            sum.add(*c);
                        }
                    }
                }
            }
            sum
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Record {
            advance_ms: u64,
            failed: bool,
            slow: bool,
        },
        Look {
            advance_ms: u64,
        },
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u64..400, any::<bool>(), any::<bool>())
                .prop_map(|(advance_ms, failed, slow)| Op::Record { advance_ms, failed, slow }),
            2 => (0u64..3_000).prop_map(|advance_ms| Op::Look { advance_ms }),
            1 => Just(Op::Clear),
        ]
    }

    fn kind() -> impl Strategy<Value = WindowKind> {
        prop_oneof![
            (1u32..20).prop_map(WindowKind::Count),
            (1u64..5_000).prop_map(|ms| WindowKind::Time(Duration::from_millis(ms))),
        ]
    }

    proptest! {
        /// The window's totals always equal the model's, whatever the
        /// order of records, clock jumps and clears.
        #[test]
        fn window_matches_model(kind in kind(), ops in prop::collection::vec(op(), 0..200)) {
            let origin = Instant::now();
            let mut now = origin;
            let mut w = Window::new(kind, origin);
            let width = match &w {
                Window::Time { width, .. } => *width,
                Window::Count { .. } => Duration::from_nanos(1),
            };
            let mut model = Model { kind, origin, width, all: Vec::new() };
            for op in ops {
                match op {
                    Op::Record { advance_ms, failed, slow } => {
                        now += Duration::from_millis(advance_ms);
                        let c = Counts::one(failed, slow);
                        w.record(now, c);
                        model.all.push((now, c));
                    }
                    Op::Look { advance_ms } => now += Duration::from_millis(advance_ms),
                    Op::Clear => {
                        w.clear();
                        model.all.clear();
                    }
                }
                let got = w.counts(now);
                prop_assert_eq!(got, model.counts(now));
                prop_assert!(got.failed <= got.calls && got.slow <= got.calls);
                prop_assert!(got.slow_failed <= got.failed.min(got.slow));
            }
        }
    }

    #[test]
    fn rates_are_percentages_and_zero_when_empty() {
        assert_eq!(Counts::default().rates(), (0.0, 0.0));
        let mut c = Counts::one(true, false);
        c.add(Counts::one(false, true));
        c.add(Counts::one(false, false));
        c.add(Counts::one(true, true));
        assert_eq!(c.rates(), (50.0, 50.0));
        assert_eq!(c.slow_failed, 1);
    }
}
