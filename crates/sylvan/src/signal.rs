//! Waiting for Unix signals in green threads: [`wait`] and [`Signals`].
//!
//! A signal is never handled on a green stack. The first time sylvan
//! listens for a signal it installs a handler that only counts the
//! delivery and writes one byte to a self-pipe (async-signal-safe); one
//! process-wide OS thread, `sylvan-signal`, reads the pipe and wakes the
//! green threads — on any hub — that listen for that signal.
//!
//! # Semantics
//!
//! - **Broadcast.** Every listener registered for a signal when it is
//!   delivered gets it: each [`Signals`] and each green thread in [`wait`].
//! - **A count per listener, no more.** Each [`Signals`] keeps, for each of
//!   its signals, how many deliveries it has not received yet (the kernel
//!   itself merges a standard signal sent again before the handler ran).
//!   [`Signals::recv`] hands them out one at a time, different signals in
//!   the order they first became pending. [`wait`] is a [`Signals`] that
//!   lives for one call: deliveries before the call or after it returns
//!   are not its business.
//! - **Disposition.** While at least one listener exists for a signal,
//!   sylvan's handler is installed for it (replacing any previous handler,
//!   an ignored signal included). When the last listener of a signal goes
//!   away, the disposition it had before is put back: a `SIGTERM` nobody
//!   listens for terminates the process again. So a loop of [`wait`]
//!   calls has gaps where the default action applies; keep a [`Signals`]
//!   for as long as you handle a signal.
//! - **Not catchable:** `SIGKILL` and `SIGSTOP`; sylvan also refuses the
//!   synchronous faults (`SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`) and
//!   glibc's internal real-time signals.
//!
//! # Examples
//!
//! ```
//! use sylvan::signal::{self, SIGTERM, SIGUSR1};
//!
//! let listener = sylvan::spawn(|| signal::wait(&[SIGTERM, SIGUSR1]));
//! sylvan::yield_now(); // it listens now
//! sylvan::process::Command::new("kill")
//!     .args(["-USR1", &std::process::id().to_string()])
//!     .status()
//!     .unwrap();
//! assert_eq!(listener.join().unwrap(), Ok(SIGUSR1));
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read};
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::cancel::Cancelled;
use crate::runtime::{self, Unparker};
use crate::sys::catch::{self, NSIG};

/// A Unix signal number that sylvan can wait for.
///
/// The common ones are constants of this module ([`SIGTERM`], [`SIGINT`],
/// …); any other catchable number (a real-time signal) comes from
/// [`Signal::from_raw`].
///
/// # Examples
///
/// ```
/// use sylvan::signal::{Signal, SIGTERM};
///
/// assert_eq!(SIGTERM.as_raw(), libc::SIGTERM);
/// assert_eq!(SIGTERM.to_string(), "SIGTERM");
/// assert_eq!(Signal::from_raw(libc::SIGTERM).unwrap(), SIGTERM);
/// assert!(Signal::from_raw(libc::SIGKILL).is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(i32);

macro_rules! signals {
    ($($name:ident: $doc:literal,)*) => {
        $(
            #[doc = $doc]
            pub const $name: Signal = Signal(libc::$name);
        )*
        fn name(signo: i32) -> Option<&'static str> {
            match signo {
                $(libc::$name => Some(stringify!($name)),)*
                _ => None,
            }
        }
    };
}

signals! {
    SIGHUP: "Hangup: the controlling terminal closed; daemons reload their configuration.",
    SIGINT: "Interrupt from the keyboard (Ctrl-C).",
    SIGQUIT: "Quit from the keyboard (Ctrl-\\).",
    SIGTERM: "Termination request (the default of `kill`).",
    SIGUSR1: "User-defined signal 1.",
    SIGUSR2: "User-defined signal 2.",
    SIGALRM: "Timer signal from `alarm(2)`.",
    SIGCHLD: "A child stopped or exited (sylvan's own child waits don't need it).",
    SIGCONT: "Continue if stopped.",
    SIGPIPE: "Write to a pipe with no readers (ignored by Rust programs by default).",
    SIGTSTP: "Stop typed at the terminal (Ctrl-Z).",
    SIGTTIN: "Terminal input for a background process.",
    SIGTTOU: "Terminal output for a background process.",
    SIGWINCH: "The terminal window changed size.",
    SIGURG: "Urgent data on a socket.",
    SIGIO: "I/O possible on a descriptor (`O_ASYNC`).",
}

