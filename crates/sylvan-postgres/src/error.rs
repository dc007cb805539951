//! [`Error`] and [`DbError`]: what a call can fail with, and which failures
//! are safe to retry.

use std::fmt;
use std::io;

use sylvan::Cancelled;
use sylvan::resilience::PoolError;

/// An error reported by the server (an `ErrorResponse`), with its SQLSTATE.
///
/// # Examples
///
/// ```no_run
/// # fn main() -> Result<(), sylvan_postgres::Error> {
/// let mut c = sylvan_postgres::Config::new().connect()?;
/// let e = c.simple_query("SELECT 1/0").unwrap_err();
/// let db = e.as_db_error().unwrap();
/// assert_eq!(db.code(), "22012"); // division_by_zero
/// assert_eq!(db.severity(), "ERROR");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError {
    severity: String,
    code: String,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
}

impl DbError {
    /// Builds one from an `ErrorResponse`'s fields (`(type, value)` pairs).
    pub(crate) fn from_fields<'a>(fields: impl IntoIterator<Item = (u8, &'a str)>) -> DbError {
        let mut e = DbError {
            severity: String::new(),
            code: String::new(),
            message: String::new(),
            detail: None,
            hint: None,
        };
        for (t, v) in fields {
            match t {
                // `V` is the untranslated severity (9.6+); `S` may be localized.
                b'V' => e.severity = v.to_owned(),
                b'S' if e.severity.is_empty() => e.severity = v.to_owned(),
                b'C' => e.code = v.to_owned(),
                b'M' => e.message = v.to_owned(),
                b'D' => e.detail = Some(v.to_owned()),
                b'H' => e.hint = Some(v.to_owned()),
                _ => {}
            }
        }
        e
    }

    /// The five-character SQLSTATE, e.g. `23505` for a unique violation.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut c = sylvan_postgres::Config::new().connect()?;
    /// let e = c.simple_query("INSERT INTO nope VALUES (1)").unwrap_err();
    /// let db = e.as_db_error().unwrap();
    /// assert_eq!(db.code(), "42P01"); // undefined_table
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    pub fn code(&self) -> &str {
        &self.code
    }

    /// `ERROR`, `FATAL` or `PANIC`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut c = sylvan_postgres::Config::new().connect()?;
    /// let e = c.simple_query("INSERT INTO nope VALUES (1)").unwrap_err();
    /// let db = e.as_db_error().unwrap();
    /// assert_eq!(db.severity(), "ERROR");
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    pub fn severity(&self) -> &str {
        &self.severity
    }

    /// The primary message.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut c = sylvan_postgres::Config::new().connect()?;
    /// let e = c.simple_query("INSERT INTO nope VALUES (1)").unwrap_err();
    /// let db = e.as_db_error().unwrap();
    /// assert_eq!(db.message(), "relation \"nope\" does not exist");
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The optional detail line.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut c = sylvan_postgres::Config::new().connect()?;
    /// let e = c.simple_query("INSERT INTO nope VALUES (1)").unwrap_err();
    /// let db = e.as_db_error().unwrap();
    /// assert_eq!(db.detail(), None);
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The optional hint.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut c = sylvan_postgres::Config::new().connect()?;
    /// let e = c.simple_query("INSERT INTO nope VALUES (1)").unwrap_err();
    /// let db = e.as_db_error().unwrap();
    /// assert_eq!(db.hint(), None);
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// Whether the server ends the session with it (`FATAL`, `PANIC`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut c = sylvan_postgres::Config::new().connect()?;
    /// let e = c.simple_query("INSERT INTO nope VALUES (1)").unwrap_err();
    /// let db = e.as_db_error().unwrap();
    /// assert!(!db.is_fatal()); // an ERROR: the session goes on
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    pub fn is_fatal(&self) -> bool {
        matches!(self.severity.as_str(), "FATAL" | "PANIC")
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.severity, self.code, self.message)?;
        if let Some(d) = &self.detail {
            write!(f, " (detail: {d})")?;
        }
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for DbError {}

