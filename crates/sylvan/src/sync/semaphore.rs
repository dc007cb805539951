//! [`Semaphore`]: a counter of permits for green threads of one hub.

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::panic::Location;
use std::rc::Rc;

use crate::cancel::Cancelled;
use crate::runtime::{self, WaitList, WakeToken};

/// A counting semaphore for green threads of one hub; Eventlet's
/// `Semaphore` (and, with [`Semaphore::bounded`], `BoundedSemaphore`).
///
/// [`acquire`](Self::acquire) takes a permit, waiting while there is none,
/// and returns a [`SemaphorePermit`] that gives it back when dropped.
///
/// **Fair**: waiters get permits in the order they started waiting, and a
/// newcomer never overtakes them (`acquire` and `try_acquire` wait or fail
/// while anyone is queued). A released permit is handed directly to the
/// oldest waiter, so no permit is lost or duplicated when waiters are
/// killed or time out.
///
/// A handle (`Clone`, not `Send`) to state shared by the green threads of
/// one OS thread.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use sylvan::sync::Semaphore;
///
/// let sem = Semaphore::new(2);
/// let inside = Rc::new(Cell::new(0));
/// let most = Rc::new(Cell::new(0));
/// let workers: Vec<_> = (0..6)
///     .map(|_| {
///         let (sem, inside, most) = (sem.clone(), inside.clone(), most.clone());
///         sylvan::spawn(move || {
///             let _permit = sem.acquire()?;
///             inside.set(inside.get() + 1);
///             most.set(most.get().max(inside.get()));
///             sylvan::sleep(Duration::from_millis(1))?;
///             inside.set(inside.get() - 1);
///             Ok::<_, sylvan::Cancelled>(())
///         })
///     })
///     .collect();
/// for w in workers {
///     w.join().unwrap().unwrap();
/// }
/// assert_eq!(most.get(), 2);
/// assert_eq!(sem.available_permits(), 2);
/// ```
pub struct Semaphore {
    inner: Rc<Inner>,
}

struct Inner {
    /// Permits free to take.
    permits: Cell<usize>,
    /// Permits held by `SemaphorePermit`s (or handed to a woken waiter
    /// that has not run yet).
    held: Cell<usize>,
    /// For a bounded semaphore: most permits there may ever be.
    bound: Option<usize>,
    waiters: RefCell<WaitList>,
    /// Waiters still waiting (not yet handed a permit, not cancelled).
    queued: Cell<usize>,
}

impl Clone for Semaphore {
    fn clone(&self) -> Self {
        Semaphore {
            inner: self.inner.clone(),
        }
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.inner.permits.get())
            .field("held", &self.inner.held.get())
            .field("waiting", &self.inner.queued.get())
            .field("bound", &self.inner.bound)
            .finish()
    }
}

impl Semaphore {
    fn with(permits: usize, bound: Option<usize>) -> Semaphore {
        Semaphore {
            inner: Rc::new(Inner {
                permits: Cell::new(permits),
                held: Cell::new(0),
                bound,
                waiters: RefCell::new(WaitList::default()),
                queued: Cell::new(0),
            }),
        }
    }

    /// A semaphore with `permits` permits; [`add_permits`](Self::add_permits)
    /// may raise the count without limit.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = sylvan::sync::Semaphore::new(3);
    /// assert_eq!(sem.available_permits(), 3);
    /// ```
    pub fn new(permits: usize) -> Semaphore {
        Semaphore::with(permits, None)
    }

    /// A semaphore with `permits` permits that refuses to ever hold more:
    /// Eventlet's `BoundedSemaphore`. Permits given back by dropping a
    /// [`SemaphorePermit`] always fit; [`add_permits`](Self::add_permits)
    /// can only restore permits that were [`forget`](SemaphorePermit::forget)-ed.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = sylvan::sync::Semaphore::bounded(1);
    /// assert!(sem.add_permits(1).is_err()); // would make 2
    /// sem.try_acquire().unwrap().forget();
    /// assert!(sem.add_permits(1).is_ok()); // back to 1
    /// ```
    pub fn bounded(permits: usize) -> Semaphore {
        Semaphore::with(permits, Some(permits))
    }

