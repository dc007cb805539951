//! Run tokio-based futures from green threads, on one shared background
//! tokio runtime (feature `tokio`).
//!
//! Most of Rust's network crates — reqwest, sqlx, tonic, hyper's client —
//! are async and need a tokio runtime to drive their sockets and timers.
//! [`run`] sends such a future to a multi-thread tokio runtime that sylvan
//! starts lazily on first use and shares between every green thread of
//! every hub, and parks the calling green thread until the future is done.
//! The hub runs its other green threads meanwhile; kill and scoped
//! deadlines abort the tokio task.
//!
//! # The shared runtime
//!
//! Started on the first [`run`] or [`handle`] call, it then lives until the
//! process exits. Its worker threads are named `sylvan-tokio`; their number
//! is, in order of precedence: [`set_worker_threads`] called before the
//! start, the `SYLVAN_TOKIO_THREADS` environment variable, or the number of
//! CPUs available to the process (tokio's default). IO and time drivers are
//! enabled.
//!
//! # Examples
//!
//! A green HTTP server whose handler calls an async client. The handler is
//! plain blocking code on a sylvan hub; the client (here a tokio
//! `TcpStream` to an async upstream service; reqwest or hyper work the same
//! way) runs on the shared tokio runtime, under the handler's deadline:
//!
//! ```
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use sylvan::compat::tokio as ctokio;
//! use sylvan::http::{Response, Server};
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//!
//! // An async upstream service, on the shared tokio runtime.
//! let upstream = ctokio::run(async {
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     tokio::spawn(async move {
//!         while let Ok((mut conn, _)) = listener.accept().await {
//!             tokio::spawn(async move { conn.write_all(b"42\n").await });
//!         }
//!     });
//!     std::io::Result::Ok(addr)
//! })??;
//!
//! // The green server: its handler blocks on the async client through `run`.
//! let server = Server::bind("127.0.0.1:0")?.serve(move |_req| {
//!     let quote = sylvan::timeout(Duration::from_secs(2), || {
//!         ctokio::run(async move {
//!             let conn = tokio::net::TcpStream::connect(upstream).await?;
//!             let mut line = String::new();
//!             BufReader::new(conn).read_line(&mut line).await?;
//!             std::io::Result::Ok(line)
//!         })
//!     });
//!     match quote {
//!         Ok(Ok(Ok(line))) => Response::text(format!("quote: {line}")),
//!         Err(_elapsed) => Response::status_page(504), // the tokio task was aborted
//!         _ => Response::status_page(502),
//!     }
//! });
//!
//! // A plain blocking client, from the root context.
//! let mut c = sylvan::connect(server.local_addr())?;
//! c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
//! let mut out = String::new();
//! c.read_to_string(&mut out)?;
//! assert!(out.starts_with("HTTP/1.1 200 OK") && out.ends_with("quote: 42\n"));
//! server.stop(Duration::from_secs(1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The other direction — tokio code running green closures — is
//! [`HubHandle`](crate::compat::HubHandle).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::io;
use std::panic::Location;
use std::sync::{Mutex, OnceLock, PoisonError};

use ::tokio::runtime::{Builder, Handle, Runtime};
use ::tokio::task::JoinHandle;

use super::block_on::block_on_at;
use crate::cancel::Cancelled;
use crate::runtime;
use crate::runtime::panic_message;

/// The environment variable read for the worker thread count.
const THREADS_ENV: &str = "SYLVAN_TOKIO_THREADS";

struct Config {
    threads: Option<usize>,
    started: bool,
}

static CONFIG: Mutex<Config> = Mutex::new(Config {
    threads: None,
    started: false,
});
static RUNTIME: OnceLock<Runtime> = OnceLock::new();

fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        // Held while building, so `set_worker_threads` either lands before
        // or fails.
        let mut cfg = CONFIG.lock().unwrap_or_else(PoisonError::into_inner);
        cfg.started = true;
        let threads = cfg.threads.or_else(threads_from_env).unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("sylvan-tokio")
            .enable_all()
            .build()
            .unwrap_or_else(|e| {
                panic!("sylvan::compat::tokio: cannot start the shared tokio runtime: {e}")
            })
    })
}

