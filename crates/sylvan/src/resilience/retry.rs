//! Retrying an operation: [`Retry`], [`retry`], [`Attempt`], [`RetryError`]
//! (with the shared [`RetryBudget`](super::RetryBudget)).

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backoff::Backoff;
use super::budget::RetryBudget;
use crate::cancel::Cancelled;
use crate::runtime;

type Predicate<E> = Arc<dyn Fn(&E) -> bool + Send + Sync>;

/// A retry policy: how often, how long, and which failures to retry.
///
/// Build it once (it is cheap to clone and `Send + Sync`), then run
/// operations under it with [`run`](Self::run) or [`retry`]. Each run gets
/// its own copy of the [`Backoff`], so runs do not disturb each other.
///
/// A failed attempt is retried only if every rule agrees:
///
/// 1. the caller was not cancelled (killed, or a deadline passed);
/// 2. the error passes [`retry_if`](Self::retry_if) (default: every error);
/// 3. the request cannot have reached the peer, or the policy is
///    [`idempotent`](Self::idempotent): an operation calls
///    [`Attempt::mark_sent`] before it writes anything that the peer could
///    act on, so a connect failure is always retried, and a request that may
///    have been executed is replayed only when that is harmless;
/// 4. fewer than [`max_attempts`](Self::max_attempts) attempts were made;
/// 5. the shared [`budget`](Self::budget), if any, allows a retry;
/// 6. the next attempt, after the backoff delay, would still start before
///    the overall [`deadline`](Self::deadline).
///
/// Otherwise the run stops with a [`RetryError`] that carries the last
/// error and the [`StopReason`].
///
/// # Examples
///
/// ```
/// use std::io;
/// use std::time::Duration;
/// use sylvan::resilience::{Backoff, Retry, StopReason};
///
/// sylvan::time::pause();
/// let policy = Retry::new()
///     .max_attempts(5).unwrap()
///     .deadline(Duration::from_secs(10))
///     .backoff(Backoff::new().initial(Duration::from_millis(100)));
///
/// // Fails twice with a connect error, then succeeds.
/// let mut calls = 0;
/// let v = policy.run(|_attempt| {
///     calls += 1;
///     if calls < 3 {
///         Err(io::Error::from(io::ErrorKind::ConnectionRefused))
///     } else {
///         Ok("reply")
///     }
/// });
/// assert_eq!(v.unwrap(), "reply");
///
/// // A request that may have reached the peer is not replayed unless the
/// // policy says it is idempotent.
/// let r: Result<(), _> = policy.run(|attempt| {
///     attempt.mark_sent();
///     Err(io::Error::from(io::ErrorKind::ConnectionReset))
/// });
/// let e = r.unwrap_err();
/// assert_eq!(e.reason(), StopReason::NotIdempotent);
/// assert_eq!(e.attempts(), 1);
/// ```
pub struct Retry<E = io::Error> {
    max_attempts: u32,
    deadline: Option<Duration>,
    backoff: Backoff,
    retry_if: Option<Predicate<E>>,
    idempotent: bool,
    budget: Option<RetryBudget>,
}

impl<E> Clone for Retry<E> {
    fn clone(&self) -> Self {
        Retry {
            max_attempts: self.max_attempts,
            deadline: self.deadline,
            backoff: self.backoff.clone(),
            retry_if: self.retry_if.clone(),
            idempotent: self.idempotent,
            budget: self.budget.clone(),
        }
    }
}

impl<E> fmt::Debug for Retry<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("max_attempts", &self.max_attempts)
            .field("deadline", &self.deadline)
            .field("backoff", &self.backoff)
            .field("retry_if", &self.retry_if.as_ref().map(|_| "<fn>"))
            .field("idempotent", &self.idempotent)
            .field("budget", &self.budget)
            .finish()
    }
}

impl<E> Default for Retry<E> {
    fn default() -> Self {
        Retry::new()
    }
}

