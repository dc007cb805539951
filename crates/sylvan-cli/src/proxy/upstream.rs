//! One upstream as every hub sees it: its address, counters, the active
//! health checks' verdict, and passive ejection.
//!
//! All of it is shared by the hubs of one proxy (atomics, and one small
//! mutex taken only when a connect fails or an ejection may have expired),
//! so a connect failure seen on one hub ejects the upstream for all of
//! them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use sylvan::resilience::{Backoff, Jitter};

/// Passive ejection settings: how many consecutive connect failures eject
/// an upstream, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EjectConfig {
    /// Consecutive connect failures that eject the upstream (default 1).
    pub after: u32,
    /// The first ejection's length (default 1 s); each repeat doubles it.
    pub base: Duration,
    /// The longest ejection (default 30 s).
    pub max: Duration,
}

impl Default for EjectConfig {
    fn default() -> Self {
        EjectConfig {
            after: 1,
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

/// What the ejection logic remembers about one upstream.
#[derive(Debug)]
struct Ejection {
    /// Connect failures since the last success or ejection.
    failures: u32,
    /// Ejected until then.
    until: Option<Instant>,
    /// The ejection lengths: `base`, ×2 per repeat, capped at `max`; reset
    /// by a successful connect.
    backoff: Backoff,
}

/// One upstream: address and shared state.
#[derive(Debug)]
pub struct Upstream {
    /// `HOST:PORT` as given; re-resolved on every connect.
    pub addr: String,
    /// Connections open to it now.
    pub active: AtomicUsize,
    /// Connections made to it so far.
    pub connections: AtomicU64,
    /// Connect attempts that failed (refused, timed out, unresolvable).
    pub connect_failures: AtomicU64,
    /// Bytes forwarded from clients to it.
    pub bytes_sent: AtomicU64,
    /// Bytes forwarded from it to clients.
    pub bytes_received: AtomicU64,
    /// The health checks' verdict (true until a check says otherwise, or
    /// when checks are off).
    pub healthy: AtomicBool,
    /// Health checks that connected.
    pub checks_ok: AtomicU64,
    /// Health checks that failed.
    pub checks_failed: AtomicU64,
    /// Times it was ejected.
    pub ejections: AtomicU64,
    /// Set while an ejection may be in force (cleared lazily once it has
    /// expired), so the connect path takes no lock for healthy upstreams.
    ejected: AtomicBool,
    eject: Mutex<Ejection>,
    cfg: EjectConfig,
}

impl Upstream {
    /// An upstream at `addr`, healthy and not ejected.
    pub fn new(addr: impl Into<String>, cfg: EjectConfig) -> Upstream {
        Upstream {
            addr: addr.into(),
            active: AtomicUsize::new(0),
            connections: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
            checks_ok: AtomicU64::new(0),
            checks_failed: AtomicU64::new(0),
            ejections: AtomicU64::new(0),
            ejected: AtomicBool::new(false),
            eject: Mutex::new(Ejection {
                failures: 0,
                until: None,
                backoff: Backoff::new()
                    .initial(cfg.base)
                    .multiplier(2.0)
                    .expect("2.0 is a valid multiplier")
                    .max(cfg.max)
                    .jitter(Jitter::None)
                    .expect("no jitter is valid"),
            }),
            cfg,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ejection> {
        self.eject.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a new connection may go to it at `now`: healthy and not
    /// ejected. An expired ejection lets connections through again; the
    /// next connect decides whether it is ejected again (for longer).
    pub fn available(&self, now: Instant) -> bool {
        self.healthy.load(Relaxed) && self.ejected_for(now).is_none()
    }

    /// How much longer the current ejection lasts, if one is in force.
    pub fn ejected_for(&self, now: Instant) -> Option<Duration> {
        if !self.ejected.load(Relaxed) {
            return None;
        }
        let mut e = self.lock();
        match e.until {
            Some(until) if now < until => Some(until - now),
            _ => {
                e.until = None;
                self.ejected.store(false, Relaxed);
                None
            }
        }
    }

    /// Records a successful connect: the failure streak and the ejection
    /// length start over.
    pub fn connect_succeeded(&self) {
        let mut e = self.lock();
        if e.failures != 0 || e.backoff.attempts() != 0 {
            e.failures = 0;
            e.backoff.reset();
        }
    }

    /// Records a failed connect at `now`; returns the ejection's length if
    /// this failure ejected the upstream.
    pub fn connect_failed(&self, now: Instant) -> Option<Duration> {
        self.connect_failures.fetch_add(1, Relaxed);
        let mut e = self.lock();
        if e.until.is_some_and(|u| now < u) {
            return None; // already ejected (a connect raced the ejection)
        }
        e.failures += 1;
        if e.failures < self.cfg.after {
            return None;
        }
        e.failures = 0;
        let d = e.backoff.next_delay();
        e.until = Some(now + d);
        self.ejected.store(true, Relaxed);
        self.ejections.fetch_add(1, Relaxed);
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::{EjectConfig, Upstream};
    use std::time::{Duration, Instant};

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn ejection_grows_with_repeats_and_is_capped() {
        let up = Upstream::new(
            "x:1",
            EjectConfig {
                after: 1,
                base: S,
                max: 5 * S,
            },
        );
        let mut now = Instant::now();
        let mut lengths = Vec::new();
        for _ in 0..5 {
            assert!(up.available(now));
            lengths.push(up.connect_failed(now).unwrap());
            assert!(!up.available(now));
            assert_eq!(
                up.ejected_for(now + S / 2),
                Some(*lengths.last().unwrap() - S / 2)
            );
            now += *lengths.last().unwrap();
        }
        assert_eq!(lengths, [S, 2 * S, 4 * S, 5 * S, 5 * S]);
        // A success starts over.
        up.connect_succeeded();
        assert_eq!(up.connect_failed(now), Some(S));
        assert_eq!(up.ejections.load(std::sync::atomic::Ordering::Relaxed), 6);
    }

    #[test]
    fn ejects_after_consecutive_failures_only() {
        let up = Upstream::new(
            "x:1",
            EjectConfig {
                after: 3,
                ..EjectConfig::default()
            },
        );
        let now = Instant::now();
        assert_eq!(up.connect_failed(now), None);
        assert_eq!(up.connect_failed(now), None);
        up.connect_succeeded();
        assert_eq!(up.connect_failed(now), None);
        assert_eq!(up.connect_failed(now), None);
        assert_eq!(up.connect_failed(now), Some(S));
        assert!(!up.available(now));
    }

    #[test]
    fn unhealthy_is_unavailable() {
        let up = Upstream::new("x:1", EjectConfig::default());
        up.healthy
            .store(false, std::sync::atomic::Ordering::Relaxed);
        assert!(!up.available(Instant::now()));
    }
}