fn threads_from_env() -> Option<usize> {
    let v = std::env::var(THREADS_ENV).ok()?;
    match v.trim().parse::<usize>() {
        Ok(n) if n > 0 => Some(n),
        _ => {
            tracing::warn!(
                "sylvan::compat::tokio: ignoring {THREADS_ENV}={v:?}: not a positive integer"
            );
            None
        }
    }
}

/// Sets the number of worker threads of the shared tokio runtime (at
/// least 1; 0 counts as 1). Only before the runtime starts, i.e. before the
/// first [`run`] or [`handle`] call of the process.
///
/// # Examples
///
/// ```
/// use sylvan::compat::tokio as ctokio;
///
/// // First thing in main:
/// ctokio::set_worker_threads(2).unwrap();
/// assert_eq!(ctokio::run(async { 1 }).unwrap(), 1);
/// // Too late now:
/// assert!(ctokio::set_worker_threads(4).is_err());
/// ```
///
/// # Errors
///
/// [`AlreadyStarted`] once the runtime is running; the setting is then
/// ignored.
pub fn set_worker_threads(n: usize) -> Result<(), AlreadyStarted> {
    let mut cfg = CONFIG.lock().unwrap_or_else(PoisonError::into_inner);
    if cfg.started {
        return Err(AlreadyStarted(()));
    }
    cfg.threads = Some(n.max(1));
    Ok(())
}

/// The error of [`set_worker_threads`] once the shared runtime is running.
///
/// # Examples
///
/// ```
/// use sylvan::compat::tokio as ctokio;
///
/// let _ = ctokio::handle(); // starts the runtime
/// let err = ctokio::set_worker_threads(8).unwrap_err();
/// assert_eq!(err.to_string(), "the shared tokio runtime has already started");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlreadyStarted(());

impl fmt::Display for AlreadyStarted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the shared tokio runtime has already started")
    }
}

impl std::error::Error for AlreadyStarted {}

/// The shared tokio runtime's handle, starting the runtime if needed:
/// spawn detached tasks on it, or enter it for code that needs a runtime
/// context.
///
/// # Examples
///
/// ```
/// let handle = sylvan::compat::tokio::handle();
/// let task = handle.spawn(async { tokio::task::yield_now().await; "from tokio" });
/// // A tokio JoinHandle is a runtime-agnostic future: block on it directly.
/// assert_eq!(sylvan::block_on(task).unwrap().unwrap(), "from tokio");
/// ```
///
/// # Panics
///
/// If the runtime can't be started (the OS refuses a thread or an epoll
/// instance), with tokio's error.
pub fn handle() -> Handle {
    runtime().handle().clone()
}

