//! What each hub publishes for other OS threads to read: the engine under
//! `sylvan::debug::snapshot`, the signal dump and the admin endpoint.
//!
//! A hub's own state (its task table, ready queue, timers) is `Rc`/`RefCell`
//! and never read from another thread. Instead each hub writes, with
//! relaxed atomic stores and no lock, a [`Record`] per green thread (and one
//! for its root context) and a few counters into its [`Published`], which
//! lives in the `Arc<HubShared>` that other threads may hold. A reader (the
//! dump thread, the admin server) takes the global hub list's lock, clones
//! the `Arc`s, and reads the records while the hubs keep running, one
//! spinning green thread included.
//!
//! Cost on the hot path: nothing on a switch (the running green thread's id
//! is the watchdog's `running`, already published); a handful of stores at
//! spawn, park, wake and finish; the park time comes from a coarse clock
//! (a global atomic the watchdog thread advances at least every 50 ms), so
//! parking reads no clock.
//!
//! A green thread that finishes while its `GreenThread` handle is held keeps
//! its slot, and its record says `FINISHED`, until the handle is joined or
//! dropped: snapshots list it as finished and not joined.
//!
//! Lag: the hub publishes when each pass of its loop began (after its
//! poll). A reader sees a pass that is still going on, such as one whose
//! green thread runs without yielding, as lag growing now, before the pass
//! ends and is counted in the histogram.
//!
//! Consistency: each record is a seqlock keyed by its park sequence number
//! (`park`, 0 while not parked) and its id (0 while the slot is free). The
//! writer clears `park` on wake and stores it last, with `Release`, at the
//! next park; a reader that sees the same non-zero `park` (and the same id)
//! before and after reading the other fields has a consistent view, and
//! retries a few times otherwise. Every field is an atomic, so a racing read
//! is never undefined behaviour, only possibly stale.

use std::collections::HashMap;
use std::panic::Location;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use super::hub::HubShared;

/// Records per chunk; chunks are allocated as the hub's slot table grows.
const CHUNK: usize = 1024;
/// Chunks per hub: 2,097,152 green threads. Green threads in slots past
/// that are not published (a snapshot counts them as unpublished).
const MAX_CHUNKS: usize = 2048;

/// Upper bounds of the scheduling-lag histogram's buckets, in microseconds
/// (a last bucket, `+Inf`, follows).
pub(crate) const LAG_BOUNDS_US: [u64; 11] = [
    10, 50, 100, 500, 1_000, 5_000, 10_000, 50_000, 100_000, 500_000, 1_000_000,
];

/// What a hub publishes about one green thread (or its root context).
#[derive(Debug, Default)]
pub(crate) struct Record {
    /// The green thread's id; 0 while the slot is free (the root's record
    /// uses `ROOT_ID` instead).
    id: AtomicU64,
    parent: AtomicU64,
    spawned_at: AtomicPtr<Location<'static>>,
    /// Sequence number of the current park; 0 while not parked;
    /// [`FINISHED`] once it finished while its handle is held.
    park: AtomicU64,
    parked_at: AtomicPtr<Location<'static>>,
    /// When it parked, in coarse milliseconds since [`epoch_ns`].
    since_ms: AtomicU64,
    /// Effective deadline of the park, hub-clock nanoseconds; 0 for none.
    deadline: AtomicU64,
    /// The scoped deadline's scope id when that governs; 0 otherwise.
    scope: AtomicU64,
}

/// The id a root's record carries (the root's green id is 0, which marks a
/// free record).
const ROOT_ID: u64 = u64::MAX;

/// The `park` of a green thread that finished but whose handle has not
/// been joined or dropped yet (park sequence numbers never get there).
const FINISHED: u64 = u64::MAX;

/// A record nobody reads: where contexts beyond the published capacity
/// point, so writers never test for null.
static SPARE: Record = Record {
    id: AtomicU64::new(0),
    parent: AtomicU64::new(0),
    spawned_at: AtomicPtr::new(ptr::null_mut()),
    park: AtomicU64::new(0),
    parked_at: AtomicPtr::new(ptr::null_mut()),
    since_ms: AtomicU64::new(0),
    deadline: AtomicU64::new(0),
    scope: AtomicU64::new(0),
};

/// The spare record, for a `Core` made before it is published.
pub(crate) fn spare() -> *const Record {
    &SPARE
}

