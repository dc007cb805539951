//! Retrying an operation: [`Retry`], [`retry`], [`Attempt`], [`RetryError`]
//! and the shared [`RetryBudget`].

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::backoff::{Backoff, Jitter};
use crate::cancel::Cancelled;
use crate::runtime::hub::try_hub;
use crate::runtime::park;

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
///     .max_attempts(5)
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
    /// 10 s with [full jitter](Jitter::Full) (gRPC's retry backoff).
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
            backoff: Backoff::new()
                .initial(Duration::from_millis(100))
                .multiplier(2.0)
                .max(Duration::from_secs(10))
                .jitter(Jitter::Full),
            retry_if: None,
            idempotent: false,
            budget: None,
        }
    }

    /// Sets the number of attempts in all, the first one included (default
    /// 3). `1` means no retry.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use sylvan::resilience::{Retry, StopReason};
    ///
    /// sylvan::time::pause();
    /// let r: Result<(), _> =
    ///     Retry::new().max_attempts(4).run(|_| Err(io::Error::from(io::ErrorKind::ConnectionRefused)));
    /// let e = r.unwrap_err();
    /// assert_eq!((e.reason(), e.attempts()), (StopReason::AttemptsExhausted, 4));
    /// ```
    pub fn max_attempts(mut self, n: u32) -> Self {
        assert!(n > 0, "Retry::max_attempts must be at least 1");
        self.max_attempts = n;
        self
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
    ///     .max_attempts(u32::MAX)
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
    ///     .max_attempts(3)
    ///     .backoff(Backoff::new().initial(Duration::from_secs(1)).multiplier(2.0).jitter(Jitter::None));
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
    /// let r: Result<(), _> = Retry::new().idempotent(true).max_attempts(3).run(|a| {
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
    /// let budget = RetryBudget::new(4, 0.1); // retries only while tokens > 2
    /// let policy = Retry::new().max_attempts(10).budget(budget.clone());
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
        park::check_cancelled().map_err(StopReason::Cancelled)?;
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
///     .max_attempts(2)
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

/// A retry budget shared by many retrying callers, so that retries stop
/// when most calls are failing and cannot grow into a storm. Two forms,
/// chosen when it is made:
///
/// - [`token_bucket`](Self::token_bucket) (also [`new`](Self::new)):
///   **gRPC's retry throttling** (gRFC A6). Refilled only by successes:
///   after an outage that drained it, retries stay off until calls succeed
///   again — first attempts are never throttled, so they do, in time.
/// - [`finagle`](Self::finagle): **Finagle's `RetryBudget(ttl,
///   minRetriesPerSec, percentCanRetry)`**. A sliding window of `ttl`:
///   each request deposits, each retry withdraws, and both expire once
///   they are `ttl` old, on top of a fixed reserve. Time alone restores
///   it: `ttl` after an outage the reserve is whole again, with no success
///   needed.
///
/// [`Retry`] calls [`record_request`](Self::record_request) once per run,
/// [`record_failure`](Self::record_failure) for each failed attempt it
/// might retry, and [`record_success`](Self::record_success) on success;
/// call them yourself when retrying by hand.
///
/// `Clone` shares the budget. A `RetryBudget` is `Send + Sync` and may be
/// shared by green threads of several hubs. The Finagle form reads sylvan's
/// clock ([`time::now`](crate::time::now); `Instant::now` on a thread
/// without a hub), so it runs on virtual time in tests
/// ([`time::pause`](crate::time::pause)).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::resilience::RetryBudget;
///
/// sylvan::time::pause();
/// // Finagle's defaults: 10 s window, 10 retries/s reserve, 20 % of requests.
/// let budget = RetryBudget::finagle(Duration::from_secs(10), 10, 0.2);
/// while budget.record_failure() {} // an outage spends the reserve
/// assert!(!budget.can_retry());
/// sylvan::time::advance(Duration::from_secs(10));
/// assert!(budget.can_retry(), "time alone brought it back");
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<Form>,
}

