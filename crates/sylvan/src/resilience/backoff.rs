//! Exponential backoff with jitter: [`Backoff`] and [`Jitter`].

use std::io;
use std::iter::FusedIterator;
use std::time::Duration;

use crate::cancel::Cancelled;
use crate::settings::invalid;

/// How [`Backoff`] randomizes each delay, so that clients which failed
/// together do not retry together.
///
/// In the formulas, `b` is the un-jittered delay of this attempt:
/// `b = min(max, initial × multiplier^n)` for the `n`-th delay since the
/// last [`reset`](Backoff::reset) (counting from 0), and `U(x, y)` is a
/// uniform random value between `x` and `y`. The formulas are those of
/// AWS's "Exponential Backoff And Jitter" article and of gRPC's connection
/// backoff specification. Jitter is always applied *after* the cap, so
/// clients that have all reached `max` still wait different amounts of
/// time (except with [`Jitter::None`]).
///
/// | kind | delay | range at the cap |
/// |---|---|---|
/// | `None` | `b` | exactly `max` |
/// | `Full` | `U(0, b)` | `[0, max]` |
/// | `Equal` | `b/2 + U(0, b/2)` | `[max/2, max]` |
/// | `Decorrelated` | `U(initial, min(max, 3 × previous))` | `[initial, max]` |
/// | `Proportional(f)` | `b × (1 + U(−f, f))` | `[max × (1−f), max × (1+f)]` |
///
/// So no delay ever exceeds `max`, except with `Proportional(f)`, whose
/// delays never exceed `max × (1 + f)` (144 s with the gRPC defaults).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::resilience::{Backoff, Jitter};
///
/// let mut b = Backoff::new()
///     .initial(Duration::from_millis(100))
///     .max(Duration::from_secs(1))
///     .jitter(Jitter::Full).unwrap();
/// for _ in 0..20 {
///     assert!(b.next_delay() <= Duration::from_secs(1));
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Jitter {
    /// No randomness: `b`. Clients that failed together retry together;
    /// use it only where that cannot happen, or in tests.
    None,
    /// AWS's "full jitter": `U(0, b)`. The widest spread and the least
    /// total work for a crowd of competing clients; a delay may be zero.
    Full,
    /// AWS's "equal jitter": `b/2 + U(0, b/2)`. Never shorter than half the
    /// exponential delay.
    Equal,
    /// AWS's "decorrelated jitter": each delay is drawn from
    /// `U(initial, min(max, 3 × previous delay))`, starting from
    /// `previous = initial`. The multiplier does not apply (the factor is
    /// AWS's 3).
    ///
    /// AWS clamps the drawn value to `max`; here the *range* is clamped
    /// instead, so delays stay in `[initial, max]` and clients at the cap
    /// are spread uniformly over it, rather than about two thirds of them
    /// waiting exactly `max`.
    Decorrelated,
    /// gRPC's jitter: `b × (1 + U(−f, f))`, so `Proportional(0.2)` is
    /// ±20 %. `f` must be in `[0, 1]`. Delays at the cap lie in
    /// `[max × (1−f), max × (1+f)]`: jitter is applied after capping, as in
    /// gRPC, so capped clients do not converge on `max`.
    Proportional(f64),
}

