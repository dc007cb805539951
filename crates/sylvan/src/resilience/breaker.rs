//! The circuit breaker: [`CircuitBreaker`], with resilience4j's semantics.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::window::{Counts, Window, WindowKind};
use crate::settings::invalid;

/// The state of a [`CircuitBreaker`].
///
/// # Examples
///
/// ```
/// use sylvan::resilience::{BreakerState, CircuitBreaker};
///
/// let breaker = CircuitBreaker::new();
/// assert_eq!(breaker.state(), BreakerState::Closed);
/// assert_eq!(BreakerState::HalfOpen.to_string(), "half-open");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls go through; their outcomes are recorded in the sliding window.
    Closed,
    /// Calls are rejected at once until the open wait has passed.
    Open,
    /// A fixed number of probe calls go through; their outcomes decide
    /// between `Closed` and `Open`. Further calls are rejected meanwhile.
    HalfOpen,
    /// Every call is rejected until [`CircuitBreaker::reset`].
    ForcedOpen,
    /// Every call goes through and nothing is recorded, until
    /// [`CircuitBreaker::reset`].
    Disabled,
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
            BreakerState::ForcedOpen => "forced open",
            BreakerState::Disabled => "disabled",
        })
    }
}

/// The error of [`CircuitBreaker::call`]: the call was rejected, or the
/// operation itself failed.
///
/// `BreakerError<io::Error>` converts into `io::Error` for `?`: `Inner`
/// gives the operation's error back unchanged, `Open` becomes an error of
/// kind `Other` that wraps this one.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::resilience::{BreakerError, CircuitBreaker};
///
/// sylvan::time::pause();
/// let breaker = CircuitBreaker::builder()
///     .count_window(2)
///     .minimum_calls(2)
///     .wait_in_open(Duration::from_secs(30))
///     .build()
///     .unwrap();
/// for _ in 0..2 {
///     let r: Result<(), _> = breaker.call(|| Err("boom"));
///     assert!(matches!(r, Err(BreakerError::Inner("boom"))));
/// }
/// let r: Result<(), BreakerError<&str>> = breaker.call(|| Ok(()));
/// let e = r.unwrap_err();
/// assert!(e.is_open());
/// assert_eq!(e.remaining(), Some(Duration::from_secs(30)));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BreakerError<E> {
    /// Rejected without running the operation.
    #[non_exhaustive]
    Open {
        /// The state that rejected the call: `Open`, `ForcedOpen`, or
        /// `HalfOpen` with all its probe calls in flight.
        state: BreakerState,
        /// In `Open`, the time left until the breaker lets probe calls
        /// through; `None` in the other states.
        remaining: Option<Duration>,
    },
    /// The operation ran and failed with this error.
    Inner(E),
}

impl<E> BreakerError<E> {
    /// Whether the call was rejected without running.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.force_open();
    /// assert!(breaker.call(|| Ok::<(), ()>(())).unwrap_err().is_open());
    /// ```
    pub fn is_open(&self) -> bool {
        matches!(self, BreakerError::Open { .. })
    }

    /// For a rejection in `Open`, the time left until probes are let
    /// through.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.force_open();
    /// assert_eq!(breaker.call(|| Ok::<(), ()>(())).unwrap_err().remaining(), None);
    /// ```
    pub fn remaining(&self) -> Option<Duration> {
        match self {
            BreakerError::Open { remaining, .. } => *remaining,
            BreakerError::Inner(_) => None,
        }
    }

    /// The operation's error, if it ran.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new();
    /// let e = breaker.call(|| Err::<(), _>("boom")).unwrap_err();
    /// assert_eq!(e.into_inner(), Some("boom"));
    /// ```
    pub fn into_inner(self) -> Option<E> {
        match self {
            BreakerError::Inner(e) => Some(e),
            BreakerError::Open { .. } => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for BreakerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakerError::Open {
                state: BreakerState::HalfOpen,
                ..
            } => f.write_str("circuit breaker is half-open and all probe calls are in flight"),
            BreakerError::Open {
                remaining: Some(d), ..
            } => write!(f, "circuit breaker is open (probes allowed in {d:?})"),
            BreakerError::Open { state, .. } => write!(f, "circuit breaker is {state}"),
            BreakerError::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: Error + 'static> Error for BreakerError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            BreakerError::Inner(e) => e.source(),
            BreakerError::Open { .. } => None,
        }
    }
}

