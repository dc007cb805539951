//! [`Client`]: one session over a green TCP stream, the wire protocol
//! spoken with `postgres-protocol`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::IsNull;
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::backend::{ErrorResponseBody, Message};
use postgres_protocol::message::frontend;
use sylvan::net::{Connector, TcpStream};

use crate::cancel::CancelToken;
use crate::{Config, DbError, Error, Row, ToParam, Transaction};

/// The transaction status the server reports after each round trip.
///
/// # Examples
///
/// ```no_run
/// use sylvan_postgres::TxStatus;
///
/// let mut c = sylvan_postgres::Config::new().connect()?;
/// assert_eq!(c.tx_status(), TxStatus::Idle);
/// c.batch_execute("BEGIN")?;
/// assert_eq!(c.tx_status(), TxStatus::InTransaction);
/// # Ok::<(), sylvan_postgres::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxStatus {
    /// Not in a transaction block.
    Idle,
    /// In a transaction block.
    InTransaction,
    /// In a failed transaction block: statements are refused until
    /// `ROLLBACK`.
    Failed,
}

/// A PostgreSQL session on a green TCP stream.
///
/// Every call is one round trip (a message batch ending in `Sync` or a
/// simple `Query`, read until `ReadyForQuery`); it parks only the calling
/// green thread. Not shareable between green threads at once (methods
/// take `&mut self`): use one per green thread, or a [`PgPool`](crate::PgPool).
///
/// # Timeouts and cancellation
///
/// If a call is cancelled while the server may still be running its
/// statement — the [query timeout](Config::query_timeout) or an enclosing
/// `sylvan::timeout`/`deadline` scope passes, or the green thread is
/// killed — the client sends a **CancelRequest** for it from a fresh green
/// thread (the cancelled one can make no blocking call any more), bounded
/// by the connect timeout, and marks itself **broken**: the rest of the
/// reply can't be read, so every later call fails with
/// [`Error::Closed`] without sending anything, and a pool discards it. The
/// server's own `statement_timeout` (`57014`) is an ordinary
/// [`Error::Db`] and leaves the connection usable.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
///
/// let mut c = sylvan_postgres::Config::new().connect()?;
/// c.batch_execute("CREATE TEMP TABLE kv (k text PRIMARY KEY, v int)")?;
/// let n = c.execute("INSERT INTO kv VALUES ($1, $2), ($3, $4)", &[&"a", &1, &"b", &2])?;
/// assert_eq!(n, 2);
/// let rows = c.query("SELECT v FROM kv WHERE k = $1", &[&"b"])?;
/// assert_eq!(rows[0].get::<i32>(0)?, 2);
///
/// // A deadline cancels the statement on the server, too.
/// let r = sylvan::timeout(Duration::from_millis(100), || c.simple_query("SELECT pg_sleep(60)"));
/// assert!(r.is_err());
/// assert!(c.is_broken());
/// # Ok::<(), sylvan_postgres::Error>(())
/// ```
pub struct Client {
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    cancel: Option<CancelToken>,
    status: TxStatus,
    broken: Option<String>,
    query_timeout: Option<Duration>,
    pub(crate) rollback_pending: bool,
    server_version: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.stream.peer_addr().ok())
            .field("backend_pid", &self.backend_pid())
            .field("status", &self.status)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// What a round trip collects besides rows.
#[derive(Default)]
struct Reply {
    rows: Vec<Row>,
    affected: u64,
    last_tag: String,
}

