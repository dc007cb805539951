//! [`Transaction`]: `BEGIN` … `COMMIT`, rolled back unless committed.

use crate::{Client, Error, Row, ToParam};

/// A transaction block on a [`Client`]; see [`Client::transaction`].
///
/// Dropped without [`commit`](Self::commit) or [`rollback`](Self::rollback)
/// (an early `?`, a panic, a cancellation), it is rolled back: the
/// `ROLLBACK` is sent ahead of the client's next call, since a drop must
/// not block. A [`PgPool`](crate::PgPool) connection returned that way is
/// kept and rolled back on its next use.
///
/// # Examples
///
/// ```no_run
/// let mut c = sylvan_postgres::Config::new().connect()?;
/// c.batch_execute("CREATE TEMP TABLE acct (id int PRIMARY KEY, cents bigint)")?;
/// c.batch_execute("INSERT INTO acct VALUES (1, 100), (2, 0)")?;
/// {
///     let mut tx = c.transaction()?;
///     tx.execute("UPDATE acct SET cents = cents - 50 WHERE id = 1", &[])?;
///     // dropped: rolled back
/// }
/// let mut tx = c.transaction()?;
/// tx.execute("UPDATE acct SET cents = cents - 50 WHERE id = 1", &[])?;
/// tx.execute("UPDATE acct SET cents = cents + 50 WHERE id = 2", &[])?;
/// tx.commit()?;
/// let rows = c.query("SELECT cents FROM acct ORDER BY id", &[])?;
/// assert_eq!(rows[0].get::<i64>(0)?, 50);
/// # Ok::<(), sylvan_postgres::Error>(())
/// ```
#[derive(Debug)]
pub struct Transaction<'a> {
    client: &'a mut Client,
    done: bool,
}

impl<'a> Transaction<'a> {
    pub(crate) fn new(client: &'a mut Client) -> Transaction<'a> {
        Transaction {
            client,
            done: false,
        }
    }

    /// [`Client::query`] inside the transaction.
    ///
    /// # Examples
    ///
    /// See [`Transaction`].
    ///
    /// # Errors
    ///
    /// As [`Client::query`]; after a server error the transaction is
    /// failed and only a rollback is accepted.
    ///
    /// # Cancellation
    ///
    /// As [`Client::simple_query`]: the statement is cancelled on the
    /// server and the connection broken, which ends the transaction
    /// there (rolled back).
    pub fn query(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<Vec<Row>, Error> {
        self.client.query(sql, params)
    }

    /// [`Client::execute`] inside the transaction.
    ///
    /// # Examples
    ///
    /// See [`Transaction`].
    ///
    /// # Errors
    ///
    /// As [`query`](Self::query).
    ///
    /// # Cancellation
    ///
    /// As [`query`](Self::query).
    pub fn execute(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<u64, Error> {
        self.client.execute(sql, params)
    }

    /// [`Client::simple_query`] inside the transaction.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut c = sylvan_postgres::Config::new().connect()?;
    /// let mut tx = c.transaction()?;
    /// assert_eq!(tx.simple_query("SELECT 1")?.len(), 1);
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`query`](Self::query).
    ///
    /// # Cancellation
    ///
    /// As [`query`](Self::query).
    pub fn simple_query(&mut self, sql: &str) -> Result<Vec<Row>, Error> {
        self.client.simple_query(sql)
    }

    /// [`Client::batch_execute`] inside the transaction.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut c = sylvan_postgres::Config::new().connect()?;
    /// let mut tx = c.transaction()?;
    /// tx.batch_execute("SET LOCAL lock_timeout = '1s'")?;
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`query`](Self::query).
    ///
    /// # Cancellation
    ///
    /// As [`query`](Self::query).
    pub fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
        self.client.batch_execute(sql)
    }

    /// Commits (`COMMIT`).
    ///
    /// # Examples
    ///
    /// See [`Transaction`].
    ///
    /// # Errors
    ///
    /// [`Error::Db`] `40P02`-like refusals, or `25P02` (`in_failed_sql_transaction`)
    /// when an earlier statement failed: the server rolled the transaction
    /// back instead. [`Error::Io`] when the connection fails or the call is
    /// cancelled: **the outcome is then unknown** — the server may have
    /// committed — so such a transaction must not be replayed blindly (see
    /// [`PgPool::transaction`](crate::PgPool::transaction)).
    ///
    /// # Cancellation
    ///
    /// As [`Client::simple_query`]; the commit may or may not have
    /// happened.
    pub fn commit(mut self) -> Result<(), Error> {
        self.done = true;
        let tag = self.client.last_tag_of("COMMIT")?;
        if tag == "ROLLBACK" {
            return Err(Error::Db(Box::new(crate::DbError::from_fields([
                (b'V', "ERROR"),
                (b'C', "25P02"),
                (
                    b'M',
                    "COMMIT of a failed transaction: the server rolled it back",
                ),
            ]))));
        }
        Ok(())
    }

    /// Rolls back (`ROLLBACK`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut c = sylvan_postgres::Config::new().connect()?;
    /// let tx = c.transaction()?;
    /// tx.rollback()?;
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Client::simple_query`]; a failed connection ends the
    /// transaction on the server all the same.
    ///
    /// # Cancellation
    ///
    /// As [`Client::simple_query`].
    pub fn rollback(mut self) -> Result<(), Error> {
        self.done = true;
        self.client.batch_execute("ROLLBACK")
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done && !self.client.is_broken() {
            self.client.rollback_pending = true;
        }
    }
}