impl From<BreakerError<io::Error>> for io::Error {
    fn from(e: BreakerError<io::Error>) -> io::Error {
        match e {
            BreakerError::Inner(e) => e,
            open => io::Error::other(open),
        }
    }
}

/// A snapshot of a [`CircuitBreaker`]'s counters.
///
/// In `HalfOpen` the counts are those of the probe calls; otherwise those
/// of the sliding window (in `Open`, the window that tripped the breaker,
/// as far as it has not slid past).
///
/// # Examples
///
/// ```
/// use sylvan::resilience::CircuitBreaker;
///
/// let breaker = CircuitBreaker::builder()
///     .minimum_calls(2)
///     .failure_rate_threshold(60.0)
///     .build()
///     .unwrap();
/// let _ = breaker.call(|| Ok::<(), ()>(()));
/// let _ = breaker.call(|| Err::<(), ()>(()));
/// let m = breaker.metrics();
/// assert_eq!((m.calls, m.failed_calls), (2, 1));
/// assert_eq!(m.failure_rate, Some(50.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct BreakerMetrics {
    /// The state now.
    pub state: BreakerState,
    /// Calls recorded.
    pub calls: u32,
    /// Calls recorded as failed.
    pub failed_calls: u32,
    /// Calls slower than the slow-call duration (failed or not).
    pub slow_calls: u32,
    /// Slow calls that also failed.
    pub slow_failed_calls: u32,
    /// Calls rejected since the breaker was created.
    pub not_permitted_calls: u64,
    /// `failed_calls / calls` in percent, once the minimum number of calls
    /// was recorded.
    pub failure_rate: Option<f64>,
    /// `slow_calls / calls` in percent, once the minimum number of calls
    /// was recorded.
    pub slow_call_rate: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
struct Config {
    failure_rate: f64,
    slow_rate: f64,
    slow_duration: Duration,
    window: WindowKind,
    minimum_calls: u32,
    wait_in_open: Duration,
    half_open_calls: u32,
}

impl Config {
    /// The calls needed before the window's rates count.
    fn minimum(&self) -> u32 {
        match self.window {
            WindowKind::Count(n) => self.minimum_calls.min(n),
            WindowKind::Time(_) => self.minimum_calls,
        }
    }

    /// Whether `c` (of at least `min` calls) should open the breaker.
    fn tripped(&self, c: Counts, min: u32) -> bool {
        let (failure, slow) = c.rates();
        c.calls >= min.max(1) && (failure >= self.failure_rate || slow >= self.slow_rate)
    }
}

/// Configures a [`CircuitBreaker`]; from [`CircuitBreaker::builder`].
///
/// The defaults are resilience4j's.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::resilience::CircuitBreaker;
///
/// let breaker = CircuitBreaker::builder()
///     .failure_rate_threshold(25.0)
///     .slow_call_duration(Duration::from_millis(500))
///     .slow_call_rate_threshold(50.0)
///     .time_window(Duration::from_secs(30))
///     .minimum_calls(20)
///     .wait_in_open(Duration::from_secs(10))
///     .half_open_calls(3)
///     .build()
///     .unwrap();
/// assert!(breaker.try_acquire().is_some());
/// ```
#[derive(Debug, Clone)]
pub struct CircuitBreakerBuilder {
    config: Config,
}

impl CircuitBreakerBuilder {
    /// Sets the failure rate, in percent of the calls in the window, at or
    /// above which the breaker opens (default 50).
    ///
    /// [`build`](Self::build) fails unless `0 < percent <= 100`.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::{BreakerState, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::builder().failure_rate_threshold(100.0).minimum_calls(2).build().unwrap();
    /// let _ = breaker.call(|| Ok::<(), ()>(()));
    /// let _ = breaker.call(|| Err::<(), ()>(()));
    /// assert_eq!(breaker.state(), BreakerState::Closed); // 50 % < 100 %
    /// ```
    pub fn failure_rate_threshold(mut self, percent: f64) -> Self {
        self.config.failure_rate = percent;
        self
    }