impl Client {
    /// Connects and logs in: TCP through [`sylvan::net::Connector`]
    /// (`TCP_NODELAY`, keepalive), the startup packet (with
    /// `statement_timeout` and other parameters of the [`Config`]), and
    /// `trust`, `password`, `md5` or `scram-sha-256` authentication — all
    /// within the config's connect timeout.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let cfg = sylvan_postgres::Config::new().user("postgres");
    /// let c = sylvan_postgres::Client::connect(&cfg)?;
    /// assert!(c.backend_pid().is_some());
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] of kind `TimedOut` past the connect timeout, or the
    /// connect error (e.g. `ConnectionRefused`); [`Error::Db`] when the
    /// server refuses the login (e.g. `28P01` wrong password, `57P03` still
    /// starting up); [`Error::Protocol`] for an authentication method this
    /// client lacks (Kerberos, GSS, SSPI) or a password it needs and lacks.
    ///
    /// # Cancellation
    ///
    /// Killed or past an enclosing deadline: returns that error; the
    /// half-open connection is closed.
    pub fn connect(cfg: &Config) -> Result<Client, Error> {
        let t = cfg.connect_timeout;
        let what = format!("{}:{}", cfg.host, cfg.port);
        match sylvan::timeout(t, || Client::connect_inner(cfg)) {
            Ok(r) => r,
            Err(_) => Err(Error::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connecting to postgres at {what} timed out after {t:?}"),
            ))),
        }
    }

    fn connect_inner(cfg: &Config) -> Result<Client, Error> {
        let stream = Connector::new()
            .nodelay(true)
            .keepalive(Duration::from_secs(60), Duration::from_secs(10), 6)
            .connect((cfg.host.as_str(), cfg.port))?;
        let peer = stream.peer_addr()?;
        let mut c = Client {
            stream,
            rbuf: BytesMut::with_capacity(8192),
            wbuf: BytesMut::with_capacity(1024),
            cancel: None,
            status: TxStatus::Idle,
            broken: None,
            query_timeout: cfg.query_timeout,
            rollback_pending: false,
            server_version: String::new(),
        };
        c.startup(cfg, peer)?;
        Ok(c)
    }

    fn startup(&mut self, cfg: &Config, peer: SocketAddr) -> Result<(), Error> {
        let stmt_ms;
        let mut params: Vec<(&str, &str)> = vec![
            ("user", &cfg.user),
            ("client_encoding", "UTF8"),
            ("application_name", &cfg.application_name),
        ];
        if let Some(db) = &cfg.dbname {
            params.push(("database", db));
        }
        if let Some(t) = cfg.statement_timeout {
            stmt_ms = t.as_millis().max(1).to_string();
            params.push(("statement_timeout", &stmt_ms));
        }
        for (k, v) in &cfg.params {
            params.push((k, v));
        }
        frontend::startup_message(params, &mut self.wbuf)?;
        self.flush()?;
        let mut scram: Option<sasl::ScramSha256> = None;
        let password = || {
            cfg.password.as_deref().ok_or_else(|| {
                Error::Protocol(format!(
                    "the server asks user {:?} for a password and none is configured",
                    cfg.user
                ))
            })
        };
        loop {
            match self.read_message()? {
                Message::AuthenticationOk => {}
                Message::AuthenticationCleartextPassword => {
                    frontend::password_message(password()?.as_bytes(), &mut self.wbuf)?;
                    self.flush()?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let h = md5_hash(cfg.user.as_bytes(), password()?.as_bytes(), body.salt());
                    frontend::password_message(h.as_bytes(), &mut self.wbuf)?;
                    self.flush()?;
                }
                Message::AuthenticationSasl(body) => {
                    let mut mechs = body.mechanisms();
                    let mut has_scram = false;
                    while let Some(m) = mechs.next()? {
                        has_scram |= m == sasl::SCRAM_SHA_256;
                    }
                    if !has_scram {
                        return Err(Error::Protocol(
                            "the server offers no SASL mechanism this client supports \
                             (SCRAM-SHA-256 without channel binding)"
                                .into(),
                        ));
                    }
                    let s = sasl::ScramSha256::new(
                        password()?.as_bytes(),
                        sasl::ChannelBinding::unsupported(),
                    );
                    frontend::sasl_initial_response(
                        sasl::SCRAM_SHA_256,
                        s.message(),
                        &mut self.wbuf,
                    )?;
                    self.flush()?;
                    scram = Some(s);
                }
                Message::AuthenticationSaslContinue(body) => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| Error::Protocol("unexpected SASL continue".into()))?;
                    s.update(body.data())?;
                    frontend::sasl_response(s.message(), &mut self.wbuf)?;
                    self.flush()?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| Error::Protocol("unexpected SASL final".into()))?;
                    s.finish(body.data())?;
                }
                Message::BackendKeyData(body) => {
                    self.cancel = Some(CancelToken {
                        addr: peer,
                        process_id: body.process_id(),
                        secret_key: body.secret_key(),
                        timeout: cfg.connect_timeout,
                    });
                }
                Message::ParameterStatus(body) => {
                    if body.name()? == "server_version" {
                        self.server_version = body.value()?.to_owned();
                    }
                }
                Message::NoticeResponse(_) => {}
                Message::ReadyForQuery(_) => return Ok(()),
                Message::ErrorResponse(body) => return Err(Error::Db(Box::new(db_error(&body)?))),
                _ => {
                    return Err(Error::Protocol(
                        "the server asks for an authentication method this client lacks \
                         (only trust, password, md5 and scram-sha-256 are supported)"
                            .into(),
                    ));
                }
            }
        }
    }

    /// The backend's process id (as in `pg_stat_activity.pid`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut c = sylvan_postgres::Config::new().connect()?;
    /// let pid: i32 = c.query("SELECT pg_backend_pid()", &[])?[0].get(0)?;
    /// assert_eq!(c.backend_pid(), Some(pid));
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    pub fn backend_pid(&self) -> Option<i32> {
        self.cancel.as_ref().map(|c| c.process_id)
    }

    /// The server's version string, from the login.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let c = sylvan_postgres::Config::new().connect()?;
    /// assert!(!c.server_version().is_empty());
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// A token that cancels this session's running statement from anywhere.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let c = sylvan_postgres::Config::new().connect()?;
    /// let token = c.cancel_token().unwrap();
    /// token.cancel()?; // nothing running: harmless
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    pub fn cancel_token(&self) -> Option<CancelToken> {
        self.cancel.clone()
    }

    /// The transaction status after the last round trip.
    ///
    /// # Examples
    ///
    /// See [`TxStatus`].
    pub fn tx_status(&self) -> TxStatus {
        self.status
    }

    /// Whether an earlier failure made this connection unusable.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let c = sylvan_postgres::Config::new().connect()?;
    /// assert!(!c.is_broken());
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// A cheap check without a round trip: not broken, and the server has
    /// not closed the socket or sent anything unasked (a server that
    /// restarted sends `FATAL 57P01` and closes). A pool runs it on
    /// checkout.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut c = sylvan_postgres::Config::new().connect()?;
    /// assert!(c.is_healthy());
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    pub fn is_healthy(&mut self) -> bool {
        if self.broken.is_some() {
            return false;
        }
        let mut b = [0u8; 1];
        // A zero timeout tries the non-blocking peek once, then fails with
        // TimedOut if nothing is there: the healthy case.
        match sylvan::timeout(Duration::ZERO, || self.stream.peek(&mut b)) {
            Err(_) => true,
            Ok(Err(e)) if e.kind() == io::ErrorKind::TimedOut => true,
            Ok(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => true,
            Ok(Ok(0)) => {
                self.broken = Some("the server closed the connection".into());
                false
            }
            Ok(_) => {
                self.broken = Some("the server sent a message while idle".into());
                false
            }
        }
    }

    /// A round trip with an empty query: proves the session answers.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut c = sylvan_postgres::Config::new().connect()?;
    /// c.ping()?;
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`simple_query`](Self::simple_query).
    ///
    /// # Cancellation
    ///
    /// As [`simple_query`](Self::simple_query).
    pub fn ping(&mut self) -> Result<(), Error> {
        self.simple_query("").map(|_| ())
    }

    /// Runs one or more statements with the simple query protocol, without
    /// parameters, and returns the rows of all of them in order.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut c = sylvan_postgres::Config::new().connect()?;
    /// let rows = c.simple_query("SELECT 1; SELECT 2")?;
    /// assert_eq!(rows.len(), 2);
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Db`] with the SQLSTATE when a statement fails (the ones
    /// before it ran, and in a single-transaction string they are rolled
    /// back); [`Error::Io`] when the connection fails or the call is
    /// cancelled or times out (the connection is then broken);
    /// [`Error::Closed`] if it already was.
    ///
    /// # Cancellation
    ///
    /// Killed, or past the query timeout or an enclosing deadline: returns
    /// that error at once; a CancelRequest for the running statement is
    /// sent from another green thread, and the connection is broken (see
    /// [`Client`]).
    pub fn simple_query(&mut self, sql: &str) -> Result<Vec<Row>, Error> {
        frontend::query(sql, &mut self.wbuf)?;
        self.round_trip().map(|r| r.rows)
    }

    /// Runs statements with the simple query protocol and discards any
    /// rows: for DDL, `SET`, and `BEGIN`/`COMMIT`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut c = sylvan_postgres::Config::new().connect()?;
    /// c.batch_execute("CREATE TEMP TABLE t (x int); INSERT INTO t VALUES (1)")?;
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`simple_query`](Self::simple_query).
    ///
    /// # Cancellation
    ///
    /// As [`simple_query`](Self::simple_query).
    pub fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
        self.simple_query(sql).map(|_| ())
    }

    /// Runs one statement with parameters `$1, $2, …` (the extended
    /// protocol: Parse, Bind, Describe, Execute and Sync in one round trip,
    /// unnamed statement) and returns its rows.
    ///
    /// Parameters go in text form; the server parses each as the type it
    /// infers for it (add a cast, `$1::int`, where it cannot).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut c = sylvan_postgres::Config::new().connect()?;
    /// let rows = c.query("SELECT $1::int * 2, $2::text", &[&21, &"hi"])?;
    /// assert_eq!(rows[0].get::<i32>(0)?, 42);
    /// assert_eq!(rows[0].get::<String>(1)?, "hi");
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`simple_query`](Self::simple_query); also
    /// [`Error::Protocol`] for more than 65535 parameters.
    ///
    /// # Cancellation
    ///
    /// As [`simple_query`](Self::simple_query).
    pub fn query(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<Vec<Row>, Error> {
        self.extended(sql, params).map(|r| r.rows)
    }

    /// Like [`query`](Self::query), for a statement whose rows don't
    /// matter; returns how many rows it inserted, updated or deleted.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut c = sylvan_postgres::Config::new().connect()?;
    /// c.batch_execute("CREATE TEMP TABLE t (x int)")?;
    /// assert_eq!(c.execute("INSERT INTO t SELECT generate_series(1, $1::int)", &[&3])?, 3);
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`query`](Self::query).
    ///
    /// # Cancellation
    ///
    /// As [`simple_query`](Self::simple_query).
    pub fn execute(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<u64, Error> {
        self.extended(sql, params).map(|r| r.affected)
    }

    /// Starts a transaction (`BEGIN`). Commit it with
    /// [`Transaction::commit`]; dropped without that, it is rolled back
    /// (lazily: the `ROLLBACK` goes out with the client's next call, since
    /// a drop must not block).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut c = sylvan_postgres::Config::new().connect()?;
    /// c.batch_execute("CREATE TEMP TABLE t (x int)")?;
    /// let mut tx = c.transaction()?;
    /// tx.execute("INSERT INTO t VALUES (1)", &[])?;
    /// tx.commit()?;
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`simple_query`](Self::simple_query).
    ///
    /// # Cancellation
    ///
    /// As [`simple_query`](Self::simple_query).
    pub fn transaction(&mut self) -> Result<Transaction<'_>, Error> {
        self.begin("BEGIN")
    }

    /// Starts a `READ ONLY` transaction: the server refuses any write in it
    /// (`25006`), so replaying it is harmless.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut c = sylvan_postgres::Config::new().connect()?;
    /// let mut tx = c.read_only_transaction()?;
    /// let e = tx.batch_execute("CREATE TABLE nope (x int)").unwrap_err();
    /// assert_eq!(e.code(), Some("25006"));
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`simple_query`](Self::simple_query).
    ///
    /// # Cancellation
    ///
    /// As [`simple_query`](Self::simple_query).
    pub fn read_only_transaction(&mut self) -> Result<Transaction<'_>, Error> {
        self.begin("BEGIN READ ONLY")
    }

    fn begin(&mut self, sql: &str) -> Result<Transaction<'_>, Error> {
        self.batch_execute(sql)?;
        Ok(Transaction::new(self))
    }

    /// Ends the session politely (`Terminate`) and closes the socket.
    /// Dropping a client closes the socket without the goodbye.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let c = sylvan_postgres::Config::new().connect()?;
    /// c.close()?;
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the goodbye could not be written.
    ///
    /// # Cancellation
    ///
    /// Killed or past a deadline: returns that error; the socket is closed
    /// all the same.
    pub fn close(mut self) -> Result<(), Error> {
        if self.broken.is_none() {
            frontend::terminate(&mut self.wbuf);
            self.flush()?;
        }
        Ok(())
    }

    fn extended(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<Reply, Error> {
        frontend::parse("", sql, std::iter::empty(), &mut self.wbuf)?;
        let r = frontend::bind(
            "",
            "",
            std::iter::empty(), // all parameters in text format
            params.iter(),
            |p, buf| match p.to_text() {
                Some(s) => {
                    buf.extend_from_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                None => Ok(IsNull::Yes),
            },
            std::iter::empty(), // all results in text format
            &mut self.wbuf,
        );
        if let Err(e) = r {
            self.wbuf.clear();
            return Err(Error::Protocol(match e {
                postgres_protocol::message::frontend::BindError::Conversion(e) => e.to_string(),
                postgres_protocol::message::frontend::BindError::Serialization(e) => {
                    format!("cannot encode the parameters: {e}")
                }
            }));
        }
        frontend::describe(b'P', "", &mut self.wbuf)?;
        frontend::execute("", 0, &mut self.wbuf)?;
        frontend::sync(&mut self.wbuf);
        self.round_trip()
    }

    /// Sends what is in `wbuf` and reads the reply up to `ReadyForQuery`,
    /// under the query timeout; on a cancellation, cancels on the server.
    fn round_trip(&mut self) -> Result<Reply, Error> {
        if let Some(why) = &self.broken {
            self.wbuf.clear();
            return Err(Error::Closed(why.clone()));
        }
        if self.rollback_pending {
            // A dropped transaction's ROLLBACK goes first, in the same write.
            let req = self.wbuf.split();
            frontend::query("ROLLBACK", &mut self.wbuf)?;
            self.rollback_pending = false;
            let r = self.exchange_timed();
            self.wbuf.unsplit(req);
            if let Err(e) = r {
                self.wbuf.clear();
                return Err(e);
            }
        }
        self.exchange_timed()
    }

    fn exchange_timed(&mut self) -> Result<Reply, Error> {
        let r = match self.query_timeout {
            None => self.exchange(),
            Some(t) => match sylvan::timeout(t, || self.exchange()) {
                Ok(r) => r,
                Err(_) => Err(Error::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("postgres query timed out after {t:?}; cancelled on the server"),
                ))),
            },
        };
        self.wbuf.clear();
        if let Err(e) = &r {
            self.after_error(e);
        }
        r
    }

    /// Breaks the connection after a failed round trip that left it in an
    /// unknown state, and cancels the statement if the server may still
    /// be running it.
    fn after_error(&mut self, e: &Error) {
        match e {
            Error::Db(db) if !db.is_fatal() => {}
            Error::Db(db) => self.broken = Some(format!("the server ended the session: {db}")),
            Error::Io(io) => {
                let cancelled = io.kind() == io::ErrorKind::TimedOut
                    || sylvan::Cancelled::from_io(io).is_some();
                if cancelled
                    && self.broken.is_none()
                    && let Some(token) = self.cancel.clone()
                {
                    // This green thread may be killed or past its
                    // deadline: every blocking call of its would fail.
                    let _ = sylvan::Builder::new()
                        .name("sylvan-postgres-cancel")
                        .stack_size(64 * 1024)
                        .spawn(move || {
                            let _ = token.cancel();
                        });
                }
                self.broken = Some(format!("an earlier call failed: {io}"));
            }
            _ => self.broken = Some(format!("an earlier call failed: {e}")),
        }
    }

    fn exchange(&mut self) -> Result<Reply, Error> {
        self.flush()?;
        let mut reply = Reply::default();
        let mut columns: Arc<[String]> = Arc::from(Vec::new());
        let mut error: Option<DbError> = None;
        loop {
            match self.read_message()? {
                Message::ReadyForQuery(body) => {
                    self.status = match body.status() {
                        b'T' => TxStatus::InTransaction,
                        b'E' => TxStatus::Failed,
                        _ => TxStatus::Idle,
                    };
                    return match error {
                        Some(e) => Err(Error::Db(Box::new(e))),
                        None => Ok(reply),
                    };
                }
                Message::RowDescription(body) => {
                    let mut names = Vec::new();
                    let mut fields = body.fields();
                    while let Some(f) = fields.next()? {
                        names.push(f.name().to_owned());
                    }
                    columns = Arc::from(names);
                }
                Message::DataRow(body) => {
                    let buf = body.buffer();
                    let mut values = Vec::with_capacity(columns.len());
                    let mut ranges = body.ranges();
                    while let Some(r) = ranges.next()? {
                        values.push(match r {
                            Some(r) => Some(
                                std::str::from_utf8(&buf[r])
                                    .map_err(|e| {
                                        Error::Protocol(format!("a column is not UTF-8: {e}"))
                                    })?
                                    .to_owned(),
                            ),
                            None => None,
                        });
                    }
                    reply.rows.push(Row {
                        columns: columns.clone(),
                        values,
                    });
                }
                Message::CommandComplete(body) => {
                    let tag = body.tag()?;
                    reply.affected = tag
                        .rsplit(' ')
                        .next()
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    reply.last_tag = tag.to_owned();
                }
                Message::ErrorResponse(body) => {
                    let db = db_error(&body)?;
                    if db.is_fatal() {
                        // No ReadyForQuery follows; the server closes.
                        return Err(Error::Db(Box::new(db)));
                    }
                    error.get_or_insert(db);
                }
                Message::ParseComplete
                | Message::BindComplete
                | Message::NoData
                | Message::EmptyQueryResponse
                | Message::NoticeResponse(_)
                | Message::NotificationResponse(_)
                | Message::ParameterStatus(_)
                | Message::PortalSuspended
                | Message::CloseComplete => {}
                _ => {
                    return Err(Error::Protocol(
                        "unexpected message from the server (COPY is not supported)".into(),
                    ));
                }
            }
        }
    }

    pub(crate) fn last_tag_of(&mut self, sql: &str) -> Result<String, Error> {
        frontend::query(sql, &mut self.wbuf)?;
        self.round_trip().map(|r| r.last_tag)
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = self.stream.write_all(&self.wbuf);
        self.wbuf.clear();
        r
    }

    fn read_message(&mut self) -> Result<Message, Error> {
        loop {
            if let Some(m) = Message::parse(&mut self.rbuf)? {
                return Ok(m);
            }
            let len = self.rbuf.len();
            self.rbuf.resize(len + 8192, 0);
            let n = self.stream.read(&mut self.rbuf[len..]);
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    self.rbuf.truncate(len);
                    return Err(e.into());
                }
            };
            self.rbuf.truncate(len + n);
            if n == 0 {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                )));
            }
        }
    }
}

/// The fields of an `ErrorResponse`.
fn db_error(body: &ErrorResponseBody) -> Result<DbError, Error> {
    let mut fields = body.fields();
    let mut v = Vec::new();
    while let Some(f) = fields.next()? {
        v.push((
            f.type_(),
            String::from_utf8_lossy(f.value_bytes()).into_owned(),
        ));
    }
    Ok(DbError::from_fields(
        v.iter().map(|(t, s)| (*t, s.as_str())),
    ))
}