/// Exponentially growing delays between attempts, with [`Jitter`].
///
/// `Backoff::new()` has gRPC's connection-backoff defaults: the first delay
/// is 1 s, each next one 1.6 times the previous, capped at 120 s, each
/// randomized by ±20 % ([`Jitter::Proportional(0.2)`](Jitter::Proportional)).
/// Unlike gRPC's pseudo-code, the first delay is jittered too (as gRPC's C
/// core does), so a crowd of clients that failed at the same instant
/// disperses from the first retry on.
///
/// Each call of [`next_delay`](Self::next_delay) (or of the [`Iterator`],
/// which never ends) hands out the next delay. Call [`reset`](Self::reset)
/// only once a connection has proven healthy, not merely when it was
/// established: a server that accepts and drops at once must not reset the
/// backoff.
///
/// # Randomness
///
/// Each `Backoff` owns a small random number generator. [`seed`](Self::seed)
/// makes the delays reproducible, for tests. `Clone` of an unseeded
/// `Backoff` gives the clone a fresh random generator, so clones used as
/// per-client copies of one template do not jitter in lockstep; `Clone` of
/// a seeded `Backoff` copies its generator, so the clone repeats the same
/// delays (give each simulated client its own seed).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::resilience::{Backoff, Jitter};
///
/// let delays: Vec<Duration> = Backoff::new()
///     .initial(Duration::from_millis(100))
///     .multiplier(2.0).unwrap()
///     .max(Duration::from_millis(500))
///     .jitter(Jitter::None).unwrap()
///     .take(5)
///     .collect();
/// let ms: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
/// assert_eq!(ms, [100, 200, 400, 500, 500]);
/// ```
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    multiplier: f64,
    max: Duration,
    jitter: Jitter,
    seeded: bool,
    rng: fastrand::Rng,
    attempts: u32,
    /// The un-jittered delay handed out last (`b` of the previous attempt).
    current: Duration,
    /// The previous delay, for [`Jitter::Decorrelated`].
    previous: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new()
    }
}

impl Clone for Backoff {
    fn clone(&self) -> Backoff {
        Backoff {
            rng: if self.seeded {
                self.rng.clone()
            } else {
                fastrand::Rng::new()
            },
            ..*self
        }
    }
}

impl Backoff {
    /// A backoff with gRPC's connection-backoff defaults: initial 1 s,
    /// multiplier 1.6, max 120 s, jitter ±20 %.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::Backoff;
    ///
    /// let mut b = Backoff::new();
    /// let first = b.next_delay();
    /// assert!(first >= Duration::from_millis(800) && first <= Duration::from_millis(1200));
    /// ```
    pub fn new() -> Backoff {
        let initial = Duration::from_secs(1);
        Backoff {
            initial,
            multiplier: 1.6,
            max: Duration::from_secs(120),
            jitter: Jitter::Proportional(0.2),
            seeded: false,
            rng: fastrand::Rng::new(),
            attempts: 0,
            current: initial,
            previous: initial,
        }
    }

    /// Sets the first delay, before jitter (default 1 s). A value above
    /// [`max`](Self::max) is capped to it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::{Backoff, Jitter};
    ///
    /// let mut b = Backoff::new().initial(Duration::from_millis(50)).jitter(Jitter::None).unwrap();
    /// assert_eq!(b.next_delay(), Duration::from_millis(50));
    /// ```
    pub fn initial(mut self, initial: Duration) -> Backoff {
        self.initial = initial;
        self.restart();
        self
    }

    /// Sets the factor between consecutive delays, before jitter (default
    /// 1.6). [`Jitter::Decorrelated`] ignores it.
    ///
    /// # Errors
    ///
    /// `InvalidInput`, naming the setting and the value, unless
    /// `multiplier` is a finite number of at least 1.0.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::{Backoff, Jitter};
    ///
    /// let mut b = Backoff::new().multiplier(3.0).unwrap().jitter(Jitter::None).unwrap();
    /// b.next_delay();
    /// assert_eq!(b.next_delay(), Duration::from_secs(3));
    /// ```
    pub fn multiplier(mut self, multiplier: f64) -> io::Result<Backoff> {
        if !(multiplier.is_finite() && multiplier >= 1.0) {
            return Err(invalid(
                "Backoff::multiplier",
                multiplier,
                "must be a finite number of at least 1.0",
            ));
        }
        self.multiplier = multiplier;
        Ok(self)
    }