    /// Sets the slow-call rate, in percent of the calls in the window, at or
    /// above which the breaker opens (default 100).
    ///
    /// [`build`](Self::build) fails unless `0 < percent <= 100`.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder().slow_call_rate_threshold(80.0).build().unwrap();
    /// # drop(breaker);
    /// ```
    pub fn slow_call_rate_threshold(mut self, percent: f64) -> Self {
        self.config.slow_rate = percent;
        self
    }

    /// Sets the duration above which a call counts as slow (default 60 s),
    /// measured on sylvan's clock from the permit to the result.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::CircuitBreaker;
    ///
    /// sylvan::time::pause();
    /// let breaker = CircuitBreaker::builder().slow_call_duration(Duration::from_secs(1)).build().unwrap();
    /// let _ = breaker.call(|| sylvan::sleep(Duration::from_secs(2)));
    /// assert_eq!(breaker.metrics().slow_calls, 1);
    /// ```
    pub fn slow_call_duration(mut self, duration: Duration) -> Self {
        self.config.slow_duration = duration;
        self
    }

    /// Uses a sliding window of the last `calls` calls (the default, with
    /// 100).
    ///
    /// [`build`](Self::build) fails if `calls` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder().count_window(3).minimum_calls(1).build().unwrap();
    /// for _ in 0..5 {
    ///     let _ = breaker.call(|| Ok::<(), ()>(()));
    /// }
    /// assert_eq!(breaker.metrics().calls, 3);
    /// ```
    pub fn count_window(mut self, calls: u32) -> Self {
        self.config.window = WindowKind::Count(calls);
        self
    }

    /// Uses a sliding window of the calls that completed during the last
    /// `span` (resilience4j's time-based window).
    ///
    /// # Precision
    ///
    /// The window is kept as 10 buckets of `span / 10` each, so a call
    /// counts for at least `0.9 × span` and at most `span` after it
    /// completed.
    ///
    /// [`build`](Self::build) fails if `span` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::CircuitBreaker;
    ///
    /// sylvan::time::pause();
    /// let breaker = CircuitBreaker::builder().time_window(Duration::from_secs(10)).build().unwrap();
    /// let _ = breaker.call(|| Err::<(), ()>(()));
    /// sylvan::time::advance(Duration::from_secs(10));
    /// assert_eq!(breaker.metrics().calls, 0);
    /// ```
    pub fn time_window(mut self, span: Duration) -> Self {
        self.config.window = WindowKind::Time(span);
        self
    }

    /// Sets how many calls the window must hold before its rates can open
    /// the breaker (default 100). With a count window of `n` calls, at most
    /// `n` are required.
    ///
    /// [`build`](Self::build) fails if `calls` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::{BreakerState, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::builder().minimum_calls(3).build().unwrap();
    /// let _ = breaker.call(|| Err::<(), ()>(()));
    /// let _ = breaker.call(|| Err::<(), ()>(()));
    /// assert_eq!(breaker.state(), BreakerState::Closed); // only 2 calls
    /// let _ = breaker.call(|| Err::<(), ()>(()));
    /// assert_eq!(breaker.state(), BreakerState::Open);
    /// ```
    pub fn minimum_calls(mut self, calls: u32) -> Self {
        self.config.minimum_calls = calls;
        self
    }

    /// Sets how long the breaker stays `Open` before it lets probe calls
    /// through (default 60 s).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::{BreakerState, CircuitBreaker};
    ///
    /// sylvan::time::pause();
    /// let breaker = CircuitBreaker::builder()
    ///     .minimum_calls(1)
    ///     .wait_in_open(Duration::from_secs(5))
    ///     .build()
    ///     .unwrap();
    /// let _ = breaker.call(|| Err::<(), ()>(()));
    /// assert_eq!(breaker.state(), BreakerState::Open);
    /// sylvan::time::advance(Duration::from_secs(5));
    /// assert_eq!(breaker.state(), BreakerState::HalfOpen);
    /// ```
    pub fn wait_in_open(mut self, wait: Duration) -> Self {
        self.config.wait_in_open = wait;
        self
    }

