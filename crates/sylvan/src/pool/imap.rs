//! [`Imap`]: the iterator of [`GreenPool::imap`].

use std::fmt;
use std::panic::Location;
use std::rc::Rc;

use super::GreenPool;
use super::pile::{Ordered, start};
use crate::green::JoinError;

/// The results of [`GreenPool::imap`], in input order.
///
/// Each advance first starts jobs for more input items while fewer than
/// the pool's size are pending and the pool has room (waiting for room
/// only when nothing is pending), then waits for the oldest job's result.
///
/// # Examples
///
/// ```
/// let pool = sylvan::GreenPool::new(2);
/// let mut it = pool.imap(|s: &str| s.len(), ["a", "bb", "ccc"]);
/// assert_eq!(it.next().unwrap().unwrap(), 1);
/// let rest: Vec<usize> = it.map(Result::unwrap).collect();
/// assert_eq!(rest, vec![2, 3]);
/// ```
///
/// # Cancellation
///
/// If the iterating green thread is killed or its deadline passes while it
/// waits (for a result, or for room in the pool), the iterator yields
/// `Err(JoinError::Cancelled(..))`. Nothing is lost: the awaited result
/// stays first in line, and an input item is taken only once a slot for it
/// is held. Advancing again outside the expired scope resumes; advancing
/// right after while still cancelled (a sticky kill or deadline) yields
/// `None`, so loops end rather than spin. See
/// [`GreenPile`](crate::GreenPile).
pub struct Imap<I: Iterator, T> {
    pool: GreenPool,
    f: Rc<dyn Fn(I::Item) -> T>,
    /// `None` once exhausted.
    input: Option<I>,
    results: Ordered<T>,
}

impl<I: Iterator, T> fmt::Debug for Imap<I, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap")
            .field("pending", &self.results.len())
            .field("input_done", &self.input.is_none())
            .field("pool", &self.pool)
            .finish()
    }
}

impl<I, T> Imap<I, T>
where
    I: Iterator,
    I::Item: 'static,
    T: 'static,
{
    pub(super) fn new(pool: GreenPool, f: Rc<dyn Fn(I::Item) -> T>, input: I) -> Imap<I, T> {
        Imap {
            pool,
            f,
            input: Some(input),
            results: Ordered::new(),
        }
    }

    /// Starts jobs for more input while that stays within bounds.
    fn top_up(&mut self, loc: &'static Location<'static>) -> Result<(), crate::Cancelled> {
        while let Some(input) = &mut self.input {
            if self.results.len() >= self.pool.size().max(1) {
                break;
            }
            let admission = if self.results.len() == 0 {
                self.pool.admit(loc)?
            } else {
                match self.pool.try_admit() {
                    Some(a) => a,
                    None => break,
                }
            };
            match input.next() {
                Some(item) => {
                    let f = self.f.clone();
                    self.results.push(start(admission, move || f(item)));
                }
                // Dropping the admission frees its slot.
                None => self.input = None,
            }
        }
        Ok(())
    }
}

impl<I, T> Iterator for Imap<I, T>
where
    I: Iterator,
    I::Item: 'static,
    T: 'static,
{
    type Item = Result<T, JoinError>;

    /// The next result in input order; see the type's `# Cancellation`.
    #[track_caller]
    fn next(&mut self) -> Option<Result<T, JoinError>> {
        if self.results.stop_after_cancel() {
            return None;
        }
        if let Err(c) = self.top_up(Location::caller()) {
            return self.results.cancelled(c);
        }
        self.results.next_result()
    }
}
