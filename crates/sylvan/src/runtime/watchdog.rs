//! Blocking detection: a watchdog thread that notices a green thread running
//! too long without yielding.
//!
//! Each hub publishes, with relaxed atomic stores on every switch, a switch
//! counter, the id of the green thread it is running (0 when none) and that
//! green thread's last blocking point. The watchdog thread wakes every
//! quarter threshold (at least every 5 ms, at most every 50 ms); when a hub's
//! counter has not moved for longer than its threshold while a green thread
//! runs, it logs one `tracing` warning for that stall naming the hub, the
//! green thread and the location. It never interrupts anything and sends no
//! signal.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::hub::HubShared;

/// Default threshold: 100 ms, or `SYLVAN_BLOCKING_THRESHOLD_MS` (0 = off).
pub(crate) fn default_threshold() -> Option<Duration> {
    static DEFAULT: OnceLock<Option<Duration>> = OnceLock::new();
    *DEFAULT.get_or_init(|| match std::env::var("SYLVAN_BLOCKING_THRESHOLD_MS") {
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(0) => None,
            Ok(ms) => Some(Duration::from_millis(ms)),
            Err(_) => {
                tracing::warn!(
                    "SYLVAN_BLOCKING_THRESHOLD_MS={v:?} is not a number of milliseconds; using 100"
                );
                Some(Duration::from_millis(100))
            }
        },
        Err(_) => Some(Duration::from_millis(100)),
    })
}

struct Watched {
    hub: Weak<HubShared>,
    id: u64,
    last_switches: u64,
    since: Instant,
    warned: bool,
}

#[derive(Default)]
struct State {
    hubs: Vec<Watched>,
    started: bool,
    deferred: Vec<Deferred>,
}

/// A warning raised where logging is not safe (a thread-local destructor),
/// logged by the watchdog thread instead.
#[derive(Debug)]
pub(crate) enum Deferred {
    /// A thread exited with green threads alive, which were leaked.
    Leaked {
        hub: u64,
        thread: String,
        count: usize,
        parked: String,
    },
}

/// Has the watchdog thread log `what` soon. If the process exits first
/// (the main thread's hub is destroyed as the process ends) it is lost.
pub(crate) fn log_later(what: Deferred) {
    let (lock, cv) = state();
    let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
    if st.started {
        st.deferred.push(what);
        cv.notify_all();
    }
}

fn log_deferred(what: Deferred) {
    match what {
        Deferred::Leaked {
            hub,
            thread,
            count,
            parked,
        } => tracing::warn!(
            hub,
            thread = %thread,
            "sylvan: thread '{thread}' exited with {count} green thread(s) still alive; they are \
             leaked (never resumed, their destructors never run) because the thread-locals they \
             may borrow are already destroyed. Call sylvan::shutdown() before the thread ends \
             to unwind them. Parked: {parked}"
        ),
    }
}

fn state() -> &'static (Mutex<State>, Condvar) {
    static STATE: OnceLock<(Mutex<State>, Condvar)> = OnceLock::new();
    STATE.get_or_init(|| (Mutex::new(State::default()), Condvar::new()))
}

/// Starts watching a hub (and the watchdog thread, the first time).
pub(crate) fn register(hub: &Arc<HubShared>) {
    let (lock, cv) = state();
    let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
    st.hubs.push(Watched {
        hub: Arc::downgrade(hub),
        id: hub.id,
        last_switches: 0,
        since: Instant::now(),
        warned: false,
    });
    if !st.started {
        st.started = true;
        let spawned = std::thread::Builder::new()
            .name("sylvan-watchdog".into())
            .spawn(run);
        if let Err(e) = spawned {
            st.started = false;
            tracing::warn!("sylvan: cannot start the blocking-detection watchdog: {e}");
        }
    }
    cv.notify_all();
}

/// Stops watching a hub.
pub(crate) fn unregister(id: u64) {
    let (lock, _) = state();
    lock.lock()
        .unwrap_or_else(|e| e.into_inner())
        .hubs
        .retain(|w| w.id != id);
}

fn run() {
    let (lock, cv) = state();
    let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
    // Stalls found under the lock, reported after releasing it: a tracing
    // subscriber that blocks must not stall hubs registering meanwhile.
    let mut stalls: Vec<(Arc<HubShared>, u64, Duration)> = Vec::new();
    loop {
        let mut min_threshold = Duration::from_millis(200);
        let now = Instant::now();
        super::introspect::tick();
        st.hubs.retain_mut(|w| {
            let Some(hub) = w.hub.upgrade() else {
                return false;
            };
            let threshold = hub.threshold_ns.load(Ordering::Relaxed);
            let switches = hub.switches.load(Ordering::Relaxed);
            let running = hub.running.load(Ordering::Relaxed);
            if switches != w.last_switches || running == 0 || threshold == 0 {
                w.last_switches = switches;
                w.since = now;
                w.warned = false;
            } else if !w.warned && now.duration_since(w.since) >= Duration::from_nanos(threshold) {
                w.warned = true;
                stalls.push((hub.clone(), running, now.duration_since(w.since)));
            }
            if threshold != 0 {
                min_threshold = min_threshold.min(Duration::from_nanos(threshold));
            }
            true
        });
        let deferred = std::mem::take(&mut st.deferred);
        if !stalls.is_empty() || !deferred.is_empty() {
            drop(st);
            for (hub, green, for_) in stalls.drain(..) {
                warn(&hub, green, for_);
            }
            deferred.into_iter().for_each(log_deferred);
            st = lock.lock().unwrap_or_else(|e| e.into_inner());
        }
        if st.hubs.is_empty() && st.deferred.is_empty() {
            st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
        } else {
            let tick =
                (min_threshold / 4).clamp(Duration::from_millis(5), Duration::from_millis(50));
            st = cv
                .wait_timeout(st, tick)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

fn warn(hub: &HubShared, green: u64, for_: Duration) {
    let w = &hub.intro.warnings;
    w.fetch_add(1, Ordering::Relaxed);
    let name = hub
        .names
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&green)
        .cloned();
    let loc = hub.location.load(Ordering::Relaxed);
    // SAFETY: the hub stores only pointers obtained from `&'static Location`.
    let location = unsafe { loc.as_ref() }.map_or("its start".to_string(), |l| l.to_string());
    tracing::warn!(
        hub = hub.id,
        thread = %hub.thread_name,
        green_thread = green,
        name = name.as_deref().unwrap_or("<unnamed>"),
        "green thread {} ({}) on hub {} (thread '{}') has run for {} ms without yielding; \
         its last blocking point was {}: it is blocking the hub",
        green,
        name.as_deref().unwrap_or("<unnamed>"),
        hub.id,
        hub.thread_name,
        for_.as_millis(),
        location
    );
}
