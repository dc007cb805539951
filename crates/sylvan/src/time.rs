//! Time: [`sleep`], scoped deadlines ([`timeout`], [`deadline`]) and the
//! hub's clock, which tests can pause and advance.
//!
//! # Virtual time
//!
//! Each hub has its own clock. [`pause`] freezes it; from then on it moves
//! only by [`advance`], or by itself when the hub has nothing to run and is
//! only waiting for a timer: it then jumps straight to that timer's deadline.
//! So a test of backoff or timeouts runs in microseconds, deterministically,
//! without sleeping. Operations running on other OS threads
//! ([`tpool::execute`](crate::tpool::execute)) keep the clock from jumping
//! while they are in flight.
//!
//! Deadlines passed as `Instant` are read on this clock's time line: get
//! them from [`now`], not from `Instant::now()`, when the clock may be
//! paused.
//!
//! Auto-advance does not wait for sockets: with the clock paused, a green
//! thread waiting on real I/O under a deadline sees that deadline pass as
//! soon as the hub is otherwise idle (tokio's paused clock behaves the same
//! way). Pause the clock for logic that waits on timers, queues and events;
//! test real I/O on real time, or make sure the peer's data is already on
//! its way before the hub goes idle.
//!
//! # Values handed back on cancellation
//!
//! When [`timeout`] returns `Err(Elapsed)` it drops the body's value. A
//! blocking call that hands its argument back when cancelled (e.g.
//! [`Queue::put`](crate::sync::Queue::put)'s `PutError`) does so inside that
//! value, so keep what you need in a variable outside the closure, or use
//! [`deadline`] / `timeout` around a smaller body.

use std::panic::Location;
use std::time::{Duration, Instant};

use crate::cancel::{Cancelled, Elapsed, ScopeId};
use crate::runtime::{self, Parked, clock_ctl};

/// Blocks the current green thread (or the root context) for at least `dur`.
///
/// Other green threads run meanwhile. `sleep(Duration::ZERO)` yields once,
/// as Eventlet's `sleep(0)` does.
///
/// # Precision
///
/// May sleep longer than `dur`, never shorter: the wake-up comes at the
/// first hub turn at or after the deadline, so any non-zero sleep
/// suspends at least once, however short. When the hub has nothing else
/// to do it waits in `epoll_wait`, whose timeout has millisecond
/// granularity, so an idle hub wakes up to about 1 ms late.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let start = sylvan::time::now();
/// sylvan::sleep(Duration::from_millis(20)).unwrap();
/// assert!(sylvan::time::now() - start >= Duration::from_millis(20));
/// ```
///
/// # Cancellation
///
/// If the green thread is killed, or the deadline of an enclosing
/// [`timeout`]/[`deadline`] scope passes before `dur` has, returns
/// [`Cancelled`] at once; nothing is left behind.
///
/// # Errors
///
/// Only [`Cancelled`].
#[track_caller]
pub fn sleep(dur: Duration) -> Result<(), Cancelled> {
    let loc = Location::caller();
    if dur.is_zero() {
        runtime::check_cancelled()?;
        runtime::yield_now();
        return Ok(());
    }
    let Some(until) = runtime::try_after(dur) else {
        return Err(Cancelled::Killed);
    };
    // Made just now from a positive duration, `until` lies ahead (unless
    // it saturated at the end of time): the first park need not read the
    // clock again.
    match runtime::park_at_fresh(loc, Some(until), until != u64::MAX, |_| {})? {
        Parked::OwnDeadline => Ok(()),
        Parked::Woken => sleep_until_ns(loc, until),
    }
}

/// Blocks until `instant` (on the hub's clock, see [`now`]).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let at = sylvan::time::now() + Duration::from_millis(5);
/// sylvan::time::sleep_until(at).unwrap();
/// assert!(sylvan::time::now() >= at);
/// ```
///
/// # Cancellation
///
/// As [`sleep`].
#[track_caller]
pub fn sleep_until(instant: Instant) -> Result<(), Cancelled> {
    let loc = Location::caller();
    let until = runtime::nanos_at(instant);
    sleep_until_ns(loc, until)
}

fn sleep_until_ns(loc: &'static Location<'static>, until: u64) -> Result<(), Cancelled> {
    loop {
        match runtime::park_at(loc, Some(until), |_| {})? {
            Parked::OwnDeadline => return Ok(()),
            // Nobody holds our token, so only the timer ends this park; loop
            // defensively all the same.
            Parked::Woken => continue,
        }
    }
}