enum Form {
    TokenBucket(Bucket),
    Finagle(Window),
}

/// gRPC's bucket, in thousandths of a token.
#[derive(Debug)]
struct Bucket {
    max_milli: u64,
    ratio_milli: u64,
    milli: AtomicU64,
}

/// Finagle's leaky bucket: a windowed sum over `ttl` (in `SLICES` slices)
/// plus a constant reserve, in Finagle's units (a deposit is
/// [`FINAGLE_SCALE`], a withdrawal `FINAGLE_SCALE / percent_can_retry`).
struct Window {
    ttl: Duration,
    reserve: i64,
    deposit: i64,
    withdraw: i64,
    slices: Mutex<Slices>,
}

const SLICES: usize = 10;
const FINAGLE_SCALE: i64 = 1000;

struct Slices {
    counts: [i64; SLICES],
    /// Index of the slice that `started` begins.
    current: usize,
    started: Option<Instant>,
}

impl Window {
    fn slice(&self) -> Duration {
        self.ttl / SLICES as u32
    }

    /// The slices with everything older than `ttl` dropped, as of `now`.
    fn rolled(&self) -> std::sync::MutexGuard<'_, Slices> {
        // Nothing can panic while the lock is held: a poisoned one is
        // still consistent.
        let mut s = self.slices.lock().unwrap_or_else(|e| e.into_inner());
        // Sylvan's clock where there is a hub (virtual when paused); a
        // plain thread sharing the budget is not given a hub just for this.
        let now = match try_hub() {
            Some(hub) => hub.clock.now_instant(),
            None => Instant::now(),
        };
        let slice = self.slice();
        match s.started {
            None => s.started = Some(now),
            Some(start) => {
                let steps = (now.saturating_duration_since(start).as_nanos()
                    / slice.as_nanos().max(1)) as usize;
                if steps >= SLICES {
                    s.counts = [0; SLICES];
                    s.current = 0;
                    s.started = Some(now);
                } else if steps > 0 {
                    for _ in 0..steps {
                        s.current = (s.current + 1) % SLICES;
                        let c = s.current;
                        s.counts[c] = 0;
                    }
                    s.started = Some(start + slice * steps as u32);
                }
            }
        }
        s
    }

    fn balance(&self, s: &Slices) -> i64 {
        self.reserve + s.counts.iter().sum::<i64>()
    }

    fn deposit(&self) {
        let mut s = self.rolled();
        let c = s.current;
        s.counts[c] += self.deposit;
    }

    fn try_withdraw(&self) -> bool {
        let mut s = self.rolled();
        if self.balance(&s) < self.withdraw {
            return false;
        }
        let c = s.current;
        s.counts[c] -= self.withdraw;
        true
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.inner {
            Form::TokenBucket(b) => f
                .debug_struct("RetryBudget::TokenBucket")
                .field("tokens", &self.tokens())
                .field("max_tokens", &(b.max_milli / 1000))
                .field("token_ratio", &(b.ratio_milli as f64 / 1000.0))
                .finish(),
            Form::Finagle(w) => f
                .debug_struct("RetryBudget::Finagle")
                .field("retries_now", &self.tokens())
                .field("ttl", &w.ttl)
                .field("reserve", &(w.reserve / w.withdraw))
                .field("percent_can_retry", &(w.deposit as f64 / w.withdraw as f64))
                .finish(),
        }
    }
}

impl RetryBudget {
    /// gRPC's form; the same as [`token_bucket`](Self::token_bucket).
    ///
    /// # Panics
    ///
    /// As [`token_bucket`](Self::token_bucket).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::RetryBudget;
    ///
    /// let budget = RetryBudget::new(10, 0.1);
    /// assert_eq!(budget.tokens(), 10.0);
    /// ```
    pub fn new(max_tokens: u32, token_ratio: f64) -> RetryBudget {
        RetryBudget::token_bucket(max_tokens, token_ratio)
    }