/// The process's introspection epoch, as `CLOCK_MONOTONIC` nanoseconds
/// (the clock `Instant` reads): every time published here counts from it.
pub(crate) fn epoch_ns() -> u64 {
    static EPOCH: OnceLock<u64> = OnceLock::new();
    *EPOCH.get_or_init(crate::sys::time::monotonic_ns)
}

/// Now, in nanoseconds since [`epoch_ns`]: one clock read, no `timespec`
/// arithmetic (the hub reads it every turn).
#[inline]
pub(crate) fn now_ns() -> u64 {
    crate::sys::time::monotonic_ns().saturating_sub(epoch_ns())
}

/// Coarse "now" in milliseconds since [`epoch_ns`], advanced by the
/// watchdog thread every tick (at most 50 ms apart while any hub exists).
static COARSE_MS: AtomicU64 = AtomicU64::new(0);

/// Advances the coarse clock to now (never backwards).
pub(crate) fn tick() {
    let ms = now_ns() / 1_000_000;
    if COARSE_MS.load(Ordering::Relaxed) < ms {
        COARSE_MS.fetch_max(ms, Ordering::Relaxed);
    }
}

/// Whether parks capture a backtrace (`SYLVAN_PARK_BACKTRACE=1` or
/// `debug::set_park_backtraces`).
static BACKTRACES: AtomicBool = AtomicBool::new(false);

pub(crate) fn set_backtraces(on: bool) {
    BACKTRACES.store(on, Ordering::Relaxed);
}

pub(crate) fn backtraces() -> bool {
    BACKTRACES.load(Ordering::Relaxed)
}

/// Whole microseconds in `d`, without a 128-bit division.
fn micros(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from(d.subsec_micros()))
}

/// Reads the process-wide settings from the environment, once.
pub(crate) fn init_from_env() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        epoch_ns();
        if std::env::var("SYLVAN_PARK_BACKTRACE").is_ok_and(|v| v.trim() == "1") {
            set_backtraces(true);
        }
    });
}

/// A hub's published state.
pub(crate) struct Published {
    chunks: [AtomicPtr<Record>; MAX_CHUNKS],
    pub(crate) root: Record,
    pub(crate) finished: AtomicU64,
    pub(crate) panicked: AtomicU64,
    pub(crate) killed: AtomicU64,
    pub(crate) warnings: AtomicU64,
    pub(crate) timers: AtomicU64,
    /// Next timer due, hub-clock nanoseconds; 0 for none.
    pub(crate) next_timer: AtomicU64,
    /// The hub clock at its last turn, with the real time (ns since
    /// [`epoch_ns`]) of that moment and whether the clock was paused.
    pub(crate) clock_ns: AtomicU64,
    pub(crate) clock_at_ns: AtomicU64,
    /// When the hub's current pass began (its last poll returned, or the
    /// hub started), ns since [`epoch_ns`].
    pub(crate) pass_start_ns: AtomicU64,
    pub(crate) clock_paused: AtomicBool,
    pub(crate) io_sources: AtomicU64,
    pub(crate) lag: [AtomicU64; LAG_BOUNDS_US.len() + 1],
    pub(crate) lag_sum_us: AtomicU64,
    /// Backtraces captured at park (only while switched on), by record
    /// (its address: one per slot), with the park sequence number they
    /// belong to.
    backtraces: Mutex<HashMap<usize, (u64, Arc<std::backtrace::Backtrace>)>>,
}

impl std::fmt::Debug for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Published").finish_non_exhaustive()
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        for c in self.chunks.iter() {
            let p = c.load(Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: `p` came from `Box::into_raw` of a boxed slice of
                // CHUNK records in `record_for`, and is freed only here, once,
                // when the last `Arc<HubShared>` goes: no reader or writer
                // holds a reference into it any more.
                drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(p, CHUNK)) });
            }
        }
    }
}

impl Published {
    pub(crate) fn new() -> Published {
        init_from_env();
        let p = Published {
            chunks: [const { AtomicPtr::new(ptr::null_mut()) }; MAX_CHUNKS],
            root: Record::default(),
            finished: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            killed: AtomicU64::new(0),
            warnings: AtomicU64::new(0),
            timers: AtomicU64::new(0),
            next_timer: AtomicU64::new(0),
            clock_ns: AtomicU64::new(0),
            clock_at_ns: AtomicU64::new(0),
            pass_start_ns: AtomicU64::new(0),
            clock_paused: AtomicBool::new(false),
            io_sources: AtomicU64::new(0),
            lag: Default::default(),
            lag_sum_us: AtomicU64::new(0),
            backtraces: Mutex::new(HashMap::new()),
        };
        p.root.id.store(ROOT_ID, Ordering::Relaxed);
        p
    }