/// Lets every other ready green thread run once, then continues.
///
/// Never fails and never blocks for long: it is a scheduling point, not a
/// wait. From the root context it also polls for I/O and timers once.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// let ran = Rc::new(Cell::new(false));
/// let r = ran.clone();
/// let g = sylvan::spawn(move || r.set(true));
/// sylvan::yield_now();
/// assert!(ran.get());
/// g.join().unwrap();
/// ```
// Inlined down to the switch (see `Hub::yield_current`): no frame to
// return through, mispredicted, once switched back in.
#[inline(always)]
pub fn yield_now() {
    runtime::yield_now();
}

/// Runs `f` with a deadline `dur` from now; Eventlet's `with Timeout(dur)`.
///
/// Every blocking call inside `f` — in this green thread, not in green
/// threads it spawns — fails with [`Cancelled::TimedOut`] once the deadline
/// passes (at once, if it already has). Scopes nest: each blocking call obeys
/// the earliest deadline of all scopes around it.
///
/// Returns `Err(Elapsed)` if and only if this scope's own deadline made a
/// blocking call inside `f` fail; `f`'s value is then dropped. An outer
/// scope's expiry passes through an inner `timeout` as `Ok(value)`, where the
/// value carries the `Cancelled` error up to the scope it belongs to (so
/// propagating errors with `?` reaches the right scope, as Eventlet's
/// `t is timeout` check does). If `f` finishes without a blocking call
/// failing, the result is `Ok`, even if the deadline passed meanwhile.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let r = sylvan::timeout(Duration::from_millis(10), || {
///     sylvan::sleep(Duration::from_secs(60))?;
///     Ok::<_, sylvan::Cancelled>("woke up")
/// });
/// assert!(r.is_err());
///
/// let r = sylvan::timeout(Duration::from_secs(60), || "quick");
/// assert_eq!(r, Ok("quick"));
/// ```
pub fn timeout<R>(dur: Duration, f: impl FnOnce() -> R) -> Result<R, Elapsed> {
    let until = runtime::after(dur);
    scoped(until, f)
}

/// Runs `f` with a deadline at `instant`; see [`timeout`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let at = sylvan::time::now() + Duration::from_millis(5);
/// let r = sylvan::deadline(at, || sylvan::sleep(Duration::from_secs(60)));
/// assert!(r.is_err());
/// ```
pub fn deadline<R>(instant: Instant, f: impl FnOnce() -> R) -> Result<R, Elapsed> {
    let until = runtime::nanos_at(instant);
    scoped(until, f)
}

fn scoped<R>(until: u64, f: impl FnOnce() -> R) -> Result<R, Elapsed> {
    struct Pop(u64);
    impl Drop for Pop {
        fn drop(&mut self) {
            runtime::exit_scope(self.0);
        }
    }
    let id = runtime::enter_scope(until);
    let guard = Pop(id);
    let r = f();
    std::mem::forget(guard);
    if runtime::exit_scope(id) {
        Err(Elapsed(ScopeId(id)))
    } else {
        Ok(r)
    }
}

/// Now, on this thread's hub clock.
///
/// Equal to `Instant::now()` until the clock is [`pause`]d; after that it
/// follows virtual time.
///
/// # Examples
///
/// ```
/// let a = sylvan::time::now();
/// let b = sylvan::time::now();
/// assert!(b >= a);
/// ```
pub fn now() -> Instant {
    runtime::now_instant()
}

/// Freezes this thread's hub clock (virtual time); see the module docs.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// sylvan::time::pause();
/// let t0 = sylvan::time::now();
/// sylvan::sleep(Duration::from_secs(3600)).unwrap(); // returns at once
/// assert_eq!(sylvan::time::now() - t0, Duration::from_secs(3600));
/// sylvan::time::resume();
/// ```
pub fn pause() {
    clock_ctl::pause();
}

/// Lets this thread's hub clock follow real time again, from where virtual
/// time stood.
///
/// # Examples
///
/// ```
/// sylvan::time::pause();
/// sylvan::time::resume();
/// assert!(!sylvan::time::is_paused());
/// ```
pub fn resume() {
    clock_ctl::resume();
}

/// Whether this thread's hub clock is paused.
///
/// # Examples
///
/// ```
/// assert!(!sylvan::time::is_paused());
/// ```
pub fn is_paused() -> bool {
    clock_ctl::is_paused()
}

/// Moves the paused clock forward by `dur`, then lets every green thread
/// whose timer is now due run before returning.
///
/// # Panics
///
/// If the clock is not paused.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// sylvan::time::pause();
/// let t0 = sylvan::time::now();
/// sylvan::time::advance(Duration::from_millis(250));
/// assert_eq!(sylvan::time::now() - t0, Duration::from_millis(250));
/// sylvan::time::resume();
/// ```
pub fn advance(dur: Duration) {
    assert!(
        clock_ctl::advance(dur),
        "sylvan::time::advance needs a paused clock (call sylvan::time::pause first)"
    );
}
