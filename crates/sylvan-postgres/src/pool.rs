//! [`PgPool`]: [`sylvan::resilience::Pool`] of [`Client`]s, with the rule
//! for what may be retried.

use std::fmt;
use std::time::Duration;

use sylvan::resilience::{Backoff, Jitter, Pool, PoolState, Pooled, Retry, RetryError};

use crate::{Client, Config, Error, Transaction, TxStatus};

/// A pool of PostgreSQL sessions for the green threads of one hub, with
/// retries limited to what is safe to replay.
///
/// Built on [`sylvan::resilience::Pool`]: at most `max_size` sessions,
/// a checkout timeout, a health check on checkout ([`Client::is_healthy`]:
/// no round trip; add [`ping_on_checkout`](PgPoolBuilder::ping_on_checkout)
/// for one), idle timeout and maximum lifetime. A session that failed
/// ([`Client::is_broken`]) or comes back inside a transaction is closed
/// instead of reused, and a failed connect frees its slot. So after the
/// server restarts, the old sessions are dropped as they are found dead
/// and new ones are made.
///
/// # The retry rule
///
/// [`read_only`](Self::read_only) and [`transaction`](Self::transaction)
/// retry with the pool's [`Retry`] policy, only for errors that
/// [`Error::is_retryable`] (lost connections, a server restarting,
/// serialization failures and deadlocks — never a timeout, a cancellation
/// or another server error), and only when a replay cannot apply anything
/// twice:
///
/// - **`read_only`** runs its closure in a `BEGIN READ ONLY` transaction,
///   in which the server refuses every write, so it is replayed whenever
///   the error is retryable, even after the statements were sent.
/// - **`transaction`** is replayed only if it failed **before `COMMIT` was
///   sent**: until then the server rolls back everything on a lost
///   connection. If `COMMIT` was sent and no answer came (the connection
///   died, the server ended the session, or a deadline passed), the
///   outcome is unknown: the call fails with [`Error::CommitUnknown`]
///   (stop reason [`NotIdempotent`](sylvan::resilience::StopReason), or
///   `NotRetryable` for a timeout), and the caller must find out (e.g. by
///   the row's unique key) before doing it again. A `COMMIT` the server
///   refused with an ordinary error was not applied.
/// - [`get`](Self::get) hands out a plain session and never retries what
///   is done with it.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use sylvan_postgres::{Config, PgPool};
///
/// let pool = PgPool::builder(Config::new().query_timeout(Duration::from_secs(5)))
///     .max_size(8)
///     .checkout_timeout(Duration::from_secs(2))
///     .build().unwrap();
/// pool.get()?.batch_execute("CREATE TABLE IF NOT EXISTS orders (id text PRIMARY KEY, n int)")?;
///
/// // Replayed only if it never reached COMMIT.
/// pool.transaction(|tx| {
///     tx.execute("INSERT INTO orders VALUES ($1, $2)", &[&"order-1", &3])?;
///     Ok(())
/// })?;
/// // Replayed on any retryable error: the server enforces read-only.
/// let n: i64 = pool.read_only(|tx| tx.query("SELECT count(*) FROM orders", &[])?[0].get(0))?;
/// assert!(n >= 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct PgPool {
    pool: Pool<Client>,
    retry: Retry<Error>,
}

impl fmt::Debug for PgPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgPool")
            .field("state", &self.pool.state())
            .field("retry", &self.retry)
            .finish()
    }
}

/// Configures a [`PgPool`]; see [`PgPool::builder`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan_postgres::{Config, PgPool};
///
/// let pool = PgPool::builder(Config::new())
///     .max_size(4)
///     .min_idle(0)
///     .checkout_timeout(Duration::from_secs(1))
///     .max_lifetime(Some(Duration::from_secs(600)))
///     .build().unwrap();
/// assert_eq!(pool.state().size, 0); // connects lazily
/// ```
#[derive(Debug)]
pub struct PgPoolBuilder {
    config: Config,
    max_size: usize,
    min_idle: usize,
    checkout_timeout: Duration,
    idle_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    ping: bool,
    retry: Retry<Error>,
}