    /// gRPC's retry throttling (gRFC A6, `retryThrottling` in the service
    /// config): a full bucket of `max_tokens` tokens, refilled by
    /// `token_ratio` per success.
    ///
    /// Each retryable failure takes one token (down to zero), each success
    /// gives back `token_ratio` (up to `max_tokens`). A retry is allowed
    /// only while, after the failure that prompted it was taken, more than
    /// `max_tokens / 2` tokens are left. First attempts are never
    /// throttled. Tokens are kept in thousandths, as gRPC does, so
    /// `token_ratio` counts to three decimals.
    ///
    /// So against a peer that always fails, callers sharing a fresh budget
    /// make at most `ceil(max_tokens / 2) - 1` retries in all (4 for 10
    /// tokens), however many callers there are. Time does not refill it:
    /// only successes do.
    ///
    /// # Panics
    ///
    /// If `max_tokens` is 0, or `token_ratio` is not a finite number above
    /// zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::RetryBudget;
    ///
    /// let budget = RetryBudget::token_bucket(4, 1.6); // gRPC's own test numbers
    /// assert!(budget.record_failure()); // 3 tokens: above 2, may retry
    /// budget.record_success(); // 4 (capped)
    /// assert!(budget.record_failure()); // 3
    /// assert!(!budget.record_failure()); // 2: at the threshold, no retry
    /// budget.record_success(); // 3.6
    /// assert!(budget.can_retry());
    /// assert_eq!(budget.tokens(), 3.6);
    /// ```
    pub fn token_bucket(max_tokens: u32, token_ratio: f64) -> RetryBudget {
        assert!(max_tokens > 0, "RetryBudget needs max_tokens > 0");
        assert!(
            token_ratio.is_finite() && token_ratio > 0.0,
            "RetryBudget needs a finite token_ratio > 0, got {token_ratio}"
        );
        let max_milli = u64::from(max_tokens) * 1000;
        let ratio_milli = ((token_ratio * 1000.0).round() as u64).clamp(1, max_milli);
        RetryBudget {
            inner: Arc::new(Form::TokenBucket(Bucket {
                max_milli,
                ratio_milli,
                milli: AtomicU64::new(max_milli),
            })),
        }
    }

    /// Finagle's `RetryBudget(ttl, minRetriesPerSec, percentCanRetry)`
    /// (Finagle's defaults: 10 s, 10, 0.2).
    ///
    /// Over a sliding window of `ttl`, retries may make up
    /// `percent_can_retry` of the requests (each
    /// [`record_request`](Self::record_request) deposits
    /// `percent_can_retry` of a retry), on top of a reserve of
    /// `min_retries_per_sec × ttl` retries that low-traffic callers can
    /// always use. Deposits and withdrawals expire once they are `ttl` old
    /// (the window moves in tenths of `ttl`, so up to a tenth sooner), so
    /// the budget refills with time alone. A failure withdraws only when a
    /// retry is allowed; successes change nothing.
    ///
    /// # Panics
    ///
    /// If `ttl` is not within 1 s ..= 60 s, or `percent_can_retry` is not
    /// within 0 ..= 1000 (Finagle's limits).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::RetryBudget;
    ///
    /// sylvan::time::pause();
    /// let budget = RetryBudget::finagle(Duration::from_secs(10), 0, 0.5);
    /// assert!(!budget.can_retry()); // no reserve, no requests yet
    /// budget.record_request();
    /// budget.record_request();
    /// assert!(budget.record_failure()); // 50 % of 2 requests: 1 retry
    /// assert!(!budget.record_failure());
    /// ```
    pub fn finagle(ttl: Duration, min_retries_per_sec: u32, percent_can_retry: f64) -> RetryBudget {
        assert!(
            (Duration::from_secs(1)..=Duration::from_secs(60)).contains(&ttl),
            "RetryBudget::finagle needs a ttl within 1 s ..= 60 s, got {ttl:?}"
        );
        assert!(
            (0.0..=1000.0).contains(&percent_can_retry),
            "RetryBudget::finagle needs percent_can_retry within 0 ..= 1000, got {percent_can_retry}"
        );
        // Finagle's arithmetic: with no percentage, requests deposit
        // nothing and a retry costs 1 unit of the reserve.
        let (deposit, withdraw) = if percent_can_retry == 0.0 {
            (0, 1)
        } else {
            let w = (FINAGLE_SCALE as f64 / percent_can_retry) as i64;
            (FINAGLE_SCALE, w.max(1))
        };
        let reserve = (f64::from(min_retries_per_sec) * ttl.as_secs_f64()) as i64 * withdraw;
        RetryBudget {
            inner: Arc::new(Form::Finagle(Window {
                ttl,
                reserve,
                deposit,
                withdraw,
                slices: Mutex::new(Slices {
                    counts: [0; SLICES],
                    current: 0,
                    started: None,
                }),
            })),
        }
    }