    /// Sets the cap on the un-jittered delay (default 120 s). See [`Jitter`]
    /// for the exact bound of each kind after jitter.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::{Backoff, Jitter};
    ///
    /// let mut b = Backoff::new().max(Duration::from_secs(2)).jitter(Jitter::None).unwrap();
    /// let last = b.by_ref().take(10).last().unwrap();
    /// assert_eq!(last, Duration::from_secs(2));
    /// ```
    pub fn max(mut self, max: Duration) -> Backoff {
        self.max = max;
        self.restart();
        self
    }

    /// Sets the kind of jitter (default [`Jitter::Proportional(0.2)`](Jitter::Proportional)).
    ///
    /// # Errors
    ///
    /// `InvalidInput`, naming the setting and the value, if the fraction
    /// of [`Jitter::Proportional`] is not in `[0, 1]`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::{Backoff, Jitter};
    ///
    /// let mut b = Backoff::new().jitter(Jitter::Equal).unwrap();
    /// let d = b.next_delay();
    /// assert!(d >= Duration::from_millis(500) && d <= Duration::from_secs(1));
    /// ```
    pub fn jitter(mut self, jitter: Jitter) -> io::Result<Backoff> {
        if let Jitter::Proportional(f) = jitter {
            if !(0.0..=1.0).contains(&f) {
                return Err(invalid(
                    "Backoff::jitter",
                    format_args!("Jitter::Proportional({f})"),
                    "the fraction must be in [0, 1]",
                ));
            }
        }
        self.jitter = jitter;
        Ok(self)
    }

    /// Retry's default: 100 ms ×2 up to 10 s, full jitter.
    pub(crate) fn retry_default() -> Backoff {
        let mut b = Backoff::new()
            .initial(Duration::from_millis(100))
            .max(Duration::from_secs(10));
        b.multiplier = 2.0;
        b.jitter = Jitter::Full;
        b
    }

    /// Seeds the random generator, so the delays are reproducible (default:
    /// a random seed). Meant for tests; see the type's `# Randomness`.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::Backoff;
    ///
    /// let a: Vec<_> = Backoff::new().seed(7).take(5).collect();
    /// let b: Vec<_> = Backoff::new().seed(7).take(5).collect();
    /// assert_eq!(a, b);
    /// ```
    pub fn seed(mut self, seed: u64) -> Backoff {
        self.rng = fastrand::Rng::with_seed(seed);
        self.seeded = true;
        self
    }

    /// The next delay; see [`Jitter`] for how it is computed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::{Backoff, Jitter};
    ///
    /// let mut b = Backoff::new().jitter(Jitter::None).unwrap();
    /// assert_eq!(b.next_delay(), Duration::from_secs(1));
    /// assert_eq!(b.next_delay(), Duration::from_millis(1600));
    /// ```
    pub fn next_delay(&mut self) -> Duration {
        let cap = self.max;
        let base = if self.attempts == 0 {
            self.initial.min(cap)
        } else {
            mul(self.current, self.multiplier).min(cap)
        };
        self.current = base;
        self.attempts = self.attempts.saturating_add(1);
        match self.jitter {
            Jitter::None => base,
            Jitter::Full => self.uniform(Duration::ZERO, base),
            Jitter::Equal => {
                let half = base / 2;
                self.uniform(half, base)
            }
            Jitter::Proportional(f) => {
                let spread = mul(base, f);
                self.uniform(base.saturating_sub(spread), base.saturating_add(spread))
            }
            Jitter::Decorrelated => {
                let lo = self.initial.min(cap);
                let hi = mul(self.previous, 3.0).min(cap).max(lo);
                let d = self.uniform(lo, hi);
                self.previous = d;
                d
            }
        }
    }

    /// Starts over: the next delay is the initial one again. The random
    /// generator is not reset.
    ///
    /// Call it once a connection has proven healthy (e.g. it carried a
    /// successful request, or stayed up for a while), not when it was merely
    /// established.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::{Backoff, Jitter};
    ///
    /// let mut b = Backoff::new().jitter(Jitter::None).unwrap();
    /// b.next_delay();
    /// b.next_delay();
    /// b.reset();
    /// assert_eq!(b.attempts(), 0);
    /// assert_eq!(b.next_delay(), Duration::from_secs(1));
    /// ```
    pub fn reset(&mut self) {
        self.restart();
    }