impl<E> Retry<E> {
    /// A policy with 3 attempts in all, no overall deadline, every error
    /// retryable, not idempotent, no budget, and a backoff of 100 ms ×2 up to
    /// 10 s with [full jitter](super::Jitter::Full) (gRPC's retry backoff).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::Retry;
    ///
    /// let policy: Retry = Retry::new();
    /// let r: Result<u8, _> = policy.run(|_| Ok(1));
    /// assert_eq!(r.unwrap(), 1);
    /// ```
    pub fn new() -> Self {
        Retry {
            max_attempts: 3,
            deadline: None,
            backoff: Backoff::retry_default(),
            retry_if: None,
            idempotent: false,
            budget: None,
        }
    }

    /// Sets the number of attempts in all, the first one included (default
    /// 3). `1` means no retry.
    ///
    /// # Errors
    ///
    /// `InvalidInput`, naming the setting, for 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use sylvan::resilience::{Retry, StopReason};
    ///
    /// sylvan::time::pause();
    /// let r: Result<(), _> =
    ///     Retry::new().max_attempts(4).unwrap().run(|_| Err(io::Error::from(io::ErrorKind::ConnectionRefused)));
    /// let e = r.unwrap_err();
    /// assert_eq!((e.reason(), e.attempts()), (StopReason::AttemptsExhausted, 4));
    /// ```
    pub fn max_attempts(mut self, n: u32) -> io::Result<Self> {
        if n == 0 {
            return Err(crate::settings::invalid(
                "Retry::max_attempts",
                n,
                "a run makes at least 1 attempt",
            ));
        }
        self.max_attempts = n;
        Ok(self)
    }

    /// Sets an overall deadline for a run, across all attempts and delays,
    /// counted from the start of [`run`](Self::run) on sylvan's clock
    /// (default: none).
    ///
    /// The run executes inside a [`deadline`](crate::deadline) scope, so
    /// every blocking call in an attempt fails with [`Cancelled`] once it
    /// passes. No retry starts at or after it: when the next backoff delay
    /// would end there, the run stops at once with
    /// [`StopReason::Deadline`] instead of sleeping in vain. The first
    /// attempt always runs (if the deadline is zero, its blocking calls fail
    /// at once).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use std::time::Duration;
    /// use sylvan::resilience::{Retry, StopReason};
    ///
    /// sylvan::time::pause();
    /// let t0 = sylvan::time::now();
    /// let r = Retry::new()
    ///     .max_attempts(u32::MAX).unwrap()
    ///     .deadline(Duration::from_secs(2))
    ///     .run(|_| -> io::Result<()> {
    ///         sylvan::sleep(Duration::from_millis(300))?; // a slow failure
    ///         Err(io::ErrorKind::ConnectionRefused.into())
    ///     });
    /// assert_eq!(r.unwrap_err().reason(), StopReason::Deadline);
    /// assert!(sylvan::time::now() - t0 <= Duration::from_secs(2));
    /// ```
    pub fn deadline(mut self, overall: Duration) -> Self {
        self.deadline = Some(overall);
        self
    }

    /// Sets the delays between attempts (default: 100 ms ×2 up to 10 s, full
    /// jitter). Each run starts from a copy of it (see
    /// [`Backoff`]'s `# Randomness` for what cloning does to the seed).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use std::time::Duration;
    /// use sylvan::resilience::{Backoff, Jitter, Retry};
    ///
    /// sylvan::time::pause();
    /// let t0 = sylvan::time::now();
    /// let policy = Retry::new()
    ///     .max_attempts(3).unwrap()
    ///     .backoff(Backoff::new().initial(Duration::from_secs(1)).multiplier(2.0).unwrap().jitter(Jitter::None).unwrap());
    /// let _ = policy.run(|_| -> io::Result<()> { Err(io::ErrorKind::ConnectionRefused.into()) });
    /// assert_eq!(sylvan::time::now() - t0, Duration::from_secs(3)); // 1 s + 2 s
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets which errors may be retried (default: all). Errors it rejects
    /// stop the run with [`StopReason::NotRetryable`] and do not count
    /// against the [`budget`](Self::budget). [`is_transient`] is a
    /// predicate for `io::Error`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use sylvan::resilience::{Retry, StopReason, is_transient};
    ///
    /// let policy = Retry::new().retry_if(is_transient);
    /// let r: Result<(), _> = policy.run(|_| Err(io::Error::from(io::ErrorKind::PermissionDenied)));
    /// assert_eq!(r.unwrap_err().reason(), StopReason::NotRetryable);
    /// ```
    pub fn retry_if(mut self, predicate: impl Fn(&E) -> bool + Send + Sync + 'static) -> Self {
        self.retry_if = Some(Arc::new(predicate));
        self
    }