impl PgPoolBuilder {
    /// At most this many sessions (default 10).
    ///
    /// # Examples
    ///
    /// See [`PgPoolBuilder`].
    pub fn max_size(mut self, n: usize) -> Self {
        self.max_size = n;
        self
    }

    /// Keep this many idle sessions open (default 0).
    ///
    /// # Examples
    ///
    /// See [`PgPoolBuilder`].
    pub fn min_idle(mut self, n: usize) -> Self {
        self.min_idle = n;
        self
    }

    /// How long [`PgPool::get`] waits for a session (default 30 s).
    ///
    /// # Examples
    ///
    /// See [`PgPoolBuilder`].
    pub fn checkout_timeout(mut self, d: Duration) -> Self {
        self.checkout_timeout = d;
        self
    }

    /// Close sessions idle longer than this (default 10 min).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = sylvan_postgres::PgPool::builder(sylvan_postgres::Config::new())
    ///     .idle_timeout(Some(Duration::from_secs(60)));
    /// # let _ = b;
    /// ```
    pub fn idle_timeout(mut self, d: Option<Duration>) -> Self {
        self.idle_timeout = d;
        self
    }

    /// Close sessions older than this (default 30 min), so that server
    /// memory and load balancing are renewed.
    ///
    /// # Examples
    ///
    /// See [`PgPoolBuilder`].
    pub fn max_lifetime(mut self, d: Option<Duration>) -> Self {
        self.max_lifetime = d;
        self
    }

    /// Also make a round trip ([`Client::ping`]) on every checkout (default
    /// off: the cheap [`Client::is_healthy`] check only, which catches a
    /// server that closed the session, not one that vanished silently).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = sylvan_postgres::PgPool::builder(sylvan_postgres::Config::new()).ping_on_checkout(true);
    /// # let _ = b;
    /// ```
    pub fn ping_on_checkout(mut self, on: bool) -> Self {
        self.ping = on;
        self
    }

    /// The retry policy of [`PgPool::read_only`] and
    /// [`PgPool::transaction`] (default: 5 attempts, 50 ms ×2 up to 2 s
    /// with full jitter, no overall deadline). Its `retry_if` and
    /// `idempotent` settings are replaced by the pool's rule.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::resilience::Retry;
    ///
    /// let b = sylvan_postgres::PgPool::builder(sylvan_postgres::Config::new())
    ///     .retry(Retry::new().max_attempts(10).unwrap().deadline(Duration::from_secs(30)));
    /// # let _ = b;
    /// ```
    pub fn retry(mut self, policy: Retry<Error>) -> Self {
        self.retry = policy;
        self
    }

    /// Builds the pool; sessions are opened on demand (and `min_idle` of
    /// them in the background).
    ///
    /// # Errors
    ///
    /// `ErrorKind::InvalidInput` for a `max_size` of 0 or a `min_idle`
    /// above `max_size`, as [`resilience::PoolBuilder::build`](sylvan::resilience::PoolBuilder::build).
    ///
    /// # Examples
    ///
    /// See [`PgPoolBuilder`].
    pub fn build(self) -> std::io::Result<PgPool> {
        let config = self.config;
        let ping = self.ping;
        let pool = Pool::builder(move || Client::connect(&config).map_err(Into::into))
            .max_size(self.max_size)
            .min_idle(self.min_idle)
            .checkout_timeout(self.checkout_timeout)
            .idle_timeout(self.idle_timeout)
            .max_lifetime(self.max_lifetime)
            .health_check(move |c: &mut Client| c.is_healthy() && (!ping || c.ping().is_ok()))
            .is_broken(|c: &mut Client| {
                c.is_broken() || (c.tx_status() != TxStatus::Idle && !c.rollback_pending)
            })
            .build()?;
        Ok(PgPool {
            pool,
            retry: self.retry.retry_if(Error::is_retryable),
        })
    }
}

impl PgPool {
    /// Starts configuring a pool whose sessions `config` opens.
    ///
    /// # Examples
    ///
    /// See [`PgPoolBuilder`].
    pub fn builder(config: Config) -> PgPoolBuilder {
        PgPoolBuilder {
            config,
            max_size: 10,
            min_idle: 0,
            checkout_timeout: Duration::from_secs(30),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            ping: false,
            // Constants that the setters accept, so nothing can fail here.
            retry: Retry::new()
                .max_attempts(5)
                .expect("5 attempts is valid")
                .backoff(
                    Backoff::new()
                        .initial(Duration::from_millis(50))
                        .multiplier(2.0)
                        .expect("2.0 is a valid multiplier")
                        .max(Duration::from_secs(2))
                        .jitter(Jitter::Full)
                        .expect("full jitter is valid"),
                ),
        }
    }