/// Why a call failed.
///
/// - [`Io`](Error::Io): the connection failed, or the call was cancelled:
///   a kill or a passed `timeout`/`deadline` scope gives the
///   [`Cancelled`]-carrying `io::Error` of sylvan (kind `TimedOut` or
///   `Other`); the client's own query timeout gives kind `TimedOut`.
/// - [`Db`](Error::Db): the server refused the statement, with a SQLSTATE.
/// - [`Closed`](Error::Closed): the connection was already unusable (an
///   earlier failure broke it); nothing was sent.
/// - [`Pool`](Error::Pool): no pooled connection could be had.
/// - [`Protocol`](Error::Protocol): the server said something this client
///   does not understand, or authentication is impossible.
/// - [`CommitUnknown`](Error::CommitUnknown): a `COMMIT` got no answer;
///   the inner error says why.
///
/// # Examples
///
/// ```
/// use std::io;
/// use sylvan_postgres::Error;
///
/// let e = Error::from(io::Error::from(io::ErrorKind::ConnectionRefused));
/// assert!(e.is_retryable());
/// assert_eq!(e.code(), None);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error, a timeout or a cancellation.
    Io(io::Error),
    /// An error reported by the server (boxed: it is large, errors are not).
    Db(Box<DbError>),
    /// The connection was broken by an earlier failure (the reason).
    Closed(String),
    /// No connection could be checked out of the pool.
    Pool(PoolError),
    /// An unexpected message, or an authentication method not supported.
    Protocol(String),
    /// `COMMIT` was sent and no answer came (the inner error says why): the
    /// transaction may or may not be applied. Find out before doing it
    /// again. [`PgPool::transaction`](crate::PgPool::transaction) never
    /// replays it.
    CommitUnknown(Box<Error>),
}

/// SQLSTATEs after which running the same transaction again is harmless
/// and may succeed: the server rolled it back for reasons outside it, or
/// could not start it.
const RETRYABLE_STATES: &[&str] = &[
    "40001", // serialization_failure
    "40P01", // deadlock_detected
    "57P01", // admin_shutdown
    "57P02", // crash_shutdown
    "57P03", // cannot_connect_now (starting up, shutting down)
    "53300", // too_many_connections
];

impl Error {
    /// The SQLSTATE, if the server reported the error.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan_postgres::Error::Closed("gone".into()).code(), None);
    /// ```
    pub fn code(&self) -> Option<&str> {
        self.as_db_error().map(DbError::code)
    }

    /// The server's error, if it is one.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(sylvan_postgres::Error::Closed("gone".into()).as_db_error().is_none());
    /// ```
    pub fn as_db_error(&self) -> Option<&DbError> {
        match self {
            Error::Db(e) => Some(e),
            Error::CommitUnknown(e) => e.as_db_error(),
            _ => None,
        }
    }

    /// The sylvan cancellation behind this error, if the call was killed or
    /// a `timeout`/`deadline` scope passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan_postgres::Error;
    ///
    /// let e = Error::from(std::io::Error::from(sylvan::Cancelled::Killed));
    /// assert_eq!(e.cancelled(), Some(sylvan::Cancelled::Killed));
    /// ```
    pub fn cancelled(&self) -> Option<Cancelled> {
        match self {
            Error::Io(e) => Cancelled::from_io(e),
            Error::Pool(PoolError::Cancelled(c)) => Some(*c),
            Error::CommitUnknown(e) => e.cancelled(),
            _ => None,
        }
    }

    /// Whether a `COMMIT` was sent and got no answer: the transaction may
    /// or may not be applied ([`Error::CommitUnknown`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use sylvan_postgres::Error;
    ///
    /// let lost = Error::from(io::Error::from(io::ErrorKind::UnexpectedEof));
    /// assert!(Error::CommitUnknown(Box::new(lost)).is_commit_unknown());
    /// ```
    pub fn is_commit_unknown(&self) -> bool {
        matches!(self, Error::CommitUnknown(_))
    }