    /// Declares whether replaying a request that may have reached the peer
    /// is harmless (default `false`).
    ///
    /// When `false`, an attempt that called [`Attempt::mark_sent`] and
    /// failed is not retried ([`StopReason::NotIdempotent`]); attempts that
    /// failed before sending (connect errors) still are.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use sylvan::resilience::Retry;
    ///
    /// sylvan::time::pause();
    /// let mut sent = 0;
    /// let r: Result<(), _> = Retry::new().idempotent(true).max_attempts(3).unwrap().run(|a| {
    ///     a.mark_sent();
    ///     sent += 1;
    ///     Err(io::Error::from(io::ErrorKind::ConnectionReset))
    /// });
    /// assert!(r.is_err());
    /// assert_eq!(sent, 3);
    /// ```
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// Shares a [`RetryBudget`] with this policy (default: none). Each run
    /// counts as a request, each success and retryable failure is counted,
    /// and a retry happens only while the budget allows it (see the two
    /// forms: [`token_bucket`](RetryBudget::token_bucket),
    /// [`finagle`](RetryBudget::finagle)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use sylvan::resilience::{Retry, RetryBudget, StopReason};
    ///
    /// sylvan::time::pause();
    /// let budget = RetryBudget::new(4, 0.1).unwrap(); // retries only while tokens > 2
    /// let policy = Retry::new().max_attempts(10).unwrap().budget(budget.clone());
    /// let r: Result<(), _> = policy.run(|_| Err(io::Error::from(io::ErrorKind::ConnectionRefused)));
    /// let e = r.unwrap_err();
    /// assert_eq!(e.reason(), StopReason::BudgetExhausted);
    /// assert_eq!(e.attempts(), 2); // 4 -> 3 (retry) -> 2 (stop)
    /// ```
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Runs `op` until it succeeds or the policy says stop.
    ///
    /// `op` gets an [`Attempt`]: its number, the overall deadline, and
    /// [`mark_sent`](Attempt::mark_sent) to call before it writes a request.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use sylvan::resilience::Retry;
    ///
    /// sylvan::time::pause();
    /// let v = Retry::new().run(|attempt| {
    ///     if attempt.number() == 1 {
    ///         return Err(io::Error::from(io::ErrorKind::ConnectionRefused));
    ///     }
    ///     Ok(attempt.number())
    /// });
    /// assert_eq!(v.unwrap(), 2);
    /// ```
    ///
    /// # Errors
    ///
    /// A [`RetryError`] with the last error of `op` and why the run
    /// stopped. It converts into `io::Error` for `?`.
    ///
    /// # Cancellation
    ///
    /// If the green thread is killed, or the deadline of an enclosing
    /// [`timeout`](crate::timeout) scope passes, while an attempt or a
    /// backoff delay is under way, the run stops at once with
    /// [`StopReason::Cancelled`] (the attempt's own blocking calls fail
    /// first, as usual). Nothing is left behind; the budget is not charged
    /// for the cancelled attempt.
    pub fn run<T>(
        &self,
        mut op: impl FnMut(&mut Attempt) -> Result<T, E>,
    ) -> Result<T, RetryError<E>> {
        let mut backoff = self.backoff.clone();
        let until = self
            .deadline
            .and_then(|d| crate::time::now().checked_add(d));
        let mut outcome = None;
        let scope = match until {
            Some(at) => crate::time::deadline(at, || {
                outcome = Some(self.attempt_loop(&mut op, &mut backoff, until));
            }),
            None => {
                outcome = Some(self.attempt_loop(&mut op, &mut backoff, None));
                Ok(())
            }
        };
        match outcome {
            Some(Ok(v)) => Ok(v),
            Some(Err(mut e)) => {
                if scope.is_err() {
                    // Our own deadline cancelled a blocking call.
                    e.reason = StopReason::Deadline;
                }
                Err(e)
            }
            None => unreachable!("the retry loop always records its outcome"),
        }
    }

