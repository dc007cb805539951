//! [`RetryBudget`]: the shared limit that keeps retries from growing into
//! a storm, in gRPC's token-bucket form and Finagle's sliding-window form.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::settings::invalid;

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
/// [`Retry`](super::Retry) calls [`record_request`](Self::record_request) once per run,
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
/// let budget = RetryBudget::finagle(Duration::from_secs(10), 10, 0.2).unwrap();
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
        let now = crate::runtime::now_instant_if_hub();
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
    /// # Errors
    ///
    /// As [`token_bucket`](Self::token_bucket).
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::RetryBudget;
    ///
    /// let budget = RetryBudget::new(10, 0.1).unwrap();
    /// assert_eq!(budget.tokens(), 10.0);
    /// ```
    pub fn new(max_tokens: u32, token_ratio: f64) -> io::Result<RetryBudget> {
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
    /// # Errors
    ///
    /// `InvalidInput`, naming the setting and the value, if `max_tokens`
    /// is 0, or `token_ratio` is not a finite number above zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::resilience::RetryBudget;
    ///
    /// let budget = RetryBudget::token_bucket(4, 1.6).unwrap(); // gRPC's own test numbers
    /// assert!(budget.record_failure()); // 3 tokens: above 2, may retry
    /// budget.record_success(); // 4 (capped)
    /// assert!(budget.record_failure()); // 3
    /// assert!(!budget.record_failure()); // 2: at the threshold, no retry
    /// budget.record_success(); // 3.6
    /// assert!(budget.can_retry());
    /// assert_eq!(budget.tokens(), 3.6);
    /// ```
    pub fn token_bucket(max_tokens: u32, token_ratio: f64) -> io::Result<RetryBudget> {
        if max_tokens == 0 {
            return Err(invalid(
                "RetryBudget::token_bucket max_tokens",
                max_tokens,
                "the bucket must hold at least 1 token",
            ));
        }
        if !(token_ratio.is_finite() && token_ratio > 0.0) {
            return Err(invalid(
                "RetryBudget::token_bucket token_ratio",
                token_ratio,
                "must be a finite number above zero",
            ));
        }
        let max_milli = u64::from(max_tokens) * 1000;
        let ratio_milli = ((token_ratio * 1000.0).round() as u64).clamp(1, max_milli);
        Ok(RetryBudget {
            inner: Arc::new(Form::TokenBucket(Bucket {
                max_milli,
                ratio_milli,
                milli: AtomicU64::new(max_milli),
            })),
        })
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
    /// # Errors
    ///
    /// `InvalidInput`, naming the setting and the value, if `ttl` is not
    /// within 1 s ..= 60 s, or `percent_can_retry` is not within
    /// 0 ..= 1000 (Finagle's limits).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::RetryBudget;
    ///
    /// sylvan::time::pause();
    /// let budget = RetryBudget::finagle(Duration::from_secs(10), 0, 0.5).unwrap();
    /// assert!(!budget.can_retry()); // no reserve, no requests yet
    /// budget.record_request();
    /// budget.record_request();
    /// assert!(budget.record_failure()); // 50 % of 2 requests: 1 retry
    /// assert!(!budget.record_failure());
    /// ```
    pub fn finagle(
        ttl: Duration,
        min_retries_per_sec: u32,
        percent_can_retry: f64,
    ) -> io::Result<RetryBudget> {
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&ttl) {
            return Err(invalid(
                "RetryBudget::finagle ttl",
                format_args!("{ttl:?}"),
                "must be within 1 s ..= 60 s",
            ));
        }
        if !(0.0..=1000.0).contains(&percent_can_retry) {
            return Err(invalid(
                "RetryBudget::finagle percent_can_retry",
                percent_can_retry,
                "must be within 0 ..= 1000",
            ));
        }
        // Finagle's arithmetic: with no percentage, requests deposit
        // nothing and a retry costs 1 unit of the reserve.
        let (deposit, withdraw) = if percent_can_retry == 0.0 {
            (0, 1)
        } else {
            let w = (FINAGLE_SCALE as f64 / percent_can_retry) as i64;
            (FINAGLE_SCALE, w.max(1))
        };
        let reserve = (f64::from(min_retries_per_sec) * ttl.as_secs_f64()) as i64 * withdraw;
        Ok(RetryBudget {
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
        })
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
    /// let budget = RetryBudget::finagle(Duration::from_secs(10), 0, 1.0).unwrap();
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
    /// let budget = RetryBudget::new(2, 0.5).unwrap();
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
    /// let budget = RetryBudget::new(2, 0.5).unwrap();
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
    /// assert!(RetryBudget::new(10, 0.1).unwrap().can_retry());
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
    /// let budget = RetryBudget::new(10, 0.1).unwrap();
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

    pub(super) fn is_token_bucket(&self) -> bool {
        matches!(&*self.inner, Form::TokenBucket(_))
    }
}