    /// Takes a permit, waiting (first come, first served) until one is
    /// free.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = sylvan::sync::Semaphore::new(1);
    /// let permit = sem.acquire().unwrap();
    /// assert_eq!(sem.available_permits(), 0);
    /// drop(permit);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    ///
    /// # Cancellation
    ///
    /// If the green thread is killed or its deadline passes while waiting,
    /// returns [`Cancelled`]; it holds no permit and is no longer queued. A
    /// permit is handed over only to a waiter that is still waiting, and
    /// such a waiter always returns it in its `Ok`: permits are never lost
    /// or duplicated. (If the green thread is killed after being handed a
    /// permit but before it ran, `acquire` still returns `Ok`; the kill
    /// shows at its next blocking call.)
    ///
    /// # Errors
    ///
    /// Only cancellation, as above.
    #[track_caller]
    pub fn acquire(&self) -> Result<SemaphorePermit, Cancelled> {
        if let Some(p) = self.try_acquire() {
            return Ok(p);
        }
        let inner = &*self.inner;
        let mut registered = false;
        // Unwound while parked (the hub's forced unwind at shutdown): give
        // back the permit if one was handed over, else leave the queue.
        struct Unwound<'a>(&'a Semaphore);
        impl Drop for Unwound<'_> {
            fn drop(&mut self) {
                let inner = &*self.0.inner;
                if runtime::woken_before_unwind() {
                    drop(SemaphorePermit {
                        sem: Some(self.0.clone()),
                    });
                } else {
                    inner.queued.set(inner.queued.get() - 1);
                    if runtime::has_hub() {
                        inner.waiters.borrow_mut().cancelled();
                    }
                    self.0.fill();
                }
            }
        }
        let mut unwound = None;
        let r = runtime::park_at(Location::caller(), None, |t| {
            registered = true;
            inner.waiters.borrow_mut().push(t);
            inner.queued.set(inner.queued.get() + 1);
            unwound = Some(Unwound(self));
        });
        std::mem::forget(unwound);
        match r {
            // Only a release wakes our token, and it handed us its permit
            // (already counted in `held`).
            Ok(_) => Ok(SemaphorePermit {
                sem: Some(self.clone()),
            }),
            Err(c) => {
                if registered {
                    inner.queued.set(inner.queued.get() - 1);
                    inner.waiters.borrow_mut().cancelled();
                    // While we were still counted as queued, a newcomer may
                    // have queued behind us although permits were free.
                    self.fill();
                }
                Err(c)
            }
        }
    }

    /// Takes a permit if one is free and nobody is waiting; never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = sylvan::sync::Semaphore::new(1);
    /// let p = sem.try_acquire();
    /// assert!(p.is_some());
    /// assert!(sem.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit> {
        let inner = &*self.inner;
        let n = inner.permits.get();
        if n == 0 || inner.queued.get() > 0 {
            return None;
        }
        inner.permits.set(n - 1);
        inner.held.set(inner.held.get() + 1);
        Some(SemaphorePermit {
            sem: Some(self.clone()),
        })
    }

    /// Adds `n` permits, handing them to waiters first (oldest first).
    ///
    /// # Errors
    ///
    /// For a [`bounded`](Self::bounded) semaphore, [`OverLimit`] if the
    /// permits there are (free, held, and `n` more) would exceed the bound;
    /// nothing is added then. Never for one made by [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = sylvan::sync::Semaphore::new(0);
    /// sem.add_permits(2).unwrap();
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn add_permits(&self, n: usize) -> Result<(), OverLimit> {
        let inner = &*self.inner;
        if let Some(bound) = inner.bound {
            let total = inner.permits.get() + inner.held.get();
            if total.checked_add(n).is_none_or(|t| t > bound) {
                return Err(OverLimit { bound });
            }
        }
        self.give(n);
        Ok(())
    }

    /// Adds `n` free permits and hands them to waiters.
    fn give(&self, n: usize) {
        let inner = &*self.inner;
        inner.permits.set(inner.permits.get() + n);
        self.fill();
    }

    /// Hands free permits to waiters, oldest first.
    ///
    /// `notify_one` skips waiters that were cancelled; it may find no live
    /// one while `queued` still counts some whose cancellation has not run
    /// yet (a killed waiter queued to run). Their permits stay free, and
    /// each calls `fill` again when it leaves the queue.
    fn fill(&self) {
        let inner = &*self.inner;
        while inner.permits.get() > 0 && inner.queued.get() > 0 {
            if !inner.waiters.borrow_mut().wake_one() {
                break;
            }
            inner.permits.set(inner.permits.get() - 1);
            inner.queued.set(inner.queued.get() - 1);
            inner.held.set(inner.held.get() + 1);
        }
    }

    /// Registers a multi-way park (`select`) as a waiter: queued like
    /// [`acquire`](Self::acquire), so a release hands it a permit when it
    /// wakes it through this registration.
    pub(crate) fn register(&self, token: WakeToken, arm: u32) {
        let inner = &*self.inner;
        inner.waiters.borrow_mut().push_arm(token, arm);
        inner.queued.set(inner.queued.get() + 1);
    }

    /// The permit a release handed to a multi-way park it woke through
    /// its registration here (already counted as held).
    pub(crate) fn handed_permit(&self) -> SemaphorePermit {
        SemaphorePermit {
            sem: Some(self.clone()),
        }
    }

    /// A multi-way park stops waiting without taking a permit. If this
    /// semaphore woke it (`notified`), the permit it was handed goes back
    /// (to the next waiter); otherwise it leaves the queue, as a cancelled
    /// [`acquire`](Self::acquire) does.
    pub(crate) fn unregister(&self, notified: bool) {
        let inner = &*self.inner;
        if notified {
            drop(self.handed_permit());
        } else {
            inner.queued.set(inner.queued.get() - 1);
            inner.waiters.borrow_mut().cancelled();
            self.fill();
        }
    }

    /// Permits free to take now.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = sylvan::sync::Semaphore::new(2);
    /// let _p = sem.acquire().unwrap();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.inner.permits.get()
    }

    /// Green threads waiting in [`acquire`](Self::acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = sylvan::sync::Semaphore::new(0);
    /// let s = sem.clone();
    /// let g = sylvan::spawn(move || s.acquire().map(drop));
    /// sylvan::yield_now();
    /// assert_eq!(sem.waiting(), 1);
    /// sem.add_permits(1).unwrap();
    /// g.join().unwrap().unwrap();
    /// assert_eq!(sem.waiting(), 0);
    /// ```
    pub fn waiting(&self) -> usize {
        self.inner.queued.get()
    }

    /// The bound of a [`bounded`](Self::bounded) semaphore.
    ///
    /// # Examples
    ///
    /// ```
    /// use sylvan::sync::Semaphore;
    ///
    /// assert_eq!(Semaphore::bounded(4).bound(), Some(4));
    /// assert_eq!(Semaphore::new(4).bound(), None);
    /// ```
    pub fn bound(&self) -> Option<usize> {
        self.inner.bound
    }
}