    fn attempt_loop<T>(
        &self,
        op: &mut impl FnMut(&mut Attempt) -> Result<T, E>,
        backoff: &mut Backoff,
        until: Option<Instant>,
    ) -> Result<T, RetryError<E>> {
        let mut number = 0u32;
        if let Some(b) = &self.budget {
            b.record_request();
        }
        loop {
            number = number.saturating_add(1);
            let mut attempt = Attempt {
                number,
                sent: false,
                deadline: until,
            };
            let error = match op(&mut attempt) {
                Ok(v) => {
                    if let Some(b) = &self.budget {
                        b.record_success();
                    }
                    return Ok(v);
                }
                Err(e) => e,
            };
            let stop = |reason, error| RetryError {
                reason,
                attempts: number,
                error,
            };
            let delay = match self.verdict(&error, &attempt, backoff, until) {
                Ok(delay) => delay,
                Err(reason) => return Err(stop(reason, error)),
            };
            tracing::debug!(attempt = number, ?delay, "retrying after a failed attempt");
            if let Err(c) = crate::time::sleep(delay) {
                return Err(stop(StopReason::Cancelled(c), error));
            }
        }
    }

    /// After a failed attempt: the delay before the next one, or why not.
    fn verdict(
        &self,
        error: &E,
        attempt: &Attempt,
        backoff: &mut Backoff,
        until: Option<Instant>,
    ) -> Result<Duration, StopReason> {
        runtime::check_cancelled().map_err(StopReason::Cancelled)?;
        if let Some(p) = &self.retry_if {
            if !p(error) {
                return Err(StopReason::NotRetryable);
            }
        }
        // gRPC's bucket counts every retryable failure, retried or not;
        // Finagle's withdraws only for a retry about to happen (below).
        let budget_ok = self
            .budget
            .as_ref()
            .filter(|b| b.is_token_bucket())
            .is_none_or(RetryBudget::record_failure);
        if attempt.sent && !self.idempotent {
            return Err(StopReason::NotIdempotent);
        }
        if attempt.number >= self.max_attempts {
            return Err(StopReason::AttemptsExhausted);
        }
        if !budget_ok {
            return Err(StopReason::BudgetExhausted);
        }
        let delay = backoff.next_delay();
        if let Some(at) = until {
            let next = crate::time::now().checked_add(delay);
            if next.is_none_or(|next| next >= at) {
                return Err(StopReason::Deadline);
            }
        }
        if let Some(b) = self.budget.as_ref().filter(|b| !b.is_token_bucket()) {
            if !b.record_failure() {
                return Err(StopReason::BudgetExhausted);
            }
        }
        Ok(delay)
    }
}

/// Runs `op` under `policy`; the same as [`policy.run(op)`](Retry::run).
///
/// # Examples
///
/// ```
/// use std::io;
/// use std::time::Duration;
/// use sylvan::resilience::{Backoff, Retry, retry};
///
/// fn fetch() -> io::Result<u32> {
///     sylvan::time::pause();
///     let policy = Retry::new()
///         .deadline(Duration::from_secs(5))
///         .backoff(Backoff::new().initial(Duration::from_millis(10)));
///     let n = retry(&policy, |attempt| {
///         // connect(...)?;  nothing sent yet: always retryable
///         attempt.mark_sent();
///         // write the request, read the reply...
///         Ok(42)
///     })?;
///     Ok(n)
/// }
/// assert_eq!(fetch().unwrap(), 42);
/// ```
///
/// # Errors
///
/// As [`Retry::run`].
///
/// # Cancellation
///
/// As [`Retry::run`].
pub fn retry<T, E>(
    policy: &Retry<E>,
    op: impl FnMut(&mut Attempt) -> Result<T, E>,
) -> Result<T, RetryError<E>> {
    policy.run(op)
}

