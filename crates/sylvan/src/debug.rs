//! Introspection and tuning of this thread's hub: blocking detection,
//! stack memory, counts.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::runtime::hub::hub;

/// Sets this hub's blocking-detection threshold: when one green thread runs
/// longer than this without yielding, a watchdog thread logs a `tracing`
/// warning naming the hub, the green thread and its last blocking point.
/// `None` turns detection off for this hub. The default is 100 ms, or
/// `SYLVAN_BLOCKING_THRESHOLD_MS` (`0` = off) when set.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// sylvan::debug::set_blocking_threshold(Some(Duration::from_millis(50)));
/// assert_eq!(sylvan::debug::blocking_threshold(), Some(Duration::from_millis(50)));
/// sylvan::debug::set_blocking_threshold(None);
/// assert_eq!(sylvan::debug::blocking_threshold(), None);
/// ```
pub fn set_blocking_threshold(threshold: Option<Duration>) {
    let ns = threshold.map_or(0, |d| d.as_nanos().clamp(1, u64::MAX as u128) as u64);
    hub().shared.threshold_ns.store(ns, Ordering::Relaxed);
}

/// This hub's blocking-detection threshold (`None` when off).
///
/// # Examples
///
/// ```
/// let _ = sylvan::debug::blocking_threshold();
/// ```
pub fn blocking_threshold() -> Option<Duration> {
    match hub().shared.threshold_ns.load(Ordering::Relaxed) {
        0 => None,
        ns => Some(Duration::from_nanos(ns)),
    }
}

/// Gives the memory of idle stack slots back to the kernel now, keeping
/// only `keep_warm` recently freed slots resident. Returns how many slots
/// were trimmed. The hub also does this by itself when it goes idle,
/// keeping 256 warm.
///
/// # Examples
///
/// ```
/// let gs: Vec<_> = (0..10).map(|_| sylvan::spawn(|| ())).collect();
/// for g in gs {
///     g.join().unwrap();
/// }
/// assert!(sylvan::debug::trim_stacks(0) <= 10);
/// ```
pub fn trim_stacks(keep_warm: usize) -> usize {
    hub().stacks.trim(keep_warm)
}

/// A snapshot of this thread's hub.
///
/// # Examples
///
/// ```
/// let g = sylvan::spawn(|| ());
/// let s = sylvan::debug::stats();
/// assert!(s.green_threads >= 1);
/// g.join().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubStats {
    /// This hub's id.
    pub hub_id: u64,
    /// Green threads alive (spawned, not finished).
    pub green_threads: usize,
    /// Stacks handed out (equal to `green_threads` unless some are being
    /// torn down).
    pub stacks: usize,
    /// Armed timers.
    pub timers: usize,
    /// I/O sources (sockets) registered with the hub.
    pub io_sources: usize,
    /// Whether stack guard pages use `MADV_GUARD_INSTALL` (no kernel mapping
    /// per stack) rather than the one-mapping-per-stack fallback.
    pub guard_install: bool,
}

/// Counts for this thread's hub.
pub fn stats() -> HubStats {
    let hub = hub();
    HubStats {
        hub_id: hub.shared.id,
        green_threads: hub.live_tasks(),
        stacks: hub.stacks.live(),
        timers: hub.timers.borrow().len(),
        io_sources: hub.io.len(),
        guard_install: hub.stacks.uses_guard_install(),
    }
}

/// Resident set size of this process in bytes (from `/proc/self/statm`).
///
/// # Examples
///
/// ```
/// assert!(sylvan::debug::rss_bytes().unwrap() > 0);
/// ```
pub fn rss_bytes() -> Option<usize> {
    crate::sys::proc::rss_bytes()
}
