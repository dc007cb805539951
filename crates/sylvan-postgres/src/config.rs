//! [`Config`]: where to connect, as whom, and the timeouts.

use std::fmt;
use std::time::Duration;

use crate::{Client, Error};

/// Connection settings; [`connect`](Config::connect) opens a [`Client`].
///
/// Setters state their defaults. Every `Config` is cheap to clone: a pool
/// keeps one and connects with it again and again.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use sylvan_postgres::Config;
///
/// let mut client = Config::new()
///     .host("127.0.0.1")
///     .port(5432)
///     .user("app")
///     .password("secret")
///     .dbname("app")
///     .connect_timeout(Duration::from_secs(3))
///     .statement_timeout(Duration::from_secs(5))
///     .query_timeout(Duration::from_secs(6))
///     .connect()?;
/// let rows = client.query("SELECT $1::int + 1", &[&41])?;
/// assert_eq!(rows[0].get::<i32>(0)?, 42);
/// # Ok::<(), sylvan_postgres::Error>(())
/// ```
#[derive(Clone)]
pub struct Config {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) password: Option<String>,
    pub(crate) dbname: Option<String>,
    pub(crate) application_name: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) query_timeout: Option<Duration>,
    pub(crate) statement_timeout: Option<Duration>,
    pub(crate) params: Vec<(String, String)>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("dbname", &self.dbname)
            .field("application_name", &self.application_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("query_timeout", &self.query_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("params", &self.params)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl Config {
    /// The defaults: `127.0.0.1:5432`, user `postgres`, no password, the
    /// database named after the user, a 10 s connect timeout, no query or
    /// statement timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// let c = sylvan_postgres::Config::new();
    /// assert!(format!("{c:?}").contains("5432"));
    /// ```
    pub fn new() -> Config {
        Config {
            host: "127.0.0.1".into(),
            port: 5432,
            user: "postgres".into(),
            password: None,
            dbname: None,
            application_name: "sylvan-postgres".into(),
            connect_timeout: Duration::from_secs(10),
            query_timeout: None,
            statement_timeout: None,
            params: Vec::new(),
        }
    }

    /// The server's host name or IP (default `127.0.0.1`). Names are
    /// resolved again on every connect, on sylvan's thread pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let c = sylvan_postgres::Config::new().host("db.internal");
    /// # let _ = c;
    /// ```
    pub fn host(mut self, host: impl Into<String>) -> Config {
        self.host = host.into();
        self
    }

    /// The server's TCP port (default 5432).
    ///
    /// # Examples
    ///
    /// ```
    /// let c = sylvan_postgres::Config::new().port(6432);
    /// # let _ = c;
    /// ```
    pub fn port(mut self, port: u16) -> Config {
        self.port = port;
        self
    }

    /// The role to log in as (default `postgres`).
    ///
    /// # Examples
    ///
    /// ```
    /// let c = sylvan_postgres::Config::new().user("app");
    /// # let _ = c;
    /// ```
    pub fn user(mut self, user: impl Into<String>) -> Config {
        self.user = user.into();
        self
    }

    /// The password, for `password`, `md5` and `scram-sha-256`
    /// authentication (default: none, for `trust`).
    ///
    /// # Examples
    ///
    /// ```
    /// let c = sylvan_postgres::Config::new().password("secret");
    /// assert!(!format!("{c:?}").contains("secret"));
    /// ```
    pub fn password(mut self, password: impl Into<String>) -> Config {
        self.password = Some(password.into());
        self
    }

    /// The database (default: the server's, i.e. the user's name).
    ///
    /// # Examples
    ///
    /// ```
    /// let c = sylvan_postgres::Config::new().dbname("app");
    /// # let _ = c;
    /// ```
    pub fn dbname(mut self, dbname: impl Into<String>) -> Config {
        self.dbname = Some(dbname.into());
        self
    }

    /// The `application_name` shown in `pg_stat_activity` (default
    /// `sylvan-postgres`).
    ///
    /// # Examples
    ///
    /// ```
    /// let c = sylvan_postgres::Config::new().application_name("billing");
    /// # let _ = c;
    /// ```
    pub fn application_name(mut self, name: impl Into<String>) -> Config {
        self.application_name = name.into();
        self
    }

    /// Bounds the whole connect — resolution, TCP (Happy Eyeballs, through
    /// [`sylvan::net::Connector`]), startup and authentication — and each
    /// CancelRequest (default 10 s).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = sylvan_postgres::Config::new().connect_timeout(Duration::from_secs(2));
    /// # let _ = c;
    /// ```
    pub fn connect_timeout(mut self, d: Duration) -> Config {
        self.connect_timeout = d;
        self
    }

    /// A client-side deadline for each round trip (default: none). When it
    /// passes, the call returns an `io::Error` of kind `TimedOut`, the
    /// query is cancelled on the server with a CancelRequest, and the
    /// connection is closed. Enclosing `sylvan::timeout` scopes apply as
    /// well, the same way.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = sylvan_postgres::Config::new().query_timeout(Duration::from_secs(5));
    /// # let _ = c;
    /// ```
    pub fn query_timeout(mut self, d: Duration) -> Config {
        self.query_timeout = Some(d);
        self
    }

    /// The server-side `statement_timeout` of every session (default: the
    /// server's). A statement over it fails with SQLSTATE `57014` and the
    /// connection stays usable. Set it a little below the
    /// [`query_timeout`](Self::query_timeout), so that the server usually
    /// stops first and the connection is kept.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = sylvan_postgres::Config::new().statement_timeout(Duration::from_millis(500));
    /// # let _ = c;
    /// ```
    pub fn statement_timeout(mut self, d: Duration) -> Config {
        self.statement_timeout = Some(d);
        self
    }

    /// Any other run-time parameter for the session's startup packet, such
    /// as `lock_timeout` or `idle_in_transaction_session_timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// let c = sylvan_postgres::Config::new().param("lock_timeout", "2s");
    /// # let _ = c;
    /// ```
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Config {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Connects, as [`Client::connect`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let client = sylvan_postgres::Config::new().connect()?;
    /// # let _ = client;
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Client::connect`].
    ///
    /// # Cancellation
    ///
    /// As [`Client::connect`].
    pub fn connect(&self) -> Result<Client, Error> {
        Client::connect(self)
    }
}