    /// Sets how many probe calls `HalfOpen` lets through (default 10):
    /// exactly that many, concurrent or not; their outcomes, judged by the
    /// same thresholds, close the breaker or open it again.
    ///
    /// [`build`](Self::build) fails if `calls` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::CircuitBreaker;
    ///
    /// sylvan::time::pause();
    /// let breaker = CircuitBreaker::builder()
    ///     .minimum_calls(1)
    ///     .wait_in_open(Duration::ZERO)
    ///     .half_open_calls(2)
    ///     .build()
    ///     .unwrap();
    /// let _ = breaker.call(|| Err::<(), ()>(()));
    /// let a = breaker.try_acquire().unwrap();
    /// let b = breaker.try_acquire().unwrap();
    /// assert!(breaker.try_acquire().is_none());
    /// a.success();
    /// b.success();
    /// ```
    pub fn half_open_calls(mut self, calls: u32) -> Self {
        self.config.half_open_calls = calls;
        self
    }

    /// Builds the breaker, `Closed`.
    ///
    /// # Errors
    ///
    /// `ErrorKind::InvalidInput`, naming the setting and its value, for a
    /// threshold outside `(0, 100]` (NaN included), a zero window, or zero
    /// minimum or half-open calls (see the crate docs'
    /// [`# Invalid settings`](crate#invalid-settings)).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::{BreakerState, CircuitBreaker};
    ///
    /// assert_eq!(CircuitBreaker::builder().build()?.state(), BreakerState::Closed);
    /// let e = CircuitBreaker::builder().count_window(0).build().unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    /// assert!(e.to_string().contains("count_window(0)"), "{e}");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build(self) -> io::Result<CircuitBreaker> {
        self.config.check()?;
        Ok(CircuitBreaker::with_config(self.config))
    }
}

impl Config {
    /// The policy of the crate docs' `# Invalid settings`.
    fn check(&self) -> io::Result<()> {
        let percent = |name, p: f64| {
            if p > 0.0 && p <= 100.0 {
                Ok(())
            } else {
                Err(invalid(
                    &format!("CircuitBreaker {name}"),
                    p,
                    "a rate in percent must be in (0, 100]",
                ))
            }
        };
        percent("failure_rate_threshold", self.failure_rate)?;
        percent("slow_call_rate_threshold", self.slow_rate)?;
        match self.window {
            WindowKind::Count(0) => {
                return Err(invalid(
                    "CircuitBreaker count_window",
                    0,
                    "the window must hold at least 1 call",
                ));
            }
            WindowKind::Time(span) if span.is_zero() => {
                return Err(invalid(
                    "CircuitBreaker time_window",
                    "0s",
                    "the window must span some time",
                ));
            }
            _ => {}
        }
        if self.minimum_calls == 0 {
            return Err(invalid(
                "CircuitBreaker minimum_calls",
                0,
                "at least 1 call must be seen before the breaker can open",
            ));
        }
        if self.half_open_calls == 0 {
            return Err(invalid(
                "CircuitBreaker half_open_calls",
                0,
                "half-open needs at least 1 probe call to close again",
            ));
        }
        Ok(())
    }
}

impl CircuitBreaker {
    fn with_config(config: Config) -> CircuitBreaker {
        let now = crate::time::now();
        CircuitBreaker {
            inner: Rc::new(Inner {
                config,
                machine: RefCell::new(Machine {
                    state: BreakerState::Closed,
                    epoch: 0,
                    window: Window::new(config.window, now),
                    opened_at: now,
                    probes_in_flight: 0,
                    probes: Counts::default(),
                    not_permitted: 0,
                }),
                listeners: RefCell::new(Vec::new()),
                pending: RefCell::new(VecDeque::new()),
                dispatching: Cell::new(false),
            }),
        }
    }
}

type Listener = Rc<dyn Fn(BreakerState, BreakerState)>;