/// Runs `future` as a task of the shared tokio runtime and parks the
/// calling green thread (or root context) until it finishes; returns its
/// output.
///
/// Use it for futures that need tokio — its sockets, timers, or a client
/// built on them. The hub runs its other green threads meanwhile, and any
/// number of green threads on any number of hubs may be in `run` at once.
/// A future that needs no runtime can go to [`block_on`](crate::block_on)
/// directly, without the trip to another thread.
///
/// Don't call it from one of the shared runtime's own threads (inside a
/// task on it): it would block that worker.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let v = sylvan::compat::tokio::run(async {
///     tokio::time::sleep(Duration::from_millis(5)).await; // needs tokio's timer
///     7
/// });
/// assert_eq!(v.unwrap(), 7);
/// ```
///
/// # Cancellation
///
/// If the caller was already cancelled, returns
/// [`RunError::Cancelled`] without spawning anything. If it is killed, or
/// the deadline of an enclosing [`timeout`](crate::timeout) /
/// [`deadline`](crate::deadline) scope passes, while the task runs, returns
/// `RunError::Cancelled` at once and aborts the tokio task
/// (`JoinHandle::abort`): tokio drops the future on one of its threads at
/// its next `.await` point — right away if it is waiting, after its current
/// poll if it is running — so the future's own cancellation runs there,
/// shortly after `run` has returned. The same happens if the green thread
/// is unwound while it waits (its hub shutting down).
///
/// # Virtual time
///
/// While the task runs, the hub's paused clock (see
/// [`time::pause`](crate::time::pause)) does not jump ahead on its own, as
/// for [`tpool::execute`](crate::tpool::execute): a `timeout` around `run`
/// keeps its meaning under virtual time. tokio's own timers follow real
/// time.
///
/// # Errors
///
/// [`RunError::Cancelled`] as above; [`RunError::Panicked`] with the
/// payload if the future panicked.
///
/// # Panics
///
/// As [`handle`].
#[track_caller]
pub fn run<F>(future: F) -> Result<F::Output, RunError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let loc = Location::caller();
    runtime::check_cancelled()?;
    let mut task = AbortOnDrop(handle().spawn(future));
    let _inflight = runtime::RemoteOp::begin();
    match block_on_at(loc, &mut task.0)? {
        Ok(v) => Ok(v),
        Err(e) => match e.try_into_panic() {
            Ok(p) => Err(RunError::Panicked(p)),
            Err(_) => Err(RunError::Aborted),
        },
    }
}

/// Aborts the tokio task when dropped (a no-op once it has finished).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why [`run`] returned no value.
#[non_exhaustive]
pub enum RunError {
    /// The caller was killed, or its scoped deadline passed; the tokio task
    /// was aborted.
    Cancelled(Cancelled),
    /// The future panicked; the payload is what it panicked with.
    Panicked(Box<dyn Any + Send + 'static>),
    /// The tokio task was cancelled from the tokio side. The shared runtime
    /// never shuts down, so this does not happen today; it is kept for
    /// completeness.
    Aborted,
}

impl RunError {
    /// The panic message, if the future panicked with a string.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = sylvan::compat::tokio::run(async { panic!("in tokio") }).unwrap_err();
    /// assert_eq!(err.panic_message(), Some("in tokio"));
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            RunError::Panicked(p) => Some(panic_message(p.as_ref())),
            _ => None,
        }
    }

    /// The cancellation, if the caller was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let r = sylvan::timeout(Duration::from_millis(5), || {
    ///     let err = sylvan::compat::tokio::run(std::future::pending::<()>()).unwrap_err();
    ///     assert!(err.cancelled().unwrap().is_timed_out());
    /// });
    /// assert!(r.is_err());
    /// ```
    pub fn cancelled(&self) -> Option<Cancelled> {
        match self {
            RunError::Cancelled(c) => Some(*c),
            _ => None,
        }
    }
}

impl From<Cancelled> for RunError {
    fn from(c: Cancelled) -> RunError {
        RunError::Cancelled(c)
    }
}

impl fmt::Debug for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Cancelled(c) => f.debug_tuple("Cancelled").field(c).finish(),
            RunError::Panicked(p) => f
                .debug_tuple("Panicked")
                .field(&panic_message(p.as_ref()))
                .finish(),
            RunError::Aborted => f.write_str("Aborted"),
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Cancelled(c) => write!(f, "tokio task cancelled: {c}"),
            RunError::Panicked(p) => {
                write!(f, "tokio task panicked: {}", panic_message(p.as_ref()))
            }
            RunError::Aborted => f.write_str("tokio task was cancelled by its runtime"),
        }
    }
}

impl std::error::Error for RunError {}

/// `Cancelled` converts as [`Cancelled`] does (kind `TimedOut` for a
/// deadline), so `?` in an `io::Result` function keeps that meaning; a
/// panic or an abort becomes kind `Other`.
impl From<RunError> for io::Error {
    fn from(e: RunError) -> io::Error {
        match e {
            RunError::Cancelled(c) => c.into(),
            other => io::Error::other(other.to_string()),
        }
    }
}