    /// The record of task slot `slot`, allocating its chunk if needed
    /// (hub thread only); [`spare`] past the published capacity.
    fn record_for(&self, slot: u32) -> &Record {
        let (c, i) = (slot as usize / CHUNK, slot as usize % CHUNK);
        let Some(cell) = self.chunks.get(c) else {
            return &SPARE;
        };
        let mut p = cell.load(Ordering::Acquire);
        if p.is_null() {
            let chunk: Box<[Record]> = (0..CHUNK).map(|_| Record::default()).collect();
            p = Box::into_raw(chunk) as *mut Record;
            // Only the hub's own thread stores chunks: a plain store.
            cell.store(p, Ordering::Release);
        }
        // SAFETY: `p` points at CHUNK records that live as long as `self`
        // (freed only by `Drop`), and `i < CHUNK`.
        unsafe { &*p.add(i) }
    }

    /// Publishes a green thread queued in `slot`; returns its record, for
    /// its `Core` to keep.
    #[inline]
    pub(crate) fn spawned(
        &self,
        slot: u32,
        id: u64,
        parent: u64,
        at: &'static Location<'static>,
    ) -> *const Record {
        let r = self.record_for(slot);
        // (The previous occupant may have been unwound while parked.)
        r.park.store(0, Ordering::Relaxed);
        r.parent.store(parent, Ordering::Relaxed);
        r.spawned_at
            .store(at as *const _ as *mut _, Ordering::Relaxed);
        r.id.store(id, Ordering::Release);
        r
    }