/// A circuit breaker with resilience4j's semantics, on sylvan's clock.
///
/// - **Closed**: calls go through; each outcome (failed or not, slow or
///   not) is recorded in a sliding window, count-based (the last `n`
///   calls) or time-based (the calls of the last span). Once the window
///   holds the [minimum number of calls](CircuitBreakerBuilder::minimum_calls)
///   and its failure rate or slow-call rate reaches its threshold, the
///   breaker opens.
/// - **Open**: calls are rejected at once with [`BreakerError::Open`],
///   which says how long until probes are allowed. After the
///   [wait](CircuitBreakerBuilder::wait_in_open) the breaker becomes
///   half-open, at the first look at it (a call, [`try_acquire`],
///   [`state`] or [`metrics`]); no timer or green thread is involved.
/// - **HalfOpen**: exactly [`half_open_calls`] probe calls are let
///   through; any further call is rejected until they have finished. Once
///   all of them have reported, their failure and slow-call rates decide:
///   below both thresholds the breaker closes (with an empty window),
///   otherwise it opens again.
/// - **ForcedOpen** ([`force_open`]) rejects everything, **Disabled**
///   ([`disable`]) lets everything through and records nothing; both last
///   until [`reset`].
///
/// A call that was permitted in one state and reports after the breaker
/// moved on is not recorded: only probes decide a half-open breaker. A
/// permit dropped without a result (the caller was killed, or gave up)
/// records nothing and, in half-open, frees its probe slot.
///
/// `Clone` shares the breaker (it is an `Rc`): clones are handles to one
/// state, for the green threads of one hub; it is not `Send`.
///
/// [`try_acquire`]: Self::try_acquire
/// [`state`]: Self::state
/// [`metrics`]: Self::metrics
/// [`half_open_calls`]: CircuitBreakerBuilder::half_open_calls
/// [`force_open`]: Self::force_open
/// [`disable`]: Self::disable
/// [`reset`]: Self::reset
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::resilience::{BreakerState, CircuitBreaker};
///
/// sylvan::time::pause();
/// let breaker = CircuitBreaker::builder()
///     .count_window(10)
///     .minimum_calls(4)
///     .failure_rate_threshold(50.0)
///     .wait_in_open(Duration::from_secs(30))
///     .half_open_calls(2)
///     .build()
///     .unwrap();
/// let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
/// let s = seen.clone();
/// breaker.on_state_change(move |from, to| s.borrow_mut().push((from, to)));
///
/// for ok in [true, false, true, false] {
///     let _ = breaker.call(|| if ok { Ok(()) } else { Err("down") });
/// }
/// assert_eq!(breaker.state(), BreakerState::Open); // 50 % of 4 calls failed
/// assert!(breaker.call(|| Ok::<(), &str>(())).unwrap_err().is_open());
///
/// sylvan::sleep(Duration::from_secs(30)).unwrap();
/// for _ in 0..2 {
///     breaker.call(|| Ok::<(), &str>(())).unwrap(); // the two probes
/// }
/// assert_eq!(breaker.state(), BreakerState::Closed);
/// use BreakerState::*;
/// assert_eq!(*seen.borrow(), [(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)]);
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Rc<Inner>,
}

struct Inner {
    config: Config,
    machine: RefCell<Machine>,
    listeners: RefCell<Vec<Listener>>,
    /// Transitions not yet handed to the listeners, in order.
    pending: RefCell<VecDeque<(BreakerState, BreakerState)>>,
    dispatching: Cell<bool>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("CircuitBreaker");
        if let Ok(m) = self.inner.machine.try_borrow() {
            d.field("state", &m.state);
        }
        d.field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        CircuitBreaker::new()
    }
}

impl CircuitBreaker {
    /// A breaker with resilience4j's defaults: failure rate 50 %, slow-call
    /// rate 100 % of calls over 60 s, a count window of 100 calls, at least
    /// 100 calls, 60 s open, 10 probe calls.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new();
    /// assert_eq!(breaker.call(|| Ok::<_, ()>(5)).unwrap(), 5);
    /// ```
    pub fn new() -> CircuitBreaker {
        CircuitBreaker::with_config(CircuitBreaker::builder().config)
    }

    /// A builder, with resilience4j's defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder().half_open_calls(1).build().unwrap();
    /// # drop(breaker);
    /// ```
    pub fn builder() -> CircuitBreakerBuilder {
        CircuitBreakerBuilder {
            config: Config {
                failure_rate: 50.0,
                slow_rate: 100.0,
                slow_duration: Duration::from_secs(60),
                window: WindowKind::Count(100),
                minimum_calls: 100,
                wait_in_open: Duration::from_secs(60),
                half_open_calls: 10,
            },
        }
    }

