//! [`snapshot`]: every hub of the process, read from what the hubs publish.

use std::fmt;
use std::time::Duration;

use crate::runtime::introspect::{self, LAG_BOUNDS_US, RawGreen, RawHub};

/// Every hub of the process at one moment: its green threads and where they
/// wait, its queues, timers and counters; the tpool; open descriptors.
///
/// Read from outside the hubs, without stopping them: each hub publishes
/// its green threads' states with lock-free stores as they spawn, park,
/// wake and finish, so a snapshot taken while a green thread spins without
/// yielding still sees everything (that one as `Running`). Values read
/// while they change may be a moment stale, never wrong in a way that is
/// unsafe.
///
/// A green thread that finished stays listed, as
/// [`Finished`](GreenState::Finished), for as long as its
/// [`GreenThread`](crate::GreenThread) handle is held without being joined
/// or dropped (handles kept and forgotten hold their results); once the
/// handle goes, or if it was dropped before the end, it is gone: the
/// counters say how many finished.
///
/// Its [`Display`](fmt::Display) is a Go-style dump (what
/// [`dump_on_signal`](super::dump_on_signal) prints);
/// [`to_json`](Self::to_json) and [`to_prometheus`](Self::to_prometheus)
/// are what the [admin endpoint](super::admin) serves.
///
/// # Examples
///
/// ```
/// let g = sylvan::Builder::new()
///     .name("sleeper")
///     .spawn(|| sylvan::sleep(std::time::Duration::from_secs(60)))
///     .unwrap();
/// sylvan::yield_now(); // it runs and parks in `sleep`
/// let snap = sylvan::debug::snapshot();
/// let me = snap.hubs.iter().find(|h| h.id == sylvan::debug::stats().hub_id).unwrap();
/// let t = me.green_threads.iter().find(|t| t.name.as_deref() == Some("sleeper")).unwrap();
/// assert_eq!(t.state, sylvan::debug::GreenState::Parked);
/// assert!(t.parked_at.as_deref().unwrap().contains(".rs:"));
/// assert!(t.deadline.is_some());
/// g.kill();
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Snapshot {
    /// The process id.
    pub pid: u32,
    /// Every hub whose thread is alive, oldest first.
    pub hubs: Vec<HubSnapshot>,
    /// The blocking-work pool ([`tpool`](crate::tpool)).
    pub tpool: TpoolSnapshot,
    /// The process's open descriptors (from `/proc/self/fd`), sockets with
    /// their addresses. Process-wide: each hub counts its own registered
    /// ones in [`HubSnapshot::io_sources`].
    pub descriptors: Vec<Descriptor>,
}

/// One hub in a [`Snapshot`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HubSnapshot {
    /// The hub's id ([`HubStats::hub_id`](super::HubStats::hub_id)).
    pub id: u64,
    /// Its OS thread's name (`<unnamed>` if none).
    pub thread: String,
    /// Its root context (the OS thread's own stack, id 0) first, then its
    /// green threads by id.
    pub green_threads: Vec<GreenSnapshot>,
    /// Green threads ready to run (the ready queue's length).
    pub ready: usize,
    /// Armed timers, as of the hub's last loop turn.
    pub timers: u64,
    /// When the next timer is due, from now (zero if overdue). A lower
    /// bound: a timer cancelled since (cancelled timers leave the hub's
    /// heap lazily) may still stand in for the next real one.
    pub next_timer: Option<Duration>,
    /// I/O sources (sockets, pipes) registered with the hub.
    pub io_sources: u64,
    /// Counters since the hub started.
    pub counters: HubCounters,
    /// Scheduling lag: see [`LagHistogram`].
    pub lag: LagHistogram,
    /// Scheduling lag now: while a green thread runs or is ready to run,
    /// the time since the hub's current pass began (its last poll for
    /// I/O, which also fired its timers); zero otherwise. A green thread
    /// that runs for long without yielding shows here while it runs, and
    /// in [`lag`](Self::lag) once its pass ends. (A root context busy
    /// outside sylvan while no green thread is ready shows as zero.)
    pub lag_now: Duration,
}

/// Counters of a hub since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubCounters {
    /// Switches into a green thread.
    pub switches: u64,
    /// Green threads spawned.
    pub spawned: u64,
    /// Green threads finished (returned, panicked, killed or unwound).
    pub finished: u64,
    /// Green threads that panicked.
    pub panicked: u64,
    /// Green threads killed (the first kill of each).
    pub killed: u64,
    /// Blocking warnings the watchdog logged for this hub.
    pub watchdog_warnings: u64,
}