    /// Counts a finished green thread; unpublishes it, or, while its
    /// handle is `held`, publishes it as finished (until [`released`](Self::released)).
    #[inline]
    pub(crate) fn finished(&self, rec: *const Record, held: bool) {
        // SAFETY: see `parked`.
        let r = unsafe { &*rec };
        if held {
            r.park.store(FINISHED, Ordering::Release);
        } else {
            r.id.store(0, Ordering::Release);
        }
        self.finished
            .store(self.finished.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Unpublishes a finished green thread whose handle went.
    #[inline]
    pub(crate) fn released(&self, rec: *const Record) {
        // SAFETY: see `parked`.
        unsafe { &*rec }.id.store(0, Ordering::Release);
    }

    /// Publishes the armed timers: how many, and when the next is due
    /// (hub-clock nanoseconds).
    #[inline]
    pub(crate) fn timers(&self, timers: usize, next: Option<u64>) {
        self.timers.store(timers as u64, Ordering::Relaxed);
        self.next_timer.store(next.unwrap_or(0), Ordering::Relaxed);
    }

    /// A pass of the hub's loop began at `ns` (nanoseconds since
    /// [`epoch_ns`]).
    #[inline]
    pub(crate) fn pass_started_ns(&self, ns: u64) {
        self.pass_start_ns.store(ns, Ordering::Relaxed);
    }

    /// The hub reached a turn of its loop at `ns` (nanoseconds since
    /// [`epoch_ns`]): publishes the timers and the clock.
    pub(crate) fn turn(
        &self,
        ns: u64,
        timers: usize,
        next: Option<u64>,
        clock_ns: u64,
        paused: bool,
    ) {
        self.timers(timers, next);
        self.clock_ns.store(clock_ns, Ordering::Relaxed);
        self.clock_paused.store(paused, Ordering::Relaxed);
        self.clock_at_ns.store(ns, Ordering::Relaxed);
    }

    /// Counts one scheduling-lag sample.
    /// (Hub thread only: plain loads and stores, no read-modify-write.)
    pub(crate) fn record_lag(&self, lag: Duration) {
        let us = micros(lag);
        let b = LAG_BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LAG_BOUNDS_US.len());
        let add = |a: &AtomicU64, n: u64| a.store(a.load(Ordering::Relaxed) + n, Ordering::Relaxed);
        add(&self.lag[b], 1);
        add(&self.lag_sum_us, us);
    }

    /// Captures a backtrace for the park `seq` of the context in `slot`.
    #[cold]
    fn capture(&self, rec: *const Record, seq: u64) {
        let bt = Arc::new(std::backtrace::Backtrace::force_capture());
        self.backtraces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(rec as usize, (seq, bt));
    }
}

/// Publishes a park (hub thread): where, since when, until when.
///
/// `rec` is the parking context's record pointer (its `Core::rec`).
#[inline]
pub(crate) fn parked(
    shared: &HubShared,
    rec: *const Record,
    seq: u64,
    at: &'static Location<'static>,
    deadline: Option<u64>,
    scope: u64,
) {
    // SAFETY: a `Core`'s record pointer is `SPARE`, its hub's root record,
    // or a record in one of its hub's chunks; all live as long as the hub
    // (which holds the `Arc<HubShared>`), and only the hub's code, running
    // while the hub lives, calls this.
    let r = unsafe { &*rec };
    // The seqlock's opening: `park` was cleared at the wake (or is 0 from
    // the spawn); the fields below must not be seen before that clear.
    fence(Ordering::Release);
    r.parked_at
        .store(at as *const _ as *mut _, Ordering::Relaxed);
    r.since_ms
        .store(COARSE_MS.load(Ordering::Relaxed), Ordering::Relaxed);
    r.deadline.store(deadline.unwrap_or(0), Ordering::Relaxed);
    r.scope.store(scope, Ordering::Relaxed);
    r.park.store(seq, Ordering::Release);
    if backtraces() {
        shared.intro.capture(rec, seq);
    }
}

/// Publishes the end of a park (a wake, or a park abandoned).
#[inline]
pub(crate) fn unparked(rec: *const Record) {
    // SAFETY: as in `parked`.
    unsafe { &*rec }.park.store(0, Ordering::Relaxed);
}

/// The root's record of a hub.
pub(crate) fn root_record(shared: &HubShared) -> *const Record {
    &shared.intro.root
}

// ---- the registry of hubs ---------------------------------------------------

fn registry() -> &'static Mutex<Vec<Weak<HubShared>>> {
    static HUBS: OnceLock<Mutex<Vec<Weak<HubShared>>>> = OnceLock::new();
    HUBS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Lists a new hub for readers.
pub(crate) fn register(hub: &Arc<HubShared>) {
    let mut hubs = registry().lock().unwrap_or_else(|e| e.into_inner());
    hubs.retain(|w| w.upgrade().is_some_and(|h| h.is_alive()));
    hubs.push(Arc::downgrade(hub));
}

/// Every hub whose thread still runs, oldest first.
pub(crate) fn hubs() -> Vec<Arc<HubShared>> {
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .filter(|h| h.is_alive())
        .collect()
}

// ---- reading ----------------------------------------------------------------

/// One green thread as read from its record.
#[derive(Debug, Clone)]
pub(crate) struct RawGreen {
    pub(crate) id: u64,
    pub(crate) root: bool,
    pub(crate) parent: u64,
    pub(crate) spawned_at: Option<&'static Location<'static>>,
    /// Finished, its handle not yet joined or dropped.
    pub(crate) finished: bool,
    /// `Some` while parked.
    pub(crate) park: Option<RawPark>,
    pub(crate) backtrace: Option<Arc<std::backtrace::Backtrace>>,
}

/// A park as read from a record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawPark {
    pub(crate) seq: u64,
    pub(crate) at: Option<&'static Location<'static>>,
    pub(crate) since_ms: u64,
    pub(crate) deadline: Option<u64>,
    pub(crate) scope: u64,
}

fn location(p: *mut Location<'static>) -> Option<&'static Location<'static>> {
    // SAFETY: records store only pointers made from `&'static Location`
    // (or null).
    unsafe { p.cast_const().as_ref() }
}

/// Reads one record consistently (see the module docs); `None` if free.
fn read(r: &Record) -> Option<RawGreen> {
    let mut last = None;
    for _ in 0..8 {
        let id = r.id.load(Ordering::Acquire);
        if id == 0 {
            return None;
        }
        let seq = r.park.load(Ordering::Acquire);
        let parent = r.parent.load(Ordering::Relaxed);
        let spawned_at = location(r.spawned_at.load(Ordering::Relaxed));
        let at = location(r.parked_at.load(Ordering::Relaxed));
        let since_ms = r.since_ms.load(Ordering::Relaxed);
        let deadline = r.deadline.load(Ordering::Relaxed);
        let scope = r.scope.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        let stable = r.park.load(Ordering::Relaxed) == seq && r.id.load(Ordering::Relaxed) == id;
        let g = RawGreen {
            id: if id == ROOT_ID { 0 } else { id },
            root: id == ROOT_ID,
            parent,
            spawned_at,
            finished: seq == FINISHED,
            park: (seq != 0 && seq != FINISHED).then_some(RawPark {
                seq,
                at,
                since_ms,
                deadline: (deadline != 0).then_some(deadline),
                scope,
            }),
            backtrace: None,
        };
        if stable {
            return Some(g);
        }
        last = Some(g);
        std::hint::spin_loop();
    }
    last
}