    /// The pool's counts right now (sessions, idle, waiters, created,
    /// failed connects).
    ///
    /// # Examples
    ///
    /// See [`PgPoolBuilder`].
    pub fn state(&self) -> PoolState {
        self.pool.state()
    }

    /// Checks a session out; it goes back when dropped (or is closed, if
    /// it broke or is inside a transaction).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let pool = sylvan_postgres::PgPool::builder(sylvan_postgres::Config::new()).build().unwrap();
    /// let mut c = pool.get()?;
    /// c.ping()?;
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Pool`]: the checkout timeout passed, or opening a session
    /// failed (its slot is freed).
    ///
    /// # Cancellation
    ///
    /// Killed or past an enclosing deadline while waiting or connecting:
    /// returns that error; no slot or session is lost.
    pub fn get(&self) -> Result<Pooled<Client>, Error> {
        Ok(self.pool.get()?)
    }

    /// Runs `f` in a `READ ONLY` transaction on a pooled session and
    /// commits; on a retryable error, runs it again on another session
    /// (see the type's retry rule).
    ///
    /// # Examples
    ///
    /// See [`PgPool`].
    ///
    /// # Errors
    ///
    /// A [`RetryError`] with the last [`Error`], the number of attempts and
    /// why retrying stopped; it converts into `io::Error` for `?`.
    ///
    /// # Cancellation
    ///
    /// Killed or past an enclosing deadline: stops at once with
    /// [`StopReason::Cancelled`](sylvan::resilience::StopReason); the
    /// running statement is cancelled on the server and its session
    /// closed; nothing was written.
    pub fn read_only<T>(
        &self,
        mut f: impl FnMut(&mut Transaction<'_>) -> Result<T, Error>,
    ) -> Result<T, RetryError<Error>> {
        self.retry.clone().idempotent(true).run(|attempt| {
            let mut conn = self.get()?;
            attempt.mark_sent();
            let mut tx = conn.read_only_transaction()?;
            let v = f(&mut tx)?;
            tx.commit()?;
            Ok(v)
        })
    }

    /// Runs `f` in a transaction on a pooled session and commits; on a
    /// retryable error that happened **before `COMMIT` was sent**, rolls
    /// back and runs it again on another session (see the type's retry
    /// rule). `f` may run more than once: keep side effects outside the
    /// database out of it.
    ///
    /// # Examples
    ///
    /// See [`PgPool`].
    ///
    /// # Errors
    ///
    /// A [`RetryError`] with the last [`Error`], which is
    /// [`Error::CommitUnknown`] when the `COMMIT` was sent but got no
    /// answer.
    ///
    /// # Cancellation
    ///
    /// Killed or past an enclosing deadline: stops at once with
    /// [`StopReason::Cancelled`](sylvan::resilience::StopReason); the
    /// running statement is cancelled on the server and its session closed,
    /// which rolls the transaction back — unless the cancellation came
    /// while `COMMIT` was in flight, when the outcome is unknown.
    pub fn transaction<T>(
        &self,
        mut f: impl FnMut(&mut Transaction<'_>) -> Result<T, Error>,
    ) -> Result<T, RetryError<Error>> {
        self.retry.clone().idempotent(false).run(|attempt| {
            let mut conn = self.get()?;
            let mut tx = conn.transaction()?;
            let v = f(&mut tx)?;
            attempt.mark_sent();
            tx.commit().map_err(|e| match e {
                // The server answered: it did not commit.
                Error::Db(db) if !db.is_fatal() => Error::Db(db),
                // Broken earlier (an error `f` swallowed): COMMIT was
                // never sent, and the server rolled back.
                Error::Closed(why) => Error::Closed(why),
                e => Error::CommitUnknown(Box::new(e)),
            })?;
            Ok(v)
        })
    }
}