    /// Whether the call ran out of time: the query timeout, a scope's
    /// deadline, a socket timeout, the server's `statement_timeout`
    /// (`57014`), or the pool's checkout timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan_postgres::Error;
    ///
    /// assert!(Error::from(std::io::Error::from(std::io::ErrorKind::TimedOut)).is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Io(e) => e.kind() == io::ErrorKind::TimedOut,
            Error::Db(e) => e.code() == "57014",
            Error::Pool(PoolError::Timeout(_)) => true,
            Error::Pool(PoolError::Cancelled(c)) => c.is_timed_out(),
            Error::CommitUnknown(e) => e.is_timeout(),
            _ => false,
        }
    }

    /// Whether running the same work again, on a fresh connection, may
    /// succeed: connection failures (refused, reset, closed, end of
    /// stream), a failed pool `create`, a broken connection, and the
    /// SQLSTATEs of a transaction the server rolled back or refused to
    /// start (`40001`, `40P01`, `57P01`, `57P02`, `57P03`, `53300`, and
    /// class `08`). Never a timeout or a cancellation (the caller ran out
    /// of time; trying again would overrun it) and never another server
    /// error (it would fail again).
    ///
    /// This says nothing about whether a retry is *safe* (a
    /// [`CommitUnknown`](Error::CommitUnknown) answers as its inner error
    /// does); see [`PgPool`](crate::PgPool) for that rule.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use sylvan_postgres::Error;
    ///
    /// assert!(Error::from(io::Error::from(io::ErrorKind::UnexpectedEof)).is_retryable());
    /// assert!(!Error::from(io::Error::from(io::ErrorKind::TimedOut)).is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        if self.cancelled().is_some() || self.is_timeout() {
            return false;
        }
        match self {
            Error::Io(e) => {
                use io::ErrorKind::*;
                matches!(
                    e.kind(),
                    ConnectionRefused
                        | ConnectionReset
                        | ConnectionAborted
                        | NotConnected
                        | BrokenPipe
                        | UnexpectedEof
                        | AddrNotAvailable
                )
            }
            Error::Db(e) => e.code().starts_with("08") || RETRYABLE_STATES.contains(&e.code()),
            Error::Closed(_) => true,
            Error::CommitUnknown(e) => e.is_retryable(),
            Error::Pool(PoolError::Create(e)) => {
                match e.get_ref().and_then(|x| x.downcast_ref::<Error>()) {
                    // A connect that the server refused, e.g. `57P03` while it starts up.
                    Some(inner) => inner.is_retryable(),
                    None => Error::Io(io::Error::new(e.kind(), "")).is_retryable(),
                }
            }
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "postgres connection error: {e}"),
            Error::Db(e) => write!(f, "postgres server error: {e}"),
            Error::Closed(why) => write!(f, "postgres connection is closed: {why}"),
            Error::Pool(e) => write!(f, "postgres pool: {e}"),
            Error::Protocol(m) => write!(f, "postgres protocol error: {m}"),
            Error::CommitUnknown(e) => write!(
                f,
                "COMMIT was sent but got no answer, the transaction may or may not be applied: {e}"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Db(e) => Some(e),
            Error::Pool(e) => Some(e),
            Error::CommitUnknown(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<PoolError> for Error {
    fn from(e: PoolError) -> Error {
        Error::Pool(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io(e) => e,
            Error::Pool(p) => p.into(),
            e @ Error::Closed(_) => io::Error::new(io::ErrorKind::NotConnected, e),
            e @ Error::Db(_) if e.is_timeout() => io::Error::new(io::ErrorKind::TimedOut, e),
            e => io::Error::other(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_error_fields_and_display() {
        let e = DbError::from_fields([
            (b'S', "ERREUR"),
            (b'V', "ERROR"),
            (b'C', "23505"),
            (
                b'M',
                "duplicate key value violates unique constraint \"t_pkey\"",
            ),
            (b'D', "Key (k)=(a) already exists."),
        ]);
        assert_eq!(e.code(), "23505");
        assert_eq!(e.severity(), "ERROR");
        assert!(!e.is_fatal());
        assert_eq!(
            e.to_string(),
            "ERROR 23505: duplicate key value violates unique constraint \"t_pkey\" \
             (detail: Key (k)=(a) already exists.)"
        );
        let err = Error::Db(Box::new(e));
        assert_eq!(err.code(), Some("23505"));
        assert!(!err.is_retryable());
    }

    #[test]
    fn retryable_states() {
        let db = |code: &str| {
            Error::Db(Box::new(DbError::from_fields([
                (b'V', "ERROR"),
                (b'C', code),
            ])))
        };
        for code in ["40001", "40P01", "57P01", "57P03", "08006"] {
            assert!(db(code).is_retryable(), "{code}");
        }
        for code in ["57014", "23505", "42601", "25006"] {
            assert!(!db(code).is_retryable(), "{code}");
        }
        assert!(db("57014").is_timeout());
        let killed = Error::from(io::Error::from(Cancelled::Killed));
        assert!(!killed.is_retryable());
        assert_eq!(killed.cancelled(), Some(Cancelled::Killed));
        assert!(
            Error::Pool(PoolError::Create(io::ErrorKind::ConnectionRefused.into())).is_retryable()
        );
        assert!(!Error::Pool(PoolError::Timeout(std::time::Duration::ZERO)).is_retryable());
    }
}