/// Everything one hub publishes, read at one moment.
#[derive(Debug, Clone)]
pub(crate) struct RawHub {
    pub(crate) id: u64,
    pub(crate) thread_name: String,
    pub(crate) running: u64,
    pub(crate) switches: u64,
    pub(crate) root: RawGreen,
    pub(crate) greens: Vec<RawGreen>,
    pub(crate) names: HashMap<u64, Arc<str>>,
    pub(crate) spawned: u64,
    pub(crate) finished: u64,
    pub(crate) panicked: u64,
    pub(crate) killed: u64,
    pub(crate) warnings: u64,
    pub(crate) timers: u64,
    /// Hub-clock nanoseconds now (estimated) and of the next timer.
    pub(crate) clock_now: u64,
    pub(crate) next_timer: Option<u64>,
    pub(crate) io_sources: u64,
    pub(crate) lag: Vec<u64>,
    pub(crate) lag_sum_us: u64,
    /// When the hub's current pass began and when this was read, ns since
    /// [`epoch_ns`].
    pub(crate) pass_start_ns: u64,
    pub(crate) now_ns: u64,
}

/// Reads a hub's published state.
pub(crate) fn read_hub(h: &HubShared) -> RawHub {
    let p = &h.intro;
    let mut greens = Vec::new();
    for c in p.chunks.iter() {
        let ptr = c.load(Ordering::Acquire);
        if ptr.is_null() {
            break;
        }
        // SAFETY: as in `Published::record_for`; `h` keeps it alive.
        let chunk = unsafe { std::slice::from_raw_parts(ptr, CHUNK) };
        greens.extend(chunk.iter().filter_map(read));
    }
    let bts = p
        .backtraces
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if !bts.is_empty() {
        // Match backtraces to records by park sequence number.
        let by_seq: HashMap<u64, Arc<std::backtrace::Backtrace>> = bts.into_values().collect();
        for g in &mut greens {
            if let Some(park) = g.park {
                g.backtrace = by_seq.get(&park.seq).cloned();
            }
        }
    }
    let root = read(&p.root).unwrap_or(RawGreen {
        id: 0,
        root: true,
        parent: 0,
        spawned_at: None,
        finished: false,
        park: None,
        backtrace: None,
    });
    let clock_ns = p.clock_ns.load(Ordering::Relaxed);
    let clock_at_ns = p.clock_at_ns.load(Ordering::Relaxed);
    let pass_start_ns = p.pass_start_ns.load(Ordering::Relaxed);
    let now_ns = now_ns();
    let clock_now = if p.clock_paused.load(Ordering::Relaxed) {
        clock_ns
    } else {
        clock_ns.saturating_add(now_ns.saturating_sub(clock_at_ns))
    };
    let next = p.next_timer.load(Ordering::Relaxed);
    let alive = greens.iter().filter(|g| !g.finished).count() as u64;
    RawHub {
        id: h.id,
        thread_name: h.thread_name.clone(),
        running: h.running.load(Ordering::Relaxed),
        switches: h.switches.load(Ordering::Relaxed),
        root,
        greens,
        names: h.names.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        // Spawned = finished + alive: one counter fewer on the spawn path.
        spawned: p.finished.load(Ordering::Relaxed) + alive,
        finished: p.finished.load(Ordering::Relaxed),
        panicked: p.panicked.load(Ordering::Relaxed),
        killed: p.killed.load(Ordering::Relaxed),
        warnings: p.warnings.load(Ordering::Relaxed),
        timers: p.timers.load(Ordering::Relaxed),
        clock_now,
        next_timer: (next != 0).then_some(next),
        io_sources: p.io_sources.load(Ordering::Relaxed),
        lag: p.lag.iter().map(|a| a.load(Ordering::Relaxed)).collect(),
        lag_sum_us: p.lag_sum_us.load(Ordering::Relaxed),
        pass_start_ns,
        now_ns,
    }
}
