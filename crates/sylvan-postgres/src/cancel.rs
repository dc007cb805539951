//! [`CancelToken`]: PostgreSQL's CancelRequest, over a separate connection.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use postgres_protocol::message::frontend;

use crate::Error;

/// Cancels the statement a session is running, from any green thread of
/// the hub: a CancelRequest sent on a new connection to the same server
/// (the session's own connection is busy waiting for the reply).
///
/// A [`Client`](crate::Client) sends one by itself when a call of its is
/// cancelled; this is for cancelling from elsewhere.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
///
/// let mut c = sylvan_postgres::Config::new().connect()?;
/// let token = c.cancel_token().unwrap();
/// let canceller = sylvan::spawn_after(Duration::from_millis(50), move || token.cancel());
/// let e = c.simple_query("SELECT pg_sleep(60)").unwrap_err();
/// assert_eq!(e.code(), Some("57014")); // query_canceled
/// canceller.join().unwrap()?;
/// # Ok::<(), sylvan_postgres::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CancelToken {
    pub(crate) addr: SocketAddr,
    pub(crate) process_id: i32,
    pub(crate) secret_key: i32,
    pub(crate) timeout: Duration,
}

impl CancelToken {
    /// The backend process id this token cancels in.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let c = sylvan_postgres::Config::new().connect()?;
    /// assert_eq!(c.cancel_token().unwrap().process_id(), c.backend_pid().unwrap());
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    pub fn process_id(&self) -> i32 {
        self.process_id
    }

    /// Sends the CancelRequest and waits until the server has read it (it
    /// closes the connection without a reply), within the connect
    /// timeout. Cancelling is best effort on the server's side: a statement
    /// that has just finished is not affected, and if the session has
    /// moved on to another statement by the time the request arrives, that
    /// one is cancelled.
    ///
    /// # Examples
    ///
    /// See [`CancelToken`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`]: connecting failed or timed out.
    ///
    /// # Cancellation
    ///
    /// Killed or past an enclosing deadline: returns that error; the
    /// request may or may not have been delivered.
    pub fn cancel(&self) -> Result<(), Error> {
        let t = self.timeout;
        let r = sylvan::timeout(t, || -> io::Result<()> {
            let mut s = sylvan::net::Connector::new().connect(self.addr)?;
            let mut buf = BytesMut::with_capacity(16);
            frontend::cancel_request(self.process_id, self.secret_key, &mut buf);
            s.write_all(&buf)?;
            let mut sink = [0u8; 64];
            while s.read(&mut sink)? > 0 {}
            Ok(())
        });
        match r {
            Ok(r) => r.map_err(Error::Io),
            Err(_) => Err(Error::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "sending a CancelRequest to {} timed out after {t:?}",
                    self.addr
                ),
            ))),
        }
    }
}