    /// Runs `op` if the breaker permits it and records the outcome: `Ok` as
    /// a success, `Err` as a failure, either as slow if it took longer than
    /// the slow-call duration.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new();
    /// let v = breaker.call(|| "42".parse::<u32>()).unwrap();
    /// assert_eq!(v, 42);
    /// ```
    ///
    /// # Errors
    ///
    /// [`BreakerError::Open`] at once, without running `op`, if the breaker
    /// rejects the call; [`BreakerError::Inner`] with `op`'s error.
    ///
    /// # Cancellation
    ///
    /// `call` itself never blocks; `op` may. If the green thread was
    /// killed by the time `op` returns an error, nothing is recorded (the
    /// caller gave up, the peer is not to blame) and a half-open probe slot
    /// is freed. A passed deadline is recorded as a failure: a peer too slow
    /// for its callers' deadlines is what a breaker is for.
    pub fn call<T, E>(&self, op: impl FnOnce() -> Result<T, E>) -> Result<T, BreakerError<E>> {
        let permit = self
            .acquire()
            .map_err(|(state, remaining)| BreakerError::Open { state, remaining })?;
        match op() {
            Ok(v) => {
                permit.success();
                Ok(v)
            }
            Err(e) => {
                if crate::runtime::is_killed() {
                    drop(permit);
                } else {
                    permit.failure();
                }
                Err(BreakerError::Inner(e))
            }
        }
    }

    /// Asks for permission to make one call, for callers that can't wrap
    /// the call in a closure. Report the outcome with
    /// [`Permit::success`] or [`Permit::failure`]; dropping the permit
    /// records nothing.
    ///
    /// Returns `None` where [`call`](Self::call) would return
    /// [`BreakerError::Open`].
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new();
    /// if let Some(permit) = breaker.try_acquire() {
    ///     // ... make the call ...
    ///     permit.success();
    /// }
    /// assert_eq!(breaker.metrics().calls, 1);
    /// ```
    pub fn try_acquire(&self) -> Option<Permit> {
        self.acquire().ok()
    }

    /// The state now (an `Open` breaker whose wait has passed becomes
    /// `HalfOpen` here, and listeners hear of it).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::{BreakerState, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.disable();
    /// assert_eq!(breaker.state(), BreakerState::Disabled);
    /// ```
    pub fn state(&self) -> BreakerState {
        self.with(|m, cfg, now, out| {
            m.poll(cfg, now, out);
            m.state
        })
    }

    /// The current counters and rates; see [`BreakerMetrics`].
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.force_open();
    /// let _ = breaker.call(|| Ok::<(), ()>(()));
    /// assert_eq!(breaker.metrics().not_permitted_calls, 1);
    /// ```
    pub fn metrics(&self) -> BreakerMetrics {
        self.with(|m, cfg, now, out| {
            m.poll(cfg, now, out);
            let (c, min) = match m.state {
                BreakerState::HalfOpen => (m.probes, cfg.half_open_calls),
                _ => (m.window.counts(now), cfg.minimum()),
            };
            let (failure, slow) = c.rates();
            let ready = c.calls > 0 && c.calls >= min;
            BreakerMetrics {
                state: m.state,
                calls: c.calls,
                failed_calls: c.failed,
                slow_calls: c.slow,
                slow_failed_calls: c.slow_failed,
                not_permitted_calls: m.not_permitted,
                failure_rate: ready.then_some(failure),
                slow_call_rate: ready.then_some(slow),
            }
        })
    }

    /// Registers `listener` to be called with `(from, to)` on every state
    /// change, in the order the changes happen.
    ///
    /// Listeners run in the green thread whose call caused the change,
    /// after the breaker's state is updated (so they may look at it, or
    /// change it: such nested changes are delivered after the current one,
    /// to every listener, still in order). Keep them short: the caller
    /// waits for them.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use sylvan::resilience::{BreakerState, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::new();
    /// let last = Rc::new(Cell::new(None));
    /// let l = last.clone();
    /// breaker.on_state_change(move |from, to| l.set(Some((from, to))));
    /// breaker.force_open();
    /// assert_eq!(last.get(), Some((BreakerState::Closed, BreakerState::ForcedOpen)));
    /// ```
    pub fn on_state_change(&self, listener: impl Fn(BreakerState, BreakerState) + 'static) {
        self.inner.listeners.borrow_mut().push(Rc::new(listener));
    }