impl Signal {
    /// The signal with number `signo`, if sylvan can catch it.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = sylvan::signal::Signal::from_raw(libc::SIGRTMIN() + 1).unwrap();
    /// assert_eq!(rt.to_string(), "SIGRTMIN+1");
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a number out of range, `SIGKILL`, `SIGSTOP`, a
    /// synchronous fault (`SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`) or one of
    /// glibc's internal real-time signals.
    pub fn from_raw(signo: i32) -> io::Result<Signal> {
        if catch::catchable(signo) {
            Ok(Signal(signo))
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "signal {signo} can't be waited for (uncatchable, a fault, or out of range)"
                ),
            ))
        }
    }

    /// The signal's number.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan::signal::SIGINT.as_raw(), 2);
    /// ```
    pub fn as_raw(self) -> i32 {
        self.0
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match name(self.0) {
            Some(n) => f.write_str(n),
            None => write!(f, "SIGRTMIN+{}", self.0 - libc::SIGRTMIN()),
        }
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Waits until one of `signals` is delivered to the process and returns
/// it; parks only the calling green thread.
///
/// Listens from the call until it returns: a delivery before the call is
/// not seen, and the disposition of a signal nobody else listens for is put
/// back when it returns (see the [module docs](self#semantics)). Every
/// green thread waiting for the signal gets it. To handle a signal more
/// than once, keep a [`Signals`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::signal::{self, SIGURG};
///
/// // Nothing sends SIGURG here: the wait ends with the timeout.
/// let r = sylvan::timeout(Duration::from_millis(5), || signal::wait(&[SIGURG]));
/// assert!(r.is_err());
/// ```
///
/// # Panics
///
/// If the process-wide machinery can't be set up the first time (no
/// descriptor left for its pipe, no thread can be started);
/// [`Signals::new`] returns that as an error instead.
///
/// # Cancellation
///
/// Killed or past a deadline while waiting: returns that error, and stops
/// listening (a signal delivered afterwards is not kept for anyone).
#[track_caller]
pub fn wait(signals: &[Signal]) -> Result<Signal, Cancelled> {
    let loc = Location::caller();
    runtime::check_cancelled()?;
    let s = Signals::new(signals).unwrap_or_else(|e| panic!("sylvan::signal::wait: {e}"));
    s.recv_at(loc)
}

/// A standing subscription to some signals: every delivery from its
/// creation until it is dropped is kept for it (a count per signal) and
/// handed out by [`recv`](Self::recv).
///
/// `Send` and `Sync`: create it early (before starting a
/// [`Runtime`](crate::Runtime), so no signal is missed) and receive on any
/// hub; green threads receiving at once share its deliveries, each one to
/// one of them. Dropping the last subscription to a signal puts back the
/// signal's previous disposition (see the [module docs](self#semantics)).
///
/// # Examples
///
/// ```
/// use sylvan::signal::{Signals, SIGUSR2, SIGWINCH};
///
/// let signals = Signals::new(&[SIGUSR2, SIGWINCH]).unwrap();
/// let me = std::process::id().to_string();
/// for sig in ["-WINCH", "-USR2"] {
///     sylvan::process::Command::new("kill").args([sig, &me]).status().unwrap();
/// }
/// // Both were kept while nobody was receiving.
/// let mut got = vec![signals.recv().unwrap(), signals.recv().unwrap()];
/// got.sort();
/// assert_eq!(got, [SIGUSR2, SIGWINCH]);
/// ```
pub struct Signals {
    sub: Arc<Sub>,
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sigs: Vec<Signal> = (1..NSIG)
            .filter(|&s| self.sub.listens(s))
            .map(|s| Signal(s as i32))
            .collect();
        f.debug_struct("Signals").field("signals", &sigs).finish()
    }
}

impl Signals {
    /// Starts listening for `signals` (an empty list listens for nothing:
    /// [`recv`](Self::recv) then waits until cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = sylvan::signal::Signals::new(&[sylvan::signal::SIGTTIN]).unwrap();
    /// assert_eq!(s.try_recv(), None);
    /// ```
    ///
    /// # Errors
    ///
    /// The first time in a process: creating the self-pipe or starting the
    /// `sylvan-signal` thread failed (it is tried again next time); the
    /// errors of `sigaction`.
    pub fn new(signals: &[Signal]) -> io::Result<Signals> {
        let mut mask = 0u128;
        for s in signals {
            mask |= 1 << s.0;
        }
        let sub = Arc::new(Sub {
            mask,
            state: Mutex::new(SubState::default()),
        });
        let mut reg = registry();
        reg.start()?;
        for signo in 1..NSIG {
            if mask & (1 << signo) == 0 || reg.listeners[signo] > 0 {
                continue;
            }
            match catch::catch(signo as i32) {
                Ok(saved) => reg.saved[signo] = Some(saved),
                Err(e) => {
                    // Undo what this call installed.
                    for s in 1..signo {
                        if mask & (1 << s) != 0 && reg.listeners[s] == 0 {
                            if let Some(saved) = reg.saved[s].take() {
                                catch::restore(s as i32, &saved);
                            }
                        }
                    }
                    return Err(e);
                }
            }
        }
        for signo in 1..NSIG {
            if mask & (1 << signo) != 0 {
                reg.listeners[signo] += 1;
            }
        }
        reg.subs.push(sub.clone());
        Ok(Signals { sub })
    }