    /// The first delay before jitter (capped by [`max`](Self::max)): the
    /// backoff in effect before any step, for gRPC's per-attempt connect
    /// deadline.
    pub(crate) fn initial_delay(&self) -> Duration {
        self.initial.min(self.max)
    }

    /// How many delays were handed out since creation or the last
    /// [`reset`](Self::reset).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::Backoff;
    ///
    /// let mut b = Backoff::new();
    /// b.next_delay();
    /// assert_eq!(b.attempts(), 1);
    /// ```
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// A uniform random delay in `[0, initial)`, from this backoff's
    /// generator; zero if `initial` is zero.
    ///
    /// For the first reconnect after a healthy connection dropped: clients
    /// that lost the same server at the same instant spread their first
    /// attempt over the whole interval instead of all trying at once
    /// (ZooKeeper's client does this). Does not count as an attempt.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::Backoff;
    ///
    /// let mut b = Backoff::new().initial(Duration::from_secs(1));
    /// assert!(b.splay() < Duration::from_secs(1));
    /// assert_eq!(b.attempts(), 0);
    /// ```
    pub fn splay(&mut self) -> Duration {
        let span = self.initial.min(self.max);
        if span.is_zero() {
            return Duration::ZERO;
        }
        match u64::try_from(span.as_nanos()) {
            Ok(n) => Duration::from_nanos(self.rng.u64(0..n)),
            Err(_) => secs_f64(span.as_secs_f64() * self.rng.f64()),
        }
    }

    /// Sleeps for the [next delay](Self::next_delay), on sylvan's clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::{Backoff, Jitter};
    ///
    /// sylvan::time::pause();
    /// let t0 = sylvan::time::now();
    /// let mut b = Backoff::new().jitter(Jitter::None).unwrap();
    /// b.sleep().unwrap();
    /// b.sleep().unwrap();
    /// assert_eq!(sylvan::time::now() - t0, Duration::from_millis(2600));
    /// ```
    ///
    /// # Cancellation
    ///
    /// As [`sleep`](crate::sleep): if the green thread is killed or the
    /// deadline of an enclosing [`timeout`](crate::timeout) scope passes,
    /// returns [`Cancelled`] at once. The delay counts as handed out all the
    /// same ([`attempts`](Self::attempts) went up).
    ///
    /// # Errors
    ///
    /// Only [`Cancelled`].
    #[track_caller]
    pub fn sleep(&mut self) -> Result<(), Cancelled> {
        let d = self.next_delay();
        crate::time::sleep(d)
    }

    fn restart(&mut self) {
        self.attempts = 0;
        self.current = self.initial.min(self.max);
        self.previous = self.current;
    }

    /// Uniform in `[lo, hi]` (`lo <= hi`).
    fn uniform(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.saturating_sub(lo);
        let d = match u64::try_from(span.as_nanos()) {
            Ok(n) => Duration::from_nanos(self.rng.u64(0..=n)),
            Err(_) => secs_f64(span.as_secs_f64() * self.rng.f64()).min(span),
        };
        lo.saturating_add(d)
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    /// Always `Some(self.next_delay())`: the iterator never ends. Bound it
    /// with `take`, or use [`Retry`](super::Retry).
    fn next(&mut self) -> Option<Duration> {
        Some(self.next_delay())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

impl FusedIterator for Backoff {}

/// `d × m`, saturating at `Duration::MAX` (`m >= 0`).
fn mul(d: Duration, m: f64) -> Duration {
    secs_f64(d.as_secs_f64() * m)
}

fn secs_f64(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(if s > 0.0 {
        Duration::MAX
    } else {
        Duration::ZERO
    })
}
