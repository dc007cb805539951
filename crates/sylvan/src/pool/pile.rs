//! [`GreenPile`], and the in-order result list it shares with
//! [`Imap`](super::Imap).

use std::collections::VecDeque;
use std::fmt;
use std::panic::Location;

use super::{Admission, GreenPool, SpawnError, log_lost_panic};
use crate::green::{GreenThread, JoinError, catch_panic};
use crate::runtime;

/// A job of a pile: running in the pool, or already run inline.
pub(super) enum Job<T> {
    Running(GreenThread<T>),
    Done(Result<T, JoinError>),
}

/// Results taken in the order their jobs were started.
///
/// The job at the front stays there until its result has been handed out,
/// so a wait that is cancelled loses nothing (Eventlet's issue #91 popped
/// it first and lost it). An advance right after a cancelled one, made
/// while the caller is still cancelled (a kill, or the same expired
/// deadline: both are sticky), gives `None` instead of a second error, so
/// `for` loops and `collect` end rather than spin; an advance in a live
/// context resumes.
pub(super) struct Ordered<T> {
    jobs: VecDeque<Job<T>>,
    cancelled_last: bool,
}

impl<T> Ordered<T> {
    pub(super) fn new() -> Ordered<T> {
        Ordered {
            jobs: VecDeque::new(),
            cancelled_last: false,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.jobs.len()
    }

    pub(super) fn push(&mut self, job: Job<T>) {
        self.jobs.push_back(job);
    }

    /// What to yield for a cancelled wait.
    pub(super) fn cancelled(&mut self, c: crate::Cancelled) -> Option<Result<T, JoinError>> {
        self.cancelled_last = true;
        Some(Err(JoinError::Cancelled(c)))
    }

    /// Whether this advance should end the iteration (`None`): the last
    /// one was cancelled and the caller still is. Call first in each
    /// advance.
    pub(super) fn stop_after_cancel(&mut self) -> bool {
        if std::mem::take(&mut self.cancelled_last) {
            if let Err(c) = runtime::check_cancelled() {
                // Not a blocking call that failed: don't count it as one.
                runtime::retract(c);
                return true;
            }
        }
        false
    }

    /// Waits for the front job and hands out its result.
    #[track_caller]
    pub(super) fn next_result(&mut self) -> Option<Result<T, JoinError>> {
        if let Job::Running(g) = self.jobs.front()? {
            if let Err(c) = g.wait() {
                return self.cancelled(c);
            }
        }
        match self.jobs.pop_front()? {
            Job::Running(g) => Some(g.join()),
            Job::Done(r) => Some(r),
        }
    }
}

impl<T> Drop for Ordered<T> {
    fn drop(&mut self) {
        // Running jobs are detached by dropping their handles (their panics
        // get logged then); log the panics of inline jobs nobody took.
        for job in self.jobs.drain(..) {
            if let Job::Done(Err(JoinError::Panicked(p))) = job {
                log_lost_panic(p.as_ref());
            }
        }
    }
}

/// Runs one job as `admission` says: in its own slot, or inline.
pub(super) fn start<T: 'static>(admission: Admission, f: impl FnOnce() -> T + 'static) -> Job<T> {
    match admission {
        Admission::Slot(guard) => Job::Running(GreenPool::spawn_in(guard, f)),
        Admission::Inline => Job::Done(catch_panic(f).map_err(JoinError::Panicked)),
    }
}

/// Green threads spawned in a pool whose results are taken in spawn order;
/// Eventlet's `GreenPile`.
///
/// [`spawn`](Self::spawn) jobs, then iterate: each item is the next job's
/// `Result<T, JoinError>`, in the order the jobs were spawned, whatever
/// order they finish in (`Err(JoinError::Panicked(..))` if a job
/// panicked). Iteration ends when every spawned job's result was taken.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let mut pile = sylvan::GreenPile::new(10);
/// for ms in [30u64, 10, 20] {
///     pile.spawn(move || {
///         sylvan::sleep(Duration::from_millis(ms)).unwrap();
///         ms
///     })
///     .unwrap();
/// }
/// let got: Vec<u64> = pile.map(Result::unwrap).collect();
/// assert_eq!(got, vec![30, 10, 20]);
/// ```
///
/// # Cancellation
///
/// If the green thread iterating is killed or its deadline passes while it
/// waits for a result, the iterator yields `Err(JoinError::Cancelled(..))`.
/// The result it was waiting for is not lost: it stays first in line, and
/// advancing the pile again (outside the expired scope) yields it.
/// Eventlet's issue #91 lost it. Cancellation is sticky (a killed green
/// thread, a passed deadline), so an advance made right after, while the
/// caller is still cancelled, would fail at once again: it yields `None`
/// instead, so a `for` loop or `collect` ends rather than spin (then
/// [`len`](Self::len) is not 0).
///
/// ```
/// use std::time::Duration;
///
/// sylvan::time::pause();
/// let mut pile = sylvan::GreenPile::new(4);
/// pile.spawn(|| sylvan::sleep(Duration::from_secs(5)).map(|()| "slow")).unwrap();
/// let r = sylvan::timeout(Duration::from_secs(1), || pile.next());
/// assert!(r.is_err()); // timed out waiting
/// assert_eq!(pile.next().unwrap().unwrap(), Ok("slow")); // still there
/// assert!(pile.next().is_none());
/// ```
pub struct GreenPile<T> {
    pool: GreenPool,
    results: Ordered<T>,
}