/// One attempt of a [`Retry`] run, handed to the operation.
///
/// # Examples
///
/// ```
/// use sylvan::resilience::Retry;
///
/// let r = Retry::new().run(|attempt| -> std::io::Result<()> {
///     assert_eq!(attempt.number(), 1);
///     assert!(!attempt.is_retry());
///     assert!(!attempt.is_sent());
///     attempt.mark_sent();
///     assert!(attempt.is_sent());
///     Ok(())
/// });
/// assert!(r.is_ok());
/// ```
#[derive(Debug)]
pub struct Attempt {
    number: u32,
    sent: bool,
    deadline: Option<Instant>,
}

impl Attempt {
    /// The attempt's number: 1 for the first, 2 for the first retry, …
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::Retry;
    ///
    /// let n = Retry::<std::io::Error>::new().run(|a| Ok(a.number())).unwrap();
    /// assert_eq!(n, 1);
    /// ```
    pub fn number(&self) -> u32 {
        self.number
    }

    /// Whether this is a retry (not the first attempt).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::Retry;
    ///
    /// let retried = Retry::<std::io::Error>::new().run(|a| Ok(a.is_retry())).unwrap();
    /// assert!(!retried);
    /// ```
    pub fn is_retry(&self) -> bool {
        self.number > 1
    }

    /// Records that the request may now reach the peer: call it right before
    /// writing anything the peer could act on. If this attempt then fails,
    /// it is replayed only when the policy is
    /// [`idempotent`](Retry::idempotent). When in doubt, call it early:
    /// that errs on the side of not replaying.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use sylvan::resilience::{Retry, StopReason};
    ///
    /// let r: Result<(), _> = Retry::new().run(|a| {
    ///     a.mark_sent();
    ///     Err(io::Error::from(io::ErrorKind::UnexpectedEof))
    /// });
    /// assert_eq!(r.unwrap_err().reason(), StopReason::NotIdempotent);
    /// ```
    pub fn mark_sent(&mut self) {
        self.sent = true;
    }

    /// Whether [`mark_sent`](Self::mark_sent) was called in this attempt.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::Retry;
    ///
    /// let sent = Retry::<std::io::Error>::new().run(|a| Ok(a.is_sent())).unwrap();
    /// assert!(!sent);
    /// ```
    pub fn is_sent(&self) -> bool {
        self.sent
    }

    /// The run's overall deadline on sylvan's clock, if the policy has one.
    /// Blocking calls already obey it; use it to size per-operation
    /// timeouts or to pass it on to the peer.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::Retry;
    ///
    /// let policy = Retry::<std::io::Error>::new().deadline(Duration::from_secs(1));
    /// let left = policy.run(|a| Ok(a.deadline().unwrap() - sylvan::time::now())).unwrap();
    /// assert!(left <= Duration::from_secs(1));
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

/// Why a [`Retry`] run stopped without success.
///
/// # Examples
///
/// ```
/// use sylvan::resilience::StopReason;
///
/// assert_eq!(StopReason::BudgetExhausted.to_string(), "retry budget exhausted");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The last allowed attempt failed.
    AttemptsExhausted,
    /// The policy's overall deadline passed, or the next attempt could not
    /// have started before it.
    Deadline,
    /// The error was rejected by [`Retry::retry_if`].
    NotRetryable,
    /// The attempt may have reached the peer ([`Attempt::mark_sent`]) and
    /// the policy is not idempotent.
    NotIdempotent,
    /// The shared [`RetryBudget`] refused further retries.
    BudgetExhausted,
    /// The caller was killed, or the deadline of an enclosing scope (not the
    /// policy's own) passed.
    Cancelled(Cancelled),
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::AttemptsExhausted => f.write_str("attempts exhausted"),
            StopReason::Deadline => f.write_str("retry deadline passed"),
            StopReason::NotRetryable => f.write_str("error is not retryable"),
            StopReason::NotIdempotent => {
                f.write_str("request may have been sent and is not idempotent")
            }
            StopReason::BudgetExhausted => f.write_str("retry budget exhausted"),
            StopReason::Cancelled(c) => write!(f, "cancelled: {c}"),
        }
    }
}