/// The hub's scheduling lag as a histogram.
///
/// One sample per pass of the hub's loop that ran green threads: the time
/// from the poll that began the pass to the next one, which is the longest
/// any green thread made ready by that poll waited to run (Node's
/// event-loop delay). A pass is at most 128 switches long; a green thread
/// that runs long without yielding shows here as a large sample once it
/// yields, and meanwhile in [`HubSnapshot::lag_now`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LagHistogram {
    /// Upper bounds of the buckets; a last bucket (no bound) follows.
    pub bounds: Vec<Duration>,
    /// Samples per bucket (not cumulative): `bounds.len() + 1` entries.
    pub counts: Vec<u64>,
    /// Sum of all samples.
    pub sum: Duration,
}

/// What a green thread is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GreenState {
    /// Running on its hub now. For a root context: not inside a sylvan
    /// blocking call (it may be computing, or blocked in something that
    /// is not sylvan's, such as joining an OS thread).
    Running,
    /// Ready to run, waiting for its turn.
    Ready,
    /// Parked in a blocking call.
    Parked,
    /// Finished, but its [`GreenThread`](crate::GreenThread) handle has not
    /// been joined or dropped yet (it holds the result).
    Finished,
}

impl GreenState {
    /// `running`, `ready`, `parked` or `finished`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan::debug::GreenState::Parked.as_str(), "parked");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            GreenState::Running => "running",
            GreenState::Ready => "ready",
            GreenState::Parked => "parked",
            GreenState::Finished => "finished",
        }
    }
}

impl fmt::Display for GreenState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One green thread (or a hub's root context) in a [`HubSnapshot`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GreenSnapshot {
    /// Its id ([`GreenId`](crate::GreenId)); 0 for the root context.
    pub id: u64,
    /// Whether this is the hub's root context (the OS thread's own stack).
    pub root: bool,
    /// Its name, if it was given one ([`Builder::name`](crate::Builder::name)).
    pub name: Option<String>,
    /// What it is doing.
    pub state: GreenState,
    /// While parked: the blocking call's `file:line`.
    pub parked_at: Option<String>,
    /// While parked: for how long so far (to within 50 ms).
    pub parked_for: Option<Duration>,
    /// While parked with a deadline: the time left (zero if it passed).
    pub deadline: Option<Duration>,
    /// The id of the `timeout`/`deadline` scope that set that deadline,
    /// when a scope's (not the operation's own timeout) governs.
    pub deadline_scope: Option<u64>,
    /// Where it was spawned (`file:line`); `None` for a root.
    pub spawned_at: Option<String>,
    /// The green thread that spawned it (0: a root context); `None` for a
    /// root.
    pub parent: Option<u64>,
    /// The backtrace captured when it parked, when park backtraces are on
    /// ([`set_park_backtraces`](super::set_park_backtraces)).
    pub backtrace: Option<String>,
}

/// The blocking-work pool in a [`Snapshot`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TpoolSnapshot {
    /// Threads started.
    pub threads: usize,
    /// Threads running a job.
    pub busy: usize,
    /// Jobs waiting for a thread.
    pub queued: usize,
    /// The most threads it runs at once.
    pub size: usize,
}

/// An open descriptor of the process in a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Descriptor {
    /// The descriptor number.
    pub fd: i32,
    /// `inet` (an IPv4 or IPv6 socket), `unix`, `socket` (another family,
    /// or one that is gone), `pipe`, `epoll`, `eventfd`, `pidfd`, `anon`
    /// (another anonymous inode) or `file`.
    pub kind: &'static str,
    /// What it refers to: a path, or the kernel's `socket:[inode]` name.
    pub target: String,
    /// For a socket, its local address.
    pub local: Option<String>,
    /// For a connected socket, its peer's address.
    pub peer: Option<String>,
}