    /// Rejects every call until [`reset`](Self::reset).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::{BreakerState, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.force_open();
    /// assert!(breaker.try_acquire().is_none());
    /// assert_eq!(breaker.state(), BreakerState::ForcedOpen);
    /// ```
    pub fn force_open(&self) {
        self.with(|m, _, now, out| m.transition(BreakerState::ForcedOpen, now, out));
    }

    /// Lets every call through and records nothing until
    /// [`reset`](Self::reset).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder().minimum_calls(1).build().unwrap();
    /// breaker.disable();
    /// for _ in 0..10 {
    ///     assert!(breaker.call(|| Err::<(), ()>(())).unwrap_err().into_inner().is_some());
    /// }
    /// assert_eq!(breaker.metrics().calls, 0);
    /// ```
    pub fn disable(&self) {
        self.with(|m, _, now, out| m.transition(BreakerState::Disabled, now, out));
    }

    /// Returns to `Closed` with an empty window, from any state. Results of
    /// calls permitted before the reset are not recorded.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::{BreakerState, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.force_open();
    /// breaker.reset();
    /// assert_eq!(breaker.state(), BreakerState::Closed);
    /// ```
    pub fn reset(&self) {
        self.with(|m, _, now, out| {
            m.epoch += 1;
            m.window.clear();
            m.transition(BreakerState::Closed, now, out);
        });
    }

    fn acquire(&self) -> Result<Permit, (BreakerState, Option<Duration>)> {
        let epoch = self.with(|m, cfg, now, out| {
            m.poll(cfg, now, out);
            let permitted = match m.state {
                BreakerState::Closed | BreakerState::Disabled => true,
                BreakerState::HalfOpen => {
                    let taken = m.probes_in_flight + m.probes.calls;
                    let free = taken < cfg.half_open_calls;
                    if free {
                        m.probes_in_flight += 1;
                    }
                    free
                }
                BreakerState::Open | BreakerState::ForcedOpen => false,
            };
            if permitted {
                return Ok((m.epoch, now));
            }
            m.not_permitted += 1;
            let remaining = (m.state == BreakerState::Open).then(|| {
                m.opened_at
                    .checked_add(cfg.wait_in_open)
                    .map_or(Duration::MAX, |at| at.saturating_duration_since(now))
            });
            Err((m.state, remaining))
        })?;
        Ok(Permit {
            breaker: self.clone(),
            epoch: epoch.0,
            started: epoch.1,
            settled: false,
        })
    }

    fn record(&self, epoch: u64, started: Instant, failed: bool) {
        self.with(|m, cfg, now, out| {
            if epoch != m.epoch {
                return;
            }
            let slow = now.saturating_duration_since(started) > cfg.slow_duration;
            let outcome = Counts::one(failed, slow);
            match m.state {
                BreakerState::Closed => {
                    m.window.record(now, outcome);
                    if cfg.tripped(m.window.counts(now), cfg.minimum()) {
                        m.transition(BreakerState::Open, now, out);
                    }
                }
                BreakerState::HalfOpen => {
                    m.probes_in_flight = m.probes_in_flight.saturating_sub(1);
                    m.probes.add(outcome);
                    if m.probes.calls >= cfg.half_open_calls {
                        let to = if cfg.tripped(m.probes, cfg.half_open_calls) {
                            BreakerState::Open
                        } else {
                            BreakerState::Closed
                        };
                        m.transition(to, now, out);
                    }
                }
                _ => {}
            }
        });
    }

    fn release(&self, epoch: u64) {
        let mut m = self.inner.machine.borrow_mut();
        if epoch == m.epoch && m.state == BreakerState::HalfOpen {
            m.probes_in_flight = m.probes_in_flight.saturating_sub(1);
        }
    }

    /// Runs `f` on the state machine, then tells the listeners about the
    /// transitions it made (outside the borrow, so they may use the breaker).
    fn with<R>(
        &self,
        f: impl FnOnce(&mut Machine, &Config, Instant, &mut Vec<(BreakerState, BreakerState)>) -> R,
    ) -> R {
        let now = crate::time::now();
        let mut out = Vec::new();
        let r = f(
            &mut self.inner.machine.borrow_mut(),
            &self.inner.config,
            now,
            &mut out,
        );
        if !out.is_empty() {
            self.dispatch(out);
        }
        r
    }

