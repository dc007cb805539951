//! [`Heartbeat`]: application-level pings that find half-open connections.

use std::io;
use std::time::Duration;

/// An application-level ping every `interval`, each allowed `timeout`.
///
/// TCP can take many minutes (or, without keepalive, forever) to notice a
/// peer that vanished without a FIN or RST — a half-open connection. A
/// heartbeat finds it within `interval + timeout`. Use it alone with
/// [`run`](Self::run), or give it to
/// [`Reconnecting`](super::Reconnecting) with
/// [`heartbeat`](super::ReconnectingBuilder::heartbeat), which pings only
/// while the connection is idle and marks it broken on a miss.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sylvan::resilience::Heartbeat;
///
/// sylvan::time::pause();
/// let hb = Heartbeat::new(Duration::from_secs(10), Duration::from_secs(2));
/// let mut pings = 0;
/// let err = hb.run(|| {
///     pings += 1;
///     if pings < 3 {
///         Ok(())
///     } else {
///         sylvan::sleep(Duration::from_secs(60))?; // the peer stopped answering
///         Ok(())
///     }
/// });
/// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
/// assert_eq!(pings, 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    interval: Duration,
    timeout: Duration,
}

impl Heartbeat {
    /// Pings every `interval`; each ping must answer within `timeout`.
    pub fn new(interval: Duration, timeout: Duration) -> Heartbeat {
        Heartbeat { interval, timeout }
    }

    /// Time between pings.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Time a ping may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Pings every interval until a ping fails or takes longer than the
    /// timeout, and returns that error (`TimedOut` for a slow ping). Runs
    /// until then; call it in its own green thread.
    ///
    /// # Cancellation
    ///
    /// Killed or past an enclosing deadline: returns that error (as
    /// `io::Error`) at once.
    #[track_caller]
    pub fn run(&self, mut ping: impl FnMut() -> io::Result<()>) -> io::Error {
        loop {
            if let Err(c) = crate::sleep(self.interval) {
                return c.into();
            }
            match crate::timeout(self.timeout, &mut ping) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return e,
                Err(_) => {
                    return io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("heartbeat not answered within {:?}", self.timeout),
                    );
                }
            }
        }
    }
}
