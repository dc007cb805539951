//! [`ImapUnordered`]: the iterator of [`GreenPool::imap_unordered`].

use std::fmt;
use std::panic::Location;
use std::rc::Rc;

use super::{Admission, GreenPool};
use crate::cancel::Cancelled;
use crate::green::{JoinError, catch_panic};
use crate::runtime;
use crate::sync::{GetError, Queue};

/// The results of [`GreenPool::imap_unordered`], in the order the jobs
/// finish.
///
/// Each advance first starts jobs for more input items while fewer than
/// the pool's size are pending and the pool has room (waiting for room
/// only when nothing is pending), then waits for whichever job finishes
/// first.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// sylvan::time::pause();
/// let pool = sylvan::GreenPool::new(3);
/// let firsts: Vec<u64> = pool
///     .imap_unordered(
///         |s: u64| {
///             sylvan::sleep(Duration::from_secs(s)).unwrap();
///             s
///         },
///         [3, 1, 2],
///     )
///     .map(Result::unwrap)
///     .collect();
/// assert_eq!(firsts, vec![1, 2, 3]); // as they finished
/// ```
///
/// # Cancellation
///
/// If the iterating green thread is killed or its deadline passes while it
/// waits (for a result, or for room in the pool), the iterator yields
/// `Err(JoinError::Cancelled(..))`. Nothing is lost: finished results stay
/// queued, and an input item is taken only once a slot for it is held.
/// Advancing again outside the expired scope resumes; advancing right
/// after while still cancelled (a sticky kill or deadline) yields `None`,
/// so loops end rather than spin.
///
/// A job killed before it ran (say by [`GreenPool::kill_all`]) yields
/// `Err(JoinError::Killed)`. Dropping the iterator leaves running jobs
/// running; their results are dropped.
pub struct ImapUnordered<I: Iterator, T> {
    pool: GreenPool,
    f: Rc<dyn Fn(I::Item) -> T>,
    /// `None` once exhausted.
    input: Option<I>,
    /// Results of finished jobs, in the order they finished.
    done: Queue<Result<T, JoinError>>,
    /// Jobs started whose result has not been handed out.
    pending: usize,
    cancelled_last: bool,
}

impl<I: Iterator, T> fmt::Debug for ImapUnordered<I, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapUnordered")
            .field("pending", &self.pending)
            .field("finished", &self.done.len())
            .field("input_done", &self.input.is_none())
            .field("pool", &self.pool)
            .finish()
    }
}

/// Hands a job's result over; `Killed` if the job ends without one (it
/// was killed before it ran, or unwound at hub shutdown).
struct Deliver<T> {
    to: Queue<Result<T, JoinError>>,
    sent: bool,
}

impl<T> Deliver<T> {
    fn send(mut self, r: Result<T, JoinError>) {
        self.sent = true;
        // Unbounded and never closed: cannot fail.
        let _ = self.to.try_put(r);
    }
}

impl<T> Drop for Deliver<T> {
    fn drop(&mut self) {
        if !self.sent {
            let _ = self.to.try_put(Err(JoinError::Killed));
        }
    }
}

impl<I, T> ImapUnordered<I, T>
where
    I: Iterator,
    I::Item: 'static,
    T: 'static,
{
    pub(super) fn new(pool: GreenPool, f: Rc<dyn Fn(I::Item) -> T>, input: I) -> Self {
        ImapUnordered {
            pool,
            f,
            input: Some(input),
            done: Queue::unbounded(),
            pending: 0,
            cancelled_last: false,
        }
    }

    /// Starts jobs for more input while that stays within bounds.
    fn top_up(&mut self, loc: &'static Location<'static>) -> Result<(), Cancelled> {
        while let Some(input) = &mut self.input {
            if self.pending >= self.pool.size().max(1) {
                break;
            }
            let admission = if self.pending == 0 {
                self.pool.admit(loc)?
            } else {
                match self.pool.try_admit() {
                    Some(a) => a,
                    None => break,
                }
            };
            let Some(item) = input.next() else {
                // Dropping the admission frees its slot.
                self.input = None;
                break;
            };
            let (f, deliver) = (
                self.f.clone(),
                Deliver {
                    to: self.done.clone(),
                    sent: false,
                },
            );
            let job = move || {
                let r = catch_panic(|| f(item)).map_err(JoinError::Panicked);
                deliver.send(r);
            };
            self.pending += 1;
            match admission {
                // The handle is dropped: the result comes through `done`.
                Admission::Slot(guard) => drop(GreenPool::spawn_in(guard, job)),
                Admission::Inline => job(),
            }
        }
        Ok(())
    }

    fn cancelled(&mut self, c: Cancelled) -> Option<Result<T, JoinError>> {
        self.cancelled_last = true;
        Some(Err(JoinError::Cancelled(c)))
    }
}

impl<I, T> Iterator for ImapUnordered<I, T>
where
    I: Iterator,
    I::Item: 'static,
    T: 'static,
{
    type Item = Result<T, JoinError>;

    /// The next result to finish; see the type's `# Cancellation`.
    #[track_caller]
    fn next(&mut self) -> Option<Result<T, JoinError>> {
        if std::mem::take(&mut self.cancelled_last) {
            if let Err(c) = runtime::check_cancelled() {
                // Not a blocking call that failed: don't count it as one.
                runtime::retract(c);
                return None;
            }
        }
        let loc = Location::caller();
        if let Err(c) = self.top_up(loc) {
            return self.cancelled(c);
        }
        if self.pending == 0 {
            return None;
        }
        match self.done.get() {
            Ok(r) => {
                self.pending -= 1;
                Some(r)
            }
            Err(GetError::Cancelled(c)) => self.cancelled(c),
            Err(e) => unreachable!("the results queue is never closed: {e}"),
        }
    }
}
