//! What a load run measures: an HDR histogram of latencies, counters, and
//! a timeline of fixed-width intervals.
//!
//! Each hub records into its own [`Recorder`] (no sharing on the hot
//! path); the recorders are merged when the run ends.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Latencies are recorded in nanoseconds, up to an hour.
const MAX_NS: u64 = 3_600_000_000_000;

/// One interval of the timeline.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Requests completed in it.
    pub requests: u64,
    /// Requests failed in it.
    pub errors: u64,
    /// Their latencies (2 significant digits: enough for a plot).
    pub hist: Histogram<u64>,
}

impl Interval {
    fn new() -> Interval {
        Interval {
            requests: 0,
            errors: 0,
            hist: Histogram::new_with_bounds(1, MAX_NS, 2).expect("valid histogram bounds"),
        }
    }
}

/// One hub's measurements.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// When the run started (shared by every hub).
    pub start: Instant,
    /// Width of one timeline interval.
    pub width: Duration,
    /// Latency of every successful request, in ns (3 significant digits).
    pub hist: Histogram<u64>,
    /// Successful requests.
    pub requests: u64,
    /// Failed requests (I/O errors, timeouts, wrong replies).
    pub errors: u64,
    /// HTTP responses with a status outside 2xx/3xx (counted in
    /// `requests` too, as wrk does).
    pub non_2xx: u64,
    /// Response bytes read.
    pub bytes: u64,
    /// Failures by kind, with the first message of each.
    pub error_kinds: BTreeMap<String, u64>,
    /// The timeline.
    pub intervals: Vec<Interval>,
}

impl Recorder {
    /// An empty recorder for a run that started at `start`.
    pub fn new(start: Instant, width: Duration) -> Recorder {
        Recorder {
            start,
            width,
            hist: Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds"),
            requests: 0,
            errors: 0,
            non_2xx: 0,
            bytes: 0,
            error_kinds: BTreeMap::new(),
            intervals: Vec::new(),
        }
    }

    fn interval(&mut self, at: Instant) -> &mut Interval {
        let i = (at.saturating_duration_since(self.start).as_nanos() / self.width.as_nanos().max(1))
            as usize;
        if self.intervals.len() <= i {
            self.intervals.resize_with(i + 1, Interval::new);
        }
        &mut self.intervals[i]
    }

    /// Records a request completed at `done` that was meant to start at
    /// `intended` (its latency is the difference), with `bytes` read.
    pub fn success(&mut self, intended: Instant, done: Instant, bytes: u64) {
        let ns = (done.saturating_duration_since(intended).as_nanos() as u64).clamp(1, MAX_NS);
        self.hist.saturating_record(ns);
        self.requests += 1;
        self.bytes += bytes;
        let iv = self.interval(done);
        iv.requests += 1;
        iv.hist.saturating_record(ns);
    }

    /// Records a failed request at `at`, of kind `kind`.
    pub fn error(&mut self, at: Instant, kind: String) {
        self.errors += 1;
        *self.error_kinds.entry(kind).or_insert(0) += 1;
        self.interval(at).errors += 1;
    }

    /// Folds the intervals that start at or after `end` (the requests
    /// that were in flight when sending stopped) into the last interval
    /// before it, so the timeline ends with a full interval, not a stub.
    pub fn fold_tail(&mut self, end: Duration) {
        let keep = end.as_nanos().div_ceil(self.width.as_nanos().max(1)).max(1) as usize;
        if self.intervals.len() <= keep {
            return;
        }
        let tail = self.intervals.split_off(keep);
        let last = &mut self.intervals[keep - 1];
        for iv in tail {
            last.requests += iv.requests;
            last.errors += iv.errors;
            let _ = last.hist.add(&iv.hist);
        }
    }

    /// Adds `other`'s measurements (same start and width) to these.
    pub fn merge(&mut self, other: Recorder) {
        let _ = self.hist.add(&other.hist);
        self.requests += other.requests;
        self.errors += other.errors;
        self.non_2xx += other.non_2xx;
        self.bytes += other.bytes;
        for (k, n) in other.error_kinds {
            *self.error_kinds.entry(k).or_insert(0) += n;
        }
        if self.intervals.len() < other.intervals.len() {
            self.intervals
                .resize_with(other.intervals.len(), Interval::new);
        }
        for (mine, theirs) in self.intervals.iter_mut().zip(other.intervals) {
            mine.requests += theirs.requests;
            mine.errors += theirs.errors;
            let _ = mine.hist.add(&theirs.hist);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Recorder;
    use std::time::{Duration, Instant};

    #[test]
    fn records_merges_and_buckets() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut a = Recorder::new(t0, ms(100));
        a.success(t0, t0 + ms(1), 10);
        a.success(t0 + ms(150), t0 + ms(160), 10);
        let mut b = Recorder::new(t0, ms(100));
        b.success(t0 + ms(250), t0 + ms(252), 5);
        b.error(t0 + ms(260), "refused".into());
        a.merge(b);
        assert_eq!((a.requests, a.errors, a.bytes), (3, 1, 25));
        let per: Vec<_> = a.intervals.iter().map(|i| (i.requests, i.errors)).collect();
        assert_eq!(per, [(1, 0), (1, 0), (1, 1)]);
        assert_eq!(a.error_kinds["refused"], 1);
        a.fold_tail(ms(200));
        let per: Vec<_> = a.intervals.iter().map(|i| (i.requests, i.errors)).collect();
        assert_eq!(per, [(1, 0), (2, 1)]);
        // 10 ms within 3 significant digits.
        assert!(a.hist.max().abs_diff(10_000_000) < 10_000);
    }

    #[test]
    fn latency_counts_from_the_intended_start() {
        // A request meant for t0 that could only start at t0 + 50 ms
        // (coordinated omission) and took 1 ms counts as 51 ms.
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, Duration::from_secs(1));
        r.success(t0, t0 + Duration::from_millis(51), 0);
        assert!(r.hist.min() >= 50_000_000);
    }
}