/// A permit taken from a [`Semaphore`]; gives it back when dropped.
///
/// It holds a handle to the semaphore (no borrow), so it can be moved into
/// a green thread that gives the permit back when it finishes.
///
/// # Examples
///
/// ```
/// let sem = sylvan::sync::Semaphore::new(1);
/// let permit = sem.acquire().unwrap();
/// let g = sylvan::spawn(move || {
///     let _permit = permit; // released when this green thread ends
/// });
/// g.join().unwrap();
/// assert_eq!(sem.available_permits(), 1);
/// ```
pub struct SemaphorePermit {
    sem: Option<Semaphore>,
}

impl SemaphorePermit {
    /// Consumes the permit without giving it back: the semaphore has one
    /// permit fewer from now on (until [`Semaphore::add_permits`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = sylvan::sync::Semaphore::new(1);
    /// sem.acquire().unwrap().forget();
    /// assert_eq!(sem.available_permits(), 0);
    /// ```
    pub fn forget(mut self) {
        if let Some(sem) = self.sem.take() {
            sem.inner.held.set(sem.inner.held.get() - 1);
        }
    }
}

impl Drop for SemaphorePermit {
    fn drop(&mut self) {
        if let Some(sem) = self.sem.take() {
            sem.inner.held.set(sem.inner.held.get() - 1);
            sem.give(1);
        }
    }
}

impl fmt::Debug for SemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}

/// [`Semaphore::add_permits`] on a bounded semaphore would exceed its
/// bound.
///
/// # Examples
///
/// ```
/// let e = sylvan::sync::Semaphore::bounded(2).add_permits(1).unwrap_err();
/// assert_eq!(e.bound(), 2);
/// assert_eq!(e.to_string(), "adding permits would exceed the semaphore's bound of 2");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit {
    bound: usize,
}

impl OverLimit {
    /// The semaphore's bound.
    pub fn bound(&self) -> usize {
        self.bound
    }
}

impl fmt::Display for OverLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "adding permits would exceed the semaphore's bound of {}",
            self.bound
        )
    }
}

impl Error for OverLimit {}