/// Reads every hub of the process; see [`Snapshot`].
///
/// Costs the hubs nothing (they are not stopped or asked anything); costs
/// the caller a pass over each hub's green threads.
///
/// # Examples
///
/// ```
/// let snap = sylvan::debug::snapshot();
/// assert!(!snap.hubs.is_empty()); // this thread's hub at least
/// assert!(snap.to_json().starts_with('{'));
/// println!("{snap}"); // the Go-style dump
/// ```
pub fn snapshot() -> Snapshot {
    // This thread's hub exists from here on (so a snapshot taken from a
    // thread that never used sylvan shows it too).
    crate::runtime::ensure_hub();
    let hubs = introspect::hubs()
        .iter()
        .map(|h| hub_snapshot(introspect::read_hub(h)))
        .collect();
    let (threads, busy, queued, size) = crate::tpool::stats();
    Snapshot {
        pid: std::process::id(),
        hubs,
        tpool: TpoolSnapshot {
            threads,
            busy,
            queued,
            size,
        },
        descriptors: crate::sys::proc::open_fds()
            .into_iter()
            .map(|f| Descriptor {
                fd: f.fd,
                kind: kind_of(&f.target, f.local.as_deref()),
                target: f.target,
                local: f.local,
                peer: f.peer,
            })
            .collect(),
    }
}

fn kind_of(target: &str, local: Option<&str>) -> &'static str {
    if target.starts_with("socket:") {
        match local {
            Some(l) if l.starts_with("unix:") => "unix",
            Some(_) => "inet",
            None => "socket",
        }
    } else if target.starts_with("pipe:") {
        "pipe"
    } else if target.contains("[eventpoll]") {
        "epoll"
    } else if target.contains("[eventfd]") {
        "eventfd"
    } else if target.contains("[pidfd]") {
        "pidfd"
    } else if target.starts_with("anon_inode:") {
        "anon"
    } else {
        "file"
    }
}

fn hub_snapshot(raw: RawHub) -> HubSnapshot {
    let now_ms = raw.now_ns / 1_000_000;
    let green = |g: &RawGreen| {
        let state = if g.finished {
            GreenState::Finished
        } else if g.park.is_some() {
            GreenState::Parked
        } else if (g.root && raw.running == 0) || (!g.root && raw.running == g.id) {
            GreenState::Running
        } else {
            GreenState::Ready
        };
        let park = g.park.filter(|_| state == GreenState::Parked);
        GreenSnapshot {
            id: g.id,
            root: g.root,
            name: if g.root {
                Some(raw.thread_name.clone())
            } else {
                raw.names.get(&g.id).map(|n| n.to_string())
            },
            state,
            parked_at: park.and_then(|p| p.at).map(|l| l.to_string()),
            parked_for: park.map(|p| Duration::from_millis(now_ms.saturating_sub(p.since_ms))),
            deadline: park
                .and_then(|p| p.deadline)
                .map(|d| Duration::from_nanos(d.saturating_sub(raw.clock_now))),
            deadline_scope: park.and_then(|p| (p.scope != 0).then_some(p.scope)),
            spawned_at: g.spawned_at.map(|l| l.to_string()),
            parent: (!g.root).then_some(g.parent),
            backtrace: g.backtrace.as_ref().map(|b| b.to_string()),
        }
    };
    let mut green_threads = vec![green(&raw.root)];
    let mut rest: Vec<GreenSnapshot> = raw.greens.iter().map(green).collect();
    rest.sort_by_key(|g| g.id);
    green_threads.extend(rest);
    let ready = green_threads
        .iter()
        .filter(|g| !g.root && g.state == GreenState::Ready)
        .count();
    let lag_now = if raw.running != 0 || ready > 0 {
        Duration::from_nanos(raw.now_ns.saturating_sub(raw.pass_start_ns))
    } else {
        Duration::ZERO
    };
    HubSnapshot {
        id: raw.id,
        thread: raw.thread_name,
        ready,
        timers: raw.timers,
        next_timer: raw
            .next_timer
            .map(|t| Duration::from_nanos(t.saturating_sub(raw.clock_now))),
        io_sources: raw.io_sources,
        counters: HubCounters {
            switches: raw.switches,
            spawned: raw.spawned,
            finished: raw.finished,
            panicked: raw.panicked,
            killed: raw.killed,
            watchdog_warnings: raw.warnings,
        },
        lag: LagHistogram {
            bounds: LAG_BOUNDS_US
                .iter()
                .map(|&us| Duration::from_micros(us))
                .collect(),
            counts: raw.lag,
            sum: Duration::from_micros(raw.lag_sum_us),
        },
        lag_now,
        green_threads,
    }
}
