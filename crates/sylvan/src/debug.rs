//! Introspection: [`snapshot`] of every hub (green threads and where they
//! wait, queues, timers, counters), Go-style dumps on a signal
//! ([`dump_on_signal`]), an HTTP [`admin`] endpoint with metrics and a web
//! page; and tuning of this thread's hub: blocking detection, stack
//! memory, counts.

use std::io::{self, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::signal::Signal;

pub mod admin;
mod format;
mod snapshot;

pub use snapshot::{
    Descriptor, GreenSnapshot, GreenState, HubCounters, HubSnapshot, LagHistogram, Snapshot,
    TpoolSnapshot, snapshot,
};

/// Prints a [`snapshot`] of every hub to standard error (the Go-style dump,
/// as [`Snapshot`]'s `Display`) each time the process receives `signal`,
/// without stopping it. Go does this on `SIGQUIT`.
///
/// The dump is read and written by a dedicated OS thread, `sylvan-dump`,
/// from the state hubs publish, so it appears even while a green thread
/// spins without yielding. The signal's previous disposition (for
/// `SIGQUIT`, core dump) no longer applies. Calling it again for the same
/// signal does nothing. Setting `SYLVAN_DUMP_ON_SIGQUIT=1` in the
/// environment does `dump_on_signal(SIGQUIT)` when the process's first hub
/// starts.
///
/// # Errors
///
/// If the signal cannot be caught (`SIGKILL`, `SIGSTOP`, a fault signal) or
/// the thread cannot start.
///
/// # Examples
///
/// ```
/// use sylvan::signal::SIGQUIT;
///
/// sylvan::debug::dump_on_signal(SIGQUIT).unwrap();
/// // `kill -QUIT <pid>` now prints every hub's green threads to stderr.
/// ```
pub fn dump_on_signal(signal: Signal) -> io::Result<()> {
    static ON: std::sync::Mutex<Vec<Signal>> = std::sync::Mutex::new(Vec::new());
    let mut on = ON.lock().unwrap_or_else(|e| e.into_inner());
    if on.contains(&signal) {
        return Ok(());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("sylvan-dump".into())
        .spawn(move || {
            let signals = match crate::signal::Signals::new(&[signal]) {
                Ok(s) => {
                    let _ = tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            while signals.recv().is_ok() {
                let text = format!("\n{}\n", snapshot());
                let _ = io::stderr().lock().write_all(text.as_bytes());
            }
        })?;
    rx.recv()
        .unwrap_or_else(|_| Err(io::Error::other("the dump thread ended early")))?;
    on.push(signal);
    Ok(())
}

/// `SYLVAN_DUMP_ON_SIGQUIT=1`: called as each hub starts; acts once.
pub(crate) fn dump_from_env() {
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.load(Ordering::Relaxed) || DONE.swap(true, Ordering::Relaxed) {
        return;
    }
    if std::env::var("SYLVAN_DUMP_ON_SIGQUIT").is_ok_and(|v| v.trim() == "1") {
        if let Err(e) = dump_on_signal(crate::signal::SIGQUIT) {
            tracing::warn!("SYLVAN_DUMP_ON_SIGQUIT=1: cannot dump on SIGQUIT: {e}");
        }
    }
}

/// Turns on or off the capture of a backtrace each time a green thread
/// parks, shown by [`snapshot`] and the dumps (default off, or on when
/// `SYLVAN_PARK_BACKTRACE=1`). Process-wide. Capturing costs tens of
/// microseconds per park; off, it costs one relaxed load.
///
/// # Examples
///
/// ```
/// sylvan::debug::set_park_backtraces(true);
/// let g = sylvan::spawn(|| sylvan::sleep(std::time::Duration::from_secs(60)));
/// sylvan::yield_now();
/// let snap = sylvan::debug::snapshot();
/// let bt = snap.hubs.iter().flat_map(|h| &h.green_threads).find(|t| t.id == g.id().as_u64());
/// assert!(bt.unwrap().backtrace.is_some());
/// sylvan::debug::set_park_backtraces(false);
/// g.kill();
/// ```
pub fn set_park_backtraces(on: bool) {
    crate::runtime::introspect::set_backtraces(on);
}

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
    crate::runtime::set_blocking_threshold_ns(ns);
}

/// This hub's blocking-detection threshold (`None` when off).
///
/// # Examples
///
/// ```
/// let _ = sylvan::debug::blocking_threshold();
/// ```
pub fn blocking_threshold() -> Option<Duration> {
    match crate::runtime::blocking_threshold_ns() {
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
    crate::runtime::trim_stacks(keep_warm)
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
    let c = crate::runtime::hub_counts();
    HubStats {
        hub_id: c.hub_id,
        green_threads: c.green_threads,
        stacks: c.stacks,
        timers: c.timers,
        io_sources: c.io_sources,
        guard_install: c.guard_install,
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