    fn dispatch(&self, transitions: Vec<(BreakerState, BreakerState)>) {
        for (from, to) in &transitions {
            tracing::debug!(%from, %to, "circuit breaker state change");
        }
        self.inner.pending.borrow_mut().extend(transitions);
        if self.inner.dispatching.replace(true) {
            // A listener caused this change; the outer loop delivers it.
            return;
        }
        struct Done<'a>(&'a Cell<bool>);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        let _done = Done(&self.inner.dispatching);
        loop {
            let next = self.inner.pending.borrow_mut().pop_front();
            let Some((from, to)) = next else { break };
            let listeners = self.inner.listeners.borrow().clone();
            for l in listeners {
                l(from, to);
            }
        }
    }
}

/// Permission for one call through a [`CircuitBreaker`], from
/// [`CircuitBreaker::try_acquire`]. Report how the call went with
/// [`success`](Self::success) or [`failure`](Self::failure); the call's
/// duration (for the slow-call rate) runs from `try_acquire` to then.
///
/// Dropping the permit without reporting records nothing; in `HalfOpen` it
/// frees the probe slot for another caller.
///
/// # Examples
///
/// ```
/// use sylvan::resilience::CircuitBreaker;
///
/// let breaker = CircuitBreaker::new();
/// let permit = breaker.try_acquire().expect("closed");
/// permit.failure();
/// assert_eq!(breaker.metrics().failed_calls, 1);
/// ```
#[derive(Debug)]
#[must_use = "report the call's outcome with success() or failure()"]
pub struct Permit {
    breaker: CircuitBreaker,
    epoch: u64,
    started: Instant,
    settled: bool,
}

impl Permit {
    /// Records the call as successful (slow if it took too long).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.try_acquire().unwrap().success();
    /// assert_eq!(breaker.metrics().failed_calls, 0);
    /// ```
    pub fn success(mut self) {
        self.settled = true;
        self.breaker.record(self.epoch, self.started, false);
    }

    /// Records the call as failed (and slow if it took too long).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.try_acquire().unwrap().failure();
    /// assert_eq!(breaker.metrics().failed_calls, 1);
    /// ```
    pub fn failure(mut self) {
        self.settled = true;
        self.breaker.record(self.epoch, self.started, true);
    }

    /// How long since the permit was granted, on sylvan's clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::CircuitBreaker;
    ///
    /// sylvan::time::pause();
    /// let breaker = CircuitBreaker::new();
    /// let permit = breaker.try_acquire().unwrap();
    /// sylvan::sleep(Duration::from_secs(2)).unwrap();
    /// assert_eq!(permit.elapsed(), Duration::from_secs(2));
    /// permit.success();
    /// ```
    pub fn elapsed(&self) -> Duration {
        crate::time::now().saturating_duration_since(self.started)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.release(self.epoch);
        }
    }
}

struct Machine {
    state: BreakerState,
    /// Bumped on every state change (and reset): a permit reports only
    /// into the epoch that granted it.
    epoch: u64,
    window: Window,
    opened_at: Instant,
    probes_in_flight: u32,
    probes: Counts,
    not_permitted: u64,
}

impl Machine {
    /// `Open` becomes `HalfOpen` once its wait has passed.
    fn poll(&mut self, cfg: &Config, now: Instant, out: &mut Vec<(BreakerState, BreakerState)>) {
        if self.state == BreakerState::Open
            && self
                .opened_at
                .checked_add(cfg.wait_in_open)
                .is_some_and(|at| now >= at)
        {
            self.transition(BreakerState::HalfOpen, now, out);
        }
    }

    fn transition(
        &mut self,
        to: BreakerState,
        now: Instant,
        out: &mut Vec<(BreakerState, BreakerState)>,
    ) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.epoch += 1;
        match to {
            BreakerState::Closed => self.window.clear(),
            BreakerState::Open => self.opened_at = now,
            BreakerState::HalfOpen => {
                self.probes_in_flight = 0;
                self.probes = Counts::default();
            }
            BreakerState::ForcedOpen | BreakerState::Disabled => {}
        }
        out.push((from, to));
    }
}