    /// Waits for the next delivery kept for this subscription and returns
    /// its signal; parks only the calling green thread. Returns at once if
    /// one is kept already.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::signal::{Signals, SIGHUP};
    ///
    /// let s = std::sync::Arc::new(Signals::new(&[SIGHUP]).unwrap());
    /// let s2 = s.clone();
    /// let g = sylvan::spawn(move || s2.recv());
    /// sylvan::yield_now();
    /// assert!(!g.is_finished());
    /// let me = std::process::id().to_string();
    /// sylvan::process::Command::new("kill").args(["-HUP", &me]).status().unwrap();
    /// assert_eq!(g.join().unwrap(), Ok(SIGHUP));
    /// ```
    ///
    /// # Cancellation
    ///
    /// Killed or past a deadline while waiting: returns that error and
    /// takes nothing; deliveries go on being kept for the subscription.
    #[track_caller]
    pub fn recv(&self) -> Result<Signal, Cancelled> {
        self.recv_at(Location::caller())
    }

    /// The next delivery kept for this subscription, if any; never blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = sylvan::signal::Signals::new(&[sylvan::signal::SIGTTOU]).unwrap();
    /// assert_eq!(s.try_recv(), None);
    /// ```
    pub fn try_recv(&self) -> Option<Signal> {
        self.sub.lock().pop()
    }

    fn recv_at(&self, loc: &'static Location<'static>) -> Result<Signal, Cancelled> {
        runtime::check_cancelled()?;
        loop {
            if let Some(s) = self.sub.lock().pop() {
                return Ok(s);
            }
            static IDS: AtomicU64 = AtomicU64::new(0);
            let id = IDS.fetch_add(1, Ordering::Relaxed);
            let r = runtime::park_at(loc, None, |token| {
                let waker = Unparker::new(token);
                let mut st = self.sub.lock();
                if st.order.is_empty() {
                    st.waiters.push((id, waker));
                } else {
                    // Delivered between our check and now.
                    drop(st);
                    waker.unpark();
                }
            });
            if let Err(c) = r {
                self.sub.lock().waiters.retain(|(w, _)| *w != id);
                return Err(c);
            }
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        let mut reg = registry();
        reg.subs.retain(|s| !Arc::ptr_eq(s, &self.sub));
        for signo in 1..NSIG {
            if self.sub.listens(signo) {
                reg.listeners[signo] -= 1;
                if reg.listeners[signo] == 0 {
                    if let Some(saved) = reg.saved[signo].take() {
                        catch::restore(signo as i32, &saved);
                    }
                }
            }
        }
    }
}

/// One subscription's kept deliveries and parked receivers.
struct Sub {
    /// Bit `n` set: listens for signal `n`.
    mask: u128,
    state: Mutex<SubState>,
}

impl Sub {
    fn listens(&self, signo: usize) -> bool {
        self.mask & (1 << signo) != 0
    }

    fn lock(&self) -> MutexGuard<'_, SubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct SubState {
    /// Deliveries not handed out yet, per signal.
    counts: [u32; NSIG],
    /// Signals with a non-zero count, each once, oldest first.
    order: VecDeque<u8>,
    /// Parked receivers, by a park-unique id.
    waiters: Vec<(u64, Unparker)>,
}

impl Default for SubState {
    fn default() -> SubState {
        SubState {
            counts: [0; NSIG],
            order: VecDeque::new(),
            waiters: Vec::new(),
        }
    }
}

impl SubState {
    fn pop(&mut self) -> Option<Signal> {
        let signo = self.order.pop_front()?;
        let c = &mut self.counts[usize::from(signo)];
        *c -= 1;
        if *c > 0 {
            self.order.push_back(signo);
        }
        Some(Signal(i32::from(signo)))
    }

    fn deliver(&mut self, signo: usize, n: u32) {
        let c = &mut self.counts[signo];
        if *c == 0 {
            self.order.push_back(signo as u8);
        }
        *c = c.saturating_add(n);
        for (_, w) in self.waiters.drain(..) {
            w.unpark();
        }
    }
}

/// Who listens for what, process-wide.
struct Registry {
    subs: Vec<Arc<Sub>>,
    listeners: [u32; NSIG],
    saved: [Option<catch::Saved>; NSIG],
    started: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    subs: Vec::new(),
    listeners: [0; NSIG],
    saved: [None; NSIG],
    started: false,
});

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    /// Creates the self-pipe and the thread that reads it, once.
    fn start(&mut self) -> io::Result<()> {
        if self.started {
            return Ok(());
        }
        let pipe = catch::open_pipe()?;
        std::thread::Builder::new()
            .name("sylvan-signal".into())
            .spawn(move || dispatch_loop(pipe))?;
        self.started = true;
        Ok(())
    }
}

/// The `sylvan-signal` thread: waits for the handler's bytes and hands each
/// counted delivery to the subscriptions that listen for it.
fn dispatch_loop(mut pipe: std::fs::File) {
    let mut buf = [0u8; 64];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => return, // the write end is never closed; defensive
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::error!("sylvan-signal: reading the signal pipe failed: {e}");
                return;
            }
        }
        for signo in 1..NSIG {
            let n = catch::take_pending(signo);
            if n == 0 {
                continue;
            }
            let reg = registry();
            for sub in reg.subs.iter().filter(|s| s.listens(signo)) {
                sub.lock().deliver(signo, n);
            }
        }
    }
}