    /// Counts one request (a run's first attempt): Finagle's form deposits
    /// `percent_can_retry` of a retry; gRPC's does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::RetryBudget;
    ///
    /// let budget = RetryBudget::finagle(Duration::from_secs(10), 0, 1.0);
    /// budget.record_request();
    /// assert_eq!(budget.tokens(), 1.0);
    /// ```
    pub fn record_request(&self) {
        if let Form::Finagle(w) = &*self.inner {
            w.deposit();
        }
    }

    /// Counts a failed attempt and tells whether a retry is allowed now.
    ///
    /// gRPC's form takes one token whatever the answer (allowed while more
    /// than `max_tokens / 2` are left); Finagle's withdraws one retry only
    /// if the budget holds one.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::RetryBudget;
    ///
    /// let budget = RetryBudget::new(2, 0.5);
    /// assert!(!budget.record_failure()); // 1 token left: not above 1
    /// ```
    pub fn record_failure(&self) -> bool {
        match &*self.inner {
            Form::TokenBucket(b) => {
                let prev = b
                    .milli
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                        Some(t.saturating_sub(1000))
                    })
                    .unwrap_or_else(|t| t);
                prev.saturating_sub(1000) > b.max_milli / 2
            }
            Form::Finagle(w) => w.try_withdraw(),
        }
    }

    /// Counts a success: gRPC's form gives back `token_ratio` tokens (up to
    /// `max_tokens`); Finagle's does nothing (requests deposit).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::RetryBudget;
    ///
    /// let budget = RetryBudget::new(2, 0.5);
    /// budget.record_failure();
    /// budget.record_success();
    /// assert_eq!(budget.tokens(), 1.5);
    /// ```
    pub fn record_success(&self) {
        if let Form::TokenBucket(b) = &*self.inner {
            let _ = b
                .milli
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                    Some((t + b.ratio_milli).min(b.max_milli))
                });
        }
    }

    /// Whether a retry would be allowed now, without counting anything.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::RetryBudget;
    ///
    /// assert!(RetryBudget::new(10, 0.1).can_retry());
    /// ```
    pub fn can_retry(&self) -> bool {
        match &*self.inner {
            Form::TokenBucket(b) => b.milli.load(Ordering::Acquire) > b.max_milli / 2,
            Form::Finagle(w) => {
                let s = w.rolled();
                w.balance(&s) >= w.withdraw
            }
        }
    }

    /// gRPC's form: the tokens in the bucket now. Finagle's: how many
    /// retries the budget holds now (whole ones).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::RetryBudget;
    ///
    /// let budget = RetryBudget::new(10, 0.1);
    /// budget.record_failure();
    /// assert_eq!(budget.tokens(), 9.0);
    /// ```
    pub fn tokens(&self) -> f64 {
        match &*self.inner {
            Form::TokenBucket(b) => b.milli.load(Ordering::Acquire) as f64 / 1000.0,
            Form::Finagle(w) => {
                let s = w.rolled();
                (w.balance(&s).max(0) / w.withdraw) as f64
            }
        }
    }

    fn is_token_bucket(&self) -> bool {
        matches!(&*self.inner, Form::TokenBucket(_))
    }
}