impl<T> fmt::Debug for GreenPile<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GreenPile")
            .field("pending", &self.results.len())
            .field("pool", &self.pool)
            .finish()
    }
}

impl<T: 'static> Default for GreenPile<T> {
    /// A pile with a pool of its own of 1000, Eventlet's default.
    fn default() -> Self {
        GreenPile::with_pool(&GreenPool::default())
    }
}

impl<T: 'static> GreenPile<T> {
    /// A pile with a pool of its own of `size` green threads.
    ///
    /// # Examples
    ///
    /// ```
    /// let pile = sylvan::GreenPile::<u8>::new(3);
    /// assert_eq!(pile.pool().size(), 3);
    /// ```
    pub fn new(size: usize) -> GreenPile<T> {
        GreenPile::with_pool(&GreenPool::new(size))
    }

    /// A pile that spawns into `pool` (shared with whoever else uses it).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = sylvan::GreenPool::new(8);
    /// let mut pile = sylvan::GreenPile::with_pool(&pool);
    /// pile.spawn(|| 1).unwrap();
    /// assert_eq!(pool.running(), 1);
    /// assert_eq!(pile.next().unwrap().unwrap(), 1);
    /// ```
    pub fn with_pool(pool: &GreenPool) -> GreenPile<T> {
        GreenPile {
            pool: pool.clone(),
            results: Ordered::new(),
        }
    }

    /// Spawns `f` in the pile's pool, waiting while the pool is full (run
    /// inline when called by a member of that full pool, as
    /// [`GreenPool::spawn`] does).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut pile = sylvan::GreenPile::new(2);
    /// pile.spawn(|| "a").unwrap();
    /// assert_eq!(pile.len(), 1);
    /// ```
    ///
    /// # Cancellation
    ///
    /// If the caller is killed or its deadline passes while waiting for a
    /// slot, returns [`SpawnError`] holding `f`, which was not spawned; the
    /// pile is unchanged.
    ///
    /// # Errors
    ///
    /// Only cancellation.
    ///
    /// # Panics
    ///
    /// If no stack can be allocated, as [`sylvan::spawn`](crate::spawn).
    #[track_caller]
    pub fn spawn<F>(&mut self, f: F) -> Result<(), SpawnError<F>>
    where
        F: FnOnce() -> T + 'static,
    {
        match self.pool.admit(Location::caller()) {
            Ok(a) => {
                self.results.push(start(a, f));
                Ok(())
            }
            Err(cause) => Err(SpawnError { f, cause }),
        }
    }

    /// Jobs whose results have not been taken yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut pile = sylvan::GreenPile::new(2);
    /// assert!(pile.is_empty());
    /// pile.spawn(|| ()).unwrap();
    /// pile.next();
    /// assert_eq!(pile.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.results.len()
    }

    /// Whether every spawned job's result has been taken.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(sylvan::GreenPile::<()>::new(1).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pool the pile spawns into.
    ///
    /// # Examples
    ///
    /// ```
    /// let pile = sylvan::GreenPile::<()>::default();
    /// assert_eq!(pile.pool().size(), 1000);
    /// ```
    pub fn pool(&self) -> &GreenPool {
        &self.pool
    }
}

impl<T> Iterator for GreenPile<T> {
    type Item = Result<T, JoinError>;

    /// The next result in spawn order, waiting for it; `None` when every
    /// result was taken. See the type's `# Cancellation`.
    #[track_caller]
    fn next(&mut self) -> Option<Result<T, JoinError>> {
        if self.results.stop_after_cancel() {
            return None;
        }
        self.results.next_result()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.results.len()))
    }
}