/// The error of a [`Retry`] run: the last error of the operation, how many
/// attempts were made, and why retrying stopped.
///
/// `RetryError<io::Error>` converts into `io::Error`, so `?` works in
/// functions returning `io::Result`: the result keeps the last error's kind
/// (`TimedOut` when the policy's deadline stopped the run) and wraps this
/// error, whose `source()` is the last error. When the run was
/// [cancelled](StopReason::Cancelled), it becomes the [`Cancelled`] error
/// itself, so [`Cancelled::from_io`] still recognises it up the stack. Any
/// `E` can be taken out with [`into_inner`](Self::into_inner).
///
/// # Examples
///
/// ```
/// use std::io;
/// use sylvan::resilience::{Retry, StopReason};
///
/// sylvan::time::pause();
/// let r: Result<(), _> = Retry::new()
///     .max_attempts(2).unwrap()
///     .run(|_| Err(io::Error::new(io::ErrorKind::ConnectionRefused, "nobody home")));
/// let e = r.unwrap_err();
/// assert_eq!(e.reason(), StopReason::AttemptsExhausted);
/// assert_eq!(e.attempts(), 2);
/// assert_eq!(e.error().kind(), io::ErrorKind::ConnectionRefused);
/// assert_eq!(e.to_string(), "gave up after 2 attempts (attempts exhausted): nobody home");
/// let io: io::Error = e.into();
/// assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused);
/// ```
#[derive(Debug)]
pub struct RetryError<E> {
    reason: StopReason,
    attempts: u32,
    error: E,
}

impl<E> RetryError<E> {
    /// Why retrying stopped.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::{Retry, StopReason};
    ///
    /// let r: Result<(), _> = Retry::new().retry_if(|_: &&str| false).run(|_| Err("no"));
    /// assert_eq!(r.unwrap_err().reason(), StopReason::NotRetryable);
    /// ```
    pub fn reason(&self) -> StopReason {
        self.reason
    }

    /// How many attempts were made (at least 1).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::Retry;
    ///
    /// let r: Result<(), _> = Retry::new().retry_if(|_: &&str| false).run(|_| Err("no"));
    /// assert_eq!(r.unwrap_err().attempts(), 1);
    /// ```
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The last attempt's error.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::Retry;
    ///
    /// let r: Result<(), _> = Retry::new().retry_if(|_: &&str| false).run(|_| Err("no"));
    /// assert_eq!(*r.unwrap_err().error(), "no");
    /// ```
    pub fn error(&self) -> &E {
        &self.error
    }

    /// The last attempt's error, by value.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::{Retry, RetryError};
    ///
    /// let r: Result<(), &str> = Retry::new()
    ///     .retry_if(|_: &&str| false)
    ///     .run(|_| Err("no"))
    ///     .map_err(RetryError::into_inner);
    /// assert_eq!(r, Err("no"));
    /// ```
    pub fn into_inner(self) -> E {
        self.error
    }
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = if self.attempts == 1 { "" } else { "s" };
        write!(
            f,
            "gave up after {} attempt{s} ({}): {}",
            self.attempts, self.reason, self.error
        )
    }
}

impl<E: Error + 'static> Error for RetryError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.error)
    }
}

impl From<RetryError<io::Error>> for io::Error {
    fn from(e: RetryError<io::Error>) -> io::Error {
        match e.reason {
            StopReason::Cancelled(c) => c.into(),
            StopReason::Deadline => io::Error::new(io::ErrorKind::TimedOut, e),
            _ => io::Error::new(e.error.kind(), e),
        }
    }
}

/// Whether an I/O error is worth retrying: the connection could not be
/// made or broke (refused, reset, aborted, not connected, broken pipe,
/// unexpected EOF, unreachable host or network, address not available),
/// or it timed out or was interrupted. Errors such as `PermissionDenied`,
/// `InvalidInput` or `InvalidData` are not.
///
/// # Examples
///
/// ```
/// use std::io::{Error, ErrorKind};
/// use sylvan::resilience::is_transient;
///
/// assert!(is_transient(&Error::from(ErrorKind::ConnectionRefused)));
/// assert!(!is_transient(&Error::from(ErrorKind::InvalidData)));
/// ```
pub fn is_transient(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | BrokenPipe
            | UnexpectedEof
            | TimedOut
            | Interrupted
            | WouldBlock
            | AddrNotAvailable
            | HostUnreachable
            | NetworkUnreachable
            | NetworkDown
    )
}
