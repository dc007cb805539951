use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::Location;
use std::rc::Rc;

use crate::cancel::Cancelled;
use crate::runtime::{self, WaitList, WakeToken};

/// A value sent once and awaited by any number of green threads; Eventlet's
/// `Event`.
///
/// # Examples
///
/// ```
/// use sylvan::sync::Event;
///
/// let ev = Event::new();
/// let waiter = {
///     let ev = ev.clone();
///     sylvan::spawn(move || ev.wait())
/// };
/// ev.send("ready").unwrap();
/// assert_eq!(waiter.join().unwrap(), Ok("ready"));
/// assert!(ev.ready());
/// ```
///
/// # Reuse
///
/// [`reset`](Self::reset) makes a sent event unsent again, so it can be
/// sent anew (Eventlet's `Event.reset`). Resetting never takes a value
/// away from a green thread that the send already woke: a waiter returns
/// a value sent after it began waiting, even if the event was reset
/// before it got to run (if several sends and resets happened meanwhile,
/// the latest value).
///
/// # A result or an error: gevent's `AsyncResult`
///
/// `Event<Result<T, E>>` is gevent's `AsyncResult`: `send(Ok(v))` is
/// `set(v)`, `send(Err(e))` is `set_exception(e)`, and `wait()` hands
/// every waiter a clone of whichever was sent (so `E: Clone`; wrap a
/// non-`Clone` error in an `Rc`).
///
/// ```
/// use std::rc::Rc;
/// use sylvan::sync::Event;
///
/// let result: Event<Result<u32, Rc<std::io::Error>>> = Event::new();
/// let waiter = {
///     let result = result.clone();
///     sylvan::spawn(move || result.wait())
/// };
/// let e = std::io::Error::other("backend down");
/// result.send(Err(Rc::new(e))).unwrap(); // set_exception
/// let got = waiter.join().unwrap().unwrap(); // the wait itself succeeded
/// assert_eq!(got.unwrap_err().to_string(), "backend down");
/// ```
pub struct Event<T> {
    inner: Rc<Inner<T>>,
}

struct Inner<T> {
    /// The latest value sent; kept after a `reset` for the waiters its
    /// send woke, until the next send replaces it.
    value: RefCell<Option<T>>,
    /// Whether the event is sent (not reset since).
    set: Cell<bool>,
    /// How many sends there were.
    sends: Cell<u64>,
    waiters: RefCell<WaitList>,
}

impl<T> Clone for Event<T> {
    fn clone(&self) -> Self {
        Event {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Default for Event<T> {
    fn default() -> Self {
        Event::new()
    }
}

impl<T> fmt::Debug for Event<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("ready", &self.ready())
            .finish()
    }
}

impl<T> Event<T> {
    /// A new event with no value yet.
    pub fn new() -> Event<T> {
        Event {
            inner: Rc::new(Inner {
                value: RefCell::new(None),
                set: Cell::new(false),
                sends: Cell::new(0),
                waiters: RefCell::new(WaitList::default()),
            }),
        }
    }

    /// Sets the value and wakes every waiter. Never blocks.
    ///
    /// # Errors
    ///
    /// If a value was sent already, hands `value` back.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev = sylvan::sync::Event::new();
    /// assert_eq!(ev.send(1), Ok(()));
    /// assert_eq!(ev.send(2), Err(2));
    /// ```
    pub fn send(&self, value: T) -> Result<(), T> {
        if self.inner.set.get() {
            return Err(value);
        }
        // The value of an earlier send (kept for its waiters after a
        // reset) is dropped here, outside the borrow.
        let old = self.inner.value.replace(Some(value));
        self.inner.set.set(true);
        self.inner.sends.set(self.inner.sends.get() + 1);
        self.inner.waiters.borrow_mut().wake_all();
        drop(old);
        Ok(())
    }

    /// Makes a sent event unsent, so it can be [sent](Self::send) again;
    /// Eventlet's `Event.reset`. Never blocks; does nothing if no value is
    /// set. Returns whether one was.
    ///
    /// Waiters that the last send already woke still return its value
    /// (see `# Reuse` on [`Event`]); later `wait`s wait for the next send.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev = sylvan::sync::Event::new();
    /// ev.send(1).unwrap();
    /// assert!(ev.reset());
    /// assert!(!ev.ready());
    /// assert_eq!(ev.try_get(), None);
    /// ev.send(2).unwrap(); // sendable again
    /// assert_eq!(ev.wait(), Ok(2));
    /// ```
    pub fn reset(&self) -> bool {
        self.inner.set.replace(false)
    }

    /// Whether a value has been sent.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev = sylvan::sync::Event::new();
    /// assert!(!ev.ready());
    /// ev.send(()).unwrap();
    /// assert!(ev.ready());
    /// ```
    pub fn ready(&self) -> bool {
        self.inner.set.get()
    }
}

impl<T> Event<T> {
    /// How many sends there were (for a wait that began now).
    pub(crate) fn sends(&self) -> u64 {
        self.inner.sends.get()
    }

    /// Whether a wait that began when [`sends`](Self::sends) was `start`
    /// would return now.
    pub(crate) fn ready_since(&self, start: u64) -> bool {
        self.inner.set.get() || self.inner.sends.get() != start
    }

    /// Registers a multi-way park (`select`, `iwait`) as a waiter.
    pub(crate) fn register(&self, token: WakeToken, arm: u32) {
        self.inner.waiters.borrow_mut().push_arm(token, arm);
    }

    /// A multi-way park stops waiting (`notified`: this event woke it;
    /// every waiter was woken then, so nothing passes on).
    pub(crate) fn unregister(&self, notified: bool) {
        if !notified {
            self.inner.waiters.borrow_mut().cancelled();
        }
    }
}

impl<T: Clone> Event<T> {
    /// The value a wait that began at `start` returns, if it would return
    /// now (see [`ready_since`](Self::ready_since)).
    pub(crate) fn poll_since(&self, start: u64) -> Option<T> {
        if !self.ready_since(start) {
            return None;
        }
        self.inner.value.borrow().clone()
    }

    /// Waits until a value is sent and returns a clone of it.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev = sylvan::sync::Event::new();
    /// ev.send(5).unwrap();
    /// assert_eq!(ev.wait(), Ok(5));
    /// ```
    ///
    /// # Cancellation
    ///
    /// If the green thread is killed or its deadline passes while waiting,
    /// returns [`Cancelled`]; it is no longer a waiter and the event is
    /// unchanged.
    #[track_caller]
    pub fn wait(&self) -> Result<T, Cancelled> {
        let loc = Location::caller();
        let start = self.inner.sends.get();
        loop {
            if self.inner.set.get() || self.inner.sends.get() != start {
                let v = self.inner.value.borrow();
                return Ok(v.as_ref().expect("a value was sent").clone());
            }
            runtime::wait_on(&self.inner.waiters, loc)?;
        }
    }

    /// The value, if one was sent; never blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// let ev = sylvan::sync::Event::<u8>::new();
    /// assert_eq!(ev.try_get(), None);
    /// ```
    pub fn try_get(&self) -> Option<T> {
        if !self.inner.set.get() {
            return None;
        }
        self.inner.value.borrow().clone()
    }
}
